import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli/cli.js';
import { cnn } from '../models/cnn.js';
import { parseConfig } from '../sim/config.js';
import { runExperiment } from '../sim/experiment.js';
import { type FinalState, readFinal } from '../sim/final.js';
import type { ParamArrays, ParamSpec } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { type ExportWhat, exportSafetensors, type FinalModels, permute } from './export.js';
import { encodeSafetensors } from './safetensors.js';

/** An independent minimal safetensors reader: header length, header JSON, byte offsets. */
function readSafetensors(bytes: Uint8Array): {
  metadata: Record<string, string>;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  order: string[];
} {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + n;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const order: string[] = [];
  let expectBegin = 0;
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (h.dtype !== 'F32') throw new Error(`${name}: dtype ${h.dtype}`);
    const [b, e] = h.data_offsets;
    if (b !== expectBegin) throw new Error(`${name}: begins at ${b}, expected ${expectBegin}`);
    expectBegin = e;
    const data = new Float32Array((e - b) / 4);
    for (let i = 0; i < data.length; i++) data[i] = buf.readFloatLE(base + b + 4 * i);
    tensors.set(name, { shape: h.shape, data });
    order.push(name);
  }
  if (base + expectBegin !== buf.length) throw new Error('trailing bytes after the last tensor');
  return {
    metadata: (header as unknown as { __metadata__?: Record<string, string> }).__metadata__ ?? {},
    tensors,
    order,
  };
}

type File = ReturnType<typeof readSafetensors>;

/** Every tensor of `params` is in `file` under its PyTorch name, in PyTorch layout, bit for bit. */
function expectTorchLayout(file: File, spec: ParamSpec, params: ParamArrays): void {
  expect(file.tensors.size).toBe(spec.length);
  for (const p of spec) {
    const src = params[p.name]!.data;
    const name = p.name
      .replace(/\.kernel$/, '.weight')
      .replace(/\.scale$/, '.weight')
      .replace(/\.offset$/, '.bias');
    const t = file.tensors.get(name);
    if (!t) throw new Error(`no tensor '${name}' for '${p.name}'`);
    if (p.role === 'conv') {
      const [kh, kw, ci, co] = p.shape as [number, number, number, number];
      expect(t.shape).toEqual([co, ci, kh, kw]);
      for (let o = 0; o < co; o++)
        for (let i = 0; i < ci; i++)
          for (let a = 0; a < kh; a++)
            for (let b = 0; b < kw; b++) {
              const got = t.data[((o * ci + i) * kh + a) * kw + b];
              const want = src[((a * kw + b) * ci + i) * co + o];
              if (got !== want)
                throw new Error(`${p.name}[${o},${i},${a},${b}]: ${got} != ${want}`);
            }
    } else if (p.role === 'dense') {
      const [din, dout] = p.shape as [number, number];
      expect(t.shape).toEqual([dout, din]);
      for (let o = 0; o < dout; o++)
        for (let i = 0; i < din; i++) {
          if (t.data[o * din + i] !== src[i * dout + o]) throw new Error(`${p.name}[${o},${i}]`);
        }
    } else {
      expect(t.shape).toEqual(p.shape);
      expect(t.data).toEqual(src);
    }
  }
}

function randomParams(spec: ParamSpec, rng: Rng): ParamArrays {
  const out: ParamArrays = {};
  for (const p of spec) {
    const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal();
    out[p.name] = { shape: [...p.shape], data };
  }
  return out;
}

function matmul(a: Float32Array, b: Float32Array, n: number, k: number, m: number): Float32Array {
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[t * m + j]!;
      out[i * m + j] = s;
    }
  return out;
}

/** A small cnn's final state: conv1 and fc1 low-rank (global = left @ right in the matrix view). */
function fixture(): FinalModels {
  const model = cnn([8, 8, 1], 3);
  const rng = new Rng(11);
  const global = randomParams(model.spec, rng);
  const factors: NonNullable<FinalModels['factors']> = {};
  for (const name of ['conv1.kernel', 'fc1.kernel']) {
    const p = model.spec.find((q) => q.name === name)!;
    const [kh, kw, ci, co] = p.shape;
    const [rows, cols] = p.role === 'conv' ? [co! * kh!, ci! * kw!] : [p.shape[0]!, p.shape[1]!];
    const rank = 2;
    const left = randomParams([{ name: 'l', shape: [rows, rank], role: 'dense' }], rng)['l']!.data;
    const right = randomParams([{ name: 'r', shape: [rank, cols], role: 'dense' }], rng)['r']!.data;
    factors[name] = { left, right, rank, rows, cols };
    const m = matmul(left, right, rows, rank, cols);
    const w = global[name]!.data;
    if (p.role === 'dense') w.set(m);
    else {
      // FEDSLR.md: M[o * kh + a, i * kw + b] = K[a, b, i, o].
      for (let a = 0; a < kh!; a++)
        for (let b = 0; b < kw!; b++)
          for (let i = 0; i < ci!; i++)
            for (let o = 0; o < co!; o++)
              w[((a * kw! + b) * ci! + i) * co! + o] = m[(o * kh! + a) * cols + i * kw! + b]!;
    }
  }
  const personal = [0, 1, 2].map(() => randomParams(model.spec, rng));
  return {
    modelName: 'cnn',
    spec: model.spec,
    global,
    factors,
    numClients: 3,
    personal: async (c) => personal[c] ?? null,
  };
}

const read = async (f: FinalModels, what: ExportWhat) =>
  readSafetensors(await exportSafetensors(f, what, 'run'));

describe('safetensors export', () => {
  it("writes a client's model in PyTorch names and layouts, every value in place", async () => {
    const f = fixture();
    const file = await read(f, { kind: 'client', client: 2 });
    const params = (await f.personal(2))!;
    expect(file.order).toEqual([
      'conv1.weight',
      'conv1.bias',
      'conv2.weight',
      'conv2.bias',
      'fc1.weight',
      'fc1.bias',
      'fc2.weight',
      'fc2.bias',
    ]);
    expect(file.metadata['fedslr.client']).toBe('2');
    expect(file.metadata['format']).toBe('pt');
    expectTorchLayout(file, f.spec, params);
  });

  it('writes factors whose product is the documented matrix of the exported global weight', async () => {
    const f = fixture();
    const g = await read(f, { kind: 'global' });
    const fac = await read(f, { kind: 'factors' });
    expect(JSON.parse(fac.metadata['fedslr.ranks']!)).toEqual({
      'conv1.weight': 2,
      'fc1.weight': 2,
    });
    // Unfactored tensors are the global model's own.
    expect(fac.tensors.get('conv2.weight')).toEqual(g.tensors.get('conv2.weight'));
    expect(fac.tensors.has('conv1.weight')).toBe(false);
    for (const name of ['conv1.weight', 'fc1.weight']) {
      const u = fac.tensors.get(`${name}_u`)!;
      const v = fac.tensors.get(`${name}_v`)!;
      const [rows, r] = u.shape as [number, number];
      const cols = v.shape[1]!;
      const prod = matmul(u.data, v.data, rows, r, cols);
      const w = g.tensors.get(name)!;
      // EXPORT.md: conv w [o, i, kh, kw] as w.permute(0, 2, 1, 3).reshape(o * kh, i * kw).
      const m = w.shape.length === 4 ? permute(w.data, w.shape, [0, 2, 1, 3]).data : w.data;
      expect(rows * cols).toBe(m.length);
      let maxErr = 0;
      for (let i = 0; i < m.length; i++) maxErr = Math.max(maxErr, Math.abs(prod[i]! - m[i]!));
      expect(maxErr, name).toBeLessThan(1e-4);
    }
  });

  it('refuses an unknown client, a run without personal models and a run without factors', async () => {
    const f = fixture();
    await expect(read(f, { kind: 'client', client: 3 })).rejects.toThrow(
      "client 3 does not exist: run 'run' has clients 0..2",
    );
    await expect(
      read({ ...f, personal: async () => null }, { kind: 'client', client: 0 }),
    ).rejects.toThrow("run 'run' keeps no personal models (its algorithm has none)");
    await expect(read({ ...f, factors: undefined }, { kind: 'factors' })).rejects.toThrow(
      "run 'run' keeps no low-rank factors",
    );
  });

  it('pads the header to 8 bytes and rejects a tensor whose size does not match its shape', () => {
    const bytes = encodeSafetensors(
      [{ name: 'x', shape: [3], data: new Float32Array([1, 2, 3]) }],
      {
        k: 'v',
      },
    );
    const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(readSafetensors(bytes).tensors.get('x')!.data).toEqual(new Float32Array([1, 2, 3]));
    expect(() =>
      encodeSafetensors([{ name: 'y', shape: [2, 2], data: new Float32Array(3) }]),
    ).toThrow("'y' has 3 values for shape [2,2]");
  });
});

describe('fedslr export of a real run', () => {
  let tmp: string;
  let run: string;
  let final: FinalState;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'fedslr-export-'));
    run = join(tmp, 'run');
    // One round of FedSLR with a strong nuclear-norm weight, so the global matrices are low-rank.
    const config = parseConfig({
      seed: 1,
      rounds: 1,
      evalEvery: 1,
      clients: { count: 4, sampling: { kind: 'count', k: 2 } },
      algorithm: { name: 'fedslr', mu: 0.08 },
      model: { name: 'mlp', hidden: [16] },
      data: { testPerClient: 20 },
      train: { epochs: 1, batchSize: 50 },
    });
    await runExperiment(config, { outDir: run });
    final = await readFinal(run);
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const cli = async (...args: string[]) => {
    const errs: string[] = [];
    const log = console.log;
    const error = console.error;
    console.log = () => {};
    console.error = (...a: unknown[]) => errs.push(a.join(' '));
    try {
      return { code: await main(['export', ...args]), err: errs.join('\n') };
    } finally {
      console.log = log;
      console.error = error;
    }
  };
  const readFile = (path: string) => readSafetensors(new Uint8Array(readFileSync(path)));

  it("writes a client's personal model, every tensor as the run holds it", async () => {
    expect(await cli(run, '--client', '3')).toEqual({ code: 0, err: '' });
    const file = readFile(join(run, 'client-3.safetensors'));
    expectTorchLayout(file, final.spec, (await final.personal(3))!);
    expect(file.metadata['fedslr.algorithm']).toBe('fedslr');
    expect(JSON.parse(file.metadata['fedslr.config']!).seed).toBe(1);
  });

  it('writes the global model and its low-rank factors', async () => {
    const out = join(tmp, 'g.safetensors');
    expect((await cli(run, '--global', '--out', out)).code).toBe(0);
    expectTorchLayout(readFile(out), final.spec, final.global!);
    expect(Object.keys(final.factors).length).toBeGreaterThan(0);
    expect((await cli(run, '--factors')).code).toBe(0);
    const file = readFile(join(run, 'global-factors.safetensors'));
    for (const p of final.spec) {
      const f = final.factors[p.name];
      const torch = p.name.replace(/\.kernel$/, '.weight');
      if (!f) {
        expect(file.tensors.get(torch)!.data.length).toBe(final.global![p.name]!.data.length);
        continue;
      }
      // Dense factors of the [in, out] matrix: u = right^T [out, r], v = left^T [r, in].
      const u = file.tensors.get(`${torch}_u`)!;
      const v = file.tensors.get(`${torch}_v`)!;
      expect(u.shape).toEqual([f.cols, f.rank]);
      expect(v.shape).toEqual([f.rank, f.rows]);
      for (let k = 0; k < f.rank; k++) {
        for (let j = 0; j < f.cols; j++)
          expect(u.data[j * f.rank + k]).toBe(f.right[k * f.cols + j]);
        for (let i = 0; i < f.rows; i++)
          expect(v.data[k * f.rows + i]).toBe(f.left[i * f.rank + k]);
      }
      // And u @ v is the exported global weight [out, in].
      const w = readFile(out).tensors.get(torch)!;
      const prod = matmul(u.data, v.data, f.cols, f.rank, f.rows);
      let err = 0;
      for (let i = 0; i < prod.length; i++) err = Math.max(err, Math.abs(prod[i]! - w.data[i]!));
      expect(err, p.name).toBeLessThan(1e-5);
    }
  });

  it('names an unknown client, a path that is no run, a run without checkpoints, and bad flags', async () => {
    const unknown = await cli(run, '--client', '4');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain(`client 4 does not exist: run '${run}' has clients 0..3`);
    const nowhere = join(tmp, 'nowhere');
    expect(await cli(nowhere, '--global')).toEqual({
      code: 2,
      err: `fedslr export: '${nowhere}' does not exist`,
    });
    const notRun = join(tmp, 'not-a-run');
    mkdirSync(notRun);
    const r = await cli(notRun, '--global');
    expect(r.code).toBe(2);
    expect(r.err).toContain(`'${notRun}' is not a run directory: config.json is missing`);
    const bare = join(tmp, 'bare');
    mkdirSync(bare);
    copyFileSync(join(run, 'config.json'), join(bare, 'config.json'));
    const b = await cli(bare, '--global');
    expect(b.code).toBe(2);
    expect(b.err).toContain(`no usable checkpoint in '${bare}'`);
    const both = await cli(run, '--global', '--factors');
    expect(both.code).toBe(2);
    expect(both.err).toContain('choose exactly one of --client <i>, --global, --factors');
    const neg = await cli(run, '--client', 'x1');
    expect(neg.code).toBe(2);
    expect(neg.err).toContain("--client expects a client index (0, 1, ...), got 'x1'");
  });
});
