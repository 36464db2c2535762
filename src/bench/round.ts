/**
 * `fedslr bench round`: the wall time of FedSLR rounds (downloads, client training, aggregation
 * with the SVT step) with the clients trained in the main thread (pool 1) and by a pool of worker
 * threads, on the same drawn clients. Set-up and evaluation are not timed.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadDataset } from '../data/load.js';
import { InProcessFleet } from '../sim/fleet_local.js';
import { loadConfig } from '../sim/load_config.js';
import { WorkerPoolFleet } from '../sim/pool.js';
import { setup } from '../sim/setup.js';
import { initialState, simulate } from '../sim/simulate.js';
import { MemoryStore } from '../sim/store.js';

export const help = `Usage: fedslr bench round [--config FILE] [--rounds N] [--pool N] [--set key=value ...] [--json]

Times FedSLR rounds with the clients trained in the main thread (pool 1) and by a pool of
--pool worker threads (default 2), on the same clients. Default config: examples/fmnist-fedslr.yaml,
or examples/quickstart.yaml where Fashion-MNIST is not installed. Prints
{"config", "threads", "clients", "rounds", "pool1_s", "poolN_s", "ratio"} (seconds per round;
ratio = poolN / pool1; threads: XNNPACK threads of the main thread, which trains pool 1's
clients: runtime.threads, default one per core; workers use one each).`;

async function hasFashionMnist(): Promise<boolean> {
  try {
    await loadDataset({ name: 'fashion-mnist' });
    return true;
  } catch {
    return false;
  }
}

function example(name: string): string {
  return fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));
}

async function timeRounds(
  config: ReturnType<typeof loadConfig>,
  pool: number,
): Promise<{ seconds: number; clients: number; threads: number }> {
  const { sim, info } = await setup(config);
  const store = new MemoryStore(sim.algorithm.client.codec);
  const fleet =
    pool <= 1 ? new InProcessFleet(sim, store) : await WorkerPoolFleet.start(sim, pool, store);
  const st = initialState(sim);
  let clients = 0;
  let start = 0;
  let total = 0;
  try {
    for await (const e of simulate(sim, st, () => 0, fleet)) {
      if (e.type === 'round-start') {
        clients += e.clients.length;
        start = performance.now();
      } else if (e.type === 'round-end') total += performance.now() - start;
    }
  } finally {
    await fleet.close();
  }
  return {
    seconds: total / 1000 / config.rounds,
    clients: clients / config.rounds,
    threads: info.threads,
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      pool: { type: 'string', default: '2' },
      set: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    },
  });
  const file =
    values.config ?? example((await hasFashionMnist()) ? 'fmnist-fedslr.yaml' : 'quickstart.yaml');
  const rounds = Number(values.rounds);
  const pool = Number(values.pool);
  if (!(Number.isInteger(rounds) && rounds >= 1))
    throw new Error(`--rounds: expected an integer >= 1, got '${values.rounds}'`);
  if (!(Number.isInteger(pool) && pool >= 2))
    throw new Error(`--pool: expected an integer >= 2, got '${values.pool}'`);
  // Evaluate only after the last round, which is not timed.
  const config = loadConfig(file, [
    ...(values.set ?? []),
    `rounds=${rounds}`,
    `evalEvery=${rounds}`,
  ]);
  const one = await timeRounds(config, 1);
  const many = await timeRounds(config, pool);
  const result = {
    config: file,
    threads: one.threads,
    clients: one.clients,
    rounds,
    pool1_s: one.seconds,
    [`pool${pool}_s`]: many.seconds,
    ratio: many.seconds / one.seconds,
  };
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(`round of ${one.clients} clients (${file}, ${config.model.name}):`);
    console.log(`  pool 1:  ${one.seconds.toFixed(2)} s/round`);
    console.log(
      `  pool ${pool}:  ${many.seconds.toFixed(2)} s/round  (${(100 * result.ratio).toFixed(0)}% of pool 1)`,
    );
  }
  return 0;
}
