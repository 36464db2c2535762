/**
 * One client's samples on the wire: what `fedslr serve` sends a browser client that asks for its
 * demo shard (net/http.ts) and what the browser client keeps of it. MessagePack of
 *   { id, shape: [h, w, c], classes, train: { x, y }, test: { x, y } }
 * with x the normalised float32 values (NHWC) and y the int32 labels, as raw little-endian bytes.
 * Decoding checks every size against the shape and every label against the classes.
 */
import type { ClientData, ClientSamples } from '../data/clients.js';
import { pack, unpack } from './wire.js';

const bytesOf = (a: Float32Array | Int32Array) =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function encodeShard(data: ClientData): Uint8Array {
  const samples = (s: ClientSamples) => ({ x: bytesOf(s.x), y: bytesOf(s.y) });
  return pack({
    id: data.id,
    shape: [...data.shape],
    classes: data.classes,
    train: samples(data.train),
    test: samples(data.test),
  });
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Client `client`'s samples from their encoding; `where` names the source in errors. */
export function decodeShard(bytes: Uint8Array, client: number, where: string): ClientData {
  let raw: Record<string, unknown>;
  try {
    raw = unpack(bytes) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${where}: not a MessagePack shard (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null) throw new Error(`${where}: expected a shard`);
  const { id, shape, classes } = raw;
  if (id !== client) throw new Error(`${where}: expected the shard of client ${client}, got ${id}`);
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => isCount(d) && d > 0))
    throw new Error(`${where}.shape: expected [height, width, channels]`);
  if (!isCount(classes) || classes < 2) throw new Error(`${where}.classes: expected at least 2`);
  const perSample = shape[0] * shape[1] * shape[2];
  const samples = (name: 'train' | 'test'): ClientSamples => {
    const s = raw[name] as Record<string, unknown> | undefined;
    const x = s?.['x'];
    const y = s?.['y'];
    if (
      !(x instanceof Uint8Array) ||
      !(y instanceof Uint8Array) ||
      x.byteLength % 4 !== 0 ||
      y.byteLength % 4 !== 0
    )
      throw new Error(`${where}.${name}: expected x and y as bytes`);
    // Copies (also aligned).
    const labels = new Int32Array(new Uint8Array(y).buffer);
    const values = new Float32Array(new Uint8Array(x).buffer.slice(0, x.byteLength));
    if (values.length !== labels.length * perSample)
      throw new Error(
        `${where}.${name}.x: ${values.length} values for ${labels.length} samples of ${perSample}`,
      );
    const bad = labels.findIndex((l) => l < 0 || l >= classes);
    if (bad >= 0)
      throw new Error(`${where}.${name}.y[${bad}]: label ${labels[bad]} is not in [0, ${classes})`);
    return { x: values, y: labels, size: labels.length };
  };
  return {
    id: client,
    shape: [shape[0], shape[1], shape[2]],
    classes,
    train: samples('train'),
    test: samples('test'),
  };
}
