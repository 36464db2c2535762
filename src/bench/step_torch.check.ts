/**
 * The PyTorch peer of `bench step` (needs /usr/bin/python3 with torch). Not part of `npm test`:
 * PyTorch is a benchmark peer only. Run with `npm run check:torch`.
 */
import { describe, expect, it, vi } from 'vitest';
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
  it('with --peer torch adds the peer time and the ratio', async () => {
    const r = await jsonOf([
      '--model',
      'mlp',
      '--steps',
      '4',
      '--warmup',
      '1',
      '--rounds',
      '2',
      '--peer',
      'torch',
    ]);
    expect(r.peer).toBe('torch');
    expect(r.peer_ms_per_step).toBeGreaterThan(0);
    expect(r.ratio).toBeCloseTo((r.ms_per_step as number) / (r.peer_ms_per_step as number), 1);
  });
});
