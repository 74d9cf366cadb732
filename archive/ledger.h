/* The ledger: every event (ingested, timestamped, token_issued, ...) is a
 * leaf of an append-only Merkle tree (RFC 9162 §2.1), stored in the index
 * and proved with signed tree heads in the C2SP checkpoint format
 * (docs/LEDGER.md). Thread-safe.
 *
 * Appends are group-committed: ledger_commit() hands a caller's index batch
 * and its events to whichever caller is writing at the moment; that one
 * numbers the events, adds the new tree nodes and writes everything queued
 * as one synced RocksDB batch. An event is therefore durable, and part of
 * the same atomic write as the records it describes, before the call
 * returns; leaves are numbered in commit order, with no gaps. */
#ifndef LEDGER_H
#define LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "idx.h"
#include "json.h"
#include "merkle.h"

typedef struct ledger ledger;

typedef struct {
  const char *keys_dir;    /* holds ledger.key (Ed25519, 0600), made on first open */
  const char *origin;      /* log origin for a new ledger; NULL = "custos/<key hash>" */
  int64_t sth_interval_us; /* at most one signed head this often (default 1 s) */
} ledger_opts;

/* Called by the signer with each new head, before it is committed: the
 * caller may add to b (the job that time-stamps the head). */
typedef void (*ledger_sth_hook)(void *ud, idx_batch *b, const json_t *sth);

/* Loads the tree's right edge and the last signed head, and checks that
 * they agree (CU_ECORRUPT if the stored tree no longer yields that head). */
int ledger_open(ledger **out, idx *ix, const ledger_opts *opts);
/* Starts the thread that signs new heads. */
int ledger_start_signer(ledger *lg, ledger_sth_hook hook, void *ud);
/* Stops the signer (signing a last head for any unsigned events). */
void ledger_free(ledger *lg);

/* Commits b (may be NULL) together with n events, atomically and durably.
 * Each event is a JSON object; "at" is set to now if absent, and an
 * "evidence" id links the event to that item's chain of custody. The
 * event's bytes in the log are its canonical JSON. *first (may be NULL)
 * is the index of the first event. */
int ledger_commit(ledger *lg, idx_batch *b, json_t *const *events, int n, uint64_t *first);

/* fn for each event in an item's chain of custody, in ledger order (an
 * entry that is not JSON is skipped); fn returns > 0 to stop. Reads the
 * index only, so custos verify uses it on a stopped server's data. */
int ledger_each_event(idx *ix, const char *evidence_id,
                      int (*fn)(uint64_t index, const json_t *event, void *ud), void *ud);
/* Whether the item's chain of custody holds an event of this type (a job
 * re-run after a crash uses it not to record its outcome twice). */
int ledger_evidence_has(ledger *lg, const char *evidence_id, const char *type, bool *found);

/* The number of committed events. */
uint64_t ledger_size(ledger *lg);
int ledger_entry(ledger *lg, uint64_t index, cu_buf *out);
int ledger_leaf_hash(ledger *lg, uint64_t index, merkle_hash out);
/* Root of the first size events (size <= ledger_size). */
int ledger_root(ledger *lg, uint64_t size, merkle_hash out);
int ledger_inclusion(ledger *lg, uint64_t index, uint64_t size, merkle_hash path[MERKLE_MAX_PATH],
                     int *n);
int ledger_consistency(ledger *lg, uint64_t first, uint64_t second,
                       merkle_hash path[MERKLE_MAX_PATH], int *n);

/* The latest signed head: {origin, size, root (hex), timestamp, checkpoint
 * (the signed note text), checkpoint_sha256}. CU_ENOTFOUND before the first. */
int ledger_sth_latest(ledger *lg, json_t **out);
/* Signs a head for the current size now, if it has none yet (shutdown, tests). */
int ledger_sign_now(ledger *lg);

const char *ledger_origin(ledger *lg);
void ledger_public_key(ledger *lg, unsigned char pub[32]);
/* The C2SP verifier key: origin+keyid+base64(0x01 || key). */
int ledger_vkey(ledger *lg, cu_buf *out);

/* Reads the key pair made by ledger_open from keys_dir (custos verify). */
int ledger_load_public_key(const char *keys_dir, unsigned char pub[32]);

#endif
