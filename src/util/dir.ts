/**
 * Creating an output directory with an error a user can act on. Node's `mkdirSync(p, {recursive})`
 * loops forever on paths the kernel refuses with ENOENT although the parent exists (`/proc/x`),
 * and reports a missing ancestor's ENOENT where the real cause is a read-only file system. So the
 * missing components are created one at a time, each with a plain `mkdir`, and the first failure
 * is reported with the path and its real cause.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from './errors.js';

const CAUSES: Record<string, string> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a path component is a file, not a directory',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'name too long',
  // The parent exists (it is created or checked first), so the file system itself refuses it.
  ENOENT: 'the file system does not allow creating it (as in /proc or /sys)',
};

/** "what went wrong (CODE)" for an fs error, in words. */
export function fsCause(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words = code ? CAUSES[code] : undefined;
  return words ? `${words} (${code})` : (err as Error).message;
}

/**
 * Creates `dir` and its missing parents. Throws an InputError naming `dir`, the
 * component that could not be created and the real cause.
 */
export function makeDir(dir: string, what = 'output directory'): void {
  const missing: string[] = [];
  let p = resolve(dir);
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw cannotCreate(dir, p, err, what);
      missing.push(p);
      const up = dirname(p);
      if (up === p) break;
      p = up;
      continue;
    }
    if (!isDir) {
      const err = Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      throw cannotCreate(dir, p, err, what);
    }
    break;
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && statSync(m).isDirectory()) continue;
      throw cannotCreate(dir, m, err, what);
    }
  }
}

function cannotCreate(dir: string, at: string, err: unknown, what: string): Error {
  const where = resolve(dir) === at ? '' : ` (at '${at}')`;
  return new InputError(`cannot create ${what} '${dir}'${where}: ${fsCause(err)}`);
}
