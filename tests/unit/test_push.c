/* The push client's local parts: listing a directory, the state directory,
 * fingerprints and done-markers, and the errors push_file gives before or
 * without a server. The protocol itself is tested against the real server
 * by tests/integration/t30*. Files live in a temporary directory under
 * $CUSTOS_TEST_TMP (else /tmp), removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "hex.h"
#include "push.h"
#include "timeu.h"
#include "banned.h"

static char tmpdir[1024];

/* tmpdir/name in a rotating set of buffers, so a few can be live at once. */
static const char *fx(const char *name) {
  static char bufs[8][PATH_MAX];
  static unsigned next;
  char *b = bufs[next++ % 8];
  snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
  return b;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static int group_teardown(void **state) {
  if (tmpdir[0] && test_rmtree(tmpdir) != 0) return -1;
  return 0;
}

static int group_setup(void **state) {
  const char *base = getenv("CUSTOS_TEST_TMP");
  if (!base || !*base) base = "/tmp";
  mkdir(base, 0700);
  snprintf(tmpdir, sizeof tmpdir, "%s/custos-push-XXXXXX", base);
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "cannot make a temporary directory under %s: %s\n", base, strerror(errno));
    tmpdir[0] = '\0';
    return -1;
  }
  return 0;
}

/* A client for a server that is not there (port 1 refuses at once). */
static push_client *open_client(const char *state, int retries, volatile sig_atomic_t *stop) {
  push_opts o = {.server = "http://127.0.0.1:1/",
                 .token = "t",
                 .state_dir = state,
                 .retries = retries,
                 .stop = stop};
  push_client *p = NULL;
  int rc = push_open(&p, &o);
  if (rc) fail_msg("push_open: %s", cu_errmsg());
  return p;
}

static void test_push_push__list_is_sorted_recursive_and_skips_dots_and_links(void **state) {
  assert_int_equal(mkdir(fx("card"), 0700), 0);
  assert_int_equal(mkdir(fx("card/a"), 0700), 0);
  assert_int_equal(mkdir(fx("card/.hidden"), 0700), 0);
  assert_int_equal(mkdir(fx("card/empty"), 0700), 0);
  write_file(fx("card/a.txt"), "1");
  write_file(fx("card/a/b"), "2");
  write_file(fx("card/a-c"), "3");
  write_file(fx("card/.dot"), "4");
  write_file(fx("card/.hidden/x"), "5");
  assert_int_equal(symlink("a.txt", fx("card/link")), 0);
  assert_int_equal(mkfifo(fx("card/fifo"), 0600), 0);

  char **v = NULL;
  size_t n = 0;
  assert_int_equal(push_list_files(fx("card"), &v, &n), 0);
  assert_int_equal(n, 3);
  /* Bytewise: '-' < '.' < '/'. */
  assert_string_equal(v[0], fx("card/a-c"));
  assert_string_equal(v[1], fx("card/a.txt"));
  assert_string_equal(v[2], fx("card/a/b"));
  push_list_free(v, n);

  /* A trailing slash does not double. */
  assert_int_equal(push_list_files(fx("card/a/"), &v, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(v[0], fx("card/a/b"));
  push_list_free(v, n);

  assert_int_equal(push_list_files(fx("card/empty"), &v, &n), 0);
  assert_int_equal(n, 0);
  push_list_free(v, n);

  assert_int_equal(push_list_files(fx("no-such-dir"), &v, &n), CU_ENOTFOUND);
}

static void test_push_push__default_state_dir_follows_xdg(void **state) {
  char *old_xdg = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;
  char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  char *d = NULL;
  setenv("XDG_STATE_HOME", "/var/x", 1);
  assert_int_equal(push_default_state_dir(&d), 0);
  assert_string_equal(d, "/var/x/custos");
  free(d);
  setenv("XDG_STATE_HOME", "relative/ignored", 1);
  setenv("HOME", "/home/rec", 1);
  assert_int_equal(push_default_state_dir(&d), 0);
  assert_string_equal(d, "/home/rec/.local/state/custos");
  free(d);
  unsetenv("XDG_STATE_HOME");
  unsetenv("HOME");
  assert_int_equal(push_default_state_dir(&d), CU_EINVAL);
  if (old_xdg) setenv("XDG_STATE_HOME", old_xdg, 1);
  if (old_home) setenv("HOME", old_home, 1);
  free(old_xdg);
  free(old_home);
}

static void test_push_push__state_dir_is_private(void **state) {
  mode_t old = umask(0);
  push_client *p = open_client(fx("st-private/deeper"), 1, NULL);
  umask(old);
  struct stat st;
  const char *dirs[] = {"st-private/deeper", "st-private/deeper/uploads", "st-private/deeper/done"};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(stat(fx(dirs[i]), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
  }
  push_free(p);
  push_free(NULL);
}

static void test_push_push__fingerprint_follows_path_size_time_and_server(void **state) {
  push_client *p = open_client(fx("st-fp"), 1, NULL);
  write_file(fx("fp.bin"), "hello");
  push_result a, b;
  assert_int_equal(push_done_lookup(p, fx("fp.bin"), &a), CU_ENOTFOUND);
  assert_int_equal(strlen(a.fingerprint), 64);
  assert_true(cu_is_sha256_hex(a.fingerprint));
  assert_int_equal(push_done_lookup(p, fx("fp.bin"), &b), CU_ENOTFOUND);
  assert_string_equal(a.fingerprint, b.fingerprint);

  /* Another mtime (same bytes) is another fingerprint. */
  struct timespec ts[2] = {{1000000000, 5}, {1000000000, 5}};
  assert_int_equal(utimensat(AT_FDCWD, fx("fp.bin"), ts, 0), 0);
  assert_int_equal(push_done_lookup(p, fx("fp.bin"), &b), CU_ENOTFOUND);
  assert_string_not_equal(a.fingerprint, b.fingerprint);
  push_result c;
  ts[1].tv_nsec = 6; /* one nanosecond later */
  assert_int_equal(utimensat(AT_FDCWD, fx("fp.bin"), ts, 0), 0);
  assert_int_equal(push_done_lookup(p, fx("fp.bin"), &c), CU_ENOTFOUND);
  assert_string_not_equal(b.fingerprint, c.fingerprint);

  /* Same file, other server. */
  push_opts o = {.server = "http://127.0.0.1:2", .token = "t", .state_dir = fx("st-fp")};
  push_client *q = NULL;
  assert_int_equal(push_open(&q, &o), 0);
  push_result d;
  assert_int_equal(push_done_lookup(q, fx("fp.bin"), &d), CU_ENOTFOUND);
  assert_string_not_equal(c.fingerprint, d.fingerprint);
  push_free(q);

  assert_int_equal(push_done_lookup(p, fx("no-such-file"), &d), CU_ENOTFOUND);
  push_free(p);
}

static void test_push_push__done_marker_is_read_back(void **state) {
  push_client *p = open_client(fx("st-done"), 1, NULL);
  write_file(fx("done.bin"), "recorded");
  push_result r;
  assert_int_equal(push_done_lookup(p, fx("done.bin"), &r), CU_ENOTFOUND);
  char *marker = NULL;
  const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const char *eid = "01a21e6c-0c41-7381-aaf0-3b6d1306a720";
  if (asprintf(&marker, "%s/done/%s.json", fx("st-done"), r.fingerprint) < 0) fail();
  char *json = NULL;
  if (asprintf(&json, "{\"evidence_id\":\"%s\",\"sha256\":\"%s\"}\n", eid, sha) < 0) fail();
  write_file(marker, json);
  assert_int_equal(push_done_lookup(p, fx("done.bin"), &r), 0);
  assert_string_equal(r.evidence_id, eid);
  assert_string_equal(r.sha256, sha);
  /* A marker that is not ours is an error, not a pass. */
  write_file(marker, "{\"evidence_id\":\"x\"}");
  assert_int_equal(push_done_lookup(p, fx("done.bin"), &r), CU_ECORRUPT);
  free(json);
  free(marker);
  push_free(p);
}

static void test_push_push__local_errors_come_before_the_network(void **state) {
  push_client *p = open_client(fx("st-local"), 1, NULL);
  push_result r;
  assert_int_equal(push_file(p, fx("no-such-file"), &r), CU_ENOTFOUND);
  assert_false(push_error_is_transient(CU_ENOTFOUND));
  assert_int_equal(mkdir(fx("a-dir"), 0700), 0);
  assert_int_equal(push_file(p, fx("a-dir"), &r), CU_EINVAL);
  push_free(p);
}

static void test_push_push__unreachable_server_is_transient_after_retries(void **state) {
  push_client *p = open_client(fx("st-net"), 1, NULL);
  write_file(fx("net.bin"), "bytes");
  push_result r;
  int64_t t0 = cu_mono_us();
  int rc = push_file(p, fx("net.bin"), &r);
  int64_t took = cu_mono_us() - t0;
  assert_int_equal(rc, CU_EIO);
  assert_true(push_error_is_transient(rc));
  assert_non_null(strstr(cu_errmsg(), "gave up after 2 attempts"));
  assert_true(took >= 300000); /* one pause of 0.5 s +-25% */
  assert_true(took < 5000000);
  assert_false(r.stopped);
  /* The hash is known even though nothing was sent. */
  assert_string_equal(r.sha256, "277089d91c0bdf4f2e6862ba7e4a07605119431f5d13f726dd352b06f1b206a9");
  assert_int_equal(r.size, 5);
  push_free(p);
}

static void test_push_push__stop_flag_parks_at_once(void **state) {
  volatile sig_atomic_t stop = 1;
  push_client *p = open_client(fx("st-stop"), 0, &stop); /* 0: would retry forever */
  write_file(fx("stop.bin"), "bytes");
  push_result r;
  int64_t t0 = cu_mono_us();
  int rc = push_file(p, fx("stop.bin"), &r);
  assert_int_not_equal(rc, 0);
  assert_true(r.stopped);
  assert_true(cu_mono_us() - t0 < 2000000);
  push_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_push_push__list_is_sorted_recursive_and_skips_dots_and_links),
      cmocka_unit_test(test_push_push__default_state_dir_follows_xdg),
      cmocka_unit_test(test_push_push__state_dir_is_private),
      cmocka_unit_test(test_push_push__fingerprint_follows_path_size_time_and_server),
      cmocka_unit_test(test_push_push__done_marker_is_read_back),
      cmocka_unit_test(test_push_push__local_errors_come_before_the_network),
      cmocka_unit_test(test_push_push__unreachable_server_is_transient_after_retries),
      cmocka_unit_test(test_push_push__stop_flag_parks_at_once),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
