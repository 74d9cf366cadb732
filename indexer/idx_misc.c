/* Tokens, browser sessions and jobs: small key spaces keyed by a hash or an id. */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "hex.h"
#include "id.h"
#include "idx_int.h"
#include "banned.h"

int idx_token_get(idx *ix, const char *secret_hash, json_t **out) {
  if (!cu_is_sha256_hex(secret_hash)) return cu_error(CU_ENOTFOUND, "unknown token");
  int rc = idx_get_json(ix, CF_TOKEN, secret_hash, out);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "unknown token");
  return rc;
}

void idx_batch_put_token(idx_batch *b, const char *secret_hash, const json_t *rec) {
  idx_batch_put_json(b, CF_TOKEN, secret_hash, rec);
}

/* In meta, under "session/": few, short-lived, and never scanned with the
 * rest. */
#define SESSION_PREFIX "session/"

static void session_key(const char *id_hash, char key[sizeof SESSION_PREFIX + 64]) {
  snprintf(key, sizeof SESSION_PREFIX + 64, "%s%.64s", SESSION_PREFIX, id_hash);
}

int idx_session_get(idx *ix, const char *id_hash, json_t **out) {
  char key[sizeof SESSION_PREFIX + 64];
  if (!cu_is_sha256_hex(id_hash)) return cu_error(CU_ENOTFOUND, "unknown session");
  session_key(id_hash, key);
  int rc = idx_get_json(ix, CF_META, key, out);
  return rc == CU_ENOTFOUND ? cu_error(CU_ENOTFOUND, "unknown session") : rc;
}

void idx_batch_put_session(idx_batch *b, const char *id_hash, const json_t *rec) {
  char key[sizeof SESSION_PREFIX + 64];
  session_key(id_hash, key);
  idx_batch_put_json(b, CF_META, key, rec);
}

void idx_batch_del_session(idx_batch *b, const char *id_hash) {
  char key[sizeof SESSION_PREFIX + 64];
  session_key(id_hash, key);
  idx_batch_del_cf(b, CF_META, key, strlen(key));
}

typedef struct {
  int (*fn)(const char *id_hash, json_t *rec, void *ud);
  void *ud;
} session_scan;

static int session_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  session_scan *s = ud;
  char hash[65];
  json_t *rec = NULL;
  if (klen != strlen(SESSION_PREFIX) + 64) return 0;
  memcpy(hash, key + strlen(SESSION_PREFIX), 64);
  hash[64] = '\0';
  if (cu_json_parse(val, vlen, &rec)) return 0; /* a damaged session is no session */
  int rc = s->fn(hash, rec, s->ud);
  json_decref(rec);
  return rc;
}

int idx_session_each(idx *ix, int (*fn)(const char *id_hash, json_t *rec, void *ud), void *ud) {
  session_scan s = {fn, ud};
  return idx_scan_prefix(ix, CF_META, SESSION_PREFIX, strlen(SESSION_PREFIX), session_one, &s);
}

int idx_job_get(idx *ix, const char *id, json_t **out) {
  if (!cu_id_valid(id)) return cu_error(CU_ENOTFOUND, "no job with id %.64s", id);
  return idx_get_json(ix, CF_JOB, id, out);
}

void idx_batch_put_job(idx_batch *b, const char *id, const json_t *rec, bool pending) {
  idx_batch_put_json(b, CF_JOB, id, rec);
  if (pending) idx_batch_put_cf(b, CF_JOB_PENDING, id, strlen(id), "", 0);
  else idx_batch_del_cf(b, CF_JOB_PENDING, id, strlen(id));
  const char *state = cu_json_str(rec, "state");
  if (state && !strcmp(state, "failed")) idx_batch_put_cf(b, CF_JOB_FAILED, id, strlen(id), "", 0);
  else idx_batch_del_cf(b, CF_JOB_FAILED, id, strlen(id));
}

typedef struct {
  idx *ix;
  int (*fn)(const char *id, json_t *rec, void *ud);
  void *ud;
} pending_ctx;

static int pending_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  pending_ctx *c = ud;
  if (klen != CU_ID_LEN) return 0;
  char id[CU_ID_LEN + 1];
  memcpy(id, key, CU_ID_LEN);
  id[CU_ID_LEN] = '\0';
  json_t *rec = NULL;
  if (idx_job_get(c->ix, id, &rec)) return 0;
  int rc = c->fn(id, rec, c->ud);
  json_decref(rec);
  return rc;
}

int idx_job_each_pending(idx *ix, int (*fn)(const char *id, json_t *rec, void *ud), void *ud) {
  pending_ctx c = {ix, fn, ud};
  return idx_scan_prefix(ix, CF_JOB_PENDING, "", 0, pending_one, &c);
}

int idx_job_each_failed(idx *ix, int (*fn)(const char *id, json_t *rec, void *ud), void *ud) {
  pending_ctx c = {ix, fn, ud};
  return idx_scan_prefix(ix, CF_JOB_FAILED, "", 0, pending_one, &c);
}
