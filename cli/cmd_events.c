/* custos events ID: an item's chain of custody, from its ledger events,
 * one line a person can read per event. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "hex.h"
#include "banned.h"

static const char help[] =
    "usage: custos events ID [--json]\n"
    "\n"
    "Prints the chain of custody of evidence ID: every ledger event about it, in\n"
    "ledger order, one a line: its ledger entry, when (at), what (type), who did it\n"
    "(the actor's user or role and token; \"server\" for the server's own work),\n"
    "and the details that matter for that type (hashes shortened to 12 digits).\n"
    "`custos get` proves an item's bytes against these events.\n"
    "\n"
    "  --json   the server's answer as it is: each event's exact bytes (base64\n"
    "           \"data\"), its leaf hash, index and the event parsed\n";

/* The fields shown for each type, in this order; a type not listed shows
 * every field it has. Names that are absent are skipped. */
static const struct {
  const char *type;
  const char *fields[8];
} details[] = {
    {"ingested", {"sha256", "size", "filename", "device_id", "officer_id", "case_id"}},
    {"probed", {"status", "container", "duration_s", "duration_from", "damaged", "reason"}},
    {"rendition", {"kind", "sha256", "size", "reused_from"}},
    {"timestamped", {"tsa", "gen_time", "serial"}},
    {"quarantined", {"sha256", "client_sha256", "size", "filename", "device_id"}},
    {"scrub_failed", {"kind", "sha256", "actual_sha256", "reason"}},
    {"linked", {"case", "origin", "reason"}},
    {"unlinked", {"case", "reason"}},
    {"accessed", {"rendition", "kind", "range", "start", "end", "mode", "address", "sha256"}},
    {"exported", {"case", "case_id", "export", "export_id", "sha256"}},
};

/* Fields every line shows in its own columns, never among the details. */
static bool is_column(const char *k) {
  return !strcmp(k, "at") || !strcmp(k, "type") || !strcmp(k, "evidence") || !strcmp(k, "actor") ||
         !strcmp(k, "user");
}

/* A value as one word a terminal shows safely: plain text as is, anything
 * with spaces, quotes or control characters JSON-quoted (so a filename
 * cannot move the cursor), a SHA-256 shortened. */
static void add_value(cu_buf *b, const json_t *v) {
  if (!v) {
    cu_buf_adds(b, "?");
    return;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    if (cu_is_sha256_hex(s)) {
      cu_buf_printf(b, "%.12s…", s);
      return;
    }
    bool plain = *s != '\0';
    for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
      plain = *p > ' ' && *p != '"' && *p != '\\' && *p != 0x7f;
    if (plain) {
      cu_buf_adds(b, s);
      return;
    }
  }
  char *j = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
  cu_buf_adds(b, j ? j : "?");
  free(j);
}

static void add_field(cu_buf *b, const json_t *ev, const char *key) {
  json_t *v = json_object_get(ev, key);
  if (!v || json_is_null(v)) return;
  /* device_id → device, filename → file: labels, not key names. */
  size_t n = strlen(key);
  if (!strcmp(key, "filename"))
    cu_buf_adds(b, b->len ? " file " : "file ");
  else if (n > 3 && !strcmp(key + n - 3, "_id"))
    cu_buf_printf(b, "%s%.*s ", b->len ? " " : "", (int)(n - 3), key);
  else
    cu_buf_printf(b, "%s%s ", b->len ? " " : "", key);
  add_value(b, v);
}

/* Who caused the event: the actor's user and role, or its role and token,
 * or a named part of the server ("scrubber"); "server" when none is named
 * (the server's own jobs: probes, renditions, time-stamps). */
static void add_who(cu_buf *b, const json_t *ev) {
  const json_t *a = json_object_get(ev, "actor");
  const char *user = NULL;
  if (json_is_object(a)) {
    const json_t *role = json_object_get(a, "role"), *tok = json_object_get(a, "token_id");
    user = cu_json_str(a, "user");
    if (user) {
      add_value(b, json_object_get(a, "user"));
      cu_buf_adds(b, " (");
      add_value(b, role);
      cu_buf_adds(b, ")");
    } else if (role && tok) {
      add_value(b, role);
      cu_buf_adds(b, " token ");
      add_value(b, tok);
    } else {
      add_value(b, role ? role : tok);
    }
  } else if (json_is_string(a)) {
    add_value(b, a);
  } else {
    cu_buf_adds(b, "server");
  }
  const char *u = cu_json_str(ev, "user");
  if (u && (!user || strcmp(u, user))) {
    cu_buf_adds(b, " user ");
    add_value(b, json_object_get(ev, "user"));
  }
  if (!b->len) cu_buf_adds(b, "?");
}

static void print_event(const json_t *entry) {
  const json_t *ev = json_object_get(entry, "event");
  long long index = (long long)cu_json_int(entry, "index", -1);
  if (!json_is_object(ev)) {
    printf("#%-4lld (a damaged entry: its bytes are not a JSON event)\n", index);
    return;
  }
  cu_buf who = CU_BUF_INIT(4096), det = CU_BUF_INIT(1 << 16), at = CU_BUF_INIT(256),
         type = CU_BUF_INIT(256);
  add_value(&at, json_object_get(ev, "at"));
  add_value(&type, json_object_get(ev, "type"));
  add_who(&who, ev);
  const char *t = cu_json_str(ev, "type");
  size_t k;
  for (k = 0; k < sizeof details / sizeof *details; k++)
    if (t && !strcmp(t, details[k].type)) break;
  if (k < sizeof details / sizeof *details) {
    for (size_t f = 0; f < 8 && details[k].fields[f]; f++)
      add_field(&det, ev, details[k].fields[f]);
  } else {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)ev, key, v) if (!is_column(key)) add_field(&det, ev, key);
  }
  printf("#%-4lld  %-27s  %-12s  %-24s  %s\n", index, at.data ? at.data : "",
         type.data ? type.data : "", who.data, det.data ? det.data : "");
  cu_buf_release(&who);
  cu_buf_release(&det);
  cu_buf_release(&at);
  cu_buf_release(&type);
}

int cmd_events(int argc, char **argv) {
  client cl = {0};
  bool as_json = false;
  static const struct option opts[] = {{"json", no_argument, 0, OPT_JSON},
                                       CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  json_t *resp = NULL;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == OPT_JSON)
      as_json = true;
    else if (c == 'h') {
      fputs(help, stdout);
      goto done;
    } else {
      fputs(help, stderr);
      rc = EXIT_USAGE;
      goto done;
    }
  }
  if (optind != argc - 1) {
    rc = cli_usage_error("events", "give exactly one evidence id");
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos events: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  char *path = cu_xasprintf("/v1/evidence/%s/events", argv[optind]);
  int err = client_json(&cl, "GET", path, NULL, NULL, &resp);
  free(path);
  if (err) {
    fprintf(stderr, "custos events: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  json_t *list = json_object_get(resp, "events"), *e;
  if (!json_is_array(list)) {
    fprintf(stderr, "custos events: the server's answer has no event list\n");
    rc = EXIT_FAIL;
    goto done;
  }
  if (as_json) {
    char *s = json_dumps(resp, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
  } else {
    size_t i;
    json_array_foreach(list, i, e) print_event(e);
  }
done:
  json_decref(resp);
  client_release(&cl);
  return rc;
}
