/**
 * The trained models of a run, read back from its newest good checkpoint (a finished run's last
 * checkpoint is at its final round): the global model, its low-rank factors, and any client's
 * personal model. Used by `fedslr export`.
 */
import { join } from 'node:path';
import { decodeClientState } from '../codec/state.js';
import { personalModelOf, sentParams } from '../runtime/host.js';
import type { ParamArrays, ParamSpec } from '../tensor/params.js';
import { InputError } from '../util/errors.js';
import { latestCheckpoint } from './checkpoint.js';
import { parseConfig, type RunConfig } from './config.js';
import { readRunConfig } from './experiment.js';
import { setup } from './setup.js';

export interface Factors {
  rows: number;
  cols: number;
  rank: number;
  /** rows x rank, row-major: U sqrt(S). */
  left: Float32Array;
  /** rank x cols, row-major: sqrt(S) V^T. */
  right: Float32Array;
}

export interface FinalState {
  config: RunConfig;
  /** The round the state is from (the run's last round when it finished). */
  round: number;
  modelName: string;
  spec: ParamSpec;
  inputShape: readonly [number, number, number];
  classes: number;
  numClients: number;
  /** The global model (absent for algorithms without one). */
  global?: ParamArrays;
  /** Low-rank factors of the global model's matrices that are sent factored. */
  factors: Record<string, Factors>;
  /** Client `client`'s personal model; null when the algorithm has none. */
  personal(client: number): Promise<ParamArrays | null>;
}

export async function readFinal(runDir: string): Promise<FinalState> {
  const config = parseConfig(readRunConfig(runDir), `config of '${runDir}'`);
  const ck = latestCheckpoint(runDir);
  const { sim } = await setup(config);
  const { algorithm } = sim;
  const server = algorithm.server.codec.fromRecord(ck.server, join(ck.dir, 'server.msgpack'));
  // The factors are those of the evaluation download: what clients were sent.
  const download = algorithm.server.evalDownload(server, ck.meta.round);
  const factors: Record<string, Factors> = {};
  for (const [name, t] of Object.entries(download.params)) {
    if (t.kind === 'lowrank')
      factors[name] = { rows: t.rows, cols: t.cols, rank: t.rank, left: t.left, right: t.right };
  }
  const hasState = new Set(ck.meta.clients);
  return {
    config,
    round: ck.meta.round,
    modelName: sim.model.name,
    spec: sim.model.spec,
    inputShape: sim.model.inputShape,
    classes: sim.model.classes,
    numClients: config.clients.count,
    global: algorithm.hasGlobal ? algorithm.server.global(server) : undefined,
    factors,
    async personal(client) {
      if (!Number.isInteger(client) || client < 0 || client >= config.clients.count) {
        throw new InputError(
          `client ${client} does not exist: the run has clients 0..${config.clients.count - 1}`,
        );
      }
      if (!algorithm.hasPersonal) return null;
      const where = `${ck.dir} client ${client}`;
      const state = hasState.has(client)
        ? algorithm.client.codec.fromRecord(decodeClientState(ck.clientBytes(client), where), where)
        : algorithm.client.initClient(client, sim.init);
      return personalModelOf(
        sim,
        sim.clients[client]!,
        ck.meta.round,
        sentParams(sim, download),
        state,
      );
    },
  };
}
