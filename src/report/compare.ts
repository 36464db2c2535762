/** Reading the table `fedslr compare` leaves beside its runs: compare.csv, else compare.md. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A table from `fedslr compare` (compare.csv, or the tables of compare.md). */
export interface CompareTable {
  source: string;
  header: string[];
  rows: string[][];
  /** Paragraphs that explain the table (from compare.md). */
  notes: string[];
}

/** RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += ch;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.some((c) => c !== ''));
}

/** The first pipe table of a Markdown text (header row, `---` separator, body rows). */
export function parseMarkdownTable(text: string): string[][] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const start = lines.findIndex(
    (l, i) => l.startsWith('|') && /^\|?\s*:?-+:?\s*(\||$)/.test(lines[i + 1] ?? ''),
  );
  if (start < 0) return [];
  const cells = (l: string) =>
    l
      .replace(/^\|/, '')
      .replace(/\|$/, '')
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replaceAll('\\|', '|'));
  const out = [cells(lines[start]!)];
  for (let i = start + 2; i < lines.length && lines[i]!.startsWith('|'); i++)
    out.push(cells(lines[i]!));
  return out;
}

/** The prose of a Markdown text: its lines outside tables and headings, as paragraphs. */
export function markdownProse(text: string): string[] {
  return text
    .split(/\r?\n\s*\r?\n/)
    .map((para) =>
      para
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('|') && !l.startsWith('#'))
        .join(' '),
    )
    .filter((p) => p.length > 0);
}

/**
 * The compare table found in the first of `dirs` that has one, or null: compare.md (rounded for
 * reading, with its notes), else compare.csv.
 */
export function findCompareTable(dirs: readonly string[]): CompareTable | null {
  for (const dir of dirs) {
    const md = join(dir, 'compare.md');
    if (existsSync(md)) {
      const text = readFileSync(md, 'utf8');
      const [header, ...rows] = parseMarkdownTable(text);
      if (header) return { source: md, header, rows, notes: markdownProse(text) };
    }
    const csv = join(dir, 'compare.csv');
    if (existsSync(csv)) {
      const [header, ...rows] = parseCsv(readFileSync(csv, 'utf8'));
      if (header) return { source: csv, header, rows, notes: [] };
    }
  }
  return null;
}
