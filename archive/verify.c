/* DESIGN: one streaming pass per kind of thing, so memory stays bounded by
 * the number of signed heads, not the number of events or bytes:
 *   1. signed heads: signature, and the root and size in the signed text;
 *   2. ledger: entries in index order, each leaf re-hashed and compared
 *      with the stored tree, the tree rebuilt on a merkle_frontier whose
 *      completed subtrees are compared with the stored ones, and its root
 *      compared with each head's as the rebuild reaches that size;
 *      consecutive heads are then linked by consistency proofs;
 *   3. evidence: each object re-hashed, its token checked, its ingested
 *      event found. */
#include "verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "cu_limits.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "idx.h"
#include "ledger.h"
#include "merkle.h"
#include "note.h"
#include "scrub.h"
#include "store.h"
#include "tsa.h"
#include "banned.h"

#define MAX_LISTED 200 /* failures listed one by one; more are counted */

typedef struct {
  uint64_t size;
  merkle_hash root;
  bool valid;
  char note_sha[65];
} head;

typedef struct {
  const verify_opts *o;
  idx *ix;
  store *st;
  json_t *report, *failures, *warnings;
  uint64_t evidence, objects, bytes, tokens, entries; /* what was checked */
  uint64_t nfail, nwarn;
  char origin[NOTE_MAX_ORIGIN + 1];
  unsigned char pub[32];
  cu_buf ca;
  head *heads;
  size_t nheads, cap;
  uint64_t bytes_total; /* of all objects, for the progress bar */
} vctx;

static void add(json_t *list, uint64_t *count, const char *check, const char *evidence,
                int64_t index, int64_t size, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void add(json_t *list, uint64_t *count, const char *check, const char *evidence,
                int64_t index, int64_t size, const char *fmt, ...) {
  (*count)++;
  if (*count > MAX_LISTED) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *f = json_object();
  cu_json_set_str(f, "check", check);
  if (evidence) cu_json_set_str(f, "evidence", evidence);
  if (index >= 0) cu_json_set_int(f, "index", index);
  if (size >= 0) cu_json_set_int(f, "size", size);
  cu_json_set_str(f, "message", msg);
  json_array_append_new(list, f);
}

#define FAIL(v, check, ev, index, size, ...) \
  add((v)->failures, &(v)->nfail, check, ev, index, size, __VA_ARGS__)
#define WARN(v, check, ev, index, size, ...) \
  add((v)->warnings, &(v)->nwarn, check, ev, index, size, __VA_ARGS__)

static int node_get(void *ud, unsigned level, uint64_t index, merkle_hash out) {
  return idx_ledger_node_get(ud, level, index, out);
}

/* ---- trust anchors ------------------------------------------------------ */

int verify_read_vkey(const char *path, char name[NOTE_MAX_ORIGIN + 1], unsigned char pub[32]) {
  cu_buf text = CU_BUF_INIT(4096);
  int rc = cu_read_small_file(path, text.max, &text);
  if (!rc) {
    size_t n = text.len;
    while (n && (text.data[n - 1] == '\n' || text.data[n - 1] == '\r')) text.data[--n] = '\0';
    rc = note_vkey_parse(text.data, name, pub);
  }
  cu_buf_release(&text);
  return rc;
}

int verify_checkpoint(const char *note, size_t n, const char *name, const unsigned char pub[32],
                      note_checkpoint *cp) {
  size_t blen = 0;
  int rc = note_verify(note, n, name, pub, &blen);
  if (!rc) rc = note_checkpoint_parse(note, blen, cp);
  return rc;
}

static int load_key(vctx *v) {
  const char *home = v->o->home;
  json_t *origin = NULL;
  int rc = idx_meta_get(v->ix, "ledger_origin", &origin);
  if (!rc && json_is_string(origin))
    snprintf(v->origin, sizeof v->origin, "%s", json_string_value(origin));
  json_decref(origin);
  if (v->o->ledger_key) {
    char name[NOTE_MAX_ORIGIN + 1];
    rc = verify_read_vkey(v->o->ledger_key, name, v->pub);
    if (rc) return cu_error_wrap(rc, "cannot use the ledger key %s", v->o->ledger_key);
    if (v->origin[0] && strcmp(name, v->origin))
      FAIL(v, "ledger", NULL, -1, -1, "the given key is for the log '%s', but this ledger is '%s'",
           name, v->origin);
    snprintf(v->origin, sizeof v->origin, "%s", name);
    return 0;
  }
  char *keys = cu_path_join(home, "keys");
  rc = ledger_load_public_key(keys, v->pub);
  free(keys);
  if (rc == CU_ENOTFOUND) return 0; /* an empty home; heads will say if that is wrong */
  return rc;
}

static int load_ca(vctx *v) {
  if (v->o->tsa_ca_file) {
    int rc = cu_read_small_file(v->o->tsa_ca_file, 1 << 20, &v->ca);
    return rc ? cu_error_wrap(rc, "cannot read the TSA roots") : 0;
  }
  json_t *list = NULL;
  int rc = idx_meta_get(v->ix, "tsa_roots", &list);
  if (rc == CU_ENOTFOUND) return 0;
  if (rc) return rc;
  size_t i;
  json_t *pem;
  json_array_foreach(list, i, pem) {
    if (json_is_string(pem)) cu_buf_adds(&v->ca, json_string_value(pem));
  }
  json_decref(list);
  return 0;
}

/* ---- 1. signed heads ---------------------------------------------------- */

static int head_one(uint64_t size, json_t *sth, void *ud) {
  vctx *v = ud;
  if (v->nheads == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 64;
    v->heads = cu_xrealloc(v->heads, v->cap * sizeof *v->heads);
  }
  head *h = &v->heads[v->nheads++];
  memset(h, 0, sizeof *h);
  h->size = size;
  const char *note = cu_json_str(sth, "checkpoint");
  note_checkpoint cp;
  if (!note) {
    FAIL(v, "sth", NULL, -1, (int64_t)size, "the signed head for size %llu has no checkpoint",
         (unsigned long long)size);
  } else if (verify_checkpoint(note, strlen(note), v->origin, v->pub, &cp)) {
    FAIL(v, "sth", NULL, -1, (int64_t)size, "the signed head for size %llu: %s",
         (unsigned long long)size, cu_errmsg());
  } else if (cp.size != size || strcmp(cp.origin, v->origin)) {
    FAIL(v, "sth", NULL, -1, (int64_t)size,
         "the signed head stored for size %llu signs size %llu of log '%s'",
         (unsigned long long)size, (unsigned long long)cp.size, cp.origin);
  } else {
    memcpy(h->root, cp.root, 32);
    h->valid = true;
    const char *root = cu_json_str(sth, "root");
    char hex[65];
    cu_hex_encode(cp.root, 32, hex);
    if (!root || strcmp(root, hex))
      FAIL(v, "sth", NULL, -1, (int64_t)size,
           "the signed head for size %llu: its root field differs from the signed root",
           (unsigned long long)size);
    cu_sha256_hex(note, strlen(note), h->note_sha);
  }
  return 0;
}

static void check_head_tokens(vctx *v) {
  uint64_t tokens = 0;
  for (size_t i = 0; i < v->nheads; i++) {
    head *h = &v->heads[i];
    if (!h->valid) continue;
    cu_buf der = CU_BUF_INIT(1 << 20);
    int rc = idx_timestamp_get(v->ix, h->note_sha, &der);
    if (rc == CU_ENOTFOUND) {
      WARN(v, "timestamp", NULL, -1, (int64_t)h->size,
           "the signed head for size %llu has no time-stamp yet (its stamp job is queued)",
           (unsigned long long)h->size);
    } else if (rc) {
      FAIL(v, "timestamp", NULL, -1, (int64_t)h->size, "%s", cu_errmsg());
    } else {
      unsigned char d[32];
      cu_hex_decode(h->note_sha, 64, d, 32);
      tokens++;
      if (tsa_verify(der.data, der.len, d, v->ca.data ? v->ca.data : "", v->ca.len, NULL))
        FAIL(v, "timestamp", NULL, -1, (int64_t)h->size, "the signed head for size %llu: %s",
             (unsigned long long)h->size, cu_errmsg());
    }
    cu_buf_release(&der);
  }
  v->tokens += tokens;
}

/* ---- 2. the ledger ------------------------------------------------------ */

typedef struct {
  vctx *v;
  merkle_frontier fr;
  uint64_t expected;
  size_t next_head;
  uint64_t entries;
  bool broken; /* a gap: the rebuilt tree stops there */
  uint64_t node_failures;
} rebuild;

static void compare_node(void *ud, unsigned level, uint64_t index, const merkle_hash h) {
  rebuild *r = ud;
  if (level == 0) return; /* leaves are compared by the caller, with more to say */
  merkle_hash stored;
  int rc = idx_ledger_node_get(r->v->ix, level, index, stored);
  if (rc || memcmp(stored, h, 32)) {
    if (r->node_failures++ < 10)
      FAIL(r->v, "ledger", NULL, (int64_t)(index << level), -1,
           "the stored tree node (level %u, index %llu) %s the one rebuilt from the entries",
           level, (unsigned long long)index, rc ? "is missing, unlike" : "differs from");
  }
}

static void heads_reached(rebuild *r) {
  vctx *v = r->v;
  while (r->next_head < v->nheads && v->heads[r->next_head].size <= r->fr.size) {
    head *h = &v->heads[r->next_head++];
    if (!h->valid || h->size != r->fr.size) continue;
    merkle_hash root;
    merkle_frontier_root(&r->fr, root);
    if (memcmp(root, h->root, 32))
      FAIL(v, "sth", NULL, -1, (int64_t)h->size,
           "the entries 0..%llu rebuild a root that differs from the one signed for size %llu: "
           "the ledger was changed after that head was signed",
           (unsigned long long)h->size - 1, (unsigned long long)h->size);
  }
}

/* Each entry against its stored leaf hash, and canonical. */
static void check_entry(vctx *v, uint64_t index, const char *bytes, size_t n, merkle_hash leaf) {
  merkle_hash stored;
  merkle_leaf(bytes, n, leaf);
  int rc = idx_ledger_node_get(v->ix, 0, index, stored);
  if (rc) {
    FAIL(v, "ledger", NULL, (int64_t)index, -1, "ledger index %llu has no leaf hash in the tree",
         (unsigned long long)index);
  } else if (memcmp(leaf, stored, 32)) {
    char a[65], b[65];
    cu_hex_encode(leaf, 32, a);
    cu_hex_encode(stored, 32, b);
    FAIL(v, "ledger", NULL, (int64_t)index, -1,
         "ledger index %llu: the entry hashes to %s but the tree recorded %s: the entry was "
         "changed after it was appended",
         (unsigned long long)index, a, b);
  }
  json_t *ev = NULL;
  if (cu_json_parse(bytes, n, &ev)) {
    FAIL(v, "ledger", NULL, (int64_t)index, -1, "ledger index %llu is not valid JSON",
         (unsigned long long)index);
    return;
  }
  size_t cn;
  char *canon = cu_json_canon(ev, &cn);
  if (cn != n || memcmp(canon, bytes, n))
    FAIL(v, "ledger", NULL, (int64_t)index, -1, "ledger index %llu is not canonical JSON",
         (unsigned long long)index);
  free(canon);
  json_decref(ev);
}

static int entry_one(uint64_t index, const char *bytes, size_t n, void *ud) {
  rebuild *r = ud;
  vctx *v = r->v;
  if (index != r->expected) {
    if (index == r->expected + 1)
      FAIL(v, "ledger", NULL, (int64_t)r->expected, -1, "ledger index %llu is missing",
           (unsigned long long)r->expected);
    else
      FAIL(v, "ledger", NULL, (int64_t)r->expected, -1, "ledger indexes %llu to %llu are missing",
           (unsigned long long)r->expected, (unsigned long long)index - 1);
    r->broken = true; /* the tree cannot be rebuilt past a gap; entries are still checked */
  }
  r->expected = index + 1;
  r->entries++;
  merkle_hash leaf;
  check_entry(v, index, bytes, n, leaf);
  if (r->broken) return 0;
  merkle_frontier_append(&r->fr, leaf, compare_node, r);
  heads_reached(r);
  return 0;
}

static void check_consistency(vctx *v) {
  for (size_t i = 1; i < v->nheads; i++) {
    head *a = &v->heads[i - 1], *b = &v->heads[i];
    if (!a->valid || !b->valid || !a->size) continue;
    merkle_hash path[MERKLE_MAX_PATH];
    int n = 0;
    int rc = merkle_consistency_proof(node_get, v->ix, a->size, b->size, path, &n);
    if (rc || !merkle_verify_consistency(a->size, b->size, (const merkle_hash *)path, n, a->root,
                                         b->root))
      FAIL(v, "sth", NULL, -1, (int64_t)b->size,
           "the signed heads for sizes %llu and %llu are not consistent%s%s",
           (unsigned long long)a->size, (unsigned long long)b->size, rc ? ": " : "",
           rc ? cu_errmsg() : "");
  }
}

static void check_ledger(vctx *v) {
  rebuild r = {.v = v};
  int rc = idx_ledger_each_entry(v->ix, 0, entry_one, &r);
  if (rc) FAIL(v, "ledger", NULL, -1, -1, "cannot read the ledger: %s", cu_errmsg());
  v->entries = r.entries;
  if (r.node_failures > 10)
    FAIL(v, "ledger", NULL, -1, -1, "%llu tree nodes differ in all",
         (unsigned long long)r.node_failures);
  for (size_t i = r.next_head; i < v->nheads; i++) {
    if (v->heads[i].size > r.fr.size)
      FAIL(v, "sth", NULL, -1, (int64_t)v->heads[i].size,
           "a head was signed for size %llu, but only %llu entries %s",
           (unsigned long long)v->heads[i].size, (unsigned long long)r.fr.size,
           r.broken ? "can be checked before the gap" : "remain: entries were removed");
  }
  check_consistency(v);
}

/* ---- 3. evidence -------------------------------------------------------- */

typedef struct {
  vctx *v;
  const char *id, *sha;
  bool found, match;
  char seen_sha[65];
  json_t *renditions; /* kind -> sha256 of its "rendition" event */
} custody;

static int custody_one(uint64_t index, const json_t *ev, void *ud) {
  custody *c = ud;
  const char *type = cu_json_str(ev, "type"), *evid = cu_json_str(ev, "evidence");
  const char *sha = cu_json_str(ev, "sha256");
  if (type && !strcmp(type, "ingested") && evid && !strcmp(evid, c->id)) {
    c->found = true;
    snprintf(c->seen_sha, sizeof c->seen_sha, "%s", sha ? sha : "");
    if (sha && !strcmp(sha, c->sha)) c->match = true;
  }
  const char *kind = cu_json_str(ev, "kind");
  if (type && !strcmp(type, "rendition") && kind && sha && evid && !strcmp(evid, c->id))
    json_object_set_new(c->renditions, kind, json_string(sha));
  return 0;
}

/* Each finished rendition: its object is whole and the ledger recorded it
 * with the same hash. */
static void check_renditions(vctx *v, const char *id, const char *orig_sha, const custody *cu) {
  json_t *all = NULL, *r;
  const char *kind;
  if (idx_renditions(v->ix, id, &all)) {
    FAIL(v, "rendition", id, -1, -1, "evidence %s: cannot read its renditions: %s", id, cu_errmsg());
    return;
  }
  json_object_foreach(all, kind, r) {
    const char *state = cu_json_str(r, "state"), *sha = cu_json_str(r, "sha256");
    if (!state || strcmp(state, "done")) continue;
    if (!sha || !cu_is_sha256_hex(sha)) {
      FAIL(v, "rendition", id, -1, -1, "evidence %s: its %s record has no valid sha256", id, kind);
      continue;
    }
    if (strcmp(sha, orig_sha)) {
      char actual[65];
      uint64_t bytes = 0;
      int rc = scrub_object(v->st, sha, 0, NULL, actual, &bytes);
      v->objects++;
      v->bytes += bytes;
      if (rc == CU_ENOTFOUND)
        FAIL(v, "rendition", id, -1, -1, "evidence %s: its %s object %s is missing", id, kind, sha);
      else if (rc == CU_ECORRUPT)
        FAIL(v, "rendition", id, -1, -1, "evidence %s: its %s object %s now hashes to %s", id, kind, sha, actual);
      else if (rc)
        FAIL(v, "rendition", id, -1, -1, "evidence %s: its %s: %s", id, kind, cu_errmsg());
    }
    const char *ledgered = cu_json_str(cu->renditions, kind);
    if (!ledgered)
      FAIL(v, "custody", id, -1, -1, "evidence %s: its %s has no rendition event in the ledger", id, kind);
    else if (strcmp(ledgered, sha))
      FAIL(v, "custody", id, -1, -1, "evidence %s: the ledger recorded its %s as %s, the record now says %s",
           id, kind, ledgered, sha);
  }
  json_decref(all);
}

static int sum_sizes(const char *id, json_t *rec, void *ud) {
  vctx *v = ud;
  if (!strcmp(cu_json_str(rec, "state") ? cu_json_str(rec, "state") : "", "deleted")) return 0;
  v->bytes_total += (uint64_t)cu_json_int(rec, "size", 0);
  json_t *all = NULL, *r;
  const char *kind;
  if (idx_renditions(v->ix, id, &all)) return 0;
  json_object_foreach(all, kind, r)
    if (cu_json_str(r, "sha256") && strcmp(cu_json_str(r, "sha256"), cu_json_str(rec, "sha256") ? cu_json_str(rec, "sha256") : ""))
      v->bytes_total += (uint64_t)cu_json_int(r, "size", 0);
  json_decref(all);
  return 0;
}

static int evidence_one(const char *id, json_t *rec, void *ud) {
  vctx *v = ud;
  const char *sha = cu_json_str(rec, "sha256");
  v->evidence++;
  if (!sha || !cu_is_sha256_hex(sha)) {
    FAIL(v, "object", id, -1, -1, "evidence %s has no valid sha256 in its record", id);
    return 0;
  }
  /* A deleted item keeps its record, token and events; its bytes were
   * removed on an approved request (another item sharing them checks them). */
  bool deleted = !strcmp(cu_json_str(rec, "state") ? cu_json_str(rec, "state") : "", "deleted");
  char actual[65];
  uint64_t bytes = 0;
  int rc = deleted ? 0 : scrub_object(v->st, sha, 0, NULL, actual, &bytes);
  v->objects += !deleted;
  v->bytes += bytes;
  if (v->o->progress) v->o->progress(v->o->ud, v->bytes, v->bytes_total);
  if (rc == CU_ENOTFOUND) {
    FAIL(v, "object", id, -1, -1, "evidence %s: its object %s is missing", id, sha);
  } else if (rc == CU_ECORRUPT) {
    FAIL(v, "object", id, -1, -1, "evidence %s: its object %s now hashes to %s", id, sha, actual);
  } else if (rc) {
    FAIL(v, "object", id, -1, -1, "evidence %s: %s", id, cu_errmsg());
  } else if (!deleted && bytes != (uint64_t)cu_json_int(rec, "size", -1)) {
    FAIL(v, "object", id, -1, -1, "evidence %s: its object is %llu bytes, the record says %lld", id,
         (unsigned long long)bytes, (long long)cu_json_int(rec, "size", -1));
  }

  cu_buf der = CU_BUF_INIT(1 << 20);
  rc = idx_timestamp_get(v->ix, sha, &der);
  if (rc == CU_ENOTFOUND) {
    WARN(v, "timestamp", id, -1, -1, "evidence %s is not time-stamped yet (its stamp job is queued)",
         id);
  } else if (rc) {
    FAIL(v, "timestamp", id, -1, -1, "evidence %s: %s", id, cu_errmsg());
  } else {
    unsigned char d[32];
    cu_hex_decode(sha, 64, d, 32);
    v->tokens++;
    if (tsa_verify(der.data, der.len, d, v->ca.data ? v->ca.data : "", v->ca.len, NULL))
      FAIL(v, "timestamp", id, -1, -1, "evidence %s: %s", id, cu_errmsg());
  }
  cu_buf_release(&der);

  custody cu = {v, id, sha, false, false, "", json_object()};
  if (ledger_each_event(v->ix, id, custody_one, &cu)) {
    FAIL(v, "custody", id, -1, -1, "evidence %s: cannot read its events: %s", id, cu_errmsg());
  } else if (!cu.found) {
    FAIL(v, "custody", id, -1, -1, "evidence %s has no ingested event in the ledger", id);
  } else if (!cu.match) {
    FAIL(v, "custody", id, -1, -1,
         "evidence %s: the ledger recorded sha256 %s at ingest, the record now says %s", id,
         cu.seen_sha, sha);
  }
  check_renditions(v, id, sha, &cu);
  json_decref(cu.renditions);
  return 0;
}

int verify_home(const verify_opts *o, json_t **out) {
  vctx v = {.o = o};
  cu_buf_init(&v.ca, 8 << 20);
  struct stat sb;
  char *p = cu_path_join(o->home, "index");
  int rc = 0;
  if (stat(p, &sb)) {
    rc = cu_error(CU_ENOTFOUND, "%s is not a Custos home (it has no index/)", o->home);
    goto done;
  }
  if ((rc = idx_open(&v.ix, p))) {
    rc = cu_error_wrap(rc, "cannot open the index (a running server holds it: stop it first)");
    goto done;
  }
  free(p);
  p = cu_path_join(o->home, "objects");
  if ((rc = store_open(&v.st, p))) goto done;
  if ((rc = load_key(&v)) || (rc = load_ca(&v))) goto done;

  v.report = json_object();
  v.failures = json_array();
  v.warnings = json_array();

  if ((rc = idx_sth_each(v.ix, 0, head_one, &v))) goto done;
  check_ledger(&v);
  check_head_tokens(&v);
  if ((rc = idx_evidence_each(v.ix, NULL, sum_sizes, &v))) goto done;
  if ((rc = idx_evidence_each(v.ix, NULL, evidence_one, &v))) goto done;

  cu_json_set_str(v.report, "home", o->home);
  json_object_set_new(v.report, "ok", json_boolean(v.nfail == 0));
  json_object_set_new(v.report, "checked",
                      json_pack("{sIsIsIsIsIsI}", "evidence", (json_int_t)v.evidence, "objects",
                                (json_int_t)v.objects, "bytes", (json_int_t)v.bytes, "tokens",
                                (json_int_t)v.tokens, "ledger_entries", (json_int_t)v.entries,
                                "signed_heads", (json_int_t)v.nheads));
  json_object_set(v.report, "failures", v.failures);
  json_object_set(v.report, "warnings", v.warnings);
  cu_json_set_int(v.report, "failure_count", (int64_t)v.nfail);
  cu_json_set_int(v.report, "warning_count", (int64_t)v.nwarn);
  *out = json_incref(v.report);
done:
  free(p);
  json_decref(v.report);
  json_decref(v.failures);
  json_decref(v.warnings);
  free(v.heads);
  cu_buf_release(&v.ca);
  store_free(v.st);
  idx_close(v.ix);
  return rc;
}
