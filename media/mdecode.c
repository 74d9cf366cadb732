/* The decode loop shared by frame hashes and the lossless check. */
#include "mdecode.h"

#include <string.h>

#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>

#include "err.h"
#include "json.h"
#include "sha2x.h"
#include "banned.h"

EVP_MD_CTX *mdec_sha256_new(void) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) EVP_MD_CTX_free(c), c = NULL;
  return c;
}

/* Where the bytes of a frame packed with no padding come from: rows[i]
 * rows of bytes[i] bytes in plane i. */
typedef struct {
  const AVPixFmtDescriptor *desc;
  int planes, size;
  int bytes[4], rows[4];
} layout;

static int layout_of(const AVFrame *f, layout *l) {
  enum AVPixelFormat fmt = (enum AVPixelFormat)f->format;
  l->desc = av_pix_fmt_desc_get(fmt);
  l->size = av_image_get_buffer_size(fmt, f->width, f->height, 1);
  if (!l->desc || l->size < 0 || av_image_fill_linesizes(l->bytes, fmt, f->width) < 0)
    return cu_error(CU_EUNSUPPORTED, "a decoded frame has a pixel format (%s) that cannot be hashed",
                    l->desc ? l->desc->name : "unknown");
  l->planes = 0;
  for (int i = 0; i < l->desc->nb_components; i++)
    if (l->desc->comp[i].plane > l->planes) l->planes = l->desc->comp[i].plane;
  l->planes++;
  for (int i = 0; i < l->planes; i++) {
    int shift = (i == 1 || i == 2) ? l->desc->log2_chroma_h : 0;
    l->rows[i] = (f->height + (1 << shift) - 1) >> shift;
  }
  return 0;
}

int mdec_hash_video(const AVFrame *f, unsigned char out[32], int *size) {
  layout l;
  int rc = layout_of(f, &l);
  if (rc) return rc;
  EVP_MD_CTX *c = mdec_sha256_new();
  if (!c) return cu_error(CU_EIO, "out of memory");
  /* Row by row straight from the frame: the same bytes as packing it into
   * one buffer first, without the copy. */
  for (int i = 0; i < l.planes; i++) {
    const uint8_t *row = f->data[i];
    if (f->linesize[i] == l.bytes[i]) { /* no padding: the plane at once */
      EVP_DigestUpdate(c, row, (size_t)l.bytes[i] * (size_t)l.rows[i]);
      continue;
    }
    for (int y = 0; y < l.rows[i]; y++, row += f->linesize[i]) EVP_DigestUpdate(c, row, (size_t)l.bytes[i]);
  }
  if (l.desc->flags & AV_PIX_FMT_FLAG_PAL) {
    uint8_t pal[1024];
    for (int i = 0; i < 256; i++) {
      uint32_t v;
      memcpy(&v, f->data[1] + 4 * i, 4);
      pal[4 * i] = (uint8_t)v, pal[4 * i + 1] = (uint8_t)(v >> 8);
      pal[4 * i + 2] = (uint8_t)(v >> 16), pal[4 * i + 3] = (uint8_t)(v >> 24);
    }
    EVP_DigestUpdate(c, pal, sizeof pal);
  }
  EVP_DigestFinal_ex(c, out, NULL);
  EVP_MD_CTX_free(c);
  *size = l.size;
  return 0;
}

bool mdec_hash_pair_possible(const AVFrame *a, const AVFrame *b) {
  const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)a->format);
  return a->format == b->format && a->width == b->width && a->height == b->height && d &&
         !(d->flags & AV_PIX_FMT_FLAG_PAL) && sha2x_available();
}

int mdec_hash_video_pair(const AVFrame *a, const AVFrame *b, unsigned char ha[32], unsigned char hb[32],
                         int *size) {
  layout l;
  int rc = layout_of(a, &l);
  if (rc) return rc;
  sha2x c;
  sha2x_init(&c);
  for (int i = 0; i < l.planes; i++) {
    const uint8_t *ra = a->data[i], *rb = b->data[i];
    if (a->linesize[i] == l.bytes[i] && b->linesize[i] == l.bytes[i]) {
      sha2x_update(&c, ra, rb, (size_t)l.bytes[i] * (size_t)l.rows[i]);
      continue;
    }
    for (int y = 0; y < l.rows[i]; y++, ra += a->linesize[i], rb += b->linesize[i])
      sha2x_update(&c, ra, rb, (size_t)l.bytes[i]);
  }
  sha2x_final(&c, ha, hb);
  *size = l.size;
  return 0;
}

void mdec_errors_note(mdec_errors *e, const AVFormatContext *ic, int stream, int64_t ts,
                      const char *what) {
  if (!e->where) e->where = json_array();
  if (json_array_size(e->where) >= MDEC_MAX_ERRORS_LISTED) return;
  json_t *o = json_object();
  cu_json_set_int(o, "stream", stream);
  if (stream >= 0 && ts != AV_NOPTS_VALUE) {
    AVRational tb = ic->streams[stream]->time_base;
    json_object_set_new(o, "pts_s", json_real((double)av_rescale_q(ts, tb, AV_TIME_BASE_Q) / 1e6));
  }
  cu_json_set_str(o, "what", what);
  json_array_append_new(e->where, o);
}

void mdec_errors_packet(mdec_errors *e, const AVFormatContext *ic, const AVPacket *pkt) {
  if (!(pkt->flags & AV_PKT_FLAG_CORRUPT)) return;
  e->packets_corrupt++;
  mdec_errors_note(e, ic, pkt->stream_index, pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts,
                   "the container marks a packet damaged (data is missing there)");
}

json_t *mdec_errors_json(const mdec_errors *e) {
  json_t *o = json_object();
  cu_json_set_int(o, "packets_corrupt", (int64_t)e->packets_corrupt);
  cu_json_set_int(o, "packets_failed", (int64_t)e->packets_failed);
  cu_json_set_int(o, "frames_damaged", (int64_t)e->frames_damaged);
  cu_json_set_int(o, "read_errors", (int64_t)e->read_errors);
  json_object_set_new(o, "where", e->where ? json_incref(e->where) : json_array());
  return o;
}

static void note_error(mdec *d, int stream, int64_t ts, const char *what) {
  mdec_errors_note(&d->err, d->in->ic, stream, ts, what);
}

#define DISCONT_US (10LL * 1000 * 1000)

int mdec_ts_init(mdec_ts *t, const AVFormatContext *ic, int64_t offset_us) {
  memset(t, 0, sizeof *t);
  t->offset_us = offset_us;
  t->last_ts_us = AV_NOPTS_VALUE;
  t->n = ic->nb_streams;
  t->discont = (ic->iformat->flags & AVFMT_TS_DISCONT) != 0;
  size_t n = t->n ? t->n : 1;
  t->next_dts_us = av_malloc_array(n, sizeof *t->next_dts_us);
  t->last_dts_us = av_malloc_array(n, sizeof *t->last_dts_us);
  t->clock_dts_us = av_malloc_array(n, sizeof *t->clock_dts_us);
  t->clock_next_us = av_malloc_array(n, sizeof *t->clock_next_us);
  t->clock_started = av_calloc(n, sizeof *t->clock_started);
  if (!t->next_dts_us || !t->last_dts_us || !t->clock_dts_us || !t->clock_next_us || !t->clock_started)
    return cu_error(CU_EIO, "out of memory");
  for (unsigned i = 0; i < t->n; i++)
    t->next_dts_us[i] = t->last_dts_us[i] = t->clock_dts_us[i] = t->clock_next_us[i] = AV_NOPTS_VALUE;
  return 0;
}

void mdec_ts_free(mdec_ts *t) {
  av_freep(&t->next_dts_us);
  av_freep(&t->last_dts_us);
  av_freep(&t->clock_dts_us);
  av_freep(&t->clock_next_us);
  av_freep(&t->clock_started);
}

/* process_input_packet() of ffmpeg 5.1, for the video clock: it starts
 * one reorder delay before 0, follows the container's dts where there is
 * one, and otherwise moves on by each packet's duration or one frame. */
void mdec_ts_clock_in(mdec_ts *t, const AVFormatContext *ic, const AVCodecContext *dec, AVPacket *pkt) {
  unsigned s = (unsigned)pkt->stream_index;
  if (s >= t->n || ic->streams[s]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO) return;
  const AVStream *st = ic->streams[s];
  if (!t->clock_started[s]) {
    int delay = dec ? dec->has_b_frames : st->codecpar->video_delay;
    AVRational fr = st->avg_frame_rate;
    /* Truncated as ffmpeg's double expression is. */
    t->clock_dts_us[s] = fr.num ? (int64_t)(-delay * AV_TIME_BASE / av_q2d(fr)) : 0;
    if (!dec && pkt->pts != AV_NOPTS_VALUE) t->clock_dts_us[s] += av_rescale_q(pkt->pts, st->time_base, AV_TIME_BASE_Q);
    t->clock_started[s] = true;
  }
  if (t->clock_next_us[s] == AV_NOPTS_VALUE) t->clock_next_us[s] = t->clock_dts_us[s];
  if (pkt->dts != AV_NOPTS_VALUE) t->clock_next_us[s] = av_rescale_q(pkt->dts, st->time_base, AV_TIME_BASE_Q);
  t->clock_dts_us[s] = t->clock_next_us[s];
  /* A copied packet that has a pts keeps what the muxer makes of it, as it
   * always did: only one with no timestamp at all is placed on the clock. */
  if (pkt->dts == AV_NOPTS_VALUE && t->clock_dts_us[s] != AV_NOPTS_VALUE && (dec || pkt->pts == AV_NOPTS_VALUE))
    pkt->dts = av_rescale_q(t->clock_dts_us[s], AV_TIME_BASE_Q, st->time_base);
}

/* decode_video() of ffmpeg 5.1 at the end of the input: each drain call
 * queues the clock's dts, and a frame that comes out without a timestamp
 * takes the oldest queued one. */
void mdec_ts_drained(mdec_ts *t, const AVFormatContext *ic, const AVCodecContext *dec, int stream, AVFrame *f) {
  unsigned s = (unsigned)stream;
  if (s >= t->n || !t->clock_started[s]) return;
  if (t->drain_stream != stream + 1) t->drain_stream = stream + 1, t->ndrain_dts = 0;
  int64_t at = t->clock_next_us[s];
  if (t->ndrain_dts < MDEC_DRAIN_DTS)
    t->drain_dts[t->ndrain_dts++] = at == AV_NOPTS_VALUE ? at : av_rescale_q(at, AV_TIME_BASE_Q, ic->streams[s]->time_base);
  if (f->best_effort_timestamp == AV_NOPTS_VALUE && t->ndrain_dts > 0) {
    f->best_effort_timestamp = t->drain_dts[0];
    memmove(t->drain_dts, t->drain_dts + 1, (size_t)--t->ndrain_dts * sizeof *t->drain_dts);
  }
  mdec_ts_clock_on(t, ic, dec, stream, NULL);
}

void mdec_ts_clock_on(mdec_ts *t, const AVFormatContext *ic, const AVCodecContext *dec, int stream,
                      const AVPacket *pkt) {
  unsigned s = (unsigned)stream;
  if (s >= t->n || ic->streams[s]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO || !t->clock_started[s]) return;
  const AVStream *st = ic->streams[s];
  if (!pkt) t->clock_dts_us[s] = t->clock_next_us[s]; /* each drain call starts there */
  int64_t dur = 0;
  /* A copied stream's context is never opened: its rate is the stream's
   * average, one tick a frame. */
  AVRational fr = dec ? dec->framerate : st->avg_frame_rate;
  int tpf = dec ? dec->ticks_per_frame : 1;
  if (pkt && pkt->duration) {
    dur = av_rescale_q(pkt->duration, st->time_base, AV_TIME_BASE_Q);
  } else if (fr.num && fr.den && tpf > 0) {
    const AVCodecParserContext *pc = av_stream_get_parser(st);
    int ticks = pc ? pc->repeat_pict + 1 : tpf;
    dur = (int64_t)AV_TIME_BASE * fr.den * ticks / fr.num / tpf;
  }
  if (!dec) { /* a copy moves on whatever its dts */
    if (dur) t->clock_next_us[s] += dur;
  } else {
    t->clock_next_us[s] = t->clock_dts_us[s] != AV_NOPTS_VALUE && dur ? t->clock_next_us[s] + dur : AV_NOPTS_VALUE;
  }
}

static int64_t shift(AVPacket *pkt, int64_t delta_us, AVRational tb) {
  int64_t d = av_rescale_q(delta_us, AV_TIME_BASE_Q, tb);
  pkt->dts -= d;
  if (pkt->pts != AV_NOPTS_VALUE) pkt->pts -= d;
  return delta_us;
}

/* process_input() of ffmpeg 5.1, for the parts that move timestamps. */
int64_t mdec_ts_apply(mdec_ts *t, const AVFormatContext *ic, AVPacket *pkt) {
  unsigned s = (unsigned)pkt->stream_index;
  AVRational tb = ic->streams[s]->time_base;
  int64_t off = av_rescale_q(t->offset_us, AV_TIME_BASE_Q, tb), jump = 0;
  if (pkt->pts != AV_NOPTS_VALUE) pkt->pts += off;
  if (pkt->dts != AV_NOPTS_VALUE) pkt->dts += off;
  if (pkt->dts == AV_NOPTS_VALUE) return 0;
  int64_t dts = av_rescale_q(pkt->dts, tb, AV_TIME_BASE_Q);
  if (t->discont && t->next_dts_us[s] == AV_NOPTS_VALUE && t->last_ts_us != AV_NOPTS_VALUE) {
    int64_t delta = dts - t->last_ts_us;
    if (delta < -DISCONT_US || delta > DISCONT_US) {
      t->offset_us -= delta;
      jump = shift(pkt, delta, tb);
    }
  } else if (t->discont && t->next_dts_us[s] != AV_NOPTS_VALUE) {
    int64_t delta = dts - t->next_dts_us[s];
    if (delta < -DISCONT_US || delta > DISCONT_US || dts + AV_TIME_BASE / 10 < t->last_dts_us[s]) {
      t->offset_us -= delta;
      jump = shift(pkt, delta, tb);
    }
  }
  dts = av_rescale_q(pkt->dts, tb, AV_TIME_BASE_Q);
  t->last_ts_us = t->last_dts_us[s] = dts;
  t->next_dts_us[s] = pkt->duration > 0 ? dts + av_rescale_q(pkt->duration, tb, AV_TIME_BASE_Q) : AV_NOPTS_VALUE;
  return jump;
}

int mdec_open(mdec *d) {
  int rc = mdec_ts_init(&d->ts, d->in->ic, d->ts_offset);
  if (rc) return rc;
  unsigned n = d->in->ic->nb_streams;
  if (!(d->dec = av_calloc(n, sizeof *d->dec))) return cu_error(CU_EIO, "out of memory");
  for (unsigned i = 0; i < n; i++) {
    if (!d->selected[i]) continue;
    if ((rc = mio_decoder(&d->dec[i], d->in->ic->streams[i], d->threads))) return rc;
  }
  if (d->as_pix_fmt && !(d->arr = av_calloc(n, sizeof *d->arr))) return cu_error(CU_EIO, "out of memory");
  return 0;
}

/* f, or f rearranged into the pixel format it is to be hashed as. */
static int as_hashed(mdec *d, int s, AVFrame *f, AVFrame **out) {
  *out = f;
  if (!d->as_pix_fmt || d->as_pix_fmt[s] < 0 || f->format == d->as_pix_fmt[s]) return 0;
  return mio_rearrange(&d->arr[s], f, d->as_pix_fmt[s], out);
}

void mdec_close(mdec *d) {
  if (d->dec && d->in && d->in->ic)
    for (unsigned i = 0; i < d->in->ic->nb_streams; i++) avcodec_free_context(&d->dec[i]);
  av_freep(&d->dec);
  if (d->arr && d->in && d->in->ic)
    for (unsigned i = 0; i < d->in->ic->nb_streams; i++) mio_arranger_free(&d->arr[i]);
  av_freep(&d->arr);
  mdec_ts_free(&d->ts);
  json_decref(d->err.where);
  d->err.where = NULL;
}

/* Takes every frame the decoder has ready. */
static int drain(mdec *d, int s, AVFrame *f) {
  for (;;) {
    int err = avcodec_receive_frame(d->dec[s], f);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return 0;
    if (err < 0) {
      d->err.packets_failed++;
      note_error(d, s, AV_NOPTS_VALUE, "the decoder failed");
      if (err == AVERROR(ENOMEM)) return cu_error(CU_EIO, "out of memory while decoding");
      continue;
    }
    if (f->decode_error_flags || (f->flags & AV_FRAME_FLAG_CORRUPT)) {
      d->err.frames_damaged++;
      note_error(d, s, f->best_effort_timestamp, "a frame was decoded with damage concealed");
    }
    if (d->draining && d->dec[s]->codec_type == AVMEDIA_TYPE_VIDEO) mdec_ts_drained(&d->ts, d->in->ic, d->dec[s], s, f);
    f->pts = f->best_effort_timestamp;
    int rc;
    if (d->on_video && d->dec[s]->codec_type == AVMEDIA_TYPE_VIDEO) {
      mdec_vframe v;
      AVFrame *h;
      rc = as_hashed(d, s, f, &h);
      if (!rc) rc = mdec_vframe_of(h, &v);
      if (!rc) rc = d->on_video(d->ud, s, &v);
    } else {
      rc = d->on_frame(d->ud, s, f);
    }
    av_frame_unref(f);
    if (rc) return rc;
  }
}

int mdec_send(mdec *d, int s, const AVPacket *pkt, AVFrame *f) {
  for (;;) {
    int err = avcodec_send_packet(d->dec[s], pkt);
    if (err == AVERROR(EAGAIN)) {
      /* The decoder's output is full: take frames, then send again. */
      int rc = drain(d, s, f);
      if (rc) return rc;
      continue;
    }
    if (err < 0 && err != AVERROR_EOF) {
      if (err == AVERROR(ENOMEM)) return cu_error(CU_EIO, "out of memory while decoding");
      d->err.packets_failed++;
      note_error(d, s, pkt ? pkt->pts : AV_NOPTS_VALUE, "the decoder refused a packet");
    }
    return drain(d, s, f);
  }
}

int mdec_vframe_of(const AVFrame *f, mdec_vframe *v) {
  v->pts = f->pts;
  v->pkt_duration = f->pkt_duration;
  v->width = f->width, v->height = f->height, v->sar = f->sample_aspect_ratio;
  return mdec_hash_video(f, v->h, &v->size);
}

int mdec_run(mdec *d) {
  d->segments = 0;
  d->draining = false;
  if (d->parallel && d->on_video) {
    int vs = mdec_parallel_stream(d);
    if (vs >= 0) return mdec_run_parallel(d, vs);
  }
  AVFormatContext *ic = d->in->ic;
  AVPacket *pkt = av_packet_alloc();
  AVFrame *f = av_frame_alloc();
  int rc = 0;
  if (!pkt || !f) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  for (;;) {
    int err = av_read_frame(ic, pkt);
    mio_stopped(&d->in->io);
    if ((rc = mio_own_failure(&d->in->io, "decoding"))) goto done;
    if (err == AVERROR(EAGAIN)) continue;
    if (err < 0) {
      if (err != AVERROR_EOF) {
        /* As ffmpeg does: bad data that stops the demuxer ends the input. */
        d->err.read_errors++;
        note_error(d, -1, AV_NOPTS_VALUE, "the container could not be read past this point");
      }
      break;
    }
    int s = pkt->stream_index;
    if (s < 0 || (unsigned)s >= ic->nb_streams || !d->selected[s]) {
      av_packet_unref(pkt);
      continue;
    }
    mio_progress(d->in, pkt);
    mdec_ts_apply(&d->ts, ic, pkt);
    mdec_ts_clock_in(&d->ts, ic, d->dec[s], pkt);
    mdec_errors_packet(&d->err, ic, pkt);
    if (d->on_packet) d->on_packet(d->ud, s, pkt);
    rc = mdec_send(d, s, pkt, f);
    mdec_ts_clock_on(&d->ts, ic, d->dec[s], s, pkt);
    av_packet_unref(pkt);
    if (rc) goto done;
  }
  d->draining = true;
  for (unsigned s = 0; s < ic->nb_streams; s++)
    if (d->selected[s] && (rc = mdec_send(d, (int)s, NULL, f))) goto done;
done:
  av_packet_free(&pkt);
  av_frame_free(&f);
  return rc;
}

int mdec_hash_audio_update(EVP_MD_CTX *c, const AVFrame *f, int from_sample) {
  enum AVSampleFormat fmt = (enum AVSampleFormat)f->format;
  int ch = f->ch_layout.nb_channels, bps = av_get_bytes_per_sample(fmt);
  if (bps <= 0 || ch <= 0) return cu_error(CU_EUNSUPPORTED, "a decoded audio frame has no sample format");
  if (from_sample >= f->nb_samples) return 0;
  if (from_sample < 0) from_sample = 0;
  if (!av_sample_fmt_is_planar(fmt) || ch == 1) {
    size_t per = (size_t)ch * (size_t)bps;
    EVP_DigestUpdate(c, f->extended_data[0] + (size_t)from_sample * per,
                     (size_t)(f->nb_samples - from_sample) * per);
    return 0;
  }
  /* Interleave a bounded chunk at a time. */
  uint8_t buf[8192];
  size_t per = (size_t)ch * (size_t)bps, step = sizeof buf / per;
  for (size_t s0 = (size_t)from_sample; s0 < (size_t)f->nb_samples; s0 += step) {
    size_t n = (size_t)f->nb_samples - s0 < step ? (size_t)f->nb_samples - s0 : step;
    for (size_t i = 0; i < n; i++)
      for (int k = 0; k < ch; k++)
        memcpy(buf + i * per + (size_t)k * (size_t)bps, f->extended_data[k] + (s0 + i) * (size_t)bps, (size_t)bps);
    EVP_DigestUpdate(c, buf, n * per);
  }
  return 0;
}
