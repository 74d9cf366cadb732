#include "note.h"

#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "b64.h"
#include "err.h"
#include "hex.h"
#include "ossl_err.h"
#include "banned.h"

static const char dash[] = "\xe2\x80\x94 "; /* U+2014 EM DASH, then a space */

static bool name_ok(const char *name) {
  size_t n = strlen(name);
  if (!n || n > NOTE_MAX_ORIGIN) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)name[i] <= 0x20 || name[i] == '+' || name[i] == 0x7f) return false;
  return true;
}

int note_checkpoint_body(const char *origin, uint64_t size, const unsigned char root[32],
                         cu_buf *out) {
  if (!name_ok(origin)) return cu_error(CU_EINVAL, "'%s' cannot be a log origin", origin);
  cu_buf r = CU_BUF_INIT(64);
  int rc = cu_b64_encode(root, 32, &r);
  if (!rc) rc = cu_buf_printf(out, "%s\n%" PRIu64 "\n%s\n", origin, size, r.data);
  cu_buf_release(&r);
  return rc;
}

int note_checkpoint_parse(const char *body, size_t n, note_checkpoint *out) {
  const char *p = body, *end = body + n;
  const char *l1 = memchr(p, '\n', n);
  if (!l1 || l1 == p || (size_t)(l1 - p) > NOTE_MAX_ORIGIN)
    return cu_error(CU_ECORRUPT, "the checkpoint has no origin line");
  memcpy(out->origin, p, (size_t)(l1 - p));
  out->origin[l1 - p] = '\0';
  p = l1 + 1;
  const char *l2 = memchr(p, '\n', (size_t)(end - p));
  if (!l2 || l2 == p || l2 - p > 20) return cu_error(CU_ECORRUPT, "the checkpoint has no size line");
  uint64_t size = 0;
  for (const char *q = p; q < l2; q++) {
    if (*q < '0' || *q > '9' || (q == p && *q == '0' && l2 - p > 1))
      return cu_error(CU_ECORRUPT, "the checkpoint's size is not a decimal number");
    uint64_t d = (uint64_t)(*q - '0');
    if (size > (UINT64_MAX - d) / 10) return cu_error(CU_ECORRUPT, "the checkpoint's size overflows");
    size = size * 10 + d;
  }
  p = l2 + 1;
  const char *l3 = memchr(p, '\n', (size_t)(end - p));
  if (!l3 || l3 + 1 != end)
    return cu_error(CU_ECORRUPT, "the checkpoint must be exactly origin, size and root lines");
  cu_buf r = CU_BUF_INIT(64);
  int rc = cu_b64_decode(p, (size_t)(l3 - p), &r);
  if (rc || r.len != 32) rc = cu_error(CU_ECORRUPT, "the checkpoint's root is not a base64 SHA-256");
  else memcpy(out->root, r.data, 32);
  cu_buf_release(&r);
  out->size = size;
  return rc;
}

void note_key_id(const char *name, const unsigned char pub[32], unsigned char id[4]) {
  unsigned char h[32], sep[2] = {'\n', 0x01};
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  EVP_DigestInit_ex(m, EVP_sha256(), NULL);
  EVP_DigestUpdate(m, name, strlen(name));
  EVP_DigestUpdate(m, sep, 2);
  EVP_DigestUpdate(m, pub, 32);
  EVP_DigestFinal_ex(m, h, NULL);
  EVP_MD_CTX_free(m);
  memcpy(id, h, 4);
}

int note_vkey(const char *name, const unsigned char pub[32], cu_buf *out) {
  unsigned char id[4], k[33] = {0x01};
  char idhex[9];
  note_key_id(name, pub, id);
  cu_hex_encode(id, 4, idhex);
  memcpy(k + 1, pub, 32);
  int rc = cu_buf_printf(out, "%s+%s+", name, idhex);
  if (!rc) rc = cu_b64_encode(k, 33, out);
  return rc;
}

int note_vkey_parse(const char *vkey, char name[NOTE_MAX_ORIGIN + 1], unsigned char pub[32]) {
  const char *p1 = strchr(vkey, '+');
  const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
  if (!p1 || !p2 || p1 == vkey || (size_t)(p1 - vkey) > NOTE_MAX_ORIGIN || p2 - p1 != 9)
    return cu_error(CU_EINVAL, "not a verifier key (name+keyid+key)");
  memcpy(name, vkey, (size_t)(p1 - vkey));
  name[p1 - vkey] = '\0';
  unsigned char id[4], want[4];
  cu_buf k = CU_BUF_INIT(128);
  int rc = cu_hex_decode(p1 + 1, 8, id, 4);
  size_t klen = strlen(p2 + 1);
  while (klen && (p2[klen] == '\n' || p2[klen] == '\r')) klen--;
  if (!rc) rc = cu_b64_decode(p2 + 1, klen, &k);
  if (rc || k.len != 33 || (unsigned char)k.data[0] != 0x01) {
    rc = cu_error(CU_EINVAL, "the verifier key is not an Ed25519 key");
  } else {
    memcpy(pub, k.data + 1, 32);
    note_key_id(name, pub, want);
    if (memcmp(id, want, 4)) rc = cu_error(CU_EINVAL, "the verifier key's id does not match its key");
  }
  cu_buf_release(&k);
  return rc;
}

int note_sign(const unsigned char seed[32], const char *name, const char *body, size_t n,
              cu_buf *note) {
  if (!name_ok(name)) return cu_error(CU_EINVAL, "'%s' cannot be a key name", name);
  if (!n || body[n - 1] != '\n' || memmem(body, n, "\n\n", 2))
    return cu_error(CU_EINVAL, "a note's text must end in a newline and hold no blank line");
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)body[i] < 0x20 && body[i] != '\n')
      return cu_error(CU_EINVAL, "a note's text must hold no control characters but newlines");
  unsigned char sig[4 + 64];
  size_t siglen = 64;
  unsigned char pub[32];
  int rc = note_public(seed, pub);
  if (rc) return rc;
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  if (!k || !m || EVP_DigestSignInit(m, NULL, NULL, NULL, k) != 1 ||
      EVP_DigestSign(m, sig + 4, &siglen, (const unsigned char *)body, n) != 1 || siglen != 64)
    rc = ossl_fail(CU_EIO, "cannot sign the tree head");
  EVP_MD_CTX_free(m);
  EVP_PKEY_free(k);
  if (rc) return rc;
  note_key_id(name, pub, sig);
  rc = cu_buf_add(note, body, n);
  if (!rc) rc = cu_buf_printf(note, "\n%s%s ", dash, name);
  if (!rc) rc = cu_b64_encode(sig, sizeof sig, note);
  if (!rc) rc = cu_buf_adds(note, "\n");
  return rc;
}

int note_verify(const char *note, size_t n, const char *name, const unsigned char pub[32],
                size_t *body_len) {
  if (n > NOTE_MAX_BYTES) return cu_error(CU_ECORRUPT, "the note is too long");
  if (memchr(note, '\0', n)) return cu_error(CU_ECORRUPT, "the note holds a NUL byte");
  /* The text ends at the last blank line; signature lines follow. */
  const char *split = NULL;
  for (const char *p = note; (p = memmem(p, (size_t)(note + n - p), "\n\n", 2)); p++) split = p;
  if (!split) return cu_error(CU_ECORRUPT, "the note has no signature block");
  size_t blen = (size_t)(split - note) + 1;
  unsigned char id[4];
  note_key_id(name, pub, id);
  const char *p = split + 2, *end = note + n;
  /* C2SP: everything after the blank line is signature lines, each
   * "— name base64"; a note with anything else there is malformed. */
  for (const char *q = p; q < end;) {
    const char *eol = memchr(q, '\n', (size_t)(end - q));
    size_t dl = strlen(dash);
    const char *sp = eol && (size_t)(eol - q) > dl ? memchr(q + dl, ' ', (size_t)(eol - q - dl)) : NULL;
    if (!eol || (size_t)(eol - q) <= dl || memcmp(q, dash, dl) || !sp || sp == q + dl || sp + 1 == eol)
      return cu_error(CU_ECORRUPT, "the note has a line after its text that is not a signature line");
    q = eol + 1;
  }
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) return cu_error(CU_ECORRUPT, "a signature line does not end in a newline");
    size_t dl = strlen(dash), nl = strlen(name);
    if ((size_t)(eol - p) > dl + nl + 1 && !memcmp(p, dash, dl) && !memcmp(p + dl, name, nl) &&
        p[dl + nl] == ' ') {
      cu_buf s = CU_BUF_INIT(256);
      const char *b = p + dl + nl + 1;
      int rc = cu_b64_decode(b, (size_t)(eol - b), &s);
      if (!rc && s.len == 68 && !memcmp(s.data, id, 4)) {
        EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        int ok = k && m && EVP_DigestVerifyInit(m, NULL, NULL, NULL, k) == 1 &&
                 EVP_DigestVerify(m, (const unsigned char *)s.data + 4, 64,
                                  (const unsigned char *)note, blen) == 1;
        EVP_MD_CTX_free(m);
        EVP_PKEY_free(k);
        ERR_clear_error();
        cu_buf_release(&s);
        if (!ok) return cu_error(CU_ECORRUPT, "the signature by %s does not verify", name);
        *body_len = blen;
        return 0;
      }
      cu_buf_release(&s);
    }
    p = eol + 1;
  }
  return cu_error(CU_ECORRUPT, "the note carries no signature by the key %s", name);
}

int note_public(const unsigned char seed[32], unsigned char pub[32]) {
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  size_t len = 32;
  int rc = (!k || EVP_PKEY_get_raw_public_key(k, pub, &len) != 1 || len != 32)
               ? ossl_fail(CU_EIO, "cannot derive the Ed25519 public key")
               : 0;
  EVP_PKEY_free(k);
  return rc;
}

int note_keygen(unsigned char seed[32], unsigned char pub[32]) {
  if (RAND_priv_bytes(seed, 32) != 1) return ossl_fail(CU_EIO, "cannot make an Ed25519 key");
  return note_public(seed, pub);
}
