/**
 * Where clients' personal state lives between rounds. Two implementations behind one interface:
 * in memory (a Map), and on disk (one file per client, atomic writes, sparse encoding when that is
 * smaller, a small in-memory cache). The simulator, checkpoints and the network client use it.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StateCodec } from '../algorithms/types.js';
import { decodeClientState, encodeClientState } from '../codec/state.js';
import { writeFileAtomic } from '../util/fs.js';

/** Client states of one algorithm, typed `T` (what its client codec reads and writes). */
export interface ClientStore<T = unknown> {
  readonly kind: 'memory' | 'disk';
  get(client: number): T | undefined;
  set(client: number, state: T): void;
  /** Clients that have a state, ascending. */
  ids(): number[];
  /** The client's state as stored bytes (for checkpoints). */
  encoded(client: number): Uint8Array;
}

export class MemoryStore<T> implements ClientStore<T> {
  readonly kind = 'memory';
  private readonly states = new Map<number, T>();

  constructor(private readonly codec: StateCodec<T>) {}

  get(client: number): T | undefined {
    return this.states.get(client);
  }

  set(client: number, state: T): void {
    this.states.set(client, state);
  }

  ids(): number[] {
    return [...this.states.keys()].sort((a, b) => a - b);
  }

  encoded(client: number): Uint8Array {
    const s = this.states.get(client);
    if (!s) throw new Error(`client store: no state for client ${client}`);
    return encodeClientState(this.codec.toRecord(s));
  }
}

const clientFile = (client: number) => `${String(client).padStart(6, '0')}.msgpack`;

export class DiskStore<T> implements ClientStore<T> {
  readonly kind = 'disk';
  private readonly cache = new Map<number, T>();
  private readonly known = new Set<number>();

  /** Starts empty: any files already in `dir` are removed. */
  constructor(
    readonly dir: string,
    private readonly codec: StateCodec<T>,
    private readonly cacheSize = 16,
  ) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }

  private touch(client: number, state: T): void {
    this.cache.delete(client);
    this.cache.set(client, state);
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
  }

  get(client: number): T | undefined {
    const hit = this.cache.get(client);
    if (hit) {
      this.touch(client, hit);
      return hit;
    }
    if (!this.known.has(client)) return undefined;
    const path = join(this.dir, clientFile(client));
    const state = this.codec.fromRecord(decodeClientState(readFileSync(path), path), path);
    this.touch(client, state);
    return state;
  }

  set(client: number, state: T): void {
    writeFileAtomic(
      join(this.dir, clientFile(client)),
      encodeClientState(this.codec.toRecord(state)),
    );
    this.known.add(client);
    this.touch(client, state);
  }

  /** Adopts an encoded state as is (used when restoring a checkpoint). */
  setEncoded(client: number, bytes: Uint8Array): void {
    writeFileAtomic(join(this.dir, clientFile(client)), bytes);
    this.known.add(client);
    this.cache.delete(client);
  }

  ids(): number[] {
    return [...this.known].sort((a, b) => a - b);
  }

  encoded(client: number): Uint8Array {
    return readFileSync(this.file(client));
  }

  private file(client: number): string {
    if (!this.known.has(client)) throw new Error(`client store: no state for client ${client}`);
    return join(this.dir, clientFile(client));
  }
}

export type StoreKind = 'auto' | 'memory' | 'disk';

/**
 * Chooses the store: `auto` keeps states in memory when their estimated total size fits in
 * `memoryBudget` bytes, on disk otherwise.
 */
export function chooseStore(
  kind: StoreKind,
  estimatedBytes: number,
  memoryBudget: number,
): 'memory' | 'disk' {
  if (kind !== 'auto') return kind;
  return estimatedBytes <= memoryBudget ? 'memory' : 'disk';
}
