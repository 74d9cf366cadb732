#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "banned.h"

static const char help[] =
    "usage: custos token create --role ROLE [--device ID] [--user NAME] [--json]\n"
    "\n"
    "Creates an access token (admin only) and prints its secret once; the server\n"
    "keeps only its hash. Roles: recorder (needs --device: the one device it\n"
    "uploads for), reviewer and legal (need --user), admin.\n"
    "\n"
    "  --server URL  --token SECRET  --token-file FILE   (see custos --help)\n";

int cmd_token(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "create")) {
    fputs(help, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
    return argc >= 2 && !strcmp(argv[1], "--help") ? EXIT_OK : EXIT_USAGE;
  }
  client cl = {0};
  const char *role = NULL, *device = NULL, *user = NULL;
  bool as_json = false;
  enum { O_ROLE = 1, O_DEVICE, O_USER };
  static const struct option opts[] = {{"role", required_argument, 0, O_ROLE},
                                       {"device", required_argument, 0, O_DEVICE},
                                       {"user", required_argument, 0, O_USER},
                                       {"json", no_argument, 0, OPT_JSON},
                                       CLIENT_LONG_OPTIONS,
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c, rc = EXIT_OK;
  optind = 1;
  while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
    if (client_option(&cl, c, optarg)) continue;
    switch (c) {
    case O_ROLE: role = optarg; break;
    case O_DEVICE: device = optarg; break;
    case O_USER: user = optarg; break;
    case OPT_JSON: as_json = true; break;
    case 'h': fputs(help, stdout); goto done;
    default: fputs(help, stderr); rc = EXIT_USAGE; goto done;
    }
  }
  if (!role) {
    rc = cli_usage_error("token", "--role is required (recorder, reviewer, legal or admin)");
    goto done;
  }
  if (client_finish(&cl)) {
    fprintf(stderr, "custos token: %s\n", cu_errmsg());
    rc = EXIT_USAGE;
    goto done;
  }
  json_t *body = json_object(), *out = NULL;
  cu_json_set_str(body, "role", role);
  cu_json_set_str(body, "device", device);
  cu_json_set_str(body, "user", user);
  int err = client_json(&cl, "POST", "/v1/tokens", body, NULL, &out);
  json_decref(body);
  if (err) {
    fprintf(stderr, "custos token: %s\n", cu_errmsg());
    rc = cli_exit_for(err);
    goto done;
  }
  if (as_json) {
    char *s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
  } else {
    printf("%s\n", cu_json_str(out, "token"));
    fprintf(stderr, "created %s token %s%s%s%s%s; the secret above is shown only once\n",
            cu_json_str(out, "role"), cu_json_str(out, "id"), device ? " for device " : "",
            device ? device : "", user ? " for user " : "", user ? user : "");
  }
  json_decref(out);
done:
  client_release(&cl);
  return rc;
}
