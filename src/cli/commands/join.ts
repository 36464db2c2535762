import type { Command } from '../command.js';
import { parseOptions, UsageError } from '../command.js';
import { intOption, secondsOption } from '../options.js';

export const command: Command = {
  name: 'join',
  summary: 'Take part in a federation served by `fedslr serve`, as one client',
  help: `Usage: fedslr join <ws://host:port> --client-id ID --token T
                   (--dataset NAME [--shard K/N] [--data-dir DIR]
                    | --data FILE [--test-data FILE | --test-share F])
                   [--state-dir DIR] [--ca FILE] [--backend NAME]
                   [--max-retries N] [--retry-max S] [--quiet]

Connects to a \`fedslr serve\` server as client ID, gets the run's task, trains when drawn and
answers evaluations until the server says the run is done (exit 0). The client's data is either
its shard of the named dataset, partitioned as the simulator does for the run's seed and
partition (the server sends them), so a fault-free federation computes what \`fedslr run\`
computes; or its own files (--data), normalized as the run's dataset is.
Its personal state stays on this machine, in --state-dir, and survives a restart: a state is
made committed only when the server's commit says its upload was aggregated.
When the connection drops it reconnects, waiting 0.25 s, 0.5 s, 1 s ... up to --retry-max,
each wait scaled by a seeded jitter in [0.5, 1].

Options:
  --client-id ID     this client's id in the run (0 .. clients.count - 1). Required.
  --token T          this client's token (as in the server's tokens file); the environment
                     variable FEDSLR_TOKEN is read when --token is absent (not shown by ps).
  --dataset NAME     the dataset this client holds a shard of; must be the run's
  --shard K/N        the shard to hold; must be ID/clients.count (the default), a check that
                     client and server agree
  --data-dir DIR     where the dataset's files are looked up first
  --data FILE        this client's own images and labels instead of a shard: an IDX pair
                     (FILE the images, unsigned bytes [N, H, W] or [N, H, W, C]; the labels the
                     file of the same name with 'labels' for 'images' and idx1 for idx3, as
                     train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz), a .npy pair
                     named the same way (uint8 or float 0..1 pixels, integer labels), or one
                     .safetensors file with the tensors 'images' and 'labels'. [H, W, C] must
                     be the run's model input and the labels in [0, classes).
  --test-data FILE   this client's test set, in the same forms (default: held out of --data)
  --test-share F     share of each class of --data held out for testing when there is no
                     --test-data, drawn from the run's seed and the client id (default 0.2)
  --state-dir DIR    where the client's state is kept (default fedslr-client-<ID>); a
                     directory of another run is refused
  --ca FILE          PEM certificate(s) to trust for a wss:// server with a self-signed one
  --backend NAME     tfjs backend: auto, wasm, cpu (default auto)
  --max-retries N    failed connections in a row before giving up (default 10)
  --retry-max S      the longest wait between connections (default 10)
  --quiet            no progress output

Exit codes: 0 the run is done, 1 refused by the server (the message says why: 4001 no token,
4002 another protocol version, 4003 id and token do not match), the run failed on the server,
or the server could not be reached; 2 bad arguments or data.`,
  async run(argv) {
    const { values, positionals } = parseOptions(argv, OPTIONS);
    if (positionals.length !== 1)
      throw new UsageError(
        `expected the server's ws:// URL, got ${positionals.length} argument(s)`,
      );
    const url = positionals[0]!;
    if (!/^wss?:\/\//.test(url)) throw new UsageError(`'${url}' is not a ws:// or wss:// URL`);
    if (values['client-id'] === undefined) throw new UsageError('--client-id ID is required');
    const client = intOption('client-id', values['client-id'], 0, 0);
    const token = values.token ?? process.env.FEDSLR_TOKEN;
    if (!token) throw new UsageError('--token T (or FEDSLR_TOKEN) is required');
    if ((values.dataset === undefined) === (values.data === undefined))
      throw new UsageError('give either --dataset NAME or --data FILE');
    if (values.data !== undefined) {
      if (values.shard !== undefined || values['data-dir'] !== undefined)
        throw new UsageError('--shard and --data-dir go with --dataset, not --data');
    } else if (values['test-data'] !== undefined || values['test-share'] !== undefined)
      throw new UsageError('--test-data and --test-share go with --data, not --dataset');
    if (values['test-data'] !== undefined && values['test-share'] !== undefined)
      throw new UsageError('--test-share holds a test set out of --data; --test-data gives one');
    const { DEFAULT_TEST_SHARE } = await import('../../data/own.js');
    const testShare =
      values['test-share'] === undefined ? DEFAULT_TEST_SHARE : Number(values['test-share']);
    if (!(testShare > 0 && testShare < 1))
      throw new UsageError(
        `--test-share: expected a number between 0 and 1, got '${values['test-share']}'`,
      );
    const shard = values.shard === undefined ? undefined : parseShard(values.shard);
    const { BACKEND_NAMES } = await import('../../tensor/backend.js');
    const backend = values.backend ?? 'auto';
    if (!(BACKEND_NAMES as readonly string[]).includes(backend))
      throw new UsageError(
        `--backend: expected one of ${BACKEND_NAMES.join(', ')}, got '${backend}'`,
      );
    const quiet = Boolean(values.quiet);
    const { joinFederation } = await import('../../net/client.js');
    const { readTextFile } = await import('../../util/fs.js');
    const say = (line: string) => {
      if (!quiet) process.stderr.write(`client ${client}: ${line}\n`);
    };
    try {
      await joinFederation({
        url,
        client,
        token,
        dataset: values.dataset,
        dataDir: values['data-dir'],
        own:
          values.data === undefined
            ? undefined
            : { file: values.data, testFile: values['test-data'], testShare },
        shard,
        stateDir: values['state-dir'] ?? `fedslr-client-${client}`,
        ca: values.ca === undefined ? undefined : readTextFile(values.ca, 'CA certificate'),
        backend: backend as (typeof BACKEND_NAMES)[number],
        maxRetries: intOption('max-retries', values['max-retries'], 10, 0),
        retryBaseMs: 250,
        retryMaxMs: secondsOption('retry-max', values['retry-max'], 10) * 1000,
        log: (e) => {
          if (e.type === 'connected') say(`connected to ${e.url}`);
          else if (e.type === 'welcome')
            say(
              `joined a run of ${e.clients} clients: ${e.trainSamples} training and ${e.testSamples} test samples here`,
            );
          else if (e.type === 'message' && e.kind !== 'welcome')
            say(`${e.kind}${e.round === undefined ? '' : ` (round ${e.round})`}`);
          else if (e.type === 'trained')
            say(
              `sent the ${e.secure ? 'keys (a secure round)' : 'update'} of round ${e.round} after ${e.seconds.toFixed(2)} s of training`,
            );
          else if (e.type === 'closed')
            say(`connection closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`);
          else if (e.type === 'retry')
            say(`reconnecting in ${(e.inMs / 1000).toFixed(2)} s (failure ${e.failures})`);
        },
      });
    } catch (err) {
      const { JoinError } = await import('../../net/client.js');
      if (!(err instanceof JoinError)) throw err;
      console.error(`fedslr join: ${err.message}`);
      return 1;
    }
    say('the run is done');
    return 0;
  },
};

function parseShard(text: string): { index: number; of: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--shard: expected K/N (e.g. 3/10), got '${text}'`);
  return { index: Number(m[1]), of: Number(m[2]) };
}

const OPTIONS = {
  'client-id': { type: 'string' },
  token: { type: 'string' },
  dataset: { type: 'string' },
  data: { type: 'string' },
  'test-data': { type: 'string' },
  'test-share': { type: 'string' },
  shard: { type: 'string' },
  'data-dir': { type: 'string' },
  'state-dir': { type: 'string' },
  ca: { type: 'string' },
  backend: { type: 'string' },
  'max-retries': { type: 'string' },
  'retry-max': { type: 'string' },
  quiet: { type: 'boolean' },
} as const;
