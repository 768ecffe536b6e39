/**
 * inspectWal on WAL files built byte by byte: what recovery applies, and which breaks are
 * damage (the chain resynchronises through two or more commits) rather than a torn tail.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectWal, walChecksum } from '../../src/durability/wal-inspect.js';
import { tempDir } from '../helpers.js';

const PAGE = 1024;

/** A WAL of `frames` one-page frames (each a commit unless `commitEvery` says otherwise). */
function buildWal(
  frames: number,
  options: { bigEndian?: boolean; salts?: [number, number]; commitEvery?: number } = {},
): Buffer {
  const bigEndian = options.bigEndian ?? false;
  const salts = options.salts ?? [0x11111111, 0x22222222];
  const header = Buffer.alloc(32);
  header.writeUInt32BE(bigEndian ? 0x377f0683 : 0x377f0682, 0);
  header.writeUInt32BE(3007000, 4);
  header.writeUInt32BE(PAGE, 8);
  header.writeUInt32BE(7, 12);
  header.writeUInt32BE(salts[0], 16);
  header.writeUInt32BE(salts[1], 20);
  let seed = walChecksum(header.subarray(0, 24), [0, 0], bigEndian);
  header.writeUInt32BE(seed[0], 24);
  header.writeUInt32BE(seed[1], 28);
  const parts = [header];
  for (let n = 1; n <= frames; n++) {
    const frame = Buffer.alloc(24 + PAGE);
    frame.writeUInt32BE(1 + (n % 5), 0);
    const commit = n % (options.commitEvery ?? 1) === 0;
    frame.writeUInt32BE(commit ? 5 : 0, 4);
    frame.writeUInt32BE(salts[0], 8);
    frame.writeUInt32BE(salts[1], 12);
    frame.fill(n & 0xff, 24, 24 + PAGE / 2);
    seed = walChecksum(
      frame.subarray(24),
      walChecksum(frame.subarray(0, 8), seed, bigEndian),
      bigEndian,
    );
    frame.writeUInt32BE(seed[0], 16);
    frame.writeUInt32BE(seed[1], 20);
    parts.push(frame);
  }
  return Buffer.concat(parts);
}

const at = (frame: number, offset: number) => 32 + (frame - 1) * (24 + PAGE) + offset;

async function inspect(wal: Buffer) {
  const db = path.join(tempDir(), 'x.db');
  fs.writeFileSync(`${db}-wal`, wal);
  return inspectWal(db);
}

function flip(wal: Buffer, offset: number): Buffer {
  const copy = Buffer.from(wal);
  copy[offset] = copy[offset]! ^ 0x04;
  return copy;
}

describe('inspectWal', () => {
  it('reads an intact WAL as recovery does: every frame valid, every commit applied (both byte orders)', async () => {
    for (const bigEndian of [false, true]) {
      const result = await inspect(buildWal(10, { bigEndian, commitEvery: 2 }));
      expect(result).toMatchObject({
        exists: true,
        frames: 10,
        validFrames: 10,
        committedFrames: 10,
        commits: 5,
        databasePages: 5,
        damage: null,
      });
      expect(result.header).toMatchObject({ pageSize: PAGE, checkpointSequence: 7, bigEndian });
    }
  });

  it('a missing or empty WAL has nothing in it', async () => {
    const db = path.join(tempDir(), 'x.db');
    expect(await inspectWal(db)).toMatchObject({ exists: false, commits: 0, damage: null });
    fs.writeFileSync(`${db}-wal`, '');
    expect(await inspectWal(db)).toMatchObject({ exists: true, bytes: 0, damage: null });
  });

  it('a changed byte in a frame page, its checksum, its salt or its page number is damage at that frame', async () => {
    const wal = buildWal(10);
    for (const [what, offset] of [
      ['page', at(3, 24 + 100)],
      ['checksum', at(3, 17)],
      ['salt', at(3, 9)],
      ['page number', at(3, 3)],
    ] as const) {
      const result = await inspect(flip(wal, offset));
      expect(result.validFrames, what).toBe(2);
      expect(result.commits, what).toBe(2);
      expect(result.damage, what).toMatchObject({ frame: 3 });
      expect(result.damage!.droppedCommits, what).toBeGreaterThanOrEqual(7);
    }
  });

  it('a damaged header, which makes SQLite ignore the whole WAL, is damage at frame 0', async () => {
    const result = await inspect(flip(buildWal(6), 13));
    expect(result.header).toBeNull();
    expect(result.damage).toMatchObject({ frame: 0, droppedCommits: 6 });
    expect(result.damage!.reason).toMatch(/WAL header/);
  });

  it('torn tails are not damage: a torn last frame, half a frame, zeros, an older generation', async () => {
    const wal = buildWal(8);
    const older = buildWal(12, { salts: [0x11111110, 0x33333333] });
    const tails = {
      'torn last frame': flip(wal, at(8, 24 + 500)),
      'half a frame': Buffer.concat([wal, buildWal(9).subarray(at(9, 0), at(9, 600))]),
      zeros: Buffer.concat([wal, Buffer.alloc(3 * (24 + PAGE))]),
      'frames of the previous generation': Buffer.concat([wal, older.subarray(at(9, 0))]),
      // The frame before the last commit torn: one commit after the break is what a torn
      // unsynced transaction (or SQLite rewriting checksums) looks like.
      'second-to-last frame torn': flip(buildWal(8, { commitEvery: 4 }), at(7, 24 + 3)),
    };
    for (const [name, bytes] of Object.entries(tails)) {
      const result = await inspect(bytes);
      expect(result.damage, name).toBeNull();
    }
    expect((await inspect(tails['torn last frame'])).commits).toBe(7);
  });

  it('one commit dropped after a break is not enough; two are', async () => {
    const wal = buildWal(6, { commitEvery: 3 });
    expect((await inspect(flip(wal, at(4, 24 + 9)))).damage).toBeNull();
    expect((await inspect(flip(wal, at(2, 24 + 9)))).damage).toMatchObject({
      frame: 2,
      droppedCommits: 2,
    });
  });
});
