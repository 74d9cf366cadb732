/* `custos verify --home DIR`: checks a stopped server's data offline,
 * without trusting anything the server says about itself except the
 * ledger's public key and the TSA roots (which can be given from outside):
 * re-hashes every object, checks every time-stamp token, rebuilds the
 * Merkle tree from the ledger's entries, checks every signed tree head's
 * signature and root and the consistency of consecutive heads, and that
 * every evidence record has its "ingested" event. */
#ifndef VERIFY_H
#define VERIFY_H

#include <stdint.h>

#include "json.h"
#include "note.h"

typedef struct {
  const char *home;
  const char *tsa_ca_file; /* trust these TSA roots (PEM) instead of the recorded ones */
  const char *ledger_key;  /* trust this verifier key (vkey text or file) instead of keys/ */
  /* Called now and then while objects are re-hashed (may be NULL). */
  void (*progress)(void *ud, uint64_t bytes_done, uint64_t bytes_total);
  void *ud;
} verify_opts;

/* Returns 0 when the checks ran, whatever they found; *report is
 * {home, ok, checked: {evidence, objects, bytes, ledger_entries,
 * signed_heads, tokens}, failures: [{check, evidence?, index?, size?,
 * message}], warnings: [...]}. An error means they could not run (no such
 * home, or a server still holds it). */
int verify_home(const verify_opts *o, json_t **report);

/* Shared with bag_verify (custos verify BAG). */
/* Reads a ledger verifier key (vkey text, one line; a final newline is
 * allowed) from the file at path. CU_EINVAL if it is not a well-formed
 * key; the I/O errors of reading it otherwise. */
int verify_read_vkey(const char *path, char name[NOTE_MAX_ORIGIN + 1], unsigned char pub[32]);
/* A signed tree head: note carries a valid signature by (name, pub) and its
 * signed text is a checkpoint, parsed into cp. CU_ECORRUPT with the reason. */
int verify_checkpoint(const char *note, size_t n, const char *name, const unsigned char pub[32],
                      note_checkpoint *cp);

#endif
