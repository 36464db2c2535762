/**
 * The round loop with clients that fail: one drops out mid-round, one sends a malformed upload.
 * The round completes with the others, nothing of the two is aggregated, and their state stays at
 * its last committed value; a round with too few answers is drawn again (seeded), and when the
 * redraws run out the run stops with a message that says why.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { AggregateInput } from '../src/algorithms/types.js';
import type { ClientFleet, TrainJob, TrainReply } from '../src/runtime/fleet.js';
import { parseConfig } from '../src/sim/config.js';
import type { RunEvent } from '../src/sim/events.js';
import { InProcessFleet } from '../src/sim/fleet_local.js';
import { drawClients } from '../src/sim/sampling.js';
import { setup } from '../src/sim/setup.js';
import type { Simulation } from '../src/sim/simulate.js';
import {
  drawRound,
  initialState,
  SAMPLING_STREAM,
  simulate,
  TooFewParticipants,
} from '../src/sim/simulate.js';
import { MemoryStore } from '../src/sim/store.js';
import { initBackend } from '../src/tensor/backend.js';
import { Rng } from '../src/tensor/rng.js';

const config = parseConfig({
  seed: 3,
  rounds: 2,
  evalEvery: 2,
  clients: { count: 4, sampling: { kind: 'count', k: 3 } },
  algorithm: { name: 'fedslr' },
  data: {
    dataset: 'mnist',
    partition: { kind: 'dirichlet', alpha: 0.5, minSize: 10 },
    testPerClient: 20,
  },
  model: { name: 'mlp', hidden: [8] },
  train: { backend: 'wasm', epochs: 1, batchSize: 50 },
  runtime: { workers: 1 },
});

/** A fleet that passes everything to `inner`; the fault fleets below change what it trains. */
abstract class ForwardingFleet implements ClientFleet {
  constructor(readonly inner: InProcessFleet) {}

  roster() {
    return this.inner.roster();
  }

  abstract train(round: number, jobs: readonly TrainJob[]): AsyncGenerator<TrainReply>;

  commit(round: number, accepted: readonly number[]) {
    return this.inner.commit(round, accepted);
  }

  evaluate(...args: Parameters<ClientFleet['evaluate']>) {
    return this.inner.evaluate(...args);
  }

  close() {
    return this.inner.close();
  }
}

/**
 * A fleet whose clients all train, but in round `round` the first drawn client's answer is lost
 * and the second's upload arrives with a NaN in it.
 */
class FaultyFleet extends ForwardingFleet {
  dropped = -1;
  corrupted = -1;
  /** Committed state bytes of the two just before the faulty round (undefined: none yet). */
  before = new Map<number, Uint8Array | undefined>();

  constructor(
    inner: InProcessFleet,
    private readonly round: number,
  ) {
    super(inner);
  }

  async *train(round: number, jobs: readonly TrainJob[]): AsyncGenerator<TrainReply> {
    if (round === this.round) {
      this.dropped = jobs[0]!.client;
      this.corrupted = jobs[1]!.client;
      const { store } = this.inner;
      for (const c of [this.dropped, this.corrupted])
        this.before.set(c, store.ids().includes(c) ? store.encoded(c) : undefined);
    }
    for await (const reply of this.inner.train(round, jobs)) {
      if (reply.client === this.dropped && round === this.round) {
        yield { client: reply.client, failure: 'connection lost' };
      } else if (reply.client === this.corrupted && round === this.round && 'upload' in reply) {
        const params = { ...reply.upload.params };
        const [name, t] = Object.entries(params)[0]!;
        if (t.kind !== 'dense') throw new Error('expected a dense upload');
        const data = Float32Array.from(t.data);
        data[0] = Number.NaN;
        params[name] = { ...t, data };
        yield { client: reply.client, upload: { ...reply.upload, params } };
      } else yield reply;
    }
  }
}

/** A fleet whose `silent` clients never answer (as clients that stop answering mid-round). */
class SilentFleet extends ForwardingFleet {
  constructor(
    inner: InProcessFleet,
    private readonly silent: ReadonlySet<number>,
  ) {
    super(inner);
  }

  async *train(round: number, jobs: readonly TrainJob[]): AsyncGenerator<TrainReply> {
    yield* this.inner.train(
      round,
      jobs.filter((j) => !this.silent.has(j.client)),
    );
    for (const j of jobs)
      if (this.silent.has(j.client))
        yield { client: j.client, failure: 'no answer before the deadline' };
  }
}

/** The simulation with the server's aggregation recording which clients it folded in. */
function recording(sim: Simulation): { sim: Simulation; aggregated: number[][] } {
  const aggregated: number[][] = [];
  const { server } = sim.algorithm;
  const spy: Simulation = {
    ...sim,
    algorithm: {
      ...sim.algorithm,
      server: {
        ...server,
        codec: server.codec,
        aggregate(state: unknown, round: number, uploads: readonly AggregateInput[]) {
          aggregated.push(uploads.map((u) => u.client));
          return server.aggregate(state, round, uploads);
        },
      },
    },
  };
  return { sim: spy, aggregated };
}

beforeAll(async () => {
  await initBackend('wasm', { threads: 1 });
});

describe('round loop with failing clients', () => {
  it('completes a round without a dropped client and a malformed upload, keeping their committed state', async () => {
    const { sim: base } = await setup(config);
    const { sim, aggregated } = recording(base);
    const store = new MemoryStore(sim.algorithm.client.codec);
    const fleet = new FaultyFleet(new InProcessFleet(sim, store), 1);
    const st = initialState(sim);
    const events = [];
    for await (const e of simulate(sim, st, () => 0, fleet)) events.push(e);
    await fleet.close();

    expect(st.round).toBe(2);
    const failed = events.filter((e) => e.type === 'client-failed');
    expect(failed).toEqual([
      { type: 'client-failed', round: 1, client: fleet.dropped, reason: 'connection lost' },
      {
        type: 'client-failed',
        round: 1,
        client: fleet.corrupted,
        reason: expect.stringMatching(/^malformed upload: '.+' has a value that is not finite$/),
      },
    ]);
    const drawn = events.flatMap((e) => (e.type === 'round-start' ? [e.clients] : []));
    expect(aggregated[0]).toEqual(drawn[0]);
    expect(aggregated[1]).toEqual(
      drawn[1]!.filter((c) => c !== fleet.dropped && c !== fleet.corrupted),
    );
    expect(aggregated[1]).toHaveLength(1);
    const end = events.find((e) => e.type === 'round-end' && e.round === 1);
    expect(end).toMatchObject({ clients: 1 });
    // Their state is what it was before the round: trained, but never committed.
    for (const [c, bytes] of fleet.before) {
      if (bytes === undefined) expect(store.ids()).not.toContain(c);
      else expect(store.encoded(c)).toEqual(bytes);
    }
    // The evaluation still covers every client.
    const ev = events.find((e) => e.type === 'eval');
    expect(ev?.type === 'eval' && ev.clients.n).toHaveLength(4);
  });

  it('stops with a clear message when fewer than minParticipants answered', async () => {
    const { sim } = await setup(config);
    const store = new MemoryStore(sim.algorithm.client.codec);
    const fleet = new FaultyFleet(new InProcessFleet(sim, store), 0);
    const st = initialState(sim);
    let error: unknown;
    try {
      for await (const _ of simulate(sim, st, () => 0, fleet, { minParticipants: 2, redraws: 0 }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TooFewParticipants);
    expect((error as Error).message).toMatch(
      /^round 1: only 1 drawn client\(s\) answered with a usable upload, 2 needed \(client \d+: connection lost; client \d+: malformed upload: .*\)$/,
    );
    expect(st.round).toBe(0);
    expect(store.ids()).toEqual([]);
    await fleet.close();
  });

  it('draws a round again, seeded, without the client that stopped answering, and aggregates the redraw', async () => {
    const { sim: base } = await setup(config);
    const sampling = config.clients.sampling;
    // The client that stops answering: one of round 1's first draw.
    const first = drawClients(sampling, 4, Rng.derive(config.seed, SAMPLING_STREAM, 0));
    const silent = first[1]!;
    const run = async () => {
      const { sim, aggregated } = recording(base);
      const store = new MemoryStore(sim.algorithm.client.codec);
      const fleet = new SilentFleet(new InProcessFleet(sim, store), new Set([silent]));
      const st = initialState(sim);
      const events: RunEvent[] = [];
      for await (const e of simulate(sim, st, () => 0, fleet, { minParticipants: 3 }))
        events.push(e);
      await fleet.close();
      return { events, aggregated, st, store };
    };
    const { events, aggregated, st, store } = await run();
    expect(st.round).toBe(2);
    const round0 = events.filter((e) => 'round' in e && e.round === 0);
    const starts = round0.flatMap((e) => (e.type === 'round-start' ? [e.clients] : []));
    const others = [0, 1, 2, 3].filter((c) => c !== silent);
    expect(starts).toEqual([first, drawRound(sampling, others, config.seed, 0, 1)]);
    expect(starts[1]).toEqual(others);
    expect(round0.filter((e) => e.type === 'round-redraw')).toEqual([
      { type: 'round-redraw', round: 0, attempt: 1, uploads: 2, needed: 3 },
    ]);
    expect(aggregated[0]).toEqual(others);
    // Every round that drew the silent client was drawn again; none aggregated it.
    for (const a of aggregated) expect(a).not.toContain(silent);
    expect(store.ids()).not.toContain(silent);
    // The same seed and the same fault: the same draws, redraws included.
    const again = await run();
    const draws = (es: RunEvent[]) =>
      es.flatMap((e) => (e.type === 'round-start' ? [[e.round, ...e.clients]] : []));
    expect(draws(again.events)).toEqual(draws(events));
    expect(again.aggregated).toEqual(aggregated);
  });

  it('stops after the redraws with how many uploads arrived, how many were needed and why', async () => {
    const { sim } = await setup(config);
    const sampling = config.clients.sampling;
    const first = drawClients(sampling, 4, Rng.derive(config.seed, SAMPLING_STREAM, 0));
    // One client of the first draw and the one it left out never answer: the redraw (among the
    // three others) meets the second, and only two clients that did not fail are left.
    const silent = [first[0]!, [0, 1, 2, 3].find((c) => !first.includes(c))!];
    const store = new MemoryStore(sim.algorithm.client.codec);
    const fleet = new SilentFleet(new InProcessFleet(sim, store), new Set(silent));
    const st = initialState(sim);
    const redraws: RunEvent[] = [];
    let error: unknown;
    try {
      for await (const e of simulate(sim, st, () => 0, fleet, { minParticipants: 3 }))
        if (e.type === 'round-redraw') redraws.push(e);
    } catch (err) {
      error = err;
    }
    await fleet.close();
    expect(redraws).toHaveLength(1);
    expect(error).toBeInstanceOf(TooFewParticipants);
    expect((error as Error).message).toBe(
      `round 1: only 2 drawn client(s) answered with a usable upload, 3 needed, after 2 draws (client ${silent[1]}: no answer before the deadline); 2 connected client(s) left that did not fail this round`,
    );
    expect(st.round).toBe(0);
    expect(store.ids()).toEqual([]);
  });

  it('fails once the redraws are spent', async () => {
    const { sim } = await setup(config);
    const store = new MemoryStore(sim.algorithm.client.codec);
    const fleet = new SilentFleet(new InProcessFleet(sim, store), new Set([0, 1, 2, 3]));
    const st = initialState(sim);
    const events: RunEvent[] = [];
    const run = async () => {
      for await (const e of simulate(sim, st, () => 0, fleet, { minParticipants: 1, redraws: 0 }))
        events.push(e);
    };
    await expect(run()).rejects.toThrow(
      /^round 1: only 0 drawn client\(s\) answered with a usable upload, 1 needed \(client \d+: no answer/,
    );
    expect(events.filter((e) => e.type === 'round-redraw')).toEqual([]);
    await fleet.close();
  });
});
