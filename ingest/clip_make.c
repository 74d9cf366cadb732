/* DESIGN: a clip is made on request, not as a queued job: a reviewer waits
 * for it (a copy-mode clip takes a fraction of a second; the HTTP layer
 * takes the wait off its event loop). It is made in the work directory,
 * hashed, committed to the store, then recorded with its event in one
 * write, exactly as the rendition jobs do, so a crash leaves either no
 * record (the next request makes it again; the partial file is swept at
 * start) or the whole of it. */
#include "clip_make.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clip.h"
#include "cu_limits.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "id.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

void clip_kind(const clip_request *q, char out[CLIP_KIND_LEN]) {
  snprintf(out, CLIP_KIND_LEN, "clip:%s:%lld:%lld", q->exact ? "exact" : "copy",
           (long long)q->start_ms, (long long)q->end_ms);
}

bool clip_kind_parse(const char *kind, clip_request *q) {
  char mode[8];
  long long a, b;
  int used = 0;
  if (sscanf(kind, "clip:%5[a-z]:%lld:%lld%n", mode, &a, &b, &used) != 3 || kind[used]) return false;
  if (strcmp(mode, "copy") && strcmp(mode, "exact")) return false;
  q->exact = !strcmp(mode, "exact");
  q->start_ms = a;
  q->end_ms = b;
  return true;
}

/* Clips being made now, by evidence and kind: a second request for one
 * waits on the condition instead of making it again. */
#define MAX_MAKING 64
static pthread_mutex_t making_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t making_cv = PTHREAD_COND_INITIALIZER;
static char making[MAX_MAKING][CU_ID_LEN + CLIP_KIND_LEN + 2];

static int find_making(const char *key) {
  for (int i = 0; i < MAX_MAKING; i++)
    if (!strcmp(making[i], key)) return i;
  return -1;
}

/* Claims key (waiting while someone else makes it); CU_EBUSY when too many
 * clips are being made at once. */
static int claim(const char *key) {
  pthread_mutex_lock(&making_mu);
  while (find_making(key) >= 0) pthread_cond_wait(&making_cv, &making_mu);
  int slot = find_making("");
  if (slot >= 0) snprintf(making[slot], sizeof making[slot], "%s", key);
  pthread_mutex_unlock(&making_mu);
  return slot >= 0 ? 0 : cu_error(CU_EBUSY, "%d clips are being made right now; try again shortly", MAX_MAKING);
}

static void release(const char *key) {
  pthread_mutex_lock(&making_mu);
  int slot = find_making(key);
  if (slot >= 0) making[slot][0] = '\0';
  pthread_cond_broadcast(&making_cv);
  pthread_mutex_unlock(&making_mu);
}

static int done_record(rendition_ctx *c, const char *evid, const char *kind, json_t **out) {
  json_t *r = NULL;
  int rc = idx_rendition_get(c->ix, evid, kind, &r);
  if (rc) return rc;
  const char *sha = cu_json_str(r, "sha256"), *state = cu_json_str(r, "state");
  if (state && !strcmp(state, "done") && sha && store_has(c->st, sha)) {
    *out = r;
    return 0;
  }
  json_decref(r);
  return CU_ENOTFOUND;
}

static bool has_video(const json_t *report) {
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(report, "streams"), i, s) {
    if (cu_json_str(s, "type") && !strcmp(cu_json_str(s, "type"), "video")) return true;
  }
  return false;
}

static int make(rendition_ctx *c, const char *evid, const json_t *ev_rec, const clip_request *q,
                const char *kind, const json_t *actor, const atomic_int *cancel, json_t **out) {
  const char *sha = cu_json_str(ev_rec, "sha256");
  if (!sha || !store_has(c->st, sha))
    return cu_error(CU_ENOTFOUND, "the object of evidence %s is missing", evid);
  char name[CU_ID_LEN + 16], tmp_id[CU_ID_LEN + 1];
  cu_id_new(tmp_id);
  snprintf(name, sizeof name, "%s.clip.mp4", tmp_id);
  char *out_path = cu_path_join(c->work_dir, name), *src = store_path(c->st, sha);
  media_clip_opts o = {.start_us = q->start_ms * 1000, .end_us = q->end_ms * 1000,
                       .mode = q->exact ? MEDIA_CLIP_EXACT : MEDIA_CLIP_COPY, .threads = c->threads};
  int64_t limit = c->time_limit_us;
  media_ctl ctl = {.deadline_us = limit > 0 ? cu_mono_us() + limit : 0, .cancel = cancel};
  json_t *rep = NULL, *rec = NULL;
  int64_t started = cu_now_us();
  int rc = media_clip(src, out_path, &o, &ctl, &rep);
  char hex[65];
  uint64_t size = 0;
  bool dedup = false;
  if (!rc) rc = cu_sha256_file(out_path, hex, &size);
  if (!rc) rc = store_commit(c->st, out_path, hex, size, &dedup);
  unlink(out_path);
  if (!rc) {
    rec = json_object();
    cu_json_set_str(rec, "kind", kind);
    cu_json_set_str(rec, "state", "done");
    cu_json_set_str(rec, "sha256", hex);
    cu_json_set_int(rec, "size", (int64_t)size);
    cu_json_set_str(rec, "content_type", has_video(rep) ? "video/mp4" : "audio/mp4");
    cu_json_set_str(rec, "source_sha256", sha);
    json_t *clip = json_object();
    cu_json_set_str(clip, "mode", q->exact ? "exact" : "copy");
    json_object_set_new(clip, "start_s", json_real((double)q->start_ms / 1000.0));
    json_object_set_new(clip, "end_s", json_real((double)q->end_ms / 1000.0));
    json_object_set_new(rec, "clip", clip);
    rendition_record_fill(rec, rep, started);
    if (actor) json_object_set(rec, "requested_by", (json_t *)actor);
    json_t *ev = json_object();
    cu_json_set_str(ev, "type", "rendition");
    cu_json_set_str(ev, "evidence", evid);
    cu_json_set_str(ev, "kind", kind);
    cu_json_set_str(ev, "sha256", hex);
    cu_json_set_int(ev, "size", (int64_t)size);
    cu_json_set_str(ev, "source_sha256", sha);
    json_object_set(ev, "clip", clip);
    json_object_set(ev, "check", json_object_get(rep, "check"));
    if (actor) json_object_set(ev, "actor", (json_t *)actor);
    idx_batch *b = idx_batch_new(c->ix);
    if (!q->exact && has_video(rep) && c->jq) {
      /* The packets are checked; the decoded frames are checked against
       * the original's frame hashes later, by a job (it decodes). */
      json_t *f = json_object(), *fc = json_object();
      cu_json_set_str(f, "evidence", evid);
      cu_json_set_str(f, "clip", kind);
      job_batch_add_with(c->jq, b, "clip_check", f, NULL);
      json_decref(f);
      cu_json_set_str(fc, "state", "queued");
      json_object_set_new(rec, "frame_check", fc);
    }
    idx_batch_put_rendition(b, evid, kind, rec);
    rc = c->lg ? ledger_commit(c->lg, b, &ev, 1, NULL) : idx_batch_commit(c->ix, b);
    idx_batch_free(b);
    json_decref(ev);
    if (!rc && c->jq) job_queue_kick(c->jq);
  }
  if (!rc) {
    cu_info("evidence %s: made %s (%s, %llu bytes)", evid, kind, hex, (unsigned long long)size);
    *out = rec;
  } else {
    json_decref(rec);
  }
  json_decref(rep);
  free(out_path);
  free(src);
  return rc;
}

int clip_get_or_make(rendition_ctx *c, const char *evidence_id, const clip_request *q,
                     const json_t *actor, const atomic_int *cancel, json_t **rec) {
  char kind[CLIP_KIND_LEN], key[CU_ID_LEN + CLIP_KIND_LEN + 2];
  clip_kind(q, kind);
  int rc = done_record(c, evidence_id, kind, rec);
  if (rc != CU_ENOTFOUND) return rc;
  json_t *ev_rec = NULL;
  if ((rc = idx_evidence_get(c->ix, evidence_id, &ev_rec))) return rc;
  snprintf(key, sizeof key, "%s/%s", evidence_id, kind);
  if ((rc = claim(key))) {
    json_decref(ev_rec);
    return rc;
  }
  rc = done_record(c, evidence_id, kind, rec); /* made while we waited? */
  if (rc == CU_ENOTFOUND) rc = make(c, evidence_id, ev_rec, q, kind, actor, cancel, rec);
  release(key);
  json_decref(ev_rec);
  return rc;
}

/* Records the frame check's outcome on the clip's record, with a
 * clip_checked event for a verdict (passed or failed). */
static int record_check(rendition_ctx *c, const char *evid, const char *kind, json_t *fc) {
  json_t *rec = NULL;
  int rc = idx_rendition_get(c->ix, evid, kind, &rec);
  if (rc) return rc;
  json_object_set(rec, "frame_check", fc);
  idx_batch *b = idx_batch_new(c->ix);
  idx_batch_put_rendition(b, evid, kind, rec);
  const char *state = cu_json_str(fc, "state");
  if (c->lg && strcmp(state, "not_possible")) {
    json_t *ev = json_object();
    cu_json_set_str(ev, "type", "clip_checked");
    cu_json_set_str(ev, "evidence", evid);
    cu_json_set_str(ev, "kind", kind);
    cu_json_set_str(ev, "sha256", cu_json_str(rec, "sha256"));
    cu_json_set_str(ev, "result", state);
    json_object_set(ev, "frames_checked", json_object_get(fc, "frames_checked"));
    cu_json_set_str(ev, "error", cu_json_str(fc, "error"));
    rc = ledger_commit(c->lg, b, &ev, 1, NULL);
    json_decref(ev);
  } else {
    rc = idx_batch_commit(c->ix, b);
  }
  idx_batch_free(b);
  json_decref(rec);
  return rc;
}

int clip_check_job_run(void *ud, const char *job_id, const json_t *job) {
  rendition_ctx *c = ud;
  const char *evid = cu_json_str(job, "evidence"), *kind = cu_json_str(job, "clip");
  json_t *clip = NULL, *fh = NULL, *rep = NULL, *fc = json_object();
  char *clip_path = NULL, *fh_path = NULL;
  int rc = evid && kind ? idx_rendition_get(c->ix, evid, kind, &clip) : CU_EINVAL;
  if (rc) goto done;
  const char *prev = cu_json_str(json_object_get(clip, "frame_check"), "state");
  if (prev && (!strcmp(prev, "passed") || !strcmp(prev, "failed"))) goto done; /* a re-run */
  rc = idx_rendition_get(c->ix, evid, "framehash", &fh);
  const char *fstate = rc ? NULL : cu_json_str(fh, "state");
  if (rc == CU_ENOTFOUND || (fstate && (!strcmp(fstate, "failed") || !strcmp(fstate, "not_applicable")))) {
    cu_json_set_str(fc, "state", "not_possible");
    cu_json_set_str(fc, "reason", "the original has no frame hashes to compare with");
    rc = record_check(c, evid, kind, fc);
    goto done;
  }
  if (rc) goto done;
  if (!fstate || strcmp(fstate, "done")) {
    rc = cu_error(CU_EBUSY, "waiting for the original's frame hashes (they are %s)", fstate ? fstate : "queued");
    goto done;
  }
  clip_path = store_path(c->st, cu_json_str(clip, "sha256"));
  fh_path = store_path(c->st, cu_json_str(fh, "sha256"));
  media_ctl ctl = {.deadline_us = c->time_limit_us > 0 ? cu_mono_us() + c->time_limit_us : 0,
                   .cancel = c->jq ? job_queue_stopping(c->jq) : NULL};
  rc = media_clip_check_frames(clip_path, fh_path, &ctl, &rep);
  if (rc == 0 || rc == CU_ECORRUPT) {
    if (rep) json_object_update(fc, rep);
    cu_json_set_str(fc, "state", rc ? "failed" : "passed");
    if (rc) {
      cu_json_set_str(fc, "error", cu_errmsg());
      cu_alarm("evidence %s: the frames of %s differ from the original's: %s", evid, kind, cu_errmsg());
    }
    cu_json_set_time(fc, "checked_at", cu_now_us());
    rc = record_check(c, evid, kind, fc);
  } else if (rc == CU_EUNSUPPORTED) {
    cu_json_set_str(fc, "state", "not_possible");
    cu_json_set_str(fc, "reason", cu_errmsg());
    rc = record_check(c, evid, kind, fc);
  }
done:
  free(clip_path);
  free(fh_path);
  json_decref(rep);
  json_decref(fc);
  json_decref(fh);
  json_decref(clip);
  return rc;
}
