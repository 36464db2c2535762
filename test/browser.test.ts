/**
 * Browser clients: `fedslr serve` (a child process) serves the page; two Chromium tabs (Debian's
 * /usr/bin/chromium through playwright-core) and one `fedslr join` process complete a FedSLR
 * run; one tab is reloaded mid-run and resumes as the same client from the state it kept in
 * IndexedDB. Loopback, port 0, bounded waits, children ended by PID. Skipped, saying why, where
 * Chromium is absent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { buildWeb } from '../scripts/build-web.mjs';
import { webHandler } from '../src/net/http.js';
import { TokenBook } from '../src/net/tokens.js';
import { CLOSE } from '../src/protocol/close_codes.js';
import { encodeMessage, PROTOCOL_VERSION } from '../src/protocol/messages.js';
import { parseConfig, taskOf } from '../src/sim/config.js';
import { cliScript, federationLog, waitForText, within } from './cli_process.js';

const CHROMIUM = '/usr/bin/chromium';
/** Enough rounds that the reloaded tab is back well before the last one (a round takes ~1 s). */
const ROUNDS = 8;
const config = {
  seed: 5,
  rounds: ROUNDS,
  evalEvery: 1,
  clients: { count: 3, sampling: { kind: 'count', k: 3 } },
  data: { dataset: 'mnist', partition: { kind: 'iid' }, testPerClient: 20 },
  model: { name: 'mlp', hidden: [8] },
  train: { backend: 'wasm', epochs: 1, batchSize: 100 },
  algorithm: { name: 'fedslr' },
  runtime: { workers: 1 },
};
const tokenOf = (c: number) => `browser-test-token-${c}`;

if (!existsSync(CHROMIUM))
  console.warn(`test/browser.test.ts: skipped, no Chromium at ${CHROMIUM} (apt install chromium)`);

let dir: string;
let cli: string;
let webDir: string;
let browser: Browser | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  dir = mkdtempSync(join(tmpdir(), 'fedslr-browser-'));
  webDir = join(dir, 'web');
  [cli] = await Promise.all([cliScript(), buildWeb(webDir)]);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'tokens'), [0, 1, 2].map((c) => `${c} ${tokenOf(c)}\n`).join(''));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function startCli(args: string[]): {
  exit: Promise<number | null>;
  stderr: () => string;
  pid: number;
} {
  const child = spawn(process.execPath, [cli, ...args], { cwd: dir, stdio: 'pipe' });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  child.stdout!.resume();
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { exit, stderr: () => err, pid: child.pid! };
}

/** The text of an element of the page. */
const textOf = async (page: Page, id: string) => (await page.locator(`#${id}`).textContent()) ?? '';

/** Waits (bounded) until the element's text matches. */
async function waitForPage(page: Page, id: string, pattern: RegExp, ms: number): Promise<string> {
  const start = Date.now();
  let last = '';
  while (Date.now() - start < ms) {
    last = await textOf(page, id);
    if (pattern.test(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  const error = await textOf(page, 'error');
  throw new Error(`#${id} is '${last}', not ${pattern}, after ${ms} ms (error box: '${error}')`);
}

/** `fedslr serve` of `config` (in the test folder) into `out`, with the page; and its ws:// URL. */
async function serve(config: string, out: string) {
  const server = startCli([
    'serve',
    config,
    '--tokens',
    'tokens',
    '--port',
    '0',
    '--out',
    out,
    '--web',
    webDir,
    '--deadline',
    '60',
  ]);
  const wsUrl = await waitForText(server.stderr, /listening on (ws:\/\/\S+)/, 30_000);
  return { server, wsUrl };
}

describe.skipIf(!existsSync(CHROMIUM))('browser clients', () => {
  it('two tabs and a Node client complete a FedSLR run; a reloaded tab resumes with its committed state', async () => {
    const wallClock = Date.now();
    const out = join(dir, 'run');
    const { server, wsUrl } = await serve('config.json', out);
    const httpUrl = wsUrl.replace('ws://', 'http://');

    // The page and its files carry the headers that make it cross-origin isolated.
    const index = await fetch(`${httpUrl}/`);
    expect(index.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(index.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(
      (await fetch(`${httpUrl}/tfjs-backend-wasm-simd.wasm`)).headers.get('content-type'),
    ).toBe('application/wasm');
    // A demo shard needs its client's token.
    expect((await fetch(`${httpUrl}/shard/0`)).status).toBe(403);
    expect((await fetch(`${httpUrl}/../tokens`)).status).toBe(404);

    const context = await browser!.newContext();
    const consoleErrors: string[] = [];
    const tabs: Page[] = [];
    for (const client of [0, 1]) {
      const page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(`tab ${client}: ${m.text()}`);
      });
      page.on('pageerror', (e) => consoleErrors.push(`tab ${client}: ${e.message}`));
      await page.goto(`${httpUrl}/?client=${client}&token=${tokenOf(client)}`);
      expect(await page.locator('#url').inputValue()).toBe(wsUrl);
      await page.locator('#start').click();
      tabs.push(page);
    }
    const node = startCli([
      'join',
      wsUrl,
      '--client-id',
      '2',
      '--token',
      tokenOf(2),
      '--dataset',
      'mnist',
      '--backend',
      'wasm',
      '--state-dir',
      join(dir, 'state-2'),
    ]);
    const [tab0, tab1] = tabs as [Page, Page];
    expect(await page0CrossOriginIsolated(tab0)).toBe(true);

    // Tab 0 commits a round, then is reloaded: it resumes as client 0 with what it committed.
    // The Node client is stopped meanwhile, so the run (every client drawn every round) cannot
    // finish before the reload, however fast the rounds go; it answers when continued.
    await waitForPage(tab0, 'committed', /round [1-9]/, 60_000);
    process.kill(node.pid, 'SIGSTOP');
    expect(await textOf(tab0, 'backend-used')).toMatch(/^wasm/);
    expect(await textOf(tab0, 'resumed')).toMatch(/^no: no state/);
    await tab0.screenshot({ path: join(dir, 'tab0-before-reload.png'), fullPage: true });
    const keptBefore = await storedRound(tab0, wsUrl, 0);
    expect(keptBefore).toBeGreaterThanOrEqual(0);
    // A file no value names (as a tab closed mid-write leaves) is deleted when the tab reopens.
    await tab0.evaluate(`(async () => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(
        'fedslr-' + encodeURIComponent(${JSON.stringify(`${wsUrl}#0`)}));
      const w = await (await dir.getFileHandle('committed-stray.bin', { create: true })).createWritable();
      await w.write(new Uint8Array(8));
      await w.close();
    })()`);
    expect((await keptFiles(tab0, wsUrl, 0)).files).toContain('committed-stray.bin');
    await tab0.reload();
    const resumed = await waitForPage(tab0, 'resumed', /kept in this browser/, 20_000);
    expect(Number(/round (\d+)/.exec(resumed)![1]) - 1).toBeGreaterThanOrEqual(keptBefore);
    await tab0.screenshot({ path: join(dir, 'tab0-resumed.png'), fullPage: true });
    process.kill(node.pid, 'SIGCONT');

    for (const [i, tab] of tabs.entries()) {
      await waitForPage(tab, 'state', /the run is done/, 90_000);
      await tab.screenshot({ path: join(dir, `tab${i}-done.png`), fullPage: true });
      expect(await textOf(tab, 'committed')).toBe(`round ${ROUNDS}`);
      expect(await textOf(tab, 'traffic')).toMatch(/^[\d.]+ KiB \/ [\d.]+ [KM]iB$/);
      expect(await textOf(tab, 'error')).toBe('');
      // The chart has both accuracy lines, the personal one labelled with its last value.
      expect(await tab.locator('#chart polyline').count()).toBe(2);
      expect(await tab.locator('#chart').innerHTML()).toMatch(/personal: \d+\.\d%/);
      expect(await storedRound(tab, wsUrl, i)).toBe(ROUNDS - 1);
      // The demo shard's training images (MiBs; its test set and labels are under 1 MiB) are an
      // OPFS file that IndexedDB's value names, and no other file is left (the reloaded tab read
      // its samples back from it).
      const kept = await keptFiles(tab, wsUrl, i);
      expect(kept.named.filter((f) => f.startsWith('data-'))).toHaveLength(1);
      expect(kept.files.sort()).toEqual(kept.named.sort());
    }
    expect(Number(await textOf(tab1, 'rounds'))).toBe(ROUNDS);
    for (const f of ['tab0-before-reload', 'tab0-resumed', 'tab0-done', 'tab1-done'])
      expect(statSync(join(dir, `${f}.png`)).size).toBeGreaterThan(1000);

    expect(await within(node.exit, 30_000, 'node client exit'), node.stderr()).toBe(0);
    expect(await within(server.exit, 30_000, 'server exit'), server.stderr()).toBe(0);
    expect(consoleErrors).toEqual([]);

    // Every round ran; client 0 connected twice (the reload), as the same client.
    const log = federationLog(out);
    expect(log.filter((e) => e.type === 'round-end').map((e) => e.round)).toEqual(
      Array.from({ length: ROUNDS }, (_, r) => r),
    );
    const connections = log.filter((e) => e.type === 'connected').map((e) => e.client);
    expect(connections.filter((c) => c === 0)).toHaveLength(2);
    expect(connections.filter((c) => c === 1)).toHaveLength(1);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(metrics).toHaveLength(ROUNDS);
    expect(Date.now() - wallClock).toBeLessThan(150_000);
  }, 180_000);

  it('a tab takes part in a secure-aggregation FedSLR run with two Node clients', async () => {
    const rounds = 2;
    const secure = {
      ...config,
      rounds,
      secureAggregation: { enabled: true, clip: 1, quantizationBits: 16 },
    };
    writeFileSync(join(dir, 'secure.json'), JSON.stringify(secure));
    const out = join(dir, 'secure-run');
    const { server, wsUrl } = await serve('secure.json', out);
    const page = await (await browser!.newContext()).newPage();
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(`${wsUrl.replace('ws://', 'http://')}/?client=0&token=${tokenOf(0)}`);
    await page.locator('#start').click();
    const nodes = [1, 2].map((c) =>
      startCli([
        'join',
        wsUrl,
        '--client-id',
        String(c),
        '--token',
        tokenOf(c),
        '--dataset',
        'mnist',
        '--backend',
        'wasm',
        '--state-dir',
        join(dir, `secure-state-${c}`),
      ]),
    );
    await waitForPage(page, 'state', /the run is done/, 90_000);
    await page.screenshot({ path: join(dir, 'secure-done.png'), fullPage: true });
    expect(await textOf(page, 'error')).toBe('');
    expect(await textOf(page, 'committed')).toBe(`round ${rounds}`);
    expect(Number(await textOf(page, 'rounds'))).toBe(rounds);
    expect(await textOf(page, 'secure')).toMatch(/^yes: the server sees only the sum/);
    for (const node of nodes)
      expect(await within(node.exit, 30_000, 'node client exit'), node.stderr()).toBe(0);
    expect(await within(server.exit, 30_000, 'server exit'), server.stderr()).toBe(0);
    expect(consoleErrors).toEqual([]);
    // Every round was a secure sum of the three clients' masked updates.
    const log = federationLog(out);
    const ends = log.filter((e) => e.type === 'round-end');
    expect(ends.map((e) => [e.round, e.clients])).toEqual([
      [0, 3],
      [1, 3],
    ]);
    // Each client's own log says it sent keys, not an update in the clear.
    for (const node of nodes)
      expect(node.stderr().match(/sent the keys \(a secure round\) of round \d/g)).toHaveLength(
        rounds,
      );
  }, 150_000);

  it('a tab trains on its own image folder with a labels CSV; an undecodable image, a label out of range and a full storage quota are refused in words', async () => {
    // 20 PNGs of 20x20 RGB, encoded by Chromium: a bright square on the left (label 0) or on
    // the right (label 1), which the tab resizes to the run's 28x28 gray input.
    const folder = join(dir, 'images', 'digits');
    mkdirSync(join(folder, 'more'), { recursive: true });
    const encoder = await (await browser!.newContext()).newPage();
    const pngs = (await encoder.evaluate(`Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const canvas = new OffscreenCanvas(20, 20);
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = 'rgb(10, 10, 40)';
      ctx.fillRect(0, 0, 20, 20);
      ctx.fillStyle = 'rgb(250, 240, 200)';
      ctx.fillRect(i % 2 ? 11 : 2, 4 + (i % 5), 7, 9);
      const bytes = new Uint8Array(await (await canvas.convertToBlob()).arrayBuffer());
      return Array.from(bytes);
    }))`)) as number[][];
    await encoder.context().close();
    const names = pngs.map((_, i) => (i < 3 ? `more/${i}.png` : `${i}.png`));
    pngs.forEach((png, i) => writeFileSync(join(folder, names[i]!), Uint8Array.from(png)));
    writeFileSync(
      join(folder, 'labels.csv'),
      `file,label\n${names.map((n, i) => `${n},${i % 2}`).join('\n')}\n`,
    );

    // A stand-in server welcomes client 0 to the run's task: the tab reads its images then.
    const task = taskOf(parseConfig(config), [28, 28, 1], 10);
    const handle = webHandler({ dir: webDir, tokens: TokenBook.parse(`0 ${tokenOf(0)}`, 't') });
    const http = createServer((req, res) => {
      if (!handle(req, res)) res.writeHead(404).end();
    });
    const wss = new WebSocketServer({ server: http });
    wss.on('connection', (ws) =>
      ws.once('message', () =>
        ws.send(encodeMessage({ v: PROTOCOL_VERSION, type: 'welcome', task })),
      ),
    );
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(http.address() as AddressInfo).port}`;
    /** A fresh tab that joins `server` as client 0 with `pick`; `quota` caps its storage. */
    const joinWithImages = async (server: string, pick: string | string[], quota?: number) => {
      const page = await (await browser!.newContext()).newPage();
      if (quota !== undefined)
        await (await page.context().newCDPSession(page)).send('Storage.overrideQuotaForOrigin', {
          origin: `http://${server}`,
          quotaSize: quota,
        });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://${server}/?client=0&token=${tokenOf(0)}`);
      await page.locator('input[name=data][value=images]').check();
      await page
        .locator(typeof pick === 'string' ? '#image-folder' : '#image-files')
        .setInputFiles(pick);
      await page.locator('#start').click();
      return { page, errors };
    };
    try {
      const broken = join(folder, '7.png');
      const good = readFileSync(broken);
      writeFileSync(broken, 'not a png');
      const refused = await joinWithImages(host, folder);
      expect(await waitForPage(refused.page, 'error', /./, 20_000)).toMatch(
        /^No data to train on: digits\/7\.png: not an image this browser can decode/,
      );
      writeFileSync(broken, good);
      // Picked as files (no folder): a label out of the run's range names the CSV's line.
      const csv = join(dir, 'images', 'labels.csv');
      writeFileSync(csv, '0.png,10\n');
      const outOfRange = await joinWithImages(host, [csv, join(folder, 'more', '0.png')]);
      expect(await waitForPage(outOfRange.page, 'error', /./, 20_000)).toMatch(
        /^No data to train on: labels\.csv line 1: label 10 is not one of this run's 10 classes/,
      );
      // With 20 KB of storage (Chromium's IndexedDB takes that before the samples' 63 KB: the
      // first item, the run's task, does not fit) the tab says its storage is full.
      const full = await joinWithImages(host, folder, 20_000);
      expect(await waitForPage(full.page, 'error', /./, 20_000)).toMatch(
        /^Storage full: the browser's storage for this site is full \(saving \w+\): free some space, or allow this site more storage, and reload\.$/,
      );
      await full.page.screenshot({ path: join(dir, 'storage-full.png'), fullPage: true });
      expect([...refused.errors, ...outOfRange.errors, ...full.errors]).toEqual([]);
    } finally {
      wss.close();
      await new Promise((r) => http.close(r));
    }

    // A served run of this one client: the tab trains two rounds on its 16 + 4 images.
    writeFileSync(
      join(dir, 'images.json'),
      JSON.stringify({
        ...config,
        rounds: 2,
        clients: { count: 1, sampling: { kind: 'count', k: 1 } },
        // A first layer of 784 x 400 float32 (1.25 MB): the client's state goes to OPFS files.
        model: { name: 'mlp', hidden: [400] },
      }),
    );
    const out = join(dir, 'images-run');
    const { server, wsUrl } = await serve('images.json', out);
    const { page, errors } = await joinWithImages(wsUrl.replace('ws://', ''), folder);
    await waitForPage(page, 'state', /the run is done/, 90_000);
    await page.screenshot({ path: join(dir, 'images-done.png'), fullPage: true });
    expect(await textOf(page, 'error')).toBe('');
    expect(await textOf(page, 'committed')).toBe('round 2');
    expect(await within(server.exit, 30_000, 'server exit'), server.stderr()).toBe(0);
    expect(errors).toEqual([]);
    // The tab kept 16 training and 4 test samples of 28x28 gray, each brighter on its label's
    // side; it learnt that: the last evaluation scores its 4 test images all right.
    const kept = await storedSamples(page, wsUrl, 0);
    expect([kept.train.length, kept.test.length]).toEqual([16, 4]);
    expect(kept.pixels).toBe(28 * 28);
    expect([...kept.train, ...kept.test].map((s) => s.leftBrighter)).toEqual(
      [...kept.train, ...kept.test].map((s) => s.label === 0),
    );
    expect([...kept.train, ...kept.test].filter((s) => s.label === 1)).toHaveLength(10);
    const last = JSON.parse(
      readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')[1]!,
    );
    expect(last.personal.acc).toBe(1);
    // Each commit put the state in a new OPFS file and deleted the one it replaced: the files
    // left are the committed state's, and no pending state is kept after the last commit.
    const files = await keptFiles(page, wsUrl, 0);
    expect(files.files.sort()).toEqual(files.named.sort());
    expect(files.named.filter((f) => f.startsWith('committed-'))).toHaveLength(1);
    expect(files.named.filter((f) => !f.startsWith('committed-'))).toEqual([]);
    // Leaving deletes it all: IndexedDB's values and the OPFS folder.
    await page.locator('#leave').click();
    await waitForPage(
      page,
      'state',
      /^left the federation; the data kept in this browser is deleted$/,
      20_000,
    );
    expect(await storedRound(page, wsUrl, 0)).toBe(-1);
    expect(
      await page.evaluate(`(async () => {
        const names = [];
        for await (const name of (await navigator.storage.getDirectory()).keys()) names.push(name);
        return names;
      })()`),
    ).toEqual([]);
  }, 150_000);

  it('webgl is selectable: a tab trains with it where Chromium has WebGL, and says it is unavailable where not', async () => {
    writeFileSync(
      join(dir, 'webgl.json'),
      JSON.stringify({
        ...config,
        rounds: 2,
        clients: { count: 1, sampling: { kind: 'count', k: 1 } },
      }),
    );
    const out = join(dir, 'webgl-run');
    const { server, wsUrl } = await serve('webgl.json', out);
    /** A tab of `on` that joins the run as client 0 on the webgl backend. */
    const joinOnWebgl = async (on: Browser) => {
      const page = await (await on.newContext()).newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${wsUrl.replace('ws://', 'http://')}/?client=0&token=${tokenOf(0)}`);
      await page.locator('#backend').selectOption('webgl');
      await page.locator('#start').click();
      return { page, errors };
    };
    // Headless Chromium without a GPU draws WebGL with SwiftShader, its software rasteriser;
    // without that too it has no WebGL, and the tab says so before it connects.
    const noGl = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-software-rasterizer'],
    });
    try {
      const refused = await joinOnWebgl(noGl);
      expect(await waitForPage(refused.page, 'error', /./, 20_000)).toMatch(
        /^The webgl backend is not available in this browser: this browser gives no WebGL context .*Choose another backend/,
      );
    } finally {
      await noGl.close();
    }
    const { page, errors } = await joinOnWebgl(browser!);
    await waitForPage(page, 'state', /the run is done/, 90_000);
    await page.screenshot({ path: join(dir, 'webgl-done.png'), fullPage: true });
    expect(await textOf(page, 'backend-used')).toMatch(/^webgl \(WebGL 2, .*SwiftShader/);
    expect(await textOf(page, 'error')).toBe('');
    expect(await textOf(page, 'committed')).toBe('round 2');
    expect(await within(server.exit, 30_000, 'server exit'), server.stderr()).toBe(0);
    expect(errors).toEqual([]);
    // The losses of `fedslr run` (Node, wasm) for the same config, to float32 rounding (the
    // tab's are 1.5e-6 apart, relatively, on 2026-12-05's SwiftShader).
    const reference = startCli(['run', 'webgl.json', '--out', join(dir, 'webgl-ref'), '--quiet']);
    expect(await within(reference.exit, 60_000, 'fedslr run'), reference.stderr()).toBe(0);
    const losses = (d: string) =>
      readFileSync(join(dir, d, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { global: { loss: number }; personal: { loss: number } })
        .flatMap((m) => [m.global.loss, m.personal.loss]);
    const [gl, node] = [losses('webgl-run'), losses('webgl-ref')];
    expect(gl).toHaveLength(4);
    gl.forEach((loss, i) => expect(Math.abs(loss - node[i]!) / node[i]!).toBeLessThan(1e-4));
  }, 120_000);

  it('tells a person why it cannot join: token refused, another protocol version, no server, no WebGPU', async () => {
    // A stand-in server: the page, and a WebSocket that refuses every hello as its path says.
    const handle = webHandler({ dir: webDir, tokens: TokenBook.parse(`0 ${tokenOf(0)}`, 't') });
    const http = createServer((req, res) => {
      if (!handle(req, res)) res.writeHead(404).end();
    });
    const wss = new WebSocketServer({ server: http });
    wss.on('connection', (ws, req) =>
      ws.once('message', () =>
        req.url === '/forbidden'
          ? ws.close(CLOSE.forbidden, 'client 0: id and token do not match')
          : ws.close(CLOSE.wrongVersion, 'speaks protocol version 1; this server speaks 2'),
      ),
    );
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(http.address() as AddressInfo).port}`;
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    try {
      /** Joins from a fresh browser profile; resolves with the page. */
      const tryJoin = async (url: string, backend = 'wasm') => {
        const page = await (await browser!.newContext()).newPage();
        await page.goto(`http://${host}/?client=0&token=${tokenOf(0)}`);
        await page.locator('#url').fill(url);
        // WebGPU may be absent, and its option disabled: choose it anyway.
        await page.evaluate(`{
          const select = document.getElementById('backend');
          for (const o of select.options) o.disabled = false;
          select.value = ${JSON.stringify(backend)};
        }`);
        await page.locator('#start').click();
        return page;
      };
      const refused = await tryJoin(`ws://${host}/forbidden`);
      expect(await waitForPage(refused, 'error', /./, 20_000)).toMatch(
        /^The server refused the token of client 0: check the client id and the token .*id and token do not match$/,
      );
      await refused.screenshot({ path: join(dir, 'refused.png'), fullPage: true });
      const version = await tryJoin(`ws://${host}/version`);
      expect(await waitForPage(version, 'error', /./, 20_000)).toMatch(
        /^The server speaks another protocol version than this page/,
      );
      const unreachable = await tryJoin(`ws://127.0.0.1:${closedPort}`);
      await waitForPage(unreachable, 'state', /^no connection to the server; retrying in/, 20_000);
      const gpu = await tryJoin(`ws://${host}/version`, 'webgpu');
      expect(await waitForPage(gpu, 'error', /./, 20_000)).toMatch(
        /^The webgpu backend is not available in this browser: .*Choose another backend/,
      );
      // A refused join is not resumed on reload.
      await refused.reload();
      expect(await textOf(refused, 'state')).toBe('not joined');
    } finally {
      wss.close();
      await new Promise((r) => http.close(r));
    }
  }, 60_000);
});

function page0CrossOriginIsolated(page: Page): Promise<boolean> {
  return page.evaluate('globalThis.crossOriginIsolated === true') as Promise<boolean>;
}

/** The last committed round client `client` of `url` keeps in the page's IndexedDB (-1: none). */
function storedRound(page: Page, url: string, client: number): Promise<number> {
  const key = JSON.stringify(`${url}#${client}/round`);
  return page.evaluate(`new Promise((resolve, reject) => {
    const open = indexedDB.open('fedslr');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const get = open.result.transaction('state').objectStore('state').get(${key});
      get.onsuccess = () => { open.result.close(); resolve(get.result ?? -1); };
      get.onerror = () => reject(get.error);
    };
  })`) as Promise<number>;
}

interface StoredSample {
  label: number;
  /** The left half of the image is brighter than the right. */
  leftBrighter: boolean;
}

/** The samples client `client` of `url` keeps in the page's IndexedDB (28x28 gray images). */
function storedSamples(
  page: Page,
  url: string,
  client: number,
): Promise<{ train: StoredSample[]; test: StoredSample[]; pixels: number }> {
  const key = JSON.stringify(`${url}#${client}/data`);
  return page.evaluate(`new Promise((resolve, reject) => {
    const open = indexedDB.open('fedslr');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const get = open.result.transaction('state').objectStore('state').get(${key});
      get.onerror = () => reject(get.error);
      get.onsuccess = () => {
        open.result.close();
        const d = get.result;
        const pixels = d.shape[0] * d.shape[1] * d.shape[2];
        const samples = (s) => {
          const x = new Float32Array(s.x);
          return Array.from(new Int32Array(s.y), (label, k) => {
            let left = 0;
            for (let p = 0; p < pixels; p++) left += (p % 28 < 14 ? 1 : -1) * x[k * pixels + p];
            return { label, leftBrighter: left > 0 };
          });
        };
        resolve({ train: samples(d.train), test: samples(d.test), pixels });
      };
    };
  })`) as Promise<{ train: StoredSample[]; test: StoredSample[]; pixels: number }>;
}

/** The OPFS files of client `client` of `url`, and those its IndexedDB values name. */
function keptFiles(
  page: Page,
  url: string,
  client: number,
): Promise<{ files: string[]; named: string[] }> {
  const key = JSON.stringify(`${url}#${client}`);
  return page.evaluate(`(async () => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(
      'fedslr-' + encodeURIComponent(${key}));
    const files = [];
    for await (const name of dir.keys()) files.push(name);
    const values = await new Promise((resolve, reject) => {
      const open = indexedDB.open('fedslr');
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const range = IDBKeyRange.bound(${key} + '/', ${key} + '/\\uffff');
        const all = open.result.transaction('state').objectStore('state').getAll(range);
        all.onerror = () => reject(all.error);
        all.onsuccess = () => { open.result.close(); resolve(all.result); };
      };
    });
    const named = [];
    const walk = (v) => {
      if (v && typeof v.opfsFile === 'string') named.push(v.opfsFile);
      else if (v && typeof v === 'object' && !(v instanceof ArrayBuffer)) Object.values(v).forEach(walk);
    };
    values.forEach(walk);
    return { files, named };
  })()`) as Promise<{ files: string[]; named: string[] }>;
}
