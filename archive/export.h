/* Export bags: a case's evidence as a BagIt 1.0 bag (RFC 8493) with
 * everything needed to check it without trusting Custos, laid out exactly
 * as docs/EXPORT.md says (that page is the contract; this module is its
 * writer, custos verify its reader).
 *
 * A bag is built in HOME/exports/<export id>.part/ and renamed to
 * HOME/exports/<export id>/ only when complete and synced, so a bag that
 * exists is whole; a crash leaves a .part that export_sweep (at start) or
 * the job's re-run removes. Inside, the bag's own name is
 * custos-<case id>-<export id>: the name of its directory in the tar
 * (tar.h) that GET /v1/exports/{id} streams, and in what
 * `custos export --out DIR` unpacks.
 *
 * Building streams everything: each object is read once, hashed with
 * SHA-256 and SHA-512 as it is copied (the SHA-256 must be the record's:
 * the stored object is checked on the way), events are read one at a time
 * from the ledger, and the manifests and both reports are written as the
 * items go by (items in id order, their files in path order, so the
 * manifests come out sorted). Memory grows with the number of items (their
 * ids), never with bytes or events. */
#ifndef EXPORT_H
#define EXPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cu_limits.h"
#include "id.h"
#include "idx.h"
#include "json.h"
#include "ledger.h"
#include "store.h"
#include "tar.h"
#include "tsa.h"

/* Items in one export: the case's "exported" event lists them all, and a
 * ledger entry must stay well under CU_MAX_RECORD_BYTES (37 bytes an id). */
#define EXPORT_MAX_ITEMS 50000
/* A safe file name in a bag (docs/EXPORT.md). */
#define EXPORT_NAME_MAX 120
/* "custos-" case "-" export id */
#define EXPORT_BAG_NAME_MAX (7 + CU_MAX_ID_LEN + 1 + CU_ID_LEN + 1)

typedef struct {
  idx *ix;
  store *st;
  ledger *lg;
  tsa *ts;                  /* stamps the head when its stamp job has not yet (may be NULL) */
  const char *exports_dir;  /* HOME/exports */
  const char *organization; /* bag-info Source-Organization; NULL = "Custos" */
  const atomic_int *cancel; /* non-zero: give up (CU_EBUSY), the job runs again later */
  /* Bytes copied so far of the payload's total, now and then. */
  void (*progress)(void *ud, uint64_t done, uint64_t total);
  void *progress_ud;
  int64_t head_wait_us; /* how long to wait for a signed head covering every event (0 = 30 s) */
} export_env;

typedef struct {
  char bag[EXPORT_BAG_NAME_MAX];
  uint64_t payload_bytes, payload_files, tar_size, sth_size;
  char tagmanifest_sha256[65];
  int64_t finished_us;
  char (*items)[CU_ID_LEN + 1]; /* the evidence ids, sorted */
  size_t nitems;
} export_result;

void export_result_release(export_result *r);

/* custos-<case id>-<export id> */
void export_bag_name(const char *case_id, const char *export_id, char out[EXPORT_BAG_NAME_MAX]);

/* Builds the bag of export record rec ({id, case, selection: {evidence?,
 * renditions?, clips?}, requested_by, created_at}); clips is an array of
 * {evidence, kind} naming clip renditions made already (the job makes
 * them first), or NULL. On success the bag is in place and res filled.
 * Errors (nothing is left on disk):
 *   CU_EBUSY     not ready yet (a requested rendition or an original's
 *                time-stamp is still being made, no signed head yet), or
 *                cancelled: the message says which; try again later
 *   CU_ECORRUPT  a stored object does not hash as its record says (named)
 *   CU_ENOTFOUND the case or a selected item no longer exists
 *   CU_EINVAL    the selection cannot be exported (empty, too many items)
 *   CU_EIO, CU_ENOSPC */
int export_build(const export_env *env, const json_t *rec, const json_t *clips, export_result *res);

/* Marks rec done (bag, payload_oxum, tar_size, tagmanifest_sha256,
 * finished_at, ...) in the same ledger commit as the "exported" events:
 * one per item (in its chain of custody) and one for the case (no
 * evidence field; the items listed). *done (may be NULL) is the new record. */
int export_commit(const export_env *env, const json_t *rec, const export_result *res,
                  json_t **done);

/* Removes every <id>.part directory under exports_dir (at start-up). */
int export_sweep(const char *exports_dir);
/* Removes an export's bag and any partial one (a failed or re-run export). */
int export_remove_files(const char *exports_dir, const char *export_id);

/* The tar layout of a done export's bag (named by its record's "bag",
 * every entry dated its "finished_at"). CU_ECONFLICT if it is not done;
 * CU_ECORRUPT if the bag on disk no longer gives the record's tar_size. */
int export_tar(const char *exports_dir, const json_t *rec, tar_layout **out);

#endif
