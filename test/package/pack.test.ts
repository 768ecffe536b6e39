/**
 * The package as a user gets it. A copy of the repository's files as a fresh clone has them
 * (no `dist/`, no `node_modules/` of its own) is packed with `npm pack`; the tarball is
 * installed with npm into a throwaway app beside `kysely`, as the README's install line
 * says; the app imports it, writes through it, runs the `walguard` bin, and type-checks a
 * consumer file with `strict`. npm resolves from its cache first (`--prefer-offline`), so the
 * install costs a few seconds after the repository's own `npm ci`.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Runs a command; on failure the error carries its output. */
async function sh(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  try {
    return await run(file, args, {
      cwd,
      env: { ...process.env, ...env },
      maxBuffer: 32 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed in ${cwd}:\n${e.stdout}\n${e.stderr}`);
  }
}

/** The files a fresh clone has: tracked ones plus new ones git does not ignore. */
async function cloneFiles(): Promise<string[]> {
  const { stdout } = await sh('git', ['ls-files', '-z', '-co', '--exclude-standard'], root);
  return stdout.split('\0').filter((f) => f !== '' && fs.existsSync(path.join(root, f)));
}

/** Every module a file imports or re-exports, statically or with `import()`. */
function moduleSpecifiers(file: string): string[] {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

let work: string;
let app: string;
let packed: string[];

describe('the packed package', () => {
  beforeAll(async () => {
    work = tempDir('walguard-pack-');
    const clone = path.join(work, 'clone');
    for (const file of await cloneFiles()) {
      fs.mkdirSync(path.dirname(path.join(clone, file)), { recursive: true });
      fs.copyFileSync(path.join(root, file), path.join(clone, file));
    }
    // The clone's `npm ci` would bring the devDependencies the build needs; link ours instead.
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
    const { stdout } = await sh('npm', ['pack', '--json', '--pack-destination', work], clone);
    const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as {
      filename: string;
      files: { path: string }[];
    }[];
    if (info === undefined) throw new Error(`npm pack printed no result:\n${stdout}`);
    packed = info.files.map((f) => f.path);

    app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'app', private: true, type: 'module' }),
    );
    // The README's install line: `npm install walguard kysely`.
    const kysely = `kysely@${pkg.peerDependencies?.kysely ?? pkg.devDependencies.kysely ?? 'latest'}`;
    await sh(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        path.join(work, info.filename),
        kysely,
      ],
      app,
    );
  }, 300_000);

  it('holds the built code, its declarations and the sources its maps point at', () => {
    for (const file of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'dist/metrics/index.js',
      'dist/queue/writer-worker.js',
      'src/index.ts',
      'README.md',
      'docs/api.md',
    ]) {
      expect(packed, file).toContain(file);
    }
    expect(packed.filter((f) => /^(test|bench|demo|scripts)\//.test(f))).toEqual([]);
  });

  it('is imported by an app, which writes and reads through it with its own kysely', async () => {
    fs.writeFileSync(
      path.join(app, 'use.mjs'),
      `import { openDatabase, WalguardError } from 'walguard';
import { PrometheusExporter } from 'walguard/metrics';
import { sql } from 'kysely';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
const db = await openDatabase({ path: 'data/app.db', logger: false });
await db.kysely.schema.createTable('notes').ifNotExists().addColumn('body', 'text').execute();
await db.write((k) => k.insertInto('notes').values({ body: 'hi' }));
const rows = await db.kysely.selectFrom('notes').select(sql\`count(*)\`.as('n')).execute();
await db.close();
const here = createRequire(import.meta.url);
const theirs = createRequire(fileURLToPath(import.meta.resolve('walguard')));
console.log(JSON.stringify({
  rows,
  error: typeof WalguardError,
  exporter: typeof PrometheusExporter,
  sameKysely: here.resolve('kysely') === theirs.resolve('kysely'),
}));
`,
    );
    const { stdout } = await sh(process.execPath, ['use.mjs'], app);
    expect(JSON.parse(stdout)).toEqual({
      rows: [{ n: 1 }],
      error: 'function',
      exporter: 'function',
      sameKysely: true,
    });
  });

  it('installs the walguard command, which prints its usage', async () => {
    const { stdout } = await sh(path.join(app, 'node_modules/.bin/walguard'), ['--help'], app);
    expect(stdout).toMatch(/^Usage: walguard <command>/m);
    expect(stdout).toContain('status');
  });

  it('type-checks a consumer file under strict', async () => {
    fs.writeFileSync(
      path.join(app, 'consumer.ts'),
      `import { type Generated, type Kysely, sql } from 'kysely';
import { isWalguardError, openDatabase, type Walguard, type WriteResult } from 'walguard';
import { PrometheusExporter } from 'walguard/metrics';

interface DB {
  notes: { id: Generated<number>; body: string };
}

export async function main(): Promise<number> {
  const db: Walguard<DB> = await openDatabase<DB>({ path: 'data/app.db', backup: { keepLast: 3 } });
  const k: Kysely<DB> = db.kysely;
  const [result]: [WriteResult<{ id: number }>] = await db.write((q) => [
    q.insertInto('notes').values({ body: 'hi' }).returning('id'),
  ]);
  await db.defer((q) => q.deleteFrom('notes').where('id', '=', result.rows[0]?.id ?? 0));
  const row = await k.selectFrom('notes').select(['id', 'body']).executeTakeFirst();
  const n = await db.transaction(async (trx) => {
    const { count } = await trx
      .selectFrom('notes')
      .select(sql<number>\`count(*)\`.as('count'))
      .executeTakeFirstOrThrow();
    return count;
  });
  new PrometheusExporter().watch(db);
  try {
    await db.close();
  } catch (error) {
    if (isWalguardError(error, 'CLOSED')) return -1;
  }
  return (row?.body.length ?? 0) + n;
}
`,
    );
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [path.join(root, 'node_modules/@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
    const { stdout } = await sh(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
    expect(stdout).toBe('');
    // skipLibCheck: false checks walguard's declarations and its dependencies' too: 7 s on a
    // quiet machine, over a minute under a load average of 18.
  }, 240_000);

  it('ships every source file its source maps name, so stack traces point at real files', async () => {
    const installed = path.join(app, 'node_modules/walguard');
    const missing: string[] = [];
    const maps = packed.filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(10);
    for (const map of maps) {
      const { sources } = JSON.parse(fs.readFileSync(path.join(installed, map), 'utf8')) as {
        sources: string[];
      };
      for (const source of sources) {
        const file = path.resolve(path.dirname(path.join(installed, map)), source);
        if (!fs.existsSync(file)) missing.push(`${map} → ${source}`);
      }
    }
    expect(missing).toEqual([]);

    // A real trace: a bad option thrown from inside the package, with source maps on.
    fs.writeFileSync(
      path.join(app, 'trace.mjs'),
      `import { openDatabase } from 'walguard';
try { await openDatabase({ path: 'data/x.db', maxBatchUnits: 0 }); } catch (e) { console.log(e.stack); }
`,
    );
    const { stdout } = await sh(process.execPath, ['--enable-source-maps', 'trace.mjs'], app);
    const frames = [...stdout.matchAll(/\((\/[^()]+\.ts):\d+:\d+\)/g)].map((m) => m[1] as string);
    expect(frames.length, stdout).toBeGreaterThan(0);
    for (const frame of frames) expect(fs.existsSync(frame), frame).toBe(true);
  });
});

describe('package.json', () => {
  it('lists as runtime dependencies exactly the packages src/ imports, kysely as a peer', () => {
    const imported = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.name.endsWith('.ts')) {
          for (const spec of moduleSpecifiers(full)) {
            if (spec.startsWith('.') || spec.startsWith('node:')) continue;
            const parts = spec.split('/');
            imported.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string));
          }
        }
      }
    };
    walk(path.join(root, 'src'));
    const declared = [
      ...Object.keys(pkg.dependencies),
      ...Object.keys(pkg.peerDependencies ?? {}),
    ].sort();
    expect(declared).toEqual([...imported].sort());
    expect(pkg.peerDependencies?.kysely).toMatch(/^\^0\.28\./);
    expect(pkg.devDependencies.kysely).toBeDefined();
    expect(pkg.dependencies.kysely).toBeUndefined();
  });
});
