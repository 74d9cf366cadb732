/* DESIGN: one RocksDB instance, one column family per key space (see
 * docs/ARCHITECTURE.md). Every write that matters is a WriteBatch with
 * sync=true: the WAL is fsynced before the call returns, so a committed
 * record survives kill -9 and power loss. Reads use the default snapshot-less
 * read options; a record and its index entries are written in one batch, so
 * a reader never sees one without the other for long enough to matter
 * (listing loads each record by id and skips ids that vanished). */
#include "idx_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_limits.h"
#include "err.h"
#include "log.h"
#include "banned.h"

static const char *cf_names[CF_COUNT] = {
    [CF_DEFAULT] = "default",
    [CF_EVIDENCE] = "evidence",
    [CF_BY_SHA256] = "by_sha256",
    [CF_BY_DEVICE_TIME] = "by_device_time",
    [CF_BY_OFFICER_TIME] = "by_officer_time",
    [CF_CASE_EVIDENCE] = "case_evidence",
    [CF_EVIDENCE_CASE] = "evidence_case",
    [CF_UPLOAD] = "upload",
    [CF_UPLOAD_DUE] = "upload_due",
    [CF_TOKEN] = "token",
    [CF_JOB] = "job",
    [CF_JOB_PENDING] = "job_pending",
    [CF_META] = "meta",
    [CF_LEDGER] = "ledger",
    [CF_LEDGER_NODE] = "ledger_node",
    [CF_STH] = "sth",
    [CF_TIMESTAMP] = "timestamp",
    [CF_EVIDENCE_EVENTS] = "evidence_events",
    [CF_JOB_FAILED] = "job_failed",
    [CF_RENDITION] = "rendition",
    [CF_CASE] = "case",
    [CF_CASE_USER] = "case_user",
    [CF_HOLD] = "hold",
    [CF_HOLD_ON] = "hold_on",
    [CF_REQUEST] = "request",
    [CF_EXPORT] = "export",
};

static int rocks_error(char *err, const char *what) {
  int rc = cu_error(CU_EIO, "index %s failed: %s", what, err ? err : "unknown error");
  free(err);
  return rc;
}

static int load_count(idx *ix) {
  json_t *v = NULL;
  int rc = idx_meta_get(ix, "evidence_count", &v);
  if (rc == CU_ENOTFOUND) return 0;
  if (rc) return rc;
  ix->evidence_count = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
  json_decref(v);
  return 0;
}

int idx_open(idx **out, const char *dir) {
  idx *ix = cu_xcalloc(1, sizeof *ix);
  pthread_mutex_init(&ix->count_lock, NULL);
  pthread_mutex_init(&ix->update_lock, NULL);
  ix->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(ix->opts, 1);
  rocksdb_options_set_create_missing_column_families(ix->opts, 1);
  rocksdb_options_set_paranoid_checks(ix->opts, 1);
  /* Metadata only: small memtables and one shared budget keep the
   * server's memory flat however many column families exist. */
  rocksdb_options_set_write_buffer_size(ix->opts, 4 << 20);
  rocksdb_options_set_db_write_buffer_size(ix->opts, 32 << 20);
  rocksdb_options_set_keep_log_file_num(ix->opts, 5);
  rocksdb_options_set_info_log_level(ix->opts, 2 /* WARN */);
  rocksdb_options_set_max_background_jobs(ix->opts, 2);
  ix->cache = rocksdb_cache_create_lru(16 << 20);
  ix->topts = rocksdb_block_based_options_create();
  rocksdb_block_based_options_set_block_cache(ix->topts, ix->cache);
  rocksdb_options_set_block_based_table_factory(ix->opts, ix->topts);

  /* The ledger's tree nodes are hashes, which no compressor can shrink.
   * (Bigger memtables for the ledger were tried: RocksDB preallocates its
   * WAL to the largest one, 18 MiB of disk at start-up.) */
  ix->node_opts = rocksdb_options_create_copy(ix->opts);
  rocksdb_options_set_compression(ix->node_opts, rocksdb_no_compression);
  const rocksdb_options_t *cf_opts[CF_COUNT];
  for (int i = 0; i < CF_COUNT; i++) cf_opts[i] = ix->opts;
  cf_opts[CF_LEDGER_NODE] = ix->node_opts;
  char *err = NULL;
  ix->db = rocksdb_open_column_families(ix->opts, dir, CF_COUNT, cf_names, cf_opts, ix->cf, &err);
  if (err) {
    int rc = rocks_error(err, "open");
    ix->db = NULL;
    idx_close(ix);
    return cu_error_wrap(rc, "cannot open index in %s", dir);
  }
  ix->ropts = rocksdb_readoptions_create();
  ix->wopts = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(ix->wopts, 1);
  int rc = load_count(ix);
  if (!rc) rc = idx_totals_load(ix);
  if (rc) {
    idx_close(ix);
    return rc;
  }
  *out = ix;
  return 0;
}

void idx_close(idx *ix) {
  if (!ix) return;
  if (ix->db) {
    for (int i = 0; i < CF_COUNT; i++)
      if (ix->cf[i]) rocksdb_column_family_handle_destroy(ix->cf[i]);
    rocksdb_close(ix->db);
  }
  if (ix->ropts) rocksdb_readoptions_destroy(ix->ropts);
  if (ix->wopts) rocksdb_writeoptions_destroy(ix->wopts);
  rocksdb_options_destroy(ix->opts);
  if (ix->node_opts) rocksdb_options_destroy(ix->node_opts);
  rocksdb_block_based_options_destroy(ix->topts);
  rocksdb_cache_destroy(ix->cache);
  pthread_mutex_destroy(&ix->count_lock);
  pthread_mutex_destroy(&ix->update_lock);
  free(ix);
}

idx_batch *idx_batch_new(idx *ix) {
  idx_batch *b = cu_xcalloc(1, sizeof *b);
  b->ix = ix;
  cu_buf_init(&b->ops, SIZE_MAX);
  return b;
}

void idx_batch_free(idx_batch *b) {
  if (!b) return;
  cu_buf_release(&b->ops);
  free(b);
}


enum { OP_PUT = 1, OP_DEL = 2 };

static void op_add(idx_batch *b, int op, enum idx_cf cf, const void *key, size_t klen,
                   const void *val, size_t vlen) {
  unsigned char h[10] = {(unsigned char)op, (unsigned char)cf};
  uint32_t k = (uint32_t)klen, v = (uint32_t)vlen;
  memcpy(h + 2, &k, 4);
  memcpy(h + 6, &v, 4);
  cu_buf_add(&b->ops, h, sizeof h);
  cu_buf_add(&b->ops, key, klen);
  if (vlen) cu_buf_add(&b->ops, val, vlen);
}

static void to_writebatch(idx *ix, const idx_batch *b, rocksdb_writebatch_t *wb) {
  const unsigned char *p = (const unsigned char *)b->ops.data, *end = p + b->ops.len;
  while (p && p + 10 <= end) {
    uint32_t k, v;
    memcpy(&k, p + 2, 4);
    memcpy(&v, p + 6, 4);
    const char *key = (const char *)p + 10, *val = key + k;
    if (p[0] == OP_PUT) rocksdb_writebatch_put_cf(wb, ix->cf[p[1]], key, k, val, v);
    else rocksdb_writebatch_delete_cf(wb, ix->cf[p[1]], key, k);
    p += 10 + k + v;
  }
}

int idx_commit_many(idx *ix, idx_batch *const *batches, int n) {
  char *err = NULL;
  uint64_t added = 0;
  int64_t bytes = 0, footage = 0;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  for (int i = 0; i < n; i++) {
    if (!batches[i]) continue;
    to_writebatch(ix, batches[i], wb);
    added += batches[i]->evidence_added;
    bytes += batches[i]->bytes_added;
    footage += batches[i]->footage_us_added;
  }
  if (!added && !bytes && !footage) {
    rocksdb_write(ix->db, ix->wopts, wb, &err);
    rocksdb_writebatch_destroy(wb);
    return err ? rocks_error(err, "write") : 0;
  }
  /* The count is written in the same batch as the records it counts. */
  pthread_mutex_lock(&ix->count_lock);
  uint64_t count = ix->evidence_count + added;
  char v[24];
  int vn = snprintf(v, sizeof v, "%llu", (unsigned long long)count);
  rocksdb_writebatch_put_cf(wb, ix->cf[CF_META], "evidence_count", 14, v, (size_t)vn);
  /* The running totals likewise (idx_stats.c). */
  uint64_t nbytes = ix->evidence_bytes + (uint64_t)bytes, nfoot = ix->footage_us + (uint64_t)footage;
  vn = snprintf(v, sizeof v, "%llu", (unsigned long long)nbytes);
  rocksdb_writebatch_put_cf(wb, ix->cf[CF_META], "evidence_bytes", 14, v, (size_t)vn);
  vn = snprintf(v, sizeof v, "%llu", (unsigned long long)nfoot);
  rocksdb_writebatch_put_cf(wb, ix->cf[CF_META], "footage_us", 10, v, (size_t)vn);
  rocksdb_write(ix->db, ix->wopts, wb, &err);
  if (!err) {
    ix->evidence_count = count;
    ix->evidence_bytes = nbytes;
    ix->footage_us = nfoot;
  }
  pthread_mutex_unlock(&ix->count_lock);
  rocksdb_writebatch_destroy(wb);
  return err ? rocks_error(err, "write") : 0;
}

int idx_batch_commit(idx *ix, idx_batch *b) { return idx_commit_many(ix, &b, 1); }

uint64_t idx_evidence_count(idx *ix) {
  pthread_mutex_lock(&ix->count_lock);
  uint64_t n = ix->evidence_count;
  pthread_mutex_unlock(&ix->count_lock);
  return n;
}

int idx_get_raw(idx *ix, enum idx_cf cf, const void *key, size_t klen, cu_buf *val) {
  char *err = NULL;
  size_t vlen = 0;
  char *v = rocksdb_get_cf(ix->db, ix->ropts, ix->cf[cf], key, klen, &vlen, &err);
  if (err) return rocks_error(err, "read");
  if (!v) return cu_error(CU_ENOTFOUND, "not found");
  int rc = cu_buf_add(val, v, vlen);
  rocksdb_free(v);
  return rc;
}

int idx_get_json(idx *ix, enum idx_cf cf, const char *key, json_t **out) {
  cu_buf val = CU_BUF_INIT(CU_MAX_RECORD_BYTES);
  int rc = idx_get_raw(ix, cf, key, strlen(key), &val);
  if (!rc) {
    rc = cu_json_parse(val.data, val.len, out);
    if (rc) rc = cu_error_wrap(CU_ECORRUPT, "index record %s in %s is damaged", key, cf_names[cf]);
  }
  cu_buf_release(&val);
  return rc;
}

void idx_batch_put_cf(idx_batch *b, enum idx_cf cf, const void *key, size_t klen, const void *val,
                      size_t vlen) {
  op_add(b, OP_PUT, cf, key, klen, val, vlen);
}

void idx_batch_put_json(idx_batch *b, enum idx_cf cf, const char *key, const json_t *v) {
  size_t n;
  char *s = cu_json_canon(v, &n);
  idx_batch_put_cf(b, cf, key, strlen(key), s, n);
  free(s);
}

void idx_batch_del_cf(idx_batch *b, enum idx_cf cf, const void *key, size_t klen) {
  op_add(b, OP_DEL, cf, key, klen, NULL, 0);
}

static int scan(idx *ix, enum idx_cf cf, const void *start, size_t slen, size_t plen,
                idx_scan_fn fn, void *ud) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ix->db, ix->ropts, ix->cf[cf]);
  int rc = 0;
  for (rocksdb_iter_seek(it, start, slen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t klen, vlen;
    const char *k = rocksdb_iter_key(it, &klen);
    if (klen < plen || memcmp(k, start, plen)) break;
    const char *v = rocksdb_iter_value(it, &vlen);
    if ((rc = fn(k, klen, v, vlen, ud))) break;
  }
  char *err = NULL;
  rocksdb_iter_get_error(it, &err);
  rocksdb_iter_destroy(it);
  if (err) return rocks_error(err, "scan");
  return rc > 0 ? 0 : rc;
}

int idx_scan_prefix(idx *ix, enum idx_cf cf, const void *prefix, size_t plen, idx_scan_fn fn,
                    void *ud) {
  return scan(ix, cf, prefix, plen, plen, fn, ud);
}

int idx_scan_from_prefix(idx *ix, enum idx_cf cf, const void *start, size_t slen, size_t plen,
                         idx_scan_fn fn, void *ud) {
  return scan(ix, cf, start, slen, plen, fn, ud);
}

int idx_scan_from(idx *ix, enum idx_cf cf, const void *start, size_t slen, idx_scan_fn fn,
                  void *ud) {
  return scan(ix, cf, start, slen, 0, fn, ud);
}

int idx_last_key(idx *ix, enum idx_cf cf, cu_buf *key) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ix->db, ix->ropts, ix->cf[cf]);
  rocksdb_iter_seek_to_last(it);
  int rc = cu_error(CU_ENOTFOUND, "empty");
  if (rocksdb_iter_valid(it)) {
    size_t klen;
    const char *k = rocksdb_iter_key(it, &klen);
    rc = cu_buf_add(key, k, klen);
  }
  char *err = NULL;
  rocksdb_iter_get_error(it, &err);
  rocksdb_iter_destroy(it);
  if (err) return rocks_error(err, "scan");
  return rc;
}

int idx_meta_get(idx *ix, const char *key, json_t **out) {
  return idx_get_json(ix, CF_META, key, out);
}

void idx_batch_put_meta(idx_batch *b, const char *key, const json_t *v) {
  idx_batch_put_json(b, CF_META, key, v);
}

void idx_be64(uint64_t v, unsigned char out[8]) {
  for (int i = 0; i < 8; i++) out[i] = (unsigned char)(v >> (56 - 8 * i));
}

uint64_t idx_get_be64(const unsigned char in[8]) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | in[i];
  return v;
}

uint64_t idx_time_key(int64_t us) { return (uint64_t)us ^ 0x8000000000000000ull; }
int64_t idx_time_from_key(uint64_t k) { return (int64_t)(k ^ 0x8000000000000000ull); }
