/* Verified retrieval: proving, with the server's own ledger, that the bytes
 * a client received are the ones the ledger recorded, checked against a
 * ledger key the client pinned, never against anything the server says on
 * the same connection alone (docs/LEDGER.md section 5).
 *
 * Key pinning (trust on first use, or a key you were given):
 *   - with a key file (--ledger-key FILE): if FILE exists it holds the
 *     verifier key (vkey) to trust; if not, the server's vkey is saved
 *     there (0600) and a note says so on stderr;
 *   - without: the per-user pin file $XDG_CONFIG_HOME/custos/ledger-keys
 *     (default ~/.config/custos/ledger-keys; directories 0700, file 0600),
 *     one line per server, "<server-url> <vkey>"; blank lines and lines
 *     starting with '#' are ignored; the first use of a server appends its
 *     line and says so on stderr.
 * A server presenting a key other than the pinned one is refused
 * (CU_ECORRUPT) with both keys and the file to edit if the change is
 * legitimate. */
#ifndef CLI_PROVE_H
#define CLI_PROVE_H

#include "cli.h"

/* Heads are signed at most once a second; an event just written is
 * covered within a second or two. Waiting longer means no head is coming. */
#define CLI_PROVE_WAIT_US (10 * 1000 * 1000)

/* Proves that evidence `id` has a ledger event recording `sha256` as `what`:
 *   what = "original"  its "ingested" event;
 *   any other `what`   a rendition kind ("master", "access", "framehash",
 *                      "poster", or a clip kind such as
 *                      "clip:copy:90000:120000"): its "rendition" event of
 *                      that kind.
 * The event's exact bytes (base64 "data" of GET /v1/evidence/{id}/events)
 * are decoded, matched on "type", "evidence", "sha256" (and "kind"), and
 * hashed here with merkle_leaf; the served leaf_hash is never used. A
 * signed head covering the event is awaited (CLI_PROVE_WAIT_US), its note
 * checked with the pinned key (ledger_key_file, or the pin file when NULL),
 * and the inclusion proof checked against the signed root and size.
 *
 * Returns 0 and sets *out (the caller frees it) to
 *   {"index", "tree_size", "root" (hex), "origin", "leaf_hash" (hex)};
 * CU_ECORRUPT when anything differs (no such event, the event's sha256
 * differs, the head's signature is invalid, the key changed, the proof is
 * invalid), with a message naming it; other codes (CU_EIO, CU_EBUSY when no
 * head covers the event in time, ...) when the proof could not be made. */
int cli_prove(const client *cl, const char *ledger_key_file, const char *id, const char *what,
              const char *sha256, json_t **out);

/* Prints "custos <cmd>: proved by ledger entry N in the signed tree of
 * size S" to stderr for a proof cli_prove made. */
void cli_prove_report(const char *cmd, const json_t *proof);

#endif
