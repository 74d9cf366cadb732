/* Unit tests for archive/bag_verify (custos verify BAG).
 *
 * Each test builds a small export bag by hand, following docs/EXPORT.md
 * and nothing else of Custos: two items (one with an access copy and a
 * clip), ledger events hashed into an RFC 9162 tree whose head is signed
 * as a C2SP checkpoint with a fresh Ed25519 key, inclusion proofs from
 * merkle.h, RFC 3161 tokens from the built-in TSA (made once for all
 * tests), REPORT.json, and BagIt manifests computed here with OpenSSL's
 * EVP. The good bag passes; then each test changes one thing, the way a
 * careless or dishonest hand would, and the failure must name it. Where
 * the change would also be caught by the tag manifest, some tests re-seal
 * the tag manifest (as someone covering their tracks would), so the deeper
 * check is shown to stand on its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "b64.h"
#include "bag_verify.h"
#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "id.h"
#include "json.h"
#include "merkle.h"
#include "note.h"
#include "timeu.h"
#include "tsa.h"
#include "test_util.h"

#define ORIGIN "custos/bag-test"
#define MAX_EVENTS 16
#define MAX_FILES 64

/* The built-in TSA, made once: key generation is the slow part. */
static char *tsa_dir;
static tsa *the_tsa;
static cu_buf tsa_root = CU_BUF_INIT(1 << 20);

typedef struct {
  bool clip_source_foreign; /* the clip's rendition event names a source not in the bag */
} spec;

typedef struct {
  char *root; /* the temporary directory */
  char *bag;  /* root/custos-case-1-export-1 */
  unsigned char seed[32], pub[32];
  char id1[CU_ID_LEN + 1], id2[CU_ID_LEN + 1];
  /* the ledger */
  char *ev[MAX_EVENTS];
  size_t evlen[MAX_EVENTS];
  int nev;
  merkle_hash leaf[MAX_EVENTS];
  /* the bag's facts, for REPORT.json */
  char oxum[64];
  json_t *items; /* evidence id -> {"files": [...], "events": [...]} */
} fixture;

/* ---- small helpers ------------------------------------------------------ */

static char *bag_path(fixture *f, const char *rel) {
  return cu_path_join(f->bag, rel);
}

static void put(fixture *f, const char *rel, const void *data, size_t n) {
  char *p = bag_path(f, rel);
  char *slash = strrchr(p, '/');
  *slash = '\0';
  assert_int_equal(cu_mkdirs(p, 0755), 0);
  *slash = '/';
  FILE *fp = fopen(p, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, n, fp), n);
  assert_int_equal(fclose(fp), 0);
  free(p);
}

static void puts_(fixture *f, const char *rel, const char *s) {
  put(f, rel, s, strlen(s));
}

static void get(fixture *f, const char *rel, cu_buf *out) {
  char *p = bag_path(f, rel);
  cu_buf_reset(out);
  assert_int_equal(cu_read_small_file(p, out->max, out), 0);
  free(p);
}

static void digest_hex(const EVP_MD *md, const void *d, size_t n, char *out) {
  unsigned char h[64];
  unsigned len = 0;
  assert_int_equal(EVP_Digest(d, n, h, &len, md, NULL), 1);
  cu_hex_encode(h, len, out);
}

static void file_hex(fixture *f, const char *rel, const EVP_MD *md, char *out) {
  cu_buf b = CU_BUF_INIT(64 << 20);
  get(f, rel, &b);
  digest_hex(md, b.data, b.len, out);
  cu_buf_release(&b);
}

/* Replaces the first occurrence of old by new in a file of the bag. */
static void replace_in(fixture *f, const char *rel, const char *old, const char *new) {
  cu_buf b = CU_BUF_INIT(64 << 20), o = CU_BUF_INIT(64 << 20);
  get(f, rel, &b);
  char *at = strstr(b.data, old);
  if (!at) fail_msg("'%s' is not in %s", old, rel);
  cu_buf_add(&o, b.data, (size_t)(at - b.data));
  cu_buf_adds(&o, new);
  cu_buf_adds(&o, at + strlen(old));
  put(f, rel, o.data, o.len);
  cu_buf_release(&b);
  cu_buf_release(&o);
}

static void flip_byte(fixture *f, const char *rel, size_t off) {
  cu_buf b = CU_BUF_INIT(64 << 20);
  get(f, rel, &b);
  assert_true(off < b.len);
  b.data[off] ^= 0x01;
  put(f, rel, b.data, b.len);
  cu_buf_release(&b);
}

static void remove_in(fixture *f, const char *rel) {
  char *p = bag_path(f, rel);
  assert_int_equal(unlink(p), 0);
  free(p);
}

/* ---- the bag ------------------------------------------------------------ */

static int node_get(void *ud, unsigned level, uint64_t index, merkle_hash out) {
  fixture *f = ud;
  if (level == 0) {
    assert_true(index < (uint64_t)f->nev);
    memcpy(out, f->leaf[index], 32);
    return 0;
  }
  merkle_hash l, r;
  node_get(f, level - 1, 2 * index, l);
  node_get(f, level - 1, 2 * index + 1, r);
  merkle_node(l, r, out);
  return 0;
}

static int append_event(fixture *f, json_t *ev) {
  assert_true(f->nev < MAX_EVENTS);
  cu_json_set_str(ev, "at", "2026-03-01T10:00:00.000001Z");
  int i = f->nev++;
  f->ev[i] = cu_json_canon(ev, &f->evlen[i]);
  merkle_leaf(f->ev[i], f->evlen[i], f->leaf[i]);
  json_decref(ev);
  return i;
}

static json_t *item(fixture *f, const char *id) {
  json_t *it = json_object_get(f->items, id);
  if (!it) json_object_set_new(f->items, id, it = json_pack("{s[]s[]}", "files", "events"));
  return it;
}

/* A payload file: written, and its REPORT.json entry. */
static void payload(fixture *f, const char *id, const char *kind, const char *rel,
                    const char *content, const char *source, int ledger_index) {
  puts_(f, rel, content);
  char s256[129], s512[129];
  digest_hex(EVP_sha256(), content, strlen(content), s256);
  digest_hex(EVP_sha512(), content, strlen(content), s512);
  json_t *e =
      json_pack("{sssssssssIsI}", "path", rel, "kind", kind, "sha256", s256, "sha512", s512, "size",
                (json_int_t)strlen(content), "ledger_index", (json_int_t)ledger_index);
  if (source) cu_json_set_str(e, "source_sha256", source);
  json_array_append_new(json_object_get(item(f, id), "files"), e);
}

static void sha256_of(const char *s, char out[65]) {
  cu_sha256_hex(s, strlen(s), out);
}

static void write_events(fixture *f, const char *id, const int *idx, int n, uint64_t size) {
  cu_buf out = CU_BUF_INIT(1 << 20);
  for (int k = 0; k < n; k++) {
    merkle_hash path[MERKLE_MAX_PATH];
    int np = 0;
    assert_int_equal(merkle_inclusion_proof(node_get, f, (uint64_t)idx[k], size, path, &np), 0);
    cu_buf b64 = CU_BUF_INIT(1 << 20);
    assert_int_equal(cu_b64_encode(f->ev[idx[k]], f->evlen[idx[k]], &b64), 0);
    json_t *ap = json_array();
    for (int p = 0; p < np; p++) {
      char hex[65];
      cu_hex_encode(path[p], 32, hex);
      json_array_append_new(ap, json_string(hex));
    }
    json_t *line =
        json_pack("{sIsssO}", "index", (json_int_t)idx[k], "data", b64.data, "audit_path", ap);
    size_t len;
    char *c = cu_json_canon(line, &len);
    cu_buf_add(&out, c, len);
    cu_buf_adds(&out, "\n");
    free(c);
    json_decref(line);
    json_decref(ap);
    cu_buf_release(&b64);
    json_t *ev = NULL;
    assert_int_equal(cu_json_parse(f->ev[idx[k]], f->evlen[idx[k]], &ev), 0);
    json_array_append_new(json_object_get(item(f, id), "events"),
                          json_pack("{sIso}", "index", (json_int_t)idx[k], "event", ev));
  }
  char rel[128];
  snprintf(rel, sizeof rel, "custody/%s/events.jsonl", id);
  put(f, rel, out.data, out.len);
  cu_buf_release(&out);
}

static json_t *stamp(fixture *f, const char *rel, const char *sha_hex) {
  unsigned char d[32];
  assert_int_equal(cu_hex_decode(sha_hex, 64, d, 32), 0);
  cu_buf der = CU_BUF_INIT(1 << 20);
  tsa_info info;
  if (tsa_stamp(the_tsa, d, &der, &info)) fail_msg("tsa_stamp: %s", cu_errmsg());
  put(f, rel, der.data, der.len);
  cu_buf_release(&der);
  char t[CU_RFC3339_LEN];
  cu_time_rfc3339(info.gen_time_us, t);
  return json_pack("{ssss}", "gen_time", t, "tsa", "built-in");
}

typedef struct {
  char **paths;
  size_t n;
  const char *base;
} listing;

static listing *walking;

static int collect(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)ftw;
  if (flag != FTW_F) return 0;
  const char *rel = path + strlen(walking->base) + 1;
  walking->paths = cu_xrealloc(walking->paths, (walking->n + 1) * sizeof *walking->paths);
  walking->paths[walking->n++] = cu_xstrdup(rel);
  return 0;
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_files(fixture *f, listing *l) {
  memset(l, 0, sizeof *l);
  l->base = f->bag;
  walking = l;
  assert_int_equal(nftw(f->bag, collect, 16, FTW_PHYS), 0);
  qsort(l->paths, l->n, sizeof *l->paths, str_cmp);
}

static void listing_free(listing *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->paths[i]);
  free(l->paths);
}

static void write_bag_info(fixture *f, const char *oxum) {
  char *s =
      cu_xasprintf("Source-Organization: Custos\nBagging-Date: 2026-03-01\nPayload-Oxum: %s\n"
                   "External-Identifier: case-1\nExported-By: test\nExternal-Description: A test\n"
                   "  case, with a long description continued on a second line\n"
                   "Bag-Size: 1 KB\nX-Custos-Export-Id: export-1\nX-Custos-Ledger-Origin: %s\n"
                   "X-Custos-Tree-Size: %d\n",
                   oxum, ORIGIN, f->nev);
  puts_(f, "bag-info.txt", s);
  free(s);
}

/* The tag manifest, over every file outside data/ but the tag manifests. */
static void seal_tags(fixture *f) {
  listing l;
  list_files(f, &l);
  cu_buf m = CU_BUF_INIT(1 << 20);
  for (size_t i = 0; i < l.n; i++) {
    if (!strncmp(l.paths[i], "data/", 5) || !strncmp(l.paths[i], "tagmanifest-", 12)) continue;
    char hex[129];
    file_hex(f, l.paths[i], EVP_sha256(), hex);
    cu_buf_printf(&m, "%s  %s\n", hex, l.paths[i]);
  }
  puts_(f, "tagmanifest-sha256.txt", m.data ? m.data : "");
  cu_buf_release(&m);
  listing_free(&l);
}

/* Both payload manifests and bag-info.txt from what is in data/, then the
 * tag manifest. */
static void seal(fixture *f) {
  listing l;
  list_files(f, &l);
  cu_buf m256 = CU_BUF_INIT(1 << 20), m512 = CU_BUF_INIT(1 << 20);
  uint64_t bytes = 0, count = 0;
  for (size_t i = 0; i < l.n; i++) {
    if (strncmp(l.paths[i], "data/", 5)) continue;
    char hex[129];
    file_hex(f, l.paths[i], EVP_sha256(), hex);
    cu_buf_printf(&m256, "%s  %s\n", hex, l.paths[i]);
    file_hex(f, l.paths[i], EVP_sha512(), hex);
    cu_buf_printf(&m512, "%s  %s\n", hex, l.paths[i]);
    struct stat st;
    char *p = bag_path(f, l.paths[i]);
    assert_int_equal(stat(p, &st), 0);
    free(p);
    bytes += (uint64_t)st.st_size;
    count++;
  }
  puts_(f, "manifest-sha256.txt", m256.data);
  puts_(f, "manifest-sha512.txt", m512.data);
  snprintf(f->oxum, sizeof f->oxum, "%llu.%llu", (unsigned long long)bytes,
           (unsigned long long)count);
  write_bag_info(f, f->oxum);
  cu_buf_release(&m256);
  cu_buf_release(&m512);
  listing_free(&l);
  seal_tags(f);
}

static void build(fixture *f, const spec *s) {
  cu_id_new(f->id1);
  cu_id_new(f->id2);
  if (strcmp(f->id1, f->id2) > 0) { /* items in id order, for the tests' expectations */
    char t[CU_ID_LEN + 1];
    memcpy(t, f->id1, sizeof t);
    memcpy(f->id1, f->id2, sizeof t);
    memcpy(f->id2, t, sizeof t);
  }
  assert_int_equal(note_keygen(f->seed, f->pub), 0);
  f->items = json_object();
  puts_(f, "bagit.txt", "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n");

  const char *o1 = "the first recording, as uploaded\n", *o2 = "the second recording\n";
  const char *acc = "an access copy of the first\n", *clip = "a clip of the first, 0 to 1 s\n";
  char h1[65], h2[65], ha[65], hc[65], foreign[65];
  sha256_of(o1, h1);
  sha256_of(o2, h2);
  sha256_of(acc, ha);
  sha256_of(clip, hc);
  sha256_of("an original that is not in the bag", foreign);

  /* The ledger: the two items' events among others. */
  append_event(f, json_pack("{ssss}", "type", "token_issued", "token", "t1")); /* 0 */
  int i1 = append_event(f, json_pack("{sssssssI}", "type", "ingested", "evidence", f->id1, "sha256",
                                     h1, "size", (json_int_t)strlen(o1))); /* 1 */
  int i2 = append_event(f, json_pack("{sssssssI}", "type", "ingested", "evidence", f->id2, "sha256",
                                     h2, "size", (json_int_t)strlen(o2))); /* 2 */
  int t1 = append_event(
      f, json_pack("{ssssss}", "type", "timestamped", "evidence", f->id1, "sha256", h1));
  int ra = append_event(f, json_pack("{sssssssssIss}", "type", "rendition", "evidence", f->id1,
                                     "kind", "access", "sha256", ha, "size",
                                     (json_int_t)strlen(acc), "source_sha256", h1)); /* 4 */
  int a1 = append_event(f, json_pack("{ssssssss}", "type", "accessed", "evidence", f->id1,
                                     "rendition", "original", "sha256", h1));  /* 5 */
  append_event(f, json_pack("{ssss}", "type", "token_issued", "token", "t2")); /* 6 */
  int rc =
      append_event(f, json_pack("{sssssssssIss}", "type", "rendition", "evidence", f->id1, "kind",
                                "clip:copy:0:1000", "sha256", hc, "size", (json_int_t)strlen(clip),
                                "source_sha256", s->clip_source_foreign ? foreign : h1)); /* 7 */
  int a2 = append_event(f, json_pack("{ssssssss}", "type", "accessed", "evidence", f->id2,
                                     "rendition", "original", "sha256", h2));  /* 8 */
  append_event(f, json_pack("{ssss}", "type", "token_issued", "token", "t3")); /* 9 */
  uint64_t size = (uint64_t)f->nev;

  /* The payload. */
  char rel[256];
  snprintf(rel, sizeof rel, "data/%s/original/first.bin", f->id1);
  payload(f, f->id1, "original", rel, o1, NULL, i1);
  snprintf(rel, sizeof rel, "data/%s/access/first.mp4", f->id1);
  payload(f, f->id1, "access", rel, acc, h1, ra);
  snprintf(rel, sizeof rel, "data/%s/clips/clip-copy-0-1000.mp4", f->id1);
  payload(f, f->id1, "clip:copy:0:1000", rel, clip, s->clip_source_foreign ? foreign : h1, rc);
  snprintf(rel, sizeof rel, "data/%s/original/second.bin", f->id2);
  payload(f, f->id2, "original", rel, o2, NULL, i2);

  /* The head. */
  merkle_hash root;
  assert_int_equal(merkle_root(node_get, f, size, root), 0);
  cu_buf body = CU_BUF_INIT(4096), note = CU_BUF_INIT(4096), vkey = CU_BUF_INIT(4096);
  assert_int_equal(note_checkpoint_body(ORIGIN, size, root, &body), 0);
  assert_int_equal(note_sign(f->seed, ORIGIN, body.data, body.len, &note), 0);
  puts_(f, "custody/checkpoint.txt", note.data);
  assert_int_equal(note_vkey(ORIGIN, f->pub, &vkey), 0);
  cu_buf_adds(&vkey, "\n");
  puts_(f, "custody/ledger-key.txt", vkey.data);
  EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, f->pub, 32);
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
  char *pem;
  long pn = BIO_get_mem_data(bio, &pem);
  put(f, "custody/ledger-key.pem", pem, (size_t)pn);
  BIO_free(bio);
  EVP_PKEY_free(k);
  char roothex[65];
  cu_hex_encode(root, 32, roothex);
  json_t *sth = json_pack("{sssIsssIss}", "origin", ORIGIN, "size", (json_int_t)size, "root",
                          roothex, "timestamp", (json_int_t)1772359200000, "checkpoint", note.data);
  size_t sn;
  char *sj = cu_json_canon(sth, &sn);
  put(f, "custody/sth.json", sj, sn);
  free(sj);
  char csha[65];
  cu_sha256_hex(note.data, note.len, csha);
  json_decref(stamp(f, "custody/checkpoint.tsr", csha));
  puts_(f, "custody/tsa-root.pem", tsa_root.data);

  /* The custody of each item. */
  int e1[] = {i1, t1, ra, a1, rc}, e2[] = {i2, a2};
  write_events(f, f->id1, e1, 5, size);
  write_events(f, f->id2, e2, 2, size);
  snprintf(rel, sizeof rel, "custody/%s/original.tsr", f->id1);
  json_t *ts1 = stamp(f, rel, h1);
  snprintf(rel, sizeof rel, "custody/%s/original.tsr", f->id2);
  json_t *ts2 = stamp(f, rel, h2);

  /* REPORT.json needs the Payload-Oxum: seal the payload first. */
  seal(f);
  json_t *items = json_array();
  const char *ids[] = {f->id1, f->id2};
  json_t *stamps[] = {ts1, ts2};
  for (int i = 0; i < 2; i++) {
    json_t *it = item(f, ids[i]);
    json_array_append_new(items, json_pack("{s{ss}sOsOsO}", "evidence", "id", ids[i], "files",
                                           json_object_get(it, "files"), "events",
                                           json_object_get(it, "events"), "timestamp", stamps[i]));
  }
  json_t *report =
      json_pack("{s{sssssss{}}s{ss}sOsos[s]}", "export", "id", "export-1", "case", "case-1",
                "payload_oxum", f->oxum, "selection", "case", "id", "case-1", "sth", sth, "items",
                items, "checks", "sha256sum -c manifest-sha256.txt");
  char *rj = json_dumps(report, JSON_INDENT(2) | JSON_SORT_KEYS);
  puts_(f, "REPORT.json", rj);
  free(rj);
  puts_(f, "REPORT.html", "<!doctype html><title>Export</title><p>The facts.</p>\n");
  json_decref(report);
  json_decref(sth);
  json_decref(ts1);
  json_decref(ts2);
  cu_buf_release(&body);
  cu_buf_release(&note);
  cu_buf_release(&vkey);
  seal_tags(f);
}

/* ---- running the verifier ----------------------------------------------- */

static json_t *run_with(fixture *f, const char *ledger_key, const char *tsa_ca) {
  bag_verify_opts o = {.bag = f->bag, .ledger_key = ledger_key, .tsa_ca_file = tsa_ca};
  json_t *r = NULL;
  int rc = bag_verify(&o, &r);
  if (rc) fail_msg("bag_verify could not run: %s", cu_errmsg());
  if (getenv("TEST_VERBOSE")) {
    char *s = json_dumps(json_object_get(r, "failures"), JSON_INDENT(1));
    fprintf(stderr, "%s\n", s);
    free(s);
  }
  return r;
}

static json_t *run(fixture *f) {
  return run_with(f, NULL, NULL);
}

/* The outside validator (tests/integration/bagit_validate.py, stdlib
 * Python written from RFC 8493 alone) must agree on RFC 8493 matters:
 * python3 is a test dependency, as for test_tsa. */
static void python_agrees(fixture *f, bool valid) {
  char *dir = cu_xstrdup(__FILE__);
  *strrchr(dir, '/') = '\0';
  char *cmd = cu_xasprintf("python3 '%s/../integration/bagit_validate.py' --all-tags '%s' 2>&1",
                           dir, f->bag);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char out[8192];
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  if (getenv("TEST_VERBOSE")) fprintf(stderr, "  bagit_validate.py: %s", out);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != (valid ? 0 : 1))
    fail_msg("bagit_validate.py says the bag is %s (exit %d), custos verify says it is %s:\n%s",
             WIFEXITED(st) && !WEXITSTATUS(st) ? "valid" : "not valid", WEXITSTATUS(st),
             valid ? "valid" : "not valid", out);
  free(cmd);
  free(dir);
}

static void dump(const json_t *r) {
  char *s = json_dumps(r, JSON_INDENT(2));
  fprintf(stderr, "%s\n", s);
  free(s);
}

/* The report has a failure of check whose message holds every needle
 * (NULL-terminated). */
static const json_t *has_failure(const json_t *r, const char *check, ...) {
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(r, "failures"), i, f) {
    if (strcmp(cu_json_str(f, "check"), check)) continue;
    const char *msg = cu_json_str(f, "message");
    bool all = true;
    va_list ap;
    va_start(ap, check);
    for (const char *n; (n = va_arg(ap, const char *));)
      all &= strstr(msg, n) != NULL;
    va_end(ap);
    if (all) return f;
  }
  dump(r);
  fail_msg("no '%s' failure with the expected message", check);
  return NULL;
}

static int64_t failures(const json_t *r) {
  return cu_json_int(r, "failure_count", -1);
}

static int64_t failures_of(const json_t *r, const char *check) {
  return cu_json_int(json_object_get(json_object_get(r, "checks"), check), "failures", -1);
}

static void assert_only(const json_t *r, const char *check, int64_t n) {
  if (failures(r) != n || failures_of(r, check) != n) {
    dump(r);
    fail_msg("expected exactly %lld failure(s), all of check '%s'", (long long)n, check);
  }
}

/* ---- fixtures ----------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  tsa_dir = test_tmpdir("bagv-tsa");
  if (!tsa_dir) return -1;
  char *keys = cu_path_join(tsa_dir, "keys");
  int rc = tsa_open_builtin(&the_tsa, keys);
  free(keys);
  if (rc) return -1;
  return tsa_ca_pem(the_tsa, &tsa_root);
}

static int group_teardown(void **state) {
  (void)state;
  tsa_free(the_tsa);
  cu_buf_release(&tsa_root);
  int rc = test_rmtree(tsa_dir);
  free(tsa_dir);
  return rc;
}

static int setup_with(void **state, const spec *s) {
  fixture *f = cu_xcalloc(1, sizeof *f);
  f->root = test_tmpdir("bagv");
  if (!f->root) return -1;
  f->bag = cu_path_join(f->root, "custos-case-1-export-1");
  *state = f;
  build(f, s);
  return 0;
}

static int setup(void **state) {
  spec s = {0};
  return setup_with(state, &s);
}

static int setup_foreign_source(void **state) {
  spec s = {.clip_source_foreign = true};
  return setup_with(state, &s);
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = test_rmtree(f->root);
  for (int i = 0; i < f->nev; i++)
    free(f->ev[i]);
  json_decref(f->items);
  free(f->bag);
  free(f->root);
  free(f);
  return rc;
}

static char *rel_of(fixture *f, const char *id, const char *rest) {
  return cu_xasprintf("data/%s/%s", id, rest);
}

/* ---- the good bag ------------------------------------------------------- */

static void test_bag_verify__a_good_bag_passes(void **state) {
  fixture *f = *state;
  json_t *r = run(f);
  if (failures(r) != 0) dump(r);
  assert_true(json_is_true(json_object_get(r, "ok")));
  assert_int_equal(cu_json_int(r, "warning_count", -1), 0);
  const json_t *k = json_object_get(r, "checked");
  assert_int_equal(cu_json_int(k, "files", 0), 4);
  assert_int_equal(cu_json_int(k, "items", 0), 2);
  assert_int_equal(cu_json_int(k, "events", 0), 7);
  assert_int_equal(cu_json_int(k, "proofs", 0), 7);
  assert_int_equal(cu_json_int(k, "tokens", 0), 3);
  assert_int_equal(cu_json_int(k, "manifests", 0), 3);
  assert_int_equal(cu_json_int(k, "tree_size", 0), 10);
  assert_string_equal(cu_json_str(k, "origin"), ORIGIN);
  json_decref(r);
  python_agrees(f, true);
  /* TEST_KEEP_BAG=DIR keeps a copy of the good bag there, to look at. */
  const char *keep = getenv("TEST_KEEP_BAG");
  if (keep) {
    char *cmd = cu_xasprintf("rm -rf '%s' && cp -a '%s' '%s'", keep, f->bag, keep);
    assert_int_equal(system(cmd), 0);
    free(cmd);
  }
}

static void test_bag_verify__the_right_ledger_key_from_outside_passes(void **state) {
  fixture *f = *state;
  char *key = cu_path_join(f->root, "pinned.vkey");
  cu_buf v = CU_BUF_INIT(4096);
  get(f, "custody/ledger-key.txt", &v);
  assert_int_equal(cu_write_file_durable(key, v.data, v.len, 0644, 0), 0);
  json_t *r = run_with(f, key, NULL);
  assert_int_equal(failures(r), 0);
  json_decref(r);
  cu_buf_release(&v);
  free(key);
}

static void test_bag_verify__crlf_manifests_and_upper_case_hex_are_legal(void **state) {
  fixture *f = *state;
  cu_buf b = CU_BUF_INIT(1 << 20), o = CU_BUF_INIT(1 << 20);
  get(f, "manifest-sha256.txt", &b);
  for (size_t i = 0; i < b.len; i++) {
    char c = b.data[i];
    if (c == '\n')
      cu_buf_adds(&o, "\r\n");
    else
      cu_buf_add(&o, &c, 1);
  }
  put(f, "manifest-sha256.txt", o.data, o.len);
  get(f, "manifest-sha512.txt", &b);
  for (size_t i = 0; i < 128; i++)
    if (b.data[i] >= 'a' && b.data[i] <= 'f') b.data[i] = (char)(b.data[i] - 32);
  put(f, "manifest-sha512.txt", b.data, b.len);
  seal_tags(f);
  json_t *r = run(f);
  assert_int_equal(failures(r), 0);
  json_decref(r);
  python_agrees(f, true);
  cu_buf_release(&b);
  cu_buf_release(&o);
}

/* ---- 1. RFC 8493 -------------------------------------------------------- */

static void test_bag_verify__a_flipped_payload_byte_names_the_file_and_both_hashes(void **state) {
  fixture *f = *state;
  char *p = rel_of(f, f->id1, "access/first.mp4");
  char before[129], after[129];
  file_hex(f, p, EVP_sha256(), before);
  flip_byte(f, p, 5);
  file_hex(f, p, EVP_sha256(), after);
  json_t *r = run(f);
  has_failure(r, "bagit", p, "manifest-sha256.txt line 1", before, after, NULL);
  has_failure(r, "bagit", p, "manifest-sha512.txt line 1", NULL);
  assert_only(r, "bagit", 2); /* the custody and report checks take the manifest's word */
  json_decref(r);
  python_agrees(f, false);
  free(p);
}

static void test_bag_verify__an_added_payload_file_is_unlisted_and_breaks_the_oxum(void **state) {
  fixture *f = *state;
  char *p = rel_of(f, f->id2, "original/stray.bin");
  puts_(f, p, "x");
  json_t *r = run(f);
  has_failure(r, "bagit", p, "not listed in manifest-sha256.txt, manifest-sha512.txt", NULL);
  has_failure(r, "bagit", "Payload-Oxum says", NULL);
  assert_only(r, "bagit", 2);
  json_decref(r);
  python_agrees(f, false);
  free(p);
}

static void test_bag_verify__a_removed_payload_file_is_missing(void **state) {
  fixture *f = *state;
  char *p = rel_of(f, f->id2, "original/second.bin");
  remove_in(f, p);
  json_t *r = run(f);
  has_failure(r, "bagit", p, "is missing", "manifest-sha256.txt line 4",
              "manifest-sha512.txt line 4", NULL);
  has_failure(r, "bagit", "Payload-Oxum says", NULL);
  has_failure(r, "report", p, NULL);
  json_decref(r);
  free(p);
}

static void test_bag_verify__a_renamed_payload_file_is_missing_and_unlisted(void **state) {
  fixture *f = *state;
  char *from = rel_of(f, f->id1, "original/first.bin"),
       *to = rel_of(f, f->id1, "original/renamed.bin");
  char *a = bag_path(f, from), *b = bag_path(f, to);
  assert_int_equal(rename(a, b), 0);
  json_t *r = run(f);
  has_failure(r, "bagit", from, "is missing", NULL);
  has_failure(r, "bagit", to, "not listed", NULL);
  json_decref(r);
  free(from);
  free(to);
  free(a);
  free(b);
}

static void test_bag_verify__a_changed_manifest_line_is_caught(void **state) {
  fixture *f = *state;
  char *p = rel_of(f, f->id1, "original/first.bin");
  char real[129];
  file_hex(f, p, EVP_sha256(), real);
  char fake[129];
  memcpy(fake, real, sizeof fake);
  fake[0] = fake[0] == '0' ? '1' : '0';
  replace_in(f, "manifest-sha256.txt", real, fake);
  json_t *r = run(f);
  has_failure(r, "bagit", p, "manifest-sha256.txt line", fake, real, NULL);
  has_failure(r, "bagit", "manifest-sha256.txt: tagmanifest-sha256.txt line", NULL);
  json_decref(r);
  /* The same with the tag manifest re-sealed: the payload check alone. */
  seal_tags(f);
  r = run(f);
  has_failure(r, "bagit", p, fake, real, NULL);
  assert_only(r, "bagit", 1); /* the file agrees with manifest-sha512.txt: nothing else blames it */
  json_decref(r);
  free(p);
}

static void drop_line(fixture *f, const char *rel, const char *needle) {
  cu_buf b = CU_BUF_INIT(1 << 20), o = CU_BUF_INIT(1 << 20);
  get(f, rel, &b);
  for (char *s = b.data; *s;) {
    char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s + 1) : strlen(s);
    if (!memmem(s, n, needle, strlen(needle))) cu_buf_add(&o, s, n);
    s += n;
  }
  put(f, rel, o.data ? o.data : "", o.len);
  cu_buf_release(&b);
  cu_buf_release(&o);
}

static void test_bag_verify__a_removed_manifest_line_leaves_the_file_unlisted(void **state) {
  fixture *f = *state;
  char *p = rel_of(f, f->id2, "original/second.bin");
  drop_line(f, "manifest-sha512.txt", p);
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "bagit", p, "not listed in manifest-sha512.txt", NULL);
  assert_only(r, "bagit", 1);
  json_decref(r);
  free(p);
}

static void test_bag_verify__a_duplicated_manifest_line_is_named(void **state) {
  fixture *f = *state;
  cu_buf b = CU_BUF_INIT(1 << 20);
  get(f, "manifest-sha256.txt", &b);
  char *nl = strchr(b.data, '\n');
  cu_buf_add(&b, b.data, (size_t)(nl - b.data + 1));
  put(f, "manifest-sha256.txt", b.data, b.len);
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "bagit", "manifest-sha256.txt line 5 lists", "again (first on line 1)", NULL);
  assert_only(r, "bagit", 1);
  json_decref(r);
  python_agrees(f, false);
  cu_buf_release(&b);
}

static void test_bag_verify__unsafe_paths_in_manifests_are_refused(void **state) {
  fixture *f = *state;
  char h[65];
  sha256_of("x", h);
  char *add =
      cu_xasprintf("%s  data/../bagit.txt\n%s  /etc/passwd\n%s  data\\evil.bin\n%s  data//a\n"
                   "%s  bag-info.txt\n%s  data/100%%.bin\n%s\n",
                   h, h, h, h, h, h, h);
  cu_buf b = CU_BUF_INIT(1 << 20);
  get(f, "manifest-sha256.txt", &b);
  cu_buf_adds(&b, add);
  put(f, "manifest-sha256.txt", b.data, b.len);
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "bagit", "line 5", "data/../bagit.txt", "'..' component", NULL);
  has_failure(r, "bagit", "line 6", "is absolute", NULL);
  has_failure(r, "bagit", "line 7", "backslash", NULL);
  has_failure(r, "bagit", "line 8", "empty component", NULL);
  has_failure(r, "bagit", "line 9", "outside data/", NULL);
  has_failure(r, "bagit", "line 10", "not %0A, %0D or %25", NULL);
  has_failure(r, "bagit", "line 11", "checksum but no path", NULL);
  assert_only(r, "bagit", 7);
  json_decref(r);
  python_agrees(f, false);
  free(add);
  cu_buf_release(&b);
}

static void test_bag_verify__payload_files_in_the_tag_manifest_are_refused(void **state) {
  fixture *f = *state;
  char *p = rel_of(f, f->id1, "original/first.bin");
  char h[65], *line;
  file_hex(f, p, EVP_sha256(), h);
  line = cu_xasprintf("%s  %s\n", h, p);
  cu_buf b = CU_BUF_INIT(1 << 20);
  get(f, "tagmanifest-sha256.txt", &b);
  cu_buf_adds(&b, line);
  put(f, "tagmanifest-sha256.txt", b.data, b.len);
  json_t *r = run(f);
  has_failure(r, "bagit", "tagmanifest-sha256.txt line", "lists the payload file", p, NULL);
  assert_only(r, "bagit", 1);
  json_decref(r);
  free(line);
  free(p);
  cu_buf_release(&b);
}

static void test_bag_verify__a_changed_bagit_txt_is_named(void **state) {
  fixture *f = *state;
  puts_(f, "bagit.txt", "BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n");
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "bagit",
              "bagit.txt line 1 is 'BagIt-Version: 0.97', expected 'BagIt-Version: 1.0'", NULL);
  assert_only(r, "bagit", 1);
  json_decref(r);

  puts_(f, "bagit.txt",
        "\xef\xbb\xbf"
        "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n");
  seal_tags(f);
  r = run(f);
  has_failure(r, "bagit", "byte order mark", NULL);
  assert_only(r, "bagit", 1);
  json_decref(r);

  remove_in(f, "bagit.txt");
  seal_tags(f);
  r = run(f);
  has_failure(r, "bagit", "bagit.txt is missing", NULL);
  json_decref(r);
}

static void test_bag_verify__a_wrong_payload_oxum_says_both_numbers(void **state) {
  fixture *f = *state;
  char *real = cu_xstrdup(f->oxum);
  write_bag_info(f, "1.4");
  seal_tags(f);
  json_t *r = run(f);
  char *want = cu_xasprintf("the payload is %s", real);
  has_failure(r, "bagit", "Payload-Oxum says 1.4", want, NULL);
  has_failure(r, "report", "payload_oxum", NULL); /* REPORT.json no longer agrees */
  assert_int_equal(failures(r), 2);
  json_decref(r);
  python_agrees(f, false);
  free(want);
  free(real);
}

static void test_bag_verify__a_changed_tag_file_is_caught_by_the_tag_manifest(void **state) {
  fixture *f = *state;
  replace_in(f, "REPORT.html", "The facts", "Other facts");
  json_t *r = run(f);
  has_failure(r, "bagit", "REPORT.html: tagmanifest-sha256.txt line", NULL);
  assert_only(r, "bagit", 1);
  json_decref(r);
  python_agrees(f, false);
}

static void test_bag_verify__an_unlisted_tag_file_is_named(void **state) {
  fixture *f = *state;
  puts_(f, "notes.txt", "added later\n");
  json_t *r = run(f);
  has_failure(r, "bagit", "notes.txt is in the bag but not listed in tagmanifest-sha256.txt", NULL);
  assert_only(r, "bagit", 1);
  json_decref(r);
  python_agrees(f, false);
}

static void test_bag_verify__a_symbolic_link_is_refused_not_followed(void **state) {
  fixture *f = *state;
  char *p = rel_of(f, f->id1, "original/link.bin");
  char *abs = bag_path(f, p);
  assert_int_equal(symlink("/etc/passwd", abs), 0);
  json_t *r = run(f);
  has_failure(r, "bagit", p, "symbolic link", NULL);
  json_decref(r);
  free(abs);
  free(p);
}

/* ---- 2. the head -------------------------------------------------------- */

static void test_bag_verify__a_damaged_checkpoint_signature_fails_the_head(void **state) {
  fixture *f = *state;
  cu_buf b = CU_BUF_INIT(4096);
  get(f, "custody/checkpoint.txt", &b);
  char *sig = strstr(b.data, "\n\n") + 2;
  char *last = sig + strlen(sig) - 5; /* inside the base64 signature */
  *last = *last == 'A' ? 'B' : 'A';
  put(f, "custody/checkpoint.txt", b.data, b.len);
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "sth", "custody/checkpoint.txt does not verify under custody/ledger-key.txt",
              NULL);
  has_failure(r, "sth", "custody/sth.json: its checkpoint field differs", NULL);
  has_failure(r, "timestamps", "custody/checkpoint.tsr",
              NULL); /* its token is over the old bytes */
  json_decref(r);
  cu_buf_release(&b);
}

static void test_bag_verify__an_sth_json_root_that_disagrees_is_named(void **state) {
  fixture *f = *state;
  cu_buf b = CU_BUF_INIT(1 << 20);
  get(f, "custody/sth.json", &b);
  json_t *sth = NULL;
  assert_int_equal(cu_json_parse(b.data, b.len, &sth), 0);
  char root[65];
  snprintf(root, sizeof root, "%s", cu_json_str(sth, "root"));
  char fake[65];
  memcpy(fake, root, sizeof fake);
  fake[10] = fake[10] == 'a' ? 'b' : 'a';
  replace_in(f, "custody/sth.json", root, fake);
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "sth", "custody/sth.json says root", fake, root, NULL);
  assert_only(r, "sth", 1);
  json_decref(r);
  json_decref(sth);
  cu_buf_release(&b);
}

static void test_bag_verify__a_wrong_ledger_key_from_outside_names_both_keys(void **state) {
  fixture *f = *state;
  unsigned char seed[32], pub[32];
  assert_int_equal(note_keygen(seed, pub), 0);
  cu_buf other = CU_BUF_INIT(4096), own = CU_BUF_INIT(4096);
  assert_int_equal(note_vkey(ORIGIN, pub, &other), 0);
  char *key = cu_path_join(f->root, "other.vkey");
  assert_int_equal(cu_write_file_durable(key, other.data, other.len, 0644, 0), 0);
  get(f, "custody/ledger-key.txt", &own);
  own.data[strcspn(own.data, "\n")] = '\0';
  json_t *r = run_with(f, key, NULL);
  has_failure(r, "sth", own.data, other.data, key, NULL);
  has_failure(r, "sth", "custody/checkpoint.txt does not verify under", key, NULL);
  assert_only(r, "sth", 2);
  json_decref(r);
  /* A key file that is not a key: the check cannot run. */
  assert_int_equal(cu_write_file_durable(key, "nonsense\n", 9, 0644, 0), 0);
  bag_verify_opts o = {.bag = f->bag, .ledger_key = key};
  r = NULL;
  assert_int_not_equal(bag_verify(&o, &r), 0);
  assert_null(r);
  free(key);
  cu_buf_release(&other);
  cu_buf_release(&own);
}

static void
test_bag_verify__a_broken_bag_key_is_named_and_the_trusted_key_still_vouches(void **state) {
  fixture *f = *state;
  char *key = cu_path_join(f->root, "pinned.vkey");
  cu_buf v = CU_BUF_INIT(4096);
  get(f, "custody/ledger-key.txt", &v);
  assert_int_equal(cu_write_file_durable(key, v.data, v.len, 0644, 0), 0);
  puts_(f, "custody/ledger-key.txt", "not a key\n");
  seal_tags(f);
  json_t *r = run_with(f, key, NULL);
  has_failure(r, "sth", "custody/ledger-key.txt:", NULL);
  assert_only(r, "sth", 1);
  assert_int_equal(cu_json_int(json_object_get(r, "checked"), "proofs", 0), 7);
  json_decref(r);
  free(key);
  cu_buf_release(&v);
}

static void test_bag_verify__a_pem_key_that_differs_is_named(void **state) {
  fixture *f = *state;
  unsigned char seed[32], pub[32];
  assert_int_equal(note_keygen(seed, pub), 0);
  EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
  char *pem;
  long pn = BIO_get_mem_data(bio, &pem);
  put(f, "custody/ledger-key.pem", pem, (size_t)pn);
  BIO_free(bio);
  EVP_PKEY_free(k);
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "sth", "custody/ledger-key.pem holds another key", NULL);
  assert_only(r, "sth", 1);
  json_decref(r);
}

/* ---- 3. proofs ---------------------------------------------------------- */

/* Rewrites line `no` (from 1) of an item's events.jsonl with edit(). */
static void edit_event_line(fixture *f, const char *id, int no, void (*edit)(json_t *line)) {
  char rel[128];
  snprintf(rel, sizeof rel, "custody/%s/events.jsonl", id);
  cu_buf b = CU_BUF_INIT(1 << 20), o = CU_BUF_INIT(1 << 20);
  get(f, rel, &b);
  int n = 0;
  for (char *s = b.data; *s;) {
    char *nl = strchr(s, '\n');
    size_t len = (size_t)(nl - s);
    if (++n == no) {
      json_t *line = NULL;
      assert_int_equal(cu_json_parse(s, len, &line), 0);
      edit(line);
      size_t cn;
      char *c = cu_json_canon(line, &cn);
      cu_buf_add(&o, c, cn);
      cu_buf_adds(&o, "\n");
      free(c);
      json_decref(line);
    } else {
      cu_buf_add(&o, s, len + 1);
    }
    s = nl + 1;
  }
  put(f, rel, o.data, o.len);
  cu_buf_release(&b);
  cu_buf_release(&o);
}

/* The event's "rendition" field says "access" instead of "original". */
static void edit_data(json_t *line) {
  const char *d = cu_json_str(line, "data");
  cu_buf raw = CU_BUF_INIT(1 << 20), enc = CU_BUF_INIT(1 << 20);
  assert_int_equal(cu_b64_decode(d, strlen(d), &raw), 0);
  char *at = strstr(raw.data, "\"original\"");
  assert_non_null(at);
  memcpy(at, "\"ORIGINAL\"", 10);
  assert_int_equal(cu_b64_encode(raw.data, raw.len, &enc), 0);
  cu_json_set_str(line, "data", enc.data);
  cu_buf_release(&raw);
  cu_buf_release(&enc);
}

static void edit_path(json_t *line) {
  json_t *ap = json_object_get(line, "audit_path");
  char h[65];
  snprintf(h, sizeof h, "%s", json_string_value(json_array_get(ap, 1)));
  h[0] = h[0] == 'f' ? '0' : 'f';
  json_array_set_new(ap, 1, json_string(h));
}

static void test_bag_verify__a_changed_event_fails_its_proof_at_its_index(void **state) {
  fixture *f = *state;
  edit_event_line(f, f->id1, 4, edit_data); /* the "accessed" event at ledger index 5 */
  char rel[128];
  snprintf(rel, sizeof rel, "custody/%s/events.jsonl", f->id1);
  json_t *r = run(f);
  const json_t *x =
      has_failure(r, "proofs", rel, "line 4 (ledger index 5)", "do not lead to the root", NULL);
  assert_int_equal(cu_json_int(x, "index", -1), 5);
  has_failure(r, "bagit", rel, "tagmanifest-sha256.txt", NULL);
  json_decref(r);
  seal_tags(f); /* covered up: the proof alone still names it */
  r = run(f);
  has_failure(r, "proofs", "ledger index 5", NULL);
  has_failure(r, "report", "ledger index 5", NULL); /* REPORT.json still has the true event */
  assert_int_equal(failures(r), 2);
  json_decref(r);
  python_agrees(f, true); /* a valid bag to RFC 8493: only the ledger's proofs tell */
}

static void test_bag_verify__a_changed_ingested_event_leaves_the_original_unrecorded(void **state) {
  fixture *f = *state;
  edit_event_line(f, f->id2, 1, edit_path); /* its proof, this time */
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "proofs", "line 1 (ledger index 2)", NULL);
  char *p = rel_of(f, f->id2, "original/second.bin");
  has_failure(r, "custody", p, "ingested event at ledger index 2, which is not proved", NULL);
  assert_int_equal(failures(r), 2);
  json_decref(r);
  free(p);
}

static void test_bag_verify__a_changed_audit_path_hash_names_the_index(void **state) {
  fixture *f = *state;
  edit_event_line(f, f->id1, 3, edit_path); /* the access copy's rendition event, index 4 */
  seal_tags(f);
  json_t *r = run(f);
  const json_t *x = has_failure(r, "proofs", "ledger index 4", NULL);
  assert_int_equal(cu_json_int(x, "index", -1), 4);
  char *p = rel_of(f, f->id1, "access/first.mp4");
  has_failure(r, "custody", p, "rendition event of kind access at ledger index 4", NULL);
  json_decref(r);
  free(p);
}

static void test_bag_verify__events_out_of_order_or_unparseable_are_named(void **state) {
  fixture *f = *state;
  char rel[128];
  snprintf(rel, sizeof rel, "custody/%s/events.jsonl", f->id2);
  cu_buf b = CU_BUF_INIT(1 << 20);
  get(f, rel, &b);
  cu_buf_adds(&b, "{\"index\": 3, \"data\": \"e30=\", \"audit_path\": []}\nnot json\n");
  put(f, rel, b.data, b.len);
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "proofs", "line 3: ledger index 3 does not come after", NULL);
  has_failure(r, "proofs", "line 4 is not a JSON object", NULL);
  json_decref(r);
  cu_buf_release(&b);
}

/* ---- 4. custody --------------------------------------------------------- */

static void test_bag_verify__a_derived_copy_whose_source_is_not_in_the_bag_is_named(void **state) {
  fixture *f = *state;
  json_t *r = run(f);
  char *p = rel_of(f, f->id1, "clips/clip-copy-0-1000.mp4");
  char foreign[65];
  sha256_of("an original that is not in the bag", foreign);
  const json_t *x = has_failure(r, "custody", p, "source_sha256", foreign,
                                "not the SHA-256 of an original", NULL);
  assert_int_equal(cu_json_int(x, "index", -1), 7);
  assert_only(r, "custody", 1);
  json_decref(r);
  free(p);
}

static void test_bag_verify__a_payload_file_no_event_records_is_named(void **state) {
  fixture *f = *state;
  /* A consistent bag around a poster nobody recorded. */
  char *p = rel_of(f, f->id2, "poster/second.jpg");
  puts_(f, p, "a poster");
  seal(f);
  json_t *r = run(f);
  has_failure(r, "custody", p, "no rendition event of kind poster", NULL);
  assert_int_equal(failures_of(r, "bagit"), 0);
  json_decref(r);
  free(p);
}

static void test_bag_verify__an_item_without_its_events_is_named_once(void **state) {
  fixture *f = *state;
  char rel[128];
  snprintf(rel, sizeof rel, "custody/%s/events.jsonl", f->id1);
  remove_in(f, rel);
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "custody", rel, "is missing: nothing records the files of evidence", f->id1, NULL);
  assert_int_equal(failures_of(r, "custody"), 1);
  has_failure(r, "report", "which no events.jsonl in the bag holds", NULL);
  json_decref(r);
}

static void test_bag_verify__a_payload_file_outside_the_layout_is_named(void **state) {
  fixture *f = *state;
  char *p = rel_of(f, f->id1, "notes/why.txt");
  puts_(f, p, "no layout puts me here");
  puts_(f, "data/loose.bin", "nor here");
  seal(f);
  json_t *r = run(f);
  has_failure(r, "custody", p, "is not where docs/EXPORT.md puts", NULL);
  has_failure(r, "custody", "data/loose.bin is not in an item's directory", NULL);
  assert_int_equal(failures_of(r, "custody"), 2);
  assert_int_equal(failures_of(r, "bagit"), 0);
  json_decref(r);
  free(p);
}

static void test_bag_verify__a_malformed_bag_info_is_named(void **state) {
  fixture *f = *state;
  cu_buf b = CU_BUF_INIT(1 << 20);
  get(f, "bag-info.txt", &b);
  char *more = cu_xasprintf("%sPayload-Oxum: %s\nno colon here\n", b.data, f->oxum);
  puts_(f, "bag-info.txt", more);
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "bagit", "bag-info.txt has 2 Payload-Oxum elements", NULL);
  has_failure(r, "bagit", "bag-info.txt line 13 is not 'Label: value'", NULL);
  json_decref(r);
  free(more);
  cu_buf_release(&b);
}

/* ---- 5. tokens ---------------------------------------------------------- */

static void test_bag_verify__a_changed_token_byte_names_the_token(void **state) {
  fixture *f = *state;
  char rel[128];
  snprintf(rel, sizeof rel, "custody/%s/original.tsr", f->id1);
  cu_buf b = CU_BUF_INIT(1 << 20);
  get(f, rel, &b);
  flip_byte(f, rel, b.len - 20); /* inside the signature */
  seal_tags(f);
  json_t *r = run(f);
  has_failure(r, "timestamps", rel, f->id1, NULL);
  assert_only(r, "timestamps", 1);
  json_decref(r);
  cu_buf_release(&b);
}

static void test_bag_verify__tokens_must_chain_to_the_roots_given(void **state) {
  fixture *f = *state;
  /* Another built-in TSA's root: no token of the bag chains to it. */
  char *keys = cu_path_join(f->root, "other-tsa");
  tsa *t = NULL;
  assert_int_equal(tsa_open_builtin(&t, keys), 0);
  cu_buf pem = CU_BUF_INIT(1 << 20);
  assert_int_equal(tsa_ca_pem(t, &pem), 0);
  char *ca = cu_path_join(f->root, "other-root.pem");
  assert_int_equal(cu_write_file_durable(ca, pem.data, pem.len, 0644, 0), 0);
  json_t *r = run_with(f, NULL, ca);
  assert_only(r, "timestamps", 3);
  has_failure(r, "timestamps", "custody/checkpoint.tsr", NULL);
  json_decref(r);
  tsa_free(t);
  cu_buf_release(&pem);
  free(keys);
  free(ca);
}

static void test_bag_verify__a_missing_token_is_a_warning_when_unlisted(void **state) {
  fixture *f = *state;
  char rel[128];
  snprintf(rel, sizeof rel, "custody/%s/original.tsr", f->id2);
  remove_in(f, rel);
  seal_tags(f);
  json_t *r = run(f);
  assert_int_equal(failures(r), 0);
  assert_int_equal(cu_json_int(r, "warning_count", -1), 1);
  json_decref(r);
  /* Listed in the tag manifest but gone: a failure. */
  char rel2[128];
  snprintf(rel2, sizeof rel2, "custody/%s/original.tsr", f->id1);
  remove_in(f, rel2);
  r = run(f);
  has_failure(r, "bagit", rel2, "is missing", NULL);
  json_decref(r);
}

/* ---- 6. REPORT.json ----------------------------------------------------- */

static void test_bag_verify__a_report_that_disagrees_with_the_manifests_is_named(void **state) {
  fixture *f = *state;
  char *p = rel_of(f, f->id2, "original/second.bin");
  char real[129]; /* SHA-512: in REPORT.json only among its files */
  file_hex(f, p, EVP_sha512(), real);
  char fake[129];
  memcpy(fake, real, sizeof fake);
  fake[127] = fake[127] == '0' ? '1' : '0';
  replace_in(f, "REPORT.json", real, fake);
  json_t *r = run(f);
  has_failure(r, "bagit", "REPORT.json: tagmanifest-sha256.txt", NULL);
  json_decref(r);
  seal_tags(f);
  r = run(f);
  has_failure(r, "report", p, fake, real, NULL);
  assert_only(r, "report", 1);
  json_decref(r);
  free(p);
}

/* ---- could not run ------------------------------------------------------ */

static void test_bag_verify__no_such_bag_cannot_run(void **state) {
  fixture *f = *state;
  char *p = cu_path_join(f->root, "nothing-here");
  bag_verify_opts o = {.bag = p};
  json_t *r = NULL;
  assert_int_equal(bag_verify(&o, &r), CU_ENOTFOUND);
  assert_null(r);
  o.bag = f->bag;
  o.tsa_ca_file = p;
  assert_int_not_equal(bag_verify(&o, &r), 0);
  assert_null(r);
  free(p);
}

#define T(name) cmocka_unit_test_setup_teardown(test_bag_verify__##name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(a_good_bag_passes),
      T(the_right_ledger_key_from_outside_passes),
      T(crlf_manifests_and_upper_case_hex_are_legal),
      T(a_flipped_payload_byte_names_the_file_and_both_hashes),
      T(an_added_payload_file_is_unlisted_and_breaks_the_oxum),
      T(a_removed_payload_file_is_missing),
      T(a_renamed_payload_file_is_missing_and_unlisted),
      T(a_changed_manifest_line_is_caught),
      T(a_removed_manifest_line_leaves_the_file_unlisted),
      T(a_duplicated_manifest_line_is_named),
      T(unsafe_paths_in_manifests_are_refused),
      T(payload_files_in_the_tag_manifest_are_refused),
      T(a_changed_bagit_txt_is_named),
      T(a_wrong_payload_oxum_says_both_numbers),
      T(a_changed_tag_file_is_caught_by_the_tag_manifest),
      T(an_unlisted_tag_file_is_named),
      T(a_symbolic_link_is_refused_not_followed),
      T(a_damaged_checkpoint_signature_fails_the_head),
      T(an_sth_json_root_that_disagrees_is_named),
      T(a_wrong_ledger_key_from_outside_names_both_keys),
      T(a_broken_bag_key_is_named_and_the_trusted_key_still_vouches),
      T(a_pem_key_that_differs_is_named),
      T(a_changed_event_fails_its_proof_at_its_index),
      T(a_changed_ingested_event_leaves_the_original_unrecorded),
      T(a_changed_audit_path_hash_names_the_index),
      T(events_out_of_order_or_unparseable_are_named),
      cmocka_unit_test_setup_teardown(
          test_bag_verify__a_derived_copy_whose_source_is_not_in_the_bag_is_named,
          setup_foreign_source, teardown),
      T(a_payload_file_no_event_records_is_named),
      T(an_item_without_its_events_is_named_once),
      T(a_payload_file_outside_the_layout_is_named),
      T(a_malformed_bag_info_is_named),
      T(a_changed_token_byte_names_the_token),
      T(tokens_must_chain_to_the_roots_given),
      T(a_missing_token_is_a_warning_when_unlisted),
      T(a_report_that_disagrees_with_the_manifests_is_named),
      T(no_such_bag_cannot_run),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
