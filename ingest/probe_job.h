/* The "probe" job: reads an original with media/ and stores what it is in
 * the evidence record ("media"). A file that is not media is a result
 * (status "unparseable"), not a failure. The result is also a "probed"
 * event in the item's chain of custody. */
#ifndef PROBE_JOB_H
#define PROBE_JOB_H

#include "idx.h"
#include "ledger.h"
#include "store.h"

typedef struct {
  idx *ix;
  store *st;
  int timeout_sec;
  ledger *lg; /* a "probed" event per result; NULL = none */
} probe_job_ctx;

int probe_job_run(void *ud, const char *job_id, const json_t *job);

#endif
