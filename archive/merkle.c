/* DESIGN: the recursion of RFC 9162 §2.1 over ranges [start, start + n).
 * Every range the recursion visits either is a perfect subtree, whose hash
 * is stored, or starts on a boundary of its own size rounded up to a power
 * of two; such a range splits into perfect subtrees along the binary
 * digits of n, so its hash is folded from at most log2 n stored ones. */
/* The low-level SHA-256 calls: tree nodes are 65-byte inputs, and EVP's
 * per-call setup would cost more than the hashing. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "merkle.h"

#include <openssl/sha.h>
#include <string.h>

#include "err.h"
#include "banned.h"

void merkle_leaf(const void *data, size_t n, merkle_hash out) {
  SHA256_CTX c;
  unsigned char z = 0;
  SHA256_Init(&c);
  SHA256_Update(&c, &z, 1);
  SHA256_Update(&c, data, n);
  SHA256_Final(out, &c);
}

void merkle_node(const merkle_hash left, const merkle_hash right, merkle_hash out) {
  unsigned char buf[65];
  buf[0] = 1;
  memcpy(buf + 1, left, 32);
  memcpy(buf + 33, right, 32);
  SHA256(buf, sizeof buf, out);
}

void merkle_empty(merkle_hash out) { SHA256((const unsigned char *)"", 0, out); }

/* Largest power of two strictly smaller than n (n >= 2). */
static uint64_t split(uint64_t n) { return 1ull << (63 - __builtin_clzll(n - 1)); }

static unsigned log2_exact(uint64_t n) {
  unsigned l = 0;
  while ((1ull << l) < n) l++;
  return l;
}

static bool is_pow2(uint64_t n) { return n && !(n & (n - 1)); }

/* MTH of leaves [start, start + n), n >= 1. */
static int range_hash(merkle_get_fn get, void *ud, uint64_t start, uint64_t n, merkle_hash out) {
  if (is_pow2(n) && start % n == 0) {
    unsigned l = log2_exact(n);
    return get(ud, l, start >> l, out);
  }
  /* Perfect subtrees left to right, folded from the right. */
  merkle_hash parts[64];
  int np = 0;
  uint64_t off = start;
  for (int l = 63; l >= 0; l--) {
    if (!(n >> l & 1)) continue;
    int rc = get(ud, (unsigned)l, off >> l, parts[np]);
    if (rc) return rc;
    np++;
    off += 1ull << l;
  }
  memcpy(out, parts[np - 1], 32);
  for (int i = np - 2; i >= 0; i--) merkle_node(parts[i], out, out);
  return 0;
}

int merkle_root(merkle_get_fn get, void *ud, uint64_t size, merkle_hash out) {
  if (!size) {
    merkle_empty(out);
    return 0;
  }
  return range_hash(get, ud, 0, size, out);
}

/* PATH(m, D[start:start+n]) appended root-side last: recursion first,
 * then the sibling. */
static int path(merkle_get_fn get, void *ud, uint64_t m, uint64_t start, uint64_t n,
                merkle_hash *out, int *k) {
  if (n == 1) return 0;
  uint64_t s = split(n);
  int rc;
  if (m < s) {
    if ((rc = path(get, ud, m, start, s, out, k))) return rc;
    rc = range_hash(get, ud, start + s, n - s, out[*k]);
  } else {
    if ((rc = path(get, ud, m - s, start + s, n - s, out, k))) return rc;
    rc = range_hash(get, ud, start, s, out[*k]);
  }
  if (!rc) (*k)++;
  return rc;
}

int merkle_inclusion_proof(merkle_get_fn get, void *ud, uint64_t index, uint64_t size,
                           merkle_hash out[MERKLE_MAX_PATH], int *n) {
  *n = 0;
  if (index >= size)
    return cu_error(CU_EINVAL, "index %llu is not in a tree of size %llu",
                    (unsigned long long)index, (unsigned long long)size);
  return path(get, ud, index, 0, size, out, n);
}

static int subproof(merkle_get_fn get, void *ud, uint64_t m, uint64_t start, uint64_t n, bool b,
                    merkle_hash *out, int *k) {
  int rc;
  if (m == n) {
    if (b) return 0;
    if ((rc = range_hash(get, ud, start, n, out[*k]))) return rc;
    (*k)++;
    return 0;
  }
  uint64_t s = split(n);
  if (m <= s) {
    if ((rc = subproof(get, ud, m, start, s, b, out, k))) return rc;
    rc = range_hash(get, ud, start + s, n - s, out[*k]);
  } else {
    if ((rc = subproof(get, ud, m - s, start + s, n - s, false, out, k))) return rc;
    rc = range_hash(get, ud, start, s, out[*k]);
  }
  if (!rc) (*k)++;
  return rc;
}

int merkle_consistency_proof(merkle_get_fn get, void *ud, uint64_t first, uint64_t second,
                             merkle_hash out[MERKLE_MAX_PATH], int *n) {
  *n = 0;
  if (!first || first > second)
    return cu_error(CU_EINVAL, "no consistency proof from size %llu to size %llu",
                    (unsigned long long)first, (unsigned long long)second);
  if (first == second) return 0;
  return subproof(get, ud, first, 0, second, true, out, n);
}

bool merkle_verify_inclusion(uint64_t index, uint64_t size, const merkle_hash leaf,
                             const merkle_hash *p, int n, const merkle_hash root) {
  if (index >= size) return false;
  uint64_t fn = index, sn = size - 1;
  merkle_hash r;
  memcpy(r, leaf, 32);
  for (int i = 0; i < n; i++) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      merkle_node(p[i], r, r);
      if (!(fn & 1))
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
    } else {
      merkle_node(r, p[i], r);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && !memcmp(r, root, 32);
}

bool merkle_verify_consistency(uint64_t first, uint64_t second, const merkle_hash *p, int n,
                               const merkle_hash first_root, const merkle_hash second_root) {
  if (first > second) return false;
  if (first == second) return n == 0 && !memcmp(first_root, second_root, 32);
  if (first == 0) {
    merkle_hash e;
    merkle_empty(e);
    return n == 0 && !memcmp(first_root, e, 32);
  }
  if (n == 0) return false;
  /* Step 2: a power-of-two first size contributes its own root. */
  const merkle_hash *path = p;
  int np = n;
  merkle_hash buf[MERKLE_MAX_PATH + 1];
  if (is_pow2(first)) {
    if (n > MERKLE_MAX_PATH) return false;
    memcpy(buf[0], first_root, 32);
    memcpy(buf + 1, p, (size_t)n * 32);
    path = (const merkle_hash *)buf;
    np = n + 1;
  }
  uint64_t fn = first - 1, sn = second - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  merkle_hash fr, sr;
  memcpy(fr, path[0], 32);
  memcpy(sr, path[0], 32);
  for (int i = 1; i < np; i++) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      merkle_node(path[i], fr, fr);
      merkle_node(path[i], sr, sr);
      if (!(fn & 1))
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
    } else {
      merkle_node(sr, path[i], sr);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return !memcmp(fr, first_root, 32) && !memcmp(sr, second_root, 32) && sn == 0;
}

void merkle_frontier_append(merkle_frontier *f, const merkle_hash leaf,
                            void (*emit)(void *ud, unsigned level, uint64_t index,
                                         const merkle_hash h),
                            void *ud) {
  merkle_hash h;
  memcpy(h, leaf, 32);
  uint64_t i = f->size;
  unsigned l = 0;
  if (emit) emit(ud, 0, i, h);
  while (i & 1) {
    merkle_node(f->peak[l], h, h);
    i >>= 1;
    l++;
    if (emit) emit(ud, l, i, h);
  }
  memcpy(f->peak[l], h, 32);
  f->size++;
}

void merkle_frontier_root(const merkle_frontier *f, merkle_hash out) {
  if (!f->size) {
    merkle_empty(out);
    return;
  }
  bool have = false;
  for (unsigned l = 0; l < 64; l++) {
    if (!(f->size >> l & 1)) continue;
    if (!have) memcpy(out, f->peak[l], 32);
    else merkle_node(f->peak[l], out, out);
    have = true;
  }
}

int merkle_frontier_load(merkle_frontier *f, uint64_t size, merkle_get_fn get, void *ud) {
  memset(f, 0, sizeof *f);
  for (unsigned l = 0; l < 64; l++) {
    if (!(size >> l & 1)) continue;
    int rc = get(ud, l, (size >> l) - 1, f->peak[l]);
    if (rc) return rc;
  }
  f->size = size;
  return 0;
}
