/**
 * The server's side of a federation over WebSocket: a `ClientFleet` (runtime/fleet.ts) whose
 * clients are separate processes (`fedslr join`), one socket each, speaking the protocol of
 * protocol/messages.ts in binary frames.
 *
 * A connection's first frame must be a `hello` for one client with its token, within
 * `helloSeconds`; otherwise it is closed with a code of codes.ts and the reason. After that any
 * bad frame gets an `error` frame back and is logged; the connection and the run go on. The
 * roster is the connected clients (idle ones that miss a ping are disconnected); a round starts
 * only when at least `minClients` are connected. A drawn client answers `train` before the round's deadline or
 * fails ('no answer before the deadline'); an upload for another round or attempt, from a client
 * not drawn, for another client, or a second one, is refused. The last commit that aggregated a
 * client's upload is sent again when the client reconnects without it (its `hello` names its last
 * committed round).
 *
 * Before it sends a commit the server has its record (the last round committed and each client's
 * last commit that aggregated it) checkpointed with the round's state (`persist`, see
 * FleetDurability in sim/experiment.ts); a server resumed from that checkpoint (`saved`) sends
 * those commits again to the clients that did not apply them, so no client commits a round the
 * server's state does not include, nor misses one it does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { Download } from '../algorithms/types.js';
import { unpack } from '../codec/wire.js';

import {
  decodeToServer,
  encodeMessage,
  PROTOCOL_VERSION,
  type SecureToHost,
  type ShardSource,
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
import type { Task } from '../runtime/task.js';
import { type ParamSpec, paramCount } from '../tensor/params.js';
import { InputError } from '../util/errors.js';
import { CLOSE } from './codes.js';
import { ServerStats } from './observe.js';
import type { TokenBook } from './tokens.js';

/** What the server logs: connections, refusals (with reasons) and what it waits for. */
export type FederationEvent =
  | { type: 'listening'; url: string }
  | { type: 'waiting'; connected: number; needed: number }
  | { type: 'connected'; client: number; remote: string }
  /** An authenticated connection ended; the bytes of its frames, hello and welcome included. */
  | {
      type: 'disconnected';
      client: number;
      code: number;
      reason: string;
      sentBytes: number;
      receivedBytes: number;
    }
  /** A connection closed before or at its hello. */
  | { type: 'refused'; remote: string; code: number; reason: string; client?: number }
  /** A frame refused with an `error` frame; the connection stays open. */
  | { type: 'rejected'; client: number; reason: string }
  /** Clients that did not confirm a commit before the deadline. */
  | { type: 'commit-unconfirmed'; round: number; clients: number[] }
  /** Clients left out of the evaluation after `round` rounds: no metrics before the deadline. */
  | { type: 'eval-missing'; round: number; clients: number[] };

export interface FederationOptions {
  host: string;
  /** 0: any free port (see `url`). */
  port: number;
  tokens: TokenBook;
  task: Task;
  data: ShardSource;
  /** Seconds a drawn client has to answer `train`, and clients have for `evaluate` and `commit`. */
  deadlineSeconds: number;
  /** Seconds a new connection has to send its hello. */
  helloSeconds: number;
  /** Seconds between pings; a connection that misses one is ended (0: no pings). */
  heartbeatSeconds: number;
  /** PEM certificate chain and private key: serve wss:// (TLS) instead of ws://. */
  tls?: { cert: string; key: string };
  /** The largest frame accepted (see `maxMessageBytes`). */
  maxPayload: number;
  /** Clients connected before a round starts: the first, and each after a commit. */
  minClients: number;
  /** The round count of the run: closing after the last round tells clients the run is done. */
  rounds: number;
  /** Answers other HTTP requests first (the browser page, http.ts): true when it answered. */
  http?: (req: IncomingMessage, res: ServerResponse) => boolean;
  log: (e: FederationEvent) => void;
  /** Checkpoints the run with the server's record; called before each commit is sent. */
  persist?: (record: FleetRecord) => void;
  /** The record of the checkpoint a resumed run starts from. */
  saved?: unknown;
}

/**
 * What a server must remember across a restart: the last round committed (-1: none) and, as
 * [client, round, attempt], each client's last commit that aggregated its upload.
 */
export interface FleetRecord {
  lastCommitted: number;
  owed: [number, number, number][];
}

/** A saved fleet record, checked; throws naming what is wrong. */
export function readFleetRecord(saved: unknown): FleetRecord {
  const r = saved as Partial<FleetRecord> | null;
  const isInt = (x: unknown, min: number) => Number.isInteger(x) && (x as number) >= min;
  if (
    typeof r !== 'object' ||
    r === null ||
    !isInt(r.lastCommitted, -1) ||
    !Array.isArray(r.owed) ||
    !r.owed.every((e) => Array.isArray(e) && e.length === 3 && e.every((x) => isInt(x, 0)))
  )
    throw new InputError(
      "the checkpoint's fleet record: expected { lastCommitted: an integer from -1, owed: [client, round, attempt] triples of counts }",
    );
  return { lastCommitted: r.lastCommitted!, owed: r.owed };
}

/**
 * The largest message either side needs: four dense copies of the model (a download or upload
 * carries at most a model, its factors and an extra set of the same size) plus 1 MiB of margin.
 */
export function maxMessageBytes(spec: ParamSpec): number {
  return 4 * 4 * paramCount(spec) + (1 << 20);
}

/** A queue the train stream waits on. */
class Channel<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
    this.wake = undefined;
  }

  async next(): Promise<T> {
    while (!this.items.length) await new Promise<void>((r) => (this.wake = r));
    return this.items.shift()!;
  }
}

interface Connection {
  client: number;
  ws: WebSocket;
  /** Whether it answered the last ping. */
  alive: boolean;
  /** Why the server ended it, when it did. */
  ended?: { code: number; reason: string };
}

/** The open round: who was drawn, who still owes an answer, and where answers go. */
interface Training {
  round: number;
  attempt: number;
  drawn: ReadonlySet<number>;
  waiting: Set<number>;
  replies: Channel<TrainReply | StageReply>;
  /** What it collects: the round's training, or a stage of its secure aggregation. */
  stage: 'train' | 'secure';
}

interface Evaluating {
  round: number;
  attempt: number;
  waiting: Set<number>;
  rows: Map<number, ClientEvalRow>;
  send: (c: Connection) => void;
  settled: () => void;
}

interface Committing {
  round: number;
  attempt: number;
  waiting: Set<number>;
  settled: () => void;
}

/** Why a frame is refused, and the round and attempt it was about. */
interface Refusal {
  reason: string;
  about?: { round?: number; attempt?: number };
}

const remoteOf = (req: IncomingMessage) =>
  `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;

export class FederationServer implements ClientFleet {
  private readonly conns = new Map<number, Connection>();
  private readonly joinWaiters: (() => void)[] = [];
  private training: Training | undefined;
  private evaluating: Evaluating | undefined;
  private committing: Committing | undefined;
  /** Attempts so far of each round drawn (the loop draws a round once; a resumed run may again). */
  private readonly attempts = new Map<number, number>();
  private evaluations = 0;
  /** The last round committed (-1: none yet). */
  private lastCommitted = -1;
  /** Each client's last commit that aggregated its upload, sent again if it says it missed it. */
  private readonly owedCommits = new Map<number, { round: number; attempt: number }>();
  private readonly deadlineMs: number;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly bytes = new WeakMap<WebSocket, { sent: number; received: number }>();

  private constructor(
    private readonly wss: WebSocketServer,
    private readonly http: Server,
    private readonly stats: ServerStats,
    private readonly opts: FederationOptions,
    readonly url: string,
  ) {
    this.deadlineMs = opts.deadlineSeconds * 1000;
    if (opts.saved !== undefined) {
      const saved = readFleetRecord(opts.saved);
      this.lastCommitted = saved.lastCommitted;
      for (const [client, round, attempt] of saved.owed)
        this.owedCommits.set(client, { round, attempt });
    }
    wss.on('connection', (ws, req) => this.accept(ws, remoteOf(req)));
    if (opts.heartbeatSeconds > 0)
      this.heartbeat = setInterval(() => this.beat(), opts.heartbeatSeconds * 1000);
  }

  /**
   * Pings every connection, ending those that did not answer the last ping. A client that owes
   * an answer to `train` or `evaluate` is left to its deadline (training may keep its process
   * too busy to answer pings).
   */
  private beat(): void {
    for (const conn of this.conns.values()) {
      const busy =
        this.training?.waiting.has(conn.client) || this.evaluating?.waiting.has(conn.client);
      if (!conn.alive && !busy) {
        const reason = `no answer to a ping within ${this.opts.heartbeatSeconds} s`;
        conn.ended = { code: 1006, reason };
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  /** Listens on `opts.host`:`opts.port`; resolves once the port is open. */
  static async listen(opts: FederationOptions): Promise<FederationServer> {
    const stats = new ServerStats();
    let server: FederationServer | undefined;
    const answer = (req: IncomingMessage, res: ServerResponse) =>
      opts.http?.(req, res) ||
      stats.answer(req, res, { connected: server?.conns.size ?? 0, rounds: server?.rounds ?? 0 });
    const http = opts.tls ? createHttpsServer(opts.tls, answer) : createServer(answer);
    const wss = new WebSocketServer({ server: http, maxPayload: opts.maxPayload });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(opts.port, opts.host, resolve);
    });
    const { address, port } = http.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    const log = (e: FederationEvent) => {
      stats.count(e);
      opts.log(e);
    };
    const scheme = opts.tls ? 'wss' : 'ws';
    server = new FederationServer(
      wss,
      http,
      stats,
      { ...opts, log },
      `${scheme}://${host}:${port}`,
    );
    log({ type: 'listening', url: server.url });
    return server;
  }

  /** Rounds committed so far. */
  private get rounds(): number {
    return this.lastCommitted + 1;
  }

  /** Bytes of a connection's frames so far. */
  private traffic(ws: WebSocket): { sent: number; received: number } {
    const known = this.bytes.get(ws);
    if (known) return known;
    const fresh = { sent: 0, received: 0 };
    this.bytes.set(ws, fresh);
    return fresh;
  }

  private received(ws: WebSocket, data: RawData): void {
    const n = toBytes(data).byteLength;
    this.stats.bytesIn += n;
    this.traffic(ws).received += n;
  }

  /** Sends a frame, counting its bytes. */
  private put(ws: WebSocket, bytes: Uint8Array): void {
    if (ws.readyState !== ws.OPEN) return;
    this.stats.bytesOut += bytes.byteLength;
    this.traffic(ws).sent += bytes.byteLength;
    ws.send(bytes);
  }

  /** Resolves when at least `n` clients are connected. */
  async waitForClients(n: number): Promise<void> {
    while (this.conns.size < n) {
      this.opts.log({ type: 'waiting', connected: this.conns.size, needed: n });
      await new Promise<void>((r) => this.joinWaiters.push(r));
    }
  }

  roster(): readonly number[] {
    return [...this.conns.keys()].sort((a, b) => a - b);
  }

  private accept(ws: WebSocket, remote: string): void {
    let refusal: { code: number; reason: string } | undefined;
    let authenticated = false;
    const refuse = (code: number, reason: string, client?: number) => {
      refusal = { code, reason };
      this.sendTo(ws, { v: PROTOCOL_VERSION, type: 'error', message: reason, client });
      ws.close(code, closeReason(reason));
    };
    const timer = setTimeout(
      () => refuse(CLOSE.unauthenticated, `no hello within ${this.opts.helloSeconds} s`),
      this.opts.helloSeconds * 1000,
    );
    // Errors (an oversized frame, a broken socket) close the socket; the close is logged below.
    ws.on('error', (err) => {
      refusal ??= socketRefusal(err, this.opts.maxPayload);
    });
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      if (!authenticated)
        this.opts.log({
          type: 'refused',
          remote,
          code: refusal?.code ?? code,
          reason: refusal?.reason ?? (reason.toString() || 'closed before its hello'),
        });
    });
    ws.once('message', (data, isBinary) => {
      clearTimeout(timer);
      this.received(ws, data);
      const hello = this.readHello(data, isBinary);
      if ('refuse' in hello) {
        refuse(hello.code, hello.refuse, hello.client);
        return;
      }
      authenticated = true;
      this.admit({ client: hello.client, ws, alive: true }, remote, hello.committed, () => refusal);
    });
  }

  /** A first frame's client and last committed round, or why the connection is refused. */
  private readHello(
    data: RawData,
    isBinary: boolean,
  ): { client: number; committed: number } | { refuse: string; code: number; client?: number } {
    const unauthenticated = (refuse: string) => ({ refuse, code: CLOSE.unauthenticated });
    if (!isBinary) return unauthenticated('expected a binary MessagePack hello, got a text frame');
    const bytes = toBytes(data);
    let raw: unknown;
    try {
      raw = unpack(bytes);
    } catch {
      return unauthenticated('the first frame is not a MessagePack message');
    }
    const version = (raw as { v?: unknown } | null)?.v;
    if (version !== PROTOCOL_VERSION)
      return {
        refuse: `speaks protocol version ${String(version).slice(0, 20)}; this server speaks ${PROTOCOL_VERSION}`,
        code: CLOSE.wrongVersion,
      };
    let m: ToServer;
    try {
      m = decodeToServer(bytes, 'hello');
    } catch (err) {
      return unauthenticated((err as Error).message);
    }
    if (m.type !== 'hello')
      return unauthenticated(`the first message must be a hello, not ${m.type}`);
    if (m.token === undefined) return unauthenticated('the hello has no token');
    if (m.clients.length !== 1)
      return unauthenticated(`a connection hosts one client; the hello names ${m.clients.length}`);
    const client = m.clients[0]!;
    if (!this.opts.tokens.accepts(client, m.token))
      return {
        refuse: `client ${client}: id and token do not match`,
        code: CLOSE.forbidden,
        client,
      };
    if (client >= this.opts.task.numClients)
      return {
        refuse: `client ${client} is not in this run (clients 0..${this.opts.task.numClients - 1})`,
        code: CLOSE.forbidden,
        client,
      };
    return { client, committed: m.committed };
  }

  private admit(
    conn: Connection,
    remote: string,
    committed: number,
    socketError: () => { code: number; reason: string } | undefined,
  ): void {
    const older = this.conns.get(conn.client);
    if (older) {
      this.conns.delete(conn.client);
      older.ws.close(CLOSE.replaced, 'replaced by a newer connection of the same client');
    }
    this.conns.set(conn.client, conn);
    conn.ws.on('message', (data, isBinary) => this.receive(conn, data, isBinary));
    conn.ws.on('pong', () => {
      conn.alive = true;
    });
    conn.ws.once('close', (code, reason) => {
      const error = socketError() ?? conn.ended;
      this.dropped(conn, error?.code ?? code, error?.reason ?? reason.toString());
    });
    this.opts.log({ type: 'connected', client: conn.client, remote });
    this.sendTo(conn.ws, {
      v: PROTOCOL_VERSION,
      type: 'welcome',
      task: this.opts.task,
      data: this.opts.data,
    });
    const owed = this.owedCommits.get(conn.client);
    if (owed && committed < owed.round)
      this.sendTo(conn.ws, {
        v: PROTOCOL_VERSION,
        type: 'commit',
        ...owed,
        accepted: [conn.client],
      });
    if (this.evaluating?.waiting.has(conn.client)) this.evaluating.send(conn);
    for (const wake of this.joinWaiters.splice(0)) wake();
  }

  private dropped(conn: Connection, code: number, reason: string): void {
    if (this.conns.get(conn.client) !== conn) return; // replaced by a newer connection
    this.conns.delete(conn.client);
    const { sent, received } = this.traffic(conn.ws);
    this.opts.log({
      type: 'disconnected',
      client: conn.client,
      code,
      reason,
      sentBytes: sent,
      receivedBytes: received,
    });
    const t = this.training;
    if (t?.waiting.delete(conn.client))
      t.replies.push({ client: conn.client, failure: 'disconnected' });
    const c = this.committing;
    if (c?.waiting.delete(conn.client) && !c.waiting.size) c.settled();
  }

  private reject(conn: Connection, reason: string, about: Refusal['about'] = {}): void {
    this.opts.log({ type: 'rejected', client: conn.client, reason });
    const { round, attempt } = about;
    this.sendTo(conn.ws, {
      v: PROTOCOL_VERSION,
      type: 'error',
      message: reason,
      ...(round === undefined ? {} : { round, attempt }),
      client: conn.client,
    });
  }

  private receive(conn: Connection, data: RawData, isBinary: boolean): void {
    this.received(conn.ws, data);
    const refusal = this.take(conn, data, isBinary);
    if (refusal) this.reject(conn, refusal.reason, refusal.about);
  }

  /** Takes a frame of an authenticated client; returns why it is refused, if it is. */
  private take(conn: Connection, data: RawData, isBinary: boolean): Refusal | undefined {
    if (!isBinary) return { reason: 'expected a binary MessagePack message, got text' };
    let m: ToServer;
    try {
      m = decodeToServer(toBytes(data), `client ${conn.client}`);
    } catch (err) {
      return { reason: (err as Error).message };
    }
    if (m.type === 'hello') return { reason: 'already said hello' };
    if ('client' in m && m.client !== undefined && m.client !== conn.client)
      return {
        reason: `client ${conn.client} cannot answer for client ${m.client}`,
        about: m,
      };
    switch (m.type) {
      case 'update':
        return this.trainAnswer(conn, m, { client: conn.client, upload: m.upload });
      case 'secagg-keys':
        return this.trainAnswer(conn, m, { client: conn.client, keys: m });
      case 'secagg-shared':
      case 'secagg-masked':
      case 'secagg-unmasked':
        return this.trainAnswer(conn, m, { client: conn.client, answer: m }, 'secure');
      case 'metrics':
        return this.metrics(conn, m);
      case 'committed': {
        const c = this.committing;
        // The answer to a commit sent again on reconnection needs nothing more.
        if (this.owedCommits.get(conn.client)?.round === m.round && c?.round !== m.round)
          return undefined;
        if (!c || c.round !== m.round || c.attempt !== m.attempt)
          return { reason: `no commit of round ${m.round} attempt ${m.attempt} is open`, about: m };
        if (c.waiting.delete(conn.client) && !c.waiting.size) c.settled();
        return undefined;
      }
      case 'error': {
        const e = this.evaluating;
        if (e && e.round === m.round && e.attempt === m.attempt && e.waiting.delete(conn.client)) {
          // Left out of this evaluation like a client that does not answer.
          this.opts.log({
            type: 'rejected',
            client: conn.client,
            reason: `its error to evaluation after round ${m.round}: ${m.message}`,
          });
          if (!e.waiting.size) e.settled();
          return undefined;
        }
        if (m.round !== undefined)
          return this.trainAnswer(conn, m, { client: conn.client, failure: m.message });
        this.opts.log({ type: 'rejected', client: conn.client, reason: `its error: ${m.message}` });
        return undefined;
      }
    }
  }

  /**
   * Takes a drawn client's answer to the open round (of its training, or of a secure stage:
   * `stage`; a failure answers either); returns why it is refused, if it is.
   */
  private trainAnswer(
    conn: Connection,
    m: { round?: number; attempt?: number },
    reply: TrainReply | StageReply,
    stage: Training['stage'] = 'train',
  ): Refusal | undefined {
    const t = this.training;
    if (!t || t.round !== m.round || t.attempt !== m.attempt)
      return {
        reason: `stale answer: round ${m.round} attempt ${m.attempt} is not the open round${t ? ` (round ${t.round} attempt ${t.attempt})` : ''}`,
        about: m,
      };
    if (!('failure' in reply) && t.stage !== stage)
      return {
        reason: `a ${stage} answer while the round waits for its ${t.stage} answers`,
        about: m,
      };
    if (!t.drawn.has(conn.client))
      return { reason: `client ${conn.client} was not drawn in round ${t.round}`, about: m };
    if (!t.waiting.delete(conn.client))
      return { reason: `client ${conn.client} already answered round ${t.round}`, about: m };
    t.replies.push(reply);
    return undefined;
  }

  private metrics(
    conn: Connection,
    m: Extract<ToServer, { type: 'metrics' }>,
  ): Refusal | undefined {
    const e = this.evaluating;
    if (!e || e.round !== m.round || e.attempt !== m.attempt)
      return { reason: `no evaluation of round ${m.round} attempt ${m.attempt} is open`, about: m };
    if (!e.waiting.delete(conn.client))
      return { reason: `client ${conn.client} already sent its metrics`, about: m };
    e.rows.set(conn.client, m.row);
    if (!e.waiting.size) e.settled();
    return undefined;
  }

  async *train(round: number, jobs: readonly TrainJob[]): AsyncGenerator<TrainReply> {
    const attempt = this.attempts.get(round) ?? 0;
    this.attempts.set(round, attempt + 1);
    const messages = jobs.map(
      (job): Extract<ToHost, { type: 'train' }> => ({
        v: PROTOCOL_VERSION,
        type: 'train',
        round,
        attempt,
        ...job,
      }),
    );
    yield* this.collect<TrainReply>(round, attempt, 'train', messages);
  }

  /** A stage of the open round's secure aggregation, under the round's attempt. */
  async *secureStage(round: number, messages: readonly SecureToHost[]): AsyncGenerator<StageReply> {
    const attempt = (this.attempts.get(round) ?? 1) - 1;
    const mine = messages.map((m) => ({ ...m, attempt }));
    yield* this.collect<StageReply>(round, attempt, 'secure', mine);
  }

  /** Sends each message to its client and yields the answers, or failures, until the deadline. */
  private async *collect<R extends TrainReply | StageReply>(
    round: number,
    attempt: number,
    stage: Training['stage'],
    messages: readonly (Extract<ToHost, { type: 'train' }> | SecureToHost)[],
  ): AsyncGenerator<R> {
    const t: Training = {
      round,
      attempt,
      drawn: new Set(messages.map((m) => m.client)),
      waiting: new Set(messages.map((m) => m.client)),
      replies: new Channel(),
      stage,
    };
    this.training = t;
    for (const m of messages) {
      const conn = this.conns.get(m.client);
      if (!conn) {
        t.waiting.delete(m.client);
        t.replies.push({ client: m.client, failure: 'not connected' });
        continue;
      }
      this.put(conn.ws, encodeMessage(m));
    }
    const timer = setTimeout(() => {
      for (const client of t.waiting)
        t.replies.push({ client, failure: 'no answer before the deadline' });
      t.waiting.clear();
    }, this.deadlineMs);
    try {
      // trainAnswer takes only the answers of `stage` (and failures): the replies are R's.
      for (let i = 0; i < messages.length; i++) yield (await t.replies.next()) as R;
    } finally {
      clearTimeout(timer);
      this.training = undefined;
    }
  }

  async commit(round: number, accepted: readonly number[]): Promise<void> {
    const attempt = (this.attempts.get(round) ?? 1) - 1;
    const bytes = encodeMessage({
      v: PROTOCOL_VERSION,
      type: 'commit',
      round,
      attempt,
      accepted: [...accepted],
    });
    this.lastCommitted = round;
    for (const client of accepted) this.owedCommits.set(client, { round, attempt });
    // On disk before any client can commit the round (FleetDurability in sim/experiment.ts).
    this.opts.persist?.({
      lastCommitted: round,
      owed: [...this.owedCommits]
        .map(([c, o]): [number, number, number] => [c, o.round, o.attempt])
        .sort((a, b) => a[0] - b[0]),
    });
    const waiting = new Set(this.conns.keys());
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((settled) => {
      this.committing = { round, attempt, waiting, settled };
      for (const conn of this.conns.values()) this.put(conn.ws, bytes);
      if (!waiting.size) return settled();
      timer = setTimeout(() => {
        this.opts.log({ type: 'commit-unconfirmed', round, clients: [...waiting] });
        // A client aggregated that may have missed the commit would train the next round from
        // its older state: it reconnects first, and gets the commit again if it missed it.
        for (const client of accepted) {
          const conn = waiting.has(client) ? this.conns.get(client) : undefined;
          if (!conn) continue;
          const reason = `no confirmation of the commit of round ${round}`;
          this.dropped(conn, CLOSE.unconfirmed, reason);
          conn.ws.close(CLOSE.unconfirmed, reason);
        }
        settled();
      }, this.deadlineMs);
    });
    clearTimeout(timer);
    this.committing = undefined;
    // The next round draws among the connected clients: it waits for enough of them.
    await this.waitForClients(this.opts.minClients);
  }

  /**
   * Evaluates `clients`, each on its own connection; a client not connected is sent the
   * evaluation when it (re)connects. Clients that refuse, or have not answered at the deadline,
   * are left out (`undefined` rows, logged): one client never stops the run.
   */
  async evaluate(
    round: number,
    download: Download,
    evalGlobal: boolean,
    clients: readonly number[],
  ): Promise<(ClientEvalRow | undefined)[]> {
    const attempt = this.evaluations++;
    const rows = new Map<number, ClientEvalRow>();
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((settled) => {
        const e: Evaluating = {
          round,
          attempt,
          waiting: new Set(clients),
          rows,
          send: (c) => {
            const m: ToHost = {
              v: PROTOCOL_VERSION,
              type: 'evaluate',
              round,
              attempt,
              clients: [c.client],
              evalGlobal,
              download,
            };
            this.put(c.ws, encodeMessage(m));
          },
          settled,
        };
        this.evaluating = e;
        if (!e.waiting.size) return settled();
        for (const c of clients) {
          const conn = this.conns.get(c);
          if (conn) e.send(conn);
        }
        timer = setTimeout(() => {
          this.opts.log({ type: 'eval-missing', round, clients: [...e.waiting] });
          settled();
        }, this.deadlineMs);
      });
    } finally {
      clearTimeout(timer);
      this.evaluating = undefined;
    }
    return clients.map((c) => rows.get(c));
  }

  /**
   * Closes every connection, telling clients the run is done when its last round was committed
   * (and that it failed otherwise), then stops listening.
   */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    const done = this.lastCommitted === this.opts.rounds - 1;
    const closed = [...this.conns.values()].map(
      (c) => new Promise<void>((r) => c.ws.once('close', () => r())),
    );
    for (const c of this.conns.values())
      c.ws.close(
        done ? CLOSE.done : CLOSE.failed,
        done ? 'run finished' : 'the run stopped on the server',
      );
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  private sendTo(ws: WebSocket, m: ToHost): void {
    this.put(ws, encodeMessage(m));
  }
}

/** `reason` cut to the 123 bytes a close frame allows (whole characters). */
export function closeReason(reason: string): string {
  let cut = reason;
  while (Buffer.byteLength(cut) > 123) cut = cut.slice(0, -1);
  return cut;
}

/** The close code and reason of a socket error: 1009 for a frame over the size limit. */
function socketRefusal(err: Error, maxPayload: number): { code: number; reason: string } {
  return (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
    ? { code: 1009, reason: `a frame over the limit of ${maxPayload} bytes` }
    : { code: 1002, reason: err.message };
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
