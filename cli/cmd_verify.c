/* custos verify --home DIR: the offline check of a stopped server's data. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "timeu.h"
#include "verify.h"
#include "banned.h"

static const char help[] =
    "usage: custos verify --home DIR [--json] [--tsa-ca FILE] [--ledger-key FILE]\n"
    "\n"
    "Checks a Custos home offline (stop the server first): re-hashes every stored\n"
    "object, checks every RFC 3161 token, rebuilds the ledger's Merkle tree from its\n"
    "entries, and checks every signed tree head's signature, its root, and the\n"
    "consistency of each head with the one before. Each failure names the evidence,\n"
    "ledger index or tree size and what differs.\n"
    "\n"
    "  --tsa-ca FILE      trust these TSA root certificates instead of the recorded ones\n"
    "  --ledger-key FILE  trust this ledger verifier key (from GET /v1/ledger/key)\n"
    "                     instead of the key in DIR/keys\n"
    "  --json             print the report as JSON\n"
    "\n"
    "Exit status: 0 all checks passed, 3 corruption found, 1 the checks could not run.\n";

static int64_t started;

static void progress(void *ud, uint64_t done, uint64_t total) {
  cli_progress("re-hashing objects", done, total, started);
}

static void print_list(const json_t *list, const char *label) {
  size_t i;
  json_t *f;
  json_array_foreach(list, i, f) printf("%s %s\n", label, cu_json_str(f, "message"));
}

int cmd_verify(int argc, char **argv) {
  verify_opts o = {.progress = progress};
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
    case O_CA: o.tsa_ca_file = optarg; break;
    case O_KEY: o.ledger_key = optarg; break;
    case OPT_JSON: as_json = true; break;
    case 'h': fputs(help, stdout); return EXIT_OK;
    default: fputs(help, stderr); return EXIT_USAGE;
    }
  }
  if (optind < argc) return cli_usage_error("verify", "unexpected argument '%s'", argv[optind]);
  if (!o.home) return cli_usage_error("verify", "--home DIR is required (the server's data directory)");
  started = cu_mono_us();
  json_t *r = NULL;
  int rc = verify_home(&o, &r);
  cli_progress_end();
  if (rc) {
    fprintf(stderr, "custos verify: %s\n", cu_errmsg());
    return EXIT_FAIL;
  }
  bool ok = json_is_true(json_object_get(r, "ok"));
  if (as_json) {
    char *s = json_dumps(r, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(s);
    free(s);
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
    printf("  time-stamps   %lld RFC 3161 tokens verified\n", (long long)cu_json_int(k, "tokens", 0));
    print_list(json_object_get(r, "warnings"), "WARNING");
    print_list(json_object_get(r, "failures"), "FAILED");
    int64_t nf = cu_json_int(r, "failure_count", 0);
    if (nf > (int64_t)json_array_size(json_object_get(r, "failures")))
      printf("FAILED ... and %lld more\n",
             (long long)(nf - (int64_t)json_array_size(json_object_get(r, "failures"))));
    if (ok) printf("All checks passed.\n");
    else printf("CORRUPTION FOUND: %lld failure(s).\n", (long long)nf);
  }
  json_decref(r);
  return ok ? EXIT_OK : EXIT_CORRUPT;
}
