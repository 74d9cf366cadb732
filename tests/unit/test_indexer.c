/* Unit tests for indexer/: a real RocksDB in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "id.h"
#include "idx.h"
#include "test_util.h"
#include "timeu.h"

typedef struct {
  char *dir;
  idx *ix;
  char ids[40][CU_ID_LEN + 1];
} fixture;

/* 40 records: devices cam0..cam3 (i % 4), officers o0/o1 (i % 2), one an
 * hour apart from 2026-01-01, every 5th in case "c-5", sha "aa..." for i<3. */
static json_t *record(int i, char *id) {
  cu_id_new(id);
  json_t *r = json_object();
  char dev[16], off[16], sha[65];
  snprintf(dev, sizeof dev, "cam%d", i % 4);
  snprintf(off, sizeof off, "o%d", i % 2);
  memset(sha, i < 3 ? 'a' : "0123456789abcdef"[i % 16], 64);
  sha[63] = "0123456789abcdef"[i % 16];
  sha[64] = '\0';
  cu_json_set_str(r, "id", id);
  cu_json_set_str(r, "sha256", sha);
  cu_json_set_str(r, "device_id", dev);
  cu_json_set_str(r, "officer_id", off);
  cu_json_set_time(r, "recorded_at", (1767225600LL + i * 3600LL) * 1000000);
  if (i % 5 == 0) cu_json_set_str(r, "case_id", "c-5");
  cu_json_set_int(r, "n", i);
  return r;
}

static int setup(void **state) {
  fixture *f = cu_xcalloc(1, sizeof *f);
  f->dir = test_tmpdir("idx");
  assert_non_null(f->dir);
  assert_int_equal(idx_open(&f->ix, f->dir), 0);
  idx_batch *b = idx_batch_new(f->ix);
  for (int i = 0; i < 40; i++) {
    json_t *r = record(i, f->ids[i]);
    assert_int_equal(idx_batch_add_evidence(b, r), 0);
    json_decref(r);
  }
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

/* Lists everything the query yields, following cursors; returns the
 * record numbers ("n") in order. */
static int walk(idx *ix, idx_query *q, int *out, int max) {
  int n = 0;
  char *cursor = NULL;
  do {
    q->cursor = cursor;
    json_t *items = NULL;
    char *next = NULL;
    assert_int_equal(idx_evidence_list(ix, q, &items, &next), 0);
    assert_true((int)json_array_size(items) <= q->limit);
    size_t i;
    json_t *e;
    json_array_foreach(items, i, e) {
      assert_true(n < max);
      out[n++] = (int)cu_json_int(e, "n", -1);
    }
    json_decref(items);
    free(cursor);
    cursor = next;
  } while (cursor);
  return n;
}

static void test_indexer_evidence__get_and_count(void **state) {
  fixture *f = *state;
  json_t *r = NULL;
  assert_int_equal(idx_evidence_get(f->ix, f->ids[5], &r), 0);
  assert_string_equal(cu_json_str(r, "device_id"), "cam1");
  json_t *cases = json_object_get(r, "cases");
  assert_int_equal(json_array_size(cases), 1);
  assert_string_equal(json_string_value(json_array_get(cases, 0)), "c-5");
  json_decref(r);
  assert_int_equal(idx_evidence_count(f->ix), 40);
  char missing[CU_ID_LEN + 1];
  cu_id_new(missing);
  assert_int_equal(idx_evidence_get(f->ix, missing, &r), CU_ENOTFOUND);
  assert_int_equal(idx_evidence_get(f->ix, "../x", &r), CU_ENOTFOUND);
  /* The count is durable: it survives closing and reopening. */
  idx_close(f->ix);
  assert_int_equal(idx_open(&f->ix, f->dir), 0);
  assert_int_equal(idx_evidence_count(f->ix), 40);
}

static void test_indexer_list__device_time_range_pages(void **state) {
  fixture *f = *state;
  idx_query q;
  idx_query_init(&q);
  q.device = "cam2";
  q.limit = 3;
  int got[64];
  int n = walk(f->ix, &q, got, 64);
  assert_int_equal(n, 10);
  for (int i = 0; i < n; i++) assert_int_equal(got[i], 2 + 4 * i);
  /* [hour 10, hour 30): cam2 has 10, 14, ..., 26 */
  q.from_us = (1767225600LL + 10 * 3600LL) * 1000000;
  q.to_us = (1767225600LL + 30 * 3600LL) * 1000000;
  n = walk(f->ix, &q, got, 64);
  assert_int_equal(n, 5);
  assert_int_equal(got[0], 10);
  assert_int_equal(got[4], 26);
  q.desc = true;
  n = walk(f->ix, &q, got, 64);
  assert_int_equal(n, 5);
  assert_int_equal(got[0], 26);
  assert_int_equal(got[4], 10);
}

static void test_indexer_list__officer_case_sha_and_all(void **state) {
  fixture *f = *state;
  idx_query q;
  int got[64];
  idx_query_init(&q);
  q.officer = "o1";
  q.limit = 7;
  assert_int_equal(walk(f->ix, &q, got, 64), 20);
  idx_query_init(&q);
  q.case_id = "c-5";
  q.limit = 2;
  int n = walk(f->ix, &q, got, 64);
  assert_int_equal(n, 8);
  for (int i = 0; i < n; i++) assert_int_equal(got[i] % 5, 0);
  idx_query_init(&q);
  q.case_id = "c-5";
  q.device = "cam0"; /* combined: 0, 20 */
  n = walk(f->ix, &q, got, 64);
  assert_int_equal(n, 2);
  assert_int_equal(got[0], 0);
  assert_int_equal(got[1], 20);
  idx_query_init(&q);
  char sha[65];
  memset(sha, 'a', 64);
  sha[63] = '1';
  sha[64] = '\0';
  q.sha256 = sha;
  n = walk(f->ix, &q, got, 64);
  assert_int_equal(n, 1);
  assert_int_equal(got[0], 1);
  idx_query_init(&q);
  q.limit = 9;
  n = walk(f->ix, &q, got, 64);
  assert_int_equal(n, 40);
  for (int i = 0; i < 40; i++) assert_int_equal(got[i], i); /* UUIDv7 order = insertion order */
  q.desc = true;
  n = walk(f->ix, &q, got, 64);
  assert_int_equal(n, 40);
  assert_int_equal(got[0], 39);
  idx_query_init(&q);
  q.device = "nobody";
  assert_int_equal(walk(f->ix, &q, got, 64), 0);
}

static void test_indexer_list__foreign_cursor_refused(void **state) {
  fixture *f = *state;
  idx_query q;
  idx_query_init(&q);
  q.device = "cam1";
  q.limit = 1;
  json_t *items = NULL;
  char *next = NULL;
  assert_int_equal(idx_evidence_list(f->ix, &q, &items, &next), 0);
  assert_non_null(next);
  json_decref(items);
  q.device = "cam3";
  q.cursor = next;
  assert_int_equal(idx_evidence_list(f->ix, &q, &items, &next), CU_EINVAL);
  q.device = NULL; /* the unfiltered listing has no key range to catch it */
  assert_int_equal(idx_evidence_list(f->ix, &q, &items, &next), CU_EINVAL);
  q.officer = "cam1"; /* same key shape, other listing */
  assert_int_equal(idx_evidence_list(f->ix, &q, &items, &next), CU_EINVAL);
  q.officer = NULL;
  q.device = "cam1";
  q.desc = true;
  assert_int_equal(idx_evidence_list(f->ix, &q, &items, &next), CU_EINVAL);
  q.desc = false;
  q.cursor = "!!not-base64!!";
  assert_int_equal(idx_evidence_list(f->ix, &q, &items, &next), CU_EINVAL);
  free(next);
}

static int set_media(json_t *rec, void *ud) {
  json_object_set_new(rec, "media", json_string(ud));
  return 0;
}

static int change_device(json_t *rec, void *ud) {
  cu_json_set_str(rec, "device_id", "cam9");
  return 0;
}

static void test_indexer_evidence__update_keeps_keys(void **state) {
  fixture *f = *state;
  assert_int_equal(idx_evidence_update(f->ix, f->ids[3], set_media, "probed"), 0);
  json_t *r = NULL;
  assert_int_equal(idx_evidence_get(f->ix, f->ids[3], &r), 0);
  assert_string_equal(cu_json_str(r, "media"), "probed");
  json_decref(r);
  assert_int_equal(idx_evidence_update(f->ix, f->ids[3], change_device, NULL), CU_EINVAL);
  assert_int_equal(idx_evidence_get(f->ix, f->ids[3], &r), 0);
  assert_string_equal(cu_json_str(r, "device_id"), "cam3");
  json_decref(r);
}

static void test_indexer_evidence__rejects_bad_records(void **state) {
  fixture *f = *state;
  idx_batch *b = idx_batch_new(f->ix);
  json_t *r = json_object();
  cu_json_set_str(r, "id", "not-an-id");
  assert_int_equal(idx_batch_add_evidence(b, r), CU_EINVAL);
  char id[CU_ID_LEN + 1];
  json_decref(r);
  r = record(1, id);
  cu_json_set_str(r, "device_id", "bad/device");
  assert_int_equal(idx_batch_add_evidence(b, r), CU_EINVAL);
  json_decref(r);
  idx_batch_free(b);
}

static int collect_due(const char *id, int64_t exp, void *ud) {
  cu_buf *b = ud;
  cu_buf_printf(b, "%s;", id);
  return 0;
}

static int collect_open(const char *id, json_t *rec, void *ud) {
  cu_buf *b = ud;
  cu_buf_printf(b, "%s;", id);
  return 0;
}

static void test_indexer_upload__due_and_open(void **state) {
  fixture *f = *state;
  char a[CU_ID_LEN + 1], b2[CU_ID_LEN + 1], c[CU_ID_LEN + 1];
  cu_id_new(a);
  cu_id_new(b2);
  cu_id_new(c);
  idx_batch *b = idx_batch_new(f->ix);
  json_t *ra = json_pack("{s:s,s:I}", "state", "active", "expires_at_us", (json_int_t)1000);
  json_t *rb = json_pack("{s:s,s:I}", "state", "active", "expires_at_us", (json_int_t)5000);
  json_t *rc = json_pack("{s:s}", "state", "completed");
  idx_batch_put_upload(b, a, ra);
  idx_batch_put_upload(b, b2, rb);
  idx_batch_put_upload(b, c, rc);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);
  cu_buf got = CU_BUF_INIT(4096);
  assert_int_equal(idx_upload_due(f->ix, 2000, collect_due, &got), 0);
  char want[128];
  snprintf(want, sizeof want, "%s;", a);
  assert_string_equal(got.data, want);
  cu_buf_reset(&got);
  assert_int_equal(idx_upload_each_active(f->ix, collect_open, &got), 0);
  assert_non_null(strstr(got.data, a));
  assert_non_null(strstr(got.data, b2));
  assert_null(strstr(got.data, c));
  json_t *out = NULL;
  assert_int_equal(idx_upload_get(f->ix, c, &out), 0);
  assert_string_equal(cu_json_str(out, "state"), "completed");
  json_decref(out);
  assert_int_equal(idx_upload_get(f->ix, "nope", &out), CU_ENOTFOUND);
  /* Removing the due entry takes the upload off the sweep list. */
  b = idx_batch_new(f->ix);
  idx_batch_del_upload_due(b, a, 1000);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);
  cu_buf_reset(&got);
  assert_int_equal(idx_upload_due(f->ix, 10000, collect_due, &got), 0);
  snprintf(want, sizeof want, "%s;", b2);
  assert_string_equal(got.data, want);
  cu_buf_release(&got);
  json_decref(ra);
  json_decref(rb);
  json_decref(rc);
}

static int count_pending(const char *id, json_t *rec, void *ud) {
  (*(int *)ud)++;
  return 0;
}

static void test_indexer_tokens_and_jobs(void **state) {
  fixture *f = *state;
  const char *h = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  idx_batch *b = idx_batch_new(f->ix);
  json_t *t = json_pack("{s:s}", "role", "admin");
  idx_batch_put_token(b, h, t);
  char j1[CU_ID_LEN + 1], j2[CU_ID_LEN + 1];
  cu_id_new(j1);
  cu_id_new(j2);
  idx_batch_put_job(b, j1, t, true);
  idx_batch_put_job(b, j2, t, true);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);
  json_t *out = NULL;
  assert_int_equal(idx_token_get(f->ix, h, &out), 0);
  assert_string_equal(cu_json_str(out, "role"), "admin");
  json_decref(out);
  assert_int_equal(idx_token_get(f->ix, "abc", &out), CU_ENOTFOUND);
  int n = 0;
  assert_int_equal(idx_job_each_pending(f->ix, count_pending, &n), 0);
  assert_int_equal(n, 2);
  b = idx_batch_new(f->ix);
  idx_batch_put_job(b, j1, t, false);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);
  n = 0;
  assert_int_equal(idx_job_each_pending(f->ix, count_pending, &n), 0);
  assert_int_equal(n, 1);
  json_decref(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_indexer_evidence__get_and_count, setup, teardown),
      cmocka_unit_test_setup_teardown(test_indexer_list__device_time_range_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_indexer_list__officer_case_sha_and_all, setup, teardown),
      cmocka_unit_test_setup_teardown(test_indexer_list__foreign_cursor_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_indexer_evidence__update_keeps_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_indexer_evidence__rejects_bad_records, setup, teardown),
      cmocka_unit_test_setup_teardown(test_indexer_upload__due_and_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_indexer_tokens_and_jobs, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
