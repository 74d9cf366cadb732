/* Clips as renditions: a reviewer's request for a part of a recording
 * (range and mode) names a rendition, kind "clip:<mode>:<start ms>:<end
 * ms>". The first request makes it (media_clip, with its packet check in
 * copy mode), stores it write-once and records it with a "rendition"
 * event; every later request gets the same bytes. Two requests for the
 * same clip at once make it once: the second waits for the first. */
#ifndef CLIP_MAKE_H
#define CLIP_MAKE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "rendition_job.h"

typedef struct {
  bool exact;                 /* mode=exact (re-encoded); else copy */
  int64_t start_ms, end_ms;   /* from the start of the recording */
} clip_request;

#define CLIP_KIND_LEN 64
/* "clip:copy:90000:120000" (a rendition kind is [a-z0-9_:]) */
void clip_kind(const clip_request *q, char out[CLIP_KIND_LEN]);
/* The inverse, for kinds read back; false if kind is not a clip's. */
bool clip_kind_parse(const char *kind, clip_request *q);

/* The done record of the clip (made now if need be). actor (who asked) is
 * recorded on a new clip. cancel stops a clip being made (shutdown).
 * Errors: CU_EINVAL (range), CU_EUNSUPPORTED (copy of a codec MP4 cannot
 * carry, not media), CU_ECORRUPT (damaged, or the check failed), others. */
int clip_get_or_make(rendition_ctx *c, const char *evidence_id, const clip_request *q,
                     const json_t *actor, const atomic_int *cancel, json_t **rec);

/* The "clip_check" job ({evidence, clip: kind}), queued with each new
 * copy-mode clip that has video: decodes the clip and checks every frame
 * against the original's frame hashes (media_clip_check_frames), then sets
 * the clip record's "frame_check" {state: passed | failed | not_possible,
 * frames_checked, first_original_frame, ...} with a "clip_checked" event.
 * While the frame hashes are still being made it fails with CU_EBUSY, to
 * be retried. */
int clip_check_job_run(void *ud, const char *job_id, const json_t *job);

#endif
