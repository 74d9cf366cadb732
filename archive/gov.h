/* Governance: retention, legal holds, and the two-person rule.
 *
 * No major decision is taken by one person. Deleting evidence, lifting a
 * hold and moving an item to a shorter retention each need a request by one
 * user and an approval by a different user with the legal role; only then
 * does the action run. Request, approval or refusal, and the action are
 * ledger events, each written together with the records it changes.
 *
 * Retention: each item has a category (set on upload metadata "retention",
 * or later); a category's rule gives the earliest date it may be deleted:
 *   after  N days/years after it was recorded ("90d", "7y");
 *   closed N after the last of its cases was closed ("closed+7y"); none
 *          while it is in no case or a case is open;
 *   never  (permanent).
 * The sweep proposes deletions that are due; it never deletes: a proposal
 * becomes a request only when a person makes it one.
 *
 * A hold on a case or an item stops every deletion of what it covers
 * (CU_ECONFLICT naming the hold) until it is released (two persons).
 *
 * Deletion writes a tombstone (the record stays: state "deleted", its hash,
 * the reason, requester and approver) and marks the item's renditions
 * deleted, in one write with the events; the purge (gov_purge, run as a
 * job) then removes the bytes that no other item shares. */
#ifndef GOV_H
#define GOV_H

#include <stdbool.h>
#include <stdint.h>

#include "idx.h"
#include "json.h"
#include "ledger.h"
#include "store.h"

#define GOV_MAX_CATEGORIES 16
#define GOV_CATEGORY_LEN 48

typedef enum { GOV_AFTER_RECORDED, GOV_AFTER_CLOSED, GOV_NEVER } gov_rule;

typedef struct {
  char name[GOV_CATEGORY_LEN];
  gov_rule rule;
  int64_t period_us; /* after recording, or after the cases closed */
  char text[32];     /* the rule as configured: "90d", "closed+7y", "never" */
} gov_category;

typedef struct {
  gov_category cat[GOV_MAX_CATEGORIES];
  int n;
  bool export_needs_approval;
} gov_config;

/* uncategorized=90d, evidentiary=closed+7y, permanent=never; the first is
 * the default of an item that names none. */
void gov_config_defaults(gov_config *c);
/* "name=RULE" adds or replaces a category (RULE: Nd, Ny, closed+Nd,
 * closed+Ny, never). CU_EINVAL with the reason. */
int gov_config_set(gov_config *c, const char *spec);
/* NULL-terminated names, for validating upload metadata. */
void gov_category_names(const gov_config *c, const char *names[GOV_MAX_CATEGORIES + 1]);

typedef struct gov gov;
/* Called with the batch of a deletion's tombstone (queue the purge job). */
typedef void (*gov_deleted_hook)(void *ud, idx_batch *b, const char *evidence_id);
/* Called with the batch of a decided export request (approved: queue the
 * export job; refused: the export record says so). */
typedef void (*gov_export_hook)(void *ud, idx_batch *b, const char *export_id, bool approved);

/* exports_dir: where export bags live (a purge withdraws those holding the
 * deleted item); may be NULL. */
int gov_open(gov **out, idx *ix, ledger *lg, store *st, const char *exports_dir,
             const gov_config *cfg);
void gov_set_hooks(gov *g, gov_deleted_hook deleted, gov_export_hook exported, void *ud);
void gov_free(gov *g);
const gov_config *gov_config_of(gov *g);

/* The item's retention: {category, rule, earliest_deletion_at (RFC 3339 or
 * null), why (when null)}. rec is the record as idx_evidence_get gives it. */
int gov_retention(gov *g, const json_t *rec, json_t **out);
/* Sets an item's category. A change that makes it deletable sooner becomes
 * a request (*request set, nothing changed yet); otherwise it is applied
 * (retention_set event) and *request stays NULL. */
int gov_set_retention(gov *g, const char *evidence_id, const char *category, const char *reason,
                      const json_t *actor, json_t **request);

/* Holds. kind 'c' (case) or 'e' (evidence). */
int gov_hold_set(gov *g, char kind, const char *target, const char *reason, const json_t *actor,
                 json_t **hold);
/* The active holds covering an item (its own and its cases'), as an array;
 * rec is its record as idx_evidence_get gives it (with "cases"). */
int gov_holds_covering(gov *g, const json_t *rec, json_t **out);

/* Requests: in = {action: delete|release_hold|shorten_retention|export,
 * evidence | hold | export, category (shorten_retention), reason}. A
 * proposal of the sweep for the same item is adopted. */
int gov_request(gov *g, const json_t *in, const json_t *actor, json_t **req);
/* When exports need approval: puts in b a pending request to export
 * export_id (of case_id) by actor, and gives its event for the caller's
 * ledger_commit of b (which holds the export record too). */
int gov_batch_request_export(gov *g, idx_batch *b, const char *export_id, const char *case_id,
                             const json_t *actor, json_t **req, json_t **event);
/* Approves (running the action) or refuses a pending request. The decider
 * must be another user than the requester (CU_EDENIED); the caller checks
 * the legal role. CU_ECONFLICT when the request is not pending, or (delete)
 * a hold covers the item: the request then stays pending. */
int gov_decide(gov *g, const char *request_id, bool approve, const char *reason,
               const json_t *actor, json_t **req);

/* Removes the objects of a deleted item that no live item shares, and the
 * export bags on the server that hold a copy of it (their records say
 * "withdrawn"), and records what went ("purged" event). Safe to repeat. */
int gov_purge(gov *g, const char *evidence_id);
/* Proposes the deletion of every item whose retention is over, that no hold
 * covers and that has no open request; *proposed counts them. */
int gov_sweep(gov *g, int64_t now_us, int *proposed);

#endif
