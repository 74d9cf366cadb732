/* A growable byte buffer with a maximum size fixed at creation.
 * Invariant: data is NUL-terminated at data[len] whenever data != NULL, so
 * text can be used as a C string; len never exceeds max. */
#ifndef CU_BUF_H
#define CU_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
  char *data;
  size_t len, cap, max;
} cu_buf;

#define CU_BUF_INIT(maxbytes) {NULL, 0, 0, (maxbytes)}

void cu_buf_init(cu_buf *b, size_t max);
/* Appends; CU_ETOOBIG (nothing appended) if len would pass max. */
int cu_buf_add(cu_buf *b, const void *data, size_t n);
int cu_buf_adds(cu_buf *b, const char *s);
int cu_buf_printf(cu_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cu_buf_reset(cu_buf *b);
/* Frees the memory; the buffer can be used again with the same max. */
void cu_buf_release(cu_buf *b);
/* Hands the memory to the caller (who frees it); the buffer is empty after. */
char *cu_buf_detach(cu_buf *b, size_t *len);

/* Allocation that aborts on failure: we are an application, and small
 * allocations failing means the process cannot go on. Sizes driven by input
 * are checked against a limit before they reach here. */
void *cu_xmalloc(size_t n);
void *cu_xcalloc(size_t n, size_t size);
void *cu_xrealloc(void *p, size_t n);
char *cu_xstrdup(const char *s);
char *cu_xstrndup(const char *s, size_t n);
char *cu_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
