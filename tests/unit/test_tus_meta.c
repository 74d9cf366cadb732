/* Unit tests for the strict Upload-Metadata parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cu_limits.h"
#include "err.h"
#include "tus.h"

static void test_tus_meta__tus_js_client_form(void **state) {
  json_t *m = NULL;
  /* STANDARDS 1.4: what tus-js-client sends for {filename:'a b.mp4', note:'é'} */
  assert_int_equal(tus_meta_parse("filename YSBiLm1wNA==,note w6k=", &m), 0);
  assert_string_equal(cu_json_str(m, "filename"), "a b.mp4");
  assert_string_equal(cu_json_str(m, "note"), "\xc3\xa9");
  assert_int_equal(json_object_size(m), 2);
  json_decref(m);
}

static void test_tus_meta__empty_values_and_spaces(void **state) {
  json_t *m = NULL;
  assert_int_equal(tus_meta_parse("is_confidential,empty ,  device_id Y2FtMQ== ", &m), 0);
  assert_string_equal(cu_json_str(m, "is_confidential"), "");
  assert_string_equal(cu_json_str(m, "empty"), "");
  assert_string_equal(cu_json_str(m, "device_id"), "cam1");
  json_decref(m);
  assert_int_equal(tus_meta_parse("", &m), 0);
  assert_int_equal(json_object_size(m), 0);
  json_decref(m);
}

static void test_tus_meta__binary_value_is_not_text(void **state) {
  json_t *m = NULL;
  assert_int_equal(tus_meta_parse("blob /w==", &m), 0); /* 0xff */
  assert_true(json_is_null(json_object_get(m, "blob")));
  json_decref(m);
}

static void test_tus_meta__rejects_malformed(void **state) {
  static const char *bad[] = {
      "a YQ==,a Yg==",  /* duplicate key */
      "a YQ",           /* unpadded */
      "a Y Q==",        /* a space inside the value */
      "a YQ==,,b Yg==", /* empty entry */
      "a YQ==,",        /* trailing comma */
      "a\x01 YQ==",     /* control character in the key */
      "a !!!!",         /* not Base64 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *m = NULL;
    assert_int_equal(tus_meta_parse(bad[i], &m), CU_EINVAL);
    assert_null(m);
  }
}

static void test_tus_meta__size_limit(void **state) {
  size_t n = CU_MAX_METADATA_BYTES + 10;
  char *big = malloc(n + 1);
  memcpy(big, "k ", 2);
  memset(big + 2, 'Q', n - 2);
  big[n] = '\0';
  json_t *m = NULL;
  assert_int_equal(tus_meta_parse(big, &m), CU_ETOOBIG);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tus_meta__tus_js_client_form),
      cmocka_unit_test(test_tus_meta__empty_values_and_spaces),
      cmocka_unit_test(test_tus_meta__binary_value_is_not_text),
      cmocka_unit_test(test_tus_meta__rejects_malformed),
      cmocka_unit_test(test_tus_meta__size_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
