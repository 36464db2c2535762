/** The algorithms section of `--help`, made from the registry. */
import { formatDefault, optionsOf } from '../algorithms/descriptor.js';
import { ALGORITHMS } from '../algorithms/registry.js';

/** One line per algorithm: its name and options with their defaults (`key` alone: none). */
export function algorithmsHelp(indent = '  '): string {
  const width = Math.max(...ALGORITHMS.map((a) => a.name.length));
  return ALGORITHMS.map((a) => {
    const opts = optionsOf(a.schema)
      .map((o) => (o.default === undefined ? o.key : `${o.key}=${formatDefault(o.default)}`))
      .join(' ');
    return `${indent}${a.name.padEnd(width)}  ${opts || '(no options)'}`;
  }).join('\n');
}
