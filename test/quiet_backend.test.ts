import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** Standard output and error of the fixture run in a fresh process (asynchronously, so the test worker stays responsive). */
function firstUse(mode: 'fedslr' | 'plain'): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['node_modules/vite-node/vite-node.mjs', 'test/fixtures/cpu_first_use.ts', mode],
      (_err, stdout, stderr) => resolve(`${stdout}${stderr}`),
    );
  });
}

describe('tfjs cpu backend', () => {
  it("prints no 'install tfjs-node' banner through fedslr's backend module (tfjs alone does)", async () => {
    const [plain, ours] = await Promise.all([firstUse('plain'), firstUse('fedslr')]);
    expect(plain).toContain('sum 6 on cpu');
    expect(plain).toContain('tfjs-node');
    expect(ours).toContain('sum 6 on cpu');
    expect(ours).not.toContain('tfjs-node');
  });
});
