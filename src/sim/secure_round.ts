/**
 * The server's side of a round with secure aggregation (secagg/), for the round loop: the drawn
 * clients train and answer with their public keys; the stages of Bonawitz et al. (CCS 2017; a
 * SecAgg+ neighbour graph with `neighbours`) travel through the fleet as protocol messages; the
 * server part gets only the sum of the participants' parameters and their count:
 *
 *   sum_{i in U3} w_i = dequantize(sum_{i in U3} q(w_i - W^t_i)) + sum_{i in U3} W^t_i
 *
 * with W^t_i what client i was sent (decoded as it decodes it) and U3 the clients whose masked
 * input arrived, announced at unmasking: the ones whose states commit. A client lost after
 * sharing keys is left out of U3 and its masks are rebuilt from its key shares; one lost after
 * sending its masked input stays in. Fewer than `threshold` clients at any stage fails the round
 * (SecureAggregationFailed), committing nothing. Per coordinate, the sum is within
 * |U3| * 2 clip / (2^bits - 1) of the sum of the clipped updates (secagg/quantize.ts).
 */
import type { Download, UploadSum } from '../algorithms/types.js';
import { decodeParams } from '../codec/params.js';
import { pack, type WireParams, type WireTensor } from '../codec/wire.js';
import {
  PROTOCOL_VERSION,
  type SecureKeys,
  type SecureRound,
  type SecureToHost,
  type SecureToServer,
} from '../protocol/messages.js';
import type { ClientFleet, TrainJob } from '../runtime/fleet.js';
import { secureLayout } from '../runtime/secure_host.js';
import { SecAggError } from '../secagg/errors.js';
import { type SecureAggregationOptions, thresholdFor } from '../secagg/options.js';
import { SecAggServer } from '../secagg/server.js';
import { type ParamArrays, type ParamSpec, sizeOf } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import type { RunEvent } from './events.js';
import { type Totals, TrainingDiverged } from './simulate.js';

/** Key of the neighbour graph's shuffle: Rng.derive(seed, SECAGG_GRAPH_STREAM, round). */
export const SECAGG_GRAPH_STREAM = 0x67726170;

/** A secure round could not complete: too few clients at some stage, or a cohort too small. */
export class SecureAggregationFailed extends Error {
  override name = 'SecureAggregationFailed';
  constructor(
    /** The round (from 1). */
    readonly round: number,
    reason: string,
    /** Why each client that dropped out dropped out. */
    readonly failures: ReadonlyMap<number, string> = new Map(),
  ) {
    const why = [...failures].map(([c, f]) => `client ${c}: ${f}`).join('; ');
    super(`round ${round}: ${reason}${why ? ` (${why})` : ''}; nothing was committed`);
  }
}

export interface SecureCollected {
  /** U3 in drawn order: the clients in the sum, whose states commit. */
  accepted: number[];
  /** Sum of their last-epoch training losses. */
  lossSum: number;
  /** The sum of their parameters and their count: what the server part aggregates. */
  total: UploadSum;
  /** Seconds of the server's own secure-aggregation work (routing, unmasking). */
  secagg_s: number;
  /** Why each drawn client not in the sum is not. */
  failures: Map<number, string>;
}

/** One secure round after its downloads are made; counts its messages' bytes into `totals`. */
export async function* secureRound(
  fleet: ClientFleet,
  seed: number,
  spec: ParamSpec,
  round: number,
  lr: number,
  jobs: readonly TrainJob[],
  options: SecureAggregationOptions,
  totals: Totals,
): AsyncGenerator<RunEvent, SecureCollected> {
  const drawn = jobs.map((j) => j.client);
  const failures = new Map<number, string>();
  const fail = (reason: string) => new SecureAggregationFailed(round + 1, reason, failures);
  if (!fleet.secureStage) throw new Error('this client fleet cannot carry secure aggregation');
  const names = Object.keys(jobs[0]?.download.params ?? {});
  for (const j of jobs)
    if (Object.keys(j.download.params).join() !== names.join())
      throw new Error('secure aggregation: the clients of a round must be sent the same tensors');
  const layout = secureLayout(spec, names);
  const dimension = layout.reduce((n, p) => n + sizeOf(p.shape), 0);
  let threshold: number;
  try {
    threshold = thresholdFor(options, drawn.length);
  } catch (err) {
    throw fail((err as Error).message);
  }
  const secure: SecureRound = {
    threshold,
    clip: options.clip,
    quantizationBits: options.quantizationBits,
  };

  // Training: each client answers with its keys and statistics.
  const keys = new Map<number, SecureKeys>();
  const diverged = new Map<number, number>();
  for await (const reply of fleet.train(
    round,
    jobs.map((j) => ({ ...j, secure })),
  )) {
    const { client } = reply;
    if (!drawn.includes(client) || keys.has(client) || failures.has(client)) continue;
    if (diverged.has(client)) continue;
    if (!('keys' in reply)) {
      const reason = 'failure' in reply ? reply.failure : 'answered a secure round in the clear';
      failures.set(client, reason);
      yield { type: 'client-failed', round, client, reason };
      continue;
    }
    const k = reply.keys;
    totals.up_bytes += pack(k).byteLength;
    yield { type: 'client-done', round, client, loss: k.trainLoss, acc: k.trainAcc };
    if (Number.isFinite(k.trainLoss)) keys.set(client, k);
    else diverged.set(client, k.trainLoss);
  }
  const first = drawn.find((c) => diverged.has(c));
  if (first !== undefined) throw new TrainingDiverged(round + 1, first, diverged.get(first)!, lr);
  for (const client of drawn)
    if (!keys.has(client) && !failures.has(client)) failures.set(client, 'no answer');

  const server = new SecAggServer(
    {
      round,
      dimension,
      threshold,
      clip: options.clip,
      quantizationBits: options.quantizationBits,
    },
    { neighbours: options.neighbours, graphSeed: graphSeed(seed, round) },
  );
  let secagg_s = 0;
  const timed = async <T>(work: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await work();
    } catch (err) {
      if (err instanceof SecAggError) throw fail(err.message);
      throw err;
    } finally {
      secagg_s += (performance.now() - start) / 1000;
    }
  };
  let refusalsSeen = 0;
  /** Sends one stage's messages, yields its dropouts, returns the answers of type `type`. */
  async function* stage<T extends SecureToServer['type']>(
    type: T,
    messages: SecureToHost[],
  ): AsyncGenerator<RunEvent, Extract<SecureToServer, { type: T }>[]> {
    const answers: Extract<SecureToServer, { type: T }>[] = [];
    for (const m of messages) totals.down_bytes += pack(m).byteLength;
    for await (const r of fleet.secureStage!(round, messages)) {
      if ('failure' in r || r.answer.type !== type) {
        const reason = `secure aggregation, ${type}: ${'failure' in r ? r.failure : `answered '${r.answer.type}'`}`;
        failures.set(r.client, reason);
        yield { type: 'client-failed', round, client: r.client, reason };
        continue;
      }
      totals.up_bytes += pack(r.answer).byteLength;
      answers.push(r.answer as Extract<SecureToServer, { type: T }>);
    }
    return answers;
  }
  /** Yields the messages the server refused since the last call, as dropouts. */
  function* refusals(): Generator<RunEvent> {
    for (const r of server.refused.slice(refusalsSeen)) {
      if (r.client === undefined) continue;
      failures.set(r.client, r.reason);
      yield { type: 'client-failed', round, client: r.client, reason: r.reason };
    }
    refusalsSeen = server.refused.length;
  }
  const head = (client: number) => ({ v: PROTOCOL_VERSION, round, attempt: 0, client }) as const;

  const advertised = [...keys.values()].map((k) => ({
    round,
    client: k.client,
    encryptionKey: k.encryptionKey,
    maskingKey: k.maskingKey,
  }));
  const neighbourKeys = await timed(() => server.advertiseKeys(advertised));
  yield* refusals();
  const shared = yield* stage(
    'secagg-shared',
    [...neighbourKeys].map(([client, n]) => ({
      ...head(client),
      type: 'secagg-neighbours' as const,
      neighbours: n.neighbours.map(({ client, encryptionKey, maskingKey }) => ({
        client,
        encryptionKey,
        maskingKey,
      })),
    })),
  );
  const forwarded = await timed(() => server.shareKeys(shared));
  yield* refusals();
  const masked = yield* stage(
    'secagg-masked',
    [...forwarded].map(([client, f]) => ({
      ...head(client),
      type: 'secagg-forwarded' as const,
      shares: [...f.shares],
    })),
  );
  totals.up_params += masked.length * dimension;
  const requests = await timed(() => server.maskedInputs(masked));
  yield* refusals();
  const unmasked = yield* stage(
    'secagg-unmasked',
    [...requests].map(([client, r]) => ({
      ...head(client),
      type: 'secagg-unmask' as const,
      survivors: [...r.survivors],
      dropped: [...r.dropped],
    })),
  );
  const result = await timed(() => server.unmask(unmasked));
  yield* refusals();

  const inSum = new Set(result.participants);
  const accepted = drawn.filter((c) => inSum.has(c));
  // The dequantized sum of the updates plus what each participant was sent (decoded once per
  // distinct download: a sum-only algorithm sends all of them the same).
  const sum = Float64Array.from(result.sum);
  for (const { download, count } of distinct(jobs.filter((j) => inSum.has(j.client)))) {
    const sent = decodeParams(download.params, spec);
    let at = 0;
    for (const p of layout) {
      const data = sent[p.name]!.data;
      for (let i = 0; i < data.length; i++) sum[at + i] = sum[at + i]! + count * data[i]!;
      at += data.length;
    }
  }
  const params: ParamArrays = {};
  let at = 0;
  for (const p of layout) {
    const size = sizeOf(p.shape);
    params[p.name] = { shape: [...p.shape], data: Float32Array.from(sum.subarray(at, at + size)) };
    at += size;
  }
  return {
    accepted,
    lossSum: accepted.reduce((s, c) => s + keys.get(c)!.trainLoss, 0),
    total: { count: accepted.length, params },
    secagg_s,
    failures,
  };
}

/** 32 bytes of the graph stream of (seed, round): the graph is public, only its shuffle. */
function graphSeed(seed: number, round: number): Uint8Array {
  const rng = Rng.derive(seed, SECAGG_GRAPH_STREAM, round);
  return new Uint8Array(Uint32Array.from({ length: 8 }, () => rng.nextU32()).buffer);
}

/** The jobs' downloads, each distinct one once with how many jobs carry it (same arrays: same). */
function distinct(jobs: readonly TrainJob[]): { download: Download; count: number }[] {
  const arrays = (t: WireTensor): ArrayLike<number>[] =>
    t.kind === 'dense'
      ? [t.data]
      : t.kind === 'lowrank'
        ? [t.left, t.right]
        : [t.indices, t.values];
  const same = (a: WireParams, b: WireParams) =>
    Object.keys(a).every((k) => {
      const [x, y] = [arrays(a[k]!), b[k] ? arrays(b[k]) : []];
      return x.length === y.length && x.every((v, i) => v === y[i]);
    });
  const groups: { download: Download; count: number }[] = [];
  for (const { download } of jobs) {
    const group = groups.find((g) => same(g.download.params, download.params));
    if (group) group.count++;
    else groups.push({ download, count: 1 });
  }
  return groups;
}
