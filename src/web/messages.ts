/**
 * What the page and its worker (worker.ts) say to each other with postMessage: the page starts
 * the client; the worker reports the backend in use, the client loop's events and how it ended.
 */
import type { ClientEvent } from '../runtime/client_loop.js';
import type { WebBackend } from './backend.js';
import type { LocalFile } from './local_data.js';

/** Where the client's samples come from on its first join (later ones use what was kept). */
export type DataChoice =
  /** This client's shard, as `fedslr join --dataset NAME --shard K/N` computes it, from the server. */
  | { kind: 'demo' }
  /** An IDX pair the person picked. */
  | { kind: 'idx'; images: LocalFile; labels: LocalFile }
  /** Image files and a labels CSV (`file,label`) the person picked, as image_data.ts reads them. */
  | { kind: 'images'; files: LocalFile[] }
  /** What the browser kept at an earlier join (a reload): an error if it kept nothing. */
  | { kind: 'stored' };

export interface StartClient {
  type: 'start';
  /** The server's ws:// or wss:// URL. */
  url: string;
  client: number;
  token: string;
  backend: WebBackend;
  data: DataChoice;
  /** URL of the folder that holds tfjs's .wasm files. */
  wasmDir: string;
}

/** Why the client stopped, in words a person understands, and the kind for the page's styling. */
export type FailureKind =
  | 'unreachable'
  | 'token'
  | 'version'
  | 'storage'
  | 'backend'
  | 'run-failed'
  | 'data'
  | 'other';

export type FromWorker =
  | { type: 'backend'; description: string }
  /** The last round committed when the worker started (-1: none), from the browser's storage. */
  | { type: 'stored'; committed: number; history: EvalPoint[] }
  | { type: 'event'; event: ClientEvent }
  | { type: 'done' }
  /** Something went wrong that does not stop the client. */
  | { type: 'warning'; message: string }
  | { type: 'failed'; kind: FailureKind; message: string };

/** One evaluation of this client: accuracies after `round` rounds (null: not evaluated). */
export interface EvalPoint {
  round: number;
  personal: number | null;
  global: number | null;
}
