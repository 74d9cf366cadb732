#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "err.h"
#include "id.h"
#include "banned.h"

int cu_write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return cu_error_errno(cu_errno_code(errno), errno, "write failed");
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int cu_pwrite_all(int fd, const void *buf, size_t n, off_t off) {
  const char *p = buf;
  while (n) {
    ssize_t w = pwrite(fd, p, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return cu_error_errno(cu_errno_code(errno), errno, "write failed");
    if (w == 0) return cu_error(CU_ENOSPC, "write made no progress");
    p += w;
    off += w;
    n -= (size_t)w;
  }
  return 0;
}

int cu_fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return cu_error_errno(CU_EIO, errno, "cannot open directory %s", dir);
  int rc = 0;
  if (fsync(fd) < 0) rc = cu_error_errno(CU_EIO, errno, "cannot fsync directory %s", dir);
  close(fd);
  return rc;
}

int cu_mkdirs(const char *path, mode_t mode) {
  char *p = cu_xstrdup(path);
  int rc = 0;
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char c = *s;
    *s = '\0';
    if (mkdir(p, mode) == 0) {
      /* The new directory's name lives in its parent: make it durable. */
      char *slash = strrchr(p, '/');
      if (slash && slash != p) {
        *slash = '\0';
        rc = cu_fsync_dir(p);
        *slash = '/';
      } else {
        rc = cu_fsync_dir(slash == p ? "/" : ".");
      }
      if (rc) break;
    } else if (errno != EEXIST) {
      rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create directory %s", p);
      break;
    }
    *s = c;
    if (!c) break;
  }
  free(p);
  return rc;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return cu_xstrdup(".");
  if (slash == path) return cu_xstrdup("/");
  return cu_xstrndup(path, (size_t)(slash - path));
}

int cu_write_file_durable(const char *path, const void *data, size_t n, mode_t mode,
                          int exclusive) {
  char id[CU_ID_LEN + 1];
  cu_id_new(id);
  char *tmp = cu_xasprintf("%s.tmp-%s", path, id);
  char *dir = dir_of(path);
  int fd = -1, rc = 0;
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create %s", tmp);
    goto done;
  }
  if ((rc = cu_write_all(fd, data, n))) goto fail;
  if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot sync %s", tmp);
    goto fail;
  }
  close(fd);
  fd = -1;
  if (exclusive) {
    /* link() fails if the target exists, where rename() would replace it. */
    if (link(tmp, path) < 0) {
      rc = errno == EEXIST ? cu_error(CU_EEXISTS, "%s already exists", path)
                           : cu_error_errno(CU_EIO, errno, "cannot link %s", path);
      goto fail;
    }
    unlink(tmp);
  } else if (rename(tmp, path) < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot rename to %s", path);
    goto fail;
  }
  rc = cu_fsync_dir(dir);
  goto done;
fail:
  if (fd >= 0) close(fd);
  unlink(tmp);
done:
  free(tmp);
  free(dir);
  return rc;
}

int cu_read_small_fd(int fd, const char *name, size_t max, cu_buf *out) {
  int rc = 0;
  char chunk[8192];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = cu_error_errno(CU_EIO, errno, "cannot read %s", name);
      break;
    }
    if (n == 0) break;
    if (out->len + (size_t)n > max) {
      rc = cu_error(CU_ETOOBIG, "%s is larger than %zu bytes", name, max);
      break;
    }
    if ((rc = cu_buf_add(out, chunk, (size_t)n))) break;
  }
  close(fd);
  if (!rc && !out->data) cu_buf_add(out, "", 0);
  return rc;
}

int cu_read_small_file(const char *path, size_t max, cu_buf *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cu_error_errno(cu_errno_code(errno), errno, "cannot open %s", path);
  return cu_read_small_fd(fd, path, max, out);
}

int cu_fs_free_bytes(const char *path, int64_t *out) {
  struct statvfs st;
  if (statvfs(path, &st) < 0) return cu_error_errno(CU_EIO, errno, "cannot statvfs %s", path);
  *out = (int64_t)st.f_bavail * (int64_t)st.f_frsize;
  return 0;
}

char *cu_path_join(const char *dir, const char *name) { return cu_xasprintf("%s/%s", dir, name); }
