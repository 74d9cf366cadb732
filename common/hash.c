/* The SHA256_* functions are deprecated in OpenSSL 3 only in favour of EVP,
 * which cannot save a digest's state (see hash.h). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "err.h"
#include "hex.h"
#include "banned.h"

struct cu_sha256 {
  SHA256_CTX ctx;
  uint64_t count;
};

#define SAVE_MAGIC 0x43534831u /* "CSH1" */

cu_sha256 *cu_sha256_new(void) {
  cu_sha256 *h = cu_xcalloc(1, sizeof *h);
  SHA256_Init(&h->ctx);
  return h;
}

void cu_sha256_free(cu_sha256 *h) { free(h); }

void cu_sha256_update(cu_sha256 *h, const void *data, size_t n) {
  SHA256_Update(&h->ctx, data, n);
  h->count += n;
}

void cu_sha256_final(cu_sha256 *h, unsigned char out[32]) { SHA256_Final(out, &h->ctx); }

void cu_sha256_copy(cu_sha256 *dst, const cu_sha256 *src) { *dst = *src; }

uint64_t cu_sha256_count(const cu_sha256 *h) { return h->count; }

/* Saved form: magic, struct size, the struct, the byte count, and the
 * first 8 bytes of a SHA-256 over all that, so a damaged state (which
 * would give a wrong digest, and so a wrongly named object) is refused. */
#define SAVE_BODY (8 + sizeof(SHA256_CTX) + 8)
#define SAVE_LEN (SAVE_BODY + 8)

int cu_sha256_save(const cu_sha256 *h, cu_buf *out) {
  unsigned char raw[SAVE_LEN], check[32];
  uint32_t magic = SAVE_MAGIC, size = sizeof(SHA256_CTX);
  memcpy(raw, &magic, 4);
  memcpy(raw + 4, &size, 4);
  memcpy(raw + 8, &h->ctx, sizeof h->ctx);
  memcpy(raw + 8 + sizeof h->ctx, &h->count, 8);
  SHA256(raw, SAVE_BODY, check);
  memcpy(raw + SAVE_BODY, check, 8);
  return cu_b64_encode(raw, sizeof raw, out);
}

int cu_sha256_load(cu_sha256 *h, const char *saved) {
  cu_buf raw = CU_BUF_INIT(1024);
  int rc = cu_b64_decode(saved, strlen(saved), &raw);
  if (rc) goto done;
  uint32_t magic, size;
  unsigned char check[32];
  if (raw.len != SAVE_LEN) goto bad;
  SHA256((unsigned char *)raw.data, SAVE_BODY, check);
  if (memcmp(check, raw.data + SAVE_BODY, 8)) goto bad;
  memcpy(&magic, raw.data, 4);
  memcpy(&size, raw.data + 4, 4);
  if (magic != SAVE_MAGIC || size != sizeof(SHA256_CTX)) goto bad;
  memcpy(&h->ctx, raw.data + 8, sizeof h->ctx);
  memcpy(&h->count, raw.data + 8 + sizeof h->ctx, 8);
  /* The state must describe exactly count bytes, or it is not ours. */
  uint64_t bits = ((uint64_t)h->ctx.Nh << 32) | h->ctx.Nl;
  if (bits != h->count * 8 || h->ctx.num != h->count % 64 || h->ctx.md_len != 32) goto bad;
  goto done;
bad:
  rc = cu_error(CU_ECORRUPT, "saved hash state does not match this build");
done:
  cu_buf_release(&raw);
  return rc;
}

void cu_sha256_raw(const void *data, size_t n, unsigned char out[32]) {
  SHA256(data, n, out);
}

void cu_sha256_hex(const void *data, size_t n, char out[65]) {
  unsigned char d[32];
  SHA256(data, n, d);
  cu_hex_encode(d, 32, out);
}

int cu_sha256_file(const char *path, char out[65], uint64_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cu_error_errno(cu_errno_code(errno), errno, "cannot open %s", path);
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = cu_xmalloc(CHUNK);
  cu_sha256 *h = cu_sha256_new();
  int rc = 0;
  for (;;) {
    ssize_t n = read(fd, buf, CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = cu_error_errno(CU_EIO, errno, "cannot read %s", path);
      break;
    }
    if (n == 0) break;
    cu_sha256_update(h, buf, (size_t)n);
  }
  if (!rc) {
    unsigned char d[32];
    if (size) *size = h->count;
    cu_sha256_final(h, d);
    cu_hex_encode(d, 32, out);
  }
  cu_sha256_free(h);
  free(buf);
  close(fd);
  return rc;
}

struct cu_digest {
  EVP_MD_CTX *ctx;
};

int cu_digest_new(cu_digest **out, const char *name) {
  const EVP_MD *md = NULL;
  if (!strcmp(name, "sha1")) md = EVP_sha1();
  else if (!strcmp(name, "sha256")) md = EVP_sha256();
  else return cu_error(CU_EUNSUPPORTED, "checksum algorithm '%.32s' is not supported (use sha1 or sha256)", name);
  cu_digest *d = cu_xcalloc(1, sizeof *d);
  d->ctx = EVP_MD_CTX_new();
  if (!d->ctx || EVP_DigestInit_ex(d->ctx, md, NULL) != 1) {
    EVP_MD_CTX_free(d->ctx);
    free(d);
    return cu_error(CU_EIO, "cannot initialise %s", name);
  }
  *out = d;
  return 0;
}

void cu_digest_update(cu_digest *d, const void *data, size_t n) { EVP_DigestUpdate(d->ctx, data, n); }

size_t cu_digest_final(cu_digest *d, unsigned char out[64]) {
  unsigned int n = 0;
  EVP_DigestFinal_ex(d->ctx, out, &n);
  return n;
}

void cu_digest_free(cu_digest *d) {
  if (!d) return;
  EVP_MD_CTX_free(d->ctx);
  free(d);
}
