/* Unit tests for common/: encodings, ids, time, buffers, JSON, hashing and
 * the durable-write helpers. */
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

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "id.h"
#include "json.h"
#include "test_util.h"
#include "timeu.h"

static void test_common_b64__rfc4648_vectors(void **state) {
  static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; i++) {
    cu_buf b = CU_BUF_INIT(64);
    assert_int_equal(cu_b64_encode(plain[i], strlen(plain[i]), &b), 0);
    assert_string_equal(b.data, enc[i]);
    cu_buf_reset(&b);
    assert_int_equal(cu_b64_decode(enc[i], strlen(enc[i]), &b), 0);
    assert_int_equal(b.len, strlen(plain[i]));
    assert_memory_equal(b.data, plain[i], b.len);
    cu_buf_release(&b);
  }
}

static void test_common_b64__rejects_malformed(void **state) {
  static const char *bad[] = {"Zg=", "Zg", "Z===", "Zh==", "Zm9v!A==", "Zm 9v", "Zg==Zg==", "=Zg="};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    cu_buf b = CU_BUF_INIT(64);
    assert_int_equal(cu_b64_decode(bad[i], strlen(bad[i]), &b), CU_EINVAL);
    cu_buf_release(&b);
  }
}

static void test_common_b64__url_roundtrip(void **state) {
  unsigned char raw[256];
  for (int i = 0; i < 256; i++) raw[i] = (unsigned char)(255 - i);
  for (size_t n = 0; n < 40; n++) {
    cu_buf e = CU_BUF_INIT(1024), d = CU_BUF_INIT(1024);
    assert_int_equal(cu_b64url_encode(raw, n, &e), 0);
    assert_null(strpbrk(e.data, "+/="));
    assert_int_equal(cu_b64url_decode(e.data, e.len, &d), 0);
    assert_int_equal(d.len, n);
    assert_memory_equal(d.data, raw, n);
    cu_buf_release(&e);
    cu_buf_release(&d);
  }
}

static void test_common_hex__roundtrip_and_checks(void **state) {
  unsigned char in[3] = {0x00, 0xab, 0xff}, out[3];
  char hex[7];
  cu_hex_encode(in, 3, hex);
  assert_string_equal(hex, "00abff");
  assert_int_equal(cu_hex_decode("00ABff", 6, out, 3), 0);
  assert_memory_equal(in, out, 3);
  assert_int_equal(cu_hex_decode("00abf", 5, out, 3), CU_EINVAL);
  assert_int_equal(cu_hex_decode("00abfg", 6, out, 3), CU_EINVAL);
  assert_true(cu_is_sha256_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  assert_false(cu_is_sha256_hex("E3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  assert_false(cu_is_sha256_hex("e3b0"));
}

static void test_common_id__uuidv7_shape_and_order(void **state) {
  char a[CU_ID_LEN + 1], b[CU_ID_LEN + 1];
  cu_id_new(a);
  usleep(2000);
  cu_id_new(b);
  assert_true(cu_id_valid(a));
  assert_int_equal(a[14], '7');
  assert_true(strchr("89ab", a[19]) != NULL);
  assert_true(strcmp(a, b) < 0); /* later ids sort after earlier ones */
  /* ... also within one millisecond, many at a time */
  char prev[CU_ID_LEN + 1], next[CU_ID_LEN + 1];
  cu_id_new(prev);
  for (int i = 0; i < 10000; i++) {
    cu_id_new(next);
    assert_true(cu_id_valid(next));
    assert_true(strcmp(prev, next) < 0);
    memcpy(prev, next, sizeof prev);
  }
  /* The first 48 bits are the Unix time in milliseconds. */
  char hex48[13];
  memcpy(hex48, a, 8);
  memcpy(hex48 + 8, a + 9, 4);
  hex48[12] = '\0';
  long long ms = strtoll(hex48, NULL, 16);
  long long now = cu_now_us() / 1000;
  assert_true(ms <= now && ms > now - 10000);
  assert_false(cu_id_valid("../../etc/passwd"));
  assert_false(cu_id_valid("01A21E64-F11C-7E2E-8C5E-88E2D601EEF8"));
  assert_false(cu_id_valid(NULL));
}

static void test_common_id__names(void **state) {
  assert_true(cu_name_valid("cam-01.front_2:x@y"));
  assert_false(cu_name_valid(""));
  assert_false(cu_name_valid("a/b"));
  assert_false(cu_name_valid("a b"));
  assert_false(cu_name_valid("caf\xc3\xa9"));
  char longname[200];
  memset(longname, 'a', sizeof longname - 1);
  longname[199] = '\0';
  assert_false(cu_name_valid(longname));
}

static void test_common_time__rfc3339(void **state) {
  int64_t us;
  assert_int_equal(cu_time_parse_rfc3339("2026-01-31T08:15:00Z", &us), 0);
  assert_int_equal(us, 1769847300LL * 1000000);
  assert_int_equal(cu_time_parse_rfc3339("2026-01-31T09:15:00.5+01:00", &us), 0);
  assert_int_equal(us, 1769847300LL * 1000000 + 500000);
  assert_int_equal(cu_time_parse_rfc3339("2026-01-31t08:15:00.123456789z", &us), 0);
  assert_int_equal(us % 1000000, 123456);
  char out[CU_RFC3339_LEN];
  cu_time_rfc3339(1769847300LL * 1000000 + 120000, out);
  assert_string_equal(out, "2026-01-31T08:15:00.12Z");
  cu_time_rfc3339(1769847300LL * 1000000, out);
  assert_string_equal(out, "2026-01-31T08:15:00Z");
  static const char *bad[] = {"2026-01-31", "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z",
                              "2026-01-31T24:00:00Z", "2026-01-31T08:15:00", "2026-01-31T08:15:00Zx",
                              "2026-01-31T08:15:00+1:00", "yesterday"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(cu_time_parse_rfc3339(bad[i], &us), CU_EINVAL);
}

static void test_common_time__httpdate(void **state) {
  char out[CU_HTTPDATE_LEN];
  cu_time_httpdate(1403712000LL * 1000000, out);
  assert_string_equal(out, "Wed, 25 Jun 2014 16:00:00 GMT");
}

static void test_common_time__parse_i64(void **state) {
  int64_t v;
  assert_int_equal(cu_parse_i64("0", &v, 0), 0);
  assert_int_equal(v, 0);
  assert_int_equal(cu_parse_i64("9223372036854775807", &v, 0), 0);
  assert_int_equal(v, INT64_MAX);
  assert_int_equal(cu_parse_i64("9223372036854775808", &v, 0), CU_EINVAL);
  assert_int_equal(cu_parse_i64("-5", &v, 0), CU_EINVAL);
  assert_int_equal(cu_parse_i64("-5", &v, 1), 0);
  assert_int_equal(v, -5);
  assert_int_equal(cu_parse_i64("12a", &v, 0), CU_EINVAL);
  assert_int_equal(cu_parse_i64("", &v, 0), CU_EINVAL);
  assert_int_equal(cu_parse_i64(" 1", &v, 0), CU_EINVAL);
}

static void test_common_buf__max_is_enforced(void **state) {
  cu_buf b = CU_BUF_INIT(8);
  assert_int_equal(cu_buf_adds(&b, "12345678"), 0);
  assert_int_equal(cu_buf_adds(&b, "9"), CU_ETOOBIG);
  assert_int_equal(b.len, 8);
  assert_string_equal(b.data, "12345678");
  cu_buf_reset(&b);
  assert_int_equal(cu_buf_printf(&b, "%d-%s", 42, "x"), 0);
  assert_string_equal(b.data, "42-x");
  assert_int_equal(cu_buf_printf(&b, "%s", "toolong!"), CU_ETOOBIG);
  cu_buf_release(&b);
}

static void test_common_json__canonical_form(void **state) {
  json_t *v = NULL;
  const char *in = "{ \"b\": 1, \"a\": {\"z\": \"\xc3\xa9\", \"y\": [1, 2]} }";
  assert_int_equal(cu_json_parse(in, strlen(in), &v), 0);
  char *s = cu_json_canon(v, NULL);
  assert_string_equal(s, "{\"a\":{\"y\":[1,2],\"z\":\"\xc3\xa9\"},\"b\":1}");
  free(s);
  json_decref(v);
  const char *dup = "{\"a\":1,\"a\":2}";
  assert_int_equal(cu_json_parse(dup, strlen(dup), &v), CU_EINVAL);
}

static void test_common_json__utf8(void **state) {
  assert_true(cu_utf8_valid("abc \xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa5", 15));
  assert_false(cu_utf8_valid("\xc3", 1));          /* truncated */
  assert_false(cu_utf8_valid("\xc0\xaf", 2));      /* overlong */
  assert_false(cu_utf8_valid("\xed\xa0\x80", 3));  /* surrogate */
  assert_false(cu_utf8_valid("a\0b", 3));          /* NUL */
  assert_false(cu_utf8_valid("\xff", 1));
}

static void test_common_hash__split_and_saved_state(void **state) {
  unsigned char data[5000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7);
  char whole[65];
  cu_sha256_hex(data, sizeof data, whole);
  /* Hash 1234 bytes, save, restore into a fresh object, finish. */
  cu_sha256 *h = cu_sha256_new();
  cu_sha256_update(h, data, 1234);
  cu_buf saved = CU_BUF_INIT(4096);
  assert_int_equal(cu_sha256_save(h, &saved), 0);
  cu_sha256_free(h);
  cu_sha256 *g = cu_sha256_new();
  assert_int_equal(cu_sha256_load(g, saved.data), 0);
  assert_int_equal(cu_sha256_count(g), 1234);
  cu_sha256_update(g, data + 1234, sizeof data - 1234);
  unsigned char d[32];
  char hex[65];
  cu_sha256_final(g, d);
  cu_hex_encode(d, 32, hex);
  assert_string_equal(hex, whole);
  cu_sha256_free(g);
  /* A damaged state is refused, not trusted. */
  saved.data[20] = saved.data[20] == 'A' ? 'B' : 'A';
  cu_sha256 *x = cu_sha256_new();
  assert_int_equal(cu_sha256_load(x, saved.data), CU_ECORRUPT);
  assert_int_equal(cu_sha256_load(x, "bm90IGEgc3RhdGU="), CU_ECORRUPT);
  cu_sha256_free(x);
  cu_buf_release(&saved);
}

static void test_common_hash__digests(void **state) {
  cu_digest *d = NULL;
  assert_int_equal(cu_digest_new(&d, "sha1"), 0);
  cu_digest_update(d, "hello world", 11);
  unsigned char out[64];
  size_t n = cu_digest_final(d, out);
  cu_digest_free(d);
  cu_buf b = CU_BUF_INIT(64);
  cu_b64_encode(out, n, &b);
  assert_string_equal(b.data, "Kq5sNclPz7QV2+lfQIuc6R7oRu0="); /* the tus checksum vector */
  cu_buf_release(&b);
  assert_int_equal(cu_digest_new(&d, "md5"), CU_EUNSUPPORTED);
  char hex[65];
  cu_sha256_hex("", 0, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_common_fs__durable_write_and_exclusive(void **state) {
  char *dir = test_tmpdir("common");
  assert_non_null(dir);
  char *p = cu_path_join(dir, "f");
  assert_int_equal(cu_write_file_durable(p, "one", 3, 0600, 1), 0);
  struct stat sb;
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  assert_int_equal(cu_write_file_durable(p, "two", 3, 0600, 1), CU_EEXISTS);
  cu_buf b = CU_BUF_INIT(16);
  assert_int_equal(cu_read_small_file(p, 16, &b), 0);
  assert_string_equal(b.data, "one");
  assert_int_equal(cu_write_file_durable(p, "three", 5, 0644, 0), 0);
  cu_buf_reset(&b);
  assert_int_equal(cu_read_small_file(p, 16, &b), 0);
  assert_string_equal(b.data, "three");
  cu_buf_reset(&b);
  assert_int_equal(cu_read_small_file(p, 2, &b), CU_ETOOBIG);
  char hex[65];
  uint64_t size;
  assert_int_equal(cu_sha256_file(p, hex, &size), 0);
  assert_int_equal(size, 5);
  char want[65];
  cu_sha256_hex("three", 5, want);
  assert_string_equal(hex, want);
  char *deep = cu_xasprintf("%s/a/b/c", dir);
  assert_int_equal(cu_mkdirs(deep, 0755), 0);
  assert_int_equal(stat(deep, &sb), 0);
  assert_true(S_ISDIR(sb.st_mode));
  cu_buf_release(&b);
  assert_int_equal(test_rmtree(dir), 0);
  free(deep);
  free(p);
  free(dir);
}

static void test_common_err__messages(void **state) {
  assert_int_equal(cu_error(CU_EINVAL, "bad %d", 7), CU_EINVAL);
  assert_string_equal(cu_errmsg(), "bad 7");
  assert_int_equal(cu_error_wrap(CU_EIO, "reading %s", "x"), CU_EIO);
  assert_string_equal(cu_errmsg(), "reading x: bad 7");
  assert_string_equal(cu_errname(CU_ECHECKSUM), "checksum_mismatch");
  assert_int_equal(cu_errno_code(28 /* ENOSPC */), CU_ENOSPC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_common_b64__rfc4648_vectors),
      cmocka_unit_test(test_common_b64__rejects_malformed),
      cmocka_unit_test(test_common_b64__url_roundtrip),
      cmocka_unit_test(test_common_hex__roundtrip_and_checks),
      cmocka_unit_test(test_common_id__uuidv7_shape_and_order),
      cmocka_unit_test(test_common_id__names),
      cmocka_unit_test(test_common_time__rfc3339),
      cmocka_unit_test(test_common_time__httpdate),
      cmocka_unit_test(test_common_time__parse_i64),
      cmocka_unit_test(test_common_buf__max_is_enforced),
      cmocka_unit_test(test_common_json__canonical_form),
      cmocka_unit_test(test_common_json__utf8),
      cmocka_unit_test(test_common_hash__split_and_saved_state),
      cmocka_unit_test(test_common_hash__digests),
      cmocka_unit_test(test_common_fs__durable_write_and_exclusive),
      cmocka_unit_test(test_common_err__messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
