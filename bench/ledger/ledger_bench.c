/* bench/ledger/ledger_bench.c: the ledger's figures against this machine's
 * limit, all measured in one run. Built and run by bench/ledger/run.sh;
 * never part of the test suite.
 *
 *   1  the limit: synced single-writer RocksDB writes/s (idx_batch_commit
 *      of one idx_batch_put_meta), and 4 KiB append + fdatasync latency
 *   2  durable appends/s through ledger_commit, N writer threads, one
 *      "ingested" event (544 bytes of canonical JSON) per commit; events
 *      per synced write; commit latency; then the writer's serial cost per
 *      event (one writer, 1,000 events per commit)
 *   3  STH signer off the hot path: the same run with and without the
 *      signer thread (1 s interval), interleaved
 *   4  a 1,000,000-leaf ledger: build rate, peak RSS, ledger_sign_now,
 *      reopen time, then inclusion and consistency proofs (each verified)
 *
 * Synced writes are counted exactly: this program defines fdatasync and
 * fsync, which the dynamic linker binds librocksdb's calls to, counts them
 * and calls libc's. Ratios are against the limit of part 1. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "hex.h"
#include "id.h"
#include "idx.h"
#include "json.h"
#include "ledger.h"
#include "log.h"
#include "merkle.h"
#include "note.h"
#include "timeu.h"
#include "banned.h"

/* ---- counting synced writes -------------------------------------------- */

static atomic_ulong n_fdatasync, n_fsync;

int fdatasync(int fd);
int fsync(int fd);

int fdatasync(int fd) {
  static _Atomic(int (*)(int)) real;
  int (*f)(int) = atomic_load(&real);
  if (!f) {
    f = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    atomic_store(&real, f);
  }
  atomic_fetch_add(&n_fdatasync, 1);
  return f(fd);
}

int fsync(int fd) {
  static _Atomic(int (*)(int)) real;
  int (*f)(int) = atomic_load(&real);
  if (!f) {
    f = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    atomic_store(&real, f);
  }
  atomic_fetch_add(&n_fsync, 1);
  return f(fd);
}

static unsigned long syncs(void) {
  return atomic_load(&n_fdatasync) + atomic_load(&n_fsync);
}

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "ledger_bench: %s failed (%d): %s\n", what, rc, cu_errmsg());
  exit(1);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n) {
  return splitmix(s) % n;
}

typedef struct {
  int64_t *v;
  size_t n, cap;
} samples;

static void samples_add(samples *s, int64_t x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 4096;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v) abort();
  }
  s->v[s->n++] = x;
}

static void samples_merge(samples *dst, const samples *src) {
  for (size_t i = 0; i < src->n; i++)
    samples_add(dst, src->v[i]);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile, q in (0, 1]; sorts s. */
static int64_t pct(samples *s, double q) {
  if (!s->n) return 0;
  qsort(s->v, s->n, sizeof *s->v, cmp_i64);
  size_t r = (size_t)ceil(q * (double)s->n);
  if (r < 1) r = 1;
  return s->v[r - 1];
}

static double mean(const samples *s) {
  double t = 0;
  for (size_t i = 0; i < s->n; i++)
    t += (double)s->v[i];
  return s->n ? t / (double)s->n : 0;
}

static double median_d(double *v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long rss_peak_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static long rss_now_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) v = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return v;
}

static char *path_join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = malloc(n);
  if (!p) abort();
  snprintf(p, n, "%s/%s", a, b);
  return p;
}

/* An "ingested" event as ingest/tus.c writes it (ingested_event), with a
 * fresh evidence id so that the evidence_events index is written too. */
static json_t *make_event(uint64_t *rng) {
  char evid[CU_ID_LEN + 1], upid[CU_ID_LEN + 1], tok[CU_ID_LEN + 1], sha[65], name[64];
  unsigned char h[32];
  for (int i = 0; i < 32; i += 8) {
    uint64_t r = splitmix(rng);
    memcpy(h + i, &r, 8);
  }
  cu_hex_encode(h, 32, sha);
  cu_id_new(evid);
  cu_id_new(upid);
  cu_id_new(tok);
  unsigned dev = (unsigned)rnd_below(rng, 10000);
  snprintf(name, sizeof name, "BWC%04u_20261127_%06u.mp4", dev, (unsigned)rnd_below(rng, 240000));
  char device[32], officer[32];
  snprintf(device, sizeof device, "bwc-%04u", dev);
  snprintf(officer, sizeof officer, "officer-%04u", (unsigned)rnd_below(rng, 5000));
  json_t *e = json_object();
  cu_json_set_str(e, "type", "ingested");
  cu_json_set_str(e, "evidence", evid);
  cu_json_set_str(e, "sha256", sha);
  cu_json_set_int(e, "size", (int64_t)(100000000 + rnd_below(rng, 2000000000)));
  cu_json_set_str(e, "filename", name);
  cu_json_set_str(e, "device_id", device);
  cu_json_set_str(e, "officer_id", officer);
  cu_json_set_str(e, "case_id", "case-2026-004711");
  cu_json_set_str(e, "recorded_at", "2026-11-27T19:55:00Z");
  cu_json_set_time(e, "received_at", cu_now_us());
  cu_json_set_str(e, "upload_id", upid);
  json_t *by = json_object();
  cu_json_set_str(by, "token_id", tok);
  cu_json_set_str(by, "role", "device");
  cu_json_set_str(by, "user", device);
  json_object_set_new(e, "actor", by);
  return e;
}

/* ---- options ------------------------------------------------------------ */

static struct {
  const char *dir;
  double secs, base_secs;
  int threads[16], nthreads;
  int signer_threads, signer_reps;
  uint64_t leaves;
  int build_threads, build_batch;
  int proofs, sign_reps, ceiling_batch;
  double target_rate, target_proof_us;
  bool strict, appends_only;
} opt = {
    .secs = 3,
    .base_secs = 2,
    .threads = {1, 8, 32, 64, 128},
    .nthreads = 5,
    .signer_threads = 0,
    .signer_reps = 2,
    .leaves = 1000000,
    .build_threads = 8,
    .build_batch = 64,
    .proofs = 2000,
    .sign_reps = 20,
    .ceiling_batch = 1000,
    .target_rate = 50000,
    .target_proof_us = 1000,
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: ledger_bench --dir DIR [options]\n"
          "  --secs S            length of each append run (default 3)\n"
          "  --base-secs S       length of each baseline run (default 2)\n"
          "  --threads LIST      writer threads per append run (default 1,8,32,64,128)\n"
          "  --signer-threads N  writers for the signer on/off runs (default: the largest)\n"
          "  --signer-reps N     off/on pairs (default 2)\n"
          "  --leaves N          size of the proof ledger (default 1000000)\n"
          "  --build-threads N   writers building it (default 8)\n"
          "  --build-batch N     events per commit while building (default 64)\n"
          "  --proofs N          inclusion and consistency proofs each (default 2000)\n"
          "  --sign-reps N       ledger_sign_now calls timed (default 20)\n"
          "  --ceiling-batch N   events per commit of the one-writer ceiling run (default 1000,\n"
          "                      at most 1024)\n"
          "  --appends-only      parts 1 and 2 only (for profiling; no summary)\n"
          "  --strict            exit 3 when a target is missed\n");
}

static double num_arg(const char *s) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v <= 0) {
    fprintf(stderr, "ledger_bench: bad number '%s'\n", s);
    exit(2);
  }
  return v;
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      exit(0);
    } else if (!strcmp(a, "--strict")) {
      opt.strict = true;
      continue;
    } else if (!strcmp(a, "--appends-only")) {
      opt.appends_only = true;
      continue;
    }
    if (!v) {
      usage(stderr);
      exit(2);
    }
    i++;
    if (!strcmp(a, "--dir"))
      opt.dir = v;
    else if (!strcmp(a, "--secs"))
      opt.secs = num_arg(v);
    else if (!strcmp(a, "--base-secs"))
      opt.base_secs = num_arg(v);
    else if (!strcmp(a, "--signer-threads"))
      opt.signer_threads = (int)num_arg(v);
    else if (!strcmp(a, "--signer-reps"))
      opt.signer_reps = (int)num_arg(v);
    else if (!strcmp(a, "--leaves"))
      opt.leaves = (uint64_t)num_arg(v);
    else if (!strcmp(a, "--build-threads"))
      opt.build_threads = (int)num_arg(v);
    else if (!strcmp(a, "--build-batch"))
      opt.build_batch = (int)num_arg(v);
    else if (!strcmp(a, "--proofs"))
      opt.proofs = (int)num_arg(v);
    else if (!strcmp(a, "--sign-reps"))
      opt.sign_reps = (int)num_arg(v);
    else if (!strcmp(a, "--ceiling-batch"))
      opt.ceiling_batch = (int)num_arg(v);
    else if (!strcmp(a, "--threads")) {
      opt.nthreads = 0;
      char *copy = strdup(v), *save = NULL;
      for (char *t = strtok_r(copy, ",", &save); t && opt.nthreads < 16;
           t = strtok_r(NULL, ",", &save))
        opt.threads[opt.nthreads++] = (int)num_arg(t);
      free(copy);
    } else {
      usage(stderr);
      exit(2);
    }
  }
  if (!opt.dir) {
    usage(stderr);
    exit(2);
  }
  if (opt.ceiling_batch > 1024 || opt.build_batch > 1024) {
    fprintf(stderr, "ledger_bench: at most 1024 events per commit\n");
    exit(2);
  }
  if (!opt.signer_threads)
    for (int i = 0; i < opt.nthreads; i++)
      if (opt.threads[i] > opt.signer_threads) opt.signer_threads = opt.threads[i];
}

/* ---- 1: the limit ------------------------------------------------------- */

typedef struct {
  double rate;      /* synced writes/s */
  int64_t p50, p99; /* ns per idx_batch_commit */
  unsigned long writes, syncs;
} base_result;

static base_result baseline(idx *ix, double secs) {
  samples lat = {0};
  json_t *v = json_object();
  unsigned long s0 = syncs();
  int64_t t0 = now_ns(), end = t0 + (int64_t)(secs * 1e9), t = t0;
  unsigned long n = 0;
  while (t < end) {
    cu_json_set_int(v, "n", (int64_t)n);
    idx_batch *b = idx_batch_new(ix);
    idx_batch_put_meta(b, "bench_baseline", v);
    int rc = idx_batch_commit(ix, b);
    idx_batch_free(b);
    if (rc) die("idx_batch_commit", rc);
    int64_t t1 = now_ns();
    samples_add(&lat, t1 - t);
    t = t1;
    n++;
  }
  base_result r = {
      .rate = (double)n / ((double)(t - t0) / 1e9), .writes = n, .syncs = syncs() - s0};
  r.p50 = pct(&lat, 0.5);
  r.p99 = pct(&lat, 0.99);
  json_decref(v);
  free(lat.v);
  return r;
}

/* 4 KiB appends to a fresh file, each followed by fdatasync: what a WAL
 * append costs the file system (block write + journal commit). */
static void fsync_latency(const char *dir, double secs, int64_t *p50, int64_t *p99, double *rate) {
  char *path = path_join(dir, "fsync.probe");
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "ledger_bench: cannot create %s: %s\n", path, strerror(errno));
    exit(1);
  }
  char block[4096];
  memset(block, 'x', sizeof block);
  samples lat = {0};
  int64_t t0 = now_ns(), end = t0 + (int64_t)(secs * 1e9), t = t0;
  off_t off = 0;
  while (t < end) {
    if (pwrite(fd, block, sizeof block, off) != (ssize_t)sizeof block || fdatasync(fd)) {
      fprintf(stderr, "ledger_bench: write/fdatasync: %s\n", strerror(errno));
      exit(1);
    }
    off += (off_t)sizeof block;
    int64_t t1 = now_ns();
    samples_add(&lat, t1 - t);
    t = t1;
  }
  *rate = (double)lat.n / ((double)(t - t0) / 1e9);
  *p50 = pct(&lat, 0.5);
  *p99 = pct(&lat, 0.99);
  close(fd);
  unlink(path);
  free(path);
  free(lat.v);
}

/* ---- 2: concurrent appends ---------------------------------------------- */

typedef struct {
  ledger *lg;
  int per_commit;
  bool prebuilt;              /* reuse a pool of events: the callers' JSON work left out */
  int64_t deadline_ns;        /* stop starting commits after this */
  _Atomic int64_t *remaining; /* or: stop when this many events are claimed */
  pthread_barrier_t *start;
  uint64_t seed;
  samples lat;
  uint64_t events, commits;
  int rc;
  char err[256];
} writer;

static void *writer_main(void *arg) {
  writer *w = arg;
  uint64_t rng = w->seed;
  json_t *evs[1024], **pool = NULL;
  size_t next = 0;
  int npool = w->per_commit < 8 ? 16 : 2 * w->per_commit;
  if (w->prebuilt) {
    pool = calloc((size_t)npool, sizeof *pool);
    if (!pool) abort();
    for (int i = 0; i < npool; i++)
      pool[i] = make_event(&rng);
  }
  pthread_barrier_wait(w->start);
  for (;;) {
    int k = w->per_commit;
    if (w->remaining) {
      int64_t left = atomic_fetch_sub(w->remaining, k);
      if (left <= 0) break;
      if (left < k) k = (int)left;
    } else if (now_ns() >= w->deadline_ns) {
      break;
    }
    for (int i = 0; i < k; i++) {
      if (w->prebuilt) {
        evs[i] = pool[next++ % (size_t)npool];
        json_object_del(evs[i], "at"); /* the ledger sets it again */
      } else {
        evs[i] = make_event(&rng);
      }
    }
    int64_t t0 = now_ns();
    int rc = ledger_commit(w->lg, NULL, evs, k, NULL);
    int64_t t1 = now_ns();
    if (!w->prebuilt)
      for (int i = 0; i < k; i++)
        json_decref(evs[i]);
    if (rc) {
      w->rc = rc;
      snprintf(w->err, sizeof w->err, "%s", cu_errmsg());
      break;
    }
    if (!w->remaining) samples_add(&w->lat, t1 - t0);
    w->events += (uint64_t)k;
    w->commits++;
  }
  if (w->prebuilt) {
    for (int i = 0; i < npool; i++)
      json_decref(pool[i]);
    free(pool);
  }
  return NULL;
}

typedef struct {
  int threads;
  double secs, rate;
  uint64_t events, commits;
  unsigned long syncs;
  int64_t p50, p99;
  double mean_us;
} run_result;

/* n writer threads for secs seconds, or until total events are in. */
static run_result run_writers(ledger *lg, int n, double secs, int per_commit, uint64_t total,
                              bool prebuilt) {
  writer *ws = calloc((size_t)n, sizeof *ws);
  pthread_t *th = calloc((size_t)n, sizeof *th);
  if (!ws || !th) abort();
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)n + 1);
  _Atomic int64_t remaining = (int64_t)total;
  int64_t deadline = 0;
  for (int i = 0; i < n; i++) {
    ws[i] = (writer){.lg = lg,
                     .per_commit = per_commit,
                     .prebuilt = prebuilt,
                     .start = &start,
                     .remaining = total ? &remaining : NULL,
                     .seed = 0x1234567ull * (uint64_t)(i + 1) ^ (uint64_t)now_ns()};
    if (pthread_create(&th[i], NULL, writer_main, &ws[i])) {
      fprintf(stderr, "ledger_bench: cannot start thread %d\n", i);
      exit(1);
    }
  }
  unsigned long s0 = syncs();
  int64_t t0 = now_ns();
  deadline = t0 + (int64_t)(secs * 1e9);
  for (int i = 0; i < n; i++)
    ws[i].deadline_ns = deadline;
  pthread_barrier_wait(&start);
  if (total) {
    /* progress on stderr while a large build runs */
    for (;;) {
      int64_t left = atomic_load(&remaining);
      if (left <= 0) break;
      struct timespec ts = {0, 200000000};
      nanosleep(&ts, NULL);
      static int64_t last;
      int64_t now = now_ns();
      if (!last) last = now;
      if (now - last > 10000000000ll) {
        last = now;
        fprintf(stderr, "  ... %llu of %llu events\n", (unsigned long long)ledger_size(lg),
                (unsigned long long)total);
      }
    }
  }
  for (int i = 0; i < n; i++)
    pthread_join(th[i], NULL);
  int64_t t1 = now_ns();
  run_result r = {.threads = n, .secs = (double)(t1 - t0) / 1e9, .syncs = syncs() - s0};
  samples all = {0};
  for (int i = 0; i < n; i++) {
    if (ws[i].rc) {
      fprintf(stderr, "ledger_bench: ledger_commit failed: %s\n", ws[i].err);
      exit(1);
    }
    r.events += ws[i].events;
    r.commits += ws[i].commits;
    samples_merge(&all, &ws[i].lat);
    free(ws[i].lat.v);
  }
  r.rate = (double)r.events / r.secs;
  r.mean_us = mean(&all) / 1e3;
  r.p50 = pct(&all, 0.5);
  r.p99 = pct(&all, 0.99);
  free(all.v);
  pthread_barrier_destroy(&start);
  free(ws);
  free(th);
  return r;
}

/* ---- 3: the signer ------------------------------------------------------ */

static atomic_ulong heads_signed;

static void count_head(void *ud, idx_batch *b, const json_t *sth) {
  (void)ud;
  (void)b;
  (void)sth;
  atomic_fetch_add(&heads_signed, 1);
}

/* ---- 4: proofs ---------------------------------------------------------- */

typedef struct {
  int64_t incl_p50, incl_p99, cons_p50, cons_p99;
  double incl_mean, cons_mean;
  int incl_fail, cons_fail;
  double incl_len, cons_len;
} proof_result;

static proof_result proofs(ledger *lg, int count, uint64_t seed) {
  proof_result r = {0};
  uint64_t size = ledger_size(lg), rng = seed;
  merkle_hash root;
  int rc = ledger_root(lg, size, root);
  if (rc) die("ledger_root", rc);
  samples li = {0}, lc = {0};
  cu_buf entry = CU_BUF_INIT(1 << 20);
  long len_i = 0, len_c = 0;
  for (int i = 0; i < count; i++) {
    uint64_t index = rnd_below(&rng, size);
    merkle_hash path[MERKLE_MAX_PATH], leaf, stored;
    int n = 0;
    int64_t t0 = now_ns();
    rc = ledger_inclusion(lg, index, size, path, &n);
    int64_t t1 = now_ns();
    if (rc) die("ledger_inclusion", rc);
    samples_add(&li, t1 - t0);
    len_i += n;
    /* The leaf from the entry's bytes, so the entry is checked too. */
    entry.len = 0;
    rc = ledger_entry(lg, index, &entry);
    if (rc) die("ledger_entry", rc);
    merkle_leaf(entry.data, entry.len, leaf);
    if (ledger_leaf_hash(lg, index, stored) || memcmp(leaf, stored, 32) ||
        !merkle_verify_inclusion(index, size, leaf, (const merkle_hash *)path, n, root))
      r.incl_fail++;
  }
  for (int i = 0; i < count; i++) {
    uint64_t second = 2 + rnd_below(&rng, size - 1);  /* 2..size */
    uint64_t first = 1 + rnd_below(&rng, second - 1); /* 1..second-1 */
    merkle_hash path[MERKLE_MAX_PATH], r1, r2;
    int n = 0;
    int64_t t0 = now_ns();
    rc = ledger_consistency(lg, first, second, path, &n);
    int64_t t1 = now_ns();
    if (rc) die("ledger_consistency", rc);
    samples_add(&lc, t1 - t0);
    len_c += n;
    if (ledger_root(lg, first, r1) || ledger_root(lg, second, r2) ||
        !merkle_verify_consistency(first, second, (const merkle_hash *)path, n, r1, r2))
      r.cons_fail++;
  }
  r.incl_mean = mean(&li) / 1e3;
  r.cons_mean = mean(&lc) / 1e3;
  r.incl_p50 = pct(&li, 0.5);
  r.incl_p99 = pct(&li, 0.99);
  r.cons_p50 = pct(&lc, 0.5);
  r.cons_p99 = pct(&lc, 0.99);
  r.incl_len = (double)len_i / count;
  r.cons_len = (double)len_c / count;
  free(li.v);
  free(lc.v);
  cu_buf_release(&entry);
  return r;
}

/* ---- main ----------------------------------------------------------------- */

static ledger *open_ledger(idx *ix, const char *keys) {
  ledger_opts lo = {
      .keys_dir = keys, .origin = "bench.custos.example/ledger", .sth_interval_us = 1000000};
  ledger *lg = NULL;
  int rc = ledger_open(&lg, ix, &lo);
  if (rc) die("ledger_open", rc);
  return lg;
}

static idx *open_idx(const char *dir, const char *name) {
  char *p = path_join(dir, name);
  idx *ix = NULL;
  int rc = idx_open(&ix, p);
  if (rc) die("idx_open", rc);
  free(p);
  return ix;
}

static const char *verdict(bool ok) {
  return ok ? "PASS" : "FAIL";
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  cu_log_set_level(CU_LOG_WARN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  char *keys = path_join(opt.dir, "keys");
  if (mkdir(keys, 0700) && errno != EEXIST) {
    fprintf(stderr, "ledger_bench: cannot make %s: %s\n", keys, strerror(errno));
    return 1;
  }

  {
    uint64_t rng = 1;
    json_t *e = make_event(&rng);
    cu_json_set_time(e, "at", cu_now_us());
    size_t len;
    char *s = cu_json_canon(e, &len);
    printf("event: one \"ingested\" event, %zu bytes of canonical JSON with \"at\" "
           "(fresh evidence id each)\n\n",
           len);
    free(s);
    json_decref(e);
  }

  /* 1: the limit */
  printf("1. The limit (same run, same file system)\n");
  int64_t fs50, fs99;
  double fsrate;
  fsync_latency(opt.dir, 1.0, &fs50, &fs99, &fsrate);
  printf("   4 KiB append + fdatasync:                  p50 %7.1f us  p99 %7.1f us  (%.0f/s)\n",
         fs50 / 1e3, fs99 / 1e3, fsrate);
  idx *bix = open_idx(opt.dir, "base");
  base_result b1 = baseline(bix, opt.base_secs);
  printf("   synced RocksDB writes, one writer:         %7.0f /s   p50 %7.1f us  p99 %7.1f us  "
         "(%lu writes, %lu syncs counted)\n",
         b1.rate, b1.p50 / 1e3, b1.p99 / 1e3, b1.writes, b1.syncs);

  /* 2: concurrent appends */
  idx *aix = open_idx(opt.dir, "append");
  ledger *alg = open_ledger(aix, keys);
  printf("\n2. Durable appends through ledger_commit, one event per commit, %.0f s each, "
         "no signer\n",
         opt.secs);
  printf("   %7s %10s %8s %10s %10s %9s %9s %9s %11s\n", "threads", "events/s", "/limit", "syncs/s",
         "group", "p50 ms", "p99 ms", "mean ms", "syncs/limit");
  double best = 0, prebuilt_rate = 0;
  int best_threads = 0;
  for (int i = 0; i < opt.nthreads; i++) {
    run_result r = run_writers(alg, opt.threads[i], opt.secs, 1, 0, false);
    double sps = (double)r.syncs / r.secs;
    printf("   %7d %10.0f %8.2f %10.0f %10.2f %9.3f %9.3f %9.3f %11.2f\n", r.threads, r.rate,
           r.rate / b1.rate, sps, r.syncs ? (double)r.events / (double)r.syncs : 0, r.p50 / 1e6,
           r.p99 / 1e6, r.mean_us / 1e3, sps / b1.rate);
    if (r.rate > best) {
      best = r.rate;
      best_threads = r.threads;
    }
  }
  {
    run_result r = run_writers(alg, opt.signer_threads, opt.secs, 1, 0, true);
    double sps = (double)r.syncs / r.secs;
    printf("   %6dp %10.0f %8.2f %10.0f %10.2f %9.3f %9.3f %9.3f %11.2f\n", r.threads, r.rate,
           r.rate / b1.rate, sps, r.syncs ? (double)r.events / (double)r.syncs : 0, r.p50 / 1e6,
           r.p99 / 1e6, r.mean_us / 1e3, sps / b1.rate);
    prebuilt_rate = r.rate;
  }
  /* The writer's own cost per event: one writer, big commits, so the one
   * synced write is spread over many events and nothing waits for anyone. */
  run_result cr = run_writers(alg, 1, opt.secs, opt.ceiling_batch, 0, false);
  double serial_us = cr.mean_us / opt.ceiling_batch;
  printf("   one writer, %d events per commit: %.0f events/s (%.2f x limit), %.0f commits/s, "
         "commit p50 %.2f ms\n",
         opt.ceiling_batch, cr.rate, cr.rate / b1.rate, (double)cr.commits / cr.secs, cr.p50 / 1e6);
  printf("   the writer's serial work: %.1f us per event inside ledger_commit (%d-event commits),\n"
         "   so one writer cannot commit more than %.0f events/s whatever the concurrency\n",
         serial_us, opt.ceiling_batch, 1e6 / serial_us);
  printf("   %dp: the same %d writers reusing prebuilt events (their JSON building left out:\n"
         "   the ledger alone; not counted for the target)\n",
         opt.signer_threads, opt.signer_threads);
  printf("   /limit: events/s over the synced-write limit (group size estimated from rates);\n"
         "   group: events per synced write, counted (fdatasync+fsync calls in the run);\n"
         "   syncs/limit: how much of the one-writer sync rate the ledger's writer used.\n");
  if (opt.appends_only) {
    ledger_free(alg);
    idx_close(aix);
    idx_close(bix);
    free(keys);
    return 0;
  }

  /* 3: the signer, off and on, interleaved */
  printf("\n3. STH signer off the hot path: %d writers, %.0f s runs, off/on interleaved, "
         "sth interval 1 s\n",
         opt.signer_threads, opt.secs);
  double off[16], on[16];
  int reps = opt.signer_reps > 16 ? 16 : opt.signer_reps;
  unsigned long heads_total = 0;
  for (int i = 0; i < reps; i++) {
    run_result r = run_writers(alg, opt.signer_threads, opt.secs, 1, 0, false);
    off[i] = r.rate;
    printf("   signer off: %8.0f events/s  p99 %6.3f ms\n", r.rate, r.p99 / 1e6);
    unsigned long h0 = atomic_load(&heads_signed);
    int rc = ledger_start_signer(alg, count_head, NULL);
    if (rc) die("ledger_start_signer", rc);
    r = run_writers(alg, opt.signer_threads, opt.secs, 1, 0, false);
    unsigned long heads = atomic_load(&heads_signed) - h0;
    on[i] = r.rate;
    printf("   signer on:  %8.0f events/s  p99 %6.3f ms  (%lu heads signed during the run)\n",
           r.rate, r.p99 / 1e6, heads);
    heads_total += heads;
    ledger_free(alg); /* stops the signer after a last head */
    alg = open_ledger(aix, keys);
  }
  double off_lo = off[0], off_hi = off[0];
  for (int i = 1; i < reps; i++) {
    if (off[i] < off_lo) off_lo = off[i];
    if (off[i] > off_hi) off_hi = off[i];
  }
  double off_med = median_d(off, reps), on_med = median_d(on, reps);
  double signer_ratio = on_med / off_med;
  printf(
      "   median off %.0f, on %.0f events/s: on/off = %.3f (off runs spread %.0f-%.0f, %.1f%%)\n",
      off_med, on_med, signer_ratio, off_lo, off_hi,
      off_med ? 100.0 * (off_hi - off_lo) / off_med : 0);
  ledger_free(alg);
  idx_close(aix);

  base_result b2 = baseline(bix, opt.base_secs);
  printf("   synced RocksDB writes, one writer, again:  %7.0f /s   p50 %7.1f us  p99 %7.1f us "
         "(drift check)\n",
         b2.rate, b2.p50 / 1e3, b2.p99 / 1e3);
  idx_close(bix);

  /* 4: the big ledger */
  printf("\n4. A ledger of %llu events: %d writers, %d events per commit\n",
         (unsigned long long)opt.leaves, opt.build_threads, opt.build_batch);
  idx *gix = open_idx(opt.dir, "big");
  ledger *glg = open_ledger(gix, keys);
  run_result br = run_writers(glg, opt.build_threads, 0, opt.build_batch, opt.leaves, false);
  long rss_build = rss_peak_kib();
  printf("   built in %.1f s: %.0f events/s, %lu synced writes (%.0f events each)\n", br.secs,
         br.rate, br.syncs, br.syncs ? (double)br.events / (double)br.syncs : 0);
  printf("   peak RSS after the build: %.1f MiB (getrusage; now %.1f MiB)\n", rss_build / 1024.0,
         rss_now_kib() / 1024.0);
  if (ledger_size(glg) != opt.leaves) {
    fprintf(stderr, "ledger_bench: the ledger has %llu events, not %llu\n",
            (unsigned long long)ledger_size(glg), (unsigned long long)opt.leaves);
    return 1;
  }

  /* ledger_sign_now, no signer running: a head, then one more event and a
   * head that needs a consistency proof from the last one. */
  samples sl = {0};
  int64_t first_sign = 0;
  {
    uint64_t rng = 99;
    for (int i = 0; i <= opt.sign_reps; i++) {
      if (i) {
        json_t *e = make_event(&rng);
        int rc = ledger_commit(glg, NULL, &e, 1, NULL);
        json_decref(e);
        if (rc) die("ledger_commit", rc);
      }
      int64_t t0 = now_ns();
      int rc = ledger_sign_now(glg);
      int64_t t1 = now_ns();
      if (rc) die("ledger_sign_now", rc);
      if (i)
        samples_add(&sl, t1 - t0);
      else
        first_sign = t1 - t0;
    }
  }
  int64_t sign_p50 = pct(&sl, 0.5), sign_max = pct(&sl, 1.0);
  free(sl.v);
  /* Ed25519 alone, for the breakdown. */
  samples ns = {0};
  {
    unsigned char seed[32], pub[32];
    note_keygen(seed, pub);
    merkle_hash root = {1};
    cu_buf body = CU_BUF_INIT(NOTE_MAX_BYTES), note = CU_BUF_INIT(NOTE_MAX_BYTES);
    for (int i = 0; i < 200; i++) {
      body.len = note.len = 0;
      int64_t t0 = now_ns();
      note_checkpoint_body("bench.custos.example/ledger", 1000000 + (uint64_t)i, root, &body);
      note_sign(seed, "bench.custos.example/ledger", body.data, body.len, &note);
      samples_add(&ns, now_ns() - t0);
    }
    cu_buf_release(&body);
    cu_buf_release(&note);
  }
  int64_t note_p50 = pct(&ns, 0.5);
  free(ns.v);
  printf("   ledger_sign_now (no signer running), %d times after one more event each:\n"
         "     p50 %.1f us, max %.1f us (the first head, without a consistency proof: %.1f us);\n"
         "     of which checkpoint text + Ed25519 signature p50 %.1f us, the rest is the proof\n"
         "     and one synced write\n",
         opt.sign_reps, sign_p50 / 1e3, sign_max / 1e3, first_sign / 1e3, note_p50 / 1e3);

  /* Reopen: empty block cache, the OS page cache warm. */
  uint64_t size = ledger_size(glg);
  ledger_free(glg);
  idx_close(gix);
  int64_t t0 = now_ns();
  gix = open_idx(opt.dir, "big");
  glg = open_ledger(gix, keys);
  int64_t topen = now_ns() - t0;
  printf("   reopened (idx_open + ledger_open, which checks the last head) in %.1f ms\n",
         topen / 1e6);
  if (ledger_size(glg) != size) {
    fprintf(stderr, "ledger_bench: reopened with %llu events, not %llu\n",
            (unsigned long long)ledger_size(glg), (unsigned long long)size);
    return 1;
  }
  printf("\n   proofs at size %llu, %d of each, random indexes, each verified "
         "(RocksDB block cache 16 MiB)\n",
         (unsigned long long)size, opt.proofs);
  printf("   %-34s %9s %9s %9s %7s %9s\n", "", "p50 us", "p99 us", "mean us", "hashes", "failures");
  proof_result pr[2];
  const char *pass_name[2] = {"block cache cold", "warm"};
  for (int p = 0; p < 2; p++) {
    pr[p] = proofs(glg, opt.proofs, 42 + (uint64_t)p);
    printf("   inclusion,   %-21s %9.1f %9.1f %9.1f %7.1f %9d\n", pass_name[p],
           pr[p].incl_p50 / 1e3, pr[p].incl_p99 / 1e3, pr[p].incl_mean, pr[p].incl_len,
           pr[p].incl_fail);
    printf("   consistency, %-21s %9.1f %9.1f %9.1f %7.1f %9d\n", pass_name[p],
           pr[p].cons_p50 / 1e3, pr[p].cons_p99 / 1e3, pr[p].cons_mean, pr[p].cons_len,
           pr[p].cons_fail);
  }
  ledger_free(glg);
  idx_close(gix);
  long rss_end = rss_peak_kib();

  /* Summary */
  double limit = b1.rate;
  bool ok_rate = best >= opt.target_rate;
  bool ok_incl = pr[1].incl_p50 < opt.target_proof_us * 1e3 && !pr[0].incl_fail && !pr[1].incl_fail;
  bool ok_cons = pr[1].cons_p50 < opt.target_proof_us * 1e3 && !pr[0].cons_fail && !pr[1].cons_fail;
  bool ok_signer = signer_ratio >= 0.9 && heads_total > 0;
  printf("\nSummary\n");
  printf("   limit: %.0f synced writes/s, one writer (%.0f at the end of the run); "
         "4 KiB fdatasync p50 %.1f us\n",
         limit, b2.rate, fs50 / 1e3);
  printf("   %-52s %-22s %-14s %s\n", "target", "measured", "vs limit", "");
  char measured[64], vs[32];
  snprintf(measured, sizeof measured, "%.0f/s at %d threads", best, best_threads);
  snprintf(vs, sizeof vs, "%.1f x", best / limit);
  printf("   %-52s %-22s %-14s %s\n", "durable appends >= 50000 events/s (concurrent)", measured,
         vs, verdict(ok_rate));
  printf("   %-52s p50 %-18.1f %-14s %s\n", "inclusion proof, median < 1 ms (us)",
         pr[1].incl_p50 / 1e3, "", verdict(ok_incl));
  printf("   %-52s p50 %-18.1f %-14s %s\n", "consistency proof, median < 1 ms (us)",
         pr[1].cons_p50 / 1e3, "", verdict(ok_cons));
  printf("   %-52s on/off %-15.3f %-14s %s\n", "STH signing off the hot path (on/off >= 0.90)",
         signer_ratio, "", verdict(ok_signer));
  printf("   (the ledger alone, %d writers reusing prebuilt events: %.0f events/s)\n",
         opt.signer_threads, prebuilt_rate);
  printf("   peak RSS: %.1f MiB after the 1M build, %.1f MiB at the end\n", rss_build / 1024.0,
         rss_end / 1024.0);
  free(keys);
  bool all = ok_rate && ok_incl && ok_cons && ok_signer;
  return opt.strict && !all ? 3 : 0;
}
