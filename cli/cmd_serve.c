#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cli.h"
#include "err.h"
#include "log.h"
#include "timeu.h"
#include "banned.h"

static const char help[] =
    "usage: custos serve [options]\n"
    "\n"
    "Runs the archive server. On first start in an empty home it creates the\n"
    "layout and writes an admin token to HOME/admin.token (mode 0600).\n"
    "\n"
    "  --home DIR            data directory (env CUSTOS_HOME; default ./var)\n"
    "  --listen HOST:PORT    address to serve on (env CUSTOS_LISTEN; default 127.0.0.1:8080;\n"
    "                        port 0 picks a free port)\n"
    "  --port-file FILE      write the port actually bound to FILE\n"
    "  --public-url URL      the URL clients use (behind a TLS proxy), for upload Locations\n"
    "  --http-threads N      HTTP thread pool size (default 8)\n"
    "  --workers N           job worker threads (default: number of cores)\n"
    "  --max-upload BYTES    largest upload accepted (default 256 GiB)\n"
    "  --upload-ttl SECONDS  unfinished uploads expire after this long idle (default 7 days)\n"
    "  --reserve BYTES       disk space kept free for the index (default 64 MiB)\n"
    "  --sweep-interval S    how often expired uploads are swept (default 60)\n"
    "  --tsa-url URL         an external RFC 3161 time-stamp authority (default: the\n"
    "                        built-in TSA, whose root is HOME/keys/tsa-root.pem)\n"
    "  --tsa-ca FILE         the PEM certificate(s) the external TSA's tokens chain to\n"
    "  --tsa-timeout S       per request to the external TSA (default 30)\n"
    "  --stamp-retry-max S   longest wait between attempts while a TSA is down (default 300)\n"
    "  --ledger-origin NAME  checkpoint origin of a new ledger (default custos/<key hash>)\n"
    "  --scrub-rate BYTES    background re-hashing of stored objects, bytes per second\n"
    "                        (default 8 MiB/s; 0 turns it off)\n"
    "  --scrub-idle S        pause between background scrub passes (default 3600)\n"
    "  --job-time-limit S    a job attempt running longer is failed and its worker\n"
    "                        replaced (default 3600)\n"
    "  --media-time-limit S  the same for a master, access copy or frame hashes\n"
    "                        (default 43200)\n"
    "  --access-max-side PX  access copies: longest side in pixels (default 1280)\n"
    "  --media-threads N     threads of one media job (default: number of cores)\n"
    "  --organization NAME   Source-Organization in export bags (default Custos)\n"
    "  --retention NAME=RULE a retention category (repeatable): RULE is Nd or Ny after\n"
    "                        recording, closed+Nd or closed+Ny after its cases closed,\n"
    "                        or never. Defaults: uncategorized=90d (the default of an\n"
    "                        item that names none), evidentiary=closed+7y,\n"
    "                        permanent=never\n"
    "  --retention-sweep S   how often due deletions are proposed (default 86400)\n"
    "  --export-needs-approval  an export runs only once a second legal user approves it\n"
    "  --log-level LEVEL     debug, info, warn or error (default info)\n";

static int num(const char *arg, int64_t *out) {
  return cu_parse_i64(arg, out, 0) ? cli_usage_error("serve", "'%s' is not a number", arg) : 0;
}

int cmd_serve(int argc, char **argv) {
  api_config cfg;
  api_config_defaults(&cfg);
  const char *e;
  if ((e = getenv("CUSTOS_HOME")) && *e) cfg.home = e;
  if ((e = getenv("CUSTOS_LISTEN")) && *e) cfg.listen = e;
  enum { O_HOME = 1, O_LISTEN, O_PORTFILE, O_PUBLIC, O_HTTP, O_WORKERS, O_MAX, O_TTL, O_RESERVE, O_SWEEP, O_LOG,
        O_TSA_URL, O_TSA_CA, O_TSA_TIMEOUT, O_STAMP_RETRY, O_ORIGIN, O_SCRUB_RATE, O_SCRUB_IDLE,
        O_JOB_LIMIT, O_MEDIA_LIMIT, O_ACCESS_SIDE, O_MEDIA_THREADS, O_ORGANIZATION, O_RETENTION, O_RET_SWEEP, O_EXPORT_APPROVAL };
  static const struct option opts[] = {
      {"home", required_argument, 0, O_HOME},          {"listen", required_argument, 0, O_LISTEN},
      {"port-file", required_argument, 0, O_PORTFILE}, {"http-threads", required_argument, 0, O_HTTP},
      {"public-url", required_argument, 0, O_PUBLIC},
      {"workers", required_argument, 0, O_WORKERS},    {"max-upload", required_argument, 0, O_MAX},
      {"upload-ttl", required_argument, 0, O_TTL},     {"reserve", required_argument, 0, O_RESERVE},
      {"sweep-interval", required_argument, 0, O_SWEEP}, {"log-level", required_argument, 0, O_LOG},
      {"tsa-url", required_argument, 0, O_TSA_URL}, {"tsa-ca", required_argument, 0, O_TSA_CA},
      {"tsa-timeout", required_argument, 0, O_TSA_TIMEOUT},
      {"stamp-retry-max", required_argument, 0, O_STAMP_RETRY},
      {"ledger-origin", required_argument, 0, O_ORIGIN},
      {"scrub-rate", required_argument, 0, O_SCRUB_RATE}, {"scrub-idle", required_argument, 0, O_SCRUB_IDLE},
      {"job-time-limit", required_argument, 0, O_JOB_LIMIT},
      {"media-time-limit", required_argument, 0, O_MEDIA_LIMIT},
      {"access-max-side", required_argument, 0, O_ACCESS_SIDE},
      {"media-threads", required_argument, 0, O_MEDIA_THREADS},
      {"organization", required_argument, 0, O_ORGANIZATION},
      {"retention", required_argument, 0, O_RETENTION},
      {"retention-sweep", required_argument, 0, O_RET_SWEEP},
      {"export-needs-approval", no_argument, 0, O_EXPORT_APPROVAL},
      {"help", no_argument, 0, 'h'},                   {0, 0, 0, 0}};
  int c;
  int64_t v;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case O_HOME: cfg.home = optarg; break;
    case O_LISTEN: cfg.listen = optarg; break;
    case O_PORTFILE: cfg.port_file = optarg; break;
    case O_PUBLIC: {
      size_t n = strlen(optarg);
      while (n && optarg[n - 1] == '/') optarg[--n] = '\0';
      if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8))
        return cli_usage_error("serve", "--public-url must start with http:// or https://");
      cfg.public_url = optarg;
      break;
    }
    case O_HTTP: if (num(optarg, &v)) return EXIT_USAGE; cfg.http_threads = (int)v; break;
    case O_WORKERS: if (num(optarg, &v)) return EXIT_USAGE; cfg.workers = (int)v; break;
    case O_MAX: if (num(optarg, &cfg.max_upload)) return EXIT_USAGE; break;
    case O_TTL: if (num(optarg, &cfg.upload_ttl_s)) return EXIT_USAGE; break;
    case O_RESERVE: if (num(optarg, &cfg.reserve_bytes)) return EXIT_USAGE; break;
    case O_SWEEP: if (num(optarg, &v)) return EXIT_USAGE; cfg.sweep_interval_s = (int)v; break;
    case O_LOG:
      if (!strcmp(optarg, "debug")) cu_log_set_level(CU_LOG_DEBUG);
      else if (!strcmp(optarg, "info")) cu_log_set_level(CU_LOG_INFO);
      else if (!strcmp(optarg, "warn")) cu_log_set_level(CU_LOG_WARN);
      else if (!strcmp(optarg, "error")) cu_log_set_level(CU_LOG_ERROR);
      else return cli_usage_error("serve", "unknown log level '%s'", optarg);
      break;
    case O_TSA_URL:
      if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8))
        return cli_usage_error("serve", "--tsa-url must start with http:// or https://");
      cfg.tsa_url = optarg;
      break;
    case O_TSA_CA: cfg.tsa_ca = optarg; break;
    case O_TSA_TIMEOUT: if (num(optarg, &v)) return EXIT_USAGE; cfg.tsa_timeout_s = (int)v; break;
    case O_STAMP_RETRY: if (num(optarg, &v)) return EXIT_USAGE; cfg.stamp_retry_max_s = (int)v; break;
    case O_ORIGIN: cfg.ledger_origin = optarg; break;
    case O_SCRUB_RATE: if (num(optarg, &cfg.scrub_rate)) return EXIT_USAGE; break;
    case O_SCRUB_IDLE: if (num(optarg, &v)) return EXIT_USAGE; cfg.scrub_idle_s = (int)v; break;
    case O_JOB_LIMIT: if (num(optarg, &v)) return EXIT_USAGE; cfg.job_time_limit_s = (int)v; break;
    case O_MEDIA_LIMIT: if (num(optarg, &v)) return EXIT_USAGE; cfg.media_time_limit_s = (int)v; break;
    case O_ACCESS_SIDE:
      if (num(optarg, &v)) return EXIT_USAGE;
      if (v < 16 || v > 8192) return cli_usage_error("serve", "--access-max-side must be between 16 and 8192");
      cfg.access_max_side = (int)v;
      break;
    case O_MEDIA_THREADS: if (num(optarg, &v)) return EXIT_USAGE; cfg.media_threads = (int)v; break;
    case O_ORGANIZATION:
      if (!*optarg || strlen(optarg) > 256 || strpbrk(optarg, "\r\n"))
        return cli_usage_error("serve", "--organization must be one line of at most 256 bytes");
      cfg.organization = optarg;
      break;
    case O_RETENTION:
      if (gov_config_set(&cfg.governance, optarg)) return cli_usage_error("serve", "%s", cu_errmsg());
      break;
    case O_EXPORT_APPROVAL: cfg.governance.export_needs_approval = true; break;
    case O_RET_SWEEP: if (num(optarg, &v)) return EXIT_USAGE; cfg.retention_sweep_s = (int)v; break;
    case 'h': fputs(help, stdout); return EXIT_OK;
    default: fputs(help, stderr); return EXIT_USAGE;
    }
  }
  if (optind < argc) return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
  if (!cfg.tsa_url != !cfg.tsa_ca)
    return cli_usage_error("serve", "--tsa-url and --tsa-ca go together (the CA is how its tokens are checked)");
  return api_run(&cfg) ? EXIT_FAIL : EXIT_OK;
}
