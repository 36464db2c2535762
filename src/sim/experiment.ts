/** One experiment end to end: set up, simulate, write the run directory. */
import type { RunConfig } from './config.js';
import type { RunEvent } from './events.js';
import { checkFreshDir, RunDir, type RunSummary, summarizeRun } from './rundir.js';
import { setup } from './setup.js';
import { initialState, simulate } from './simulate.js';

export interface ExperimentOptions {
  outDir: string;
  onEvent?: (e: RunEvent) => void;
}

export async function runExperiment(
  config: RunConfig,
  opts: ExperimentOptions,
): Promise<RunSummary> {
  checkFreshDir(opts.outDir);
  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const { sim, info } = await setup(config);
  const dir = new RunDir(opts.outDir);
  dir.writeConfig(config, {
    backend: info.backend,
    trainSamples: info.trainSamples,
    testSamples: info.testSamples,
  });
  const st = initialState(sim);
  for await (const e of simulate(sim, st, now)) {
    if (e.type === 'eval') dir.addEval(e.record, e.clients);
    opts.onEvent?.(e);
  }
  const summary = summarizeRun(sim.algorithm.name, dir.records, st.round, now());
  dir.writeSummary(summary);
  return summary;
}
