/* POST /v1/tokens (admin): {"role": ..., "device": ..., "user": ...}. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "cu_limits.h"
#include "err.h"
#include "log.h"
#include "banned.h"

static int create_token(req *r) {
  json_t *body = NULL, *rec = NULL;
  char *secret = NULL;
  int rc = cu_json_parse(r->body.data ? r->body.data : "", r->body.len, &body);
  if (!rc && !json_is_object(body)) rc = cu_error(CU_EINVAL, "the body must be a JSON object");
  if (!rc) {
    const char *by = r->who.user[0] ? r->who.user : r->who.token_id;
    rc = auth_token_create(r->a, cu_json_str(body, "role"), cu_json_str(body, "device"),
                           cu_json_str(body, "user"), by, &secret, &rec);
  }
  if (rc) {
    respond_error(r, rc, NULL);
  } else {
    json_object_set_new(rec, "token", json_string(secret));
    cu_info("token %s created for role %s by %s", cu_json_str(rec, "id"), cu_json_str(rec, "role"),
            r->who.token_id);
    respond_json(r, 201, rec, NULL);
  }
  free(secret);
  json_decref(body);
  json_decref(rec);
  return rc;
}

const route token_routes[] = {
    {"POST", "/v1/tokens", ROLE_ADMIN, 64 * 1024, NULL, NULL, create_token, NULL, false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, false},
};
