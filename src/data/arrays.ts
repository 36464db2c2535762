/**
 * Numeric arrays from the files people keep images and labels in, besides IDX (idx.ts):
 *
 * - `.npy` (NumPy): the magic `\x93NUMPY`, a version byte pair, the header length (2 bytes
 *   little-endian in version 1, 4 in versions 2 and 3), a Python-literal header
 *   `{'descr': '<f4', 'fortran_order': False, 'shape': (N, 28, 28), }`, then the values in C order.
 * - `.safetensors`: an 8-byte little-endian header length, a JSON header
 *   `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the tensors'
 *   little-endian bytes, offsets relative to the end of the header.
 *
 * Integer and float types of 1 to 8 bytes are read (64-bit integers must fit a double exactly);
 * anything else is refused with a message naming the file and what it holds.
 */

/** An array of numbers in C order: `dims` and the value at each flat index. */
export interface NumericArray {
  readonly dims: readonly number[];
  /** The element type, as `u1`, `i8`, `f4`... (kind and bytes). */
  readonly type: string;
  readonly length: number;
  at(i: number): number;
}

type Kind = 'u' | 'i' | 'f';

/** Reads element `i` of a little- or big-endian buffer of one kind and size. */
function reader(
  view: DataView,
  kind: Kind,
  bytes: number,
  littleEndian: boolean,
  where: string,
): (i: number) => number {
  const key = `${kind}${bytes}`;
  switch (key) {
    case 'u1':
      return (i) => view.getUint8(i);
    case 'i1':
      return (i) => view.getInt8(i);
    case 'u2':
      return (i) => view.getUint16(i * 2, littleEndian);
    case 'i2':
      return (i) => view.getInt16(i * 2, littleEndian);
    case 'u4':
      return (i) => view.getUint32(i * 4, littleEndian);
    case 'i4':
      return (i) => view.getInt32(i * 4, littleEndian);
    case 'f4':
      return (i) => view.getFloat32(i * 4, littleEndian);
    case 'f8':
      return (i) => view.getFloat64(i * 8, littleEndian);
    case 'u8':
    case 'i8':
      return (i) => {
        const big =
          kind === 'u'
            ? view.getBigUint64(i * 8, littleEndian)
            : view.getBigInt64(i * 8, littleEndian);
        const n = Number(big);
        if (!Number.isSafeInteger(n))
          throw new Error(`${where}: value ${big} at index ${i} is too large`);
        return n;
      };
  }
  throw new Error(`${where}: element type ${key} is not supported (integers or floats)`);
}

function arrayOf(
  bytes: Uint8Array,
  dims: readonly number[],
  kind: Kind,
  size: number,
  littleEndian: boolean,
  where: string,
): NumericArray {
  const length = dims.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== length * size)
    throw new Error(
      `${where}: shape [${dims.join(', ')}] of ${kind}${size} needs ${length * size} bytes of data, the file has ${bytes.byteLength}`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    dims,
    type: `${kind}${size}`,
    length,
    at: reader(view, kind, size, littleEndian, where),
  };
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses a `.npy` file's bytes; `where` names the file in errors. */
export function parseNpy(buf: Uint8Array, where: string): NumericArray {
  if (buf.length < 10 || NPY_MAGIC.some((b, i) => buf[i] !== b))
    throw new Error(`${where}: not a .npy file (no \\x93NUMPY magic)`);
  const major = buf[6]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerStart = major === 1 ? 10 : 12;
  if (major < 1 || major > 3) throw new Error(`${where}: .npy version ${major} is not supported`);
  if (buf.length < headerStart) throw new Error(`${where}: truncated .npy header`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = headerStart + headerLength;
  if (buf.length < dataStart) throw new Error(`${where}: truncated .npy header`);
  const header = new TextDecoder().decode(buf.subarray(headerStart, dataStart));
  const descr = /'descr'\s*:\s*'([<>|=])([uif])(\d+)'/.exec(header);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shape)
    throw new Error(
      `${where}: a .npy header with 'descr' (an integer or float type), 'fortran_order' and 'shape' expected, got ${header.trim().slice(0, 120)}`,
    );
  if (order[1] === 'True')
    throw new Error(`${where}: Fortran-ordered arrays are not supported (save it in C order)`);
  const dims = shape[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (!dims.every((d) => Number.isInteger(d) && d >= 0))
    throw new Error(`${where}: bad .npy shape (${shape[1]})`);
  return arrayOf(
    buf.subarray(dataStart),
    dims,
    descr[2] as Kind,
    Number(descr[3]),
    descr[1] !== '>',
    where,
  );
}

/**
 * Encodes a `.npy` file (version 1) of type `descr` (as '<f4', '|u1', '<i8') and `shape` from
 * `data`'s bytes, in C order (used to write test fixtures).
 */
export function encodeNpy(
  descr: string,
  shape: readonly number[],
  data: ArrayBufferView,
): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  // Padded with spaces and a newline so that the data starts at a multiple of 64 bytes.
  header += `${' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64)}\n`;
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(NPY_MAGIC);
  out.set([1, 0], 6);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

const SAFETENSORS_TYPES: Record<string, [Kind, number]> = {
  U8: ['u', 1],
  I8: ['i', 1],
  U16: ['u', 2],
  I16: ['i', 2],
  U32: ['u', 4],
  I32: ['i', 4],
  U64: ['u', 8],
  I64: ['i', 8],
  F32: ['f', 4],
  F64: ['f', 8],
};

/** The tensors of a `.safetensors` file's bytes, by name; `where` names the file in errors. */
export function parseSafetensors(buf: Uint8Array, where: string): Map<string, NumericArray> {
  if (buf.length < 8) throw new Error(`${where}: not a .safetensors file (${buf.length} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > buf.length)
    throw new Error(`${where}: not a .safetensors file (header of ${headerLength} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLength)));
  } catch {
    throw new Error(`${where}: not a .safetensors file (its header is not JSON)`);
  }
  const data = buf.subarray(8 + headerLength);
  const tensors = new Map<string, NumericArray>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets } = (entry ?? {}) as Record<string, unknown>;
    const type = SAFETENSORS_TYPES[String(dtype)];
    if (!type)
      throw new Error(
        `${where}: tensor '${name}' has dtype ${String(dtype)}; expected one of ${Object.keys(SAFETENSORS_TYPES).join(', ')}`,
      );
    const offsets = data_offsets as unknown[];
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isInteger(d) && d >= 0) ||
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && (o as number) >= 0) ||
      (offsets[1] as number) > data.length ||
      (offsets[0] as number) > (offsets[1] as number)
    )
      throw new Error(`${where}: tensor '${name}' has a bad shape or data_offsets`);
    const bytes = data.subarray(offsets[0] as number, offsets[1] as number);
    tensors.set(
      name,
      arrayOf(bytes, shape as number[], type[0], type[1], true, `${where} '${name}'`),
    );
  }
  return tensors;
}
