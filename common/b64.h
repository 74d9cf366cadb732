/* Base64 (RFC 4648). The decoder is strict: padding required, no
 * whitespace, no stray characters, canonical trailing bits. tus metadata and
 * Upload-Checksum come from clients, and a lax decoder would accept two
 * spellings of the same value. */
#ifndef CU_B64_H
#define CU_B64_H

#include <stddef.h>

#include "buf.h"

/* Standard alphabet with padding; appends to out. */
int cu_b64_encode(const void *in, size_t n, cu_buf *out);
/* URL-safe alphabet without padding (cursors). */
int cu_b64url_encode(const void *in, size_t n, cu_buf *out);
/* Appends the decoded bytes to out; CU_EINVAL on any malformed input. */
int cu_b64_decode(const char *in, size_t n, cu_buf *out);
int cu_b64url_decode(const char *in, size_t n, cu_buf *out);

#endif
