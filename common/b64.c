#include "b64.h"

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "banned.h"

static const char std_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int encode(const void *in, size_t n, cu_buf *out, const char *alpha, bool pad) {
  const unsigned char *p = in;
  char q[4];
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    size_t left = n - i;
    if (left > 1) v |= (uint32_t)p[i + 1] << 8;
    if (left > 2) v |= p[i + 2];
    q[0] = alpha[v >> 18 & 63];
    q[1] = alpha[v >> 12 & 63];
    q[2] = left > 1 ? alpha[v >> 6 & 63] : '=';
    q[3] = left > 2 ? alpha[v & 63] : '=';
    size_t emit = 4;
    if (!pad) emit = left > 2 ? 4 : left + 1;
    int rc = cu_buf_add(out, q, emit);
    if (rc) return rc;
  }
  if (!out->data) return cu_buf_add(out, "", 0);
  return 0;
}

int cu_b64_encode(const void *in, size_t n, cu_buf *out) {
  return encode(in, n, out, std_alpha, true);
}

int cu_b64url_encode(const void *in, size_t n, cu_buf *out) {
  return encode(in, n, out, url_alpha, false);
}

static int value(char c, bool url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

static int decode(const char *in, size_t n, cu_buf *out, bool url) {
  size_t padn = 0;
  if (!url) {
    if (n % 4) return cu_error(CU_EINVAL, "base64 length is not a multiple of 4");
    while (padn < 2 && padn < n && in[n - 1 - padn] == '=') padn++;
  } else if (n % 4 == 1) {
    return cu_error(CU_EINVAL, "bad base64url length");
  }
  size_t datan = n - padn;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < datan; i++) {
    int v = value(in[i], url);
    if (v < 0) return cu_error(CU_EINVAL, "invalid base64 character");
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      unsigned char c = (unsigned char)(acc >> bits);
      int rc = cu_buf_add(out, &c, 1);
      if (rc) return rc;
    }
  }
  /* The bits left over must be zero, or two encodings decode alike. */
  if (bits && (acc & ((1u << bits) - 1)))
    return cu_error(CU_EINVAL, "non-canonical base64 padding bits");
  if (!out->data) return cu_buf_add(out, "", 0);
  return 0;
}

int cu_b64_decode(const char *in, size_t n, cu_buf *out) { return decode(in, n, out, false); }
int cu_b64url_decode(const char *in, size_t n, cu_buf *out) { return decode(in, n, out, true); }
