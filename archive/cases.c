/* Case changes are read-modify-write of one record plus its ledger event;
 * one process-wide lock serialises them (they are rare next to uploads and
 * reads), so two changes can never both start from the same old record. */
#include "cases.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cu_limits.h"
#include "err.h"
#include "id.h"
#include "timeu.h"
#include "banned.h"

#define MAX_TITLE 200
#define MAX_TAGS 32

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void cases_lock(void) { pthread_mutex_lock(&lock); }
void cases_unlock(void) { pthread_mutex_unlock(&lock); }

static int check_title(const json_t *t) {
  if (!json_is_string(t)) return cu_error(CU_EINVAL, "title must be a string");
  const char *s = json_string_value(t);
  size_t n = json_string_length(t);
  if (!n || n > MAX_TITLE)
    return cu_error(CU_EINVAL, "title must be 1 to %d bytes of text", MAX_TITLE);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return cu_error(CU_EINVAL, "title must not hold control characters");
  return 0;
}

static int check_tags(const json_t *t) {
  if (!json_is_array(t)) return cu_error(CU_EINVAL, "tags must be an array of names");
  if (json_array_size(t) > MAX_TAGS) return cu_error(CU_EINVAL, "a case has at most %d tags", MAX_TAGS);
  size_t i;
  json_t *v;
  json_array_foreach(t, i, v) {
    if (!json_is_string(v) || !cu_name_valid(json_string_value(v)))
      return cu_error(CU_EINVAL, "each tag must be 1-128 characters of letters, digits and . _ : @ -");
  }
  return 0;
}

static json_t *event(const char *type, const char *case_id, const json_t *actor) {
  json_t *e = json_object();
  cu_json_set_str(e, "type", type);
  cu_json_set_str(e, "case", case_id);
  if (actor) json_object_set(e, "actor", (json_t *)actor);
  return e;
}

static json_t *new_record(const char *id, const json_t *title, const json_t *tags,
                          const json_t *actor, const char *origin) {
  json_t *rec = json_object();
  cu_json_set_str(rec, "id", id);
  json_object_set(rec, "title", (json_t *)title);
  cu_json_set_str(rec, "status", "open");
  json_object_set_new(rec, "tags", tags ? json_deep_copy(tags) : json_array());
  json_object_set_new(rec, "reviewers", json_array());
  int64_t now = cu_now_us();
  cu_json_set_time(rec, "created_at", now);
  cu_json_set_time(rec, "updated_at", now);
  if (actor) json_object_set(rec, "created_by", (json_t *)actor);
  cu_json_set_str(rec, "origin", origin);
  return rec;
}

static int commit(ledger *lg, idx_batch *b, json_t **evs, int n) {
  int rc = ledger_commit(lg, b, evs, n, NULL);
  for (int i = 0; i < n; i++) json_decref(evs[i]);
  return rc;
}

int cases_create(idx *ix, ledger *lg, const json_t *in, const json_t *actor, json_t **out) {
  if (!json_is_object(in)) return cu_error(CU_EINVAL, "the body must be a JSON object such as {\"title\": \"...\"}");
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)in, key, v) {
    if (strcmp(key, "title") && strcmp(key, "id") && strcmp(key, "tags"))
      return cu_error(CU_EINVAL, "unknown field '%.64s': a new case takes title, id and tags", key);
  }
  const json_t *title = json_object_get(in, "title"), *tags = json_object_get(in, "tags");
  if (!title) return cu_error(CU_EINVAL, "a case needs a title");
  int rc = check_title(title);
  if (!rc && tags) rc = check_tags(tags);
  if (rc) return rc;
  char id[CU_MAX_ID_LEN + 1];
  const json_t *given = json_object_get(in, "id");
  if (given) {
    if (!json_is_string(given) || !cu_name_valid(json_string_value(given)))
      return cu_error(CU_EINVAL, "id must be 1-128 characters of letters, digits and . _ : @ -");
    snprintf(id, sizeof id, "%s", json_string_value(given));
  } else {
    cu_id_new(id);
  }
  cases_lock();
  json_t *old = NULL;
  rc = idx_case_get(ix, id, &old);
  json_decref(old);
  if (!rc) {
    cases_unlock();
    return cu_error(CU_EEXISTS, "a case with id %s already exists", id);
  }
  if (rc != CU_ENOTFOUND) {
    cases_unlock();
    return rc;
  }
  json_t *rec = new_record(id, title, tags, actor, "api");
  idx_batch *b = idx_batch_new(ix);
  idx_batch_put_case(b, rec);
  json_t *ev = event("case_created", id, actor);
  json_object_set(ev, "title", (json_t *)title);
  json_object_set(ev, "tags", json_object_get(rec, "tags"));
  rc = commit(lg, b, &ev, 1);
  idx_batch_free(b);
  cases_unlock();
  if (rc) {
    json_decref(rec);
    return rc;
  }
  *out = rec;
  return 0;
}

/* Records one field's change in changes and rec; false if it is the same. */
static bool change(json_t *rec, json_t *changes, const char *field, json_t *to) {
  json_t *from = json_object_get(rec, field);
  if (from && json_equal(from, to)) return false;
  json_t *c = json_object();
  json_object_set_new(c, "from", from ? json_incref(from) : json_null());
  json_object_set(c, "to", to);
  json_object_set_new(changes, field, c);
  json_object_set(rec, field, to);
  return true;
}

int cases_update(idx *ix, ledger *lg, const char *id, const json_t *patch, const json_t *actor,
                 json_t **out) {
  if (!json_is_object(patch) || !json_object_size(patch))
    return cu_error(CU_EINVAL, "the body must be a JSON object with title, status or tags");
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)patch, key, v) {
    int rc = 0;
    if (!strcmp(key, "title")) rc = check_title(v);
    else if (!strcmp(key, "tags")) rc = check_tags(v);
    else if (!strcmp(key, "status")) {
      if (!json_is_string(v) || (strcmp(json_string_value(v), "open") && strcmp(json_string_value(v), "closed")))
        rc = cu_error(CU_EINVAL, "status must be open or closed");
    } else
      rc = cu_error(CU_EINVAL, "'%.64s' cannot be changed: a case's title, status and tags can", key);
    if (rc) return rc;
  }
  cases_lock();
  json_t *rec = NULL;
  int rc = idx_case_get(ix, id, &rec);
  if (rc) {
    cases_unlock();
    return rc;
  }
  json_t *changes = json_object();
  json_object_foreach((json_t *)patch, key, v) change(rec, changes, key, v);
  if (json_object_size(changes)) {
    int64_t now = cu_now_us();
    cu_json_set_time(rec, "updated_at", now);
    json_t *st = json_object_get(json_object_get(changes, "status"), "to");
    if (st && !strcmp(json_string_value(st), "closed")) cu_json_set_time(rec, "closed_at", now);
    else if (st) json_object_del(rec, "closed_at");
    idx_batch *b = idx_batch_new(ix);
    idx_batch_put_case(b, rec);
    json_t *ev = event("case_updated", id, actor);
    json_object_set(ev, "changes", changes);
    rc = commit(lg, b, &ev, 1);
    idx_batch_free(b);
  }
  cases_unlock();
  json_decref(changes);
  if (rc) {
    json_decref(rec);
    return rc;
  }
  *out = rec;
  return 0;
}

typedef struct {
  ledger *lg;
  json_t *ev;
} link_commit;

static int commit_link(idx_batch *b, void *ud) {
  link_commit *c = ud;
  return ledger_commit(c->lg, b, &c->ev, 1, NULL);
}

int cases_link(idx *ix, ledger *lg, const char *case_id, const char *evidence_id, bool link,
               const json_t *actor, bool *changed) {
  *changed = false;
  cases_lock();
  json_t *rec = NULL, *ev_rec = NULL;
  bool linked = false;
  int rc = idx_case_get(ix, case_id, &rec);
  if (!rc) rc = idx_evidence_get(ix, evidence_id, &ev_rec);
  if (!rc) rc = idx_case_has_evidence(ix, case_id, evidence_id, &linked);
  if (!rc && link && !linked && !strcmp(cu_json_str(rec, "status"), "closed"))
    rc = cu_error(CU_ECONFLICT, "case %s is closed: reopen it (status open) before linking evidence", case_id);
  if (!rc && linked != link) {
    idx_batch *b = idx_batch_new(ix);
    json_t *ev = event(link ? "linked" : "unlinked", case_id, actor);
    cu_json_set_str(ev, "evidence", evidence_id);
    cu_json_set_str(ev, "sha256", cu_json_str(ev_rec, "sha256"));
    link_commit lc = {lg, ev};
    rc = idx_evidence_link(ix, b, case_id, evidence_id, link, commit_link, &lc);
    json_decref(ev);
    idx_batch_free(b);
    *changed = !rc;
  }
  cases_unlock();
  json_decref(rec);
  json_decref(ev_rec);
  return rc;
}

int cases_assign(idx *ix, ledger *lg, const char *case_id, const char *user, bool assign,
                 const json_t *actor, bool *changed) {
  *changed = false;
  if (!cu_name_valid(user))
    return cu_error(CU_EINVAL, "a user name is 1-128 characters of letters, digits and . _ : @ -");
  cases_lock();
  json_t *rec = NULL;
  bool now = false;
  int rc = idx_case_get(ix, case_id, &rec);
  if (!rc) rc = idx_case_assigned(ix, case_id, user, &now);
  if (!rc && now != assign) {
    json_t *list = json_object_get(rec, "reviewers"), *kept = json_array();
    size_t i;
    json_t *u;
    json_array_foreach(list, i, u) {
      if (strcmp(json_string_value(u), user)) json_array_append(kept, u);
    }
    if (assign) json_array_append_new(kept, json_string(user));
    json_object_set_new(rec, "reviewers", kept);
    cu_json_set_time(rec, "updated_at", cu_now_us());
    idx_batch *b = idx_batch_new(ix);
    idx_batch_put_case(b, rec);
    idx_batch_assign(b, case_id, user, assign);
    json_t *ev = event(assign ? "reviewer_assigned" : "reviewer_unassigned", case_id, actor);
    cu_json_set_str(ev, "user", user);
    rc = commit(lg, b, &ev, 1);
    idx_batch_free(b);
    *changed = !rc;
  }
  cases_unlock();
  json_decref(rec);
  return rc;
}

int cases_batch_ingest(idx *ix, idx_batch *b, const char *case_id, const char *evidence_id,
                       const json_t *actor, json_t **evs, int *n) {
  json_t *rec = NULL;
  int rc = idx_case_get(ix, case_id, &rec);
  if (rc == CU_ENOTFOUND) {
    /* A recorder named a case nobody has opened yet (the officer typed the
     * incident number on the dock): open it, titled by its id, so the
     * recording is in it from the first moment. */
    json_t *title = json_string(case_id);
    rec = new_record(case_id, title, NULL, actor, "upload");
    idx_batch_put_case(b, rec);
    json_t *ev = event("case_created", case_id, actor);
    json_object_set_new(ev, "title", title);
    cu_json_set_str(ev, "origin", "upload");
    evs[(*n)++] = ev;
    rc = 0;
  }
  json_decref(rec);
  if (rc) return rc;
  json_t *ev = event("linked", case_id, actor);
  cu_json_set_str(ev, "evidence", evidence_id);
  cu_json_set_str(ev, "origin", "upload");
  evs[(*n)++] = ev;
  return 0;
}
