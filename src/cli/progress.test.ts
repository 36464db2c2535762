import { describe, expect, it } from 'vitest';
import type { EvalRecord } from '../sim/events.js';
import { summarize } from '../sim/stats.js';
import { Progress } from './progress.js';

/** A stream that keeps what is written to it. */
function sink(): { out: NodeJS.WriteStream; text: () => string } {
  let written = '';
  const out = {
    write: (s: string) => {
      written += s;
      return true;
    },
    columns: 120,
  } as unknown as NodeJS.WriteStream;
  return { out, text: () => written };
}

function evalAt(round: number, personalLoss: number[]): EvalRecord {
  const acc = personalLoss.map(() => 0.5);
  const sizes = personalLoss.map(() => 10);
  return {
    round,
    time_s: 0,
    down_params: 0,
    down_bytes: 0,
    up_params: 0,
    up_bytes: 0,
    dense_down_params: 0,
    global: summarize(acc, [1, 1, 1], sizes),
    personal: summarize(acc, personalLoss, sizes),
  };
}

describe('progress', () => {
  it('warns when clients models give a non-finite loss, once until the count changes', () => {
    const { out, text } = sink();
    const progress = new Progress(20, 0, out, false);
    const clients = { round: 0, n: [10, 10, 10] };
    for (const [round, losses] of [
      [5, [1, 1, 1]],
      [10, [1, Number.NaN, 1]],
      [15, [1, Number.NaN, 1]],
      [20, [Number.NaN, Number.NaN, 1]],
    ] as const)
      progress.on({ type: 'eval', record: evalAt(round, [...losses]), clients, eval_s: 0 });
    const warnings = text()
      .split('\n')
      .filter((l) => l.startsWith('warning'));
    expect(warnings).toEqual([
      "warning @ round 10: 1 client's personal model gives a non-finite loss (diverged values; their accuracy still counts in the means)",
      "warning @ round 20: 2 clients' personal models give a non-finite loss (diverged values; their accuracy still counts in the means)",
    ]);
  });

  it('notes the results discarded as non-finite when their count changes', () => {
    const { out, text } = sink();
    const progress = new Progress(20, 0, out, false);
    const clients = { round: 0, n: [10, 10, 10] };
    for (const [round, discarded] of [
      [5, undefined],
      [10, 1],
      [15, 1],
      [20, 3],
    ] as const) {
      const record = { ...evalAt(round, [1, 1, 1]), ...(discarded ? { discarded } : {}) };
      progress.on({ type: 'eval', record, clients, eval_s: 0 });
    }
    const notes = text()
      .split('\n')
      .filter((l) => l.startsWith('note'));
    expect(notes).toEqual([
      'note @ round 10: 1 local result(s) discarded as non-finite so far (algorithm.discardNonFinite)',
      'note @ round 20: 3 local result(s) discarded as non-finite so far (algorithm.discardNonFinite)',
    ]);
  });
});
