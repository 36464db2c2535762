/**
 * Running a TypeScript entry from source in a new Node process or thread (tests, vite-node): it
 * is bundled with esbuild (a dev dependency, loaded only here) into the project's
 * node_modules/.cache, named by content, so concurrent test processes share one file and nothing
 * piles up. Packages stay external (loaded from node_modules), except tfjs-core's gradient
 * files, which Node cannot import (see src/tensor/gradients.ts). The bundle lies two levels below
 * the project root, as dist/cli/main.js does, so a `../../package.json` of it is the package's.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from './fs.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The path of `entry` (a path from the project root) bundled for Node as `<name>-<hash>.mjs`. */
export async function bundleFromSource(entry: string, name: string): Promise<string> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [join(root, entry)],
    write: false,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'error',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    plugins: [
      {
        name: 'packages-external',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@tensorflow/tfjs-core/dist/')
              ? undefined
              : { path: args.path, external: true },
          );
        },
      },
    ],
  });
  const code = result.outputFiles[0]!.contents;
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const out = join(root, 'node_modules', '.cache', `${name}-${hash}.mjs`);
  if (!existsSync(out)) writeFileAtomic(out, code);
  return out;
}
