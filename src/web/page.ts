/**
 * The page of a browser client (index.html): a form to join (server, client id, token, data,
 * backend; a join link `/?client=K&token=T` fills it), then the client's status as its worker
 * (worker.ts) reports it: connection, backend, rounds joined, last committed round, bytes sent
 * and received, and its personal and global accuracy by round (an inline SVG chart).
 *
 * A join is remembered (localStorage, `fedslr-join`, by server and client) until the run is done
 * or the person leaves, so a reload or a reopened tab resumes as the same client, from the state
 * kept in IndexedDB: the join of the link's client, or the only one remembered.
 * "Leave" ends the worker and deletes everything kept for the client.
 */
import type { ClientEvent } from '../runtime/client_loop.js';
import { WEB_BACKENDS, type WebBackend } from './backend.js';
import { askPersistentStorage, IdbClientState } from './idb_store.js';
import type { LocalFile } from './local_data.js';
import type { DataChoice, EvalPoint, FromWorker, StartClient } from './messages.js';

const JOIN_KEY = 'fedslr-join';

/** What is remembered of a join across reloads. */
interface SavedJoin {
  url: string;
  client: number;
  token: string;
  backend: WebBackend;
  data: 'demo' | 'idx' | 'images';
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('join');
const urlInput = $<HTMLInputElement>('url');
const clientInput = $<HTMLInputElement>('client');
const tokenInput = $<HTMLInputElement>('token');
const backendSelect = $<HTMLSelectElement>('backend');
const leaveButton = $<HTMLButtonElement>('leave');

let worker: Worker | undefined;
let current: SavedJoin | undefined;
let history: EvalPoint[] = [];
let roundsJoined = 0;

const show = (id: string, text: string) => {
  $(id).textContent = text;
};

function showError(message: string | undefined): void {
  const box = $('error');
  box.hidden = message === undefined;
  box.textContent = message ?? '';
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(2)} MiB`;
}

/** The WebSocket URL of the server this page came from ('' when opened from a file). */
function ownServer(): string {
  if (location.protocol !== 'http:' && location.protocol !== 'https:') return '';
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
}

const joinId = (j: SavedJoin) => `${j.url}#${j.client}`;

function savedJoins(): Record<string, SavedJoin> {
  try {
    return JSON.parse(localStorage.getItem(JOIN_KEY) ?? '{}') as Record<string, SavedJoin>;
  } catch {
    return {};
  }
}

function remember(join: SavedJoin, keep: boolean): void {
  const all = savedJoins();
  if (keep) all[joinId(join)] = join;
  else delete all[joinId(join)];
  localStorage.setItem(JOIN_KEY, JSON.stringify(all));
}

/** The join to resume: the one of the link's client, or the only one remembered. */
function joinToResume(linkClient: string | null): SavedJoin | undefined {
  const joins = Object.values(savedJoins()).filter(
    (j) => linkClient === null || String(j.client) === linkClient,
  );
  return joins.length === 1 ? joins[0] : undefined;
}

function onEvent(e: ClientEvent): void {
  const state = applyEvent(e);
  if (state !== undefined) show('state', state);
}

/** Updates what an event changes on the page; returns the connection state it means, if any. */
function applyEvent(e: ClientEvent): string | undefined {
  switch (e.type) {
    case 'connected':
      return `connected to ${e.url}, saying hello`;
    case 'welcome':
      showError(undefined);
      show('secure', e.secure ? 'yes: the server sees only the sum of the updates' : 'no');
      return `joined a run of ${e.clients} clients (${e.trainSamples} training and ${e.testSamples} test samples here); waiting to be drawn`;
    case 'message':
      if (e.kind === 'train') return `training round ${(e.round ?? 0) + 1}`;
      if (e.kind === 'evaluate') return `evaluating after round ${e.round}`;
      return undefined;
    case 'trained':
      roundsJoined += 1;
      show('rounds', String(roundsJoined));
      show('train-time', `${e.seconds.toFixed(2)} s (round ${e.round + 1})`);
      return e.secure
        ? `trained round ${e.round + 1}; masking the update with the other clients`
        : `sent the update of round ${e.round + 1}; waiting for the server`;
    case 'committed':
      show('committed', `round ${e.round + 1}`);
      return 'joined; waiting to be drawn';
    case 'evaluated':
      history = [
        ...history.filter((p) => p.round !== e.round),
        {
          round: e.round,
          personal: e.row.personal?.acc ?? null,
          global: e.row.global?.acc ?? null,
        },
      ];
      drawChart();
      return 'joined; waiting to be drawn';
    case 'traffic':
      show('traffic', `${bytes(e.sent)} / ${bytes(e.received)}`);
      return undefined;
    case 'closed':
      return `connection closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`;
    case 'retry':
      return `no connection to the server; retrying in ${(e.inMs / 1000).toFixed(1)} s (attempt ${e.failures})`;
  }
}

function onWorker(m: FromWorker): void {
  if (m.type === 'backend') show('backend-used', m.description);
  else if (m.type === 'stored') {
    history = m.history;
    drawChart();
    if (m.committed >= 0) show('committed', `round ${m.committed + 1}`);
    show(
      'resumed',
      m.committed >= 0
        ? `yes, from the state of round ${m.committed + 1} kept in this browser`
        : 'no: no state of this client in this browser yet',
    );
  } else if (m.type === 'event') onEvent(m.event);
  else if (m.type === 'warning') showError(m.message);
  else if (m.type === 'done') {
    show('state', 'the run is done; thank you');
    if (current) remember(current, false);
  } else {
    show('state', 'stopped');
    showError(m.message);
    // A reload retries a lost server or a full storage; nothing else would go differently.
    if (current && m.kind !== 'unreachable' && m.kind !== 'storage') remember(current, false);
  }
}

function start(join: SavedJoin, data: DataChoice): void {
  current = join;
  remember(join, true);
  showError(undefined);
  for (const el of Array.from(form.elements)) (el as HTMLInputElement).disabled = true;
  leaveButton.disabled = false;
  show('state', 'starting');
  void askPersistentStorage().then((kept) =>
    show(
      'storage',
      kept
        ? 'IndexedDB, persistent (the browser will not evict it)'
        : 'IndexedDB (the browser may evict it under storage pressure)',
    ),
  );
  worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => onWorker(ev.data);
  worker.onerror = (ev) => {
    show('state', 'stopped');
    showError(`The training worker failed: ${ev.message}`);
  };
  const message: StartClient = {
    type: 'start',
    ...join,
    data,
    wasmDir: new URL('./', import.meta.url).href,
  };
  worker.postMessage(message);
}

async function fileOf(input: HTMLInputElement, what: string) {
  const file = input.files?.[0];
  if (!file) throw new Error(`pick the ${what} file`);
  return { name: file.name, bytes: await file.arrayBuffer() };
}

/** The files of the image folder, or else the image files picked, named by their paths. */
async function imageFiles(): Promise<LocalFile[]> {
  const folder = $<HTMLInputElement>('image-folder').files;
  const picked = folder?.length ? folder : $<HTMLInputElement>('image-files').files;
  if (!picked?.length) throw new Error('pick a folder of images and a labels CSV, or the files');
  return Promise.all(
    Array.from(picked, async (f) => ({
      name: f.webkitRelativePath || f.name,
      bytes: await f.arrayBuffer(),
    })),
  );
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void (async () => {
    try {
      const url = urlInput.value.trim();
      if (!/^wss?:\/\/./.test(url))
        throw new Error(`the server address must start with ws:// or wss://, not '${url}'`);
      const client = Number(clientInput.value);
      if (!Number.isInteger(client) || client < 0)
        throw new Error('the client id is a whole number from 0');
      const kind = (form.elements.namedItem('data') as RadioNodeList).value as SavedJoin['data'];
      const data: DataChoice =
        kind === 'demo'
          ? { kind }
          : kind === 'images'
            ? { kind, files: await imageFiles() }
            : {
                kind,
                images: await fileOf($<HTMLInputElement>('images'), 'images'),
                labels: await fileOf($<HTMLInputElement>('labels'), 'labels'),
              };
      const backend = backendSelect.value as WebBackend;
      start({ url, client, token: tokenInput.value, backend, data: kind }, data);
    } catch (err) {
      showError((err as Error).message);
    }
  })();
});

leaveButton.addEventListener('click', () => {
  void (async () => {
    worker?.terminate();
    worker = undefined;
    if (current) {
      remember(current, false);
      const state = await IdbClientState.open(current.url, current.client);
      await state.deleteAll();
      state.close();
    }
    history = [];
    drawChart();
    leaveButton.disabled = true;
    for (const el of Array.from(form.elements)) (el as HTMLInputElement).disabled = false;
    show('state', 'left the federation; the data kept in this browser is deleted');
    show('committed', 'none');
    show('resumed', 'not started');
  })();
});

const SVG = 'http://www.w3.org/2000/svg';

/** Personal (solid) and global (dashed) accuracy against the round, on [0, 1]. */
function drawChart(): void {
  const svg = $('chart') as unknown as SVGSVGElement;
  svg.replaceChildren();
  const W = 440;
  const H = 180;
  const left = 36;
  const bottom = 24;
  const points = [...history].sort((a, b) => a.round - b.round);
  const lastRound = Math.max(1, ...points.map((p) => p.round));
  const x = (r: number) => left + ((W - left - 10) * r) / lastRound;
  const y = (acc: number) => H - bottom - (H - bottom - 8) * acc;
  const add = (tag: string, attrs: Record<string, string>, text?: string) => {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text) el.textContent = text;
    svg.appendChild(el);
  };
  add('line', { x1: `${left}`, y1: `${y(0)}`, x2: `${W - 10}`, y2: `${y(0)}`, stroke: '#999' });
  add('line', { x1: `${left}`, y1: `${y(0)}`, x2: `${left}`, y2: `${y(1)}`, stroke: '#999' });
  for (const a of [0, 0.5, 1]) add('text', { x: '4', y: `${y(a) + 4}` }, `${a * 100}%`);
  add('text', { x: `${W - 60}`, y: `${H - 6}` }, `round ${lastRound}`);
  const series: [keyof EvalPoint, string, string][] = [
    ['personal', '#1f6fb4', ''],
    ['global', '#d9822b', '5 4'],
  ];
  series.forEach(([key, color, dash], i) => {
    const pts = points.filter((p) => p[key] !== null);
    if (pts.length)
      add('polyline', {
        points: pts.map((p) => `${x(p.round)},${y(p[key] as number)}`).join(' '),
        fill: 'none',
        stroke: color,
        'stroke-width': '2',
        'stroke-dasharray': dash,
      });
    const last = pts.at(-1);
    const label = `${key}${last ? `: ${((last[key] as number) * 100).toFixed(1)}%` : ''}`;
    add('text', { x: `${left + 10 + 150 * i}`, y: '14', fill: color }, label);
  });
}

function init(): void {
  for (const b of WEB_BACKENDS)
    if (b === 'webgpu' && !('gpu' in navigator))
      (backendSelect.querySelector(`option[value="${b}"]`) as HTMLOptionElement).disabled = true;
  const params = new URLSearchParams(location.search);
  const saved = joinToResume(params.get('client'));
  urlInput.value = saved?.url ?? params.get('server') ?? ownServer();
  clientInput.value = saved ? String(saved.client) : (params.get('client') ?? '');
  tokenInput.value = saved?.token ?? params.get('token') ?? '';
  drawChart();
  if (saved) {
    backendSelect.value = saved.backend;
    start(saved, saved.data === 'demo' ? { kind: 'demo' } : { kind: 'stored' });
  }
}

init();
