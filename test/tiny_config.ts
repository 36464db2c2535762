/** The smallest run the CLI tests start: 3 clients, one round of a tiny mlp on embedded MNIST. */
export const tiny = {
  seed: 1,
  rounds: 1,
  evalEvery: 1,
  clients: { count: 3, sampling: { kind: 'count', k: 2 } },
  data: { dataset: 'mnist', partition: { kind: 'iid' }, testPerClient: 20 },
  model: { name: 'mlp', hidden: [8] },
  train: { backend: 'wasm', epochs: 1, batchSize: 100 },
  runtime: { workers: 1 },
};
