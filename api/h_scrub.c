/* POST /v1/scrub starts a full pass over every object (admin), GET
 * /v1/scrub shows it and the background scrubber. */
#include "api_int.h"
#include "err.h"
#include "banned.h"

static int start(req *r) {
  json_t *s = scrub_request(r->a->scrub);
  int rc = respond_json(r, 202, s, NULL);
  json_decref(s);
  return rc;
}

static int status(req *r) {
  json_t *s = scrub_status(r->a->scrub);
  int rc = respond_json(r, 200, s, NULL);
  json_decref(s);
  return rc;
}

const route scrub_routes[] = {
    {"POST", "/v1/scrub", ROLE_ADMIN, 1024, NULL, NULL, start, NULL, false},
    {"GET", "/v1/scrub", ROLE_ADMIN, 0, NULL, NULL, status, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
