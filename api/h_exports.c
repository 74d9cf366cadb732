/* Exports: a case's evidence as a BagIt bag, for the legal team.
 *
 *   POST /v1/cases/{id}/exports   the request (checked here), run by the
 *                                 export job (ingest/export_job.c)
 *   GET  /v1/exports[?case=]      the export records
 *   GET  /v1/exports/{id}/status  one record, with progress while it runs
 *   GET  /v1/exports/{id}         the bag as a tar stream, with Range
 *
 * The tar is never stored: each request lays it out from the bag directory
 * (archive/tar.h) and produces the bytes asked for, so a broken download
 * resumes where it stopped and gets the same bytes. A download is not an
 * "accessed" event per item (the "exported" events of the export cover
 * what the bag holds); it is logged, with who and which bytes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "cu_limits.h"
#include "err.h"
#include "export.h"
#include "export_job.h"
#include "id.h"
#include "log.h"
#include "rendition_job.h"
#include "tar.h"
#include "timeu.h"
#include "banned.h"

#define EXPORT_ROLES (ROLE_LEGAL | ROLE_ADMIN)
/* A request body lists at most EXPORT_MAX_ITEMS ids (~40 bytes each in
 * JSON) and a few clips. */
#define EXPORT_BODY_MAX (4 * 1024 * 1024)
#define MAX_CLIPS 64               /* archive/export.c takes at most 64 clips of one item */
#define TAR_BLOCK_SIZE (64 * 1024) /* bytes libmicrohttpd asks for at a time */

static int invalid(req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int invalid(req *r, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  respond_status(r, 400, "invalid", msg, NULL);
  return CU_EINVAL;
}

static void exports_dir(req *r, char *out, size_t n) {
  snprintf(out, n, "%s/exports", r->a->home);
}

/* ---- POST /v1/cases/{id}/exports ------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
  return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* The listed evidence, checked, sorted and without repeats; NULL on 400. */
static json_t *check_evidence(req *r, const json_t *list) {
  if (!json_is_array(list) || !json_array_size(list)) {
    invalid(
        r,
        "evidence must be a non-empty array of evidence ids (or left out: every item of the case)");
    return NULL;
  }
  if (json_array_size(list) > EXPORT_MAX_ITEMS) {
    invalid(r, "an export holds at most %d items", EXPORT_MAX_ITEMS);
    return NULL;
  }
  size_t n = json_array_size(list);
  json_t **v = cu_xcalloc(n, sizeof *v);
  json_t *out = NULL;
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(list, i);
    const char *id = json_string_value(e);
    if (!id || !cu_id_valid(id)) {
      invalid(r, "evidence: '%.64s' is not an evidence id", id ? id : "(not a string)");
      goto done;
    }
    json_t *rec = NULL;
    int rc = idx_evidence_get(r->a->ix, id, &rec);
    bool deleted =
        !rc && !strcmp(cu_json_str(rec, "state") ? cu_json_str(rec, "state") : "", "deleted");
    json_decref(rec);
    if (rc == CU_ENOTFOUND) {
      invalid(r, "evidence: there is no evidence %s", id);
      goto done;
    }
    if (deleted) {
      invalid(r, "evidence %s was deleted: there is nothing of it to export", id);
      goto done;
    }
    bool in = false;
    if (!rc) rc = idx_case_has_evidence(r->a->ix, r->param[0], id, &in);
    if (rc) {
      respond_error(r, rc, NULL);
      goto done;
    }
    if (!in) {
      invalid(r, "evidence %s is not in case %s", id, r->param[0]);
      goto done;
    }
    v[i] = (json_t *)e;
  }
  qsort(v, n, sizeof *v, cmp_str);
  out = json_array();
  for (size_t i = 0; i < n; i++)
    if (!i || strcmp(json_string_value(v[i - 1]), json_string_value(v[i])))
      json_array_append(out, v[i]);
done:
  free(v);
  return out;
}

static json_t *check_renditions(req *r, const json_t *list) {
  json_t *out = json_array();
  if (!list) return out;
  if (!json_is_array(list)) {
    json_decref(out);
    invalid(r, "renditions must be an array of master, access, framehash, poster");
    return NULL;
  }
  size_t i;
  json_t *k;
  json_array_foreach(list, i, k) {
    const char *kind = json_string_value(k);
    bool known = false;
    for (int j = 0; kind && rendition_kinds[j]; j++)
      known |= !strcmp(kind, rendition_kinds[j]);
    if (kind && !strcmp(kind, "original")) continue; /* always in the bag */
    if (!known) {
      json_decref(out);
      invalid(r, "renditions: '%.64s' is not one of master, access, framehash, poster",
              kind ? kind : "(not a string)");
      return NULL;
    }
    bool dup = false;
    size_t x;
    json_t *have;
    json_array_foreach(out, x, have) dup |= !strcmp(json_string_value(have), kind);
    if (!dup) json_array_append_new(out, json_string(kind));
  }
  return out;
}

static int clip_time(req *r, const json_t *v, const char *what, size_t n, int64_t *ms,
                     json_t **shown) {
  char s[64];
  if (json_is_string(v))
    snprintf(s, sizeof s, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(s, sizeof s, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    snprintf(s, sizeof s, "%.6f", json_real_value(v));
  else
    return invalid(r, "clips[%zu].%s is required: seconds (90.5) or HH:MM:SS.mmm", n, what);
  int64_t us;
  if (cu_parse_clock(s, &us)) return invalid(r, "clips[%zu].%s: %s", n, what, cu_errmsg());
  *ms = (us + 500) / 1000; /* clips are named to the millisecond */
  *shown = json_is_string(v) ? json_incref((json_t *)v) : json_string(s);
  return 0;
}

static json_t *check_clips(req *r, const json_t *list, const json_t *listed) {
  json_t *out = json_array();
  if (!list) return out;
  if (!json_is_array(list) || json_array_size(list) > MAX_CLIPS) {
    json_decref(out);
    invalid(r, "clips must be an array of at most %d {\"evidence\", \"start\", \"end\", \"mode\"}",
            MAX_CLIPS);
    return NULL;
  }
  size_t i;
  json_t *c;
  json_array_foreach(list, i, c) {
    const char *k;
    json_t *v;
    int bad = !json_is_object(c);
    if (!bad)
      json_object_foreach(c, k, v) bad |=
          strcmp(k, "evidence") && strcmp(k, "start") && strcmp(k, "end") && strcmp(k, "mode");
    if (bad) {
      invalid(r, "clips[%zu] must be {\"evidence\", \"start\", \"end\", \"mode\": copy|exact}", i);
      goto fail;
    }
    const char *ev = cu_json_str(c, "evidence"), *mode = cu_json_str(c, "mode");
    json_t *mv = json_object_get(c, "mode");
    if (!ev || !cu_id_valid(ev)) {
      invalid(r, "clips[%zu].evidence must be an evidence id", i);
      goto fail;
    }
    bool in = false;
    if (listed) {
      size_t x;
      json_t *e;
      json_array_foreach(listed, x, e) in |= !strcmp(json_string_value(e), ev);
    } else {
      int rc = idx_case_has_evidence(r->a->ix, r->param[0], ev, &in);
      if (rc) {
        respond_error(r, rc, NULL);
        goto fail;
      }
    }
    if (!in) {
      invalid(r, "clips[%zu]: evidence %s is not %s", i, ev,
              listed ? "among the evidence selected" : "in the case");
      goto fail;
    }
    if ((mv && !mode) || (mode && strcmp(mode, "copy") && strcmp(mode, "exact"))) {
      invalid(
          r,
          "clips[%zu].mode must be copy (the original's packets, from the keyframe at or before "
          "start) or exact (re-encoded, frame-accurate)",
          i);
      goto fail;
    }
    int64_t s_ms, e_ms;
    json_t *ss = NULL, *es = NULL;
    if (clip_time(r, json_object_get(c, "start"), "start", i, &s_ms, &ss)) goto fail;
    if (clip_time(r, json_object_get(c, "end"), "end", i, &e_ms, &es)) {
      json_decref(ss);
      goto fail;
    }
    if (e_ms <= s_ms) {
      json_decref(ss);
      json_decref(es);
      invalid(r, "clips[%zu]: end must be after start", i);
      goto fail;
    }
    json_t *n = json_object();
    cu_json_set_str(n, "evidence", ev);
    json_object_set_new(n, "start", ss);
    json_object_set_new(n, "end", es);
    cu_json_set_str(n, "mode", mode ? mode : "copy");
    cu_json_set_int(n, "start_ms", s_ms);
    cu_json_set_int(n, "end_ms", e_ms);
    json_array_append_new(out, n);
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}

static int create(req *r) {
  json_t *in = NULL, *sel = NULL, *ev = NULL, *rend = NULL, *clips = NULL, *rec = NULL,
         *actor = NULL, *cas = NULL;
  if (r->body.len && cu_json_parse(r->body.data, r->body.len, &in)) {
    respond_status(
        r, 400, "invalid",
        "the body must be JSON: {\"evidence\": [ids], \"renditions\": [\"master\", \"access\"], "
        "\"clips\": [{\"evidence\", \"start\", \"end\", \"mode\"}]}, every field optional",
        NULL);
    return 0;
  }
  if (!in) in = json_object();
  int rc = 0;
  if (!json_is_object(in)) {
    invalid(r, "the body must be a JSON object");
    goto done;
  }
  const char *k;
  json_t *v;
  json_object_foreach(in, k, v) {
    if (strcmp(k, "evidence") && strcmp(k, "renditions") && strcmp(k, "clips")) {
      invalid(r, "unknown field '%.64s' (evidence, renditions, clips)", k);
      goto done;
    }
  }
  if ((rc = idx_case_get(r->a->ix, r->param[0], &cas))) {
    respond_error(r, rc, NULL);
    goto done;
  }
  if (json_object_get(in, "evidence")) {
    if (!(ev = check_evidence(r, json_object_get(in, "evidence")))) goto done;
  } else {
    uint64_t n = 0;
    if ((rc = idx_case_evidence_count(r->a->ix, r->param[0], &n))) {
      respond_error(r, rc, NULL);
      goto done;
    }
    if (!n) {
      invalid(r, "case %s holds no evidence to export", r->param[0]);
      goto done;
    }
    if (n > EXPORT_MAX_ITEMS) {
      invalid(r,
              "case %s holds %llu items; an export holds at most %d: list the evidence to export",
              r->param[0], (unsigned long long)n, EXPORT_MAX_ITEMS);
      goto done;
    }
  }
  if (!(rend = check_renditions(r, json_object_get(in, "renditions")))) goto done;
  if (!(clips = check_clips(r, json_object_get(in, "clips"), ev))) goto done;
  sel = json_object();
  if (ev) json_object_set(sel, "evidence", ev);
  json_object_set(sel, "renditions", rend);
  json_object_set(sel, "clips", clips);
  actor = auth_actor(&r->who);
  if ((rc = export_job_request(r->a->exports, r->param[0], sel, actor, &rec))) {
    respond_error(r, rc, NULL);
    goto done;
  }
  char loc[64];
  snprintf(loc, sizeof loc, "/v1/exports/%s", cu_json_str(rec, "id"));
  const char *h[] = {"Location", loc, NULL};
  respond_json(r, 202, rec, h);
done:
  json_decref(in);
  json_decref(sel);
  json_decref(ev);
  json_decref(rend);
  json_decref(clips);
  json_decref(rec);
  json_decref(actor);
  json_decref(cas);
  return 0;
}

/* ---- records and progress --------------------------------------------------- */

/* What a client polls: the record, and while it runs how far it is. */
static void add_progress(req *r, json_t *rec) {
  const char *state = cu_json_str(rec, "state"), *id = cu_json_str(rec, "id");
  uint64_t done = 0, total = 0;
  if (state && !strcmp(state, "done")) {
    json_object_set_new(rec, "progress", json_real(1.0));
    return;
  }
  if (state && !strcmp(state, "running") && r->a->exports &&
      export_job_progress(r->a->exports, id, &done, &total)) {
    json_object_set_new(rec, "progress", json_real(total ? (double)done / (double)total : 0.0));
    cu_json_set_int(rec, "bytes_done", (int64_t)done);
    cu_json_set_int(rec, "bytes_total", (int64_t)total);
  } else if (state && (!strcmp(state, "queued") || !strcmp(state, "running"))) {
    json_object_set_new(rec, "progress", json_real(0.0));
  }
  json_t *job = NULL;
  const char *jid = cu_json_str(rec, "job");
  if (state && strcmp(state, "failed") && jid && !idx_job_get(r->a->ix, jid, &job)) {
    int64_t attempts = cu_json_int(job, "attempts", 0);
    if (attempts) cu_json_set_int(rec, "attempts", attempts);
    if (cu_json_str(job, "error")) cu_json_set_str(rec, "last_error", cu_json_str(job, "error"));
    int64_t nb = cu_json_int(job, "not_before_us", 0);
    if (nb > cu_now_us()) cu_json_set_time(rec, "next_attempt_at", nb);
  }
  json_decref(job);
}

static int status(req *r) {
  json_t *rec = NULL;
  int rc = idx_export_get(r->a->ix, r->param[0], &rec);
  if (rc) return respond_error(r, rc, NULL);
  add_progress(r, rec);
  rc = respond_json(r, 200, rec, NULL);
  json_decref(rec);
  return rc;
}

typedef struct {
  req *r;
  json_t *items;
  int limit;
  char last[CU_ID_LEN + 1];
  bool more;
} list_ctx;

static int list_one(const char *id, json_t *rec, void *ud) {
  list_ctx *c = ud;
  if ((int)json_array_size(c->items) >= c->limit) {
    c->more = true;
    return 1;
  }
  json_t *o = json_deep_copy(rec);
  add_progress(c->r, o);
  json_array_append_new(c->items, o);
  snprintf(c->last, sizeof c->last, "%s", id);
  return 0;
}

static int list(req *r) {
  const char *cs = req_query(r, "case"), *cursor = req_query(r, "cursor");
  uint64_t limit = CU_DEFAULT_PAGE_LIMIT;
  if (cs && !cu_name_valid(cs))
    return respond_status(r, 400, "invalid", "case is not a case id", NULL);
  if (cursor && !cu_id_valid(cursor))
    return respond_status(r, 400, "invalid", "cursor is not from this listing", NULL);
  if (req_query(r, "limit") && req_query_u64(r, "limit", false, CU_MAX_PAGE_LIMIT, &limit))
    return 0;
  if (!limit) return respond_status(r, 400, "invalid", "limit must be at least 1", NULL);
  list_ctx c = {r, json_array(), (int)limit, "", false};
  int rc = idx_export_each(r->a->ix, cursor, cs, list_one, &c);
  if (rc) {
    json_decref(c.items);
    return respond_error(r, rc, NULL);
  }
  json_t *o = json_object();
  json_object_set_new(o, "items", c.items);
  json_object_set_new(o, "next_cursor", c.more ? json_string(c.last) : json_null());
  rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  return rc;
}

/* ---- GET /v1/exports/{id}: the tar ------------------------------------------ */

typedef struct {
  tar_layout *l;
  uint64_t base;
  char id[CU_ID_LEN + 1];
} tar_stream;

static ssize_t tar_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  tar_stream *s = cls;
  ssize_t n = tar_read(s->l, s->base + pos, buf, max);
  if (n < 0) {
    cu_alarm("export %s: the tar stream failed at byte %llu: %s", s->id,
             (unsigned long long)(s->base + pos), cu_errmsg());
    return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  return n ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void tar_free(void *cls) {
  tar_stream *s = cls;
  tar_layout_free(s->l);
  free(s);
}

static int not_ready(req *r, const json_t *rec) {
  const char *state = cu_json_str(rec, "state");
  char msg[1400];
  if (state && !strcmp(state, "failed")) {
    snprintf(msg, sizeof msg, "export %s failed: %s", cu_json_str(rec, "id"),
             cu_json_str(rec, "error") ? cu_json_str(rec, "error") : "(no reason recorded)");
    return respond_status(r, 409, "export_failed", msg, NULL);
  }
  if (state && !strcmp(state, "withdrawn")) {
    snprintf(msg, sizeof msg, "export %s was withdrawn from this server: %s", cu_json_str(rec, "id"),
             cu_json_str(rec, "withdrawn_because") ? cu_json_str(rec, "withdrawn_because") : "?");
    return respond_status(r, 410, "gone", msg, NULL);
  }
  if (state && !strcmp(state, "refused")) {
    snprintf(msg, sizeof msg, "export %s was refused (request %s)", cu_json_str(rec, "id"),
             cu_json_str(rec, "request") ? cu_json_str(rec, "request") : "?");
    return respond_status(r, 409, "export_refused", msg, NULL);
  }
  json_t *copy = json_deep_copy(rec);
  add_progress(r, copy);
  const char *why = cu_json_str(copy, "waiting_for");
  snprintf(msg, sizeof msg, "export %s is %s (%.0f%% done)%s%s; poll GET /v1/exports/%s/status",
           cu_json_str(rec, "id"), state ? state : "unknown",
           100.0 * json_number_value(json_object_get(copy, "progress")),
           why ? ", waiting for " : "",
           why ? why + (strncmp(why, "waiting for ", 12) ? 0 : 12) : "", cu_json_str(rec, "id"));
  json_decref(copy);
  return respond_status(r, 409, "export_not_ready", msg, NULL);
}

static int download(req *r) {
  json_t *rec = NULL;
  tar_layout *l = NULL;
  int rc = idx_export_get(r->a->ix, r->param[0], &rec);
  if (rc) return respond_error(r, rc, NULL);
  const char *state = cu_json_str(rec, "state");
  if (!state || strcmp(state, "done")) {
    rc = not_ready(r, rec);
    json_decref(rec);
    return rc;
  }
  char dir[4200];
  exports_dir(r, dir, sizeof dir);
  if ((rc = export_tar(dir, rec, &l))) {
    if (rc == CU_ECORRUPT) cu_alarm("export %s: %s", r->param[0], cu_errmsg());
    json_decref(rec);
    return respond_error(r, rc, NULL);
  }
  uint64_t size = tar_layout_size(l);
  char etag[80], lm[CU_HTTPDATE_LEN], disp[EXPORT_BAG_NAME_MAX + 64], crange[96];
  snprintf(etag, sizeof etag, "\"%s\"", cu_json_str(rec, "tagmanifest_sha256"));
  int64_t fin = 0;
  cu_time_parse_rfc3339(cu_json_str(rec, "finished_at"), &fin);
  cu_time_httpdate(fin, lm);
  snprintf(disp, sizeof disp, "attachment; filename=\"%s.tar\"", cu_json_str(rec, "bag"));
  const char *h[] = {"ETag",
                     etag,
                     "Last-Modified",
                     lm,
                     "Accept-Ranges",
                     "bytes",
                     "Content-Disposition",
                     disp,
                     "Cache-Control",
                     "private, no-transform",
                     NULL,
                     NULL,
                     NULL};
  if (serve_etag_matches(req_header(r, "If-None-Match"), etag)) {
    tar_layout_free(l);
    json_decref(rec);
    return respond(r, 304, NULL, "", 0, h);
  }
  uint64_t off = 0, len = size;
  /* One range at most: a tar is resumed, not scanned (several: all of it). */
  const char *range = req_header(r, "Range");
  serve_range one;
  int n = 0;
  int pr = range && strchr(range, ',') ? 1 : serve_parse_ranges(range, size, &one, 1, &n);
  if (pr == 0) {
    off = one.off;
    len = one.len;
  }
  const char *ifr = req_header(r, "If-Range");
  if (pr <= 0 && ifr && strcmp(ifr, etag) && strcmp(ifr, lm)) { /* changed since: all of it */
    pr = 1;
    off = 0;
    len = size;
  }
  if (pr < 0) {
    tar_layout_free(l);
    json_decref(rec);
    snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)size);
    const char *h416[] = {"Content-Range", crange, NULL};
    return respond_status(r, 416, "range_not_satisfiable", "the requested range is outside the tar",
                          h416);
  }
  if (pr > 0) {
    off = 0;
    len = size;
  }
  tar_stream *s = cu_xcalloc(1, sizeof *s);
  s->l = l;
  s->base = off;
  snprintf(s->id, sizeof s->id, "%.36s", r->param[0]);
  struct MHD_Response *resp =
      MHD_create_response_from_callback(len, TAR_BLOCK_SIZE, tar_cb, s, tar_free);
  if (!resp) {
    tar_free(s);
    json_decref(rec);
    return respond_error(r, cu_error(CU_EIO, "cannot create a response"), NULL);
  }
  MHD_add_response_header(resp, "Content-Type", "application/x-tar");
  int st = 200;
  if (pr == 0) {
    snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)off,
             (unsigned long long)(off + len - 1), (unsigned long long)size);
    h[10] = "Content-Range";
    h[11] = crange;
    st = 206;
  }
  char who[400];
  snprintf(who, sizeof who, "%s (%s, token %s)", r->who.user[0] ? r->who.user : "-", r->who.role,
           r->who.token_id);
  cu_info("export %s (%s) %s by %s: bytes %llu-%llu of %llu", r->param[0], cu_json_str(rec, "bag"),
          strcmp(r->method, "HEAD") ? "downloaded" : "looked at (HEAD)", who,
          (unsigned long long)off, (unsigned long long)(len ? off + len - 1 : off),
          (unsigned long long)size);
  json_decref(rec);
  return respond_response(r, st, resp, h);
}

const route export_routes[] = {
    {"POST", "/v1/cases/{}/exports", EXPORT_ROLES, EXPORT_BODY_MAX, NULL, NULL, create, NULL,
     false},
    {"GET", "/v1/exports", EXPORT_ROLES, 0, NULL, NULL, list, NULL, false},
    {"GET", "/v1/exports/{}/status", EXPORT_ROLES, 0, NULL, NULL, status, NULL, false},
    {"GET", "/v1/exports/{}", EXPORT_ROLES, 0, NULL, NULL, download, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
