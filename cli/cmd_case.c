/* custos case: cases from the command line, one verb per action, each one
 * HTTP request (link and unlink take several items, one request each). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "banned.h"

static const char help[] =
    "usage: custos case VERB [options]\n"
    "\n"
    "  create TITLE [--id ID] [--tag T]...   open a case (ID: an incident number;\n"
    "                                         default a new UUID); prints its id\n"
    "  ls [--status open|closed] [--tag T]   list cases (a reviewer sees the cases\n"
    "                                         assigned to them)\n"
    "  show CASE                             the case and its evidence\n"
    "  link CASE ID...                       put evidence into the case\n"
    "  unlink CASE ID...                     take evidence out of the case\n"
    "  close CASE | reopen CASE              set its status\n"
    "  edit CASE [--title T] [--tag T]...    change its title or replace its tags\n"
    "  assign CASE USER | unassign CASE USER give or take a reviewer's access (admin)\n"
    "\n"
    "Every change is recorded in the ledger. --json prints the server's answer.\n";

static void print_json(const json_t *v) {
  char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
  printf("%s\n", s);
  free(s);
}

static void print_case(const json_t *c) {
  printf("%-14s %s\n", "id", cu_json_str(c, "id"));
  printf("%-14s %s\n", "title", cu_json_str(c, "title"));
  printf("%-14s %s\n", "status", cu_json_str(c, "status"));
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(c, "tags"), i, v) printf("%-14s %s\n", i ? "" : "tags", json_string_value(v));
  json_array_foreach(json_object_get(c, "reviewers"), i, v)
    printf("%-14s %s\n", i ? "" : "reviewers", json_string_value(v));
  printf("%-14s %s\n", "created_at", cu_json_str(c, "created_at"));
  const json_t *by = json_object_get(c, "created_by");
  const char *who = cu_json_str(by, "user") ? cu_json_str(by, "user") : cu_json_str(by, "token_id");
  if (who) printf("%-14s %s%s\n", "created_by", who, !strcmp(cu_json_str(c, "origin") ? cu_json_str(c, "origin") : "", "upload") ? " (named in an upload)" : "");
  if (cu_json_str(c, "closed_at")) printf("%-14s %s\n", "closed_at", cu_json_str(c, "closed_at"));
  json_t *ev = json_object_get(c, "evidence");
  if (!ev) return;
  printf("%-14s %lld\n", "evidence", (long long)cu_json_int(c, "evidence_count", 0));
  json_array_foreach(ev, i, v) {
    printf("  %s  %s  %-16s %s\n", cu_json_str(v, "id"), cu_json_str(v, "recorded_at"),
           cu_json_str(v, "device_id"), cu_json_str(v, "filename") ? cu_json_str(v, "filename") : "");
  }
  if (json_is_string(json_object_get(c, "evidence_next_cursor")))
    printf("  ... more: custos ls --case %s\n", cu_json_str(c, "id"));
}

static json_t *string_array(char **v, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
  return a;
}

int cmd_case(int argc, char **argv) {
  client cl = {0};
  bool as_json = false;
  const char *id = NULL, *status = NULL, *title = NULL;
  char *tags[32];
  int ntags = 0;
  enum { O_ID = 2000, O_TAG, O_STATUS, O_TITLE };
  static const struct option opts[] = {{"json", no_argument, 0, OPT_JSON},
                                       {"id", required_argument, 0, O_ID},
                                       {"tag", required_argument, 0, O_TAG},
                                       {"status", required_argument, 0, O_STATUS},
                                       {"title", required_argument, 0, O_TITLE},
                                       CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  json_t *out = NULL, *body = NULL;
  cu_buf path = CU_BUF_INIT(4096);
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == OPT_JSON) as_json = true;
    else if (c == O_ID) id = optarg;
    else if (c == O_STATUS) status = optarg;
    else if (c == O_TITLE) title = optarg;
    else if (c == O_TAG && ntags < 32) tags[ntags++] = optarg;
    else if (c == 'h') { fputs(help, stdout); goto done; }
    else { fputs(help, stderr); rc = EXIT_USAGE; goto done; }
  }
  int nargs = argc - optind;
  char **args = argv + optind;
  if (nargs < 1) {
    rc = cli_usage_error("case", "give a verb: create, ls, show, link, unlink, close, reopen, edit, assign, unassign");
    goto done;
  }
  const char *verb = args[0];
  struct { const char *verb; int min, max; } arity[] = {
      {"create", 2, 2}, {"ls", 1, 1}, {"show", 2, 2}, {"link", 3, 1 << 20}, {"unlink", 3, 1 << 20},
      {"close", 2, 2}, {"reopen", 2, 2}, {"edit", 2, 2}, {"assign", 3, 3}, {"unassign", 3, 3}};
  bool known = false;
  for (size_t i = 0; i < sizeof arity / sizeof *arity; i++) {
    if (strcmp(verb, arity[i].verb)) continue;
    known = true;
    if (nargs < arity[i].min || nargs > arity[i].max) {
      rc = cli_usage_error("case", "wrong number of arguments for '%s' (see custos case --help)", verb);
      goto done;
    }
  }
  if (!known) {
    rc = cli_usage_error("case", "unknown verb '%s' (see custos case --help)", verb);
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos case: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  int err = 0;
  if (!strcmp(verb, "create")) {
    body = json_object();
    cu_json_set_str(body, "title", args[1]);
    cu_json_set_str(body, "id", id);
    if (ntags) json_object_set_new(body, "tags", string_array(tags, ntags));
    err = client_json(&cl, "POST", "/v1/cases", body, NULL, &out);
    if (!err && !as_json) printf("%s\n", cu_json_str(out, "id"));
  } else if (!strcmp(verb, "ls")) {
    const char *cursor = NULL;
    char *next = NULL;
    json_t *all = json_array();
    do { /* every page: a person asked for the list */
      path.len = 0;
      cu_buf_adds(&path, "/v1/cases?limit=1000");
      if (status) client_query_add(&path, "status", status);
      if (ntags) client_query_add(&path, "tag", tags[0]);
      if (cursor) client_query_add(&path, "cursor", cursor);
      json_decref(out);
      out = NULL;
      err = client_json(&cl, "GET", path.data, NULL, NULL, &out);
      if (err) break;
      json_array_extend(all, json_object_get(out, "items"));
      free(next);
      next = cu_json_str(out, "next_cursor") ? cu_xstrdup(cu_json_str(out, "next_cursor")) : NULL;
      cursor = next;
    } while (cursor);
    free(next);
    if (!err && as_json) print_json(all);
    else if (!err) {
      size_t i;
      json_t *v;
      json_array_foreach(all, i, v) printf("%-38s %-6s %s\n", cu_json_str(v, "id"), cu_json_str(v, "status"), cu_json_str(v, "title"));
    }
    json_decref(all);
    as_json = false;
  } else if (!strcmp(verb, "show")) {
    cu_buf_printf(&path, "/v1/cases/%s", args[1]);
    err = client_json(&cl, "GET", path.data, NULL, NULL, &out);
    if (!err && !as_json) print_case(out);
  } else if (!strcmp(verb, "link") || !strcmp(verb, "unlink")) {
    bool link = !strcmp(verb, "link");
    for (int i = 2; i < nargs && !err; i++) {
      path.len = 0;
      cu_buf_printf(&path, "/v1/cases/%s/evidence/%s", args[1], args[i]);
      long st = 0;
      json_decref(out);
      out = NULL;
      err = client_json(&cl, link ? "POST" : "DELETE", path.data, NULL, &st, &out);
      if (!err) printf("%s %s %s%s\n", args[i], link ? "linked to" : "unlinked from", args[1], st == 200 ? " (already)" : "");
    }
    as_json = false;
  } else if (!strcmp(verb, "close") || !strcmp(verb, "reopen") || !strcmp(verb, "edit")) {
    body = json_object();
    if (!strcmp(verb, "edit")) {
      if (title) cu_json_set_str(body, "title", title);
      if (ntags) json_object_set_new(body, "tags", string_array(tags, ntags));
      if (!json_object_size(body)) {
        rc = cli_usage_error("case", "edit needs --title or --tag");
        goto done;
      }
    } else {
      cu_json_set_str(body, "status", !strcmp(verb, "close") ? "closed" : "open");
    }
    cu_buf_printf(&path, "/v1/cases/%s", args[1]);
    err = client_json(&cl, "PATCH", path.data, body, NULL, &out);
    if (!err && !as_json) print_case(out);
  } else { /* assign, unassign */
    bool on = !strcmp(verb, "assign");
    cu_buf_printf(&path, "/v1/cases/%s/reviewers/%s", args[1], args[2]);
    long st = 0;
    err = client_json(&cl, on ? "PUT" : "DELETE", path.data, NULL, &st, &out);
    if (!err) printf("%s %s case %s%s\n", args[2], on ? "assigned to" : "unassigned from", args[1], st == 200 ? " (already)" : "");
    as_json = false;
  }
  if (err) {
    fprintf(stderr, "custos case %s: %s\n", verb, cu_errmsg());
    rc = cli_exit_for(err);
  } else if (as_json && out) {
    print_json(out);
  }
done:
  json_decref(out);
  json_decref(body);
  cu_buf_release(&path);
  client_release(&cl);
  return rc;
}
