/**
 * IDX files (the MNIST / Fashion-MNIST format), gzipped or plain.
 *
 * Layout: two zero bytes, a type byte (0x08 = unsigned byte, the only type these datasets use),
 * the number of dimensions, then one big-endian uint32 per dimension, then the values.
 * Gzip is detected from the content (1f 8b), not from the file name. No Node built-in here: the
 * browser client parses the IDX files a person picks (web/local_data.ts).
 */
export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

const IDX_TYPE_UBYTE = 0x08;

/** True when `buf` starts with the gzip magic bytes. */
export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/**
 * Parses an (already decompressed) IDX buffer of unsigned bytes. `source` names the file in
 * errors; `expectedDims`, when given, is the required number of dimensions.
 */
export function parseIdx(buf: Uint8Array, source: string, expectedDims?: number): IdxArray {
  if (buf.length < 4) {
    throw new Error(`${source}: not an IDX file (${buf.length} bytes, need at least 4)`);
  }
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new Error(`${source}: bad IDX magic number 0x${hex(buf, 0, 4)} (must start with 0x0000)`);
  }
  const type = buf[2]!;
  if (type !== IDX_TYPE_UBYTE) {
    throw new Error(
      `${source}: IDX value type 0x${type.toString(16).padStart(2, '0')} is not supported ` +
        `(expected 0x08, unsigned byte)`,
    );
  }
  const ndims = buf[3]!;
  if (expectedDims !== undefined && ndims !== expectedDims) {
    throw new Error(
      `${source}: expected an IDX file with ${expectedDims} dimensions, got ${ndims}`,
    );
  }
  if (ndims === 0) throw new Error(`${source}: IDX file declares 0 dimensions`);
  const header = 4 + 4 * ndims;
  if (buf.length < header) {
    throw new Error(`${source}: truncated IDX header (${buf.length} bytes, need ${header})`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < ndims; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const count = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== header + count) {
    throw new Error(
      `${source}: IDX dimensions [${dims.join(', ')}] need ${header + count} bytes, ` +
        `file has ${buf.length}`,
    );
  }
  return { dims, data: buf.subarray(header) };
}

/** Encodes unsigned bytes as an IDX buffer (used to write test fixtures and exports). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new Error(
      `encodeIdx: dims [${dims.join(', ')}] need ${count} values, got ${data.length}`,
    );
  }
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = IDX_TYPE_UBYTE;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => {
    view.setUint32(4 + 4 * i, d, false);
  });
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function hex(buf: Uint8Array, start: number, end: number): string {
  return Array.from(buf.subarray(start, end), (b) => b.toString(16).padStart(2, '0')).join('');
}
