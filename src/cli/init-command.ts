/**
 * `walguard init <db>`: a new database with the stores' migrations and walguard's durable
 * settings, opened and closed through `openDatabase` itself, so it is exactly what the app
 * will open (WAL mode, every setting read back, the key file for a passphrase).
 */

import { keyFilePath } from '../durability/key-file.js';
import type { MigrationSet } from '../repo/migrations.js';
import type { CommandSpec } from './command.js';
import { fileFacts } from './database-facts.js';
import { CliError, EXIT } from './exit-codes.js';

const STORES = ['conversations', 'memories'] as const;

/** Most embedding dimensions (the memories store's `MAX_DIMENSIONS`, libSQL's vector limit). */
const MAX_DIMENSIONS = 65536;

export const initCommand: CommandSpec = {
  name: 'init',
  summary: "Create a database with the stores' migrations and the durable settings",
  args: [
    { name: 'db', required: false, help: 'the new database file (default: `path` of --config)' },
  ],
  options: {
    stores: {
      type: 'string',
      valueName: 'LIST',
      help: 'stores to create, comma-separated: conversations, memories, or none (default conversations,memories)',
    },
    dimensions: {
      type: 'string',
      valueName: 'N',
      help: 'embedding dimensions of the memories store (required with it; cannot change later)',
    },
  },
  description: `Creates the database through openDatabase, as the app will open it: WAL journal,
synchronous=FULL (or the configured level), every setting read back, and the stores'
migrations applied, each in its own transaction. Refuses a path where a database (or a
key file) already exists.

Encryption: with --passphrase-stdin (or --key-file, or $WALGUARD_PASSPHRASE) the
database is encrypted with a key derived from the passphrase, and its key file
<db>.keyinfo (the salt and a check value, nothing secret) is created beside it: keep it
with the database and its backups. On a terminal the passphrase is asked twice. With
--raw-key the secret is used as the key itself and no key file is made.`,
  json: '`database`, `encrypted`, `keyFile` (path or null), `migrations` (each `set`, `migration`, `durationMs`), `settings` (as read back on the writer connection).',
  exitCodes: [
    [EXIT.PROBLEM, 'a database or key file already exists at the path; nothing was changed'],
  ],
  async run(context) {
    const target = await context.target();
    const dbPath = target.path;
    if (fileFacts(dbPath) !== null) {
      throw new CliError(
        'PROBLEM',
        `A database already exists at ${dbPath}; init only creates new ones (nothing was changed)`,
        { path: dbPath },
      );
    }
    if (fileFacts(keyFilePath(dbPath)) !== null) {
      throw new CliError(
        'PROBLEM',
        `A key file already exists at ${keyFilePath(dbPath)} without its database; move it away first (nothing was changed)`,
        { path: keyFilePath(dbPath) },
      );
    }
    const stores = parseStores(context.values.stores as string | undefined);
    const dimensions = parseDimensions(context.values.dimensions as string | undefined, stores);
    const encryption = target.options.encryption;
    if (
      encryption !== undefined &&
      'passphrase' in encryption &&
      context.values['passphrase-stdin'] === true &&
      context.io.stdin.isTerminal
    ) {
      const again = await context.io.stdin.readLine('Passphrase again: ', true);
      if (again !== encryption.passphrase) {
        throw new CliError('USAGE', 'The two passphrases differ; nothing was created');
      }
    }
    // Loaded here, not at the top: Kysely and the stores are the bulk of the CLI's start-up
    // time, and only init needs them.
    const { openDatabase } = await import('../walguard.js');
    const { conversationMigrations } = await import('../repo/conversation-store.js');
    const { memoryMigrations } = await import('../repo/memory-store.js');
    const migrations: MigrationSet[] = [];
    if (stores.includes('conversations')) migrations.push(conversationMigrations());
    if (stores.includes('memories')) migrations.push(memoryMigrations({ dimensions: dimensions! }));
    const db = await openDatabase({
      ...target.options,
      integrityCheck: 'off',
      handleSignals: false,
      migrations,
      backup: { ...target.options.backup, onOpen: false, intervalMs: 0 },
    });
    let ran: { set: string; migration: string; durationMs: number }[];
    let settings: unknown;
    try {
      ran = (db.migrations?.ran ?? []).map((r) => ({ ...r, durationMs: Math.round(r.durationMs) }));
      settings = db.stats().settings.writer;
    } finally {
      await db.close();
    }
    const keyFile = fileFacts(keyFilePath(dbPath))?.path ?? null;
    const data = {
      database: dbPath,
      encrypted: encryption !== undefined,
      keyFile,
      migrations: ran,
      settings,
    };
    const text =
      `Created ${dbPath}${encryption === undefined ? '' : ' (encrypted)'}\n` +
      (ran.length > 0
        ? `  migrations: ${ran.map((r) => `${r.set}/${r.migration}`).join(', ')}\n`
        : '') +
      (keyFile === null
        ? ''
        : `  key file: ${keyFile} — keep it with the database and its backups: without it the passphrase cannot open the database\n`);
    return { exitCode: EXIT.OK, data, text };
  },
};

function parseStores(value: string | undefined): string[] {
  if (value === undefined) return [...STORES];
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 1 && list[0] === 'none') return [];
  for (const store of list) {
    if (!(STORES as readonly string[]).includes(store)) {
      throw new CliError(
        'USAGE',
        `Unknown store \`${store}\` in --stores: expected conversations, memories or none`,
      );
    }
  }
  return list;
}

function parseDimensions(value: string | undefined, stores: string[]): number | undefined {
  if (!stores.includes('memories')) {
    if (value !== undefined) {
      throw new CliError(
        'USAGE',
        '--dimensions is for the memories store, which --stores leaves out',
      );
    }
    return undefined;
  }
  if (value === undefined) {
    throw new CliError(
      'USAGE',
      'The memories store needs --dimensions N (the size of your embeddings, e.g. 384; it cannot change later), or leave it out with --stores conversations',
    );
  }
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_DIMENSIONS) {
    throw new CliError(
      'USAGE',
      `Expected --dimensions to be an integer from 1 to ${MAX_DIMENSIONS}, got \`${value}\``,
    );
  }
  return n;
}
