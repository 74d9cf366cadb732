/* The rendition jobs: "master", "access", "framehash" and "poster" make an
 * original's derived copies with media/, each its own write-once object
 * (deduplicated by hash) with a record (idx rendition) and a "rendition"
 * event in the item's chain of custody, written together.
 *
 * A record's "state" is one of
 *   queued           the job is waiting (set when the item is ingested;
 *                    after a failed attempt, with that attempt's "error")
 *   running          a worker has it ("started_at", "job")
 *   done             "sha256", "size", "content_type", "source_sha256",
 *                    "params", "report", "libavformat", "libavcodec",
 *                    "started_at", "finished_at"
 *   not_applicable   nothing to make ("reason": not media, no video for a
 *                    poster, a still image needs no access copy)
 *   failed           "error": the reason, for a person; a damaged original
 *                    or a failed lossless check fails at once, other
 *                    failures after the queue's attempts
 * A job's partial output lives in the work directory under the job's id
 * and is deleted when an attempt fails; rendition_work_sweep() clears what
 * a crash left there. */
#ifndef RENDITION_JOB_H
#define RENDITION_JOB_H

#include <stdint.h>

#include "idx.h"
#include "job.h"
#include "ledger.h"
#include "store.h"

typedef struct {
  idx *ix;
  store *st;
  ledger *lg;           /* NULL = no events */
  job_queue *jq;        /* progress and the stop flag; set after the queue opens */
  const char *work_dir; /* on the object store's file system */
  int access_max_side;  /* 0 = 1280 */
  int threads;          /* per media job; 0 = the number of cores */
  int64_t time_limit_us; /* the media work gives up before the queue's limit */
} rendition_ctx;

/* The kinds, NULL-terminated, in the order they are queued. */
extern const char *const rendition_kinds[];

/* The file name extension of a kind's output: "mkv", "mp4", "jpg", "txt". */
const char *rendition_extension(const char *kind);

int rendition_job_run(void *ud, const char *job_id, const json_t *job);
/* job_handler.on_failed: the record says failed, with the reason. */
void rendition_job_failed(void *ud, idx_batch *b, const char *job_id, const json_t *job,
                          const char *msg);
/* Queues the rendition jobs of a new item in b, each with a "queued"
 * record; the master's job is queued when the frame hashes are finished
 * (its check compares with them), in the same write as their record. */
void rendition_jobs_add(job_queue *q, idx_batch *b, const char *evidence_id);
/* Moves a media report into a derived copy's record (a rendition's or a
 * clip's): its "params" beside it, the report itself, the libraries'
 * versions, and when the work started and finished. */
void rendition_record_fill(json_t *rec, json_t *rep, int64_t started_us);
/* Deletes every file in the work directory (run before the workers start:
 * anything there is a partial output). */
int rendition_work_sweep(const char *work_dir);

#endif
