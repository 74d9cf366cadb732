/* Cases: the folders reviewers work in. Every change (creation, title,
 * status, tags, a link, an assignment) is written together with its ledger
 * event, so the case's history is as provable as the evidence's.
 *
 * actor is the object events carry for "who": {token_id, role, user}. A
 * case id is a UUIDv7, or a name given at creation (an incident number a
 * recorder may also send as case_id in its upload metadata). */
#ifndef CASES_H
#define CASES_H

#include <stdbool.h>

#include "idx.h"
#include "json.h"
#include "ledger.h"

/* in: {title, id?, tags?}. *out is the new record. CU_EINVAL (what is
 * wrong), CU_EEXISTS for an id in use. */
int cases_create(idx *ix, ledger *lg, const json_t *in, const json_t *actor, json_t **out);
/* patch: any of {title, status: open|closed, tags}; other keys are
 * CU_EINVAL. *out is the record after the change. */
int cases_update(idx *ix, ledger *lg, const char *id, const json_t *patch, const json_t *actor,
                 json_t **out);
/* Links or unlinks one item; *changed says whether it was not already so.
 * Linking into a closed case is CU_ECONFLICT. */
int cases_link(idx *ix, ledger *lg, const char *case_id, const char *evidence_id, bool link,
               const json_t *actor, bool *changed);
int cases_assign(idx *ix, ledger *lg, const char *case_id, const char *user, bool assign,
                 const json_t *actor, bool *changed);

/* The upload commit links an item to the case named in its metadata
 * (idx_batch_add_evidence writes the link itself). This adds to b the case,
 * if there is none with that id yet, and appends the events (case_created,
 * linked) to evs (room for 2). The caller holds cases_lock() until b is
 * committed, so two uploads cannot both create the case. */
void cases_lock(void);
void cases_unlock(void);
int cases_batch_ingest(idx *ix, idx_batch *b, const char *case_id, const char *evidence_id,
                       const json_t *actor, json_t **evs, int *n);

#endif
