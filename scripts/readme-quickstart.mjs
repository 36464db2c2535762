#!/usr/bin/env node
/**
 * Runs the README's first command (`fedslr run examples/quickstart.yaml`, from dist/: run
 * `npm run build` first) and rewrites the README's sample output from that run: the final table
 * as printed, and a line saying when, where and at what machine load it was measured, with the
 * CPU time the run used. The README holds them between `<!-- quickstart:begin -->` and
 * `<!-- quickstart:end -->`. Usage: npm run readme:quickstart
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const readmePath = join(root, 'README.md');
const cli = join(root, 'dist', 'cli', 'main.js');
const BEGIN = '<!-- quickstart:begin -->';
const END = '<!-- quickstart:end -->';

/** CPU seconds (user + system) of this process's finished children; Linux only, else undefined. */
function childCpuSeconds() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name (in parentheses): cutime and cstime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return undefined;
  }
}

function fail(message) {
  console.error(`readme-quickstart: ${message}`);
  process.exit(1);
}

if (!existsSync(cli)) fail(`${cli} is missing: run \`npm run build\` first`);
const readme = readFileSync(readmePath, 'utf8');
const start = readme.indexOf(BEGIN);
const end = readme.indexOf(END);
if (start < 0 || end < start) fail(`README.md lacks the markers ${BEGIN} ... ${END}`);

const out = mkdtempSync(join(tmpdir(), 'fedslr-quickstart-'));
const run = join(out, 'run');
const loadBefore = loadavg()[0];
const cpuBefore = childCpuSeconds();
const t0 = process.hrtime.bigint();
const child = spawnSync(
  process.execPath,
  [cli, 'run', join(root, 'examples', 'quickstart.yaml'), '--out', run, '--quiet'],
  { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const cpuAfter = childCpuSeconds();
const loadAfter = loadavg()[0];
rmSync(out, { recursive: true, force: true });
if (child.status !== 0) fail(`the quickstart exited with ${child.status}:\n${child.stdout}`);

// The final table: from its title line to its time line (the run directory lines name this
// machine's temporary folder, so they stay out).
const lines = child.stdout.split('\n');
const first = lines.findIndex((l) => /^\S+, \d+ rounds$/.test(l));
const last = lines.findIndex((l, i) => i > first && /^\s+time\s/.test(l));
if (first < 0 || last < 0) fail(`no final table in the output:\n${child.stdout}`);
const table = lines.slice(first, last + 1).join('\n');

const cpu = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
const day = new Date().toISOString().slice(0, 10);
const machine = `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores`;
const measured =
  `Measured by \`npm run readme:quickstart\` on ${day} (${machine}): ${wall.toFixed(0)} s from ` +
  `start to exit, at a load average of ${loadBefore.toFixed(1)} before and ` +
  `${loadAfter.toFixed(1)} after` +
  (cpu === undefined ? '.' : `; the run used ${cpu.toFixed(0)} s of CPU time (all threads).`);

/** Greedy word wrap at the README's line width. */
function wrap(text, width = 100) {
  const lines = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}

const block = `${BEGIN}\n\n\`\`\`\n${table}\n\`\`\`\n\n${wrap(measured)}\n\n${END}`;
const next = readme.slice(0, start) + block + readme.slice(end + END.length);
const tmp = `${readmePath}.tmp-${process.pid}`;
writeFileSync(tmp, next);
renameSync(tmp, readmePath);
console.log(`${table}\n\n${measured}\n\nREADME.md updated.`);
