import { describe, expect, it } from 'vitest';
import type { Op } from './oplog.js';
import { CrashReplayer } from './replay.js';

describe('crash replay of a failed fsync', () => {
  // A file synced with 1s, overwritten with 2s, an fsync that fails, 3s appended, an fsync.
  const base = { pid: 1, tid: 1 };
  const data = (n: number, byte: number) => Buffer.alloc(n, byte);
  const ops: Op[] = [
    {
      ...base,
      index: 0,
      kind: 'open',
      path: 'f',
      ino: 7,
      flags: 0,
      created: true,
      truncated: false,
      isDir: false,
    },
    { ...base, index: 1, kind: 'write', path: 'f', ino: 7, offset: 0, data: data(512, 1) },
    { ...base, index: 2, kind: 'fsync', path: 'f', ino: 7, isDir: false, datasync: false },
    { ...base, index: 3, kind: 'fsync', path: '', ino: 2, isDir: true, datasync: false },
    { ...base, index: 4, kind: 'write', path: 'f', ino: 7, offset: 0, data: data(512, 2) },
    { ...base, index: 5, kind: 'fault', call: 'fsync', errno: 5, path: 'f', ino: 7 },
    { ...base, index: 6, kind: 'write', path: 'f', ino: 7, offset: 512, data: data(512, 3) },
    { ...base, index: 7, kind: 'fsync', path: 'f', ino: 7, isDir: false, datasync: false },
  ];
  const end = { point: ops.length, subset: { kind: 'none' } } as const;

  it('retry: the writes a failed fsync should have synced stay pending, and the next fsync makes them durable', () => {
    const r = new CrashReplayer(ops, { failedSync: 'retry' });
    expect(r.pendingAt(6)).toEqual([4]);
    expect(r.state(end).files.get('f')).toEqual(Buffer.concat([data(512, 2), data(512, 3)]));
  });

  it('drop: they may land before the failure, never after it, and later writes still do', () => {
    const r = new CrashReplayer(ops, { failedSync: 'drop' });
    // Before the failed fsync returned, the write may have reached the disk.
    expect(r.pendingAt(5)).toEqual([4]);
    expect(r.state({ point: 5, subset: { kind: 'all' } }).files.get('f')).toEqual(data(512, 2));
    // After it, it is gone for good: the page cache served it, the disk never got it.
    expect(r.pendingAt(6)).toEqual([]);
    expect(r.state(end).files.get('f')).toEqual(Buffer.concat([data(512, 1), data(512, 3)]));
    expect(r.stateKey(end)).toBe(r.state(end).key);
  });
});
