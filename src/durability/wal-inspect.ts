/**
 * Reading a `-wal` file before SQLite does: what its recovery will apply, and whether a
 * damaged frame is about to make it drop commits silently.
 *
 * Why: SQLite's WAL recovery reads frames while their checksums chain and stops at the first
 * frame that does not verify, keeping what precedes the last commit frame before it. That is
 * exactly right for a torn tail (the frames of a transaction that was still being written when
 * the process or the machine died), and exactly wrong for a frame damaged later (a bit flip on
 * disk, a bad sector): every commit after it — acknowledged, fsynced writes — is dropped, the
 * database opens "ok" and passes `integrity_check`, and the WAL is deleted at the next close.
 * A damaged WAL header is worse: SQLite then ignores the whole WAL. So the open sequence asks
 * this module first, and quarantines the database and its WAL byte for byte when it finds
 * damage (see `open-database.ts`).
 *
 * Format (https://www.sqlite.org/fileformat2.html#walformat): a 32-byte header (magic
 * 0x377f0682 or 0x377f0683, version 3007000, page size, checkpoint sequence, salt-1, salt-2,
 * and a checksum of the first 24 bytes), then frames of a 24-byte header (page number, the
 * database size in pages for a commit frame or 0, salt-1, salt-2, checksum-1, checksum-2) and
 * one page. Checksums are SQLite's Fibonacci-weighted pair of 32-bit sums over 32-bit words
 * (little-endian words for magic 0x377f0682, big-endian for 0x377f0683), cumulative: each
 * frame's checksum continues from the previous frame's (the header's for frame 1) over its
 * first 8 header bytes and its page. All header fields are big-endian.
 *
 * Encrypted databases (libSQL's aes256cbc, SQLite3MultipleCiphers): measured here, the WAL
 * header and the frame headers stay in plaintext and the checksums are computed over the
 * encrypted page images as stored, so everything below works without the key.
 *
 * Telling a torn tail from damage. Recovery stops at frame B (checksum or salt mismatch). B is
 * damage when the chain resynchronises after it: continuing from B's *stored* checksum (B's
 * page or header fields changed after it was written) or from B's *computed* checksum (B's
 * checksum or salt field changed), the frames after B verify, with the header's salts, through
 * commit frames — so SQLite had written B intact and kept appending after it — AND at least
 * two committed transactions would be dropped. Why two and not one:
 * - a process crash between SQLite overwriting a page of its open transaction in place and
 *   rewriting the checksums after it (`walRewriteChecksums`, run before the commit's fsync)
 *   leaves exactly that pattern with one, never-acknowledged, commit after the break;
 * - after a power loss the unsynced tail may be torn in any order (a later frame reached the
 *   disk, an earlier one did not), and with synchronous=FULL that tail holds at most the one
 *   transaction whose fsync had not returned.
 * Two dropped commits mean a transaction committed and another began writing after it; with
 * FULL, the first was fsynced before the second started, so B was durable: not a torn write.
 * A torn tail (partial frame, zeros, frames of an older WAL generation, whose salts differ)
 * never resynchronises with the current salts.
 *
 * Not detectable here (documented in docs/durability.md): damage in the last committed
 * transaction, or in the one before it (indistinguishable from a torn tail); a WAL copied
 * from another database whose checksums are valid; a `-wal` deleted or truncated back to a
 * frame boundary. And one false alarm remains possible: after a power loss, two or more
 * deferred-only commits (synchronous=NORMAL, never fsynced) torn out of order. Then the
 * quarantined files still hold everything SQLite's recovery would have kept.
 */
import { open } from 'node:fs/promises';
import { fileError } from './fs-sync.js';

/** What the WAL header says, when it is valid. */
export interface WalHeaderInfo {
  /** Page size in bytes. */
  pageSize: number;
  /** Checkpoint sequence number. */
  checkpointSequence: number;
  /** Salt-1 and salt-2: every frame of this WAL generation carries them. */
  salts: [number, number];
  /** True when the checksums use big-endian words (magic 0x377f0683). */
  bigEndian: boolean;
}

/** Damage found in a WAL. */
export interface WalDamage {
  /** 0 for the WAL header, else the 1-based number of the first frame recovery rejects. */
  frame: number;
  /** What is wrong with it, in a sentence. */
  reason: string;
  /** Committed transactions after the damage that SQLite's recovery would drop. */
  droppedCommits: number;
}

/** The facts `inspectWal` found. */
export interface WalInspection {
  /** The `-wal` file's path. */
  path: string;
  /** Whether it exists. */
  exists: boolean;
  /** Its size in bytes. */
  bytes: number;
  /** The header, when it is valid (SQLite ignores the whole WAL otherwise). */
  header: WalHeaderInfo | null;
  /** Complete frames in the file, valid or not. */
  frames: number;
  /** Frames recovery accepts: the prefix whose checksums chain with the header's salts. */
  validFrames: number;
  /** Frames recovery applies: the valid prefix up to its last commit frame. */
  committedFrames: number;
  /** Commit frames (transactions) recovery applies. */
  commits: number;
  /** The database size in pages after the last applied commit, or null without one. */
  databasePages: number | null;
  /** Damage that would make recovery drop committed transactions, or null. */
  damage: WalDamage | null;
}

const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;
const VERSION = 3007000;
const HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
/** Frames read per chunk: bounds memory whatever the WAL's size. */
const FRAMES_PER_CHUNK = 256;
/**
 * How many dropped commits make a break damage rather than a torn tail (see the header).
 * Measured with the power-loss harness (test/crash/walguard-recovery.test.ts): of 3,000 crash
 * states of the eio-fsync-deferred workload, 1 flags 13 (torn unsynced tails), 2 flags none;
 * over 12,000 states of four deferred-heavy workloads, 2 flags none.
 */
const MIN_DROPPED_COMMITS = 2;

/** SQLite's WAL checksum of `bytes` (a multiple of 8 long), continuing from `seed`. */
export function walChecksum(
  bytes: Uint8Array,
  seed: readonly [number, number],
  bigEndian: boolean,
): [number, number] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = !bigEndian;
  let s0 = seed[0];
  let s1 = seed[1];
  for (let i = 0; i < bytes.byteLength; i += 8) {
    s0 = (s0 + view.getUint32(i, little) + s1) >>> 0;
    s1 = (s1 + view.getUint32(i + 4, little) + s0) >>> 0;
  }
  return [s0, s1];
}

/** A WAL header's fields, or null when SQLite would not accept it. */
function parseHeader(header: Buffer): WalHeaderInfo | null {
  if (header.length < HEADER_BYTES) return null;
  const magic = header.readUInt32BE(0);
  if (magic !== MAGIC_LE && magic !== MAGIC_BE) return null;
  if (header.readUInt32BE(4) !== VERSION) return null;
  const pageSize = header.readUInt32BE(8);
  if (!validPageSize(pageSize)) return null;
  const bigEndian = magic === MAGIC_BE;
  const [c0, c1] = walChecksum(header.subarray(0, 24), [0, 0], bigEndian);
  if (c0 !== header.readUInt32BE(24) || c1 !== header.readUInt32BE(28)) return null;
  return {
    pageSize,
    checkpointSequence: header.readUInt32BE(12),
    salts: [header.readUInt32BE(16), header.readUInt32BE(20)],
    bigEndian,
  };
}

function validPageSize(size: number): boolean {
  return size >= 512 && size <= 65536 && (size & (size - 1)) === 0;
}

/** One frame as read from the file. */
interface Frame {
  /** 1-based frame number. */
  number: number;
  /** Its 24-byte header. */
  header: Buffer;
  /** Its page image. */
  page: Buffer;
}

/** Reads the frames of `path` after the header, in order, a chunk at a time. */
async function* readFrames(
  handle: Awaited<ReturnType<typeof open>>,
  pageSize: number,
  frames: number,
): AsyncGenerator<Frame> {
  const frameBytes = FRAME_HEADER_BYTES + pageSize;
  // Its own ArrayBuffer, offset 0: every frame header and page starts 8-byte aligned in it.
  const chunk = Buffer.from(new ArrayBuffer(frameBytes * FRAMES_PER_CHUNK));
  for (let first = 0; first < frames; first += FRAMES_PER_CHUNK) {
    const count = Math.min(FRAMES_PER_CHUNK, frames - first);
    const position = HEADER_BYTES + first * frameBytes;
    const { bytesRead } = await handle.read(chunk, 0, count * frameBytes, position);
    const complete = Math.floor(bytesRead / frameBytes);
    for (let i = 0; i < complete; i++) {
      const at = i * frameBytes;
      yield {
        number: first + i + 1,
        header: chunk.subarray(at, at + FRAME_HEADER_BYTES),
        page: chunk.subarray(at + FRAME_HEADER_BYTES, at + frameBytes),
      };
    }
    if (complete < count) return;
  }
}

/** A frame's checksum continuing from `seed`, and whether it matches the stored one. */
function frameChecksum(frame: Frame, seed: readonly [number, number], bigEndian: boolean) {
  const sum = walChecksum(
    frame.page,
    walChecksum(frame.header.subarray(0, 8), seed, bigEndian),
    bigEndian,
  );
  const stored: [number, number] = [frame.header.readUInt32BE(16), frame.header.readUInt32BE(20)];
  return { sum, stored, matches: sum[0] === stored[0] && sum[1] === stored[1] };
}

function saltsMatch(frame: Frame, salts: readonly [number, number]): boolean {
  return frame.header.readUInt32BE(8) === salts[0] && frame.header.readUInt32BE(12) === salts[1];
}

/**
 * A chain that might resynchronise after a break: the seed it continues from, and what it
 * has verified so far.
 */
interface Resync {
  seed: [number, number];
  /** Frames verified after the break. */
  verified: number;
  /** Commit frames among them (plus the broken frame itself when its fields are intact). */
  commits: number;
  /** False once a frame failed to verify. */
  alive: boolean;
}

/**
 * Reads `<dbPath>-wal` and reports what SQLite's recovery would apply and whether damage would
 * make it drop committed transactions (see the file header). Never writes. A missing file is
 * `exists: false`; a file that cannot be read is `IO_ERROR`.
 */
export async function inspectWal(
  dbPath: string,
  options: {
    /** Dropped commits that make a break damage (default 2; see the file header). For tests. */
    minDroppedCommits?: number;
  } = {},
): Promise<WalInspection> {
  const path = `${dbPath}-wal`;
  const result: WalInspection = {
    path,
    exists: false,
    bytes: 0,
    header: null,
    frames: 0,
    validFrames: 0,
    committedFrames: 0,
    commits: 0,
    databasePages: null,
    damage: null,
  };
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return result;
    throw fileError(`Cannot read ${path}`, error, { path });
  }
  try {
    result.exists = true;
    result.bytes = (await handle.stat()).size;
    if (result.bytes < HEADER_BYTES) return result;
    const rawHeader = Buffer.alloc(HEADER_BYTES);
    await handle.read(rawHeader, 0, HEADER_BYTES, 0);
    const header = parseHeader(rawHeader);
    if (header === null) {
      result.damage = await damagedHeader(handle, rawHeader, result.bytes);
      return result;
    }
    result.header = header;
    result.frames = Math.floor(
      (result.bytes - HEADER_BYTES) / (FRAME_HEADER_BYTES + header.pageSize),
    );
    await walkFrames(
      handle,
      header,
      rawHeader,
      result,
      options.minDroppedCommits ?? MIN_DROPPED_COMMITS,
    );
    return result;
  } catch (error) {
    throw fileError(`Cannot read ${path}`, error, { path });
  } finally {
    await handle.close();
  }
}

/** Walks the frames as recovery does, then looks for a resynchronised chain after a break. */
async function walkFrames(
  handle: Awaited<ReturnType<typeof open>>,
  header: WalHeaderInfo,
  rawHeader: Buffer,
  result: WalInspection,
  minDroppedCommits: number,
): Promise<void> {
  const { salts, bigEndian } = header;
  let seed: [number, number] = [rawHeader.readUInt32BE(24), rawHeader.readUInt32BE(28)];
  let broken: { frame: number; reason: string } | undefined;
  let resyncs: Resync[] = [];
  for await (const frame of readFrames(handle, header.pageSize, result.frames)) {
    if (broken === undefined) {
      const check = frameChecksum(frame, seed, bigEndian);
      const pageNumber = frame.header.readUInt32BE(0);
      const salted = saltsMatch(frame, salts);
      if (salted && check.matches && pageNumber !== 0) {
        seed = check.sum;
        result.validFrames = frame.number;
        const commitSize = frame.header.readUInt32BE(4);
        if (commitSize !== 0) {
          result.committedFrames = frame.number;
          result.commits++;
          result.databasePages = commitSize;
        }
        continue;
      }
      broken = {
        frame: frame.number,
        reason: !salted
          ? 'its salts differ from the WAL header'
          : pageNumber === 0
            ? 'its page number is 0'
            : 'its checksum does not match',
      };
      // From its stored checksum (its page or fields changed), or from the computed one (its
      // checksum or salt field changed, the rest intact: then its own commit flag is real).
      const fieldsIntact = check.matches || !salted;
      resyncs = [
        { seed: check.stored, verified: 0, commits: 0, alive: salted },
        {
          seed: check.sum,
          verified: 0,
          commits: fieldsIntact && frame.header.readUInt32BE(4) !== 0 ? 1 : 0,
          alive: true,
        },
      ];
      continue;
    }
    for (const r of resyncs) {
      if (!r.alive) continue;
      const check = frameChecksum(frame, r.seed, bigEndian);
      if (!check.matches || !saltsMatch(frame, salts) || frame.header.readUInt32BE(0) === 0) {
        r.alive = false;
        continue;
      }
      r.seed = check.sum;
      r.verified++;
      if (frame.header.readUInt32BE(4) !== 0) r.commits++;
    }
    if (resyncs.every((r) => !r.alive)) break;
  }
  if (broken === undefined) return;
  const best = resyncs.reduce((a, b) => (b.commits > a.commits ? b : a));
  if (best.verified > 0 && best.commits >= minDroppedCommits) {
    result.damage = {
      frame: broken.frame,
      reason: `frame ${broken.frame} is damaged (${broken.reason}), but the ${best.verified} frames after it continue its checksum chain`,
      droppedCommits: best.commits,
    };
  }
}

/**
 * An invalid WAL header is damage when frames follow that chain from it: with the header's
 * stored checksum (a field of bytes 0-23 changed) or its computed one (the stored checksum
 * changed), frame 1's salts, and the header's page size (or, when that field is the damaged
 * one, any valid page size), through at least one commit frame. SQLite would ignore them all.
 */
async function damagedHeader(
  handle: Awaited<ReturnType<typeof open>>,
  rawHeader: Buffer,
  bytes: number,
): Promise<WalDamage | null> {
  const stated = rawHeader.readUInt32BE(8);
  const pageSizes = validPageSize(stated)
    ? [stated]
    : [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
  const storedSeed: [number, number] = [rawHeader.readUInt32BE(24), rawHeader.readUInt32BE(28)];
  for (const pageSize of pageSizes) {
    const frames = Math.floor((bytes - HEADER_BYTES) / (FRAME_HEADER_BYTES + pageSize));
    if (frames < 1) continue;
    for (const bigEndian of [false, true]) {
      const computedSeed = walChecksum(rawHeader.subarray(0, 24), [0, 0], bigEndian);
      for (const start of [storedSeed, computedSeed]) {
        let seed: [number, number] = start;
        let salts: [number, number] | undefined;
        let verified = 0;
        let commits = 0;
        for await (const frame of readFrames(handle, pageSize, frames)) {
          salts ??= [frame.header.readUInt32BE(8), frame.header.readUInt32BE(12)];
          const check = frameChecksum(frame, seed, bigEndian);
          if (!check.matches || !saltsMatch(frame, salts) || frame.header.readUInt32BE(0) === 0) {
            break;
          }
          seed = check.sum;
          verified++;
          if (frame.header.readUInt32BE(4) !== 0) commits++;
        }
        if (commits > 0) {
          return {
            frame: 0,
            reason: `the WAL header is damaged (SQLite would ignore the whole WAL), but ${verified} frames after it chain from it`,
            droppedCommits: commits,
          };
        }
      }
    }
  }
  return null;
}
