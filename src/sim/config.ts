/**
 * The run configuration: one zod schema is the single source for config files, `--set` overrides,
 * defaults and error messages. Objects are strict, so a misspelled key is an error, not a setting
 * silently ignored. Defaults are FEDSLR.md's (the authors' defaults).
 *
 * A config is a task (runtime/task.ts: seed, model, train, algorithm; what a client needs) plus
 * the simulation's sections (rounds, evaluation, clients and their sampling, data and partition,
 * runtime, and the training backend, which is each process's own choice). `taskOf` extracts the
 * task.
 */
import { z } from 'zod';
import { secureAggregationRefusal } from '../algorithms/registry.js';
import { DATASET_NAMES } from '../data/load.js';
import type { InputShape } from '../models/index.js';
import {
  algorithmSectionSchema,
  modelSectionSchema,
  type Task,
  TRAIN_DEFAULTS,
  trainSettingsShape,
} from '../runtime/task.js';
import { minimumCohort, secureAggregationSchema } from '../secagg/options.js';
import { BACKEND_NAMES } from '../tensor/backend.js';
import { InputError } from '../util/errors.js';
import { suggest } from '../util/suggest.js';

const positiveInt = z.number().int().positive();

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
    algorithm: algorithmSectionSchema,
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
    model: modelSectionSchema,
    /** Secure aggregation (secagg/options.ts): the server learns only the sum of the updates. */
    secureAggregation: secureAggregationSchema.optional(),
    train: z
      .strictObject({
        ...trainSettingsShape,
        backend: z.enum(BACKEND_NAMES).default('auto'),
      })
      .default({ ...TRAIN_DEFAULTS, backend: 'auto' }),
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
    if (c.secureAggregation?.enabled) {
      const refusal = secureAggregationRefusal(c.algorithm);
      if (refusal)
        ctx.addIssue({ code: 'custom', path: ['secureAggregation', 'enabled'], message: refusal });
      const cohort = minimumCohort(c.secureAggregation);
      if (c.clients.sampling.kind === 'count' && c.clients.sampling.k < cohort)
        ctx.addIssue({
          code: 'custom',
          path: ['clients', 'sampling', 'k'],
          message: `secure aggregation with these neighbours and threshold needs at least ${cohort} participants per round, not ${c.clients.sampling.k}`,
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

/** The task of a run: what every client is told, given the data's sample shape and classes. */
export function taskOf(config: RunConfig, inputShape: InputShape, classes: number): Task {
  const { backend: _backend, ...train } = config.train;
  return {
    seed: config.seed,
    numClients: config.clients.count,
    model: { ...config.model, inputShape: [...inputShape], classes },
    train,
    algorithm: config.algorithm,
    ...(config.secureAggregation?.enabled ? { secureAggregation: config.secureAggregation } : {}),
  };
}
export type { AlgorithmConfig } from '../algorithms/registry.js';
export type ConfigInput = z.input<typeof configSchema>;

/** A config error that lists every problem, each with its key path. */
export class ConfigError extends InputError {
  override name = 'ConfigError';
}

/** Keys the schema allows at `path` of `input` (following discriminated unions by their tag). */
export function allowedKeys(path: readonly PropertyKey[], input: unknown): string[] {
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

function dotPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/**
 * Each issue as `path: message`, unknown keys and unknown kinds/names with the closest allowed one
 * ("did you mean"). `input` is the whole config; `prefix` is where the validated part sits in it
 * (issues of the algorithm schema alone have paths relative to `algorithm`).
 */
export function describeIssues(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  prefix: readonly PropertyKey[] = [],
): string[] {
  return issues.map((iss) => {
    const path = [...prefix, ...iss.path];
    const where = dotPath(path) || '(top level)';
    let msg = iss.message;
    if (iss.code === 'unrecognized_keys') {
      const allowed = allowedKeys(path, input);
      const keys = iss.keys.map((k) => `'${k}'${suggest(k, allowed)}`).join(', ');
      msg = `unknown key${iss.keys.length > 1 ? 's' : ''} ${keys}; allowed: ${allowed.join(', ')}`;
    } else if (iss.code === 'invalid_union' && 'options' in iss && Array.isArray(iss.options)) {
      let given: unknown = input;
      for (const k of path) given = (given as Record<PropertyKey, unknown> | undefined)?.[k];
      const options = iss.options.map(String);
      msg = `'${String(given)}' is not one of ${options.join(', ')}${suggest(String(given), options)}`;
    }
    return `${where}: ${msg}`;
  });
}

/** Validates a config object; throws ConfigError naming every bad key and what was expected. */
export function parseConfig(input: unknown, source = 'config'): RunConfig {
  const r = configSchema.safeParse(input);
  if (r.success) return r.data;
  const lines = describeIssues(r.error.issues, input).map((l) => `  ✖ ${l}`);
  throw new ConfigError(`${source} is not valid:\n${lines.join('\n')}`);
}
