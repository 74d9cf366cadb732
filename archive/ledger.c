/* DESIGN: group commit. A synced RocksDB write costs a few hundred
 * microseconds, far more than hashing an event, so appends queue up. Each
 * caller first canonicalises and hashes its own events (on its own core),
 * then queues; the first caller to find no writer at work becomes the
 * writer: it takes everything queued, numbers the events in queue order,
 * extends the in-memory right edge of the tree (merkle_frontier) and writes
 * the callers' batches, the entries and every newly completed subtree hash
 * as one synced write. It then hands the writer role to the first caller
 * that queued meanwhile, and wakes its group as a chain. The frontier is
 * touched only by the writer; if the write fails it is put back, so a
 * failed commit leaves no gap.
 *
 * Signing is off that path: a signer thread wakes when the tree grows,
 * waits out the interval since its last head, proves the new head
 * consistent with the last one from the stored tree (never two
 * inconsistent heads), signs the checkpoint and stores it. */
#include "ledger.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cu_limits.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "id.h"
#include "log.h"
#include "note.h"
#include "ossl_err.h"
#include "timeu.h"
#include "banned.h"

/* One caller's part of a group. The caller does the per-event work (the
 * canonical bytes, the leaf hash) before it queues, on its own core. */
typedef struct commit_req {
  idx_batch *b;
  int n;
  char **bytes;
  size_t *lens;
  merkle_hash *leaves;
  char (*evidence)[CU_ID_LEN + 1]; /* "" when an event names no evidence */
  uint64_t first;
  int rc;
  char err[512];
  bool done;
  sem_t sem; /* posted once: when done, or when handed the writer role */
  struct commit_req *next;
  struct commit_req *wake; /* the next of the group to wake, once done */
  /* Room for a few events without allocating (one is the common case). */
  char *bytes_in[4];
  size_t lens_in[4];
  merkle_hash leaves_in[4];
  char evidence_in[4][CU_ID_LEN + 1];
} commit_req;

struct ledger {
  idx *ix;
  unsigned char seed[32], pub[32];
  char origin[NOTE_MAX_ORIGIN + 1];
  int64_t interval_us;

  pthread_mutex_t mu; /* the queue and the writer role */
  commit_req *head, *tail;
  bool writing;
  merkle_frontier fr; /* the writer's */

  pthread_mutex_t state_mu; /* committed size and root; the signer's state */
  pthread_cond_t grew_cv;
  uint64_t size;
  merkle_hash root;
  uint64_t sth_size;
  merkle_hash sth_root;
  bool have_sth;
  int64_t sth_at_us;
  bool stop, signer_running, inconsistent;
  bool signer_idle; /* waiting for the tree to grow */
  pthread_t signer;
  ledger_sth_hook hook;
  void *hook_ud;
};

static int node_get(void *ud, unsigned level, uint64_t index, merkle_hash out) {
  return idx_ledger_node_get(ud, level, index, out);
}

/* ---- keys -------------------------------------------------------------- */

static int read_key(const char *path, unsigned char seed[32]) {
  if (access(path, F_OK) && errno == ENOENT)
    return cu_error(CU_ENOTFOUND, "%s does not exist", path);
  cu_buf pem = CU_BUF_INIT(16384);
  int rc = cu_read_small_file(path, pem.max, &pem);
  if (rc) {
    cu_buf_release(&pem);
    return rc;
  }
  BIO *bio = BIO_new_mem_buf(pem.data, (int)pem.len);
  EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  size_t len = 32;
  if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519 ||
      EVP_PKEY_get_raw_private_key(k, seed, &len) != 1 || len != 32)
    rc = ossl_fail(CU_ECORRUPT, "the ledger key is not an Ed25519 private key");
  EVP_PKEY_free(k);
  BIO_free(bio);
  cu_buf_release(&pem);
  return rc;
}

static int write_pem(const char *path, EVP_PKEY *k, bool private_key) {
  BIO *bio = BIO_new(BIO_s_mem());
  int ok = bio && (private_key ? PEM_write_bio_PKCS8PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL)
                               : PEM_write_bio_PUBKEY(bio, k));
  char *data = NULL;
  long n = ok ? BIO_get_mem_data(bio, &data) : 0;
  int rc = ok && n > 0 ? cu_write_file_durable(path, data, (size_t)n, private_key ? 0600 : 0644, 0)
                       : ossl_fail(CU_EIO, "cannot encode the ledger key");
  BIO_free(bio);
  return rc;
}

static int make_key(const char *dir, unsigned char seed[32]) {
  unsigned char pub[32];
  int rc = note_keygen(seed, pub);
  if (rc) return rc;
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  if (!k) return ossl_fail(CU_EIO, "cannot make the ledger key");
  char *pub_path = cu_path_join(dir, "ledger.pub"), *key_path = cu_path_join(dir, "ledger.key");
  /* The public half first: a crash in between leaves no private key, and
   * the next start makes a fresh pair. */
  rc = write_pem(pub_path, k, false);
  if (!rc) rc = write_pem(key_path, k, true);
  if (!rc) cu_info("ledger: made a signing key in %s (mode 0600)", key_path);
  EVP_PKEY_free(k);
  free(pub_path);
  free(key_path);
  return rc;
}

int ledger_load_public_key(const char *keys_dir, unsigned char pub[32]) {
  char *path = cu_path_join(keys_dir, "ledger.key");
  unsigned char seed[32];
  int rc = read_key(path, seed);
  if (!rc) rc = note_public(seed, pub);
  OPENSSL_cleanse(seed, sizeof seed);
  free(path);
  return rc;
}

static int load_or_make_key(ledger *lg, const char *dir) {
  char *path = cu_path_join(dir, "ledger.key");
  int rc = read_key(path, lg->seed);
  if (rc == CU_ENOTFOUND) {
    if (lg->size) {
      rc = cu_error(CU_ECORRUPT, "the ledger has %llu events but its signing key %s is missing",
                    (unsigned long long)lg->size, path);
    } else {
      rc = make_key(dir, lg->seed);
    }
  }
  if (!rc) rc = note_public(lg->seed, lg->pub);
  free(path);
  return rc;
}

static int load_origin(ledger *lg, const char *wanted) {
  json_t *v = NULL;
  int rc = idx_meta_get(lg->ix, "ledger_origin", &v);
  if (!rc) {
    snprintf(lg->origin, sizeof lg->origin, "%s", json_is_string(v) ? json_string_value(v) : "");
    json_decref(v);
    if (!lg->origin[0]) return cu_error(CU_ECORRUPT, "the stored ledger origin is damaged");
    if (wanted && strcmp(wanted, lg->origin))
      cu_warn("ledger: keeping the origin '%s' this ledger was created with, not '%s'",
              lg->origin, wanted);
    return 0;
  }
  if (rc != CU_ENOTFOUND) return rc;
  if (wanted) {
    snprintf(lg->origin, sizeof lg->origin, "%s", wanted);
  } else {
    unsigned char h[32];
    char hex[17];
    cu_sha256_raw(lg->pub, 32, h);
    cu_hex_encode(h, 8, hex);
    snprintf(lg->origin, sizeof lg->origin, "custos/%s", hex);
  }
  cu_buf probe = CU_BUF_INIT(4096);
  merkle_hash zero = {0};
  rc = note_checkpoint_body(lg->origin, 0, zero, &probe); /* validates the name */
  cu_buf_release(&probe);
  if (rc) return rc;
  idx_batch *b = idx_batch_new(lg->ix);
  v = json_string(lg->origin);
  idx_batch_put_meta(b, "ledger_origin", v);
  json_decref(v);
  rc = idx_batch_commit(lg->ix, b);
  idx_batch_free(b);
  return rc;
}

/* ---- open -------------------------------------------------------------- */

static int check_last_sth(ledger *lg) {
  json_t *sth = NULL;
  int rc = idx_sth_latest(lg->ix, &sth);
  if (rc == CU_ENOTFOUND) return 0;
  if (rc) return rc;
  uint64_t size = (uint64_t)cu_json_int(sth, "size", -1);
  const char *root_hex = cu_json_str(sth, "root");
  merkle_hash want, have;
  if (!root_hex || cu_hex_decode(root_hex, strlen(root_hex), want, 32)) {
    json_decref(sth);
    return cu_error(CU_ECORRUPT, "the last signed tree head is damaged");
  }
  const char *note = cu_json_str(sth, "checkpoint");
  size_t blen = 0;
  if (!note || note_verify(note, strlen(note), lg->origin, lg->pub, &blen)) {
    rc = cu_error(CU_ECORRUPT,
                  "the last signed tree head (size %llu) was not signed by the ledger key in "
                  "keys/ledger.key: the key was replaced (run custos verify)",
                  (unsigned long long)size);
  } else if (size > lg->size) {
    rc = cu_error(CU_ECORRUPT,
                  "the last signed tree head covers %llu events but the ledger holds %llu: "
                  "events were removed (run custos verify)",
                  (unsigned long long)size, (unsigned long long)lg->size);
  } else if ((rc = merkle_root(node_get, lg->ix, size, have)) == 0 && memcmp(want, have, 32)) {
    rc = cu_error(CU_ECORRUPT,
                  "the ledger no longer yields its signed tree head at size %llu "
                  "(run custos verify)",
                  (unsigned long long)size);
  }
  if (!rc) {
    lg->sth_size = size;
    memcpy(lg->sth_root, want, 32);
    lg->have_sth = true;
  }
  json_decref(sth);
  return rc;
}

int ledger_open(ledger **out, idx *ix, const ledger_opts *opts) {
  ledger *lg = cu_xcalloc(1, sizeof *lg);
  lg->ix = ix;
  lg->interval_us = opts->sth_interval_us > 0 ? opts->sth_interval_us : 1000000;
  pthread_mutex_init(&lg->mu, NULL);
  pthread_mutex_init(&lg->state_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&lg->grew_cv, &ca);
  pthread_condattr_destroy(&ca);

  uint64_t last = 0;
  int rc = idx_ledger_last_index(ix, &last);
  uint64_t size = rc == CU_ENOTFOUND ? 0 : last + 1;
  if (rc == CU_ENOTFOUND) rc = 0;
  if (!rc && (rc = merkle_frontier_load(&lg->fr, size, node_get, ix)))
    rc = cu_error_wrap(CU_ECORRUPT, "the ledger's tree is incomplete");
  if (!rc) {
    lg->size = size;
    merkle_frontier_root(&lg->fr, lg->root);
    rc = load_or_make_key(lg, opts->keys_dir);
  }
  if (!rc) rc = load_origin(lg, opts->origin);
  if (!rc) rc = check_last_sth(lg);
  if (rc) {
    ledger_free(lg);
    return rc;
  }
  *out = lg;
  return 0;
}

/* ---- appends ----------------------------------------------------------- */

static void emit_node(void *ud, unsigned level, uint64_t index, const merkle_hash h) {
  idx_batch_put_ledger_node(ud, level, index, h);
}

/* Numbers the group's events on the tree's right edge; b gets the entries,
 * the new subtree hashes and the evidence links. Writer role held. */
static void build_group(ledger *lg, commit_req *group, idx_batch *b) {
  for (commit_req *r = group; r; r = r->next) {
    r->first = lg->fr.size;
    for (int i = 0; i < r->n; i++) {
      uint64_t index = lg->fr.size;
      idx_batch_put_ledger_entry(b, index, r->bytes[i], r->lens[i]);
      merkle_frontier_append(&lg->fr, r->leaves[i], emit_node, b);
      if (r->evidence[i][0]) idx_batch_add_evidence_event(b, r->evidence[i], index);
    }
  }
}

/* The writer role: take the queue, number it, write it as one synced batch,
 * then hand the role to the first caller that queued meanwhile. The group's
 * callers wake one another in a chain, so the futex calls are not all on
 * the writer's (serial) path. */
static void lead(ledger *lg, commit_req *me) {
  pthread_mutex_lock(&lg->mu);
  commit_req *group = lg->head;
  lg->head = lg->tail = NULL;
  pthread_mutex_unlock(&lg->mu);

  int n = 0;
  for (commit_req *r = group; r; r = r->next) n++;
  idx_batch **batches = cu_xcalloc((size_t)n + 1, sizeof *batches);
  idx_batch *mine = idx_batch_new(lg->ix);
  n = 0;
  for (commit_req *r = group; r; r = r->next) batches[n++] = r->b;
  batches[n++] = mine;
  merkle_frontier saved = lg->fr;
  build_group(lg, group, mine);
  int rc = idx_commit_many(lg->ix, batches, n);
  char err[512] = "";
  if (rc) {
    snprintf(err, sizeof err, "%s", cu_errmsg());
    lg->fr = saved; /* nothing was written: no gap */
  } else {
    pthread_mutex_lock(&lg->state_mu);
    lg->size = lg->fr.size;
    merkle_frontier_root(&lg->fr, lg->root);
    /* Only a signer waiting for growth is woken: one in its interval wakes
     * on its own, and waking it at every commit would have it contend for
     * this lock with the writer. */
    if (lg->signer_idle) pthread_cond_signal(&lg->grew_cv);
    pthread_mutex_unlock(&lg->state_mu);
  }
  idx_batch_free(mine);
  free(batches);

  pthread_mutex_lock(&lg->mu);
  commit_req *next = lg->head;
  if (!next) lg->writing = false;
  pthread_mutex_unlock(&lg->mu);
  if (next) sem_post(&next->sem);
  commit_req *first = NULL, **link = &first;
  for (commit_req *r = group; r; r = r->next) {
    r->rc = rc;
    if (rc) snprintf(r->err, sizeof r->err, "%s", err);
    r->done = true;
    if (r != me) {
      *link = r;
      link = &r->wake;
    }
  }
  *link = NULL;
  if (first) sem_post(&first->sem);
}

int ledger_commit(ledger *lg, idx_batch *b, json_t *const *events, int n, uint64_t *first) {
  commit_req me = {.b = b, .n = n};
  bool big = n > 4;
  me.bytes = big ? cu_xcalloc((size_t)n, sizeof *me.bytes) : me.bytes_in;
  me.lens = big ? cu_xcalloc((size_t)n, sizeof *me.lens) : me.lens_in;
  me.leaves = big ? cu_xcalloc((size_t)n, sizeof *me.leaves) : me.leaves_in;
  me.evidence = big ? cu_xcalloc((size_t)n, sizeof *me.evidence) : me.evidence_in;
  int64_t now = cu_now_us();
  for (int i = 0; i < n; i++) {
    if (!json_object_get(events[i], "at")) cu_json_set_time(events[i], "at", now);
    me.bytes[i] = cu_json_canon(events[i], &me.lens[i]);
    merkle_leaf(me.bytes[i], me.lens[i], me.leaves[i]);
    const char *evid = cu_json_str(events[i], "evidence");
    if (evid && cu_id_valid(evid)) memcpy(me.evidence[i], evid, CU_ID_LEN + 1);
  }
  sem_init(&me.sem, 0, 0);
  pthread_mutex_lock(&lg->mu);
  if (lg->tail) lg->tail->next = &me;
  else lg->head = &me;
  lg->tail = &me;
  bool leader = !lg->writing;
  if (leader) lg->writing = true;
  pthread_mutex_unlock(&lg->mu);
  for (;;) {
    if (!leader)
      while (sem_wait(&me.sem) && errno == EINTR) {
      }
    if (me.done) {
      if (!leader && me.wake) sem_post(&me.wake->sem);
      break;
    }
    lead(lg, &me); /* took the role or was handed it: me is in the group it writes */
    leader = true;
  }
  sem_destroy(&me.sem);
  for (int i = 0; i < n; i++) free(me.bytes[i]);
  if (big) {
    free(me.bytes);
    free(me.lens);
    free(me.leaves);
    free(me.evidence);
  }
  if (me.rc) return cu_error(me.rc, "%s", me.err);
  if (first) *first = me.first;
  return 0;
}

/* ---- reads ------------------------------------------------------------- */

uint64_t ledger_size(ledger *lg) {
  pthread_mutex_lock(&lg->state_mu);
  uint64_t n = lg->size;
  pthread_mutex_unlock(&lg->state_mu);
  return n;
}

static int check_size(ledger *lg, uint64_t size) {
  uint64_t have = ledger_size(lg);
  if (size > have)
    return cu_error(CU_EINVAL, "the ledger has %llu events, fewer than %llu",
                    (unsigned long long)have, (unsigned long long)size);
  return 0;
}

static int check_index(ledger *lg, uint64_t index) {
  uint64_t have = ledger_size(lg);
  if (index >= have)
    return cu_error(CU_EINVAL, "the ledger has %llu events; index %llu is not one of them",
                    (unsigned long long)have, (unsigned long long)index);
  return 0;
}

int ledger_entry(ledger *lg, uint64_t index, cu_buf *out) {
  int rc = check_index(lg, index);
  return rc ? rc : idx_ledger_entry_get(lg->ix, index, out);
}

int ledger_leaf_hash(ledger *lg, uint64_t index, merkle_hash out) {
  int rc = check_index(lg, index);
  return rc ? rc : idx_ledger_node_get(lg->ix, 0, index, out);
}

int ledger_root(ledger *lg, uint64_t size, merkle_hash out) {
  int rc = check_size(lg, size);
  return rc ? rc : merkle_root(node_get, lg->ix, size, out);
}

int ledger_inclusion(ledger *lg, uint64_t index, uint64_t size, merkle_hash path[MERKLE_MAX_PATH],
                     int *n) {
  int rc = check_size(lg, size);
  return rc ? rc : merkle_inclusion_proof(node_get, lg->ix, index, size, path, n);
}

int ledger_consistency(ledger *lg, uint64_t first, uint64_t second,
                       merkle_hash path[MERKLE_MAX_PATH], int *n) {
  int rc = check_size(lg, second);
  return rc ? rc : merkle_consistency_proof(node_get, lg->ix, first, second, path, n);
}

typedef struct {
  idx *ix;
  int (*fn)(uint64_t index, const json_t *event, void *ud);
  void *ud;
} each_ctx;

static int each_one(uint64_t index, void *ud) {
  each_ctx *c = ud;
  cu_buf bytes = CU_BUF_INIT(CU_MAX_RECORD_BYTES);
  json_t *ev = NULL;
  int rc = idx_ledger_entry_get(c->ix, index, &bytes);
  if (!rc && !cu_json_parse(bytes.data, bytes.len, &ev)) rc = c->fn(index, ev, c->ud);
  json_decref(ev);
  cu_buf_release(&bytes);
  return rc;
}

int ledger_each_event(idx *ix, const char *evidence_id,
                      int (*fn)(uint64_t index, const json_t *event, void *ud), void *ud) {
  each_ctx c = {ix, fn, ud};
  return idx_evidence_events(ix, evidence_id, each_one, &c);
}

typedef struct {
  const char *type;
  bool found;
} has_ctx;

static int has_one(uint64_t index, const json_t *ev, void *ud) {
  has_ctx *c = ud;
  const char *type = cu_json_str(ev, "type");
  if (type && !strcmp(type, c->type)) c->found = true;
  return c->found;
}

int ledger_evidence_has(ledger *lg, const char *evidence_id, const char *type, bool *found) {
  has_ctx c = {type, false};
  int rc = ledger_each_event(lg->ix, evidence_id, has_one, &c);
  *found = c.found;
  return rc;
}

int ledger_sth_latest(ledger *lg, json_t **out) { return idx_sth_latest(lg->ix, out); }

const char *ledger_origin(ledger *lg) { return lg->origin; }

void ledger_public_key(ledger *lg, unsigned char pub[32]) { memcpy(pub, lg->pub, 32); }

int ledger_vkey(ledger *lg, cu_buf *out) { return note_vkey(lg->origin, lg->pub, out); }

/* ---- signing ----------------------------------------------------------- */

/* Signs a head for (size, root); state_mu is not held. */
static int sign_head(ledger *lg, uint64_t size, const merkle_hash root) {
  if (lg->have_sth) {
    if (size <= lg->sth_size) return 0;
    merkle_hash path[MERKLE_MAX_PATH];
    int n = 0;
    int rc = lg->sth_size ? merkle_consistency_proof(node_get, lg->ix, lg->sth_size, size, path, &n)
                          : 0;
    if (rc) return rc;
    if (lg->sth_size && !merkle_verify_consistency(lg->sth_size, size, (const merkle_hash *)path, n,
                                                   lg->sth_root, root))
      return cu_error(CU_ECORRUPT,
                      "the tree at size %llu is not consistent with the head signed at size %llu; "
                      "refusing to sign",
                      (unsigned long long)size, (unsigned long long)lg->sth_size);
  }
  cu_buf body = CU_BUF_INIT(NOTE_MAX_BYTES), note = CU_BUF_INIT(NOTE_MAX_BYTES);
  int rc = note_checkpoint_body(lg->origin, size, root, &body);
  if (!rc) rc = note_sign(lg->seed, lg->origin, body.data, body.len, &note);
  int64_t now = cu_now_us();
  if (!rc) {
    char roothex[65], notehash[65];
    cu_hex_encode(root, 32, roothex);
    cu_sha256_hex(note.data, note.len, notehash);
    json_t *sth = json_object();
    cu_json_set_str(sth, "origin", lg->origin);
    cu_json_set_int(sth, "size", (int64_t)size);
    cu_json_set_str(sth, "root", roothex);
    cu_json_set_time(sth, "timestamp", now);
    cu_json_set_str(sth, "checkpoint", note.data);
    cu_json_set_str(sth, "checkpoint_sha256", notehash);
    idx_batch *b = idx_batch_new(lg->ix);
    idx_batch_put_sth(b, size, sth);
    if (lg->hook) lg->hook(lg->hook_ud, b, sth);
    rc = idx_batch_commit(lg->ix, b);
    idx_batch_free(b);
    json_decref(sth);
  }
  if (!rc) {
    lg->sth_size = size;
    memcpy(lg->sth_root, root, 32);
    lg->have_sth = true;
    lg->sth_at_us = now;
  }
  cu_buf_release(&body);
  cu_buf_release(&note);
  return rc;
}

static void deadline(struct timespec *ts, int64_t wait_us) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += wait_us / 1000000;
  ts->tv_nsec += (wait_us % 1000000) * 1000;
  if (ts->tv_nsec >= 1000000000) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000;
  }
}

static void *signer_main(void *arg) {
  ledger *lg = arg;
  pthread_mutex_lock(&lg->state_mu);
  for (;;) {
    bool pending = !lg->inconsistent && (!lg->have_sth || lg->size > lg->sth_size);
    if (lg->stop && !pending) break;
    if (!pending) {
      lg->signer_idle = true;
      pthread_cond_wait(&lg->grew_cv, &lg->state_mu);
      lg->signer_idle = false;
      continue;
    }
    int64_t wait = lg->sth_at_us + lg->interval_us - cu_now_us();
    if (wait > 0 && !lg->stop) {
      struct timespec ts;
      deadline(&ts, wait);
      pthread_cond_timedwait(&lg->grew_cv, &lg->state_mu, &ts);
      continue;
    }
    uint64_t size = lg->size;
    merkle_hash root;
    memcpy(root, lg->root, 32);
    pthread_mutex_unlock(&lg->state_mu);
    int rc = sign_head(lg, size, root);
    pthread_mutex_lock(&lg->state_mu);
    if (rc == CU_ECORRUPT) {
      lg->inconsistent = true;
      cu_err("ALARM ledger: %s", cu_errmsg());
    } else if (rc) {
      cu_err("ledger: cannot sign the tree head at size %llu (will retry): %s",
             (unsigned long long)size, cu_errmsg());
      lg->sth_at_us = cu_now_us(); /* retry after an interval */
      if (lg->stop) break;
    }
  }
  pthread_mutex_unlock(&lg->state_mu);
  return NULL;
}

int ledger_start_signer(ledger *lg, ledger_sth_hook hook, void *ud) {
  lg->hook = hook;
  lg->hook_ud = ud;
  if (pthread_create(&lg->signer, NULL, signer_main, lg))
    return cu_error(CU_EIO, "cannot start the ledger's signer thread");
  lg->signer_running = true;
  pthread_mutex_lock(&lg->state_mu);
  pthread_cond_signal(&lg->grew_cv);
  pthread_mutex_unlock(&lg->state_mu);
  return 0;
}

int ledger_sign_now(ledger *lg) {
  pthread_mutex_lock(&lg->state_mu);
  uint64_t size = lg->size;
  merkle_hash root;
  memcpy(root, lg->root, 32);
  pthread_mutex_unlock(&lg->state_mu);
  if (lg->signer_running)
    return cu_error(CU_EBUSY, "the signer thread signs heads while it runs");
  if (lg->have_sth && size <= lg->sth_size) return 0;
  return sign_head(lg, size, root);
}

void ledger_free(ledger *lg) {
  if (!lg) return;
  if (lg->signer_running) {
    pthread_mutex_lock(&lg->state_mu);
    lg->stop = true;
    pthread_cond_signal(&lg->grew_cv);
    pthread_mutex_unlock(&lg->state_mu);
    pthread_join(lg->signer, NULL);
  }
  OPENSSL_cleanse(lg->seed, sizeof lg->seed);
  pthread_mutex_destroy(&lg->mu);
  pthread_mutex_destroy(&lg->state_mu);
  pthread_cond_destroy(&lg->grew_cv);
  free(lg);
}
