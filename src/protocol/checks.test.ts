import { describe, expect, it } from 'vitest';
import type { Upload } from '../algorithms/types.js';
import type { ParamSpec } from '../tensor/params.js';
import { uploadProblem } from './checks.js';

const spec: ParamSpec = [
  { name: 'w', shape: [2, 3], role: 'dense' },
  { name: 'b', shape: [3], role: 'bias' },
];
const ok = (): Upload => ({
  round: 4,
  params: {
    w: { kind: 'dense', shape: [2, 3], data: new Float32Array(6) },
    b: { kind: 'dense', shape: [3], data: new Float32Array(3) },
  },
  numSamples: 10,
  trainLoss: 0.5,
  trainAcc: 0.9,
});

describe('upload checks', () => {
  it('accepts an upload of the sent tensors with their shapes and finite values', () => {
    expect(uploadProblem(ok(), 4, ['w', 'b'], spec)).toBeNull();
  });

  it('names what is wrong: round, tensor names, shapes, sizes, non-finite values, extras', () => {
    expect(uploadProblem(ok(), 5, ['w', 'b'], spec)).toBe('answers round 4, not 5');
    expect(uploadProblem(ok(), 4, ['w'], spec)).toBe('sends tensors [w, b], expected [w]');
    const badShape = ok();
    badShape.params['b'] = { kind: 'dense', shape: [4], data: new Float32Array(4) };
    expect(uploadProblem(badShape, 4, ['w', 'b'], spec)).toMatch(/^'b' has shape \[4\]/);
    const short = ok();
    short.params['w'] = { kind: 'dense', shape: [2, 3], data: new Float32Array(5) };
    expect(uploadProblem(short, 4, ['w', 'b'], spec)).toMatch(/^'w' has shape \[2,3\] or sizes/);
    const inf = ok();
    inf.params['b'] = { kind: 'dense', shape: [3], data: Float32Array.from([0, Infinity, 0]) };
    expect(uploadProblem(inf, 4, ['w', 'b'], spec)).toBe("'b' has a value that is not finite");
    const extra = ok();
    extra.extra = { delta: { v: { shape: [3], data: new Float32Array(3) } } };
    expect(uploadProblem(extra, 4, ['w', 'b'], spec)).toBe(
      "extra 'delta': 'v' is not a tensor of the model",
    );
    const count = ok();
    count.numSamples = -1;
    expect(uploadProblem(count, 4, ['w', 'b'], spec)).toBe('numSamples -1 is not a count');
  });
});
