import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** Standard output and error of the fixture run in a fresh process. */
function firstUse(mode: 'fedslr' | 'plain'): string {
  const r = spawnSync(
    process.execPath,
    ['node_modules/vite-node/vite-node.mjs', 'test/fixtures/cpu_first_use.ts', mode],
    { encoding: 'utf8' },
  );
  return `${r.stdout}${r.stderr}`;
}

describe('tfjs cpu backend', () => {
  it("prints no 'install tfjs-node' banner through fedslr's backend module (tfjs alone does)", () => {
    const plain = firstUse('plain');
    expect(plain).toContain('sum 6 on cpu');
    expect(plain).toContain('tfjs-node');
    const ours = firstUse('fedslr');
    expect(ours).toContain('sum 6 on cpu');
    expect(ours).not.toContain('tfjs-node');
  });
});
