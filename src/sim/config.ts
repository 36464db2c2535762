/**
 * The run configuration: one zod schema is the single source for config files, `--set` overrides,
 * defaults and error messages. Objects are strict, so a misspelled key is an error, not a setting
 * silently ignored. Defaults are FEDSLR.md's (the authors' defaults).
 */
import { z } from 'zod';
import { FEDSLR_DEFAULTS } from '../algorithms/fedslr.js';
import { algorithmSchema } from '../algorithms/registry.js';
import { DATASET_NAMES } from '../data/load.js';
import { MODEL_NAMES } from '../models/index.js';
import { BACKEND_NAMES } from '../tensor/backend.js';

const positiveInt = z.number().int().positive();
const nonNegative = z.number().nonnegative();

const partitionSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('iid') }),
  z.strictObject({
    kind: z.literal('dirichlet'),
    alpha: z.number().positive().default(0.3),
    minSize: z.number().int().nonnegative().default(10),
  }),
  z.strictObject({ kind: z.literal('pathological'), classesPerClient: positiveInt.default(2) }),
  z.strictObject({ kind: z.literal('file'), path: z.string().min(1) }),
]);

const samplingSchema = z.discriminatedUnion('kind', [
  /** Each client joins independently with probability q; nobody drawn means draw again. */
  z.strictObject({ kind: z.literal('fraction'), q: z.number().gt(0).lte(1).default(0.1) }),
  /** Exactly k clients, uniformly without replacement. */
  z.strictObject({ kind: z.literal('count'), k: positiveInt }),
]);

export const configSchema = z
  .strictObject({
    seed: z.number().int().nonnegative().default(0),
    rounds: z.number().int().nonnegative().default(100),
    evalEvery: positiveInt.default(5),
    clients: z
      .strictObject({
        count: positiveInt.default(100),
        sampling: samplingSchema.default({ kind: 'fraction', q: 0.1 }),
      })
      .default({ count: 100, sampling: { kind: 'fraction', q: 0.1 } }),
    algorithm: algorithmSchema.default({ name: 'fedslr', ...FEDSLR_DEFAULTS }),
    data: z
      .strictObject({
        dataset: z.enum(DATASET_NAMES).default('mnist'),
        /** Where dataset files are looked up first. */
        dir: z.string().optional(),
        partition: partitionSchema.default({ kind: 'dirichlet', alpha: 0.3, minSize: 10 }),
        /** K of the evaluation protocol: floor(share_c * K) test images of class c per client. */
        testPerClient: positiveInt.default(100),
      })
      .default({
        dataset: 'mnist',
        partition: { kind: 'dirichlet', alpha: 0.3, minSize: 10 },
        testPerClient: 100,
      }),
    model: z
      .strictObject({
        name: z.enum(MODEL_NAMES).default('cnn'),
        /** Hidden layer sizes (mlp only). */
        hidden: z.array(positiveInt).optional(),
      })
      .default({ name: 'cnn' }),
    train: z
      .strictObject({
        lr: z.number().positive().default(0.1),
        lrDecay: z.number().positive().lte(1).default(0.998),
        weightDecay: nonNegative.default(1e-3),
        batchSize: positiveInt.default(20),
        epochs: z.number().int().nonnegative().default(2),
        backend: z.enum(BACKEND_NAMES).default('auto'),
      })
      .default({
        lr: 0.1,
        lrDecay: 0.998,
        weightDecay: 1e-3,
        batchSize: 20,
        epochs: 2,
        backend: 'auto',
      }),
    runtime: z
      .strictObject({
        /** Where client state lives: memory, disk, or auto (memory when it fits memoryBudget). */
        store: z.enum(['auto', 'memory', 'disk']).default('auto'),
        /** Bytes of client state to keep in memory before `auto` chooses the disk store. */
        memoryBudget: z.number().positive().default(4e9),
        /** Clients trained in parallel by worker threads (0: one per core; 1: in the main thread). */
        workers: z.number().int().nonnegative().default(0),
        /**
         * XNNPACK threads of the main thread's wasm backend (0: one per core, at most 8): the
         * server step, and training and evaluation when workers is 1. Worker threads use one each.
         */
        threads: z.number().int().min(0).max(8).default(0),
        /** Also checkpoint every this many rounds (0: only at evaluations and at the end). */
        checkpointEvery: z.number().int().nonnegative().default(0),
        /** Checkpoints kept (the newest); older ones are deleted. */
        keepCheckpoints: positiveInt.default(2),
      })
      .default({
        workers: 0,
        threads: 0,
        store: 'auto',
        memoryBudget: 4e9,
        checkpointEvery: 0,
        keepCheckpoints: 2,
      }),
  })
  .superRefine((c, ctx) => {
    if (c.clients.sampling.kind === 'count' && c.clients.sampling.k > c.clients.count) {
      ctx.addIssue({
        code: 'custom',
        path: ['clients', 'sampling', 'k'],
        message: `cannot draw ${c.clients.sampling.k} clients out of ${c.clients.count}`,
      });
    }
    if (c.model.hidden && c.model.name !== 'mlp') {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'hidden'],
        message: `only the mlp has hidden sizes, not '${c.model.name}'`,
      });
    }
  });

export type RunConfig = z.output<typeof configSchema>;
export type { AlgorithmConfig } from '../algorithms/registry.js';
export type ConfigInput = z.input<typeof configSchema>;

/** A config error that lists every problem, each with its key path. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly exitCode = 2;
}

/** Keys the schema allows at `path` of `input` (following discriminated unions by their tag). */
function allowedKeys(path: readonly PropertyKey[], input: unknown): string[] {
  let schema: z.ZodType = configSchema;
  let value = input as Record<PropertyKey, unknown> | undefined;
  for (let i = 0; ; i++) {
    let def = schema._zod.def as {
      type: string;
      innerType?: z.ZodType;
      in?: z.ZodType;
      shape?: Record<string, z.ZodType>;
      options?: z.ZodType[];
      discriminator?: string;
    };
    while (def.innerType || def.in) {
      schema = (def.innerType ?? def.in)!;
      def = schema._zod.def as typeof def;
    }
    if (def.type === 'union' && def.options && def.discriminator) {
      const tag = value?.[def.discriminator];
      const match = def.options.find((o) => {
        const lit = (o as z.ZodObject).shape[def.discriminator!] as z.ZodLiteral | undefined;
        return lit?.def.values.includes(tag as never);
      });
      if (!match) return [];
      schema = match;
      def = schema._zod.def as typeof def;
    }
    if (def.type !== 'object' || !def.shape) return [];
    if (i === path.length) return Object.keys(def.shape);
    const key = String(path[i]);
    schema = def.shape[key] as z.ZodType;
    if (!schema) return [];
    value = value?.[key] as typeof value;
  }
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
    }
  }
  return d[a.length]![b.length]!;
}

function suggest(key: string, allowed: readonly string[]): string {
  const best = allowed
    .map((k) => ({ k, d: editDistance(key, k) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(x.k.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  return best ? ` (did you mean '${best.k}'?)` : '';
}

function dotPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/** Validates a config object; throws ConfigError naming every bad key and what was expected. */
export function parseConfig(input: unknown, source = 'config'): RunConfig {
  const r = configSchema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((iss) => {
    const where = dotPath(iss.path) || '(top level)';
    let msg = iss.message;
    if (iss.code === 'unrecognized_keys') {
      const allowed = allowedKeys(iss.path, input);
      const keys = iss.keys.map((k) => `'${k}'${suggest(k, allowed)}`).join(', ');
      msg = `unknown key${iss.keys.length > 1 ? 's' : ''} ${keys}; allowed: ${allowed.join(', ')}`;
    }
    return `  ✖ ${where}: ${msg}`;
  });
  throw new ConfigError(`${source} is not valid:\n${lines.join('\n')}`);
}
