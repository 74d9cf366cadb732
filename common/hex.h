#ifndef CU_HEX_H
#define CU_HEX_H

#include <stdbool.h>
#include <stddef.h>

/* Writes 2*n lowercase hex digits and a NUL to out (size >= 2*n+1). */
void cu_hex_encode(const void *in, size_t n, char *out);
/* Decodes exactly 2*n hex digits (either case); CU_EINVAL otherwise. */
int cu_hex_decode(const char *in, size_t inlen, void *out, size_t n);
/* True if s is exactly 64 lowercase hex digits (a SHA-256 as we store it). */
bool cu_is_sha256_hex(const char *s);

#endif
