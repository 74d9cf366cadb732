/* media_access: the access copy (H.264 + AAC-LC in MP4, or AAC in M4A).
 *
 * DESIGN
 * One pass, streaming: packets are read through mio (hostile input), the
 * first video and first audio streams are decoded, and each frame is scaled
 * or resampled and encoded at once, so memory does not grow with the file.
 *
 * Timestamps are the evidence's own: a video frame keeps its decoded
 * timestamp (shifted so the earliest used stream starts at 0), so variable
 * frame rate stays variable; no frame is duplicated or dropped. Audio is
 * re-cut into the 1024-sample frames AAC needs, so its timestamps come from
 * counting samples after the first frame's.
 *
 * A packet that does not decode is skipped and counted: a damaged recording
 * still gets an access copy of what can be decoded. Our own failures (read
 * errors, the deadline, cancel, a full disk, an encoder that fails on frames
 * we gave it) are errors. */
#include "access.h"

#include "mio.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>

#include "err.h"
#include "json.h"
#include "timeu.h"
#include "banned.h"

#define ACCESS_MAX_SIDE 1280
#define ACCESS_CRF 23
#define ACCESS_PRESET "veryfast"
#define ACCESS_AUDIO_BITRATE 128000
/* A browser seeks to a keyframe: at most this far from where it was asked. */
#define ACCESS_GOP_S 2
/* Used when the frame rate is unknown (for the keyframe interval and a
 * last frame's length). */
#define ACCESS_GUESS_FPS 30
/* For inputs at a rate AAC cannot code (192 kHz, odd rates): what every
 * browser plays. */
#define ACCESS_FALLBACK_RATE 48000
/* Progress reports at most this often (media.h: a few times a second). */
#define ACCESS_PROGRESS_US 250000

/* The encoder's time base is the input stream's when it is a plain 1/N
 * with N in this range; others (1/1, 1001/30000, 1/10^9) become 1/90000,
 * fine enough for any frame rate and exact for the common ones. */
#define ACCESS_TB_MIN_DEN 1000
#define ACCESS_TB_MAX_DEN 1000000
#define ACCESS_FALLBACK_TB_DEN 90000

static const char *const x264_presets[] = {"ultrafast", "superfast", "veryfast", "faster",
                                           "fast",      "medium",    "slow",     "slower",
                                           "veryslow",  "placebo",   NULL};

typedef struct {
  int index; /* in the input; -1 when the stream is not used */
  AVStream *ist, *ost;
  AVCodecContext *dec, *enc;
  int64_t shift;   /* the output's start, in the encoder's time base */
  int64_t end;     /* latest pts + duration written, encoder time base */
  int64_t packets; /* written */
} track;

typedef struct {
  mio_in in;
  AVFormatContext *oc;
  track v, a;
  AVPacket *pkt;
  AVFrame *frame;
  int64_t decode_errors;
  int64_t last_progress_us;

  mio_scaler scaler;
  AVFrame *scaled;
  int64_t last_vpts;    /* encoder time base; AV_NOPTS_VALUE before the first */
  int64_t default_vdur; /* one frame at the guessed rate, encoder time base */
  /* The pts and length of recent frames, for the packets libx264 returns
   * without a duration (the mp4 muxer needs the last one's). */
  mio_dur_ring durs;

  SwrContext *swr;
  AVChannelLayout swr_layout; /* the input swr was made for */
  int swr_rate, swr_fmt;
  AVAudioFifo *fifo;
  AVFrame *conv, *aframe;
  int64_t next_apts; /* encoder time base; AV_NOPTS_VALUE before the first */
} job;

static void oom(void) {
  fprintf(stderr, "custos: out of memory in media_access\n");
  abort();
}

static void jset(json_t *obj, const char *key, json_t *v) {
  if (!v || json_object_set_new(obj, key, v) != 0) oom();
}

/* Bound on timestamps we compute with: a file's can be anything, and an
 * overflowing sum is undefined. av_rescale_q() gives INT64_MIN
 * (AV_NOPTS_VALUE) when the result does not fit. */
#define ACCESS_TS_MAX (INT64_C(1) << 60)

/* ts moved from one time base to another; AV_NOPTS_VALUE if unknown or
 * absurd. */
static int64_t to_tb(int64_t ts, AVRational from, AVRational to) {
  if (ts == AV_NOPTS_VALUE || ts < -ACCESS_TS_MAX || ts > ACCESS_TS_MAX) return AV_NOPTS_VALUE;
  int64_t r = av_rescale_q(ts, from, to);
  return r < -ACCESS_TS_MAX || r > ACCESS_TS_MAX ? AV_NOPTS_VALUE : r;
}

static bool usable_tb(AVRational tb) {
  return tb.num == 1 && tb.den >= ACCESS_TB_MIN_DEN && tb.den <= ACCESS_TB_MAX_DEN;
}

static void progress(job *j, const AVPacket *pkt) {
  int64_t now = cu_mono_us();
  if (j->last_progress_us && now - j->last_progress_us < ACCESS_PROGRESS_US) return;
  j->last_progress_us = now;
  mio_progress(&j->in, pkt);
}

/* The first stream of a type that libavcodec can decode. Cover art is a
 * picture attached to audio, not video. */
static int first_stream(const AVFormatContext *ic, enum AVMediaType type) {
  for (unsigned i = 0; i < ic->nb_streams; i++) {
    const AVStream *st = ic->streams[i];
    if (st->codecpar->codec_type != type || (st->disposition & AV_DISPOSITION_ATTACHED_PIC))
      continue;
    if (avcodec_find_decoder(st->codecpar->codec_id)) return (int)i;
  }
  return -1;
}

/* Opens t's decoder. A stream that cannot be decoded is dropped (index -1),
 * its reason kept in why unless why already has one; other failures are
 * returned. */
static int open_decoder(job *j, track *t, enum AVMediaType type, int threads, char *why,
                        size_t why_size) {
  t->index = first_stream(j->in.ic, type);
  if (t->index < 0) return 0;
  t->ist = j->in.ic->streams[t->index];
  mio_capture_begin();
  int rc = mio_decoder(&t->dec, t->ist, threads);
  mio_capture_end();
  if (rc == 0 && type == AVMEDIA_TYPE_VIDEO && (t->dec->width <= 0 || t->dec->height <= 0))
    rc = cu_error(CU_EUNSUPPORTED, "the size of its video picture is unknown");
  if (rc == 0 && type == AVMEDIA_TYPE_AUDIO &&
      (t->dec->sample_rate <= 0 || t->dec->ch_layout.nb_channels <= 0))
    rc = cu_error(CU_EUNSUPPORTED, "the sample rate or channels of its audio are unknown");
  if (rc == CU_EUNSUPPORTED) {
    if (!why[0]) snprintf(why, why_size, "%s", cu_errmsg());
    avcodec_free_context(&t->dec);
    t->index = -1;
    t->ist = NULL;
    return 0;
  }
  return rc;
}

static int add_stream(job *j, track *t) { return mio_add_stream(j->oc, t->enc, &t->ost); }

static int open_video(job *j, int max_side, int crf, const char *preset, int threads) {
  track *t = &j->v;
  AVCodecContext *dec = t->dec, *enc;
  AVDictionary *o = NULL;
  char crf_s[16];
  int ow, oh, err;
  const AVCodec *x264 = avcodec_find_encoder_by_name("libx264");
  if (!x264) return cu_error(CU_EIO, "this libavcodec has no libx264 encoder");
  if (!(enc = t->enc = avcodec_alloc_context3(x264))) return cu_error(CU_EIO, "out of memory");

  mio_fit(dec->width, dec->height, max_side, &ow, &oh);
  enc->width = ow;
  enc->height = oh;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base =
      usable_tb(t->ist->time_base) ? t->ist->time_base : (AVRational){1, ACCESS_FALLBACK_TB_DEN};
  AVRational fr = av_guess_frame_rate(j->in.ic, t->ist, NULL);
  if (fr.num <= 0 || fr.den <= 0 || av_q2d(fr) > 1000 || av_q2d(fr) < 0.01)
    fr = (AVRational){ACCESS_GUESS_FPS, 1};
  /* Rate control's idea of the rate; timestamps still come from frames. */
  enc->framerate = fr;
  double gop = av_q2d(fr) * ACCESS_GOP_S;
  enc->gop_size = gop < 1 ? 1 : gop > 600 ? 600 : (int)(gop + 0.5);
  j->default_vdur = av_rescale_q(1, av_inv_q(fr), enc->time_base);
  if (j->default_vdur < 1) j->default_vdur = 1;

  /* A scale that is not quite uniform (even sizes) changes the pixel shape
   * a little: the sample aspect ratio makes up for it. Unknown stays
   * unknown, as players then assume square pixels of the new size. */
  AVRational sar = av_guess_sample_aspect_ratio(j->in.ic, t->ist, NULL);
  if (sar.num > 0 && sar.den > 0) /* in two steps: int products, no overflow */
    enc->sample_aspect_ratio =
        av_mul_q(av_mul_q(sar, (AVRational){dec->width, ow}), (AVRational){oh, dec->height});

  /* swscale changes range and sampling, not the colour matrix between YUV
   * formats, so the input's tags stay true; RGB is converted with BT.601. */
  const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(dec->pix_fmt);
  bool rgb = desc && (desc->flags & AV_PIX_FMT_FLAG_RGB);
  enc->color_range = AVCOL_RANGE_MPEG;
  enc->colorspace = rgb ? AVCOL_SPC_SMPTE170M : dec->colorspace;
  enc->color_primaries = dec->color_primaries;
  enc->color_trc = dec->color_trc;
  enc->thread_count = threads;
  if (j->oc->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;

  snprintf(crf_s, sizeof crf_s, "%d", crf);
  av_dict_set(&o, "crf", crf_s, 0);
  av_dict_set(&o, "preset", preset, 0);
  av_dict_set(&o, "profile", "high", 0);
  err = avcodec_open2(enc, x264, &o);
  av_dict_free(&o);
  if (err < 0) return mio_av_error(err, "cannot open libx264");
  int rc = add_stream(j, t);
  if (rc == 0) rc = mio_copy_display_matrix(t->ist, t->ost);
  if (rc) return rc;

  if (!(j->scaled = av_frame_alloc())) return cu_error(CU_EIO, "out of memory");
  j->scaled->format = enc->pix_fmt;
  j->scaled->width = ow;
  j->scaled->height = oh;
  if ((err = av_frame_get_buffer(j->scaled, 0)) < 0) return mio_av_error(err, "cannot allocate a frame");
  j->last_vpts = AV_NOPTS_VALUE;
  return 0;
}

static int open_audio(job *j, int bitrate) {
  track *t = &j->a;
  int rc = mio_open_aac(t->dec, bitrate, ACCESS_FALLBACK_RATE, j->oc, &t->enc);
  if (!rc) rc = add_stream(j, t);
  if (rc) return rc;
  const AVCodecContext *enc = t->enc;

  if (!(j->fifo = av_audio_fifo_alloc(enc->sample_fmt, enc->ch_layout.nb_channels,
                                      2 * enc->frame_size)) ||
      !(j->conv = av_frame_alloc()) || !(j->aframe = av_frame_alloc()))
    return cu_error(CU_EIO, "out of memory");
  j->next_apts = AV_NOPTS_VALUE;
  return 0;
}

/* Writes what enc has ready. */
static int drain(job *j, track *t) {
  for (;;) {
    int err = avcodec_receive_packet(t->enc, j->pkt);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return 0;
    if (err < 0) return mio_av_error(err, t == &j->v ? "libx264 failed" : "the aac encoder failed");
    if (t == &j->v && j->pkt->duration <= 0 && j->pkt->pts != AV_NOPTS_VALUE)
      j->pkt->duration = mio_dur_find(&j->durs, j->pkt->pts, 0);
    if (j->pkt->pts != AV_NOPTS_VALUE && j->pkt->pts + j->pkt->duration > t->end)
      t->end = j->pkt->pts + j->pkt->duration;
    av_packet_rescale_ts(j->pkt, t->enc->time_base, t->ost->time_base);
    j->pkt->stream_index = t->ost->index;
    t->packets++;
    err = av_interleaved_write_frame(j->oc, j->pkt); /* takes the packet */
    if (err < 0) return mio_av_error(err, "cannot write the access copy");
  }
}

static int encode(job *j, track *t, const AVFrame *f) {
  int err = avcodec_send_frame(t->enc, f);
  if (err < 0 && !(err == AVERROR_EOF && !f))
    return mio_av_error(err, t == &j->v ? "libx264 failed" : "the aac encoder failed");
  return drain(j, t);
}

static int video_frame(job *j, const AVFrame *f) {
  track *t = &j->v;
  int rc = mio_scale(&j->scaler, f, j->scaled);
  if (rc) {
    if (rc > 0) j->decode_errors++;
    return rc < 0 ? rc : 0;
  }

  AVRational in_tb = t->ist->time_base;
  int64_t ts = to_tb(f->best_effort_timestamp, in_tb, t->enc->time_base), pts;
#ifdef FF_API_PKT_DURATION
  int64_t dur = to_tb(f->duration, in_tb, t->enc->time_base);
#else
  int64_t dur = to_tb(f->pkt_duration, in_tb, t->enc->time_base);
#endif
  if (ts != AV_NOPTS_VALUE)
    pts = ts - t->shift;
  else
    pts = j->last_vpts == AV_NOPTS_VALUE ? 0 : j->last_vpts + j->default_vdur;
  /* Timestamps must rise; a repeated or backward one (damage) moves just
   * past the previous frame instead of losing the frame. */
  if (pts < 0) pts = 0;
  if (j->last_vpts != AV_NOPTS_VALUE && pts <= j->last_vpts) pts = j->last_vpts + 1;
  if (dur <= 0 && j->durs.n > 0) dur = pts - j->last_vpts;
  if (dur <= 0) dur = j->default_vdur;
  mio_dur_push(&j->durs, pts, dur, true);
  j->last_vpts = pts;

  j->scaled->pts = pts;
  j->scaled->pict_type = AV_PICTURE_TYPE_NONE;
  j->scaled->sample_aspect_ratio = t->enc->sample_aspect_ratio;
  return encode(j, t, j->scaled);
}

/* Encodes whole AAC frames from the fifo; with last, the rest too. */
static int encode_fifo(job *j, bool last) {
  int rc;
  while ((rc = mio_fifo_frame(j->fifo, j->a.enc, last, j->aframe, &j->next_apts)) == 1)
    if ((rc = encode(j, &j->a, j->aframe))) return rc;
  return rc;
}

/* Converts f (NULL: what swr still holds) into the fifo. */
static int resample(job *j, const AVFrame *f) {
  track *t = &j->a;
  int err;
  if (!j->swr) return 0;
  int out_n = swr_get_out_samples(j->swr, f ? f->nb_samples : 0);
  if (out_n <= 0) return 0;
  av_frame_unref(j->conv);
  j->conv->format = t->enc->sample_fmt;
  j->conv->sample_rate = t->enc->sample_rate;
  j->conv->nb_samples = out_n;
  if ((err = av_channel_layout_copy(&j->conv->ch_layout, &t->enc->ch_layout)) < 0 ||
      (err = av_frame_get_buffer(j->conv, 0)) < 0)
    return mio_av_error(err, "cannot allocate a frame");
  int n = swr_convert(j->swr, j->conv->extended_data, out_n,
                      f ? (const uint8_t **)f->extended_data : NULL, f ? f->nb_samples : 0);
  if (n < 0) {
    j->decode_errors++;
    return 0;
  }
  if (n > 0 && av_audio_fifo_write(j->fifo, (void **)j->conv->extended_data, n) < n)
    return cu_error(CU_EIO, "out of memory");
  return encode_fifo(j, false);
}

static int audio_frame(job *j, const AVFrame *f) {
  track *t = &j->a;
  AVChannelLayout in_layout = {0};
  int rc = 0;
  if (f->nb_samples <= 0 || f->sample_rate <= 0 || f->ch_layout.nb_channels <= 0 || f->format < 0) {
    j->decode_errors++;
    goto done;
  }
  /* Unnamed channels (plain WAV) get the usual layout for their count, so
   * that they can be mixed down. */
  if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
    av_channel_layout_default(&in_layout, f->ch_layout.nb_channels);
  else if (av_channel_layout_copy(&in_layout, &f->ch_layout) < 0) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  if (!j->swr || f->sample_rate != j->swr_rate || f->format != j->swr_fmt ||
      av_channel_layout_compare(&in_layout, &j->swr_layout) != 0) {
    /* The input changed mid-stream: what the old converter holds first. */
    if ((rc = resample(j, NULL))) goto done;
    swr_free(&j->swr);
    av_channel_layout_uninit(&j->swr_layout);
    if (swr_alloc_set_opts2(&j->swr, &t->enc->ch_layout, t->enc->sample_fmt, t->enc->sample_rate,
                            &in_layout, f->format, f->sample_rate, 0, NULL) < 0 ||
        swr_init(j->swr) < 0) {
      swr_free(&j->swr);
      j->decode_errors++;
      goto done;
    }
    if (av_channel_layout_copy(&j->swr_layout, &in_layout) < 0) {
      rc = cu_error(CU_EIO, "out of memory");
      goto done;
    }
    j->swr_rate = f->sample_rate;
    j->swr_fmt = f->format;
  }
  if (j->next_apts == AV_NOPTS_VALUE) {
    int64_t ts = to_tb(f->best_effort_timestamp, t->ist->time_base, t->enc->time_base);
    j->next_apts = ts == AV_NOPTS_VALUE || ts < t->shift ? 0 : ts - t->shift;
  }
  rc = resample(j, f);
done:
  av_channel_layout_uninit(&in_layout);
  return rc;
}

/* Sends pkt (NULL: the end) to t's decoder and handles what comes out. */
static int decode(job *j, track *t, const AVPacket *pkt) {
  int err = avcodec_send_packet(t->dec, pkt);
  if (err < 0 && err != AVERROR_EOF) {
    j->decode_errors++;
    if (pkt) return 0;
  }
  for (;;) {
    err = avcodec_receive_frame(t->dec, j->frame);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return 0;
    if (err < 0) { /* the decoder may repeat it: go on with the next packet */
      j->decode_errors++;
      return 0;
    }
    if (j->frame->decode_error_flags || (j->frame->flags & AV_FRAME_FLAG_CORRUPT))
      j->decode_errors++;
    int rc = t == &j->v ? video_frame(j, j->frame) : audio_frame(j, j->frame);
    av_frame_unref(j->frame);
    if (rc) return rc;
  }
}

static int finish(job *j) {
  int rc;
  if (j->v.dec && ((rc = decode(j, &j->v, NULL)) || (rc = encode(j, &j->v, NULL)))) return rc;
  if (j->a.dec) {
    if ((rc = decode(j, &j->a, NULL)) || (rc = resample(j, NULL)) || (rc = encode_fifo(j, true)) ||
        (rc = encode(j, &j->a, NULL)))
      return rc;
  }
  return 0;
}

static json_t *make_report(const job *j, int max_side, int crf, const char *preset, int bitrate,
                           const char *container) {
  json_t *r = json_object(), *p = json_object();
  if (!r || !p) oom();
  jset(p, "video", json_string("libx264"));
  jset(p, "crf", json_integer(crf));
  jset(p, "preset", json_string(preset));
  jset(p, "max_side", json_integer(max_side));
  jset(p, "audio", json_string("aac"));
  jset(p, "audio_bitrate", json_integer(bitrate));
  jset(p, "container", json_string(container));
  jset(p, "faststart", json_true());
  jset(r, "params", p);
  if (j->v.enc) {
    jset(r, "width", json_integer(j->v.enc->width));
    jset(r, "height", json_integer(j->v.enc->height));
  }
  jset(r, "video_frames", json_integer(j->v.packets));
  jset(r, "audio_frames", json_integer(j->a.packets));
  int64_t end_us = 0;
  const track *ts[] = {&j->v, &j->a};
  for (size_t i = 0; i < 2; i++)
    if (ts[i]->enc && ts[i]->packets) {
      int64_t e = av_rescale_q(ts[i]->end, ts[i]->enc->time_base, AV_TIME_BASE_Q);
      if (e > end_us) end_us = e;
    }
  jset(r, "duration_s", json_real((double)end_us / 1e6));
  jset(r, "decode_errors", json_integer(j->decode_errors));
  return r;
}

static bool known_preset(const char *p) {
  for (const char *const *k = x264_presets; *k; k++)
    if (strcmp(p, *k) == 0) return true;
  return false;
}

int media_access(const char *src, const char *dst, const media_access_opts *opts,
                 const media_ctl *ctl, json_t **report) {
  job *j = NULL;
  AVDictionary *mo = NULL;
  int rc = 0, err;
  char why[256] = "";

  if (report) *report = NULL;
  int max_side = opts && opts->max_side ? opts->max_side : ACCESS_MAX_SIDE;
  int crf = opts && opts->crf ? opts->crf : ACCESS_CRF;
  const char *preset = opts && opts->preset ? opts->preset : ACCESS_PRESET;
  int bitrate = opts && opts->audio_bitrate ? opts->audio_bitrate : ACCESS_AUDIO_BITRATE;
  int threads = opts ? opts->threads : 0;
  if (!src || !dst || !report) {
    rc = cu_error(CU_EINVAL, "media_access needs a source, a destination and a report");
    goto done;
  }
  if (max_side < 2 || crf < 0 || crf > 51 || !known_preset(preset) || bitrate < 8000 ||
      bitrate > 512000 || threads < 0) {
    rc = cu_error(CU_EINVAL,
                  "media_access: bad options (max_side %d, crf %d, preset %s, audio_bitrate %d, "
                  "threads %d)",
                  max_side, crf, preset, bitrate, threads);
    goto done;
  }
  /* On the heap: the duration ring makes it large for a worker's stack. */
  if (!(j = calloc(1, sizeof *j))) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  j->in.io.fd = -1;
  j->v.index = j->a.index = -1;

  if ((rc = mio_open(&j->in, src, ctl, ctl ? ctl->deadline_us : 0))) goto done;
  if (mio_still_image(&j->in, src)) {
    rc = cu_error(CU_EUNSUPPORTED, "a still image needs no access copy: the original is viewed as it is");
    goto done;
  }
  if ((rc = open_decoder(j, &j->v, AVMEDIA_TYPE_VIDEO, threads, why, sizeof why)) ||
      (rc = open_decoder(j, &j->a, AVMEDIA_TYPE_AUDIO, threads, why, sizeof why)))
    goto done;
  if (!j->v.dec && !j->a.dec) {
    rc = cu_error(CU_EUNSUPPORTED, "it has no video or audio stream that libavcodec can decode%s%s",
                  why[0] ? ": " : "", why);
    goto done;
  }
  for (unsigned i = 0; i < j->in.ic->nb_streams; i++)
    if ((int)i != j->v.index && (int)i != j->a.index) j->in.ic->streams[i]->discard = AVDISCARD_ALL;

  const char *container = j->v.dec ? "mp4" : "ipod";
  if ((rc = mio_out_open(&j->oc, dst, container))) goto done;
  if (j->v.dec && (rc = open_video(j, max_side, crf, preset, threads))) goto done;
  if (j->a.dec && (rc = open_audio(j, bitrate))) goto done;

  /* The output starts at 0: everything moves back by the earliest start of
   * the streams used (not the file's, which an unused stream may set). */
  int64_t start = AV_NOPTS_VALUE;
  track *used[] = {&j->v, &j->a};
  for (size_t i = 0; i < 2; i++)
    if (used[i]->dec) {
      int64_t s = to_tb(used[i]->ist->start_time, used[i]->ist->time_base, AV_TIME_BASE_Q);
      if (s != AV_NOPTS_VALUE && (start == AV_NOPTS_VALUE || s < start)) start = s;
    }
  if (start == AV_NOPTS_VALUE) start = to_tb(j->in.ic->start_time, AV_TIME_BASE_Q, AV_TIME_BASE_Q);
  for (size_t i = 0; i < 2; i++)
    if (used[i]->enc) {
      used[i]->shift = to_tb(start, AV_TIME_BASE_Q, used[i]->enc->time_base);
      if (used[i]->shift == AV_NOPTS_VALUE) used[i]->shift = 0;
    }

  /* moov first, so a browser can start playing before the whole file. */
  av_dict_set(&mo, "movflags", "+faststart", 0);
  if ((err = avformat_write_header(j->oc, &mo)) < 0) {
    rc = mio_av_error(err, "cannot start the access copy");
    goto done;
  }
  if (!(j->pkt = av_packet_alloc()) || !(j->frame = av_frame_alloc())) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }

  while (!mio_stopped(&j->in.io)) {
    err = av_read_frame(j->in.ic, j->pkt);
    if (err < 0) {
      /* Damage that stops the demuxer ends the copy where it stopped; our
       * own failures are told apart below. */
      if (err != AVERROR_EOF && err != AVERROR_EXIT) j->decode_errors++;
      break;
    }
    track *t = j->pkt->stream_index == j->v.index   ? &j->v
               : j->pkt->stream_index == j->a.index ? &j->a
                                                    : NULL;
    if (t) {
      progress(j, j->pkt);
      rc = decode(j, t, j->pkt);
    }
    av_packet_unref(j->pkt);
    if (rc) goto done;
  }
  if ((rc = mio_own_failure(&j->in.io, "making the access copy"))) goto done;
  if ((rc = finish(j))) goto done;
  if (mio_stopped(&j->in.io) && (rc = mio_own_failure(&j->in.io, "making the access copy"))) goto done;
  if (j->v.packets + j->a.packets == 0) { /* media.h: media, but damaged beyond reading */
    rc = cu_error(CU_ECORRUPT, "not one frame of it could be decoded");
    goto done;
  }
  if ((rc = mio_out_close(&j->oc, false))) goto done;
  *report = make_report(j, max_side, crf, preset, bitrate, container);
  if (ctl && ctl->progress) ctl->progress(ctl->progress_ud, 1.0);

done:
  av_dict_free(&mo);
  if (j) {
    mio_out_close(&j->oc, true);
    mio_close(&j->in);
    avcodec_free_context(&j->v.dec);
    avcodec_free_context(&j->v.enc);
    avcodec_free_context(&j->a.dec);
    avcodec_free_context(&j->a.enc);
    av_packet_free(&j->pkt);
    av_frame_free(&j->frame);
    av_frame_free(&j->scaled);
    av_frame_free(&j->conv);
    av_frame_free(&j->aframe);
    mio_scaler_free(&j->scaler);
    swr_free(&j->swr);
    av_channel_layout_uninit(&j->swr_layout);
    if (j->fifo) av_audio_fifo_free(j->fifo);
    free(j);
  }
  return rc;
}
