/* GET /v1/jobs (admin): queued, running and failed jobs, with progress. */
#include <stdio.h>
#include <string.h>

#include "api_int.h"
#include "cu_limits.h"
#include "err.h"
#include "banned.h"

static int list(req *r) {
  const char *state = req_query(r, "state"), *kind = req_query(r, "kind");
  uint64_t limit = 100;
  if (state && strcmp(state, "queued") && strcmp(state, "running") && strcmp(state, "failed"))
    return respond_status(r, 400, "invalid", "state must be queued, running or failed", NULL);
  if (kind) {
    const char *const *kinds;
    int n = job_queue_kinds(r->a->jq, &kinds), i = 0;
    while (i < n && strcmp(kinds[i], kind)) i++;
    if (i == n) {
      char msg[160];
      snprintf(msg, sizeof msg, "there is no job kind '%.64s'", kind);
      return respond_status(r, 400, "invalid", msg, NULL);
    }
  }
  if (req_query(r, "limit") && req_query_u64(r, "limit", true, CU_MAX_PAGE_LIMIT, &limit)) return 0;
  if (!limit) return respond_status(r, 400, "invalid", "limit must be at least 1", NULL);
  json_t *jobs = NULL;
  int rc = job_queue_list(r->a->jq, state, kind, (int)limit, &jobs);
  if (rc) return respond_error(r, rc, NULL);
  json_t *o = json_object();
  json_object_set_new(o, "jobs", jobs);
  rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  return rc;
}

const route job_routes[] = {
    {"GET", "/v1/jobs", ROLE_ADMIN, 0, NULL, NULL, list, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
