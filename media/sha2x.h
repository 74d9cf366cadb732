/* Two SHA-256 digests at once, with the CPU's SHA instructions (internal to
 * media/).
 *
 * WHY
 * One SHA-256 is a chain: each block waits for the one before, and the SHA
 * instructions' latency, not their throughput, sets its speed (OpenSSL's
 * 1.7 GB/s a core here). Two independent chains interleaved run at nearly
 * twice that on the same core. The frame hashes hash two frames of the
 * same size at a time this way; the bytes and the digests are exactly
 * SHA-256's (FIPS 180-4), which tests/unit/test_sha2x.c checks against
 * OpenSSL. Where the CPU has no SHA instructions, sha2x_available() is
 * false and callers use OpenSSL. */
#ifndef MEDIA_SHA2X_H
#define MEDIA_SHA2X_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t s[2][8];
  uint8_t buf[2][64];
  size_t fill;  /* bytes in buf, the same in both */
  uint64_t len; /* bytes so far, the same in both */
} sha2x;

/* Whether this CPU can (SHA, SSSE3 and SSE4.1 instructions). */
bool sha2x_available(void);
void sha2x_init(sha2x *c);
/* Adds n bytes to each chain: a to the first, b to the second. */
void sha2x_update(sha2x *c, const uint8_t *a, const uint8_t *b, size_t n);
void sha2x_final(sha2x *c, uint8_t out_a[32], uint8_t out_b[32]);

#endif
