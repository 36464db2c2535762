/** The short table `fedslr run` prints at the end. */
import type { RunSummary } from '../sim/rundir.js';

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

function fmtBytes(b: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = b;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function formatSummary(s: RunSummary): string {
  const f = s.final;
  const rows: [string, string, string][] = [['', 'final', 'best (round)']];
  if (f?.global)
    rows.push([
      'global model acc',
      pct(f.global.acc),
      `${pct(s.best.global_acc?.value)} (${s.best.global_acc?.round})`,
    ]);
  if (f?.personal)
    rows.push([
      'personal model acc',
      pct(f.personal.acc),
      `${pct(s.best.personal_acc?.value)} (${s.best.personal_acc?.round})`,
    ]);
  if (f?.personal)
    rows.push([
      'personal acc p10 / p90',
      `${pct(f.personal.acc_p10)} / ${pct(f.personal.acc_p90)}`,
      '',
    ]);
  if (f?.rank_ratio !== undefined) rows.push(['kept rank (global)', pct(f.rank_ratio), '']);
  if (f?.personal_density !== undefined)
    rows.push(['personal density', pct(f.personal_density), '']);
  if (f) {
    const vsDense = f.dense_down_params
      ? ` (${pct(f.down_params / f.dense_down_params)} of dense)`
      : '';
    rows.push(['downlink', `${fmtBytes(f.down_bytes)}${vsDense}`, '']);
    rows.push(['uplink', fmtBytes(f.up_bytes), '']);
  }
  rows.push(['time', `${s.time_s.toFixed(1)} s (${s.seconds_per_round.toFixed(2)} s/round)`, '']);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return [
    `${s.algorithm}, ${s.rounds} rounds`,
    ...rows.map((r) => `  ${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`.trimEnd()),
  ].join('\n');
}
