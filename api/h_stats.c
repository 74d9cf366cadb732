/* GET /v1/stats (legal, admin): recordings, footage, bytes, ingest lag and
 * failed jobs, in all and by device, officer, day or case (indexer/
 * idx_stats.c does the sums). Reviewers are left out: they read only the
 * cases assigned to them, and these sums cover every case. */
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "timeu.h"
#include "banned.h"

static int bad(req *r, const char *detail) {
  return respond_status(r, 400, "invalid", detail, NULL);
}

static int get(req *r) {
  idx_stats_query q;
  idx_stats_query_init(&q);
  const char *by = req_query(r, "by"), *from = req_query(r, "from"), *to = req_query(r, "to");
  if (by && idx_stats_by_parse(by, &q.by)) return bad(r, "by must be device, officer, day or case");
  if (from && cu_time_parse_rfc3339(from, &q.from_us))
    return bad(r, "from must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z");
  if (to && cu_time_parse_rfc3339(to, &q.to_us))
    return bad(r, "to must be an RFC 3339 time, e.g. 2026-02-01T00:00:00Z");
  if (q.from_us >= q.to_us) return bad(r, "from must be before to");
  json_t *o = NULL;
  int rc = idx_stats(r->a->ix, &q, &o);
  /* Too many groups is a question to narrow, not a body too large (413). */
  if (rc == CU_ETOOBIG) return bad(r, cu_errmsg());
  if (rc) return respond_error(r, rc, NULL);
  rc = respond_json(r, 200, o, NULL);
  json_decref(o);
  return rc;
}

const route stats_routes[] = {
    {"GET", "/v1/stats", ROLE_LEGAL | ROLE_ADMIN, 0, NULL, NULL, get, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
