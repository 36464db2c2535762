/**
 * Split files: JSON `{"train": [[i, ...], ...], "test": [[j, ...], ...]}` giving, per client,
 * indices into the dataset's training set and (optionally) its test set. They let users bring
 * their own split and replay a run's split exactly. Other top-level keys are ignored. Within a
 * client an index may appear only once; clients may share indices.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';

export interface SplitIndices {
  readonly train: Int32Array[];
  readonly test?: Int32Array[];
}

export interface SplitFileLimits {
  /** Size of the training set (train indices must be below it). */
  readonly nTrain: number;
  /** Size of the test set (test indices must be below it). */
  readonly nTest: number;
  /** Required number of clients, when the config fixes it. */
  readonly clients?: number;
}

function parseClients(
  value: unknown,
  key: 'train' | 'test',
  limit: number,
  source: string,
): Int32Array[] {
  if (!Array.isArray(value)) {
    throw new Error(`${source}: "${key}" must be an array with one array of indices per client`);
  }
  if (value.length === 0) throw new Error(`${source}: "${key}" lists no clients`);
  return value.map((list: unknown, client) => {
    const where = `${source}: "${key}"[${client}]`;
    if (!Array.isArray(list)) throw new Error(`${where} must be an array of indices`);
    if (list.length === 0) throw new Error(`${where} is empty; every client needs samples`);
    const out = new Int32Array(list.length);
    const seen = new Set<number>();
    list.forEach((v: unknown, pos) => {
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        throw new Error(`${where}[${pos}] must be an integer index, got ${JSON.stringify(v)}`);
      }
      if (v < 0 || v >= limit) {
        throw new Error(
          `${where}[${pos}] = ${v} is out of range: the ${key} set has ${limit} samples ` +
            `(indices 0..${limit - 1})`,
        );
      }
      if (seen.has(v)) throw new Error(`${where} lists index ${v} more than once`);
      seen.add(v);
      out[pos] = v;
    });
    return out;
  });
}

/** Validates a parsed split file. `source` names the file in errors. */
export function parseSplit(json: unknown, limits: SplitFileLimits, source: string): SplitIndices {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${source}: expected a JSON object with "train" (and optionally "test")`);
  }
  const obj = json as Record<string, unknown>;
  if (!Object.hasOwn(obj, 'train')) {
    throw new Error(`${source}: missing key "train" (per-client lists of training indices)`);
  }
  const train = parseClients(obj.train, 'train', limits.nTrain, source);
  if (limits.clients !== undefined && train.length !== limits.clients) {
    throw new Error(
      `${source}: "train" has ${train.length} clients but the config asks for ${limits.clients}`,
    );
  }
  if (!Object.hasOwn(obj, 'test') || obj.test === undefined) return { train };
  const test = parseClients(obj.test, 'test', limits.nTest, source);
  if (test.length !== train.length) {
    throw new Error(`${source}: "test" has ${test.length} clients but "train" has ${train.length}`);
  }
  return { train, test };
}

/** Reads and validates a split file. */
export async function readSplitFile(path: string, limits: SplitFileLimits): Promise<SplitIndices> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`split file ${path}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseSplit(json, limits, path);
}

/** The JSON text of a split (one client per line). */
export function formatSplit(split: SplitIndices): string {
  const block = (clients: Int32Array[]) =>
    `[\n${clients.map((c) => `    [${Array.from(c).join(',')}]`).join(',\n')}\n  ]`;
  const parts = [`  "train": ${block(split.train)}`];
  if (split.test !== undefined) parts.push(`  "test": ${block(split.test)}`);
  return `{\n${parts.join(',\n')}\n}\n`;
}

/** Writes a split file atomically (temp file + rename). */
export async function writeSplitFile(path: string, split: SplitIndices): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, formatSplit(split));
  await rename(tmp, path);
}
