/* Statistics over the evidence records, and the running totals /metrics
 * shows.
 *
 * DESIGN: a query never holds the records it sums, only one accumulator per
 * group (a few counters and a fixed histogram of ingest lags, ~1.3 KiB), and
 * the number of groups is capped (CU_MAX_STATS_GROUPS), so its memory is
 * bounded whatever the archive holds.
 *
 * Which records are read: with no time range, the evidence column family
 * front to back (one sequential scan; the record is in the value). With a
 * range, by_device_time, which every record is in (device_id is required)
 * and which is ordered by recorded_at within each device: a skip-scan seeks
 * to device\0T(from), reads the ids up to T(to), then seeks to the next
 * device (device\1), so the cost is the matching records plus two seeks a
 * device, never a walk over records outside the range.
 *
 * Percentiles come from a log-linear histogram of lags in milliseconds:
 * exact buckets of 1 ms below 8 ms, then 8 buckets per power of two (bucket
 * [L, L+w) with w = L/8..L/15). A percentile is reported as the middle of
 * its bucket, clamped to the exact minimum and maximum: within 0.5 ms below
 * 8 ms, and within 1/16 (6.25 %) of the true nearest-rank value above. The
 * last bucket collects lags of 2^41 ms (70 years) and more.
 *
 * Running totals (bytes, footage) follow the pattern of evidence_count:
 * every batch carries the changes it makes, and idx_commit_many writes the
 * new totals into meta in the same write (idx.c). An index written before
 * they existed gets them computed once, at open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_limits.h"
#include "err.h"
#include "id.h"
#include "idx_int.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

/* ---- running totals ------------------------------------------------------ */

/* A deleted item (a tombstone) holds no bytes and no footage any more. */
static bool deleted(const json_t *rec) {
  const char *st = cu_json_str(rec, "state");
  return st && !strcmp(st, "deleted");
}

int64_t idx_record_footage_us(const json_t *rec) {
  if (deleted(rec)) return 0;
  json_t *d = json_object_get(json_object_get(rec, "media"), "duration_s");
  if (!json_is_number(d)) return 0;
  double s = json_number_value(d);
  /* NaN, negative and absurd values (past 30 000 years) count as nothing. */
  if (!(s >= 0 && s < 1e12)) return 0;
  return (int64_t)(s * 1e6 + 0.5);
}

static int64_t record_bytes(const json_t *rec) {
  if (deleted(rec)) return 0;
  int64_t n = cu_json_int(rec, "size", 0);
  return n > 0 ? n : 0;
}

void idx_totals_note(idx_batch *b, const json_t *before, const json_t *after) {
  if (before) {
    b->bytes_added -= record_bytes(before);
    b->footage_us_added -= idx_record_footage_us(before);
  }
  if (after) {
    b->bytes_added += record_bytes(after);
    b->footage_us_added += idx_record_footage_us(after);
  }
}

static int meta_u64(idx *ix, const char *key, uint64_t *out) {
  json_t *v = NULL;
  int rc = idx_meta_get(ix, key, &v);
  if (rc) return rc;
  *out = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
  json_decref(v);
  return 0;
}

static int sum_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  uint64_t *t = ud;
  json_t *rec = NULL;
  if (cu_json_parse(val, vlen, &rec))
    return cu_error(CU_ECORRUPT, "the evidence record %.*s is damaged", (int)klen, key);
  t[0] += (uint64_t)record_bytes(rec);
  t[1] += (uint64_t)idx_record_footage_us(rec);
  json_decref(rec);
  return 0;
}

int idx_totals_load(idx *ix) {
  int rc = meta_u64(ix, "evidence_bytes", &ix->evidence_bytes);
  if (!rc) {
    rc = meta_u64(ix, "footage_us", &ix->footage_us);
    return rc == CU_ENOTFOUND ? 0 : rc;
  }
  if (rc != CU_ENOTFOUND) return rc;
  if (!ix->evidence_count) return 0; /* a new index: the first write sets them */
  /* An index from before the totals: one scan, once. */
  cu_info("computing the evidence totals of %llu records (once)",
          (unsigned long long)ix->evidence_count);
  uint64_t t[2] = {0, 0};
  if ((rc = idx_scan_from(ix, CF_EVIDENCE, "", 0, sum_one, t))) return rc;
  idx_batch *b = idx_batch_new(ix);
  char v[24];
  int n = snprintf(v, sizeof v, "%llu", (unsigned long long)t[0]);
  idx_batch_put_cf(b, CF_META, "evidence_bytes", 14, v, (size_t)n);
  n = snprintf(v, sizeof v, "%llu", (unsigned long long)t[1]);
  idx_batch_put_cf(b, CF_META, "footage_us", 10, v, (size_t)n);
  rc = idx_batch_commit(ix, b);
  idx_batch_free(b);
  if (rc) return rc;
  ix->evidence_bytes = t[0];
  ix->footage_us = t[1];
  return 0;
}

void idx_evidence_totals(idx *ix, idx_totals *out) {
  pthread_mutex_lock(&ix->count_lock);
  out->recordings = ix->evidence_count;
  out->bytes = ix->evidence_bytes;
  out->footage_us = ix->footage_us;
  pthread_mutex_unlock(&ix->count_lock);
}

/* ---- the query ----------------------------------------------------------- */

static const char *const by_names[] = {
    [IDX_STATS_NONE] = "none", [IDX_STATS_DEVICE] = "device", [IDX_STATS_OFFICER] = "officer",
    [IDX_STATS_DAY] = "day",   [IDX_STATS_CASE] = "case",
};
#define NBY (sizeof by_names / sizeof *by_names)

void idx_stats_query_init(idx_stats_query *q) {
  q->by = IDX_STATS_NONE;
  q->from_us = INT64_MIN;
  q->to_us = INT64_MAX;
}

int idx_stats_by_parse(const char *name, idx_stats_by *out) {
  for (size_t i = 0; i < NBY; i++)
    if (name && !strcmp(name, by_names[i])) {
      *out = (idx_stats_by)i;
      return 0;
    }
  return cu_error(CU_EINVAL, "by must be none, device, officer, day or case");
}

const char *idx_stats_by_name(idx_stats_by by) {
  return (size_t)by < NBY ? by_names[by] : "none";
}

/* The group of records that have no value for the grouping (no officer, in
 * no case): '(' is not in the id character set, so no real id is "(none)". */
#define NO_GROUP "(none)"

#define LAG_EXACT 8    /* 1 ms buckets below this */
#define LAG_SUB_BITS 3 /* 8 buckets per power of two above it */
#define LAG_MAX_EXP 41 /* 2^41 ms, 70 years: the last bucket */
#define LAG_BUCKETS (LAG_EXACT + (LAG_MAX_EXP - LAG_SUB_BITS + 1) * (1 << LAG_SUB_BITS))

typedef struct {
  uint64_t recordings, bytes, failed_jobs, footage_us;
  uint64_t lag_count;
  double lag_sum_us;
  int64_t lag_min_us, lag_max_us;
  /* 32 bits: a group of more than 4 billion recordings is not a concern. */
  uint32_t lag_hist[LAG_BUCKETS];
  char key[]; /* NUL-terminated */
} group;

static unsigned lag_bucket(uint64_t ms) {
  if (ms < LAG_EXACT) return (unsigned)ms;
  unsigned e = 63u - (unsigned)__builtin_clzll(ms);
  if (e > LAG_MAX_EXP) return LAG_BUCKETS - 1;
  unsigned m = (unsigned)(ms >> (e - LAG_SUB_BITS)) & ((1u << LAG_SUB_BITS) - 1);
  return LAG_EXACT + (e - LAG_SUB_BITS) * (1u << LAG_SUB_BITS) + m;
}

/* The middle of a bucket, in ms. */
static double lag_bucket_mid(unsigned b) {
  if (b < LAG_EXACT) return b + 0.5;
  unsigned e = (b - LAG_EXACT) / (1u << LAG_SUB_BITS) + LAG_SUB_BITS;
  unsigned m = (b - LAG_EXACT) % (1u << LAG_SUB_BITS);
  double w = (double)(1ull << (e - LAG_SUB_BITS));
  return ((1u << LAG_SUB_BITS) + m) * w + w / 2;
}

/* One record's contribution. */
typedef struct {
  uint64_t bytes, footage_us;
  bool has_lag;
  int64_t lag_us;
} sample;

typedef struct {
  idx *ix;
  const idx_stats_query *q;
  group *total;
  group **g; /* sorted by key */
  size_t n, cap;
  cu_buf val; /* a record read by id, reused */
} stats_ctx;

static group *group_new(const char *key) {
  size_t n = strlen(key) + 1;
  group *g = cu_xcalloc(1, sizeof *g + n);
  memcpy(g->key, key, n);
  g->lag_min_us = INT64_MAX;
  return g;
}

static int find_group(stats_ctx *c, const char *key, group **out) {
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int cmp = strcmp(c->g[mid]->key, key);
    if (!cmp) {
      *out = c->g[mid];
      return 0;
    }
    if (cmp < 0) lo = mid + 1;
    else hi = mid;
  }
  if (c->n >= CU_MAX_STATS_GROUPS)
    return cu_error(CU_ETOOBIG, "more than %d groups: narrow the time range (from, to)",
                    CU_MAX_STATS_GROUPS);
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 16;
    c->g = cu_xrealloc(c->g, c->cap * sizeof *c->g);
  }
  memmove(c->g + lo + 1, c->g + lo, (c->n - lo) * sizeof *c->g);
  c->g[lo] = group_new(key);
  c->n++;
  *out = c->g[lo];
  return 0;
}

static void add_sample(group *g, const sample *s) {
  g->recordings++;
  g->bytes += s->bytes;
  g->footage_us += s->footage_us;
  if (!s->has_lag) return;
  g->lag_count++;
  g->lag_sum_us += (double)s->lag_us;
  if (s->lag_us < g->lag_min_us) g->lag_min_us = s->lag_us;
  if (s->lag_us > g->lag_max_us) g->lag_max_us = s->lag_us;
  uint32_t *h = &g->lag_hist[lag_bucket((uint64_t)s->lag_us / 1000)];
  if (*h < UINT32_MAX) (*h)++;
}

/* Calls fn for each group a record belongs to. */
typedef int (*key_fn)(stats_ctx *c, const char *key, void *ud);

typedef struct {
  stats_ctx *c;
  key_fn fn;
  void *ud;
  int found;
} case_ctx;

static int case_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  case_ctx *cc = ud;
  char name[CU_MAX_ID_LEN + 1];
  if (klen <= CU_ID_LEN || klen - CU_ID_LEN > CU_MAX_ID_LEN) return 0;
  size_t n = klen - CU_ID_LEN;
  memcpy(name, key + CU_ID_LEN, n);
  name[n] = '\0';
  cc->found = 1;
  return cc->fn(cc->c, name, cc->ud);
}

static int each_key(stats_ctx *c, const char *id, const json_t *rec, int64_t t, key_fn fn,
                    void *ud) {
  const char *k = NULL;
  char day[CU_RFC3339_LEN];
  switch (c->q->by) {
  case IDX_STATS_NONE: return 0;
  case IDX_STATS_DEVICE: k = cu_json_str(rec, "device_id"); break;
  case IDX_STATS_OFFICER: k = cu_json_str(rec, "officer_id"); break;
  case IDX_STATS_DAY:
    cu_time_rfc3339(t, day); /* UTC: YYYY-MM-DD is its first ten characters */
    day[10] = '\0';
    k = day;
    break;
  case IDX_STATS_CASE: {
    case_ctx cc = {c, fn, ud, 0};
    int rc = idx_scan_prefix(c->ix, CF_EVIDENCE_CASE, id, CU_ID_LEN, case_one, &cc);
    if (rc || cc.found) return rc;
    break;
  }
  }
  return fn(c, k && *k ? k : NO_GROUP, ud);
}

static int add_to_key(stats_ctx *c, const char *key, void *ud) {
  group *g;
  int rc = find_group(c, key, &g);
  if (!rc) add_sample(g, ud);
  return rc;
}

static int fail_to_key(stats_ctx *c, const char *key, void *ud) {
  group *g;
  int rc = find_group(c, key, &g);
  if (!rc) g->failed_jobs++;
  return rc;
}

static int in_range(const stats_ctx *c, const json_t *rec, int64_t *t) {
  const char *s = cu_json_str(rec, "recorded_at");
  if (!s || cu_time_parse_rfc3339(s, t)) return 0;
  return *t >= c->q->from_us && *t < c->q->to_us;
}

static int add_record(stats_ctx *c, const char *id, const json_t *rec) {
  int64_t t;
  if (deleted(rec) || !in_range(c, rec, &t)) return 0;
  sample s = {(uint64_t)record_bytes(rec), (uint64_t)idx_record_footage_us(rec), false, 0};
  /* The lag means something only when the recorder said when it recorded;
   * otherwise recorded_at is the arrival time. A recorder whose clock runs
   * ahead gives a negative lag, counted as 0. */
  const char *src = cu_json_str(rec, "recorded_at_source"), *recv = cu_json_str(rec, "received_at");
  int64_t r;
  if ((!src || !strcmp(src, "metadata")) && recv && !cu_time_parse_rfc3339(recv, &r)) {
    s.has_lag = true;
    s.lag_us = r > t ? r - t : 0;
  }
  add_sample(c->total, &s);
  return each_key(c, id, rec, t, add_to_key, &s);
}

static int scan_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  if (klen != CU_ID_LEN) return 0;
  char id[CU_ID_LEN + 1];
  memcpy(id, key, CU_ID_LEN);
  id[CU_ID_LEN] = '\0';
  json_t *rec = NULL;
  if (cu_json_parse(val, vlen, &rec))
    return cu_error(CU_ECORRUPT, "the evidence record %s is damaged", id);
  int rc = add_record(ud, id, rec);
  json_decref(rec);
  return rc;
}

static int load(stats_ctx *c, const char *id, json_t **rec) {
  cu_buf_reset(&c->val);
  int rc = idx_get_raw(c->ix, CF_EVIDENCE, id, CU_ID_LEN, &c->val);
  if (rc) return rc;
  if (cu_json_parse(c->val.data, c->val.len, rec))
    return cu_error(CU_ECORRUPT, "the evidence record %s is damaged", id);
  return 0;
}

/* The skip-scan of by_device_time described at the top. */
static int scan_range(stats_ctx *c) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(c->ix->db, c->ix->ropts,
                                                      c->ix->cf[CF_BY_DEVICE_TIME]);
  unsigned char seek[CU_MAX_ID_LEN + 1 + 8];
  int rc = 0;
  rocksdb_iter_seek_to_first(it);
  while (!rc && rocksdb_iter_valid(it)) {
    size_t klen;
    const char *k = rocksdb_iter_key(it, &klen);
    const char *nul = memchr(k, '\0', klen);
    size_t dn = nul ? (size_t)(nul - k) : klen;
    if (!nul || dn > CU_MAX_ID_LEN || klen != dn + 1 + 8 + CU_ID_LEN) {
      rocksdb_iter_next(it); /* not a key of ours: skip it */
      continue;
    }
    int64_t t = idx_time_from_key(idx_get_be64((const unsigned char *)k + dn + 1));
    if (t < c->q->from_us) {
      memcpy(seek, k, dn + 1);
      idx_be64(idx_time_key(c->q->from_us), seek + dn + 1);
      rocksdb_iter_seek(it, (const char *)seek, dn + 1 + 8);
      continue;
    }
    if (t >= c->q->to_us) {
      memcpy(seek, k, dn);
      seek[dn] = 1; /* device\1 sorts after every device\0... key */
      rocksdb_iter_seek(it, (const char *)seek, dn + 1);
      continue;
    }
    char id[CU_ID_LEN + 1];
    memcpy(id, k + klen - CU_ID_LEN, CU_ID_LEN);
    id[CU_ID_LEN] = '\0';
    json_t *rec = NULL;
    rc = load(c, id, &rec);
    if (rc == CU_ENOTFOUND) rc = 0; /* an entry whose record is gone */
    else if (!rc) rc = add_record(c, id, rec);
    json_decref(rec);
    rocksdb_iter_next(it);
  }
  char *err = NULL;
  rocksdb_iter_get_error(it, &err);
  rocksdb_iter_destroy(it);
  if (err && !rc) rc = cu_error(CU_EIO, "index scan failed: %s", err);
  free(err);
  return rc;
}

/* A failed job counts where its evidence counts; one about no evidence (a
 * signed head's stamp) only in the totals, and only when no time range is
 * asked (it has no recorded_at). */
static int add_failed(const char *job_id, json_t *job, void *ud) {
  stats_ctx *c = ud;
  bool open = c->q->from_us == INT64_MIN && c->q->to_us == INT64_MAX;
  const char *evid = cu_json_str(job, "evidence");
  json_t *rec = NULL;
  int rc = evid && cu_id_valid(evid) ? load(c, evid, &rec) : CU_ENOTFOUND;
  if (rc == CU_ENOTFOUND) {
    if (open) c->total->failed_jobs++;
    return 0;
  }
  int64_t t;
  if (!rc && in_range(c, rec, &t)) {
    c->total->failed_jobs++;
    rc = each_key(c, evid, rec, t, fail_to_key, NULL);
  }
  json_decref(rec);
  return rc;
}

static json_t *time_or_null(int64_t us, int64_t open) {
  if (us == open) return json_null();
  char s[CU_RFC3339_LEN];
  cu_time_rfc3339(us, s);
  return json_string(s);
}

/* The nearest-rank percentile pct (0..100], in seconds. */
static double percentile(const group *g, unsigned pct) {
  uint64_t rank = (g->lag_count * pct + 99) / 100, seen = 0;
  unsigned b = 0;
  for (; b < LAG_BUCKETS - 1; b++) {
    seen += g->lag_hist[b];
    if (seen >= rank) break;
  }
  double ms = lag_bucket_mid(b);
  if (ms * 1000 < (double)g->lag_min_us) ms = (double)g->lag_min_us / 1000;
  if (ms * 1000 > (double)g->lag_max_us) ms = (double)g->lag_max_us / 1000;
  return ms / 1000;
}

static json_t *group_json(const group *g) {
  json_t *o = json_object(), *lag = json_object();
  if (g->key[0]) cu_json_set_str(o, "key", g->key);
  cu_json_set_int(o, "recordings", (int64_t)g->recordings);
  json_object_set_new(o, "footage_hours", json_real((double)g->footage_us / 3.6e9));
  cu_json_set_int(o, "bytes", (int64_t)g->bytes);
  cu_json_set_int(o, "failed_jobs", (int64_t)g->failed_jobs);
  cu_json_set_int(lag, "count", (int64_t)g->lag_count);
  bool any = g->lag_count > 0;
  json_object_set_new(lag, "mean",
                      any ? json_real(g->lag_sum_us / (double)g->lag_count / 1e6) : json_null());
  json_object_set_new(lag, "p50", any ? json_real(percentile(g, 50)) : json_null());
  json_object_set_new(lag, "p95", any ? json_real(percentile(g, 95)) : json_null());
  json_object_set_new(lag, "max", any ? json_real((double)g->lag_max_us / 1e6) : json_null());
  json_object_set_new(o, "ingest_lag_seconds", lag);
  return o;
}

int idx_stats(idx *ix, const idx_stats_query *q, json_t **out) {
  if ((size_t)q->by >= NBY) return cu_error(CU_EINVAL, "unknown grouping");
  if (q->from_us >= q->to_us) return cu_error(CU_EINVAL, "from must be before to");
  stats_ctx c = {.ix = ix, .q = q, .total = group_new(""), .val = CU_BUF_INIT(CU_MAX_RECORD_BYTES)};
  int rc;
  if (q->from_us == INT64_MIN && q->to_us == INT64_MAX)
    rc = idx_scan_from(ix, CF_EVIDENCE, "", 0, scan_one, &c);
  else
    rc = scan_range(&c);
  if (!rc) rc = idx_job_each_failed(ix, add_failed, &c);
  if (!rc) {
    json_t *o = json_object(), *groups = json_array();
    json_object_set_new(o, "from", time_or_null(q->from_us, INT64_MIN));
    json_object_set_new(o, "to", time_or_null(q->to_us, INT64_MAX));
    cu_json_set_str(o, "by", idx_stats_by_name(q->by));
    json_object_set_new(o, "totals", group_json(c.total));
    for (size_t i = 0; i < c.n; i++) json_array_append_new(groups, group_json(c.g[i]));
    json_object_set_new(o, "groups", groups);
    *out = o;
  }
  for (size_t i = 0; i < c.n; i++) free(c.g[i]);
  free(c.g);
  free(c.total);
  cu_buf_release(&c.val);
  return rc;
}
