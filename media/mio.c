/* mio: hostile input through our own AVIOContext, outputs, decoders, and
 * the process-wide libav log callback.
 *
 * libav explains failures ("moov atom not found") only through av_log,
 * which is process-wide. The callback keeps the first error-level message
 * of the operation running on the calling thread (a thread-local buffer),
 * so a verdict can quote it; messages outside a capture go to our log as
 * warnings. Decoder threads log on their own threads, so their messages
 * are logged, not captured: decode errors are counted from return codes
 * and frame flags instead. */
#include "mio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "err.h"
#include "json.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

#define MIO_IO_BUF (64 * 1024)
/* The name libavformat is given instead of the path: a fixed name with no
 * extension and no protocol. Demuxers that resolve names against it (hls)
 * get that far and are refused by refuse_io_open. */
#define MIO_URL "custos-input"
/* Bytes libavformat may read while guessing stream parameters (ffprobe's
 * default is 5 MB; high-bit-rate 4K footage needs more before every stream
 * has shown a packet), and media time it may analyse, in microseconds. */
#define MIO_PROBE_SIZE (32 * 1024 * 1024)
#define MIO_ANALYZE_US (30LL * 1000 * 1000)
#define LOGMSG_MAX 256

static _Thread_local struct {
  bool active;
  char first[LOGMSG_MAX];
} capture;

static pthread_once_t libav_once = PTHREAD_ONCE_INIT;

static void log_cb(void *avcl, int level, const char *fmt, va_list vl)
    __attribute__((format(printf, 3, 0)));
static void log_cb(void *avcl, int level, const char *fmt, va_list vl) {
  char line[LOGMSG_MAX];
  (void)avcl;
  if (level > av_log_get_level()) return;
  int full = vsnprintf(line, sizeof line, fmt, vl);
  size_t n = strlen(line);
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

void mio_init(void) { pthread_once(&libav_once, init_libav); }

void mio_capture_begin(void) {
  capture.active = true;
  capture.first[0] = '\0';
}
const char *mio_capture_first(void) { return capture.first; }
void mio_capture_end(void) { capture.active = false; }

static char lavf_version[32], lavc_version[32];
static pthread_once_t version_once = PTHREAD_ONCE_INIT;

static void init_versions(void) {
  unsigned f = avformat_version(), c = avcodec_version();
  snprintf(lavf_version, sizeof lavf_version, "%u.%u.%u", AV_VERSION_MAJOR(f),
           AV_VERSION_MINOR(f), AV_VERSION_MICRO(f));
  snprintf(lavc_version, sizeof lavc_version, "%u.%u.%u", AV_VERSION_MAJOR(c),
           AV_VERSION_MINOR(c), AV_VERSION_MICRO(c));
}

const char *media_libavformat_version(void) {
  pthread_once(&version_once, init_versions);
  return lavf_version;
}

const char *media_libavcodec_version(void) {
  pthread_once(&version_once, init_versions);
  return lavc_version;
}

bool mio_stopped(mio_io *io) {
  if (!io->timed_out && io->deadline_us && cu_mono_us() > io->deadline_us) io->timed_out = true;
  if (!io->cancelled && io->ctl && io->ctl->cancel && atomic_load(io->ctl->cancel))
    io->cancelled = true;
  return io->timed_out || io->cancelled;
}

static int interrupt_cb(void *opaque) { return mio_stopped(opaque) ? 1 : 0; }

static int io_read(void *opaque, uint8_t *buf, int n) {
  mio_io *io = opaque;
  if (mio_stopped(io)) return AVERROR_EXIT;
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
  mio_io *io = opaque;
  if (whence & AVSEEK_SIZE) return io->size;
  whence &= ~AVSEEK_FORCE;
  if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) return AVERROR(EINVAL);
  /* A bad offset from a demuxer is the file's doing, not a read failure. */
  off_t r = lseek(io->fd, (off_t)offset, whence);
  return r < 0 ? AVERROR(errno) : (int64_t)r;
}

/* Nested opens (playlists, references, image sequences) are never made. */
static int refuse_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url,
                          int flags, AVDictionary **options) {
  (void)pb, (void)url, (void)flags, (void)options;
  mio_io *io = s->opaque; /* nested contexts share it */
  if (io) io->refused_open = true;
  return AVERROR(EACCES);
}

int mio_av_error(int err, const char *what) {
  char e[128];
  av_strerror(err, e, sizeof e);
  return cu_error(err == AVERROR(ENOSPC) ? CU_ENOSPC : CU_EIO, "%s: %s", what, e);
}

void mio_fit(int64_t w, int64_t h, int max_side, int *ow, int *oh) {
  if ((w > h ? w : h) > max_side) {
    int64_t l = max_side & ~1;
    if (w >= h) {
      h = (h * l + w) / (2 * w) * 2;
      w = l;
    } else {
      w = (w * l + h) / (2 * h) * 2;
      h = l;
    }
  } else {
    w &= ~1;
    h &= ~1;
  }
  *ow = w < 2 ? 2 : (int)w;
  *oh = h < 2 ? 2 : (int)h;
}

/* An image pipe holds a moving picture when its first MIO_MOVING pictures
 * are all of one size, as an IP camera's MJPEG stream (JPEGs one after
 * another) is. A photo holds one picture; a multi-picture photo two or
 * three (MPO: a stereo pair of one size; MPF: previews of other sizes after
 * the picture). */
#define MIO_MOVING 3

static bool moving_pictures(const char *path, const mio_io *io) {
  mio_in in = {.io.fd = -1};
  AVCodecContext *dec = NULL;
  AVPacket *p = av_packet_alloc();
  AVFrame *f = av_frame_alloc();
  int n = 0, w = 0, h = 0;
  bool same = true;
  if (p && f && !mio_open(&in, path, io->ctl, io->deadline_us) && in.ic->nb_streams == 1 &&
      !mio_decoder(&dec, in.ic->streams[0], 1)) {
    /* A bounded look: pictures that do not decode are not read to the end. */
    for (int k = 0; k < 4 * MIO_MOVING && n < MIO_MOVING && same && av_read_frame(in.ic, p) >= 0; k++) {
      if (avcodec_send_packet(dec, p) >= 0)
        while (avcodec_receive_frame(dec, f) >= 0) {
          if (!n) w = f->width, h = f->height;
          else same = same && f->width == w && f->height == h;
          n++;
          av_frame_unref(f);
        }
      av_packet_unref(p);
    }
  }
  avcodec_free_context(&dec);
  mio_close(&in); /* after any return of mio_open */
  av_packet_free(&p);
  av_frame_free(&f);
  return same && n >= MIO_MOVING;
}

bool mio_still_image(const mio_in *in, const char *path) {
  const AVFormatContext *ic = in->ic;
  const char *n = ic->iformat->name;
  size_t len = strlen(n);
  bool pipe = len > 5 && !strcmp(n + len - 5, "_pipe");
  if ((strcmp(n, "image2") && !pipe) || ic->nb_streams != 1 ||
      ic->streams[0]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO)
    return false;
  return !pipe || !moving_pictures(path, &in->io);
}

int mio_own_failure(const mio_io *io, const char *doing) {
  if (io->read_errno) return cu_error_errno(CU_EIO, io->read_errno, "%s: cannot read the file", doing);
  if (io->cancelled) return cu_error(CU_EIO, "%s: cancelled", doing);
  if (io->timed_out) return cu_error(CU_EIO, "%s: gave up at the time limit", doing);
  return 0;
}

int mio_verdict(const mio_io *io, const char *what, int err, const char *why) {
  char etext[128];
  const char *logged = capture.first;
  if (why) snprintf(etext, sizeof etext, "%s", why);
  else av_strerror(err, etext, sizeof etext);
  if (io && io->refused_open)
    return cu_error(CU_EUNSUPPORTED,
                    "%s: it names other files or URLs, which Custos never opens (%s%s%s)", what,
                    etext, logged[0] ? "; " : "", logged);
  return cu_error(CU_EUNSUPPORTED, "%s: %s%s%s%s", what, etext, logged[0] ? " (" : "", logged,
                  logged[0] ? ")" : "");
}

/* The verdict already set, as "damaged" media of the recognised format. */
static int damaged(const AVInputFormat *fmt) {
  char why[600];
  snprintf(why, sizeof why, "%s", cu_errmsg());
  return cu_error(CU_ECORRUPT, "it is %s, but damaged: %s", fmt->long_name ? fmt->long_name : fmt->name, why);
}

int mio_open(mio_in *in, const char *path, const media_ctl *ctl, int64_t deadline_us) {
  memset(in, 0, sizeof *in);
  in->io.fd = -1;
  in->io.ctl = ctl;
  in->io.deadline_us = deadline_us;
  mio_init();
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; reads of a
   * regular file ignore it. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    return cu_error_errno(e == ENOENT || e == ENOTDIR ? CU_ENOTFOUND : CU_EIO, e,
                          "cannot open %s", path);
  }
  in->io.fd = fd;
  struct stat st;
  if (fstat(fd, &st) != 0) return cu_error_errno(CU_EIO, errno, "cannot stat %s", path);
  if (!S_ISREG(st.st_mode)) return cu_error(CU_EINVAL, "%s is not a regular file", path);
  if (st.st_size == 0) return cu_error(CU_EUNSUPPORTED, "the file is empty");
  in->io.size = (int64_t)st.st_size;
  unsigned char *buf = av_malloc(MIO_IO_BUF);
  if (!buf) return cu_error(CU_EIO, "out of memory");
  if (!(in->avio = avio_alloc_context(buf, MIO_IO_BUF, 0, &in->io, io_read, NULL, io_seek))) {
    av_free(buf);
    return cu_error(CU_EIO, "out of memory");
  }
  if (!(in->ic = avformat_alloc_context())) return cu_error(CU_EIO, "out of memory");
  in->ic->pb = in->avio;
  in->ic->flags |= AVFMT_FLAG_CUSTOM_IO; /* close_input must leave our pb alone */
  in->ic->interrupt_callback.callback = interrupt_cb;
  in->ic->interrupt_callback.opaque = &in->io;
  in->ic->opaque = &in->io;
  in->ic->io_open = refuse_io_open;
  in->ic->probesize = MIO_PROBE_SIZE;
  in->ic->max_analyze_duration = MIO_ANALYZE_US;

  mio_capture_begin();
  /* Probed first, so that a file libavformat recognises but cannot open
   * (an MP4 whose index was never written) is told apart from one that is
   * not media at all. */
  const AVInputFormat *fmt = NULL;
  int rc = 0, score = av_probe_input_buffer2(in->avio, &fmt, MIO_URL, NULL, 0, 0);
  if ((rc = mio_own_failure(&in->io, "opening the file"))) goto done;
  if (score < 0 || !fmt) {
    rc = mio_verdict(&in->io, "libavformat cannot open it", score < 0 ? score : AVERROR_INVALIDDATA, NULL);
    goto done;
  }
  int err = avformat_open_input(&in->ic, MIO_URL, fmt, NULL); /* frees ic on failure */
  if ((rc = mio_own_failure(&in->io, "opening the file"))) goto done;
  if (err < 0) {
    rc = mio_verdict(&in->io, "libavformat cannot open it", err, NULL);
    if (score > AVPROBE_SCORE_RETRY) rc = damaged(fmt);
    goto done;
  }
  err = avformat_find_stream_info(in->ic, NULL);
  /* find_stream_info can succeed after an interrupt: trust the flags. */
  if ((rc = mio_own_failure(&in->io, "reading the streams"))) goto done;
  if (err < 0) {
    /* A bare -1 (which av_strerror calls EPERM) is find_stream_info's "no
     * stream's parameters found"; the refused open uses EACCES. */
    rc = mio_verdict(&in->io, "libavformat cannot read its streams", err,
                     err == -1 ? "no stream's codec parameters could be found" : NULL);
    if (score > AVPROBE_SCORE_RETRY && !in->io.refused_open) rc = damaged(fmt);
  }
done:
  mio_capture_end();
  return rc;
}

void mio_close(mio_in *in) {
  avformat_close_input(&in->ic); /* leaves a custom pb alone */
  if (in->avio) av_freep(&in->avio->buffer);
  avio_context_free(&in->avio);
  if (in->io.fd >= 0) close(in->io.fd);
  in->io.fd = -1;
}

int mio_out_open(AVFormatContext **oc, const char *path, const char *format) {
  *oc = NULL;
  mio_init();
  int err = avformat_alloc_output_context2(oc, NULL, format, NULL);
  if (err < 0 || !*oc) return cu_error(CU_EIO, "no %s muxer in this libavformat", format);
  /* "file:" so that the path is never read as another protocol. */
  size_t n = strlen(path) + 6;
  char *url = av_malloc(n);
  if (!url) return cu_error(CU_EIO, "out of memory");
  snprintf(url, n, "file:%s", path);
  (*oc)->url = url;
  err = avio_open(&(*oc)->pb, url, AVIO_FLAG_WRITE);
  if (err < 0) {
    avformat_free_context(*oc);
    *oc = NULL;
    return mio_av_error(err, "cannot create the output");
  }
  return 0;
}

int mio_out_close(AVFormatContext **oc, bool failed) {
  int rc = 0;
  if (!*oc) return 0;
  if (!failed) {
    int err = av_write_trailer(*oc);
    if (err >= 0 && (*oc)->pb) err = (*oc)->pb->error;
    if (err < 0) rc = mio_av_error(err, "cannot finish the output");
  }
  int cerr = avio_closep(&(*oc)->pb);
  if (!rc && cerr < 0) rc = cu_error(cerr == AVERROR(ENOSPC) ? CU_ENOSPC : CU_EIO, "cannot close the output");
  avformat_free_context(*oc);
  *oc = NULL;
  return rc;
}

int mio_decoder(AVCodecContext **dec, const AVStream *st, int threads) {
  *dec = NULL;
  const AVCodec *c = avcodec_find_decoder(st->codecpar->codec_id);
  if (!c)
    return cu_error(CU_EUNSUPPORTED, "stream %d: libavcodec has no decoder for %s", st->index,
                    avcodec_get_name(st->codecpar->codec_id));
  if (!(*dec = avcodec_alloc_context3(c))) return cu_error(CU_EIO, "out of memory");
  int err = avcodec_parameters_to_context(*dec, st->codecpar);
  int channels = (*dec)->ch_layout.nb_channels;
  /* As ffmpeg's command line does (guess_input_channel_layout): audio whose
   * container names no layout gets the usual one for its channel count
   * before the decoder opens. A decoder that sets its own (libspeex: none)
   * is then believed, frame by frame, as ffmpeg believes it. */
  if (err >= 0 && c->type == AVMEDIA_TYPE_AUDIO && (*dec)->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC &&
      channels > 0)
    av_channel_layout_default(&(*dec)->ch_layout, channels);
  if (err >= 0) {
    (*dec)->pkt_timebase = st->time_base;
    (*dec)->thread_count = threads;
    AVDictionary *o = NULL;
    err = avcodec_open2(*dec, c, &o);
    av_dict_free(&o);
  }
  if (err < 0) {
    avcodec_free_context(dec);
    return mio_verdict(NULL, "libavcodec cannot open a decoder", err, NULL);
  }
  return 0;
}

void mio_progress(const mio_in *in, const AVPacket *pkt) {
  const media_ctl *ctl = in->io.ctl;
  double f;
  if (!ctl || !ctl->progress || pkt->stream_index < 0 ||
      (unsigned)pkt->stream_index >= in->ic->nb_streams)
    return;
  int64_t ts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
  if (in->ic->duration > 0) {
    if (ts == AV_NOPTS_VALUE) return;
    int64_t start = in->ic->start_time == AV_NOPTS_VALUE ? 0 : in->ic->start_time;
    AVRational tb = in->ic->streams[pkt->stream_index]->time_base;
    f = (double)(av_rescale_q(ts, tb, AV_TIME_BASE_Q) - start) / (double)in->ic->duration;
  } else if (pkt->pos >= 0 && in->io.size > 0) {
    /* A raw stream states no length and its packets carry no times: where
     * in the file the packet lies stands for how far the job is. (Not the
     * read position: opening reads up to 32 MiB ahead.) */
    f = (double)pkt->pos / (double)in->io.size;
  } else {
    return;
  }
  ctl->progress(ctl->progress_ud, f < 0 ? 0 : f > 1 ? 1 : f);
}

/* The rotation a player applies, carried as the same display matrix. */
int mio_copy_display_matrix(const AVStream *ist, AVStream *ost) {
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 29, 100)
  const AVPacketSideData *sd = av_packet_side_data_get(
      ist->codecpar->coded_side_data, ist->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  if (!sd || sd->size < 9 * sizeof(int32_t)) return 0;
  AVPacketSideData *out =
      av_packet_side_data_new(&ost->codecpar->coded_side_data, &ost->codecpar->nb_coded_side_data,
                              AV_PKT_DATA_DISPLAYMATRIX, sd->size, 0);
  if (!out) return cu_error(CU_EIO, "out of memory");
  memcpy(out->data, sd->data, sd->size);
#else
  size_t size = 0;
  const uint8_t *sd = av_stream_get_side_data(ist, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (!sd || size < 9 * sizeof(int32_t)) return 0;
  uint8_t *out = av_stream_new_side_data(ost, AV_PKT_DATA_DISPLAYMATRIX, size);
  if (!out) return cu_error(CU_EIO, "out of memory");
  memcpy(out, sd, size);
#endif
  return 0;
}

static bool aac_takes(const AVCodec *aac, int rate) {
  if (!aac->supported_samplerates) return true;
  for (const int *r = aac->supported_samplerates; *r; r++)
    if (*r == rate) return true;
  return false;
}

int mio_open_aac(const AVCodecContext *dec, int bitrate, int fallback_rate,
                 const AVFormatContext *oc, AVCodecContext **out) {
  int err;
  const AVCodec *aac = avcodec_find_encoder_by_name("aac");
  if (!aac) return cu_error(CU_EIO, "this libavcodec has no aac encoder");
  AVCodecContext *enc = *out = avcodec_alloc_context3(aac);
  if (!enc) return cu_error(CU_EIO, "out of memory");
  int rate = aac_takes(aac, dec->sample_rate) ? dec->sample_rate : fallback_rate;
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO, stereo = AV_CHANNEL_LAYOUT_STEREO;
  /* More than two channels are mixed down: a browser plays stereo. */
  if ((err = av_channel_layout_copy(&enc->ch_layout, dec->ch_layout.nb_channels >= 2 ? &stereo : &mono)) < 0)
    return mio_av_error(err, "cannot set the channel layout");
  enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
  enc->sample_rate = rate;
  enc->bit_rate = bitrate;
  enc->time_base = (AVRational){1, rate};
  enc->profile = FF_PROFILE_AAC_LOW;
  if (oc->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if ((err = avcodec_open2(enc, aac, NULL)) < 0) return mio_av_error(err, "cannot open the aac encoder");
  return 0;
}

int mio_add_stream(AVFormatContext *oc, const AVCodecContext *enc, AVStream **out) {
  AVStream *ost = *out = avformat_new_stream(oc, NULL);
  if (!ost) return cu_error(CU_EIO, "out of memory");
  int err = avcodec_parameters_from_context(ost->codecpar, enc);
  if (err < 0) return mio_av_error(err, "cannot describe the output stream");
  ost->time_base = enc->time_base;
  ost->sample_aspect_ratio = enc->sample_aspect_ratio;
  return 0;
}

int mio_fifo_frame(AVAudioFifo *fifo, const AVCodecContext *enc, bool last, AVFrame *frame,
                   int64_t *next_pts) {
  int fs = enc->frame_size, have = av_audio_fifo_size(fifo), err;
  if (have < fs && !(last && have > 0)) return 0;
  int n = have < fs ? have : fs;
  av_frame_unref(frame);
  frame->format = enc->sample_fmt;
  frame->sample_rate = enc->sample_rate;
  frame->nb_samples = n;
  if ((err = av_channel_layout_copy(&frame->ch_layout, &enc->ch_layout)) < 0 ||
      (err = av_frame_get_buffer(frame, 0)) < 0)
    return mio_av_error(err, "cannot allocate a frame");
  if (av_audio_fifo_read(fifo, (void **)frame->extended_data, n) < n)
    return cu_error(CU_EIO, "cannot read the audio buffer");
  frame->pts = *next_pts;
  *next_pts += n;
  return 1;
}

void mio_dur_push(mio_dur_ring *r, int64_t pts, int64_t dur, bool until_this) {
  if (until_this && r->n > 0) {
    size_t p = (size_t)((r->n - 1) % MIO_DUR_RING);
    r->dur[p] = pts - r->pts[p];
  }
  size_t i = (size_t)(r->n++ % MIO_DUR_RING);
  r->pts[i] = pts;
  r->dur[i] = dur;
}

int64_t mio_dur_find(const mio_dur_ring *r, int64_t pts, int64_t otherwise) {
  uint64_t n = r->n < MIO_DUR_RING ? r->n : MIO_DUR_RING;
  for (uint64_t k = 0; k < n; k++) {
    size_t i = (size_t)((r->n - 1 - k) % MIO_DUR_RING);
    if (r->pts[i] == pts) return r->dur[i];
  }
  return otherwise;
}

int mio_scale(mio_scaler *s, const AVFrame *f, AVFrame *out) {
  int range = f->color_range == AVCOL_RANGE_JPEG, cs = f->colorspace, err;
  if (f->width <= 0 || f->height <= 0 || f->format < 0) return 1;
  if (!s->sws || f->width != s->w || f->height != s->h || f->format != s->fmt || range != s->range ||
      cs != s->cs) {
    sws_freeContext(s->sws);
    s->sws = sws_getContext(f->width, f->height, f->format, out->width, out->height, out->format,
                            SWS_BICUBIC, NULL, NULL, NULL);
    if (!s->sws) return 1;
    s->w = f->width, s->h = f->height, s->fmt = f->format, s->range = range, s->cs = cs;
    const int *coef = sws_getCoefficients(cs == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : cs);
    sws_setColorspaceDetails(s->sws, coef, range, coef, 0, 0, 1 << 16, 1 << 16);
  }
  if ((err = av_frame_make_writable(out)) < 0) return mio_av_error(err, "cannot allocate a frame");
  if (sws_scale(s->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, out->data, out->linesize) <= 0)
    return 1;
  return 0;
}

int mio_same_values_in(const enum AVPixelFormat *list, int fmt) {
  const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)fmt);
  if (!list || !d) return AV_PIX_FMT_NONE;
  for (const enum AVPixelFormat *p = list; *p != AV_PIX_FMT_NONE; p++)
    if (*p == fmt) return fmt;
  int alpha = !!(d->flags & AV_PIX_FMT_FLAG_ALPHA), loss = 0;
  enum AVPixelFormat best = avcodec_find_best_pix_fmt_of_list(list, (enum AVPixelFormat)fmt, alpha, &loss);
  if (best == AV_PIX_FMT_NONE || loss || av_get_pix_fmt_loss((enum AVPixelFormat)fmt, best, alpha))
    return AV_PIX_FMT_NONE;
  return best;
}

int mio_rearrange(mio_arranger *a, const AVFrame *f, int fmt, AVFrame **out) {
  int err;
  const char *from = av_get_pix_fmt_name(f->format), *to = av_get_pix_fmt_name(fmt);
  if (!a->frame && !(a->frame = av_frame_alloc())) return cu_error(CU_EIO, "out of memory");
  AVFrame *o = a->frame;
  av_frame_unref(o);
  o->width = f->width, o->height = f->height, o->format = fmt;
  if ((err = av_frame_get_buffer(o, 0)) < 0) return mio_av_error(err, "cannot allocate a frame");
  a->sws = sws_getCachedContext(a->sws, f->width, f->height, f->format, f->width, f->height, fmt,
                                SWS_POINT | SWS_BITEXACT | SWS_ACCURATE_RND, NULL, NULL, NULL);
  if (!a->sws) return cu_error(CU_EIO, "swscale cannot rearrange %s as %s", from, to);
  if (sws_scale(a->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, o->data, o->linesize) <= 0)
    return cu_error(CU_EIO, "swscale failed to rearrange %s as %s", from, to);
  if ((err = av_frame_copy_props(o, f)) < 0) return mio_av_error(err, "cannot copy a frame's properties");
  *out = o;
  return 0;
}

void mio_arranger_free(mio_arranger *a) {
  sws_freeContext(a->sws);
  a->sws = NULL;
  av_frame_free(&a->frame);
}

void mio_scaler_free(mio_scaler *s) {
  sws_freeContext(s->sws);
  s->sws = NULL;
}
