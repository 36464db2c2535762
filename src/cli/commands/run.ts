import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';

export const command: Command = {
  name: 'run',
  summary: 'Run a simulated federation from a config file and write a run directory',
  help: `Usage: fedslr run <config.yaml|json> [--out DIR] [--set key=value ...] [--quiet]

Runs the experiment a config file describes (see examples/) and writes a run directory:
  config.json    the fully resolved config (defaults filled in), package version, backend
  metrics.jsonl  one line per evaluation: global/personal accuracy (mean, weighted, std,
                 p10/p50/p90), loss, rank_ratio, personal_density, downlink/uplink totals
  clients.jsonl  per-client accuracies of every evaluation
  summary.json   final and best values

Options:
  --out DIR          run directory (default runs/<config>-<algorithm>-<time>); must be empty
  --set key=value    override a config value by its dot path, e.g. --set rounds=3
                     --set algorithm.mu=0 --set data.partition.alpha=0.1 (repeatable);
                     setting algorithm.name starts that algorithm from its defaults
  --quiet            no progress output (the final table is still printed)

Progress goes to stderr (a bar on a terminal, a line per round otherwise); the final table to
stdout. Exit codes: 0 done, 1 failed while running, 2 bad config or arguments.`,
  async run(argv) {
    let parsed: ReturnType<typeof parse>;
    try {
      parsed = parse(argv);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const { values, positionals } = parsed;
    if (positionals.length !== 1)
      throw new UsageError(`expected one config file, got ${positionals.length}`);
    const file = positionals[0]!;
    const { loadConfig } = await import('../../sim/load_config.js');
    const config = loadConfig(file, values.set ?? []);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const outDir =
      values.out ??
      join('runs', `${basename(file, extname(file))}-${config.algorithm.name}-${stamp}`);
    const { runExperiment } = await import('../../sim/experiment.js');
    const { Progress } = await import('../progress.js');
    const { formatSummary } = await import('../table.js');
    const progress = values.quiet ? undefined : new Progress(config.rounds, 0);
    if (!values.quiet)
      process.stderr.write(
        `fedslr run: ${config.algorithm.name} on ${config.data.dataset}, ${config.clients.count} clients, ${config.rounds} rounds -> ${outDir}\n`,
      );
    const summary = await runExperiment(config, { outDir, onEvent: (e) => progress?.on(e) });
    progress?.done();
    console.log(formatSummary(summary));
    console.log(`  run directory: ${outDir}`);
    return 0;
  },
};

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      set: { type: 'string', multiple: true },
      quiet: { type: 'boolean' },
    },
  });
}
