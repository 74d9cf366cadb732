/* Logging to stderr, one line per event, with an RFC 3339 time. */
#ifndef CU_LOG_H
#define CU_LOG_H

enum { CU_LOG_DEBUG, CU_LOG_INFO, CU_LOG_WARN, CU_LOG_ERROR, CU_LOG_ALARM };

void cu_log_set_level(int level);
void cu_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cu_debug(...) cu_log(CU_LOG_DEBUG, __VA_ARGS__)
#define cu_info(...) cu_log(CU_LOG_INFO, __VA_ARGS__)
#define cu_warn(...) cu_log(CU_LOG_WARN, __VA_ARGS__)
#define cu_err(...) cu_log(CU_LOG_ERROR, __VA_ARGS__)
/* Something an operator must act on: evidence at risk. */
#define cu_alarm(...) cu_log(CU_LOG_ALARM, __VA_ARGS__)

#endif
