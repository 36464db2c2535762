/**
 * A network client (`fedslr join`): one client of a federation served by `fedslr serve`.
 *
 * It connects, says `hello` (its id, token and last committed round), and gets the run's task
 * and the description of the data in `welcome`. It rebuilds its shard of the named dataset the
 * way the simulator does (same seed, partition and test draw: data/clients.ts `federate`), so a
 * fault-free federation computes what the simulator computes. Its client host
 * (runtime/host.ts) answers the server's messages one at a time, keeping the committed state in
 * the state directory (state_dir.ts). When the connection drops it reconnects after
 * min(maxDelay, base * 2^(k-1)) * (0.5 + 0.5 u) ms, u from a stream seeded by the client id, k
 * the failed connections in a row, and gives up after `maxRetries` of them. It stops on the
 * server's final close codes (codes.ts): successfully when the run is done.
 */
import WebSocket, { type RawData } from 'ws';
import { type ClientData, type FederatedData, federate } from '../data/clients.js';
import { loadDataset } from '../data/load.js';
import { datasetMeta } from '../data/meta.js';
import { type OwnDataOptions, readOwnData } from '../data/own.js';
import {
  decodeToHost,
  encodeMessage,
  PROTOCOL_VERSION,
  type ShardSource,
  type ToHost,
  type ToServer,
} from '../protocol/messages.js';
import { HostGroup } from '../runtime/host.js';
import { buildTask, type Task } from '../runtime/task.js';
import { parseConfig } from '../sim/config.js';
import { type BackendName, initBackend } from '../tensor/backend.js';
import { Rng } from '../tensor/rng.js';
import { InputError } from '../util/errors.js';
import { CLOSE, FINAL_CLOSES } from './codes.js';
import { StateDir } from './state_dir.js';

/** Key of the reconnection jitter stream: Rng.derive(client, JITTER_STREAM). */
export const JITTER_STREAM = 0x6a697474;

export interface JoinOptions {
  url: string;
  client: number;
  token: string;
  /** The named dataset this client holds a shard of; the server's run must use the same. */
  dataset?: string;
  /** Instead of a shard of a named dataset: the client's own files (data/own.ts). */
  own?: OwnDataOptions;
  /** Where the dataset's files are looked up first. */
  dataDir?: string;
  /** The shard to take, as index/of; it must be the client id / the run's client count. */
  shard?: { index: number; of: number };
  stateDir: string;
  /** PEM certificates to trust for a wss:// server (one with a self-signed certificate). */
  ca?: string;
  backend: BackendName;
  /** Failed connections in a row before giving up. */
  maxRetries: number;
  /** First and largest wait before reconnecting, ms. */
  retryBaseMs: number;
  retryMaxMs: number;
  log: (e: JoinEvent) => void;
}

export type JoinEvent =
  | { type: 'connected'; url: string }
  | { type: 'welcome'; clients: number; trainSamples: number; testSamples: number }
  | { type: 'message'; kind: ToHost['type']; round?: number }
  | { type: 'closed'; code: number; reason: string }
  | { type: 'retry'; inMs: number; failures: number };

/** The server ended this client's part in the run, or the client cannot take part. */
export class JoinError extends Error {
  override name = 'JoinError';
}

/** How a connection ended. */
interface SessionEnd {
  code: number;
  reason: string;
  /** Whether the server welcomed the client (a good connection resets the retry count). */
  welcomed: boolean;
  /** A local failure that no reconnection would fix. */
  fatal?: Error;
}

export function retryDelay(opts: JoinOptions, failures: number, rng: Rng): number {
  const full = Math.min(opts.retryMaxMs, opts.retryBaseMs * 2 ** (failures - 1));
  return Math.round(full * (0.5 + 0.5 * rng.uniform()));
}

/** Takes part in the run at `opts.url` until the server says it is done. */
export async function joinFederation(opts: JoinOptions): Promise<void> {
  const dir = new StateDir(opts.stateDir, opts.client);
  const jitter = Rng.derive(opts.client, JITTER_STREAM);
  const client = new NetworkClient(opts, dir);
  let failures = 0;
  for (;;) {
    const end = await client.session();
    if (end.fatal) throw end.fatal;
    if (end.code === CLOSE.done) return;
    if (FINAL_CLOSES.has(end.code))
      throw new JoinError(`the server closed the connection (code ${end.code}): ${end.reason}`);
    failures = end.welcomed ? 1 : failures + 1;
    if (failures > opts.maxRetries)
      throw new JoinError(
        `gave up after ${opts.maxRetries} failed connection(s) in a row; the last: ${end.reason || `code ${end.code}`}`,
      );
    const inMs = retryDelay(opts, failures, jitter);
    opts.log({ type: 'retry', inMs, failures });
    await new Promise((r) => setTimeout(r, inMs));
  }
}

class NetworkClient {
  private hosts: HostGroup | undefined;
  private task: string | undefined;

  constructor(
    private readonly opts: JoinOptions,
    private readonly dir: StateDir,
  ) {}

  /** One connection, from opening to closing. */
  session(): Promise<SessionEnd> {
    const { opts } = this;
    return new Promise((resolve) => {
      const ws = new WebSocket(opts.url, {
        handshakeTimeout: 10_000,
        ...(opts.ca ? { ca: opts.ca } : {}),
      });
      let chain = Promise.resolve();
      let welcomed = false;
      let fatal: Error | undefined;
      let lastError = '';
      const send = (m: ToServer) => {
        if (ws.readyState === ws.OPEN) ws.send(encodeMessage(m));
      };
      ws.on('open', () => {
        opts.log({ type: 'connected', url: opts.url });
        send({
          v: PROTOCOL_VERSION,
          type: 'hello',
          clients: [opts.client],
          committed: this.dir.lastCommitted(),
          token: opts.token,
        });
      });
      ws.on('message', (data: RawData) => {
        chain = chain
          .then(async () => {
            const m = this.decode(data, send);
            if (!m) return;
            if (m.type === 'welcome') welcomed = true;
            await this.handle(m, send);
          })
          .catch((err: Error) => {
            fatal = err;
            ws.close(1000, 'client cannot take part');
          });
      });
      ws.on('error', (err) => {
        lastError = err.message;
      });
      ws.on('close', (code, reason) => {
        const why = reason.toString() || lastError;
        opts.log({ type: 'closed', code, reason: why });
        // Whatever was being handled finishes first (its reply is dropped).
        void chain.then(() => resolve({ code, reason: why, welcomed, fatal }));
      });
    });
  }

  private decode(data: RawData, send: (m: ToServer) => void): ToHost | undefined {
    const bytes = Array.isArray(data)
      ? Buffer.concat(data)
      : data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : data;
    try {
      return decodeToHost(bytes);
    } catch (err) {
      send({ v: PROTOCOL_VERSION, type: 'error', message: (err as Error).message });
      return undefined;
    }
  }

  private async handle(m: ToHost, send: (m: ToServer) => void): Promise<void> {
    this.opts.log({ type: 'message', kind: m.type, ...('round' in m ? { round: m.round } : {}) });
    if (m.type === 'welcome') return this.welcome(m.task, m.data);
    if (m.type === 'error') return;
    if (!this.hosts) {
      send({ v: PROTOCOL_VERSION, type: 'error', message: `${m.type} before welcome` });
      return;
    }
    await this.hosts.handle(m, send);
    if (m.type === 'commit') this.dir.setLastCommitted(m.round);
  }

  /** Builds the client host on the first welcome; a later one must bring the same task. */
  private async welcome(task: Task, data: ShardSource | undefined): Promise<void> {
    const key = JSON.stringify({ task, data });
    if (this.task !== undefined) {
      if (key !== this.task) throw new JoinError('the server now runs a different task');
      return;
    }
    if (!data) throw new JoinError('the server sent no description of the data');
    this.dir.adopt(task);
    const clientData = await this.shard(task, data);
    await backendOnce(this.opts.backend);
    const parts = await buildTask(task);
    const store = this.dir.store(parts.algorithm.client.codec);
    this.hosts = new HostGroup(parts, [clientData], store);
    this.task = key;
    this.opts.log({
      type: 'welcome',
      clients: task.numClients,
      trainSamples: clientData.train.size,
      testSamples: clientData.test.size,
    });
  }

  /**
   * This client's shard of the dataset, as the simulator computes it for the same run, or its
   * own files normalized as the run's dataset is.
   */
  private async shard(task: Task, data: ShardSource): Promise<ClientData> {
    const { opts } = this;
    if (opts.own) {
      const { dataset } = parseConfig({ data }, "the server's data section").data;
      const { inputShape, classes } = task.model;
      const { normalization } = datasetMeta(dataset);
      const target = { client: opts.client, seed: task.seed, shape: inputShape, classes };
      try {
        return await readOwnData(opts.own, { ...target, normalization });
      } catch (err) {
        throw new InputError((err as Error).message, { cause: err });
      }
    }
    if (data.dataset !== opts.dataset)
      throw new JoinError(`the run uses dataset '${data.dataset}'; --dataset is '${opts.dataset}'`);
    const index = opts.shard?.index ?? opts.client;
    const of = opts.shard?.of ?? task.numClients;
    if (index !== opts.client || of !== task.numClients)
      throw new InputError(
        `--shard ${index}/${of}: this run's client ${opts.client} holds shard ${opts.client}/${task.numClients}`,
      );
    const { dataset, partition, testPerClient } = parseConfig(
      { data },
      "the server's data section",
    ).data;
    if (partition.kind === 'file')
      throw new JoinError("the run's partition comes from a split file, which join cannot use yet");
    const key = JSON.stringify([dataset, opts.dataDir, task.numClients, task.seed, data]);
    let fed = federations.get(key);
    if (!fed) {
      fed = loadDataset({ name: dataset, dir: opts.dataDir }).then((splits) =>
        federate(splits, { clients: task.numClients, seed: task.seed, partition, testPerClient }),
      );
      federations.set(key, fed);
    }
    return (await fed).clients[opts.client]!;
  }
}

/** The tfjs backend of this process, set up once however many clients it hosts. */
let backend: Promise<string> | undefined;
function backendOnce(name: BackendName): Promise<string> {
  backend ??= initBackend(name, { threads: 1 });
  return backend;
}

/** Federated datasets of this process, by what determines them: clients in one process share one. */
const federations = new Map<string, Promise<FederatedData>>();
