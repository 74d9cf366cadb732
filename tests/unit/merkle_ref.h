/* The reference Merkle tree hash for the unit tests: RFC 9162 §2.1
 * written out recursively, with its own hashing, sharing no code with
 * archive/merkle.c. Include after cmocka.h. */
#ifndef MERKLE_REF_H
#define MERKLE_REF_H

#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#include "merkle.h"

static void ref_sha256(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn,
                       merkle_hash out) {
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  assert_non_null(m);
  assert_int_equal(EVP_DigestInit_ex(m, EVP_sha256(), NULL), 1);
  if (an) EVP_DigestUpdate(m, a, an);
  if (bn) EVP_DigestUpdate(m, b, bn);
  if (cn) EVP_DigestUpdate(m, c, cn);
  unsigned len = 0;
  assert_int_equal(EVP_DigestFinal_ex(m, out, &len), 1);
  assert_int_equal(len, 32);
  EVP_MD_CTX_free(m);
}

/* MTH({d}) = SHA-256(0x00 || d) */
static void ref_leaf(const void *d, size_t n, merkle_hash out) {
  static const unsigned char zero = 0x00;
  ref_sha256(&zero, 1, d, n, NULL, 0, out);
}

/* SHA-256(0x01 || l || r) */
static void ref_node(const merkle_hash l, const merkle_hash r, merkle_hash out) {
  static const unsigned char one = 0x01;
  merkle_hash t;
  ref_sha256(&one, 1, l, 32, r, 32, t);
  memcpy(out, t, 32);
}

/* The largest power of two strictly smaller than n (n >= 2). */
static uint64_t ref_k(uint64_t n) {
  return 1ull << (63 - __builtin_clzll(n - 1));
}

/* MTH(D[n]) over leaf hashes D. */
static void ref_mth(const merkle_hash *D, uint64_t n, merkle_hash out) {
  if (n == 0) {
    ref_sha256(NULL, 0, NULL, 0, NULL, 0, out);
    return;
  }
  if (n == 1) {
    memcpy(out, D[0], 32);
    return;
  }
  uint64_t k = ref_k(n);
  merkle_hash l, r;
  ref_mth(D, k, l);
  ref_mth(D + k, n - k, r);
  ref_node(l, r, out);
}

#endif
