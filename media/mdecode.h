/* Decoding every frame of a file, and hashing a decoded frame the way
 * ffmpeg's framehash muxer does (internal to media/).
 *
 * Shared by the frame hashes (framehash.c) and the lossless check after a
 * master (master.c): both must see exactly the frames ffmpeg would decode,
 * so there is one loop. */
#ifndef MEDIA_MDECODE_H
#define MEDIA_MDECODE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libavcodec/avcodec.h>
#include <openssl/evp.h>

#include "mio.h"

/* Damage seen while decoding, kept for the record: how much, and where the
 * first few places were (a person looks there first). */
#define MDEC_MAX_ERRORS_LISTED 20

typedef struct {
  uint64_t packets_failed; /* the decoder refused the packet */
  uint64_t frames_damaged; /* decoded with concealment or marked corrupt */
  uint64_t read_errors;    /* the demuxer stopped early on bad data */
  uint64_t packets_corrupt; /* the demuxer marked a packet damaged (MPEG-TS
                               continuity errors: data is missing there) */
  json_t *where;           /* [{"stream", "pts_s", "what"}], at most MDEC_MAX_ERRORS_LISTED */
} mdec_errors;

#define MDEC_DRAIN_DTS 64

/* Timestamps as ffmpeg's command line sees them: every packet shifted by
 * an offset, and in formats with discontinuities (MPEG-TS) a jump of more
 * than 10 s from where a stream should continue moves the offset so the
 * timeline goes on from there. */
typedef struct {
  int64_t offset_us;
  int64_t last_ts_us;     /* of the last packet of any stream */
  int64_t *next_dts_us;   /* per stream: where it should continue */
  int64_t *last_dts_us;
  unsigned n;
  bool discont;           /* the format has discontinuities */
  /* ffmpeg's own clock of each video stream (InputStream's dts and
   * next_dts), on which it places a packet the container gives no dts: a
   * raw H.264 or HEVC stream has none at all. */
  int64_t *clock_dts_us, *clock_next_us;
  bool *clock_started;
  /* Draining a decoder at the end, ffmpeg gives a video frame without a
   * timestamp the clock's dts of the oldest drain call not yet used (its
   * dts_buffer); streams are drained one after another. */
  int drain_stream, ndrain_dts;
  int64_t drain_dts[MDEC_DRAIN_DTS];
} mdec_ts;

int mdec_ts_init(mdec_ts *t, const AVFormatContext *ic, int64_t offset_us);
void mdec_ts_free(mdec_ts *t);
/* Shifts pkt; returns the jump (microseconds) a discontinuity evened out
 * here, 0 if none. */
int64_t mdec_ts_apply(mdec_ts *t, const AVFormatContext *ic, AVPacket *pkt);

/* Before a video packet (through mdec_ts_apply) is decoded by dec, or
 * copied (dec NULL): ffmpeg's clock comes to it, and a packet without a dts
 * gets the clock's. */
void mdec_ts_clock_in(mdec_ts *t, const AVFormatContext *ic, const AVCodecContext *dec, AVPacket *pkt);
/* After it: the clock moves on by the packet's duration, or (pkt NULL, a
 * frame drained at the end) by one frame at dec's frame rate. */
void mdec_ts_clock_on(mdec_ts *t, const AVFormatContext *ic, const AVCodecContext *dec, int stream,
                      const AVPacket *pkt);

/* For a video frame drained from dec at the end of the input: a frame
 * without a timestamp gets one as ffmpeg gives it; the clock moves on. */
void mdec_ts_drained(mdec_ts *t, const AVFormatContext *ic, const AVCodecContext *dec, int stream, AVFrame *f);

/* Records damage at stream (-1: the container) and ts (in the stream's
 * time base, or AV_NOPTS_VALUE). */
void mdec_errors_note(mdec_errors *e, const AVFormatContext *ic, int stream, int64_t ts,
                      const char *what);
/* Counts and places a packet the demuxer marked damaged, if pkt is. */
void mdec_errors_packet(mdec_errors *e, const AVFormatContext *ic, const AVPacket *pkt);
/* {"packets_failed", "frames_damaged", "packets_corrupt", "read_errors",
 *  "where": [...]} */
json_t *mdec_errors_json(const mdec_errors *e);

/* Called for each decoded frame of a selected stream, in decode order; the
 * frame's pts is its best-effort timestamp, with ts_offset applied. Non-zero
 * stops the loop and is returned. */
typedef int (*mdec_frame_fn)(void *ud, int stream, AVFrame *frame);
/* Called for each packet read of a selected stream, before it is decoded
 * (pts/dts already offset); may be NULL. */
typedef void (*mdec_packet_fn)(void *ud, int stream, const AVPacket *pkt);

/* A decoded video frame as the frame hashes and the lossless check need it:
 * where it sits, and the SHA-256 of its pixels (see mdec_hash_video). */
typedef struct {
  int64_t pts;           /* best-effort timestamp, ts_offset applied */
  int64_t pkt_duration;  /* of the packet it came with, 0 if none */
  int width, height;
  AVRational sar;
  int size;              /* bytes hashed */
  unsigned char h[32];
} mdec_vframe;

/* Called instead of on_frame for video frames when set. Non-zero stops the
 * loop and is returned. */
typedef int (*mdec_vframe_fn)(void *ud, int stream, const mdec_vframe *v);

/* mdec_run's answer when a parallel decode found the file unlike what one
 * continuous decode would give (see mdecode_par.c): nothing it delivered
 * counts; start again with a fresh consumer and parallel off. */
#define MDEC_AGAIN 2

typedef struct {
  mio_in *in;
  const bool *selected;    /* per input stream */
  int64_t ts_offset;       /* AV_TIME_BASE units, added to every timestamp */
  mdec_ts ts;
  int threads;             /* decoder threads; 0 = auto */
  mdec_frame_fn on_frame;
  mdec_vframe_fn on_video; /* may be NULL: video goes to on_frame */
  /* With on_video: the one video stream may be decoded in segments that
   * start at IDR pictures, on as many threads as there are cores. */
  bool parallel;
  int segments;            /* out: how many segments, 0 if decoded in one pass */
  mdec_packet_fn on_packet;
  void *ud;
  /* Per input stream, may be NULL: video frames are hashed as this pixel
   * format (-1: as decoded), rearranged by mio_rearrange; a master's FFV1
   * holding RGB as bgr0 is checked as the original's RGB. Not with
   * parallel. */
  const int *as_pix_fmt;
  mio_arranger *arr;       /* per input stream, for as_pix_fmt */
  AVCodecContext **dec;    /* per input stream, opened by mdec_open */
  mdec_errors err;
  bool draining;           /* the decoders are being drained at the end */
} mdec;

/* Opens a decoder for every selected stream. */
int mdec_open(mdec *d);
/* Reads, decodes and calls back until the end of the file (a read error
 * ends it too, counted in err), then drains the decoders. */
int mdec_run(mdec *d);
void mdec_close(mdec *d);

/* For mdecode_par.c: sends pkt (NULL: the end) to stream s's decoder and
 * hands every frame it gives to the callbacks, as mdec_run does. */
int mdec_send(mdec *d, int s, const AVPacket *pkt, AVFrame *f);
/* Makes v from a decoded video frame (hashing its pixels). */
int mdec_vframe_of(const AVFrame *f, mdec_vframe *v);
/* mdecode_par.c: MDEC_AGAIN when the file does not allow it, else as mdec_run. */
int mdec_run_parallel(mdec *d, int vstream);
/* The selected stream mdec_run_parallel would split, or -1. */
int mdec_parallel_stream(const mdec *d);

/* The SHA-256 of a decoded video frame's pixels packed with no padding
 * (av_image_copy_to_buffer with align 1, palette included): the bytes the
 * rawvideo encoder gives ffmpeg's framehash muxer. *size is their count. */
int mdec_hash_video(const AVFrame *f, unsigned char out[32], int *size);

/* Whether a and b can be hashed together by mdec_hash_video_pair: the same
 * shape, and a CPU with SHA instructions (sha2x.h). */
bool mdec_hash_pair_possible(const AVFrame *a, const AVFrame *b);
/* mdec_hash_video of two frames at once, nearly twice as fast. */
int mdec_hash_video_pair(const AVFrame *a, const AVFrame *b, unsigned char ha[32], unsigned char hb[32],
                         int *size);

/* A SHA-256 context from OpenSSL (libavutil's does not use the CPU's SHA
 * instructions; OpenSSL's is several times faster). */
EVP_MD_CTX *mdec_sha256_new(void);

/* Adds a decoded audio frame's samples to c in their own sample format,
 * interleaved (planar formats are interleaved first), so the digest does
 * not depend on how the stream was cut into frames. Samples before
 * from_sample are left out. */
int mdec_hash_audio_update(EVP_MD_CTX *c, const AVFrame *f, int from_sample);

#endif
