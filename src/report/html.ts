/**
 * The report page: one self-contained HTML file (inline CSS and SVG, no scripts, no external
 * resources), readable offline and printable.
 */
import type { CompareTable } from './compare.js';
import type { RunData } from './load.js';
import type { SummaryRow } from './series.js';

export interface RenderedChart {
  id: string;
  title: string;
  caption: string;
  svg: string;
}

export interface PageInput {
  runs: readonly RunData[];
  summary: readonly SummaryRow[];
  charts: readonly RenderedChart[];
  compare: CompareTable | null;
  /** Charts left out and why (e.g. no ranks in a FedAvg run). */
  notes: readonly string[];
  generated: Date;
}

const escapeHtml = (s: string): string =>
  s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');

const pct = (v: number | null, digits = 2): string =>
  v === null ? '–' : `${(v * 100).toFixed(digits)}%`;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(2)} MB`;
const fixed = (v: number | null, digits: number): string => (v === null ? '–' : v.toFixed(digits));

function table(header: readonly string[], rows: readonly (readonly string[])[], cls = ''): string {
  const head = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** One column per run, one row per quantity: reads well for one run and for a handful. */
function summaryTable(rows: readonly SummaryRow[]): string {
  const best = (v: number | null, round: number | null) =>
    v === null ? '–' : `${pct(v)} (round ${round})`;
  const lines: [string, (r: SummaryRow) => string][] = [
    ['algorithm', (r) => r.algorithm],
    ['status', (r) => (r.finished ? 'finished' : 'unfinished (no summary.json)')],
    ['rounds', (r) => String(r.rounds)],
    ['time', (r) => `${r.time_s.toFixed(1)} s`],
    ['seconds per round', (r) => fixed(r.seconds_per_round, 2)],
    ['global accuracy (final)', (r) => pct(r.final_global_acc)],
    ['personal accuracy (final)', (r) => pct(r.final_personal_acc)],
    ['best global accuracy', (r) => best(r.best_global_acc, r.best_global_round)],
    ['best personal accuracy', (r) => best(r.best_personal_acc, r.best_personal_round)],
    ['kept rank / full rank', (r) => pct(r.rank_ratio, 1)],
    ['personal density', (r) => pct(r.personal_density, 1)],
    ['downlink (total)', (r) => mb(r.down_bytes)],
    ['uplink (total)', (r) => mb(r.up_bytes)],
    [
      'downlink / dense downlink',
      (r) => (r.dense_down_bytes > 0 ? pct(r.down_bytes / r.dense_down_bytes, 1) : '–'),
    ],
  ];
  return table(
    ['', ...rows.map((r) => r.run)],
    lines.map(([label, f]) => [label, ...rows.map(f)]),
    'summary',
  );
}

/** Nested objects as dot-path keys with printable values. */
export function flatten(
  value: unknown,
  prefix = '',
  out: Map<string, string> = new Map(),
): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, typeof value === 'string' ? value : JSON.stringify(value));
  }
  return out;
}

function configTable(runs: readonly RunData[]): string {
  const flat = runs.map((r) => flatten(r.config));
  const keys = [...new Set(flat.flatMap((f) => [...f.keys()]))];
  const head = ['key', ...runs.map((r) => r.name)].map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = keys.map((k) => {
    const vals = flat.map((f) => f.get(k) ?? '–');
    const differs = runs.length > 1 && new Set(vals).size > 1;
    const cells = [k, ...vals].map((c) => `<td>${escapeHtml(c)}</td>`).join('');
    return `<tr${differs ? ' class="differs"' : ''}>${cells}</tr>`;
  });
  return `<table class="config"><thead><tr>${head}</tr></thead><tbody>\n${body.join('\n')}\n</tbody></table>`;
}

const CSS = `
:root { color-scheme: light; --fg: #1d1f23; --muted: #5b6270; --line: #e3e6eb; --accent: #2f6fb2; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
.meta { color: var(--muted); margin: 0 0 8px; }
figure { margin: 18px 0; padding: 16px 18px 12px; background: #fff; border: 1px solid var(--line);
  border-radius: 8px; }
figure h3 { margin: 0 0 8px; font-size: 16px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 8px; }
.scroll { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: #eef1f5; font-weight: 600; position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #fafbfc; }
tr.differs td { background: #fff6d6; }
.note { color: var(--muted); font-size: 13.5px; }
code { font-size: 13px; background: #eef1f5; padding: 1px 4px; border-radius: 3px; }
@media print { body { background: #fff; } figure { break-inside: avoid; } }
`;

/** The whole page as one HTML string. */
export function renderPage(p: PageInput): string {
  const versions = [...new Set(p.runs.map((r) => flatten(r.config).get('fedslr.version') ?? '?'))];
  const title =
    p.runs.length === 1
      ? `fedslr report: ${p.runs[0]!.name}`
      : `fedslr report: ${p.runs.length} runs`;
  const figures = p.charts
    .map(
      (c) =>
        `<figure class="chart" data-chart="${escapeHtml(c.id)}">\n<h3>${escapeHtml(c.title)}</h3>\n` +
        `${c.svg}\n<figcaption>${escapeHtml(c.caption)}</figcaption>\n</figure>`,
    )
    .join('\n');
  const compare = p.compare
    ? `<h2>Comparison</h2>\n<div class="scroll">${table(p.compare.header, p.compare.rows, 'compare')}</div>\n` +
      p.compare.notes.map((n) => `<p class="note">${escapeHtml(n)}</p>\n`).join('') +
      `<p class="note">From <code>${escapeHtml(p.compare.source)}</code>.</p>`
    : '';
  const notes = p.notes.map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('\n');
  const dirs = p.runs
    .map((r) => `<li><code>${escapeHtml(r.name)}</code>: <code>${escapeHtml(r.dir)}</code></li>`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
<p class="meta">Generated ${escapeHtml(p.generated.toISOString())} by fedslr ${escapeHtml(versions.join(', '))}.</p>
<h2>Summary</h2>
<div class="scroll">${summaryTable(p.summary)}</div>
${compare}
<h2>Charts</h2>
${figures}
${notes}
<h2>Configuration</h2>
${p.runs.length > 1 ? '<p class="note">Highlighted rows differ between runs.</p>\n' : ''}<div class="scroll">${configTable(p.runs)}</div>
<h2>Run directories</h2>
<ul>
${dirs}
</ul>
</main>
</body>
</html>
`;
}
