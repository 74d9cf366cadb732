/* media_probe: a file's container, streams and tags, as JSON.
 *
 * DESIGN
 * The file is opened here, checked to be a regular file, and its bytes are
 * handed to libavformat through our own AVIOContext. libavformat never sees
 * the path: it cannot read "concat:" or "http:" in it as a protocol, it
 * cannot pick a demuxer by extension (so the verdict follows the bytes
 * alone), and our io_open refuses every nested open, so an uploaded
 * playlist cannot make a probe read other files or the network.
 *
 * Three things can stop a probe, and they are kept apart because the caller
 * treats them differently:
 *   - the file is not media: a verdict, returned as status "unparseable";
 *   - reading the file failed: CU_EIO, our failure (the read errno is kept
 *     by the read callback, whatever libav makes of it);
 *   - the deadline passed: CU_EIO, so a loaded machine does not mark good
 *     footage unparseable for ever. The deadline is checked in the read
 *     callback and in the AVIOInterruptCB. avformat_find_stream_info can
 *     return success after an interrupt, so the flag is what we trust, not
 *     the return code.
 *
 * libav explains failures ("moov atom not found") only through av_log,
 * which is process-wide. A log callback installed once keeps the first
 * error-level message of the probe running on the calling thread (a
 * thread-local buffer), so the reason a person reads can quote it; messages
 * outside a probe go to our log as warnings. find_stream_info forces one
 * decoder thread, so a probe's messages come from its own thread. */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>

#include "cu_limits.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

#if LIBAVCODEC_VERSION_INT < AV_VERSION_INT(59, 37, 100)
#error "media/probe.c needs FFmpeg 5.1 or later (AVChannelLayout)"
#endif

/* Bytes libavformat may read while guessing stream parameters (ffprobe's
 * default is 5 MB; high-bit-rate 4K footage needs more before every stream
 * has shown a packet). Bounded, so a probe never reads a whole file. */
#define PROBE_SIZE (32 * 1024 * 1024)
/* Media time libavformat may analyse, in microseconds; see PROBE_SIZE. */
#define PROBE_ANALYZE_US (30LL * 1000 * 1000)
/* Our AVIOContext's buffer. libav may grow it while probing a format. */
#define PROBE_IO_BUF (64 * 1024)
/* The name libavformat is given instead of the path (see media_probe). */
#define PROBE_URL "custos-probe-input"
/* A reason, and the libav message quoted in it. */
#define REASON_MAX 768
#define LOGMSG_MAX 256

typedef struct {
  int fd;
  int64_t size;
  int64_t deadline_us; /* on cu_mono_us()'s clock */
  bool timed_out;
  int read_errno;    /* first failure of read() on the file, else 0 */
  bool refused_open; /* the file named another file or a URL */
} probe_io;

/* The calling thread's probe, if any, and libav's first error during it. */
static _Thread_local struct {
  bool active;
  char first[LOGMSG_MAX];
} capture;

static pthread_once_t libav_once = PTHREAD_ONCE_INIT;

static void oom(void) {
  fprintf(stderr, "custos: out of memory in media_probe\n");
  abort();
}

static void log_cb(void *avcl, int level, const char *fmt, va_list vl)
    __attribute__((format(printf, 3, 0)));
static void log_cb(void *avcl, int level, const char *fmt, va_list vl) {
  char line[LOGMSG_MAX];
  size_t n;
  int full;

  if (level > av_log_get_level()) return;
  full = vsnprintf(line, sizeof line, fmt, vl);
  n = strlen(line);
  /* Cut short: drop what may be half a character. */
  if (full >= (int)sizeof line)
    while (n > 0 && ((unsigned char)line[n - 1] & 0x80)) n--;
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
  line[n] = '\0';
  /* Text from a file can reach a message; a reason must be UTF-8. */
  if (n == 0 || !cu_utf8_valid(line, n)) return;
  if (capture.active) {
    if (!capture.first[0]) memcpy(capture.first, line, n + 1);
    return;
  }
  cu_warn("libav: %s", line);
}

static void init_libav(void) {
  av_log_set_level(AV_LOG_ERROR);
  av_log_set_callback(log_cb);
}

static bool past_deadline(probe_io *io) {
  if (!io->timed_out && cu_mono_us() > io->deadline_us) io->timed_out = true;
  return io->timed_out;
}

static int interrupt_cb(void *opaque) { return past_deadline(opaque) ? 1 : 0; }

static int io_read(void *opaque, uint8_t *buf, int n) {
  probe_io *io = opaque;

  if (past_deadline(io)) return AVERROR_EXIT;
  for (;;) {
    ssize_t r = read(io->fd, buf, (size_t)n);
    if (r > 0) return (int)r;
    if (r == 0) return AVERROR_EOF;
    if (errno == EINTR) continue;
    if (!io->read_errno) io->read_errno = errno;
    return AVERROR(errno);
  }
}

static int64_t io_seek(void *opaque, int64_t offset, int whence) {
  probe_io *io = opaque;
  off_t r;

  if (whence & AVSEEK_SIZE) return io->size;
  whence &= ~AVSEEK_FORCE;
  if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) return AVERROR(EINVAL);
  /* A bad offset from a demuxer is the file's doing, not a read failure. */
  r = lseek(io->fd, (off_t)offset, whence);
  return r < 0 ? AVERROR(errno) : (int64_t)r;
}

/* Nested opens (playlists, references, image sequences) are never made. */
static int refuse_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url,
                          int flags, AVDictionary **options) {
  probe_io *io = s->opaque; /* nested contexts share it */
  if (io) io->refused_open = true;
  return AVERROR(EACCES);
}

static void jset(json_t *obj, const char *key, json_t *v) {
  if (!v || json_object_set_new(obj, key, v) != 0) oom();
}

static json_t *jobject(void) {
  json_t *o = json_object();
  if (!o) oom();
  return o;
}

/* Length of the longest prefix of s (n bytes) that has at most max bytes and
 * does not end inside a multi-byte character; s[max] exists when n > max. */
static size_t utf8_cut(const char *s, size_t n, size_t max) {
  size_t k;
  if (n <= max) return n;
  k = max;
  while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
  return k;
}

/* A tag value as we keep it (cut to CU_MAX_TAG_VALUE), or NULL if the kept
 * part is not UTF-8. */
static json_t *tag_string(const char *s) {
  size_t n = utf8_cut(s, strnlen(s, CU_MAX_TAG_VALUE + 1), CU_MAX_TAG_VALUE);
  json_t *v;
  if (!cu_utf8_valid(s, n)) return NULL;
  v = json_stringn(s, n);
  if (!v) oom();
  return v;
}

/* Sets key to the tag value if it exists and is UTF-8. Returns whether it did. */
static bool lift_tag(json_t *obj, const char *key, const AVDictionary *d, const char *tag) {
  const AVDictionaryEntry *e = av_dict_get(d, tag, NULL, 0);
  json_t *v;
  if (!e || !(v = tag_string(e->value))) return false;
  jset(obj, key, v);
  return true;
}

static void lift_first(json_t *obj, const char *key, const AVDictionary *d,
                       const char *const *tags) {
  for (; *tags; tags++)
    if (lift_tag(obj, key, d, *tags)) return;
}

/* Copies d into obj["tags"] under the rules in probe.h, charging *budget,
 * and sets obj["tags_omitted"] when something was left out. */
static void put_tags(json_t *obj, const AVDictionary *d, size_t *budget) {
  json_t *tags = jobject();
  const AVDictionaryEntry *e = NULL;
  int total = av_dict_count(d);

  while ((e = av_dict_get(d, "", e, AV_DICT_IGNORE_SUFFIX))) {
    size_t klen = strnlen(e->key, CU_MAX_TAG_VALUE + 1), vlen;
    json_t *v;
    if (json_object_size(tags) >= CU_MAX_TAGS) break;
    if (klen > CU_MAX_TAG_VALUE || !cu_utf8_valid(e->key, klen)) continue;
    if (json_object_get(tags, e->key)) continue; /* a repeated key: the first wins */
    if (!(v = tag_string(e->value))) continue;
    vlen = json_string_length(v);
    if (klen + vlen > *budget) {
      json_decref(v);
      continue;
    }
    *budget -= klen + vlen;
    jset(tags, e->key, v);
  }
  if (total > (int)json_object_size(tags))
    jset(obj, "tags_omitted", json_integer(total - (json_int_t)json_object_size(tags)));
  jset(obj, "tags", tags);
}

static void put_rational(json_t *obj, const char *key, AVRational q) {
  char s[32];
  if (q.num <= 0 || q.den <= 0) return;
  snprintf(s, sizeof s, "%d/%d", q.num, q.den);
  jset(obj, key, json_string(s));
}

/* Seconds, rounded to the microsecond first so the same time always gives
 * the same double (and the same canonical JSON) whatever the time base. */
static void put_seconds(json_t *obj, const char *key, int64_t t, AVRational tb) {
  if (t == AV_NOPTS_VALUE || tb.num <= 0 || tb.den <= 0) return;
  jset(obj, key, json_real((double)av_rescale_q(t, tb, AV_TIME_BASE_Q) / 1e6));
}

/* Degrees counter-clockwise from the stream's display matrix, or NaN. */
static double stream_rotation(const AVStream *st) {
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 29, 100)
  const AVPacketSideData *sd =
      av_packet_side_data_get(st->codecpar->coded_side_data, st->codecpar->nb_coded_side_data,
                              AV_PKT_DATA_DISPLAYMATRIX);
  if (!sd || sd->size < 9 * sizeof(int32_t)) return NAN;
  return av_display_rotation_get((const int32_t *)sd->data);
#else
  size_t size = 0;
  const uint8_t *sd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (!sd || size < 9 * sizeof(int32_t)) return NAN;
  return av_display_rotation_get((const int32_t *)sd);
#endif
}

static json_t *stream_json(const AVStream *st, size_t *budget) {
  const AVCodecParameters *par = st->codecpar;
  const char *type = av_get_media_type_string(par->codec_type);
  const char *s;
  json_t *o = jobject();

  jset(o, "index", json_integer(st->index));
  jset(o, "type", json_string(type ? type : "unknown"));
  jset(o, "codec", json_string(avcodec_get_name(par->codec_id)));
  if (par->profile != FF_PROFILE_UNKNOWN &&
      (s = avcodec_profile_name(par->codec_id, par->profile)))
    jset(o, "profile", json_string(s));
  if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
    double rot;
    if (par->width > 0) jset(o, "width", json_integer(par->width));
    if (par->height > 0) jset(o, "height", json_integer(par->height));
    if ((s = av_get_pix_fmt_name((enum AVPixelFormat)par->format)))
      jset(o, "pix_fmt", json_string(s));
    put_rational(o, "frame_rate", st->r_frame_rate);
    put_rational(o, "avg_frame_rate", st->avg_frame_rate);
    if (!isnan(rot = stream_rotation(st))) jset(o, "rotation", json_real(rot));
  } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
    char layout[128];
    int n;
    if (par->sample_rate > 0) jset(o, "sample_rate", json_integer(par->sample_rate));
    if (par->ch_layout.nb_channels > 0)
      jset(o, "channels", json_integer(par->ch_layout.nb_channels));
    if (par->ch_layout.order != AV_CHANNEL_ORDER_UNSPEC &&
        (n = av_channel_layout_describe(&par->ch_layout, layout, sizeof layout)) > 0 &&
        (size_t)n <= sizeof layout)
      jset(o, "channel_layout", json_string(layout));
  }
  if (par->bit_rate > 0) jset(o, "bit_rate", json_integer(par->bit_rate));
  put_seconds(o, "duration_s", st->duration, st->time_base);
  lift_tag(o, "language", st->metadata, "language");
  put_tags(o, st->metadata, budget);
  return o;
}

static void set_unparseable(json_t *res, const char *reason) {
  jset(res, "status", json_string("unparseable"));
  jset(res, "reason", json_string(reason));
}

/* The verdict when libavformat gave up with err: "what: <av_strerror>" (or
 * why, if given) and what libav logged; or, when the file named other files,
 * that first, as it is the cause of whatever libav said next. */
static void set_libav_failure(json_t *res, const char *what, int err, const char *why,
                              const probe_io *io) {
  char reason[REASON_MAX], etext[128];
  const char *logged = capture.first;
  if (why) snprintf(etext, sizeof etext, "%s", why);
  else av_strerror(err, etext, sizeof etext);
  if (io->refused_open)
    snprintf(reason, sizeof reason,
             "%s: it names other files or URLs, which a probe never opens (%s%s%s)", what,
             etext, logged[0] ? "; " : "", logged);
  else
    snprintf(reason, sizeof reason, "%s: %s%s%s%s", what, etext, logged[0] ? " (" : "", logged,
             logged[0] ? ")" : "");
  set_unparseable(res, reason);
}

/* Our failures after a libav call, whatever it returned; 0 if none.
 * AVERROR(ENOMEM) is not among them: libav returns it for sizes a file
 * declares beyond av_malloc's limit, and for some malformed input, so it
 * is a verdict on the file. */
static int own_failure(const probe_io *io, const char *path, int timeout_sec) {
  if (io->read_errno) return cu_error_errno(CU_EIO, io->read_errno, "cannot read %s", path);
  if (io->timed_out)
    return cu_error(CU_EIO, "probing %s gave up after %d s", path, timeout_sec);
  return 0;
}

static void describe(json_t *res, const AVFormatContext *ic) {
  static const char *const make_tags[] = {"make", "com.apple.quicktime.make",
                                          "com.android.manufacturer", NULL};
  static const char *const model_tags[] = {"model", "com.apple.quicktime.model",
                                           "com.android.model", NULL};
  static const char *const location_tags[] = {
      "location", "com.apple.quicktime.location.ISO6709", "location-eng", NULL};
  size_t budget = CU_MAX_PROBE_TAG_BYTES;
  json_t *streams = json_array();
  unsigned listed = ic->nb_streams < CU_MAX_PROBE_STREAMS ? ic->nb_streams
                                                             : CU_MAX_PROBE_STREAMS;

  if (!streams) oom();
  jset(res, "status", json_string("ok"));
  jset(res, "container", json_string(ic->iformat->name));
  if (ic->iformat->long_name) jset(res, "container_long", json_string(ic->iformat->long_name));
  jset(res, "probe_score", json_integer(ic->probe_score));
  put_seconds(res, "duration_s", ic->duration, AV_TIME_BASE_Q);
  put_seconds(res, "start_time_s", ic->start_time, AV_TIME_BASE_Q);
  if (ic->bit_rate > 0) jset(res, "bit_rate", json_integer(ic->bit_rate));
  jset(res, "nb_streams", json_integer(ic->nb_streams));
  /* Container tags are charged first: they describe the recording. */
  put_tags(res, ic->metadata, &budget);
  for (unsigned i = 0; i < listed; i++)
    if (json_array_append_new(streams, stream_json(ic->streams[i], &budget)) != 0) oom();
  jset(res, "streams", streams);

  if (!lift_tag(res, "creation_time", ic->metadata, "creation_time"))
    for (unsigned i = 0; i < ic->nb_streams; i++)
      if (lift_tag(res, "creation_time", ic->streams[i]->metadata, "creation_time")) break;
  lift_first(res, "make", ic->metadata, make_tags);
  lift_first(res, "model", ic->metadata, model_tags);
  lift_first(res, "location", ic->metadata, location_tags);
}

int media_probe(const char *path, int timeout_sec, json_t **out) {
  int ret = 0, fd = -1, err;
  unsigned char *iobuf = NULL;
  AVIOContext *avio = NULL;
  AVFormatContext *ic = NULL;
  json_t *res = NULL;
  probe_io io = {.fd = -1};
  struct stat st;
  unsigned v = avformat_version();
  char version[32];
  bool identified = false;

  if (out) *out = NULL;
  if (!path || !out) return cu_error(CU_EINVAL, "media_probe needs a path and a result");
  pthread_once(&libav_once, init_libav);
  if (timeout_sec <= 0) timeout_sec = CU_PROBE_TIMEOUT_SEC;

  /* O_NONBLOCK: opening a FIFO must not wait for a writer; reads of a
   * regular file ignore it. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    ret = cu_error_errno(e == ENOENT || e == ENOTDIR ? CU_ENOTFOUND : CU_EIO, e,
                         "cannot open %s", path);
    goto done;
  }
  if (fstat(fd, &st) != 0) {
    ret = cu_error_errno(CU_EIO, errno, "cannot stat %s", path);
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    ret = cu_error(CU_EINVAL, "%s is not a regular file", path);
    goto done;
  }

  res = jobject();
  snprintf(version, sizeof version, "%u.%u.%u", AV_VERSION_MAJOR(v), AV_VERSION_MINOR(v),
           AV_VERSION_MICRO(v));
  jset(res, "libavformat", json_string(version));
  if (st.st_size == 0) {
    set_unparseable(res, "the file is empty");
    goto done;
  }

  io.fd = fd;
  io.size = (int64_t)st.st_size;
  io.deadline_us = cu_mono_us() + (int64_t)timeout_sec * 1000000;
  if (!(iobuf = av_malloc(PROBE_IO_BUF))) oom();
  if (!(avio = avio_alloc_context(iobuf, PROBE_IO_BUF, 0, &io, io_read, NULL, io_seek))) oom();
  iobuf = NULL; /* avio owns it now, and may replace it */
  if (!(ic = avformat_alloc_context())) oom();
  ic->pb = avio;
  ic->interrupt_callback.callback = interrupt_cb;
  ic->interrupt_callback.opaque = &io;
  ic->opaque = &io;
  ic->io_open = refuse_io_open;
  ic->probesize = PROBE_SIZE;
  ic->max_analyze_duration = PROBE_ANALYZE_US;

  capture.active = true;
  capture.first[0] = '\0';
  /* The URL is a fixed name with no extension and no protocol: demuxers
   * that resolve names against it (hls) get that far and are refused by
   * refuse_io_open; an empty one makes hls fail with ENOMEM instead. */
  err = avformat_open_input(&ic, PROBE_URL, NULL, NULL); /* frees ic on failure */
  if ((ret = own_failure(&io, path, timeout_sec))) goto done;
  if (err < 0) {
    set_libav_failure(res, "libavformat cannot open it", err, NULL, &io);
    goto done;
  }
  err = avformat_find_stream_info(ic, NULL);
  if ((ret = own_failure(&io, path, timeout_sec))) goto done;
  if (err < 0) {
    /* A bare -1 (which av_strerror calls EPERM) is find_stream_info's "no
     * stream's parameters found"; the refused open uses EACCES. */
    set_libav_failure(res, "libavformat cannot read its streams", err,
                      err == -1 ? "no stream's codec parameters could be found" : NULL, &io);
    goto done;
  }
  for (unsigned i = 0; i < ic->nb_streams; i++)
    if (ic->streams[i]->codecpar->codec_id != AV_CODEC_ID_NONE) identified = true;
  if (!identified) {
    set_unparseable(res, "no audio or video streams libavformat can identify");
    goto done;
  }
  describe(res, ic);

done:
  capture.active = false;
  avformat_close_input(&ic); /* leaves a custom pb alone */
  if (avio) av_freep(&avio->buffer);
  avio_context_free(&avio);
  av_free(iobuf);
  if (fd >= 0) close(fd);
  if (ret == 0) *out = res;
  else json_decref(res);
  return ret;
}
