/* The "export" job: runs an export request (an export record, see
 * idx_export_*) to a finished bag with archive/export.
 *
 * An export record's "state" is one of
 *   queued   waiting for a worker, or for what the bag needs (a requested
 *            rendition or an original's time-stamp still being made):
 *            "waiting_for" says what, and the job comes back later
 *   running  a worker is building the bag ("started_at"; progress from
 *            export_job_progress while it runs)
 *   done     the bag is in HOME/exports/<id>/: "bag", "finished_at",
 *            "payload_oxum", "tar_size", "tagmanifest_sha256", "items",
 *            "files", "bytes", "tree_size"; written in the same ledger
 *            commit as the "exported" events
 *   failed   "error": why (a clip that cannot be made, an object that no
 *            longer hashes as recorded, an item deleted meanwhile, ...)
 *
 * Clips in the selection are made first (clip_get_or_make), so a clip that
 * cannot be made fails the export with its reason before any copying. A
 * re-run (after kill -9, or a stop) starts the bag again from nothing: a
 * .part directory left behind is removed. */
#ifndef EXPORT_JOB_H
#define EXPORT_JOB_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "gov.h"
#include "idx.h"
#include "job.h"
#include "ledger.h"
#include "rendition_job.h"
#include "store.h"
#include "tsa.h"

/* Exports built at once that show progress (more run, without it). */
#define EXPORT_JOB_SLOTS 16

typedef struct {
  char id[CU_ID_LEN + 1]; /* "" = free */
  uint64_t done, total;
} export_job_slot;

typedef struct export_job_ctx {
  idx *ix;
  store *st;
  ledger *lg;
  tsa *ts;
  rendition_ctx *rend;      /* makes the clips */
  job_queue *jq;            /* set after the queue opens */
  const char *home;         /* the bags go to HOME/exports */
  const char *organization; /* bag-info Source-Organization; NULL = "Custos" */
  gov *gov;                 /* when exports need approval: the two-person request */
  bool needs_approval;
  /* Exports being built now (initialise with PTHREAD_MUTEX_INITIALIZER). */
  pthread_mutex_t mu;
  export_job_slot running[EXPORT_JOB_SLOTS];
} export_job_ctx;

/* Writes a new export record (state queued) and its job in one batch; when
 * exports need approval, the record waits (state awaiting_approval, *rec
 * has "request": the pending request's id) and the job is queued by the
 * approval (export_job_decided).
 * selection is {evidence?: [ids], renditions?: [kinds], clips?: [{evidence,
 * start, end, mode, start_ms, end_ms}]}, already checked by the caller;
 * actor is who asked. *rec is the new record. */
int export_job_request(export_job_ctx *c, const char *case_id, const json_t *selection,
                       const json_t *actor, json_t **rec);

/* gov_export_hook: an approved export gets its job, a refused one the
 * state "refused", in the decision's batch. */
void export_job_decided(export_job_ctx *c, idx_batch *b, const char *export_id, bool approved);

int export_job_run(void *ud, const char *job_id, const json_t *job);
/* job_handler.on_failed: the export record says failed, with the reason. */
void export_job_failed(void *ud, idx_batch *b, const char *job_id, const json_t *job,
                       const char *msg);
/* Removes partial bags left by a crash (before the workers start). */
int export_job_sweep(export_job_ctx *c);
/* Bytes copied of the total, while the export is being built; false when
 * it is not running. */
bool export_job_progress(export_job_ctx *c, const char *export_id, uint64_t *done, uint64_t *total);

#endif
