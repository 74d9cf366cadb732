/* custos scrub: asks the server for a full pass over every stored object now,
 * follows it, and reports what changed. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "timeu.h"
#include "banned.h"

static const char help[] =
    "usage: custos scrub [--json] [--no-wait]\n"
    "\n"
    "Starts a full pass of the server's scrubber (admin): every stored object is\n"
    "re-read and re-hashed. A mismatch or a missing object is logged as an alarm,\n"
    "counted in /metrics and recorded in the ledger (scrub_failed). Waits for the\n"
    "pass and prints its findings unless --no-wait.\n"
    "\n"
    "Exit status: 0 every object matched, 3 some did not, 1 the pass could not run.\n";

int cmd_scrub(int argc, char **argv) {
  client cl = {0};
  bool as_json = false, wait = true;
  enum { O_NOWAIT = 1 };
  static const struct option opts[] = {CLIENT_LONG_OPTIONS,
                                       {"json", no_argument, 0, OPT_JSON},
                                       {"no-wait", no_argument, 0, O_NOWAIT},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  json_t *st = NULL;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == OPT_JSON) as_json = true;
    else if (c == O_NOWAIT) wait = false;
    else if (c == 'h') { fputs(help, stdout); goto done; }
    else { fputs(help, stderr); rc = EXIT_USAGE; goto done; }
  }
  if (optind < argc) {
    rc = cli_usage_error("scrub", "unexpected argument '%s'", argv[optind]);
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos scrub: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  int err = client_json(&cl, "POST", "/v1/scrub", NULL, NULL, &st);
  int64_t started = cu_mono_us();
  while (!err && wait && json_is_true(json_object_get(st, "running"))) {
    const json_t *p = json_object_get(st, "pass");
    cli_progress("scrubbing", (uint64_t)cu_json_int(p, "objects", 0), 0, started);
    usleep(200 * 1000);
    json_decref(st);
    st = NULL;
    err = client_json(&cl, "GET", "/v1/scrub", NULL, NULL, &st);
  }
  cli_progress_end();
  if (err) {
    fprintf(stderr, "custos scrub: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  const json_t *p = json_object_get(st, "pass");
  const json_t *fails = json_object_get(p, "failures");
  if (as_json) {
    char *s = json_dumps(wait ? p : st, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(s);
    free(s);
  } else if (!wait) {
    printf("scrub started\n");
  } else {
    printf("scrubbed %lld objects (%lld bytes): %zu failure(s)\n",
           (long long)cu_json_int(p, "objects", 0), (long long)cu_json_int(p, "bytes", 0),
           json_array_size(fails));
    size_t i;
    json_t *f;
    json_array_foreach(fails, i, f)
        printf("FAILED evidence %s%s%s: %s\n", cu_json_str(f, "evidence"),
               cu_json_str(f, "rendition") ? ", its " : "",
               cu_json_str(f, "rendition") ? cu_json_str(f, "rendition") : "", cu_json_str(f, "reason"));
  }
  if (wait && json_array_size(fails)) rc = EXIT_CORRUPT;
done:
  json_decref(st);
  client_release(&cl);
  return rc;
}
