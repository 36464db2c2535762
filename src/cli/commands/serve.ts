import { appendFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { ClientData } from '../../data/clients.js';
import type { RunConfig } from '../../sim/config.js';
import type { ExperimentEvent, FleetOptions } from '../../sim/experiment.js';
import type { Command } from '../command.js';
import { parseOptions, UsageError } from '../command.js';
import { intOption, secondsOption } from '../options.js';

export const command: Command = {
  name: 'serve',
  summary: 'Serve a federation over WebSocket: clients join with `fedslr join`',
  help: `Usage: fedslr serve <config.yaml|json> --tokens FILE [--port N] [--host H] [--out DIR]
                    [--tls-cert FILE --tls-key FILE] [--web DIR]
                    [--deadline S] [--min-clients N] [--min-participants N] [--redraws N]
                    [--set key=value ...] [--quiet]
       fedslr serve --resume <run-dir> --tokens FILE [--port N] ... [--set rounds=N]

Runs the experiment a config describes with clients in other processes or machines
(\`fedslr join\`), one WebSocket each. It waits for --min-clients authenticated clients before
each round, and runs the same round loop as \`fedslr run\` and writes the same run directory (metrics.jsonl,
clients.jsonl, summary.json, report.html, checkpoints/ with the server's state) plus
federation.jsonl, one line per connection, disconnection (with the bytes it carried), refusal
(with its reason), client left out of a round (with why), round (clients aggregated, training
and server seconds), missed commit and clients left out of an evaluation.

Each round draws among the connected clients (the config's sampling, by index into them, so a
fault-free run with every client connected draws what the simulator draws). A drawn client that
does not answer before the deadline, or disconnects, is left out of the round. Evaluations ask
every client of the run (reconnecting ones included) and wait up to the deadline; clients
without metrics then are left out: metrics.jsonl summarizes the clients that answered and says
how many (clients_evaluated, only when fewer than all), clients.jsonl has null for the others.

Every round is checkpointed before its commit is sent (with, for each client, the last commit
that aggregated its upload), since clients commit every round: a server killed mid-run
continues with --resume from its last checkpoint, and its clients, which keep reconnecting,
carry on. Killed before a round's checkpoint, it runs the round again (no client committed it);
killed after, it sends the round's commit again to each aggregated client whose hello says it
did not apply it, and makes the round's evaluation if it was not made. So a client's state and
the server's never disagree on which rounds aggregated it.

The server reads no data: the model's input shape and classes come from the dataset's name
(fedslr knows each dataset's), the clients' ids from clients.count; the clients' data and
personal state stay with the clients.

Options:
  --tokens FILE      client tokens, one '<client id> <token>' line each (tokens of at least 16
                     characters; '#' starts a comment line). Required. Kept only as SHA-256
                     digests, compared in constant time.
  --port N           port to listen on (default 8765; 0 picks a free one)
  --host H           address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --tls-cert FILE    PEM certificate (chain) and private key: serve wss:// (TLS); clients of
  --tls-key FILE     a self-signed certificate trust it with fedslr join --ca FILE
  --web DIR          the browser client's page to serve at / (default: the one built with
                     fedslr, dist/web; see the README's "Browser clients"), with each
                     client's demo shard at /shard/ID (its token required)
  --resume DIR       continue a served run from its newest checkpoint (listen on the same
                     --port so that its clients find it again)
  --out DIR          run directory (default runs/<config>-<algorithm>-<time>-served); must be empty
  --deadline S       seconds a drawn client has to answer a round, and clients an evaluation
                     or a commit (default 300)
  --min-clients N    connected clients to wait for before each round (default: clients.count)
  --min-participants N
                     usable uploads a round needs (default 1); with fewer the round is drawn
                     again (see --redraws)
  --redraws N        how often a round with too few usable uploads is drawn again, each time
                     among the connected clients that did not fail it, from a stream of the
                     seed, round and attempt (default 3); then the run stops with a message
                     saying how many uploads arrived, how many were needed and why the others
                     are missing
  --hello-timeout S  seconds a new connection has to authenticate (default 5)
  --heartbeat S      seconds between pings; a client that misses one while it owes nothing is
                     disconnected (default 30; 0: no pings)
  --set key=value    override a config value by its dot path (repeatable)
  --quiet            no progress output (the listening address is still printed)

Refused connections are closed with code 4001 (no valid hello with a token in time), 4002
(another protocol version) or 4003 (id and token do not match); frames over 16 bytes per model
parameter (four dense copies) + 1 MiB close the connection with 1009. At the end clients are closed
with 4000 (done) or 4010 (the run failed). An aggregated client that does not confirm a commit
within the deadline is closed with 4011 and reconnects to get it again. The same port answers
GET /healthz (JSON), GET /metrics (Prometheus text format) and the browser page at / (with the
COOP/COEP headers that threaded wasm needs): open http://HOST:PORT/?client=ID&token=T to join.

Exit codes: 0 done, 1 failed while running, 2 bad config, tokens or arguments.`,
  async run(argv) {
    const { values, positionals } = parseOptions(argv, OPTIONS);
    const sets = values.set ?? [];
    if (values.resume !== undefined) {
      if (positionals.length > 0)
        throw new UsageError('--resume takes a run directory instead of a config file');
      if (values.out !== undefined)
        throw new UsageError('--resume continues in the run directory itself; drop --out');
    } else if (positionals.length !== 1)
      throw new UsageError(`expected one config file, got ${positionals.length}`);
    if (values.tokens === undefined) throw new UsageError('--tokens FILE is required');
    const port = intOption('port', values.port, 8765, 0);
    const deadline = secondsOption('deadline', values.deadline, 300);
    const helloTimeout = secondsOption('hello-timeout', values['hello-timeout'], 5);
    const heartbeat =
      values.heartbeat === '0' ? 0 : secondsOption('heartbeat', values.heartbeat, 30);
    const { loadConfig, applySet } = await import('../../sim/load_config.js');
    const { parseConfig } = await import('../../sim/config.js');
    const { FEDERATION_LOG, readRunConfig, resumeExperiment, runExperiment } = await import(
      '../../sim/experiment.js'
    );
    let config: RunConfig;
    if (values.resume !== undefined) {
      let raw = readRunConfig(values.resume);
      for (const s of sets) raw = applySet(raw, s);
      config = parseConfig(raw, `config of '${values.resume}'`);
    } else config = loadConfig(positionals[0]!, sets);
    // Every round is checkpointed before its commit whatever runtime.checkpointEvery says: the
    // server (net/server.ts) does it through FleetDurability.
    const minClients = intOption('min-clients', values['min-clients'], config.clients.count, 1);
    if (minClients > config.clients.count)
      throw new UsageError(
        `--min-clients ${minClients} is more than the run's ${config.clients.count} clients`,
      );
    if (config.data.partition.kind === 'file')
      throw new UsageError(
        "a served run cannot use a partition file yet (clients rebuild their shard from the config's seed)",
      );
    if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined))
      throw new UsageError('--tls-cert and --tls-key go together');
    const { readTextFile } = await import('../../util/fs.js');
    const tls =
      values['tls-cert'] === undefined || values['tls-key'] === undefined
        ? undefined
        : {
            cert: readTextFile(values['tls-cert'], 'TLS certificate'),
            key: readTextFile(values['tls-key'], 'TLS private key'),
          };
    const { TokenBook } = await import('../../net/tokens.js');
    const tokens = TokenBook.read(values.tokens);
    const known = tokens.clients().filter((c) => c < config.clients.count).length;
    if (known < minClients)
      throw new UsageError(
        `the tokens file has tokens for ${known} of the run's clients; --min-clients is ${minClients}`,
      );
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const name = basename(positionals[0] ?? '', extname(positionals[0] ?? ''));
    const outDir =
      values.resume ??
      values.out ??
      join('runs', `${name}-${config.algorithm.name}-${stamp}-served`);
    const { Progress, reportData } = await import('../progress.js');
    const { FederationServer, maxMessageBytes } = await import('../../net/server.js');
    const { defaultWebDir, webHandler } = await import('../../net/http.js');
    const webDir = values.web ?? defaultWebDir();
    const { taskOf } = await import('../../sim/config.js');
    const quiet = Boolean(values.quiet);
    let progress = quiet || values.resume ? undefined : new Progress(config.rounds, 0);
    const record = (e: object) =>
      appendFileSync(
        join(outDir, FEDERATION_LOG),
        `${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`,
      );
    const minParticipants = intOption('min-participants', values['min-participants'], 1, 1);
    const { DEFAULT_REDRAWS } = await import('../../sim/simulate.js');
    const redraws = intOption('redraws', values.redraws, DEFAULT_REDRAWS, 0);
    const onEvent = (e: ExperimentEvent) => {
      if (e.type === 'client-failed' || e.type === 'round-redraw') record(e);
      else if (e.type === 'round-end') {
        const { type, round, clients, train_s, server_s } = e;
        record({ type, round, clients, train_s, server_s });
      }
      if (e.type === 'data') reportData(e, quiet);
      else if (e.type === 'resumed') {
        record({ type: 'resumed', round: e.round, from: e.from });
        if (!quiet) {
          process.stderr.write(`fedslr serve: resuming ${outDir} at round ${e.round}\n`);
          progress = new Progress(e.rounds, e.round);
        }
      } else if (e.type !== 'checkpoint' && e.type !== 'store' && e.type !== 'fleet')
        progress?.on(e);
    };
    const fleet: FleetOptions = {
      minParticipants,
      redraws,
      fleet: async (sim, durable) => {
        const first = sim.clients[0]!;
        const server = await FederationServer.listen({
          host: values.host ?? '127.0.0.1',
          port,
          tokens,
          tls,
          task: taskOf(sim.config, first.shape, first.classes),
          data: {
            dataset: sim.config.data.dataset,
            partition: sim.config.data.partition,
            testPerClient: sim.config.data.testPerClient,
          },
          deadlineSeconds: deadline,
          helloSeconds: helloTimeout,
          heartbeatSeconds: heartbeat,
          maxPayload: maxMessageBytes(sim.model.spec),
          rounds: sim.config.rounds,
          minClients,
          saved: durable.saved,
          persist: (record) => {
            durable.persist(record);
            // A test hook (test/federation.test.ts): die between a round's checkpoint and its
            // commit, the moment a resumed server must send the commit again.
            if (process.env.FEDSLR_TEST_KILL_BEFORE_COMMIT === String(record.lastCommitted))
              process.kill(process.pid, 'SIGKILL');
          },
          http: webHandler({ dir: webDir, shard: demoShard(sim.config), tokens }),
          log: (e) => {
            record(e);
            if (e.type === 'listening')
              process.stderr.write(`fedslr serve: listening on ${e.url}\n`);
            else if (!quiet) process.stderr.write(`federation: ${describe(e)}\n`);
          },
        });
        await server.waitForClients(minClients);
        return server;
      },
    };
    const summary =
      values.resume !== undefined
        ? await resumeExperiment(values.resume, sets, onEvent, fleet)
        : await runExperiment(config, { outDir, onEvent, ...fleet });
    progress?.done();
    const { printSummary } = await import('./run.js');
    return printSummary(summary, outDir);
  },
};

/**
 * Each client's demo shard for the browser page: the run's dataset, split as the simulator splits
 * it, read on the first request for a shard (so a server nobody asks reads no data) and kept.
 */
function demoShard(config: RunConfig): (client: number) => Promise<ClientData | undefined> {
  let loaded: Promise<ClientData[]> | undefined;
  return async (client) => {
    loaded ??= import('../../sim/setup.js')
      .then(({ loadClients }) => loadClients(config))
      .then((l) => l.clients);
    return (await loaded)[client];
  };
}

function describe(e: import('../../net/server.js').FederationEvent): string {
  switch (e.type) {
    case 'listening':
      return `listening on ${e.url}`;
    case 'waiting':
      return `${e.connected} of ${e.needed} clients connected, waiting`;
    case 'connected':
      return `client ${e.client} connected from ${e.remote}`;
    case 'disconnected':
      return `client ${e.client} disconnected (${e.code}${e.reason ? `: ${e.reason}` : ''})`;
    case 'refused':
      return `refused ${e.remote} (${e.code}): ${e.reason}`;
    case 'rejected':
      return `client ${e.client}: refused a message: ${e.reason}`;
    case 'commit-unconfirmed':
      return `round ${e.round + 1}: no commit confirmation from client(s) ${e.clients.join(', ')}`;
    case 'eval-missing':
      return `evaluation after round ${e.round}: no metrics before the deadline from client(s) ${e.clients.join(', ')}, left out`;
  }
}

const OPTIONS = {
  tokens: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  out: { type: 'string' },
  deadline: { type: 'string' },
  'min-clients': { type: 'string' },
  'hello-timeout': { type: 'string' },
  heartbeat: { type: 'string' },
  'min-participants': { type: 'string' },
  redraws: { type: 'string' },
  set: { type: 'string', multiple: true },
  quiet: { type: 'boolean' },
  resume: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  web: { type: 'string' },
} as const;
