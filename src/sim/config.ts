/**
 * The run configuration: one zod schema is the single source for config files, `--set` overrides,
 * defaults and error messages. Objects are strict, so a misspelled key is an error, not a setting
 * silently ignored. Defaults are FEDSLR.md's (the authors' defaults).
 */
import { z } from 'zod';
import { DATASET_NAMES } from '../data/load.js';
import { MODEL_NAMES } from '../models/index.js';
import { BACKEND_NAMES } from '../tensor/backend.js';

const positiveInt = z.number().int().positive();
const nonNegative = z.number().nonnegative();

const fraction = z.number().gt(0).lte(1);
/** Exactly one of two keys of a budget (rank: rank | fraction; bytes: bytes | fraction). */
const oneOf = (keys: [string, string]) => (v: Record<string, unknown>, ctx: z.RefinementCtx) => {
  const given = keys.filter((k) => v[k] !== undefined);
  if (given.length !== 1)
    ctx.addIssue({
      code: 'custom',
      path: given.length ? [given[1]!] : [],
      message: `mode ${String(v['mode'])} takes exactly one of ${keys.join(', ')}${given.length ? `, got both` : ''}`,
    });
};

/** The server's low-rank step: SVT at mu / alpha (absolute) or a budget; see svt_modes.ts. */
const svtSchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('absolute') }),
  /** Soft threshold at `fraction` of each matrix's largest singular value. */
  z.strictObject({ mode: z.literal('relative'), fraction: z.number().gt(0).lt(1) }),
  /** Keep the smallest rank holding `fraction` of each matrix's squared spectrum. */
  z.strictObject({ mode: z.literal('energy'), fraction }),
  /** Keep at most `rank` values per matrix, or `fraction` of its full rank. */
  z
    .strictObject({
      mode: z.literal('rank'),
      rank: z.number().int().nonnegative().optional(),
      fraction: fraction.optional(),
    })
    .superRefine(oneOf(['rank', 'fraction'])),
  /** One client's download at most `bytes`, or `fraction` of the dense download's bytes. */
  z
    .strictObject({
      mode: z.literal('bytes'),
      fraction: fraction.optional(),
      bytes: positiveInt.optional(),
    })
    .superRefine(oneOf(['fraction', 'bytes'])),
]);

const fedslrSchema = z
  .strictObject({
    name: z.literal('fedslr'),
    /** Augmented-Lagrangian coefficient. */
    alpha: z.number().positive().default(0.1),
    /** Nuclear-norm weight; the server thresholds singular values at mu / alpha. */
    mu: nonNegative.default(1e-4),
    /** L1 weight of the personal components. */
    lambda: nonNegative.default(1e-3),
    /** Epochs of stage 2 (the personal part) per round. */
    personalEpochs: z.number().int().nonnegative().default(1),
    /** Start of each P_i: a copy of the initial weights (the authors' choice) or zeros. */
    personalInit: z.enum(['init', 'zeros']).default('init'),
    /** Ablation: both parts, low-rank only (no stage 2) or sparse only (no SVT). */
    ablation: z.enum(['both', 'low-rank-only', 'sparse-only']).default('both'),
    /** How the server's low-rank step picks what to keep. */
    svt: svtSchema.default({ mode: 'absolute' }),
    /** Target share of non-zeros of each P_i; lambda is then adapted per client from `lambda`. */
    density: fraction.optional(),
  })
  .refine((v) => v.density === undefined || v.lambda > 0, {
    path: ['lambda'],
    message: 'a density target adapts lambda multiplicatively: lambda must be > 0',
  });

const fedavgSchema = z
  .strictObject({
    name: z.literal('fedavg'),
    /** Weight client models by sample count (FedAvg) or equally. */
    weighted: z.boolean().default(true),
    /** Downlink budget as a fraction of the dense download: W's SVD truncated to meet it. */
    downlink: fraction.optional(),
    /** The same budget in bytes of one client's download. */
    downlinkBytes: positiveInt.optional(),
  })
  .refine((v) => v.downlink === undefined || v.downlinkBytes === undefined, {
    path: ['downlinkBytes'],
    message: 'give downlink (a fraction) or downlinkBytes, not both',
  });

const dittoSchema = z.strictObject({
  name: z.literal('ditto'),
  lambda: nonNegative.default(0.1),
  personalEpochs: z.number().int().nonnegative().optional(),
  weighted: z.boolean().default(true),
});

const localSchema = z.strictObject({ name: z.literal('local') });

const weighted = z.boolean().default(true);
/** How many of the model's last dense layers form the head (FedRep, FedPer, LG-FedAvg). */
const headLayers = positiveInt.default(1);

const scaffoldSchema = z.strictObject({
  name: z.literal('scaffold'),
  /** Global step size eta_g. */
  serverLr: z.number().positive().default(1),
});

const fedproxSchema = z.strictObject({
  name: z.literal('fedprox'),
  /** Weight of the proximal term (mu/2)||w - W^t||^2. */
  mu: nonNegative.default(0.01),
  weighted,
});

const feddynSchema = z.strictObject({
  name: z.literal('feddyn'),
  /** Coefficient of the dynamic regulariser. */
  alpha: z.number().positive().default(0.1),
});

const apflSchema = z.strictObject({
  name: z.literal('apfl'),
  /** Initial (or, with adaptive false, fixed) mixing weight of the personal model. */
  alpha: z.number().min(0).max(1).default(0.25),
  adaptive: z.boolean().default(true),
  weighted,
});

const fedrepSchema = z.strictObject({
  name: z.literal('fedrep'),
  headLayers,
  /** Epochs over the head (body frozen) before the body epochs. */
  headEpochs: z.number().int().nonnegative().default(1),
  /** Epochs over the body (head frozen); default: train.epochs. */
  bodyEpochs: z.number().int().nonnegative().optional(),
  weighted,
});

const fedperSchema = z.strictObject({ name: z.literal('fedper'), headLayers, weighted });
const lgfedavgSchema = z.strictObject({ name: z.literal('lgfedavg'), headLayers, weighted });

const perfedavgSchema = z.strictObject({
  name: z.literal('perfedavg'),
  /** Inner (adaptation) step size; default: the round's lr. */
  alpha: z.number().positive().optional(),
  /** Adaptation steps (one mini-batch each) that make the personal model at evaluation. */
  adaptSteps: z.number().int().nonnegative().default(1),
  weighted,
});

const fedavgftSchema = z.strictObject({
  name: z.literal('fedavg-ft'),
  /** Local fine-tuning epochs before each evaluation. */
  ftEpochs: z.number().int().nonnegative().default(1),
  weighted,
});

export const algorithmSchema = z.discriminatedUnion('name', [
  fedslrSchema,
  fedavgSchema,
  dittoSchema,
  localSchema,
  scaffoldSchema,
  fedproxSchema,
  feddynSchema,
  apflSchema,
  fedrepSchema,
  fedperSchema,
  lgfedavgSchema,
  perfedavgSchema,
  fedavgftSchema,
]);
export const ALGORITHM_NAMES = [
  'fedslr',
  'fedavg',
  'ditto',
  'local',
  'scaffold',
  'fedprox',
  'feddyn',
  'apfl',
  'fedrep',
  'fedper',
  'lgfedavg',
  'perfedavg',
  'fedavg-ft',
] as const;

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
    algorithm: algorithmSchema.default({
      name: 'fedslr',
      alpha: 0.1,
      mu: 1e-4,
      lambda: 1e-3,
      personalEpochs: 1,
      personalInit: 'init',
      ablation: 'both',
      svt: { mode: 'absolute' },
    }),
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
export type AlgorithmConfig = RunConfig['algorithm'];
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
