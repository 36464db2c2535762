/**
 * The `fedslr` command as a child process, run from the sources: src/cli/main.ts bundled once
 * with esbuild (packages stay external, except tfjs-core's gradient files, which Node cannot
 * import; see src/tensor/gradients.ts) into node_modules/.cache, named by content. Two levels
 * below the root, as dist/cli/main.js is, so its `../../package.json` is the package's.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { writeFileAtomic } from '../src/util/fs.js';

const root = fileURLToPath(new URL('..', import.meta.url));

export async function cliScript(): Promise<string> {
  const result = await build({
    entryPoints: [`${root}src/cli/main.ts`],
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
  const out = `${root}node_modules/.cache/fedslr-cli-${hash}.mjs`;
  if (!existsSync(out)) writeFileAtomic(out, code);
  return out;
}
