/* DESIGN: the export job does the parts of an export that belong to
 * ingest (making clips, waiting its turn) and leaves the bag to
 * archive/export.
 *
 * Waiting without holding a worker: when what the bag needs is not there
 * yet (a master still transcoding, a time-stamp while the TSA is down), the
 * job does not sleep in its worker (two exports waiting on two workers
 * would starve the very rendition jobs they wait for). It records what it
 * waits for on the export record, queues a new export job that may not run
 * before a delay (1 s doubling to 30 s), and ends; so waiting costs no
 * attempt and no thread. After EXPORT_WAIT_MAX it gives up.
 *
 * One attempt at a time per export: the job queue's watchdog may abandon a
 * stuck attempt and start another while the first still runs; the table of
 * running exports refuses the second, so two attempts never write the same
 * .part directory. */
#include "export_job.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clip_make.h"
#include "err.h"
#include "export.h"
#include "id.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

/* An export waits this long for renditions and time-stamps, then fails. */
#define EXPORT_WAIT_MAX (24LL * 3600 * 1000000)
#define WAIT_FIRST (1LL * 1000000)
#define WAIT_MAX (30LL * 1000000)

static void exports_dir(const export_job_ctx *c, char out[PATH_MAX]) {
  snprintf(out, PATH_MAX, "%s/exports", c->home);
}

int export_job_request(export_job_ctx *c, const char *case_id, const json_t *selection,
                       const json_t *actor, json_t **rec) {
  char id[CU_ID_LEN + 1], job[CU_ID_LEN + 1];
  cu_id_new(id);
  json_t *r = json_object();
  cu_json_set_str(r, "id", id);
  cu_json_set_str(r, "case", case_id);
  cu_json_set_str(r, "state", "queued");
  json_object_set(r, "selection", (json_t *)selection);
  json_object_set(r, "requested_by", (json_t *)actor);
  cu_json_set_time(r, "created_at", cu_now_us());
  idx_batch *b = idx_batch_new(c->ix);
  int rc;
  if (c->needs_approval && c->gov) {
    json_t *q = NULL, *ev = NULL;
    cu_json_set_str(r, "state", "awaiting_approval");
    rc = gov_batch_request_export(c->gov, b, id, case_id, actor, &q, &ev);
    if (!rc) {
      cu_json_set_str(r, "request", cu_json_str(q, "id"));
      idx_batch_put_export(b, r);
      rc = ledger_commit(c->lg, b, &ev, 1, NULL);
    }
    json_decref(q);
    json_decref(ev);
    idx_batch_free(b);
    if (rc) {
      json_decref(r);
      return rc;
    }
    cu_info("export %s of case %s requested; it waits for a second legal user's approval (request %s)", id,
            case_id, cu_json_str(r, "request"));
    *rec = r;
    return 0;
  }
  json_t *f = json_object();
  cu_json_set_str(f, "export", id);
  job_batch_add_with(c->jq, b, "export", f, job);
  json_decref(f);
  cu_json_set_str(r, "job", job);
  idx_batch_put_export(b, r);
  rc = idx_batch_commit(c->ix, b);
  idx_batch_free(b);
  if (rc) {
    json_decref(r);
    return rc;
  }
  job_queue_kick(c->jq);
  cu_info("export %s of case %s requested (job %s)", id, case_id, job);
  *rec = r;
  return 0;
}

void export_job_decided(export_job_ctx *c, idx_batch *b, const char *export_id, bool approved) {
  json_t *r = NULL;
  if (idx_export_get(c->ix, export_id, &r)) {
    cu_warn("export %s was decided on but has no record", export_id);
    return;
  }
  if (approved) {
    char job[CU_ID_LEN + 1];
    json_t *f = json_object();
    cu_json_set_str(f, "export", export_id);
    job_batch_add_with(c->jq, b, "export", f, job);
    json_decref(f);
    cu_json_set_str(r, "job", job);
    cu_json_set_str(r, "state", "queued");
  } else {
    cu_json_set_str(r, "state", "refused");
  }
  idx_batch_put_export(b, r);
  json_decref(r);
}

/* ---- the running table --------------------------------------------------- */

static int claim_slot(export_job_ctx *c, const char *id, int *slot) {
  pthread_mutex_lock(&c->mu);
  int free_slot = -1, rc = 0;
  for (int i = 0; i < EXPORT_JOB_SLOTS; i++) {
    if (!strcmp(c->running[i].id, id)) rc = CU_EBUSY;
    if (!c->running[i].id[0] && free_slot < 0) free_slot = i;
  }
  if (!rc && free_slot >= 0) {
    snprintf(c->running[free_slot].id, sizeof c->running[free_slot].id, "%s", id);
    c->running[free_slot].done = c->running[free_slot].total = 0;
  }
  pthread_mutex_unlock(&c->mu);
  *slot = rc ? -1 : free_slot;
  if (rc) return cu_error(CU_EBUSY, "an earlier attempt at export %s is still running", id);
  if (free_slot < 0)
    cu_warn("export %s: more than %d exports at once; this one shows no progress", id,
            EXPORT_JOB_SLOTS);
  return 0;
}

static void release_slot(export_job_ctx *c, int slot) {
  if (slot < 0) return;
  pthread_mutex_lock(&c->mu);
  c->running[slot].id[0] = '\0';
  pthread_mutex_unlock(&c->mu);
}

bool export_job_progress(export_job_ctx *c, const char *export_id, uint64_t *done,
                         uint64_t *total) {
  bool found = false;
  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < EXPORT_JOB_SLOTS && !found; i++) {
    if (strcmp(c->running[i].id, export_id)) continue;
    *done = c->running[i].done;
    *total = c->running[i].total;
    found = true;
  }
  pthread_mutex_unlock(&c->mu);
  return found;
}

typedef struct {
  export_job_ctx *c;
  int slot;
  const char *job_id;
} progress_ud;

static void on_progress(void *ud, uint64_t done, uint64_t total) {
  progress_ud *p = ud;
  if (p->slot >= 0) {
    pthread_mutex_lock(&p->c->mu);
    p->c->running[p->slot].done = done;
    p->c->running[p->slot].total = total;
    pthread_mutex_unlock(&p->c->mu);
  }
  job_progress(p->c->jq, p->job_id, total ? (double)done / (double)total : 0);
}

/* ---- the job --------------------------------------------------------------- */

static int put_record(export_job_ctx *c, json_t *rec) {
  idx_batch *b = idx_batch_new(c->ix);
  idx_batch_put_export(b, rec);
  int rc = idx_batch_commit(c->ix, b);
  idx_batch_free(b);
  return rc;
}

/* Not ready: the record says what it waits for, and a new job comes back
 * after a delay. */
static int wait_again(export_job_ctx *c, json_t *rec, const char *why) {
  int64_t now = cu_now_us(), created = 0;
  cu_time_parse_rfc3339(cu_json_str(rec, "created_at") ? cu_json_str(rec, "created_at") : "",
                        &created);
  if (created && now - created > EXPORT_WAIT_MAX)
    return cu_error(CU_EUNSUPPORTED, "gave up after %lld hours %s",
                    (long long)(EXPORT_WAIT_MAX / 3600000000LL), why);
  int64_t waits = cu_json_int(rec, "waits", 0) + 1;
  int64_t delay = WAIT_FIRST << (waits - 1 < 5 ? waits - 1 : 5);
  if (delay > WAIT_MAX) delay = WAIT_MAX;
  char job[CU_ID_LEN + 1];
  idx_batch *b = idx_batch_new(c->ix);
  json_t *f = json_object();
  cu_json_set_str(f, "export", cu_json_str(rec, "id"));
  cu_json_set_int(f, "not_before_us", now + delay);
  job_batch_add_with(c->jq, b, "export", f, job);
  json_decref(f);
  cu_json_set_str(rec, "state", "queued");
  cu_json_set_str(rec, "waiting_for", why);
  cu_json_set_int(rec, "waits", waits);
  cu_json_set_str(rec, "job", job);
  idx_batch_put_export(b, rec);
  int rc = idx_batch_commit(c->ix, b);
  idx_batch_free(b);
  if (!rc)
    cu_info("export %s: %s; looking again in %.0f s", cu_json_str(rec, "id"), why,
            (double)delay / 1e6);
  return rc;
}

/* Errors no retry can fix become verdicts (the job fails at once). */
static int final(int rc) {
  /* the message (cu_errmsg) stays: it says why */
  return rc == CU_ENOTFOUND || rc == CU_EINVAL || rc == CU_EUNSUPPORTED || rc == CU_EGONE
             ? CU_EUNSUPPORTED
             : rc;
}

static int make_clips(export_job_ctx *c, const json_t *rec, json_t *made) {
  const atomic_int *stop = job_queue_stopping(c->jq);
  const json_t *actor = json_object_get(rec, "requested_by");
  size_t i;
  json_t *cl;
  json_array_foreach(json_object_get(json_object_get(rec, "selection"), "clips"), i, cl) {
    const char *ev = cu_json_str(cl, "evidence"), *mode = cu_json_str(cl, "mode");
    clip_request q = {.exact = mode && !strcmp(mode, "exact"),
                      .start_ms = cu_json_int(cl, "start_ms", -1),
                      .end_ms = cu_json_int(cl, "end_ms", -1)};
    if (!ev || q.start_ms < 0 || q.end_ms <= q.start_ms)
      return cu_error(CU_EUNSUPPORTED, "the selection's clip %zu is malformed", i + 1);
    json_t *crec = NULL;
    int rc = c->rend ? clip_get_or_make(c->rend, ev, &q, actor, stop, &crec)
                     : cu_error(CU_EUNSUPPORTED, "clips cannot be made here");
    if (rc) {
      if (atomic_load(stop)) return rc; /* runs again at the next start */
      char kind[CLIP_KIND_LEN];
      clip_kind(&q, kind);
      cu_error_wrap(rc, "the clip %s of evidence %s cannot be made", kind, ev);
      return rc == CU_ECORRUPT                                   ? rc
             : rc == CU_EBUSY || rc == CU_EIO || rc == CU_ENOSPC ? rc
                                                                 : final(rc);
    }
    json_t *m = json_object();
    cu_json_set_str(m, "evidence", ev);
    cu_json_set_str(m, "kind", cu_json_str(crec, "kind"));
    json_array_append_new(made, m);
    json_decref(crec);
  }
  return 0;
}

int export_job_run(void *ud, const char *job_id, const json_t *job) {
  export_job_ctx *c = ud;
  const char *eid = cu_json_str(job, "export");
  json_t *rec = NULL, *clips = json_array();
  export_result res = {0};
  int slot = -1;
  bool marked = false; /* the record says running */
  char dir[PATH_MAX];
  exports_dir(c, dir);
  int rc = idx_export_get(c->ix, eid ? eid : "", &rec);
  if (rc) {
    rc = final(rc);
    goto done;
  }
  const char *state = cu_json_str(rec, "state");
  if (state && (!strcmp(state, "done") || !strcmp(state, "failed")))
    goto done; /* a re-run after its end */
  const char *recjob = cu_json_str(rec, "job");
  if (recjob && strcmp(recjob, job_id)) {
    cu_warn("export %s: job %s is not the export's current job (%s); nothing to do", eid, job_id,
            recjob);
    goto done;
  }
  if ((rc = claim_slot(c, eid, &slot))) goto done;
  cu_json_set_str(rec, "state", "running");
  if (!json_object_get(rec, "started_at")) cu_json_set_time(rec, "started_at", cu_now_us());
  if ((rc = put_record(c, rec))) goto done;
  marked = true;

  if ((rc = make_clips(c, rec, clips))) goto done;
  progress_ud pu = {c, slot, job_id};
  export_env env = {.ix = c->ix,
                    .st = c->st,
                    .lg = c->lg,
                    .ts = c->ts,
                    .exports_dir = dir,
                    .organization = c->organization,
                    .cancel = job_queue_stopping(c->jq),
                    .progress = on_progress,
                    .progress_ud = &pu};
  rc = export_build(&env, rec, clips, &res);
  if (rc == CU_EBUSY && !atomic_load(job_queue_stopping(c->jq))) {
    char why[1024];
    snprintf(why, sizeof why, "%s", cu_errmsg());
    rc = wait_again(c, rec, why);
    goto done;
  }
  if (rc) {
    if (rc != CU_ECORRUPT && !atomic_load(job_queue_stopping(c->jq))) rc = final(rc);
    goto done;
  }
  json_t *d = NULL;
  if ((rc = export_commit(&env, rec, &res, &d))) goto done;
  cu_info("export %s done: %s (%zu items, %s bytes.files, tar %lld bytes)", eid, res.bag,
          res.nitems, cu_json_str(d, "payload_oxum"), (long long)res.tar_size);
  json_decref(d);
done:
  if (rc && marked && rc != CU_ECORRUPT && rc != CU_EUNSUPPORTED &&
      !atomic_load(job_queue_stopping(c->jq))) {
    /* The queue tries again later (or fails it after the last attempt):
     * until then the export is waiting, not running. */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cu_errmsg());
    cu_json_set_str(rec, "state", "queued");
    put_record(c, rec);
    cu_error(rc, "%s", msg);
  }
  release_slot(c, slot);
  export_result_release(&res);
  json_decref(rec);
  json_decref(clips);
  return rc;
}

void export_job_failed(void *ud, idx_batch *b, const char *job_id, const json_t *job,
                       const char *msg) {
  export_job_ctx *c = ud;
  const char *eid = cu_json_str(job, "export");
  json_t *rec = NULL;
  if (!eid || idx_export_get(c->ix, eid, &rec)) return;
  cu_json_set_str(rec, "state", "failed");
  cu_json_set_str(rec, "error", msg);
  cu_json_set_time(rec, "finished_at", cu_now_us());
  json_object_del(rec, "waiting_for");
  idx_batch_put_export(b, rec);
  json_decref(rec);
  char dir[PATH_MAX];
  exports_dir(c, dir);
  export_remove_files(dir, eid);
  cu_err("export %s failed: %s", eid, msg);
}

int export_job_sweep(export_job_ctx *c) {
  char dir[PATH_MAX];
  exports_dir(c, dir);
  return export_sweep(dir);
}
