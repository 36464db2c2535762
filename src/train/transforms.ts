/**
 * Composable pieces of local training, in the spirit of optax: gradient transforms that add terms
 * to the loss gradient, and proximal maps applied after the SGD update. Per-round constants (an
 * anchor, a dual variable) are captured when a transform is built; the transform borrows those
 * tensors and never disposes them. Every transform is stateless (plain SGD needs no state).
 *
 * A transform touches only the tensors it has a term for (a linear term with fewer names than the
 * trainable set leaves the others alone), so the same pieces serve full models and head/body splits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { proxL1 } from '../linalg/prox.js';
import { sgdUpdate, type UpdateTerm } from '../tensor/kernels/sgd_update.js';
import type { Params } from '../tensor/params.js';

export interface GradTransform {
  readonly name: string;
  /** The transformed gradient, given the current trainable parameters. Runs inside tidy. */
  update(grads: Params, params: Params): Params;
}

/** A map applied to the parameters after each SGD step, with the step's learning rate. */
export interface ProxMap {
  readonly name: string;
  apply(params: Params, lr: number): Params;
}

/**
 * What the known transforms and maps add, so that a step built from them runs as one fused
 * update per tensor (tensor/kernels/sgd_update.ts) with the same float32 operations in the same
 * order. A term applies to the tensors named in `tensors` (all when absent).
 */
type KnownTerm =
  | { kind: 'scaled'; tensors: Params; coef: number }
  | { kind: 'pull'; tensors: Params; coef: number }
  | { kind: 'decay'; coef: number };

const knownTerms = new WeakMap<GradTransform, readonly KnownTerm[]>();
const knownL1 = new WeakMap<ProxMap, { lambda: number; names?: readonly string[] }>();

function known(t: GradTransform, terms: readonly KnownTerm[]): GradTransform {
  knownTerms.set(t, terms);
  return t;
}

function withTerm(
  grads: Params,
  names: Iterable<string>,
  term: (name: string) => tf.Tensor,
): Params {
  const out: Params = { ...grads };
  for (const k of names) {
    if (k in grads) out[k] = tf.add(grads[k]!, term(k));
  }
  return out;
}

/** Adds `coef * c` to the gradient: the gradient of `coef * <c, w>` (FedSLR's `-<pi, w>` is coef -1). */
export function addLinear(c: Params, coef: number): GradTransform {
  return known(
    {
      name: 'addLinear',
      update: (g) => withTerm(g, Object.keys(c), (k) => tf.mul(c[k]!, coef)),
    },
    [{ kind: 'scaled', tensors: c, coef }],
  );
}

/** Adds `rho * (w - anchor)`: the gradient of `(rho/2)||w - anchor||^2`. */
export function proximalPull(rho: number, anchor: Params): GradTransform {
  return known(
    {
      name: 'proximalPull',
      update: (g, p) =>
        withTerm(g, Object.keys(anchor), (k) => tf.mul(tf.sub(p[k]!, anchor[k]!), rho)),
    },
    [{ kind: 'pull', tensors: anchor, coef: rho }],
  );
}

/** Adds `wd * w`: plain (coupled) weight decay, as PyTorch's SGD `weight_decay`. */
export function addDecayedWeights(wd: number): GradTransform {
  return known(
    {
      name: 'addDecayedWeights',
      update: (g, p) => withTerm(g, Object.keys(g), (k) => tf.mul(p[k]!, wd)),
    },
    [{ kind: 'decay', coef: wd }],
  );
}

/** Applies transforms left to right. */
export function chain(...transforms: GradTransform[]): GradTransform {
  const t: GradTransform = {
    name: `chain(${transforms.map((t) => t.name).join(', ')})`,
    update: (g, p) => transforms.reduce((acc, t) => t.update(acc, p), g),
  };
  const parts = transforms.map((x) => knownTerms.get(x));
  return parts.every((x) => x !== undefined) ? known(t, parts.flat()) : t;
}

/** The L1 proximal map with threshold `lambda * lr` on the named tensors (all when omitted). */
export function l1ProxMap(lambda: number, names?: readonly string[]): ProxMap {
  const m: ProxMap = {
    name: 'l1ProxMap',
    apply: (params, lr) => proxL1(params, lambda * lr, names),
  };
  knownL1.set(m, names ? { lambda, names: [...names] } : { lambda });
  return m;
}

/**
 * The SGD update `w - lr * transform(g)`, then `prox`, as a function of the trainable tensors,
 * their gradients and the step's learning rate. With a transform built from the pieces above (or
 * none) it runs one fused kernel per tensor, the L1 prox included; any other transform makes the
 * step apply the pieces one by one, and any other prox map applies after the fused update. The
 * float32 results are the same either way. Runs inside tidy.
 */
export function sgdStep(
  transform: GradTransform | undefined,
  prox: ProxMap | undefined,
): (params: Params, grads: Params, lr: number) => Params {
  const terms = transform ? knownTerms.get(transform) : [];
  const l1 = prox ? knownL1.get(prox) : undefined;
  const generic = (params: Params, grads: Params, lr: number): Params => {
    const g = transform ? transform.update(grads, params) : grads;
    const next: Params = {};
    for (const k of Object.keys(params)) next[k] = tf.sub(params[k]!, tf.mul(g[k]!, lr));
    return prox ? prox.apply(next, lr) : next;
  };
  if (!terms) return generic;
  return (params, grads, lr) => {
    const tau = l1 ? l1.lambda * lr : undefined;
    const thresholded = l1?.names ? new Set(l1.names) : undefined;
    // Bad thresholds and unknown names: the prox map's own checks and messages.
    if (l1 && (!(tau! >= 0 && Number.isFinite(tau)) || l1.names?.some((n) => !(n in params))))
      return generic(params, grads, lr);
    const next: Params = {};
    for (const k of Object.keys(params)) {
      const w = params[k]!;
      const update: UpdateTerm[] = [];
      for (const t of terms) {
        if (t.kind === 'decay') update.push(t);
        else if (k in t.tensors) update.push({ kind: t.kind, x: t.tensors[k]!, coef: t.coef });
      }
      const applies = l1 && (!thresholded || thresholded.has(k));
      next[k] = sgdUpdate(w, grads[k]!, update, lr, applies ? tau : undefined);
    }
    return prox && !l1 ? prox.apply(next, lr) : next;
  };
}
