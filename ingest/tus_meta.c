/* Upload-Metadata: "key base64value" pairs joined by ",". Parsed strictly
 * (tus 1.0: duplicate keys and bad Base64 are 400) because the decoded
 * values become evidence metadata. Spaces around a pair are tolerated, as
 * tusd does. */
#include <string.h>

#include "b64.h"
#include "cu_limits.h"
#include "err.h"
#include "tus.h"
#include "banned.h"

static int parse_pair(const char *s, size_t n, json_t *obj) {
  while (n && s[0] == ' ') s++, n--;
  while (n && s[n - 1] == ' ') n--;
  if (!n) return cu_error(CU_EINVAL, "Upload-Metadata has an empty entry");
  const char *sp = memchr(s, ' ', n);
  size_t klen = sp ? (size_t)(sp - s) : n;
  if (!klen) return cu_error(CU_EINVAL, "Upload-Metadata has an entry without a key");
  for (size_t i = 0; i < klen; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return cu_error(CU_EINVAL, "Upload-Metadata key '%.*s' has characters other than visible ASCII",
                      (int)klen, s);
  char key[256];
  if (klen >= sizeof key) return cu_error(CU_EINVAL, "Upload-Metadata key is too long");
  memcpy(key, s, klen);
  key[klen] = '\0';
  if (json_object_get(obj, key))
    return cu_error(CU_EINVAL, "Upload-Metadata key '%s' appears twice", key);
  cu_buf val = CU_BUF_INIT(CU_MAX_META_VALUE);
  int rc = 0;
  if (sp) {
    const char *v = sp + 1;
    size_t vlen = n - klen - 1;
    if (memchr(v, ' ', vlen)) {
      rc = cu_error(CU_EINVAL, "Upload-Metadata value for '%s' contains a space", key);
      goto done;
    }
    if ((rc = cu_b64_decode(v, vlen, &val))) {
      rc = cu_error_wrap(CU_EINVAL, "Upload-Metadata value for '%s' is not valid Base64", key);
      goto done;
    }
  }
  if (!val.data) cu_buf_add(&val, "", 0);
  if (cu_utf8_valid(val.data, val.len)) json_object_set_new(obj, key, json_stringn(val.data, val.len));
  else json_object_set_new(obj, key, json_null()); /* present, but not text */
done:
  cu_buf_release(&val);
  return rc;
}

int tus_meta_parse(const char *hdr, json_t **out) {
  json_t *obj = json_object();
  int rc = 0;
  if (strlen(hdr) > CU_MAX_METADATA_BYTES) {
    rc = cu_error(CU_ETOOBIG, "Upload-Metadata is larger than %d bytes", CU_MAX_METADATA_BYTES);
    goto fail;
  }
  for (const char *p = hdr; *p;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    if ((rc = parse_pair(p, n, obj))) goto fail;
    if (!comma) break;
    p = comma + 1;
    if (!*p) {
      rc = cu_error(CU_EINVAL, "Upload-Metadata ends with a comma");
      goto fail;
    }
  }
  *out = obj;
  return 0;
fail:
  json_decref(obj);
  return rc;
}
