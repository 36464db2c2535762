#!/usr/bin/env node
/** The `fedslr` executable: runs the CLI with the process's arguments and sets the exit code. */
import { main } from './cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`fedslr: ${(err as Error)?.stack ?? String(err)}`);
    process.exitCode = 1;
  },
);
