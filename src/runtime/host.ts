/**
 * Client hosts: where clients live. A `ClientHost` is one client: its data, the algorithm's
 * client part, its random streams and its state store. A `HostGroup` answers protocol messages
 * (protocol/messages.ts) for the clients it hosts: many in a worker thread or the simulator's
 * main thread, one in a network client. Plain data in and out, no Node built-ins.
 *
 * State is two-phase: what training produces stays pending in the host (and in the store, when
 * it keeps pending states across restarts) until the server's `commit` says the client's upload
 * was aggregated; then it becomes the committed state in the store. A dropped upload, or a commit
 * that never comes, leaves the committed state as it was.
 */
import type { Download } from '../algorithms/types.js';
import { lrAt } from '../algorithms/types.js';
import { decodeParams } from '../codec/params.js';
import type { ClientData } from '../data/clients.js';
import { downloadProblem } from '../protocol/checks.js';
import {
  type ErrorMessage,
  PROTOCOL_VERSION,
  type SecureRound,
  type SecureToHost,
  type ToHost,
  type ToServer,
} from '../protocol/messages.js';
import { SecAggError } from '../secagg/errors.js';
import type { SecureAggregationOptions } from '../secagg/options.js';
import type { ParamArrays, Params } from '../tensor/params.js';
import { disposeParams, fromArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, evaluate, toTensors } from '../train/loop.js';
import type { ClientEvalRow } from './fleet.js';
import { SecureClientRound } from './secure_host.js';
import type { TaskParts } from './task.js';

/** Keys of a client's random streams: Rng.derive(seed, STREAM, round, client). */
export const CLIENT_STREAM = 0x636c6e74;
export const EVAL_STREAM = 0x6576616c;

/** A trained state waiting for the commit of its round and attempt. */
export interface PendingState {
  round: number;
  attempt: number;
  state: unknown;
}

/** Where a host keeps its clients' committed states (memory, a disk directory, IndexedDB...). */
export interface HostStateStore {
  /** The client's committed state; undefined when it has none yet (never aggregated). */
  load(client: number): Promise<unknown>;
  save(client: number, state: unknown): Promise<void>;
  /**
   * Keeps a client's pending state where a restarted host finds it (undefined: drops it). A
   * store without these leaves pending states in the host's memory only.
   */
  savePending?(client: number, pending: PendingState | undefined): Promise<void>;
  loadPending?(client: number): Promise<PendingState | undefined>;
}

type TrainMessage = Extract<ToHost, { type: 'train' }>;
type Reply = (m: ToServer) => void;

/** What a client decodes an evaluation download to: undefined when nothing is shared. */
export function sentParams(parts: TaskParts, download: Download): ParamArrays | undefined {
  return Object.keys(download.params).length
    ? decodeParams(download.params, parts.model.spec)
    : undefined;
}

/**
 * A client's personal model after `round` rounds, from its state and `sent` (the decoded
 * evaluation download); null when the algorithm has no personal model.
 */
export async function personalModelOf(
  parts: TaskParts,
  data: ClientData,
  round: number,
  sent: ParamArrays | undefined,
  state: unknown,
): Promise<ParamArrays | null> {
  const train = toTensors(data.train.x, data.train.y, data.shape);
  try {
    return await parts.algorithm.client.personalModel(state, sent, {
      client: data.id,
      round,
      lr: lrAt(parts.task.train, round),
      data: train,
      rng: Rng.derive(parts.task.seed, EVAL_STREAM, round, data.id),
    });
  } finally {
    disposeData(train);
  }
}

export class ClientHost {
  private pending: PendingState | undefined;
  /** The open secure round, from its `train` to its unmasking. */
  private secure: SecureClientRound | undefined;

  constructor(
    private readonly parts: TaskParts,
    readonly data: ClientData,
    private readonly store: HostStateStore,
  ) {}

  get id(): number {
    return this.data.id;
  }

  /** The committed state, or the initial one for a client never aggregated. */
  async state(): Promise<unknown> {
    return (
      (await this.store.load(this.id)) ??
      this.parts.algorithm.client.initClient(this.id, this.parts.init)
    );
  }

  /** Trains on a `train` message; the new state waits for `commit`. */
  async train(m: TrainMessage): Promise<ToServer> {
    const { round, attempt } = m;
    const problem =
      downloadProblem(m.download, round, this.parts.model.spec) ??
      secureMismatch(this.parts.task.secureAggregation, m.secure);
    if (problem)
      return {
        v: PROTOCOL_VERSION,
        type: 'error',
        round,
        attempt,
        client: this.id,
        message: problem,
      };
    const start = await this.state();
    const data = toTensors(this.data.train.x, this.data.train.y, this.data.shape);
    try {
      const result = await this.parts.algorithm.client.train(m.download, start, {
        client: this.id,
        round,
        lr: lrAt(this.parts.task.train, round),
        data,
        rng: Rng.derive(this.parts.task.seed, CLIENT_STREAM, round, this.id),
      });
      this.pending = { round, attempt, state: result.state };
      await this.store.savePending?.(this.id, this.pending);
      this.secure = undefined;
      if (m.secure) {
        const started = await this.guard(m, () =>
          SecureClientRound.start(
            this.parts.model.spec,
            this.parts.task.seed,
            { ...m, secure: m.secure! },
            result.upload,
          ),
        );
        if ('message' in started) return started;
        this.secure = started.round;
        return started.keys;
      }
      return {
        v: PROTOCOL_VERSION,
        type: 'update',
        round,
        attempt,
        client: this.id,
        upload: result.upload,
      };
    } finally {
      disposeData(data);
    }
  }

  /** Answers a secure round's stage message (an `error` when it is not for the open round). */
  async secureAnswer(m: SecureToHost): Promise<ToServer> {
    const open = this.secure;
    if (!open || open.round !== m.round || open.attempt !== m.attempt)
      return errorAbout(m, `no secure round ${m.round} attempt ${m.attempt} is open here`);
    // Unmasking is its last stage: its keys and update (a model's size) are not kept after it.
    if (m.type === 'secagg-unmask') this.secure = undefined;
    return this.guard(m, () => open.answer(m));
  }

  /** `work`'s answer, or an `error` about `m` when secure aggregation refuses (SecAggError). */
  private async guard<T>(
    m: { round: number; attempt: number; client: number },
    work: () => Promise<T>,
  ): Promise<T | ErrorMessage> {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof SecAggError)) throw err;
      return errorAbout(m, err.message);
    }
  }

  /**
   * Applies the server's commit for (round, attempt): the pending state becomes the committed
   * one when this client is among `accepted`, and is dropped otherwise (as is a pending state of
   * any other round or attempt). Returns whether a state was committed.
   */
  async commit(round: number, attempt: number, accepted: ReadonlySet<number>): Promise<boolean> {
    const p = this.pending ?? (await this.store.loadPending?.(this.id));
    this.pending = undefined;
    this.secure = undefined;
    const ok =
      p !== undefined && p.round === round && p.attempt === attempt && accepted.has(this.id);
    // Committed first, then the pending copy dropped: a crash in between commits it again.
    if (ok) await this.store.save(this.id, p.state);
    if (p) await this.store.savePending?.(this.id, undefined);
    return ok;
  }

  /**
   * The client's scores after `round` rounds: the global model (`globalTensors`, when there is
   * one to evaluate) and its personal model built from `sent`, on its test set.
   */
  async evaluate(
    round: number,
    sent: ParamArrays | undefined,
    globalTensors: Params | undefined,
  ): Promise<ClientEvalRow> {
    const { algorithm, model } = this.parts;
    const state = await this.state();
    const test = toTensors(this.data.test.x, this.data.test.y, this.data.shape);
    const row: ClientEvalRow = { n: this.data.test.size };
    try {
      if (globalTensors) {
        const r = await evaluate(model, globalTensors, test);
        row.global = { acc: r.acc, loss: r.loss };
      }
      if (algorithm.hasPersonal) {
        const pm = await personalModelOf(this.parts, this.data, round, sent, state);
        if (pm) {
          const pt = fromArrays(pm);
          try {
            const r = await evaluate(model, pt, test);
            row.personal = { acc: r.acc, loss: r.loss };
          } finally {
            disposeParams(pt);
          }
        }
        if (algorithm.client.personalDensity) row.density = algorithm.client.personalDensity(state);
        const discarded = algorithm.client.discardedStages?.(state) ?? 0;
        if (discarded > 0) row.discarded = discarded;
      }
    } finally {
      disposeData(test);
    }
    return row;
  }
}

/**
 * What is wrong with a `train` message's secure parameters against the task's: a client of a
 * secure run never uploads in the clear, and takes part only with the agreed clip, bits and
 * threshold. Null when they agree.
 */
function secureMismatch(
  agreed: SecureAggregationOptions | undefined,
  asked: SecureRound | undefined,
): string | null {
  if (!agreed?.enabled)
    return asked ? 'secure aggregation: this run does not aggregate securely' : null;
  if (!asked)
    return 'secure aggregation: this run aggregates securely; refusing to upload in the clear';
  const wrong = (['clip', 'quantizationBits', 'threshold'] as const).find(
    (k) => agreed[k] !== undefined && agreed[k] !== asked[k],
  );
  return wrong
    ? `secure aggregation: ${wrong} ${asked[wrong]} is not the run's ${agreed[wrong]}`
    : null;
}

function errorAbout(
  m: { round: number; attempt: number; client: number },
  message: string,
): ErrorMessage {
  const { round, attempt, client } = m;
  return { v: PROTOCOL_VERSION, type: 'error', round, attempt, client, message };
}

/** The hosts of some clients, answering the server's messages for them. */
export class HostGroup {
  private readonly hosts = new Map<number, ClientHost>();

  constructor(
    private readonly parts: TaskParts,
    clients: readonly ClientData[],
    store: HostStateStore,
  ) {
    for (const c of clients) this.hosts.set(c.id, new ClientHost(parts, c, store));
  }

  /** Answers one message through `reply` (in order); resolves when it is fully handled. */
  async handle(m: ToHost, reply: Reply): Promise<void> {
    switch (m.type) {
      case 'train': {
        const host = this.hosts.get(m.client);
        if (!host) return reply(this.refusal(m, `client ${m.client} is not hosted here`));
        return reply(await host.train(m));
      }
      case 'secagg-neighbours':
      case 'secagg-forwarded':
      case 'secagg-unmask': {
        const host = this.hosts.get(m.client);
        if (!host) return reply(this.refusal(m, `client ${m.client} is not hosted here`));
        return reply(await host.secureAnswer(m));
      }
      case 'commit': {
        const accepted = new Set(m.accepted);
        const committed: number[] = [];
        for (const host of this.hosts.values())
          if (await host.commit(m.round, m.attempt, accepted)) committed.push(host.id);
        return reply({
          v: PROTOCOL_VERSION,
          type: 'committed',
          round: m.round,
          attempt: m.attempt,
          clients: committed,
        });
      }
      case 'evaluate':
        return this.evaluate(m, reply);
      case 'welcome':
        return reply(this.refusal(m, 'welcome: this host already has its task'));
      case 'error':
        // The server's account of something it refused; the host has nothing to undo.
        return;
    }
  }

  private async evaluate(m: Extract<ToHost, { type: 'evaluate' }>, reply: Reply): Promise<void> {
    const problem = downloadProblem(m.download, m.round, this.parts.model.spec);
    if (problem) return reply(this.refusal(m, problem));
    const sent = sentParams(this.parts, m.download);
    const globalTensors = m.evalGlobal && sent ? fromArrays(sent) : undefined;
    try {
      for (const client of m.clients) {
        const host = this.hosts.get(client);
        if (!host) {
          reply({ ...this.refusal(m, `client ${client} is not hosted here`), client });
          continue;
        }
        reply({
          v: PROTOCOL_VERSION,
          type: 'metrics',
          round: m.round,
          attempt: m.attempt,
          client,
          row: await host.evaluate(m.round, sent, globalTensors),
        });
      }
    } finally {
      if (globalTensors) disposeParams(globalTensors);
    }
  }

  private refusal(m: ToHost, message: string): Extract<ToServer, { type: 'error' }> {
    const about =
      'round' in m && m.round !== undefined
        ? { round: m.round, attempt: m.attempt, ...('client' in m ? { client: m.client } : {}) }
        : {};
    return { v: PROTOCOL_VERSION, type: 'error', message, ...about };
  }
}
