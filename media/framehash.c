/* media_framehash: ffmpeg's framehash text, made with OpenSSL's SHA-256.
 *
 * DESIGN
 * To match `ffmpeg -f framehash` line for line we do what ffmpeg 5.1's
 * command line does between its decoder and the muxer, no more:
 *   - every timestamp is shifted by minus the file's start time;
 *   - video: the encoder time base is 1/frame rate (av_guess_frame_rate,
 *     25 fps when unknown); each frame goes through the "vfr" frame-rate
 *     logic (do_video_out): its pts is rounded to that time base, frames
 *     that land on an already used tick are dropped, a frame without a
 *     timestamp is dropped; the packet lasts one tick;
 *   - audio: samples become interleaved signed 16-bit (libswresample,
 *     default options), the pts is rescaled to 1/sample rate with
 *     av_rescale_delta as decode_audio does, and a packet lasts its
 *     samples;
 *   - the muxer interleaves packets by dts (ties: the lower stream first),
 *     which with each stream's dts rising is a merge of the streams.
 * The hashes are of the decoded bytes, the same as the rawvideo and
 * pcm_s16le encoders hand the muxer; only the hash function is faster. */
#include "framehash.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>

#include "err.h"
#include "hex.h"
#include "json.h"
#include "mdecode.h"
#include "mio.h"
#include "timeu.h"
#include "banned.h"

typedef struct {
  int64_t dts, pts, duration;
  int size;
  char hex[65];
} fh_line;

typedef struct {
  int in_index, out_index;
  enum AVMediaType type;
  AVRational tb; /* of the output stream */
  /* video */
  double tick;        /* a frame's default duration in ticks */
  int64_t sync_opts;  /* the next free tick */
  /* audio */
  SwrContext *swr;
  uint8_t *abuf;
  int abuf_samples;
  AVChannelLayout layout;
  int64_t rescale_last, prev_pkt_pts, next_dts_us;
  AVChannelLayout in_layout; /* what swr converts from */
  int in_format, in_rate;
  bool pkt_pending;
  int64_t pending_pts, pending_duration;
  EVP_MD_CTX *native; /* the digest over samples in their own format */
  /* waiting for the muxer's merge */
  fh_line *q;
  size_t qhead, qlen, qcap;
  uint64_t frames, decoded, size_changes;
  /* What the first frame said: ffmpeg sets its encoder up from it. */
  bool seen;
  int width, height, sample_rate;
  AVRational sar;
} fh_stream;

typedef struct {
  mio_in in;
  mdec d;
  fh_stream *s;      /* output streams, in output order */
  int ns;
  int *out_of;       /* input index -> output stream, -1 */
  bool *selected;    /* per input stream */
  FILE *out;
  bool header_done;
  const char *dst;
} fh_ctx;

static int push(fh_stream *s, int64_t dts, int64_t pts, int64_t dur, int size,
                const unsigned char h[32]) {
  if (s->qhead + s->qlen == s->qcap) {
    if (s->qhead) {
      memmove(s->q, s->q + s->qhead, s->qlen * sizeof *s->q);
      s->qhead = 0;
    } else {
      size_t cap = s->qcap ? s->qcap * 2 : 64;
      fh_line *q = realloc(s->q, cap * sizeof *q);
      if (!q) return cu_error(CU_EIO, "out of memory");
      s->q = q, s->qcap = cap;
    }
  }
  fh_line *l = &s->q[s->qhead + s->qlen++];
  l->dts = dts, l->pts = pts, l->duration = dur, l->size = size;
  cu_hex_encode(h, 32, l->hex);
  return 0;
}

static int header(fh_ctx *c);

static int write_line(fh_ctx *c, fh_stream *s) {
  fh_line *l = &s->q[s->qhead++];
  s->qlen--;
  if (fprintf(c->out, "%d, %10" PRId64 ", %10" PRId64 ", %8" PRId64 ", %8d, %s\n", s->out_index,
              l->dts, l->pts, l->duration, l->size, l->hex) < 0)
    return cu_error_errno(CU_EIO, errno, "cannot write %s", c->dst);
  return 0;
}

/* libavformat's max_interleave_delta: when a stream has nothing queued,
 * the others are held back at most this long before the earliest goes out
 * anyway (so a stream that ended, or pauses, does not hold up the rest). */
#define INTERLEAVE_DELTA_US (10LL * 1000 * 1000)

static bool all_seen(const fh_ctx *c) {
  for (int i = 0; i < c->ns; i++)
    if (!c->s[i].seen) return false;
  return true;
}

/* Writes queued lines in dts order, as the muxer's interleaving does: while
 * every stream has one waiting (a later packet of an empty stream could
 * come first), or while the queue spans more than INTERLEAVE_DELTA_US, or
 * everything at the end. */
static int merge(fh_ctx *c, bool flush) {
  for (;;) {
    fh_stream *best = NULL;
    bool empty = false;
    int64_t last_us = INT64_MIN;
    for (int i = 0; i < c->ns; i++) {
      fh_stream *s = &c->s[i];
      if (!s->qlen) {
        empty = true;
        continue;
      }
      int64_t t = av_rescale_q(s->q[s->qhead + s->qlen - 1].dts, s->tb, AV_TIME_BASE_Q);
      if (t > last_us) last_us = t;
      if (!best || av_compare_ts(s->q[s->qhead].dts, s->tb, best->q[best->qhead].dts, best->tb) < 0)
        best = s;
    }
    if (!best) return 0;
    if (empty && !flush &&
        (!all_seen(c) ||
         last_us - av_rescale_q(best->q[best->qhead].dts, best->tb, AV_TIME_BASE_Q) <= INTERLEAVE_DELTA_US))
      return 0;
    int rc = c->header_done ? 0 : header(c);
    if (!rc) rc = write_line(c, best);
    if (rc) return rc;
  }
}

/* do_video_out() of ffmpeg 5.1 with -vsync vfr, for one frame. */
static int video_frame(fh_ctx *c, fh_stream *s, const mdec_vframe *f) {
  AVRational in_tb = c->in.ic->streams[s->in_index]->time_base;
  double sync_ipts;
  int64_t pts = f->pts;
  s->decoded++;
  if (pts == AV_NOPTS_VALUE) return 0; /* ffmpeg drops it too */
  AVRational tb = s->tb;
  int extra_bits = av_clip(29 - av_log2((unsigned)tb.den), 0, 16);
  tb.den <<= extra_bits;
  sync_ipts = (double)av_rescale_q(pts, in_tb, tb);
  sync_ipts /= (double)(1 << extra_bits);
  sync_ipts += (sync_ipts > 0 ? 1.0 : sync_ipts < 0 ? -1.0 : 0.0) / (double)(1 << 17);

  double duration = s->tick;
  if (f->pkt_duration > 0) {
    long d = lrintf((float)((double)f->pkt_duration * av_q2d(in_tb) / av_q2d(s->tb)));
    if (d > 0) duration = (double)d;
  }
  double delta0 = sync_ipts - (double)s->sync_opts, delta = delta0 + duration;
  if (delta0 < 0 && delta > 0) sync_ipts = (double)s->sync_opts;
  if (delta <= -0.6) return 0;
  if (delta > 0.6) s->sync_opts = llrint(sync_ipts);

  /* ffmpeg's command line would scale such frames to the first frame's
   * size before hashing; we hash each frame as it decodes (the evidence is
   * the decoded picture, not a rescaled one) and say so in the report. */
  if (f->width != s->width || f->height != s->height) s->size_changes++;
  /* The muxer fills in the duration: one frame at the stream's rate when
   * its time base is coarser than a millisecond, else nothing. */
  int64_t dur = (int64_t)s->tb.num * 1000 > s->tb.den ? 1 : 0;
  int rc = push(s, s->sync_opts, s->sync_opts, dur, f->size, f->h);
  s->sync_opts++;
  s->frames++;
  return rc;
}

/* ffmpeg reconfigures its filters when a stream's samples change format,
 * layout or rate mid-stream, and converts them to what its encoder was set
 * up with: the first frame's layout and rate. */
static int converter(fh_stream *s, const AVFrame *f) {
  AVChannelLayout in_layout;
  if (s->swr && f->format == s->in_format && f->sample_rate == s->in_rate &&
      !av_channel_layout_compare(&f->ch_layout, &s->in_layout))
    return 0;
  swr_free(&s->swr);
  av_channel_layout_uninit(&s->in_layout);
  if (av_channel_layout_copy(&s->in_layout, &f->ch_layout) < 0) return cu_error(CU_EIO, "out of memory");
  s->in_format = f->format, s->in_rate = f->sample_rate;
  if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
    av_channel_layout_default(&in_layout, f->ch_layout.nb_channels);
  else if (av_channel_layout_copy(&in_layout, &f->ch_layout) < 0)
    return cu_error(CU_EIO, "out of memory");
  int err = swr_alloc_set_opts2(&s->swr, &s->layout, AV_SAMPLE_FMT_S16, s->sample_rate, &in_layout,
                                (enum AVSampleFormat)f->format, f->sample_rate, 0, NULL);
  av_channel_layout_uninit(&in_layout);
  if (err < 0 || swr_init(s->swr) < 0) {
    swr_free(&s->swr);
    return cu_error(CU_EUNSUPPORTED, "stream %d: its samples cannot be converted", s->in_index);
  }
  return 0;
}

static int audio_frame(fh_ctx *c, fh_stream *s, AVFrame *f) {
  AVRational in_tb = c->in.ic->streams[s->in_index]->time_base;
  int sr = f->sample_rate, rc;
  if (sr <= 0) return cu_error(CU_EUNSUPPORTED, "stream %d: a frame without a sample rate", s->in_index);
  if (s->native && (rc = mdec_hash_audio_update(s->native, f, 0))) return rc;
  /* decode_audio(): where the decoded frame's timestamp comes from. The
   * input's dts advances by each frame's samples from the last packet's. */
  int64_t frame_dts_us = s->next_dts_us;
  s->next_dts_us += (int64_t)AV_TIME_BASE * f->nb_samples / sr;
  int64_t pts = f->pts;
  AVRational ftb = in_tb;
  if (pts == AV_NOPTS_VALUE && s->pkt_pending && s->pending_pts != AV_NOPTS_VALUE) {
    pts = s->pending_pts;
  } else if (pts == AV_NOPTS_VALUE) {
    pts = frame_dts_us;
    ftb = AV_TIME_BASE_Q;
  }
  if (s->pkt_pending) {
    if (s->pending_duration && s->prev_pkt_pts != AV_NOPTS_VALUE && s->pending_pts != AV_NOPTS_VALUE &&
        s->pending_pts - s->prev_pkt_pts > s->pending_duration)
      s->rescale_last = AV_NOPTS_VALUE;
    s->prev_pkt_pts = s->pending_pts;
    s->pkt_pending = false;
  }
  pts = av_rescale_delta(ftb, pts, (AVRational){1, sr}, f->nb_samples, &s->rescale_last,
                         (AVRational){1, sr});
  if (sr != s->sample_rate) pts = av_rescale_q(pts, (AVRational){1, sr}, s->tb);

  if ((rc = converter(s, f))) return rc;
  int ch = s->layout.nb_channels, room = swr_get_out_samples(s->swr, f->nb_samples);
  if (room < 0) return cu_error(CU_EUNSUPPORTED, "stream %d: its samples cannot be converted", s->in_index);
  if (room > s->abuf_samples) {
    av_freep(&s->abuf);
    if (av_samples_alloc(&s->abuf, NULL, ch, room, AV_SAMPLE_FMT_S16, 1) < 0)
      return cu_error(CU_EIO, "out of memory");
    s->abuf_samples = room;
  }
  int n = swr_convert(s->swr, &s->abuf, room, (const uint8_t **)f->extended_data, f->nb_samples);
  if (n < 0) return cu_error(CU_EUNSUPPORTED, "stream %d: its samples cannot be converted", s->in_index);
  unsigned char h[32];
  int size = n * ch * 2;
  EVP_MD_CTX *m = mdec_sha256_new();
  if (!m) return cu_error(CU_EIO, "out of memory");
  EVP_DigestUpdate(m, s->abuf, (size_t)size);
  EVP_DigestFinal_ex(m, h, NULL);
  EVP_MD_CTX_free(m);
  s->frames++;
  return push(s, pts, pts, n, size, h);
}

static void on_packet(void *ud, int stream, const AVPacket *pkt) {
  fh_ctx *c = ud;
  fh_stream *s = &c->s[c->out_of[stream]];
  if (s->type != AVMEDIA_TYPE_AUDIO) return;
  s->pkt_pending = true;
  s->pending_pts = pkt->pts;
  s->pending_duration = pkt->duration;
  if (pkt->dts != AV_NOPTS_VALUE)
    s->next_dts_us = av_rescale_q(pkt->dts, c->in.ic->streams[stream]->time_base, AV_TIME_BASE_Q);
}

static int on_video(void *ud, int stream, const mdec_vframe *f) {
  fh_ctx *c = ud;
  fh_stream *s = &c->s[c->out_of[stream]];
  if (!s->seen) {
    s->seen = true;
    /* decode_video(): the stream's aspect ratio, when it has one, wins. */
    AVRational ssar = c->in.ic->streams[stream]->sample_aspect_ratio;
    s->width = f->width, s->height = f->height, s->sar = ssar.num ? ssar : f->sar;
  }
  int rc = video_frame(c, s, f);
  return rc ? rc : merge(c, false);
}

static int on_audio(void *ud, int stream, AVFrame *f) {
  fh_ctx *c = ud;
  fh_stream *s = &c->s[c->out_of[stream]];
  if (!s->seen) {
    s->seen = true;
    s->sample_rate = f->sample_rate;
    s->tb = (AVRational){1, f->sample_rate};
    av_channel_layout_uninit(&s->layout);
    /* As the frame says, unspecified too ("1 channels"): ffmpeg's guess
     * was made once, before the decoder opened (mio_decoder). */
    if (av_channel_layout_copy(&s->layout, &f->ch_layout) < 0) return cu_error(CU_EIO, "out of memory");
  }
  int rc = audio_frame(c, s, f);
  return rc ? rc : merge(c, false);
}

static int header(fh_ctx *c) {
  FILE *o = c->out;
  fprintf(o, "#format: frame checksums\n#version: 2\n#hash: SHA256\n#software: %s\n", LIBAVFORMAT_IDENT);
  for (int i = 0; i < c->ns; i++) {
    fh_stream *s = &c->s[i];
    AVCodecContext *dec = c->d.dec[s->in_index];
    if (!s->seen) /* no frame decoded: what the stream declares */
      s->width = dec->width, s->height = dec->height, s->sar = dec->sample_aspect_ratio,
      s->sample_rate = dec->sample_rate;
    fprintf(o, "#tb %d: %d/%d\n#media_type %d: %s\n", i, s->tb.num, s->tb.den, i,
            av_get_media_type_string(s->type));
    if (s->type == AVMEDIA_TYPE_VIDEO) {
      fprintf(o, "#codec_id %d: rawvideo\n#dimensions %d: %dx%d\n#sar %d: %d/%d\n", i, i,
              s->width, s->height, i, s->sar.num, s->sar.den);
    } else {
      char name[128] = "";
      av_channel_layout_describe(&s->layout, name, sizeof name);
      fprintf(o, "#codec_id %d: pcm_s16le\n#sample_rate %d: %d\n#channel_layout_name %d: %s\n", i,
              i, s->sample_rate, i, name);
    }
  }
  c->header_done = true;
  if (fprintf(o, "#stream#, dts,        pts, duration,     size, hash\n") < 0)
    return cu_error_errno(CU_EIO, errno, "cannot write %s", c->dst);
  return 0;
}

static void fh_free(fh_ctx *c) {
  for (int i = 0; c->s && i < c->ns; i++) {
    swr_free(&c->s[i].swr);
    av_freep(&c->s[i].abuf);
    av_channel_layout_uninit(&c->s[i].layout);
    av_channel_layout_uninit(&c->s[i].in_layout);
    EVP_MD_CTX_free(c->s[i].native);
    free(c->s[i].q);
  }
  mdec_close(&c->d);
  mio_close(&c->in);
  free(c->s);
  free(c->out_of);
  free(c->selected);
}

/* One go at it; MDEC_AGAIN if the parallel decode could not be used. */
static int run(fh_ctx *c, const char *src, const media_ctl *ctl, bool parallel, json_t **report) {
  const char *dst = c->dst;
  json_t *rep = NULL;
  int rc = mio_open(&c->in, src, ctl, ctl ? ctl->deadline_us : 0);
  if (rc) goto done;
  AVFormatContext *ic = c->in.ic;
  unsigned n = ic->nb_streams;
  bool *selected = c->selected = calloc(n ? n : 1, sizeof *selected);
  c->out_of = malloc((n ? n : 1) * sizeof *c->out_of);
  c->s = calloc(n ? n : 1, sizeof *c->s);
  if (!selected || !c->out_of || !c->s) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  /* -map 0:V? -map 0:a?: pictures that move, then sound. */
  for (int pass = 0; pass < 2; pass++)
    for (unsigned i = 0; i < n; i++) {
      AVStream *st = ic->streams[i];
      enum AVMediaType t = st->codecpar->codec_type;
      bool want = pass == 0 ? t == AVMEDIA_TYPE_VIDEO && !(st->disposition & AV_DISPOSITION_ATTACHED_PIC)
                            : t == AVMEDIA_TYPE_AUDIO;
      c->out_of[i] = want ? c->ns : (pass == 0 ? -1 : c->out_of[i]);
      if (!want) continue;
      selected[i] = true;
      fh_stream *s = &c->s[c->ns];
      s->in_index = (int)i, s->out_index = c->ns++, s->type = t;
      s->rescale_last = AV_NOPTS_VALUE, s->prev_pkt_pts = AV_NOPTS_VALUE;
    }
  if (!c->ns) {
    rc = cu_error(CU_EUNSUPPORTED, "it has no video or audio stream to hash");
    goto done;
  }
  c->d = (mdec){.in = &c->in, .selected = selected, .on_frame = on_audio, .on_video = on_video,
                .parallel = parallel, .on_packet = on_packet, .ud = c};
  if (ic->start_time != AV_NOPTS_VALUE) c->d.ts_offset = -ic->start_time;
  if ((rc = mdec_open(&c->d))) goto done;
  for (int i = 0; i < c->ns; i++) {
    fh_stream *s = &c->s[i];
    AVCodecContext *dec = c->d.dec[s->in_index];
    if (s->type == AVMEDIA_TYPE_VIDEO) {
      AVRational fr = av_guess_frame_rate(ic, ic->streams[s->in_index], NULL);
      if (!fr.num || !fr.den) fr = (AVRational){25, 1};
      s->tb = av_inv_q(fr);
      s->tick = 1.0;
    } else {
      s->tb = (AVRational){1, dec->sample_rate};
      av_channel_layout_copy(&s->layout, &dec->ch_layout);
      if (!(s->native = mdec_sha256_new())) {
        rc = cu_error(CU_EIO, "out of memory");
        goto done;
      }
    }
  }
  if (!(c->out = fopen(dst, "we"))) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot create %s", dst);
    goto done;
  }
  if ((rc = mdec_run(&c->d))) goto done;
  if ((rc = merge(c, true))) goto done;
  if (!c->header_done && (rc = header(c))) goto done;
  if (fflush(c->out) != 0 || fsync(fileno(c->out)) != 0) {
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot write %s", dst);
    goto done;
  }

  rep = json_object();
  json_t *params = json_object(), *streams = json_array(), *audio = json_object();
  cu_json_set_str(params, "hash", "sha256");
  cu_json_set_int(params, "format_version", 2);
  cu_json_set_str(params, "command", "ffmpeg -i IN -map 0:V? -map 0:a? -f framehash -hash sha256 OUT");
  json_object_set_new(rep, "params", params);
  for (int i = 0; i < c->ns; i++) {
    fh_stream *s = &c->s[i];
    json_t *o = json_object();
    cu_json_set_int(o, "index", s->in_index);
    cu_json_set_str(o, "type", av_get_media_type_string(s->type));
    cu_json_set_int(o, "frames", (int64_t)s->frames);
    if (s->size_changes) cu_json_set_int(o, "frames_of_another_size", (int64_t)s->size_changes);
    /* Every decoded frame has its line unless ffmpeg's frame-rate logic
     * dropped some: then the text is not a list of all of them. */
    if (s->type == AVMEDIA_TYPE_VIDEO) cu_json_set_int(o, "decoded_frames", (int64_t)s->decoded);
    json_array_append_new(streams, o);
    if (s->native) {
      unsigned char h[32];
      char hex[65], key[16];
      EVP_DigestFinal_ex(s->native, h, NULL);
      cu_hex_encode(h, 32, hex);
      snprintf(key, sizeof key, "%d", s->in_index);
      cu_json_set_str(audio, key, hex);
    }
  }
  json_object_set_new(rep, "streams", streams);
  json_object_set_new(rep, "audio_sha256", audio);
  json_object_set_new(rep, "decode_errors", mdec_errors_json(&c->d.err));
  /* How the video was decoded: in this many segments at once, or in one pass. */
  if (c->d.segments) cu_json_set_int(rep, "video_segments", c->d.segments);

done:
  if (c->out && fclose(c->out) != 0 && !rc) rc = cu_error_errno(CU_EIO, errno, "cannot close %s", dst);
  c->out = NULL;
  if (!rc) *report = rep;
  else json_decref(rep);
  return rc;
}

int media_framehash(const char *src, const char *dst, const media_ctl *ctl, json_t **report) {
  *report = NULL;
  fh_ctx c = {.dst = dst};
  int rc = run(&c, src, ctl, true, report);
  fh_free(&c);
  if (rc == MDEC_AGAIN) { /* from the start, in one pass; the output is rewritten */
    c = (fh_ctx){.dst = dst};
    rc = run(&c, src, ctl, false, report);
    fh_free(&c);
  }
  return rc;
}
