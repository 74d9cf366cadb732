/* Cases, their evidence links and their reviewers.
 *
 * The checks a reviewer's every read goes through (is this item in a case
 * assigned to me?) are point lookups: the item's cases come from one short
 * prefix scan of evidence_case, and each is one get in case_user. */
#include <stdlib.h>
#include <string.h>

#include "cu_limits.h"
#include "err.h"
#include "id.h"
#include "idx_int.h"
#include "banned.h"

#define KEY_MAX (CU_MAX_ID_LEN + 1 + CU_MAX_ID_LEN + 1)

/* a | \0 | b, with lengths checked by the callers' name validation. */
static size_t pair_key(char *k, const char *a, const char *b) {
  size_t an = strlen(a), bn = strlen(b);
  memcpy(k, a, an);
  k[an] = '\0';
  memcpy(k + an + 1, b, bn);
  return an + 1 + bn;
}

void idx_batch_put_case(idx_batch *b, const json_t *rec) {
  idx_batch_put_json(b, CF_CASE, cu_json_str(rec, "id"), rec);
}

int idx_case_get(idx *ix, const char *id, json_t **out) {
  if (!cu_name_valid(id)) return cu_error(CU_ENOTFOUND, "no case with id %.64s", id);
  int rc = idx_get_json(ix, CF_CASE, id, out);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "no case with id %s", id);
  return rc;
}

void idx_batch_link(idx_batch *b, const char *case_id, const char *evidence_id, bool linked) {
  char k[KEY_MAX];
  size_t n = pair_key(k, case_id, evidence_id);
  char r[KEY_MAX];
  size_t en = strlen(evidence_id), cn = strlen(case_id);
  memcpy(r, evidence_id, en);
  memcpy(r + en, case_id, cn);
  if (linked) {
    idx_batch_put_cf(b, CF_CASE_EVIDENCE, k, n, "", 0);
    idx_batch_put_cf(b, CF_EVIDENCE_CASE, r, en + cn, "", 0);
  } else {
    idx_batch_del_cf(b, CF_CASE_EVIDENCE, k, n);
    idx_batch_del_cf(b, CF_EVIDENCE_CASE, r, en + cn);
  }
}

static int exists(idx *ix, enum idx_cf cf, const char *k, size_t n, bool *yes) {
  cu_buf v = CU_BUF_INIT(CU_MAX_RECORD_BYTES); /* a case's entry carries its record */
  int rc = idx_get_raw(ix, cf, k, n, &v);
  cu_buf_release(&v);
  *yes = rc == 0;
  return rc == CU_ENOTFOUND ? 0 : rc;
}

int idx_case_has_evidence(idx *ix, const char *case_id, const char *evidence_id, bool *yes) {
  char k[KEY_MAX];
  return exists(ix, CF_CASE_EVIDENCE, k, pair_key(k, case_id, evidence_id), yes);
}

static int count_one(const char *k, size_t kn, const char *v, size_t vn, void *ud) {
  (*(uint64_t *)ud)++;
  return 0;
}

int idx_case_evidence_count(idx *ix, const char *case_id, uint64_t *n) {
  char p[KEY_MAX];
  size_t pn = strlen(case_id) + 1;
  memcpy(p, case_id, pn);
  *n = 0;
  return idx_scan_prefix(ix, CF_CASE_EVIDENCE, p, pn, count_one, n);
}

void idx_batch_assign(idx_batch *b, const char *case_id, const char *user, bool assigned) {
  char k[KEY_MAX];
  size_t n = pair_key(k, user, case_id);
  if (assigned) idx_batch_put_cf(b, CF_CASE_USER, k, n, "", 0);
  else idx_batch_del_cf(b, CF_CASE_USER, k, n);
}

int idx_case_assigned(idx *ix, const char *case_id, const char *user, bool *yes) {
  char k[KEY_MAX];
  return exists(ix, CF_CASE_USER, k, pair_key(k, user, case_id), yes);
}

typedef struct {
  idx *ix;
  const char *user;
  bool *yes;
} visible_ctx;

static int check_case(const char *k, size_t kn, const char *v, size_t vn, void *ud) {
  visible_ctx *c = ud;
  char case_id[CU_MAX_ID_LEN + 1];
  size_t cn = kn - CU_ID_LEN;
  if (kn <= CU_ID_LEN || cn > CU_MAX_ID_LEN) return 0;
  memcpy(case_id, k + CU_ID_LEN, cn);
  case_id[cn] = '\0';
  int rc = idx_case_assigned(c->ix, case_id, c->user, c->yes);
  return rc ? rc : *c->yes; /* > 0 stops the scan: one case is enough */
}

int idx_evidence_visible_to(idx *ix, const char *evidence_id, const char *user, bool *yes) {
  *yes = false;
  if (!cu_id_valid(evidence_id) || !cu_name_valid(user)) return 0;
  visible_ctx c = {ix, user, yes};
  return idx_scan_prefix(ix, CF_EVIDENCE_CASE, evidence_id, CU_ID_LEN, check_case, &c);
}

typedef struct {
  idx *ix;
  const idx_case_query *q;
  size_t skip; /* bytes of prefix before the case id in a key */
  json_t *items;
  char last[CU_MAX_ID_LEN + 1];
  bool more;
  int scanned;
} list_ctx;

static bool has_tag(const json_t *rec, const char *tag) {
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(rec, "tags"), i, t) {
    if (json_is_string(t) && !strcmp(json_string_value(t), tag)) return true;
  }
  return false;
}

static int list_one(const char *k, size_t kn, const char *v, size_t vn, void *ud) {
  list_ctx *c = ud;
  size_t cn = kn - c->skip;
  if (kn < c->skip || !cn || cn > CU_MAX_ID_LEN) return 0;
  char id[CU_MAX_ID_LEN + 1];
  memcpy(id, k + c->skip, cn);
  id[cn] = '\0';
  if (c->q->cursor && !strcmp(id, c->q->cursor)) return 0;
  if ((int)json_array_size(c->items) >= c->q->limit || c->scanned >= CU_MAX_SCAN_PER_PAGE) {
    c->more = true;
    return 1;
  }
  c->scanned++;
  memcpy(c->last, id, cn + 1);
  json_t *rec = NULL;
  int rc;
  if (c->skip) { /* an assignment: the record is elsewhere */
    rc = idx_case_get(c->ix, id, &rec);
    if (rc == CU_ENOTFOUND) return 0;
  } else {
    rc = cu_json_parse(v, vn, &rec);
    if (rc) rc = cu_error(CU_ECORRUPT, "the case record %s is damaged", id);
  }
  if (rc) return rc;
  const char *status = cu_json_str(rec, "status");
  if ((!c->q->status || (status && !strcmp(status, c->q->status))) &&
      (!c->q->tag || has_tag(rec, c->q->tag)))
    json_array_append(c->items, rec);
  json_decref(rec);
  return 0;
}

int idx_case_list(idx *ix, const idx_case_query *q, json_t **items, char **next) {
  if (q->cursor && !cu_name_valid(q->cursor))
    return cu_error(CU_EINVAL, "the cursor does not belong to this listing");
  list_ctx c = {.ix = ix, .q = q, .items = json_array()};
  char start[KEY_MAX];
  size_t sn = 0, pn = 0;
  if (q->user) {
    pn = strlen(q->user) + 1;
    c.skip = pn;
    sn = pair_key(start, q->user, q->cursor ? q->cursor : "");
  } else if (q->cursor) {
    sn = strlen(q->cursor);
    memcpy(start, q->cursor, sn);
  }
  /* An assignment listing stays within user\0; the full listing runs from
   * the cursor to the end of the cases. */
  int rc = q->user ? idx_scan_from_prefix(ix, CF_CASE_USER, start, sn, pn, list_one, &c)
               : idx_scan_from(ix, CF_CASE, start, sn, list_one, &c);
  if (rc) {
    json_decref(c.items);
    return rc;
  }
  *items = c.items;
  *next = c.more && c.last[0] ? cu_xstrdup(c.last) : NULL;
  return 0;
}
