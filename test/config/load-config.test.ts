import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFields } from '../../src/config/config-schema.js';
import { loadConfig, parseConfig, readConfig } from '../../src/config/load-config.js';
import { openDatabase, type WalguardError } from '../../src/index.js';
import { tempDir as makeTempDir } from '../helpers.js';

const tempDir = () => makeTempDir('walguard-config-');

/** The message of the INVALID_OPTION error `fn` throws. */
function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect((error as WalguardError).code).toBe('INVALID_OPTION');
    return (error as Error).message;
  }
  throw new Error('expected an INVALID_OPTION error');
}

const parse = (text: string, env: NodeJS.ProcessEnv = {}) =>
  parseConfig(text, { env, file: '/etc/app/walguard.yaml' });

describe('a valid configuration file', () => {
  it('becomes openDatabase options, with relative paths resolved against its folder', () => {
    const loaded = parse(
      [
        'path: data/app.db',
        'synchronous: full',
        'busyTimeoutMs: 2000',
        'queueTimeoutMs: .inf',
        'integrityCheck: full',
        'onCorruption: restore',
        'handleSignals: false',
        'logLevel: info',
        'backup:',
        '  dir: /var/backups/app',
        '  keepLast: 3',
        '  onOpen: true',
        'checkpoint:',
        '  idleMs: 500',
        '  walSizeLimitBytes: 1048576',
      ].join('\n'),
    );
    expect(loaded.options).toEqual({
      path: '/etc/app/data/app.db',
      synchronous: 'FULL',
      busyTimeoutMs: 2000,
      queueTimeoutMs: Number.POSITIVE_INFINITY,
      integrityCheck: 'full',
      onCorruption: 'restore',
      handleSignals: false,
      backup: { dir: '/var/backups/app', keepLast: 3, onOpen: true },
      checkpoint: { idleMs: 500, walSizeLimitBytes: 1048576 },
    });
    expect(loaded.logLevel).toBe('info');
    expect(loaded.origins.synchronous).toBe('/etc/app/walguard.yaml:2');
  });

  it('an empty file, or none at all, gives no options', () => {
    expect(parse('').options).toEqual({});
    expect(parse('# only a comment\n').options).toEqual({});
    expect(readConfig(undefined, { env: {} }).options).toEqual({});
  });

  it('every key of the schema has a documented environment variable or none by design', () => {
    const envs = configFields.map((f) => f.env).filter((e) => e !== undefined);
    expect(new Set(envs).size).toBe(envs.length);
    for (const field of configFields) {
      if (field.env !== undefined) expect(field.env).toMatch(/^WALGUARD_[A-Z_]+$/);
      else expect(field.key).toMatch(/^encryption\.(passphrase|key)Env$/);
    }
  });
});

describe('each kind of mistake gets a message naming the key, the bad value and what is allowed', () => {
  it('unknown keys, with "did you mean" at their level and across levels', () => {
    const message = problems(() =>
      parse('maxBatchUnit: 3\nkeepLast: 2\nbackup:\n  keepLst: 1\n  idelMs: 5\nfoo: 1\n'),
    );
    expect(message).toContain('line 1: unknown key `maxBatchUnit`; did you mean `maxBatchUnits`?');
    expect(message).toContain('line 2: unknown key `keepLast`; did you mean `backup.keepLast`?');
    expect(message).toContain(
      'line 4: unknown key `backup.keepLst`; did you mean `backup.keepLast`?',
    );
    expect(message).toContain(
      'line 5: unknown key `backup.idelMs`; did you mean `checkpoint.idleMs`?',
    );
    expect(message).toMatch(
      /line 6: unknown key `foo` \(the top-level keys are `path`, `synchronous`, /,
    );
  });

  it('wrong types', () => {
    const message = problems(() =>
      parse(
        'synchronous: 2\nbusyTimeoutMs: "5000"\nhandleSignals: yes\nbackup: daily\npath: [a]\n',
      ),
    );
    expect(message).toContain(
      "line 1: expected `synchronous` to be one of 'NORMAL', 'FULL', 'EXTRA', got `2` (number)",
    );
    expect(message).toContain(
      'line 2: expected `busyTimeoutMs` to be an integer from 0 to 2147483647, got `5000` (string)',
    );
    expect(message).toContain(
      'line 3: expected `handleSignals` to be a boolean (true or false), got `yes` (string)',
    );
    expect(message).toContain(
      'line 4: expected `backup` to be a map of keys (`dir`, `keepLast`, `keepDailyDays`, `onOpen`, `beforeMigrations`, `intervalMs`), got `daily` (string)',
    );
    expect(message).toContain(
      'line 5: expected `path` to be a non-empty file path, got `["a"]` (list)',
    );
  });

  it('out-of-range numbers, including timers Node would fire at once', () => {
    const message = problems(() =>
      parse(
        'maxBatchUnits: 0\ncheckpoint:\n  walSizeLimitBytes: 1000\nbackup:\n  intervalMs: 3000000000\nlingerMs: 1.5\n',
      ),
    );
    expect(message).toContain(
      'line 1: expected `maxBatchUnits` to be an integer >= 1, got `0` (number)',
    );
    expect(message).toContain(
      'line 3: expected `checkpoint.walSizeLimitBytes` to be an integer >= 65536, got `1000` (number)',
    );
    expect(message).toContain(
      'line 5: expected `backup.intervalMs` to be an integer from 0 to 2147483647, got `3000000000` (number)',
    );
    expect(message).toContain(
      'line 6: expected `lingerMs` to be an integer from 0 to 2147483647, got `1.5`',
    );
  });

  it('conflicting options, each with a sentence saying which and why', () => {
    const message = problems(() =>
      parse(
        [
          'maxBatchUnits: 2048',
          'maxPendingUnits: 100',
          'maxBatchBytes: 8388608',
          'maxPendingBytes: 4096',
          'handleSignals: false',
          'shutdownTimeoutMs: 5000',
          'onCorruption: restore',
          'integrityCheck: off',
          'encryption:',
          '  passphraseEnv: APP_PASS',
          '  keyFile: app.key',
        ].join('\n'),
      ),
    );
    expect(message).toContain(
      'conflicting options: `maxBatchUnits` (2048, line 1) is larger than `maxPendingUnits` (100, line 2): a batch is taken from the queue, so it can never hold more units than the queue',
    );
    expect(message).toContain(
      '`maxBatchBytes` (8388608, line 3) is larger than `maxPendingBytes` (4096, line 4)',
    );
    expect(message).toContain(
      '`shutdownTimeoutMs` (5000, line 6) only bounds a close triggered by a signal, and `handleSignals` (false, line 5) turns those off',
    );
    expect(message).toContain(
      '`onCorruption` (restore, line 7) restores a backup when the open finds damage, but `integrityCheck` (off, line 8) skips the check',
    );
    expect(message).toContain(
      '`encryption.passphraseEnv` (line 10) and `encryption.keyFile` (line 11) each say where the secret is; give exactly one',
    );
  });

  it('keys that must not be in a file, invalid YAML, and a file that is not a map', () => {
    const refused = problems(() =>
      parse('encryption:\n  passphrase: hunter2-do-not-echo\nlogger: pino\nmigrations: []\n'),
    );
    expect(refused).toContain(
      'line 2: `encryption.passphrase` is not allowed here: a passphrase must not be written in a configuration file',
    );
    expect(refused).toContain('line 3: `logger` is not allowed here');
    expect(refused).toContain('line 4: `migrations` is not allowed here');
    expect(refused).not.toContain('hunter2-do-not-echo');
    const scalar = problems(() => parse('encryption: hunter2-do-not-echo\n'));
    expect(scalar).toContain('expected `encryption` to be a map of keys');
    expect(scalar).not.toContain('hunter2-do-not-echo');
    expect(problems(() => parse('path: [a\n'))).toMatch(/line \d: not valid YAML/);
    expect(problems(() => parse('path: a.db\npath: b.db\n'))).toMatch(
      /not valid YAML: Map keys must be unique/,
    );
    expect(problems(() => parse('- a\n- b\n'))).toContain('expected a map of keys');
  });

  it('a missing file says so', () => {
    expect(problems(() => readConfig('/nonexistent/walguard.yaml', { env: {} }))).toBe(
      'The configuration file /nonexistent/walguard.yaml does not exist',
    );
  });
});

describe('environment overrides', () => {
  it('WALGUARD_* variables override the file, parsed by type; relative paths against the working directory', () => {
    const loaded = parseConfig('path: a.db\nsynchronous: FULL\nbackup:\n  keepLast: 3\n', {
      file: '/etc/app/walguard.yaml',
      cwd: '/srv',
      env: {
        WALGUARD_PATH: 'data/b.db',
        WALGUARD_SYNCHRONOUS: 'normal',
        WALGUARD_BUSY_TIMEOUT_MS: '250',
        WALGUARD_HANDLE_SIGNALS: 'off',
        WALGUARD_QUEUE_TIMEOUT_MS: 'Infinity',
        WALGUARD_BACKUP_KEEP_LAST: '9',
        WALGUARD_CHECKPOINT_IDLE_MS: '0',
        WALGUARD_LOG_LEVEL: 'debug',
        WALGUARD_KILLS: '20', // another tool's variable: ignored
      },
    });
    expect(loaded.options).toEqual({
      path: '/srv/data/b.db',
      synchronous: 'NORMAL',
      busyTimeoutMs: 250,
      handleSignals: false,
      queueTimeoutMs: Number.POSITIVE_INFINITY,
      backup: { keepLast: 9 },
      checkpoint: { idleMs: 0 },
    });
    expect(loaded.logLevel).toBe('debug');
    expect(loaded.origins.path).toBe('WALGUARD_PATH');
  });

  it('readers: the file and WALGUARD_READERS_* set the reader threads and routing', () => {
    const loaded = parseConfig('readers:\n  threads: 3\n  mainThreadMaxUs: .inf\n', {
      file: '/etc/app/walguard.yaml',
      env: { WALGUARD_READERS_TURN_BUDGET_US: '500', WALGUARD_READERS_NICE: '0' },
    });
    expect(loaded.options).toEqual({
      readers: {
        threads: 3,
        mainThreadMaxUs: Number.POSITIVE_INFINITY,
        turnBudgetUs: 500,
        nice: 0,
      },
    });
    expect(problems(() => parse('readers:\n  threads: 0\n'))).toContain('readers.threads');
  });

  it('a bad value names the variable; a near-miss variable name gets "did you mean"', () => {
    const message = problems(() =>
      readConfig(undefined, {
        env: {
          WALGUARD_BUSY_TIMEOUT_MS: 'soon',
          WALGUARD_SYNCRONOUS: 'FULL',
          WALGUARD_ON_CORRUPTION: 'panic',
        },
      }),
    );
    expect(message).toContain(
      'expected WALGUARD_BUSY_TIMEOUT_MS (overrides `busyTimeoutMs`) to be an integer from 0 to 2147483647, got `soon` (string)',
    );
    expect(message).toContain(
      'unknown environment variable WALGUARD_SYNCRONOUS; did you mean WALGUARD_SYNCHRONOUS?',
    );
    expect(message).toContain(
      "expected WALGUARD_ON_CORRUPTION (overrides `onCorruption`) to be one of 'fail', 'restore', got `panic` (string)",
    );
  });
});

describe('secrets', () => {
  it('come from the variable or file the configuration names, and are never shown', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'pass.txt'), 'file passphrase\n');
    fs.writeFileSync(path.join(dir, 'raw.key'), 'raw-key-from-file');
    const file = path.join(dir, 'walguard.yaml');
    const load = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
      fs.writeFileSync(file, yaml);
      return readConfig(file, { env });
    };
    expect(
      load('encryption:\n  passphraseEnv: APP_PASS\n', { APP_PASS: 'env passphrase' }),
    ).toMatchObject({
      options: { encryption: { passphrase: 'env passphrase' } },
      secretSource: 'environment variable APP_PASS',
    });
    expect(load('encryption:\n  passphraseFile: pass.txt\n').options.encryption).toEqual({
      passphrase: 'file passphrase',
    });
    expect(load('encryption:\n  keyFile: raw.key\n').options.encryption).toEqual({
      key: 'raw-key-from-file',
    });
    expect(
      load('encryption:\n  keyEnv: APP_KEY\n', { APP_KEY: 'raw-env' }).options.encryption,
    ).toEqual({
      key: 'raw-env',
    });
    // The environment's own secret replaces the file's source.
    expect(
      load('encryption:\n  keyFile: raw.key\n', { WALGUARD_PASSPHRASE: 'override' }).options
        .encryption,
    ).toEqual({ passphrase: 'override' });

    const unset = problems(() => load('encryption:\n  passphraseEnv: MISTAKEN_PASSPHRASE_TEXT\n'));
    expect(unset).toContain(
      'the environment variable named by `encryption.passphraseEnv` (line 2) is not set or empty',
    );
    expect(unset).not.toContain('MISTAKEN_PASSPHRASE_TEXT');
    expect(problems(() => load('encryption:\n  passphraseFile: nope.txt\n'))).toMatch(
      /cannot read the passphrase file .*nope\.txt named by `encryption\.passphraseFile`: ENOENT/,
    );
    const both = problems(() =>
      load('', { WALGUARD_PASSPHRASE: 'secret-one', WALGUARD_KEY: 'secret-two' }),
    );
    expect(both).toContain('WALGUARD_PASSPHRASE and WALGUARD_KEY each give the database');
    expect(both).not.toMatch(/secret-one|secret-two/);
  });
});

describe('loadConfig and openDatabase', () => {
  it('the options open a real database with the configured settings, and logLevel gives a logger', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'walguard.yaml');
    fs.writeFileSync(
      file,
      'path: app.db\nsynchronous: EXTRA\nbusyTimeoutMs: 1234\nhandleSignals: false\nlogLevel: silent\n',
    );
    const options = loadConfig(file, {});
    expect(options.logger).toMatchObject({ level: 'silent' });
    const db = await openDatabase({ ...options, path: options.path! });
    try {
      expect(db.options.path).toBe(path.join(dir, 'app.db'));
      expect(db.stats().settings.writer).toMatchObject({ synchronous: 3, busy_timeout: 1234 });
    } finally {
      await db.close();
    }
  });
});

describe('applyConfigFile (openDatabase({ config }))', () => {
  it('merges the file under the options given in code, section by section; no config, no change', async () => {
    const { applyConfigFile } = await import('../../src/config/apply-config-file.js');
    const dir = tempDir();
    const file = path.join(dir, 'walguard.yaml');
    fs.writeFileSync(
      file,
      'path: app.db\nsynchronous: NORMAL\nbusyTimeoutMs: 100\nbackup:\n  keepLast: 2\n  onOpen: true\n',
    );
    const merged = applyConfigFile(
      { config: file, synchronous: 'FULL', lingerMs: undefined, backup: { keepLast: 5 } },
      { WALGUARD_BUSY_TIMEOUT_MS: '300' },
    );
    expect(merged).toEqual({
      path: path.join(dir, 'app.db'),
      synchronous: 'FULL',
      busyTimeoutMs: 300,
      backup: { keepLast: 5, onOpen: true },
    });
    const plain = { path: 'x.db', synchronous: 'EXTRA' as const };
    expect(applyConfigFile(plain, { WALGUARD_SYNCHRONOUS: 'NORMAL' })).toBe(plain);
    expect(() => applyConfigFile({ config: path.join(dir, 'none.yaml') })).toThrow(
      /does not exist/,
    );
  });
});
