/**
 * The read suite's databases, prepared once per run and copied into each trial's folder: a
 * `rows` table of 200-byte rows (heavy and point reads), or a `memories` table of 384-dimension
 * embeddings (recall).
 *
 * The memories are created by `memoryMigrations()` (walguard's own schema), then the vector
 * index is dropped before loading: libSQL's DiskANN index took 21-59 ms per inserted row
 * here (5,000 rows: 108 s; indexing 2,000 existing rows: 118 s), so 100,000 indexed memories
 * would take the better part of an hour to build. Recall runs exact scans
 * (`recall(q, { exact: true })`), the path `MemoryStore` takes below `scanBelow` or with a
 * filter the index cannot serve; `vector_top_k` itself is covered by the unit tests.
 */
import fs from 'node:fs';
import { sql } from 'kysely';
import { memoryMigrations, openDatabase } from '../../src/index.js';
import { databaseFile, prepareDatabase } from '../workload.js';

/** Seeded unit-scale random embeddings (the same for every run). */
export function embeddings(dimensions: number, seed: number): () => Float32Array {
  let state = seed >>> 0;
  return () => {
    const out = new Float32Array(dimensions);
    for (let i = 0; i < dimensions; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      out[i] = state / 2 ** 32 - 0.5;
    }
    return out;
  };
}

/** A `rows` table of `rows` 200-byte rows in `dir`. */
export async function prepareRows(dir: string, rows: number): Promise<string> {
  return prepareDatabase(dir, {
    units: 0,
    callers: 1,
    rowBytes: 200,
    readRatio: 0,
    preloadRows: rows,
  });
}

/** A `memories` table (walguard's schema, no vector index) of `count` memories in `dir`. */
export async function prepareMemories(
  dir: string,
  count: number,
  dimensions: number,
): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const file = databaseFile(dir);
  const db = await openDatabase({
    path: file,
    logger: false,
    migrations: memoryMigrations({ dimensions }),
    backup: { beforeMigrations: false },
  });
  await sql`DROP INDEX memories_embedding_idx`.execute(db.kysely);
  await sql`CREATE TABLE rows (id INTEGER PRIMARY KEY, payload TEXT)`.execute(db.kysely);
  await db.close();
  const { default: Database } = await import('libsql');
  const raw = new Database(file);
  try {
    const insert = raw.prepare(
      'INSERT INTO memories (kind, content, importance, embedding, created_at) VALUES (?, ?, 0.5, ?, ?)',
    );
    const next = embeddings(dimensions, 0x1234567);
    raw.exec('BEGIN');
    for (let i = 0; i < count; i++) {
      const e = next();
      insert.run(['fact', `memory ${i}`, Buffer.from(e.buffer), BigInt(1_700_000_000_000 + i)]);
    }
    raw.exec('COMMIT');
    raw.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  } finally {
    raw.close();
  }
  return file;
}

/** Copies a prepared database into a trial's fresh folder. */
export function copyDatabase(template: string, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(template, databaseFile(dir));
  for (const suffix of ['-wal', '-shm']) {
    if (fs.existsSync(template + suffix))
      fs.copyFileSync(template + suffix, databaseFile(dir) + suffix);
  }
}
