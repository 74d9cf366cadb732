/* File-system helpers that make durability explicit. */
#ifndef CU_FSUTIL_H
#define CU_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

/* write()/pwrite() until done; EINTR retried; CU_ENOSPC or CU_EIO. */
int cu_write_all(int fd, const void *buf, size_t n);
int cu_pwrite_all(int fd, const void *buf, size_t n, off_t off);
/* fsync a directory, so a rename or create in it survives a crash. */
int cu_fsync_dir(const char *dir);
/* mkdir -p; each directory created is made durable in its parent. */
int cu_mkdirs(const char *path, mode_t mode);
/* The safe-save sequence: write a temp file beside path, fsync, rename,
 * fsync the directory. With exclusive, fails CU_EEXISTS if path exists. */
int cu_write_file_durable(const char *path, const void *data, size_t n, mode_t mode,
                          int exclusive);
/* Reads a small file whole (at most max bytes, else CU_ETOOBIG). */
int cu_read_small_file(const char *path, size_t max, cu_buf *out);
/* The same from an open fd (closed here); name is for messages. */
int cu_read_small_fd(int fd, const char *name, size_t max, cu_buf *out);
/* Free bytes for unprivileged writers on the file system holding path. */
int cu_fs_free_bytes(const char *path, int64_t *out);
/* Joins a directory and a name that the caller has already validated. */
char *cu_path_join(const char *dir, const char *name);

#endif
