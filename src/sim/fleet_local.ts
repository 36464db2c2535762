/**
 * The simulator's client fleets and what they share. Every client of the simulation is hosted by
 * a `HostGroup` (runtime/host.ts) that answers protocol messages: in the main thread here, in
 * worker threads in pool.ts. Committed client states live in the simulation's client store
 * (memory or disk), which checkpoints read; the fleet notes which ones changed since the last
 * checkpoint.
 */
import type { Download } from '../algorithms/types.js';
import {
  PROTOCOL_VERSION,
  type SecureToHost,
  type SecureToServer,
  type ToHost,
  type ToServer,
} from '../protocol/messages.js';
import type {
  ClientEvalRow,
  ClientFleet,
  StageReply,
  TrainJob,
  TrainReply,
} from '../runtime/fleet.js';
import { HostGroup, type HostStateStore } from '../runtime/host.js';
import type { Simulation } from './simulate.js';
import type { ClientStore } from './store.js';

/**
 * The simulator fleets' attempt id, the same for every draw of a round: their clients never go
 * missing, so a round is drawn again only when too few of a draw's uploads were usable, and a client
 * drawn again trains from its committed state, replacing its pending one.
 */
export const FIRST_ATTEMPT = 0;

/** A simulator fleet: a client fleet whose committed states are in a client store. */
export interface SimFleet extends ClientFleet {
  readonly workers: number;
  /** Committed client states (checkpoints read them). */
  readonly store: ClientStore;
  /** Clients whose committed state changed since the last checkpoint (the caller clears it). */
  readonly dirty: Set<number>;
}

/** A client store seen by hosts: loads and saves, noting what changed. */
export class StoreStates implements HostStateStore {
  readonly dirty = new Set<number>();

  constructor(readonly store: ClientStore) {}

  async load(client: number): Promise<unknown> {
    return this.store.get(client);
  }

  /** Saves at once (a worker's saves are then applied before its `committed` is read). */
  save(client: number, state: unknown): Promise<void> {
    this.store.set(client, state);
    this.dirty.add(client);
    return Promise.resolve();
  }
}

export function trainMessage(round: number, job: TrainJob): ToHost {
  return {
    v: PROTOCOL_VERSION,
    type: 'train',
    round,
    attempt: FIRST_ATTEMPT,
    client: job.client,
    download: job.download,
    ...(job.secure ? { secure: job.secure } : {}),
  };
}

export function commitMessage(round: number, accepted: readonly number[]): ToHost {
  return {
    v: PROTOCOL_VERSION,
    type: 'commit',
    round,
    attempt: FIRST_ATTEMPT,
    accepted: [...accepted],
  };
}

export function evaluateMessage(
  round: number,
  download: Download,
  evalGlobal: boolean,
  clients: readonly number[],
): ToHost {
  return {
    v: PROTOCOL_VERSION,
    type: 'evaluate',
    round,
    attempt: FIRST_ATTEMPT,
    clients: [...clients],
    evalGlobal,
    download,
  };
}

/** A host's answer to `train` as the round loop takes it: an upload, or why there is none. */
export function trainReply(client: number, m: ToServer): TrainReply {
  if (m.type === 'update' && m.client === client) return { client, upload: m.upload };
  if (m.type === 'secagg-keys' && m.client === client) return { client, keys: m };
  if (m.type === 'error') return { client, failure: m.message };
  return { client, failure: `answered '${m.type}' to a train message` };
}

/** A host's answer to a secure round's stage message as the round takes it. */
export function stageReply(client: number, m: ToServer): StageReply {
  const answers = ['secagg-shared', 'secagg-masked', 'secagg-unmasked'];
  if (answers.includes(m.type) && 'client' in m && m.client === client)
    return { client, answer: m as SecureToServer };
  if (m.type === 'error') return { client, failure: m.message };
  return { client, failure: `answered '${m.type}' to a secure-aggregation stage` };
}

/** Rows of `metrics` messages in the order of `clients`; throws if a host refused or skipped one. */
export function rowsOf(clients: readonly number[], replies: readonly ToServer[]): ClientEvalRow[] {
  const rows = new Map<number, ClientEvalRow>();
  for (const m of replies) {
    if (m.type === 'metrics') rows.set(m.client, m.row);
    else if (m.type === 'error') throw new Error(`evaluation refused: ${m.message}`);
  }
  return clients.map((c) => {
    const row = rows.get(c);
    if (!row) throw new Error(`evaluation: no metrics for client ${c}`);
    return row;
  });
}

/** What the simulator's fleets share: the store their hosts commit to, and the roster. */
export abstract class StoreFleet {
  constructor(
    protected readonly states: StoreStates,
    private readonly ids: readonly number[],
  ) {}

  get store(): ClientStore {
    return this.states.store;
  }

  get dirty(): Set<number> {
    return this.states.dirty;
  }

  roster(): readonly number[] {
    return this.ids;
  }
}

/** Every client hosted in this thread, answering messages as they are handed over. */
export class InProcessFleet extends StoreFleet implements SimFleet {
  readonly workers = 1;
  private readonly hosts: HostGroup;

  constructor(sim: Simulation, store: ClientStore) {
    const states = new StoreStates(store);
    super(
      states,
      sim.clients.map((c) => c.id),
    );
    this.hosts = new HostGroup(sim, sim.clients, states);
  }

  private async exchange(m: ToHost): Promise<ToServer[]> {
    const replies: ToServer[] = [];
    await this.hosts.handle(m, (r) => replies.push(r));
    return replies;
  }

  async *train(round: number, jobs: readonly TrainJob[]): AsyncGenerator<TrainReply> {
    for (const job of jobs) {
      const [reply] = await this.exchange(trainMessage(round, job));
      yield trainReply(job.client, reply!);
    }
  }

  async *secureStage(round: number, messages: readonly SecureToHost[]): AsyncGenerator<StageReply> {
    for (const m of messages) {
      if (m.round !== round)
        throw new Error(`secureStage: a message of round ${m.round} in ${round}`);
      const [reply] = await this.exchange({ ...m, attempt: FIRST_ATTEMPT });
      yield stageReply(m.client, reply!);
    }
  }

  async commit(round: number, accepted: readonly number[]): Promise<void> {
    await this.exchange(commitMessage(round, accepted));
  }

  async evaluate(
    round: number,
    download: Download,
    evalGlobal: boolean,
    clients: readonly number[],
  ): Promise<ClientEvalRow[]> {
    return rowsOf(
      clients,
      await this.exchange(evaluateMessage(round, download, evalGlobal, clients)),
    );
  }

  async close(): Promise<void> {}
}
