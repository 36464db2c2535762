/**
 * Checks of what crosses between server and client, against the model: what a client sends before
 * the server folds it in (the round it answers, the tensors it was sent, same names back), what a
 * client is sent before it trains on it (the round), and for both every tensor's shape against the
 * model spec and every value finite. Each returns what is wrong, or null.
 */
import type { Download, Upload } from '../algorithms/types.js';
import { sizesMatch, type WireTensor } from '../codec/wire.js';
import { allFinite, type ParamArrays, type ParamSpec, sizeOf } from '../tensor/params.js';

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

function wireValues(t: WireTensor): ArrayLike<number>[] {
  switch (t.kind) {
    case 'dense':
      return [t.data];
    case 'lowrank':
      return [t.left, t.right];
    case 'sparse':
      return [t.values];
  }
}

/**
 * What is wrong with `upload` as the answer to a download for `round` that carried the tensors
 * `sent`; null when nothing is. Tensors (params and extras) must be the spec's, with its shapes.
 */
export function uploadProblem(
  upload: Upload,
  round: number,
  sent: readonly string[],
  spec: ParamSpec,
): string | null {
  if (upload.round !== round) return `answers round ${upload.round}, not ${round}`;
  const names = Object.keys(upload.params);
  const expected = new Set(sent);
  if (names.length !== expected.size || names.some((n) => !expected.has(n)))
    return `sends tensors [${names.join(', ')}], expected [${[...expected].join(', ')}]`;
  const problem = messageProblem(upload, spec);
  if (problem) return problem;
  if (!(Number.isInteger(upload.numSamples) && upload.numSamples >= 0))
    return `numSamples ${upload.numSamples} is not a count`;
  return null;
}

/**
 * What is wrong with `download` as the server's message for `round`; null when nothing is. Its
 * tensors (params and extras) must be the spec's, with its shapes, and every value finite.
 */
export function downloadProblem(download: Download, round: number, spec: ParamSpec): string | null {
  if (download.round !== round) return `download is for round ${download.round}, not ${round}`;
  return messageProblem(download, spec);
}

function messageProblem(m: Download | Upload, spec: ParamSpec): string | null {
  const shapes = new Map(spec.map((p) => [p.name, p.shape]));
  for (const [name, t] of Object.entries(m.params)) {
    const shape = shapes.get(name);
    if (!shape) return `'${name}' is not a tensor of the model`;
    if (!sameShape(t.shape, shape) || !sizesMatch(t))
      return `'${name}' has shape [${t.shape}] or sizes that do not match it, expected [${shape}]`;
    if (!wireValues(t).every(allFinite)) return `'${name}' has a value that is not finite`;
  }
  for (const [set, tensors] of Object.entries(m.extra ?? {})) {
    const problem = setProblem(tensors, shapes);
    if (problem) return `extra '${set}': ${problem}`;
  }
  return null;
}

function setProblem(set: ParamArrays, shapes: Map<string, readonly number[]>): string | null {
  for (const [name, a] of Object.entries(set)) {
    const shape = shapes.get(name);
    if (!shape) return `'${name}' is not a tensor of the model`;
    if (!sameShape(a.shape, shape) || a.data.length !== sizeOf(shape))
      return `'${name}' has shape [${a.shape}], expected [${shape}]`;
    if (!allFinite(a.data)) return `'${name}' has a value that is not finite`;
  }
  return null;
}
