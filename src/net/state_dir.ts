/**
 * A network client's state directory: what survives a restart of `fedslr join`.
 *   task.json       the task of the run the state belongs to (a different run is refused)
 *   state.msgpack   the client's committed state, encoded as in checkpoints (codec/state.ts)
 *   pending.msgpack the state training produced, with its round and attempt, until the server's
 *                   commit says whether it was aggregated (runtime/host.ts)
 *   committed.json  { "round": r }: the last round whose commit the client applied (-1: none)
 * Every file is written atomically, so a client killed at any point restarts with its committed
 * state, and with the pending one that a commit sent again on reconnection can still commit.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StateCodec } from '../algorithms/types.js';
import { decodeClientState, encodeClientState } from '../codec/state.js';
import { pack, unpack } from '../codec/wire.js';
import type { HostStateStore, PendingState } from '../runtime/host.js';
import type { Task } from '../runtime/task.js';
import { InputError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.js';

export class StateDir {
  constructor(
    readonly dir: string,
    readonly client: number,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private path(name: string): string {
    return join(this.dir, name);
  }

  /** The last round whose commit was applied; -1 when none was. */
  lastCommitted(): number {
    const path = this.path('committed.json');
    if (!existsSync(path)) return -1;
    const round = (JSON.parse(readFileSync(path, 'utf8')) as { round?: unknown }).round;
    if (!Number.isInteger(round) || (round as number) < -1)
      throw new InputError(`${path}: 'round' is not an integer from -1`);
    return round as number;
  }

  setLastCommitted(round: number): void {
    writeJsonAtomic(this.path('committed.json'), { round });
  }

  /** Records the run's task, or refuses one that differs from the task recorded. */
  adopt(task: Task): void {
    const path = this.path('task.json');
    const text = `${JSON.stringify(task, null, 2)}\n`;
    if (!existsSync(path)) writeFileAtomic(path, text);
    else if (readFileSync(path, 'utf8') !== text)
      throw new InputError(
        `state directory '${this.dir}' belongs to another run (its task.json differs from the server's task); use an empty --state-dir`,
      );
  }

  /** The client's committed state as a host's store, read and written with `codec`. */
  store(codec: StateCodec<unknown>): HostStateStore {
    const path = this.path('state.msgpack');
    const pendingPath = this.path('pending.msgpack');
    const own = (client: number) => {
      if (client !== this.client)
        throw new Error(`state directory of client ${this.client} asked for client ${client}`);
    };
    const decode = (bytes: Uint8Array, where: string) =>
      codec.fromRecord(decodeClientState(bytes, where), where);
    return {
      load: async (client) => {
        own(client);
        return existsSync(path) ? decode(readFileSync(path), path) : undefined;
      },
      save: async (client, state) => {
        own(client);
        writeFileAtomic(path, encodeClientState(codec.toRecord(state)));
      },
      savePending: async (client, pending) => {
        own(client);
        if (!pending) return rmSync(pendingPath, { force: true });
        const state = encodeClientState(codec.toRecord(pending.state));
        writeFileAtomic(
          pendingPath,
          pack({ round: pending.round, attempt: pending.attempt, state }),
        );
      },
      loadPending: async (client): Promise<PendingState | undefined> => {
        own(client);
        if (!existsSync(pendingPath)) return undefined;
        const raw = unpack(readFileSync(pendingPath)) as Record<string, unknown> | null;
        const { round, attempt, state } = raw ?? {};
        if (!isCount(round) || !isCount(attempt) || !(state instanceof Uint8Array))
          throw new InputError(`${pendingPath}: expected { round, attempt, state } of a client`);
        return { round, attempt, state: decode(state, pendingPath) };
      },
    };
  }
}

function isCount(x: unknown): x is number {
  return Number.isInteger(x) && (x as number) >= 0;
}
