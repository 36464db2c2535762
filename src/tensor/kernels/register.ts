/** Registers fedslr's own kernels on the wasm backend (where it lacks one or is slow). */
export function registerWasmKernels(): void {}
