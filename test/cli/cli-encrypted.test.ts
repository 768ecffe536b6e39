import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveKey, readKeyFile } from '../../src/durability/key-file.js';
import {
  ensureBuilt,
  makeDatabase,
  type Run,
  walguard as runWalguard,
  tempDir,
} from './cli-harness.js';

const PASSPHRASE = 'correct horse battery staple 4711';
const RAW_KEY = 'raw-libsql-key-0123456789abcdef';
/** Every secret used here, and every key derived from one: none may ever be printed. */
const secrets = new Set<string>([PASSPHRASE, RAW_KEY, 'wrong passphrase 0815', 'wrong-raw-key-42']);
/** Every run of this file, scanned for secrets at the end. */
const runs: Run[] = [];

async function walguard(...args: Parameters<typeof runWalguard>): Promise<Run> {
  const run = await runWalguard(...args);
  runs.push(run);
  return run;
}

/** A passphrase database (cheap scrypt parameters in its key file) with its derived key recorded. */
async function passphraseDatabase(rows = 40): Promise<{ dir: string; file: string }> {
  const dir = tempDir();
  const file = path.join(dir, 'secret.db');
  await makeDatabase(file, { rows, passphrase: PASSPHRASE });
  secrets.add(await deriveKey(PASSPHRASE, (await readKeyFile(file))!));
  return { dir, file };
}

beforeAll(ensureBuilt, 120_000);

afterAll(() => {
  // The secret scan: no passphrase, raw key or derived key in any output or log line (the
  // runs below include --log-level trace).
  expect(runs.length).toBeGreaterThan(20);
  for (const run of runs) {
    for (const secret of secrets) {
      expect(run.stdout).not.toContain(secret);
      expect(run.stderr).not.toContain(secret);
    }
  }
});

describe('a passphrase-encrypted database', () => {
  it('init --passphrase-stdin creates it with a 0600 key file; status needs the passphrase for settings and schema', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'new.db');
    const init = await walguard(
      [
        'init',
        file,
        '--passphrase-stdin',
        '--stores',
        'conversations',
        '--json',
        '--log-level',
        'trace',
      ],
      { input: `${PASSPHRASE}\n` },
    );
    expect(init.code).toBe(0);
    expect(init.json).toMatchObject({ encrypted: true, keyFile: `${file}.keyinfo` });
    expect(fs.statSync(`${file}.keyinfo`).mode & 0o777).toBe(0o600);
    expect(init.stderr).toContain('"step":"key"');
    secrets.add(await deriveKey(PASSPHRASE, (await readKeyFile(file))!));

    const locked = await walguard(['status', file, '--json']);
    expect(locked.code).toBe(5);
    expect(locked.json).toMatchObject({
      encrypted: true,
      header: { kind: 'encrypted-or-garbage' },
      lock: { held: false },
      settings: null,
      error: { code: 'KEY_REQUIRED' },
    });
    const human = await walguard(['status', file]);
    expect(human.code).toBe(5);
    expect(human.stdout).toMatch(/encryption\s+on \(key file/);
    expect(human.stderr).toContain('--passphrase-stdin');
  });

  it('opens with --key-file, --passphrase-stdin or $WALGUARD_PASSPHRASE; a wrong passphrase is WRONG_KEY (4)', async () => {
    const { dir, file } = await passphraseDatabase();
    const keyFile = path.join(dir, 'passphrase.txt');
    fs.writeFileSync(keyFile, `${PASSPHRASE}\n`, { mode: 0o600 });
    const [byFile, byStdin, byEnv, wrong, wrongText] = await Promise.all([
      walguard(['status', file, '--key-file', keyFile, '--json', '--log-level', 'trace']),
      walguard(['check', file, '--passphrase-stdin', '--json'], { input: `${PASSPHRASE}\n` }),
      walguard(['check', file, '--full', '--json'], { env: { WALGUARD_PASSPHRASE: PASSPHRASE } }),
      walguard(['check', file, '--passphrase-stdin', '--json'], {
        input: 'wrong passphrase 0815\n',
      }),
      walguard(['backup', file, '--log-level', 'trace'], {
        env: { WALGUARD_PASSPHRASE: 'wrong passphrase 0815' },
      }),
    ]);
    expect(byFile.code).toBe(0);
    expect(byFile.json).toMatchObject({
      encrypted: true,
      encryption: { given: 'passphrase', source: `passphrase from --key-file ${keyFile}` },
      settings: { journal_mode: 'wal', synchronous: 2 },
      schema: { tables: 1 },
    });
    expect(byStdin.json).toMatchObject({ ok: true, healthy: true });
    expect(byEnv.json).toMatchObject({ ok: true, healthy: true, level: 'full' });
    expect(wrong.code).toBe(4);
    expect(wrong.json.error).toMatchObject({ code: 'WRONG_KEY' });
    expect(wrongText.code).toBe(4);
    expect(wrongText.stderr).toContain('walguard backup: WRONG_KEY:');
    expect(fs.existsSync(path.join(dir, 'backups'))).toBe(false);

    // A secret file others can read is used, with a warning.
    fs.chmodSync(keyFile, 0o644);
    const loose = await walguard(['check', file, '--key-file', keyFile]);
    expect(loose.code).toBe(0);
    expect(loose.stderr).toContain('can be read by other users');
  });

  it('a missing key file is KEY_REQUIRED (5); a plaintext database given a passphrase is NOT_ENCRYPTED (6)', async () => {
    const { file } = await passphraseDatabase(5);
    fs.renameSync(`${file}.keyinfo`, `${file}.keyinfo.away`);
    const env = { WALGUARD_PASSPHRASE: PASSPHRASE };
    const missing = await walguard(['check', file, '--json'], { env });
    expect(missing.code).toBe(5);
    expect(missing.json.error!.message).toContain('.keyinfo');

    const plain = path.join(tempDir(), 'plain.db');
    await makeDatabase(plain, { rows: 3 });
    const [check, vacuum] = await Promise.all([
      walguard(['check', plain, '--json'], { env }),
      walguard(['vacuum', plain], { env }),
    ]);
    expect(check.code).toBe(6);
    expect(check.json.error).toMatchObject({ code: 'NOT_ENCRYPTED' });
    expect(vacuum.code).toBe(6);
    expect(vacuum.stderr).toContain('is $WALGUARD_PASSPHRASE set?');
  });

  it('backup keeps the key file beside the copy; backups --verify needs the passphrase; restore reads passphrase and answer from stdin', async () => {
    const { dir, file } = await passphraseDatabase(60);
    const env = { WALGUARD_PASSPHRASE: PASSPHRASE };
    const taken = await walguard(['backup', file, '--json'], { env });
    expect(taken.code).toBe(0);
    const backupPath = (taken.json.backup as { path: string }).path;
    expect(fs.existsSync(`${backupPath}.keyinfo`)).toBe(true);
    expect(fs.readFileSync(backupPath).subarray(0, 16).toString('latin1')).not.toContain('SQLite');

    const [verified, withoutKey] = await Promise.all([
      walguard(['backups', file, '--verify', '--json'], { env }),
      walguard(['backups', file, '--verify', '--json']),
    ]);
    expect(verified.json).toMatchObject({
      failed: 0,
      backups: [{ verified: true, keyFile: true }],
    });
    expect(withoutKey.code).toBe(1);
    expect(withoutKey.json).toMatchObject({
      backups: [{ verified: false, error: { code: 'KEY_REQUIRED' } }],
    });

    fs.rmSync(file);
    fs.rmSync(`${file}.keyinfo`);
    const restored = await walguard(['restore', file, 'latest', '--passphrase-stdin', '--json'], {
      input: `${PASSPHRASE}\nyes\n`,
    });
    expect(restored.code).toBe(0);
    expect(fs.existsSync(`${file}.keyinfo`)).toBe(true);
    const check = await walguard(['check', file, '--json'], { env });
    expect(check.json.healthy).toBe(true);
    expect(fs.readdirSync(dir)).toContain('backups');
  });

  it('vacuum, optimize and checkpoint keep it encrypted with the same passphrase', async () => {
    const { file } = await passphraseDatabase(300);
    const env = { WALGUARD_PASSPHRASE: PASSPHRASE };
    for (const command of ['vacuum', 'optimize', 'checkpoint']) {
      const run = await walguard([command, file, '--json', '--log-level', 'trace'], { env });
      expect(run.code, command).toBe(0);
    }
    const status = await walguard(['status', file, '--json'], { env });
    expect(status.code).toBe(0);
    expect(status.json).toMatchObject({ encrypted: true, schema: { tables: 1 } });
    expect(fs.readFileSync(file).subarray(0, 16).toString('latin1')).not.toContain('SQLite');
  });
});

describe('a database encrypted with a raw key', () => {
  it('opens with $WALGUARD_KEY or --raw-key; a wrong key is WRONG_KEY (4)', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'raw.db');
    await makeDatabase(file, { rows: 25, key: RAW_KEY });
    const keyFile = path.join(dir, 'raw.key');
    fs.writeFileSync(keyFile, 'wrong-raw-key-42\n', { mode: 0o600 });
    const [status, wrong, wrongStdin, noKey] = await Promise.all([
      walguard(['status', file, '--json'], { env: { WALGUARD_KEY: RAW_KEY } }),
      walguard(['check', file, '--key-file', keyFile, '--raw-key', '--json']),
      walguard(['status', file, '--passphrase-stdin', '--raw-key', '--json'], {
        input: 'wrong-raw-key-42\n',
      }),
      walguard(['check', file, '--json']),
    ]);
    expect(status.code).toBe(0);
    expect(status.json).toMatchObject({
      encrypted: true,
      encryption: { given: 'key', source: 'environment variable WALGUARD_KEY' },
      files: { keyFile: null },
      schema: { tables: 1 },
    });
    expect(wrong.code).toBe(4);
    expect(wrong.json.error!.message).toContain('The key does not open');
    expect(wrongStdin.code).toBe(4);
    expect(noKey.code).toBe(5);

    const backup = await walguard(['backup', file, '--json'], { env: { WALGUARD_KEY: RAW_KEY } });
    expect(backup.code).toBe(0);
    const verify = await walguard([
      'backups',
      file,
      '--verify',
      '--key-file',
      keyFile,
      '--raw-key',
      '--json',
    ]);
    expect(verify.code).toBe(1);
    expect(verify.json).toMatchObject({
      backups: [{ verified: false, error: { code: 'WRONG_KEY' } }],
    });
  });

  it('a configuration file names where the secret is, never the secret', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 5, key: RAW_KEY });
    fs.writeFileSync(path.join(dir, 'db.key'), RAW_KEY);
    fs.writeFileSync(
      path.join(dir, 'walguard.yaml'),
      'path: app.db\nencryption:\n  keyFile: db.key\n',
    );
    const ok = await walguard(['check', '--config', path.join(dir, 'walguard.yaml'), '--json']);
    expect(ok.json).toMatchObject({ ok: true, healthy: true, database: file });
    fs.writeFileSync(
      path.join(dir, 'inline.yaml'),
      `path: app.db\nencryption:\n  key: ${RAW_KEY}\n`,
    );
    const inline = await walguard(['check', '--config', path.join(dir, 'inline.yaml'), '--json']);
    expect(inline.code).toBe(2);
    expect(inline.json.error!.message).toContain(
      'a key must not be written in a configuration file',
    );
  });
});
