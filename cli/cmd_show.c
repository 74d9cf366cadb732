#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "banned.h"

static const char help[] =
    "usage: custos show ID [--json]\n"
    "\n"
    "Shows one evidence record: its hash, size, where and when it was recorded,\n"
    "who uploaded it, what the media probe found, and its renditions (master,\n"
    "access copy, frame hashes, poster) with their states.\n";

static void line(const char *label, const char *value) {
  if (value) printf("%-14s %s\n", label, value);
}

int cmd_show(int argc, char **argv) {
  client cl = {0};
  bool as_json = false;
  static const struct option opts[] = {{"json", no_argument, 0, OPT_JSON}, CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == OPT_JSON) as_json = true;
    else if (c == 'h') { fputs(help, stdout); goto done; }
    else { fputs(help, stderr); rc = EXIT_USAGE; goto done; }
  }
  if (optind != argc - 1) {
    rc = cli_usage_error("show", "give exactly one evidence id");
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos show: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  char *path = cu_xasprintf("/v1/evidence/%s", argv[optind]);
  json_t *e = NULL;
  int err = client_json(&cl, "GET", path, NULL, NULL, &e);
  free(path);
  if (err) {
    fprintf(stderr, "custos show: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  if (as_json) {
    char *s = json_dumps(e, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
  } else {
    char size[32];
    snprintf(size, sizeof size, "%lld bytes", (long long)cu_json_int(e, "size", 0));
    line("id", cu_json_str(e, "id"));
    line("sha256", cu_json_str(e, "sha256"));
    line("size", size);
    line("filename", cu_json_str(e, "filename"));
    line("device", cu_json_str(e, "device_id"));
    line("officer", cu_json_str(e, "officer_id"));
    line("recorded_at", cu_json_str(e, "recorded_at"));
    if (cu_json_str(e, "recorded_at_source") && !strcmp(cu_json_str(e, "recorded_at_source"), "received"))
      line("", "(not given by the recorder: time of arrival)");
    line("received_at", cu_json_str(e, "received_at"));
    line("uploaded_by", cu_json_str(json_object_get(e, "uploaded_by"), "user")
                            ? cu_json_str(json_object_get(e, "uploaded_by"), "user")
                            : cu_json_str(json_object_get(e, "uploaded_by"), "token_id"));
    json_t *cases = json_object_get(e, "cases");
    size_t i;
    json_t *v;
    json_array_foreach(cases, i, v) line(i ? "" : "cases", json_string_value(v));
    json_t *m = json_object_get(e, "media");
    line("media", cu_json_str(m, "status"));
    line("  reason", cu_json_str(m, "reason"));
    line("  container", cu_json_str(m, "container"));
    json_t *d = json_object_get(m, "duration_s");
    if (json_is_number(d))
      printf("%-14s %.3f s%s\n", "  duration", json_number_value(d),
             json_object_get(m, "duration_from") ? " (counted: the container states none)" : "");
    line("  created", cu_json_str(m, "creation_time"));
    line("  make", cu_json_str(m, "make"));
    line("  model", cu_json_str(m, "model"));
    line("  location", cu_json_str(m, "location"));
    json_array_foreach(json_object_get(m, "streams"), i, v) {
      char s[256];
      const char *type = cu_json_str(v, "type") ? cu_json_str(v, "type") : "?";
      if (!strcmp(type, "video"))
        snprintf(s, sizeof s, "video %s %lldx%lld %s fps", cu_json_str(v, "codec"),
                 (long long)cu_json_int(v, "width", 0), (long long)cu_json_int(v, "height", 0),
                 cu_json_str(v, "avg_frame_rate") ? cu_json_str(v, "avg_frame_rate") : "?");
      else if (!strcmp(type, "audio"))
        snprintf(s, sizeof s, "audio %s %lld Hz, %lld ch", cu_json_str(v, "codec"),
                 (long long)cu_json_int(v, "sample_rate", 0), (long long)cu_json_int(v, "channels", 0));
      else
        snprintf(s, sizeof s, "%s %s", type, cu_json_str(v, "codec") ? cu_json_str(v, "codec") : "");
      line(i ? "" : "  streams", s);
    }
    if (json_is_true(json_object_get(m, "damaged"))) line("", "DAMAGED: the container is recognised but cannot be read");
    /* Renditions in the order they matter to a person. */
    static const char *const kinds[] = {"master", "access", "framehash", "poster", NULL};
    json_t *rs = json_object_get(e, "renditions");
    bool first = true;
    for (const char *const *k = kinds; *k; k++) {
      json_t *r = json_object_get(rs, *k);
      if (!r) continue;
      const char *state = cu_json_str(r, "state") ? cu_json_str(r, "state") : "?";
      char s[1400];
      if (!strcmp(state, "done"))
        snprintf(s, sizeof s, "%-9s done     %.16s… %lld bytes%s", *k, cu_json_str(r, "sha256"),
                 (long long)cu_json_int(r, "size", 0),
                 cu_json_str(r, "reused_from") ? " (shared with an identical original)" : "");
      else if (!strcmp(state, "failed"))
        snprintf(s, sizeof s, "%-9s FAILED   %s", *k, cu_json_str(r, "error"));
      else if (!strcmp(state, "not_applicable"))
        snprintf(s, sizeof s, "%-9s none     %s", *k, cu_json_str(r, "reason"));
      else
        snprintf(s, sizeof s, "%-9s %s", *k, state);
      line(first ? "renditions" : "", s);
      first = false;
    }
  }
  json_decref(e);
done:
  client_release(&cl);
  return rc;
}
