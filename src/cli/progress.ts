/** Progress of a run: a bar with ETA on a terminal, plain lines otherwise. */
import type { RunEvent } from '../sim/events.js';
import type { ExperimentEvent } from '../sim/experiment.js';
import { nonfiniteModels } from '../sim/stats.js';

/** Seconds as 42s, 3m07s or 2h05m (rounded to the unit shown last). */
export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const sec = Math.round(s);
  if (sec < 60) return `${sec}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, '0')}s`;
  const min = Math.round(s / 60);
  return `${Math.floor(min / 60)}h${String(min % 60).padStart(2, '0')}m`;
}

const pct = (x: number | undefined) =>
  x === undefined ? '   -  ' : `${(100 * x).toFixed(2).padStart(6)}`;

export class Progress {
  private clientsDone = 0;
  private clientsInRound = 0;
  private lastEval = '';
  private lastNonfinite: string | undefined;
  private lastDiscarded: number | undefined;
  private readonly startRound: number;
  private readonly t0 = Date.now();

  constructor(
    private readonly rounds: number,
    startRound: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly tty = Boolean(process.stderr.isTTY),
  ) {
    this.startRound = startRound;
  }

  private eta(roundsDone: number, fraction: number): number {
    const done = roundsDone - this.startRound + fraction;
    const elapsed = (Date.now() - this.t0) / 1000;
    return done > 0 ? (elapsed / done) * (this.rounds - roundsDone - fraction) : Number.NaN;
  }

  private bar(round: number): void {
    const frac = this.clientsInRound ? this.clientsDone / this.clientsInRound : 0;
    const total = this.rounds ? (round + frac) / this.rounds : 1;
    const width = 24;
    const filled = Math.round(total * width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] round ${round + 1}/${this.rounds} client ${this.clientsDone}/${this.clientsInRound} ETA ${fmtDuration(this.eta(round, frac))}${this.lastEval}`;
    this.out.write(
      `\r${line.slice(0, (this.out.columns ?? 120) - 1).padEnd(Math.min(this.out.columns ?? 120, 120) - 1)}`,
    );
  }

  on(e: RunEvent): void {
    switch (e.type) {
      case 'round-start':
        this.clientsDone = 0;
        this.clientsInRound = e.clients.length;
        if (this.tty) this.bar(e.round);
        break;
      case 'client-done':
        this.clientsDone++;
        if (this.tty) this.bar(e.round);
        break;
      case 'client-failed':
        this.clientsDone++;
        if (this.tty) this.bar(e.round);
        else this.out.write(`round ${e.round + 1}: client ${e.client} left out: ${e.reason}\n`);
        break;
      case 'round-redraw':
        if (!this.tty)
          this.out.write(
            `round ${e.round + 1}: ${e.uploads} usable upload(s) of ${e.needed} needed, drawing again (attempt ${e.attempt})\n`,
          );
        break;
      case 'round-end':
        if (!this.tty) {
          this.out.write(
            `round ${e.round + 1}/${this.rounds}  train loss ${e.train_loss.toFixed(4)}  ${e.clients} clients: training ${e.train_s.toFixed(1)}s, server ${e.server_s.toFixed(1)}s  total ${e.time_s.toFixed(1)}s  ETA ${fmtDuration(this.eta(e.round + 1, 0))}\n`,
          );
        }
        break;
      case 'eval': {
        const r = e.record;
        this.lastEval = `  global ${pct(r.global?.acc)}%  personal ${pct(r.personal?.acc)}%`;
        if (!this.tty)
          this.out.write(`eval @ round ${r.round}:${this.lastEval}  (${e.eval_s.toFixed(1)}s)\n`);
        // Said when it first shows and when it changes: a diverged client's values stay so.
        const broken = nonfiniteModels(r);
        if (broken && broken !== this.lastNonfinite)
          this.out.write(`${this.tty ? '\n' : ''}warning @ round ${r.round}: ${broken}\n`);
        this.lastNonfinite = broken;
        if (r.discarded && r.discarded !== this.lastDiscarded)
          this.out.write(
            `${this.tty ? '\n' : ''}note @ round ${r.round}: ${r.discarded} local result(s) discarded as non-finite so far (algorithm.discardNonFinite)\n`,
          );
        this.lastDiscarded = r.discarded;
        break;
      }
    }
  }

  done(): void {
    if (this.tty) this.out.write('\n');
  }
}

/**
 * Says on stderr where the data was read from; when the config's `data.dir` did not hold it and a
 * default location did, says so even with --quiet (the run uses other files than asked for).
 */
export function reportData(e: Extract<ExperimentEvent, { type: 'data' }>, quiet = false): void {
  if (e.requested !== undefined) {
    process.stderr.write(
      `fedslr: data.dir '${e.requested}' does not hold ${e.dataset}'s files; read them from ${e.source} (recorded in config.json)\n`,
    );
  } else if (!quiet) process.stderr.write(`data: ${e.dataset} from ${e.source}\n`);
}
