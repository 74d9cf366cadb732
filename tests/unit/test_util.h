/* Helpers shared by the unit tests: a temporary directory per test under
 * $CUSTOS_TEST_TMP (else /tmp), removed afterwards. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Makes <base>/<prefix>.XXXXXX; the caller frees the path. NULL on failure. */
static inline char *test_tmpdir(const char *prefix) {
  const char *base = getenv("CUSTOS_TEST_TMP");
  if (!base || !*base) base = "/tmp";
  mkdir(base, 0700); /* ctest's directory may not exist yet */
  size_t n = (size_t)snprintf(NULL, 0, "%s/%s.XXXXXX", base, prefix) + 1;
  char *t = malloc(n);
  if (!t) return NULL;
  snprintf(t, n, "%s/%s.XXXXXX", base, prefix);
  if (!mkdtemp(t)) {
    free(t);
    return NULL;
  }
  return t;
}

static inline int test_rm_entry(const char *path, const struct stat *sb, int flag,
                                struct FTW *ftw) {
  return remove(path);
}

/* rm -rf, without following symbolic links. 0 on success. */
static inline int test_rmtree(const char *dir) {
  return nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
