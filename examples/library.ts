/**
 * fedslr as a library: validate a config, run it into a run directory, and follow its progress
 * events. test/library_example.test.ts type-checks this file and runs it on a tiny config.
 */
import { type ConfigInput, type ExperimentEvent, parseConfig, runExperiment } from 'fedslr/node';

export async function trainAndReport(input: ConfigInput, outDir: string): Promise<string[]> {
  // Fills in every default and throws a ConfigError naming each bad key.
  const config = parseConfig(input);
  const lines: string[] = [];
  const onEvent = (e: ExperimentEvent) => {
    // Rounds are numbered from 0; an evaluation's round is the number of rounds done.
    if (e.type === 'round-end')
      lines.push(`round ${e.round + 1}: train loss ${e.train_loss.toFixed(3)}`);
    if (e.type === 'eval') {
      const { global, personal } = e.record;
      lines.push(
        `after ${e.record.round} rounds: global ${global?.acc}, personal ${personal?.acc}`,
      );
    }
  };
  const summary = await runExperiment(config, { outDir, onEvent });
  lines.push(`done: ${summary.rounds} rounds in ${summary.time_s.toFixed(1)} s`);
  return lines;
}
