/**
 * FedAvg with a downlink budget (`fedavg:downlink=f`, or `downlinkBytes=B`), the baseline for
 * FedSLR's `bytes` mode: the server averages as FedAvg does, then keeps the hard truncation of
 * each weight matrix's SVD that `budgetStep` picks for the budget (same accounting: one client's
 * encoded download within B bytes or f of the dense download). That truncated model is the
 * global model: what the server sends (as factors where they are smaller), evaluates and starts
 * the next round from. The dense mean is not kept.
 */
import { decodeParams } from '../codec/params.js';
import { denseParams } from '../codec/wire.js';
import type { ParamArrays } from '../tensor/params.js';
import { meanOfSum, weightedMean } from './common.js';
import { type FedSLRServer, factoredDownload, fedslrServerCodec } from './fedslr.js';
import { budgetStep, type DownlinkBudget } from './svt_modes.js';
import type { AlgorithmContext, Download, ServerPart, ServerStats } from './types.js';

/** The truncated global model and the factors its matrices are sent as (no dual, no hints). */
export type BudgetedGlobal = Pick<FedSLRServer, 'global' | 'factors' | 'hints'>;

export function downlinkBudgetServer(
  ctx: AlgorithmContext,
  weighted: boolean,
  budget: DownlinkBudget,
): ServerPart<BudgetedGlobal> {
  const { spec } = ctx.model;
  const mode = { mode: 'bytes' as const, ...budget };
  const truncated = (
    global: ParamArrays,
    round: number,
  ): { server: BudgetedGlobal; stats: ServerStats } => {
    const step = budgetStep(spec, global, mode, round);
    return {
      server: { global: step.global, factors: step.factors, hints: {} },
      stats: { ranks: step.ranks },
    };
  };
  return {
    // FedSLR's server layout without D: W and the factors it is sent as.
    codec: fedslrServerCodec,
    initServer: (init) => truncated(init, 0).server,
    download: (server, round) => factoredDownload(spec, server, round),
    evalDownload: (server, round) => factoredDownload(spec, server, round),
    async aggregate(_server, round, uploads) {
      const sets = uploads.map((u) => decodeParams(u.upload.params, spec));
      const weights = uploads.map((u) => (weighted ? u.upload.numSamples : 1));
      return truncated(weightedMean(sets, weights), round + 1);
    },
    ...(weighted
      ? {}
      : {
          aggregateSum: async (_server, round, total) => truncated(meanOfSum(total), round + 1),
        }),
    global: (server) => server.global,
  };
}

/** The download with its low-rank factors multiplied out (what the client trains from). */
export function denseDownload(ctx: AlgorithmContext, down: Download): Download {
  return { ...down, params: denseParams(decodeParams(down.params, ctx.model.spec)) };
}
