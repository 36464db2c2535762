import { join } from 'node:path';
import type { Command } from '../command.js';
import { parseOptions, UsageError } from '../command.js';

export const command: Command = {
  name: 'report',
  summary: 'HTML report with charts (and CSV series) of one or more run directories',
  help: `Usage: fedslr report <run-dir> [<run-dir> ...] [--out report.html] [--csv DIR] [--svg DIR]

Writes one self-contained HTML file (charts as inline SVG, no scripts, viewable offline):
  - mean accuracy over rounds, global and personal model, with the clients' p10-p90 band
  - per-client accuracy at the last evaluation (global vs personal)
  - kept rank per weight matrix and density of the personal parts over rounds (FedSLR)
  - cumulative downlink and uplink bytes against dense downloads
  - summary and configuration tables; with several runs, the runs overlaid and the
    \`fedslr compare\` table (compare.csv or compare.md) when one sits beside them
A directory that holds run directories stands for all of them; those of its runs without an
evaluation yet (one in progress, or one that diverged early) have nothing to chart and are
named on the page instead.

Options:
  --out FILE   the HTML file (default: <run-dir>/report.html for one directory argument,
               ./report.html for several)
  --csv DIR    also write the series as CSV files into DIR: accuracy.csv,
               client_accuracy.csv (every evaluation), ranks.csv, density.csv,
               communication.csv, summary.csv
  --svg DIR    also write each chart as its own SVG file into DIR, named by the chart:
               accuracy.svg, client-distribution.svg, ranks.svg, density.svg,
               communication.svg, frontier.svg (with several runs), those the runs fill

Exit codes: 0 written, 2 a path that is not a run directory or a run without evaluations.`,
  async run(argv) {
    const { values, positionals } = parseOptions(argv, {
      out: { type: 'string' },
      csv: { type: 'string' },
      svg: { type: 'string' },
    });
    if (positionals.length === 0) throw new UsageError('expected at least one run directory');
    const out =
      values.out ??
      (positionals.length === 1 ? join(positionals[0]!, 'report.html') : 'report.html');
    const { loadRunSet } = await import('../../report/load.js');
    const { runs, unevaluated } = loadRunSet(positionals);
    const { renderCharts, renderReport } = await import('../../report/index.js');
    const { writeFileAtomic } = await import('../../util/fs.js');
    const charts = await renderCharts(runs);
    writeFileAtomic(out, await renderReport(runs, out, unevaluated, charts));
    console.log(`report: ${out} (${runs.length} run${runs.length > 1 ? 's' : ''})`);
    if (values.svg) {
      const { mkdirSync } = await import('node:fs');
      mkdirSync(values.svg, { recursive: true });
      const files = charts.map((c) => {
        const file = join(values.svg!, `${c.id}.svg`);
        writeFileAtomic(file, c.svg);
        return file;
      });
      console.log(`svg: ${files.join(', ')}`);
    }
    if (values.csv) {
      const { buildSeries } = await import('../../report/series.js');
      const { writeCsv } = await import('../../report/csv.js');
      const files = writeCsv(buildSeries(runs), values.csv);
      console.log(`csv: ${files.join(', ')}`);
    }
    return 0;
  },
};
