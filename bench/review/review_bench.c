/* bench/review/review_bench.c: the reviewer's two index reads on an archive
 * of 1,000,000 evidence records, in one run. Built and run by
 * bench/review/run.sh; never part of the test suite.
 *
 *   load   N synthetic records (shaped like the server's own: upload
 *          metadata, uploader, and a probe result with two streams) through
 *          idx_batch_add_evidence, B per synced commit, recorded_at spread
 *          over 2026 in arrival order; ~200 devices, ~2,000 officers; 30 %
 *          of the records carry the case_id of a small incident case (about
 *          6 items each, as ingest links them). Then one big case gets
 *          1,000 items from across the year through idx_evidence_link, one
 *          synced commit each, as the server links them (its listing
 *          entries carry a copy of the record); and a second one gets 1,000
 *          through idx_batch_link alone, entries without the copy, as an
 *          index written before the copies has them
 *   (a)    device time-range query: device, from and to, limit 100, each
 *          window chosen to hold 100-200 of the device's items (so every
 *          answer is a full page of 100)
 *   (b)    case listing: case_id, limit 1000, of the big case (every answer
 *          is its 1,000 items)
 *
 * Both through idx_evidence_list_raw (the page as JSON text: what the HTTP
 * listing sends), and warm also through idx_evidence_list (the page as
 * parsed records), for comparison. Measured three times: right after the
 * load (the same handle: memtables, fresh level-0 files, compactions
 * possibly still running, the files in the page cache); after a full
 * manual compaction with the index's files dropped from the page cache
 * (cold: the first pass of the same queries); and again (warm: the figure
 * for the targets). The RocksDB block cache is the index's own (idx.c);
 * "warm" means the OS page cache holds the files.
 *
 * The compaction opens the directory with RocksDB's C API directly (the
 * index has no call for it) after idx_close, with default options, which
 * match idx.c's for these column families (same compression and table
 * format). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <rocksdb/c.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "hex.h"
#include "id.h"
#include "idx.h"
#include "json.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

/* 2026-01-01T00:00:00Z and the length of that year. */
#define YEAR_START_S 1767225600LL
#define YEAR_S (365LL * 86400)
#define BIG_CASE "CASE-2026-000001"
#define OLD_CASE "CASE-2026-000002" /* linked without record copies */

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "review_bench: %s failed (%d): %s\n", what, rc, cu_errmsg());
  exit(1);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    fprintf(stderr, "review_bench: out of memory\n");
    abort();
  }
  return p;
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

static long rss_peak_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Bytes in the regular files of dir (not recursive: RocksDB keeps one level). */
static uint64_t dir_bytes(const char *dir) {
  DIR *d = opendir(dir);
  uint64_t total = 0;
  struct dirent *e;
  char p[4096];
  while (d && (e = readdir(d))) {
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (!stat(p, &st) && S_ISREG(st.st_mode)) total += (uint64_t)st.st_size;
  }
  if (d) closedir(d);
  return total;
}

/* Drops dir's files from the page cache (clean pages only, hence the
 * syncfs first): the next reads come from the disk. No root needed, and
 * nobody else's cache is touched. */
static void evict(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  int dfd = dirfd(d);
  if (syncfs(dfd)) fprintf(stderr, "review_bench: syncfs: %s\n", strerror(errno));
  struct dirent *e;
  while ((e = readdir(d))) {
    int fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    if (!fstat(fd, &st) && S_ISREG(st.st_mode)) {
      fdatasync(fd);
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
    close(fd);
  }
  closedir(d);
}

/* Figures for run.sh's summary, as key=value lines (--kv). */
static FILE *kvf;

static void kv(const char *key, double v) {
  if (kvf) fprintf(kvf, "%s=%.3f\n", key, v);
}

/* ---- options ------------------------------------------------------------ */

static struct {
  const char *dir, *kv, *queries_out;
  long records, batch, devices, officers, case_items, queries, case_reps, http_queries;
  double case_share;
  bool no_compact, reuse, strict;
  double target_device_us, target_case_us;
} opt = {
    .records = 1000000,
    .batch = 1000,
    .devices = 200,
    .officers = 2000,
    .case_items = 1000,
    .queries = 1000,
    .case_reps = 200,
    .http_queries = 1000,
    .case_share = 0.3,
    .target_device_us = 2000,
    .target_case_us = 10000,
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: review_bench --dir DIR [options]\n"
          "  --records N        evidence records to load (default 1000000)\n"
          "  --batch N          records per synced commit (default 1000)\n"
          "  --devices N        recorders (default 200)\n"
          "  --officers N       officers (default 2000)\n"
          "  --case-items N     items linked into each of the two big cases (default 1000)\n"
          "  --case-share F     share of records in a small incident case (default 0.3)\n"
          "  --queries N        device time-range queries per pass (default 1000)\n"
          "  --case-reps N      case listings per pass (default 200)\n"
          "  --no-compact       skip the compaction (and the cold pass)\n"
          "  --reuse            DIR already holds a loaded index from an earlier run with\n"
          "                     the same --records/--devices/--case-items: skip the load\n"
          "                     (the records are regenerated, not written; for profiling)\n"
          "  --queries-out FILE write --http-queries device queries and the big case as\n"
          "                     lines for the HTTP part ('device DEV FROM TO', 'case ID')\n"
          "  --http-queries N   (default 1000)\n"

          "  --kv FILE          also write the figures as key=value lines\n"
          "  --strict           exit 3 when a target is missed\n");
}

static long num_arg(const char *a, const char *s) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v <= 0) {
    fprintf(stderr, "review_bench: %s takes a positive integer, not '%s'\n", a, s);
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
    } else if (!strcmp(a, "--no-compact")) {
      opt.no_compact = true;
      continue;
    } else if (!strcmp(a, "--reuse")) {
      opt.reuse = true;
      continue;
    } else if (!strcmp(a, "--strict")) {
      opt.strict = true;
      continue;
    }
    if (!v) {
      usage(stderr);
      exit(2);
    }
    i++;
    if (!strcmp(a, "--dir")) opt.dir = v;
    else if (!strcmp(a, "--kv")) opt.kv = v;
    else if (!strcmp(a, "--queries-out")) opt.queries_out = v;
    else if (!strcmp(a, "--records")) opt.records = num_arg(a, v);
    else if (!strcmp(a, "--batch")) opt.batch = num_arg(a, v);
    else if (!strcmp(a, "--devices")) opt.devices = num_arg(a, v);
    else if (!strcmp(a, "--officers")) opt.officers = num_arg(a, v);
    else if (!strcmp(a, "--case-items")) opt.case_items = num_arg(a, v);
    else if (!strcmp(a, "--queries")) opt.queries = num_arg(a, v);
    else if (!strcmp(a, "--case-reps")) opt.case_reps = num_arg(a, v);
    else if (!strcmp(a, "--http-queries")) opt.http_queries = num_arg(a, v);
    else if (!strcmp(a, "--case-share")) {
      char *end;
      opt.case_share = strtod(v, &end);
      if (end == v || *end || opt.case_share < 0 || opt.case_share > 1) {
        fprintf(stderr, "review_bench: --case-share takes a number in [0, 1]\n");
        exit(2);
      }
    } else {
      usage(stderr);
      exit(2);
    }
  }
  if (!opt.dir) {
    usage(stderr);
    exit(2);
  }
  if (opt.case_items > opt.records) opt.case_items = opt.records;
  if (opt.case_items > 1000) {
    fprintf(stderr, "review_bench: --case-items: at most 1000 (one page)\n");
    exit(2);
  }
}

/* ---- the synthetic archive ---------------------------------------------- */

/* What the load decided, kept for choosing the queries. */
typedef struct {
  long n;
  int64_t *t;       /* recorded_at, seconds */
  uint16_t *dev;    /* device number */
  char (*id)[CU_ID_LEN + 1];
  uint64_t rec_bytes; /* canonical JSON bytes of the records written */
  long in_small_case, small_cases;
} archive;

static void fmt_time(int64_t s, char out[CU_RFC3339_LEN]) {
  cu_time_rfc3339(s * 1000000, out);
}

static void random_sha(uint64_t *rng, char out[65]) {
  unsigned char h[32];
  for (int i = 0; i < 32; i += 8) {
    uint64_t r = splitmix(rng);
    memcpy(h + i, &r, 8);
  }
  cu_hex_encode(h, 32, out);
}

/* A probe result as media/probe.c writes it for a body-worn camera's MP4:
 * H.264 1080p30 + AAC stereo, with the container's tags. */
static json_t *make_media(uint64_t *rng, double dur, int64_t bit_rate, int64_t probed_us) {
  char probed[CU_RFC3339_LEN];
  cu_time_rfc3339(probed_us, probed);
  json_t *v = json_pack(
      "{s:s, s:s, s:s, s:f, s:s, s:I, s:i, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:{s:s, s:s, "
      "s:s, s:s}, s:s, s:i}",
      "avg_frame_rate", "30/1", "codec", "h264", "frame_rate", "30/1", "duration_s",
      dur - 0.03, "language", "und", "bit_rate", (json_int_t)(bit_rate - 128000), "height", 1080,
      "pix_fmt", "yuv420p", "profile", "High", "type", "video", "width", 1920, "index", 0,
      "color_range", "tv", "color_space", "bt709", "field_order", "progressive", "tags",
      "encoder", "Ambarella AVC encoder", "handler_name", "VideoHandler", "language", "und",
      "vendor_id", "[0][0][0][0]", "timecode", "00:00:00:00", "has_b_frames", 0);
  json_t *a = json_pack(
      "{s:I, s:s, s:i, s:s, s:f, s:i, s:s, s:s, s:i, s:{s:s, s:s, s:s}, s:s}", "bit_rate",
      (json_int_t)127638, "channel_layout", "stereo", "channels", 2, "codec", "aac",
      "duration_s", dur - 0.01, "index", 1, "language", "und", "profile", "LC", "sample_rate",
      48000, "tags", "handler_name", "SoundHandler", "language", "und", "vendor_id",
      "[0][0][0][0]", "type", "audio");
  json_t *m = json_pack("{s:I, s:s, s:s, s:f, s:s, s:i, s:i, s:s, s:f, s:s, s:[o, o], s:{s:s, "
                        "s:s, s:s, s:s, s:s}}",
                        "bit_rate", (json_int_t)bit_rate, "container", "mov,mp4,m4a,3gp,3g2,mj2",
                        "container_long", "QuickTime / MOV", "duration_s", dur, "libavformat",
                        "59.27.100", "nb_streams", 2, "probe_score", 100, "probed_at", probed,
                        "start_time_s", 0.0, "status", "ok", "streams", v, a, "tags",
                        "compatible_brands", "isomiso2avc1mp41", "creation_time",
                        "2026-01-01T00:00:00.000000Z", "major_brand", "isom", "minor_version",
                        "512", "encoder", "Lavf59.27.100");
  (void)rng;
  if (!v || !a || !m) {
    fprintf(stderr, "review_bench: json_pack failed\n");
    abort();
  }
  return m;
}

/* One evidence record as the server writes it after ingest and probe. */
static json_t *make_record(uint64_t *rng, const archive *ar, long k, const char *case_id,
                           unsigned officer) {
  char sha[65], device[32], off[32], fname[128], rec_at[CU_RFC3339_LEN], recv[CU_RFC3339_LEN];
  char upid[CU_ID_LEN + 1], tok[CU_ID_LEN + 1];
  random_sha(rng, sha);
  cu_id_new(upid);
  cu_id_new(tok);
  unsigned d = ar->dev[k];
  int64_t t = ar->t[k];
  snprintf(device, sizeof device, "bwc-%04u", d);
  snprintf(off, sizeof off, "officer-%05u", officer);
  struct tm tm;
  time_t tt = (time_t)t;
  gmtime_r(&tt, &tm);
  snprintf(fname, sizeof fname, "BWC%04u_%04d%02d%02d_%02d%02d%02d.MP4", d, tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  fmt_time(t, rec_at);
  /* Docked at the end of a shift: received hours later. */
  int64_t recv_us = (t + 3600 + (int64_t)rnd_below(rng, 8 * 3600)) * 1000000 +
                    (int64_t)rnd_below(rng, 1000000);
  cu_time_rfc3339(recv_us, recv);
  double dur = 60.0 + (double)rnd_below(rng, 1800) + (double)rnd_below(rng, 1000) / 1000.0;
  int64_t bit_rate = 6000000 + (int64_t)rnd_below(rng, 2000000);
  int64_t size = (int64_t)(dur * (double)bit_rate / 8.0);

  json_t *r = json_object();
  cu_json_set_str(r, "id", ar->id[k]);
  cu_json_set_str(r, "upload_id", upid);
  cu_json_set_str(r, "sha256", sha);
  cu_json_set_int(r, "size", size);
  cu_json_set_str(r, "filename", fname);
  cu_json_set_str(r, "device_id", device);
  cu_json_set_str(r, "officer_id", off);
  if (case_id) cu_json_set_str(r, "case_id", case_id);
  cu_json_set_str(r, "recorded_at", rec_at);
  cu_json_set_str(r, "recorded_at_source", "metadata");
  cu_json_set_str(r, "received_at", recv);
  cu_json_set_str(r, "client_sha256", sha);
  json_object_set_new(r, "client_sha256_verified", json_true());
  json_t *md = json_pack("{s:s, s:s, s:s, s:s, s:s}", "device_id", device, "filename", fname,
                         "officer_id", off, "recorded_at", rec_at, "sha256", sha);
  if (case_id) cu_json_set_str(md, "case_id", case_id);
  json_object_set_new(r, "metadata", md);
  json_object_set_new(r, "uploaded_by",
                      json_pack("{s:s, s:s, s:s}", "role", "recorder", "token_id", tok, "user",
                                device));
  json_object_set_new(r, "media", make_media(rng, dur, bit_rate, recv_us + 200000));
  cu_json_set_str(r, "state", "active");
  return r;
}

static json_t *make_case(const char *id, const char *title, int64_t created_s) {
  json_t *c = json_object();
  cu_json_set_str(c, "id", id);
  json_object_set_new(c, "title", json_string(title));
  cu_json_set_str(c, "status", "open");
  json_object_set_new(c, "tags", json_pack("[s]", "incident"));
  json_object_set_new(c, "reviewers", json_array());
  cu_json_set_time(c, "created_at", created_s * 1000000);
  cu_json_set_time(c, "updated_at", created_s * 1000000);
  json_object_set_new(c, "created_by",
                      json_pack("{s:s, s:s}", "role", "legal", "user", "records-unit"));
  cu_json_set_str(c, "origin", "api");
  return c;
}

/* Arrival order is recorded_at order (within half a minute), so UUIDv7 ids
 * and times rise together, as in an archive filled over a year. */
static void plan_archive(archive *ar, uint64_t seed) {
  uint64_t rng = seed;
  ar->n = opt.records;
  ar->t = xcalloc((size_t)ar->n, sizeof *ar->t);
  ar->dev = xcalloc((size_t)ar->n, sizeof *ar->dev);
  ar->id = xcalloc((size_t)ar->n, sizeof *ar->id);
  for (long k = 0; k < ar->n; k++) {
    ar->t[k] = YEAR_START_S + (int64_t)((double)k * (double)YEAR_S / (double)ar->n) +
               (int64_t)rnd_below(&rng, 30);
    ar->dev[k] = (uint16_t)(1 + rnd_below(&rng, (uint64_t)opt.devices));
  }
}

static int64_t commit_one(idx *ix, idx_batch *b, samples *lat) {
  int64_t t0 = now_ns();
  int rc = idx_batch_commit(ix, b);
  int64_t dt = now_ns() - t0;
  if (rc) die("idx_batch_commit", rc);
  samples_add(lat, dt);
  return dt;
}

typedef struct {
  double secs, build_secs, commit_secs, link_secs, old_link_secs;
  int64_t commit_p50, commit_p99, link_p50, link_p99;
  long commits;
} load_result;

/* case_items distinct random records, in chosen[] (1 = picked). */
static void pick(uint64_t *rng, char *chosen, long n, long count) {
  memset(chosen, 0, (size_t)n);
  for (long i = 0; i < count; i++) {
    long k;
    do k = (long)rnd_below(rng, (uint64_t)n);
    while (chosen[k]);
    chosen[k] = 1;
  }
}

static load_result load(idx *ix, archive *ar, uint64_t seed, bool write) {
  load_result lr = {0};
  uint64_t rng = seed ^ 0x5151;
  samples lat = {0};
  idx_batch *b = write ? idx_batch_new(ix) : NULL;
  long in_batch = 0, last_case = -1;
  int64_t t0 = now_ns(), build_ns = 0;
  for (long k = 0; k < ar->n; k++) {
    cu_id_new(ar->id[k]);
    /* Incidents: 30 % of the recordings, in windows of 20 arrivals, so a
     * small case holds about 6 items from a few hours of one shift. */
    char case_id[32];
    bool in_case = (double)(splitmix(&rng) >> 11) / 9007199254740992.0 < opt.case_share;
    long c = k / 20;
    if (in_case) snprintf(case_id, sizeof case_id, "INC-2026-%06ld", c + 1);
    unsigned officer = (unsigned)(1 + rnd_below(&rng, (uint64_t)opt.officers));
    if (!write) continue;
    int64_t g0 = now_ns();
    json_t *rec = make_record(&rng, ar, k, in_case ? case_id : NULL, officer);
    if (in_case && c != last_case) {
      json_t *cr = make_case(case_id, "Incident", ar->t[k]);
      idx_batch_put_case(b, cr);
      json_decref(cr);
      last_case = c;
      ar->small_cases++;
    }
    if (in_case) ar->in_small_case++;
    size_t len;
    char *s = cu_json_canon(rec, &len);
    ar->rec_bytes += len;
    free(s);
    int rc = idx_batch_add_evidence(b, rec);
    json_decref(rec);
    build_ns += now_ns() - g0;
    if (rc) die("idx_batch_add_evidence", rc);
    if (++in_batch == opt.batch || k == ar->n - 1) {
      commit_one(ix, b, &lat);
      idx_batch_free(b);
      b = idx_batch_new(ix);
      in_batch = 0;
      lr.commits++;
    }
    if (k && k % 100000 == 0)
      fprintf(stderr, "  ... %ld of %ld records, %.0f s\n", k, ar->n, (double)(now_ns() - t0) / 1e9);
  }
  idx_batch_free(b);
  if (!write) return lr;
  lr.secs = (double)(now_ns() - t0) / 1e9;
  lr.build_secs = (double)build_ns / 1e9;
  int64_t csum = 0;
  for (size_t i = 0; i < lat.n; i++)
    csum += lat.v[i];
  lr.commit_secs = (double)csum / 1e9;
  lr.commit_p50 = pct(&lat, 0.5);
  lr.commit_p99 = pct(&lat, 0.99);

  /* The big case: its record, then 1,000 items from across the year, each
   * linked as the server links one (cases_link: idx_evidence_link, the
   * case's entry carrying a copy of the record, one synced commit). */
  char *chosen = xcalloc((size_t)ar->n, 1);
  samples llat = {0};
  int64_t l0 = now_ns();
  b = idx_batch_new(ix);
  json_t *cr = make_case(BIG_CASE, "Investigation 2026-000001", YEAR_START_S);
  idx_batch_put_case(b, cr);
  json_decref(cr);
  commit_one(ix, b, &llat);
  idx_batch_free(b);
  llat.n = 0;
  pick(&rng, chosen, ar->n, opt.case_items);
  for (long k = 0; k < ar->n; k++) {
    if (!chosen[k]) continue;
    b = idx_batch_new(ix);
    int64_t t1 = now_ns();
    int rc = idx_evidence_link(ix, b, BIG_CASE, ar->id[k], true, NULL, NULL);
    samples_add(&llat, now_ns() - t1);
    idx_batch_free(b);
    if (rc) die("idx_evidence_link", rc);
  }
  lr.link_secs = (double)(now_ns() - l0) / 1e9;
  lr.link_p50 = pct(&llat, 0.5);
  lr.link_p99 = pct(&llat, 0.99);
  /* The second: links alone (idx_batch_link, no record copy), 100 a commit. */
  l0 = now_ns();
  b = idx_batch_new(ix);
  cr = make_case(OLD_CASE, "Investigation 2026-000002", YEAR_START_S);
  idx_batch_put_case(b, cr);
  json_decref(cr);
  pick(&rng, chosen, ar->n, opt.case_items);
  long linked = 0;
  for (long k = 0; k < ar->n; k++) {
    if (!chosen[k]) continue;
    idx_batch_link(b, OLD_CASE, ar->id[k], true);
    if (++linked % 100 == 0 || linked == opt.case_items) {
      commit_one(ix, b, &llat);
      idx_batch_free(b);
      b = idx_batch_new(ix);
    }
  }
  idx_batch_free(b);
  lr.old_link_secs = (double)(now_ns() - l0) / 1e9;
  free(chosen);
  free(lat.v);
  free(llat.v);
  return lr;
}

/* ---- the queries ------------------------------------------------------- */

typedef struct {
  char device[32];
  int64_t from_s, to_s; /* [from, to) */
  long holds;           /* items of the device in the window */
} dev_query;

static int cmp_time(const void *a, const void *b) {
  return cmp_i64(a, b);
}

/* Windows over one device's recordings that hold 100-200 of them. */
static dev_query *plan_queries(const archive *ar, long nq, uint64_t seed, double *mean_holds,
                               double *mean_days) {
  long nd = opt.devices + 1;
  long *cnt = xcalloc((size_t)nd, sizeof *cnt), *off = xcalloc((size_t)nd + 1, sizeof *off);
  for (long k = 0; k < ar->n; k++)
    cnt[ar->dev[k]]++;
  for (long d = 0; d < nd; d++)
    off[d + 1] = off[d] + cnt[d];
  int64_t *times = xcalloc((size_t)ar->n, sizeof *times);
  long *fill = xcalloc((size_t)nd, sizeof *fill);
  for (long k = 0; k < ar->n; k++)
    times[off[ar->dev[k]] + fill[ar->dev[k]]++] = ar->t[k];
  for (long d = 0; d < nd; d++)
    qsort(times + off[d], (size_t)cnt[d], sizeof *times, cmp_time);
  dev_query *q = xcalloc((size_t)nq, sizeof *q);
  uint64_t rng = seed ^ 0xdead;
  double holds = 0, days = 0;
  long usable = 0;
  for (long d = 1; d < nd; d++)
    usable += cnt[d] > 200;
  if (!usable) {
    fprintf(stderr, "review_bench: no device has more than 200 recordings: more --records or "
                    "fewer --devices\n");
    exit(2);
  }
  for (long i = 0; i < nq; i++) {
    long d;
    do d = 1 + (long)rnd_below(&rng, (uint64_t)opt.devices);
    while (cnt[d] <= 200);
    long span = 100 + (long)rnd_below(&rng, 101);
    long s = (long)rnd_below(&rng, (uint64_t)(cnt[d] - span));
    const int64_t *t = times + off[d];
    snprintf(q[i].device, sizeof q[i].device, "bwc-%04ld", d);
    q[i].from_s = t[s];
    q[i].to_s = t[s + span - 1] + 1;
    long h = 0;
    for (long j = 0; j < cnt[d]; j++)
      h += t[j] >= q[i].from_s && t[j] < q[i].to_s;
    q[i].holds = h;
    holds += (double)h;
    days += (double)(q[i].to_s - q[i].from_s) / 86400.0;
  }
  *mean_holds = holds / (double)nq;
  *mean_days = days / (double)nq;
  free(cnt);
  free(off);
  free(times);
  free(fill);
  return q;
}

typedef struct {
  int64_t p50, p99, max;
  double mean;
  long wrong; /* answers that were not a full, matching page */
  long n;
  double page_bytes;
} pass_result;

static void finish(pass_result *r, samples *lat) {
  r->n = (long)lat->n;
  r->mean = mean(lat);
  r->p50 = pct(lat, 0.5);
  r->p99 = pct(lat, 0.99);
  r->max = pct(lat, 1.0);
}

/* One listing, timed: raw (idx_evidence_list_raw) or parsed
 * (idx_evidence_list). *items gets the page as parsed records when check
 * is set (a raw page is parsed after the clock stops), else NULL. */
static int64_t list_once(idx *ix, const idx_query *q, bool raw, bool check, json_t **items,
                         size_t *bytes) {
  char *next = NULL;
  int64_t t0, t1;
  *items = NULL;
  *bytes = 0;
  if (raw) {
    cu_buf out = CU_BUF_INIT(SIZE_MAX / 2);
    int count = 0;
    t0 = now_ns();
    int rc = idx_evidence_list_raw(ix, q, &out, &count, &next);
    t1 = now_ns();
    if (rc) die("idx_evidence_list_raw", rc);
    *bytes = out.len;
    if (check) {
      if (cu_json_parse(out.data, out.len, items)) die("parsing a raw page", CU_ECORRUPT);
    } else {
      /* the count alone: an array of that many nulls */
      *items = json_array();
      for (int i = 0; i < count; i++)
        json_array_append_new(*items, json_null());
    }
    cu_buf_release(&out);
  } else {
    t0 = now_ns();
    int rc = idx_evidence_list(ix, q, items, &next);
    t1 = now_ns();
    if (rc) die("idx_evidence_list", rc);
  }
  free(next);
  return t1 - t0;
}

/* Whether a page (parsed records) answers a device query. */
static bool device_page_ok(json_t *items, const dev_query *dq, const idx_query *q) {
  bool ok = json_array_size(items) == 100;
  for (size_t j = 0; ok && j < json_array_size(items); j++) {
    json_t *it = json_array_get(items, j);
    int64_t t;
    const char *dv = cu_json_str(it, "device_id");
    ok = dv && !strcmp(dv, dq->device) && !cu_time_parse_rfc3339(cu_json_str(it, "recorded_at"), &t) &&
         t >= q->from_us && t < q->to_us && json_is_array(json_object_get(it, "cases"));
  }
  return ok;
}

static bool case_page_ok(json_t *items, const char *case_id) {
  bool ok = (long)json_array_size(items) == opt.case_items;
  for (size_t j = 0; ok && j < json_array_size(items); j++) {
    json_t *cs = json_object_get(json_array_get(items, j), "cases");
    bool in = false;
    size_t k;
    json_t *c;
    json_array_foreach(cs, k, c) in = in || !strcmp(json_string_value(c), case_id);
    ok = in;
  }
  return ok;
}

static void device_query(const dev_query *dq, idx_query *q) {
  idx_query_init(q);
  q->device = dq->device;
  q->from_us = dq->from_s * 1000000;
  q->to_us = dq->to_s * 1000000;
  q->limit = 100;
}

/* Timed, each raw page's count checked; then, untimed and apart (parsing
 * a big page between two timed listings would leave the heap in a state
 * that slows the next one), every 10th query's page parsed and each record
 * checked. Parsed pages are checked as they come. */
static pass_result run_device(idx *ix, const dev_query *qs, long nq, bool raw) {
  pass_result r = {0};
  samples lat = {0};
  double bytes = 0;
  for (long i = 0; i < nq; i++) {
    idx_query q;
    device_query(&qs[i], &q);
    json_t *items;
    size_t nb;
    samples_add(&lat, list_once(ix, &q, raw, false, &items, &nb));
    bytes += (double)nb;
    if (raw ? json_array_size(items) != 100 : !device_page_ok(items, &qs[i], &q)) r.wrong++;
    json_decref(items);
  }
  for (long i = 0; raw && i < nq; i += 10) {
    idx_query q;
    device_query(&qs[i], &q);
    json_t *items;
    size_t nb;
    list_once(ix, &q, true, true, &items, &nb);
    if (!device_page_ok(items, &qs[i], &q)) r.wrong++;
    json_decref(items);
  }
  finish(&r, &lat);
  r.page_bytes = bytes / (double)nq;
  free(lat.v);
  return r;
}

static pass_result run_case(idx *ix, const char *case_id, long reps, bool raw) {
  pass_result r = {0};
  samples lat = {0};
  double bytes = 0;
  idx_query q;
  idx_query_init(&q);
  q.case_id = case_id;
  q.limit = 1000;
  for (long i = 0; i < reps; i++) {
    json_t *items;
    size_t nb;
    samples_add(&lat, list_once(ix, &q, raw, false, &items, &nb));
    bytes += (double)nb;
    if (raw ? (long)json_array_size(items) != opt.case_items : !case_page_ok(items, case_id))
      r.wrong++;
    json_decref(items);
  }
  if (raw) {
    json_t *items;
    size_t nb;
    list_once(ix, &q, true, true, &items, &nb);
    if (!case_page_ok(items, case_id)) r.wrong++;
    json_decref(items);
  }
  finish(&r, &lat);
  r.page_bytes = bytes / (double)reps;
  free(lat.v);
  return r;
}

/* ---- compaction (RocksDB directly: the index has no call for it) -------- */

static double compact(const char *dir, long *l0_before) {
  char *err = NULL;
  rocksdb_options_t *o = rocksdb_options_create();
  size_t ncf = 0;
  char **names = rocksdb_list_column_families(o, dir, &ncf, &err);
  if (err) {
    fprintf(stderr, "review_bench: list column families: %s\n", err);
    exit(1);
  }
  const rocksdb_options_t **cfo = xcalloc(ncf, sizeof *cfo);
  rocksdb_column_family_handle_t **h = xcalloc(ncf, sizeof *h);
  for (size_t i = 0; i < ncf; i++)
    cfo[i] = o;
  rocksdb_t *db = rocksdb_open_column_families(o, dir, (int)ncf, (const char *const *)names, cfo,
                                               h, &err);
  if (err) {
    fprintf(stderr, "review_bench: open for compaction: %s\n", err);
    exit(1);
  }
  *l0_before = 0;
  for (size_t i = 0; i < ncf; i++) {
    uint64_t v = 0;
    if (!rocksdb_property_int_cf(db, h[i], "rocksdb.num-files-at-level0", &v)) *l0_before += (long)v;
  }
  int64_t t0 = now_ns();
  for (size_t i = 0; i < ncf; i++)
    rocksdb_compact_range_cf(db, h[i], NULL, 0, NULL, 0);
  double secs = (double)(now_ns() - t0) / 1e9;
  for (size_t i = 0; i < ncf; i++)
    rocksdb_column_family_handle_destroy(h[i]);
  rocksdb_close(db);
  rocksdb_list_column_families_destroy(names, ncf);
  rocksdb_options_destroy(o);
  free(cfo);
  free(h);
  return secs;
}

/* ---- output ------------------------------------------------------------ */

static void print_pass(const char *label, const char *key, const pass_result *r) {
  printf("   %-50s %6ld %9.1f %9.1f %9.1f %9.1f %6ld", label, r->n, r->p50 / 1e3, r->p99 / 1e3,
         r->max / 1e3, r->mean / 1e3, r->wrong);
  if (r->page_bytes > 0) printf(" %8.0f\n", r->page_bytes / 1024);
  else printf(" %8s\n", "-");
  char k[96];
  snprintf(k, sizeof k, "%s.p50_us", key);
  kv(k, (double)r->p50 / 1e3);
  snprintf(k, sizeof k, "%s.p99_us", key);
  kv(k, (double)r->p99 / 1e3);
  snprintf(k, sizeof k, "%s.max_us", key);
  kv(k, (double)r->max / 1e3);
  snprintf(k, sizeof k, "%s.n", key);
  kv(k, (double)r->n);
  snprintf(k, sizeof k, "%s.wrong", key);
  kv(k, (double)r->wrong);
  snprintf(k, sizeof k, "%s.page_kib", key);
  kv(k, r->page_bytes / 1024);
}

static void header(void) {
  printf("   %-50s %6s %9s %9s %9s %9s %6s %8s\n", "", "n", "p50 us", "p99 us", "max us",
         "mean us", "wrong", "page KiB");
}

static idx *open_idx(const char *dir) {
  idx *ix = NULL;
  int rc = idx_open(&ix, dir);
  if (rc) die("idx_open", rc);
  return ix;
}

static void check_case_size(idx *ix, const char *case_id) {
  uint64_t n = 0;
  int rc = idx_case_evidence_count(ix, case_id, &n);
  if (rc) die("idx_case_evidence_count", rc);
  if (n != (uint64_t)opt.case_items) {
    fprintf(stderr, "review_bench: %s holds %llu items, not %ld\n", case_id,
            (unsigned long long)n, opt.case_items);
    exit(1);
  }
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  cu_log_set_level(CU_LOG_WARN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (opt.kv && !(kvf = fopen(opt.kv, "w"))) {
    fprintf(stderr, "review_bench: cannot write %s: %s\n", opt.kv, strerror(errno));
    return 1;
  }
  const uint64_t seed = 20261128;
  archive ar = {0};
  plan_archive(&ar, seed);

  idx *ix = open_idx(opt.dir);
  bool write = !opt.reuse || idx_evidence_count(ix) == 0;
  if (!write && idx_evidence_count(ix) < (uint64_t)opt.records) {
    fprintf(stderr, "review_bench: --reuse: %s holds %llu records, fewer than %ld\n", opt.dir,
            (unsigned long long)idx_evidence_count(ix), opt.records);
    return 1;
  }
  printf("1. Load: %ld records, %ld per synced commit, %ld devices, %ld officers, "
         "recorded_at over 2026\n",
         opt.records, opt.batch, opt.devices, opt.officers);
  load_result lr = load(ix, &ar, seed, write);
  uint64_t bytes_loaded = dir_bytes(opt.dir);
  if (write) {
    printf("   loaded in %.1f s: %.0f records/s (%ld commits; commit p50 %.1f ms, p99 %.1f ms;\n"
           "   building the records' JSON and idx_batch_add_evidence %.1f s, commits %.1f s)\n",
           lr.secs, (double)opt.records / lr.secs, lr.commits, lr.commit_p50 / 1e6,
           lr.commit_p99 / 1e6, lr.build_secs, lr.commit_secs);
    printf("   %s: %ld items linked one by one with idx_evidence_link in %.2f s (p50 %.2f ms,\n"
           "   p99 %.2f ms each); %s: %ld links with idx_batch_link, no record copies, %.2f s\n",
           BIG_CASE, opt.case_items, lr.link_secs, lr.link_p50 / 1e6, lr.link_p99 / 1e6, OLD_CASE,
           opt.case_items, lr.old_link_secs);
    printf("   records: %.0f bytes of canonical JSON on average (%.2f GB in all); %ld in %ld "
           "small cases (%.1f each)\n",
           (double)ar.rec_bytes / (double)ar.n, (double)ar.rec_bytes / 1e9, ar.in_small_case,
           ar.small_cases, ar.small_cases ? (double)ar.in_small_case / (double)ar.small_cases : 0);
    printf("   index directory: %.2f GB right after the load; peak RSS %.1f MiB\n",
           (double)bytes_loaded / 1e9, rss_peak_kib() / 1024.0);
    kv("load.secs", lr.secs);
    kv("load.rate", (double)opt.records / lr.secs);
    kv("load.commit_p50_ms", (double)lr.commit_p50 / 1e6);
    kv("load.commit_p99_ms", (double)lr.commit_p99 / 1e6);
    kv("load.link_p50_ms", (double)lr.link_p50 / 1e6);
    kv("load.record_bytes", (double)ar.rec_bytes / (double)ar.n);
    kv("load.dir_gb", (double)bytes_loaded / 1e9);
    if (idx_evidence_count(ix) != (uint64_t)opt.records) {
      fprintf(stderr, "review_bench: the index counts %llu records, not %ld\n",
              (unsigned long long)idx_evidence_count(ix), opt.records);
      return 1;
    }
  } else {
    printf("   reused the index in %s (%.2f GB): not loaded again\n", opt.dir,
           (double)bytes_loaded / 1e9);
  }
  check_case_size(ix, BIG_CASE);
  check_case_size(ix, OLD_CASE);

  double mean_holds, mean_days;
  dev_query *qs = plan_queries(&ar, opt.queries, seed, &mean_holds, &mean_days);
  printf("\n2. Queries: (a) %ld device time-range queries, limit 100, random devices and windows\n"
         "   holding 100-200 of the device's items (mean %.0f items, %.1f days); every answer\n"
         "   must be 100 records of that device inside the window; (b) %ld listings of %s,\n"
         "   limit 1000, every answer its %ld records. 'raw': idx_evidence_list_raw, the page as\n"
         "   JSON text (what the HTTP listing sends); 'parsed': idx_evidence_list. 'wrong':\n"
         "   answers that failed the check (every raw page's count, every 10th one's records).\n",
         opt.queries, mean_holds, mean_days, opt.case_reps, BIG_CASE, opt.case_items);
  kv("query.mean_holds", mean_holds);
  header();
  pass_result a0 = run_device(ix, qs, opt.queries, true);
  print_pass("(a) device, raw, right after the load", "device.loaded", &a0);
  pass_result b0 = run_case(ix, BIG_CASE, opt.case_reps, true);
  print_pass("(b) case, raw, right after the load", "case.loaded", &b0);
  idx_close(ix);

  pass_result a1 = {0}, b1 = {0};
  if (!opt.no_compact) {
    long l0 = 0;
    double cs = compact(opt.dir, &l0);
    uint64_t after = dir_bytes(opt.dir);
    printf("   full manual compaction: %.1f s (%ld level-0 files before), %.2f GB -> %.2f GB\n", cs,
           l0, (double)bytes_loaded / 1e9, (double)after / 1e9);
    kv("compact.secs", cs);
    kv("compact.dir_gb", (double)after / 1e9);
    evict(opt.dir);
    int64_t t0 = now_ns();
    ix = open_idx(opt.dir);
    printf("   idx_open after dropping the files from the page cache: %.1f ms\n",
           (double)(now_ns() - t0) / 1e6);
    /* The case first: its 1,000 entries are 0.1 % of the archive, so the
     * device queries after it are as cold as they were. */
    b1 = run_case(ix, BIG_CASE, 1, true);
    print_pass("(b) case, raw, compacted, cold (1st listing)", "case.cold", &b1);
    a1 = run_device(ix, qs, opt.queries, true);
    print_pass("(a) device, raw, compacted, cold (1st pass)", "device.cold", &a1);
  } else {
    ix = open_idx(opt.dir);
  }
  pass_result a2 = run_device(ix, qs, opt.queries, true);
  print_pass("(a) device, raw, warm (same queries again)", "device.warm", &a2);
  pass_result b2 = run_case(ix, BIG_CASE, opt.case_reps, true);
  print_pass("(b) case, raw, warm", "case.warm", &b2);
  long pn = opt.queries / 5 > 0 ? opt.queries / 5 : 1, pr = opt.case_reps / 4 > 0 ? opt.case_reps / 4 : 1;
  pass_result a3 = run_device(ix, qs, pn, false);
  print_pass("(a) device, parsed (idx_evidence_list), warm", "device.parsed", &a3);
  pass_result b3 = run_case(ix, BIG_CASE, pr, false);
  print_pass("(b) case, parsed (idx_evidence_list), warm", "case.parsed", &b3);
  {
    json_t *items;
    size_t nb;
    idx_query q;
    idx_query_init(&q);
    q.case_id = OLD_CASE;
    q.limit = 1000;
    list_once(ix, &q, true, false, &items, &nb); /* warm-up: its records are read by id */
    json_decref(items);
  }
  pass_result b4 = run_case(ix, OLD_CASE, pr, true);
  print_pass("(b) " OLD_CASE ", links without copies, raw", "case.old", &b4);
  idx_close(ix);

  if (opt.queries_out) {
    FILE *f = fopen(opt.queries_out, "w");
    if (!f) {
      fprintf(stderr, "review_bench: cannot write %s: %s\n", opt.queries_out, strerror(errno));
      return 1;
    }
    long n = opt.http_queries < opt.queries ? opt.http_queries : opt.queries;
    for (long i = 0; i < n; i++) {
      char from[CU_RFC3339_LEN], to[CU_RFC3339_LEN];
      fmt_time(qs[i].from_s, from);
      fmt_time(qs[i].to_s, to);
      fprintf(f, "device %s %s %s\n", qs[i].device, from, to);
    }
    fprintf(f, "case %s %ld\n", BIG_CASE, opt.case_items);
    if (fclose(f)) {
      fprintf(stderr, "review_bench: cannot write %s\n", opt.queries_out);
      return 1;
    }
  }

  bool ok_a = a2.p99 < opt.target_device_us * 1e3 && !a2.wrong && !a1.wrong && !a0.wrong && !a3.wrong;
  bool ok_b = b2.p99 < opt.target_case_us * 1e3 && !b2.wrong && !b1.wrong && !b0.wrong && !b3.wrong &&
              !b4.wrong;
  printf("\nSummary (idx_evidence_list_raw, warm, compacted)\n");
  printf("   (a) device time-range query, limit 100:  p50 %.0f us, p99 %.0f us  (target p99 < "
         "%.0f us) %s\n",
         a2.p50 / 1e3, a2.p99 / 1e3, opt.target_device_us, ok_a ? "met" : "MISSED");
  printf("   (b) case listing of %ld items:          p50 %.0f us, p99 %.0f us  (target p99 < "
         "%.0f us) %s\n",
         opt.case_items, b2.p50 / 1e3, b2.p99 / 1e3, opt.target_case_us, ok_b ? "met" : "MISSED");
  printf("   peak RSS %.1f MiB\n", rss_peak_kib() / 1024.0);
  kv("rss_mib", rss_peak_kib() / 1024.0);
  if (kvf) fclose(kvf);
  free(qs);
  free(ar.t);
  free(ar.dev);
  free(ar.id);
  return opt.strict && !(ok_a && ok_b) ? 3 : 0;
}
