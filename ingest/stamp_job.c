#include "stamp_job.h"

#include <string.h>

#include "err.h"
#include "hex.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

/* Stamps digest unless a token for it is stored already; *fresh says which. */
static int stamp(stamp_job_ctx *c, const char *hex, idx_batch *b, tsa_info *info, bool *fresh) {
  unsigned char digest[32];
  if (cu_hex_decode(hex, strlen(hex), digest, 32))
    return cu_error(CU_ECORRUPT, "'%s' is not a SHA-256", hex);
  cu_buf have = CU_BUF_INIT(1 << 20);
  int rc = idx_timestamp_get(c->ix, hex, &have);
  cu_buf_release(&have);
  *fresh = rc == CU_ENOTFOUND;
  if (rc != CU_ENOTFOUND) return rc;
  cu_buf resp = CU_BUF_INIT(1 << 20);
  rc = tsa_stamp(c->ts, digest, &resp, info);
  if (!rc) idx_batch_put_timestamp(b, hex, resp.data, resp.len);
  cu_buf_release(&resp);
  return rc;
}

int stamp_job_run(void *ud, const char *job_id, const json_t *job) {
  stamp_job_ctx *c = ud;
  const char *evid = cu_json_str(job, "evidence");
  json_t *rec = NULL;
  int rc = idx_evidence_get(c->ix, evid ? evid : "", &rec);
  if (rc) return rc;
  const char *sha = cu_json_str(rec, "sha256");
  /* A job that ran to its end before a crash kept it from being marked done
   * runs again: its event is there already. */
  bool done = false;
  if ((rc = ledger_evidence_has(c->lg, evid, "timestamped", &done)) || done) {
    json_decref(rec);
    return rc;
  }
  idx_batch *b = idx_batch_new(c->ix);
  tsa_info info = {0};
  bool fresh = false;
  rc = stamp(c, sha ? sha : "", b, &info, &fresh);
  if (!rc) {
    /* The event goes with the token (or, for bytes stamped before under
     * another record, on its own): the chain of custody shows it either way. */
    json_t *ev = json_object();
    cu_json_set_str(ev, "type", "timestamped");
    cu_json_set_str(ev, "evidence", evid);
    cu_json_set_str(ev, "sha256", sha);
    cu_json_set_str(ev, "tsa", c->tsa_name);
    if (fresh) {
      cu_json_set_time(ev, "gen_time", info.gen_time_us);
      cu_json_set_str(ev, "serial", info.serial);
      cu_json_set_str(ev, "policy", info.policy);
    }
    rc = ledger_commit(c->lg, b, &ev, 1, NULL);
    json_decref(ev);
  }
  if (!rc && fresh) cu_info("evidence %s: time-stamped by %s", evid, c->tsa_name);
  idx_batch_free(b);
  json_decref(rec);
  return rc;
}

int stamp_sth_job_run(void *ud, const char *job_id, const json_t *job) {
  stamp_job_ctx *c = ud;
  const char *hex = cu_json_str(job, "checkpoint_sha256");
  idx_batch *b = idx_batch_new(c->ix);
  tsa_info info = {0};
  bool fresh = false;
  /* No ledger event: it would grow the tree, and so call for another head. */
  int rc = stamp(c, hex ? hex : "", b, &info, &fresh);
  if (!rc && fresh) rc = idx_batch_commit(c->ix, b);
  idx_batch_free(b);
  return rc;
}

void stamp_job_sth_hook(void *ud, idx_batch *b, const json_t *sth) {
  stamp_job_ctx *c = ud;
  json_t *f = json_object();
  json_object_set(f, "size", json_object_get(sth, "size"));
  cu_json_set_str(f, "checkpoint_sha256", cu_json_str(sth, "checkpoint_sha256"));
  job_batch_add_with(c->jq, b, "stamp_sth", f, NULL);
  json_decref(f);
}
