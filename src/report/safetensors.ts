/**
 * The safetensors file format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON header `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {string: string}}` (padded with spaces to a multiple of 8), then the tensors'
 * raw little-endian bytes; offsets are relative to the end of the header.
 */
import { endianness } from 'node:os';

export interface NamedTensor {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

function littleEndianBytes(data: Float32Array): Uint8Array {
  if (endianness() === 'LE') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

/** Encodes float32 tensors (in the given order) and string metadata as one safetensors file. */
export function encodeSafetensors(
  tensors: readonly NamedTensor[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let offset = 0;
  for (const t of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== size) {
      throw new Error(
        `safetensors: '${t.name}' has ${t.data.length} values for shape [${t.shape}]`,
      );
    }
    if (t.name in header) throw new Error(`safetensors: tensor name '${t.name}' appears twice`);
    header[t.name] = {
      dtype: 'F32',
      shape: [...t.shape],
      data_offsets: [offset, offset + t.data.byteLength],
    };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors) {
    out.set(littleEndianBytes(t.data), pos);
    pos += t.data.byteLength;
  }
  return out;
}
