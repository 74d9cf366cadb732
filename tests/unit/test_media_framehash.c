/* media_framehash against small files made by the ffmpeg CLI at test time,
 * in a temporary directory under $CUSTOS_TEST_TMP (else /tmp) removed at the
 * end. The promise under test: our file is byte for byte what
 *
 *   ffmpeg -v error -i IN -map 0:V? -map 0:a? -f framehash -hash sha256 OUT
 *
 * writes on the same machine, and the report describes that file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "framehash.h"
#include "hash.h"
#include "hex.h"
#include "json.h"
#include "timeu.h"
#include "media_fixture.h"
#include "banned.h"

/* Overwrites n bytes at off with noise, as dd conv=notrunc would. */
static int damage(const char *path, long off, size_t n) {
  unsigned char *b = malloc(n);
  FILE *f = fopen(path, "r+b");
  int rc = -1;
  if (b && f && fseek(f, off, SEEK_SET) == 0) {
    noise(b, n, 12345);
    rc = fwrite(b, 1, n, f) == n ? 0 : -1;
  }
  if (f && fclose(f) != 0) rc = -1;
  free(b);
  return rc;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}


#define LAVFI_V(spec) "-f", "lavfi", "-i", spec
#define X264 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"

static int make_fixtures(void) {
  static unsigned char rnd[65536];
  int rc = 0;
  /* H.264 + AAC in MP4 at 30000/1001 fps (moov at the end). */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=30000/1001:duration=1"),
               LAVFI_V("sine=frequency=440:sample_rate=48000:duration=1"), X264, "-c:a", "aac",
               "-ac", "2", fx("ntsc.mp4"), NULL);
  /* Variable frame rate: every fourth frame dropped, every third moved by
   * 21 ms, timestamps kept as they are. */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=30:duration=1"), "-vf",
               "select='not(eq(mod(n\\,4)\\,1))',settb=1/1000,setpts='PTS+eq(mod(N\\,3)\\,0)*21'",
               "-fps_mode", "vfr", X264, fx("vfr.mp4"), NULL);
  /* Bursts: frames 7, 8 and 9 of every ten 2 ms apart, kept as they are
   * (millisecond encoder time base). Some land on ticks already used, which
   * the command line's vfr logic drops. */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=30:duration=1"), "-vf",
               "settb=1/1000,setpts=if(gte(mod(N\\,10)\\,7)\\,(N-mod(N\\,10)+7)*33+(mod(N\\,10)-7)*2\\,N*33)",
               "-fps_mode", "passthrough", "-enc_time_base", "1/1000", X264, fx("vfr_bursts.mkv"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"),
               LAVFI_V("sine=sample_rate=44100:duration=1"), "-c:v", "mjpeg", "-pix_fmt", "yuvj420p",
               "-c:a", "pcm_s16le", fx("mjpeg.avi"), NULL);
  rc |= ffmpeg(LAVFI_V("sine=sample_rate=48000:duration=1"), "-ac", "2", "-c:a", "pcm_s24le",
               fx("s24.wav"), NULL);
  rc |= ffmpeg(LAVFI_V("sine=frequency=300:sample_rate=8000:duration=1"), "-c:a", "pcm_s16le",
               fx("s16.wav"), NULL);
  rc |= ffmpeg(LAVFI_V("sine=frequency=300:sample_rate=44100:duration=1"), "-ac", "2", "-c:a",
               "pcm_s16le", fx("s16_stereo.wav"), NULL);
  /* A decoder that names no channel layout (VoIP recordings in Speex). */
  rc |= ffmpeg(LAVFI_V("sine=frequency=300:sample_rate=8000:duration=1"), "-c:a", "libspeex",
               fx("speex.ogg"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"),
               LAVFI_V("sine=sample_rate=48000:duration=1"), "-c:v", "mpeg2video", "-c:a", "mp2",
               fx("mpeg2.ts"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"),
               LAVFI_V("sine=sample_rate=48000:duration=1"), "-c:v", "mpeg2video", "-c:a", "mp2",
               "-output_ts_offset", "1000", fx("mpeg2_late.ts"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=30:duration=1"),
               LAVFI_V("sine=sample_rate=48000:duration=1"), "-map", "1:a", "-map", "0:v", X264,
               "-c:a", "aac", fx("audio_first.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"), "-c:v", "libx265", "-preset",
               "ultrafast", "-x265-params", "log-level=error", fx("hevc.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"),
               LAVFI_V("sine=sample_rate=48000:duration=1"), "-c:v", "ffv1", "-c:a", "flac",
               fx("ffv1_flac.mkv"), NULL);
  /* Audio with a cover picture marked attached_pic (MP3 + PNG, M4A + JPEG). */
  rc |= ffmpeg(LAVFI_V("testsrc=size=64x64:rate=25:duration=1"), "-frames:v", "1", fx("cover.png"),
               NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=64x64:rate=25:duration=1"), "-frames:v", "1", fx("cover.jpg"),
               NULL);
  rc |= ffmpeg(LAVFI_V("sine=sample_rate=44100:duration=1"), "-i", fx("cover.png"), "-map", "0",
               "-map", "1", "-c:a", "libmp3lame", "-c:v", "png", "-disposition:v", "attached_pic",
               fx("cover.mp3"), NULL);
  rc |= ffmpeg(LAVFI_V("sine=sample_rate=44100:duration=1"), "-i", fx("cover.jpg"), "-map", "0",
               "-map", "1", "-c:a", "aac", "-c:v", "copy", "-disposition:v", "attached_pic",
               fx("cover.m4a"), NULL);
  /* Sample aspect ratio unknown (0/1) and 4:3. */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"), "-vf", "setsar=0", X264,
               fx("sar_unknown.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"), "-vf", "setsar=4/3", X264,
               fx("sar_4_3.mp4"), NULL);
  /* 3 s of H.264 in MPEG-TS, no B-frames, a keyframe a second; damaged by
   * the test itself. */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=3"), X264, "-bf", "0", "-g", "25",
               fx("clean3s.ts"), NULL);
  /* A CCTV-style export: WMV2 + WMA2 (44.1 kHz) in ASF. */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"),
               LAVFI_V("sine=sample_rate=44100:duration=1"), "-c:v", "wmv2", "-c:a", "wmav2",
               fx("cctv.wmv"), NULL);
  /* Mid-stream changes: MPEG-TS recordings cut together (cat), the second
   * part at another resolution, or with another channel count. */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"), "-c:v", "mpeg2video",
               fx("res_small.ts"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=640x480:rate=25:duration=1"), "-c:v", "mpeg2video",
               "-output_ts_offset", "1", fx("res_big.ts"), NULL);
  rc |= ffmpeg(LAVFI_V("sine=sample_rate=48000:duration=1"), "-ac", "1", "-c:a", "mp2",
               fx("a_mono.ts"), NULL);
  rc |= ffmpeg(LAVFI_V("sine=sample_rate=48000:duration=1"), "-ac", "2", "-c:a", "mp2",
               "-output_ts_offset", "1", fx("a_stereo.ts"), NULL);
  /* Several closed GOPs, for the decode in segments (mdecode_par.c): with
   * B-frames (reordered output), without, HEVC with IDR pictures, and three
   * that must fall back to one pass or keep one segment: open GOPs (the
   * later keyframes are not IDR) in H.264 and HEVC, and a frame rate that
   * changes after 2 s. */
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=30000/1001:duration=6"),
               LAVFI_V("sine=sample_rate=48000:duration=6"), "-c:v", "libx264", "-preset", "veryfast",
               "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac", fx("gops_bf.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=25:duration=4"), X264, "-g", "25", fx("gops.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=25:duration=4"), "-c:v", "libx265", "-preset",
               "ultrafast", "-x265-params", "log-level=error:keyint=25:min-keyint=25:open-gop=0",
               fx("gops_hevc.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=25:duration=4"), "-c:v", "libx265", "-preset",
               "ultrafast", "-x265-params", "log-level=error:keyint=25:min-keyint=25:open-gop=1",
               fx("gops_hevc_open.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=25:duration=4"), "-c:v", "libx264", "-preset",
               "veryfast", "-pix_fmt", "yuv420p", "-x264-params", "keyint=25:min-keyint=25:open-gop=1",
               fx("gops_open.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=25:duration=4"), "-vf",
               "select='lt(n\\,50)+not(mod(n\\,3))'", "-fps_mode", "vfr", X264, "-g", "25",
               fx("gops_vfr_late.mp4"), NULL);
  /* Raw elementary streams, as CCTV recorders export them (.h264, .hevc):
   * no container, so no timestamps at all; with B-frames and without. */
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=30:duration=3"), "-c:v", "libx264", "-preset", "veryfast",
               "-pix_fmt", "yuv420p", "-g", "30", "-f", "h264", fx("raw_bf.h264"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=30:duration=3"), X264, "-bf", "0", "-g", "30",
               "-f", "h264", fx("raw.h264"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=25:duration=2"), "-c:v", "libx265", "-preset",
               "ultrafast", "-x265-params", "log-level=error:bframes=3", "-f", "hevc", fx("raw.hevc"), NULL);
  if (rc) return -1;
  if (cat2(fx("res_small.ts"), fx("res_big.ts"), fx("res_change.ts")) ||
      cat2(fx("a_mono.ts"), fx("a_stereo.ts"), fx("mono_then_stereo.ts")) ||
      cat2(fx("a_stereo.ts"), fx("a_mono.ts"), fx("stereo_then_mono.ts")))
    return -1;

  /* Two MPEG-TS files one after the other: the timeline jumps by 1000 s. */
  if (cat2(fx("mpeg2.ts"), fx("mpeg2_late.ts"), fx("discont.ts"))) rc = -1;
  /* Written without faststart, so moov is at the end, past the 60%. */
  if (copy_prefix(fx("ntsc.mp4"), fx("no_moov.mp4"), 60)) rc = -1;
  if (write_bytes(fx("empty.bin"), "", 0)) rc = -1;
  noise(rnd, sizeof rnd, 777);
  if (write_bytes(fx("random.bin"), rnd, sizeof rnd)) rc = -1;
  return rc;
}

static void free_pending(void);

static int group_teardown(void **state) {
  free_pending();
  return media_fixture_teardown();
}

static int group_setup(void **state) { return media_fixture_setup("custos-framehash", make_fixtures); }

/* ---- reading a framehash file ----------------------------------------- */

typedef struct {
  int stream;
  long long dts, pts, duration, size;
  char hash[65];
} fh_row;

/* The data lines of a framehash file; *nrows set. Caller frees. */
static fh_row *rows_of(const char *text, size_t *nrows) {
  size_t cap = 64, n = 0;
  fh_row *r = malloc(cap * sizeof *r);
  for (const char *p = text; r && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
    if (*p == '#' || *p == '\n') continue;
    if (n == cap) {
      fh_row *nr = realloc(r, cap * 2 * sizeof *r);
      if (!nr) break;
      r = nr, cap *= 2;
    }
    fh_row *x = &r[n];
    if (sscanf(p, "%d, %lld, %lld, %lld, %lld, %64s", &x->stream, &x->dts, &x->pts, &x->duration,
               &x->size, x->hash) == 6)
      n++;
  }
  *nrows = n;
  return r;
}

/* Header line "#<key> <stream>: value" -> value (in buf), or NULL. */
static const char *header_value(const char *text, const char *key, int stream, char *buf, size_t n) {
  char pat[64];
  snprintf(pat, sizeof pat, "#%s %d: ", key, stream);
  const char *p = strstr(text, pat);
  if (!p) return NULL;
  p += strlen(pat);
  size_t len = strcspn(p, "\n");
  if (len >= n) len = n - 1;
  memcpy(buf, p, len);
  buf[len] = '\0';
  return buf;
}

static int count_lines(const char *text, const char *prefix) {
  int c = 0;
  size_t k = strlen(prefix);
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (!strncmp(p, prefix, k)) c++;
  return c;
}

/* Fails naming the first line where the two texts differ. */
static void assert_same_text(const char *ours, size_t nours, const char *ref, size_t nref,
                             const char *what) {
  if (nours == nref && !memcmp(ours, ref, nours)) return;
  size_t i = 0, line = 1, start = 0;
  while (i < nours && i < nref && ours[i] == ref[i]) {
    if (ours[i] == '\n') line++, start = i + 1;
    i++;
  }
  int lo = (int)strcspn(ours + start, "\n"), lr = (int)strcspn(ref + start, "\n");
  fail_msg("%s: our framehash differs from ffmpeg's at line %zu (%zu vs %zu bytes):\n ours:   %.*s\n "
           "ffmpeg: %.*s",
           what, line, nours, nref, lo, ours + start, lr, ref + start);
}

/* ffprobe prints numbers as strings in JSON. */
static double jnum(const json_t *obj, const char *key) {
  const char *s = cu_json_str(obj, key);
  if (!s) fail_msg("ffprobe gave no \"%s\"", key);
  return strtod(s, NULL);
}

static void assert_decoded_clean(const json_t *rep, bool container_marks_allowed);

static void assert_no_decode_errors(const json_t *rep) { assert_decoded_clean(rep, false); }

/* No decoder complaint; container_marks_allowed: packets the demuxer itself
 * marks corrupt are allowed (two MPEG-TS files joined by cat break the
 * continuity counters, and ffmpeg says "Packet corrupt" there too). */
static void assert_decoded_clean(const json_t *rep, bool container_marks_allowed) {
  json_t *e = json_object_get(rep, "decode_errors");
  assert_true(json_is_object(e));
  assert_int_equal(num(e, "packets_failed"), 0);
  assert_int_equal(num(e, "frames_damaged"), 0);
  assert_int_equal(num(e, "read_errors"), 0);
  if (container_marks_allowed) return;
  assert_int_equal(cu_json_int(e, "packets_corrupt", 0), 0); /* newer reports have it */
  assert_true(json_is_array(json_object_get(e, "where")));
  assert_int_equal(json_array_size(json_object_get(e, "where")), 0);
}

/* ffprobe's decoded sample format of stream index of file, or "". */
static void sample_fmt_of(const char *file, int index, char *out, size_t n) {
  json_t *j = ffprobe_json(file, "-show_entries", "stream=index,sample_fmt", NULL), *s;
  size_t i;
  out[0] = '\0';
  json_array_foreach(json_object_get(j, "streams"), i, s) {
    if (cu_json_int(s, "index", -1) == index && cu_json_str(s, "sample_fmt"))
      snprintf(out, n, "%s", cu_json_str(s, "sample_fmt"));
  }
  json_decref(j);
}

typedef struct {
  char *ours, *ref;
  size_t nours, nref;
  fh_row *rows;
  size_t nrows;
  json_t *rep;
} fh_result;

static void fh_result_free(fh_result *r) {
  free(r->ours);
  free(r->ref);
  free(r->rows);
  json_decref(r->rep);
}

/* media_framehash on in, ffmpeg's framehash on in, the two compared byte for
 * byte, and the report checked against our file. */
/* media_framehash(in, out) in a child process, so that a crash fails one
 * test instead of ending the run. Returns its code; fails on a crash. The
 * child's report is not kept. */
static int framehash_in_child(const char *in, const char *out) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    /* cmocka catches these to go on with the next test: here a crash must
     * end this process, not run the rest of the suite in it. */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], SIG_DFL);
    json_t *rep = NULL;
    int rc = media_framehash(fx(in), out, NULL, &rep);
    json_decref(rep);
    _exit(100 - rc); /* 100 + our code: apart from a sanitizer's exit 1 */
  }
  assert_true(pid > 0);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) assert_int_equal(errno, EINTR);
  if (WIFSIGNALED(st)) fail_msg("media_framehash(%s) crashed: signal %d", in, WTERMSIG(st));
  if (!WIFEXITED(st) || WEXITSTATUS(st) < 100 || WEXITSTATUS(st) > 100 + 20)
    fail_msg("media_framehash(%s) crashed (exit %d: see the sanitizer's report above)", in,
             WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  return 100 - WEXITSTATUS(st);
}

/* The result of the last hash_both_ex, owned here: a failed assertion
 * (cmocka jumps out) leaves it to the next call or the teardown. */
static fh_result pending;

static fh_result *hash_both_ex(const char *in, const media_ctl *ctl, bool isolate) {
  fh_result_free(&pending);
  memset(&pending, 0, sizeof pending);
  fh_result *rp = &pending;
  char ours[PATH_MAX], ref[PATH_MAX], key[16];
  snprintf(ours, sizeof ours, "%s/%s.ours", tmpdir, in);
  snprintf(ref, sizeof ref, "%s/%s.ffmpeg", tmpdir, in);
  if (isolate) {
    int rc = framehash_in_child(in, ours);
    if (rc != 0) fail_msg("media_framehash(%s): %s", in, cu_errname(rc));
    /* The report, from a second run here, now that it is known not to crash. */
  }
  int rc = media_framehash(fx(in), ours, ctl, &rp->rep);
  if (rc != 0) fail_msg("media_framehash(%s): %s: %s", in, cu_errname(rc), cu_errmsg());
  assert_non_null(rp->rep);
  const char *argv[] = {"ffmpeg", "-nostdin", "-y", "-v", "error", "-i", fx(in), "-map", "0:V?",
                        "-map", "0:a?", "-f", "framehash", "-hash", "sha256", ref, NULL};
  assert_int_equal(run(argv, NULL, false), 0);
  rp->ours = read_all(ours, &rp->nours);
  rp->ref = read_all(ref, &rp->nref);
  assert_non_null(rp->ours);
  assert_non_null(rp->ref);
  assert_true(rp->nref > 0);
  assert_same_text(rp->ours, rp->nours, rp->ref, rp->nref, in);
  rp->rows = rows_of(rp->ours, &rp->nrows);
  assert_non_null(rp->rows);

  /* The report describes this file. */
  json_t *params = json_object_get(rp->rep, "params"), *streams = json_object_get(rp->rep, "streams"), *s;
  assert_string_equal(cu_json_str(params, "hash"), "sha256");
  assert_int_equal(num(params, "format_version"), 2);
  assert_non_null(strstr(cu_json_str(params, "command"), "-map 0:V? -map 0:a? -f framehash -hash sha256"));
  assert_true(json_is_array(streams));
  assert_int_equal((int)json_array_size(streams), count_lines(rp->ours, "#media_type "));
  json_t *audio = json_object_get(rp->rep, "audio_sha256");
  assert_true(json_is_object(audio));
  size_t i, naudio = 0;
  json_array_foreach(streams, i, s) {
    char buf[64];
    const char *type = cu_json_str(s, "type");
    assert_non_null(type);
    assert_non_null(header_value(rp->ours, "media_type", (int)i, buf, sizeof buf));
    assert_string_equal(type, buf);
    json_int_t lines = 0;
    for (size_t k = 0; k < rp->nrows; k++)
      if (rp->rows[k].stream == (int)i) lines++;
    if (num(s, "frames") != lines)
      fail_msg("%s: stream %zu: the report says %lld frames, the file has %lld lines", in, i,
               (long long)num(s, "frames"), (long long)lines);
    json_int_t index = num(s, "index");
    snprintf(key, sizeof key, "%lld", (long long)index);
    if (!strcmp(type, "audio")) {
      naudio++;
      const char *h = cu_json_str(audio, key);
      if (!h) fail_msg("%s: no audio_sha256 for stream %s", in, key);
      assert_true(cu_is_sha256_hex(h));
      /* Checkable by hand when the decoder gives signed 16-bit samples:
       * the stream's samples as ffmpeg writes them raw. */
      char fmt[32];
      sample_fmt_of(fx(in), (int)index, fmt, sizeof fmt);
      if (!strcmp(fmt, "s16") || !strcmp(fmt, "s16p")) {
        char map[32], raw[PATH_MAX], want[65];
        snprintf(map, sizeof map, "0:%lld", (long long)index);
        snprintf(raw, sizeof raw, "%s/%s.%lld.s16", tmpdir, in, (long long)index);
        assert_int_equal(ffmpeg("-i", fx(in), "-map", map, "-f", "s16le", raw, NULL), 0);
        assert_int_equal(cu_sha256_file(raw, want, NULL), 0);
        if (strcmp(h, want))
          fail_msg("%s: audio_sha256 of stream %s is %s; its s16le samples hash to %s", in, key, h, want);
      }
    }
  }
  assert_int_equal(json_object_size(audio), naudio);
  return rp;
}

static void free_pending(void) {
  fh_result_free(&pending);
  memset(&pending, 0, sizeof pending);
}

static fh_result *hash_both(const char *in, const media_ctl *ctl) { return hash_both_ex(in, ctl, false); }

/* ---- byte for byte the same as ffmpeg --------------------------------- */

typedef struct {
  int calls;
  double min, max;
} progress_seen;

static void on_progress(void *ud, double f) {
  progress_seen *p = ud;
  if (!p->calls || f < p->min) p->min = f;
  if (!p->calls || f > p->max) p->max = f;
  p->calls++;
}

static void test_media_framehash__h264_aac_mp4_ntsc_rate(void **state) {
  progress_seen seen = {0};
  media_ctl ctl = {.deadline_us = cu_mono_us() + 60LL * 1000000, .progress = on_progress,
                   .progress_ud = &seen};
  fh_result *r = hash_both("ntsc.mp4", &ctl);
  char buf[64];
  assert_string_equal(header_value(r->ours, "tb", 0, buf, sizeof buf), "1001/30000");
  assert_string_equal(header_value(r->ours, "media_type", 1, buf, sizeof buf), "audio");
  assert_int_equal(count_lines(r->ours, "0, "), 30);
  assert_no_decode_errors(r->rep);
  /* Progress was reported, within 0..1, and got most of the way. */
  assert_true(seen.calls > 0);
  assert_true(seen.min >= 0.0 && seen.max <= 1.0);
  assert_true(seen.max > 0.5);
  free_pending();
}

static void test_media_framehash__variable_frame_rate(void **state) {
  fh_result *r = hash_both("vfr.mp4", NULL);
  /* The fixture is what it claims: 22 of 30 frames, with gaps. */
  assert_int_equal(r->nrows, 22);
  bool gap = false;
  for (size_t i = 1; i < r->nrows; i++)
    if (r->rows[i].pts - r->rows[i - 1].pts > 1) gap = true;
  assert_true(gap);
  assert_no_decode_errors(r->rep);
  free_pending();

  r = hash_both("vfr_bursts.mkv", NULL);
  /* Frames on an already used tick are dropped, as ffmpeg does. */
  json_t *j = ffprobe_json(fx("vfr_bursts.mkv"), "-count_frames", "-select_streams", "v:0",
                           "-show_entries", "stream=nb_read_frames", NULL);
  const char *decoded = cu_json_str(json_array_get(json_object_get(j, "streams"), 0), "nb_read_frames");
  assert_non_null(decoded);
  assert_true((double)r->nrows < strtod(decoded, NULL));
  json_decref(j);
  free_pending();
}

static void test_media_framehash__mjpeg_pcm_avi(void **state) {
  fh_result *r = hash_both("mjpeg.avi", NULL);
  char buf[64];
  assert_string_equal(header_value(r->ours, "media_type", 0, buf, sizeof buf), "video");
  assert_string_equal(header_value(r->ours, "media_type", 1, buf, sizeof buf), "audio");
  assert_int_equal(count_lines(r->ours, "0, "), 25);
  assert_no_decode_errors(r->rep);
  free_pending();
}

static void test_media_framehash__pcm_wav(void **state) {
  char buf[64];
  fh_result *r = hash_both("s24.wav", NULL);
  assert_string_equal(header_value(r->ours, "channel_layout_name", 0, buf, sizeof buf), "stereo");
  assert_string_equal(header_value(r->ours, "sample_rate", 0, buf, sizeof buf), "48000");
  assert_no_decode_errors(r->rep);
  free_pending();
  /* s16: audio_sha256 is checked against ffmpeg's raw samples (hash_both). */
  r = hash_both("s16.wav", NULL);
  assert_string_equal(header_value(r->ours, "sample_rate", 0, buf, sizeof buf), "8000");
  assert_no_decode_errors(r->rep);
  free_pending();
  r = hash_both("s16_stereo.wav", NULL);
  assert_no_decode_errors(r->rep);
  free_pending();
  /* Plain WAVEFORMATEX names no layout: ffmpeg guesses one before the
   * decoder opens. The Speex decoder then sets none of its own, and ffmpeg
   * writes what the frames say. */
  r = hash_both("s16.wav", NULL);
  assert_string_equal(header_value(r->ours, "channel_layout_name", 0, buf, sizeof buf), "mono");
  free_pending();
  r = hash_both("speex.ogg", NULL);
  assert_string_equal(header_value(r->ours, "channel_layout_name", 0, buf, sizeof buf), "1 channels");
  assert_no_decode_errors(r->rep);
  free_pending();
}

static void test_media_framehash__mpeg2_mp2_ts(void **state) {
  fh_result *r = hash_both("mpeg2.ts", NULL);
  assert_int_equal(count_lines(r->ours, "0, "), 25);
  assert_no_decode_errors(r->rep);
  free_pending();
}

static void test_media_framehash__ts_discontinuity(void **state) {
  fh_result *r = hash_both("discont.ts", NULL);
  /* Both halves are there, on one timeline (no 1000 s gap in the ticks). */
  assert_int_equal(count_lines(r->ours, "0, "), 50);
  long long last = -1;
  for (size_t i = 0; i < r->nrows; i++)
    if (r->rows[i].stream == 0) {
      if (last >= 0) assert_true(r->rows[i].pts - last < 25 * 20);
      last = r->rows[i].pts;
    }
  assert_decoded_clean(r->rep, true);
  free_pending();
}

static void test_media_framehash__audio_first_mp4(void **state) {
  fh_result *r = hash_both("audio_first.mp4", NULL);
  /* -map 0:V? first: the video (file index 1) is output stream 0. */
  json_t *streams = json_object_get(r->rep, "streams");
  assert_int_equal(num(json_array_get(streams, 0), "index"), 1);
  assert_string_equal(cu_json_str(json_array_get(streams, 0), "type"), "video");
  assert_int_equal(num(json_array_get(streams, 1), "index"), 0);
  assert_non_null(cu_json_str(json_object_get(r->rep, "audio_sha256"), "0"));
  assert_no_decode_errors(r->rep);
  free_pending();
}

static void test_media_framehash__hevc_mp4(void **state) {
  fh_result *r = hash_both("hevc.mp4", NULL);
  assert_int_equal(count_lines(r->ours, "0, "), 25);
  assert_no_decode_errors(r->rep);
  free_pending();
}

/* ---- the decode in segments gives what one pass gives ---------------- */

static json_int_t segments(const json_t *rep) { return json_integer_value(json_object_get(rep, "video_segments")); }

static void test_media_framehash__segments_with_b_frames(void **state) {
  fh_result *r = hash_both("gops_bf.mp4", NULL);
  assert_int_equal(count_lines(r->ours, "0, "), 180);
  assert_no_decode_errors(r->rep);
  /* One segment per GOP (x264 may add a keyframe at a scene cut). */
  assert_true(segments(r->rep) >= 6);
  free_pending();
}

static void test_media_framehash__segments_without_b_frames(void **state) {
  fh_result *r = hash_both("gops.mp4", NULL);
  assert_int_equal(count_lines(r->ours, "0, "), 100);
  assert_int_equal(segments(r->rep), 4);
  free_pending();
}

static void test_media_framehash__segments_hevc(void **state) {
  fh_result *r = hash_both("gops_hevc.mp4", NULL);
  assert_int_equal(count_lines(r->ours, "0, "), 100);
  assert_int_equal(segments(r->rep), 4);
  free_pending();
}

static void test_media_framehash__segments_without_an_index(void **state) {
  /* MPEG-TS has no index: the IDR pictures (with their parameter sets in
   * the stream) are found as the file is read. */
  fh_result *r = hash_both("clean3s.ts", NULL);
  assert_int_equal(count_lines(r->ours, "0, "), 75);
  assert_int_equal(segments(r->rep), 3);
  free_pending();
}

static void test_media_framehash__open_gops_are_not_cut(void **state) {
  /* Keyframes that are not IDR pictures (recovery points, CRA) may be
   * followed by pictures that refer to the GOP before: no cut there. */
  fh_result *r = hash_both("gops_open.mp4", NULL);
  assert_int_equal(count_lines(r->ours, "0, "), 100);
  assert_true(segments(r->rep) <= 1);
  free_pending();
  r = hash_both("gops_hevc_open.mp4", NULL);
  assert_int_equal(count_lines(r->ours, "0, "), 100);
  assert_true(segments(r->rep) <= 1);
  free_pending();
}

static void test_media_framehash__rate_change_falls_back_to_one_pass(void **state) {
  /* Two GOPs go out in segments before the packets start to last longer:
   * the whole file is then hashed again in one pass, and the text written
   * so far is replaced, not appended to. */
  fh_result *r = hash_both("gops_vfr_late.mp4", NULL);
  assert_int_equal(count_lines(r->ours, "0, "), 67);
  assert_null(json_object_get(r->rep, "video_segments"));
  free_pending();
}

static void test_media_framehash__raw_streams_without_timestamps(void **state) {
  /* Every frame has its line, placed as ffmpeg places a packet that has no
   * timestamp: on its own clock, one reorder delay before 0, a frame a
   * packet, and at the end from the clock of each drain call. */
  static const struct {
    const char *file;
    int frames;
  } raw[] = {{"raw_bf.h264", 90}, {"raw.h264", 90}, {"raw.hevc", 50}};
  for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
    progress_seen seen = {0};
    media_ctl ctl = {.deadline_us = cu_mono_us() + 60LL * 1000000, .progress = on_progress,
                     .progress_ud = &seen};
    fh_result *r = hash_both(raw[i].file, &ctl);
    assert_int_equal(count_lines(r->ours, "0, "), raw[i].frames);
    assert_int_equal(r->rows[0].pts, 0);
    assert_int_equal(r->rows[r->nrows - 1].pts, raw[i].frames - 1);
    assert_no_decode_errors(r->rep);
    /* No duration and no times: the progress is the share of bytes read. */
    assert_true(seen.calls > 0);
    assert_true(seen.min >= 0.0 && seen.max <= 1.0);
    assert_true(seen.max > 0.5);
    free_pending();
  }
}

static void test_media_framehash__ffv1_flac_mkv(void **state) {
  fh_result *r = hash_both("ffv1_flac.mkv", NULL); /* FLAC decodes to s16: checked by hand */
  assert_int_equal(count_lines(r->ours, "0, "), 25);
  assert_no_decode_errors(r->rep);
  free_pending();
}

static void assert_cover_left_out(const char *name) {
  /* The fixture has the picture... */
  json_t *j = ffprobe_json(fx(name), "-show_entries", "stream=index,codec_type:stream_disposition=attached_pic", NULL);
  json_t *st = json_object_get(j, "streams");
  assert_int_equal(json_array_size(st), 2);
  assert_int_equal(cu_json_int(json_object_get(json_array_get(st, 1), "disposition"), "attached_pic", 0), 1);
  json_decref(j);
  /* ...and neither file nor report shows it. */
  fh_result *r = hash_both(name, NULL);
  assert_int_equal(count_lines(r->ours, "#media_type "), 1);
  assert_int_equal(count_lines(r->ours, "#media_type 0: audio"), 1);
  json_t *streams = json_object_get(r->rep, "streams");
  assert_int_equal(json_array_size(streams), 1);
  assert_int_equal(num(json_array_get(streams, 0), "index"), 0);
  for (size_t i = 0; i < r->nrows; i++) assert_int_equal(r->rows[i].stream, 0);
  assert_no_decode_errors(r->rep);
  free_pending();
}

static void test_media_framehash__cover_picture_left_out(void **state) {
  assert_cover_left_out("cover.mp3");
  assert_cover_left_out("cover.m4a");
}

static void test_media_framehash__sample_aspect_ratio(void **state) {
  char buf[64];
  fh_result *r = hash_both("sar_unknown.mp4", NULL);
  assert_string_equal(header_value(r->ours, "sar", 0, buf, sizeof buf), "0/1");
  free_pending();
  r = hash_both("sar_4_3.mp4", NULL);
  assert_string_equal(header_value(r->ours, "sar", 0, buf, sizeof buf), "4/3");
  free_pending();
}

/* The WMA decoder's last frame (drained at the end) has no timestamp:
 * ffmpeg 5.1's decode_audio then takes the input's running dts (ist->dts,
 * microseconds) through av_rescale_delta, and so must we, or the last line
 * says 45046 where ffmpeg says 45045. */
static void test_media_framehash__wmv_wma_asf(void **state) {
  fh_result *r = hash_both("cctv.wmv", NULL);
  assert_no_decode_errors(r->rep);
  free_pending();
}

/* A picture size change mid-stream (320x240, then 640x480): ffmpeg's
 * command line scales the later frames to the first size before hashing;
 * framehash.h says we hash each frame as it decodes instead, and count
 * them. Every line up to the change is ffmpeg's; after it, the same
 * timestamps with the frames' own sizes. */
static void test_media_framehash__resolution_change(void **state) {
  char ours[PATH_MAX], ref[PATH_MAX];
  json_t *rep = NULL;
  snprintf(ours, sizeof ours, "%s/res_change.ours", tmpdir);
  snprintf(ref, sizeof ref, "%s/res_change.ffmpeg", tmpdir);
  assert_int_equal(media_framehash(fx("res_change.ts"), ours, NULL, &rep), 0);
  const char *argv[] = {"ffmpeg", "-nostdin", "-y", "-v", "error", "-i", fx("res_change.ts"), "-map", "0:V?",
                        "-map", "0:a?", "-f", "framehash", "-hash", "sha256", ref, NULL};
  assert_int_equal(run(argv, NULL, false), 0);
  size_t nours = 0, nref = 0, ro = 0, rr = 0;
  char *a = read_all(ours, &nours), *b = read_all(ref, &nref);
  assert_non_null(a);
  assert_non_null(b);
  fh_row *x = rows_of(a, &ro), *y = rows_of(b, &rr);
  assert_int_equal(ro, rr);
  size_t k = 0;
  while (k < ro && x[k].stream == y[k].stream && x[k].dts == y[k].dts && x[k].pts == y[k].pts &&
         x[k].duration == y[k].duration && x[k].size == y[k].size && !strcmp(x[k].hash, y[k].hash))
    k++;
  assert_true(k > 0 && k < ro); /* identical up to the change, then not */
  int big = 0;
  for (size_t i = 0; i < ro; i++) {
    assert_int_equal(x[i].stream, y[i].stream);
    assert_int_equal(x[i].pts, y[i].pts);
    if (x[i].stream == 0) assert_int_equal(y[i].size, 115200);
    if (x[i].stream == 0 && x[i].size == 460800) big++;
    else if (x[i].stream == 0) assert_int_equal(x[i].size, 115200);
  }
  assert_true(big > 0);
  json_t *s0 = json_array_get(json_object_get(rep, "streams"), 0);
  assert_int_equal(num(s0, "frames_of_another_size"), big);
  free(x);
  free(y);
  free(a);
  free(b);
  json_decref(rep);
}

/* The channel count changes mid-stream: ffmpeg converts every frame to the
 * first frame's layout, and so must we (this once crashed: the converter
 * was set up from the first frame only). Run in a child process, so a
 * crash fails this test rather than the run. */
static void test_media_framehash__channel_count_rises(void **state) {
  hash_both_ex("mono_then_stereo.ts", NULL, true);
  free_pending();
}

static void test_media_framehash__channel_count_drops(void **state) {
  hash_both_ex("stereo_then_mono.ts", NULL, true);
  free_pending();
}

/* ---- damage, and files that are not media ---------------------------- */

static void test_media_framehash__damage_is_recorded(void **state) {
  const char *clean = fx("clean3s.ts"), *bad = fx("damaged.ts");
  long size = file_size(clean);
  const long n = 20 * 1024, off = size / 2 - n / 2;
  assert_true(size > 3 * n);
  /* Where the damage falls in time: the frames whose bytes it covers. */
  json_t *j = ffprobe_json(clean, "-select_streams", "v:0", "-show_entries",
                           "packet=pts_time,pos:format=start_time", NULL);
  json_t *pk = json_object_get(j, "packets");
  double start = jnum(json_object_get(j, "format"), "start_time");
  double tmin = 1e9, tmax = -1e9;
  for (size_t i = 0; i < json_array_size(pk); i++) {
    long pos = (long)jnum(json_array_get(pk, i), "pos");
    long next = i + 1 < json_array_size(pk) ? (long)jnum(json_array_get(pk, i + 1), "pos") : size;
    double t = jnum(json_array_get(pk, i), "pts_time") - start;
    if (next > off && pos < off + n) {
      if (t < tmin) tmin = t;
      if (t > tmax) tmax = t;
    }
  }
  json_decref(j);
  assert_true(tmax >= tmin);
  assert_int_equal(copy_prefix(clean, bad, 100), 0);
  assert_int_equal(damage(bad, off, (size_t)n), 0);

  fh_result *r = hash_both("damaged.ts", NULL); /* still ffmpeg's text */
  json_t *e = json_object_get(r->rep, "decode_errors");
  assert_true(num(e, "packets_failed") + num(e, "frames_damaged") > 0);
  json_t *where = json_object_get(e, "where"), *w, *first = NULL;
  size_t i;
  assert_true(json_array_size(where) > 0);
  assert_true(json_array_size(where) <= 20);
  json_array_foreach(where, i, w) {
    assert_non_null(cu_json_str(w, "what"));
    if (!first && json_is_number(json_object_get(w, "pts_s"))) first = w;
  }
  assert_non_null(first);
  assert_int_equal(num(first, "stream"), 0);
  /* Every place named is roughly there, on the timeline of the file's own
   * lines (which start at 0: ffmpeg's -start_time shift), not the
   * container's raw clock (which starts at 1.4 s in MPEG-TS). */
  json_array_foreach(where, i, w) {
    json_t *t = json_object_get(w, "pts_s");
    if (!json_is_number(t)) continue;
    double at = json_number_value(t);
    if (at < tmin - 0.2 || at > tmax + 0.5)
      fail_msg("damage reported at %.3f s (\"%s\"); the damaged bytes hold frames %.3f..%.3f s", at,
               cu_json_str(w, "what"), tmin, tmax);
  }
  free_pending();
}

static void assert_unsupported(const char *name, const char *want_in_msg) {
  json_t *before = json_object(), *rep = before;
  int rc = media_framehash(fx(name), fx("unsupported.out"), NULL, &rep);
  if (rc != CU_EUNSUPPORTED)
    fail_msg("%s: want unsupported, got %s: %s", name, cu_errname(rc), cu_errmsg());
  assert_null(rep);
  json_decref(before);
  if (want_in_msg && !strstr(cu_errmsg(), want_in_msg))
    fail_msg("%s: \"%s\" does not mention \"%s\"", name, cu_errmsg(), want_in_msg);
}

static void test_media_framehash__mp4_without_moov(void **state) {
  /* media.h: recognised media that cannot be read is CU_ECORRUPT. */
  json_t *before = json_object(), *rep = before;
  int rc = media_framehash(fx("no_moov.mp4"), fx("no_moov.out"), NULL, &rep);
  if (rc != CU_ECORRUPT) fail_msg("want corrupt, got %s: %s", cu_errname(rc), cu_errmsg());
  assert_null(rep);
  json_decref(before);
  if (!strstr(cu_errmsg(), "moov")) fail_msg("\"%s\" does not mention moov", cu_errmsg());
}

static void test_media_framehash__empty_and_random_files(void **state) {
  assert_unsupported("empty.bin", NULL);
  assert_unsupported("random.bin", NULL);
}

/* ---- our own failures ------------------------------------------------ */

static void test_media_framehash__cancelled(void **state) {
  atomic_int cancel = 1;
  media_ctl ctl = {.cancel = &cancel};
  json_t *rep = NULL;
  int rc = media_framehash(fx("ntsc.mp4"), fx("cancelled.out"), &ctl, &rep);
  if (rc != CU_EIO) fail_msg("want io error, got %s: %s", cu_errname(rc), cu_errmsg());
  assert_null(rep);
  assert_non_null(strstr(cu_errmsg(), "cancel"));
}

static void cancel_at_half(void *ud, double f) {
  if (f > 0.5) atomic_store((atomic_int *)ud, 1);
}

static void test_media_framehash__cancelled_while_in_segments(void **state) {
  /* Half way, with decoding threads busy and packets in flight: it stops,
   * says why, and leaves nothing behind (ASan: no leak). */
  atomic_int cancel = 0;
  media_ctl ctl = {.cancel = &cancel, .progress = cancel_at_half, .progress_ud = &cancel};
  json_t *rep = NULL;
  int rc = media_framehash(fx("gops_bf.mp4"), fx("cancelled2.out"), &ctl, &rep);
  if (rc != CU_EIO) fail_msg("want io error, got %s: %s", cu_errname(rc), cu_errmsg());
  assert_null(rep);
  assert_non_null(strstr(cu_errmsg(), "cancel"));
  assert_int_equal(atomic_load(&cancel), 1);
}

static void test_media_framehash__deadline_passed(void **state) {
  media_ctl ctl = {.deadline_us = cu_mono_us() - 1};
  json_t *rep = NULL;
  int rc = media_framehash(fx("ntsc.mp4"), fx("late.out"), &ctl, &rep);
  if (rc != CU_EIO) fail_msg("want io error, got %s: %s", cu_errname(rc), cu_errmsg());
  assert_null(rep);
  assert_non_null(strstr(cu_errmsg(), "time limit"));
}

static void test_media_framehash__destination_in_missing_directory(void **state) {
  json_t *rep = NULL;
  int rc = media_framehash(fx("ntsc.mp4"), fx("no-such-dir/out.framehash"), NULL, &rep);
  assert_true(rc < 0);
  assert_null(rep);
  assert_non_null(strstr(cu_errmsg(), "no-such-dir"));
  struct stat st;
  assert_int_not_equal(stat(fx("no-such-dir"), &st), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_media_framehash__h264_aac_mp4_ntsc_rate),
      cmocka_unit_test(test_media_framehash__variable_frame_rate),
      cmocka_unit_test(test_media_framehash__mjpeg_pcm_avi),
      cmocka_unit_test(test_media_framehash__pcm_wav),
      cmocka_unit_test(test_media_framehash__mpeg2_mp2_ts),
      cmocka_unit_test(test_media_framehash__ts_discontinuity),
      cmocka_unit_test(test_media_framehash__audio_first_mp4),
      cmocka_unit_test(test_media_framehash__hevc_mp4),
      cmocka_unit_test(test_media_framehash__raw_streams_without_timestamps),
      cmocka_unit_test(test_media_framehash__ffv1_flac_mkv),
      cmocka_unit_test(test_media_framehash__segments_with_b_frames),
      cmocka_unit_test(test_media_framehash__segments_without_b_frames),
      cmocka_unit_test(test_media_framehash__segments_hevc),
      cmocka_unit_test(test_media_framehash__segments_without_an_index),
      cmocka_unit_test(test_media_framehash__open_gops_are_not_cut),
      cmocka_unit_test(test_media_framehash__rate_change_falls_back_to_one_pass),
      cmocka_unit_test(test_media_framehash__cover_picture_left_out),
      cmocka_unit_test(test_media_framehash__sample_aspect_ratio),
      cmocka_unit_test(test_media_framehash__wmv_wma_asf),
      cmocka_unit_test(test_media_framehash__resolution_change),
      cmocka_unit_test(test_media_framehash__channel_count_rises),
      cmocka_unit_test(test_media_framehash__channel_count_drops),
      cmocka_unit_test(test_media_framehash__damage_is_recorded),
      cmocka_unit_test(test_media_framehash__mp4_without_moov),
      cmocka_unit_test(test_media_framehash__empty_and_random_files),
      cmocka_unit_test(test_media_framehash__cancelled),
      cmocka_unit_test(test_media_framehash__cancelled_while_in_segments),
      cmocka_unit_test(test_media_framehash__deadline_passed),
      cmocka_unit_test(test_media_framehash__destination_in_missing_directory),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
