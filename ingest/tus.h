/* The tus 1.0.0 upload service (core, creation, creation-with-upload,
 * termination, checksum, expiration), independent of the HTTP library:
 * api/ turns requests into these calls and codes into statuses.
 *
 * An upload's state lives in the index; its bytes in spool/<id>.part. The
 * offset reported is always a durable offset: bytes fsynced and recorded.
 * On completion the spool file becomes a write-once object, and the
 * evidence record, its index entries, the upload's final state and the
 * probe and stamp jobs and the "ingested" ledger event are written in one
 * synced batch. */
#ifndef TUS_H
#define TUS_H

#include <stdbool.h>
#include <stdint.h>

#include "id.h"
#include "idx.h"
#include "job.h"
#include "ledger.h"
#include "store.h"

typedef struct tus tus;

/* Who is asking: resolved from the bearer token by api/. */
typedef struct {
  const char *token_id; /* the stable id of the token; owns its uploads */
  const char *role;     /* recorder | reviewer | legal | admin */
  const char *device;   /* recorder tokens: the one device it speaks for */
  const char *user;     /* a person's name, when the token has one */
} tus_principal;

typedef struct {
  const char *spool_dir, *quarantine_dir;
  int64_t max_upload;      /* Tus-Max-Size */
  int64_t ttl_us;          /* unfinished uploads expire this long after their last PATCH */
  int64_t reserve_bytes;   /* free space kept for the index */
  uint64_t checkpoint_every;
  /* The retention categories metadata "retention" may name (NULL-ended);
   * NULL = the key is refused. */
  const char *const *retention_categories;
} tus_config;

enum tus_state { TUS_ACTIVE, TUS_COMMITTING, TUS_COMPLETED, TUS_QUARANTINED, TUS_GONE };

typedef struct {
  char id[CU_ID_LEN + 1];
  int64_t offset, length, expires_us;
  char *metadata; /* the raw Upload-Metadata header, or NULL */
  enum tus_state state;
  char evidence_id[CU_ID_LEN + 1]; /* when completed */
  char sha256[65];                 /* when completed or quarantined */
} tus_info;
void tus_info_release(tus_info *info);

/* lg (may be NULL in tests) records each commit as an "ingested" event in
 * the same atomic write as the evidence record, and a "stamp" job joins the
 * probe job. */
int tus_open(tus **out, const tus_config *cfg, idx *ix, store *st, job_queue *jq, ledger *lg);
void tus_free(tus *t);
/* Start-up: finishes commits a crash interrupted and removes spool files
 * that belong to no open upload. */
int tus_recover(tus *t);
/* Expires unfinished uploads whose time has passed: spool file removed,
 * state kept as gone (later requests get 410). */
int tus_sweep(tus *t, int64_t now_us, int *expired);

/* Parses Upload-Metadata strictly (tus 1.0 §Upload-Metadata) into an
 * object of decoded values; values that are not UTF-8 are left out (the
 * raw header is kept verbatim). */
int tus_meta_parse(const char *hdr, json_t **out);

/* creation: validates the metadata (a recorder may only upload for its own
 * device) and the length; an Upload-Length of 0 completes at once. */
int tus_create(tus *t, const tus_principal *who, int64_t length, const char *metadata,
               tus_info *out);
int tus_head(tus *t, const tus_principal *who, const char *id, tus_info *out);
int tus_terminate(tus *t, const tus_principal *who, const char *id);
/* The upload as JSON (GET /v1/uploads/{id}): state, offset, and, once
 * completed, the evidence id and SHA-256. */
int tus_status_json(tus *t, const tus_principal *who, const char *id, json_t **out);

typedef struct tus_patch tus_patch;
/* Starts writing a request body at offset (which must be the current
 * offset). checksum is the Upload-Checksum header or NULL; content_length
 * is -1 for a chunked body; length is the request's Upload-Length, or -1
 * when it has none (it must equal the upload's). Takes the upload's lock
 * until tus_patch_end. */
int tus_patch_begin(tus *t, const tus_principal *who, const char *id, int64_t offset,
                    int64_t length, const char *checksum, int64_t content_length,
                    tus_patch **out);
int tus_patch_write(tus_patch *p, const void *data, size_t n);
/* Ends the request. body_complete is false when the connection broke: the
 * received prefix is kept (unless a checksum was sent, then it is dropped).
 * Fills out (also on error, with the durable offset) and frees p. */
int tus_patch_end(tus_patch *p, bool body_complete, tus_info *out);

typedef struct {
  uint64_t started, completed, failed, bytes_received;
} tus_counters;
void tus_get_counters(tus *t, tus_counters *out);
/* Bytes currently held in the spool directory. */
int64_t tus_spool_bytes(tus *t);

#endif
