/**
 * The one client loop of a federation, for Node (`fedslr join`, net/client.ts) and browser tabs
 * (web/worker.ts): everything a client does with its socket, whatever opens the socket and
 * wherever the client keeps its state and data.
 *
 * It connects, says `hello` (its id, token and last committed round), and gets the run's task
 * and the description of the data in `welcome`; on the first welcome `setup` gives it the task's
 * parts, the client's data and its state store, and a client host group (host.ts) answers the
 * server's messages one at a time from then on; a later welcome must bring the same task. When
 * the connection drops it reconnects after min(maxDelay, base * 2^(k-1)) * (0.5 + 0.5 u) ms, u
 * from a stream seeded by the client id, k the failed connections in a row (a connection that
 * was welcomed counts as the first), and gives up after `maxRetries` of them. It stops on the
 * server's final close codes (close_codes.ts): successfully when the run is done.
 */
import type { ClientData } from '../data/clients.js';
import { CLOSE, FINAL_CLOSES } from '../protocol/close_codes.js';
import {
  decodeToHost,
  encodeMessage,
  PROTOCOL_VERSION,
  type ShardSource,
  type ToHost,
  type ToServer,
} from '../protocol/messages.js';
import { Rng } from '../tensor/rng.js';
import type { ClientEvalRow } from './fleet.js';
import { HostGroup, type HostStateStore } from './host.js';
import type { Task, TaskParts } from './task.js';

/** Key of the reconnection jitter stream: Rng.derive(client, JITTER_STREAM). */
export const JITTER_STREAM = 0x6a697474;

/** WebSocket's readyState of an open socket (the same in browsers and the `ws` package). */
const OPEN = 1;

/**
 * The part of a WebSocket the loop uses: the browser's API, which the `ws` package's WebSocket
 * has too (addEventListener is a method, so either socket's own event types fit).
 */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'error' | 'close', listener: SocketListener): void;
}
/** An event of a socket: a message's `data`, a close's `code` and `reason`, an error's `message`. */
export type SocketListener = (ev: {
  type?: string;
  data?: unknown;
  code?: number;
  reason?: string;
  message?: string;
}) => void;

/** What a client is made of, once the server has said which run it takes part in. */
export interface ClientSetup {
  parts: TaskParts;
  data: ClientData;
  store: HostStateStore;
}

/** The last round whose commit the client applied (-1: none), kept where its state is. */
export interface CommittedRound {
  read(): Promise<number>;
  write(round: number): Promise<void>;
}

export interface RetryOptions {
  /** Failed connections in a row before giving up. */
  maxRetries: number;
  /** First and largest wait before reconnecting, ms. */
  retryBaseMs: number;
  retryMaxMs: number;
}

export interface ClientLoopOptions extends RetryOptions {
  url: string;
  client: number;
  token: string;
  /** Opens a socket to `url` (binary frames). */
  connect: (url: string) => SocketLike;
  /** Builds the client on the first welcome: throw a ClientLoopError when it cannot take part. */
  setup: (task: Task, data: ShardSource | undefined) => Promise<ClientSetup>;
  committed: CommittedRound;
  log: (e: ClientEvent) => void;
}

export type ClientEvent =
  | { type: 'connected'; url: string }
  /** Joined; `secure`: the run sums the clients' updates by secure aggregation. */
  | {
      type: 'welcome';
      clients: number;
      trainSamples: number;
      testSamples: number;
      secure: boolean;
    }
  | { type: 'message'; kind: ToHost['type']; round?: number }
  | { type: 'closed'; code: number; reason: string }
  | { type: 'retry'; inMs: number; failures: number }
  /** Bytes of the frames sent and received so far, over every connection. */
  | { type: 'traffic'; sent: number; received: number }
  /**
   * The client answered `round`'s `train`, `seconds` after it arrived: with its upload, or in a
   * secure round (`secure`) with its keys, the masked update following in the secure stages.
   */
  | { type: 'trained'; round: number; seconds: number; secure: boolean }
  /** The commit of `round` was applied: `mine` when it made this client's training committed. */
  | { type: 'committed'; round: number; mine: boolean }
  /** The client's scores after `round` rounds, as sent to the server. */
  | { type: 'evaluated'; round: number; row: ClientEvalRow };

/** The server ended this client's part in the run, or the client cannot take part. */
export class ClientLoopError extends Error {
  override name = 'ClientLoopError';
  /** The server's close code, when the server ended it. */
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
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

export function retryDelay(opts: RetryOptions, failures: number, rng: Rng): number {
  const full = Math.min(opts.retryMaxMs, opts.retryBaseMs * 2 ** (failures - 1));
  return Math.round(full * (0.5 + 0.5 * rng.uniform()));
}

/** Takes part in the run at `opts.url` until the server says it is done. */
export async function runClient(opts: ClientLoopOptions): Promise<void> {
  const jitter = Rng.derive(opts.client, JITTER_STREAM);
  const client = new LoopClient(opts);
  let failures = 0;
  for (;;) {
    const end = await client.session();
    if (end.fatal) throw end.fatal;
    if (end.code === CLOSE.done) return;
    if (FINAL_CLOSES.has(end.code))
      throw new ClientLoopError(
        `the server closed the connection (code ${end.code}): ${end.reason}`,
        end.code,
      );
    failures = end.welcomed ? 1 : failures + 1;
    if (failures > opts.maxRetries)
      throw new ClientLoopError(
        `gave up after ${opts.maxRetries} failed connection(s) in a row; the last: ${end.reason || `code ${end.code}`}`,
        end.code,
      );
    const inMs = retryDelay(opts, failures, jitter);
    opts.log({ type: 'retry', inMs, failures });
    await new Promise((r) => setTimeout(r, inMs));
  }
}

class LoopClient {
  private hosts: HostGroup | undefined;
  private task: string | undefined;
  private sent = 0;
  private received = 0;
  /** When the last `train` message arrived (performance.now(), ms). */
  private trainStart = 0;

  constructor(private readonly opts: ClientLoopOptions) {}

  /** One connection, from opening to closing. */
  session(): Promise<SessionEnd> {
    const { opts } = this;
    return new Promise((resolve) => {
      const ws = opts.connect(opts.url);
      ws.binaryType = 'arraybuffer';
      let chain = Promise.resolve();
      let welcomed = false;
      let fatal: Error | undefined;
      let lastError = '';
      const send = (m: ToServer) => {
        if (ws.readyState !== OPEN) return;
        const bytes = encodeMessage(m);
        ws.send(bytes);
        this.count(bytes.byteLength, 0);
        this.report(m);
      };
      ws.addEventListener('open', () => {
        opts.log({ type: 'connected', url: opts.url });
        chain = chain
          .then(async () =>
            send({
              v: PROTOCOL_VERSION,
              type: 'hello',
              clients: [opts.client],
              committed: await opts.committed.read(),
              token: opts.token,
            }),
          )
          .catch((err: Error) => {
            fatal = err;
            ws.close(1000, 'client cannot take part');
          });
      });
      ws.addEventListener('message', (ev) => {
        chain = chain
          .then(async () => {
            const m = this.decode(ev.data, send);
            if (!m) return;
            if (m.type === 'welcome') welcomed = true;
            await this.handle(m, send);
          })
          .catch((err: Error) => {
            fatal = err;
            ws.close(1000, 'client cannot take part');
          });
      });
      ws.addEventListener('error', (ev) => {
        lastError = ev.message ?? '';
      });
      ws.addEventListener('close', (ev) => {
        const code = ev.code ?? 1006;
        const why = (ev.reason ?? '') || lastError;
        opts.log({ type: 'closed', code, reason: why });
        // Whatever was being handled finishes first (its reply is dropped).
        void chain.then(() => resolve({ code, reason: why, welcomed, fatal }));
      });
    });
  }

  private count(sent: number, received: number): void {
    this.sent += sent;
    this.received += received;
    this.opts.log({ type: 'traffic', sent: this.sent, received: this.received });
  }

  /** Reports what a reply says about this client's progress. */
  private report(m: ToServer): void {
    const { log, client } = this.opts;
    if (m.type === 'update' || m.type === 'secagg-keys') {
      const seconds = (performance.now() - this.trainStart) / 1000;
      log({ type: 'trained', round: m.round, seconds, secure: m.type === 'secagg-keys' });
    } else if (m.type === 'committed')
      log({ type: 'committed', round: m.round, mine: m.clients.includes(client) });
    else if (m.type === 'metrics') log({ type: 'evaluated', round: m.round, row: m.row });
  }

  private decode(data: unknown, send: (m: ToServer) => void): ToHost | undefined {
    const bytes = toBytes(data);
    this.count(0, bytes?.byteLength ?? 0);
    try {
      if (!bytes) throw new Error('expected a binary MessagePack message, got text');
      return decodeToHost(bytes);
    } catch (err) {
      send({ v: PROTOCOL_VERSION, type: 'error', message: (err as Error).message });
      return undefined;
    }
  }

  private async handle(m: ToHost, send: (m: ToServer) => void): Promise<void> {
    this.opts.log({ type: 'message', kind: m.type, ...('round' in m ? { round: m.round } : {}) });
    if (m.type === 'train') this.trainStart = performance.now();
    if (m.type === 'welcome') return this.welcome(m.task, m.data);
    if (m.type === 'error') return;
    if (!this.hosts) {
      send({ v: PROTOCOL_VERSION, type: 'error', message: `${m.type} before welcome` });
      return;
    }
    await this.hosts.handle(m, send);
    if (m.type === 'commit') await this.opts.committed.write(m.round);
  }

  /** Builds the client host on the first welcome; a later one must bring the same task. */
  private async welcome(task: Task, data: ShardSource | undefined): Promise<void> {
    const key = JSON.stringify({ task, data });
    if (this.task !== undefined) {
      if (key !== this.task) throw new ClientLoopError('the server now runs a different task');
      return;
    }
    const client = await this.opts.setup(task, data);
    this.hosts = new HostGroup(client.parts, [client.data], client.store);
    this.task = key;
    this.opts.log({
      type: 'welcome',
      clients: task.numClients,
      trainSamples: client.data.train.size,
      testSamples: client.data.test.size,
      secure: task.secureAggregation?.enabled === true,
    });
  }
}

/** A binary frame's bytes (an ArrayBuffer, as binaryType asks, or a view); undefined for text. */
function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}
