/**
 * The package's main entry is isomorphic: bundled for the browser it reaches no Node built-in.
 * The same build of `fedslr/node` fails on one, which shows the check can fail.
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const entry = (name: string) => fileURLToPath(new URL(`../src/${name}`, import.meta.url));
const forBrowser = (file: string) =>
  build({
    entryPoints: [file],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    metafile: true,
    logLevel: 'silent',
  });

describe('entry points', () => {
  it('bundles fedslr (the core) for the browser with no Node built-in', async () => {
    const r = await forBrowser(entry('index.ts'));
    const inputs = Object.keys(r.metafile.inputs);
    const builtins = new Set(builtinModules);
    expect(inputs.filter((i) => i.startsWith('node:') || builtins.has(i))).toEqual([]);
    // It holds the algorithms, the codecs and the upload checks.
    for (const f of ['src/algorithms/fedslr.ts', 'src/codec/params.ts', 'src/protocol/checks.ts'])
      expect(inputs).toContain(f);
    expect(r.outputFiles[0]!.text.length).toBeGreaterThan(0);
  });

  it('fails the same build for fedslr/node, which needs Node', async () => {
    await expect(forBrowser(entry('node.ts'))).rejects.toThrow(
      /Could not resolve "(node:)?(fs|os|path|crypto|worker_threads)/,
    );
  });
});
