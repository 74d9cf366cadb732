#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "log.h"
#include "banned.h"

struct store {
  char *root;
};

int store_open(store **out, const char *root) {
  int rc = cu_mkdirs(root, 0755);
  if (rc) return rc;
  store *st = cu_xcalloc(1, sizeof *st);
  st->root = cu_xstrdup(root);
  *out = st;
  return 0;
}

void store_free(store *st) {
  if (!st) return;
  free(st->root);
  free(st);
}

char *store_path(store *st, const char *sha) {
  return cu_xasprintf("%s/sha256/%.2s/%.2s/%s", st->root, sha, sha + 2, sha);
}

static char *fanout_dir(store *st, const char *sha) {
  return cu_xasprintf("%s/sha256/%.2s/%.2s", st->root, sha, sha + 2);
}

bool store_has(store *st, const char *sha) {
  if (!cu_is_sha256_hex(sha)) return false;
  char *p = store_path(st, sha);
  struct stat sb;
  bool ok = stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
  free(p);
  return ok;
}

int store_open_object(store *st, const char *sha, int *fd, uint64_t *size) {
  if (!cu_is_sha256_hex(sha)) return cu_error(CU_EINVAL, "not a SHA-256: %.80s", sha);
  char *p = store_path(st, sha);
  int rc = 0;
  int f = open(p, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (f < 0) {
    rc = errno == ENOENT ? cu_error(CU_ENOTFOUND, "object %s is missing from the store", sha)
                         : cu_error_errno(CU_EIO, errno, "cannot open object %s", sha);
  } else if (fstat(f, &sb) < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot stat object %s", sha);
    close(f);
  } else {
    *fd = f;
    *size = (uint64_t)sb.st_size;
  }
  free(p);
  return rc;
}

/* The object exists: keep it if it is intact, else put the new copy in
 * its place. Either way the caller's spool file is consumed. */
static int compare_existing(const char *path, const char *dir, const char *spool_path,
                            const char *sha, uint64_t size, bool *deduped) {
  char have[65];
  uint64_t have_size = 0;
  int rc = cu_sha256_file(path, have, &have_size);
  if (rc && rc != CU_ENOTFOUND) return rc;
  if (!rc && have_size == size && !strcmp(have, sha)) {
    unlink(spool_path);
    *deduped = true;
    return 0;
  }
  cu_alarm("object %s in the store is damaged (hashes to %s, %llu bytes); replacing it with the "
           "copy just received",
           sha, rc ? "nothing: missing" : have, (unsigned long long)have_size);
  if (rename(spool_path, path) < 0)
    return cu_error_errno(CU_EIO, errno, "cannot replace damaged object %s", sha);
  *deduped = false;
  return cu_fsync_dir(dir);
}

int store_commit(store *st, const char *spool_path, const char *sha, uint64_t size,
                 bool *deduped) {
  if (!cu_is_sha256_hex(sha)) return cu_error(CU_EINVAL, "not a SHA-256: %.80s", sha);
  char *dir = fanout_dir(st, sha), *path = store_path(st, sha);
  int fd = -1, rc = cu_mkdirs(dir, 0755);
  if (rc) goto done;
  fd = open(spool_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot open spool file %s", spool_path);
    goto done;
  }
  struct stat sb;
  if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size != size) {
    rc = cu_error(CU_ECORRUPT, "spool file %s has %lld bytes, expected %llu", spool_path,
                  (long long)sb.st_size, (unsigned long long)size);
    goto done;
  }
  if (fchmod(fd, 0444) < 0 || fsync(fd) < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot seal spool file %s", spool_path);
    goto done;
  }
  /* link() never replaces: if the name exists, someone stored these bytes
   * (or claims to) before us. */
  if (link(spool_path, path) == 0) {
    if ((rc = cu_fsync_dir(dir))) goto done;
    unlink(spool_path);
    *deduped = false;
  } else if (errno == EEXIST) {
    rc = compare_existing(path, dir, spool_path, sha, size, deduped);
  } else {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot store object %s", sha);
  }
done:
  if (fd >= 0) close(fd);
  free(dir);
  free(path);
  return rc;
}

int store_remove(store *st, const char *sha) {
  if (!cu_is_sha256_hex(sha)) return cu_error(CU_EINVAL, "not a SHA-256: %.70s", sha);
  char *p = store_path(st, sha), *dir = cu_xasprintf("%s/sha256/%.2s/%.2s", st->root, sha, sha + 2);
  int rc = 0;
  if (unlink(p) < 0 && errno != ENOENT) rc = cu_error_errno(CU_EIO, errno, "cannot remove object %s", sha);
  if (!rc) rc = cu_fsync_dir(dir);
  free(p);
  free(dir);
  return rc;
}
