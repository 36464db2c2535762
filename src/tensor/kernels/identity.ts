/**
 * Identity and same-type Cast for the wasm backend without copying. tfjs clones every tensor it
 * saves for the backward pass (Identity), and `tf.moments` casts float32 to float32; the built-in
 * wasm kernels copy the data each time, where the cpu backend shares it. Tensors are immutable,
 * so the output shares the input's buffer (reference-counted, as the wasm Reshape kernel does).
 * The built-in Cast to bool also stores the low byte of each value (-2.5 becomes 254, 4 stays 4);
 * here it is 1 for every non-zero value, as on cpu.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { CastAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { builtinKernels } from './wasm.js';

function share(backend: BackendWasm, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

const identity: KernelFunc = ({ inputs, backend }) =>
  share(backend as BackendWasm, (inputs as { x: TensorInfo }).x);

const cast: KernelFunc = (args) => {
  const { x } = args.inputs as { x: TensorInfo };
  const { dtype } = args.attrs as unknown as CastAttrs;
  const backend = args.backend as BackendWasm;
  if (x.dtype === dtype) return share(backend, x);
  if (dtype === 'bool' && x.dtype !== 'string') {
    const out = backend.makeOutput(x.shape, 'bool');
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  const builtin = builtinKernels.get('Cast');
  if (!builtin) throw new Error('Cast (wasm): the built-in kernel was not saved');
  return builtin.kernelFunc(args);
};

export const identityConfig: KernelConfig = {
  kernelName: 'Identity',
  backendName: 'wasm',
  kernelFunc: identity,
};

export const castConfig: KernelConfig = {
  kernelName: 'Cast',
  backendName: 'wasm',
  kernelFunc: cast,
};
