/* DESIGN: a tar stream is a sequence of 512-byte blocks: for each entry
 * its header block(s), then its data padded to a block. Every header field
 * here is a function of the entry's path, type, size and the one mtime, so
 * the offsets of everything follow from a walk of the directory (names and
 * sizes), and tar_read produces any range by generating headers and
 * reading file data with pread. Nothing is written anywhere.
 *
 * The extractor is deliberately narrow: it exists to unpack export bags
 * (custos export --out DIR, custos verify BAG.tar), whose tars hold one
 * directory of regular files. Everything else is refused rather than
 * interpreted, and every path is resolved component by component from the
 * top directory's file descriptor with O_NOFOLLOW, so no entry can reach
 * outside it however the names are spelt. */
#include "tar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "banned.h"

#define OCTAL11_MAX 077777777777ULL /* the most an 11-digit size or mtime field holds */
#define PAX_MAX (64 * 1024)         /* an extended header we read; ours are < 5 KiB */
#define GNU_LONGNAME_MAX PATH_MAX
#define HDR_MAX (3 * TAR_BLOCK + PATH_MAX + 128) /* PAX header, its data, the ustar header */
#define COPY_BUF (1024 * 1024)

static uint64_t pad512(uint64_t n) {
  return (n + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

/* ---- headers ------------------------------------------------------------ */

static void octal(char *field, size_t width, uint64_t v) {
  /* width-1 digits and a NUL, as GNU and POSIX tar write them */
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%0*llo", (int)(width - 1), (unsigned long long)v);
  memcpy(field, tmp, width - 1);
  field[width - 1] = '\0';
}

static void checksum(char *blk) {
  memset(blk + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < TAR_BLOCK; i++)
    sum += (unsigned char)blk[i];
  char tmp[16];
  snprintf(tmp, sizeof tmp, "%06o", sum & 0777777);
  memcpy(blk + 148, tmp, 6);
  blk[154] = '\0';
  blk[155] = ' ';
}

/* Splits path into ustar prefix (<= 155) and name (<= 100) fields. */
static bool ustar_split(const char *path, size_t len, size_t *prefix_len) {
  if (len <= 100) {
    *prefix_len = 0;
    return true;
  }
  /* The first '/' that leaves at most 100 bytes after it (a trailing '/'
   * of a directory does not count: the name part would be empty). */
  for (size_t i = len > 101 ? len - 101 : 0; i < len && i <= 155; i++) {
    if (path[i] != '/') continue;
    if (len - i - 1 > 100 || len - i - 1 == 0) continue;
    if (path[len - 1] == '/' && i == len - 1) continue;
    *prefix_len = i;
    return true;
  }
  return false;
}

static void ustar_block(char *blk, const char *path, size_t len, char type, uint64_t size,
                        int64_t mtime) {
  memset(blk, 0, TAR_BLOCK);
  size_t pl = 0;
  if (ustar_split(path, len, &pl)) {
    if (pl) {
      memcpy(blk + 345, path, pl);
      memcpy(blk, path + pl + 1, len - pl - 1);
    } else {
      memcpy(blk, path, len);
    }
  } else { /* the PAX header before it carries the real path */
    memcpy(blk, path, len < 100 ? len : 100);
  }
  octal(blk + 100, 8, type == '5' ? 0755 : 0644);
  octal(blk + 108, 8, 0);
  octal(blk + 116, 8, 0);
  octal(blk + 124, 12, size <= OCTAL11_MAX ? size : 0);
  octal(blk + 136, 12,
        mtime < 0                       ? 0
        : (uint64_t)mtime > OCTAL11_MAX ? OCTAL11_MAX
                                        : (uint64_t)mtime);
  blk[156] = type;
  memcpy(blk + 257, "ustar", 6); /* with its NUL */
  memcpy(blk + 263, "00", 2);
  memcpy(blk + 265, "root", 4);
  memcpy(blk + 297, "root", 4);
  octal(blk + 329, 8, 0);
  octal(blk + 337, 8, 0);
  checksum(blk);
}

static size_t digits(size_t n) {
  size_t d = 1;
  while (n >= 10)
    n /= 10, d++;
  return d;
}

/* One PAX record "<len> key=value\n", len counting itself. */
static void pax_record(cu_buf *out, const char *key, const char *value, size_t vlen) {
  size_t body = 1 + strlen(key) + 1 + vlen + 1;
  size_t n = body + 1;
  while (digits(n) + body != n)
    n = digits(n) + body;
  cu_buf_printf(out, "%zu %s=", n, key);
  cu_buf_add(out, value, vlen);
  cu_buf_add(out, "\n", 1);
}

/* The PAX records an entry needs (none: out stays empty). */
static void pax_data(const char *path, size_t len, uint64_t size, cu_buf *out) {
  size_t pl;
  cu_buf_reset(out);
  if (!ustar_split(path, len, &pl)) pax_record(out, "path", path, len);
  if (size > OCTAL11_MAX) {
    char v[24];
    int vn = snprintf(v, sizeof v, "%llu", (unsigned long long)size);
    pax_record(out, "size", v, (size_t)vn);
  }
}

/* The PAX header's own name: "PaxHeaders/" and the entry's last component,
 * cut to fit. Readers ignore it; it only has to be deterministic. */
static void pax_name(const char *path, size_t len, char out[101]) {
  size_t end = len && path[len - 1] == '/' ? len - 1 : len;
  size_t start = end;
  while (start && path[start - 1] != '/')
    start--;
  size_t bn = end - start;
  if (bn > 100 - 11) bn = 100 - 11;
  memcpy(out, "PaxHeaders/", 11);
  memcpy(out + 11, path + start, bn);
  out[11 + bn] = '\0';
}

/* All header bytes of an entry into out (HDR_MAX); returns their count. */
static size_t entry_headers(const char *path, bool dir, uint64_t size, int64_t mtime, char *out) {
  size_t len = strlen(path), n = 0;
  cu_buf pax = CU_BUF_INIT(PATH_MAX + 128);
  pax_data(path, len, size, &pax);
  if (pax.len) {
    char pn[101];
    pax_name(path, len, pn);
    ustar_block(out, pn, strlen(pn), 'x', pax.len, mtime);
    n = TAR_BLOCK;
    memset(out + n, 0, pad512(pax.len));
    memcpy(out + n, pax.data, pax.len);
    n += pad512(pax.len);
  }
  cu_buf_release(&pax);
  ustar_block(out + n, path, len, dir ? '5' : '0', size, mtime);
  return n + TAR_BLOCK;
}

/* ---- layout ------------------------------------------------------------- */

typedef struct {
  char *path; /* in the tar */
  char *fs;   /* relative to the root; "" for the root itself */
  bool dir;
  uint64_t size, off, data_off;
} lent;

struct tar_layout {
  char *root;
  int64_t mtime;
  lent *e;
  size_t n, cap;
  uint64_t total, trailer;
  int fd; /* the open file of entry fd_entry, or -1 */
  size_t fd_entry;
  char *hbuf; /* the headers of entry h_entry */
  size_t h_entry, h_len;
  bool h_valid;
};

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_entry(tar_layout *l, char *path, char *fs, bool dir, uint64_t size) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->e = cu_xrealloc(l->e, l->cap * sizeof *l->e);
  }
  lent *e = &l->e[l->n++];
  e->path = path;
  e->fs = fs;
  e->dir = dir;
  e->size = dir ? 0 : size;
  char tmp[HDR_MAX];
  e->off = l->total;
  e->data_off = e->off + entry_headers(path, dir, e->size, l->mtime, tmp);
  l->total = e->data_off + pad512(e->size);
}

/* Adds the directory at fs (its entry first), then its contents, sorted. */
static int walk(tar_layout *l, const char *prefix, const char *fs) {
  char *full = *fs ? cu_xasprintf("%s/%s", l->root, fs) : cu_xstrdup(l->root);
  DIR *d = opendir(full);
  int rc = 0;
  char **names = NULL;
  size_t nn = 0, cap = 0;
  if (!d) {
    rc = cu_error_errno(CU_EIO, errno, "cannot open directory %s", full);
    goto done;
  }
  add_entry(l, *fs ? cu_xasprintf("%s/%s/", prefix, fs) : cu_xasprintf("%s/", prefix),
            cu_xstrdup(fs), true, 0);
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (nn == cap) {
      cap = cap ? 2 * cap : 16;
      names = cu_xrealloc(names, cap * sizeof *names);
    }
    names[nn++] = cu_xstrdup(de->d_name);
  }
  if (errno) {
    rc = cu_error_errno(CU_EIO, errno, "cannot read directory %s", full);
    goto done;
  }
  qsort(names, nn, sizeof *names, cmp_names);
  for (size_t i = 0; i < nn && !rc; i++) {
    struct stat st;
    char *rel = *fs ? cu_xasprintf("%s/%s", fs, names[i]) : cu_xstrdup(names[i]);
    if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = cu_error_errno(CU_EIO, errno, "cannot stat %s/%s", l->root, rel);
    } else if (S_ISDIR(st.st_mode)) {
      rc = walk(l, prefix, rel);
    } else if (S_ISREG(st.st_mode)) {
      add_entry(l, cu_xasprintf("%s/%s", prefix, rel), rel, false, (uint64_t)st.st_size);
      rel = NULL;
    } else {
      rc = cu_error(CU_EINVAL, "%s/%s is neither a regular file nor a directory", l->root, rel);
    }
    free(rel);
  }
done:
  for (size_t i = 0; i < nn; i++)
    free(names[i]);
  free(names);
  if (d) closedir(d);
  free(full);
  return rc;
}

int tar_layout_build(tar_layout **out, const char *dir, const char *prefix, int64_t mtime_s) {
  *out = NULL;
  if (!*prefix || strchr(prefix, '/') || !strcmp(prefix, ".") || !strcmp(prefix, ".."))
    return cu_error(CU_EINVAL, "a tar's top directory must be one plain name, not '%s'", prefix);
  tar_layout *l = cu_xcalloc(1, sizeof *l);
  l->root = cu_xstrdup(dir);
  l->mtime = mtime_s;
  l->fd = -1;
  l->hbuf = cu_xmalloc(HDR_MAX);
  int rc = walk(l, prefix, "");
  if (rc) {
    tar_layout_free(l);
    return rc;
  }
  l->trailer = l->total;
  l->total += 2 * TAR_BLOCK;
  *out = l;
  return 0;
}

void tar_layout_free(tar_layout *l) {
  if (!l) return;
  if (l->fd >= 0) close(l->fd);
  for (size_t i = 0; i < l->n; i++) {
    free(l->e[i].path);
    free(l->e[i].fs);
  }
  free(l->e);
  free(l->hbuf);
  free(l->root);
  free(l);
}

uint64_t tar_layout_size(const tar_layout *l) {
  return l->total;
}
size_t tar_layout_count(const tar_layout *l) {
  return l->n;
}

void tar_layout_entry(const tar_layout *l, size_t i, tar_entry *out) {
  const lent *e = &l->e[i];
  out->path = e->path;
  out->dir = e->dir;
  out->size = e->size;
  out->offset = e->off;
  out->data_offset = e->data_off;
}

/* The entry whose blocks hold offset off (off < l->trailer). */
static size_t find_entry(const tar_layout *l, uint64_t off) {
  size_t lo = 0, hi = l->n;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (l->e[mid].off <= off)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

static int open_entry(tar_layout *l, size_t i) {
  if (l->fd >= 0 && l->fd_entry == i) return 0;
  if (l->fd >= 0) close(l->fd);
  l->fd = -1;
  char *p = cu_xasprintf("%s/%s", l->root, l->e[i].fs);
  int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  int rc = 0;
  if (fd < 0)
    rc = cu_error_errno(errno == ENOENT ? CU_ECORRUPT : CU_EIO, errno, "cannot open %s", p);
  else if (fstat(fd, &st) < 0)
    rc = cu_error_errno(CU_EIO, errno, "cannot stat %s", p);
  else if ((uint64_t)st.st_size != l->e[i].size)
    rc = cu_error(CU_ECORRUPT, "%s is %lld bytes, not the %llu it had when the tar was laid out", p,
                  (long long)st.st_size, (unsigned long long)l->e[i].size);
  free(p);
  if (rc) {
    if (fd >= 0) close(fd);
    return rc;
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  l->fd = fd;
  l->fd_entry = i;
  return 0;
}

ssize_t tar_read(tar_layout *l, uint64_t off, void *buf, size_t n) {
  char *out = buf;
  size_t got = 0;
  if (n > SSIZE_MAX) n = SSIZE_MAX;
  while (got < n && off < l->total) {
    size_t want = n - got;
    if (off >= l->trailer) {
      uint64_t k = l->total - off < want ? l->total - off : want;
      memset(out + got, 0, (size_t)k);
      got += (size_t)k;
      off += k;
      continue;
    }
    size_t i = find_entry(l, off);
    const lent *e = &l->e[i];
    uint64_t end = i + 1 < l->n ? l->e[i + 1].off : l->trailer;
    uint64_t k;
    if (off < e->data_off) {
      if (!l->h_valid || l->h_entry != i) {
        l->h_len = entry_headers(e->path, e->dir, e->size, l->mtime, l->hbuf);
        l->h_entry = i;
        l->h_valid = true;
      }
      k = e->data_off - off < want ? e->data_off - off : want;
      memcpy(out + got, l->hbuf + (off - e->off), (size_t)k);
    } else if (off < e->data_off + e->size) {
      int rc = open_entry(l, i);
      if (rc) return rc;
      k = e->data_off + e->size - off < want ? e->data_off + e->size - off : want;
      ssize_t r;
      do
        r = pread(l->fd, out + got, (size_t)k, (off_t)(off - e->data_off));
      while (r < 0 && errno == EINTR);
      if (r < 0) return cu_error_errno(CU_EIO, errno, "cannot read %s/%s", l->root, e->fs);
      if (r == 0)
        return cu_error(CU_ECORRUPT, "%s/%s ended before its %llu bytes", l->root, e->fs,
                        (unsigned long long)e->size);
      k = (uint64_t)r;
    } else {
      k = end - off < want ? end - off : want;
      memset(out + got, 0, (size_t)k);
    }
    got += (size_t)k;
    off += k;
  }
  return (ssize_t)got;
}

int tar_write_all(tar_layout *l, int fd) {
  char *buf = cu_xmalloc(COPY_BUF);
  int rc = 0;
  for (uint64_t off = 0; off < l->total && !rc;) {
    ssize_t n = tar_read(l, off, buf, COPY_BUF);
    if (n < 0)
      rc = (int)n;
    else if (n == 0)
      rc = cu_error(CU_EIO, "the tar stream ended early");
    else if (!(rc = cu_write_all(fd, buf, (size_t)n)))
      off += (uint64_t)n;
  }
  free(buf);
  return rc;
}

/* ---- extraction --------------------------------------------------------- */

typedef struct {
  int fd;
  uint64_t pos;
  const tar_extract_opts *opts;
  uint64_t reported;
} reader;

/* Exactly n bytes; a short stream is a truncated tar. */
static int read_exact(reader *r, void *buf, size_t n) {
  char *p = buf;
  while (n) {
    ssize_t k = read(r->fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return cu_error_errno(CU_EIO, errno, "cannot read the tar");
    if (k == 0)
      return cu_error(CU_EINVAL, "the tar is truncated at byte %llu", (unsigned long long)r->pos);
    p += k;
    n -= (size_t)k;
    r->pos += (uint64_t)k;
  }
  if (r->opts && r->opts->progress && r->pos - r->reported >= (4 << 20)) {
    r->opts->progress(r->opts->ud, r->pos);
    r->reported = r->pos;
  }
  return 0;
}

/* An octal field (NUL/space padded), or GNU base-256 (high bit set). */
static int parse_num(const char *f, size_t w, uint64_t *out) {
  uint64_t v = 0;
  if ((unsigned char)f[0] & 0x80) {
    if ((unsigned char)f[0] != 0x80) return CU_EINVAL; /* negative */
    for (size_t i = 1; i < w; i++) {
      if (v >> 56) return CU_EINVAL;
      v = (v << 8) | (unsigned char)f[i];
    }
    *out = v;
    return 0;
  }
  size_t i = 0;
  while (i < w && f[i] == ' ')
    i++;
  size_t nd = 0;
  for (; i < w && f[i] >= '0' && f[i] <= '7'; i++, nd++) {
    if (v >> 60) return CU_EINVAL;
    v = v * 8 + (uint64_t)(f[i] - '0');
  }
  for (; i < w; i++)
    if (f[i] != ' ' && f[i] != '\0') return CU_EINVAL;
  *out = v;
  return 0;
}

static bool checksum_ok(const unsigned char *blk) {
  uint64_t want;
  if (parse_num((const char *)blk + 148, 8, &want)) return false;
  unsigned usum = 0;
  int ssum = 0;
  for (int i = 0; i < TAR_BLOCK; i++) {
    unsigned char c = i >= 148 && i < 156 ? ' ' : blk[i];
    usum += c;
    ssum += (signed char)c;
  }
  return want == usum || (int64_t)want == ssum;
}

static bool all_zero(const unsigned char *blk) {
  for (int i = 0; i < TAR_BLOCK; i++)
    if (blk[i]) return false;
  return true;
}

/* Fields a PAX header may carry; anything else is refused. path and size
 * are used, the rest are metadata we do not keep. */
static bool pax_key_known(const char *k) {
  static const char *const ok[] = {"path",    "size",       "mtime", "atime", "ctime",
                                   "uid",     "gid",        "uname", "gname", "comment",
                                   "charset", "hdrcharset", NULL};
  for (int i = 0; ok[i]; i++)
    if (!strcmp(k, ok[i])) return true;
  return false;
}

static int parse_pax(const char *d, size_t n, char **path, uint64_t *size, bool *has_size,
                     int64_t *mtime) {
  size_t i = 0;
  while (i < n) {
    size_t j = i, len = 0;
    while (j < n && d[j] >= '0' && d[j] <= '9' && len < 1000000)
      len = len * 10 + (size_t)(d[j++] - '0');
    if (j == i || j >= n || d[j] != ' ' || len <= j - i + 1 || i + len > n ||
        d[i + len - 1] != '\n')
      return cu_error(CU_EINVAL, "a PAX extended header is malformed");
    const char *kv = d + j + 1, *end = d + i + len - 1;
    const char *eq = memchr(kv, '=', (size_t)(end - kv));
    if (!eq) return cu_error(CU_EINVAL, "a PAX record has no '='");
    char key[64];
    size_t kn = (size_t)(eq - kv);
    if (kn == 0 || kn >= sizeof key) return cu_error(CU_EINVAL, "a PAX record has a bad key");
    memcpy(key, kv, kn);
    key[kn] = '\0';
    if (!pax_key_known(key)) return cu_error(CU_EINVAL, "the PAX key '%s' is not accepted", key);
    const char *v = eq + 1;
    size_t vn = (size_t)(end - v);
    if (!strcmp(key, "path")) {
      if (!vn || vn >= PATH_MAX || memchr(v, '\0', vn))
        return cu_error(CU_EINVAL, "a PAX path is empty, too long or holds a NUL");
      free(*path);
      *path = cu_xstrndup(v, vn);
    } else if (!strcmp(key, "size") || !strcmp(key, "mtime")) {
      char num[32];
      size_t nn = 0;
      while (nn < vn && v[nn] != '.')
        nn++; /* mtime may have a fraction */
      if (!nn || nn >= sizeof num) return cu_error(CU_EINVAL, "a PAX %s is not a number", key);
      memcpy(num, v, nn);
      num[nn] = '\0';
      char *e = NULL;
      errno = 0;
      unsigned long long x = strtoull(num, &e, 10);
      if (errno || *e || num[0] == '-' || num[0] == '+')
        return cu_error(CU_EINVAL, "a PAX %s is not a number", key);
      if (key[0] == 's') {
        if (nn != vn) return cu_error(CU_EINVAL, "a PAX size is not a whole number");
        *size = x;
        *has_size = true;
      } else {
        *mtime = (int64_t)(x > INT64_MAX ? INT64_MAX : x);
      }
    }
    i += len;
  }
  return 0;
}

/* Checks a path from the tar and splits it into components (in place):
 * relative, no empty, "." or ".." component (a leading "./" is dropped,
 * one trailing '/' allowed), no control characters. */
static int split_path(char *p, char **comp, int *nc, int max) {
  while (p[0] == '.' && p[1] == '/')
    p += 2;
  size_t n = strlen(p);
  if (n && p[n - 1] == '/') p[--n] = '\0';
  if (!n) return cu_error(CU_EINVAL, "an entry has an empty path");
  if (p[0] == '/') return cu_error(CU_EINVAL, "the entry /%s has an absolute path", p + 1);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
      return cu_error(CU_EINVAL, "an entry's path holds a control character");
  *nc = 0;
  for (char *s = p;;) {
    char *slash = strchr(s, '/');
    if (slash) *slash = '\0';
    if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
      return cu_error(CU_EINVAL, "an entry's path has a '%s' component", *s ? s : "");
    if (*nc == max) return cu_error(CU_EINVAL, "an entry's path is too deep");
    comp[(*nc)++] = s;
    if (!slash) break;
    s = slash + 1;
  }
  return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
  (void)st;
  (void)f;
  if (flag == FTW_DP)
    rmdir(p);
  else
    unlink(p);
  return 0;
}

typedef struct {
  reader r;
  int destfd, topfd;
  char *dest, *top;
  char *scratch;
} extractor;

/* The directory fd of comp[0..n) under top (created as needed). */
static int open_parent(extractor *x, char **comp, int n, int *out) {
  int cur = dup(x->topfd);
  if (cur < 0) return cu_error_errno(CU_EIO, errno, "dup");
  for (int i = 1; i < n; i++) {
    int next = openat(cur, comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT) {
      if (mkdirat(cur, comp[i], 0755) < 0 && errno != EEXIST) {
        int e = errno;
        close(cur);
        return cu_error_errno(cu_errno_code(e), e, "cannot create directory %s", comp[i]);
      }
      next = openat(cur, comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      int e = errno;
      close(cur);
      return cu_error_errno(CU_EINVAL, e, "%s is not a directory of the tar's own", comp[i]);
    }
    close(cur);
    cur = next;
  }
  *out = cur;
  return 0;
}

static int extract_file(extractor *x, int dirfd_, const char *name, const char *path, uint64_t size,
                        int64_t mtime) {
  int fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return cu_error(CU_EINVAL, "%s is in the tar twice", path);
    return cu_error_errno(cu_errno_code(errno), errno, "cannot create %s", path);
  }
  int rc = 0;
  for (uint64_t left = size; left && !rc;) {
    size_t k = left < COPY_BUF ? (size_t)left : COPY_BUF;
    if (!(rc = read_exact(&x->r, x->scratch, k))) rc = cu_write_all(fd, x->scratch, k);
    left -= k;
  }
  if (!rc && size % TAR_BLOCK) rc = read_exact(&x->r, x->scratch, TAR_BLOCK - size % TAR_BLOCK);
  if (!rc) {
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    futimens(fd, ts);
    if (fdatasync(fd) < 0) rc = cu_error_errno(cu_errno_code(errno), errno, "cannot sync %s", path);
  }
  if (close(fd) < 0 && !rc) rc = cu_error_errno(CU_EIO, errno, "cannot close %s", path);
  if (rc) cu_error_wrap(rc, "%s", path);
  return rc;
}

static int extract_entry(extractor *x, char *path, char type, uint64_t size, int64_t mtime) {
  char *comp[256];
  int nc = 0;
  char *shown = cu_xstrdup(path);
  int rc = split_path(path, comp, &nc, 256);
  if (rc) goto done;
  if (!x->top) {
    x->top = cu_xstrdup(comp[0]);
    if (mkdirat(x->destfd, x->top, 0755) < 0) {
      int e = errno;
      free(x->top);
      x->top = NULL;
      rc = e == EEXIST
               ? cu_error(CU_EEXISTS, "%s/%s exists already", x->dest, comp[0])
               : cu_error_errno(cu_errno_code(e), e, "cannot create %s/%s", x->dest, comp[0]);
      goto done;
    }
    x->topfd = openat(x->destfd, x->top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (x->topfd < 0) {
      rc = cu_error_errno(CU_EIO, errno, "cannot open %s/%s", x->dest, x->top);
      goto done;
    }
  } else if (strcmp(comp[0], x->top)) {
    rc = cu_error(CU_EINVAL, "%s is outside the tar's one directory %s", shown, x->top);
    goto done;
  }
  if (nc == 1) {
    if (type != '5') rc = cu_error(CU_EINVAL, "%s: the tar's top entry must be a directory", shown);
    goto done;
  }
  int parent = -1;
  if ((rc = open_parent(x, comp, nc - 1, &parent))) goto done;
  const char *name = comp[nc - 1];
  if (type == '5') {
    if (size)
      rc = cu_error(CU_EINVAL, "the directory %s has a size", shown);
    else if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
      rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create directory %s", shown);
    else {
      int d = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (d < 0)
        rc = cu_error(CU_EINVAL, "%s is in the tar as a file and a directory", shown);
      else
        close(d);
    }
  } else {
    rc = extract_file(x, parent, name, shown, size, mtime);
  }
  close(parent);
done:
  free(shown);
  return rc;
}

int tar_extract(int fd, const char *dest_dir, const tar_extract_opts *opts, char **top) {
  if (top) *top = NULL;
  extractor x = {.r = {.fd = fd, .opts = opts}, .topfd = -1, .dest = cu_xstrdup(dest_dir)};
  x.destfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (x.destfd < 0) {
    int rc =
        cu_error_errno(errno == ENOENT ? CU_ENOTFOUND : CU_EIO, errno, "cannot open %s", dest_dir);
    free(x.dest);
    return rc;
  }
  x.scratch = cu_xmalloc(COPY_BUF);
  unsigned char blk[TAR_BLOCK];
  char *pax_path = NULL, *long_name = NULL;
  uint64_t pax_size = 0;
  bool has_pax_size = false, have_pax = false;
  int64_t pax_mtime = -1;
  int rc = 0;
  uint64_t entries = 0;
  for (;;) {
    uint64_t at = x.r.pos;
    if ((rc = read_exact(&x.r, blk, TAR_BLOCK))) break;
    if (all_zero(blk)) {
      if ((rc = read_exact(&x.r, blk, TAR_BLOCK))) break;
      if (!all_zero(blk)) {
        rc = cu_error(CU_EINVAL, "a lone zero block at byte %llu", (unsigned long long)at);
        break;
      }
      if (have_pax || long_name)
        rc = cu_error(CU_EINVAL, "the tar ends after an extended header");
      else if (!entries)
        rc = cu_error(CU_EINVAL, "the tar is empty");
      break;
    }
    if (!checksum_ok(blk)) {
      rc = cu_error(CU_EINVAL, "the header at byte %llu has a bad checksum (not a tar, or damaged)",
                    (unsigned long long)at);
      break;
    }
    bool posix = !memcmp(blk + 257,
                         "ustar\0"
                         "00",
                         8),
         gnu = !memcmp(blk + 257, "ustar  \0", 8);
    if (!posix && !gnu) {
      rc = cu_error(CU_EINVAL, "the header at byte %llu is not a ustar header",
                    (unsigned long long)at);
      break;
    }
    char type = (char)blk[156];
    uint64_t size;
    if (parse_num((const char *)blk + 124, 12, &size)) {
      rc = cu_error(CU_EINVAL, "the header at byte %llu has a bad size", (unsigned long long)at);
      break;
    }
    if (type == 'x' || type == 'L') {
      size_t max = type == 'x' ? PAX_MAX : GNU_LONGNAME_MAX;
      if (size == 0 || size > max) {
        rc = cu_error(CU_EINVAL, "an extended header at byte %llu is %llu bytes",
                      (unsigned long long)at, (unsigned long long)size);
        break;
      }
      char *d = cu_xmalloc((size_t)pad512(size) + 1);
      rc = read_exact(&x.r, d, (size_t)pad512(size));
      d[size] = '\0';
      if (!rc && type == 'x') {
        rc = parse_pax(d, (size_t)size, &pax_path, &pax_size, &has_pax_size, &pax_mtime);
        have_pax = true;
      } else if (!rc) {
        free(long_name);
        long_name = cu_xstrndup(d, strnlen(d, (size_t)size));
      }
      free(d);
      if (rc) break;
      continue;
    }
    if (type != '0' && type != '\0' && type != '5') {
      const char *what = type == '1'                  ? "a hard link"
                         : type == '2'                ? "a symbolic link"
                         : type == '3' || type == '4' ? "a device"
                         : type == '6'                ? "a FIFO"
                         : type == 'g'                ? "a global extended header"
                         : type == 'S'                ? "a sparse file"
                                                      : "an entry of an unknown type";
      char nm[101];
      memcpy(nm, blk, 100);
      nm[100] = '\0';
      rc = cu_error(CU_EINVAL, "%s (%.100s) is refused: an export holds only files and directories",
                    what, nm);
      break;
    }
    char *path;
    if (pax_path) {
      path = pax_path;
      pax_path = NULL;
    } else if (long_name) {
      path = long_name;
      long_name = NULL;
    } else {
      char nm[101], pf[156];
      memcpy(nm, blk, 100);
      nm[100] = '\0';
      memcpy(pf, blk + 345, 155);
      pf[155] = '\0';
      path = posix && pf[0] ? cu_xasprintf("%s/%s", pf, nm) : cu_xstrdup(nm);
    }
    free(long_name);
    long_name = NULL;
    if (has_pax_size) size = pax_size;
    uint64_t mt = 0;
    int64_t mtime = pax_mtime >= 0                                ? pax_mtime
                    : parse_num((const char *)blk + 136, 12, &mt) ? 0
                                                                  : (int64_t)mt;
    has_pax_size = have_pax = false;
    pax_mtime = -1;
    rc = extract_entry(&x, path, type == '\0' ? '0' : type, size, mtime);
    free(path);
    if (rc) break;
    entries++;
  }
  if (!rc && opts && opts->progress) opts->progress(opts->ud, x.r.pos);
  if (!rc && x.topfd >= 0 && fsync(x.topfd) < 0) rc = cu_error_errno(CU_EIO, errno, "cannot sync");
  if (!rc && fsync(x.destfd) < 0) rc = cu_error_errno(CU_EIO, errno, "cannot sync %s", dest_dir);
  free(pax_path);
  free(long_name);
  free(x.scratch);
  if (x.topfd >= 0) close(x.topfd);
  close(x.destfd);
  if (rc && x.top) { /* take back what was made */
    char *p = cu_xasprintf("%s/%s", dest_dir, x.top);
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(p);
  }
  if (!rc && top)
    *top = x.top;
  else
    free(x.top);
  free(x.dest);
  return rc;
}

int tar_extract_file(const char *tar_path, const char *dest_dir, const tar_extract_opts *opts,
                     char **top) {
  int fd = open(tar_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cu_error_errno(errno == ENOENT ? CU_ENOTFOUND : CU_EIO, errno, "cannot open %s",
                          tar_path);
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  int rc = tar_extract(fd, dest_dir, opts, top);
  close(fd);
  return rc;
}
