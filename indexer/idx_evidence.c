/* Evidence records and their secondary indexes.
 *
 * Every listing key ends with the 36-byte evidence id, so one scan routine
 * serves all of them: the key space (column family + prefix + bounds) is
 * chosen from the most selective filter, the remaining filters are applied
 * to the loaded records, and the cursor is the last key examined. */
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "cu_limits.h"
#include "err.h"
#include "hash.h"
#include "id.h"
#include "idx_int.h"
#include "timeu.h"
#include "banned.h"

#define MAX_KEY (CU_MAX_ID_LEN + 1 + 8 + CU_ID_LEN)

typedef struct {
  unsigned char b[MAX_KEY + 64];
  size_t n;
} key_t_;

static void key_add(key_t_ *k, const void *p, size_t n) {
  memcpy(k->b + k->n, p, n);
  k->n += n;
}

static void key_time(key_t_ *k, int64_t us) {
  unsigned char t[8];
  idx_be64(idx_time_key(us), t);
  key_add(k, t, 8);
}

static int record_time(const json_t *rec, int64_t *us) {
  const char *t = cu_json_str(rec, "recorded_at");
  if (!t) return cu_error(CU_EINVAL, "evidence record has no recorded_at");
  return cu_time_parse_rfc3339(t, us);
}

/* name | \0 | time | id: one person's or device's recordings in time order.
 * The value is a copy of the record (a covering index): a listing reads one
 * range of one column family instead of a random read per item. */
static void put_time_key(idx_batch *b, enum idx_cf cf, const char *name, int64_t t, const char *id,
                         const char *val, size_t vlen) {
  key_t_ k = {.n = 0};
  key_add(&k, name, strlen(name) + 1);
  key_time(&k, t);
  key_add(&k, id, CU_ID_LEN);
  idx_batch_put_cf(b, cf, k.b, k.n, val, vlen);
}

static void put_case_key(idx_batch *b, const char *case_id, const char *id, const char *val, size_t vlen) {
  key_t_ k = {.n = 0};
  key_add(&k, case_id, strlen(case_id) + 1);
  key_add(&k, id, CU_ID_LEN);
  idx_batch_put_cf(b, CF_CASE_EVIDENCE, k.b, k.n, val, vlen);
}

/* The record and every listing entry that carries a copy of it. cases is
 * the item's case ids (NULL: none). */
static int put_record(idx_batch *b, const json_t *rec, const json_t *cases) {
  const char *id = cu_json_str(rec, "id"), *device = cu_json_str(rec, "device_id");
  const char *officer = cu_json_str(rec, "officer_id");
  int64_t t;
  int rc = record_time(rec, &t);
  if (rc) return rc;
  size_t n;
  char *val = cu_json_canon(rec, &n);
  idx_batch_put_cf(b, CF_EVIDENCE, id, strlen(id), val, n);
  put_time_key(b, CF_BY_DEVICE_TIME, device, t, id, val, n);
  if (officer) put_time_key(b, CF_BY_OFFICER_TIME, officer, t, id, val, n);
  size_t i;
  json_t *c;
  json_array_foreach(cases, i, c) put_case_key(b, json_string_value(c), id, val, n);
  free(val);
  return 0;
}

int idx_batch_add_evidence(idx_batch *b, const json_t *rec) {
  const char *id = cu_json_str(rec, "id"), *sha = cu_json_str(rec, "sha256");
  const char *device = cu_json_str(rec, "device_id"), *officer = cu_json_str(rec, "officer_id");
  const char *case_id = cu_json_str(rec, "case_id");
  int64_t t;
  if (!cu_id_valid(id) || !sha || strlen(sha) != 64 || !cu_name_valid(device))
    return cu_error(CU_EINVAL, "evidence record lacks a valid id, sha256 or device_id");
  if ((officer && !cu_name_valid(officer)) || (case_id && !cu_name_valid(case_id)))
    return cu_error(CU_EINVAL, "evidence record has an invalid officer_id or case_id");
  int rc = record_time(rec, &t);
  if (rc) return rc;

  json_t *copy = json_deep_copy(rec), *cases = json_array();
  json_object_del(copy, "cases");
  if (case_id) json_array_append_new(cases, json_string(case_id));
  rc = put_record(b, copy, cases);
  json_decref(copy);
  json_decref(cases);
  if (rc) return rc;

  key_t_ k = {.n = 0};
  key_add(&k, sha, 64);
  key_add(&k, id, CU_ID_LEN);
  idx_batch_put_cf(b, CF_BY_SHA256, k.b, k.n, "", 0);
  if (case_id) {
    k.n = 0;
    key_add(&k, id, CU_ID_LEN);
    key_add(&k, case_id, strlen(case_id));
    idx_batch_put_cf(b, CF_EVIDENCE_CASE, k.b, k.n, "", 0);
  }
  b->evidence_added++;
  idx_totals_note(b, NULL, rec);
  return 0;
}

static int add_case(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  json_array_append_new(ud, json_stringn(key + CU_ID_LEN, klen - CU_ID_LEN));
  return 0;
}

static int load_record(idx *ix, const char *id, json_t **out) {
  json_t *rec = NULL;
  int rc = idx_get_json(ix, CF_EVIDENCE, id, &rec);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "no evidence with id %s", id);
  if (rc) return rc;
  *out = rec;
  return 0;
}

int idx_evidence_get(idx *ix, const char *id, json_t **out) {
  if (!cu_id_valid(id)) return cu_error(CU_ENOTFOUND, "no evidence with id %.64s", id);
  json_t *rec = NULL;
  int rc = load_record(ix, id, &rec);
  if (rc) return rc;
  json_t *cases = json_array();
  rc = idx_scan_prefix(ix, CF_EVIDENCE_CASE, id, CU_ID_LEN, add_case, cases);
  if (rc) {
    json_decref(cases);
    json_decref(rec);
    return rc;
  }
  json_object_set_new(rec, "cases", cases);
  *out = rec;
  return 0;
}

/* Key fields feed the secondary indexes; an update that changed one would
 * leave stale index entries behind. */
static const char *const key_fields[] = {"id", "sha256", "device_id", "officer_id", "recorded_at",
                                         "case_id"};

static int key_fields_equal(const json_t *a, const json_t *b) {
  for (size_t i = 0; i < sizeof key_fields / sizeof *key_fields; i++) {
    json_t *x = json_object_get(a, key_fields[i]), *y = json_object_get(b, key_fields[i]);
    if ((x || y) && !(x && y && json_equal(x, y))) return 0;
  }
  return 1;
}

int idx_evidence_update(idx *ix, const char *id, int (*fn)(json_t *rec, void *ud), void *ud) {
  return idx_evidence_update_in(ix, NULL, id, fn, ud);
}

int idx_evidence_update_in(idx *ix, idx_batch *extra, const char *id,
                           int (*fn)(json_t *rec, void *ud), void *ud) {
  return idx_evidence_update_by(ix, extra, id, fn, ud, NULL, NULL);
}

int idx_evidence_update_by(idx *ix, idx_batch *extra, const char *id,
                           int (*fn)(json_t *rec, void *ud), void *ud,
                           int (*commit)(idx_batch *b, void *cud), void *cud) {
  pthread_mutex_lock(&ix->update_lock);
  json_t *rec = NULL, *before = NULL;
  idx_batch *b = NULL;
  int rc = idx_evidence_get(ix, id, &rec);
  if (rc) goto done;
  before = json_deep_copy(rec);
  if ((rc = fn(rec, ud))) goto done;
  if (!key_fields_equal(before, rec)) {
    rc = cu_error(CU_EINVAL, "an evidence update may not change its key fields");
    goto done;
  }
  json_t *cases = json_object_get(before, "cases"); /* from the links, as loaded */
  json_incref(cases);
  json_object_del(rec, "cases");
  b = extra ? extra : idx_batch_new(ix);
  idx_totals_note(b, before, rec); /* the probe sets the duration */
  rc = put_record(b, rec, cases);
  json_decref(cases);
  if (!rc) rc = commit ? commit(b, cud) : idx_batch_commit(ix, b);
done:
  pthread_mutex_unlock(&ix->update_lock);
  if (b != extra) idx_batch_free(b);
  json_decref(before);
  json_decref(rec);
  return rc;
}

int idx_evidence_link(idx *ix, idx_batch *b, const char *case_id, const char *id, bool link,
                      int (*commit)(idx_batch *b, void *cud), void *cud) {
  pthread_mutex_lock(&ix->update_lock);
  json_t *rec = NULL;
  int rc = idx_evidence_get(ix, id, &rec);
  if (!rc) {
    idx_batch_link(b, case_id, id, link); /* both directions, empty values */
    if (link) { /* the case's entry carries the record, as the others do */
      json_object_del(rec, "cases");
      size_t n;
      char *val = cu_json_canon(rec, &n);
      put_case_key(b, case_id, id, val, n);
      free(val);
    }
    rc = commit ? commit(b, cud) : idx_batch_commit(ix, b);
  }
  pthread_mutex_unlock(&ix->update_lock);
  json_decref(rec);
  return rc;
}

void idx_query_init(idx_query *q) {
  memset(q, 0, sizeof *q);
  q->from_us = INT64_MIN;
  q->to_us = INT64_MAX;
  q->limit = CU_DEFAULT_PAGE_LIMIT;
}

/* The key space of one listing: [lo, hi) within one column family. */
typedef struct {
  enum idx_cf cf;
  key_t_ lo, hi;
  int hi_open; /* no upper bound */
  int time_in_key;
} plan_t;

static void prefix_bounds(plan_t *p, const char *name) {
  key_add(&p->lo, name, strlen(name) + 1);
  key_add(&p->hi, name, strlen(name));
  key_add(&p->hi, "\x01", 1); /* name\0... < name\1 */
}

static void make_plan(const idx_query *q, plan_t *p) {
  memset(p, 0, sizeof *p);
  if (q->sha256) {
    p->cf = CF_BY_SHA256;
    key_add(&p->lo, q->sha256, 64);
    key_add(&p->hi, q->sha256, 64);
    key_add(&p->hi, "\xff", 1);
  } else if (q->case_id) {
    p->cf = CF_CASE_EVIDENCE;
    prefix_bounds(p, q->case_id);
  } else if (q->device || q->officer) {
    p->cf = q->device ? CF_BY_DEVICE_TIME : CF_BY_OFFICER_TIME;
    const char *name = q->device ? q->device : q->officer;
    key_add(&p->lo, name, strlen(name) + 1);
    key_add(&p->hi, name, strlen(name) + 1);
    if (q->from_us != INT64_MIN) key_time(&p->lo, q->from_us);
    if (q->to_us != INT64_MAX) {
      key_time(&p->hi, q->to_us);
    } else {
      p->hi.n--;
      key_add(&p->hi, "\x01", 1);
    }
    p->time_in_key = 1;
  } else {
    p->cf = CF_EVIDENCE;
    p->hi_open = 1;
  }
}

/* A cursor is: the listing's column family (1 byte), a digest of its
 * filters (8 bytes), then the last key examined. A cursor only resumes the
 * listing that made it. */
#define CURSOR_TAG 9

static void cursor_tag(const idx_query *q, const plan_t *p, unsigned char tag[CURSOR_TAG]) {
  char *s = cu_xasprintf("%s\x1f%s\x1f%s\x1f%s\x1f%lld\x1f%lld\x1f%d", q->device ? q->device : "",
                         q->officer ? q->officer : "", q->case_id ? q->case_id : "",
                         q->sha256 ? q->sha256 : "", (long long)q->from_us, (long long)q->to_us,
                         q->desc);
  unsigned char d[32];
  cu_sha256_raw(s, strlen(s), d);
  free(s);
  tag[0] = (unsigned char)p->cf;
  memcpy(tag + 1, d, CURSOR_TAG - 1);
}

static int key_cmp(const void *a, size_t an, const void *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c) return c;
  return an < bn ? -1 : an > bn;
}

static int matches(idx *ix, const idx_query *q, const plan_t *p, const json_t *rec,
                   const char *id) {
  const char *v;
  if (q->device && (!(v = cu_json_str(rec, "device_id")) || strcmp(v, q->device))) return 0;
  if (q->officer && (!(v = cu_json_str(rec, "officer_id")) || strcmp(v, q->officer))) return 0;
  if (q->sha256 && (!(v = cu_json_str(rec, "sha256")) || strcmp(v, q->sha256))) return 0;
  if (!p->time_in_key && (q->from_us != INT64_MIN || q->to_us != INT64_MAX)) {
    int64_t t;
    if (record_time(rec, &t) || t < q->from_us || t >= q->to_us) return 0;
  }
  if (q->case_id && p->cf != CF_CASE_EVIDENCE) {
    key_t_ k = {.n = 0};
    key_add(&k, id, CU_ID_LEN);
    key_add(&k, q->case_id, strlen(q->case_id));
    cu_buf val = CU_BUF_INIT(64);
    int rc = idx_get_raw(ix, CF_EVIDENCE_CASE, k.b, k.n, &val);
    cu_buf_release(&val);
    if (rc) return 0;
  }
  return 1;
}

/* Whether a filter is not already met by the key range being scanned, so
 * the record must be read to check it. */
static bool needs_record(const idx_query *q, const plan_t *p) {
  return (q->device && p->cf != CF_BY_DEVICE_TIME) || (q->officer && p->cf != CF_BY_OFFICER_TIME) ||
         (q->sha256 && p->cf != CF_BY_SHA256) ||
         (!p->time_in_key && (q->from_us != INT64_MIN || q->to_us != INT64_MAX));
}

/* Appends ,"cases":[...] for id from the evidence_case iterator. */
static void add_cases_raw(rocksdb_iterator_t *it, const char *id, cu_buf *out) {
  cu_buf_adds(out, ",\"cases\":[");
  bool first = true;
  for (rocksdb_iter_seek(it, id, CU_ID_LEN); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t klen;
    const char *k = rocksdb_iter_key(it, &klen);
    if (klen <= CU_ID_LEN || memcmp(k, id, CU_ID_LEN)) break;
    /* case ids are names ([A-Za-z0-9._:@-]): nothing to escape */
    cu_buf_printf(out, "%s\"%.*s\"", first ? "" : ",", (int)(klen - CU_ID_LEN), k + CU_ID_LEN);
    first = false;
  }
  cu_buf_adds(out, "]");
}

int idx_evidence_list_raw(idx *ix, const idx_query *q, cu_buf *out, int *count, char **next) {
  plan_t p;
  make_plan(q, &p);
  cu_buf cur = CU_BUF_INIT(sizeof p.lo.b + CURSOR_TAG);
  unsigned char tag[CURSOR_TAG];
  cursor_tag(q, &p, tag);
  int rc = 0;
  *count = 0;
  if (q->cursor) {
    rc = cu_b64url_decode(q->cursor, strlen(q->cursor), &cur);
    if (rc || cur.len <= CURSOR_TAG || memcmp(cur.data, tag, CURSOR_TAG) ||
        key_cmp(cur.data + CURSOR_TAG, cur.len - CURSOR_TAG, p.lo.b, p.lo.n) < 0 ||
        (!p.hi_open && key_cmp(cur.data + CURSOR_TAG, cur.len - CURSOR_TAG, p.hi.b, p.hi.n) >= 0)) {
      cu_buf_release(&cur);
      return cu_error(CU_EINVAL, "the cursor does not belong to this listing (same filters and order needed)");
    }
    /* From here on, cur is the key alone. */
    memmove(cur.data, cur.data + CURSOR_TAG, cur.len - CURSOR_TAG);
    cur.len -= CURSOR_TAG;
  }
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)p.lo.b, p.lo.n);
  if (!p.hi_open) rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)p.hi.b, p.hi.n);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ix->db, ro, ix->cf[p.cf]);
  rocksdb_iterator_t *cit = rocksdb_create_iterator_cf(ix->db, ix->ropts, ix->cf[CF_EVIDENCE_CASE]);
  if (!q->desc) {
    if (cur.data) rocksdb_iter_seek(it, cur.data, cur.len);
    else rocksdb_iter_seek(it, (const char *)p.lo.b, p.lo.n);
  } else {
    if (cur.data) rocksdb_iter_seek_for_prev(it, cur.data, cur.len);
    else if (p.hi_open) rocksdb_iter_seek_to_last(it);
    else rocksdb_iter_seek_for_prev(it, (const char *)p.hi.b, p.hi.n);
  }
  bool check = needs_record(q, &p);
  cu_buf rec = CU_BUF_INIT(CU_MAX_RECORD_BYTES);
  key_t_ last = {.n = 0};
  int scanned = 0, more = 0;
  cu_buf_adds(out, "[");
  for (; rocksdb_iter_valid(it); q->desc ? rocksdb_iter_prev(it) : rocksdb_iter_next(it)) {
    size_t klen, vlen;
    const char *k = rocksdb_iter_key(it, &klen);
    if (cur.data && klen == cur.len && !memcmp(k, cur.data, klen)) continue;
    if (!p.hi_open && key_cmp(k, klen, p.hi.b, p.hi.n) >= 0) continue;
    if (*count >= q->limit || scanned >= CU_MAX_SCAN_PER_PAGE) {
      more = 1;
      break;
    }
    scanned++;
    if (klen < CU_ID_LEN || klen > sizeof last.b) continue;
    last.n = 0;
    key_add(&last, k, klen);
    char id[CU_ID_LEN + 1];
    memcpy(id, k + klen - CU_ID_LEN, CU_ID_LEN);
    id[CU_ID_LEN] = '\0';
    /* The listing entries of the evidence column family, and those written
     * without a copy (links made by idx_batch_link, older indexes), hold no
     * record: it is read by id. */
    const char *v = p.cf == CF_EVIDENCE ? rocksdb_iter_value(it, &vlen)
                    : p.cf == CF_BY_SHA256 ? (vlen = 0, "")
                                            : rocksdb_iter_value(it, &vlen);
    if (!vlen) {
      rec.len = 0;
      int grc = idx_get_raw(ix, CF_EVIDENCE, id, CU_ID_LEN, &rec);
      if (grc == CU_ENOTFOUND) continue;
      if (grc) {
        rc = grc;
        break;
      }
      v = rec.data;
      vlen = rec.len;
    }
    if (vlen < 2 || v[vlen - 1] != '}') {
      rc = cu_error(CU_ECORRUPT, "the evidence record %s is damaged", id);
      break;
    }
    if (check || (q->case_id && p.cf != CF_CASE_EVIDENCE)) {
      json_t *j = NULL;
      if (cu_json_parse(v, vlen, &j)) {
        rc = cu_error(CU_ECORRUPT, "the evidence record %s is damaged", id);
        break;
      }
      int m = matches(ix, q, &p, j, id);
      json_decref(j);
      if (!m) continue;
    }
    if (*count) cu_buf_adds(out, ",");
    cu_buf_add(out, v, vlen - 1); /* the record without its closing brace */
    add_cases_raw(cit, id, out);
    cu_buf_adds(out, "}");
    (*count)++;
  }
  cu_buf_adds(out, "]");
  char *err = NULL;
  rocksdb_iter_get_error(it, &err);
  if (err && !rc) rc = cu_error(CU_EIO, "index scan failed: %s", err);
  free(err);
  rocksdb_iter_destroy(it);
  rocksdb_iter_destroy(cit);
  rocksdb_readoptions_destroy(ro);
  cu_buf_release(&cur);
  cu_buf_release(&rec);
  if (rc) return rc;
  *next = NULL; /* only on success: a caller's pointer survives an error */
  if (more && last.n) {
    unsigned char raw[CURSOR_TAG + sizeof last.b];
    memcpy(raw, tag, CURSOR_TAG);
    memcpy(raw + CURSOR_TAG, last.b, last.n);
    cu_buf c = CU_BUF_INIT(4 * sizeof raw);
    cu_b64url_encode(raw, CURSOR_TAG + last.n, &c);
    *next = cu_buf_detach(&c, NULL);
  }
  return 0;
}

int idx_evidence_list(idx *ix, const idx_query *q, json_t **items, char **next) {
  cu_buf out = CU_BUF_INIT(SIZE_MAX / 2);
  int n = 0;
  int rc = idx_evidence_list_raw(ix, q, &out, &n, next);
  if (!rc && cu_json_parse(out.data, out.len, items)) {
    free(*next);
    *next = NULL;
    rc = cu_error(CU_ECORRUPT, "an evidence record in the listing is damaged");
  }
  cu_buf_release(&out);
  return rc;
}

typedef struct {
  int (*fn)(const char *id, json_t *rec, void *ud);
  void *ud;
  const char *after;
} each_ctx;

static int each_one(const char *key, size_t klen, const char *val, size_t vlen, void *ud) {
  each_ctx *c = ud;
  if (klen != CU_ID_LEN) return 0;
  char id[CU_ID_LEN + 1];
  memcpy(id, key, CU_ID_LEN);
  id[CU_ID_LEN] = '\0';
  if (c->after && !strcmp(id, c->after)) return 0;
  json_t *rec = NULL;
  if (cu_json_parse(val, vlen, &rec))
    return cu_error(CU_ECORRUPT, "the evidence record %s is damaged", id);
  int rc = c->fn(id, rec, c->ud);
  json_decref(rec);
  return rc;
}

int idx_evidence_each(idx *ix, const char *after,
                      int (*fn)(const char *id, json_t *rec, void *ud), void *ud) {
  each_ctx c = {fn, ud, after};
  return idx_scan_from(ix, CF_EVIDENCE, after ? after : "", after ? strlen(after) : 0, each_one, &c);
}
