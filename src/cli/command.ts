/** The shape of a `fedslr` subcommand. Each lives in its own file and is imported only when chosen. */
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
