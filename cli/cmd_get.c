/* custos get: the original's bytes (or a rendition's), checked. The
 * download goes to a temporary file beside the target and is renamed into
 * place only when its SHA-256 matches the record and the ledger proves the
 * record's hash under a pinned key (prove.h); otherwise it is deleted. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "hex.h"
#include "prove.h"
#include "timeu.h"
#include "banned.h"

static const char help[] =
    "usage: custos get ID -o FILE [--rendition R] [--ledger-key FILE]\n"
    "\n"
    "Downloads the original bytes of evidence ID into FILE and proves them: their\n"
    "SHA-256 must be the evidence record's, the server's ledger must hold the event\n"
    "recording that hash (its inclusion proof checked against a signed tree head),\n"
    "and the head must be signed by the pinned ledger key. If anything differs,\n"
    "nothing is left at FILE, the reason is printed and the exit status is 3.\n"
    "\n"
    "  --rendition R     original (default), master, access, framehash or poster:\n"
    "                    a derived copy, checked against its own record and event\n"
    "  --ledger-key FILE trust the ledger verifier key (the \"vkey\" of\n"
    "                    GET /v1/ledger/key) in FILE; if FILE does not exist, the\n"
    "                    server's key is saved there on first use\n"
    "\n"
    "Without --ledger-key, each server's key is pinned on first use in\n"
    "$XDG_CONFIG_HOME/custos/ledger-keys (default ~/.config/custos/ledger-keys),\n"
    "one line per server: \"<server-url> <vkey>\". A server that later presents\n"
    "another key is refused; edit its line if the change is legitimate.\n";

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut, curl_off_t un) {
  cli_sink *s = ud;
  cli_progress("downloading", (uint64_t)dlnow, s->total, s->started);
  return 0;
}

int cmd_get(int argc, char **argv) {
  client cl = {0};
  const char *out = NULL, *rendition = "original", *key_file = NULL;
  enum { O_RENDITION = 2000, O_LEDGER_KEY };
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"rendition", required_argument, 0, O_RENDITION},
                                       {"ledger-key", required_argument, 0, O_LEDGER_KEY}, CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  char *tmp = NULL, *url = NULL, *auth = NULL;
  json_t *rec = NULL, *proof = NULL;
  cli_sink s = {.fd = -1};
  while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == 'o') out = optarg;
    else if (c == O_RENDITION) rendition = optarg;
    else if (c == O_LEDGER_KEY) key_file = optarg;
    else if (c == 'h') { fputs(help, stdout); goto done; }
    else { fputs(help, stderr); rc = EXIT_USAGE; goto done; }
  }
  if (optind != argc - 1 || !out) {
    rc = cli_usage_error("get", "usage: custos get ID -o FILE");
    goto done;
  }
  if (strcmp(rendition, "original") && strcmp(rendition, "master") && strcmp(rendition, "access") &&
      strcmp(rendition, "framehash") && strcmp(rendition, "poster")) {
    rc = cli_usage_error("get", "--rendition must be original, master, access, framehash or poster");
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos get: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  const char *id = argv[optind];
  char *path = cu_xasprintf("/v1/evidence/%s", id);
  int err = client_json(&cl, "GET", path, NULL, NULL, &rec);
  free(path);
  if (err) {
    fprintf(stderr, "custos get: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  json_t *src = rec;
  if (strcmp(rendition, "original")) {
    src = json_object_get(json_object_get(rec, "renditions"), rendition);
    const char *state = cu_json_str(src, "state");
    if (!state || strcmp(state, "done")) {
      fprintf(stderr, "custos get: evidence %s has no %s to download%s%s%s\n", id, rendition,
              state ? " (it is " : "", state ? state : "", state ? ")" : "");
      if (state && cu_json_str(src, "error")) fprintf(stderr, "  %s\n", cu_json_str(src, "error"));
      if (state && cu_json_str(src, "reason")) fprintf(stderr, "  %s\n", cu_json_str(src, "reason"));
      rc = EXIT_FAIL;
      goto done;
    }
  }
  const char *want = cu_json_str(src, "sha256");
  s.total = (uint64_t)cu_json_int(src, "size", 0);
  tmp = cu_xasprintf("%s.custos-part", out);
  s.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (s.fd < 0) {
    fprintf(stderr, "custos get: cannot create %s: %s\n", tmp, strerror(errno));
    rc = EXIT_FAIL;
    goto done;
  }
  s.h = cu_sha256_new();
  s.started = cu_mono_us();
  url = cu_xasprintf("%s/v1/evidence/%s/content?rendition=%s", cl.server, id, rendition);
  auth = cu_xasprintf("Authorization: Bearer %s", cl.token);
  CURL *h = curl_easy_init();
  struct curl_slist *hdr = curl_slist_append(NULL, auth);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cli_sink_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
  CURLcode cc = curl_easy_perform(h);
  cli_progress_end();
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  unsigned char d[32];
  char got[65];
  cu_sha256_final(s.h, d);
  cu_hex_encode(d, 32, got);
  if (cc != CURLE_OK || s.err) {
    fprintf(stderr, "custos get: download failed: %s\n",
            s.err ? strerror(s.err) : curl_easy_strerror(cc));
    rc = EXIT_FAIL;
  } else if (!want || strcmp(got, want)) {
    fprintf(stderr,
            "custos get: REFUSED: the bytes received hash to %s but the %s of evidence %s is %s; "
            "nothing was written to %s\n",
            got, rendition, id, want ? want : "(no hash)", out);
    rc = EXIT_CORRUPT;
  } else if ((err = cli_prove(&cl, key_file, id, rendition, want, &proof))) {
    fprintf(stderr, "custos get: REFUSED: %s; nothing was written to %s\n", cu_errmsg(), out);
    rc = cli_exit_for(err);
  } else if (fsync(s.fd) < 0 || close(s.fd) < 0 || (s.fd = -1, rename(tmp, out) < 0)) {
    fprintf(stderr, "custos get: cannot save %s: %s\n", out, strerror(errno));
    rc = EXIT_FAIL;
  } else {
    printf("%s %s %s\n", id, got, out);
    cli_prove_report("get", proof);
    free(tmp);
    tmp = NULL;
  }
done:
  if (s.fd >= 0) close(s.fd);
  if (tmp) unlink(tmp);
  cu_sha256_free(s.h);
  free(tmp);
  free(url);
  free(auth);
  json_decref(rec);
  json_decref(proof);
  client_release(&cl);
  return rc;
}
