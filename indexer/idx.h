/* The index: every RocksDB key and query of Custos lives behind this
 * header. Records are JSON objects (jansson); keys are laid out for range
 * scans (docs/ARCHITECTURE.md, "Index"). Thread-safe: one handle is shared
 * by every HTTP and worker thread.
 *
 * Writes go through a batch, committed atomically with sync=true, so a
 * record and its secondary index entries appear together or not at all. */
#ifndef IDX_H
#define IDX_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"

typedef struct idx idx;
typedef struct idx_batch idx_batch;

int idx_open(idx **out, const char *dir);
/* Flushes and closes; NULL is a no-op. */
void idx_close(idx *ix);

idx_batch *idx_batch_new(idx *ix);
void idx_batch_free(idx_batch *b);
/* Writes the batch atomically and durably (WAL fsync). The batch stays
 * owned by the caller. */
int idx_batch_commit(idx *ix, idx_batch *b);
/* Writes several batches (NULL entries skipped) as one atomic, durable
 * write, in order. */
int idx_commit_many(idx *ix, idx_batch *const *batches, int n);

/* ---- evidence ---------------------------------------------------------
 * A record has at least: id (UUIDv7), sha256 (64 hex), device_id,
 * recorded_at (RFC 3339) and optionally officer_id and case_id. Those are
 * the key fields; the indexer derives by_sha256, by_device_time,
 * by_officer_time and the case links from them. */
int idx_batch_add_evidence(idx_batch *b, const json_t *rec);
/* The record, with "cases" filled from the case links. CU_ENOTFOUND. */
int idx_evidence_get(idx *ix, const char *id, json_t **out);
/* Read-modify-write of one record under a lock, for fields that are not
 * keys (media, state). fn returns 0 to write, non-zero to abandon. */
int idx_evidence_update(idx *ix, const char *id, int (*fn)(json_t *rec, void *ud), void *ud);
/* The same, writing the record in batch b (committed here, with whatever
 * else the caller put in it). */
int idx_evidence_update_in(idx *ix, idx_batch *b, const char *id,
                           int (*fn)(json_t *rec, void *ud), void *ud);
/* The same, committing through commit(b, cud) instead (the ledger's
 * commit, so that events go into the same write), still under the lock. */
int idx_evidence_update_by(idx *ix, idx_batch *b, const char *id,
                           int (*fn)(json_t *rec, void *ud), void *ud,
                           int (*commit)(idx_batch *b, void *cud), void *cud);
uint64_t idx_evidence_count(idx *ix);
/* Every record in id order (oldest first), starting after the id "after"
 * (NULL = from the start). fn borrows rec; > 0 stops, < 0 is an error. */
int idx_evidence_each(idx *ix, const char *after,
                      int (*fn)(const char *id, json_t *rec, void *ud), void *ud);

typedef struct {
  const char *device, *officer, *case_id, *sha256; /* NULL = no filter */
  int64_t from_us, to_us; /* recorded_at in [from, to); INT64_MIN/MAX = open */
  const char *cursor;     /* from a previous page, or NULL */
  int limit;              /* 1..CU_MAX_PAGE_LIMIT */
  bool desc;              /* newest first */
} idx_query;
void idx_query_init(idx_query *q);
/* One page: *items is a JSON array of records; *next is the cursor for the
 * next page (caller frees) or NULL when the listing is complete. A page
 * may be short (even empty) with a cursor, when the scan budget ran out. */
int idx_evidence_list(idx *ix, const idx_query *q, json_t **items, char **next);
/* The same page as JSON text ("[{...},...]", each record with its "cases")
 * appended to out, without parsing a record unless a filter needs it: what
 * the HTTP listing sends. *count is the number of items. */
int idx_evidence_list_raw(idx *ix, const idx_query *q, cu_buf *out, int *count, char **next);

/* ---- renditions: an evidence item's derived copies, by kind -----------
 * kind is "master", "access", "framehash", "poster" (later: clips); the
 * record says its state and, when done, its object. */
void idx_batch_put_rendition(idx_batch *b, const char *evidence_id, const char *kind,
                             const json_t *rec);
int idx_rendition_get(idx *ix, const char *evidence_id, const char *kind, json_t **out);
/* Whether a done rendition of an item other than except_evidence is the
 * object sha256 (a full scan: for purging a deleted item's objects). */
int idx_rendition_sha_used(idx *ix, const char *sha256, const char *except_evidence, bool *used);
/* All of an item's renditions as one object, kind -> record (empty if none). */
int idx_renditions(idx *ix, const char *evidence_id, json_t **out);

/* ---- cases ------------------------------------------------------------
 * A case record is {id, title, status, tags, reviewers, created_at, ...};
 * its id is a UUIDv7 or a name given at creation (an incident number).
 * Links go both ways (case_evidence case\0evidence, evidence_case
 * evidence|case) and are written together; an item may be in many cases.
 * Assignments (case_user user\0case) say which reviewers see a case. */
void idx_batch_put_case(idx_batch *b, const json_t *rec);
int idx_case_get(idx *ix, const char *id, json_t **out); /* CU_ENOTFOUND */
/* Links or unlinks in b, without the record copy a case's listing entry
 * normally carries (a listing then reads the record itself). */
void idx_batch_link(idx_batch *b, const char *case_id, const char *evidence_id, bool linked);
/* Links or unlinks under the record lock, the case's entry carrying a copy
 * of the record, and commits b through commit (NULL: idx_batch_commit). */
int idx_evidence_link(idx *ix, idx_batch *b, const char *case_id, const char *evidence_id, bool link,
                      int (*commit)(idx_batch *b, void *cud), void *cud);
int idx_case_has_evidence(idx *ix, const char *case_id, const char *evidence_id, bool *yes);
int idx_case_evidence_count(idx *ix, const char *case_id, uint64_t *n);
void idx_batch_assign(idx_batch *b, const char *case_id, const char *user, bool assigned);
int idx_case_assigned(idx *ix, const char *case_id, const char *user, bool *yes);
/* Whether user is assigned to a case that holds the evidence. */
int idx_evidence_visible_to(idx *ix, const char *evidence_id, const char *user, bool *yes);
typedef struct {
  const char *user;   /* only the cases assigned to this user; NULL = all */
  const char *status; /* "open", "closed" or NULL */
  const char *tag;    /* cases carrying this tag, or NULL */
  const char *cursor; /* from a previous page */
  int limit;
} idx_case_query;
/* One page of case records in id order; *next as in idx_evidence_list. */
int idx_case_list(idx *ix, const idx_case_query *q, json_t **items, char **next);

/* ---- governance: legal holds and two-person requests -------------------
 * A hold is {id, target: "case"|"evidence", case or evidence, reason,
 * state: active|released, set_by, set_at, ...}; hold_on keeps the active
 * ones by what they hold ("c:<case>" or "e:<evidence>" \0 hold id), written
 * with the record. A request is {id, action, state, ...} (archive/gov.h). */
void idx_batch_put_hold(idx_batch *b, const json_t *rec);
int idx_hold_get(idx *ix, const char *id, json_t **out); /* CU_ENOTFOUND */
/* The active holds on a case or an item ("c" or "e"), as an array. */
int idx_holds_on(idx *ix, char kind, const char *target, json_t **out);
int idx_hold_list(idx *ix, bool active_only, json_t **out);
void idx_batch_put_request(idx_batch *b, const json_t *rec);
int idx_request_get(idx *ix, const char *id, json_t **out); /* CU_ENOTFOUND */
/* Requests in id (time) order, optionally only those in one state. */
int idx_request_list(idx *ix, const char *state, int limit, json_t **out);

/* ---- uploads (tus state) ---------------------------------------------- */
int idx_upload_get(idx *ix, const char *id, json_t **out);
/* Stores the state; if it has "expires_at_us" and its state is "active"
 * or "committing" (an open upload), it is also listed for the sweep. */
void idx_batch_put_upload(idx_batch *b, const char *id, const json_t *rec);
/* Calls fn for each expiry entry due at or before now (stale entries
 * included: fn must compare with the record). fn returns non-zero to stop. */
int idx_upload_due(idx *ix, int64_t now_us, int (*fn)(const char *id, int64_t expires_us, void *ud),
                   void *ud);
void idx_batch_del_upload_due(idx_batch *b, const char *id, int64_t expires_us);
/* Every open upload (active or committing), for start-up recovery; fn
 * borrows rec. */
int idx_upload_each_active(idx *ix, int (*fn)(const char *id, json_t *rec, void *ud), void *ud);

/* ---- tokens: keyed by the hex SHA-256 of the secret ------------------- */
int idx_token_get(idx *ix, const char *secret_hash, json_t **out);
void idx_batch_put_token(idx_batch *b, const char *secret_hash, const json_t *rec);

/* ---- browser sessions: keyed by the hex SHA-256 of the session id ------
 * (the cookie's value is a secret, so only its hash is kept) */
int idx_session_get(idx *ix, const char *id_hash, json_t **out);
void idx_batch_put_session(idx_batch *b, const char *id_hash, const json_t *rec);
void idx_batch_del_session(idx_batch *b, const char *id_hash);
/* fn for each session; fn borrows rec. Non-zero from fn stops. */
int idx_session_each(idx *ix, int (*fn)(const char *id_hash, json_t *rec, void *ud), void *ud);

/* ---- jobs ------------------------------------------------------------- */
int idx_job_get(idx *ix, const char *id, json_t **out);
/* pending: listed for workers to claim after a restart. */
void idx_batch_put_job(idx_batch *b, const char *id, const json_t *rec, bool pending);
int idx_job_each_pending(idx *ix, int (*fn)(const char *id, json_t *rec, void *ud), void *ud);
/* Jobs that ended failed (after their last attempt), oldest first. */
int idx_job_each_failed(idx *ix, int (*fn)(const char *id, json_t *rec, void *ud), void *ud);

/* ---- ledger storage (archive/ledger.c owns the logic) ----------------
 * Entries by index, Merkle nodes of perfect subtrees by (level, index),
 * signed tree heads by size, RFC 3161 tokens by the hex SHA-256 they
 * stamp, and each evidence item's ledger indexes. */
void idx_batch_put_ledger_entry(idx_batch *b, uint64_t index, const void *bytes, size_t n);
int idx_ledger_entry_get(idx *ix, uint64_t index, cu_buf *out);
/* fn for each entry from start on, in index order; non-zero stops. */
int idx_ledger_each_entry(idx *ix, uint64_t start,
                          int (*fn)(uint64_t index, const char *bytes, size_t n, void *ud),
                          void *ud);
/* The highest index stored; CU_ENOTFOUND for an empty ledger. */
int idx_ledger_last_index(idx *ix, uint64_t *index);
void idx_batch_put_ledger_node(idx_batch *b, unsigned level, uint64_t index,
                               const unsigned char hash[32]);
int idx_ledger_node_get(idx *ix, unsigned level, uint64_t index, unsigned char out[32]);
void idx_batch_put_sth(idx_batch *b, uint64_t size, const json_t *sth);
int idx_sth_get(idx *ix, uint64_t size, json_t **out);
int idx_sth_latest(idx *ix, json_t **out);
/* fn borrows sth; heads in increasing size from from_size on. */
int idx_sth_each(idx *ix, uint64_t from_size, int (*fn)(uint64_t size, json_t *sth, void *ud),
                 void *ud);
void idx_batch_put_timestamp(idx_batch *b, const char *imprint_hex, const void *der, size_t n);
int idx_timestamp_get(idx *ix, const char *imprint_hex, cu_buf *out);
void idx_batch_add_evidence_event(idx_batch *b, const char *evidence_id, uint64_t index);
/* fn for each ledger index recording an event of this evidence, in order. */
int idx_evidence_events(idx *ix, const char *evidence_id, int (*fn)(uint64_t index, void *ud),
                        void *ud);

/* ---- small named values ----------------------------------------------- */
int idx_meta_get(idx *ix, const char *key, json_t **out);
void idx_batch_put_meta(idx_batch *b, const char *key, const json_t *v);

/* ---- statistics ---------------------------------------------------------
 * Sums over the evidence records whose recorded_at is in [from, to), in all
 * and per group: recordings, footage (the probe's media.duration_s: items
 * not yet probed add none), bytes (size), ingest lag (received_at -
 * recorded_at, over the items whose recorded_at came from the recorder) and
 * failed jobs (each counted where its evidence counts). Memory is bounded
 * by the number of groups (CU_MAX_STATS_GROUPS), never by the records. */
typedef enum {
  IDX_STATS_NONE,
  IDX_STATS_DEVICE,
  IDX_STATS_OFFICER,
  IDX_STATS_DAY, /* the UTC date of recorded_at, YYYY-MM-DD */
  IDX_STATS_CASE /* an item in several cases counts in each; in none: "(none)" */
} idx_stats_by;
typedef struct {
  idx_stats_by by;
  int64_t from_us, to_us; /* recorded_at in [from, to); INT64_MIN/MAX = open */
} idx_stats_query;
void idx_stats_query_init(idx_stats_query *q);
/* "none", "device", "officer", "day" or "case"; CU_EINVAL otherwise. */
int idx_stats_by_parse(const char *name, idx_stats_by *out);
const char *idx_stats_by_name(idx_stats_by by);
/* *out (caller frees): {from, to, by, totals, groups: [{key, ...}]} as in
 * docs/API.md, "Statistics", groups in key order (bytewise). CU_EINVAL if
 * from >= to; CU_ETOOBIG past CU_MAX_STATS_GROUPS groups. */
int idx_stats(idx *ix, const idx_stats_query *q, json_t **out);

/* Running totals over every record, kept in the writes that change them
 * (like the evidence count): cheap enough for /metrics. */
typedef struct {
  uint64_t recordings, bytes, footage_us;
} idx_totals;
void idx_evidence_totals(idx *ix, idx_totals *out);

/* ---- exports (idx_export.c) --------------------------------------------
 * An export record {id, case, state, selection, requested_by, ...} keyed
 * by its id (UUIDv7, so in creation order). Few enough to list by a scan. */
void idx_batch_put_export(idx_batch *b, const json_t *rec);
int idx_export_get(idx *ix, const char *id, json_t **out); /* CU_ENOTFOUND */
/* Every export record in id order, after the id "after" (NULL = from the
 * start); case_id (may be NULL) keeps only that case's. fn borrows rec and
 * returns > 0 to stop, < 0 for an error. */
int idx_export_each(idx *ix, const char *after, const char *case_id,
                    int (*fn)(const char *id, json_t *rec, void *ud), void *ud);
/* Each evidence id linked to a case, in id order; fn returns > 0 to stop. */
int idx_case_evidence_each(idx *ix, const char *case_id,
                           int (*fn)(const char *evidence_id, void *ud), void *ud);

#endif
