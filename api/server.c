/* DESIGN: libmicrohttpd runs its own thread pool (epoll, one event loop per
 * thread) and calls on_request on those threads: once when the headers are
 * in, once per piece of body, once at the end. Each request gets a req in
 * *con_cls; routing, token and role checks happen on the first call, so a
 * request that will be refused is answered before its body is read (and the
 * connection closed rather than drained, as tusd does). Slow work (probing)
 * goes to the job queue; what runs here is bounded: hashing and queueing
 * upload bytes, index reads, and the fsync that makes an upload durable.
 *
 * Shutdown: SIGTERM/SIGINT are taken by sigwait in the main thread (all
 * other threads block them). The daemon is quiesced (no new connections),
 * given a grace period, then stopped: an upload still in flight is parked at
 * a durable offset by its aborted hook, exactly as if the client had gone
 * away, and resumes after the restart. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "api_int.h"
#include "cu_limits.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "probe_job.h"
#include "clip_make.h"
#include "rendition_job.h"
#include "stamp_job.h"
#include "timeu.h"
#include "banned.h"

/* ---- responses --------------------------------------------------------- */

const char *req_header(req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *req_query(req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static const char tus_exposed[] =
    "Upload-Offset, Upload-Length, Location, Tus-Version, Tus-Resumable, Tus-Max-Size, "
    "Tus-Extension, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Expires, "
    "Custos-Evidence-Id, Custos-SHA256, Custos-Rendition, Repr-Digest, Content-Range, ETag";

int respond_response(req *r, int status, struct MHD_Response *resp, const char *const *headers) {
  if (!resp) return cu_error(CU_EIO, "cannot create a response");
  for (const char *const *h = headers; h && h[0]; h += 2)
    if (h[1]) MHD_add_response_header(resp, h[0], h[1]);
  if (r->rt && r->rt->tus) MHD_add_response_header(resp, "Tus-Resumable", "1.0.0");
  if (req_header(r, "Origin")) {
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", tus_exposed);
  }
  enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
  MHD_destroy_response(resp);
  r->responded = true;
  r->status = status;
  return ok == MHD_YES ? 0 : cu_error(CU_EIO, "cannot queue the response");
}

int respond(req *r, int status, const char *content_type, const void *body, size_t n,
            const char *const *headers) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (resp && content_type) MHD_add_response_header(resp, "Content-Type", content_type);
  return respond_response(r, status, resp, headers);
}

int respond_json(req *r, int status, const json_t *v, const char *const *headers) {
  char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
  size_t n = strlen(s);
  s = cu_xrealloc(s, n + 2);
  s[n++] = '\n';
  int rc = respond(r, status, "application/json", s, n, headers);
  free(s);
  return rc;
}

static int http_status_for(int code) {
  switch (code) {
  case CU_ENOTFOUND: return 404;
  case CU_EEXISTS: return 409;
  case CU_EINVAL: return 400;
  case CU_ETOOBIG: return 413;
  case CU_EBUSY: return 423;
  case CU_ENOSPC: return 507;
  case CU_ECONFLICT: return 409;
  case CU_ECHECKSUM: return 460;
  case CU_EAUTH: return 401;
  case CU_EDENIED: return 403;
  case CU_EGONE: return 410;
  case CU_EUNSUPPORTED: return 400;
  default: return 500;
  }
}

int respond_status(req *r, int status, const char *error, const char *detail,
                   const char *const *headers) {
  json_t *o = json_object();
  cu_json_set_str(o, "error", error);
  cu_json_set_str(o, "detail", detail);
  int rc = respond_json(r, status, o, headers);
  json_decref(o);
  return rc;
}

int respond_error(req *r, int code, const char *const *headers) {
  int status = http_status_for(code);
  if (status < 500) return respond_status(r, status, cu_errname(code), cu_errmsg(), headers);
  /* The log gets every detail; the client gets them without the server's
   * paths (the data directory shows as <home>). */
  cu_err("%s %s: %s", r->method, r->url, cu_errmsg());
  cu_buf d = CU_BUF_INIT(4096);
  const char *m = cu_errmsg(), *home = r->a->home;
  size_t hn = home ? strlen(home) : 0;
  for (const char *hit; hn && (hit = strstr(m, home)); m = hit + hn) {
    cu_buf_add(&d, m, (size_t)(hit - m));
    cu_buf_adds(&d, "<home>");
  }
  cu_buf_adds(&d, m);
  int rc = respond_status(r, status, cu_errname(code), d.data, headers);
  cu_buf_release(&d);
  return rc;
}

int respond_fd(req *r, int status, int fd, uint64_t offset, uint64_t len,
               const char *const *headers) {
  struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, offset);
  if (!resp) close(fd);
  return respond_response(r, status, resp, headers);
}

/* ---- routing ------------------------------------------------------------ */

static int h_healthz(req *r) {
  return respond(r, 200, "application/json", "{\"status\":\"ok\"}\n", 16, NULL);
}

static int h_metrics(req *r) {
  cu_buf out = CU_BUF_INIT(1 << 20);
  int rc = metrics_render(r->a, &out);
  if (!rc) rc = respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len, NULL);
  else rc = respond_error(r, rc, NULL);
  cu_buf_release(&out);
  return rc;
}

static const route misc_routes[] = {
    {"GET", "/healthz", ROLE_NONE, 0, NULL, NULL, h_healthz, NULL, false},
    {"GET", "/metrics", ROLE_ANY, 0, NULL, NULL, h_metrics, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};

static const route *const tables[] = {upload_routes, evidence_routes, ledger_routes, scrub_routes,
                                      job_routes,    token_routes,    case_routes,   clip_routes,   gov_routes,    web_routes,     stats_routes,
                                      export_routes, misc_routes};

/* Matches url against pattern, capturing {} segments. */
static bool match_path(const char *pattern, const char *url, req *r) {
  int np = 0;
  const char *p = pattern, *u = url;
  while (*p && *u) {
    if (p[0] == '{' && p[1] == '}') {
      const char *end = strchr(u, '/');
      size_t n = end ? (size_t)(end - u) : strlen(u);
      if (!n || n >= sizeof r->param[0] || np >= 2) return false;
      memcpy(r->param[np], u, n);
      r->param[np++][n] = '\0';
      u += n;
      p += 2;
    } else if (*p++ != *u++) {
      return false;
    }
  }
  return !*p && !*u;
}

/* An exact method match wins; HEAD falls back to the GET route. */
static const route *find_route(req *r, bool *path_known) {
  *path_known = false;
  const route *fallback = NULL;
  for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
    for (const route *rt = tables[t]; rt->method; rt++) {
      if (!match_path(rt->pattern, r->url, r)) continue;
      *path_known = true;
      if (!strcmp(rt->method, r->method)) return rt;
      if (!fallback && !strcmp(rt->method, "GET") && !strcmp(r->method, "HEAD")) fallback = rt;
    }
  }
  if (fallback) match_path(fallback->pattern, r->url, r);
  return fallback;
}

static bool is_preflight(req *r) {
  return !strcmp(r->method, "OPTIONS") && req_header(r, "Origin") &&
         req_header(r, "Access-Control-Request-Method");
}

static int preflight(req *r) {
  static const char *const h[] = {
      "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
      "Access-Control-Allow-Headers",
      "Authorization, Content-Type, Tus-Resumable, Upload-Length, Upload-Metadata, "
      "Upload-Offset, Upload-Checksum, Upload-Defer-Length, X-HTTP-Method-Override, "
      "X-Request-ID, Range, If-None-Match",
      "Access-Control-Max-Age", "86400", NULL};
  return respond(r, 204, NULL, "", 0, h);
}

/* The first call for a request: route, version, token, role. */
static void begin(req *r) {
  const char *ovr = req_header(r, "X-HTTP-Method-Override");
  if (ovr && !strcmp(r->method, "POST")) {
    static const char *const allowed[] = {"PATCH", "PUT", "DELETE", "HEAD", "GET"};
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
      if (!strcmp(ovr, allowed[i])) r->method = allowed[i];
  }
  if (is_preflight(r)) {
    preflight(r);
    return;
  }
  bool known;
  r->rt = find_route(r, &known);
  if (!r->rt) {
    if (known) respond_status(r, 405, "method_not_allowed", "this resource does not support that method", NULL);
    else respond_status(r, 404, "not_found", "no such endpoint", NULL);
    return;
  }
  if (r->rt->tus && strcmp(r->method, "OPTIONS") && strcmp(r->method, "GET")) {
    const char *v = req_header(r, "Tus-Resumable");
    if (!v || strcmp(v, "1.0.0")) {
      static const char *const h[] = {"Tus-Version", "1.0.0", NULL};
      respond_status(r, 412, "precondition_failed",
                     v ? "unsupported Tus-Resumable version; this server speaks 1.0.0"
                       : "the Tus-Resumable: 1.0.0 header is required",
                     h);
      return;
    }
  }
  if (r->rt->roles != ROLE_NONE) {
    const char *authz = req_header(r, "Authorization");
    static const char *const www[] = {"WWW-Authenticate", "Bearer realm=\"custos\"", NULL};
    char sid[48] = "";
    if (!authz) auth_session_cookie(req_header(r, "Cookie"), sid);
    bool reading = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
    int rc;
    if (sid[0] && !reading) /* a cookie rides on any request to us: it may only read */
      rc = cu_error(CU_EAUTH, "a browser session can only read; changes need the 'Authorization: Bearer' header");
    else
      rc = sid[0] ? auth_resolve_session(r->a, sid, &r->who) : auth_resolve(r->a, authz, &r->who);
    if (rc) {
      respond_error(r, rc, www);
      return;
    }
    if (!(r->rt->roles & r->who.role_bit)) {
      cu_error(CU_EDENIED, "a %s token may not use %s %s", r->who.role, r->method, r->rt->pattern);
      respond_error(r, CU_EDENIED, NULL);
      return;
    }
  }
  cu_buf_init(&r->body, r->rt->max_body);
  if (r->rt->begin) r->rt->begin(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  req *r = *con_cls;
  if (!r) {
    r = cu_xcalloc(1, sizeof *r);
    r->a = cls;
    r->conn = conn;
    r->url = url;
    r->method = method;
    r->started_us = cu_mono_us();
    *con_cls = r;
    begin(r);
    return MHD_YES;
  }
  if (r->resumed) {
    int (*fn)(req *) = r->resumed;
    r->resumed = NULL;
    r->suspended = false;
    fn(r);
    if (!r->responded) respond_error(r, cu_error(CU_EIO, "internal error: no response was produced"), NULL);
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (r->responded || r->too_big) return MHD_YES;
    if (r->rt->data) {
      r->rt->data(r, upload_data, n);
    } else if (cu_buf_add(&r->body, upload_data, n)) {
      r->too_big = true;
    }
    return MHD_YES;
  }
  if (!r->responded && !r->ended) {
    r->ended = true;
    if (r->too_big) {
      char msg[96];
      snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", r->rt->max_body);
      respond_status(r, 413, "too_large", msg, NULL);
    } else {
      r->rt->end(r);
    }
    if (!r->responded && !r->suspended) {
      cu_error(CU_EIO, "internal error: no response was produced");
      respond_error(r, CU_EIO, NULL);
    }
  }
  return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  req *r = *con_cls;
  if (!r) return;
  if (r->rt && !r->ended && r->rt->aborted) r->rt->aborted(r);
  if (!r->responded && !r->status) r->status = 499; /* the client went away */
  int64_t dur = cu_mono_us() - r->started_us;
  metrics_observe(r->status, dur);
  int level = r->status >= 500 ? CU_LOG_WARN : r->status >= 400 ? CU_LOG_INFO : CU_LOG_DEBUG;
  cu_log(level, "%s %s -> %d (%.1f ms)", r->method, r->url, r->status, (double)dur / 1000.0);
  cu_buf_release(&r->body);
  free(r);
  *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n && line[n - 1] == '\n') line[--n] = '\0';
  cu_debug("http: %s", line);
}

/* ---- lifecycle ---------------------------------------------------------- */

void api_config_defaults(api_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->home = "./var";
  cfg->listen = "127.0.0.1:8080";
  cfg->http_threads = 8;
  cfg->max_upload = CU_DEFAULT_MAX_UPLOAD;
  cfg->upload_ttl_s = 7 * 24 * 3600;
  cfg->reserve_bytes = CU_DEFAULT_RESERVE_BYTES;
  cfg->sweep_interval_s = 60;
  cfg->tsa_timeout_s = 30;
  cfg->stamp_retry_max_s = 300;
  cfg->scrub_rate = 8 << 20;
  cfg->job_time_limit_s = 3600;
  cfg->media_time_limit_s = 12 * 3600;
  cfg->access_max_side = 1280;
  cfg->scrub_idle_s = 3600;
  gov_config_defaults(&cfg->governance);
  cfg->retention_sweep_s = 24 * 3600;
}

static int make_layout(const char *home) {
  static const char *const dirs[] = {"index", "spool", "objects", "quarantine", "exports", "work"};
  int rc = cu_mkdirs(home, 0750);
  for (size_t i = 0; !rc && i < sizeof dirs / sizeof *dirs; i++) {
    char *p = cu_path_join(home, dirs[i]);
    rc = cu_mkdirs(p, 0750);
    free(p);
  }
  if (!rc) {
    char *p = cu_path_join(home, "keys");
    rc = cu_mkdirs(p, 0700);
    free(p);
  }
  return rc;
}

/* On the very first start, make an admin token and leave its secret where
 * only the operator can read it. Once: a deleted admin.token file is not
 * recreated (an admin can make more tokens). */
static int first_start(api *a) {
  json_t *flag = NULL;
  int rc = idx_meta_get(a->ix, "admin_token_created", &flag);
  json_decref(flag);
  if (rc != CU_ENOTFOUND) return rc;
  char *secret = NULL;
  json_t *rec = NULL;
  char *path = cu_path_join(a->home, "admin.token");
  rc = auth_token_create(a, "admin", NULL, "admin", "first start", &secret, &rec);
  if (!rc) {
    char *line = cu_xasprintf("%s\n", secret);
    rc = cu_write_file_durable(path, line, strlen(line), 0600, 0);
    free(line);
  }
  if (!rc) {
    idx_batch *b = idx_batch_new(a->ix);
    json_t *t = json_true();
    idx_batch_put_meta(b, "admin_token_created", t);
    json_decref(t);
    rc = idx_batch_commit(a->ix, b);
    idx_batch_free(b);
  }
  if (!rc) cu_info("first start: an admin token was written to %s (mode 0600)", path);
  free(secret);
  free(path);
  json_decref(rec);
  return rc;
}

/* Every CA the archive's tokens have ever chained to, kept in the index so
 * that custos verify can check old tokens after a change of TSA. */
static int remember_tsa_ca(api *a) {
  cu_buf pem = CU_BUF_INIT(1 << 20);
  json_t *list = NULL;
  int rc = tsa_ca_pem(a->ts, &pem);
  if (!rc) {
    rc = idx_meta_get(a->ix, "tsa_roots", &list);
    if (rc == CU_ENOTFOUND) {
      list = json_array();
      rc = 0;
    }
  }
  bool known = false;
  size_t i;
  json_t *v;
  if (!rc) {
    json_array_foreach(list, i, v) {
      if (json_is_string(v) && !strcmp(json_string_value(v), pem.data)) known = true;
    }
  }
  if (!rc && !known) {
    json_array_append_new(list, json_string(pem.data));
    idx_batch *b = idx_batch_new(a->ix);
    idx_batch_put_meta(b, "tsa_roots", list);
    rc = idx_batch_commit(a->ix, b);
    idx_batch_free(b);
  }
  json_decref(list);
  cu_buf_release(&pem);
  return rc;
}

typedef struct {
  api *a;
  int interval_s;
  int retention_s;       /* the retention sweep's period */
  int64_t retention_due; /* on cu_mono_us()'s clock */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
} sweeper;

static void *sweeper_main(void *arg) {
  sweeper *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += s->interval_s;
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    if (s->stop) break;
    pthread_mutex_unlock(&s->mu);
    int n = 0;
    if (tus_sweep(s->a->tu, cu_now_us(), &n)) cu_err("upload sweep failed: %s", cu_errmsg());
    if (cu_mono_us() >= s->retention_due) {
      /* It proposes; a person decides (archive/gov.h). */
      if (gov_sweep(s->a->gov, cu_now_us(), &n)) cu_err("retention sweep failed: %s", cu_errmsg());
      s->retention_due = cu_mono_us() + (int64_t)s->retention_s * 1000000;
    }
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* An approved deletion's tombstone queues the purge of its bytes in the
 * same write: a crash between the two cannot forget it. */
static void queue_purge(void *ud, idx_batch *b, const char *evidence_id) {
  api *a = ud;
  job_batch_add(a->jq, b, "purge", evidence_id, NULL);
}

static void export_decided(void *ud, idx_batch *b, const char *export_id, bool approved) {
  api *a = ud;
  export_job_decided(a->exports, b, export_id, approved);
}

static int purge_job_run(void *ud, const char *job_id, const json_t *job) {
  return gov_purge(ud, cu_json_str(job, "evidence") ? cu_json_str(job, "evidence") : "");
}

static int parse_listen(const char *listen, struct addrinfo **out) {
  char host[256];
  const char *colon = strrchr(listen, ':');
  if (!colon) return cu_error(CU_EINVAL, "--listen must be HOST:PORT, not '%s'", listen);
  size_t hn = (size_t)(colon - listen);
  if (hn >= sizeof host) return cu_error(CU_EINVAL, "--listen host is too long");
  memcpy(host, listen, hn);
  host[hn] = '\0';
  if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') {
    memmove(host, host + 1, hn - 2);
    host[hn - 2] = '\0';
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
  int e = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, out);
  if (e) return cu_error(CU_EINVAL, "cannot use --listen %s: %s", listen, gai_strerror(e));
  return 0;
}

static int write_port_file(const char *path, unsigned port) {
  char line[16];
  int n = snprintf(line, sizeof line, "%u\n", port);
  return cu_write_file_durable(path, line, (size_t)n, 0644, 0);
}

int api_run(const api_config *cfg) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  api a = {0};
  struct MHD_Daemon *d = NULL;
  struct addrinfo *ai = NULL;
  sweeper sw = {.a = &a, .interval_s = cfg->sweep_interval_s > 0 ? cfg->sweep_interval_s : 60,
                .retention_s = cfg->retention_sweep_s > 0 ? cfg->retention_sweep_s : 86400};
  sw.retention_due = cu_mono_us() + (int64_t)sw.retention_s * 1000000;
  if (sw.retention_s < sw.interval_s) sw.interval_s = sw.retention_s;
  pthread_mutex_init(&sw.mu, NULL);
  pthread_cond_init(&sw.cv, NULL);
  pthread_t sweep_thread;
  bool sweeping = false;
  char *p = NULL, *keys = NULL, *work = NULL;
  int rc = 0;

  char *home = realpath(cfg->home, NULL);
  if (!home) {
    if ((rc = make_layout(cfg->home))) goto done;
    home = realpath(cfg->home, NULL);
    if (!home) {
      rc = cu_error_errno(CU_EIO, errno, "cannot resolve %s", cfg->home);
      goto done;
    }
  }
  a.home = home;
  a.max_upload = cfg->max_upload;
  a.public_url = cfg->public_url;
  if ((rc = make_layout(home))) goto done;
  p = cu_path_join(home, "index");
  rc = idx_open(&a.ix, p);
  free(p);
  if (rc) goto done;
  keys = cu_path_join(home, "keys");
  ledger_opts lo = {.keys_dir = keys, .origin = cfg->ledger_origin};
  if ((rc = ledger_open(&a.lg, a.ix, &lo))) goto done;
  if (cfg->tsa_url) rc = tsa_open_external(&a.ts, cfg->tsa_url, cfg->tsa_ca, cfg->tsa_timeout_s);
  else rc = tsa_open_builtin(&a.ts, keys);
  if (rc) goto done;
  if ((rc = remember_tsa_ca(&a))) goto done;
  if ((rc = first_start(&a))) goto done;
  p = cu_path_join(home, "objects");
  rc = store_open(&a.st, p);
  free(p);
  if (rc) goto done;

  char *exports = cu_path_join(home, "exports");
  rc = gov_open(&a.gov, a.ix, a.lg, a.st, exports, &cfg->governance);
  free(exports);
  if (rc) goto done;
  gov_set_hooks(a.gov, queue_purge, export_decided, &a);
  const char *categories[GOV_MAX_CATEGORIES + 1];
  gov_category_names(&cfg->governance, categories);

  work = cu_path_join(home, "work");
  int64_t media_limit = (int64_t)cfg->media_time_limit_s * 1000000;
  rendition_ctx rend = {.ix = a.ix, .st = a.st, .lg = a.lg, .work_dir = work,
                        .access_max_side = cfg->access_max_side, .threads = cfg->media_threads,
                        .time_limit_us = media_limit};
  probe_job_ctx probe = {a.ix, a.st, CU_PROBE_TIMEOUT_SEC, a.lg};
  stamp_job_ctx stamp = {a.ix, a.lg, a.ts, cfg->tsa_url ? cfg->tsa_url : "built-in", NULL};
  export_job_ctx exp = {.ix = a.ix, .st = a.st, .lg = a.lg, .ts = a.ts, .rend = &rend, .home = home,
                        .organization = cfg->organization, .mu = PTHREAD_MUTEX_INITIALIZER};
  /* A stamp waits for its TSA however long it is down: retried until done. */
  int64_t stamp_max = (int64_t)(cfg->stamp_retry_max_s > 0 ? cfg->stamp_retry_max_s : 300) * 1000000;
  /* Time limits: the probe has its own deadline inside libavformat, a stamp
   * one per TSA request; the queue's is the backstop for a hang. */
  int64_t stamp_limit = (int64_t)(2 * cfg->tsa_timeout_s + 30) * 1000000;
  job_handler handlers[] = {
      {.kind = "probe", .run = probe_job_run, .ud = &probe,
       .time_limit_us = (int64_t)(2 * CU_PROBE_TIMEOUT_SEC + 30) * 1000000},
      {.kind = "stamp", .run = stamp_job_run, .ud = &stamp, .max_attempts = -1,
       .backoff_us = 1000000, .max_backoff_us = stamp_max, .time_limit_us = stamp_limit},
      {.kind = "stamp_sth", .run = stamp_sth_job_run, .ud = &stamp, .max_attempts = -1,
       .backoff_us = 1000000, .max_backoff_us = stamp_max, .time_limit_us = stamp_limit},
#define RENDITION(k) {.kind = k, .run = rendition_job_run, .ud = &rend, .time_limit_us = media_limit, \
                      .verdicts_final = true, .idle_priority = true, .on_failed = rendition_job_failed}
      RENDITION("framehash"), RENDITION("master"), RENDITION("access"), RENDITION("poster"),
#undef RENDITION
      {.kind = "purge", .run = purge_job_run, .ud = a.gov},
      {.kind = "clip_check", .run = clip_check_job_run, .ud = &rend, .time_limit_us = media_limit,
       .verdicts_final = true, .idle_priority = true, .max_attempts = -1, .backoff_us = 2000000,
       .max_backoff_us = 120000000},
      {.kind = "export", .run = export_job_run, .ud = &exp, .time_limit_us = media_limit,
       .verdicts_final = true, .on_failed = export_job_failed},
  };
  job_opts jo = {.workers = cfg->workers, .max_attempts = 3, .backoff_us = 5000000,
                 .time_limit_us = (int64_t)cfg->job_time_limit_s * 1000000};
  if ((rc = job_queue_open(&a.jq, a.ix, handlers, (int)(sizeof handlers / sizeof *handlers), &jo)))
    goto done;
  stamp.jq = a.jq;
  rend.jq = a.jq;
  a.rend = &rend;
  if ((rc = rendition_work_sweep(work))) goto done;
  exp.jq = a.jq;
  exp.gov = a.gov;
  exp.needs_approval = cfg->governance.export_needs_approval;
  a.exports = &exp;
  if ((rc = export_job_sweep(&exp))) goto done;

  char *spool = cu_path_join(home, "spool"), *quar = cu_path_join(home, "quarantine");
  tus_config tc = {.spool_dir = spool,
                   .quarantine_dir = quar,
                   .max_upload = cfg->max_upload,
                   .ttl_us = cfg->upload_ttl_s * 1000000,
                   .reserve_bytes = cfg->reserve_bytes,
                   .checkpoint_every = CU_CHECKPOINT_BYTES,
                   .retention_categories = categories};
  rc = tus_open(&a.tu, &tc, a.ix, a.st, a.jq, a.lg);
  free(spool);
  free(quar);
  if (rc) goto done;
  if ((rc = tus_recover(a.tu))) goto done;
  if ((rc = job_queue_start(a.jq))) goto done;
  if ((rc = ledger_start_signer(a.lg, stamp_job_sth_hook, &stamp))) goto done;
  scrub_opts so = {.rate = cfg->scrub_rate, .idle_after_us = (int64_t)cfg->scrub_idle_s * 1000000};
  if ((rc = scrub_start(&a.scrub, a.ix, a.st, a.lg, &so))) goto done;

  if ((rc = parse_listen(cfg->listen, &ai))) goto done;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                   MHD_ALLOW_SUSPEND_RESUME;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &a,
                       MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, to catch all */
                       MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                       MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->http_threads > 0 ? cfg->http_threads : 8),
                       MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
                       MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
                       MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                       MHD_OPTION_NOTIFY_COMPLETED, on_completed, &a,
                       MHD_OPTION_END);
  if (!d) {
    rc = cu_error(CU_EIO, "cannot listen on %s (is the port in use?)", cfg->listen);
    goto done;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  unsigned port = info ? info->port : 0;
  if (cfg->port_file && (rc = write_port_file(cfg->port_file, port))) goto done;
  char hostpart[300];
  snprintf(hostpart, sizeof hostpart, "%.*s", (int)(strrchr(cfg->listen, ':') - cfg->listen), cfg->listen);
  printf("custos: serving %s on http://%s:%u (evidence count %llu)\n", home,
         hostpart[0] ? hostpart : "0.0.0.0", port, (unsigned long long)idx_evidence_count(a.ix));
  fflush(stdout);

  if (pthread_create(&sweep_thread, NULL, sweeper_main, &sw) == 0) sweeping = true;

  int sig = 0;
  sigwait(&sigs, &sig);
  cu_info("received %s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");

done:
  if (sweeping) {
    pthread_mutex_lock(&sw.mu);
    sw.stop = true;
    pthread_cond_signal(&sw.cv);
    pthread_mutex_unlock(&sw.mu);
    pthread_join(sweep_thread, NULL);
  }
  if (d) {
    /* Clips being made give up and answer, so no connection is suspended
     * when the daemon stops (libmicrohttpd forbids it). */
    atomic_store(&a.stopping, 1);
    while (atomic_load(&a.suspended) > 0) usleep(10 * 1000);
    MHD_socket ls = MHD_quiesce_daemon(d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    /* A grace period for short requests; long uploads are parked. */
    for (int i = 0; i < 50; i++) {
      const union MHD_DaemonInfo *ci = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
      if (!ci || ci->num_connections == 0) break;
      usleep(100 * 1000);
    }
    MHD_stop_daemon(d);
  }
  if (ai) freeaddrinfo(ai);
  /* Workers first (a stamp appends to the ledger), then the signer's last
   * head (which queues its own stamp for the next start). */
  scrub_free(a.scrub);
  job_queue_stop(a.jq);
  ledger_free(a.lg);
  job_queue_free(a.jq);
  tsa_free(a.ts);
  gov_free(a.gov);
  free(keys);
  free(work);
  tus_free(a.tu);
  store_free(a.st);
  idx_close(a.ix);
  pthread_mutex_destroy(&sw.mu);
  pthread_cond_destroy(&sw.cv);
  if (rc) cu_err("%s", cu_errmsg());
  else cu_info("stopped cleanly");
  free(home);
  return rc;
}
