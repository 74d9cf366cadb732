/* DESIGN: every governance change is one write: the records it changes and
 * its ledger events go through one ledger_commit. Decisions are serialised
 * by one lock (they are rare), so two approvals of the same request, or an
 * approval racing a hold, cannot both start from the same state. The
 * evidence record itself is changed under the index's update lock
 * (idx_evidence_update_by), so a probe result written at the same moment is
 * not lost. */
#include "gov.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_limits.h"
#include "err.h"
#include "export.h"
#include "id.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

#define DAY_US (86400LL * 1000000)
#define YEAR_US (365LL * DAY_US + DAY_US / 4) /* a Julian year: 365.25 days */
#define MAX_REASON 1000

struct gov {
  char *exports_dir;
  idx *ix;
  ledger *lg;
  store *st;
  gov_config cfg;
  pthread_mutex_t mu;
  gov_deleted_hook deleted;
  gov_export_hook exported;
  void *hook_ud;
};

/* ---- configuration -------------------------------------------------------- */

void gov_config_defaults(gov_config *c) {
  memset(c, 0, sizeof *c);
  gov_config_set(c, "uncategorized=90d");
  gov_config_set(c, "evidentiary=closed+7y");
  gov_config_set(c, "permanent=never");
}

int gov_config_set(gov_config *c, const char *spec) {
  const char *eq = spec ? strchr(spec, '=') : NULL;
  if (!eq || eq == spec || (size_t)(eq - spec) >= GOV_CATEGORY_LEN)
    return cu_error(CU_EINVAL, "a retention category is NAME=RULE (RULE: 90d, 7y, closed+7y or never), not '%.64s'", spec ? spec : "");
  char name[GOV_CATEGORY_LEN];
  memcpy(name, spec, (size_t)(eq - spec));
  name[eq - spec] = '\0';
  if (!cu_name_valid(name)) return cu_error(CU_EINVAL, "retention category '%s' is not a valid name", name);
  gov_category k = {0};
  snprintf(k.name, sizeof k.name, "%s", name);
  const char *r = eq + 1;
  snprintf(k.text, sizeof k.text, "%.31s", r);
  if (!strcmp(r, "never")) {
    k.rule = GOV_NEVER;
  } else {
    k.rule = strncmp(r, "closed+", 7) ? GOV_AFTER_RECORDED : GOV_AFTER_CLOSED;
    if (k.rule == GOV_AFTER_CLOSED) r += 7;
    char num[16];
    size_t n = strlen(r);
    int64_t v;
    if (n < 2 || n - 1 >= sizeof num || (r[n - 1] != 'd' && r[n - 1] != 'y'))
      return cu_error(CU_EINVAL, "retention rule '%s' must be Nd, Ny, closed+Nd, closed+Ny or never", eq + 1);
    memcpy(num, r, n - 1);
    num[n - 1] = '\0';
    if (cu_parse_i64(num, &v, 0) || v < 0 || v > 1000)
      return cu_error(CU_EINVAL, "retention rule '%s': the number must be 0 to 1000", eq + 1);
    k.period_us = v * (r[n - 1] == 'd' ? DAY_US : YEAR_US);
  }
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->cat[i].name, k.name)) {
      c->cat[i] = k;
      return 0;
    }
  if (c->n == GOV_MAX_CATEGORIES) return cu_error(CU_EINVAL, "at most %d retention categories", GOV_MAX_CATEGORIES);
  c->cat[c->n++] = k;
  return 0;
}

void gov_category_names(const gov_config *c, const char *names[GOV_MAX_CATEGORIES + 1]) {
  int i;
  for (i = 0; i < c->n; i++) names[i] = c->cat[i].name;
  names[i] = NULL;
}

static const gov_category *category(const gov *g, const char *name) {
  for (int i = 0; i < g->cfg.n; i++)
    if (name && !strcmp(g->cfg.cat[i].name, name)) return &g->cfg.cat[i];
  return NULL;
}

int gov_open(gov **out, idx *ix, ledger *lg, store *st, const char *exports_dir,
             const gov_config *cfg) {
  gov *g = cu_xcalloc(1, sizeof *g);
  g->exports_dir = exports_dir ? cu_xstrdup(exports_dir) : NULL;
  g->ix = ix;
  g->lg = lg;
  g->st = st;
  if (cfg) g->cfg = *cfg;
  else gov_config_defaults(&g->cfg);
  if (!g->cfg.n) gov_config_defaults(&g->cfg);
  pthread_mutex_init(&g->mu, NULL);
  *out = g;
  return 0;
}

void gov_set_hooks(gov *g, gov_deleted_hook deleted, gov_export_hook exported, void *ud) {
  g->deleted = deleted;
  g->exported = exported;
  g->hook_ud = ud;
}

void gov_free(gov *g) {
  if (!g) return;
  pthread_mutex_destroy(&g->mu);
  free(g->exports_dir);
  free(g);
}

const gov_config *gov_config_of(gov *g) { return &g->cfg; }

/* ---- retention ------------------------------------------------------------ */

static const char *category_of(const gov *g, const json_t *rec) {
  const char *c = cu_json_str(json_object_get(rec, "retention"), "category");
  if (!c) c = cu_json_str(rec, "retention_category"); /* from the upload's metadata */
  return c && category(g, c) ? c : g->cfg.cat[0].name;
}

/* Earliest deletion under cat, or INT64_MAX (never / not yet known), with why. */
static int64_t earliest(gov *g, const gov_category *cat, const json_t *rec, char *why, size_t n) {
  int64_t t;
  if (cat->rule == GOV_NEVER) {
    snprintf(why, n, "%s is kept permanently", cat->name);
    return INT64_MAX;
  }
  if (cat->rule == GOV_AFTER_RECORDED) {
    if (cu_time_parse_rfc3339(cu_json_str(rec, "recorded_at") ? cu_json_str(rec, "recorded_at") : "", &t)) {
      snprintf(why, n, "the item has no recording time");
      return INT64_MAX;
    }
    return t > INT64_MAX - cat->period_us ? INT64_MAX : t + cat->period_us;
  }
  json_t *cases = json_object_get(rec, "cases");
  if (!json_array_size(cases)) {
    snprintf(why, n, "kept until its case is closed, and it is in no case");
    return INT64_MAX;
  }
  int64_t last = INT64_MIN;
  size_t i;
  json_t *c;
  json_array_foreach(cases, i, c) {
    json_t *cr = NULL;
    if (idx_case_get(g->ix, json_string_value(c), &cr)) continue;
    const char *closed = cu_json_str(cr, "closed_at");
    bool open = strcmp(cu_json_str(cr, "status") ? cu_json_str(cr, "status") : "", "closed");
    if (open || !closed || cu_time_parse_rfc3339(closed, &t)) {
      snprintf(why, n, "kept until its case %s is closed", json_string_value(c));
      json_decref(cr);
      return INT64_MAX;
    }
    if (t > last) last = t;
    json_decref(cr);
  }
  return last > INT64_MAX - cat->period_us ? INT64_MAX : last + cat->period_us;
}

int gov_retention(gov *g, const json_t *rec, json_t **out) {
  const gov_category *cat = category(g, category_of(g, rec));
  char why[256] = "";
  int64_t t = earliest(g, cat, rec, why, sizeof why);
  json_t *o = json_object();
  cu_json_set_str(o, "category", cat->name);
  cu_json_set_str(o, "rule", cat->text);
  if (t == INT64_MAX) {
    json_object_set_new(o, "earliest_deletion_at", json_null());
    cu_json_set_str(o, "why", why);
  } else {
    cu_json_set_time(o, "earliest_deletion_at", t);
  }
  json_t *r = json_object_get(rec, "retention");
  if (r) {
    json_object_set(o, "set_by", json_object_get(r, "set_by"));
    json_object_set(o, "set_at", json_object_get(r, "set_at"));
  }
  *out = o;
  return 0;
}

/* ---- events and commits ---------------------------------------------------- */

static json_t *event(const char *type, const json_t *actor) {
  json_t *e = json_object();
  cu_json_set_str(e, "type", type);
  if (actor) json_object_set(e, "actor", (json_t *)actor);
  return e;
}

typedef struct {
  ledger *lg;
  json_t **evs;
  int n;
} commit_ctx;

static int commit_events(idx_batch *b, void *ud) {
  commit_ctx *c = ud;
  return ledger_commit(c->lg, b, c->evs, c->n, NULL);
}

static void free_events(json_t **evs, int n) {
  for (int i = 0; i < n; i++) json_decref(evs[i]);
}

static int check_reason(const char *reason, bool required) {
  if (!reason || !*reason)
    return required ? cu_error(CU_EINVAL, "a reason is required (who reads the ledger later needs to know why)") : 0;
  if (strlen(reason) > MAX_REASON) return cu_error(CU_EINVAL, "the reason is longer than %d bytes", MAX_REASON);
  for (const char *p = reason; *p; p++)
    if ((unsigned char)*p < 0x20 && *p != '\n') return cu_error(CU_EINVAL, "the reason holds a control character");
  return 0;
}

static const char *user_of(const json_t *actor) {
  const char *u = cu_json_str(actor, "user");
  return u && *u ? u : NULL;
}

/* ---- holds ------------------------------------------------------------------ */

int gov_hold_set(gov *g, char kind, const char *target, const char *reason, const json_t *actor,
                 json_t **hold) {
  int rc = check_reason(reason, true);
  if (rc) return rc;
  json_t *t = NULL;
  rc = kind == 'c' ? idx_case_get(g->ix, target, &t) : idx_evidence_get(g->ix, target, &t);
  json_decref(t);
  if (rc) return rc;
  char id[CU_ID_LEN + 1];
  cu_id_new(id);
  json_t *h = json_object();
  cu_json_set_str(h, "id", id);
  cu_json_set_str(h, "target", kind == 'c' ? "case" : "evidence");
  cu_json_set_str(h, kind == 'c' ? "case" : "evidence", target);
  cu_json_set_str(h, "reason", reason);
  cu_json_set_str(h, "state", "active");
  json_object_set(h, "set_by", (json_t *)actor);
  cu_json_set_time(h, "set_at", cu_now_us());
  json_t *ev = event("hold_set", actor);
  cu_json_set_str(ev, "hold", id);
  cu_json_set_str(ev, kind == 'c' ? "case" : "evidence", target);
  cu_json_set_str(ev, "reason", reason);
  idx_batch *b = idx_batch_new(g->ix);
  idx_batch_put_hold(b, h);
  pthread_mutex_lock(&g->mu);
  rc = ledger_commit(g->lg, b, &ev, 1, NULL);
  pthread_mutex_unlock(&g->mu);
  idx_batch_free(b);
  json_decref(ev);
  if (rc) {
    json_decref(h);
    return rc;
  }
  *hold = h;
  return 0;
}

int gov_holds_covering(gov *g, const json_t *rec, json_t **out) {
  json_t *all = NULL;
  int rc = idx_holds_on(g->ix, 'e', cu_json_str(rec, "id"), &all);
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(rec, "cases"), i, c) {
    json_t *more = NULL;
    if (rc || (rc = idx_holds_on(g->ix, 'c', json_string_value(c), &more))) break;
    json_array_extend(all, more);
    json_decref(more);
  }
  if (rc) {
    json_decref(all);
    return rc;
  }
  *out = all;
  return 0;
}

/* CU_ECONFLICT naming the first hold covering the item (rec as
 * idx_evidence_get gives it), or 0. */
static int not_held(gov *g, const json_t *rec) {
  json_t *holds = NULL;
  int rc = gov_holds_covering(g, rec, &holds);
  if (rc) return rc;
  json_t *h = json_array_get(holds, 0);
  if (h) {
    const char *on_case = cu_json_str(h, "case"), *by = user_of(json_object_get(h, "set_by"));
    rc = cu_error(CU_ECONFLICT, "evidence %s is under legal hold %s (%s%s: \"%s\", set by %s at %s); nothing can delete it until the hold is released",
                  cu_json_str(rec, "id"), cu_json_str(h, "id"), on_case ? "on case " : "on the item",
                  on_case ? on_case : "", cu_json_str(h, "reason"), by ? by : "?", cu_json_str(h, "set_at"));
  }
  json_decref(holds);
  return rc;
}

/* ---- requests ---------------------------------------------------------------- */

static const struct {
  const char *action, *requested, *approved, *refused;
} kinds[] = {
    {"delete", "deletion_requested", "deletion_approved", "deletion_refused"},
    {"release_hold", "hold_release_requested", "hold_release_approved", "hold_release_refused"},
    {"shorten_retention", "retention_change_requested", "retention_change_approved", "retention_change_refused"},
    {"export", "export_requested", "export_approved", "export_refused"},
};

static int kind_of(const char *action) {
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
    if (action && !strcmp(kinds[i].action, action)) return (int)i;
  return -1;
}

/* The request's target fields, copied onto its events. */
static void copy_target(json_t *to, const json_t *req) {
  static const char *const keys[] = {"request", "action", "evidence", "hold", "export", "case", "category"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    json_t *v = json_object_get(req, !strcmp(keys[i], "request") ? "id" : keys[i]);
    if (v && !json_is_null(v)) json_object_set(to, keys[i], v);
  }
}

/* An open (proposed or pending) request for the same action and target. */
static int find_open(gov *g, const char *action, const char *key, const char *target, json_t **out) {
  *out = NULL;
  json_t *list = NULL;
  int rc = idx_request_list(g->ix, NULL, 0, &list);
  if (rc) return rc;
  size_t i;
  json_t *r;
  json_array_foreach(list, i, r) {
    const char *st = cu_json_str(r, "state");
    if (st && (!strcmp(st, "pending") || !strcmp(st, "proposed")) && !strcmp(cu_json_str(r, "action"), action) &&
        cu_json_str(r, key) && !strcmp(cu_json_str(r, key), target)) {
      *out = json_incref(r);
      break;
    }
  }
  json_decref(list);
  return 0;
}

static int shorter(gov *g, const json_t *rec, const char *to) {
  char why[256];
  int64_t now = earliest(g, category(g, category_of(g, rec)), rec, why, sizeof why);
  int64_t then = earliest(g, category(g, to), rec, why, sizeof why);
  return then < now;
}

static int new_request(gov *g, const char *action, const char *key, const char *target,
                       const char *category_name, const char *reason, const json_t *actor,
                       const char *state, json_t **req) {
  json_t *open = NULL;
  int rc = find_open(g, action, key, target, &open);
  if (rc) return rc;
  int k = kind_of(action);
  json_t *r = open;
  bool adopting = open && !strcmp(cu_json_str(open, "state"), "proposed") && strcmp(state, "proposed");
  if (open && !adopting) {
    rc = cu_error(CU_ECONFLICT, "request %s (%s of %s %s) is already open; approve or refuse it", cu_json_str(open, "id"),
                  action, key, target);
    json_decref(open);
    return rc;
  }
  if (!r) {
    char id[CU_ID_LEN + 1];
    cu_id_new(id);
    r = json_object();
    cu_json_set_str(r, "id", id);
    cu_json_set_str(r, "action", action);
    cu_json_set_str(r, key, target);
    if (category_name) cu_json_set_str(r, "category", category_name);
  }
  if (adopting) json_object_set(r, "proposal", json_object_get(r, "reason"));
  cu_json_set_str(r, "state", state);
  cu_json_set_str(r, "reason", reason);
  json_object_set(r, "requested_by", (json_t *)actor);
  cu_json_set_time(r, "requested_at", cu_now_us());
  json_t *ev = event(!strcmp(state, "proposed") ? "deletion_proposed" : kinds[k].requested, actor);
  copy_target(ev, r);
  cu_json_set_str(ev, "reason", reason);
  idx_batch *b = idx_batch_new(g->ix);
  idx_batch_put_request(b, r);
  rc = ledger_commit(g->lg, b, &ev, 1, NULL);
  idx_batch_free(b);
  json_decref(ev);
  if (rc) {
    json_decref(r);
    return rc;
  }
  *req = r;
  return 0;
}

int gov_request(gov *g, const json_t *in, const json_t *actor, json_t **req) {
  const char *action = cu_json_str(in, "action"), *reason = cu_json_str(in, "reason");
  int k = kind_of(action), rc;
  if (k < 0 || !strcmp(action, "export"))
    return cu_error(CU_EINVAL, "action must be delete, release_hold or shorten_retention");
  if ((rc = check_reason(reason, true))) return rc;
  if (!user_of(actor)) return cu_error(CU_EDENIED, "only a token with a user name can make a request (the approver must be someone else)");
  pthread_mutex_lock(&g->mu);
  json_t *t = NULL;
  if (!strcmp(action, "release_hold")) {
    const char *hid = cu_json_str(in, "hold");
    if (!hid) rc = cu_error(CU_EINVAL, "release_hold needs the hold's id (hold)");
    else if (!(rc = idx_hold_get(g->ix, hid, &t)) && strcmp(cu_json_str(t, "state"), "active"))
      rc = cu_error(CU_ECONFLICT, "hold %s is already released", hid);
    if (!rc) rc = new_request(g, action, "hold", hid, NULL, reason, actor, "pending", req);
  } else {
    const char *eid = cu_json_str(in, "evidence"), *cat = cu_json_str(in, "category");
    if (!eid) rc = cu_error(CU_EINVAL, "%s needs the evidence id (evidence)", action);
    else if (!(rc = idx_evidence_get(g->ix, eid, &t)) && !strcmp(cu_json_str(t, "state") ? cu_json_str(t, "state") : "", "deleted"))
      rc = cu_error(CU_EGONE, "evidence %s is already deleted", eid);
    if (!rc && !strcmp(action, "delete")) rc = not_held(g, t);
    if (!rc && !strcmp(action, "shorten_retention")) {
      if (!category(g, cat)) rc = cu_error(CU_EINVAL, "category must be a configured retention category");
      else if (!shorter(g, t, cat)) rc = cu_error(CU_EINVAL, "moving %s to %s does not shorten its retention; set it directly", eid, cat);
    }
    if (!rc) rc = new_request(g, action, "evidence", eid, !strcmp(action, "shorten_retention") ? cat : NULL, reason, actor,
                              "pending", req);
  }
  pthread_mutex_unlock(&g->mu);
  json_decref(t);
  return rc;
}

typedef struct {
  const json_t *req, *actor;
  const char *category;
  int64_t now;
} apply_ctx;

static int apply_retention(json_t *rec, void *ud);

int gov_batch_request_export(gov *g, idx_batch *b, const char *export_id, const char *case_id,
                             const json_t *actor, json_t **req, json_t **event_out) {
  if (!user_of(actor))
    return cu_error(CU_EDENIED, "only a token with a user name can ask for an export (the approver must be someone else)");
  char id[CU_ID_LEN + 1], reason[300];
  cu_id_new(id);
  snprintf(reason, sizeof reason, "export %s of case %s", export_id, case_id);
  json_t *r = json_object();
  cu_json_set_str(r, "id", id);
  cu_json_set_str(r, "action", "export");
  cu_json_set_str(r, "export", export_id);
  cu_json_set_str(r, "case", case_id);
  cu_json_set_str(r, "state", "pending");
  cu_json_set_str(r, "reason", reason);
  json_object_set(r, "requested_by", (json_t *)actor);
  cu_json_set_time(r, "requested_at", cu_now_us());
  idx_batch_put_request(b, r);
  json_t *ev = event("export_requested", actor);
  copy_target(ev, r);
  cu_json_set_str(ev, "reason", reason);
  *req = r;
  *event_out = ev;
  return 0;
}

int gov_set_retention(gov *g, const char *evidence_id, const char *cat_name, const char *reason,
                      const json_t *actor, json_t **request) {
  *request = NULL;
  const gov_category *cat = category(g, cat_name);
  if (!cat) {
    cu_buf names = CU_BUF_INIT(1024);
    for (int i = 0; i < g->cfg.n; i++) cu_buf_printf(&names, "%s%s", i ? ", " : "", g->cfg.cat[i].name);
    int rc = cu_error(CU_EINVAL, "unknown retention category '%.64s' (configured: %s)", cat_name ? cat_name : "", names.data);
    cu_buf_release(&names);
    return rc;
  }
  int rc = check_reason(reason, false);
  if (rc) return rc;
  json_t *rec = NULL;
  if ((rc = idx_evidence_get(g->ix, evidence_id, &rec))) return rc;
  if (!strcmp(cu_json_str(rec, "state") ? cu_json_str(rec, "state") : "", "deleted")) {
    json_decref(rec);
    return cu_error(CU_EGONE, "evidence %s is deleted", evidence_id);
  }
  bool shorten = shorter(g, rec, cat->name);
  json_decref(rec);
  if (shorten) {
    json_t *in = json_object();
    cu_json_set_str(in, "action", "shorten_retention");
    cu_json_set_str(in, "evidence", evidence_id);
    cu_json_set_str(in, "category", cat->name);
    cu_json_set_str(in, "reason", reason && *reason ? reason : "a shorter retention category was asked for");
    rc = gov_request(g, in, actor, request);
    json_decref(in);
    return rc;
  }
  json_t *ev = event("retention_set", actor);
  cu_json_set_str(ev, "evidence", evidence_id);
  cu_json_set_str(ev, "category", cat->name);
  cu_json_set_str(ev, "reason", reason);
  commit_ctx cc = {g->lg, &ev, 1};
  apply_ctx ac = {NULL, actor, cat->name, cu_now_us()};
  pthread_mutex_lock(&g->mu);
  rc = idx_evidence_update_by(g->ix, NULL, evidence_id, apply_retention, &ac, commit_events, &cc);
  pthread_mutex_unlock(&g->mu);
  free_events(&ev, 1);
  return rc;
}

/* ---- decisions --------------------------------------------------------------- */

static int apply_retention(json_t *rec, void *ud) {
  apply_ctx *a = ud;
  json_t *r = json_object();
  cu_json_set_str(r, "category", a->category);
  json_object_set(r, "set_by", (json_t *)a->actor);
  cu_json_set_time(r, "set_at", a->now);
  if (a->req) cu_json_set_str(r, "request", cu_json_str(a->req, "id"));
  json_object_set_new(rec, "retention", r);
  return 0;
}

static int apply_delete(json_t *rec, void *ud) {
  apply_ctx *a = ud;
  json_t *d = json_object();
  cu_json_set_str(d, "reason", cu_json_str(a->req, "reason"));
  cu_json_set_str(d, "request", cu_json_str(a->req, "id"));
  json_object_set(d, "requested_by", json_object_get(a->req, "requested_by"));
  json_object_set(d, "approved_by", (json_t *)a->actor);
  cu_json_set_time(d, "deleted_at", a->now);
  cu_json_set_str(rec, "state", "deleted");
  json_object_set_new(rec, "deletion", d);
  return 0;
}

/* Sets every rendition record of the item to "deleted" in b (their objects
 * go with the purge). */
static int renditions_deleted(gov *g, idx_batch *b, const char *evid) {
  json_t *all = NULL;
  int rc = idx_renditions(g->ix, evid, &all);
  if (rc) return rc;
  const char *kind;
  json_t *r;
  json_object_foreach(all, kind, r) {
    cu_json_set_str(r, "state", "deleted");
    idx_batch_put_rendition(b, evid, kind, r);
  }
  json_decref(all);
  return 0;
}

static int run_approved(gov *g, json_t *req, const json_t *actor, json_t **evs, int *n, idx_batch *b,
                        const char **evidence_update, apply_ctx *ac) {
  const char *action = cu_json_str(req, "action");
  int rc = 0;
  if (!strcmp(action, "delete")) {
    const char *evid = cu_json_str(req, "evidence");
    json_t *rec = NULL;
    if ((rc = idx_evidence_get(g->ix, evid, &rec)) || (rc = not_held(g, rec)) ||
        (rc = renditions_deleted(g, b, evid))) {
      json_decref(rec);
      return rc;
    }
    json_t *ev = event("deleted", actor);
    copy_target(ev, req);
    cu_json_set_str(ev, "sha256", cu_json_str(rec, "sha256"));
    cu_json_set_str(ev, "reason", cu_json_str(req, "reason"));
    json_object_set(ev, "requested_by", json_object_get(req, "requested_by"));
    json_object_set(ev, "approved_by", (json_t *)actor);
    json_decref(rec);
    evs[(*n)++] = ev;
    *evidence_update = evid;
    if (g->deleted) g->deleted(g->hook_ud, b, evid);
  } else if (!strcmp(action, "release_hold")) {
    json_t *h = NULL;
    if ((rc = idx_hold_get(g->ix, cu_json_str(req, "hold"), &h))) return rc;
    cu_json_set_str(h, "state", "released");
    cu_json_set_time(h, "released_at", ac->now);
    cu_json_set_str(h, "released_by_request", cu_json_str(req, "id"));
    idx_batch_put_hold(b, h);
    json_t *ev = event("hold_released", actor);
    copy_target(ev, req);
    if (cu_json_str(h, "case")) cu_json_set_str(ev, "case", cu_json_str(h, "case"));
    if (cu_json_str(h, "evidence")) cu_json_set_str(ev, "evidence", cu_json_str(h, "evidence"));
    evs[(*n)++] = ev;
    json_decref(h);
  } else if (!strcmp(action, "shorten_retention")) {
    json_t *ev = event("retention_set", actor);
    copy_target(ev, req);
    evs[(*n)++] = ev;
    ac->category = cu_json_str(req, "category");
    *evidence_update = cu_json_str(req, "evidence");
  } else if (!strcmp(action, "export")) {
    if (g->exported) g->exported(g->hook_ud, b, cu_json_str(req, "export"), true);
  }
  return rc;
}

int gov_decide(gov *g, const char *request_id, bool approve, const char *reason,
               const json_t *actor, json_t **out) {
  int rc = check_reason(reason, !approve);
  if (rc) return rc;
  pthread_mutex_lock(&g->mu);
  json_t *req = NULL, *evs[4] = {0};
  int n = 0;
  idx_batch *b = NULL;
  if ((rc = idx_request_get(g->ix, request_id, &req))) goto done;
  const char *state = cu_json_str(req, "state"), *by = user_of(json_object_get(req, "requested_by"));
  if (strcmp(state, "pending")) {
    rc = cu_error(CU_ECONFLICT, "request %s is %s, not pending%s", request_id, state,
                  !strcmp(state, "proposed") ? ": a proposal must first be made a request by a person" : "");
    goto done;
  }
  if (!user_of(actor) || (by && !strcmp(by, user_of(actor)))) {
    rc = cu_error(CU_EDENIED, "%s made request %s: a different user with the legal role must %s it",
                  by ? by : "this token", request_id, approve ? "approve" : "refuse");
    goto done;
  }
  int k = kind_of(cu_json_str(req, "action"));
  int64_t now = cu_now_us();
  b = idx_batch_new(g->ix);
  json_t *ev = event(approve ? kinds[k].approved : kinds[k].refused, actor);
  copy_target(ev, req);
  cu_json_set_str(ev, "reason", reason);
  evs[n++] = ev;
  const char *evidence_update = NULL;
  apply_ctx ac = {req, actor, NULL, now};
  if (approve && (rc = run_approved(g, req, actor, evs, &n, b, &evidence_update, &ac))) goto done;
  if (!approve && !strcmp(cu_json_str(req, "action"), "export") && g->exported)
    g->exported(g->hook_ud, b, cu_json_str(req, "export"), false);
  cu_json_set_str(req, "state", approve ? "done" : "refused");
  json_object_set(req, "decided_by", (json_t *)actor);
  cu_json_set_time(req, "decided_at", now);
  cu_json_set_str(req, "decision_reason", reason);
  idx_batch_put_request(b, req);
  commit_ctx cc = {g->lg, evs, n};
  if (evidence_update)
    rc = idx_evidence_update_by(g->ix, b, evidence_update,
                                !strcmp(cu_json_str(req, "action"), "delete") ? apply_delete : apply_retention, &ac,
                                commit_events, &cc);
  else
    rc = commit_events(b, &cc);
done:
  pthread_mutex_unlock(&g->mu);
  free_events(evs, n);
  idx_batch_free(b);
  if (rc) {
    json_decref(req);
    return rc;
  }
  *out = req;
  return 0;
}

/* ---- purge and sweep ------------------------------------------------------------ */

/* Whether a live item other than evid holds sha as its original or as a
 * finished rendition. */
static int shared(gov *g, const char *sha, const char *evid, bool *yes) {
  *yes = false;
  idx_query q;
  idx_query_init(&q);
  q.sha256 = sha;
  q.limit = CU_MAX_PAGE_LIMIT;
  json_t *items = NULL;
  char *next = NULL;
  int rc = idx_evidence_list(g->ix, &q, &items, &next);
  if (rc) return rc;
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    const char *id = cu_json_str(it, "id"), *st = cu_json_str(it, "state");
    if (strcmp(id, evid) && !(st && !strcmp(st, "deleted"))) *yes = true;
  }
  json_decref(items);
  if (next) *yes = true; /* more than a page of copies: certainly shared */
  free(next);
  return *yes ? 0 : idx_rendition_sha_used(g->ix, sha, evid, yes);
}

static int mark_purged(json_t *rec, void *ud) {
  json_t *d = json_object_get(rec, "deletion");
  if (!d) return cu_error(CU_EINVAL, "the record has no deletion");
  cu_json_set_time(d, "purged_at", *(int64_t *)ud);
  return 0;
}

typedef struct {
  gov *g;
  const char *evid;
  json_t *withdrawn;
  int rc;
} withdraw_ctx;

/* An export bag of the deleted item is a copy of its bytes on this
 * server: it goes too (whoever downloaded it keeps theirs, and the ledger
 * says what was handed out). */
static int withdraw_one(uint64_t index, const json_t *ev, void *ud) {
  withdraw_ctx *w = ud;
  const char *type = cu_json_str(ev, "type"), *xid = cu_json_str(ev, "export");
  if (!type || strcmp(type, "exported") || !xid) return 0;
  json_t *x = NULL;
  if (idx_export_get(w->g->ix, xid, &x)) return 0;
  if (!strcmp(cu_json_str(x, "state") ? cu_json_str(x, "state") : "", "done")) {
    if ((w->rc = export_remove_files(w->g->exports_dir, xid))) {
      json_decref(x);
      return 1;
    }
    char why[200];
    snprintf(why, sizeof why, "evidence %s in it was deleted", w->evid);
    cu_json_set_str(x, "state", "withdrawn");
    cu_json_set_str(x, "withdrawn_because", why);
    idx_batch *b = idx_batch_new(w->g->ix);
    idx_batch_put_export(b, x);
    w->rc = idx_batch_commit(w->g->ix, b);
    idx_batch_free(b);
    json_array_append_new(w->withdrawn, json_string(xid));
  }
  json_decref(x);
  return w->rc ? 1 : 0;
}

int gov_purge(gov *g, const char *evid) {
  json_t *rec = NULL, *rends = NULL, *removed = json_array(), *kept = json_array();
  int rc = idx_evidence_get(g->ix, evid, &rec);
  if (!rc && strcmp(cu_json_str(rec, "state") ? cu_json_str(rec, "state") : "", "deleted"))
    rc = cu_error(CU_EINVAL, "evidence %s is not deleted; nothing to purge", evid);
  if (!rc && json_object_get(json_object_get(rec, "deletion"), "purged_at")) goto done; /* a re-run */
  if (!rc) rc = idx_renditions(g->ix, evid, &rends);
  if (rc) goto done;
  json_t *shas = json_array();
  json_array_append_new(shas, json_string(cu_json_str(rec, "sha256")));
  const char *kind;
  json_t *r;
  json_object_foreach(rends, kind, r) {
    const char *s = cu_json_str(r, "sha256");
    bool seen = false;
    size_t i;
    json_t *x;
    json_array_foreach(shas, i, x) seen |= s && !strcmp(json_string_value(x), s);
    if (s && !seen) json_array_append_new(shas, json_string(s));
  }
  size_t i;
  json_t *x;
  json_array_foreach(shas, i, x) {
    const char *s = json_string_value(x);
    bool yes = false;
    if ((rc = shared(g, s, evid, &yes))) break;
    if (yes) {
      json_array_append(kept, x);
    } else if (store_has(g->st, s)) {
      if ((rc = store_remove(g->st, s))) break;
      json_array_append(removed, x);
    }
  }
  json_decref(shas);
  withdraw_ctx wc = {g, evid, json_array(), 0};
  if (!rc && g->exports_dir) {
    rc = ledger_each_event(g->ix, evid, withdraw_one, &wc);
    if (!rc) rc = wc.rc;
  }
  if (rc) {
    json_decref(wc.withdrawn);
    goto done;
  }
  json_t *ev = event("purged", NULL);
  json_object_set_new(ev, "exports_withdrawn", wc.withdrawn);
  cu_json_set_str(ev, "actor", "purge");
  cu_json_set_str(ev, "evidence", evid);
  json_object_set(ev, "removed", removed);
  json_object_set(ev, "kept_shared", kept);
  commit_ctx cc = {g->lg, &ev, 1};
  int64_t now = cu_now_us();
  rc = idx_evidence_update_by(g->ix, NULL, evid, mark_purged, &now, commit_events, &cc);
  free_events(&ev, 1);
  if (!rc) cu_info("evidence %s purged: %zu object(s) removed, %zu kept (shared)", evid, json_array_size(removed), json_array_size(kept));
done:
  json_decref(rec);
  json_decref(rends);
  json_decref(removed);
  json_decref(kept);
  return rc;
}

typedef struct {
  gov *g;
  int64_t now;
  json_t *open; /* evidence ids with an open delete request */
  int proposed, rc;
} sweep_ctx;

static int sweep_one(const char *id, json_t *rec, void *ud) {
  sweep_ctx *c = ud;
  const char *st = cu_json_str(rec, "state");
  if (st && !strcmp(st, "deleted")) return 0;
  if (json_object_get(c->open, id)) return 0;
  json_t *full = NULL;
  if (idx_evidence_get(c->g->ix, id, &full)) return 0; /* with its cases */
  const gov_category *cat = category(c->g, category_of(c->g, full));
  char why[256];
  int64_t t = earliest(c->g, cat, full, why, sizeof why);
  bool due = t <= c->now && !not_held(c->g, full);
  json_decref(full);
  if (!due) return 0;
  char reason[320], at[CU_RFC3339_LEN];
  cu_time_rfc3339(t, at);
  snprintf(reason, sizeof reason, "its retention is over: category %s (%s), deletable since %s", cat->name, cat->text, at);
  json_t *actor = json_object(), *req = NULL;
  cu_json_set_str(actor, "role", "system");
  cu_json_set_str(actor, "user", "retention-sweep");
  pthread_mutex_lock(&c->g->mu);
  int rc = new_request(c->g, "delete", "evidence", id, NULL, reason, actor, "proposed", &req);
  pthread_mutex_unlock(&c->g->mu);
  json_decref(actor);
  json_decref(req);
  if (rc == CU_ECONFLICT) return 0;
  if (rc) return c->rc = rc, -1;
  c->proposed++;
  return 0;
}

int gov_sweep(gov *g, int64_t now_us, int *proposed) {
  sweep_ctx c = {g, now_us, json_object(), 0, 0};
  json_t *list = NULL;
  int rc = idx_request_list(g->ix, NULL, 0, &list);
  size_t i;
  json_t *r;
  json_array_foreach(list, i, r) {
    const char *st = cu_json_str(r, "state");
    if (cu_json_str(r, "evidence") && st && (!strcmp(st, "pending") || !strcmp(st, "proposed")) &&
        !strcmp(cu_json_str(r, "action"), "delete"))
      json_object_set_new(c.open, cu_json_str(r, "evidence"), json_true());
  }
  json_decref(list);
  if (!rc) rc = idx_evidence_each(g->ix, NULL, sweep_one, &c);
  if (!rc && c.rc) rc = c.rc;
  json_decref(c.open);
  if (proposed) *proposed = c.proposed;
  if (!rc && c.proposed) cu_info("retention sweep: proposed %d deletion(s); they wait for a person to request them", c.proposed);
  return rc;
}
