/* DESIGN: workers claim jobs by scanning the pending list in the index
 * (oldest first, ids are UUIDv7) under the queue lock, skipping jobs that
 * are in flight or waiting out a retry delay. Nothing about a job lives only
 * in memory: a restart finds every pending job again, and one that was
 * running when the process died simply runs again from the start (a job
 * must therefore be safe to repeat; probing is). */
#include "job.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

struct job_queue {
  idx *ix;
  job_handler *handlers;
  int nhandlers;
  job_opts opts;
  pthread_t *threads;
  int nthreads;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  char (*inflight)[CU_ID_LEN + 1];
  int ninflight;
  atomic_uint_least64_t done, failed, retried;
};

int job_queue_open(job_queue **out, idx *ix, const job_handler *handlers, int nhandlers,
                   const job_opts *opts) {
  job_queue *q = cu_xcalloc(1, sizeof *q);
  q->ix = ix;
  q->handlers = cu_xcalloc((size_t)nhandlers, sizeof *handlers);
  memcpy(q->handlers, handlers, (size_t)nhandlers * sizeof *handlers);
  q->nhandlers = nhandlers;
  q->opts = *opts;
  if (q->opts.workers <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    q->opts.workers = n > 0 ? (int)n : 1;
  }
  if (q->opts.max_attempts <= 0) q->opts.max_attempts = 3;
  if (q->opts.backoff_us <= 0) q->opts.backoff_us = 5 * 1000000LL;
  q->inflight = cu_xcalloc((size_t)q->opts.workers, sizeof *q->inflight);
  pthread_mutex_init(&q->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->cv, &ca);
  pthread_condattr_destroy(&ca);
  *out = q;
  return 0;
}

static bool in_flight(job_queue *q, const char *id) {
  for (int i = 0; i < q->ninflight; i++)
    if (!strcmp(q->inflight[i], id)) return true;
  return false;
}

typedef struct {
  job_queue *q;
  int64_t now;
  char id[CU_ID_LEN + 1];
  json_t *job;
  int64_t next_due; /* earliest not_before among jobs skipped for it */
} claim_ctx;

static int claim_one(const char *id, json_t *rec, void *ud) {
  claim_ctx *c = ud;
  if (in_flight(c->q, id)) return 0;
  int64_t nb = cu_json_int(rec, "not_before_us", 0);
  if (nb > c->now) {
    if (!c->next_due || nb < c->next_due) c->next_due = nb;
    return 0;
  }
  memcpy(c->id, id, sizeof c->id);
  c->job = json_incref(rec);
  return 1;
}

static const job_handler *handler_for(job_queue *q, const char *kind) {
  for (int i = 0; kind && i < q->nhandlers; i++)
    if (!strcmp(q->handlers[i].kind, kind)) return &q->handlers[i];
  return NULL;
}

static void finish(job_queue *q, const job_handler *h, const char *id, json_t *job, int rc,
                   const char *msg) {
  int64_t now = cu_now_us();
  int attempts = (int)cu_json_int(job, "attempts", 0) + 1;
  cu_json_set_int(job, "attempts", attempts);
  cu_json_set_time(job, "updated_at", now);
  bool pending = false;
  int max_attempts = h && h->max_attempts ? h->max_attempts : q->opts.max_attempts;
  int64_t backoff = h && h->backoff_us ? h->backoff_us : q->opts.backoff_us;
  if (!rc) {
    cu_json_set_str(job, "state", "done");
    json_object_del(job, "not_before_us");
    atomic_fetch_add(&q->done, 1);
  } else if (max_attempts >= 0 && attempts >= max_attempts) {
    cu_json_set_str(job, "state", "failed");
    cu_json_set_str(job, "error", msg);
    atomic_fetch_add(&q->failed, 1);
    cu_err("job %s (%s) failed after %d attempts: %s", id, cu_json_str(job, "kind"), attempts, msg);
  } else {
    int64_t delay = backoff << (attempts - 1 < 16 ? attempts - 1 : 16);
    if (h && h->max_backoff_us && delay > h->max_backoff_us) delay = h->max_backoff_us;
    cu_json_set_str(job, "state", "queued");
    cu_json_set_str(job, "error", msg);
    cu_json_set_int(job, "not_before_us", now + delay);
    pending = true;
    atomic_fetch_add(&q->retried, 1);
    cu_warn("job %s (%s) attempt %d failed, retrying in %.1f s: %s", id, cu_json_str(job, "kind"),
            attempts, (double)delay / 1e6, msg);
  }
  idx_batch *b = idx_batch_new(q->ix);
  idx_batch_put_job(b, id, job, pending);
  if (idx_batch_commit(q->ix, b)) cu_err("job %s: cannot record its outcome: %s", id, cu_errmsg());
  idx_batch_free(b);
}

static void wait_for_work(job_queue *q, int64_t next_due) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t wait_us = 1000000; /* poll now and then: retries come due */
  if (next_due) {
    int64_t until = next_due - cu_now_us();
    if (until < wait_us) wait_us = until > 1000 ? until : 1000;
  }
  ts.tv_sec += wait_us / 1000000;
  ts.tv_nsec += (wait_us % 1000000) * 1000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_cond_timedwait(&q->cv, &q->mu, &ts);
}

static void *worker_main(void *arg) {
  job_queue *q = arg;
  /* Jobs are background work: uploads and reads come first. (On Linux,
   * nice values are per thread.) */
  if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) < 0)
    cu_debug("job worker: cannot lower its priority");
  pthread_mutex_lock(&q->mu);
  while (!q->stop) {
    claim_ctx c = {.q = q, .now = cu_now_us()};
    int rc = idx_job_each_pending(q->ix, claim_one, &c);
    if (rc || !c.job) {
      if (rc) cu_err("job queue: cannot scan pending jobs: %s", cu_errmsg());
      wait_for_work(q, c.next_due);
      continue;
    }
    memcpy(q->inflight[q->ninflight++], c.id, sizeof c.id);
    pthread_mutex_unlock(&q->mu);

    const job_handler *h = handler_for(q, cu_json_str(c.job, "kind"));
    char msg[512] = "";
    if (!h) {
      rc = cu_error(CU_EINVAL, "no handler for job kind '%s'", cu_json_str(c.job, "kind"));
    } else {
      rc = h->run(h->ud, c.id, c.job);
    }
    if (rc) snprintf(msg, sizeof msg, "%s", cu_errmsg());
    /* A kind this build does not know fails at once: retrying cannot help. */
    if (!h) cu_json_set_int(c.job, "attempts", q->opts.max_attempts - 1);
    finish(q, h, c.id, c.job, rc, msg);
    json_decref(c.job);

    pthread_mutex_lock(&q->mu);
    for (int i = 0; i < q->ninflight; i++) {
      if (!strcmp(q->inflight[i], c.id)) {
        memcpy(q->inflight[i], q->inflight[q->ninflight - 1], CU_ID_LEN + 1);
        q->ninflight--;
        break;
      }
    }
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

int job_queue_start(job_queue *q) {
  q->threads = cu_xcalloc((size_t)q->opts.workers, sizeof *q->threads);
  for (int i = 0; i < q->opts.workers; i++) {
    if (pthread_create(&q->threads[i], NULL, worker_main, q)) {
      job_queue_stop(q);
      return cu_error(CU_EIO, "cannot start job worker threads");
    }
    q->nthreads++;
  }
  return 0;
}

void job_queue_stop(job_queue *q) {
  if (!q) return;
  pthread_mutex_lock(&q->mu);
  q->stop = true;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  for (int i = 0; i < q->nthreads; i++) pthread_join(q->threads[i], NULL);
  q->nthreads = 0;
}

void job_queue_free(job_queue *q) {
  if (!q) return;
  job_queue_stop(q);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
  free(q->threads);
  free(q->inflight);
  free(q->handlers);
  free(q);
}

void job_batch_add(job_queue *q, idx_batch *b, const char *kind, const char *evidence_id,
                   char id_out[CU_ID_LEN + 1]) {
  json_t *f = json_object();
  cu_json_set_str(f, "evidence", evidence_id);
  job_batch_add_with(q, b, kind, f, id_out);
  json_decref(f);
}

void job_batch_add_with(job_queue *q, idx_batch *b, const char *kind, const json_t *fields,
                        char id_out[CU_ID_LEN + 1]) {
  char id[CU_ID_LEN + 1];
  cu_id_new(id);
  json_t *j = json_deep_copy(fields);
  cu_json_set_str(j, "id", id);
  cu_json_set_str(j, "kind", kind);
  cu_json_set_str(j, "state", "queued");
  cu_json_set_int(j, "attempts", 0);
  cu_json_set_time(j, "created_at", cu_now_us());
  idx_batch_put_job(b, id, j, true);
  json_decref(j);
  if (id_out) memcpy(id_out, id, sizeof id);
}

void job_queue_kick(job_queue *q) {
  pthread_mutex_lock(&q->mu);
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

void job_queue_counts(job_queue *q, job_counts *out) {
  out->done = atomic_load(&q->done);
  out->failed = atomic_load(&q->failed);
  out->retried = atomic_load(&q->retried);
  pthread_mutex_lock(&q->mu);
  out->running = (uint64_t)q->ninflight;
  pthread_mutex_unlock(&q->mu);
}
