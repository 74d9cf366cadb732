#include "id.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_limits.h"
#include "hex.h"
#include "timeu.h"
#include "banned.h"

/* Ids from one process are strictly increasing (RFC 9562 §6.2, method 1):
 * rand_a holds a counter that starts at a random value below 2048 in each
 * new millisecond and counts up within it; if it would overflow, the id
 * borrows the next millisecond. Listings ordered by id are then ordered by
 * arrival, even for records made in the same millisecond. */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static unsigned last_seq;

void cu_id_new(char out[CU_ID_LEN + 1]) {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    fprintf(stderr, "custos: no randomness available\n");
    abort();
  }
  uint64_t ms = (uint64_t)(cu_now_us() / 1000);
  pthread_mutex_lock(&id_lock);
  unsigned seq;
  if (ms > last_ms) {
    seq = ((unsigned)b[6] << 8 | b[7]) & 0x7ff;
  } else {
    ms = last_ms;
    seq = last_seq + 1;
    if (seq > 0xfff) {
      ms++;
      seq = ((unsigned)b[6] << 8 | b[7]) & 0x7ff;
    }
  }
  last_ms = ms;
  last_seq = seq;
  pthread_mutex_unlock(&id_lock);
  for (int i = 0; i < 6; i++) b[i] = (unsigned char)(ms >> (40 - 8 * i));
  b[6] = (unsigned char)(0x70 | (seq >> 8));
  b[7] = (unsigned char)(seq & 0xff);
  b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
  char hex[33];
  cu_hex_encode(b, sizeof b, hex);
  snprintf(out, CU_ID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
           hex + 20);
}

bool cu_id_valid(const char *s) {
  if (!s || strlen(s) != CU_ID_LEN) return false;
  for (int i = 0; i < CU_ID_LEN; i++) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

bool cu_name_valid(const char *s) {
  if (!s) return false;
  size_t n = strlen(s);
  if (n == 0 || n > CU_MAX_ID_LEN) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
      return false;
  }
  return true;
}
