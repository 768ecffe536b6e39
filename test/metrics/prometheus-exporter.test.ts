import path from 'node:path';
import { sql } from 'kysely';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/index.js';
import { CHANNELS, hasSubscribers, publish, subscribe } from '../../src/metrics/channels.js';
import { PrometheusExporter, prometheusText } from '../../src/metrics/prometheus-exporter.js';
import { tempDir } from '../helpers.js';

/** The value of one series in Prometheus text, e.g. `walguard_commits_total{database="app"}`. */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no series ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

async function openTemp() {
  const dir = tempDir('walguard-metrics-');
  const db = await openDatabase<{ t: { x: number } }>({
    path: path.join(dir, 'app.db'),
    logger: false,
    handleSignals: false,
    checkpoint: { idleMs: 0 },
  });
  await sql`create table t (x integer)`.execute(db.kysely);
  return db;
}

describe('Prometheus export', () => {
  it('exports stats() as counters and gauges, and commit/checkpoint events as histograms', async () => {
    const exporter = new PrometheusExporter();
    const db = await openTemp();
    try {
      exporter.watch(db, { name: 'app' });
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => db.write((k) => k.insertInto('t').values({ x: i }))),
      );
      await db.checkpoint('TRUNCATE');
      const text = await exporter.metrics();
      const stats = db.stats();
      expect(value(text, 'walguard_commits_total{database="app"}')).toBe(stats.commits);
      expect(value(text, 'walguard_units_total{database="app"}')).toBe(stats.units);
      expect(stats.units).toBeGreaterThanOrEqual(21);
      expect(value(text, 'walguard_pending_units{database="app"}')).toBe(0);
      expect(value(text, 'walguard_wal_bytes{database="app"}')).toBe(0);
      expect(value(text, 'walguard_checkpoints_total{database="app"}')).toBe(1);
      expect(text).toContain('# TYPE walguard_commits_total counter');
      expect(text).toContain('# TYPE walguard_commit_duration_seconds histogram');
      expect(value(text, 'walguard_batch_size_recent_units{database="app",quantile="1"}')).toBe(
        stats.batchSize.max,
      );
      // Every batch committed since watch() is one observation; units add up to the 20 writes.
      const batches = value(text, 'walguard_batch_size_units_count{database="app"}');
      expect(batches).toBeGreaterThanOrEqual(1);
      expect(value(text, 'walguard_batch_size_units_sum{database="app"}')).toBe(20);
      expect(
        value(text, 'walguard_commit_duration_seconds_count{database="app",durable="true"}'),
      ).toBe(batches);
      expect(
        value(text, 'walguard_checkpoint_duration_seconds_count{database="app",mode="TRUNCATE"}'),
      ).toBe(1);
      expect(exporter.contentType).toContain('text/plain');
    } finally {
      exporter.close();
      await db.close();
    }
  });

  it('exports reads by where they ran, the reader threads and their queue, and read latency', async () => {
    const exporter = new PrometheusExporter();
    const db = await openTemp();
    try {
      exporter.watch(db, { name: 'app' });
      for (let i = 0; i < 20; i++) await db.kysely.selectFrom('t').selectAll().execute();
      await db.transaction(async (trx) => {
        await trx.selectFrom('t').selectAll().execute();
      });
      const text = await exporter.metrics();
      const reads = db.stats().reads;
      expect(reads.main + reads.pool).toBe(20);
      expect(value(text, 'walguard_reads_total{database="app",ran_on="main"}')).toBe(reads.main);
      expect(value(text, 'walguard_reads_total{database="app",ran_on="reader"}')).toBe(reads.pool);
      expect(value(text, 'walguard_reads_total{database="app",ran_on="writer"}')).toBe(1);
      expect(value(text, 'walguard_reader_threads{database="app"}')).toBe(reads.threads);
      expect(value(text, 'walguard_read_queue_depth{database="app"}')).toBe(0);
      expect(
        value(
          text,
          'walguard_reader_thread_read_latency_recent_seconds{database="app",quantile="1"}',
        ),
      ).toBeCloseTo(reads.poolLatencyMs.max / 1000, 9);
    } finally {
      exporter.close();
      await db.close();
    }
  });

  it('counts integrity, corruption, recovery and error events from the diagnostics channels', async () => {
    const registry = new Registry();
    const exporter = new PrometheusExporter({ registry, prefix: 'app_db_' });
    try {
      publish('integrity', {
        path: '/data/a.db',
        level: 'quick',
        ok: true,
        durationMs: 3,
        trigger: 'open',
      });
      publish('integrity', {
        path: '/data/a.db',
        level: 'full',
        ok: false,
        durationMs: 9,
        trigger: 'check',
      });
      publish('corruption', { path: '/data/a.db', source: 'integrity', message: 'page 7' });
      publish('recovery', {
        path: '/data/a.db',
        restoredFrom: '/data/backups/a.1.db',
        backupTakenAt: new Date(0).toISOString(),
        quarantineDir: '/data/a.db.corrupted.x',
      });
      publish('error', {
        path: '/data/a.db',
        source: 'deferred',
        code: 'SQLITE_CONSTRAINT_UNIQUE',
        message: 'x',
      });
      const text = await registry.metrics();
      expect(
        value(
          text,
          'app_db_integrity_checks_total{database="/data/a.db",level="quick",result="ok"}',
        ),
      ).toBe(1);
      expect(
        value(
          text,
          'app_db_integrity_checks_total{database="/data/a.db",level="full",result="failed"}',
        ),
      ).toBe(1);
      expect(
        value(text, 'app_db_corruption_events_total{database="/data/a.db",source="integrity"}'),
      ).toBe(1);
      expect(value(text, 'app_db_recoveries_total{database="/data/a.db"}')).toBe(1);
      expect(
        value(
          text,
          'app_db_errors_total{database="/data/a.db",source="deferred",code="SQLITE_CONSTRAINT_UNIQUE"}',
        ),
      ).toBe(1);
    } finally {
      exporter.close();
    }
    // Closed: it no longer listens.
    expect(hasSubscribers('integrity')).toBe(false);
  });

  it('prometheusText scrapes once; an unwatched database disappears from the export', async () => {
    const db = await openTemp();
    try {
      await db.write((k) => k.insertInto('t').values({ x: 1 }));
      const once = await prometheusText(db);
      expect(value(once, `walguard_units_total{database="${db.options.path}"}`)).toBe(
        db.stats().units,
      );
      const exporter = new PrometheusExporter();
      const unwatch = exporter.watch(db);
      expect(exporter.watch(db)).toBe(unwatch);
      unwatch();
      expect(await exporter.metrics()).not.toContain(db.options.path);
      exporter.close();
    } finally {
      await db.close();
    }
  });
});

describe('diagnostics channels', () => {
  it('have stable names, and publish reaches subscribers only while subscribed', () => {
    expect(CHANNELS).toMatchObject({
      commit: 'walguard:commit',
      checkpoint: 'walguard:checkpoint',
      backup: 'walguard:backup',
      integrity: 'walguard:integrity',
      corruption: 'walguard:corruption',
      recovery: 'walguard:recovery',
    });
    const seen: unknown[] = [];
    expect(hasSubscribers('close')).toBe(false);
    const unsubscribe = subscribe('close', (m) => seen.push(m));
    expect(hasSubscribers('close')).toBe(true);
    publish('close', { path: '/x.db', durationMs: 2 });
    unsubscribe();
    publish('close', { path: '/x.db', durationMs: 3 });
    expect(seen).toEqual([{ path: '/x.db', durationMs: 2 }]);
  });
});
