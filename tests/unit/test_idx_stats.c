/* Unit tests for indexer/idx_stats.c: statistics over evidence records in
 * a real RocksDB in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cu_limits.h"
#include "err.h"
#include "id.h"
#include "idx.h"
#include "idx_int.h" /* to make an index from before the running totals */
#include "test_util.h"
#include "timeu.h"

typedef struct {
  char *dir;
  idx *ix;
  char ids[8][CU_ID_LEN + 1];
} fixture;

static int64_t at(const char *rfc3339) {
  int64_t us = 0;
  assert_int_equal(cu_time_parse_rfc3339(rfc3339, &us), 0);
  return us;
}

/* One record: received lag_s seconds after recorded_at (NO_TIME: the
 * recorder sent no time, so recorded_at is the arrival); duration_s < 0:
 * not probed. */
#define NO_TIME NAN
typedef struct {
  const char *device, *officer, *case_id, *recorded_at;
  double lag_s;
  int64_t size;
  double duration_s;
} spec;

static json_t *record(const spec *s, char *id) {
  cu_id_new(id);
  json_t *r = json_object();
  char sha[65];
  memset(sha, 'a', 64);
  sha[64] = '\0';
  cu_json_set_str(r, "id", id);
  cu_json_set_str(r, "sha256", sha);
  cu_json_set_str(r, "device_id", s->device);
  cu_json_set_str(r, "officer_id", s->officer);
  cu_json_set_str(r, "case_id", s->case_id);
  cu_json_set_str(r, "recorded_at", s->recorded_at);
  int64_t t = at(s->recorded_at);
  if (!isnan(s->lag_s)) {
    cu_json_set_time(r, "received_at", t + (int64_t)(s->lag_s * 1e6));
    cu_json_set_str(r, "recorded_at_source", "metadata");
  } else {
    cu_json_set_time(r, "received_at", t);
    cu_json_set_str(r, "recorded_at_source", "received");
  }
  cu_json_set_int(r, "size", s->size);
  json_t *media = json_object();
  cu_json_set_str(media, "status", s->duration_s >= 0 ? "ok" : "pending");
  if (s->duration_s >= 0) json_object_set_new(media, "duration_s", json_real(s->duration_s));
  json_object_set_new(r, "media", media);
  return r;
}

static void add(idx *ix, const spec *specs, int n, char (*ids)[CU_ID_LEN + 1]) {
  idx_batch *b = idx_batch_new(ix);
  for (int i = 0; i < n; i++) {
    char id[CU_ID_LEN + 1];
    json_t *r = record(&specs[i], id);
    assert_int_equal(idx_batch_add_evidence(b, r), 0);
    json_decref(r);
    if (ids) memcpy(ids[i], id, sizeof id);
  }
  assert_int_equal(idx_batch_commit(ix, b), 0);
  idx_batch_free(b);
}

/* e0..e4 (see each line); e2 is in case-x and case-y. */
static const spec base[] = {
    {"dev-a", "off-1", "case-x", "2026-01-01T23:30:00Z", 60, 1000, 10.0},
    {"dev-a", "off-2", NULL, "2026-01-02T00:00:00Z", 3600, 2000, 20.0},
    {"dev-b", NULL, "case-x", "2026-01-02T23:59:59.999999Z", 120, 3000, -1},
    {"dev-b", "off-1", NULL, "2026-01-03T00:00:00Z", NO_TIME, 500, 5.5},
    {"dev-c", NULL, NULL, "2026-01-03T01:00:00+02:00", 30, 250, 1.0}, /* 2026-01-02T23:00Z */
};
#define NBASE 5

static int setup(void **state) {
  fixture *f = cu_xcalloc(1, sizeof *f);
  f->dir = test_tmpdir("idxstats");
  assert_non_null(f->dir);
  assert_int_equal(idx_open(&f->ix, f->dir), 0);
  add(f->ix, base, NBASE, f->ids);
  idx_batch *b = idx_batch_new(f->ix);
  idx_batch_link(b, "case-y", f->ids[2], true);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  idx_close(f->ix);
  int rc = test_rmtree(f->dir);
  free(f->dir);
  free(f);
  return rc;
}

static json_t *stats(idx *ix, idx_stats_by by, const char *from, const char *to) {
  idx_stats_query q;
  idx_stats_query_init(&q);
  q.by = by;
  if (from) q.from_us = at(from);
  if (to) q.to_us = at(to);
  json_t *out = NULL;
  assert_int_equal(idx_stats(ix, &q, &out), 0);
  assert_non_null(out);
  return out;
}

/* The group with this key (fails if absent). */
static json_t *group(const json_t *s, const char *key) {
  size_t i;
  json_t *g;
  json_array_foreach(json_object_get(s, "groups"), i, g) {
    if (!strcmp(cu_json_str(g, "key"), key)) return g;
  }
  fail_msg("no group '%s'", key);
  return NULL;
}

/* "k1 k2 ..." : the group keys in order. */
static void expect_keys(const json_t *s, const char *want) {
  char got[512] = "";
  size_t i, n = 0;
  json_t *g;
  json_array_foreach(json_object_get(s, "groups"), i, g) {
    n += (size_t)snprintf(got + n, sizeof got - n, "%s%s", i ? " " : "", cu_json_str(g, "key"));
  }
  assert_string_equal(got, want);
}

static void expect_group(const json_t *g, int64_t recordings, int64_t bytes, double footage_s,
                         int64_t failed) {
  assert_int_equal(cu_json_int(g, "recordings", -1), recordings);
  assert_int_equal(cu_json_int(g, "bytes", -1), bytes);
  assert_int_equal(cu_json_int(g, "failed_jobs", -1), failed);
  double h = json_real_value(json_object_get(g, "footage_hours"));
  assert_true(h * 3600 > footage_s - 1e-6 && h * 3600 < footage_s + 1e-6);
}

static double lag(const json_t *g, const char *which) {
  json_t *v = json_object_get(json_object_get(g, "ingest_lag_seconds"), which);
  assert_true(json_is_number(v));
  return json_number_value(v);
}

static void test_idx_stats__totals_and_device_groups(void **state) {
  fixture *f = *state;
  json_t *s = stats(f->ix, IDX_STATS_DEVICE, NULL, NULL);
  assert_string_equal(cu_json_str(s, "by"), "device");
  assert_true(json_is_null(json_object_get(s, "from")));
  assert_true(json_is_null(json_object_get(s, "to")));
  json_t *t = json_object_get(s, "totals");
  assert_null(json_object_get(t, "key"));
  expect_group(t, 5, 6750, 36.5, 0);
  /* e3 sent no recorded_at: its lag is unknown, not 0. */
  assert_int_equal(cu_json_int(json_object_get(t, "ingest_lag_seconds"), "count", -1), 4);
  assert_true(lag(t, "max") == 3600);
  double mean = lag(t, "mean");
  assert_true(mean > (60 + 3600 + 120 + 30) / 4.0 - 1e-6 &&
              mean < (60 + 3600 + 120 + 30) / 4.0 + 1e-6);
  expect_keys(s, "dev-a dev-b dev-c");
  expect_group(group(s, "dev-a"), 2, 3000, 30, 0);
  expect_group(group(s, "dev-b"), 2, 3500, 5.5, 0); /* e2 not probed */
  expect_group(group(s, "dev-c"), 1, 250, 1, 0);
  assert_int_equal(
      cu_json_int(json_object_get(group(s, "dev-b"), "ingest_lag_seconds"), "count", -1), 1);
  json_decref(s);

  /* No grouping: totals alone. */
  s = stats(f->ix, IDX_STATS_NONE, NULL, NULL);
  assert_string_equal(cu_json_str(s, "by"), "none");
  assert_int_equal(json_array_size(json_object_get(s, "groups")), 0);
  expect_group(json_object_get(s, "totals"), 5, 6750, 36.5, 0);
  json_decref(s);
}

static void test_idx_stats__days_are_utc_dates(void **state) {
  fixture *f = *state;
  json_t *s = stats(f->ix, IDX_STATS_DAY, NULL, NULL);
  expect_keys(s, "2026-01-01 2026-01-02 2026-01-03");
  expect_group(group(s, "2026-01-01"), 1, 1000, 10, 0);
  /* 00:00:00 belongs to its day, 23:59:59.999999 too, and +02:00 is
   * converted before taking the date. */
  expect_group(group(s, "2026-01-02"), 3, 5250, 21, 0);
  expect_group(group(s, "2026-01-03"), 1, 500, 5.5, 0);
  json_decref(s);
}

static void test_idx_stats__from_to_is_half_open_on_recorded_at(void **state) {
  fixture *f = *state;
  json_t *s = stats(f->ix, IDX_STATS_DEVICE, "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z");
  assert_string_equal(cu_json_str(s, "from"), "2026-01-02T00:00:00Z");
  assert_string_equal(cu_json_str(s, "to"), "2026-01-03T00:00:00Z");
  expect_group(json_object_get(s, "totals"), 3, 5250, 21, 0);
  expect_keys(s, "dev-a dev-b dev-c");
  expect_group(group(s, "dev-a"), 1, 2000, 20, 0);
  expect_group(group(s, "dev-b"), 1, 3000, 0, 0);
  json_decref(s);
  /* Open on one side. */
  s = stats(f->ix, IDX_STATS_NONE, "2026-01-02T23:00:00Z", NULL);
  expect_group(json_object_get(s, "totals"), 3, 3750, 6.5, 0);
  assert_true(json_is_null(json_object_get(s, "to")));
  json_decref(s);
  s = stats(f->ix, IDX_STATS_NONE, NULL, "2026-01-02T00:00:00Z");
  expect_group(json_object_get(s, "totals"), 1, 1000, 10, 0);
  json_decref(s);
  /* Nothing in range: zeros, and no lag to speak of. */
  s = stats(f->ix, IDX_STATS_DAY, "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z");
  json_t *t = json_object_get(s, "totals");
  expect_group(t, 0, 0, 0, 0);
  assert_true(json_is_null(json_object_get(json_object_get(t, "ingest_lag_seconds"), "p50")));
  assert_int_equal(json_array_size(json_object_get(s, "groups")), 0);
  json_decref(s);
  /* An empty or reversed range is refused. */
  idx_stats_query q;
  idx_stats_query_init(&q);
  q.from_us = q.to_us = at("2026-01-02T00:00:00Z");
  json_t *out = NULL;
  assert_int_equal(idx_stats(f->ix, &q, &out), CU_EINVAL);
  assert_null(out);
}

static void test_idx_stats__range_skips_devices_that_prefix_others(void **state) {
  fixture *f = *state;
  /* "cam" is a prefix of "cam1": the skip from cam's last key must land on
   * cam1's first, not past it. */
  static const spec more[] = {
      {"cam", NULL, NULL, "2026-03-01T00:00:00Z", 1, 10, -1},
      {"cam", NULL, NULL, "2026-03-05T00:00:00Z", 1, 20, -1},
      {"cam1", NULL, NULL, "2026-02-01T00:00:00Z", 1, 40, -1},
      {"cam1", NULL, NULL, "2026-03-02T00:00:00Z", 1, 80, -1},
      {"cam10", NULL, NULL, "2026-03-03T00:00:00Z", 1, 160, -1},
      {"cam2", NULL, NULL, "2026-04-01T00:00:00Z", 1, 320, -1},
  };
  add(f->ix, more, 6, NULL);
  json_t *s = stats(f->ix, IDX_STATS_DEVICE, "2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z");
  expect_keys(s, "cam cam1 cam10");
  expect_group(json_object_get(s, "totals"), 3, 10 + 80 + 160, 0, 0);
  json_decref(s);
}

static void test_idx_stats__officers_and_cases_with_none(void **state) {
  fixture *f = *state;
  json_t *s = stats(f->ix, IDX_STATS_OFFICER, NULL, NULL);
  expect_keys(s, "(none) off-1 off-2");
  expect_group(group(s, "(none)"), 2, 3250, 1, 0);
  expect_group(group(s, "off-1"), 2, 1500, 15.5, 0);
  json_decref(s);
  /* e2 is in two cases and counts in each; the totals count it once. */
  s = stats(f->ix, IDX_STATS_CASE, NULL, NULL);
  expect_keys(s, "(none) case-x case-y");
  expect_group(json_object_get(s, "totals"), 5, 6750, 36.5, 0);
  expect_group(group(s, "case-x"), 2, 4000, 10, 0);
  expect_group(group(s, "case-y"), 1, 3000, 0, 0);
  expect_group(group(s, "(none)"), 3, 2750, 26.5, 0);
  json_decref(s);
  /* Unlinked from case-x: counted under case-y only. */
  idx_batch *b = idx_batch_new(f->ix);
  idx_batch_link(b, "case-x", f->ids[2], false);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);
  s = stats(f->ix, IDX_STATS_CASE, NULL, NULL);
  expect_group(group(s, "case-x"), 1, 1000, 10, 0);
  expect_group(group(s, "case-y"), 1, 3000, 0, 0);
  json_decref(s);
}

static void put_job(idx *ix, const char *evidence, const char *state) {
  char id[CU_ID_LEN + 1];
  cu_id_new(id);
  json_t *j = json_object();
  cu_json_set_str(j, "id", id);
  cu_json_set_str(j, "kind", evidence ? "probe" : "stamp_sth");
  cu_json_set_str(j, "evidence", evidence);
  cu_json_set_str(j, "state", state);
  idx_batch *b = idx_batch_new(ix);
  idx_batch_put_job(b, id, j, false);
  assert_int_equal(idx_batch_commit(ix, b), 0);
  idx_batch_free(b);
  json_decref(j);
}

static void test_idx_stats__failed_jobs_count_where_their_evidence_counts(void **state) {
  fixture *f = *state;
  put_job(f->ix, f->ids[0], "failed");
  put_job(f->ix, f->ids[2], "failed");
  put_job(f->ix, f->ids[2], "failed");
  put_job(f->ix, f->ids[1], "done"); /* not failed: not counted */
  put_job(f->ix, NULL, "failed");    /* about no evidence: totals only */
  char gone[CU_ID_LEN + 1];
  cu_id_new(gone);
  put_job(f->ix, gone, "failed"); /* its evidence is not there: totals only */

  json_t *s = stats(f->ix, IDX_STATS_DEVICE, NULL, NULL);
  assert_int_equal(cu_json_int(json_object_get(s, "totals"), "failed_jobs", -1), 5);
  assert_int_equal(cu_json_int(group(s, "dev-a"), "failed_jobs", -1), 1);
  assert_int_equal(cu_json_int(group(s, "dev-b"), "failed_jobs", -1), 2);
  assert_int_equal(cu_json_int(group(s, "dev-c"), "failed_jobs", -1), 0);
  json_decref(s);
  s = stats(f->ix, IDX_STATS_CASE, NULL, NULL);
  assert_int_equal(cu_json_int(group(s, "case-x"), "failed_jobs", -1), 3);
  assert_int_equal(cu_json_int(group(s, "case-y"), "failed_jobs", -1), 2);
  assert_int_equal(cu_json_int(group(s, "(none)"), "failed_jobs", -1), 0);
  json_decref(s);
  /* With a range: only the jobs of recordings in it. */
  s = stats(f->ix, IDX_STATS_DEVICE, "2026-01-02T00:00:00Z", NULL);
  assert_int_equal(cu_json_int(json_object_get(s, "totals"), "failed_jobs", -1), 2);
  assert_int_equal(cu_json_int(group(s, "dev-a"), "failed_jobs", -1), 0);
  assert_int_equal(cu_json_int(group(s, "dev-b"), "failed_jobs", -1), 2);
  json_decref(s);
}

/* Within the histogram's precision: 1/16 of the true value above 8 ms. */
static void near(double got, double want) {
  if (!(got >= want * (1 - 1.0 / 16) && got <= want * (1 + 1.0 / 16)))
    fail_msg("%.6f is not within 6.25%% of %.6f", got, want);
}

static void test_idx_stats__lag_percentiles_within_the_histograms_precision(void **state) {
  fixture *f = *state;
  /* Device "lags": lags of 1..1000 s, added in a scrambled order. */
  spec many[1000];
  char when[1000][32];
  for (int i = 0; i < 1000; i++) {
    int k = (i * 389) % 1000 + 1; /* 389 is prime to 1000: a permutation of 1..1000 */
    snprintf(when[i], sizeof when[i], "2025-06-%02d%s", 1 + i % 28, "T12:00:00Z");
    many[i] = (spec){"lags", NULL, NULL, when[i], (double)k, 1, -1};
  }
  add(f->ix, many, 1000, NULL);
  json_t *s = stats(f->ix, IDX_STATS_DEVICE, NULL, NULL);
  json_t *g = group(s, "lags");
  assert_int_equal(cu_json_int(json_object_get(g, "ingest_lag_seconds"), "count", -1), 1000);
  near(lag(g, "p50"), 500);
  near(lag(g, "p95"), 950);
  assert_true(lag(g, "max") == 1000);
  double mean = lag(g, "mean");
  assert_true(mean > 500.5 - 1e-6 && mean < 500.5 + 1e-6);
  json_decref(s);

  /* Small and odd lags: sub-second (exact to the millisecond), one huge,
   * and a recorder clock ahead of ours (a negative lag counts as 0). */
  static const spec odd[] = {
      {"odd", NULL, NULL, "2025-01-01T00:00:00Z", 0.003, 1, -1},
      {"odd", NULL, NULL, "2025-01-01T00:00:01Z", 0.250, 1, -1},
      {"odd", NULL, NULL, "2025-01-01T00:00:02Z", -5, 1, -1},
      {"odd", NULL, NULL, "1990-01-01T00:00:00Z", 1e9, 1, -1},
  };
  add(f->ix, odd, 4, NULL);
  s = stats(f->ix, IDX_STATS_DEVICE, NULL, NULL);
  g = group(s, "odd");
  assert_int_equal(cu_json_int(json_object_get(g, "ingest_lag_seconds"), "count", -1), 4);
  double p50 = lag(g, "p50"); /* the 2nd of 0, 0.003, 0.25, 1e9 */
  assert_true(p50 >= 0.003 && p50 <= 0.0035);
  near(lag(g, "p95"), 1e9);
  assert_true(lag(g, "max") == 1e9);
  json_decref(s);
}

static int set_media(json_t *rec, void *ud) {
  json_object_set(rec, "media", ud);
  return 0;
}

static void test_idx_stats__running_totals_follow_writes_and_restarts(void **state) {
  fixture *f = *state;
  idx_totals t;
  idx_evidence_totals(f->ix, &t);
  assert_int_equal(t.recordings, 5);
  assert_int_equal(t.bytes, 6750);
  assert_int_equal(t.footage_us, 36500000);
  /* The probe sets a duration through an update: footage follows. */
  json_t *media = json_object();
  cu_json_set_str(media, "status", "ok");
  json_object_set_new(media, "duration_s", json_real(2.25));
  assert_int_equal(idx_evidence_update(f->ix, f->ids[2], set_media, media), 0);
  json_decref(media);
  idx_evidence_totals(f->ix, &t);
  assert_int_equal(t.footage_us, 38750000);
  /* Durable. */
  idx_close(f->ix);
  assert_int_equal(idx_open(&f->ix, f->dir), 0);
  idx_evidence_totals(f->ix, &t);
  assert_int_equal(t.recordings, 5);
  assert_int_equal(t.bytes, 6750);
  assert_int_equal(t.footage_us, 38750000);
  /* An index from before the totals gets them computed at open. */
  idx_batch *b = idx_batch_new(f->ix);
  idx_batch_del_cf(b, CF_META, "evidence_bytes", 14);
  idx_batch_del_cf(b, CF_META, "footage_us", 10);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);
  idx_close(f->ix);
  assert_int_equal(idx_open(&f->ix, f->dir), 0);
  idx_evidence_totals(f->ix, &t);
  assert_int_equal(t.bytes, 6750);
  assert_int_equal(t.footage_us, 38750000);
  json_t *v = NULL;
  assert_int_equal(idx_meta_get(f->ix, "evidence_bytes", &v), 0); /* written back */
  assert_int_equal(json_integer_value(v), 6750);
  json_decref(v);
}

static void test_idx_stats__too_many_groups_is_refused(void **state) {
  fixture *f = *state;
  enum { N = CU_MAX_STATS_GROUPS + 1 };
  static spec many[N];
  static char dev[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(dev[i], sizeof dev[i], "d%05d", i);
    many[i] = (spec){dev[i], NULL, NULL, "2027-01-01T00:00:00Z", 1, 1, -1};
  }
  add(f->ix, many, N, NULL);
  idx_stats_query q;
  idx_stats_query_init(&q);
  q.by = IDX_STATS_DEVICE;
  json_t *out = NULL;
  assert_int_equal(idx_stats(f->ix, &q, &out), CU_ETOOBIG);
  assert_null(out);
  q.by = IDX_STATS_DAY; /* few days: fine */
  assert_int_equal(idx_stats(f->ix, &q, &out), 0);
  assert_int_equal(cu_json_int(json_object_get(out, "totals"), "recordings", -1), N + NBASE);
  json_decref(out);
}

static void test_idx_stats__by_names(void **state) {
  idx_stats_by by;
  static const char *const names[] = {"none", "device", "officer", "day", "case"};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(idx_stats_by_parse(names[i], &by), 0);
    assert_string_equal(idx_stats_by_name(by), names[i]);
  }
  assert_int_equal(idx_stats_by_parse("week", &by), CU_EINVAL);
  assert_int_equal(idx_stats_by_parse("", &by), CU_EINVAL);
  assert_int_equal(idx_stats_by_parse(NULL, &by), CU_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_idx_stats__totals_and_device_groups, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idx_stats__days_are_utc_dates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idx_stats__from_to_is_half_open_on_recorded_at, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_idx_stats__range_skips_devices_that_prefix_others,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_idx_stats__officers_and_cases_with_none, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_idx_stats__failed_jobs_count_where_their_evidence_counts, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_idx_stats__lag_percentiles_within_the_histograms_precision, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_idx_stats__running_totals_follow_writes_and_restarts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idx_stats__too_many_groups_is_refused, setup,
                                      teardown),
      cmocka_unit_test(test_idx_stats__by_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
