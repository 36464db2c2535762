import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setsCodec } from '../algorithms/common.js';
import { chooseStore, DiskStore, MemoryStore } from './store.js';

const codec = setsCodec({ required: ['sparse', 'dual'], scalars: ['seen'] });
const state = (v: number) => ({
  sparse: { w: { shape: [4], data: Float32Array.from([0, v, 0, 0]) } },
  dual: { w: { shape: [2], data: Float32Array.from([v, -v]) } },
  seen: v,
});

describe('client stores', () => {
  it('memory and disk stores return what was stored, and the disk store keeps one file per client', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'fedslr-store-')), 'store');
    for (const store of [new MemoryStore(codec), new DiskStore(dir, codec, 2)]) {
      for (let c = 0; c < 5; c++) store.set(c * 2, state(c + 1));
      store.set(4, state(9));
      expect(store.ids()).toEqual([0, 2, 4, 6, 8]);
      expect(store.get(1)).toBeUndefined();
      // The disk store's cache holds 2 states: these come back from the files.
      for (const [c, v] of [
        [0, 1],
        [2, 2],
        [4, 9],
        [8, 5],
      ] as const)
        expect(store.get(c)).toEqual(state(v));
    }
    expect(readdirSync(dir).sort()).toEqual([
      '000000.msgpack',
      '000002.msgpack',
      '000004.msgpack',
      '000006.msgpack',
      '000008.msgpack',
    ]);
  });

  it('auto keeps state in memory only when the estimate fits the budget', () => {
    expect(chooseStore('auto', 1e9, 2e9)).toBe('memory');
    expect(chooseStore('auto', 3e9, 2e9)).toBe('disk');
    expect(chooseStore('memory', 3e9, 2e9)).toBe('memory');
    expect(chooseStore('disk', 1, 2e9)).toBe('disk');
  });
});
