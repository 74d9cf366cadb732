/* Unit tests for archive/tsa: the built-in TSA, the client for an external
 * one (against `openssl ts -reply` behind a small Python HTTP server), and
 * offline verification, cross-checked with `openssl ts -verify`. python3
 * and the openssl binary are test dependencies (scripts/deps.sh --test):
 * without them these tests fail rather than skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "timeu.h"
#include "tsa.h"
#include "test_util.h"

#define POLICY "2.25.163486473582394625390622719876512357801"

typedef struct {
  char *dir;
  pid_t server; /* the Python TSA, killed in teardown even if a test fails */
} fixture;

static int setup(void **state) {
  fixture *f = cu_xcalloc(1, sizeof *f);
  f->dir = test_tmpdir("tsa");
  assert_non_null(f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->server > 0) {
    kill(f->server, SIGTERM);
    waitpid(f->server, NULL, 0);
  }
  int rc = test_rmtree(f->dir);
  free(f->dir);
  free(f);
  return rc;
}

static char *path_in(fixture *f, const char *name) {
  return cu_path_join(f->dir, name);
}

static void write_text(fixture *f, const char *name, const void *data, size_t n) {
  char *p = path_in(f, name);
  assert_int_equal(cu_write_file_durable(p, data, n, 0644, 0), 0);
  free(p);
}

static void read_file(const char *path, cu_buf *out) {
  cu_buf_reset(out);
  assert_int_equal(cu_read_small_file(path, 1 << 20, out), 0);
}

/* Runs a shell command in the fixture's directory; its output (both
 * streams) into out. Returns the exit status. */
static int run_in(fixture *f, cu_buf *out, const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char *full = cu_xasprintf("cd '%s' && { %s ; } 2>&1", f->dir, cmd);
  FILE *p = popen(full, "r");
  free(full);
  assert_non_null(p);
  cu_buf_reset(out);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
    cu_buf_add(out, chunk, n);
  if (!out->data) cu_buf_add(out, "", 0);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void must_run(fixture *f, const char *cmd) {
  cu_buf out = CU_BUF_INIT(1 << 20);
  int rc = run_in(f, &out, "%s", cmd);
  if (rc) fprintf(stderr, "command failed (%d): %s\n%s\n", rc, cmd, out.data);
  assert_int_equal(rc, 0);
  cu_buf_release(&out);
}

static void digest_of(const char *s, unsigned char d[32], char hex[65]) {
  cu_sha256_raw(s, strlen(s), d);
  if (hex) cu_hex_encode(d, 32, hex);
}

/* TEST_VERBOSE=1 shows the messages, to read them as an operator would. */
static void assert_msg_has(const char *needle) {
  if (getenv("TEST_VERBOSE")) fprintf(stderr, "  message: %s\n", cu_errmsg());
  if (!strstr(cu_errmsg(), needle))
    fail_msg("message \"%s\" does not mention \"%s\"", cu_errmsg(), needle);
}

static tsa *open_builtin(fixture *f, const char *name) {
  char *keys = path_in(f, name);
  tsa *t = NULL;
  int rc = tsa_open_builtin(&t, keys);
  if (rc) fail_msg("tsa_open_builtin: %s", cu_errmsg());
  free(keys);
  return t;
}

static void check_mode(fixture *f, const char *name, unsigned mode) {
  char *p = path_in(f, name);
  struct stat sb;
  assert_int_equal(stat(p, &sb), 0);
  if ((sb.st_mode & 0777) != mode)
    fail_msg("%s has mode %03o, want %03o", name, sb.st_mode & 0777, mode);
  free(p);
}

/* ---- the built-in TSA --------------------------------------------------- */

static void test_builtin__creates_keys_once(void **state) {
  fixture *f = *state;
  tsa *t = open_builtin(f, "keys");
  check_mode(f, "keys", 0700);
  check_mode(f, "keys/tsa-root.key", 0600);
  check_mode(f, "keys/tsa.key", 0600);
  check_mode(f, "keys/tsa-root.pem", 0644);
  check_mode(f, "keys/tsa.pem", 0644);

  cu_buf pem = CU_BUF_INIT(1 << 20), file = CU_BUF_INIT(1 << 20), out = CU_BUF_INIT(1 << 20);
  assert_int_equal(tsa_ca_pem(t, &pem), 0);
  char *root = path_in(f, "keys/tsa-root.pem");
  read_file(root, &file);
  assert_int_equal(pem.len, file.len);
  assert_memory_equal(pem.data, file.data, pem.len);
  char *key = path_in(f, "keys/tsa.key");
  read_file(key, &file);
  assert_non_null(strstr(file.data, "-----BEGIN PRIVATE KEY-----")); /* PKCS#8, unencrypted */
  tsa_free(t);

  /* What the certificates say, read by OpenSSL's own tools. */
  assert_int_equal(run_in(f, &out,
                          "openssl verify -CAfile keys/tsa-root.pem -purpose timestampsign "
                          "keys/tsa.pem"),
                   0);
  assert_non_null(strstr(out.data, "keys/tsa.pem: OK"));
  assert_int_equal(run_in(f, &out, "openssl x509 -in keys/tsa.pem -noout -text"), 0);
  assert_non_null(strstr(out.data, "Subject: CN = Custos built-in TSA"));
  assert_non_null(strstr(out.data, "X509v3 Extended Key Usage: critical"));
  assert_non_null(strstr(out.data, "Time Stamping"));
  assert_non_null(strstr(out.data, "ASN1 OID: prime256v1"));
  assert_int_equal(run_in(f, &out, "openssl x509 -in keys/tsa-root.pem -noout -text"), 0);
  assert_non_null(strstr(out.data, "CA:TRUE"));
  assert_non_null(strstr(out.data, "Certificate Sign, CRL Sign"));

  /* Reopened: the same root, not a new one. */
  t = open_builtin(f, "keys");
  cu_buf again = CU_BUF_INIT(1 << 20);
  assert_int_equal(tsa_ca_pem(t, &again), 0);
  assert_int_equal(again.len, pem.len);
  assert_memory_equal(again.data, pem.data, pem.len);
  tsa_free(t);

  /* Without the root's certificate (a crash before it was written) the
   * whole set is made anew. */
  assert_int_equal(unlink(root), 0);
  t = open_builtin(f, "keys");
  assert_int_equal(tsa_ca_pem(t, &again), 0);
  assert_false(again.len == pem.len && !memcmp(again.data, pem.data, pem.len));
  tsa_free(t);

  /* With the root but without the signing key: refused, not patched up. */
  assert_int_equal(unlink(key), 0);
  char *keys = path_in(f, "keys");
  t = NULL;
  assert_int_not_equal(tsa_open_builtin(&t, keys), 0);
  assert_null(t);
  assert_msg_has("tsa.key");

  free(keys);
  free(root);
  free(key);
  cu_buf_release(&pem);
  cu_buf_release(&file);
  cu_buf_release(&out);
  cu_buf_release(&again);
}

static void test_builtin__stamps_and_verifies(void **state) {
  fixture *f = *state;
  tsa *t = open_builtin(f, "keys");
  cu_buf ca = CU_BUF_INIT(1 << 20), r1 = CU_BUF_INIT(1 << 20), r2 = CU_BUF_INIT(1 << 20);
  assert_int_equal(tsa_ca_pem(t, &ca), 0);
  unsigned char d[32];
  digest_of("evidence one", d, NULL);
  tsa_info i1, i2, v;
  int64_t before = cu_now_us();
  if (tsa_stamp(t, d, &r1, &i1)) fail_msg("tsa_stamp: %s", cu_errmsg());
  assert_int_equal(tsa_stamp(t, d, &r2, &i2), 0);
  int64_t after = cu_now_us();
  /* genTime has whole seconds: it may be up to 1 s before `before`. */
  assert_true(i1.gen_time_us >= before - 1000000 && i1.gen_time_us <= after);
  assert_int_equal(i1.gen_time_us % 1000000, 0);
  assert_string_equal(i1.policy, POLICY);
  assert_int_equal(strlen(i1.serial), 32); /* a UUIDv7's 128 bits */
  assert_int_equal(i1.serial[12], '7');    /* its version nibble */
  assert_string_not_equal(i1.serial, i2.serial);

  if (tsa_verify(r1.data, r1.len, d, ca.data, ca.len, &v)) fail_msg("tsa_verify: %s", cu_errmsg());
  assert_int_equal(v.gen_time_us, i1.gen_time_us);
  assert_string_equal(v.serial, i1.serial);
  assert_string_equal(v.policy, i1.policy);
  assert_int_equal(tsa_verify(r2.data, r2.len, d, ca.data, ca.len, NULL), 0);

  /* The bare token (ContentInfo) verifies as well as the whole response. */
  const unsigned char *p = (const unsigned char *)r1.data;
  TS_RESP *resp = d2i_TS_RESP(NULL, &p, (long)r1.len);
  assert_non_null(resp);
  unsigned char *tok = NULL;
  int toklen = i2d_PKCS7(TS_RESP_get_token(resp), &tok);
  assert_true(toklen > 0);
  assert_int_equal(tsa_verify(tok, (size_t)toklen, d, ca.data, ca.len, &v), 0);
  assert_string_equal(v.serial, i1.serial);
  OPENSSL_free(tok);
  TS_RESP_free(resp);

  tsa_free(t);
  cu_buf_release(&ca);
  cu_buf_release(&r1);
  cu_buf_release(&r2);
}

static void test_builtin__openssl_cli_agrees(void **state) {
  fixture *f = *state;
  tsa *t = open_builtin(f, "keys");
  cu_buf resp = CU_BUF_INIT(1 << 20), out = CU_BUF_INIT(1 << 20);
  unsigned char d[32];
  char hex[65];
  digest_of("checked by openssl", d, hex);
  tsa_info info;
  assert_int_equal(tsa_stamp(t, d, &resp, &info), 0);
  write_text(f, "token.tsr", resp.data, resp.len);
  int rc =
      run_in(f, &out, "openssl ts -verify -digest %s -in token.tsr -CAfile keys/tsa-root.pem", hex);
  if (rc || !strstr(out.data, "Verification: OK"))
    fail_msg("openssl ts -verify (%d): %s", rc, out.data);
  /* The CLI reads the facts we reported. */
  assert_int_equal(run_in(f, &out, "openssl ts -reply -in token.tsr -text"), 0);
  assert_non_null(strstr(out.data, "Policy OID: " POLICY));
  assert_non_null(strstr(out.data, "Accuracy: 0x01 seconds"));
  assert_non_null(strstr(out.data, "Nonce: 0x"));
  assert_non_null(strstr(out.data, "TSA: DirName:/CN=Custos built-in TSA"));
  char serial_line[100];
  /* The CLI prints the serial in upper case, with 0x. */
  snprintf(serial_line, sizeof serial_line, "Serial number: 0x%s", info.serial);
  for (char *c = serial_line + 17; *c; c++)
    *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
  if (!strstr(out.data, serial_line)) fail_msg("no \"%s\" in:\n%s", serial_line, out.data);
  /* A different digest fails there too. */
  digest_of("something else", d, hex);
  assert_int_not_equal(
      run_in(f, &out, "openssl ts -verify -digest %s -in token.tsr -CAfile keys/tsa-root.pem", hex),
      0);
  tsa_free(t);
  cu_buf_release(&resp);
  cu_buf_release(&out);
}

#define THREADS 4
#define STAMPS_PER_THREAD 5

typedef struct {
  tsa *t;
  const char *ca;
  size_t ca_len;
  int failures;
  char serials[STAMPS_PER_THREAD][80];
} worker;

static void *stamp_worker(void *arg) {
  worker *w = arg;
  cu_buf resp = CU_BUF_INIT(1 << 20);
  for (int i = 0; i < STAMPS_PER_THREAD; i++) {
    unsigned char d[32];
    char text[32];
    snprintf(text, sizeof text, "item %p %d", (void *)w, i);
    digest_of(text, d, NULL);
    tsa_info info;
    if (tsa_stamp(w->t, d, &resp, &info) ||
        tsa_verify(resp.data, resp.len, d, w->ca, w->ca_len, NULL)) {
      fprintf(stderr, "stamp in a thread: %s\n", cu_errmsg());
      w->failures++;
      continue;
    }
    memcpy(w->serials[i], info.serial, sizeof info.serial);
  }
  cu_buf_release(&resp);
  return NULL;
}

/* Job workers stamp at the same time: every token good, no serial twice. */
static void test_builtin__stamps_from_several_threads(void **state) {
  fixture *f = *state;
  tsa *t = open_builtin(f, "keys");
  cu_buf ca = CU_BUF_INIT(1 << 20);
  assert_int_equal(tsa_ca_pem(t, &ca), 0);
  worker w[THREADS] = {0};
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){.t = t, .ca = ca.data, .ca_len = ca.len};
    assert_int_equal(pthread_create(&th[i], NULL, stamp_worker, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < THREADS * STAMPS_PER_THREAD; i++) {
    const char *a = w[i / STAMPS_PER_THREAD].serials[i % STAMPS_PER_THREAD];
    assert_int_equal(w[i / STAMPS_PER_THREAD].failures, 0);
    assert_int_equal(strlen(a), 32);
    for (int j = 0; j < i; j++)
      assert_string_not_equal(a, w[j / STAMPS_PER_THREAD].serials[j % STAMPS_PER_THREAD]);
  }
  tsa_free(t);
  cu_buf_release(&ca);
}

/* Finds genTime ("YYYYMMDDhhmmssZ", tag 0x18) in DER. */
static size_t find_gentime(const cu_buf *b) {
  for (size_t i = 0; i + 17 <= b->len; i++)
    if ((unsigned char)b->data[i] == 0x18 && b->data[i + 1] == 15 && b->data[i + 16] == 'Z')
      return i + 2;
  fail_msg("no genTime in the response");
  return 0;
}

typedef struct {
  size_t from, to;
} span;

/* Where needle is in b (skipping its first skip bytes in the search). */
static span span_of(const cu_buf *b, unsigned char *der, int n, size_t skip) {
  assert_true(n > (int)skip);
  const char *p = memmem(b->data, b->len, der + skip, (size_t)n - skip);
  assert_non_null(p);
  OPENSSL_free(der);
  size_t at = (size_t)(p - b->data) - skip;
  return (span){at, at + (size_t)n};
}

/* Where the status, the TSTInfo, the signed attributes, the signature and
 * the TSA certificate are in a response of the built-in TSA in f's "keys":
 * what the signature covers or names. The rest (the SignedData and
 * SignerInfo versions, the digest algorithm's parameters, the copy of the
 * root sent along) changes nothing that a verifier relies on. */
static void protected_spans(fixture *f, const cu_buf *resp, span out[5]) {
  const unsigned char *p = (const unsigned char *)resp->data;
  TS_RESP *r = d2i_TS_RESP(NULL, &p, (long)resp->len);
  assert_non_null(r);
  out[0] = (span){0, 13}; /* TimeStampResp and ContentInfo headers, status */
  unsigned char *der = NULL;
  int n = i2d_TS_TST_INFO(TS_RESP_get_tst_info(r), &der);
  out[1] = span_of(resp, der, n, 0);
  PKCS7_SIGNER_INFO *si =
      sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(TS_RESP_get_token(r)), 0);
  /* The attributes are a SET when signed and [0] IMPLICIT in place: the
   * tag byte differs. */
  der = NULL;
  n = ASN1_item_i2d((ASN1_VALUE *)PKCS7_get_signed_attributes(si), &der,
                    ASN1_ITEM_rptr(PKCS7_ATTR_SIGN));
  out[2] = span_of(resp, der, n, 1);
  const ASN1_OCTET_STRING *sig = si->enc_digest;
  const char *sp =
      memmem(resp->data, resp->len, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig));
  assert_non_null(sp);
  out[3] = (span){(size_t)(sp - resp->data),
                  (size_t)(sp - resp->data) + (size_t)ASN1_STRING_length(sig)};
  char *path = path_in(f, "keys/tsa.pem");
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  X509 *cert = PEM_read_X509(fp, NULL, NULL, NULL);
  fclose(fp);
  assert_non_null(cert);
  der = NULL;
  n = i2d_X509(cert, &der);
  out[4] = span_of(resp, der, n, 0);
  X509_free(cert);
  free(path);
  TS_RESP_free(r);
}

static void test_verify__refuses_what_does_not_match(void **state) {
  fixture *f = *state;
  tsa *t = open_builtin(f, "keys"), *other = open_builtin(f, "other");
  cu_buf ca = CU_BUF_INIT(1 << 20), ca2 = CU_BUF_INIT(1 << 20), resp = CU_BUF_INIT(1 << 20);
  assert_int_equal(tsa_ca_pem(t, &ca), 0);
  assert_int_equal(tsa_ca_pem(other, &ca2), 0);
  unsigned char d[32], d2[32];
  digest_of("the real one", d, NULL);
  digest_of("another", d2, NULL);
  tsa_info info;
  assert_int_equal(tsa_stamp(t, d, &resp, &info), 0);
  assert_int_equal(tsa_verify(resp.data, resp.len, d, ca.data, ca.len, &info), 0);

  assert_int_equal(tsa_verify(resp.data, resp.len, d2, ca.data, ca.len, &info), CU_ECORRUPT);
  assert_msg_has("different digest");

  /* Another TSA's root does not vouch for this token. */
  assert_int_equal(tsa_verify(resp.data, resp.len, d, ca2.data, ca2.len, &info), CU_ECORRUPT);
  assert_msg_has("does not verify");
  assert_msg_has("certificate");

  /* One signed byte changed (a second of genTime): the signature fails. */
  size_t g = find_gentime(&resp);
  resp.data[g + 13] ^= 1;
  assert_int_equal(tsa_verify(resp.data, resp.len, d, ca.data, ca.len, &info), CU_ECORRUPT);
  assert_msg_has("does not verify");
  resp.data[g + 13] ^= 1;
  /* The last byte is the signature's. */
  resp.data[resp.len - 1] ^= 0x01;
  assert_int_equal(tsa_verify(resp.data, resp.len, d, ca.data, ca.len, &info), CU_ECORRUPT);
  resp.data[resp.len - 1] ^= 0x01;
  /* Every byte of what the signature covers or names (TSTInfo, the
   * SignerInfo, the TSA's certificate) and of the status, changed: never
   * accepted. Other bytes (the SignedData version, the copy of the root
   * sent along) are not evidence; changing them must just not crash. */
  span prot[5];
  protected_spans(f, &resp, prot);
  for (size_t i = 0; i < resp.len; i++) {
    resp.data[i] ^= 0x80;
    int rc = tsa_verify(resp.data, resp.len, d, ca.data, ca.len, &info);
    resp.data[i] ^= 0x80;
    bool must_fail = false;
    for (size_t k = 0; k < 5; k++)
      must_fail |= i >= prot[k].from && i < prot[k].to;
    if (must_fail && rc != CU_ECORRUPT) fail_msg("byte %zu changed: accepted (rc %d)", i, rc);
  }
  assert_int_equal(tsa_verify(resp.data, resp.len, d, ca.data, ca.len, &info), 0);
  assert_int_equal(tsa_verify(resp.data, resp.len - 1, d, ca.data, ca.len, &info), CU_ECORRUPT);
  assert_int_equal(tsa_verify("junk", 4, d, ca.data, ca.len, &info), CU_ECORRUPT);
  assert_int_equal(tsa_verify(resp.data, resp.len, d, "not pem", 7, &info), CU_EINVAL);

  tsa_free(t);
  tsa_free(other);
  cu_buf_release(&ca);
  cu_buf_release(&ca2);
  cu_buf_release(&resp);
}

/* ---- a token made when, and by a certificate that, is long past -------- */

static X509 *test_cert(EVP_PKEY *key, const char *cn, bool ca, X509 *issuer, EVP_PKEY *ikey,
                       const char *from, const char *to) {
  X509 *x = X509_new();
  assert_non_null(x);
  assert_true(X509_set_version(x, X509_VERSION_3));
  assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2));
  assert_true(ASN1_TIME_set_string(X509_getm_notBefore(x), from));
  assert_true(ASN1_TIME_set_string(X509_getm_notAfter(x), to));
  assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                         (const unsigned char *)cn, -1, -1, 0));
  assert_true(X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)));
  assert_true(X509_set_pubkey(x, key));
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
  static const struct {
    int nid;
    const char *ca, *leaf;
  } exts[] = {
      {NID_basic_constraints, "critical,CA:TRUE", "critical,CA:FALSE"},
      {NID_key_usage, "critical,keyCertSign", "critical,digitalSignature"},
      {NID_ext_key_usage, NULL, "critical,timeStamping"},
      {NID_subject_key_identifier, "hash", "hash"},
  };
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
    const char *v = ca ? exts[i].ca : exts[i].leaf;
    if (!v) continue;
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid, v);
    assert_non_null(e);
    assert_true(X509_add_ext(x, e, -1));
    X509_EXTENSION_free(e);
  }
  assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
  return x;
}

static int fixed_time(TS_RESP_CTX *ctx, void *data, long *sec, long *usec) {
  *sec = *(const long *)data;
  *usec = 0;
  return 1;
}

static void old_token(X509 *cert, EVP_PKEY *key, long when, const unsigned char d[32],
                      cu_buf *out) {
  TS_REQ *req = TS_REQ_new();
  TS_MSG_IMPRINT *mi = TS_MSG_IMPRINT_new();
  X509_ALGOR *alg = X509_ALGOR_new();
  unsigned char copy[32];
  memcpy(copy, d, 32);
  assert_true(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL));
  assert_true(TS_MSG_IMPRINT_set_algo(mi, alg) && TS_MSG_IMPRINT_set_msg(mi, copy, 32));
  assert_true(TS_REQ_set_version(req, 1) && TS_REQ_set_msg_imprint(req, mi) &&
              TS_REQ_set_cert_req(req, 1));
  unsigned char *qder = NULL;
  int qlen = i2d_TS_REQ(req, &qder);
  assert_true(qlen > 0);
  TS_RESP_CTX *rc = TS_RESP_CTX_new();
  ASN1_OBJECT *pol = OBJ_txt2obj("1.2.3.4", 1);
  assert_true(TS_RESP_CTX_set_signer_cert(rc, cert) && TS_RESP_CTX_set_signer_key(rc, key) &&
              TS_RESP_CTX_set_def_policy(rc, pol) && TS_RESP_CTX_add_md(rc, EVP_sha256()) &&
              TS_RESP_CTX_set_ess_cert_id_digest(rc, EVP_sha256()));
  TS_RESP_CTX_set_time_cb(rc, fixed_time, &when);
  BIO *in = BIO_new_mem_buf(qder, qlen);
  TS_RESP *resp = TS_RESP_create_response(rc, in);
  assert_non_null(resp);
  unsigned char *der = NULL;
  int n = i2d_TS_RESP(resp, &der);
  assert_true(n > 0);
  cu_buf_reset(out);
  assert_int_equal(cu_buf_add(out, der, (size_t)n), 0);
  OPENSSL_free(der);
  TS_RESP_free(resp);
  BIO_free(in);
  ASN1_OBJECT_free(pol);
  TS_RESP_CTX_free(rc);
  OPENSSL_free(qder);
  TS_REQ_free(req);
  X509_ALGOR_free(alg);
  TS_MSG_IMPRINT_free(mi);
}

static void test_verify__checks_the_chain_at_gen_time(void **state) {
  fixture *f = *state;
  EVP_PKEY *rkey = EVP_EC_gen("P-256"), *tkey = EVP_EC_gen("P-256");
  assert_non_null(rkey);
  assert_non_null(tkey);
  X509 *root = test_cert(rkey, "old root", true, NULL, NULL, "20190101000000Z", "20490101000000Z");
  X509 *cert = test_cert(tkey, "old TSA", false, root, rkey, "20200101000000Z", "20210101000000Z");
  BIO *b = BIO_new(BIO_s_mem());
  assert_true(PEM_write_bio_X509(b, root));
  char *pem;
  long pem_len = BIO_get_mem_data(b, &pem);
  write_text(f, "old-root.pem", pem, (size_t)pem_len);

  unsigned char d[32];
  char hex[65];
  digest_of("stamped in 2020", d, hex);
  cu_buf tok = CU_BUF_INIT(1 << 20), out = CU_BUF_INIT(1 << 20);
  const long in_2020 = 1590969600; /* 2020-06-01T00:00:00Z, inside the validity */
  old_token(cert, tkey, in_2020, d, &tok);
  tsa_info info;
  if (tsa_verify(tok.data, tok.len, d, pem, (size_t)pem_len, &info))
    fail_msg("tsa_verify: %s", cu_errmsg());
  assert_int_equal(info.gen_time_us, (int64_t)in_2020 * 1000000);
  assert_string_equal(info.policy, "1.2.3.4");
  /* The certificate has expired today: checked as of now, this fails. */
  write_text(f, "old.tsr", tok.data, tok.len);
  assert_int_not_equal(
      run_in(f, &out, "openssl ts -verify -digest %s -in old.tsr -CAfile old-root.pem", hex), 0);
  assert_non_null(strstr(out.data, "expired"));

  /* A genTime outside the certificate's validity is refused. */
  old_token(cert, tkey, 1640995200 /* 2022-01-01 */, d, &tok);
  assert_int_equal(tsa_verify(tok.data, tok.len, d, pem, (size_t)pem_len, &info), CU_ECORRUPT);
  assert_msg_has("expired");

  BIO_free(b);
  X509_free(root);
  X509_free(cert);
  EVP_PKEY_free(rkey);
  EVP_PKEY_free(tkey);
  cu_buf_release(&tok);
  cu_buf_release(&out);
}

/* ---- an external TSA ---------------------------------------------------- */

static const char server_py[] =
    "import http.server, subprocess, tempfile, os, sys, time\n"
    "CNF = os.path.abspath(sys.argv[1])\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def log_message(self, *a): pass\n"
    "    def do_POST(self):\n"
    "        if self.path == '/busy': return self.send_error(503)\n"
    "        if self.path == '/slow': time.sleep(5); return self.send_error(504)\n"
    "        if self.path in ('/html', '/big'):\n"
    "            html = self.path == '/html'\n"
    "            out = b'<html></html>' if html else b'0' * (100 * 1024)\n"
    "            self.send_response(200)\n"
    "            self.send_header('Content-Type', 'text/html' if html else\n"
    "                             'application/timestamp-reply')\n"
    "            self.send_header('Content-Length', str(len(out)))\n"
    "            self.end_headers()\n"
    "            return self.wfile.write(out)\n"
    "        if self.headers.get('Content-Type', '').split(';')[0].strip() != "
    "'application/timestamp-query':\n"
    "            return self.send_error(415)\n"
    "        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))\n"
    "        section = ['-section', 'tsa_reject'] if self.path == '/reject' else []\n"
    "        with tempfile.TemporaryDirectory() as d:\n"
    "            q, r = os.path.join(d, 'q.tsq'), os.path.join(d, 'r.tsr')\n"
    "            open(q, 'wb').write(body)\n"
    "            subprocess.run(['openssl', 'ts', '-reply', '-config', CNF, '-queryfile', q,\n"
    "                            '-out', r] + section, cwd=os.path.dirname(CNF),\n"
    "                           capture_output=True)\n"
    "            if not os.path.exists(r): return self.send_error(500)\n"
    "            out = open(r, 'rb').read()\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Type', 'application/timestamp-reply')\n"
    "        self.send_header('Content-Length', str(len(out)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(out)\n"
    "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
    "print(s.server_address[1], flush=True)\n"
    "s.serve_forever()\n";

static const char certs_cnf[] = "[ req ]\n"
                                "distinguished_name = dn\n"
                                "prompt = no\n"
                                "[ dn ]\n"
                                "CN = unused\n"
                                "[ v3_ca ]\n"
                                "basicConstraints = critical,CA:TRUE\n"
                                "keyUsage = critical,keyCertSign,cRLSign\n"
                                "subjectKeyIdentifier = hash\n"
                                "[ v3_tsa ]\n"
                                "basicConstraints = critical,CA:FALSE\n"
                                "keyUsage = critical,digitalSignature,nonRepudiation\n"
                                "extendedKeyUsage = critical,timeStamping\n"
                                "subjectKeyIdentifier = hash\n"
                                "authorityKeyIdentifier = keyid:always\n";

#define TSA_SECTION(name, digests)                                                                 \
  "[ " name " ]\n"                                                                                 \
  "serial = ./tsaserial\n"                                                                         \
  "signer_cert = ./tsa.pem\n"                                                                      \
  "certs = ./ca.pem\n"                                                                             \
  "signer_key = ./tsa.key\n"                                                                       \
  "signer_digest = sha256\n"                                                                       \
  "default_policy = 1.3.6.1.4.1.99999.1.1\n"                                                       \
  "other_policies = 1.3.6.1.4.1.99999.1.2\n"                                                       \
  "digests = " digests "\n"                                                                        \
  "accuracy = secs:1\n"                                                                            \
  "clock_precision_digits = 3\n"                                                                   \
  "ordering = yes\n"                                                                               \
  "tsa_name = yes\n"                                                                               \
  "ess_cert_id_alg = sha256\n"

static const char tsa_cnf[] =
    "[ tsa ]\n"
    "default_tsa = tsa_config1\n" TSA_SECTION("tsa_config1", "sha256, sha384, sha512")
        TSA_SECTION("tsa_reject", "sha512");

/* A CA and TSA certificate made by the openssl CLI, and the Python wrapper
 * around `openssl ts -reply` listening on a free loopback port. */
static int start_server(fixture *f) {
  write_text(f, "certs.cnf", certs_cnf, strlen(certs_cnf));
  write_text(f, "tsa.cnf", tsa_cnf, strlen(tsa_cnf));
  write_text(f, "server.py", server_py, strlen(server_py));
  must_run(f, "openssl req -x509 -config certs.cnf -extensions v3_ca -newkey ec "
              "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 3650 "
              "-subj '/CN=Custos test TSA CA'");
  must_run(f, "openssl req -new -config certs.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
              "-nodes -keyout tsa.key -out tsa.csr -subj '/CN=Custos test TSA'");
  must_run(f, "openssl x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -set_serial 0x5151 "
              "-days 3650 -extfile certs.cnf -extensions v3_tsa -out tsa.pem");

  int fds[2];
  assert_int_equal(pipe(fds), 0);
  char *script = path_in(f, "server.py"), *cnf = path_in(f, "tsa.cnf");
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp("python3", "python3", script, cnf, (char *)NULL);
    fprintf(stderr, "cannot run python3: %s\n", strerror(errno));
    _exit(127);
  }
  f->server = pid;
  free(script);
  free(cnf);
  close(fds[1]);
  /* It prints the port once it is listening. */
  char line[32] = "";
  size_t got = 0;
  struct pollfd pfd = {fds[0], POLLIN, 0};
  int64_t deadline = cu_mono_us() + 20 * 1000000;
  while (got < sizeof line - 1 && !strchr(line, '\n')) {
    int ms = (int)((deadline - cu_mono_us()) / 1000);
    if (ms <= 0 || poll(&pfd, 1, ms) <= 0) break;
    ssize_t n = read(fds[0], line + got, sizeof line - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    line[got] = '\0';
  }
  close(fds[0]);
  int port = (int)strtol(line, NULL, 10);
  if (port <= 0) fail_msg("the Python TSA did not start (python3 is a test dependency)");
  return port;
}

/* A loopback port nobody listens on (bound, then let go). */
static int dead_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
  close(s);
  return ntohs(a.sin_port);
}

static void test_external__stamps_through_http(void **state) {
  fixture *f = *state;
  int port = start_server(f);
  char url[100], ca_file[4096];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  char *ca = path_in(f, "ca.pem");
  snprintf(ca_file, sizeof ca_file, "%s", ca);
  free(ca);

  tsa *t = NULL;
  if (tsa_open_external(&t, url, ca_file, 10)) fail_msg("tsa_open_external: %s", cu_errmsg());
  cu_buf resp = CU_BUF_INIT(1 << 20), pem = CU_BUF_INIT(1 << 20), file = CU_BUF_INIT(1 << 20);
  assert_int_equal(tsa_ca_pem(t, &pem), 0);
  read_file(ca_file, &file);
  assert_int_equal(pem.len, file.len);
  assert_memory_equal(pem.data, file.data, pem.len);

  unsigned char d[32];
  digest_of("sent over http", d, NULL);
  tsa_info info, v;
  int64_t before = cu_now_us();
  if (tsa_stamp(t, d, &resp, &info)) fail_msg("tsa_stamp: %s", cu_errmsg());
  int64_t after = cu_now_us();
  /* clock_precision_digits = 3: a millisecond fraction is kept. */
  assert_true(info.gen_time_us >= before - 1000 && info.gen_time_us <= after);
  assert_int_equal(info.gen_time_us % 1000, 0);
  assert_string_equal(info.policy, "1.3.6.1.4.1.99999.1.1");
  assert_true(strlen(info.serial) > 0);
  assert_int_equal(tsa_verify(resp.data, resp.len, d, pem.data, pem.len, &v), 0);
  assert_int_equal(v.gen_time_us, info.gen_time_us);
  assert_string_equal(v.serial, info.serial);
  tsa_free(t);

  /* A TSA that rejects the request says why. */
  snprintf(url, sizeof url, "http://127.0.0.1:%d/reject", port);
  assert_int_equal(tsa_open_external(&t, url, ca_file, 10), 0);
  assert_int_equal(tsa_stamp(t, d, &resp, &info), CU_ECORRUPT);
  assert_msg_has("rejected the request: status 2 (rejection), failInfo badAlg");
  tsa_free(t);

  /* An HTTP error is an I/O error, with the status; a password in the URL
   * stays out of the message. */
  snprintf(url, sizeof url, "http://user:secret@127.0.0.1:%d/busy", port);
  assert_int_equal(tsa_open_external(&t, url, ca_file, 10), 0);
  assert_int_equal(tsa_stamp(t, d, &resp, &info), CU_EIO);
  assert_msg_has("answered HTTP 503");
  assert_null(strstr(cu_errmsg(), "secret"));
  tsa_free(t);

  /* Something that is not a TSA at that URL: said so, not parsed. */
  snprintf(url, sizeof url, "http://127.0.0.1:%d/html", port);
  assert_int_equal(tsa_open_external(&t, url, ca_file, 10), 0);
  assert_int_equal(tsa_stamp(t, d, &resp, &info), CU_EIO);
  assert_msg_has("answered with Content-Type text/html, not application/timestamp-reply");
  tsa_free(t);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/big", port);
  assert_int_equal(tsa_open_external(&t, url, ca_file, 10), 0);
  assert_int_equal(tsa_stamp(t, d, &resp, &info), CU_EIO);
  assert_msg_has("answered with more than 64 KiB");
  tsa_free(t);

  /* Tokens that do not chain to the configured CA are refused. */
  tsa *builtin = open_builtin(f, "keys");
  cu_buf other = CU_BUF_INIT(1 << 20);
  assert_int_equal(tsa_ca_pem(builtin, &other), 0);
  write_text(f, "other-ca.pem", other.data, other.len);
  char *other_file = path_in(f, "other-ca.pem");
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  assert_int_equal(tsa_open_external(&t, url, other_file, 10), 0);
  assert_int_equal(tsa_stamp(t, d, &resp, &info), CU_ECORRUPT);
  assert_msg_has("does not verify");
  tsa_free(t);
  tsa_free(builtin);
  free(other_file);

  /* Nobody listening: an I/O error, at once. */
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", dead_port());
  assert_int_equal(tsa_open_external(&t, url, ca_file, 2), 0);
  int64_t t0 = cu_mono_us();
  assert_int_equal(tsa_stamp(t, d, &resp, &info), CU_EIO);
  assert_true(cu_mono_us() - t0 < 3 * 1000000);
  assert_msg_has("cannot reach the TSA at");
  tsa_free(t);

  /* A TSA that takes too long: given up on after timeout_s (the server,
   * single-threaded, is of no further use after this). */
  snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", port);
  assert_int_equal(tsa_open_external(&t, url, ca_file, 1), 0);
  t0 = cu_mono_us();
  assert_int_equal(tsa_stamp(t, d, &resp, &info), CU_EIO);
  assert_true(cu_mono_us() - t0 < 3 * 1000000);
  assert_msg_has("timed out");
  tsa_free(t);

  /* Configuration mistakes are found when opening. */
  assert_int_equal(tsa_open_external(&t, "ftp://127.0.0.1/", ca_file, 2), CU_EINVAL);
  assert_int_equal(tsa_open_external(&t, url, ca_file, 0), CU_EINVAL);
  char *missing = path_in(f, "missing.pem");
  assert_int_not_equal(tsa_open_external(&t, url, missing, 2), 0);
  free(missing);
  char *script = path_in(f, "server.py");
  assert_int_equal(tsa_open_external(&t, url, script, 2), CU_EINVAL); /* no certificate */
  free(script);

  cu_buf_release(&resp);
  cu_buf_release(&pem);
  cu_buf_release(&file);
  cu_buf_release(&other);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_builtin__creates_keys_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_builtin__stamps_and_verifies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_builtin__openssl_cli_agrees, setup, teardown),
      cmocka_unit_test_setup_teardown(test_builtin__stamps_from_several_threads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify__refuses_what_does_not_match, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify__checks_the_chain_at_gen_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_external__stamps_through_http, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
