/* custos stats: recordings, footage, bytes, ingest lag and failed jobs, in
 * all and per device, officer, day or case (GET /v1/stats; legal, admin). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "idx.h"
#include "timeu.h"
#include "banned.h"

static const char help[] =
    "usage: custos stats [--by device|officer|day|case] [--from TIME] [--to TIME] [--json]\n"
    "\n"
    "Sums over the evidence recorded in [--from, --to) (RFC 3339, e.g.\n"
    "2026-01-31T00:00:00Z; both optional): recordings, hours of footage (as\n"
    "probed), bytes, ingest lag (from recorded_at to arrival, for recordings whose\n"
    "recorder said when it recorded: 50th and 95th percentile, within about 6%,\n"
    "and the maximum) and failed background jobs, in all and, with --by, per\n"
    "device, officer, UTC day or case. A recording in several cases counts in\n"
    "each; one with no officer or in no case is under \"(none)\".\n"
    "  --json   the server's answer as it is\n";

static void fmt_bytes(char *out, size_t n, double b) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (b >= 1024 && u < 5) {
    b /= 1024;
    u++;
  }
  if (u == 0) snprintf(out, n, "%.0f B", b);
  else snprintf(out, n, "%.1f %s", b, units[u]);
}

static void fmt_lag(char *out, size_t n, const json_t *v) {
  if (!json_is_number(v)) {
    snprintf(out, n, "-");
    return;
  }
  double s = json_number_value(v);
  if (s < 60) snprintf(out, n, "%.1fs", s);
  else if (s < 3600) snprintf(out, n, "%.1fm", s / 60);
  else if (s < 86400) snprintf(out, n, "%.1fh", s / 3600);
  else snprintf(out, n, "%.1fd", s / 86400);
}

static void row(int width, const char *key, const json_t *g) {
  char size[32], p50[16], p95[16], max[16];
  const json_t *lag = json_object_get(g, "ingest_lag_seconds");
  json_t *h = json_object_get(g, "footage_hours");
  json_t *bytes = json_object_get(g, "bytes");
  fmt_bytes(size, sizeof size, json_is_integer(bytes) ? (double)json_integer_value(bytes) : 0);
  fmt_lag(p50, sizeof p50, json_object_get(lag, "p50"));
  fmt_lag(p95, sizeof p95, json_object_get(lag, "p95"));
  fmt_lag(max, sizeof max, json_object_get(lag, "max"));
  printf("%-*s  %10lld  %9.2f  %10s  %8s  %8s  %8s  %6lld\n", width, key,
         (long long)cu_json_int(g, "recordings", 0), json_is_number(h) ? json_number_value(h) : 0.0,
         size, p50, p95, max, (long long)cu_json_int(g, "failed_jobs", 0));
}

int cmd_stats(int argc, char **argv) {
  client cl = {0};
  bool as_json = false;
  const char *by = NULL, *from = NULL, *to = NULL;
  enum { O_BY = 1, O_FROM, O_TO };
  static const struct option opts[] = {CLIENT_LONG_OPTIONS,
                                       {"by", required_argument, 0, O_BY},
                                       {"from", required_argument, 0, O_FROM},
                                       {"to", required_argument, 0, O_TO},
                                       {"json", no_argument, 0, OPT_JSON},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  json_t *out = NULL;
  cu_buf path = CU_BUF_INIT(4096);
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == OPT_JSON) as_json = true;
    else if (c == O_BY) by = optarg;
    else if (c == O_FROM) from = optarg;
    else if (c == O_TO) to = optarg;
    else if (c == 'h') { fputs(help, stdout); goto done; }
    else { fputs(help, stderr); rc = EXIT_USAGE; goto done; }
  }
  if (optind < argc) {
    rc = cli_usage_error("stats", "unexpected argument '%s'", argv[optind]);
    goto done;
  }
  int64_t t;
  idx_stats_by kind;
  if (by && idx_stats_by_parse(by, &kind)) { /* the server's own list of groupings */
    rc = cli_usage_error("stats", "--by must be device, officer, day or case");
    goto done;
  }
  if ((from && cu_time_parse_rfc3339(from, &t)) || (to && cu_time_parse_rfc3339(to, &t))) {
    rc = cli_usage_error("stats",
                         "--from and --to take an RFC 3339 time, e.g. 2026-01-31T00:00:00Z");
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos stats: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  cu_buf_adds(&path, "/v1/stats");
  client_query_add(&path, "by", by);
  client_query_add(&path, "from", from);
  client_query_add(&path, "to", to);
  int err = client_json(&cl, "GET", path.data, NULL, NULL, &out);
  if (err) {
    fprintf(stderr, "custos stats: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  if (as_json) {
    char *s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(s);
    free(s);
    goto done;
  }
  const json_t *groups = json_object_get(out, "groups");
  const char *f = cu_json_str(out, "from"), *u = cu_json_str(out, "to");
  if (f || u) printf("recorded from %s to %s\n\n", f ? f : "the start", u ? u : "now");
  int width = 5; /* "TOTAL" */
  size_t i;
  json_t *g;
  json_array_foreach(groups, i, g) {
    int n = (int)strlen(cu_json_str(g, "key") ? cu_json_str(g, "key") : "");
    if (n > width) width = n;
  }
  const char *by_name = cu_json_str(out, "by");
  char head[16];
  snprintf(head, sizeof head, "%s", by_name && strcmp(by_name, "none") ? by_name : "");
  for (char *p = head; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
  printf("%-*s  %10s  %9s  %10s  %8s  %8s  %8s  %6s\n", width, head, "RECORDINGS", "HOURS",
         "SIZE", "LAG P50", "LAG P95", "LAG MAX", "FAILED");
  json_array_foreach(groups, i, g) row(width, cu_json_str(g, "key"), g);
  row(width, "TOTAL", json_object_get(out, "totals"));
done:
  cu_buf_release(&path);
  json_decref(out);
  client_release(&cl);
  return rc;
}
