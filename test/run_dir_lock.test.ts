import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/cli.js';
import { LOCK_FILE, lockDir } from '../src/sim/lock.js';
import { fsCause, makeDir } from '../src/util/dir.js';
import { tiny } from './tiny_config.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'fedslr-lock-'));
let err: string[];
beforeEach(() => {
  err = [];
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
});
afterEach(() => vi.restoreAllMocks());

/** Writes a lock file as another process would have. */
const fakeLock = (dir: string, pid: number, host = hostname()) =>
  writeFileSync(
    join(dir, LOCK_FILE),
    JSON.stringify({ pid, host, started: '2026-01-01T00:00:00.000Z' }),
  );

describe('run directory lock', () => {
  it('refuses a second holder while the first is alive, and is free again after release', () => {
    const dir = tmp();
    const lock = lockDir(join(dir, 'run'));
    const owner = JSON.parse(readFileSync(lock.path, 'utf8'));
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    expect(() => lockDir(join(dir, 'run'))).toThrow(
      new RegExp(`'${join(dir, 'run')}' is in use by process ${process.pid} on ${hostname()}`),
    );
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
    lockDir(join(dir, 'run')).release();
  });

  it('replaces a stale lock of a dead process on this host, never one from another host', () => {
    const dir = tmp();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    fakeLock(dir, Number(dead.stdout.toString()));
    const lock = lockDir(dir);
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).pid).toBe(process.pid);
    lock.release();
    fakeLock(dir, 1, 'some-other-host');
    expect(() => lockDir(dir)).toThrow(/in use by process 1 on some-other-host/);
  });

  it('run, run --resume and compare refuse a directory another live process holds (exit 2), and a run leaves no lock', async () => {
    const dir = tmp();
    const config = join(dir, 'c.json');
    writeFileSync(config, JSON.stringify(tiny));
    const done = join(dir, 'done');
    expect(await main(['run', config, '--out', done, '--quiet'])).toBe(0);
    expect(existsSync(join(done, LOCK_FILE))).toBe(false);

    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const busy = join(dir, 'busy');
      makeDir(busy);
      fakeLock(busy, sleeper.pid!);
      expect(await main(['run', config, '--out', busy, '--quiet'])).toBe(2);
      expect(err.pop()).toMatch(
        new RegExp(`run directory '${busy}' is in use by process ${sleeper.pid} on `),
      );
      expect(
        await main(['compare', config, '--algorithms', 'fedavg', '--out', busy, '--quiet']),
      ).toBe(2);
      expect(err.pop()).toMatch(/comparison directory .* is in use by process/);
      fakeLock(done, sleeper.pid!);
      expect(await main(['run', '--resume', done, '--set', 'rounds=2', '--quiet'])).toBe(2);
      expect(err.pop()).toMatch(/is in use by process/);
    } finally {
      sleeper.kill();
    }
  });

  it('is released when the run fails', async () => {
    const dir = tmp();
    const config = join(dir, 'c.json');
    // A partition file that does not exist: the run fails after taking the lock.
    writeFileSync(
      config,
      JSON.stringify({
        ...tiny,
        data: { ...tiny.data, partition: { kind: 'file', path: join(dir, 'nope.json') } },
      }),
    );
    expect(await main(['run', config, '--out', join(dir, 'run'), '--quiet'])).not.toBe(0);
    expect(existsSync(join(dir, 'run', LOCK_FILE))).toBe(false);
  });
});

describe('unwritable --out', () => {
  it('names the path and the real cause, exits 2, and does not hang on /proc', async () => {
    const dir = tmp();
    const config = join(dir, 'c.json');
    writeFileSync(config, JSON.stringify(tiny));
    // Node's recursive mkdir loops forever on /proc: the test's timeout catches a hang.
    expect(await main(['run', config, '--out', '/proc/fedslr-x/run', '--quiet'])).toBe(2);
    expect(err.pop()).toMatch(
      /cannot create run directory '\/proc\/fedslr-x\/run' \(at '\/proc\/fedslr-x'\): the file system does not allow creating it .*\(ENOENT\)$/,
    );
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    expect(
      await main(['compare', config, '--algorithms', 'fedavg', '--out', join(file, 'cmp')]),
    ).toBe(2);
    expect(err.pop()).toMatch(
      /cannot create comparison directory '.*a-file\/cmp': a path component is a file, not a directory \(ENOTDIR\)/,
    );
  }, 60_000);

  it('says read-only file system and permission denied, not ENOENT', () => {
    const code = (c: string) => Object.assign(new Error(`${c}: raw`), { code: c });
    expect(fsCause(code('EROFS'))).toBe('read-only file system (EROFS)');
    expect(fsCause(code('EACCES'))).toBe('permission denied (EACCES)');
  });
});
