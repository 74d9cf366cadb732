/* DESIGN: the upload record (CF upload) is the single source of truth for
 * an upload; the spool file only holds bytes. The record moves
 *   active --(last byte synced)--> committing --(object + evidence)--> completed
 *   active --(client hash differs)--> quarantined
 *   active --(DELETE or expiry)--> gone
 * and each move is a synced batch. "committing" exists so a crash between
 * linking the object and writing the evidence record is finished at the next
 * start (tus_recover) with the evidence id chosen before the crash.
 *
 * Concurrency: one request at a time per upload (the busy set); a second
 * one gets CU_EBUSY (423, which tus clients retry). */
#include "tus.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "cu_limits.h"
#include "cases.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "rendition_job.h"
#include "hex.h"
#include "log.h"
#include "spool.h"
#include "timeu.h"
#include "banned.h"

struct tus {
  tus_config cfg;
  char *spool_dir, *quarantine_dir;
  idx *ix;
  store *st;
  job_queue *jq;
  ledger *lg;
  pthread_mutex_t mu; /* the busy set */
  char (*busy)[CU_ID_LEN + 1];
  size_t nbusy, capbusy;
  atomic_uint_least64_t started, completed, failed, bytes;
};

struct tus_patch {
  tus *t;
  char id[CU_ID_LEN + 1];
  json_t *rec;
  spool *sp;
  cu_digest *ck;
  unsigned char ck_want[64];
  size_t ck_len;
  int64_t start, length, received;
  int err;
  char errmsg[512];
};

static const char *state_names[] = {"active", "committing", "completed", "quarantined", "gone"};

static enum tus_state state_of(const json_t *rec) {
  const char *s = cu_json_str(rec, "state");
  for (int i = 0; s && i < 5; i++)
    if (!strcmp(s, state_names[i])) return (enum tus_state)i;
  return TUS_GONE;
}

static void set_state(json_t *rec, enum tus_state s) {
  json_object_set_new(rec, "state", json_string(state_names[s]));
}

/* ---- the busy set ------------------------------------------------------ */

static int lock_upload(tus *t, const char *id) {
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < t->nbusy; i++) {
    if (!strcmp(t->busy[i], id)) {
      pthread_mutex_unlock(&t->mu);
      return cu_error(CU_EBUSY, "upload %s is in use by another request; retry shortly", id);
    }
  }
  if (t->nbusy == t->capbusy) {
    t->capbusy = t->capbusy ? t->capbusy * 2 : 16;
    t->busy = cu_xrealloc(t->busy, t->capbusy * sizeof *t->busy);
  }
  memcpy(t->busy[t->nbusy++], id, CU_ID_LEN + 1);
  pthread_mutex_unlock(&t->mu);
  return 0;
}

static void unlock_upload(tus *t, const char *id) {
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < t->nbusy; i++) {
    if (!strcmp(t->busy[i], id)) {
      memmove(t->busy[i], t->busy[t->nbusy - 1], CU_ID_LEN + 1);
      t->nbusy--;
      break;
    }
  }
  pthread_mutex_unlock(&t->mu);
}

/* ---- helpers ----------------------------------------------------------- */

static char *spool_path(tus *t, const char *id) { return cu_xasprintf("%s/%s.part", t->spool_dir, id); }

static int commit_record(tus *t, const char *id, const json_t *rec, int64_t old_due) {
  idx_batch *b = idx_batch_new(t->ix);
  idx_batch_put_upload(b, id, rec);
  if (old_due && old_due != cu_json_int(rec, "expires_at_us", 0))
    idx_batch_del_upload_due(b, id, old_due);
  int rc = idx_batch_commit(t->ix, b);
  idx_batch_free(b);
  return rc;
}

static int load(tus *t, const tus_principal *who, const char *id, json_t **out) {
  json_t *rec = NULL;
  int rc = idx_upload_get(t->ix, id, &rec);
  if (rc) return rc;
  const char *owner = cu_json_str(rec, "owner");
  if (!owner || !who->token_id || strcmp(owner, who->token_id)) {
    json_decref(rec);
    return cu_error(CU_EDENIED, "upload %s belongs to another token; only its owner may use it", id);
  }
  *out = rec;
  return 0;
}

static void fill_info(const char *id, const json_t *rec, tus_info *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->id, sizeof out->id, "%s", id);
  out->offset = cu_json_int(rec, "offset", 0);
  out->length = cu_json_int(rec, "length", 0);
  out->expires_us = cu_json_int(rec, "expires_at_us", 0);
  const char *m = cu_json_str(rec, "metadata_raw");
  out->metadata = m ? cu_xstrdup(m) : NULL;
  out->state = state_of(rec);
  const char *e = cu_json_str(rec, "evidence_id"), *s = cu_json_str(rec, "sha256");
  if (e && out->state == TUS_COMPLETED) snprintf(out->evidence_id, sizeof out->evidence_id, "%s", e);
  if (s) snprintf(out->sha256, sizeof out->sha256, "%s", s);
}

void tus_info_release(tus_info *info) {
  free(info->metadata);
  info->metadata = NULL;
}

static int gone_error(const char *id, const json_t *rec) {
  const char *why = cu_json_str(rec, "reason");
  if (state_of(rec) == TUS_QUARANTINED)
    return cu_error(CU_EGONE, "upload %s was quarantined: %s", id, why ? why : "");
  return cu_error(CU_EGONE, "upload %s no longer exists (%s)", id, why ? why : "gone");
}

/* ---- open / close ------------------------------------------------------ */

int tus_open(tus **out, const tus_config *cfg, idx *ix, store *st, job_queue *jq, ledger *lg) {
  int rc = cu_mkdirs(cfg->spool_dir, 0700);
  if (!rc) rc = cu_mkdirs(cfg->quarantine_dir, 0700);
  if (rc) return rc;
  tus *t = cu_xcalloc(1, sizeof *t);
  t->cfg = *cfg;
  t->spool_dir = cu_xstrdup(cfg->spool_dir);
  t->quarantine_dir = cu_xstrdup(cfg->quarantine_dir);
  t->ix = ix;
  t->st = st;
  t->jq = jq;
  t->lg = lg;
  pthread_mutex_init(&t->mu, NULL);
  *out = t;
  return 0;
}

void tus_free(tus *t) {
  if (!t) return;
  pthread_mutex_destroy(&t->mu);
  free(t->busy);
  free(t->spool_dir);
  free(t->quarantine_dir);
  free(t);
}

void tus_get_counters(tus *t, tus_counters *out) {
  out->started = atomic_load(&t->started);
  out->completed = atomic_load(&t->completed);
  out->failed = atomic_load(&t->failed);
  out->bytes_received = atomic_load(&t->bytes);
}

int64_t tus_spool_bytes(tus *t) {
  DIR *d = opendir(t->spool_dir);
  if (!d) return 0;
  int64_t total = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    struct stat sb;
    if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &sb, 0) == 0 && S_ISREG(sb.st_mode))
      total += (int64_t)sb.st_blocks * 512;
  }
  closedir(d);
  return total;
}

/* ---- creation ---------------------------------------------------------- */

/* Checks the metadata a recorder sent and resolves what the evidence
 * record will say. */
static int resolve_metadata(const tus *t, const tus_principal *who, const json_t *meta, json_t *ev) {
  static const char *const text_keys[] = {"filename", "device_id", "officer_id",
                                          "recorded_at", "case_id", "sha256", "retention"};
  for (size_t i = 0; i < sizeof text_keys / sizeof *text_keys; i++) {
    json_t *v = json_object_get(meta, text_keys[i]);
    if (v && !json_is_string(v))
      return cu_error(CU_EINVAL, "metadata '%s' must be UTF-8 text", text_keys[i]);
  }
  const char *filename = cu_json_str(meta, "filename");
  if (filename && strlen(filename) > CU_MAX_FILENAME)
    return cu_error(CU_EINVAL, "metadata 'filename' is longer than %d bytes", CU_MAX_FILENAME);
  cu_json_set_str(ev, "filename", filename);

  const char *device = cu_json_str(meta, "device_id");
  if (who->device) {
    if (device && strcmp(device, who->device))
      return cu_error(CU_EDENIED, "this token uploads for device '%s' only, not '%.128s'",
                      who->device, device);
    device = who->device;
  }
  if (!device)
    return cu_error(CU_EINVAL, "metadata 'device_id' is required (the recorder that made the file)");
  static const char *const name_keys[] = {"device_id", "officer_id", "case_id"};
  for (size_t i = 0; i < 3; i++) {
    const char *v = i == 0 ? device : cu_json_str(meta, name_keys[i]);
    if (v && !cu_name_valid(v))
      return cu_error(CU_EINVAL,
                      "metadata '%s' must be 1-%d characters of letters, digits and . _ : @ -",
                      name_keys[i], CU_MAX_ID_LEN);
    cu_json_set_str(ev, name_keys[i], v);
  }
  const char *rec_at = cu_json_str(meta, "recorded_at");
  if (rec_at) {
    int64_t us;
    if (cu_time_parse_rfc3339(rec_at, &us)) return cu_error_wrap(CU_EINVAL, "metadata 'recorded_at'");
    cu_json_set_time(ev, "recorded_at", us);
  }
  const char *sha = cu_json_str(meta, "sha256");
  if (sha) {
    char lower[65];
    size_t n = strlen(sha);
    for (size_t i = 0; i < n && i < 64; i++) lower[i] = (char)(sha[i] >= 'A' && sha[i] <= 'F' ? sha[i] + 32 : sha[i]);
    lower[n < 64 ? n : 64] = '\0';
    if (n != 64 || !cu_is_sha256_hex(lower))
      return cu_error(CU_EINVAL, "metadata 'sha256' must be 64 hex digits");
    cu_json_set_str(ev, "client_sha256", lower);
  }
  const char *ret = cu_json_str(meta, "retention");
  if (ret) {
    bool known = false;
    for (const char *const *c = t->cfg.retention_categories; c && *c && !known; c++) known = !strcmp(*c, ret);
    if (!known) return cu_error(CU_EINVAL, "metadata 'retention' names no configured retention category: '%.64s'", ret);
    cu_json_set_str(ev, "retention_category", ret);
  }
  json_object_set(ev, "metadata", (json_t *)meta);
  return 0;
}

static int check_space(tus *t, int64_t need) {
  int64_t free_bytes;
  int rc = cu_fs_free_bytes(t->spool_dir, &free_bytes);
  if (rc) return rc;
  if (need > free_bytes - t->cfg.reserve_bytes)
    return cu_error(CU_ENOSPC,
                    "not enough disk space for %lld more bytes (%lld free, %lld kept in reserve)",
                    (long long)need, (long long)free_bytes, (long long)t->cfg.reserve_bytes);
  return 0;
}

static int complete(tus_patch *p, tus_info *out);
static int finish_commit(tus *t, const char *id, json_t *rec);

int tus_create(tus *t, const tus_principal *who, int64_t length, const char *metadata,
               tus_info *out) {
  json_t *meta = NULL, *ev = NULL, *rec = NULL;
  char *path = NULL;
  int rc = 0;
  if (strcmp(who->role, "recorder") && strcmp(who->role, "admin")) {
    rc = cu_error(CU_EDENIED, "a %s token may not upload; use a recorder token", who->role);
    goto done;
  }
  if (length < 0) {
    rc = cu_error(CU_EINVAL, "Upload-Length must be a non-negative integer");
    goto done;
  }
  if (length > t->cfg.max_upload) {
    rc = cu_error(CU_ETOOBIG, "Upload-Length %lld is over this server's maximum of %lld bytes",
                  (long long)length, (long long)t->cfg.max_upload);
    goto done;
  }
  if ((rc = tus_meta_parse(metadata ? metadata : "", &meta))) goto done;
  ev = json_object();
  if ((rc = resolve_metadata(t, who, meta, ev))) goto done;
  if ((rc = check_space(t, length))) goto done;

  char id[CU_ID_LEN + 1];
  cu_id_new(id);
  path = spool_path(t, id);
  /* The spool file's name must survive a crash along with its bytes. */
  FILE *f = fopen(path, "wx");
  if (!f) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create spool file");
    goto done;
  }
  fclose(f);
  if ((rc = cu_fsync_dir(t->spool_dir))) goto done;

  int64_t now = cu_now_us();
  rec = json_object();
  cu_json_set_str(rec, "id", id);
  set_state(rec, TUS_ACTIVE);
  cu_json_set_int(rec, "offset", 0);
  cu_json_set_int(rec, "length", length);
  cu_json_set_str(rec, "metadata_raw", metadata);
  json_object_set_new(rec, "evidence", ev);
  ev = NULL;
  cu_json_set_str(rec, "owner", who->token_id);
  cu_json_set_str(rec, "owner_role", who->role);
  cu_json_set_str(rec, "owner_user", who->user);
  cu_json_set_time(rec, "created_at", now);
  cu_json_set_int(rec, "expires_at_us", now + t->cfg.ttl_us);
  if ((rc = commit_record(t, id, rec, 0))) {
    unlink(path);
    goto done;
  }
  atomic_fetch_add(&t->started, 1);
  cu_info("upload %s created: %lld bytes for device %s", id, (long long)length,
          cu_json_str(json_object_get(rec, "evidence"), "device_id"));
  if (length == 0) {
    /* Nothing to send: the empty file is complete now. */
    tus_patch *pp = NULL;
    if ((rc = tus_patch_begin(t, who, id, 0, 0, NULL, 0, &pp))) goto done;
    rc = tus_patch_end(pp, true, out);
    goto done;
  }
  fill_info(id, rec, out);
done:
  free(path);
  json_decref(meta);
  json_decref(ev);
  json_decref(rec);
  return rc;
}

int tus_head(tus *t, const tus_principal *who, const char *id, tus_info *out) {
  json_t *rec = NULL;
  int rc = load(t, who, id, &rec);
  if (rc) return rc;
  /* A commit that failed part-way is finished by the client's next look. */
  if (state_of(rec) == TUS_COMMITTING && lock_upload(t, id) == 0) {
    if (finish_commit(t, id, rec))
      cu_warn("upload %s: commit still failing: %s", id, cu_errmsg());
    unlock_upload(t, id);
  }
  enum tus_state s = state_of(rec);
  if (s == TUS_GONE || s == TUS_QUARANTINED) rc = gone_error(id, rec);
  else fill_info(id, rec, out);
  json_decref(rec);
  return rc;
}

/* The new state is recorded before the bytes go: a crash in between leaves
 * a spool file of an upload that is no longer open, which the next start
 * sweeps, never an open upload whose bytes are missing. */
static int make_gone(tus *t, const char *id, json_t *rec, const char *reason) {
  int64_t due = cu_json_int(rec, "expires_at_us", 0);
  set_state(rec, TUS_GONE);
  cu_json_set_str(rec, "reason", reason);
  json_object_del(rec, "hash_state");
  json_object_del(rec, "expires_at_us");
  idx_batch *b = idx_batch_new(t->ix);
  idx_batch_put_upload(b, id, rec);
  if (due) idx_batch_del_upload_due(b, id, due);
  int rc = idx_batch_commit(t->ix, b);
  idx_batch_free(b);
  if (!rc) {
    char *path = spool_path(t, id);
    unlink(path);
    free(path);
  }
  return rc;
}

int tus_terminate(tus *t, const tus_principal *who, const char *id) {
  json_t *rec = NULL;
  int rc = load(t, who, id, &rec);
  if (rc) return rc;
  if ((rc = lock_upload(t, id))) goto done;
  switch (state_of(rec)) {
  case TUS_ACTIVE:
    rc = make_gone(t, id, rec, "terminated by its owner");
    if (!rc) cu_info("upload %s terminated by its owner", id);
    break;
  case TUS_GONE:
  case TUS_QUARANTINED: rc = gone_error(id, rec); break;
  default:
    rc = cu_error(CU_EDENIED, "upload %s is complete: it is evidence now and cannot be deleted", id);
  }
  unlock_upload(t, id);
done:
  json_decref(rec);
  return rc;
}

int tus_status_json(tus *t, const tus_principal *who, const char *id, json_t **out) {
  json_t *rec = NULL;
  int rc = idx_upload_get(t->ix, id, &rec);
  if (rc) return rc;
  const char *owner = cu_json_str(rec, "owner");
  if (strcmp(who->role, "admin") && (!owner || !who->token_id || strcmp(owner, who->token_id))) {
    json_decref(rec);
    return cu_error(CU_EDENIED, "upload %s belongs to another token", id);
  }
  json_t *o = json_object();
  cu_json_set_str(o, "id", id);
  json_object_set(o, "state", json_object_get(rec, "state"));
  json_object_set(o, "offset", json_object_get(rec, "offset"));
  json_object_set(o, "length", json_object_get(rec, "length"));
  static const char *const copy[] = {"created_at", "evidence_id", "sha256", "reason"};
  for (size_t i = 0; i < sizeof copy / sizeof *copy; i++) {
    json_t *v = json_object_get(rec, copy[i]);
    if (v && (strcmp(copy[i], "evidence_id") || state_of(rec) == TUS_COMPLETED))
      json_object_set(o, copy[i], v);
  }
  int64_t exp = cu_json_int(rec, "expires_at_us", 0);
  if (exp) cu_json_set_time(o, "expires_at", exp);
  json_t *ev = json_object_get(rec, "evidence");
  if (ev) json_object_set(o, "metadata", json_object_get(ev, "metadata"));
  json_decref(rec);
  *out = o;
  return 0;
}

/* ---- PATCH ------------------------------------------------------------- */

static int on_checkpoint(void *ud, uint64_t offset, const char *hash_state) {
  tus_patch *p = ud;
  json_t *rec = json_deep_copy(p->rec);
  cu_json_set_int(rec, "offset", (int64_t)offset);
  cu_json_set_str(rec, "hash_state", hash_state);
  int rc = commit_record(p->t, p->id, rec, 0);
  json_decref(rec);
  return rc;
}

static int parse_checksum(tus_patch *p, const char *hdr) {
  const char *sp = strchr(hdr, ' ');
  if (!sp) return cu_error(CU_EINVAL, "Upload-Checksum must be '<algorithm> <base64 digest>'");
  char alg[16];
  size_t alen = (size_t)(sp - hdr);
  if (alen >= sizeof alg) return cu_error(CU_EUNSUPPORTED, "checksum algorithm is not supported (use sha1 or sha256)");
  memcpy(alg, hdr, alen);
  alg[alen] = '\0';
  int rc = cu_digest_new(&p->ck, alg);
  if (rc) return rc;
  cu_buf want = CU_BUF_INIT(64);
  rc = cu_b64_decode(sp + 1, strlen(sp + 1), &want);
  size_t need = !strcmp(alg, "sha1") ? 20 : 32;
  if (rc || want.len != need)
    rc = cu_error(CU_EINVAL, "Upload-Checksum digest is not a Base64 %s digest", alg);
  else {
    memcpy(p->ck_want, want.data, want.len);
    p->ck_len = want.len;
  }
  cu_buf_release(&want);
  return rc;
}

static void patch_free(tus_patch *p) {
  spool_close(p->sp);
  cu_digest_free(p->ck);
  json_decref(p->rec);
  unlock_upload(p->t, p->id);
  free(p);
}

int tus_patch_begin(tus *t, const tus_principal *who, const char *id, int64_t offset,
                    int64_t length, const char *checksum, int64_t content_length,
                    tus_patch **out) {
  json_t *rec = NULL;
  int rc = load(t, who, id, &rec);
  if (rc) return rc;
  if ((rc = lock_upload(t, id))) {
    json_decref(rec);
    return rc;
  }
  tus_patch *p = cu_xcalloc(1, sizeof *p);
  p->t = t;
  memcpy(p->id, id, sizeof p->id);
  p->rec = rec;
  p->start = offset;
  p->length = cu_json_int(rec, "length", 0);
  int64_t cur = cu_json_int(rec, "offset", 0);
  char *path = NULL;
  if (length >= 0 && length != p->length) {
    rc = cu_error(CU_EINVAL, "Upload-Length %lld differs from the upload's length %lld; it cannot change",
                  (long long)length, (long long)p->length);
    goto fail;
  }
  switch (state_of(rec)) {
  case TUS_GONE:
  case TUS_QUARANTINED: rc = gone_error(id, rec); goto fail;
  case TUS_COMMITTING:
    /* A commit that failed earlier (or before a crash): finish it now. */
    if ((rc = finish_commit(t, id, rec))) goto fail;
    /* fall through */
  case TUS_COMPLETED:
    if (offset == p->length && content_length <= 0) {
      *out = p; /* an empty PATCH on a complete upload: nothing to do */
      return 0;
    }
    rc = cu_error(CU_ECONFLICT, "upload %s is already complete (%lld bytes)", id, (long long)p->length);
    goto fail;
  case TUS_ACTIVE: break;
  }
  if (offset != cur) {
    rc = cu_error(CU_ECONFLICT, "Upload-Offset %lld does not match the upload's offset %lld",
                  (long long)offset, (long long)cur);
    goto fail;
  }
  if (content_length > p->length - offset) {
    rc = cu_error(CU_ETOOBIG, "the body (%lld bytes) would run past Upload-Length (%lld)",
                  (long long)content_length, (long long)p->length);
    goto fail;
  }
  if (checksum && (rc = parse_checksum(p, checksum))) goto fail;
  if ((rc = check_space(t, content_length >= 0 ? content_length : 0))) goto fail;
  spool_opts so = {.reserve_bytes = t->cfg.reserve_bytes};
  if (!p->ck) {
    /* Without a checksum, a broken transfer keeps what arrived, so long
     * requests make their progress durable as they go. */
    so.checkpoint_every = t->cfg.checkpoint_every;
    so.checkpoint = on_checkpoint;
    so.ud = p;
  }
  path = spool_path(t, id);
  rc = spool_open(&p->sp, path, (uint64_t)offset, cu_json_str(rec, "hash_state"), &so);
  free(path);
  if (rc) goto fail;
  *out = p;
  return 0;
fail:
  patch_free(p);
  return rc;
}

static int patch_fail(tus_patch *p, int rc) {
  if (!p->err) {
    p->err = rc;
    snprintf(p->errmsg, sizeof p->errmsg, "%s", cu_errmsg());
  }
  return rc;
}

int tus_patch_write(tus_patch *p, const void *data, size_t n) {
  if (p->err) return cu_error(p->err, "%s", p->errmsg);
  if (!p->sp) return patch_fail(p, cu_error(CU_ETOOBIG, "upload %s is already complete", p->id));
  if ((int64_t)n > p->length - p->start - p->received)
    return patch_fail(p, cu_error(CU_ETOOBIG, "the body runs past Upload-Length (%lld bytes)",
                                  (long long)p->length));
  if (p->ck) cu_digest_update(p->ck, data, n);
  int rc = spool_write(p->sp, data, n);
  if (rc) {
    patch_fail(p, rc);
    /* Give the space back now, not when the client stops sending. */
    if (spool_rollback(p->sp)) cu_err("upload %s: cannot roll back its spool: %s", p->id, cu_errmsg());
    return cu_error(p->err, "%s", p->errmsg);
  }
  p->received += (int64_t)n;
  atomic_fetch_add(&p->t->bytes, n);
  return 0;
}

int tus_patch_end(tus_patch *p, bool body_complete, tus_info *out) {
  tus *t = p->t;
  int rc = p->err ? cu_error(p->err, "%s", p->errmsg) : 0;
  memset(out, 0, sizeof *out);
  if (!p->sp) { /* completed upload, empty PATCH */
    fill_info(p->id, p->rec, out);
    patch_free(p);
    return rc;
  }
  if (!rc && !body_complete && p->ck)
    rc = cu_error(CU_EINVAL, "the request body ended early; a chunk with a checksum is all or nothing");
  if (!rc && p->ck) {
    unsigned char got[64];
    size_t n = cu_digest_final(p->ck, got);
    if (n != p->ck_len || memcmp(got, p->ck_want, n))
      rc = cu_error(CU_ECHECKSUM, "Upload-Checksum does not match the %lld bytes received; the chunk was discarded",
                    (long long)p->received);
  }
  if (rc) {
    /* Nothing of this request is kept past the last durable point. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cu_errmsg());
    if (spool_rollback(p->sp)) cu_err("upload %s: cannot roll back its spool: %s", p->id, cu_errmsg());
    json_t *rec = NULL;
    if (idx_upload_get(t->ix, p->id, &rec) == 0) {
      fill_info(p->id, rec, out);
      json_decref(rec);
    }
    if (rc == CU_ENOSPC) atomic_fetch_add(&t->failed, 1);
    patch_free(p);
    return cu_error(rc, "%s", msg);
  }
  uint64_t off;
  cu_buf hs = CU_BUF_INIT(4096);
  rc = spool_sync(p->sp, &off, &hs);
  if (!rc) {
    if ((int64_t)off == p->length) {
      rc = complete(p, out);
    } else {
      int64_t due = cu_json_int(p->rec, "expires_at_us", 0);
      cu_json_set_int(p->rec, "offset", (int64_t)off);
      cu_json_set_str(p->rec, "hash_state", hs.data);
      cu_json_set_int(p->rec, "expires_at_us", cu_now_us() + t->cfg.ttl_us);
      rc = commit_record(t, p->id, p->rec, due);
      if (!rc) fill_info(p->id, p->rec, out);
    }
  }
  cu_buf_release(&hs);
  if (rc && rc != CU_ECHECKSUM) {
    int keep = rc;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cu_errmsg());
    if (p->sp) spool_rollback(p->sp);
    rc = cu_error(keep, "%s", msg);
  }
  patch_free(p);
  return rc;
}

/* ---- completion -------------------------------------------------------- */

/* Link into quarantine/, record the state, then drop the spool name: at
 * every moment the bytes have a name that the recorded state explains. */
static int quarantine(tus_patch *p, const char *sha, const char *claimed, tus_info *out) {
  tus *t = p->t;
  char *from = spool_path(t, p->id), *to = cu_xasprintf("%s/%s.part", t->quarantine_dir, p->id);
  int rc = 0;
  unlink(to); /* left by a crash in an earlier attempt */
  if (link(from, to) < 0) rc = cu_error_errno(CU_EIO, errno, "cannot quarantine upload %s", p->id);
  if (!rc) rc = cu_fsync_dir(t->quarantine_dir);
  if (rc) {
    free(from);
    free(to);
    return rc;
  }
  int64_t due = cu_json_int(p->rec, "expires_at_us", 0);
  char *why = cu_xasprintf("the file's SHA-256 is %s but the client declared %s; the bytes are kept "
                           "in quarantine and were not accepted as evidence",
                           sha, claimed);
  set_state(p->rec, TUS_QUARANTINED);
  cu_json_set_int(p->rec, "offset", p->length);
  cu_json_set_str(p->rec, "sha256", sha);
  cu_json_set_str(p->rec, "reason", why);
  cu_json_set_time(p->rec, "quarantined_at", cu_now_us());
  json_object_del(p->rec, "hash_state");
  json_object_del(p->rec, "expires_at_us");
  idx_batch *b = idx_batch_new(t->ix);
  idx_batch_put_upload(b, p->id, p->rec);
  if (due) idx_batch_del_upload_due(b, p->id, due);
  if (t->lg) {
    /* Refused bytes are part of the record too: who sent what, and why it
     * is not evidence. */
    const json_t *meta = json_object_get(p->rec, "evidence");
    json_t *ev = json_object();
    cu_json_set_str(ev, "type", "quarantined");
    cu_json_set_str(ev, "upload_id", p->id);
    cu_json_set_str(ev, "sha256", sha);
    cu_json_set_str(ev, "client_sha256", claimed);
    cu_json_set_int(ev, "size", p->length);
    cu_json_set_str(ev, "device_id", cu_json_str(meta, "device_id"));
    cu_json_set_str(ev, "filename", cu_json_str(meta, "filename"));
    cu_json_set_str(ev, "actor", cu_json_str(p->rec, "owner"));
    rc = ledger_commit(t->lg, b, &ev, 1, NULL);
    json_decref(ev);
  } else {
    rc = idx_batch_commit(t->ix, b);
  }
  idx_batch_free(b);
  if (!rc) unlink(from);
  free(from);
  free(to);
  fill_info(p->id, p->rec, out);
  atomic_fetch_add(&t->failed, 1);
  cu_warn("upload %s quarantined: %s", p->id, why);
  if (!rc) rc = cu_error(CU_ECHECKSUM, "%s", why);
  free(why);
  return rc;
}

static int complete(tus_patch *p, tus_info *out) {
  tus *t = p->t;
  char sha[65];
  spool_digest(p->sp, sha);
  spool_close(p->sp);
  p->sp = NULL;
  json_t *ev = json_object_get(p->rec, "evidence");
  const char *claimed = cu_json_str(ev, "client_sha256");
  if (claimed && strcmp(claimed, sha)) return quarantine(p, sha, claimed, out);

  char evid[CU_ID_LEN + 1];
  cu_id_new(evid);
  set_state(p->rec, TUS_COMMITTING);
  cu_json_set_int(p->rec, "offset", p->length);
  cu_json_set_str(p->rec, "sha256", sha);
  cu_json_set_str(p->rec, "evidence_id", evid);
  cu_json_set_time(p->rec, "received_at", cu_now_us());
  json_object_del(p->rec, "hash_state");
  int rc = commit_record(t, p->id, p->rec, 0);
  if (!rc) rc = finish_commit(t, p->id, p->rec);
  if (rc) return rc;
  fill_info(p->id, p->rec, out);
  return 0;
}

static json_t *evidence_record(const char *upload_id, const json_t *rec) {
  json_t *ev = json_deep_copy(json_object_get(rec, "evidence"));
  if (!ev) ev = json_object();
  cu_json_set_str(ev, "id", cu_json_str(rec, "evidence_id"));
  cu_json_set_str(ev, "upload_id", upload_id);
  cu_json_set_str(ev, "sha256", cu_json_str(rec, "sha256"));
  cu_json_set_int(ev, "size", cu_json_int(rec, "length", 0));
  const char *received = cu_json_str(rec, "received_at");
  cu_json_set_str(ev, "received_at", received);
  if (!cu_json_str(ev, "recorded_at")) {
    /* The recorder did not say when it recorded: index the file by arrival
     * and say so, rather than guess. */
    cu_json_set_str(ev, "recorded_at", received);
    cu_json_set_str(ev, "recorded_at_source", "received");
  } else {
    cu_json_set_str(ev, "recorded_at_source", "metadata");
  }
  if (cu_json_str(ev, "client_sha256")) json_object_set_new(ev, "client_sha256_verified", json_true());
  json_t *by = json_object();
  cu_json_set_str(by, "token_id", cu_json_str(rec, "owner"));
  cu_json_set_str(by, "role", cu_json_str(rec, "owner_role"));
  cu_json_set_str(by, "user", cu_json_str(rec, "owner_user"));
  json_object_set_new(ev, "uploaded_by", by);
  json_t *media = json_object();
  cu_json_set_str(media, "status", "pending");
  json_object_set_new(ev, "media", media);
  cu_json_set_str(ev, "state", "active");
  return ev;
}

/* The ledger's record of the commit: what arrived, from whom, and its hash. */
static json_t *ingested_event(const json_t *ev) {
  static const char *const copied[] = {"sha256", "size", "filename", "device_id", "officer_id",
                                       "case_id", "recorded_at", "received_at", "upload_id",
                                       "retention_category"};
  json_t *e = json_object();
  cu_json_set_str(e, "type", "ingested");
  cu_json_set_str(e, "evidence", cu_json_str(ev, "id"));
  for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
    json_t *v = json_object_get(ev, copied[i]);
    if (v && !json_is_null(v)) json_object_set(e, copied[i], v);
  }
  json_t *by = json_object_get(ev, "uploaded_by");
  if (by) json_object_set(e, "actor", by);
  return e;
}

/* Object first, then the records: a crash in between leaves a committing
 * record and an object, which the next call (or tus_recover) completes. */
static int finish_commit(tus *t, const char *id, json_t *rec) {
  const char *sha = cu_json_str(rec, "sha256");
  int64_t length = cu_json_int(rec, "length", 0);
  char *path = spool_path(t, id);
  bool dd = false;
  int rc = 0;
  struct stat sb;
  if (stat(path, &sb) == 0) {
    rc = store_commit(t->st, path, sha, (uint64_t)length, &dd);
  } else if (!store_has(t->st, sha)) {
    cu_alarm("upload %s: its spool file and its object %s are both missing", id, sha);
    rc = cu_error(CU_ECORRUPT, "upload %s lost its bytes before they were committed", id);
  }
  free(path);
  if (rc) return rc;
  json_t *ev = evidence_record(id, rec);
  int64_t due = cu_json_int(rec, "expires_at_us", 0);
  set_state(rec, TUS_COMPLETED);
  json_object_del(rec, "expires_at_us");
  idx_batch *b = idx_batch_new(t->ix);
  rc = idx_batch_add_evidence(b, ev);
  if (!rc) {
    idx_batch_put_upload(b, id, rec);
    if (due) idx_batch_del_upload_due(b, id, due);
    if (t->jq) job_batch_add(t->jq, b, "probe", cu_json_str(ev, "id"), NULL);
    if (t->jq && t->lg) job_batch_add(t->jq, b, "stamp", cu_json_str(ev, "id"), NULL);
    if (t->jq) rendition_jobs_add(t->jq, b, cu_json_str(ev, "id"));
    if (t->lg) {
      json_t *events[3] = {ingested_event(ev)};
      int n = 1;
      const char *case_id = cu_json_str(ev, "case_id");
      json_t *probe = NULL;
      /* Cases are never deleted: only a case not there yet needs the lock. */
      bool locked = case_id && idx_case_get(t->ix, case_id, &probe) == CU_ENOTFOUND;
      json_decref(probe);
      if (locked) cases_lock();
      if (case_id)
        rc = cases_batch_ingest(t->ix, b, case_id, cu_json_str(ev, "id"),
                                json_object_get(ev, "uploaded_by"), events, &n);
      if (!rc) rc = ledger_commit(t->lg, b, events, n, NULL);
      if (locked) cases_unlock();
      for (int i = 0; i < n; i++) json_decref(events[i]);
    } else {
      rc = idx_batch_commit(t->ix, b);
    }
  }
  idx_batch_free(b);
  if (!rc) {
    if (t->jq) job_queue_kick(t->jq);
    atomic_fetch_add(&t->completed, 1);
    cu_info("upload %s committed as evidence %s (sha256 %s, %lld bytes%s)", id,
            cu_json_str(ev, "id"), sha, (long long)length, dd ? ", bytes already stored" : "");
  } else {
    set_state(rec, TUS_COMMITTING);
    if (due) cu_json_set_int(rec, "expires_at_us", due);
  }
  json_decref(ev);
  return rc;
}

/* ---- recovery and expiry ----------------------------------------------- */

typedef struct {
  tus *t;
  int n;
} walk_ctx;

static int recover_one(const char *id, json_t *rec, void *ud) {
  walk_ctx *c = ud;
  if (state_of(rec) == TUS_ACTIVE) {
    /* Bytes past the durable offset were never acknowledged: give their
     * space back now rather than at the upload's next PATCH. */
    char *path = spool_path(c->t, id);
    struct stat sb;
    int64_t off = cu_json_int(rec, "offset", 0);
    if (stat(path, &sb) == 0 && sb.st_size > off && truncate(path, off) < 0)
      cu_warn("upload %s: cannot trim its spool file: %s", id, strerror(errno));
    free(path);
    return 0;
  }
  if (state_of(rec) != TUS_COMMITTING) return 0;
  json_t *copy = json_deep_copy(rec);
  int rc = finish_commit(c->t, id, copy);
  json_decref(copy);
  if (rc) cu_err("upload %s: cannot finish its interrupted commit: %s", id, cu_errmsg());
  else c->n++;
  return 0;
}

/* 1 if the upload is open (its spool file must stay), 0 if not, < 0 if the
 * index cannot say: then the file stays too. */
static int is_open_upload(tus *t, const char *id) {
  json_t *rec = NULL;
  int rc = idx_upload_get(t->ix, id, &rec);
  if (rc == CU_ENOTFOUND) return 0;
  if (rc) return rc;
  enum tus_state s = state_of(rec);
  json_decref(rec);
  return s == TUS_ACTIVE || s == TUS_COMMITTING;
}

int tus_recover(tus *t) {
  walk_ctx c = {t, 0};
  int rc = idx_upload_each_active(t->ix, recover_one, &c);
  if (rc) return rc;
  if (c.n) cu_info("finished %d upload commit(s) interrupted by a crash", c.n);
  DIR *d = opendir(t->spool_dir);
  if (!d) return cu_error_errno(CU_EIO, errno, "cannot read %s", t->spool_dir);
  struct dirent *e;
  int swept = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char id[CU_ID_LEN + 1];
    size_t n = strlen(e->d_name);
    bool ours = n == CU_ID_LEN + 5 && !strcmp(e->d_name + CU_ID_LEN, ".part");
    if (ours) {
      memcpy(id, e->d_name, CU_ID_LEN);
      id[CU_ID_LEN] = '\0';
      ours = cu_id_valid(id);
    }
    if (ours && is_open_upload(t, id) != 0) continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0) swept++;
  }
  closedir(d);
  if (swept) cu_info("swept %d spool file(s) that belonged to no open upload", swept);
  return 0;
}

static int sweep_one(const char *id, int64_t expires_us, void *ud) {
  walk_ctx *c = ud;
  tus *t = c->t;
  if (lock_upload(t, id)) return 0; /* in use right now: not expired */
  json_t *rec = NULL;
  int rc = idx_upload_get(t->ix, id, &rec);
  enum tus_state s = rc ? TUS_GONE : state_of(rec);
  if (!rc && s == TUS_ACTIVE && cu_json_int(rec, "expires_at_us", 0) == expires_us) {
    if (make_gone(t, id, rec, "expired before it was completed") == 0) {
      c->n++;
      cu_info("upload %s expired unfinished; its spool file was removed", id);
    }
  } else if (!rc && s == TUS_COMMITTING) {
    finish_commit(t, id, rec);
  } else {
    idx_batch *b = idx_batch_new(t->ix); /* a stale entry */
    idx_batch_del_upload_due(b, id, expires_us);
    idx_batch_commit(t->ix, b);
    idx_batch_free(b);
  }
  json_decref(rec);
  unlock_upload(t, id);
  return 0;
}

int tus_sweep(tus *t, int64_t now_us, int *expired) {
  walk_ctx c = {t, 0};
  int rc = idx_upload_due(t->ix, now_us, sweep_one, &c);
  if (expired) *expired = c.n;
  return rc;
}
