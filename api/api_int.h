/* Internals of the HTTP server, shared by its .c files. */
#ifndef API_INT_H
#define API_INT_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "idx.h"
#include "gov.h"
#include "job.h"
#include "scrub.h"
#include "ledger.h"
#include "json.h"
#include "rendition_job.h"
#include "store.h"
#include "tsa.h"
#include "tus.h"
#include "export_job.h"

typedef struct api api;

/* Roles as bits, so a route lists who may call it. */
enum {
  ROLE_RECORDER = 1,
  ROLE_REVIEWER = 2,
  ROLE_LEGAL = 4,
  ROLE_ADMIN = 8,
  ROLE_ANY = 15,
  ROLE_NONE = 0 /* no token needed */
};

typedef struct {
  char token_id[64];
  char role[16];
  char device[160];
  char user[160];
  int role_bit;
  tus_principal tp; /* views of the fields above, for ingest/ */
} principal;

typedef struct req req;

/* A route: handlers are called on a libmicrohttpd thread. begin runs when
 * the headers are in (and the token checked); data gets the body in
 * pieces (default: collect up to max_body bytes into body); end runs when
 * the body is complete and must queue a response. aborted runs if the
 * connection died before end. */
typedef struct {
  const char *method;
  const char *pattern; /* "/v1/uploads/{}": {} matches one path segment */
  int roles;
  size_t max_body;
  int (*begin)(req *r);
  int (*data)(req *r, const char *data, size_t n);
  int (*end)(req *r);
  void (*aborted)(req *r);
  bool tus; /* a tus endpoint: Tus-Resumable required and echoed */
} route;

struct req {
  api *a;
  struct MHD_Connection *conn;
  const route *rt;
  const char *method, *url;
  char param[2][128]; /* the {} segments */
  principal who;
  cu_buf body;
  bool too_big, responded, ended;
  int64_t started_us;
  int status;
  void *state; /* route-owned (a tus_patch, say) */
  /* Set by a handler that suspended the connection to work off the event
   * loop; called (once) when it is resumed, to queue the response. */
  int (*resumed)(req *r);
  bool suspended; /* by its handler, until resumed (touched on the MHD thread only) */
};

struct api {
  idx *ix;
  store *st;
  tus *tu;
  job_queue *jq;
  ledger *lg;
  tsa *ts;
  scrubber *scrub;
  char *home;
  int64_t max_upload;
  const char *public_url; /* NULL, or scheme://host[:port][/prefix] without a trailing / */
  rendition_ctx *rend;    /* for clips, made on request */
  export_job_ctx *exports; /* export requests and their progress */
  gov *gov;               /* holds, retention, two-person requests */
  atomic_int stopping;    /* set at shutdown: work off the event loop gives up */
  atomic_int suspended;   /* connections suspended now (MHD must not stop with any) */
};

/* Request headers and query arguments (NULL when absent). */
const char *req_header(req *r, const char *name);
const char *req_query(req *r, const char *name);

/* Responses. Each queues exactly one response; headers is a NULL-ended
 * list of name, value pairs added to it. */
int respond(req *r, int status, const char *content_type, const void *body, size_t n,
            const char *const *headers);
int respond_json(req *r, int status, const json_t *v, const char *const *headers);
/* {"error": name, "detail": message} with the status for code. */
int respond_error(req *r, int code, const char *const *headers);
int respond_status(req *r, int status, const char *error, const char *detail,
                   const char *const *headers);
int respond_fd(req *r, int status, int fd, uint64_t offset, uint64_t len,
               const char *const *headers);

/* Queues a response made elsewhere (it is destroyed here). */
int respond_response(req *r, int status, struct MHD_Response *resp, const char *const *headers);

/* The bytes of one stored object, for /content and /clip: validators,
 * ranges, and the "accessed" ledger event (api/serve.c). */
typedef struct {
  const char *evidence_id;
  const char *sha256;       /* the object */
  const char *content_type;
  const char *filename;     /* offered for saving; may be NULL */
  const char *what;         /* "original", a rendition kind, or a clip's kind */
} serve_item;
int serve_object(req *r, const serve_item *it);
/* A Range header: "bytes=" and up to max specs (a-b, a-, -n). 0 with *n
 * ranges, 1 to send the whole file (no header, another unit, a malformed
 * one, more than max: RFC 9110 lets a server ignore it), -1 when none is
 * satisfiable. */
typedef struct {
  uint64_t off, len;
} serve_range;
int serve_parse_ranges(const char *h, uint64_t size, serve_range *out, int max, int *n);
/* Whether an If-None-Match list names etag (or is "*"). */
bool serve_etag_matches(const char *inm, const char *etag);
/* 1 with a 410 (and the tombstone) queued if the item was deleted, else 0. */
int evidence_gone(req *r, const json_t *rec);

/* Auth. */
int auth_resolve(api *a, const char *authorization, principal *out);
/* Browser sessions (reads only): a cookie standing for the token in
 * authorization ("Bearer ..."), valid 8 hours or until the token is revoked. */
int auth_session_open(api *a, const char *authorization, char id_out[48], int64_t *expires_us);
void auth_session_close(api *a, const char *id);
void auth_session_cookie(const char *cookie_header, char out[48]);
int auth_resolve_session(api *a, const char *id, principal *out);
/* Creates a token; *secret is the only copy of the secret (caller frees). */
int auth_token_create(api *a, const char *role, const char *device, const char *user,
                      const char *created_by, char **secret, json_t **rec);

/* The "actor" object of ledger events: {token_id, role, user?, device_id?}. */
json_t *auth_actor(const principal *who);
/* 0 if the caller may read this item (legal and admin read all; a reviewer
 * reads the items of the cases assigned to them); otherwise a 403 is
 * already queued and the return is non-zero. */
int auth_may_read_evidence(req *r, const char *evidence_id);
int auth_may_read_case(req *r, const char *case_id);

/* Query parameters that must be a whole number in [0, max]: 0 and the
 * value, or a 400 already queued and non-zero. */
int req_query_u64(req *r, const char *name, bool required, uint64_t max, uint64_t *out);

/* Metrics. */
void metrics_observe(int status, int64_t duration_us);
int metrics_render(api *a, cu_buf *out);

/* Route tables, one per handler file. */
extern const route upload_routes[];
extern const route evidence_routes[];
extern const route token_routes[];
extern const route ledger_routes[];
extern const route scrub_routes[];
extern const route job_routes[];
extern const route stats_routes[];
extern const route case_routes[];
extern const route clip_routes[];
extern const route gov_routes[];
extern const route web_routes[];
extern const route export_routes[];

#endif
