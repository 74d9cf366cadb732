/* The write-once object store. An object is named by the SHA-256 of its
 * bytes and never changes: objects/sha256/ab/cd/<64 hex>, mode 0444.
 *
 * Today the store is a local directory; the handle is opaque so that an
 * S3-compatible backend (DESIGN.md, "Growing past one machine") can sit
 * behind the same calls. */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct store store;

/* root is the objects/ directory; it is created if missing. */
int store_open(store **out, const char *root);
void store_free(store *st);

/* Commits a finished file (spool_path, sha256 and size already known from
 * hashing it as it arrived) as an object. The safe-save sequence: fchmod
 * 0444, fsync, link into place, fsync the directory; the spool name is then
 * removed. If the object already exists it is compared (re-hashed), not
 * replaced: identical -> *deduped = true; damaged -> the fresh copy replaces
 * it and an alarm is logged. The object is never visible half-written. */
int store_commit(store *st, const char *spool_path, const char *sha256, uint64_t size,
                 bool *deduped);
/* True if the object exists (it may still be damaged; see verify). */
bool store_has(store *st, const char *sha256);
/* Opens an object for reading; the caller closes *fd. CU_ENOTFOUND. */
int store_open_object(store *st, const char *sha256, int *fd, uint64_t *size);
/* Removes an object for good (an approved deletion: the only way bytes
 * leave the store); the directory is fsynced. A missing object is not an
 * error: the removal is idempotent, so a purge that crashed can run again. */
int store_remove(store *st, const char *sha256);
/* The object's path (caller frees); sha256 must be validated hex. */
char *store_path(store *st, const char *sha256);

#endif
