/**
 * Seeded pseudo-random numbers. Every random choice in fedslr takes an `Rng`, so the same config
 * and seed always give the same numbers. The generator is xoshiro128** seeded through splitmix32;
 * `derive(seed, ...keys)` gives independent streams for (seed, round, client) and the like, so the
 * numbers a client sees do not depend on which thread or in what order clients run.
 */

function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) | 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [s, z >>> 0];
}

/** Mixes a list of integers into one 32-bit value (order matters). */
export function hashInts(...keys: number[]): number {
  let h = 0x811c9dc5;
  for (const k of keys) {
    if (!Number.isInteger(k)) throw new Error(`hashInts: keys must be integers, got ${k}`);
    // Fold in the value 16 bits at a time so keys above 2^32 still count.
    let v = k;
    for (let part = 0; part < 4; part++) {
      h = Math.imul(h ^ (v & 0xffff), 0x01000193);
      v = Math.floor(v / 65536);
    }
    [, h] = splitmix32(h);
  }
  return h >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    let st = hashInts(seed);
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, z] = splitmix32(st);
      st = next;
      out.push(z);
    }
    [this.s0, this.s1, this.s2, this.s3] = out as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** An independent generator for the given keys, e.g. `Rng.derive(seed, round, client)`. */
  static derive(seed: number, ...keys: number[]): Rng {
    return new Rng(hashInts(seed, ...keys));
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1) || !Number.isInteger(n))
      throw new Error(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Gamma(shape, 1) by Marsaglia and Tsang (with the shape < 1 boost). */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new Error(`Rng.gamma: shape must be > 0, got ${shape}`);
    if (shape < 1) {
      const g = this.gamma(shape + 1);
      let u = 0;
      while (u === 0) u = this.uniform();
      return g * u ** (1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniform();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** A sample from the symmetric Dirichlet distribution with `k` components. */
  dirichlet(alpha: number, k: number): number[] {
    for (;;) {
      const g = Array.from({ length: k }, () => this.gamma(alpha));
      const sum = g.reduce((a, b) => a + b, 0);
      if (sum > 0) return g.map((x) => x / sum);
    }
  }

  /** Fisher-Yates shuffle in place; returns the array. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): typeof a {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffle(p);
    return p;
  }

  /** The generator's state, for checkpoints. */
  getState(): [number, number, number, number] {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4) throw new Error('Rng.setState: expected 4 integers');
    [this.s0, this.s1, this.s2, this.s3] = state.map((x) => x | 0) as [
      number,
      number,
      number,
      number,
    ];
    this.spareNormal = null;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
