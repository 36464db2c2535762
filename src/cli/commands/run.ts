import { basename, extname, join } from 'node:path';
import { algorithmsHelp } from '../algorithms_help.js';
import type { Command } from '../command.js';
import { parseOptions, UsageError } from '../command.js';

export const command: Command = {
  name: 'run',
  summary: 'Run a simulated federation from a config file and write a run directory',
  help: `Usage: fedslr run <config.yaml|json> [--out DIR] [--set key=value ...] [--quiet]
       fedslr run --resume <run-dir> [--set rounds=N] [--quiet]

Runs the experiment a config file describes (see examples/) and writes a run directory:
  config.json    the fully resolved config (defaults filled in), package version, backend
  metrics.jsonl  one line per evaluation: global/personal accuracy (mean, weighted, std,
                 p10/p50/p90), loss, rank_ratio, personal_density, downlink/uplink totals
                 (and discarded, when FedSLR's discardNonFinite has discarded results)
  clients.jsonl  per-client accuracies of every evaluation
  summary.json   final and best values
  report.html    charts of all of it (see fedslr report)
  checkpoints/   the newest checkpoints (at every evaluation, every runtime.checkpointEvery
                 rounds and at the end), each verified by checksums

Options:
  --out DIR          run directory (default runs/<config>-<algorithm>-<time>); must be empty.
                     A run holds DIR/fedslr.lock while it runs: a second run, --resume or
                     compare on the same directory is refused (exit 2)
  --set key=value    override a config value by its dot path, e.g. --set rounds=3
                     --set algorithm.mu=0 --set data.partition.alpha=0.1 (repeatable);
                     setting algorithm.name starts that algorithm from its defaults, and
                     changing a kind (data.partition.kind=iid) drops the old kind's options
  --resume DIR       continue an interrupted run from its newest good checkpoint; the result
                     is identical to an uninterrupted run. Only rounds (and runtime settings)
                     may be changed with --set; other differences are refused.
  --quiet            no progress output (the final table is still printed)

Algorithms (algorithm.name) and their options (algorithm.<option>, default after =; one
without a default follows a run setting, see the README):
${algorithmsHelp()}

Progress goes to stderr (a bar on a terminal, a line per round otherwise); the final table to
stdout. Exit codes: 0 done, 1 failed while running, 2 bad config or arguments, a directory in
use by another run, or one that cannot be created (the message says why).`,
  async run(argv) {
    const { values, positionals } = parseOptions(argv, OPTIONS);
    const { Progress, reportData } = await import('../progress.js');
    const sets = values.set ?? [];
    if (values.resume !== undefined) {
      if (positionals.length > 0)
        throw new UsageError('--resume takes a run directory instead of a config file');
      if (values.out !== undefined)
        throw new UsageError('--resume continues in the run directory itself; drop --out');
      const { resumeExperiment } = await import('../../sim/experiment.js');
      let progress: InstanceType<typeof Progress> | undefined;
      const summary = await resumeExperiment(values.resume, sets, (e) => {
        if (e.type === 'data') return reportData(e, values.quiet);
        if (values.quiet) return;
        if (e.type === 'resumed') {
          for (const s of e.skipped) process.stderr.write(`skipped checkpoint: ${s}\n`);
          process.stderr.write(
            `fedslr run: resuming ${values.resume} at round ${e.round} (${e.from})\n`,
          );
          progress = new Progress(e.rounds, e.round);
        } else if (e.type === 'store' || e.type === 'checkpoint' || e.type === 'fleet') return;
        else progress?.on(e);
      });
      progress?.done();
      return printSummary(summary, values.resume);
    }
    if (positionals.length !== 1)
      throw new UsageError(`expected one config file, got ${positionals.length}`);
    const file = positionals[0]!;
    const { loadConfig } = await import('../../sim/load_config.js');
    const config = loadConfig(file, sets);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const outDir =
      values.out ??
      join('runs', `${basename(file, extname(file))}-${config.algorithm.name}-${stamp}`);
    const { runExperiment } = await import('../../sim/experiment.js');
    const progress = values.quiet ? undefined : new Progress(config.rounds, 0);
    if (!values.quiet)
      process.stderr.write(
        `fedslr run: ${config.algorithm.name} on ${config.data.dataset}, ${config.clients.count} clients, ${config.rounds} rounds -> ${outDir}\n`,
      );
    const summary = await runExperiment(config, {
      outDir,
      onEvent: (e) => {
        if (e.type === 'store') {
          if (e.kind === 'disk' && !values.quiet)
            process.stderr.write(
              `client state (~${(e.estimatedBytes / 1e9).toFixed(1)} GB) kept on disk\n`,
            );
        } else if (e.type === 'fleet') {
          if (e.workers > 1 && !values.quiet)
            process.stderr.write(`clients trained and evaluated on ${e.workers} worker threads\n`);
        } else if (e.type === 'data') reportData(e, values.quiet);
        else if (e.type !== 'checkpoint' && e.type !== 'resumed') progress?.on(e);
      },
    });
    progress?.done();
    return printSummary(summary, outDir);
  },
};

export async function printSummary(
  summary: import('../../sim/rundir.js').RunSummary,
  dir: string,
): Promise<number> {
  const { formatSummary } = await import('../table.js');
  console.log(formatSummary(summary));
  console.log(`  run directory: ${dir}`);
  if (summary.final) {
    const { writeReport } = await import('../../report/index.js');
    const report = join(dir, 'report.html');
    await writeReport([dir], report);
    console.log(`  report:        ${report}`);
  }
  return 0;
}

const OPTIONS = {
  out: { type: 'string' },
  set: { type: 'string', multiple: true },
  quiet: { type: 'boolean' },
  resume: { type: 'string' },
} as const;
