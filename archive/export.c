/* DESIGN: an export is built in two passes over the selected items.
 *
 * The first pass only reads records: it works out every file the bag will
 * hold and its size (for progress), and whether everything is ready (each
 * requested rendition finished or known never to come, each original
 * time-stamped). Nothing is written until all of it is, so a bag is never
 * built half from what exists now and half from what arrives later.
 *
 * Then one signed tree head that covers every event so far is chosen (the
 * signer is asked for one and waited for), and the second pass writes the
 * bag item by item: files copied and hashed (SHA-256 on this thread,
 * SHA-512 on a helper thread that hashes the same buffers, so the two
 * digests cost about one), custody material (every event of the item up
 * to the head, with its inclusion proof, and the original's token), and
 * the item's part of both manifests and both reports, written as streams.
 * Tag files come last: bag-info needs the finish time, the tag manifest
 * needs every other tag file.
 *
 * Durability: data files are synced as they are written (sync_file_range
 * in 8 MiB windows keeps the page cache from filling with dirty copies, and
 * fdatasync ends each file); a syncfs before the rename makes the rest
 * (tag files, directories) durable; the rename makes the bag appear whole;
 * the exports directory is synced after it. */
#include "export.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "log.h"
#include "merkle.h"
#include "timeu.h"
#include "banned.h"

#define CHUNK (1024 * 1024) /* one read and write of a copy */
#define NSLOT 4             /* chunks in flight between the copier and the SHA-512 thread */
#define SYNC_WINDOW (8LL * 1024 * 1024) /* written bytes handed to writeback at a time */
#define TOKEN_MAX (1024 * 1024)         /* a TimeStampResp is a few KiB */
#define HEAD_WAIT_DEFAULT (30LL * 1000000)
#define DETAIL_MAX 300 /* characters of one event field shown in REPORT.html */

static const char *kind_ext(const char *kind) {
  if (!strcmp(kind, "master")) return "mkv";
  if (!strcmp(kind, "access")) return "mp4";
  if (!strcmp(kind, "poster")) return "jpg";
  return "txt";
}

void export_bag_name(const char *case_id, const char *export_id, char out[EXPORT_BAG_NAME_MAX]) {
  snprintf(out, EXPORT_BAG_NAME_MAX, "custos-%s-%s", case_id, export_id);
}

void export_result_release(export_result *r) {
  free(r->items);
  r->items = NULL;
  r->nitems = 0;
}

/* ---- names -------------------------------------------------------------- */

/* docs/EXPORT.md: bytes other than A-Z a-z 0-9 . _ - become _, at most 120
 * bytes (a long name keeps an extension of up to 16 bytes), never ".",
 * ".." or empty. */
static void safe_name(const char *in, char out[EXPORT_NAME_MAX + 1]) {
  if (!in) in = "";
  size_t n = strlen(in);
  char *t = cu_xmalloc(n + 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    t[i] = ok ? (char)c : '_';
  }
  t[n] = '\0';
  if (n > EXPORT_NAME_MAX) {
    char *dot = strrchr(t, '.');
    size_t ext = dot && dot != t ? strlen(dot) : 0;
    if (ext > 16) ext = 0;
    memmove(t + EXPORT_NAME_MAX - ext, t + n - ext, ext);
    t[EXPORT_NAME_MAX] = '\0';
  }
  if (!*t || !strcmp(t, ".") || !strcmp(t, ".."))
    snprintf(out, EXPORT_NAME_MAX + 1, "original");
  else
    snprintf(out, EXPORT_NAME_MAX + 1, "%s", t);
  free(t);
}

/* The safe name without its extension (a leading dot is not one). */
static void name_stem(const char *safe, char out[EXPORT_NAME_MAX + 1]) {
  snprintf(out, EXPORT_NAME_MAX + 1, "%s", safe);
  char *dot = strrchr(out, '.');
  if (dot && dot != out) *dot = '\0';
}

static bool clip_kind_split(const char *kind, char mode[8], long long *a, long long *b) {
  int used = 0;
  if (sscanf(kind, "clip:%5[a-z]:%lld:%lld%n", mode, a, b, &used) != 3 || kind[used]) return false;
  return !strcmp(mode, "copy") || !strcmp(mode, "exact");
}

/* Content-Type of an original from what the probe found. */
static const char *original_type(const json_t *ev) {
  const char *c = cu_json_str(json_object_get(ev, "media"), "container");
  static const struct {
    const char *fmt, *type;
  } map[] = {{"mov,mp4", "video/mp4"}, {"matroska", "video/x-matroska"},
             {"mpegts", "video/mp2t"}, {"avi", "video/x-msvideo"},
             {"wav", "audio/wav"},     {"mp3", "audio/mpeg"},
             {"flac", "audio/flac"},   {"ogg", "audio/ogg"},
             {"image2", "image/jpeg"}, {"jpeg_pipe", "image/jpeg"},
             {"png_pipe", "image/png"}};
  for (size_t i = 0; c && i < sizeof map / sizeof *map; i++)
    if (!strncmp(c, map[i].fmt, strlen(map[i].fmt))) return map[i].type;
  return "application/octet-stream";
}

/* ---- the plan of one item ------------------------------------------------ */

typedef struct {
  char kind[64];
  char *rel; /* path in the bag */
  char sha256[65], sha512[129], source_sha256[65];
  uint64_t size;
  const char *content_type; /* borrowed from rec or static */
  json_t *rec;              /* the rendition record (NULL for the original) */
  int64_t ledger_index;
} bfile;

/* Clips of one item in one export (the API takes at most this many in all). */
#define MAX_CLIPS_PER_ITEM 64

typedef struct {
  char id[CU_ID_LEN + 1];
  json_t *ev;
  bfile f[1 + 4 + MAX_CLIPS_PER_ITEM]; /* the original, renditions, clips */
  int nf;
  json_t *skipped; /* [{kind, state, reason}] */
  cu_buf token;
  json_t *stamp; /* {gen_time, tsa} from the timestamped event, or NULL */
} bitem;

#define ITEM_FILES_MAX (1 + 4 + MAX_CLIPS_PER_ITEM)

static void item_release(bitem *it) {
  for (int i = 0; i < it->nf; i++) {
    free(it->f[i].rel);
    json_decref(it->f[i].rec);
  }
  json_decref(it->ev);
  json_decref(it->skipped);
  json_decref(it->stamp);
  cu_buf_release(&it->token);
  memset(it, 0, sizeof *it);
}

static int cmp_files(const void *a, const void *b) {
  return strcmp(((const bfile *)a)->rel, ((const bfile *)b)->rel);
}

/* "the <what> of evidence <id>", for the first few things waited for. */
/* A payload file from a finished rendition's record r (kept: f owns it),
 * at rel (f owns it); sha is the original's, the source when r names none. */
static void file_of_rendition(bfile *f, const char *kind, char *rel, json_t *r, const char *sha) {
  snprintf(f->kind, sizeof f->kind, "%s", kind);
  f->rel = rel;
  snprintf(f->sha256, sizeof f->sha256, "%s", cu_json_str(r, "sha256") ? cu_json_str(r, "sha256") : "");
  snprintf(f->source_sha256, sizeof f->source_sha256, "%s",
           cu_json_str(r, "source_sha256") ? cu_json_str(r, "source_sha256") : sha);
  f->size = (uint64_t)cu_json_int(r, "size", 0);
  f->content_type = cu_json_str(r, "content_type");
  f->rec = r;
  f->ledger_index = -1;
}

static void note_wait(cu_buf *w, int *nw, const char *what, const char *id) {
  if ((*nw)++ >= 3) return; /* the first few say enough */
  if (w->len) cu_buf_adds(w, "; ");
  cu_buf_printf(w, "the %s of evidence %s", what, id);
}

/* Works out an item's files. Not ready: *ready = false and the reason in
 * waiting. Errors: the item is gone, a clip is not made, the index. */
static int plan_item(const export_env *env, const json_t *sel, const json_t *clips, const char *id,
                     bitem *it, bool *ready, cu_buf *waiting, int *nwait) {
  memset(it, 0, sizeof *it);
  cu_buf_init(&it->token, TOKEN_MAX);
  snprintf(it->id, sizeof it->id, "%s", id);
  it->skipped = json_array();
  int rc = idx_evidence_get(env->ix, id, &it->ev);
  if (rc == CU_ENOTFOUND) return cu_error(CU_ENOTFOUND, "evidence %s no longer exists", id);
  if (rc) return rc;
  const char *estate = cu_json_str(it->ev, "state");
  if (estate && !strcmp(estate, "deleted"))
    return cu_error(CU_EGONE, "evidence %s was deleted (its record is a tombstone)", id);
  json_object_del(it->ev, "renditions");
  const char *sha = cu_json_str(it->ev, "sha256");
  if (!sha || !cu_is_sha256_hex(sha))
    return cu_error(CU_ECORRUPT, "evidence %s has no SHA-256", id);
  char safe[EXPORT_NAME_MAX + 1], stem[EXPORT_NAME_MAX + 1];
  safe_name(cu_json_str(it->ev, "filename"), safe);
  name_stem(safe, stem);

  bfile *o = &it->f[it->nf++];
  snprintf(o->kind, sizeof o->kind, "original");
  o->rel = cu_xasprintf("data/%s/original/%s", id, safe);
  snprintf(o->sha256, sizeof o->sha256, "%s", sha);
  o->size = (uint64_t)cu_json_int(it->ev, "size", 0);
  o->content_type = original_type(it->ev);
  o->ledger_index = -1;

  rc = idx_timestamp_get(env->ix, sha, &it->token);
  if (rc == CU_ENOTFOUND) {
    *ready = false;
    note_wait(waiting, nwait, "time-stamp", id);
    rc = 0;
  }
  if (rc) return rc;

  size_t i;
  json_t *k;
  json_array_foreach(json_object_get(sel, "renditions"), i, k) {
    const char *kind = json_string_value(k);
    json_t *r = NULL;
    rc = idx_rendition_get(env->ix, id, kind ? kind : "", &r);
    const char *state = rc ? NULL : cu_json_str(r, "state");
    if (rc == CU_ENOTFOUND) {
      json_t *s = json_object();
      cu_json_set_str(s, "kind", kind);
      cu_json_set_str(s, "state", "none");
      cu_json_set_str(s, "reason", "this item has no such rendition (it was never queued)");
      json_array_append_new(it->skipped, s);
      rc = 0;
      continue;
    }
    if (rc) return rc;
    if (state && !strcmp(state, "done")) {
      if (it->nf == ITEM_FILES_MAX) {
        json_decref(r);
        return cu_error(CU_EINVAL, "too many renditions asked for");
      }
      file_of_rendition(&it->f[it->nf++], kind, cu_xasprintf("data/%s/%s/%s.%s", id, kind, stem, kind_ext(kind)),
                        r, sha);
      continue;
    }
    if (state && (!strcmp(state, "failed") || !strcmp(state, "not_applicable"))) {
      json_t *s = json_object();
      cu_json_set_str(s, "kind", kind);
      cu_json_set_str(s, "state", state);
      const char *why =
          cu_json_str(r, "reason") ? cu_json_str(r, "reason") : cu_json_str(r, "error");
      cu_json_set_str(s, "reason", why ? why : "");
      json_array_append_new(it->skipped, s);
    } else {
      *ready = false;
      note_wait(waiting, nwait, kind, id);
    }
    json_decref(r);
  }

  json_t *c;
  json_array_foreach(clips, i, c) {
    const char *cev = cu_json_str(c, "evidence"), *kind = cu_json_str(c, "kind");
    char mode[8];
    long long a, b;
    if (!cev || strcmp(cev, id) || !kind) continue;
    if (!clip_kind_split(kind, mode, &a, &b))
      return cu_error(CU_EINVAL, "'%s' is not a clip", kind);
    bool dup = false;
    for (int j = 0; j < it->nf; j++)
      dup |= !strcmp(it->f[j].kind, kind);
    if (dup) continue;
    if (it->nf == ITEM_FILES_MAX)
      return cu_error(CU_EINVAL, "more than %d clips of evidence %s", MAX_CLIPS_PER_ITEM, id);
    json_t *r = NULL;
    rc = idx_rendition_get(env->ix, id, kind, &r);
    if (rc == CU_ENOTFOUND)
      return cu_error(CU_ENOTFOUND, "the clip %s of evidence %s was not made", kind, id);
    if (rc) return rc;
    if (strcmp(cu_json_str(r, "state") ? cu_json_str(r, "state") : "", "done")) {
      json_decref(r);
      return cu_error(CU_ENOTFOUND, "the clip %s of evidence %s is not finished", kind, id);
    }
    file_of_rendition(&it->f[it->nf++], kind,
                      cu_xasprintf("data/%s/clips/clip-%s-%lld-%lld.mp4", id, mode, a, b), r, sha);
  }
  for (int j = 0; j < it->nf; j++)
    if (!cu_is_sha256_hex(it->f[j].sha256))
      return cu_error(CU_ECORRUPT, "the %s of evidence %s has no SHA-256 in its record",
                      it->f[j].kind, id);
  qsort(it->f, (size_t)it->nf, sizeof *it->f, cmp_files);
  return 0;
}

/* ---- copying with both digests ----------------------------------------- */

typedef struct {
  pthread_t th;
  bool started, quit;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned char *buf[NSLOT];
  size_t len[NSLOT];
  uint64_t filled, hashed; /* chunks handed over / hashed, ever */
  EVP_MD_CTX *md;
} hasher512;

static void *h512_main(void *arg) {
  hasher512 *h = arg;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    if (h->hashed < h->filled) {
      int s = (int)(h->hashed % NSLOT);
      pthread_mutex_unlock(&h->mu);
      EVP_DigestUpdate(h->md, h->buf[s], h->len[s]);
      pthread_mutex_lock(&h->mu);
      h->hashed++;
      pthread_cond_broadcast(&h->cv);
    } else if (h->quit) {
      break;
    } else {
      pthread_cond_wait(&h->cv, &h->mu);
    }
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

static int h512_start(hasher512 *h) {
  memset(h, 0, sizeof *h);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  for (int i = 0; i < NSLOT; i++)
    h->buf[i] = cu_xmalloc(CHUNK);
  h->md = EVP_MD_CTX_new();
  if (!h->md) abort();
  if (pthread_create(&h->th, NULL, h512_main, h))
    return cu_error(CU_EIO, "cannot start a hashing thread");
  h->started = true;
  return 0;
}

static void h512_drain(hasher512 *h) {
  pthread_mutex_lock(&h->mu);
  while (h->hashed < h->filled)
    pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
}

static void h512_stop(hasher512 *h) {
  if (h->started) {
    pthread_mutex_lock(&h->mu);
    h->quit = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->th, NULL);
  }
  for (int i = 0; i < NSLOT; i++)
    free(h->buf[i]);
  EVP_MD_CTX_free(h->md);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
}

typedef struct {
  const export_env *env;
  hasher512 h;
  uint64_t done, total;
  int64_t last_report;
} copier;

static int cancelled(const export_env *env) {
  if (env->cancel && atomic_load(env->cancel))
    return cu_error(CU_EBUSY,
                    "the export stopped with the server; it runs again at the next start");
  return 0;
}

static void report(copier *c, bool force) {
  int64_t now = cu_mono_us();
  if (!c->env->progress || (!force && now - c->last_report < 200000)) return;
  c->last_report = now;
  c->env->progress(c->env->progress_ud, c->done, c->total);
}

/* Copies the object of f to path, hashing it; checks it is what its
 * record says. */
static int copy_object(copier *c, const char *evid, bfile *f, const char *path) {
  int in = -1, out = -1, rc = 0;
  uint64_t size = 0, off = 0, win = 0, prev = 0;
  bool have_prev = false;
  cu_sha256 *h256 = cu_sha256_new();
  rc = store_open_object(c->env->st, f->sha256, &in, &size);
  if (rc == CU_ENOTFOUND) {
    rc = cu_error(CU_ECORRUPT, "the %s of evidence %s (object %s) is missing from the store",
                  f->kind, evid, f->sha256);
    goto done;
  }
  if (rc) goto done;
  if (size != f->size) {
    rc = cu_error(CU_ECORRUPT,
                  "the %s of evidence %s (object %s) is %llu bytes, its record says %llu", f->kind,
                  evid, f->sha256, (unsigned long long)size, (unsigned long long)f->size);
    goto done;
  }
  posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
  out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create %s", path);
    goto done;
  }
  hasher512 *h = &c->h;
  if (EVP_DigestInit_ex(h->md, EVP_sha512(), NULL) != 1) {
    rc = cu_error(CU_EIO, "cannot start SHA-512");
    goto done;
  }
  for (;;) {
    if ((rc = cancelled(c->env))) break;
    uint64_t seq = h->filled;
    int s = (int)(seq % NSLOT);
    pthread_mutex_lock(&h->mu);
    while (seq - h->hashed >= NSLOT)
      pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    ssize_t n;
    do
      n = read(in, h->buf[s], CHUNK);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      rc = cu_error_errno(CU_EIO, errno, "cannot read the object %s", f->sha256);
      break;
    }
    if (n == 0) break;
    cu_sha256_update(h256, h->buf[s], (size_t)n);
    pthread_mutex_lock(&h->mu);
    h->len[s] = (size_t)n;
    h->filled = seq + 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if ((rc = cu_write_all(out, h->buf[s], (size_t)n))) {
      cu_error_wrap(rc, "%s", path);
      break;
    }
    off += (uint64_t)n;
    c->done += (uint64_t)n;
    report(c, false);
    if (off - win >= (uint64_t)SYNC_WINDOW) {
      /* Start writing this window back; wait for the one before, and drop
       * it from the page cache: a 10 GiB export must not fill memory with
       * dirty pages or push out what reviewers are watching. */
      sync_file_range(out, (off_t)win, (off_t)(off - win), SYNC_FILE_RANGE_WRITE);
      if (have_prev) {
        sync_file_range(out, (off_t)prev, (off_t)(win - prev),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER);
        posix_fadvise(out, (off_t)prev, (off_t)(win - prev), POSIX_FADV_DONTNEED);
      }
      prev = win;
      have_prev = true;
      win = off;
    }
  }
  h512_drain(h); /* its buffers are ours again, whatever happened */
  unsigned char d512[64], d256[32];
  unsigned int dn = 0;
  EVP_DigestFinal_ex(h->md, d512, &dn);
  cu_sha256_final(h256, d256);
  if (rc) goto done;
  char got[65];
  cu_hex_encode(d256, 32, got);
  cu_hex_encode(d512, 64, f->sha512);
  if (off != f->size || strcmp(got, f->sha256)) {
    rc = cu_error(
        CU_ECORRUPT,
        "the %s of evidence %s (object %s) is damaged in the store: its %llu bytes hash to %s "
        "(custos scrub finds such objects); nothing was exported",
        f->kind, evid, f->sha256, (unsigned long long)off, got);
    cu_alarm("export: %s", cu_errmsg());
    goto done;
  }
  if (fdatasync(out) < 0)
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot sync %s", path);
  else
    posix_fadvise(out, 0, 0, POSIX_FADV_DONTNEED);
done:
  if (out >= 0 && close(out) < 0 && !rc)
    rc = cu_error_errno(CU_EIO, errno, "cannot close %s", path);
  if (in >= 0) close(in);
  cu_sha256_free(h256);
  return rc;
}

/* ---- small writers ------------------------------------------------------ */

typedef struct {
  char **v;
  size_t n, cap;
} strlist;

static void strlist_add(strlist *l, const char *s) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 32;
    l->v = cu_xrealloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = cu_xstrdup(s);
}

static void strlist_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
  const export_env *env;
  char *part;   /* the directory being built */
  strlist tags; /* tag files written so far (relative paths) */
} bagw;

/* A whole tag file (small). */
static int put_tag(bagw *w, const char *rel, const void *data, size_t n) {
  char *p = cu_xasprintf("%s/%s", w->part, rel);
  int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  int rc = 0;
  if (fd < 0)
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create %s", p);
  else {
    rc = cu_write_all(fd, data, n);
    if (close(fd) < 0 && !rc) rc = cu_error_errno(CU_EIO, errno, "cannot close %s", p);
  }
  if (!rc) strlist_add(&w->tags, rel);
  free(p);
  return rc;
}

static FILE *open_stream(bagw *w, const char *rel, int *rc) {
  char *p = cu_xasprintf("%s/%s", w->part, rel);
  FILE *f = fopen(p, "wxe");
  if (!f)
    *rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create %s", p);
  else
    strlist_add(&w->tags, rel);
  free(p);
  return f;
}

static int close_stream(FILE **f, const char *rel, int rc) {
  if (!*f) return rc;
  int bad = fflush(*f) != 0 || ferror(*f);
  int e = errno;
  if (fclose(*f) != 0) bad = 1;
  *f = NULL;
  if (bad && !rc) rc = cu_error_errno(cu_errno_code(e), e, "cannot write %s", rel);
  return rc;
}

static int mkdir_in(bagw *w, const char *rel) {
  char *p = cu_xasprintf("%s/%s", w->part, rel);
  int rc = 0;
  if (mkdir(p, 0755) < 0 && errno != EEXIST)
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create %s", p);
  free(p);
  return rc;
}

/* HTML-escapes s (client text: names, titles, anything) into f; control
 * characters become U+FFFD. */
static void html(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&#39;", f); break;
    default:
      if ((unsigned char)*s < 0x20 || *s == 0x7f)
        fputs("\xEF\xBF\xBD", f);
      else
        fputc(*s, f);
    }
  }
}

static void html_json(FILE *f, const json_t *v) {
  if (json_is_string(v)) {
    html(f, json_string_value(v));
    return;
  }
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  if (s) {
    if (strlen(s) > DETAIL_MAX) {
      size_t n = DETAIL_MAX;
      while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* not inside a UTF-8 sequence */
      s[n] = '\0';
      html(f, s);
      fputs("…", f);
    } else {
      html(f, s);
    }
  }
  free(s);
}

/* Single-line text for bag-info.txt: CR, LF and controls become spaces. */
static void tag_value(cu_buf *b, const char *s) {
  for (; s && *s; s++)
    cu_buf_add(b, (unsigned char)*s < 0x20 || *s == 0x7f ? " " : s, 1);
}

static void human_size(uint64_t n, char out[32]) {
  static const char *const unit[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1000 && u < 5)
    v /= 1000, u++;
  if (u == 0)
    snprintf(out, 32, "%llu B", (unsigned long long)n);
  else
    snprintf(out, 32, "%.1f %s", v, unit[u]);
}

static void actor_text(const json_t *actor, cu_buf *out) {
  if (json_is_string(actor)) {
    cu_buf_adds(out, json_string_value(actor));
    return;
  }
  const char *user = cu_json_str(actor, "user"), *role = cu_json_str(actor, "role"),
             *tok = cu_json_str(actor, "token_id"), *dev = cu_json_str(actor, "device_id");
  if (user)
    cu_buf_adds(out, user);
  else if (dev)
    cu_buf_printf(out, "device %s", dev);
  else if (tok)
    cu_buf_printf(out, "token %s", tok);
  else
    cu_buf_adds(out, "(system)");
  if (role) cu_buf_printf(out, " (%s)", role);
}

/* ---- custody: the head, the key, the roots ------------------------------ */

static int wait_head(const export_env *env, uint64_t target, json_t **out) {
  int rc = ledger_sign_now(env->lg); /* CU_EBUSY: the signer thread signs; wait for it */
  if (rc && rc != CU_EBUSY) return rc;
  int64_t limit = env->head_wait_us > 0 ? env->head_wait_us : HEAD_WAIT_DEFAULT;
  int64_t deadline = cu_mono_us() + limit;
  for (;;) {
    json_t *s = NULL;
    rc = ledger_sth_latest(env->lg, &s);
    if (!rc && (uint64_t)cu_json_int(s, "size", 0) >= target) {
      *out = s;
      return 0;
    }
    json_decref(s);
    if (rc && rc != CU_ENOTFOUND) return rc;
    if ((rc = cancelled(env))) return rc;
    if (cu_mono_us() > deadline)
      return cu_error(CU_EBUSY, "a signed tree head covering the ledger's %llu events",
                      (unsigned long long)target);
    usleep(50 * 1000);
  }
}

/* The head as custody/sth.json and REPORT.json show it (docs/EXPORT.md). */
static json_t *sth_public(const json_t *sth) {
  json_t *o = json_object();
  static const char *const keys[] = {"origin", "size", "root", "timestamp", "checkpoint"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    json_object_set(o, keys[i], json_object_get(sth, keys[i]));
  return o;
}

static int write_head(bagw *w, const json_t *sth) {
  const export_env *env = w->env;
  json_t *o = sth_public(sth);
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
  size_t n = strlen(s);
  s = cu_xrealloc(s, n + 2);
  s[n++] = '\n';
  int rc = put_tag(w, "custody/sth.json", s, n);
  free(s);
  json_decref(o);
  const char *note = cu_json_str(sth, "checkpoint");
  if (!rc) rc = put_tag(w, "custody/checkpoint.txt", note ? note : "", note ? strlen(note) : 0);
  /* The head's token: its stamp job's, or one asked for now. */
  const char *ck = cu_json_str(sth, "checkpoint_sha256");
  cu_buf tok = CU_BUF_INIT(TOKEN_MAX);
  if (!rc && ck && cu_is_sha256_hex(ck)) {
    int trc = idx_timestamp_get(env->ix, ck, &tok);
    if (trc == CU_ENOTFOUND && env->ts) {
      unsigned char d[32];
      cu_hex_decode(ck, 64, d, 32);
      trc = tsa_stamp(env->ts, d, &tok, NULL);
      if (!trc) {
        idx_batch *b = idx_batch_new(env->ix);
        idx_batch_put_timestamp(b, ck, tok.data, tok.len);
        trc = idx_batch_commit(env->ix, b);
        idx_batch_free(b);
      }
    }
    if (!trc)
      rc = put_tag(w, "custody/checkpoint.tsr", tok.data, tok.len);
    else
      cu_warn(
          "export: the signed head at size %lld has no time-stamp yet (%s); the bag goes without "
          "checkpoint.tsr",
          (long long)cu_json_int(sth, "size", 0), cu_errmsg());
  }
  cu_buf_release(&tok);
  if (rc) return rc;

  unsigned char pub[32],
      spki[44] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
  ledger_public_key(env->lg, pub);
  memcpy(spki + 12, pub, 32); /* RFC 8410 SubjectPublicKeyInfo for Ed25519 */
  cu_buf vkey = CU_BUF_INIT(1024), b64 = CU_BUF_INIT(1024), pem = CU_BUF_INIT(1024);
  rc = ledger_vkey(env->lg, &vkey);
  if (!rc) {
    cu_buf_adds(&vkey, "\n");
    rc = put_tag(w, "custody/ledger-key.txt", vkey.data, vkey.len);
  }
  if (!rc) {
    cu_b64_encode(spki, sizeof spki, &b64);
    cu_buf_printf(&pem, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", b64.data);
    rc = put_tag(w, "custody/ledger-key.pem", pem.data, pem.len);
  }
  cu_buf_release(&vkey);
  cu_buf_release(&b64);
  cu_buf_release(&pem);
  if (rc) return rc;

  /* Every TSA root the server has trusted (meta tsa_roots), else the
   * current one. */
  cu_buf roots = CU_BUF_INIT(16 << 20);
  json_t *list = NULL;
  if (!idx_meta_get(env->ix, "tsa_roots", &list)) {
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
      if (!json_is_string(v)) continue;
      const char *p = json_string_value(v);
      cu_buf_adds(&roots, p);
      if (*p && p[strlen(p) - 1] != '\n') cu_buf_adds(&roots, "\n");
    }
  }
  json_decref(list);
  if (!roots.len && env->ts) rc = tsa_ca_pem(env->ts, &roots);
  if (!rc) rc = put_tag(w, "custody/tsa-root.pem", roots.data ? roots.data : "", roots.len);
  cu_buf_release(&roots);
  return rc;
}

/* ---- one item's events ---------------------------------------------------- */

typedef struct {
  bitem *it;
  uint64_t size;
} scan_ctx;

/* Pass A: which event records each file, and the original's time-stamp. */
static int find_events(uint64_t index, const json_t *ev, void *ud) {
  scan_ctx *c = ud;
  if (index >= c->size) return 1;
  const char *type = cu_json_str(ev, "type"), *sha = cu_json_str(ev, "sha256");
  if (!type || !sha) return 0;
  bitem *it = c->it;
  for (int i = 0; i < it->nf; i++) {
    bfile *f = &it->f[i];
    if (f->ledger_index >= 0 || strcmp(f->sha256, sha)) continue;
    bool orig = !strcmp(f->kind, "original");
    const char *kind = cu_json_str(ev, "kind");
    if ((orig && !strcmp(type, "ingested")) ||
        (!orig && !strcmp(type, "rendition") && kind && !strcmp(kind, f->kind)))
      f->ledger_index = (int64_t)index;
  }
  if (!it->stamp && !strcmp(type, "timestamped") && !strcmp(sha, cu_json_str(it->ev, "sha256"))) {
    it->stamp = json_object();
    json_object_set(it->stamp, "gen_time", json_object_get(ev, "gen_time"));
    json_object_set(it->stamp, "tsa", json_object_get(ev, "tsa"));
    json_object_set_new(it->stamp, "ledger_index", json_integer((json_int_t)index));
  }
  return 0;
}

typedef struct {
  bagw *w;
  bitem *it;
  uint64_t size;
  FILE *jsonl, *rj, *rh;
  cu_buf bytes, b64;
  bool first;
  int rc;
} events_ctx;

static void html_event_row(FILE *h, uint64_t index, const json_t *ev) {
  fprintf(h, "<tr><td>%llu</td><td>", (unsigned long long)index);
  html(h, cu_json_str(ev, "at"));
  fputs("</td><td>", h);
  html(h, cu_json_str(ev, "type"));
  fputs("</td><td>", h);
  cu_buf who = CU_BUF_INIT(4096);
  actor_text(json_object_get(ev, "actor"), &who);
  html(h, who.data);
  cu_buf_release(&who);
  fputs("</td><td>", h);
  const char *k;
  json_t *v;
  bool any = false;
  json_object_foreach((json_t *)ev, k, v) {
    if (!strcmp(k, "at") || !strcmp(k, "type") || !strcmp(k, "actor") || !strcmp(k, "evidence"))
      continue;
    if (any) fputs("<br>", h);
    fputs("<b>", h);
    html(h, k);
    fputs("</b>: ", h);
    html_json(h, v);
    any = true;
  }
  fputs("</td></tr>\n", h);
}

/* Pass B: every event of the item up to the head: events.jsonl with its
 * proof, REPORT.json and REPORT.html. */
static int write_event(uint64_t index, void *ud) {
  events_ctx *c = ud;
  if (index >= c->size) return 1;
  merkle_hash path[MERKLE_MAX_PATH];
  int n = 0;
  cu_buf_reset(&c->bytes);
  cu_buf_reset(&c->b64);
  int rc = ledger_entry(c->w->env->lg, index, &c->bytes);
  if (!rc) rc = ledger_inclusion(c->w->env->lg, index, c->size, path, &n);
  if (!rc) rc = cu_b64_encode(c->bytes.data, c->bytes.len, &c->b64);
  if (rc) return c->rc = rc;
  fprintf(c->jsonl, "{\"index\":%llu,\"data\":\"%s\",\"audit_path\":[", (unsigned long long)index,
          c->b64.data);
  for (int i = 0; i < n; i++) {
    char hx[65];
    cu_hex_encode(path[i], 32, hx);
    fprintf(c->jsonl, "%s\"%s\"", i ? "," : "", hx);
  }
  fputs("]}\n", c->jsonl);
  json_t *ev = NULL;
  if (cu_json_parse(c->bytes.data, c->bytes.len, &ev)) ev = NULL;
  fprintf(c->rj, "%s\n    {\"index\":%llu,\"event\":", c->first ? "" : ",",
          (unsigned long long)index);
  if (ev)
    fwrite(c->bytes.data, 1, c->bytes.len, c->rj); /* canonical JSON already: the exact bytes */
  else
    fputs("null", c->rj);
  fputs("}", c->rj);
  c->first = false;
  if (ev) html_event_row(c->rh, index, ev);
  json_decref(ev);
  return 0;
}

/* ---- the reports ------------------------------------------------------------ */

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Evidence export ";
static const char html_style[] =
    "</title>\n<style>\n"
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:75em;"
    "padding:0 1em;color:#111;line-height:1.4}\n"
    "h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #999;margin-top:2em}"
    "h3{font-size:1.1em}\n"
    "table{border-collapse:collapse;margin:.5em 0 1em;width:100%}"
    "th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#eee}\n"
    "code,.h{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;word-break:break-"
    "all}"
    "pre{background:#f4f4f4;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}"
    "\n"
    ".facts th{width:14em}.note{color:#555}\n"
    "@media print{body{margin:0;max-width:none}}\n"
    "</style></head><body>\n";

static void html_fact(FILE *h, const char *label, const char *value, bool mono) {
  fputs("<tr><th>", h);
  html(h, label);
  fputs(mono ? "</th><td class=\"h\">" : "</th><td>", h);
  html(h, value ? value : "");
  fputs("</td></tr>\n", h);
}

static void html_fact_u64(FILE *h, const char *label, uint64_t v) {
  char s[32];
  snprintf(s, sizeof s, "%llu", (unsigned long long)v);
  html_fact(h, label, s, false);
}

/* The facts of one item (before its events). */
static void html_item_head(FILE *h, const bitem *it) {
  const json_t *ev = it->ev;
  fputs("<h2>Evidence <code>", h);
  html(h, it->id);
  fputs("</code></h2>\n<table class=\"facts\">\n", h);
  html_fact(h, "File name (as uploaded)", cu_json_str(ev, "filename"), false);
  html_fact(h, "SHA-256 of the original", cu_json_str(ev, "sha256"), true);
  html_fact_u64(h, "Size (bytes)", (uint64_t)cu_json_int(ev, "size", 0));
  html_fact(h, "Device", cu_json_str(ev, "device_id"), false);
  html_fact(h, "Officer", cu_json_str(ev, "officer_id"), false);
  html_fact(h, "Recorded at", cu_json_str(ev, "recorded_at"), false);
  html_fact(h, "Recorded-at source", cu_json_str(ev, "recorded_at_source"), false);
  html_fact(h, "Received at", cu_json_str(ev, "received_at"), false);
  cu_buf who = CU_BUF_INIT(4096);
  actor_text(json_object_get(ev, "uploaded_by"), &who);
  html_fact(h, "Uploaded by", who.data, false);
  cu_buf_release(&who);
  const json_t *media = json_object_get(ev, "media");
  if (media) {
    char d[64] = "";
    json_t *dur = json_object_get(media, "duration_s");
    if (json_is_number(dur)) snprintf(d, sizeof d, "%.3f s", json_number_value(dur));
    html_fact(h, "Media", cu_json_str(media, "status"), false);
    if (cu_json_str(media, "container"))
      html_fact(h, "Container", cu_json_str(media, "container"), false);
    if (*d) html_fact(h, "Duration", d, false);
  }
  if (it->stamp) {
    html_fact(h, "Time-stamped at (RFC 3161 genTime)", cu_json_str(it->stamp, "gen_time"), false);
    html_fact(h, "Time-stamp authority", cu_json_str(it->stamp, "tsa"), false);
  }
  const json_t *integ = json_object_get(ev, "integrity");
  if (integ) html_fact(h, "Integrity", cu_json_str(integ, "status"), false);
  fputs("</table>\n<h3>Files</h3>\n<table><tr><th>Path in the bag</th><th>Kind</th><th>Bytes</th>"
        "<th>SHA-256 / SHA-512</th><th>Ledger entry</th></tr>\n",
        h);
  for (int i = 0; i < it->nf; i++) {
    const bfile *f = &it->f[i];
    fputs("<tr><td class=\"h\">", h);
    html(h, f->rel);
    fputs("</td><td>", h);
    html(h, f->kind);
    fprintf(h, "</td><td>%llu</td><td class=\"h\">", (unsigned long long)f->size);
    html(h, f->sha256);
    fputs("<br>", h);
    html(h, f->sha512);
    if (f->ledger_index >= 0)
      fprintf(h, "</td><td>%lld</td></tr>\n", (long long)f->ledger_index);
    else
      fputs("</td><td>—</td></tr>\n", h);
  }
  fputs("</table>\n", h);
  if (json_array_size(it->skipped)) {
    fputs("<p class=\"note\">Asked for but not in this bag:</p><ul>\n", h);
    size_t i;
    json_t *s;
    json_array_foreach(it->skipped, i, s) {
      fputs("<li>", h);
      html(h, cu_json_str(s, "kind"));
      fputs(" (", h);
      html(h, cu_json_str(s, "state"));
      fputs("): ", h);
      html(h, cu_json_str(s, "reason"));
      fputs("</li>\n", h);
    }
    fputs("</ul>\n", h);
  }
  fputs("<h3>Chain of custody</h3>\n<p class=\"note\">Every ledger event of this item up to the "
        "signed "
        "tree head of this bag, in ledger order; each has its inclusion proof in <code>custody/",
        h);
  html(h, it->id);
  fputs("/events.jsonl</code>.</p>\n<table><tr><th>#</th><th>When "
        "(UTC)</th><th>Event</th><th>Who</th>"
        "<th>Details</th></tr>\n",
        h);
}

static void json_item_head(FILE *j, const bitem *it, bool first) {
  char *ev = cu_json_canon(it->ev, NULL);
  fprintf(j, "%s\n  {\"evidence\":%s,\n   \"files\":[", first ? "" : ",", ev);
  free(ev);
  for (int i = 0; i < it->nf; i++) {
    const bfile *f = &it->f[i];
    json_t *o = json_object();
    cu_json_set_str(o, "path", f->rel);
    cu_json_set_str(o, "kind", f->kind);
    cu_json_set_str(o, "sha256", f->sha256);
    cu_json_set_str(o, "sha512", f->sha512);
    cu_json_set_int(o, "size", (int64_t)f->size);
    if (f->source_sha256[0]) cu_json_set_str(o, "source_sha256", f->source_sha256);
    cu_json_set_str(o, "content_type", f->content_type);
    if (f->rec && json_object_get(f->rec, "clip"))
      json_object_set(o, "clip", json_object_get(f->rec, "clip"));
    json_object_set_new(o, "ledger_index",
                        f->ledger_index >= 0 ? json_integer(f->ledger_index) : json_null());
    char *s = cu_json_canon(o, NULL);
    fprintf(j, "%s\n    %s", i ? "," : "", s);
    free(s);
    json_decref(o);
  }
  char *sk = cu_json_canon(it->skipped, NULL);
  char *st = it->stamp ? cu_json_canon(it->stamp, NULL) : cu_xstrdup("null");
  fprintf(j, "],\n   \"skipped\":%s,\n   \"timestamp\":%s,\n   \"events\":[", sk, st);
  free(sk);
  free(st);
}

/* ---- the whole bag ------------------------------------------------------------ */

typedef struct {
  char (*v)[CU_ID_LEN + 1];
  size_t n, cap;
  int rc;
} idlist;

static int add_id(const char *id, void *ud) {
  idlist *l = ud;
  if (l->n >= EXPORT_MAX_ITEMS) {
    l->rc = cu_error(CU_EINVAL, "an export holds at most %d items; select fewer", EXPORT_MAX_ITEMS);
    return 1;
  }
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->v = cu_xrealloc(l->v, l->cap * sizeof *l->v);
  }
  snprintf(l->v[l->n++], CU_ID_LEN + 1, "%s", id);
  return 0;
}

static int cmp_id(const void *a, const void *b) {
  return strcmp(a, b);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
  (void)st;
  (void)f;
  if ((flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT)
    cu_warn("export: cannot remove %s: %s", p, strerror(errno));
  return 0;
}

static void rmtree(const char *p) {
  struct stat st;
  if (lstat(p, &st) == 0) nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int export_remove_files(const char *exports_dir, const char *export_id) {
  if (!cu_id_valid(export_id)) return cu_error(CU_EINVAL, "'%.64s' is not an export id", export_id);
  char *p = cu_xasprintf("%s/%s.part", exports_dir, export_id);
  rmtree(p);
  free(p);
  p = cu_xasprintf("%s/%s", exports_dir, export_id);
  rmtree(p);
  free(p);
  return cu_fsync_dir(exports_dir);
}

int export_sweep(const char *exports_dir) {
  DIR *d = opendir(exports_dir);
  if (!d) return errno == ENOENT ? 0 : cu_error_errno(CU_EIO, errno, "cannot open %s", exports_dir);
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len != CU_ID_LEN + 5 || strcmp(de->d_name + CU_ID_LEN, ".part")) continue;
    char *p = cu_xasprintf("%s/%s", exports_dir, de->d_name);
    cu_info("export: removing %s, left by an export that did not finish (it runs again)", p);
    rmtree(p);
    free(p);
    n++;
  }
  closedir(d);
  return n ? cu_fsync_dir(exports_dir) : 0;
}

static void checks_json(FILE *j) {
  static const char *const checks[] = {
      "sha256sum -c manifest-sha256.txt",
      "sha512sum -c manifest-sha512.txt",
      "sha256sum -c tagmanifest-sha256.txt",
      "openssl ts -verify -digest <sha256 of the original> -in custody/<evidence id>/original.tsr "
      "-CAfile custody/tsa-root.pem",
      "openssl ts -verify -digest $(sha256sum custody/checkpoint.txt | cut -c1-64) -in "
      "custody/checkpoint.tsr -CAfile custody/tsa-root.pem",
      "custos verify <bag>"};
  fputs("\"checks\":[", j);
  for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
    json_t *s = json_string(checks[i]);
    char *c = json_dumps(s, JSON_ENCODE_ANY);
    fprintf(j, "%s\n  %s", i ? "," : "", c);
    free(c);
    json_decref(s);
  }
  fputs("]", j);
}

static void html_checks(FILE *h, bool have_ck_tsr, const idlist *ids, const export_env *env) {
  fputs("<h2>How to check this bag</h2>\n"
        "<p>Everything below needs only standard tools and the files in this bag. Run the commands "
        "in the bag's directory (the one holding <code>bagit.txt</code>).</p>\n<ol>\n"
        "<li><p>Every file is what the manifests say (BagIt, RFC 8493): each command prints "
        "<code>OK</code> for every line.</p>\n"
        "<pre>sha256sum -c manifest-sha256.txt\nsha512sum -c manifest-sha512.txt\n"
        "sha256sum -c tagmanifest-sha256.txt</pre></li>\n"
        "<li><p>Each original existed, with these bytes, when its RFC 3161 time-stamp says "
        "(<code>Verification: OK</code>):</p>\n<pre>",
        h);
  for (size_t i = 0; i < ids->n; i++) {
    json_t *ev = NULL;
    if (idx_evidence_get(env->ix, ids->v[i], &ev)) continue;
    fputs("openssl ts -verify -digest ", h);
    html(h, cu_json_str(ev, "sha256"));
    fputs(" -in custody/", h);
    html(h, ids->v[i]);
    fputs("/original.tsr -CAfile custody/tsa-root.pem\n", h);
    json_decref(ev);
  }
  fputs("</pre></li>\n", h);
  fputs(
      "<li><p>The signed tree head (<code>custody/checkpoint.txt</code>, a C2SP signed note) is "
      "signed by the ledger key in <code>custody/ledger-key.pem</code>: the signed bytes are its "
      "first three lines, the signature the last 64 bytes of the base64 after the key name on its "
      "last line.</p>\n"
      "<pre>head -n 3 custody/checkpoint.txt &gt; signed.txt\n"
      "tail -n 1 custody/checkpoint.txt | awk '{print $3}' | base64 -d | tail -c 64 &gt; sig.bin\n"
      "openssl pkeyutl -verify -pubin -inkey custody/ledger-key.pem -rawin -in signed.txt "
      "-sigfile sig.bin</pre>\n"
      "<p>Compare <code>custody/ledger-key.txt</code> with the ledger key published outside the "
      "server (a court filing, the case file): a bag signed by another key proves "
      "nothing.</p></li>\n",
      h);
  if (have_ck_tsr)
    fputs("<li><p>The signed head existed when its own time-stamp says:</p>\n"
          "<pre>openssl ts -verify -digest $(sha256sum custody/checkpoint.txt | cut -c1-64) "
          "-in custody/checkpoint.tsr -CAfile custody/tsa-root.pem</pre></li>\n",
          h);
  fputs(
      "<li><p>Each event in <code>custody/&lt;evidence id&gt;/events.jsonl</code> is in the signed "
      "tree: its leaf hash SHA-256(0x00 ‖ data) with its audit path gives the root in "
      "<code>custody/sth.json</code> (RFC 9162 §2.1.3.2; the Custos ledger documentation, "
      "LEDGER.md, says step by step how). The <code>ingested</code> event carries the original's "
      "SHA-256, each <code>rendition</code> event a derived copy's.</p></li>\n"
      "<li><p>All of the above, and that every file is recorded by an event in the bag, in one "
      "command:</p>\n<pre>custos verify &lt;this bag's directory or its "
      ".tar&gt;</pre></li>\n</ol>\n",
      h);
}

int export_build(const export_env *env, const json_t *rec, const json_t *clips,
                 export_result *res) {
  memset(res, 0, sizeof *res);
  const char *eid = cu_json_str(rec, "id"), *case_id = cu_json_str(rec, "case");
  const json_t *sel = json_object_get(rec, "selection");
  json_t *casrec = NULL, *sth = NULL;
  idlist ids = {0};
  bagw w = {.env = env};
  copier cp = {.env = env};
  bool hashing = false;
  FILE *m256 = NULL, *m512 = NULL, *rj = NULL, *rh = NULL;
  char *final = NULL, *oxum = NULL;
  cu_buf waiting = CU_BUF_INIT(4096), text = CU_BUF_INIT(1 << 20);
  bitem it = {0};
  int nwait = 0, rc;
  if (!eid || !cu_id_valid(eid) || !case_id) return cu_error(CU_EINVAL, "not an export record");

  if ((rc = idx_case_get(env->ix, case_id, &casrec))) goto done;
  export_bag_name(case_id, eid, res->bag);

  /* The items: as listed, or the case's as it is now. */
  const json_t *listed = json_object_get(sel, "evidence");
  if (json_is_array(listed)) {
    size_t i;
    json_t *v;
    json_array_foreach(listed, i, v) {
      if (!json_is_string(v) || !cu_id_valid(json_string_value(v))) {
        rc = cu_error(CU_EINVAL, "the selection names an item that is not an evidence id");
        goto done;
      }
      add_id(json_string_value(v), &ids);
      if ((rc = ids.rc)) goto done;
    }
  } else {
    rc = idx_case_evidence_each(env->ix, case_id, add_id, &ids);
    if (!rc) rc = ids.rc;
    if (rc) goto done;
  }
  if (!ids.n) {
    rc = cu_error(CU_EINVAL, "nothing to export: case %s holds no evidence", case_id);
    goto done;
  }
  qsort(ids.v, ids.n, sizeof *ids.v, cmp_id);
  size_t u = 0;
  for (size_t i = 0; i < ids.n; i++)
    if (!u || strcmp(ids.v[u - 1], ids.v[i])) memmove(ids.v[u++], ids.v[i], CU_ID_LEN + 1);
  ids.n = u;

  /* Pass 1: ready? how much? (All of a case leaves out its deleted items;
   * an item listed by name that was deleted since fails the export.) */
  bool ready = true;
  u = 0;
  for (size_t i = 0; i < ids.n; i++) {
    rc = plan_item(env, sel, clips, ids.v[i], &it, &ready, &waiting, &nwait);
    if (rc == CU_EGONE && !json_is_array(listed)) {
      cu_info("export %s: evidence %s was deleted; it is left out", eid, ids.v[i]);
      item_release(&it);
      rc = 0;
      continue;
    }
    for (int j = 0; !rc && j < it.nf; j++) {
      cp.total += it.f[j].size;
      res->payload_files++;
    }
    item_release(&it);
    if (rc) goto done;
    if (u != i) memmove(ids.v[u], ids.v[i], CU_ID_LEN + 1);
    u++;
  }
  ids.n = u;
  if (!ids.n) {
    rc = cu_error(CU_EINVAL, "nothing to export: every item of case %s was deleted", case_id);
    goto done;
  }
  if (!ready) {
    rc = cu_error(CU_EBUSY, "waiting for %s%s", waiting.data, nwait > 3 ? " and more" : "");
    goto done;
  }
  if ((rc = wait_head(env, ledger_size(env->lg), &sth))) goto done;
  res->sth_size = (uint64_t)cu_json_int(sth, "size", 0);

  /* Pass 2: the bag. */
  if ((rc = export_remove_files(env->exports_dir, eid))) goto done;
  w.part = cu_xasprintf("%s/%s.part", env->exports_dir, eid);
  final = cu_xasprintf("%s/%s", env->exports_dir, eid);
  if (mkdir(w.part, 0750) < 0) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create %s", w.part);
    goto done;
  }
  if ((rc = mkdir_in(&w, "data")) || (rc = mkdir_in(&w, "custody"))) goto done;
  if ((rc = h512_start(&cp.h))) goto done;
  hashing = true;
  if (!(m256 = open_stream(&w, "manifest-sha256.txt", &rc)) ||
      !(m512 = open_stream(&w, "manifest-sha512.txt", &rc)) ||
      !(rj = open_stream(&w, "REPORT.json", &rc)) || !(rh = open_stream(&w, "REPORT.html", &rc)))
    goto done;

  json_t *sp = sth_public(sth);
  char *cj = cu_json_canon(casrec, NULL), *sj = cu_json_canon(sp, NULL);
  json_decref(sp);
  fprintf(rj, "{\"case\":%s,\n\"sth\":%s,\n\"items\":[", cj, sj);
  free(cj);
  free(sj);
  fputs(html_head, rh);
  html(rh, res->bag);
  fputs(html_style, rh);
  fputs("<h1>Evidence export of case ", rh);
  html(rh, case_id);
  fputs("</h1>\n<table class=\"facts\">\n", rh);
  html_fact(rh, "Case", case_id, false);
  html_fact(rh, "Case title", cu_json_str(casrec, "title"), false);
  html_fact(rh, "Case status", cu_json_str(casrec, "status"), false);
  html_fact(rh, "Export", eid, true);
  html_fact(rh, "Bag", res->bag, true);
  cu_buf who = CU_BUF_INIT(4096);
  actor_text(json_object_get(rec, "requested_by"), &who);
  html_fact(rh, "Requested by", who.data, false);
  cu_buf_release(&who);
  html_fact(rh, "Requested at", cu_json_str(rec, "created_at"), false);
  html_fact(rh, "Source organization", env->organization ? env->organization : "Custos", false);
  html_fact_u64(rh, "Items", ids.n);
  html_fact_u64(rh, "Files in data/", res->payload_files);
  html_fact_u64(rh, "Bytes in data/", cp.total);
  html_fact(rh, "Ledger", cu_json_str(sth, "origin"), true);
  html_fact_u64(rh, "Signed tree head: size", res->sth_size);
  html_fact(rh, "Signed tree head: root", cu_json_str(sth, "root"), true);
  html_fact(rh, "Signed tree head: signed at (server clock)", cu_json_str(sth, "timestamp"), false);
  fputs("</table>\n<p>This report lists the same facts as <code>REPORT.json</code>. The bag is "
        "checked "
        "by its manifests, the RFC 3161 time-stamps and the signed ledger, as the last section "
        "says; this page itself proves nothing.</p>\n",
        rh);

  report(&cp, true);
  for (size_t i = 0; i < ids.n; i++) {
    bool r2 = true;
    cu_buf_reset(&waiting);
    if ((rc = plan_item(env, sel, clips, ids.v[i], &it, &r2, &waiting, &nwait))) goto done;
    if (!r2) { /* it was ready a moment ago: states only move forward */
      rc = cu_error(CU_EBUSY, "waiting for %s", waiting.data);
      goto done;
    }
    char *d = cu_xasprintf("data/%s", it.id), *cd = cu_xasprintf("custody/%s", it.id);
    rc = mkdir_in(&w, d);
    if (!rc) rc = mkdir_in(&w, cd);
    for (int j = 0; !rc && j < it.nf; j++) {
      bfile *f = &it.f[j];
      char *sub = cu_xstrdup(f->rel);
      *strrchr(sub, '/') = '\0';
      rc = mkdir_in(&w, sub);
      free(sub);
      if (rc) break;
      char *dst = cu_xasprintf("%s/%s", w.part, f->rel);
      rc = copy_object(&cp, it.id, f, dst);
      free(dst);
      if (rc) break;
      fprintf(m256, "%s  %s\n", f->sha256, f->rel);
      fprintf(m512, "%s  %s\n", f->sha512, f->rel);
      res->payload_bytes += f->size;
    }
    if (!rc) {
      char *t = cu_xasprintf("%s/original.tsr", cd);
      rc = put_tag(&w, t, it.token.data, it.token.len);
      free(t);
    }
    FILE *jl = NULL;
    char *jrel = cu_xasprintf("%s/events.jsonl", cd);
    if (!rc) {
      scan_ctx sc = {&it, res->sth_size};
      rc = ledger_each_event(env->ix, it.id, find_events, &sc);
    }
    if (!rc && (jl = open_stream(&w, jrel, &rc))) {
      json_item_head(rj, &it, i == 0);
      html_item_head(rh, &it);
      events_ctx ec = {.w = &w,
                       .it = &it,
                       .size = res->sth_size,
                       .jsonl = jl,
                       .rj = rj,
                       .rh = rh,
                       .bytes = CU_BUF_INIT(CU_MAX_RECORD_BYTES),
                       .b64 = CU_BUF_INIT(2 * CU_MAX_RECORD_BYTES),
                       .first = true};
      rc = idx_evidence_events(env->ix, it.id, write_event, &ec);
      if (!rc) rc = ec.rc;
      cu_buf_release(&ec.bytes);
      cu_buf_release(&ec.b64);
      fputs("]}", rj);
      fputs("</table>\n", rh);
    }
    rc = close_stream(&jl, jrel, rc);
    free(jrel);
    free(d);
    free(cd);
    item_release(&it);
    if (rc) goto done;
    if ((rc = cancelled(env))) goto done;
  }
  report(&cp, true);
  if ((rc = write_head(&w, sth))) goto done;
  bool have_ck_tsr = false;
  for (size_t i = 0; i < w.tags.n; i++)
    have_ck_tsr |= !strcmp(w.tags.v[i], "custody/checkpoint.tsr");

  res->finished_us = cu_now_us();
  char fin[CU_RFC3339_LEN];
  cu_time_rfc3339(res->finished_us, fin);
  oxum = cu_xasprintf("%llu.%llu", (unsigned long long)res->payload_bytes,
                      (unsigned long long)res->payload_files);

  /* REPORT.json: the export's own facts last (its finish time is known only now). */
  json_t *ex = json_object();
  cu_json_set_str(ex, "id", eid);
  cu_json_set_str(ex, "case", case_id);
  cu_json_set_str(ex, "bag", res->bag);
  json_object_set(ex, "created_at", json_object_get(rec, "created_at"));
  cu_json_set_str(ex, "finished_at", fin);
  json_object_set(ex, "requested_by", json_object_get(rec, "requested_by"));
  json_object_set(ex, "selection", json_object_get(rec, "selection"));
  cu_json_set_str(ex, "payload_oxum", oxum);
  cu_json_set_int(ex, "tree_size", (int64_t)res->sth_size);
  char *exj = cu_json_canon(ex, NULL);
  json_decref(ex);
  fprintf(rj, "],\n\"export\":%s,\n", exj);
  free(exj);
  checks_json(rj);
  fputs("}\n", rj);

  html_checks(rh, have_ck_tsr, &ids, env);
  fputs("<p class=\"note\">Bag finished at ", rh);
  html(rh, fin);
  fputs(" (UTC); Payload-Oxum ", rh);
  html(rh, oxum);
  fputs(".</p>\n</body></html>\n", rh);
  rc = close_stream(&m256, "manifest-sha256.txt", rc);
  rc = close_stream(&m512, "manifest-sha512.txt", rc);
  rc = close_stream(&rj, "REPORT.json", rc);
  rc = close_stream(&rh, "REPORT.html", rc);
  if (rc) goto done;

  static const char bagit[] = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
  if ((rc = put_tag(&w, "bagit.txt", bagit, sizeof bagit - 1))) goto done;
  char date[16], hs[32];
  memcpy(date, fin, 10);
  date[10] = '\0';
  human_size(res->payload_bytes, hs);
  cu_buf_adds(&text, "Source-Organization: ");
  tag_value(&text, env->organization ? env->organization : "Custos");
  cu_buf_printf(&text, "\nBagging-Date: %s\nPayload-Oxum: %s\nExternal-Identifier: ", date, oxum);
  tag_value(&text, case_id);
  cu_buf_adds(&text, "\nExported-By: ");
  const json_t *by = json_object_get(rec, "requested_by");
  tag_value(&text, cu_json_str(by, "user")       ? cu_json_str(by, "user")
                   : cu_json_str(by, "token_id") ? cu_json_str(by, "token_id")
                                                 : "unknown");
  cu_buf_adds(&text, "\nExternal-Description: ");
  tag_value(&text, cu_json_str(casrec, "title"));
  cu_buf_printf(&text, "\nBag-Size: %s\nX-Custos-Export-Id: %s\nX-Custos-Ledger-Origin: ", hs, eid);
  tag_value(&text, cu_json_str(sth, "origin"));
  cu_buf_printf(&text, "\nX-Custos-Tree-Size: %llu\n", (unsigned long long)res->sth_size);
  if ((rc = put_tag(&w, "bag-info.txt", text.data, text.len))) goto done;

  /* The tag manifest: every tag file but itself, sorted. */
  qsort(w.tags.v, w.tags.n, sizeof *w.tags.v, cmp_str);
  cu_buf_reset(&text);
  for (size_t i = 0; i < w.tags.n; i++) {
    char hx[65];
    char *p = cu_xasprintf("%s/%s", w.part, w.tags.v[i]);
    rc = cu_sha256_file(p, hx, NULL);
    free(p);
    if (rc) goto done;
    cu_buf_printf(&text, "%s  %s\n", hx, w.tags.v[i]);
  }
  if ((rc = put_tag(&w, "tagmanifest-sha256.txt", text.data, text.len))) goto done;
  cu_sha256_hex(text.data, text.len, res->tagmanifest_sha256);

  /* Durable, then visible. */
  int dfd = open(w.part, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || syncfs(dfd) < 0) rc = cu_error_errno(CU_EIO, errno, "cannot sync %s", w.part);
  if (dfd >= 0) close(dfd);
  if (rc) goto done;
  if (rename(w.part, final) < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot rename %s", w.part);
    goto done;
  }
  if ((rc = cu_fsync_dir(env->exports_dir))) goto done;
  tar_layout *tl = NULL;
  if ((rc = tar_layout_build(&tl, final, res->bag, res->finished_us / 1000000))) goto done;
  res->tar_size = tar_layout_size(tl);
  tar_layout_free(tl);
  res->items = ids.v;
  res->nitems = ids.n;
  ids.v = NULL;
  cu_info("export %s: bag %s complete: %zu items, %llu files, %llu bytes, tag manifest %s", eid,
          res->bag, res->nitems, (unsigned long long)res->payload_files,
          (unsigned long long)res->payload_bytes, res->tagmanifest_sha256);

done:
  if (hashing) h512_stop(&cp.h);
  item_release(&it);
  close_stream(&m256, "", 0);
  close_stream(&m512, "", 0);
  close_stream(&rj, "", 0);
  close_stream(&rh, "", 0);
  if (rc && w.part) { /* nothing half-made stays */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cu_errmsg());
    rmtree(w.part);
    if (final) rmtree(final);
    cu_error(rc, "%s", msg);
  }
  free(w.part);
  free(final);
  free(oxum);
  strlist_free(&w.tags);
  free(ids.v);
  cu_buf_release(&waiting);
  cu_buf_release(&text);
  json_decref(casrec);
  json_decref(sth);
  if (rc) export_result_release(res);
  return rc;
}

int export_commit(const export_env *env, const json_t *rec, const export_result *res,
                  json_t **done) {
  const char *eid = cu_json_str(rec, "id"), *case_id = cu_json_str(rec, "case");
  json_t *d = json_deep_copy(rec);
  char oxum[48];
  snprintf(oxum, sizeof oxum, "%llu.%llu", (unsigned long long)res->payload_bytes,
           (unsigned long long)res->payload_files);
  cu_json_set_str(d, "state", "done");
  cu_json_set_time(d, "finished_at", res->finished_us);
  cu_json_set_str(d, "bag", res->bag);
  cu_json_set_str(d, "payload_oxum", oxum);
  cu_json_set_int(d, "tar_size", (int64_t)res->tar_size);
  cu_json_set_str(d, "tagmanifest_sha256", res->tagmanifest_sha256);
  cu_json_set_int(d, "tree_size", (int64_t)res->sth_size);
  cu_json_set_int(d, "items", (int64_t)res->nitems);
  cu_json_set_int(d, "files", (int64_t)res->payload_files);
  cu_json_set_int(d, "bytes", (int64_t)res->payload_bytes);
  json_object_del(d, "waiting_for");
  json_object_del(d, "error");
  idx_batch *b = idx_batch_new(env->ix);
  idx_batch_put_export(b, d);
  size_t n = res->nitems + 1;
  json_t **evs = cu_xcalloc(n, sizeof *evs);
  const json_t *actor = json_object_get(rec, "requested_by");
  json_t *items = json_array();
  for (size_t i = 0; i < res->nitems; i++) {
    json_t *e = json_object();
    cu_json_set_str(e, "type", "exported");
    cu_json_set_str(e, "evidence", res->items[i]);
    cu_json_set_str(e, "case", case_id);
    cu_json_set_str(e, "export", eid);
    cu_json_set_str(e, "tagmanifest_sha256", res->tagmanifest_sha256);
    if (actor) json_object_set(e, "actor", (json_t *)actor);
    evs[i] = e;
    json_array_append_new(items, json_string(res->items[i]));
  }
  json_t *ce = json_object();
  cu_json_set_str(ce, "type", "exported");
  cu_json_set_str(ce, "case", case_id);
  cu_json_set_str(ce, "export", eid);
  cu_json_set_str(ce, "bag", res->bag);
  json_object_set_new(ce, "items", items);
  cu_json_set_str(ce, "payload_oxum", oxum);
  cu_json_set_str(ce, "tagmanifest_sha256", res->tagmanifest_sha256);
  if (actor) json_object_set(ce, "actor", (json_t *)actor);
  evs[n - 1] = ce;
  int rc = ledger_commit(env->lg, b, evs, (int)n, NULL);
  for (size_t i = 0; i < n; i++)
    json_decref(evs[i]);
  free(evs);
  idx_batch_free(b);
  if (!rc && done)
    *done = d;
  else
    json_decref(d);
  return rc;
}

int export_tar(const char *exports_dir, const json_t *rec, tar_layout **out) {
  *out = NULL;
  const char *eid = cu_json_str(rec, "id"), *bag = cu_json_str(rec, "bag"),
             *state = cu_json_str(rec, "state"), *fin = cu_json_str(rec, "finished_at");
  if (!state || strcmp(state, "done") || !bag || !fin)
    return cu_error(CU_ECONFLICT, "the export is not done");
  if (!cu_id_valid(eid ? eid : "")) return cu_error(CU_EINVAL, "not an export record");
  int64_t us;
  if (cu_time_parse_rfc3339(fin, &us))
    return cu_error(CU_ECORRUPT, "the export's finished_at is not a time");
  char *dir = cu_xasprintf("%s/%s", exports_dir, eid);
  tar_layout *l = NULL;
  int rc = tar_layout_build(&l, dir, bag, us / 1000000);
  if (rc == CU_EIO && access(dir, F_OK) < 0)
    rc = cu_error(CU_ECORRUPT, "the bag of export %s is missing from %s", eid, exports_dir);
  free(dir);
  if (rc) return rc;
  uint64_t want = (uint64_t)cu_json_int(rec, "tar_size", 0);
  if (tar_layout_size(l) != want) {
    rc = cu_error(CU_ECORRUPT,
                  "the bag of export %s changed on disk: its tar would be %llu bytes, not %llu",
                  eid, (unsigned long long)tar_layout_size(l), (unsigned long long)want);
    tar_layout_free(l);
    return rc;
  }
  *out = l;
  return 0;
}
