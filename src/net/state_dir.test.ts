/**
 * A network client's state directory keeps what a restarted `fedslr join` needs: its committed
 * state, the state it trained and uploaded (pending until the commit), its last committed round,
 * and the task of its run.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEDSLR_DEFAULTS } from '../algorithms/fedslr.js';
import type { ClientData } from '../data/clients.js';
import { PROTOCOL_VERSION, type ToHost, type ToServer } from '../protocol/messages.js';
import { HostGroup, type HostStateStore } from '../runtime/host.js';
import { buildTask, type Task, type TaskParts, TRAIN_DEFAULTS } from '../runtime/task.js';
import { initBackend } from '../tensor/backend.js';
import { Rng } from '../tensor/rng.js';
import { StateDir } from './state_dir.js';

const v = PROTOCOL_VERSION;
const task: Task = {
  seed: 5,
  numClients: 2,
  model: { name: 'mlp', hidden: [4], inputShape: [2, 2, 1], classes: 3 },
  train: { ...TRAIN_DEFAULTS, epochs: 1, batchSize: 4 },
  algorithm: { name: 'fedslr', ...FEDSLR_DEFAULTS },
};

function client(id: number, n: number): ClientData {
  const rng = new Rng(id + 1);
  const x = Float32Array.from({ length: n * 4 }, () => rng.uniform());
  const y = Int32Array.from({ length: n }, (_, i) => (i + id) % 3);
  return { id, train: { x, y, size: n }, test: { x, y, size: n }, shape: [2, 2, 1], classes: 3 };
}

let parts: TaskParts;
let root: string;

beforeAll(async () => {
  await initBackend('wasm', { threads: 1 });
  parts = await buildTask(task);
  root = mkdtempSync(join(tmpdir(), 'fedslr-state-dir-'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function ask(hosts: HostGroup, m: ToHost): Promise<ToServer[]> {
  const out: ToServer[] = [];
  await hosts.handle(m, (r) => out.push(r));
  return out;
}

const train = (round: number, attempt: number): ToHost => ({
  v,
  type: 'train',
  round,
  attempt,
  client: 1,
  download: {
    ...parts.algorithm.server.download(parts.algorithm.server.initServer(parts.init), round, 1),
    round,
  },
});
const commit = (round: number, attempt: number, accepted: number[]): ToHost => ({
  v,
  type: 'commit',
  round,
  attempt,
  accepted,
});

/** A host of client 1 over the state directory `dir`, as a freshly started process makes it. */
function hostOn(dir: string): { hosts: HostGroup; store: HostStateStore } {
  const store = new StateDir(dir, 1).store(parts.algorithm.client.codec);
  return { hosts: new HostGroup(parts, [client(1, 9)], store), store };
}

describe('a client state directory', () => {
  it('lets a restarted client commit the state it trained before the restart', async () => {
    const dir = join(root, 'restart');
    const first = hostOn(dir);
    const [up] = await ask(first.hosts, train(0, 0));
    expect(up!.type).toBe('update');
    expect(existsSync(join(dir, 'pending.msgpack'))).toBe(true);
    expect(await first.store.load(1)).toBeUndefined();

    // The process dies; a new one on the same directory gets the commit sent again.
    const second = hostOn(dir);
    expect(await ask(second.hosts, commit(0, 0, [1]))).toEqual([
      { v, type: 'committed', round: 0, attempt: 0, clients: [1] },
    ]);
    expect(existsSync(join(dir, 'pending.msgpack'))).toBe(false);

    // What it committed is what an uninterrupted client commits.
    const control = hostOn(join(root, 'control'));
    await ask(control.hosts, train(0, 0));
    await ask(control.hosts, commit(0, 0, [1]));
    expect(readFileSync(join(dir, 'state.msgpack'))).toEqual(
      readFileSync(join(root, 'control', 'state.msgpack')),
    );
  });

  it('drops a restored pending state that a commit does not name, or names for another attempt', async () => {
    const dir = join(root, 'dropped');
    await ask(hostOn(dir).hosts, train(0, 0));
    expect(await ask(hostOn(dir).hosts, commit(0, 0, [0]))).toEqual([
      { v, type: 'committed', round: 0, attempt: 0, clients: [] },
    ]);
    expect(existsSync(join(dir, 'pending.msgpack'))).toBe(false);
    await ask(hostOn(dir).hosts, train(1, 0));
    const other = await ask(hostOn(dir).hosts, commit(1, 1, [1]));
    expect(other).toEqual([{ v, type: 'committed', round: 1, attempt: 1, clients: [] }]);
    expect(existsSync(join(dir, 'state.msgpack'))).toBe(false);
  });

  it("keeps the last committed round and refuses another run's directory", () => {
    const state = new StateDir(join(root, 'meta'), 1);
    expect(state.lastCommitted()).toBe(-1);
    state.setLastCommitted(4);
    expect(new StateDir(join(root, 'meta'), 1).lastCommitted()).toBe(4);
    state.adopt(task);
    state.adopt(task);
    expect(() => state.adopt({ ...task, seed: 6 })).toThrow(/belongs to another run/);
  });
});
