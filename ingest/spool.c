/* DESIGN: a spool has CU_SPOOL_BUFS buffers of CU_SPOOL_BUF_BYTES, passed
 * along a three-stage pipeline in the order they were filled:
 *
 *   caller (an HTTP thread)  copies bytes into a buffer; seals it when full
 *   hasher thread            SHA-256 over the buffer; keeps the hash state
 *                            at its last byte
 *   writer thread            writes it (O_DIRECT), fsyncs at checkpoints
 *
 * Hashing is most of the CPU an upload costs and an O_DIRECT write is
 * mostly waiting for the device, so with separate threads the two overlap
 * instead of adding up (docs/BENCHMARKS.md). Every buffer starts at a 4 KiB-
 * aligned file offset, so full buffers go to disk with O_DIRECT: on this
 * class of VM, fsyncing page-cache writes runs at about a quarter of direct
 * I/O. Only the unaligned tail of the last buffer in a request is written
 * through the page cache. When a request starts at an unaligned offset, the
 * few bytes between the aligned start and that offset are read back into
 * the buffer so it can be written whole; they are not hashed again.
 *
 * Checkpoints: after a buffer is written, if checkpoint_every bytes have
 * passed since the last durable point, the writer fsyncs and hands the
 * owner (offset, hash state at that buffer's end) to record. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cu_limits.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "log.h"
#include "banned.h"

#define ALIGN 4096u
#define BUFSZ ((size_t)CU_SPOOL_BUF_BYTES)

enum { B_FREE, B_FILLING, B_SEALED };

typedef struct {
  unsigned char *data; /* ALIGN-aligned, BUFSZ bytes, allocated on first use */
  uint64_t start;      /* file offset of data[0]; ALIGN-aligned */
  size_t len;
  size_t hashed;       /* data[0, hashed) is in the hash already (or was read back) */
  cu_sha256 *hash_at_end; /* set by the hasher: the state after data[len-1] */
  int state;
} sbuf;

struct spool {
  char *path;
  int fd, fd_direct; /* fd_direct is -1 where O_DIRECT is not supported */
  spool_opts opts;
  /* hash covers every byte hashed so far; the hasher thread owns it while
   * buffers are sealed, the caller only once the pipeline is idle. */
  cu_sha256 *hash, *durable_hash;
  uint64_t accepted, durable_off;
  sbuf bufs[CU_SPOOL_BUFS];
  int cur; /* the FILLING buffer, or -1 */
  uint64_t next_start;

  pthread_t hasher, writer;
  bool threads_started, stop;
  pthread_mutex_t mu;
  pthread_cond_t cv_hash, cv_write, cv_done;
  /* Sealed buffers in fill order: ring[n % CU_SPOOL_BUFS] for n in
   * [hashed_n, sealed_n) waits for the hasher, [written_n, hashed_n) for the
   * writer. The counters only grow. */
  int ring[CU_SPOOL_BUFS];
  uint64_t sealed_n, hashed_n, written_n;
  int64_t space_budget; /* bytes that may be written before asking statvfs again */
  int err; /* first error from the writer, reported once by the caller */
  char errmsg[512];
};

static void set_err(spool *sp, int rc) {
  if (sp->err) return;
  sp->err = rc;
  snprintf(sp->errmsg, sizeof sp->errmsg, "%s", cu_errmsg());
}

static int take_err(spool *sp) {
  pthread_mutex_lock(&sp->mu);
  int rc = sp->err;
  if (rc) rc = cu_error(rc, "%s", sp->errmsg);
  pthread_mutex_unlock(&sp->mu);
  return rc;
}

/* statvfs() costs a system call; ask again only once the bytes written
 * since the last answer could have used up an eighth of the room left
 * above the reserve (other uploads write to the same disk). */
static int check_space(spool *sp, size_t n) {
  if (sp->opts.reserve_bytes <= 0) return 0;
  if ((int64_t)n <= sp->space_budget) {
    sp->space_budget -= (int64_t)n;
    return 0;
  }
  int64_t free_bytes;
  int rc = cu_fs_free_bytes(sp->path, &free_bytes);
  if (rc) return rc;
  int64_t room = free_bytes - sp->opts.reserve_bytes;
  if (room < (int64_t)n)
    return cu_error(CU_ENOSPC,
                    "the archive disk is full (%lld bytes free, %lld kept in reserve for the "
                    "index)",
                    (long long)free_bytes, (long long)sp->opts.reserve_bytes);
  sp->space_budget = (room - (int64_t)n) / 8;
  return 0;
}

/* Writes one buffer: the aligned part directly, any tail through the cache. */
static int write_buf(spool *sp, const sbuf *b) {
  int rc = check_space(sp, b->len);
  if (rc) return rc;
  size_t direct = sp->fd_direct >= 0 ? b->len & ~(size_t)(ALIGN - 1) : 0;
  if (direct && (rc = cu_pwrite_all(sp->fd_direct, b->data, direct, (off_t)b->start)))
    return cu_error_wrap(rc, "cannot write spool file %s", sp->path);
  if (b->len > direct &&
      (rc = cu_pwrite_all(sp->fd, b->data + direct, b->len - direct, (off_t)(b->start + direct))))
    return cu_error_wrap(rc, "cannot write spool file %s", sp->path);
  return 0;
}

static int datasync(spool *sp) {
  if (fdatasync(sp->fd) < 0)
    return cu_error_errno(cu_errno_code(errno), errno, "cannot fsync spool file %s", sp->path);
  return 0;
}

static int checkpoint(spool *sp, const sbuf *b) {
  uint64_t end = b->start + b->len;
  pthread_mutex_lock(&sp->mu);
  uint64_t since = end - sp->durable_off;
  pthread_mutex_unlock(&sp->mu);
  if (!sp->opts.checkpoint_every || since < sp->opts.checkpoint_every) return 0;
  int rc = datasync(sp);
  if (rc) return rc;
  cu_buf state = CU_BUF_INIT(4096);
  rc = cu_sha256_save(b->hash_at_end, &state);
  if (!rc) rc = sp->opts.checkpoint(sp->opts.ud, end, state.data);
  cu_buf_release(&state);
  if (rc) return rc;
  pthread_mutex_lock(&sp->mu);
  sp->durable_off = end;
  cu_sha256_copy(sp->durable_hash, b->hash_at_end);
  pthread_mutex_unlock(&sp->mu);
  return 0;
}

static void hash_rest(spool *sp, sbuf *b) {
  cu_sha256_update(sp->hash, b->data + b->hashed, b->len - b->hashed);
  b->hashed = b->len;
}

static void *hasher_main(void *arg) {
  spool *sp = arg;
  pthread_mutex_lock(&sp->mu);
  for (;;) {
    while (sp->hashed_n == sp->sealed_n && !sp->stop) pthread_cond_wait(&sp->cv_hash, &sp->mu);
    if (sp->hashed_n == sp->sealed_n) break;
    sbuf *b = &sp->bufs[sp->ring[sp->hashed_n % CU_SPOOL_BUFS]];
    pthread_mutex_unlock(&sp->mu);
    hash_rest(sp, b);
    cu_sha256_copy(b->hash_at_end, sp->hash);
    pthread_mutex_lock(&sp->mu);
    sp->hashed_n++;
    pthread_cond_signal(&sp->cv_write);
  }
  pthread_mutex_unlock(&sp->mu);
  return NULL;
}

static void *writer_main(void *arg) {
  spool *sp = arg;
  pthread_mutex_lock(&sp->mu);
  for (;;) {
    while (sp->written_n == sp->hashed_n && !(sp->stop && sp->hashed_n == sp->sealed_n))
      pthread_cond_wait(&sp->cv_write, &sp->mu);
    if (sp->written_n == sp->hashed_n) break;
    sbuf *b = &sp->bufs[sp->ring[sp->written_n % CU_SPOOL_BUFS]];
    bool failed = sp->err != 0;
    pthread_mutex_unlock(&sp->mu);
    int rc = 0;
    if (!failed) {
      rc = write_buf(sp, b);
      if (!rc) rc = checkpoint(sp, b);
    }
    pthread_mutex_lock(&sp->mu);
    if (rc) set_err(sp, rc);
    b->state = B_FREE;
    b->len = 0;
    sp->written_n++;
    pthread_cond_broadcast(&sp->cv_done);
  }
  pthread_mutex_unlock(&sp->mu);
  return NULL;
}

/* Waits until every sealed buffer is hashed and written. */
static void wait_idle(spool *sp) {
  pthread_mutex_lock(&sp->mu);
  while (sp->written_n != sp->sealed_n) pthread_cond_wait(&sp->cv_done, &sp->mu);
  pthread_mutex_unlock(&sp->mu);
}

/* Claims a free buffer starting at file offset start (aligned). */
static int claim(spool *sp, uint64_t start) {
  pthread_mutex_lock(&sp->mu);
  int found = -1;
  while (found < 0) {
    for (int i = 0; i < CU_SPOOL_BUFS; i++) {
      if (sp->bufs[i].state != B_FREE) continue;
      /* Prefer a buffer that already has memory, to stay small. */
      if (sp->bufs[i].data || found < 0) found = i;
      if (sp->bufs[i].data) break;
    }
    if (found < 0) pthread_cond_wait(&sp->cv_done, &sp->mu);
  }
  sbuf *b = &sp->bufs[found];
  b->state = B_FILLING;
  pthread_mutex_unlock(&sp->mu);
  if (!b->data) {
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, BUFSZ)) {
      fprintf(stderr, "custos: out of memory for a spool buffer\n");
      abort();
    }
    b->data = p;
    b->hash_at_end = cu_sha256_new();
  }
  b->start = start;
  b->len = 0;
  b->hashed = 0;
  sp->cur = found;
  return 0;
}

static int seal(spool *sp) {
  sbuf *b = &sp->bufs[sp->cur];
  sp->next_start = b->start + b->len;
  sp->cur = -1;
  pthread_mutex_lock(&sp->mu);
  if (!sp->threads_started) {
    if (pthread_create(&sp->hasher, NULL, hasher_main, sp)) {
      pthread_mutex_unlock(&sp->mu);
      return cu_error(CU_EIO, "cannot start the spool hasher thread");
    }
    if (pthread_create(&sp->writer, NULL, writer_main, sp)) {
      sp->stop = true;
      pthread_cond_signal(&sp->cv_hash);
      pthread_mutex_unlock(&sp->mu);
      pthread_join(sp->hasher, NULL);
      return cu_error(CU_EIO, "cannot start the spool writer thread");
    }
    sp->threads_started = true;
  }
  b->state = B_SEALED;
  sp->ring[sp->sealed_n++ % CU_SPOOL_BUFS] = (int)(b - sp->bufs);
  pthread_cond_signal(&sp->cv_hash);
  pthread_mutex_unlock(&sp->mu);
  return 0;
}

/* Sets up the current buffer so that the next byte lands at file offset
 * off. The writer must be idle. */
static int position_at(spool *sp, uint64_t off) {
  uint64_t start = off & ~(uint64_t)(ALIGN - 1);
  int rc = claim(sp, start);
  if (rc) return rc;
  sbuf *b = &sp->bufs[sp->cur];
  size_t head = (size_t)(off - start);
  for (size_t got = 0; got < head;) {
    ssize_t n = pread(sp->fd, b->data + got, head - got, (off_t)(start + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return cu_error(CU_ECORRUPT, "spool file %s is shorter than its recorded offset", sp->path);
    got += (size_t)n;
  }
  b->len = b->hashed = head;
  return 0;
}

static int rehash_prefix(spool *sp, uint64_t offset) {
  cu_warn("re-hashing the first %llu bytes of %s (no usable saved hash state)",
          (unsigned long long)offset, sp->path);
  unsigned char *tmp = cu_xmalloc(BUFSZ);
  int rc = 0;
  for (uint64_t pos = 0; pos < offset;) {
    size_t want = offset - pos < BUFSZ ? (size_t)(offset - pos) : BUFSZ;
    ssize_t n = pread(sp->fd, tmp, want, (off_t)pos);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = cu_error(CU_ECORRUPT, "spool file %s is shorter than its recorded offset", sp->path);
      break;
    }
    cu_sha256_update(sp->hash, tmp, (size_t)n);
    pos += (uint64_t)n;
  }
  free(tmp);
  return rc;
}

int spool_open(spool **out, const char *path, uint64_t offset, const char *hash_state,
               const spool_opts *opts) {
  spool *sp = cu_xcalloc(1, sizeof *sp);
  sp->path = cu_xstrdup(path);
  sp->fd_direct = -1;
  sp->cur = -1;
  if (opts) sp->opts = *opts;
  pthread_mutex_init(&sp->mu, NULL);
  pthread_cond_init(&sp->cv_hash, NULL);
  pthread_cond_init(&sp->cv_write, NULL);
  pthread_cond_init(&sp->cv_done, NULL);
  sp->hash = cu_sha256_new();
  sp->durable_hash = cu_sha256_new();
  int rc = 0;
  sp->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (sp->fd < 0) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot open spool file %s", path);
    goto fail;
  }
  sp->fd_direct = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
  struct stat sb;
  if (fstat(sp->fd, &sb) < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot stat spool file %s", path);
    goto fail;
  }
  if ((uint64_t)sb.st_size < offset) {
    rc = cu_error(CU_ECORRUPT, "spool file %s has %lld bytes but %llu were recorded as durable",
                  path, (long long)sb.st_size, (unsigned long long)offset);
    goto fail;
  }
  /* Bytes past the durable offset were never acknowledged: drop them. */
  if ((uint64_t)sb.st_size > offset && ftruncate(sp->fd, (off_t)offset) < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot truncate spool file %s", path);
    goto fail;
  }
  if (offset && !(hash_state && cu_sha256_load(sp->hash, hash_state) == 0 &&
                  cu_sha256_count(sp->hash) == offset)) {
    cu_sha256_free(sp->hash);
    sp->hash = cu_sha256_new();
    if ((rc = rehash_prefix(sp, offset))) goto fail;
  }
  cu_sha256_copy(sp->durable_hash, sp->hash);
  sp->accepted = sp->durable_off = offset;
  if ((rc = position_at(sp, offset))) goto fail;
  *out = sp;
  return 0;
fail:
  spool_close(sp);
  return rc;
}

void spool_close(spool *sp) {
  if (!sp) return;
  if (sp->threads_started) {
    pthread_mutex_lock(&sp->mu);
    sp->stop = true;
    pthread_cond_signal(&sp->cv_hash);
    pthread_cond_signal(&sp->cv_write);
    pthread_mutex_unlock(&sp->mu);
    pthread_join(sp->hasher, NULL);
    pthread_join(sp->writer, NULL);
  }
  if (sp->fd >= 0) close(sp->fd);
  if (sp->fd_direct >= 0) close(sp->fd_direct);
  for (int i = 0; i < CU_SPOOL_BUFS; i++) {
    free(sp->bufs[i].data);
    cu_sha256_free(sp->bufs[i].hash_at_end);
  }
  cu_sha256_free(sp->hash);
  cu_sha256_free(sp->durable_hash);
  pthread_mutex_destroy(&sp->mu);
  pthread_cond_destroy(&sp->cv_hash);
  pthread_cond_destroy(&sp->cv_write);
  pthread_cond_destroy(&sp->cv_done);
  free(sp->path);
  free(sp);
}

int spool_write(spool *sp, const void *data, size_t n) {
  int rc = take_err(sp);
  if (rc) return rc;
  const unsigned char *p = data;
  while (n) {
    if (sp->cur < 0 && (rc = claim(sp, sp->next_start))) return rc;
    sbuf *b = &sp->bufs[sp->cur];
    size_t k = BUFSZ - b->len < n ? BUFSZ - b->len : n;
    memcpy(b->data + b->len, p, k);
    b->len += k;
    sp->accepted += k;
    p += k;
    n -= k;
    if (b->len == BUFSZ && (rc = seal(sp))) return rc;
  }
  return 0;
}

uint64_t spool_offset(const spool *sp) { return sp->accepted; }

int spool_sync(spool *sp, uint64_t *offset, cu_buf *hash_state) {
  wait_idle(sp);
  int rc = take_err(sp);
  if (rc) return rc;
  if (sp->cur >= 0 && sp->bufs[sp->cur].len) {
    sbuf *b = &sp->bufs[sp->cur];
    hash_rest(sp, b);
    if ((rc = write_buf(sp, b))) return rc;
  }
  if ((rc = datasync(sp))) return rc;
  pthread_mutex_lock(&sp->mu);
  sp->durable_off = sp->accepted;
  cu_sha256_copy(sp->durable_hash, sp->hash);
  pthread_mutex_unlock(&sp->mu);
  *offset = sp->accepted;
  return hash_state ? cu_sha256_save(sp->hash, hash_state) : 0;
}

int spool_rollback(spool *sp) {
  wait_idle(sp);
  pthread_mutex_lock(&sp->mu);
  sp->err = 0;
  uint64_t off = sp->durable_off;
  pthread_mutex_unlock(&sp->mu);
  if (sp->cur >= 0) {
    pthread_mutex_lock(&sp->mu);
    sp->bufs[sp->cur].state = B_FREE;
    sp->bufs[sp->cur].len = 0;
    pthread_mutex_unlock(&sp->mu);
    sp->cur = -1;
  }
  if (ftruncate(sp->fd, (off_t)off) < 0)
    return cu_error_errno(CU_EIO, errno, "cannot truncate spool file %s", sp->path);
  cu_sha256_copy(sp->hash, sp->durable_hash);
  sp->accepted = off;
  return position_at(sp, off);
}

void spool_digest(spool *sp, char hex[65]) {
  cu_sha256 *h = cu_sha256_new();
  pthread_mutex_lock(&sp->mu);
  cu_sha256_copy(h, sp->durable_hash);
  pthread_mutex_unlock(&sp->mu);
  unsigned char d[32];
  cu_sha256_final(h, d);
  cu_sha256_free(h);
  cu_hex_encode(d, 32, hex);
}
