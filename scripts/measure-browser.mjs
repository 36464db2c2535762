// Measures the browser client against the Node client: the bytes of the files a wasm tab loads
// (and gzip -9) and one round's training time (the server's `train` to the client's `update`) of a Chromium
// tab (wasm) and a `fedslr join` process in the same served run, every round drawing both.
// Needs `npm run build` and Debian's Chromium. Usage:
//   node scripts/measure-browser.mjs [--model mlp|cnn] [--rounds R] [--json]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'mlp' },
    rounds: { type: 'string', default: '4' },
    json: { type: 'boolean' },
  },
});
const rounds = Number(values.rounds);
const model = values.model === 'cnn' ? { name: 'cnn' } : { name: 'mlp', hidden: [200] };
const web = join(root, 'dist/web');

/** Bytes and gzip -9 bytes of the page's files at `paths` (URL paths the tab loaded). */
function bundleSize(paths) {
  const size = (files) =>
    files.reduce(
      (s, f) => {
        const b = readFileSync(join(web, f));
        return { bytes: s.bytes + b.length, gzip: s.gzip + gzipSync(b, { level: 9 }).length };
      },
      { bytes: 0, gzip: 0 },
    );
  const files = paths.map((p) => (p === '/' ? 'index.html' : p.slice(1)));
  const js = files.filter((f) => f.endsWith('.js') || f.endsWith('.html'));
  return {
    files,
    js: size(js),
    wasm: size(files.filter((f) => f.endsWith('.wasm'))),
    all_chunks_built: readdirSync(join(web, 'chunks')).length,
  };
}

const dir = mkdtempSync(join(tmpdir(), 'fedslr-measure-'));
const token = (c) => `measure-token-of-client-${c}`;
writeFileSync(
  join(dir, 'config.json'),
  JSON.stringify({
    seed: 1,
    rounds,
    evalEvery: rounds,
    clients: { count: 2, sampling: { kind: 'count', k: 2 } },
    data: { dataset: 'mnist', partition: { kind: 'iid' }, testPerClient: 100 },
    model,
    train: { backend: 'wasm', epochs: 1, batchSize: 20 },
    algorithm: { name: 'fedslr' },
  }),
);
writeFileSync(join(dir, 'tokens'), `0 ${token(0)}\n1 ${token(1)}\n`);
const cli = join(root, 'dist/cli/main.js');
const children = [];
const start = (args) => {
  const child = spawn(process.execPath, [cli, ...args], { cwd: dir, stdio: 'pipe' });
  children.push(child);
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  child.stdout.resume();
  return { child, err: () => err, exit: new Promise((r) => child.once('exit', r)) };
};
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
try {
  const server = start([
    'serve',
    'config.json',
    '--tokens',
    'tokens',
    '--port',
    '0',
    '--out',
    'run',
  ]);
  const listening = () => /listening on (ws:\/\/\S+)/.exec(server.err())?.[1];
  while (!listening()) await new Promise((r) => setTimeout(r, 100));
  const url = listening();
  const context = await browser.newContext();
  // Every file the tab loads, the worker's included.
  const loaded = new Set();
  context.on('request', (r) => {
    const u = new URL(r.url());
    // Not the shard (data), nor the blob: workers of tfjs's threaded wasm.
    if (u.protocol === 'http:' && !u.pathname.startsWith('/shard/')) loaded.add(u.pathname);
  });
  const page = await context.newPage();
  await page.goto(`${url.replace('ws', 'http')}/?client=0&token=${token(0)}`);
  await page.locator('#start').click();
  const node = start(['join', url, '--client-id', '1', '--token', token(1), '--dataset', 'mnist']);
  const browserSeconds = new Map();
  const deadline = Date.now() + 30 * 60_000;
  while (!/the run is done/.test((await page.locator('#state').textContent()) ?? '')) {
    const m = /^([\d.]+) s \(round (\d+)\)$/.exec(
      (await page.locator('#train-time').textContent()) ?? '',
    );
    if (m) browserSeconds.set(Number(m[2]), Number(m[1]));
    const error = (await page.locator('#error').textContent()) ?? '';
    if (error || Date.now() > deadline) throw new Error(`the tab stopped: ${error || 'too slow'}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = /^([\d.]+) s \(round (\d+)\)$/.exec(
    (await page.locator('#train-time').textContent()) ?? '',
  );
  if (m) browserSeconds.set(Number(m[2]), Number(m[1]));
  await node.exit;
  await server.exit;
  const nodeSeconds = [...node.err().matchAll(/update of round (\d+) after ([\d.]+) s/g)].map((x) =>
    Number(x[2]),
  );
  // The same config simulated in one process: the served run (a tab and a Node client) must
  // compute the same numbers.
  const simulated = start(['run', 'config.json', '--out', 'simulated']);
  await simulated.exit;
  const metrics = (d) =>
    readFileSync(join(dir, d, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const { time_s: _t, ...rest } = JSON.parse(l);
        return JSON.stringify(rest);
      });
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const result = {
    model,
    samples_per_client: 4000,
    rounds,
    backend: (await page.locator('#backend-used').textContent()) ?? '',
    browser_round_s: [...browserSeconds.values()],
    node_round_s: nodeSeconds,
    browser_median_s: median([...browserSeconds.values()]),
    node_median_s: median(nodeSeconds),
    metrics_equal_simulated: metrics('run').join() === metrics('simulated').join(),
    bundle: bundleSize([...loaded].sort()),
  };
  if (values.json) console.log(JSON.stringify(result));
  else console.log(JSON.stringify(result, null, 2));
} finally {
  await browser.close();
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
