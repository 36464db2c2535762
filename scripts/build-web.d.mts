import type { Metafile } from 'esbuild';

/** Bundles the browser client (src/web) into `outDir`; resolves with esbuild's metafile. */
export function buildWeb(outDir: string): Promise<Metafile>;
