/* Media input and output shared by every operation in media/ (internal:
 * never included outside this folder, since it exposes libav types).
 *
 * Every input is hostile: the file is opened here and its bytes reach
 * libavformat through our own AVIOContext, so libavformat never sees the
 * path (no "concat:" or "http:" read as a protocol, no demuxer picked by
 * extension) and every nested open (playlists, references) is refused.
 * A deadline is checked in the read callback and the interrupt callback,
 * so no input can hold a worker for ever. */
#ifndef MEDIA_MIO_H
#define MEDIA_MIO_H

#include <stdbool.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>

#include "media.h"

typedef struct {
  int fd;
  int64_t size;
  int64_t deadline_us; /* on cu_mono_us()'s clock; 0 = none */
  const media_ctl *ctl; /* may be NULL */
  bool timed_out, cancelled;
  int read_errno;    /* first failure of read() on the file, else 0 */
  bool refused_open; /* the file named another file or a URL */
} mio_io;

typedef struct {
  mio_io io;
  AVIOContext *avio;
  AVFormatContext *ic;
} mio_in;

/* Installs the libav log callback (once per process). */
void mio_init(void);

/* Opens path as hostile input and reads its stream parameters (at most
 * 32 MiB or 30 s of media: enough for high-bit-rate 4K footage, and never a
 * whole file). in is zeroed first.
 *   0                the streams are known
 *   CU_EUNSUPPORTED  not media: cu_errmsg() is the reason a person reads
 *                    ("the file is empty", "libavformat cannot open it:
 *                    Invalid data found when processing input")
 *   CU_ECORRUPT      media libavformat recognises, but damaged ("it is
 *                    QuickTime / MOV, but damaged: ... (moov atom not
 *                    found)")
 *   CU_ENOTFOUND, CU_EINVAL (not a regular file), CU_EIO (read failure,
 *   deadline passed, cancelled): our failures.
 * mio_close() is safe after any return. */
int mio_open(mio_in *in, const char *path, const media_ctl *ctl, int64_t deadline_us);
void mio_close(mio_in *in);

/* Checks the deadline and the cancel flag now (they are otherwise seen
 * only when libavformat reads, which a buffered file does not need): true
 * when the work must stop; mio_own_failure() then says why. */
bool mio_stopped(mio_io *io);

/* A libav failure of our own making (out of memory, an encoder, the
 * disk): "what: <av_strerror>", CU_ENOSPC for a full disk, else CU_EIO. */
int mio_av_error(int err, const char *what);

/* The size of a w x h picture scaled so its longest side is at most
 * max_side, never larger than it is, both sides even (4:2:0 needs it); the
 * short side is rounded to the nearest even size, which keeps the aspect
 * ratio closest. */
void mio_fit(int64_t w, int64_t h, int max_side, int *ow, int *oh);

/* A photograph: what an image demuxer (jpeg_pipe, png_pipe, image2, ...)
 * reads, unless the file (path, opened as in) is pictures of one size one
 * after another, which is video (an IP camera's MJPEG stream). It is its
 * own master and needs no access copy. */
bool mio_still_image(const mio_in *in, const char *path);

/* Our failure after a libav call (read error, deadline, cancel), as a
 * CU_EIO error with what was being done; 0 if none. */
int mio_own_failure(const mio_io *io, const char *doing);

/* The verdict when libav gave up with err while doing what: "what: <av
 * strerror>" and the first libav message logged on this thread since
 * mio_capture_begin(). Returns CU_EUNSUPPORTED. */
int mio_verdict(const mio_io *io, const char *what, int err, const char *why);

/* While active on a thread, libav's first error message on that thread is
 * kept (for a verdict) instead of logged. */
void mio_capture_begin(void);
const char *mio_capture_first(void);
void mio_capture_end(void);

/* An output file the caller names (a path of ours, in the work directory):
 * oc for the named muxer, opened for writing. */
int mio_out_open(AVFormatContext **oc, const char *path, const char *format);
/* Writes the trailer (unless failed), closes and frees; sets *oc NULL.
 * Returns the trailer's error as ours. */
int mio_out_close(AVFormatContext **oc, bool failed);

/* A decoder for st, opened with threads (0 = auto) and the stream's
 * parameters; CU_EUNSUPPORTED when libavcodec has none for it. */
int mio_decoder(AVCodecContext **dec, const AVStream *st, int threads);

/* The progress share of a packet's time within the input's duration (of
 * its place in the file, for a raw stream, which states no duration). */
void mio_progress(const mio_in *in, const AVPacket *pkt);

/* Encoders for the MP4s a browser plays (access copies, exact clips). */

/* Opens an AAC-LC encoder for what dec decodes: its sample rate if AAC
 * takes it, else fallback_rate; more than two channels mixed to stereo;
 * planar float (what the aac encoder takes); global header when oc needs it. */
int mio_open_aac(const AVCodecContext *dec, int bitrate, int fallback_rate,
                 const AVFormatContext *oc, AVCodecContext **enc);
/* Adds an output stream to oc described by the open encoder enc. */
int mio_add_stream(AVFormatContext *oc, const AVCodecContext *enc, AVStream **ost);
/* Fills frame with the next whole encoder frame of samples from fifo (with
 * last, a short one from what is left), stamped *next_pts, which advances.
 * 1 when a frame was filled, 0 when the fifo has not enough, or an error. */
int mio_fifo_frame(AVAudioFifo *fifo, const AVCodecContext *enc, bool last, AVFrame *frame,
                   int64_t *next_pts);

/* The duration of each frame sent to libx264, found again by pts when its
 * packet comes out: libx264 hands packets back late (lookahead, B-frames,
 * frame threads) and without their durations. MIO_DUR_RING is well past
 * its delay. */
#define MIO_DUR_RING 512
typedef struct {
  int64_t pts[MIO_DUR_RING], dur[MIO_DUR_RING];
  uint64_t n;
} mio_dur_ring;
/* Remembers a frame. With until_this, the frame before it lasts until this
 * one's pts, whatever it was given. */
void mio_dur_push(mio_dur_ring *r, int64_t pts, int64_t dur, bool until_this);
/* The duration of the frame at pts, or otherwise if it is not remembered. */
int64_t mio_dur_find(const mio_dur_ring *r, int64_t pts, int64_t otherwise);

/* A swscale context for frames of one shape into an encoder's frames,
 * made again when the input's size, format, range or matrix changes. */
typedef struct {
  struct SwsContext *sws;
  int w, h, fmt, range, cs; /* what sws was made for */
} mio_scaler;
/* Scales f into out, whose width, height and format are the encoder's and
 * whose buffers are allocated. Full-range input (cameras' JPEG range) is
 * squeezed into video range. 0 done; 1 f cannot be scaled (a pixel format
 * swscale cannot read, or damage), to be counted as a decode error; < 0 an
 * error. */
int mio_scale(mio_scaler *s, const AVFrame *f, AVFrame *out);
void mio_scaler_free(mio_scaler *s);

/* Of the pixel formats in list (AV_PIX_FMT_NONE ended), fmt itself, else
 * the one that holds fmt's values exactly in another arrangement (rgb24 as
 * bgr0, yuyv422 as yuv422p): libavutil counts no loss either way, so every
 * frame can be turned back. AV_PIX_FMT_NONE if none does. */
int mio_same_values_in(const enum AVPixelFormat *list, int fmt);
/* Frames rearranged into another pixel format mio_same_values_in chose:
 * a swscale context and the frame it writes, both made on first use. */
typedef struct {
  struct SwsContext *sws;
  AVFrame *frame;
} mio_arranger;
/* f rearranged as fmt, at its size, with its properties (pts, aspect
 * ratio), in *out (a->frame, valid until the next call): no scaling, no
 * dithering. 0 done, < 0 an error. */
int mio_rearrange(mio_arranger *a, const AVFrame *f, int fmt, AVFrame **out);
void mio_arranger_free(mio_arranger *a);

/* Copies the display matrix (rotation) of in to out, if it has one. */
int mio_copy_display_matrix(const AVStream *in, AVStream *out);

#endif
