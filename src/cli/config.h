/* config.h: where the CLI finds its server and token (options, environment, the data dir). */
#ifndef AVA_CLI_CONFIG_H
#define AVA_CLI_CONFIG_H

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8080"
#define CLI_DEFAULT_DATA "./var"

/* The resolved connection settings. Owned by the struct; released with cli_config_free(). */
struct cli_config {
    char *server;        /* base URL without a trailing '/', e.g. "http://127.0.0.1:8080" */
    char *server_source; /* where it came from: "--server", "AVA_SERVER", a file, "default" */
    char *token;         /* NULL when none was found */
};

/* Resolves the server and token. The first that is set (non-NULL, non-empty) wins:
 *   server: opt_server, env_server, the first line of DATA/endpoint, CLI_DEFAULT_SERVER
 *   token:  opt_token, env_token, DATA/admin.token when it is readable (trailing newline
 *           and blanks trimmed)
 * where DATA is env_data, or CLI_DEFAULT_DATA when that is unset. A server without a scheme
 * gets "http://". Returns 0, or AVA_EINVALID for a server that is not an http(s) URL or a
 * token holding characters that cannot go in an HTTP header. *out is filled in either case
 * and must be released with cli_config_free(). */
int cli_config_resolve(const char *opt_server, const char *opt_token, const char *env_server,
                       const char *env_token, const char *env_data, struct cli_config *out,
                       char *err);

/* Releases the strings; a zeroed or NULL config is fine. */
void cli_config_free(struct cli_config *c);

#endif
