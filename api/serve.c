/* Serving an object's bytes: ETag and Repr-Digest (RFC 9530) from its
 * SHA-256, If-None-Match, one range or several (multipart/byteranges,
 * RFC 9110 §14.6), streamed from the object file (sendfile for one range).
 *
 * Every answer that carries content is first an "accessed" event: who,
 * which item, which rendition or clip, which bytes, from which address.
 * The event is committed before the response is queued, so no byte of
 * evidence leaves without its trace; a HEAD, a 304 and a 416 carry no
 * content and leave none. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api_int.h"
#include "b64.h"
#include "cu_limits.h"
#include "err.h"
#include "hex.h"
#include "timeu.h"
#include "banned.h"

#define MAX_RANGES 16 /* more is a scan of the file, not a player's request */


/* One spec "a-b", "a-" or "-n". 0 ok, 1 malformed, -1 unsatisfiable. */
static int parse_spec(const char *p, size_t n, uint64_t size, serve_range *out) {
  char a[24] = "", b[24] = "";
  const char *dash = memchr(p, '-', n);
  if (!dash) return 1;
  size_t an = (size_t)(dash - p), bn = n - an - 1;
  if (an >= sizeof a || bn >= sizeof b) return 1;
  memcpy(a, p, an);
  memcpy(b, dash + 1, bn);
  int64_t x = 0, y = 0;
  if (!an) { /* a suffix */
    if (cu_parse_i64(b, &y, 0)) return 1;
    if (y == 0 || !size) return -1;
    out->len = (uint64_t)y > size ? size : (uint64_t)y;
    out->off = size - out->len;
    return 0;
  }
  if (cu_parse_i64(a, &x, 0) || x < 0) return 1;
  if (bn && (cu_parse_i64(b, &y, 0) || y < x)) return 1;
  if ((uint64_t)x >= size) return -1;
  uint64_t last = bn && (uint64_t)y < size - 1 ? (uint64_t)y : size - 1;
  out->off = (uint64_t)x;
  out->len = last - out->off + 1;
  return 0;
}

int serve_parse_ranges(const char *h, uint64_t size, serve_range *out, int max, int *n) {
  *n = 0;
  if (!h || strncmp(h, "bytes=", 6)) return 1;
  int unsat = 0;
  for (const char *p = h + 6; *p;) {
    while (*p == ' ' || *p == '\t') p++;
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    serve_range r;
    int rc = parse_spec(p, len, size, &r);
    if (rc > 0) return 1;
    if (rc < 0) unsat++;
    else if (*n == max) return 1;
    else out[(*n)++] = r;
    if (!end) break;
    p = end + 1;
  }
  if (!*n) return unsat ? -1 : 1;
  return 0;
}

bool serve_etag_matches(const char *inm, const char *etag) {
  if (!inm) return false;
  if (!strcmp(inm, "*")) return true;
  return strstr(inm, etag) != NULL;
}

/* ---- multipart/byteranges ----------------------------------------------- */

typedef struct {
  int fd;
  int n;
  serve_range r[MAX_RANGES];
  char *head[MAX_RANGES]; /* each part's boundary and headers */
  size_t head_len[MAX_RANGES];
  char tail[96];
  size_t tail_len;
  uint64_t total;
} multipart;

static void multipart_free(void *cls) {
  multipart *m = cls;
  close(m->fd);
  for (int i = 0; i < m->n; i++) free(m->head[i]);
  free(m);
}

static ssize_t multipart_read(void *cls, uint64_t pos, char *buf, size_t max) {
  multipart *m = cls;
  uint64_t at = 0;
  for (int i = 0; i <= m->n; i++) {
    const char *mem = i < m->n ? m->head[i] : m->tail;
    size_t mlen = i < m->n ? m->head_len[i] : m->tail_len;
    if (pos < at + mlen) {
      size_t k = (size_t)(at + mlen - pos) < max ? (size_t)(at + mlen - pos) : max;
      memcpy(buf, mem + (pos - at), k);
      return (ssize_t)k;
    }
    at += mlen;
    if (i == m->n) break;
    if (pos < at + m->r[i].len) {
      uint64_t want = at + m->r[i].len - pos;
      size_t k = want < max ? (size_t)want : max;
      ssize_t got = pread(m->fd, buf, k, (off_t)(m->r[i].off + (pos - at)));
      return got > 0 ? got : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    at += m->r[i].len;
  }
  return MHD_CONTENT_READER_END_OF_STREAM;
}

static int respond_multipart(req *r, int fd, uint64_t size, const char *ctype, const serve_range *rs,
                             int n, const char *const *headers) {
  multipart *m = cu_xcalloc(1, sizeof *m);
  m->fd = fd;
  m->n = n;
  /* The parts' bytes may contain anything, the boundary included: RFC 9110
   * frames parts by their Content-Range lengths for a reason, and clients
   * (browsers, curl) read them that way. A fresh token still avoids
   * confusing naive tools. */
  static atomic_uint seq;
  char boundary[48];
  snprintf(boundary, sizeof boundary, "custos-%016llx-%08x", (unsigned long long)cu_now_us(),
           atomic_fetch_add(&seq, 1));
  for (int i = 0; i < n; i++) {
    m->r[i] = rs[i];
    m->head[i] = cu_xasprintf("%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                              i ? "\r\n" : "", boundary, ctype, (unsigned long long)rs[i].off,
                              (unsigned long long)(rs[i].off + rs[i].len - 1), (unsigned long long)size);
    m->head_len[i] = strlen(m->head[i]);
    m->total += m->head_len[i] + rs[i].len;
  }
  m->tail_len = (size_t)snprintf(m->tail, sizeof m->tail, "\r\n--%s--\r\n", boundary);
  m->total += m->tail_len;
  struct MHD_Response *resp =
      MHD_create_response_from_callback(m->total, 64 * 1024, multipart_read, m, multipart_free);
  if (!resp) {
    multipart_free(m);
    return respond_error(r, cu_error(CU_EIO, "cannot create a response"), NULL);
  }
  char ct[96];
  snprintf(ct, sizeof ct, "multipart/byteranges; boundary=%s", boundary);
  MHD_add_response_header(resp, "Content-Type", ct);
  return respond_response(r, 206, resp, headers);
}

/* ---- the accessed event ------------------------------------------------- */

static void peer_address(req *r, char *out, size_t n) {
  snprintf(out, n, "unknown");
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr) return;
  const struct sockaddr *sa = ci->client_addr;
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  getnameinfo(sa, len, out, (socklen_t)n, NULL, 0, NI_NUMERICHOST);
}

static int record_access(req *r, const serve_item *it, const serve_range *rs, int n, uint64_t size) {
  json_t *ev = json_object();
  cu_json_set_str(ev, "type", "accessed");
  cu_json_set_str(ev, "evidence", it->evidence_id);
  cu_json_set_str(ev, "rendition", it->what);
  cu_json_set_str(ev, "sha256", it->sha256);
  if (n) {
    cu_buf s = CU_BUF_INIT(1024);
    cu_buf_adds(&s, "bytes=");
    for (int i = 0; i < n; i++)
      cu_buf_printf(&s, "%s%llu-%llu", i ? "," : "", (unsigned long long)rs[i].off,
                    (unsigned long long)(rs[i].off + rs[i].len - 1));
    cu_json_set_str(ev, "range", s.data);
    cu_buf_release(&s);
  } else {
    char all[48];
    snprintf(all, sizeof all, "bytes=0-%lld", (long long)size - 1);
    cu_json_set_str(ev, "range", size ? all : "none");
  }
  char addr[NI_MAXHOST];
  peer_address(r, addr, sizeof addr);
  cu_json_set_str(ev, "address", addr);
  json_object_set_new(ev, "actor", auth_actor(&r->who));
  int rc = ledger_commit(r->a->lg, NULL, &ev, 1, NULL);
  json_decref(ev);
  return rc;
}

/* ---- serving -------------------------------------------------------------- */

int serve_object(req *r, const serve_item *it) {
  int fd = -1;
  uint64_t size = 0;
  int rc = store_open_object(r->a->st, it->sha256, &fd, &size);
  if (rc) return respond_error(r, rc, NULL);
  char etag[70], digest[80], crange[96], disp[(CU_MAX_FILENAME + 64) * 3 + 64];
  snprintf(etag, sizeof etag, "\"%s\"", it->sha256);
  unsigned char raw[32];
  cu_hex_decode(it->sha256, 64, raw, 32);
  cu_buf b64 = CU_BUF_INIT(64);
  cu_b64_encode(raw, 32, &b64);
  snprintf(digest, sizeof digest, "sha-256=:%s:", b64.data);
  cu_buf_release(&b64);
  /* A filename is a label from the client: offered for saving, encoded
   * (RFC 6266/8187) so no byte of it can break the header. */
  size_t dn = (size_t)snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", it->sha256);
  if (it->filename && *it->filename) {
    dn += (size_t)snprintf(disp + dn, sizeof disp - dn, "; filename*=UTF-8''");
    for (const unsigned char *c = (const unsigned char *)it->filename; *c && dn + 4 < sizeof disp; c++) {
      if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          strchr("!#$&+-.^_`|~", *c))
        disp[dn++] = (char)*c;
      else
        dn += (size_t)snprintf(disp + dn, sizeof disp - dn, "%%%02X", *c);
    }
    disp[dn] = '\0';
  }
  const char *h[] = {"ETag", etag, "Repr-Digest", digest, "Accept-Ranges", "bytes",
                     "Content-Type", it->content_type, "Content-Disposition", disp,
                     "Cache-Control", "private, no-transform", "Custos-Rendition", it->what,
                     NULL, NULL, NULL};
  if (serve_etag_matches(req_header(r, "If-None-Match"), etag)) {
    close(fd);
    return respond(r, 304, NULL, "", 0, h);
  }
  serve_range rs[MAX_RANGES];
  int n = 0;
  int pr = serve_parse_ranges(req_header(r, "Range"), size, rs, MAX_RANGES, &n);
  if (pr < 0) {
    close(fd);
    snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)size);
    const char *h416[] = {"Content-Range", crange, NULL};
    return respond_status(r, 416, "range_not_satisfiable", "the requested range is outside the file", h416);
  }
  if (pr > 0) n = 0;
  bool head = !strcmp(r->method, "HEAD");
  if (!head && (rc = record_access(r, it, rs, n, size))) {
    close(fd);
    return respond_error(r, rc, NULL);
  }
  if (n > 1) { /* the parts carry the type; the whole is multipart */
    const char *hm[] = {"ETag", etag, "Repr-Digest", digest, "Accept-Ranges", "bytes",
                        "Content-Disposition", disp, "Cache-Control", "private, no-transform",
                        "Custos-Rendition", it->what, NULL};
    return respond_multipart(r, fd, size, it->content_type, rs, n, hm);
  }
  if (n == 1) {
    snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)rs[0].off,
             (unsigned long long)(rs[0].off + rs[0].len - 1), (unsigned long long)size);
    h[14] = "Content-Range";
    h[15] = crange;
    return respond_fd(r, 206, fd, rs[0].off, rs[0].len, h);
  }
  return respond_fd(r, 200, fd, 0, size, h);
}
