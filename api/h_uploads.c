/* tus 1.0.0 over HTTP: headers in, tus_* calls, headers out. The protocol
 * state machine itself is ingest/tus.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"
#include "cu_limits.h"
#include "err.h"
#include "timeu.h"
#include "banned.h"

#define OCTETS "application/offset+octet-stream"

typedef struct {
  tus_patch *patch;
  tus_info info;
} upload_state;

static upload_state *state(req *r) {
  if (!r->state) r->state = cu_xcalloc(1, sizeof(upload_state));
  return r->state;
}

static void free_state(req *r) {
  upload_state *s = r->state;
  if (!s) return;
  tus_info_release(&s->info);
  free(s);
  r->state = NULL;
}

/* Content-Length, or -1 for a chunked (or absent) body. */
static int64_t content_length(req *r) {
  const char *cl = req_header(r, "Content-Length");
  int64_t n;
  if (cl && cu_parse_i64(cl, &n, 0) == 0) return n;
  return -1;
}

static bool has_body(req *r) {
  int64_t n = content_length(r);
  const char *te = req_header(r, "Transfer-Encoding");
  return n > 0 || (te && strcasestr(te, "chunked"));
}

static bool is_octets(req *r) {
  const char *ct = req_header(r, "Content-Type");
  return ct && !strncasecmp(ct, OCTETS, sizeof OCTETS - 1) &&
         (ct[sizeof OCTETS - 1] == '\0' || ct[sizeof OCTETS - 1] == ';' || ct[sizeof OCTETS - 1] == ' ');
}

/* A Host header we will echo: host or IP literal, optional port. */
static bool plain_host(const char *h) {
  size_t n = strlen(h);
  if (!n || n > 255) return false;
  for (size_t i = 0; i < n; i++) {
    char c = h[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
      return false;
  }
  return true;
}

/* The upload's URL: under --public-url when the server sits behind a proxy
 * (TLS, another host), else from the request's Host, else relative. */
static void location(req *r, const char *id, char *out, size_t n) {
  const char *host = req_header(r, "Host");
  if (r->a->public_url) snprintf(out, n, "%s/v1/uploads/%s", r->a->public_url, id);
  else if (host && plain_host(host)) snprintf(out, n, "http://%s/v1/uploads/%s", host, id);
  else snprintf(out, n, "/v1/uploads/%s", id);
}

/* Response headers describing an upload; strings live in buf. */
typedef struct {
  char offset[24], length[24], expires[CU_HTTPDATE_LEN], location[512];
  const char *h[24];
} upload_headers;

static const char *const *headers_for(req *r, const tus_info *in, upload_headers *u,
                                      bool with_location, bool head) {
  int n = 0;
  snprintf(u->offset, sizeof u->offset, "%lld", (long long)in->offset);
  u->h[n++] = "Upload-Offset";
  u->h[n++] = u->offset;
  if (head) {
    snprintf(u->length, sizeof u->length, "%lld", (long long)in->length);
    u->h[n++] = "Upload-Length";
    u->h[n++] = u->length;
    u->h[n++] = "Cache-Control";
    u->h[n++] = "no-store";
    if (in->metadata && in->metadata[0]) {
      u->h[n++] = "Upload-Metadata";
      u->h[n++] = in->metadata;
    }
  }
  if (in->expires_us && (in->state == TUS_ACTIVE || in->state == TUS_COMMITTING)) {
    cu_time_httpdate(in->expires_us, u->expires);
    u->h[n++] = "Upload-Expires";
    u->h[n++] = u->expires;
  }
  if (in->evidence_id[0]) {
    u->h[n++] = "Custos-Evidence-Id";
    u->h[n++] = in->evidence_id;
    u->h[n++] = "Custos-SHA256";
    u->h[n++] = in->sha256;
  }
  if (with_location) {
    location(r, in->id, u->location, sizeof u->location);
    u->h[n++] = "Location";
    u->h[n++] = u->location;
  }
  u->h[n] = NULL;
  return u->h;
}

static int options(req *r) {
  char max[24];
  snprintf(max, sizeof max, "%lld", (long long)r->a->max_upload);
  static const char ext[] = "creation,creation-with-upload,termination,checksum,expiration";
  const char *h[] = {"Tus-Version", "1.0.0", "Tus-Extension", ext,
                     "Tus-Checksum-Algorithm", "sha1,sha256", "Tus-Max-Size", max, NULL};
  return respond(r, 204, NULL, "", 0, h);
}

static int start_patch(req *r, upload_state *s, const char *id, int64_t offset, int64_t length) {
  return tus_patch_begin(r->a->tu, &r->who.tp, id, offset, length, req_header(r, "Upload-Checksum"),
                         content_length(r), &s->patch);
}

static int create_begin(req *r) {
  upload_state *s = state(r);
  if (req_header(r, "Upload-Defer-Length"))
    return respond_status(r, 400, "invalid", "deferred Upload-Length is not supported; send Upload-Length", NULL);
  const char *len = req_header(r, "Upload-Length");
  int64_t length;
  if (!len || cu_parse_i64(len, &length, 0))
    return respond_status(r, 400, "invalid", "Upload-Length must be a non-negative integer", NULL);
  bool body = has_body(r);
  if (body && !is_octets(r))
    return respond_status(r, 415, "unsupported_media_type",
                          "an upload body must be Content-Type: " OCTETS, NULL);
  /* A body that cannot fit is refused before anything is created. (A
   * chunked one that turns out too long is caught in create_end.) */
  if (body && (content_length(r) > length || length == 0))
    return respond_status(r, 413, "too_large", "the request body is longer than Upload-Length", NULL);
  const char *meta = req_header(r, "Upload-Metadata");
  int rc = tus_create(r->a->tu, &r->who.tp, length, meta, &s->info);
  if (rc) return respond_error(r, rc, NULL);
  if (body && (rc = start_patch(r, s, s->info.id, 0, -1))) {
    upload_headers u;
    return respond_error(r, rc, headers_for(r, &s->info, &u, true, false));
  }
  return 0;
}

static int body_data(req *r, const char *data, size_t n) {
  upload_state *s = r->state;
  if (s && s->patch) tus_patch_write(s->patch, data, n); /* an error is kept in the patch */
  return 0;
}

static int create_end(req *r) {
  upload_state *s = state(r);
  upload_headers u;
  int rc = 0;
  if (s->patch) {
    tus_info info;
    rc = tus_patch_end(s->patch, true, &info);
    s->patch = NULL;
    tus_info_release(&s->info);
    s->info = info;
  }
  if (rc == CU_ETOOBIG) {
    /* The chunked body ran past Upload-Length: nothing is created. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cu_errmsg());
    tus_terminate(r->a->tu, &r->who.tp, s->info.id);
    cu_error(rc, "%s", msg);
    respond_error(r, rc, NULL);
  } else if (rc) {
    respond_error(r, rc, headers_for(r, &s->info, &u, true, false));
  } else {
    respond(r, 201, NULL, "", 0, headers_for(r, &s->info, &u, true, false));
  }
  free_state(r);
  return rc;
}

static void body_aborted(req *r) {
  upload_state *s = r->state;
  if (s && s->patch) {
    tus_info info;
    tus_patch_end(s->patch, false, &info);
    tus_info_release(&info);
    s->patch = NULL;
  }
  free_state(r);
}

static int head(req *r) {
  tus_info info;
  int rc = tus_head(r->a->tu, &r->who.tp, r->param[0], &info);
  if (rc) {
    static const char *const h[] = {"Cache-Control", "no-store", NULL};
    return respond_error(r, rc, h);
  }
  upload_headers u;
  rc = respond(r, 200, NULL, "", 0, headers_for(r, &info, &u, false, true));
  tus_info_release(&info);
  return rc;
}

static int patch_begin(req *r) {
  upload_state *s = state(r);
  if (!is_octets(r))
    return respond_status(r, 415, "unsupported_media_type",
                          "PATCH bodies must be Content-Type: " OCTETS, NULL);
  const char *off = req_header(r, "Upload-Offset"), *len = req_header(r, "Upload-Length");
  int64_t offset, length = -1;
  if (!off || cu_parse_i64(off, &offset, 0))
    return respond_status(r, 400, "invalid", "Upload-Offset must be a non-negative integer", NULL);
  if (len && cu_parse_i64(len, &length, 0))
    return respond_status(r, 400, "invalid", "Upload-Length must be a non-negative integer", NULL);
  int rc = start_patch(r, s, r->param[0], offset, length);
  if (rc) {
    free_state(r);
    return respond_error(r, rc, NULL);
  }
  return 0;
}

static int patch_end(req *r) {
  upload_state *s = state(r);
  tus_info info;
  int rc = tus_patch_end(s->patch, true, &info);
  s->patch = NULL;
  upload_headers u;
  if (rc) respond_error(r, rc, info.id[0] ? headers_for(r, &info, &u, false, false) : NULL);
  else respond(r, 204, NULL, "", 0, headers_for(r, &info, &u, false, false));
  tus_info_release(&info);
  free_state(r);
  return rc;
}

static int terminate(req *r) {
  int rc = tus_terminate(r->a->tu, &r->who.tp, r->param[0]);
  if (rc) return respond_error(r, rc, NULL);
  return respond(r, 204, NULL, "", 0, NULL);
}

static int status(req *r) {
  json_t *o = NULL;
  int rc = tus_status_json(r->a->tu, &r->who.tp, r->param[0], &o);
  if (rc) return respond_error(r, rc, NULL);
  static const char *const h[] = {"Cache-Control", "no-store", NULL};
  rc = respond_json(r, 200, o, h);
  json_decref(o);
  return rc;
}

#define UPLOAD_ROLES (ROLE_RECORDER | ROLE_ADMIN)
const route upload_routes[] = {
    {"OPTIONS", "/v1/uploads", ROLE_NONE, 0, NULL, NULL, options, NULL, true},
    {"OPTIONS", "/v1/uploads/{}", ROLE_NONE, 0, NULL, NULL, options, NULL, true},
    {"POST", "/v1/uploads", UPLOAD_ROLES, 0, create_begin, body_data, create_end, body_aborted, true},
    {"HEAD", "/v1/uploads/{}", UPLOAD_ROLES, 0, NULL, NULL, head, NULL, true},
    {"PATCH", "/v1/uploads/{}", UPLOAD_ROLES, 0, patch_begin, body_data, patch_end, body_aborted, true},
    {"DELETE", "/v1/uploads/{}", UPLOAD_ROLES, 0, NULL, NULL, terminate, NULL, true},
    {"GET", "/v1/uploads/{}", UPLOAD_ROLES, 0, NULL, NULL, status, NULL, true},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
