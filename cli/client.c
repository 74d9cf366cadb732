#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cu_limits.h"
#include "err.h"
#include "hash.h"
#include "fsutil.h"
#include "timeu.h"
#include "banned.h"

static char *read_token_file(const char *path) {
  cu_buf b = CU_BUF_INIT(4096);
  if (cu_read_small_file(path, 4096, &b)) {
    cu_buf_release(&b);
    return NULL;
  }
  while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' || b.data[b.len - 1] == ' '))
    b.data[--b.len] = '\0';
  return cu_buf_detach(&b, NULL);
}

int client_option(client *c, int opt, const char *arg) {
  switch (opt) {
  case OPT_SERVER:
    free(c->server);
    c->server = cu_xstrdup(arg);
    return 1;
  case OPT_TOKEN:
    free(c->token);
    c->token = cu_xstrdup(arg);
    return 1;
  case OPT_TOKEN_FILE:
    free(c->token);
    c->token = read_token_file(arg);
    if (!c->token) {
      fprintf(stderr, "custos: cannot read token file %s: %s\n", arg, cu_errmsg());
      c->token = cu_xstrdup("");
    }
    return 1;
  default: return 0;
  }
}

int client_finish(client *c) {
  const char *e;
  if (!c->server) c->server = cu_xstrdup((e = getenv("CUSTOS_SERVER")) && *e ? e : "http://127.0.0.1:8080");
  size_t n = strlen(c->server);
  while (n > 1 && c->server[n - 1] == '/') c->server[--n] = '\0';
  if (!c->token && (e = getenv("CUSTOS_TOKEN")) && *e) c->token = cu_xstrdup(e);
  if (!c->token && (e = getenv("CUSTOS_TOKEN_FILE")) && *e) c->token = read_token_file(e);
  if (!c->token) {
    /* On the server's own machine the first admin token is right here. */
    const char *home = getenv("CUSTOS_HOME");
    char *p = cu_xasprintf("%s/admin.token", home && *home ? home : "./var");
    if (access(p, R_OK) == 0) c->token = read_token_file(p);
    free(p);
  }
  if (!c->token || !*c->token)
    return cu_error(CU_EAUTH, "no token: use --token, --token-file, or set CUSTOS_TOKEN");
  return 0;
}

void client_release(client *c) {
  free(c->server);
  free(c->token);
  c->server = c->token = NULL;
}

static size_t collect(char *p, size_t size, size_t n, void *ud) {
  return cu_buf_add(ud, p, size * n) ? 0 : size * n;
}

static int status_code(long status) {
  switch (status) {
  case 400: return CU_EINVAL;
  case 401: return CU_EAUTH;
  case 403: return CU_EDENIED;
  case 404: return CU_ENOTFOUND;
  case 409: return CU_ECONFLICT;
  case 410: return CU_EGONE;
  case 413: return CU_ETOOBIG;
  case 423: return CU_EBUSY;
  case 460: return CU_ECHECKSUM;
  case 507: return CU_ENOSPC;
  default: return CU_EIO;
  }
}

/* One request; the body goes to resp (up to its max). On an HTTP error
 * the server's {"error","detail"} becomes the message. */
static int request(const client *c, const char *method, const char *path, const json_t *body,
                   const char *accept, long *status, cu_buf *resp) {
  CURL *h = curl_easy_init();
  if (!h) return cu_error(CU_EIO, "cannot initialise libcurl");
  char *url = cu_xasprintf("%s%s", c->server, path);
  char *auth = cu_xasprintf("Authorization: Bearer %s", c->token);
  char *acc = cu_xasprintf("Accept: %s", accept);
  char *payload = body ? cu_json_canon(body, NULL) : NULL;
  struct curl_slist *hdr = curl_slist_append(NULL, auth);
  hdr = curl_slist_append(hdr, acc);
  if (payload) hdr = curl_slist_append(hdr, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
  if (payload) curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
  CURLcode cc = curl_easy_perform(h);
  long st = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
  int rc = 0;
  if (cc != CURLE_OK) {
    rc = cu_error(CU_EIO, "cannot reach %s: %s", c->server, curl_easy_strerror(cc));
  } else if (st >= 400) {
    json_t *v = NULL;
    if (resp->len) cu_json_parse(resp->data, resp->len, &v);
    const char *detail = cu_json_str(v, "detail");
    rc = cu_error(status_code(st), "server answered %ld: %s", st,
                  detail ? detail : (resp->data ? resp->data : ""));
    json_decref(v);
  }
  if (status) *status = st;
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  free(payload);
  free(auth);
  free(acc);
  free(url);
  return rc;
}

int client_json(const client *c, const char *method, const char *path, const json_t *body,
                long *status, json_t **out) {
  cu_buf resp = CU_BUF_INIT(CU_MAX_RECORD_BYTES * 64);
  json_t *v = NULL;
  int rc = request(c, method, path, body, "application/json", status, &resp);
  if (!rc && resp.len) cu_json_parse(resp.data, resp.len, &v);
  if (out) *out = v;
  else json_decref(v);
  cu_buf_release(&resp);
  return rc;
}

int client_get_bytes(const client *c, const char *path, cu_buf *out) {
  return request(c, "GET", path, NULL, "*/*", NULL, out);
}

void client_query_add(cu_buf *path, const char *name, const char *value) {
  if (!value) return;
  char *esc = curl_easy_escape(NULL, value, 0);
  cu_buf_printf(path, "%c%s=%s", strchr(path->data ? path->data : "", '?') ? '&' : '?', name, esc);
  curl_free(esc);
}

static bool progress_shown;

void cli_progress(const char *label, uint64_t done, uint64_t total, int64_t started_us) {
  if (!isatty(STDERR_FILENO)) return;
  double secs = (double)(cu_mono_us() - started_us) / 1e6;
  double rate = secs > 0 ? (double)done / secs / 1e6 : 0;
  int pct = total ? (int)(done * 100 / total) : 100;
  int filled = pct / 5;
  char bar[21];
  for (int i = 0; i < 20; i++) bar[i] = i < filled ? '#' : '.';
  bar[20] = '\0';
  fprintf(stderr, "\r%-32.32s [%s] %3d%% %8.1f MB/s", label, bar, pct, rate);
  progress_shown = true;
}

void cli_progress_end(void) {
  if (progress_shown) fprintf(stderr, "\n");
  progress_shown = false;
}

size_t cli_sink_write(char *p, size_t size, size_t n, void *ud) {
  cli_sink *s = ud;
  size_t len = size * n;
  if (cu_write_all(s->fd, p, len)) {
    s->err = errno ? errno : EIO;
    return 0;
  }
  cu_sha256_update(s->h, p, len);
  s->got += len;
  return len;
}
