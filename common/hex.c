#include "hex.h"

#include <string.h>

#include "err.h"
#include "banned.h"

void cu_hex_encode(const void *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = in;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int cu_hex_decode(const char *in, size_t inlen, void *out, size_t n) {
  if (inlen != 2 * n) return cu_error(CU_EINVAL, "expected %zu hex digits", 2 * n);
  unsigned char *o = out;
  for (size_t i = 0; i < n; i++) {
    int hi = nibble(in[2 * i]), lo = nibble(in[2 * i + 1]);
    if (hi < 0 || lo < 0) return cu_error(CU_EINVAL, "not a hex digit");
    o[i] = (unsigned char)(hi << 4 | lo);
  }
  return 0;
}

bool cu_is_sha256_hex(const char *s) {
  if (!s || strlen(s) != 64) return false;
  for (int i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  return true;
}
