/* Unit tests for archive/merkle: RFC 9162 §2.1 hashing, proofs and their
 * verification (docs: /work/shared/STANDARDS.md §3).
 *
 * Three sources of truth, none of them merkle.c:
 *   - the RFC 6962 reference vectors (STANDARDS.md §3.5);
 *   - a reference written here straight from the RFC's recursive
 *     definitions (MTH, PATH, SUBPROOF) over an array of leaf hashes,
 *     hashing with EVP directly;
 *   - reference verifiers that rebuild the roots by walking that same
 *     recursion (not the RFC's bit-shifting loop that merkle.c transcribes),
 *     used to decide what a mutated proof should do.
 * merkle.c's proofs are read from an in-memory node store filled by
 * merkle_frontier_append's emit callback, as the ledger fills its index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "hex.h"
#include "merkle.h"
#include "merkle_ref.h"

/* ---- helpers ----------------------------------------------------------- */

static void unhex(const char *hex, unsigned char *out, size_t n) {
  assert_int_equal(cu_hex_decode(hex, strlen(hex), out, n), 0);
}

static void assert_hash_equal(const unsigned char *a, const unsigned char *b) {
  if (memcmp(a, b, 32)) {
    char ha[65], hb[65];
    for (int i = 0; i < 32; i++) {
      snprintf(ha + 2 * i, 3, "%02x", a[i]);
      snprintf(hb + 2 * i, 3, "%02x", b[i]);
    }
    fail_msg("hash %s != %s", ha, hb);
  }
}

/* ---- the reference: RFC 9162 §2.1, recursively ------------------------ */


/* PATH(m, D[n]): the recursion's own path, then the sibling subtree. */
static void ref_path(uint64_t m, const merkle_hash *D, uint64_t n, merkle_hash *out, int *cnt) {
  if (n == 1) return;
  uint64_t k = ref_k(n);
  if (m < k) {
    ref_path(m, D, k, out, cnt);
    ref_mth(D + k, n - k, out[(*cnt)++]);
  } else {
    ref_path(m - k, D + k, n - k, out, cnt);
    ref_mth(D, k, out[(*cnt)++]);
  }
}

/* SUBPROOF(m, D[n], b). */
static void ref_subproof(uint64_t m, const merkle_hash *D, uint64_t n, bool b, merkle_hash *out,
                         int *cnt) {
  if (m == n) {
    if (!b) ref_mth(D, n, out[(*cnt)++]);
    return;
  }
  uint64_t k = ref_k(n);
  if (m <= k) {
    ref_subproof(m, D, k, b, out, cnt);
    ref_mth(D + k, n - k, out[(*cnt)++]);
  } else {
    ref_subproof(m - k, D + k, n - k, false, out, cnt);
    ref_mth(D, k, out[(*cnt)++]);
  }
}

/* PROOF(m, D[n]) = SUBPROOF(m, D[n], true); empty for m == n. */
static void ref_proof(uint64_t m, const merkle_hash *D, uint64_t n, merkle_hash *out, int *cnt) {
  *cnt = 0;
  ref_subproof(m, D, n, true, out, cnt);
}

/* Verifies PATH(m, D[n]) by walking PATH's recursion: the root is rebuilt
 * from the leaf, consuming the path leaf-side first; the path must be
 * exactly as long as the recursion for this (m, n). */
static bool ref_root_from_path(uint64_t m, uint64_t n, const merkle_hash leaf, const merkle_hash *p,
                               int np, int *i, merkle_hash out) {
  if (n == 1) {
    memcpy(out, leaf, 32);
    return true;
  }
  uint64_t k = ref_k(n);
  merkle_hash sub;
  if (m < k) {
    if (!ref_root_from_path(m, k, leaf, p, np, i, sub) || *i >= np) return false;
    ref_node(sub, p[(*i)++], out);
  } else {
    if (!ref_root_from_path(m - k, n - k, leaf, p, np, i, sub) || *i >= np) return false;
    ref_node(p[(*i)++], sub, out);
  }
  return true;
}

static bool ref_verify_inclusion(uint64_t m, uint64_t n, const merkle_hash leaf,
                                 const merkle_hash *p, int np, const merkle_hash root) {
  if (m >= n) return false;
  int i = 0;
  merkle_hash r;
  return ref_root_from_path(m, n, leaf, p, np, &i, r) && i == np && !memcmp(r, root, 32);
}

/* Rebuilds (old root, new root) from PROOF(m, D[n]) along SUBPROOF's
 * recursion; at SUBPROOF(m, D[m], true) the old root is the verifier's own. */
static bool ref_roots_from_proof(uint64_t m, uint64_t n, bool b, const merkle_hash first_root,
                                 const merkle_hash *p, int np, int *i, merkle_hash o,
                                 merkle_hash nw) {
  if (m == n) {
    if (b) {
      memcpy(o, first_root, 32);
    } else {
      if (*i >= np) return false;
      memcpy(o, p[(*i)++], 32);
    }
    memcpy(nw, o, 32);
    return true;
  }
  uint64_t k = ref_k(n);
  merkle_hash so, sn;
  if (m <= k) {
    if (!ref_roots_from_proof(m, k, b, first_root, p, np, i, so, sn) || *i >= np) return false;
    memcpy(o, so, 32);
    ref_node(sn, p[(*i)++], nw);
  } else {
    if (!ref_roots_from_proof(m - k, n - k, false, first_root, p, np, i, so, sn) || *i >= np)
      return false;
    ref_node(p[*i], so, o);
    ref_node(p[(*i)++], sn, nw);
  }
  return true;
}

/* STANDARDS §3.4 step 0 for the cases outside the RFC algorithm. */
static bool ref_verify_consistency(uint64_t m, uint64_t n, const merkle_hash *p, int np,
                                   const merkle_hash first_root, const merkle_hash second_root) {
  if (m > n) return false;
  if (m == n) return np == 0 && !memcmp(first_root, second_root, 32);
  if (m == 0) {
    merkle_hash e;
    ref_mth(NULL, 0, e);
    return np == 0 && !memcmp(first_root, e, 32);
  }
  int i = 0;
  merkle_hash o, nw;
  return ref_roots_from_proof(m, n, true, first_root, p, np, &i, o, nw) && i == np &&
         !memcmp(o, first_root, 32) && !memcmp(nw, second_root, 32);
}

/* ---- an in-memory node store, filled through emit ---------------------- */

typedef struct {
  merkle_hash *lv[64];
  uint64_t n[64], cap[64];
  uint64_t limit; /* get refuses subtrees reaching past this many leaves (0 = none) */
} mstore;

static void ms_emit(void *ud, unsigned level, uint64_t index, const merkle_hash h) {
  mstore *s = ud;
  assert_true(level < 64);
  /* every perfect subtree is emitted exactly once, left to right */
  assert_int_equal(index, s->n[level]);
  if (s->n[level] == s->cap[level]) {
    s->cap[level] = s->cap[level] ? 2 * s->cap[level] : 16;
    s->lv[level] = cu_xrealloc(s->lv[level], s->cap[level] * sizeof(merkle_hash));
  }
  memcpy(s->lv[level][s->n[level]++], h, 32);
}

static int ms_get(void *ud, unsigned level, uint64_t index, merkle_hash out) {
  mstore *s = ud;
  if (level >= 64 || index >= s->n[level] || (s->limit && ((index + 1) << level) > s->limit))
    return cu_error(CU_ENOTFOUND, "no node (%u, %llu)", level, (unsigned long long)index);
  memcpy(out, s->lv[level][index], 32);
  return 0;
}

static void ms_free(mstore *s) {
  for (int l = 0; l < 64; l++)
    free(s->lv[l]);
  memset(s, 0, sizeof *s);
}

/* n distinct leaves: leaf i = MTH({"leaf <i>"}); the store and frontier
 * get them through merkle_leaf/merkle_frontier_append. */
static merkle_hash *make_leaves(uint64_t n) {
  merkle_hash *D = cu_xcalloc(n ? n : 1, sizeof *D);
  for (uint64_t i = 0; i < n; i++) {
    char d[32];
    int len = snprintf(d, sizeof d, "leaf %llu", (unsigned long long)i);
    ref_leaf(d, (size_t)len, D[i]);
    merkle_hash mine;
    merkle_leaf(d, (size_t)len, mine);
    assert_hash_equal(mine, D[i]);
  }
  return D;
}

static void build(mstore *s, merkle_frontier *f, const merkle_hash *D, uint64_t n) {
  memset(s, 0, sizeof *s);
  memset(f, 0, sizeof *f);
  for (uint64_t i = 0; i < n; i++)
    merkle_frontier_append(f, D[i], ms_emit, s);
}

/* ---- RFC 6962 vectors (STANDARDS §3.5) ---------------------------------- */

static const char *const vec_leaves[8] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};
static const char *const vec_roots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};
#define H_96A2 "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
#define H_5F08 "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
#define H_6B47 "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
#define H_BC1A "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
#define H_CA85 "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
#define H_D37E "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
#define H_0EBC "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"

typedef struct {
  mstore s;
  merkle_frontier f;
  merkle_hash leaf[8];
  merkle_hash root[9]; /* published roots, root[n] for n = 1..8 */
} vec_tree;

static void vec_build(vec_tree *t) {
  memset(t, 0, sizeof *t);
  for (int i = 0; i < 8; i++) {
    unsigned char d[16];
    size_t n = strlen(vec_leaves[i]) / 2;
    unhex(vec_leaves[i], d, n);
    merkle_leaf(d, n, t->leaf[i]);
    merkle_frontier_append(&t->f, t->leaf[i], ms_emit, &t->s);
    unhex(vec_roots[i], t->root[i + 1], 32);
  }
}

static void check_vec_proof(const merkle_hash *got, int n, const char *const *want, int wn) {
  assert_int_equal(n, wn);
  for (int i = 0; i < wn; i++) {
    merkle_hash w;
    unhex(want[i], w, 32);
    assert_hash_equal(got[i], w);
  }
}

static void test_merkle_vectors__roots(void **state) {
  vec_tree t;
  vec_build(&t);
  for (uint64_t n = 1; n <= 8; n++) {
    merkle_hash r;
    assert_int_equal(merkle_root(ms_get, &t.s, n, r), 0);
    assert_hash_equal(r, t.root[n]);
    /* the frontier of a tree grown to n leaves gives the same root */
    merkle_frontier f = {0};
    for (uint64_t i = 0; i < n; i++)
      merkle_frontier_append(&f, t.leaf[i], NULL, NULL);
    merkle_frontier_root(&f, r);
    assert_hash_equal(r, t.root[n]);
  }
  ms_free(&t.s);
}

static void test_merkle_vectors__inclusion(void **state) {
  vec_tree t;
  vec_build(&t);
  merkle_hash p[MERKLE_MAX_PATH];
  int n = -1;

  assert_int_equal(merkle_inclusion_proof(ms_get, &t.s, 0, 8, p, &n), 0);
  static const char *const w0[] = {H_96A2, H_5F08, H_6B47};
  check_vec_proof((const merkle_hash *)p, n, w0, 3);
  assert_true(merkle_verify_inclusion(0, 8, t.leaf[0], (const merkle_hash *)p, n, t.root[8]));

  assert_int_equal(merkle_inclusion_proof(ms_get, &t.s, 5, 8, p, &n), 0);
  static const char *const w5[] = {H_BC1A, H_CA85, H_D37E};
  check_vec_proof((const merkle_hash *)p, n, w5, 3);
  assert_true(merkle_verify_inclusion(5, 8, t.leaf[5], (const merkle_hash *)p, n, t.root[8]));
  /* the published proof is not a proof for a neighbouring leaf */
  assert_false(merkle_verify_inclusion(4, 8, t.leaf[4], (const merkle_hash *)p, n, t.root[8]));
  assert_false(merkle_verify_inclusion(5, 8, t.leaf[4], (const merkle_hash *)p, n, t.root[8]));

  /* PATH(0, {d0}) = {} and it verifies against MTH({d0}) */
  assert_int_equal(merkle_inclusion_proof(ms_get, &t.s, 0, 1, p, &n), 0);
  assert_int_equal(n, 0);
  assert_true(merkle_verify_inclusion(0, 1, t.leaf[0], (const merkle_hash *)p, 0, t.root[1]));
  ms_free(&t.s);
}

static void test_merkle_vectors__consistency(void **state) {
  vec_tree t;
  vec_build(&t);
  merkle_hash p[MERKLE_MAX_PATH];
  int n = -1;

  assert_int_equal(merkle_consistency_proof(ms_get, &t.s, 6, 8, p, &n), 0);
  static const char *const w68[] = {H_0EBC, H_CA85, H_D37E};
  check_vec_proof((const merkle_hash *)p, n, w68, 3);
  assert_true(merkle_verify_consistency(6, 8, (const merkle_hash *)p, n, t.root[6], t.root[8]));
  assert_false(merkle_verify_consistency(6, 8, (const merkle_hash *)p, n, t.root[5], t.root[8]));

  assert_int_equal(merkle_consistency_proof(ms_get, &t.s, 2, 5, p, &n), 0);
  static const char *const w25[] = {H_5F08, H_BC1A};
  check_vec_proof((const merkle_hash *)p, n, w25, 2);
  /* 2 is a power of two: the old root is the verifier's, not in the proof */
  assert_true(merkle_verify_consistency(2, 5, (const merkle_hash *)p, n, t.root[2], t.root[5]));

  n = -1;
  assert_int_equal(merkle_consistency_proof(ms_get, &t.s, 1, 1, p, &n), 0);
  assert_int_equal(n, 0);
  assert_true(merkle_verify_consistency(1, 1, (const merkle_hash *)p, 0, t.root[1], t.root[1]));
  assert_false(merkle_verify_consistency(1, 1, (const merkle_hash *)p, 0, t.root[1], t.root[2]));
  ms_free(&t.s);
}

static void test_merkle_empty__is_sha256_of_nothing(void **state) {
  merkle_hash want, got;
  /* FIPS 180-2 / STANDARDS §3.1: SHA-256("") */
  unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
  merkle_empty(got);
  assert_hash_equal(got, want);
  mstore s = {0};
  memset(got, 0, 32);
  assert_int_equal(merkle_root(ms_get, &s, 0, got), 0);
  assert_hash_equal(got, want);
  merkle_frontier f = {0};
  memset(got, 0, 32);
  merkle_frontier_root(&f, got);
  assert_hash_equal(got, want);
  /* a frontier loaded at size 0 reads nothing and is empty */
  assert_int_equal(merkle_frontier_load(&f, 0, ms_get, &s), 0);
  assert_int_equal(f.size, 0);
  /* leaf and node are domain-separated from each other and from "" */
  merkle_hash l, nd;
  merkle_leaf("", 0, l);
  assert_memory_not_equal(l, want, 32);
  merkle_node(want, want, nd);
  merkle_hash ref;
  ref_node(want, want, ref);
  assert_hash_equal(nd, ref);
}

/* ---- merkle.c == the recursive reference, sizes 1..70 ------------------ */

#define EXH_MAX 70

static void test_merkle_proofs__match_reference_exhaustively(void **state) {
  merkle_hash *D = make_leaves(EXH_MAX);
  mstore s;
  merkle_frontier f;
  build(&s, &f, D, EXH_MAX);
  merkle_hash roots[EXH_MAX + 1];
  for (uint64_t n = 0; n <= EXH_MAX; n++) {
    ref_mth(D, n, roots[n]);
    merkle_hash r;
    assert_int_equal(merkle_root(ms_get, &s, n, r), 0);
    assert_hash_equal(r, roots[n]);
  }
  merkle_hash got[MERKLE_MAX_PATH], want[MERKLE_MAX_PATH];
  for (uint64_t n = 1; n <= EXH_MAX; n++) {
    for (uint64_t m = 0; m < n; m++) {
      int gn = -1, wn = 0;
      assert_int_equal(merkle_inclusion_proof(ms_get, &s, m, n, got, &gn), 0);
      ref_path(m, D, n, want, &wn);
      assert_int_equal(gn, wn);
      assert_memory_equal(got, want, (size_t)wn * 32);
      assert_true(ref_verify_inclusion(m, n, D[m], (const merkle_hash *)want, wn, roots[n]));
      assert_true(merkle_verify_inclusion(m, n, D[m], (const merkle_hash *)got, gn, roots[n]));
    }
    for (uint64_t m = 1; m <= n; m++) {
      int gn = -1, wn = 0;
      assert_int_equal(merkle_consistency_proof(ms_get, &s, m, n, got, &gn), 0);
      ref_proof(m, D, n, want, &wn);
      assert_int_equal(gn, wn);
      assert_memory_equal(got, want, (size_t)wn * 32);
      assert_true(ref_verify_consistency(m, n, (const merkle_hash *)want, wn, roots[m], roots[n]));
      assert_true(
          merkle_verify_consistency(m, n, (const merkle_hash *)got, gn, roots[m], roots[n]));
    }
  }
  /* every stored perfect subtree is the MTH of its range */
  for (unsigned l = 0; l < 64; l++)
    for (uint64_t i = 0; i < s.n[l]; i++) {
      merkle_hash w;
      ref_mth(D + (i << l), 1ull << l, w);
      assert_hash_equal(s.lv[l][i], w);
    }
  ms_free(&s);
  free(D);
}

static void test_merkle_proofs__bad_arguments(void **state) {
  merkle_hash *D = make_leaves(9);
  mstore s;
  merkle_frontier f;
  build(&s, &f, D, 9);
  merkle_hash p[MERKLE_MAX_PATH];
  int n = -1;
  assert_int_equal(merkle_inclusion_proof(ms_get, &s, 9, 9, p, &n), CU_EINVAL);
  assert_int_equal(n, 0);
  assert_int_equal(merkle_inclusion_proof(ms_get, &s, 0, 0, p, &n), CU_EINVAL);
  assert_int_equal(merkle_inclusion_proof(ms_get, &s, UINT64_MAX, 9, p, &n), CU_EINVAL);
  n = -1;
  assert_int_equal(merkle_consistency_proof(ms_get, &s, 0, 5, p, &n), CU_EINVAL);
  assert_int_equal(n, 0);
  assert_int_equal(merkle_consistency_proof(ms_get, &s, 0, 0, p, &n), CU_EINVAL);
  assert_int_equal(merkle_consistency_proof(ms_get, &s, 6, 5, p, &n), CU_EINVAL);
  /* a missing node is reported, not papered over */
  s.limit = 8;
  merkle_hash r;
  assert_int_equal(merkle_root(ms_get, &s, 9, r), CU_ENOTFOUND);
  assert_int_equal(merkle_inclusion_proof(ms_get, &s, 0, 9, p, &n), CU_ENOTFOUND);
  assert_int_equal(merkle_consistency_proof(ms_get, &s, 3, 9, p, &n), CU_ENOTFOUND);
  merkle_frontier g;
  assert_int_equal(merkle_frontier_load(&g, 9, ms_get, &s), CU_ENOTFOUND);
  assert_int_equal(merkle_root(ms_get, &s, 8, r), 0);
  ms_free(&s);
  free(D);
}

/* ---- mutations --------------------------------------------------------- */

/* Every single-bit flip of every path element, the leaf and the root is
 * checked for sizes up to FLIP_MAX (CFLIP_MAX for consistency proofs);
 * above that, every ninth bit (each byte once, at a varying position). */
#define FLIP_MAX 32

static void test_merkle_inclusion__mutations_fail(void **state) {
  merkle_hash *D = make_leaves(EXH_MAX);
  mstore s;
  merkle_frontier f;
  build(&s, &f, D, EXH_MAX);
  merkle_hash roots[EXH_MAX + 2];
  for (uint64_t n = 0; n <= EXH_MAX; n++)
    ref_mth(D, n, roots[n]);
  merkle_hash p[MERKLE_MAX_PATH + 2], q[MERKLE_MAX_PATH + 2];
  int smaller_ok = 0, larger_ok = 0;
  for (uint64_t n = 1; n <= EXH_MAX; n++) {
    for (uint64_t m = 0; m < n; m++) {
      int np = 0;
      assert_int_equal(merkle_inclusion_proof(ms_get, &s, m, n, p, &np), 0);
      const merkle_hash *P = (const merkle_hash *)p;
      assert_true(merkle_verify_inclusion(m, n, D[m], P, np, roots[n]));

      /* single-bit flips in the path, the leaf and the root */
      int step = n <= FLIP_MAX ? 1 : 9;
      for (int e = 0; e < np; e++)
        for (int bit = 0; bit < 256; bit += step) {
          memcpy(q, p, (size_t)np * 32);
          q[e][bit / 8] ^= (unsigned char)(1u << (bit % 8));
          assert_false(merkle_verify_inclusion(m, n, D[m], (const merkle_hash *)q, np, roots[n]));
        }
      for (int bit = 0; bit < 256; bit += step) {
        merkle_hash x;
        memcpy(x, D[m], 32);
        x[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_false(merkle_verify_inclusion(m, n, x, P, np, roots[n]));
        memcpy(x, roots[n], 32);
        x[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_false(merkle_verify_inclusion(m, n, D[m], P, np, x));
      }

      /* one element too few, one too many (a copy of the last element, or
       * the root itself) */
      if (np > 0) assert_false(merkle_verify_inclusion(m, n, D[m], P, np - 1, roots[n]));
      memcpy(q, p, (size_t)np * 32);
      memcpy(q[np], np ? p[np - 1] : roots[n], 32);
      assert_false(merkle_verify_inclusion(m, n, D[m], (const merkle_hash *)q, np + 1, roots[n]));
      memcpy(q[np], roots[n], 32);
      assert_false(merkle_verify_inclusion(m, n, D[m], (const merkle_hash *)q, np + 1, roots[n]));
      /* the path with its first element dropped (the leaf-side one) */
      if (np > 0) assert_false(merkle_verify_inclusion(m, n, D[m], P + 1, np - 1, roots[n]));

      /* any other index, in or out of range: the path encodes the position */
      for (uint64_t w = 0; w <= n; w++)
        if (w != m) assert_false(merkle_verify_inclusion(w, n, D[m], P, np, roots[n]));
      assert_false(merkle_verify_inclusion(UINT64_MAX, n, D[m], P, np, roots[n]));
      /* the right index but another leaf */
      if (n > 1) assert_false(merkle_verify_inclusion(m, n, D[(m + 1) % n], P, np, roots[n]));
      /* a root of another size */
      if (n > 1) assert_false(merkle_verify_inclusion(m, n, D[m], P, np, roots[n - 1]));

      /* Wrong claimed sizes. STANDARDS §3.7: a proof alone does not
       * authenticate tree_size. The RFC verifier only looks at size - 1 to
       * decide, step by step, whether the path element is a left or right
       * sibling and when the path must end; so a PATH(m, D[n]) also
       * verifies (against the real MTH(D[n])) for a claimed size n' exactly
       * when PATH(m, D[n']) would have the same length and the same
       * left/right sequence (e.g. leaf 0 of 8 as "size 7": both are three
       * right-hand siblings). That is exactly what the reference verifier
       * above decides by walking PATH's recursion for n', so merkle.c must
       * agree with it in both directions, and never accept a size that
       * does not contain the index. */
      bool got_small = merkle_verify_inclusion(m, n - 1, D[m], P, np, roots[n]);
      assert_int_equal(got_small, ref_verify_inclusion(m, n - 1, D[m], P, np, roots[n]));
      if (m >= n - 1) assert_false(got_small);
      bool got_large = merkle_verify_inclusion(m, n + 1, D[m], P, np, roots[n]);
      assert_int_equal(got_large, ref_verify_inclusion(m, n + 1, D[m], P, np, roots[n]));
      smaller_ok += got_small;
      larger_ok += got_large;
      /* a wrong size never verifies against the root of that size */
      if (n > 1 && m < n - 1)
        assert_false(merkle_verify_inclusion(m, n - 1, D[m], P, np, roots[n - 1]));
    }
  }
  /* The §3.7 example itself: the size-8 proof of leaf 0 verifies as size 7
   * against the size-8 root, and the ambiguity exists in both directions. */
  {
    int np = 0;
    assert_int_equal(merkle_inclusion_proof(ms_get, &s, 0, 8, p, &np), 0);
    assert_true(merkle_verify_inclusion(0, 7, D[0], (const merkle_hash *)p, np, roots[8]));
    assert_int_equal(merkle_inclusion_proof(ms_get, &s, 0, 7, p, &np), 0);
    assert_true(merkle_verify_inclusion(0, 8, D[0], (const merkle_hash *)p, np, roots[7]));
  }
  print_message("wrong claimed sizes that still verify (as the RFC algorithm implies): "
                "size-1 %d, size+1 %d of %d proofs\n",
                smaller_ok, larger_ok, EXH_MAX * (EXH_MAX + 1) / 2);
  assert_true(smaller_ok > 0);
  assert_true(larger_ok > 0);
  ms_free(&s);
  free(D);
}

#define CFLIP_MAX 20

static void test_merkle_consistency__mutations_fail(void **state) {
  merkle_hash *D = make_leaves(EXH_MAX + 1);
  mstore s;
  merkle_frontier f;
  build(&s, &f, D, EXH_MAX + 1);
  merkle_hash roots[EXH_MAX + 2], empty;
  for (uint64_t n = 0; n <= EXH_MAX + 1; n++)
    ref_mth(D, n, roots[n]);
  merkle_empty(empty);
  merkle_hash p[MERKLE_MAX_PATH + 2], q[MERKLE_MAX_PATH + 2];
  for (uint64_t n = 2; n <= EXH_MAX; n++) {
    for (uint64_t m = 1; m < n; m++) {
      int np = 0;
      assert_int_equal(merkle_consistency_proof(ms_get, &s, m, n, p, &np), 0);
      assert_true(np > 0);
      const merkle_hash *P = (const merkle_hash *)p;
      const unsigned char *r1 = roots[m], *r2 = roots[n];
      assert_true(merkle_verify_consistency(m, n, P, np, r1, r2));

      int step = n <= CFLIP_MAX ? 1 : 9;
      for (int e = 0; e < np; e++)
        for (int bit = 0; bit < 256; bit += step) {
          memcpy(q, p, (size_t)np * 32);
          q[e][bit / 8] ^= (unsigned char)(1u << (bit % 8));
          assert_false(merkle_verify_consistency(m, n, (const merkle_hash *)q, np, r1, r2));
        }
      for (int bit = 0; bit < 256; bit += step) {
        merkle_hash x;
        memcpy(x, r1, 32);
        x[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_false(merkle_verify_consistency(m, n, P, np, x, r2));
        memcpy(x, r2, 32);
        x[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_false(merkle_verify_consistency(m, n, P, np, r1, x));
      }

      /* too short, too long, empty */
      assert_false(merkle_verify_consistency(m, n, P, np - 1, r1, r2));
      assert_false(merkle_verify_consistency(m, n, P + 1, np - 1, r1, r2));
      assert_false(merkle_verify_consistency(m, n, P, 0, r1, r2));
      memcpy(q, p, (size_t)np * 32);
      memcpy(q[np], p[np - 1], 32);
      assert_false(merkle_verify_consistency(m, n, (const merkle_hash *)q, np + 1, r1, r2));
      memcpy(q[np], r2, 32);
      assert_false(merkle_verify_consistency(m, n, (const merkle_hash *)q, np + 1, r1, r2));

      /* swapped roots; first > second; first == 0 with this proof */
      assert_false(merkle_verify_consistency(m, n, P, np, r2, r1));
      assert_false(merkle_verify_consistency(n, m, P, np, r2, r1));
      assert_false(merkle_verify_consistency(n, m, P, np, r1, r2));
      assert_false(merkle_verify_consistency(0, n, P, np, empty, r2));
      assert_false(merkle_verify_consistency(0, n, P, np, r1, r2));
      /* the proof's roots under a shifted pair of sizes */
      assert_false(merkle_verify_consistency(m, n + 1, P, np, r1, roots[n + 1]));
      if (m > 1) assert_false(merkle_verify_consistency(m - 1, n, P, np, roots[m - 1], r2));

      /* Wrong claimed sizes with the true roots: as for inclusion (§3.7),
       * a proof does not authenticate the sizes; merkle.c must accept
       * exactly when the reference, walking SUBPROOF's recursion for the
       * claimed sizes, rebuilds both given roots. */
      const uint64_t alt[][2] = {{m - 1, n}, {m + 1, n}, {m, n - 1}, {m, n + 1}};
      for (int a = 0; a < 4; a++) {
        uint64_t am = alt[a][0], an = alt[a][1];
        assert_int_equal(merkle_verify_consistency(am, an, P, np, r1, r2),
                         ref_verify_consistency(am, an, P, np, r1, r2));
      }
    }
  }
  /* first == 0: nothing to prove, only from the empty tree (§3.4 step 0) */
  assert_true(merkle_verify_consistency(0, 5, NULL, 0, empty, roots[5]));
  assert_false(merkle_verify_consistency(0, 5, NULL, 0, roots[1], roots[5]));
  assert_true(merkle_verify_consistency(0, 0, NULL, 0, empty, empty));
  /* first == second: an empty proof and the same root */
  assert_true(merkle_verify_consistency(7, 7, NULL, 0, roots[7], roots[7]));
  assert_false(merkle_verify_consistency(7, 7, NULL, 0, roots[7], roots[6]));
  assert_false(merkle_verify_consistency(7, 7, (const merkle_hash *)roots, 1, roots[7], roots[7]));
  ms_free(&s);
  free(D);
}

/* ---- the frontier ------------------------------------------------------ */

#define FR_MAX 200ull

typedef struct {
  const mstore *full;
  int emitted;
} cmp_ctx;

/* After a load, appending must emit the very nodes the full build stored. */
static void emit_compare(void *ud, unsigned level, uint64_t index, const merkle_hash h) {
  cmp_ctx *c = ud;
  assert_true(level < 64);
  assert_true(index < c->full->n[level]);
  assert_hash_equal(h, c->full->lv[level][index]);
  c->emitted++;
}

static void test_merkle_frontier__roots_load_and_continue(void **state) {
  merkle_hash *D = make_leaves(FR_MAX);
  merkle_hash roots[FR_MAX + 1];
  for (uint64_t n = 0; n <= FR_MAX; n++)
    ref_mth(D, n, roots[n]);

  /* grow one leaf at a time: the root at every size */
  mstore s = {0};
  merkle_frontier f = {0};
  for (uint64_t n = 0; n <= FR_MAX; n++) {
    assert_int_equal(f.size, n);
    merkle_hash r;
    merkle_frontier_root(&f, r);
    assert_hash_equal(r, roots[n]);
    if (n < FR_MAX) merkle_frontier_append(&f, D[n], ms_emit, &s);
  }
  /* exactly the perfect subtrees of 200 leaves were stored */
  for (unsigned l = 0; l < 64; l++)
    assert_int_equal(s.n[l], FR_MAX >> l);

  /* reload at every size from the stored nodes (only those of that size
   * visible), compare with a frontier grown to that size, then grow the
   * loaded one to the end */
  for (uint64_t n = 0; n <= FR_MAX; n++) {
    merkle_frontier grown = {0};
    for (uint64_t i = 0; i < n; i++)
      merkle_frontier_append(&grown, D[i], NULL, NULL);
    merkle_frontier g;
    memset(&g, 0xa5, sizeof g);
    s.limit = n ? n : 1;
    assert_int_equal(merkle_frontier_load(&g, n, ms_get, &s), 0);
    s.limit = 0;
    assert_int_equal(g.size, n);
    for (unsigned l = 0; l < 64; l++)
      if (n >> l & 1) {
        assert_hash_equal(g.peak[l], grown.peak[l]);
        merkle_hash w;
        ref_mth(D + ((n >> l) - 1) * (1ull << l), 1ull << l, w);
        assert_hash_equal(g.peak[l], w);
      }
    merkle_hash r;
    merkle_frontier_root(&g, r);
    assert_hash_equal(r, roots[n]);

    cmp_ctx c = {&s, 0};
    for (uint64_t i = n; i < FR_MAX; i++) {
      merkle_frontier_append(&g, D[i], emit_compare, &c);
      merkle_frontier_root(&g, r);
      assert_hash_equal(r, roots[i + 1]);
    }
    /* every node completed after the load was emitted, once */
    int want = 0;
    for (unsigned l = 0; l < 64; l++)
      want += (int)((FR_MAX >> l) - (n >> l));
    assert_int_equal(c.emitted, want);
  }
  ms_free(&s);
  free(D);
}

/* ---- sizes near 2^64 (STANDARDS §3.7: sizes are uint64) ----------------
 * A tree whose leaves are all equal has node (l, i) = Z[l] for every i, so
 * any size can be stored in O(64). The reference below is the same
 * recursion as above, specialised to such a tree. */

typedef struct {
  merkle_hash z[64];
} utree;

static void utree_init(utree *u) {
  ref_leaf("u", 1, u->z[0]);
  for (int l = 1; l < 64; l++)
    ref_node(u->z[l - 1], u->z[l - 1], u->z[l]);
}

static int u_get(void *ud, unsigned level, uint64_t index, merkle_hash out) {
  if (level >= 64) return cu_error(CU_EINVAL, "level %u", level);
  memcpy(out, ((utree *)ud)->z[level], 32);
  return 0;
}

static void u_mth(const utree *u, uint64_t n, merkle_hash out) {
  if (!(n & (n - 1))) {
    memcpy(out, u->z[__builtin_ctzll(n)], 32);
    return;
  }
  uint64_t k = ref_k(n);
  merkle_hash r;
  u_mth(u, n - k, r);
  ref_node(u->z[__builtin_ctzll(k)], r, out);
}

static void u_path(const utree *u, uint64_t m, uint64_t n, merkle_hash *out, int *cnt) {
  if (n == 1) return;
  uint64_t k = ref_k(n);
  if (m < k) {
    u_path(u, m, k, out, cnt);
    u_mth(u, n - k, out[(*cnt)++]);
  } else {
    u_path(u, m - k, n - k, out, cnt);
    u_mth(u, k, out[(*cnt)++]);
  }
}

static void u_subproof(const utree *u, uint64_t m, uint64_t n, bool b, merkle_hash *out, int *cnt) {
  if (m == n) {
    if (!b) u_mth(u, n, out[(*cnt)++]);
    return;
  }
  uint64_t k = ref_k(n);
  if (m <= k) {
    u_subproof(u, m, k, b, out, cnt);
    u_mth(u, n - k, out[(*cnt)++]);
  } else {
    u_subproof(u, m - k, n - k, false, out, cnt);
    u_mth(u, k, out[(*cnt)++]);
  }
}

/* Runs the checks for one size in a child with a deadline; returns a
 * description of the failure, or NULL. */
static const char *huge_child(uint64_t n) {
  utree u;
  utree_init(&u);
  merkle_hash got[128], want[128], root, r;
  u_mth(&u, n, root);
  if (merkle_root(u_get, &u, n, r) || memcmp(r, root, 32)) return "merkle_root differs";
  const uint64_t ms[] = {0, 1, n / 2, n - 2, n - 1};
  for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
    uint64_t m = ms[i];
    if (m >= n) continue;
    int gn = -1, wn = 0;
    if (merkle_inclusion_proof(u_get, &u, m, n, got, &gn)) return "inclusion proof failed";
    u_path(&u, m, n, want, &wn);
    if (gn != wn || memcmp(got, want, (size_t)wn * 32)) return "inclusion proof differs";
    if (gn > MERKLE_MAX_PATH) return "inclusion proof longer than MERKLE_MAX_PATH";
    if (!merkle_verify_inclusion(m, n, u.z[0], (const merkle_hash *)got, gn, root))
      return "inclusion proof does not verify";
  }
  const uint64_t fs[] = {1, 2, 3, n / 2, n / 2 + 1, (1ull << 63) + 1, n - 1};
  for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) {
    uint64_t m = fs[i];
    if (m == 0 || m >= n) continue;
    int gn = -1, wn = 0;
    if (merkle_consistency_proof(u_get, &u, m, n, got, &gn)) return "consistency proof failed";
    u_subproof(&u, m, n, true, want, &wn);
    if (gn != wn || memcmp(got, want, (size_t)wn * 32)) return "consistency proof differs";
    if (gn > MERKLE_MAX_PATH) return "consistency proof longer than MERKLE_MAX_PATH";
    merkle_hash old;
    u_mth(&u, m, old);
    if (!merkle_verify_consistency(m, n, (const merkle_hash *)got, gn, old, root))
      return "consistency proof does not verify";
  }
  return NULL;
}

static void check_huge(uint64_t n) {
  int fd[2];
  assert_int_equal(pipe(fd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fd[0]);
    alarm(5);
    const char *why = huge_child(n);
    if (why) {
      ssize_t w = write(fd[1], why, strlen(why));
      (void)w;
    }
    _exit(why ? 1 : 0);
  }
  close(fd[1]);
  char why[256] = "";
  ssize_t got = read(fd[0], why, sizeof why - 1);
  if (got > 0) why[got] = '\0';
  close(fd[0]);
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (WIFSIGNALED(st))
    fail_msg("size %llu: killed by signal %d (%s)", (unsigned long long)n, WTERMSIG(st),
             WTERMSIG(st) == SIGALRM ? "no answer within 5 s" : "crash");
  if (WEXITSTATUS(st)) fail_msg("size %llu: %s", (unsigned long long)n, why);
}

static void test_merkle_huge__sizes_up_to_2_63(void **state) {
  const uint64_t sizes[] = {3, (1ull << 32) + 1, (1ull << 62) + 3, (1ull << 63) - 1, 1ull << 63};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    check_huge(sizes[i]);
}

/* Above 2^63 the largest power of two below n is 2^63 itself, and the
 * deepest leaves sit 64 levels down: a consistency proof such as
 * PROOF(2^63 + 1, D[2^64 - 1]) has 64 siblings plus MTH(D[2^63:2^63+1]),
 * 65 hashes (ceil(log2 n) + 1, as merkle.h says), which the callers'
 * MERKLE_MAX_PATH buffers must hold. huge_child passes 128-entry buffers
 * so that an overlong proof is reported rather than written past them. */
static void test_merkle_huge__sizes_above_2_63(void **state) {
  const uint64_t sizes[] = {(1ull << 63) + 1, UINT64_MAX - 1, UINT64_MAX};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    check_huge(sizes[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_merkle_vectors__roots),
      cmocka_unit_test(test_merkle_vectors__inclusion),
      cmocka_unit_test(test_merkle_vectors__consistency),
      cmocka_unit_test(test_merkle_empty__is_sha256_of_nothing),
      cmocka_unit_test(test_merkle_proofs__match_reference_exhaustively),
      cmocka_unit_test(test_merkle_proofs__bad_arguments),
      cmocka_unit_test(test_merkle_inclusion__mutations_fail),
      cmocka_unit_test(test_merkle_consistency__mutations_fail),
      cmocka_unit_test(test_merkle_frontier__roots_load_and_continue),
      cmocka_unit_test(test_merkle_huge__sizes_up_to_2_63),
      cmocka_unit_test(test_merkle_huge__sizes_above_2_63),
  };
  const char *only = getenv("CMOCKA_TEST_FILTER"); /* e.g. "*frontier*" */
  if (only) cmocka_set_test_filter(only);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
