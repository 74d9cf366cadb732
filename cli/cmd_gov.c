/* Governance from the command line: holds, retention, and the two-person
 * requests. Each subcommand is one HTTP request; the server enforces who
 * may do what (a request's maker can never approve it). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "banned.h"

typedef struct {
  const char *name, *usage, *help;
  int nargs; /* positional arguments after the command */
  bool reason_required;
} gov_cmd;

static const gov_cmd cmds[] = {
    {"hold", "custos hold (--case CASE | ID) --reason TEXT",
     "Puts a legal hold on a case or an item (legal, admin): while it holds, nothing can\n"
     "delete what it covers. Prints the hold's id.\n", -1, true},
    {"release", "custos release HOLD --reason TEXT",
     "Asks for a hold to be lifted. It is lifted only when a different legal user\n"
     "approves the request (custos approve). Prints the request's id.\n", 1, true},
    {"retention", "custos retention ID CATEGORY [--reason TEXT]",
     "Sets an item's retention category. A category that would let it be deleted\n"
     "sooner becomes a request for a different legal user to approve.\n", 2, false},
    {"request", "custos request delete ID --reason TEXT",
     "Asks for an item to be deleted. A different legal user must approve it; a hold\n"
     "on the item or its cases stops it. Prints the request's id.\n", 2, true},
    {"approve", "custos approve REQUEST [--reason TEXT]",
     "Approves a pending request (legal users only, never its maker): the action runs now.\n", 1, false},
    {"refuse", "custos refuse REQUEST --reason TEXT",
     "Refuses a pending request (legal users only, never its maker).\n", 1, true},
    {"requests", "custos requests [--state proposed|pending|done|refused] [--json]",
     "Lists requests (and the retention sweep's proposals, state proposed).\n", 0, false},
    {"holds", "custos holds [--all] [--json]", "Lists active holds (--all: released ones too).\n", 0, false},
};

static void print_json(const json_t *v) {
  char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
  printf("%s\n", s);
  free(s);
}

static const char *who(const json_t *actor) {
  const char *u = cu_json_str(actor, "user");
  return u ? u : cu_json_str(actor, "token_id") ? cu_json_str(actor, "token_id") : "?";
}

static void print_request(const json_t *r) {
  const char *target = cu_json_str(r, "evidence") ? cu_json_str(r, "evidence") : cu_json_str(r, "hold");
  printf("%s  %-9s %-17s %s%s%s  by %s: %s\n", cu_json_str(r, "id"), cu_json_str(r, "state"),
         cu_json_str(r, "action"), target ? target : "", cu_json_str(r, "category") ? " -> " : "",
         cu_json_str(r, "category") ? cu_json_str(r, "category") : "", who(json_object_get(r, "requested_by")),
         cu_json_str(r, "reason"));
  if (json_object_get(r, "decided_by"))
    printf("    %s by %s: %s\n", cu_json_str(r, "state"), who(json_object_get(r, "decided_by")),
           cu_json_str(r, "decision_reason") ? cu_json_str(r, "decision_reason") : "");
}

static int run(const gov_cmd *gc, int argc, char **argv) {
  client cl = {0};
  bool as_json = false, all = false;
  const char *reason = NULL, *case_id = NULL, *state = NULL;
  enum { O_REASON = 2000, O_CASE, O_STATE, O_ALL };
  static const struct option opts[] = {{"reason", required_argument, 0, O_REASON},
                                       {"case", required_argument, 0, O_CASE},
                                       {"state", required_argument, 0, O_STATE},
                                       {"all", no_argument, 0, O_ALL},
                                       {"json", no_argument, 0, OPT_JSON},
                                       CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  json_t *body = json_object(), *out = NULL;
  cu_buf path = CU_BUF_INIT(2048);
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == O_REASON) reason = optarg;
    else if (c == O_CASE) case_id = optarg;
    else if (c == O_STATE) state = optarg;
    else if (c == O_ALL) all = true;
    else if (c == OPT_JSON) as_json = true;
    else if (c == 'h') { printf("usage: %s\n\n%s", gc->usage, gc->help); goto done; }
    else { fprintf(stderr, "usage: %s\n", gc->usage); rc = EXIT_USAGE; goto done; }
  }
  int n = argc - optind;
  char **a = argv + optind;
  bool hold_args_ok = !strcmp(gc->name, "hold") && ((case_id && n == 0) || (!case_id && n == 1));
  if ((gc->nargs >= 0 && n != gc->nargs) || (gc->nargs < 0 && !hold_args_ok)) {
    rc = cli_usage_error(gc->name, "usage: %s", gc->usage);
    goto done;
  }
  if (!strcmp(gc->name, "request") && strcmp(a[0], "delete")) {
    rc = cli_usage_error(gc->name, "the only request made this way is 'delete' (releases: custos release; retention: custos retention)");
    goto done;
  }
  if (gc->reason_required && !reason) {
    rc = cli_usage_error(gc->name, "--reason is required: the ledger keeps why");
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos %s: %s\n", gc->name, cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  cu_json_set_str(body, "reason", reason);
  const char *method = "POST";
  long st = 0;
  if (!strcmp(gc->name, "hold")) {
    cu_json_set_str(body, case_id ? "case" : "evidence", case_id ? case_id : a[0]);
    cu_buf_adds(&path, "/v1/holds");
  } else if (!strcmp(gc->name, "release")) {
    method = "DELETE";
    cu_buf_printf(&path, "/v1/holds/%s", a[0]);
  } else if (!strcmp(gc->name, "retention")) {
    method = "PUT";
    cu_json_set_str(body, "category", a[1]);
    cu_buf_printf(&path, "/v1/evidence/%s/retention", a[0]);
  } else if (!strcmp(gc->name, "request")) {
    cu_json_set_str(body, "action", "delete");
    cu_json_set_str(body, "evidence", a[1]);
    cu_buf_adds(&path, "/v1/requests");
  } else if (!strcmp(gc->name, "approve") || !strcmp(gc->name, "refuse")) {
    cu_buf_printf(&path, "/v1/requests/%s/%s", a[0], gc->name);
  } else {
    method = "GET";
    json_decref(body);
    body = NULL;
    if (!strcmp(gc->name, "holds")) cu_buf_adds(&path, all ? "/v1/holds?all=true" : "/v1/holds");
    else {
      cu_buf_adds(&path, "/v1/requests");
      if (state) client_query_add(&path, "state", state);
    }
  }
  int err = client_json(&cl, method, path.data, body, &st, &out);
  if (err) {
    fprintf(stderr, "custos %s: %s\n", gc->name, cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  if (as_json) {
    print_json(out);
    goto done;
  }
  size_t i;
  json_t *v;
  if (!strcmp(gc->name, "hold")) {
    printf("%s\n", cu_json_str(out, "id"));
  } else if (!strcmp(gc->name, "release") || !strcmp(gc->name, "request")) {
    printf("%s\n", cu_json_str(out, "id"));
    fprintf(stderr, "custos %s: request %s is pending: a different legal user must approve it (custos approve %s)\n",
            gc->name, cu_json_str(out, "id"), cu_json_str(out, "id"));
  } else if (!strcmp(gc->name, "retention")) {
    if (st == 202) {
      json_t *q = json_object_get(out, "request");
      printf("%s\n", cu_json_str(q, "id"));
      fprintf(stderr, "custos retention: a shorter retention needs approval: request %s is pending\n", cu_json_str(q, "id"));
    } else {
      printf("%s %s (%s); earliest deletion: %s\n", a[0], cu_json_str(out, "category"), cu_json_str(out, "rule"),
             cu_json_str(out, "earliest_deletion_at") ? cu_json_str(out, "earliest_deletion_at")
                                                       : cu_json_str(out, "why"));
    }
  } else if (!strcmp(gc->name, "approve") || !strcmp(gc->name, "refuse")) {
    print_request(out);
  } else if (!strcmp(gc->name, "holds")) {
    json_array_foreach(json_object_get(out, "items"), i, v) {
      printf("%s  %-8s %s %s  by %s at %s: %s\n", cu_json_str(v, "id"), cu_json_str(v, "state"), cu_json_str(v, "target"),
             cu_json_str(v, "case") ? cu_json_str(v, "case") : cu_json_str(v, "evidence"),
             who(json_object_get(v, "set_by")), cu_json_str(v, "set_at"), cu_json_str(v, "reason"));
    }
  } else {
    json_array_foreach(json_object_get(out, "items"), i, v) print_request(v);
  }
done:
  json_decref(body);
  json_decref(out);
  cu_buf_release(&path);
  client_release(&cl);
  return rc;
}

static int by_name(const char *name, int argc, char **argv) {
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
    if (!strcmp(cmds[i].name, name)) return run(&cmds[i], argc, argv);
  return EXIT_USAGE;
}

int cmd_hold(int argc, char **argv) { return by_name("hold", argc, argv); }
int cmd_release(int argc, char **argv) { return by_name("release", argc, argv); }
int cmd_retention(int argc, char **argv) { return by_name("retention", argc, argv); }
int cmd_request(int argc, char **argv) { return by_name("request", argc, argv); }
int cmd_approve(int argc, char **argv) { return by_name("approve", argc, argv); }
int cmd_refuse(int argc, char **argv) { return by_name("refuse", argc, argv); }
int cmd_requests(int argc, char **argv) { return by_name("requests", argc, argv); }
int cmd_holds(int argc, char **argv) { return by_name("holds", argc, argv); }
