/**
 * What the registry (registry.ts) knows of an algorithm: its name, a one-line summary, its
 * options as a zod schema whose defaults are the only place they are written, and how to build it.
 */
import type { z } from 'zod';
import type { Algorithm, AlgorithmContext } from './types.js';

/** An algorithm's config section: `name` plus its options, each with its default. */
export type AlgorithmSchema = z.ZodObject<{ name: z.ZodLiteral<string> } & z.ZodRawShape>;

export interface AlgorithmDescriptor<S extends AlgorithmSchema = AlgorithmSchema> {
  readonly name: z.output<S>['name'];
  /** One line for `--help` and the README's table. */
  readonly summary: string;
  readonly schema: S;
  /**
   * Whether the server part needs only the sum of the uploaded parameters and their count (what
   * secure aggregation gives it; such an algorithm's server implements `aggregateSum`): true, or
   * why not, naming the option that would make it so where one would.
   */
  sumOnly(options: z.output<S>): true | string;
  /** The algorithm with these options, for a model and run. */
  create(ctx: AlgorithmContext, options: z.output<S>): Algorithm;
}

export function describeAlgorithm<S extends AlgorithmSchema>(
  d: Omit<AlgorithmDescriptor<S>, 'name'>,
): AlgorithmDescriptor<S> {
  return { ...d, name: d.schema.shape.name.value as z.output<S>['name'] };
}

/** `sumOnly` of an algorithm whose server takes the mean of the uploads, by sample count if `weighted`. */
export function sumOnlyUnlessWeighted(options: { weighted: boolean }): true | string {
  return options.weighted
    ? 'its sample-weighted mean (weighted: true) needs each upload with its sample count; weighted: false makes it sum-only'
    : true;
}

/** The options a schema gives when none are set (without `name`). */
export function defaultsOf<S extends AlgorithmSchema>(schema: S): Omit<z.output<S>, 'name'> {
  const { name: _name, ...options } = schema.parse({ name: schema.shape.name.value });
  return options as Omit<z.output<S>, 'name'>;
}

/** Every option of a schema in declaration order, with its default (undefined when it has none). */
export function optionsOf(schema: AlgorithmSchema): { key: string; default: unknown }[] {
  const defaults = defaultsOf(schema) as Record<string, unknown>;
  return Object.keys(schema.shape)
    .filter((k) => k !== 'name')
    .map((key) => ({ key, default: defaults[key] }));
}

/** A default as `--help` and the README's table write it: an object as `{key: value, ...}`. */
export function formatDefault(value: unknown): string {
  if (value !== null && typeof value === 'object' && !Array.isArray(value))
    return `{${Object.entries(value)
      .map(([k, v]) => `${k}: ${formatDefault(v)}`)
      .join(', ')}}`;
  return String(value);
}
