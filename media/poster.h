/* The poster frame: one JPEG a reviewer's page shows for a recording. */
#ifndef MEDIA_POSTER_H
#define MEDIA_POSTER_H

#include <jansson.h>

#include "media.h"

/* Writes a baseline JPEG (yuvj420p, longest side at most max_side; 0 =
 * 640, never scaled up) of the first video frame at or after 1 s into the
 * recording, or of the first frame if it is shorter, to dst. Rotation is
 * applied, so the picture stands the way it was filmed. ctl may be NULL.
 *
 * Returns 0 with *report {"width", "height", "pts_s", "params": {"codec":
 * "mjpeg", "max_side", "at_s"}}. CU_EUNSUPPORTED when src has no video
 * stream that decodes to at least one frame. */
int media_poster(const char *src, const char *dst, int max_side, const media_ctl *ctl,
                 json_t **report);

#endif
