/* Legal holds and two-person requests. Both are few (tens to thousands over
 * an archive's life), so listings scan their column family; what must be
 * fast is "is this item held?", a prefix scan of hold_on per target. */
#include <stdio.h>
#include <string.h>

#include "cu_limits.h"
#include "err.h"
#include "id.h"
#include "idx_int.h"
#include "banned.h"

#define ON_KEY_MAX (2 + CU_MAX_ID_LEN + 1 + CU_ID_LEN + 1)

static size_t on_key(char *k, char kind, const char *target, const char *id) {
  return (size_t)snprintf(k, ON_KEY_MAX, "%c:%s", kind, target) + 1 +
         (size_t)(id ? snprintf(k + strlen(k) + 1, ON_KEY_MAX - strlen(k) - 1, "%s", id) : 0);
}

void idx_batch_put_hold(idx_batch *b, const json_t *rec) {
  const char *id = cu_json_str(rec, "id"), *target = cu_json_str(rec, "target");
  bool on_case = target && !strcmp(target, "case");
  const char *what = cu_json_str(rec, on_case ? "case" : "evidence");
  idx_batch_put_json(b, CF_HOLD, id, rec);
  char k[ON_KEY_MAX];
  size_t n = on_key(k, on_case ? 'c' : 'e', what, id);
  const char *state = cu_json_str(rec, "state");
  if (state && !strcmp(state, "active")) idx_batch_put_cf(b, CF_HOLD_ON, k, n, "", 0);
  else idx_batch_del_cf(b, CF_HOLD_ON, k, n);
}

int idx_hold_get(idx *ix, const char *id, json_t **out) {
  if (!cu_id_valid(id)) return cu_error(CU_ENOTFOUND, "no hold with id %.64s", id);
  int rc = idx_get_json(ix, CF_HOLD, id, out);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "no hold with id %s", id);
  return rc;
}

typedef struct {
  idx *ix;
  size_t plen;
  json_t *out;
} on_ctx;

static int add_on(const char *k, size_t kn, const char *v, size_t vn, void *ud) {
  on_ctx *c = ud;
  char id[CU_ID_LEN + 1];
  if (kn - c->plen != CU_ID_LEN) return 0;
  memcpy(id, k + c->plen, CU_ID_LEN);
  id[CU_ID_LEN] = '\0';
  json_t *rec = NULL;
  int rc = idx_hold_get(c->ix, id, &rec);
  if (rc == CU_ENOTFOUND) return 0;
  if (rc) return rc;
  json_array_append_new(c->out, rec);
  return 0;
}

int idx_holds_on(idx *ix, char kind, const char *target, json_t **out) {
  char p[ON_KEY_MAX];
  size_t pn = on_key(p, kind, target, NULL);
  on_ctx c = {ix, pn, json_array()};
  int rc = idx_scan_prefix(ix, CF_HOLD_ON, p, pn, add_on, &c);
  if (rc) {
    json_decref(c.out);
    return rc;
  }
  *out = c.out;
  return 0;
}

typedef struct {
  bool active_only;
  const char *state;
  int limit;
  json_t *out;
} list_ctx;

static int add_rec(const char *k, size_t kn, const char *v, size_t vn, void *ud) {
  list_ctx *c = ud;
  json_t *rec = NULL;
  if (cu_json_parse(v, vn, &rec)) return cu_error(CU_ECORRUPT, "a governance record is damaged");
  const char *state = cu_json_str(rec, "state");
  bool keep = c->state ? state && !strcmp(state, c->state)
                       : !c->active_only || (state && !strcmp(state, "active"));
  if (keep) json_array_append(c->out, rec);
  json_decref(rec);
  return c->limit && (int)json_array_size(c->out) >= c->limit ? 1 : 0;
}

int idx_hold_list(idx *ix, bool active_only, json_t **out) {
  list_ctx c = {active_only, NULL, 0, json_array()};
  int rc = idx_scan_from(ix, CF_HOLD, "", 0, add_rec, &c);
  if (rc) json_decref(c.out);
  else *out = c.out;
  return rc;
}

void idx_batch_put_request(idx_batch *b, const json_t *rec) {
  idx_batch_put_json(b, CF_REQUEST, cu_json_str(rec, "id"), rec);
}

int idx_request_get(idx *ix, const char *id, json_t **out) {
  if (!cu_id_valid(id)) return cu_error(CU_ENOTFOUND, "no request with id %.64s", id);
  int rc = idx_get_json(ix, CF_REQUEST, id, out);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "no request with id %s", id);
  return rc;
}

int idx_request_list(idx *ix, const char *state, int limit, json_t **out) {
  list_ctx c = {false, state, limit, json_array()};
  int rc = idx_scan_from(ix, CF_REQUEST, "", 0, add_rec, &c);
  if (rc) json_decref(c.out);
  else *out = c.out;
  return rc;
}
