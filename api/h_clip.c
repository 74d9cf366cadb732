/* GET /v1/evidence/{id}/clip?start=&end=&mode=copy|exact: a part of a
 * recording as MP4, made once and then served like any rendition (Range,
 * ETag, Repr-Digest, an "accessed" event).
 *
 * A clip not made yet is made on a thread of its own while the connection
 * is suspended: an exact clip can take a while, and the libmicrohttpd
 * thread that holds this connection serves many others. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "clip_make.h"
#include "cu_limits.h"
#include "err.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

#define CLIP_ROLES (ROLE_REVIEWER | ROLE_LEGAL | ROLE_ADMIN)

typedef struct {
  req *r;
  clip_request q;
  json_t *actor, *rec;
  int rc;
  char *err;
} clip_work;

static int answer(req *r, json_t *rec, int rc, const char *err) {
  if (rc) {
    if (err) cu_error(rc, "%s", err);
    if (atomic_load(&r->a->stopping))
      return respond_status(r, 503, "unavailable", "the server is shutting down, so the clip was not finished; ask again when it is back", NULL);
    if (rc == CU_ECORRUPT)
      return respond_status(r, 422, "unprocessable", cu_errmsg(), NULL);
    return respond_error(r, rc, NULL);
  }
  json_t *ev = NULL;
  if (idx_evidence_get(r->a->ix, r->param[0], &ev)) ev = json_object();
  const char *orig = cu_json_str(ev, "filename");
  const json_t *clip = json_object_get(rec, "clip");
  char fname[CU_MAX_FILENAME + 96];
  snprintf(fname, sizeof fname, "%s.clip-%s-%.3f-%.3f.mp4", orig && *orig ? orig : r->param[0],
           cu_json_str(clip, "mode"), json_number_value(json_object_get(clip, "start_s")),
           json_number_value(json_object_get(clip, "end_s")));
  serve_item it = {r->param[0], cu_json_str(rec, "sha256"), cu_json_str(rec, "content_type"), fname,
                   cu_json_str(rec, "kind")};
  int out = serve_object(r, &it);
  json_decref(ev);
  return out;
}

static int resumed(req *r) {
  clip_work *w = r->state;
  r->state = NULL;
  int rc = answer(r, w->rec, w->rc, w->err);
  json_decref(w->rec);
  json_decref(w->actor);
  free(w->err);
  free(w);
  return rc;
}

static void *work_main(void *arg) {
  clip_work *w = arg;
  req *r = w->r;
  w->rc = clip_get_or_make(r->a->rend, r->param[0], &w->q, w->actor, &r->a->stopping, &w->rec);
  if (w->rc) w->err = cu_xstrdup(cu_errmsg());
  api *a = r->a;
  r->resumed = resumed;
  MHD_resume_connection(r->conn);
  atomic_fetch_sub(&a->suspended, 1);
  return NULL;
}

static int parse_time(req *r, const char *name, int64_t *ms) {
  const char *v = req_query(r, name);
  int64_t us;
  char msg[300];
  if (!v) {
    snprintf(msg, sizeof msg, "%s is required: seconds from the start of the recording (90.5) or HH:MM:SS.mmm", name);
    respond_status(r, 400, "invalid", msg, NULL);
    return CU_EINVAL;
  }
  if (cu_parse_clock(v, &us)) {
    snprintf(msg, sizeof msg, "%s: %s", name, cu_errmsg());
    respond_status(r, 400, "invalid", msg, NULL);
    return CU_EINVAL;
  }
  *ms = (us + 500) / 1000; /* clips are named to the millisecond */
  return 0;
}

static int clip(req *r) {
  if (auth_may_read_evidence(r, r->param[0])) return 0;
  clip_request q = {0};
  const char *mode = req_query(r, "mode");
  if (mode && strcmp(mode, "copy") && strcmp(mode, "exact"))
    return respond_status(r, 400, "invalid", "mode must be copy (the original's packets, from the keyframe at or before start) or exact (re-encoded, frame-accurate)", NULL);
  q.exact = mode && !strcmp(mode, "exact");
  if (parse_time(r, "start", &q.start_ms) || parse_time(r, "end", &q.end_ms)) return 0;
  if (q.end_ms <= q.start_ms)
    return respond_status(r, 400, "invalid", "end must be after start", NULL);
  json_t *ev = NULL;
  int rc = idx_evidence_get(r->a->ix, r->param[0], &ev);
  if (rc) return respond_error(r, rc, NULL);
  if (evidence_gone(r, ev)) return json_decref(ev), 0;
  json_decref(ev);

  char kind[CLIP_KIND_LEN];
  clip_kind(&q, kind);
  json_t *rec = NULL;
  rc = idx_rendition_get(r->a->ix, r->param[0], kind, &rec);
  if (!rc && !strcmp(cu_json_str(rec, "state") ? cu_json_str(rec, "state") : "", "done") &&
      store_has(r->a->st, cu_json_str(rec, "sha256"))) {
    rc = answer(r, rec, 0, NULL); /* made before: served from here */
    json_decref(rec);
    return rc;
  }
  json_decref(rec);
  clip_work *w = cu_xcalloc(1, sizeof *w);
  w->r = r;
  w->q = q;
  w->actor = auth_actor(&r->who);
  atomic_fetch_add(&r->a->suspended, 1);
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  bool started = !atomic_load(&r->a->stopping);
  if (started) {
    r->state = w;
    r->suspended = true;
    MHD_suspend_connection(r->conn);
    if (pthread_create(&t, &at, work_main, w)) {
      MHD_resume_connection(r->conn);
      r->state = NULL;
      r->suspended = false;
      started = false;
    }
  }
  pthread_attr_destroy(&at);
  if (started) return 0;
  atomic_fetch_sub(&r->a->suspended, 1);
  json_decref(w->actor);
  free(w);
  return respond_status(r, 503, "unavailable", "the server is shutting down; ask again when it is back", NULL);
}

const route clip_routes[] = {
    {"GET", "/v1/evidence/{}/clip", CLIP_ROLES, 0, NULL, NULL, clip, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
