/**
 * The browser client's dedicated worker: training runs here, off the page's thread. It sets up
 * the tfjs backend, opens the client's IndexedDB state (idb_store.ts) and runs the federation's
 * client loop (runtime/client_loop.ts, the one `fedslr join` runs) over the browser's WebSocket,
 * posting every event to the page (messages.ts). The page ends it with `terminate()`.
 */
import { decodeShard } from '../codec/shard.js';
import type { ClientData } from '../data/clients.js';
import { CLOSE } from '../protocol/close_codes.js';
import type { ShardSource } from '../protocol/messages.js';
import { ClientLoopError, type ClientSetup, runClient } from '../runtime/client_loop.js';
import { buildTask, type Task } from '../runtime/task.js';
import { BackendUnavailableError, initWebBackend } from './backend.js';
import { IdbClientState, StorageFullError } from './idb_store.js';
import { localImageData } from './image_data.js';
import { localIdxData } from './local_data.js';
import type { FailureKind, FromWorker, StartClient } from './messages.js';

/** The worker's global scope, as far as it is used here. */
const scope = globalThis as unknown as {
  onmessage: ((ev: MessageEvent<StartClient>) => void) | null;
  postMessage(m: FromWorker): void;
};
const post = (m: FromWorker) => scope.postMessage(m);

/** The client's data could not be had. */
class DataError extends Error {
  override name = 'DataError';
}

let started = false;
scope.onmessage = (ev) => {
  if (ev.data.type !== 'start' || started) return;
  started = true;
  void run(ev.data);
};

async function run(opts: StartClient): Promise<void> {
  let welcomed = false;
  try {
    post({ type: 'backend', description: await initWebBackend(opts.backend, opts.wasmDir) });
    const state = await IdbClientState.open(opts.url, opts.client);
    const committed = state.committedRound();
    post({ type: 'stored', committed: await committed.read(), history: await state.history() });
    await runClient({
      url: opts.url,
      client: opts.client,
      token: opts.token,
      connect: (url) => new WebSocket(url),
      maxRetries: 8,
      retryBaseMs: 500,
      retryMaxMs: 10_000,
      committed,
      setup: (task, data) => setup(opts, state, task, data),
      log: (event) => {
        if (event.type === 'welcome') welcomed = true;
        if (event.type === 'evaluated') {
          const { round, row } = event;
          const point = {
            round,
            personal: row.personal?.acc ?? null,
            global: row.global?.acc ?? null,
          };
          // The chart's history only: a failed write is shown, and the client goes on.
          state
            .addEval(point)
            .catch((err: unknown) =>
              post({ type: 'warning', message: describe(err, welcomed, opts).message }),
            );
        }
        post({ type: 'event', event });
      },
    });
    post({ type: 'done' });
  } catch (err) {
    post({ type: 'failed', ...describe(err, welcomed, opts) });
  }
}

async function setup(
  opts: StartClient,
  state: IdbClientState,
  task: Task,
  source: ShardSource | undefined,
): Promise<ClientSetup> {
  await state.adopt(task);
  let data = await state.data();
  if (!data) {
    data = await loadData(opts, task, source);
    await state.saveData(data);
  }
  const [h, w, c] = task.model.inputShape;
  if (data.shape.join() !== [h, w, c].join() || data.classes !== task.model.classes)
    throw new DataError(
      `this client's samples are [${data.shape.join(', ')}] in ${data.classes} classes; the run's model takes [${h}, ${w}, ${c}] in ${task.model.classes}`,
    );
  const parts = await buildTask(task);
  return { parts, data, store: state.store(parts.algorithm.client.codec) };
}

async function loadData(
  opts: StartClient,
  task: Task,
  source: ShardSource | undefined,
): Promise<ClientData> {
  if (opts.data.kind === 'stored')
    throw new DataError(
      'the files picked before the page was reloaded were not kept: pick them again',
    );
  if (opts.data.kind === 'idx' || opts.data.kind === 'images') {
    const local = {
      client: opts.client,
      seed: task.seed,
      inputShape: task.model.inputShape,
      classes: task.model.classes,
      testCount: source?.testPerClient ?? 100,
    };
    try {
      return opts.data.kind === 'idx'
        ? await localIdxData(opts.data.images, opts.data.labels, local)
        : await localImageData(opts.data.files, local);
    } catch (err) {
      throw new DataError((err as Error).message);
    }
  }
  const url = `${opts.url.replace(/^ws/, 'http').replace(/\/$/, '')}/shard/${opts.client}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${opts.token}` } });
  } catch (err) {
    throw new DataError(`could not fetch the demo shard from ${url}: ${String(err)}`);
  }
  if (!res.ok)
    throw new DataError(
      `the server did not give the demo shard (${res.status}: ${(await res.text()).trim()})`,
    );
  try {
    return decodeShard(new Uint8Array(await res.arrayBuffer()), opts.client, url);
  } catch (err) {
    throw new DataError((err as Error).message);
  }
}

/** A failure in words a person understands. */
function describe(
  err: unknown,
  welcomed: boolean,
  opts: StartClient,
): { kind: FailureKind; message: string } {
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof BackendUnavailableError)
    return {
      kind: 'backend',
      message: `The ${opts.backend} backend is not available in this browser: ${text}. Choose another backend (wasm works everywhere).`,
    };
  if (err instanceof StorageFullError)
    return { kind: 'storage', message: `Storage full: ${text}.` };
  if (err instanceof DataError) return { kind: 'data', message: `No data to train on: ${text}.` };
  if (err instanceof ClientLoopError) {
    if (err.code === CLOSE.unauthenticated || err.code === CLOSE.forbidden)
      return {
        kind: 'token',
        message: `The server refused the token of client ${opts.client}: check the client id and the token (a join link gives both). The server said: ${text}`,
      };
    if (err.code === CLOSE.wrongVersion)
      return {
        kind: 'version',
        message: `The server speaks another protocol version than this page: open the page the server itself serves, or update it. The server said: ${text}`,
      };
    if (err.code === CLOSE.failed)
      return {
        kind: 'run-failed',
        message: `The run stopped on the server before its last round.`,
      };
    if (err.code === CLOSE.replaced)
      return {
        kind: 'other',
        message: `Client ${opts.client} joined again from another tab or device; this tab stopped.`,
      };
    if (text.startsWith('gave up'))
      return {
        kind: 'unreachable',
        message: welcomed
          ? `Lost the server at ${opts.url} and could not reconnect (${text}). Reload the page to try again: the client's state is kept.`
          : `Cannot reach the server at ${opts.url}: is \`fedslr serve\` running there, and is the address right? (${text})`,
      };
  }
  return { kind: 'other', message: text };
}
