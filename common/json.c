#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "timeu.h"
#include "banned.h"

char *cu_json_canon(const json_t *v, size_t *len) {
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  if (!s) {
    fprintf(stderr, "custos: cannot serialise JSON (out of memory)\n");
    abort();
  }
  if (len) *len = strlen(s);
  return s;
}

int cu_json_parse(const char *data, size_t len, json_t **out) {
  json_error_t jerr;
  json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (!v) return cu_error(CU_EINVAL, "invalid JSON at line %d column %d: %s", jerr.line,
                          jerr.column, jerr.text);
  *out = v;
  return 0;
}

const char *cu_json_str(const json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t cu_json_int(const json_t *obj, const char *key, int64_t dflt) {
  json_t *v = json_object_get(obj, key);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

bool cu_json_bool(const json_t *obj, const char *key, bool dflt) {
  json_t *v = json_object_get(obj, key);
  return json_is_boolean(v) ? json_is_true(v) : dflt;
}

void cu_json_set_str(json_t *obj, const char *key, const char *s) {
  if (s) json_object_set_new(obj, key, json_string(s));
}

void cu_json_set_int(json_t *obj, const char *key, int64_t v) {
  json_object_set_new(obj, key, json_integer((json_int_t)v));
}

void cu_json_set_time(json_t *obj, const char *key, int64_t us) {
  char ts[CU_RFC3339_LEN];
  cu_time_rfc3339(us, ts);
  json_object_set_new(obj, key, json_string(ts));
}

bool cu_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c == 0) return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    int extra;
    unsigned min;
    if ((c & 0xe0) == 0xc0) extra = 1, min = 0x80, c &= 0x1f;
    else if ((c & 0xf0) == 0xe0) extra = 2, min = 0x800, c &= 0x0f;
    else if ((c & 0xf8) == 0xf0) extra = 3, min = 0x10000, c &= 0x07;
    else return false;
    if (i + (size_t)extra >= n) return false;
    for (int k = 1; k <= extra; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      c = c << 6 | (p[i + k] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    i += (size_t)extra + 1;
  }
  return true;
}
