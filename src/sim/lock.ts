/**
 * An exclusive lock on a run (or comparison) directory, so that two processes never write the
 * same run. The lock is the file `fedslr.lock`, created with O_EXCL (atomic: exactly one creator
 * wins) and holding the owner's pid, host and start time. A lock left by a process that died
 * (SIGKILL, power loss) is stale when its host is this host and its pid is no longer alive; it is
 * then replaced. A lock from another host is never taken over: the message says how to remove it.
 * `release` deletes the file; it also runs when the process exits normally.
 * (Two processes that find the same stale lock at the same instant could both replace it; that
 * needs a crashed owner and a simultaneous double start, and is not guarded against.)
 */
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fsCause, makeDir } from '../util/dir.js';
import { InputError } from '../util/errors.js';

export const LOCK_FILE = 'fedslr.lock';

interface LockOwner {
  pid: number;
  host: string;
  started: string;
}

export interface DirLock {
  readonly path: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockOwner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.started === 'string')
      return o as LockOwner;
  } catch {
    // Unreadable or not yet written: see isStale.
  }
  return undefined;
}

/** A lock file without an owner is being written (young) or was left by a writer that died (old). */
const UNWRITTEN_STALE_MS = 10_000;

function isStale(path: string, owner: LockOwner | undefined, host: string): boolean {
  if (owner) return owner.host === host && !alive(owner.pid);
  try {
    return Date.now() - statSync(path).mtimeMs > UNWRITTEN_STALE_MS;
  } catch {
    return true;
  }
}

/**
 * Creates `dir` if needed and locks it. Throws an InputError when another live
 * process holds the lock, naming it, or when the directory cannot be created or written.
 */
export function lockDir(dir: string, what = 'run directory'): DirLock {
  makeDir(dir, what);
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new InputError(`cannot write in ${what} '${dir}': ${fsCause(err)}`);
      const owner = readOwner(path);
      const stale = isStale(path, owner, me.host);
      if (stale && attempt === 0) {
        rmSync(path, { force: true });
        continue;
      }
      const who = owner
        ? `process ${owner.pid} on ${owner.host}, started ${owner.started}`
        : 'another process';
      throw new InputError(
        `${what} '${dir}' is in use by ${who} (lock file ${path}); wait for it to finish, choose another directory, or delete the lock file if that process is gone`,
      );
    }
    try {
      writeSync(fd, `${JSON.stringify(me)}\n`);
    } finally {
      closeSync(fd);
    }
    break;
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    rmSync(path, { force: true });
  };
  process.on('exit', release);
  return { path, release };
}

/** Runs `body` holding the lock on `dir`, releasing it on success and on error. */
export async function withDirLock<T>(
  dir: string,
  body: () => Promise<T>,
  what = 'run directory',
): Promise<T> {
  const lock = lockDir(dir, what);
  try {
    return await body();
  } finally {
    lock.release();
  }
}
