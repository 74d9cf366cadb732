/* The durable job queue: slow work (probing now; masters, access copies and
 * frame hashes later) runs on worker threads, never on an HTTP thread.
 *
 * A job is a record in the index; "pending" jobs are listed separately, so
 * after a restart or a kill -9 every job that was queued or running is
 * found again and runs from the start. A job is added in the same batch as
 * the record it works on, so there is never evidence without its jobs. */
#ifndef JOB_H
#define JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "id.h"
#include "idx.h"

typedef struct job_queue job_queue;

/* Runs one job. Returns 0 when done; non-zero (message via cu_errmsg) to
 * have it retried later, up to the attempt limit. A job that runs past its
 * time limit is failed (as an attempt) by the queue's watchdog and its
 * worker replaced: whatever the stuck call returns later is discarded. */
typedef int (*job_fn)(void *ud, const char *job_id, const json_t *job);

typedef struct {
  const char *kind;
  job_fn run;
  void *ud;
  int max_attempts;       /* 0 = the queue's; -1 = retry until it succeeds */
  int64_t backoff_us;     /* first retry delay; 0 = the queue's */
  int64_t max_backoff_us; /* the doubling stops here; 0 = no cap */
  int64_t time_limit_us;  /* per attempt; 0 = the queue's */
  /* CU_EUNSUPPORTED and CU_ECORRUPT from run are verdicts on the input
   * (it is damaged; a check failed): the job fails at once, no retry. */
  bool verdicts_final;
  /* Runs under SCHED_IDLE (heavy background work: transcodes), so uploads
   * and requests keep the CPU they need. */
  bool idle_priority;
  /* Called when the job ends failed, to record that elsewhere in the same
   * write as the job's outcome (b). May be NULL. */
  void (*on_failed)(void *ud, idx_batch *b, const char *job_id, const json_t *job,
                    const char *msg);
} job_handler;

typedef struct {
  int workers;        /* threads; 0 = the number of cores */
  int max_attempts;   /* then the job is marked failed and kept */
  int64_t backoff_us; /* first retry delay; doubles each attempt */
  int64_t time_limit_us; /* per attempt (default 1 hour) */
} job_opts;

int job_queue_open(job_queue **out, idx *ix, const job_handler *handlers, int nhandlers,
                   const job_opts *opts);
/* Starts the workers; pending jobs from before a restart run first. */
int job_queue_start(job_queue *q);
/* Lets running jobs finish, then stops the workers. Jobs not yet done stay
 * pending in the index; a job that fails while the queue stops (a long job
 * told to give up, see the handlers' cancel flags) is not charged an
 * attempt. */
void job_queue_stop(job_queue *q);
/* Non-zero once the queue is stopping: a long job polls it and gives up
 * (it runs again at the next start). */
const atomic_int *job_queue_stopping(job_queue *q);
void job_queue_free(job_queue *q);

/* Adds a new job to b; after idx_batch_commit() succeeds, call
 * job_queue_kick() so a worker picks it up now rather than at its next
 * poll. id_out may be NULL. */
void job_batch_add(job_queue *q, idx_batch *b, const char *kind, const char *evidence_id,
                   char id_out[CU_ID_LEN + 1]);
/* The same, for a job about something other than one evidence item: the
 * fields (borrowed) are copied into the job record. */
void job_batch_add_with(job_queue *q, idx_batch *b, const char *kind, const json_t *fields,
                        char id_out[CU_ID_LEN + 1]);
void job_queue_kick(job_queue *q);

/* How far a running job is, 0..1 (a media job: the share of the duration
 * processed). Shown by job_queue_list. */
void job_progress(job_queue *q, const char *job_id, double fraction);

typedef struct {
  uint64_t done, failed, retried, timed_out, running;
} job_counts;
void job_queue_counts(job_queue *q, job_counts *out);
/* The same for each kind, in the order of job_queue_kinds(), and how many
 * of each are queued (waiting to run): out and queued have one entry a kind. */
void job_queue_kind_counts(job_queue *q, job_counts *out, uint64_t *queued);
/* The kinds this queue runs. */
int job_queue_kinds(job_queue *q, const char *const **kinds);

/* Jobs that are queued, running or failed (state NULL = all three; kind
 * NULL = any), at most limit, oldest first: each record with, for a running
 * job, "state": "running", "started_at" and "progress". */
int job_queue_list(job_queue *q, const char *state, const char *kind, int limit, json_t **out);

#endif
