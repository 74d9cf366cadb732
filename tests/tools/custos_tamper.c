/* custos-tamper: damages a stopped Custos server's index the way an
 * attacker with write access to the disk would, so the integration tests
 * can check that `custos verify` and the server notice. It talks to
 * RocksDB directly (no Custos code), knowing only the key layout of
 * indexer/idx_ledger.c:
 *
 *   ledger       index (u64 BE)              -> event bytes (canonical JSON)
 *   ledger_node  level (u8) | index (u64 BE) -> 32-byte hash of a perfect subtree
 *   sth          size (u64 BE)               -> signed tree head (JSON)
 *   timestamp    imprint (64 hex)            -> RFC 3161 TimeStampResp (DER)
 *
 * usage: custos-tamper --home DIR ACTION
 *   --entries                     print the number of ledger entries
 *   --heads                       print the sizes of the signed tree heads, one a line
 *   --rewrite-entry N [--field K] change one value of entry N (default "at"), keeping it
 *                                 canonical JSON; the stored tree is left alone
 *   --rewrite-entry-and-tree N [--field K]
 *                                 the same, and recompute leaf N and every stored node
 *                                 above it, so the tree is self-consistent again
 *   --delete-entry N              delete entry N (its tree nodes stay)
 *   --corrupt-sth SIZE            flip one character of the signature in that head's
 *                                 checkpoint
 *   --corrupt-token SHA256HEX     flip one byte of that time-stamp's signed TSTInfo (the
 *                                 middle of its serial number)
 *   --token SHA256HEX             write that time-stamp's DER to stdout
 *
 * Every write is one synced batch. Exit 0 done, 1 failed, 2 usage. */
#include <getopt.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <rocksdb/c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: custos-tamper --home DIR (--entries | --heads | --rewrite-entry N [--field KEY] |\n"
    "       --rewrite-entry-and-tree N [--field KEY] | --delete-entry N | --corrupt-sth SIZE |\n"
    "       --corrupt-token SHA256HEX | --token SHA256HEX)\n";

static rocksdb_t *db;
static rocksdb_options_t *opts;
static rocksdb_readoptions_t *ropts;
static rocksdb_writeoptions_t *wopts;
static char **cf_names;
static size_t cf_count;
static rocksdb_column_family_handle_t **cfs;

static void die(const char *what, char *err) {
  fprintf(stderr, "custos-tamper: %s%s%s\n", what, err ? ": " : "", err ? err : "");
  free(err);
  exit(1);
}

static rocksdb_column_family_handle_t *cf(const char *name) {
  for (size_t i = 0; i < cf_count; i++)
    if (!strcmp(cf_names[i], name)) return cfs[i];
  fprintf(stderr, "custos-tamper: the index has no column family '%s'\n", name);
  exit(1);
}

static void open_db(const char *home) {
  char path[4096];
  snprintf(path, sizeof path, "%s/index", home);
  opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(opts, 0);
  char *err = NULL;
  cf_names = rocksdb_list_column_families(opts, path, &cf_count, &err);
  if (err) die("cannot list the column families (is this a Custos home?)", err);
  const rocksdb_options_t **cf_opts = calloc(cf_count, sizeof *cf_opts);
  cfs = calloc(cf_count, sizeof *cfs);
  if (!cf_opts || !cfs) die("out of memory", NULL);
  for (size_t i = 0; i < cf_count; i++) cf_opts[i] = opts;
  db = rocksdb_open_column_families(opts, path, (int)cf_count, (const char *const *)cf_names,
                                    cf_opts, cfs, &err);
  free(cf_opts);
  if (err) die("cannot open the index (is the server still running?)", err);
  ropts = rocksdb_readoptions_create();
  wopts = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(wopts, 1);
}

static void close_db(void) {
  for (size_t i = 0; i < cf_count; i++) rocksdb_column_family_handle_destroy(cfs[i]);
  rocksdb_close(db);
  rocksdb_list_column_families_destroy(cf_names, cf_count);
  free(cfs);
  rocksdb_readoptions_destroy(ropts);
  rocksdb_writeoptions_destroy(wopts);
  rocksdb_options_destroy(opts);
}

static void be64(uint64_t v, unsigned char out[8]) {
  for (int i = 0; i < 8; i++) out[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const unsigned char *in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | in[i];
  return v;
}

static void node_key(unsigned level, uint64_t index, unsigned char k[9]) {
  k[0] = (unsigned char)level;
  be64(index, k + 1);
}

/* The value, or NULL when the key is absent; *n is its length. */
static char *get(const char *cfname, const void *key, size_t klen, size_t *n) {
  char *err = NULL;
  char *v = rocksdb_get_cf(db, ropts, cf(cfname), key, klen, n, &err);
  if (err) die("read failed", err);
  return v;
}

static void write_batch(rocksdb_writebatch_t *wb) {
  char *err = NULL;
  rocksdb_write(db, wopts, wb, &err);
  rocksdb_writebatch_destroy(wb);
  if (err) die("write failed", err);
}

static uint64_t parse_u64(const char *s, const char *what) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || *end || *s == '-') {
    fprintf(stderr, "custos-tamper: %s must be a whole number, not '%s'\n", what, s);
    exit(2);
  }
  return (uint64_t)v;
}

static char *canon(const json_t *v) {
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  if (!s) die("cannot serialise JSON", NULL);
  return s;
}

/* ---- reading ----------------------------------------------------------- */

static uint64_t count_keys(const char *cfname, bool print_be64) {
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ropts, cf(cfname));
  uint64_t n = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    n++;
    if (print_be64) {
      size_t klen;
      const char *k = rocksdb_iter_key(it, &klen);
      if (klen == 8) printf("%llu\n", (unsigned long long)get_be64((const unsigned char *)k));
    }
  }
  char *err = NULL;
  rocksdb_iter_get_error(it, &err);
  rocksdb_iter_destroy(it);
  if (err) die("scan failed", err);
  return n;
}

/* ---- ledger entries ---------------------------------------------------- */

/* Changes one character of s in place to another of the same kind (a hex
 * digit stays a hex digit, a decimal digit a decimal digit), the last one
 * that can be changed. */
static bool alter_string(char *s) {
  for (size_t i = strlen(s); i-- > 0;) {
    char c = s[i];
    if (c >= '0' && c <= '8') s[i] = (char)(c + 1);
    else if (c == '9') s[i] = '0';
    else if (c >= 'a' && c <= 'e') s[i] = (char)(c + 1);
    else if (c == 'f') s[i] = 'e';
    else continue;
    return true;
  }
  return false;
}

/* Entry n's new bytes: the same canonical JSON with field's value altered. */
static char *rewritten_entry(uint64_t n, const char *field) {
  unsigned char k[8];
  be64(n, k);
  size_t len;
  char *old = get("ledger", k, 8, &len);
  if (!old) {
    fprintf(stderr, "custos-tamper: ledger entry %llu does not exist\n", (unsigned long long)n);
    exit(1);
  }
  json_error_t jerr;
  json_t *ev = json_loadb(old, len, 0, &jerr);
  if (!json_is_object(ev)) die("the entry is not a JSON object", NULL);
  char *again = canon(ev);
  if (strlen(again) != len || memcmp(again, old, len))
    die("the entry does not re-serialise to the same bytes; refusing to guess the canonical form",
        NULL);
  free(again);
  const char *was = json_string_value(json_object_get(ev, field));
  if (!was) {
    fprintf(stderr, "custos-tamper: ledger entry %llu has no string field '%s': %.*s\n",
            (unsigned long long)n, field, (int)len, old);
    exit(1);
  }
  char *now = strdup(was);
  if (!now || !alter_string(now)) die("the field has no character that can be altered", NULL);
  fprintf(stderr, "custos-tamper: ledger entry %llu: %s %s -> %s\n", (unsigned long long)n, field,
          was, now);
  json_object_set_new(ev, field, json_string(now));
  free(now);
  char *bytes = canon(ev);
  json_decref(ev);
  rocksdb_free(old);
  return bytes;
}

static void leaf_hash(const char *bytes, size_t n, unsigned char out[32]) {
  unsigned char *buf = malloc(n + 1);
  if (!buf) die("out of memory", NULL);
  buf[0] = 0;
  memcpy(buf + 1, bytes, n);
  SHA256(buf, n + 1, out);
  free(buf);
}

static void rewrite_entry(uint64_t n, const char *field, bool tree) {
  char *bytes = rewritten_entry(n, field);
  size_t len = strlen(bytes);
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  unsigned char k[9];
  be64(n, k);
  rocksdb_writebatch_put_cf(wb, cf("ledger"), (const char *)k, 8, bytes, len);
  if (tree) {
    /* Leaf n, then each perfect subtree above it that is stored, from the
     * stored sibling hashes. A node is stored only once its subtree is
     * complete, so the walk stops at the first level without one. */
    unsigned char h[32];
    leaf_hash(bytes, len, h);
    node_key(0, n, k);
    size_t vlen;
    char *v = get("ledger_node", k, 9, &vlen);
    if (!v) die("the entry has no leaf hash stored", NULL);
    rocksdb_free(v);
    rocksdb_writebatch_put_cf(wb, cf("ledger_node"), (const char *)k, 9, (const char *)h, 32);
    unsigned nodes = 1;
    for (unsigned level = 1; level < 64; level++) {
      uint64_t index = n >> level;
      node_key(level, index, k);
      v = get("ledger_node", k, 9, &vlen);
      if (!v) break;
      rocksdb_free(v);
      uint64_t child = n >> (level - 1);
      unsigned char sib[32], buf[65];
      node_key(level - 1, child ^ 1, k);
      v = get("ledger_node", k, 9, &vlen);
      if (!v || vlen != 32) die("a sibling node is missing or damaged", NULL);
      memcpy(sib, v, 32);
      rocksdb_free(v);
      buf[0] = 1;
      memcpy(buf + 1, child & 1 ? sib : h, 32);
      memcpy(buf + 33, child & 1 ? h : sib, 32);
      SHA256(buf, sizeof buf, h);
      node_key(level, index, k);
      rocksdb_writebatch_put_cf(wb, cf("ledger_node"), (const char *)k, 9, (const char *)h, 32);
      nodes++;
    }
    fprintf(stderr, "custos-tamper: recomputed %u tree node(s) above ledger entry %llu\n", nodes,
            (unsigned long long)n);
  }
  write_batch(wb);
  free(bytes);
}

static void delete_entry(uint64_t n) {
  unsigned char k[8];
  be64(n, k);
  size_t len;
  char *v = get("ledger", k, 8, &len);
  if (!v) {
    fprintf(stderr, "custos-tamper: ledger entry %llu does not exist\n", (unsigned long long)n);
    exit(1);
  }
  rocksdb_free(v);
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  rocksdb_writebatch_delete_cf(wb, cf("ledger"), (const char *)k, 8);
  write_batch(wb);
  fprintf(stderr, "custos-tamper: deleted ledger entry %llu\n", (unsigned long long)n);
}

/* ---- signed heads and tokens ------------------------------------------- */

static char other_b64(char c) { return c == 'A' ? 'B' : 'A'; }

static void corrupt_sth(uint64_t size) {
  unsigned char k[8];
  be64(size, k);
  size_t len;
  char *old = get("sth", k, 8, &len);
  if (!old) {
    fprintf(stderr, "custos-tamper: no signed head for size %llu\n", (unsigned long long)size);
    exit(1);
  }
  json_error_t jerr;
  json_t *sth = json_loadb(old, len, 0, &jerr);
  rocksdb_free(old);
  const char *note = json_string_value(json_object_get(sth, "checkpoint"));
  if (!note) die("the head has no checkpoint", NULL);
  /* The signature line: "— name base64(key id || signature)\n", the last line. */
  char *text = strdup(note);
  if (!text) die("out of memory", NULL);
  size_t n = strlen(text);
  if (n < 2 || text[n - 1] != '\n') die("the checkpoint does not end in a newline", NULL);
  char *line = text + n - 1;
  while (line > text && line[-1] != '\n') line--;
  char *sig = strrchr(line, ' ');
  if (!sig || strncmp(line, "\xe2\x80\x94 ", 4)) die("the checkpoint has no signature line", NULL);
  sig++;
  size_t slen = (size_t)(text + n - 1 - sig);
  if (slen < 40) die("the signature is too short", NULL);
  /* Well past the 4-byte key id, well before any padding: a signature byte. */
  size_t at = slen / 2;
  fprintf(stderr, "custos-tamper: head %llu: signature character %zu '%c' -> '%c'\n",
          (unsigned long long)size, at, sig[at], other_b64(sig[at]));
  sig[at] = other_b64(sig[at]);
  json_object_set_new(sth, "checkpoint", json_string(text));
  free(text);
  char *bytes = canon(sth);
  json_decref(sth);
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  rocksdb_writebatch_put_cf(wb, cf("sth"), (const char *)k, 8, bytes, strlen(bytes));
  write_batch(wb);
  free(bytes);
}

static void print_token(const char *hex) {
  size_t len;
  char *der = get("timestamp", hex, strlen(hex), &len);
  if (!der) {
    fprintf(stderr, "custos-tamper: no time-stamp for %s\n", hex);
    exit(1);
  }
  fwrite(der, 1, len, stdout);
  rocksdb_free(der);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Flips a byte of the token's signed content, the TSTInfo: the middle of
 * its serial number, which RFC 3161 puts right after the message imprint
 * (found as the raw digest). Not simply the middle of the DER: that lands
 * in the CA certificate the TSA adds for convenience, which nothing signs
 * and a verifier rightly ignores when it trusts its own copy of the root. */
static void corrupt_token(const char *hex) {
  unsigned char digest[32];
  if (strlen(hex) != 64) die("the imprint must be 64 hex digits", NULL);
  for (int i = 0; i < 32; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) die("the imprint must be 64 hex digits", NULL);
    digest[i] = (unsigned char)(hi << 4 | lo);
  }
  size_t len;
  char *der = get("timestamp", hex, 64, &len);
  if (!der) {
    fprintf(stderr, "custos-tamper: no time-stamp for %s\n", hex);
    exit(1);
  }
  unsigned char *copy = malloc(len);
  if (!copy) die("out of memory", NULL);
  memcpy(copy, der, len);
  rocksdb_free(der);
  unsigned char *imp = len >= 32 ? memmem(copy, len, digest, 32) : NULL;
  if (!imp) die("the token does not hold its own imprint", NULL);
  size_t serial = (size_t)(imp - copy) + 32; /* INTEGER tag, length, value */
  if (serial + 3 > len || copy[serial] != 0x02 || copy[serial + 1] < 2 || copy[serial + 1] > 0x7f ||
      serial + 2 + copy[serial + 1] > len)
    die("no serial number after the imprint; is this an RFC 3161 token?", NULL);
  size_t at = serial + 2 + copy[serial + 1] / 2;
  fprintf(stderr,
          "custos-tamper: time-stamp %s: byte %zu of %zu (the TSTInfo's serial number) 0x%02x -> "
          "0x%02x\n",
          hex, at, len, copy[at], copy[at] ^ 0x01);
  copy[at] ^= 0x01;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  rocksdb_writebatch_put_cf(wb, cf("timestamp"), hex, 64, (const char *)copy, len);
  write_batch(wb);
  free(copy);
}

int main(int argc, char **argv) {
  enum { O_HOME = 1, O_ENTRIES, O_HEADS, O_REWRITE, O_REWRITE_TREE, O_DELETE, O_STH, O_TOKEN, O_FIELD,
         O_PRINT_TOKEN };
  static const struct option lopts[] = {{"home", required_argument, 0, O_HOME},
                                        {"entries", no_argument, 0, O_ENTRIES},
                                        {"heads", no_argument, 0, O_HEADS},
                                        {"rewrite-entry", required_argument, 0, O_REWRITE},
                                        {"rewrite-entry-and-tree", required_argument, 0, O_REWRITE_TREE},
                                        {"delete-entry", required_argument, 0, O_DELETE},
                                        {"corrupt-sth", required_argument, 0, O_STH},
                                        {"corrupt-token", required_argument, 0, O_TOKEN},
                                        {"token", required_argument, 0, O_PRINT_TOKEN},
                                        {"field", required_argument, 0, O_FIELD},
                                        {"help", no_argument, 0, 'h'},
                                        {0, 0, 0, 0}};
  const char *home = NULL, *arg = NULL, *field = "at";
  int action = 0, c;
  while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
    switch (c) {
    case O_HOME: home = optarg; break;
    case O_FIELD: field = optarg; break;
    case 'h': fputs(usage, stdout); return 0;
    case O_ENTRIES: case O_HEADS: case O_REWRITE: case O_REWRITE_TREE: case O_DELETE: case O_STH:
    case O_TOKEN: case O_PRINT_TOKEN:
      if (action) {
        fputs("custos-tamper: one action at a time\n", stderr);
        return 2;
      }
      action = c;
      arg = optarg;
      break;
    default: fputs(usage, stderr); return 2;
    }
  }
  if (!home || !action || optind < argc) {
    fputs(usage, stderr);
    return 2;
  }
  open_db(home);
  switch (action) {
  case O_ENTRIES: printf("%llu\n", (unsigned long long)count_keys("ledger", false)); break;
  case O_HEADS: count_keys("sth", true); break;
  case O_REWRITE: rewrite_entry(parse_u64(arg, "the index"), field, false); break;
  case O_REWRITE_TREE: rewrite_entry(parse_u64(arg, "the index"), field, true); break;
  case O_DELETE: delete_entry(parse_u64(arg, "the index")); break;
  case O_STH: corrupt_sth(parse_u64(arg, "the size")); break;
  case O_TOKEN: corrupt_token(arg); break;
  case O_PRINT_TOKEN: print_token(arg); break;
  }
  close_db();
  return 0;
}
