/* Unit tests for archive/ledger: the append-only event log over a real
 * RocksDB index and real key files in a temporary directory.
 *
 * Roots are checked against a reference computed here from the stored
 * entries (SHA-256(0x00 || entry) by EVP, then the recursive MTH of RFC
 * 9162 §2.1); proofs with merkle_verify_* (tested against their own
 * reference in test_merkle.c); signed heads with note_verify and
 * note_checkpoint_parse (test_note.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hex.h"
#include "id.h"
#include "idx.h"
#include "json.h"
#include "ledger.h"
#include "merkle.h"
#include "note.h"
#include "merkle_ref.h"
#include "test_util.h"
#include "timeu.h"

/* ---- reference --------------------------------------------------------- */

/* The leaf hashes of the first n entries, read back through ledger_entry;
 * each also matches ledger_leaf_hash. */
static merkle_hash *read_leaves(ledger *lg, uint64_t n) {
  merkle_hash *D = cu_xcalloc(n ? n : 1, sizeof *D);
  cu_buf e = CU_BUF_INIT(1 << 20);
  for (uint64_t i = 0; i < n; i++) {
    cu_buf_reset(&e);
    assert_int_equal(ledger_entry(lg, i, &e), 0);
    ref_leaf(e.data, e.len, D[i]);
    merkle_hash h;
    assert_int_equal(ledger_leaf_hash(lg, i, h), 0);
    assert_memory_equal(h, D[i], 32);
  }
  cu_buf_release(&e);
  return D;
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* ---- fixture ----------------------------------------------------------- */

typedef struct {
  char *dir, *index, *keys;
  idx *ix;
  ledger *lg;
} fixture;

static int setup(void **state) {
  fixture *f = cu_xcalloc(1, sizeof *f);
  f->dir = test_tmpdir("ledger");
  assert_non_null(f->dir);
  f->index = cu_path_join(f->dir, "index");
  f->keys = cu_path_join(f->dir, "keys");
  assert_int_equal(mkdir(f->keys, 0700), 0);
  assert_int_equal(idx_open(&f->ix, f->index), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ledger_free(f->lg);
  idx_close(f->ix);
  int rc = test_rmtree(f->dir);
  free(f->dir);
  free(f->index);
  free(f->keys);
  free(f);
  return rc;
}

static int open_ledger(fixture *f, const char *origin, int64_t interval_us) {
  ledger_opts o = {.keys_dir = f->keys, .origin = origin, .sth_interval_us = interval_us};
  f->lg = NULL;
  return ledger_open(&f->lg, f->ix, &o);
}

/* ledger_free, idx_close, idx_open, ledger_open */
static int reopen(fixture *f, const char *origin, int64_t interval_us) {
  ledger_free(f->lg);
  f->lg = NULL;
  idx_close(f->ix);
  f->ix = NULL;
  assert_int_equal(idx_open(&f->ix, f->index), 0);
  return open_ledger(f, origin, interval_us);
}

static json_t *event(const char *type, int a, int b) {
  json_t *e = json_object();
  cu_json_set_str(e, "type", type);
  cu_json_set_int(e, "a", a);
  cu_json_set_int(e, "b", b);
  return e;
}

static uint64_t commit_n(ledger *lg, int n, int tag) {
  uint64_t first = UINT64_MAX;
  for (int i = 0; i < n; i++) {
    json_t *e = event("test", tag, i);
    uint64_t at = UINT64_MAX;
    assert_int_equal(ledger_commit(lg, NULL, &e, 1, &at), 0);
    if (i == 0) first = at;
    json_decref(e);
  }
  return first;
}

/* ---- open, keys, origin ----------------------------------------------- */

static void test_ledger_open__makes_key_and_keeps_origin(void **state) {
  fixture *f = *state;
  assert_int_equal(open_ledger(f, NULL, 0), 0);
  char *key = cu_path_join(f->keys, "ledger.key");
  struct stat sb;
  assert_int_equal(stat(key, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  assert_true(S_ISREG(sb.st_mode));

  unsigned char pub[32], pub2[32], loaded[32];
  ledger_public_key(f->lg, pub);
  assert_int_equal(ledger_load_public_key(f->keys, loaded), 0);
  assert_memory_equal(loaded, pub, 32);
  assert_int_equal(ledger_size(f->lg), 0);
  merkle_hash r, e;
  assert_int_equal(ledger_root(f->lg, 0, r), 0);
  ref_mth(NULL, 0, e);
  assert_memory_equal(r, e, 32);

  /* no origin asked for: "custos/<key hash>", a valid key name */
  char origin[NOTE_MAX_ORIGIN + 1];
  snprintf(origin, sizeof origin, "%s", ledger_origin(f->lg));
  assert_true(strncmp(origin, "custos/", 7) == 0);
  assert_true(strlen(origin) > 7);
  cu_buf vk = CU_BUF_INIT(1024);
  assert_int_equal(ledger_vkey(f->lg, &vk), 0);
  char vname[NOTE_MAX_ORIGIN + 1];
  unsigned char vpub[32];
  assert_int_equal(note_vkey_parse(vk.data, vname, vpub), 0);
  assert_string_equal(vname, origin);
  assert_memory_equal(vpub, pub, 32);
  cu_buf_release(&vk);

  /* the same key and origin after reopening, whatever origin is asked for */
  assert_int_equal(reopen(f, "example.com/other", 0), 0);
  ledger_public_key(f->lg, pub2);
  assert_memory_equal(pub2, pub, 32);
  assert_string_equal(ledger_origin(f->lg), origin);
  assert_int_equal(stat(key, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  ledger_free(f->lg);
  f->lg = NULL;
  assert_int_equal(open_ledger(f, NULL, 0), 0);
  assert_string_equal(ledger_origin(f->lg), origin);
  free(key);
}

static void test_ledger_open__origin_for_a_new_ledger(void **state) {
  fixture *f = *state;
  /* not a key name: refused, nothing stored */
  assert_int_equal(open_ledger(f, "has space", 0), CU_EINVAL);
  assert_null(f->lg);
  assert_int_equal(open_ledger(f, "example.com/evidence", 0), 0);
  assert_string_equal(ledger_origin(f->lg), "example.com/evidence");
  assert_int_equal(reopen(f, "example.com/changed", 0), 0);
  assert_string_equal(ledger_origin(f->lg), "example.com/evidence");
  assert_int_equal(reopen(f, NULL, 0), 0);
  assert_string_equal(ledger_origin(f->lg), "example.com/evidence");
}

static void test_ledger_open__missing_key_with_events_is_corrupt(void **state) {
  fixture *f = *state;
  assert_int_equal(open_ledger(f, NULL, 0), 0);
  commit_n(f->lg, 3, 0);
  ledger_free(f->lg);
  f->lg = NULL;
  char *key = cu_path_join(f->keys, "ledger.key");
  assert_int_equal(unlink(key), 0);
  assert_int_equal(reopen(f, NULL, 0), CU_ECORRUPT);
  assert_null(f->lg);
  assert_int_equal(access(key, F_OK), -1); /* no fresh key was made */
  free(key);
}

/* ---- commits ----------------------------------------------------------- */

static int collect_index(uint64_t index, void *ud) {
  json_t *a = ud;
  json_array_append_new(a, json_integer((json_int_t)index));
  return 0;
}

static json_t *evidence_events(idx *ix, const char *id) {
  json_t *a = json_array();
  assert_int_equal(idx_evidence_events(ix, id, collect_index, a), 0);
  return a;
}

/* The stored bytes are canonical: sorted keys, no whitespace. */
static json_t *parse_canonical(const cu_buf *e) {
  json_t *v = NULL;
  assert_int_equal(cu_json_parse(e->data, e->len, &v), 0);
  assert_true(json_is_object(v));
  char *again = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  assert_non_null(again);
  assert_int_equal(strlen(again), e->len);
  assert_memory_equal(again, e->data, e->len);
  free(again);
  return v;
}

static void test_ledger_commit__entries_order_and_links(void **state) {
  fixture *f = *state;
  assert_int_equal(open_ledger(f, NULL, 0), 0);
  char ev1[CU_ID_LEN + 1], ev2[CU_ID_LEN + 1];
  cu_id_new(ev1);
  cu_id_new(ev2);

  /* with a caller batch carrying another key */
  int64_t t0 = cu_now_us();
  json_t *e[3];
  e[0] = json_object();
  cu_json_set_str(e[0], "type", "ingested");
  cu_json_set_str(e[0], "evidence", ev1);
  cu_json_set_int(e[0], "z", 1);
  e[1] = json_object();
  cu_json_set_str(e[1], "type", "timestamped");
  cu_json_set_str(e[1], "at", "2020-01-02T03:04:05Z");
  e[2] = json_object();
  cu_json_set_str(e[2], "type", "viewed");
  cu_json_set_str(e[2], "evidence", ev2);
  idx_batch *b = idx_batch_new(f->ix);
  json_t *mv = json_string("caller's value");
  idx_batch_put_meta(b, "test_caller_key", mv);
  uint64_t first = UINT64_MAX;
  assert_int_equal(ledger_commit(f->lg, b, e, 3, &first), 0);
  int64_t t1 = cu_now_us();
  idx_batch_free(b);
  assert_int_equal(first, 0);
  assert_int_equal(ledger_size(f->lg), 3);
  json_t *got = NULL;
  assert_int_equal(idx_meta_get(f->ix, "test_caller_key", &got), 0);
  assert_true(json_equal(got, mv));
  json_decref(got);
  json_decref(mv);
  for (int i = 0; i < 3; i++)
    json_decref(e[i]);

  cu_buf en = CU_BUF_INIT(1 << 20);
  /* entry 0: "at" added (now), evidence kept, canonical bytes */
  assert_int_equal(ledger_entry(f->lg, 0, &en), 0);
  json_t *v = parse_canonical(&en);
  assert_string_equal(cu_json_str(v, "type"), "ingested");
  assert_string_equal(cu_json_str(v, "evidence"), ev1);
  assert_int_equal(cu_json_int(v, "z", 0), 1);
  const char *at = cu_json_str(v, "at");
  assert_non_null(at);
  int64_t at_us = 0;
  assert_int_equal(cu_time_parse_rfc3339(at, &at_us), 0);
  assert_true(at_us >= t0 - 1000000 && at_us <= t1 + 1000000);
  assert_int_equal(json_object_size(v), 4);
  json_decref(v);
  /* entry 1: "at" kept as given; the exact canonical form */
  cu_buf_reset(&en);
  assert_int_equal(ledger_entry(f->lg, 1, &en), 0);
  assert_string_equal(en.data, "{\"at\":\"2020-01-02T03:04:05Z\",\"type\":\"timestamped\"}");
  cu_buf_reset(&en);
  assert_int_equal(ledger_entry(f->lg, 2, &en), 0);
  v = parse_canonical(&en);
  assert_string_equal(cu_json_str(v, "type"), "viewed");
  json_decref(v);

  /* without a batch; then one carrying only a batch */
  json_t *more[2] = {event("x", 1, 0), event("x", 2, 0)};
  cu_json_set_str(more[1], "evidence", ev1);
  first = UINT64_MAX;
  assert_int_equal(ledger_commit(f->lg, NULL, more, 2, &first), 0);
  assert_int_equal(first, 3);
  json_decref(more[0]);
  json_decref(more[1]);
  json_t *solo = event("x", 3, 0);
  assert_int_equal(ledger_commit(f->lg, NULL, &solo, 1, NULL), 0);
  json_decref(solo);
  assert_int_equal(ledger_size(f->lg), 6);
  b = idx_batch_new(f->ix);
  mv = json_integer(7);
  idx_batch_put_meta(b, "test_only_batch", mv);
  assert_int_equal(ledger_commit(f->lg, b, NULL, 0, NULL), 0);
  idx_batch_free(b);
  assert_int_equal(ledger_size(f->lg), 6);
  assert_int_equal(idx_meta_get(f->ix, "test_only_batch", &got), 0);
  assert_true(json_equal(got, mv));
  json_decref(got);
  json_decref(mv);
  for (uint64_t i = 3; i < 6; i++) {
    cu_buf_reset(&en);
    assert_int_equal(ledger_entry(f->lg, i, &en), 0);
    v = parse_canonical(&en);
    assert_int_equal(cu_json_int(v, "a", 0), (int64_t)i - 2);
    json_decref(v);
  }

  /* the chain of custody of each item */
  json_t *l1 = evidence_events(f->ix, ev1), *l2 = evidence_events(f->ix, ev2);
  json_t *w1 = json_pack("[i,i]", 0, 4), *w2 = json_pack("[i]", 2);
  assert_true(json_equal(l1, w1));
  assert_true(json_equal(l2, w2));
  json_decref(l1);
  json_decref(l2);
  json_decref(w1);
  json_decref(w2);

  /* out of range */
  cu_buf_reset(&en);
  assert_int_equal(ledger_entry(f->lg, 6, &en), CU_EINVAL);
  merkle_hash h, p[MERKLE_MAX_PATH];
  int n;
  assert_int_equal(ledger_leaf_hash(f->lg, 6, h), CU_EINVAL);
  assert_int_equal(ledger_root(f->lg, 7, h), CU_EINVAL);
  assert_int_equal(ledger_inclusion(f->lg, 0, 7, p, &n), CU_EINVAL);
  assert_int_equal(ledger_inclusion(f->lg, 6, 6, p, &n), CU_EINVAL);
  assert_int_equal(ledger_consistency(f->lg, 3, 7, p, &n), CU_EINVAL);

  /* the root is the reference root of the stored entries */
  merkle_hash *D = read_leaves(f->lg, 6);
  for (uint64_t s = 0; s <= 6; s++) {
    merkle_hash want;
    ref_mth(D, s, want);
    assert_int_equal(ledger_root(f->lg, s, h), 0);
    assert_memory_equal(h, want, 32);
  }
  free(D);
  cu_buf_release(&en);
}

/* ---- concurrency ------------------------------------------------------- */

#define THREADS 16
#define COMMITS 500

typedef struct {
  ledger *lg;
  idx *ix;
  int t;
  uint64_t first[COMMITS];
  int n[COMMITS];
  int rc;
  char err[256];
} worker;

static void *work(void *arg) {
  worker *w = arg;
  for (int c = 0; c < COMMITS; c++) {
    int n = 1 + (w->t * 7 + c) % 3;
    json_t *ev[3];
    for (int i = 0; i < n; i++)
      ev[i] = json_pack("{s:s,s:i,s:i,s:i}", "type", "test", "t", w->t, "c", c, "i", i);
    idx_batch *b = NULL;
    if (c % 50 == 0) { /* now and then with a caller batch */
      b = idx_batch_new(w->ix);
      char key[64];
      snprintf(key, sizeof key, "test_conc_%d_%d", w->t, c);
      json_t *v = json_integer(c);
      idx_batch_put_meta(b, key, v);
      json_decref(v);
    }
    uint64_t first = UINT64_MAX;
    int rc = ledger_commit(w->lg, b, ev, n, &first);
    idx_batch_free(b);
    for (int i = 0; i < n; i++)
      json_decref(ev[i]);
    if (rc) {
      w->rc = rc;
      snprintf(w->err, sizeof w->err, "%s", cu_errmsg());
      return NULL;
    }
    w->first[c] = first;
    w->n[c] = n;
  }
  return NULL;
}

typedef struct {
  ledger *lg;
  atomic_bool done;
  long rounds;
  char err[256];
} reader;

/* While the writers run: every published size is backed by stored nodes,
 * its newest leaf is provably included and it extends the previous one. */
static void *read_while_writing(void *arg) {
  reader *r = arg;
  uint64_t prev = 0;
  merkle_hash prev_root;
  while (!atomic_load(&r->done) && !r->err[0]) {
    uint64_t s = ledger_size(r->lg);
    if (!s) continue;
    merkle_hash root, leaf, p[MERKLE_MAX_PATH];
    int n = 0;
    if (ledger_root(r->lg, s, root) || ledger_leaf_hash(r->lg, s - 1, leaf) ||
        ledger_inclusion(r->lg, s - 1, s, p, &n)) {
      snprintf(r->err, sizeof r->err, "size %llu: %s", (unsigned long long)s, cu_errmsg());
      break;
    }
    if (!merkle_verify_inclusion(s - 1, s, leaf, (const merkle_hash *)p, n, root)) {
      snprintf(r->err, sizeof r->err, "inclusion of %llu fails", (unsigned long long)s - 1);
      break;
    }
    if (prev && prev < s) {
      if (ledger_consistency(r->lg, prev, s, p, &n) ||
          !merkle_verify_consistency(prev, s, (const merkle_hash *)p, n, prev_root, root)) {
        snprintf(r->err, sizeof r->err, "%llu -> %llu is not consistent", (unsigned long long)prev,
                 (unsigned long long)s);
        break;
      }
    }
    if (s < prev) {
      snprintf(r->err, sizeof r->err, "the size went back from %llu to %llu",
               (unsigned long long)prev, (unsigned long long)s);
      break;
    }
    prev = s;
    memcpy(prev_root, root, 32);
    r->rounds++;
  }
  return NULL;
}

static void test_ledger_commit__concurrent_appends(void **state) {
  fixture *f = *state;
  assert_int_equal(open_ledger(f, NULL, 0), 0);
  worker *w = cu_xcalloc(THREADS, sizeof *w);
  pthread_t th[THREADS], rth;
  reader rd = {.lg = f->lg};
  atomic_init(&rd.done, false);
  assert_int_equal(pthread_create(&rth, NULL, read_while_writing, &rd), 0);
  for (int t = 0; t < THREADS; t++) {
    w[t].lg = f->lg;
    w[t].ix = f->ix;
    w[t].t = t;
    assert_int_equal(pthread_create(&th[t], NULL, work, &w[t]), 0);
  }
  for (int t = 0; t < THREADS; t++)
    assert_int_equal(pthread_join(th[t], NULL), 0);
  atomic_store(&rd.done, true);
  assert_int_equal(pthread_join(rth, NULL), 0);
  for (int t = 0; t < THREADS; t++)
    if (w[t].rc) fail_msg("thread %d: %d %s", t, w[t].rc, w[t].err);
  if (rd.err[0]) fail_msg("reader: %s", rd.err);
  assert_true(rd.rounds > 0);

  uint64_t total = 0;
  for (int t = 0; t < THREADS; t++)
    for (int c = 0; c < COMMITS; c++)
      total += (uint64_t)w[t].n[c];
  assert_int_equal(ledger_size(f->lg), total);
  print_message("%d threads x %d commits: %llu events; the reader checked %ld sizes meanwhile\n",
                THREADS, COMMITS, (unsigned long long)total, rd.rounds);

  /* each commit's events are consecutive; together they cover 0..total-1
   * exactly once */
  unsigned char *seen = cu_xcalloc(total, 1);
  for (int t = 0; t < THREADS; t++)
    for (int c = 0; c < COMMITS; c++) {
      assert_true(w[t].first[c] + (uint64_t)w[t].n[c] <= total);
      for (int i = 0; i < w[t].n[c]; i++) {
        uint64_t at = w[t].first[c] + (uint64_t)i;
        if (seen[at]) fail_msg("index %llu given twice", (unsigned long long)at);
        seen[at] = 1;
      }
    }
  for (uint64_t i = 0; i < total; i++)
    if (!seen[i]) fail_msg("index %llu never given", (unsigned long long)i);
  free(seen);

  /* the entry at each index is the event committed there */
  cu_buf e = CU_BUF_INIT(1 << 16);
  for (int t = 0; t < THREADS; t++)
    for (int c = 0; c < COMMITS; c++)
      for (int i = 0; i < w[t].n[c]; i++) {
        cu_buf_reset(&e);
        assert_int_equal(ledger_entry(f->lg, w[t].first[c] + (uint64_t)i, &e), 0);
        json_t *v = NULL;
        assert_int_equal(cu_json_parse(e.data, e.len, &v), 0);
        assert_int_equal(cu_json_int(v, "t", -1), t);
        assert_int_equal(cu_json_int(v, "c", -1), c);
        assert_int_equal(cu_json_int(v, "i", -1), i);
        json_decref(v);
      }
  cu_buf_release(&e);
  /* the caller batches landed */
  for (int t = 0; t < THREADS; t++)
    for (int c = 0; c < COMMITS; c += 50) {
      char key[64];
      snprintf(key, sizeof key, "test_conc_%d_%d", t, c);
      json_t *v = NULL;
      assert_int_equal(idx_meta_get(f->ix, key, &v), 0);
      assert_int_equal(json_integer_value(v), c);
      json_decref(v);
    }

  /* the root against the reference; proofs for samples */
  merkle_hash *D = read_leaves(f->lg, total);
  merkle_hash root, want;
  ref_mth(D, total, want);
  assert_int_equal(ledger_root(f->lg, total, root), 0);
  assert_memory_equal(root, want, 32);
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  merkle_hash p[MERKLE_MAX_PATH];
  int n;
  for (int k = 0; k < 300; k++) {
    uint64_t i = k == 0 ? 0 : k == 1 ? total - 1 : rng_next(&seed) % total;
    assert_int_equal(ledger_inclusion(f->lg, i, total, p, &n), 0);
    assert_true(merkle_verify_inclusion(i, total, D[i], (const merkle_hash *)p, n, root));
    assert_false(
        merkle_verify_inclusion(i, total, D[(i + 1) % total], (const merkle_hash *)p, n, root));
  }
  for (int k = 0; k < 30; k++) {
    uint64_t b = 1 + rng_next(&seed) % total, a = 1 + rng_next(&seed) % b;
    merkle_hash ra, rb, wa, wb;
    assert_int_equal(ledger_root(f->lg, a, ra), 0);
    assert_int_equal(ledger_root(f->lg, b, rb), 0);
    ref_mth(D, a, wa);
    ref_mth(D, b, wb);
    assert_memory_equal(ra, wa, 32);
    assert_memory_equal(rb, wb, 32);
    assert_int_equal(ledger_consistency(f->lg, a, b, p, &n), 0);
    assert_true(merkle_verify_consistency(a, b, (const merkle_hash *)p, n, ra, rb));
    uint64_t i = rng_next(&seed) % b;
    assert_int_equal(ledger_inclusion(f->lg, i, b, p, &n), 0);
    assert_true(merkle_verify_inclusion(i, b, D[i], (const merkle_hash *)p, n, rb));
  }
  free(D);
  free(w);
}

/* ---- reopen ------------------------------------------------------------ */

static void test_ledger_reopen__same_tree_and_appends_continue(void **state) {
  fixture *f = *state;
  assert_int_equal(open_ledger(f, NULL, 0), 0);
  const uint64_t N = 77;
  assert_int_equal(commit_n(f->lg, (int)N, 1), 0);
  merkle_hash roots[78], paths[77][MERKLE_MAX_PATH], cons[77][MERKLE_MAX_PATH];
  int plen[77], clen[77];
  for (uint64_t s = 0; s <= N; s++)
    assert_int_equal(ledger_root(f->lg, s, roots[s]), 0);
  for (uint64_t i = 0; i < N; i++) {
    assert_int_equal(ledger_inclusion(f->lg, i, N, paths[i], &plen[i]), 0);
    assert_int_equal(ledger_consistency(f->lg, i + 1, N, cons[i], &clen[i]), 0);
  }
  unsigned char pub[32];
  ledger_public_key(f->lg, pub);

  assert_int_equal(reopen(f, NULL, 0), 0);
  assert_int_equal(ledger_size(f->lg), N);
  unsigned char pub2[32];
  ledger_public_key(f->lg, pub2);
  assert_memory_equal(pub2, pub, 32);
  for (uint64_t s = 0; s <= N; s++) {
    merkle_hash r;
    assert_int_equal(ledger_root(f->lg, s, r), 0);
    assert_memory_equal(r, roots[s], 32);
  }
  for (uint64_t i = 0; i < N; i++) {
    merkle_hash p[MERKLE_MAX_PATH];
    int n;
    assert_int_equal(ledger_inclusion(f->lg, i, N, p, &n), 0);
    assert_int_equal(n, plen[i]);
    assert_memory_equal(p, paths[i], (size_t)n * 32);
    assert_int_equal(ledger_consistency(f->lg, i + 1, N, p, &n), 0);
    assert_int_equal(n, clen[i]);
    assert_memory_equal(p, cons[i], (size_t)n * 32);
  }

  /* appends continue from the old size, on the same tree */
  assert_int_equal(commit_n(f->lg, 5, 2), N);
  assert_int_equal(ledger_size(f->lg), N + 5);
  merkle_hash *D = read_leaves(f->lg, N + 5);
  merkle_hash r, want, p[MERKLE_MAX_PATH];
  int n;
  ref_mth(D, N + 5, want);
  assert_int_equal(ledger_root(f->lg, N + 5, r), 0);
  assert_memory_equal(r, want, 32);
  assert_int_equal(ledger_consistency(f->lg, N, N + 5, p, &n), 0);
  assert_true(merkle_verify_consistency(N, N + 5, (const merkle_hash *)p, n, roots[N], r));
  /* and once more across a restart, the frontier now loaded mid-way */
  assert_int_equal(reopen(f, NULL, 0), 0);
  assert_int_equal(commit_n(f->lg, 3, 3), N + 5);
  free(D);
  D = read_leaves(f->lg, N + 8);
  ref_mth(D, N + 8, want);
  assert_int_equal(ledger_root(f->lg, N + 8, r), 0);
  assert_memory_equal(r, want, 32);
  free(D);
}

/* ---- signed tree heads ------------------------------------------------- */

typedef struct {
  uint64_t size;
  merkle_hash root;
  int64_t ts;
  char *checkpoint;
} head;

typedef struct {
  head h[256];
  int n;
} heads;

static int collect_head(uint64_t size, json_t *sth, void *ud) {
  heads *hs = ud;
  if (hs->n == 256) return 1;
  head *h = &hs->h[hs->n++];
  h->size = size;
  const char *root = cu_json_str(sth, "root"), *ts = cu_json_str(sth, "timestamp");
  if (!root || cu_hex_decode(root, strlen(root), h->root, 32)) return -1;
  if (!ts || cu_time_parse_rfc3339(ts, &h->ts)) return -1;
  h->checkpoint = cu_xstrdup(cu_json_str(sth, "checkpoint") ? cu_json_str(sth, "checkpoint") : "");
  return 0;
}

static void load_heads(idx *ix, heads *hs) {
  hs->n = 0;
  assert_int_equal(idx_sth_each(ix, 0, collect_head, hs), 0);
}

static void free_heads(heads *hs) {
  for (int i = 0; i < hs->n; i++)
    free(hs->h[i].checkpoint);
  hs->n = 0;
}

/* A head as ledger_sth_latest returns it: its note verifies with the
 * ledger's key and says what the JSON says, and that is the tree's root. */
static void check_head(ledger *lg, const json_t *sth, uint64_t want_size) {
  unsigned char pub[32];
  ledger_public_key(lg, pub);
  const char *origin = ledger_origin(lg);
  assert_string_equal(cu_json_str(sth, "origin"), origin);
  assert_int_equal(cu_json_int(sth, "size", -1), (int64_t)want_size);
  const char *cp = cu_json_str(sth, "checkpoint");
  assert_non_null(cp);
  size_t bl = 0;
  assert_int_equal(note_verify(cp, strlen(cp), origin, pub, &bl), 0);
  note_checkpoint c;
  assert_int_equal(note_checkpoint_parse(cp, bl, &c), 0);
  assert_string_equal(c.origin, origin);
  assert_int_equal(c.size, want_size);
  merkle_hash r;
  assert_int_equal(ledger_root(lg, want_size, r), 0);
  assert_memory_equal(c.root, r, 32);
  char hex[65];
  cu_hex_encode(r, 32, hex);
  assert_string_equal(cu_json_str(sth, "root"), hex);
  /* checkpoint_sha256 is the SHA-256 of the note text */
  merkle_hash d;
  EVP_Digest(cp, strlen(cp), d, NULL, EVP_sha256(), NULL);
  cu_hex_encode(d, 32, hex);
  assert_string_equal(cu_json_str(sth, "checkpoint_sha256"), hex);
  int64_t ts = 0;
  assert_int_equal(cu_time_parse_rfc3339(cu_json_str(sth, "timestamp"), &ts), 0);
  assert_true(ts > 0 && ts <= cu_now_us() + 1000000);
}

static void test_ledger_sign_now__heads_verify_and_extend(void **state) {
  fixture *f = *state;
  assert_int_equal(open_ledger(f, "example.com/custos-test", 0), 0);
  json_t *sth = NULL;
  assert_int_equal(ledger_sth_latest(f->lg, &sth), CU_ENOTFOUND);
  commit_n(f->lg, 5, 0);
  assert_int_equal(ledger_sign_now(f->lg), 0);
  assert_int_equal(ledger_sth_latest(f->lg, &sth), 0);
  check_head(f->lg, sth, 5);
  char *cp1 = cu_xstrdup(cu_json_str(sth, "checkpoint"));
  json_decref(sth);

  commit_n(f->lg, 7, 1);
  assert_int_equal(ledger_sign_now(f->lg), 0);
  assert_int_equal(ledger_sth_latest(f->lg, &sth), 0);
  check_head(f->lg, sth, 12);
  json_decref(sth);

  /* the second head extends the first: roots from the two notes */
  heads hs;
  load_heads(f->ix, &hs);
  assert_int_equal(hs.n, 2);
  assert_string_equal(hs.h[0].checkpoint, cp1);
  unsigned char pub[32];
  ledger_public_key(f->lg, pub);
  note_checkpoint c[2];
  for (int i = 0; i < 2; i++) {
    size_t bl;
    assert_int_equal(
        note_verify(hs.h[i].checkpoint, strlen(hs.h[i].checkpoint), ledger_origin(f->lg), pub, &bl),
        0);
    assert_int_equal(note_checkpoint_parse(hs.h[i].checkpoint, bl, &c[i]), 0);
  }
  assert_int_equal(c[0].size, 5);
  assert_int_equal(c[1].size, 12);
  merkle_hash p[MERKLE_MAX_PATH];
  int n;
  assert_int_equal(ledger_consistency(f->lg, 5, 12, p, &n), 0);
  assert_true(merkle_verify_consistency(5, 12, (const merkle_hash *)p, n, c[0].root, c[1].root));

  /* nothing new: no new head */
  assert_int_equal(ledger_sign_now(f->lg), 0);
  assert_int_equal(ledger_sign_now(f->lg), 0);
  free_heads(&hs);
  load_heads(f->ix, &hs);
  assert_int_equal(hs.n, 2);
  free_heads(&hs);

  /* nor after a restart, which finds the last head and agrees with it */
  assert_int_equal(reopen(f, NULL, 0), 0);
  assert_int_equal(ledger_sign_now(f->lg), 0);
  load_heads(f->ix, &hs);
  assert_int_equal(hs.n, 2);
  free_heads(&hs);
  commit_n(f->lg, 1, 2);
  assert_int_equal(ledger_sign_now(f->lg), 0);
  assert_int_equal(ledger_sth_latest(f->lg, &sth), 0);
  check_head(f->lg, sth, 13);
  json_decref(sth);
  free(cp1);
}

typedef struct {
  idx *ix;
  atomic_int calls;
  atomic_ullong last_size;
} hook_ctx;

static void count_hook(void *ud, idx_batch *b, const json_t *sth) {
  hook_ctx *h = ud;
  uint64_t size = (uint64_t)cu_json_int(sth, "size", -1);
  char key[64];
  snprintf(key, sizeof key, "test_hook_%llu", (unsigned long long)size);
  json_t *v = json_string(cu_json_str(sth, "checkpoint_sha256"));
  idx_batch_put_meta(b, key, v);
  json_decref(v);
  atomic_store(&h->last_size, size);
  atomic_fetch_add(&h->calls, 1);
}

static bool wait_for_head(ledger *lg, uint64_t size, int64_t timeout_us) {
  int64_t until = cu_mono_us() + timeout_us;
  do {
    json_t *sth = NULL;
    if (ledger_sth_latest(lg, &sth) == 0) {
      uint64_t s = (uint64_t)cu_json_int(sth, "size", -1);
      json_decref(sth);
      if (s == size) return true;
    }
    usleep(10000);
  } while (cu_mono_us() < until);
  return false;
}

static void test_ledger_signer__signs_hooks_and_rate_limits(void **state) {
  fixture *f = *state;
  const int64_t interval = 200000;
  assert_int_equal(open_ledger(f, NULL, interval), 0);
  hook_ctx hc = {.ix = f->ix};
  atomic_init(&hc.calls, 0);
  atomic_init(&hc.last_size, 0);
  assert_int_equal(ledger_start_signer(f->lg, count_hook, &hc), 0);
  assert_int_equal(ledger_sign_now(f->lg), CU_EBUSY);

  commit_n(f->lg, 10, 0);
  assert_true(wait_for_head(f->lg, 10, 3000000));
  json_t *sth = NULL;
  assert_int_equal(ledger_sth_latest(f->lg, &sth), 0);
  check_head(f->lg, sth, 10);
  assert_true(atomic_load(&hc.calls) >= 1);
  assert_int_equal(atomic_load(&hc.last_size), 10);
  /* the hook's write went into the head's batch */
  json_t *v = NULL;
  assert_int_equal(idx_meta_get(f->ix, "test_hook_10", &v), 0);
  assert_string_equal(json_string_value(v), cu_json_str(sth, "checkpoint_sha256"));
  json_decref(v);
  json_decref(sth);

  /* continuous appends for 2 s: at most one head per interval */
  heads before, after;
  load_heads(f->ix, &before);
  int64_t t0 = cu_mono_us();
  int k = 0;
  while (cu_mono_us() - t0 < 2000000)
    commit_n(f->lg, 1, 100 + k++);
  int64_t elapsed = cu_mono_us() - t0;
  load_heads(f->ix, &after);
  int added = after.n - before.n;
  int most = (int)(elapsed / interval) + 2;
  print_message("%d commits in %lld ms: %d new heads (at most %d allowed)\n", k,
                (long long)elapsed / 1000, added, most);
  if (added > most)
    fail_msg("%d heads in %lld us at one per %lld us", added, (long long)elapsed,
             (long long)interval);
  assert_true(added >= 3); /* and the signer kept signing */
  /* (the signer may be between its hook and its write right now) */
  assert_true(atomic_load(&hc.calls) >= after.n);
  /* every head verifies, sizes grow, each is consistent with the one
   * before, and they are at least an interval apart */
  unsigned char pub[32];
  ledger_public_key(f->lg, pub);
  for (int i = 0; i < after.n; i++) {
    size_t bl;
    note_checkpoint c;
    const char *cp = after.h[i].checkpoint;
    assert_int_equal(note_verify(cp, strlen(cp), ledger_origin(f->lg), pub, &bl), 0);
    assert_int_equal(note_checkpoint_parse(cp, bl, &c), 0);
    assert_int_equal(c.size, after.h[i].size);
    assert_memory_equal(c.root, after.h[i].root, 32);
    if (i == 0) continue;
    assert_true(after.h[i].size > after.h[i - 1].size);
    if (after.h[i].ts - after.h[i - 1].ts < interval - 1000)
      fail_msg("heads %d and %d are %lld us apart", i - 1, i,
               (long long)(after.h[i].ts - after.h[i - 1].ts));
    if (after.h[i - 1].size == 0) continue;
    merkle_hash p[MERKLE_MAX_PATH];
    int n;
    assert_int_equal(ledger_consistency(f->lg, after.h[i - 1].size, after.h[i].size, p, &n), 0);
    assert_true(merkle_verify_consistency(after.h[i - 1].size, after.h[i].size,
                                          (const merkle_hash *)p, n, after.h[i - 1].root,
                                          after.h[i].root));
  }
  free_heads(&before);
  free_heads(&after);

  /* stopping signs a last head for what is still unsigned */
  commit_n(f->lg, 4, 999);
  uint64_t final = ledger_size(f->lg);
  ledger_free(f->lg);
  f->lg = NULL;
  /* the signer is gone: one hook call per stored head */
  load_heads(f->ix, &after);
  assert_int_equal(atomic_load(&hc.calls), after.n);
  free_heads(&after);
  assert_int_equal(open_ledger(f, NULL, interval), 0);
  assert_int_equal(ledger_sth_latest(f->lg, &sth), 0);
  check_head(f->lg, sth, final);
  json_decref(sth);
}

/* ---- tampering --------------------------------------------------------- */

/* Signs a head at n events, overwrites node (level, index) with one bit
 * flipped, and reopens. */
static void tamper_case(fixture *f, uint64_t n, unsigned level, uint64_t index) {
  assert_int_equal(open_ledger(f, NULL, 0), 0);
  commit_n(f->lg, (int)n, 0);
  assert_int_equal(ledger_sign_now(f->lg), 0);
  merkle_hash before;
  assert_int_equal(ledger_root(f->lg, n, before), 0);
  ledger_free(f->lg);
  f->lg = NULL;

  unsigned char h[32];
  assert_int_equal(idx_ledger_node_get(f->ix, level, index, h), 0);
  h[7] ^= 0x10;
  idx_batch *b = idx_batch_new(f->ix);
  idx_batch_put_ledger_node(b, level, index, h);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);

  int rc = reopen(f, NULL, 0);
  if (rc != CU_ECORRUPT)
    fail_msg("size %llu, node (%u, %llu) changed: ledger_open returned %d (%s)",
             (unsigned long long)n, level, (unsigned long long)index, rc, rc ? cu_errmsg() : "");
  assert_null(f->lg);
  assert_non_null(strstr(cu_errmsg(), "signed tree head"));
}

static void test_ledger_open__tampered_node_one_leaf(void **state) {
  tamper_case(*state, 1, 0, 0);
}

/* Size 5 = perfect subtrees (2, 0) and (0, 4): the root reads both. */
static void test_ledger_open__tampered_node_last_leaf(void **state) {
  tamper_case(*state, 5, 0, 4);
}

static void test_ledger_open__tampered_node_inner(void **state) {
  tamper_case(*state, 5, 2, 0);
}

static void test_ledger_open__head_beyond_the_tree(void **state) {
  fixture *f = *state;
  assert_int_equal(open_ledger(f, NULL, 0), 0);
  commit_n(f->lg, 3, 0);
  assert_int_equal(ledger_sign_now(f->lg), 0);
  json_t *sth = NULL;
  assert_int_equal(ledger_sth_latest(f->lg, &sth), 0);
  ledger_free(f->lg);
  f->lg = NULL;
  /* a head claiming more events than are stored (events removed) */
  json_t *forged = json_deep_copy(sth);
  cu_json_set_int(forged, "size", 10);
  idx_batch *b = idx_batch_new(f->ix);
  idx_batch_put_sth(b, 10, forged);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);
  assert_int_equal(reopen(f, NULL, 0), CU_ECORRUPT);
  assert_non_null(strstr(cu_errmsg(), "signed tree head"));
  /* a head whose root is not a hash */
  cu_json_set_str(forged, "root", "not hex");
  b = idx_batch_new(f->ix);
  idx_batch_put_sth(b, 10, forged);
  assert_int_equal(idx_batch_commit(f->ix, b), 0);
  idx_batch_free(b);
  assert_int_equal(reopen(f, NULL, 0), CU_ECORRUPT);
  json_decref(forged);
  json_decref(sth);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ledger_open__makes_key_and_keeps_origin, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ledger_open__origin_for_a_new_ledger, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_open__missing_key_with_events_is_corrupt, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ledger_commit__entries_order_and_links, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_commit__concurrent_appends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_reopen__same_tree_and_appends_continue, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ledger_sign_now__heads_verify_and_extend, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ledger_signer__signs_hooks_and_rate_limits, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ledger_open__tampered_node_one_leaf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_open__tampered_node_last_leaf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_open__tampered_node_inner, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_open__head_beyond_the_tree, setup, teardown),
  };
  const char *only = getenv("CMOCKA_TEST_FILTER");
  if (only) cmocka_set_test_filter(only);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
