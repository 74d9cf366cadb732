/* media_clip and media_clip_check_frames against small files made by the
 * ffmpeg CLI at test time, in a temporary directory under $CUSTOS_TEST_TMP
 * (else /tmp) removed at the end. The clips are looked at with ffprobe
 * (packets with their SHA-256, frames, streams), by walking the MP4 boxes
 * and by decoding them with ffmpeg. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clip.h"
#include "err.h"
#include "framehash.h"
#include "json.h"
#include "timeu.h"
#include "media_fixture.h"
#include "banned.h"

/* gop2.mp4: 6 s at 30 frames a second, a keyframe every 2 s (0, 2, 4),
 * B-frames, AAC stereo. */
#define FPS 30
#define SECONDS 6

static int make_fixtures(void) {
  static const char text[] = "Shift notes, unit 12.\n";
  const char *gop2[] = {"-f",
                        "lavfi",
                        "-i",
                        "testsrc2=size=320x240:rate=30:duration=6",
                        "-f",
                        "lavfi",
                        "-i",
                        "sine=frequency=440:sample_rate=48000:duration=6",
                        "-c:v",
                        "libx264",
                        "-preset",
                        "ultrafast",
                        "-pix_fmt",
                        "yuv420p",
                        "-g",
                        "60",
                        "-keyint_min",
                        "60",
                        "-sc_threshold",
                        "0",
                        "-bf",
                        "2",
                        "-c:a",
                        "aac",
                        "-ac",
                        "2",
                        fx("gop2.mp4"),
                        NULL};
  const char *ts[] = {"-i", fx("gop2.mp4"), "-c", "copy", "-f", "mpegts", fx("gop2.ts"), NULL};
  /* As a live recorder writes Matroska: no duration, no index (cues). */
  const char *live[] = {"-i", fx("gop2.mp4"), "-c", "copy", "-live", "1", fx("live.mkv"), NULL};
  /* The same pictures, encoded again: other bytes, other decoded frames. */
  const char *other[] = {"-f",
                         "lavfi",
                         "-i",
                         "testsrc2=size=320x240:rate=30:duration=6",
                         "-c:v",
                         "libx264",
                         "-preset",
                         "ultrafast",
                         "-crf",
                         "40",
                         "-pix_fmt",
                         "yuv420p",
                         "-g",
                         "60",
                         fx("other.mp4"),
                         NULL};
  const char *fh[] = {"-i", fx("gop2.mp4"), "-map",  "0:V?",   "-map",        "0:a?",
                      "-f", "framehash",    "-hash", "sha256", fx("gop2.fh"), NULL};
  const char *md5[] = {
      "-i",  fx("gop2.mp4"),    "-map", "0:V?", "-map", "0:a?", "-f", "framehash", "-hash",
      "md5", fx("gop2-md5.fh"), NULL};
  const char *audio[] = {
      "-f",  "lavfi",         "-i", "sine=frequency=440:sample_rate=48000:duration=4", "-c:a",
      "aac", fx("audio.m4a"), NULL};
  const char *afh[] = {"-i", fx("audio.m4a"), "-map",  "0:V?",   "-map",         "0:a?",
                       "-f", "framehash",     "-hash", "sha256", fx("audio.fh"), NULL};
  const char *pcm[] = {
      "-f",   "lavfi",     "-i",          "sine=frequency=440:sample_rate=48000:duration=2",
      "-c:a", "pcm_s16le", fx("pcm.wav"), NULL};
  const char *ffv1[] = {"-f",   "lavfi", "-i",           "testsrc2=size=160x120:rate=10:duration=2",
                        "-c:v", "ffv1",  fx("ffv1.mkv"), NULL};
  /* Two seconds of one grey picture, then two of moving ones; a keyframe
   * every second. */
  const char *still[] = {"-f",
                         "lavfi",
                         "-i",
                         "color=c=gray:s=160x120:r=10:d=2[a];testsrc2=s=160x120:r=10:d=2[b];"
                         "[a][b]concat=n=2:v=1:a=0",
                         "-c:v",
                         "libx264",
                         "-preset",
                         "ultrafast",
                         "-pix_fmt",
                         "yuv420p",
                         "-g",
                         "10",
                         "-keyint_min",
                         "10",
                         "-sc_threshold",
                         "0",
                         fx("still.mp4"),
                         NULL};
  const char *sfh[] = {"-i", fx("still.mp4"), "-map",  "0:V?",   "-map",         "0:a?",
                       "-f", "framehash",     "-hash", "sha256", fx("still.fh"), NULL};
  /* Pixels 4:3 wide, turned a quarter by the display matrix. */
  const char *flat[] = {
      "-f",           "lavfi",   "-i",      "testsrc2=size=320x240:rate=10:duration=3,setsar=4/3",
      "-c:v",         "libx264", "-preset", "ultrafast",
      "-pix_fmt",     "yuv420p", "-g",      "10",
      fx("flat.mp4"), NULL};
  const char *rot[] = {"-i",        fx("flat.mp4"), "-c", "copy", "-metadata:s:v:0",
                       "rotate=90", fx("rot.mp4"),  NULL};

  if (run_ffmpeg(gop2) || run_ffmpeg(ts) || run_ffmpeg(live) || run_ffmpeg(other) ||
      run_ffmpeg(fh) || run_ffmpeg(md5) || run_ffmpeg(audio) || run_ffmpeg(afh) ||
      run_ffmpeg(pcm) || run_ffmpeg(ffv1) || run_ffmpeg(still) || run_ffmpeg(sfh) ||
      run_ffmpeg(flat) || run_ffmpeg(rot))
    return -1;
  /* The first 30%: the index (moov, written last) is missing. */
  if (copy_prefix(fx("gop2.mp4"), fx("truncated.mp4"), 30)) return -1;
  if (write_bytes(fx("notes.txt"), text, sizeof text - 1)) return -1;
  return 0;
}

static int group_teardown(void **state) {
  return media_fixture_teardown();
}
static int group_setup(void **state) {
  return media_fixture_setup("custos-clip", make_fixtures);
}

/* ---- looking at clips ---- */

static json_t *probe(const char *path, const char *a, const char *b, const char *c, const char *d) {
  json_t *j = ffprobe_json(path, a, b, c, d, NULL);
  if (!j) fail_msg("ffprobe %s %s %s %s on %s failed", a, b ? b : "", c ? c : "", d ? d : "", path);
  return j;
}

/* The packets of one stream ("v:0", "a:0") in file order, each with
 * pts_time, flags and data_hash (SHA-256). */
static json_t *packets(const char *path, const char *sel) {
  const char *argv[] = {
      "-select_streams", sel, "-show_entries", "packet=pts_time,flags,data_hash", "-show_data_hash",
      "sha256",          NULL};
  json_t *j = ffprobe_json(path, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5], NULL);
  if (!j) fail_msg("ffprobe cannot list the packets of %s", path);
  json_t *p = json_incref(json_object_get(j, "packets"));
  json_decref(j);
  if (!json_is_array(p)) p = json_array();
  return p;
}

/* The presentation times of the decoded video frames, in order; *n of them. */
static double *frame_times(const char *path, size_t *n) {
  json_t *j = probe(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time");
  json_t *fr = json_object_get(j, "frames"), *f;
  size_t i;
  double *t = calloc(json_array_size(fr) + 1, sizeof *t);
  assert_non_null(t);
  json_array_foreach(fr, i, f) t[i] = snum(f, "pts_time");
  *n = json_array_size(fr);
  json_decref(j);
  return t;
}

/* ffprobe's streams of path. */
static json_t *streams_of(const char *path) {
  json_t *j = probe(path, "-show_streams", NULL, NULL, NULL);
  json_t *s = json_incref(json_object_get(j, "streams"));
  json_decref(j);
  return s;
}

static json_t *stream_of_type(json_t *streams, const char *type) {
  json_t *s;
  size_t i;
  json_array_foreach(streams, i, s) {
    const char *t = cu_json_str(s, "codec_type");
    if (t && !strcmp(t, type)) return s;
  }
  return NULL;
}

/* The rotation ffprobe reads from a stream's display matrix; 0 if none. */
static double rotation_of(const json_t *stream) {
  json_t *sd, *list = json_object_get(stream, "side_data_list");
  size_t i;
  json_array_foreach(list, i, sd) {
    json_t *r = json_object_get(sd, "rotation");
    if (json_is_number(r)) return json_number_value(r);
  }
  return 0;
}

/* ---- calling the functions ---- */

static media_clip_opts opts(double start, double end, media_clip_mode mode) {
  return (media_clip_opts){
      .start_us = llround(start * 1e6), .end_us = llround(end * 1e6), .mode = mode};
}

static json_t *clip_ok(const char *src, const char *dst, double start, double end,
                       media_clip_mode mode) {
  media_clip_opts o = opts(start, end, mode);
  json_t *r = NULL;
  int rc = media_clip(fx(src), fx(dst), &o, NULL, &r);
  if (rc != 0)
    fail_msg("media_clip(%s, %.3f, %.3f): %s: %s", src, start, end, cu_errname(rc), cu_errmsg());
  assert_true(json_is_object(r));
  return r;
}

static int clip_fails(const char *src, double start, double end, media_clip_mode mode) {
  media_clip_opts o = opts(start, end, mode);
  json_t *r = NULL;
  unlink(fx("never.mp4"));
  int rc = media_clip(fx(src), fx("never.mp4"), &o, NULL, &r);
  assert_true(rc < 0);
  assert_null(r);
  assert_true(strlen(cu_errmsg()) > 10);
  return rc;
}

static json_t *stream_at(const json_t *r, size_t i) {
  json_t *s = json_array_get(json_object_get(r, "streams"), i);
  if (!json_is_object(s)) fail_msg("the report has no stream %zu", i);
  return s;
}

static bool near(double a, double b, double eps) {
  return fabs(a - b) <= eps;
}

/* ---- copy ---- */

static void test_media_clip__copy_starts_on_the_keyframe_before_start(void **state) {
  json_t *r = clip_ok("gop2.mp4", "copy.mp4", 3.1, 5.0, MEDIA_CLIP_COPY);
  assert_string_equal(str(r, "mode"), "copy");
  assert_true(near(real(r, "requested_start_s"), 3.1, 1e-9));
  assert_true(near(real(r, "requested_end_s"), 5.0, 1e-9));
  assert_true(near(real(r, "actual_start_s"), 2.0, 1e-6));
  assert_false(cu_json_bool(r, "end_clamped", true));
  assert_true(near(real(r, "recording_duration_s"), SECONDS, 0.05));
  /* To 5.0 s, and a frame past it at most per B-frame reference kept. */
  double end = real(r, "actual_end_s");
  assert_true(end >= 5.0 && end <= 5.0 + 3.0 / FPS + 1e-6);
  assert_true(near(real(r, "duration_s"), end - 2.0, 1e-6));

  json_t *v = stream_at(r, 0), *a = stream_at(r, 1), *p = json_object_get(r, "params");
  assert_string_equal(str(v, "type"), "video");
  assert_string_equal(str(v, "codec"), "h264");
  assert_int_equal(num(v, "index_in_original"), 0);
  assert_string_equal(str(a, "type"), "audio");
  assert_string_equal(str(a, "codec"), "aac");
  assert_int_equal(num(a, "index_in_original"), 1);
  assert_int_equal(num(v, "packets"), num(r, "video_frames"));
  assert_true(num(v, "packets") >= 90 && num(v, "packets") <= 93);
  assert_true(near(real(v, "start_s"), 0, 1e-9));
  assert_null(json_object_get(r, "left_out"));
  assert_string_equal(str(p, "container"), "mp4");
  assert_true(cu_json_bool(p, "faststart", false));

  json_t *check = json_object_get(r, "check");
  assert_string_equal(str(check, "method"), "packets");
  assert_true(cu_json_bool(check, "identical", false));
  assert_int_equal(num(check, "packets_checked"), num(v, "packets") + num(a, "packets"));
  assert_null(json_object_get(check, "normalised"));

  assert_faststart(fx("copy.mp4"), NULL);
  size_t n = 0;
  double *t = frame_times(fx("copy.mp4"), &n);
  assert_int_equal(n, num(v, "packets"));
  assert_true(near(t[0], 0, 1e-6));
  free(t);
  assert_decodes_clean(fx("copy.mp4"));
  json_decref(r);
}

/* The clip's packets, read by ffprobe, are the original's from the
 * keyframe on: the same bytes, in the same order. */
static void test_media_clip__copy_packets_are_the_originals(void **state) {
  json_t *r = clip_ok("gop2.mp4", "same.mp4", 3.1, 5.0, MEDIA_CLIP_COPY);
  const char *sel[] = {"v:0", "a:0"};
  for (int k = 0; k < 2; k++) {
    json_t *o = packets(fx("gop2.mp4"), sel[k]), *c = packets(fx("same.mp4"), sel[k]), *x;
    size_t i, i0 = SIZE_MAX, nc = json_array_size(c);
    assert_int_equal(nc, num(stream_at(r, (size_t)k), "packets"));
    /* Video: the keyframe at 2 s; audio: the first packet from 2 s on. */
    json_array_foreach(o, i, x) {
      double pt = snum(x, "pts_time");
      if (i0 == SIZE_MAX && pt >= 2.0 - 1e-6 && (k == 1 || strchr(str(x, "flags"), 'K'))) i0 = i;
    }
    assert_true(i0 != SIZE_MAX);
    assert_true(i0 + nc <= json_array_size(o));
    for (i = 0; i < nc; i++) {
      const char *want = str(json_array_get(o, i0 + i), "data_hash");
      const char *got = str(json_array_get(c, i), "data_hash");
      if (strcmp(want, got))
        fail_msg("%s packet %zu of the clip is not the original's %zu", sel[k], i, i0 + i);
    }
    /* Nothing of the range is left out: every original packet in [2, 5)
     * after the start is in the clip. */
    json_array_foreach(o, i, x) {
      double pt = snum(x, "pts_time");
      if (i >= i0 && pt < 5.0 - 1e-6 && i >= i0 + nc)
        fail_msg("%s packet %zu (%.3f s) is missing", sel[k], i, pt);
    }
    json_decref(o);
    json_decref(c);
  }
  json_decref(r);
}

/* MPEG-TS carries H.264 as Annex B and AAC in ADTS; MP4 cannot, so the
 * muxer repacks them, and the check compares what the packing holds. */
static void test_media_clip__copy_from_mpegts_compares_the_payload(void **state) {
  json_t *r = clip_ok("gop2.ts", "ts.mp4", 3.1, 5.0, MEDIA_CLIP_COPY), *x = NULL;
  json_t *check = json_object_get(r, "check"), *norm = json_object_get(check, "normalised");
  assert_true(cu_json_bool(check, "identical", false));
  assert_string_equal(str(norm, "0"), "annex_b_to_length_prefixed");
  assert_string_equal(str(norm, "1"), "adts_header_removed");
  /* The stream starts 1.4 s in (MPEG-TS): clip times count from there, so
   * the keyframe of 2 s is near 2 s still. */
  assert_true(near(real(r, "actual_start_s"), 2.0, 0.05));
  assert_faststart(fx("ts.mp4"), NULL);
  assert_decodes_clean(fx("ts.mp4"));
  /* Its pictures are the MP4 original's, frame for frame. */
  assert_int_equal(media_clip_check_frames(fx("ts.mp4"), fx("gop2.fh"), NULL, &x), 0);
  assert_int_equal(num(x, "frames_checked"), num(r, "video_frames"));
  json_decref(x);
  json_decref(r);
}

/* No duration to check the range against and no index to seek with: the
 * keyframe is found by reading, and a start past the end is still refused. */
static void test_media_clip__without_duration_or_index(void **state) {
  json_t *r = clip_ok("live.mkv", "live-clip.mp4", 3.1, 5.0, MEDIA_CLIP_COPY), *x = NULL;
  assert_true(near(real(r, "actual_start_s"), 2.0, 0.05));
  assert_null(json_object_get(r, "recording_duration_s"));
  assert_true(cu_json_bool(json_object_get(r, "check"), "identical", false));
  assert_int_equal(media_clip_check_frames(fx("live-clip.mp4"), fx("gop2.fh"), NULL, &x), 0);
  assert_int_equal(num(x, "first_original_frame"), 2 * FPS);
  json_decref(x);
  json_decref(r);
  assert_int_equal(clip_fails("live.mkv", 20, 30, MEDIA_CLIP_COPY), CU_EINVAL);
  assert_non_null(strstr(cu_errmsg(), "not inside the recording"));
}

static void test_media_clip__copy_keeps_rotation_and_pixel_shape(void **state) {
  const media_clip_mode modes[] = {MEDIA_CLIP_COPY, MEDIA_CLIP_EXACT};
  for (int m = 0; m < 2; m++) {
    json_t *r = clip_ok("rot.mp4", "rot-clip.mp4", 1.0, 2.0, modes[m]);
    json_t *s = streams_of(fx("rot-clip.mp4")), *v = stream_of_type(s, "video");
    assert_non_null(v);
    assert_true(near(fabs(rotation_of(v)), 90, 0.01));
    assert_string_equal(str(v, "sample_aspect_ratio"), "4:3");
    assert_int_equal(num(v, "width"), 320);
    assert_int_equal(num(v, "height"), 240);
    json_decref(s);
    json_decref(r);
  }
}

/* ---- exact ---- */

/* Frames of the original shown in [start, end). */
static size_t frames_between(const char *path, double start, double end) {
  size_t n = 0, k = 0;
  double *t = frame_times(path, &n);
  for (size_t i = 0; i < n; i++)
    if (t[i] >= start - 1e-6 && t[i] < end - 1e-6) k++;
  free(t);
  return k;
}

static void assert_exact(const char *dst, double start, double end) {
  json_t *r = clip_ok("gop2.mp4", dst, start, end, MEDIA_CLIP_EXACT);
  size_t want = frames_between(fx("gop2.mp4"), start, end), n = 0;
  double first = ceil(start * FPS - 1e-6) / FPS;
  assert_string_equal(str(r, "mode"), "exact");
  assert_true(near(real(r, "actual_start_s"), first, 1e-3));
  assert_true(near(real(r, "actual_end_s"), end, 1e-3));
  assert_int_equal(num(r, "video_frames"), (json_int_t)want);
  assert_true(num(r, "audio_frames") > 0);
  assert_int_equal(num(r, "decode_errors"), 0);

  double *t = frame_times(fx(dst), &n);
  assert_int_equal(n, want);
  assert_true(near(t[0], 0, 1e-9)); /* the first frame is at 0 */
  for (size_t i = 1; i < n; i++)
    assert_true(near(t[i] - t[i - 1], 1.0 / FPS, 1e-3));
  free(t);
  double d = duration_of(fx(dst));
  if (!near(d, end - start, 1.0 / FPS))
    fail_msg("%s lasts %.4f s, not %.4f s", dst, d, end - start);

  json_t *check = json_object_get(r, "check"), *p = json_object_get(r, "params");
  assert_string_equal(str(check, "method"), "none");
  assert_int_equal(num(check, "claimed_frames"), 0);
  assert_non_null(strstr(str(check, "reason"), "re-encoded"));
  assert_string_equal(str(p, "video"), "libx264");
  assert_int_equal(num(p, "crf"), 18);
  assert_string_equal(str(p, "preset"), "veryfast");
  assert_string_equal(str(p, "pix_fmt"), "yuv420p");
  assert_string_equal(str(p, "audio"), "aac");
  assert_string_equal(str(p, "audio_profile"), "LC");
  assert_int_equal(num(p, "audio_bitrate"), 192000);
  assert_string_equal(str(p, "container"), "mp4");

  json_t *s = streams_of(fx(dst)), *v = stream_of_type(s, "video"), *a = stream_of_type(s, "audio");
  assert_non_null(v);
  assert_non_null(a);
  assert_string_equal(str(v, "codec_name"), "h264");
  assert_string_equal(str(v, "pix_fmt"), "yuv420p");
  assert_int_equal(num(v, "width"), 320);
  assert_int_equal(num(v, "height"), 240);
  assert_string_equal(str(a, "codec_name"), "aac");
  assert_string_equal(str(a, "profile"), "LC");
  json_decref(s);
  assert_faststart(fx(dst), NULL);
  assert_decodes_clean(fx(dst));
  json_decref(r);
}

static void test_media_clip__exact_is_frame_accurate(void **state) {
  assert_exact("exact.mp4", 3.1, 5.0);   /* start on a frame */
  assert_exact("exact2.mp4", 3.11, 4.5); /* start between frames */
  assert_exact("exact3.mp4", 0, 1.0);    /* from the very start */
}

/* ---- audio alone ---- */

static void test_media_clip__audio_only(void **state) {
  json_t *r = clip_ok("audio.m4a", "audio-copy.mp4", 2.5, 4.0, MEDIA_CLIP_COPY);
  double aac = 1024.0 / 48000;
  assert_true(real(r, "actual_start_s") <= 2.5 + 1e-6 &&
              real(r, "actual_start_s") > 2.5 - aac - 1e-6);
  assert_int_equal(json_array_size(json_object_get(r, "streams")), 1);
  assert_string_equal(str(stream_at(r, 0), "type"), "audio");
  assert_int_equal(num(r, "video_frames"), 0);
  assert_true(cu_json_bool(json_object_get(r, "check"), "identical", false));
  json_t *s = streams_of(fx("audio-copy.mp4"));
  assert_int_equal(json_array_size(s), 1);
  assert_non_null(stream_of_type(s, "audio"));
  json_decref(s);
  assert_faststart(fx("audio-copy.mp4"), NULL);
  json_decref(r);

  r = clip_ok("audio.m4a", "audio-exact.m4a", 2.5, 4.0, MEDIA_CLIP_EXACT);
  assert_true(near(real(r, "actual_start_s"), 2.5, 1e-6));
  assert_true(near(real(r, "duration_s"), 1.5, 1e-3)); /* cut to the sample */
  json_t *p = json_object_get(r, "params");
  assert_string_equal(str(p, "container"), "ipod");
  assert_null(json_object_get(p, "video"));
  assert_int_equal(num(p, "audio_sample_rate"), 48000);
  assert_true(near(duration_of(fx("audio-exact.m4a")), 1.5, 0.01));
  assert_faststart(fx("audio-exact.m4a"), "M4A ");
  assert_decodes_clean(fx("audio-exact.m4a"));
  json_decref(r);
}

/* ---- refusals ---- */

static void test_media_clip__bad_ranges_are_invalid(void **state) {
  struct stat st;
  for (int m = 0; m < 2; m++) {
    media_clip_mode mode = m ? MEDIA_CLIP_EXACT : MEDIA_CLIP_COPY;
    assert_int_equal(clip_fails("gop2.mp4", SECONDS, SECONDS + 2, mode), CU_EINVAL);
    assert_non_null(strstr(cu_errmsg(), "lasts 6.0"));
    assert_int_equal(clip_fails("gop2.mp4", 60, 70, mode), CU_EINVAL);
    assert_non_null(strstr(cu_errmsg(), "lasts 6.0"));
    assert_int_equal(clip_fails("gop2.mp4", 3, 3, mode), CU_EINVAL);
    assert_non_null(strstr(cu_errmsg(), "must be after start"));
    assert_int_equal(clip_fails("gop2.mp4", 4, 2, mode), CU_EINVAL);
    assert_int_equal(clip_fails("gop2.mp4", -1, 2, mode), CU_EINVAL);
    assert_non_null(strstr(cu_errmsg(), "negative"));
    assert_int_equal(stat(fx("never.mp4"), &st), -1); /* nothing written */
  }
  /* An end past the end is moved to it, and the report says so. */
  json_t *r = clip_ok("gop2.mp4", "tail.mp4", 4.5, 100, MEDIA_CLIP_COPY);
  assert_true(cu_json_bool(r, "end_clamped", false));
  assert_true(near(real(r, "requested_end_s"), 100, 1e-9));
  assert_true(near(real(r, "actual_start_s"), 4.0, 1e-6));
  assert_true(near(real(r, "actual_end_s"), SECONDS, 0.05));
  json_decref(r);
}

static void test_media_clip__copy_refuses_what_mp4_cannot_carry(void **state) {
  const char *names[] = {"pcm.wav", "ffv1.mkv"};
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(clip_fails(names[i], 0.5, 1.5, MEDIA_CLIP_COPY), CU_EUNSUPPORTED);
    assert_non_null(strstr(cu_errmsg(), "mode=exact"));
    assert_non_null(strstr(cu_errmsg(), i ? "ffv1" : "pcm_s16le"));
  }
  /* Re-encoded, they clip. */
  json_t *r = clip_ok("pcm.wav", "pcm.m4a", 0.5, 1.5, MEDIA_CLIP_EXACT);
  assert_true(near(real(r, "duration_s"), 1.0, 1e-3));
  json_decref(r);
  r = clip_ok("ffv1.mkv", "ffv1.mp4", 0.5, 1.5, MEDIA_CLIP_EXACT);
  assert_int_equal(num(r, "video_frames"), 10);
  assert_decodes_clean(fx("ffv1.mp4"));
  json_decref(r);
}

static void test_media_clip__not_media_or_damaged(void **state) {
  assert_int_equal(clip_fails("notes.txt", 0, 1, MEDIA_CLIP_COPY), CU_EUNSUPPORTED);
  assert_int_equal(clip_fails("truncated.mp4", 0, 1, MEDIA_CLIP_COPY), CU_ECORRUPT);
  assert_int_equal(clip_fails("truncated.mp4", 0, 1, MEDIA_CLIP_EXACT), CU_ECORRUPT);
  assert_int_equal(clip_fails("no-such.mp4", 0, 1, MEDIA_CLIP_COPY), CU_ENOTFOUND);

  json_t *r = NULL;
  media_clip_opts o = opts(1, 2, MEDIA_CLIP_COPY), bad = o;
  assert_int_equal(media_clip(NULL, fx("x.mp4"), &o, NULL, &r), CU_EINVAL);
  assert_int_equal(media_clip(fx("gop2.mp4"), NULL, &o, NULL, &r), CU_EINVAL);
  assert_int_equal(media_clip(fx("gop2.mp4"), fx("x.mp4"), NULL, NULL, &r), CU_EINVAL);
  assert_int_equal(media_clip(fx("gop2.mp4"), fx("x.mp4"), &o, NULL, NULL), CU_EINVAL);
  bad.mode = (media_clip_mode)7;
  assert_int_equal(media_clip(fx("gop2.mp4"), fx("x.mp4"), &bad, NULL, &r), CU_EINVAL);
  bad = o, bad.threads = -1;
  assert_int_equal(media_clip(fx("gop2.mp4"), fx("x.mp4"), &bad, NULL, &r), CU_EINVAL);
  assert_null(r);
}

/* ---- the frame check ---- */

static void test_media_clip__check_frames_passes_on_a_copy_clip(void **state) {
  json_t *r = clip_ok("gop2.mp4", "checked.mp4", 3.1, 5.0, MEDIA_CLIP_COPY), *x = NULL, *fr = NULL;
  json_int_t n = num(r, "video_frames");
  assert_int_equal(media_clip_check_frames(fx("checked.mp4"), fx("gop2.fh"), NULL, &x), 0);
  assert_string_equal(str(x, "method"), "framehash");
  assert_true(cu_json_bool(x, "identical", false));
  assert_int_equal(num(x, "frames_checked"), n);
  assert_int_equal(num(x, "first_original_frame"), 2 * FPS);
  assert_int_equal(num(x, "last_original_frame"), 2 * FPS + n - 1);
  assert_int_equal(num(x, "original_frames"), SECONDS * FPS);
  assert_int_equal(num(x, "framehash_stream"), 0);
  assert_true(near(real(x, "first_original_pts_s"), 2.0, 1e-6));
  json_decref(x);
  /* The same with the frame hashes Custos makes itself. */
  assert_int_equal(media_framehash(fx("gop2.mp4"), fx("gop2-custos.fh"), NULL, &fr), 0);
  assert_int_equal(media_clip_check_frames(fx("checked.mp4"), fx("gop2-custos.fh"), NULL, &x), 0);
  assert_int_equal(num(x, "first_original_frame"), 2 * FPS);
  json_decref(x);
  json_decref(fr);
  json_decref(r);
}

/* Twenty identical grey frames, then moving ones: a clip starting at the
 * keyframe of 1 s is placed at frame 10, not at the first grey frame. */
static void test_media_clip__check_frames_is_not_fooled_by_repeated_frames(void **state) {
  json_t *r = clip_ok("still.mp4", "still-clip.mp4", 1.5, 3.0, MEDIA_CLIP_COPY), *x = NULL;
  assert_true(near(real(r, "actual_start_s"), 1.0, 1e-6));
  assert_int_equal(media_clip_check_frames(fx("still-clip.mp4"), fx("still.fh"), NULL, &x), 0);
  assert_int_equal(num(x, "first_original_frame"), 10);
  assert_int_equal(num(x, "frames_checked"), num(r, "video_frames"));
  json_decref(x);
  json_decref(r);
}

/* Line for video frame `frame` of a framehash file gets another hash. */
static void tamper(const char *src, const char *dst, int frame) {
  size_t n = 0;
  char *d = read_all(src, &n), *line = d;
  int seen = 0;
  assert_non_null(d);
  while (line && *line) {
    if (line[0] == '0' && line[1] == ',' && seen++ == frame) {
      char *nl = strchr(line, '\n');
      assert_non_null(nl);
      nl[-1] = nl[-1] == 'a' ? 'b' : 'a'; /* the hash's last digit */
      break;
    }
    line = strchr(line, '\n');
    if (line) line++;
  }
  assert_int_equal(seen, frame + 1);
  assert_int_equal(write_bytes(dst, d, n), 0);
  free(d);
}

static void test_media_clip__check_frames_names_the_first_difference(void **state) {
  json_t *r = clip_ok("gop2.mp4", "tampered.mp4", 3.1, 5.0, MEDIA_CLIP_COPY), *x = NULL;
  tamper(fx("gop2.fh"), fx("tampered.fh"), 2 * FPS + 10);
  assert_int_equal(media_clip_check_frames(fx("tampered.mp4"), fx("tampered.fh"), NULL, &x),
                   CU_ECORRUPT);
  assert_null(x);
  assert_non_null(strstr(cu_errmsg(), "frame 10 "));
  assert_non_null(strstr(cu_errmsg(), "frame 70 "));
  /* A damaged hash is a damaged file. */
  static const char bad[] =
      "#hash: SHA256\n#tb 0: 1/30\n#media_type 0: video\n0, 0, 0, 1, 10, xyz\n";
  assert_int_equal(write_bytes(fx("bad.fh"), bad, sizeof bad - 1), 0);
  assert_int_equal(media_clip_check_frames(fx("tampered.mp4"), fx("bad.fh"), NULL, &x),
                   CU_ECORRUPT);
  assert_non_null(strstr(cu_errmsg(), "line 4"));
  json_decref(r);
}

static void test_media_clip__check_frames_fails_on_another_encode(void **state) {
  json_t *r = clip_ok("gop2.mp4", "exact-check.mp4", 3.1, 5.0, MEDIA_CLIP_EXACT), *x = NULL;
  assert_int_equal(media_clip_check_frames(fx("exact-check.mp4"), fx("gop2.fh"), NULL, &x),
                   CU_ECORRUPT);
  assert_null(x);
  assert_non_null(strstr(cu_errmsg(), "frame 0"));
  json_decref(r);
  r = clip_ok("other.mp4", "other-clip.mp4", 3.1, 5.0, MEDIA_CLIP_COPY);
  assert_int_equal(media_clip_check_frames(fx("other-clip.mp4"), fx("gop2.fh"), NULL, &x),
                   CU_ECORRUPT);
  assert_null(x);
  json_decref(r);
}

static void test_media_clip__check_frames_needs_video_and_sha256(void **state) {
  json_t *r = clip_ok("audio.m4a", "audio-only.mp4", 1, 2, MEDIA_CLIP_COPY), *x = NULL;
  assert_int_equal(media_clip_check_frames(fx("audio-only.mp4"), fx("audio.fh"), NULL, &x),
                   CU_EUNSUPPORTED);
  assert_non_null(strstr(cu_errmsg(), "no video"));
  json_decref(r);
  r = clip_ok("gop2.mp4", "for-md5.mp4", 1, 2, MEDIA_CLIP_COPY);
  assert_int_equal(media_clip_check_frames(fx("for-md5.mp4"), fx("gop2-md5.fh"), NULL, &x),
                   CU_EUNSUPPORTED);
  assert_non_null(strstr(cu_errmsg(), "SHA-256"));
  assert_int_equal(media_clip_check_frames(fx("for-md5.mp4"), fx("audio.fh"), NULL, &x),
                   CU_EUNSUPPORTED);
  assert_non_null(strstr(cu_errmsg(), "no video stream"));
  assert_int_equal(media_clip_check_frames(fx("for-md5.mp4"), fx("no-such.fh"), NULL, &x),
                   CU_ENOTFOUND);
  assert_int_equal(media_clip_check_frames(NULL, fx("gop2.fh"), NULL, &x), CU_EINVAL);
  assert_null(x);
  json_decref(r);
}

/* ---- control ---- */

typedef struct {
  atomic_int cancel;
  int calls;
  double last;
  bool out_of_range, cancel_on_first;
} watch;

static void on_progress(void *ud, double f) {
  watch *w = ud;
  w->calls++;
  if (f < 0 || f > 1) w->out_of_range = true;
  w->last = f;
  if (w->cancel_on_first) atomic_store(&w->cancel, 1);
}

static void test_media_clip__progress_cancel_and_deadline(void **state) {
  for (int m = 0; m < 2; m++) {
    media_clip_opts o = opts(0.5, 5.5, m ? MEDIA_CLIP_EXACT : MEDIA_CLIP_COPY);
    watch w = {0};
    media_ctl ctl = {.progress = on_progress, .progress_ud = &w, .cancel = &w.cancel};
    json_t *r = NULL;
    assert_int_equal(media_clip(fx("gop2.mp4"), fx("progress.mp4"), &o, &ctl, &r), 0);
    assert_true(w.calls >= 1);
    assert_false(w.out_of_range);
    assert_true(w.last == 1.0);
    json_decref(r);
    r = NULL;

    watch c = {.cancel = 1};
    media_ctl cctl = {.cancel = &c.cancel};
    assert_int_equal(media_clip(fx("gop2.mp4"), fx("cancelled.mp4"), &o, &cctl, &r), CU_EIO);
    assert_null(r);
    assert_non_null(strstr(cu_errmsg(), "cancelled"));

    /* While it runs: the first progress report cancels. */
    watch c2 = {.cancel_on_first = true};
    media_ctl c2ctl = {.cancel = &c2.cancel, .progress = on_progress, .progress_ud = &c2};
    assert_int_equal(media_clip(fx("gop2.mp4"), fx("cancelled.mp4"), &o, &c2ctl, &r), CU_EIO);
    assert_null(r);
    assert_non_null(strstr(cu_errmsg(), "cancelled"));

    media_ctl late = {.deadline_us = cu_mono_us() - 1};
    assert_int_equal(media_clip(fx("gop2.mp4"), fx("late.mp4"), &o, &late, &r), CU_EIO);
    assert_null(r);
    assert_non_null(strstr(cu_errmsg(), "time limit"));
  }
  json_t *r = clip_ok("gop2.mp4", "to-check.mp4", 0.5, 5.5, MEDIA_CLIP_COPY), *x = NULL;
  watch c = {.cancel = 1};
  media_ctl cctl = {.cancel = &c.cancel};
  assert_int_equal(media_clip_check_frames(fx("to-check.mp4"), fx("gop2.fh"), &cctl, &x), CU_EIO);
  assert_null(x);
  assert_non_null(strstr(cu_errmsg(), "cancelled"));
  json_decref(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_media_clip__copy_starts_on_the_keyframe_before_start),
      cmocka_unit_test(test_media_clip__copy_packets_are_the_originals),
      cmocka_unit_test(test_media_clip__copy_from_mpegts_compares_the_payload),
      cmocka_unit_test(test_media_clip__without_duration_or_index),
      cmocka_unit_test(test_media_clip__copy_keeps_rotation_and_pixel_shape),
      cmocka_unit_test(test_media_clip__exact_is_frame_accurate),
      cmocka_unit_test(test_media_clip__audio_only),
      cmocka_unit_test(test_media_clip__bad_ranges_are_invalid),
      cmocka_unit_test(test_media_clip__copy_refuses_what_mp4_cannot_carry),
      cmocka_unit_test(test_media_clip__not_media_or_damaged),
      cmocka_unit_test(test_media_clip__check_frames_passes_on_a_copy_clip),
      cmocka_unit_test(test_media_clip__check_frames_is_not_fooled_by_repeated_frames),
      cmocka_unit_test(test_media_clip__check_frames_names_the_first_difference),
      cmocka_unit_test(test_media_clip__check_frames_fails_on_another_encode),
      cmocka_unit_test(test_media_clip__check_frames_needs_video_and_sha256),
      cmocka_unit_test(test_media_clip__progress_cancel_and_deadline),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
