/* The ledger's storage: entries, Merkle nodes, signed tree heads,
 * time-stamp tokens and the per-evidence event list. The logic (what a
 * node is, when a head is signed) is archive/ledger.c's; this file only
 * lays out the keys:
 *
 *   ledger           index (u64 BE)               -> event bytes (canonical JSON)
 *   ledger_node      level (u8) | index (u64 BE)  -> 32-byte hash of a perfect subtree
 *   sth              size (u64 BE)                -> signed tree head (JSON)
 *   timestamp        imprint (64 hex)             -> RFC 3161 TimeStampResp (DER)
 *   evidence_events  evidence id | index (u64 BE) -> ""                          */
#include <stdlib.h>
#include <string.h>

#include "cu_limits.h"
#include "err.h"
#include "hex.h"
#include "id.h"
#include "idx_int.h"
#include "banned.h"

void idx_batch_put_ledger_entry(idx_batch *b, uint64_t index, const void *bytes, size_t n) {
  unsigned char k[8];
  idx_be64(index, k);
  idx_batch_put_cf(b, CF_LEDGER, k, 8, bytes, n);
}

int idx_ledger_entry_get(idx *ix, uint64_t index, cu_buf *out) {
  unsigned char k[8];
  idx_be64(index, k);
  int rc = idx_get_raw(ix, CF_LEDGER, k, 8, out);
  if (rc == CU_ENOTFOUND)
    return cu_error(CU_ENOTFOUND, "ledger entry %llu does not exist", (unsigned long long)index);
  return rc;
}

typedef struct {
  int (*fn)(uint64_t index, const char *bytes, size_t n, void *ud);
  void *ud;
} entry_ctx;

static int entry_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  entry_ctx *c = ud;
  if (klen != 8) return cu_error(CU_ECORRUPT, "a ledger key is %zu bytes, not 8", klen);
  return c->fn(idx_get_be64((const unsigned char *)key), val, vlen, c->ud);
}

int idx_ledger_each_entry(idx *ix, uint64_t start,
                          int (*fn)(uint64_t index, const char *bytes, size_t n, void *ud),
                          void *ud) {
  unsigned char k[8];
  idx_be64(start, k);
  entry_ctx c = {fn, ud};
  return idx_scan_from(ix, CF_LEDGER, k, 8, entry_one, &c);
}

int idx_ledger_last_index(idx *ix, uint64_t *index) {
  cu_buf k = CU_BUF_INIT(64);
  int rc = idx_last_key(ix, CF_LEDGER, &k);
  if (!rc && k.len != 8) rc = cu_error(CU_ECORRUPT, "a ledger key is %zu bytes, not 8", k.len);
  if (!rc) *index = idx_get_be64((const unsigned char *)k.data);
  cu_buf_release(&k);
  return rc;
}

static void node_key(unsigned level, uint64_t index, unsigned char k[9]) {
  k[0] = (unsigned char)level;
  idx_be64(index, k + 1);
}

void idx_batch_put_ledger_node(idx_batch *b, unsigned level, uint64_t index,
                               const unsigned char hash[32]) {
  unsigned char k[9];
  node_key(level, index, k);
  idx_batch_put_cf(b, CF_LEDGER_NODE, k, 9, hash, 32);
}

int idx_ledger_node_get(idx *ix, unsigned level, uint64_t index, unsigned char out[32]) {
  unsigned char k[9];
  node_key(level, index, k);
  cu_buf v = CU_BUF_INIT(64);
  int rc = idx_get_raw(ix, CF_LEDGER_NODE, k, 9, &v);
  if (rc == CU_ENOTFOUND)
    rc = cu_error(CU_ENOTFOUND, "ledger node (level %u, index %llu) does not exist", level,
                  (unsigned long long)index);
  else if (!rc && v.len != 32)
    rc = cu_error(CU_ECORRUPT, "ledger node (level %u, index %llu) is %zu bytes, not 32", level,
                  (unsigned long long)index, v.len);
  if (!rc) memcpy(out, v.data, 32);
  cu_buf_release(&v);
  return rc;
}

void idx_batch_put_sth(idx_batch *b, uint64_t size, const json_t *sth) {
  unsigned char k[8];
  idx_be64(size, k);
  size_t n;
  char *s = cu_json_canon(sth, &n);
  idx_batch_put_cf(b, CF_STH, k, 8, s, n);
  free(s);
}

static int sth_parse(const unsigned char *key, const char *val, size_t vlen, json_t **out) {
  if (cu_json_parse(val, vlen, out))
    return cu_error(CU_ECORRUPT, "the signed tree head for size %llu is damaged",
                    (unsigned long long)idx_get_be64(key));
  return 0;
}

int idx_sth_get(idx *ix, uint64_t size, json_t **out) {
  unsigned char k[8];
  idx_be64(size, k);
  cu_buf v = CU_BUF_INIT(CU_MAX_RECORD_BYTES);
  int rc = idx_get_raw(ix, CF_STH, k, 8, &v);
  if (rc == CU_ENOTFOUND)
    rc = cu_error(CU_ENOTFOUND, "no signed tree head for size %llu", (unsigned long long)size);
  if (!rc) rc = sth_parse(k, v.data, v.len, out);
  cu_buf_release(&v);
  return rc;
}

int idx_sth_latest(idx *ix, json_t **out) {
  cu_buf k = CU_BUF_INIT(64);
  int rc = idx_last_key(ix, CF_STH, &k);
  if (rc == CU_ENOTFOUND) rc = cu_error(CU_ENOTFOUND, "no tree head has been signed yet");
  else if (!rc && k.len != 8) rc = cu_error(CU_ECORRUPT, "an STH key is %zu bytes, not 8", k.len);
  if (!rc) rc = idx_sth_get(ix, idx_get_be64((const unsigned char *)k.data), out);
  cu_buf_release(&k);
  return rc;
}

typedef struct {
  int (*fn)(uint64_t size, json_t *sth, void *ud);
  void *ud;
} sth_ctx;

static int sth_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  sth_ctx *c = ud;
  if (klen != 8) return cu_error(CU_ECORRUPT, "an STH key is %zu bytes, not 8", klen);
  json_t *j = NULL;
  int rc = sth_parse((const unsigned char *)key, val, vlen, &j);
  if (!rc) rc = c->fn(idx_get_be64((const unsigned char *)key), j, c->ud);
  json_decref(j);
  return rc;
}

int idx_sth_each(idx *ix, uint64_t from_size, int (*fn)(uint64_t size, json_t *sth, void *ud),
                 void *ud) {
  unsigned char k[8];
  idx_be64(from_size, k);
  sth_ctx c = {fn, ud};
  return idx_scan_from(ix, CF_STH, k, 8, sth_one, &c);
}

void idx_batch_put_timestamp(idx_batch *b, const char *imprint_hex, const void *der, size_t n) {
  idx_batch_put_cf(b, CF_TIMESTAMP, imprint_hex, strlen(imprint_hex), der, n);
}

int idx_timestamp_get(idx *ix, const char *imprint_hex, cu_buf *out) {
  if (!cu_is_sha256_hex(imprint_hex)) return cu_error(CU_EINVAL, "not a SHA-256");
  int rc = idx_get_raw(ix, CF_TIMESTAMP, imprint_hex, 64, out);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "no time-stamp token for %s yet", imprint_hex);
  return rc;
}

void idx_batch_add_evidence_event(idx_batch *b, const char *evidence_id, uint64_t index) {
  unsigned char k[CU_ID_LEN + 8];
  memcpy(k, evidence_id, CU_ID_LEN);
  idx_be64(index, k + CU_ID_LEN);
  idx_batch_put_cf(b, CF_EVIDENCE_EVENTS, k, sizeof k, "", 0);
}

typedef struct {
  int (*fn)(uint64_t index, void *ud);
  void *ud;
} ev_ctx;

static int ev_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  ev_ctx *c = ud;
  if (klen != CU_ID_LEN + 8) return 0;
  return c->fn(idx_get_be64((const unsigned char *)key + CU_ID_LEN), c->ud);
}

int idx_evidence_events(idx *ix, const char *evidence_id, int (*fn)(uint64_t index, void *ud),
                        void *ud) {
  if (!cu_id_valid(evidence_id)) return cu_error(CU_ENOTFOUND, "no evidence with id %.64s", evidence_id);
  ev_ctx c = {fn, ud};
  return idx_scan_prefix(ix, CF_EVIDENCE_EVENTS, evidence_id, CU_ID_LEN, ev_one, &c);
}
