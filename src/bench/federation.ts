/**
 * `fedslr bench federation`: a served federation on loopback under load. A `fedslr serve` process
 * and --processes client processes hosting --clients light clients between them (mlp, one socket
 * each, `joinFederation` in-process, sharing one copy of the data per process). Reports each
 * round's latency (downloads sent to the last upload in, plus aggregation) p50/p95, the server's
 * peak resident memory (sampled from /proc every 100 ms, so Linux only), and the bytes on the wire
 * (every frame, both ways, from federation.jsonl) against the simulator's counts of the algorithm's
 * messages (metrics.jsonl's down_bytes + up_bytes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export const help = `Usage: fedslr bench federation [--clients N] [--processes P] [--rounds R] [--k K] [--json]

Serves a federation on 127.0.0.1: a server process and P client processes (default 4) hosting
N clients (default 200) between them, FedSLR on an mlp [16] over embedded MNIST (iid), K drawn
clients a round (default 20), R rounds (default 3) and one evaluation of every client at the
end. Prints {"clients", "processes", "rounds", "k", "round_s": {"p50", "p95"}, "server_peak_rss_mb",
"wire_bytes": {"sent", "received"}, "algorithm_bytes": {"down", "up"}, "wall_s"}: wire bytes are
every frame (welcome, train, update, commit, evaluate, metrics...); algorithm bytes are the
simulator's counts of downloads and uploads only. Linux only (reads /proc).`;

const tokenOf = (c: number) => `bench-token-of-client-${c}`;

/** The hidden mode of a client process: clients `from`..`to` - 1 of the run at `url`. */
async function hostClients(url: string, from: number, to: number, stateRoot: string) {
  const { joinFederation } = await import('../net/client.js');
  await Promise.all(
    Array.from({ length: to - from }, (_, i) =>
      joinFederation({
        url,
        client: from + i,
        token: tokenOf(from + i),
        dataset: 'mnist',
        stateDir: join(stateRoot, `client-${from + i}`),
        backend: 'wasm',
        maxRetries: 5,
        retryBaseMs: 250,
        retryMaxMs: 2000,
        log: () => {},
      }),
    ),
  );
  return 0;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string', default: '200' },
      processes: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '3' },
      k: { type: 'string', default: '20' },
      json: { type: 'boolean' },
      'client-process': { type: 'string' },
    },
  });
  if (values['client-process'] !== undefined) {
    const [url, from, to, root] = values['client-process'].split(' ');
    return hostClients(url!, Number(from), Number(to), root!);
  }
  const clients = Number(values.clients);
  const processes = Number(values.processes);
  const rounds = Number(values.rounds);
  const k = Number(values.k);
  for (const [name, n] of Object.entries({ clients, processes, rounds, k }))
    if (!(Number.isInteger(n) && n >= 1))
      throw new Error(`--${name}: expected an integer of at least 1, got ${n}`);
  const cli = process.argv[1]!;
  const dir = mkdtempSync(join(tmpdir(), 'fedslr-bench-federation-'));
  const children: ChildProcess[] = [];
  const t0 = performance.now();
  try {
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        seed: 0,
        rounds,
        evalEvery: rounds,
        clients: { count: clients, sampling: { kind: 'count', k } },
        data: { dataset: 'mnist', partition: { kind: 'iid' }, testPerClient: 20 },
        model: { name: 'mlp', hidden: [16] },
        train: { backend: 'wasm', epochs: 1, batchSize: 50 },
        runtime: { workers: 1 },
      }),
    );
    const tokens = join(dir, 'tokens');
    writeFileSync(
      tokens,
      Array.from({ length: clients }, (_, c) => `${c} ${tokenOf(c)}\n`).join(''),
    );
    const out = join(dir, 'run');
    const server = spawn(
      process.execPath,
      [cli, 'serve', config, '--tokens', tokens, '--port', '0', '--out', out, '--quiet'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(server);
    let err = '';
    server.stderr!.on('data', (d) => (err += String(d)));
    const serverExit = exited(server);
    let url: string | undefined;
    while (!url) {
      url = /listening on (ws:\/\/\S+)/.exec(err)?.[1];
      if (server.exitCode !== null) throw new Error(`the server stopped:\n${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(server.pid!));
    }, 100);
    const per = Math.ceil(clients / processes);
    const clientExits = Array.from({ length: processes }, (_, p) => {
      const from = p * per;
      const to = Math.min(clients, from + per);
      const child = spawn(
        process.execPath,
        [cli, 'bench', 'federation', '--client-process', `${url} ${from} ${to} ${dir}`],
        { stdio: 'inherit' },
      );
      children.push(child);
      return exited(child);
    });
    const codes = await Promise.all([serverExit, ...clientExits]);
    clearInterval(sampler);
    if (codes.some((c) => c !== 0))
      throw new Error(`exit codes (server first): ${codes.join(', ')}\n${err}`);
    const log = readFileSync(join(out, 'federation.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | string>);
    const roundSeconds = log
      .filter((e) => e.type === 'round-end')
      .map((e) => Number(e.train_s) + Number(e.server_s))
      .sort((a, b) => a - b);
    const left = log.filter((e) => e.type === 'disconnected');
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
    const last = JSON.parse(metrics.at(-1)!) as { down_bytes: number; up_bytes: number };
    const result = {
      clients,
      processes,
      rounds,
      k,
      round_s: { p50: percentile(roundSeconds, 50), p95: percentile(roundSeconds, 95) },
      server_peak_rss_mb: Math.round(peak),
      wire_bytes: {
        sent: left.reduce((s, e) => s + Number(e.sentBytes), 0),
        received: left.reduce((s, e) => s + Number(e.receivedBytes), 0),
      },
      algorithm_bytes: { down: last.down_bytes, up: last.up_bytes },
      wall_s: (performance.now() - t0) / 1000,
    };
    if (values.json) console.log(JSON.stringify(result));
    else console.log(JSON.stringify(result, null, 2));
    return 0;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  }
}
