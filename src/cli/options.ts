/** Numeric command-line options, checked with a message naming the option. */
import { UsageError } from './command.js';

/** A positive number of seconds, or `fallback` when the option is absent. */
export function secondsOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0))
    throw new UsageError(`--${name}: expected a positive number of seconds, got '${value}'`);
  return n;
}

/** An integer of at least `min`, or `fallback` when the option is absent. */
export function intOption(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= min))
    throw new UsageError(`--${name}: expected an integer of at least ${min}, got '${value}'`);
  return n;
}
