/* Rendition jobs: one handler for the four kinds.
 *
 * DESIGN
 * A job is safe to repeat. A record already "done" (its object present)
 * ends a re-run at once; another item with the same original that already
 * has this rendition lends it (the bytes would be the same: masters are
 * bit-exact, and the rest would only be made again). The output is made
 * in the work directory, hashed, committed to the store (which links it
 * into place or finds the bytes already there), and only then recorded,
 * with its ledger event in the same write. A crash at any point leaves
 * either no record (the job runs again and the partial file is swept) or
 * the whole of it. */
#include "rendition_job.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "err.h"
#include "framehash.h"
#include "fsutil.h"
#include "hash.h"
#include "log.h"
#include "master.h"
#include "poster.h"
#include "timeu.h"
#include "banned.h"

const char *const rendition_kinds[] = {"framehash", "master", "access", "poster", NULL};

/* The media work stops this long before the queue's own limit, so that it
 * ends cleanly (and deletes its partial output) rather than being abandoned. */
#define MARGIN_US (30LL * 1000 * 1000)
/* Items of the same device looked at for a complete sibling recording. */
#define SIBLINGS_LOOKED_AT 50

static const char *content_type(const char *kind, const json_t *report) {
  bool has_video = json_integer_value(json_object_get(report, "width")) > 0;
  if (!strcmp(kind, "framehash")) return "text/plain; charset=utf-8";
  if (!strcmp(kind, "poster")) return "image/jpeg";
  if (!strcmp(kind, "access")) return has_video ? "video/mp4" : "audio/mp4";
  /* master: video if any stream is */
  json_t *s;
  size_t i;
  json_array_foreach(json_object_get(report, "streams"), i, s) {
    const char *t = cu_json_str(s, "type"), *a = cu_json_str(s, "action");
    if (t && a && !strcmp(t, "video") && strcmp(a, "dropped")) return "video/x-matroska";
  }
  return "audio/x-matroska";
}

const char *rendition_extension(const char *kind) {
  if (!strcmp(kind, "master")) return "mkv";
  if (!strcmp(kind, "access")) return "mp4";
  if (!strcmp(kind, "poster")) return "jpg";
  return "txt";
}

static json_t *new_record(const char *kind, const char *state, const char *source_sha) {
  json_t *r = json_object();
  cu_json_set_str(r, "kind", kind);
  cu_json_set_str(r, "state", state);
  if (source_sha) cu_json_set_str(r, "source_sha256", source_sha);
  return r;
}

/* The master's check compares with the original's frame hashes, so the
 * master is queued when the frame hashes are finished (done, none, or
 * failed), in the same write. */
static void queue_master(job_queue *q, idx_batch *b, const char *evid) {
  char id[CU_ID_LEN + 1];
  if (!q) return;
  job_batch_add(q, b, "master", evid, id);
  json_t *r = new_record("master", "queued", NULL);
  cu_json_set_str(r, "job", id);
  idx_batch_put_rendition(b, evid, "master", r);
  json_decref(r);
}

static bool finished(const char *state) {
  return state && (!strcmp(state, "done") || !strcmp(state, "not_applicable") || !strcmp(state, "failed"));
}

static int put_record(rendition_ctx *c, const char *evid, const char *kind, const json_t *rec,
                      json_t *event) {
  idx_batch *b = idx_batch_new(c->ix);
  idx_batch_put_rendition(b, evid, kind, rec);
  if (!strcmp(kind, "framehash") && finished(cu_json_str(rec, "state"))) queue_master(c->jq, b, evid);
  int rc = event && c->lg ? ledger_commit(c->lg, b, &event, 1, NULL) : idx_batch_commit(c->ix, b);
  idx_batch_free(b);
  /* No kick: this worker claims the next pending job as soon as it returns. */
  return rc;
}

void rendition_record_fill(json_t *rec, json_t *rep, int64_t started_us) {
  json_t *params = json_object_get(rep, "params");
  json_object_set_new(rec, "params", params ? json_incref(params) : json_object());
  json_object_del(rep, "params");
  json_object_set(rec, "report", rep);
  cu_json_set_str(rec, "libavformat", media_libavformat_version());
  cu_json_set_str(rec, "libavcodec", media_libavcodec_version());
  cu_json_set_time(rec, "started_at", started_us);
  cu_json_set_time(rec, "finished_at", cu_now_us());
}

static json_t *rendition_event(const char *evid, const json_t *rec) {
  json_t *ev = json_object();
  cu_json_set_str(ev, "type", "rendition");
  cu_json_set_str(ev, "evidence", evid);
  static const char *const copied[] = {"kind", "sha256", "size", "source_sha256", "reused_from"};
  for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
    json_t *v = json_object_get(rec, copied[i]);
    if (v) json_object_set(ev, copied[i], v);
  }
  return ev;
}

typedef struct {
  rendition_ctx *c;
  const char *evid, *kind;
  json_t *found; /* a done record of another item, with its id */
} lend_ctx;

static int lend_one(const char *id, json_t *rec, void *ud) {
  lend_ctx *l = ud;
  (void)rec;
  if (!strcmp(id, l->evid)) return 0;
  json_t *r = NULL;
  if (idx_rendition_get(l->c->ix, id, l->kind, &r)) return 0;
  const char *state = cu_json_str(r, "state"), *sha = cu_json_str(r, "sha256");
  if (state && !strcmp(state, "done") && sha && store_has(l->c->st, sha)) {
    cu_json_set_str(r, "reused_from", id);
    l->found = r;
    return 1;
  }
  json_decref(r);
  return 0;
}

/* The done record of another item with the same original, or NULL. */
static json_t *borrow(rendition_ctx *c, const char *evid, const char *kind, const char *sha) {
  idx_query q;
  idx_query_init(&q);
  q.sha256 = sha;
  q.limit = 20;
  json_t *items = NULL;
  char *next = NULL;
  lend_ctx l = {c, evid, kind, NULL};
  if (idx_evidence_list(c->ix, &q, &items, &next) == 0) {
    json_t *it;
    size_t i;
    json_array_foreach(items, i, it) {
      const char *id = cu_json_str(it, "id");
      if (id && lend_one(id, it, &l)) break;
    }
  }
  json_decref(items);
  free(next);
  return l.found;
}

/* For a recording whose index was never written (a recorder that lost
 * power): a complete recording of the same device is what repair tools
 * (untrunc) need as a reference. A sentence naming one, or "". */
static void sibling_hint(rendition_ctx *c, const json_t *rec, char *out, size_t n) {
  out[0] = '\0';
  const char *device = cu_json_str(rec, "device_id"), *self = cu_json_str(rec, "id");
  if (!device) return;
  idx_query q;
  idx_query_init(&q);
  q.device = device;
  q.limit = SIBLINGS_LOOKED_AT;
  q.desc = true;
  json_t *items = NULL, *it;
  char *next = NULL;
  size_t i;
  if (idx_evidence_list(c->ix, &q, &items, &next)) return;
  json_array_foreach(items, i, it) {
    const char *id = cu_json_str(it, "id");
    json_t *media = json_object_get(it, "media");
    const char *status = cu_json_str(media, "status"), *container = cu_json_str(media, "container");
    if (!id || (self && !strcmp(id, self)) || !status || strcmp(status, "ok") || !container ||
        strncmp(container, "mov,", 4))
      continue;
    snprintf(out, n, "; evidence %s from the same device (%s, recorded %s) is a complete recording "
             "of the same kind, which a repair tool such as untrunc can use as a reference to "
             "rebuild the missing index", id, device, cu_json_str(it, "recorded_at"));
    break;
  }
  json_decref(items);
  free(next);
}

typedef struct {
  job_queue *jq;
  const char *job_id;
} progress_ctx;

static void on_progress(void *ud, double f) {
  progress_ctx *p = ud;
  if (p->jq) job_progress(p->jq, p->job_id, f);
}

static int make(rendition_ctx *c, const char *evid, const char *kind, const char *src,
                const char *out, const char *sha, const media_ctl *ctl, json_t **rep) {
  if (!strcmp(kind, "framehash")) return media_framehash(src, out, ctl, rep);
  if (!strcmp(kind, "master")) {
    /* The original's frame hashes, if made: the check then decodes only
     * the master. */
    json_t *fh = NULL;
    char *path = NULL;
    media_reference ref = {0};
    if (idx_rendition_get(c->ix, evid, "framehash", &fh) == 0 &&
        !strcmp(cu_json_str(fh, "state") ? cu_json_str(fh, "state") : "", "done") &&
        cu_json_str(fh, "sha256") && store_has(c->st, cu_json_str(fh, "sha256"))) {
      ref.path = path = store_path(c->st, cu_json_str(fh, "sha256"));
      ref.report = json_object_get(fh, "report");
    }
    media_master_opts mo = {.threads = c->threads, .reference = ref.path ? &ref : NULL};
    int rc = media_master(src, out, sha, &mo, ctl, rep);
    free(path);
    json_decref(fh);
    return rc;
  }
  if (!strcmp(kind, "access")) {
    media_access_opts ao = {.max_side = c->access_max_side, .threads = c->threads};
    return media_access(src, out, &ao, ctl, rep);
  }
  if (!strcmp(kind, "poster")) return media_poster(src, out, 0, ctl, rep);
  return cu_error(CU_EINVAL, "not a rendition kind: %s", kind);
}

int rendition_job_run(void *ud, const char *job_id, const json_t *job) {
  rendition_ctx *c = ud;
  const char *kind = cu_json_str(job, "kind"), *evid = cu_json_str(job, "evidence");
  json_t *rec = NULL, *cur = NULL, *rep = NULL, *done = NULL;
  char *src = NULL, *out = NULL;
  int rc = idx_evidence_get(c->ix, evid ? evid : "", &rec);
  if (rc) return rc;
  const char *sha = cu_json_str(rec, "sha256");
  if (!sha || !store_has(c->st, sha)) {
    cu_alarm("evidence %s: its object %s is missing from the store", evid, sha ? sha : "?");
    rc = cu_error(CU_ENOTFOUND, "the object of evidence %s is missing", evid);
    goto done;
  }
  if (idx_rendition_get(c->ix, evid, kind, &cur) == 0) {
    const char *state = cu_json_str(cur, "state"), *rsha = cu_json_str(cur, "sha256");
    if (state && ((!strcmp(state, "done") && rsha && store_has(c->st, rsha)) ||
                  !strcmp(state, "not_applicable"))) {
      /* A re-run after a crash: recorded already (and the master queued in
       * the same write, unless this item predates the chaining). */
      json_t *m = NULL;
      if (!strcmp(kind, "framehash") && idx_rendition_get(c->ix, evid, "master", &m) == 0 &&
          !cu_json_str(m, "job") && !strcmp(cu_json_str(m, "state") ? cu_json_str(m, "state") : "", "queued")) {
        idx_batch *b = idx_batch_new(c->ix);
        queue_master(c->jq, b, evid);
        rc = idx_batch_commit(c->ix, b);
        idx_batch_free(b);
      }
      json_decref(m);
      goto done;
    }
  }
  if ((done = borrow(c, evid, kind, sha))) {
    cu_json_set_time(done, "finished_at", cu_now_us());
    json_t *ev = rendition_event(evid, done);
    rc = put_record(c, evid, kind, done, ev);
    json_decref(ev);
    goto done;
  }

  int64_t started = cu_now_us();
  json_t *running = new_record(kind, "running", sha);
  cu_json_set_time(running, "started_at", started);
  cu_json_set_str(running, "job", job_id);
  rc = put_record(c, evid, kind, running, NULL);
  json_decref(running);
  if (rc) goto done;

  char name[CU_ID_LEN + 32];
  snprintf(name, sizeof name, "%s.%s.%s", job_id, kind, rendition_extension(kind));
  out = cu_path_join(c->work_dir, name);
  src = store_path(c->st, sha);
  unlink(out); /* an earlier attempt's partial output */
  progress_ctx pc = {c->jq, job_id};
  int64_t limit = c->time_limit_us > 2 * MARGIN_US ? c->time_limit_us - MARGIN_US : c->time_limit_us;
  media_ctl ctl = {.deadline_us = limit > 0 ? cu_mono_us() + limit : 0,
                   .cancel = c->jq ? job_queue_stopping(c->jq) : NULL,
                   .progress = on_progress, .progress_ud = &pc};
  rc = make(c, evid, kind, src, out, sha, &ctl, &rep);

  if (rc == CU_EUNSUPPORTED) {
    /* Nothing to make: a verdict, recorded, and the job is done. */
    done = new_record(kind, "not_applicable", sha);
    cu_json_set_str(done, "reason", cu_errmsg());
    cu_json_set_time(done, "finished_at", cu_now_us());
    unlink(out);
    rc = put_record(c, evid, kind, done, NULL);
    goto done;
  }
  if (rc) {
    unlink(out);
    if (rc == CU_ECORRUPT && !strcmp(kind, "master") && strstr(cu_errmsg(), "moov atom not found")) {
      char hint[512], msg[1024];
      sibling_hint(c, rec, hint, sizeof hint);
      snprintf(msg, sizeof msg, "%s%s", cu_errmsg(), hint);
      rc = cu_error(CU_ECORRUPT, "%s", msg);
    } else if (rc != CU_ECORRUPT) {
      /* It will be tried again (or ends failed through the queue's hook):
       * until then it waits, and says what went wrong last. */
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", cu_errmsg());
      json_t *waiting = new_record(kind, "queued", sha);
      cu_json_set_str(waiting, "error", msg);
      cu_json_set_str(waiting, "job", job_id);
      if (put_record(c, evid, kind, waiting, NULL)) cu_warn("evidence %s: cannot record its %s's state", evid, kind);
      json_decref(waiting);
      rc = cu_error(rc, "%s", msg);
    }
    goto done;
  }

  done = new_record(kind, "done", sha);
  json_t *kept = json_object_get(json_object_get(rep, "params"), "kept_as");
  if (kept) {
    /* A still image: the original is the master. */
    cu_json_set_str(done, "sha256", sha);
    cu_json_set_int(done, "size", cu_json_int(rec, "size", 0));
  } else {
    char hex[65];
    uint64_t size = 0;
    bool dedup = false;
    if ((rc = cu_sha256_file(out, hex, &size)) || (rc = store_commit(c->st, out, hex, size, &dedup))) {
      unlink(out);
      goto done;
    }
    cu_json_set_str(done, "sha256", hex);
    cu_json_set_int(done, "size", (int64_t)size);
    cu_json_set_str(done, "content_type", content_type(kind, rep));
  }
  rendition_record_fill(done, rep, started);
  cu_json_set_str(done, "job", job_id);
  json_t *ev = rendition_event(evid, done);
  rc = put_record(c, evid, kind, done, ev);
  json_decref(ev);

done:
  free(src);
  free(out);
  json_decref(done);
  json_decref(rep);
  json_decref(cur);
  json_decref(rec);
  return rc;
}

void rendition_job_failed(void *ud, idx_batch *b, const char *job_id, const json_t *job,
                          const char *msg) {
  rendition_ctx *c = ud;
  const char *kind = cu_json_str(job, "kind"), *evid = cu_json_str(job, "evidence");
  json_t *rec = NULL;
  if (!kind || !evid || idx_evidence_get(c->ix, evid, &rec)) return;
  json_t *r = new_record(kind, "failed", cu_json_str(rec, "sha256"));
  cu_json_set_str(r, "error", msg);
  cu_json_set_str(r, "job", job_id);
  cu_json_set_time(r, "finished_at", cu_now_us());
  idx_batch_put_rendition(b, evid, kind, r);
  if (!strcmp(kind, "framehash")) queue_master(c->jq, b, evid);
  json_decref(r);
  json_decref(rec);
}

void rendition_jobs_add(job_queue *q, idx_batch *b, const char *evidence_id) {
  for (const char *const *k = rendition_kinds; *k; k++) {
    json_t *r = new_record(*k, "queued", NULL);
    if (strcmp(*k, "master")) { /* the master follows the frame hashes */
      char id[CU_ID_LEN + 1];
      job_batch_add(q, b, *k, evidence_id, id);
      cu_json_set_str(r, "job", id);
    }
    idx_batch_put_rendition(b, evidence_id, *k, r);
    json_decref(r);
  }
}

int rendition_work_sweep(const char *work_dir) {
  DIR *d = opendir(work_dir);
  if (!d) return errno == ENOENT ? 0 : cu_error_errno(CU_EIO, errno, "cannot read %s", work_dir);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char *p = cu_path_join(work_dir, e->d_name);
    if (unlink(p) == 0) n++;
    free(p);
  }
  closedir(d);
  if (n) cu_info("removed %d partial outputs of jobs that were running when the server stopped", n);
  return 0;
}
