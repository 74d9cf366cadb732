/* DESIGN: one thread, one loop. Each turn it uploads the oldest file that
 * is ready (one push_file call, which may retry for as long as the server
 * is away), else waits on the inotify descriptor until the next rescan is
 * due. Events that arrive while an upload runs wait in the kernel's queue;
 * if that overflows, the next rescan finds the files anyway, so the
 * rescan, not the events, is what guarantees that nothing is missed, and
 * the events only make a closed file go at once instead of after `settle`
 * seconds.
 *
 * Candidates (files seen but not yet uploaded) are a small array searched
 * linearly: a dock holds the recordings of a few cameras between uploads,
 * not an archive. Files already uploaded are not kept in memory; a rescan
 * recognises them by their done-marker. */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

#define WATCH_MASK                                                                                 \
  (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DONT_FOLLOW |         \
   IN_ONLYDIR | IN_EXCL_UNLINK)
/* The longest the loop sleeps without looking at the stop flag. */
#define WATCH_POLL_MAX_MS 500

typedef struct {
  int wd;
  char *path;
} wdir;

typedef struct {
  char *path;
  off_t size;
  struct timespec mtime;
  int64_t since_us; /* when size and mtime were last seen to change */
  bool ready, seen;
} cand;

typedef struct {
  push_client *p;
  const watch_opts *o;
  int ifd;
  wdir *dirs;
  size_t ndirs, capdirs;
  cand *c;
  size_t nc, capc;
  char (*failed)[65]; /* fingerprints refused for good in this run */
  size_t nfailed, capfailed;
  int64_t next_scan_us;
} watcher;

static bool stopping(const watcher *w) {
  return w->o->stop && *w->o->stop;
}

/* ---- watches ------------------------------------------------------------ */

static const char *dir_of_wd(watcher *w, int wd) {
  for (size_t i = 0; i < w->ndirs; i++)
    if (w->dirs[i].wd == wd) return w->dirs[i].path;
  return NULL;
}

static void drop_wd(watcher *w, size_t i) {
  free(w->dirs[i].path);
  w->dirs[i] = w->dirs[--w->ndirs];
}

static int add_watch(watcher *w, const char *dir) {
  int wd = inotify_add_watch(w->ifd, dir, WATCH_MASK);
  if (wd < 0) return cu_error_errno(cu_errno_code(errno), errno, "cannot watch %s", dir);
  for (size_t i = 0; i < w->ndirs; i++) {
    if (w->dirs[i].wd == wd) { /* the same folder, perhaps under a new name */
      if (strcmp(w->dirs[i].path, dir)) {
        free(w->dirs[i].path);
        w->dirs[i].path = cu_xstrdup(dir);
      }
      return 0;
    }
  }
  if (w->ndirs == w->capdirs) {
    w->capdirs = w->capdirs ? w->capdirs * 2 : 16;
    w->dirs = cu_xrealloc(w->dirs, w->capdirs * sizeof *w->dirs);
  }
  w->dirs[w->ndirs].wd = wd;
  w->dirs[w->ndirs].path = cu_xstrdup(dir);
  w->ndirs++;
  return 0;
}

/* A folder moved away: stop watching it and everything under it. A folder
 * moved within the tree is watched again by the rescan this triggers. */
static void unwatch_tree(watcher *w, const char *dir) {
  size_t n = strlen(dir);
  for (size_t i = 0; i < w->ndirs;) {
    const char *d = w->dirs[i].path;
    if (!strncmp(d, dir, n) && (d[n] == '\0' || d[n] == '/')) {
      inotify_rm_watch(w->ifd, w->dirs[i].wd);
      drop_wd(w, i);
    } else {
      i++;
    }
  }
}

/* ---- candidates --------------------------------------------------------- */

static cand *find_cand(watcher *w, const char *path) {
  for (size_t i = 0; i < w->nc; i++)
    if (!strcmp(w->c[i].path, path)) return &w->c[i];
  return NULL;
}

static cand *add_cand(watcher *w, const char *path, const struct stat *st, int64_t now) {
  if (w->nc == w->capc) {
    w->capc = w->capc ? w->capc * 2 : 16;
    w->c = cu_xrealloc(w->c, w->capc * sizeof *w->c);
  }
  cand *c = &w->c[w->nc++];
  memset(c, 0, sizeof *c);
  c->path = cu_xstrdup(path);
  c->size = st->st_size;
  c->mtime = st->st_mtim;
  c->since_us = now;
  return c;
}

static void drop_cand(watcher *w, cand *c) {
  size_t i = (size_t)(c - w->c);
  free(c->path);
  /* Keep the order: the oldest ready file goes first. */
  memmove(&w->c[i], &w->c[i + 1], (w->nc - i - 1) * sizeof *w->c);
  w->nc--;
}

static bool has_failed(const watcher *w, const char *fp) {
  for (size_t i = 0; i < w->nfailed; i++)
    if (!strcmp(w->failed[i], fp)) return true;
  return false;
}

static void mark_failed(watcher *w, const char *fp) {
  if (!fp[0] || has_failed(w, fp)) return;
  if (w->nfailed == w->capfailed) {
    w->capfailed = w->capfailed ? w->capfailed * 2 : 16;
    w->failed = cu_xrealloc(w->failed, w->capfailed * sizeof *w->failed);
  }
  memcpy(w->failed[w->nfailed++], fp, 65);
}

/* ---- deleting what the server has verified ------------------------------ */

/* The file at path has a done-marker (r): delete it, but only after its
 * bytes, read again now, hash to what the server holds. */
static void delete_verified(watcher *w, const char *path, const push_result *r) {
  char now[65];
  uint64_t size;
  if (cu_sha256_file(path, now, &size)) {
    cu_warn("%s: not deleted: %s", path, cu_errmsg());
    return;
  }
  if (strcmp(now, r->sha256)) {
    cu_warn("%s: not deleted: it now hashes to %s, but the server holds %s (evidence %s)", path,
            now, r->sha256, r->evidence_id);
    return;
  }
  if (unlink(path) < 0) {
    cu_warn("%s: cannot delete it after upload: %s", path, strerror(errno));
    return;
  }
  char *slash = strrchr(path, '/');
  char *dir = slash ? cu_xstrndup(path, (size_t)(slash - path)) : cu_xstrdup(".");
  if (!dir[0]) {
    free(dir);
    dir = cu_xstrdup("/");
  }
  cu_fsync_dir(dir);
  free(dir);
  cu_info("%s: deleted; the server holds it as evidence %s (sha256 %s)", path, r->evidence_id,
          r->sha256);
}

/* True if path needs no upload: it was uploaded already (and is deleted
 * now if asked) or was refused for good earlier in this run. */
static bool already_handled(watcher *w, const char *path) {
  push_result r;
  int rc = push_done_lookup(w->p, path, &r);
  if (rc == 0) {
    if (w->o->delete_after_verify) delete_verified(w, path, &r);
    return true;
  }
  if (rc != CU_ENOTFOUND) {
    cu_warn("%s: %s", path, cu_errmsg());
    return false;
  }
  return has_failed(w, r.fingerprint);
}

/* ---- scanning ------------------------------------------------------------ */

static void scan_dir(watcher *w, const char *dir, int64_t now, int depth) {
  if (add_watch(w, dir)) {
    cu_warn("%s", cu_errmsg());
    if (depth == 0) return;
  }
  DIR *d = opendir(dir);
  if (!d) {
    cu_warn("cannot read %s: %s", dir, strerror(errno));
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    char *path = cu_xasprintf("%s/%s", dir, e->d_name);
    if (S_ISDIR(st.st_mode)) {
      scan_dir(w, path, now, depth + 1);
    } else if (S_ISREG(st.st_mode)) {
      cand *c = find_cand(w, path);
      if (c) {
        c->seen = true;
        if (c->size != st.st_size || c->mtime.tv_sec != st.st_mtim.tv_sec ||
            c->mtime.tv_nsec != st.st_mtim.tv_nsec) {
          c->size = st.st_size;
          c->mtime = st.st_mtim;
          c->since_us = now;
          c->ready = false; /* written to again: wait for it to settle */
        } else if (!c->ready && now - c->since_us >= (int64_t)w->o->settle_s * 1000000) {
          c->ready = true;
        }
      } else if (!already_handled(w, path)) {
        add_cand(w, path, &st, now)->seen = true;
      }
    }
    free(path);
  }
  closedir(d);
}

static void rescan(watcher *w) {
  int64_t now = cu_mono_us();
  for (size_t i = 0; i < w->nc; i++)
    w->c[i].seen = false;
  scan_dir(w, w->o->dir, now, 0);
  for (size_t i = 0; i < w->nc;) {
    if (!w->c[i].seen)
      drop_cand(w, &w->c[i]);
    else
      i++;
  }
  w->next_scan_us = now + (int64_t)w->o->settle_s * 1000000;
}

/* ---- events -------------------------------------------------------------- */

static void on_event(watcher *w, const struct inotify_event *ev) {
  if (ev->mask & IN_Q_OVERFLOW) {
    w->next_scan_us = 0;
    return;
  }
  if (ev->mask & IN_IGNORED) {
    for (size_t i = 0; i < w->ndirs; i++)
      if (w->dirs[i].wd == ev->wd) {
        drop_wd(w, i);
        break;
      }
    if (!w->ndirs) w->next_scan_us = 0; /* the folder itself went away */
    return;
  }
  const char *dir = dir_of_wd(w, ev->wd);
  if (!dir || !ev->len || ev->name[0] == '.' || ev->name[0] == '\0') return;
  char *path = cu_xasprintf("%s/%s", dir, ev->name);
  if (ev->mask & IN_ISDIR) {
    if (ev->mask & (IN_MOVED_FROM | IN_DELETE)) unwatch_tree(w, path);
    if (ev->mask & (IN_CREATE | IN_MOVED_TO)) w->next_scan_us = 0; /* watch it, look inside */
  } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
    cand *c = find_cand(w, path);
    if (c) drop_cand(w, c);
  } else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      cand *c = find_cand(w, path);
      if (!c && !already_handled(w, path)) c = add_cand(w, path, &st, cu_mono_us());
      if (c) {
        c->size = st.st_size;
        c->mtime = st.st_mtim;
        c->ready = true;
      }
    }
  }
  free(path);
}

static void read_events(watcher *w) {
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    ssize_t n = read(w->ifd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* EAGAIN: drained */
    for (char *q = buf; q < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)q;
      on_event(w, ev);
      q += sizeof *ev + ev->len;
    }
  }
}

/* ---- uploading ----------------------------------------------------------- */

static void upload_one(watcher *w, cand *c) {
  char *path = cu_xstrdup(c->path);
  struct stat st;
  if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
    drop_cand(w, c);
    goto done;
  }
  if (already_handled(w, path)) {
    drop_cand(w, c);
    goto done;
  }
  push_result r;
  int rc = push_file(w->p, path, &r);
  c = find_cand(w, path); /* the array did not move, but be plain about it */
  if (r.stopped) goto done;
  if (rc == 0) {
    if (w->o->uploaded) w->o->uploaded(w->o->ud, path, &r);
    if (c) drop_cand(w, c);
    if (w->o->delete_after_verify) {
      push_result now;
      /* The marker is found only if the file is still exactly as sent. */
      if (push_done_lookup(w->p, path, &now) == 0 && !strcmp(now.evidence_id, r.evidence_id))
        delete_verified(w, path, &now);
      else
        cu_warn("%s: not deleted: it changed after it was uploaded as %s", path, r.evidence_id);
    }
  } else if (push_error_is_transient(rc)) {
    cu_warn("%s: %s; trying again later", path, cu_errmsg());
    if (c) {
      c->ready = false;
      c->since_us = cu_mono_us();
    }
  } else {
    cu_err("%s: not uploaded: %s", path, cu_errmsg());
    mark_failed(w, r.fingerprint);
    if (c) drop_cand(w, c);
  }
done:
  free(path);
}

int watch_run(push_client *p, const watch_opts *o) {
  watcher w = {.p = p, .o = o, .ifd = -1};
  int rc = 0;
  struct stat st;
  if (stat(o->dir, &st) < 0) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot watch %s", o->dir);
    goto done;
  }
  if (!S_ISDIR(st.st_mode)) {
    rc = cu_error(CU_EINVAL, "%s is not a directory", o->dir);
    goto done;
  }
  w.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w.ifd < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot start inotify");
    goto done;
  }
  if ((rc = add_watch(&w, o->dir))) goto done;
  cu_info("watching %s (settle %d s%s)", o->dir, o->settle_s,
          o->delete_after_verify ? ", deleting files once verified" : "");
  rescan(&w);
  while (!stopping(&w)) {
    cand *ready = NULL;
    for (size_t i = 0; i < w.nc && !ready; i++)
      if (w.c[i].ready) ready = &w.c[i];
    if (ready) {
      upload_one(&w, ready);
      read_events(&w);
    } else {
      int64_t now = cu_mono_us();
      if (now >= w.next_scan_us) {
        rescan(&w);
        continue;
      }
      int64_t ms = (w.next_scan_us - now + 999) / 1000;
      if (ms > WATCH_POLL_MAX_MS) ms = WATCH_POLL_MAX_MS;
      struct pollfd pfd = {w.ifd, POLLIN, 0};
      if (poll(&pfd, 1, (int)ms) > 0) read_events(&w);
    }
  }
  cu_info("stopping: %s is no longer watched", o->dir);
done:
  if (w.ifd >= 0) close(w.ifd);
  for (size_t i = 0; i < w.ndirs; i++)
    free(w.dirs[i].path);
  for (size_t i = 0; i < w.nc; i++)
    free(w.c[i].path);
  free(w.dirs);
  free(w.c);
  free(w.failed);
  return rc;
}
