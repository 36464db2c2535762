/**
 * The federation server as a client fleet, driven directly, with raw WebSocket clients on
 * loopback: what it takes from a round and what it refuses, its deadline, disconnections, commits
 * sent again on reconnection, and its final close. No training: uploads are opaque to the fleet
 * (the round loop checks their contents).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FEDSLR_DEFAULTS } from '../algorithms/fedslr.js';
import type { Upload } from '../algorithms/types.js';
import { pack } from '../codec/wire.js';
import {
  decodeToHost,
  encodeMessage,
  PROTOCOL_VERSION,
  type ToHost,
  type ToServer,
} from '../protocol/messages.js';
import type { StageReply, TrainReply } from '../runtime/fleet.js';
import { type Task, TRAIN_DEFAULTS } from '../runtime/task.js';
import { CLOSE } from './codes.js';
import {
  type FederationEvent,
  type FederationOptions,
  FederationServer,
  type FleetRecord,
  readFleetRecord,
} from './server.js';
import { TokenBook } from './tokens.js';

const v = PROTOCOL_VERSION;
const task: Task = {
  seed: 1,
  numClients: 3,
  model: { name: 'mlp', hidden: [4], inputShape: [2, 2, 1], classes: 3 },
  train: TRAIN_DEFAULTS,
  algorithm: { name: 'fedslr', ...FEDSLR_DEFAULTS },
};
const tokenOf = (c: number) => `server-test-token-${c}`;
const upload = (round: number): Upload => ({
  round,
  params: {},
  numSamples: 5,
  trainLoss: 0.5,
  trainAcc: 0.5,
});

let server: FederationServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(
  events: FederationEvent[],
  heartbeatSeconds = 0,
  tls?: { cert: string; key: string },
  minClients = 0,
  more: Partial<FederationOptions> = {},
): Promise<FederationServer> {
  server = await FederationServer.listen({
    host: '127.0.0.1',
    port: 0,
    tokens: TokenBook.parse([0, 1, 2].map((c) => `${c} ${tokenOf(c)}`).join('\n'), 'tokens'),
    task,
    data: { dataset: 'mnist', partition: { kind: 'iid' }, testPerClient: 10 },
    deadlineSeconds: 1,
    helloSeconds: 2,
    heartbeatSeconds,
    tls,
    maxPayload: 1 << 20,
    rounds: 1,
    minClients,
    log: (e) => events.push(e),
    ...more,
  });
  return server;
}

/** A raw client: its frames in order, and how its connection closed. */
class RawClient {
  readonly ws: WebSocket;
  private readonly inbox: ToHost[] = [];
  private arrived: (() => void) | undefined;
  readonly closed: Promise<number>;

  constructor(url: string, client: number, committed = -1, autoPong = true, ca?: string) {
    this.ws = new WebSocket(url, { autoPong, ...(ca ? { ca } : {}) });
    this.ws.on('message', (d) => {
      this.inbox.push(decodeToHost(d as Buffer));
      this.arrived?.();
    });
    this.closed = new Promise((r) => this.ws.once('close', (code) => r(code)));
    this.ws.once('open', () =>
      this.send({ v, type: 'hello', clients: [client], committed, token: tokenOf(client) }),
    );
  }

  send(m: ToServer): void {
    this.ws.send(encodeMessage(m));
  }

  async next(): Promise<ToHost> {
    const until = Date.now() + 5000;
    while (!this.inbox.length) {
      if (Date.now() > until) throw new Error('no frame within 5 s');
      await new Promise<void>((r) => {
        this.arrived = r;
        setTimeout(r, 100);
      });
    }
    return this.inbox.shift()!;
  }

  /** Frames received and not read yet. */
  unread(): ToHost[] {
    return [...this.inbox];
  }

  /** The next frame, which must be an error; its message. */
  async error(): Promise<string> {
    const m = await this.next();
    if (m.type !== 'error') throw new Error(`expected an error frame, got ${m.type}`);
    return m.message;
  }
}

async function connectAll(url: string, clients: number[]): Promise<RawClient[]> {
  const raw = clients.map((c) => new RawClient(url, c));
  for (const r of raw) expect((await r.next()).type).toBe('welcome');
  return raw;
}

/** Runs a round in the background, collecting its replies. */
function round(fleet: FederationServer, t: number, clients: number[]): Promise<TrainReply[]> {
  return (async () => {
    const replies: TrainReply[] = [];
    const jobs = clients.map((client) => ({ client, download: { round: t, params: {} } }));
    for await (const r of fleet.train(t, jobs)) replies.push(r);
    return replies;
  })();
}

describe('the federation server', () => {
  it('takes one upload per drawn client for the open round and refuses the rest, saying why', async () => {
    const events: FederationEvent[] = [];
    const fleet = await start(events);
    const [c0, c1, c2] = await connectAll(fleet.url, [0, 1, 2]);
    await fleet.waitForClients(3);
    expect(fleet.roster()).toEqual([0, 1, 2]);

    const replies = round(fleet, 0, [0, 1]);
    expect(await c0!.next()).toMatchObject({ type: 'train', round: 0, attempt: 0, client: 0 });
    expect(await c1!.next()).toMatchObject({ type: 'train', round: 0, attempt: 0, client: 1 });
    const update = (client: number, t: number, attempt: number): ToServer => ({
      v,
      type: 'update',
      round: t,
      attempt,
      client,
      upload: upload(t),
    });
    c2!.send(update(2, 0, 0));
    expect(await c2!.error()).toBe('client 2 was not drawn in round 0');
    c0!.send(update(1, 0, 0));
    expect(await c0!.error()).toBe('client 0 cannot answer for client 1');
    c0!.send(update(0, 0, 1));
    expect(await c0!.error()).toBe(
      'stale answer: round 0 attempt 1 is not the open round (round 0 attempt 0)',
    );
    c0!.send(update(0, 0, 0));
    c0!.send(update(0, 0, 0));
    expect(await c0!.error()).toBe('client 0 already answered round 0');
    // Client 1 never answers: the deadline (1 s) ends the round.
    expect(await replies).toEqual([
      { client: 0, upload: upload(0) },
      { client: 1, failure: 'no answer before the deadline' },
    ]);
    c1!.send(update(1, 0, 0));
    expect(await c1!.error()).toMatch(/^stale answer: round 0 attempt 0 is not the open round$/);
    const rejected = events.filter((e) => e.type === 'rejected');
    expect(rejected).toHaveLength(5);

    // The same port answers health checks and Prometheus scrapes.
    const http = fleet.url.replace('ws://', 'http://');
    expect(await (await fetch(`${http}/healthz`)).json()).toEqual({
      status: 'ok',
      connected: 3,
      rounds: 0,
    });
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toContain(
      '# TYPE fedslr_connected_clients gauge\nfedslr_connected_clients 3\n',
    );
    expect(metrics).toContain('fedslr_connections_total 3\n');
    expect(metrics).toContain('fedslr_rejected_frames_total 5\n');
    expect(metrics).toMatch(/\nfedslr_received_bytes_total [1-9]\d*\n/);
    expect(metrics).toMatch(/\nfedslr_sent_bytes_total [1-9]\d*\n/);
    expect((await fetch(`${http}/anything-else`)).status).toBe(404);

    // The commit goes to every connected client and waits for their confirmations.
    const committed = fleet.commit(0, [0]);
    for (const c of [c0!, c1!, c2!]) {
      expect(await c.next()).toEqual({ v, type: 'commit', round: 0, attempt: 0, accepted: [0] });
      c.send({ v, type: 'committed', round: 0, attempt: 0, clients: [] });
    }
    await committed;
    expect(events.some((e) => e.type === 'commit-unconfirmed')).toBe(false);

    // A run whose last round was committed tells its clients it is done.
    await fleet.close();
    server = undefined;
    // Each connection's bytes: the frames each side counted.
    const sentTo = new Map<number, number>();
    for (const e of events) if (e.type === 'disconnected') sentTo.set(e.client, e.receivedBytes);
    expect(sentTo.get(2)).toBe(
      encodeMessage({ v, type: 'hello', clients: [2], committed: -1, token: tokenOf(2) })
        .byteLength +
        encodeMessage(update(2, 0, 0)).byteLength +
        encodeMessage({ v, type: 'committed', round: 0, attempt: 0, clients: [] }).byteLength,
    );
    expect(await Promise.all([c0!.closed, c1!.closed, c2!.closed])).toEqual([
      CLOSE.done,
      CLOSE.done,
      CLOSE.done,
    ]);
  });

  it("carries a secure round's stages under the round's attempt, refusing answers of the wrong stage", async () => {
    const events: FederationEvent[] = [];
    const fleet = await start(events);
    const [c0, c1] = await connectAll(fleet.url, [0, 1]);
    await fleet.waitForClients(2);
    const secure = { threshold: 2, clip: 1, quantizationBits: 16 };
    const training = (async () => {
      const replies: TrainReply[] = [];
      const jobs = [0, 1].map((client) => ({ client, download: { round: 0, params: {} }, secure }));
      for await (const r of fleet.train(0, jobs)) replies.push(r);
      return replies;
    })();
    expect(await c0!.next()).toMatchObject({ type: 'train', client: 0, secure });
    await c1!.next();
    const head = (client: number) => ({ v, round: 0, attempt: 0, client }) as const;
    const keys = (client: number): ToServer => ({
      ...head(client),
      type: 'secagg-keys',
      encryptionKey: new Uint8Array(65),
      maskingKey: new Uint8Array(65),
      numSamples: 5,
      trainLoss: 0.5,
      trainAcc: 0.5,
    });
    const masked: ToServer = { ...head(0), type: 'secagg-masked', masked: new Uint32Array(3) };
    c0!.send(masked);
    expect(await c0!.error()).toBe('a secure answer while the round waits for its train answers');
    c0!.send(keys(0));
    c1!.send(keys(1));
    expect((await training).map((r) => 'keys' in r && r.client)).toEqual([0, 1]);
    // A stage: each client gets its message with the round's attempt; one answers, one drops.
    const unmask = (client: number) => ({
      ...head(client),
      attempt: 7,
      type: 'secagg-unmask' as const,
      survivors: [0, 1],
      dropped: [],
    });
    const stage = (async () => {
      const replies: StageReply[] = [];
      for await (const r of fleet.secureStage(0, [unmask(0), unmask(1)])) replies.push(r);
      return replies;
    })();
    expect(await c0!.next()).toEqual({ ...unmask(0), attempt: 0 });
    expect(await c1!.next()).toEqual({ ...unmask(1), attempt: 0 });
    c0!.send(keys(0));
    expect(await c0!.error()).toBe('a train answer while the round waits for its secure answers');
    const answer: ToServer = { ...head(0), type: 'secagg-unmasked', seedShares: [], keyShares: [] };
    c0!.send(answer);
    c1!.ws.terminate();
    // The two sockets race: the answers in either order.
    const replies = await stage;
    expect(replies).toHaveLength(2);
    expect(replies).toEqual(
      expect.arrayContaining([
        { client: 0, answer },
        { client: 1, failure: 'disconnected' },
      ]),
    );
  });

  it('fails a drawn client that disconnects and sends a missed commit again when it is back', async () => {
    const events: FederationEvent[] = [];
    const fleet = await start(events);
    const [c0, c1] = await connectAll(fleet.url, [0, 1]);
    await fleet.waitForClients(2);
    const replies = round(fleet, 0, [0, 1]);
    await c0!.next();
    await c1!.next();
    c1!.send({ v, type: 'update', round: 0, attempt: 0, client: 1, upload: upload(0) });
    // Client 0's socket drops; client 1's upload is aggregated; client 1 then drops before it
    // gets the commit.
    c0!.ws.terminate();
    expect(await replies).toEqual(
      expect.arrayContaining([
        { client: 1, upload: upload(0) },
        { client: 0, failure: 'disconnected' },
      ]),
    );
    expect(fleet.roster()).toEqual([1]);
    c1!.ws.terminate();
    await c1!.closed;
    await new Promise((r) => setTimeout(r, 50));
    await fleet.commit(0, [1]);
    expect(fleet.roster()).toEqual([]);

    const back = new RawClient(fleet.url, 1, -1);
    expect((await back.next()).type).toBe('welcome');
    expect(await back.next()).toEqual({ v, type: 'commit', round: 0, attempt: 0, accepted: [1] });
    // A client that applied it says so in its hello and is not sent it again.
    const applied = new RawClient(fleet.url, 1, 0);
    expect((await applied.next()).type).toBe('welcome');
    expect(await back.closed).toBe(CLOSE.replaced);
    await fleet.close();
    server = undefined;
    expect(await applied.closed).toBe(CLOSE.done);
    expect(applied.unread()).toEqual([]);
  });

  it('disconnects an idle client that stops answering pings, and keeps one that answers', async () => {
    const events: FederationEvent[] = [];
    const fleet = await start(events, 0.2);
    const answers = new RawClient(fleet.url, 0);
    const silent = new RawClient(fleet.url, 1, -1, false);
    for (const c of [answers, silent]) expect((await c.next()).type).toBe('welcome');
    const until = Date.now() + 5000;
    while (fleet.roster().length > 1 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    expect(fleet.roster()).toEqual([0]);
    expect(events).toContainEqual({
      type: 'disconnected',
      client: 1,
      code: 1006,
      reason: 'no answer to a ping within 0.2 s',
      sentBytes: expect.any(Number),
      receivedBytes: expect.any(Number),
    });
    await silent.closed;
    await new Promise((r) => setTimeout(r, 500));
    expect(fleet.roster()).toEqual([0]);
  });

  it('serves wss:// with a certificate that clients trusting it accept, and others refuse', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-tls-'));
    try {
      // A self-signed P-256 certificate for 127.0.0.1, valid for a day.
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
          '-days',
          '1',
          '-subj',
          '/CN=fedslr test',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
      const key = readFileSync(join(dir, 'key.pem'), 'utf8');
      const fleet = await start([], 0, { cert, key });
      expect(fleet.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
      const trusting = new RawClient(fleet.url, 0, -1, true, cert);
      expect((await trusting.next()).type).toBe('welcome');
      const untrusting = new WebSocket(fleet.url);
      const failure = await new Promise<string>((r) =>
        untrusting.once('error', (e) => r(e.message)),
      );
      expect(failure).toMatch(/self.signed certificate/);
      expect(fleet.roster()).toEqual([0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('closes a connection whose refusal reason is long and multi-byte without failing', async () => {
    const events: FederationEvent[] = [];
    const fleet = await start(events);
    const closeOf = async (hello: Record<string, unknown>) => {
      const ws = new WebSocket(fleet.url);
      const closed = new Promise<[number, string]>((r) =>
        ws.once('close', (code, reason) => r([code, String(reason)])),
      );
      await new Promise((r) => ws.once('open', r));
      ws.send(pack({ type: 'hello', clients: [0], committed: -1, ...hello }));
      return closed;
    };
    const long = 'é'.repeat(300);
    const [code, reason] = await closeOf({ v: long, token: tokenOf(0) });
    expect(code).toBe(CLOSE.wrongVersion);
    expect(reason).toBe(`speaks protocol version ${'é'.repeat(20)}; this server speaks 1`);
    const [code2, reason2] = await closeOf({ v, token: tokenOf(0), [long]: 1 });
    expect(code2).toBe(CLOSE.unauthenticated);
    expect(Buffer.byteLength(reason2)).toBeLessThanOrEqual(123);
    expect(reason2).toMatch(/^hello: malformed message: .*Unrecognized key/);
    // Still serving.
    const c = new RawClient(fleet.url, 0);
    expect((await c.next()).type).toBe('welcome');
  });

  it('starts the next round only when --min-clients are connected again', async () => {
    const fleet = await start([], 0, undefined, 2);
    const [c0, c1] = await connectAll(fleet.url, [0, 1]);
    c1!.ws.terminate();
    await c1!.closed;
    let committed = false;
    const commit = fleet.commit(0, []).then(() => {
      committed = true;
    });
    await c0!.next(); // the commit
    c0!.send({ v, type: 'committed', round: 0, attempt: 0, clients: [] });
    await new Promise((r) => setTimeout(r, 300));
    expect(committed).toBe(false);
    const back = new RawClient(fleet.url, 1);
    expect((await back.next()).type).toBe('welcome');
    await commit;
    expect(fleet.roster()).toEqual([0, 1]);
  });
  it('leaves out of an evaluation the clients that refuse or stay silent past the deadline', async () => {
    const events: FederationEvent[] = [];
    const fleet = await start(events);
    const [c0, c1, c2] = await connectAll(fleet.url, [0, 1, 2]);
    await fleet.waitForClients(3);
    const row = { n: 10, personal: { acc: 0.75, loss: 0.5 } };
    const evaluation = fleet.evaluate(1, { round: 1, params: {} }, false, [0, 1, 2]);
    for (const c of [c0!, c1!, c2!])
      expect(await c.next()).toMatchObject({ type: 'evaluate', round: 1, attempt: 0 });
    c0!.send({ v, type: 'metrics', round: 1, attempt: 0, client: 0, row });
    c1!.send({ v, type: 'error', round: 1, attempt: 0, message: 'out of memory' });
    // Client 2 never answers: the deadline (1 s) ends the evaluation without it.
    expect(await evaluation).toEqual([row, undefined, undefined]);
    expect(events).toContainEqual({ type: 'eval-missing', round: 1, clients: [2] });
    expect(events).toContainEqual({
      type: 'rejected',
      client: 1,
      reason: 'its error to evaluation after round 1: out of memory',
    });
    // Metrics after the deadline are refused, not taken into the next evaluation.
    c2!.send({ v, type: 'metrics', round: 1, attempt: 0, client: 2, row });
    expect(await c2!.error()).toBe('no evaluation of round 1 attempt 0 is open');
  });
  it('ends the connection of an aggregated client that does not confirm the commit, so it reconnects and gets it again', async () => {
    const events: FederationEvent[] = [];
    const fleet = await start(events);
    const [c0, c1] = await connectAll(fleet.url, [0, 1]);
    await fleet.waitForClients(2);
    // Neither confirms within the deadline (1 s); only client 0 was aggregated.
    await fleet.commit(0, [0]);
    expect(await c0!.closed).toBe(CLOSE.unconfirmed);
    expect(fleet.roster()).toEqual([1]);
    expect(c1!.ws.readyState).toBe(WebSocket.OPEN);
    expect(events).toContainEqual({ type: 'commit-unconfirmed', round: 0, clients: [0, 1] });
    const back = new RawClient(fleet.url, 0, -1);
    expect((await back.next()).type).toBe('welcome');
    expect(await back.next()).toEqual({ v, type: 'commit', round: 0, attempt: 0, accepted: [0] });
  });
  it('has its record persisted before a commit goes out, and a server resumed from it sends owed commits again', async () => {
    const records: FleetRecord[] = [];
    const fleet = await start([], 0, undefined, 0, {
      persist: (record) => {
        records.push(record);
        throw new Error('disk full');
      },
    });
    const [c0] = await connectAll(fleet.url, [0]);
    await fleet.waitForClients(1);
    const replies = round(fleet, 0, [0]);
    await c0!.next();
    c0!.send({ v, type: 'update', round: 0, attempt: 0, client: 0, upload: upload(0) });
    await replies;
    // The record is persisted first: when that fails, no commit goes out.
    await expect(fleet.commit(0, [0])).rejects.toThrow('disk full');
    expect(records).toEqual([{ lastCommitted: 0, owed: [[0, 0, 0]] }]);
    await new Promise((r) => setTimeout(r, 300));
    expect(c0!.unread()).toEqual([]);
    await fleet.close();
    server = undefined;

    // A server resumed from a record: client 1 is owed round 0's commit of attempt 2.
    const resumed = await start([], 0, undefined, 0, {
      saved: { lastCommitted: 0, owed: [[1, 0, 2]] },
    });
    const http = resumed.url.replace('ws://', 'http://');
    expect(await (await fetch(`${http}/healthz`)).json()).toMatchObject({ rounds: 1 });
    const missed = new RawClient(resumed.url, 1, -1);
    expect((await missed.next()).type).toBe('welcome');
    expect(await missed.next()).toEqual({ v, type: 'commit', round: 0, attempt: 2, accepted: [1] });
    const applied = new RawClient(resumed.url, 1, 0);
    expect((await applied.next()).type).toBe('welcome');
    const other = new RawClient(resumed.url, 2, -1);
    expect((await other.next()).type).toBe('welcome');
    await new Promise((r) => setTimeout(r, 200));
    expect(applied.unread()).toEqual([]);
    expect(other.unread()).toEqual([]);
  });

  it('refuses a malformed saved record, saying what it expected', () => {
    expect(readFleetRecord({ lastCommitted: 3, owed: [[1, 2, 0]] })).toEqual({
      lastCommitted: 3,
      owed: [[1, 2, 0]],
    });
    for (const bad of [
      null,
      {},
      { lastCommitted: -2, owed: [] },
      { lastCommitted: 0, owed: [[1, 2]] },
    ])
      expect(() => readFleetRecord(bad)).toThrow(/fleet record: expected \{ lastCommitted/);
  });
});
