/* media_clip: clips for reviewers (copy or exact) and the frame check.
 *
 * DESIGN
 * Finding the keyframe. The lead stream is the video (the audio when there
 * is none). We seek on it with the file's index to the keyframe at or
 * before start (avformat_seek_file, backwards) and read on until no later
 * keyframe can be at or before start: the last one that was is the anchor.
 * A demuxer whose seek lands past it (MPEG-TS searches by timestamps, MP4
 * by decoding time) is asked again further back, the step doubling. Only
 * that stretch and the range are read: a 30 s clip of a long recording
 * never reads the rest of it.
 *
 * The range. One reader decides which of the original's packets belong to
 * the clip, so the copy and the check after it cannot disagree. After a
 * seek to the anchor: the lead's packets from the anchor on, the audio's
 * from the anchor's time (copy) or from just before start (exact: the
 * decoder's overlap), up to end:
 *   - copy: video packets with pts < end, and before them in decoding
 *     order the ones with pts >= end that they are predicted from (held
 *     until a packet with pts < end comes, dropped once dts >= end), so
 *     the clip decodes to its last frame;
 *   - exact: every video packet with dts < end (no frame before end can
 *     come later); frames are chosen after decoding.
 * Audio packets that the file stores just ahead of the keyframe's packet
 * wait in a bounded queue. Reading stops when every stream is past end, or
 * CLIP_READ_PAST_US after it whatever a stream does (one that ended early
 * must not make us read the rest of the file).
 *
 * The copy check reads the clip back and the original's range again, and
 * compares each stream's packets in order, by SHA-256 of their payload.
 * Where the MP4 muxer must repack (H.264/HEVC in Annex B, as MPEG-TS
 * carries it, becomes length-prefixed; AAC loses its ADTS headers), both
 * sides are compared as what the packing holds (the NAL units, the raw AAC
 * frame) and the report says so.
 *
 * Exact. The video frames with start <= pts < end are re-encoded; the first
 * one's time is the clip's 0 (its first frame is at 0) and the audio is cut
 * at that same instant, sample by sample, so the two stay in step. Audio
 * decoded before that frame is known waits (bounded). The last video frame
 * is shortened to end at end.
 *
 * The frame check hashes the clip's frames first (a clip is bounded), then
 * reads the framehash file once, searching it for the clip's sequence of
 * hashes with Knuth-Morris-Pratt: a still scene with many identical frames
 * cannot put the clip in the wrong place, and the file is never held in
 * memory. */
#include "clip.h"

#include "mdecode.h"
#include "mio.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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
#include <openssl/evp.h>

#include "err.h"
#include "hex.h"
#include "json.h"
#include "timeu.h"
#include "banned.h"

/* Exact mode's encoders: visually lossless for review, fast. */
#define CLIP_CRF 18
#define CLIP_CRF_S "18"
#define CLIP_PRESET "veryfast"
#define CLIP_AUDIO_BITRATE 192000
/* Keyframe interval of an exact clip: a reviewer's player seeks in it. */
#define CLIP_GOP_S 2
/* Used when the frame rate is unknown (keyframe interval, a frame's length). */
#define CLIP_GUESS_FPS 30
/* For inputs at a rate AAC cannot code: what every browser plays. */
#define CLIP_FALLBACK_RATE 48000
/* Progress reports at most this often (media.h: a few times a second). */
#define CLIP_PROGRESS_US 250000
/* When a seek lands past the keyframe it was asked for: the first step
 * back, doubled each time until the file's start. */
#define CLIP_SEEK_BACK_US (1LL * 1000 * 1000)
#define CLIP_SEEK_TRIES 64
/* libavformat's max_interleave_delta: how far past end a stream's packets
 * may still come in a well-muxed file. Reading stops there. */
#define CLIP_READ_PAST_US (10LL * 1000 * 1000)
/* Copy: video packets past end held for the B-frames before end predicted
 * from them. H.264 and HEVC reorder at most 16 frames. */
#define CLIP_MAX_HELD 64
/* Audio packets met before the keyframe's own packet (files store them a
 * little ahead of it): some 90 s of AAC, far beyond any muxer's
 * interleaving. More means streams stored too far apart to cut. */
#define CLIP_MAX_QUEUED 4096
/* Exact: audio is decoded from this long before start, so the first kept
 * samples have the decoder's overlap from the frame before. */
#define CLIP_AUDIO_PREROLL_US 100000
/* Exact: decoded audio frames kept while waiting for the first video frame
 * at or after start (decoder delay, interleaving): some 10 s of AAC. */
#define CLIP_MAX_PENDING_AUDIO 512
/* The copy check: clip packets read ahead of the stream being compared
 * (the MP4 muxer interleaves within a second or so). */
#define CLIP_CHECK_MAX_AHEAD 65536
/* The encoder's time base is the input stream's when it is a plain 1/N
 * with N in this range; others become 1/90000. */
#define CLIP_TB_MIN_DEN 1000
#define CLIP_TB_MAX_DEN 1000000
#define CLIP_FALLBACK_TB_DEN 90000
/* Bound on timestamps we compute with: a file's can be anything, and an
 * overflowing sum is undefined. */
#define CLIP_TS_MAX (INT64_C(1) << 60)
/* Range bounds a caller may ask for: some 3 years, far past any recording. */
#define CLIP_MAX_TIME_US (INT64_C(100000000) * 1000 * 1000)
/* A framehash line is about 100 bytes; a longer one is not framehash text. */
#define CLIP_FH_LINE_MAX 1024
/* Audio timestamps that stray less than 1/CLIP_JITTER_DIV s from the
 * sample count are jitter (MPEG-TS): the count wins, so cuts stay exact. */
#define CLIP_JITTER_DIV 10

enum { SV = 0, SA = 1, NSLOT = 2 };
enum { FORM_RAW, FORM_ANNEXB, FORM_LENGTH, FORM_ADTS };

typedef struct {
  int index;         /* in the original; -1: not in the clip */
  int64_t shift;     /* copy: subtracted from the original's timestamps */
  int64_t from, end; /* the range in the stream's time base */
  AVStream *ost;
  int64_t packets, fixed;
  int64_t first_us, end_us; /* in the clip's own time */
  int64_t last_dts;         /* copy, output time base */
  AVCodecContext *dec, *enc;
} cslot;

typedef struct {
  AVPacket *q[CLIP_MAX_QUEUED];
  size_t qhead, qlen;
  AVPacket *held[CLIP_MAX_HELD];
  size_t nheld;
  bool found, done[NSLOT];
  int64_t back_us;
  bool from_begin;
  uint64_t read_errors;
} range;

typedef struct {
  const char *path;
  mio_in in;
  media_clip_mode mode;
  int threads;
  const media_ctl *ctl;
  cslot s[NSLOT];
  int lead;
  int64_t rec_start_us, rec_dur_us; /* rec_dur_us < 0: unknown */
  int64_t start_us, end_us;         /* on the file's clock */
  bool end_clamped;
  int64_t anchor_pts, anchor_dts, anchor_us;
  range r;
  AVFormatContext *oc;
  AVPacket *pkt;
  double prog_base, prog_span;
  int64_t last_progress_us;
  json_t *normalised;

  /* exact */
  AVFrame *frame;
  int64_t decode_errors;
  bool t0_known;
  int64_t t0;    /* the first video frame kept, video time base */
  int64_t t0_us; /* the clip's 0 on the file's clock */
  mio_scaler scaler;
  AVFrame *scaled;
  int64_t last_vpts, default_vdur, vend; /* encoder time base */
  mio_dur_ring durs;
  AVFrame *pending[CLIP_MAX_PENDING_AUDIO];
  int npending;
  SwrContext *swr;
  AVChannelLayout swr_layout;
  int swr_rate, swr_fmt;
  AVAudioFifo *fifo;
  AVFrame *conv, *aframe;
  int64_t next_apts;      /* encoder time base */
  int64_t next_in_sample; /* where the next decoded frame should start */
  int in_sample_rate;
  int64_t first_vpts, first_apts;
} clip;

static void oom(void) {
  fprintf(stderr, "custos: out of memory in media_clip\n");
  abort();
}

static void jset(json_t *obj, const char *key, json_t *v) {
  if (!v || json_object_set_new(obj, key, v) != 0) oom();
}

static void jappend(json_t *arr, json_t *v) {
  if (!v || json_array_append_new(arr, v) != 0) oom();
}

static double secs(int64_t us) {
  return (double)us / 1e6;
}

/* ts moved from one time base to another; AV_NOPTS_VALUE if unknown or
 * absurd. */
static int64_t to_tb(int64_t ts, AVRational from, AVRational to) {
  if (ts == AV_NOPTS_VALUE || ts < -CLIP_TS_MAX || ts > CLIP_TS_MAX) return AV_NOPTS_VALUE;
  int64_t r = av_rescale_q(ts, from, to);
  return r < -CLIP_TS_MAX || r > CLIP_TS_MAX ? AV_NOPTS_VALUE : r;
}

static int64_t to_tb_rnd(int64_t ts, AVRational from, AVRational to, enum AVRounding rnd) {
  if (ts == AV_NOPTS_VALUE || ts < -CLIP_TS_MAX || ts > CLIP_TS_MAX) return AV_NOPTS_VALUE;
  int64_t r = av_rescale_q_rnd(ts, from, to, rnd);
  return r < -CLIP_TS_MAX || r > CLIP_TS_MAX ? AV_NOPTS_VALUE : r;
}

static AVStream *ist(const clip *c, int slot) {
  return c->in.ic->streams[c->s[slot].index];
}

static int slot_of(const clip *c, int stream) {
  for (int k = 0; k < NSLOT; k++)
    if (c->s[k].index >= 0 && c->s[k].index == stream) return k;
  return -1;
}

static const char *slot_kind(int slot) {
  return slot == SV ? "video" : "audio";
}

static void progress_at(clip *c, int slot, int64_t ts) {
  const media_ctl *ctl = c->ctl;
  if (!ctl || !ctl->progress || ts == AV_NOPTS_VALUE) return;
  int64_t now = cu_mono_us();
  if (c->last_progress_us && now - c->last_progress_us < CLIP_PROGRESS_US) return;
  int64_t us = to_tb(ts, ist(c, slot)->time_base, AV_TIME_BASE_Q);
  double span = (double)(c->end_us - c->anchor_us);
  if (us == AV_NOPTS_VALUE || span <= 0) return;
  c->last_progress_us = now;
  double f = (double)(us - c->anchor_us) / span;
  f = f < 0 ? 0 : f > 1 ? 1 : f;
  ctl->progress(ctl->progress_ud, c->prog_base + c->prog_span * f);
}

static void sane_ts(AVPacket *p);

/* ---- streams and seeking ---- */

/* The first stream of a type (not a cover picture); with need_decoder,
 * the first that libavcodec can decode. */
static int first_stream(const AVFormatContext *ic, enum AVMediaType type, bool need_decoder) {
  for (unsigned i = 0; i < ic->nb_streams; i++) {
    const AVStream *st = ic->streams[i];
    if (st->codecpar->codec_type != type || (st->disposition & AV_DISPOSITION_ATTACHED_PIC))
      continue;
    if (!need_decoder || avcodec_find_decoder(st->codecpar->codec_id)) return (int)i;
  }
  return -1;
}

static void discard_others(clip *c) {
  for (unsigned i = 0; i < c->in.ic->nb_streams; i++)
    c->in.ic->streams[i]->discard = slot_of(c, (int)i) >= 0 ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
}

/* A format that cannot seek is read again from its start. */
static int reopen(clip *c) {
  unsigned n = c->in.ic->nb_streams;
  enum AVCodecID id[NSLOT] = {AV_CODEC_ID_NONE, AV_CODEC_ID_NONE};
  for (int k = 0; k < NSLOT; k++)
    if (c->s[k].index >= 0) id[k] = ist(c, k)->codecpar->codec_id;
  mio_close(&c->in);
  int rc = mio_open(&c->in, c->path, c->ctl, c->ctl ? c->ctl->deadline_us : 0);
  if (rc) return rc;
  if (c->in.ic->nb_streams != n)
    return cu_error(CU_ECORRUPT, "the file shows other streams when read a second time");
  for (int k = 0; k < NSLOT; k++)
    if (c->s[k].index >= 0 && ist(c, k)->codecpar->codec_id != id[k])
      return cu_error(CU_ECORRUPT, "the file shows other streams when read a second time");
  discard_others(c);
  return 0;
}

static int seek_lead(clip *c, int64_t ts) {
  int err = avformat_seek_file(c->in.ic, c->s[c->lead].index, INT64_MIN, ts, ts, 0);
  mio_stopped(&c->in.io);
  int rc = mio_own_failure(&c->in.io, "seeking in the recording");
  if (rc) return rc;
  return err >= 0 ? 0 : reopen(c);
}

/* Where the lead stream begins, in its time base. */
static int64_t lead_begin(const clip *c) {
  const AVStream *st = ist(c, c->lead);
  if (st->start_time != AV_NOPTS_VALUE) return st->start_time;
  int64_t b = to_tb(c->rec_start_us, AV_TIME_BASE_Q, st->time_base);
  return b == AV_NOPTS_VALUE ? 0 : b;
}

/* Finds the anchor: the lead's last keyframe at or before start (the
 * first keyframe after it when there is none before). */
static int locate(clip *c) {
  AVStream *st = ist(c, c->lead);
  AVRational tb = st->time_base;
  int64_t want_us = c->start_us;
  if (c->mode == MEDIA_CLIP_EXACT && c->lead == SA) want_us -= CLIP_AUDIO_PREROLL_US;
  int64_t start = to_tb_rnd(want_us, AV_TIME_BASE_Q, tb, AV_ROUND_DOWN), begin = lead_begin(c);
  int64_t back_us = 0;
  int rc = 0;
  bool timed = false; /* a lead packet with a timestamp was seen */
  if (start == AV_NOPTS_VALUE) return cu_error(CU_EINVAL, "the start is out of range");
  for (int tries = 0; tries < CLIP_SEEK_TRIES; tries++) {
    int64_t back = to_tb(back_us, AV_TIME_BASE_Q, tb);
    int64_t target = back == AV_NOPTS_VALUE ? begin : start - back;
    bool from_begin = target <= begin;
    if (from_begin) target = begin;
    if ((rc = seek_lead(c, target))) return rc;
    bool have = false, after = false, ended = false;
    int64_t hp = 0, hd = 0, ap = 0, ad = 0, last_end = INT64_MIN;
    for (;;) {
      int err = av_read_frame(c->in.ic, c->pkt);
      mio_stopped(&c->in.io);
      if ((rc = mio_own_failure(&c->in.io, "finding the keyframe"))) return rc;
      if (err == AVERROR(EAGAIN)) continue;
      if (err < 0) {
        ended = true;
        break;
      }
      AVPacket *p = c->pkt;
      bool stop = false;
      sane_ts(p);
      if (p->stream_index == c->s[c->lead].index) {
        int64_t ts = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
        if (ts != AV_NOPTS_VALUE) timed = true;
        if (ts != AV_NOPTS_VALUE && ts + p->duration > last_end) last_end = ts + p->duration;
        if (ts != AV_NOPTS_VALUE && (p->flags & AV_PKT_FLAG_KEY)) {
          if (ts <= start) {
            have = true, hp = p->pts, hd = p->dts;
          } else {
            if (!have) after = true, ap = p->pts, ad = p->dts;
            stop = true;
          }
        }
        /* No later keyframe can be shown at or before start. */
        if (have && p->dts != AV_NOPTS_VALUE && p->dts > start) stop = true;
      }
      av_packet_unref(p);
      if (stop) break;
    }
    /* A file that declares no duration: start may be past its end. */
    if (have && ended && last_end <= start)
      return cu_error(CU_EINVAL, "start (%.3f s) is not inside the recording, which ends at %.3f s",
                      secs(c->start_us - c->rec_start_us),
                      secs(to_tb(last_end, tb, AV_TIME_BASE_Q) - c->rec_start_us));
    if (have || (from_begin && after)) {
      c->anchor_pts = have ? hp : ap;
      c->anchor_dts = have ? hd : ad;
      int64_t ts = c->anchor_pts != AV_NOPTS_VALUE ? c->anchor_pts : c->anchor_dts;
      c->anchor_us = to_tb(ts, tb, AV_TIME_BASE_Q);
      if (c->anchor_us == AV_NOPTS_VALUE) break;
      return 0;
    }
    if (from_begin) break;
    back_us = back_us ? back_us * 2 : CLIP_SEEK_BACK_US;
  }
  /* A raw elementary stream: ffmpeg's command line makes up times from a
   * guessed frame rate; evidence is not cut at made-up times. */
  if (!timed)
    return cu_error(CU_EUNSUPPORTED,
                    "its %s stream carries no timestamps, so no time range can be cut from it",
                    slot_kind(c->lead));
  return cu_error(CU_ECORRUPT, "its %s stream has no keyframe to start a clip from",
                  slot_kind(c->lead));
}

/* ---- the range ---- */

static void range_clear(range *r) {
  while (r->qlen) {
    av_packet_free(&r->q[r->qhead]);
    r->qhead = (r->qhead + 1) % CLIP_MAX_QUEUED;
    r->qlen--;
  }
  r->qhead = 0;
  for (size_t i = 0; i < r->nheld; i++)
    av_packet_free(&r->held[i]);
  r->nheld = 0;
  r->found = false;
  for (int k = 0; k < NSLOT; k++)
    r->done[k] = false;
}

static int range_seek(clip *c, range *r) {
  AVStream *st = ist(c, c->lead);
  int64_t a = c->anchor_pts;
  if (a == AV_NOPTS_VALUE || (c->anchor_dts != AV_NOPTS_VALUE && c->anchor_dts < a))
    a = c->anchor_dts;
  int64_t back = to_tb(r->back_us, AV_TIME_BASE_Q, st->time_base), begin = lead_begin(c);
  int64_t target = back == AV_NOPTS_VALUE ? begin : a - back;
  r->from_begin = target <= begin;
  if (r->from_begin && r->back_us) target = begin;
  return seek_lead(c, target);
}

/* Starts reading the range (again) from the anchor. */
static int range_begin(clip *c, range *r) {
  range_clear(r);
  r->back_us = 0;
  r->read_errors = 0;
  for (int k = 0; k < NSLOT; k++)
    if (c->s[k].index < 0) r->done[k] = true;
  return range_seek(c, r);
}

/* The seek landed past the anchor: again, further back. */
static int range_retry(clip *c, range *r) {
  if (r->from_begin)
    return cu_error(CU_ECORRUPT,
                    "the keyframe at %.3f s cannot be found again (the file reads "
                    "differently the second time)",
                    secs(c->anchor_us - c->rec_start_us));
  range_clear(r);
  for (int k = 0; k < NSLOT; k++)
    if (c->s[k].index < 0) r->done[k] = true;
  r->back_us = r->back_us ? r->back_us * 2 : CLIP_SEEK_BACK_US;
  return range_seek(c, r);
}

static int range_push(range *r, AVPacket *p) {
  if (r->qlen == CLIP_MAX_QUEUED)
    return cu_error(CU_ECORRUPT, "its streams are stored too far apart in the file to cut a clip");
  AVPacket *q = av_packet_alloc();
  if (!q) return cu_error(CU_EIO, "out of memory");
  av_packet_move_ref(q, p);
  r->q[(r->qhead + r->qlen++) % CLIP_MAX_QUEUED] = q;
  return 0;
}

static void range_drop_held(range *r) {
  for (size_t i = 0; i < r->nheld; i++)
    av_packet_free(&r->held[i]);
  r->nheld = 0;
}

static void range_end_all(range *r) {
  for (int k = 0; k < NSLOT; k++)
    r->done[k] = true;
  range_drop_held(r);
}

/* Absurd timestamps (a hostile file's) count as unknown. */
static void sane_ts(AVPacket *p) {
  if (p->pts < -CLIP_TS_MAX || p->pts > CLIP_TS_MAX) p->pts = AV_NOPTS_VALUE;
  if (p->dts < -CLIP_TS_MAX || p->dts > CLIP_TS_MAX) p->dts = AV_NOPTS_VALUE;
  if (p->duration < 0 || p->duration > CLIP_TS_MAX) p->duration = 0;
}

/* Decides about one packet of a clip stream: kept (queued), held, or not;
 * 1 when the seek landed past the anchor. */
static int range_take(clip *c, range *r, int slot, AVPacket *p) {
  cslot *s = &c->s[slot];
  int64_t ts = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
  int64_t dts = p->dts != AV_NOPTS_VALUE ? p->dts : p->pts;
  if (slot == c->lead && !r->found) {
    if ((p->flags & AV_PKT_FLAG_KEY) && p->pts == c->anchor_pts && p->dts == c->anchor_dts) {
      r->found = true;
    } else {
      int64_t a = c->anchor_dts != AV_NOPTS_VALUE ? c->anchor_dts : c->anchor_pts;
      return dts != AV_NOPTS_VALUE && dts > a ? 1 : 0;
    }
  }
  if (slot == SV) {
    if (c->mode == MEDIA_CLIP_EXACT) {
      if (dts != AV_NOPTS_VALUE && dts >= s->end) {
        r->done[SV] = true;
        return 0;
      }
      return range_push(r, p);
    }
    if (ts != AV_NOPTS_VALUE && ts >= s->end) {
      if ((dts != AV_NOPTS_VALUE && dts >= s->end) || r->nheld == CLIP_MAX_HELD) {
        r->done[SV] = true;
        range_drop_held(r);
        return 0;
      }
      if (!(r->held[r->nheld] = av_packet_alloc())) return cu_error(CU_EIO, "out of memory");
      av_packet_move_ref(r->held[r->nheld++], p);
      return 0;
    }
    for (size_t i = 0; i < r->nheld; i++) {
      int rc = range_push(r, r->held[i]);
      if (rc) return rc;
    }
    range_drop_held(r);
    return range_push(r, p);
  }
  if (ts != AV_NOPTS_VALUE && ts >= s->end) {
    r->done[SA] = true;
    return 0;
  }
  if (slot != c->lead) {
    if (ts == AV_NOPTS_VALUE         ? !r->found
        : c->mode == MEDIA_CLIP_COPY ? ts < s->from
                                     : ts + p->duration <= s->from)
      return 0;
  }
  return range_push(r, p);
}

/* The next packet of the range into out (the original's timestamps and
 * stream index): 1, or 0 at its end. */
static int range_next(clip *c, range *r, AVPacket *out) {
  for (;;) {
    if (r->found && r->qlen) {
      av_packet_move_ref(out, r->q[r->qhead]);
      av_packet_free(&r->q[r->qhead]);
      r->qhead = (r->qhead + 1) % CLIP_MAX_QUEUED;
      r->qlen--;
      return 1;
    }
    bool all = true;
    for (int k = 0; k < NSLOT; k++)
      all = all && r->done[k];
    if (all) {
      range_drop_held(r);
      return 0;
    }
    int err = av_read_frame(c->in.ic, c->pkt);
    mio_stopped(&c->in.io);
    int rc = mio_own_failure(&c->in.io, "reading the recording");
    if (rc) return rc;
    if (err == AVERROR(EAGAIN)) continue;
    if (err < 0) {
      if (!r->found) {
        if ((rc = range_retry(c, r))) return rc;
        continue;
      }
      /* As ffmpeg does: bad data that stops the demuxer ends the input. */
      if (err != AVERROR_EOF) r->read_errors++;
      range_end_all(r);
      continue;
    }
    AVPacket *p = c->pkt;
    sane_ts(p);
    int slot = slot_of(c, p->stream_index);
    if (r->found && p->stream_index >= 0 && (unsigned)p->stream_index < c->in.ic->nb_streams) {
      int64_t d = p->dts != AV_NOPTS_VALUE ? p->dts : p->pts;
      int64_t us = to_tb(d, c->in.ic->streams[p->stream_index]->time_base, AV_TIME_BASE_Q);
      if (us != AV_NOPTS_VALUE && us > c->end_us + CLIP_READ_PAST_US) range_end_all(r);
    }
    if (slot < 0 || r->done[slot]) {
      av_packet_unref(p);
      continue;
    }
    rc = range_take(c, r, slot, p);
    av_packet_unref(p);
    if (rc == 1) rc = range_retry(c, r);
    if (rc) return rc;
  }
}

/* ---- copy ---- */

/* ffmpeg's rule for a copied stream's codec tag: kept when the output
 * format knows it for this codec, or knows no tag for the codec at all. */
static uint32_t copy_tag(const AVOutputFormat *of, const AVCodecParameters *par) {
  unsigned int t;
  if (!of->codec_tag || av_codec_get_id(of->codec_tag, par->codec_tag) == par->codec_id ||
      !av_codec_get_tag2(of->codec_tag, par->codec_id, &t))
    return par->codec_tag;
  return 0;
}

static int copy_side_data(const AVStream *in, AVStream *out) {
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 29, 100)
  (void)in, (void)out; /* coded_side_data came with the parameters */
#else
  for (int i = 0; i < in->nb_side_data; i++) {
    const AVPacketSideData *sd = &in->side_data[i];
    uint8_t *d = av_stream_new_side_data(out, sd->type, sd->size);
    if (!d) return cu_error(CU_EIO, "out of memory");
    memcpy(d, sd->data, sd->size);
  }
#endif
  return 0;
}

static int muxer_refused(int err, const char *what) {
  if (err == AVERROR(ENOSPC) || err == AVERROR(EIO) || err == AVERROR(ENOMEM) ||
      err == AVERROR(EFBIG) || err == AVERROR_EXIT)
    return mio_av_error(err, what);
  char e[128];
  av_strerror(err, e, sizeof e);
  return cu_error(CU_EUNSUPPORTED,
                  "%s: the MP4 muxer refuses the original's packets as they are (%s); use "
                  "mode=exact, which re-encodes them",
                  what, e);
}

static int copy_open(clip *c, const char *out) {
  AVDictionary *mo = NULL;
  int rc = mio_out_open(&c->oc, out, "mp4"), err;
  if (rc) return rc;
  c->oc->flags |= AVFMT_FLAG_BITEXACT; /* the same request gives the same bytes */
  for (int k = 0; k < NSLOT; k++) {
    cslot *s = &c->s[k];
    if (s->index < 0) continue;
    AVStream *in = ist(c, k);
    if (!(s->ost = avformat_new_stream(c->oc, NULL))) return cu_error(CU_EIO, "out of memory");
    if ((err = avcodec_parameters_copy(s->ost->codecpar, in->codecpar)) < 0)
      return mio_av_error(err, "cannot describe the clip's stream");
    s->ost->codecpar->codec_tag = copy_tag(c->oc->oformat, in->codecpar);
    s->ost->time_base = in->time_base;
    s->ost->sample_aspect_ratio = in->sample_aspect_ratio;
    s->ost->avg_frame_rate = in->avg_frame_rate;
    AVDictionaryEntry *lang = av_dict_get(in->metadata, "language", NULL, 0);
    if (lang) av_dict_set(&s->ost->metadata, "language", lang->value, 0);
    if ((rc = copy_side_data(in, s->ost))) return rc;
    s->last_dts = AV_NOPTS_VALUE;
    s->first_us = INT64_MAX;
    s->end_us = 0;
  }
  av_dict_set(&mo, "movflags", "+faststart", 0);
  mio_capture_begin();
  err = avformat_write_header(c->oc, &mo);
  mio_capture_end();
  av_dict_free(&mo);
  if (err < 0) return muxer_refused(err, "cannot start the clip");
  return 0;
}

static int copy_write(clip *c, AVPacket *p) {
  int slot = slot_of(c, p->stream_index);
  cslot *s = &c->s[slot];
  AVRational in_tb = ist(c, slot)->time_base, out_tb = s->ost->time_base;
  if (p->pts != AV_NOPTS_VALUE) p->pts -= s->shift;
  if (p->dts != AV_NOPTS_VALUE) p->dts -= s->shift;
  av_packet_rescale_ts(p, in_tb, out_tb);
  /* The muxer needs decoding times that rise; ffmpeg moves them the same. */
  if (p->dts == AV_NOPTS_VALUE) {
    p->dts = p->pts != AV_NOPTS_VALUE        ? p->pts
             : s->last_dts != AV_NOPTS_VALUE ? s->last_dts + 1
                                             : 0;
    s->fixed++;
  }
  if (s->last_dts != AV_NOPTS_VALUE && p->dts <= s->last_dts) {
    p->dts = s->last_dts + 1;
    s->fixed++;
  }
  if (p->pts == AV_NOPTS_VALUE || p->pts < p->dts) p->pts = p->dts;
  s->last_dts = p->dts;
  int64_t us = to_tb(p->pts, out_tb, AV_TIME_BASE_Q);
  int64_t end = to_tb(p->pts + p->duration, out_tb, AV_TIME_BASE_Q);
  if (us != AV_NOPTS_VALUE && us < s->first_us) s->first_us = us;
  if (end != AV_NOPTS_VALUE && end > s->end_us) s->end_us = end;
  p->stream_index = s->ost->index;
  p->pos = -1;
  s->packets++;
  int err = av_interleaved_write_frame(c->oc, p); /* takes the packet */
  if (err < 0) {
    char what[64];
    snprintf(what, sizeof what, "stream %d (%s)", s->index,
             avcodec_get_name(ist(c, slot)->codecpar->codec_id));
    return muxer_refused(err, what);
  }
  return 0;
}

/* Start codes as libavformat finds them (ff_avc_find_startcode): a zero
 * before 00 00 01 belongs to the start code, not to the NAL before it. */
static const uint8_t *find_startcode(const uint8_t *p, const uint8_t *end) {
  const uint8_t *start = p;
  for (; p + 2 < end; p++)
    if (p[0] == 0 && p[1] == 0 && p[2] == 1) break;
  if (p + 2 >= end) return end;
  if (p > start && p[-1] == 0) p--;
  return p;
}

static void hash_nal(EVP_MD_CTX *m, const uint8_t *d, size_t n) {
  uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  EVP_DigestUpdate(m, len, 4);
  EVP_DigestUpdate(m, d, n);
}

/* The SHA-256 of a packet's payload in the given form: raw, or what its
 * packing holds (each NAL unit with a 4-byte length; an AAC frame without
 * its ADTS header). A packet that does not parse is hashed raw (and then
 * differs). */
static int payload_hash(const AVPacket *p, int form, int nal_size, unsigned char out[32]) {
  EVP_MD_CTX *m = mdec_sha256_new();
  if (!m) return cu_error(CU_EIO, "out of memory");
  const uint8_t *d = p->data, *end = p->data + p->size;
  bool raw = true;
  if (form == FORM_ANNEXB && p->size > 0) {
    const uint8_t *nal = find_startcode(d, end);
    for (;;) {
      while (nal < end && !*(nal++)) {
      }
      if (nal == end) break;
      const uint8_t *next = find_startcode(nal, end);
      hash_nal(m, nal, (size_t)(next - nal));
      nal = next;
    }
    raw = false;
  } else if (form == FORM_LENGTH && p->size > 0) {
    const uint8_t *q = d;
    bool ok = true;
    EVP_MD_CTX *t = mdec_sha256_new();
    if (!t) {
      EVP_MD_CTX_free(m);
      return cu_error(CU_EIO, "out of memory");
    }
    while (ok && q < end) {
      if (end - q < nal_size) {
        ok = false;
        break;
      }
      uint64_t len = 0;
      for (int i = 0; i < nal_size; i++)
        len = len << 8 | *q++;
      if (len > (uint64_t)(end - q))
        ok = false;
      else
        hash_nal(t, q, (size_t)len), q += len;
    }
    if (ok) {
      EVP_MD_CTX_free(m);
      m = t;
      raw = false;
    } else {
      EVP_MD_CTX_free(t);
    }
  } else if (form == FORM_ADTS && p->size >= 7 && d[0] == 0xff && (d[1] & 0xf6) == 0xf0) {
    int hdr = (d[1] & 1) ? 7 : 9;
    if (p->size >= hdr) {
      EVP_DigestUpdate(m, d + hdr, (size_t)(p->size - hdr));
      raw = false;
    }
  }
  if (raw && p->size > 0) EVP_DigestUpdate(m, d, (size_t)p->size);
  EVP_DigestFinal_ex(m, out, NULL);
  EVP_MD_CTX_free(m);
  return 0;
}

static bool starts_with_startcode(const AVPacket *p) {
  return p->size >= 4 && p->data[0] == 0 && p->data[1] == 0 &&
         (p->data[2] == 1 || (p->data[2] == 0 && p->data[3] == 1));
}

/* How the MP4 muxer will store the original's packets of this stream, seen
 * from its first packet: repacked (Annex B, ADTS) or as they are. */
static int original_form(const AVCodecParameters *par, const AVPacket *first) {
  if ((par->codec_id == AV_CODEC_ID_H264 || par->codec_id == AV_CODEC_ID_HEVC) &&
      (par->extradata_size == 0 || par->extradata[0] != 1) && starts_with_startcode(first))
    return FORM_ANNEXB;
  if (par->codec_id == AV_CODEC_ID_AAC && first->size >= 7 && first->data[0] == 0xff &&
      (first->data[1] & 0xf6) == 0xf0)
    return FORM_ADTS;
  return FORM_RAW;
}

/* NAL length size of length-prefixed H.264/HEVC (avcC, hvcC). */
static int nal_length_size(const AVCodecParameters *par) {
  const uint8_t *x = par->extradata;
  if (par->codec_id == AV_CODEC_ID_H264 && par->extradata_size >= 5 && x[0] == 1)
    return (x[4] & 3) + 1;
  if (par->codec_id == AV_CODEC_ID_HEVC && par->extradata_size >= 23 && x[0] == 1)
    return (x[21] & 3) + 1;
  return 4;
}

typedef struct {
  unsigned char h[32];
  bool key;
  int64_t pts_us;
} phash;

typedef struct {
  phash *q;
  size_t head, len, cap;
} pqueue;

static int pq_push(pqueue *q, const phash *e) {
  if (q->len == q->cap) {
    if (q->cap >= CLIP_CHECK_MAX_AHEAD)
      return cu_error(CU_ECORRUPT, "the clip's streams are stored too far apart to compare");
    size_t cap = q->cap ? q->cap * 2 : 64;
    phash *n = malloc(cap * sizeof *n);
    if (!n) return cu_error(CU_EIO, "out of memory");
    for (size_t i = 0; i < q->len; i++)
      n[i] = q->q[(q->head + i) % q->cap];
    free(q->q);
    q->q = n, q->cap = cap, q->head = 0;
  }
  q->q[(q->head + q->len++) % q->cap] = *e;
  return 0;
}

static phash pq_pop(pqueue *q) {
  phash e = q->q[q->head];
  q->head = (q->head + 1) % q->cap;
  q->len--;
  return e;
}

/* Reads the clip back and the original's range again: each stream's
 * packets must be the original's, in the same order. */
static int copy_check(clip *c, const char *out, json_t **result) {
  mio_in cin = {.io.fd = -1};
  pqueue pq[NSLOT] = {{0}};
  int slot_of_out[NSLOT] = {-1, -1}, form[NSLOT] = {FORM_RAW, FORM_RAW}, clip_nal[NSLOT] = {4, 4};
  bool form_known[NSLOT] = {false, false};
  int64_t checked = 0, n_orig[NSLOT] = {0, 0};
  AVPacket *op = av_packet_alloc(), *cp = av_packet_alloc();
  bool clip_eof = false;
  int rc = 0;
  *result = NULL;
  if (!op || !cp) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  media_ctl quiet = c->ctl ? *c->ctl : (media_ctl){0};
  quiet.progress = NULL;
  if ((rc = mio_open(&cin, out, &quiet, quiet.deadline_us))) {
    if (rc == CU_EUNSUPPORTED || rc == CU_ECORRUPT)
      rc = cu_error_wrap(CU_ECORRUPT, "the clip cannot be read back");
    goto done;
  }
  int nout = 0;
  for (int k = 0; k < NSLOT; k++)
    if (c->s[k].index >= 0) {
      /* Types, not codec ids: MP4 stores MP2 and MP3 under one object
       * type, which reads back as mp3. The payloads are compared below. */
      if (nout >= (int)cin.ic->nb_streams ||
          cin.ic->streams[nout]->codecpar->codec_type != ist(c, k)->codecpar->codec_type) {
        rc = cu_error(CU_ECORRUPT, "the clip read back does not have the streams written into it");
        goto done;
      }
      clip_nal[nout] = nal_length_size(cin.ic->streams[nout]->codecpar);
      slot_of_out[nout++] = k;
    }
  if ((int)cin.ic->nb_streams != nout) {
    rc = cu_error(CU_ECORRUPT, "the clip read back does not have the streams written into it");
    goto done;
  }
  int out_of_slot[NSLOT] = {-1, -1};
  for (int j = 0; j < nout; j++)
    out_of_slot[slot_of_out[j]] = j;

  if ((rc = range_begin(c, &c->r))) goto done;
  for (;;) {
    rc = range_next(c, &c->r, op);
    if (rc <= 0) break;
    int k = slot_of(c, op->stream_index), j = out_of_slot[k];
    AVStream *st = ist(c, k);
    progress_at(c, k, op->dts != AV_NOPTS_VALUE ? op->dts : op->pts);
    if (!form_known[k]) {
      form[k] = original_form(st->codecpar, op);
      form_known[k] = true;
      if (form[k] != FORM_RAW) {
        char key[16];
        snprintf(key, sizeof key, "%d", c->s[k].index);
        jset(c->normalised, key,
             json_string(form[k] == FORM_ANNEXB ? "annex_b_to_length_prefixed"
                                                : "adts_header_removed"));
      }
    }
    phash want;
    if ((rc = payload_hash(op, form[k], 4, want.h))) break;
    want.key = op->flags & AV_PKT_FLAG_KEY;
    av_packet_unref(op);
    while (!pq[j].len) {
      if (clip_eof) {
        rc = cu_error(CU_ECORRUPT,
                      "the clip differs from the original: its stream %d (%s) ends after %" PRId64
                      " packets, the original's range has more",
                      j, slot_kind(k), n_orig[k]);
        goto done;
      }
      int err = av_read_frame(cin.ic, cp);
      mio_stopped(&cin.io);
      if ((rc = mio_own_failure(&cin.io, "checking the clip"))) goto done;
      if (err == AVERROR(EAGAIN)) continue;
      if (err < 0) {
        if (err != AVERROR_EOF) {
          rc = cu_error(CU_ECORRUPT, "the clip cannot be read back to its end");
          goto done;
        }
        clip_eof = true;
        continue;
      }
      int cj = cp->stream_index;
      if (cj < 0 || cj >= nout) {
        av_packet_unref(cp);
        continue;
      }
      int ck = slot_of_out[cj];
      phash e;
      rc = payload_hash(cp, form[ck] == FORM_ANNEXB ? FORM_LENGTH : FORM_RAW, clip_nal[cj], e.h);
      e.key = cp->flags & AV_PKT_FLAG_KEY;
      e.pts_us = to_tb(cp->pts, cin.ic->streams[cj]->time_base, AV_TIME_BASE_Q);
      av_packet_unref(cp);
      if (rc || (rc = pq_push(&pq[cj], &e))) goto done;
    }
    phash got = pq_pop(&pq[j]);
    bool key_differs = k == SV && got.key != want.key;
    if (memcmp(got.h, want.h, 32) != 0 || key_differs) {
      rc = cu_error(CU_ECORRUPT,
                    "the clip differs from the original: stream %d (%s, the original's stream %d), "
                    "packet %" PRId64 " (at %.3f s in the clip): %s",
                    j, slot_kind(k), c->s[k].index, n_orig[k],
                    got.pts_us == AV_NOPTS_VALUE ? 0.0 : secs(got.pts_us),
                    key_differs ? "its keyframe flag is not the original's"
                                : "its bytes are not the original's");
      goto done;
    }
    n_orig[k]++;
    checked++;
  }
  if (rc < 0) goto done;
  /* Nothing may be left over in the clip. */
  for (int j = 0; j < nout; j++)
    if (pq[j].len) {
      rc = cu_error(CU_ECORRUPT,
                    "the clip differs from the original: its stream %d (%s) has more packets than "
                    "the original's range (%" PRId64 ")",
                    j, slot_kind(slot_of_out[j]), n_orig[slot_of_out[j]]);
      goto done;
    }
  while (!clip_eof) {
    int err = av_read_frame(cin.ic, cp);
    mio_stopped(&cin.io);
    if ((rc = mio_own_failure(&cin.io, "checking the clip"))) goto done;
    if (err == AVERROR(EAGAIN)) continue;
    if (err < 0) break;
    int cj = cp->stream_index;
    av_packet_unref(cp);
    if (cj >= 0 && cj < nout) {
      rc = cu_error(CU_ECORRUPT,
                    "the clip differs from the original: its stream %d (%s) has more packets than "
                    "the original's range (%" PRId64 ")",
                    cj, slot_kind(slot_of_out[cj]), n_orig[slot_of_out[cj]]);
      goto done;
    }
  }
  for (int k = 0; k < NSLOT; k++)
    if (c->s[k].index >= 0 && n_orig[k] != c->s[k].packets) {
      rc = cu_error(CU_ECORRUPT,
                    "the original's range read again has %" PRId64 " %s packets, %" PRId64
                    " were written",
                    n_orig[k], slot_kind(k), c->s[k].packets);
      goto done;
    }
  json_t *r = json_object();
  if (!r) oom();
  jset(r, "method", json_string("packets"));
  jset(r, "packets_checked", json_integer(checked));
  jset(r, "identical", json_true());
  if (json_object_size(c->normalised)) jset(r, "normalised", json_incref(c->normalised));
  *result = r;
done:
  for (int j = 0; j < NSLOT; j++)
    free(pq[j].q);
  av_packet_free(&op);
  av_packet_free(&cp);
  mio_close(&cin);
  return rc;
}

/* ---- exact ---- */

static bool usable_tb(AVRational tb) {
  return tb.num == 1 && tb.den >= CLIP_TB_MIN_DEN && tb.den <= CLIP_TB_MAX_DEN;
}

static int add_stream(clip *c, cslot *s) { return mio_add_stream(c->oc, s->enc, &s->ost); }

static int open_video_encoder(clip *c) {
  cslot *s = &c->s[SV];
  AVStream *in = ist(c, SV);
  AVCodecContext *dec = s->dec, *enc;
  AVDictionary *o = NULL;
  int w, h, err;
  const AVCodec *x264 = avcodec_find_encoder_by_name("libx264");
  if (!x264) return cu_error(CU_EIO, "this libavcodec has no libx264 encoder");
  if (!(enc = s->enc = avcodec_alloc_context3(x264))) return cu_error(CU_EIO, "out of memory");
  /* The same size; 4:2:0 needs even sides, so an odd one loses a pixel. */
  mio_fit(dec->width, dec->height, INT_MAX, &w, &h);
  enc->width = w;
  enc->height = h;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = usable_tb(in->time_base) ? in->time_base : (AVRational){1, CLIP_FALLBACK_TB_DEN};
  AVRational fr = av_guess_frame_rate(c->in.ic, in, NULL);
  if (fr.num <= 0 || fr.den <= 0 || av_q2d(fr) > 1000 || av_q2d(fr) < 0.01)
    fr = (AVRational){CLIP_GUESS_FPS, 1};
  enc->framerate = fr; /* rate control's idea; timestamps come from frames */
  double gop = av_q2d(fr) * CLIP_GOP_S;
  enc->gop_size = gop < 1 ? 1 : gop > 600 ? 600 : (int)(gop + 0.5);
  c->default_vdur = av_rescale_q(1, av_inv_q(fr), enc->time_base);
  if (c->default_vdur < 1) c->default_vdur = 1;
  AVRational sar = av_guess_sample_aspect_ratio(c->in.ic, in, NULL);
  if (sar.num > 0 && sar.den > 0)
    enc->sample_aspect_ratio =
        av_mul_q(av_mul_q(sar, (AVRational){dec->width, w}), (AVRational){h, dec->height});
  const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(dec->pix_fmt);
  bool rgb = desc && (desc->flags & AV_PIX_FMT_FLAG_RGB);
  enc->color_range = AVCOL_RANGE_MPEG;
  enc->colorspace = rgb ? AVCOL_SPC_SMPTE170M : dec->colorspace;
  enc->color_primaries = dec->color_primaries;
  enc->color_trc = dec->color_trc;
  enc->thread_count = c->threads;
  if (c->oc->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  av_dict_set(&o, "crf", CLIP_CRF_S, 0);
  av_dict_set(&o, "preset", CLIP_PRESET, 0);
  av_dict_set(&o, "profile", "high", 0);
  err = avcodec_open2(enc, x264, &o);
  av_dict_free(&o);
  if (err < 0) return mio_av_error(err, "cannot open libx264");
  int rc = add_stream(c, s);
  if (!rc) rc = mio_copy_display_matrix(in, s->ost);
  if (rc) return rc;
  if (!(c->scaled = av_frame_alloc())) return cu_error(CU_EIO, "out of memory");
  c->scaled->format = enc->pix_fmt;
  c->scaled->width = w;
  c->scaled->height = h;
  if ((err = av_frame_get_buffer(c->scaled, 0)) < 0)
    return mio_av_error(err, "cannot allocate a frame");
  c->last_vpts = AV_NOPTS_VALUE;
  return 0;
}

static int open_audio_encoder(clip *c) {
  cslot *s = &c->s[SA];
  int rc = mio_open_aac(s->dec, CLIP_AUDIO_BITRATE, CLIP_FALLBACK_RATE, c->oc, &s->enc);
  if (!rc) rc = add_stream(c, s);
  if (rc) return rc;
  const AVCodecContext *enc = s->enc;
  if (!(c->fifo = av_audio_fifo_alloc(enc->sample_fmt, enc->ch_layout.nb_channels,
                                      2 * enc->frame_size)) ||
      !(c->conv = av_frame_alloc()) || !(c->aframe = av_frame_alloc()))
    return cu_error(CU_EIO, "out of memory");
  c->next_apts = AV_NOPTS_VALUE;
  return 0;
}

/* Writes what an encoder has ready. */
static int drain(clip *c, int slot) {
  cslot *s = &c->s[slot];
  for (;;) {
    int err = avcodec_receive_packet(s->enc, c->pkt);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return 0;
    if (err < 0) return mio_av_error(err, slot == SV ? "libx264 failed" : "the aac encoder failed");
    if (slot == SV && c->pkt->duration <= 0 && c->pkt->pts != AV_NOPTS_VALUE)
      c->pkt->duration = mio_dur_find(&c->durs, c->pkt->pts, c->default_vdur);
    int64_t us = to_tb(c->pkt->pts, s->enc->time_base, AV_TIME_BASE_Q);
    int64_t end = to_tb(c->pkt->pts + c->pkt->duration, s->enc->time_base, AV_TIME_BASE_Q);
    if (us != AV_NOPTS_VALUE && us < s->first_us) s->first_us = us;
    if (end != AV_NOPTS_VALUE && end > s->end_us) s->end_us = end;
    av_packet_rescale_ts(c->pkt, s->enc->time_base, s->ost->time_base);
    c->pkt->stream_index = s->ost->index;
    s->packets++;
    err = av_interleaved_write_frame(c->oc, c->pkt); /* takes the packet */
    if (err < 0) return mio_av_error(err, "cannot write the clip");
  }
}

static int encode(clip *c, int slot, const AVFrame *f) {
  int err = avcodec_send_frame(c->s[slot].enc, f);
  if (err < 0 && !(err == AVERROR_EOF && !f))
    return mio_av_error(err, slot == SV ? "libx264 failed" : "the aac encoder failed");
  return drain(c, slot);
}

/* Encodes whole AAC frames from the fifo; with last, the rest too. */
static int encode_fifo(clip *c, bool last) {
  int rc;
  while ((rc = mio_fifo_frame(c->fifo, c->s[SA].enc, last, c->aframe, &c->next_apts)) == 1)
    if ((rc = encode(c, SA, c->aframe))) return rc;
  return rc;
}

/* Converts count samples of in from sample skip on (in NULL: what swr
 * still holds) into the fifo. */
static int resample(clip *c, const AVFrame *in, int skip, int count) {
  AVCodecContext *enc = c->s[SA].enc;
  const uint8_t **src = NULL;
  int rc = 0, err;
  if (!c->swr) return 0;
  int out_n = swr_get_out_samples(c->swr, in ? count : 0);
  if (out_n <= 0) return 0;
  if (in) {
    int ch = in->ch_layout.nb_channels, bps = av_get_bytes_per_sample(in->format);
    bool planar = av_sample_fmt_is_planar(in->format);
    int planes = planar ? ch : 1;
    if (!(src = av_malloc_array((size_t)planes, sizeof *src)))
      return cu_error(CU_EIO, "out of memory");
    for (int i = 0; i < planes; i++)
      src[i] = in->extended_data[i] + (size_t)skip * (size_t)bps * (size_t)(planar ? 1 : ch);
  }
  av_frame_unref(c->conv);
  c->conv->format = enc->sample_fmt;
  c->conv->sample_rate = enc->sample_rate;
  c->conv->nb_samples = out_n;
  if ((err = av_channel_layout_copy(&c->conv->ch_layout, &enc->ch_layout)) < 0 ||
      (err = av_frame_get_buffer(c->conv, 0)) < 0) {
    rc = mio_av_error(err, "cannot allocate a frame");
    goto done;
  }
  int n = swr_convert(c->swr, c->conv->extended_data, out_n, src, in ? count : 0);
  if (n < 0) {
    c->decode_errors++;
    goto done;
  }
  if (n > 0 && av_audio_fifo_write(c->fifo, (void **)c->conv->extended_data, n) < n) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  rc = encode_fifo(c, false);
done:
  av_free(src);
  return rc;
}

/* The converter for f's format, layout and rate (made again when they
 * change mid-stream, after emptying the old one). 1: f cannot be
 * converted (counted, skipped). */
static int converter(clip *c, const AVFrame *f) {
  AVCodecContext *enc = c->s[SA].enc;
  AVChannelLayout in_layout = {0};
  int rc = 0;
  if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
    av_channel_layout_default(&in_layout, f->ch_layout.nb_channels);
  else if (av_channel_layout_copy(&in_layout, &f->ch_layout) < 0)
    return cu_error(CU_EIO, "out of memory");
  if (c->swr && f->sample_rate == c->swr_rate && f->format == c->swr_fmt &&
      !av_channel_layout_compare(&in_layout, &c->swr_layout))
    goto done;
  if ((rc = resample(c, NULL, 0, 0))) goto done;
  swr_free(&c->swr);
  av_channel_layout_uninit(&c->swr_layout);
  if (swr_alloc_set_opts2(&c->swr, &enc->ch_layout, enc->sample_fmt, enc->sample_rate, &in_layout,
                          f->format, f->sample_rate, 0, NULL) < 0 ||
      swr_init(c->swr) < 0) {
    swr_free(&c->swr);
    c->decode_errors++;
    rc = 1;
    goto done;
  }
  if (av_channel_layout_copy(&c->swr_layout, &in_layout) < 0) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  c->swr_rate = f->sample_rate;
  c->swr_fmt = f->format;
done:
  av_channel_layout_uninit(&in_layout);
  return rc;
}

/* One decoded audio frame, once the clip's 0 is known: the samples in
 * [t0, end), counted from the first frame's timestamp. */
static int audio_cut(clip *c, const AVFrame *f) {
  AVStream *in = ist(c, SA);
  int rate = f->sample_rate, n = f->nb_samples;
  if (rate != c->in_sample_rate) { /* the count starts again at a new rate */
    c->in_sample_rate = rate;
    c->next_in_sample = AV_NOPTS_VALUE;
  }
  AVRational sr = {1, rate};
  int64_t s_pts = to_tb(f->best_effort_timestamp, in->time_base, sr), s0;
  if (c->next_in_sample != AV_NOPTS_VALUE &&
      (s_pts == AV_NOPTS_VALUE || llabs(s_pts - c->next_in_sample) <= rate / CLIP_JITTER_DIV))
    s0 = c->next_in_sample;
  else if (s_pts != AV_NOPTS_VALUE)
    s0 = s_pts;
  else
    return 0; /* no time for it: it cannot be placed */
  c->next_in_sample = s0 + n;
  int64_t o = to_tb(c->t0_us, AV_TIME_BASE_Q, sr), e = to_tb(c->end_us, AV_TIME_BASE_Q, sr);
  int64_t from = s0 > o ? s0 : o, to = s0 + n < e ? s0 + n : e;
  if (to <= from) return 0;
  int rc = converter(c, f);
  if (rc) return rc > 0 ? 0 : rc;
  if (c->next_apts == AV_NOPTS_VALUE)
    c->next_apts = av_rescale_q(from - o, sr, c->s[SA].enc->time_base);
  return resample(c, f, (int)(from - s0), (int)(to - from));
}

static int flush_pending(clip *c) {
  int rc = 0;
  for (int i = 0; i < c->npending; i++) {
    if (!rc) rc = audio_cut(c, c->pending[i]);
    av_frame_free(&c->pending[i]);
  }
  c->npending = 0;
  return rc;
}

/* The clip's 0 when no video frame fixed it: start itself. */
static int t0_fallback(clip *c) {
  if (c->t0_known) return 0;
  c->t0_known = true;
  c->t0_us = c->start_us;
  if (c->s[SV].index >= 0)
    c->t0 = to_tb_rnd(c->start_us, AV_TIME_BASE_Q, ist(c, SV)->time_base, AV_ROUND_UP);
  return flush_pending(c);
}

static int audio_frame(clip *c, AVFrame *f) {
  if (f->nb_samples <= 0 || f->sample_rate <= 0 || f->ch_layout.nb_channels <= 0 || f->format < 0 ||
      av_get_bytes_per_sample(f->format) <= 0) {
    c->decode_errors++;
    return 0;
  }
  if (c->t0_known) return audio_cut(c, f);
  if (c->npending == CLIP_MAX_PENDING_AUDIO) {
    int rc = t0_fallback(c);
    return rc ? rc : audio_cut(c, f);
  }
  if (!(c->pending[c->npending] = av_frame_clone(f))) return cu_error(CU_EIO, "out of memory");
  c->npending++;
  return 0;
}

static int video_frame(clip *c, AVFrame *f) {
  cslot *s = &c->s[SV];
  AVRational in_tb = ist(c, SV)->time_base, etb = s->enc->time_base;
  int64_t ts = f->best_effort_timestamp;
  if (ts == AV_NOPTS_VALUE || ts < -CLIP_TS_MAX || ts > CLIP_TS_MAX) {
    c->decode_errors++; /* a frame that cannot be placed in time */
    return 0;
  }
  if (av_compare_ts(ts, in_tb, c->start_us, AV_TIME_BASE_Q) < 0 ||
      av_compare_ts(ts, in_tb, c->end_us, AV_TIME_BASE_Q) >= 0)
    return 0;
  if (!c->t0_known) {
    c->t0_known = true;
    c->t0 = ts;
    c->t0_us = to_tb(ts, in_tb, AV_TIME_BASE_Q);
    int rc = flush_pending(c);
    if (rc) return rc;
  }
  if (ts < c->t0) return 0; /* before the fallback's 0 */
  int rc = mio_scale(&c->scaler, f, c->scaled);
  if (rc) {
    if (rc > 0) c->decode_errors++;
    return rc < 0 ? rc : 0;
  }
  int64_t pts = av_rescale_q(ts - c->t0, in_tb, etb);
#ifdef FF_API_PKT_DURATION
  int64_t dur = to_tb(f->duration, in_tb, etb);
#else
  int64_t dur = to_tb(f->pkt_duration, in_tb, etb);
#endif
  /* Timestamps must rise; a repeated one (damage) moves just past the last. */
  if (pts < 0) pts = 0;
  if (c->last_vpts != AV_NOPTS_VALUE && pts <= c->last_vpts) pts = c->last_vpts + 1;
  if (dur == AV_NOPTS_VALUE || dur <= 0) dur = c->default_vdur;
  int64_t vend = to_tb(c->end_us - c->t0_us, AV_TIME_BASE_Q, etb);
  if (vend != AV_NOPTS_VALUE && pts + dur > vend && vend > pts) dur = vend - pts; /* ends at end */
  mio_dur_push(&c->durs, pts, dur, false);
  c->last_vpts = pts;
  c->scaled->pts = pts;
  c->scaled->pict_type = AV_PICTURE_TYPE_NONE;
  c->scaled->sample_aspect_ratio = s->enc->sample_aspect_ratio;
  return encode(c, SV, c->scaled);
}

/* Takes every frame the decoder has ready. */
static int take_frames(clip *c, int slot) {
  for (;;) {
    int err = avcodec_receive_frame(c->s[slot].dec, c->frame);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return 0;
    if (err < 0) {
      if (err == AVERROR(ENOMEM)) return cu_error(CU_EIO, "out of memory while decoding");
      c->decode_errors++;
      return 0;
    }
    if (c->frame->decode_error_flags || (c->frame->flags & AV_FRAME_FLAG_CORRUPT))
      c->decode_errors++;
    int rc = slot == SV ? video_frame(c, c->frame) : audio_frame(c, c->frame);
    av_frame_unref(c->frame);
    if (rc) return rc;
  }
}

/* Sends pkt (NULL: the end) to the slot's decoder and handles the frames. */
static int decode(clip *c, int slot, const AVPacket *pkt) {
  for (;;) {
    int err = avcodec_send_packet(c->s[slot].dec, pkt);
    if (err == AVERROR(EAGAIN)) { /* output full: take frames, send again */
      int rc = take_frames(c, slot);
      if (rc) return rc;
      continue;
    }
    if (err < 0 && err != AVERROR_EOF) {
      if (err == AVERROR(ENOMEM)) return cu_error(CU_EIO, "out of memory while decoding");
      c->decode_errors++;
    }
    return take_frames(c, slot);
  }
}

static int exact_open(clip *c, const char *out) {
  AVDictionary *mo = NULL;
  int rc, err;
  for (int k = 0; k < NSLOT; k++) {
    if (c->s[k].index < 0) continue;
    if ((rc = mio_decoder(&c->s[k].dec, ist(c, k), c->threads))) return rc;
    if (k == SV && (c->s[k].dec->width <= 0 || c->s[k].dec->height <= 0))
      return cu_error(CU_EUNSUPPORTED, "the size of its video picture is unknown");
    if (k == SA && (c->s[k].dec->sample_rate <= 0 || c->s[k].dec->ch_layout.nb_channels <= 0))
      return cu_error(CU_EUNSUPPORTED, "the sample rate or channels of its audio are unknown");
  }
  if ((rc = mio_out_open(&c->oc, out, c->s[SV].index >= 0 ? "mp4" : "ipod"))) return rc;
  c->oc->flags |= AVFMT_FLAG_BITEXACT;
  if (c->s[SV].index >= 0 && (rc = open_video_encoder(c))) return rc;
  if (c->s[SA].index >= 0 && (rc = open_audio_encoder(c))) return rc;
  for (int k = 0; k < NSLOT; k++)
    c->s[k].first_us = INT64_MAX;
  av_dict_set(&mo, "movflags", "+faststart", 0);
  err = avformat_write_header(c->oc, &mo);
  av_dict_free(&mo);
  if (err < 0) return mio_av_error(err, "cannot start the clip");
  if (!(c->frame = av_frame_alloc())) return cu_error(CU_EIO, "out of memory");
  return 0;
}

static int exact_run(clip *c) {
  int rc;
  c->next_in_sample = AV_NOPTS_VALUE;
  if (c->s[SV].index < 0) { /* audio alone: its 0 is start itself */
    c->t0_known = true;
    c->t0_us = c->start_us;
  }
  if ((rc = range_begin(c, &c->r))) return rc;
  while ((rc = range_next(c, &c->r, c->pkt)) == 1) {
    int k = slot_of(c, c->pkt->stream_index);
    progress_at(c, k, c->pkt->pts != AV_NOPTS_VALUE ? c->pkt->pts : c->pkt->dts);
    rc = decode(c, k, c->pkt);
    av_packet_unref(c->pkt);
    if (rc) return rc;
  }
  if (rc) return rc;
  if (c->s[SV].index >= 0 && (rc = decode(c, SV, NULL))) return rc;
  if ((rc = t0_fallback(c))) return rc;
  if (c->s[SV].index >= 0 && (rc = encode(c, SV, NULL))) return rc;
  if (c->s[SA].index >= 0) {
    if ((rc = decode(c, SA, NULL)) || (rc = resample(c, NULL, 0, 0)) ||
        (rc = encode_fifo(c, true)) || (rc = encode(c, SA, NULL)))
      return rc;
  }
  return 0;
}

/* ---- the whole ---- */

static json_t *stream_json(const clip *c, int k, const char *codec) {
  const cslot *s = &c->s[k];
  json_t *o = json_object();
  if (!o) oom();
  jset(o, "index_in_original", json_integer(s->index));
  jset(o, "type", json_string(slot_kind(k)));
  jset(o, "codec", json_string(codec));
  if (c->mode == MEDIA_CLIP_EXACT)
    jset(o, "source_codec", json_string(avcodec_get_name(ist(c, k)->codecpar->codec_id)));
  jset(o, "packets", json_integer(s->packets));
  /* An encoder's priming (AAC) starts before 0 and is cut by the edit list. */
  jset(o, "start_s", json_real(s->packets && s->first_us > 0 ? secs(s->first_us) : 0.0));
  jset(o, "end_s", json_real(secs(s->end_us)));
  if (s->fixed) jset(o, "timestamps_fixed", json_integer(s->fixed));
  return o;
}

static json_t *make_report(const clip *c, const media_clip_opts *o, json_t *check) {
  json_t *r = json_object(), *p = json_object(), *streams = json_array(), *left = json_array();
  if (!r || !p || !streams || !left) oom();
  bool copy = c->mode == MEDIA_CLIP_COPY;
  jset(r, "mode", json_string(copy ? "copy" : "exact"));
  jset(r, "requested_start_s", json_real(secs(o->start_us)));
  jset(r, "requested_end_s", json_real(secs(o->end_us)));
  jset(r, "end_clamped", json_boolean(c->end_clamped));
  if (c->rec_dur_us >= 0) jset(r, "recording_duration_s", json_real(secs(c->rec_dur_us)));
  int64_t origin = copy ? c->anchor_us : c->t0_us, dur = 0;
  for (int k = 0; k < NSLOT; k++)
    if (c->s[k].index >= 0 && c->s[k].end_us > dur) dur = c->s[k].end_us;
  jset(r, "actual_start_s", json_real(secs(origin - c->rec_start_us)));
  jset(r, "actual_end_s", json_real(secs(origin - c->rec_start_us + dur)));
  jset(r, "duration_s", json_real(secs(dur)));
  for (int k = 0; k < NSLOT; k++) {
    if (c->s[k].index < 0) continue;
    const char *codec = copy      ? avcodec_get_name(ist(c, k)->codecpar->codec_id)
                        : k == SV ? "h264"
                                  : "aac";
    jappend(streams, stream_json(c, k, codec));
  }
  jset(r, "streams", streams);
  for (unsigned i = 0; i < c->in.ic->nb_streams && json_array_size(left) < 32; i++) {
    if (slot_of(c, (int)i) >= 0) continue;
    const AVStream *st = c->in.ic->streams[i];
    json_t *x = json_object();
    if (!x) oom();
    const char *type = av_get_media_type_string(st->codecpar->codec_type);
    jset(x, "index_in_original", json_integer(i));
    jset(x, "type", json_string(type ? type : "unknown"));
    jset(x, "codec", json_string(avcodec_get_name(st->codecpar->codec_id)));
    jappend(left, x);
  }
  if (json_array_size(left))
    jset(r, "left_out", left);
  else
    json_decref(left);
  jset(r, "check", check);
  jset(p, "container", json_string(copy || c->s[SV].index >= 0 ? "mp4" : "ipod"));
  jset(p, "faststart", json_true());
  if (copy) {
    jset(p, "seek", json_string("keyframe_at_or_before_start"));
  } else {
    if (c->s[SV].enc) {
      jset(p, "video", json_string("libx264"));
      jset(p, "crf", json_integer(CLIP_CRF));
      jset(p, "preset", json_string(CLIP_PRESET));
      jset(p, "pix_fmt", json_string("yuv420p"));
      jset(p, "width", json_integer(c->s[SV].enc->width));
      jset(p, "height", json_integer(c->s[SV].enc->height));
    }
    if (c->s[SA].enc) {
      jset(p, "audio", json_string("aac"));
      jset(p, "audio_profile", json_string("LC"));
      jset(p, "audio_bitrate", json_integer(CLIP_AUDIO_BITRATE));
      jset(p, "audio_sample_rate", json_integer(c->s[SA].enc->sample_rate));
      jset(p, "audio_channels", json_integer(c->s[SA].enc->ch_layout.nb_channels));
    }
    jset(r, "decode_errors", json_integer(c->decode_errors));
  }
  jset(r, "params", p);
  jset(r, "video_frames", json_integer(c->s[SV].index >= 0 ? c->s[SV].packets : 0));
  jset(r, "audio_frames", json_integer(c->s[SA].index >= 0 ? c->s[SA].packets : 0));
  return r;
}

/* The recording's duration (from its start_time), or -1. */
static int64_t recording_duration(const clip *c) {
  const AVFormatContext *ic = c->in.ic;
  if (ic->duration > 0 && ic->duration < CLIP_TS_MAX) return ic->duration;
  int64_t best = -1;
  for (int k = 0; k < NSLOT; k++) {
    if (c->s[k].index < 0) continue;
    const AVStream *st = ist(c, k);
    if (st->duration <= 0) continue;
    int64_t s0 = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    int64_t e =
        to_tb(s0 + (st->duration < CLIP_TS_MAX ? st->duration : 0), st->time_base, AV_TIME_BASE_Q);
    if (e != AV_NOPTS_VALUE && e - c->rec_start_us > best) best = e - c->rec_start_us;
  }
  return best;
}

static int check_codecs(const clip *c) {
  const AVOutputFormat *mp4 = av_guess_format("mp4", NULL, NULL);
  if (!mp4) return cu_error(CU_EIO, "no mp4 muxer in this libavformat");
  for (int k = 0; k < NSLOT; k++) {
    if (c->s[k].index < 0) continue;
    enum AVCodecID id = ist(c, k)->codecpar->codec_id;
    if (avformat_query_codec(mp4, id, FF_COMPLIANCE_NORMAL) != 1)
      return cu_error(CU_EUNSUPPORTED,
                      "mode=copy cannot put its %s (%s, stream %d) into an MP4; use mode=exact, "
                      "which re-encodes the clip as H.264 and AAC",
                      slot_kind(k), avcodec_get_name(id), c->s[k].index);
  }
  return 0;
}

static void clip_free(clip *c) {
  mio_out_close(&c->oc, true);
  range_clear(&c->r);
  mio_close(&c->in);
  for (int k = 0; k < NSLOT; k++) {
    avcodec_free_context(&c->s[k].dec);
    avcodec_free_context(&c->s[k].enc);
  }
  av_packet_free(&c->pkt);
  av_frame_free(&c->frame);
  av_frame_free(&c->scaled);
  av_frame_free(&c->conv);
  av_frame_free(&c->aframe);
  for (int i = 0; i < c->npending; i++)
    av_frame_free(&c->pending[i]);
  mio_scaler_free(&c->scaler);
  swr_free(&c->swr);
  av_channel_layout_uninit(&c->swr_layout);
  if (c->fifo) av_audio_fifo_free(c->fifo);
  json_decref(c->normalised);
  free(c);
}

int media_clip(const char *in, const char *out, const media_clip_opts *o, const media_ctl *ctl,
               json_t **report) {
  clip *c = NULL;
  json_t *check = NULL;
  int rc = 0;
  if (report) *report = NULL;
  if (!in || !out || !o || !report)
    return cu_error(CU_EINVAL, "media_clip needs an input, an output, options and a report");
  if (o->mode != MEDIA_CLIP_COPY && o->mode != MEDIA_CLIP_EXACT)
    return cu_error(CU_EINVAL, "the clip mode must be copy or exact");
  if (o->threads < 0) return cu_error(CU_EINVAL, "threads must not be negative");
  if (o->start_us < 0)
    return cu_error(CU_EINVAL, "start (%.3f s) must not be negative", secs(o->start_us));
  if (o->start_us > CLIP_MAX_TIME_US || o->end_us > CLIP_MAX_TIME_US)
    return cu_error(CU_EINVAL, "start and end must be within %lld s",
                    (long long)(CLIP_MAX_TIME_US / 1000000));
  if (o->end_us <= o->start_us)
    return cu_error(CU_EINVAL, "end (%.3f s) must be after start (%.3f s)", secs(o->end_us),
                    secs(o->start_us));

  /* On the heap: the queues make it large for a worker's stack. */
  if (!(c = calloc(1, sizeof *c))) return cu_error(CU_EIO, "out of memory");
  c->path = in;
  c->in.io.fd = -1;
  c->mode = o->mode;
  c->threads = o->threads;
  c->ctl = ctl;
  c->s[SV].index = c->s[SA].index = -1;
  c->prog_span = c->mode == MEDIA_CLIP_COPY ? 0.5 : 1.0;
  if (!(c->pkt = av_packet_alloc()) || !(c->normalised = json_object())) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  if ((rc = mio_open(&c->in, in, ctl, ctl ? ctl->deadline_us : 0))) goto done;
  if (mio_still_image(&c->in, in)) {
    rc = cu_error(CU_EUNSUPPORTED, "a still image has no time to cut a clip from");
    goto done;
  }
  bool need_dec = c->mode == MEDIA_CLIP_EXACT;
  c->s[SV].index = first_stream(c->in.ic, AVMEDIA_TYPE_VIDEO, need_dec);
  c->s[SA].index = first_stream(c->in.ic, AVMEDIA_TYPE_AUDIO, need_dec);
  if (c->s[SV].index < 0 && c->s[SA].index < 0) {
    rc = cu_error(CU_EUNSUPPORTED,
                  need_dec ? "it has no video or audio stream that libavcodec can decode"
                           : "it has no video or audio stream to cut a clip from");
    goto done;
  }
  c->lead = c->s[SV].index >= 0 ? SV : SA;
  discard_others(c);
  if (c->mode == MEDIA_CLIP_COPY && (rc = check_codecs(c))) goto done;

  c->rec_start_us = c->in.ic->start_time != AV_NOPTS_VALUE && c->in.ic->start_time > -CLIP_TS_MAX &&
                            c->in.ic->start_time < CLIP_TS_MAX
                        ? c->in.ic->start_time
                        : 0;
  c->rec_dur_us = recording_duration(c);
  int64_t end = o->end_us;
  if (c->rec_dur_us >= 0 && o->start_us >= c->rec_dur_us) {
    rc = cu_error(CU_EINVAL, "start (%.3f s) is not inside the recording, which lasts %.3f s",
                  secs(o->start_us), secs(c->rec_dur_us));
    goto done;
  }
  if (c->rec_dur_us >= 0 && end > c->rec_dur_us) {
    end = c->rec_dur_us;
    c->end_clamped = true;
  }
  c->start_us = c->rec_start_us + o->start_us;
  c->end_us = c->rec_start_us + end;

  if ((rc = locate(c))) goto done;
  for (int k = 0; k < NSLOT; k++) {
    cslot *s = &c->s[k];
    if (s->index < 0) continue;
    AVRational tb = ist(c, k)->time_base;
    s->end = to_tb_rnd(c->end_us, AV_TIME_BASE_Q, tb, AV_ROUND_UP);
    s->shift = k == c->lead && c->anchor_pts != AV_NOPTS_VALUE
                   ? c->anchor_pts
                   : to_tb(c->anchor_us, AV_TIME_BASE_Q, tb);
    s->from = c->mode == MEDIA_CLIP_COPY
                  ? to_tb_rnd(c->anchor_us, AV_TIME_BASE_Q, tb, AV_ROUND_UP)
                  : to_tb(c->start_us - CLIP_AUDIO_PREROLL_US, AV_TIME_BASE_Q, tb);
    if (s->end == AV_NOPTS_VALUE || s->shift == AV_NOPTS_VALUE || s->from == AV_NOPTS_VALUE) {
      rc = cu_error(CU_ECORRUPT, "its timestamps are out of range");
      goto done;
    }
  }

  if (c->mode == MEDIA_CLIP_COPY) {
    if ((rc = copy_open(c, out))) goto done;
    if ((rc = range_begin(c, &c->r))) goto done;
    while ((rc = range_next(c, &c->r, c->pkt)) == 1) {
      int k = slot_of(c, c->pkt->stream_index);
      progress_at(c, k, c->pkt->dts != AV_NOPTS_VALUE ? c->pkt->dts : c->pkt->pts);
      rc = copy_write(c, c->pkt);
      av_packet_unref(c->pkt);
      if (rc) goto done;
    }
    if (rc) goto done;
    if (c->s[SV].packets + c->s[SA].packets == 0) {
      rc = cu_error(CU_ECORRUPT, "not one packet of the range could be read");
      goto done;
    }
    if (c->r.read_errors) {
      /* What was copied is the original's, but it stops short: say so
       * rather than hand over a shorter clip as if it were the range. */
      rc =
          cu_error(CU_ECORRUPT, "the recording is damaged inside the range: it cannot be read past "
                                "some point; use mode=exact for what decodes");
      goto done;
    }
    if ((rc = mio_out_close(&c->oc, false))) goto done;
    c->prog_base = 0.5;
    c->last_progress_us = 0;
    if ((rc = copy_check(c, out, &check))) goto done;
  } else {
    if ((rc = exact_open(c, out)) || (rc = exact_run(c))) goto done;
    if (c->s[SV].packets + c->s[SA].packets == 0) {
      rc = cu_error(CU_ECORRUPT, "not one frame of the range could be decoded");
      goto done;
    }
    if ((rc = mio_out_close(&c->oc, false))) goto done;
    check = json_object();
    if (!check) oom();
    jset(check, "method", json_string("none"));
    jset(check, "claimed_frames", json_integer(0));
    jset(check, "reason",
         json_string("every frame of an exact clip is re-encoded, so none is "
                     "claimed identical to the original"));
  }
  *report = make_report(c, o, check);
  check = NULL;
  if (ctl && ctl->progress) ctl->progress(ctl->progress_ud, 1.0);

done:
  json_decref(check);
  if (c) clip_free(c);
  return rc;
}

/* ---- the frame check ---- */

typedef struct {
  unsigned char (*h)[32];
  int64_t *pts_us;
  size_t n, cap;
} frames;

static int on_clip_frame(void *ud, int stream, AVFrame *f) {
  frames *fr = ud;
  (void)stream;
  if (fr->n == fr->cap) {
    if (fr->cap >= MEDIA_CLIP_CHECK_MAX_FRAMES)
      return cu_error(CU_ETOOBIG, "the clip has more than %d frames to check",
                      MEDIA_CLIP_CHECK_MAX_FRAMES);
    size_t cap = fr->cap ? fr->cap * 2 : 1024;
    if (cap > MEDIA_CLIP_CHECK_MAX_FRAMES) cap = MEDIA_CLIP_CHECK_MAX_FRAMES;
    unsigned char(*h)[32] = realloc(fr->h, cap * sizeof *h);
    if (!h) return cu_error(CU_EIO, "out of memory");
    fr->h = h;
    int64_t *p = realloc(fr->pts_us, cap * sizeof *p);
    if (!p) return cu_error(CU_EIO, "out of memory");
    fr->pts_us = p;
    fr->cap = cap;
  }
  int size, rc = mdec_hash_video(f, fr->h[fr->n], &size);
  if (rc) return rc;
  fr->pts_us[fr->n++] = f->pts; /* made microseconds by the caller */
  return 0;
}

/* Streams a framehash header may describe that we look at (ours has a
 * video stream first). */
#define CLIP_FH_STREAMS 64

/* The framehash file's header: which stream is the first video, the time
 * bases, and that the hashes are SHA-256. */
typedef struct {
  int video; /* stream number in the file; -1 none */
  AVRational tb[CLIP_FH_STREAMS];
  bool sha256, hash_seen;
} fh_header;

static void parse_header_line(fh_header *h, const char *line) {
  int k, num, den;
  char word[32];
  if (sscanf(line, "#hash: %31s", word) == 1) {
    h->hash_seen = true;
    h->sha256 = !strcmp(word, "SHA256") || !strcmp(word, "sha256");
  } else if (sscanf(line, "#media_type %d: %31s", &k, word) == 2) {
    if (h->video < 0 && !strcmp(word, "video") && k >= 0 && k < CLIP_FH_STREAMS) h->video = k;
  } else if (sscanf(line, "#tb %d: %d/%d", &k, &num, &den) == 3) {
    if (k >= 0 && k < CLIP_FH_STREAMS && num > 0 && den > 0) h->tb[k] = (AVRational){num, den};
  }
}

int media_clip_check_frames(const char *clip_path, const char *framehash_path, const media_ctl *ctl,
                            json_t **report) {
  mio_in in = {.io.fd = -1};
  mdec d = {0};
  frames fr = {0};
  bool *selected = NULL;
  size_t *fail = NULL;
  int64_t *ring = NULL;
  FILE *f = NULL;
  int rc = 0;
  if (report) *report = NULL;
  if (!clip_path || !framehash_path || !report)
    return cu_error(CU_EINVAL,
                    "media_clip_check_frames needs a clip, a framehash file and a report");

  if ((rc = mio_open(&in, clip_path, ctl, ctl ? ctl->deadline_us : 0))) goto done;
  int v = first_stream(in.ic, AVMEDIA_TYPE_VIDEO, false);
  if (v < 0) {
    rc = cu_error(CU_EUNSUPPORTED, "the clip has no video to check frame by frame");
    goto done;
  }
  if (!(selected = calloc(in.ic->nb_streams, sizeof *selected))) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  selected[v] = true;
  d = (mdec){.in = &in, .selected = selected, .on_frame = on_clip_frame, .ud = &fr};
  if ((rc = mdec_open(&d)) || (rc = mdec_run(&d))) goto done;
  AVRational vtb = in.ic->streams[v]->time_base;
  for (size_t i = 0; i < fr.n; i++) {
    int64_t us = to_tb(fr.pts_us[i], vtb, AV_TIME_BASE_Q);
    fr.pts_us[i] = us;
  }
  if (fr.n == 0) {
    rc = cu_error(CU_ECORRUPT, "not one frame of the clip decodes");
    goto done;
  }

  /* Knuth-Morris-Pratt over hashes: fail[i] is the longest proper prefix
   * of the clip's frames 0..i that is also a suffix of them. */
  size_t n = fr.n;
  if (!(fail = malloc(n * sizeof *fail)) || !(ring = malloc(n * sizeof *ring))) {
    rc = cu_error(CU_EIO, "out of memory");
    goto done;
  }
  fail[0] = 0;
  for (size_t i = 1, k = 0; i < n; i++) {
    while (k > 0 && memcmp(fr.h[i], fr.h[k], 32) != 0)
      k = fail[k - 1];
    if (memcmp(fr.h[i], fr.h[k], 32) == 0) k++;
    fail[i] = k;
  }

  if (!(f = fopen(framehash_path, "re"))) {
    rc = cu_error_errno(errno == ENOENT ? CU_ENOTFOUND : CU_EIO, errno,
                        "cannot read the original's frame hashes");
    goto done;
  }
  fh_header h = {.video = -1};
  char line[CLIP_FH_LINE_MAX];
  size_t lineno = 0, q = 0, best = 0;
  int64_t idx = 0, best_fail = -1, found = -1;
  int64_t best_fail_pts = AV_NOPTS_VALUE;
  bool data = false;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    size_t len = strlen(line);
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      rc = cu_error(CU_ECORRUPT, "the original's frame hashes are damaged: line %zu is too long",
                    lineno);
      goto done;
    }
    if ((lineno & 1023) == 0 && mio_stopped(&in.io)) {
      rc = mio_own_failure(&in.io, "checking the clip's frames");
      goto done;
    }
    if (line[0] == '#') {
      if (!data) parse_header_line(&h, line);
      continue;
    }
    if (line[0] == '\n' || line[0] == '\0') continue;
    if (!data) {
      data = true;
      if (!h.hash_seen || !h.sha256) {
        rc = cu_error(CU_EUNSUPPORTED, "the original's frame hashes are not SHA-256");
        goto done;
      }
      if (h.video < 0) {
        rc = cu_error(CU_EUNSUPPORTED, "the original's frame hashes list no video stream");
        goto done;
      }
    }
    int k, size;
    int64_t dts, pts, dur;
    char hex[80];
    if (sscanf(line, "%d, %" SCNd64 ", %" SCNd64 ", %" SCNd64 ", %d, %79s", &k, &dts, &pts, &dur,
               &size, hex) != 6) {
      rc = cu_error(CU_ECORRUPT, "the original's frame hashes are damaged at line %zu", lineno);
      goto done;
    }
    if (k != h.video) continue;
    unsigned char oh[32];
    if (strlen(hex) != 64 || cu_hex_decode(hex, 64, oh, 32) != 0) {
      rc = cu_error(CU_ECORRUPT, "the original's frame hashes are damaged at line %zu", lineno);
      goto done;
    }
    AVRational tb = h.tb[h.video];
    int64_t pus = tb.num > 0 ? to_tb(pts, tb, AV_TIME_BASE_Q) : AV_NOPTS_VALUE;
    if (found < 0) {
      ring[idx % (int64_t)n] = pus;
      while (q > 0 && memcmp(oh, fr.h[q], 32) != 0) {
        if (q > best) best = q, best_fail = idx, best_fail_pts = pus;
        q = fail[q - 1];
      }
      if (memcmp(oh, fr.h[q], 32) == 0) q++;
      if (q == n) found = idx - (int64_t)n + 1;
    }
    idx++;
  }
  if (ferror(f)) {
    rc = cu_error_errno(CU_EIO, errno, "cannot read the original's frame hashes");
    goto done;
  }
  if (!data && (!h.hash_seen || !h.sha256 || h.video < 0)) {
    rc = cu_error(CU_EUNSUPPORTED, h.video >= 0
                                       ? "the original's frame hashes are not SHA-256"
                                       : "the original's frame hashes list no video stream");
    goto done;
  }
  if (found < 0) {
    if (q > best) best = q, best_fail = -1;
    if (best == 0)
      rc = cu_error(CU_ECORRUPT,
                    "the clip's frame 0 (at %.3f s) is not one of the original's %" PRId64
                    " video frames",
                    secs(fr.pts_us[0] == AV_NOPTS_VALUE ? 0 : fr.pts_us[0]), idx);
    else if (best_fail < 0)
      rc = cu_error(CU_ECORRUPT,
                    "the clip's frames 0..%zu follow the original's, but the original ends there: "
                    "the clip's frame %zu (at %.3f s) is not the original's",
                    best - 1, best, secs(fr.pts_us[best] == AV_NOPTS_VALUE ? 0 : fr.pts_us[best]));
    else
      rc = cu_error(CU_ECORRUPT,
                    "the clip's frame %zu (at %.3f s) differs from the original's frame %" PRId64
                    " (at %.3f s), which follows on from the clip's frames 0..%zu",
                    best, secs(fr.pts_us[best] == AV_NOPTS_VALUE ? 0 : fr.pts_us[best]), best_fail,
                    secs(best_fail_pts == AV_NOPTS_VALUE ? 0 : best_fail_pts), best - 1);
    goto done;
  }
  json_t *r = json_object();
  if (!r) oom();
  jset(r, "method", json_string("framehash"));
  jset(r, "identical", json_true());
  jset(r, "frames_checked", json_integer((json_int_t)n));
  jset(r, "first_original_frame", json_integer(found));
  jset(r, "last_original_frame", json_integer(found + (int64_t)n - 1));
  int64_t fp = ring[found % (int64_t)n];
  if (fp != AV_NOPTS_VALUE) jset(r, "first_original_pts_s", json_real(secs(fp)));
  jset(r, "original_frames", json_integer(idx));
  jset(r, "framehash_stream", json_integer(h.video));
  *report = r;
  if (ctl && ctl->progress) ctl->progress(ctl->progress_ud, 1.0);

done:
  if (f) fclose(f);
  mdec_close(&d);
  mio_close(&in);
  free(selected);
  free(fail);
  free(ring);
  free(fr.h);
  free(fr.pts_us);
  return rc;
}
