/* Probing: what a file is, as libavformat sees it, as a JSON object.
 *
 * The answer depends only on the file's bytes and the libavformat version:
 * the file's name is never shown to libavformat (no guessing by extension),
 * no protocol is interpreted in the path, and nothing the file names
 * (playlist entries, external references) is ever opened. */
#ifndef MEDIA_PROBE_H
#define MEDIA_PROBE_H

#include <jansson.h>


/* Probes the regular file at path with libavformat, giving up after
 * timeout_sec seconds (<= 0: CU_PROBE_TIMEOUT_SEC).
 *
 * Returns 0 with *out a new JSON object, which the caller json_decref's,
 * both for media and for files that are not media. Keys (absent ones were
 * unknown or do not apply):
 *   "status"          "ok" or "unparseable"
 *   "reason"          unparseable only: a sentence for a person, e.g.
 *                     "libavformat cannot open it: Invalid data found when
 *                     processing input (moov atom not found)"
 *   "libavformat"     the library version that gave this answer, "59.27.100"
 *   "damaged"         unparseable only, true when libavformat recognises the
 *                     container but cannot read it (a truncated MP4)
 * and for "ok" only:
 *   "container", "container_long"   "mov,mp4,m4a,3gp,3g2,mj2", "QuickTime / MOV"
 *   "probe_score"     libavformat's confidence in the container, 1..100
 *   "duration_s", "start_time_s" (reals, seconds), "bit_rate" (bits/s)
 *   "nb_streams"      streams in the file; "streams" lists the first
 *                     CU_MAX_PROBE_STREAMS of them, each:
 *     "index", "type" ("video", "audio", "subtitle", "data", "attachment",
 *     "unknown"), "codec" ("h264"; "none" when unidentified), "profile",
 *     "bit_rate", "duration_s", "language", "tags", "tags_omitted",
 *     video: "width", "height", "pix_fmt", "frame_rate" and "avg_frame_rate"
 *       ("30000/1001"), "rotation" (degrees counter-clockwise, from a display
 *       matrix: a phone held upright says -90 or 90)
 *     audio: "sample_rate", "channels", "channel_layout" ("stereo")
 *   "tags"            the container's metadata, key -> string
 *   "tags_omitted"    how many tags were left out, when any were
 *   "creation_time"   the container's creation_time tag, else the first
 *                     stream's, as written in the file
 *   "make", "model"   from make/model, com.apple.quicktime.make/model or
 *                     com.android.manufacturer/model
 *   "location"        ISO 6709 ("+37.3318-122.0312/") from location,
 *                     com.apple.quicktime.location.ISO6709 or location-eng
 * Tags: at most CU_MAX_TAGS per dictionary and CU_MAX_PROBE_TAG_BYTES in
 * all; values cut to CU_MAX_TAG_VALUE bytes on a character boundary; keys
 * longer than that, repeated keys and keys or values that are not UTF-8 are
 * left out (and counted in "tags_omitted"). The original file keeps them.
 *
 * "ok" means at least one stream has a codec libavformat can identify. An
 * empty file, a file libavformat cannot open, or one with no identifiable
 * stream is "unparseable" with a reason.
 *
 * A non-zero return is our own failure, never a verdict on the file, and
 * leaves *out NULL: CU_ENOTFOUND (no such file), CU_EINVAL (NULL argument,
 * or not a regular file), CU_EIO (cannot be read, or the probe gave up at
 * the deadline, so a job may try again).
 *
 * Thread-safe: workers call it concurrently. The first call installs a
 * libav log callback (see media/README.md). */
int media_probe(const char *path, int timeout_sec, json_t **out);

#endif
