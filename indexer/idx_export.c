/* Export records (archive/export.c writes the bags; ingest/export_job.c
 * runs them): one column family, export id -> record. A case's items for
 * an export come from case_evidence. */
#include <stdlib.h>
#include <string.h>

#include "cu_limits.h"
#include "err.h"
#include "id.h"
#include "idx_int.h"
#include "banned.h"

void idx_batch_put_export(idx_batch *b, const json_t *rec) {
  idx_batch_put_json(b, CF_EXPORT, cu_json_str(rec, "id"), rec);
}

int idx_export_get(idx *ix, const char *id, json_t **out) {
  if (!cu_id_valid(id)) return cu_error(CU_ENOTFOUND, "no export with id %.64s", id);
  int rc = idx_get_json(ix, CF_EXPORT, id, out);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "no export with id %s", id);
  return rc;
}

typedef struct {
  const char *after, *case_id;
  int (*fn)(const char *id, json_t *rec, void *ud);
  void *ud;
} each_ctx;

static int each_one(const char *k, size_t kn, const char *v, size_t vn, void *ud) {
  each_ctx *c = ud;
  if (kn != CU_ID_LEN) return 0;
  char id[CU_ID_LEN + 1];
  memcpy(id, k, CU_ID_LEN);
  id[CU_ID_LEN] = '\0';
  if (c->after && !strcmp(id, c->after)) return 0;
  json_t *rec = NULL;
  if (cu_json_parse(v, vn, &rec)) return 0; /* not ours to judge here; skipped */
  const char *cs = cu_json_str(rec, "case");
  int rc = 0;
  if (!c->case_id || (cs && !strcmp(cs, c->case_id))) rc = c->fn(id, rec, c->ud);
  json_decref(rec);
  return rc;
}

int idx_export_each(idx *ix, const char *after, const char *case_id,
                    int (*fn)(const char *id, json_t *rec, void *ud), void *ud) {
  each_ctx c = {after, case_id, fn, ud};
  if (after && cu_id_valid(after))
    return idx_scan_from(ix, CF_EXPORT, after, CU_ID_LEN, each_one, &c);
  return idx_scan_from(ix, CF_EXPORT, "", 0, each_one, &c);
}

typedef struct {
  size_t skip;
  int (*fn)(const char *evidence_id, void *ud);
  void *ud;
} case_ctx;

static int case_one(const char *k, size_t kn, const char *v, size_t vn, void *ud) {
  case_ctx *c = ud;
  if (kn != c->skip + CU_ID_LEN) return 0;
  char id[CU_ID_LEN + 1];
  memcpy(id, k + c->skip, CU_ID_LEN);
  id[CU_ID_LEN] = '\0';
  return c->fn(id, c->ud);
}

int idx_case_evidence_each(idx *ix, const char *case_id,
                           int (*fn)(const char *evidence_id, void *ud), void *ud) {
  if (!cu_name_valid(case_id)) return cu_error(CU_ENOTFOUND, "no case with id %.64s", case_id);
  char p[CU_MAX_ID_LEN + 1];
  size_t pn = strlen(case_id) + 1; /* case | \0 */
  memcpy(p, case_id, pn);
  case_ctx c = {pn, fn, ud};
  return idx_scan_prefix(ix, CF_CASE_EVIDENCE, p, pn, case_one, &c);
}
