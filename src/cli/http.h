/* http.h: the CLI's HTTP client for the avad API (libcurl, one keep-alive handle).
 *
 * Every request goes to <server>/api/v1<path> with "Authorization: Bearer <token>" when a
 * token is known, JSON bodies as application/json, and a 30 s connect+transfer limit (a
 * followed log has no transfer limit). Failures come back as an AVA_E* code plus one line:
 * the server's error.message, or which server could not be reached. */
#ifndef AVA_CLI_HTTP_H
#define AVA_CLI_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_HTTP_TIMEOUT_S 30L

struct cli_http;

/* Creates a client for the base URL server ("http://host:port", no trailing slash), naming
 * server_source in connection errors when it is not NULL. token may be NULL. Free with
 * cli_http_free(). Returns 0 or AVA_EINTERNAL when libcurl cannot start. */
int cli_http_new(const char *server, const char *server_source, const char *token,
                 struct cli_http **out, char *err);

/* Frees the client and its connection; NULL is a no-op. */
void cli_http_free(struct cli_http *h);

/* Sends method ("GET", "POST", "DELETE") to path (under /api/v1, already URL-encoded) with
 * an optional JSON body. On a 2xx answer stores the parsed JSON in *resp (owned by the
 * caller, json_decref; may be NULL when resp is NULL) and returns 0. Otherwise returns a
 * negative AVA_E* code with the message in err. */
int cli_http_json(struct cli_http *h, const char *method, const char *path, json_t *body,
                  json_t **resp, char *err);

/* GETs path and writes the body to out as it arrives (flushed after each piece). follow
 * lifts the transfer time limit, for streams that last as long as a run. An error answer
 * is not written to out; its message goes to err. Returns 0 or a negative AVA_E* code. */
int cli_http_stream(struct cli_http *h, const char *path, bool follow, FILE *out, char *err);

/* The HTTP status of the last answer (0 when none came). */
long cli_http_status(const struct cli_http *h);

/* Writes into out the one-line message for a failed answer: the body's error.message when
 * the body is {"error": {"message": "..."}}, else a sentence naming the HTTP status (and the
 * error.code when there is one). Pure; body may be NULL. */
void cli_http_error_message(long status, const char *body, size_t len, char *out, size_t outlen);

/* The AVA_E* code for an HTTP status (AVA_EINTERNAL for unknown failures). */
int cli_http_status_code(long status);

/* Percent-encodes s for one path segment or query value: every byte outside the RFC 3986
 * unreserved set [A-Za-z0-9._~-] is written %XX, so "alice/hello" becomes "alice%2Fhello".
 * Returns a malloc'd string owned by the caller. */
char *cli_url_encode(const char *s);

/* "/COLLECTION/<name percent-encoded>SUFFIX" (suffix may be NULL), e.g. the API path of a
 * training or dataset. Returns a malloc'd string owned by the caller. */
char *cli_item_path(const char *collection, const char *name, const char *suffix);

#endif
