/* Evidence reads: listing, one record, and its bytes. Legal and admin read
 * everything; a reviewer reads the items of the cases assigned to them.
 * Every answer that carries content is an "accessed" event in the ledger,
 * written before the first byte leaves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_int.h"
#include "b64.h"
#include "cu_limits.h"
#include "err.h"
#include "hex.h"
#include "id.h"
#include "rendition_job.h"
#include "timeu.h"
#include "banned.h"

#define READ_ROLES (ROLE_REVIEWER | ROLE_LEGAL | ROLE_ADMIN)

static int bad(req *r, const char *detail) { return respond_status(r, 400, "invalid", detail, NULL); }

static int list(req *r) {
  idx_query q;
  idx_query_init(&q);
  q.device = req_query(r, "device");
  q.officer = req_query(r, "officer");
  q.case_id = req_query(r, "case");
  q.sha256 = req_query(r, "sha256");
  q.cursor = req_query(r, "cursor");
  if (q.device && !cu_name_valid(q.device)) return bad(r, "device is not a valid device id");
  if (q.officer && !cu_name_valid(q.officer)) return bad(r, "officer is not a valid officer id");
  if (q.case_id && !cu_name_valid(q.case_id)) return bad(r, "case is not a valid case id");
  if (r->who.role_bit == ROLE_REVIEWER) {
    if (!q.case_id)
      return respond_status(r, 403, "forbidden", "a reviewer lists evidence by case: add case=ID (GET /v1/cases lists yours)", NULL);
    if (auth_may_read_case(r, q.case_id)) return 0;
  }
  if (q.sha256 && !cu_is_sha256_hex(q.sha256)) return bad(r, "sha256 must be 64 lowercase hex digits");
  const char *from = req_query(r, "from"), *to = req_query(r, "to"), *limit = req_query(r, "limit");
  const char *order = req_query(r, "order");
  if (from && cu_time_parse_rfc3339(from, &q.from_us)) return bad(r, "from must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z");
  if (to && cu_time_parse_rfc3339(to, &q.to_us)) return bad(r, "to must be an RFC 3339 time, e.g. 2026-02-01T00:00:00Z");
  if (limit) {
    int64_t n;
    if (cu_parse_i64(limit, &n, 0) || n < 1 || n > CU_MAX_PAGE_LIMIT) {
      char msg[64];
      snprintf(msg, sizeof msg, "limit must be between 1 and %d", CU_MAX_PAGE_LIMIT);
      return bad(r, msg);
    }
    q.limit = (int)n;
  }
  if (order && strcmp(order, "asc") && strcmp(order, "desc")) return bad(r, "order must be asc or desc");
  q.desc = order && !strcmp(order, "desc");
  /* The records go out as stored (canonical JSON), not parsed and printed
   * again: a page of 1000 would spend most of its time in that. */
  cu_buf out = CU_BUF_INIT(SIZE_MAX / 2);
  char *next = NULL;
  int n = 0;
  cu_buf_adds(&out, "{\"items\":");
  int rc = idx_evidence_list_raw(r->a->ix, &q, &out, &n, &next);
  if (rc) {
    cu_buf_release(&out);
    return respond_error(r, rc, NULL);
  }
  if (next) cu_buf_printf(&out, ",\"next_cursor\":\"%s\"}\n", next); /* base64url: nothing to escape */
  else cu_buf_adds(&out, ",\"next_cursor\":null}\n");
  rc = respond(r, 200, "application/json", out.data, out.len, NULL);
  cu_buf_release(&out);
  free(next);
  return rc;
}

static int get_one(req *r) {
  if (auth_may_read_evidence(r, r->param[0])) return 0;
  json_t *rec = NULL, *rend = NULL;
  int rc = idx_evidence_get(r->a->ix, r->param[0], &rec);
  if (!rc) rc = idx_renditions(r->a->ix, r->param[0], &rend);
  if (rc) {
    json_decref(rec);
    return respond_error(r, rc, NULL);
  }
  json_object_set_new(rec, "renditions", rend);
  json_t *ret = NULL, *holds = NULL;
  if (!gov_retention(r->a->gov, rec, &ret)) json_object_set_new(rec, "retention", ret);
  if (!gov_holds_covering(r->a->gov, rec, &holds)) json_object_set_new(rec, "holds", holds);
  rc = respond_json(r, 200, rec, NULL);
  json_decref(rec);
  return rc;
}

/* Content-Type from what the probe found; octets until then. */
static const char *content_type(const json_t *rec) {
  const char *c = cu_json_str(json_object_get(rec, "media"), "container");
  if (!c) return "application/octet-stream";
  static const struct { const char *fmt, *type; } map[] = {
      {"mov,mp4", "video/mp4"}, {"matroska", "video/x-matroska"}, {"mpegts", "video/mp2t"},
      {"avi", "video/x-msvideo"}, {"wav", "audio/wav"}, {"mp3", "audio/mpeg"},
      {"flac", "audio/flac"}, {"ogg", "audio/ogg"}, {"image2", "image/jpeg"},
      {"jpeg_pipe", "image/jpeg"}, {"png_pipe", "image/png"}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++)
    if (!strncmp(c, map[i].fmt, strlen(map[i].fmt))) return map[i].type;
  return "application/octet-stream";
}

/* The record of a finished rendition in *out, or an answer already sent
 * (why there is none to serve). */
static int find_rendition(req *r, const char *id, const char *kind, json_t **out, bool *answered) {
  json_t *rr = NULL;
  *answered = false;
  int rc = idx_rendition_get(r->a->ix, id, kind, &rr);
  if (rc == CU_ENOTFOUND) {
    *answered = true;
    char msg[160];
    snprintf(msg, sizeof msg, "this item has no %s rendition", kind);
    return respond_status(r, 404, "not_found", msg, NULL);
  }
  if (rc) return respond_error(r, rc, NULL);
  const char *state = cu_json_str(rr, "state");
  if (state && !strcmp(state, "done")) {
    *out = rr;
    return 0;
  }
  *answered = true;
  char msg[1200];
  if (state && !strcmp(state, "failed"))
    snprintf(msg, sizeof msg, "the %s could not be made: %s", kind, cu_json_str(rr, "error"));
  else if (state && !strcmp(state, "not_applicable"))
    snprintf(msg, sizeof msg, "there is no %s for this item: %s", kind, cu_json_str(rr, "reason"));
  else
    snprintf(msg, sizeof msg, "the %s is not made yet (it is %s); try again later", kind, state ? state : "queued");
  const char *code = state && !strcmp(state, "failed")           ? "rendition_failed"
                     : state && !strcmp(state, "not_applicable") ? "rendition_not_applicable"
                                                                 : "rendition_not_ready";
  json_decref(rr);
  return respond_status(r, 404, code, msg, NULL);
}

int evidence_gone(req *r, const json_t *rec) {
  const char *st = cu_json_str(rec, "state");
  if (!st || strcmp(st, "deleted")) return 0;
  const json_t *d = json_object_get(rec, "deletion");
  json_t *o = json_object();
  cu_json_set_str(o, "error", "gone");
  char msg[600];
  snprintf(msg, sizeof msg, "evidence %s was deleted at %s on request %s (\"%s\"), approved by %s; its record and ledger events remain",
           cu_json_str(rec, "id"), cu_json_str(d, "deleted_at"), cu_json_str(d, "request"), cu_json_str(d, "reason"),
           cu_json_str(json_object_get(d, "approved_by"), "user"));
  cu_json_set_str(o, "detail", msg);
  json_object_set(o, "record", (json_t *)rec);
  respond_json(r, 410, o, NULL);
  json_decref(o);
  return 1;
}

static int content(req *r) {
  if (auth_may_read_evidence(r, r->param[0])) return 0;
  json_t *rec = NULL, *rend = NULL;
  int rc = idx_evidence_get(r->a->ix, r->param[0], &rec);
  if (rc) return respond_error(r, rc, NULL);
  if (evidence_gone(r, rec)) return json_decref(rec), 0;
  const char *rendition = req_query(r, "rendition");
  if (!rendition) rendition = "original";
  bool known = !strcmp(rendition, "original");
  for (const char *const *k = rendition_kinds; *k; k++)
    if (!strcmp(*k, rendition)) known = true;
  if (!known) {
    json_decref(rec);
    return bad(r, "rendition must be original, master, access, framehash or poster");
  }
  if (strcmp(rendition, "original")) {
    bool answered;
    rc = find_rendition(r, r->param[0], rendition, &rend, &answered);
    if (answered || rc) {
      json_decref(rec);
      return rc;
    }
  }
  const char *sha = cu_json_str(rend ? rend : rec, "sha256");
  /* "clip.mp4" -> "clip.mp4.master.mkv": what it is, where it came from. A
   * rendition that is the original's own bytes keeps the original's name. */
  const char *orig_name = cu_json_str(rec, "filename");
  char fname[CU_MAX_FILENAME + 64] = "", ctype[128];
  const char *rec_sha = cu_json_str(rec, "sha256");
  if (rend && !(rec_sha && !strcmp(sha, rec_sha)))
    snprintf(fname, sizeof fname, "%s.%s.%s", orig_name && *orig_name ? orig_name : sha, rendition,
             rendition_extension(rendition));
  else if (orig_name)
    snprintf(fname, sizeof fname, "%s", orig_name);
  snprintf(ctype, sizeof ctype, "%s", rend && cu_json_str(rend, "content_type") ? cu_json_str(rend, "content_type") : content_type(rec));
  serve_item it = {r->param[0], sha, ctype, fname, rendition};
  rc = serve_object(r, &it);
  json_decref(rec);
  json_decref(rend);
  return rc;
}

const route evidence_routes[] = {
    {"GET", "/v1/evidence", READ_ROLES, 0, NULL, NULL, list, NULL, false},
    {"GET", "/v1/evidence/{}", READ_ROLES, 0, NULL, NULL, get_one, NULL, false},
    {"GET", "/v1/evidence/{}/content", READ_ROLES, 0, NULL, NULL, content, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
