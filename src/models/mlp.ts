import * as tf from '@tensorflow/tfjs-core';
import type { InputShape, Model } from './model.js';
import { checkInput, dense, SpecBuilder } from './model.js';

/** Multi-layer perceptron on flattened inputs: dense + ReLU per hidden size, then dense classes. */
export function mlp(
  inputShape: InputShape,
  classes: number,
  hidden: readonly number[] = [200, 200],
): Model {
  const b = new SpecBuilder();
  const din = inputShape[0] * inputShape[1] * inputShape[2];
  const sizes = [din, ...hidden];
  hidden.forEach((h, i) => {
    b.dense(`fc${i + 1}`, sizes[i]!, h, true);
  });
  b.dense('out', sizes[sizes.length - 1]!, classes, true);
  const model: Model = {
    name: 'mlp',
    spec: b.spec,
    inputShape,
    classes,
    init: (rng) => b.init(rng),
    forward(params, x) {
      checkInput(model, x);
      return tf.tidy(() => {
        let y = tf.reshape(x, [x.shape[0], din]) as tf.Tensor2D;
        hidden.forEach((_, i) => {
          y = tf.relu(dense(y, params, `fc${i + 1}`));
        });
        return dense(y, params, 'out');
      });
    },
  };
  return model;
}
