/* DESIGN: one file is one loop of small steps, each a single HTTP request
 * whose outcome is one of: go on, retry after a pause, or fail for good.
 *
 *   no URL       -> POST /v1/uploads (Upload-Length, Upload-Metadata with
 *                   our SHA-256) -> remember the Location before any byte
 *   offset unknown -> HEAD: the server's durable offset (404/403 forget the
 *                   URL and start again; 410 may mean quarantined)
 *   offset < size -> PATCH the rest (or a --chunk-size piece), streamed
 *                   from the file by libcurl's read callback
 *   offset = size but no evidence id -> GET the upload as JSON (the answer
 *                   to the last PATCH was lost; "committing" means wait)
 *
 * Any failure makes the offset unknown again, so the next step is a HEAD:
 * the only offset this client ever trusts is one the server reported. The
 * pause doubles from 0.5 s to 30 s with jitter (many docks coming back after
 * an outage should not arrive in step), and the count of failures resets
 * whenever the server's offset moves forward: a slow link that keeps
 * breaking still gets there. */
#include "push.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "json.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

/* Backoff between attempts: tus-js-client starts at 0 and tops out at 5 s;
 * a dock riding out a server restart wants a quick first retry and, for a
 * long outage, no more than one request per half minute. */
#define PUSH_BACKOFF_FIRST_US 500000LL
#define PUSH_BACKOFF_MAX_US 30000000LL
/* The server's error bodies are small JSON objects; keep no more. */
#define PUSH_MAX_RESPONSE_BODY (64 * 1024)
/* State and done-marker files are a few hundred bytes; a bigger one was
 * not written by us. */
#define PUSH_MAX_STATE_FILE (64 * 1024)
/* Reading the file to hash it: large reads, one buffer. */
#define PUSH_HASH_CHUNK (1024 * 1024)
/* Connecting is quick on any link that can carry video; a PATCH may take
 * hours, so it has no total timeout, only a stall limit. */
#define PUSH_CONNECT_TIMEOUT_S 10L
#define PUSH_SHORT_TIMEOUT_S 60L
#define PUSH_STALL_SECONDS 60L
/* Sleeping in slices so a stop request is noticed promptly. */
#define PUSH_SLEEP_SLICE_US 50000LL

struct push_client {
  char *server, *token, *state_dir, *uploads_dir, *done_dir;
  char *device_id, *officer_id, *case_id, *recorded_at, *retention;
  int retries;
  int64_t max_rate, chunk_size;
  volatile sig_atomic_t *stop;
  void (*progress)(void *ud, const char *path, uint64_t done, uint64_t total);
  void *progress_ud;
  CURL *h;
  char errbuf[CURL_ERROR_SIZE];
  uint64_t rng;
};

static bool stopping(const push_client *p) {
  return p->stop && *p->stop;
}

static char *dup_or_null(const char *s) {
  return s ? cu_xstrdup(s) : NULL;
}

bool push_error_is_transient(int code) {
  return code == CU_EIO || code == CU_EBUSY || code == CU_ENOSPC;
}

int push_default_state_dir(char **out) {
  const char *x = getenv("XDG_STATE_HOME");
  if (x && x[0] == '/') { /* the XDG spec: a relative value is ignored */
    *out = cu_xasprintf("%s/custos", x);
    return 0;
  }
  const char *home = getenv("HOME");
  if (!home || !*home)
    return cu_error(CU_EINVAL, "neither XDG_STATE_HOME nor HOME is set; use --state-dir");
  *out = cu_xasprintf("%s/.local/state/custos", home);
  return 0;
}

int push_open(push_client **out, const push_opts *o) {
  if (!o->server || !o->token || !o->state_dir)
    return cu_error(CU_EINVAL, "push needs a server, a token and a state directory");
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return cu_error(CU_EIO, "cannot initialise libcurl");
  push_client *p = cu_xcalloc(1, sizeof *p);
  p->server = cu_xstrdup(o->server);
  size_t n = strlen(p->server);
  while (n > 1 && p->server[n - 1] == '/')
    p->server[--n] = '\0';
  p->token = cu_xstrdup(o->token);
  p->state_dir = cu_xstrdup(o->state_dir);
  p->uploads_dir = cu_path_join(o->state_dir, "uploads");
  p->done_dir = cu_path_join(o->state_dir, "done");
  p->device_id = dup_or_null(o->device_id);
  p->officer_id = dup_or_null(o->officer_id);
  p->case_id = dup_or_null(o->case_id);
  p->retention = dup_or_null(o->retention);
  p->recorded_at = dup_or_null(o->recorded_at);
  p->retries = o->retries;
  p->max_rate = o->max_rate;
  p->chunk_size = o->chunk_size;
  p->stop = o->stop;
  p->progress = o->progress;
  p->progress_ud = o->progress_ud;
  p->rng = (uint64_t)cu_now_us() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
  int rc = cu_mkdirs(p->state_dir, 0700);
  if (!rc) rc = cu_mkdirs(p->uploads_dir, 0700);
  if (!rc) rc = cu_mkdirs(p->done_dir, 0700);
  if (rc) {
    rc = cu_error_wrap(rc, "state directory %s", p->state_dir);
    push_free(p);
    return rc;
  }
  p->h = curl_easy_init();
  if (!p->h) {
    push_free(p);
    return cu_error(CU_EIO, "cannot initialise libcurl");
  }
  *out = p;
  return 0;
}

void push_free(push_client *p) {
  if (!p) return;
  if (p->h) curl_easy_cleanup(p->h);
  free(p->server);
  free(p->token);
  free(p->state_dir);
  free(p->uploads_dir);
  free(p->done_dir);
  free(p->device_id);
  free(p->officer_id);
  free(p->case_id);
  free(p->retention);
  free(p->recorded_at);
  free(p);
  curl_global_cleanup();
}

/* ---- fingerprints and the state directory ------------------------------ */

/* Strings are length-prefixed so no two different inputs hash alike. */
static void fingerprint(const push_client *p, const char *abs, const struct stat *st,
                        char out[65]) {
  long long mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
  char *s = cu_xasprintf("custos-push-v1\n%zu:%s\n%zu:%s\n%lld\n%lld\n%llu:%llu\n",
                         strlen(p->server), p->server, strlen(abs), abs, (long long)st->st_size,
                         mtime_ns, (unsigned long long)st->st_dev, (unsigned long long)st->st_ino);
  cu_sha256_hex(s, strlen(s), out);
  free(s);
}

static char *state_path(const push_client *p, const char *dir, const char *fp, const char *ext) {
  return cu_xasprintf("%s/%s%s", dir, fp, ext);
}

static int save_json(const char *path, const json_t *v) {
  size_t n;
  char *s = cu_json_canon(v, &n);
  char *line = cu_xasprintf("%s\n", s);
  int rc = cu_write_file_durable(path, line, n + 1, 0600, 0);
  free(line);
  free(s);
  return rc;
}

static int load_json(const char *path, json_t **out) {
  cu_buf b = CU_BUF_INIT(PUSH_MAX_STATE_FILE);
  int rc = cu_read_small_file(path, PUSH_MAX_STATE_FILE, &b);
  if (!rc) rc = cu_json_parse(b.data, b.len, out);
  if (!rc && !json_is_object(*out)) {
    json_decref(*out);
    *out = NULL;
    rc = cu_error(CU_ECORRUPT, "%s is not a JSON object", path);
  }
  cu_buf_release(&b);
  return rc;
}

static void remove_durably(const char *path, const char *dir) {
  if (unlink(path) == 0) cu_fsync_dir(dir);
}

/* ---- HTTP -------------------------------------------------------------- */

typedef struct {
  long status;
  CURLcode cc;
  int64_t offset, length; /* -1 when the header was absent or malformed */
  char *location, *evidence_id, *server_sha;
  cu_buf body;
} http_resp;

static void resp_init(http_resp *r) {
  memset(r, 0, sizeof *r);
  r->offset = r->length = -1;
  cu_buf_init(&r->body, PUSH_MAX_RESPONSE_BODY);
}

static void resp_release(http_resp *r) {
  free(r->location);
  free(r->evidence_id);
  free(r->server_sha);
  cu_buf_release(&r->body);
  r->location = r->evidence_id = r->server_sha = NULL;
}

/* What a PATCH body is read from: bytes [pos, end) of the file. */
typedef struct {
  push_client *p;
  int fd;
  uint64_t start, pos, end, total;
  const char *path;
  int read_errno;
  bool short_read;
} body_src;

typedef struct {
  push_client *p;
  body_src *src; /* NULL unless this is a PATCH */
} xfer_ctx;

static size_t on_header(char *line, size_t size, size_t n, void *ud) {
  http_resp *r = ud;
  size_t len = size * n;
  if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
    /* A new status line (after "100 Continue", say): start over. */
    free(r->location);
    free(r->evidence_id);
    free(r->server_sha);
    r->location = r->evidence_id = r->server_sha = NULL;
    r->offset = r->length = -1;
    return len;
  }
  const char *colon = memchr(line, ':', len);
  if (!colon) return len;
  size_t nlen = (size_t)(colon - line);
  const char *v = colon + 1, *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  char *val = cu_xstrndup(v, (size_t)(end - v));
#define IS(name) (nlen == sizeof name - 1 && !strncasecmp(line, name, nlen))
  int64_t num;
  if (IS("Upload-Offset")) {
    r->offset = cu_parse_i64(val, &num, 0) ? -1 : num;
  } else if (IS("Upload-Length")) {
    r->length = cu_parse_i64(val, &num, 0) ? -1 : num;
  } else if (IS("Location")) {
    free(r->location);
    r->location = val;
    val = NULL;
  } else if (IS("Custos-Evidence-Id")) {
    free(r->evidence_id);
    r->evidence_id = val;
    val = NULL;
  } else if (IS("Custos-SHA256")) {
    free(r->server_sha);
    r->server_sha = val;
    val = NULL;
  }
#undef IS
  free(val);
  return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  http_resp *r = ud;
  size_t len = size * n;
  if (r->body.len < r->body.max) {
    size_t room = r->body.max - r->body.len;
    cu_buf_add(&r->body, data, len < room ? len : room);
  }
  return len; /* the rest is dropped, not an error */
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud) {
  body_src *b = ud;
  size_t want = size * n;
  if (want > b->end - b->pos) want = (size_t)(b->end - b->pos);
  if (!want) return 0;
  for (;;) {
    ssize_t got = pread(b->fd, buf, want, (off_t)b->pos);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      b->read_errno = errno;
      return CURL_READFUNC_ABORT;
    }
    if (got == 0) { /* the file is shorter than when we hashed it */
      b->short_read = true;
      return CURL_READFUNC_ABORT;
    }
    b->pos += (uint64_t)got;
    return (size_t)got;
  }
}

/* libcurl rewinds when it must send a request again on a new connection. */
static int on_seek(void *ud, curl_off_t offset, int origin) {
  body_src *b = ud;
  if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > b->end - b->start)
    return CURL_SEEKFUNC_CANTSEEK;
  b->pos = b->start + (uint64_t)offset;
  return CURL_SEEKFUNC_OK;
}

static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow) {
  xfer_ctx *x = ud;
  if (stopping(x->p)) return 1;
  if (x->src && x->p->progress)
    x->p->progress(x->p->progress_ud, x->src->path, x->src->start + (uint64_t)ulnow, x->src->total);
  return 0;
}

/* One request. method is HEAD, POST (empty body), PATCH (body from src),
 * GET or DELETE. Never fails itself: the outcome is in r. */
static void request(push_client *p, const char *method, const char *url, struct curl_slist *extra,
                    body_src *src, http_resp *r) {
  CURL *h = p->h;
  curl_easy_reset(h);
  char *auth = cu_xasprintf("Authorization: Bearer %s", p->token);
  struct curl_slist *hdr = curl_slist_append(NULL, auth);
  hdr = curl_slist_append(hdr, "Tus-Resumable: 1.0.0");
  for (struct curl_slist *e = extra; e; e = e->next)
    hdr = curl_slist_append(hdr, e->data);
  xfer_ctx x = {p, src};
  p->errbuf[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "custos-push/1");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, p->errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, PUSH_CONNECT_TIMEOUT_S);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
  if (!strcmp(method, "HEAD")) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (!strcmp(method, "POST")) {
    hdr = curl_slist_append(hdr, "Content-Type:"); /* no form type on an empty body */
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
  } else if (!strcmp(method, "PATCH")) {
    hdr = curl_slist_append(hdr, "Content-Type: application/offset+octet-stream");
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, src);
    /* libcurl's largest upload buffer: fewer, larger reads and sends
     * (the default 64 KiB costs a measurable share of a local upload). */
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, src);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(src->end - src->start));
    if (p->max_rate > 0) curl_easy_setopt(h, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)p->max_rate);
  } else if (strcmp(method, "GET")) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  if (src) {
    /* A PATCH may rightly take hours; what must not happen is a stall. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, PUSH_STALL_SECONDS);
  } else {
    curl_easy_setopt(h, CURLOPT_TIMEOUT, PUSH_SHORT_TIMEOUT_S);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  r->cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(hdr);
  free(auth);
}

/* A copy of server text that is safe to print on a terminal. */
static char *printable(const char *text) {
  char *clean = cu_xstrdup(text);
  for (char *c = clean; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  return clean;
}

/* The outcome of a request as one of our codes, with a message that
 * carries the server's own explanation when it gave one. */
static int http_error(push_client *p, const char *what, const http_resp *r) {
  if (r->cc != CURLE_OK) {
    if (r->cc == CURLE_ABORTED_BY_CALLBACK && stopping(p))
      return cu_error(CU_EIO, "%s: stopped", what);
    return cu_error(CU_EIO, "%s: %s", what, p->errbuf[0] ? p->errbuf : curl_easy_strerror(r->cc));
  }
  json_t *v = NULL;
  const char *detail = NULL;
  if (r->body.len && cu_json_parse(r->body.data, r->body.len, &v) == 0)
    detail = cu_json_str(v, "detail");
  int code;
  switch (r->status) {
  case 400:
  case 412:
  case 415: code = CU_EINVAL; break;
  case 401: code = CU_EAUTH; break;
  case 403: code = CU_EDENIED; break;
  case 404: code = CU_ENOTFOUND; break;
  case 409: code = CU_ECONFLICT; break;
  case 410: code = CU_EGONE; break;
  case 413: code = CU_ETOOBIG; break;
  case 408:
  case 423:
  case 429: code = CU_EBUSY; break;
  case 460: code = CU_ECHECKSUM; break;
  case 507: code = CU_ENOSPC; break;
  default: code = r->status >= 500 ? CU_EIO : CU_EINVAL;
  }
  char *clean = printable(detail ? detail : "");
  int rc =
      cu_error(code, "%s: server answered %ld%s%s", what, r->status, detail ? ": " : "", clean);
  free(clean);
  json_decref(v);
  return rc;
}

/* ---- one upload -------------------------------------------------------- */

typedef struct {
  push_client *p;
  const char *path; /* as the caller named it */
  char *abs;
  int fd;
  struct stat st;
  uint64_t size;
  char sha[65], fp[65];
  char *state_file;
  char *url;      /* the upload, or NULL before it is created */
  int64_t offset; /* the server's durable offset; -1 = ask it */
  bool complete;
  bool resumed, announced;
  char evidence_id[CU_ID_LEN + 1], server_sha[65];
} upload;

enum step { STEP_ON, STEP_RETRY, STEP_FAIL };

/* The server's answer for a completed upload. Checked in run_upload: a
 * value of the wrong length is dropped here, not cut to size. */
static void take_result(upload *u, const char *eid, const char *sha) {
  u->evidence_id[0] = u->server_sha[0] = '\0';
  if (strlen(eid) == CU_ID_LEN) memcpy(u->evidence_id, eid, CU_ID_LEN + 1);
  if (strlen(sha) == 64) memcpy(u->server_sha, sha, 65);
  u->complete = true;
}

/* The scheme, host and port of a URL ("http://h:80"), or NULL. */
static char *origin_of(const char *url) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
    out = cu_xasprintf("%s://%s:%s", scheme, host, port);
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return out;
}

/* Resolves a Location against the server URL. The token goes with every
 * request to the upload, so it must stay on the origin the user named: a
 * Location on another origin (a proxy that terminates TLS in front of a
 * server that says http://, say) is taken as a path on ours. */
static int resolve_location(push_client *p, const char *loc, char **out) {
  CURLU *u = curl_url();
  char *abs = NULL, *path = NULL, *query = NULL;
  int rc = 0;
  if (curl_url_set(u, CURLUPART_URL, p->server, 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_URL, loc, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_URL, &abs, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
    rc = cu_error(CU_EINVAL, "the server sent an unusable Location '%.200s'", loc);
    goto done;
  }
  char *a = origin_of(abs), *b = origin_of(p->server);
  if (a && b && !strcasecmp(a, b)) {
    *out = cu_xstrdup(abs);
  } else if (b) {
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK) query = NULL;
    cu_warn("the server sent a Location on another origin (%.200s); using its path on %s", abs, b);
    *out = cu_xasprintf("%s%s%s%s", b, path, query ? "?" : "", query ? query : "");
  } else {
    rc = cu_error(CU_EINVAL, "cannot parse the server URL %s", p->server);
  }
  free(a);
  free(b);
done:
  curl_free(abs);
  curl_free(path);
  curl_free(query);
  curl_url_cleanup(u);
  return rc;
}

static void add_meta(cu_buf *m, const char *key, const char *value) {
  if (!value) return;
  if (m->len) cu_buf_adds(m, ",");
  cu_buf_printf(m, "%s ", key);
  cu_b64_encode(value, strlen(value), m);
}

static int remember(upload *u) {
  json_t *o = json_object();
  cu_json_set_str(o, "url", u->url);
  cu_json_set_str(o, "sha256", u->sha);
  cu_json_set_str(o, "path", u->abs);
  cu_json_set_int(o, "size", (int64_t)u->size);
  cu_json_set_str(o, "server", u->p->server);
  cu_json_set_time(o, "created_at", cu_now_us());
  int rc = save_json(u->state_file, o);
  json_decref(o);
  return rc ? cu_error_wrap(rc, "cannot remember the upload URL") : 0;
}

static void forget(upload *u, bool terminate) {
  if (u->url && terminate) {
    /* Best effort: the server would expire it anyway. */
    http_resp r;
    resp_init(&r);
    request(u->p, "DELETE", u->url, NULL, NULL, &r);
    resp_release(&r);
  }
  remove_durably(u->state_file, u->p->uploads_dir);
  free(u->url);
  u->url = NULL;
  u->offset = -1;
}

static enum step step_create(upload *u, int *rc) {
  push_client *p = u->p;
  const char *base = strrchr(u->abs, '/');
  cu_buf meta = CU_BUF_INIT(64 * 1024);
  add_meta(&meta, "filename", base ? base + 1 : u->abs);
  add_meta(&meta, "device_id", p->device_id);
  add_meta(&meta, "officer_id", p->officer_id);
  add_meta(&meta, "case_id", p->case_id);
  add_meta(&meta, "retention", p->retention);
  add_meta(&meta, "recorded_at", p->recorded_at);
  add_meta(&meta, "sha256", u->sha);
  char *h1 = cu_xasprintf("Upload-Length: %llu", (unsigned long long)u->size);
  char *h2 = cu_xasprintf("Upload-Metadata: %s", meta.data);
  struct curl_slist *extra = curl_slist_append(NULL, h1);
  extra = curl_slist_append(extra, h2);
  char *url = cu_xasprintf("%s/v1/uploads", p->server);
  http_resp r;
  resp_init(&r);
  request(p, "POST", url, extra, NULL, &r);
  enum step s = STEP_ON;
  if (r.cc != CURLE_OK || r.status != 201) {
    *rc = http_error(p, "creating the upload", &r);
    s = push_error_is_transient(*rc) ? STEP_RETRY : STEP_FAIL;
  } else if (!r.location) {
    *rc = cu_error(CU_EIO, "the server created an upload but sent no Location");
    s = STEP_RETRY;
  } else if ((*rc = resolve_location(p, r.location, &u->url))) {
    s = STEP_FAIL;
  } else if ((*rc = remember(u))) {
    s = STEP_FAIL;
  } else {
    u->offset = 0;
    if (r.evidence_id && r.server_sha) { /* an empty file is complete at once */
      take_result(u, r.evidence_id, r.server_sha);
    }
  }
  resp_release(&r);
  curl_slist_free_all(extra);
  free(url);
  free(h1);
  free(h2);
  cu_buf_release(&meta);
  return s;
}

/* GET the upload as JSON: how an upload whose last answer was lost ends. */
static enum step step_status(upload *u, int *rc) {
  push_client *p = u->p;
  struct curl_slist *extra = curl_slist_append(NULL, "Accept: application/json");
  http_resp r;
  resp_init(&r);
  request(p, "GET", u->url, extra, NULL, &r);
  curl_slist_free_all(extra);
  enum step s = STEP_RETRY;
  json_t *v = NULL;
  if (r.cc != CURLE_OK || r.status != 200) {
    *rc = http_error(p, "asking for the upload's state", &r);
    if (r.cc == CURLE_OK && (r.status == 404 || r.status == 403)) {
      forget(u, false);
      s = STEP_ON;
    } else if (!push_error_is_transient(*rc)) {
      s = STEP_FAIL;
    }
    goto done;
  }
  if (cu_json_parse(r.body.data ? r.body.data : "", r.body.len, &v)) {
    *rc = cu_error(CU_EIO, "the upload's state is not JSON");
    goto done;
  }
  const char *state = cu_json_str(v, "state"), *eid = cu_json_str(v, "evidence_id"),
             *sha = cu_json_str(v, "sha256");
  if (!state) state = "";
  if (!strcmp(state, "completed") && eid && sha) {
    take_result(u, eid, sha);
    s = STEP_ON;
  } else if (!strcmp(state, "quarantined")) {
    char *why = printable(cu_json_str(v, "reason") ? cu_json_str(v, "reason") : "hash mismatch");
    *rc = cu_error(CU_ECHECKSUM, "the server quarantined the upload: %s", why);
    free(why);
    forget(u, false);
    s = STEP_FAIL;
  } else if (!strcmp(state, "gone")) {
    forget(u, false);
    s = STEP_ON;
  } else if (!strcmp(state, "committing")) {
    *rc = cu_error(CU_EBUSY, "the server is still committing the upload");
  } else {
    /* active: the offset we saw is stale; ask again. */
    u->offset = -1;
    *rc = cu_error(CU_EBUSY, "the upload is %s, not complete yet", state);
  }
done:
  json_decref(v);
  resp_release(&r);
  return s;
}

static enum step step_head(upload *u, int *rc) {
  push_client *p = u->p;
  http_resp r;
  resp_init(&r);
  request(p, "HEAD", u->url, NULL, NULL, &r);
  enum step s = STEP_ON;
  if (r.cc == CURLE_OK && (r.status == 404 || r.status == 403)) {
    /* Unknown here (expired, another token's): start a new upload. */
    cu_info("%s: the server no longer knows upload %s (%ld); starting a new upload", u->path,
            u->url, r.status);
    forget(u, false);
  } else if (r.cc == CURLE_OK && r.status == 410) {
    /* Gone: expired or terminated, or quarantined, which is the one that
     * matters: our bytes did not hash as declared. */
    s = step_status(u, rc);
  } else if (r.cc != CURLE_OK || (r.status != 200 && r.status != 204)) {
    *rc = http_error(p, "asking for the upload's offset", &r);
    s = push_error_is_transient(*rc) ? STEP_RETRY : STEP_FAIL;
  } else if (r.offset < 0 || (r.length >= 0 && r.length != (int64_t)u->size) ||
             r.offset > (int64_t)u->size) {
    cu_warn(
        "%s: upload %s does not fit this file (offset %lld, length %lld); starting a new upload",
        u->path, u->url, (long long)r.offset, (long long)r.length);
    forget(u, true);
  } else {
    u->offset = r.offset;
    if (u->resumed && !u->announced) {
      u->announced = true;
      cu_info("%s: resuming upload %s at byte %lld of %llu", u->path, u->url, (long long)r.offset,
              (unsigned long long)u->size);
    }
    if (r.offset == (int64_t)u->size && r.evidence_id && r.server_sha) {
      take_result(u, r.evidence_id, r.server_sha);
    }
  }
  resp_release(&r);
  return s;
}

static enum step step_patch(upload *u, int *rc) {
  push_client *p = u->p;
  uint64_t from = (uint64_t)u->offset, to = u->size;
  if (p->chunk_size > 0 && to - from > (uint64_t)p->chunk_size) to = from + (uint64_t)p->chunk_size;
  body_src src = {p, u->fd, from, from, to, u->size, u->path, 0, false};
  char *h1 = cu_xasprintf("Upload-Offset: %llu", (unsigned long long)from);
  struct curl_slist *extra = curl_slist_append(NULL, h1);
  http_resp r;
  resp_init(&r);
  request(p, "PATCH", u->url, extra, &src, &r);
  enum step s = STEP_RETRY;
  u->offset = -1; /* unless the server tells us below */
  if (src.read_errno || src.short_read) {
    /* The file is not what we hashed: this upload can never be right. */
    *rc = src.read_errno
              ? cu_error_errno(CU_EIO, src.read_errno, "cannot read the file")
              : cu_error(CU_EBUSY, "the file became shorter while it was being sent; it is not "
                                   "the file that was hashed");
    forget(u, true);
    s = STEP_FAIL;
  } else if (r.cc == CURLE_OK && r.status == 204 && r.offset > (int64_t)from &&
             r.offset <= (int64_t)u->size) {
    u->offset = r.offset;
    if (r.evidence_id && r.server_sha) {
      take_result(u, r.evidence_id, r.server_sha);
    }
    s = STEP_ON;
  } else if (r.cc == CURLE_OK && r.status == 204) {
    *rc = cu_error(CU_EIO, "the server accepted a PATCH but reported offset %lld after %llu",
                   (long long)r.offset, (unsigned long long)from);
  } else {
    *rc = http_error(p, "sending the bytes", &r);
    if (*rc == CU_ECHECKSUM) {
      forget(u, false); /* quarantined on the server: nothing to resume */
      s = STEP_FAIL;
    } else if (*rc == CU_EAUTH || *rc == CU_ETOOBIG || *rc == CU_EINVAL ||
               (*rc == CU_EDENIED && r.cc == CURLE_OK)) {
      s = STEP_FAIL;
    }
    /* 404/410/409/423, 5xx and the network: HEAD decides what next. */
  }
  resp_release(&r);
  curl_slist_free_all(extra);
  free(h1);
  return s;
}

/* Sleeps us microseconds, or less if asked to stop. */
static void nap(push_client *p, int64_t us) {
  int64_t until = cu_mono_us() + us;
  for (;;) {
    if (stopping(p)) return;
    int64_t left = until - cu_mono_us();
    if (left <= 0) return;
    if (left > PUSH_SLEEP_SLICE_US) left = PUSH_SLEEP_SLICE_US;
    struct timespec ts = {0, (long)left * 1000};
    nanosleep(&ts, NULL);
  }
}

static int64_t jitter(push_client *p, int64_t us) {
  /* xorshift64: jitter needs spread, not secrecy. */
  p->rng ^= p->rng << 13;
  p->rng ^= p->rng >> 7;
  p->rng ^= p->rng << 17;
  double f = 0.75 + 0.5 * ((double)(p->rng >> 11) / (double)(1ULL << 53)); /* 0.75 .. 1.25 */
  return (int64_t)((double)us * f);
}

static int run_upload(upload *u, push_result *out) {
  push_client *p = u->p;
  int fails = 0, rc = 0;
  int64_t best = u->offset, delay = PUSH_BACKOFF_FIRST_US;
  for (;;) {
    if (stopping(p)) {
      out->stopped = true;
      return cu_error(CU_EIO, "stopped; the upload is parked and resumes on the next run");
    }
    enum step s;
    rc = 0;
    if (u->complete) break;
    if (!u->url)
      s = step_create(u, &rc);
    else if (u->offset < 0)
      s = step_head(u, &rc);
    else if (u->offset == (int64_t)u->size)
      s = step_status(u, &rc);
    else
      s = step_patch(u, &rc);
    if (u->offset > best) { /* progress: the server holds more than before */
      best = u->offset;
      fails = 0;
      delay = PUSH_BACKOFF_FIRST_US;
    }
    if (s == STEP_FAIL) return rc;
    if (s == STEP_ON) continue;
    if (stopping(p)) continue;
    u->offset = -1;
    fails++;
    if (p->retries > 0 && fails > p->retries)
      return cu_error_wrap(rc, "gave up after %d attempts without progress", fails);
    int64_t wait = jitter(p, delay);
    if (p->retries > 0)
      cu_warn("%s: %s; retrying in %.1f s (%d of %d)", u->path, cu_errmsg(), (double)wait / 1e6,
              fails, p->retries);
    else
      cu_warn("%s: %s; retrying in %.1f s", u->path, cu_errmsg(), (double)wait / 1e6);
    nap(p, wait);
    delay = delay * 2 > PUSH_BACKOFF_MAX_US ? PUSH_BACKOFF_MAX_US : delay * 2;
  }
  if (!cu_id_valid(u->evidence_id) || !cu_is_sha256_hex(u->server_sha))
    return cu_error(CU_EIO, "the server reported the upload complete without a valid evidence "
                            "id and SHA-256");
  if (strcmp(u->server_sha, u->sha)) {
    forget(u, false);
    return cu_error(CU_ECHECKSUM,
                    "the server stored evidence %s with SHA-256 %s, but this file's is %s",
                    u->evidence_id, u->server_sha, u->sha);
  }
  return 0;
}

static int hash_file(upload *u, push_result *out) {
  push_client *p = u->p;
  posix_fadvise(u->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  unsigned char *buf = cu_xmalloc(PUSH_HASH_CHUNK);
  cu_sha256 *h = cu_sha256_new();
  uint64_t total = 0;
  int rc = 0;
  for (;;) {
    if (stopping(p)) {
      out->stopped = true;
      rc = cu_error(CU_EIO, "stopped while hashing the file");
      break;
    }
    ssize_t n = pread(u->fd, buf, PUSH_HASH_CHUNK, (off_t)total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = cu_error_errno(CU_EIO, errno, "cannot read the file");
      break;
    }
    if (n == 0) break;
    cu_sha256_update(h, buf, (size_t)n);
    total += (uint64_t)n;
  }
  if (!rc) {
    unsigned char d[32];
    cu_sha256_final(h, d);
    cu_hex_encode(d, 32, u->sha);
    struct stat now;
    if (fstat(u->fd, &now) < 0) {
      rc = cu_error_errno(CU_EIO, errno, "cannot stat the file");
    } else if (total != (uint64_t)u->st.st_size || now.st_size != u->st.st_size ||
               now.st_mtim.tv_sec != u->st.st_mtim.tv_sec ||
               now.st_mtim.tv_nsec != u->st.st_mtim.tv_nsec) {
      rc = cu_error(CU_EBUSY,
                    "the file changed while it was being read; is it still being written?");
    }
  }
  cu_sha256_free(h);
  free(buf);
  return rc;
}

/* Picks up the upload a previous run remembered for this fingerprint. */
static void recall(upload *u) {
  json_t *o = NULL;
  if (access(u->state_file, F_OK) != 0) return;
  if (load_json(u->state_file, &o)) {
    cu_warn("%s: ignoring unreadable upload state: %s", u->path, cu_errmsg());
    remove_durably(u->state_file, u->p->uploads_dir);
    return;
  }
  const char *url = cu_json_str(o, "url"), *sha = cu_json_str(o, "sha256");
  char *checked = NULL;
  if (!url || !sha || resolve_location(u->p, url, &checked)) {
    cu_warn("%s: ignoring upload state that does not fit this server", u->path);
    remove_durably(u->state_file, u->p->uploads_dir);
  } else if (strcmp(sha, u->sha)) {
    /* Same name, size and time, other bytes: that upload is not for these. */
    u->url = checked;
    checked = NULL;
    cu_warn("%s: its content changed since upload %s began; starting a new upload", u->path,
            u->url);
    forget(u, true);
  } else {
    u->url = checked;
    checked = NULL;
    u->resumed = true;
  }
  free(checked);
  json_decref(o);
}

static int write_done_marker(upload *u) {
  char *path = state_path(u->p, u->p->done_dir, u->fp, ".json");
  json_t *o = json_object();
  cu_json_set_str(o, "evidence_id", u->evidence_id);
  cu_json_set_str(o, "sha256", u->server_sha);
  cu_json_set_str(o, "path", u->abs);
  cu_json_set_int(o, "size", (int64_t)u->size);
  cu_json_set_str(o, "server", u->p->server);
  cu_json_set_time(o, "done_at", cu_now_us());
  int rc = save_json(path, o);
  json_decref(o);
  free(path);
  return rc;
}

static int open_file(const char *path, int *fd, struct stat *st, char **abs) {
  *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (*fd < 0) return cu_error_errno(cu_errno_code(errno), errno, "cannot open the file");
  if (fstat(*fd, st) < 0) return cu_error_errno(CU_EIO, errno, "cannot stat the file");
  if (!S_ISREG(st->st_mode)) return cu_error(CU_EINVAL, "not a regular file");
  *abs = realpath(path, NULL);
  if (!*abs) return cu_error_errno(cu_errno_code(errno), errno, "cannot resolve its path");
  return 0;
}

int push_file(push_client *p, const char *path, push_result *out) {
  memset(out, 0, sizeof *out);
  upload u = {.p = p, .path = path, .fd = -1, .offset = -1};
  int lockfd = -1, rc;
  char *lock_path = NULL;
  if ((rc = open_file(path, &u.fd, &u.st, &u.abs))) goto done;
  u.size = (uint64_t)u.st.st_size;
  fingerprint(p, u.abs, &u.st, u.fp);
  u.state_file = state_path(p, p->uploads_dir, u.fp, ".json");
  /* Two pushes of one file at once would make two uploads of it. */
  lock_path = state_path(p, p->uploads_dir, u.fp, ".lock");
  lockfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lockfd < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot create %s", lock_path);
    goto done;
  }
  if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
    rc = errno == EWOULDBLOCK
             ? cu_error(CU_EBUSY, "another custos push is uploading this file right now")
             : cu_error_errno(CU_EIO, errno, "cannot lock %s", lock_path);
    close(lockfd);
    lockfd = -1;
    goto done;
  }
  if ((rc = hash_file(&u, out))) goto done;
  recall(&u);
  if ((rc = run_upload(&u, out))) goto done;
  /* The evidence is safe on the server; what is left is bookkeeping. */
  if ((rc = write_done_marker(&u)))
    cu_warn("%s: uploaded as %s, but the done-marker could not be written: %s", path, u.evidence_id,
            cu_errmsg());
  rc = 0;
  forget(&u, false);
  memcpy(out->evidence_id, u.evidence_id, sizeof out->evidence_id);
done:
  memcpy(out->sha256, u.sha, sizeof out->sha256);
  memcpy(out->fingerprint, u.fp, sizeof out->fingerprint);
  out->size = u.size;
  out->resumed = u.resumed;
  if (lockfd >= 0) {
    /* Unlinked while still held, so a waiting process finds no lock. */
    if (!u.url) unlink(lock_path);
    close(lockfd);
  }
  if (u.fd >= 0) close(u.fd);
  free(lock_path);
  free(u.state_file);
  free(u.url);
  free(u.abs);
  return rc;
}

int push_done_lookup(push_client *p, const char *path, push_result *out) {
  memset(out, 0, sizeof *out);
  struct stat st;
  char *abs = NULL, *marker = NULL;
  json_t *o = NULL;
  int rc = 0;
  if (stat(path, &st) < 0) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot stat the file");
    goto done;
  }
  if (!(abs = realpath(path, NULL))) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot resolve its path");
    goto done;
  }
  fingerprint(p, abs, &st, out->fingerprint);
  out->size = (uint64_t)st.st_size;
  marker = state_path(p, p->done_dir, out->fingerprint, ".json");
  if (access(marker, F_OK) != 0) {
    rc = cu_error(CU_ENOTFOUND, "not uploaded yet");
    goto done;
  }
  if ((rc = load_json(marker, &o))) goto done;
  const char *eid = cu_json_str(o, "evidence_id"), *sha = cu_json_str(o, "sha256");
  if (!eid || !sha || strlen(eid) != CU_ID_LEN || !cu_is_sha256_hex(sha)) {
    rc = cu_error(CU_ECORRUPT, "%s is not a done-marker", marker);
    goto done;
  }
  memcpy(out->evidence_id, eid, CU_ID_LEN + 1);
  memcpy(out->sha256, sha, 65);
done:
  json_decref(o);
  free(marker);
  free(abs);
  return rc;
}

/* ---- listing a directory ----------------------------------------------- */

typedef struct {
  char **v;
  size_t n, cap;
} strvec;

static void strvec_push(strvec *s, char *str) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 32;
    s->v = cu_xrealloc(s->v, s->cap * sizeof *s->v);
  }
  s->v[s->n++] = str;
}

static int walk(const char *dir, strvec *out) {
  DIR *d = opendir(dir);
  if (!d) return cu_error_errno(cu_errno_code(errno), errno, "cannot read directory %s", dir);
  size_t dn = strlen(dir);
  bool slash = dn && dir[dn - 1] == '/';
  int rc = 0;
  struct dirent *e;
  errno = 0;
  while (!rc && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue; /* gone meanwhile */
    char *child = cu_xasprintf("%s%s%s", dir, slash ? "" : "/", e->d_name);
    if (S_ISDIR(st.st_mode)) {
      rc = walk(child, out);
      free(child);
    } else if (S_ISREG(st.st_mode)) {
      strvec_push(out, child);
    } else {
      free(child);
    }
    errno = 0;
  }
  if (!rc && errno) rc = cu_error_errno(CU_EIO, errno, "cannot read directory %s", dir);
  closedir(d);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int push_list_files(const char *dir, char ***paths, size_t *n) {
  strvec s = {0};
  int rc = walk(dir, &s);
  if (rc) {
    push_list_free(s.v, s.n);
    return rc;
  }
  if (s.n) qsort(s.v, s.n, sizeof *s.v, cmp_str);
  *paths = s.v;
  *n = s.n;
  return 0;
}

void push_list_free(char **paths, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(paths[i]);
  free(paths);
}
