/* Unit tests for media/sha2x: two SHA-256 chains at once on the SHA
 * instructions. The truth is OpenSSL's SHA-256 and the FIPS 180-4 test
 * vectors; sha2x must give the same digests whatever the lengths, however
 * the input is cut into updates, and with different data in each chain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "sha2x.h"

static void reference(const uint8_t *m, size_t n, uint8_t out[32]) {
  unsigned len = 0;
  assert_int_equal(EVP_Digest(m, n, out, &len, EVP_sha256(), NULL), 1);
  assert_int_equal(len, 32);
}

static uint32_t rng = 12345;
static uint32_t next(void) { return rng = rng * 1664525u + 1013904223u; }

static void fill(uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(next() >> 24);
}

static void test_sha2x__fips_vectors(void **state) {
  (void)state;
  if (!sha2x_available()) skip();
  const char *abc = "abc", *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  uint8_t a[32], b[32];
  char hex[65];
  sha2x c;
  sha2x_init(&c);
  /* Different lengths in the two chains are not allowed; "abc" and its
   * first 3 bytes of the other vector make a fair pair. */
  sha2x_update(&c, (const uint8_t *)abc, (const uint8_t *)two, 3);
  sha2x_final(&c, a, b);
  cu_hex_encode(a, 32, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  sha2x_init(&c);
  sha2x_update(&c, (const uint8_t *)two, (const uint8_t *)two, strlen(two));
  sha2x_final(&c, a, b);
  cu_hex_encode(a, 32, hex);
  assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  assert_memory_equal(a, b, 32);
  sha2x_init(&c);
  sha2x_final(&c, a, b);
  cu_hex_encode(b, 32, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sha2x__every_length_and_cut(void **state) {
  (void)state;
  if (!sha2x_available()) skip();
  enum { MAX = 1100 };
  static uint8_t x[MAX], y[MAX];
  for (size_t n = 0; n < MAX; n++) {
    fill(x, n);
    fill(y, n);
    sha2x c;
    sha2x_init(&c);
    /* Cut into updates of random sizes, some empty, some across blocks. */
    for (size_t at = 0; at < n;) {
      size_t k = next() % 150;
      if (k > n - at) k = n - at;
      sha2x_update(&c, x + at, y + at, k);
      at += k;
    }
    uint8_t a[32], b[32], ra[32], rb[32];
    sha2x_final(&c, a, b);
    reference(x, n, ra);
    reference(y, n, rb);
    if (memcmp(a, ra, 32) || memcmp(b, rb, 32)) fail_msg("length %zu: sha2x differs from OpenSSL", n);
  }
}

static void test_sha2x__frames_of_a_few_megabytes(void **state) {
  (void)state;
  if (!sha2x_available()) skip();
  /* A 1080p 4:2:0 picture's size, fed as rows (the frame hashes' way). */
  size_t n = 1920 * 1080 * 3 / 2;
  uint8_t *x = malloc(n), *y = malloc(n);
  assert_non_null(x);
  assert_non_null(y);
  fill(x, n);
  memcpy(y, x, n);
  y[n / 2] ^= 1; /* one bit apart */
  sha2x c;
  sha2x_init(&c);
  for (size_t at = 0; at < n; at += 1920) sha2x_update(&c, x + at, y + at, 1920);
  uint8_t a[32], b[32], ra[32], rb[32];
  sha2x_final(&c, a, b);
  reference(x, n, ra);
  reference(y, n, rb);
  assert_memory_equal(a, ra, 32);
  assert_memory_equal(b, rb, 32);
  assert_memory_not_equal(a, b, 32);
  free(x);
  free(y);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha2x__fips_vectors),
      cmocka_unit_test(test_sha2x__every_length_and_cut),
      cmocka_unit_test(test_sha2x__frames_of_a_few_megabytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
