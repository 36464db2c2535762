/**
 * A client's side of one secure round, in its host. After local training the client's input to
 * the secure sum is its update x_i = w_i - W^t over the tensors it was sent (in the model spec's
 * order, flattened): w_i its upload, W^t its decoded download. It answers `train` with its public
 * keys and training statistics (`secagg-keys`), then each stage message with its
 * `SecAggClient`'s answer; the parameters themselves never leave it unmasked.
 *
 * The stochastic rounding of the quantizer is driven by an AES-CTR stream whose 32-byte seed
 * comes from (seed, SECAGG_ROUNDING_STREAM, round, client), so a secure run repeats itself like
 * any other; the masks and keys are fresh cryptographic randomness (the unmasked sum never
 * depends on them).
 */
import type { Download, Upload } from '../algorithms/types.js';
import { decodeParams } from '../codec/params.js';
import {
  PROTOCOL_VERSION,
  type SecureKeys,
  type SecureRound,
  type SecureToHost,
  type ToServer,
} from '../protocol/messages.js';
import { SecAggClient } from '../secagg/client.js';
import { SecAggError } from '../secagg/errors.js';
import type { ParamSpec } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';

/** Key of the quantizer's rounding seeds: Rng.derive(seed, STREAM, round, client). */
export const SECAGG_ROUNDING_STREAM = 0x726e6464;

/** The names of `sent` in the spec's order: the layout of a secure round's vectors. */
export function secureLayout(spec: ParamSpec, sent: readonly string[]): ParamSpec {
  const names = new Set(sent);
  return spec.filter((p) => names.has(p.name));
}

/** 32 bytes of the rounding stream of (seed, round, client). */
export function roundingSeed(seed: number, round: number, client: number): Uint8Array {
  const rng = Rng.derive(seed, SECAGG_ROUNDING_STREAM, round, client);
  return new Uint8Array(Uint32Array.from({ length: 8 }, () => rng.nextU32()).buffer);
}

/** w_i - W^t over the tensors of `download`, flattened in the spec's order. */
export function updateVector(spec: ParamSpec, download: Download, upload: Upload): Float32Array {
  const layout = secureLayout(spec, Object.keys(download.params));
  const sent = decodeParams(download.params, spec);
  const trained = decodeParams(upload.params, spec);
  const out = new Float32Array(layout.reduce((n, p) => n + (sent[p.name]?.data.length ?? 0), 0));
  let at = 0;
  for (const p of layout) {
    const w = trained[p.name];
    const W = sent[p.name]!;
    if (!w || w.data.length !== W.data.length)
      throw new SecAggError('update', `the upload lacks '${p.name}' or has another size`);
    for (let i = 0; i < W.data.length; i++) out[at + i] = w.data[i]! - W.data[i]!;
    at += W.data.length;
  }
  return out;
}

export class SecureClientRound {
  private constructor(
    readonly round: number,
    readonly attempt: number,
    private readonly client: SecAggClient,
    private readonly values: Float32Array,
  ) {}

  /** A client's secure round after training: its `secagg-keys` answer, and the round. */
  static async start(
    spec: ParamSpec,
    seed: number,
    m: { round: number; attempt: number; client: number; download: Download; secure: SecureRound },
    upload: Upload,
  ): Promise<{ round: SecureClientRound; keys: SecureKeys }> {
    if (upload.extra && Object.keys(upload.extra).length)
      throw new SecAggError('update', 'the upload carries extra tensors, which the sum does not');
    const values = updateVector(spec, m.download, upload);
    const client = new SecAggClient(
      m.client,
      {
        round: m.round,
        dimension: values.length,
        threshold: m.secure.threshold,
        clip: m.secure.clip,
        quantizationBits: m.secure.quantizationBits,
      },
      { roundingSeed: roundingSeed(seed, m.round, m.client) },
    );
    const advertised = await client.advertiseKeys();
    return {
      round: new SecureClientRound(m.round, m.attempt, client, values),
      keys: {
        v: PROTOCOL_VERSION,
        type: 'secagg-keys',
        round: m.round,
        attempt: m.attempt,
        client: m.client,
        encryptionKey: advertised.encryptionKey,
        maskingKey: advertised.maskingKey,
        numSamples: upload.numSamples,
        trainLoss: upload.trainLoss,
        trainAcc: upload.trainAcc,
      },
    };
  }

  /** The answer to one stage message (SecAggError: the stage refused it). */
  async answer(m: SecureToHost): Promise<ToServer> {
    const { round, attempt } = this;
    const head = { v: PROTOCOL_VERSION, round, attempt, client: this.client.id } as const;
    switch (m.type) {
      case 'secagg-neighbours': {
        const neighbours = m.neighbours.map((n) => ({ round, ...n }));
        const shared = await this.client.shareKeys({ round, neighbours });
        return { ...head, type: 'secagg-shared', shares: [...shared.shares] };
      }
      case 'secagg-forwarded': {
        const input = await this.client.maskedInput({ round, shares: m.shares }, this.values);
        return { ...head, type: 'secagg-masked', masked: input.masked };
      }
      case 'secagg-unmask': {
        const r = this.client.unmask({ round, survivors: m.survivors, dropped: m.dropped });
        return {
          ...head,
          type: 'secagg-unmasked',
          seedShares: [...r.seedShares],
          keyShares: [...r.keyShares],
        };
      }
    }
  }
}
