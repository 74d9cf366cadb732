/* Cases: create, list, read, change, link evidence, assign reviewers.
 * Legal and admin manage cases; an admin assigns reviewers; a reviewer
 * reads only the cases assigned to them. Every change is a ledger event
 * (archive/cases.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "cases.h"
#include "cu_limits.h"
#include "err.h"
#include "id.h"
#include "timeu.h"
#include "banned.h"

#define MANAGE (ROLE_LEGAL | ROLE_ADMIN)
#define READ (ROLE_REVIEWER | ROLE_LEGAL | ROLE_ADMIN)
#define CASE_BODY_MAX (64 * 1024)
#define CASE_EVIDENCE_PAGE 100

static int body_json(req *r, json_t **out) {
  int rc = cu_json_parse(r->body.data ? r->body.data : "", r->body.len, out);
  if (rc) respond_status(r, 400, "invalid", "the body must be JSON, e.g. {\"title\": \"Incident 2026-0141\"}", NULL);
  return rc;
}

static int bad_limit(req *r, int *limit) {
  const char *v = req_query(r, "limit");
  *limit = CU_DEFAULT_PAGE_LIMIT;
  if (!v) return 0;
  int64_t n;
  if (cu_parse_i64(v, &n, 0) || n < 1 || n > CU_MAX_PAGE_LIMIT) {
    char msg[64];
    snprintf(msg, sizeof msg, "limit must be between 1 and %d", CU_MAX_PAGE_LIMIT);
    respond_status(r, 400, "invalid", msg, NULL);
    return 1;
  }
  *limit = (int)n;
  return 0;
}

static int create(req *r) {
  json_t *in = NULL, *rec = NULL, *actor = NULL;
  if (body_json(r, &in)) return 0;
  actor = auth_actor(&r->who);
  int rc = cases_create(r->a->ix, r->a->lg, in, actor, &rec);
  if (rc) {
    respond_error(r, rc, NULL);
  } else {
    char loc[64 + CU_MAX_ID_LEN];
    snprintf(loc, sizeof loc, "/v1/cases/%s", cu_json_str(rec, "id"));
    const char *h[] = {"Location", loc, NULL};
    respond_json(r, 201, rec, h);
  }
  json_decref(in);
  json_decref(rec);
  json_decref(actor);
  return 0;
}

static int list(req *r) {
  idx_case_query q = {0};
  q.status = req_query(r, "status");
  q.tag = req_query(r, "tag");
  q.cursor = req_query(r, "cursor");
  if (q.status && strcmp(q.status, "open") && strcmp(q.status, "closed"))
    return respond_status(r, 400, "invalid", "status must be open or closed", NULL);
  if (q.tag && !cu_name_valid(q.tag)) return respond_status(r, 400, "invalid", "tag is not a valid tag", NULL);
  if (bad_limit(r, &q.limit)) return 0;
  if (!(r->who.role_bit & MANAGE)) q.user = r->who.user; /* a reviewer: the assigned cases */
  json_t *items = NULL;
  char *next = NULL;
  int rc = idx_case_list(r->a->ix, &q, &items, &next);
  if (rc) return respond_error(r, rc, NULL);
  json_t *o = json_object();
  json_object_set_new(o, "items", items);
  json_object_set_new(o, "next_cursor", next ? json_string(next) : json_null());
  respond_json(r, 200, o, NULL);
  json_decref(o);
  free(next);
  return 0;
}

/* The record, its evidence count and the first page of its evidence
 * (the rest through GET /v1/evidence?case=ID&cursor=...). */
static int get_one(req *r) {
  if (auth_may_read_case(r, r->param[0])) return 0;
  json_t *rec = NULL, *items = NULL;
  char *next = NULL;
  uint64_t n = 0;
  int rc = idx_case_get(r->a->ix, r->param[0], &rec);
  if (!rc) rc = idx_case_evidence_count(r->a->ix, r->param[0], &n);
  if (!rc) {
    idx_query q;
    idx_query_init(&q);
    q.case_id = r->param[0];
    q.limit = CASE_EVIDENCE_PAGE;
    rc = idx_evidence_list(r->a->ix, &q, &items, &next);
  }
  if (rc) {
    json_decref(rec);
    return respond_error(r, rc, NULL);
  }
  json_object_set_new(rec, "evidence_count", json_integer((json_int_t)n));
  json_object_set_new(rec, "evidence", items);
  json_object_set_new(rec, "evidence_next_cursor", next ? json_string(next) : json_null());
  respond_json(r, 200, rec, NULL);
  json_decref(rec);
  free(next);
  return 0;
}

static int update(req *r) {
  json_t *in = NULL, *rec = NULL, *actor = NULL;
  if (body_json(r, &in)) return 0;
  actor = auth_actor(&r->who);
  int rc = cases_update(r->a->ix, r->a->lg, r->param[0], in, actor, &rec);
  if (rc) respond_error(r, rc, NULL);
  else respond_json(r, 200, rec, NULL);
  json_decref(in);
  json_decref(rec);
  json_decref(actor);
  return 0;
}

static int link_answer(req *r, int rc, bool changed, bool linking, const char *what) {
  if (rc) return respond_error(r, rc, NULL);
  json_t *o = json_object();
  cu_json_set_str(o, "case", r->param[0]);
  cu_json_set_str(o, what, r->param[1]);
  json_object_set_new(o, "changed", json_boolean(changed));
  if (!linking && !changed) {
    json_decref(o);
    char msg[360];
    snprintf(msg, sizeof msg, "%s %.128s is not %s case %.128s", what, r->param[1],
             !strcmp(what, "user") ? "assigned to" : "in", r->param[0]);
    return respond_status(r, 404, "not_found", msg, NULL);
  }
  if (!linking) return respond(r, 204, NULL, "", 0, NULL), json_decref(o), 0;
  respond_json(r, changed ? 201 : 200, o, NULL);
  json_decref(o);
  return 0;
}

static int link_evidence(req *r, bool link) {
  json_t *actor = auth_actor(&r->who);
  bool changed = false;
  int rc = cases_link(r->a->ix, r->a->lg, r->param[0], r->param[1], link, actor, &changed);
  json_decref(actor);
  return link_answer(r, rc, changed, link, "evidence");
}

static int link_(req *r) { return link_evidence(r, true); }
static int unlink_(req *r) { return link_evidence(r, false); }

static int assign_user(req *r, bool on) {
  json_t *actor = auth_actor(&r->who);
  bool changed = false;
  int rc = cases_assign(r->a->ix, r->a->lg, r->param[0], r->param[1], on, actor, &changed);
  json_decref(actor);
  return link_answer(r, rc, changed, on, "user");
}

static int assign(req *r) { return assign_user(r, true); }
static int unassign(req *r) { return assign_user(r, false); }

const route case_routes[] = {
    {"POST", "/v1/cases", MANAGE, CASE_BODY_MAX, NULL, NULL, create, NULL, false},
    {"GET", "/v1/cases", READ, 0, NULL, NULL, list, NULL, false},
    {"GET", "/v1/cases/{}", READ, 0, NULL, NULL, get_one, NULL, false},
    {"PATCH", "/v1/cases/{}", MANAGE, CASE_BODY_MAX, NULL, NULL, update, NULL, false},
    {"POST", "/v1/cases/{}/evidence/{}", MANAGE, 4096, NULL, NULL, link_, NULL, false},
    {"DELETE", "/v1/cases/{}/evidence/{}", MANAGE, 0, NULL, NULL, unlink_, NULL, false},
    {"PUT", "/v1/cases/{}/reviewers/{}", ROLE_ADMIN, 0, NULL, NULL, assign, NULL, false},
    {"DELETE", "/v1/cases/{}/reviewers/{}", ROLE_ADMIN, 0, NULL, NULL, unassign, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
