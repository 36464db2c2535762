import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { UsageError } from '../cli/command.js';
import { run } from './step.js';

async function jsonOf(argv: string[]): Promise<Record<string, unknown>> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    expect(await run([...argv, '--json'])).toBe(0);
    return JSON.parse(String(log.mock.calls.at(-1)?.[0]));
  } finally {
    log.mockRestore();
  }
}

describe('bench step', () => {
  it('prints backend, model, batch, the median step time and the step count', async () => {
    const r = await jsonOf([
      ...['--model', 'mlp', '--batch', '8', '--steps', '3', '--warmup', '1', '--threads', '2'],
    ]);
    expect(r).toMatchObject({ backend: 'wasm', threads: 2, model: 'mlp', batch: 8, steps: 3 });
    expect(r.ms_per_step).toBeGreaterThan(0);
    expect(r.ratio).toBeUndefined();
  });

  it('times the same step on a second backend with --beside, in the same rounds', async () => {
    const r = await jsonOf([
      ...['--model', 'mlp', '--batch', '4', '--steps', '4', '--warmup', '1', '--rounds', '2'],
      ...['--threads', '1', '--beside', 'cpu'],
    ]);
    expect(r).toMatchObject({ backend: 'wasm', steps: 4, beside: { backend: 'cpu', steps: 4 } });
    expect((r.beside as { ms_per_step: number }).ms_per_step).toBeGreaterThan(0);
    await expect(run(['--beside', 'gpu'])).rejects.toThrow(/--beside: expected one of auto/);
  });

  it('rejects a bad model or count with a usage error naming the flag', async () => {
    await expect(run(['--model', 'vgg'])).rejects.toThrow(UsageError);
    await expect(run(['--steps', '0'])).rejects.toThrow(/--steps: expected an integer >= 1/);
    await expect(run(['--threads', '9'])).rejects.toThrow(
      /--threads: expected an integer in 0\.\.8/,
    );
  });

  describe('--peer-device', () => {
    /** A stand-in for python (torch is not needed): answers the probe, then runs `body`. */
    function fakePython(probe: string, body: string): string {
      const path = join(mkdtempSync(join(tmpdir(), 'fedslr-fake-python-')), 'python');
      writeFileSync(
        path,
        `#!/bin/sh\nif [ "$1" = "-c" ]; then echo '${probe}'; exit 0; fi\n${body}\n`,
      );
      chmodSync(path, 0o755);
      return path;
    }
    const short = ['--model', 'mlp', '--batch', '2', '--steps', '2', '--warmup', '1'];

    it('rejects a device other than cpu or cuda, and cuda without --peer torch', async () => {
      await expect(run(['--peer', 'torch', '--peer-device', 'gpu'])).rejects.toThrow(
        /--peer-device: expected cpu or cuda, got 'gpu'/,
      );
      await expect(run(['--peer-device', 'cuda'])).rejects.toThrow(
        /--peer-device cuda: needs --peer torch/,
      );
    });

    it('refuses cuda, naming the option, where torch sees no CUDA device', async () => {
      const python = fakePython('{"torch": "2.1.0+cpu", "cuda": false}', 'exit 3');
      await expect(
        run([...short, '--peer', 'torch', '--peer-device', 'cuda', '--python', python]),
      ).rejects.toThrow(/--peer-device cuda: torch 2\.1\.0\+cpu in '.*' sees no CUDA device/);
    });

    it('passes cuda to the peer script and reports the device, its GPU and TF32 settings', async () => {
      // The peer's protocol: a hello line, then for each line N, N step times.
      const python = fakePython(
        '{"torch": "0-fake", "cuda": true}',
        [
          'case " $* " in *" --device cuda "*) ;; *) echo "no --device cuda in: $*" >&2; exit 2;; esac',
          `echo '{"ready": true, "torch": "0-fake", "threads": 1, "device": "cuda", "gpu": "Fake GPU", "tf32": {"cudnn": true, "matmul": false}}'`,
          'while read n; do ms=""; sep=""; i=0; while [ $i -lt $n ]; do ms="$ms$sep"2.5; sep=","; i=$((i+1)); done; echo "{\\"ms\\": [$ms]}"; done',
        ].join('\n'),
      );
      const r = await jsonOf([
        ...[...short, '--threads', '1', '--peer', 'torch', '--peer-device', 'cuda'],
        ...['--python', python],
      ]);
      expect(r).toMatchObject({
        peer: 'torch',
        peer_device: 'cuda',
        peer_gpu: 'Fake GPU',
        peer_tf32: { cudnn: true, matmul: false },
        peer_ms_per_step: 2.5,
        peer_version: '0-fake',
      });
    });
  });
});
