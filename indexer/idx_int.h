/* Internals shared by the indexer's .c files. Not for other modules. */
#ifndef IDX_INT_H
#define IDX_INT_H

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdint.h>

#include "buf.h"
#include "idx.h"

enum idx_cf {
  CF_DEFAULT,
  CF_EVIDENCE,
  CF_BY_SHA256,
  CF_BY_DEVICE_TIME,
  CF_BY_OFFICER_TIME,
  CF_CASE_EVIDENCE,
  CF_EVIDENCE_CASE,
  CF_UPLOAD,
  CF_UPLOAD_DUE,
  CF_TOKEN,
  CF_JOB,
  CF_JOB_PENDING,
  CF_META,
  CF_LEDGER,
  CF_LEDGER_NODE,
  CF_STH,
  CF_TIMESTAMP,
  CF_EVIDENCE_EVENTS,
  CF_JOB_FAILED,
  CF_RENDITION,
  CF_CASE,
  CF_CASE_USER,
  CF_HOLD,
  CF_HOLD_ON,
  CF_REQUEST,
  CF_EXPORT,
  CF_COUNT
};

struct idx {
  rocksdb_t *db;
  rocksdb_options_t *opts, *node_opts;
  rocksdb_cache_t *cache;
  rocksdb_block_based_table_options_t *topts;
  rocksdb_column_family_handle_t *cf[CF_COUNT];
  rocksdb_readoptions_t *ropts;
  rocksdb_writeoptions_t *wopts;
  pthread_mutex_t count_lock; /* evidence_count and the batches adding to it */
  uint64_t evidence_count;
  uint64_t evidence_bytes, footage_us; /* running totals, under count_lock too */
  pthread_mutex_t update_lock; /* read-modify-write of evidence records */
};

/* A batch is a log of operations, turned into a RocksDB WriteBatch at
 * commit, so that several batches can go into one write: the ledger commits
 * many callers' batches, with their events, as one synced write (RocksDB
 * 7.8's C API cannot merge WriteBatches across column families). */
struct idx_batch {
  idx *ix;
  cu_buf ops; /* [op][cf][klen u32][vlen u32][key][value] ... */
  uint64_t evidence_added;
  int64_t bytes_added, footage_us_added; /* changes to the running totals */
};

/* Running totals (idx_stats.c): idx_totals_note adds to b what changes
 * between two versions of a record (before NULL: a new record; after NULL:
 * one removed); idx_totals_load reads them at open, computing them once for
 * an index written before they existed. */
void idx_totals_note(idx_batch *b, const json_t *before, const json_t *after);
int idx_totals_load(idx *ix);
/* A record's media.duration_s in microseconds (0 when not probed). */
int64_t idx_record_footage_us(const json_t *rec);

/* Raw operations used by every part of the schema. */
int idx_get_raw(idx *ix, enum idx_cf cf, const void *key, size_t klen, cu_buf *val);
int idx_get_json(idx *ix, enum idx_cf cf, const char *key, json_t **out);
void idx_batch_put_cf(idx_batch *b, enum idx_cf cf, const void *key, size_t klen, const void *val,
                      size_t vlen);
void idx_batch_put_json(idx_batch *b, enum idx_cf cf, const char *key, const json_t *v);
void idx_batch_del_cf(idx_batch *b, enum idx_cf cf, const void *key, size_t klen);

/* Iterates keys starting with prefix (plen bytes) in order. fn returns 0
 * to go on, > 0 to stop (not an error), < 0 to stop with that error. */
typedef int (*idx_scan_fn)(const char *key, size_t klen, const char *val, size_t vlen, void *ud);
int idx_scan_prefix(idx *ix, enum idx_cf cf, const void *prefix, size_t plen, idx_scan_fn fn,
                    void *ud);

/* Iterates from key start (inclusive) while keys begin with start's first
 * plen bytes. */
int idx_scan_from_prefix(idx *ix, enum idx_cf cf, const void *start, size_t slen, size_t plen,
                         idx_scan_fn fn, void *ud);
/* Iterates from key start (inclusive) to the end of the column family. */
int idx_scan_from(idx *ix, enum idx_cf cf, const void *start, size_t slen, idx_scan_fn fn, void *ud);
/* The last key of a column family; CU_ENOTFOUND if it is empty. */
int idx_last_key(idx *ix, enum idx_cf cf, cu_buf *key);

void idx_be64(uint64_t v, unsigned char out[8]);
uint64_t idx_get_be64(const unsigned char in[8]);
/* Signed time as an order-preserving unsigned key part. */
uint64_t idx_time_key(int64_t us);
int64_t idx_time_from_key(uint64_t k);

#endif
