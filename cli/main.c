/* custos: the server and its command-line client in one binary. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "banned.h"

static const struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"serve", cmd_serve, "run the archive server"},
    {"token", cmd_token, "create access tokens (admin)"},
    {"push", cmd_push, "upload recordings, resuming across failures; --watch a dock folder"},
    {"ls", cmd_ls, "list evidence"},
    {"show", cmd_show, "show one evidence record"},
    {"case", cmd_case, "create, list, show and change cases; link evidence; assign reviewers"},
    {"get", cmd_get, "download an original or a derived copy, proved by the signed ledger"},
    {"clip", cmd_clip, "save a part of a recording as MP4 (copy or --exact) and prove it"},
    {"events", cmd_events, "show an item's chain of custody from its ledger events"},
    {"hold", cmd_hold, "put a legal hold on a case or an item (legal, admin)"},
    {"holds", cmd_holds, "list legal holds"},
    {"release", cmd_release, "ask for a hold to be lifted (needs a second legal user's approval)"},
    {"retention", cmd_retention, "set an item's retention category (shorter: needs approval)"},
    {"request", cmd_request, "ask for an item to be deleted (needs a second legal user's approval)"},
    {"requests", cmd_requests, "list deletion, release and retention requests and proposals"},
    {"approve", cmd_approve, "approve someone else's request (legal); the action runs"},
    {"refuse", cmd_refuse, "refuse someone else's request (legal)"},
    {"timestamp", cmd_timestamp, "download an original's RFC 3161 time-stamp token"},
    {"verify", cmd_verify, "check offline a stopped server's data, or an export bag"},
    {"scrub", cmd_scrub, "re-hash every stored object now and report any that changed"},
    {"jobs", cmd_jobs, "list queued, running and failed background jobs (admin)"},
    {"stats", cmd_stats, "recordings, hours, bytes, ingest lag and failed jobs, per group (legal, admin)"},
    {"export", cmd_export, "export a case as a verifiable BagIt bag (tar or directory; legal, admin)"},
};

static int usage(FILE *f) {
  fprintf(f, "usage: custos <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n'custos <command> --help' describes a command's options.\n");
  return f == stdout ? EXIT_OK : EXIT_USAGE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "custos %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  return EXIT_USAGE;
}

int cli_exit_for(int code) {
  switch (code) {
  case CU_OK: return EXIT_OK;
  case CU_ECORRUPT:
  case CU_ECHECKSUM: return EXIT_CORRUPT;
  default: return EXIT_FAIL;
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return usage(stderr);
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
    return usage(stdout);
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
    if (strcmp(argv[1], commands[i].name)) continue;
    int rc = commands[i].run(argc - 1, argv + 1);
    /* Like git: output that did not reach its destination is a failure,
     * so `custos ls > file` on a full disk does not pass silently. */
    if (fflush(stdout) || ferror(stdout) || fclose(stdout)) {
      perror("custos: cannot write output");
      return EXIT_FAIL;
    }
    return rc;
  }
  fprintf(stderr, "custos: '%s' is not a command\n", argv[1]);
  return usage(stderr);
}
