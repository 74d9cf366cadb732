/* The ledger and time-stamp endpoints: signed tree heads, entries, RFC 9162
 * proofs, the public keys, each item's chain of custody and its RFC 3161
 * token. Proof material (heads, proofs, keys) is for anyone who checks
 * evidence (reviewer, legal, admin); entries and events name evidence, so
 * they are for legal and admin, like evidence records. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "b64.h"
#include "cu_limits.h"
#include "err.h"
#include "hex.h"
#include "id.h"
#include "merkle.h"
#include "timeu.h"
#include "banned.h"

#define PROOF_ROLES (ROLE_REVIEWER | ROLE_LEGAL | ROLE_ADMIN)
#define READ_ROLES (ROLE_LEGAL | ROLE_ADMIN)
#define MAX_ENTRIES 1000 /* per request, as RFC 6962 logs cap get-entries */

int req_query_u64(req *r, const char *name, bool required, uint64_t max, uint64_t *out) {
  const char *v = req_query(r, name);
  char msg[160];
  if (!v) {
    if (!required) return 0;
    snprintf(msg, sizeof msg, "the query parameter %s is required", name);
    respond_status(r, 400, "invalid", msg, NULL);
    return CU_EINVAL;
  }
  int64_t n;
  if (cu_parse_i64(v, &n, 0) || n < 0 || (uint64_t)n > max) {
    snprintf(msg, sizeof msg, "%s must be a whole number from 0 to %llu", name,
             (unsigned long long)max);
    respond_status(r, 400, "invalid", msg, NULL);
    return CU_EINVAL;
  }
  *out = (uint64_t)n;
  return 0;
}

static json_t *hex_json(const unsigned char *h, size_t n) {
  char s[129];
  cu_hex_encode(h, n, s);
  return json_string(s);
}

static json_t *path_json(merkle_hash *path, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, hex_json(path[i], 32));
  return a;
}

static int sth(req *r) {
  uint64_t size = 0;
  json_t *s = NULL;
  if (req_query(r, "size")) {
    if (req_query_u64(r, "size", true, INT64_MAX, &size)) return 0;
    int rc = idx_sth_get(r->a->ix, size, &s);
    if (rc) return respond_error(r, rc, NULL);
  } else {
    int rc = ledger_sth_latest(r->a->lg, &s);
    if (rc) return respond_error(r, rc, NULL);
  }
  int rc = respond_json(r, 200, s, NULL);
  json_decref(s);
  return rc;
}

/* The latest head as a bare C2SP checkpoint, for transparency-log tools. */
static int checkpoint(req *r) {
  json_t *s = NULL;
  int rc = ledger_sth_latest(r->a->lg, &s);
  if (rc) return respond_error(r, rc, NULL);
  const char *note = cu_json_str(s, "checkpoint");
  rc = respond(r, 200, "text/plain; charset=utf-8", note, strlen(note), NULL);
  json_decref(s);
  return rc;
}

static int key(req *r) {
  unsigned char pub[32], spki[44] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
                                     0x70, 0x03, 0x21, 0x00};
  ledger_public_key(r->a->lg, pub);
  memcpy(spki + 12, pub, 32); /* RFC 8410 SubjectPublicKeyInfo for Ed25519 */
  cu_buf vkey = CU_BUF_INIT(1024), b64 = CU_BUF_INIT(1024), pem = CU_BUF_INIT(1024);
  ledger_vkey(r->a->lg, &vkey);
  cu_b64_encode(spki, sizeof spki, &b64);
  cu_buf_printf(&pem, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", b64.data);
  json_t *o = json_object();
  cu_json_set_str(o, "origin", ledger_origin(r->a->lg));
  cu_json_set_str(o, "algorithm", "Ed25519");
  json_object_set_new(o, "public_key", hex_json(pub, 32));
  cu_json_set_str(o, "vkey", vkey.data);
  cu_json_set_str(o, "pem", pem.data);
  int rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  cu_buf_release(&vkey);
  cu_buf_release(&b64);
  cu_buf_release(&pem);
  return rc;
}

/* {index, leaf_hash, data (base64 of the exact bytes), event}. */
static int entry_json(ledger *lg, uint64_t index, json_t **out) {
  cu_buf bytes = CU_BUF_INIT(CU_MAX_RECORD_BYTES), b64 = CU_BUF_INIT(4 * CU_MAX_RECORD_BYTES);
  merkle_hash leaf;
  json_t *ev = NULL;
  int rc = ledger_entry(lg, index, &bytes);
  if (!rc) rc = cu_b64_encode(bytes.data, bytes.len, &b64);
  if (!rc) {
    merkle_leaf(bytes.data, bytes.len, leaf);
    if (cu_json_parse(bytes.data, bytes.len, &ev))
      ev = json_null(); /* shown as damaged; the hash still says what is stored */
    json_t *o = json_object();
    cu_json_set_int(o, "index", (int64_t)index);
    json_object_set_new(o, "leaf_hash", hex_json(leaf, 32));
    cu_json_set_str(o, "data", b64.data);
    json_object_set_new(o, "event", ev);
    *out = o;
  }
  cu_buf_release(&bytes);
  cu_buf_release(&b64);
  return rc;
}

static int entries(req *r) {
  uint64_t start, end, size = ledger_size(r->a->lg);
  if (req_query_u64(r, "start", true, INT64_MAX, &start)) return 0;
  if (req_query_u64(r, "end", true, INT64_MAX, &end)) return 0;
  if (end < start) return respond_status(r, 400, "invalid", "end must not be before start", NULL);
  if (start >= size) {
    char msg[128];
    snprintf(msg, sizeof msg, "the ledger has %llu entries (indexes 0 to %lld)",
             (unsigned long long)size, (long long)size - 1);
    return respond_status(r, 400, "invalid", msg, NULL);
  }
  if (end >= size) end = size - 1;
  if (end - start >= MAX_ENTRIES) end = start + MAX_ENTRIES - 1; /* a short page, as in RFC 6962 */
  json_t *a = json_array();
  int rc = 0;
  for (uint64_t i = start; !rc && i <= end; i++) {
    json_t *e = NULL;
    if (!(rc = entry_json(r->a->lg, i, &e))) json_array_append_new(a, e);
  }
  if (rc) {
    json_decref(a);
    return respond_error(r, rc, NULL);
  }
  json_t *o = json_object();
  json_object_set_new(o, "entries", a);
  rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  return rc;
}

static int inclusion(req *r) {
  uint64_t index, size;
  if (req_query_u64(r, "index", true, INT64_MAX, &index)) return 0;
  if (req_query_u64(r, "size", true, INT64_MAX, &size)) return 0;
  if (index >= size)
    return respond_status(r, 400, "invalid", "index must be less than size", NULL);
  merkle_hash path[MERKLE_MAX_PATH], leaf;
  int n = 0;
  int rc = ledger_inclusion(r->a->lg, index, size, path, &n);
  if (!rc) rc = ledger_leaf_hash(r->a->lg, index, leaf);
  if (rc) return respond_error(r, rc, NULL);
  json_t *o = json_object();
  cu_json_set_int(o, "index", (int64_t)index);
  cu_json_set_int(o, "size", (int64_t)size);
  json_object_set_new(o, "leaf_hash", hex_json(leaf, 32));
  json_object_set_new(o, "audit_path", path_json(path, n));
  rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  return rc;
}

static int consistency(req *r) {
  uint64_t first, second;
  if (req_query_u64(r, "first", true, INT64_MAX, &first)) return 0;
  if (req_query_u64(r, "second", true, INT64_MAX, &second)) return 0;
  if (!first || first > second)
    return respond_status(r, 400, "invalid", "first must be at least 1 and at most second", NULL);
  merkle_hash path[MERKLE_MAX_PATH];
  int n = 0;
  int rc = ledger_consistency(r->a->lg, first, second, path, &n);
  if (rc) return respond_error(r, rc, NULL);
  json_t *o = json_object();
  cu_json_set_int(o, "first", (int64_t)first);
  cu_json_set_int(o, "second", (int64_t)second);
  json_object_set_new(o, "consistency_path", path_json(path, n));
  rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  return rc;
}

typedef struct {
  ledger *lg;
  json_t *list;
  int rc;
} events_ctx;

static int add_event(uint64_t index, void *ud) {
  events_ctx *c = ud;
  json_t *e = NULL;
  if ((c->rc = entry_json(c->lg, index, &e))) return c->rc;
  json_array_append_new(c->list, e);
  return 0;
}

static int events(req *r) {
  if (auth_may_read_evidence(r, r->param[0])) return 0;
  json_t *rec = NULL;
  int rc = idx_evidence_get(r->a->ix, r->param[0], &rec);
  if (rc) return respond_error(r, rc, NULL);
  json_decref(rec);
  events_ctx c = {r->a->lg, json_array(), 0};
  rc = idx_evidence_events(r->a->ix, r->param[0], add_event, &c);
  if (rc) {
    json_decref(c.list);
    return respond_error(r, rc, NULL);
  }
  json_t *o = json_object();
  cu_json_set_str(o, "evidence", r->param[0]);
  json_object_set_new(o, "events", c.list);
  rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  return rc;
}

static int send_token(req *r, const char *imprint, const char *what) {
  cu_buf der = CU_BUF_INIT(1 << 20);
  int rc = idx_timestamp_get(r->a->ix, imprint, &der);
  if (rc == CU_ENOTFOUND) {
    char msg[384];
    snprintf(msg, sizeof msg,
             "%s has no time-stamp token yet: its stamp job is queued, or retrying while the "
             "TSA is unreachable or its answers fail verification (the server log says which)",
             what);
    rc = respond_status(r, 404, "not_found", msg, NULL);
  } else if (rc) {
    rc = respond_error(r, rc, NULL);
  } else {
    const char *h[] = {"Content-Disposition", "attachment; filename=\"token.tsr\"", NULL};
    rc = respond(r, 200, "application/timestamp-reply", der.data, der.len, h);
  }
  cu_buf_release(&der);
  return rc;
}

static int evidence_timestamp(req *r) {
  if (auth_may_read_evidence(r, r->param[0])) return 0;
  json_t *rec = NULL;
  int rc = idx_evidence_get(r->a->ix, r->param[0], &rec);
  if (rc) return respond_error(r, rc, NULL);
  char what[160];
  snprintf(what, sizeof what, "evidence %s", r->param[0]);
  rc = send_token(r, cu_json_str(rec, "sha256"), what);
  json_decref(rec);
  return rc;
}

static int sth_timestamp(req *r) {
  uint64_t size;
  if (req_query_u64(r, "size", true, INT64_MAX, &size)) return 0;
  json_t *s = NULL;
  int rc = idx_sth_get(r->a->ix, size, &s);
  if (rc) return respond_error(r, rc, NULL);
  char what[128];
  snprintf(what, sizeof what, "the tree head at size %llu", (unsigned long long)size);
  rc = send_token(r, cu_json_str(s, "checkpoint_sha256"), what);
  json_decref(s);
  return rc;
}

static int tsa_root(req *r) {
  cu_buf pem = CU_BUF_INIT(1 << 20);
  int rc = tsa_ca_pem(r->a->ts, &pem);
  if (!rc) rc = respond(r, 200, "application/x-pem-file", pem.data, pem.len, NULL);
  else rc = respond_error(r, rc, NULL);
  cu_buf_release(&pem);
  return rc;
}

const route ledger_routes[] = {
    {"GET", "/v1/ledger/sth", PROOF_ROLES, 0, NULL, NULL, sth, NULL, false},
    {"GET", "/v1/ledger/checkpoint", PROOF_ROLES, 0, NULL, NULL, checkpoint, NULL, false},
    {"GET", "/v1/ledger/key", PROOF_ROLES, 0, NULL, NULL, key, NULL, false},
    {"GET", "/v1/ledger/entries", READ_ROLES, 0, NULL, NULL, entries, NULL, false},
    {"GET", "/v1/ledger/proof/inclusion", PROOF_ROLES, 0, NULL, NULL, inclusion, NULL, false},
    {"GET", "/v1/ledger/proof/consistency", PROOF_ROLES, 0, NULL, NULL, consistency, NULL, false},
    {"GET", "/v1/ledger/timestamp", PROOF_ROLES, 0, NULL, NULL, sth_timestamp, NULL, false},
    {"GET", "/v1/evidence/{}/events", PROOF_ROLES, 0, NULL, NULL, events, NULL, false},
    {"GET", "/v1/evidence/{}/timestamp", PROOF_ROLES, 0, NULL, NULL, evidence_timestamp, NULL, false},
    {"GET", "/v1/tsa/root.pem", PROOF_ROLES, 0, NULL, NULL, tsa_root, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
