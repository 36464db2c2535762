import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** The engine ranges found in package-lock.json: `A || B`, each `>=x`, `^x`, `x.*`, `x.x`, `x.y.z`. */
function satisfies(version: string, range: string): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  const cmp = (v: number[]) => major - v[0]! || minor - (v[1] ?? 0) || patch - (v[2] ?? 0);
  return range.split('||').some((alt) => {
    const r = alt.trim().replace(/^v/, '');
    const nums = (s: string) =>
      s
        .split('.')
        .filter((p) => /^\d+$/.test(p))
        .map(Number);
    if (r === '*' || r === '') return true;
    if (r.startsWith('>=')) return cmp(nums(r.slice(2).trim())) >= 0;
    if (r.startsWith('^')) {
      const v = nums(r.slice(1));
      return major === v[0] && cmp(v) >= 0;
    }
    const v = nums(r);
    return v.every((n, i) => [major, minor, patch][i] === n);
  });
}

describe('engines', () => {
  it("every installed package supports the lowest Node versions package.json's engines allow", () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    const declared: string = pkg.engines.node;
    // The lowest version of each alternative of our range (`^20.19.0 || >=22.13.0`).
    const lowest = declared.split('||').map((a) => a.trim().replace(/^(\^|>=)/, ''));
    expect(lowest.length).toBeGreaterThan(0);
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
    const refused: string[] = [];
    for (const [name, entry] of Object.entries(
      lock.packages as Record<string, { engines?: { node?: string } }>,
    )) {
      const range = entry.engines?.node;
      if (!name || !range) continue;
      for (const v of lowest)
        if (!satisfies(v, range)) refused.push(`${name} (${range}) on Node ${v}`);
    }
    expect(refused).toEqual([]);
    expect(satisfies('20.0.0', '>=22')).toBe(false);
    expect(satisfies('20.19.0', '^20.19.0 || ^22.12.0 || >=23')).toBe(true);
    expect(satisfies('20.18.0', '^20.19.0 || ^22.12.0 || >=23')).toBe(false);
  });
});
