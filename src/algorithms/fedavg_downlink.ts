/**
 * FedAvg with a downlink budget (`fedavg:downlink=f`, or `downlinkBytes=B`), the baseline for
 * FedSLR's `bytes` mode: the server averages as FedAvg does, then keeps the hard truncation of
 * each weight matrix's SVD that `budgetStep` picks for the budget (same accounting: one client's
 * encoded download within B bytes or f of the dense download). That truncated model is the
 * global model: what the server sends (as factors where they are smaller), evaluates and starts
 * the next round from. The dense mean is not kept.
 */
import { decodeWire, denseWire, weightedMean } from './common.js';
import { decodeLowRank, factoredDownload } from './fedslr.js';
import { budgetStep, type DownlinkBudget } from './svt_modes.js';
import type { Algorithm, AlgorithmContext, Download, ServerState } from './types.js';

export function downlinkBudgetServer(
  ctx: AlgorithmContext,
  weighted: boolean,
  budget: DownlinkBudget,
): Pick<Algorithm, 'initServer' | 'download' | 'aggregate'> {
  const { spec } = ctx.model;
  const mode = { mode: 'bytes' as const, ...budget };
  const truncated = (global: Parameters<typeof budgetStep>[1], round: number) => {
    const step = budgetStep(spec, global, mode, round);
    const server: ServerState = { global: step.global, tensors: { factors: step.factors } };
    return { server, stats: { ranks: step.ranks } };
  };
  return {
    initServer: (init) => truncated(init, 0).server,
    download: (server, round) => factoredDownload(spec, server, round),
    aggregate(_server, round, uploads) {
      const sets = uploads.map((u) => decodeWire(u.upload.params));
      const weights = uploads.map((u) => (weighted ? u.upload.numSamples : 1));
      return truncated(weightedMean(sets, weights), round + 1);
    },
  };
}

/** The download with its low-rank factors multiplied out (what the client trains from). */
export function denseDownload(ctx: AlgorithmContext, down: Download): Download {
  const { spec } = ctx.model;
  return {
    ...down,
    params: denseWire(decodeWire(down.params, (k, t) => decodeLowRank(spec, k, t))),
  };
}
