/* The push client: a tus 1.0 uploader (libcurl) for recorders and docks.
 *
 * It hashes a file (SHA-256, streaming) before sending it and declares the
 * hash as `sha256` metadata, so the server refuses (quarantines) bytes that
 * arrive different. Uploads survive everything short of losing the file:
 * the upload URL is remembered in a state directory under a fingerprint of
 * the file, and each failure is followed by a HEAD to learn the server's
 * durable offset and a PATCH from there, with exponential backoff.
 *
 * State directory layout (mode 0700; every file 0600, written with the
 * safe-save sequence). <fp> is the file's fingerprint: 64 hex digits of
 * SHA-256 over "custos-push-v1", the server URL, the absolute path, the
 * size, the mtime in nanoseconds, and the device and inode numbers.
 *
 *   uploads/<fp>.json   an upload in progress: {"url","sha256","path","size",
 *                       "server","created_at"}; removed once it is done
 *   uploads/<fp>.lock   flock()ed while a process pushes that file
 *   done/<fp>.json      an upload that finished and whose server SHA-256
 *                       matched ours: {"evidence_id","sha256","path","size",
 *                       "server","done_at"}; --watch uploads a file only if
 *                       this is absent
 *
 * No CURL type appears here; libcurl's errors become our codes in push.c. */
#ifndef PUSH_H
#define PUSH_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "id.h"

typedef struct push_client push_client;

typedef struct {
  const char *server;    /* base URL, e.g. http://127.0.0.1:8080 (no trailing /) */
  const char *token;     /* bearer token */
  const char *state_dir; /* see the layout above; created if missing */
  /* Metadata sent with every upload (NULL = not sent). */
  const char *device_id, *officer_id, *case_id, *recorded_at;
  const char *retention; /* the retention category to ask for, or NULL */
  int retries;        /* failed attempts in a row without progress; 0 = forever */
  int64_t max_rate;   /* bytes per second sent, 0 = unlimited */
  int64_t chunk_size; /* bytes per PATCH, 0 = the whole remainder in one */
  /* Set (by a signal handler) to stop: a transfer in flight is abandoned
   * at once, leaving the upload parked at the server's durable offset. */
  volatile sig_atomic_t *stop;
  /* Called as bytes go out: done of total bytes of path are on their way. */
  void (*progress)(void *ud, const char *path, uint64_t done, uint64_t total);
  void *progress_ud;
} push_opts;

typedef struct {
  char evidence_id[CU_ID_LEN + 1];
  char sha256[65]; /* ours; on success the server's is the same */
  char fingerprint[65];
  uint64_t size;
  bool resumed; /* a remembered upload was continued */
  bool stopped; /* gave up because *stop was set */
} push_result;

/* Copies what it needs from opts (strings included) and makes the state
 * directory. */
int push_open(push_client **out, const push_opts *opts);
void push_free(push_client *p);

/* Uploads one regular file, resuming a remembered upload of it when there
 * is one. 0 once the server holds it as evidence with our SHA-256 (and a
 * done-marker was written). Errors:
 *   CU_ECHECKSUM  the server's SHA-256 of the bytes differs from ours
 *   CU_EIO, CU_EBUSY, CU_ENOSPC  transient (network, 5xx, 423, 507, a
 *                 file still changing) and the retries ran out: try later
 *   anything else the server or the file refused it; the message says why
 * With out->stopped set the caller asked to stop; the upload is parked. */
int push_file(push_client *p, const char *path, push_result *out);

/* True for the codes push_file uses for "try again later". */
bool push_error_is_transient(int code);

/* If path (as it is now) has a done-marker, fills out from it and returns
 * 0; CU_ENOTFOUND if it has none. */
int push_done_lookup(push_client *p, const char *path, push_result *out);

/* Every regular file under dir, recursively, sorted bytewise by path,
 * skipping names that start with '.' and not following symbolic links.
 * The caller frees with push_list_free. */
int push_list_files(const char *dir, char ***paths, size_t *n);
void push_list_free(char **paths, size_t n);

/* $XDG_STATE_HOME/custos, else $HOME/.local/state/custos (caller frees). */
int push_default_state_dir(char **out);

#endif
