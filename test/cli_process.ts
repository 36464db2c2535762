/**
 * The `fedslr` command as a child process, run from the sources: src/cli/main.ts bundled once
 * (src/util/source_bundle.ts) into node_modules/.cache, where its `../../package.json` is the
 * package's, as for dist/cli/main.js.
 */
import { bundleFromSource } from '../src/util/source_bundle.js';

export function cliScript(): Promise<string> {
  return bundleFromSource('src/cli/main.ts', 'fedslr-cli');
}
