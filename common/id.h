/* Ids: UUIDv7 (RFC 9562), so ids sort by creation time in the index.
 * Text form is the canonical 36-character lowercase form. */
#ifndef CU_ID_H
#define CU_ID_H

#include <stdbool.h>

#define CU_ID_LEN 36

/* Writes a new id and a NUL into out (at least CU_ID_LEN + 1 bytes). */
void cu_id_new(char out[CU_ID_LEN + 1]);
/* True if s is a well-formed lowercase UUID. Client-supplied ids pass this
 * check before they reach the index; they never become paths. */
bool cu_id_valid(const char *s);

/* A client-chosen name (device, officer or case id): 1..CU_MAX_ID_LEN of
 * [A-Za-z0-9._:@-], so it is safe as an index key part and in a URL. */
bool cu_name_valid(const char *s);

#endif
