/* custos-media: runs one media/ operation on files, for tests and
 * benchmarks that need the library without a server.
 *
 *   custos-media framehash|master|access|poster|probe IN OUT
 *   custos-media master IN OUT FRAMEHASH REPORT   (the check against the
 *                original's frame hashes: media_framehash's file and its
 *                JSON report, as the server's master job does)
 *
 * Prints the operation's JSON report on stdout; exit 0 on success, 3 when
 * the input was judged (CU_EUNSUPPORTED, CU_ECORRUPT), 1 otherwise. */
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "err.h"
#include "framehash.h"
#include "master.h"
#include "poster.h"
#include "probe.h"

int main(int argc, char **argv) {
  if (argc != 4 && !(argc == 3 && !strcmp(argv[1], "probe")) && !(argc == 6 && !strcmp(argv[1], "master"))) {
    fprintf(stderr, "usage: custos-media framehash|master|access|poster|probe IN [OUT]\n"
                    "       custos-media master IN OUT FRAMEHASH REPORT\n");
    return 2;
  }
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
