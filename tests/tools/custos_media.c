/* custos-media: runs one media/ operation on files, for tests and
 * benchmarks that need the library without a server.
 *
 *   custos-media framehash|master|access|poster|probe IN OUT
 *   custos-media master IN OUT FRAMEHASH REPORT   (the check against the
 *                original's frame hashes: media_framehash's file and its
 *                JSON report, as the server's master job does)
 *   custos-media clip IN OUT START END copy|exact   (START, END: seconds
 *                from the start of the recording, decimals allowed)
 *   custos-media clipcheck CLIP FRAMEHASH   (the clip's frames against the
 *                original's frame hashes)
 *
 * Prints the operation's JSON report on stdout; exit 0 on success, 3 when
 * the input was judged (CU_EUNSUPPORTED, CU_ECORRUPT), 1 otherwise. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "clip.h"
#include "err.h"
#include "framehash.h"
#include "master.h"
#include "poster.h"
#include "probe.h"

/* Seconds as a decimal number ("3.1", "90"), into microseconds. */
static int parse_seconds(const char *s, int64_t *us) {
  char *end;
  double d = strtod(s, &end);
  if (end == s || *end || !isfinite(d) || d < -1e9 || d > 1e9) return -1;
  *us = llround(d * 1e6);
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: custos-media framehash|master|access|poster|probe IN [OUT]\n"
                  "       custos-media master IN OUT FRAMEHASH REPORT\n"
                  "       custos-media clip IN OUT START END copy|exact\n"
                  "       custos-media clipcheck CLIP FRAMEHASH\n");
  return 2;
}

int main(int argc, char **argv) {
  bool is_clip = argc == 7 && !strcmp(argv[1], "clip");
  if (argc != 4 && !(argc == 3 && !strcmp(argv[1], "probe")) && !(argc == 6 && !strcmp(argv[1], "master")) &&
      !is_clip)
    return usage();
  const char *op = argv[1], *in = argv[2], *out = argv[3];
  json_t *rep = NULL;
  int rc;
  if (!strcmp(op, "framehash")) rc = media_framehash(in, out, NULL, &rep);
  else if (!strcmp(op, "master") && argc == 6) {
    json_error_t e;
    json_t *fr = json_load_file(argv[5], 0, &e);
    if (!fr) {
      fprintf(stderr, "custos-media: cannot read %s: %s\n", argv[5], e.text);
      return 2;
    }
    media_reference ref = {argv[4], fr};
    media_master_opts mo = {.reference = &ref};
    rc = media_master(in, out, NULL, &mo, NULL, &rep);
    json_decref(fr);
  } else if (!strcmp(op, "master")) rc = media_master(in, out, NULL, NULL, NULL, &rep);
  else if (!strcmp(op, "access")) rc = media_access(in, out, NULL, NULL, &rep);
  else if (!strcmp(op, "poster")) rc = media_poster(in, out, 0, NULL, &rep);
  else if (!strcmp(op, "probe")) rc = media_probe(in, 0, &rep);
  else if (is_clip) {
    media_clip_opts co = {0};
    if (parse_seconds(argv[4], &co.start_us) || parse_seconds(argv[5], &co.end_us) ||
        (strcmp(argv[6], "copy") && strcmp(argv[6], "exact")))
      return usage();
    co.mode = !strcmp(argv[6], "copy") ? MEDIA_CLIP_COPY : MEDIA_CLIP_EXACT;
    rc = media_clip(in, out, &co, NULL, &rep);
  } else if (!strcmp(op, "clipcheck")) rc = media_clip_check_frames(in, out, NULL, &rep);
  else {
    fprintf(stderr, "custos-media: unknown operation %s\n", op);
    return 2;
  }
  if (rc) {
    fprintf(stderr, "custos-media: %s: %s\n", op, cu_errmsg());
    return rc == CU_EUNSUPPORTED || rc == CU_ECORRUPT ? 3 : 1;
  }
  json_dumpf(rep, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
  putchar('\n');
  json_decref(rep);
  return 0;
}
