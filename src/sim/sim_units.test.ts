import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { taskSchema } from '../runtime/task.js';
import { Rng } from '../tensor/rng.js';
import { ConfigError, parseConfig, taskOf } from './config.js';
import { refuseChangedConfig } from './experiment.js';
import { applySet, loadConfig } from './load_config.js';
import { longestFirst, splitByWork } from './pool.js';
import { drawClients } from './sampling.js';
import { setup } from './setup.js';
import { drawRound, SAMPLING_STREAM } from './simulate.js';
import { percentile, summarize } from './stats.js';

describe('client sampling', () => {
  it('fraction: each client joins with probability q, never an empty round', () => {
    const rng = new Rng(1);
    let total = 0;
    for (let t = 0; t < 2000; t++) {
      const s = drawClients({ kind: 'fraction', q: 0.1 }, 20, rng);
      expect(s.length).toBeGreaterThan(0);
      expect(new Set(s).size).toBe(s.length);
      total += s.length;
    }
    // E|S| given non-empty = 2 / (1 - 0.9^20) ~ 2.28
    expect(total / 2000).toBeGreaterThan(2.1);
    expect(total / 2000).toBeLessThan(2.45);
  });

  it('count: exactly k distinct clients, sorted, reproducible', () => {
    const a = drawClients({ kind: 'count', k: 7 }, 30, new Rng(3));
    expect(a).toHaveLength(7);
    expect([...a].sort((x, y) => x - y)).toEqual(a);
    expect(drawClients({ kind: 'count', k: 7 }, 30, new Rng(3))).toEqual(a);
    expect(() => drawClients({ kind: 'count', k: 31 }, 30, new Rng(3))).toThrow(
      /cannot draw 31 clients out of 30/,
    );
  });
});

describe('redraws of a round', () => {
  it('draw from their own stream per attempt, count from fewer clients when fewer are left, none from none', () => {
    const roster = [2, 5, 7, 9, 11, 13];
    const count = { kind: 'count', k: 3 } as const;
    expect(drawRound(count, roster, 4, 2, 0)).toEqual(
      drawClients(count, 6, Rng.derive(4, SAMPLING_STREAM, 2)).map((i) => roster[i]),
    );
    expect(drawRound(count, roster, 4, 2, 1)).toEqual(
      drawClients(count, 6, Rng.derive(4, SAMPLING_STREAM, 2, 1)).map((i) => roster[i]),
    );
    expect(drawRound(count, [5, 9], 4, 2, 1)).toEqual([5, 9]);
    expect(drawRound({ kind: 'fraction', q: 0.5 }, [], 4, 2, 1)).toEqual([]);
  });
});

describe('worker pool order', () => {
  it('starts the longest jobs first, ties in index order', () => {
    expect(longestFirst([300, 1200, 50, 1200, 700])).toEqual([1, 3, 4, 0, 2]);
    expect(longestFirst([])).toEqual([]);
  });

  it('splits evaluation jobs between workers longest first, each to the least loaded', () => {
    // 1200 -> w0, 1200 -> w1, 700 -> w0 (tie at 1200: the lower), 300 -> w1, 50 -> w1.
    expect(splitByWork([300, 1200, 50, 1200, 700], 2)).toEqual([
      [1, 4],
      [3, 0, 2],
    ]);
    expect(splitByWork([5, 5], 3)).toEqual([[0], [1], []]);
  });
});

describe('the task a client is sent', () => {
  it('is the config without the simulation settings, and a client can check it', () => {
    const config = parseConfig({
      seed: 7,
      clients: { count: 12 },
      model: { name: 'mlp', hidden: [16] },
      train: { backend: 'wasm', lr: 0.05, lastBatch: 'merge' },
      algorithm: { name: 'ditto' },
      runtime: { workers: 3 },
    });
    const task = taskOf(config, [28, 28, 1], 10);
    const { backend: _backend, ...train } = config.train;
    expect(task).toEqual({
      seed: 7,
      numClients: 12,
      model: { name: 'mlp', hidden: [16], inputShape: [28, 28, 1], classes: 10 },
      train,
      algorithm: config.algorithm,
    });
    expect(train).toMatchObject({ lr: 0.05, lastBatch: 'merge' });
    expect(taskSchema.parse(task)).toEqual(task);
    expect(() => taskSchema.parse({ ...task, rounds: 5 })).toThrow(/rounds/);
  });
});

describe('client summaries', () => {
  it('match numpy-style percentiles and weighted means', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([0, 10], 10)).toBeCloseTo(1);
    const s = summarize([0.5, 1, 0.75], [1, 0, 0.5], [10, 30, 20]);
    expect(s.acc).toBeCloseTo(0.75);
    expect(s.acc_weighted).toBeCloseTo((5 + 30 + 15) / 60);
    expect(s.acc_std).toBeCloseTo(Math.sqrt((0.0625 + 0.0625) / 3));
    expect(s.acc_p50).toBe(0.75);
    expect(s.loss).toBeCloseTo(0.5);
    expect(s).not.toHaveProperty('nonfinite');
  });

  it('count the clients whose model gives a non-finite loss, keeping their accuracy in the means', () => {
    const s = summarize([0.5, 0, 0.1], [1, Number.NaN, Number.POSITIVE_INFINITY], [10, 10, 10]);
    expect(s.nonfinite).toBe(2);
    expect(s.acc).toBeCloseTo(0.2);
    expect(s.loss).toBeNaN();
  });
});

describe('config', () => {
  it('fills in FEDSLR.md defaults', () => {
    const c = parseConfig({});
    expect(c.algorithm).toEqual({
      name: 'fedslr',
      alpha: 0.1,
      mu: 1e-4,
      lambda: 1e-3,
      personalEpochs: 1,
      personalInit: 'init',
      ablation: 'both',
      svt: { mode: 'absolute' },
      discardNonFinite: false,
    });
    expect(c.train).toMatchObject({
      lr: 0.1,
      lrDecay: 0.998,
      weightDecay: 1e-3,
      batchSize: 20,
      epochs: 2,
    });
    expect(c.clients.sampling).toEqual({ kind: 'fraction', q: 0.1 });
    expect(c.evalEvery).toBe(5);
  });

  it('names every bad key with what was expected, and suggests near misses', () => {
    let msg = '';
    try {
      parseConfig(
        { rounds: -1, algorithm: { name: 'fedslr', alpah: 0.2 }, train: { backend: 'gpu' } },
        'x.yaml',
      );
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/x\.yaml is not valid/);
    expect(msg).toMatch(/rounds: .*>=0/);
    expect(msg).toMatch(/algorithm: unknown key 'alpah' \(did you mean 'alpha'\?\)/);
    expect(msg).toMatch(/train\.backend: .*"wasm"/);
    expect(() => parseConfig({ algorithm: { name: 'fedsl' } })).toThrow(
      /algorithm\.name: 'fedsl' is not one of fedslr, fedavg, .* \(did you mean 'fedslr'\?\)/,
    );
    expect(() => parseConfig({ clients: { count: 5, sampling: { kind: 'count', k: 9 } } })).toThrow(
      /clients\.sampling\.k: cannot draw 9 clients out of 5/,
    );
  });

  it('checks svt budgets, density targets and downlink budgets, naming the key', () => {
    const fedslrWith = (extra: object) => parseConfig({ algorithm: { name: 'fedslr', ...extra } });
    expect(fedslrWith({ svt: { mode: 'bytes', fraction: 0.4 } }).algorithm).toMatchObject({
      svt: { mode: 'bytes', fraction: 0.4 },
    });
    expect(() => fedslrWith({ svt: { mode: 'bytes', fraction: 0.4, bytes: 9 } })).toThrow(
      /algorithm\.svt\.bytes: mode bytes takes exactly one of fraction, bytes, got both/,
    );
    expect(() => fedslrWith({ svt: { mode: 'rank' } })).toThrow(
      /algorithm\.svt: mode rank takes exactly one of rank, fraction/,
    );
    expect(() => fedslrWith({ svt: { mode: 'energy', fracton: 0.9 } })).toThrow(
      /algorithm\.svt: unknown key 'fracton' \(did you mean 'fraction'\?\)/,
    );
    expect(() => fedslrWith({ svt: { mode: 'energy', fraction: 1.5 } })).toThrow(
      /algorithm\.svt\.fraction: .*<=1/,
    );
    expect(() => fedslrWith({ svt: { mode: 'topk' } })).toThrow(
      /algorithm\.svt\.mode: 'topk' is not one of absolute, relative, energy, rank, bytes/,
    );
    expect(() => fedslrWith({ density: 0.3, lambda: 0 })).toThrow(
      /algorithm\.lambda: a density target adapts lambda multiplicatively/,
    );
    expect(() =>
      parseConfig({ algorithm: { name: 'fedavg', downlink: 0.4, downlinkBytes: 1000 } }),
    ).toThrow(/algorithm\.downlinkBytes: give downlink \(a fraction\) or downlinkBytes, not both/);
  });

  it('--set writes typed values at dot paths', () => {
    let raw: Record<string, unknown> = { algorithm: { name: 'fedslr', mu: 0.5 } };
    raw = applySet(raw, 'rounds=3');
    raw = applySet(raw, 'data.partition.alpha=0.1');
    raw = applySet(raw, 'algorithm.mu=0');
    raw = applySet(raw, 'model.hidden=[32, 16]');
    expect(raw).toEqual({
      rounds: 3,
      data: { partition: { alpha: 0.1 } },
      algorithm: { name: 'fedslr', mu: 0 },
      model: { hidden: [32, 16] },
    });
    expect(applySet(raw, 'algorithm.name=fedavg')['algorithm']).toEqual({ name: 'fedavg' });
    const dirichlet = applySet(raw, 'data.partition.kind=dirichlet');
    expect(dirichlet['data']).toEqual({ partition: { kind: 'dirichlet', alpha: 0.1 } });
    expect(applySet(dirichlet, 'data.partition.kind=iid')['data']).toEqual({
      partition: { kind: 'iid' },
    });
    expect(() => applySet(raw, 'rounds')).toThrow(/expected key\.path=value/);
    expect(() => applySet(raw, 'rounds.x=1')).toThrow(/'rounds' is not a mapping/);
    expect(parseConfig(applySet({}, 'rounds=3')).rounds).toBe(3);
  });

  it("--set of a section's kind drops the options the new kind does not take", () => {
    const raw = {
      data: { partition: { kind: 'dirichlet', alpha: 0.1, minSize: 5 } },
      clients: { count: 10, sampling: { kind: 'count', k: 3 } },
    };
    expect(parseConfig(applySet(raw, 'data.partition.kind=iid')).data.partition).toEqual({
      kind: 'iid',
    });
    const path = parseConfig(applySet(raw, 'data.partition.kind=pathological')).data.partition;
    expect(path).toEqual({ kind: 'pathological', classesPerClient: 2 });
    expect(parseConfig(applySet(raw, 'clients.sampling.kind=fraction')).clients.sampling).toEqual({
      kind: 'fraction',
      q: 0.1,
    });
    // Options set after the kind are kept; an unknown kind is reported as such.
    const after = applySet(
      applySet(raw, 'data.partition.kind=pathological'),
      'data.partition.classesPerClient=3',
    );
    expect(parseConfig(after).data.partition).toEqual({
      kind: 'pathological',
      classesPerClient: 3,
    });
    expect(() => parseConfig(applySet(raw, 'data.partition.kind=zipf'))).toThrow(
      /data\.partition\.kind/,
    );
  });
});

describe('config files', () => {
  it('refuses an empty config file, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslr-cfg-'));
    for (const [name, text] of [
      ['empty.yaml', ''],
      ['comments.yaml', '# nothing yet\n'],
      ['null.json', 'null'],
    ]) {
      const file = join(dir, name!);
      writeFileSync(file, text!);
      expect(() => loadConfig(file)).toThrow(new RegExp(`config file '${file}' is empty`));
    }
  });
});

describe('resuming under a config', () => {
  const saved = parseConfig({ rounds: 6, model: { name: 'mlp' } });
  // A run directory written before `train.lastBatch` existed has no such key.
  const { lastBatch: _added, ...oldTrain } = saved.train;
  const written = { ...saved, train: oldTrain } as typeof saved;

  it('counts an option added since the run was written at its default, not as a change', () => {
    expect(() =>
      refuseChangedConfig(written, parseConfig({ rounds: 9, model: { name: 'mlp' } }), 'r'),
    ).not.toThrow();
  });

  it('refuses any other change, naming the keys', () => {
    expect(() =>
      refuseChangedConfig(written, parseConfig({ seed: 3, model: { name: 'mlp' } }), 'r'),
    ).toThrow(/differing keys: seed$/);
  });
});

describe("a served run's setup", () => {
  it("reads no data: the model comes from the dataset's metadata, the clients are ids", async () => {
    // CIFAR-10 is in no directory here: reading it would fail.
    const config = parseConfig({
      seed: 1,
      clients: { count: 3 },
      data: { dataset: 'cifar10', dir: '/nonexistent/cifar' },
      model: { name: 'mlp', hidden: [4] },
      train: { backend: 'wasm' },
    });
    const { sim, info } = await setup(config, 'served');
    expect(sim.task.model).toMatchObject({ inputShape: [32, 32, 3], classes: 10 });
    expect(sim.clients.map((c) => [c.id, c.train.size, c.test.size])).toEqual([
      [0, 0, 0],
      [1, 0, 0],
      [2, 0, 0],
    ]);
    expect(info).toMatchObject({ dataSource: 'with the clients (served run)' });
    expect(info).not.toHaveProperty('trainSamples');
  });
});
