/**
 * What is this file? Classifying a database file from its first 100 bytes, without SQLite.
 *
 * Strategy: the open sequence asks this before it opens a connection, so that it can say
 * "plaintext file opened with a key", "encrypted file opened without one", "truncated" or
 * "not a database" in its own words instead of SQLite's single `SQLITE_NOTADB`. It reads the
 * 100-byte database header (https://www.sqlite.org/fileformat2.html#database_header) and
 * `stat`s the file; it never writes, never opens the file through SQLite, and never decides
 * anything itself: it reports facts, and `problems` lists each oddity in a sentence.
 *
 * What an encrypted libSQL file looks like (libsql 0.5.29, `encryptionKey`, default cipher
 * aes256cbc from SQLite3MultipleCiphers), measured here:
 * - Bytes 0-15 are not the magic: they are ciphertext. With the same key, bytes 0-7 came out
 *   identical in every file made (they appear to depend on the key alone) and bytes 8-15
 *   varied with the content. The cipher is deterministic: two files with the same key and
 *   the same page contents are byte-identical (no per-file salt, no per-page IV stored).
 * - Bytes 16-23 are left in plaintext, as that cipher family does so that SQLite can learn
 *   the page size before decrypting: page size (big-endian u16, 1 meaning 65536), the file
 *   format write/read versions (1/1 rollback journal, 2/2 WAL), reserved bytes per page (0:
 *   aes256cbc stores no IV or MAC in the page), then 64, 32, 32 (the payload fractions).
 * - Bytes 24 onwards are ciphertext; the file size is a multiple of the page size.
 * - The `-wal` file's 32-byte header and 24-byte frame headers stay in plaintext (magic
 *   0x377f0682, page size, salts, checksums); only the page images are encrypted.
 * So an encrypted file is distinguishable from random bytes: eight random bytes match that
 * fragment with a probability of about 2^-50. `likelyEncrypted` reports the match; the kind
 * stays `encrypted-or-garbage`, because only the key can prove it is a database.
 *
 * Invariant: call this before this process opens `path` with SQLite, or after every
 * connection to it is closed. POSIX `fcntl` locks belong to the (process, inode) pair, and
 * closing any descriptor of the file (as this function does) drops every lock that this
 * process's SQLite connections hold on it.
 *
 * Not guaranteed: a `plaintext` verdict with no problems says the header is sane, not that
 * the pages are (that is `PRAGMA integrity_check`'s job). A file being written by another
 * process can change between the `stat` and the read.
 */
import { open } from 'node:fs/promises';
import { WalguardError } from '../errors.js';

/** What a database file is, as far as its header tells. */
export type DatabaseFileKind =
  /** No file at the path. */
  | 'missing'
  /** A zero-length file (SQLite treats it as a new, empty database). */
  | 'empty'
  /** Shorter than the 100-byte header: cannot be classified. */
  | 'too-short'
  /** Starts with SQLite's magic "SQLite format 3\0". */
  | 'plaintext'
  /** No magic: an encrypted database, or not a database at all. */
  | 'encrypted-or-garbage';

/** The facts `inspectDatabaseFile` found. */
export interface DatabaseFileInfo {
  /** The classification; see `DatabaseFileKind`. */
  kind: DatabaseFileKind;
  /** The path inspected, as given. */
  path: string;
  /** Size in bytes (0 when missing). */
  size: number;
  /** Page size from header bytes 16-17 when it is a valid one (plaintext, or the plaintext
   * fragment of an encrypted file), else null. */
  pageSize: number | null;
  /** Whether `size` is a whole number of pages; null when the page size is unknown. */
  sizeIsPageMultiple: boolean | null;
  /** Journal mode recorded in the header (bytes 18-19): 'wal', 'rollback', or null. */
  journal: 'wal' | 'rollback' | null;
  /** For `plaintext`: the page count in the header, when the header says it is valid. */
  headerPageCount: number | null;
  /** For `encrypted-or-garbage`: bytes 16-23 hold the plaintext header fragment that
   * SQLite3MultipleCiphers' aes256cbc leaves unencrypted (see the module header). */
  likelyEncrypted: boolean;
  /** Each oddity found, as a sentence; empty when the header is sane. */
  problems: string[];
}

/** The magic string at offset 0 of every plaintext SQLite 3 database. */
const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** Size of SQLite's database header. */
const HEADER_SIZE = 100;

/**
 * Reads the header of `path` and classifies the file. Throws `WalguardError('IO_ERROR')` when
 * the path exists but cannot be read or is not a regular file.
 */
export async function inspectDatabaseFile(path: string): Promise<DatabaseFileInfo> {
  const info: DatabaseFileInfo = {
    kind: 'missing',
    path,
    size: 0,
    pageSize: null,
    sizeIsPageMultiple: null,
    journal: null,
    headerPageCount: null,
    likelyEncrypted: false,
    problems: [],
  };
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return info;
    throw ioError(path, error);
  }
  let header: Buffer;
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new WalguardError('IO_ERROR', `Cannot inspect ${path}: it is not a regular file`, {
        details: { path },
      });
    }
    info.size = stats.size;
    header = Buffer.alloc(HEADER_SIZE);
    const { bytesRead } = await handle.read(header, 0, HEADER_SIZE, 0);
    header = header.subarray(0, bytesRead);
  } catch (error) {
    throw error instanceof WalguardError ? error : ioError(path, error);
  } finally {
    await handle.close();
  }
  // Classify by what was read, not by the size from stat: the file may have changed between.
  if (header.length === 0) {
    info.kind = 'empty';
    return info;
  }
  if (header.length < HEADER_SIZE) {
    info.kind = 'too-short';
    const n = Math.min(header.length, MAGIC.length);
    const magicPrefix = header.subarray(0, n).equals(MAGIC.subarray(0, n));
    info.problems.push(
      `The file is ${header.length} bytes, shorter than SQLite's ${HEADER_SIZE}-byte header` +
        (magicPrefix ? ' (it starts like a plaintext SQLite database: truncated?)' : ''),
    );
    return info;
  }
  const pageSize = readPageSize(header);
  const journal = readJournal(header);
  if (header.subarray(0, MAGIC.length).equals(MAGIC)) {
    info.kind = 'plaintext';
    inspectPlaintext(header, info, pageSize, journal);
  } else {
    info.kind = 'encrypted-or-garbage';
    info.likelyEncrypted = pageSize !== null && journal !== null && hasFixedFractions(header);
    if (info.likelyEncrypted) {
      info.pageSize = pageSize;
      info.journal = journal;
      checkPageMultiple(info);
    } else {
      info.problems.push(
        'No SQLite magic and no plaintext header fragment at bytes 16-23: not a SQLite ' +
          'database, or one whose first page is damaged',
      );
    }
  }
  return info;
}

/** Fills in and checks the fields of a plaintext header. */
function inspectPlaintext(
  header: Buffer,
  info: DatabaseFileInfo,
  pageSize: number | null,
  journal: 'wal' | 'rollback' | null,
): void {
  info.pageSize = pageSize;
  info.journal = journal;
  if (pageSize === null) {
    info.problems.push(
      `Invalid page size field ${header.readUInt16BE(16)} at offset 16 ` +
        '(expected a power of two from 512 to 32768, or 1 for 65536)',
    );
  }
  if (journal === null) {
    info.problems.push(
      `Invalid file format versions ${header[18]}/${header[19]} at offsets 18-19 ` +
        '(expected 1/1 or 2/2)',
    );
  }
  if (!hasFixedFractions(header)) {
    info.problems.push(
      `Invalid payload fractions ${header[21]}/${header[22]}/${header[23]} at offsets 21-23 ` +
        '(expected 64/32/32)',
    );
  }
  if (pageSize === null) return;
  checkPageMultiple(info);
  // The in-header page count is valid only when "version-valid-for" (offset 92) equals the
  // change counter (offset 24); older writers left it stale.
  const pageCount = header.readUInt32BE(28);
  if (pageCount > 0 && header.readUInt32BE(92) === header.readUInt32BE(24)) {
    info.headerPageCount = pageCount;
    const filePages = Math.floor(info.size / pageSize);
    if (filePages < pageCount) {
      info.problems.push(
        `The header counts ${pageCount} pages but the file holds ${filePages}: truncated ` +
          '(unless an interrupted checkpoint left those pages in the -wal file)',
      );
    }
  }
}

/** Records whether the size is a whole number of pages. */
function checkPageMultiple(info: DatabaseFileInfo): void {
  const pageSize = info.pageSize!;
  info.sizeIsPageMultiple = info.size % pageSize === 0;
  if (!info.sizeIsPageMultiple) {
    info.problems.push(
      `The size ${info.size} is not a multiple of the page size ${pageSize}: truncated or extended`,
    );
  }
  if (info.size < pageSize) {
    info.problems.push(`The file is shorter than one page (${pageSize} bytes)`);
  }
}

/** The page size from bytes 16-17, or null when the field holds no valid page size. */
function readPageSize(header: Buffer): number | null {
  const raw = header.readUInt16BE(16);
  const size = raw === 1 ? 65536 : raw;
  return size >= 512 && size <= 65536 && (size & (size - 1)) === 0 ? size : null;
}

/** The journal mode from the write/read versions at bytes 18-19, or null when invalid. */
function readJournal(header: Buffer): 'wal' | 'rollback' | null {
  const write = header[18];
  const read = header[19];
  if (write === 2 && read === 2) return 'wal';
  if (write === 1 && read === 1) return 'rollback';
  return null;
}

/** Bytes 21-23 must be 64, 32, 32 in every SQLite 3 database. */
function hasFixedFractions(header: Buffer): boolean {
  return header[21] === 64 && header[22] === 32 && header[23] === 32;
}

function ioError(path: string, error: unknown): WalguardError {
  return new WalguardError(
    'IO_ERROR',
    `Cannot inspect ${path}: ${String((error as Error).message)}`,
    { cause: error, details: { path } },
  );
}
