/**
 * What `fedslr serve` answers over plain HTTP besides /healthz and /metrics (observe.ts): the
 * browser client's page and its files (built by scripts/build-web.mjs into dist/web/), and each
 * client's demo shard.
 *
 *   GET /               index.html
 *   GET /<file>         a file of the web folder (page.js, worker.js, the .wasm files) and
 *   GET /chunks/<file>  of its chunks folder; nothing else of the disk
 *   GET /shard/<K>      client K's samples (codec/shard.ts), as `fedslr join --dataset NAME
 *                       --shard K/N` computes them; only with K's token (Authorization: Bearer)
 *
 * Every answer carries Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy:
 * require-corp, so the page is cross-origin isolated and tfjs's wasm backend can use threads.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeShard } from '../codec/shard.js';
import type { ClientData } from '../data/clients.js';
import type { TokenBook } from './tokens.js';

export interface WebOptions {
  /** The folder of the built page (index.html, page.js, worker.js, ...). */
  dir: string;
  /**
   * A client's samples, for demo shards (absent: no shards). Called on the first authorised
   * request only, so a server that nobody asks for a shard reads no data.
   */
  shard?: (client: number) => Promise<ClientData | undefined>;
  tokens: TokenBook;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
};

const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

/** dist/web of the fedslr package this module belongs to ('' when none is found). */
export function defaultWebDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++, dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && /"name":\s*"fedslr"/.test(readFileSync(pkg, 'utf8')))
      return join(dir, 'dist', 'web');
  }
  return '';
}

/** A request handler for the page, its files and the shards: true when it answered. */
export function webHandler(
  opts: WebOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const shards = new Map<number, Uint8Array>();
  const reply = (res: ServerResponse, status: number, type: string, body: string | Uint8Array) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache', ...ISOLATION });
    res.end(body);
  };
  const text = (res: ServerResponse, status: number, body: string) =>
    reply(res, status, 'text/plain; charset=utf-8', `${body}\n`);
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const path = (req.url ?? '/').split('?')[0]!;
    const shard = /^\/shard\/(\d+)$/.exec(path);
    if (shard) {
      const client = Number(shard[1]);
      const load = opts.shard;
      if (!load) {
        text(res, 404, `no demo shards on this server`);
        return true;
      }
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (token === undefined || !opts.tokens.accepts(client, token)) {
        text(res, 403, `client ${client}: id and token do not match`);
        return true;
      }
      const cached = shards.get(client);
      const bytes = cached
        ? Promise.resolve(cached)
        : load(client).then((data) => {
            if (!data) return undefined;
            const encoded = encodeShard(data);
            shards.set(client, encoded);
            return encoded;
          });
      bytes.then(
        (b) =>
          b
            ? reply(res, 200, 'application/octet-stream', b)
            : text(res, 404, `no demo shard of client ${client} on this server`),
        (err: Error) => text(res, 500, `the demo shard of client ${client}: ${err.message}`),
      );
      return true;
    }
    const file =
      path === '/' ? 'index.html' : /^\/((?:chunks\/)?[\w-]+(?:\.[\w-]+)+)$/.exec(path)?.[1];
    if (file === undefined || !(extname(file) in TYPES)) return false;
    const full = join(opts.dir, file);
    if (!existsSync(full)) {
      text(
        res,
        404,
        file === 'index.html'
          ? `the browser page is not built (no ${full}): run npm run build`
          : `not found: ${path}`,
      );
      return true;
    }
    reply(res, 200, TYPES[extname(file)]!, readFileSync(full));
    return true;
  };
}
