/**
 * Checkpoints: everything a run needs to continue, in `<run>/checkpoints/round-NNNNNN/`:
 * `server.msgpack`, `clients/<id>.msgpack` (every client that has a state), `metrics.json` (the
 * evaluations so far) and, written last, `meta.json` with the round, time, communication totals,
 * the config and a SHA-256 of every file. A checkpoint is built under a temporary name and renamed
 * into place, so it either exists whole or not at all; the checksums catch later corruption.
 * Random numbers need no saving: every stream is derived from (seed, round, client).
 *
 * Every checkpoint holds its own copy of every file, so one corrupted or truncated file costs at
 * most the checkpoint it is in: loading falls back to the previous one, which shares no file with
 * it. (Hard links to unchanged client files, as before, made one bad file break every kept
 * checkpoint.) Disk cost: `keepCheckpoints` x (server state + every client's state), on top of
 * the disk store's own copy when client state lives on disk. A client file unchanged since the
 * previous checkpoint is copied from there after its bytes are checked against that checkpoint's
 * SHA-256; if they do not match, it is written from the client store instead, so a corruption is
 * never copied forward.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { StateRecord } from '../algorithms/types.js';
import { decodeServerState, encodeServerState } from '../codec/state.js';
import { InputError } from '../util/errors.js';
import { writeJsonAtomic } from '../util/fs.js';
import type { RunConfig } from './config.js';
import type { ClientEval, EvalRecord } from './events.js';
import type { Totals } from './simulate.js';
import type { ClientStore } from './store.js';

export const CHECKPOINT_DIR = 'checkpoints';
const FORMAT = 1;

export interface CheckpointMeta {
  format: number;
  round: number;
  time_s: number;
  totals: Totals;
  config: RunConfig;
  clients: number[];
  /** Relative path -> SHA-256 (hex) of every other file in the checkpoint. */
  files: Record<string, string>;
  /** Kept ranks after the last aggregation (the next evaluation records them), when known. */
  ranks?: EvalRecord['ranks'];
  /** A network fleet's own record (plain JSON: the commits its clients may still be owed). */
  fleet?: unknown;
}

export interface CheckpointData {
  round: number;
  time_s: number;
  totals: Totals;
  config: RunConfig;
  /** The server's state in the stored layout (its algorithm's codec makes it). */
  server: StateRecord;
  store: ClientStore;
  /** Clients whose state changed since the previous checkpoint. */
  dirty: ReadonlySet<number>;
  records: readonly EvalRecord[];
  clientEvals: readonly ClientEval[];
  ranks?: EvalRecord['ranks'];
  fleet?: unknown;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const roundDir = (round: number) => `round-${String(round).padStart(6, '0')}`;
const clientPath = (c: number) => `clients/${String(c).padStart(6, '0')}.msgpack`;

/** The file's bytes when they still have the SHA-256 `hash`, else undefined. */
function readVerified(path: string, hash: string): Uint8Array | undefined {
  try {
    const bytes = readFileSync(path);
    return sha256(bytes) === hash ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/** Names of the complete checkpoints of a run, oldest first. */
export function listCheckpoints(runDir: string): string[] {
  const dir = join(runDir, CHECKPOINT_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^round-\d{6}$/.test(n) && existsSync(join(dir, n, 'meta.json')))
    .sort();
}

/**
 * Writes a checkpoint and keeps only the newest `keep`. `previous` is the newest earlier
 * checkpoint's directory and meta (to copy unchanged client files from), if any.
 */
export function writeCheckpoint(
  runDir: string,
  data: CheckpointData,
  keep: number,
  previous?: { dir: string; meta: CheckpointMeta },
): { dir: string; meta: CheckpointMeta } {
  const root = join(runDir, CHECKPOINT_DIR);
  const final = join(root, roundDir(data.round));
  const tmp = `${final}.tmp-${process.pid}`;
  // Half-built checkpoints of this or an earlier (killed) process are never used: remove them.
  if (existsSync(root)) {
    for (const n of readdirSync(root))
      if (n.includes('.tmp-')) rmSync(join(root, n), { recursive: true, force: true });
  }
  mkdirSync(join(tmp, 'clients'), { recursive: true });
  const files: Record<string, string> = {};
  const put = (rel: string, bytes: Uint8Array) => {
    writeFileSync(join(tmp, rel), bytes);
    files[rel] = sha256(bytes);
  };
  put('server.msgpack', encodeServerState(data.server));
  put(
    'metrics.json',
    new TextEncoder().encode(JSON.stringify({ records: data.records, clients: data.clientEvals })),
  );
  const clients = data.store.ids();
  for (const c of clients) {
    const rel = clientPath(c);
    const prevHash = previous?.meta.files[rel];
    const unchanged =
      previous && prevHash && !data.dirty.has(c)
        ? readVerified(join(previous.dir, rel), prevHash)
        : undefined;
    if (unchanged) {
      writeFileSync(join(tmp, rel), unchanged);
      files[rel] = prevHash!;
    } else put(rel, data.store.encoded(c));
  }
  const meta: CheckpointMeta = {
    format: FORMAT,
    round: data.round,
    time_s: data.time_s,
    totals: { ...data.totals },
    config: data.config,
    clients,
    files,
    ...(data.ranks ? { ranks: data.ranks } : {}),
    ...(data.fleet === undefined ? {} : { fleet: data.fleet }),
  };
  writeJsonAtomic(join(tmp, 'meta.json'), meta);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  const all = listCheckpoints(runDir);
  for (const old of all.slice(0, Math.max(0, all.length - keep)))
    rmSync(join(root, old), { recursive: true, force: true });
  return { dir: final, meta };
}

export interface LoadedCheckpoint {
  dir: string;
  meta: CheckpointMeta;
  /** The server's state in the stored layout (its algorithm's codec reads it). */
  server: StateRecord;
  records: EvalRecord[];
  clientEvals: ClientEval[];
  /** Encoded client states, by client id. */
  clientBytes: (client: number) => Uint8Array;
}

/** Reads and verifies one checkpoint; throws naming the file that is missing or corrupt. */
export function readCheckpoint(dir: string): LoadedCheckpoint {
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  } catch (err) {
    throw new Error(`${dir}/meta.json: unreadable (${(err as Error).message})`);
  }
  if (meta.format !== FORMAT)
    throw new Error(`${dir}/meta.json: format ${meta.format}, expected ${FORMAT}`);
  const read = (rel: string): Uint8Array => {
    const hash = meta.files[rel];
    const path = join(dir, rel);
    if (!hash) throw new Error(`${dir}: meta.json lists no file '${rel}'`);
    let b: Uint8Array;
    try {
      b = readFileSync(path);
    } catch {
      throw new Error(`${path}: missing`);
    }
    if (sha256(b) !== hash) throw new Error(`${path}: checksum mismatch (corrupt or truncated)`);
    return b;
  };
  // Verify every file now (one at a time, so memory stays small); client files are read again
  // when restored.
  for (const rel of Object.keys(meta.files)) read(rel);
  const metrics = JSON.parse(new TextDecoder().decode(read('metrics.json')));
  return {
    dir,
    meta,
    server: decodeServerState(read('server.msgpack'), join(dir, 'server.msgpack')),
    records: metrics.records,
    clientEvals: metrics.clients,
    clientBytes: (c) => read(clientPath(c)),
  };
}

/**
 * The newest checkpoint that verifies, falling back to older ones. `skipped` lists the ones
 * rejected and why. Throws when none is usable.
 */
export function latestCheckpoint(runDir: string): LoadedCheckpoint & { skipped: string[] } {
  const names = listCheckpoints(runDir).reverse();
  const skipped: string[] = [];
  for (const n of names) {
    try {
      return { ...readCheckpoint(join(runDir, CHECKPOINT_DIR, n)), skipped };
    } catch (err) {
      skipped.push((err as Error).message);
    }
  }
  const why = skipped.length
    ? `:\n  ${skipped.join('\n  ')}`
    : ` (no ${CHECKPOINT_DIR}/round-* directory)`;
  throw new InputError(`no usable checkpoint in '${runDir}'${why}`);
}
