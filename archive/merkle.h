/* RFC 9162 §2.1 Merkle tree hashing, proofs and their verification.
 *
 * Pure functions over SHA-256: leaf = SHA-256(0x00 || data), node =
 * SHA-256(0x01 || left || right), the empty tree is SHA-256(""). Proof
 * generation reads hashes of perfect subtrees through a callback (the
 * ledger keeps them in the index; a verifier rebuilding a tree keeps them
 * in memory), so a proof costs O(log n) reads per border subtree. */
#ifndef MERKLE_H
#define MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MERKLE_MAX_PATH 65 /* a consistency proof has at most ceil(log2 n) + 1 hashes */

typedef unsigned char merkle_hash[32];

void merkle_leaf(const void *data, size_t n, merkle_hash out);
void merkle_node(const merkle_hash left, const merkle_hash right, merkle_hash out);
void merkle_empty(merkle_hash out);

/* Hash of the perfect subtree at (level, index): leaves [index << level,
 * (index + 1) << level). Returns 0, or an error code with cu_error set. */
typedef int (*merkle_get_fn)(void *ud, unsigned level, uint64_t index, merkle_hash out);

/* MTH(D[0:size]). */
int merkle_root(merkle_get_fn get, void *ud, uint64_t size, merkle_hash out);
/* PATH(index, D[0:size]), leaf side first; *n hashes. CU_EINVAL unless
 * index < size. */
int merkle_inclusion_proof(merkle_get_fn get, void *ud, uint64_t index, uint64_t size,
                           merkle_hash path[MERKLE_MAX_PATH], int *n);
/* PROOF(first, D[0:second]); empty when first == second. CU_EINVAL unless
 * 0 < first <= second. */
int merkle_consistency_proof(merkle_get_fn get, void *ud, uint64_t first, uint64_t second,
                             merkle_hash path[MERKLE_MAX_PATH], int *n);

/* RFC 9162 §2.1.3.2 and §2.1.4.2, exactly. */
bool merkle_verify_inclusion(uint64_t index, uint64_t size, const merkle_hash leaf,
                             const merkle_hash *path, int n, const merkle_hash root);
bool merkle_verify_consistency(uint64_t first, uint64_t second, const merkle_hash *path, int n,
                               const merkle_hash first_root, const merkle_hash second_root);

/* The right edge of a growing tree: for each level whose bit is set in
 * size, the hash of the last perfect subtree there. Appending a leaf
 * completes the subtrees it closes; each is passed to emit so the caller
 * can store it. */
typedef struct {
  uint64_t size;
  merkle_hash peak[64];
} merkle_frontier;

void merkle_frontier_append(merkle_frontier *f, const merkle_hash leaf,
                            void (*emit)(void *ud, unsigned level, uint64_t index,
                                         const merkle_hash h),
                            void *ud);
void merkle_frontier_root(const merkle_frontier *f, merkle_hash out);
/* Loads the frontier of a tree of size leaves from stored subtrees. */
int merkle_frontier_load(merkle_frontier *f, uint64_t size, merkle_get_fn get, void *ud);

#endif
