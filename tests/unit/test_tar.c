/* Unit tests for archive/tar: the layout agrees with GNU tar's own reading
 * of the stream (block numbers, names, sizes), any range read alone is the
 * same bytes as the whole stream, GNU tar extracts it, and the extractor
 * takes our tars and GNU's but refuses paths that climb out, absolute
 * paths, links and other surprises. GNU tar (the CLI) must be installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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
#include "tar.h"
#include "test_util.h"

typedef struct {
  char *dir; /* the test's temporary directory */
  char *bag; /* dir/src/bag: the tree laid out */
} fixture;

static void put(const char *path, size_t n, unsigned seed) {
  char *buf = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++)
    buf[i] = (char)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
  assert_int_equal(cu_write_file_durable(path, buf, n, 0644, 0), 0);
  free(buf);
}

static char *pj(const char *a, const char *b) {
  return cu_xasprintf("%s/%s", a, b);
}

static int setup(void **state) {
  fixture *f = cu_xcalloc(1, sizeof *f);
  f->dir = test_tmpdir("tar");
  assert_non_null(f->dir);
  char *src = pj(f->dir, "src");
  f->bag = pj(src, "bag");
  assert_int_equal(cu_mkdirs(f->bag, 0755), 0);
  static const struct {
    const char *name;
    size_t size;
  } files[] = {
      {"bagit.txt", 55},         {"empty", 0},
      {"data/a/one-block", 512}, {"data/a/just-under", 511},
      {"data/a/just-over", 513}, {"data/b/big.bin", 300000},
      {"data/b/Z-upper", 3},     {"custody/x/events.jsonl", 1000},
  };
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char *p = pj(f->bag, files[i].name);
    char *d = cu_xstrdup(p);
    *strrchr(d, '/') = '\0';
    assert_int_equal(cu_mkdirs(d, 0755), 0);
    put(p, files[i].size, (unsigned)i);
    free(d);
    free(p);
  }
  /* A name of exactly 100 bytes, a path that needs the ustar prefix, and
   * one too long for ustar (a PAX header). */
  char name100[101];
  memset(name100, 'n', 100);
  name100[100] = '\0';
  char *p = cu_xasprintf("%s/data/%s", f->bag, name100);
  put(p, 10, 9);
  free(p);
  char deep[400];
  snprintf(deep, sizeof deep, "%s/data/%s/%s", f->bag,
           "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
           "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
  assert_int_equal(cu_mkdirs(deep, 0755), 0);
  p = pj(deep,
         "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff.mp4");
  put(p, 2000, 11);
  free(p);
  char lng[1024];
  snprintf(lng, sizeof lng, "%s/data/%0200d", f->bag, 0);
  assert_int_equal(cu_mkdirs(lng, 0755), 0);
  p = cu_xasprintf("%s/%0150d.txt", lng, 7);
  put(p, 700, 12);
  free(p);
  free(src);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = test_rmtree(f->dir);
  free(f->dir);
  free(f->bag);
  free(f);
  return rc;
}

static char *write_tar(fixture *f, tar_layout *l, const char *name) {
  char *path = pj(f->dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(tar_write_all(l, fd), 0);
  close(fd);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal((uint64_t)st.st_size, tar_layout_size(l));
  return path;
}

static void read_file(const char *path, cu_buf *out) {
  cu_buf_reset(out);
  assert_int_equal(cu_read_small_file(path, 64 << 20, out), 0);
}

static void test_tar_layout__offsets_are_gnu_tars_listing(void **state) {
  fixture *f = *state;
  tar_layout *l = NULL;
  assert_int_equal(tar_layout_build(&l, f->bag, "custos-c-1", 1700000000), 0);
  char *tarp = write_tar(f, l, "a.tar");
  char *listing = pj(f->dir, "list.txt");
  char *cmd =
      cu_xasprintf("tar -tvR --full-time --numeric-owner -f '%s' > '%s' 2>&1", tarp, listing);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  FILE *in = fopen(listing, "r");
  assert_non_null(in);
  char line[4096];
  size_t i = 0;
  while (fgets(line, sizeof line, in)) {
    line[strcspn(line, "\n")] = '\0';
    unsigned long long block, size;
    char mode[16], owner[64], date[16], tm[32];
    int used = 0;
    if (sscanf(line, "block %llu: %15s %63s %llu %15s %31s %n", &block, mode, owner, &size, date,
               tm, &used) != 6) {
      if (sscanf(line, "block %llu:", &block) == 1 && strstr(line, "Block of NULs")) {
        assert_int_equal(block * TAR_BLOCK, tar_layout_size(l) - 2 * TAR_BLOCK); /* the end */
        continue;
      }
      fail_msg("unexpected listing line: %s", line);
    }
    assert_true(i < tar_layout_count(l));
    tar_entry e;
    tar_layout_entry(l, i, &e);
    assert_string_equal(line + used, e.path);
    /* GNU names the entry's own ustar header, after any PAX header */
    assert_int_equal(block * TAR_BLOCK, e.data_offset - TAR_BLOCK);
    if (i + 1 < tar_layout_count(l)) {
      tar_entry nx;
      tar_layout_entry(l, i + 1, &nx);
      assert_int_equal(nx.offset, e.data_offset + (e.size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK);
    }
    assert_int_equal(size, e.size);
    assert_string_equal(mode, e.dir ? "drwxr-xr-x" : "-rw-r--r--");
    assert_string_equal(owner, "0/0");
    assert_string_equal(date, "2023-11-14");
    i++;
  }
  fclose(in);
  assert_int_equal(i, tar_layout_count(l));
  /* The first entry is the directory itself; long paths needed PAX. */
  tar_entry e;
  tar_layout_entry(l, 0, &e);
  assert_string_equal(e.path, "custos-c-1/");
  bool pax = false;
  for (size_t k = 0; k < tar_layout_count(l); k++) {
    tar_layout_entry(l, k, &e);
    if (e.data_offset - e.offset > TAR_BLOCK) pax = true;
  }
  assert_true(pax);
  /* GNU tar extracts it to the same files. */
  char *out = pj(f->dir, "gnu-out");
  assert_int_equal(mkdir(out, 0755), 0);
  cmd =
      cu_xasprintf("tar -xf '%s' -C '%s' && diff -r '%s' '%s/custos-c-1'", tarp, out, f->bag, out);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  free(out);
  free(listing);
  free(tarp);
  tar_layout_free(l);
}

static void test_tar_read__any_range_is_the_streams_bytes(void **state) {
  fixture *f = *state;
  tar_layout *l = NULL, *l2 = NULL;
  assert_int_equal(tar_layout_build(&l, f->bag, "bag", 1), 0);
  char *tarp = write_tar(f, l, "b.tar");
  cu_buf whole = CU_BUF_INIT(64 << 20);
  read_file(tarp, &whole);
  assert_int_equal(whole.len, tar_layout_size(l));
  /* A fresh layout reads ranges in any order, of any length. */
  assert_int_equal(tar_layout_build(&l2, f->bag, "bag", 1), 0);
  assert_int_equal(tar_layout_size(l2), whole.len);
  char *buf = malloc(70000);
  unsigned seed = 12345;
  for (int t = 0; t < 3000; t++) {
    seed = seed * 1103515245u + 12345u;
    uint64_t off = (seed >> 3) % (whole.len + 10);
    seed = seed * 1103515245u + 12345u;
    size_t n = t % 7 == 0 ? 1 : (seed >> 5) % 70000;
    ssize_t got = tar_read(l2, off, buf, n);
    assert_true(got >= 0);
    uint64_t want = off >= whole.len ? 0 : whole.len - off < n ? whole.len - off : n;
    assert_int_equal((uint64_t)got, want);
    if (got) assert_memory_equal(buf, whole.data + off, (size_t)got);
  }
  /* Every block boundary, read one byte before and after. */
  for (uint64_t off = TAR_BLOCK - 1; off + 2 <= whole.len; off += TAR_BLOCK) {
    assert_int_equal(tar_read(l2, off, buf, 2), 2);
    assert_memory_equal(buf, whole.data + off, 2);
  }
  /* The same directory, name and time: the same bytes. */
  tar_layout *l3 = NULL;
  assert_int_equal(tar_layout_build(&l3, f->bag, "bag", 1), 0);
  char *again = write_tar(f, l3, "c.tar");
  cu_buf second = CU_BUF_INIT(64 << 20);
  read_file(again, &second);
  assert_int_equal(second.len, whole.len);
  assert_memory_equal(second.data, whole.data, whole.len);
  /* A file that changed size since the layout: refused, not read short. */
  char *victim = pj(f->bag, "data/b/big.bin");
  put(victim, 100, 1);
  tar_entry e;
  for (size_t k = 0; k < tar_layout_count(l3); k++) {
    tar_layout_entry(l3, k, &e);
    if (strstr(e.path, "big.bin")) break;
  }
  assert_int_equal(tar_read(l3, e.data_offset, buf, 10), CU_ECORRUPT);
  put(victim, 300000, 5);
  free(victim);
  free(again);
  cu_buf_release(&second);
  tar_layout_free(l3);
  free(buf);
  cu_buf_release(&whole);
  free(tarp);
  tar_layout_free(l);
  tar_layout_free(l2);
}

static void test_tar_layout__big_file_gets_a_pax_size(void **state) {
  fixture *f = *state;
  char *dir = pj(f->dir, "bigtree");
  assert_int_equal(mkdir(dir, 0755), 0);
  char *p = pj(dir, "huge");
  int fd = open(p, O_WRONLY | O_CREAT, 0644);
  assert_true(fd >= 0);
  uint64_t size = 077777777777ULL + 2; /* one past what 11 octal digits hold, sparse */
  assert_int_equal(ftruncate(fd, (off_t)size), 0);
  close(fd);
  tar_layout *l = NULL;
  assert_int_equal(tar_layout_build(&l, dir, "b", 0), 0);
  tar_entry e;
  tar_layout_entry(l, 1, &e);
  assert_int_equal(e.size, size);
  assert_int_equal(e.data_offset - e.offset, 3 * TAR_BLOCK);
  char hdr[3 * TAR_BLOCK];
  assert_int_equal(tar_read(l, e.offset, hdr, sizeof hdr), (ssize_t)sizeof hdr);
  assert_int_equal(hdr[156], 'x');
  assert_non_null(strstr(hdr + TAR_BLOCK, "size=8589934593\n"));
  assert_int_equal(tar_layout_size(l),
                   e.data_offset + size + (TAR_BLOCK - size % TAR_BLOCK) + 2 * TAR_BLOCK);
  /* The last bytes: the end of the data, padding, two zero blocks. */
  char tail[4];
  assert_int_equal(tar_read(l, e.data_offset + size - 2, tail, 4), 4);
  assert_memory_equal(tail, "\0\0\0\0", 4);
  tar_layout_free(l);
  free(p);
  free(dir);
}

static void test_tar_extract__ours_and_gnus(void **state) {
  fixture *f = *state;
  tar_layout *l = NULL;
  assert_int_equal(tar_layout_build(&l, f->bag, "custos-c-2", 1700000000), 0);
  char *tarp = write_tar(f, l, "ours.tar");
  tar_layout_free(l);
  char *out = pj(f->dir, "x1");
  assert_int_equal(mkdir(out, 0755), 0);
  char *top = NULL;
  assert_int_equal(tar_extract_file(tarp, out, NULL, &top), 0);
  assert_string_equal(top, "custos-c-2");
  char *cmd = cu_xasprintf("diff -r '%s' '%s/custos-c-2'", f->bag, out);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  /* Not twice into the same place. */
  assert_int_equal(tar_extract_file(tarp, out, NULL, NULL), CU_EEXISTS);
  free(top);
  /* GNU tar's own formats (gnu: 'L' long names; posix: PAX). */
  static const char *const fmts[] = {"gnu", "posix", "ustar"};
  for (int i = 0; i < 3; i++) {
    char *t = cu_xasprintf("%s/g-%s.tar", f->dir, fmts[i]);
    /* ustar cannot hold the long names: leave them out of that one */
    cmd = cu_xasprintf("tar --format=%s %s -cf '%s' -C '%s/src' bag", fmts[i],
                       i == 2 ? "--exclude='000*' --exclude='ddd*'" : "", t, f->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    char *o = cu_xasprintf("%s/xg%d", f->dir, i);
    assert_int_equal(mkdir(o, 0755), 0);
    assert_int_equal(tar_extract_file(t, o, NULL, &top), 0);
    assert_string_equal(top, "bag");
    free(top);
    if (i < 2) {
      cmd = cu_xasprintf("diff -r '%s' '%s/bag'", f->bag, o);
      assert_int_equal(system(cmd), 0);
      free(cmd);
    }
    free(o);
    free(t);
  }
  free(out);
  free(tarp);
}

/* ---- hostile tars ---------------------------------------------------------- */

static void hdr(cu_buf *t, const char *name, char type, size_t size, const char *linkname) {
  char b[TAR_BLOCK] = {0};
  snprintf(b, 100, "%s", name);
  snprintf(b + 100, 8, "%07o", type == '5' ? 0755 : 0644);
  snprintf(b + 108, 8, "%07o", 0);
  snprintf(b + 116, 8, "%07o", 0);
  snprintf(b + 124, 12, "%011zo", size);
  snprintf(b + 136, 12, "%011o", 0);
  b[156] = type;
  if (linkname) snprintf(b + 157, 100, "%s", linkname);
  memcpy(b + 257,
         "ustar\0"
         "00",
         8);
  memset(b + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < TAR_BLOCK; i++)
    sum += (unsigned char)b[i];
  snprintf(b + 148, 8, "%06o", sum);
  cu_buf_add(t, b, TAR_BLOCK);
}

static void data(cu_buf *t, const char *s) {
  size_t n = strlen(s);
  cu_buf_add(t, s, n);
  char z[TAR_BLOCK] = {0};
  if (n % TAR_BLOCK) cu_buf_add(t, z, TAR_BLOCK - n % TAR_BLOCK);
}

static void end(cu_buf *t) {
  char z[2 * TAR_BLOCK] = {0};
  cu_buf_add(t, z, sizeof z);
}

/* Extracts the stream in t into a fresh directory; returns the result and
 * checks nothing was left behind on failure. */
static int try_extract(fixture *f, cu_buf *t, const char *label) {
  static int n;
  char *tp = cu_xasprintf("%s/h%d.tar", f->dir, n);
  char *out = cu_xasprintf("%s/h%d", f->dir, n++);
  assert_int_equal(cu_write_file_durable(tp, t->data, t->len, 0644, 0), 0);
  assert_int_equal(mkdir(out, 0755), 0);
  int rc = tar_extract_file(tp, out, NULL, NULL);
  if (rc) {
    char *cmd = cu_xasprintf("test -z \"$(ls -A '%s')\"", out);
    if (system(cmd) != 0) fail_msg("%s: a refused tar left files behind", label);
    free(cmd);
  }
  free(tp);
  free(out);
  cu_buf_reset(t);
  return rc;
}

static void test_tar_extract__refuses_climbing_absolute_links_and_surprises(void **state) {
  fixture *f = *state;
  cu_buf t = CU_BUF_INIT(1 << 20);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "bag/ok.txt", '0', 2, NULL);
  data(&t, "ok");
  end(&t);
  assert_int_equal(try_extract(f, &t, "a good one"), 0);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "bag/../evil", '0', 4, NULL);
  data(&t, "evil");
  end(&t);
  assert_int_equal(try_extract(f, &t, ".."), CU_EINVAL);
  char *evil = pj(f->dir, "evil");
  assert_int_equal(access(evil, F_OK), -1);
  free(evil);

  hdr(&t, "../evil", '0', 4, NULL);
  data(&t, "evil");
  end(&t);
  assert_int_equal(try_extract(f, &t, "leading .."), CU_EINVAL);

  hdr(&t, "/tmp/custos-test-evil", '0', 4, NULL);
  data(&t, "evil");
  end(&t);
  assert_int_equal(try_extract(f, &t, "absolute"), CU_EINVAL);
  assert_int_equal(access("/tmp/custos-test-evil", F_OK), -1);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "bag/link", '2', 0, "/etc/passwd");
  end(&t);
  assert_int_equal(try_extract(f, &t, "symlink"), CU_EINVAL);
  assert_non_null(strstr(cu_errmsg(), "symbolic link"));

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "bag/ok.txt", '0', 2, NULL);
  data(&t, "ok");
  hdr(&t, "bag/hard", '1', 0, "bag/ok.txt");
  end(&t);
  assert_int_equal(try_extract(f, &t, "hard link"), CU_EINVAL);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "bag/dev", '3', 0, NULL);
  end(&t);
  assert_int_equal(try_extract(f, &t, "device"), CU_EINVAL);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "other/x", '0', 1, NULL);
  data(&t, "x");
  end(&t);
  assert_int_equal(try_extract(f, &t, "two top directories"), CU_EINVAL);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "bag/a", '0', 1, NULL);
  data(&t, "a");
  hdr(&t, "bag/a", '0', 1, NULL);
  data(&t, "b");
  end(&t);
  assert_int_equal(try_extract(f, &t, "duplicate"), CU_EINVAL);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "bag/a", '0', 1000, NULL);
  data(&t, "short");
  assert_int_equal(try_extract(f, &t, "truncated"), CU_EINVAL);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "bag/a", '0', 1, NULL);
  data(&t, "a");
  t.data[TAR_BLOCK + 10] ^= 1; /* a byte of the second header's name */
  end(&t);
  assert_int_equal(try_extract(f, &t, "bad checksum"), CU_EINVAL);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "bag/a/../../b", '0', 1, NULL);
  data(&t, "a");
  end(&t);
  assert_int_equal(try_extract(f, &t, "climbing later"), CU_EINVAL);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "PaxHeaders/x", 'x', 24, NULL);
  data(&t, "24 linkpath=/etc/shadow\n");
  hdr(&t, "bag/x", '0', 1, NULL);
  data(&t, "x");
  end(&t);
  assert_int_equal(try_extract(f, &t, "PAX linkpath"), CU_EINVAL);

  hdr(&t, "bag/", '5', 0, NULL);
  hdr(&t, "PaxHeaders/x", 'x', 20, NULL);
  data(&t, "20 path=../../etc/x\n");
  hdr(&t, "bag/x", '0', 1, NULL);
  data(&t, "x");
  end(&t);
  assert_int_equal(try_extract(f, &t, "PAX path climbing"), CU_EINVAL);

  hdr(&t, "bag", '0', 1, NULL);
  data(&t, "x");
  end(&t);
  assert_int_equal(try_extract(f, &t, "a file at the top"), CU_EINVAL);

  end(&t);
  assert_int_equal(try_extract(f, &t, "empty"), CU_EINVAL);

  /* A symlink planted in the destination is not followed. */
  char *out = pj(f->dir, "planted");
  assert_int_equal(mkdir(out, 0755), 0);
  char *ln = pj(out, "bag");
  assert_int_equal(symlink("/tmp", ln), 0);
  hdr(&t, "bag/x", '0', 1, NULL);
  data(&t, "x");
  end(&t);
  char *tp = pj(f->dir, "planted.tar");
  assert_int_equal(cu_write_file_durable(tp, t.data, t.len, 0644, 0), 0);
  assert_int_equal(tar_extract_file(tp, out, NULL, NULL), CU_EEXISTS);
  free(tp);
  free(ln);
  free(out);
  cu_buf_release(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tar_layout__offsets_are_gnu_tars_listing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_tar_read__any_range_is_the_streams_bytes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_tar_layout__big_file_gets_a_pax_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tar_extract__ours_and_gnus, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_tar_extract__refuses_climbing_absolute_links_and_surprises, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
