/**
 * Compiles and runs the docs' examples (see `markdown-blocks.ts`) as an app that installed
 * walguard would: in a folder of their own whose `node_modules/walguard` links to the
 * repository (so `import 'walguard'` resolves through package.json's `exports` to the built
 * `dist/`, types included), beside links to walguard's dependencies and peers (`kysely`).
 *
 * One TypeScript program type-checks every block (strict, NodeNext, as a user's app would);
 * programs are emitted to JavaScript and each runs with `node` in a fresh folder, with
 * `DB_PASSPHRASE` set (examples read their secret from the environment, as apps do) and no
 * `WALGUARD_*` variable.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import type { CodeBlock, MarkdownExamples } from './markdown-blocks.js';

/** The passphrase programs find in `process.env.DB_PASSPHRASE`. */
export const DOC_PASSPHRASE = 'doc-test passphrase';

/** The default prelude of fragments: an open database over any tables. */
const DEFAULT_PRELUDE: readonly { name: string; text: string }[] = [
  { name: 'DB', text: 'export type DB = any;' },
  { name: 'db', text: 'export declare const db: import("walguard").Walguard<DB>;' },
];

/** A block after compilation. */
export interface CompiledBlock {
  block: CodeBlock;
  /** The generated TypeScript file. */
  source: string;
  /** The emitted JavaScript (programs). */
  output: string;
  /** Type errors, as `file:line: message` of the Markdown. */
  errors: string[];
}

/** What compiling the examples gave. */
export interface DocApp {
  blocks: CompiledBlock[];
  /** Type errors in the documents' preludes. */
  preludeErrors: string[];
}

const slug = (file: string) => file.replace(/[^A-Za-z0-9]+/g, '_');

/** The names a module's top level imports, and those it declares. */
function topLevel(code: string): { imported: Set<string>; declared: Set<string> } {
  const source = ts.createSourceFile('x.ts', code, ts.ScriptTarget.Latest);
  const imported = new Set<string>();
  const declared = new Set<string>();
  const bind = (name: ts.BindingName) => {
    if (ts.isIdentifier(name)) declared.add(name.text);
    else
      for (const element of name.elements) if (!ts.isOmittedExpression(element)) bind(element.name);
  };
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && statement.importClause) {
      const clause = statement.importClause;
      if (clause.name) imported.add(clause.name.text);
      const bindings = clause.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) imported.add(bindings.name.text);
      if (bindings && ts.isNamedImports(bindings)) {
        for (const element of bindings.elements) imported.add(element.name.text);
      }
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) bind(declaration.name);
    } else if (
      (ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement)) &&
      statement.name
    ) {
      declared.add(statement.name.text);
    }
  }
  return { imported, declared };
}

/** A prelude module: the document's declarations, exported, then the defaults it lacks. */
function preludeModule(prelude: string): { text: string; names: string[] } {
  const source = ts.createSourceFile('p.ts', prelude, ts.ScriptTarget.Latest);
  let text = prelude;
  // Export every top-level declaration, from the last one back so positions hold.
  for (const statement of [...source.statements].reverse()) {
    if (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) continue;
    const modifiers = ts.canHaveModifiers(statement) ? ts.getModifiers(statement) : undefined;
    if (modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
    const at = statement.getStart(source);
    text = `${text.slice(0, at)}export ${text.slice(at)}`;
  }
  const { declared } = topLevel(prelude);
  const defaults = DEFAULT_PRELUDE.filter((d) => !declared.has(d.name));
  return {
    text: `${text}\n${defaults.map((d) => d.text).join('\n')}\n`,
    names: [...declared, ...defaults.map((d) => d.name)],
  };
}

/** Links `node_modules/<name>` in `work` to where `root` resolves it. */
function link(work: string, name: string, target: string): void {
  const at = path.join(work, 'node_modules', name);
  fs.mkdirSync(path.dirname(at), { recursive: true });
  fs.symlinkSync(target, at, 'dir');
}

/** Writes, type-checks and emits every block of `examples` in `work`. */
export function compileExamples(
  root: string,
  examples: readonly MarkdownExamples[],
  work: string,
): DocApp {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    name: string;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  link(work, pkg.name, root);
  for (const name of Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies })) {
    link(work, name, path.join(root, 'node_modules', name));
  }
  fs.writeFileSync(
    path.join(work, 'package.json'),
    JSON.stringify({ name: 'doc-examples', private: true, type: 'module' }),
  );
  const srcDir = path.join(work, 'src');
  fs.mkdirSync(path.join(srcDir, 'prelude'), { recursive: true });

  /** Generated file → where its lines come from. */
  const origin = new Map<string, { file: string; firstLine: number; skip: number }>();
  const compiled: CompiledBlock[] = [];
  for (const doc of examples) {
    const prelude = preludeModule(doc.prelude);
    const preludeFile = path.join(srcDir, 'prelude', `${slug(doc.file)}.ts`);
    fs.writeFileSync(preludeFile, prelude.text);
    origin.set(preludeFile, { file: doc.file, firstLine: doc.preludeLine, skip: 0 });
    for (const block of doc.blocks) {
      if (block.kind === 'signature') continue;
      const name = `${slug(doc.file)}_L${block.line}`;
      const source = path.join(srcDir, `${name}.ts`);
      let header = '';
      if (block.kind === 'fragment') {
        const own = topLevel(block.code);
        const wanted = prelude.names.filter((n) => !own.imported.has(n) && !own.declared.has(n));
        header = `import { ${wanted.join(', ')} } from './prelude/${slug(doc.file)}.js';`;
      }
      fs.writeFileSync(source, `${header}\n${block.code}\nexport {};\n`);
      origin.set(source, { file: doc.file, firstLine: block.line, skip: 1 });
      compiled.push({
        block,
        source,
        output: path.join(work, 'out', `${name}.js`),
        errors: [],
      });
    }
  }

  const program = ts.createProgram([...origin.keys()], {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node'],
    typeRoots: [path.join(root, 'node_modules/@types')],
    sourceMap: true,
    rootDir: srcDir,
    outDir: path.join(work, 'out'),
  });
  const errorsOf = new Map<string, string[]>();
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const file = diagnostic.file?.fileName;
    const from = file === undefined ? undefined : origin.get(path.resolve(file));
    if (from === undefined || diagnostic.start === undefined || diagnostic.file === undefined) {
      const list = errorsOf.get('') ?? [];
      list.push(`${file ?? '(program)'}: ${message}`);
      errorsOf.set('', list);
      continue;
    }
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    const list = errorsOf.get(path.resolve(file as string)) ?? [];
    list.push(`${from.file}:${from.firstLine + line - from.skip}: ${message}`);
    errorsOf.set(path.resolve(file as string), list);
  }
  program.emit();
  for (const c of compiled) c.errors = errorsOf.get(c.source) ?? [];
  const preludeErrors = [
    ...(errorsOf.get('') ?? []),
    ...[...origin.keys()]
      .filter((f) => f.includes(`${path.sep}prelude${path.sep}`))
      .flatMap((f) => errorsOf.get(f) ?? []),
  ];
  return { blocks: compiled, preludeErrors };
}

/** What running a program did. */
export interface ProgramRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs an emitted program with `node` in `cwd`, killing it after `timeoutMs`. */
export function runProgram(output: string, cwd: string, timeoutMs = 60_000): Promise<ProgramRun> {
  fs.mkdirSync(cwd, { recursive: true });
  const env: NodeJS.ProcessEnv = { DB_PASSPHRASE: DOC_PASSPHRASE };
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('WALGUARD_') && key !== 'NODE_OPTIONS') env[key] = value;
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--enable-source-maps', output],
      { cwd, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const failed = error as (Error & { code?: number; signal?: NodeJS.Signals }) | null;
        resolve({
          code: failed === null ? 0 : typeof failed.code === 'number' ? failed.code : null,
          signal: failed?.signal ?? null,
          stdout,
          stderr:
            failed !== null && failed.code === undefined ? `${stderr}\n${failed.message}` : stderr,
        });
      },
    );
  });
}
