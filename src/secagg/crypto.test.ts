import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  agreeSeed,
  decrypt,
  encrypt,
  expandSeed,
  generateKeyPair,
  importPublicKey,
} from './crypto.js';

describe('secure-aggregation primitives', () => {
  it('both ends of a pair derive the same mask seed, which differs per pair, round and purpose', async () => {
    const [a, b, c] = await Promise.all([generateKeyPair(), generateKeyPair(), generateKeyPair()]);
    const pub = async (k: { publicKey: Uint8Array }) => importPublicKey(k.publicKey);
    const ab = await agreeSeed(a.privateKey, await pub(b), 'mask', 7, 1, 2);
    const ba = await agreeSeed(b.privateKey, await pub(a), 'mask', 7, 2, 1);
    expect(ba).toEqual(ab);
    const seeds = [
      ab,
      await agreeSeed(a.privateKey, await pub(c), 'mask', 7, 1, 3),
      await agreeSeed(a.privateKey, await pub(b), 'mask', 8, 1, 2),
      await agreeSeed(a.privateKey, await pub(b), 'share-encryption', 7, 1, 2),
    ];
    const streams = await Promise.all(seeds.map((s) => expandSeed(s, 1000)));
    for (let i = 0; i < streams.length; i++)
      for (let j = i + 1; j < streams.length; j++) {
        const same = (streams[i] as Uint32Array).filter(
          (x, k) => x === (streams[j] as Uint32Array)[k],
        );
        expect(same.length).toBeLessThan(3);
      }
  });

  it('the AES-CTR stream is deterministic per seed, continuous across chunks, and looks uniform', async () => {
    const s = new Uint8Array(32).fill(3);
    const long = await expandSeed(s, (1 << 22) + 5); // spans two 16 MiB chunks
    const short = await expandSeed(s, 1000);
    expect(long.subarray(0, 1000)).toEqual(short);
    const tail = long.subarray((1 << 22) - 4);
    expect(new Set(tail).size).toBe(tail.length); // no repeated block at the chunk boundary
    const mean = long.reduce((m, x) => m + x / 2 ** 32, 0) / long.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.001);
  });

  it('AES-GCM share encryption refuses a wrong header or a flipped byte', async () => {
    const key = new Uint8Array(32).fill(9);
    const header = new Uint8Array([1, 2, 3]);
    const box = await encrypt(key, header, new Uint8Array([42, 43]));
    expect(await decrypt(key, header, box)).toEqual(new Uint8Array([42, 43]));
    expect(await decrypt(key, new Uint8Array([1, 2, 4]), box)).toBeUndefined();
    box[box.length - 1] ^= 1;
    expect(await decrypt(key, header, box)).toBeUndefined();
  });

  it('no source file of src/secagg uses Math.random or a node: import', () => {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    expect(sources.length).toBeGreaterThan(5);
    for (const f of sources) {
      const text = readFileSync(`${dir}/${f}`, 'utf8');
      expect(text, f).not.toMatch(/Math\.random/);
      expect(text, f).not.toMatch(/from 'node:/);
    }
  });

  it('bundles for browsers with its dependency, with no node: module left', async () => {
    const { build } = await import('esbuild');
    const out = await build({
      entryPoints: [fileURLToPath(new URL('./index.ts', import.meta.url))],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0]?.text ?? '';
    expect(code).toMatch(/AES-CTR/);
    expect(code).not.toMatch(/["']node:/);
  });
});
