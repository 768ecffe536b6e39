/**
 * Crash states from an operation log.
 *
 * Model. A crash at point K (0 <= K <= ops.length) happens after operations
 * 0..K-1 and before operation K. What the disk holds then is:
 *
 * - the snapshot the folder started from;
 * - every operation made durable by a sync at an index < K:
 *   - file data (write, ftruncate, O_TRUNC) of an inode by an fsync or
 *     fdatasync of that inode;
 *   - names (create, rename, unlink) depend on the {@link DurabilityModel}:
 *     `strict` (POSIX): only an fsync of the parent directory makes them
 *     durable. `ext4-like` (ext4 data=ordered): metadata reaches the disk in
 *     order through one journal, so any fsync (file or directory) makes every
 *     earlier name operation durable, and of the later ones only a prefix
 *     survives;
 * - plus a chosen part of the pending operations (index < K, not durable at
 *   K), applied in log order: see {@link PendingSubset}.
 *
 * Speed. States are built in ascending order of K from a "durable image" that
 * only grows: moving the crash point forward applies the operations the syncs
 * in between made durable, nothing else. A state is that image plus its
 * pending operations, with copy-on-write of the files they touch. File
 * contents live in memory; only writing a state out touches the disk.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Op } from './oplog.js';
import { EMPTY_SNAPSHOT, isIgnoredName, type Snapshot } from './snapshot.js';

/** Which syncs make a name operation (create, rename, unlink) durable. */
export type DurabilityModel = 'strict' | 'ext4-like';

/** Which of the pending (not yet durable) operations a crash state keeps. */
export type PendingSubset =
  /** Only what was synced. */
  | { kind: 'none' }
  /** Everything issued before K (what a kill -9 leaves). */
  | { kind: 'all' }
  /** The first `count` pending operations, as if the disk wrote them in order. */
  | { kind: 'prefix'; count: number }
  /**
   * Each pending operation independently with `probability` (default 0.5);
   * in `ext4-like` mode name operations as a random-length prefix.
   */
  | { kind: 'random'; seed: number; probability?: number }
  /**
   * Like `random`, but every pending write is split at `sectorSize` (default
   * 512) boundaries of the file and each sector is kept with `probability`:
   * torn writes.
   */
  | { kind: 'torn'; seed: number; probability?: number; sectorSize?: number };

/** A crash point and the pending operations kept. */
export interface CrashStateSpec {
  /** Crash point K: operations with index < K happened. */
  point: number;
  /** Which pending operations the state keeps. */
  subset: PendingSubset;
}

/** A crash state, built in memory. */
export interface CrashState extends CrashStateSpec {
  /** File name (relative to the folder) → contents. Ignored names are left out. */
  files: Map<string, Buffer>;
  /** Texts of the marks written before K, in order. */
  marks: string[];
  /** Number of pending operations at K. */
  pendingCount: number;
  /** Number of pending operations applied (torn writes count when any sector is). */
  appliedCount: number;
  /**
   * Identity of the state: two states with the same key have the same files
   * and the same marks, so checking one of them is enough.
   */
  key: string;
}

/** Options of a {@link CrashReplayer}. */
export interface ReplayOptions {
  /** Folder contents before the workload; default: an empty folder. */
  snapshot?: Snapshot;
  /** How names become durable; default `strict`. */
  model?: DurabilityModel;
  /** What a failed fsync does to the writes it should have synced; default `retry`. */
  failedSync?: FailedSyncModel;
}

/**
 * What happens to a file's unsynced writes when an fsync of it fails (an injected EIO).
 * `retry`: they stay pending, may reach the disk at any time, and the next successful fsync
 * of the file makes them durable. `drop`: they never reach the disk (Linux since 4.13 marks
 * the pages whose writeback failed clean, so the page cache still serves them while the disk
 * never gets them: PostgreSQL's "fsyncgate"); before the failed fsync they may have landed.
 */
export type FailedSyncModel = 'retry' | 'drop';

/** Options of {@link CrashReplayer.plan}. */
export interface PlanOptions {
  /**
   * Crash points. `syncs` (default): just before and just after each sync,
   * just after each mark, and the end of the log. `every`: every K. Or a list.
   */
  points?: 'syncs' | 'every' | readonly number[];
  /** Random and torn subsets per point with pending operations (default 1 each). */
  randomPerPoint?: number;
  /** Seed of the random subsets (default 1). */
  seed?: number;
  /**
   * Upper bound on the number of specs; points are thinned evenly to stay
   * under it (the last point is always kept). Default: no bound.
   */
  maxStates?: number;
}

/** File contents that grow like a file; bytes past `size` are always zero. */
class Content {
  buf: Buffer;
  size: number;

  constructor(buf: Buffer = Buffer.alloc(0), size = buf.length) {
    this.buf = buf;
    this.size = size;
  }

  clone(): Content {
    const buf = Buffer.alloc(this.size);
    this.buf.copy(buf, 0, 0, this.size);
    return new Content(buf, this.size);
  }

  #reserve(n: number): void {
    if (n <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(n, this.buf.length * 2, 4096));
    this.buf.copy(grown, 0, 0, this.size);
    this.buf = grown;
  }

  write(offset: number, data: Buffer): void {
    const end = offset + data.length;
    this.#reserve(end);
    data.copy(this.buf, offset);
    if (end > this.size) this.size = end;
  }

  truncate(length: number): void {
    if (length < this.size) {
      this.buf.fill(0, length, this.size);
    } else {
      this.#reserve(length);
    }
    this.size = length;
  }

  view(): Buffer {
    return this.buf.subarray(0, this.size);
  }
}

/** Names and inodes; inode ids are the replay's own (inode numbers get reused). */
interface Image {
  names: Map<string, number>;
  inodes: Map<number, Content>;
}

/** A state-changing operation, resolved to the replay's inode ids. */
type Effect =
  | { type: 'create'; index: number; name: string; inode: number; durableAt: number }
  | { type: 'rename'; index: number; from: string; to: string; inode: number; durableAt: number }
  | { type: 'unlink'; index: number; name: string; inode: number; durableAt: number }
  | {
      type: 'write';
      index: number;
      inode: number;
      offset: number;
      data: Buffer;
      durableAt: number;
      /** Op index of the failed fsync that lost it (`failedSync: 'drop'`). */
      droppedAt?: number;
    }
  | {
      type: 'truncate';
      index: number;
      inode: number;
      length: number;
      durableAt: number;
      droppedAt?: number;
    };

/** Whether effect `e` is still pending (issued, not durable, not lost) at crash point `point`. */
const pendingAtPoint = (e: Effect, point: number): boolean =>
  e.durableAt >= point && !('droppedAt' in e && e.droppedAt !== undefined && e.droppedAt < point);

const isMeta = (e: Effect): boolean =>
  e.type === 'create' || e.type === 'rename' || e.type === 'unlink';

const parentOf = (name: string): string => {
  const at = name.lastIndexOf('/');
  return at < 0 ? '' : name.slice(0, at);
};

/** A small, fast, seedable PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One pending effect chosen for a state; `sectors` set for a torn write. */
interface Choice {
  effect: Effect;
  sectors?: { size: number; keep: boolean[] };
}

/**
 * Builds crash states from one operation log. Asking for states in
 * ascending order of K is fastest (see the file header); any order works.
 */
export class CrashReplayer {
  /** The log replayed. */
  readonly ops: readonly Op[];
  /** The durability model in force. */
  readonly model: DurabilityModel;
  /** What a failed fsync does to the writes it should have synced. */
  readonly failedSync: FailedSyncModel;
  /** State-changing operations, in log order. */
  readonly #effects: Effect[] = [];
  /** Op index of each successful sync → positions in #effects it made durable. */
  readonly #madeDurable = new Map<number, number[]>();
  /** Op indices of marks, ascending, and their texts. */
  readonly #markIndex: number[] = [];
  readonly #markText: string[] = [];
  /** The snapshot as an image; never modified. */
  readonly #initial: Image;

  /** Durable image at crash point #frontier (effects with durableAt < #frontier applied). */
  #durable!: Image;
  #frontier = 0;
  /** How many effects the durable image holds: identifies it, since it only grows. */
  #durableCount = 0;
  /** Positions in #effects with index < #frontier and durableAt >= #frontier. */
  #pending: number[] = [];
  /** First position in #effects with index >= #frontier. */
  #nextEffect = 0;

  constructor(ops: readonly Op[], options: ReplayOptions = {}) {
    this.ops = ops;
    this.model = options.model ?? 'strict';
    this.failedSync = options.failedSync ?? 'retry';
    const snapshot = options.snapshot ?? EMPTY_SNAPSHOT;
    this.#initial = { names: new Map(), inodes: new Map() };
    const liveNames = new Map<string, number>();
    const byIno = new Map<number, number>();
    let nextInode = 1;
    for (const file of snapshot.files) {
      const id = nextInode++;
      this.#initial.names.set(file.name, id);
      this.#initial.inodes.set(id, new Content(Buffer.from(file.data)));
      liveNames.set(file.name, id);
      byIno.set(file.ino, id);
    }

    const lookup = (op: Op & { ino: number }, path: string): number => {
      const id = byIno.get(op.ino) ?? liveNames.get(path);
      if (id === undefined) {
        throw new Error(
          `op #${op.index} (${op.kind} '${path}') refers to a file that existed before recording ` +
            'and is not in the snapshot: take a snapshot of the folder before the workload starts',
        );
      }
      return id;
    };
    // Effects not yet durable: data per inode; names per directory (strict) or all (ext4-like).
    const pendingData = new Map<number, number[]>();
    const pendingMeta: { pos: number; dirs: Set<string> }[] = [];
    const settle = (syncIndex: number, positions: number[]) => {
      if (positions.length === 0) return;
      for (const p of positions) this.#effects[p]!.durableAt = syncIndex;
      const list = this.#madeDurable.get(syncIndex);
      if (list) list.push(...positions);
      else this.#madeDurable.set(syncIndex, positions);
    };
    const addEffect = (e: Effect, dirs?: string[]) => {
      const pos = this.#effects.length;
      this.#effects.push(e);
      if (dirs) {
        pendingMeta.push({ pos, dirs: new Set(dirs) });
      } else {
        const list = pendingData.get(e.inode);
        if (list) list.push(pos);
        else pendingData.set(e.inode, [pos]);
      }
    };

    for (const op of ops) {
      const index = op.index;
      switch (op.kind) {
        case 'open': {
          if (op.isDir || isIgnoredName(op.path)) break;
          if (op.created) {
            const id = nextInode++;
            byIno.set(op.ino, id);
            liveNames.set(op.path, id);
            addEffect({ type: 'create', index, name: op.path, inode: id, durableAt: Infinity }, [
              parentOf(op.path),
            ]);
          } else if (op.truncated) {
            const id = lookup(op, op.path);
            addEffect({ type: 'truncate', index, inode: id, length: 0, durableAt: Infinity });
          }
          break;
        }
        case 'write': {
          if (isIgnoredName(op.path)) break;
          const id = lookup(op, op.path);
          addEffect({
            type: 'write',
            index,
            inode: id,
            offset: op.offset,
            data: op.data,
            durableAt: Infinity,
          });
          break;
        }
        case 'truncate': {
          if (isIgnoredName(op.path)) break;
          const id = lookup(op, op.path);
          addEffect({ type: 'truncate', index, inode: id, length: op.length, durableAt: Infinity });
          break;
        }
        case 'rename': {
          if (op.from === '') {
            throw new Error(
              `op #${index}: '${op.to}' was moved into the folder from outside it; its contents ` +
                'were never recorded, so crash states cannot be rebuilt',
            );
          }
          if (isIgnoredName(op.from) && isIgnoredName(op.to)) break;
          const id = liveNames.get(op.from) ?? byIno.get(op.ino) ?? -1;
          liveNames.delete(op.from);
          if (id >= 0) liveNames.set(op.to, id);
          addEffect(
            { type: 'rename', index, from: op.from, to: op.to, inode: id, durableAt: Infinity },
            [...new Set([parentOf(op.from), parentOf(op.to)])],
          );
          break;
        }
        case 'unlink': {
          if (isIgnoredName(op.path)) break;
          const id = liveNames.get(op.path) ?? -1;
          liveNames.delete(op.path);
          addEffect({ type: 'unlink', index, name: op.path, inode: id, durableAt: Infinity }, [
            parentOf(op.path),
          ]);
          break;
        }
        case 'fsync': {
          const made: number[] = [];
          if (!op.isDir) {
            const id = byIno.get(op.ino) ?? liveNames.get(op.path);
            if (id !== undefined) {
              made.push(...(pendingData.get(id) ?? []));
              pendingData.delete(id);
            }
          }
          if (this.model === 'ext4-like') {
            // One ordered journal: any sync commits every earlier name operation.
            for (const m of pendingMeta) made.push(m.pos);
            pendingMeta.length = 0;
          } else if (op.isDir) {
            for (let i = 0; i < pendingMeta.length; i++) {
              const m = pendingMeta[i]!;
              m.dirs.delete(op.path);
              if (m.dirs.size === 0) {
                made.push(m.pos);
                pendingMeta.splice(i, 1);
                i--;
              }
            }
          }
          made.sort((a, b) => a - b);
          settle(index, made);
          break;
        }
        case 'mark':
          this.#markIndex.push(index);
          this.#markText.push(op.text);
          break;
        case 'fault': {
          if (op.call !== 'fsync' || this.failedSync !== 'drop') break;
          const id = byIno.get(op.ino) ?? liveNames.get(op.path);
          if (id === undefined) break;
          for (const p of pendingData.get(id) ?? []) {
            const e = this.#effects[p]!;
            if (e.type === 'write' || e.type === 'truncate') e.droppedAt = index;
          }
          pendingData.delete(id);
          break;
        }
        default:
          break;
      }
    }
    this.#reset();
  }

  /** Crash points run from 0 (nothing happened) to this (everything happened). */
  get lastPoint(): number {
    return this.ops.length;
  }

  /** Texts of the marks written before crash point `point`. */
  marksBefore(point: number): string[] {
    return this.#markText.slice(0, this.#marksCount(point));
  }

  /** Op indices of the operations pending (issued, not durable) at `point`. */
  pendingAt(point: number): number[] {
    this.#advanceTo(point);
    return this.#pending.map((p) => this.#effects[p]!.index);
  }

  /** Builds the state `spec` in memory. */
  state(spec: CrashStateSpec): CrashState {
    const { point, subset } = spec;
    if (!Number.isInteger(point) || point < 0 || point > this.ops.length) {
      throw new RangeError(`Expected a crash point in 0..${this.ops.length}, got ${point}`);
    }
    this.#advanceTo(point);
    const pending = this.#pending.map((p) => this.#effects[p]!);
    const chosen = this.#choose(pending, spec);

    const names = new Map(this.#durable.names);
    const inodes = new Map(this.#durable.inodes);
    const owned = new Set<number>();
    const image: Image = { names, inodes };
    for (const c of chosen) applyEffect(image, c.effect, owned, c.sectors);
    const files = new Map<string, Buffer>();
    for (const [name, id] of names) {
      if (isIgnoredName(name)) continue;
      files.set(name, inodes.get(id)?.view() ?? Buffer.alloc(0));
    }
    const marksCount = this.#marksCount(point);
    return {
      point,
      subset,
      files,
      marks: this.#markText.slice(0, marksCount),
      pendingCount: pending.length,
      appliedCount: chosen.length,
      key: this.#key(point, chosen),
    };
  }

  /**
   * The key {@link state} would give `spec`, without building the state's files: cheap, for
   * planning distinct states.
   */
  stateKey(spec: CrashStateSpec): string {
    const { point } = spec;
    if (!Number.isInteger(point) || point < 0 || point > this.ops.length) {
      throw new RangeError(`Expected a crash point in 0..${this.ops.length}, got ${point}`);
    }
    this.#advanceTo(point);
    const pending = this.#pending.map((p) => this.#effects[p]!);
    return this.#key(point, this.#choose(pending, spec));
  }

  /** A state's key: what is durable (it only grows), the marks, the pending effects applied. */
  #key(point: number, chosen: readonly Choice[]): string {
    const parts = chosen.map((c) =>
      c.sectors
        ? `${c.effect.index}/${c.sectors.keep.map((k) => (k ? 1 : 0)).join('')}`
        : `${c.effect.index}`,
    );
    return `${this.#durableCount}|${this.#marksCount(point)}|${parts.join(',')}`;
  }

  /** Builds the state `spec` and writes its files into `dir` (created if needed). */
  materialize(spec: CrashStateSpec, dir: string): CrashState {
    const state = this.state(spec);
    writeState(state, dir);
    return state;
  }

  /**
   * Plans crash states: for each chosen point with pending operations,
   * `none`, `all`, a half prefix and `randomPerPoint` random and torn subsets;
   * a point with nothing pending gives one state. Sorted by point.
   */
  plan(options: PlanOptions = {}): CrashStateSpec[] {
    const seed = options.seed ?? 1;
    const perPoint = options.randomPerPoint ?? 1;
    const points = this.#points(options.points ?? 'syncs');
    const specsAt = (point: number): CrashStateSpec[] => {
      const n = this.pendingAt(point).length;
      if (n === 0) return [{ point, subset: { kind: 'none' } }];
      const out: CrashStateSpec[] = [
        { point, subset: { kind: 'none' } },
        { point, subset: { kind: 'all' } },
      ];
      if (n > 1) out.push({ point, subset: { kind: 'prefix', count: Math.floor(n / 2) } });
      for (let r = 0; r < perPoint; r++) {
        const s = (seed * 1_000_003 + point * 7919 + r * 104_729) >>> 0;
        out.push({ point, subset: { kind: 'random', seed: s } });
        out.push({ point, subset: { kind: 'torn', seed: s ^ 0x5bd1e995 } });
      }
      return out;
    };
    let specs = points.flatMap(specsAt);
    const max = options.maxStates;
    if (max !== undefined && specs.length > max) {
      // Thin the points evenly, keeping the last, until the plan fits.
      let keep = Math.max(1, Math.floor((points.length * max) / specs.length));
      for (;;) {
        const step = points.length / keep;
        const thinned: number[] = [];
        for (let i = 0; i < keep; i++) thinned.push(points[Math.floor(i * step)]!);
        thinned[thinned.length - 1] = points[points.length - 1]!;
        const candidate = [...new Set(thinned)].flatMap(specsAt);
        if (candidate.length <= max || keep === 1) {
          specs = candidate.slice(0, max);
          break;
        }
        keep = Math.max(1, Math.floor(keep * 0.9));
      }
    }
    return specs;
  }

  #points(which: 'syncs' | 'every' | readonly number[]): number[] {
    const n = this.ops.length;
    if (which === 'every') return Array.from({ length: n + 1 }, (_, i) => i);
    if (which !== 'syncs') return [...new Set(which)].sort((a, b) => a - b);
    const set = new Set<number>([n]);
    for (const op of this.ops) {
      if (op.kind === 'fsync') {
        set.add(op.index);
        set.add(op.index + 1);
      } else if (op.kind === 'mark') {
        set.add(op.index + 1);
      }
    }
    return [...set].sort((a, b) => a - b);
  }

  #marksCount(point: number): number {
    // Number of marks with index < point (binary search).
    let lo = 0;
    let hi = this.#markIndex.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#markIndex[mid]! < point) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #reset(): void {
    this.#durable = {
      names: new Map(this.#initial.names),
      inodes: new Map([...this.#initial.inodes].map(([id, c]) => [id, c.clone()])),
    };
    this.#frontier = 0;
    this.#durableCount = 0;
    this.#pending = [];
    this.#nextEffect = 0;
  }

  #advanceTo(point: number): void {
    if (point < this.#frontier) this.#reset();
    if (point === this.#frontier) return;
    for (let i = this.#frontier; i < point; i++) {
      const made = this.#madeDurable.get(i);
      if (!made) continue;
      for (const p of made) applyEffect(this.#durable, this.#effects[p]!, null);
      this.#durableCount += made.length;
    }
    const stillPending = this.#pending.filter((p) => pendingAtPoint(this.#effects[p]!, point));
    while (this.#nextEffect < this.#effects.length) {
      const e = this.#effects[this.#nextEffect]!;
      if (e.index >= point) break;
      if (pendingAtPoint(e, point)) stillPending.push(this.#nextEffect);
      this.#nextEffect++;
    }
    this.#pending = stillPending;
    this.#frontier = point;
  }

  #choose(pending: Effect[], spec: CrashStateSpec): Choice[] {
    const { subset } = spec;
    switch (subset.kind) {
      case 'none':
        return [];
      case 'all':
        return pending.map((effect) => ({ effect }));
      case 'prefix':
        return pending.slice(0, Math.max(0, subset.count)).map((effect) => ({ effect }));
      case 'random':
      case 'torn': {
        const rand = seededRandom(subset.seed);
        const p = subset.probability ?? 0.5;
        const sectorSize = subset.kind === 'torn' ? (subset.sectorSize ?? 512) : 0;
        // ext4-like: names reach the disk in order, so keep a random prefix of them.
        const metas = pending.filter(isMeta);
        const metaKeep =
          this.model === 'ext4-like' ? Math.floor(rand() * (metas.length + 1)) : Infinity;
        let metaSeen = 0;
        const out: Choice[] = [];
        for (const effect of pending) {
          if (isMeta(effect)) {
            const keep = this.model === 'ext4-like' ? metaSeen < metaKeep : rand() < p;
            metaSeen++;
            if (keep) out.push({ effect });
          } else if (effect.type === 'write' && sectorSize > 0) {
            const first = Math.floor(effect.offset / sectorSize);
            const last = Math.floor((effect.offset + effect.data.length - 1) / sectorSize);
            const keep: boolean[] = [];
            for (let s = first; s <= last; s++) keep.push(rand() < p);
            if (keep.every(Boolean)) out.push({ effect });
            else if (keep.some(Boolean)) out.push({ effect, sectors: { size: sectorSize, keep } });
          } else if (rand() < p) {
            out.push({ effect });
          }
        }
        return out;
      }
    }
  }
}

/**
 * Applies one effect. With `owned` (a state's copy-on-write set), a file's
 * contents are copied before the first change; with null they are changed in
 * place (the durable image owns its contents).
 */
function applyEffect(
  image: Image,
  e: Effect,
  owned: Set<number> | null,
  sectors?: { size: number; keep: boolean[] },
): void {
  const mutable = (id: number): Content => {
    let c = image.inodes.get(id);
    if (c === undefined) {
      c = new Content();
      image.inodes.set(id, c);
      owned?.add(id);
    } else if (owned !== null && !owned.has(id)) {
      c = c.clone();
      image.inodes.set(id, c);
      owned.add(id);
    }
    return c;
  };
  switch (e.type) {
    case 'create':
      image.names.set(e.name, e.inode);
      break;
    case 'rename': {
      const id = image.names.get(e.from) ?? e.inode;
      image.names.delete(e.from);
      if (id >= 0) image.names.set(e.to, id);
      break;
    }
    case 'unlink':
      if (e.inode < 0 || image.names.get(e.name) === e.inode) image.names.delete(e.name);
      break;
    case 'truncate':
      mutable(e.inode).truncate(e.length);
      break;
    case 'write': {
      const c = mutable(e.inode);
      if (sectors === undefined) {
        c.write(e.offset, e.data);
        break;
      }
      const end = e.offset + e.data.length;
      const first = Math.floor(e.offset / sectors.size);
      sectors.keep.forEach((keep, i) => {
        if (!keep) return;
        const from = Math.max(e.offset, (first + i) * sectors.size);
        const to = Math.min(end, (first + i + 1) * sectors.size);
        c.write(from, e.data.subarray(from - e.offset, to - e.offset));
      });
      break;
    }
  }
}

/** Writes a state's files into `dir` (created if needed). */
export function writeState(state: Pick<CrashState, 'files'>, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of state.files) {
    const path = join(dir, name);
    if (name.includes('/')) mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, data);
  }
}
