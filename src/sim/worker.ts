/**
 * A worker thread of the pool (pool.ts): hosts every client of the simulation in a `HostGroup`
 * and answers the pool's protocol messages for them. It says `hello`, builds the task it is
 * `welcome`d with (same seed, so the same model and initial values as the main thread), and keeps
 * committed client states in the pool's store through `load` and `save` requests.
 */
import { parentPort } from 'node:worker_threads';
import type { ClientData } from '../data/clients.js';
import {
  decodeToHost,
  encodeMessage,
  PROTOCOL_VERSION,
  type ToServer,
} from '../protocol/messages.js';
import { HostGroup, type HostStateStore } from '../runtime/host.js';
import { buildTask } from '../runtime/task.js';
import { initBackend } from '../tensor/backend.js';
import type { FromWorker, ToWorker } from './pool.js';

const port = parentPort;
if (!port) throw new Error('worker.ts must run in a worker thread');

function post(m: FromWorker): void {
  port!.postMessage(m);
}

function send(m: ToServer): void {
  post({ kind: 'protocol', bytes: encodeMessage(m) });
}

/** The pool's client store, one request away. */
class PoolStates implements HostStateStore {
  private nextId = 0;
  private readonly waiting = new Map<number, (state: unknown) => void>();

  load(client: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      post({ kind: 'load', id, client });
    });
  }

  async save(client: number, state: unknown): Promise<void> {
    post({ kind: 'save', client, state });
  }

  answer(id: number, state: unknown): void {
    this.waiting.get(id)?.(state);
    this.waiting.delete(id);
  }
}

const states = new PoolStates();
let clients: readonly ClientData[] = [];
let hosts: HostGroup | undefined;

async function handle(m: ToWorker): Promise<void> {
  if (m.kind === 'init') {
    await initBackend(m.backend, { threads: m.threads });
    clients = m.clients;
    const ids = clients.map((c) => c.id);
    return send({ v: PROTOCOL_VERSION, type: 'hello', clients: ids, committed: -1 });
  }
  if (m.kind !== 'protocol') return;
  const msg = decodeToHost(m.bytes, 'pool');
  if (msg.type === 'welcome') {
    hosts = new HostGroup(await buildTask(msg.task), clients, states);
    return post({ kind: 'ready' });
  }
  if (!hosts) throw new Error(`'${msg.type}' before the task was sent`);
  await hosts.handle(msg, send);
}

// Messages are handled one at a time, in order; answers to state loads are taken at once (a
// message being handled may be waiting for one).
let queue = Promise.resolve();
port.on('message', (m: ToWorker) => {
  if (m.kind === 'state') return states.answer(m.id, m.state);
  queue = queue.then(() =>
    handle(m).catch((err: Error) => {
      const client = m.kind === 'protocol' ? clientOf(m.bytes) : undefined;
      post({ kind: 'failed', client, message: err.message, stack: err.stack });
    }),
  );
});

/** The client a failed message was about, when it names one (to fail only that request). */
function clientOf(bytes: Uint8Array): number | undefined {
  try {
    const msg = decodeToHost(bytes, 'pool');
    return 'client' in msg ? msg.client : undefined;
  } catch {
    return undefined;
  }
}
