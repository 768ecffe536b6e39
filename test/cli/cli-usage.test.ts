import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, makeDatabase, tempDir, walguard } from './cli-harness.js';

const COMMANDS = [
  'status',
  'check',
  'backup',
  'backups',
  'restore',
  'checkpoint',
  'vacuum',
  'optimize',
  'init',
];

beforeAll(ensureBuilt, 120_000);

describe('help and usage errors', () => {
  it('--help lists every command, the global options and the exit codes; no command is a usage error', async () => {
    const help = await walguard(['--help']);
    expect(help.code).toBe(0);
    for (const name of COMMANDS) expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    for (const option of ['--config', '--json', '--key-file', '--passphrase-stdin']) {
      expect(help.stdout).toContain(option);
    }
    for (const code of ['3  LOCKED', '4  WRONG_KEY', '7  CORRUPT'])
      expect(help.stdout).toContain(code);
    const none = await walguard([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: walguard <command>');
    const version = await walguard(['--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('every command has its own --help with usage, options, exit codes and the --json shape', async () => {
    const runs = await Promise.all(COMMANDS.map((c) => walguard([c, '--help'])));
    for (const [i, run] of runs.entries()) {
      expect(run.code, COMMANDS[i]).toBe(0);
      expect(run.stdout).toContain(`Usage: walguard ${COMMANDS[i]}`);
      expect(run.stdout).toContain('Exit codes:');
      expect(run.stdout).toContain('With --json:');
    }
    expect(runs[1]!.stdout).toContain('--full');
    expect(runs[4]!.stdout).toMatch(/-y, --yes/);
    const viaHelp = await walguard(['help', 'check']);
    expect(viaHelp.stdout).toBe(runs[1]!.stdout);
  });

  it('unknown commands and options are usage errors with "did you mean"', async () => {
    const command = await walguard(['stauts', 'x.db']);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('Unknown command `stauts`; did you mean `status`?');
    const option = await walguard(['check', 'x.db', '--ful', '--json']);
    expect(option.code).toBe(2);
    expect(option.json).toMatchObject({ ok: false, exitCode: 2, error: { code: 'USAGE' } });
    expect(option.json.error!.message).toContain('did you mean --full?');
  });

  it('a secret given as an argument is refused without being echoed', async () => {
    const run = await walguard(['status', 'x.db', '--passphrase', 'hunter2-secret']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('secrets are never taken from the command line');
    expect(run.stdout + run.stderr).not.toContain('hunter2-secret');
  });

  it('a usage error is printed in the documented form `walguard <command>: USAGE: <message>`', async () => {
    const dir = tempDir();
    const runs = await Promise.all([
      walguard(['init'], { cwd: dir }),
      walguard(['init', 'x.db', '--stores', 'chats'], { cwd: dir }),
      walguard(['status', 'x.db', '--bogus'], { cwd: dir }),
    ]);
    expect(runs.map((r) => [r.code, r.stderr.split('\n')[0]])).toEqual([
      [2, expect.stringMatching(/^walguard init: USAGE: No database given/)],
      [2, expect.stringMatching(/^walguard init: USAGE: Unknown store `chats`/)],
      [2, expect.stringMatching(/^walguard status: USAGE: Unknown option --bogus/)],
    ]);
  });

  it('missing and extra arguments, bad option values and conflicting flags are usage errors', async () => {
    const dir = tempDir();
    const cases: [string[], RegExp][] = [
      [['restore'], /Missing <backup>/],
      [['status', 'a.db', 'b.db'], /Unexpected argument `b.db`/],
      [['status'], /No database given/],
      [['backup', 'a.db', '--to'], /argument missing/],
      [
        ['checkpoint', path.join(dir, 'a.db'), '--mode', 'HALF'],
        /--mode to be one of PASSIVE, FULL, RESTART, TRUNCATE/,
      ],
      [['status', 'a.db', '--log-level', 'loud'], /--log-level to be one of/],
      [['status', 'a.db', '--progress', '--no-progress'], /not both/],
      [['status', 'a.db', '--raw-key'], /--raw-key says how to read/],
      [
        ['status', 'a.db', '--key-file', path.join(dir, 'missing.txt')],
        /Cannot read the passphrase file .*missing\.txt.*ENOENT/,
      ],
      [['init', path.join(dir, 'n.db')], /needs --dimensions/],
      [['init', path.join(dir, 'n.db'), '--stores', 'chats'], /Unknown store `chats`/],
      [
        ['init', path.join(dir, 'n.db'), '--dimensions', '0'],
        /--dimensions to be an integer from 1/,
      ],
    ];
    const runs = await Promise.all(
      cases.map(([[command, ...rest]]) => walguard([command!, '--json', ...rest])),
    );
    for (const [i, run] of runs.entries()) {
      expect(run.code, cases[i]![0].join(' ')).toBe(2);
      expect(run.json.error!.code).toBe('USAGE');
      expect(run.json.error!.message).toMatch(cases[i]![1]);
    }
    // Nothing was created by any of them.
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a file that does not exist is NOT_FOUND (8) for every command that reads one, and nothing is created', async () => {
    const dir = tempDir();
    const missing = path.join(dir, 'missing.db');
    const commands = ['status', 'check', 'backup', 'checkpoint', 'vacuum', 'optimize'];
    const runs = await Promise.all(commands.map((c) => walguard([c, missing, '--json'])));
    for (const [i, run] of runs.entries()) {
      expect(run.code, commands[i]).toBe(8);
      expect(run.json).toMatchObject({ ok: false, exitCode: 8, command: commands[i] });
      expect(run.json.error!.message).toContain(missing);
    }
    const restore = await walguard(['restore', missing, path.join(dir, 'nope.db'), '--yes']);
    expect(restore.code).toBe(8);
    expect(restore.stderr).toContain('There is no backup at');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('configuration on the command line', () => {
  it('--config gives the path and options; a bad config is a usage error naming key, value and allowed values', async () => {
    const dir = tempDir();
    await makeDatabase(path.join(dir, 'app.db'), { rows: 5 });
    fs.writeFileSync(
      path.join(dir, 'walguard.yaml'),
      'path: app.db\nsynchronous: extra\nbackup:\n  dir: saved\n',
    );
    const status = await walguard([
      'status',
      '--config',
      path.join(dir, 'walguard.yaml'),
      '--json',
    ]);
    expect(status.code).toBe(0);
    expect(status.json).toMatchObject({
      database: path.join(dir, 'app.db'),
      settings: { synchronous: 3 },
      backups: { dir: path.join(dir, 'saved'), count: 0 },
    });
    // $WALGUARD_CONFIG works as --config does; $WALGUARD_SYNCHRONOUS overrides the file.
    const env = {
      WALGUARD_CONFIG: path.join(dir, 'walguard.yaml'),
      WALGUARD_SYNCHRONOUS: 'normal',
    };
    const overridden = await walguard(['status', '--json'], { env });
    expect(overridden.json).toMatchObject({ settings: { synchronous: 1 } });

    fs.writeFileSync(
      path.join(dir, 'bad.yaml'),
      'path: app.db\nsynchronous: FUL\nbusyTimeoutMs: -5\nmaxBatchUnit: 3\n',
    );
    const bad = await walguard(['status', '--config', path.join(dir, 'bad.yaml')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      "line 2: expected `synchronous` to be one of 'NORMAL', 'FULL', 'EXTRA', got `FUL` (string)",
    );
    expect(bad.stderr).toContain(
      'line 3: expected `busyTimeoutMs` to be an integer from 0 to 2147483647, got `-5` (number)',
    );
    expect(bad.stderr).toContain(
      'line 4: unknown key `maxBatchUnit`; did you mean `maxBatchUnits`?',
    );
    const missing = await walguard(['status', '--config', path.join(dir, 'none.yaml'), '--json']);
    expect(missing.code).toBe(2);
    expect(missing.json.error).toMatchObject({ code: 'INVALID_OPTION' });
    expect(missing.json.error!.message).toContain('does not exist');
  });
});
