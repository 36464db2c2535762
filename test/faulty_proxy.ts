/**
 * A faulty WebSocket proxy on loopback for federation tests: clients connect to it, it connects
 * each to the server and forwards frames both ways, passing each side's first frame (hello,
 * welcome) whole and then, for every frame, drawing from a stream seeded by (seed, client, its
 * connection count, direction) whether to drop it, truncate it to a shorter prefix, cut the
 * connection (both sides, as a network failure), delay it (frames keep their order), or pass it.
 * Each frame's fate is recorded with the message it carried, decoded before the fault.
 */
import type { AddressInfo } from 'node:net';
import WebSocket, { type RawData, WebSocketServer } from 'ws';
import { decodeToHost, decodeToServer } from '../src/protocol/messages.js';
import { Rng } from '../src/tensor/rng.js';

/** Probabilities of each fault per frame (after the first of each side); the rest pass. */
export interface Faults {
  drop: number;
  truncate: number;
  cut: number;
  delay: number;
  /** The longest delay, ms. */
  maxDelayMs: number;
}

export type Fate = 'passed' | 'delayed' | 'dropped' | 'truncated' | 'cut';

/** One forwarded (or not) frame: who it was for or from, what it carried, what became of it. */
export interface FrameRecord {
  client: number;
  direction: 'up' | 'down';
  /** The message type, round, attempt and (commits) accepted clients; undefined when undecodable. */
  type?: string;
  round?: number;
  attempt?: number;
  accepted?: number[];
  fate: Fate;
}

const UP = 0;
const DOWN = 1;

export class FaultyProxy {
  readonly frames: FrameRecord[] = [];
  private readonly connections = new Map<number, number>();
  private readonly sockets = new Set<WebSocket>();

  private constructor(
    private readonly wss: WebSocketServer,
    private readonly target: string,
    private readonly faults: Faults,
    private readonly seed: number,
    readonly url: string,
  ) {
    wss.on('connection', (ws) => this.accept(ws));
  }

  static async start(target: string, faults: Faults, seed: number): Promise<FaultyProxy> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const { port } = wss.address() as AddressInfo;
    return new FaultyProxy(wss, target, faults, seed, `ws://127.0.0.1:${port}`);
  }

  count(fate: Fate): number {
    return this.frames.filter((f) => f.fate === fate).length;
  }

  private accept(down: WebSocket): void {
    const up = new WebSocket(this.target);
    this.sockets.add(down).add(up);
    let client = -1;
    let upRng: Rng | undefined;
    let downRng: Rng | undefined;
    let upChain: Promise<void> = new Promise((r) => up.once('open', () => r()));
    let downChain = Promise.resolve();
    const cut = () => {
      down.terminate();
      up.terminate();
    };
    const forward = (
      data: RawData,
      direction: 'up' | 'down',
      rng: Rng | undefined,
      to: WebSocket,
      chain: Promise<void>,
    ): Promise<void> => {
      const bytes = toBytes(data);
      const record: FrameRecord = {
        client,
        direction,
        ...describe(bytes, direction),
        fate: 'passed',
      };
      this.frames.push(record);
      const { drop, truncate, cut: cutP, delay, maxDelayMs } = this.faults;
      const u = rng ? rng.uniform() : 1;
      let out: Uint8Array | undefined = bytes;
      let wait = 0;
      if (u < drop) {
        record.fate = 'dropped';
        out = undefined;
      } else if (u < drop + truncate) {
        record.fate = 'truncated';
        out = bytes.subarray(0, rng!.int(bytes.length));
      } else if (u < drop + truncate + cutP) {
        record.fate = 'cut';
        return chain.then(cut);
      } else if (u < drop + truncate + cutP + delay) {
        record.fate = 'delayed';
        wait = 1 + rng!.int(maxDelayMs);
      }
      return chain
        .then(() => (wait ? new Promise<void>((r) => setTimeout(r, wait)) : undefined))
        .then(() => {
          if (out && to.readyState === WebSocket.OPEN) to.send(out);
        });
    };
    down.on('message', (data) => {
      if (client < 0) {
        client = helloClient(toBytes(data));
        if (client < 0) return cut();
        const nth = this.connections.get(client) ?? 0;
        this.connections.set(client, nth + 1);
        upRng = Rng.derive(this.seed, client, nth, UP);
        downRng = Rng.derive(this.seed, client, nth, DOWN);
        upChain = forward(data, 'up', undefined, up, upChain);
        return;
      }
      upChain = forward(data, 'up', upRng, up, upChain);
    });
    let welcomed = false;
    up.on('message', (data) => {
      const rng = welcomed ? downRng : undefined;
      welcomed = true;
      downChain = forward(data, 'down', rng, down, downChain);
    });
    // A close travels after the frames queued before it, with its code when one can be sent.
    const closeOther = (to: WebSocket, chain: () => Promise<void>) => (code: number) =>
      void chain().then(() =>
        code === 1000 || (code >= 3000 && code <= 4999) ? to.close(code) : to.terminate(),
      );
    up.on(
      'close',
      closeOther(down, () => downChain),
    );
    down.on(
      'close',
      closeOther(up, () => upChain),
    );
    up.on('error', cut);
    down.on('error', cut);
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}

function describe(bytes: Uint8Array, direction: 'up' | 'down'): Partial<FrameRecord> {
  try {
    const m = direction === 'up' ? decodeToServer(bytes) : decodeToHost(bytes);
    return {
      type: m.type,
      ...('round' in m && m.round !== undefined ? { round: m.round } : {}),
      ...('attempt' in m && m.attempt !== undefined ? { attempt: m.attempt } : {}),
      ...(m.type === 'commit' ? { accepted: m.accepted } : {}),
    };
  } catch {
    return {};
  }
}

/** The client a first frame says hello for; -1 when it is no hello. */
function helloClient(bytes: Uint8Array): number {
  try {
    const m = decodeToServer(bytes, 'hello');
    return m.type === 'hello' ? (m.clients[0] ?? -1) : -1;
  } catch {
    return -1;
  }
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
