/* OpenSSL's error queue as our errors, for the archive's files that call
 * OpenSSL (ledger, signed notes, time-stamps). Internal to archive/. */
#ifndef OSSL_ERR_H
#define OSSL_ERR_H

/* Sets the message to what the caller says followed by what OpenSSL said
 * (its thread-local error queue, oldest first), and empties the queue so
 * the next failure on this thread does not inherit stale reasons. Returns
 * code. */
int ossl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
