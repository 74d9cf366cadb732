/* Clips: a part of a recording for a reviewer, as an MP4 with its index
 * first (faststart), so a browser plays it at once.
 *
 * Two ways to cut, because evidence and convenience pull apart:
 *   copy   the original's own packets, byte for byte, from the keyframe at
 *          or before start (a clip cannot start between keyframes without
 *          re-encoding). Fast: the index is used to seek, only the range
 *          is read. Checked at once: the clip is read back and each packet
 *          must be the original's, in the same order.
 *   exact  frame-accurate: decoded from that keyframe and re-encoded from
 *          the first frame at or after start (libx264 + AAC-LC). Nothing in
 *          it is the original's bytes, and the report says so.
 * media_clip_check_frames() is the slower, independent check a background
 * job runs on a clip: every decoded frame against the original's frame
 * hashes. */
#ifndef MEDIA_CLIP_H
#define MEDIA_CLIP_H

#include <stdint.h>

#include <jansson.h>

#include "media.h"

typedef enum { MEDIA_CLIP_COPY, MEDIA_CLIP_EXACT } media_clip_mode;

typedef struct {
  /* From the start of the recording: 0 = the input's start_time, as
   * ffmpeg's input -ss counts. start >= 0, end > start. */
  int64_t start_us, end_us;
  media_clip_mode mode;
  int threads; /* decoder and encoder threads; 0 = libav's choice */
} media_clip_opts;

/* Writes the clip of in (hostile input) to out (created or truncated): the
 * first video stream (not a cover picture) and the first audio stream. An
 * input with audio only gives an audio-only MP4 (copy) or M4A (exact).
 * ctl may be NULL. Progress is the share of the range done (in copy mode,
 * writing is the first half and the check the second).
 *
 * Range: end past the end of the recording is moved to its end (the report
 * says so); copy mode's last frames may reach a little past end when a
 * frame before end is predicted from them (B-frames), so the clip decodes.
 *
 * Returns 0 with *report a new object (caller json_decref's); times are
 * seconds from the start of the recording unless named otherwise:
 *   "mode"                  "copy" | "exact"
 *   "requested_start_s", "requested_end_s"
 *   "end_clamped"           true when end was past the end (then
 *                           "requested_end_s" is what was asked)
 *   "recording_duration_s"  when the input declares one
 *   "actual_start_s"        copy: the keyframe's time; exact: the first
 *                           frame's (the first at or after start)
 *   "actual_end_s", "duration_s" (of the clip)
 *   "streams"   [{"index_in_original", "type", "codec", "packets" (in the
 *               clip), "start_s" and "end_s" (in the clip's own time, 0 =
 *               its start), "timestamps_fixed" (copy: packets whose
 *               decoding time had to be moved to keep it rising, if any),
 *               "source_codec" (exact: the original's codec)}]
 *   "left_out"  [{"index_in_original", "type", "codec"}]: streams of the
 *               original the clip does not carry (absent when none)
 *   "check"     copy:  {"method": "packets", "packets_checked",
 *                       "identical": true, "normalised" (when the MP4
 *                       muxer had to repack the original's packets:
 *                       {"<index_in_original>": "annex_b_to_length_prefixed"
 *                       | "adts_header_removed"}, the payload then compared
 *                       without the packing)}
 *               exact: {"method": "none", "claimed_frames": 0, "reason"}
 *   "params"    copy:  {"container": "mp4", "faststart": true,
 *                       "seek": "keyframe_at_or_before_start"}
 *               exact: {"container": "mp4"|"ipod", "faststart": true,
 *                       "video": "libx264", "crf": 18, "preset":
 *                       "veryfast", "pix_fmt": "yuv420p", "width",
 *                       "height", "audio": "aac", "audio_profile": "LC",
 *                       "audio_bitrate": 192000, "audio_sample_rate",
 *                       "audio_channels"} (video or audio keys only when
 *                       that stream is in the clip)
 *   "video_frames", "audio_frames" (exact: frames written),
 *   "decode_errors" (exact: packets or frames that did not decode)
 * Errors as in media.h, and:
 *   CU_EINVAL        bad range (negative start, end <= start, start at or
 *                    past the end: the message states the recording's
 *                    duration) or options; nothing is written
 *   CU_EUNSUPPORTED  not media, a still image, no audio or video stream, a
 *                    stream without timestamps (a raw elementary stream),
 *                    or (copy) a codec the MP4 muxer cannot carry (PCM,
 *                    FFV1, ...): the message says to use mode=exact
 *   CU_ECORRUPT      damaged beyond clipping, or the copy-mode check found
 *                    a difference (the message names stream and packet) */
int media_clip(const char *in, const char *out, const media_clip_opts *o, const media_ctl *ctl,
               json_t **report);

/* Most frames a clip may have for media_clip_check_frames: their hashes are
 * held in memory (32 bytes each, and the search table): 4.6 hours at 60
 * frames a second, some 48 MiB. */
#define MEDIA_CLIP_CHECK_MAX_FRAMES 1000000

/* Decodes the clip's first video stream and checks each frame's SHA-256
 * against the original's framehash file (ffmpeg framehash text with SHA256
 * hashes, as media/framehash.c writes it; the lines of its first video
 * stream are used). Finds where the clip's first frame sits in the
 * original (the first place all of the clip's frames follow one another,
 * so repeated pictures do not mislead it) and requires every clip frame to
 * match, consecutively. Slow (decodes): meant for a background job.
 *
 * Returns 0 with *report: {"method": "framehash", "identical": true,
 * "frames_checked", "first_original_frame" and "last_original_frame"
 * (0-based among the original's video lines), "first_original_pts_s",
 * "original_frames" (video lines in the file), "framehash_stream"}.
 * CU_ECORRUPT when a frame differs: the message names the clip's first
 * frame that does not follow on (its index and time) and the original
 * frame it should have been; also when the framehash file is damaged.
 * CU_EUNSUPPORTED when the clip has no video or the framehash file lists
 * no video stream or is not SHA-256; CU_ETOOBIG beyond
 * MEDIA_CLIP_CHECK_MAX_FRAMES. Other errors as in media.h. */
int media_clip_check_frames(const char *clip, const char *framehash_path, const media_ctl *ctl,
                            json_t **report);

#endif
