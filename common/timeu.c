#include "timeu.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "banned.h"

int64_t cu_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cu_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void split(int64_t us, time_t *sec, int *frac) {
  int64_t s = us / 1000000, f = us % 1000000;
  if (f < 0) {
    f += 1000000;
    s -= 1;
  }
  *sec = (time_t)s;
  *frac = (int)f;
}

void cu_time_rfc3339(int64_t us, char out[CU_RFC3339_LEN]) {
  time_t sec;
  int frac;
  split(us, &sec, &frac);
  struct tm tm;
  gmtime_r(&sec, &tm);
  size_t n = strftime(out, CU_RFC3339_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac) {
    int digits = 6;
    while (frac % 10 == 0) {
      frac /= 10;
      digits--;
    }
    snprintf(out + n, CU_RFC3339_LEN - n, ".%0*dZ", digits, frac);
  } else {
    snprintf(out + n, CU_RFC3339_LEN - n, "Z");
  }
}

void cu_time_httpdate(int64_t us, char out[CU_HTTPDATE_LEN]) {
  time_t sec;
  int frac;
  split(us, &sec, &frac);
  struct tm tm;
  gmtime_r(&sec, &tm);
  /* strftime's %a/%b follow the locale; HTTP dates are always English. */
  static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  snprintf(out, CU_HTTPDATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
           tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i])) return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

int cu_time_parse_rfc3339(const char *s, int64_t *out) {
  const char *p = s;
  int Y, M, D, h, m, sec;
  if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
      digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
    goto bad;
  p++;
  if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
      digits(&p, 2, &sec))
    goto bad;
  int64_t frac_us = 0;
  if (*p == '.') {
    p++;
    int nd = 0;
    int64_t scale = 100000;
    while (isdigit((unsigned char)*p)) {
      if (nd < 6) frac_us += (*p - '0') * scale;
      scale /= 10;
      nd++;
      p++;
    }
    if (!nd) goto bad;
  }
  int offset_min = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p == '-' ? -1 : 1, oh, om;
    p++;
    if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59) goto bad;
    offset_min = sign * (oh * 60 + om);
  } else {
    goto bad;
  }
  if (*p) goto bad;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 || sec > 60) goto bad;
  if (M == 2 && D == 29 && !((Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0)) goto bad;
  if (sec == 60) sec = 59; /* a leap second: the moment just before is close enough */
  struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                  .tm_hour = h, .tm_min = m, .tm_sec = sec};
  time_t t = timegm(&tm);
  *out = ((int64_t)t - (int64_t)offset_min * 60) * 1000000 + frac_us;
  return 0;
bad:
  return cu_error(CU_EINVAL, "not an RFC 3339 date-time (e.g. 2026-01-31T08:15:00Z): '%.64s'",
                  s);
}

int cu_parse_i64(const char *s, int64_t *out, int allow_negative) {
  const char *p = s;
  int neg = 0;
  if (allow_negative && *p == '-') {
    neg = 1;
    p++;
  }
  if (!*p) return cu_error(CU_EINVAL, "empty number");
  int64_t v = 0;
  for (; *p; p++) {
    if (!isdigit((unsigned char)*p)) return cu_error(CU_EINVAL, "not a decimal integer: '%.32s'", s);
    int d = *p - '0';
    if (v > (INT64_MAX - d) / 10) return cu_error(CU_EINVAL, "number too large: '%.32s'", s);
    v = v * 10 + d;
  }
  *out = neg ? -v : v;
  return 0;
}

int cu_parse_clock(const char *s, int64_t *out) {
  /* Up to three fields (h:m:s), the last with up to six decimals. */
  int64_t f[3] = {0, 0, 0}, frac = 0;
  int nf = 0, fd = 0;
  const char *p = s;
  if (!s || !*s) return cu_error(CU_EINVAL, "a time is empty");
  for (;;) {
    if (nf == 3) return cu_error(CU_EINVAL, "'%.32s' has too many ':' fields", s);
    if (*p < '0' || *p > '9') return cu_error(CU_EINVAL, "'%.32s' is not a time: give seconds (90.5) or HH:MM:SS.mmm", s);
    int64_t v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
      if (++digits > 12) return cu_error(CU_EINVAL, "'%.32s' is too large a time", s);
      v = v * 10 + (*p++ - '0');
    }
    f[nf++] = v;
    if (*p == ':') {
      p++;
      continue;
    }
    break;
  }
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9') return cu_error(CU_EINVAL, "'%.32s' has no digits after its '.'", s);
    while (*p >= '0' && *p <= '9') {
      if (fd < 6) {
        frac = frac * 10 + (*p - '0');
        fd++;
      }
      p++;
    }
  }
  if (*p) return cu_error(CU_EINVAL, "'%.32s' is not a time: give seconds (90.5) or HH:MM:SS.mmm", s);
  for (; fd < 6; fd++) frac *= 10;
  int64_t h = 0, m = 0, sec = f[nf - 1];
  if (nf == 3) h = f[0], m = f[1];
  if (nf == 2) m = f[0];
  if (nf > 1 && (sec >= 60 || (nf == 3 && m >= 60)))
    return cu_error(CU_EINVAL, "'%.32s': minutes and seconds after a ':' must be below 60", s);
  *out = ((h * 60 + m) * 60 + sec) * 1000000 + frac;
  return 0;
}
