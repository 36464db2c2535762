/** A client's samples on the wire: they decode to what was encoded, and bad ones are refused. */
import { describe, expect, it } from 'vitest';
import type { ClientData } from '../data/clients.js';
import { decodeShard, encodeShard } from './shard.js';
import { pack } from './wire.js';

const data: ClientData = {
  id: 4,
  shape: [1, 3, 1],
  classes: 2,
  train: { x: Float32Array.from([0.5, -1, 2, 3, 4, 5]), y: Int32Array.from([1, 0]), size: 2 },
  test: { x: Float32Array.from([7, 8, 9]), y: Int32Array.from([1]), size: 1 },
};

describe('shard codec', () => {
  it('decodes exactly what it encoded, from a view into a larger buffer too', () => {
    expect(decodeShard(encodeShard(data), 4, 'shard')).toEqual(data);
    const bytes = encodeShard(data);
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    expect(decodeShard(padded.subarray(3), 4, 'shard')).toEqual(data);
  });

  it('refuses another client, bad sizes and labels, naming the field', () => {
    const raw = (over: Record<string, unknown>) =>
      pack({
        id: 4,
        shape: [1, 3, 1],
        classes: 2,
        train: { x: new Uint8Array(24), y: new Uint8Array(8) },
        test: { x: new Uint8Array(12), y: new Uint8Array(4) },
        ...over,
      });
    expect(() => decodeShard(encodeShard(data), 5, 's')).toThrow(
      's: expected the shard of client 5, got 4',
    );
    expect(() => decodeShard(raw({ shape: [1, 3] }), 4, 's')).toThrow(
      's.shape: expected [height, width, channels]',
    );
    expect(() => decodeShard(raw({ classes: 1 }), 4, 's')).toThrow('s.classes');
    expect(() =>
      decodeShard(raw({ train: { x: new Uint8Array(20), y: new Uint8Array(8) } }), 4, 's'),
    ).toThrow('s.train.x: 5 values for 2 samples of 3');
    expect(() =>
      decodeShard(
        raw({ test: { x: new Uint8Array(12), y: new Uint8Array([2, 0, 0, 0]) } }),
        4,
        's',
      ),
    ).toThrow('s.test.y[0]: label 2 is not in [0, 2)');
    expect(() => decodeShard(new Uint8Array([0xc1]), 4, 's')).toThrow(/s: not a MessagePack shard/);
  });
});
