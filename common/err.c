#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

static _Thread_local char errbuf[1024];

int cu_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return code;
}

int cu_error_errno(int code, int errnum, const char *fmt, ...) {
  char ebuf[256];
  const char *etext = strerror_r(errnum, ebuf, sizeof ebuf);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < sizeof errbuf)
    snprintf(errbuf + n, sizeof errbuf - (size_t)n, ": %s", etext);
  return code;
}

int cu_error_wrap(int code, const char *fmt, ...) {
  char old[sizeof errbuf];
  memcpy(old, errbuf, sizeof old);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  size_t at = n < 0 ? 0 : (size_t)n < sizeof errbuf ? (size_t)n : sizeof errbuf - 1;
  size_t room = sizeof errbuf - 1 - at, oldlen = strnlen(old, sizeof old - 1);
  if (room >= 2) {
    memcpy(errbuf + at, ": ", 2);
    at += 2;
    room -= 2;
    size_t k = oldlen < room ? oldlen : room;
    memcpy(errbuf + at, old, k);
    at += k;
  }
  errbuf[at] = '\0';
  return code;
}

const char *cu_errmsg(void) { return errbuf; }

const char *cu_errname(int code) {
  switch (code) {
  case CU_OK: return "ok";
  case CU_ENOTFOUND: return "not_found";
  case CU_EEXISTS: return "exists";
  case CU_EINVAL: return "invalid";
  case CU_ETOOBIG: return "too_large";
  case CU_ECORRUPT: return "corrupt";
  case CU_EBUSY: return "busy";
  case CU_EIO: return "io_error";
  case CU_ENOSPC: return "insufficient_storage";
  case CU_ECONFLICT: return "conflict";
  case CU_ECHECKSUM: return "checksum_mismatch";
  case CU_EAUTH: return "unauthorized";
  case CU_EDENIED: return "forbidden";
  case CU_EGONE: return "gone";
  case CU_EUNSUPPORTED: return "unsupported";
  default: return "error";
  }
}

int cu_errno_code(int errnum) {
  switch (errnum) {
  case ENOSPC:
  case EDQUOT: return CU_ENOSPC;
  case ENOENT: return CU_ENOTFOUND;
  case EEXIST: return CU_EEXISTS;
  default: return CU_EIO;
  }
}
