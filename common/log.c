#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "timeu.h"
#include "banned.h"

static atomic_int min_level = CU_LOG_INFO;

void cu_log_set_level(int level) { atomic_store(&min_level, level); }

void cu_log(int level, const char *fmt, ...) {
  if (level < atomic_load(&min_level)) return;
  static const char *names[] = {"debug", "info", "warn", "error", "ALARM"};
  char ts[CU_RFC3339_LEN], line[2048];
  cu_time_rfc3339(cu_now_us(), ts);
  int n = snprintf(line, sizeof line, "%s %s ", ts, names[level]);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  /* One fputs per line so concurrent threads do not interleave mid-line. */
  fprintf(stderr, "%s\n", line);
}
