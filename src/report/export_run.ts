/** `fedslr export`: a run directory's final models (read by src/sim/final.ts) to a safetensors file. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readFinal } from '../sim/final.js';
import { packageVersion } from '../sim/rundir.js';
import { writeFileAtomic } from '../util/fs.js';
import { type ExportWhat, exportTensors } from './export.js';
import { ReportInputError } from './load.js';
import { encodeSafetensors } from './safetensors.js';

export interface ExportInfo {
  tensors: number;
  bytes: number;
  /** The round the exported state is from (the newest usable checkpoint's). */
  round: number;
  /** The rounds the run was configured for: more than `round` when it is unfinished. */
  rounds: number;
}

/** Writes `what` of the run in `dir` to `outFile`; throws an InputError naming what is missing. */
export async function exportRun(
  dir: string,
  what: ExportWhat,
  outFile: string,
): Promise<ExportInfo> {
  if (!existsSync(dir)) throw new ReportInputError(`'${dir}' does not exist`);
  if (!statSync(dir).isDirectory()) throw new ReportInputError(`'${dir}' is not a run directory`);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) {
    throw new ReportInputError(
      `'${dir}' is not a run directory: config.json is missing (written by \`fedslr run\`)`,
    );
  }
  const final = await readFinal(dir);
  const raw = JSON.parse(readFileSync(configPath, 'utf8')) as { fedslr?: { version?: string } };
  const { tensors, metadata } = await exportTensors(final, what, dir);
  const bytes = encodeSafetensors(tensors, {
    ...metadata,
    'fedslr.algorithm': final.config.algorithm.name,
    'fedslr.version': raw.fedslr?.version ?? packageVersion(),
    'fedslr.config': JSON.stringify(final.config),
  });
  writeFileAtomic(outFile, bytes);
  return {
    tensors: tensors.length,
    bytes: bytes.length,
    round: final.round,
    rounds: final.config.rounds,
  };
}
