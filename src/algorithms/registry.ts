/**
 * Every algorithm, once: the config schema, `--help`, `compare` and the README's table are made
 * from this list. Adding an algorithm = its file (with its descriptor) + one entry here.
 */
import { z } from 'zod';
import { apflAlgorithm } from './apfl.js';
import type { AlgorithmDescriptor, AlgorithmSchema } from './descriptor.js';
import { dittoAlgorithm } from './ditto.js';
import { fedavgAlgorithm } from './fedavg.js';
import { fedavgftAlgorithm } from './fedavgft.js';
import { feddynAlgorithm } from './feddyn.js';
import { fedperAlgorithm } from './fedper.js';
import { fedproxAlgorithm } from './fedprox.js';
import { fedrepAlgorithm } from './fedrep.js';
import { fedslrAlgorithm } from './fedslr.js';
import { lgfedavgAlgorithm } from './lgfedavg.js';
import { localAlgorithm } from './local.js';
import { perfedavgAlgorithm } from './perfedavg.js';
import { scaffoldAlgorithm } from './scaffold.js';
import type { Algorithm, AlgorithmContext } from './types.js';

export const ALGORITHMS = [
  fedslrAlgorithm,
  fedavgAlgorithm,
  dittoAlgorithm,
  localAlgorithm,
  scaffoldAlgorithm,
  fedproxAlgorithm,
  feddynAlgorithm,
  apflAlgorithm,
  fedrepAlgorithm,
  fedperAlgorithm,
  lgfedavgAlgorithm,
  perfedavgAlgorithm,
  fedavgftAlgorithm,
] as const;

type Schemas<T extends readonly AlgorithmDescriptor[]> = { [K in keyof T]: T[K]['schema'] };

/** The config's `algorithm` section: one of the registry's schemas, told apart by `name`. */
export const algorithmSchema = z.discriminatedUnion(
  'name',
  ALGORITHMS.map((a) => a.schema) as unknown as Schemas<typeof ALGORITHMS>,
);

export type AlgorithmConfig = z.output<typeof algorithmSchema>;

/** The algorithm a config section describes. */
export function createAlgorithm(cfg: AlgorithmConfig, ctx: AlgorithmContext): Algorithm {
  // Typed as the general descriptor: its options are then any algorithm's config section.
  const d: AlgorithmDescriptor<AlgorithmSchema> | undefined = ALGORITHMS.find(
    (a) => a.name === cfg.name,
  );
  if (!d) throw new Error(`unknown algorithm '${cfg.name}'`);
  return d.create(ctx, cfg);
}

/**
 * Why secure aggregation cannot serve this algorithm (its server needs more than the uploads'
 * sum and count), naming it; undefined when it can.
 */
export function secureAggregationRefusal(cfg: AlgorithmConfig): string | undefined {
  const d: AlgorithmDescriptor<AlgorithmSchema> | undefined = ALGORITHMS.find(
    (a) => a.name === cfg.name,
  );
  if (!d) return `unknown algorithm '${cfg.name}'`;
  const verdict = d.sumOnly(cfg);
  return verdict === true
    ? undefined
    : `secure aggregation gives the server only the sum of the uploads, and ${cfg.name} needs more: ${verdict}`;
}
