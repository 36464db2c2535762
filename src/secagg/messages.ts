/**
 * The plain-data messages of one secure-aggregation round (Bonawitz et al., CCS 2017, fig. 4,
 * without the consistency check that only a malicious server needs), and their validation:
 * every message from the wire is checked for its round, ids and byte lengths before use.
 *
 *   client -> server  AdvertiseKeys     two public keys (share encryption, masking)
 *   server -> client  NeighbourKeys     the neighbours' public keys
 *   client -> server  SharedKeys        Shamir shares of its masking key and self-mask seed,
 *                                       one AES-GCM ciphertext per neighbour
 *   server -> client  ForwardedShares   the ciphertexts addressed to it
 *   client -> server  MaskedInput       quantized input + self-mask + pairwise masks, mod 2^32
 *   server -> client  UnmaskRequest     which of its neighbours survived and which dropped
 *   client -> server  UnmaskResponse    seed shares of survivors, key shares of the dropped
 */
import { SecAggError } from './errors.js';

export interface AdvertiseKeys {
  readonly round: number;
  readonly client: number;
  readonly encryptionKey: Uint8Array;
  readonly maskingKey: Uint8Array;
}

export interface NeighbourKeys {
  readonly round: number;
  readonly neighbours: readonly AdvertiseKeys[];
}

export interface SharedKeys {
  readonly round: number;
  readonly client: number;
  readonly shares: readonly { readonly to: number; readonly ciphertext: Uint8Array }[];
}

export interface ForwardedShares {
  readonly round: number;
  readonly shares: readonly { readonly from: number; readonly ciphertext: Uint8Array }[];
}

export interface MaskedInput {
  readonly round: number;
  readonly client: number;
  readonly masked: Uint32Array;
}

export interface UnmaskRequest {
  readonly round: number;
  /** Its neighbours (and itself) whose masked input the server holds: the committing set. */
  readonly survivors: readonly number[];
  /** Its neighbours that shared keys but sent no masked input. */
  readonly dropped: readonly number[];
}

export interface UnmaskResponse {
  readonly round: number;
  readonly client: number;
  readonly seedShares: readonly { readonly of: number; readonly share: Uint8Array }[];
  readonly keyShares: readonly { readonly of: number; readonly share: Uint8Array }[];
}

/** Throws a SecAggError naming `stage` (and `client`) unless `ok`. */
export function expect(ok: boolean, stage: string, reason: string, client?: number): asserts ok {
  if (!ok) throw new SecAggError(stage, reason, client);
}

export function isClientId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 2 ** 32;
}

export function expectBytes(
  value: unknown,
  length: number,
  stage: string,
  field: string,
  client?: number,
): asserts value is Uint8Array {
  expect(value instanceof Uint8Array, stage, `${field}: expected bytes`, client);
  expect(
    value.length === length,
    stage,
    `${field}: expected ${length} bytes, got ${value.length}`,
    client,
  );
}

/** Ids must be valid, distinct, and each in `allowed` (when given). */
export function expectIds(
  ids: readonly unknown[],
  stage: string,
  field: string,
  allowed?: ReadonlySet<number>,
  client?: number,
): asserts ids is readonly number[] {
  const seen = new Set<number>();
  for (const id of ids) {
    expect(isClientId(id), stage, `${field}: ${String(id)} is not a client id`, client);
    expect(!seen.has(id), stage, `${field}: client ${id} appears twice`, client);
    expect(
      allowed === undefined || allowed.has(id),
      stage,
      `${field}: client ${id} is not expected here`,
      client,
    );
    seen.add(id);
  }
}

/** Header authenticated with each encrypted share: round, sender, receiver (Uint32 big-endian). */
export function shareHeader(round: number, from: number, to: number): Uint8Array {
  const header = new Uint8Array(12);
  const view = new DataView(header.buffer);
  view.setUint32(0, round);
  view.setUint32(4, from);
  view.setUint32(8, to);
  return header;
}
