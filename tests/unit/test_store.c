/* Unit tests for archive/store: write-once, compare-not-replace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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
#include "store.h"
#include "test_util.h"

typedef struct {
  char *dir;
  store *st;
} fixture;

static int setup(void **state) {
  fixture *f = cu_xcalloc(1, sizeof *f);
  f->dir = test_tmpdir("store");
  assert_non_null(f->dir);
  char *objects = cu_path_join(f->dir, "objects");
  assert_int_equal(store_open(&f->st, objects), 0);
  free(objects);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  store_free(f->st);
  int rc = test_rmtree(f->dir);
  free(f->dir);
  free(f);
  return rc;
}

static char *spool(fixture *f, const char *name, const char *content, char sha[65]) {
  char *p = cu_path_join(f->dir, name);
  assert_int_equal(cu_write_file_durable(p, content, strlen(content), 0644, 0), 0);
  cu_sha256_hex(content, strlen(content), sha);
  return p;
}

static void read_all(const char *path, cu_buf *out) {
  cu_buf_reset(out);
  assert_int_equal(cu_read_small_file(path, 1 << 20, out), 0);
}

static void test_store_commit__new_object_is_sealed(void **state) {
  fixture *f = *state;
  char sha[65];
  char *p = spool(f, "a.part", "evidence bytes", sha);
  bool dd = true;
  assert_int_equal(store_commit(f->st, p, sha, 14, &dd), 0);
  assert_false(dd);
  assert_int_equal(access(p, F_OK), -1); /* the spool name is gone */
  char *obj = store_path(f->st, sha);
  char want[512];
  snprintf(want, sizeof want, "%s/objects/sha256/%.2s/%.2s/%s", f->dir, sha, sha + 2, sha);
  assert_string_equal(obj, want);
  struct stat sb;
  assert_int_equal(stat(obj, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0444);
  cu_buf b = CU_BUF_INIT(1 << 20);
  read_all(obj, &b);
  assert_string_equal(b.data, "evidence bytes");
  assert_true(store_has(f->st, sha));
  int fd;
  uint64_t size;
  assert_int_equal(store_open_object(f->st, sha, &fd, &size), 0);
  assert_int_equal(size, 14);
  close(fd);
  cu_buf_release(&b);
  free(obj);
  free(p);
}

static void test_store_commit__duplicate_is_deduplicated(void **state) {
  fixture *f = *state;
  char sha[65];
  char *p1 = spool(f, "1.part", "same", sha), *p2 = spool(f, "2.part", "same", sha);
  bool dd;
  assert_int_equal(store_commit(f->st, p1, sha, 4, &dd), 0);
  assert_false(dd);
  assert_int_equal(store_commit(f->st, p2, sha, 4, &dd), 0);
  assert_true(dd);
  assert_int_equal(access(p2, F_OK), -1);
  free(p1);
  free(p2);
}

static void test_store_commit__damaged_object_is_replaced(void **state) {
  fixture *f = *state;
  char sha[65];
  char *p1 = spool(f, "1.part", "original", sha);
  bool dd;
  assert_int_equal(store_commit(f->st, p1, sha, 8, &dd), 0);
  char *obj = store_path(f->st, sha);
  chmod(obj, 0644);
  FILE *fp = fopen(obj, "r+");
  assert_non_null(fp);
  fputc('X', fp); /* bit rot */
  fclose(fp);
  char *p2 = spool(f, "2.part", "original", sha);
  assert_int_equal(store_commit(f->st, p2, sha, 8, &dd), 0);
  assert_false(dd);
  cu_buf b = CU_BUF_INIT(1 << 20);
  read_all(obj, &b);
  assert_string_equal(b.data, "original");
  struct stat sb;
  assert_int_equal(stat(obj, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0444);
  cu_buf_release(&b);
  free(obj);
  free(p1);
  free(p2);
}

static void test_store_commit__refuses_bad_input(void **state) {
  fixture *f = *state;
  char sha[65];
  char *p = spool(f, "a.part", "12345", sha);
  bool dd;
  assert_int_equal(store_commit(f->st, p, sha, 6, &dd), CU_ECORRUPT); /* wrong size */
  assert_int_equal(store_commit(f->st, p, "../../etc", 5, &dd), CU_EINVAL);
  assert_false(store_has(f->st, sha));
  int fd;
  uint64_t size;
  assert_int_equal(store_open_object(f->st, sha, &fd, &size), CU_ENOTFOUND);
  assert_int_equal(store_open_object(f->st, "zz", &fd, &size), CU_EINVAL);
  char *missing = cu_path_join(f->dir, "missing.part");
  assert_int_equal(store_commit(f->st, missing, sha, 5, &dd), CU_ENOTFOUND);
  free(missing);
  free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_store_commit__new_object_is_sealed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_commit__duplicate_is_deduplicated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_commit__damaged_object_is_replaced, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_commit__refuses_bad_input, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
