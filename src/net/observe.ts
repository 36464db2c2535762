/**
 * What a federation server shows about itself over HTTP on its WebSocket port: `GET /healthz`
 * (JSON: status, connected clients, rounds committed) and `GET /metrics` in Prometheus' text
 * format (version 0.0.4): gauges of the moment and counters since the process started, counted
 * from the server's log events and the bytes of its frames. Nothing secret is in either.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The moment's values, read when a page is asked for. */
export interface Gauges {
  connected: number;
  /** Rounds committed so far in the run (the round loop's round). */
  rounds: number;
}

export class ServerStats {
  bytesIn = 0;
  bytesOut = 0;
  private readonly events = new Map<string, number>();

  /** Counts one log event, by its type (and close code, for refusals and disconnections). */
  count(e: { type: string; code?: number }): void {
    const key = e.code === undefined ? e.type : `${e.type}\u0000${e.code}`;
    this.events.set(key, (this.events.get(key) ?? 0) + 1);
  }

  private counter(type: string): [string, number][] {
    return [...this.events]
      .filter(([k]) => k === type || k.startsWith(`${type}\u0000`))
      .map(([k, n]) => [k.split('\u0000')[1] ?? '', n]);
  }

  /** The /metrics page. */
  metrics(g: Gauges): string {
    const lines: string[] = [];
    const metric = (name: string, kind: string, help: string, rows: [string, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
      for (const [labels, value] of rows) lines.push(`${name}${labels} ${value}`);
    };
    const byCode = (type: string) =>
      this.counter(type).map(([code, n]): [string, number] => [code ? `{code="${code}"}` : '', n]);
    metric('fedslr_connected_clients', 'gauge', 'Authenticated clients connected.', [
      ['', g.connected],
    ]);
    metric('fedslr_rounds_committed', 'gauge', 'Rounds of the run committed so far.', [
      ['', g.rounds],
    ]);
    metric('fedslr_connections_total', 'counter', 'Connections authenticated.', [
      ['', this.counter('connected').reduce((s, [, n]) => s + n, 0)],
    ]);
    metric(
      'fedslr_refused_connections_total',
      'counter',
      'Connections closed at or before their hello, by close code.',
      byCode('refused'),
    );
    metric(
      'fedslr_disconnections_total',
      'counter',
      'Authenticated connections that ended, by close code.',
      byCode('disconnected'),
    );
    metric('fedslr_rejected_frames_total', 'counter', 'Frames answered with an error frame.', [
      ['', this.counter('rejected').reduce((s, [, n]) => s + n, 0)],
    ]);
    metric('fedslr_received_bytes_total', 'counter', 'Bytes of frames received.', [
      ['', this.bytesIn],
    ]);
    metric('fedslr_sent_bytes_total', 'counter', 'Bytes of frames sent.', [['', this.bytesOut]]);
    return `${lines.join('\n')}\n`;
  }

  /** Answers an HTTP request that is not a WebSocket upgrade. */
  answer(req: IncomingMessage, res: ServerResponse, g: Gauges): void {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', connected: g.connected, rounds: g.rounds }));
    } else if (req.method === 'GET' && path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(this.metrics(g));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: this server answers WebSocket clients, GET /healthz and GET /metrics\n');
    }
  }
}
