/** Reading IDX files from disk (the format itself: idx_format.ts). */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { type IdxArray, isGzip, parseIdx } from './idx_format.js';

export { encodeIdx, type IdxArray, isGzip, parseIdx } from './idx_format.js';

/** Reads and parses an IDX file, decompressing it first when it is gzipped. */
export async function readIdxFile(path: string, expectedDims?: number): Promise<IdxArray> {
  const raw = new Uint8Array(await readFile(path));
  let buf: Uint8Array = raw;
  if (isGzip(raw)) {
    try {
      buf = new Uint8Array(gunzipSync(raw));
    } catch (e) {
      throw new Error(`${path}: gzip data is corrupt (${(e as Error).message})`);
    }
  }
  return parseIdx(buf, path, expectedDims);
}
