/**
 * A browser client's own data as image files (PNG, JPEG, anything the browser decodes) and a
 * labels CSV: one `file,label` row per image (a header row is allowed), `file` a path relative
 * to the CSV's folder. The person picks a folder holding both, or the images and the CSV.
 *
 * Each image is decoded and resized to the run's input [h, w] (drawn stretched onto an
 * OffscreenCanvas, the browser's smoothing), then taken as gray (c = 1: 0.299 r + 0.587 g +
 * 0.114 b, ITU-R BT.601) or as r, g, b (c = 3); alpha is ignored. The samples are in the CSV's
 * order, then normalised and split as an IDX pair is (local_data.ts's splitSamples).
 */
import type { ClientData } from '../data/clients.js';
import { type LocalDataOptions, type LocalFile, splitSamples } from './local_data.js';

/** RGBA pixels of `file` resized to width x height; throws when the file is no image. */
export type DecodeImage = (
  file: LocalFile,
  width: number,
  height: number,
) => Promise<ArrayLike<number>>;

/** The labels CSV's rows: image path (relative to the CSV's folder) to label, in file order. */
export function parseLabelsCsv(
  text: string,
  csvName: string,
  classes: number,
): Map<string, number> {
  const rows = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const fields = line.split(',').map((f) => f.trim().replace(/^"(.*)"$/, '$1'));
    const where = `${csvName} line ${i + 1}`;
    if (fields.length !== 2 || fields[0] === '')
      throw new Error(`${where}: expected 'file,label', got '${line}'`);
    const [file, label] = fields as [string, string];
    if (!/^\d+$/.test(label)) {
      if (rows.size === 0 && i === lines.findIndex((l) => l.trim() !== '')) return; // a header
      throw new Error(`${where}: the label '${label}' is not a whole number`);
    }
    const value = Number(label);
    if (value >= classes)
      throw new Error(
        `${where}: label ${value} is not one of this run's ${classes} classes (0 to ${classes - 1})`,
      );
    const path = normalPath(file);
    if (rows.has(path)) throw new Error(`${where}: '${file}' has a label already`);
    rows.set(path, value);
  });
  if (rows.size === 0) throw new Error(`${csvName}: no 'file,label' rows`);
  return rows;
}

const normalPath = (p: string) => p.replaceAll('\\', '/').replace(/^(\.\/)+/, '');
const folderOf = (p: string) => p.slice(0, p.lastIndexOf('/') + 1);
const baseName = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/**
 * The client's samples from picked files: exactly one `.csv` (the labels), the others images
 * (files whose name starts with a dot are skipped). Names are paths as the browser gives them
 * (`webkitRelativePath` for a folder); an image's key is its path below the CSV's folder.
 */
export async function localImageData(
  files: readonly LocalFile[],
  opts: LocalDataOptions,
  decode: DecodeImage = decodeWithCanvas,
): Promise<ClientData> {
  const csvs = files.filter((f) => /\.csv$/i.test(f.name));
  if (csvs.length !== 1)
    throw new Error(
      `pick one labels CSV (rows 'file,label') with the images, not ${csvs.length}${csvs.length ? ` (${csvs.map((f) => f.name).join(', ')})` : ''}`,
    );
  const csv = csvs[0]!;
  const [h, w, c] = opts.inputShape;
  if (c !== 1 && c !== 3)
    throw new Error(`this run's model takes ${c} channels; images give 1 (gray) or 3 (RGB)`);
  const labels = parseLabelsCsv(new TextDecoder().decode(csv.bytes), csv.name, opts.classes);
  const root = folderOf(normalPath(csv.name));
  const images = new Map<string, LocalFile>();
  for (const f of files) {
    const path = normalPath(f.name);
    if (f === csv || baseName(path).startsWith('.')) continue;
    const key = path.startsWith(root) ? path.slice(root.length) : path;
    if (!labels.has(key)) throw new Error(`${f.name}: no row of ${csv.name} gives its label`);
    images.set(key, f);
  }
  const px = new Float32Array(labels.size * h * w * c);
  const y = new Int32Array(labels.size);
  let k = 0;
  for (const [key, label] of labels) {
    const file = images.get(key);
    if (!file) throw new Error(`${csv.name}: '${key}' is not among the picked files`);
    let rgba: ArrayLike<number>;
    try {
      rgba = await decode(file, w, h);
    } catch (err) {
      throw new Error(
        `${file.name}: not an image this browser can decode (${(err as Error).message})`,
      );
    }
    const at = k * h * w * c;
    for (let p = 0; p < h * w; p++) {
      const [r, g, b] = [rgba[4 * p]!, rgba[4 * p + 1]!, rgba[4 * p + 2]!];
      if (c === 1) px[at + p] = 0.299 * r + 0.587 * g + 0.114 * b;
      else px.set([r, g, b], at + 3 * p);
    }
    y[k++] = label;
  }
  return splitSamples(px, y, [h, w, c], opts, csv.name);
}

let canvas: OffscreenCanvas | undefined;

/** Decodes with createImageBitmap and resizes on an OffscreenCanvas (a page or a worker). */
export async function decodeWithCanvas(
  file: LocalFile,
  width: number,
  height: number,
): Promise<Uint8ClampedArray> {
  const bitmap = await createImageBitmap(new Blob([file.bytes]));
  try {
    if (!canvas || canvas.width !== width || canvas.height !== height)
      canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2d context on an OffscreenCanvas');
    ctx.clearRect(0, 0, width, height);
    ctx.drawImage(bitmap, 0, 0, width, height);
    return ctx.getImageData(0, 0, width, height).data;
  } finally {
    bitmap.close();
  }
}
