/* Unit tests for ingest/spool: hashing, O_DIRECT buffering with unaligned
 * resumes, checkpoints, rollback and recovery of the hash state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "spool.h"
#include "test_util.h"

#define N (5 * 1024 * 1024 + 12345) /* several buffers and an odd tail */

typedef struct {
  char *dir, *path;
  unsigned char *data;
  char sha[65];
} fixture;

static int setup(void **state) {
  fixture *f = cu_xcalloc(1, sizeof *f);
  f->dir = test_tmpdir("spool");
  assert_non_null(f->dir);
  f->path = cu_path_join(f->dir, "u.part");
  f->data = cu_xmalloc(N);
  uint32_t x = 12345;
  for (size_t i = 0; i < N; i++) {
    x = x * 1103515245 + 12345;
    f->data[i] = (unsigned char)(x >> 16);
  }
  cu_sha256_hex(f->data, N, f->sha);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = test_rmtree(f->dir);
  free(f->data);
  free(f->path);
  free(f->dir);
  free(f);
  return rc;
}

static void file_is(const fixture *f, size_t n) {
  struct stat sb;
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal((size_t)sb.st_size, n);
  FILE *fp = fopen(f->path, "rb");
  unsigned char *got = cu_xmalloc(n + 1);
  assert_int_equal(fread(got, 1, n, fp), n);
  fclose(fp);
  assert_memory_equal(got, f->data, n);
  free(got);
}

/* Writes [from, to) in irregular pieces. */
static void write_range(spool *sp, const fixture *f, size_t from, size_t to) {
  size_t step = 1;
  for (size_t at = from; at < to;) {
    size_t k = step < to - at ? step : to - at;
    assert_int_equal(spool_write(sp, f->data + at, k), 0);
    at += k;
    step = step * 3 + 7;
    if (step > 700000) step = 13;
  }
}

static void test_spool__whole_file_in_pieces(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(&sp, f->path, 0, NULL, NULL), 0);
  write_range(sp, f, 0, N);
  assert_int_equal(spool_offset(sp), N);
  uint64_t off;
  assert_int_equal(spool_sync(sp, &off, NULL), 0);
  assert_int_equal(off, N);
  char hex[65];
  spool_digest(sp, hex);
  assert_string_equal(hex, f->sha);
  spool_close(sp);
  file_is(f, N);
}

static void test_spool__resume_at_unaligned_offsets(void **state) {
  fixture *f = *state;
  size_t cuts[] = {0, 1000, 4096, 1048577, 3000001, N};
  cu_buf hs = CU_BUF_INIT(4096);
  for (size_t i = 0; i + 1 < sizeof cuts / sizeof *cuts; i++) {
    spool *sp = NULL;
    assert_int_equal(spool_open(&sp, f->path, cuts[i], i ? hs.data : NULL, NULL), 0);
    write_range(sp, f, cuts[i], cuts[i + 1]);
    uint64_t off;
    cu_buf_reset(&hs);
    assert_int_equal(spool_sync(sp, &off, &hs), 0);
    assert_int_equal(off, cuts[i + 1]);
    spool_close(sp);
    file_is(f, cuts[i + 1]);
  }
  spool *sp = NULL;
  assert_int_equal(spool_open(&sp, f->path, N, hs.data, NULL), 0);
  char hex[65];
  spool_digest(sp, hex);
  assert_string_equal(hex, f->sha);
  spool_close(sp);
  cu_buf_release(&hs);
}

static void test_spool__bytes_past_durable_offset_are_cut(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(&sp, f->path, 0, NULL, NULL), 0);
  write_range(sp, f, 0, 300000);
  uint64_t off;
  assert_int_equal(spool_sync(sp, &off, NULL), 0);
  spool_close(sp);
  /* A crash left bytes that were never acknowledged. */
  FILE *fp = fopen(f->path, "ab");
  fputs("garbage after the durable offset", fp);
  fclose(fp);
  /* No saved hash state: the prefix is re-hashed from the file. */
  assert_int_equal(spool_open(&sp, f->path, 300000, NULL, NULL), 0);
  write_range(sp, f, 300000, N);
  assert_int_equal(spool_sync(sp, &off, NULL), 0);
  char hex[65];
  spool_digest(sp, hex);
  assert_string_equal(hex, f->sha);
  spool_close(sp);
  file_is(f, N);
  /* A spool shorter than its recorded offset is corruption, not a resume. */
  assert_int_equal(spool_open(&sp, f->path, N + 1, NULL, NULL), CU_ECORRUPT);
}

static void test_spool__rollback_discards_the_request(void **state) {
  fixture *f = *state;
  spool *sp = NULL;
  assert_int_equal(spool_open(&sp, f->path, 0, NULL, NULL), 0);
  write_range(sp, f, 0, 10000);
  uint64_t off;
  assert_int_equal(spool_sync(sp, &off, NULL), 0);
  /* A chunk that will be refused (say its checksum failed): other bytes. */
  unsigned char *junk = cu_xcalloc(1, 3 * 1024 * 1024);
  assert_int_equal(spool_write(sp, junk, 3 * 1024 * 1024), 0);
  free(junk);
  assert_int_equal(spool_rollback(sp), 0);
  assert_int_equal(spool_offset(sp), 10000);
  write_range(sp, f, 10000, N);
  assert_int_equal(spool_sync(sp, &off, NULL), 0);
  char hex[65];
  spool_digest(sp, hex);
  assert_string_equal(hex, f->sha);
  spool_close(sp);
  file_is(f, N);
}

typedef struct {
  int calls;
  uint64_t last;
  char state[512];
} ckpt;

static int on_ckpt(void *ud, uint64_t offset, const char *hash_state) {
  ckpt *c = ud;
  c->calls++;
  c->last = offset;
  snprintf(c->state, sizeof c->state, "%s", hash_state);
  return 0;
}

static void test_spool__checkpoints_are_resumable(void **state) {
  fixture *f = *state;
  ckpt c = {0};
  spool_opts o = {.checkpoint_every = 2 * 1024 * 1024, .checkpoint = on_ckpt, .ud = &c};
  spool *sp = NULL;
  assert_int_equal(spool_open(&sp, f->path, 0, NULL, &o), 0);
  write_range(sp, f, 0, N);
  spool_close(sp); /* a crash: no final sync */
  assert_true(c.calls >= 2);
  assert_true(c.last >= 2 * 1024 * 1024 && c.last < N);
  /* Resume from the last checkpoint as tus would after a restart. */
  assert_int_equal(spool_open(&sp, f->path, c.last, c.state, NULL), 0);
  write_range(sp, f, c.last, N);
  uint64_t off;
  assert_int_equal(spool_sync(sp, &off, NULL), 0);
  char hex[65];
  spool_digest(sp, hex);
  assert_string_equal(hex, f->sha);
  spool_close(sp);
  file_is(f, N);
}

static void test_spool__reserve_refuses_with_enospc(void **state) {
  fixture *f = *state;
  spool_opts o = {.reserve_bytes = INT64_MAX / 2};
  spool *sp = NULL;
  assert_int_equal(spool_open(&sp, f->path, 0, NULL, &o), 0);
  int rc = 0;
  for (size_t at = 0; at < N && !rc; at += 65536) rc = spool_write(sp, f->data + at, 65536);
  uint64_t off;
  if (!rc) rc = spool_sync(sp, &off, NULL);
  assert_int_equal(rc, CU_ENOSPC);
  assert_int_equal(spool_rollback(sp), 0);
  assert_int_equal(spool_offset(sp), 0);
  spool_close(sp);
  file_is(f, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_spool__whole_file_in_pieces, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spool__resume_at_unaligned_offsets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spool__bytes_past_durable_offset_are_cut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spool__rollback_discards_the_request, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spool__checkpoints_are_resumable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spool__reserve_refuses_with_enospc, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
