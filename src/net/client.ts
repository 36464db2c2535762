/**
 * A network client (`fedslr join`): one client of a federation served by `fedslr serve`.
 *
 * The socket side (hello, welcome, answering through a client host group, reconnection with
 * backoff and jitter, the end of the run) is the client loop that browser tabs run too
 * (runtime/client_loop.ts). What is Node's here: the `ws` socket (with a CA for wss://), the
 * state directory (state_dir.ts) and the data: the client rebuilds its shard of the named
 * dataset the way the simulator does (same seed, partition and test draw: data/clients.ts
 * `federate`), so a fault-free federation computes what the simulator computes.
 */
import WebSocket from 'ws';
import { type ClientData, type FederatedData, federate } from '../data/clients.js';
import { loadDataset } from '../data/load.js';
import { datasetMeta } from '../data/meta.js';
import { type OwnDataOptions, readOwnData } from '../data/own.js';
import type { ShardSource } from '../protocol/messages.js';
import {
  type ClientEvent,
  ClientLoopError,
  type ClientSetup,
  type RetryOptions,
  runClient,
} from '../runtime/client_loop.js';
import { buildTask, type Task } from '../runtime/task.js';
import { parseConfig } from '../sim/config.js';
import { type BackendName, initBackend } from '../tensor/backend.js';
import { InputError } from '../util/errors.js';
import { StateDir } from './state_dir.js';

export { JITTER_STREAM, retryDelay } from '../runtime/client_loop.js';

export interface JoinOptions extends RetryOptions {
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
  log: (e: JoinEvent) => void;
}

export type JoinEvent = ClientEvent;

/** The server ended this client's part in the run, or the client cannot take part. */
export const JoinError = ClientLoopError;

/** Takes part in the run at `opts.url` until the server says it is done. */
export async function joinFederation(opts: JoinOptions): Promise<void> {
  const dir = new StateDir(opts.stateDir, opts.client);
  const client = new NodeClient(opts, dir);
  await runClient({
    ...opts,
    connect: (url) =>
      new WebSocket(url, { handshakeTimeout: 10_000, ...(opts.ca ? { ca: opts.ca } : {}) }),
    setup: (task, data) => client.setup(task, data),
    committed: {
      read: async () => dir.lastCommitted(),
      write: async (round) => dir.setLastCommitted(round),
    },
  });
}

class NodeClient {
  constructor(
    private readonly opts: JoinOptions,
    private readonly dir: StateDir,
  ) {}

  async setup(task: Task, data: ShardSource | undefined): Promise<ClientSetup> {
    if (!data) throw new JoinError('the server sent no description of the data');
    this.dir.adopt(task);
    const clientData = await this.shard(task, data);
    await initBackend(this.opts.backend, { threads: 1 });
    const parts = await buildTask(task);
    return { parts, data: clientData, store: this.dir.store(parts.algorithm.client.codec) };
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

/** Federated datasets of this process, by what determines them: clients in one process share one. */
const federations = new Map<string, Promise<FederatedData>>();
