/**
 * Secure aggregation through the runtime: the round loop, the in-process fleet and the client
 * hosts exchange the secagg stages as protocol messages, and the server part gets only the sum.
 * A fleet wrapper loses chosen clients' answers at chosen stages (a client gone after sharing its
 * keys, or after sending its masked input).
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Download } from '../src/algorithms/types.js';
import { decodeParams } from '../src/codec/params.js';
import { joinFederation } from '../src/net/client.js';
import { type FederationEvent, FederationServer, maxMessageBytes } from '../src/net/server.js';
import { TokenBook } from '../src/net/tokens.js';
import type { SecureToHost } from '../src/protocol/messages.js';
import type {
  ClientEvalRow,
  ClientFleet,
  StageReply,
  TrainJob,
  TrainReply,
} from '../src/runtime/fleet.js';
import { quantizationStep } from '../src/secagg/quantize.js';
import { type ConfigInput, parseConfig } from '../src/sim/config.js';
import type { RunEvent } from '../src/sim/events.js';
import { InProcessFleet } from '../src/sim/fleet_local.js';
import { createFleet } from '../src/sim/pool.js';
import { SecureAggregationFailed } from '../src/sim/secure_round.js';
import { setup } from '../src/sim/setup.js';
import { initialState, type Simulation, simulate } from '../src/sim/simulate.js';
import { MemoryStore } from '../src/sim/store.js';
import { initBackend } from '../src/tensor/backend.js';
import type { ParamArrays } from '../src/tensor/params.js';

beforeAll(async () => {
  await initBackend('wasm', { threads: 2 });
});

const CLIP = 1;
const BITS = 16;

const config = (extra: Partial<ConfigInput> = {}, secure = true) =>
  parseConfig({
    seed: 5,
    rounds: 3,
    evalEvery: 3,
    clients: { count: 6, sampling: { kind: 'count', k: 5 } },
    algorithm: { name: 'fedslr' },
    data: { dataset: 'mnist', partition: { kind: 'iid' }, testPerClient: 40 },
    model: { name: 'mlp', hidden: [16] },
    train: { backend: 'wasm', epochs: 1, batchSize: 50 },
    runtime: { workers: 1 },
    ...(secure ? { secureAggregation: { enabled: true, clip: CLIP, quantizationBits: BITS } } : {}),
    ...extra,
  });

/**
 * The in-process fleet, but chosen clients' answers are lost: at training (`train`) or at a
 * secure stage (the answer type it would have sent); it also notes every plain upload's largest
 * |w_i - W^t|.
 */
class LossyFleet implements ClientFleet {
  largestUpdate = 0;
  constructor(
    private readonly inner: InProcessFleet,
    private readonly lost: ReadonlyMap<number, string>,
  ) {}
  roster() {
    return this.inner.roster();
  }
  async *train(round: number, jobs: readonly TrainJob[]): AsyncGenerator<TrainReply> {
    const sent = new Map(jobs.map((j) => [j.client, j.download]));
    for await (const r of this.inner.train(round, jobs)) {
      if (this.lost.get(r.client) === 'train') yield { client: r.client, failure: 'lost' };
      else {
        if ('upload' in r) this.note(sent.get(r.client)!, r.upload.params);
        yield r;
      }
    }
  }
  async *secureStage(round: number, messages: readonly SecureToHost[]) {
    for await (const r of this.inner.secureStage(round, messages)) {
      const lost = 'answer' in r && this.lost.get(r.client) === r.answer.type;
      yield (lost ? { client: r.client, failure: 'lost' } : r) as StageReply;
    }
  }
  commit(round: number, accepted: readonly number[]) {
    return this.inner.commit(round, accepted);
  }
  evaluate(
    round: number,
    download: Download,
    evalGlobal: boolean,
    clients: readonly number[],
  ): Promise<(ClientEvalRow | undefined)[]> {
    return this.inner.evaluate(round, download, evalGlobal, clients);
  }
  close() {
    return this.inner.close();
  }
  private note(download: Download, upload: Download['params']) {
    const W = decodeParams(download.params);
    const w = decodeParams(upload);
    for (const [k, a] of Object.entries(w))
      a.data.forEach((v, i) => {
        this.largestUpdate = Math.max(this.largestUpdate, Math.abs(v - W[k]!.data[i]!));
      });
  }
}

interface Outcome {
  W: ParamArrays;
  events: RunEvent[];
  store: MemoryStore<unknown>;
  fleet: LossyFleet;
  round: number;
  error?: unknown;
}

async function run(sim: Simulation, lost: Record<number, string> = {}): Promise<Outcome> {
  const st = initialState(sim);
  const store = new MemoryStore(sim.algorithm.client.codec);
  const fleet = new LossyFleet(
    new InProcessFleet(sim, store),
    new Map(Object.entries(lost).map(([c, s]) => [Number(c), s])),
  );
  const events: RunEvent[] = [];
  let error: unknown;
  try {
    for await (const e of simulate(sim, st, () => 0, fleet)) events.push(e);
  } catch (err) {
    error = err;
  }
  const W = sim.algorithm.server.global(st.server)!;
  return { W, events, store, fleet, round: st.round, error };
}

const maxAbsDiff = (a: ParamArrays, b: ParamArrays) =>
  Math.max(
    ...Object.entries(a).map(([k, x]) =>
      x.data.reduce((m, v, i) => Math.max(m, Math.abs(v - b[k]!.data[i]!)), 0),
    ),
  );

/**
 * The per-coordinate bound on W^{t+1} after one FedSLR round from the same W^t and uploads: the
 * mean's error is below n D / n = D (quantize.ts), D's update adds alpha n D / (alpha N), and
 * the SVT is a proximal map (non-expansive in Frobenius norm, so per matrix the error is at most
 * sqrt(size) times the per-coordinate one).
 */
function firstRoundBound(sim: Simulation, participants: number): number {
  const D = quantizationStep({ clip: CLIP, bits: BITS });
  const perCoordinate = D * (1 + participants / sim.config.clients.count);
  const largest = Math.max(...sim.model.spec.map((p) => p.shape.reduce((a, b) => a * b, 1)));
  return perCoordinate * Math.sqrt(largest);
}

const personalAccs = (events: RunEvent[]) => {
  const ev = events.filter((e) => e.type === 'eval').at(-1);
  if (ev?.type !== 'eval') throw new Error('no evaluation');
  return ev.clients.personal!.acc as number[];
};

describe('secure aggregation in the round loop', () => {
  it('ends a FedSLR run within quantization noise of the same run in the clear', async () => {
    const before = tf.memory().numTensors;
    const plain = await run((await setup(config({}, false))).sim);
    const { sim } = await setup(config());
    const secure = await run(sim);
    expect(plain.error).toBeUndefined();
    expect(secure.error).toBeUndefined();
    // No coordinate of an update was clipped: the only difference is the rounding.
    expect(plain.fleet.largestUpdate).toBeLessThan(CLIP);
    const ends = secure.events.filter((e) => e.type === 'round-end');
    expect(ends.map((e) => e.type === 'round-end' && e.clients)).toEqual([5, 5, 5]);
    expect(ends.every((e) => e.type === 'round-end' && e.secagg_s! > 0)).toBe(true);
    const wDiff = maxAbsDiff(secure.W, plain.W);
    const accs = [personalAccs(plain.events), personalAccs(secure.events)];
    const accDiff = Math.max(...accs[0]!.map((a, i) => Math.abs(a - accs[1]![i]!)));
    console.log(
      `secure vs clear after 3 rounds: max |dW| = ${wDiff.toExponential(2)}, ` +
        `max |d personal acc| = ${accDiff} (one test image = ${1 / 40}); ` +
        `largest |w_i - W^t| = ${plain.fleet.largestUpdate.toFixed(3)}`,
    );
    expect(wDiff).toBeGreaterThan(0);
    expect(wDiff).toBeLessThan(1e-3);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is within the quantization bound of the clear run after one round, and repeats itself', async () => {
    const one = { rounds: 1, evalEvery: 1 };
    const plain = await run((await setup(config(one, false))).sim);
    const { sim } = await setup(config(one));
    const [a, b] = [await run(sim), await run(sim)];
    expect(maxAbsDiff(a.W, plain.W)).toBeLessThanOrEqual(firstRoundBound(sim, 5));
    // Fresh keys and masks each time, the same rounding seeds: the same sum, bit for bit.
    expect(maxAbsDiff(a.W, b.W)).toBe(0);
  });

  it('recovers a client lost after sharing keys and one lost after sending its masked input', async () => {
    const one = { rounds: 1, evalEvery: 1 };
    const { sim } = await setup(config(one));
    const drawn = await run(sim);
    const start = drawn.events.find((e) => e.type === 'round-start');
    if (start?.type !== 'round-start') throw new Error('no round');
    const [afterKeys, afterMasked] = start.clients as [number, number];
    const secure = await run(sim, {
      [afterKeys]: 'secagg-masked',
      [afterMasked]: 'secagg-unmasked',
    });
    expect(secure.error).toBeUndefined();
    const end = secure.events.find((e) => e.type === 'round-end');
    expect(end?.type === 'round-end' && end.clients).toBe(4);
    const failed = secure.events.flatMap((e) => (e.type === 'client-failed' ? [e.client] : []));
    expect(failed.sort()).toEqual([afterKeys, afterMasked].sort());
    // The one lost after its masked input is in the sum: its state commits; the other's does not.
    expect(secure.store.get(afterMasked)).toBeDefined();
    expect(secure.store.get(afterKeys)).toBeUndefined();
    // The same as a clear round whose uploads are those four.
    const plain = await run((await setup(config(one, false))).sim, { [afterKeys]: 'train' });
    expect(maxAbsDiff(secure.W, plain.W)).toBeLessThanOrEqual(firstRoundBound(sim, 4));
  });

  it('fails a round below the threshold with a clear message and commits nothing', async () => {
    const { sim } = await setup(config({ rounds: 1, evalEvery: 1 }));
    const drawn = await run(sim);
    const start = drawn.events.find((e) => e.type === 'round-start');
    if (start?.type !== 'round-start') throw new Error('no round');
    const lost = Object.fromEntries(start.clients.slice(0, 3).map((c) => [c, 'secagg-masked']));
    const r = await run(sim, lost);
    expect(r.error).toBeInstanceOf(SecureAggregationFailed);
    expect((r.error as Error).message).toMatch(
      /round 1: secure aggregation, masked input collection: only 2 clients sent masked input; threshold 3.*nothing was committed/,
    );
    expect(r.round).toBe(0);
    expect(r.W).toEqual(sim.init);
    for (const c of start.clients) expect(r.store.get(c)).toBeUndefined();
  });

  it('refuses an algorithm that needs more than the sum, naming it and the option', () => {
    expect(() => config({ algorithm: { name: 'fedavg' } })).toThrow(
      /secureAggregation\.enabled: .*fedavg needs more: .*weighted: false makes it sum-only/,
    );
    expect(() => config({ algorithm: { name: 'scaffold' } })).toThrow(/scaffold needs more/);
    expect(() => config({ algorithm: { name: 'fedavg', weighted: false } })).not.toThrow();
    expect(() => config({ clients: { count: 6, sampling: { kind: 'count', k: 2 } } })).toThrow(
      /clients\.sampling\.k: secure aggregation .* needs at least 3 participants per round, not 2/,
    );
  });

  it('has a host refuse a stage without an open secure round, and a train in the clear or with other parameters', async () => {
    const { sim } = await setup(config({ rounds: 1 }));
    const fleet = new InProcessFleet(sim, new MemoryStore(sim.algorithm.client.codec));
    const unmask: SecureToHost = {
      v: 1,
      type: 'secagg-unmask',
      round: 0,
      attempt: 0,
      client: 1,
      survivors: [1, 2],
      dropped: [],
    };
    const replies: StageReply[] = [];
    for await (const r of fleet.secureStage(0, [unmask])) replies.push(r);
    expect(replies).toEqual([{ client: 1, failure: 'no secure round 0 attempt 0 is open here' }]);
    // Nor does it upload in the clear, or with another clip, when the run aggregates securely.
    const download = sim.algorithm.server.download(sim.algorithm.server.initServer(sim.init), 0, 1);
    const answers: TrainReply[] = [];
    const secure = { threshold: 3, clip: 2, quantizationBits: BITS };
    for await (const r of fleet.train(0, [
      { client: 1, download },
      { client: 2, download, secure },
    ]))
      answers.push(r);
    expect(answers).toEqual([
      {
        client: 1,
        failure:
          'secure aggregation: this run aggregates securely; refusing to upload in the clear',
      },
      { client: 2, failure: "secure aggregation: clip 2 is not the run's 1" },
    ]);
  });

  it('refuses the worker pool, naming runtime.workers', async () => {
    const { sim } = await setup(config({ runtime: { workers: 2 } }));
    await expect(createFleet(sim, new MemoryStore(sim.algorithm.client.codec))).rejects.toThrow(
      /runtime\.workers: .*set runtime\.workers: 1/,
    );
  });

  it('runs over the WebSocket federation to the same bits as in process', async () => {
    const cfg = config({
      rounds: 2,
      evalEvery: 2,
      clients: { count: 4, sampling: { kind: 'count', k: 4 } },
    });
    const { sim } = await setup(cfg);
    const inProcess = await run(sim);
    const clients = [0, 1, 2, 3];
    const token = (c: number) => `secure-aggregation-test-${c}`;
    const log: FederationEvent[] = [];
    const server = await FederationServer.listen({
      host: '127.0.0.1',
      port: 0,
      tokens: TokenBook.parse(clients.map((c) => `${c} ${token(c)}`).join('\n'), 'tokens'),
      task: sim.task,
      data: {
        dataset: 'mnist',
        partition: cfg.data.partition,
        testPerClient: cfg.data.testPerClient,
      },
      deadlineSeconds: 60,
      helloSeconds: 10,
      heartbeatSeconds: 0,
      maxPayload: maxMessageBytes(sim.model.spec),
      minClients: clients.length,
      rounds: cfg.rounds,
      log: (e) => log.push(e),
    });
    const states = mkdtempSync(join(tmpdir(), 'fedslr-secagg-'));
    const joined = clients.map((client) =>
      joinFederation({
        url: server.url,
        client,
        token: token(client),
        dataset: 'mnist',
        stateDir: join(states, `client-${client}`),
        backend: 'wasm',
        maxRetries: 2,
        retryBaseMs: 100,
        retryMaxMs: 500,
        log: () => {},
      }).catch((err: Error) => err),
    );
    const st = initialState(sim);
    const events: RunEvent[] = [];
    try {
      await server.waitForClients(clients.length);
      for await (const e of simulate(sim, st, () => 0, server)) events.push(e);
    } finally {
      await server.close();
    }
    expect(await Promise.all(joined)).toEqual(clients.map(() => undefined));
    expect(log.filter((e) => e.type === 'rejected')).toEqual([]);
    expect(
      events.filter((e) => e.type === 'round-end').map((e) => e.type === 'round-end' && e.clients),
    ).toEqual([4, 4]);
    expect(maxAbsDiff(sim.algorithm.server.global(st.server)!, inProcess.W)).toBe(0);
    expect(personalAccs(events)).toEqual(personalAccs(inProcess.events));
  });
});
