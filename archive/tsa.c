#include "tsa.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ossl_err.h"
#include "err.h"
#include "fsutil.h"
#include "id.h"
#include "log.h"
#include "banned.h"

/* The built-in TSA's policy. A policy OID is mandatory in every TSTInfo;
 * 2.25 is the arc for OIDs made from a UUID (ITU-T X.667), so this one is
 * ours without registering anything. Never change it: old tokens name it. */
#define TSA_POLICY_OID "2.25.163486473582394625390622719876512357801"

/* A TimeStampResp is a few KiB (a signature and two certificates); a TSA
 * that sends more is not answering the question we asked. */
#define TSA_MAX_REPLY (64 * 1024)
/* CA bundles: a root and a few intermediates, or a system bundle. */
#define TSA_MAX_CA_FILE (4 * 1024 * 1024)

#define TSA_ROOT_CN "Custos built-in TSA root"
#define TSA_CN "Custos built-in TSA"
/* 30 years, counting the leap days in any 30-year span. */
#define TSA_VALIDITY_DAYS (30 * 365 + 8)

struct tsa {
  bool builtin;
  char *name; /* "the built-in TSA" / "the TSA at URL", for messages */
  char *ca_pem;
  size_t ca_len;
  /* built-in */
  X509 *signer;
  EVP_PKEY *key;
  STACK_OF(X509) * chain; /* the root, sent along when certReq is set */
  ASN1_OBJECT *policy;
  /* external */
  char *url;
  long timeout_s;
};

/* Text that came from a TSA goes into our messages and logs: printable
 * ASCII only. */
static void clean_text(char *dst, size_t cap, const unsigned char *src, int n) {
  size_t k = 0;
  for (int i = 0; i < n && k + 1 < cap; i++)
    dst[k++] = src[i] >= 0x20 && src[i] < 0x7f && src[i] != '"' ? (char)src[i] : '?';
  dst[k] = '\0';
}

/* ---- certificates and keys ---------------------------------------------- */

/* Every certificate in a PEM text, as a verification store. Fails on text
 * with none, or with a damaged one among them. */
static int pem_store(const char *pem, size_t len, X509_STORE **out) {
  if (len > INT_MAX) return cu_error(CU_ETOOBIG, "the CA PEM is larger than 2 GiB");
  BIO *b = BIO_new_mem_buf(pem, (int)len);
  X509_STORE *st = X509_STORE_new();
  int rc = 0, n = 0;
  X509 *x;
  if (!b || !st) {
    rc = ossl_fail(CU_EIO, "cannot allocate a certificate store");
    goto done;
  }
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    int ok = X509_STORE_add_cert(st, x);
    X509_free(x);
    if (!ok) {
      rc = ossl_fail(CU_EIO, "cannot add CA certificate %d to the store", n + 1);
      goto done;
    }
    n++;
  }
  /* The loop ends on an error either way; only "no more PEM" is clean. */
  unsigned long e = ERR_peek_last_error();
  if (n == 0 || ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
    rc = n == 0 ? ossl_fail(CU_EINVAL, "the CA PEM holds no certificate")
                : ossl_fail(CU_EINVAL, "the CA PEM is damaged after certificate %d", n);
    goto done;
  }
  ERR_clear_error();
  *out = st;
  st = NULL;
done:
  X509_STORE_free(st);
  BIO_free(b);
  return rc;
}

static int no_password(char *buf, int size, int rwflag, void *u) {
  return -1;
}

static int read_cert(const char *path, X509 **out, cu_buf *pem) {
  cu_buf own = CU_BUF_INIT(TSA_MAX_CA_FILE);
  cu_buf *b = pem ? pem : &own;
  int rc = cu_read_small_file(path, b->max, b);
  if (rc) goto done;
  BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
  *out = bio ? PEM_read_bio_X509(bio, NULL, no_password, NULL) : NULL;
  BIO_free(bio);
  if (!*out) rc = ossl_fail(CU_ECORRUPT, "%s does not hold a PEM certificate", path);
done:
  cu_buf_release(&own);
  return rc;
}

static int read_key(const char *path, EVP_PKEY **out) {
  /* Straight from the file, so the key's PEM is not left in our buffers. */
  FILE *fp = fopen(path, "re");
  if (!fp) return cu_error_errno(cu_errno_code(errno), errno, "cannot open %s", path);
  struct stat sb;
  if (fstat(fileno(fp), &sb) == 0 && (sb.st_mode & 077))
    cu_warn("%s can be read by other users (mode %03o); it should be 0600", path,
            (unsigned)(sb.st_mode & 0777));
  *out = PEM_read_PrivateKey(fp, NULL, no_password, NULL);
  fclose(fp);
  if (!*out) return ossl_fail(CU_ECORRUPT, "%s does not hold a PEM private key", path);
  return 0;
}

static int pem_to_file(const char *path, X509 *cert, EVP_PKEY *key) {
  /* A secure-memory BIO wipes the key's PEM when freed. */
  BIO *b = BIO_new(key ? BIO_s_secmem() : BIO_s_mem());
  int ok = b && (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                     : PEM_write_bio_X509(b, cert));
  if (!ok) {
    BIO_free(b);
    return ossl_fail(CU_EIO, "cannot encode %s", path);
  }
  char *p;
  long n = BIO_get_mem_data(b, &p);
  int rc = cu_write_file_durable(path, p, (size_t)n, key ? 0600 : 0644, 0);
  BIO_free(b);
  return rc;
}

typedef struct {
  int nid;
  const char *value;
} ext_spec;

static const ext_spec root_exts[] = {
    {NID_basic_constraints, "critical,CA:TRUE"},
    {NID_key_usage, "critical,keyCertSign,cRLSign"},
    {NID_subject_key_identifier, "hash"},
    {0, NULL},
};

/* What OpenSSL's TS code demands of a signer (check_purpose_timestamp_sign):
 * exactly the timeStamping EKU, critical; key usage limited to signing. */
static const ext_spec tsa_exts[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature,nonRepudiation"},
    {NID_ext_key_usage, "critical,timeStamping"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid:always"},
    {0, NULL},
};

/* A certificate for key, issued by issuer (NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const ext_spec *exts, X509 *issuer,
                       EVP_PKEY *issuer_key) {
  X509 *x = X509_new();
  BIGNUM *bn = BN_new();
  bool ok = x && bn && X509_set_version(x, X509_VERSION_3) &&
            BN_rand(bn, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
            BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
            /* An hour back, so a clock stepped back a little after the first
             * start does not put genTime before notBefore. */
            X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
            X509_time_adj_ex(X509_getm_notAfter(x), TSA_VALIDITY_DAYS, 0, NULL) &&
            X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                       (const unsigned char *)cn, -1, -1, 0) &&
            X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)) &&
            X509_set_pubkey(x, key);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
  for (const ext_spec *s = exts; ok && s->nid; s++) {
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, s->nid, s->value);
    ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  ok = ok && X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0;
  BN_free(bn);
  if (!ok) {
    X509_free(x);
    return NULL;
  }
  return x;
}

typedef struct {
  char *root_pem, *root_key, *tsa_pem, *tsa_key;
} key_paths;

/* The root's certificate is written last: its presence says the set is
 * complete, and without it whatever a crash left behind is made anew. */
static int create_keys(const key_paths *kp) {
  EVP_PKEY *rkey = EVP_EC_gen("P-256"), *tkey = EVP_EC_gen("P-256");
  X509 *root = NULL, *cert = NULL;
  int rc = 0;
  if (!rkey || !tkey) {
    rc = ossl_fail(CU_EIO, "cannot generate the built-in TSA's keys");
    goto done;
  }
  root = make_cert(rkey, TSA_ROOT_CN, root_exts, NULL, NULL);
  cert = root ? make_cert(tkey, TSA_CN, tsa_exts, root, rkey) : NULL;
  if (!cert) {
    rc = ossl_fail(CU_EIO, "cannot make the built-in TSA's certificates");
    goto done;
  }
  if ((rc = pem_to_file(kp->tsa_key, NULL, tkey)) || (rc = pem_to_file(kp->tsa_pem, cert, NULL)) ||
      (rc = pem_to_file(kp->root_key, NULL, rkey)) || (rc = pem_to_file(kp->root_pem, root, NULL)))
    goto done;
  cu_info("created the built-in TSA's root and signing certificate in %s", kp->root_pem);
done:
  X509_free(root);
  X509_free(cert);
  EVP_PKEY_free(rkey);
  EVP_PKEY_free(tkey);
  return rc;
}

/* The root's private key is not read: it is needed only to make the set,
 * and an operator may move it offline. */
static int load_keys(tsa *t, const key_paths *kp) {
  cu_buf pem = CU_BUF_INIT(TSA_MAX_CA_FILE);
  X509 *root = NULL;
  int rc = read_cert(kp->root_pem, &root, &pem);
  if (!rc) rc = read_cert(kp->tsa_pem, &t->signer, NULL);
  if (!rc) rc = read_key(kp->tsa_key, &t->key);
  if (rc) goto done;
  if (X509_verify(t->signer, X509_get0_pubkey(root)) != 1) {
    rc = ossl_fail(CU_ECORRUPT, "%s is not signed by %s", kp->tsa_pem, kp->root_pem);
  } else if (X509_check_private_key(t->signer, t->key) != 1) {
    rc = ossl_fail(CU_ECORRUPT, "%s is not the key of %s", kp->tsa_key, kp->tsa_pem);
  } else if (X509_check_purpose(t->signer, X509_PURPOSE_TIMESTAMP_SIGN, 0) != 1) {
    /* Also fills the certificate's extension cache now, not under load. */
    rc = ossl_fail(CU_ECORRUPT,
                   "%s is not a time-stamping certificate (extendedKeyUsage must be "
                   "timeStamping alone, critical)",
                   kp->tsa_pem);
  } else if (!(t->chain = sk_X509_new_null()) || !sk_X509_push(t->chain, root)) {
    rc = ossl_fail(CU_EIO, "cannot allocate the certificate chain");
  } else {
    root = NULL; /* the chain has it */
    t->policy = OBJ_txt2obj(TSA_POLICY_OID, 1);
    if (!t->policy) rc = ossl_fail(CU_EIO, "cannot encode the TSA policy OID");
  }
  if (!rc) t->ca_pem = cu_buf_detach(&pem, &t->ca_len);
done:
  X509_free(root);
  cu_buf_release(&pem);
  return rc;
}

int tsa_open_builtin(tsa **out, const char *keys_dir) {
  ERR_clear_error();
  key_paths kp = {cu_path_join(keys_dir, "tsa-root.pem"), cu_path_join(keys_dir, "tsa-root.key"),
                  cu_path_join(keys_dir, "tsa.pem"), cu_path_join(keys_dir, "tsa.key")};
  tsa *t = cu_xcalloc(1, sizeof *t);
  t->builtin = true;
  t->name = cu_xstrdup("the built-in TSA");
  int dfd = -1, rc = cu_mkdirs(keys_dir, 0700);
  if (rc) goto done;
  dfd = open(keys_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  /* Two processes starting at once must not each make half a set. */
  if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
    rc = cu_error_errno(CU_EIO, errno, "cannot lock the TSA keys directory %s", keys_dir);
    goto done;
  }
  if (access(kp.root_pem, F_OK) < 0) {
    if (errno != ENOENT) {
      rc = cu_error_errno(CU_EIO, errno, "cannot check %s", kp.root_pem);
      goto done;
    }
    if ((rc = create_keys(&kp))) goto done;
  }
  rc = load_keys(t, &kp);
done:
  if (dfd >= 0) close(dfd); /* releases the lock */
  free(kp.root_pem);
  free(kp.root_key);
  free(kp.tsa_pem);
  free(kp.tsa_key);
  if (rc) {
    tsa_free(t);
    return cu_error_wrap(rc, "cannot open the built-in TSA in %s", keys_dir);
  }
  *out = t;
  return 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
/* Never cleaned up: it lives as long as the process, and a cleanup here
 * would pull the ground from under other users of libcurl. */
static void curl_init(void) {
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The URL for messages, without any user:password in it. */
static int parse_url(const char *url, char **display) {
  CURLU *u = curl_url();
  char *scheme = NULL, *shown = NULL;
  int rc = 0;
  if (!u) return cu_error(CU_EIO, "cannot allocate a URL");
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
    rc = cu_error(CU_EINVAL, "the TSA URL must be an http:// or https:// URL");
    goto done;
  }
  curl_url_set(u, CURLUPART_USER, NULL, 0);
  curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
  if (curl_url_get(u, CURLUPART_URL, &shown, 0) != CURLUE_OK) {
    rc = cu_error(CU_EINVAL, "the TSA URL cannot be parsed");
    goto done;
  }
  *display = cu_xstrdup(shown);
done:
  curl_free(scheme);
  curl_free(shown);
  curl_url_cleanup(u);
  return rc;
}

int tsa_open_external(tsa **out, const char *url, const char *ca_file, int timeout_s) {
  ERR_clear_error();
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK) return cu_error(CU_EIO, "cannot initialise libcurl");
  if (timeout_s < 1) return cu_error(CU_EINVAL, "the TSA timeout must be at least 1 second");
  char *shown = NULL;
  int rc = parse_url(url, &shown);
  if (rc) return rc;
  tsa *t = cu_xcalloc(1, sizeof *t);
  t->url = cu_xstrdup(url);
  t->name = cu_xasprintf("the TSA at %s", shown);
  t->timeout_s = timeout_s;
  free(shown);
  cu_buf pem = CU_BUF_INIT(TSA_MAX_CA_FILE);
  X509_STORE *st = NULL;
  if ((rc = cu_read_small_file(ca_file, pem.max, &pem)) ||
      (rc = pem_store(pem.data, pem.len, &st))) {
    rc = cu_error_wrap(rc, "the CA file %s for %s", ca_file, t->name);
    cu_buf_release(&pem);
    tsa_free(t);
    return rc;
  }
  X509_STORE_free(st);
  t->ca_pem = cu_buf_detach(&pem, &t->ca_len);
  *out = t;
  return 0;
}

void tsa_free(tsa *t) {
  if (!t) return;
  free(t->name);
  free(t->ca_pem);
  X509_free(t->signer);
  EVP_PKEY_free(t->key);
  sk_X509_pop_free(t->chain, X509_free);
  ASN1_OBJECT_free(t->policy);
  free(t->url);
  free(t);
}

int tsa_ca_pem(tsa *t, cu_buf *out) {
  cu_buf_reset(out);
  return cu_buf_add(out, t->ca_pem, t->ca_len);
}

/* ---- the request and the answer ----------------------------------------- */

static int make_request(const unsigned char digest[32], TS_REQ **out, unsigned char **der,
                        int *der_len) {
  TS_REQ *req = TS_REQ_new();
  X509_ALGOR *alg = X509_ALGOR_new();
  TS_MSG_IMPRINT *mi = TS_MSG_IMPRINT_new();
  BIGNUM *bn = BN_new();
  ASN1_INTEGER *nonce = NULL;
  unsigned char copy[32];
  memcpy(copy, digest, sizeof copy); /* set_msg takes a non-const pointer */
  bool ok = req && alg && mi && bn &&
            X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) &&
            TS_MSG_IMPRINT_set_algo(mi, alg) && TS_MSG_IMPRINT_set_msg(mi, copy, 32) &&
            TS_REQ_set_version(req, 1) && TS_REQ_set_msg_imprint(req, mi) &&
            BN_rand(bn, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
            (nonce = BN_to_ASN1_INTEGER(bn, NULL)) && TS_REQ_set_nonce(req, nonce) &&
            TS_REQ_set_cert_req(req, 1);
  *der = NULL;
  if (ok) *der_len = i2d_TS_REQ(req, der);
  ok = ok && *der_len > 0;
  X509_ALGOR_free(alg);
  TS_MSG_IMPRINT_free(mi);
  BN_free(bn);
  ASN1_INTEGER_free(nonce);
  if (!ok) {
    TS_REQ_free(req);
    return ossl_fail(CU_EIO, "cannot build the time-stamp request");
  }
  *out = req;
  return 0;
}

/* TSTInfo serial numbers: a fresh UUIDv7, unique per key without a counter
 * to keep. (OpenSSL's default callback answers 1 for every token.) */
static ASN1_INTEGER *uuid_serial(TS_RESP_CTX *rc, void *data) {
  char id[CU_ID_LEN + 1], hex[33];
  cu_id_new(id);
  size_t k = 0;
  for (const char *p = id; *p && k < 32; p++)
    if (*p != '-') hex[k++] = *p;
  hex[k] = '\0';
  BIGNUM *bn = NULL;
  ASN1_INTEGER *serial = NULL;
  if (BN_hex2bn(&bn, hex) == 32) serial = BN_to_ASN1_INTEGER(bn, NULL);
  BN_free(bn);
  if (!serial) {
    TS_RESP_CTX_set_status_info(rc, TS_STATUS_REJECTION, "Error during serial number generation.");
    TS_RESP_CTX_add_failure_info(rc, TS_INFO_ADD_INFO_NOT_AVAILABLE);
  }
  return serial;
}

/* The request goes in as DER, as a remote client's would, and the answer
 * comes out as DER, to be checked like any external TSA's. A context per
 * call: TS_RESP_create_response keeps per-request state in it. */
static int sign_builtin(tsa *t, const unsigned char *qder, int qlen, cu_buf *ans) {
  TS_RESP_CTX *rc = TS_RESP_CTX_new();
  BIO *in = NULL;
  TS_RESP *resp = NULL;
  unsigned char *der = NULL;
  int rv = 0;
  bool ok = rc && TS_RESP_CTX_set_signer_cert(rc, t->signer) &&
            TS_RESP_CTX_set_signer_key(rc, t->key) &&
            TS_RESP_CTX_set_signer_digest(rc, EVP_sha256()) &&
            /* SigningCertificateV2 (RFC 5816), not the SHA-1 ESSCertID. */
            TS_RESP_CTX_set_ess_cert_id_digest(rc, EVP_sha256()) &&
            TS_RESP_CTX_set_certs(rc, t->chain) && TS_RESP_CTX_set_def_policy(rc, t->policy) &&
            TS_RESP_CTX_add_md(rc, EVP_sha256()) && TS_RESP_CTX_add_md(rc, EVP_sha384()) &&
            TS_RESP_CTX_add_md(rc, EVP_sha512()) && TS_RESP_CTX_set_accuracy(rc, 1, 0, 0);
  if (!ok) {
    rv = ossl_fail(CU_EIO, "cannot set up the built-in TSA");
    goto done;
  }
  /* No TS_ORDERING: we make no promise about the order of tokens beyond
   * what genTime says. */
  TS_RESP_CTX_add_flags(rc, TS_TSA_NAME);
  TS_RESP_CTX_set_serial_cb(rc, uuid_serial, NULL);
  if (!(in = BIO_new_mem_buf(qder, qlen)) || !(resp = TS_RESP_create_response(rc, in))) {
    rv = ossl_fail(CU_EIO, "the built-in TSA cannot answer");
    goto done;
  }
  int n = i2d_TS_RESP(resp, &der);
  if (n <= 0) {
    rv = ossl_fail(CU_EIO, "cannot encode the built-in TSA's answer");
    goto done;
  }
  rv = cu_buf_add(ans, der, (size_t)n);
done:
  OPENSSL_free(der);
  TS_RESP_free(resp);
  BIO_free(in);
  TS_RESP_CTX_free(rc);
  return rv;
}

typedef struct {
  cu_buf *b;
  bool too_big;
} sink;

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  sink *s = ud;
  size_t n = size * nmemb;
  if (cu_buf_add(s->b, p, n)) {
    s->too_big = true;
    return 0;
  }
  return n;
}

/* "application/timestamp-reply", parameters allowed. */
static bool is_reply_type(const char *ct) {
  static const char want[] = "application/timestamp-reply";
  if (!ct || strncasecmp(ct, want, sizeof want - 1)) return false;
  char c = ct[sizeof want - 1];
  return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

static int post_request(tsa *t, const unsigned char *qder, int qlen, cu_buf *ans) {
  CURL *h = curl_easy_init();
  struct curl_slist *hdrs = NULL, *more;
  char errbuf[CURL_ERROR_SIZE] = "";
  sink s = {ans, false};
  int rc = 0;
  if (!h || !(hdrs = curl_slist_append(NULL, "Content-Type: application/timestamp-query")) ||
      !(more = curl_slist_append(hdrs, "Accept: application/timestamp-reply"))) {
    rc = cu_error(CU_EIO, "cannot set up a request to %s", t->name);
    goto done;
  }
  hdrs = more;
  curl_easy_setopt(h, CURLOPT_URL, t->url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, qder);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)qlen);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, t->timeout_s);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, t->timeout_s);
  /* Timeouts by signal are not safe with several job threads calling. */
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "custos");
  CURLcode cc = curl_easy_perform(h);
  long status = 0;
  char *ct = NULL;
  if (s.too_big) {
    rc = cu_error(CU_EIO, "%s answered with more than %d KiB", t->name, TSA_MAX_REPLY / 1024);
  } else if (cc != CURLE_OK) {
    rc =
        cu_error(CU_EIO, "cannot reach %s: %s", t->name, *errbuf ? errbuf : curl_easy_strerror(cc));
  } else if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200) {
    rc = cu_error(CU_EIO, "%s answered HTTP %ld", t->name, status);
  } else if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK || !is_reply_type(ct)) {
    char shown[80];
    clean_text(shown, sizeof shown, (const unsigned char *)(ct ? ct : "(none)"),
               (int)strlen(ct ? ct : "(none)"));
    rc = cu_error(CU_EIO, "%s answered with Content-Type %s, not application/timestamp-reply",
                  t->name, shown);
  }
done:
  curl_slist_free_all(hdrs);
  if (h) curl_easy_cleanup(h);
  return rc;
}

static const char *const status_names[] = {
    "granted", "grantedWithMods",   "rejection",
    "waiting", "revocationWarning", "revocationNotification",
};

static const struct {
  int bit;
  const char *name;
} fail_names[] = {
    {TS_INFO_BAD_ALG, "badAlg"},
    {TS_INFO_BAD_REQUEST, "badRequest"},
    {TS_INFO_BAD_DATA_FORMAT, "badDataFormat"},
    {TS_INFO_TIME_NOT_AVAILABLE, "timeNotAvailable"},
    {TS_INFO_UNACCEPTED_POLICY, "unacceptedPolicy"},
    {TS_INFO_UNACCEPTED_EXTENSION, "unacceptedExtension"},
    {TS_INFO_ADD_INFO_NOT_AVAILABLE, "addInfoNotAvailable"},
    {TS_INFO_SYSTEM_FAILURE, "systemFailure"},
};

/* Granted (with or without modifications) and a token, or a message that
 * says what the TSA said instead. */
static int check_status(TS_RESP *resp, const char *who) {
  TS_STATUS_INFO *si = TS_RESP_get_status_info(resp);
  long st = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(si));
  if ((st == TS_STATUS_GRANTED || st == TS_STATUS_GRANTED_WITH_MODS) && TS_RESP_get_token(resp) &&
      TS_RESP_get_tst_info(resp))
    return 0;
  if (st == TS_STATUS_GRANTED || st == TS_STATUS_GRANTED_WITH_MODS)
    return cu_error(CU_ECORRUPT, "%s granted the request but sent no token", who);
  char fails[256] = "", text[256] = "";
  size_t at = 0;
  const ASN1_BIT_STRING *fi = TS_STATUS_INFO_get0_failure_info(si);
  for (size_t i = 0; fi && i < sizeof fail_names / sizeof fail_names[0]; i++) {
    if (!ASN1_BIT_STRING_get_bit(fi, fail_names[i].bit)) continue;
    int n = snprintf(fails + at, sizeof fails - at, "%s%s", at ? "," : ", failInfo ",
                     fail_names[i].name);
    if (n > 0 && (size_t)n < sizeof fails - at) at += (size_t)n;
  }
  const STACK_OF(ASN1_UTF8STRING) *texts = TS_STATUS_INFO_get0_text(si);
  if (sk_ASN1_UTF8STRING_num(texts) > 0) {
    const ASN1_UTF8STRING *s0 = sk_ASN1_UTF8STRING_value(texts, 0);
    char clean[200];
    clean_text(clean, sizeof clean, ASN1_STRING_get0_data(s0), ASN1_STRING_length(s0));
    snprintf(text, sizeof text, ", text \"%s\"", clean);
  }
  const char *name = st >= 0 && st <= 5 ? status_names[st] : "unknown";
  ERR_clear_error();
  return cu_error(CU_ECORRUPT, "%s rejected the request: status %ld (%s)%s%s", who, st, name, fails,
                  text);
}

static bool imprint_is(TS_TST_INFO *tst, const unsigned char digest[32]) {
  TS_MSG_IMPRINT *mi = TS_TST_INFO_get_msg_imprint(tst);
  X509_ALGOR *alg = mi ? TS_MSG_IMPRINT_get_algo(mi) : NULL;
  ASN1_OCTET_STRING *msg = mi ? TS_MSG_IMPRINT_get_msg(mi) : NULL;
  const ASN1_OBJECT *oid = NULL;
  if (alg) X509_ALGOR_get0(&oid, NULL, NULL, alg);
  return oid && OBJ_obj2nid(oid) == NID_sha256 && msg && ASN1_STRING_length(msg) == 32 &&
         !memcmp(ASN1_STRING_get0_data(msg), digest, 32);
}

/* GeneralizedTime, with its optional fraction, as µs since the epoch. */
static bool gentime_us(const ASN1_GENERALIZEDTIME *g, int64_t *out) {
  struct tm tm;
  if (!g || ASN1_STRING_type(g) != V_ASN1_GENERALIZEDTIME || !ASN1_TIME_to_tm(g, &tm)) return false;
  int64_t us = (int64_t)timegm(&tm) * 1000000;
  const unsigned char *d = ASN1_STRING_get0_data(g);
  int len = ASN1_STRING_length(g);
  if (len > 15 && d[14] == '.') {
    int64_t scale = 100000; /* digits past the sixth are below 1 µs */
    for (int i = 15; i < len && isdigit(d[i]); i++, scale /= 10)
      us += (d[i] - '0') * scale;
  }
  *out = us;
  return true;
}

static int token_info(TS_TST_INFO *tst, tsa_info *info) {
  memset(info, 0, sizeof *info);
  if (!gentime_us(TS_TST_INFO_get_time(tst), &info->gen_time_us))
    return ossl_fail(CU_ECORRUPT, "the token's genTime cannot be read");
  BIGNUM *bn = ASN1_INTEGER_to_BN(TS_TST_INFO_get_serial(tst), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  BN_free(bn);
  int rc = 0;
  if (!hex || strlen(hex) >= sizeof info->serial) {
    rc = ossl_fail(CU_ECORRUPT, "the token's serial number is missing or too long");
  } else {
    for (size_t i = 0; hex[i]; i++)
      info->serial[i] = (char)tolower((unsigned char)hex[i]);
    int n = OBJ_obj2txt(info->policy, sizeof info->policy, TS_TST_INFO_get_policy_id(tst), 1);
    if (n <= 0 || (size_t)n >= sizeof info->policy)
      rc = ossl_fail(CU_ECORRUPT, "the token's policy OID is missing or too long");
  }
  OPENSSL_free(hex);
  return rc;
}

/* The token's own certificates, as the untrusted ones to build the chain
 * from; a copy, as the verify context frees what it is given. */
static STACK_OF(X509) * token_certs(PKCS7 *token) {
  if (!PKCS7_type_is_signed(token) || !token->d.sign || !token->d.sign->cert)
    return sk_X509_new_null();
  return X509_chain_up_ref(token->d.sign->cert);
}

/* Checks an answer to our own request: everything that request asked for,
 * the signature, and the chain to the CA as of now. */
static int check_fresh(tsa *t, TS_REQ *req, const unsigned char digest[32], const cu_buf *ans,
                       tsa_info *info) {
  const unsigned char *p = (const unsigned char *)ans->data;
  TS_RESP *resp = d2i_TS_RESP(NULL, &p, (long)ans->len);
  TS_VERIFY_CTX *vc = NULL;
  X509_STORE *st = NULL;
  STACK_OF(X509) *untrusted = NULL;
  int rc = 0;
  if (!resp || p != (const unsigned char *)ans->data + ans->len) {
    rc = ossl_fail(CU_ECORRUPT, "%s answered with something that is not a TimeStampResp", t->name);
    goto done;
  }
  if ((rc = check_status(resp, t->name))) goto done;
  TS_TST_INFO *tst = TS_RESP_get_tst_info(resp);
  const ASN1_INTEGER *sent = TS_REQ_get_nonce(req), *got = TS_TST_INFO_get_nonce(tst);
  if (!imprint_is(tst, digest)) {
    rc = cu_error(CU_ECORRUPT, "the token from %s does not match the digest we sent", t->name);
    goto done;
  }
  if (!got || ASN1_INTEGER_cmp(sent, got)) {
    rc = cu_error(CU_ECORRUPT, "the token from %s does not carry the nonce we sent", t->name);
    goto done;
  }
  if ((rc = pem_store(t->ca_pem, t->ca_len, &st))) goto done;
  if (!(vc = TS_REQ_to_TS_VERIFY_CTX(req, NULL)) ||
      !(untrusted = token_certs(TS_RESP_get_token(resp)))) {
    rc = ossl_fail(CU_EIO, "cannot set up the verification of a time-stamp");
    goto done;
  }
  /* TS_REQ_to_TS_VERIFY_CTX leaves the signature check off. */
  TS_VERIFY_CTX_add_flags(vc, TS_VFY_SIGNATURE);
  TS_VERIFY_CTX_set_store(vc, st);
  st = NULL;
  TS_VERIFY_CTX_set_certs(vc, untrusted);
  untrusted = NULL;
  if (TS_RESP_verify_response(vc, resp) != 1) {
    rc = ossl_fail(CU_ECORRUPT, "the token from %s does not verify", t->name);
    goto done;
  }
  rc = token_info(tst, info);
done:
  sk_X509_pop_free(untrusted, X509_free);
  X509_STORE_free(st);
  TS_VERIFY_CTX_free(vc);
  TS_RESP_free(resp);
  return rc;
}

int tsa_stamp(tsa *t, const unsigned char digest[32], cu_buf *resp, tsa_info *info) {
  ERR_clear_error();
  TS_REQ *req = NULL;
  unsigned char *qder = NULL;
  int qlen = 0;
  cu_buf ans = CU_BUF_INIT(TSA_MAX_REPLY);
  tsa_info local;
  int rc = make_request(digest, &req, &qder, &qlen);
  if (rc) goto done;
  rc = t->builtin ? sign_builtin(t, qder, qlen, &ans) : post_request(t, qder, qlen, &ans);
  if (!rc) rc = check_fresh(t, req, digest, &ans, info ? info : &local);
  if (!rc) {
    cu_buf_reset(resp);
    rc = cu_buf_add(resp, ans.data, ans.len);
  }
done:
  cu_buf_release(&ans);
  OPENSSL_free(qder);
  TS_REQ_free(req);
  return rc;
}

int tsa_verify(const void *der, size_t n, const unsigned char digest[32], const char *ca_pem,
               size_t ca_len, tsa_info *info) {
  ERR_clear_error();
  const unsigned char *start = der, *end = start + n, *p = start;
  TS_RESP *resp = NULL;
  PKCS7 *own_token = NULL, *token = NULL;
  TS_TST_INFO *own_tst = NULL, *tst = NULL;
  TS_VERIFY_CTX *vc = NULL;
  X509_STORE *st = NULL;
  STACK_OF(X509) *untrusted = NULL;
  unsigned char *imprint = NULL;
  tsa_info local;
  int64_t gen_us;
  int rc = 0;
  if (!der || n == 0 || n > LONG_MAX) {
    rc = cu_error(CU_ECORRUPT, "the time-stamp is empty or too large");
    goto done;
  }
  /* A whole TimeStampResp, or the bare token inside one. */
  resp = d2i_TS_RESP(NULL, &p, (long)n);
  if (resp && p == end) {
    if ((rc = check_status(resp, "the TSA"))) goto done;
    token = TS_RESP_get_token(resp);
    tst = TS_RESP_get_tst_info(resp);
  } else {
    TS_RESP_free(resp);
    resp = NULL;
    ERR_clear_error();
    p = start;
    own_token = d2i_PKCS7(NULL, &p, (long)n);
    if (!own_token || p != end) {
      rc = ossl_fail(CU_ECORRUPT, "the time-stamp is neither a TimeStampResp nor a token");
      goto done;
    }
    if (!(own_tst = PKCS7_to_TS_TST_INFO(own_token))) {
      rc = ossl_fail(CU_ECORRUPT, "the time-stamp token holds no TSTInfo");
      goto done;
    }
    token = own_token;
    tst = own_tst;
  }
  if (!imprint_is(tst, digest)) {
    rc = cu_error(CU_ECORRUPT, "the time-stamp token is for a different digest");
    goto done;
  }
  if (!gentime_us(TS_TST_INFO_get_time(tst), &gen_us)) {
    rc = ossl_fail(CU_ECORRUPT, "the time-stamp token's genTime cannot be read");
    goto done;
  }
  if ((rc = pem_store(ca_pem, ca_len, &st))) goto done;
  /* Checked as of genTime: the signature was made then, and a TSA
   * certificate that has expired since does not undo it. */
  X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(st), (time_t)(gen_us / 1000000));
  if (!(vc = TS_VERIFY_CTX_new()) || !(imprint = OPENSSL_memdup(digest, 32)) ||
      !(untrusted = token_certs(token))) {
    rc = ossl_fail(CU_EIO, "cannot set up the verification of a time-stamp");
    goto done;
  }
  TS_VERIFY_CTX_set_flags(vc, TS_VFY_VERSION | TS_VFY_SIGNER | TS_VFY_SIGNATURE | TS_VFY_IMPRINT);
  /* The context owns (and frees) all three from here. */
  TS_VERIFY_CTX_set_imprint(vc, imprint, 32);
  imprint = NULL;
  TS_VERIFY_CTX_set_store(vc, st);
  st = NULL;
  TS_VERIFY_CTX_set_certs(vc, untrusted);
  untrusted = NULL;
  if (TS_RESP_verify_token(vc, token) != 1) {
    rc = ossl_fail(CU_ECORRUPT, "the time-stamp token does not verify");
    goto done;
  }
  rc = token_info(tst, info ? info : &local);
done:
  OPENSSL_free(imprint);
  sk_X509_pop_free(untrusted, X509_free);
  X509_STORE_free(st);
  TS_VERIFY_CTX_free(vc);
  TS_TST_INFO_free(own_tst);
  PKCS7_free(own_token);
  TS_RESP_free(resp);
  return rc;
}
