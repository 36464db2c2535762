import { basename, extname, join } from 'node:path';
import type { CompareStart } from '../../sim/compare.js';
import type { ExperimentEvent } from '../../sim/experiment.js';
import { algorithmsHelp } from '../algorithms_help.js';
import type { Command } from '../command.js';
import { parseOptions, UsageError } from '../command.js';

export const command: Command = {
  name: 'compare',
  summary: 'Run several algorithms on the identical setup and tabulate them',
  help: `Usage: fedslr compare <config.yaml|json> --algorithms A,B,... [--grid algorithm.KEY=v1,v2,...] [--out DIR] [--set key=value ...] [--quiet]
       fedslr compare --resume DIR [--algorithms A,B,... [--grid ...]] [--set rounds=N] [--quiet]

Runs each algorithm on the identical data split, seed, model and schedule of the config (only its
algorithm section changes) and writes, under DIR:
  <algorithm>/   one run directory per algorithm (as \`fedslr run\` writes)
  compare.md     a table: final and best mean accuracy of the global and personal models, p10 of
                 personal accuracy, parameters sent per client, personal density, downlink and
                 uplink bytes, downlink vs dense models, wall time
  compare.csv    the same numbers, unrounded
  compare.json   the config, the entries and the finished rows (what --resume reads)
  report.html    all runs' charts overlaid, with the table (and accuracy against downlink bytes,
                 each algorithm's Pareto front marked)

Options:
  --algorithms LIST  comma-separated; each entry a name with optional :key=value options, e.g.
                     fedslr,fedavg,ditto,fedslr:ablation=sparse-only,fedprox:mu=0.1
                     An entry naming the config's own algorithm keeps the config's options;
                     others start from their defaults (below). A key may be a dot path
                     (fedslr:svt.fraction=0.4); key=~ unsets an option (fedavg:downlink=~ is
                     dense FedAvg)
  --grid KEY=V1,V2   run every entry at each value of an option under algorithm. (repeatable:
                     the cartesian product of the axes); an entry is crossed with the axes that
                     are valid options for it, and one no axis fits runs once. E.g.
                     --algorithms fedslr,fedslr:svt.mode=absolute,fedavg
                     --grid algorithm.svt.fraction=0.2,0.4 --grid algorithm.downlink=0.2,0.4
                     with a config whose algorithm.svt is {mode: bytes, fraction: ...} gives
                     fedslr:svt.fraction=0.2 (a directory fedslr_svt.fraction_0.2), ...
  --out DIR          output directory (default runs/<config>-compare-<time>); must be empty
  --set key=value    override a config value by its dot path (repeatable), as in \`fedslr run\`
  --resume DIR       continue an interrupted comparison: finished runs are kept, the interrupted
                     run continues from its newest checkpoint, the others start; --set may
                     change only rounds (more rounds extend the finished runs too) and runtime;
                     with --algorithms, entries the comparison lacks are added and run after it
  --quiet            no progress output (each run's rounds with an ETA, and when a run starts
                     roughly how long the entries left take at the finished runs' mean time)

An algorithm whose training diverges (a client's loss is not finite) keeps the numbers of its last
evaluation, marked "diverged in round N" in the table; the comparison goes on with the next one
and --resume does not retry it.

Algorithms and their options (default after =; one without a default follows a run setting):
${algorithmsHelp()}

Exit codes: 0 done, 1 failed while running, 2 bad config or arguments, a directory in use by
another comparison (DIR/fedslr.lock), or one that cannot be created (the message says why).`,
  async run(argv) {
    const { values, positionals } = parseOptions(argv, OPTIONS);
    const sets = values.set ?? [];
    const { expandGrid, parseAlgorithmList, resumeCompare, runCompare } = await import(
      '../../sim/compare.js'
    );
    const grid = values.grid ?? [];
    if (grid.length && !values.algorithms)
      throw new UsageError('--grid crosses the --algorithms entries: give --algorithms too');
    const { Progress, fmtDuration, reportData } = await import('../progress.js');
    let progress: InstanceType<typeof Progress> | undefined;
    let rounds = 0;
    const hooks = {
      onStart: (run: CompareStart) => {
        progress?.done();
        progress = undefined;
        if (values.quiet) return;
        process.stderr.write(
          `fedslr compare [${run.index + 1}/${run.count}]: ${run.entry.label}, ${run.rounds} rounds -> ${run.runDir}\n`,
        );
        if (run.estimate_s !== undefined) {
          process.stderr.write(
            `  this and the other entries left: about ${fmtDuration(run.estimate_s)} at the finished runs' mean wall time\n`,
          );
        }
        rounds = run.rounds;
      },
      onDiverged: (run: CompareStart, err: Error) => {
        progress?.done();
        progress = undefined;
        process.stderr.write(
          `fedslr compare: ${run.entry.label}: ${err.message}\n  its row keeps its last evaluation; going on with the next algorithm\n`,
        );
      },
      onEvent: (e: ExperimentEvent) => {
        if (e.type === 'data') return reportData(e, values.quiet);
        if (values.quiet) return;
        if (e.type === 'resumed') {
          process.stderr.write(`  continuing at round ${e.round} (${e.from})\n`);
          progress = new Progress(e.rounds, e.round);
        } else if (e.type === 'round-start' && !progress) progress = new Progress(rounds, 0);
        if (
          e.type !== 'store' &&
          e.type !== 'checkpoint' &&
          e.type !== 'resumed' &&
          e.type !== 'fleet'
        )
          progress?.on(e);
      },
    };
    let outDir: string;
    if (values.resume !== undefined) {
      if (positionals.length > 0)
        throw new UsageError('--resume takes the comparison directory instead of a config file');
      if (values.out !== undefined)
        throw new UsageError('--resume continues in the comparison directory itself; drop --out');
      outDir = values.resume;
      let add = values.algorithms;
      if (add !== undefined && grid.length) {
        const { COMPARE_STATE } = await import('../../sim/compare.js');
        const { existsSync, readFileSync } = await import('node:fs');
        const state = join(outDir, COMPARE_STATE);
        // Without it, resumeCompare says that this is no comparison directory.
        if (existsSync(state))
          add = expandGrid(add, grid, JSON.parse(readFileSync(state, 'utf8')).config.algorithm);
      }
      await resumeCompare(outDir, sets, hooks, add);
    } else {
      if (positionals.length !== 1)
        throw new UsageError(`expected one config file, got ${positionals.length}`);
      if (!values.algorithms) throw new UsageError('--algorithms is required (e.g. fedslr,fedavg)');
      const file = positionals[0]!;
      const { loadConfig } = await import('../../sim/load_config.js');
      const config = loadConfig(file, sets);
      const list = grid.length
        ? expandGrid(values.algorithms, grid, config.algorithm)
        : values.algorithms;
      const entries = parseAlgorithmList(list, config.algorithm);
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
      outDir = values.out ?? join('runs', `${basename(file, extname(file))}-compare-${stamp}`);
      if (!values.quiet)
        process.stderr.write(
          `fedslr compare: ${entries.length} algorithms on ${config.data.dataset}, ${config.clients.count} clients, ${config.rounds} rounds\n`,
        );
      await runCompare(config, entries, { outDir, ...hooks });
    }
    progress?.done();
    const { readFileSync } = await import('node:fs');
    console.log(readFileSync(join(outDir, 'compare.md'), 'utf8'));
    const { writeReport } = await import('../../report/index.js');
    await writeReport([outDir], join(outDir, 'report.html'));
    console.log(`compare.md, compare.csv and report.html in ${outDir}`);
    return 0;
  },
};

const OPTIONS = {
  algorithms: { type: 'string' },
  out: { type: 'string' },
  set: { type: 'string', multiple: true },
  grid: { type: 'string', multiple: true },
  resume: { type: 'string' },
  quiet: { type: 'boolean' },
} as const;
