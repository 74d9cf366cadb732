/* custos jobs: the queued, running and failed jobs (admin). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "banned.h"

static const char help[] =
    "usage: custos jobs [--state queued|running|failed] [--kind KIND] [--limit N] [--json]\n"
    "\n"
    "Lists the server's background jobs that are queued, running or failed, with\n"
    "their attempts, progress and last error. Done jobs are not listed. Kinds:\n"
    "probe, stamp and stamp_sth (time-stamps), framehash, master, access and\n"
    "poster (the archival copies), clip_check, export and purge.\n";

int cmd_jobs(int argc, char **argv) {
  client cl = {0};
  bool as_json = false;
  const char *state = NULL, *kind = NULL, *limit = NULL;
  enum { O_STATE = 1, O_KIND, O_LIMIT };
  static const struct option opts[] = {CLIENT_LONG_OPTIONS,
                                       {"state", required_argument, 0, O_STATE},
                                       {"kind", required_argument, 0, O_KIND},
                                       {"limit", required_argument, 0, O_LIMIT},
                                       {"json", no_argument, 0, OPT_JSON},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  json_t *out = NULL;
  cu_buf path = CU_BUF_INIT(4096);
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == OPT_JSON) as_json = true;
    else if (c == O_STATE) state = optarg;
    else if (c == O_KIND) kind = optarg;
    else if (c == O_LIMIT) limit = optarg;
    else if (c == 'h') { fputs(help, stdout); goto done; }
    else { fputs(help, stderr); rc = EXIT_USAGE; goto done; }
  }
  if (optind < argc) {
    rc = cli_usage_error("jobs", "unexpected argument '%s'", argv[optind]);
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos jobs: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  cu_buf_adds(&path, "/v1/jobs");
  client_query_add(&path, "state", state);
  client_query_add(&path, "kind", kind);
  client_query_add(&path, "limit", limit);
  int err = client_json(&cl, "GET", path.data, NULL, NULL, &out);
  if (err) {
    fprintf(stderr, "custos jobs: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  const json_t *jobs = json_object_get(out, "jobs");
  if (as_json) {
    char *s = json_dumps(jobs, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(s);
    free(s);
    goto done;
  }
  if (!json_array_size(jobs)) {
    printf("no queued, running or failed jobs\n");
    goto done;
  }
  printf("%-36s  %-9s  %-7s  %8s  %8s  %-36s  %s\n", "JOB", "KIND", "STATE", "ATTEMPTS",
         "PROGRESS", "EVIDENCE", "LAST ERROR");
  size_t i;
  json_t *j;
  json_array_foreach(jobs, i, j) {
    char prog[16] = "-";
    json_t *p = json_object_get(j, "progress");
    if (json_is_number(p)) snprintf(prog, sizeof prog, "%.0f%%", json_number_value(p) * 100);
    const char *ev = cu_json_str(j, "evidence"), *e = cu_json_str(j, "error");
    printf("%-36s  %-9s  %-7s  %8lld  %8s  %-36s  %s\n", cu_json_str(j, "id"),
           cu_json_str(j, "kind"), cu_json_str(j, "state"), (long long)cu_json_int(j, "attempts", 0),
           prog, ev ? ev : "-", e ? e : "");
  }
done:
  cu_buf_release(&path);
  json_decref(out);
  client_release(&cl);
  return rc;
}
