/* custos verify --home DIR: the offline check of a stopped server's data.
 * custos verify BAG: the offline check of an export bag (a directory, or
 * the .tar the server hands out, extracted into a temporary directory
 * first). */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bag_verify.h"
#include "cli.h"
#include "err.h"
#include "fsutil.h"
#include "tar.h"
#include "timeu.h"
#include "verify.h"
#include "banned.h"

static const char help[] =
    "usage: custos verify --home DIR [--json] [--tsa-ca FILE] [--ledger-key FILE]\n"
    "       custos verify BAG [--json] [--tsa-ca FILE] [--ledger-key FILE]\n"
    "\n"
    "With --home, checks a Custos home offline (stop the server first): re-hashes every\n"
    "stored object, checks every RFC 3161 token, rebuilds the ledger's Merkle tree from its\n"
    "entries, and checks every signed tree head's signature, its root, and the\n"
    "consistency of each head with the one before. Each failure names the evidence,\n"
    "ledger index or tree size and what differs.\n"
    "\n"
    "With BAG (an export bag's directory, or its .tar, which is extracted into a\n"
    "temporary directory under $TMPDIR or /tmp and removed afterwards), checks the bag\n"
    "offline, as docs/EXPORT.md lists: BagIt 1.0 completeness and validity (RFC 8493:\n"
    "bagit.txt, both payload manifests and the tag manifest, every checksum,\n"
    "Payload-Oxum), the signed tree head under the bag's ledger key, every event's\n"
    "inclusion proof to it, that every payload file is recorded by a proved event and\n"
    "every derived copy's source is an original in the bag, every time-stamp token, and\n"
    "that REPORT.json agrees. Each failure names the file, manifest line, ledger index\n"
    "or token, and what was expected and found.\n"
    "\n"
    "  --tsa-ca FILE      trust these TSA root certificates instead of the recorded ones\n"
    "                     (custody/tsa-root.pem in a bag)\n"
    "  --ledger-key FILE  trust this ledger verifier key (from GET /v1/ledger/key or\n"
    "                     published elsewhere) instead of the key in DIR/keys; for a bag,\n"
    "                     the head must verify under it too, and it must be the bag's key\n"
    "  --json             print the report as JSON\n"
    "\n"
    "Exit status: 0 all checks passed, 3 corruption found, 1 the checks could not run.\n";

static int64_t started;

static void progress(void *ud, uint64_t done, uint64_t total) {
  cli_progress("re-hashing objects", done, total, started);
}

static void bag_progress(void *ud, uint64_t done, uint64_t total) {
  cli_progress("hashing the bag's files", done, total, started);
}

static uint64_t tar_total;

static void tar_progress(void *ud, uint64_t done) {
  cli_progress("extracting the tar", done, tar_total, started);
}

static void print_list(const json_t *list, const char *label) {
  size_t i;
  json_t *f;
  json_array_foreach(list, i, f) printf("%s %s\n", label, cu_json_str(f, "message"));
}

static void print_json(const json_t *r) {
  char *s = json_dumps(r, JSON_INDENT(2) | JSON_SORT_KEYS);
  puts(s);
  free(s);
}

static int verify_home_cmd(verify_opts *o, bool as_json) {
  started = cu_mono_us();
  json_t *r = NULL;
  int rc = verify_home(o, &r);
  cli_progress_end();
  if (rc) {
    fprintf(stderr, "custos verify: %s\n", cu_errmsg());
    return EXIT_FAIL;
  }
  bool ok = json_is_true(json_object_get(r, "ok"));
  if (as_json) {
    print_json(r);
  } else {
    const json_t *k = json_object_get(r, "checked");
    printf("custos verify: %s\n", cu_json_str(r, "home"));
    printf("  objects       %lld re-hashed (%lld bytes) for %lld evidence records\n",
           (long long)cu_json_int(k, "objects", 0), (long long)cu_json_int(k, "bytes", 0),
           (long long)cu_json_int(k, "evidence", 0));
    printf("  ledger        %lld entries re-hashed, the Merkle tree rebuilt\n",
           (long long)cu_json_int(k, "ledger_entries", 0));
    printf("  signed heads  %lld checked: signature, root, consistency with the one before\n",
           (long long)cu_json_int(k, "signed_heads", 0));
    printf("  time-stamps   %lld RFC 3161 tokens verified\n",
           (long long)cu_json_int(k, "tokens", 0));
    print_list(json_object_get(r, "warnings"), "WARNING");
    print_list(json_object_get(r, "failures"), "FAILED");
    int64_t nf = cu_json_int(r, "failure_count", 0);
    if (nf > (int64_t)json_array_size(json_object_get(r, "failures")))
      printf("FAILED ... and %lld more\n",
             (long long)(nf - (int64_t)json_array_size(json_object_get(r, "failures"))));
    if (ok)
      printf("All checks passed.\n");
    else
      printf("CORRUPTION FOUND: %lld failure(s).\n", (long long)nf);
  }
  json_decref(r);
  return ok ? EXIT_OK : EXIT_CORRUPT;
}

/* ---- a bag -------------------------------------------------------------- */

static const struct {
  const char *name, *title;
} groups[] = {
    {"bagit", "BagIt"},     {"sth", "signed head"},        {"proofs", "proofs"},
    {"custody", "custody"}, {"timestamps", "time-stamps"}, {"report", "REPORT.json"},
};

/* What a group checked, for its line. */
static void group_summary(const char *g, const json_t *k, char *out, size_t n) {
  long long files = cu_json_int(k, "files", 0), bytes = cu_json_int(k, "bytes", 0);
  if (!strcmp(g, "bagit"))
    snprintf(out, n,
             "%lld payload files (%lld bytes) and %lld tag files against %lld manifests; "
             "Payload-Oxum",
             files, bytes, (long long)cu_json_int(k, "tag_files", 0),
             (long long)cu_json_int(k, "manifests", 0));
  else if (!strcmp(g, "sth"))
    snprintf(out, n, "custody/checkpoint.txt signed by %s for size %lld; sth.json agrees",
             cu_json_str(k, "origin") ? cu_json_str(k, "origin") : "?",
             (long long)cu_json_int(k, "tree_size", -1));
  else if (!strcmp(g, "proofs"))
    snprintf(out, n, "%lld of %lld events proved to the signed root (RFC 9162 inclusion)",
             (long long)cu_json_int(k, "proofs", 0), (long long)cu_json_int(k, "events", 0));
  else if (!strcmp(g, "custody"))
    snprintf(out, n,
             "%lld payload files of %lld items recorded by proved events; derived copies' "
             "sources in the bag",
             files, (long long)cu_json_int(k, "items", 0));
  else if (!strcmp(g, "timestamps"))
    snprintf(out, n, "%lld RFC 3161 tokens checked", (long long)cu_json_int(k, "tokens", 0));
  else
    snprintf(out, n, "agrees with the manifests, the head and the events");
}

static void print_bag(const json_t *r, const char *shown) {
  const json_t *k = json_object_get(r, "checked"), *checks = json_object_get(r, "checks");
  const json_t *failures = json_object_get(r, "failures");
  printf("custos verify: %s\n", shown);
  for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
    const json_t *c = json_object_get(checks, groups[g].name);
    char sum[512];
    if (json_is_true(json_object_get(c, "ok"))) {
      group_summary(groups[g].name, k, sum, sizeof sum);
      printf("  \u2713 %-12s %s\n", groups[g].title, sum);
    } else {
      printf("  FAILED %-7s %lld failure(s)\n", groups[g].title,
             (long long)cu_json_int(c, "failures", 0));
      size_t i;
      json_t *f;
      json_array_foreach(failures, i, f) {
        const char *ck = cu_json_str(f, "check");
        if (ck && !strcmp(ck, groups[g].name))
          printf("FAILED %s: %s\n", ck, cu_json_str(f, "message"));
      }
    }
  }
  size_t i;
  json_t *w;
  json_array_foreach(json_object_get(r, "warnings"), i, w)
      printf("WARNING %s: %s\n", cu_json_str(w, "check"), cu_json_str(w, "message"));
  int64_t nf = cu_json_int(r, "failure_count", 0);
  if (nf > (int64_t)json_array_size(failures))
    printf("FAILED ... and %lld more\n", (long long)(nf - (int64_t)json_array_size(failures)));
  if (!nf)
    printf("All checks passed.\n");
  else
    printf("CORRUPTION FOUND: %lld failure(s).\n", (long long)nf);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

/* A tar refused by the extractor is a damaged bag: reported like the
 * other failures (exit 3), with --json too. */
static int tar_refused(const char *tar, const char *msg, bool as_json) {
  json_t *r =
      json_pack("{sssbs[{ssssss}]s[]sisi}", "bag", tar, "ok", 0, "failures", "check", "tar", "path",
                tar, "message", msg, "warnings", "failure_count", 1, "warning_count", 0);
  if (as_json) {
    print_json(r);
  } else {
    printf("custos verify: %s\n", tar);
    printf("  FAILED tar     the stream is not a well-formed tar of one bag\n");
    printf("FAILED tar: %s\n", msg);
    printf("CORRUPTION FOUND: 1 failure(s).\n");
  }
  json_decref(r);
  return EXIT_CORRUPT;
}

static int verify_bag_cmd(bag_verify_opts *o, const char *arg, bool as_json) {
  struct stat st;
  char *tmp = NULL, *top = NULL, *bagdir = NULL, *shown = NULL;
  json_t *r = NULL;
  int code = EXIT_FAIL;
  started = cu_mono_us();
  if (stat(arg, &st)) {
    fprintf(stderr, "custos verify: cannot read %s: %s\n", arg, strerror(errno));
    return EXIT_FAIL;
  }
  if (S_ISREG(st.st_mode)) {
    const char *base = getenv("TMPDIR");
    tmp = cu_xasprintf("%s/custos-verify.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp)) {
      fprintf(stderr, "custos verify: cannot make a temporary directory %s: %s\n", tmp,
              strerror(errno));
      free(tmp);
      return EXIT_FAIL;
    }
    tar_total = (uint64_t)st.st_size;
    tar_extract_opts xo = {.progress = tar_progress};
    int rc = tar_extract_file(arg, tmp, &xo, &top);
    cli_progress_end();
    if (rc == CU_EINVAL || rc == CU_ECORRUPT) {
      code = tar_refused(arg, cu_errmsg(), as_json);
      goto done;
    }
    if (rc) {
      fprintf(stderr, "custos verify: cannot extract %s: %s\n", arg, cu_errmsg());
      goto done;
    }
    bagdir = cu_path_join(tmp, top);
    shown = cu_xasprintf("%s (%s/)", arg, top);
    started = cu_mono_us();
  } else {
    bagdir = cu_xstrdup(arg);
    shown = cu_xstrdup(arg);
  }
  o->bag = bagdir;
  o->progress = bag_progress;
  int rc = bag_verify(o, &r);
  cli_progress_end();
  if (rc) {
    fprintf(stderr, "custos verify: %s\n", cu_errmsg());
    goto done;
  }
  cu_json_set_str(r, "bag", shown);
  if (as_json)
    print_json(r);
  else
    print_bag(r, shown);
  code = json_is_true(json_object_get(r, "ok")) ? EXIT_OK : EXIT_CORRUPT;
done:
  json_decref(r);
  if (tmp && nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS))
    fprintf(stderr, "custos verify: cannot remove the temporary directory %s\n", tmp);
  free(tmp);
  free(top);
  free(bagdir);
  free(shown);
  return code;
}

int cmd_verify(int argc, char **argv) {
  verify_opts o = {.progress = progress};
  bag_verify_opts bo = {0};
  bool as_json = false;
  enum { O_HOME = 1, O_CA, O_KEY };
  static const struct option opts[] = {{"home", required_argument, 0, O_HOME},
                                       {"tsa-ca", required_argument, 0, O_CA},
                                       {"ledger-key", required_argument, 0, O_KEY},
                                       {"json", no_argument, 0, OPT_JSON},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case O_HOME: o.home = optarg; break;
    case O_CA: o.tsa_ca_file = bo.tsa_ca_file = optarg; break;
    case O_KEY: o.ledger_key = bo.ledger_key = optarg; break;
    case OPT_JSON: as_json = true; break;
    case 'h': fputs(help, stdout); return EXIT_OK;
    default: fputs(help, stderr); return EXIT_USAGE;
    }
  }
  const char *bag = optind < argc ? argv[optind++] : NULL;
  if (optind < argc) return cli_usage_error("verify", "unexpected argument '%s'", argv[optind]);
  if (bag && o.home) return cli_usage_error("verify", "give either --home DIR or a BAG, not both");
  if (bag) return verify_bag_cmd(&bo, bag, as_json);
  if (!o.home)
    return cli_usage_error("verify",
                           "--home DIR (the server's data directory) or a BAG is required");
  return verify_home_cmd(&o, as_json);
}
