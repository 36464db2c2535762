/**
 * A browser client's own images with a labels CSV, with a stand-in decoder (the browser's
 * createImageBitmap + OffscreenCanvas decoding is tested in Chromium, test/browser.test.ts):
 * rows matched to files by their path below the CSV's folder, gray or RGB pixels in the CSV's
 * order, and every mismatch refused naming the file and line.
 */
import { describe, expect, it } from 'vitest';
import { type DecodeImage, localImageData, parseLabelsCsv } from './image_data.js';
import type { LocalDataOptions, LocalFile } from './local_data.js';

const text = (name: string, s: string): LocalFile => ({
  name,
  bytes: new TextEncoder().encode(s).buffer as ArrayBuffer,
});
/** A 2x2 "image": its bytes are its RGBA pixels. */
const image = (name: string, rgb: [number, number, number]): LocalFile => ({
  name,
  bytes: Uint8Array.from({ length: 16 }, (_, i) => (i % 4 === 3 ? 255 : rgb[i % 4]!))
    .buffer as ArrayBuffer,
});
const rawDecode: DecodeImage = async (file, w, h) => {
  if (file.bytes.byteLength !== w * h * 4) throw new Error('not RGBA of the size asked');
  return new Uint8Array(file.bytes);
};
const opts: LocalDataOptions = {
  client: 1,
  seed: 3,
  inputShape: [2, 2, 1],
  classes: 3,
  testCount: 100,
};
const colours: [number, number, number][] = [
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
  [10, 20, 30],
  [200, 200, 200],
];
/** A folder `digits/` of five images (one in a subfolder) and its labels.csv with a header. */
const folder = (): LocalFile[] => [
  text(
    'digits/labels.csv',
    'file,label\n' +
      colours.map((_, i) => `${i === 4 ? 'sub/' : './'}${i}.png,${i % 3}`).join('\r\n') +
      '\n',
  ),
  ...colours.map((c, i) => image(`digits/${i === 4 ? 'sub/' : ''}${i}.png`, c)),
  text('digits/.DS_Store', 'junk'),
];

describe('local images with a labels CSV', () => {
  it('matches rows to files below the CSV, takes gray or RGB pixels, normalised and split as IDX is', async () => {
    const d = await localImageData(folder(), opts, rawDecode);
    expect([d.train.size, d.test.size]).toEqual([4, 1]);
    expect(d.shape).toEqual([2, 2, 1]);
    const all = [...d.train.x, ...d.test.x];
    const mean = all.reduce((a, b) => a + b, 0) / all.length;
    expect(mean).toBeCloseTo(0, 5);
    // Image i's gray level (BT.601) ranks the samples, and label i % 3 goes with it.
    const gray = colours.map(([r, g, b]) => 0.299 * r + 0.587 * g + 0.114 * b);
    const samples = [d.train, d.test].flatMap((s) =>
      Array.from({ length: s.size }, (_, k) => ({ x: s.x[k * 4]!, y: s.y[k]! })),
    );
    const byGray = [...samples].sort((a, b) => a.x - b.x).map((s) => s.y);
    const expected = colours
      .map((_, i) => i)
      .sort((a, b) => gray[a]! - gray[b]!)
      .map((i) => i % 3);
    expect(byGray).toEqual(expected);
    // RGB keeps the three channels; the same files picked in another order give the same split.
    const rgb = await localImageData(folder(), { ...opts, inputShape: [2, 2, 3] }, rawDecode);
    expect(rgb.train.x).toHaveLength(4 * 12);
    const again = await localImageData(folder().reverse(), opts, rawDecode);
    expect(again.train.x).toEqual(d.train.x);
    expect(again.test.y).toEqual(d.test.y);
  });

  it('files picked without a folder match the CSV by name', async () => {
    const files = [
      text('labels.csv', '0.png,1\n1.png,2'),
      image('1.png', [1, 2, 3]),
      image('0.png', [4, 5, 6]),
    ];
    const d = await localImageData(files, opts, rawDecode);
    expect(d.train.size + d.test.size).toBe(2);
  });

  it('refuses what does not fit, naming the file and line', async () => {
    const run = (files: LocalFile[], o = opts) => localImageData(files, o, rawDecode);
    await expect(run(folder().slice(1))).rejects.toThrow(/pick one labels CSV .* not 0$/);
    await expect(run([...folder(), text('b.csv', '')])).rejects.toThrow(
      /not 2 \(digits\/labels\.csv, b\.csv\)/,
    );
    await expect(run([...folder(), image('digits/extra.png', [0, 0, 0])])).rejects.toThrow(
      /^digits\/extra\.png: no row of digits\/labels\.csv gives its label$/,
    );
    await expect(run(folder().filter((f) => f.name !== 'digits/2.png'))).rejects.toThrow(
      /^digits\/labels\.csv: '2\.png' is not among the picked files$/,
    );
    const broken = folder().map((f) => (f.name === 'digits/3.png' ? text(f.name, 'not a png') : f));
    await expect(run(broken)).rejects.toThrow(
      /^digits\/3\.png: not an image this browser can decode \(not RGBA/,
    );
    await expect(run(folder(), { ...opts, classes: 2 })).rejects.toThrow(
      /^digits\/labels\.csv line 4: label 2 is not one of this run's 2 classes \(0 to 1\)$/,
    );
    await expect(run(folder(), { ...opts, inputShape: [2, 2, 2] })).rejects.toThrow(/2 channels/);
  });

  it('reads a CSV with or without a header, and refuses a malformed one by line', () => {
    expect([...parseLabelsCsv('a.png,1\n\n"b c.png", 0\n', 'l.csv', 2)]).toEqual([
      ['a.png', 1],
      ['b c.png', 0],
    ]);
    expect([...parseLabelsCsv('\nname,class\nx.png,0', 'l.csv', 2)]).toEqual([['x.png', 0]]);
    expect(() => parseLabelsCsv('a.png,1\nb.png,one', 'l.csv', 2)).toThrow(
      /^l\.csv line 2: the label 'one' is not a whole number$/,
    );
    expect(() => parseLabelsCsv('a.png', 'l.csv', 2)).toThrow(
      /^l\.csv line 1: expected 'file,label', got 'a\.png'$/,
    );
    expect(() => parseLabelsCsv('a.png,1\n./a.png,0', 'l.csv', 2)).toThrow(
      /line 2: '\.\/a\.png' has a label already/,
    );
    expect(() => parseLabelsCsv('file,label\n', 'l.csv', 2)).toThrow(
      /^l\.csv: no 'file,label' rows$/,
    );
  });
});
