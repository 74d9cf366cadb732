/* Evidence reads: listing, one record, and the original's bytes. Reading
 * is for legal and admin tokens; reviewers will read the cases they are
 * assigned once cases exist. */
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

#define READ_ROLES (ROLE_LEGAL | ROLE_ADMIN)

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
  json_t *items = NULL;
  char *next = NULL;
  int rc = idx_evidence_list(r->a->ix, &q, &items, &next);
  if (rc) return respond_error(r, rc, NULL);
  json_t *o = json_object();
  json_object_set_new(o, "items", items);
  json_object_set_new(o, "next_cursor", next ? json_string(next) : json_null());
  rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  free(next);
  return rc;
}

static int get_one(req *r) {
  json_t *rec = NULL, *rend = NULL;
  int rc = idx_evidence_get(r->a->ix, r->param[0], &rec);
  if (!rc) rc = idx_renditions(r->a->ix, r->param[0], &rend);
  if (rc) {
    json_decref(rec);
    return respond_error(r, rc, NULL);
  }
  json_object_set_new(rec, "renditions", rend);
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

/* One "bytes=" range: a-b, a-, or -n. 0 ok, 1 absent or not one range
 * (serve it all), -1 unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len) {
  if (!h || strncmp(h, "bytes=", 6) || strchr(h, ',')) return 1;
  const char *p = h + 6, *dash = strchr(p, '-');
  if (!dash) return 1;
  char a[24] = "", b[24] = "";
  size_t an = (size_t)(dash - p), bn = strlen(dash + 1);
  if (an >= sizeof a || bn >= sizeof b) return 1;
  memcpy(a, p, an);
  memcpy(b, dash + 1, bn + 1);
  int64_t x = 0, y = 0;
  if (!an) { /* suffix */
    if (cu_parse_i64(b, &y, 0) || y == 0) return y == 0 && bn ? -1 : 1;
    *len = (uint64_t)y > size ? size : (uint64_t)y;
    *off = size - *len;
    return size ? 0 : -1;
  }
  if (cu_parse_i64(a, &x, 0)) return 1;
  if ((uint64_t)x >= size) return -1;
  uint64_t last = size - 1;
  if (bn) {
    if (cu_parse_i64(b, &y, 0) || y < x) return 1;
    if ((uint64_t)y < last) last = (uint64_t)y;
  }
  *off = (uint64_t)x;
  *len = last - (uint64_t)x + 1;
  return 0;
}

static bool etag_matches(const char *inm, const char *etag) {
  if (!inm) return false;
  if (!strcmp(inm, "*")) return true;
  return strstr(inm, etag) != NULL;
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

static int content(req *r) {
  json_t *rec = NULL, *rend = NULL;
  int rc = idx_evidence_get(r->a->ix, r->param[0], &rec);
  if (rc) return respond_error(r, rc, NULL);
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
  int fd = -1;
  uint64_t size = 0;
  if ((rc = store_open_object(r->a->st, sha, &fd, &size))) {
    json_decref(rec);
    json_decref(rend);
    return respond_error(r, rc, NULL);
  }
  char etag[70], digest[80], crange[96], disp[(CU_MAX_FILENAME + 64) * 3 + 64];
  snprintf(etag, sizeof etag, "\"%s\"", sha);
  unsigned char raw[32];
  cu_hex_decode(sha, 64, raw, 32);
  cu_buf b64 = CU_BUF_INIT(64);
  cu_b64_encode(raw, 32, &b64);
  snprintf(digest, sizeof digest, "sha-256=:%s:", b64.data);
  cu_buf_release(&b64);
  /* A filename is a label from the client: offer it for saving, encoded
   * (RFC 6266/8187) so no byte of it can break the header. */
  const char *orig_name = cu_json_str(rec, "filename");
  char fname[CU_MAX_FILENAME + 64] = "";
  bool same_bytes = rend && !strcmp(sha, cu_json_str(rec, "sha256") ? cu_json_str(rec, "sha256") : "");
  if (rend && !same_bytes) /* "clip.mp4" -> "clip.mp4.master.mkv": what it is, where it came from */
    snprintf(fname, sizeof fname, "%s.%s.%s", orig_name && *orig_name ? orig_name : sha, rendition,
             rendition_extension(rendition));
  else if (orig_name) /* the original, or a rendition that is the original's bytes */
    snprintf(fname, sizeof fname, "%s", orig_name);
  char ctype[128];
  snprintf(ctype, sizeof ctype, "%s", rend && cu_json_str(rend, "content_type") ? cu_json_str(rend, "content_type") : content_type(rec));
  size_t dn = (size_t)snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", sha);
  if (*fname) {
    dn += (size_t)snprintf(disp + dn, sizeof disp - dn, "; filename*=UTF-8''");
    for (const unsigned char *c = (const unsigned char *)fname; *c && dn + 4 < sizeof disp; c++) {
      if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          strchr("!#$&+-.^_`|~", *c))
        disp[dn++] = (char)*c;
      else
        dn += (size_t)snprintf(disp + dn, sizeof disp - dn, "%%%02X", *c);
    }
    disp[dn] = '\0';
  }
  const char *h[] = {"ETag", etag, "Repr-Digest", digest, "Accept-Ranges", "bytes",
                     "Content-Type", ctype, "Content-Disposition", disp,
                     "Cache-Control", "private, no-transform", NULL, NULL, NULL};
  json_decref(rec);
  json_decref(rend);
  if (etag_matches(req_header(r, "If-None-Match"), etag)) {
    close(fd);
    return respond(r, 304, NULL, "", 0, h);
  }
  uint64_t off = 0, len = size;
  int pr = parse_range(req_header(r, "Range"), size, &off, &len);
  if (pr < 0) {
    close(fd);
    snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)size);
    const char *h416[] = {"Content-Range", crange, NULL};
    return respond_status(r, 416, "range_not_satisfiable", "the requested range is outside the file", h416);
  }
  if (pr == 0) {
    snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)off,
             (unsigned long long)(off + len - 1), (unsigned long long)size);
    h[12] = "Content-Range";
    h[13] = crange;
    return respond_fd(r, 206, fd, off, len, h);
  }
  return respond_fd(r, 200, fd, 0, size, h);
}

const route evidence_routes[] = {
    {"GET", "/v1/evidence", READ_ROLES, 0, NULL, NULL, list, NULL, false},
    {"GET", "/v1/evidence/{}", READ_ROLES, 0, NULL, NULL, get_one, NULL, false},
    {"GET", "/v1/evidence/{}/content", READ_ROLES, 0, NULL, NULL, content, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
