/* JSON helpers over jansson. Canonical form (sorted keys, no spaces,
 * UTF-8) is what the index stores and what the ledger will hash. */
#ifndef CU_JSON_H
#define CU_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Canonical bytes; the caller frees. Aborts on allocation failure. */
char *cu_json_canon(const json_t *v, size_t *len);
/* Parses at most max bytes; CU_EINVAL with the parser's message otherwise. */
int cu_json_parse(const char *data, size_t len, json_t **out);

/* Accessors that tolerate a missing key or a wrong type. */
const char *cu_json_str(const json_t *obj, const char *key);
int64_t cu_json_int(const json_t *obj, const char *key, int64_t dflt);
bool cu_json_bool(const json_t *obj, const char *key, bool dflt);
/* Sets key to a string if s is non-NULL (copy), else leaves it unset. */
void cu_json_set_str(json_t *obj, const char *key, const char *s);
void cu_json_set_int(json_t *obj, const char *key, int64_t v);
/* Sets key to the RFC 3339 form of us. */
void cu_json_set_time(json_t *obj, const char *key, int64_t us);
/* True if the n bytes are valid UTF-8 without NUL. */
bool cu_utf8_valid(const char *s, size_t n);

#endif
