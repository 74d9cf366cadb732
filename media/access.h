/* The access copy: what a reviewer watches in a browser. H.264 (libx264,
 * yuv420p) + AAC-LC in MP4 with the moov box first (faststart), scaled so
 * the longest side is at most max_side pixels (never scaled up). An input
 * with audio only gives AAC-LC in M4A. */
#ifndef MEDIA_ACCESS_H
#define MEDIA_ACCESS_H

#include <jansson.h>

#include "media.h"

typedef struct {
  int max_side;       /* longest side in pixels; 0 = 1280 */
  int crf;            /* libx264 CRF; 0 = 23 */
  const char *preset; /* libx264 preset; NULL = "veryfast" */
  int audio_bitrate;  /* bits/s; 0 = 128000 */
  int threads;        /* encoder and decoder threads; 0 = the number of cores */
} media_access_opts;

/* Makes the access copy of src (hostile input) at dst (created or
 * truncated). opts and ctl may be NULL (defaults; no deadline).
 *
 * The first video stream and the first audio stream are used; timestamps
 * (variable frame rate included) are kept, rotation is kept as a display
 * matrix, and the output starts at 0.
 *
 * Returns 0 with *report a new object (caller json_decref's):
 *   "params"   {"video": "libx264", "crf", "preset", "max_side",
 *               "audio": "aac", "audio_bitrate", "container": "mp4"|"ipod",
 *               "faststart": true}
 *   "width", "height" (of the output video, absent without video),
 *   "video_frames", "audio_frames", "duration_s", "decode_errors"
 * Errors as in media.h: CU_EUNSUPPORTED when src is not media, is a still
 * image (it needs none), or has neither a video nor an audio stream a
 * decoder exists for; CU_ECORRUPT
 * when it is damaged media that cannot be opened or of which not one frame
 * decodes (the reason in cu_errmsg); CU_EINVAL for options out of range.
 * Damaged packets are skipped and counted in decode_errors. */
int media_access(const char *src, const char *dst, const media_access_opts *opts,
                 const media_ctl *ctl, json_t **report);

#endif
