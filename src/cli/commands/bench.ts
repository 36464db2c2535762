import type { Command } from '../command.js';
import { UsageError } from '../command.js';

/** Each benchmark is a module under src/bench/ exporting `run(argv): Promise<number>` and `help`. */
const BENCHES: Record<
  string,
  () => Promise<{ run(argv: string[]): Promise<number>; help: string }>
> = {
  federation: () => import('../../bench/federation.js'),
  round: () => import('../../bench/round.js'),
  secagg: () => import('../../bench/secagg.js'),
  server: () => import('../../bench/server.js'),
  step: () => import('../../bench/step.js'),
  svt: () => import('../../bench/svt.js'),
  train: () => import('../../bench/train.js'),
};

export const command: Command = {
  name: 'bench',
  summary: 'Benchmarks with JSON output',
  subcommands: true,
  get help() {
    return [
      'Usage: fedslr bench <name> [options] [--json]',
      '',
      `Benchmarks: ${Object.keys(BENCHES).join(', ')}`,
      'Run `fedslr bench <name> --help` for its options.',
    ].join('\n');
  },
  async run(argv) {
    const [name, ...rest] = argv;
    const load = name ? BENCHES[name] : undefined;
    if (!load)
      throw new UsageError(
        `unknown benchmark '${name ?? ''}'; expected one of ${Object.keys(BENCHES).join(', ')}`,
      );
    const bench = await load();
    if (rest.includes('--help')) {
      console.log(bench.help);
      return 0;
    }
    return bench.run(rest);
  },
};
