/**
 * The task: everything a client needs to take part in a run, and nothing about how the run is
 * simulated or served. The seed, the model (with its input shape and classes, since a client may
 * hold no dataset description), the local-training settings and the algorithm with its options.
 * A run config (sim/config.ts) is a task's sections plus the simulation's own (data, partition,
 * clients, rounds, evaluation, runtime); a network server sends a joining client the task alone.
 */
import { z } from 'zod';
import { FEDSLR_DEFAULTS } from '../algorithms/fedslr.js';
import { algorithmSchema, createAlgorithm } from '../algorithms/registry.js';
import type { Algorithm, AlgorithmContext } from '../algorithms/types.js';
import { createModel, MODEL_NAMES, type Model } from '../models/index.js';
import { secureAggregationSchema } from '../secagg/options.js';
import { disposeParams, type ParamArrays, readArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { LAST_BATCH_MODES } from '../train/batches.js';

/** Key of the model-initialisation stream: Rng.derive(seed, INIT_STREAM). */
export const INIT_STREAM = 0x696e6974;

const positiveInt = z.number().int().positive();

/** The config's `model` section: which model (the data gives its input shape and classes). */
export const modelSectionSchema = z
  .strictObject({
    name: z.enum(MODEL_NAMES).default('cnn'),
    /** Hidden layer sizes (mlp only). */
    hidden: z.array(positiveInt).optional(),
  })
  .default({ name: 'cnn' });

/** Local-training settings (FEDSLR.md's defaults); the config's `train` section adds a backend. */
export const trainSettingsShape = {
  lr: z.number().positive().default(0.1),
  lrDecay: z.number().positive().lte(1).default(0.998),
  weightDecay: z.number().nonnegative().default(1e-3),
  batchSize: positiveInt.default(20),
  epochs: z.number().int().nonnegative().default(2),
  /** A short last batch of an epoch: its own step (keep), joined to the previous (merge), dropped. */
  lastBatch: z.enum(LAST_BATCH_MODES).default('keep'),
};

export const TRAIN_DEFAULTS = z.strictObject(trainSettingsShape).parse({});

/** The config's `algorithm` section, FedSLR with FEDSLR.md's defaults when absent. */
export const algorithmSectionSchema = algorithmSchema.default({
  name: 'fedslr',
  ...FEDSLR_DEFAULTS,
});

export const taskSchema = z.strictObject({
  seed: z.number().int().nonnegative(),
  /** Clients in the run (algorithms such as FedDyn scale by it). */
  numClients: positiveInt,
  model: z.strictObject({
    name: z.enum(MODEL_NAMES),
    hidden: z.array(positiveInt).optional(),
    /** [height, width, channels] of one sample. */
    inputShape: z.tuple([positiveInt, positiveInt, positiveInt]),
    classes: z.number().int().min(2),
  }),
  train: z.strictObject(trainSettingsShape),
  algorithm: algorithmSchema,
  /** Present when the run aggregates securely: what clients need to take part. */
  secureAggregation: secureAggregationSchema.optional(),
});

export type Task = z.output<typeof taskSchema>;

/** What a task builds to on either side: the model, the algorithm and the shared initial values. */
export interface TaskParts {
  task: Task;
  model: Model;
  algorithm: Algorithm;
  /** The shared initial parameters (server init and the start of personal states). */
  init: ParamArrays;
}

/** Builds a task's model, algorithm and initial values (the same on every side, from the seed). */
export async function buildTask(task: Task): Promise<TaskParts> {
  const model = createModel(task.model.name, {
    inputShape: task.model.inputShape,
    classes: task.model.classes,
    hidden: task.model.hidden,
  });
  const initTensors = model.init(Rng.derive(task.seed, INIT_STREAM));
  const init = await readArrays(initTensors);
  disposeParams(initTensors);
  const ctx: AlgorithmContext = { model, numClients: task.numClients, train: task.train };
  return { task, model, algorithm: createAlgorithm(task.algorithm, ctx), init };
}
