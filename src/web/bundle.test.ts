/**
 * The browser client's build (scripts/build-web.mjs): the page and its worker bundle for the
 * browser with no Node built-in, and the folder holds what a static host needs.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildWeb } from '../../scripts/build-web.mjs';

describe('the browser build', () => {
  it("bundles the page and its worker with no Node built-in, beside tfjs's .wasm files", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-web-'));
    try {
      const meta = await buildWeb(dir);
      const inputs = Object.keys(meta.inputs);
      const builtins = new Set(builtinModules);
      expect(inputs.filter((i) => i.startsWith('node:') || builtins.has(i))).toEqual([]);
      // The worker runs the one client loop, the host and the algorithms.
      for (const f of [
        'src/runtime/client_loop.ts',
        'src/runtime/host.ts',
        'src/algorithms/fedslr.ts',
        'src/web/idb_store.ts',
      ])
        expect(inputs).toContain(f);
      for (const f of ['page.js', 'worker.js', 'tfjs-backend-wasm-simd.wasm'])
        expect(statSync(join(dir, f)).size).toBeGreaterThan(0);
      expect(readFileSync(join(dir, 'index.html'), 'utf8')).toContain('src="page.js"');
      // The webgl and webgpu backends are chunks the worker imports only when chosen: no file
      // that page.js or worker.js load statically holds them.
      const outputs = meta.outputs;
      const key = (f: string) => Object.keys(outputs).find((o) => o.endsWith(f))!;
      const loaded = new Set<string>();
      const visit = (o: string) => {
        if (loaded.has(o)) return;
        loaded.add(o);
        for (const i of outputs[o]!.imports)
          if (i.kind === 'import-statement') visit(key(i.path.replace(/^.*\/(chunks\/)/, '$1')));
      };
      visit(key('/page.js'));
      visit(key('/worker.js'));
      const packagesOf = (o: string) => Object.keys(outputs[o]!.inputs).join(' ');
      expect([...loaded].some((o) => packagesOf(o).includes('tfjs-core/'))).toBe(true);
      for (const gpu of ['tfjs-backend-webgl/', 'tfjs-backend-webgpu/']) {
        expect([...loaded].filter((o) => packagesOf(o).includes(gpu))).toEqual([]);
        const chunk = Object.keys(outputs).filter((o) => packagesOf(o).includes(gpu));
        expect(chunk.length).toBeGreaterThan(0);
        expect(chunk.every((o) => o.includes('chunks/'))).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
