/* DESIGN: workers claim jobs by scanning the pending list in the index
 * (oldest first, ids are UUIDv7) under the queue lock, skipping jobs that
 * are in flight or waiting out a retry delay. Nothing about a job lives only
 * in memory: a restart finds every pending job again, and one that was
 * running when the process died simply runs again from the start (a job
 * must therefore be safe to repeat; probing is).
 *
 * Time limits: a watchdog thread looks at the running jobs once a second.
 * One past its limit is recorded as a failed attempt (retried or failed
 * like any other) and its worker is replaced by a fresh thread, so a hang
 * costs a thread, never the queue's capacity. A thread cannot be stopped
 * from outside; if the stuck call ever returns, its result is dropped and
 * the thread ends. */
#include "job.h"

#include <pthread.h>
#include <sched.h>
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

typedef struct {
  char id[CU_ID_LEN + 1];
  uint64_t seq; /* this attempt */
  pthread_t thread;
  int handler;  /* index in handlers, -1 for an unknown kind */
  int64_t started_us, deadline_us;
  double progress;
  bool finishing; /* its worker is recording the outcome */
} running_job;

typedef struct {
  atomic_uint_least64_t done, failed, retried, timed_out;
} kind_counts;

struct job_queue {
  idx *ix;
  job_handler *handlers;
  const char **kinds;
  kind_counts *counts;
  int nhandlers;
  job_opts opts;
  pthread_t *threads; /* workers, then replacements */
  int nthreads, cthreads;
  pthread_t watchdog;
  bool watching;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  running_job *running;
  int nrunning, crunning;
  uint64_t next_seq;
  pthread_t *stuck; /* workers abandoned past a time limit */
  int nstuck;
  bool let_go; /* a stuck worker was detached at stop */
  atomic_int stopping; /* long jobs watch it and give up */
  atomic_uint_least64_t done, failed, retried, timed_out;
};

int job_queue_open(job_queue **out, idx *ix, const job_handler *handlers, int nhandlers,
                   const job_opts *opts) {
  job_queue *q = cu_xcalloc(1, sizeof *q);
  q->ix = ix;
  q->handlers = cu_xcalloc((size_t)nhandlers + 1, sizeof *handlers);
  memcpy(q->handlers, handlers, (size_t)nhandlers * sizeof *handlers);
  q->nhandlers = nhandlers;
  q->kinds = cu_xcalloc((size_t)nhandlers + 1, sizeof *q->kinds);
  for (int i = 0; i < nhandlers; i++) q->kinds[i] = handlers[i].kind;
  q->counts = cu_xcalloc((size_t)nhandlers + 1, sizeof *q->counts);
  q->opts = *opts;
  if (q->opts.workers <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    q->opts.workers = n > 0 ? (int)n : 1;
  }
  if (q->opts.max_attempts <= 0) q->opts.max_attempts = 3;
  if (q->opts.backoff_us <= 0) q->opts.backoff_us = 5 * 1000000LL;
  if (q->opts.time_limit_us <= 0) q->opts.time_limit_us = 3600 * 1000000LL;
  pthread_mutex_init(&q->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->cv, &ca);
  pthread_condattr_destroy(&ca);
  *out = q;
  return 0;
}

static running_job *find_running(job_queue *q, const char *id) {
  for (int i = 0; i < q->nrunning; i++)
    if (!strcmp(q->running[i].id, id)) return &q->running[i];
  return NULL;
}

static running_job *find_attempt(job_queue *q, uint64_t seq) {
  for (int i = 0; i < q->nrunning; i++)
    if (q->running[i].seq == seq) return &q->running[i];
  return NULL;
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
  if (find_running(c->q, id)) return 0;
  int64_t nb = cu_json_int(rec, "not_before_us", 0);
  if (nb > c->now) {
    if (!c->next_due || nb < c->next_due) c->next_due = nb;
    return 0;
  }
  memcpy(c->id, id, sizeof c->id);
  c->job = json_incref(rec);
  return 1;
}

static int handler_index(job_queue *q, const char *kind) {
  for (int i = 0; kind && i < q->nhandlers; i++)
    if (!strcmp(q->handlers[i].kind, kind)) return i;
  return -1;
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
  bool final = h && h->verdicts_final && (rc == CU_EUNSUPPORTED || rc == CU_ECORRUPT);
  idx_batch *b = idx_batch_new(q->ix);
  if (rc && !final && atomic_load(&q->stopping)) {
    /* Stopped, not failed: it runs again at the next start. */
    cu_warn("job %s (%s) stopped with the server; it runs again at the next start", id,
            cu_json_str(job, "kind"));
    idx_batch_free(b);
    return;
  }
  if (!rc) {
    cu_json_set_str(job, "state", "done");
    json_object_del(job, "not_before_us");
    json_object_del(job, "error");
    atomic_fetch_add(&q->done, 1);
    if (h) atomic_fetch_add(&q->counts[h - q->handlers].done, 1);
  } else if (final || (max_attempts >= 0 && attempts >= max_attempts)) {
    cu_json_set_str(job, "state", "failed");
    cu_json_set_str(job, "error", msg);
    atomic_fetch_add(&q->failed, 1);
    if (h) atomic_fetch_add(&q->counts[h - q->handlers].failed, 1);
    if (h && h->on_failed) h->on_failed(h->ud, b, id, job, msg);
    if (final) cu_err("job %s (%s) failed: %s", id, cu_json_str(job, "kind"), msg);
    else cu_err("job %s (%s) failed after %d attempts: %s", id, cu_json_str(job, "kind"), attempts, msg);
  } else {
    int64_t delay = backoff << (attempts - 1 < 16 ? attempts - 1 : 16);
    if (h && h->max_backoff_us && delay > h->max_backoff_us) delay = h->max_backoff_us;
    cu_json_set_str(job, "state", "queued");
    cu_json_set_str(job, "error", msg);
    cu_json_set_int(job, "not_before_us", now + delay);
    pending = true;
    atomic_fetch_add(&q->retried, 1);
    if (h) atomic_fetch_add(&q->counts[h - q->handlers].retried, 1);
    cu_warn("job %s (%s) attempt %d failed, retrying in %.1f s: %s", id, cu_json_str(job, "kind"),
            attempts, (double)delay / 1e6, msg);
  }
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

static int64_t time_limit(job_queue *q, int hi) {
  return hi >= 0 && q->handlers[hi].time_limit_us ? q->handlers[hi].time_limit_us
                                                  : q->opts.time_limit_us;
}

/* SCHED_IDLE: the thread (and the threads libav starts for it, which
 * inherit it) runs only on CPU time nothing else wants. Nice 10 alone left
 * an upload at 0.6 of its speed beside two transcodes on two cores
 * (bench/transcode/priority.sh); SCHED_IDLE keeps it at full speed. Going
 * back needs no privilege for root; otherwise the worker may stay idle
 * priority, which is slower for its next jobs, never wrong. */
static void set_idle(bool on) {
  struct sched_param sp = {0};
  if (pthread_setschedparam(pthread_self(), on ? SCHED_IDLE : SCHED_OTHER, &sp) != 0)
    cu_debug("job worker: cannot switch to %s", on ? "SCHED_IDLE" : "SCHED_OTHER");
  if (!on && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) < 0)
    cu_debug("job worker: cannot lower its priority");
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
    int hi = handler_index(q, cu_json_str(c.job, "kind"));
    if (q->nrunning == q->crunning) {
      q->crunning = q->crunning ? 2 * q->crunning : 8;
      q->running = cu_xrealloc(q->running, (size_t)q->crunning * sizeof *q->running);
    }
    running_job *r = &q->running[q->nrunning++];
    memset(r, 0, sizeof *r);
    memcpy(r->id, c.id, sizeof c.id);
    uint64_t seq = r->seq = ++q->next_seq;
    r->thread = pthread_self();
    r->handler = hi;
    r->started_us = cu_now_us();
    r->deadline_us = r->started_us + time_limit(q, hi);
    pthread_mutex_unlock(&q->mu);

    const job_handler *h = hi >= 0 ? &q->handlers[hi] : NULL;
    char msg[512] = "";
    if (!h) {
      rc = cu_error(CU_EINVAL, "no handler for job kind '%s'", cu_json_str(c.job, "kind"));
    } else {
      if (h->idle_priority) set_idle(true);
      rc = h->run(h->ud, c.id, c.job);
      if (h->idle_priority) set_idle(false);
    }
    if (rc) snprintf(msg, sizeof msg, "%s", cu_errmsg());

    pthread_mutex_lock(&q->mu);
    r = find_attempt(q, seq);
    if (r) r->finishing = true; /* the watchdog leaves it alone now */
    if (!r) {
      /* The watchdog has failed this attempt and started a replacement:
       * this thread is no longer stuck, and ends (to be joined). */
      for (int i = 0; i < q->nstuck; i++)
        if (pthread_equal(q->stuck[i], pthread_self())) q->stuck[i] = q->stuck[--q->nstuck];
      cu_warn("job %s (%s) returned after its time limit; its result is dropped", c.id,
              cu_json_str(c.job, "kind"));
      json_decref(c.job);
      break;
    }
    pthread_mutex_unlock(&q->mu);
    /* A kind this build does not know fails at once: retrying cannot help. */
    if (!h) cu_json_set_int(c.job, "attempts", q->opts.max_attempts - 1);
    finish(q, h, c.id, c.job, rc, msg);
    json_decref(c.job);
    pthread_mutex_lock(&q->mu);
    /* Only now, with its outcome recorded, may the job be claimed again. */
    r = find_attempt(q, seq);
    if (r) *r = q->running[--q->nrunning];
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

static int add_worker(job_queue *q) {
  if (q->nthreads == q->cthreads) {
    q->cthreads = q->cthreads ? 2 * q->cthreads : q->opts.workers;
    q->threads = cu_xrealloc(q->threads, (size_t)q->cthreads * sizeof *q->threads);
  }
  if (pthread_create(&q->threads[q->nthreads], NULL, worker_main, q))
    return cu_error(CU_EIO, "cannot start a job worker thread");
  q->nthreads++;
  return 0;
}

/* Fails each running job past its deadline (an attempt, retried like any
 * failure) and starts a worker in place of the stuck one. mu held. */
static void expire(job_queue *q, int64_t now) {
  for (int i = 0; i < q->nrunning; i++) {
    running_job r = q->running[i];
    if (r.finishing || now < r.deadline_us) continue;
    q->running[i] = q->running[--q->nrunning];
    q->stuck = cu_xrealloc(q->stuck, (size_t)(q->nstuck + 1) * sizeof *q->stuck);
    q->stuck[q->nstuck++] = r.thread;
    int64_t limit = time_limit(q, r.handler);
    atomic_fetch_add(&q->timed_out, 1);
    if (r.handler >= 0) atomic_fetch_add(&q->counts[r.handler].timed_out, 1);
    pthread_mutex_unlock(&q->mu);
    json_t *job = NULL;
    char msg[256];
    snprintf(msg, sizeof msg, "it ran past its time limit of %lld s and was abandoned",
             (long long)(limit / 1000000));
    cu_err("job %s: %s; its worker is replaced", r.id, msg);
    if (!idx_job_get(q->ix, r.id, &job)) {
      finish(q, r.handler >= 0 ? &q->handlers[r.handler] : NULL, r.id, job, CU_EBUSY, msg);
      json_decref(job);
    }
    pthread_mutex_lock(&q->mu);
    if (!q->stop && add_worker(q)) cu_err("job queue: %s", cu_errmsg());
    i = -1; /* the table may have changed while unlocked */
  }
}

static void *watchdog_main(void *arg) {
  job_queue *q = arg;
  pthread_mutex_lock(&q->mu);
  while (!q->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    if (!q->stop) expire(q, cu_now_us());
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

int job_queue_start(job_queue *q) {
  pthread_mutex_lock(&q->mu);
  int rc = 0;
  for (int i = 0; !rc && i < q->opts.workers; i++) rc = add_worker(q);
  pthread_mutex_unlock(&q->mu);
  if (!rc) {
    if (pthread_create(&q->watchdog, NULL, watchdog_main, q))
      rc = cu_error(CU_EIO, "cannot start the job watchdog thread");
    else
      q->watching = true;
  }
  if (rc) job_queue_stop(q);
  return rc;
}

static bool is_stuck(job_queue *q, pthread_t t) {
  for (int i = 0; i < q->nstuck; i++)
    if (pthread_equal(q->stuck[i], t)) return true;
  return false;
}

void job_queue_stop(job_queue *q) {
  if (!q) return;
  atomic_store(&q->stopping, 1);
  pthread_mutex_lock(&q->mu);
  q->stop = true;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  if (q->watching) pthread_join(q->watchdog, NULL);
  q->watching = false;
  for (int i = 0; i < q->nthreads; i++) {
    /* A worker stuck past its time limit cannot be joined: it is let go. */
    pthread_mutex_lock(&q->mu);
    bool stuck = is_stuck(q, q->threads[i]);
    if (stuck) q->let_go = true;
    pthread_mutex_unlock(&q->mu);
    if (stuck) pthread_detach(q->threads[i]);
    else pthread_join(q->threads[i], NULL);
  }
  q->nthreads = 0;
}

const atomic_int *job_queue_stopping(job_queue *q) { return &q->stopping; }

void job_queue_free(job_queue *q) {
  if (!q) return;
  job_queue_stop(q);
  /* A worker let go may still wake up and touch the queue: it is left
   * allocated (the process is about to end). */
  if (q->let_go) return;
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
  free(q->threads);
  free(q->running);
  free(q->stuck);
  free(q->handlers);
  free(q->kinds);
  free(q->counts);
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

void job_progress(job_queue *q, const char *job_id, double fraction) {
  if (fraction < 0) fraction = 0;
  if (fraction > 1) fraction = 1;
  pthread_mutex_lock(&q->mu);
  running_job *r = find_running(q, job_id);
  if (r) r->progress = fraction;
  pthread_mutex_unlock(&q->mu);
}

void job_queue_counts(job_queue *q, job_counts *out) {
  out->done = atomic_load(&q->done);
  out->failed = atomic_load(&q->failed);
  out->retried = atomic_load(&q->retried);
  out->timed_out = atomic_load(&q->timed_out);
  pthread_mutex_lock(&q->mu);
  out->running = (uint64_t)q->nrunning;
  pthread_mutex_unlock(&q->mu);
}

int job_queue_kinds(job_queue *q, const char *const **kinds) {
  *kinds = q->kinds;
  return q->nhandlers;
}

typedef struct {
  job_queue *q;
  uint64_t *queued;
} queued_ctx;

static int count_queued(const char *id, json_t *rec, void *ud) {
  queued_ctx *c = ud;
  int hi = handler_index(c->q, cu_json_str(rec, "kind"));
  if (hi >= 0 && !find_running(c->q, id)) c->queued[hi]++;
  return 0;
}

void job_queue_kind_counts(job_queue *q, job_counts *out, uint64_t *queued) {
  memset(out, 0, (size_t)q->nhandlers * sizeof *out);
  memset(queued, 0, (size_t)q->nhandlers * sizeof *queued);
  for (int i = 0; i < q->nhandlers; i++) {
    out[i].done = atomic_load(&q->counts[i].done);
    out[i].failed = atomic_load(&q->counts[i].failed);
    out[i].retried = atomic_load(&q->counts[i].retried);
    out[i].timed_out = atomic_load(&q->counts[i].timed_out);
  }
  /* One scan of the pending jobs for every kind. */
  queued_ctx c = {q, queued};
  pthread_mutex_lock(&q->mu);
  for (int i = 0; i < q->nrunning; i++)
    if (q->running[i].handler >= 0) out[q->running[i].handler].running++;
  idx_job_each_pending(q->ix, count_queued, &c);
  pthread_mutex_unlock(&q->mu);
}

typedef struct {
  job_queue *q;
  const char *state, *kind;
  int limit;
  json_t *list;
} list_ctx;

static int list_one(const char *id, json_t *rec, void *ud) {
  list_ctx *c = ud;
  const char *kind = cu_json_str(rec, "kind");
  if (c->kind && (!kind || strcmp(kind, c->kind))) return 0;
  json_t *j = json_deep_copy(rec);
  running_job *r = find_running(c->q, id);
  if (r) {
    cu_json_set_str(j, "state", "running");
    cu_json_set_time(j, "started_at", r->started_us);
    json_object_set_new(j, "progress", json_real(r->progress));
  }
  int64_t nb = cu_json_int(rec, "not_before_us", 0);
  if (nb) cu_json_set_time(j, "not_before", nb);
  json_object_del(j, "not_before_us");
  const char *st = cu_json_str(j, "state");
  if (!c->state || (st && !strcmp(st, c->state))) json_array_append(c->list, j);
  json_decref(j);
  return (int)json_array_size(c->list) >= c->limit ? 1 : 0;
}

int job_queue_list(job_queue *q, const char *state, const char *kind, int limit, json_t **out) {
  list_ctx c = {q, state, kind, limit > 0 ? limit : 1000, json_array()};
  pthread_mutex_lock(&q->mu);
  int rc = 0;
  if (!state || strcmp(state, "failed")) rc = idx_job_each_pending(q->ix, list_one, &c);
  if (!rc && (!state || !strcmp(state, "failed")) && (int)json_array_size(c.list) < c.limit)
    rc = idx_job_each_failed(q->ix, list_one, &c);
  pthread_mutex_unlock(&q->mu);
  if (rc) {
    json_decref(c.list);
    return rc;
  }
  *out = c.list;
  return 0;
}
