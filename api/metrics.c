/* Prometheus text exposition (0.0.4). Counters live in the modules that
 * count; this file only keeps the HTTP ones and renders everything. */
#include <stdatomic.h>
#include <stdint.h>

#include <stdlib.h>

#include "api_int.h"
#include "err.h"
#include "banned.h"

static const double bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NB (sizeof bounds / sizeof *bounds)

static atomic_uint_least64_t buckets[NB + 1]; /* last: +Inf only */
static atomic_uint_least64_t sum_us;
static atomic_uint_least64_t by_class[6]; /* 1xx..5xx, [0] = no response */

void metrics_observe(int status, int64_t duration_us) {
  double s = (double)duration_us / 1e6;
  size_t i = 0;
  while (i < NB && s > bounds[i]) i++;
  atomic_fetch_add(&buckets[i], 1);
  atomic_fetch_add(&sum_us, (uint64_t)(duration_us > 0 ? duration_us : 0));
  int c = status / 100;
  atomic_fetch_add(&by_class[c >= 1 && c <= 5 ? c : 0], 1);
}

static int family(cu_buf *o, const char *name, const char *type, const char *help) {
  return cu_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int metrics_render(api *a, cu_buf *o) {
  tus_counters tc;
  tus_get_counters(a->tu, &tc);
  family(o, "custos_uploads_started_total", "counter", "tus uploads created.");
  cu_buf_printf(o, "custos_uploads_started_total %llu\n", (unsigned long long)tc.started);
  family(o, "custos_uploads_completed_total", "counter", "tus uploads committed as evidence.");
  cu_buf_printf(o, "custos_uploads_completed_total %llu\n", (unsigned long long)tc.completed);
  family(o, "custos_uploads_failed_total", "counter",
         "tus uploads refused at completion (hash mismatch) or by a full disk.");
  cu_buf_printf(o, "custos_uploads_failed_total %llu\n", (unsigned long long)tc.failed);
  family(o, "custos_upload_bytes_received_total", "counter", "Upload body bytes received, including chunks later refused (460, 413, 507).");
  cu_buf_printf(o, "custos_upload_bytes_received_total %llu\n", (unsigned long long)tc.bytes_received);
  family(o, "custos_evidence", "gauge", "Evidence records in the index.");
  cu_buf_printf(o, "custos_evidence %llu\n", (unsigned long long)idx_evidence_count(a->ix));
  idx_totals et; /* running totals: no scan (indexer/idx_stats.c) */
  idx_evidence_totals(a->ix, &et);
  family(o, "custos_evidence_bytes", "gauge",
         "Bytes of the evidence originals, by record (one shared by two records counts twice).");
  cu_buf_printf(o, "custos_evidence_bytes %llu\n", (unsigned long long)et.bytes);
  family(o, "custos_evidence_footage_seconds", "gauge",
         "Duration of the evidence recordings, as probed (items not yet probed add none).");
  cu_buf_printf(o, "custos_evidence_footage_seconds %.6f\n", (double)et.footage_us / 1e6);
  family(o, "custos_spool_bytes", "gauge", "Bytes of unfinished uploads on disk.");
  cu_buf_printf(o, "custos_spool_bytes %lld\n", (long long)tus_spool_bytes(a->tu));
  family(o, "custos_jobs_total", "counter",
         "Job outcomes since start, by kind: done, failed (after the last attempt), retried, "
         "timed_out (an attempt past its time limit).");
  family(o, "custos_jobs", "gauge", "Jobs now queued (waiting to run) and running, by kind.");
  const char *const *kinds;
  int nk = job_queue_kinds(a->jq, &kinds);
  job_counts *kc = cu_xcalloc((size_t)nk + 1, sizeof *kc);
  uint64_t *queued = cu_xcalloc((size_t)nk + 1, sizeof *queued);
  job_queue_kind_counts(a->jq, kc, queued);
  for (int i = 0; i < nk; i++) {
    static const char *const outcomes[] = {"done", "failed", "retried", "timed_out"};
    uint64_t v[] = {kc[i].done, kc[i].failed, kc[i].retried, kc[i].timed_out};
    for (int k = 0; k < 4; k++)
      cu_buf_printf(o, "custos_jobs_total{kind=\"%s\",outcome=\"%s\"} %llu\n", kinds[i],
                    outcomes[k], (unsigned long long)v[k]);
    cu_buf_printf(o, "custos_jobs{kind=\"%s\",state=\"queued\"} %llu\n", kinds[i],
                  (unsigned long long)queued[i]);
    cu_buf_printf(o, "custos_jobs{kind=\"%s\",state=\"running\"} %llu\n", kinds[i],
                  (unsigned long long)kc[i].running);
  }
  free(kc);
  free(queued);
  family(o, "custos_ledger_entries", "gauge", "Events in the ledger.");
  cu_buf_printf(o, "custos_ledger_entries %llu\n", (unsigned long long)ledger_size(a->lg));
  scrub_counts sc;
  scrub_totals(a->scrub, &sc);
  family(o, "custos_scrub_objects_total", "counter", "Objects re-hashed by the scrubber since start.");
  cu_buf_printf(o, "custos_scrub_objects_total %llu\n", (unsigned long long)sc.objects);
  family(o, "custos_scrub_bytes_total", "counter", "Bytes re-hashed by the scrubber since start.");
  cu_buf_printf(o, "custos_scrub_bytes_total %llu\n", (unsigned long long)sc.bytes);
  family(o, "custos_scrub_failures_total", "counter",
         "Scrub findings since start, an object missing or not matching its hash (an alarm; a damaged object counts again at each pass).");
  cu_buf_printf(o, "custos_scrub_failures_total %llu\n", (unsigned long long)sc.failures);
  family(o, "custos_http_responses_total", "counter", "HTTP responses by status class.");
  static const char *classes[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int i = 0; i < 6; i++)
    cu_buf_printf(o, "custos_http_responses_total{class=\"%s\"} %llu\n", classes[i],
                  (unsigned long long)atomic_load(&by_class[i]));
  family(o, "custos_http_request_duration_seconds", "histogram",
         "Time from request headers to the end of the response.");
  uint64_t cum = 0;
  for (size_t i = 0; i < NB; i++) {
    cum += atomic_load(&buckets[i]);
    cu_buf_printf(o, "custos_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
                  (unsigned long long)cum);
  }
  cum += atomic_load(&buckets[NB]);
  cu_buf_printf(o, "custos_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
  cu_buf_printf(o, "custos_http_request_duration_seconds_sum %.6f\n",
                (double)atomic_load(&sum_us) / 1e6);
  return cu_buf_printf(o, "custos_http_request_duration_seconds_count %llu\n",
                       (unsigned long long)cum);
}
