/**
 * The `fedslr` command. Subcommands are imported lazily, so `--help` never loads tfjs.
 * Exit codes: 0 success, 1 failure while running, 2 bad usage or bad input (config, data files).
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../util/errors.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  run: {
    summary: 'Run a simulated federation from a config file',
    load: async () => (await import('./commands/run.js')).command,
  },
  compare: {
    summary: 'Run several algorithms on the identical setup and tabulate them',
    load: async () => (await import('./commands/compare.js')).command,
  },
  serve: {
    summary: 'Serve a federation over WebSocket (clients join with `fedslr join`)',
    load: async () => (await import('./commands/serve.js')).command,
  },
  join: {
    summary: 'Take part in a served federation as one client',
    load: async () => (await import('./commands/join.js')).command,
  },
  report: {
    summary: 'HTML report with charts (and --csv series) of run directories',
    load: async () => (await import('./commands/report.js')).command,
  },
  export: {
    summary: 'Export a final model (client, global, low-rank factors) as safetensors',
    load: async () => (await import('./commands/export.js')).command,
  },
  bench: {
    summary:
      'Benchmarks: step, train, svt, server, round, secagg, federation (see `fedslr bench --help`)',
    load: async () => (await import('./commands/bench.js')).command,
  },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return String(pkg.version);
}

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`);
  return [
    'fedslr: personalized federated learning (FedSLR and baselines)',
    '',
    'Usage: fedslr <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    "Run `fedslr <command> --help` for a command's options.",
    'Exit codes: 0 ok, 1 failed while running, 2 bad usage or bad input.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(mainHelp());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    console.error(`fedslr: unknown command '${name}'\n\n${mainHelp()}`);
    return 2;
  }
  const cmd = await entry.load();
  const wantsHelp = cmd.subcommands
    ? rest[0] === '--help' || rest[0] === '-h' || rest.length === 0
    : rest.includes('--help') || rest.includes('-h');
  if (wantsHelp) {
    console.log(cmd.help);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`fedslr ${name}: ${err.message}\nRun \`fedslr ${name} --help\` for usage.`);
      return 2;
    }
    // Errors about the user's input (config, data files, paths) exit 2 with their message;
    // anything else is a failure while running: exit 1 with the stack.
    if (err instanceof InputError) {
      console.error(`fedslr ${name}: ${err.message}`);
      return 2;
    }
    const e = err as Error;
    console.error(`fedslr ${name}: ${e.stack ?? e.message}`);
    return 1;
  }
}
