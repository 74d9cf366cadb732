/* media_poster: one JPEG that stands for a recording on a reviewer's page.
 *
 * DESIGN
 * The first video stream is decoded from the start (no seek: a hostile
 * file's index is not trusted, and a second of video is cheap to decode)
 * until the first frame at or after POSTER_AT_S into the recording. The
 * frame is scaled to square pixels, turned the way the display matrix
 * says, and encoded as one baseline JPEG written with plain POSIX I/O. */
#include "poster.h"

#include "mio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "err.h"
#include "json.h"
#include "timeu.h"
#include "banned.h"

#define POSTER_MAX_SIDE 640
/* Far enough in to skip a black or half-built first frame. */
#define POSTER_AT_S 1
/* Progress reports at most this often (media.h: a few times a second). */
#define POSTER_PROGRESS_US 250000
/* JPEG quantiser scale as ffmpeg's -q:v (2 best, 31 worst): text on screen
 * (a clock, a plate) stays legible. */
#define POSTER_QSCALE 3

static void oom(void) {
  fprintf(stderr, "custos: out of memory in media_poster\n");
  abort();
}

static void jset(json_t *obj, const char *key, json_t *v) {
  if (!v || json_object_set_new(obj, key, v) != 0) oom();
}

/* Clockwise quarter turns that make the picture stand as filmed: 0..3. The
 * stream's display matrix wins over a frame's; angles that are not a
 * multiple of 90 degrees are ignored, as players do. */
static int quarter_turns(const AVStream *st, const AVFrame *f) {
  const int32_t *m = NULL;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 29, 100)
  const AVPacketSideData *sd = av_packet_side_data_get(
      st->codecpar->coded_side_data, st->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  if (sd && sd->size >= 9 * sizeof(int32_t)) m = (const int32_t *)sd->data;
#else
  size_t size = 0;
  const uint8_t *sd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (sd && size >= 9 * sizeof(int32_t)) m = (const int32_t *)sd;
#endif
  if (!m) {
    const AVFrameSideData *fsd = av_frame_get_side_data(f, AV_FRAME_DATA_DISPLAYMATRIX);
    if (fsd && fsd->size >= 9 * sizeof(int32_t)) m = (const int32_t *)fsd->data;
  }
  if (!m) return 0;
  /* av_display_rotation_get() is counter-clockwise. Whole degrees, in
   * integers: custos_media does not link libm. */
  double cw = -av_display_rotation_get(m);
  if (!(cw > -1e6 && cw < 1e6)) return 0; /* NaN from a degenerate matrix */
  int64_t deg = (int64_t)(cw < 0 ? cw - 0.5 : cw + 0.5) % 360;
  if (deg < 0) deg += 360;
  int64_t q = (deg + 45) / 90, off = deg - q * 90;
  if (off < -1 || off > 1) return 0;
  return (int)(q % 4);
}

/* Turns one w x h plane of bytes clockwise by q quarter turns into d. */
static void turn_plane(const uint8_t *s, int sls, int w, int h, uint8_t *d, int dls, int q) {
  if (q == 1) /* d is h x w: its row y is column y of s, read bottom up */
    for (int y = 0; y < w; y++)
      for (int x = 0; x < h; x++)
        d[(ptrdiff_t)y * dls + x] = s[(ptrdiff_t)(h - 1 - x) * sls + y];
  else if (q == 2)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        d[(ptrdiff_t)y * dls + x] = s[(ptrdiff_t)(h - 1 - y) * sls + (w - 1 - x)];
  else /* q == 3: row y of d is column w-1-y of s, read top down */
    for (int y = 0; y < w; y++)
      for (int x = 0; x < h; x++)
        d[(ptrdiff_t)y * dls + x] = s[(ptrdiff_t)x * sls + (w - 1 - y)];
}

static int write_file(const char *path, const uint8_t *data, size_t n) {
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644), rc = 0;
  if (fd < 0)
    return cu_error_errno(errno == ENOSPC ? CU_ENOSPC : CU_EIO, errno, "cannot create %s", path);
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      rc = cu_error_errno(e == ENOSPC ? CU_ENOSPC : CU_EIO, e, "cannot write %s", path);
      goto done;
    }
    data += w;
    n -= (size_t)w;
  }
  if (fsync(fd) != 0)
    rc = cu_error_errno(errno == ENOSPC ? CU_ENOSPC : CU_EIO, errno, "cannot sync %s", path);
done:
  if (close(fd) != 0 && !rc)
    rc = cu_error_errno(errno == ENOSPC ? CU_ENOSPC : CU_EIO, errno, "cannot close %s", path);
  return rc;
}

static int first_video(const AVFormatContext *ic) {
  for (unsigned i = 0; i < ic->nb_streams; i++) {
    const AVStream *st = ic->streams[i];
    /* Cover art is a picture attached to audio, not a recording's frame. */
    if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
        !(st->disposition & AV_DISPOSITION_ATTACHED_PIC) &&
        avcodec_find_decoder(st->codecpar->codec_id))
      return (int)i;
  }
  return -1;
}

/* Bound on timestamps we compute with: a file's can be anything, and an
 * overflowing sum is undefined. */
#define POSTER_TS_MAX (INT64_C(1) << 60)

static int64_t sane(int64_t ts) {
  return ts < -POSTER_TS_MAX || ts > POSTER_TS_MAX ? AV_NOPTS_VALUE : ts;
}

typedef struct {
  AVFrame *first;  /* the fallback: the first frame, or the first whole one */
  AVFrame *chosen; /* the first whole frame at or after the target */
  int64_t target;  /* in the stream's time base; AV_NOPTS_VALUE until known */
  bool first_whole;
} pick;

/* Keeps f if it is one we may show. */
static int consider(pick *p, AVFrame *f, int64_t at) {
  bool whole = !f->decode_error_flags && !(f->flags & AV_FRAME_FLAG_CORRUPT);
  int64_t ts = sane(f->best_effort_timestamp);
  int err;
  if (!p->first->buf[0] || (whole && !p->first_whole)) {
    av_frame_unref(p->first);
    if ((err = av_frame_ref(p->first, f)) < 0) return mio_av_error(err, "cannot keep a frame");
    p->first_whole = whole;
  }
  /* With no start time known, the recording starts at its first frame. */
  if (p->target == AV_NOPTS_VALUE && ts != AV_NOPTS_VALUE) p->target = ts + at;
  if (whole && ts != AV_NOPTS_VALUE && p->target != AV_NOPTS_VALUE && ts >= p->target &&
      (err = av_frame_ref(p->chosen, f)) < 0)
    return mio_av_error(err, "cannot keep a frame");
  return 0;
}

/* Feeds pkt (NULL: the end) to dec until a frame is chosen. */
static int decode(AVCodecContext *dec, const AVPacket *pkt, AVFrame *f, pick *p, int64_t at) {
  int err = avcodec_send_packet(dec, pkt);
  if (err < 0 && err != AVERROR_EOF && pkt) return 0; /* a damaged packet: the next one */
  while (!p->chosen->buf[0]) {
    err = avcodec_receive_frame(dec, f);
    if (err < 0) return 0; /* EAGAIN, the end, or damage: the next packet */
    int rc = consider(p, f, at);
    av_frame_unref(f);
    if (rc) return rc;
  }
  return 0;
}

int media_poster(const char *src, const char *dst, int max_side, const media_ctl *ctl,
                 json_t **report) {
  mio_in in = {.io.fd = -1};
  AVCodecContext *dec = NULL, *enc = NULL;
  AVPacket *pkt = NULL;
  AVFrame *f = NULL, *scaled = NULL, *turned = NULL;
  pick p = {0};
  struct SwsContext *sws = NULL;
  int rc = 0, err, vi;
  int64_t last_progress_us = 0;

  if (report) *report = NULL;
  if (max_side == 0) max_side = POSTER_MAX_SIDE;
  if (!src || !dst || !report || max_side < 2) {
    rc = cu_error(CU_EINVAL, "media_poster needs a source, a destination, a report and a "
                             "max_side of 0 or at least 2");
    goto done;
  }
  if ((rc = mio_open(&in, src, ctl, ctl ? ctl->deadline_us : 0))) goto done;
  if ((vi = first_video(in.ic)) < 0) {
    rc = cu_error(CU_EUNSUPPORTED, "it has no video stream that libavcodec can decode");
    goto done;
  }
  AVStream *st = in.ic->streams[vi];
  for (unsigned i = 0; i < in.ic->nb_streams; i++)
    if ((int)i != vi) in.ic->streams[i]->discard = AVDISCARD_ALL;
  mio_capture_begin();
  rc = mio_decoder(&dec, st, 0);
  mio_capture_end();
  if (rc) goto done;
  if (!(pkt = av_packet_alloc()) || !(f = av_frame_alloc()) || !(p.first = av_frame_alloc()) ||
      !(p.chosen = av_frame_alloc())) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }

  /* The recording's start: the file's (audio may begin before video), else
   * the stream's, else (consider) its first frame. */
  int64_t at = sane(av_rescale_q(POSTER_AT_S * AV_TIME_BASE, AV_TIME_BASE_Q, st->time_base));
  if (at == AV_NOPTS_VALUE) at = 0; /* an absurd time base: the first frame will do */
  int64_t start = sane(in.ic->start_time) != AV_NOPTS_VALUE
                      ? sane(av_rescale_q(in.ic->start_time, AV_TIME_BASE_Q, st->time_base))
                      : sane(st->start_time);
  p.target = start == AV_NOPTS_VALUE ? AV_NOPTS_VALUE : start + at;

  while (!p.chosen->buf[0] && !mio_stopped(&in.io)) {
    if (av_read_frame(in.ic, pkt) < 0) break; /* the end, damage, or ours (below) */
    if (pkt->stream_index == vi) {
      int64_t now = cu_mono_us();
      if (!last_progress_us || now - last_progress_us >= POSTER_PROGRESS_US) {
        last_progress_us = now;
        mio_progress(&in, pkt);
      }
      rc = decode(dec, pkt, f, &p, at);
    }
    av_packet_unref(pkt);
    if (rc) goto done;
  }
  if ((rc = mio_own_failure(&in.io, "making the poster frame"))) goto done;
  if (!p.chosen->buf[0] && (rc = decode(dec, NULL, f, &p, at))) goto done;
  AVFrame *pic = p.chosen->buf[0] ? p.chosen : p.first;
  if (!pic->buf[0] || pic->width <= 0 || pic->height <= 0) {
    rc = cu_error(CU_EUNSUPPORTED, "not one frame of its video could be decoded");
    goto done;
  }

  /* Square pixels: a browser ignores a JPEG's pixel shape. */
  AVRational sar = pic->sample_aspect_ratio.num > 0 ? pic->sample_aspect_ratio
                                                    : av_guess_sample_aspect_ratio(in.ic, st, pic);
  int64_t dw = pic->width;
  if (sar.num > 0 && sar.den > 0) dw = av_rescale(pic->width, sar.num, sar.den);
  if (dw < 1 || dw > 16 * (int64_t)pic->width) dw = pic->width; /* a nonsense ratio */
  int ow, oh;
  mio_fit(dw, pic->height, max_side, &ow, &oh);

  if (!(sws = sws_getContext(pic->width, pic->height, pic->format, ow, oh, AV_PIX_FMT_YUVJ420P,
                             SWS_BICUBIC, NULL, NULL, NULL))) {
    rc = cu_error(CU_EUNSUPPORTED, "swscale cannot convert its pictures (%s)",
                  av_get_pix_fmt_name(pic->format) ? av_get_pix_fmt_name(pic->format) : "?");
    goto done;
  }
  int cs = pic->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : pic->colorspace;
  sws_setColorspaceDetails(sws, sws_getCoefficients(cs), pic->color_range == AVCOL_RANGE_JPEG,
                           sws_getCoefficients(SWS_CS_ITU601), 1, 0, 1 << 16, 1 << 16);
  if (!(scaled = av_frame_alloc())) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  scaled->format = AV_PIX_FMT_YUVJ420P;
  scaled->width = ow;
  scaled->height = oh;
  if ((err = av_frame_get_buffer(scaled, 0)) < 0) {
    rc = mio_av_error(err, "cannot allocate a frame");
    goto done;
  }
  if (sws_scale(sws, (const uint8_t *const *)pic->data, pic->linesize, 0, pic->height, scaled->data,
                scaled->linesize) <= 0) {
    rc = cu_error(CU_EIO, "swscale failed on the poster frame");
    goto done;
  }

  int q = quarter_turns(st, pic);
  AVFrame *out = scaled;
  if (q) {
    if (!(turned = av_frame_alloc())) {
      rc = cu_error(CU_EIO, "out of memory");
      goto done;
    }
    turned->format = AV_PIX_FMT_YUVJ420P;
    turned->width = q == 2 ? ow : oh;
    turned->height = q == 2 ? oh : ow;
    if ((err = av_frame_get_buffer(turned, 0)) < 0) {
      rc = mio_av_error(err, "cannot allocate a frame");
      goto done;
    }
    for (int i = 0; i < 3; i++) {
      int w = i ? ow / 2 : ow, h = i ? oh / 2 : oh; /* even sizes: chroma is exactly half */
      turn_plane(scaled->data[i], scaled->linesize[i], w, h, turned->data[i], turned->linesize[i],
                 q);
    }
    out = turned;
  }

  const AVCodec *mjpeg = avcodec_find_encoder_by_name("mjpeg");
  if (!mjpeg) {
    rc = cu_error(CU_EIO, "this libavcodec has no mjpeg encoder");
    goto done;
  }
  if (!(enc = avcodec_alloc_context3(mjpeg))) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  enc->width = out->width;
  enc->height = out->height;
  enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
  enc->color_range = AVCOL_RANGE_JPEG;
  enc->sample_aspect_ratio = (AVRational){1, 1};
  enc->time_base = (AVRational){1, 25}; /* one picture: any will do */
  enc->flags |= AV_CODEC_FLAG_QSCALE;
  enc->global_quality = FF_QP2LAMBDA * POSTER_QSCALE;
  enc->thread_count = 1;
  if ((err = avcodec_open2(enc, mjpeg, NULL)) < 0) {
    rc = mio_av_error(err, "cannot open the mjpeg encoder");
    goto done;
  }
  out->pts = 0;
  /* With a fixed quantiser the encoder takes it from the frame. */
  out->quality = enc->global_quality;
  out->pict_type = AV_PICTURE_TYPE_I;
  if ((err = avcodec_send_frame(enc, out)) < 0 || (err = avcodec_send_frame(enc, NULL)) < 0 ||
      (err = avcodec_receive_packet(enc, pkt)) < 0) {
    rc = mio_av_error(err, "the mjpeg encoder failed");
    goto done;
  }
  if ((rc = write_file(dst, pkt->data, (size_t)pkt->size))) goto done;

  json_t *r = json_object(), *params = json_object();
  if (!r || !params) oom();
  int64_t base = start != AV_NOPTS_VALUE      ? start
                 : p.target != AV_NOPTS_VALUE ? p.target - at
                                              : AV_NOPTS_VALUE;
  int64_t ts = sane(pic->best_effort_timestamp);
  double pts_s = ts == AV_NOPTS_VALUE || base == AV_NOPTS_VALUE
                     ? 0.0
                     : (double)av_rescale_q(ts - base, st->time_base, AV_TIME_BASE_Q) / 1e6;
  jset(r, "width", json_integer(enc->width));
  jset(r, "height", json_integer(enc->height));
  jset(r, "pts_s", json_real(pts_s));
  jset(params, "codec", json_string("mjpeg"));
  jset(params, "max_side", json_integer(max_side));
  jset(params, "at_s", json_real(POSTER_AT_S));
  jset(r, "params", params);
  *report = r;

done:
  mio_close(&in);
  avcodec_free_context(&dec);
  avcodec_free_context(&enc);
  av_packet_free(&pkt);
  av_frame_free(&f);
  av_frame_free(&p.first);
  av_frame_free(&p.chosen);
  av_frame_free(&scaled);
  av_frame_free(&turned);
  sws_freeContext(sws);
  return rc;
}
