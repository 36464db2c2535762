/** Reading a config file (YAML or JSON) and applying `--set key=value` overrides. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { allowedKeys, ConfigError, parseConfig, type RunConfig } from './config.js';

type Obj = Record<string, unknown>;

export function readConfigFile(path: string): Obj {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file '${path}': ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `config file '${path}' is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
  if (value === null || value === undefined) {
    // Every key has a default, so an empty file would silently start the full default experiment.
    throw new ConfigError(
      `config file '${path}' is empty; give at least the keys you mean (see examples/quickstart.yaml)`,
    );
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`config file '${path}': expected a mapping of keys at the top level`);
  }
  return value as Obj;
}

/**
 * Applies `key.path=value` to a raw config. The value is read as a YAML scalar or flow collection
 * (`3`, `0.1`, `true`, `fedavg`, `[64, 64]`), then the schema checks it like any other value.
 * Changing `algorithm.name` starts that algorithm from its own defaults; changing a section's
 * `kind` or `mode` tag (`data.partition.kind`, `clients.sampling.kind`, `algorithm.svt.mode`)
 * drops the options the new kind or mode does not take (`alpha` when switching a Dirichlet
 * partition to `iid`).
 */
export function applySet(raw: Obj, assignment: string): Obj {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--set '${assignment}': expected key.path=value`);
  const path = assignment.slice(0, eq).split('.');
  if (path.some((p) => p === ''))
    throw new ConfigError(`--set '${assignment}': empty key in '${assignment.slice(0, eq)}'`);
  const text = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch {
    value = text;
  }
  const out: Obj = structuredClone(raw);
  let node = out;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === undefined || next === null) node[key] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) {
      throw new ConfigError(`--set '${assignment}': '${key}' is not a mapping`);
    }
    node = node[key] as Obj;
  }
  const last = path[path.length - 1]!;
  if (path.length === 2 && path[0] === 'algorithm' && last === 'name' && node['name'] !== value) {
    out['algorithm'] = { name: value };
    return out;
  }
  const switchesKind =
    (last === 'kind' || last === 'mode') && node[last] !== undefined && node[last] !== value;
  node[last] = value;
  if (switchesKind) {
    const allowed = allowedKeys(path.slice(0, -1), out);
    // An unknown kind allows nothing: keep the section so the error names the bad kind.
    if (allowed.length > 0)
      for (const k of Object.keys(node)) if (!allowed.includes(k)) delete node[k];
  }
  return out;
}

export function loadConfig(path: string, sets: readonly string[] = []): RunConfig {
  let raw = readConfigFile(path);
  for (const s of sets) raw = applySet(raw, s);
  return parseConfig(raw, `config '${path}'${sets.length ? ' with --set' : ''}`);
}
