/* What every media operation shares: a caller's control block (deadline,
 * cancel, progress) and the error convention.
 *
 * Errors: 0 on success; two verdicts on the input, where retrying does not
 * help and cu_errmsg() says why in words a person reads:
 *   CU_EUNSUPPORTED  it is not media, or this rendition cannot be made from
 *                    it (a poster of a sound recording);
 *   CU_ECORRUPT      it is media, but damaged beyond reading (an MP4 whose
 *                    index was never written), or a check of our own output
 *                    failed (the lossless check);
 * CU_EIO, CU_ENOSPC, CU_ENOTFOUND for our failures, which a retry may cure.
 * A failed operation leaves its output file in an undefined state: the
 * caller deletes it. */
#ifndef MEDIA_MEDIA_H
#define MEDIA_MEDIA_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct {
  int64_t deadline_us;  /* on cu_mono_us()'s clock; 0 = none */
  const atomic_int *cancel; /* non-zero stops the operation (CU_EIO); may be NULL */
  /* Share of the input's duration processed, 0..1, at most a few times a
   * second. May be NULL. */
  void (*progress)(void *ud, double fraction);
  void *progress_ud;
} media_ctl;

/* "59.27.100": the libavformat and libavcodec versions, for records. */
const char *media_libavformat_version(void);
const char *media_libavcodec_version(void);

#endif
