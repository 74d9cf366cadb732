/* Errors: an int return (0 = success, a named negative code otherwise) and a
 * thread-local message. libmicrohttpd calls handlers on its own threads, so
 * the message cannot be global. Codes are never renumbered. */
#ifndef CU_ERR_H
#define CU_ERR_H

enum {
  CU_OK = 0,
  CU_ENOTFOUND = -1,  /* no such upload, evidence, token, file */
  CU_EEXISTS = -2,    /* already there (and that is a problem) */
  CU_EINVAL = -3,     /* bad input from a client or caller */
  CU_ETOOBIG = -4,    /* over a configured or built-in limit */
  CU_ECORRUPT = -5,   /* stored data does not hash or parse as it should */
  CU_EBUSY = -6,      /* someone else holds it (an upload in use) */
  CU_EIO = -7,        /* the operating system or a library failed */
  CU_ENOSPC = -8,     /* the disk is full, or would be */
  CU_ECONFLICT = -9,  /* state does not match the request (tus offset) */
  CU_ECHECKSUM = -10, /* bytes do not match the digest the client sent */
  CU_EAUTH = -11,     /* no or unknown credentials */
  CU_EDENIED = -12,   /* credentials fine, not allowed */
  CU_EGONE = -13,     /* existed, now terminated or expired */
  CU_EUNSUPPORTED = -14, /* a protocol version or media type we do not speak */
};

/* Sets this thread's message and returns code, so `return cu_error(...)`. */
int cu_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with strerror(errnum) appended as ": <text>". */
int cu_error_errno(int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the current message with more context; returns code. */
int cu_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *cu_errmsg(void);
/* A short, stable name for a code ("not_found", "checksum_mismatch", ...). */
const char *cu_errname(int code);
/* A negative errno as one of our codes (ENOSPC -> CU_ENOSPC, else CU_EIO). */
int cu_errno_code(int errnum);

#endif
