#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cu_limits.h"
#include "err.h"
#include "timeu.h"
#include "banned.h"

static const char help[] =
    "usage: custos ls [filters] [--limit N] [--order asc|desc] [--json]\n"
    "\n"
    "Lists evidence (legal and admin tokens).\n"
    "  --device ID      recorded by this device (with --from/--to: by recording time)\n"
    "  --officer ID     recorded by this officer\n"
    "  --case ID        linked to this case\n"
    "  --sha256 HEX     with these exact bytes\n"
    "  --from TIME      recorded at or after TIME (RFC 3339, e.g. 2026-01-31T08:00:00Z)\n"
    "  --to TIME        recorded before TIME\n"
    "  --limit N        at most N items in all (default 100)\n"
    "  --order ORDER    asc (oldest first, default) or desc\n"
    "  --json           one JSON array of the full records\n";

int cmd_ls(int argc, char **argv) {
  client cl = {0};
  const char *filters[6] = {0};
  static const char *const names[6] = {"device", "officer", "case", "sha256", "from", "to"};
  const char *order = NULL;
  int64_t limit = 100;
  bool as_json = false;
  enum { O_LIMIT = 1, O_ORDER, O_F0 };
  static const struct option opts[] = {{"device", required_argument, 0, O_F0},
                                       {"officer", required_argument, 0, O_F0 + 1},
                                       {"case", required_argument, 0, O_F0 + 2},
                                       {"sha256", required_argument, 0, O_F0 + 3},
                                       {"from", required_argument, 0, O_F0 + 4},
                                       {"to", required_argument, 0, O_F0 + 5},
                                       {"limit", required_argument, 0, O_LIMIT},
                                       {"order", required_argument, 0, O_ORDER},
                                       {"json", no_argument, 0, OPT_JSON},
                                       CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c >= O_F0 && c < O_F0 + 6) {
      filters[c - O_F0] = optarg;
      continue;
    }
    switch (c) {
    case O_LIMIT:
      if (cu_parse_i64(optarg, &limit, 0) || limit < 1) {
        rc = cli_usage_error("ls", "--limit must be a positive number");
        goto done;
      }
      break;
    case O_ORDER: order = optarg; break;
    case OPT_JSON: as_json = true; break;
    case 'h': fputs(help, stdout); goto done;
    default: fputs(help, stderr); rc = EXIT_USAGE; goto done;
    }
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos ls: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  json_t *all = json_array();
  char *cursor = NULL;
  int err = 0;
  do {
    cu_buf path = CU_BUF_INIT(8192);
    cu_buf_adds(&path, "/v1/evidence");
    for (int i = 0; i < 6; i++) client_query_add(&path, names[i], filters[i]);
    client_query_add(&path, "order", order);
    char lim[24];
    int64_t want = limit - (int64_t)json_array_size(all);
    snprintf(lim, sizeof lim, "%lld", (long long)(want < CU_MAX_PAGE_LIMIT ? want : CU_MAX_PAGE_LIMIT));
    client_query_add(&path, "limit", lim);
    client_query_add(&path, "cursor", cursor);
    json_t *page = NULL;
    err = client_json(&cl, "GET", path.data, NULL, NULL, &page);
    cu_buf_release(&path);
    free(cursor);
    cursor = NULL;
    if (err) break;
    json_array_extend(all, json_object_get(page, "items"));
    const char *next = cu_json_str(page, "next_cursor");
    if (next) cursor = cu_xstrdup(next);
    json_decref(page);
  } while (cursor && (int64_t)json_array_size(all) < limit);
  free(cursor);
  if (err) {
    fprintf(stderr, "custos ls: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
  } else if (as_json) {
    char *s = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
  } else {
    printf("%-36s  %-20s  %-16s  %-12s  %12s  %-11s  %s\n", "ID", "RECORDED_AT", "DEVICE",
           "OFFICER", "BYTES", "MEDIA", "FILENAME");
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e) {
      const char *off = cu_json_str(e, "officer_id"), *fn = cu_json_str(e, "filename");
      char when[CU_RFC3339_LEN] = "";
      int64_t us;
      if (!cu_time_parse_rfc3339(cu_json_str(e, "recorded_at") ? cu_json_str(e, "recorded_at") : "", &us))
        cu_time_rfc3339(us - us % 1000000, when);
      printf("%-36s  %-20s  %-16s  %-12s  %12lld  %-11s  %s\n", cu_json_str(e, "id"), when,
             cu_json_str(e, "device_id"), off ? off : "-", (long long)cu_json_int(e, "size", 0),
             cu_json_str(json_object_get(e, "media"), "status") ? cu_json_str(json_object_get(e, "media"), "status") : "-",
             fn ? fn : "-");
    }
  }
  json_decref(all);
done:
  client_release(&cl);
  return rc;
}
