import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/cli.js';
import { CHECKPOINT_DIR, listCheckpoints } from '../src/sim/checkpoint.js';
import { parseConfig } from '../src/sim/config.js';
import { resumeExperiment, runExperiment } from '../src/sim/experiment.js';
import { readFinal } from '../src/sim/final.js';

const base = {
  seed: 5,
  rounds: 6,
  evalEvery: 2,
  clients: { count: 6, sampling: { kind: 'count', k: 3 } },
  algorithm: { name: 'fedslr' },
  data: {
    dataset: 'mnist',
    partition: { kind: 'dirichlet', alpha: 0.5, minSize: 10 },
    testPerClient: 40,
  },
  // fc1 (784 x 100) is large enough for the SVT's polar path, whose warm start must survive a resume.
  model: { name: 'mlp', hidden: [100] },
  train: { backend: 'wasm', epochs: 1, batchSize: 50 },
  runtime: { workers: 1 },
};

const tmp = () => mkdtempSync(join(tmpdir(), 'fedslr-ck-'));
/** A run several tests need, made once per file on first use. */
function once(make: () => Promise<string>): () => Promise<string> {
  let made: Promise<string> | undefined;
  return () => {
    made ??= make();
    return made;
  };
}
/** The uninterrupted reference run (6 rounds). */
const fullRun = once(async () => {
  const dir = tmp();
  await runExperiment(parseConfig(base), { outDir: dir });
  return dir;
});
/** The same run stopped after 4 rounds, with the memory store; tests resume copies of it. */
const fourRounds = once(async () => {
  const dir = tmp();
  await runExperiment(
    parseConfig({ ...base, rounds: 4, runtime: { workers: 1, store: 'memory' } }),
    { outDir: dir },
  );
  return dir;
});
const copyOf = (dir: string) => {
  const copy = tmp();
  cpSync(dir, copy, { recursive: true });
  return copy;
};
const metrics = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => ({ ...JSON.parse(l), time_s: 0 }));
/** The final checkpoint's server and client files, byte for byte. */
function finalState(dir: string): Record<string, string> {
  const last = listCheckpoints(dir).at(-1)!;
  const root = join(dir, CHECKPOINT_DIR, last);
  const files = [
    'server.msgpack',
    ...readdirSync(join(root, 'clients')).map((f) => `clients/${f}`),
  ];
  return Object.fromEntries(files.map((f) => [f, readFileSync(join(root, f)).toString('base64')]));
}

describe('checkpoints', () => {
  it('a run resumed from a middle checkpoint ends identical to an uninterrupted one (memory and disk store)', async () => {
    const full = await fullRun();
    expect(listCheckpoints(full)).toEqual(['round-000004', 'round-000006']);

    for (const store of ['memory', 'disk']) {
      const part = store === 'memory' ? copyOf(await fourRounds()) : tmp();
      if (store === 'disk') {
        await runExperiment(parseConfig({ ...base, rounds: 4, runtime: { workers: 1, store } }), {
          outDir: part,
        });
      }
      expect(JSON.parse(readFileSync(join(part, 'config.json'), 'utf8')).runtime.store).toBe(store);
      const summary = await resumeExperiment(part, ['rounds=6']);
      expect(summary.rounds).toBe(6);
      expect(metrics(part)).toEqual(metrics(full));
      expect(finalState(part)).toEqual(finalState(full));
    }
  });

  it('falls back to the previous checkpoint when the newest is corrupt, and says when none is usable', async () => {
    const dir = copyOf(await fourRounds());
    const [older, newest] = listCheckpoints(dir);
    const server = join(dir, CHECKPOINT_DIR, newest!, 'server.msgpack');
    writeFileSync(server, readFileSync(server).subarray(0, 100));
    const skipped: string[] = [];
    await resumeExperiment(dir, ['rounds=6'], (e) => {
      if (e.type === 'resumed') {
        expect(e.round).toBe(2);
        expect(e.from).toContain(older);
        skipped.push(...e.skipped);
      }
    });
    expect(skipped.join()).toMatch(/server\.msgpack: checksum mismatch/);
    expect(metrics(dir)).toEqual(metrics(await fullRun()));

    for (const n of listCheckpoints(dir)) rmSync(join(dir, CHECKPOINT_DIR, n, 'metrics.json'));
    await expect(resumeExperiment(dir, [])).rejects.toThrow(
      /no usable checkpoint.*\n.*metrics\.json: missing/,
    );
  });

  it('a resume with more rounds records them in config.json, so a plain --resume continues it; export says which round an unfinished run gives', async () => {
    const dir = tmp();
    await runExperiment(parseConfig({ ...base, rounds: 2 }), { outDir: dir });
    await resumeExperiment(dir, ['rounds=4']);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).rounds).toBe(4);
    expect((await resumeExperiment(dir, [])).rounds).toBe(4);

    // Unfinished: the config says 6 rounds, the newest checkpoint is round 4.
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, rounds: 6 }));
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await main(['export', dir, '--global', '--out', join(dir, 'g.safetensors')])).toBe(0);
      expect(log.mock.calls.flat().join('\n')).toMatch(/round 4 of 6/);
      expect(error.mock.calls.flat().join('\n')).toMatch(
        /the run is unfinished: exported round 4 .* of 6/,
      );
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('one corrupted client file costs only its checkpoint: resume falls back to the previous one, bit-exact', async () => {
    const dir = copyOf(await fourRounds());
    const [older, newest] = listCheckpoints(dir);
    const meta = (n: string) =>
      JSON.parse(readFileSync(join(dir, CHECKPOINT_DIR, n, 'meta.json'), 'utf8')).files;
    const [olderFiles, newestFiles] = [meta(older!), meta(newest!)];
    // A client whose state did not change between the two checkpoints (not drawn in rounds 3-4).
    const same = Object.keys(newestFiles).filter(
      (f) => f.startsWith('clients/') && olderFiles[f] === newestFiles[f],
    );
    expect(same.length).toBeGreaterThan(0);
    const file = join(dir, CHECKPOINT_DIR, newest!, same[0]!);
    // Truncate in place (as a disk error would), not by replacing the file.
    truncateSync(file, 10);
    const skipped: string[] = [];
    await resumeExperiment(dir, ['rounds=6'], (e) => {
      if (e.type === 'resumed') {
        expect(e.from).toContain(older);
        skipped.push(...e.skipped);
      }
    });
    expect(skipped.join()).toMatch(new RegExp(`${same[0]}: checksum mismatch`));
    const full = await fullRun();
    expect(metrics(dir)).toEqual(metrics(full));
    expect(finalState(dir)).toEqual(finalState(full));
  });

  it('refuses a different config, listing the keys, and a directory that is not a run', async () => {
    const dir = copyOf(await fourRounds());
    await expect(resumeExperiment(dir, ['algorithm.mu=0.5', 'train.lr=0.2'])).rejects.toThrow(
      /only rounds and runtime may change\); differing keys: algorithm\.mu, train\.lr/,
    );
    await expect(resumeExperiment(tmp(), [])).rejects.toThrow(
      /is not a run directory \(no config\.json\)/,
    );
  });

  it('reads back the final global model, its factors and personal models (W + P_i)', async () => {
    const dir = tmp();
    await runExperiment(
      parseConfig({ ...base, rounds: 2, algorithm: { name: 'fedslr', mu: 0.05, alpha: 0.1 } }),
      { outDir: dir },
    );
    const fin = await readFinal(dir);
    expect(fin.round).toBe(2);
    expect(fin.modelName).toBe('mlp');
    const g = fin.global!;
    // mu/alpha = 0.5 keeps only a few singular values of fc1 (784 x 100): sent as factors.
    const f = fin.factors['fc1.kernel']!;
    expect(f.rank).toBeLessThan(50);
    const w = g['fc1.kernel']!.data;
    let maxErr = 0;
    for (let i = 0; i < f.rows; i += 37) {
      for (let j = 0; j < f.cols; j++) {
        let v = 0;
        for (let k = 0; k < f.rank; k++) v += f.left[i * f.rank + k]! * f.right[k * f.cols + j]!;
        maxErr = Math.max(maxErr, Math.abs(v - w[i * f.cols + j]!));
      }
    }
    expect(maxErr).toBeLessThan(1e-5);
    const last = listCheckpoints(dir).at(-1)!;
    const { decodeClientState } = await import('../src/codec/state.js');
    const { decodeLowRank } = await import('../src/codec/params.js');
    const drawn = readdirSync(join(dir, CHECKPOINT_DIR, last, 'clients'))[0]!;
    const client = Number(drawn.split('.')[0]);
    const P = decodeClientState(
      readFileSync(join(dir, CHECKPOINT_DIR, last, 'clients', drawn)),
      drawn,
    ).tensors['sparse']!;
    const personal = (await fin.personal(client))!;
    // The personal model builds on W as the client was sent it: the factors, multiplied out.
    const sent = { ...g };
    for (const [name, t] of Object.entries(fin.factors))
      sent[name] = decodeLowRank(fin.spec, name, { kind: 'lowrank', shape: g[name]!.shape, ...t });
    for (const k of Object.keys(g)) {
      const sum = sent[k]!.data.map((x, i) => x + P[k]!.data[i]!);
      expect(personal[k]!.data).toEqual(sum);
    }
    await expect(fin.personal(99)).rejects.toThrow(
      /client 99 does not exist: the run has clients 0\.\.5/,
    );
  });

  it('survives SIGKILL in the middle of a round: the resumed run matches an uninterrupted one', async () => {
    const config = join(tmp(), 'config.json');
    writeFileSync(config, JSON.stringify(base));
    const cli = ['node_modules/vite-node/vite-node.mjs', 'src/cli/main.ts', '--'];
    const run = (args: string[]) =>
      spawn(process.execPath, [...cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    /** Exit code (-1 for a signal) and standard error of a child. */
    const done = (p: ReturnType<typeof run>) =>
      new Promise<string>((resolve) => {
        let err = '';
        p.stderr.on('data', (d) => {
          err += d;
        });
        p.on('exit', (code, signal) => resolve(`exit ${code ?? (signal ? -1 : 0)} ${err}`.trim()));
      });

    const killed = tmp();
    const child = run(['run', config, '--out', killed, '--quiet']);
    const childDone = done(child);
    // Wait (bounded) for the checkpoint of round 2, then kill while round 3 is under way.
    const deadline = Date.now() + 90_000;
    while (!existsSync(join(killed, CHECKPOINT_DIR, 'round-000002'))) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`no checkpoint in time: ${await childDone}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    expect(await childDone).toMatch(/^exit -1/);
    expect(listCheckpoints(killed).at(-1)! < 'round-000006').toBe(true);
    expect(await done(run(['run', '--resume', killed, '--quiet']))).toBe('exit 0');
    // Nothing half-built is left behind.
    expect(readdirSync(join(killed, CHECKPOINT_DIR)).filter((n) => n.includes('.tmp-'))).toEqual(
      [],
    );

    const full = await fullRun();
    expect(metrics(killed)).toEqual(metrics(full));
    expect(finalState(killed)).toEqual(finalState(full));
  });
});
