/* Every limit that untrusted input can push against, with its reason.
 * (Not named limits.h: that would shadow the C library's header.) */
#ifndef CU_LIMITS_H
#define CU_LIMITS_H

/* tus Upload-Metadata: the bound; real recorders send < 1 KiB. */
#define CU_MAX_METADATA_BYTES (64 * 1024)
/* One decoded metadata value: the header's own bound covers it. */
#define CU_MAX_META_VALUE CU_MAX_METADATA_BYTES
/* Filenames are labels, never paths; 1 KiB covers every real camera name. */
#define CU_MAX_FILENAME 1024
/* device, officer and case ids: index key parts, so short and plain. */
#define CU_MAX_ID_LEN 128
/* JSON request bodies (token creation and the like) are small. */
#define CU_MAX_JSON_BODY (1024 * 1024)
/* Default upper bound on one upload; --max-upload overrides it. */
#define CU_DEFAULT_MAX_UPLOAD (256LL * 1024 * 1024 * 1024)
/* Pagination: a page is at most this many items. */
#define CU_MAX_PAGE_LIMIT 1000
#define CU_DEFAULT_PAGE_LIMIT 100
/* A page scans at most this many index entries while filtering, so one
 * request cannot walk the whole index; the cursor lets the client go on. */
#define CU_MAX_SCAN_PER_PAGE 10000
/* Bytes of a stored evidence record; it is metadata, never media. */
#define CU_MAX_RECORD_BYTES (4 * 1024 * 1024)
/* Spool write buffer: large enough for O_DIRECT throughput, small enough
 * that 32 concurrent uploads stay well under 256 MiB. */
#define CU_SPOOL_BUF_BYTES (1024 * 1024)
#define CU_SPOOL_BUFS 4
/* Within one long PATCH, make the offset durable at least this often, so a
 * kill -9 loses at most this much of a transfer. */
#define CU_CHECKPOINT_BYTES (64LL * 1024 * 1024)
/* Keep this much disk free for the index and the ledger: an upload that
 * would eat into it is refused with 507 instead of filling the disk. */
#define CU_DEFAULT_RESERVE_BYTES (64LL * 1024 * 1024)
/* Media tags copied into the evidence record, and their size. */
#define CU_MAX_TAGS 64
#define CU_MAX_TAG_VALUE 1024
/* Streams listed in "streams" (a file may declare up to 1000): body-worn and
 * in-car recorders write one video and a few audio or data tracks. The
 * total is always in "nb_streams". */
#define CU_MAX_PROBE_STREAMS 32
/* Bytes of tag keys and values copied into one result, over the container
 * and all streams: keeps a probe result a small part of an evidence record
 * (CU_MAX_RECORD_BYTES) whatever the file declares. */
#define CU_MAX_PROBE_TAG_BYTES (256 * 1024)
/* Probing a file gives up after this long: a hang becomes a failure. */
#define CU_PROBE_TIMEOUT_SEC 60
/* Groups of one statistics query (GET /v1/stats?by=): each holds a lag
 * histogram of ~1.3 KiB, so at most ~13 MiB a request; more days, devices
 * or cases than this in one answer is not a table anyone reads. */
#define CU_MAX_STATS_GROUPS 10000

#endif
