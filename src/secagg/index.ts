export { SecAggClient, type SecAggClientOptions } from './client.js';
export { SecAggError } from './errors.js';
export type {
  AdvertiseKeys,
  ForwardedShares,
  MaskedInput,
  NeighbourKeys,
  SharedKeys,
  UnmaskRequest,
  UnmaskResponse,
} from './messages.js';
export {
  degreeFor,
  minimumCohort,
  SECURE_AGGREGATION_DEFAULTS,
  type SecureAggregationOptions,
  secureAggregationSchema,
  thresholdFor,
} from './options.js';
export type { SecAggParams } from './params.js';
export {
  dequantizeSum,
  type QuantizationOptions,
  quantizationStep,
  quantize,
  sumErrorBound,
} from './quantize.js';
export {
  type Refusal,
  type SecAggResult,
  SecAggServer,
  type SecAggServerOptions,
} from './server.js';
