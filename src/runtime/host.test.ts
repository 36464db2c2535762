/**
 * A client host answers the protocol's messages for its clients and keeps their state two-phase:
 * what training produces is committed only when the server's commit names the client for the same
 * round and attempt; otherwise the committed state stays as it was.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FEDSLR_DEFAULTS } from '../algorithms/fedslr.js';
import { encodeClientState } from '../codec/state.js';
import type { ClientData } from '../data/clients.js';
import { PROTOCOL_VERSION, type ToHost, type ToServer } from '../protocol/messages.js';
import { initBackend } from '../tensor/backend.js';
import { Rng } from '../tensor/rng.js';
import { disposeData, toTensors } from '../train/loop.js';
import { CLIENT_STREAM, HostGroup, type HostStateStore } from './host.js';
import { buildTask, type TaskParts, TRAIN_DEFAULTS } from './task.js';

const v = PROTOCOL_VERSION;

function client(id: number, n: number): ClientData {
  const rng = new Rng(id + 1);
  const x = Float32Array.from({ length: n * 4 }, () => rng.uniform());
  const y = Int32Array.from({ length: n }, (_, i) => (i + id) % 3);
  return { id, train: { x, y, size: n }, test: { x, y, size: n }, shape: [2, 2, 1], classes: 3 };
}

class Memory implements HostStateStore {
  readonly states = new Map<number, unknown>();
  saves = 0;
  async load(c: number) {
    return this.states.get(c);
  }
  async save(c: number, s: unknown) {
    this.saves++;
    this.states.set(c, s);
  }
}

let parts: TaskParts;

beforeAll(async () => {
  await initBackend('wasm', { threads: 1 });
  parts = await buildTask({
    seed: 5,
    numClients: 2,
    model: { name: 'mlp', hidden: [4], inputShape: [2, 2, 1], classes: 3 },
    train: { ...TRAIN_DEFAULTS, epochs: 1, batchSize: 4 },
    algorithm: { name: 'fedslr', ...FEDSLR_DEFAULTS },
  });
});

/** The replies of one message. */
async function ask(hosts: HostGroup, m: ToHost): Promise<ToServer[]> {
  const out: ToServer[] = [];
  await hosts.handle(m, (r) => out.push(r));
  return out;
}

const bytesOf = (state: unknown) => encodeClientState(parts.algorithm.client.codec.toRecord(state));

describe('client hosts', () => {
  it('commit a trained state only when the commit names the client for the same round and attempt', async () => {
    const store = new Memory();
    const hosts = new HostGroup(parts, [client(0, 10), client(1, 9)], store);
    const download = parts.algorithm.server.download(
      parts.algorithm.server.initServer(parts.init),
      0,
      0,
    );
    const train = (round: number, attempt: number, c: number): ToHost => ({
      v,
      type: 'train',
      round,
      attempt,
      client: c,
      download: { ...download, round },
    });
    const before = tf.memory().numTensors;

    const [up] = await ask(hosts, train(0, 0, 0));
    expect(up).toMatchObject({ type: 'update', round: 0, attempt: 0, client: 0 });
    expect(up?.type === 'update' && up.upload.round).toBe(0);
    expect(store.saves).toBe(0);

    // A commit for another attempt drops the pending state, as does one that leaves it out.
    let [ack] = await ask(hosts, { v, type: 'commit', round: 0, attempt: 1, accepted: [0] });
    expect(ack).toEqual({ v, type: 'committed', round: 0, attempt: 1, clients: [] });
    await ask(hosts, train(0, 2, 1));
    [ack] = await ask(hosts, { v, type: 'commit', round: 0, attempt: 2, accepted: [0] });
    expect(ack).toMatchObject({ clients: [] });
    // Once dropped, a later commit naming it finds nothing to commit.
    [ack] = await ask(hosts, { v, type: 'commit', round: 0, attempt: 2, accepted: [1] });
    expect(ack).toMatchObject({ clients: [] });
    expect(store.saves).toBe(0);

    // Trained and named: committed, and it is exactly the state training produced.
    const [again] = await ask(hosts, train(0, 3, 1));
    [ack] = await ask(hosts, { v, type: 'commit', round: 0, attempt: 3, accepted: [1] });
    expect(ack).toMatchObject({ clients: [1] });
    expect(store.states.has(1)).toBe(true);
    expect(store.states.has(0)).toBe(false);
    const c1 = client(1, 9);
    const data = toTensors(c1.train.x, c1.train.y, c1.shape);
    const direct = await parts.algorithm.client.train(
      { ...download, round: 0 },
      parts.algorithm.client.initClient(1, parts.init),
      {
        client: 1,
        round: 0,
        lr: parts.task.train.lr,
        data,
        rng: Rng.derive(5, CLIENT_STREAM, 0, 1),
      },
    );
    disposeData(data);
    expect(bytesOf(store.states.get(1))).toEqual(bytesOf(direct.state));
    expect(again?.type === 'update' && again.upload.trainLoss).toBe(direct.upload.trainLoss);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuse a download for another round or an unknown client, and say why', async () => {
    const store = new Memory();
    const hosts = new HostGroup(parts, [client(0, 10)], store);
    const download = parts.algorithm.server.download(
      parts.algorithm.server.initServer(parts.init),
      1,
      0,
    );
    const [stale] = await ask(hosts, {
      v,
      type: 'train',
      round: 2,
      attempt: 0,
      client: 0,
      download,
    });
    expect(stale).toEqual({
      v,
      type: 'error',
      round: 2,
      attempt: 0,
      client: 0,
      message: 'download is for round 1, not 2',
    });
    const [other] = await ask(hosts, {
      v,
      type: 'train',
      round: 1,
      attempt: 0,
      client: 9,
      download,
    });
    expect(other).toMatchObject({
      type: 'error',
      client: 9,
      message: 'client 9 is not hosted here',
    });
    const evalDown = parts.algorithm.server.evalDownload(
      parts.algorithm.server.initServer(parts.init),
      1,
    );
    const rows = await ask(hosts, {
      v,
      type: 'evaluate',
      round: 1,
      attempt: 0,
      clients: [0, 4],
      evalGlobal: true,
      download: evalDown,
    });
    expect(rows[0]).toMatchObject({ type: 'metrics', client: 0, row: { n: 10 } });
    expect(rows[0]?.type === 'metrics' && Number.isFinite(rows[0].row.global!.acc)).toBe(true);
    expect(rows[1]).toMatchObject({ type: 'error', client: 4 });
    expect(store.saves).toBe(0);
  });
});
