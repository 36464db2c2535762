/**
 * Exact MessagePack sizes of wire tensors, without building them: what `pack` of a dense or
 * low-rank tensor would occupy, so a sender can choose ranks against a byte budget before
 * computing any factor. A typed array packs as one `bin` item (header + raw bytes); everything
 * else in the record is small and packed once with empty arrays to measure it.
 */
import { pack } from './wire.js';

/** Bytes of a MessagePack `bin` item holding `n` bytes: bin8, bin16 or bin32 header + payload. */
export function binBytes(n: number): number {
  if (n < 2 ** 8) return 2 + n;
  if (n < 2 ** 16) return 3 + n;
  return 5 + n;
}

const EMPTY = new Float32Array(0);
const EMPTY_BIN = binBytes(0);

/** pack({kind: 'dense', shape, data}) for float32 data of the shape's size. */
export function denseTensorBytes(shape: readonly number[]): number {
  const size = shape.reduce((a, b) => a * b, 1);
  const skeleton = pack({ kind: 'dense', shape: [...shape], data: EMPTY }).byteLength;
  return skeleton - EMPTY_BIN + binBytes(4 * size);
}

/** pack of a LowRankTensor of the given matrix view and rank (left rows x rank, right rank x cols). */
export function lowRankTensorBytes(
  shape: readonly number[],
  rows: number,
  cols: number,
  rank: number,
): number {
  const skeleton = pack({
    kind: 'lowrank',
    shape: [...shape],
    rows,
    cols,
    rank,
    left: EMPTY,
    right: EMPTY,
  }).byteLength;
  return skeleton - 2 * EMPTY_BIN + binBytes(4 * rows * rank) + binBytes(4 * rank * cols);
}
