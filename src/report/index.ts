/**
 * Reports on run directories: one self-contained HTML file with charts (`writeReport`), and the
 * same series as CSV files (`writeReportCsv`).
 */
import { basename, dirname, relative, resolve } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { buildCharts, renderSvg } from './charts.js';
import { findCompareTable } from './compare.js';
import { writeCsv } from './csv.js';
import { type RenderedChart, renderPage } from './html.js';
import { commonParent, loadRunSet, loadRuns, type RunData } from './load.js';
import { buildSeries } from './series.js';

export { ReportInputError, type RunData } from './load.js';

/** Why a chart is missing, so the page says so instead of silently leaving it out. */
function missingNotes(
  chartIds: readonly string[],
  runs: readonly RunData[],
  unevaluated: readonly string[],
): string[] {
  const notes: string[] = unevaluated.map(
    (d) =>
      `${basename(d)}: no evaluation recorded (the run has not reached its first one, or stopped before it, e.g. by diverging), so it has no charts.`,
  );
  const has = (id: string) => chartIds.includes(id);
  if (!has('client-distribution')) {
    notes.push('No per-client accuracies (clients.jsonl) in these runs: no distribution chart.');
  }
  if (!has('ranks')) {
    const algs = [...new Set(runs.map((r) => r.algorithm))].join(', ');
    notes.push(`No kept ranks recorded (${algs} keeps no low-rank global model): no rank chart.`);
  }
  if (!has('density')) notes.push('No personal-part density recorded: no density chart.');
  return notes;
}

/** The charts the runs fill, rendered to SVG. */
export async function renderCharts(runs: readonly RunData[]): Promise<RenderedChart[]> {
  const rendered: RenderedChart[] = [];
  for (const c of buildCharts(buildSeries(runs)))
    rendered.push({ ...c, svg: await renderSvg(c.spec) });
  return rendered;
}

/** The report page for already loaded runs (and their charts, when rendered), as an HTML string. */
export async function renderReport(
  runs: readonly RunData[],
  outFile?: string,
  unevaluated: readonly string[] = [],
  charts?: readonly RenderedChart[],
): Promise<string> {
  const series = buildSeries(runs);
  const rendered = charts ?? (await renderCharts(runs));
  const outDir = outFile ? dirname(resolve(outFile)) : null;
  const lookIn = outDir ? [outDir] : [];
  if (runs.length > 1) lookIn.push(commonParent(runs.map((r) => r.dir)));
  const compare = runs.length > 1 ? findCompareTable(lookIn) : null;
  // Named relative to the report, so that a report kept beside its runs reads the same anywhere.
  if (compare && outDir) compare.source = relative(outDir, resolve(compare.source));
  return renderPage({
    runs,
    summary: series.summary,
    charts: rendered,
    compare,
    notes: missingNotes(
      rendered.map((c) => c.id),
      runs,
      unevaluated,
    ),
    generated: new Date(),
  });
}

/**
 * Writes the HTML report of `runDirs` (run directories, or directories holding them) to
 * `outFile`. With several runs it also shows the `compare` table found beside `outFile` or in the
 * runs' common parent. Throws ReportInputError naming a path that is not a run or a
 * run without evaluations (within a directory of runs, those are left out and named on the page).
 */
export async function writeReport(runDirs: readonly string[], outFile: string): Promise<void> {
  const { runs, unevaluated } = loadRunSet(runDirs);
  writeFileAtomic(outFile, await renderReport(runs, outFile, unevaluated));
}

/** Writes the report's series as CSV files into `dir`; returns the files written. */
export function writeReportCsv(runDirs: readonly string[], dir: string): string[] {
  return writeCsv(buildSeries(loadRuns(runDirs)), dir);
}
