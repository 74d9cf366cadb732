/* The archival master: Matroska, stream by stream, checked lossless.
 *
 * A stream whose codec is on the archival allow-list (h264, hevc, av1, vp9,
 * mpeg4, mjpeg, aac, mp3, opus, flac, pcm_*) is copied packet for packet.
 * Any other video becomes FFV1 version 3 (every frame a keyframe, slice
 * CRCs, range coder), any other audio FLAC, when their decoded pixels or
 * samples fit losslessly; when they do not (float samples, an exotic pixel
 * format), a stream Matroska can carry is copied instead, and the report
 * says why. Subtitle and data streams are copied when Matroska can carry
 * them, else left out (the original keeps them) and named in the report.
 *
 * Then the check that makes a transcode safe for evidence: the master is
 * decoded and every video frame's SHA-256 must be the original's, frame by
 * frame, and every audio stream must decode to the same samples (one
 * SHA-256 over each stream's samples). The original's side comes from its
 * frame hashes when given (media_reference), else it is decoded alongside. */
#ifndef MEDIA_MASTER_H
#define MEDIA_MASTER_H

#include <jansson.h>

#include "media.h"

/* The original's frame hashes, as media_framehash wrote them (its file and
 * its report), when they are known already: the check then decodes only
 * the copy and compares it with them. Used when they list every decoded
 * video frame (ffmpeg's frame-rate logic can drop a line) and a digest of
 * every audio stream; otherwise the original is decoded too. */
typedef struct {
  const char *path;
  const json_t *report;
} media_reference;

typedef struct {
  int threads; /* encoder and decoder threads; 0 = the number of cores */
  const media_reference *reference; /* may be NULL */
} media_master_opts;

/* Makes the master of src at dst (created or truncated) and checks it.
 * src_sha256 (may be NULL) and the source's container tags are written
 * into the Matroska tags (CUSTOS_SOURCE_SHA256). opts and ctl may be NULL.
 *
 * Returns 0 with *report (caller json_decref's):
 *   "params"   {"container": "matroska", "ffv1": {...} and "flac": {...}
 *              when used: the encoder settings}
 *   "streams"  [{"index", "type", "codec", "action": "copy"|"ffv1"|"flac"|
 *              "dropped", "reason" (why not the usual action)}]
 *   "check"    {"result": "identical", "method", "video_frames": {"<index>": n},
 *              "audio_sha256": {"<index>": hex}, "priming_kept": {"<index>":
 *              samples}: leading encoder-delay samples the source marks to
 *              be skipped, which a Matroska master keeps (the rest of the
 *              stream is identical)}
 *   "timestamp_corrections" [{"stream", "at_s", "shift_s"}] where a
 *              timestamp jump backwards (an MPEG-TS discontinuity) had to
 *              be evened out, Matroska needing rising timestamps
 *   "decode_errors" as in framehash.h
 * CU_EUNSUPPORTED when src has no audio or video stream (subtitles or data
 * alone): there is nothing a master would keep better than the original.
 * A still image (a photograph) is its own master: nothing is written to
 * dst and the report is {"params": {"kept_as": "original"}, "reason"}.
 * The master is written bit-exact (no random ids, dates or library names),
 * so the same original always gives the same bytes.
 * CU_ECORRUPT when the check finds a difference: cu_errmsg() names the
 * stream and the first frame (index and time) that differs. Other errors
 * as in media.h. */
int media_master(const char *src, const char *dst, const char *src_sha256,
                 const media_master_opts *opts, const media_ctl *ctl, json_t **report);

/* The check on its own: decodes the copy, and the original alongside unless
 * ref (may be NULL) holds its frame hashes. map[i] is
 * the copy's stream for the original's stream i (-1: none), for i < nmap;
 * video and audio streams in the map are compared. threads: decoder
 * threads (0 = auto). Returns 0 with *result the "check" object above, or
 * CU_ECORRUPT naming the first difference ("not lossless: ..."). */
int media_check_lossless(const char *original, const char *copy, const int *map, int nmap,
                         int threads, const media_reference *ref, const media_ctl *ctl,
                         json_t **result);

#endif
