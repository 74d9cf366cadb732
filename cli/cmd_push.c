#include <stdio.h>

#include "cli.h"
#include "banned.h"

int cmd_push(int argc, char **argv) {
  fprintf(stderr, "custos push: not built yet\n");
  return EXIT_FAIL;
}
