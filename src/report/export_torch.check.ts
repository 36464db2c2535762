/**
 * The exported files, loaded by PyTorch exactly as EXPORT.md tells users to, compute what fedslr
 * computes. Needs /usr/bin/python3 with torch. Not part of `npm test` (PyTorch is a benchmark
 * peer only): run with `npm run check:torch`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromMatrix, matrixShape } from '../linalg/matrix_view.js';
import { createModel, type Model, type ModelName } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import { disposeParams, type ParamArrays, toArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { exportSafetensors, type FinalModels } from './export.js';

const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

/** Reads the files with json + numpy (as EXPORT.md says), runs each model, prints max |diff|. */
const SCRIPT = `
import json, sys, numpy as np, torch, torch.nn.functional as F
d = sys.argv[1]
def load(path):
    b = open(path, 'rb').read()
    n = int.from_bytes(b[:8], 'little')
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(b[8 + n + s:8 + n + e], dtype='<f4').copy()).reshape(v['shape'])
    return out
cases = json.load(open(d + '/cases.json'))
res = {}
def gn(x, sd, name): return F.group_norm(x, 2, sd[name + '.weight'], sd[name + '.bias'], 1e-5)
for c in cases:
    sd = load(d + '/' + c['name'] + '.safetensors')
    x = torch.from_numpy(np.fromfile(d + '/' + c['name'] + '.x', dtype='<f4')).reshape(c['x']).permute(0, 3, 1, 2)
    want = torch.from_numpy(np.fromfile(d + '/' + c['name'] + '.y', dtype='<f4')).reshape(c['y'])
    if c['model'] == 'cnn':
        if c['name'].endswith('factors'):
            for layer in ['conv1', 'fc1', 'fc2']:
                u, v = sd.pop(layer + '.weight_u'), sd.pop(layer + '.weight_v')
                if layer == 'conv1':
                    o, i, kh, kw = c['conv1']
                    sd['conv1.weight'] = (u @ v).reshape(o, kh, i, kw).permute(0, 2, 1, 3)
                else:
                    sd[layer + '.weight'] = u @ v
        y = F.max_pool2d(F.relu(F.conv2d(x, sd['conv1.weight'], sd['conv1.bias'], padding=2)), 2)
        y = F.max_pool2d(F.relu(F.conv2d(y, sd['conv2.weight'], sd['conv2.bias'], padding=2)), 2)
        # EXPORT.md's weight reordering, so that torch.flatten(y, 1) (NCHW) can be used.
        W = sd['fc1.weight']
        _, c_, h, w = y.shape
        W = W.view(W.shape[0], h, w, c_).permute(0, 3, 1, 2).reshape(W.shape[0], -1)
        y = F.relu(F.linear(torch.flatten(y, 1), W, sd['fc1.bias']))
        y = F.linear(y, sd['fc2.weight'], sd['fc2.bias'])
    elif c['model'] == 'mlp':
        y = x.permute(0, 2, 3, 1).flatten(1)
        y = F.relu(F.linear(y, sd['fc1.weight'], sd['fc1.bias']))
        y = F.linear(y, sd['out.weight'], sd['out.bias'])
    else:
        y = F.relu(gn(F.conv2d(x, sd['stem.conv.weight'], padding=1), sd, 'stem.gn'))
        for name, stride in c['blocks']:
            z = F.relu(gn(F.conv2d(y, sd[name + '.conv1.weight'], stride=stride, padding=1), sd, name + '.gn1'))
            z = gn(F.conv2d(z, sd[name + '.conv2.weight'], padding=1), sd, name + '.gn2')
            s = y
            if name + '.short.weight' in sd:
                s = gn(F.conv2d(y, sd[name + '.short.weight'], stride=stride), sd, name + '.short_gn')
            y = F.relu(z + s)
        y = F.linear(y.mean(dim=(2, 3)), sd['fc.weight'])
    res[c['name']] = float((y - want).abs().max())
print(json.dumps(res))
`;

let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedslr-torch-'));
  await initBackend('cpu');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function writeF32(path: string, data: Float32Array): void {
  writeFileSync(path, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** Runs `model` on a random batch in tfjs and writes the export, the input and the logits. */
async function writeCase(
  name: string,
  model: Model,
  params: ParamArrays,
  final: FinalModels,
  what: Parameters<typeof exportSafetensors>[1],
) {
  const [h, w, c] = model.inputShape;
  const rng = new Rng(5);
  const x = new Float32Array(3 * h * w * c).map(() => rng.normal());
  const y = tf.tidy(() => {
    const p: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(params)) p[k] = tf.tensor(v.data, v.shape);
    return model.forward(p, tf.tensor4d(x, [3, h, w, c])).dataSync() as Float32Array;
  });
  writeF32(join(dir, `${name}.x`), x);
  writeF32(join(dir, `${name}.y`), y);
  writeFileSync(join(dir, `${name}.safetensors`), await exportSafetensors(final, what, dir));
  return { name, model: model.name, x: [3, h, w, c], y: [3, model.classes] };
}

function initParams(model: Model, seed: number): ParamArrays {
  const p = model.init(new Rng(seed));
  const a = toArrays(p);
  disposeParams(p);
  return a;
}

describe.skipIf(!hasTorch)('exported models in PyTorch', () => {
  it('give the logits fedslr computes (cnn, mlp on colour images, resnet8gn, cnn factors)', async () => {
    const before = tf.memory().numTensors;
    const cases = [];
    const final = (
      name: ModelName,
      model: Model,
      global: ParamArrays,
      extra: Partial<FinalModels> = {},
    ): FinalModels => ({
      modelName: name,
      spec: model.spec,
      global,
      numClients: 1,
      personal: async () => global,
      ...extra,
    });
    for (const [name, shape] of [
      ['cnn', [12, 12, 1]],
      ['mlp', [6, 6, 3]],
      ['resnet8gn', [8, 8, 3]],
    ] as const) {
      const model = createModel(name, {
        inputShape: [...shape],
        classes: 5,
        hidden: name === 'mlp' ? [7] : undefined,
      });
      const params = initParams(model, 1);
      const c = await writeCase(name, model, params, final(name, model, params), {
        kind: 'client',
        client: 0,
      });
      cases.push(
        name === 'resnet8gn'
          ? {
              ...c,
              blocks: [
                ['s1.b1', 1],
                ['s2.b1', 2],
                ['s3.b1', 2],
              ],
            }
          : c,
      );
    }
    // A cnn whose conv1, fc1 and fc2 are exactly rank 2: global = fromMatrix(left @ right).
    const model = createModel('cnn', { inputShape: [12, 12, 1], classes: 5 });
    const params = initParams(model, 2);
    const factors: NonNullable<FinalModels['factors']> = {};
    const rng = new Rng(3);
    for (const name of ['conv1.kernel', 'fc1.kernel', 'fc2.kernel']) {
      const p = model.spec.find((q) => q.name === name)!;
      const [rows, cols] = matrixShape(p.shape, p.role)!;
      const left = new Float32Array(rows * 2).map(() => rng.normal() * 0.3);
      const right = new Float32Array(2 * cols).map(() => rng.normal() * 0.3);
      factors[name] = { left, right, rank: 2, rows, cols };
      params[name]!.data = tf.tidy(() => {
        const m = tf.matMul(tf.tensor2d(left, [rows, 2]), tf.tensor2d(right, [2, cols]));
        return fromMatrix(m, p.shape, p.role).dataSync() as Float32Array;
      });
    }
    const [kh, kw, ci, co] = model.spec[0]!.shape;
    cases.push({
      ...(await writeCase('cnn-factors', model, params, final('cnn', model, params, { factors }), {
        kind: 'factors',
      })),
      conv1: [co, ci, kh, kw],
    });
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(cases));
    const r = spawnSync(PYTHON, ['-c', SCRIPT, dir], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const diffs = JSON.parse(r.stdout) as Record<string, number>;
    expect(Object.keys(diffs)).toEqual(['cnn', 'mlp', 'resnet8gn', 'cnn-factors']);
    for (const [k, d] of Object.entries(diffs)) expect(d, k).toBeLessThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
  });
});
