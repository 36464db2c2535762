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
  return {
    name: 'addLinear',
    update: (g) => withTerm(g, Object.keys(c), (k) => tf.mul(c[k]!, coef)),
  };
}

/** Adds `rho * (w - anchor)`: the gradient of `(rho/2)||w - anchor||^2`. */
export function proximalPull(rho: number, anchor: Params): GradTransform {
  return {
    name: 'proximalPull',
    update: (g, p) =>
      withTerm(g, Object.keys(anchor), (k) => tf.mul(tf.sub(p[k]!, anchor[k]!), rho)),
  };
}

/** Adds `wd * w`: plain (coupled) weight decay, as PyTorch's SGD `weight_decay`. */
export function addDecayedWeights(wd: number): GradTransform {
  return {
    name: 'addDecayedWeights',
    update: (g, p) => withTerm(g, Object.keys(g), (k) => tf.mul(p[k]!, wd)),
  };
}

/** Applies transforms left to right. */
export function chain(...transforms: GradTransform[]): GradTransform {
  return {
    name: `chain(${transforms.map((t) => t.name).join(', ')})`,
    update: (g, p) => transforms.reduce((acc, t) => t.update(acc, p), g),
  };
}

/** The L1 proximal map with threshold `lambda * lr` on the named tensors (all when omitted). */
export function l1ProxMap(lambda: number, names?: readonly string[]): ProxMap {
  return { name: 'l1ProxMap', apply: (params, lr) => proxL1(params, lambda * lr, names) };
}
