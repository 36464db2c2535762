/** The shape of a `fedslr` subcommand. Each lives in its own file and is imported only when chosen. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { suggest } from '../util/suggest.js';

export interface Command {
  name: string;
  summary: string;
  /** Full help text, shown by `fedslr <name> --help`. */
  help: string;
  /** True when the command has its own subcommands, which handle --help themselves. */
  subcommands?: boolean;
  /** Runs with the arguments after the subcommand name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

/** A mistake in how the command was called: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A `util.parseArgs` failure as a UsageError; an unknown option gets the closest of `options`
 * (`--algorithm` -> did you mean '--algorithms'?).
 */
export function optionError(err: unknown, options: readonly string[]): UsageError {
  const e = err as Error & { code?: string };
  const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(e.message)?.[1];
  if (e.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || !unknown) return new UsageError(e.message);
  const known = options.map((k) => `--${k}`);
  return new UsageError(
    `unknown option '${unknown}'${suggest(unknown, known)}; options: ${known.join(', ')}`,
  );
}

/**
 * A command's options and positionals from its arguments; a parse failure is a UsageError that
 * names the closest known option (optionError).
 */
export function parseOptions<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: O }>> {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options });
  } catch (err) {
    throw optionError(err, Object.keys(options));
  }
}
