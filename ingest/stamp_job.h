/* The time-stamp jobs: "stamp" gets an RFC 3161 token for an original's
 * SHA-256 and records a "timestamped" event in its chain of custody;
 * "stamp_sth" gets one for a signed tree head (the SHA-256 of its signed
 * note). Each is a job so that a TSA that is down or slow never holds up an
 * upload: the job is retried until the TSA answers. Both are safe to
 * repeat: a digest that already has a token is not stamped again. */
#ifndef STAMP_JOB_H
#define STAMP_JOB_H

#include "idx.h"
#include "job.h"
#include "ledger.h"
#include "tsa.h"

typedef struct {
  idx *ix;
  ledger *lg;
  tsa *ts;
  const char *tsa_name; /* "built-in" or the external TSA's URL, for the event */
  job_queue *jq;        /* for stamp_job_sth_hook */
} stamp_job_ctx;

int stamp_job_run(void *ud, const char *job_id, const json_t *job);
int stamp_sth_job_run(void *ud, const char *job_id, const json_t *job);
/* A ledger_sth_hook (ud = the stamp_job_ctx) that queues "stamp_sth". */
void stamp_job_sth_hook(void *ud, idx_batch *b, const json_t *sth);

#endif
