/* The reviewer page and its session: GET / (and /app.js, /style.css) serve
 * the page compiled in from web/; POST /v1/session trades a bearer token
 * for a read-only cookie (api/auth.c says why), GET /v1/session says who
 * is signed in, DELETE /v1/session signs out. */
#include <stdio.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "timeu.h"
#include "web_assets.h"
#include "banned.h"

#define PEOPLE (ROLE_REVIEWER | ROLE_LEGAL | ROLE_ADMIN)

/* The page may only load itself: no inline script, no other origin. */
static const char csp[] = "default-src 'self'; img-src 'self'; media-src 'self'; object-src 'none'; "
                          "frame-ancestors 'none'; base-uri 'none'";

static int asset(req *r) {
  const char *path = !strcmp(r->url, "/") ? "/index.html" : r->url;
  for (const web_asset *w = web_assets; w->path; w++) {
    if (strcmp(w->path, path)) continue;
    const char *h[] = {"Content-Security-Policy", csp, "X-Content-Type-Options", "nosniff",
                       "Cache-Control", "no-cache", "Referrer-Policy", "no-referrer", NULL};
    return respond(r, 200, w->content_type, w->data, w->size, h);
  }
  return respond_status(r, 404, "not_found", "no such page", NULL);
}

static int session_new(req *r) {
  char id[48], cookie[160];
  int64_t expires;
  int rc = auth_session_open(r->a, req_header(r, "Authorization"), id, &expires);
  if (rc) return respond_error(r, rc, NULL);
  bool https = r->a->public_url && !strncmp(r->a->public_url, "https:", 6);
  snprintf(cookie, sizeof cookie, "custos_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", id,
           (long long)((expires - cu_now_us()) / 1000000), https ? "; Secure" : "");
  json_t *o = auth_actor(&r->who);
  cu_json_set_time(o, "expires_at", expires);
  const char *h[] = {"Set-Cookie", cookie, NULL};
  rc = respond_json(r, 201, o, h);
  json_decref(o);
  return rc;
}

static int session_get(req *r) {
  json_t *o = auth_actor(&r->who);
  int rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  return rc;
}

static int session_end(req *r) {
  char id[48];
  auth_session_cookie(req_header(r, "Cookie"), id);
  auth_session_close(r->a, id);
  const char *h[] = {"Set-Cookie", "custos_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", NULL};
  return respond(r, 204, NULL, "", 0, h);
}

const route web_routes[] = {
    {"GET", "/", ROLE_NONE, 0, NULL, NULL, asset, NULL, false},
    {"GET", "/index.html", ROLE_NONE, 0, NULL, NULL, asset, NULL, false},
    {"GET", "/app.js", ROLE_NONE, 0, NULL, NULL, asset, NULL, false},
    {"GET", "/style.css", ROLE_NONE, 0, NULL, NULL, asset, NULL, false},
    {"POST", "/v1/session", PEOPLE, 0, NULL, NULL, session_new, NULL, false},
    {"GET", "/v1/session", PEOPLE, 0, NULL, NULL, session_get, NULL, false},
    {"DELETE", "/v1/session", ROLE_NONE, 0, NULL, NULL, session_end, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
