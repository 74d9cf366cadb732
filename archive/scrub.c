/* DESIGN: one thread. It walks the evidence records in id order and
 * re-hashes each one's object, throttled to the configured rate and with
 * the page cache told not to keep the bytes (a scrub must not evict what
 * reviewers are watching). A requested pass preempts the background walk,
 * which carries on afterwards. The background walk's position (the last
 * evidence id it checked) is saved in the index every few seconds, so a
 * restart resumes the walk rather than starting it over. */
#include "scrub.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "hash.h"
#include "hex.h"
#include "id.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

#define CHUNK (1 << 20)

typedef struct {
  int64_t started_us, finished_us;
  uint64_t objects, bytes;
  json_t *failures;
} pass_t;

struct scrubber {
  idx *ix;
  store *st;
  ledger *lg;
  scrub_opts o;
  pthread_t thread;
  bool running_thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_int stop;      /* the whole scrubber */
  atomic_int preempt;   /* a requested pass wants the background walk to yield */
  bool requested, in_pass;
  pass_t pass;          /* the last requested pass */
  pass_t bg;            /* the current background walk */
  int64_t bg_passes;
  atomic_uint_least64_t t_objects, t_bytes, t_failures;
};

static void sleep_us(int64_t us) {
  if (us <= 0) return;
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) && errno == EINTR) {
  }
}

int scrub_object(store *st, const char *sha256, int64_t rate, const atomic_int *stop,
                 char actual[65], uint64_t *bytes) {
  int fd = -1;
  uint64_t size = 0;
  *bytes = 0;
  actual[0] = '\0';
  int rc = store_open_object(st, sha256, &fd, &size);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "the object %s is missing", sha256);
  if (rc) return rc;
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  cu_sha256 *h = cu_sha256_new();
  char *buf = cu_xmalloc(CHUNK);
  int64_t t0 = cu_now_us();
  uint64_t done = 0;
  for (;;) {
    if (stop && atomic_load(stop)) {
      rc = cu_error(CU_EBUSY, "stopped");
      break;
    }
    ssize_t n = read(fd, buf, CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = cu_error_errno(CU_EIO, errno, "cannot read the object %s", sha256);
      break;
    }
    if (n == 0) break;
    cu_sha256_update(h, buf, (size_t)n);
    posix_fadvise(fd, (off_t)done, n, POSIX_FADV_DONTNEED);
    done += (uint64_t)n;
    if (rate > 0) sleep_us((int64_t)(done * 1000000 / (uint64_t)rate) - (cu_now_us() - t0));
  }
  close(fd);
  free(buf);
  if (!rc) {
    unsigned char d[32];
    cu_sha256_final(h, d);
    cu_hex_encode(d, 32, actual);
    if (strcmp(actual, sha256))
      rc = cu_error(CU_ECORRUPT, "the object %s now hashes to %s", sha256, actual);
  }
  cu_sha256_free(h);
  *bytes = done;
  return rc;
}

/* The evidence record remembers the finding, so each one is ledgered once. */
typedef struct {
  const char *actual, *reason;
  bool is_new;
} mark_ctx;

static int mark(json_t *rec, void *ud) {
  mark_ctx *m = ud;
  json_t *old = json_object_get(rec, "integrity");
  const char *was = cu_json_str(old, "actual_sha256");
  if (old && !strcmp(cu_json_str(old, "status") ? cu_json_str(old, "status") : "", "failed") &&
      !strcmp(was ? was : "", m->actual ? m->actual : ""))
    return 1; /* known already */
  json_t *i = json_object();
  cu_json_set_str(i, "status", "failed");
  cu_json_set_str(i, "reason", m->reason);
  cu_json_set_str(i, "actual_sha256", m->actual);
  cu_json_set_time(i, "found_at", cu_now_us());
  json_object_set_new(rec, "integrity", i);
  m->is_new = true;
  return 0;
}

/* A finding about the original (kind NULL) or one of its renditions: an
 * alarm, counted, listed in the pass, and ledgered once (the record
 * remembers the finding). rec is the evidence record, or the rendition's. */
static void report(scrubber *s, const char *id, const char *kind, json_t *rec,
                   const char *actual, const char *reason, pass_t *p) {
  const char *sha = cu_json_str(rec, "sha256");
  atomic_fetch_add(&s->t_failures, 1);
  cu_alarm("scrub: evidence %s%s%s: %s", id, kind ? ", its " : "", kind ? kind : "", reason);
  json_t *f = json_object();
  cu_json_set_str(f, "evidence", id);
  if (kind) cu_json_set_str(f, "rendition", kind);
  cu_json_set_str(f, "sha256", sha);
  json_object_set_new(f, "actual_sha256", actual && actual[0] ? json_string(actual) : json_null());
  cu_json_set_str(f, "reason", reason);
  pthread_mutex_lock(&s->mu);
  json_array_append_new(p->failures, f);
  pthread_mutex_unlock(&s->mu);
  mark_ctx m = {actual && actual[0] ? actual : NULL, reason, false};
  idx_batch *b = NULL;
  if (kind) {
    if (mark(rec, &m) || !m.is_new) return;
    b = idx_batch_new(s->ix);
    idx_batch_put_rendition(b, id, kind, rec);
  } else if (idx_evidence_update(s->ix, id, mark, &m) || !m.is_new) {
    return;
  }
  json_t *ev = json_object();
  cu_json_set_str(ev, "type", "scrub_failed");
  cu_json_set_str(ev, "evidence", id);
  if (kind) cu_json_set_str(ev, "kind", kind);
  cu_json_set_str(ev, "sha256", sha);
  cu_json_set_str(ev, "actual_sha256", m.actual);
  cu_json_set_str(ev, "reason", reason);
  cu_json_set_str(ev, "actor", "scrubber");
  if (ledger_commit(s->lg, b, &ev, 1, NULL))
    cu_err("scrub: cannot record the finding for evidence %s in the ledger: %s", id, cu_errmsg());
  json_decref(ev);
  idx_batch_free(b);
}

typedef struct {
  scrubber *s;
  pass_t *p;
  int64_t rate;
  bool background;
  char last_id[CU_ID_LEN + 1]; /* the background walk's position */
  int64_t saved_us;
} walk_ctx;

#define POSITION_EVERY_US (10 * 1000000LL)

static void save_position(scrubber *s, const char *id) {
  idx_batch *b = idx_batch_new(s->ix);
  json_t *v = json_string(id);
  idx_batch_put_meta(b, "scrub_position", v);
  json_decref(v);
  if (idx_batch_commit(s->ix, b)) cu_warn("scrub: cannot save its position: %s", cu_errmsg());
  idx_batch_free(b);
}

/* Re-hashes one object (the original, kind NULL, or a rendition), counts
 * it and reports a finding. Returns 1 when the walk must stop. */
static int scrub_one(walk_ctx *w, const char *id, const char *kind, json_t *rec, const char *sha) {
  scrubber *s = w->s;
  char actual[65];
  uint64_t bytes = 0;
  int rc = scrub_object(s->st, sha, w->rate, w->background ? &s->preempt : &s->stop, actual, &bytes);
  if (rc == CU_EBUSY && (atomic_load(&s->stop) || atomic_load(&s->preempt))) return 1;
  pthread_mutex_lock(&s->mu);
  w->p->objects++;
  w->p->bytes += bytes;
  pthread_mutex_unlock(&s->mu);
  atomic_fetch_add(&s->t_objects, 1);
  atomic_fetch_add(&s->t_bytes, bytes);
  if (rc == CU_ECORRUPT || rc == CU_ENOTFOUND) report(s, id, kind, rec, actual, cu_errmsg(), w->p);
  else if (rc) cu_err("scrub: evidence %s%s%s: %s", id, kind ? ", its " : "", kind ? kind : "", cu_errmsg());
  return 0;
}

/* The item's finished renditions whose bytes are not the original's.
 * Returns 1 when the walk must stop. */
static int scrub_renditions(walk_ctx *w, const char *id, const char *orig_sha) {
  scrubber *s = w->s;
  json_t *all = NULL, *r;
  const char *kind;
  if (idx_renditions(s->ix, id, &all)) return 0;
  int stop = 0;
  json_object_foreach(all, kind, r) {
    const char *state = cu_json_str(r, "state"), *sha = cu_json_str(r, "sha256");
    if (!state || strcmp(state, "done") || !sha || !cu_is_sha256_hex(sha) || !strcmp(sha, orig_sha))
      continue;
    if ((stop = scrub_one(w, id, kind, r, sha))) break;
  }
  json_decref(all);
  return stop;
}

static int check_one(const char *id, json_t *rec, void *ud) {
  walk_ctx *w = ud;
  scrubber *s = w->s;
  if (atomic_load(&s->stop) || (w->background && atomic_load(&s->preempt))) return 1;
  const char *sha = cu_json_str(rec, "sha256");
  if (!sha || !cu_is_sha256_hex(sha)) {
    report(s, id, NULL, rec, NULL, "the record has no valid sha256", w->p);
    return 0;
  }
  bool deleted = !strcmp(cu_json_str(rec, "state") ? cu_json_str(rec, "state") : "", "deleted");
  if (!deleted && (scrub_one(w, id, NULL, rec, sha) || scrub_renditions(w, id, sha))) return 1;
  if (w->background) {
    snprintf(w->last_id, sizeof w->last_id, "%s", id);
    int64_t now = cu_now_us();
    if (now - w->saved_us >= POSITION_EVERY_US) {
      save_position(s, id);
      w->saved_us = now;
    }
  }
  return 0;
}

static void pass_reset(pass_t *p) {
  json_decref(p->failures);
  memset(p, 0, sizeof *p);
  p->failures = json_array();
  p->started_us = cu_now_us();
}

static void *scrub_main(void *arg) {
  scrubber *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!atomic_load(&s->stop)) {
    if (s->requested) {
      s->requested = false;
      s->in_pass = true;
      pthread_mutex_unlock(&s->mu);
      walk_ctx w = {s, &s->pass, s->o.pass_rate, false, "", 0};
      int rc = idx_evidence_each(s->ix, NULL, check_one, &w);
      pthread_mutex_lock(&s->mu);
      if (rc) cu_err("scrub: the pass stopped: %s", cu_errmsg());
      s->pass.finished_us = cu_now_us();
      s->in_pass = false;
      atomic_store(&s->preempt, 0);
      cu_info("scrub: pass finished: %llu objects, %llu bytes, %zu failures",
              (unsigned long long)s->pass.objects, (unsigned long long)s->pass.bytes,
              json_array_size(s->pass.failures));
      pthread_cond_broadcast(&s->cv);
      continue;
    }
    if (s->o.rate <= 0) {
      pthread_cond_wait(&s->cv, &s->mu);
      continue;
    }
    pass_reset(&s->bg);
    pthread_mutex_unlock(&s->mu);
    walk_ctx w = {s, &s->bg, s->o.rate, true, "", cu_now_us()};
    json_t *pos = NULL;
    if (!idx_meta_get(s->ix, "scrub_position", &pos) && json_is_string(pos))
      snprintf(w.last_id, sizeof w.last_id, "%s", json_string_value(pos));
    json_decref(pos);
    int rc = idx_evidence_each(s->ix, cu_id_valid(w.last_id) ? w.last_id : NULL, check_one, &w);
    bool interrupted = atomic_load(&s->preempt) || atomic_load(&s->stop);
    /* Where to go on from: here after an interruption, the start after a
     * whole pass. */
    save_position(s, interrupted ? w.last_id : "");
    pthread_mutex_lock(&s->mu);
    if (rc) cu_err("scrub: the background walk stopped: %s", cu_errmsg());
    if (interrupted) continue;
    s->bg.finished_us = cu_now_us();
    s->bg_passes++;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t idle = s->o.idle_after_us > 0 ? s->o.idle_after_us : 3600 * 1000000LL;
    ts.tv_sec += idle / 1000000;
    if (!s->requested && !atomic_load(&s->stop)) pthread_cond_timedwait(&s->cv, &s->mu, &ts);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int scrub_start(scrubber **out, idx *ix, store *st, ledger *lg, const scrub_opts *opts) {
  scrubber *s = cu_xcalloc(1, sizeof *s);
  s->ix = ix;
  s->st = st;
  s->lg = lg;
  s->o = *opts;
  s->pass.failures = json_array();
  s->bg.failures = json_array();
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->thread, NULL, scrub_main, s)) {
    scrub_free(s);
    return cu_error(CU_EIO, "cannot start the scrubber thread");
  }
  s->running_thread = true;
  *out = s;
  return 0;
}

void scrub_free(scrubber *s) {
  if (!s) return;
  if (s->running_thread) {
    atomic_store(&s->stop, 1);
    /* The background walk watches preempt while it reads an object (at the
     * scrub rate, a large one takes minutes): stopping must end that too. */
    atomic_store(&s->preempt, 1);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
  }
  json_decref(s->pass.failures);
  json_decref(s->bg.failures);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

static json_t *pass_json(const pass_t *p) {
  if (!p->started_us) return json_null();
  json_t *o = json_object();
  cu_json_set_time(o, "started_at", p->started_us);
  if (p->finished_us) cu_json_set_time(o, "finished_at", p->finished_us);
  else json_object_set_new(o, "finished_at", json_null());
  cu_json_set_int(o, "objects", (int64_t)p->objects);
  cu_json_set_int(o, "bytes", (int64_t)p->bytes);
  json_object_set_new(o, "failures", json_deep_copy(p->failures));
  return o;
}

json_t *scrub_status(scrubber *s) {
  pthread_mutex_lock(&s->mu);
  json_t *o = json_object();
  json_object_set_new(o, "running", json_boolean(s->in_pass || s->requested));
  json_object_set_new(o, "pass", pass_json(&s->pass));
  json_t *bg = json_object();
  cu_json_set_int(bg, "rate", s->o.rate);
  cu_json_set_int(bg, "completed_passes", s->bg_passes);
  json_object_set_new(bg, "current", s->o.rate > 0 ? pass_json(&s->bg) : json_null());
  json_object_set_new(o, "background", bg);
  pthread_mutex_unlock(&s->mu);
  return o;
}

json_t *scrub_request(scrubber *s) {
  pthread_mutex_lock(&s->mu);
  if (!s->in_pass && !s->requested) {
    s->requested = true;
    pass_reset(&s->pass);
    atomic_store(&s->preempt, 1);
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return scrub_status(s);
}

void scrub_totals(scrubber *s, scrub_counts *out) {
  out->objects = atomic_load(&s->t_objects);
  out->bytes = atomic_load(&s->t_bytes);
  out->failures = atomic_load(&s->t_failures);
}
