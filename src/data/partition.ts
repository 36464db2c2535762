/**
 * Partitioners: split a training set's indices over clients. All are seeded through an `Rng`,
 * so the same labels, options and seed always give the same split. Each returns one sorted
 * Int32Array of training-set indices per client.
 */
import type { Rng } from '../tensor/rng.js';

export type Partition = Int32Array[];

function checkClients(clients: number, n: number, who: string): void {
  if (!Number.isInteger(clients) || clients < 1) {
    throw new Error(`${who}: clients must be a positive integer, got ${clients}`);
  }
  if (clients > n) {
    throw new Error(`${who}: ${clients} clients need at least as many samples, got ${n}`);
  }
}

function checkLabels(labels: Int32Array, classes: number, who: string): void {
  if (!Number.isInteger(classes) || classes < 1) {
    throw new Error(`${who}: classes must be a positive integer, got ${classes}`);
  }
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0 || l >= classes) {
      throw new Error(`${who}: label ${l} at index ${i} is outside [0, ${classes})`);
    }
  }
}

/** Indices of each class, in index order. */
export function indicesByClass(labels: Int32Array, classes: number): Int32Array[] {
  const counts = new Int32Array(classes);
  for (const l of labels) counts[l]! += 1;
  const out = Array.from(counts, (c) => new Int32Array(c));
  const fill = new Int32Array(classes);
  labels.forEach((l, i) => {
    out[l]![fill[l]!++] = i;
  });
  return out;
}

function sorted(a: number[] | Int32Array): Int32Array {
  return Int32Array.from(a).sort();
}

/** Splits `items` into `parts` contiguous pieces whose sizes differ by at most one. */
function evenSplit(items: Int32Array, parts: number): Int32Array[] {
  const out: Int32Array[] = [];
  const base = Math.floor(items.length / parts);
  const extra = items.length % parts;
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const size = base + (p < extra ? 1 : 0);
    out.push(items.subarray(start, start + size));
    start += size;
  }
  return out;
}

/** IID: a random permutation of `0..n-1` cut into `clients` near-equal parts. */
export function iidPartition(n: number, clients: number, rng: Rng): Partition {
  checkClients(clients, n, 'iid partition');
  return evenSplit(rng.permutation(n), clients).map(sorted);
}

export interface DirichletOptions {
  /** Concentration of the per-class Dirichlet over clients; smaller means more label skew. */
  readonly alpha: number;
  /** Every client must get at least this many samples (default 10). */
  readonly minSize?: number;
  /** Fresh draws before giving up (default 1000). */
  readonly maxAttempts?: number;
  /**
   * Give no more of a class to clients that already hold `n / clients` samples (default true),
   * as in the widely used NIID-Bench / FedLab / PFLlib code; keeps client sizes from exploding.
   */
  readonly balance?: boolean;
}

/**
 * Dirichlet label skew (Hsu et al. 2019; the NIID-Bench formulation): for each class, shuffle
 * its samples and split them over the clients in proportions drawn from Dirichlet(alpha). Every
 * sample goes to exactly one client. If some client ends up with fewer than `minSize` samples,
 * the whole split is redrawn, at most `maxAttempts` times, then a clear error is thrown.
 */
export function dirichletPartition(
  labels: Int32Array,
  classes: number,
  clients: number,
  opts: DirichletOptions,
  rng: Rng,
): Partition {
  const who = 'dirichlet partition';
  const n = labels.length;
  checkClients(clients, n, who);
  checkLabels(labels, classes, who);
  const { alpha, minSize = 10, maxAttempts = 1000, balance = true } = opts;
  if (!(alpha > 0) || !Number.isFinite(alpha)) {
    throw new Error(`${who}: alpha must be a finite number > 0, got ${alpha}`);
  }
  if (!Number.isInteger(minSize) || minSize < 0) {
    throw new Error(`${who}: minSize must be an integer >= 0, got ${minSize}`);
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new Error(`${who}: maxAttempts must be a positive integer, got ${maxAttempts}`);
  }
  if (minSize * clients > n) {
    throw new Error(
      `${who}: minSize ${minSize} x ${clients} clients exceeds the ${n} samples available`,
    );
  }
  const byClass = indicesByClass(labels, classes);
  const cap = n / clients;
  let smallest = 0;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const parts: number[][] = Array.from({ length: clients }, () => []);
    for (let c = 0; c < classes; c++) {
      const idx = rng.shuffle(Int32Array.from(byClass[c]!)) as Int32Array;
      const raw = rng.dirichlet(alpha, clients);
      let p = raw;
      if (balance) {
        const masked = raw.map((v, j) => (parts[j]!.length < cap ? v : 0));
        const sum = masked.reduce((a, b) => a + b, 0);
        if (sum > 0) p = masked.map((v) => v / sum);
      }
      let start = 0;
      let acc = 0;
      for (let j = 0; j < clients; j++) {
        acc += p[j]!;
        const end =
          j === clients - 1 ? idx.length : Math.min(idx.length, Math.floor(acc * idx.length));
        for (let k = start; k < end; k++) parts[j]!.push(idx[k]!);
        start = Math.max(start, end);
      }
    }
    smallest = Math.min(...parts.map((q) => q.length));
    if (smallest >= minSize) return parts.map(sorted);
  }
  throw new Error(
    `${who}: after ${maxAttempts} attempts the smallest client still had ${smallest} samples, ` +
      `below minSize ${minSize} (alpha ${alpha}, ${clients} clients, ${n} samples). ` +
      'Raise alpha, lower minSize, or use fewer clients.',
  );
}

/**
 * Pathological label skew: every client holds exactly `classesPerClient` distinct classes.
 * Classes are handed out so each is held by as equal a number of clients as possible (each
 * client takes the least-held classes, ties broken at random); then each class's shuffled samples
 * are cut into equal shards, one per client holding it. When `clients * classesPerClient` is
 * below the number of classes, the classes nobody holds are left out.
 */
export function pathologicalPartition(
  labels: Int32Array,
  classes: number,
  clients: number,
  classesPerClient: number,
  rng: Rng,
): Partition {
  const who = 'pathological partition';
  checkClients(clients, labels.length, who);
  checkLabels(labels, classes, who);
  const k = classesPerClient;
  if (!Number.isInteger(k) || k < 1 || k > classes) {
    throw new Error(`${who}: classesPerClient must be an integer in [1, ${classes}], got ${k}`);
  }
  const held = new Int32Array(classes);
  const holders: number[][] = Array.from({ length: classes }, () => []);
  for (let client = 0; client < clients; client++) {
    const order = Array.from({ length: classes }, (_, c) => ({ c, tie: rng.uniform() }));
    order.sort((a, b) => held[a.c]! - held[b.c]! || a.tie - b.tie);
    for (const { c } of order.slice(0, k)) {
      held[c]! += 1;
      holders[c]!.push(client);
    }
  }
  const byClass = indicesByClass(labels, classes);
  const parts: number[][] = Array.from({ length: clients }, () => []);
  for (let c = 0; c < classes; c++) {
    const h = holders[c]!;
    if (h.length === 0) continue;
    const idx = rng.shuffle(Int32Array.from(byClass[c]!)) as Int32Array;
    evenSplit(idx, h.length).forEach((shard, s) => {
      for (const i of shard) parts[h[s]!]!.push(i);
    });
  }
  parts.forEach((p, client) => {
    if (p.length === 0) {
      throw new Error(
        `${who}: client ${client} got no samples (its classes have fewer samples than holders); ` +
          'use fewer clients or more classes per client',
      );
    }
  });
  return parts.map(sorted);
}
