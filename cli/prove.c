/* cli_prove: checks a received hash against the server's ledger the way an
 * outside verifier would (docs/LEDGER.md section 5), trusting only a pinned
 * ledger key.
 *
 * Nothing the server says is taken on its word: the event is read from its
 * exact bytes and hashed here, the tree size and root come from the signed
 * note (not the JSON beside it), and the note is checked against the key
 * pinned on first use (or given in a file), not the key the server
 * presents now. The server's current key is fetched only to say, when it
 * differs from the pin, which key it now presents. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "prove.h"
#include "b64.h"
#include "cu_limits.h"
#include "err.h"
#include "fsutil.h"
#include "hex.h"
#include "merkle.h"
#include "note.h"
#include "timeu.h"
#include "banned.h"

/* A verifier key is one short line; a pin file is one line per server. */
#define VKEY_FILE_MAX 4096
#define PIN_FILE_MAX (1024 * 1024)
/* How often to ask for a newer head while waiting for one (heads are
 * signed at most once a second). */
#define HEAD_POLL_US (200 * 1000)

typedef struct {
  char *vkey; /* the trusted key's text */
  char name[NOTE_MAX_ORIGIN + 1];
  unsigned char pub[32];
} trusted;

static void trim(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
}

/* The vkey the server presents now, parsed. */
static int server_key(const client *cl, trusted *k) {
  json_t *o = NULL;
  int rc = client_json(cl, "GET", "/v1/ledger/key", NULL, NULL, &o);
  if (rc) return cu_error_wrap(rc, "cannot get the server's ledger key");
  const char *v = cu_json_str(o, "vkey");
  if (!v) {
    rc = cu_error(CU_ECORRUPT, "the server's GET /v1/ledger/key answer has no vkey");
  } else if (note_vkey_parse(v, k->name, k->pub)) {
    rc =
        cu_error(CU_ECORRUPT, "the server presents a ledger key that is not a verifier key: %s", v);
  } else {
    k->vkey = cu_xstrdup(v);
  }
  json_decref(o);
  return rc;
}

static bool same_key(const trusted *a, const trusted *b) {
  return !strcmp(a->name, b->name) && !memcmp(a->pub, b->pub, 32);
}

/* --ledger-key FILE: the key in FILE, or the server's saved there. */
static int key_from_file(const char *file, const trusted *srv, trusted *k) {
  struct stat sb;
  if (stat(file, &sb) < 0 && errno == ENOENT) {
    char *line = cu_xasprintf("%s\n", srv->vkey);
    int rc = cu_write_file_durable(file, line, strlen(line), 0600, 1);
    free(line);
    if (rc) return cu_error_wrap(rc, "cannot pin the ledger key in %s", file);
    fprintf(stderr,
            "custos: pinned the ledger key %s in %s (first use: from now on the server must "
            "present this key)\n",
            srv->vkey, file);
    *k = *srv;
    k->vkey = cu_xstrdup(srv->vkey);
    return 0;
  }
  cu_buf text = CU_BUF_INIT(VKEY_FILE_MAX);
  int rc = cu_read_small_file(file, text.max, &text);
  if (rc) {
    cu_buf_release(&text);
    return cu_error_wrap(rc, "cannot read the ledger key file");
  }
  trim(text.data);
  if (note_vkey_parse(text.data, k->name, k->pub)) {
    rc = cu_error(CU_EINVAL,
                  "%s does not hold a ledger verifier key (the \"vkey\" of GET /v1/ledger/key)",
                  file);
  } else if (!same_key(k, srv)) {
    rc =
        cu_error(CU_ECORRUPT,
                 "the ledger key changed: the server presents %s but %s holds %s. If the change is "
                 "legitimate (the server's ledger key was replaced on purpose and its operator "
                 "confirms the new key), put the new key in %s",
                 srv->vkey, file, text.data, file);
  } else {
    k->vkey = cu_xstrdup(text.data);
  }
  cu_buf_release(&text);
  return rc;
}

/* $XDG_CONFIG_HOME/custos/ledger-keys (an absolute XDG_CONFIG_HOME only, as
 * the XDG spec says), else ~/.config/custos/ledger-keys; NULL if neither. */
static char *pin_file_path(void) {
  const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
  if (x && x[0] == '/') return cu_xasprintf("%s/custos/ledger-keys", x);
  if (h && *h) return cu_xasprintf("%s/.config/custos/ledger-keys", h);
  return NULL;
}

/* The vkey pinned for server in the pin file's text (modified in place), or
 * NULL. The first line for a server counts. */
static const char *pin_lookup(char *text, const char *server) {
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    trim(line);
    while (*line == ' ' || *line == '\t')
      line++;
    if (!*line || *line == '#') continue;
    char *sp = line + strcspn(line, " \t");
    if (!*sp) continue;
    *sp++ = '\0';
    if (strcmp(line, server)) continue;
    while (*sp == ' ' || *sp == '\t')
      sp++;
    return sp;
  }
  return NULL;
}

/* Appends "server vkey" to the pin file, creating it (and its directories,
 * 0700) with a comment saying what it is. One write with O_APPEND, so two
 * clients pinning at once both keep their line. */
static int pin_append(const char *path, const cu_buf *old, bool existed, const char *server,
                      const char *vkey) {
  char *dir = cu_xstrndup(path, (size_t)(strrchr(path, '/') - path));
  int rc = cu_mkdirs(dir, 0700);
  int fd = -1;
  if (!rc && (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
    rc = cu_error_errno(cu_errno_code(errno), errno, "cannot open %s", path);
  if (!rc) {
    char *text =
        cu_xasprintf("%s%s%s %s\n",
                     existed ? ""
                             : "# Ledger keys custos pinned on first use, one line per server: "
                               "<server-url> <vkey>\n",
                     old->len && old->data[old->len - 1] != '\n' ? "\n" : "", server, vkey);
    rc = cu_write_all(fd, text, strlen(text));
    free(text);
    if (rc)
      rc = cu_error_wrap(rc, "cannot write %s", path);
    else if (fsync(fd) < 0)
      rc = cu_error_errno(CU_EIO, errno, "cannot sync %s", path);
  }
  if (fd >= 0 && close(fd) < 0 && !rc) rc = cu_error_errno(CU_EIO, errno, "cannot close %s", path);
  if (!rc && !existed) rc = cu_fsync_dir(dir);
  free(dir);
  return rc;
}

/* No --ledger-key: the server's line in the per-user pin file. */
static int key_from_pins(const client *cl, const trusted *srv, trusted *k) {
  char *path = pin_file_path();
  if (!path)
    return cu_error(CU_EINVAL, "cannot pin the ledger key: neither XDG_CONFIG_HOME nor HOME is "
                               "set (use --ledger-key FILE)");
  cu_buf text = CU_BUF_INIT(PIN_FILE_MAX), copy = CU_BUF_INIT(PIN_FILE_MAX);
  struct stat sb;
  bool existed = stat(path, &sb) == 0;
  int rc = existed ? cu_read_small_file(path, text.max, &text) : 0;
  if (rc) {
    rc = cu_error_wrap(rc, "cannot read the ledger key pins");
    goto done;
  }
  if (text.len) cu_buf_add(&copy, text.data, text.len);
  const char *pin = copy.data ? pin_lookup(copy.data, cl->server) : NULL;
  if (pin) {
    if (note_vkey_parse(pin, k->name, k->pub)) {
      rc = cu_error(CU_EINVAL, "the ledger key pinned for %s in %s is not a verifier key: %s",
                    cl->server, path, pin);
    } else if (!same_key(k, srv)) {
      rc = cu_error(CU_ECORRUPT,
                    "the ledger key changed: %s now presents %s, but %s is pinned for it in %s. If "
                    "the change is legitimate (the server's ledger key was replaced on purpose and "
                    "its operator confirms the new key), edit that line of %s",
                    cl->server, srv->vkey, pin, path, path);
    } else {
      k->vkey = cu_xstrdup(pin);
    }
  } else {
    *k = *srv;
    k->vkey = cu_xstrdup(srv->vkey);
    if (pin_append(path, &text, existed, cl->server, srv->vkey))
      fprintf(stderr,
              "custos: WARNING: cannot pin the ledger key of %s (%s); it is trusted for this use "
              "only\n",
              cl->server, cu_errmsg());
    else
      fprintf(stderr,
              "custos: pinned the ledger key %s of %s in %s (first use: from now on this server "
              "must present this key)\n",
              srv->vkey, cl->server, path);
  }
done:
  cu_buf_release(&copy);
  cu_buf_release(&text);
  free(path);
  return rc;
}

/* The ledger event of id recording what, from its exact bytes: its index
 * and leaf hash. */
static int find_event(const client *cl, const char *id, const char *what, const char *sha256,
                      uint64_t *index, merkle_hash leaf) {
  bool original = !strcmp(what, "original");
  const char *type = original ? "ingested" : "rendition";
  char *path = cu_xasprintf("/v1/evidence/%s/events", id);
  json_t *resp = NULL;
  int rc = client_json(cl, "GET", path, NULL, NULL, &resp);
  free(path);
  if (rc) return cu_error_wrap(rc, "cannot get the ledger events of evidence %s", id);
  json_t *list = json_object_get(resp, "events"), *e;
  if (!json_is_array(list)) {
    json_decref(resp);
    return cu_error(CU_EIO, "the server's answer to GET /v1/evidence/%s/events has no event list",
                    id);
  }
  cu_buf bytes = CU_BUF_INIT(CU_MAX_RECORD_BYTES);
  char other[65] = "";
  int64_t other_index = -1;
  bool found = false;
  size_t i;
  json_array_foreach(list, i, e) {
    const char *data = cu_json_str(e, "data");
    int64_t at = cu_json_int(e, "index", -1);
    json_t *ev = NULL;
    cu_buf_reset(&bytes);
    if (!data || at < 0 || cu_b64_decode(data, strlen(data), &bytes) || !bytes.len ||
        cu_json_parse(bytes.data, bytes.len, &ev))
      continue; /* not an event this proof can use; the match below decides */
    const char *t = cu_json_str(ev, "type"), *evid = cu_json_str(ev, "evidence");
    const char *kind = cu_json_str(ev, "kind"), *sha = cu_json_str(ev, "sha256");
    bool match = t && !strcmp(t, type) && evid && !strcmp(evid, id) &&
                 (original || (kind && !strcmp(kind, what)));
    if (match && sha && !strcmp(sha, sha256)) {
      *index = (uint64_t)at;
      merkle_leaf(bytes.data, bytes.len, leaf);
      found = true;
    } else if (match && other_index < 0) {
      snprintf(other, sizeof other, "%s", sha ? sha : "(none)");
      other_index = at;
    }
    json_decref(ev);
    if (found) break;
  }
  if (found)
    rc = 0;
  else if (other_index >= 0)
    rc = cu_error(
        CU_ECORRUPT,
        "the ledger's %s event for the %s of evidence %s (entry %lld) records SHA-256 %s, not %s",
        type, what, id, (long long)other_index, other, sha256);
  else if (original)
    rc = cu_error(CU_ECORRUPT, "the ledger has no ingested event for evidence %s", id);
  else
    rc = cu_error(CU_ECORRUPT, "the ledger has no rendition event of kind %s for evidence %s", what,
                  id);
  cu_buf_release(&bytes);
  json_decref(resp);
  return rc;
}

/* The latest signed head, checked with the trusted key, once it covers
 * index; size and root from the signed note only. */
static int covering_head(const client *cl, const trusted *k, uint64_t index, note_checkpoint *cp) {
  int64_t deadline = cu_mono_us() + CLI_PROVE_WAIT_US;
  uint64_t latest = 0;
  for (;;) {
    json_t *s = NULL;
    int rc = client_json(cl, "GET", "/v1/ledger/sth", NULL, NULL, &s);
    if (rc && rc != CU_ENOTFOUND) return cu_error_wrap(rc, "cannot get the signed tree head");
    if (!rc) {
      const char *note = cu_json_str(s, "checkpoint");
      size_t body = 0;
      if (!note) {
        rc = cu_error(CU_ECORRUPT, "the signed tree head the server sent has no checkpoint");
      } else if (note_verify(note, strlen(note), k->name, k->pub, &body)) {
        rc = cu_error_wrap(CU_ECORRUPT,
                           "the signed tree head (size %lld) has an invalid signature: it does not "
                           "verify under the pinned ledger key %s",
                           (long long)cu_json_int(s, "size", -1), k->vkey);
      } else if (note_checkpoint_parse(note, body, cp)) {
        rc = cu_error_wrap(CU_ECORRUPT, "the signed tree head cannot be read");
      } else if (strcmp(cp->origin, k->name)) {
        rc = cu_error(CU_ECORRUPT,
                      "the signed tree head is for the log '%s', not '%s' (the pinned key's)",
                      cp->origin, k->name);
      }
      json_decref(s);
      if (rc) return rc;
      if (cp->size > index) return 0;
      latest = cp->size;
    }
    if (cu_mono_us() >= deadline)
      return cu_error(
          CU_EBUSY,
          "no signed tree head covers ledger entry %llu after %d s (the latest is of size %llu)",
          (unsigned long long)index, CLI_PROVE_WAIT_US / 1000000, (unsigned long long)latest);
    struct timespec ts = {0, HEAD_POLL_US * 1000L};
    nanosleep(&ts, NULL);
  }
}

static int check_inclusion(const client *cl, uint64_t index, const note_checkpoint *cp,
                           const merkle_hash leaf) {
  char *path = cu_xasprintf("/v1/ledger/proof/inclusion?index=%llu&size=%llu",
                            (unsigned long long)index, (unsigned long long)cp->size);
  json_t *o = NULL;
  int rc = client_json(cl, "GET", path, NULL, NULL, &o);
  free(path);
  if (rc)
    return cu_error_wrap(rc, "cannot get the inclusion proof of ledger entry %llu",
                         (unsigned long long)index);
  json_t *list = json_object_get(o, "audit_path"), *h;
  merkle_hash p[MERKLE_MAX_PATH];
  size_t i, n = json_array_size(list);
  if (!json_is_array(list) || n > MERKLE_MAX_PATH)
    rc = cu_error(CU_ECORRUPT, "the inclusion proof of ledger entry %llu is malformed",
                  (unsigned long long)index);
  json_array_foreach(list, i, h) {
    if (rc) break;
    const char *s = json_string_value(h);
    if (!s || cu_hex_decode(s, strlen(s), p[i], 32))
      rc = cu_error(
          CU_ECORRUPT,
          "the inclusion proof of ledger entry %llu holds a hash that is not 64 hex digits",
          (unsigned long long)index);
  }
  if (!rc &&
      !merkle_verify_inclusion(index, cp->size, leaf, (const merkle_hash *)p, (int)n, cp->root))
    rc = cu_error(
        CU_ECORRUPT,
        "the inclusion proof of ledger entry %llu in the signed tree of size %llu is invalid: "
        "the event's bytes and the server's proof do not lead to the signed root, so the "
        "signed ledger does not hold this event as shown",
        (unsigned long long)index, (unsigned long long)cp->size);
  json_decref(o);
  return rc;
}

int cli_prove(const client *cl, const char *ledger_key_file, const char *id, const char *what,
              const char *sha256, json_t **out) {
  trusted srv = {0}, k = {0};
  note_checkpoint cp;
  merkle_hash leaf;
  uint64_t index = 0;
  *out = NULL;
  if (!id || !what || !sha256)
    return cu_error(CU_EINVAL, "cli_prove: id, what and sha256 are required");
  int rc = server_key(cl, &srv);
  if (!rc)
    rc = ledger_key_file ? key_from_file(ledger_key_file, &srv, &k) : key_from_pins(cl, &srv, &k);
  if (!rc) rc = find_event(cl, id, what, sha256, &index, leaf);
  if (!rc) rc = covering_head(cl, &k, index, &cp);
  if (!rc) rc = check_inclusion(cl, index, &cp, leaf);
  if (!rc) {
    char hex[65];
    json_t *o = json_object();
    cu_json_set_int(o, "index", (int64_t)index);
    cu_json_set_int(o, "tree_size", (int64_t)cp.size);
    cu_hex_encode(cp.root, 32, hex);
    cu_json_set_str(o, "root", hex);
    cu_json_set_str(o, "origin", cp.origin);
    cu_hex_encode(leaf, 32, hex);
    cu_json_set_str(o, "leaf_hash", hex);
    *out = o;
  }
  free(srv.vkey);
  free(k.vkey);
  return rc;
}

void cli_prove_report(const char *cmd, const json_t *proof) {
  fprintf(stderr, "custos %s: proved by ledger entry %lld in the signed tree of size %lld\n", cmd,
          (long long)cu_json_int(proof, "index", -1),
          (long long)cu_json_int(proof, "tree_size", -1));
}
