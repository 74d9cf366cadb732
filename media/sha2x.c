/* Two SHA-256 chains interleaved on the SHA instructions (see sha2x.h).
 *
 * The block function is the usual one for these instructions: the state
 * kept as ABEF/CDGH, sha256rnds2 for two rounds at a time, sha256msg1 and
 * sha256msg2 for the message schedule; it runs each step for both chains
 * side by side so one chain's latency hides behind the other's. */
#include "sha2x.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define SHA2X_TARGET __attribute__((target("sha,sse4.1,ssse3")))
#endif

#include "banned.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#if defined(__x86_64__)
/* Asked once: CPUID traps to the hypervisor in a virtual machine. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool has_sha;

static void probe(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1)) return;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
  has_sha = (b & bit_SHA) != 0;
}

bool sha2x_available(void) {
  pthread_once(&once, probe);
  return has_sha;
}

/* ABCD EFGH -> ABEF CDGH, and back. */
SHA2X_TARGET static inline void pack(const uint32_t s[8], __m128i *abef, __m128i *cdgh) {
  __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&s[0]), 0xB1);
  __m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&s[4]), 0x1B);
  *abef = _mm_alignr_epi8(t, u, 8);
  *cdgh = _mm_blend_epi16(u, t, 0xF0);
}

SHA2X_TARGET static inline void unpack(uint32_t s[8], __m128i abef, __m128i cdgh) {
  __m128i t = _mm_shuffle_epi32(abef, 0x1B), u = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128((__m128i *)&s[0], _mm_blend_epi16(t, u, 0xF0));
  _mm_storeu_si128((__m128i *)&s[4], _mm_alignr_epi8(u, t, 8));
}

/* nb blocks of 64 bytes from each of a and b. */
SHA2X_TARGET static void blocks(uint32_t sa[8], uint32_t sb[8], const uint8_t *a, const uint8_t *b, size_t nb) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i A0, C0, A1, C1;
  pack(sa, &A0, &C0);
  pack(sb, &A1, &C1);
  for (; nb; nb--, a += 64, b += 64) {
    __m128i W0[4], W1[4], a0 = A0, c0 = C0, a1 = A1, c1 = C1;
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
      if (g < 4) {
        W0[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(a + 16 * g)), bswap);
        W1[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b + 16 * g)), bswap);
      } else { /* W[g] from W[g-4..g-1], kept in a ring of four */
        __m128i t = _mm_sha256msg1_epu32(W0[g & 3], W0[(g + 1) & 3]);
        __m128i v = _mm_sha256msg1_epu32(W1[g & 3], W1[(g + 1) & 3]);
        t = _mm_add_epi32(t, _mm_alignr_epi8(W0[(g + 3) & 3], W0[(g + 2) & 3], 4));
        v = _mm_add_epi32(v, _mm_alignr_epi8(W1[(g + 3) & 3], W1[(g + 2) & 3], 4));
        W0[g & 3] = _mm_sha256msg2_epu32(t, W0[(g + 3) & 3]);
        W1[g & 3] = _mm_sha256msg2_epu32(v, W1[(g + 3) & 3]);
      }
      __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * g]);
      __m128i x0 = _mm_add_epi32(W0[g & 3], k), x1 = _mm_add_epi32(W1[g & 3], k);
      c0 = _mm_sha256rnds2_epu32(c0, a0, x0);
      c1 = _mm_sha256rnds2_epu32(c1, a1, x1);
      a0 = _mm_sha256rnds2_epu32(a0, c0, _mm_shuffle_epi32(x0, 0x0E));
      a1 = _mm_sha256rnds2_epu32(a1, c1, _mm_shuffle_epi32(x1, 0x0E));
    }
    A0 = _mm_add_epi32(A0, a0), C0 = _mm_add_epi32(C0, c0);
    A1 = _mm_add_epi32(A1, a1), C1 = _mm_add_epi32(C1, c1);
  }
  unpack(sa, A0, C0);
  unpack(sb, A1, C1);
}
#else
bool sha2x_available(void) { return false; }
static void blocks(uint32_t sa[8], uint32_t sb[8], const uint8_t *a, const uint8_t *b, size_t nb) {
  (void)sa, (void)sb, (void)a, (void)b, (void)nb;
}
#endif

void sha2x_init(sha2x *c) {
  memcpy(c->s[0], H0, sizeof H0);
  memcpy(c->s[1], H0, sizeof H0);
  c->fill = 0;
  c->len = 0;
}

void sha2x_update(sha2x *c, const uint8_t *a, const uint8_t *b, size_t n) {
  c->len += n;
  if (c->fill) {
    size_t k = 64 - c->fill < n ? 64 - c->fill : n;
    memcpy(c->buf[0] + c->fill, a, k);
    memcpy(c->buf[1] + c->fill, b, k);
    c->fill += k, a += k, b += k, n -= k;
    if (c->fill < 64) return;
    blocks(c->s[0], c->s[1], c->buf[0], c->buf[1], 1);
    c->fill = 0;
  }
  if (n >= 64) {
    blocks(c->s[0], c->s[1], a, b, n / 64);
    a += n & ~(size_t)63, b += n & ~(size_t)63, n &= 63;
  }
  if (n) {
    memcpy(c->buf[0], a, n);
    memcpy(c->buf[1], b, n);
    c->fill = n;
  }
}

void sha2x_final(sha2x *c, uint8_t out_a[32], uint8_t out_b[32]) {
  /* 0x80, zeros to 56 mod 64, the length in bits big-endian. */
  uint8_t pad[72] = {0x80};
  uint64_t bits = c->len * 8;
  size_t n = (c->fill < 56 ? 56 : 120) - c->fill;
  for (int i = 0; i < 8; i++) pad[n + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
  sha2x_update(c, pad, pad, n + 8);
  uint8_t *out[2] = {out_a, out_b};
  for (int l = 0; l < 2; l++)
    for (int i = 0; i < 8; i++) {
      uint32_t v = c->s[l][i];
      out[l][4 * i] = (uint8_t)(v >> 24), out[l][4 * i + 1] = (uint8_t)(v >> 16);
      out[l][4 * i + 2] = (uint8_t)(v >> 8), out[l][4 * i + 3] = (uint8_t)v;
    }
}
