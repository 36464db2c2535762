/**
 * The registry is the one list of algorithms: the config schema accepts exactly its names with
 * its defaults, and the README's algorithm table lists exactly its names with those defaults.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatDefault, optionsOf } from '../src/algorithms/descriptor.js';
import { ALGORITHMS } from '../src/algorithms/registry.js';
import { parseConfig } from '../src/sim/config.js';

/** The README's algorithm table: name -> the options cell. */
function readmeTable(): Map<string, { options: string; summary: string }> {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### Algorithms'), readme.indexOf('## Comparing'));
  const rows = new Map<string, { options: string; summary: string }>();
  for (const line of section.split('\n')) {
    // Cells are split at ' | ' (an escaped \| inside a cell has no space before it).
    const m = /^\| `([a-z-]+)`\s+\| (.*?) +\| (.*?) +\|$/.exec(line);
    if (m && m[1] !== 'name') rows.set(m[1]!, { options: m[2]!, summary: m[3]! });
  }
  return rows;
}

/**
 * How the table writes an option: `key` and its default (small numbers as 1e-4, an object as
 * `{key: value}`), or `key` alone.
 */
function written(key: string, value: unknown): string {
  if (value === undefined) return `\`${key}\``;
  const small = typeof value === 'number' && value !== 0 && Math.abs(value) < 0.01;
  return `\`${key}\` ${small ? value.toExponential() : formatDefault(value)}`;
}

describe('algorithm registry', () => {
  it('gives the config schema its names and defaults', () => {
    for (const a of ALGORITHMS) {
      const parsed = parseConfig({ algorithm: { name: a.name } }).algorithm;
      const expected = Object.fromEntries(
        optionsOf(a.schema)
          .filter((o) => o.default !== undefined)
          .map((o) => [o.key, o.default]),
      );
      expect(parsed).toEqual({ name: a.name, ...expected });
    }
    expect(() => parseConfig({ algorithm: { name: 'fedsrl' } })).toThrow(/algorithm/);
  });

  it('is what the README table lists: the same names, options with their defaults, summaries', () => {
    const table = readmeTable();
    expect([...table.keys()]).toEqual(ALGORITHMS.map((a) => a.name));
    for (const a of ALGORITHMS) {
      const row = table.get(a.name)!;
      for (const o of optionsOf(a.schema))
        expect(row.options, a.name).toContain(written(o.key, o.default));
      expect(row.summary, a.name).toBe(a.summary);
    }
  });
});
