import { cnn } from './cnn.js';
import { mlp } from './mlp.js';
import type { InputShape, Model } from './model.js';
import { resnet8gn, resnet18gn } from './resnet.js';

export type { InputShape, Model } from './model.js';
export { cnn, mlp, resnet8gn, resnet18gn };

export const MODEL_NAMES = ['mlp', 'cnn', 'resnet8gn', 'resnet18gn'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface ModelOptions {
  inputShape: InputShape;
  classes: number;
  /** Hidden layer sizes, for `mlp` only. */
  hidden?: readonly number[];
}

export function createModel(name: ModelName, opts: ModelOptions): Model {
  switch (name) {
    case 'mlp':
      return mlp(opts.inputShape, opts.classes, opts.hidden);
    case 'cnn':
      return cnn(opts.inputShape, opts.classes);
    case 'resnet8gn':
      return resnet8gn(opts.inputShape, opts.classes);
    case 'resnet18gn':
      return resnet18gn(opts.inputShape, opts.classes);
    default:
      throw new Error(`model: expected one of ${MODEL_NAMES.join(', ')}, got '${String(name)}'`);
  }
}
