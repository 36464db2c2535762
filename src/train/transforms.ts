/**
 * Composable pieces of local training, in the spirit of optax: gradient transforms that add terms
 * to the loss gradient, and proximal maps applied after the SGD update. Per-round constants (an
 * anchor, a dual variable) are captured when a transform is built; the transform borrows those
 * tensors and never disposes them. Every transform is stateless (plain SGD needs no state).
 *
 * A transform touches only the tensors it has a term for (a linear term with fewer names than the
 * trainable set leaves the others alone), so the same pieces serve full models and head/body splits.
 *
 * The pieces built here also state, in their `fused` field, what they add as terms of the fused
 * SGD update (tensor/kernels/sgd_update.ts): their types are FusableTransform and FusableProxMap,
 * and a chain of only such transforms is one too. A step built from them runs one kernel per
 * tensor; any other transform or map is applied as written, to the same float32 result.
 */
import * as tf from '@tensorflow/tfjs-core';
import { proxL1 } from '../linalg/prox.js';
import { sgdUpdate, type UpdateTerm } from '../tensor/kernels/sgd_update.js';
import type { Params } from '../tensor/params.js';

export interface GradTransform {
  readonly name: string;
  /** The transformed gradient, given the current trainable parameters. Runs inside tidy. */
  update(grads: Params, params: Params): Params;
  /**
   * What `update` adds, as fused terms in order, when the step may run it as one fused update
   * per tensor (exactly the same float32 operations in the same order); absent otherwise.
   */
  readonly fused?: readonly FusedTerm[];
}

/**
 * A term a transform adds to the gradient, as the fused update (tensor/kernels/sgd_update.ts)
 * takes it: `scaled` adds `coef * x`, `pull` adds `coef * (w - x)`, with x the tensor of the same
 * name in `tensors` (tensors not named there get no term); `decay` adds `coef * w` to every tensor.
 */
export type FusedTerm =
  | { readonly kind: 'scaled'; readonly tensors: Params; readonly coef: number }
  | { readonly kind: 'pull'; readonly tensors: Params; readonly coef: number }
  | { readonly kind: 'decay'; readonly coef: number };

/** A transform that the fused update runs: the ones below, and a chain of only them. */
export interface FusableTransform extends GradTransform {
  readonly fused: readonly FusedTerm[];
}

/** A map applied to the parameters after each SGD step, with the step's learning rate. */
export interface ProxMap {
  readonly name: string;
  apply(params: Params, lr: number): Params;
  /** The threshold the fused update applies itself instead of `apply`; absent for other maps. */
  readonly fused?: FusedL1;
}

/**
 * The L1 prox as the fused update applies it: soft threshold `lambda * lr` on `names` (all when
 * absent).
 */
export interface FusedL1 {
  readonly kind: 'l1';
  readonly lambda: number;
  readonly names?: readonly string[];
}

/** A prox map that the fused update applies itself (the L1 map below). */
export interface FusableProxMap extends ProxMap {
  readonly fused: FusedL1;
}

function isFusable(t: GradTransform): t is FusableTransform {
  return t.fused !== undefined;
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
export function addLinear(c: Params, coef: number): FusableTransform {
  return {
    name: 'addLinear',
    update: (g) => withTerm(g, Object.keys(c), (k) => tf.mul(c[k]!, coef)),
    fused: [{ kind: 'scaled', tensors: c, coef }],
  };
}

/** Adds `rho * (w - anchor)`: the gradient of `(rho/2)||w - anchor||^2`. */
export function proximalPull(rho: number, anchor: Params): FusableTransform {
  return {
    name: 'proximalPull',
    update: (g, p) =>
      withTerm(g, Object.keys(anchor), (k) => tf.mul(tf.sub(p[k]!, anchor[k]!), rho)),
    fused: [{ kind: 'pull', tensors: anchor, coef: rho }],
  };
}

/** Adds `wd * w`: plain (coupled) weight decay, as PyTorch's SGD `weight_decay`. */
export function addDecayedWeights(wd: number): FusableTransform {
  return {
    name: 'addDecayedWeights',
    update: (g, p) => withTerm(g, Object.keys(g), (k) => tf.mul(p[k]!, wd)),
    fused: [{ kind: 'decay', coef: wd }],
  };
}

/** Applies transforms left to right; fusable when every one of them is. */
export function chain(...transforms: FusableTransform[]): FusableTransform;
export function chain(...transforms: GradTransform[]): GradTransform;
export function chain(...transforms: GradTransform[]): GradTransform {
  const t: GradTransform = {
    name: `chain(${transforms.map((t) => t.name).join(', ')})`,
    update: (g, p) => transforms.reduce((acc, t) => t.update(acc, p), g),
  };
  return transforms.every(isFusable) ? { ...t, fused: transforms.flatMap((x) => x.fused) } : t;
}

/** The L1 proximal map with threshold `lambda * lr` on the named tensors (all when omitted). */
export function l1ProxMap(lambda: number, names?: readonly string[]): FusableProxMap {
  return {
    name: 'l1ProxMap',
    apply: (params, lr) => proxL1(params, lambda * lr, names),
    fused: names ? { kind: 'l1', lambda, names: [...names] } : { kind: 'l1', lambda },
  };
}

/**
 * The SGD update `w - lr * transform(g)`, then `prox`, as a function of the trainable tensors,
 * their gradients and the step's learning rate. With a fusable transform (or none) it runs one
 * fused kernel per tensor, a fusable (L1) prox map included; any other transform makes the step
 * apply the pieces one by one, and any other prox map applies after the fused update. The float32
 * results are the same either way. Runs inside tidy.
 */
export function sgdStep(
  transform: GradTransform | undefined,
  prox: ProxMap | undefined,
): (params: Params, grads: Params, lr: number) => Params {
  const terms = transform ? transform.fused : [];
  const l1 = prox?.fused;
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
