/* `custos verify BAG`: checks an export bag (docs/EXPORT.md) offline,
 * trusting nothing in it but what can be checked: the BagIt 1.0 structure
 * and every checksum (RFC 8493), the signed tree head under the bag's
 * ledger key (and under a key given from outside), every event's inclusion
 * proof to that head (RFC 9162), that every payload file is recorded by a
 * proved event and every derived copy's source is an original in the bag,
 * every RFC 3161 token, and that REPORT.json agrees with the manifests.
 *
 * Memory is bounded by the number of files and events of one item, never
 * by bytes: files are hashed in chunks, events.jsonl is read line by line
 * with a cap on a line, manifests likewise (limits below). */
#ifndef BAG_VERIFY_H
#define BAG_VERIFY_H

#include <stdint.h>

#include "json.h"

/* A manifest line: a SHA-512 in hex, whitespace and a path of at most
 * BAG_MAX_PATH bytes, with room for percent-encoding. */
#define BAG_MAX_PATH 4096
#define BAG_MAX_MANIFEST_LINE (3 * BAG_MAX_PATH + 256)
/* An events.jsonl line: the base64 of one ledger event (a few KiB in
 * practice; an event carries at most a record's metadata, 4 MiB) and its
 * audit path (at most 64 hashes). */
#define BAG_MAX_EVENT_LINE (8 * 1024 * 1024)
/* Files in one bag: each costs a few hundred bytes of bookkeeping; a case
 * of a million files is past anything one export is for. */
#define BAG_MAX_FILES 1000000
/* Directory depth of a bag (the layout needs 4: data/<id>/<kind>/<name>). */
#define BAG_MAX_DEPTH 32
/* REPORT.json is parsed whole (it is one JSON document): its size is
 * checked first. 256 MiB covers ~100,000 items with their events. */
#define BAG_MAX_REPORT_BYTES (256 * 1024 * 1024)
/* The TSA roots: a handful of PEM certificates. */
#define BAG_MAX_CA_BYTES (8 * 1024 * 1024)
/* One time-stamp token, sth.json, bag-info.txt: small documents. */
#define BAG_MAX_SMALL_FILE (1024 * 1024)

typedef struct {
  const char *bag;         /* the bag's base directory */
  const char *ledger_key;  /* a vkey file the head must also verify under (may be NULL);
                              it must be the bag's own key, or the check fails naming both */
  const char *tsa_ca_file; /* trust these TSA roots (PEM) instead of custody/tsa-root.pem */
  /* Called now and then while files are hashed (may be NULL). */
  void (*progress)(void *ud, uint64_t bytes_done, uint64_t bytes_total);
  void *ud;
} bag_verify_opts;

/* Returns 0 when the checks ran, whatever they found; *report (the caller
 * owns it) is
 *   {"bag", "ok",
 *    "checked": {"files", "bytes", "tag_files", "manifests", "events",
 *                "proofs", "tokens", "items", "tree_size", "origin"},
 *    "checks": {"bagit"|"sth"|"proofs"|"custody"|"timestamps"|"report":
 *               {"ok", "failures"}},
 *    "failures": [{"check", "path"?, "evidence"?, "index"?, "line"?,
 *                  "message"}],
 *    "warnings": [...same...], "failure_count", "warning_count"}
 * where each message names what differs: the file and the expected and
 * actual hashes, the events.jsonl line and ledger index, the token file.
 * An error (CU_ENOTFOUND, CU_EINVAL, CU_EIO) means the checks could not
 * run: no such directory, or it cannot be read. */
int bag_verify(const bag_verify_opts *o, json_t **report);

#endif
