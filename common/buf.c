#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "banned.h"

static void oom(size_t n) {
  fprintf(stderr, "custos: out of memory allocating %zu bytes\n", n);
  abort();
}

void *cu_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) oom(n);
  return p;
}

void *cu_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) oom(n * size);
  return p;
}

void *cu_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom(n);
  return q;
}

char *cu_xstrdup(const char *s) { return cu_xstrndup(s, strlen(s)); }

char *cu_xstrndup(const char *s, size_t n) {
  char *p = cu_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *cu_xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) oom(0);
  va_end(ap);
  return s;
}

void cu_buf_init(cu_buf *b, size_t max) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
}

static int grow(cu_buf *b, size_t extra) {
  if (extra > b->max - b->len)
    return cu_error(CU_ETOOBIG, "more than %zu bytes", b->max);
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  b->data = cu_xrealloc(b->data, cap);
  b->cap = cap;
  return 0;
}

int cu_buf_add(cu_buf *b, const void *data, size_t n) {
  int rc = grow(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int cu_buf_adds(cu_buf *b, const char *s) { return cu_buf_add(b, s, strlen(s)); }

int cu_buf_printf(cu_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return cu_error(CU_EINVAL, "bad format");
  int rc = grow(b, (size_t)n);
  if (rc) return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void cu_buf_reset(cu_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

void cu_buf_release(cu_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

char *cu_buf_detach(cu_buf *b, size_t *len) {
  char *p = b->data ? b->data : cu_xstrdup("");
  if (len) *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
