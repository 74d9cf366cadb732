/* The Custos HTTP server: `custos serve`. */
#ifndef API_H
#define API_H

#include <stdint.h>

#include "gov.h"

typedef struct {
  const char *home;        /* data directory (created on first start) */
  const char *listen;      /* "HOST:PORT"; port 0 picks a free port */
  const char *port_file;   /* if set, the bound port is written here once listening */
  const char *public_url;  /* the URL clients reach us at, if not the Host they send */
  int http_threads;        /* libmicrohttpd thread pool size */
  int workers;             /* job worker threads; 0 = number of cores */
  int64_t max_upload;      /* largest Upload-Length accepted */
  int64_t upload_ttl_s;    /* unfinished uploads expire after this long idle */
  int64_t reserve_bytes;   /* disk space kept free for the index */
  int sweep_interval_s;    /* how often expired uploads are swept */
  const char *tsa_url;     /* external RFC 3161 TSA; NULL = the built-in one */
  const char *tsa_ca;      /* PEM file the external TSA's tokens chain to */
  int tsa_timeout_s;       /* per request to the external TSA */
  int stamp_retry_max_s;   /* longest wait between attempts at a stamp */
  const char *ledger_origin; /* checkpoint origin for a new ledger; NULL = derived */
  int64_t scrub_rate;      /* background scrub, bytes per second; 0 = off */
  int scrub_idle_s;        /* pause between background scrub passes */
  int job_time_limit_s;    /* a job attempt running longer is failed */
  int media_time_limit_s;  /* the same for masters, access copies, frame hashes */
  int access_max_side;     /* access copies: longest side in pixels */
  int media_threads;       /* threads of one media job; 0 = number of cores */
  const char *organization; /* export bags' Source-Organization; NULL = "Custos" */
  gov_config governance;   /* retention categories; whether exports need approval */
  int retention_sweep_s;   /* how often the retention sweep proposes deletions */
} api_config;

void api_config_defaults(api_config *cfg);
/* Starts the server and blocks until SIGTERM or SIGINT, then shuts down
 * cleanly: stops accepting, parks in-flight uploads at a durable offset,
 * lets running jobs finish, closes the index. Returns 0 on a clean stop. */
int api_run(const api_config *cfg);

#endif
