/**
 * The `fedslr` command as a child process, run from the sources: src/cli/main.ts bundled once
 * (src/util/source_bundle.ts) into node_modules/.cache, where its `../../package.json` is the
 * package's, as for dist/cli/main.js. Also what the tests of such processes share: bounded waits
 * and the reading of a served run's event log.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFromSource } from '../src/util/source_bundle.js';

export function cliScript(): Promise<string> {
  return bundleFromSource('src/cli/main.ts', 'fedslr-cli');
}

/** Resolves with `p`, or rejects after `ms` saying what was awaited. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Polls `read` until `pattern` matches it (bounded). */
export async function waitForText(
  read: () => string,
  pattern: RegExp,
  ms: number,
): Promise<string> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    const m = pattern.exec(read());
    if (m) return m[1] ?? m[0];
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${pattern} within ${ms} ms in:\n${read()}`);
}

/** The events of a served run's `federation.jsonl`, in order. */
export function federationLog(runDir: string): Record<string, unknown>[] {
  return readFileSync(join(runDir, 'federation.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
