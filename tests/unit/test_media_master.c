/* media_master and media_check_lossless against small files made by the
 * ffmpeg CLI at test time, in a temporary directory under $CUSTOS_TEST_TMP
 * (else /tmp) removed at the end. What ffprobe and ffmpeg say about the
 * master is the judge, not our own reading of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "hash.h"
#include "hex.h"
#include "json.h"
#include "framehash.h"
#include "master.h"
#include "timeu.h"
#include "media_fixture.h"
#include "banned.h"

#define LAVFI_V(spec) "-f", "lavfi", "-i", spec
#define X264 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"

/* Frames of the long clip for the check's queue (CHECK_QUEUE in master.c
 * is 8192 per stream): the copy keeps LONG_KEPT of them. */
enum { LONG_FRAMES = 8400, LONG_KEPT = 100 };

static int make_fixtures(void) {
  static unsigned char rnd[65536];
  char long_spec[96], kept[16];
  int rc = 0;
  snprintf(long_spec, sizeof long_spec, "testsrc=size=16x16:rate=1000:duration=%d.%03d",
           LONG_FRAMES / 1000, LONG_FRAMES % 1000);
  snprintf(kept, sizeof kept, "%d", LONG_KEPT);
  /* H.264 + AAC in MP4 (moov at the end), with container and language tags. */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=30:duration=1"),
               LAVFI_V("sine=frequency=440:sample_rate=48000:duration=1"), X264, "-c:a", "aac",
               "-ac", "2", "-metadata", "title=Shift 12", "-metadata", "comment=dock camera",
               "-metadata:s:v:0", "language=eng", "-metadata:s:a:0", "language=eng", fx("main.mp4"),
               NULL);
  /* Four closed GOPs with B-frames: the check decodes the master in segments. */
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=25:duration=4"),
               LAVFI_V("sine=frequency=440:sample_rate=48000:duration=4"), "-c:v", "libx264", "-preset",
               "veryfast", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac", fx("gops.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"),
               LAVFI_V("sine=sample_rate=48000:duration=1"), "-c:v", "mpeg2video", "-c:a", "mp2",
               fx("mpeg2.ts"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"),
               LAVFI_V("sine=sample_rate=48000:duration=1"), "-c:v", "mpeg2video", "-c:a", "mp2",
               "-output_ts_offset", "1000", fx("mpeg2_late.ts"), NULL);
  /* 16-bit samples in a codec not on the allow-list: IMA ADPCM in WAV. */
  rc |= ffmpeg(LAVFI_V("sine=sample_rate=22050:duration=1"), "-ac", "2", "-c:a", "adpcm_ima_wav",
               fx("adpcm.wav"), NULL);
  /* Subtitles alone: SubRip text. */
  static const char srt[] = "1\n00:00:00,000 --> 00:00:01,000\nUnit 12 at the dock.\n\n";
  rc |= write_bytes(fx("notes.srt"), srt, sizeof srt - 1);
  /* Float samples in a codec Matroska cannot carry: WMA in ASF (a CCTV export). */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"),
               LAVFI_V("sine=sample_rate=44100:duration=1"), "-c:v", "wmv2", "-c:a", "wmav2",
               fx("cctv.wmv"), NULL);
  /* A phone-style clip: rotation on the MP4 output. */
  rc |= ffmpeg("-i", fx("main.mp4"), "-c", "copy", "-metadata:s:v", "rotate=90", fx("rotated.mp4"),
               NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=30:duration=1"), "-vf",
               "select='not(eq(mod(n\\,4)\\,1))',settb=1/1000,setpts='PTS+eq(mod(N\\,3)\\,0)*21'",
               "-fps_mode", "vfr", X264, fx("vfr.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"),
               LAVFI_V("sine=sample_rate=44100:duration=1"), "-c:v", "mjpeg", "-pix_fmt", "yuvj420p",
               "-c:a", "pcm_s16le", fx("mjpeg.avi"), NULL);
  rc |= ffmpeg(LAVFI_V("sine=frequency=300:sample_rate=8000:duration=1"), "-c:a", "pcm_s16le",
               fx("s16.wav"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=3840x2160:rate=30:duration=0.5"), "-c:v", "libx265", "-preset",
               "ultrafast", "-x265-params", "log-level=error", fx("hevc4k.mp4"), NULL);
  /* The check on its own: two encodes of one source, copies. */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=30:duration=1"), X264, "-crf", "18",
               fx("crf18.mp4"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=30:duration=1"), X264, "-crf", "30",
               fx("crf30.mp4"), NULL);
  rc |= ffmpeg("-i", fx("main.mp4"), "-c", "copy", fx("main_copy.mkv"), NULL);
  rc |= ffmpeg("-i", fx("main.mp4"), "-map", "0:v", "-frames:v", "29", "-c", "copy",
               fx("one_short.mkv"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=30:duration=1"),
               LAVFI_V("sine=sample_rate=48000:duration=1"), X264, "-c:a", "aac", "-movflags",
               "+faststart", "-max_interleave_delta", "0", fx("faststart.mp4"), NULL);
  rc |= ffmpeg("-i", fx("faststart.mp4"), "-c", "copy", fx("faststart_copy.mkv"), NULL);
  rc |= ffmpeg(LAVFI_V(long_spec), X264, fx("long.mp4"), NULL);
  rc |= ffmpeg("-i", fx("long.mp4"), "-frames:v", kept, "-c", "copy", fx("long_kept.mkv"), NULL);
  /* Formats outside the allow-list that the ffmpeg CLI turns into FFV1 or
   * copies into Matroska without trouble: an old phone's H.263 in 3GP
   * (CIF, whose bitstream says 12:11 while the container says 1:1), PAL DV
   * in AVI (16:15 against 1:1), ProRes 4444 with alpha (12-bit, fourcc
   * ap4h). */
  rc |= ffmpeg(LAVFI_V("testsrc=size=352x288:rate=15:duration=1"), "-c:v", "h263", fx("phone.3gp"),
               NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=720x576:rate=25:duration=0.4"), "-c:v", "dvvideo", "-pix_fmt",
               "yuv420p", fx("dv.avi"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=0.4"), "-c:v", "prores_ks",
               "-profile:v", "4", "-pix_fmt", "yuva444p10le", fx("prores4444.mov"), NULL);
  /* MPEG-TS recordings cut together (cat), the second part at another
   * resolution. */
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"), "-c:v", "mpeg2video",
               fx("res_small.ts"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=640x480:rate=25:duration=1"), "-c:v", "mpeg2video",
               "-output_ts_offset", "1", fx("res_big.ts"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=640x480:rate=25:duration=1"), "-c:v", "mpeg2video",
               fx("res_big_first.ts"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc=size=320x240:rate=25:duration=1"), "-c:v", "mpeg2video",
               "-output_ts_offset", "1", fx("res_small_second.ts"), NULL);
  /* Screen recordings and capture cards: RGB in QuickTime Animation and in
   * PNG with alpha, raw BGR and raw YUYV in AVI; FFV1 takes none of these
   * pixel formats as they are. */
  rc |= ffmpeg(LAVFI_V("testsrc2=size=160x120:rate=10:duration=0.5"), "-c:v", "qtrle", fx("qtrle.mov"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=160x120:rate=10:duration=0.5"), "-c:v", "png", "-pix_fmt", "rgba",
               fx("rgba_png.mov"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=160x120:rate=10:duration=0.5"), "-c:v", "rawvideo", "-pix_fmt",
               "bgr24", fx("bgr24.avi"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=160x120:rate=10:duration=0.5"), "-c:v", "rawvideo", "-pix_fmt",
               "yuyv422", fx("yuyv.avi"), NULL);
  /* DOSBox's ZMBV decodes to bgr0 with 255 in the padding byte; Microsoft
   * Video 1 to rgb555, which no FFV1 format holds both ways. */
  rc |= ffmpeg(LAVFI_V("testsrc2=size=160x120:rate=10:duration=0.5"), "-c:v", "zmbv", fx("zmbv.avi"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=160x120:rate=10:duration=0.5"), "-c:v", "msvideo1",
               fx("msvideo1.avi"), NULL);
  if (make_picture_fixtures()) return -1;
  /* Raw H.264 as CCTV recorders export it: no container, no timestamps;
   * without B-frames and with. */
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=30:duration=2"), X264, "-bf", "0", "-f", "h264",
               fx("raw.h264"), NULL);
  rc |= ffmpeg(LAVFI_V("testsrc2=size=320x240:rate=30:duration=2"), "-c:v", "libx264", "-preset",
               "veryfast", "-pix_fmt", "yuv420p", "-f", "h264", fx("raw_bf.h264"), NULL);
  if (rc) return -1;

  if (cat2(fx("mpeg2.ts"), fx("mpeg2_late.ts"), fx("discont.ts")) ||
      cat2(fx("res_small.ts"), fx("res_big.ts"), fx("small_then_big.ts")) ||
      cat2(fx("res_big_first.ts"), fx("res_small_second.ts"), fx("big_then_small.ts")))
    rc = -1;
  if (copy_prefix(fx("main.mp4"), fx("no_moov.mp4"), 60)) rc = -1;
  if (write_bytes(fx("empty.bin"), "", 0)) rc = -1;
  noise(rnd, sizeof rnd, 777);
  if (write_bytes(fx("random.bin"), rnd, sizeof rnd)) rc = -1;
  return rc;
}

static int group_teardown(void **state) { return media_fixture_teardown(); }

static int group_setup(void **state) { return media_fixture_setup("custos-master", make_fixtures); }

/* ---- helpers ---------------------------------------------------------- */

/* A tag of an ffprobe tags object, whatever the case of its name (the
 * Matroska muxer writes most names in capitals). */
static const char *tag(const json_t *tags, const char *name) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)tags, k, v) if (!strcasecmp(k, name)) return json_string_value(v);
  return NULL;
}

/* media_master on name -> name.mkv, asserting success. */
static json_t *master(const char *name, const char *sha) {
  char out[PATH_MAX];
  json_t *rep = NULL;
  snprintf(out, sizeof out, "%s/%s.mkv", tmpdir, name);
  media_master_opts opts = {.threads = 2};
  int rc = media_master(fx(name), out, sha, &opts, NULL, &rep);
  if (rc != 0) fail_msg("media_master(%s): %s: %s", name, cu_errname(rc), cu_errmsg());
  assert_non_null(rep);
  return rep;
}

static const char *out_of(const char *name) {
  static char out[4][PATH_MAX];
  static unsigned next;
  char *b = out[next++ % 4];
  snprintf(b, PATH_MAX, "%s/%s.mkv", tmpdir, name);
  return b;
}

/* The report's stream entry for the file's stream index. */
static json_t *rstream(const json_t *rep, int index) {
  json_t *s;
  size_t i;
  json_array_foreach(json_object_get(rep, "streams"), i, s) if (num(s, "index") == index) return s;
  fail_msg("the report has no stream %d", index);
  return NULL;
}

static void assert_action(const json_t *rep, int index, const char *action) {
  const char *a = str(rstream(rep, index), "action");
  if (strcmp(a, action)) fail_msg("stream %d: action %s, want %s", index, a, action);
}

static void assert_identical(const json_t *rep) {
  json_t *chk = json_object_get(rep, "check");
  assert_true(json_is_object(chk));
  assert_string_equal(str(chk, "result"), "identical");
}

/* What ffprobe -count_frames says of the video stream index of file. */
static long counted_frames(const char *file, int index) {
  char sel[16];
  snprintf(sel, sizeof sel, "%d", index);
  json_t *j = ffprobe_json(file, "-count_frames", "-select_streams", sel, "-show_entries",
                           "stream=nb_read_frames", NULL);
  const char *n = cu_json_str(json_array_get(json_object_get(j, "streams"), 0), "nb_read_frames");
  long v = n ? strtol(n, NULL, 10) : -1;
  json_decref(j);
  if (v < 0) fail_msg("ffprobe could not count the frames of stream %d of %s", index, file);
  return v;
}

static void assert_video_frames(const json_t *rep, const char *src, int index) {
  char key[16];
  snprintf(key, sizeof key, "%d", index);
  json_int_t ours = num(json_object_get(json_object_get(rep, "check"), "video_frames"), key);
  long want = counted_frames(src, index);
  if (ours != want) fail_msg("check.video_frames[%s] is %lld, ffprobe counts %ld", key, (long long)ours, want);
  /* The master holds as many, by ffprobe's count. */
  long in_master = counted_frames(out_of(strrchr(src, '/') + 1), index);
  if (in_master != want) fail_msg("the master of %s has %ld frames, the source %ld", src, in_master, want);
}

/* The SHA-256 of stream index of file as ffmpeg writes it in s16le. */
static void s16_sha256(const char *file, int index, char hex[65]) {
  char map[16], raw[PATH_MAX];
  snprintf(map, sizeof map, "0:%d", index);
  snprintf(raw, sizeof raw, "%s.%d.s16", file, index);
  assert_int_equal(ffmpeg("-i", file, "-map", map, "-f", "s16le", raw, NULL), 0);
  assert_int_equal(cu_sha256_file(raw, hex, NULL), 0);
}

static json_t *probe_streams(const char *file) {
  json_t *j = ffprobe_json(file, "-show_format", "-show_streams", NULL);
  if (!j) fail_msg("ffprobe cannot read %s", file);
  return j;
}

/* ---- media_master ----------------------------------------------------- */

static void test_media_master__h264_aac_mp4(void **state) {
  char sha[65];
  assert_int_equal(cu_sha256_file(fx("main.mp4"), sha, NULL), 0);
  json_t *rep = master("main.mp4", sha);
  assert_action(rep, 0, "copy");
  assert_action(rep, 1, "copy");
  assert_string_equal(str(json_object_get(rep, "params"), "container"), "matroska");
  assert_identical(rep);
  json_t *chk = json_object_get(rep, "check");
  assert_int_equal(num(json_object_get(chk, "video_frames"), "0"), counted_frames(fx("main.mp4"), 0));
  /* AAC in MP4 marks 1024 samples of encoder delay; Matroska keeps them. */
  json_t *want = json_pack("{s:i}", "1", 1024);
  if (!json_equal(json_object_get(chk, "priming_kept"), want)) {
    char *got = json_dumps(json_object_get(chk, "priming_kept"), JSON_COMPACT);
    fail_msg("priming_kept is %s, want {\"1\":1024}", got ? got : "(none)");
  }
  json_decref(want);
  assert_true(cu_is_sha256_hex(str(json_object_get(chk, "audio_sha256"), "1")));
  assert_true(json_is_array(json_object_get(rep, "timestamp_corrections")));
  assert_int_equal(json_array_size(json_object_get(rep, "timestamp_corrections")), 0);
  assert_int_equal(num(json_object_get(rep, "decode_errors"), "packets_failed"), 0);

  const char *mkv = out_of("main.mp4");
  assert_decodes_clean(mkv);
  json_t *p = probe_streams(mkv), *ftags = json_object_get(json_object_get(p, "format"), "tags");
  assert_string_equal(str(json_object_get(p, "format"), "format_name"), "matroska,webm");
  const char *v = tag(ftags, "CUSTOS_SOURCE_SHA256");
  assert_non_null(v);
  assert_string_equal(v, sha);
  /* The source's container tags come along. */
  assert_non_null(tag(ftags, "title"));
  assert_string_equal(tag(ftags, "title"), "Shift 12");
  assert_non_null(tag(ftags, "comment"));
  assert_string_equal(tag(ftags, "comment"), "dock camera");
  json_t *streams = json_object_get(p, "streams");
  assert_int_equal(json_array_size(streams), 2);
  assert_string_equal(str(json_array_get(streams, 0), "codec_name"), "h264");
  assert_string_equal(str(json_array_get(streams, 1), "codec_name"), "aac");
  for (size_t i = 0; i < 2; i++) {
    const char *lang = tag(json_object_get(json_array_get(streams, i), "tags"), "language");
    if (!lang || strcmp(lang, "eng")) fail_msg("stream %zu: language %s, want eng", i, lang ? lang : "(none)");
  }
  json_decref(p);
  json_decref(rep);
}

static void test_media_master__mpeg2_ts_becomes_ffv1(void **state) {
  json_t *rep = master("mpeg2.ts", NULL);
  assert_action(rep, 0, "ffv1");
  /* MP2 decodes to float samples: FLAC cannot hold them, so a copy. */
  assert_action(rep, 1, "copy");
  const char *why = cu_json_str(rstream(rep, 1), "reason");
  assert_non_null(why);
  assert_true(strlen(why) > 0);
  assert_null(json_object_get(rstream(rep, 0), "reason"));
  json_t *ffv1 = json_object_get(json_object_get(rep, "params"), "ffv1");
  assert_true(json_is_object(ffv1));
  assert_int_equal(num(ffv1, "level"), 3);
  assert_int_equal(num(ffv1, "g"), 1);
  assert_int_equal(num(ffv1, "slicecrc"), 1);
  assert_identical(rep);
  assert_int_equal(num(json_object_get(json_object_get(rep, "check"), "video_frames"), "0"),
                   counted_frames(fx("mpeg2.ts"), 0));

  const char *mkv = out_of("mpeg2.ts");
  json_t *p = probe_streams(mkv), *streams = json_object_get(p, "streams");
  assert_string_equal(str(json_array_get(streams, 0), "codec_name"), "ffv1");
  assert_string_equal(str(json_array_get(streams, 1), "codec_name"), "mp2");
  json_decref(p);
  /* What the FFV1 decoder itself reads from the stream: version 3, slice
   * CRCs (ec:1), every frame intra. */
  const char *argv[] = {"ffmpeg", "-nostdin", "-v", "debug", "-debug", "pict", "-i", mkv, "-map",
                        "0:v", "-frames:v", "1", "-f", "null", "-", NULL};
  char *out = NULL;
  assert_int_equal(run(argv, &out, true), 0);
  assert_non_null(out);
  if (!strstr(out, "global: ver:3") || !strstr(out, "ec:1") || !strstr(out, "intra:1"))
    fail_msg("the FFV1 stream is not version 3 with slice CRCs, all intra");
  free(out);
  json_t *pk = ffprobe_json(mkv, "-select_streams", "v:0", "-show_entries", "packet=flags", NULL), *x;
  size_t i;
  assert_true(json_array_size(json_object_get(pk, "packets")) == 25);
  json_array_foreach(json_object_get(pk, "packets"), i, x) assert_int_equal(str(x, "flags")[0], 'K');
  json_decref(pk);
  assert_decodes_clean(mkv);
  json_decref(rep);
}

static void test_media_master__adpcm_becomes_flac(void **state) {
  json_t *rep = master("adpcm.wav", NULL);
  assert_action(rep, 0, "flac");
  assert_true(json_is_object(json_object_get(json_object_get(rep, "params"), "flac")));
  assert_identical(rep);
  json_t *p = probe_streams(out_of("adpcm.wav"));
  assert_string_equal(str(json_array_get(json_object_get(p, "streams"), 0), "codec_name"), "flac");
  json_decref(p);
  /* The decoded samples are the source's, as ffmpeg itself reads them. */
  char want[65];
  s16_sha256(fx("adpcm.wav"), 0, want);
  assert_string_equal(str(json_object_get(json_object_get(rep, "check"), "audio_sha256"), "0"), want);
  s16_sha256(out_of("adpcm.wav"), 0, want);
  assert_string_equal(str(json_object_get(json_object_get(rep, "check"), "audio_sha256"), "0"), want);
  assert_decodes_clean(out_of("adpcm.wav"));
  json_decref(rep);
}

/* The master against the original's frame hashes (media_framehash's file
 * and report): the check decodes only the master, and says so; a hash line
 * changed in the reference is a difference it names. */
static void check_against_frame_hashes(const char *name, int bad_frame, json_int_t segments) {
  char fh[PATH_MAX], bad[PATH_MAX], out[64], want[64];
  json_t *fr = NULL, *rep = NULL;
  snprintf(fh, sizeof fh, "%s/%s.fh", tmpdir, name);
  snprintf(bad, sizeof bad, "%s/%s-bad.fh", tmpdir, name);
  snprintf(out, sizeof out, "%s-ref.mp4", name);
  assert_int_equal(media_framehash(fx(name), fh, NULL, &fr), 0);
  media_reference ref = {fh, fr};
  media_master_opts opts = {.threads = 2, .reference = &ref};
  int rc = media_master(fx(name), out_of(out), NULL, &opts, NULL, &rep);
  if (rc) fail_msg("media_master with a reference: %s: %s", cu_errname(rc), cu_errmsg());
  assert_identical(rep);
  json_t *chk = json_object_get(rep, "check");
  assert_non_null(strstr(str(chk, "method"), "frame hashes"));
  /* Decoded in segments where the copy allows it (mdecode_par.c). */
  assert_int_equal(json_integer_value(json_object_get(chk, "video_segments")), segments);
  /* The same audio digest either way: the reference's is the original's. */
  json_t *two = master(name, NULL);
  assert_string_equal(str(json_object_get(chk, "audio_sha256"), "1"),
                      str(json_object_get(json_object_get(two, "check"), "audio_sha256"), "1"));
  assert_non_null(strstr(str(json_object_get(two, "check"), "method"), "side by side"));
  json_decref(two);
  json_decref(rep);
  rep = NULL;

  /* One video hash changed: line bad_frame + 1 for stream 0. */
  size_t n = 0;
  char *text = read_all(fh, &n);
  assert_non_null(text);
  int seen = 0;
  for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, "0, ", 3) || ++seen != bad_frame + 1) continue;
    char *end = strchr(l, '\n');
    end[-1] = end[-1] == '0' ? '1' : '0';
    break;
  }
  assert_int_equal(seen, bad_frame + 1);
  assert_int_equal(write_bytes(bad, text, n), 0);
  free(text);
  ref.path = bad;
  rc = media_master(fx(name), out_of(out), NULL, &opts, NULL, &rep);
  assert_int_equal(rc, CU_ECORRUPT);
  assert_null(rep);
  snprintf(want, sizeof want, "stream 0, frame %d", bad_frame);
  if (!strstr(cu_errmsg(), want)) fail_msg("the message does not name %s: %s", want, cu_errmsg());
  json_decref(fr);
}

static void test_media_master__check_against_frame_hashes(void **state) {
  /* One GOP: one segment (Matroska's index lists only keyframes, so the
   * cuts are looked for as the master is read). */
  check_against_frame_hashes("main.mp4", 10, 1);
}

/* In segments, a difference in the third GOP is found and named all the same. */
static void test_media_master__check_in_segments(void **state) {
  check_against_frame_hashes("gops.mp4", 61, 4);
}

/* A reference that misses frames (ffmpeg's frame-rate logic dropped some
 * lines) is not used: the original is decoded instead. */
static void test_media_master__incomplete_reference_is_not_used(void **state) {
  char fh[PATH_MAX];
  json_t *fr = NULL, *rep = NULL;
  snprintf(fh, sizeof fh, "%s/vfr.fh", tmpdir);
  assert_int_equal(media_framehash(fx("vfr.mp4"), fh, NULL, &fr), 0);
  json_t *s0 = json_array_get(json_object_get(fr, "streams"), 0);
  json_object_set_new(s0, "decoded_frames", json_integer(json_integer_value(json_object_get(s0, "frames")) + 1));
  media_reference ref = {fh, fr};
  media_master_opts opts = {.threads = 2, .reference = &ref};
  int rc = media_master(fx("vfr.mp4"), out_of("vfr-ref.mp4"), NULL, &opts, NULL, &rep);
  if (rc) fail_msg("media_master: %s: %s", cu_errname(rc), cu_errmsg());
  assert_identical(rep);
  assert_non_null(strstr(str(json_object_get(rep, "check"), "method"), "side by side"));
  json_decref(rep);
  json_decref(fr);
}

/* Subtitles alone (or random bytes libavformat takes for lyrics) get no
 * master: nothing to keep better than the original; FFmpeg 5.1's Matroska
 * muxer even writes garbage text into a file it cannot read back. */
static void test_media_master__subtitles_alone_get_no_master(void **state) {
  json_t *rep = NULL;
  int rc = media_master(fx("notes.srt"), out_of("notes.srt"), NULL, NULL, NULL, &rep);
  assert_int_equal(rc, CU_EUNSUPPORTED);
  assert_null(rep);
  assert_non_null(strstr(cu_errmsg(), "no audio or video"));
}

/* WMA decodes to float, which FLAC cannot hold, and Matroska cannot carry
 * the codec: its decoded samples are kept as 32-bit float PCM, which the
 * check finds identical to what the original decodes to. */
static void test_media_master__float_audio_becomes_pcm(void **state) {
  json_t *rep = master("cctv.wmv", NULL);
  assert_action(rep, 0, "ffv1");
  assert_action(rep, 1, "pcm_f32le");
  assert_non_null(str(json_array_get(json_object_get(rep, "streams"), 1), "reason"));
  assert_identical(rep);
  json_t *p = probe_streams(out_of("cctv.wmv"));
  assert_string_equal(str(json_array_get(json_object_get(p, "streams"), 1), "codec_name"), "pcm_f32le");
  json_decref(p);
  assert_decodes_clean(out_of("cctv.wmv"));
  json_decref(rep);
}

/* The rotation ffprobe reports for the first video stream, from its
 * display matrix; NAN if none. */
static double probe_rotation(const char *file) {
  json_t *j = ffprobe_json(file, "-select_streams", "v:0", "-show_streams", NULL), *sd;
  size_t i;
  double r = NAN;
  json_array_foreach(json_object_get(json_array_get(json_object_get(j, "streams"), 0), "side_data_list"), i, sd) {
    if (json_is_number(json_object_get(sd, "rotation"))) r = json_number_value(json_object_get(sd, "rotation"));
  }
  json_decref(j);
  return r;
}

static void test_media_master__rotation_kept(void **state) {
  double src = probe_rotation(fx("rotated.mp4"));
  assert_false(isnan(src));
  assert_true(fabs(fabs(src) - 90) < 0.01);
  json_t *rep = master("rotated.mp4", NULL);
  assert_identical(rep);
  const char *mkv = out_of("rotated.mp4");
  double in_master = probe_rotation(mkv);
  json_t *p = probe_streams(mkv);
  const char *rot = tag(json_object_get(json_array_get(json_object_get(p, "streams"), 0), "tags"), "ROTATE");
  /* Kept as a display matrix, or at least as a ROTATE tag, with the angle
   * ffprobe reports for the source. */
  bool kept = (!isnan(in_master) && fabs(in_master - src) < 0.01) ||
              (rot && fabs(strtod(rot, NULL) - src) < 0.01);
  if (!kept) fail_msg("source rotation %g; master: matrix %g, ROTATE tag %s", src, in_master, rot ? rot : "(none)");
  json_decref(p);
  json_decref(rep);
}

static void test_media_master__ts_discontinuity(void **state) {
  json_t *rep = master("discont.ts", NULL);
  assert_identical(rep);
  assert_int_equal(num(json_object_get(json_object_get(rep, "check"), "video_frames"), "0"), 50);
  json_t *corr = json_object_get(rep, "timestamp_corrections"), *c;
  size_t i;
  assert_true(json_is_array(corr));
  assert_true(json_array_size(corr) > 0);
  json_array_foreach(corr, i, c) {
    assert_true(json_is_integer(json_object_get(c, "stream")));
    assert_true(json_is_number(json_object_get(c, "at_s")));
    assert_true(json_is_number(json_object_get(c, "shift_s")));
  }
  /* The 1000 s jump was evened out. */
  double shift = json_number_value(json_object_get(json_array_get(corr, 0), "shift_s"));
  assert_true(fabs(shift) > 900 && fabs(shift) < 1100);
  json_t *p = probe_streams(out_of("discont.ts"));
  double dur = strtod(str(json_object_get(p, "format"), "duration"), NULL);
  if (dur > 10) fail_msg("the master lasts %.1f s: the jump was not evened out", dur);
  json_decref(p);
  assert_decodes_clean(out_of("discont.ts"));
  json_decref(rep);
}

static void test_media_master__variable_frame_rate(void **state) {
  json_t *rep = master("vfr.mp4", NULL);
  assert_action(rep, 0, "copy");
  assert_identical(rep);
  assert_video_frames(rep, fx("vfr.mp4"), 0);
  assert_int_equal(counted_frames(out_of("vfr.mp4"), 0), 22);
  json_decref(rep);
}

static void test_media_master__mjpeg_avi(void **state) {
  json_t *rep = master("mjpeg.avi", NULL);
  assert_action(rep, 0, "copy");
  assert_action(rep, 1, "copy");
  assert_identical(rep);
  assert_video_frames(rep, fx("mjpeg.avi"), 0);
  char want[65];
  s16_sha256(fx("mjpeg.avi"), 1, want);
  assert_string_equal(str(json_object_get(json_object_get(rep, "check"), "audio_sha256"), "1"), want);
  assert_decodes_clean(out_of("mjpeg.avi"));
  json_decref(rep);
}

/* The video packets' timestamps of file, in milliseconds, as one string. */
static char *packet_times(const char *file) {
  json_t *j = ffprobe_json(file, "-select_streams", "v:0", "-show_entries", "packet=pts", NULL), *x;
  size_t i;
  cu_buf b = CU_BUF_INIT(1 << 16);
  json_array_foreach(json_object_get(j, "packets"), i, x) {
    json_t *pts = json_object_get(x, "pts");
    char t[32];
    int n = json_is_integer(pts) ? snprintf(t, sizeof t, " %lld", (long long)json_integer_value(pts))
                                 : snprintf(t, sizeof t, " none");
    cu_buf_add(&b, t, (size_t)n);
  }
  cu_buf_add(&b, " ", 2); /* and its NUL */
  json_decref(j);
  char *out = cu_xstrdup(b.data);
  cu_buf_release(&b);
  return out;
}

/* A raw stream has no timestamps: the master places its packets where
 * ffmpeg does (`-c copy` without B-frames). With B-frames, Matroska cannot
 * hold the packets without presentation times (ffmpeg's `-c copy` fails),
 * so the pictures are kept as FFV1, timed as ffmpeg times them. */
static void test_media_master__raw_h264(void **state) {
  static const struct {
    const char *file, *action;
    const char *codec[4];
  } raw[] = {{"raw.h264", "copy", {"-c", "copy", NULL}}, {"raw_bf.h264", "ffv1", {"-c:v", "ffv1", NULL}}};
  for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
    json_t *rep = master(raw[i].file, NULL);
    assert_action(rep, 0, raw[i].action);
    const char *why = cu_json_str(rstream(rep, 0), "reason");
    if (!strcmp(raw[i].action, "ffv1")) assert_non_null(strstr(why, "no presentation timestamps"));
    assert_identical(rep);
    assert_video_frames(rep, fx(raw[i].file), 0);
    char ref[PATH_MAX];
    snprintf(ref, sizeof ref, "%s/%s.ffmpeg.mkv", tmpdir, raw[i].file);
    assert_int_equal(ffmpeg("-i", fx(raw[i].file), raw[i].codec[0], raw[i].codec[1], ref, NULL), 0);
    char *ours = packet_times(out_of(raw[i].file)), *theirs = packet_times(ref);
    if (strcmp(ours, theirs)) fail_msg("%s: the master's packet times\n%s\nare not ffmpeg's\n%s", raw[i].file, ours, theirs);
    /* Two seconds at 30 frames a second, not 60 frames a millisecond apart. */
    if (!strstr(ours, " 1967 ")) fail_msg("%s: the master's packet times are %s", raw[i].file, ours);
    free(ours);
    free(theirs);
    json_decref(rep);
  }
}

/* A photo is its own master; JPEGs of one size one after another are an
 * MJPEG stream, copied into Matroska. */
static void test_media_master__photos_and_an_mjpeg_stream(void **state) {
  const char *photos[] = {"photo.jpg", "stereo.jpg", "mpf.jpg", "photo.png"};
  for (size_t i = 0; i < sizeof photos / sizeof *photos; i++) {
    json_t *rep = master(photos[i], NULL);
    const char *kept = cu_json_str(json_object_get(rep, "params"), "kept_as");
    if (!kept || strcmp(kept, "original")) fail_msg("%s is not kept as its own master", photos[i]);
    assert_null(json_object_get(rep, "check"));
    json_decref(rep);
  }
  json_t *rep = master("camera.mjpeg", NULL);
  assert_action(rep, 0, "copy");
  assert_identical(rep);
  assert_video_frames(rep, fx("camera.mjpeg"), 0);
  assert_int_equal(num(json_object_get(json_object_get(rep, "check"), "video_frames"), "0"), 10);
  json_decref(rep);
  /* PNG is not on the copy list: the stream becomes FFV1, checked. */
  rep = master("camera.png", NULL);
  assert_action(rep, 0, "ffv1");
  assert_identical(rep);
  assert_int_equal(num(json_object_get(json_object_get(rep, "check"), "video_frames"), "0"), 10);
  json_decref(rep);
}

static void test_media_master__pcm_wav(void **state) {
  json_t *rep = master("s16.wav", NULL);
  assert_action(rep, 0, "copy");
  assert_identical(rep);
  char want[65];
  s16_sha256(fx("s16.wav"), 0, want);
  assert_string_equal(str(json_object_get(json_object_get(rep, "check"), "audio_sha256"), "0"), want);
  json_t *p = probe_streams(out_of("s16.wav"));
  assert_string_equal(str(json_array_get(json_object_get(p, "streams"), 0), "codec_name"), "pcm_s16le");
  json_decref(p);
  json_decref(rep);
}

static void test_media_master__hevc_4k(void **state) {
  json_t *rep = master("hevc4k.mp4", NULL);
  assert_action(rep, 0, "copy");
  assert_identical(rep);
  assert_video_frames(rep, fx("hevc4k.mp4"), 0);
  json_t *p = probe_streams(out_of("hevc4k.mp4")), *s = json_array_get(json_object_get(p, "streams"), 0);
  assert_string_equal(str(s, "codec_name"), "hevc");
  assert_int_equal(num(s, "width"), 3840);
  assert_int_equal(num(s, "height"), 2160);
  json_decref(p);
  json_decref(rep);
}

static void assert_master_refused(const char *name, int want, const char *want_in_msg) {
  json_t *before = json_object(), *rep = before;
  int rc = media_master(fx(name), out_of(name), NULL, NULL, NULL, &rep);
  if (rc != want) fail_msg("%s: want %s, got %s: %s", name, cu_errname(want), cu_errname(rc), cu_errmsg());
  assert_null(rep);
  json_decref(before);
  if (want_in_msg && !strstr(cu_errmsg(), want_in_msg))
    fail_msg("%s: \"%s\" does not mention \"%s\"", name, cu_errmsg(), want_in_msg);
}

static void test_media_master__not_media(void **state) {
  assert_master_refused("empty.bin", CU_EUNSUPPORTED, NULL);
  assert_master_refused("random.bin", CU_EUNSUPPORTED, NULL);
  /* media.h: recognised media that cannot be read is CU_ECORRUPT. */
  assert_master_refused("no_moov.mp4", CU_ECORRUPT, "moov");
}

static void test_media_master__own_failures(void **state) {
  json_t *rep = NULL;
  atomic_int cancel = 1;
  media_ctl stop = {.cancel = &cancel}, late = {.deadline_us = cu_mono_us() - 1};
  assert_int_equal(media_master(fx("main.mp4"), fx("cancelled.mkv"), NULL, NULL, &stop, &rep), CU_EIO);
  assert_null(rep);
  assert_int_equal(media_master(fx("main.mp4"), fx("late.mkv"), NULL, NULL, &late, &rep), CU_EIO);
  assert_null(rep);
  int rc = media_master(fx("main.mp4"), fx("no-such-dir/m.mkv"), NULL, NULL, NULL, &rep);
  assert_true(rc < 0);
  assert_null(rep);
}

/* media_master(name) in a child process, so that a crash fails one test
 * instead of ending the run. Returns its code and message; fails on a
 * crash. */
static int master_in_child(const char *name, char *msg, size_t msgn) {
  char msgfile[PATH_MAX];
  snprintf(msgfile, sizeof msgfile, "%s/%s.msg", tmpdir, name);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    /* cmocka catches these to go on with the next test: here a crash must
     * end this process, not run the rest of the suite in it. */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], SIG_DFL);
    json_t *rep = NULL;
    int rc = media_master(fx(name), out_of(name), NULL, NULL, NULL, &rep);
    json_decref(rep);
    write_bytes(msgfile, cu_errmsg(), strlen(cu_errmsg()));
    _exit(100 - rc); /* 100 + our code: apart from a sanitizer's exit 1 */
  }
  assert_true(pid > 0);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) assert_int_equal(errno, EINTR);
  if (WIFSIGNALED(st)) fail_msg("media_master(%s) crashed: signal %d", name, WTERMSIG(st));
  if (!WIFEXITED(st) || WEXITSTATUS(st) < 100 || WEXITSTATUS(st) > 100 + 20)
    fail_msg("media_master(%s) crashed (exit %d: see the sanitizer's report above)", name,
             WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  char *m = read_all(msgfile, NULL);
  snprintf(msg, msgn, "%s", m ? m : "");
  free(m);
  return 100 - WEXITSTATUS(st);
}

/* A resolution change mid-stream: one FFV1 stream keeps one size, so the
 * master copies such a stream instead (and is identical), or, were it ever
 * refused by the check, says so once, naming the stream and the frame (the
 * message was once formatted into itself). Run in a child process. */
static void assert_master_of_resolution_change(const char *name) {
  char msg[1024];
  int rc = master_in_child(name, msg, sizeof msg);
  if (rc == 0) return; /* media_master checked it: identical */
  if (rc != CU_ECORRUPT) fail_msg("%s: want a master or corrupt, got %s: %s", name, cu_errname(rc), msg);
  if (strncmp(msg, "the master is not lossless: stream 0, frame ", 44))
    fail_msg("%s: the message is \"%s\"", name, msg);
}

static void test_media_master__resolution_rises(void **state) {
  assert_master_of_resolution_change("small_then_big.ts");
}

/* A smaller frame after a larger one once reached the FFV1 encoder opened
 * at the first size (an over-read in libavcodec). */
static void test_media_master__resolution_drops(void **state) {
  assert_master_of_resolution_change("big_then_small.ts");
}

/* Sources whose bitstream aspect ratio (12/11 for H.263 CIF, 16/15 for PAL
 * DV) differs from the container's: the FFV1 stream takes its encoder's, or
 * the muxer refuses the header ("Aspect ratio mismatch"). */
static void assert_ffv1_master(const char *name) {
  json_t *rep = NULL;
  int rc = media_master(fx(name), out_of(name), NULL, NULL, NULL, &rep);
  if (rc != 0) fail_msg("media_master(%s): %s: %s", name, cu_errname(rc), cu_errmsg());
  assert_action(rep, 0, "ffv1");
  assert_identical(rep);
  json_decref(rep);
}

static void test_media_master__h263_phone_3gp(void **state) { assert_ffv1_master("phone.3gp"); }

static void test_media_master__dv_avi(void **state) { assert_ffv1_master("dv.avi"); }

/* Pixels FFV1 cannot take as they are go in as the same values arranged
 * otherwise (rgb24 as bgr0); the check turns each frame back. bgr0 goes in
 * as bgra, the same bytes, so its padding byte is kept. A codec AVI holds
 * whose pixels no FFV1 format holds both ways is copied, as Matroska's VFW
 * mode holds it. ffmpeg, told to give the master's frames in the
 * original's pixel format, hashes them as the original's. */
static void test_media_master__rgb_and_packed_yuv_are_rearranged_for_ffv1(void **state) {
  static const char *const files[][4] = {{"qtrle.mov", "ffv1", "rgb24", "bgr0"},
                                         {"rgba_png.mov", "ffv1", "rgba", "bgra"},
                                         {"bgr24.avi", "ffv1", "bgr24", "bgr0"},
                                         {"yuyv.avi", "ffv1", "yuyv422", "yuv422p"},
                                         {"zmbv.avi", "ffv1", "bgr0", "bgra"},
                                         {"msvideo1.avi", "copy", "rgb555le", NULL}};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    const char *name = files[i][0];
    json_t *rep = NULL;
    int rc = media_master(fx(name), out_of(name), NULL, NULL, NULL, &rep);
    if (rc != 0) fail_msg("media_master(%s): %s: %s", name, cu_errname(rc), cu_errmsg());
    assert_action(rep, 0, files[i][1]);
    assert_identical(rep);
    assert_video_frames(rep, fx(name), 0);
    json_t *st = json_array_get(json_object_get(rep, "streams"), 0);
    if (files[i][3]) {
      assert_string_equal(str(st, "source_pix_fmt"), files[i][2]);
      assert_string_equal(str(st, "pix_fmt"), files[i][3]);
    } else {
      assert_null(json_object_get(st, "pix_fmt"));
    }
    json_decref(rep);
    char *want = NULL, *got = NULL;
    const char *a[] = {"ffmpeg", "-v", "error", "-i", fx(name), "-f", "framehash", "-hash", "sha256", "-", NULL};
    assert_int_equal(run(a, &want, false), 0);
    const char *b[] = {"ffmpeg", "-v", "error", "-i", out_of(name), "-pix_fmt", files[i][2], "-f",
                       "framehash", "-hash", "sha256", "-", NULL};
    assert_int_equal(run(b, &got, false), 0);
    /* The frame lines; the header differs in #sar only (an unknown 0/1 in
     * the original, Matroska's 1/1 in the master). */
    const char *wf = strstr(want, "\n0,"), *gf = strstr(got, "\n0,");
    assert_non_null(wf);
    assert_non_null(gf);
    if (strcmp(gf, wf)) fail_msg("%s: ffmpeg hashes the master's frames otherwise", name);
    free(want);
    free(got);
  }
}

/* A copied stream keeps its fourcc, as with ffmpeg -c copy: the ProRes
 * decoder needs ap4h to decode 4444 to 12 bits (yuva444p12le); without it,
 * 10 bits, and the check would refuse the master from frame 0. */
static void test_media_master__prores_4444(void **state) {
  json_t *rep = NULL;
  int rc = media_master(fx("prores4444.mov"), out_of("prores4444.mov"), NULL, NULL, NULL, &rep);
  if (rc != 0) fail_msg("media_master(prores4444.mov): %s: %s", cu_errname(rc), cu_errmsg());
  assert_identical(rep);
  json_t *p = probe_streams(out_of("prores4444.mov"));
  assert_string_equal(str(json_array_get(json_object_get(p, "streams"), 0), "pix_fmt"), "yuva444p12le");
  json_decref(p);
  json_decref(rep);
}

/* ---- media_check_lossless ---------------------------------------------- */

/* The check on a thread, given limit_s to return: a hang fails the test
 * instead of stopping the run. The state is on the heap and left behind if
 * the thread never returns. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  char orig[PATH_MAX], copy[PATH_MAX];
  int map[8], nmap;
  media_ctl ctl;
  int rc;
  char msg[1024];
  json_t *result;
} check_job;

static void *check_thread(void *arg) {
  check_job *j = arg;
  json_t *res = NULL;
  int rc = media_check_lossless(j->orig, j->copy, j->map, j->nmap, 2, NULL, &j->ctl, &res);
  pthread_mutex_lock(&j->mu);
  j->rc = rc;
  snprintf(j->msg, sizeof j->msg, "%s", rc ? cu_errmsg() : "");
  j->result = res;
  j->done = true;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
  return NULL;
}

/* Runs the check; returns its code with *msg and *result (caller frees
 * result), or fails the test if it has not returned after limit_s. */
static int check(const char *orig, const char *copy, const int *map, int nmap, int limit_s,
                 const media_ctl *ctl, char *msg, size_t msgn, json_t **result) {
  check_job *j = calloc(1, sizeof *j);
  assert_non_null(j);
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  snprintf(j->orig, sizeof j->orig, "%s", orig);
  snprintf(j->copy, sizeof j->copy, "%s", copy);
  assert_true(nmap <= 8);
  memcpy(j->map, map, (size_t)nmap * sizeof *map);
  j->nmap = nmap;
  if (ctl) j->ctl = *ctl;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, check_thread, j), 0);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += limit_s;
  pthread_mutex_lock(&j->mu);
  while (!j->done)
    if (pthread_cond_timedwait(&j->cv, &j->mu, &until) == ETIMEDOUT) break;
  bool done = j->done;
  pthread_mutex_unlock(&j->mu);
  if (!done) {
    pthread_detach(t);
    fail_msg("media_check_lossless(%s, %s) has not returned after %d s: it hangs", orig, copy, limit_s);
  }
  pthread_join(t, NULL);
  int rc = j->rc;
  if (msg) snprintf(msg, msgn, "%s", j->msg);
  if (result) *result = j->result;
  else json_decref(j->result);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  free(j);
  return rc;
}

static void test_media_master__check_finds_a_different_encode(void **state) {
  char msg[1024];
  json_t *res = NULL;
  const int map[] = {0};
  int rc = check(fx("crf18.mp4"), fx("crf30.mp4"), map, 1, 60, NULL, msg, sizeof msg, &res);
  if (rc != CU_ECORRUPT) fail_msg("want corrupt, got %s: %s", cu_errname(rc), msg);
  assert_null(res);
  /* It names the stream and the first frame that differs. */
  if (!strstr(msg, "stream 0") || !strstr(msg, "frame 0"))
    fail_msg("\"%s\" does not name stream 0 and frame 0", msg);
}

static void test_media_master__check_passes_a_copy(void **state) {
  char msg[1024];
  json_t *res = NULL;
  const int map[] = {0, 1};
  int rc = check(fx("main.mp4"), fx("main_copy.mkv"), map, 2, 60, NULL, msg, sizeof msg, &res);
  if (rc != 0) fail_msg("check of a plain copy: %s: %s", cu_errname(rc), msg);
  assert_string_equal(str(res, "result"), "identical");
  assert_int_equal(num(json_object_get(res, "video_frames"), "0"), 30);
  assert_true(cu_is_sha256_hex(str(json_object_get(res, "audio_sha256"), "1")));
  json_decref(res);
}

static void test_media_master__check_counts_frames(void **state) {
  char msg[1024];
  json_t *res = NULL;
  const int map[] = {0, -1};
  int rc = check(fx("main.mp4"), fx("one_short.mkv"), map, 2, 60, NULL, msg, sizeof msg, &res);
  if (rc != CU_ECORRUPT) fail_msg("want corrupt, got %s: %s", cu_errname(rc), msg);
  assert_null(res);
  if (!strstr(msg, "30") || !strstr(msg, "29")) fail_msg("\"%s\" does not give both frame counts", msg);
}

static void test_media_master__check_map_past_the_copy(void **state) {
  char msg[1024];
  json_t *res = NULL;
  const int map[] = {0, 5};
  int rc = check(fx("main.mp4"), fx("main_copy.mkv"), map, 2, 60, NULL, msg, sizeof msg, &res);
  if (rc != CU_ECORRUPT) fail_msg("want corrupt, got %s: %s", cu_errname(rc), msg);
  assert_null(res);
}

static void test_media_master__check_different_interleaving(void **state) {
  char msg[1024];
  json_t *res = NULL;
  const int map[] = {0, 1};
  int rc = check(fx("faststart.mp4"), fx("faststart_copy.mkv"), map, 2, 30, NULL, msg, sizeof msg, &res);
  if (rc != 0) fail_msg("check: %s: %s", cu_errname(rc), msg);
  assert_string_equal(str(res, "result"), "identical");
  json_decref(res);
}

static void test_media_master__check_unreadable_copy(void **state) {
  char msg[1024];
  json_t *res = NULL;
  const int map[] = {0};
  int rc = check(fx("main.mp4"), fx("random.bin"), map, 1, 30, NULL, msg, sizeof msg, &res);
  if (rc != CU_ECORRUPT) fail_msg("want corrupt, got %s: %s", cu_errname(rc), msg);
  assert_null(res);
  /* Said once, then libavformat's reason whole (the message was once
   * formatted into itself). */
  const char *lead = "the copy cannot be read back: ";
  if (strncmp(msg, lead, strlen(lead)) || strstr(msg + 1, lead) ||
      !strstr(msg, "libavformat cannot open it: Invalid data found"))
    fail_msg("the message is \"%s\"", msg);
}

/* Whether fd 0 is open, and whether any descriptor of ours is open on path. */
static bool fd0_open(void) { return fcntl(0, F_GETFD) != -1; }

static bool fd_open_on(const char *path) {
  char want[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
  if (!realpath(path, want)) return false;
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  bool found = false;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (!strcmp(target, want)) found = true;
  }
  if (d) closedir(d);
  return found;
}

/* Makes sure fd 0 is open (on /dev/null), so closing it can be seen. */
static void ensure_fd0(void) {
  if (fd0_open()) return;
  int fd = open("/dev/null", O_RDONLY);
  assert_true(fd >= 0);
  if (fd != 0) {
    assert_int_equal(dup2(fd, 0), 0);
    close(fd);
  }
}

/* A check that cannot open the original (cancelled, missing) releases
 * what it opened and closes nothing it did not open (it once leaked the
 * priming scan's descriptor and called close(0)). */
static void test_media_master__check_cancelled_releases_files(void **state) {
  char msg[1024];
  json_t *res = NULL;
  const int map[] = {0, 1};
  atomic_int cancel = 1;
  media_ctl ctl = {.cancel = &cancel};
  ensure_fd0();
  int rc = check(fx("main.mp4"), fx("main_copy.mkv"), map, 2, 30, &ctl, msg, sizeof msg, &res);
  bool fd0 = fd0_open(), leaked = fd_open_on(fx("main.mp4"));
  ensure_fd0();
  if (rc != CU_EIO) fail_msg("want io error, got %s: %s", cu_errname(rc), msg);
  assert_null(res);
  if (leaked || !fd0)
    fail_msg("after the check returned:%s%s", leaked ? " the original is still open;" : "",
             fd0 ? "" : " file descriptor 0, which it never opened, was closed");
}

static void test_media_master__check_missing_original(void **state) {
  char msg[1024];
  json_t *res = NULL;
  const int map[] = {0};
  ensure_fd0();
  int rc = check(fx("no-such-file.mp4"), fx("main_copy.mkv"), map, 1, 30, NULL, msg, sizeof msg, &res);
  bool fd0 = fd0_open();
  ensure_fd0();
  if (rc != CU_ENOTFOUND) fail_msg("want not found, got %s: %s", cu_errname(rc), msg);
  assert_null(res);
  if (!fd0) fail_msg("the check closed file descriptor 0, which it never opened");
}

/* A copy that ends more than CHECK_QUEUE (8192) frames of a video stream
 * before the original: the side that finished must release the other (it
 * once waited for ever). CU_ECORRUPT, 8400 frames against 100. Run last: a
 * hang would leave its threads behind. */
static void test_media_master__check_copy_far_shorter(void **state) {
  char msg[1024];
  json_t *res = NULL;
  const int map[] = {0};
  assert_int_equal(counted_frames(fx("long_kept.mkv"), 0), LONG_KEPT);
  /* The long clip against itself passes, and says how long a check of it
   * takes here; a hang is many times that. */
  int64_t t0 = cu_mono_us();
  int rc = check(fx("long.mp4"), fx("long.mp4"), map, 1, 60, NULL, msg, sizeof msg, &res);
  int64_t took_s = (cu_mono_us() - t0) / 1000000 + 1;
  if (rc != 0) fail_msg("the long clip against itself: %s: %s", cu_errname(rc), msg);
  assert_int_equal(num(json_object_get(res, "video_frames"), "0"), LONG_FRAMES);
  json_decref(res);
  res = NULL;
  int limit = took_s * 5 > 10 ? (int)took_s * 5 : 10;
  media_ctl ctl = {.deadline_us = cu_mono_us() + (int64_t)limit * 1000000 / 2};
  rc = check(fx("long.mp4"), fx("long_kept.mkv"), map, 1, limit, &ctl, msg, sizeof msg, &res);
  if (rc != CU_ECORRUPT) fail_msg("want corrupt, got %s: %s", cu_errname(rc), msg);
  assert_null(res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_media_master__h264_aac_mp4),
      cmocka_unit_test(test_media_master__mpeg2_ts_becomes_ffv1),
      cmocka_unit_test(test_media_master__adpcm_becomes_flac),
      cmocka_unit_test(test_media_master__float_audio_becomes_pcm),
      cmocka_unit_test(test_media_master__subtitles_alone_get_no_master),
      cmocka_unit_test(test_media_master__check_against_frame_hashes),
      cmocka_unit_test(test_media_master__check_in_segments),
      cmocka_unit_test(test_media_master__incomplete_reference_is_not_used),
      cmocka_unit_test(test_media_master__rotation_kept),
      cmocka_unit_test(test_media_master__ts_discontinuity),
      cmocka_unit_test(test_media_master__variable_frame_rate),
      cmocka_unit_test(test_media_master__mjpeg_avi),
      cmocka_unit_test(test_media_master__raw_h264),
      cmocka_unit_test(test_media_master__photos_and_an_mjpeg_stream),
      cmocka_unit_test(test_media_master__pcm_wav),
      cmocka_unit_test(test_media_master__hevc_4k),
      cmocka_unit_test(test_media_master__not_media),
      cmocka_unit_test(test_media_master__own_failures),
      cmocka_unit_test(test_media_master__h263_phone_3gp),
      cmocka_unit_test(test_media_master__dv_avi),
      cmocka_unit_test(test_media_master__prores_4444),
      cmocka_unit_test(test_media_master__rgb_and_packed_yuv_are_rearranged_for_ffv1),
      cmocka_unit_test(test_media_master__resolution_rises),
      cmocka_unit_test(test_media_master__resolution_drops),
      cmocka_unit_test(test_media_master__check_finds_a_different_encode),
      cmocka_unit_test(test_media_master__check_passes_a_copy),
      cmocka_unit_test(test_media_master__check_counts_frames),
      cmocka_unit_test(test_media_master__check_map_past_the_copy),
      cmocka_unit_test(test_media_master__check_different_interleaving),
      cmocka_unit_test(test_media_master__check_unreadable_copy),
      cmocka_unit_test(test_media_master__check_cancelled_releases_files),
      cmocka_unit_test(test_media_master__check_missing_original),
      cmocka_unit_test(test_media_master__check_copy_far_shorter),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
