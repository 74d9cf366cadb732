/* The spool file of one upload: bytes are hashed (SHA-256) as they arrive
 * and written behind the caller's back by a writer thread, so receiving and
 * hashing on the HTTP thread overlaps with disk I/O on another core.
 *
 * Durability is explicit. "durable" is the offset up to which bytes are
 * fsynced and the hash state that describes exactly those bytes; it moves
 * only in spool_sync() and at checkpoints, and the owner records it in the
 * index (the tus offset). Everything past it can vanish in a crash, and
 * spool_open() cuts it off on the way back in.
 *
 * One spool is used by one thread at a time (the upload lock guarantees
 * it); the writer thread is internal. */
#ifndef SPOOL_H
#define SPOOL_H

#include <stdint.h>

#include "buf.h"

typedef struct spool spool;

/* Called on the writer thread after bytes [0, offset) were fsynced in the
 * middle of a long request; hash_state is the saved state for them. A
 * non-zero return is reported by the next spool_write(). */
typedef int (*spool_checkpoint_fn)(void *ud, uint64_t offset, const char *hash_state);

typedef struct {
  uint64_t checkpoint_every;  /* bytes between checkpoints; 0 = none */
  spool_checkpoint_fn checkpoint;
  void *ud;
  int64_t reserve_bytes;      /* fail with CU_ENOSPC before free space drops below */
} spool_opts;

/* Opens the spool file at path, creating it if needed, positioned at the
 * durable offset. hash_state is the saved state for [0, offset) (NULL when
 * offset is 0); if it is missing or unusable the prefix is re-hashed from
 * the file, which is logged because it costs a read. */
int spool_open(spool **out, const char *path, uint64_t offset, const char *hash_state,
               const spool_opts *opts);
/* Stops the writer and closes the file; nothing is synced. NULL is a no-op. */
void spool_close(spool *sp);

/* Hashes and queues n bytes. May block while the disk catches up. */
int spool_write(spool *sp, const void *data, size_t n);
/* Bytes accepted so far (durable or not). */
uint64_t spool_offset(const spool *sp);
/* Writes everything out and fsyncs; the new durable offset and its saved
 * hash state are returned. */
int spool_sync(spool *sp, uint64_t *offset, cu_buf *hash_state);
/* Forgets everything after the durable offset: the file is truncated and
 * the hash rewound. Used for a chunk whose checksum failed, or after a
 * write error. */
int spool_rollback(spool *sp);
/* The SHA-256 of all durable bytes, as hex (call after spool_sync). */
void spool_digest(spool *sp, char hex[65]);

#endif
