/* The scrubber: re-reads every stored object and checks it still hashes to
 * its name, slowly and forever in the background (so bit rot or tampering
 * is found without anyone asking), or in one full-speed pass on request
 * (`custos scrub`). A mismatch or a missing object is an alarm: logged,
 * counted, marked on the evidence record ("integrity") and appended to the
 * ledger as a scrub_failed event, once per item and finding. */
#ifndef SCRUB_H
#define SCRUB_H

#include <stdatomic.h>
#include <stdint.h>

#include "idx.h"
#include "json.h"
#include "ledger.h"
#include "store.h"

typedef struct scrubber scrubber;

typedef struct {
  int64_t rate;          /* background bytes per second; 0 = no background scrub */
  int64_t pass_rate;     /* bytes per second of a requested pass; 0 = unthrottled */
  int64_t idle_after_us; /* pause between background passes */
} scrub_opts;

int scrub_start(scrubber **out, idx *ix, store *st, ledger *lg, const scrub_opts *opts);
/* Stops the thread (a pass in progress is abandoned; nothing is half-written). */
void scrub_free(scrubber *s);

/* Starts a full pass now, unless one is running (then that one is the
 * answer). Returns the pass's status as scrub_status() does. */
json_t *scrub_request(scrubber *s);
/* {"running": bool, "pass": {...} or null, "background": {...}}: a pass has
 * started_at, finished_at, objects, bytes and failures[{evidence, sha256,
 * actual_sha256|null, reason}]. */
json_t *scrub_status(scrubber *s);

typedef struct {
  uint64_t objects, bytes, failures;
} scrub_counts;
void scrub_totals(scrubber *s, scrub_counts *out);

/* Re-hashes one object (at most rate bytes per second, 0 = unthrottled;
 * *stop, if set, abandons it). 0 when it matches; CU_ECORRUPT when the bytes
 * hash to something else (actual is filled) and CU_ENOTFOUND when the
 * object is gone, with a message saying so. */
int scrub_object(store *st, const char *sha256, int64_t rate, const atomic_int *stop,
                 char actual[65], uint64_t *bytes);

#endif
