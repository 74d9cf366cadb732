/* The dock mode of the push client: watch a folder (and every folder under
 * it) and upload each recording once it is complete.
 *
 * A file is complete when its writer closed it (inotify IN_CLOSE_WRITE) or
 * it was moved in (IN_MOVED_TO); a file the events missed (it was there at
 * start-up, or written while a previous upload was running and the event
 * queue overflowed) is found by a rescan every `settle` seconds and taken
 * once its size and mtime have not changed for `settle` seconds. Each file
 * is uploaded once: push_file writes a done-marker for its fingerprint,
 * and a file that has one is skipped (or, with delete_after_verify,
 * deleted, after checking that its bytes still hash to what the server
 * holds). Names starting with '.' are ignored, files and folders alike, so
 * a recorder can write "._part" files and rename them when done. */
#ifndef WATCH_H
#define WATCH_H

#include <signal.h>
#include <stdbool.h>

#include "push.h"

typedef struct {
  const char *dir;
  int settle_s;             /* seconds; at least 1 */
  bool delete_after_verify; /* remove a file once the server's SHA-256 matched ours */
  volatile sig_atomic_t *stop;
  /* Called once per file uploaded (on this thread). */
  void (*uploaded)(void *ud, const char *path, const push_result *r);
  void *ud;
} watch_opts;

/* Runs until *o->stop is set, then returns 0 (an upload in flight is
 * parked at the server's durable offset). Fails only if dir cannot be
 * watched at all; problems with single files are logged and retried. */
int watch_run(push_client *p, const watch_opts *o);

#endif
