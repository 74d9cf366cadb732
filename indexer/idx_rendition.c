/* Renditions: key "<evidence id>/<kind>" -> record. An id is a UUID and a
 * kind is [a-z0-9_:], so '/' cannot occur in either, and one prefix scan
 * lists an item's renditions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "id.h"
#include "idx_int.h"
#include "banned.h"

/* Long enough for a clip's kind with its range and mode. */
#define KIND_MAX 96

static bool kind_valid(const char *k) {
  size_t n = strlen(k);
  if (!n || n > KIND_MAX) return false;
  for (; *k; k++)
    if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_' || *k == ':' || *k == '.' || *k == '-'))
      return false;
  return true;
}

static int make_key(char *key, size_t n, const char *evid, const char *kind) {
  if (!evid || !cu_id_valid(evid)) return cu_error(CU_ENOTFOUND, "no evidence with id %.64s", evid ? evid : "");
  if (!kind || !kind_valid(kind)) return cu_error(CU_EINVAL, "not a rendition kind: %.64s", kind ? kind : "");
  snprintf(key, n, "%s/%s", evid, kind);
  return 0;
}

void idx_batch_put_rendition(idx_batch *b, const char *evidence_id, const char *kind,
                             const json_t *rec) {
  char key[CU_ID_LEN + KIND_MAX + 2];
  if (make_key(key, sizeof key, evidence_id, kind)) abort();
  idx_batch_put_json(b, CF_RENDITION, key, rec);
}

int idx_rendition_get(idx *ix, const char *evidence_id, const char *kind, json_t **out) {
  char key[CU_ID_LEN + KIND_MAX + 2];
  int rc = make_key(key, sizeof key, evidence_id, kind);
  if (rc) return rc;
  rc = idx_get_json(ix, CF_RENDITION, key, out);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "evidence %s has no %s rendition", evidence_id, kind);
  return rc;
}

static int add_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  json_t *all = ud;
  const char *slash = memchr(key, '/', klen);
  if (!slash) return 0;
  json_error_t e;
  json_t *rec = json_loadb(val, vlen, 0, &e);
  if (!rec) return cu_error(CU_ECORRUPT, "a rendition record is damaged");
  char kind[KIND_MAX + 1];
  size_t kn = klen - (size_t)(slash + 1 - key);
  if (kn > KIND_MAX) kn = KIND_MAX;
  memcpy(kind, slash + 1, kn);
  kind[kn] = '\0';
  json_object_set_new(all, kind, rec);
  return 0;
}

int idx_renditions(idx *ix, const char *evidence_id, json_t **out) {
  *out = NULL;
  if (!evidence_id || !cu_id_valid(evidence_id))
    return cu_error(CU_ENOTFOUND, "no evidence with id %.64s", evidence_id ? evidence_id : "");
  char prefix[CU_ID_LEN + 2];
  snprintf(prefix, sizeof prefix, "%s/", evidence_id);
  json_t *all = json_object();
  int rc = idx_scan_prefix(ix, CF_RENDITION, prefix, strlen(prefix), add_one, all);
  if (rc < 0) {
    json_decref(all);
    return rc;
  }
  *out = all;
  return 0;
}

typedef struct {
  const char *sha, *except;
  bool *used;
} users_ctx;

static int user_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  users_ctx *c = ud;
  if (klen > CU_ID_LEN && c->except && !memcmp(key, c->except, CU_ID_LEN)) return 0;
  /* A cheap filter before parsing: the hash must appear in the value. */
  if (!memmem(val, vlen, c->sha, 64)) return 0;
  json_t *rec = NULL;
  if (cu_json_parse(val, vlen, &rec)) return 0;
  const char *sha = cu_json_str(rec, "sha256"), *state = cu_json_str(rec, "state");
  if (sha && state && !strcmp(sha, c->sha) && !strcmp(state, "done")) *c->used = true;
  json_decref(rec);
  return *c->used ? 1 : 0;
}

int idx_rendition_sha_used(idx *ix, const char *sha256, const char *except_evidence, bool *used) {
  *used = false;
  users_ctx c = {sha256, except_evidence, used};
  return idx_scan_from(ix, CF_RENDITION, "", 0, user_one, &c);
}
