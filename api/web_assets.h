/* The reviewer page's files (web/), compiled in by api/web_assets.cmake. */
#ifndef WEB_ASSETS_H
#define WEB_ASSETS_H

#include <stddef.h>

typedef struct {
  const char *path;         /* "/index.html" */
  const char *content_type;
  const unsigned char *data;
  size_t size;
} web_asset;

extern const web_asset web_assets[]; /* ends with a NULL path */

#endif
