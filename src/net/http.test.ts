/**
 * The page server (http.ts): the built page's files with the cross-origin isolation headers,
 * nothing outside its folder, and demo shards only to their client's token.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeShard } from '../codec/shard.js';
import type { ClientData } from '../data/clients.js';
import { webHandler } from './http.js';
import { TokenBook } from './tokens.js';

const token = 'the-token-of-client-1';
const client: ClientData = {
  id: 1,
  shape: [2, 2, 1],
  classes: 3,
  train: { x: Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), y: Int32Array.from([0, 2]), size: 2 },
  test: { x: Float32Array.from([-1, -2, -3, -4]), y: Int32Array.from([1]), size: 1 },
};

let dir: string;
let server: Server;
let base: string;
/** The clients whose shard the handler asked for, in order. */
const shardLoads: number[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedslr-http-'));
  mkdirSync(join(dir, 'web', 'chunks'), { recursive: true });
  writeFileSync(join(dir, 'web', 'index.html'), '<!doctype html><title>page</title>');
  writeFileSync(join(dir, 'web', 'page.js'), 'export {};');
  writeFileSync(join(dir, 'web', 'chunks', 'chunk-A1.js'), 'export {};');
  writeFileSync(join(dir, 'web', 'x.wasm'), new Uint8Array([0, 97, 115, 109]));
  writeFileSync(join(dir, 'secret.txt'), 'not for the web');
  const clients = [{ ...client, id: 0 }, client];
  const handle = webHandler({
    dir: join(dir, 'web'),
    shard: async (c) => {
      shardLoads.push(c);
      return clients[c];
    },
    tokens: TokenBook.parse(`1 ${token}\n7 ${token}7\n`, 'tokens'),
  });
  server = createServer((req, res) => {
    if (!handle(req, res)) res.writeHead(418).end('not the page server');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('the page server', () => {
  it('serves the page and its files, cross-origin isolated, with their content types', async () => {
    for (const [path, type, body] of [
      ['/', 'text/html; charset=utf-8', '<!doctype html><title>page</title>'],
      ['/?client=1&token=t', 'text/html; charset=utf-8', '<!doctype html><title>page</title>'],
      ['/page.js', 'text/javascript; charset=utf-8', 'export {};'],
      ['/chunks/chunk-A1.js', 'text/javascript; charset=utf-8', 'export {};'],
      ['/x.wasm', 'application/wasm', '\0asm'],
    ]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
      expect(await res.text()).toBe(body);
    }
  });

  it('leaves other paths to the next handler and serves nothing outside its folder', async () => {
    // Raw request paths: fetch would resolve the dots before sending.
    for (const path of [
      '/healthz',
      '/../secret.txt',
      '/../web/page.js',
      '/%2e%2e/secret.txt',
      '/chunks/../../secret.txt',
      '/chunks/../page.js',
    ])
      expect(await rawStatus(path), path).toBe(418);
    const missing = await fetch(`${base}/missing.js`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('not found: /missing.js\n');
  });

  it("gives a client's demo shard only with that client's token", async () => {
    const shard = (c: number, auth?: string) =>
      fetch(`${base}/shard/${c}`, auth ? { headers: { authorization: auth } } : {});
    expect((await shard(1)).status).toBe(403);
    expect((await shard(1, `Bearer ${token}x`)).status).toBe(403);
    expect((await shard(0, `Bearer ${token}`)).status).toBe(403);
    expect((await shard(7, `Bearer ${token}`)).status).toBe(403);
    // Nothing is loaded for a request without the client's token.
    expect(shardLoads).toEqual([]);
    expect((await shard(7, `Bearer ${token}7`)).status).toBe(404);
    const ok = await shard(1, `Bearer ${token}`);
    expect(ok.status).toBe(200);
    const got = decodeShard(new Uint8Array(await ok.arrayBuffer()), 1, 'shard');
    expect(got).toEqual(client);
    // A shard is encoded once and kept.
    expect((await shard(1, `Bearer ${token}`)).status).toBe(200);
    expect(shardLoads).toEqual([7, 1]);
  });

  it('says how to build the page when it is not built', async () => {
    const bare = webHandler({ dir: join(dir, 'none'), tokens: TokenBook.parse(`1 ${token}`, 't') });
    const s = createServer((req, res) => void bare(req, res));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/`);
    expect(res.status).toBe(404);
    expect(await res.text()).toMatch(/the browser page is not built .*: run npm run build/);
    await new Promise((r) => s.close(r));
  });
});

/** The status of a GET of `path` exactly as written (no URL normalisation). */
function rawStatus(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/`, { path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}
