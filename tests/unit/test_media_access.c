/* media_access and media_poster against small files made by the ffmpeg CLI
 * at test time, in a temporary directory under $CUSTOS_TEST_TMP (else
 * /tmp) removed at the end. The outputs are checked with ffprobe (JSON,
 * parsed with jansson), by walking the MP4 boxes, and by decoding them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "access.h"
#include "err.h"
#include "json.h"
#include "poster.h"
#include "timeu.h"
#include "media_fixture.h"
#include "banned.h"

/* A copy of main.mp4 (moov at the end) with garbage over part of its media
 * data: some packets no longer decode. */
static int make_damaged(void) {
  size_t n = 0;
  unsigned char *d = (unsigned char *)read_all(fx("main.mp4"), &n);
  int rc = -1;
  if (!d || n < 4096) goto done;
  for (size_t i = n / 5; i < n / 5 + n / 20; i++)
    d[i] = (unsigned char)(i * 2654435761u >> 13);
  rc = write_bytes(fx("damaged.mp4"), d, n);
done:
  free(d);
  return rc;
}

/* The first 30% of main.mp4: its index (moov, written last) is missing. */
static int make_truncated(void) {
  size_t n = 0;
  unsigned char *d = (unsigned char *)read_all(fx("main.mp4"), &n);
  int rc = d ? write_bytes(fx("truncated.mp4"), d, n * 3 / 10) : -1;
  free(d);
  return rc;
}

static int make_fixtures(void) {
  static const char text[] = "Shift notes, unit 12.\nNothing to report at the dock.\n";
  const char *mainf[] = {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2",
                         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
                         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                         "-c:a", "aac", "-ac", "2", fx("main.mp4"), NULL};
  const char *big[] = {"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=1",
                       "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                       fx("big.mp4"), NULL};
  const char *shortf[] = {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=0.5",
                          "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                          fx("short.mp4"), NULL};
  /* White top-left quadrant on black: where it lands shows the turn. */
  const char *quad[] = {"-f", "lavfi", "-i",
                        "color=c=black:s=320x240:r=10:d=1.5,"
                        "drawbox=x=0:y=0:w=iw/2:h=ih/2:color=white:t=fill",
                        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                        fx("quad.mp4"), NULL};
  const char *rot90[] = {"-i", fx("quad.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                         fx("rot90.mp4"), NULL};
  const char *rot180[] = {"-i", fx("quad.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=180",
                          fx("rot180.mp4"), NULL};
  const char *rot270[] = {"-i", fx("quad.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=270",
                          fx("rot270.mp4"), NULL};
  /* Frames at 0, 10, 40, 90 ... ms: every gap is different. */
  const char *vfr[] = {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=0.5",
                       "-vf", "settb=1/1000,setpts=N*N*10", "-vsync", "vfr", "-c:v", "libx264",
                       "-preset", "ultrafast", "-pix_fmt", "yuv420p", fx("vfr.mp4"), NULL};
  /* Odd sizes, RGB, Matroska's 1/1000 time base. */
  const char *odd[] = {"-f", "lavfi", "-i",
                       "testsrc2=size=160x120:rate=10:duration=1,scale=161:121", "-c:v", "ffv1",
                       "-pix_fmt", "bgr0", fx("odd.mkv"), NULL};
  const char *surround[] = {"-f", "lavfi", "-i",
                            "aevalsrc=0.1*sin(2*PI*440*t)|0.1*sin(2*PI*550*t)|0.1*sin(2*PI*660*t)"
                            "|0|0.1*sin(2*PI*220*t)|0.1*sin(2*PI*330*t):s=44100:c=5.1:d=1",
                            "-c:a", "pcm_s16le", fx("surround.wav"), NULL};
  /* No container, no times, as CCTV recorders export. */
  const char *raw[] = {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2", "-c:v",
                       "libx264", "-preset", "ultrafast", "-f", "h264", fx("raw.h264"), NULL};
  /* 192 kHz: a rate AAC cannot code. */
  const char *hirate[] = {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=192000:duration=0.5",
                          "-c:a", "pcm_s24le", fx("hirate.wav"), NULL};

  if (run_ffmpeg(mainf) || run_ffmpeg(big) || run_ffmpeg(shortf) || run_ffmpeg(quad) ||
      run_ffmpeg(rot90) || run_ffmpeg(rot180) || run_ffmpeg(rot270) || run_ffmpeg(vfr) ||
      run_ffmpeg(odd) || run_ffmpeg(surround) || run_ffmpeg(hirate) || run_ffmpeg(raw))
    return -1;
  if (make_damaged() || make_truncated()) return -1;
  if (write_bytes(fx("notes.txt"), text, sizeof text - 1)) return -1;
  if (write_bytes(fx("empty.bin"), "", 0)) return -1;
  return make_picture_fixtures();
}

static int group_teardown(void **state) { return media_fixture_teardown(); }

static int group_setup(void **state) {
  /* The paths go into popen() commands in single quotes. */
  if (media_fixture_setup("custos-access", make_fixtures)) return -1;
  if (strchr(tmpdir, '\'')) {
    fprintf(stderr, "the temporary directory %s has a quote in its name\n", tmpdir);
    media_fixture_teardown();
    return -1;
  }
  return 0;
}

/* ---- looking at outputs ---- */

/* ffprobe's JSON for path, with the given sections. */
static json_t *ffprobe(const char *path, const char *args) {
  char cmd[PATH_MAX + 256];
  json_error_t e;
  snprintf(cmd, sizeof cmd, "ffprobe -v error -print_format json %s '%s'", args, path);
  FILE *p = popen(cmd, "r");
  if (!p) fail_msg("cannot run ffprobe");
  json_t *j = json_loadf(p, 0, &e);
  int st = pclose(p);
  if (!j || st != 0) fail_msg("ffprobe %s on %s failed: %s", args, path, j ? "" : e.text);
  return j;
}

/* The first stream of codec_type in ffprobe's answer, or NULL. */
static json_t *stream_of(const json_t *probe, const char *type) {
  json_t *s;
  size_t i;
  json_array_foreach(json_object_get(probe, "streams"), i, s) {
    const char *t = cu_json_str(s, "codec_type");
    if (t && strcmp(t, type) == 0) return s;
  }
  return NULL;
}

static size_t count_type(const json_t *probe, const char *type) {
  json_t *s;
  size_t i, n = 0;
  json_array_foreach(json_object_get(probe, "streams"), i, s) {
    const char *t = cu_json_str(s, "codec_type");
    if (t && strcmp(t, type) == 0) n++;
  }
  return n;
}

/* All video packet timestamps of path, sorted; the caller frees. */
static double *video_pts(const char *path, size_t *n) {
  json_t *p = ffprobe(path, "-select_streams v:0 -show_entries packet=pts_time"), *pk;
  json_t *pkts = json_object_get(p, "packets");
  size_t i;
  double *t = calloc(json_array_size(pkts) + 1, sizeof *t);
  assert_non_null(t);
  json_array_foreach(pkts, i, pk) t[i] = snum(pk, "pts_time");
  *n = json_array_size(pkts);
  json_decref(p);
  for (size_t a = 1; a < *n; a++) /* a few dozen: insertion sort */
    for (size_t b = a; b > 0 && t[b - 1] > t[b]; b--) {
      double x = t[b];
      t[b] = t[b - 1];
      t[b - 1] = x;
    }
  return t;
}

/* Which quadrant of a w x h gray picture is brightest: 0 top left, 1 top
 * right, 2 bottom left, 3 bottom right. */
static int bright_quadrant(const unsigned char *g, int w, int h) {
  double sum[4] = {0};
  int best = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) sum[(y >= h / 2) * 2 + (x >= w / 2)] += g[y * w + x];
  for (int q = 1; q < 4; q++)
    if (sum[q] > sum[best]) best = q;
  return best;
}

/* Decodes one frame of path (at ss seconds, ffmpeg rotating it as players
 * do) to w x h gray and gives its bright quadrant. */
static int quadrant_of(const char *path, const char *ss, int w, int h) {
  char cmd[PATH_MAX + 256];
  size_t want = (size_t)w * (size_t)h;
  unsigned char *g = malloc(want + 1);
  assert_non_null(g);
  snprintf(cmd, sizeof cmd,
           "ffmpeg -nostdin -v error %s%s -i '%s' -frames:v 1 -f rawvideo -pix_fmt gray -",
           ss ? "-ss " : "", ss ? ss : "", path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t got = fread(g, 1, want + 1, p);
  pclose(p);
  if (got != want) fail_msg("%s: %zu bytes of gray, not %dx%d", path, got, w, h);
  int q = bright_quadrant(g, w, h);
  free(g);
  return q;
}

/* ---- calling the functions ---- */

static json_t *access_ok(const char *src, const char *dst, const media_access_opts *o) {
  json_t *r = NULL;
  int rc = media_access(fx(src), fx(dst), o, NULL, &r);
  if (rc != 0) fail_msg("media_access(%s): %s: %s", src, cu_errname(rc), cu_errmsg());
  assert_true(json_is_object(r));
  return r;
}

static json_t *poster_ok(const char *src, const char *dst, int max_side) {
  json_t *r = NULL;
  int rc = media_poster(fx(src), fx(dst), max_side, NULL, &r);
  if (rc != 0) fail_msg("media_poster(%s): %s: %s", src, cu_errname(rc), cu_errmsg());
  assert_true(json_is_object(r));
  return r;
}

/* The report agrees with what ffprobe finds in the output. */
static void assert_report_matches(const json_t *r, const char *out) {
  json_t *p = ffprobe(out, "-count_packets -show_streams -show_format");
  json_t *v = stream_of(p, "video"), *a = stream_of(p, "audio");
  if (v) {
    assert_int_equal(num(r, "width"), num(v, "width"));
    assert_int_equal(num(r, "height"), num(v, "height"));
    assert_int_equal(num(r, "video_frames"), (json_int_t)snum(v, "nb_read_packets"));
  } else {
    assert_null(json_object_get(r, "width"));
    assert_null(json_object_get(r, "height"));
    assert_int_equal(num(r, "video_frames"), 0);
  }
  if (a) assert_int_equal(num(r, "audio_frames"), (json_int_t)snum(a, "nb_read_packets"));
  else assert_int_equal(num(r, "audio_frames"), 0);
  double d = real(r, "duration_s"), fd = snum(json_object_get(p, "format"), "duration");
  if (fabs(d - fd) > 0.05) fail_msg("report says %.3f s, ffprobe %.3f s", d, fd);
  assert_true(num(r, "decode_errors") >= 0);
  json_decref(p);
}

static void assert_params(const json_t *r, const char *container, int max_side) {
  json_t *p = json_object_get(r, "params");
  assert_true(json_is_object(p));
  assert_string_equal(str(p, "video"), "libx264");
  assert_int_equal(num(p, "crf"), 23);
  assert_string_equal(str(p, "preset"), "veryfast");
  assert_int_equal(num(p, "max_side"), max_side);
  assert_string_equal(str(p, "audio"), "aac");
  assert_int_equal(num(p, "audio_bitrate"), 128000);
  assert_string_equal(str(p, "container"), container);
  assert_true(json_is_true(json_object_get(p, "faststart")));
}

/* ---- media_access ---- */

static void test_media_access__h264_aac_mp4(void **state) {
  json_t *r = access_ok("main.mp4", "main-access.mp4", NULL);
  const char *out = fx("main-access.mp4");
  json_t *p = ffprobe(out, "-show_streams -show_format"), *v, *a;

  assert_params(r, "mp4", 1280);
  assert_int_equal(num(r, "decode_errors"), 0);
  assert_int_equal(count_type(p, "video"), 1);
  assert_int_equal(count_type(p, "audio"), 1);
  assert_non_null(v = stream_of(p, "video"));
  assert_string_equal(str(v, "codec_name"), "h264");
  assert_string_equal(str(v, "profile"), "High");
  assert_string_equal(str(v, "pix_fmt"), "yuv420p");
  /* Never scaled up. */
  assert_int_equal(num(v, "width"), 320);
  assert_int_equal(num(v, "height"), 240);
  assert_non_null(a = stream_of(p, "audio"));
  assert_string_equal(str(a, "codec_name"), "aac");
  assert_string_equal(str(a, "profile"), "LC");
  assert_int_equal((json_int_t)snum(a, "sample_rate"), 48000);
  assert_int_equal(num(a, "channels"), 2);
  /* The output starts at 0 and lasts as long as the source. */
  assert_true(fabs(snum(json_object_get(p, "format"), "start_time")) < 0.001);
  assert_true(fabs(duration_of(out) - duration_of(fx("main.mp4"))) < 0.1);
  assert_int_equal(num(r, "video_frames"), 60);
  assert_faststart(out, "isom");
  assert_decodes_clean(out);
  assert_report_matches(r, out);
  json_decref(p);
  json_decref(r);
}

static void test_media_access__scales_to_max_side(void **state) {
  media_access_opts o = {.max_side = 500, .preset = "ultrafast", .threads = 2};
  json_t *r = access_ok("big.mp4", "big-default.mp4", NULL), *p, *v;

  assert_int_equal(num(r, "width"), 1280);
  assert_int_equal(num(r, "height"), 720);
  assert_report_matches(r, fx("big-default.mp4"));
  json_decref(r);

  r = access_ok("big.mp4", "big-500.mp4", &o);
  assert_string_equal(str(json_object_get(r, "params"), "preset"), "ultrafast");
  p = ffprobe(fx("big-500.mp4"), "-show_streams");
  assert_non_null(v = stream_of(p, "video"));
  json_int_t w = num(v, "width"), h = num(v, "height");
  assert_int_equal(w, 500);
  assert_true(h % 2 == 0);
  assert_true(fabs((double)w / (double)h / (1920.0 / 1080.0) - 1) < 0.01);
  assert_null(stream_of(p, "audio"));
  assert_faststart(fx("big-500.mp4"), "isom");
  assert_decodes_clean(fx("big-500.mp4"));
  assert_true(fabs(duration_of(fx("big-500.mp4")) - duration_of(fx("big.mp4"))) < 0.1);
  json_decref(p);
  json_decref(r);
}

static void test_media_access__odd_rgb_input(void **state) {
  json_t *r = access_ok("odd.mkv", "odd-access.mp4", NULL);
  json_t *p = ffprobe(fx("odd-access.mp4"), "-show_streams"), *v = stream_of(p, "video");
  assert_non_null(v);
  /* Even sizes, the odd pixel dropped rather than a pixel invented. */
  assert_int_equal(num(v, "width"), 160);
  assert_int_equal(num(v, "height"), 120);
  assert_string_equal(str(v, "pix_fmt"), "yuv420p");
  assert_int_equal(num(r, "video_frames"), 10);
  assert_true(fabs(duration_of(fx("odd-access.mp4")) - duration_of(fx("odd.mkv"))) < 0.1);
  assert_decodes_clean(fx("odd-access.mp4"));
  assert_report_matches(r, fx("odd-access.mp4"));
  json_decref(p);
  json_decref(r);
}

static void test_media_access__audio_only_is_m4a(void **state) {
  json_t *r = access_ok("surround.wav", "surround.m4a", NULL);
  const char *out = fx("surround.m4a");
  json_t *p = ffprobe(out, "-show_streams -show_format"), *a;

  assert_params(r, "ipod", 1280);
  assert_int_equal(count_type(p, "video"), 0);
  assert_int_equal(count_type(p, "audio"), 1);
  assert_non_null(a = stream_of(p, "audio"));
  assert_string_equal(str(a, "codec_name"), "aac");
  assert_string_equal(str(a, "profile"), "LC");
  assert_int_equal((json_int_t)snum(a, "sample_rate"), 44100);
  /* 5.1 is mixed down to stereo. */
  assert_int_equal(num(a, "channels"), 2);
  assert_faststart(out, "M4A ");
  assert_true(fabs(duration_of(out) - 1.0) < 0.1);
  assert_decodes_clean(out);
  assert_report_matches(r, out);
  json_decref(p);
  json_decref(r);
}

static void test_media_access__rate_aac_lacks_becomes_48k(void **state) {
  json_t *r = access_ok("hirate.wav", "hirate.m4a", NULL);
  json_t *p = ffprobe(fx("hirate.m4a"), "-show_streams"), *a = stream_of(p, "audio");
  assert_non_null(a);
  assert_int_equal((json_int_t)snum(a, "sample_rate"), 48000);
  assert_int_equal(num(a, "channels"), 1);
  assert_true(fabs(duration_of(fx("hirate.m4a")) - 0.5) < 0.1);
  assert_decodes_clean(fx("hirate.m4a"));
  json_decref(p);
  json_decref(r);
}

static double side_rotation(const json_t *stream) {
  json_t *sd;
  size_t i;
  json_array_foreach(json_object_get(stream, "side_data_list"), i, sd) {
    json_t *rot = json_object_get(sd, "rotation");
    if (json_is_number(rot)) return json_number_value(rot);
  }
  fail_msg("no rotation in the side data");
  return NAN;
}

static void test_media_access__keeps_rotation(void **state) {
  json_t *r = access_ok("rot90.mp4", "rot90-access.mp4", NULL);
  json_t *src = ffprobe(fx("rot90.mp4"), "-show_streams");
  json_t *out = ffprobe(fx("rot90-access.mp4"), "-show_streams"), *v = stream_of(out, "video");
  assert_non_null(v);
  /* The pixels are stored as they came; the matrix turns them. */
  assert_int_equal(num(v, "width"), 320);
  assert_int_equal(num(v, "height"), 240);
  double want = side_rotation(stream_of(src, "video"));
  assert_true(fabs(fabs(want) - 90) < 0.01);
  assert_true(fabs(side_rotation(v) - want) < 0.01);
  assert_decodes_clean(fx("rot90-access.mp4"));
  json_decref(src);
  json_decref(out);
  json_decref(r);
}

static void test_media_access__keeps_variable_frame_rate(void **state) {
  json_t *r = access_ok("vfr.mp4", "vfr-access.mp4", NULL);
  size_t ns = 0, no = 0, distinct = 0;
  double *s = video_pts(fx("vfr.mp4"), &ns), *o = video_pts(fx("vfr-access.mp4"), &no);
  double gaps[64];

  /* Every frame, at its own time: none added, none dropped. */
  assert_true(ns >= 10);
  assert_int_equal(no, ns);
  assert_int_equal(num(r, "video_frames"), (json_int_t)ns);
  for (size_t i = 0; i < ns; i++)
    if (fabs(s[i] - o[i]) > 0.002)
      fail_msg("frame %zu: %.4f s in the source, %.4f s out", i, s[i], o[i]);
  for (size_t i = 1; i < no && i < 64; i++) {
    double g = o[i] - o[i - 1];
    bool seen = false;
    for (size_t k = 0; k < distinct; k++)
      if (fabs(gaps[k] - g) < 0.001) seen = true;
    if (!seen) gaps[distinct++] = g;
  }
  assert_true(distinct >= 5);
  assert_true(fabs(duration_of(fx("vfr-access.mp4")) - duration_of(fx("vfr.mp4"))) < 0.1);
  assert_decodes_clean(fx("vfr-access.mp4"));
  free(s);
  free(o);
  json_decref(r);
}

static void test_media_access__damaged_packets_are_skipped(void **state) {
  json_t *r = access_ok("damaged.mp4", "damaged-access.mp4", NULL);
  assert_true(num(r, "decode_errors") > 0);
  assert_true(num(r, "video_frames") > 0);
  assert_decodes_clean(fx("damaged-access.mp4"));
  assert_report_matches(r, fx("damaged-access.mp4"));
  json_decref(r);
}

static void test_media_access__not_media_is_unsupported(void **state) {
  const char *names[] = {"notes.txt", "empty.bin"};
  for (size_t i = 0; i < 2; i++) {
    json_t *r = NULL;
    assert_int_equal(media_access(fx(names[i]), fx("never.mp4"), NULL, NULL, &r), CU_EUNSUPPORTED);
    assert_null(r);
    assert_true(strlen(cu_errmsg()) > 5);
  }
  assert_non_null(strstr(cu_errmsg(), "empty"));
}

/* Media libavformat knows but cannot read: damaged, not "not media". */
/* A photo needs no access copy; an MJPEG stream (JPEGs of one size one
 * after another) gets one, every picture in it. */
static void test_media_access__photos_and_an_mjpeg_stream(void **state) {
  const char *photos[] = {"photo.jpg", "stereo.jpg", "mpf.jpg", "photo.png"};
  for (size_t i = 0; i < sizeof photos / sizeof *photos; i++) {
    json_t *r = NULL;
    assert_int_equal(media_access(fx(photos[i]), fx("never.mp4"), NULL, NULL, &r), CU_EUNSUPPORTED);
    assert_non_null(strstr(cu_errmsg(), "still image"));
    assert_null(r);
  }
  static const char *const streams[][2] = {{"camera.mjpeg", "camera-access.mp4"},
                                           {"camera.png", "camera-png-access.mp4"}};
  for (size_t i = 0; i < sizeof streams / sizeof *streams; i++) {
    json_t *r = access_ok(streams[i][0], streams[i][1], NULL);
    assert_int_equal(num(r, "video_frames"), 10);
    assert_faststart(fx(streams[i][1]), "isom");
    assert_decodes_clean(fx(streams[i][1]));
    json_decref(r);
  }
}

static void test_media_access__truncated_mp4_is_corrupt(void **state) {
  json_t *r = NULL;
  assert_int_equal(media_access(fx("truncated.mp4"), fx("never.mp4"), NULL, NULL, &r), CU_ECORRUPT);
  assert_null(r);
  assert_non_null(strstr(cu_errmsg(), "moov atom not found"));
  assert_int_equal(media_poster(fx("truncated.mp4"), fx("never.jpg"), 0, NULL, &r), CU_ECORRUPT);
  assert_null(r);
}

typedef struct {
  atomic_int cancel;
  int calls, before_the_end;
  double last;
  bool out_of_range, cancel_on_first;
} watch;

static void on_progress(void *ud, double f) {
  watch *w = ud;
  w->calls++;
  if (f < 1.0) w->before_the_end++;
  if (f < 0 || f > 1) w->out_of_range = true;
  w->last = f;
  if (w->cancel_on_first) atomic_store(&w->cancel, 1);
}

static void test_media_access__progress(void **state) {
  watch w = {0};
  media_ctl ctl = {.progress = on_progress, .progress_ud = &w, .cancel = &w.cancel};
  json_t *r = NULL;
  assert_int_equal(media_access(fx("main.mp4"), fx("progress.mp4"), NULL, &ctl, &r), 0);
  assert_true(w.calls >= 2);
  assert_false(w.out_of_range);
  assert_true(w.last == 1.0);
  json_decref(r);

  /* A raw stream states no duration and its packets no times: the share of
   * its bytes read is the progress. */
  watch raw = {0};
  ctl.progress_ud = &raw;
  assert_int_equal(media_access(fx("raw.h264"), fx("progress-raw.mp4"), NULL, &ctl, &r), 0);
  assert_true(raw.before_the_end >= 1);
  assert_false(raw.out_of_range);
  assert_true(raw.last == 1.0);
  json_decref(r);
}

static void test_media_access__cancel_and_deadline(void **state) {
  watch w = {0};
  media_ctl ctl = {.cancel = &w.cancel};
  json_t *r = NULL;

  atomic_store(&w.cancel, 1); /* before it starts */
  assert_int_equal(media_access(fx("main.mp4"), fx("cancelled.mp4"), NULL, &ctl, &r), CU_EIO);
  assert_null(r);
  assert_non_null(strstr(cu_errmsg(), "cancelled"));

  /* While it runs: the file is read by then, the loop must notice. */
  atomic_store(&w.cancel, 0);
  w.cancel_on_first = true;
  ctl.progress = on_progress;
  ctl.progress_ud = &w;
  assert_int_equal(media_access(fx("main.mp4"), fx("cancelled.mp4"), NULL, &ctl, &r), CU_EIO);
  assert_null(r);
  assert_non_null(strstr(cu_errmsg(), "cancelled"));

  media_ctl late = {.deadline_us = cu_mono_us() - 1};
  assert_int_equal(media_access(fx("main.mp4"), fx("late.mp4"), NULL, &late, &r), CU_EIO);
  assert_null(r);
  assert_non_null(strstr(cu_errmsg(), "time limit"));
}

static void test_media_access__bad_arguments(void **state) {
  json_t *r = NULL;
  media_access_opts neg = {.crf = -1}, preset = {.preset = "warp"}, side = {.max_side = -5};
  assert_int_equal(media_access(NULL, fx("x.mp4"), NULL, NULL, &r), CU_EINVAL);
  assert_int_equal(media_access(fx("main.mp4"), NULL, NULL, NULL, &r), CU_EINVAL);
  assert_int_equal(media_access(fx("main.mp4"), fx("x.mp4"), NULL, NULL, NULL), CU_EINVAL);
  assert_int_equal(media_access(fx("main.mp4"), fx("x.mp4"), &neg, NULL, &r), CU_EINVAL);
  assert_int_equal(media_access(fx("main.mp4"), fx("x.mp4"), &preset, NULL, &r), CU_EINVAL);
  assert_int_equal(media_access(fx("main.mp4"), fx("x.mp4"), &side, NULL, &r), CU_EINVAL);
  assert_null(r);
  assert_int_equal(media_access(fx("no-such.mp4"), fx("x.mp4"), NULL, NULL, &r), CU_ENOTFOUND);
  assert_null(r);
}

/* ---- media_poster ---- */

static void assert_jpeg(const char *path, json_int_t w, json_int_t h) {
  size_t n = 0;
  unsigned char *d = (unsigned char *)read_all(path, &n);
  assert_non_null(d);
  assert_true(n > 4);
  assert_true(d[0] == 0xff && d[1] == 0xd8 && d[n - 2] == 0xff && d[n - 1] == 0xd9);
  free(d);
  json_t *p = ffprobe(path, "-show_streams"), *v = stream_of(p, "video");
  assert_non_null(v);
  assert_string_equal(str(v, "codec_name"), "mjpeg");
  assert_string_equal(str(v, "pix_fmt"), "yuvj420p");
  assert_int_equal(num(v, "width"), w);
  assert_int_equal(num(v, "height"), h);
  json_decref(p);
}

static void test_media_poster__one_second_in(void **state) {
  json_t *r = poster_ok("main.mp4", "main.jpg", 0), *params;
  assert_int_equal(num(r, "width"), 320);
  assert_int_equal(num(r, "height"), 240);
  assert_true(fabs(real(r, "pts_s") - 1.0) < 0.001);
  params = json_object_get(r, "params");
  assert_string_equal(str(params, "codec"), "mjpeg");
  assert_int_equal(num(params, "max_side"), 640);
  assert_true(fabs(real(params, "at_s") - 1.0) < 1e-9);
  assert_jpeg(fx("main.jpg"), 320, 240);
  struct stat st;
  mode_t mask = umask(0);
  umask(mask);
  assert_int_equal(stat(fx("main.jpg"), &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644 & ~mask);
  json_decref(r);
}

static void test_media_poster__short_clip_uses_first_frame(void **state) {
  json_t *r = poster_ok("short.mp4", "short.jpg", 0);
  assert_true(fabs(real(r, "pts_s")) < 1e-9);
  assert_jpeg(fx("short.jpg"), 320, 240);
  json_decref(r);
}

static void test_media_poster__scales_to_max_side(void **state) {
  json_t *r = poster_ok("big.mp4", "big.jpg", 0);
  assert_int_equal(num(r, "width"), 640);
  assert_int_equal(num(r, "height"), 360);
  assert_jpeg(fx("big.jpg"), 640, 360);
  json_decref(r);
  r = poster_ok("big.mp4", "big-100.jpg", 100);
  assert_int_equal(num(r, "width"), 100);
  assert_int_equal(num(r, "height"), 56);
  assert_int_equal(num(json_object_get(r, "params"), "max_side"), 100);
  assert_jpeg(fx("big-100.jpg"), 100, 56);
  json_decref(r);
}

static void test_media_poster__applies_rotation(void **state) {
  static const struct {
    const char *src, *dst;
    int w, h;
  } cases[] = {{"quad.mp4", "quad.jpg", 320, 240},
               {"rot90.mp4", "rot90.jpg", 240, 320},
               {"rot180.mp4", "rot180.jpg", 320, 240},
               {"rot270.mp4", "rot270.jpg", 240, 320}};
  int seen[4] = {0};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *r = poster_ok(cases[i].src, cases[i].dst, 0);
    assert_int_equal(num(r, "width"), cases[i].w);
    assert_int_equal(num(r, "height"), cases[i].h);
    assert_true(fabs(real(r, "pts_s") - 1.0) < 0.001);
    assert_jpeg(fx(cases[i].dst), cases[i].w, cases[i].h);
    /* Where the white corner is, as ffmpeg's own player-style rotation
     * puts it. */
    int want = quadrant_of(fx(cases[i].src), "1", cases[i].w, cases[i].h);
    int got = quadrant_of(fx(cases[i].dst), NULL, cases[i].w, cases[i].h);
    if (want != got)
      fail_msg("%s: white corner in quadrant %d, ffmpeg puts it in %d", cases[i].src, got, want);
    seen[got]++;
    json_decref(r);
  }
  /* Four turns, four different corners. */
  for (int q = 0; q < 4; q++) assert_int_equal(seen[q], 1);
}

static void test_media_poster__needs_video(void **state) {
  const char *names[] = {"surround.wav", "notes.txt", "empty.bin"};
  for (size_t i = 0; i < 3; i++) {
    json_t *r = NULL;
    assert_int_equal(media_poster(fx(names[i]), fx("never.jpg"), 0, NULL, &r), CU_EUNSUPPORTED);
    assert_null(r);
    assert_true(strlen(cu_errmsg()) > 5);
  }
}

static void test_media_poster__cancel_and_deadline(void **state) {
  atomic_int cancel = 1;
  media_ctl ctl = {.cancel = &cancel}, late = {.deadline_us = cu_mono_us() - 1};
  json_t *r = NULL;
  assert_int_equal(media_poster(fx("main.mp4"), fx("c.jpg"), 0, &ctl, &r), CU_EIO);
  assert_null(r);
  assert_int_equal(media_poster(fx("main.mp4"), fx("c.jpg"), 0, &late, &r), CU_EIO);
  assert_null(r);
  assert_int_equal(media_poster(fx("main.mp4"), fx("c.jpg"), -1, NULL, &r), CU_EINVAL);
  assert_int_equal(media_poster(NULL, fx("c.jpg"), 0, NULL, &r), CU_EINVAL);
  assert_null(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_media_access__h264_aac_mp4),
      cmocka_unit_test(test_media_access__scales_to_max_side),
      cmocka_unit_test(test_media_access__odd_rgb_input),
      cmocka_unit_test(test_media_access__audio_only_is_m4a),
      cmocka_unit_test(test_media_access__rate_aac_lacks_becomes_48k),
      cmocka_unit_test(test_media_access__keeps_rotation),
      cmocka_unit_test(test_media_access__keeps_variable_frame_rate),
      cmocka_unit_test(test_media_access__damaged_packets_are_skipped),
      cmocka_unit_test(test_media_access__not_media_is_unsupported),
      cmocka_unit_test(test_media_access__photos_and_an_mjpeg_stream),
      cmocka_unit_test(test_media_access__truncated_mp4_is_corrupt),
      cmocka_unit_test(test_media_access__progress),
      cmocka_unit_test(test_media_access__cancel_and_deadline),
      cmocka_unit_test(test_media_access__bad_arguments),
      cmocka_unit_test(test_media_poster__one_second_in),
      cmocka_unit_test(test_media_poster__short_clip_uses_first_frame),
      cmocka_unit_test(test_media_poster__scales_to_max_side),
      cmocka_unit_test(test_media_poster__applies_rotation),
      cmocka_unit_test(test_media_poster__needs_video),
      cmocka_unit_test(test_media_poster__cancel_and_deadline),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
