import { describe, expect, it, vi } from 'vitest';
import { UsageError } from '../cli/command.js';
import { run } from './train.js';

async function jsonOf(argv: string[]): Promise<Record<string, unknown>> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    expect(await run([...argv, '--json'])).toBe(0);
    return JSON.parse(String(log.mock.calls.at(-1)?.[0]));
  } finally {
    log.mockRestore();
  }
}

describe('bench train', () => {
  it('times plain, stage-1 and stage-2 steps per model, with the overhead ratios', async () => {
    const r = await jsonOf(['--model', 'mlp', '--batch', '4', '--steps', '2', '--rounds', '1']);
    expect(r).toMatchObject({ backend: 'wasm', batch: 4, steps: 2, rounds: 1 });
    expect(r.load).toHaveLength(2);
    const models = r.models as {
      model: string;
      params: number;
      ms_per_step: Record<string, number>;
      cpu_ms_per_step: Record<string, number>;
      overhead: Record<string, number>;
      cpu_overhead: Record<string, number>;
    }[];
    expect(models.map((m) => m.model)).toEqual(['mlp']);
    const m = models[0]!;
    expect(m.params).toBeGreaterThan(0);
    for (const v of ['plain', 'stage1', 'stage2']) {
      expect(m.ms_per_step[v]).toBeGreaterThan(0);
      expect(m.cpu_ms_per_step[v]).toBeGreaterThan(0);
    }
    // One round: the overhead is the ratio of that round's times (up to the rounding of ms).
    expect(m.overhead.stage1).toBeCloseTo(m.ms_per_step.stage1! / m.ms_per_step.plain!, 1);
    expect(m.overhead.stage2).toBeCloseTo(m.ms_per_step.stage2! / m.ms_per_step.plain!, 1);
    const cpu = m.cpu_ms_per_step;
    expect(m.cpu_overhead.stage1).toBeCloseTo(cpu.stage1! / cpu.plain!, 1);
  });

  it('rejects a bad model or count with a usage error naming the flag', async () => {
    await expect(run(['--model', 'cnn,vgg'])).rejects.toThrow(UsageError);
    await expect(run(['--model', 'vgg'])).rejects.toThrow(/--model: expected names from/);
    await expect(run(['--steps', '0'])).rejects.toThrow(/--steps: expected an integer >= 1/);
  });
});
