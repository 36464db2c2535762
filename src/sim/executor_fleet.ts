/**
 * The simulator's client fleet: every client of the simulation, trained and evaluated by an
 * executor (the main thread or worker threads), with their states in a client store. New states
 * wait in `pending` until the round loop commits the clients whose uploads it aggregated.
 */
import type { ClientEvalRow, ClientFleet, TrainJob, TrainReply } from '../runtime/fleet.js';
import type { Executor } from './executor.js';
import type { Simulation } from './simulate.js';
import type { ClientStore } from './store.js';

export class ExecutorFleet implements ClientFleet {
  /** Clients whose committed state changed since the last checkpoint. */
  readonly dirty = new Set<number>();
  private readonly pending = new Map<number, unknown>();
  private readonly ids: readonly number[];

  constructor(
    sim: Simulation,
    private readonly executor: Executor,
    /** Committed client states (checkpoints read them). */
    readonly store: ClientStore,
  ) {
    this.ids = sim.clients.map((c) => c.id);
  }

  get workers(): number {
    return this.executor.workers;
  }

  roster(): readonly number[] {
    return this.ids;
  }

  async *train(round: number, jobs: readonly TrainJob[]): AsyncGenerator<TrainReply> {
    this.pending.clear();
    const tasks = jobs.map((j) => ({
      client: j.client,
      round,
      download: j.download,
      state: this.store.get(j.client),
    }));
    for await (const { index, outcome } of this.executor.train(tasks)) {
      const client = jobs[index]!.client;
      this.pending.set(client, outcome.state);
      yield { client, upload: outcome.upload };
    }
  }

  async commit(_round: number, accepted: readonly number[]): Promise<void> {
    for (const client of accepted) {
      if (!this.pending.has(client))
        throw new Error(`commit: client ${client} has no pending state this round`);
      this.store.set(client, this.pending.get(client));
      this.dirty.add(client);
    }
    this.pending.clear();
  }

  evaluate(
    round: number,
    download: TrainJob['download'],
    evalGlobal: boolean,
    clients: readonly number[],
  ): Promise<ClientEvalRow[]> {
    return this.executor.evaluate({
      round,
      download,
      evalGlobal,
      clients,
      state: (c) => this.store.get(c),
    });
  }

  close(): Promise<void> {
    return this.executor.close();
  }
}
