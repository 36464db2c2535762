import * as tf from '@tensorflow/tfjs-core';
import type { InputShape, Model } from './model.js';
import { checkInput, conv, dense, SpecBuilder } from './model.js';

/**
 * The CNN of the FedAvg paper (McMahan et al. 2017): 5x5 conv 32 + ReLU + 2x2 max-pool, 5x5 conv
 * 64 + ReLU + 2x2 max-pool, dense 512 + ReLU, dense classes; 'same' padding. 1,663,370
 * parameters for 28x28x1 inputs and 10 classes.
 */
export function cnn(inputShape: InputShape, classes: number): Model {
  const [h, w, c] = inputShape;
  const flat = Math.floor(h / 4) * Math.floor(w / 4) * 64;
  const b = new SpecBuilder();
  b.conv('conv1', 5, c, 32, true);
  b.conv('conv2', 5, 32, 64, true);
  b.dense('fc1', flat, 512, true);
  b.dense('fc2', 512, classes, true);
  const model: Model = {
    name: 'cnn',
    spec: b.spec,
    inputShape,
    classes,
    init: (rng) => b.init(rng),
    forward(params, x) {
      checkInput(model, x);
      return tf.tidy(() => {
        let y = tf.maxPool(tf.relu(conv(x, params, 'conv1', 1, 2)), 2, 2, 'valid');
        y = tf.maxPool(tf.relu(conv(y, params, 'conv2', 1, 2)), 2, 2, 'valid');
        const f = tf.relu(dense(tf.reshape(y, [x.shape[0], flat]), params, 'fc1'));
        return dense(f, params, 'fc2');
      });
    },
  };
  return model;
}
