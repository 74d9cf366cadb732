/* Unit tests for ingest/job: the durable job queue on a real index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "id.h"
#include "idx.h"
#include "job.h"
#include "test_util.h"
#include "timeu.h"

/* Each test gets a fresh index in a temporary directory (a test that
 * reopens it keeps f->ix current). */
typedef struct {
  char *dir;
  idx *ix;
} index_fixture;

static int setup(void **state) {
  index_fixture *f = cu_xcalloc(1, sizeof *f);
  f->dir = test_tmpdir("job");
  assert_non_null(f->dir);
  assert_int_equal(idx_open(&f->ix, f->dir), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  index_fixture *f = *state;
  idx_close(f->ix);
  assert_int_equal(test_rmtree(f->dir), 0);
  free(f->dir);
  free(f);
  return 0;
}

typedef struct {
  atomic_int runs, fails_left;
  char last_evidence[64];
  pthread_mutex_t mu;
} counter;

static int run_ok(void *ud, const char *id, const json_t *job) {
  counter *c = ud;
  pthread_mutex_lock(&c->mu);
  snprintf(c->last_evidence, sizeof c->last_evidence, "%s", cu_json_str(job, "evidence"));
  pthread_mutex_unlock(&c->mu);
  atomic_fetch_add(&c->runs, 1);
  if (atomic_fetch_sub(&c->fails_left, 1) > 0) return cu_error(CU_EIO, "transient trouble");
  return 0;
}

static void add_job(idx *ix, job_queue *q, const char *kind, const char *ev, char id[CU_ID_LEN + 1]) {
  idx_batch *b = idx_batch_new(ix);
  job_batch_add(q, b, kind, ev, id);
  assert_int_equal(idx_batch_commit(ix, b), 0);
  idx_batch_free(b);
  job_queue_kick(q);
}

static json_t *wait_state(idx *ix, const char *id, const char *state) {
  for (int i = 0; i < 500; i++) {
    json_t *j = NULL;
    assert_int_equal(idx_job_get(ix, id, &j), 0);
    if (!strcmp(cu_json_str(j, "state"), state)) return j;
    json_decref(j);
    usleep(10000);
  }
  fail_msg("job %s never reached state %s", id, state);
  return NULL;
}

static int count_pending(const char *id, json_t *rec, void *ud) {
  (*(int *)ud)++;
  return 0;
}

static void test_job__runs_retries_and_fails(void **state) {
  index_fixture *f = *state;
  idx *ix = f->ix;
  counter c = {.mu = PTHREAD_MUTEX_INITIALIZER};
  job_handler h[] = {{.kind = "probe", .run = run_ok, .ud = &c}};
  job_opts o = {.workers = 2, .max_attempts = 3, .backoff_us = 20000};
  job_queue *q = NULL;
  assert_int_equal(job_queue_open(&q, ix, h, 1, &o), 0);
  assert_int_equal(job_queue_start(q), 0);

  /* Succeeds at once. */
  char id[CU_ID_LEN + 1];
  add_job(ix, q, "probe", "ev-1", id);
  json_t *j = wait_state(ix, id, "done");
  assert_int_equal(cu_json_int(j, "attempts", 0), 1);
  json_decref(j);
  assert_string_equal(c.last_evidence, "ev-1");

  /* Fails twice, then succeeds: retried after a delay. */
  atomic_store(&c.fails_left, 2);
  atomic_store(&c.runs, 0);
  int64_t t0 = cu_mono_us();
  add_job(ix, q, "probe", "ev-2", id);
  j = wait_state(ix, id, "done");
  assert_int_equal(cu_json_int(j, "attempts", 0), 3);
  assert_int_equal(atomic_load(&c.runs), 3);
  assert_true(cu_mono_us() - t0 >= 20000 + 40000); /* backoff 20 ms, then 40 ms */
  json_decref(j);

  /* Always fails: after the last attempt it is failed, with the error kept,
   * and no longer pending. */
  atomic_store(&c.fails_left, 100);
  add_job(ix, q, "probe", "ev-3", id);
  j = wait_state(ix, id, "failed");
  assert_int_equal(cu_json_int(j, "attempts", 0), 3);
  assert_string_equal(cu_json_str(j, "error"), "transient trouble");
  json_decref(j);

  /* A kind nobody handles fails at once. */
  add_job(ix, q, "nonsense", "ev-4", id);
  j = wait_state(ix, id, "failed");
  assert_non_null(strstr(cu_json_str(j, "error"), "no handler"));
  json_decref(j);

  int pending = 0;
  assert_int_equal(idx_job_each_pending(ix, count_pending, &pending), 0);
  assert_int_equal(pending, 0);
  job_counts jc;
  job_queue_counts(q, &jc);
  assert_int_equal(jc.done, 2);
  assert_int_equal(jc.failed, 2);
  job_queue_free(q);
}

static void test_job__pending_jobs_survive_a_restart(void **state) {
  index_fixture *f = *state;
  idx *ix = f->ix;
  counter c = {.mu = PTHREAD_MUTEX_INITIALIZER};
  job_handler h[] = {{.kind = "probe", .run = run_ok, .ud = &c}};
  job_opts o = {.workers = 1};
  job_queue *q = NULL;
  /* Queued while no worker runs (as if the process died before they ran). */
  assert_int_equal(job_queue_open(&q, ix, h, 1, &o), 0);
  char ids[5][CU_ID_LEN + 1];
  for (int i = 0; i < 5; i++) add_job(ix, q, "probe", "ev", ids[i]);
  job_queue_free(q);
  idx_close(ix);
  f->ix = NULL;
  assert_int_equal(atomic_load(&c.runs), 0);

  assert_int_equal(idx_open(&f->ix, f->dir), 0);
  ix = f->ix;
  assert_int_equal(job_queue_open(&q, ix, h, 1, &o), 0);
  assert_int_equal(job_queue_start(q), 0);
  for (int i = 0; i < 5; i++) json_decref(wait_state(ix, ids[i], "done"));
  assert_int_equal(atomic_load(&c.runs), 5);
  job_queue_free(q);
}

/* A handler may retry without limit (time-stamps wait for their TSA), with
 * its own first delay and a cap on the doubling. */
static void test_job__a_handler_can_retry_until_it_succeeds(void **state) {
  index_fixture *f = *state;
  idx *ix = f->ix;
  counter c = {.mu = PTHREAD_MUTEX_INITIALIZER};
  atomic_store(&c.fails_left, 6); /* more than the queue's max_attempts */
  job_handler h[] = {{.kind = "stamp", .run = run_ok, .ud = &c, .max_attempts = -1,
                      .backoff_us = 10000, .max_backoff_us = 40000}};
  job_opts o = {.workers = 1, .max_attempts = 2, .backoff_us = 10 * 1000000};
  job_queue *q = NULL;
  assert_int_equal(job_queue_open(&q, ix, h, 1, &o), 0);
  assert_int_equal(job_queue_start(q), 0);
  char id[CU_ID_LEN + 1];
  int64_t t0 = cu_now_us();
  add_job(ix, q, "stamp", "ev", id);
  json_t *j = wait_state(ix, id, "done");
  int64_t took = cu_now_us() - t0;
  assert_int_equal(cu_json_int(j, "attempts", 0), 7);
  /* 10 + 20 + 40 + 40 + 40 + 40 ms of delays: capped, and not the queue's 10 s. */
  assert_true(took >= 190000);
  assert_true(took < 5 * 1000000);
  json_decref(j);
  job_queue_free(q);
}

static atomic_int release_hang;
static job_queue *hang_q;

/* Reports progress, then hangs until released (a stuck FFmpeg call, say). */
static int run_hang(void *ud, const char *id, const json_t *job) {
  job_progress(hang_q, id, 0.25);
  while (!atomic_load(&release_hang)) usleep(10000);
  return 0;
}

/* A job past its time limit is failed (as an attempt) and its worker
 * replaced, so the queue keeps its capacity; the listing shows queued,
 * running (with progress) and failed jobs. */
static void test_job__a_hang_becomes_a_failure_not_a_stuck_worker(void **state) {
  index_fixture *f = *state;
  idx *ix = f->ix;
  counter c = {.mu = PTHREAD_MUTEX_INITIALIZER};
  job_queue *q = NULL;
  job_handler h[] = {{.kind = "hang", .run = run_hang, .max_attempts = 1, .time_limit_us = 1500000},
                     {.kind = "probe", .run = run_ok, .ud = &c}};
  job_opts o = {.workers = 1, .max_attempts = 3, .backoff_us = 10000};
  assert_int_equal(job_queue_open(&q, ix, h, 2, &o), 0);
  hang_q = q;
  assert_int_equal(job_queue_start(q), 0);

  char hang[CU_ID_LEN + 1], ok[CU_ID_LEN + 1];
  add_job(ix, q, "hang", "ev-h", hang);
  /* Running, with its progress. */
  json_t *list = NULL;
  for (int i = 0; i < 200; i++) {
    json_decref(list);
    assert_int_equal(job_queue_list(q, "running", NULL, 10, &list), 0);
    if (json_array_size(list) == 1 &&
        json_real_value(json_object_get(json_array_get(list, 0), "progress")) > 0.2)
      break;
    usleep(10000);
  }
  assert_int_equal(json_array_size(list), 1);
  assert_string_equal(cu_json_str(json_array_get(list, 0), "id"), hang);
  assert_non_null(cu_json_str(json_array_get(list, 0), "started_at"));
  json_decref(list);
  /* The only worker is stuck: this one waits, queued. */
  add_job(ix, q, "probe", "ev-ok", ok);
  assert_int_equal(job_queue_list(q, "queued", "probe", 10, &list), 0);
  assert_int_equal(json_array_size(list), 1);
  json_decref(list);

  json_t *j = wait_state(ix, hang, "failed");
  assert_non_null(strstr(cu_json_str(j, "error"), "time limit"));
  json_decref(j);
  /* The replacement worker runs the next job. */
  json_decref(wait_state(ix, ok, "done"));
  job_counts kc[2];
  uint64_t queued[2] = {9, 9};
  job_queue_kind_counts(q, kc, queued);
  assert_int_equal(kc[0].timed_out, 1); /* "hang" */
  assert_int_equal(kc[0].failed, 1);
  assert_int_equal(kc[0].running, 0);
  assert_int_equal(queued[0], 0);
  assert_int_equal(job_queue_list(q, "failed", NULL, 10, &list), 0);
  assert_int_equal(json_array_size(list), 1);
  assert_string_equal(cu_json_str(json_array_get(list, 0), "state"), "failed");
  json_decref(list);
  assert_int_equal(job_queue_list(q, NULL, "probe", 10, &list), 0);
  assert_int_equal(json_array_size(list), 0); /* done jobs are not listed */
  json_decref(list);

  /* The stuck call returns at last: its result is dropped, not recorded. */
  atomic_store(&release_hang, 1);
  usleep(100000);
  j = NULL;
  assert_int_equal(idx_job_get(ix, hang, &j), 0);
  assert_string_equal(cu_json_str(j, "state"), "failed");
  json_decref(j);
  job_queue_free(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_job__runs_retries_and_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_job__pending_jobs_survive_a_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_job__a_handler_can_retry_until_it_succeeds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_job__a_hang_becomes_a_failure_not_a_stuck_worker, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
