/* C2SP signed notes carrying tlog checkpoints: how a signed tree head is
 * written, signed and checked (docs/LEDGER.md has the exact bytes).
 *
 *   body      = origin "\n" decimal size "\n" base64(root) "\n"
 *   note      = body "\n" "— " name " " base64(key_id || signature) "\n"
 *   signature = Ed25519 over body (its final newline included)
 *   key_id    = SHA-256(name || 0x0A || 0x01 || public key)[0:4]
 *
 * Keys are raw 32-byte Ed25519 seeds and public keys. */
#ifndef NOTE_H
#define NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define NOTE_MAX_ORIGIN 200
#define NOTE_MAX_BYTES 4096

typedef struct {
  char origin[NOTE_MAX_ORIGIN + 1];
  uint64_t size;
  unsigned char root[32];
} note_checkpoint;

int note_checkpoint_body(const char *origin, uint64_t size, const unsigned char root[32],
                         cu_buf *out);
/* Parses the signed part of a note (strict: exactly three lines).
 * CU_ECORRUPT with the reason. */
int note_checkpoint_parse(const char *body, size_t n, note_checkpoint *out);

void note_key_id(const char *name, const unsigned char pub[32], unsigned char id[4]);
/* The verifier key text: name "+" hex(key_id) "+" base64(0x01 || pub). */
int note_vkey(const char *name, const unsigned char pub[32], cu_buf *out);
/* CU_EINVAL unless vkey is a well-formed Ed25519 verifier key. */
int note_vkey_parse(const char *vkey, char name[NOTE_MAX_ORIGIN + 1], unsigned char pub[32]);

/* Signs body (which must end in "\n" and hold no blank line) as name. */
int note_sign(const unsigned char seed[32], const char *name, const char *body, size_t n,
              cu_buf *note);
/* Checks that note carries a valid signature by (name, pub); *body_len is
 * the length of its signed text. CU_ECORRUPT with the reason. */
int note_verify(const char *note, size_t n, const char *name, const unsigned char pub[32],
                size_t *body_len);

/* A fresh Ed25519 key pair, and the public key of a seed. */
int note_keygen(unsigned char seed[32], unsigned char pub[32]);
int note_public(const unsigned char seed[32], unsigned char pub[32]);

#endif
