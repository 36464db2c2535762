/**
 * The sum-only declaration of every algorithm: one that declares it has an `aggregateSum` that
 * gives what `aggregate` gives from the same uploads (two rounds, so state such as FedSLR's dual
 * sum is carried); one that does not says why, naming the option that would make it sum-only.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import { createModel } from '../models/index.js';
import { initBackend } from '../tensor/backend.js';
import { disposeParams, type ParamArrays, readArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { combine } from './common.js';
import { defaultsOf } from './descriptor.js';
import { ALGORITHMS, createAlgorithm } from './registry.js';
import type { AggregateInput, Algorithm, AlgorithmContext } from './types.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const model = createModel('mlp', { inputShape: [4, 1, 1], classes: 3, hidden: [6] });
const ctx: AlgorithmContext = {
  model,
  numClients: 5,
  train: { lr: 0.1, lrDecay: 1, weightDecay: 0, batchSize: 2, epochs: 1 },
};

/** Each algorithm with its defaults, and with `weighted: false` where it has that option. */
const variants = ALGORITHMS.flatMap((d) => {
  const defaults = { name: d.name, ...defaultsOf(d.schema) } as Record<string, unknown>;
  return 'weighted' in defaults ? [defaults, { ...defaults, weighted: false }] : [defaults];
});

async function initial(): Promise<ParamArrays> {
  const t = model.init(new Rng(7));
  const a = await readArrays(t);
  disposeParams(t);
  return a;
}

/** Three uploads near what `server` sends, and the same uploads as a sum. */
function uploadsFor(algorithm: Algorithm, server: unknown, round: number, rng: Rng) {
  const sent = decodeParams(algorithm.server.download(server, round, 0).params, model.spec);
  const inputs: AggregateInput[] = [0, 1, 2].map((client) => ({
    client,
    upload: {
      round,
      params: denseParams(combine([sent], (v) => v[0]! + 0.1 * rng.normal())),
      numSamples: 10 + client,
      trainLoss: 1,
      trainAcc: 0.5,
    },
  }));
  const sets = inputs.map((u) => decodeParams(u.upload.params));
  const sum = combine(sets, (v) => v.reduce((a, b) => a + b, 0));
  return { inputs, total: { count: inputs.length, params: sum } };
}

describe('sum-only algorithms', () => {
  for (const options of variants) {
    const label = JSON.stringify(options);
    const descriptor = ALGORITHMS.find((d) => d.name === options['name'])!;
    // biome-ignore lint/suspicious/noExplicitAny: each descriptor reads its own options
    const verdict = descriptor.sumOnly(options as any);
    if (verdict !== true) {
      it(`${label} says why it is not sum-only`, () => {
        expect(verdict.length).toBeGreaterThan(20);
        if ('weighted' in options) expect(verdict).toContain('weighted: false');
      });
      continue;
    }
    it(`${label}: aggregateSum equals aggregate on the same uploads`, async () => {
      // biome-ignore lint/suspicious/noExplicitAny: a config section of this algorithm
      const algorithm = createAlgorithm(options as any, ctx);
      const { server: part } = algorithm;
      expect(part.aggregateSum).toBeDefined();
      let byUploads = part.initServer(await initial());
      let bySum = byUploads;
      const rng = new Rng(11);
      for (const round of [0, 1]) {
        const { inputs, total } = uploadsFor(algorithm, byUploads, round, rng);
        byUploads = (await part.aggregate(byUploads, round, inputs)).server;
        bySum = (await part.aggregateSum!(bySum, round, total)).server;
      }
      const a = part.global(byUploads)!;
      const b = part.global(bySum)!;
      for (const [name, x] of Object.entries(a))
        x.data.forEach((v, i) => expect(b[name]!.data[i]).toBeCloseTo(v, 5));
    });
  }
});
