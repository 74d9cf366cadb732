/* Helpers shared by the media unit tests: fixtures made with the ffmpeg CLI
 * in a temporary directory (tmpdir, set by the test's group setup), tools
 * run without a shell, files read and damaged reproducibly. Header-only, for
 * test programs. */
#ifndef MEDIA_FIXTURE_H
#define MEDIA_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "json.h"
#include "test_util.h"

extern char **environ;

static char tmpdir[1024]; /* leaves room for a name in a PATH_MAX buffer */

/* tmpdir/name in a rotating set of buffers, so a few can be live at once. */
static inline const char *fx(const char *name) {
  static char bufs[32][PATH_MAX];
  static unsigned next;
  char *b = bufs[next++ % 32];
  snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
  return b;
}

/* Runs argv (argv[0] looked up in PATH). With out, stdout (and stderr when
 * both is set) is collected into a NUL-terminated *out the caller frees.
 * Returns the exit status, or -1 if it did not run or exit. */
static inline int run(const char *const *argv, char **out, bool both) {
  posix_spawn_file_actions_t fa;
  int pipefd[2] = {-1, -1}, devnull = -1, status;
  pid_t pid;
  posix_spawn_file_actions_init(&fa);
  if (out) {
    *out = NULL;
    if (pipe(pipefd) != 0) return -1;
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    if (both) posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, pipefd[1]);
  }
  devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull >= 0) posix_spawn_file_actions_adddup2(&fa, devnull, 0);
  int err = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (devnull >= 0) close(devnull);
  if (out) close(pipefd[1]);
  if (err != 0) {
    if (out) close(pipefd[0]);
    return -1;
  }
  if (out) {
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    for (;;) {
      if (b && len + 1 == cap) {
        char *nb = realloc(b, cap * 2);
        if (!nb) free(b);
        b = nb, cap *= 2;
      }
      ssize_t r = b ? read(pipefd[0], b + len, cap - len - 1) : -1;
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      len += (size_t)r;
    }
    close(pipefd[0]);
    if (b) b[len] = '\0';
    *out = b;
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ffmpeg with the given arguments (NULL-terminated), quiet, never asking. */
static inline int ffmpeg(const char *first, ...) {
  const char *argv[128] = {"ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error"};
  size_t n = 6;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a; a = va_arg(ap, const char *)) {
    if (n + 2 > sizeof argv / sizeof *argv) {
      va_end(ap);
      return -1;
    }
    argv[n++] = a;
  }
  va_end(ap);
  argv[n] = NULL;
  return run(argv, NULL, false);
}

/* ffprobe -v error -of json ARGS... FILE, parsed. NULL on failure. */
static inline json_t *ffprobe_json(const char *file, const char *first, ...) {
  const char *argv[64] = {"ffprobe", "-v", "error", "-of", "json"};
  size_t n = 5;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && n + 3 < sizeof argv / sizeof *argv; a = va_arg(ap, const char *))
    argv[n++] = a;
  va_end(ap);
  argv[n++] = file;
  argv[n] = NULL;
  char *out = NULL;
  json_t *j = NULL;
  if (run(argv, &out, false) == 0 && out) j = json_loads(out, 0, NULL);
  free(out);
  return j;
}

static inline char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 65536, n = 0;
  char *b = malloc(cap + 1);
  while (b) {
    size_t r = fread(b + n, 1, cap - n, f);
    n += r;
    if (n < cap) break;
    char *nb = realloc(b, cap * 2 + 1);
    if (!nb) free(b);
    b = nb, cap *= 2;
  }
  fclose(f);
  if (b) b[n] = '\0';
  if (len) *len = n;
  return b;
}

static inline int write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  if (n && fwrite(data, 1, n, f) != n) {
    fclose(f);
    return -1;
  }
  return fclose(f) == 0 ? 0 : -1;
}

/* Copies the first pct percent of src's bytes to dst. */
static inline int copy_prefix(const char *src, const char *dst, int pct) {
  size_t n;
  char *data = read_all(src, &n);
  if (!data) return -1;
  int rc = write_bytes(dst, data, n * (size_t)pct / 100);
  free(data);
  return rc;
}

/* ffmpeg with args (NULL-terminated, without the program name): 0 when it
 * exited 0. */
static inline int run_ffmpeg(const char *const *args) {
  const char *argv[1024] = {"ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error"};
  size_t n = 6;
  for (; *args; args++) {
    if (n + 2 > sizeof argv / sizeof *argv) return -1;
    argv[n++] = *args;
  }
  argv[n] = NULL;
  return run(argv, NULL, false) == 0 ? 0 : -1;
}

/* The group's setup: a fresh tmpdir named prefix-XXXXXX under
 * $CUSTOS_TEST_TMP (else /tmp), filled by make(); removed again if that
 * fails (cmocka calls no teardown when setup fails). */
static inline int media_fixture_teardown(void) {
  if (tmpdir[0] && test_rmtree(tmpdir) != 0) return -1;
  return 0;
}

static inline int media_fixture_setup(const char *prefix, int (*make)(void)) {
  const char *base = getenv("CUSTOS_TEST_TMP");
  if (!base || !*base) base = "/tmp";
  mkdir(base, 0700); /* ctest's directory may not exist yet */
  snprintf(tmpdir, sizeof tmpdir, "%s/%s-XXXXXX", base, prefix);
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "cannot make a temporary directory under %s: %s\n", base, strerror(errno));
    tmpdir[0] = '\0';
    return -1;
  }
  if (make()) {
    fprintf(stderr, "cannot make the media fixtures in %s (is ffmpeg installed?)\n", tmpdir);
    media_fixture_teardown();
    return -1;
  }
  return 0;
}

/* A JSON member that must be there (the test fails if not). For test
 * programs that include cmocka.h first. */
static inline const char *str(const json_t *obj, const char *key) {
  const char *s = cu_json_str(obj, key);
  if (!s) fail_msg("no string \"%s\"", key);
  return s;
}

static inline json_int_t num(const json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v)) fail_msg("no integer \"%s\"", key);
  return json_integer_value(v);
}

static inline double real(const json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_real(v)) fail_msg("no real \"%s\"", key);
  return json_real_value(v);
}

/* ---- checks on outputs, shared by the media tests ---- */

/* ffprobe writes numbers as strings ("2.000000"). */
static inline double snum(const json_t *obj, const char *key) {
  const char *s = str(obj, key);
  char *end;
  double d = strtod(s, &end);
  if (end == s) fail_msg("\"%s\" is not a number: %s", key, s);
  return d;
}

/* The top-level boxes of an MP4 in order, "ftyp moov mdat "; brand gets
 * ftyp's major brand. */
static inline void top_boxes(const char *path, char *out, size_t outsz, char brand[5]) {
  size_t n = 0, off = 0, used = 0;
  unsigned char *d = (unsigned char *)read_all(path, &n);
  if (!d) fail_msg("cannot read %s", path);
  out[0] = '\0';
  brand[0] = '\0';
  while (off + 8 <= n) {
    uint64_t size = (uint64_t)d[off] << 24 | (uint64_t)d[off + 1] << 16 |
                    (uint64_t)d[off + 2] << 8 | d[off + 3];
    size_t hdr = 8;
    if (size == 1) {
      if (off + 16 > n) break;
      size = 0;
      for (int i = 0; i < 8; i++)
        size = size << 8 | d[off + 8 + i];
      hdr = 16;
    } else if (size == 0) {
      size = n - off;
    }
    if (size < hdr || size > n - off) fail_msg("%s: the box at %zu has a bad size", path, off);
    if (!memcmp(d + off + 4, "ftyp", 4) && off + 12 <= n) {
      memcpy(brand, d + off + 8, 4);
      brand[4] = '\0';
    }
    if (used + 6 < outsz) {
      memcpy(out + used, d + off + 4, 4);
      out[used + 4] = ' ';
      out[used + 5] = '\0';
      used += 5;
    }
    off += (size_t)size;
  }
  if (off != n) fail_msg("%s: the boxes do not cover the file", path);
  free(d);
}

static inline void assert_faststart(const char *path, const char *want_brand) {
  char boxes[256], brand[5];
  top_boxes(path, boxes, sizeof boxes, brand);
  if (strncmp(boxes, "ftyp ", 5) != 0) fail_msg("%s does not start with ftyp: %s", path, boxes);
  const char *moov = strstr(boxes, "moov"), *mdat = strstr(boxes, "mdat");
  if (!moov || !mdat || moov > mdat) fail_msg("%s: moov is not before mdat: %s", path, boxes);
  if (want_brand) assert_string_equal(brand, want_brand);
}

/* ffmpeg decodes the whole file without a word at -v error. */
static inline void assert_decodes_clean(const char *path) {
  const char *argv[] = {"ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i",
                        path,     "-f",       "null",         "-",  NULL};
  char *out = NULL;
  int st = run(argv, &out, true);
  if (st != 0 || (out && out[0])) fail_msg("ffmpeg complains about %s: %s", path, out ? out : "");
  free(out);
}

/* The container's duration in seconds, as ffprobe reports it. */
static inline double duration_of(const char *path) {
  json_t *j = ffprobe_json(path, "-show_entries", "format=duration", NULL);
  if (!j) fail_msg("ffprobe cannot read %s", path);
  double d = snum(json_object_get(j, "format"), "duration");
  json_decref(j);
  return d;
}

/* Reproducible noise (a fixed-seed LCG), so a failure can be replayed. */
static inline void noise(unsigned char *b, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    b[i] = (unsigned char)(seed >> 24);
  }
}

/* cat a b > out */
static inline int cat2(const char *a, const char *b, const char *out) {
  size_t n1, n2;
  char *x = read_all(a, &n1), *y = read_all(b, &n2);
  FILE *f = fopen(out, "wb");
  int rc = 0;
  if (!x || !y || !f || fwrite(x, 1, n1, f) != n1 || fwrite(y, 1, n2, f) != n2) rc = -1;
  if (f && fclose(f) != 0) rc = -1;
  free(x);
  free(y);
  return rc;
}

/* Pictures an image demuxer reads: photo.jpg (one), stereo.jpg (an MPO-like
 * pair of one size), mpf.jpg (a picture and two smaller previews, as MPF
 * appends them) and photo.png, all photos; and camera.mjpeg and camera.png,
 * ten pictures of one size one after another as an IP camera streams them,
 * which are video. */
static inline int make_picture_fixtures(void) {
  int rc = ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", fx("photo.jpg"), NULL);
  rc |= ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120", "-frames:v", "1", fx("preview.jpg"), NULL);
  rc |= ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-frames:v", "10", "-f", "mjpeg",
               fx("camera.mjpeg"), NULL);
  rc |= ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120", "-frames:v", "1", fx("photo.png"), NULL);
  rc |= ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-frames:v", "10", "-c:v", "png",
               "-f", "image2pipe", fx("camera.png"), NULL);
  if (rc || cat2(fx("photo.jpg"), fx("photo.jpg"), fx("stereo.jpg")) ||
      cat2(fx("photo.jpg"), fx("preview.jpg"), fx("mpf2.jpg")) ||
      cat2(fx("mpf2.jpg"), fx("preview.jpg"), fx("mpf.jpg")))
    return -1;
  return 0;
}

#endif
