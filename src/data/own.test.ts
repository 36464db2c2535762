/**
 * A client's own data files: IDX, .npy and .safetensors, written here in a temp directory, read
 * into the client's train and test samples (normalized as the run's dataset, split by a seeded
 * held-out share or from a test file), and refused with the file and what was expected.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../tensor/rng.js';
import { encodeNpy, parseNpy } from './arrays.js';
import { encodeIdx } from './idx.js';
import {
  holdOut,
  labelsFileOf,
  OWN_TEST_STREAM,
  type OwnDataTarget,
  readLabelled,
  readOwnData,
} from './own.js';

const dir = mkdtempSync(join(tmpdir(), 'fedslr-own-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = (name: string) => join(dir, name);

/** A .safetensors file of the given tensors. */
function safetensors(
  tensors: Record<string, { dtype: string; shape: number[]; data: ArrayBufferView }>,
) {
  const header: Record<string, unknown> = { __metadata__: { made: 'by the test' } };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + t.data.byteLength],
    };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

// Ten 4x4 grey images whose pixels are their index, and labels 0,0,0,0,1,1,1,1,2,2.
const N = 10;
const pixels = Uint8Array.from({ length: N * 16 }, (_, i) => Math.floor(i / 16) * 20);
const labels = Uint8Array.from([0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
const norm = { mean: [0.5], std: [0.25] };
const grey: OwnDataTarget = {
  client: 3,
  seed: 11,
  shape: [4, 4, 1],
  classes: 3,
  normalization: norm,
};

describe("a client's own data", () => {
  it('names the labels file after the images file', () => {
    expect(labelsFileOf('/d/train-images-idx3-ubyte.gz')).toBe('/d/train-labels-idx1-ubyte.gz');
    expect(labelsFileOf('my-images.npy')).toBe('my-labels.npy');
    expect(() => labelsFileOf('/d/pictures.npy')).toThrow(/must contain 'images'/);
  });

  it('reads an IDX pair, normalizes it as the run dataset, and holds out a seeded share of each class', async () => {
    writeFileSync(path('a-images-idx3-ubyte.gz'), gzipSync(encodeIdx([N, 4, 4], pixels)));
    writeFileSync(path('a-labels-idx1-ubyte'), encodeIdx([N], labels));
    const own = await readOwnData({ file: path('a-images-idx3-ubyte.gz'), testShare: 0.3 }, grey);
    // floor(0.3 * 4) = 1 of class 0, 1 of class 1, floor(0.3 * 2) = 0 of class 2.
    expect([own.train.size, own.test.size]).toEqual([8, 2]);
    expect(own).toMatchObject({ id: 3, shape: [4, 4, 1], classes: 3 });
    const split = holdOut(Int32Array.from(labels), 3, 0.3, Rng.derive(11, OWN_TEST_STREAM, 3));
    expect([...split.train, ...split.test].sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
    expect(Array.from(own.test.y)).toEqual(Array.from(split.test, (i) => labels[i]));
    expect(Array.from(own.test.y).sort()).toEqual([0, 1]);
    // Each sample's pixels are (index * 20 / 255 - 0.5) / 0.25.
    split.train.forEach((i, k) => {
      expect(own.train.x[k * 16]).toBeCloseTo((i * 20) / 255 / 0.25 - 2, 5);
    });
    // The same seed and client: the same split.
    const again = await readOwnData({ file: path('a-images-idx3-ubyte.gz'), testShare: 0.3 }, grey);
    expect(again.test.x).toEqual(own.test.x);
  });

  it('reads a .npy pair of float pixels and 64-bit labels, with a test set from its own file', async () => {
    const floats = Float32Array.from(pixels, (v) => v / 255);
    writeFileSync(path('b-images.npy'), encodeNpy('<f4', [N, 4, 4, 1], floats));
    writeFileSync(path('b-labels.npy'), encodeNpy('<i8', [N], BigInt64Array.from(labels, BigInt)));
    writeFileSync(path('t-images.npy'), encodeNpy('|u1', [2, 4, 4], pixels.subarray(0, 32)));
    writeFileSync(path('t-labels.npy'), encodeNpy('|u1', [2], Uint8Array.from([2, 1])));
    const own = await readOwnData(
      { file: path('b-images.npy'), testFile: path('t-images.npy'), testShare: 0.2 },
      grey,
    );
    expect([own.train.size, own.test.size]).toEqual([N, 2]);
    expect(Array.from(own.train.y)).toEqual(Array.from(labels));
    expect(Array.from(own.test.y)).toEqual([2, 1]);
    expect(own.train.x[16 * 9]).toBeCloseTo(180 / 255 / 0.25 - 2, 5);
    expect(own.test.x[16]).toBeCloseTo(20 / 255 / 0.25 - 2, 5);
  });

  it('reads one .safetensors file of colour images and labels', async () => {
    const rgb = Uint8Array.from({ length: N * 4 * 4 * 3 }, (_, i) => (i % 3 === 2 ? 255 : 0));
    writeFileSync(
      path('c.safetensors'),
      safetensors({
        labels: { dtype: 'I64', shape: [N], data: BigInt64Array.from(labels, BigInt) },
        images: { dtype: 'U8', shape: [N, 4, 4, 3], data: rgb },
      }),
    );
    const colour = {
      ...grey,
      shape: [4, 4, 3] as const,
      normalization: { mean: [0, 0, 0.5], std: [1, 1, 0.5] },
    };
    const ds = await readLabelled(path('c.safetensors'), colour);
    expect(ds.shape).toEqual([4, 4, 3]);
    expect(Array.from(ds.x.subarray(0, 6))).toEqual([0, 0, 1, 0, 0, 1]);
    expect(Array.from(ds.y)).toEqual(Array.from(labels));
  });

  it('refuses files that do not fit the run, naming the file and what was expected', async () => {
    const write = (name: string, bytes: Uint8Array) => {
      writeFileSync(path(name), bytes);
      return path(name);
    };
    for (const name of ['d', 'f']) write(`${name}-labels.npy`, encodeNpy('|u1', [N], labels));
    const cases: [string, RegExp][] = [
      [
        write('d-images.npy', encodeNpy('|u1', [N, 5, 5], new Uint8Array(N * 25))),
        /d-images\.npy: images of shape \[10, 5, 5\]; expected N x 4 x 4 \(x 1\) images for the run's model/,
      ],
      [
        write('e-images.npy', encodeNpy('|u1', [N, 4, 4], pixels)),
        /e-images\.npy: no labels file beside it \(expected .*e-labels\.npy\)/,
      ],
      [
        write('f-images.npy', encodeNpy('<i4', [N, 4, 4], new Int32Array(N * 16))),
        /f-images\.npy: pixels of type i4; expected unsigned bytes \(0\.\.255\) or floats \(0\.\.1\)/,
      ],
      [
        write(
          'g-images.safetensors',
          safetensors({ images: { dtype: 'U8', shape: [N, 4, 4], data: pixels } }),
        ),
        /g-images\.safetensors: no tensor 'labels' \(it has images\)/,
      ],
      [
        write(
          'h-images.safetensors',
          safetensors({ images: { dtype: 'F16', shape: [1], data: new Uint8Array(2) } }),
        ),
        /tensor 'images' has dtype F16; expected one of U8/,
      ],
    ];
    write('i-images.npy', encodeNpy('|u1', [N, 4, 4], pixels));
    write('i-labels.npy', encodeNpy('|u1', [N], Uint8Array.from([0, 0, 0, 0, 1, 1, 1, 3, 2, 2])));
    cases.push([
      path('i-images.npy'),
      /i-labels\.npy: label 3 of sample 7 is outside \[0, 3\), the run's classes/,
    ]);
    write('j-images.npy', encodeNpy('|u1', [N, 4, 4], pixels));
    write('j-labels.npy', encodeNpy('|u1', [N - 1], labels.subarray(1)));
    cases.push([
      path('j-images.npy'),
      /j-labels\.npy: labels of shape \[9\]; expected \[10\], one per image/,
    ]);
    const floatPixels = Float32Array.from(pixels);
    floatPixels[5] = Number.NaN;
    write('k-images.npy', encodeNpy('<f4', [N, 4, 4], floatPixels));
    write('k-labels.npy', encodeNpy('|u1', [N], labels));
    cases.push([path('k-images.npy'), /k-images\.npy: value NaN at index 5 is not finite/]);
    for (const [file, message] of cases)
      await expect(readOwnData({ file, testShare: 0.2 }, grey), file).rejects.toThrow(message);
    const fortran = encodeNpy('|u1', [2], new Uint8Array(2));
    const at = Buffer.from(fortran).indexOf('False');
    fortran.set(new TextEncoder().encode('True '), at);
    expect(() => parseNpy(fortran, 'x.npy')).toThrow(/x\.npy: Fortran-ordered/);
    expect(() => parseNpy(new Uint8Array(20), 'y.npy')).toThrow(/y\.npy: not a \.npy file/);
  });
});
