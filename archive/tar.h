/* Deterministic tar streams of a directory, and a strict extractor.
 *
 * Writing: the tar of a finished export bag is never built on disk. Its
 * layout (every entry's header offset, data offset and size, and the total
 * size) is computed from the directory alone, and any byte range of the
 * stream is produced on demand from the headers (generated) and the files
 * (pread). So a download can resume at any offset, and two layouts of the
 * same directory with the same name and time give the same bytes.
 *
 * The format is POSIX ustar (magic "ustar\0", version "00") with a PAX
 * extended header ('x') before an entry whose path does not fit ustar's
 * name/prefix fields or whose size does not fit 11 octal digits. Entries
 * are the directory itself and everything under it, depth first, each
 * directory before its contents, names sorted bytewise (what `tar
 * --sort=name` gives); directories end in '/'. Every entry has mode 0755
 * (directories) or 0644 (files), uid and gid 0 (uname and gname "root"),
 * and the same mtime. The stream ends with two zero blocks, nothing more.
 * Only regular files and directories may be in the tree; anything else
 * (a symlink, a device) makes the layout fail.
 *
 * Extracting: tar_extract reads a tar of one directory, ours or one made by
 * GNU tar from a bag (ustar, POSIX/PAX or GNU format), and refuses anything
 * else: an entry outside the one top-level directory, an absolute path, a
 * "." or ".." component, a link, a device, a FIFO, a sparse file, an unknown
 * PAX key, a bad header checksum, a truncated stream, a duplicate file. It
 * never follows a symlink (every directory is opened with O_NOFOLLOW
 * relative to its parent), never overwrites (files are created O_EXCL), and
 * the top-level directory must not exist yet. On failure what it created is
 * removed. */
#ifndef TAR_H
#define TAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TAR_BLOCK 512

typedef struct tar_layout tar_layout;

typedef struct {
  const char *path; /* as in the tar: prefix/relative path, '/' at the end for a directory */
  bool dir;
  uint64_t size;        /* file bytes; 0 for a directory */
  uint64_t offset;      /* of its first header block (the PAX header when there is one) */
  uint64_t data_offset; /* of its data (after its headers) */
} tar_entry;

/* Lays out the tar of directory dir, its entries named prefix/... (prefix:
 * one path component, no '/'), all with modification time mtime_s.
 * CU_EINVAL for a symlink or a special file in the tree, CU_EIO otherwise. */
int tar_layout_build(tar_layout **out, const char *dir, const char *prefix, int64_t mtime_s);
void tar_layout_free(tar_layout *l);
/* Total bytes of the stream. */
uint64_t tar_layout_size(const tar_layout *l);
size_t tar_layout_count(const tar_layout *l);
/* The i-th entry (borrowed strings, valid while l lives). */
void tar_layout_entry(const tar_layout *l, size_t i, tar_entry *out);

/* Copies up to n bytes of the stream from offset off into buf; returns the
 * count (0 at the end), or a negative error code: CU_ECORRUPT if a file
 * is no longer the size it had when laid out, CU_EIO. Keeps the last file
 * open between calls, so a layout serves one reader at a time. */
ssize_t tar_read(tar_layout *l, uint64_t off, void *buf, size_t n);
/* The whole stream to fd. */
int tar_write_all(tar_layout *l, int fd);

typedef struct {
  /* Called now and then with the bytes of the stream read so far. */
  void (*progress)(void *ud, uint64_t done);
  void *ud;
} tar_extract_opts;

/* Extracts the tar read from fd into dest_dir (which must exist), creating
 * dest_dir/<top>; *top (may be NULL; caller frees) is that directory's
 * name. CU_EINVAL for a stream it refuses (the message says which entry
 * and why), CU_EEXISTS if dest_dir/<top> exists, CU_EIO, CU_ENOSPC. */
int tar_extract(int fd, const char *dest_dir, const tar_extract_opts *opts, char **top);
/* The same, from a file. */
int tar_extract_file(const char *tar_path, const char *dest_dir, const tar_extract_opts *opts,
                     char **top);

#endif
