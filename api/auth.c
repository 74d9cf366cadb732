/* Bearer tokens. The secret is shown once and never stored: the index keys
 * a token by the SHA-256 of its secret (DESIGN: secrets are stored hashed).
 * A secret has 256 random bits, so a fast hash is the right one: there is
 * nothing to brute-force. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"
#include "b64.h"
#include "err.h"
#include "hash.h"
#include "id.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

static int auth_role_bit(const char *role) {
  if (!role) return 0;
  if (!strcmp(role, "recorder")) return ROLE_RECORDER;
  if (!strcmp(role, "reviewer")) return ROLE_REVIEWER;
  if (!strcmp(role, "legal")) return ROLE_LEGAL;
  if (!strcmp(role, "admin")) return ROLE_ADMIN;
  return 0;
}

static void copy(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

static int resolve_hash(api *a, const char *hash, principal *out) {
  json_t *rec = NULL;
  int rc = idx_token_get(a->ix, hash, &rec);
  if (rc == CU_ENOTFOUND) return cu_error(CU_EAUTH, "the token is not valid");
  if (rc) return rc;
  if (cu_json_bool(rec, "revoked", false)) {
    json_decref(rec);
    return cu_error(CU_EAUTH, "the token has been revoked");
  }
  copy(out->token_id, sizeof out->token_id, cu_json_str(rec, "id"));
  copy(out->role, sizeof out->role, cu_json_str(rec, "role"));
  copy(out->device, sizeof out->device, cu_json_str(rec, "device_id"));
  copy(out->user, sizeof out->user, cu_json_str(rec, "user"));
  out->role_bit = auth_role_bit(out->role);
  json_decref(rec);
  out->tp.token_id = out->token_id;
  out->tp.role = out->role;
  out->tp.device = out->device[0] ? out->device : NULL;
  out->tp.user = out->user[0] ? out->user : NULL;
  return out->role_bit ? 0 : cu_error(CU_EAUTH, "the token has an unknown role");
}

int auth_resolve(api *a, const char *authorization, principal *out) {
  memset(out, 0, sizeof *out);
  if (!authorization)
    return cu_error(CU_EAUTH, "this endpoint needs an 'Authorization: Bearer <token>' header");
  if (strncasecmp(authorization, "Bearer ", 7))
    return cu_error(CU_EAUTH, "the Authorization header must use the Bearer scheme");
  const char *secret = authorization + 7;
  while (*secret == ' ') secret++;
  char hash[65];
  cu_sha256_hex(secret, strlen(secret), hash);
  return resolve_hash(a, hash, out);
}

int auth_token_create(api *a, const char *role, const char *device, const char *user,
                      const char *created_by, char **secret, json_t **rec_out) {
  if (!auth_role_bit(role))
    return cu_error(CU_EINVAL, "role must be one of recorder, reviewer, legal, admin");
  if (!strcmp(role, "recorder") && !device)
    return cu_error(CU_EINVAL, "a recorder token needs the device it uploads for (device)");
  if (strcmp(role, "recorder") && device)
    return cu_error(CU_EINVAL, "only recorder tokens are bound to a device");
  if ((!strcmp(role, "reviewer") || !strcmp(role, "legal")) && !user)
    return cu_error(CU_EINVAL, "a %s token needs the name of the person it is for (user)", role);
  if (device && !cu_name_valid(device))
    return cu_error(CU_EINVAL, "device must be 1-128 characters of letters, digits and . _ : @ -");
  if (user && !cu_name_valid(user))
    return cu_error(CU_EINVAL, "user must be 1-128 characters of letters, digits and . _ : @ -");
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return cu_error(CU_EIO, "no randomness for a token");
  cu_buf s = CU_BUF_INIT(128);
  cu_buf_adds(&s, "cus_");
  cu_b64url_encode(raw, sizeof raw, &s);
  char hash[65], id[CU_ID_LEN + 1];
  cu_sha256_hex(s.data, s.len, hash);
  cu_id_new(id);
  json_t *rec = json_object();
  cu_json_set_str(rec, "id", id);
  cu_json_set_str(rec, "role", role);
  cu_json_set_str(rec, "device_id", device);
  cu_json_set_str(rec, "user", user);
  cu_json_set_str(rec, "created_by", created_by);
  cu_json_set_time(rec, "created_at", cu_now_us());
  idx_batch *b = idx_batch_new(a->ix);
  idx_batch_put_token(b, hash, rec);
  /* The secret's hash is not in the event: the ledger is readable by more
   * people than the token table. */
  json_t *ev = json_object();
  cu_json_set_str(ev, "type", "token_issued");
  cu_json_set_str(ev, "token", id);
  cu_json_set_str(ev, "role", role);
  cu_json_set_str(ev, "device_id", device);
  cu_json_set_str(ev, "user", user);
  cu_json_set_str(ev, "actor", created_by);
  int rc = ledger_commit(a->lg, b, &ev, 1, NULL);
  json_decref(ev);
  idx_batch_free(b);
  if (rc) {
    json_decref(rec);
    cu_buf_release(&s);
    return rc;
  }
  *secret = cu_buf_detach(&s, NULL);
  *rec_out = rec;
  return 0;
}

json_t *auth_actor(const principal *who) {
  json_t *a = json_object();
  cu_json_set_str(a, "token_id", who->token_id);
  cu_json_set_str(a, "role", who->role);
  if (who->user[0]) cu_json_set_str(a, "user", who->user);
  if (who->device[0]) cu_json_set_str(a, "device_id", who->device);
  return a;
}

/* Reviewers get the same answer for an item that does not exist and one
 * outside their cases: which ids exist is itself not theirs to learn. */
/* The answer to a reviewer's lookup (rc, yes): 0 to go on, else the error
 * or a 403 saying what is not theirs, already queued. */
static int reviewer_verdict(req *r, int rc, bool yes, const char *what, const char *id,
                            const char *not_theirs) {
  if (rc) return respond_error(r, rc, NULL), rc;
  if (yes) return 0;
  char msg[320];
  snprintf(msg, sizeof msg, "%s %.64s %s %s (or does not exist); an admin assigns reviewers to cases",
           what, id, not_theirs, r->who.user[0] ? r->who.user : "this token");
  respond_status(r, 403, "forbidden", msg, NULL);
  return CU_EDENIED;
}

int auth_may_read_evidence(req *r, const char *evidence_id) {
  if (r->who.role_bit & (ROLE_LEGAL | ROLE_ADMIN)) return 0;
  bool yes = false;
  int rc = r->who.role_bit == ROLE_REVIEWER && r->who.user[0]
               ? idx_evidence_visible_to(r->a->ix, evidence_id, r->who.user, &yes)
               : 0;
  return reviewer_verdict(r, rc, yes, "evidence", evidence_id, "is not in a case assigned to");
}

int auth_may_read_case(req *r, const char *case_id) {
  if (r->who.role_bit & (ROLE_LEGAL | ROLE_ADMIN)) return 0;
  bool yes = false;
  int rc = r->who.role_bit == ROLE_REVIEWER && r->who.user[0] && cu_name_valid(case_id)
               ? idx_case_assigned(r->a->ix, case_id, r->who.user, &yes)
               : 0;
  return reviewer_verdict(r, rc, yes, "case", case_id, "is not assigned to");
}

/* ---- browser sessions ----------------------------------------------------
 * A browser cannot put a bearer token on a <video> or <img> request, so the
 * reviewer page trades its token for a cookie (POST /v1/session). The
 * cookie is good for reads only (GET, HEAD): it is sent with any request to
 * this origin, so it must not be able to change anything (CSRF); changes
 * still need the Authorization header. A session stands for its token,
 * which is looked up again at each request, so revoking the token ends it
 * too. Sessions are kept in the index, by the SHA-256 of the cookie's value
 * (a secret, so never stored), and outlive a restart. Each sign-in sweeps
 * the expired ones; past SESSIONS_MAX live ones, the oldest ends. */
#define SESSIONS_MAX 4096
#define SESSION_TTL_US (8LL * 3600 * 1000000)

typedef struct {
  idx_batch *b;
  int64_t now_us;
  int live;
  char oldest[65];
  int64_t oldest_expires_us;
} session_sweep;

static int sweep_one(const char *id_hash, json_t *rec, void *ud) {
  session_sweep *w = ud;
  int64_t exp = cu_json_int(rec, "expires_us", 0);
  if (exp < w->now_us) {
    idx_batch_del_session(w->b, id_hash);
    return 0;
  }
  w->live++;
  if (!w->oldest[0] || exp < w->oldest_expires_us) {
    snprintf(w->oldest, sizeof w->oldest, "%s", id_hash);
    w->oldest_expires_us = exp;
  }
  return 0;
}

int auth_session_open(api *a, const char *authorization, char id_out[48], int64_t *expires_us) {
  const char *secret = authorization + 7;
  while (*secret == ' ') secret++;
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return cu_error(CU_EIO, "no randomness for a session");
  cu_buf s = CU_BUF_INIT(64);
  cu_b64url_encode(raw, sizeof raw, &s);
  char id_hash[65], token_hash[65];
  cu_sha256_hex(s.data, s.len, id_hash);
  cu_sha256_hex(secret, strlen(secret), token_hash);
  session_sweep w = {.b = idx_batch_new(a->ix), .now_us = cu_now_us()};
  int rc = idx_session_each(a->ix, sweep_one, &w);
  if (!rc && w.live >= SESSIONS_MAX) idx_batch_del_session(w.b, w.oldest);
  json_t *rec = json_object();
  cu_json_set_str(rec, "token_hash", token_hash);
  cu_json_set_int(rec, "expires_us", w.now_us + SESSION_TTL_US);
  idx_batch_put_session(w.b, id_hash, rec);
  json_decref(rec);
  if (!rc) rc = idx_batch_commit(a->ix, w.b);
  idx_batch_free(w.b);
  if (!rc) {
    snprintf(id_out, 48, "%s", s.data);
    *expires_us = w.now_us + SESSION_TTL_US;
  }
  cu_buf_release(&s);
  return rc;
}

void auth_session_close(api *a, const char *id) {
  char id_hash[65];
  if (!id || !*id) return;
  cu_sha256_hex(id, strlen(id), id_hash);
  idx_batch *b = idx_batch_new(a->ix);
  idx_batch_del_session(b, id_hash);
  if (idx_batch_commit(a->ix, b)) cu_warn("could not end a browser session: %s", cu_errmsg());
  idx_batch_free(b);
}

/* The custos_session value of a Cookie header, or "". */
void auth_session_cookie(const char *cookie, char out[48]) {
  out[0] = '\0';
  for (const char *p = cookie; p && (p = strstr(p, "custos_session=")); p++) {
    if (p != cookie && p[-1] != ' ' && p[-1] != ';') continue;
    p += strlen("custos_session=");
    size_t n = strcspn(p, "; ");
    if (n && n < 48) {
      memcpy(out, p, n);
      out[n] = '\0';
    }
    return;
  }
}

int auth_resolve_session(api *a, const char *id, principal *out) {
  memset(out, 0, sizeof *out);
  char id_hash[65], hash[65] = "";
  json_t *rec = NULL;
  if (*id) {
    cu_sha256_hex(id, strlen(id), id_hash);
    int rc = idx_session_get(a->ix, id_hash, &rec);
    if (rc && rc != CU_ENOTFOUND) return rc;
  }
  const char *th = cu_json_str(rec, "token_hash");
  if (th && cu_json_int(rec, "expires_us", 0) >= cu_now_us()) snprintf(hash, sizeof hash, "%s", th);
  json_decref(rec);
  if (!hash[0]) return cu_error(CU_EAUTH, "the session has expired or is unknown: sign in again");
  return resolve_hash(a, hash, out);
}
