/*
 * walrec — an LD_PRELOAD recorder and fault injector for the files of one
 * folder, used by walguard's power-loss harness (test/crash/).
 *
 * What it does
 *   Every open/write/truncate/sync/rename/unlink a process makes, through
 *   libc, on a file under $WALREC_DIR is appended to an operation log
 *   ($WALREC_LOG), with the bytes of each write. test/crash/replay.ts turns
 *   that log into the states a power loss could leave behind.
 *
 * Environment
 *   WALREC_DIR                 folder whose files are tracked (must exist when
 *                              the process starts; the folder itself is
 *                              tracked too, so its fsync is recorded)
 *   WALREC_LOG                 file the records are appended to; unset: no log
 *   WALREC_FSYNC_DELAY_US      sleep this long before each fsync/fdatasync of a
 *                              tracked file or of the folder (slow-disk profile)
 *   WALREC_ENOSPC_AFTER_BYTES  once this many bytes were written to tracked
 *                              files, a write that would go past it fails with
 *                              ENOSPC, unless $WALREC_DIR/.walrec-space-ok
 *                              exists (checked on each such write)
 *   WALREC_EIO_WRITE_N         the Nth write (1-based) to a tracked file fails
 *                              with EIO, once, without writing
 *   WALREC_EIO_FSYNC_N         the Nth fsync/fdatasync (1-based, folder fsyncs
 *                              included) of a tracked fd fails with EIO, once,
 *                              without syncing
 *
 * Marks
 *   A write to $WALREC_DIR/.walrec-mark (open it with O_APPEND) is not
 *   performed: its text becomes a MARK record, ordered with the I/O around it.
 *   One write is one mark; the workload writes e.g. "ack 42\n".
 *
 * What is not tracked
 *   *-shm files (SQLite maps them with mmap; the wal-index is rebuilt from the
 *   WAL on recovery, so a power-loss state never needs them), the mark file's
 *   own I/O, anything done through mmap, direct syscall(2), io_uring, dup'ed
 *   fds, sendfile/copy_file_range, and O_TMPFILE/linkat. SQLite in the libsql
 *   package uses open64/pwrite64/fsync/ftruncate64/unlink through libc, which
 *   is all seen here.
 *
 * Log format (little-endian), one record per operation, written with a single
 * writev under a mutex to a file opened with O_APPEND (so records of several
 * processes sharing one log do not interleave):
 *   u32 magic 0x43455257 ("WREC")   u16 type   u16 flags
 *   u32 pid   u32 tid   u64 ino     i64 arg
 *   u32 len1  u32 len2  then len1 bytes (path) and len2 bytes (data or path)
 * Paths are relative to $WALREC_DIR ("" is the folder itself). test/crash/
 * oplog.ts documents each type's fields.
 *
 * Concurrency: each tracked operation and its record are done under one
 * mutex, so the log order is the order the kernel saw them in (SQLite's
 * writer may run in a worker thread while the main thread writes marks).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define WALREC_MAGIC 0x43455257u
#define MAX_FDS 65536

enum rec_type {
  REC_OPEN = 1,
  REC_WRITE = 2,
  REC_TRUNCATE = 3,
  REC_FSYNC = 4,
  REC_RENAME = 5,
  REC_UNLINK = 6,
  REC_CLOSE = 7,
  REC_MARK = 8,
  REC_FAULT = 9,
};

/* flags of REC_OPEN */
#define F_CREATED 1u  /* O_CREAT made a new file */
#define F_TRUNC 2u    /* O_TRUNC emptied it */
#define F_DIR 4u      /* the fd is a directory (also on REC_FSYNC) */
#define F_APPEND 8u   /* O_APPEND */
/* flags of REC_FSYNC */
#define F_DATASYNC 1u
/* flags of REC_FAULT: which call failed (arg = errno) */
#define FAULT_WRITE 1u
#define FAULT_FSYNC 2u

enum fd_kind { FD_NONE = 0, FD_FILE = 1, FD_DIR = 2, FD_MARK = 3 };

struct fd_entry {
  int kind;      /* enum fd_kind; read without the lock as a fast filter */
  char *rel;     /* path relative to the folder; NULL once unlinked */
  uint64_t ino;  /* inode number, identifies the file across renames */
};

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*creat_fn)(const char *, mode_t);
typedef int (*close_fn)(int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*fsync_fn)(int);
typedef int (*ftruncate_fn)(int, off_t);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned int);
typedef int (*unlink_fn)(const char *);
typedef int (*unlinkat_fn)(int, const char *, int);

static struct {
  open_fn open, open64;
  openat_fn openat, openat64;
  creat_fn creat, creat64;
  close_fn close;
  write_fn write;
  pwrite_fn pwrite, pwrite64;
  writev_fn writev;
  pwritev_fn pwritev, pwritev64;
  fsync_fn fsync, fdatasync;
  ftruncate_fn ftruncate, ftruncate64;
  rename_fn rename;
  renameat_fn renameat;
  renameat2_fn renameat2;
  unlink_fn unlink;
  unlinkat_fn unlinkat;
} real;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* Guards g_fds contents (paths), the fault counters and the log fd's writes. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_active;           /* WALREC_DIR set and resolvable */
static char g_dir[PATH_MAX];   /* realpath of WALREC_DIR */
static size_t g_dir_len;
static char g_space_ok[PATH_MAX + 32];
static int g_log_fd = -1;
static long long g_fsync_delay_us;
static long long g_enospc_after = -1;
static long long g_bytes_written;
static long long g_eio_write_n, g_eio_fsync_n;
static long long g_write_count, g_fsync_count;
static struct fd_entry g_fds[MAX_FDS];
static int g_max_fd = -1;      /* highest fd ever tracked; bounds table scans */

static void *must_sym(const char *name) {
  void *p = dlsym(RTLD_NEXT, name);
  return p;
}

static long long env_ll(const char *name, long long dflt) {
  const char *v = getenv(name);
  if (v == NULL || *v == '\0') return dflt;
  char *end = NULL;
  long long x = strtoll(v, &end, 10);
  if (end == v) {
    fprintf(stderr, "walrec: ignoring %s=%s (not an integer)\n", name, v);
    return dflt;
  }
  return x;
}

static void lock(void) { pthread_mutex_lock(&g_lock); }
static void unlock(void) { pthread_mutex_unlock(&g_lock); }
static void atfork_prepare(void) { lock(); }
static void atfork_release(void) { unlock(); }

static void init(void) {
  real.open = (open_fn)must_sym("open");
  real.open64 = (open_fn)must_sym("open64");
  real.openat = (openat_fn)must_sym("openat");
  real.openat64 = (openat_fn)must_sym("openat64");
  real.creat = (creat_fn)must_sym("creat");
  real.creat64 = (creat_fn)must_sym("creat64");
  real.close = (close_fn)must_sym("close");
  real.write = (write_fn)must_sym("write");
  real.pwrite = (pwrite_fn)must_sym("pwrite");
  real.pwrite64 = (pwrite_fn)must_sym("pwrite64");
  real.writev = (writev_fn)must_sym("writev");
  real.pwritev = (pwritev_fn)must_sym("pwritev");
  real.pwritev64 = (pwritev_fn)must_sym("pwritev64");
  real.fsync = (fsync_fn)must_sym("fsync");
  real.fdatasync = (fsync_fn)must_sym("fdatasync");
  real.ftruncate = (ftruncate_fn)must_sym("ftruncate");
  real.ftruncate64 = (ftruncate_fn)must_sym("ftruncate64");
  real.rename = (rename_fn)must_sym("rename");
  real.renameat = (renameat_fn)must_sym("renameat");
  real.renameat2 = (renameat2_fn)must_sym("renameat2");
  real.unlink = (unlink_fn)must_sym("unlink");
  real.unlinkat = (unlinkat_fn)must_sym("unlinkat");

  pthread_atfork(atfork_prepare, atfork_release, atfork_release);

  const char *dir = getenv("WALREC_DIR");
  if (dir == NULL || *dir == '\0') return;
  if (realpath(dir, g_dir) == NULL) {
    fprintf(stderr, "walrec: WALREC_DIR=%s cannot be resolved (%s); nothing is tracked\n", dir,
            strerror(errno));
    return;
  }
  g_dir_len = strlen(g_dir);
  snprintf(g_space_ok, sizeof g_space_ok, "%s/.walrec-space-ok", g_dir);
  g_fsync_delay_us = env_ll("WALREC_FSYNC_DELAY_US", 0);
  g_enospc_after = env_ll("WALREC_ENOSPC_AFTER_BYTES", -1);
  g_eio_write_n = env_ll("WALREC_EIO_WRITE_N", 0);
  g_eio_fsync_n = env_ll("WALREC_EIO_FSYNC_N", 0);
  const char *log = getenv("WALREC_LOG");
  if (log != NULL && *log != '\0') {
    g_log_fd = real.open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g_log_fd < 0) {
      fprintf(stderr, "walrec: cannot open WALREC_LOG=%s (%s); not recording\n", log,
              strerror(errno));
    }
  }
  g_active = 1;
}

static inline void ensure_init(void) { pthread_once(&g_once, init); }

/* ---- paths ------------------------------------------------------------- */

/*
 * Resolves `path` (relative to dirfd, or the cwd for AT_FDCWD) and, if it is
 * the folder or lies under it, copies its path relative to the folder into
 * rel (size PATH_MAX) and returns 1. The last component is not resolved (the
 * file may not exist yet, and O_NOFOLLOW opens mean it is not followed).
 */
static int resolve_rel(int dirfd, const char *path, char *rel) {
  char abs[PATH_MAX * 2];
  char parent[PATH_MAX];
  char resolved[PATH_MAX];
  if (path == NULL || *path == '\0') return 0;
  if (path[0] == '/') {
    if (strlen(path) >= sizeof abs) return 0;
    strcpy(abs, path);
  } else {
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
      if (getcwd(base, sizeof base) == NULL) return 0;
    } else {
      char link[64];
      snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
      ssize_t n = readlink(link, base, sizeof base - 1);
      if (n < 0) return 0;
      base[n] = '\0';
    }
    if (snprintf(abs, sizeof abs, "%s/%s", base, path) >= (int)sizeof abs) return 0;
  }
  /* strip trailing slashes (but keep "/") */
  size_t len = strlen(abs);
  while (len > 1 && abs[len - 1] == '/') abs[--len] = '\0';
  char *slash = strrchr(abs, '/');
  const char *last = slash + 1;
  if (strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
    if (realpath(abs, resolved) == NULL) return 0;
  } else {
    size_t plen = (size_t)(slash - abs);
    if (plen == 0) {
      strcpy(parent, "/");
    } else {
      if (plen >= sizeof parent) return 0;
      memcpy(parent, abs, plen);
      parent[plen] = '\0';
    }
    char rparent[PATH_MAX];
    if (realpath(parent, rparent) == NULL) return 0;
    int n;
    if (strcmp(rparent, "/") == 0) {
      n = snprintf(resolved, sizeof resolved, "/%s", last);
    } else {
      n = snprintf(resolved, sizeof resolved, "%s/%s", rparent, last);
    }
    if (n >= (int)sizeof resolved) return 0;
  }
  if (strncmp(resolved, g_dir, g_dir_len) != 0) return 0;
  if (resolved[g_dir_len] == '\0') {
    rel[0] = '\0';
    return 1;
  }
  if (resolved[g_dir_len] != '/') return 0;
  strcpy(rel, resolved + g_dir_len + 1);
  return 1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int is_mark_path(const char *rel) { return strcmp(rel, ".walrec-mark") == 0; }

/* Paths that are never recorded: the wal-index (mmap'ed) and walrec's own. */
static int is_ignored_path(const char *rel) {
  return ends_with(rel, "-shm") || strcmp(rel, ".walrec-space-ok") == 0;
}

/* ---- log --------------------------------------------------------------- */

struct rec_header {
  uint32_t magic;
  uint16_t type;
  uint16_t flags;
  uint32_t pid;
  uint32_t tid;
  uint64_t ino;
  int64_t arg;
  uint32_t len1;
  uint32_t len2;
};

/* Caller holds g_lock. */
static void log_rec(uint16_t type, uint16_t flags, uint64_t ino, int64_t arg, const char *path,
                    const struct iovec *data, int ndata) {
  if (g_log_fd < 0) return;
  struct rec_header h;
  size_t dlen = 0;
  for (int i = 0; i < ndata; i++) dlen += data[i].iov_len;
  h.magic = WALREC_MAGIC;
  h.type = type;
  h.flags = flags;
  h.pid = (uint32_t)getpid();
  h.tid = (uint32_t)syscall(SYS_gettid);
  h.ino = ino;
  h.arg = arg;
  h.len1 = path ? (uint32_t)strlen(path) : 0;
  h.len2 = (uint32_t)dlen;
  struct iovec stackv[18];
  struct iovec *iov = stackv;
  int cnt = 2 + ndata;
  if (cnt > 18) {
    iov = malloc(sizeof(struct iovec) * (size_t)cnt);
    if (iov == NULL) return;
  }
  iov[0].iov_base = &h;
  iov[0].iov_len = sizeof h;
  iov[1].iov_base = (void *)(path ? path : "");
  iov[1].iov_len = h.len1;
  for (int i = 0; i < ndata; i++) iov[2 + i] = data[i];
  /* writev may be short for huge records; finish with plain writes. */
  size_t total = sizeof h + h.len1 + dlen;
  ssize_t n = real.writev(g_log_fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt);
  if (n >= 0 && (size_t)n < total) {
    size_t skip = (size_t)n;
    for (int i = 0; i < cnt; i++) {
      const char *b = iov[i].iov_base;
      size_t l = iov[i].iov_len;
      if (skip >= l) {
        skip -= l;
        continue;
      }
      b += skip;
      l -= skip;
      skip = 0;
      while (l > 0) {
        ssize_t w = real.write(g_log_fd, b, l);
        if (w <= 0) break;
        b += w;
        l -= (size_t)w;
      }
    }
  }
  if (iov != stackv) free(iov);
}

/* ---- fd table ---------------------------------------------------------- */

static inline int fd_kind(int fd) {
  if (!g_active || fd < 0 || fd >= MAX_FDS) return FD_NONE;
  return __atomic_load_n(&g_fds[fd].kind, __ATOMIC_ACQUIRE);
}

/* Caller holds g_lock. */
static void fd_track(int fd, int kind, const char *rel, uint64_t ino) {
  if (fd < 0) return;
  if (fd >= MAX_FDS) {
    fprintf(stderr, "walrec: fd %d is beyond the table; its I/O is not recorded\n", fd);
    return;
  }
  free(g_fds[fd].rel);
  g_fds[fd].rel = strdup(rel);
  g_fds[fd].ino = ino;
  if (fd > g_max_fd) g_max_fd = fd;
  __atomic_store_n(&g_fds[fd].kind, kind, __ATOMIC_RELEASE);
}

/* Caller holds g_lock. */
static void fd_untrack(int fd) {
  if (fd < 0 || fd >= MAX_FDS) return;
  __atomic_store_n(&g_fds[fd].kind, FD_NONE, __ATOMIC_RELEASE);
  free(g_fds[fd].rel);
  g_fds[fd].rel = NULL;
}

/* Caller holds g_lock. fds open on `rel` now name nothing (unlinked or replaced). */
static void fd_forget_name(const char *rel) {
  for (int i = 0; i <= g_max_fd; i++) {
    if (g_fds[i].kind == FD_FILE && g_fds[i].rel && strcmp(g_fds[i].rel, rel) == 0) {
      free(g_fds[i].rel);
      g_fds[i].rel = NULL;
    }
  }
}

/* Caller holds g_lock. */
static void fd_rename(const char *from, const char *to) {
  for (int i = 0; i <= g_max_fd; i++) {
    if (g_fds[i].kind == FD_FILE && g_fds[i].rel && strcmp(g_fds[i].rel, from) == 0) {
      free(g_fds[i].rel);
      g_fds[i].rel = strdup(to);
    }
  }
}

/* ---- open -------------------------------------------------------------- */

static int do_open(int dirfd, const char *path, int flags, mode_t mode, int which) {
  ensure_init();
  char rel[PATH_MAX];
  int tracked = g_active && resolve_rel(dirfd, path, rel) && !is_ignored_path(rel);
#define CALL_REAL()                                                       \
  (which == 0   ? real.open(path, flags, mode)                            \
   : which == 1 ? real.open64(path, flags, mode)                          \
   : which == 2 ? real.openat(dirfd, path, flags, mode)                   \
                : real.openat64(dirfd, path, flags, mode))
  if (!tracked) return CALL_REAL();
  lock();
  struct stat before;
  int existed = fstatat(dirfd, path, &before, 0) == 0;
  int fd = CALL_REAL();
  int saved = errno;
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) == 0) {
      if (is_mark_path(rel)) {
        fd_track(fd, FD_MARK, rel, (uint64_t)st.st_ino);
      } else {
        int dir = S_ISDIR(st.st_mode);
        uint16_t fl = 0;
        if ((flags & O_CREAT) && !existed) fl |= F_CREATED;
        if ((flags & O_TRUNC) && !dir && (flags & O_ACCMODE) != O_RDONLY) fl |= F_TRUNC;
        if (dir) fl |= F_DIR;
        if (flags & O_APPEND) fl |= F_APPEND;
        fd_track(fd, dir ? FD_DIR : FD_FILE, rel, (uint64_t)st.st_ino);
        log_rec(REC_OPEN, fl, (uint64_t)st.st_ino, flags, rel, NULL, 0);
      }
    }
  }
  unlock();
  errno = saved;
  return fd;
#undef CALL_REAL
}

static mode_t vmode(int flags, va_list ap) {
  if ((flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE) return (mode_t)va_arg(ap, int);
  return 0;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = vmode(flags, ap);
  va_end(ap);
  return do_open(AT_FDCWD, path, flags, mode, 0);
}

int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = vmode(flags, ap);
  va_end(ap);
  return do_open(AT_FDCWD, path, flags, mode, 1);
}

int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = vmode(flags, ap);
  va_end(ap);
  return do_open(dirfd, path, flags, mode, 2);
}

int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = vmode(flags, ap);
  va_end(ap);
  return do_open(dirfd, path, flags, mode, 3);
}

int creat(const char *path, mode_t mode) {
  return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0);
}

int creat64(const char *path, mode_t mode) {
  return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 1);
}

int close(int fd) {
  ensure_init();
  if (fd_kind(fd) == FD_NONE) return real.close(fd);
  lock();
  int kind = g_fds[fd].kind;
  uint64_t ino = g_fds[fd].ino;
  char *rel = g_fds[fd].rel;
  g_fds[fd].rel = NULL;
  fd_untrack(fd);
  /* Untrack before the real close: once closed, another thread may get this fd. */
  int r = real.close(fd);
  int saved = errno;
  if (kind != FD_MARK) log_rec(REC_CLOSE, 0, ino, 0, rel, NULL, 0);
  free(rel);
  unlock();
  errno = saved;
  return r;
}

/* ---- writes ------------------------------------------------------------ */

/*
 * Caller holds g_lock. Decides whether a write of n bytes to a tracked file
 * is failed by fault injection; if so logs it, sets errno and returns 1.
 */
static int inject_write_fault(int fd, size_t n) {
  g_write_count++;
  int err = 0;
  if (g_eio_write_n > 0 && g_write_count == g_eio_write_n) {
    err = EIO;
  } else if (g_enospc_after >= 0 && g_bytes_written + (long long)n > g_enospc_after) {
    if (access(g_space_ok, F_OK) != 0) err = ENOSPC;
  }
  if (!err) return 0;
  log_rec(REC_FAULT, FAULT_WRITE, g_fds[fd].ino, err, g_fds[fd].rel, NULL, 0);
  errno = err;
  return 1;
}

/* Caller holds g_lock; logs a successful write of r bytes at offset off. */
static void log_write(int fd, off_t off, const struct iovec *iov, int iovcnt, ssize_t r) {
  g_bytes_written += r;
  if (g_fds[fd].rel == NULL) return; /* unlinked: unreachable after a crash */
  /* Log exactly the r bytes written (a short write covers a prefix). */
  struct iovec stackv[16] = {{0}};
  struct iovec *v = stackv;
  if (iovcnt > 16) {
    v = malloc(sizeof(struct iovec) * (size_t)iovcnt);
    if (v == NULL) return;
  }
  int cnt = 0;
  size_t left = (size_t)r;
  for (int i = 0; i < iovcnt && left > 0; i++) {
    size_t l = iov[i].iov_len < left ? iov[i].iov_len : left;
    v[cnt].iov_base = iov[i].iov_base;
    v[cnt].iov_len = l;
    cnt++;
    left -= l;
  }
  log_rec(REC_WRITE, 0, g_fds[fd].ino, (int64_t)off, g_fds[fd].rel, v, cnt);
  if (v != stackv) free(v);
}

/* Caller holds g_lock. */
static void log_mark(const struct iovec *iov, int iovcnt) {
  log_rec(REC_MARK, 0, 0, 0, NULL, iov, iovcnt);
}

static size_t iov_total(const struct iovec *iov, int iovcnt) {
  size_t t = 0;
  for (int i = 0; i < iovcnt; i++) t += iov[i].iov_len;
  return t;
}

/* which: 0 write, 1 writev, 2 pwrite, 3 pwrite64, 4 pwritev, 5 pwritev64 */
static ssize_t do_write(int fd, const struct iovec *iov, int iovcnt, off_t off, int which) {
  ensure_init();
  int kind = fd_kind(fd);
#define CALL_REAL()                                                               \
  (which == 0   ? real.write(fd, iov[0].iov_base, iov[0].iov_len)                 \
   : which == 1 ? real.writev(fd, iov, iovcnt)                                    \
   : which == 2 ? real.pwrite(fd, iov[0].iov_base, iov[0].iov_len, off)           \
   : which == 3 ? real.pwrite64(fd, iov[0].iov_base, iov[0].iov_len, off)         \
   : which == 4 ? real.pwritev(fd, iov, iovcnt, off)                              \
                : real.pwritev64(fd, iov, iovcnt, off))
  if (kind == FD_NONE || kind == FD_DIR) return CALL_REAL();
  /*
   * A stale entry: libuv (Node's fs) closes descriptors with a raw close syscall, which this
   * library never sees, and the OS then reuses the number for a pipe or socket (e.g. a child
   * process's stdin). Such a write is not to the tracked file: untrack and pass it through.
   */
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_ino != g_fds[fd].ino) {
    lock();
    if (g_fds[fd].kind == kind) fd_untrack(fd);
    unlock();
    return CALL_REAL();
  }
  size_t n = iov_total(iov, iovcnt);
  lock();
  if (g_fds[fd].kind == FD_MARK) {
    log_mark(iov, iovcnt);
    unlock();
    return (ssize_t)n;
  }
  if (inject_write_fault(fd, n)) {
    int saved = errno;
    unlock();
    errno = saved;
    return -1;
  }
  ssize_t r = CALL_REAL();
  int saved = errno;
  if (r > 0) {
    off_t at = off;
    if (which == 0 || which == 1) at = lseek(fd, 0, SEEK_CUR) - r;
    log_write(fd, at, iov, iovcnt, r);
  }
  unlock();
  errno = saved;
  return r;
#undef CALL_REAL
}

ssize_t write(int fd, const void *buf, size_t n) {
  struct iovec v = {(void *)buf, n};
  return do_write(fd, &v, 1, 0, 0);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  return do_write(fd, iov, iovcnt, 0, 1);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  struct iovec v = {(void *)buf, n};
  return do_write(fd, &v, 1, off, 2);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  struct iovec v = {(void *)buf, n};
  return do_write(fd, &v, 1, off, 3);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off) {
  return do_write(fd, iov, iovcnt, off, 4);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off) {
  return do_write(fd, iov, iovcnt, off, 5);
}

static int do_ftruncate(int fd, off_t len, int is64) {
  ensure_init();
  int kind = fd_kind(fd);
  if (kind != FD_FILE) return is64 ? real.ftruncate64(fd, len) : real.ftruncate(fd, len);
  lock();
  int r = is64 ? real.ftruncate64(fd, len) : real.ftruncate(fd, len);
  int saved = errno;
  if (r == 0 && g_fds[fd].rel != NULL) {
    log_rec(REC_TRUNCATE, 0, g_fds[fd].ino, (int64_t)len, g_fds[fd].rel, NULL, 0);
  }
  unlock();
  errno = saved;
  return r;
}

int ftruncate(int fd, off_t len) { return do_ftruncate(fd, len, 0); }
int ftruncate64(int fd, off_t len) { return do_ftruncate(fd, len, 1); }

/* ---- sync -------------------------------------------------------------- */

static int do_fsync(int fd, int datasync) {
  ensure_init();
  int kind = fd_kind(fd);
  if (kind != FD_FILE && kind != FD_DIR) return datasync ? real.fdatasync(fd) : real.fsync(fd);
  if (g_fsync_delay_us > 0) {
    struct timespec ts = {(time_t)(g_fsync_delay_us / 1000000),
                          (long)(g_fsync_delay_us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  lock();
  g_fsync_count++;
  uint16_t fl = (uint16_t)((datasync ? F_DATASYNC : 0) | (g_fds[fd].kind == FD_DIR ? F_DIR : 0));
  if (g_eio_fsync_n > 0 && g_fsync_count == g_eio_fsync_n) {
    log_rec(REC_FAULT, FAULT_FSYNC, g_fds[fd].ino, EIO, g_fds[fd].rel, NULL, 0);
    unlock();
    errno = EIO;
    return -1;
  }
  /* The sync runs under the lock so that no write of another thread can be
   * logged between the sync and its record: a write logged before an FSYNC
   * record really was issued before the sync started. */
  int r = datasync ? real.fdatasync(fd) : real.fsync(fd);
  int saved = errno;
  if (r == 0) log_rec(REC_FSYNC, fl, g_fds[fd].ino, 0, g_fds[fd].rel, NULL, 0);
  unlock();
  errno = saved;
  return r;
}

int fsync(int fd) { return do_fsync(fd, 0); }
int fdatasync(int fd) { return do_fsync(fd, 1); }

/* ---- names ------------------------------------------------------------- */

/* which: 0 rename, 1 renameat, 2 renameat2 */
static int do_rename(int olddirfd, const char *from, int newdirfd, const char *to,
                     unsigned int rflags, int which) {
  ensure_init();
  char rel_from[PATH_MAX], rel_to[PATH_MAX];
  int in_from = g_active && resolve_rel(olddirfd, from, rel_from) && !is_ignored_path(rel_from);
  int in_to = g_active && resolve_rel(newdirfd, to, rel_to) && !is_ignored_path(rel_to);
#define CALL_REAL()                                        \
  (which == 0   ? real.rename(from, to)                    \
   : which == 1 ? real.renameat(olddirfd, from, newdirfd, to) \
                : real.renameat2(olddirfd, from, newdirfd, to, rflags))
  if (!in_from && !in_to) return CALL_REAL();
  lock();
  struct stat st;
  uint64_t ino = fstatat(olddirfd, from, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (uint64_t)st.st_ino : 0;
  int r = CALL_REAL();
  int saved = errno;
  if (r == 0) {
    if (in_from && in_to) {
      /* A file open under the target name is replaced; fds on the source follow it. */
      fd_forget_name(rel_to);
      fd_rename(rel_from, rel_to);
      struct iovec v = {rel_to, strlen(rel_to)};
      log_rec(REC_RENAME, 0, ino, 0, rel_from, &v, 1);
    } else if (in_from) {
      /* Moved out of the folder: from the folder's point of view, an unlink. */
      fd_forget_name(rel_from);
      log_rec(REC_UNLINK, 0, ino, 0, rel_from, NULL, 0);
    } else {
      /* Moved in from outside: its content was never recorded. REC_RENAME
       * with an empty source tells the replay it cannot rebuild this file. */
      fd_forget_name(rel_to);
      struct iovec v = {rel_to, strlen(rel_to)};
      log_rec(REC_RENAME, 0, ino, 0, "", &v, 1);
    }
  }
  unlock();
  errno = saved;
  return r;
#undef CALL_REAL
}

int rename(const char *from, const char *to) { return do_rename(AT_FDCWD, from, AT_FDCWD, to, 0, 0); }

int renameat(int olddirfd, const char *from, int newdirfd, const char *to) {
  return do_rename(olddirfd, from, newdirfd, to, 0, 1);
}

int renameat2(int olddirfd, const char *from, int newdirfd, const char *to, unsigned int flags) {
  return do_rename(olddirfd, from, newdirfd, to, flags, 2);
}

static int do_unlink(int dirfd, const char *path, int uflags, int which) {
  ensure_init();
  char rel[PATH_MAX];
  int tracked = g_active && resolve_rel(dirfd, path, rel) && !is_ignored_path(rel) &&
                !is_mark_path(rel);
  if (!tracked) return which == 0 ? real.unlink(path) : real.unlinkat(dirfd, path, uflags);
  lock();
  struct stat st;
  uint64_t ino = fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (uint64_t)st.st_ino : 0;
  int r = which == 0 ? real.unlink(path) : real.unlinkat(dirfd, path, uflags);
  int saved = errno;
  if (r == 0) {
    fd_forget_name(rel);
    log_rec(REC_UNLINK, 0, ino, 0, rel, NULL, 0);
  }
  unlock();
  errno = saved;
  return r;
}

int unlink(const char *path) { return do_unlink(AT_FDCWD, path, 0, 0); }
int unlinkat(int dirfd, const char *path, int flags) { return do_unlink(dirfd, path, flags, 1); }
