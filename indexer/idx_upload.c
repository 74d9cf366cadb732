/* tus upload state. The due list (CF_UPLOAD_DUE: expiry time BE | id) lets
 * the sweep find expired uploads without reading every upload record;
 * entries are never rewritten when an expiry moves, only added, and the
 * sweep drops the ones that no longer match their record. */
#include <string.h>

#include "err.h"
#include "id.h"
#include "idx_int.h"
#include "banned.h"

int idx_upload_get(idx *ix, const char *id, json_t **out) {
  if (!cu_id_valid(id)) return cu_error(CU_ENOTFOUND, "no upload with id %.64s", id);
  int rc = idx_get_json(ix, CF_UPLOAD, id, out);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "no upload with id %s", id);
  return rc;
}

static void due_key(const char *id, int64_t expires_us, unsigned char k[8 + CU_ID_LEN]) {
  idx_be64(idx_time_key(expires_us), k);
  memcpy(k + 8, id, CU_ID_LEN);
}

void idx_batch_put_upload(idx_batch *b, const char *id, const json_t *rec) {
  idx_batch_put_json(b, CF_UPLOAD, id, rec);
  const char *state = cu_json_str(rec, "state");
  int64_t exp = cu_json_int(rec, "expires_at_us", 0);
  if (exp && state && (!strcmp(state, "active") || !strcmp(state, "committing"))) {
    unsigned char k[8 + CU_ID_LEN];
    due_key(id, exp, k);
    idx_batch_put_cf(b, CF_UPLOAD_DUE, k, sizeof k, "", 0);
  }
}

void idx_batch_del_upload_due(idx_batch *b, const char *id, int64_t expires_us) {
  unsigned char k[8 + CU_ID_LEN];
  due_key(id, expires_us, k);
  idx_batch_del_cf(b, CF_UPLOAD_DUE, k, sizeof k);
}

typedef struct {
  int64_t now;
  int (*fn)(const char *id, int64_t expires_us, void *ud);
  void *ud;
} due_ctx;

static int due_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  due_ctx *c = ud;
  if (klen != 8 + CU_ID_LEN) return 0;
  int64_t exp = idx_time_from_key(idx_get_be64((const unsigned char *)key));
  if (exp > c->now) return 1;
  char id[CU_ID_LEN + 1];
  memcpy(id, key + 8, CU_ID_LEN);
  id[CU_ID_LEN] = '\0';
  return c->fn(id, exp, c->ud);
}

int idx_upload_due(idx *ix, int64_t now_us, int (*fn)(const char *id, int64_t expires_us, void *ud),
                   void *ud) {
  due_ctx c = {now_us, fn, ud};
  return idx_scan_prefix(ix, CF_UPLOAD_DUE, "", 0, due_one, &c);
}

typedef struct {
  idx *ix;
  int (*fn)(const char *id, json_t *rec, void *ud);
  void *ud;
} active_ctx;

static int active_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  active_ctx *c = ud;
  if (klen != 8 + CU_ID_LEN) return 0;
  char id[CU_ID_LEN + 1];
  memcpy(id, key + 8, CU_ID_LEN);
  id[CU_ID_LEN] = '\0';
  json_t *rec = NULL;
  if (idx_upload_get(c->ix, id, &rec)) return 0;
  const char *state = cu_json_str(rec, "state");
  int64_t exp = idx_time_from_key(idx_get_be64((const unsigned char *)key));
  int rc = 0;
  /* Each active upload has exactly one current due entry: its own. */
  if (state && (!strcmp(state, "active") || !strcmp(state, "committing")) &&
      cu_json_int(rec, "expires_at_us", 0) == exp)
    rc = c->fn(id, rec, c->ud);
  json_decref(rec);
  return rc;
}

int idx_upload_each_active(idx *ix, int (*fn)(const char *id, json_t *rec, void *ud), void *ud) {
  active_ctx c = {ix, fn, ud};
  return idx_scan_prefix(ix, CF_UPLOAD_DUE, "", 0, active_one, &c);
}
