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
});
