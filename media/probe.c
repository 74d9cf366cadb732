/* media_probe: a file's container, streams and tags, as JSON.
 *
 * DESIGN
 * The file is opened through mio (hostile input: libavformat never sees the
 * path, nested opens are refused, a deadline bounds the work).
 *
 * Three things can stop a probe, and they are kept apart because the caller
 * treats them differently:
 *   - the file is not media: a verdict, returned as status "unparseable";
 *   - reading the file failed: CU_EIO, our failure;
 *   - the deadline passed: CU_EIO, so a loaded machine does not mark good
 *     footage unparseable for ever. */
#include "probe.h"

#include "mio.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void oom(void) {
  fprintf(stderr, "custos: out of memory in media_probe\n");
  abort();
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

/* The length of a recording whose container states none (a raw H.264 or
 * HEVC stream, an MJPEG camera stream, Matroska written live): the packets
 * are read to the end. A stream whose packets all carry times spans its
 * first to its last; in one without (a raw stream), libavformat gives each
 * packet its duration from the frame rate, and those are summed. The longest
 * stream is the recording's length. Reading is cheap next to decoding, but
 * the file is read whole, so past soft_deadline the length is left out
 * rather than guessed; a read error leaves it out too. Still images have no
 * length. */
typedef struct {
  double sum, first, end; /* in the stream's time base; doubles, as hostile
                           * times must not overflow */
  bool untimed, timed;
} extent;

static void count_duration(json_t *res, mio_in *in, const char *path, int64_t soft_deadline) {
  AVFormatContext *ic = in->ic;
  if (ic->duration != AV_NOPTS_VALUE || mio_still_image(in, path)) return;
  extent *x = calloc(ic->nb_streams, sizeof *x);
  AVPacket *p = av_packet_alloc();
  bool whole = false;
  while (x && p && cu_mono_us() < soft_deadline) {
    int err = av_read_frame(ic, p);
    if (err == AVERROR_EOF) {
      whole = true;
      break;
    }
    if (err == AVERROR(EAGAIN)) continue;
    if (err < 0) break;
    if (p->stream_index >= 0 && (unsigned)p->stream_index < ic->nb_streams) {
      extent *e = &x[p->stream_index];
      double d = p->duration > 0 ? (double)p->duration : 0, t = (double)p->pts;
      e->sum += d;
      if (p->pts == AV_NOPTS_VALUE) {
        e->untimed = true;
      } else if (!e->timed) {
        e->timed = true, e->first = t, e->end = t + d;
      } else {
        if (t < e->first) e->first = t;
        if (t + d > e->end) e->end = t + d;
      }
    }
    av_packet_unref(p);
  }
  double longest = 0;
  for (unsigned i = 0; whole && i < ic->nb_streams; i++) {
    enum AVMediaType type = ic->streams[i]->codecpar->codec_type;
    double ticks = x[i].untimed || !x[i].timed ? x[i].sum : x[i].end - x[i].first;
    double d = ticks * av_q2d(ic->streams[i]->time_base);
    if ((type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO) && d > longest) longest = d;
  }
  /* Past 30 000 years is a damaged stream's times, not a length. */
  if (whole && longest > 0 && longest < 1e12) {
    jset(res, "duration_s", json_real(longest));
    jset(res, "duration_from", json_string("packets"));
  }
  av_packet_free(&p);
  free(x);
}

int media_probe(const char *path, int timeout_sec, json_t **out) {
  mio_in in;
  json_t *res = NULL;

  if (out) *out = NULL;
  if (!path || !out) return cu_error(CU_EINVAL, "media_probe needs a path and a result");
  if (timeout_sec <= 0) timeout_sec = CU_PROBE_TIMEOUT_SEC;
  int64_t deadline = cu_mono_us() + (int64_t)timeout_sec * 1000000;
  int ret = mio_open(&in, path, NULL, deadline);
  if (ret == CU_EIO && (in.io.timed_out))
    ret = cu_error(CU_EIO, "probing %s gave up after %d s", path, timeout_sec);
  if (ret && ret != CU_EUNSUPPORTED && ret != CU_ECORRUPT) goto done;
  res = jobject();
  jset(res, "libavformat", json_string(media_libavformat_version()));
  if (ret) {
    set_unparseable(res, cu_errmsg());
    /* Recognised but unreadable: the recording is damaged, which a person
     * must hear about, not just "not media". */
    if (ret == CU_ECORRUPT) jset(res, "damaged", json_true());
    ret = 0;
    goto done;
  }
  bool identified = false;
  for (unsigned i = 0; i < in.ic->nb_streams; i++)
    if (in.ic->streams[i]->codecpar->codec_id != AV_CODEC_ID_NONE) identified = true;
  if (!identified) {
    set_unparseable(res, "no audio or video streams libavformat can identify");
    goto done;
  }
  describe(res, in.ic);
  count_duration(res, &in, path, cu_mono_us() + (deadline - cu_mono_us()) / 2);

done:
  mio_close(&in);
  if (ret == 0) *out = res;
  else json_decref(res);
  return ret;
}
