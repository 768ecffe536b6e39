/**
 * The configuration file (YAML) and its environment overrides, turned into `openDatabase`
 * options. `openDatabase({ config: 'walguard.yaml' })` and the CLI's `--config` both come
 * here, so an app and its operator read the same file the same way.
 *
 * Order of precedence, lowest first: walguard's defaults < the file < `WALGUARD_*`
 * environment variables < options passed in code (or on the CLI's command line).
 *
 * Strategy: every problem is collected before anything is thrown, so one run shows every
 * mistake, each naming the key (with its line in the file, or the environment variable), the
 * bad value and what is allowed; unknown keys get "did you mean". The result is then passed
 * through `resolveOptions` (src/options.ts), the one place that decides what `openDatabase`
 * accepts, so a file that loads here is never refused at open.
 *
 * Invariants:
 * - No secret is ever shown: the file may only say where a secret is (an environment
 *   variable or a file), values under `encryption` are never echoed, and the values of
 *   `WALGUARD_PASSPHRASE` / `WALGUARD_KEY` or of a passphrase file appear in no message.
 * - Relative paths in the file are resolved against the file's folder (a config kept beside
 *   its database keeps working from any working directory); relative paths from the
 *   environment against the working directory.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { isMap, isScalar, LineCounter, type Node, type Pair, parseDocument } from 'yaml';
import { WalguardError } from '../errors.js';
import { type EncryptionOptions, resolveOptions, type WalguardOptions } from '../options.js';
import {
  type ConfigField,
  checkValue,
  configFields,
  expectation,
  fieldsByKey,
  type LOG_LEVELS,
  parseEnvValue,
  refusedKeys,
  SECRET_ENV,
  sections,
  showValue,
} from './config-schema.js';
import { didYouMean, editDistance } from './did-you-mean.js';

/** `openDatabase` options as a configuration file gives them: `path` may be left to the caller. */
export type ConfigOptions = Omit<WalguardOptions, 'path'> & { path?: string };

/** A pino level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One mistake in a configuration. */
export interface ConfigProblem {
  /** The key (`backup.keepLast`) or environment variable concerned. */
  key: string;
  /** The sentence describing it (without the location). */
  message: string;
  /** Where: `line 4`, `WALGUARD_SYNCHRONOUS`, … */
  where: string | undefined;
}

/** What `readConfig` found. */
export interface LoadedConfig {
  /** The options, secrets resolved, without a logger. */
  options: ConfigOptions;
  /** `logLevel`, when the file or the environment set it. */
  logLevel: LogLevel | undefined;
  /** The configuration file read (absolute), or undefined when there was none. */
  file: string | undefined;
  /** Where each key's value came from: `walguard.yaml:4` or `WALGUARD_PATH`. */
  origins: Record<string, string>;
  /** Where the secret came from, in words (never the secret): `environment variable APP_DB_PASSPHRASE`. */
  secretSource: string | undefined;
}

/** Options of `readConfig`. */
export interface ReadConfigOptions {
  /** The environment to read overrides and secrets from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Folder that relative paths from the environment are resolved against. Default the working directory. */
  cwd?: string;
}

/** A value and where it came from. */
interface Sourced {
  value: unknown;
  /** `line 4` or the environment variable's name. */
  where: string;
  /** `file` or `env`: where relative paths are resolved from. */
  from: 'file' | 'env';
}

/** Environment variables walguard reads besides the per-key ones. */
const OTHER_ENV = ['WALGUARD_CONFIG', SECRET_ENV.passphrase, SECRET_ENV.key];

/**
 * Reads the configuration file at `file` (or none, when `undefined`: then only the
 * environment counts) and applies the environment overrides. Throws `INVALID_OPTION` listing
 * every problem.
 */
export function readConfig(
  file: string | undefined,
  options: ReadConfigOptions = {},
): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  if (file === undefined) return buildConfig(new Map(), [], undefined, env, cwd);
  const absolute = path.resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new WalguardError(
      'INVALID_OPTION',
      code === 'ENOENT'
        ? `The configuration file ${absolute} does not exist`
        : `Cannot read the configuration file ${absolute}: ${(error as Error).message}`,
      { details: { file: absolute } },
    );
  }
  return parseConfig(text, { ...options, file: absolute });
}

/**
 * Parses configuration text (YAML). `file` names it in messages and is the base of relative
 * paths (default: the working directory).
 */
export function parseConfig(
  text: string,
  options: ReadConfigOptions & { file?: string } = {},
): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = options.file === undefined ? undefined : path.resolve(cwd, options.file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const where = (node: { range?: [number, number, number] | null } | null | undefined) => {
    const offset = node?.range?.[0];
    return offset === undefined ? 'the file' : `line ${lines.linePos(offset).line}`;
  };
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => ({
      key: 'YAML',
      message: `not valid YAML: ${e.message.split('\n')[0]}`,
      where: `line ${lines.linePos(e.pos[0]).line}`,
    }));
    throw invalid(file, problems);
  }
  const values = new Map<string, Sourced>();
  const problems: ConfigProblem[] = [];
  const root = doc.contents;
  if (root !== null && !(isScalar(root) && root.value === null)) {
    if (!isMap(root)) {
      problems.push({
        key: '(top level)',
        message: `expected a map of keys (\`path: data/app.db\`, …), got ${showValue(root.toJSON())}`,
        where: where(root),
      });
    } else {
      for (const pair of root.items as Pair<Node, Node | null>[]) {
        readPair(pair, undefined, values, problems, where);
      }
    }
  }
  return buildConfig(values, problems, file, env, cwd);
}

/**
 * Loads a configuration file as `openDatabase` options (with a pino logger at `logLevel` when
 * one is set). Throws `INVALID_OPTION` naming every problem.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): ConfigOptions {
  const loaded = readConfig(file, { env });
  if (loaded.logLevel === undefined) return loaded.options;
  return {
    ...loaded.options,
    logger: pino({ name: 'walguard', level: loaded.logLevel }, pino.destination(2)),
  };
}

/** Reads one key of the file (recursing into sections). */
function readPair(
  pair: Pair<Node, Node | null>,
  section: string | undefined,
  values: Map<string, Sourced>,
  problems: ConfigProblem[],
  where: (node: Node | null | undefined) => string,
): void {
  const keyNode = pair.key;
  const name = isScalar(keyNode) ? String(keyNode.value) : undefined;
  if (name === undefined) {
    problems.push({ key: '(key)', message: 'keys must be plain names', where: where(keyNode) });
    return;
  }
  const key = section === undefined ? name : `${section}.${name}`;
  const refused = refusedKeys.get(key);
  if (refused !== undefined) {
    problems.push({
      key,
      message: `\`${key}\` is not allowed here: ${refused}`,
      where: where(keyNode),
    });
    return;
  }
  const valueNode = pair.value;
  if (section === undefined && sections.includes(name)) {
    if (valueNode === null || (isScalar(valueNode) && valueNode.value === null)) return;
    if (!isMap(valueNode)) {
      const shown =
        name === 'encryption' ? '(not shown: it may be a secret)' : showValue(valueNode.toJSON());
      problems.push({
        key,
        message: `expected \`${key}\` to be a map of keys (${sectionKeys(key)}), got ${shown}`,
        where: where(valueNode),
      });
      return;
    }
    for (const inner of valueNode.items as Pair<Node, Node | null>[]) {
      readPair(inner, name, values, problems, where);
    }
    return;
  }
  const field = fieldsByKey.get(key);
  if (field === undefined) {
    problems.push({ key, message: unknownKeyMessage(key, section), where: where(keyNode) });
    return;
  }
  const raw = valueNode === null ? null : valueNode.toJSON();
  const checked = checkValue(field.kind, raw);
  if (checked === undefined) {
    problems.push({
      key,
      message: `expected \`${key}\` to be ${expectation(field.kind)}, got ${shown(field, raw)}`,
      where: where(valueNode ?? keyNode),
    });
    return;
  }
  values.set(key, { value: checked, where: where(keyNode), from: 'file' });
}

/** "unknown key … did you mean …", looking in the key's own section and then everywhere. */
function unknownKeyMessage(key: string, section: string | undefined): string {
  const name = section === undefined ? key : key.slice(section.length + 1);
  const siblings = [
    ...configFields
      .filter((f) =>
        section === undefined ? !f.key.includes('.') : f.key.startsWith(`${section}.`),
      )
      .map((f) => (section === undefined ? f.key : f.key.slice(section.length + 1))),
    ...(section === undefined ? sections : []),
  ];
  let hint = didYouMean(name, siblings);
  if (hint !== undefined && section !== undefined) hint = `${section}.${hint}`;
  if (hint === undefined) {
    // A nested key written at the wrong level (`keepLast:` at the top, `idleMs:` under backup).
    const nested = configFields.filter((f) => f.key.includes('.') && f.key !== key);
    const last = didYouMean(
      name,
      nested.map((f) => f.key.split('.').pop()!),
    );
    hint = nested.find((f) => f.key.split('.').pop() === last)?.key;
  }
  const known = section === undefined ? 'the top-level keys' : `the keys of \`${section}\``;
  return hint === undefined
    ? `unknown key \`${key}\` (${known} are ${siblings.map((s) => `\`${s}\``).join(', ')})`
    : `unknown key \`${key}\`; did you mean \`${hint}\`?`;
}

/** The keys of a section, for messages. */
function sectionKeys(section: string): string {
  return configFields
    .filter((f) => f.key.startsWith(`${section}.`))
    .map((f) => `\`${f.key.slice(section.length + 1)}\``)
    .join(', ');
}

/** A bad value shown in a message; values under `encryption` are never shown. */
function shown(field: ConfigField, raw: unknown): string {
  if (field.key.startsWith('encryption.')) {
    return `a ${raw === null ? 'null' : typeof raw} (not shown: it may be a secret)`;
  }
  return showValue(raw);
}

/** Applies the environment, checks conflicts, resolves secrets, builds the options. */
function buildConfig(
  values: Map<string, Sourced>,
  problems: ConfigProblem[],
  file: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): LoadedConfig {
  applyEnvironment(values, problems, env);
  checkConflicts(values, problems);
  const base = file === undefined ? cwd : path.dirname(file);
  const resolvePath = (s: Sourced) => path.resolve(s.from === 'file' ? base : cwd, String(s.value));
  const secret = resolveSecret(values, problems, env, resolvePath);
  if (problems.length > 0) throw invalid(file, problems);

  const get = (key: string) => values.get(key);
  const options: Record<string, unknown> = {};
  /** Nested keys by section (`backup`, `checkpoint`, `readers`). */
  const nested: Record<string, Record<string, unknown>> = {};
  for (const field of configFields) {
    const s = get(field.key);
    if (s === undefined || field.key.startsWith('encryption.') || field.key === 'logLevel') {
      continue;
    }
    const value = field.kind.type === 'path' ? resolvePath(s) : s.value;
    const [head, tail] = field.key.split('.') as [string, string | undefined];
    if (tail === undefined) options[head] = value;
    else nested[head] = { ...nested[head], [tail]: value };
  }
  Object.assign(options, nested);
  if (secret !== undefined) options.encryption = secret.encryption;

  // The one place that decides what openDatabase accepts (a placeholder path when the file
  // leaves `path` to the caller).
  try {
    resolveOptions({ path: 'placeholder.db', ...options, logger: false });
  } catch (error) {
    throw new WalguardError(
      'INVALID_OPTION',
      `Invalid configuration${file === undefined ? '' : ` (${file})`}: ${(error as Error).message}`,
      { details: { file } },
    );
  }
  const origins: Record<string, string> = {};
  for (const [key, s] of values) {
    origins[key] =
      s.from === 'file' && file !== undefined ? `${file}:${s.where.slice(5)}` : s.where;
  }
  return {
    options: options as ConfigOptions,
    logLevel: get('logLevel')?.value as LogLevel | undefined,
    file,
    origins,
    secretSource: secret?.source,
  };
}

/** Reads `WALGUARD_*` overrides into `values`; reports bad values and likely typos. */
function applyEnvironment(
  values: Map<string, Sourced>,
  problems: ConfigProblem[],
  env: NodeJS.ProcessEnv,
): void {
  const known = new Set<string>(OTHER_ENV);
  for (const field of configFields) {
    if (field.env === undefined) continue;
    known.add(field.env);
    const text = env[field.env];
    if (text === undefined || text === '') continue;
    const value = parseEnvValue(field.kind, text);
    if (value === undefined) {
      problems.push({
        key: field.key,
        message: `expected ${field.env} (overrides \`${field.key}\`) to be ${expectation(field.kind)}, got ${
          field.key.startsWith('encryption.') ? '(not shown)' : showValue(text)
        }`,
        where: undefined,
      });
      continue;
    }
    values.set(field.key, { value, where: field.env, from: 'env' });
  }
  // A variable one or two letters away from a known one is a typo that would silently do
  // nothing; other WALGUARD_* variables (a test harness's, an app's) are left alone.
  for (const name of Object.keys(env)) {
    if (!name.startsWith('WALGUARD_') || known.has(name)) continue;
    let best: string | undefined;
    let distance = 3;
    for (const candidate of known) {
      const d = editDistance(name, candidate);
      if (d < distance) {
        distance = d;
        best = candidate;
      }
    }
    if (best !== undefined) {
      problems.push({
        key: name,
        message: `unknown environment variable ${name}; did you mean ${best}?`,
        where: undefined,
      });
    }
  }
}

/** Conflicting options: each pair is rejected with a sentence saying which and why. */
function checkConflicts(values: Map<string, Sourced>, problems: ConfigProblem[]): void {
  const at = (key: string) => {
    const s = values.get(key)!;
    return `\`${key}\` (${String(s.value)}, ${s.where})`;
  };
  const num = (key: string) => values.get(key)?.value as number | undefined;
  const bounded = (batch: string, pending: string, what: string) => {
    const b = num(batch);
    const p = num(pending);
    if (b !== undefined && p !== undefined && b > p) {
      problems.push({
        key: batch,
        message: `conflicting options: ${at(batch)} is larger than ${at(pending)}: a batch is taken from the queue, so it can never hold more ${what} than the queue; lower \`${batch}\` or raise \`${pending}\``,
        where: undefined,
      });
    }
  };
  bounded('maxBatchUnits', 'maxPendingUnits', 'units');
  bounded('maxBatchBytes', 'maxPendingBytes', 'bytes');
  if (values.get('handleSignals')?.value === false && values.has('shutdownTimeoutMs')) {
    problems.push({
      key: 'shutdownTimeoutMs',
      message: `conflicting options: ${at('shutdownTimeoutMs')} only bounds a close triggered by a signal, and ${at('handleSignals')} turns those off; remove one`,
      where: undefined,
    });
  }
  if (
    values.get('onCorruption')?.value === 'restore' &&
    values.get('integrityCheck')?.value === 'off'
  ) {
    problems.push({
      key: 'onCorruption',
      message: `conflicting options: ${at('onCorruption')} restores a backup when the open finds damage, but ${at('integrityCheck')} skips the check that finds damaged pages; use \`integrityCheck: quick\` (or \`full\`)`,
      where: undefined,
    });
  }
}

/** The encryption option from the file's `encryption` section or the environment. */
function resolveSecret(
  values: Map<string, Sourced>,
  problems: ConfigProblem[],
  env: NodeJS.ProcessEnv,
  resolvePath: (s: Sourced) => string,
): { encryption: EncryptionOptions; source: string } | undefined {
  const fromEnv: { kind: 'passphrase' | 'key'; name: string; sourced?: Sourced }[] = [];
  if (env[SECRET_ENV.passphrase]) fromEnv.push({ kind: 'passphrase', name: SECRET_ENV.passphrase });
  if (env[SECRET_ENV.key]) fromEnv.push({ kind: 'key', name: SECRET_ENV.key });
  const fileKeys = ['passphraseEnv', 'passphraseFile', 'keyEnv', 'keyFile'].map(
    (k) => `encryption.${k}`,
  );
  for (const key of fileKeys) {
    const s = values.get(key);
    if (s?.from === 'env') {
      fromEnv.push({
        kind: key.includes('passphrase') ? 'passphrase' : 'key',
        name: s.where,
        sourced: s,
      });
    }
  }
  if (fromEnv.length > 1) {
    problems.push({
      key: 'encryption',
      message: `conflicting environment variables: ${fromEnv.map((e) => e.name).join(' and ')} each give the database's secret; set only one`,
      where: undefined,
    });
    return undefined;
  }
  const read = (kind: 'passphrase' | 'key', secret: string | undefined, source: string) => {
    if (secret === undefined || secret === '') {
      problems.push({
        key: 'encryption',
        message: `${source} is not set or empty`,
        where: undefined,
      });
      return undefined;
    }
    const encryption: EncryptionOptions =
      kind === 'passphrase' ? { passphrase: secret } : { key: secret };
    return { encryption, source };
  };
  const readFile = (kind: 'passphrase' | 'key', s: Sourced, label: string) => {
    const file = resolvePath(s);
    try {
      const text = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      return read(kind, text, `the ${kind} file ${file} (${label})`);
    } catch (error) {
      problems.push({
        key: label,
        message: `cannot read the ${kind} file ${file} named by ${label}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        where: s.where,
      });
      return undefined;
    }
  };
  const only = fromEnv[0];
  if (only !== undefined) {
    for (const key of fileKeys) if (values.get(key)?.from === 'file') values.delete(key);
    if (only.sourced === undefined) {
      return read(only.kind, env[only.name], `environment variable ${only.name}`);
    }
    return readFile(only.kind, only.sourced, only.name);
  }
  const given = fileKeys.filter((k) => values.has(k));
  if (given.length > 1) {
    problems.push({
      key: 'encryption',
      message: `conflicting options: ${given.map((k) => `\`${k}\` (${values.get(k)!.where})`).join(' and ')} each say where the secret is; give exactly one`,
      where: undefined,
    });
    return undefined;
  }
  const key = given[0];
  if (key === undefined) return undefined;
  const s = values.get(key)!;
  const kind = key.includes('passphrase') ? 'passphrase' : 'key';
  if (key.endsWith('File')) return readFile(kind, s, `\`${key}\``);
  const name = String(s.value);
  // The variable's name is not shown: a passphrase put here by mistake must not be echoed.
  const secret = read(kind, env[name], `the environment variable named by \`${key}\` (${s.where})`);
  if (secret !== undefined) secret.source = `environment variable ${name}`;
  return secret;
}

/** The error for a list of problems. */
function invalid(file: string | undefined, problems: ConfigProblem[]): WalguardError {
  const lines = problems.map(
    (p) => `  - ${p.where === undefined ? '' : `${p.where}: `}${p.message}`,
  );
  return new WalguardError(
    'INVALID_OPTION',
    `Invalid configuration${file === undefined ? '' : ` in ${file}`}:\n${lines.join('\n')}`,
    { details: { file, problems } },
  );
}
