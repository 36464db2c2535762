/**
 * A worker thread of the client pool (executor.ts): sets up the same simulation as the main
 * thread (same config, so the same data, model and initial values), then trains and evaluates
 * the clients it is handed.
 */
import { parentPort } from 'node:worker_threads';
import type { ParamArrays, Params } from '../tensor/params.js';
import { disposeParams, fromArrays } from '../tensor/params.js';
import { evalClient, sentParams, trainClient } from './client_work.js';
import type { FromWorker, ToWorker } from './executor.js';
import { setup } from './setup.js';
import type { Simulation } from './simulate.js';

const port = parentPort;
if (!port) throw new Error('worker.ts must run in a worker thread');

let sim: Simulation | undefined;
let global:
  | { round: number; arrays: ParamArrays | undefined; tensors: Params | undefined }
  | undefined;

function reply(m: FromWorker): void {
  port!.postMessage(m);
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'init':
      sim = (await setup(m.config, { clients: m.clients })).sim;
      return reply({ type: 'ready' });
    case 'train':
      return reply({ type: 'trained', id: m.id, outcome: await trainClient(sim!, m.task) });
    case 'global': {
      if (global?.tensors) disposeParams(global.tensors);
      const arrays = sentParams(sim!, m.download);
      global = {
        round: m.round,
        arrays,
        tensors: m.evalGlobal && arrays ? fromArrays(arrays) : undefined,
      };
      return;
    }
    case 'eval':
      return reply({
        type: 'evaluated',
        id: m.id,
        row: await evalClient(
          sim!,
          m.client,
          global!.round,
          global!.arrays,
          global!.tensors,
          m.state,
        ),
      });
  }
}

// Messages are handled one at a time, in order.
let queue = Promise.resolve();
port.on('message', (m: ToWorker) => {
  queue = queue.then(() =>
    handle(m).catch((err: Error) =>
      reply({
        type: 'error',
        id: 'id' in m ? m.id : undefined,
        message: err.message,
        stack: err.stack,
      }),
    ),
  );
});
