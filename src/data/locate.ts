/**
 * Finding dataset files on disk. A dataset's files are looked up, in order, in:
 *
 * 1. `dir` (config `data.dir`) and `dir/<subdir>`, when `dir` is given;
 * 2. `./data/<subdir>` (relative to the working directory);
 * 3. `~/.cache/fedslr/<subdir>`;
 * 4. any system directory the dataset names (e.g. `/usr/share/datasets/fashion-mnist`, where
 *    Debian's `dataset-fashion-mnist` package installs its files).
 *
 * The shared roots use a per-dataset `<subdir>` because MNIST and Fashion-MNIST use the same
 * file names. All of a dataset's files must sit in one directory; the first directory holding all
 * of them wins.
 */
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface SearchOptions {
  /** A directory given by the user (config `data.dir`), searched first. */
  readonly dir?: string;
  /** Also search `./data`, `~/.cache/fedslr` and system directories (default true). */
  readonly searchDefaults?: boolean;
}

/** One file a dataset needs, with the names it may have (first match wins). */
export interface FileWanted {
  readonly key: string;
  readonly names: readonly string[];
}

/** Raised when a dataset's files are not found; the message lists every place searched. */
export class DataNotFoundError extends Error {
  readonly searched: readonly string[];
  constructor(message: string, searched: readonly string[]) {
    super(message);
    this.name = 'DataNotFoundError';
    this.searched = searched;
  }
}

/** The cache directory users can download datasets into. */
export function cacheRoot(): string {
  return join(homedir(), '.cache', 'fedslr');
}

/** The directories searched for a dataset stored under `subdir`, in order. */
export function searchDirs(
  subdir: string,
  opts: SearchOptions = {},
  systemDirs: readonly string[] = [],
): string[] {
  const dirs: string[] = [];
  if (opts.dir !== undefined) dirs.push(resolve(opts.dir), resolve(opts.dir, subdir));
  if (opts.searchDefaults ?? true) {
    dirs.push(resolve('data', subdir), join(cacheRoot(), subdir), ...systemDirs);
  }
  return [...new Set(dirs)];
}

/** `name` and `name.gz`, the two forms IDX and binary dataset files come in. */
export function withGz(...names: string[]): string[] {
  return names.flatMap((n) => [n, `${n}.gz`]);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Finds all `files` in the first of `dirs` that holds every one of them. Returns the path of
 * each file by key. Throws a `DataNotFoundError` naming every directory searched, what each
 * lacked, and `howToGet`.
 */
export async function locateFiles(
  dataset: string,
  files: readonly FileWanted[],
  dirs: readonly string[],
  howToGet: string,
): Promise<Record<string, string>> {
  const report: string[] = [];
  for (const dir of dirs) {
    if (!(await isDir(dir))) {
      report.push(`  ${dir} (no such directory)`);
      continue;
    }
    const found: Record<string, string> = {};
    const missing: string[] = [];
    for (const f of files) {
      let hit: string | undefined;
      for (const name of f.names) {
        const p = join(dir, name);
        if (await isFile(p)) {
          hit = p;
          break;
        }
      }
      if (hit === undefined) missing.push(f.names[0]!);
      else found[f.key] = hit;
    }
    if (missing.length === 0) return found;
    report.push(`  ${dir} (missing ${missing.join(', ')})`);
  }
  if (report.length === 0) report.push('  nowhere: no directory given and default locations off');
  const wanted = files.map((f) => f.names.join(' or ')).join('\n  ');
  throw new DataNotFoundError(
    `dataset '${dataset}': files not found. Needed, all in one directory:\n  ${wanted}\n` +
      `Searched:\n${report.join('\n')}\n${howToGet}`,
    dirs,
  );
}
