/**
 * The operation log written by the walrec shim (test/crash/shim/walrec.c),
 * parsed into typed operations.
 *
 * Binary format, little-endian, one record per operation, records back to
 * back with no file header (several processes may append to one log):
 *
 * | offset | type | field                                                    |
 * | ------ | ---- | -------------------------------------------------------- |
 * | 0      | u32  | magic 0x43455257 ("WREC")                                |
 * | 4      | u16  | record type (see {@link RecordType})                     |
 * | 6      | u16  | flags (per type)                                         |
 * | 8      | u32  | pid                                                      |
 * | 12     | u32  | thread id                                                |
 * | 16     | u64  | inode number of the file (0 when not applicable)         |
 * | 24     | i64  | argument: write offset, truncate length, open flags,     |
 * |        |      | errno of a fault                                         |
 * | 32     | u32  | len1: length of the path                                 |
 * | 36     | u32  | len2: length of the data (write, mark) or target path    |
 * | 40     |      | len1 bytes of path, then len2 bytes                      |
 *
 * Paths are relative to WALREC_DIR; "" is the folder itself.
 */
import { readFileSync } from 'node:fs';

/** Magic number at the start of every record. */
export const RECORD_MAGIC = 0x43455257;
/** Size of a record's fixed header in bytes. */
export const RECORD_HEADER_BYTES = 40;

/** Record type codes, as written by the shim. */
export const RecordType = {
  open: 1,
  write: 2,
  truncate: 3,
  fsync: 4,
  rename: 5,
  unlink: 6,
  close: 7,
  mark: 8,
  fault: 9,
} as const;

/** Fields every operation carries. */
export interface OpBase {
  /** Position in the log (0-based); a crash point K keeps operations with index < K. */
  index: number;
  /** Process that made the call. */
  pid: number;
  /** Thread that made the call. */
  tid: number;
}

/** A successful open of a tracked file or of the folder. */
export interface OpenOp extends OpBase {
  kind: 'open';
  /** Path relative to the folder ("" is the folder). */
  path: string;
  /** Inode number of the opened file. */
  ino: number;
  /** The open(2) flags. */
  flags: number;
  /** O_CREAT made a new file: a new name in the folder. */
  created: boolean;
  /** O_TRUNC emptied an existing file. */
  truncated: boolean;
  /** The fd is a directory. */
  isDir: boolean;
}

/** A successful write of `data` at `offset` (the bytes actually written). */
export interface WriteOp extends OpBase {
  kind: 'write';
  /** Path of the file when written. */
  path: string;
  /** Inode number of the file. */
  ino: number;
  /** File offset of the first byte. */
  offset: number;
  /** The bytes written (a view into the log buffer). */
  data: Buffer;
}

/** A successful ftruncate. */
export interface TruncateOp extends OpBase {
  kind: 'truncate';
  /** Path of the file. */
  path: string;
  /** Inode number of the file. */
  ino: number;
  /** New length in bytes. */
  length: number;
}

/** A successful fsync or fdatasync of a file or of the folder. */
export interface FsyncOp extends OpBase {
  kind: 'fsync';
  /** Path of the file or folder synced. */
  path: string;
  /** Inode number. */
  ino: number;
  /** The fd was a directory: the sync makes names durable. */
  isDir: boolean;
  /** fdatasync rather than fsync. */
  datasync: boolean;
}

/** A successful rename inside the folder. `from` is "" when the file came from outside it. */
export interface RenameOp extends OpBase {
  kind: 'rename';
  /** Old path ("" when moved in from outside the folder: not replayable). */
  from: string;
  /** New path. */
  to: string;
  /** Inode number of the moved file (0 if unknown). */
  ino: number;
}

/** A successful unlink (or a rename out of the folder). */
export interface UnlinkOp extends OpBase {
  kind: 'unlink';
  /** Path removed. */
  path: string;
  /** Inode number of the removed file (0 if unknown). */
  ino: number;
}

/** A close of a tracked fd (informational; no effect on durability). */
export interface CloseOp extends OpBase {
  kind: 'close';
  /** Path of the file when closed ("" if it had been unlinked). */
  path: string;
  /** Inode number. */
  ino: number;
}

/** A mark written by the workload to `.walrec-mark`. */
export interface MarkOp extends OpBase {
  kind: 'mark';
  /** The text of one write, trailing newline removed. */
  text: string;
}

/** A call failed by the shim's fault injection (nothing was written or synced). */
export interface FaultOp extends OpBase {
  kind: 'fault';
  /** Which call failed. */
  call: 'write' | 'fsync';
  /** The errno returned (ENOSPC = 28, EIO = 5). */
  errno: number;
  /** Path of the file. */
  path: string;
  /** Inode number. */
  ino: number;
}

/** One recorded operation. */
export type Op =
  | OpenOp
  | WriteOp
  | TruncateOp
  | FsyncOp
  | RenameOp
  | UnlinkOp
  | CloseOp
  | MarkOp
  | FaultOp;

const F_CREATED = 1;
const F_TRUNC = 2;
const F_DIR = 4;
const F_DATASYNC = 1;
const FAULT_FSYNC = 2;

/**
 * Parses a whole log. Throws on a damaged record; a record cut short at the
 * end (the process died while appending) is dropped.
 */
export function parseOpLog(buf: Buffer): Op[] {
  const ops: Op[] = [];
  let at = 0;
  while (at + RECORD_HEADER_BYTES <= buf.length) {
    const magic = buf.readUInt32LE(at);
    if (magic !== RECORD_MAGIC) {
      throw new Error(`walrec log: bad magic 0x${magic.toString(16)} at byte ${at}`);
    }
    const type = buf.readUInt16LE(at + 4);
    const flags = buf.readUInt16LE(at + 6);
    const pid = buf.readUInt32LE(at + 8);
    const tid = buf.readUInt32LE(at + 12);
    const ino = Number(buf.readBigUInt64LE(at + 16));
    const arg = Number(buf.readBigInt64LE(at + 24));
    const len1 = buf.readUInt32LE(at + 32);
    const len2 = buf.readUInt32LE(at + 36);
    const start = at + RECORD_HEADER_BYTES;
    const end = start + len1 + len2;
    if (end > buf.length) break;
    const path = buf.toString('utf8', start, start + len1);
    const second = buf.subarray(start + len1, end);
    const base = { index: ops.length, pid, tid };
    switch (type) {
      case RecordType.open:
        ops.push({
          ...base,
          kind: 'open',
          path,
          ino,
          flags: arg,
          created: (flags & F_CREATED) !== 0,
          truncated: (flags & F_TRUNC) !== 0,
          isDir: (flags & F_DIR) !== 0,
        });
        break;
      case RecordType.write:
        ops.push({ ...base, kind: 'write', path, ino, offset: arg, data: second });
        break;
      case RecordType.truncate:
        ops.push({ ...base, kind: 'truncate', path, ino, length: arg });
        break;
      case RecordType.fsync:
        ops.push({
          ...base,
          kind: 'fsync',
          path,
          ino,
          isDir: (flags & F_DIR) !== 0,
          datasync: (flags & F_DATASYNC) !== 0,
        });
        break;
      case RecordType.rename:
        ops.push({ ...base, kind: 'rename', from: path, to: second.toString('utf8'), ino });
        break;
      case RecordType.unlink:
        ops.push({ ...base, kind: 'unlink', path, ino });
        break;
      case RecordType.close:
        ops.push({ ...base, kind: 'close', path, ino });
        break;
      case RecordType.mark:
        ops.push({ ...base, kind: 'mark', text: second.toString('utf8').replace(/\n$/, '') });
        break;
      case RecordType.fault:
        ops.push({
          ...base,
          kind: 'fault',
          call: flags === FAULT_FSYNC ? 'fsync' : 'write',
          errno: arg,
          path,
          ino,
        });
        break;
      default:
        throw new Error(`walrec log: unknown record type ${type} at byte ${at}`);
    }
    at = end;
  }
  return ops;
}

/** Reads and parses a log file. */
export function readOpLog(file: string): Op[] {
  return parseOpLog(readFileSync(file));
}

/** Counts of each operation kind, for reports and sanity checks. */
export function summarizeOps(ops: readonly Op[]): Record<Op['kind'], number> {
  const counts: Record<Op['kind'], number> = {
    open: 0,
    write: 0,
    truncate: 0,
    fsync: 0,
    rename: 0,
    unlink: 0,
    close: 0,
    mark: 0,
    fault: 0,
  };
  for (const op of ops) counts[op.kind]++;
  return counts;
}
