/**
 * An evaluation in which some clients did not answer (a federation's fleet leaves out clients
 * gone or late at its deadline): the summaries are over the clients that answered, the record
 * says how many did, and the per-client arrays hold null for the others. With every client
 * answering, nothing of this shows.
 */
import { describe, expect, it } from 'vitest';
import type { Download } from '../algorithms/types.js';
import type { ClientData } from '../data/clients.js';
import type { ClientEvalRow, ClientFleet } from '../runtime/fleet.js';
import { Rng } from '../tensor/rng.js';
import { parseConfig } from './config.js';
import { InProcessFleet } from './fleet_local.js';
import { setup } from './setup.js';
import { evaluateAll, initialState } from './simulate.js';
import { summarize } from './stats.js';
import { MemoryStore } from './store.js';

const SHAPE = [2, 2, 1] as const;

function clientsData(): ClientData[] {
  const rng = new Rng(5);
  const samples = (n: number) => ({
    x: Float32Array.from({ length: n * 4 }, () => rng.normal()),
    y: Int32Array.from({ length: n }, () => rng.int(3)),
    size: n,
  });
  return [20, 30, 25, 35].map((testSize, id) => ({
    id,
    train: samples(10),
    test: samples(testSize),
    shape: SHAPE,
    classes: 3,
  }));
}

/** A fleet that answers for every client but `silent`. */
class SilentFleet implements ClientFleet {
  constructor(
    private readonly inner: ClientFleet,
    private readonly silent: ReadonlySet<number>,
  ) {}
  roster = () => this.inner.roster();
  train: ClientFleet['train'] = (round, jobs) => this.inner.train(round, jobs);
  commit: ClientFleet['commit'] = (round, accepted) => this.inner.commit(round, accepted);
  close = () => this.inner.close();
  async evaluate(
    round: number,
    download: Download,
    evalGlobal: boolean,
    clients: readonly number[],
  ): Promise<(ClientEvalRow | undefined)[]> {
    const rows = await this.inner.evaluate(round, download, evalGlobal, clients);
    return rows.map((r, i) => (this.silent.has(clients[i]!) ? undefined : r));
  }
}

describe('an evaluation with clients missing', () => {
  it('summarizes the clients that answered, counts them, and marks the others null', async () => {
    const config = parseConfig({
      seed: 3,
      rounds: 1,
      clients: { count: 4 },
      algorithm: { name: 'fedslr' },
      model: { name: 'mlp', hidden: [4] },
      train: { backend: 'wasm' },
      runtime: { workers: 1 },
    });
    const { sim } = await setup(config, { clients: clientsData() });
    const st = initialState(sim);
    const fleet = new InProcessFleet(sim, new MemoryStore(sim.algorithm.client.codec));
    const all = await evaluateAll(sim, st, fleet, 0, () => 0);
    const some = await evaluateAll(sim, st, new SilentFleet(fleet, new Set([1, 3])), 0, () => 0);
    await fleet.close();

    expect(all.record.clients_evaluated).toBeUndefined();
    expect(Object.keys(all.record)).not.toContain('clients_evaluated');
    expect(some.record.clients_evaluated).toBe(2);
    expect(some.clients.n).toEqual([20, null, 25, null]);
    const answered = [0, 2];
    for (const model of ['global', 'personal'] as const) {
      const full = all.clients[model]!;
      expect(some.clients[model]).toEqual({
        acc: [full.acc[0], null, full.acc[2], null],
        loss: [full.loss[0], null, full.loss[2], null],
      });
      expect(some.record[model]).toEqual(
        summarize(
          answered.map((c) => full.acc[c]!),
          answered.map((c) => full.loss[c]!),
          [20, 25],
        ),
      );
      expect(some.record[model]).not.toEqual(all.record[model]);
    }
    expect(some.record.personal_density).toBeDefined();

    const none = await evaluateAll(
      sim,
      st,
      new SilentFleet(
        new InProcessFleet(sim, new MemoryStore(sim.algorithm.client.codec)),
        new Set([0, 1, 2, 3]),
      ),
      0,
      () => 0,
    );
    expect(none.record.clients_evaluated).toBe(0);
    expect(none.record.global).toBeUndefined();
    expect(none.record.personal).toBeUndefined();
    expect(none.clients.n).toEqual([null, null, null, null]);
  });
});

describe('an evaluation of clients with discarded local results', () => {
  it('sums their counts into the record, and says nothing while there are none', async () => {
    const config = parseConfig({
      seed: 3,
      rounds: 1,
      clients: { count: 4 },
      algorithm: { name: 'fedslr', discardNonFinite: true },
      model: { name: 'mlp', hidden: [4] },
      train: { backend: 'wasm' },
      runtime: { workers: 1 },
    });
    const { sim } = await setup(config, { clients: clientsData() });
    const st = initialState(sim);
    const store = new MemoryStore(sim.algorithm.client.codec);
    const fleet = new InProcessFleet(sim, store);
    const none = await evaluateAll(sim, st, fleet, 0, () => 0);
    expect(Object.keys(none.record)).not.toContain('discarded');
    for (const [client, discarded] of [
      [1, 2],
      [3, 1],
    ] as const) {
      const state = sim.algorithm.client.initClient(client, sim.init) as Record<string, unknown>;
      store.set(client, { ...state, discarded });
    }
    const some = await evaluateAll(sim, st, fleet, 0, () => 0);
    await fleet.close();
    expect(some.record.discarded).toBe(3);
  });
});
