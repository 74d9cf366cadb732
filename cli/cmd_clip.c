/* custos clip: a part of a recording, proved like custos get proves an
 * original. The server names the clip's rendition in Custos-Rendition; the
 * bytes must hash to that rendition's record, and the record's ledger
 * event must be in a signed tree under the pinned key. Until all of that
 * holds the bytes stay in a temporary file beside the target. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    "usage: custos clip ID --start T --end T [--exact] -o FILE [--ledger-key FILE]\n"
    "\n"
    "Saves the part of recording ID from --start to --end as an MP4 in FILE.\n"
    "Times are seconds from the start of the recording (90.5) or HH:MM:SS.mmm.\n"
    "\n"
    "  (default)  copy: the original's own packets, from the keyframe at or before\n"
    "             --start, so the clip may begin a little early; the server checks\n"
    "             every packet is the original's\n"
    "  --exact    frame-accurate, re-encoded (H.264 + AAC): nothing in it is the\n"
    "             original's bytes\n"
    "\n"
    "The server keeps each clip, so asking again gives the same bytes. The clip is\n"
    "proved as custos get proves an original: its SHA-256 against its record, the\n"
    "record's ledger entry against a signed tree head, the head against the pinned\n"
    "ledger key (--ledger-key FILE, or the per-user pin file). If anything differs,\n"
    "nothing is left at FILE and the exit status is 3.\n";

typedef struct {
  cli_sink out;   /* first: libcurl's write callback gets this struct */
  char kind[128]; /* Custos-Rendition */
} sink;

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  sink *s = ud;
  size_t len = size * n;
  static const char name[] = "Custos-Rendition:";
  if (len > sizeof name && !strncasecmp(p, name, sizeof name - 1)) {
    const char *v = p + sizeof name - 1;
    size_t vn = len - (sizeof name - 1);
    while (vn && (*v == ' ' || *v == '\t')) v++, vn--;
    while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' ')) vn--;
    if (vn < sizeof s->kind) {
      memcpy(s->kind, v, vn);
      s->kind[vn] = '\0';
    }
  }
  return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut, curl_off_t un) {
  sink *s = ud;
  if (dltotal > 0) cli_progress("downloading", (uint64_t)dlnow, (uint64_t)dltotal, s->out.started);
  return 0;
}

/* The body of an error answer (it went to the temporary file). */
static void server_reason(const char *tmp, char *out, size_t n) {
  out[0] = '\0';
  FILE *f = fopen(tmp, "r");
  if (!f) return;
  char buf[4096];
  size_t k = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[k] = '\0';
  json_t *v = NULL;
  if (!cu_json_parse(buf, k, &v) && cu_json_str(v, "detail")) snprintf(out, n, "%s", cu_json_str(v, "detail"));
  json_decref(v);
}

int cmd_clip(int argc, char **argv) {
  client cl = {0};
  const char *out = NULL, *start = NULL, *end = NULL, *key_file = NULL;
  bool exact = false;
  enum { O_START = 2000, O_END, O_EXACT, O_KEY };
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"start", required_argument, 0, O_START},
                                       {"end", required_argument, 0, O_END},
                                       {"exact", no_argument, 0, O_EXACT},
                                       {"ledger-key", required_argument, 0, O_KEY},
                                       CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  char *tmp = NULL, *url = NULL, *auth = NULL;
  json_t *rec = NULL, *proof = NULL;
  sink s = {.out = {.fd = -1}};
  cu_buf path = CU_BUF_INIT(1024);
  while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    if (c == 'o') out = optarg;
    else if (c == O_START) start = optarg;
    else if (c == O_END) end = optarg;
    else if (c == O_EXACT) exact = true;
    else if (c == O_KEY) key_file = optarg;
    else if (c == 'h') { fputs(help, stdout); goto done; }
    else { fputs(help, stderr); rc = EXIT_USAGE; goto done; }
  }
  int64_t us;
  if (optind != argc - 1 || !out || !start || !end) {
    rc = cli_usage_error("clip", "usage: custos clip ID --start T --end T [--exact] -o FILE");
    goto done;
  }
  if (cu_parse_clock(start, &us) || cu_parse_clock(end, &us)) {
    rc = cli_usage_error("clip", "%s", cu_errmsg());
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos clip: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  const char *id = argv[optind];
  tmp = cu_xasprintf("%s.custos-part", out);
  s.out.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (s.out.fd < 0) {
    fprintf(stderr, "custos clip: cannot create %s: %s\n", tmp, strerror(errno));
    rc = EXIT_FAIL;
    goto done;
  }
  s.out.h = cu_sha256_new();
  s.out.started = cu_mono_us();
  cu_buf_printf(&path, "/v1/evidence/%s/clip?mode=%s", id, exact ? "exact" : "copy");
  client_query_add(&path, "start", start);
  client_query_add(&path, "end", end);
  url = cu_xasprintf("%s%s", cl.server, path.data);
  auth = cu_xasprintf("Authorization: Bearer %s", cl.token);
  if (!exact) fprintf(stderr, "custos clip: asking for the clip (a new one is cut now)\n");
  else fprintf(stderr, "custos clip: asking for the clip (a new exact clip is re-encoded now: this takes a while)\n");
  CURL *h = curl_easy_init();
  struct curl_slist *hdr = curl_slist_append(NULL, auth);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cli_sink_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
  CURLcode cc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  cli_progress_end();
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  unsigned char d[32];
  char got[65];
  cu_sha256_final(s.out.h, d);
  cu_hex_encode(d, 32, got);
  if (cc != CURLE_OK || s.out.err) {
    fprintf(stderr, "custos clip: download failed: %s\n", s.out.err ? strerror(s.out.err) : curl_easy_strerror(cc));
    rc = EXIT_FAIL;
    goto done;
  }
  if (status != 200) {
    char why[2048];
    server_reason(tmp, why, sizeof why);
    fprintf(stderr, "custos clip: server answered %ld: %s\n", status, *why ? why : "(no reason given)");
    rc = status == 400 ? EXIT_USAGE : EXIT_FAIL;
    goto done;
  }
  if (!s.kind[0] || strncmp(s.kind, "clip:", 5)) {
    fprintf(stderr, "custos clip: REFUSED: the server did not say which rendition it sent; nothing was written to %s\n", out);
    rc = EXIT_CORRUPT;
    goto done;
  }
  cu_buf_reset(&path);
  cu_buf_printf(&path, "/v1/evidence/%s", id);
  int err = client_json(&cl, "GET", path.data, NULL, NULL, &rec);
  if (err) {
    fprintf(stderr, "custos clip: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  const json_t *r = json_object_get(json_object_get(rec, "renditions"), s.kind);
  const char *want = cu_json_str(r, "sha256");
  if (!want || strcmp(want, got)) {
    fprintf(stderr,
            "custos clip: REFUSED: the bytes received hash to %s but the record of %s of evidence %s says %s; "
            "nothing was written to %s\n",
            got, s.kind, id, want ? want : "(no record)", out);
    rc = EXIT_CORRUPT;
  } else if ((err = cli_prove(&cl, key_file, id, s.kind, want, &proof))) {
    fprintf(stderr, "custos clip: REFUSED: %s; nothing was written to %s\n", cu_errmsg(), out);
    rc = cli_exit_for(err);
  } else if (fsync(s.out.fd) < 0 || close(s.out.fd) < 0 || (s.out.fd = -1, rename(tmp, out) < 0)) {
    fprintf(stderr, "custos clip: cannot save %s: %s\n", out, strerror(errno));
    rc = EXIT_FAIL;
  } else {
    const json_t *rep = json_object_get(r, "report");
    printf("%s %s %s %s\n", id, s.kind, got, out);
    fprintf(stderr, "custos clip: %.3f s to %.3f s of the recording; %s\n",
            json_number_value(json_object_get(rep, "actual_start_s")),
            json_number_value(json_object_get(rep, "actual_end_s")),
            exact ? "re-encoded: no frame is claimed identical to the original"
                  : "every packet checked identical to the original's");
    cli_prove_report("clip", proof);
    free(tmp);
    tmp = NULL;
  }
done:
  if (s.out.fd >= 0) close(s.out.fd);
  if (tmp) unlink(tmp);
  cu_sha256_free(s.out.h);
  free(tmp);
  free(url);
  free(auth);
  cu_buf_release(&path);
  json_decref(rec);
  json_decref(proof);
  client_release(&cl);
  return rc;
}
