/* Frame hashes: the SHA-256 of every decoded frame of a recording, in the
 * text format of ffmpeg's framehash muxer, so that a court's expert can
 * reproduce it with a tool they trust:
 *
 *   ffmpeg -i IN -map 0:V? -map 0:a? -f framehash -hash sha256 OUT
 *
 * (every video stream that is not a cover picture, then every audio
 * stream). With the same libraries the text is identical line for line;
 * across builds, lossy audio decoders may differ (docs/ARCHITECTURE.md).
 * One deliberate difference: when a video stream's picture size changes
 * mid-stream, ffmpeg scales the later frames to the first size before
 * hashing them; we hash every frame as it decodes, and the report counts
 * those frames ("frames_of_another_size"). */
#ifndef MEDIA_FRAMEHASH_H
#define MEDIA_FRAMEHASH_H

#include <jansson.h>

#include "media.h"

/* Writes the frame hashes of src (hostile input) to dst (created or
 * truncated). ctl may be NULL.
 *
 * Returns 0 with *report (caller json_decref's):
 *   "params"         {"hash": "sha256", "format_version": 2, "command": the
 *                    equivalent ffmpeg command line}
 *   "streams"        [{"index" (in the file), "type", "frames" (lines),
 *                    "decoded_frames" (video: frames decoded; more than
 *                    "frames" when ffmpeg's frame-rate logic dropped some),
 *                    "frames_of_another_size" (when the picture size
 *                    changed mid-stream)}]
 *   "decode_errors"  {"packets_failed", "frames_damaged", "packets_corrupt"
 *                    (marked damaged by the container: data missing there),
 *                    "read_errors", "where": [{"stream", "pts_s", "what"}]
 *                    (the first 20)}
 *   "audio_sha256"   {"<index in the file>": one SHA-256 over the stream's
 *                    decoded samples in their own format, interleaved}
 * Damage is recorded, not fatal: the hashes of what decodes are the
 * evidence of what the file holds. CU_EUNSUPPORTED when src cannot be
 * opened or has no audio or video stream to decode. */
int media_framehash(const char *src, const char *dst, const media_ctl *ctl, json_t **report);

#endif
