/* Unit tests for archive/note: C2SP signed notes and tlog checkpoints.
 *
 * Sources of truth: the C2SP signed-note and tlog-checkpoint texts, the
 * published vectors of the Go reference implementation
 * (golang.org/x/mod/sumdb/note, note_test.go: the PeterNeumann and
 * EnochRoot keys and notes, its mangled-key and malformed-note cases),
 * RFC 8032 §7.1 test 1, and the openssl command line (a test dependency,
 * as for test_tsa), which checks our Ed25519 signatures and makes some for
 * us to check. Base64 and key ids are recomputed here with OpenSSL's EVP,
 * not with common/b64.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hex.h"
#include "note.h"
#include "test_util.h"

/* ---- helpers ----------------------------------------------------------- */

static void unhex(const char *hex, unsigned char *out, size_t n) {
  assert_int_equal(cu_hex_decode(hex, strlen(hex), out, n), 0);
}

/* Standard base64 with padding, via EVP; the caller frees. */
static char *b64(const void *in, size_t n) {
  char *out = cu_xmalloc(4 * ((n + 2) / 3) + 1);
  int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
  assert_int_equal((size_t)len, 4 * ((n + 2) / 3));
  return out;
}

/* Decodes padded base64 into out (at most max bytes); returns the length. */
static size_t unb64(const char *in, size_t inlen, unsigned char *out, size_t max) {
  assert_true(inlen % 4 == 0);
  unsigned char *t = cu_xmalloc(inlen / 4 * 3 + 1);
  int len = EVP_DecodeBlock(t, (const unsigned char *)in, (int)inlen);
  assert_true(len >= 0);
  size_t n = (size_t)len;
  if (inlen && in[inlen - 1] == '=') n--;
  if (inlen > 1 && in[inlen - 2] == '=') n--;
  assert_true(n <= max);
  memcpy(out, t, n);
  free(t);
  return n;
}

static void sha256(const void *a, size_t an, const void *b, size_t bn, unsigned char out[32]) {
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  EVP_DigestInit_ex(m, EVP_sha256(), NULL);
  EVP_DigestUpdate(m, a, an);
  if (bn) EVP_DigestUpdate(m, b, bn);
  EVP_DigestFinal_ex(m, out, NULL);
  EVP_MD_CTX_free(m);
}

/* C2SP: key ID = SHA-256(key name || 0x0A || 0x01 || public key)[:4] */
static void ref_key_id(const char *name, const unsigned char pub[32], unsigned char id[4]) {
  unsigned char t[2 + 32] = {0x0a, 0x01}, h[32];
  memcpy(t + 2, pub, 32);
  sha256(name, strlen(name), t, sizeof t, h);
  memcpy(id, h, 4);
}

static const char EMDASH[] = "\xe2\x80\x94 ";

/* A signature line for name over the given 68 bytes (key id || sig). */
static char *sig_line(const char *name, const unsigned char blob[68]) {
  char *s = b64(blob, 68);
  char *line = cu_xasprintf("%s%s %s\n", EMDASH, name, s);
  free(s);
  return line;
}

/* The 68 bytes of the signature line for name in note (first match). */
static void find_sig(const char *note, const char *name, unsigned char blob[68]) {
  char *prefix = cu_xasprintf("\n%s%s ", EMDASH, name);
  const char *p = strstr(note, prefix);
  assert_non_null(p);
  p += strlen(prefix);
  const char *eol = strchr(p, '\n');
  assert_non_null(eol);
  assert_int_equal(unb64(p, (size_t)(eol - p), blob, 68), 68);
  free(prefix);
}

static int verify(const char *note, const char *name, const unsigned char pub[32]) {
  size_t bl = 0;
  return note_verify(note, strlen(note), name, pub, &bl);
}

/* ---- published vectors ------------------------------------------------- */

/* golang.org/x/mod/sumdb/note note_test.go */
static const char PETER_VKEY[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char PETER_SKEY_B64[] =
    "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"; /* 0x01 || seed */
static const char ENOCH_VKEY[] = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
static const char GO_TEXT[] = "If you think cryptography is the answer to your problem,\n"
                              "then you don't know what your problem is.\n";
static const char PETER_SIG[] =
    "\xe2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
static const char ENOCH_SIG[] = "\xe2\x80\x94 EnochRoot "
                                "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/"
                                "5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

static void peter_seed(unsigned char seed[32]) {
  unsigned char k[33];
  assert_int_equal(unb64(PETER_SKEY_B64, strlen(PETER_SKEY_B64), k, 33), 33);
  assert_int_equal(k[0], 0x01);
  memcpy(seed, k + 1, 32);
}

static void test_note_keys__rfc8032_public_key(void **state) {
  /* RFC 8032 §7.1, TEST 1 */
  unsigned char seed[32], want[32], pub[32];
  unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
  unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", want, 32);
  assert_int_equal(note_public(seed, pub), 0);
  assert_memory_equal(pub, want, 32);

  unsigned char s1[32], p1[32], s2[32], p2[32], chk[32];
  assert_int_equal(note_keygen(s1, p1), 0);
  assert_int_equal(note_keygen(s2, p2), 0);
  assert_memory_not_equal(s1, s2, 32);
  assert_memory_not_equal(p1, p2, 32);
  assert_int_equal(note_public(s1, chk), 0);
  assert_memory_equal(chk, p1, 32);
}

static void test_note_go_vectors__vkey_sign_verify(void **state) {
  char name[NOTE_MAX_ORIGIN + 1];
  unsigned char pub[32], seed[32], derived[32], id[4], want_id[4];
  assert_int_equal(note_vkey_parse(PETER_VKEY, name, pub), 0);
  assert_string_equal(name, "PeterNeumann");
  peter_seed(seed);
  assert_int_equal(note_public(seed, derived), 0);
  assert_memory_equal(derived, pub, 32);

  note_key_id("PeterNeumann", pub, id);
  unhex("c74f20a3", want_id, 4);
  assert_memory_equal(id, want_id, 4);

  cu_buf vk = CU_BUF_INIT(1024);
  assert_int_equal(note_vkey("PeterNeumann", pub, &vk), 0);
  assert_string_equal(vk.data, PETER_VKEY);
  cu_buf_release(&vk);

  /* Ed25519 is deterministic: note_sign must give Go's note byte for byte */
  cu_buf n = CU_BUF_INIT(NOTE_MAX_BYTES);
  assert_int_equal(note_sign(seed, "PeterNeumann", GO_TEXT, strlen(GO_TEXT), &n), 0);
  char *want = cu_xasprintf("%s\n%s", GO_TEXT, PETER_SIG);
  assert_string_equal(n.data, want);
  size_t bl = 0;
  assert_int_equal(note_verify(want, strlen(want), "PeterNeumann", pub, &bl), 0);
  assert_int_equal(bl, strlen(GO_TEXT));
  cu_buf_release(&n);
  free(want);

  /* TestOpen: a note signed by both keys verifies for each of them */
  char ename[NOTE_MAX_ORIGIN + 1];
  unsigned char epub[32];
  assert_int_equal(note_vkey_parse(ENOCH_VKEY, ename, epub), 0);
  assert_string_equal(ename, "EnochRoot");
  char *both = cu_xasprintf("%s\n%s%s", GO_TEXT, PETER_SIG, ENOCH_SIG);
  assert_int_equal(verify(both, "PeterNeumann", pub), 0);
  assert_int_equal(verify(both, "EnochRoot", epub), 0);
  free(both);
  /* an unknown signature before ours is skipped */
  char *enoch_first = cu_xasprintf("%s\n%s%s", GO_TEXT, ENOCH_SIG, PETER_SIG);
  assert_int_equal(verify(enoch_first, "PeterNeumann", pub), 0);
  free(enoch_first);
  /* a note signed only by Enoch carries no signature by Peter */
  char *only_enoch = cu_xasprintf("%s\n%s", GO_TEXT, ENOCH_SIG);
  assert_int_equal(verify(only_enoch, "PeterNeumann", pub), CU_ECORRUPT);
  free(only_enoch);
}

/* TestNewVerifier: every proper substring and every one-byte increment of
 * the verifier key is refused. */
static void test_note_go_vectors__mangled_vkeys_rejected(void **state) {
  size_t n = strlen(PETER_VKEY);
  char b[128], name[NOTE_MAX_ORIGIN + 1];
  unsigned char pub[32];
  for (size_t i = 0; i <= n; i++)
    for (size_t j = i + 1; j <= n; j++) {
      if (i == 0 && j == n) continue;
      memcpy(b, PETER_VKEY + i, j - i);
      b[j - i] = '\0';
      if (note_vkey_parse(b, name, pub) == 0) fail_msg("accepted the verifier key '%s'", b);
    }
  memcpy(b, PETER_VKEY, n + 1);
  for (size_t i = 0; i < n; i++) {
    b[i]++;
    if (note_vkey_parse(b, name, pub) == 0) fail_msg("accepted the verifier key '%s'", b);
    b[i]--;
  }
  /* wrong length key, unknown algorithm, each with its key hash adjusted */
  assert_int_equal(note_vkey_parse("PeterNeumann+cc469956+"
                                   "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
                                   name, pub),
                   CU_EINVAL);
  assert_int_equal(
      note_vkey_parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", name,
                      pub),
      CU_EINVAL);
}

/* TestOpen's malformed messages, which the Go reference refuses. The
 * notes are all built first and freed before any failure is reported. */
static void test_note_go_vectors__malformed_notes_rejected(void **state) {
  unsigned char pub[32];
  char name[NOTE_MAX_ORIGIN + 1];
  assert_int_equal(note_vkey_parse(PETER_VKEY, name, pub), 0);
  char *peter_no_nl = cu_xstrndup(PETER_SIG, strlen(PETER_SIG) - 1);
  char *bad[] = {
      cu_xasprintf("%s", GO_TEXT),
      cu_xasprintf("%s\n", GO_TEXT),
      cu_xasprintf("%s\n%s", GO_TEXT, peter_no_nl),
      cu_xasprintf("\x01%s\n%s", GO_TEXT, PETER_SIG),
      cu_xasprintf("\xff%s\n%s", GO_TEXT, PETER_SIG),
      cu_xasprintf("%s\n\xe2\x80\x94 Bad Name "
                   "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZ"
                   "b6KE6RyyBwJnAM=",
                   GO_TEXT),
      /* "Invalid signature": four characters inserted into the base64 */
      cu_xasprintf("%s\n%.60sABCD%s", GO_TEXT, PETER_SIG, PETER_SIG + 60),
  };
  int rcs[sizeof bad / sizeof *bad];
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    size_t bl = 0;
    rcs[i] = note_verify(bad[i], strlen(bad[i]), "PeterNeumann", pub, &bl);
    free(bad[i]);
  }
  free(peter_no_nl);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (rcs[i] != CU_ECORRUPT) fail_msg("malformed note %zu: note_verify returned %d", i, rcs[i]);
}

/* C2SP signed-note, "Format": after the blank line come "one or more
 * signature lines" (em dash, space, name, space, base64, newline), and a
 * signed note "MUST NOT contain any ASCII control characters (those below
 * U+0020) other than newline". The Go reference's Open refuses a note with
 * a further line after its signatures (its TestOpen "Unexpected line."
 * case) and its Sign refuses such text. */
static void test_note_c2sp__non_conforming_notes_refused(void **state) {
  unsigned char pub[32], seed[32];
  char name[NOTE_MAX_ORIGIN + 1];
  assert_int_equal(note_vkey_parse(PETER_VKEY, name, pub), 0);
  peter_seed(seed);
  char *trailing = cu_xasprintf("%s\n%sUnexpected line.\n", GO_TEXT, PETER_SIG);
  size_t bl = 0;
  int rc_trailing = note_verify(trailing, strlen(trailing), "PeterNeumann", pub, &bl);
  free(trailing);
  cu_buf n = CU_BUF_INIT(NOTE_MAX_BYTES);
  int rc_ctl = note_sign(seed, "PeterNeumann",
                         "a\x01"
                         "b\n",
                         4, &n);
  cu_buf_release(&n);
  cu_buf_init(&n, NOTE_MAX_BYTES);
  int rc_tab = note_sign(seed, "PeterNeumann", "a\tb\n", 4, &n);
  cu_buf_release(&n);
  if (rc_trailing != CU_ECORRUPT || rc_ctl != CU_EINVAL || rc_tab != CU_EINVAL)
    fail_msg("note_verify of a note with a line after its signatures returned %d (want %d); "
             "note_sign of text holding 0x01 returned %d, holding a tab %d (want %d)",
             rc_trailing, CU_ECORRUPT, rc_ctl, rc_tab, CU_EINVAL);
}

/* ---- checkpoints ------------------------------------------------------- */

static void test_note_checkpoint__body_format(void **state) {
  unsigned char root[32];
  for (int i = 0; i < 32; i++)
    root[i] = (unsigned char)(i * 7 + 3);
  char *r64 = b64(root, 32);
  const uint64_t sizes[] = {0, 1, 10, 12345, 1ull << 63};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    cu_buf b = CU_BUF_INIT(1024);
    assert_int_equal(note_checkpoint_body("example.com/log", sizes[i], root, &b), 0);
    char *want = cu_xasprintf("example.com/log\n%llu\n%s\n", (unsigned long long)sizes[i], r64);
    assert_int_equal(b.len, strlen(want));
    assert_string_equal(b.data, want);
    free(want);
    cu_buf_release(&b);
  }
  free(r64);
  /* a log origin is a key name: non-empty, no spaces, no '+' */
  const char *bad[] = {"", "has space", "a+b", "tab\there", "nl\nhere"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    cu_buf b = CU_BUF_INIT(1024);
    assert_int_equal(note_checkpoint_body(bad[i], 1, root, &b), CU_EINVAL);
    cu_buf_release(&b);
  }
}

/* Body and parse for one size; NULL, or why not (the buffers are freed
 * before a failure is reported). */
static const char *roundtrip(const char *origin, uint64_t size, const unsigned char root[32]) {
  cu_buf b = CU_BUF_INIT(1024);
  assert_int_equal(note_checkpoint_body(origin, size, root, &b), 0);
  note_checkpoint cp;
  memset(&cp, 0x5a, sizeof cp);
  int rc = note_checkpoint_parse(b.data, b.len, &cp);
  cu_buf_release(&b);
  if (rc) return cu_errmsg();
  if (strcmp(cp.origin, origin)) return "the origin differs";
  if (cp.size != size) return "the size differs";
  if (memcmp(cp.root, root, 32)) return "the root differs";
  return NULL;
}

static void test_note_checkpoint__parse_round_trip(void **state) {
  unsigned char root[32];
  for (int i = 0; i < 32; i++)
    root[i] = (unsigned char)(255 - i);
  const char *origins[] = {"example.com/log", "custos/0123456789abcdef", "x"};
  /* sizes are uint64 (STANDARDS §3.7), the largest ones included */
  const uint64_t sizes[] = {
      0,         1, 4294967296ull, 1ull << 63, 18446744073709551609ull, 18446744073709551610ull,
      UINT64_MAX};
  for (size_t o = 0; o < 3; o++)
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
      const char *why = roundtrip(origins[o], sizes[i], root);
      if (why)
        fail_msg("checkpoint of size %llu does not survive parsing: %s",
                 (unsigned long long)sizes[i], why);
    }
}

static void test_note_checkpoint__parse_rejects(void **state) {
  unsigned char root[32], r31[31], r33[33];
  for (int i = 0; i < 32; i++)
    root[i] = (unsigned char)i;
  memcpy(r31, root, 31);
  memcpy(r33, root, 32);
  r33[32] = 1;
  char *g = b64(root, 32), *g31 = b64(r31, 31), *g33 = b64(r33, 33);
  char *ok = cu_xasprintf("o\n5\n%s\n", g);
  note_checkpoint cp;
  assert_int_equal(note_checkpoint_parse(ok, strlen(ok), &cp), 0);
  assert_true(cp.size == 5);

  char bad_pad[64], bad_chr[64];
  snprintf(bad_pad, sizeof bad_pad, "%.*s", (int)strlen(g) - 1, g); /* padding dropped */
  snprintf(bad_chr, sizeof bad_chr, "%s", g);
  bad_chr[3] = '*';
  char long_origin[NOTE_MAX_ORIGIN + 2];
  memset(long_origin, 'a', NOTE_MAX_ORIGIN + 1);
  long_origin[NOTE_MAX_ORIGIN + 1] = '\0';
  char *bad[] = {
      cu_xasprintf("o\n5\n%s\nextra\n", g),             /* extra line */
      cu_xasprintf("o\n5\n%s\n\n", g),                  /* extra empty line */
      cu_xasprintf("o\n5\n%s", g),                      /* no final newline */
      cu_xasprintf("o\n05\n%s\n", g),                   /* leading zero */
      cu_xasprintf("o\n00\n%s\n", g),                   /* leading zero */
      cu_xasprintf("o\n+5\n%s\n", g),                   /* sign */
      cu_xasprintf("o\n-5\n%s\n", g),                   /* sign */
      cu_xasprintf("o\n5a\n%s\n", g),                   /* not decimal */
      cu_xasprintf("o\n0x5\n%s\n", g),                  /* not decimal */
      cu_xasprintf("o\n 5\n%s\n", g),                   /* space */
      cu_xasprintf("o\n5 \n%s\n", g),                   /* space */
      cu_xasprintf("o\n\n%s\n", g),                     /* empty size */
      cu_xasprintf("o\n18446744073709551616\n%s\n", g), /* 2^64 */
      cu_xasprintf("o\n99999999999999999999\n%s\n", g), /* overflow */
      cu_xasprintf("o\n5\n%s\n", bad_pad),              /* bad base64 */
      cu_xasprintf("o\n5\n%s\n", bad_chr),              /* bad base64 */
      cu_xasprintf("o\n5\n %s\n", g),                   /* bad base64 */
      cu_xasprintf("o\n5\n%s\n", g31),                  /* 31-byte root */
      cu_xasprintf("o\n5\n%s\n", g33),                  /* 33-byte root */
      cu_xasprintf("o\n5\n\n"),                         /* empty root */
      cu_xasprintf("\n5\n%s\n", g),                     /* empty origin */
      cu_xasprintf("%s\n5\n%s\n", long_origin, g),      /* origin too long */
      cu_xasprintf("o\n5\n"),                           /* two lines */
      cu_xasprintf("o"),                                /* one line */
      cu_xstrdup(""),
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = note_checkpoint_parse(bad[i], strlen(bad[i]), &cp);
    if (rc != CU_ECORRUPT) fail_msg("checkpoint %zu: got %d for:\n%s", i, rc, bad[i]);
    free(bad[i]);
  }
  free(ok);
  free(g);
  free(g31);
  free(g33);
}

/* ---- signing and verifying -------------------------------------------- */

typedef struct {
  unsigned char seed[32], pub[32];
  cu_buf body, note;
} signed_cp;

static void make_signed(signed_cp *s, const char *name) {
  assert_int_equal(note_keygen(s->seed, s->pub), 0);
  unsigned char root[32];
  for (int i = 0; i < 32; i++)
    root[i] = (unsigned char)(i ^ 0x5c);
  cu_buf_init(&s->body, NOTE_MAX_BYTES);
  cu_buf_init(&s->note, NOTE_MAX_BYTES);
  assert_int_equal(note_checkpoint_body(name, 42, root, &s->body), 0);
  assert_int_equal(note_sign(s->seed, name, s->body.data, s->body.len, &s->note), 0);
}

static void free_signed(signed_cp *s) {
  cu_buf_release(&s->body);
  cu_buf_release(&s->note);
}

static void test_note_sign__round_trip_and_format(void **state) {
  signed_cp s;
  const char *name = "example.com/custos";
  make_signed(&s, name);
  /* note = body "\n" "— " name " " base64(key id || signature) "\n" */
  assert_true(s.note.len > s.body.len);
  assert_memory_equal(s.note.data, s.body.data, s.body.len);
  char *prefix = cu_xasprintf("\n%s%s ", EMDASH, name);
  assert_memory_equal(s.note.data + s.body.len, prefix, strlen(prefix));
  const char *sig = s.note.data + s.body.len + strlen(prefix);
  assert_int_equal(strlen(sig), 92 + 1); /* 68 bytes of base64, newline */
  assert_int_equal(sig[92], '\n');
  unsigned char blob[68], id[4];
  assert_int_equal(unb64(sig, 92, blob, 68), 68);
  ref_key_id(name, s.pub, id);
  assert_memory_equal(blob, id, 4);

  size_t bl = 0;
  assert_int_equal(note_verify(s.note.data, s.note.len, name, s.pub, &bl), 0);
  assert_int_equal(bl, s.body.len);
  note_checkpoint cp;
  assert_int_equal(note_checkpoint_parse(s.note.data, bl, &cp), 0);
  assert_string_equal(cp.origin, name);
  assert_true(cp.size == 42);
  free(prefix);
  free_signed(&s);
}

static void test_note_sign__rejects_bad_input(void **state) {
  unsigned char seed[32], pub[32];
  assert_int_equal(note_keygen(seed, pub), 0);
  cu_buf n = CU_BUF_INIT(NOTE_MAX_BYTES);
  assert_int_equal(note_sign(seed, "k", "no newline", 10, &n), CU_EINVAL);
  assert_int_equal(note_sign(seed, "k", "a\n\nb\n", 5, &n), CU_EINVAL);
  assert_int_equal(note_sign(seed, "k", "", 0, &n), CU_EINVAL);
  assert_int_equal(note_sign(seed, "a b", "x\n", 2, &n), CU_EINVAL);
  assert_int_equal(note_sign(seed, "a+b", "x\n", 2, &n), CU_EINVAL);
  assert_int_equal(note_sign(seed, "", "x\n", 2, &n), CU_EINVAL);
  assert_int_equal(n.len, 0);
  cu_buf_release(&n);
}

static void test_note_verify__tampering_fails(void **state) {
  signed_cp s;
  const char *name = "example.com/custos";
  make_signed(&s, name);
  const char *note = s.note.data;
  size_t bl;

  /* one changed byte anywhere in the body */
  char *t = cu_xstrdup(note);
  for (size_t i = 0; i < s.body.len; i++) {
    t[i] ^= 0x01;
    if (note_verify(t, s.note.len, name, s.pub, &bl) == 0)
      fail_msg("verified with body byte %zu changed", i);
    t[i] ^= 0x01;
  }
  assert_int_equal(note_verify(t, s.note.len, name, s.pub, &bl), 0);
  free(t);

  /* a different key; a different name */
  unsigned char seed2[32], pub2[32];
  assert_int_equal(note_keygen(seed2, pub2), 0);
  assert_int_equal(verify(note, name, pub2), CU_ECORRUPT);
  assert_int_equal(verify(note, "example.com/other", s.pub), CU_ECORRUPT);
  assert_int_equal(verify(note, "example.com/custo", s.pub), CU_ECORRUPT);

  unsigned char blob[68];
  find_sig(note, name, blob);
  /* our name, but another key id: not our signature */
  {
    unsigned char b2[68];
    memcpy(b2, blob, 68);
    b2[0] ^= 0x80;
    char *line = sig_line(name, b2);
    char *n2 = cu_xasprintf("%s\n%s", s.body.data, line);
    assert_int_equal(verify(n2, name, s.pub), CU_ECORRUPT);
    free(line);
    free(n2);
  }
  /* our key id, one bit of the signature flipped */
  for (int i = 4; i < 68; i += 7) {
    unsigned char b2[68];
    memcpy(b2, blob, 68);
    b2[i] ^= 0x04;
    char *line = sig_line(name, b2);
    char *n2 = cu_xasprintf("%s\n%s", s.body.data, line);
    assert_int_equal(verify(n2, name, s.pub), CU_ECORRUPT);
    free(line);
    free(n2);
  }
  /* the signature of another body */
  {
    cu_buf other = CU_BUF_INIT(NOTE_MAX_BYTES);
    assert_int_equal(note_sign(s.seed, name, "other\n", 6, &other), 0);
    unsigned char b2[68];
    find_sig(other.data, name, b2);
    char *line = sig_line(name, b2);
    char *n2 = cu_xasprintf("%s\n%s", s.body.data, line);
    assert_int_equal(verify(n2, name, s.pub), CU_ECORRUPT);
    free(line);
    free(n2);
    cu_buf_release(&other);
  }
  /* truncated signatures: shorter base64, cut mid-quantum, no newline */
  {
    const char *sl = strstr(note, EMDASH);
    size_t off = (size_t)(sl - note), len = strlen(sl);
    for (size_t cut = 1; cut <= 8; cut++) {
      char *n2 = cu_xasprintf("%.*s\n", (int)(off + len - 1 - cut), note);
      assert_int_equal(verify(n2, name, s.pub), CU_ECORRUPT);
      free(n2);
    }
    char *n3 = cu_xstrndup(note, s.note.len - 1);
    assert_int_equal(verify(n3, name, s.pub), CU_ECORRUPT);
    free(n3);
  }
  /* no blank line between the text and the signature */
  {
    char *n2 = cu_xasprintf("%s%s", s.body.data, note + s.body.len + 1);
    assert_int_equal(verify(n2, name, s.pub), CU_ECORRUPT);
    free(n2);
  }
  /* the blank line doubled: the text would then end in a blank line */
  {
    char *n2 = cu_xasprintf("%s\n%s", s.body.data, note + s.body.len);
    assert_int_equal(verify(n2, name, s.pub), CU_ECORRUPT);
    free(n2);
  }
  /* a hyphen instead of the em dash */
  {
    char *n2 = cu_xasprintf("%s\n- %s", s.body.data, note + s.body.len + 1 + strlen(EMDASH));
    assert_int_equal(verify(n2, name, s.pub), CU_ECORRUPT);
    free(n2);
  }
  /* a NUL byte; an oversized note */
  {
    char *n2 = cu_xstrdup(note);
    n2[2] = '\0';
    assert_int_equal(note_verify(n2, s.note.len, name, s.pub, &bl), CU_ECORRUPT);
    free(n2);
    size_t big = NOTE_MAX_BYTES + 1;
    char *n3 = cu_xmalloc(big + 1);
    memset(n3, 'a', big);
    memcpy(n3 + big - s.note.len, note, s.note.len);
    n3[big] = '\0';
    assert_int_equal(note_verify(n3, big, name, s.pub, &bl), CU_ECORRUPT);
    free(n3);
  }
  free_signed(&s);
}

static void test_note_verify__other_signatures_are_ignored(void **state) {
  signed_cp s;
  const char *name = "example.com/custos";
  make_signed(&s, name);
  const char *sigs = s.note.data + s.body.len + 1;
  unsigned char junk[68], idx[4];
  for (int i = 0; i < 68; i++)
    junk[i] = (unsigned char)(i * 13 + 1);

  /* an unknown key's line first */
  char *other = sig_line("witness.example/w1", junk);
  char *n1 = cu_xasprintf("%s\n%s%s", s.body.data, other, sigs);
  assert_int_equal(verify(n1, name, s.pub), 0);
  /* C2SP: ignore a key that shares our name but not our id ... */
  char *same_name = sig_line(name, junk);
  char *n2 = cu_xasprintf("%s\n%s%s", s.body.data, same_name, sigs);
  assert_int_equal(verify(n2, name, s.pub), 0);
  /* ... or shares our id but not our name */
  ref_key_id(name, s.pub, idx);
  memcpy(junk, idx, 4);
  char *same_id = sig_line("example.com/custos2", junk);
  char *n3 = cu_xasprintf("%s\n%s%s%s", s.body.data, same_id, other, sigs);
  assert_int_equal(verify(n3, name, s.pub), 0);
  /* ours first, then others */
  char *n4 = cu_xasprintf("%s%s", s.note.data, other);
  assert_int_equal(verify(n4, name, s.pub), 0);
  /* but a failing line under our name and id rejects the note (C2SP:
   * known keys must be verified) */
  unsigned char bad[68];
  find_sig(s.note.data, name, bad);
  bad[20] ^= 1;
  char *badl = sig_line(name, bad);
  char *n5 = cu_xasprintf("%s\n%s%s", s.body.data, badl, sigs);
  assert_int_equal(verify(n5, name, s.pub), CU_ECORRUPT);

  free(other);
  free(same_name);
  free(same_id);
  free(badl);
  free(n1);
  free(n2);
  free(n3);
  free(n4);
  free(n5);
  free_signed(&s);
}

/* ---- verifier keys ----------------------------------------------------- */

static void test_note_vkey__format_and_round_trip(void **state) {
  unsigned char seed[32], pub[32], id[4], want_id[4];
  assert_int_equal(note_keygen(seed, pub), 0);
  const char *name = "custos/0011223344556677";
  note_key_id(name, pub, id);
  ref_key_id(name, pub, want_id);
  assert_memory_equal(id, want_id, 4);

  unsigned char k[33] = {0x01};
  memcpy(k + 1, pub, 32);
  char *kb = b64(k, 33);
  char *want = cu_xasprintf("%s+%02x%02x%02x%02x+%s", name, id[0], id[1], id[2], id[3], kb);
  cu_buf v = CU_BUF_INIT(1024);
  assert_int_equal(note_vkey(name, pub, &v), 0);
  assert_string_equal(v.data, want);

  char pname[NOTE_MAX_ORIGIN + 1];
  unsigned char ppub[32];
  assert_int_equal(note_vkey_parse(v.data, pname, ppub), 0);
  assert_string_equal(pname, name);
  assert_memory_equal(ppub, pub, 32);

  /* a wrong key id (each hex digit changed) */
  size_t at = strlen(name) + 1;
  for (size_t i = 0; i < 8; i++) {
    char *w = cu_xstrdup(v.data);
    w[at + i] = w[at + i] == '0' ? '1' : '0';
    assert_int_equal(note_vkey_parse(w, pname, ppub), CU_EINVAL);
    free(w);
  }
  /* the key of another algorithm, its id matching */
  {
    unsigned char k2[33];
    memcpy(k2, k, 33);
    k2[0] = 0x02;
    unsigned char t[2 + 32] = {0x0a, 0x02}, h[32];
    memcpy(t + 2, pub, 32);
    sha256(name, strlen(name), t, sizeof t, h);
    char *kb2 = b64(k2, 33);
    char *w = cu_xasprintf("%s+%02x%02x%02x%02x+%s", name, h[0], h[1], h[2], h[3], kb2);
    assert_int_equal(note_vkey_parse(w, pname, ppub), CU_EINVAL);
    free(w);
    free(kb2);
  }
  /* missing parts */
  const char *bad[] = {"",
                       "+",
                       "++",
                       "name",
                       "name+",
                       "name+c74f20a3",
                       "+c74f20a3+AAAA",
                       "name+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(note_vkey_parse(bad[i], pname, ppub), CU_EINVAL);
  free(kb);
  free(want);
  cu_buf_release(&v);
}

/* ---- cross-check with the openssl command line ------------------------ */

static void write_file(const char *dir, const char *name, const void *data, size_t n) {
  char *p = cu_path_join(dir, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
  free(p);
}

static int run(const char *dir, const char *cmd) {
  char *full = cu_xasprintf("cd '%s' && %s >out.txt 2>&1", dir, cmd);
  int st = system(full);
  free(full);
  assert_true(st != -1 && WIFEXITED(st));
  return WEXITSTATUS(st);
}

/* PEM armour around DER: base64 in lines of 64 */
static char *pem(const char *label, const unsigned char *der, size_t n) {
  char *b = b64(der, n);
  cu_buf out = CU_BUF_INIT(4096);
  assert_int_equal(cu_buf_printf(&out, "-----BEGIN %s-----\n", label), 0);
  for (size_t i = 0; i < strlen(b); i += 64)
    assert_int_equal(cu_buf_printf(&out, "%.64s\n", b + i), 0);
  assert_int_equal(cu_buf_printf(&out, "-----END %s-----\n", label), 0);
  free(b);
  size_t len;
  return cu_buf_detach(&out, &len);
}

static void test_note_openssl__cli_agrees(void **state) {
  char *dir = test_tmpdir("note");
  assert_non_null(dir);
  signed_cp s;
  const char *name = "example.com/custos";
  make_signed(&s, name);

  /* SubjectPublicKeyInfo for Ed25519 (RFC 8410): 302a300506032b6570032100 || key */
  unsigned char spki[44];
  unhex("302a300506032b6570032100", spki, 12);
  memcpy(spki + 12, s.pub, 32);
  char *pub_pem = pem("PUBLIC KEY", spki, sizeof spki);
  write_file(dir, "pub.pem", pub_pem, strlen(pub_pem));
  write_file(dir, "body", s.body.data, s.body.len);
  unsigned char blob[68];
  find_sig(s.note.data, name, blob);
  write_file(dir, "sig", blob + 4, 64);
  const char *verify_cmd =
      "openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in body -sigfile sig";
  if (run(dir, verify_cmd)) {
    char *out = cu_path_join(dir, "out.txt");
    cu_buf o = CU_BUF_INIT(1 << 16);
    cu_read_small_file(out, o.max, &o);
    fail_msg("openssl rejects our signature: %s", o.data ? o.data : "");
  }
  /* a modified body fails */
  char *mod = cu_xstrdup(s.body.data);
  mod[0] ^= 0x20;
  write_file(dir, "body", mod, s.body.len);
  assert_int_not_equal(run(dir, verify_cmd), 0);
  /* so does the body with the blank separator line (not part of the text) */
  char *withblank = cu_xasprintf("%s\n", s.body.data);
  write_file(dir, "body", withblank, s.body.len + 1);
  assert_int_not_equal(run(dir, verify_cmd), 0);

  /* and the other way round: openssl signs the body with our seed
   * (PKCS#8, RFC 8410: 302e020100300506032b657004220420 || seed) and
   * note_verify accepts the note made from that signature */
  unsigned char p8[48];
  unhex("302e020100300506032b657004220420", p8, 16);
  memcpy(p8 + 16, s.seed, 32);
  char *key_pem = pem("PRIVATE KEY", p8, sizeof p8);
  write_file(dir, "key.pem", key_pem, strlen(key_pem));
  write_file(dir, "body", s.body.data, s.body.len);
  assert_int_equal(run(dir, "openssl pkeyutl -sign -inkey key.pem -rawin -in body -out sig2"), 0);
  char *sig2 = cu_path_join(dir, "sig2");
  cu_buf sb = CU_BUF_INIT(1024);
  assert_int_equal(cu_read_small_file(sig2, sb.max, &sb), 0);
  assert_int_equal(sb.len, 64);
  /* Ed25519 is deterministic: the same signature as note_sign's */
  assert_memory_equal(sb.data, blob + 4, 64);
  unsigned char b2[68];
  ref_key_id(name, s.pub, b2);
  memcpy(b2 + 4, sb.data, 64);
  char *line = sig_line(name, b2);
  char *n2 = cu_xasprintf("%s\n%s", s.body.data, line);
  assert_int_equal(verify(n2, name, s.pub), 0);

  free(n2);
  free(line);
  cu_buf_release(&sb);
  free(sig2);
  free(key_pem);
  free(withblank);
  free(mod);
  free(pub_pem);
  free_signed(&s);
  assert_int_equal(test_rmtree(dir), 0);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_note_keys__rfc8032_public_key),
      cmocka_unit_test(test_note_go_vectors__vkey_sign_verify),
      cmocka_unit_test(test_note_go_vectors__mangled_vkeys_rejected),
      cmocka_unit_test(test_note_go_vectors__malformed_notes_rejected),
      cmocka_unit_test(test_note_c2sp__non_conforming_notes_refused),
      cmocka_unit_test(test_note_checkpoint__body_format),
      cmocka_unit_test(test_note_checkpoint__parse_round_trip),
      cmocka_unit_test(test_note_checkpoint__parse_rejects),
      cmocka_unit_test(test_note_sign__round_trip_and_format),
      cmocka_unit_test(test_note_sign__rejects_bad_input),
      cmocka_unit_test(test_note_verify__tampering_fails),
      cmocka_unit_test(test_note_verify__other_signatures_are_ignored),
      cmocka_unit_test(test_note_vkey__format_and_round_trip),
      cmocka_unit_test(test_note_openssl__cli_agrees),
  };
  const char *only = getenv("CMOCKA_TEST_FILTER");
  if (only) cmocka_set_test_filter(only);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
