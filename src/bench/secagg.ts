/**
 * `fedslr bench secagg`: the cost of one secure-aggregation round (src/secagg) per client and for
 * the server, for the parameter counts of the paper's models, at several cohort sizes. All
 * clients run in this process one after another, so each one's time is its own; one client
 * drops after sharing keys, so the server's time includes rebuilding a dropped client's masks.
 * Inputs are random in [-clip, clip]; the unmasked sum is checked against the plain sum.
 */
import { parseArgs } from 'node:util';
import { pack } from '../codec/wire.js';
import { createModel, type ModelName } from '../models/index.js';
import { SecAggClient } from '../secagg/client.js';
import { randomBytes } from '../secagg/crypto.js';
import type {
  AdvertiseKeys,
  ForwardedShares,
  MaskedInput,
  NeighbourKeys,
  SharedKeys,
  UnmaskRequest,
  UnmaskResponse,
} from '../secagg/messages.js';
import { degreeFor, SECURE_AGGREGATION_DEFAULTS, thresholdFor } from '../secagg/options.js';
import type { SecAggParams } from '../secagg/params.js';
import { sumErrorBound } from '../secagg/quantize.js';
import { SecAggServer } from '../secagg/server.js';
import { sizeOf } from '../tensor/params.js';
import { InputError } from '../util/errors.js';

/** The datasets the paper pairs with each model: Fashion-MNIST for cnn, CIFAR-10 for ResNets. */
const MODELS: Record<string, { model: ModelName; inputShape: [number, number, number] }> = {
  cnn: { model: 'cnn', inputShape: [28, 28, 1] },
  resnet18gn: { model: 'resnet18gn', inputShape: [32, 32, 3] },
};

export const help = `Usage: fedslr bench secagg [--models cnn,resnet18gn] [--participants 10,50]
                           [--neighbours K] [--threshold T] [--bits B] [--json]

Times one secure-aggregation round (advertise keys, share keys, masked input, unmasking) per
client (mean and max over clients) and for the server, with the vector length of each model's
parameters, for each cohort size; one client drops after sharing keys. --neighbours K: SecAgg+
graph of degree K (default: complete graph). --threshold: default a majority of each client's
neighbours and itself, as in a run (secureAggregation.threshold).
--bits: quantization bits (default 16). Prints one JSON line per case with --json.`;

function list(text: string, flag: string): string[] {
  return text
    .split(',')
    .filter((s) => s !== '')
    .map((s) => {
      if (flag === '--models' && !(s in MODELS))
        throw new InputError(
          `${flag}: expected names among ${Object.keys(MODELS).join(', ')}, got '${s}'`,
        );
      return s;
    });
}

function integer(text: string | undefined, flag: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!(Number.isInteger(n) && n >= min))
    throw new InputError(`${flag}: expected an integer >= ${min}, got '${text}'`);
  return n;
}

interface CaseResult {
  model: string;
  dimension: number;
  participants: number;
  neighbours: number;
  threshold: number;
  bits: number;
  client_mean_s: number;
  client_max_s: number;
  /** MessagePack bytes a surviving client sends in the round (keys, shares, masked input, shares). */
  client_up_bytes: number;
  server_s: number;
  max_error: number;
  error_bound: number;
}

async function timed<T>(work: () => Promise<T> | T): Promise<[T, number]> {
  const start = performance.now();
  const value = await work();
  return [value, (performance.now() - start) / 1000];
}

async function benchCase(
  model: string,
  dimension: number,
  n: number,
  neighbours: number | undefined,
  threshold: number | undefined,
  bits: number,
): Promise<CaseResult> {
  const degree = degreeFor(n, neighbours);
  // The threshold a run's round with n participants takes (secagg/options.ts).
  const t = thresholdFor({ ...SECURE_AGGREGATION_DEFAULTS, neighbours, threshold }, n);
  const params: SecAggParams = {
    round: 1,
    dimension,
    threshold: t,
    clip: 1,
    quantizationBits: bits,
  };
  const clients = Array.from({ length: n }, (_, id) => new SecAggClient(id, params));
  const clientTime = new Float64Array(n);
  const server = new SecAggServer(params, { neighbours });
  const step = async <T>(id: number, work: () => Promise<T> | T): Promise<T> => {
    const [value, s] = await timed(work);
    clientTime[id] = (clientTime[id] as number) + s;
    return value;
  };
  const ads: AdvertiseKeys[] = [];
  for (const c of clients) ads.push(await step(c.id, () => c.advertiseKeys()));
  const [keys, s1] = await timed(() => server.advertiseKeys(ads));
  const shared: SharedKeys[] = [];
  for (const c of clients)
    shared.push(await step(c.id, () => c.shareKeys(keys.get(c.id) as NeighbourKeys)));
  const [forwarded, s2] = await timed(() => server.shareKeys(shared));
  const uploading = clients.slice(1); // client 0 drops after sharing keys
  const values = uploading.map(() => {
    const words = randomBytes(4 * dimension);
    return Float32Array.from(new Uint32Array(words.buffer), (w) => (w / 2 ** 32) * 2 - 1);
  });
  const uploads: MaskedInput[] = [];
  for (const [i, c] of uploading.entries())
    uploads.push(
      await step(c.id, () =>
        c.maskedInput(forwarded.get(c.id) as ForwardedShares, values[i] as Float32Array),
      ),
    );
  const [requests, s3] = await timed(() => server.maskedInputs(uploads));
  const answers: UnmaskResponse[] = [];
  for (const c of uploading)
    answers.push(await step(c.id, () => c.unmask(requests.get(c.id) as UnmaskRequest)));
  const [result, s4] = await timed(() => server.unmask(answers));
  const serverTime = s1 + s2 + s3 + s4;
  let maxError = 0;
  for (let i = 0; i < dimension; i++) {
    let plain = 0;
    for (const v of values) plain += v[i] as number;
    maxError = Math.max(maxError, Math.abs((result.sum[i] as number) - plain));
  }
  const times = uploading.map((c) => clientTime[c.id] as number);
  const sent = (id: number) =>
    [ads, shared, uploads, answers].reduce(
      (sum, stage) => sum + pack(stage.find((m) => m.client === id)).byteLength,
      0,
    );
  return {
    model,
    dimension,
    participants: n,
    neighbours: degree,
    threshold: t,
    bits,
    client_mean_s: times.reduce((a, b) => a + b, 0) / times.length,
    client_max_s: Math.max(...times),
    client_up_bytes: sent(uploading[0]!.id),
    server_s: serverTime,
    max_error: maxError,
    error_bound: sumErrorBound({ clip: 1, bits }, result.participants.length),
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string', default: 'cnn,resnet18gn' },
      participants: { type: 'string', default: '10,50' },
      neighbours: { type: 'string' },
      threshold: { type: 'string' },
      bits: { type: 'string', default: '16' },
      json: { type: 'boolean' },
    },
  });
  const models = list(values.models, '--models');
  const cohorts = list(values.participants, '--participants').map(
    (s) => integer(s, '--participants', 3) as number,
  );
  const neighbours = integer(values.neighbours, '--neighbours', 2);
  const threshold = integer(values.threshold, '--threshold', 2);
  const bits = integer(values.bits, '--bits', 1) as number;
  for (const name of models) {
    const { model, inputShape } = MODELS[name] as (typeof MODELS)[string];
    const spec = createModel(model, { inputShape, classes: 10 }).spec;
    const dimension = spec.reduce((s, p) => s + sizeOf(p.shape), 0);
    for (const n of cohorts) {
      const r = await benchCase(name, dimension, n, neighbours, threshold, bits);
      if (values.json) console.log(JSON.stringify(r));
      else
        console.log(
          `${name} (${dimension} params), ${n} clients, ${r.neighbours} neighbours, t=${r.threshold}: ` +
            `client ${r.client_mean_s.toFixed(2)} s (max ${r.client_max_s.toFixed(2)}), ` +
            `${(r.client_up_bytes / 1e6).toFixed(2)} MB up, ` +
            `server ${r.server_s.toFixed(2)} s; max error ${r.max_error.toExponential(2)} ` +
            `(bound ${r.error_bound.toExponential(2)})`,
        );
    }
  }
  return 0;
}
