import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';

export const command: Command = {
  name: 'export',
  summary: 'Export a run’s final model as safetensors (PyTorch layout)',
  help: `Usage: fedslr export <run-dir> (--client <i> | --global | --factors) [--out FILE]

Writes a run's final model as a safetensors file, in PyTorch's layouts and names. The model is
that of the run's newest usable checkpoint; the command prints its round, and says so on stderr
when the run is unfinished (that round is below the configured rounds).
Layouts and names
(conv weight [out, in, kh, kw], dense weight [out, in]; \`.kernel\` -> \`.weight\`):
  --client <i>   client i's personal model (FedSLR: global + personal part)
  --global       the global model
  --factors      the global model with its low-rank weight matrices as factors
                 <layer>.weight_u [rows, r] and <layer>.weight_v [r, cols]
  --out FILE     where to write (default <run-dir>/client-<i>.safetensors,
                 <run-dir>/global.safetensors or <run-dir>/global-factors.safetensors)

The tensor names and layouts, the NHWC input flattening of the cnn's first dense layer, and
how to load the file in PyTorch are documented in src/report/EXPORT.md.

Exit codes: 0 written, 2 not a run directory, a run without final models, an unknown client.`,
  async run(argv) {
    let parsed: ReturnType<typeof parse>;
    try {
      parsed = parse(argv);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const { values, positionals } = parsed;
    if (positionals.length !== 1) {
      throw new UsageError(`expected one run directory, got ${positionals.length}`);
    }
    const dir = positionals[0]!;
    const chosen = [values.client !== undefined, values.global, values.factors].filter(Boolean);
    if (chosen.length !== 1) {
      throw new UsageError('choose exactly one of --client <i>, --global, --factors');
    }
    if (values.client !== undefined && !/^\d+$/.test(values.client)) {
      throw new UsageError(`--client expects a client index (0, 1, ...), got '${values.client}'`);
    }
    const client = Number(values.client ?? -1);
    const what =
      values.client !== undefined
        ? ({ kind: 'client', client } as const)
        : values.global
          ? ({ kind: 'global' } as const)
          : ({ kind: 'factors' } as const);
    const fileName =
      what.kind === 'client'
        ? `client-${client}.safetensors`
        : what.kind === 'global'
          ? 'global.safetensors'
          : 'global-factors.safetensors';
    const out = values.out ?? join(dir, fileName);
    const { exportRun } = await import('../../report/export_run.js');
    const info = await exportRun(dir, what, out);
    console.log(
      `export: ${out} (${info.tensors} tensors, ${(info.bytes / 1e6).toFixed(2)} MB), round ${info.round} of ${info.rounds}`,
    );
    if (info.round < info.rounds) {
      console.error(
        `fedslr export: the run is unfinished: exported round ${info.round} (its newest usable checkpoint) of ${info.rounds}; \`fedslr run --resume ${dir}\` finishes it`,
      );
    }
    return 0;
  },
};

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      client: { type: 'string' },
      global: { type: 'boolean' },
      factors: { type: 'boolean' },
      out: { type: 'string' },
    },
  });
}
