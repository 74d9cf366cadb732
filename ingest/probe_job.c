#include "probe_job.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "probe.h"
#include "timeu.h"
#include "banned.h"

static int set_media(json_t *rec, void *ud) {
  json_object_set(rec, "media", ud);
  return 0;
}

int probe_job_run(void *ud, const char *job_id, const json_t *job) {
  probe_job_ctx *c = ud;
  const char *evid = cu_json_str(job, "evidence");
  json_t *rec = NULL, *media = NULL;
  int rc = idx_evidence_get(c->ix, evid ? evid : "", &rec);
  if (rc) return rc;
  const char *sha = cu_json_str(rec, "sha256");
  if (!store_has(c->st, sha ? sha : "")) {
    cu_alarm("evidence %s: its object %s is missing from the store", evid, sha);
    rc = cu_error(CU_ENOTFOUND, "the object %s of evidence %s is missing", sha, evid);
    goto done;
  }
  char *path = store_path(c->st, sha);
  rc = media_probe(path, c->timeout_sec, &media);
  free(path);
  if (rc) goto done;
  cu_json_set_time(media, "probed_at", cu_now_us());
  rc = idx_evidence_update(c->ix, evid, set_media, media);
  bool known = false;
  if (!rc && c->lg) rc = ledger_evidence_has(c->lg, evid, "probed", &known);
  if (!rc && c->lg && !known) {
    /* After the record: a crash in between re-runs the job, which then
     * finds the record written and adds the event once. */
    json_t *ev = json_object();
    cu_json_set_str(ev, "type", "probed");
    cu_json_set_str(ev, "evidence", evid);
    cu_json_set_str(ev, "sha256", sha);
    static const char *const copied[] = {"status", "reason", "damaged", "container", "duration_s",
                                         "duration_from"};
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
      json_t *v = json_object_get(media, copied[i]);
      if (v) json_object_set(ev, copied[i], v);
    }
    rc = ledger_commit(c->lg, NULL, &ev, 1, NULL);
    json_decref(ev);
  }
  if (!rc && !strcmp(cu_json_str(media, "status") ? cu_json_str(media, "status") : "", "unparseable"))
    cu_warn("evidence %s is not media libavformat can read (%s); kept as received", evid,
            cu_json_str(media, "reason"));
done:
  json_decref(media);
  json_decref(rec);
  return rc;
}
