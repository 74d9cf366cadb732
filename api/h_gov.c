/* Governance endpoints: legal holds, retention, and two-person requests
 * (archive/gov.h). Who may ask: legal and admin request and set holds; a
 * reviewer or admin (and legal) sets an item's retention; only a legal
 * user, never the requester, approves or refuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "id.h"
#include "banned.h"

#define MANAGE (ROLE_LEGAL | ROLE_ADMIN)
#define BODY_MAX (16 * 1024)

/* The body as a JSON object ({} when empty); a 400 queued otherwise. */
static int body_obj(req *r, json_t **out) {
  if (!r->body.len) {
    *out = json_object();
    return 0;
  }
  if (cu_json_parse(r->body.data, r->body.len, out) || !json_is_object(*out)) {
    json_decref(*out);
    *out = NULL;
    respond_status(r, 400, "invalid", "the body must be a JSON object, e.g. {\"reason\": \"...\"}", NULL);
    return CU_EINVAL;
  }
  return 0;
}

/* reason from the body, else from ?reason= */
static const char *reason_of(req *r, const json_t *body) {
  const char *v = cu_json_str(body, "reason");
  return v ? v : req_query(r, "reason");
}

static int answer(req *r, int rc, int status, json_t *v) {
  if (rc) return respond_error(r, rc, NULL);
  int out = respond_json(r, status, v, NULL);
  json_decref(v);
  return out;
}

static int hold_set(req *r) {
  json_t *in = NULL, *hold = NULL;
  if (body_obj(r, &in)) return 0;
  const char *c = cu_json_str(in, "case"), *e = cu_json_str(in, "evidence");
  int rc;
  if (!!c == !!e) rc = cu_error(CU_EINVAL, "a hold is on one case (\"case\") or one item (\"evidence\")");
  else {
    json_t *actor = auth_actor(&r->who);
    rc = gov_hold_set(r->a->gov, c ? 'c' : 'e', c ? c : e, reason_of(r, in), actor, &hold);
    json_decref(actor);
  }
  json_decref(in);
  return answer(r, rc, 201, hold);
}

static int holds(req *r) {
  const char *all = req_query(r, "all");
  json_t *list = NULL;
  int rc = idx_hold_list(r->a->ix, !(all && !strcmp(all, "true")), &list);
  json_t *o = NULL;
  if (!rc) {
    o = json_object();
    json_object_set_new(o, "items", list);
  }
  return answer(r, rc, 200, o);
}

static int hold_get(req *r) {
  json_t *h = NULL;
  int rc = idx_hold_get(r->a->ix, r->param[0], &h);
  return answer(r, rc, 200, h);
}

static int make_request(req *r, json_t *in) {
  json_t *actor = auth_actor(&r->who), *out = NULL;
  int rc = gov_request(r->a->gov, in, actor, &out);
  json_decref(actor);
  return answer(r, rc, 202, out);
}

static int hold_release(req *r) {
  json_t *in = NULL;
  if (body_obj(r, &in)) return 0;
  json_t *q = json_object();
  cu_json_set_str(q, "action", "release_hold");
  cu_json_set_str(q, "hold", r->param[0]);
  cu_json_set_str(q, "reason", reason_of(r, in));
  json_decref(in);
  int rc = make_request(r, q);
  json_decref(q);
  return rc;
}

static int evidence_delete(req *r) {
  json_t *in = NULL;
  if (body_obj(r, &in)) return 0;
  json_t *q = json_object();
  cu_json_set_str(q, "action", "delete");
  cu_json_set_str(q, "evidence", r->param[0]);
  cu_json_set_str(q, "reason", reason_of(r, in));
  json_decref(in);
  int rc = make_request(r, q);
  json_decref(q);
  return rc;
}

static int retention_set(req *r) {
  if (auth_may_read_evidence(r, r->param[0])) return 0;
  json_t *in = NULL, *req_out = NULL, *actor = auth_actor(&r->who);
  if (body_obj(r, &in)) {
    json_decref(actor);
    return 0;
  }
  int rc = gov_set_retention(r->a->gov, r->param[0], cu_json_str(in, "category"), reason_of(r, in), actor, &req_out);
  json_decref(in);
  json_decref(actor);
  if (rc) return respond_error(r, rc, NULL);
  if (req_out) { /* shorter: it waits for a second person */
    json_t *o = json_object();
    json_object_set_new(o, "request", req_out);
    cu_json_set_str(o, "detail", "a shorter retention needs the approval of a different legal user: the request is pending");
    return answer(r, 0, 202, o);
  }
  json_t *rec = NULL, *ret = NULL;
  rc = idx_evidence_get(r->a->ix, r->param[0], &rec);
  if (!rc) rc = gov_retention(r->a->gov, rec, &ret);
  json_decref(rec);
  return answer(r, rc, 200, ret);
}

static int request_new(req *r) {
  json_t *in = NULL;
  if (body_obj(r, &in)) return 0;
  int rc = make_request(r, in);
  json_decref(in);
  return rc;
}

static int requests(req *r) {
  const char *state = req_query(r, "state");
  static const char *const states[] = {"proposed", "pending", "done", "refused"};
  bool ok = !state;
  for (size_t i = 0; i < sizeof states / sizeof *states && !ok; i++) ok = !strcmp(state, states[i]);
  if (!ok) return respond_status(r, 400, "invalid", "state must be proposed, pending, done or refused", NULL);
  json_t *list = NULL, *o = NULL;
  int rc = idx_request_list(r->a->ix, state, 0, &list);
  if (!rc) {
    o = json_object();
    json_object_set_new(o, "items", list);
  }
  return answer(r, rc, 200, o);
}

static int request_get(req *r) {
  json_t *q = NULL;
  int rc = idx_request_get(r->a->ix, r->param[0], &q);
  return answer(r, rc, 200, q);
}

static int decide(req *r, bool approve) {
  json_t *in = NULL, *out = NULL;
  if (body_obj(r, &in)) return 0;
  json_t *actor = auth_actor(&r->who);
  int rc = gov_decide(r->a->gov, r->param[0], approve, reason_of(r, in), actor, &out);
  if (!rc) job_queue_kick(r->a->jq); /* an approval may have queued a job */
  json_decref(actor);
  json_decref(in);
  return answer(r, rc, 200, out);
}

static int approve(req *r) { return decide(r, true); }
static int refuse(req *r) { return decide(r, false); }

const route gov_routes[] = {
    {"POST", "/v1/holds", MANAGE, BODY_MAX, NULL, NULL, hold_set, NULL, false},
    {"GET", "/v1/holds", MANAGE, 0, NULL, NULL, holds, NULL, false},
    {"GET", "/v1/holds/{}", MANAGE, 0, NULL, NULL, hold_get, NULL, false},
    {"DELETE", "/v1/holds/{}", MANAGE, BODY_MAX, NULL, NULL, hold_release, NULL, false},
    {"DELETE", "/v1/evidence/{}", MANAGE, BODY_MAX, NULL, NULL, evidence_delete, NULL, false},
    {"PUT", "/v1/evidence/{}/retention", ROLE_REVIEWER | MANAGE, BODY_MAX, NULL, NULL, retention_set, NULL, false},
    {"POST", "/v1/requests", MANAGE, BODY_MAX, NULL, NULL, request_new, NULL, false},
    {"GET", "/v1/requests", MANAGE, 0, NULL, NULL, requests, NULL, false},
    {"GET", "/v1/requests/{}", MANAGE, 0, NULL, NULL, request_get, NULL, false},
    {"POST", "/v1/requests/{}/approve", ROLE_LEGAL, BODY_MAX, NULL, NULL, approve, NULL, false},
    {"POST", "/v1/requests/{}/refuse", ROLE_LEGAL, BODY_MAX, NULL, NULL, refuse, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
