/** Which clients join a round. */
import type { Rng } from '../tensor/rng.js';

export type Sampling = { kind: 'fraction'; q: number } | { kind: 'count'; k: number };

/**
 * `fraction`: each client joins independently with probability q; when nobody is drawn, draw
 * again (FEDSLR.md). `count`: exactly k clients, uniformly without replacement. Sorted ids.
 */
export function drawClients(sampling: Sampling, n: number, rng: Rng): number[] {
  if (sampling.kind === 'count') {
    if (sampling.k > n) throw new Error(`sampling: cannot draw ${sampling.k} clients out of ${n}`);
    return Array.from(rng.permutation(n).subarray(0, sampling.k)).sort((a, b) => a - b);
  }
  if (!(sampling.q > 0 && sampling.q <= 1))
    throw new Error(`sampling.q: expected 0 < q <= 1, got ${sampling.q}`);
  for (;;) {
    const drawn: number[] = [];
    for (let i = 0; i < n; i++) if (rng.uniform() < sampling.q) drawn.push(i);
    if (drawn.length > 0) return drawn;
  }
}
