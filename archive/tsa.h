/* RFC 3161 time-stamps: the built-in TSA (the embedded default) and the
 * client for an external TSA over HTTP (libcurl).
 *
 * Both answer the same call: tsa_stamp() builds a TimeStampReq for a
 * SHA-256 digest (a random 64-bit nonce, certReq TRUE), gets the
 * TimeStampResp, and checks it against the request (status granted,
 * message imprint, nonce, signature, chain to the trusted CA) before it
 * returns. What is kept as evidence is the whole TimeStampResp DER, so
 * `openssl ts -verify -digest HEX -in token.tsr -CAfile root.pem` reads
 * it as it is.
 *
 * The built-in TSA's keys live in keys_dir (private keys 0600, PKCS#8
 * PEM; certificates 0644; the directory 0700), made on first start: an
 * ECDSA P-256 root (tsa-root.pem / tsa-root.key) and a TSA certificate
 * signed by it (tsa.pem / tsa.key) with extendedKeyUsage timeStamping,
 * critical, both valid 30 years. tsa-root.pem is written last: without it
 * the set is made anew; with it, the rest must be there and match. The
 * root's private key is not read after creation (it may be moved
 * offline). Serial numbers are 128-bit UUIDv7 values, unique per TSA key
 * without a counter; genTime has whole seconds, accuracy 1 s.
 *
 * Errors: CU_EIO when the TSA cannot be reached or its HTTP answer is not
 * a time-stamp reply (status other than 200, another Content-Type, more
 * than 64 KiB, a timeout); CU_ECORRUPT for everything about the reply's
 * content (a rejection, with its PKIStatus and failInfo; a wrong imprint,
 * nonce, signature or chain). OpenSSL's own reasons follow ours in the
 * message. */
#ifndef TSA_H
#define TSA_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct tsa tsa;

/* Loads the built-in TSA from keys_dir, creating its root and TSA
 * certificate there if they do not exist yet. Thread-safe once open. */
int tsa_open_builtin(tsa **out, const char *keys_dir);
/* An external TSA at url (http:// or https://), whose tokens must chain to
 * a certificate in ca_file (PEM; intermediates may follow the root).
 * timeout_s bounds each request (connect and transfer). */
int tsa_open_external(tsa **out, const char *url, const char *ca_file, int timeout_s);
void tsa_free(tsa *t);

/* The PEM of the CA that this TSA's tokens chain to (the built-in root, or
 * ca_file's contents); caller releases out. */
int tsa_ca_pem(tsa *t, cu_buf *out);

typedef struct {
  int64_t gen_time_us; /* TSTInfo genTime */
  char serial[80];     /* TSTInfo serialNumber, lower-case hex */
  char policy[80];     /* TSTInfo policy OID, dotted */
} tsa_info;

/* Time-stamps digest. On success resp (reset first) holds the
 * TimeStampResp DER, which has been verified against the CA as of now, and
 * info (may be NULL) its facts. CU_EIO when the TSA cannot be reached or
 * answers with an HTTP error; CU_ECORRUPT when its answer does not verify
 * (wrong imprint, nonce, signature, chain) or is a rejection; both with a
 * message saying which. Several threads may call it at once. */
int tsa_stamp(tsa *t, const unsigned char digest[32], cu_buf *resp, tsa_info *info);

/* Checks a stored TimeStampResp (or a bare token: ContentInfo DER) for
 * digest against the CA certificates in ca_pem (PEM text, several
 * allowed): status granted, imprint = digest, signature and chain, checked
 * at genTime so an expired TSA certificate does not void an old token.
 * Usable offline (custos verify). info may be NULL. CU_ECORRUPT with the
 * reason otherwise; CU_EINVAL if ca_pem holds no certificate. */
int tsa_verify(const void *der, size_t n, const unsigned char digest[32], const char *ca_pem,
               size_t ca_len, tsa_info *info);

#endif
