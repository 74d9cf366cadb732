/* Decoding the one video stream in segments, on several threads.
 *
 * WHY
 * Frame threading, what ffmpeg uses, costs about 12% more CPU on this kind
 * of machine than one decoder per thread, and it stalls while the caller's
 * thread hashes. An H.264 or HEVC stream can instead be cut at IDR
 * pictures: nothing after one refers to anything before it, and everything
 * before it is shown before it. Each segment goes to a single-threaded
 * decoder on its own thread, which hashes its frames too; the caller's
 * thread reads the file, decodes the other streams and hands everything out
 * in file order, as mdec_run would.
 *
 * The frames must be exactly those one continuous decode gives, so this is
 * checked as it goes: a cut is an IDR whose access unit a fresh decoder can
 * start from; every frame's timestamp is its packet's and they rise through
 * the whole stream; a segment gives one frame per packet and nothing
 * damaged; every packet lasts one frame at the stream's rate (a frame takes
 * its duration from whichever packet was being decoded when it came out,
 * which differs at a cut, so all must be the same). Anything else, or a
 * segment longer than MAX_SEGMENT_PACKETS, and the answer is MDEC_AGAIN: the
 * caller starts over in one pass. Memory is bounded by the packets in
 * flight (MAX_ITEMS, MAX_BYTES), not by the file. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavformat/avformat.h>
#include <libavutil/cpu.h>

#include "err.h"
#include "mdecode.h"
#include "sha2x.h"
#include "banned.h"

#define MAX_WORKERS 8
#define MAX_SEGMENT_PACKETS 600
#define MAX_ITEMS 4096
#define MAX_BYTES ((size_t)16 << 20)

enum { IT_OTHER, IT_VIDEO, IT_END };

typedef struct item {
  struct item *next;  /* in file order */
  struct item *wnext; /* in its worker's queue */
  int kind;
  bool start;         /* IT_VIDEO: the first packet of a segment */
  bool done;          /* decoded (IT_OTHER: always) */
  AVPacket *pkt;      /* IT_OTHER, IT_VIDEO */
  mdec_vframe *fr;    /* the frames that came out after it */
  int nfr, cap;
} item;

typedef struct par par;

typedef struct {
  par *p;
  pthread_t t;
  bool started;
  AVCodecContext *dec;
  item *qh, *qt;
  bool used;          /* has had a segment: flushed before the next */
  int packets, frames;
  int64_t last_pts;
  /* A frame waiting for the next to be hashed with it (two chains at once
   * on the SHA instructions), where its hash goes, and its packet's item,
   * which is not done until then. */
  AVFrame *held;
  item *held_item;
  int held_at;
  item *completed;    /* an earlier item whose last hash just came in */
} worker;

struct par {
  mdec *d;
  int vs;
  int64_t dur;        /* every video packet's duration */
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  worker w[MAX_WORKERS];
  int nw;
  item *head, *tail;
  size_t items, bytes;
  bool quit;
  int wrc;            /* a worker's verdict: MDEC_AGAIN or CU_EIO (memory) */
};

/* True if pkt is an IDR access unit a fresh decoder can start from: its
 * parameter sets are in the stream's configuration (avcC, hvcC) or in the
 * packet, and (HEVC) it does not tell the decoder to drop pictures not yet
 * shown, which a segment's own decoder would show. */
static bool safe_cut(const AVCodecParameters *cp, const uint8_t *p, int n) {
  bool hevc = cp->codec_id == AV_CODEC_ID_HEVC;
  const uint8_t *x = cp->extradata;
  int lsize = 0;
  if (hevc && cp->extradata_size >= 23 && x[0] == 1) lsize = (x[21] & 3) + 1;
  if (!hevc && cp->extradata_size >= 7 && x[0] == 1) lsize = (x[4] & 3) + 1;
  bool idr = false, vps = false, sps = false, pps = false;
  for (int i = 0; i < n;) {
    int start, end;
    if (lsize) {
      if (i + lsize > n) break;
      uint32_t len = 0;
      for (int k = 0; k < lsize; k++) len = len << 8 | p[i + k];
      start = i + lsize;
      if (len > (uint32_t)(n - start)) break;
      end = i = start + (int)len;
    } else {
      int j = i;
      while (j + 2 < n && !(p[j] == 0 && p[j + 1] == 0 && p[j + 2] == 1)) j++;
      if (j + 2 >= n) break;
      start = j + 3;
      int k = start;
      while (k + 2 < n && !(p[k] == 0 && p[k + 1] == 0 && p[k + 2] == 1)) k++;
      end = i = k + 2 < n ? k : n;
    }
    if (start >= end) continue;
    if (hevc) {
      int t = (p[start] >> 1) & 0x3f;
      if (t == 19 || t == 20) {
        if (end - start < 3 || (p[start + 2] & 0x40)) return false; /* no_output_of_prior_pics */
        idr = true;
      }
      vps |= t == 32, sps |= t == 33, pps |= t == 34;
    } else {
      int t = p[start] & 0x1f;
      idr |= t == 5, sps |= t == 7, pps |= t == 8;
    }
  }
  return idr && (lsize || (sps && pps && (!hevc || vps)));
}

int mdec_parallel_stream(const mdec *d) {
  if (av_cpu_count() < 2) return -1;
  AVFormatContext *ic = d->in->ic;
  int vs = -1;
  for (unsigned i = 0; i < ic->nb_streams; i++) {
    if (!d->selected[i] || !d->dec[i] || d->dec[i]->codec_type != AVMEDIA_TYPE_VIDEO) continue;
    if (vs >= 0) return -1;
    vs = (int)i;
  }
  if (vs < 0) return -1;
  AVStream *st = ic->streams[vs];
  if (st->codecpar->codec_id != AV_CODEC_ID_H264 && st->codecpar->codec_id != AV_CODEC_ID_HEVC) return -1;
  /* One long segment on one thread would be slower than one pass. Where the
   * container's index lists every packet (MP4), it must show keyframes close
   * enough together; where it lists only keyframes or nothing yet (Matroska
   * reads its cues late, MPEG-TS has none), the cuts are found as the file
   * is read, and a segment that grows past MAX_SEGMENT_PACKETS ends the try. */
  int n = avformat_index_get_entries_count(st), keys = 0, gap = 0;
  for (int i = 0; i < n; i++) {
    const AVIndexEntry *e = avformat_index_get_entry(st, i);
    if (e->flags & AVINDEX_KEYFRAME) keys++, gap = 0;
    else if (++gap >= MAX_SEGMENT_PACKETS) return -1;
  }
  return keys >= 2 || keys == n ? vs : -1;
}

static void release_held(worker *w, item *it) {
  av_frame_unref(w->held);
  if (w->held_item != it) w->completed = w->held_item;
  w->held_item = NULL;
}

/* Hashes the held frame alone. */
static int hash_held(worker *w, item *it) {
  if (!w->held_item) return 0;
  mdec_vframe *v = &w->held_item->fr[w->held_at];
  int rc = mdec_hash_video(w->held, v->h, &v->size) ? MDEC_AGAIN : 0; /* one pass says what is wrong */
  release_held(w, it);
  return rc;
}

static int add_frame(worker *w, item *it, AVFrame *f) {
  int64_t pts = f->best_effort_timestamp;
  if (f->decode_error_flags || (f->flags & AV_FRAME_FLAG_CORRUPT) || pts == AV_NOPTS_VALUE ||
      pts != f->pts || (w->frames && pts <= w->last_pts))
    return MDEC_AGAIN;
  if (it->nfr == it->cap) {
    int cap = it->cap ? it->cap * 2 : 2;
    mdec_vframe *fr = realloc(it->fr, (size_t)cap * sizeof *fr);
    if (!fr) return CU_EIO;
    it->fr = fr, it->cap = cap;
  }
  mdec_vframe *v = &it->fr[it->nfr];
  *v = (mdec_vframe){.pts = pts, .pkt_duration = w->p->dur, .width = f->width, .height = f->height,
                     .sar = f->sample_aspect_ratio};
  int at = it->nfr++;
  w->frames++, w->last_pts = pts;
  if (w->held_item && mdec_hash_pair_possible(w->held, f)) {
    mdec_vframe *h = &w->held_item->fr[w->held_at];
    int rc = mdec_hash_video_pair(w->held, f, h->h, v->h, &v->size) ? MDEC_AGAIN : 0;
    h->size = v->size;
    release_held(w, it);
    return rc;
  }
  int rc = hash_held(w, it);
  if (rc) return rc;
  if (!sha2x_available()) return mdec_hash_video(f, v->h, &v->size) ? MDEC_AGAIN : 0;
  av_frame_move_ref(w->held, f);
  w->held_item = it, w->held_at = at;
  return 0;
}

static int receive(worker *w, item *it, AVFrame *f) {
  for (;;) {
    int err = avcodec_receive_frame(w->dec, f);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return 0;
    if (err < 0) return err == AVERROR(ENOMEM) ? CU_EIO : MDEC_AGAIN;
    int rc = add_frame(w, it, f);
    av_frame_unref(f);
    if (rc) return rc;
  }
}

static int process(worker *w, item *it, AVFrame *f) {
  if (it->kind == IT_VIDEO && it->start) {
    if (w->used) avcodec_flush_buffers(w->dec);
    w->used = true, w->packets = w->frames = 0;
  }
  if (it->kind == IT_VIDEO) w->packets++;
  /* Every frame is taken after each packet, so the decoder is never full. */
  int err = avcodec_send_packet(w->dec, it->kind == IT_VIDEO ? it->pkt : NULL);
  if (err < 0) return err == AVERROR(ENOMEM) ? CU_EIO : MDEC_AGAIN;
  int rc = receive(w, it, f);
  if (!rc && it->kind == IT_END) rc = hash_held(w, it);
  if (!rc && it->kind == IT_END && w->frames != w->packets) rc = MDEC_AGAIN;
  return rc;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  par *p = w->p;
  AVFrame *f = av_frame_alloc();
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!w->qh && !p->quit) pthread_cond_wait(&p->work, &p->mu);
    if (p->quit) break;
    item *it = w->qh;
    if (!(w->qh = it->wnext)) w->qt = NULL;
    pthread_mutex_unlock(&p->mu);
    int rc = f && w->held ? process(w, it, f) : CU_EIO;
    pthread_mutex_lock(&p->mu);
    if (w->completed) w->completed->done = true, w->completed = NULL;
    if (w->held_item != it) it->done = true;
    if (rc && !p->wrc) p->wrc = rc;
    pthread_cond_broadcast(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  av_frame_free(&f);
  return NULL;
}

static void item_free(item *it) {
  if (!it) return;
  av_packet_free(&it->pkt);
  free(it->fr);
  free(it);
}

/* Queues it for worker w (NULL: the caller's own, already done) and, unless
 * it is the last segment's end, in file order. */
static void enqueue(par *p, item *it, worker *w, bool in_order) {
  pthread_mutex_lock(&p->mu);
  if (in_order) {
    if (p->tail) p->tail->next = it;
    else p->head = it;
    p->tail = it;
    p->items++;
    if (it->pkt) p->bytes += (size_t)it->pkt->size;
  }
  if (w) {
    if (w->qt) w->qt->wnext = it;
    else w->qh = it;
    w->qt = it;
    pthread_cond_broadcast(&p->work);
  }
  pthread_mutex_unlock(&p->mu);
}

static int hand_out(par *p, item *it, int64_t *last_pts, AVFrame *f) {
  mdec *d = p->d;
  int s = it->pkt ? it->pkt->stream_index : p->vs;
  if (it->pkt && d->on_packet) d->on_packet(d->ud, s, it->pkt);
  if (it->kind == IT_OTHER) return mdec_send(d, s, it->pkt, f);
  for (int i = 0; i < it->nfr; i++) {
    if (*last_pts != AV_NOPTS_VALUE && it->fr[i].pts <= *last_pts) return MDEC_AGAIN;
    *last_pts = it->fr[i].pts;
    int rc = d->on_video(d->ud, s, &it->fr[i]);
    if (rc) return rc;
  }
  return 0;
}

/* Hands out every item at the head that is decoded. */
static int deliver(par *p, int64_t *last_pts, AVFrame *f) {
  for (;;) {
    pthread_mutex_lock(&p->mu);
    item *it = p->head;
    int wrc = p->wrc;
    bool ready = it && it->done;
    if (ready && !wrc) {
      if (!(p->head = it->next)) p->tail = NULL;
      p->items--;
      if (it->pkt) p->bytes -= (size_t)it->pkt->size;
    }
    pthread_mutex_unlock(&p->mu);
    if (wrc) return wrc == CU_EIO ? cu_error(CU_EIO, "out of memory while decoding") : wrc;
    if (!ready) return 0;
    int rc = hand_out(p, it, last_pts, f);
    item_free(it);
    if (rc) return rc;
  }
}

/* Waits up to a second for the head to be decoded (or a worker to give up). */
static void wait_head(par *p, const item *it) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 1;
  pthread_mutex_lock(&p->mu);
  if (it && !it->done && !p->wrc) pthread_cond_timedwait(&p->done, &p->mu, &ts);
  pthread_mutex_unlock(&p->mu);
}

/* Every packet one frame long at the stream's rate, as framehash.c and
 * ffmpeg's vfr logic count it. */
static bool one_frame_long(const AVFormatContext *ic, AVStream *st, int64_t dur) {
  if (dur <= 0) return false;
  AVRational fr = av_guess_frame_rate((AVFormatContext *)ic, st, NULL);
  if (!fr.num || !fr.den) fr = (AVRational){25, 1};
  return lrintf((float)((double)dur * av_q2d(st->time_base) * av_q2d(fr))) == 1;
}

static int read_loop(par *p, AVPacket *pkt, AVFrame *f, item **final) {
  mdec *d = p->d;
  AVFormatContext *ic = d->in->ic;
  AVStream *vst = ic->streams[p->vs];
  int seg = -1, seg_packets = 0;
  int64_t last_pts = AV_NOPTS_VALUE;
  bool eof = false;
  for (;;) {
    int rc = deliver(p, &last_pts, f);
    if (rc) return rc;
    if (eof) {
      pthread_mutex_lock(&p->mu);
      bool empty = !p->head;
      pthread_mutex_unlock(&p->mu);
      if (empty) break;
    }
    pthread_mutex_lock(&p->mu);
    item *head = p->head;
    bool full = eof || p->items >= MAX_ITEMS || p->bytes >= MAX_BYTES;
    pthread_mutex_unlock(&p->mu);
    if (full) {
      wait_head(p, head);
      mio_stopped(&d->in->io);
      if ((rc = mio_own_failure(&d->in->io, "decoding"))) return rc;
      continue;
    }
    int err = av_read_frame(ic, pkt);
    mio_stopped(&d->in->io);
    if ((rc = mio_own_failure(&d->in->io, "decoding"))) return rc;
    if (err == AVERROR(EAGAIN)) continue;
    if (err < 0) {
      if (err != AVERROR_EOF) return MDEC_AGAIN; /* one pass records where */
      eof = true;
      if (seg >= 0) {
        if (!(*final = calloc(1, sizeof **final))) return cu_error(CU_EIO, "out of memory");
        (*final)->kind = IT_END;
        enqueue(p, *final, &p->w[seg % p->nw], false);
      }
      continue;
    }
    int s = pkt->stream_index;
    if (s < 0 || (unsigned)s >= ic->nb_streams || !d->selected[s]) {
      av_packet_unref(pkt);
      continue;
    }
    mio_progress(d->in, pkt);
    mdec_ts_apply(&d->ts, ic, pkt);
    if (pkt->flags & AV_PKT_FLAG_CORRUPT) return MDEC_AGAIN;
    item *it = calloc(1, sizeof *it);
    if (!it || !(it->pkt = av_packet_alloc())) {
      item_free(it);
      return cu_error(CU_EIO, "out of memory");
    }
    av_packet_move_ref(it->pkt, pkt);
    if (s != p->vs) {
      it->kind = IT_OTHER, it->done = true;
      enqueue(p, it, NULL, true);
      continue;
    }
    it->kind = IT_VIDEO;
    if (!p->dur && one_frame_long(ic, vst, it->pkt->duration)) p->dur = it->pkt->duration;
    bool cut = seg < 0 || ((it->pkt->flags & AV_PKT_FLAG_KEY) &&
                           safe_cut(vst->codecpar, it->pkt->data, it->pkt->size));
    if (it->pkt->duration != p->dur || (!cut && ++seg_packets >= MAX_SEGMENT_PACKETS)) {
      item_free(it);
      return MDEC_AGAIN;
    }
    if (cut) {
      if (seg >= 0) {
        item *end = calloc(1, sizeof *end);
        if (!end) {
          item_free(it);
          return cu_error(CU_EIO, "out of memory");
        }
        end->kind = IT_END;
        enqueue(p, end, &p->w[seg % p->nw], true);
      }
      seg++, seg_packets = 0, it->start = true;
    }
    enqueue(p, it, &p->w[seg % p->nw], true);
  }
  /* The end, in stream order as mdec_run drains: the last segment's
   * remaining frames stand for the video decoder's. */
  for (unsigned s = 0; s < ic->nb_streams; s++) {
    if (!d->selected[s]) continue;
    int rc = 0;
    if ((int)s != p->vs) {
      rc = mdec_send(d, (int)s, NULL, f);
    } else if (*final) {
      for (;;) {
        pthread_mutex_lock(&p->mu);
        bool done = (*final)->done;
        rc = p->wrc;
        pthread_mutex_unlock(&p->mu);
        if (done || rc) break;
        wait_head(p, *final);
        mio_stopped(&d->in->io);
        if ((rc = mio_own_failure(&d->in->io, "decoding"))) return rc;
      }
      if (rc) return rc == CU_EIO ? cu_error(CU_EIO, "out of memory while decoding") : rc;
      rc = hand_out(p, *final, &last_pts, f);
    }
    if (rc) return rc;
  }
  d->segments = seg + 1;
  return 0;
}

int mdec_run_parallel(mdec *d, int vs) {
  par p = {.d = d, .vs = vs};
  int nw = av_cpu_count();
  p.nw = nw < 2 ? 2 : nw > MAX_WORKERS ? MAX_WORKERS : nw;
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.work, NULL);
  pthread_cond_init(&p.done, NULL);
  AVPacket *pkt = av_packet_alloc();
  AVFrame *f = av_frame_alloc();
  item *final = NULL;
  int rc = pkt && f ? 0 : cu_error(CU_EIO, "out of memory");
  for (int i = 0; !rc && i < p.nw; i++) {
    worker *w = &p.w[i];
    w->p = &p;
    if ((rc = mio_decoder(&w->dec, d->in->ic->streams[vs], 1))) break;
    if (!(w->held = av_frame_alloc())) {
      rc = cu_error(CU_EIO, "out of memory");
      break;
    }
    if (pthread_create(&w->t, NULL, worker_main, w)) rc = cu_error(CU_EIO, "cannot start a decoding thread");
    else w->started = true;
  }
  if (!rc) rc = read_loop(&p, pkt, f, &final);
  pthread_mutex_lock(&p.mu);
  p.quit = true;
  pthread_cond_broadcast(&p.work);
  pthread_mutex_unlock(&p.mu);
  for (int i = 0; i < p.nw; i++) {
    if (p.w[i].started) pthread_join(p.w[i].t, NULL);
    av_frame_free(&p.w[i].held);
    avcodec_free_context(&p.w[i].dec);
  }
  while (p.head) {
    item *it = p.head;
    p.head = it->next;
    item_free(it);
  }
  item_free(final);
  av_packet_free(&pkt);
  av_frame_free(&f);
  pthread_cond_destroy(&p.work);
  pthread_cond_destroy(&p.done);
  pthread_mutex_destroy(&p.mu);
  if (rc) d->segments = 0;
  return rc;
}
