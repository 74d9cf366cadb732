/* The custos command line: one cmd_<name>.c per subcommand, dispatched by
 * the table in main.c. Every subcommand other than serve is an HTTP client
 * of a Custos server. */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"
#include "json.h"

/* Exit codes, the one place they are defined (README "Exit codes"). */
enum {
  EXIT_OK = 0,
  EXIT_FAIL = 1,     /* the operation failed */
  EXIT_USAGE = 2,    /* bad command line */
  EXIT_CORRUPT = 3,  /* a hash or verification check did not match */
};

int cmd_serve(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_case(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_clip(int argc, char **argv);
int cmd_hold(int argc, char **argv);
int cmd_holds(int argc, char **argv);
int cmd_release(int argc, char **argv);
int cmd_retention(int argc, char **argv);
int cmd_request(int argc, char **argv);
int cmd_requests(int argc, char **argv);
int cmd_approve(int argc, char **argv);
int cmd_refuse(int argc, char **argv);
int cmd_timestamp(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_scrub(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* Prints "custos <cmd>: <message>" to stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Maps one of our error codes to an exit code. */
int cli_exit_for(int code);

/* ---- the HTTP client side ---------------------------------------------- */

/* Where the server is and who we are: --server/--token, else
 * CUSTOS_SERVER/CUSTOS_TOKEN (or --token-file/CUSTOS_TOKEN_FILE), else
 * http://127.0.0.1:8080 and, on the server's own machine, the admin token
 * in $CUSTOS_HOME/admin.token or ./var/admin.token. */
typedef struct {
  char *server;
  char *token;
} client;

/* Common long options for client commands; returns 1 if it consumed opt. */
enum { OPT_SERVER = 1000, OPT_TOKEN, OPT_TOKEN_FILE, OPT_JSON };
#define CLIENT_LONG_OPTIONS                                              \
  {"server", required_argument, 0, OPT_SERVER},                          \
      {"token", required_argument, 0, OPT_TOKEN},                        \
      {"token-file", required_argument, 0, OPT_TOKEN_FILE}
int client_option(client *c, int opt, const char *arg);
/* Fills defaults from the environment; CU_EAUTH if no token anywhere. */
int client_finish(client *c);
void client_release(client *c);

/* A JSON request. body may be NULL. On an HTTP error the server's
 * {"error","detail"} becomes the error message and a code mapped from the
 * status. *out is the parsed response body (may be NULL). */
int client_json(const client *c, const char *method, const char *path, const json_t *body,
                long *status, json_t **out);
/* A GET whose body (at most out->max bytes) is not JSON. */
int client_get_bytes(const client *c, const char *path, cu_buf *out);
/* Appends a query parameter (URL-encoded) to path. */
void client_query_add(cu_buf *path, const char *name, const char *value);

/* A download's destination: each piece goes to fd and into h (a libcurl
 * write callback with the sink as its data). err is set when a write fails. */
typedef struct {
  int fd;
  cu_sha256 *h;
  uint64_t got, total;
  int64_t started;
  int err;
} cli_sink;
size_t cli_sink_write(char *p, size_t size, size_t n, void *sink);

/* A progress bar on stderr, drawn only when stderr is a terminal. */
void cli_progress(const char *label, uint64_t done, uint64_t total, int64_t started_us);
void cli_progress_end(void);

#endif
