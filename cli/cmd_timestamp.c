/* custos timestamp: an original's RFC 3161 token (a TimeStampResp, DER),
 * ready for `openssl ts -verify -digest SHA256 -in FILE -CAfile root.pem`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "fsutil.h"
#include "banned.h"

static const char help[] =
    "usage: custos timestamp ID -o FILE [--root FILE]\n"
    "\n"
    "Saves the RFC 3161 time-stamp token of evidence ID's SHA-256 to FILE (DER,\n"
    "a TimeStampResp), and with --root the TSA's root certificate (PEM). Check it\n"
    "with: openssl ts -verify -digest SHA256 -in FILE -CAfile ROOT\n";

int cmd_timestamp(int argc, char **argv) {
  client cl = {0};
  const char *out = NULL, *root = NULL;
  enum { O_ROOT = 1 };
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"root", required_argument, 0, O_ROOT},
                                       CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  cu_buf der = CU_BUF_INIT(1 << 20), pem = CU_BUF_INIT(1 << 20);
  char *path = NULL;
  json_t *rec = NULL;
  while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == 'o') out = optarg;
    else if (c == O_ROOT) root = optarg;
    else if (c == 'h') { fputs(help, stdout); goto done; }
    else { fputs(help, stderr); rc = EXIT_USAGE; goto done; }
  }
  if (optind != argc - 1 || !out) {
    rc = cli_usage_error("timestamp", "usage: custos timestamp ID -o FILE");
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos timestamp: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  const char *id = argv[optind];
  path = cu_xasprintf("/v1/evidence/%s", id);
  int err = client_json(&cl, "GET", path, NULL, NULL, &rec);
  free(path);
  path = cu_xasprintf("/v1/evidence/%s/timestamp", id);
  if (!err) err = client_get_bytes(&cl, path, &der);
  if (!err) err = cu_write_file_durable(out, der.data, der.len, 0644, 0);
  if (!err && root) {
    err = client_get_bytes(&cl, "/v1/tsa/root.pem", &pem);
    if (!err) err = cu_write_file_durable(root, pem.data, pem.len, 0644, 0);
  }
  if (err) {
    fprintf(stderr, "custos timestamp: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  printf("%s %s %s\n", id, cu_json_str(rec, "sha256"), out);
done:
  free(path);
  json_decref(rec);
  cu_buf_release(&der);
  cu_buf_release(&pem);
  client_release(&cl);
  return rc;
}
