/* DESIGN: the checks of docs/EXPORT.md "What custos verify BAG checks", in
 * the order each one needs the facts of the one before:
 *   1. walk the bag (symbolic links and special files are failures, never
 *      followed), then bagit.txt, the manifests (strictly: every line's
 *      hash and path; '..', absolute paths, backslashes, duplicates,
 *      payload entries outside data/ and tag entries inside it), every
 *      file hashed once, in chunks, by every algorithm that lists it, and
 *      bag-info.txt with its Payload-Oxum;
 *   2. the head: custody/checkpoint.txt under custody/ledger-key.txt (and
 *      the key given from outside), custody/sth.json against it;
 *   3. REPORT.json read whole (its size checked first) and its files
 *      compared with the manifests;
 *   4. per item: custody/<id>/events.jsonl line by line, each event's leaf
 *      hash and audit path folded to the head's root; the item's payload
 *      files matched with the proved events that record them, and the
 *      derived copies' source hashes with the originals in the bag; its
 *      original.tsr; then custody/checkpoint.tsr.
 * A failure is recorded with the file (or item, ledger index, manifest
 * line) it is about and goes on: one run names everything that differs.
 * Where one change would make later checks fail too (a flipped payload
 * byte and the event that recorded the file), the later check uses what
 * the manifest says, which the first check has already compared with the
 * bytes, so each change is named once where it happened. */
#include "bag_verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "id.h"
#include "merkle.h"
#include "note.h"
#include "ossl_err.h"
#include "timeu.h"
#include "tsa.h"
#include "verify.h"
#include "banned.h"

#define MAX_LISTED 200       /* failures listed one by one; more are counted */
#define MAX_MANIFESTS 8      /* RFC 8493 knows six algorithms; two kinds of manifest */
#define HASH_CHUNK (1 << 20) /* bytes read at a time while hashing */
#define READ_CHUNK (64 * 1024)
#define BAGIT_TXT "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"

enum { G_BAGIT, G_STH, G_PROOFS, G_CUSTODY, G_TIMESTAMPS, G_REPORT, G_N };
static const char *const group_name[G_N] = {"bagit",   "sth",        "proofs",
                                            "custody", "timestamps", "report"};

/* The algorithms BagIt 1.0 names (RFC 8493 §2.4), by manifest name. */
static const struct {
  const char *name, *label;
  const EVP_MD *(*md)(void);
  size_t len;
} algs[] = {
    {"md5", "MD5", EVP_md5, 16},           {"sha1", "SHA-1", EVP_sha1, 20},
    {"sha224", "SHA-224", EVP_sha224, 28}, {"sha256", "SHA-256", EVP_sha256, 32},
    {"sha384", "SHA-384", EVP_sha384, 48}, {"sha512", "SHA-512", EVP_sha512, 64},
};
#define NALGS (sizeof algs / sizeof *algs)
#define ALG_SHA256 3
#define ALG_SHA512 5

typedef struct {
  char name[64]; /* "manifest-sha256.txt" */
  int alg;       /* index into algs */
  bool tag;      /* a tag manifest */
} manifest;

typedef struct {
  char *path; /* relative to the bag, '/'-separated */
  uint64_t size;
  bool on_disk, payload, is_tagmanifest;
  char *want[MAX_MANIFESTS]; /* what each manifest lists, lowercase hex; NULL: not listed */
  uint64_t line[MAX_MANIFESTS];
  char *got[NALGS]; /* what the file hashes to, per algorithm, hex (NULL: not hashed) */
  json_t *rfile;    /* its entry in REPORT.json (borrowed), if any */
  int in_report;    /* times REPORT.json lists it */
} bfile;

typedef struct {
  const bag_verify_opts *o;
  int dirfd;
  json_t *failures, *warnings;
  uint64_t nfail, nwarn, gfail[G_N];
  bfile *files;
  size_t nfiles, cap;
  json_t *by_path; /* path -> index into files */
  bool too_many;
  bool has_data_dir;
  manifest man[MAX_MANIFESTS];
  int nman;
  char *hashbuf;
  uint64_t bytes_done, bytes_total;
  uint64_t payload_files, payload_bytes, tag_files, events, proofs, tokens, items;
  json_t *info; /* bag-info.txt: label -> [values] */
  /* the head */
  bool have_root;
  uint64_t size;
  merkle_hash root;
  char origin[NOTE_MAX_ORIGIN + 1];
  cu_buf checkpoint;
  cu_buf ca;
  /* REPORT.json */
  json_t *report;
  json_t *report_events; /* "<evidence>/<index>" -> event (borrowed) */
  json_t *report_stamps; /* evidence -> timestamp object (borrowed) */
  json_t *originals;     /* sha256 of each original in the bag -> its path */
  /* --ledger-key */
  char gname[NOTE_MAX_ORIGIN + 1];
  unsigned char gpub[32];
} bctx;

/* ---- failures ----------------------------------------------------------- */

/* Bytes that are not UTF-8 (file names are bytes) cannot go into JSON:
 * they are shown as '?'. */
static json_t *text(const char *s) {
  size_t n = strlen(s);
  if (cu_utf8_valid(s, n)) return json_stringn(s, n);
  char *t = cu_xstrdup(s);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)t[i] >= 0x80) t[i] = '?';
  json_t *j = json_stringn(t, n);
  free(t);
  return j;
}

static void add(bctx *b, bool warn, int group, const char *path, const char *evidence,
                int64_t index, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static void add(bctx *b, bool warn, int group, const char *path, const char *evidence,
                int64_t index, int64_t line, const char *fmt, ...) {
  uint64_t *count = warn ? &b->nwarn : &b->nfail;
  if (!warn) b->gfail[group]++;
  if (++*count > MAX_LISTED) return;
  char msg[3 * BAG_MAX_PATH];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *f = json_object();
  json_object_set_new(f, "check", json_string(group_name[group]));
  if (path) json_object_set_new(f, "path", text(path));
  if (evidence) json_object_set_new(f, "evidence", text(evidence));
  if (index >= 0) cu_json_set_int(f, "index", index);
  if (line >= 0) cu_json_set_int(f, "line", line);
  json_object_set_new(f, "message", text(msg));
  json_array_append_new(warn ? b->warnings : b->failures, f);
}

#define FAIL(b, g, path, ...) add(b, false, g, path, NULL, -1, -1, __VA_ARGS__)
#define FAIL_AT(b, g, path, ev, index, line, ...)                                                  \
  add(b, false, g, path, ev, index, line, __VA_ARGS__)
#define WARN(b, g, path, ev, ...) add(b, true, g, path, ev, -1, -1, __VA_ARGS__)

/* ---- files -------------------------------------------------------------- */

static bfile *file_get(bctx *b, const char *path) {
  json_t *i = json_object_getn(b->by_path, path, strlen(path));
  return i ? &b->files[json_integer_value(i)] : NULL;
}

static bfile *file_add(bctx *b, const char *path) {
  if (b->nfiles == BAG_MAX_FILES) {
    if (!b->too_many)
      FAIL(b, G_BAGIT, NULL, "the bag holds more than %d files; the rest were not checked",
           BAG_MAX_FILES);
    b->too_many = true;
    return NULL;
  }
  if (b->nfiles == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 256;
    b->files = cu_xrealloc(b->files, b->cap * sizeof *b->files);
  }
  bfile *f = &b->files[b->nfiles++];
  memset(f, 0, sizeof *f);
  f->path = cu_xstrdup(path);
  f->payload = !strncmp(path, "data/", 5);
  return f;
}

static int by_path_cmp(const void *a, const void *c) {
  return strcmp(((const bfile *)a)->path, ((const bfile *)c)->path);
}

/* Opens a file of the bag for reading, never through a symbolic link in
 * its last component (the walk reports links anywhere in the bag). */
static int open_in(bctx *b, const char *rel) {
  return openat(b->dirfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

static int read_small(bctx *b, const char *rel, size_t max, cu_buf *out) {
  int fd = open_in(b, rel);
  if (fd < 0) return cu_error_errno(cu_errno_code(errno), errno, "cannot open %s", rel);
  return cu_read_small_fd(fd, rel, max, out);
}

/* Every file in the bag, by its path relative to the base. */
static int walk(bctx *b, int dfd, const char *rel, int depth) {
  int fd = dup(dfd);
  if (fd < 0)
    return cu_error_errno(CU_EIO, errno, "cannot read the directory %s", *rel ? rel : ".");
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return cu_error_errno(CU_EIO, errno, "cannot read the directory %s", *rel ? rel : ".");
  }
  int rc = 0;
  struct dirent *e;
  char path[BAG_MAX_PATH + 1];
  while (!rc && (errno = 0, e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    int n = snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
    if (n < 0 || (size_t)n >= sizeof path) {
      FAIL(b, G_BAGIT, NULL, "%s/%s: a path longer than %d bytes", rel, e->d_name, BAG_MAX_PATH);
      continue;
    }
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
      FAIL(b, G_BAGIT, path, "%s cannot be read: %s", path, strerror(errno));
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!*rel && !strcmp(e->d_name, "data")) b->has_data_dir = true;
      if (depth >= BAG_MAX_DEPTH) {
        FAIL(b, G_BAGIT, path, "%s: directories nested deeper than %d levels were not checked",
             path, BAG_MAX_DEPTH);
        continue;
      }
      int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        FAIL(b, G_BAGIT, path, "%s cannot be read: %s", path, strerror(errno));
        continue;
      }
      rc = walk(b, sub, path, depth + 1);
      close(sub);
    } else if (S_ISLNK(st.st_mode)) {
      FAIL(b, G_BAGIT, path, "%s is a symbolic link: a bag holds files, and links are not followed",
           path);
    } else if (!S_ISREG(st.st_mode)) {
      FAIL(b, G_BAGIT, path, "%s is not a regular file", path);
    } else {
      bfile *f = file_add(b, path);
      if (f) {
        f->on_disk = true;
        f->size = (uint64_t)st.st_size;
      }
    }
  }
  if (!rc && errno)
    rc = cu_error_errno(CU_EIO, errno, "cannot read the directory %s", *rel ? rel : ".");
  closedir(d);
  return rc;
}

/* ---- a line reader with a cap on a line --------------------------------- */

typedef struct {
  int fd;
  size_t pos, len;
  bool eof;
  uint64_t no;   /* the number of the line just read, from 1 */
  bool too_long; /* the line just read passed the cap (its start is kept) */
  bool newline;  /* the line just read ended in LF */
  cu_buf line;
  char chunk[READ_CHUNK];
} lreader;

static lreader *lr_open(bctx *b, const char *rel, size_t max) {
  int fd = open_in(b, rel);
  if (fd < 0) {
    cu_error_errno(cu_errno_code(errno), errno, "cannot open %s", rel);
    return NULL;
  }
  lreader *r = cu_xcalloc(1, sizeof *r);
  r->fd = fd;
  cu_buf_init(&r->line, max);
  return r;
}

static void lr_close(lreader *r) {
  if (!r) return;
  close(r->fd);
  cu_buf_release(&r->line);
  free(r);
}

/* 1: a line is in r->line (without its LF); 0: the end; < 0: an error. */
static int lr_next(lreader *r) {
  cu_buf_reset(&r->line);
  cu_buf_add(&r->line, "", 0);
  r->too_long = r->newline = false;
  bool any = false;
  for (;;) {
    if (r->pos == r->len) {
      if (r->eof) {
        if (!any) return 0;
        r->no++;
        return 1;
      }
      ssize_t n = read(r->fd, r->chunk, sizeof r->chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return cu_error_errno(CU_EIO, errno, "cannot read");
      if (n == 0) {
        r->eof = true;
        continue;
      }
      r->pos = 0;
      r->len = (size_t)n;
    }
    const char *s = r->chunk + r->pos;
    size_t avail = r->len - r->pos;
    const char *nl = memchr(s, '\n', avail);
    size_t take = nl ? (size_t)(nl - s) : avail;
    any = true;
    if (!r->too_long && cu_buf_add(&r->line, s, take)) r->too_long = true;
    r->pos += take + (nl ? 1 : 0);
    if (nl) {
      r->newline = true;
      r->no++;
      return 1;
    }
  }
}

/* ---- 1. RFC 8493 ------------------------------------------------------- */

static void check_bagit_txt(bctx *b) {
  bfile *f = file_get(b, "bagit.txt");
  if (!f || !f->on_disk) {
    FAIL(b, G_BAGIT, "bagit.txt", "bagit.txt is missing: without it this is not a bag");
    return;
  }
  cu_buf t = CU_BUF_INIT(4096);
  if (read_small(b, "bagit.txt", t.max, &t)) {
    FAIL(b, G_BAGIT, "bagit.txt", "bagit.txt: %s", cu_errmsg());
  } else if (t.len >= 3 && !memcmp(t.data, "\xef\xbb\xbf", 3)) {
    FAIL(b, G_BAGIT, "bagit.txt",
         "bagit.txt starts with a byte order mark (RFC 8493 §2.1.1 forbids one)");
  } else if (strlen(BAGIT_TXT) != t.len || memcmp(t.data, BAGIT_TXT, t.len)) {
    /* Name the first line that differs. */
    static const char *const want[] = {"BagIt-Version: 1.0", "Tag-File-Character-Encoding: UTF-8"};
    const char *p = t.data, *end = t.data + t.len;
    int line = 0;
    bool said = false;
    while (p < end && !said) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
      if (line >= 2) {
        FAIL(b, G_BAGIT, "bagit.txt",
             "bagit.txt has more than the two lines of the BagIt 1.0 declaration");
        said = true;
      } else if (n != strlen(want[line]) || memcmp(p, want[line], n)) {
        FAIL(b, G_BAGIT, "bagit.txt", "bagit.txt line %d is '%.*s', expected '%s'", line + 1,
             (int)(n > 200 ? 200 : n), p, want[line]);
        said = true;
      } else if (!nl) {
        FAIL(b, G_BAGIT, "bagit.txt", "bagit.txt line %d does not end in a newline", line + 1);
        said = true;
      }
      line++;
      p = nl ? nl + 1 : end;
    }
    if (!said)
      FAIL(b, G_BAGIT, "bagit.txt",
           "bagit.txt has %d line(s), expected the two of the BagIt 1.0 declaration", line);
  }
  cu_buf_release(&t);
}

/* Decodes %0A, %0D and %25 in place (RFC 8493 §2.1.3: only those, and a
 * '%' must be one of them). NULL, or what is wrong. */
static const char *pct_decode(char *p, size_t *len) {
  size_t o = 0, n = *len;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '%') {
      p[o++] = p[i];
      continue;
    }
    if (i + 2 >= n) return "a '%' that is not %0A, %0D or %25";
    char h = p[i + 1], l = (char)(p[i + 2] | 0x20);
    if (h == '0' && l == 'a')
      p[o++] = '\n';
    else if (h == '0' && l == 'd')
      p[o++] = '\r';
    else if (h == '2' && p[i + 2] == '5')
      p[o++] = '%';
    else
      return "a '%' that is not %0A, %0D or %25";
    i += 2;
  }
  *len = o;
  p[o] = '\0';
  return NULL;
}

/* NULL if path is a safe relative path, else what is wrong with it. */
static const char *path_problem(const char *p, size_t n) {
  if (!n) return "is empty";
  if (n > BAG_MAX_PATH) return "is longer than 4096 bytes";
  if (!cu_utf8_valid(p, n)) return "is not UTF-8 (or holds a NUL byte)";
  if (p[0] == '/') return "is absolute";
  if (memchr(p, '\\', n)) return "holds a backslash (paths use '/')";
  const char *s = p, *end = p + n;
  while (s <= end) {
    const char *sl = memchr(s, '/', (size_t)(end - s));
    size_t c = sl ? (size_t)(sl - s) : (size_t)(end - s);
    if (c == 0) return "has an empty component ('//' or a trailing '/')";
    if (c == 1 && s[0] == '.') return "has a '.' component";
    if (c == 2 && s[0] == '.' && s[1] == '.') return "has a '..' component";
    if (!sl) break;
    s = sl + 1;
  }
  return NULL;
}

static void parse_manifest_line(bctx *b, int mi, lreader *r) {
  manifest *m = &b->man[mi];
  char *s = r->line.data;
  size_t n = r->line.len;
  int64_t no = (int64_t)r->no;
  if (r->too_long) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no, "%s line %lld is longer than %d bytes", m->name,
            (long long)no, BAG_MAX_MANIFEST_LINE);
    return;
  }
  if (n && s[n - 1] == '\r') s[--n] = '\0'; /* CRLF is a legal line end */
  if (no == 1 && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no, "%s starts with a byte order mark", m->name);
    return;
  }
  if (!n) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no, "%s line %lld is empty", m->name, (long long)no);
    return;
  }
  if (memchr(s, '\0', n)) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no, "%s line %lld holds a NUL byte", m->name,
            (long long)no);
    return;
  }
  size_t h = 0;
  while (h < n && s[h] != ' ' && s[h] != '\t')
    h++;
  size_t want = 2 * algs[m->alg].len;
  bool hex = h == want;
  for (size_t i = 0; hex && i < h; i++)
    hex = (s[i] >= '0' && s[i] <= '9') || ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f');
  if (!hex) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no,
            "%s line %lld does not start with a %s in hex: '%.*s'", m->name, (long long)no,
            algs[m->alg].label, (int)(h > 140 ? 140 : h), s);
    return;
  }
  size_t p = h;
  while (p < n && (s[p] == ' ' || s[p] == '\t'))
    p++;
  if (p == h || p == n) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no, "%s line %lld has a checksum but no path", m->name,
            (long long)no);
    return;
  }
  char *path = s + p;
  size_t plen = n - p;
  const char *bad = pct_decode(path, &plen);
  if (!bad) bad = path_problem(path, plen);
  if (bad) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no, "%s line %lld: the path '%s' %s%s", m->name,
            (long long)no, path, bad[0] == 'a' ? "has " : "", bad);
    return;
  }
  bool payload = !strncmp(path, "data/", 5);
  if (!m->tag && !payload) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no,
            "%s line %lld lists '%s', which is outside data/ (a payload manifest lists only "
            "payload files)",
            m->name, (long long)no, path);
    return;
  }
  if (m->tag && payload) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no,
            "%s line %lld lists the payload file '%s' (a tag manifest lists only tag files)",
            m->name, (long long)no, path);
    return;
  }
  if (m->tag && !strcmp(path, m->name)) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no, "%s line %lld lists the tag manifest itself",
            m->name, (long long)no);
    return;
  }
  bfile *f = file_get(b, path);
  if (!f) {
    f = file_add(b, path);
    if (!f) return;
    json_object_setn_new_nocheck(b->by_path, path, plen, json_integer((json_int_t)(f - b->files)));
  }
  if (f->want[mi]) {
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, no, "%s line %lld lists '%s' again (first on line %llu)",
            m->name, (long long)no, path, (unsigned long long)f->line[mi]);
    return;
  }
  f->want[mi] = cu_xstrndup(s, h);
  for (size_t i = 0; i < h; i++)
    if (f->want[mi][i] >= 'A' && f->want[mi][i] <= 'F')
      f->want[mi][i] = (char)(f->want[mi][i] | 0x20);
  f->line[mi] = (uint64_t)no;
}

static void parse_manifest(bctx *b, int mi) {
  manifest *m = &b->man[mi];
  lreader *r = lr_open(b, m->name, BAG_MAX_MANIFEST_LINE);
  if (!r) {
    FAIL(b, G_BAGIT, m->name, "%s: %s", m->name, cu_errmsg());
    return;
  }
  int rc;
  bool newline = true;
  while ((rc = lr_next(r)) == 1) {
    parse_manifest_line(b, mi, r);
    newline = r->newline;
  }
  if (rc < 0)
    FAIL(b, G_BAGIT, m->name, "%s: %s", m->name, cu_errmsg());
  else if (!newline)
    FAIL_AT(b, G_BAGIT, m->name, NULL, -1, (int64_t)r->no,
            "%s: its last line (%llu) does not end in a newline", m->name,
            (unsigned long long)r->no);
  lr_close(r);
}

static void find_manifests(bctx *b) {
  for (size_t i = 0; i < b->nfiles; i++) {
    const char *p = b->files[i].path;
    bool tag = !strncmp(p, "tagmanifest-", 12);
    if (strchr(p, '/') || (strncmp(p, "manifest-", 9) && !tag)) continue;
    b->files[i].is_tagmanifest = tag;
    const char *a = p + (tag ? 12 : 9), *dot = strrchr(p, '.');
    int alg = -1;
    for (size_t k = 0; dot && k < NALGS; k++)
      if (strlen(algs[k].name) == (size_t)(dot - a) &&
          !memcmp(a, algs[k].name, (size_t)(dot - a)) && !strcmp(dot, ".txt"))
        alg = (int)k;
    if (alg < 0) {
      FAIL(b, G_BAGIT, p,
           "%s is not a manifest of an algorithm BagIt 1.0 knows (md5, sha1, sha224, "
           "sha256, sha384, sha512)",
           p);
      continue;
    }
    if (b->nman == MAX_MANIFESTS) {
      FAIL(b, G_BAGIT, p, "%s: more than %d manifests; it was not checked", p, MAX_MANIFESTS);
      continue;
    }
    manifest *m = &b->man[b->nman++];
    snprintf(m->name, sizeof m->name, "%s", p);
    m->alg = alg;
    m->tag = tag;
  }
  static const char *const required[] = {"manifest-sha256.txt", "manifest-sha512.txt",
                                         "tagmanifest-sha256.txt"};
  for (size_t k = 0; k < 3; k++) {
    bool found = false;
    for (int i = 0; i < b->nman; i++)
      found |= !strcmp(b->man[i].name, required[k]);
    if (!found)
      FAIL(b, G_BAGIT, required[k],
           "%s is missing (a Custos bag has manifest-sha256.txt, "
           "manifest-sha512.txt and tagmanifest-sha256.txt)",
           required[k]);
  }
}

static void manifests_list(const bctx *b, const bfile *f, bool listed, bool tag, char *out,
                           size_t n) {
  size_t o = 0;
  out[0] = '\0';
  for (int i = 0; i < b->nman; i++) {
    if (b->man[i].tag != tag || (f->want[i] != NULL) != listed) continue;
    int w;
    if (listed)
      w = snprintf(out + o, n - o, "%s%s line %llu", o ? ", " : "", b->man[i].name,
                   (unsigned long long)f->line[i]);
    else
      w = snprintf(out + o, n - o, "%s%s", o ? ", " : "", b->man[i].name);
    if (w < 0 || (size_t)w >= n - o) break;
    o += (size_t)w;
  }
}

/* Completeness (RFC 8493 §3): every file listed exists, every payload file
 * is in every payload manifest, every tag file in every tag manifest. */
static void check_complete(bctx *b) {
  if (!b->has_data_dir) FAIL(b, G_BAGIT, "data", "the bag has no data/ directory");
  char list[1024];
  for (size_t i = 0; i < b->nfiles; i++) {
    bfile *f = &b->files[i];
    if (!f->on_disk) {
      manifests_list(b, f, true, f->payload ? false : true, list, sizeof list);
      FAIL(b, G_BAGIT, f->path, "%s is missing: %s list%s it", f->path, list,
           strchr(list, ',') ? "" : "s");
      continue;
    }
    if (f->is_tagmanifest) continue;
    bool any_missing = false;
    for (int m = 0; m < b->nman; m++)
      any_missing |= b->man[m].tag != f->payload && !f->want[m];
    if (!any_missing) continue;
    manifests_list(b, f, false, !f->payload, list, sizeof list);
    FAIL(b, G_BAGIT, f->path, "%s is in the bag but not listed in %s%s", f->path, list,
         f->payload ? "" : " (every file outside data/ is a tag file)");
  }
}

static void hash_progress(bctx *b, uint64_t n) {
  b->bytes_done += n;
  if (b->o->progress) b->o->progress(b->o->ud, b->bytes_done, b->bytes_total);
}

static int hash_file(bctx *b, bfile *f, unsigned mask) {
  EVP_MD_CTX *ctx[NALGS] = {0};
  int rc = 0;
  int fd = open_in(b, f->path);
  if (fd < 0) return cu_error_errno(cu_errno_code(errno), errno, "cannot open it");
  for (size_t k = 0; k < NALGS; k++) {
    if (!(mask & (1u << k))) continue;
    if (!(ctx[k] = EVP_MD_CTX_new()) || EVP_DigestInit_ex(ctx[k], algs[k].md(), NULL) != 1) {
      rc = ossl_fail(CU_EIO, "cannot start a %s digest", algs[k].label);
      goto done;
    }
  }
  for (;;) {
    ssize_t n = read(fd, b->hashbuf, HASH_CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = cu_error_errno(CU_EIO, errno, "cannot read it");
      goto done;
    }
    if (n == 0) break;
    for (size_t k = 0; k < NALGS; k++)
      if (ctx[k]) EVP_DigestUpdate(ctx[k], b->hashbuf, (size_t)n);
    hash_progress(b, (uint64_t)n);
  }
  for (size_t k = 0; k < NALGS; k++) {
    if (!ctx[k]) continue;
    unsigned char md[64];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(ctx[k], md, &len) != 1) {
      rc = ossl_fail(CU_EIO, "cannot finish a %s digest", algs[k].label);
      goto done;
    }
    char hex[129];
    cu_hex_encode(md, len, hex);
    f->got[k] = cu_xstrdup(hex);
  }
done:
  for (size_t k = 0; k < NALGS; k++)
    EVP_MD_CTX_free(ctx[k]);
  close(fd);
  return rc;
}

static unsigned hash_mask(const bctx *b, const bfile *f) {
  unsigned mask = 0;
  for (int m = 0; m < b->nman; m++)
    if (f->want[m]) mask |= 1u << b->man[m].alg;
  if (mask && f->payload) mask |= 1u << ALG_SHA256; /* for the custody checks */
  return mask;
}

/* Validity (RFC 8493 §3): every checksum in every manifest. */
static void check_valid(bctx *b) {
  for (size_t i = 0; i < b->nfiles; i++) {
    bfile *f = &b->files[i];
    if (f->on_disk && hash_mask(b, f)) b->bytes_total += f->size;
  }
  for (size_t i = 0; i < b->nfiles; i++) {
    bfile *f = &b->files[i];
    unsigned mask = hash_mask(b, f);
    if (!f->on_disk || !mask) continue;
    if (hash_file(b, f, mask)) {
      FAIL(b, G_BAGIT, f->path, "%s cannot be hashed: %s", f->path, cu_errmsg());
      continue;
    }
    for (int m = 0; m < b->nman; m++) {
      if (!f->want[m] || !f->got[b->man[m].alg] || !strcmp(f->want[m], f->got[b->man[m].alg]))
        continue;
      FAIL_AT(b, G_BAGIT, f->path, NULL, -1, (int64_t)f->line[m],
              "%s: %s line %llu says %s %s, the file's is %s", f->path, b->man[m].name,
              (unsigned long long)f->line[m], algs[b->man[m].alg].label, f->want[m],
              f->got[b->man[m].alg]);
    }
  }
}

static void count_payload(bctx *b) {
  for (size_t i = 0; i < b->nfiles; i++) {
    bfile *f = &b->files[i];
    if (f->on_disk && f->payload) {
      b->payload_files++;
      b->payload_bytes += f->size;
    } else if (f->on_disk) {
      b->tag_files++;
    }
  }
}

static const char *info_one(bctx *b, const char *label) {
  json_t *v = json_object_get(b->info, label);
  return json_array_size(v) == 1 ? json_string_value(json_array_get(v, 0)) : NULL;
}

/* bag-info.txt: "Label: value" elements, a value continued on lines that
 * start with whitespace (RFC 8493 §2.2.2). */
static void check_bag_info(bctx *b) {
  bfile *f = file_get(b, "bag-info.txt");
  if (!f || !f->on_disk) {
    FAIL(b, G_BAGIT, "bag-info.txt", "bag-info.txt is missing: nothing gives the Payload-Oxum");
    return;
  }
  lreader *r = lr_open(b, "bag-info.txt", 64 * 1024);
  if (!r) {
    FAIL(b, G_BAGIT, "bag-info.txt", "bag-info.txt: %s", cu_errmsg());
    return;
  }
  json_t *last = NULL; /* the value being continued */
  char *label = NULL;
  int rc;
  while ((rc = lr_next(r)) == 1) {
    char *s = r->line.data;
    size_t n = r->line.len;
    int64_t no = (int64_t)r->no;
    if (n && s[n - 1] == '\r') s[--n] = '\0';
    if (r->too_long || memchr(s, '\0', n) || !cu_utf8_valid(s, n)) {
      FAIL_AT(b, G_BAGIT, "bag-info.txt", NULL, -1, no, "bag-info.txt line %lld is %s",
              (long long)no, r->too_long ? "too long" : "not UTF-8 text");
      last = NULL;
      continue;
    }
    if (no == 1 && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
      FAIL_AT(b, G_BAGIT, "bag-info.txt", NULL, -1, no,
              "bag-info.txt starts with a byte order mark");
      continue;
    }
    if (n && (s[0] == ' ' || s[0] == '\t')) {
      if (!last) {
        FAIL_AT(b, G_BAGIT, "bag-info.txt", NULL, -1, no,
                "bag-info.txt line %lld continues a value, but no element comes before it",
                (long long)no);
        continue;
      }
      size_t k = 0;
      while (k < n && (s[k] == ' ' || s[k] == '\t'))
        k++;
      char *joined = cu_xasprintf("%s %s", json_string_value(last), s + k);
      json_string_set(last, joined);
      free(joined);
      continue;
    }
    char *colon = memchr(s, ':', n);
    if (!colon || colon == s || colon[-1] == ' ' || colon[-1] == '\t' ||
        (colon + 1 < s + n && colon[1] != ' ' && colon[1] != '\t')) {
      FAIL_AT(b, G_BAGIT, "bag-info.txt", NULL, -1, no,
              "bag-info.txt line %lld is not 'Label: value': '%s'", (long long)no, s);
      last = NULL;
      continue;
    }
    free(label);
    label = cu_xstrndup(s, (size_t)(colon - s));
    const char *v = colon + 1 < s + n ? colon + 2 : colon + 1;
    json_t *list = json_object_get(b->info, label);
    if (!list) json_object_set_new(b->info, label, list = json_array());
    last = json_string(v);
    json_array_append_new(list, last);
  }
  if (rc < 0) FAIL(b, G_BAGIT, "bag-info.txt", "bag-info.txt: %s", cu_errmsg());
  free(label);
  lr_close(r);

  static const char *const once[] = {"Payload-Oxum", "Bagging-Date", "Bag-Size",
                                     "Bag-Group-Identifier"};
  for (size_t k = 0; k < sizeof once / sizeof *once; k++)
    if (json_array_size(json_object_get(b->info, once[k])) > 1)
      FAIL(b, G_BAGIT, "bag-info.txt", "bag-info.txt has %zu %s elements (RFC 8493 allows one)",
           json_array_size(json_object_get(b->info, once[k])), once[k]);
  const char *oxum = info_one(b, "Payload-Oxum");
  if (!json_object_get(b->info, "Payload-Oxum")) {
    FAIL(b, G_BAGIT, "bag-info.txt", "bag-info.txt has no Payload-Oxum");
  } else if (oxum) {
    const char *dot = strchr(oxum, '.');
    int64_t bytes = 0, count = 0;
    char *a = dot ? cu_xstrndup(oxum, (size_t)(dot - oxum)) : NULL;
    bool ok = a && !cu_parse_i64(a, &bytes, 0) && !cu_parse_i64(dot + 1, &count, 0);
    free(a);
    if (!ok)
      FAIL(b, G_BAGIT, "bag-info.txt", "bag-info.txt: Payload-Oxum '%s' is not <octets>.<files>",
           oxum);
    else if ((uint64_t)bytes != b->payload_bytes || (uint64_t)count != b->payload_files)
      FAIL(b, G_BAGIT, "bag-info.txt",
           "Payload-Oxum says %s (%lld bytes in %lld files), the payload is %llu.%llu (%llu bytes "
           "in %llu files)",
           oxum, (long long)bytes, (long long)count, (unsigned long long)b->payload_bytes,
           (unsigned long long)b->payload_files, (unsigned long long)b->payload_bytes,
           (unsigned long long)b->payload_files);
  }
}

/* ---- 2. the head -------------------------------------------------------- */

static void key_text(const char *name, const unsigned char pub[32], char *out, size_t n) {
  cu_buf k = CU_BUF_INIT(1024);
  note_vkey(name, pub, &k);
  snprintf(out, n, "%s", k.data ? k.data : "?");
  cu_buf_release(&k);
}

/* custody/ledger-key.pem must hold the key of ledger-key.txt. */
static void check_key_pem(bctx *b, const unsigned char pub[32]) {
  cu_buf pem = CU_BUF_INIT(64 * 1024);
  const char *p = "custody/ledger-key.pem";
  if (read_small(b, p, pem.max, &pem)) {
    FAIL(b, G_STH, p, "%s: %s", p, cu_errmsg());
    cu_buf_release(&pem);
    return;
  }
  BIO *bio = BIO_new_mem_buf(pem.data, (int)pem.len);
  EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
  unsigned char raw[32];
  size_t len = sizeof raw;
  if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519 ||
      EVP_PKEY_get_raw_public_key(k, raw, &len) != 1 || len != 32) {
    ERR_clear_error();
    FAIL(b, G_STH, p, "%s is not an Ed25519 public key in PEM", p);
  } else if (memcmp(raw, pub, 32)) {
    FAIL(b, G_STH, p, "%s holds another key than custody/ledger-key.txt", p);
  }
  EVP_PKEY_free(k);
  BIO_free(bio);
  cu_buf_release(&pem);
}

static void check_sth_json(bctx *b, const note_checkpoint *cp, bool signed_ok) {
  const char *p = "custody/sth.json";
  cu_buf t = CU_BUF_INIT(BAG_MAX_SMALL_FILE);
  json_t *sth = NULL;
  if (read_small(b, p, t.max, &t)) {
    FAIL(b, G_STH, p, "%s: %s", p, cu_errmsg());
    goto done;
  }
  if (cu_json_parse(t.data, t.len, &sth) || !json_is_object(sth)) {
    FAIL(b, G_STH, p, "%s is not a JSON object%s%s", p, sth ? "" : ": ", sth ? "" : cu_errmsg());
    goto done;
  }
  const char *origin = cu_json_str(sth, "origin"), *root = cu_json_str(sth, "root");
  const char *note = cu_json_str(sth, "checkpoint");
  json_t *size = json_object_get(sth, "size");
  merkle_hash r;
  bool good = origin && root && note && json_is_integer(size) && json_integer_value(size) >= 0 &&
              strlen(root) == 64 && !cu_hex_decode(root, 64, r, 32);
  if (!good) {
    FAIL(b, G_STH, p, "%s lacks origin, size, root (64 hex digits) or checkpoint", p);
    goto done;
  }
  if (b->checkpoint.data &&
      (strlen(note) != b->checkpoint.len || memcmp(note, b->checkpoint.data, b->checkpoint.len)))
    FAIL(b, G_STH, p, "%s: its checkpoint field differs from custody/checkpoint.txt", p);
  if (!signed_ok) { /* proofs are still checked, against what sth.json says */
    b->have_root = true;
    b->size = (uint64_t)json_integer_value(size);
    memcpy(b->root, r, 32);
    snprintf(b->origin, sizeof b->origin, "%s", origin);
    goto done;
  }
  char hex[65];
  cu_hex_encode(cp->root, 32, hex);
  if ((uint64_t)json_integer_value(size) != cp->size)
    FAIL(b, G_STH, p, "%s says size %lld, the signed checkpoint says %llu", p,
         (long long)json_integer_value(size), (unsigned long long)cp->size);
  if (memcmp(r, cp->root, 32))
    FAIL(b, G_STH, p, "%s says root %s, the signed checkpoint says %s", p, root, hex);
  if (strcmp(origin, cp->origin))
    FAIL(b, G_STH, p, "%s says origin '%s', the signed checkpoint says '%s'", p, origin,
         cp->origin);
done:
  json_decref(sth);
  cu_buf_release(&t);
}

static void check_head(bctx *b) {
  char name[NOTE_MAX_ORIGIN + 1];
  const char *gname = b->gname;
  const unsigned char *gpub = b->gpub;
  unsigned char pub[32];
  note_checkpoint cp;
  memset(&cp, 0, sizeof cp);
  bool key_ok = false, signed_ok = false;

  char *kpath = cu_path_join(b->o->bag, "custody/ledger-key.txt");
  bfile *kf = file_get(b, "custody/ledger-key.txt");
  if (!kf || !kf->on_disk)
    FAIL(b, G_STH, "custody/ledger-key.txt",
         "custody/ledger-key.txt is missing: the head cannot be checked");
  else if (verify_read_vkey(kpath, name, pub))
    FAIL(b, G_STH, "custody/ledger-key.txt", "custody/ledger-key.txt: %s", cu_errmsg());
  else
    key_ok = true;
  free(kpath);
  if (key_ok) check_key_pem(b, pub);

  bfile *cf = file_get(b, "custody/checkpoint.txt");
  if (!cf || !cf->on_disk) {
    FAIL(b, G_STH, "custody/checkpoint.txt",
         "custody/checkpoint.txt is missing: no signed tree head");
  } else if (read_small(b, "custody/checkpoint.txt", NOTE_MAX_BYTES, &b->checkpoint)) {
    FAIL(b, G_STH, "custody/checkpoint.txt", "custody/checkpoint.txt: %s", cu_errmsg());
  } else if (key_ok) {
    char k[512];
    key_text(name, pub, k, sizeof k);
    if (verify_checkpoint(b->checkpoint.data, b->checkpoint.len, name, pub, &cp))
      FAIL(b, G_STH, "custody/checkpoint.txt",
           "custody/checkpoint.txt does not verify under custody/ledger-key.txt (%s): %s", k,
           cu_errmsg());
    else
      signed_ok = true;
  }
  if (b->o->ledger_key) {
    char given[512], own[512];
    key_text(gname, gpub, given, sizeof given);
    if (key_ok && (strcmp(name, gname) || memcmp(pub, gpub, 32))) {
      key_text(name, pub, own, sizeof own);
      FAIL(b, G_STH, "custody/ledger-key.txt",
           "the bag's ledger key (custody/ledger-key.txt) is %s, but the key you trust (%s) is %s",
           own, b->o->ledger_key, given);
    }
    note_checkpoint gcp;
    bool same = key_ok && !strcmp(name, gname) && !memcmp(pub, gpub, 32);
    if (b->checkpoint.len && !same) {
      if (verify_checkpoint(b->checkpoint.data, b->checkpoint.len, gname, gpub, &gcp)) {
        FAIL(b, G_STH, "custody/checkpoint.txt",
             "custody/checkpoint.txt does not verify under %s (%s): %s", b->o->ledger_key, given,
             cu_errmsg());
      } else if (!signed_ok) { /* the bag's own key is unusable; the trusted one vouches */
        cp = gcp;
        signed_ok = true;
      }
    }
  }
  /* The bag's own checks (sth.json, the proofs) run against the signed
   * root; a key that is not the one trusted has been named above. */
  if (signed_ok) {
    b->have_root = true;
    b->size = cp.size;
    memcpy(b->root, cp.root, 32);
    snprintf(b->origin, sizeof b->origin, "%s", cp.origin);
  }
  check_sth_json(b, &cp, signed_ok);
  if (signed_ok) {
    const char *ts = info_one(b, "X-Custos-Tree-Size"), *lo = info_one(b, "X-Custos-Ledger-Origin");
    char sz[32];
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)cp.size);
    if (ts && strcmp(ts, sz))
      FAIL(b, G_STH, "bag-info.txt",
           "bag-info.txt says X-Custos-Tree-Size %s, the signed head's size is %s", ts, sz);
    if (lo && strcmp(lo, cp.origin))
      FAIL(b, G_STH, "bag-info.txt",
           "bag-info.txt says X-Custos-Ledger-Origin '%s', the signed head's is '%s'", lo,
           cp.origin);
  }
}

/* ---- where a payload file belongs --------------------------------------- */

typedef struct {
  char id[CU_ID_LEN + 1];
  char kind[96]; /* "original", a rendition kind, or "clip:<mode>:<start>:<end>" */
} place;

static bool digits(const char *s, size_t n) {
  if (!n || n > 19) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return !(n > 1 && s[0] == '0');
}

/* data/<id>/original/<name>, data/<id>/<kind>/<name>.<ext>,
 * data/<id>/clips/clip-<mode>-<start ms>-<end ms>.mp4 (docs/EXPORT.md). */
static bool classify(const char *path, place *out) {
  if (strncmp(path, "data/", 5)) return false;
  const char *id = path + 5, *s1 = strchr(id, '/');
  if (!s1 || (size_t)(s1 - id) != CU_ID_LEN) return false;
  memcpy(out->id, id, CU_ID_LEN);
  out->id[CU_ID_LEN] = '\0';
  if (!cu_id_valid(out->id)) return false;
  const char *k = s1 + 1, *s2 = strchr(k, '/');
  if (!s2 || !s2[1] || strchr(s2 + 1, '/')) return false;
  size_t kl = (size_t)(s2 - k);
  const char *name = s2 + 1;
  static const char *const kinds[] = {"original", "master", "access", "framehash", "poster"};
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
    if (kl == strlen(kinds[i]) && !memcmp(k, kinds[i], kl)) {
      snprintf(out->kind, sizeof out->kind, "%s", kinds[i]);
      return true;
    }
  }
  if (kl != 5 || memcmp(k, "clips", 5) || strncmp(name, "clip-", 5)) return false;
  const char *m = name + 5, *d1 = strchr(m, '-');
  if (!d1) return false;
  const char *a = d1 + 1, *d2 = strchr(a, '-');
  if (!d2) return false;
  const char *c = d2 + 1, *ext = strstr(c, ".mp4");
  if (!ext || ext[4]) return false;
  size_t ml = (size_t)(d1 - m);
  if (!((ml == 4 && !memcmp(m, "copy", 4)) || (ml == 5 && !memcmp(m, "exact", 5)))) return false;
  if (!digits(a, (size_t)(d2 - a)) || !digits(c, (size_t)(ext - c))) return false;
  snprintf(out->kind, sizeof out->kind, "clip:%.*s:%.*s:%.*s", (int)ml, m, (int)(d2 - a), a,
           (int)(ext - c), c);
  return true;
}

/* The hash (alg) of a payload file that the later checks (custody,
 * tokens, REPORT.json) use. When the bytes agree with a payload manifest,
 * the bytes' hash: a changed manifest line is then named once, by the
 * bagit check. When they agree with none, what the manifest says: the
 * bytes were changed, which the bagit check has named, and the later
 * checks still ask whether the bag as listed is the bag recorded. NULL
 * if no payload manifest lists the file. */
static const char *file_hash(const bctx *b, const bfile *f, int alg) {
  const char *listed = NULL;
  bool agrees = false;
  for (int m = 0; m < b->nman; m++) {
    if (b->man[m].tag || !f->want[m]) continue;
    if (b->man[m].alg == alg) listed = f->want[m];
    const char *got = f->got[b->man[m].alg];
    if (got && !strcmp(got, f->want[m])) agrees = true;
  }
  if (agrees && f->got[alg]) return f->got[alg];
  return listed;
}

static const char *file_sha256(const bctx *b, const bfile *f) {
  return file_hash(b, f, ALG_SHA256);
}
static const char *file_sha512(const bctx *b, const bfile *f) {
  return file_hash(b, f, ALG_SHA512);
}

/* ---- 3. REPORT.json ----------------------------------------------------- */

static void check_report_files(bctx *b) {
  const char *p = "REPORT.json";
  bfile *rf = file_get(b, p);
  if (!rf || !rf->on_disk) {
    FAIL(b, G_REPORT, p, "REPORT.json is missing");
    return;
  }
  if (rf->size > BAG_MAX_REPORT_BYTES) {
    FAIL(b, G_REPORT, p, "REPORT.json is larger than %d bytes; it was not checked",
         BAG_MAX_REPORT_BYTES);
    return;
  }
  cu_buf t = CU_BUF_INIT(BAG_MAX_REPORT_BYTES);
  if (read_small(b, p, t.max, &t)) {
    FAIL(b, G_REPORT, p, "REPORT.json: %s", cu_errmsg());
    cu_buf_release(&t);
    return;
  }
  json_t *r = NULL;
  if (cu_json_parse(t.data, t.len, &r) || !json_is_object(r)) {
    FAIL(b, G_REPORT, p, "REPORT.json is not a JSON object%s%s", r ? "" : ": ",
         r ? "" : cu_errmsg());
    json_decref(r);
    cu_buf_release(&t);
    return;
  }
  cu_buf_release(&t);
  b->report = r;

  const json_t *sth = json_object_get(r, "sth");
  if (b->have_root) {
    char hex[65];
    cu_hex_encode(b->root, 32, hex);
    const char *root = cu_json_str(sth, "root"), *origin = cu_json_str(sth, "origin");
    if (cu_json_int(sth, "size", -1) != (int64_t)b->size || !root || strcmp(root, hex) || !origin ||
        strcmp(origin, b->origin))
      FAIL(b, G_REPORT, p,
           "REPORT.json's sth (size %lld, root %s) is not the signed head of the bag "
           "(size %llu, root %s)",
           (long long)cu_json_int(sth, "size", -1), root ? root : "none",
           (unsigned long long)b->size, hex);
  }
  const char *oxum = info_one(b, "Payload-Oxum");
  const char *roxum = cu_json_str(json_object_get(r, "export"), "payload_oxum");
  if (oxum && (!roxum || strcmp(oxum, roxum)))
    FAIL(b, G_REPORT, p, "REPORT.json's export.payload_oxum is %s, bag-info.txt says %s",
         roxum ? roxum : "missing", oxum);

  size_t i, j;
  json_t *item, *file, *ev;
  json_array_foreach(json_object_get(r, "items"), i, item) {
    const char *evid = cu_json_str(json_object_get(item, "evidence"), "id");
    if (!evid) {
      FAIL(b, G_REPORT, p, "REPORT.json item %zu has no evidence.id", i);
      continue;
    }
    json_t *stamp = json_object_get(item, "timestamp");
    if (json_is_object(stamp)) json_object_set(b->report_stamps, evid, stamp);
    json_array_foreach(json_object_get(item, "events"), j, ev) {
      json_t *idx = json_object_get(ev, "index");
      if (!json_is_integer(idx)) {
        FAIL(b, G_REPORT, p, "REPORT.json: event %zu of evidence %s has no index", j, evid);
        continue;
      }
      char key[CU_ID_LEN + 32];
      snprintf(key, sizeof key, "%s/%lld", evid, (long long)json_integer_value(idx));
      json_object_set(b->report_events, key, ev);
    }
    json_array_foreach(json_object_get(item, "files"), j, file) {
      const char *fp = cu_json_str(file, "path");
      bfile *f = fp ? file_get(b, fp) : NULL;
      if (!fp) {
        FAIL(b, G_REPORT, p, "REPORT.json: file %zu of evidence %s has no path", j, evid);
        continue;
      }
      if (!f || !f->payload || !f->on_disk || !file_sha256(b, f)) {
        FAIL(b, G_REPORT, fp, "REPORT.json lists %s, which is not a payload file of the bag", fp);
        continue;
      }
      if (f->in_report++) {
        FAIL(b, G_REPORT, fp, "REPORT.json lists %s more than once", fp);
        continue;
      }
      f->rfile = file;
      const char *s256 = cu_json_str(file, "sha256"), *s512 = cu_json_str(file, "sha512");
      const char *m256 = file_sha256(b, f), *m512 = file_sha512(b, f);
      if (!s256 || strcmp(s256, m256))
        FAIL(b, G_REPORT, fp, "REPORT.json says %s has SHA-256 %s, manifest-sha256.txt says %s", fp,
             s256 ? s256 : "none", m256);
      if (m512 && (!s512 || strcmp(s512, m512)))
        FAIL(b, G_REPORT, fp, "REPORT.json says %s has SHA-512 %s, manifest-sha512.txt says %s", fp,
             s512 ? s512 : "none", m512);
      if (cu_json_int(file, "size", -1) != (int64_t)f->size)
        FAIL(b, G_REPORT, fp, "REPORT.json says %s is %lld bytes, the file is %llu", fp,
             (long long)cu_json_int(file, "size", -1), (unsigned long long)f->size);
      place pl;
      const char *kind = cu_json_str(file, "kind");
      bool known = classify(fp, &pl);
      if (known && (!kind || strcmp(kind, pl.kind)) &&
          !(kind && !strncmp(pl.kind, "clip:", 5) && !strcmp(kind, "clip")))
        FAIL(b, G_REPORT, fp, "REPORT.json says %s is of kind %s, its path says %s", fp,
             kind ? kind : "none", pl.kind);
      if (known && strcmp(pl.id, evid))
        FAIL(b, G_REPORT, fp, "REPORT.json lists %s under evidence %s", fp, evid);
    }
  }
  for (size_t k = 0; k < b->nfiles; k++) {
    bfile *f = &b->files[k];
    if (f->payload && f->on_disk && !f->in_report && file_sha256(b, f))
      FAIL(b, G_REPORT, f->path, "%s is not in REPORT.json", f->path);
  }
}

/* ---- 4. items: events, custody, tokens ---------------------------------- */

typedef struct {
  json_t *ingested;   /* sha256 -> index of a proved "ingested" event */
  json_t *renditions; /* "<kind> <sha256>" -> {"index", "source"} of a proved "rendition" event */
  json_t *unproved;   /* the same keys ("ingested <sha>", "<kind> <sha>") -> index, proof failed */
  json_t *by_kind;    /* "ingested" or kind -> [sha256, index] of the last such proved event */
} facts;

static void fact_event(facts *fx, const json_t *ev, int64_t index, bool proved, const char *evid) {
  const char *type = cu_json_str(ev, "type"), *sha = cu_json_str(ev, "sha256");
  const char *e = cu_json_str(ev, "evidence");
  if (!type || !sha || !e || strcmp(e, evid)) return;
  char key[256];
  if (!strcmp(type, "ingested")) {
    snprintf(key, sizeof key, "ingested %s", sha);
    if (proved) {
      json_object_set_new(fx->ingested, sha, json_integer(index));
      json_object_set_new(fx->by_kind, "ingested", json_pack("[sI]", sha, (json_int_t)index));
    } else {
      json_object_set_new(fx->unproved, key, json_integer(index));
    }
  } else if (!strcmp(type, "rendition")) {
    const char *kind = cu_json_str(ev, "kind"), *src = cu_json_str(ev, "source_sha256");
    if (!kind) return;
    snprintf(key, sizeof key, "%s %s", kind, sha);
    if (proved) {
      json_t *v = json_pack("{sI}", "index", (json_int_t)index);
      if (src) cu_json_set_str(v, "source", src);
      json_object_set_new(fx->renditions, key, v);
      json_object_set_new(fx->by_kind, kind, json_pack("[sI]", sha, (json_int_t)index));
    } else {
      json_object_set_new(fx->unproved, key, json_integer(index));
    }
  }
}

static void check_event_line(bctx *b, const char *evid, const char *ep, lreader *r, facts *fx,
                             int64_t *prev) {
  int64_t no = (int64_t)r->no;
  json_t *line = NULL, *ev = NULL;
  cu_buf data = CU_BUF_INIT(BAG_MAX_EVENT_LINE);
  b->events++;
  if (r->too_long) {
    FAIL_AT(b, G_PROOFS, ep, evid, -1, no, "%s line %lld is longer than %d bytes", ep,
            (long long)no, BAG_MAX_EVENT_LINE);
    goto done;
  }
  if (cu_json_parse(r->line.data, r->line.len, &line) || !json_is_object(line)) {
    FAIL_AT(b, G_PROOFS, ep, evid, -1, no, "%s line %lld is not a JSON object%s%s", ep,
            (long long)no, line ? "" : ": ", line ? "" : cu_errmsg());
    goto done;
  }
  json_t *jidx = json_object_get(line, "index"), *jpath = json_object_get(line, "audit_path");
  const char *d64 = cu_json_str(line, "data");
  if (!json_is_integer(jidx) || json_integer_value(jidx) < 0 || !d64 || !json_is_array(jpath)) {
    FAIL_AT(b, G_PROOFS, ep, evid, -1, no, "%s line %lld lacks index, data or audit_path", ep,
            (long long)no);
    goto done;
  }
  int64_t index = (int64_t)json_integer_value(jidx);
  if (index <= *prev)
    FAIL_AT(
        b, G_PROOFS, ep, evid, index, no,
        "%s line %lld: ledger index %lld does not come after the line before's %lld (events are in "
        "ledger order, each once)",
        ep, (long long)no, (long long)index, (long long)*prev);
  *prev = index;
  if (cu_b64_decode(d64, strlen(d64), &data)) {
    FAIL_AT(b, G_PROOFS, ep, evid, index, no,
            "%s line %lld (ledger index %lld): data is not base64", ep, (long long)no,
            (long long)index);
    goto done;
  }
  merkle_hash path[64];
  size_t n = json_array_size(jpath);
  bool ok = n <= 64;
  for (size_t i = 0; ok && i < n; i++) {
    const char *h = json_string_value(json_array_get(jpath, i));
    ok = h && strlen(h) == 64 && !cu_hex_decode(h, 64, path[i], 32);
  }
  if (!ok) {
    FAIL_AT(
        b, G_PROOFS, ep, evid, index, no,
        "%s line %lld (ledger index %lld): audit_path is not a list of at most 64 hashes in hex",
        ep, (long long)no, (long long)index);
    goto done;
  }
  bool proved = false;
  if (!b->have_root) {
    /* the head already failed; nothing to prove against */
  } else if ((uint64_t)index >= b->size) {
    FAIL_AT(b, G_PROOFS, ep, evid, index, no,
            "%s line %lld: ledger index %lld is not in the signed tree of size %llu", ep,
            (long long)no, (long long)index, (unsigned long long)b->size);
  } else {
    merkle_hash leaf;
    merkle_leaf(data.data, data.len, leaf);
    if (merkle_verify_inclusion((uint64_t)index, b->size, leaf, (const merkle_hash *)path, (int)n,
                                b->root)) {
      proved = true;
      b->proofs++;
    } else {
      FAIL_AT(
          b, G_PROOFS, ep, evid, index, no,
          "%s line %lld (ledger index %lld): the event and its audit path do not lead to the root "
          "of the signed tree of size %llu: the event's data or its proof was changed",
          ep, (long long)no, (long long)index, (unsigned long long)b->size);
    }
  }
  if (cu_json_parse(data.data, data.len, &ev) || !json_is_object(ev)) {
    if (proved)
      FAIL_AT(b, G_PROOFS, ep, evid, index, no,
              "%s line %lld (ledger index %lld): the event is not a JSON object", ep, (long long)no,
              (long long)index);
    goto done;
  }
  const char *e = cu_json_str(ev, "evidence");
  if (proved && e && strcmp(e, evid))
    FAIL_AT(b, G_CUSTODY, ep, evid, index, no,
            "%s line %lld: ledger index %lld is an event of evidence %s", ep, (long long)no,
            (long long)index, e);
  fact_event(fx, ev, index, proved, evid);
  if (b->report) {
    char key[CU_ID_LEN + 32];
    snprintf(key, sizeof key, "%s/%lld", evid, (long long)index);
    json_t *rev = json_object_get(b->report_events, key);
    if (!rev)
      FAIL_AT(b, G_REPORT, "REPORT.json", evid, index, -1,
              "REPORT.json does not list ledger index %lld among the events of evidence %s",
              (long long)index, evid);
    else if (!json_equal(json_object_get(rev, "event"), ev))
      FAIL_AT(b, G_REPORT, "REPORT.json", evid, index, -1,
              "REPORT.json's event at ledger index %lld of evidence %s differs from its exact "
              "bytes in %s",
              (long long)index, evid, ep);
    if (rev) json_object_del(b->report_events, key); /* what is left was not in the bag */
  }
done:
  json_decref(ev);
  json_decref(line);
  cu_buf_release(&data);
}

static void check_file_custody(bctx *b, const char *evid, const bfile *f, const place *pl,
                               facts *fx, const char *ep) {
  const char *sha = file_sha256(b, f);
  if (!sha) return; /* unlisted: named by the bagit check */
  bool orig = !strcmp(pl->kind, "original");
  char key[256];
  snprintf(key, sizeof key, "%s %s", orig ? "ingested" : pl->kind, sha);
  json_t *hit = orig ? json_object_get(fx->ingested, sha) : json_object_get(fx->renditions, key);
  if (!hit) {
    json_t *bad = json_object_get(fx->unproved, key);
    json_t *other = json_object_get(fx->by_kind, orig ? "ingested" : pl->kind);
    char what[160];
    if (orig)
      snprintf(what, sizeof what, "ingested event");
    else
      snprintf(what, sizeof what, "rendition event of kind %s", pl->kind);
    if (bad)
      FAIL_AT(b, G_CUSTODY, f->path, evid, (int64_t)json_integer_value(bad), -1,
              "%s is recorded only by the %s at ledger index %lld, which is not proved (its proof "
              "fails, or the signed head does not verify)",
              f->path, what, (long long)json_integer_value(bad));
    else if (other)
      FAIL_AT(b, G_CUSTODY, f->path, evid, (int64_t)json_integer_value(json_array_get(other, 1)),
              -1, "%s has SHA-256 %s, but its %s (ledger index %lld) recorded %s", f->path, sha,
              what, (long long)json_integer_value(json_array_get(other, 1)),
              json_string_value(json_array_get(other, 0)));
    else
      FAIL(b, G_CUSTODY, f->path, "%s: no %s in %s records it", f->path, what, ep);
    return;
  }
  if (orig) return;
  const char *src = cu_json_str(hit, "source");
  int64_t index = cu_json_int(hit, "index", -1);
  if (!src)
    FAIL_AT(b, G_CUSTODY, f->path, evid, index, -1,
            "%s: its rendition event (ledger index %lld) records no source_sha256", f->path,
            (long long)index);
  else if (!json_object_get(b->originals, src))
    FAIL_AT(b, G_CUSTODY, f->path, evid, index, -1,
            "%s: its source_sha256 %s (rendition event, ledger index %lld) is not the SHA-256 of "
            "an original "
            "in the bag",
            f->path, src, (long long)index);
  const char *rsrc = cu_json_str(f->rfile, "source_sha256");
  if (f->rfile && src && (!rsrc || strcmp(rsrc, src)))
    FAIL(b, G_REPORT, f->path,
         "REPORT.json says %s has source_sha256 %s, its rendition event says %s", f->path,
         rsrc ? rsrc : "none", src);
}

static void check_token(bctx *b, const char *tp, const char *evid, const char *sha_hex,
                        const char *what) {
  bfile *tf = file_get(b, tp);
  if (!tf || !tf->on_disk) {
    WARN(b, G_TIMESTAMPS, tp, evid,
         "%s has no time-stamp token (%s): it had not been stamped when the "
         "bag was made",
         what, tp);
    return;
  }
  cu_buf der = CU_BUF_INIT(BAG_MAX_SMALL_FILE);
  unsigned char d[32];
  tsa_info info;
  b->tokens++;
  if (read_small(b, tp, der.max, &der)) {
    FAIL(b, G_TIMESTAMPS, tp, "%s: %s", tp, cu_errmsg());
  } else if (!sha_hex || strlen(sha_hex) != 64 || cu_hex_decode(sha_hex, 64, d, 32)) {
    FAIL(b, G_TIMESTAMPS, tp, "%s: no SHA-256 in the bag to check it against", tp);
  } else if (!b->ca.len) {
    FAIL(b, G_TIMESTAMPS, tp, "%s cannot be checked: no TSA root (custody/tsa-root.pem)", tp);
  } else if (tsa_verify(der.data, der.len, d, b->ca.data, b->ca.len, &info)) {
    FAIL(b, G_TIMESTAMPS, tp, "%s (%s, SHA-256 %s): %s", tp, what, sha_hex, cu_errmsg());
  } else if (evid) {
    json_t *st = json_object_get(b->report_stamps, evid);
    const char *gt = cu_json_str(st, "gen_time");
    int64_t us;
    if (gt && (cu_time_parse_rfc3339(gt, &us) || us != info.gen_time_us)) {
      char real[CU_RFC3339_LEN];
      cu_time_rfc3339(info.gen_time_us, real);
      FAIL(b, G_REPORT, "REPORT.json",
           "REPORT.json says the token of evidence %s was made at %s, %s says %s", evid, gt, tp,
           real);
    }
  }
  cu_buf_release(&der);
}

static void check_item(bctx *b, const char *evid, json_t *files) {
  char ep[128], tp[128];
  snprintf(ep, sizeof ep, "custody/%s/events.jsonl", evid);
  snprintf(tp, sizeof tp, "custody/%s/original.tsr", evid);
  facts fx = {json_object(), json_object(), json_object(), json_object()};
  bfile *ef = file_get(b, ep);
  if (!ef || !ef->on_disk) {
    if (json_array_size(files))
      FAIL(b, G_CUSTODY, ep, "%s is missing: nothing records the files of evidence %s", ep, evid);
  } else {
    lreader *r = lr_open(b, ep, BAG_MAX_EVENT_LINE);
    if (!r) {
      FAIL(b, G_PROOFS, ep, "%s: %s", ep, cu_errmsg());
    } else {
      int rc;
      int64_t prev = -1;
      while ((rc = lr_next(r)) == 1)
        check_event_line(b, evid, ep, r, &fx, &prev);
      if (rc < 0) FAIL(b, G_PROOFS, ep, "%s: %s", ep, cu_errmsg());
      lr_close(r);
    }
  }
  size_t i;
  json_t *v;
  const char *orig_sha = NULL;
  json_array_foreach(files, i, v) {
    bfile *f = &b->files[json_integer_value(v)];
    place pl;
    if (!classify(f->path, &pl)) {
      if (file_sha256(b, f))
        FAIL(b, G_CUSTODY, f->path,
             "%s is not where docs/EXPORT.md puts an original, a derived copy or a "
             "clip (data/<evidence id>/original/<name>, …)",
             f->path);
      continue;
    }
    if (!strcmp(pl.kind, "original") && !orig_sha) orig_sha = file_sha256(b, f);
    if (ef && ef->on_disk) check_file_custody(b, evid, f, &pl, &fx, ep); /* else named once above */
  }
  if (!orig_sha) { /* no original in the bag: the token is over the ingested event's hash */
    json_t *ing = json_object_get(fx.by_kind, "ingested");
    orig_sha = ing ? json_string_value(json_array_get(ing, 0)) : NULL;
  }
  if (json_array_size(files) || (ef && ef->on_disk)) {
    char what[128];
    snprintf(what, sizeof what, "evidence %s", evid);
    check_token(b, tp, evid, orig_sha, what);
  }
  json_decref(fx.ingested);
  json_decref(fx.renditions);
  json_decref(fx.unproved);
  json_decref(fx.by_kind);
}

static void check_items(bctx *b) {
  json_t *items = json_object(); /* evidence id -> [file index] */
  /* The originals first: any derived copy may name any of them. */
  for (size_t i = 0; i < b->nfiles; i++) {
    bfile *f = &b->files[i];
    place pl;
    const char *sha = file_sha256(b, f);
    if (f->payload && f->on_disk && sha && classify(f->path, &pl) && !strcmp(pl.kind, "original"))
      json_object_set_new(b->originals, sha, json_string(f->path));
  }
  for (size_t i = 0; i < b->nfiles; i++) {
    bfile *f = &b->files[i];
    if (!f->on_disk) continue;
    const char *p = f->path;
    const char *base = !strncmp(p, "data/", 5) ? p + 5 : !strncmp(p, "custody/", 8) ? p + 8 : NULL;
    const char *sl = base ? strchr(base, '/') : NULL;
    if (!sl) {
      if (f->payload && file_sha256(b, f))
        FAIL(b, G_CUSTODY, p, "%s is not in an item's directory (data/<evidence id>/…)", p);
      continue;
    }
    char *id = cu_xstrndup(base, (size_t)(sl - base));
    json_t *list = json_object_get(items, id);
    if (!list && cu_utf8_valid(id, strlen(id))) json_object_set_new(items, id, list = json_array());
    if (list && f->payload) json_array_append_new(list, json_integer((json_int_t)i));
    free(id);
  }
  const char *evid;
  json_t *files;
  json_object_foreach(items, evid, files) {
    if (json_array_size(files)) b->items++;
    check_item(b, evid, files);
  }
  json_decref(items);
  if (b->report) {
    const char *key;
    json_t *ev;
    json_object_foreach(b->report_events, key, ev)
        FAIL(b, G_REPORT, "REPORT.json",
             "REPORT.json lists the event %s (evidence/ledger index), which no "
             "events.jsonl in the bag holds",
             key);
  }
}

/* The TSA roots: --tsa-ca (read before anything else), or the bag's. */
static void load_ca(bctx *b) {
  if (b->o->tsa_ca_file) return;
  bfile *f = file_get(b, "custody/tsa-root.pem");
  if (!f || !f->on_disk) return; /* named when a token needs it */
  if (read_small(b, "custody/tsa-root.pem", b->ca.max, &b->ca)) {
    FAIL(b, G_TIMESTAMPS, "custody/tsa-root.pem", "custody/tsa-root.pem: %s", cu_errmsg());
    cu_buf_reset(&b->ca);
  }
}

/* ---- the whole ---------------------------------------------------------- */

static json_t *build_report(bctx *b) {
  json_t *r = json_object();
  cu_json_set_str(r, "bag", b->o->bag);
  json_object_set_new(r, "ok", json_boolean(b->nfail == 0));
  json_t *k =
      json_pack("{sIsIsIsisIsIsIsI}", "files", (json_int_t)b->payload_files, "bytes",
                (json_int_t)b->payload_bytes, "tag_files", (json_int_t)b->tag_files, "manifests",
                b->nman, "events", (json_int_t)b->events, "proofs", (json_int_t)b->proofs, "tokens",
                (json_int_t)b->tokens, "items", (json_int_t)b->items);
  if (b->have_root) {
    cu_json_set_int(k, "tree_size", (int64_t)b->size);
    cu_json_set_str(k, "origin", b->origin);
  }
  json_object_set_new(r, "checked", k);
  json_t *checks = json_object();
  for (int g = 0; g < G_N; g++)
    json_object_set_new(
        checks, group_name[g],
        json_pack("{sbsI}", "ok", b->gfail[g] == 0, "failures", (json_int_t)b->gfail[g]));
  json_object_set_new(r, "checks", checks);
  json_object_set(r, "failures", b->failures);
  json_object_set(r, "warnings", b->warnings);
  cu_json_set_int(r, "failure_count", (int64_t)b->nfail);
  cu_json_set_int(r, "warning_count", (int64_t)b->nwarn);
  return r;
}

int bag_verify(const bag_verify_opts *o, json_t **out) {
  bctx b = {.o = o, .dirfd = -1};
  int rc = 0;
  struct stat st;
  b.failures = json_array();
  b.warnings = json_array();
  b.by_path = json_object();
  b.info = json_object();
  b.report_events = json_object();
  b.report_stamps = json_object();
  b.originals = json_object();
  cu_buf_init(&b.checkpoint, NOTE_MAX_BYTES);
  cu_buf_init(&b.ca, BAG_MAX_CA_BYTES);
  if (stat(o->bag, &st)) {
    rc = cu_error_errno(errno == ENOENT ? CU_ENOTFOUND : CU_EIO, errno, "cannot read the bag %s",
                        o->bag);
    goto done;
  }
  if (!S_ISDIR(st.st_mode)) {
    rc = cu_error(CU_EINVAL, "%s is not a directory (a bag is a directory, or a .tar of one)",
                  o->bag);
    goto done;
  }
  /* What comes from outside first: if it cannot be read, nothing runs. */
  if (o->ledger_key && (rc = verify_read_vkey(o->ledger_key, b.gname, b.gpub))) {
    rc = cu_error_wrap(rc, "cannot use the ledger key %s", o->ledger_key);
    goto done;
  }
  if (o->tsa_ca_file && (rc = cu_read_small_file(o->tsa_ca_file, b.ca.max, &b.ca))) {
    rc = cu_error_wrap(rc, "cannot read the TSA roots");
    goto done;
  }
  if ((b.dirfd = open(o->bag, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot open the bag %s", o->bag);
    goto done;
  }
  if ((rc = walk(&b, b.dirfd, "", 0))) goto done;
  qsort(b.files, b.nfiles, sizeof *b.files, by_path_cmp);
  for (size_t i = 0; i < b.nfiles; i++)
    json_object_setn_new_nocheck(b.by_path, b.files[i].path, strlen(b.files[i].path),
                                 json_integer((json_int_t)i));
  b.hashbuf = cu_xmalloc(HASH_CHUNK);

  /* 1. RFC 8493 */
  check_bagit_txt(&b);
  find_manifests(&b);
  for (int m = 0; m < b.nman; m++)
    parse_manifest(&b, m);
  check_complete(&b);
  count_payload(&b);
  check_valid(&b);
  check_bag_info(&b);
  /* 2. the head */
  check_head(&b);
  load_ca(&b);
  /* 3. REPORT.json's files; 4. the items (and REPORT.json's events) */
  check_report_files(&b);
  check_items(&b);
  if (b.checkpoint.len) {
    char sha[65];
    cu_sha256_hex(b.checkpoint.data, b.checkpoint.len, sha);
    check_token(&b, "custody/checkpoint.tsr", NULL, sha, "the signed tree head");
  }
  *out = build_report(&b);
done:
  for (size_t i = 0; i < b.nfiles; i++) {
    free(b.files[i].path);
    for (int m = 0; m < MAX_MANIFESTS; m++)
      free(b.files[i].want[m]);
    for (size_t k = 0; k < NALGS; k++)
      free(b.files[i].got[k]);
  }
  free(b.files);
  free(b.hashbuf);
  if (b.dirfd >= 0) close(b.dirfd);
  json_decref(b.failures);
  json_decref(b.warnings);
  json_decref(b.by_path);
  json_decref(b.info);
  json_decref(b.report);
  json_decref(b.report_events);
  json_decref(b.report_stamps);
  json_decref(b.originals);
  cu_buf_release(&b.checkpoint);
  cu_buf_release(&b.ca);
  return rc;
}
