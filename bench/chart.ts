/**
 * Draws a saved full run as a chart: rows/s (log scale) against concurrent callers, one line
 * per driver, one panel per row size, written next to the JSON as `<same-name>.svg`.
 *
 *   node --import tsx bench/chart.ts bench/results/2026-11-25-full.json [more.json …]
 *
 * `run.ts` calls it after a full (not `--quick`) run. Drawn with Vega-Lite (compiled to a
 * Vega spec and rendered headless to SVG: no canvas needed). Bulk drivers write every row in
 * one call, so concurrency does not apply to them: their one figure is drawn as a dashed
 * level across the whole axis, for reference.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Aggregate } from './aggregate.js';
import { BULK_DRIVERS, CONCURRENCY } from './plan.js';
import type { RunMeta } from './report.js';
import { DRIVER_NAMES } from './trial-types.js';

/** One point of the chart. */
interface Point {
  driver: string;
  rowSize: string;
  rowBytes: number;
  callers: number;
  rowsPerSec: number;
  low: number;
  high: number;
  bulk: boolean;
}

const sizeLabel = (b: number): string => (b >= 1024 ? `${b / 1024} KiB rows` : `${b} B rows`);

/** The points of a run's `writes` group (medians, with the min–max over repetitions). */
export function chartPoints(aggregates: readonly Aggregate[]): Point[] {
  const points: Point[] = [];
  for (const a of aggregates) {
    if (a.group !== 'writes' || a.reps === 0) continue;
    const bulk = BULK_DRIVERS.includes(a.driver);
    const base = {
      driver: a.driver,
      rowSize: sizeLabel(a.rowBytes),
      rowBytes: a.rowBytes,
      rowsPerSec: a.unitsPerSec.median,
      low: a.unitsPerSec.min,
      high: a.unitsPerSec.max,
      bulk,
    };
    if (bulk) for (const callers of CONCURRENCY) points.push({ ...base, callers });
    else points.push({ ...base, callers: a.callers });
  }
  return points;
}

/** The Vega-Lite spec of a run's chart. */
export function chartSpec(meta: RunMeta, points: readonly Point[]): TopLevelSpec {
  const disk = meta.profile.slowDisk
    ? `slow disk (every fsync +${meta.profile.fsyncDelayUs / 1000} ms)`
    : 'disk as it is';
  const drivers = DRIVER_NAMES.filter((d) => points.some((p) => p.driver === d));
  const sizes = [
    ...new Set([...points].sort((a, b) => a.rowBytes - b.rowBytes).map((p) => p.rowSize)),
  ];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Durable writes: rows/s against concurrent callers, ${disk}`,
      subtitle: [
        `${meta.date.slice(0, 16).replace('T', ' ')} UTC · ${meta.machine.cpu}, ${meta.machine.cores} cores · Node ${meta.node} · walguard ${meta.versions.walguard ?? '?'} · libsql ${meta.versions.libsql ?? '?'}`,
        `synchronous=FULL unless named; median of ${meta.reps} runs, band = min–max; dashed: bulk drivers (one call, concurrency does not apply)`,
      ],
      anchor: 'start',
    },
    data: { values: points as unknown as Record<string, unknown>[] },
    facet: {
      column: { field: 'rowSize', type: 'nominal', sort: sizes, title: null },
    },
    spec: {
      width: 260,
      height: 300,
      encoding: {
        x: {
          field: 'callers',
          type: 'ordinal',
          sort: [...CONCURRENCY],
          title: 'concurrent callers',
          axis: { labelAngle: 0 },
        },
        color: {
          field: 'driver',
          type: 'nominal',
          sort: drivers,
          scale: { domain: drivers, scheme: 'category10' },
          title: 'driver',
        },
      },
      layer: [
        {
          mark: { type: 'area', opacity: 0.12 },
          transform: [{ filter: '!datum.bulk' }],
          encoding: {
            y: { field: 'low', type: 'quantitative', scale: { type: 'log' } },
            y2: { field: 'high' },
          },
        },
        {
          mark: { type: 'line', point: true },
          encoding: {
            y: {
              field: 'rowsPerSec',
              type: 'quantitative',
              scale: { type: 'log' },
              title: 'rows/s (log scale)',
              axis: { format: '~s' },
            },
            strokeDash: {
              field: 'bulk',
              type: 'nominal',
              scale: {
                domain: [false, true],
                range: [
                  [1, 0],
                  [5, 4],
                ],
              },
              legend: null,
            },
            tooltip: [
              { field: 'driver' },
              { field: 'callers' },
              { field: 'rowsPerSec', format: ',.0f' },
            ],
          },
        },
      ],
    },
    resolve: { scale: { y: 'shared' } },
    config: { font: 'sans-serif', view: { stroke: '#ccc' }, legend: { symbolOpacity: 1 } },
  };
}

/** Renders a saved run's JSON to `<same-name>.svg`; returns its path, or undefined without data. */
export async function writeChart(jsonFile: string): Promise<string | undefined> {
  const saved = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as {
    meta: RunMeta;
    aggregates: Aggregate[];
  };
  const points = chartPoints(saved.aggregates);
  if (points.length === 0) return undefined;
  const compiled = compile(chartSpec(saved.meta, points));
  const view = new vega.View(vega.parse(compiled.spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const out = jsonFile.replace(/\.json$/, '.svg');
  fs.writeFileSync(out, svg);
  return out;
}

async function main(): Promise<void> {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('Usage: node --import tsx bench/chart.ts <results.json> [more.json …]\n');
    process.exit(2);
  }
  for (const file of files) {
    const out = await writeChart(file);
    process.stderr.write(
      out === undefined ? `chart: ${file} has no full-mode writes\n` : `chart: wrote ${out}\n`,
    );
  }
}

if (
  process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)
) {
  await main();
}
