/* custos push: upload recordings with the tus client in ingest/push.c, or
 * (--watch) run as a dock that uploads whatever appears in a folder. The
 * protocol, the retries and the state directory live in ingest/; this file
 * is options, output and exit codes. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cu_limits.h"
#include "err.h"
#include "id.h"
#include "log.h"
#include "push.h"
#include "timeu.h"
#include "watch.h"
#include "banned.h"

static const char help[] =
    "usage: custos push [options] FILE|DIR...\n"
    "       custos push --watch DIR [--delete-after-verify] [--settle SECONDS] [options]\n"
    "\n"
    "Uploads recordings to the archive with tus 1.0, resuming across dropped\n"
    "connections, server restarts and runs of this command. Each file is hashed\n"
    "(SHA-256) first and the hash sent along; the server refuses bytes that do\n"
    "not match it. A DIR uploads every regular file under it, recursively, in\n"
    "sorted order, skipping names that start with '.'.\n"
    "\n"
    "For each file uploaded it prints '<evidence-id> <sha256> <path>' on stdout.\n"
    "\n"
    "Metadata (recorded in the evidence record):\n"
    "  --device ID            the recorder that made the files (a recorder token\n"
    "                         may only name its own device; it is the default)\n"
    "  --officer ID           the officer who wore or ran it\n"
    "  --case ID              the case the files belong to\n"
    "  --retention CATEGORY   the retention category to keep them under\n"
    "  --recorded-at TIME     when recording started (RFC 3339; not with --watch)\n"
    "\n"
    "Transfer:\n"
    "  --retries N            failed attempts in a row, without the server's offset\n"
    "                         moving forward, before giving up on a file (default 10;\n"
    "                         0 = never give up; --watch never gives up by default).\n"
    "                         Pauses double from 0.5 s to 30 s, with jitter.\n"
    "  --max-rate BYTES       send at most BYTES per second\n"
    "  --chunk-size BYTES     send at most BYTES per PATCH (default: all in one)\n"
    "  --state-dir DIR        where interrupted uploads are remembered (default\n"
    "                         $XDG_STATE_HOME/custos or ~/.local/state/custos)\n"
    "\n"
    "Dock mode:\n"
    "  --watch DIR            watch DIR and its subfolders until SIGINT or SIGTERM;\n"
    "                         a file is uploaded once, when its writer closes it or\n"
    "                         it is moved in, or when a rescan finds its size and\n"
    "                         time unchanged for the settle time\n"
    "  --settle SECONDS       rescan period and settle time (default 5)\n"
    "  --delete-after-verify  delete each file once the server's SHA-256 of it\n"
    "                         matched ours (never otherwise)\n"
    "\n"
    "  --server URL  --token SECRET  --token-file FILE   (see custos --help)\n"
    "\n"
    "An interrupted upload (a killed process, a lost link) resumes where the\n"
    "server's durable offset stands when the same file is pushed again. The\n"
    "state directory (0700) holds uploads/<fingerprint>.json while an upload is\n"
    "in progress and done/<fingerprint>.json (the evidence id) after; the\n"
    "fingerprint covers the server, the file's path, size, mtime and inode.\n"
    "\n"
    "Exit status: 0 if every file was uploaded and verified, 3 if the server's\n"
    "SHA-256 of a file differed from ours, 1 for any other failure, 2 for a bad\n"
    "command line. --watch exits 0 when stopped by a signal.\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  stop_requested = 1;
}

/* The first SIGINT/SIGTERM asks to stop (an upload in flight is parked);
 * SA_RESETHAND makes a second one end the process at once. */
static void catch_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND; /* no SA_RESTART: poll and sleeps wake up */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

typedef struct {
  int64_t started;
  const char *label;
} progress_ctx;

static void on_progress(void *ud, const char *path, uint64_t done, uint64_t total) {
  progress_ctx *pc = ud;
  cli_progress(pc->label, done, total, pc->started);
}

static void print_result(const char *path, const push_result *r) {
  printf("%s %s %s\n", r->evidence_id, r->sha256, path);
  fflush(stdout);
}

static void on_uploaded(void *ud, const char *path, const push_result *r) {
  print_result(path, r);
}

static int num_opt(const char *name, const char *arg, int64_t min, int64_t *out) {
  if (cu_parse_i64(arg, out, 0) || *out < min)
    return cli_usage_error("push", "--%s must be a whole number >= %lld, not '%s'", name,
                           (long long)min, arg);
  return 0;
}

/* Pushes one file; returns its exit code. */
static int push_one(push_client *pc, progress_ctx *prog, const char *path) {
  push_result r;
  const char *slash = strrchr(path, '/');
  prog->label = slash ? slash + 1 : path;
  prog->started = cu_mono_us();
  int rc = push_file(pc, path, &r);
  cli_progress_end();
  if (rc) {
    fprintf(stderr, "custos push: %s: %s\n", path, cu_errmsg());
    return rc == CU_ECHECKSUM || rc == CU_ECORRUPT ? EXIT_CORRUPT : EXIT_FAIL;
  }
  print_result(path, &r);
  return EXIT_OK;
}

static int worse(int a, int b) {
  if (a == EXIT_CORRUPT || b == EXIT_CORRUPT) return EXIT_CORRUPT;
  return a ? a : b;
}

int cmd_push(int argc, char **argv) {
  client cl = {0};
  push_opts po = {.retries = -1};
  const char *watch_dir = NULL, *state_dir = NULL;
  char *state_default = NULL;
  bool delete_after = false, settle_given = false;
  int64_t settle = 5, v;
  push_client *pc = NULL;
  int rc = EXIT_OK;
  enum {
    O_DEVICE = 1,
    O_OFFICER,
    O_CASE,
    O_RETENTION,
    O_RECORDED,
    O_STATE,
    O_RETRIES,
    O_RATE,
    O_CHUNK,
    O_WATCH,
    O_DELETE,
    O_SETTLE
  };
  static const struct option opts[] = {{"device", required_argument, 0, O_DEVICE},
                                       {"officer", required_argument, 0, O_OFFICER},
                                       {"case", required_argument, 0, O_CASE},
                                       {"retention", required_argument, 0, O_RETENTION},
                                       {"recorded-at", required_argument, 0, O_RECORDED},
                                       {"state-dir", required_argument, 0, O_STATE},
                                       {"retries", required_argument, 0, O_RETRIES},
                                       {"max-rate", required_argument, 0, O_RATE},
                                       {"chunk-size", required_argument, 0, O_CHUNK},
                                       {"watch", required_argument, 0, O_WATCH},
                                       {"delete-after-verify", no_argument, 0, O_DELETE},
                                       {"settle", required_argument, 0, O_SETTLE},
                                       CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    switch (c) {
    case O_DEVICE: po.device_id = optarg; break;
    case O_OFFICER: po.officer_id = optarg; break;
    case O_CASE: po.case_id = optarg; break;
    case O_RETENTION: po.retention = optarg; break;
    case O_RECORDED: po.recorded_at = optarg; break;
    case O_STATE: state_dir = optarg; break;
    case O_RETRIES:
      if ((rc = num_opt("retries", optarg, 0, &v))) goto done;
      po.retries = v > 1000000 ? 1000000 : (int)v;
      break;
    case O_RATE:
      if ((rc = num_opt("max-rate", optarg, 1, &po.max_rate))) goto done;
      break;
    case O_CHUNK:
      if ((rc = num_opt("chunk-size", optarg, 1, &po.chunk_size))) goto done;
      break;
    case O_WATCH: watch_dir = optarg; break;
    case O_DELETE: delete_after = true; break;
    case O_SETTLE:
      if ((rc = num_opt("settle", optarg, 1, &settle))) goto done;
      if (settle > 86400) settle = 86400;
      settle_given = true;
      break;
    case 'h': fputs(help, stdout); goto done;
    default:
      fputs(help, stderr);
      rc = EXIT_USAGE;
      goto done;
    }
  }
  /* Check what the server would refuse anyway, before hashing gigabytes. */
  const char *names[] = {"device", "officer", "case"};
  const char *vals[] = {po.device_id, po.officer_id, po.case_id};
  for (int i = 0; i < 3; i++) {
    if (vals[i] && !cu_name_valid(vals[i])) {
      rc = cli_usage_error("push", "--%s must be 1-%d characters of letters, digits and . _ : @ -",
                           names[i], CU_MAX_ID_LEN);
      goto done;
    }
  }
  int64_t us;
  if (po.recorded_at && cu_time_parse_rfc3339(po.recorded_at, &us)) {
    rc = cli_usage_error("push", "--recorded-at: %s", cu_errmsg());
    goto done;
  }
  if (watch_dir) {
    if (optind < argc) {
      rc = cli_usage_error("push", "--watch takes no FILE arguments (got '%s')", argv[optind]);
      goto done;
    }
    if (po.recorded_at) {
      rc = cli_usage_error("push", "--recorded-at cannot be used with --watch: each recording "
                                   "has its own time");
      goto done;
    }
  } else {
    if (delete_after || settle_given) {
      rc = cli_usage_error("push", "--%s needs --watch DIR",
                           delete_after ? "delete-after-verify" : "settle");
      goto done;
    }
    if (optind >= argc) {
      rc = cli_usage_error("push", "nothing to push: name FILEs or DIRs, or use --watch DIR");
      goto done;
    }
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos push: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  if (!state_dir) {
    if (push_default_state_dir(&state_default)) {
      rc = cli_usage_error("push", "%s", cu_errmsg());
      goto done;
    }
    state_dir = state_default;
  }
  if (po.retries < 0) po.retries = watch_dir ? 0 : 10;
  progress_ctx prog = {0};
  po.server = cl.server;
  po.token = cl.token;
  po.state_dir = state_dir;
  po.stop = &stop_requested;
  if (!watch_dir) {
    po.progress = on_progress;
    po.progress_ud = &prog;
  }
  if (push_open(&pc, &po)) {
    fprintf(stderr, "custos push: %s\n", cu_errmsg());
    rc = EXIT_FAIL;
    goto done;
  }
  catch_signals();

  if (watch_dir) {
    watch_opts wo = {.dir = watch_dir,
                     .settle_s = (int)settle,
                     .delete_after_verify = delete_after,
                     .stop = &stop_requested,
                     .uploaded = on_uploaded};
    if (watch_run(pc, &wo)) {
      fprintf(stderr, "custos push: %s\n", cu_errmsg());
      rc = EXIT_FAIL;
    }
    goto done;
  }

  for (int i = optind; i < argc && !stop_requested; i++) {
    const char *arg = argv[i];
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
      char **files = NULL;
      size_t n = 0;
      if (push_list_files(arg, &files, &n)) {
        fprintf(stderr, "custos push: %s: %s\n", arg, cu_errmsg());
        rc = worse(rc, EXIT_FAIL);
        continue;
      }
      if (!n) fprintf(stderr, "custos push: %s: no files to push\n", arg);
      for (size_t k = 0; k < n && !stop_requested; k++)
        rc = worse(rc, push_one(pc, &prog, files[k]));
      push_list_free(files, n);
    } else {
      rc = worse(rc, push_one(pc, &prog, arg));
    }
  }
  if (stop_requested) {
    fprintf(stderr, "custos push: stopped; run the same command again to resume\n");
    rc = worse(rc, EXIT_FAIL);
  }
done:
  push_free(pc);
  free(state_default);
  client_release(&cl);
  return rc;
}
