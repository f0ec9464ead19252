/* benchclient.h: the benchmarks' view of the avad under test: its address, admin token and
 * process, and a keep-alive libcurl client of its API. */
#ifndef AVA_BENCH_BENCHCLIENT_H
#define AVA_BENCH_BENCHCLIENT_H

#include "../src/common/buf.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <jansson.h>
#include <sys/types.h>

/* The avad under test. */
struct bench_server {
    char base[256];
    char auth[512];  /* "Authorization: Bearer ..." */
    char data[1024]; /* short enough to leave room for names below it */
    pid_t pid;
};

/* One keep-alive HTTP connection to avad. */
struct bench_client {
    CURL *h;
    struct curl_slist *hdrs;
    struct ava_buf resp;
    const struct bench_server *srv;
};

/* Starts avad (the binary at avad) in its own process group on a free loopback port with
 * its data in srv->data, `--grace 2s` and the extra arguments (NULL-terminated, may be NULL),
 * then reads the endpoint and the admin token it writes into srv. `who` prefixes messages.
 * Returns 0, or -1 with avad's log shown on stderr. */
int bench_avad_start(struct bench_server *srv, const char *avad, const char *const *extra,
                     const char *who);

/* Stops the avad that bench_avad_start started: SIGTERM, up to 5 s, then SIGKILL; sets
 * srv->pid to -1. A no-op when it is not running. */
void bench_avad_stop(struct bench_server *srv);

/* Opens a client of srv whose requests give up after timeout_s. Returns 0 or -1. */
int bench_client_init(struct bench_client *c, const struct bench_server *srv, long timeout_s);
/* Closes the client. */
void bench_client_free(struct bench_client *c);
/* Sends one request (a POST when body is non-NULL, else a GET) to /api/v1 + path. Returns
 * the HTTP status, or -1 when there was no answer (said on stderr); the body is in c->resp. */
long bench_http(struct bench_client *c, const char *path, const char *body);
/* Creates training name (image ava-pure:host, 1 CPU) with entry and an optional single
 * argument; start=false stores it only. Returns the HTTP status (201 on success, else the
 * answer is shown on stderr) or -1. */
long bench_create_training(struct bench_client *c, const char *name, const char *entry,
                           const char *arg, bool start);
/* The same with any number of arguments (NULL-terminated args, may be NULL). */
long bench_create_training_argv(struct bench_client *c, const char *name, const char *entry,
                                const char *const *args, bool start);
/* True for the states a run ends in (succeeded, failed, timed_out, stopped). */
bool bench_state_terminal(const char *s);
/* The response body as JSON (the caller decrefs), or NULL. */
json_t *bench_resp_json(const struct bench_client *c);

#endif
