/**
 * `fedslr bench svt`: singular-value thresholding on the weight-matrix shapes of the paper's
 * models, in two regimes, against LAPACK (numpy) on the same matrices when python3 has numpy.
 *
 * Matrices have planted spectra (planted.ts), so the exact answer is known in float64:
 * - full: singular values geometric from 1 down to 0.02, tau = 0.01 (every value kept);
 * - low:  10% of the values geometric in [0.3, 1], the rest in [0.001, 0.09], tau = 0.1.
 * Each case is called three times untimed (a first round, no hint; then two with the hint), then
 * `--reps` times with the hint the previous call returned, as the FedSLR server does round after
 * round. Fast cases (second or third call under 50 ms) get more untimed calls (see FAST_WARMUP),
 * so that V8 has optimised the code a long-running server runs, and at least FAST_REPS timed ones
 * (numpy gets as many). Two chances, because the first call of a path that the hint switches to
 * (128x64 low: Gram path cold, subspace path warm) runs unoptimised code and can take 50 ms.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lowRankProduct, randomOrthonormal } from '../linalg/planted.js';
import { gramSvd } from '../linalg/svd.js';
import { type SvtHint, type SvtResult, svt } from '../linalg/svt.js';
import { type BackendName, backendThreads, initBackend } from '../tensor/backend.js';
import { Rng } from '../tensor/rng.js';
import { threadsFlag } from './step.js';

/**
 * Cases whose second or third call takes < 50 ms get at least FAST_WARMUP more untimed calls, as
 * many as fill FAST_WARMUP_MS (at most 5000), and at least FAST_REPS timed ones.
 */
const FAST_WARMUP = 200;
const FAST_WARMUP_MS = 1000;
const FAST_REPS = 50;

export const help = [
  'Usage: fedslr bench svt [--shapes cnn|resnet18gn|all|RxC,...] [--regime full|low|both]',
  '                        [--reps N] [--backend wasm|cpu|auto] [--threads N] [--no-numpy] [--json]',
  '',
  'Times the SVT operator (linalg/svt.ts) per shape and regime; with python3 + numpy, also',
  "LAPACK's SVD + threshold on the same matrices (bench/svt_numpy.py) and the ratio ours/LAPACK.",
].join('\n');

const MODEL_SHAPES: Record<string, [number, number][]> = {
  cnn: [
    [320, 160],
    [512, 3136],
    [10, 512],
  ],
  resnet18gn: [
    [192, 9],
    [192, 192],
    [384, 384],
    [768, 768],
    [1536, 1536],
    [128, 64],
    [256, 128],
    [512, 256],
    [100, 512],
  ],
};

type Regime = 'full' | 'low';

function spectrum(k: number, regime: Regime): { s: number[]; tau: number } {
  const geo = (n: number, hi: number, lo: number) =>
    Array.from({ length: n }, (_, i) => hi * (lo / hi) ** (n <= 1 ? 0 : i / (n - 1)));
  if (regime === 'full') return { s: geo(k, 1, 0.02), tau: 0.01 };
  const kept = Math.max(1, Math.round(0.1 * k));
  return { s: [...geo(kept, 1, 0.3), ...geo(k - kept, 0.09, 0.001)], tau: 0.1 };
}

function parseShapes(spec: string): [number, number][] {
  if (spec === 'all') return [...MODEL_SHAPES.cnn!, ...MODEL_SHAPES.resnet18gn!];
  if (MODEL_SHAPES[spec]) return MODEL_SHAPES[spec]!;
  return spec.split(',').map((t) => {
    const m = /^(\d+)x(\d+)$/.exec(t.trim());
    if (!m) throw new Error(`--shapes: expected cnn, resnet18gn, all or RxC,...; got '${t}'`);
    return [Number(m[1]), Number(m[2])];
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function orthErr(q: Float32Array, n: number, k: number): number {
  let e = 0;
  for (let a = 0; a < k; a++) {
    for (let b = a; b < k; b++) {
      let d = 0;
      for (let i = 0; i < n; i++) d += q[i * k + a]! * q[i * k + b]!;
      e = Math.max(e, Math.abs(d - (a === b ? 1 : 0)));
    }
  }
  return e;
}

interface Row {
  shape: [number, number];
  regime: Regime;
  ms: number;
  /** The first call, without a hint from a previous round. */
  cold_ms: number;
  sv_rel_err: number | null;
  orth_err: number | null;
  recon_rel_err: number;
  rank: number;
  expected_rank: number;
  method: string;
  lapack_ms?: number;
  lapack_svd_ms?: number;
  ratio?: number;
}

/** Largest relative error of the kept singular values (relative to the value before thresholding). */
function svErr(got: ArrayLike<number>, s: readonly number[], tau: number): number {
  let e = 0;
  const kept = s.filter((x) => x > tau);
  kept.forEach((x, i) => {
    e = Math.max(e, Math.abs((got[i] ?? 0) - (x - tau)) / x);
  });
  return e;
}

interface LapackCase {
  id: number;
  rows: number;
  cols: number;
  tau: number;
  reps: number;
  a: string;
  ours: string | null;
}

interface LapackResult {
  numpy: string;
  svd_ms: number;
  svt_ms: number;
  ours_sv?: number[];
}

/** Runs bench/svt_numpy.py on one case; null (with a note on stderr) when python/numpy fail. */
function lapack(dir: string, c: LapackCase): LapackResult | null {
  const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/svt_numpy.py');
  const manifest = join(dir, 'manifest.json');
  const outPath = join(dir, 'numpy.json');
  writeFileSync(manifest, JSON.stringify({ cases: [c] }));
  const py = spawnSync('python3', [script, manifest, outPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (py.status !== 0) {
    const why = py.error?.message ?? py.stderr.trim().split('\n').pop();
    process.stderr.write(`numpy comparison skipped: ${why}\n`);
    return null;
  }
  const got = JSON.parse(readFileSync(outPath, 'utf8')) as {
    numpy: string;
    cases: (Omit<LapackResult, 'numpy'> & { id: number })[];
  };
  return { numpy: got.numpy, ...got.cases[0]! };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      shapes: { type: 'string', default: 'all' },
      regime: { type: 'string', default: 'both' },
      reps: { type: 'string', default: '3' },
      backend: { type: 'string', default: 'wasm' },
      threads: { type: 'string', default: '0' },
      'no-numpy': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const shapes = parseShapes(values.shapes!);
  if (!['full', 'low', 'both'].includes(values.regime!)) {
    throw new Error(`--regime: expected full, low or both; got '${values.regime}'`);
  }
  const regimes: Regime[] = values.regime === 'both' ? ['full', 'low'] : [values.regime as Regime];
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1)
    throw new Error(`--reps: expected a positive integer, got '${values.reps}'`);
  const backend = await initBackend(values.backend as BackendName, {
    threads: threadsFlag(values.threads!),
  });
  const threads = backendThreads(backend);
  const dir = mkdtempSync(join(tmpdir(), 'fedslr-svt-'));
  let numpyVersion: string | null = null;
  const rows: Row[] = [];
  try {
    for (const [r, c] of shapes) {
      const k = Math.min(r, c);
      const rng = Rng.derive(2024, r, c);
      const u = randomOrthonormal(r, k, rng);
      const v = randomOrthonormal(c, k, rng);
      for (const regime of regimes) {
        const { s, tau } = spectrum(k, regime);
        const p = { a: Float32Array.from(lowRankProduct(u, v, s, r, c)), u, v };
        let hint: SvtHint | undefined;
        let res: SvtResult | undefined;
        const times: number[] = [];
        let cold = 0;
        let caseReps = reps;
        let warmup = 3;
        for (let i = 0; i < warmup + caseReps; i++) {
          const t0 = performance.now();
          res = await svt(p.a, r, c, tau, { factors: 'whenLowRank', hint });
          const dt = performance.now() - t0;
          if (i >= warmup) times.push(dt);
          else if (i === 0) cold = dt;
          else if (dt < 50 && warmup === 3) {
            warmup += Math.min(Math.max(FAST_WARMUP, Math.ceil(FAST_WARMUP_MS / dt)), 5000);
            caseReps = Math.max(reps, FAST_REPS);
          }
          hint = res.hint;
        }
        const out = res!;
        const ref = lowRankProduct(
          p.u,
          p.v,
          s.map((x) => Math.max(x - tau, 0)),
          r,
          c,
        );
        let num = 0;
        let den = 0;
        for (let i = 0; i < ref.length; i++) {
          num += (out.matrix[i]! - ref[i]!) ** 2;
          den += ref[i]! ** 2;
        }
        const id = rows.length;
        let sv: number | null = null;
        if (out.values) sv = svErr(out.values, s, tau);
        else if (values['no-numpy'] && k <= 800) sv = svErr(gramSvd(out.matrix, r, c).s, s, tau);
        const orth = out.u
          ? Math.max(orthErr(out.u, r, out.rank), orthErr(out.v!, c, out.rank))
          : (out.polarOrthError ?? null);
        rows.push({
          shape: [r, c],
          regime,
          ms: median(times),
          cold_ms: cold,
          sv_rel_err: sv,
          orth_err: orth,
          recon_rel_err: den === 0 ? Math.sqrt(num) : Math.sqrt(num / den),
          rank: out.rank,
          expected_rank: s.filter((x) => x > tau).length,
          method: out.method,
        });
        if (!values['no-numpy']) {
          const aPath = join(dir, 'a.bin');
          writeFileSync(aPath, p.a);
          let oursPath: string | null = null;
          if (!out.values) {
            oursPath = join(dir, 'x.bin');
            writeFileSync(oursPath, out.matrix);
          }
          const got = lapack(dir, {
            id,
            rows: r,
            cols: c,
            tau,
            reps: caseReps,
            a: aPath,
            ours: oursPath,
          });
          if (got) {
            numpyVersion = got.numpy;
            const row = rows[id]!;
            row.lapack_ms = got.svt_ms;
            row.lapack_svd_ms = got.svd_ms;
            row.ratio = row.ms / got.svt_ms;
            if (got.ours_sv) row.sv_rel_err = svErr(got.ours_sv, s, tau);
          } else {
            values['no-numpy'] = true;
          }
        }
        if (!values.json) process.stderr.write(`done ${r}x${c} ${regime}\n`);
      }
    }
    if (values.json) {
      for (const row of rows)
        console.log(JSON.stringify({ backend, threads, numpy: numpyVersion, ...row }));
    } else {
      const fmt = (x: number | null | undefined, d = 1) => (x == null ? '-' : x.toFixed(d));
      const sci = (x: number | null | undefined) => (x == null ? '-' : x.toExponential(1));
      console.log(
        `backend ${backend} (${threads} threads); numpy ${numpyVersion ?? 'unavailable'}`,
      );
      console.log(
        'shape       regime  method    rank/exp     ms      cold_ms  lapack_ms  ratio  sv_err   orth     recon',
      );
      for (const x of rows) {
        console.log(
          [
            `${x.shape[0]}x${x.shape[1]}`.padEnd(11),
            x.regime.padEnd(7),
            x.method.padEnd(9),
            `${x.rank}/${x.expected_rank}`.padEnd(12),
            fmt(x.ms).padStart(8),
            fmt(x.cold_ms).padStart(8),
            fmt(x.lapack_ms).padStart(10),
            fmt(x.ratio, 2).padStart(6),
            sci(x.sv_rel_err).padStart(8),
            sci(x.orth_err).padStart(8),
            sci(x.recon_rel_err).padStart(8),
          ].join(' '),
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}
