/* Time: microseconds since the Unix epoch, UTC, as int64_t everywhere. */
#ifndef CU_TIMEU_H
#define CU_TIMEU_H

#include <stdint.h>

int64_t cu_now_us(void);
/* Monotonic clock in microseconds, for durations. */
int64_t cu_mono_us(void);

#define CU_RFC3339_LEN 32
/* "2026-11-27T18:49:00.123456Z" (fraction omitted when zero). */
void cu_time_rfc3339(int64_t us, char out[CU_RFC3339_LEN]);
/* Parses RFC 3339 date-time (with Z or a numeric offset, optional
 * fraction) into UTC microseconds; CU_EINVAL otherwise. */
int cu_time_parse_rfc3339(const char *s, int64_t *out);
/* RFC 7231 IMF-fixdate: "Wed, 25 Jun 2014 16:00:00 GMT". */
#define CU_HTTPDATE_LEN 40
void cu_time_httpdate(int64_t us, char out[CU_HTTPDATE_LEN]);

/* A time within a recording: seconds ("90", "90.25") or clock time
 * ("1:30", "00:01:30.250"), to microseconds; CU_EINVAL with the reason. */
int cu_parse_clock(const char *s, int64_t *out);

/* Strict decimal integer: digits only (a leading '-' if allow_negative),
 * no overflow, nothing after. */
int cu_parse_i64(const char *s, int64_t *out, int allow_negative);

#endif
