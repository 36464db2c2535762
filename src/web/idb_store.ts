/**
 * A browser client's state in IndexedDB: what survives a reload or a closed and reopened tab.
 * Database `fedslr`, object store `state`, one key per item of a client of a server,
 * `<ws URL>#<client id>/<item>`:
 *   task       the run's task (JSON text): a record of another run is refused
 *   committed  the committed state (P_i, pi_i, ...), encoded as in checkpoints (codec/state.ts),
 *              as an ArrayBuffer
 *   pending    { round, attempt, state: ArrayBuffer }: the state training produced, until the
 *              server's commit says whether it was aggregated (runtime/host.ts)
 *   round      the last round whose commit was applied (-1: none)
 *   data       the client's samples (shape, classes, train and test x/y as ArrayBuffers), so a
 *              reload trains on the same data without asking for it again
 *   history    the client's accuracies at each evaluation (the page's chart)
 * An ArrayBuffer of 1 MiB or more in these values is kept in OPFS where the browser has it, the
 * value naming its file (opfs_files.ts).
 * Every write is its own transaction, so a tab closed at any point reopens with its committed
 * state, as a killed `fedslr join` restarts from its state directory (net/state_dir.ts).
 */
import type { StateCodec } from '../algorithms/types.js';
import { decodeClientState, encodeClientState } from '../codec/state.js';
import type { ClientData, ClientSamples } from '../data/clients.js';
import type { CommittedRound } from '../runtime/client_loop.js';
import type { HostStateStore, PendingState } from '../runtime/host.js';
import type { Task } from '../runtime/task.js';
import type { EvalPoint } from './messages.js';
import { fileRefs, OpfsFiles } from './opfs_files.js';

const DB_NAME = 'fedslr';
const STORE = 'state';

/** The browser's storage for this site is full (IndexedDB's QuotaExceededError). */
export class StorageFullError extends Error {
  override name = 'StorageFullError';
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDb(): Promise<IDBDatabase> {
  const r = indexedDB.open(DB_NAME, 1);
  r.onupgradeneeded = () => r.result.createObjectStore(STORE);
  return request(r);
}

/** A copy of `view`'s bytes as an ArrayBuffer of their own (what IndexedDB stores). */
function ownBuffer(view: ArrayBufferView): ArrayBuffer {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice().buffer;
}

interface StoredSamples {
  x: ArrayBuffer;
  y: ArrayBuffer;
}

interface StoredData {
  shape: [number, number, number];
  classes: number;
  train: StoredSamples;
  test: StoredSamples;
}

export class IdbClientState {
  private constructor(
    private readonly db: IDBDatabase,
    /** `<ws URL>#<client id>`: the prefix of this client's keys. */
    readonly key: string,
    readonly client: number,
    /** Where large ArrayBuffers go; undefined without OPFS (all in IndexedDB). */
    private readonly files: OpfsFiles | undefined,
  ) {}

  static async open(url: string, client: number): Promise<IdbClientState> {
    const key = `${url}#${client}`;
    const state = new IdbClientState(await openDb(), key, client, await OpfsFiles.open(key));
    const all = await request(state.db.transaction(STORE).objectStore(STORE).getAll(state.range));
    await state.files?.sweep(new Set(all.flatMap(fileRefs)));
    return state;
  }

  private get range(): IDBKeyRange {
    return IDBKeyRange.bound(`${this.key}/`, `${this.key}/\uffff`);
  }

  private async raw(item: string): Promise<unknown> {
    return request(this.db.transaction(STORE).objectStore(STORE).get(`${this.key}/${item}`));
  }

  private async get(item: string): Promise<unknown> {
    const value = await this.raw(item);
    return this.files ? this.files.load(value, `IndexedDB: ${item}`) : value;
  }

  /** Puts `value`; its large ArrayBuffers go to new OPFS files, the old value's are deleted. */
  private async put(item: string, value: unknown): Promise<void> {
    const old = this.files ? fileRefs(await this.raw(item)) : [];
    let stored = value;
    if (this.files)
      try {
        stored = await this.files.store(value, item);
      } catch (err) {
        throw (err as Error).name === 'QuotaExceededError' ? storageFull(`saving ${item}`) : err;
      }
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put(stored, `${this.key}/${item}`);
    try {
      await transactionDone(tx, `saving ${item}`);
    } catch (err) {
      await this.files?.remove(fileRefs(stored));
      throw err;
    }
    await this.files?.remove(old);
  }

  private async delete(item: string): Promise<void> {
    const old = this.files ? fileRefs(await this.raw(item)) : [];
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).delete(`${this.key}/${item}`);
    await transactionDone(tx, `deleting ${item}`);
    await this.files?.remove(old);
  }

  /** Deletes everything kept for this client of this server. */
  async deleteAll(): Promise<void> {
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).delete(this.range);
    await transactionDone(tx, 'deleting the client');
    await this.files?.removeAll(this.key);
  }

  close(): void {
    this.db.close();
  }

  /** The last round whose commit was applied, kept beside the state. */
  committedRound(): CommittedRound {
    return {
      read: async () => {
        const round = await this.get('round');
        return typeof round === 'number' ? round : -1;
      },
      write: (round) => this.put('round', round),
    };
  }

  /** Records the run's task, or refuses one that differs from the task recorded. */
  async adopt(task: Task): Promise<void> {
    const text = JSON.stringify(task);
    const known = await this.get('task');
    if (known === undefined) return this.put('task', text);
    if (known !== text)
      throw new Error(
        `this browser holds client ${this.client}'s state of another run of this server; leave that federation (deleting its data) to join this run`,
      );
  }

  /** The client's evaluations so far, in the order they came. */
  async history(): Promise<EvalPoint[]> {
    const h = await this.get('history');
    return Array.isArray(h) ? (h as EvalPoint[]) : [];
  }

  /** Adds an evaluation to the history (one after `round` rounds replaces an earlier one). */
  async addEval(point: EvalPoint): Promise<void> {
    const h = (await this.history()).filter((p) => p.round !== point.round);
    await this.put('history', [...h, point]);
  }

  /** The client's samples kept at its first join, if any. */
  async data(): Promise<ClientData | undefined> {
    const d = (await this.get('data')) as StoredData | undefined;
    if (!d) return undefined;
    const samples = (s: StoredSamples): ClientSamples => {
      const y = new Int32Array(s.y);
      return { x: new Float32Array(s.x), y, size: y.length };
    };
    return {
      id: this.client,
      shape: d.shape,
      classes: d.classes,
      train: samples(d.train),
      test: samples(d.test),
    };
  }

  async saveData(data: ClientData): Promise<void> {
    const samples = (s: ClientSamples): StoredSamples => ({ x: ownBuffer(s.x), y: ownBuffer(s.y) });
    const stored: StoredData = {
      shape: [...data.shape],
      classes: data.classes,
      train: samples(data.train),
      test: samples(data.test),
    };
    await this.put('data', stored);
  }

  /** The client's states as a host's store, read and written with `codec`. */
  store(codec: StateCodec<unknown>): HostStateStore {
    const own = (client: number) => {
      if (client !== this.client)
        throw new Error(`the store of client ${this.client} asked for client ${client}`);
    };
    const encode = (state: unknown) => ownBuffer(encodeClientState(codec.toRecord(state)));
    const decode = (bytes: ArrayBuffer, where: string) =>
      codec.fromRecord(decodeClientState(new Uint8Array(bytes), where), where);
    return {
      load: async (client) => {
        own(client);
        const bytes = await this.get('committed');
        return bytes instanceof ArrayBuffer ? decode(bytes, 'IndexedDB: committed') : undefined;
      },
      save: async (client, state) => {
        own(client);
        await this.put('committed', encode(state));
      },
      savePending: async (client, pending) => {
        own(client);
        if (!pending) return this.delete('pending');
        const { round, attempt, state } = pending;
        await this.put('pending', { round, attempt, state: encode(state) });
      },
      loadPending: async (client): Promise<PendingState | undefined> => {
        own(client);
        const p = (await this.get('pending')) as
          | { round: number; attempt: number; state: ArrayBuffer }
          | undefined;
        return (
          p && { round: p.round, attempt: p.attempt, state: decode(p.state, 'IndexedDB: pending') }
        );
      },
    };
  }
}

function storageFull(what: string): StorageFullError {
  return new StorageFullError(
    `the browser's storage for this site is full (${what}): free some space, or allow this site more storage, and reload`,
  );
}

/** Resolves when `tx` commits; a full quota becomes a StorageFullError. */
function transactionDone(tx: IDBTransaction, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    const fail = () => {
      const err = tx.error;
      if (err?.name === 'QuotaExceededError') reject(storageFull(what));
      else reject(err ?? new Error(`IndexedDB: ${what} was aborted`));
    };
    tx.onerror = fail;
    tx.onabort = fail;
  });
}

/** Asks the browser to keep this site's storage under storage pressure; resolves whether it will. */
export async function askPersistentStorage(): Promise<boolean> {
  try {
    return (await navigator.storage?.persist?.()) ?? false;
  } catch {
    return false;
  }
}
