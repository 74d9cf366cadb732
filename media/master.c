/* media_master: the Matroska master and its lossless check.
 *
 * DESIGN
 * One pass writes the master: packets of copied streams are passed on with
 * their timestamps; transcoded streams are decoded and re-encoded with the
 * same timestamps. Matroska needs rising timestamps, so a jump backwards
 * (an MPEG-TS discontinuity) is evened out as ffmpeg does for such formats,
 * and recorded.
 *
 * A second pass is the check. Two threads decode the original and the
 * master at the same time (so one job keeps both cores busy); each video
 * frame's hash goes into a small queue per stream, and whichever side comes
 * second compares it with the other's. The queues are bounded, so a long
 * recording never builds a list in memory; the two containers interleave
 * streams differently, which the bound (minutes of frames) absorbs. */
#include "master.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/audio_fifo.h>
#include <libavutil/display.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>

#include "err.h"
#include "hex.h"
#include "json.h"
#include "mdecode.h"
#include "mio.h"
#include "banned.h"

/* Frames one side of the check may be ahead of the other, per stream. */
#define CHECK_QUEUE 8192

enum action { ACT_DROP, ACT_COPY, ACT_FFV1, ACT_FLAC, ACT_PCM };
static const char *const action_name[] = {"dropped", "copy", "ffv1", "flac", "pcm_f32le"};
/* A stream the master cannot keep as chosen, found midway, so the master
 * is made again with that stream kept the other way: a transcoded stream
 * whose pictures or samples change shape (one FFV1 or FLAC stream cannot
 * hold that) is copied; a copied video stream whose packets carry no
 * presentation timestamps while its pictures are reordered (a raw H.264 or
 * HEVC stream with B-frames: Matroska cannot place them, and ffmpeg's
 * `-c copy` fails the same way) is made FFV1. An internal code, never
 * returned. */
#define CHANGED_MIDSTREAM 1
enum instead { AS_CHOSEN, COPY_INSTEAD, FFV1_INSTEAD };

typedef struct {
  enum action act;
  const char *reason;
  int out;
  AVCodecContext *dec, *enc;
  AVAudioFifo *fifo;
  SwrContext *swr;
  int64_t next_apts; /* in the encoder's time base */
  int64_t last_dts;  /* in the output time base, for rising timestamps */
  int dec_format;    /* the decoder's sample or pixel format when the encoder was set up */
  mio_arranger arr; /* FFV1 of another arrangement of the pixels */
} mstream;

typedef struct {
  mio_in in;
  AVFormatContext *oc;
  mstream *s;
  unsigned n;
  int nout;
  int threads;
  const unsigned char *instead; /* per input stream: enum instead */
  int changed;                  /* the stream to keep the other way */
  enum instead change_to;
  mdec_ts ts;
  json_t *corrections;
  mdec_errors derr;
  AVPacket *opkt;
  AVFrame *frame, *eframe;
} mctx;

static bool on_allow_list(enum AVCodecID id) {
  static const enum AVCodecID ok[] = {AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_AV1,
                                      AV_CODEC_ID_VP9,  AV_CODEC_ID_MPEG4, AV_CODEC_ID_MJPEG,
                                      AV_CODEC_ID_AAC,  AV_CODEC_ID_MP3,  AV_CODEC_ID_OPUS,
                                      AV_CODEC_ID_FLAC};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    if (id == ok[i]) return true;
  return !strncmp(avcodec_get_name(id), "pcm_", 4);
}

static bool mkv_takes(const AVFormatContext *oc, enum AVCodecID id) {
  if (id == AV_CODEC_ID_NONE) return false;
  if (avformat_query_codec(oc->oformat, id, FF_COMPLIANCE_NORMAL) == 1) return true;
  /* Matroska's VFW mode holds any video codec AVI holds (its fourcc in a
   * BITMAPINFOHEADER), as ffmpeg -c copy writes it: Microsoft Video 1,
   * RLE and screen-capture codecs whose pixels FFV1 cannot take as they
   * are. Raw RGB the muxer refuses. */
  const struct AVCodecTag *const riff[] = {avformat_get_riff_video_tags(), NULL};
  return avcodec_get_type(id) == AVMEDIA_TYPE_VIDEO && id != AV_CODEC_ID_RAWVIDEO &&
         av_codec_get_tag(riff, id) != 0;
}

/* bgr0's fourth byte is padding, which FFV1 does not keep (it decodes it
 * as 0 where a decoder such as ZMBV wrote 255), but the frame hashes cover
 * it. bgra is the same bytes, and FFV1 keeps all four. */
static bool same_bytes(int a, int b) {
  return (a == AV_PIX_FMT_BGR0 && b == AV_PIX_FMT_BGRA) || (a == AV_PIX_FMT_BGRA && b == AV_PIX_FMT_BGR0);
}

/* The pixel format FFV1 keeps pix_fmt's pictures in: itself, bgra for
 * bgr0, or one that holds the same values arranged otherwise (RGB from PNG,
 * QuickTime Animation or raw AVI as bgr0), which the check turns back. */
static int ffv1_format(int pix_fmt) {
  const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_FFV1);
  if (!c) return AV_PIX_FMT_NONE;
  if (pix_fmt == AV_PIX_FMT_BGR0 && mio_same_values_in(c->pix_fmts, AV_PIX_FMT_BGRA) == AV_PIX_FMT_BGRA)
    return AV_PIX_FMT_BGRA;
  return mio_same_values_in(c->pix_fmts, pix_fmt);
}

static bool ffv1_takes(int pix_fmt) { return ffv1_format(pix_fmt) != AV_PIX_FMT_NONE; }

static bool flac_takes(int sample_fmt) {
  enum AVSampleFormat f = av_get_packed_sample_fmt((enum AVSampleFormat)sample_fmt);
  return f == AV_SAMPLE_FMT_S16 || f == AV_SAMPLE_FMT_S32;
}

static bool float_samples(int sample_fmt) {
  return av_get_packed_sample_fmt((enum AVSampleFormat)sample_fmt) == AV_SAMPLE_FMT_FLT;
}

/* What to do with stream i; the usual action or why not. */
static void choose(mctx *c, unsigned i) {
  const AVCodecParameters *par = c->in.ic->streams[i]->codecpar;
  mstream *s = &c->s[i];
  bool mkv = mkv_takes(c->oc, par->codec_id);
  s->act = ACT_DROP;
  switch (par->codec_type) {
  case AVMEDIA_TYPE_VIDEO:
  case AVMEDIA_TYPE_AUDIO: {
    bool video = par->codec_type == AVMEDIA_TYPE_VIDEO;
    if (c->instead && c->instead[i] == FFV1_INSTEAD) {
      bool ffv1 = video && avcodec_find_decoder(par->codec_id) && ffv1_takes(par->format);
      s->act = ffv1 ? ACT_FFV1 : ACT_DROP;
      s->reason = ffv1 ? "its packets carry no presentation timestamps and its pictures are reordered, so "
                         "Matroska cannot hold them as they are; its decoded pictures are kept losslessly"
                       : "its packets carry no presentation timestamps and its pictures are reordered, so "
                         "Matroska cannot hold them as they are, and FFV1 cannot hold its pixels; the "
                         "original keeps it";
    } else if (c->instead && c->instead[i] == COPY_INSTEAD) {
      s->act = mkv ? ACT_COPY : ACT_DROP;
      s->reason = mkv ? "its pictures or samples change shape mid-stream, which one lossless stream "
                        "cannot hold, so the stream is copied"
                      : "its pictures or samples change shape mid-stream and Matroska cannot carry "
                        "it; the original keeps it";
    } else if (on_allow_list(par->codec_id) && mkv) {
      s->act = ACT_COPY;
    } else if (avcodec_find_decoder(par->codec_id) &&
               (video ? ffv1_takes(par->format) : flac_takes(par->format) && par->ch_layout.nb_channels <= 8)) {
      s->act = video ? ACT_FFV1 : ACT_FLAC;
    } else if (mkv) {
      s->act = ACT_COPY;
      s->reason = video ? "its pixels do not fit FFV1 losslessly, so the stream is copied"
                        : "its samples do not fit FLAC losslessly (float), so the stream is copied";
    } else if (!video && avcodec_find_decoder(par->codec_id) && float_samples(par->format)) {
      /* Decoded float samples, kept as they decode: lossless for what a
       * player hears, where the codec itself has no place in Matroska. */
      s->act = ACT_PCM;
      s->reason = "Matroska cannot carry the codec and FLAC cannot hold float samples, so its "
                  "decoded samples are kept as 32-bit float PCM";
    } else {
      s->reason = "it can neither be copied into Matroska nor made lossless; the original keeps it";
    }
    break;
  }
  case AVMEDIA_TYPE_SUBTITLE:
  case AVMEDIA_TYPE_DATA:
  case AVMEDIA_TYPE_ATTACHMENT:
    if (mkv) s->act = ACT_COPY;
    else s->reason = "Matroska cannot carry it; the original keeps it";
    break;
  default:
    s->reason = "a stream of unknown type; the original keeps it";
  }
}

static int open_ffv1(mctx *c, unsigned i, AVStream *ost) {
  AVStream *ist = c->in.ic->streams[i];
  mstream *s = &c->s[i];
  int rc = mio_decoder(&s->dec, ist, c->threads);
  if (rc) return rc;
  const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_FFV1);
  AVCodecContext *e = s->enc = avcodec_alloc_context3(codec);
  if (!e) return cu_error(CU_EIO, "out of memory");
  e->width = s->dec->width, e->height = s->dec->height;
  s->dec_format = s->dec->pix_fmt;
  e->pix_fmt = ffv1_format(s->dec->pix_fmt);
  if (e->pix_fmt == AV_PIX_FMT_NONE)
    return cu_error(CU_EUNSUPPORTED, "FFV1 cannot hold %s pixels", av_get_pix_fmt_name(s->dec->pix_fmt));
  e->sample_aspect_ratio = s->dec->sample_aspect_ratio;
  e->color_range = s->dec->color_range, e->color_primaries = s->dec->color_primaries;
  e->color_trc = s->dec->color_trc, e->colorspace = s->dec->colorspace;
  e->time_base = ist->time_base;
  e->framerate = ist->r_frame_rate;
  e->level = 3;
  e->gop_size = 1;
  e->flags |= AV_CODEC_FLAG_BITEXACT;
  e->thread_count = c->threads;
  if (c->oc->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary *o = NULL;
  av_dict_set(&o, "slicecrc", "1", 0);
  av_dict_set(&o, "coder", "range_def", 0);
  av_dict_set(&o, "context", "1", 0);
  av_dict_set(&o, "slices", e->width * e->height > 1280 * 720 ? "16" : "4", 0);
  int err = avcodec_open2(e, codec, &o);
  av_dict_free(&o);
  if (err < 0) return mio_verdict(NULL, "the FFV1 encoder refused the stream", err, NULL);
  if (avcodec_parameters_from_context(ost->codecpar, e) < 0) return cu_error(CU_EIO, "out of memory");
  ost->time_base = e->time_base;
  return 0;
}

/* FLAC, or 32-bit float PCM for float samples (ACT_PCM). */
static int open_audio(mctx *c, unsigned i, AVStream *ost) {
  AVStream *ist = c->in.ic->streams[i];
  mstream *s = &c->s[i];
  int rc = mio_decoder(&s->dec, ist, 1);
  if (rc) return rc;
  bool pcm = s->act == ACT_PCM;
  const AVCodec *codec = avcodec_find_encoder(pcm ? AV_CODEC_ID_PCM_F32LE : AV_CODEC_ID_FLAC);
  AVCodecContext *e = s->enc = avcodec_alloc_context3(codec);
  if (!e) return cu_error(CU_EIO, "out of memory");
  s->dec_format = s->dec->sample_fmt;
  e->sample_fmt = av_get_packed_sample_fmt(s->dec->sample_fmt);
  e->sample_rate = s->dec->sample_rate;
  if (s->dec->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
    av_channel_layout_default(&e->ch_layout, s->dec->ch_layout.nb_channels);
  else if (av_channel_layout_copy(&e->ch_layout, &s->dec->ch_layout) < 0)
    return cu_error(CU_EIO, "out of memory");
  /* A 24-bit source decodes to 32-bit samples: say so, or FLAC spends 32. */
  e->bits_per_raw_sample = s->dec->bits_per_raw_sample;
  e->time_base = (AVRational){1, e->sample_rate};
  e->flags |= AV_CODEC_FLAG_BITEXACT; /* no vendor string: reproducible */
  if (c->oc->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  int err = avcodec_open2(e, codec, NULL);
  if (err < 0) return mio_verdict(NULL, pcm ? "the PCM encoder refused the stream" : "the FLAC encoder refused the stream", err, NULL);
  if (avcodec_parameters_from_context(ost->codecpar, e) < 0) return cu_error(CU_EIO, "out of memory");
  ost->time_base = e->time_base;
  /* FLAC takes frames of frame_size samples; PCM any size (frame_size 0). */
  if (e->frame_size > 0 &&
      !(s->fifo = av_audio_fifo_alloc(e->sample_fmt, e->ch_layout.nb_channels, e->frame_size)))
    return cu_error(CU_EIO, "out of memory");
  if (swr_alloc_set_opts2(&s->swr, &e->ch_layout, e->sample_fmt, e->sample_rate, &e->ch_layout,
                          s->dec->sample_fmt, e->sample_rate, 0, NULL) < 0 ||
      swr_init(s->swr) < 0)
    return cu_error(CU_EIO, "cannot set up sample packing");
  return 0;
}

/* Rotation has no element in Matroska 5.1's muxer: a display matrix is
 * kept as side data (for muxers that write it) and as a ROTATE tag. */
static void keep_rotation(const AVStream *ist, AVStream *ost) {
  size_t n = 0;
  const uint8_t *m = av_stream_get_side_data(ist, AV_PKT_DATA_DISPLAYMATRIX, &n);
  if (!m || n < 9 * sizeof(int32_t)) return;
  uint8_t *d = av_stream_new_side_data(ost, AV_PKT_DATA_DISPLAYMATRIX, n);
  if (d) memcpy(d, m, n);
  char deg[32];
  snprintf(deg, sizeof deg, "%g", av_display_rotation_get((const int32_t *)m));
  av_dict_set(&ost->metadata, "ROTATE", deg, 0);
}

static int setup(mctx *c, const char *src_sha256) {
  AVFormatContext *ic = c->in.ic;
  for (unsigned i = 0; i < c->n; i++) choose(c, i);
  for (unsigned i = 0; i < c->n; i++) {
    mstream *s = &c->s[i];
    s->out = -1;
    s->last_dts = AV_NOPTS_VALUE;
    if (s->act == ACT_DROP) continue;
    AVStream *ist = ic->streams[i], *ost = avformat_new_stream(c->oc, NULL);
    if (!ost) return cu_error(CU_EIO, "out of memory");
    s->out = ost->index;
    c->nout++;
    int rc = 0;
    if (s->act == ACT_COPY) {
      if (avcodec_parameters_copy(ost->codecpar, ist->codecpar) < 0) return cu_error(CU_EIO, "out of memory");
      /* As ffmpeg -c copy: the source's fourcc stays unless Matroska has
       * its own for the codec (ProRes 4444 is told from 422 by its tag). */
      unsigned tag = ist->codecpar->codec_tag, mine;
      const struct AVCodecTag *const *tags = c->oc->oformat->codec_tag;
      if (tags && av_codec_get_id(tags, tag) != ist->codecpar->codec_id &&
          av_codec_get_tag2(tags, ist->codecpar->codec_id, &mine))
        tag = 0;
      ost->codecpar->codec_tag = tag;
      ost->time_base = ist->time_base;
      ost->sample_aspect_ratio = ist->sample_aspect_ratio;
    } else if (s->act == ACT_FFV1) {
      rc = open_ffv1(c, i, ost);
    } else {
      rc = open_audio(c, i, ost);
    }
    if (rc) return cu_error_wrap(rc, "stream %u", i);
    ost->disposition = ist->disposition;
    /* A transcode's aspect ratio is its encoder's (the decoder's): the muxer
     * refuses a stream whose two disagree. */
    if (s->enc) ost->sample_aspect_ratio = s->enc->sample_aspect_ratio;
    av_dict_copy(&ost->metadata, ist->metadata, 0);
    keep_rotation(ist, ost);
  }
  if (!c->nout) return cu_error(CU_EUNSUPPORTED, "no stream of it can go into a master");
  av_dict_copy(&c->oc->metadata, ic->metadata, 0);
  if (src_sha256) av_dict_set(&c->oc->metadata, "CUSTOS_SOURCE_SHA256", src_sha256, 0);
  av_dict_set(&c->oc->metadata, "CUSTOS_SOURCE_CONTAINER", ic->iformat->name, 0);
  int err = avformat_write_header(c->oc, NULL);
  if (err < 0) return mio_verdict(NULL, "the Matroska muxer refused the streams", err, NULL);
  return 0;
}

static int write_out(mctx *c, mstream *s, AVPacket *p, AVRational from) {
  AVStream *ost = c->oc->streams[s->out];
  p->stream_index = s->out;
  av_packet_rescale_ts(p, from, ost->time_base);
  /* Last line of defence for rising timestamps (the muxer refuses a step
   * back); the discontinuity handling makes this rare. */
  if (p->dts != AV_NOPTS_VALUE && s->last_dts != AV_NOPTS_VALUE && p->dts < s->last_dts) {
    int64_t shift = s->last_dts - p->dts;
    p->dts += shift;
    if (p->pts != AV_NOPTS_VALUE) p->pts += shift;
  }
  if (p->dts != AV_NOPTS_VALUE) s->last_dts = p->dts;
  int err = av_interleaved_write_frame(c->oc, p);
  return err < 0 ? mio_av_error(err, "cannot write the master") : 0;
}

static int encode(mctx *c, mstream *s, AVFrame *f) {
  int err = avcodec_send_frame(s->enc, f);
  if (err < 0 && err != AVERROR_EOF) return mio_verdict(NULL, "the encoder failed", err, NULL);
  for (;;) {
    err = avcodec_receive_packet(s->enc, c->opkt);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return 0;
    if (err < 0) return mio_verdict(NULL, "the encoder failed", err, NULL);
    int rc = write_out(c, s, c->opkt, s->enc->time_base);
    av_packet_unref(c->opkt);
    if (rc) return rc;
  }
}

/* FLAC takes frames of exactly frame_size samples (the last may be short). */
static int flac_frames(mctx *c, mstream *s, bool last) {
  AVCodecContext *e = s->enc;
  while (av_audio_fifo_size(s->fifo) >= e->frame_size || (last && av_audio_fifo_size(s->fifo) > 0)) {
    int n = FFMIN(av_audio_fifo_size(s->fifo), e->frame_size);
    AVFrame *f = c->eframe;
    av_frame_unref(f);
    f->nb_samples = n;
    f->format = e->sample_fmt;
    f->sample_rate = e->sample_rate;
    if (av_channel_layout_copy(&f->ch_layout, &e->ch_layout) < 0 || av_frame_get_buffer(f, 0) < 0)
      return cu_error(CU_EIO, "out of memory");
    if (av_audio_fifo_read(s->fifo, (void **)f->data, n) != n) return cu_error(CU_EIO, "audio queue failure");
    f->pts = s->next_apts;
    s->next_apts += n;
    int rc = encode(c, s, f);
    if (rc) return rc;
  }
  return 0;
}

static int transcode_frame(mctx *c, mstream *s, AVFrame *f) {
  AVCodecContext *e = s->enc;
  if (s->act == ACT_FFV1) {
    if (f->width != e->width || f->height != e->height || f->format != s->dec_format)
      return CHANGED_MIDSTREAM;
    f->pts = f->best_effort_timestamp;
    f->pict_type = AV_PICTURE_TYPE_NONE;
    if (f->format == e->pix_fmt || same_bytes(f->format, e->pix_fmt)) {
      f->format = e->pix_fmt; /* the same, or the same bytes (bgr0 as bgra) */
      return encode(c, s, f);
    }
    AVFrame *o;
    int rc = mio_rearrange(&s->arr, f, e->pix_fmt, &o);
    return rc ? rc : encode(c, s, o);
  }
  if (f->format != s->dec_format || f->sample_rate != e->sample_rate ||
      f->ch_layout.nb_channels != e->ch_layout.nb_channels)
    return CHANGED_MIDSTREAM;
  if (s->next_apts == AV_NOPTS_VALUE && f->best_effort_timestamp != AV_NOPTS_VALUE)
    s->next_apts = av_rescale_q(f->best_effort_timestamp, s->dec->pkt_timebase, e->time_base);
  if (s->next_apts == AV_NOPTS_VALUE) s->next_apts = 0;
  AVFrame *o = c->eframe;
  av_frame_unref(o);
  o->nb_samples = f->nb_samples;
  o->format = e->sample_fmt;
  o->sample_rate = e->sample_rate;
  if (av_channel_layout_copy(&o->ch_layout, &e->ch_layout) < 0 || av_frame_get_buffer(o, 0) < 0)
    return cu_error(CU_EIO, "out of memory");
  int n = swr_convert(s->swr, o->data, f->nb_samples, (const uint8_t **)f->extended_data, f->nb_samples);
  if (n < 0) return cu_error(CU_EIO, "cannot pack samples");
  o->nb_samples = n;
  if (!s->fifo) { /* PCM: any frame size */
    o->pts = s->next_apts;
    s->next_apts += n;
    return encode(c, s, o);
  }
  if (av_audio_fifo_write(s->fifo, (void **)o->data, n) != n) return cu_error(CU_EIO, "cannot pack samples");
  return flac_frames(c, s, false);
}

static int decode(mctx *c, unsigned i, const AVPacket *p) {
  mstream *s = &c->s[i];
  int err = avcodec_send_packet(s->dec, p);
  if (err < 0 && err != AVERROR_EOF) {
    if (err == AVERROR(ENOMEM)) return cu_error(CU_EIO, "out of memory while decoding");
    c->derr.packets_failed++;
    mdec_errors_note(&c->derr, c->in.ic, (int)i, p ? p->pts : AV_NOPTS_VALUE, "the decoder refused a packet");
  }
  for (;;) {
    err = avcodec_receive_frame(s->dec, c->frame);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return 0;
    if (err < 0) {
      c->derr.packets_failed++;
      mdec_errors_note(&c->derr, c->in.ic, (int)i, AV_NOPTS_VALUE, "the decoder failed");
      continue;
    }
    if (c->frame->decode_error_flags || (c->frame->flags & AV_FRAME_FLAG_CORRUPT)) {
      c->derr.frames_damaged++;
      mdec_errors_note(&c->derr, c->in.ic, (int)i, c->frame->best_effort_timestamp,
                       "a frame was decoded with damage concealed");
    }
    if (!p && s->dec->codec_type == AVMEDIA_TYPE_VIDEO) mdec_ts_drained(&c->ts, c->in.ic, s->dec, (int)i, c->frame);
    int rc = transcode_frame(c, s, c->frame);
    av_frame_unref(c->frame);
    if (rc == CHANGED_MIDSTREAM) c->changed = (int)i, c->change_to = COPY_INSTEAD;
    if (rc) return rc;
  }
}

/* A jump in the timeline (an MPEG-TS discontinuity) is evened out as
 * ffmpeg does, since Matroska needs rising timestamps; it is recorded. */
static void even_out(mctx *c, AVPacket *p) {
  int64_t at = c->ts.last_ts_us, jump = mdec_ts_apply(&c->ts, c->in.ic, p);
  if (!jump || json_array_size(c->corrections) >= MDEC_MAX_ERRORS_LISTED) return;
  json_t *o = json_object();
  cu_json_set_int(o, "stream", p->stream_index);
  json_object_set_new(o, "at_s", json_real((double)at / 1e6));
  json_object_set_new(o, "shift_s", json_real((double)-jump / 1e6));
  json_array_append_new(c->corrections, o);
}

static int write_master(mctx *c) {
  AVPacket *p = av_packet_alloc();
  int rc = 0;
  if (!p) return cu_error(CU_EIO, "out of memory");
  for (;;) {
    int err = av_read_frame(c->in.ic, p);
    mio_stopped(&c->in.io);
    if ((rc = mio_own_failure(&c->in.io, "making the master"))) break;
    if (err == AVERROR(EAGAIN)) continue;
    if (err < 0) {
      if (err != AVERROR_EOF) {
        c->derr.read_errors++;
        mdec_errors_note(&c->derr, c->in.ic, -1, AV_NOPTS_VALUE, "the container could not be read past this point");
      }
      break;
    }
    unsigned i = (unsigned)p->stream_index;
    if (i >= c->n || c->s[i].act == ACT_DROP) {
      av_packet_unref(p);
      continue;
    }
    AVStream *st = c->in.ic->streams[i];
    mio_progress(&c->in, p);
    mdec_errors_packet(&c->derr, c->in.ic, p);
    even_out(c, p);
    /* A packet without a dts (a raw H.264 stream has none) goes where
     * ffmpeg would put it. */
    const AVCodecContext *dec = c->s[i].act == ACT_COPY ? NULL : c->s[i].dec;
    mdec_ts_clock_in(&c->ts, c->in.ic, dec, p);
    if (c->s[i].act == ACT_COPY && p->pts == AV_NOPTS_VALUE && st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
        st->codecpar->video_delay > 0) {
      c->changed = (int)i, c->change_to = FFV1_INSTEAD;
      rc = CHANGED_MIDSTREAM;
    } else if (c->s[i].act == ACT_COPY) {
      mdec_ts_clock_on(&c->ts, c->in.ic, NULL, (int)i, p); /* before write_out takes p */
      rc = write_out(c, &c->s[i], p, st->time_base);
    } else {
      rc = decode(c, i, p);
      mdec_ts_clock_on(&c->ts, c->in.ic, dec, (int)i, p);
    }
    av_packet_unref(p);
    if (rc) break;
  }
  av_packet_free(&p);
  for (unsigned i = 0; !rc && i < c->n; i++) {
    mstream *s = &c->s[i];
    if (s->act != ACT_FFV1 && s->act != ACT_FLAC && s->act != ACT_PCM) continue;
    if (!(rc = decode(c, i, NULL)) && s->fifo) rc = flac_frames(c, s, true);
    if (!rc) rc = encode(c, s, NULL);
  }
  return rc;
}

/* ---- the check ------------------------------------------------------- */

typedef struct {
  int size;
  unsigned char h[32];
} fhash;

typedef struct {
  bool video, audio;
  fhash *q;
  size_t head, len;
  int side;              /* whose frames are queued */
  uint64_t frames[2];
  EVP_MD_CTX *audio_md[2];
  EVP_MD_CTX *audio_skip; /* the master's samples after the priming */
  int64_t samples[2], priming;
  AVRational tb[2];
  int64_t first_pts;      /* of the first frame that differed */
} cstream;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  cstream *cs; /* by output index */
  int n;
  int wait_on[2]; /* the stream each side waits on, or -1 */
  bool done[2];   /* a side has decoded all it will */
  bool failed, stuck, over; /* over: one side has frames the other never will */
  /* The copy is decoded in segments (mdecode_par.c), which may yet turn out
   * unlike one pass: a difference does not end the check, the end does. */
  bool defer;
  int fail_stream;
  uint64_t fail_frame;
  int64_t fail_pts;
  AVRational fail_tb;
} checker;

typedef struct {
  checker *k;
  int side;
  mio_in in;
  mdec d;
  const media_reference *ref; /* side 0 only: read the hashes, decode nothing */
  const int *key; /* the side's stream index -> output index */
  int rc;
  char err[512];
} cside;

static int compare_push(cside *cs, int key, const fhash *fh, int64_t pts, AVRational tb) {
  checker *k = cs->k;
  cstream *st = &k->cs[key];
  pthread_mutex_lock(&k->mu);
  while (st->len == CHECK_QUEUE && st->side == cs->side && !k->failed && !k->stuck) {
    int other = k->wait_on[1 - cs->side];
    if (other >= 0 && k->cs[other].len == CHECK_QUEUE && k->cs[other].side != cs->side) {
      /* Each side waits for the other on a different stream. */
      k->stuck = true;
      pthread_cond_broadcast(&k->cv);
      break;
    }
    if (k->done[1 - cs->side]) { /* the other side will never catch up */
      k->over = true;
      break;
    }
    k->wait_on[cs->side] = key;
    /* Woken by the other side; the timeout is for the deadline and cancel. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&k->cv, &k->mu, &ts);
    k->wait_on[cs->side] = -1;
    if (mio_stopped(&cs->in.io)) {
      k->stuck = true;
      pthread_cond_broadcast(&k->cv);
    }
  }
  int rc = 0;
  if (k->over) {
    pthread_mutex_unlock(&k->mu);
    return 1;
  }
  if (k->failed || k->stuck) {
    rc = k->stuck ? 1 : 0;
  } else if (st->len && st->side != cs->side) {
    fhash *o = &st->q[st->head];
    if (o->size != fh->size || memcmp(o->h, fh->h, 32)) {
      k->failed = true;
      k->fail_stream = key;
      k->fail_frame = st->frames[cs->side];
      k->fail_pts = pts;
      k->fail_tb = tb;
    }
    st->head = (st->head + 1) % CHECK_QUEUE;
    st->len--;
    pthread_cond_broadcast(&k->cv);
  } else {
    st->side = cs->side;
    st->q[(st->head + st->len) % CHECK_QUEUE] = *fh;
    st->len++;
  }
  st->frames[cs->side]++;
  bool stop = k->stuck || (k->failed && !k->defer);
  pthread_mutex_unlock(&k->mu);
  return rc ? cu_error(CU_EIO, "the check could not keep the two files in step") : stop ? 1 : 0;
}

static int check_video(void *ud, int stream, const mdec_vframe *v) {
  cside *cs = ud;
  fhash fh = {.size = v->size};
  memcpy(fh.h, v->h, sizeof fh.h);
  return compare_push(cs, cs->key[stream], &fh, v->pts, cs->in.ic->streams[stream]->time_base);
}

/* Audio streams are compared whole, at the end; each side owns its own
 * digests, so no lock. */
static int check_audio(void *ud, int stream, AVFrame *f) {
  cside *cs = ud;
  cstream *st = &cs->k->cs[cs->key[stream]];
  int rc = mdec_hash_audio_update(st->audio_md[cs->side], f, 0);
  if (!rc && cs->side == 1 && st->audio_skip) {
    int64_t skip = st->priming - st->samples[1];
    rc = mdec_hash_audio_update(st->audio_skip, f, skip > 0 ? (int)FFMIN(skip, f->nb_samples) : 0);
  }
  st->samples[cs->side] += f->nb_samples;
  return rc;
}

/* The original's side when its frame hashes are known: each video line of
 * the framehash file, in order, stands for one decoded frame. */
static int read_reference(cside *cs) {
  FILE *f = fopen(cs->ref->path, "re");
  if (!f) return cu_error_errno(CU_EIO, errno, "cannot read the original's frame hashes");
  json_t *streams = json_object_get(cs->ref->report, "streams");
  char line[512];
  int rc = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    int k, size;
    char hex[65];
    if (line[0] == '#' || sscanf(line, "%d, %*d, %*d, %*d, %d, %64s", &k, &size, hex) != 3) continue;
    json_int_t i = json_integer_value(json_object_get(json_array_get(streams, (size_t)k), "index"));
    if (i < 0 || i >= cs->in.ic->nb_streams || !cs->d.selected[i]) continue;
    cstream *st = &cs->k->cs[cs->key[i]];
    if (!st->video) continue;
    fhash fh = {.size = size};
    if (strlen(hex) != 64 || cu_hex_decode(hex, 64, fh.h, 32) != 0) {
      rc = cu_error(CU_ECORRUPT, "the original's frame hashes are damaged");
      break;
    }
    rc = compare_push(cs, cs->key[i], &fh, AV_NOPTS_VALUE, (AVRational){0, 1});
    if ((rc = rc > 0 ? 1 : rc) || mio_stopped(&cs->in.io)) break;
  }
  fclose(f);
  if (!rc && mio_stopped(&cs->in.io)) rc = mio_own_failure(&cs->in.io, "reading the original's frame hashes");
  return rc;
}

static void *side_main(void *arg) {
  cside *cs = arg;
  if (cs->ref) {
    cs->rc = read_reference(cs);
  } else {
    cs->rc = mdec_open(&cs->d);
    if (!cs->rc) cs->rc = mdec_run(&cs->d);
  }
  if (cs->rc < 0) snprintf(cs->err, sizeof cs->err, "%s", cu_errmsg());
  /* Release the other side if it waits on us, whatever happened. */
  pthread_mutex_lock(&cs->k->mu);
  cs->k->done[cs->side] = true;
  if (cs->rc < 0) cs->k->stuck = true;
  pthread_cond_broadcast(&cs->k->cv);
  pthread_mutex_unlock(&cs->k->mu);
  return NULL;
}

/* Leading samples each audio stream of src marks to be skipped (encoder
 * delay): the first packets' skip side data, read before the check so the
 * copy's side knows what to leave out. */
static int scan_priming(const char *src, const media_ctl *ctl, int64_t *priming, unsigned n) {
  mio_in in = {.io.fd = -1};
  AVPacket *p = av_packet_alloc();
  bool *past = calloc(n ? n : 1, sizeof *past);
  int rc = p && past ? mio_open(&in, src, ctl, ctl ? ctl->deadline_us : 0) : cu_error(CU_EIO, "out of memory");
  unsigned open = 0;
  for (unsigned i = 0; !rc && i < n; i++) {
    if (i < in.ic->nb_streams && in.ic->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) open++;
    else past[i] = true;
  }
  /* A bounded look: priming is in the first packet or two. */
  for (int k = 0; !rc && open && k < 1000 && av_read_frame(in.ic, p) >= 0; k++) {
    unsigned i = (unsigned)p->stream_index;
    size_t sz = 0;
    const uint8_t *sd = av_packet_get_side_data(p, AV_PKT_DATA_SKIP_SAMPLES, &sz);
    if (i < n && !past[i]) {
      if (sd && sz >= 4 && AV_RL32(sd) > 0) priming[i] += AV_RL32(sd);
      else past[i] = true, open--;
    }
    av_packet_unref(p);
  }
  mio_close(&in); /* after any return of mio_open */
  av_packet_free(&p);
  free(past);
  return rc;
}

/* Whether ref lists every decoded frame of each mapped video stream and a
 * digest of each mapped audio stream (ffmpeg's frame-rate logic can drop a
 * frame's line: then the original is decoded instead). */
static bool reference_complete(const media_reference *ref, const AVFormatContext *ic, const int *map,
                               int nmap) {
  if (!ref || !ref->path || !ref->report) return false;
  json_t *streams = json_object_get(ref->report, "streams"), *audio = json_object_get(ref->report, "audio_sha256");
  for (int i = 0; i < nmap && i < (int)ic->nb_streams; i++) {
    if (map[i] < 0) continue;
    const AVStream *st = ic->streams[i];
    char key[16];
    snprintf(key, sizeof key, "%d", i);
    if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO && !cu_json_str(audio, key)) return false;
    if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO || (st->disposition & AV_DISPOSITION_ATTACHED_PIC))
      continue;
    json_t *s = NULL, *x;
    size_t k;
    json_array_foreach(streams, k, x) if (json_integer_value(json_object_get(x, "index")) == i) s = x;
    if (!s || cu_json_int(s, "decoded_frames", -1) != cu_json_int(s, "frames", -2)) return false;
  }
  return true;
}

static int check(const char *src, const char *dst, const int *map, int nmap, int threads,
                 const media_reference *ref, const media_ctl *ctl, bool parallel, json_t **result) {
  checker k = {.wait_on = {-1, -1}};
  int64_t *priming = NULL;
  cside side[2] = {{.k = &k, .side = 0, .in.io.fd = -1}, {.k = &k, .side = 1, .in.io.fd = -1}};
  bool *sel[2] = {NULL, NULL}, rearranged = false;
  int *key[2] = {NULL, NULL}, *as_fmt = NULL;
  int rc = 0;
  pthread_mutex_init(&k.mu, NULL);
  pthread_cond_init(&k.cv, NULL);
  *result = NULL;
  /* The original's side reports no progress: the copy's does. */
  media_ctl quiet = ctl ? *ctl : (media_ctl){0};
  quiet.progress = NULL;
  if (!(priming = calloc(nmap > 0 ? (size_t)nmap : 1, sizeof *priming))) return cu_error(CU_EIO, "out of memory");
  if ((rc = scan_priming(src, &quiet, priming, (unsigned)nmap))) goto done;
  if ((rc = mio_open(&side[0].in, src, &quiet, quiet.deadline_us))) goto done;
  if ((rc = mio_open(&side[1].in, dst, ctl, ctl ? ctl->deadline_us : 0))) {
    if (rc == CU_EUNSUPPORTED || rc == CU_ECORRUPT) rc = cu_error_wrap(CU_ECORRUPT, "the copy cannot be read back");
    goto done;
  }
  k.n = (int)side[1].in.ic->nb_streams;
  if (!(k.cs = calloc((size_t)k.n + 1, sizeof *k.cs)) || !(as_fmt = malloc(((size_t)k.n + 1) * sizeof *as_fmt))) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  for (int o = 0; o < k.n; o++) as_fmt[o] = -1;
  if (nmap > (int)side[0].in.ic->nb_streams) nmap = (int)side[0].in.ic->nb_streams;
  if (reference_complete(ref, side[0].in.ic, map, nmap)) side[0].ref = ref;
  for (int s = 0; s < 2; s++) {
    unsigned n = side[s].in.ic->nb_streams;
    sel[s] = calloc(n, sizeof *sel[s]);
    key[s] = calloc(n, sizeof *key[s]);
    if (!sel[s] || !key[s]) {
      rc = cu_error(CU_EIO, "out of memory");
      goto done;
    }
  }
  AVFormatContext *ic = side[0].in.ic;
  for (int i = 0; i < nmap; i++) {
    int o = map[i];
    if (o < 0) continue;
    if (o >= k.n) {
      rc = cu_error(CU_ECORRUPT, "the copy has no stream %d", o);
      goto done;
    }
    enum AVMediaType t = ic->streams[i]->codecpar->codec_type;
    cstream *st = &k.cs[o];
    if (t != side[1].in.ic->streams[o]->codecpar->codec_type) {
      rc = cu_error(CU_ECORRUPT, "stream %d of the copy is not of the type of stream %d of the original", o, i);
      goto done;
    }
    st->video = t == AVMEDIA_TYPE_VIDEO && !(ic->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC);
    /* FFV1 holding the original's pixels arranged otherwise (RGB as bgr0):
     * each frame is turned back before it is hashed. Only an arrangement
     * that loses nothing either way; any other difference is the check's to
     * find. */
    int want = ic->streams[i]->codecpar->format, got = side[1].in.ic->streams[o]->codecpar->format;
    const enum AVPixelFormat only[] = {got, AV_PIX_FMT_NONE};
    if (st->video && want >= 0 && got >= 0 && want != got && !same_bytes(want, got) &&
        mio_same_values_in(only, want) == got)
      as_fmt[o] = want, rearranged = true;
    st->audio = t == AVMEDIA_TYPE_AUDIO;
    if (!st->video && !st->audio) continue;
    sel[0][i] = sel[1][o] = true;
    key[0][i] = key[1][o] = o;
    st->priming = priming[i];
    if (st->video && !(st->q = malloc(CHECK_QUEUE * sizeof *st->q))) rc = cu_error(CU_EIO, "out of memory");
    if (st->audio && (!(st->audio_md[0] = mdec_sha256_new()) || !(st->audio_md[1] = mdec_sha256_new()) ||
                      (st->priming && !(st->audio_skip = mdec_sha256_new()))))
      rc = cu_error(CU_EIO, "out of memory");
    if (rc) goto done;
  }
  /* Against the frame hashes, the copy may be decoded in segments; not
   * when both files are decoded side by side (each already has a thread). */
  k.defer = parallel && side[0].ref;
  for (int s = 0; s < 2; s++)
    side[s].d = (mdec){.in = &side[s].in, .selected = sel[s], .threads = threads, .on_frame = check_audio,
                       .on_video = check_video, .parallel = s == 1 && k.defer && !rearranged,
                       .as_pix_fmt = s == 1 && rearranged ? as_fmt : NULL, .ud = &side[s]};
  for (int s = 0; s < 2; s++) side[s].key = key[s];
  pthread_t t;
  if (pthread_create(&t, NULL, side_main, &side[0])) {
    rc = cu_error(CU_EIO, "cannot start the check's thread");
    goto done;
  }
  side_main(&side[1]);
  pthread_join(t, NULL);
  if (side[1].rc == MDEC_AGAIN) { /* before any verdict: it may come from frames out of place */
    rc = MDEC_AGAIN;
    goto done;
  }
  /* The deadline or a cancel first: the other side's complaint follows from it. */
  for (int s = 0; s < 2; s++)
    if (side[s].rc < 0 && (rc = mio_own_failure(&side[s].in.io, s ? "checking the copy" : "checking the original")))
      goto done;
  for (int s = 0; s < 2; s++)
    if (side[s].rc < 0) {
      rc = cu_error(side[s].rc, "checking the %s: %s", s ? "copy" : "original", side[s].err);
      goto done;
    }
  if (k.stuck) {
    if (!(rc = mio_own_failure(&side[1].in.io, "checking the copy")) &&
        !(rc = mio_own_failure(&side[0].in.io, "checking the original")))
      rc = cu_error(CU_EIO, "the check could not keep the two files in step");
    goto done;
  }
  if (k.failed) {
    int i = 0;
    for (int j = 0; j < nmap; j++)
      if (map[j] == k.fail_stream) i = j;
    double at = k.fail_pts == AV_NOPTS_VALUE ? -1 : (double)av_rescale_q(k.fail_pts, k.fail_tb, AV_TIME_BASE_Q) / 1e6;
    rc = cu_error(CU_ECORRUPT, "not lossless: stream %d, frame %llu (at %.3f s) decodes differently from the original",
                  i, (unsigned long long)k.fail_frame, at);
    goto done;
  }
  json_t *chk = json_object(), *vf = json_object(), *ah = json_object(), *pk = json_object();
  *result = chk;
  cu_json_set_str(chk, "result", "identical");
  cu_json_set_str(chk, "method", side[0].ref ? "the copy decoded, against the original's frame hashes"
                                             : "both decoded side by side");
  if (side[1].d.segments) cu_json_set_int(chk, "video_segments", side[1].d.segments);
  json_object_set_new(chk, "video_frames", vf);
  json_object_set_new(chk, "audio_sha256", ah);
  json_object_set_new(chk, "priming_kept", pk);
  for (int i = 0; i < nmap; i++) {
    int o = map[i];
    if (o < 0) continue;
    cstream *st = &k.cs[o];
    char name[16];
    snprintf(name, sizeof name, "%d", i);
    if (st->video) {
      if (st->frames[0] != st->frames[1]) {
        rc = cu_error(CU_ECORRUPT, "not lossless: stream %d has %s%llu frames in the original and %s%llu in the copy",
                      i, k.over && st->frames[0] > st->frames[1] ? "at least " : "", (unsigned long long)st->frames[0],
                      k.over && st->frames[1] > st->frames[0] ? "at least " : "", (unsigned long long)st->frames[1]);
        goto done;
      }
      cu_json_set_int(vf, name, (int64_t)st->frames[0]);
    } else if (st->audio) {
      unsigned char h0[32], h1[32], h2[32];
      char hex[65];
      /* From the reference, only the digest is known, not the count: equal
       * digests over the samples' bytes are equal samples. */
      bool counted = !side[0].ref;
      if (counted) EVP_DigestFinal_ex(st->audio_md[0], h0, NULL);
      else cu_hex_decode(cu_json_str(json_object_get(ref->report, "audio_sha256"), name), 64, h0, 32);
      EVP_DigestFinal_ex(st->audio_md[1], h1, NULL);
      bool same = !memcmp(h0, h1, 32) && (!counted || st->samples[0] == st->samples[1]);
      if (!same && st->audio_skip) {
        EVP_DigestFinal_ex(st->audio_skip, h2, NULL);
        same = !memcmp(h0, h2, 32) && (!counted || st->samples[0] == st->samples[1] - st->priming);
        if (same) cu_json_set_int(pk, name, st->priming);
      }
      if (!same) {
        rc = cu_error(CU_ECORRUPT, "not lossless: audio stream %d decodes to different samples (%lld in the original, %lld in the copy)",
                      i, (long long)st->samples[0], (long long)st->samples[1]);
        goto done;
      }
      cu_hex_encode(h0, 32, hex);
      cu_json_set_str(ah, name, hex);
    }
  }
done:
  for (int s = 0; s < 2; s++) {
    mdec_close(&side[s].d);
    mio_close(&side[s].in);
    free(sel[s]);
    free(key[s]);
  }
  for (int i = 0; i < k.n; i++) {
    free(k.cs[i].q);
    EVP_MD_CTX_free(k.cs[i].audio_md[0]);
    EVP_MD_CTX_free(k.cs[i].audio_md[1]);
    EVP_MD_CTX_free(k.cs[i].audio_skip);
  }
  free(k.cs);
  free(as_fmt);
  free(priming);
  if (rc) {
    json_decref(*result);
    *result = NULL;
  }
  pthread_mutex_destroy(&k.mu);
  pthread_cond_destroy(&k.cv);
  return rc;
}

int media_check_lossless(const char *src, const char *dst, const int *map, int nmap, int threads,
                         const media_reference *ref, const media_ctl *ctl, json_t **result) {
  int rc = check(src, dst, map, nmap, threads, ref, ctl, true, result);
  if (rc == MDEC_AGAIN) rc = check(src, dst, map, nmap, threads, ref, ctl, false, result);
  return rc;
}

/* ---- the whole ------------------------------------------------------- */


static json_t *report_params(const mctx *c) {
  json_t *p = json_object(), *streams = json_array();
  cu_json_set_str(p, "container", "matroska");
  for (unsigned i = 0; i < c->n; i++) {
    const mstream *s = &c->s[i];
    const AVCodecParameters *par = c->in.ic->streams[i]->codecpar;
    json_t *o = json_object();
    const char *type = av_get_media_type_string(par->codec_type);
    cu_json_set_int(o, "index", i);
    cu_json_set_str(o, "type", type ? type : "unknown");
    cu_json_set_str(o, "codec", avcodec_get_name(par->codec_id));
    cu_json_set_str(o, "action", action_name[s->act]);
    if (s->reason) cu_json_set_str(o, "reason", s->reason);
    if (s->act == ACT_FFV1 && s->enc->pix_fmt != s->dec_format) {
      /* The same values in another arrangement; the check turns them back. */
      cu_json_set_str(o, "pix_fmt", av_get_pix_fmt_name(s->enc->pix_fmt));
      cu_json_set_str(o, "source_pix_fmt", av_get_pix_fmt_name(s->dec_format));
    }
    json_array_append_new(streams, o);
    if (s->act == ACT_FFV1 && !json_object_get(p, "ffv1")) {
      json_t *f = json_object();
      cu_json_set_int(f, "level", 3);
      cu_json_set_int(f, "g", 1);
      cu_json_set_int(f, "slicecrc", 1);
      cu_json_set_str(f, "coder", "range_def");
      cu_json_set_int(f, "context", 1);
      cu_json_set_int(f, "slices", s->enc->width * s->enc->height > 1280 * 720 ? 16 : 4);
      json_object_set_new(p, "ffv1", f);
    }
    if (s->act == ACT_FLAC && !json_object_get(p, "flac")) {
      json_t *f = json_object();
      cu_json_set_int(f, "compression_level", 5);
      json_object_set_new(p, "flac", f);
    }
  }
  json_object_set_new(p, "streams", streams);
  return p;
}

/* The master's progress in two halves: writing it, then checking it. */
typedef struct {
  const media_ctl *outer;
  double base;
} half;

static void half_progress(void *ud, double f) {
  half *h = ud;
  h->outer->progress(h->outer->progress_ud, h->base + f / 2);
}

static media_ctl halved(const media_ctl *ctl, half *h, double base) {
  media_ctl c = ctl ? *ctl : (media_ctl){0};
  h->outer = ctl;
  h->base = base;
  if (ctl && ctl->progress) c.progress = half_progress, c.progress_ud = h;
  return c;
}

/* One attempt at the master; CHANGED_MIDSTREAM with *changed and *to set
 * when a stream must be kept the other way. */
static int master_once(const char *src, const char *dst, const char *src_sha256, int threads,
                       const media_reference *ref, const unsigned char *instead, int *changed,
                       enum instead *to,
                       unsigned *nstreams, const media_ctl *ctl_in, json_t **report) {
  mctx c = {.threads = threads, .instead = instead, .changed = -1};
  half h1, h2;
  media_ctl write_ctl = halved(ctl_in, &h1, 0), check_ctl = halved(ctl_in, &h2, 0.5);
  const media_ctl *ctl = ctl_in ? &write_ctl : NULL;
  json_t *rep = NULL;
  *report = NULL;
  int rc = mio_open(&c.in, src, ctl, ctl ? ctl->deadline_us : 0);
  if (rc) goto done;
  c.n = *nstreams = c.in.ic->nb_streams;
  c.corrections = json_array();
  c.opkt = av_packet_alloc();
  c.frame = av_frame_alloc();
  c.eframe = av_frame_alloc();
  if (!(c.s = calloc(c.n ? c.n : 1, sizeof *c.s)) || !c.opkt || !c.frame || !c.eframe) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  for (unsigned i = 0; i < c.n; i++) c.s[i].next_apts = AV_NOPTS_VALUE;
  if ((rc = mdec_ts_init(&c.ts, c.in.ic, 0))) goto done;
  if (mio_still_image(&c.in, src)) {
    rep = json_object();
    json_t *params = json_object();
    cu_json_set_str(params, "kept_as", "original");
    json_object_set_new(rep, "params", params);
    cu_json_set_str(rep, "reason", "a still image is its own master: the original is kept as it is");
    goto done;
  }
  bool av = false;
  for (unsigned i = 0; i < c.n; i++) {
    enum AVMediaType t = c.in.ic->streams[i]->codecpar->codec_type;
    if (t == AVMEDIA_TYPE_VIDEO || t == AVMEDIA_TYPE_AUDIO) av = true;
  }
  if (!av) {
    /* Subtitles or data alone (or bytes that merely look like lyrics):
     * nothing a master would keep better than the original does. */
    rc = cu_error(CU_EUNSUPPORTED, "it has no audio or video stream to keep in a master; the original is kept as it is");
    goto done;
  }
  if ((rc = mio_out_open(&c.oc, dst, "matroska"))) goto done;
  /* No random segment id, no date, no library name: the same original
   * always gives the same master, byte for byte, so anyone can make it
   * again and compare. */
  c.oc->flags |= AVFMT_FLAG_BITEXACT;
  mio_capture_begin();
  rc = setup(&c, src_sha256);
  if (!rc) rc = write_master(&c);
  mio_capture_end();
  int crc = mio_out_close(&c.oc, rc != 0);
  if (!rc) rc = crc;
  *changed = c.changed, *to = c.change_to;
  if (rc) goto done;

  rep = json_object();
  json_t *params = report_params(&c);
  json_object_set_new(rep, "streams", json_incref(json_object_get(params, "streams")));
  json_object_del(params, "streams");
  json_object_set_new(rep, "params", params);
  json_object_set_new(rep, "timestamp_corrections", json_incref(c.corrections));
  json_object_set_new(rep, "decode_errors", mdec_errors_json(&c.derr));
  int *map = malloc((c.n ? c.n : 1) * sizeof *map);
  if (!map) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  for (unsigned i = 0; i < c.n; i++) {
    map[i] = c.s[i].out;
    /* The encoders' and decoders' memory is not needed by the check. */
    avcodec_free_context(&c.s[i].dec);
    avcodec_free_context(&c.s[i].enc);
    mio_arranger_free(&c.s[i].arr);
  }
  json_t *chk = NULL;
  rc = media_check_lossless(src, dst, map, (int)c.n, c.threads, ref, ctl_in ? &check_ctl : NULL, &chk);
  free(map);
  if (rc == CU_ECORRUPT) rc = cu_error_wrap(CU_ECORRUPT, "the master failed its check");
  if (!rc) json_object_set_new(rep, "check", chk);

done:
  mio_out_close(&c.oc, true);
  for (unsigned i = 0; c.s && i < c.n; i++) {
    avcodec_free_context(&c.s[i].dec);
    avcodec_free_context(&c.s[i].enc);
    mio_arranger_free(&c.s[i].arr);
    av_audio_fifo_free(c.s[i].fifo);
    swr_free(&c.s[i].swr);
  }
  free(c.s);
  av_packet_free(&c.opkt);
  av_frame_free(&c.frame);
  av_frame_free(&c.eframe);
  json_decref(c.corrections);
  json_decref(c.derr.where);
  mdec_ts_free(&c.ts);
  mio_close(&c.in);
  if (!rc) *report = rep;
  else json_decref(rep);
  return rc;
}

int media_master(const char *src, const char *dst, const char *src_sha256,
                 const media_master_opts *opts, const media_ctl *ctl, json_t **report) {
  unsigned char *instead = NULL;
  unsigned n = 0;
  int rc;
  *report = NULL;
  /* Each round turns one more stream the other way, once. */
  for (int round = 0;; round++) {
    int changed = -1;
    enum instead to = AS_CHOSEN;
    rc = master_once(src, dst, src_sha256, opts ? opts->threads : 0, opts ? opts->reference : NULL,
                     instead, &changed, &to, &n, ctl, report);
    if (rc != CHANGED_MIDSTREAM) break;
    if (changed < 0 || (unsigned)changed >= n || round > (int)n) {
      rc = cu_error(CU_EIO, "the master could not settle on how to keep each stream");
      break;
    }
    if (!instead && !(instead = calloc(n, sizeof *instead))) {
      rc = cu_error(CU_EIO, "out of memory");
      break;
    }
    if (instead[changed] != AS_CHOSEN) {
      rc = cu_error(CU_EUNSUPPORTED, "stream %d can neither be copied (its packets carry no presentation "
                    "timestamps and its pictures are reordered) nor made lossless (its pictures change "
                    "shape mid-stream); the original keeps it", changed);
      break;
    }
    instead[changed] = (unsigned char)to;
  }
  free(instead);
  return rc;
}
