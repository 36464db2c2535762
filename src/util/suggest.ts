/** "Did you mean": the allowed word closest to a mistyped one, by edit distance (case-blind). */

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
    }
  }
  return d[a.length]![b.length]!;
}

/** ` (did you mean 'x'?)` when an allowed word is within a third of its length in edits, else ''. */
export function suggest(word: string, allowed: readonly string[]): string {
  const best = allowed
    .map((k) => ({ k, d: editDistance(word, k) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(x.k.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  return best ? ` (did you mean '${best.k}'?)` : '';
}
