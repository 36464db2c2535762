import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../tensor/params.js';
import type { InputShape, Model } from './model.js';
import { checkInput, conv, dense, groupNorm, SpecBuilder } from './model.js';

const GROUPS = 2;

interface Block {
  name: string;
  cin: number;
  cout: number;
  stride: number;
  shortcut: boolean;
}

/**
 * ResNet with GroupNorm(2 groups) in place of BatchNorm, for small images (FEDSLR.md "Models of
 * the paper"): 3x3 stem conv without max-pool, stages of basic blocks, 1x1 conv + GroupNorm
 * shortcut where the shape changes, global average pool, dense classifier without bias. Convs
 * carry no bias. Padding is symmetric, as in PyTorch.
 */
function resnetGN(
  name: string,
  inputShape: InputShape,
  classes: number,
  widths: readonly number[],
  blocksPerStage: number,
): Model {
  const b = new SpecBuilder();
  const stem = widths[0]!;
  b.conv('stem.conv', 3, inputShape[2], stem, false);
  b.groupNorm('stem.gn', stem);
  const blocks: Block[] = [];
  let cin = stem;
  widths.forEach((cout, s) => {
    for (let i = 0; i < blocksPerStage; i++) {
      const stride = i === 0 && s > 0 ? 2 : 1;
      const blk: Block = {
        name: `s${s + 1}.b${i + 1}`,
        cin,
        cout,
        stride,
        shortcut: stride !== 1 || cin !== cout,
      };
      b.conv(`${blk.name}.conv1`, 3, cin, cout, false);
      b.groupNorm(`${blk.name}.gn1`, cout);
      b.conv(`${blk.name}.conv2`, 3, cout, cout, false);
      b.groupNorm(`${blk.name}.gn2`, cout);
      if (blk.shortcut) {
        b.conv(`${blk.name}.short`, 1, cin, cout, false);
        b.groupNorm(`${blk.name}.short_gn`, cout);
      }
      blocks.push(blk);
      cin = cout;
    }
  });
  b.dense('fc', cin, classes, false);

  const block = (x: tf.Tensor4D, p: Params, blk: Block): tf.Tensor4D => {
    let y = tf.relu(
      groupNorm(conv(x, p, `${blk.name}.conv1`, blk.stride, 1), p, `${blk.name}.gn1`, GROUPS),
    );
    y = groupNorm(conv(y, p, `${blk.name}.conv2`, 1, 1), p, `${blk.name}.gn2`, GROUPS);
    const s = blk.shortcut
      ? groupNorm(conv(x, p, `${blk.name}.short`, blk.stride, 0), p, `${blk.name}.short_gn`, GROUPS)
      : x;
    return tf.relu(tf.add(y, s)) as tf.Tensor4D;
  };

  const model: Model = {
    name,
    spec: b.spec,
    inputShape,
    classes,
    init: (rng) => b.init(rng),
    forward(params, x) {
      checkInput(model, x);
      return tf.tidy(() => {
        let y = tf.relu(groupNorm(conv(x, params, 'stem.conv', 1, 1), params, 'stem.gn', GROUPS));
        for (const blk of blocks) y = block(y, params, blk);
        const pooled = tf.mean(y, [1, 2]) as tf.Tensor2D;
        return dense(pooled, params, 'fc');
      });
    },
  };
  return model;
}

/** The paper's ResNet-18 (11,220,032 parameters for 100 classes). */
export const resnet18gn = (inputShape: InputShape, classes: number): Model =>
  resnetGN('resnet18gn', inputShape, classes, [64, 128, 256, 512], 2);

/** A small ResNet for CPU work: three stages of one basic block (16/32/64 channels). */
export const resnet8gn = (inputShape: InputShape, classes: number): Model =>
  resnetGN('resnet8gn', inputShape, classes, [16, 32, 64], 1);
