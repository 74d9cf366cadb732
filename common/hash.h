/* Streaming SHA-256 whose state can be saved and restored.
 *
 * An upload is hashed as its bytes arrive, and a resumed upload (after a
 * restart or a kill -9) must continue the same hash without reading the
 * spooled prefix again. OpenSSL's EVP interface cannot export a digest's
 * state, so this wraps the SHA256_CTX structure, which runs the same
 * SHA-NI/AVX2 block function as EVP. A saved state carries a version tag and
 * its size; a state that does not fit is refused and the caller re-hashes. */
#ifndef CU_HASH_H
#define CU_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct cu_sha256 cu_sha256;

cu_sha256 *cu_sha256_new(void);
void cu_sha256_free(cu_sha256 *h);
void cu_sha256_update(cu_sha256 *h, const void *data, size_t n);
/* Finishes into 32 bytes; the object must be reset or freed afterwards. */
void cu_sha256_final(cu_sha256 *h, unsigned char out[32]);
void cu_sha256_copy(cu_sha256 *dst, const cu_sha256 *src);
/* Bytes hashed so far. */
uint64_t cu_sha256_count(const cu_sha256 *h);
/* Saved state as base64 text, and back. CU_ECORRUPT if it does not fit. */
int cu_sha256_save(const cu_sha256 *h, cu_buf *out);
int cu_sha256_load(cu_sha256 *h, const char *saved);

/* One-shot digests: hex into out[65]; raw into out[32] / out[20]. */
void cu_sha256_hex(const void *data, size_t n, char out[65]);
void cu_sha256_raw(const void *data, size_t n, unsigned char out[32]);
/* SHA-256 of a whole file, streaming; hex into out[65]. */
int cu_sha256_file(const char *path, char out[65], uint64_t *size);

/* Per-request checksum (tus Upload-Checksum), sha1 or sha256, via EVP. */
typedef struct cu_digest cu_digest;
/* name is the tus algorithm name; CU_EUNSUPPORTED for anything else. */
int cu_digest_new(cu_digest **out, const char *name);
void cu_digest_update(cu_digest *d, const void *data, size_t n);
/* Raw digest into out (up to 64 bytes); returns its length. */
size_t cu_digest_final(cu_digest *d, unsigned char out[64]);
void cu_digest_free(cu_digest *d);

#endif
