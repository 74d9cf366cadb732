#include "ossl_err.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "banned.h"

int ossl_fail(int code, const char *fmt, ...) {
  char what[512], why[512] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  size_t at = 0;
  unsigned long e;
  const char *data;
  int flags;
  while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
    if (at >= sizeof why - 1) continue; /* full: keep draining */
    char text[128];
    const char *reason = ERR_reason_error_string(e);
    if (ERR_SYSTEM_ERROR(e)) {
      reason = strerror_r(ERR_GET_REASON(e), text, sizeof text);
    } else if (!reason) {
      snprintf(text, sizeof text, "error %lx", e);
      reason = text;
    }
    bool extra = (flags & ERR_TXT_STRING) && data && *data;
    int n = snprintf(why + at, sizeof why - at, "%s%s%s%s%s", at ? "; " : "", reason,
                     extra ? " (" : "", extra ? data : "", extra ? ")" : "");
    at = n < 0 ? sizeof why - 1 : at + (size_t)n;
    if (at > sizeof why - 1) at = sizeof why - 1;
  }
  ERR_clear_error();
  return why[0] ? cu_error(code, "%s: %s", what, why) : cu_error(code, "%s", what);
}
