/**
 * Throwaway PostgreSQL clusters for the tests: `initdb` into a temp folder, `pg_ctl start` on
 * 127.0.0.1 with a free port and the socket in that folder (as the `postgres` user when the
 * tests run as root: the server refuses to run as root), stopped and removed afterwards.
 *
 * One shared cluster serves a whole `vitest` run: the first test file that needs it starts
 * it (the others wait for it), and the global setup's teardown stops and removes it. Tests
 * that restart the server start a private cluster with `startCluster()`.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pgTypes } from '../../src/pg/pg-types.js';

/** What to tell a developer whose machine has no PostgreSQL server. */
export const INSTALL_HINT =
  'PostgreSQL tests skipped: no PostgreSQL server binaries (initdb, pg_ctl) found. Install them (Debian/Ubuntu: `apt-get install -y postgresql`; macOS: `brew install postgresql@15`) and run the tests again';

/** The folder of `initdb`/`pg_ctl`, or undefined when PostgreSQL is not installed. */
export function postgresBinDir(): string | undefined {
  const fromEnv = process.env.WALGUARD_PG_BIN;
  if (fromEnv !== undefined && fs.existsSync(path.join(fromEnv, 'initdb'))) return fromEnv;
  const root = '/usr/lib/postgresql';
  if (fs.existsSync(root)) {
    const versions = fs
      .readdirSync(root)
      .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return path.join(root, versions[0], 'bin');
  }
  const found = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim();
  return found === '' ? undefined : path.dirname(found);
}

/** A running cluster. */
export interface Cluster {
  /** The temp folder holding the data directory, socket and log. */
  dir: string;
  port: number;
  /** URL of the `postgres` database, as the superuser `postgres` (trust auth, loopback only). */
  url: string;
  /** Runs `pg_ctl` with these arguments (as the cluster's owner). */
  pgCtl(...args: string[]): void;
  /** The same, without blocking the event loop (the app keeps running meanwhile). */
  pgCtlAsync(...args: string[]): Promise<void>;
  /** Stops the server and removes its folder. */
  stop(): void;
}

/** The user the server runs as: `postgres` when we are root. */
function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { name: 'postgres', uid, gid };
}

/** The command line that runs `tool` as the server's user. */
function commandOf(bin: string, tool: string, args: string[]): [string, string[]] {
  const user = serverUser();
  if (user === undefined) return [path.join(bin, tool), args];
  return ['runuser', ['-u', user.name, '--', path.join(bin, tool), ...args]];
}

function run(bin: string, tool: string, args: string[]): void {
  const [command, argv] = commandOf(bin, tool, args);
  const result = spawnSync(command, argv, { encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0) {
    throw new Error(`${tool} ${args.join(' ')} failed: ${result.stderr || result.stdout}`);
  }
}

/** A port nobody listens on now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a cluster of its own in `dir` (created; default a fresh temp folder). */
export async function startCluster(dir?: string): Promise<Cluster> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error(INSTALL_HINT);
  const home = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'walguard-pg-'));
  fs.mkdirSync(home, { recursive: true });
  const user = serverUser();
  if (user !== undefined) fs.chownSync(home, user.uid, user.gid);
  const data = path.join(home, 'data');
  run(bin, 'initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const pgCtl = (...args: string[]) => run(bin, 'pg_ctl', ['-D', data, ...args]);
  const pgCtlAsync = (...args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const [command, argv] = commandOf(bin, 'pg_ctl', ['-D', data, ...args]);
      const child = spawn(command, argv, { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`pg_ctl ${args.join(' ')}: exit ${code}`)),
      );
    });
  const options = `-p ${port} -k ${home} -c listen_addresses=127.0.0.1 -c max_connections=300`;
  pgCtl('-l', path.join(home, 'server.log'), '-o', options, '-w', 'start');
  return {
    dir: home,
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    pgCtl,
    pgCtlAsync,
    stop() {
      try {
        pgCtl('-m', 'immediate', '-w', 'stop');
      } catch {
        // Already stopped: the folder goes all the same.
      }
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** The shared cluster's folder for this vitest run (set by the global setup). */
export function sharedClusterDir(): string {
  return (
    process.env.WALGUARD_TEST_PG_DIR ?? path.join(os.tmpdir(), `walguard-pg-run-${process.ppid}`)
  );
}

let shared: Promise<string> | undefined;

/**
 * The URL of the shared cluster, started by the first caller of the run. Files run in
 * separate processes: the one that creates `<dir>.lock` starts the server and writes
 * `<dir>.url`; the others wait for that file.
 */
export function sharedClusterUrl(): Promise<string> {
  shared ??= (async () => {
    const dir = sharedClusterDir();
    const urlFile = `${dir}.url`;
    try {
      fs.mkdirSync(`${dir}.lock`);
    } catch {
      const deadline = Date.now() + 120_000;
      while (!fs.existsSync(urlFile)) {
        if (fs.existsSync(`${dir}.failed`))
          throw new Error(fs.readFileSync(`${dir}.failed`, 'utf8'));
        if (Date.now() > deadline) throw new Error('the shared PostgreSQL cluster did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      return fs.readFileSync(urlFile, 'utf8');
    }
    try {
      const cluster = await startCluster(dir);
      fs.writeFileSync(`${urlFile}.tmp`, cluster.url);
      fs.renameSync(`${urlFile}.tmp`, urlFile);
      return cluster.url;
    } catch (error) {
      fs.writeFileSync(`${dir}.failed`, String(error));
      throw error;
    }
  })();
  return shared;
}

/** Stops and removes the shared cluster of this run, if one was started. */
export function stopSharedCluster(dir: string): void {
  if (fs.existsSync(path.join(dir, 'data'))) {
    const bin = postgresBinDir();
    if (bin !== undefined) {
      try {
        run(bin, 'pg_ctl', ['-D', path.join(dir, 'data'), '-m', 'immediate', '-w', 'stop']);
      } catch {
        // Not running: remove it all the same.
      }
    }
  }
  for (const p of [dir, `${dir}.lock`, `${dir}.url`, `${dir}.failed`]) {
    fs.rmSync(p, { recursive: true, force: true });
  }
}

let databases = 0;

/** A fresh, empty database on `serverUrl`'s cluster; returns its URL. */
export async function createDatabase(serverUrl: string): Promise<string> {
  const name = `wg_${process.pid}_${++databases}`;
  const admin = new pg.Client(serverUrl);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Rows read through a fresh connection of its own (never walguard's), numbers as walguard reads them. */
export async function readFreshPg<T = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, types: pgTypes });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}
