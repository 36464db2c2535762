/**
 * `fedslr bench server`: the time of FedSLR's server step (FEDSLR.md steps 5 and 6: the dual sum,
 * the corrected mean and the SVT of every weight matrix) for a model, over consecutive rounds, as
 * the simulator runs it (`fedslr(...).aggregate`, with the SVT warm starts kept in the server
 * state). Client uploads are the regime's model plus fresh seeded noise each round, like small
 * training updates; they do not start from the thresholded model, whose singular values would
 * shrink by tau every round and leave the regime.
 *
 * Regimes:
 * - full: PyTorch's initial weights and FEDSLR.md's defaults (mu 1e-4, alpha 0.1, tau 1e-3):
 *   nearly every singular value is kept, as in the first rounds of a real run.
 * - low: every weight matrix planted with rank 10% of full (singular values geometric in
 *   [0.3, 1]) and tau = 0.1 (mu 0.01): the rank-reduced global model of a later round.
 */
import { parseArgs } from 'node:util';
import { fedslr } from '../algorithms/fedslr.js';
import type { AggregateInput } from '../algorithms/types.js';
import { UsageError } from '../cli/command.js';
import { fromMatrixArray, matrixShape } from '../linalg/matrix_view.js';
import { plantedMatrix } from '../linalg/planted.js';
import { createModel, MODEL_NAMES, type Model, type ModelName } from '../models/index.js';
import { backendThreads, initBackend } from '../tensor/backend.js';
import { type ParamArrays, toArrays } from '../tensor/params.js';
import { Rng } from '../tensor/rng.js';
import { INPUT_SHAPES, median, positiveInt } from './step.js';

export const help = [
  'Usage: fedslr bench server [--model resnet18gn|resnet8gn|cnn|mlp] [--classes N]',
  '                           [--regime full|low|both] [--clients N] [--rounds N] [--json]',
  '',
  "Times FedSLR's server step (dual sum, corrected mean, SVT of every weight matrix) over",
  '--rounds consecutive rounds (default 3; the first has no warm start) with --clients uploads',
  "(default 10): the regime's model plus fresh small noise. Defaults: resnet18gn, 100 classes.",
  'full: initial weights, mu 1e-4, alpha 0.1 (tau 1e-3); low: weight matrices planted at 10% rank,',
  'tau 0.1. Prints per regime {"model", "regime", "tau", "matrices", "params", "round_s": [...],',
  '"first_s", "warm_s" (median of the later rounds), "rank_ratio"}.',
].join('\n');

type Regime = 'full' | 'low';
const ALPHA = 0.1;
const MU: Record<Regime, number> = { full: 1e-4, low: 1e-2 };

/** The regime's global model: initial weights, or every weight matrix planted at 10% rank. */
function globalModel(model: Model, regime: Regime): ParamArrays {
  const params = model.init(Rng.derive(7, 0));
  const arrays = toArrays(params);
  Object.values(params).forEach((t) => t.dispose());
  if (regime === 'full') return arrays;
  for (const [i, p] of model.spec.entries()) {
    const ms = matrixShape(p.shape, p.role);
    if (!ms) continue;
    const r = Math.max(1, Math.round(0.1 * Math.min(ms[0], ms[1])));
    const s = Array.from({ length: r }, (_, j) => 0.3 ** (r > 1 ? j / (r - 1) : 0));
    arrays[p.name] = {
      shape: [...p.shape],
      data: fromMatrixArray(plantedMatrix(ms[0], ms[1], s, 100 + i), p.shape, p.role),
    };
  }
  return arrays;
}

/** Client i's upload in round t: the model plus Gaussian noise of 1e-3 x its RMS entry. */
function uploads(global: ParamArrays, clients: number, round: number): AggregateInput[] {
  return Array.from({ length: clients }, (_, client) => {
    const rng = Rng.derive(11, round, client);
    const params: Record<string, { kind: 'dense'; shape: number[]; data: Float32Array }> = {};
    for (const [name, t] of Object.entries(global)) {
      let ss = 0;
      for (const x of t.data) ss += x * x;
      const sd = 1e-3 * Math.sqrt(ss / t.data.length);
      const data = new Float32Array(t.data.length);
      for (let i = 0; i < data.length; i++) data[i] = t.data[i]! + sd * rng.normal();
      params[name] = { kind: 'dense', shape: [...t.shape], data };
    }
    return { client, upload: { round, params, numSamples: 1, trainLoss: 0, trainAcc: 0 } };
  });
}

export interface ServerBenchResult {
  model: ModelName;
  classes: number;
  regime: Regime;
  tau: number;
  matrices: number;
  params: number;
  clients: number;
  round_s: number[];
  first_s: number;
  warm_s: number | null;
  rank_ratio: number;
}

export async function benchServer(
  name: ModelName,
  classes: number,
  regime: Regime,
  clients: number,
  rounds: number,
): Promise<ServerBenchResult> {
  const model = createModel(name, { inputShape: INPUT_SHAPES[name], classes });
  const train = { lr: 0.1, lrDecay: 1, weightDecay: 0, batchSize: 20, epochs: 1 };
  const algorithm = fedslr({ model, numClients: 100, train }, { mu: MU[regime], alpha: ALPHA });
  const start = globalModel(model, regime);
  let server = algorithm.server.initServer(start);
  const round_s: number[] = [];
  let rank = 0;
  let full = 0;
  for (let t = 0; t < rounds; t++) {
    const ups = uploads(start, clients, t);
    const t0 = performance.now();
    const out = await algorithm.server.aggregate(server, t, ups);
    round_s.push((performance.now() - t0) / 1000);
    server = out.server;
    const ranks = Object.values(out.stats.ranks ?? {});
    rank = ranks.reduce((a, r) => a + r.rank, 0);
    full = ranks.reduce((a, r) => a + r.full, 0);
  }
  return {
    model: name,
    classes,
    regime,
    tau: MU[regime] / ALPHA,
    matrices: model.spec.filter((p) => matrixShape(p.shape, p.role)).length,
    params: model.spec.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0),
    clients,
    round_s,
    first_s: round_s[0]!,
    warm_s: rounds > 1 ? median(round_s.slice(1)) : null,
    rank_ratio: full ? rank / full : 1,
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', default: 'resnet18gn' },
      classes: { type: 'string', default: '100' },
      regime: { type: 'string', default: 'both' },
      clients: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
    },
  });
  const name = values.model as ModelName;
  if (!MODEL_NAMES.includes(name))
    throw new UsageError(`--model: expected one of ${MODEL_NAMES.join(', ')}, got '${name}'`);
  if (!['full', 'low', 'both'].includes(values.regime))
    throw new UsageError(`--regime: expected full, low or both, got '${values.regime}'`);
  const regimes: Regime[] = values.regime === 'both' ? ['full', 'low'] : [values.regime as Regime];
  const classes = positiveInt('classes', values.classes);
  const clients = positiveInt('clients', values.clients);
  const rounds = positiveInt('rounds', values.rounds);
  const threads = backendThreads(await initBackend('wasm'));
  for (const regime of regimes) {
    const r = await benchServer(name, classes, regime, clients, rounds);
    if (values.json) console.log(JSON.stringify({ threads, ...r }));
    else
      console.log(
        `${r.model} (${r.classes} classes, ${r.matrices} matrices), ${r.regime} regime, tau ${r.tau}, ${threads} threads: rounds ${r.round_s.map((s) => s.toFixed(2)).join(', ')} s; kept rank ${(100 * r.rank_ratio).toFixed(1)}%`,
      );
  }
  return 0;
}
