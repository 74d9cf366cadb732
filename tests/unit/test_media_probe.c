/* media_probe against small files made by the ffmpeg CLI at test time, in a
 * temporary directory under $CUSTOS_TEST_TMP (else /tmp) removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cu_limits.h"
#include "err.h"
#include "json.h"
#include "probe.h"
#include "media_fixture.h"
#include "banned.h"





static int make_tags_mkv(void) {
  /* title: "a" then 1000 two-byte characters, so CU_MAX_TAG_VALUE (1024)
   * falls inside a character; comment: not UTF-8; note: plain. */
  static char title[8 + 1 + 2000 + 1];
  size_t p = 7;
  memcpy(title, "title=a", 7);
  for (int i = 0; i < 1000; i++, p += 2) memcpy(title + p, "\xc3\xa9", 2);
  title[p] = '\0';
  const char *args[] = {"-f", "lavfi", "-i", "sine=duration=0.1", "-c:a", "pcm_s16le",
                        "-metadata", title, "-metadata", "comment=bad\xff\xfevalue",
                        "-metadata", "note=plain", fx("tags.mkv"), NULL};
  return run_ffmpeg(args);
}

enum { CROWD_TAGS = 70 };

static int make_crowded_mkv(void) {
  static char margs[CROWD_TAGS][16];
  const char *args[16 + 2 * CROWD_TAGS];
  size_t n = 0;
  args[n++] = "-f";
  args[n++] = "lavfi";
  args[n++] = "-i";
  args[n++] = "sine=duration=0.1";
  args[n++] = "-c:a";
  args[n++] = "pcm_s16le";
  for (int i = 0; i < CROWD_TAGS; i++) {
    snprintf(margs[i], sizeof margs[i], "k%d=v%d", i, i);
    args[n++] = "-metadata";
    args[n++] = margs[i];
  }
  args[n++] = fx("crowded.mkv");
  args[n] = NULL;
  return run_ffmpeg(args);
}

enum { MANY_STREAMS = 40, TAGGED_STREAMS = 5, TAG_VALUE_LEN = 1000 };

static int make_many_mkv(void) {
  /* 40 audio streams (more than CU_MAX_PROBE_STREAMS); the first five
   * carry 64 tags of 1000 bytes each, more than CU_MAX_PROBE_TAG_BYTES. */
  static char value[TAG_VALUE_LEN + 1];
  const size_t ntags = (size_t)TAGGED_STREAMS * CU_MAX_TAGS;
  const char **args = calloc(16 + 2 * MANY_STREAMS + 2 * ntags, sizeof *args);
  char(*specs)[32] = calloc(ntags, sizeof *specs);
  char(*tags)[TAG_VALUE_LEN + 16] = calloc(ntags, sizeof *tags);
  size_t n = 0, t = 0;
  int rc = -1;
  if (!args || !specs || !tags) goto done;
  memset(value, 'x', TAG_VALUE_LEN);
  args[n++] = "-f";
  args[n++] = "lavfi";
  args[n++] = "-i";
  args[n++] = "sine=duration=0.1";
  for (int i = 0; i < MANY_STREAMS; i++) {
    args[n++] = "-map";
    args[n++] = "0:a";
  }
  args[n++] = "-c:a";
  args[n++] = "pcm_s16le";
  for (int s = 0; s < TAGGED_STREAMS; s++)
    for (int k = 0; k < CU_MAX_TAGS; k++, t++) {
      snprintf(specs[t], sizeof specs[t], "-metadata:s:a:%d", s);
      snprintf(tags[t], sizeof tags[t], "t%02d=%s", k, value);
      args[n++] = specs[t];
      args[n++] = tags[t];
    }
  args[n++] = fx("many.mkv");
  args[n] = NULL;
  rc = run_ffmpeg(args);
done:
  free(args);
  free(specs);
  free(tags);
  return rc;
}

/* A WAV whose format tag (0x1234) names no codec libav knows. */
static int write_odd_wav(const char *path) {
  unsigned char w[44 + 1600] = {0};
  const unsigned char head[44] = {
      'R', 'I', 'F', 'F', 0x5c, 0x06, 0, 0, 'W', 'A', 'V', 'E',   /* RIFF, 36 + 1600 */
      'f', 'm', 't', ' ', 16, 0, 0, 0, 0x34, 0x12, 1, 0,        /* tag 0x1234, mono */
      0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 16, 0,          /* 8000 Hz, 16 bit */
      'd', 'a', 't', 'a', 0x40, 0x06, 0, 0};                    /* 1600 bytes */
  memcpy(w, head, sizeof head);
  return write_bytes(path, w, sizeof w);
}

static int make_fixtures(void) {
  static const char text[] = "Shift notes, unit 12.\nNothing to report at the dock.\n";
  static const char ffmetadata[] = ";FFMETADATA1\ntitle=x\n";
  char playlist[PATH_MAX + 128];
  const char *mp4[] = {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration=1",
                       "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
                       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2",
                       "-metadata", "creation_time=2026-01-02T03:04:05Z",
                       "-metadata", "make=Acme", "-metadata", "model=BodyCam",
                       "-metadata", "location=+37.3318-122.0312/",
                       "-movflags", "use_metadata_tags", fx("main.mp4"), NULL};
  const char *rotated[] = {"-i", fx("main.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                           fx("rotated.mp4"), NULL};
  const char *wav[] = {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1",
                       "-c:a", "pcm_s16le", fx("tone.wav"), NULL};
  const char *avi[] = {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=1",
                       "-c:v", "mjpeg", "-pix_fmt", "yuvj420p", fx("clip.avi"), NULL};

  /* No container, no times: a raw stream as CCTV recorders export it, with
   * B-frames; and Matroska written live, which states no length. */
  const char *raw[] = {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=30:duration=2", "-c:v",
                       "libx264", "-bf", "2", "-f", "h264", fx("raw.h264"), NULL};
  const char *live[] = {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=30:duration=2", "-c:v",
                        "libx264", "-live", "1", "-f", "matroska", fx("live.mkv"), NULL};

  if (run_ffmpeg(mp4) || run_ffmpeg(rotated) || run_ffmpeg(wav) || run_ffmpeg(avi)) return -1;
  if (run_ffmpeg(raw) || run_ffmpeg(live) || make_picture_fixtures()) return -1;
  if (make_tags_mkv() || make_crowded_mkv() || make_many_mkv()) return -1;
  /* Written without faststart, so moov is at the end and not in the 30%. */
  if (copy_prefix(fx("main.mp4"), fx("truncated.mp4"), 30)) return -1;
  /* .txt: a probe that trusted extensions would call this ANSI art. */
  if (write_bytes(fx("notes.txt"), text, sizeof text - 1)) return -1;
  if (write_bytes(fx("empty.bin"), "", 0)) return -1;
  /* libavformat opens these, but finds no stream it can name. */
  if (write_bytes(fx("ffmetadata"), ffmetadata, sizeof ffmetadata - 1)) return -1;
  if (write_odd_wav(fx("odd.wav"))) return -1;
  /* An HLS playlist naming a real media file (ffprobe would open it). */
  snprintf(playlist, sizeof playlist,
           "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n%s\n"
           "#EXT-X-ENDLIST\n",
           fx("main.mp4"));
  if (write_bytes(fx("playlist"), playlist, strlen(playlist))) return -1;
  if (mkdir(fx("adir"), 0700)) return -1;
  return 0;
}

static int group_teardown(void **state) { return media_fixture_teardown(); }

static int group_setup(void **state) { return media_fixture_setup("custos-probe", make_fixtures); }

/* Probes a fixture, asserting the call itself succeeded. */
static json_t *probe(const char *name) {
  json_t *res = NULL;
  int rc = media_probe(fx(name), 30, &res);
  if (rc != 0) fail_msg("media_probe(%s): %s: %s", name, cu_errname(rc), cu_errmsg());
  assert_non_null(res);
  assert_true(json_is_object(res));
  return res;
}

/* The first stream of the given type. */
static json_t *stream_of(const json_t *res, const char *type) {
  json_t *streams = json_object_get(res, "streams"), *s;
  size_t i;
  assert_true(json_is_array(streams));
  json_array_foreach(streams, i, s) {
    const char *t = cu_json_str(s, "type");
    if (t && strcmp(t, type) == 0) return s;
  }
  fail_msg("no %s stream", type);
  return NULL;
}

static void assert_unparseable(const json_t *res, const char *want_in_reason) {
  const char *reason = str(res, "reason");
  assert_string_equal(str(res, "status"), "unparseable");
  if (!strstr(reason, want_in_reason))
    fail_msg("reason \"%s\" does not mention \"%s\"", reason, want_in_reason);
  assert_null(json_object_get(res, "streams"));
  assert_null(json_object_get(res, "container"));
}

static void test_media_probe__mp4_h264_aac_with_tags(void **state) {
  json_t *res = probe("main.mp4"), *v, *a;

  assert_string_equal(str(res, "status"), "ok");
  assert_null(json_object_get(res, "reason"));
  assert_non_null(strstr(str(res, "container"), "mp4"));
  assert_non_null(strstr(str(res, "libavformat"), "."));
  assert_int_equal(num(res, "nb_streams"), 2);
  assert_int_equal(json_array_size(json_object_get(res, "streams")), 2);
  assert_true(fabs(real(res, "duration_s") - 1.0) < 0.1);
  assert_true(num(res, "bit_rate") > 0);

  v = stream_of(res, "video");
  assert_string_equal(str(v, "codec"), "h264");
  assert_int_equal(num(v, "width"), 320);
  assert_int_equal(num(v, "height"), 240);
  assert_string_equal(str(v, "pix_fmt"), "yuv420p");
  assert_string_equal(str(v, "frame_rate"), "30/1");
  assert_string_equal(str(v, "avg_frame_rate"), "30/1");
  assert_non_null(cu_json_str(v, "profile"));
  assert_true(fabs(real(v, "duration_s") - 1.0) < 0.1);
  assert_null(json_object_get(v, "rotation"));

  a = stream_of(res, "audio");
  assert_string_equal(str(a, "codec"), "aac");
  assert_string_equal(str(a, "profile"), "LC");
  assert_int_equal(num(a, "sample_rate"), 48000);
  assert_int_equal(num(a, "channels"), 2);
  assert_string_equal(str(a, "channel_layout"), "stereo");
  assert_true(json_is_object(json_object_get(a, "tags")));

  assert_int_equal(strncmp(str(res, "creation_time"), "2026-01-02T03:04:05", 19), 0);
  assert_string_equal(str(res, "make"), "Acme");
  assert_string_equal(str(res, "model"), "BodyCam");
  assert_string_equal(str(res, "location"), "+37.3318-122.0312/");
  assert_string_equal(str(json_object_get(res, "tags"), "make"), "Acme");
  json_decref(res);
}

static void test_media_probe__rotation_from_display_matrix(void **state) {
  json_t *res = probe("rotated.mp4");
  assert_string_equal(str(res, "status"), "ok");
  assert_true(fabs(fabs(real(stream_of(res, "video"), "rotation")) - 90.0) < 0.01);
  json_decref(res);
}

static void test_media_probe__pcm_wav(void **state) {
  json_t *res = probe("tone.wav"), *a;
  assert_string_equal(str(res, "status"), "ok");
  assert_string_equal(str(res, "container"), "wav");
  assert_int_equal(json_array_size(json_object_get(res, "streams")), 1);
  a = stream_of(res, "audio");
  assert_string_equal(str(a, "codec"), "pcm_s16le");
  assert_int_equal(num(a, "sample_rate"), 8000);
  assert_int_equal(num(a, "channels"), 1);
  /* Plain WAVEFORMATEX names no layout; libav calls it unspecified. */
  assert_null(json_object_get(a, "channel_layout"));
  assert_true(fabs(real(res, "duration_s") - 1.0) < 0.05);
  json_decref(res);
}

static void test_media_probe__mjpeg_avi(void **state) {
  json_t *res = probe("clip.avi"), *v;
  assert_string_equal(str(res, "status"), "ok");
  assert_string_equal(str(res, "container"), "avi");
  assert_int_equal(json_array_size(json_object_get(res, "streams")), 1);
  v = stream_of(res, "video");
  assert_string_equal(str(v, "codec"), "mjpeg");
  assert_int_equal(num(v, "width"), 160);
  assert_int_equal(num(v, "height"), 120);
  assert_string_equal(str(v, "frame_rate"), "10/1");
  json_decref(res);
}

/* Where the container states no length, the packets are counted: 60
 * frames at 30 a second, 10 camera pictures at the 25 a second libavformat
 * gives jpeg_pipe. A photo has no length; a stated length is not counted. */
static void test_media_probe__a_length_no_container_states_is_counted(void **state) {
  static const struct {
    const char *file, *container;
    double seconds;
  } counted[] = {{"raw.h264", "h264", 2.0}, {"live.mkv", "matroska,webm", 2.0},
                 {"camera.mjpeg", "jpeg_pipe", 0.4}};
  for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++) {
    json_t *res = probe(counted[i].file);
    assert_string_equal(str(res, "status"), "ok");
    assert_string_equal(str(res, "container"), counted[i].container);
    if (fabs(real(res, "duration_s") - counted[i].seconds) > 1e-9)
      fail_msg("%s: duration_s %.9f, want %.9f", counted[i].file, real(res, "duration_s"),
               counted[i].seconds);
    assert_string_equal(str(res, "duration_from"), "packets");
    json_decref(res);
  }
  json_t *res = probe("photo.jpg");
  assert_string_equal(str(res, "status"), "ok");
  assert_null(json_object_get(res, "duration_s"));
  json_decref(res);
  res = probe("main.mp4");
  assert_true(fabs(real(res, "duration_s") - 1.0) < 0.05);
  assert_null(json_object_get(res, "duration_from"));
  json_decref(res);
}

static void test_media_probe__text_file_is_unparseable(void **state) {
  json_t *res = probe("notes.txt");
  assert_unparseable(res, "libavformat cannot open it: Invalid data found");
  json_decref(res);
}

static void test_media_probe__empty_file_is_unparseable(void **state) {
  json_t *res = probe("empty.bin");
  assert_unparseable(res, "empty");
  json_decref(res);
}

static void test_media_probe__no_identifiable_stream(void **state) {
  json_t *res = probe("ffmetadata"); /* a container with no streams */
  assert_unparseable(res, "no audio or video streams libavformat can identify");
  json_decref(res);
  res = probe("odd.wav"); /* one stream, codec unknown */
  assert_unparseable(res, "no audio or video streams libavformat can identify");
  json_decref(res);
}

static void test_media_probe__truncated_mp4_without_moov(void **state) {
  json_t *res = probe("truncated.mp4");
  /* The reason quotes libav's own explanation. */
  assert_unparseable(res, "cannot open");
  assert_unparseable(res, "moov atom not found");
  json_decref(res);
}

static void test_media_probe__playlist_is_not_followed(void **state) {
  json_t *res = probe("playlist");
  assert_unparseable(res, "never opens");
  json_decref(res);
}

static void test_media_probe__missing_file(void **state) {
  json_t *before = json_object(), *res = before; /* must be replaced by NULL */
  const char *path = fx("no-such-file.mp4");
  assert_int_equal(media_probe(path, 30, &res), CU_ENOTFOUND);
  json_decref(before);
  assert_null(res);
  assert_non_null(strstr(cu_errmsg(), path));
}

static void test_media_probe__not_a_regular_file(void **state) {
  json_t *res = NULL;
  assert_int_equal(media_probe(fx("adir"), 30, &res), CU_EINVAL);
  assert_null(res);
}

static void test_media_probe__bad_arguments(void **state) {
  json_t *res = NULL;
  assert_int_equal(media_probe(NULL, 30, &res), CU_EINVAL);
  assert_null(res);
  assert_int_equal(media_probe(fx("tone.wav"), 30, NULL), CU_EINVAL);
}

/* Probes path as it would be for an unprivileged user: in a child that
 * drops to nobody when we are root (root reads any file). */
static int probe_unprivileged(const char *path) {
  if (geteuid() != 0) {
    json_t *res = NULL;
    int rc = media_probe(path, 30, &res);
    return rc == CU_EIO && !res ? 0 : 1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) || setuid(65534)) _exit(2);
    json_t *res = NULL;
    int rc = media_probe(path, 30, &res);
    _exit(rc == CU_EIO && !res ? 0 : 1);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
}

static void test_media_probe__unreadable_file(void **state) {
  const char *path = fx("locked.wav");
  assert_int_equal(copy_prefix(fx("tone.wav"), path, 100), 0);
  assert_int_equal(chmod(path, 0), 0);
  assert_int_equal(probe_unprivileged(path), 0);
}

/* The matroska muxer writes tag names in capitals (title is not a tag). */
static const char *tag(const json_t *tags, const char *upper) {
  const char *v = cu_json_str(tags, upper);
  if (!v) fail_msg("no tag %s", upper);
  return v;
}

static void test_media_probe__unopenable_path_is_io_error(void **state) {
  json_t *res = NULL;
  const char *path = fx("loop");
  /* A symlink to itself: open() fails with ELOOP, which is not "missing". */
  assert_int_equal(symlink("loop", path), 0);
  assert_int_equal(media_probe(path, 30, &res), CU_EIO);
  assert_null(res);
}

static void test_media_probe__tag_values_are_cut_and_utf8(void **state) {
  json_t *res = probe("tags.mkv"), *tags;
  const char *title;
  assert_string_equal(str(res, "status"), "ok");
  tags = json_object_get(res, "tags");
  assert_true(json_is_object(tags));
  /* Cut to the last whole character within CU_MAX_TAG_VALUE. */
  title = str(tags, "title");
  assert_int_equal(strlen(title), CU_MAX_TAG_VALUE - 1);
  assert_true(cu_utf8_valid(title, strlen(title)));
  assert_memory_equal(title, "a\xc3\xa9\xc3\xa9", 5);
  /* Not UTF-8: left out and counted; the others stay. */
  assert_null(json_object_get(tags, "COMMENT"));
  assert_null(json_object_get(tags, "comment"));
  assert_string_equal(tag(tags, "NOTE"), "plain");
  assert_int_equal(num(res, "tags_omitted"), 1);
  json_decref(res);
}

static void test_media_probe__tag_count_is_bounded(void **state) {
  json_t *res = probe("crowded.mkv");
  assert_string_equal(str(res, "status"), "ok");
  assert_int_equal(json_object_size(json_object_get(res, "tags")), CU_MAX_TAGS);
  assert_true(num(res, "tags_omitted") >= CROWD_TAGS - CU_MAX_TAGS);
  json_decref(res);
}

static void test_media_probe__streams_and_tag_bytes_are_bounded(void **state) {
  json_t *res = probe("many.mkv"), *streams, *s, *tags, *v;
  size_t i, tag_bytes = 0;
  const char *k;
  int omitted_somewhere = 0;
  assert_string_equal(str(res, "status"), "ok");
  assert_int_equal(num(res, "nb_streams"), MANY_STREAMS);
  streams = json_object_get(res, "streams");
  assert_int_equal(json_array_size(streams), CU_MAX_PROBE_STREAMS);
  assert_int_equal(num(json_array_get(streams, CU_MAX_PROBE_STREAMS - 1), "index"),
                   CU_MAX_PROBE_STREAMS - 1);
  json_object_foreach(json_object_get(res, "tags"), k, v)
      tag_bytes += strlen(k) + json_string_length(v);
  json_array_foreach(streams, i, s) {
    tags = json_object_get(s, "tags");
    assert_true(json_is_object(tags));
    json_object_foreach(tags, k, v) tag_bytes += strlen(k) + json_string_length(v);
    if (i < TAGGED_STREAMS && json_object_get(s, "tags_omitted")) omitted_somewhere = 1;
  }
  /* 5 x 64 tags of ~1 KB were offered; the budget stopped them, and was
   * used up to within one tag. */
  assert_true(tag_bytes <= CU_MAX_PROBE_TAG_BYTES);
  assert_true(tag_bytes > CU_MAX_PROBE_TAG_BYTES - 2 * TAG_VALUE_LEN);
  assert_true(omitted_somewhere);
  json_decref(res);
}

/* Concurrent probes on worker threads give the answers a lone probe gives,
 * and a failure's libav message does not leak into another thread's reason. */
enum { THREADS = 6, ROUNDS = 3 };
static const char *const concurrent_files[] = {"main.mp4", "truncated.mp4", "notes.txt",
                                               "tone.wav", "clip.avi"};
#define NFILES (sizeof concurrent_files / sizeof concurrent_files[0])
static char *baseline[NFILES];

static void *probe_worker(void *arg) {
  size_t off = (size_t)(uintptr_t)arg;
  for (int r = 0; r < ROUNDS; r++)
    for (size_t j = 0; j < NFILES; j++) {
      size_t f = (j + off) % NFILES;
      json_t *res = NULL;
      char path[PATH_MAX], *canon;
      int same;
      snprintf(path, sizeof path, "%s/%s", tmpdir, concurrent_files[f]); /* fx() is not thread-safe */
      if (media_probe(path, 30, &res) != 0) return (void *)1;
      canon = cu_json_canon(res, NULL);
      same = strcmp(canon, baseline[f]) == 0;
      free(canon);
      json_decref(res);
      if (!same) return (void *)2;
    }
  return NULL;
}

static void test_media_probe__concurrent_callers(void **state) {
  pthread_t th[THREADS];
  for (size_t f = 0; f < NFILES; f++) {
    json_t *res = probe(concurrent_files[f]);
    baseline[f] = cu_json_canon(res, NULL);
    json_decref(res);
  }
  for (uintptr_t t = 0; t < THREADS; t++)
    assert_int_equal(pthread_create(&th[t], NULL, probe_worker, (void *)t), 0);
  for (int t = 0; t < THREADS; t++) {
    void *rv = (void *)-1;
    assert_int_equal(pthread_join(th[t], &rv), 0);
    assert_null(rv);
  }
  for (size_t f = 0; f < NFILES; f++) free(baseline[f]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_media_probe__mp4_h264_aac_with_tags),
      cmocka_unit_test(test_media_probe__rotation_from_display_matrix),
      cmocka_unit_test(test_media_probe__pcm_wav),
      cmocka_unit_test(test_media_probe__mjpeg_avi),
      cmocka_unit_test(test_media_probe__a_length_no_container_states_is_counted),
      cmocka_unit_test(test_media_probe__text_file_is_unparseable),
      cmocka_unit_test(test_media_probe__empty_file_is_unparseable),
      cmocka_unit_test(test_media_probe__no_identifiable_stream),
      cmocka_unit_test(test_media_probe__truncated_mp4_without_moov),
      cmocka_unit_test(test_media_probe__playlist_is_not_followed),
      cmocka_unit_test(test_media_probe__missing_file),
      cmocka_unit_test(test_media_probe__not_a_regular_file),
      cmocka_unit_test(test_media_probe__bad_arguments),
      cmocka_unit_test(test_media_probe__unreadable_file),
      cmocka_unit_test(test_media_probe__unopenable_path_is_io_error),
      cmocka_unit_test(test_media_probe__tag_values_are_cut_and_utf8),
      cmocka_unit_test(test_media_probe__tag_count_is_bounded),
      cmocka_unit_test(test_media_probe__streams_and_tag_bytes_are_bounded),
      cmocka_unit_test(test_media_probe__concurrent_callers),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
