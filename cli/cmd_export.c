/* custos export: asks the server for a case's export bag, follows the
 * export job, and downloads the bag's tar, resuming with Range after a
 * broken connection (If-Range on the bag's ETag, so a resumed download
 * never splices two different bags). The tar goes to a .part file beside
 * its target and is renamed into place when whole; with --out DIR it is
 * unpacked (archive/tar.h, strict) into DIR/<bag>/ and the tar removed. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "fsutil.h"
#include "id.h"
#include "tar.h"
#include "timeu.h"
#include "banned.h"

#define MAX_RETRIES 5  /* broken downloads resumed before giving up */
#define POLL_US 500000 /* between status requests */

static const char help[] =
    "usage: custos export CASE [--evidence ID]... [--renditions master,access]\n"
    "                          [--clip ID:START-END[:exact]]... [--out DIR | --out FILE.tar]\n"
    "                          [--json]\n"
    "\n"
    "Exports case CASE as a BagIt bag (docs/EXPORT.md) and downloads it: the originals,\n"
    "the derived copies and clips asked for, their manifests (SHA-256 and SHA-512), the\n"
    "ledger events of every item with inclusion proofs to one signed tree head, that head,\n"
    "the ledger key, the RFC 3161 tokens and the TSA root, and REPORT.html / REPORT.json\n"
    "saying how to check it all. The export is an \"exported\" event in each item's chain\n"
    "of custody. Needs a legal or admin token.\n"
    "\n"
    "  --evidence ID      export only these items of the case (repeat; default: all)\n"
    "  --renditions LIST  derived copies to include: master, access, framehash, poster\n"
    "                     (comma-separated; default none: originals only)\n"
    "  --clip ID:START-END[:exact]\n"
    "                     a clip of item ID to include (repeat); times are seconds (90.5)\n"
    "                     or HH:MM:SS.mmm; copy mode unless :exact\n"
    "  --out FILE.tar     save the tar there (default ./<bag>.tar)\n"
    "  --out DIR          unpack the bag into DIR/<bag>/ (DIR is created if missing)\n"
    "  --json             print the finished export record (with \"path\") as JSON\n"
    "\n"
    "A broken download is resumed where it stopped (up to 5 times). Check the bag with\n"
    "custos verify DIR/<bag> (or FILE.tar), or with sha256sum and openssl as its REPORT.html\n"
    "says.\n";

/* "ID:START-END[:exact|:copy]" → {evidence, start, end, mode}. */
static json_t *parse_clip(const char *arg) {
  const char *colon = strchr(arg, ':');
  if (!colon || (size_t)(colon - arg) != CU_ID_LEN) return NULL;
  char id[CU_ID_LEN + 1], rest[128];
  memcpy(id, arg, CU_ID_LEN);
  id[CU_ID_LEN] = '\0';
  if (!cu_id_valid(id) || snprintf(rest, sizeof rest, "%s", colon + 1) >= (int)sizeof rest)
    return NULL;
  const char *mode = "copy";
  size_t n = strlen(rest);
  if (n > 6 && !strcmp(rest + n - 6, ":exact")) {
    mode = "exact";
    rest[n - 6] = '\0';
  } else if (n > 5 && !strcmp(rest + n - 5, ":copy")) {
    rest[n - 5] = '\0';
  }
  char *dash = strchr(rest, '-');
  if (!dash || dash == rest || !dash[1]) return NULL;
  *dash = '\0';
  int64_t us;
  if (cu_parse_clock(rest, &us) || cu_parse_clock(dash + 1, &us)) return NULL;
  json_t *c = json_object();
  cu_json_set_str(c, "evidence", id);
  cu_json_set_str(c, "start", rest);
  cu_json_set_str(c, "end", dash + 1);
  cu_json_set_str(c, "mode", mode);
  return c;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcasecmp(s + n - k, suffix);
}

/* ---- following the job ------------------------------------------------------ */

static int follow(const client *cl, const char *id, json_t **done) {
  char *path = cu_xasprintf("/v1/exports/%s/status", id);
  int64_t started = cu_mono_us();
  char last_wait[1024] = "";
  int rc = 0;
  for (;;) {
    json_t *s = NULL;
    if ((rc = client_json(cl, "GET", path, NULL, NULL, &s))) break;
    const char *state = cu_json_str(s, "state");
    if (state && !strcmp(state, "done")) {
      cli_progress("exporting", 1, 1, started);
      *done = s;
      break;
    }
    if (state && !strcmp(state, "failed")) {
      rc = cu_error(CU_EIO, "the export failed: %s",
                    cu_json_str(s, "error") ? cu_json_str(s, "error") : "?");
      json_decref(s);
      break;
    }
    if (state && !strcmp(state, "refused")) {
      rc = cu_error(CU_EDENIED, "the export was refused (request %s): custos requests --state refused says why",
                    cu_json_str(s, "request") ? cu_json_str(s, "request") : "?");
      json_decref(s);
      break;
    }
    char approval[256] = "";
    if (state && !strcmp(state, "awaiting_approval"))
      snprintf(approval, sizeof approval, "waiting for a second legal user to approve request %s (custos approve %s)",
               cu_json_str(s, "request") ? cu_json_str(s, "request") : "?",
               cu_json_str(s, "request") ? cu_json_str(s, "request") : "?");
    const char *why = approval[0] ? approval : cu_json_str(s, "waiting_for");
    if (why && strcmp(why, last_wait)) {
      cli_progress_end();
      fprintf(stderr, "custos export: %s\n", why);
      snprintf(last_wait, sizeof last_wait, "%s", why);
    }
    uint64_t d = (uint64_t)cu_json_int(s, "bytes_done", 0),
             t = (uint64_t)cu_json_int(s, "bytes_total", 0);
    if (t) cli_progress("exporting", d, t, started);
    json_decref(s);
    usleep(POLL_US);
  }
  cli_progress_end();
  free(path);
  return rc;
}

/* ---- the download ------------------------------------------------------------ */

typedef struct {
  int fd;
  CURL *h;
  uint64_t have; /* bytes in the file */
  uint64_t total;
  int64_t started;
  bool checked;   /* the status of this response was looked at */
  bool restarted; /* the server sent all of it again */
  int err;
} sink;

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  sink *s = ud;
  size_t len = size * n;
  if (!s->checked) {
    long st = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &st);
    if (st == 200 && s->have) { /* If-Range did not hold: the whole tar again */
      if (ftruncate(s->fd, 0) < 0 || lseek(s->fd, 0, SEEK_SET) < 0) {
        s->err = errno;
        return 0;
      }
      s->have = 0;
      s->restarted = true;
    } else if (st != 200 && st != 206) {
      return len; /* an error body: not ours to keep (CURLOPT_FAILONERROR ends it) */
    }
    s->checked = true;
  }
  if (cu_write_all(s->fd, p, len)) {
    s->err = errno ? errno : EIO;
    return 0;
  }
  s->have += len;
  return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut,
                       curl_off_t un) {
  sink *s = ud;
  cli_progress("downloading", s->have, s->total, s->started);
  return 0;
}

static int download(const client *cl, const char *id, const char *etag, uint64_t total,
                    const char *part) {
  sink s = {.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
            .total = total,
            .started = cu_mono_us()};
  if (s.fd < 0) return cu_error_errno(CU_EIO, errno, "cannot create %s", part);
  char *url = cu_xasprintf("%s/v1/exports/%s", cl->server, id);
  char *auth = cu_xasprintf("Authorization: Bearer %s", cl->token);
  char *ifr = cu_xasprintf("If-Range: %s", etag);
  int rc = 0;
  for (int attempt = 0;; attempt++) {
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    if (s.have) hdr = curl_slist_append(hdr, ifr);
    s.h = h;
    s.checked = false;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer is a broken one */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
    if (s.have) curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)s.have);
    CURLcode cc = curl_easy_perform(h);
    long st = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    if (s.err) {
      rc = cu_error_errno(cu_errno_code(s.err), s.err, "cannot write %s", part);
      break;
    }
    if (cc == CURLE_OK && s.have == total) break;
    bool http_error = cc == CURLE_HTTP_RETURNED_ERROR && st != 416 && st < 500;
    if (http_error || attempt >= MAX_RETRIES) {
      rc = cu_error(CU_EIO, "the download of export %s failed%s: %s (%llu of %llu bytes)", id,
                    attempt ? " after retries" : "",
                    cc == CURLE_OK ? "the server sent a different size" : curl_easy_strerror(cc),
                    (unsigned long long)s.have, (unsigned long long)total);
      break;
    }
    if (s.have > total) { /* cannot be this bag: start over */
      if (ftruncate(s.fd, 0) < 0 || lseek(s.fd, 0, SEEK_SET) < 0) {
        rc = cu_error_errno(CU_EIO, errno, "cannot truncate %s", part);
        break;
      }
      s.have = 0;
    }
    cli_progress_end();
    fprintf(stderr, "custos export: the download broke at byte %llu (%s); resuming\n",
            (unsigned long long)s.have, cc == CURLE_OK ? "short" : curl_easy_strerror(cc));
    usleep((useconds_t)(200000 << (attempt < 4 ? attempt : 4)));
  }
  cli_progress_end();
  if (!rc && (fsync(s.fd) < 0)) rc = cu_error_errno(CU_EIO, errno, "cannot sync %s", part);
  if (close(s.fd) < 0 && !rc) rc = cu_error_errno(CU_EIO, errno, "cannot close %s", part);
  free(url);
  free(auth);
  free(ifr);
  return rc;
}

static uint64_t extract_total;
static int64_t extract_started;

static void extract_progress(void *ud, uint64_t done) {
  cli_progress("unpacking", done, extract_total, extract_started);
}

int cmd_export(int argc, char **argv) {
  client cl = {0};
  const char *out = NULL;
  bool as_json = false;
  json_t *evidence = json_array(), *renditions = json_array(), *clips = json_array();
  json_t *body = NULL, *rec = NULL, *done = NULL;
  char *part = NULL, *target = NULL, *top = NULL;
  int c, rc = EXIT_OK;
  enum { O_EVIDENCE = 2000, O_RENDITIONS, O_CLIP, O_OUT };
  static const struct option opts[] = {{"evidence", required_argument, 0, O_EVIDENCE},
                                       {"renditions", required_argument, 0, O_RENDITIONS},
                                       {"clip", required_argument, 0, O_CLIP},
                                       {"out", required_argument, 0, O_OUT},
                                       {"json", no_argument, 0, OPT_JSON},
                                       CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    switch (c) {
    case O_EVIDENCE:
      if (!cu_id_valid(optarg)) {
        rc = cli_usage_error("export", "--evidence '%s' is not an evidence id", optarg);
        goto done;
      }
      json_array_append_new(evidence, json_string(optarg));
      break;
    case O_RENDITIONS: {
      char *list = cu_xstrdup(optarg), *save = NULL;
      for (char *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        while (*k == ' ')
          k++;
        if (strcmp(k, "master") && strcmp(k, "access") && strcmp(k, "framehash") &&
            strcmp(k, "poster")) {
          rc = cli_usage_error("export",
                               "--renditions: '%s' is not master, access, framehash or poster", k);
          free(list);
          goto done;
        }
        json_array_append_new(renditions, json_string(k));
      }
      free(list);
      break;
    }
    case O_CLIP: {
      json_t *cj = parse_clip(optarg);
      if (!cj) {
        rc = cli_usage_error(
            "export", "--clip must be ID:START-END[:exact] (times: 90.5 or HH:MM:SS.mmm), not '%s'",
            optarg);
        goto done;
      }
      json_array_append_new(clips, cj);
      break;
    }
    case 'o':
    case O_OUT: out = optarg; break;
    case OPT_JSON: as_json = true; break;
    case 'h': fputs(help, stdout); goto done;
    default:
      fputs(help, stderr);
      rc = EXIT_USAGE;
      goto done;
    }
  }
  if (optind != argc - 1) {
    rc = cli_usage_error("export", "usage: custos export CASE [options] (--help)");
    goto done;
  }
  const char *case_id = argv[optind];
  if (!cu_name_valid(case_id)) {
    rc = cli_usage_error("export", "'%s' is not a case id", case_id);
    goto done;
  }
  bool to_dir = out && !ends_with(out, ".tar");
  if (to_dir && cu_mkdirs(out, 0755)) {
    fprintf(stderr, "custos export: cannot create %s: %s\n", out, cu_errmsg());
    rc = EXIT_FAIL;
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos export: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }

  body = json_object();
  if (json_array_size(evidence)) json_object_set(body, "evidence", evidence);
  json_object_set(body, "renditions", renditions);
  json_object_set(body, "clips", clips);
  char *path = cu_xasprintf("/v1/cases/%s/exports", case_id);
  int err = client_json(&cl, "POST", path, body, NULL, &rec);
  free(path);
  if (err) {
    fprintf(stderr, "custos export: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  const char *id = cu_json_str(rec, "id");
  if (!id || !cu_id_valid(id)) {
    fprintf(stderr, "custos export: the server's answer names no export\n");
    rc = EXIT_FAIL;
    goto done;
  }
  fprintf(stderr, "custos export: export %s of case %s requested\n", id, case_id);
  if ((err = follow(&cl, id, &done))) {
    fprintf(stderr, "custos export: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  const char *bag = cu_json_str(done, "bag"), *etag_hex = cu_json_str(done, "tagmanifest_sha256");
  uint64_t total = (uint64_t)cu_json_int(done, "tar_size", 0);
  if (!bag || !etag_hex || !total || strchr(bag, '/') || bag[0] == '.') {
    fprintf(stderr, "custos export: the finished export record is incomplete\n");
    rc = EXIT_FAIL;
    goto done;
  }
  char etag[80];
  snprintf(etag, sizeof etag, "\"%s\"", etag_hex);
  if (to_dir) {
    target = cu_xasprintf("%s/%s", out, bag);
    part = cu_xasprintf("%s/.%s.tar.part", out, bag);
    if (access(target, F_OK) == 0) {
      fprintf(stderr, "custos export: %s exists already\n", target);
      rc = EXIT_FAIL;
      goto done;
    }
  } else {
    target = out ? cu_xstrdup(out) : cu_xasprintf("./%s.tar", bag);
    part = cu_xasprintf("%s.part", target);
  }
  if ((err = download(&cl, id, etag, total, part))) {
    fprintf(stderr, "custos export: %s (the partial tar is in %s)\n", cu_errmsg(), part);
    rc = cli_exit_for(err);
    free(part);
    part = NULL;
    goto done;
  }
  if (to_dir) {
    extract_total = total;
    extract_started = cu_mono_us();
    tar_extract_opts xo = {.progress = extract_progress};
    err = tar_extract_file(part, out, &xo, &top);
    cli_progress_end();
    if (!err && strcmp(top, bag)) {
      err = cu_error(CU_ECORRUPT, "the tar holds %s, not the bag %s", top, bag);
    }
    if (err) {
      fprintf(stderr, "custos export: cannot unpack the bag: %s\n", cu_errmsg());
      rc = cli_exit_for(err);
      goto done;
    }
    unlink(part);
  } else if (rename(part, target) < 0) {
    fprintf(stderr, "custos export: cannot save %s: %s\n", target, strerror(errno));
    rc = EXIT_FAIL;
    goto done;
  }
  free(part);
  part = NULL;
  if (as_json) {
    cu_json_set_str(done, "path", target);
    char *s = json_dumps(done, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
  } else {
    printf("%s\n", target);
    printf("%lld items, %lld files, %lld bytes (Payload-Oxum %s), tag manifest sha256 %s\n",
           (long long)cu_json_int(done, "items", 0), (long long)cu_json_int(done, "files", 0),
           (long long)cu_json_int(done, "bytes", 0), cu_json_str(done, "payload_oxum"), etag_hex);
  }
done:
  if (part) unlink(part);
  free(part);
  free(target);
  free(top);
  json_decref(evidence);
  json_decref(renditions);
  json_decref(clips);
  json_decref(body);
  json_decref(rec);
  json_decref(done);
  client_release(&cl);
  return rc;
}
