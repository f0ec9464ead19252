/* config.c: where the CLI finds its server and token (see config.h). */
#include "config.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The endpoint and token files are one short line; anything bigger is not ours. */
#define SMALL_FILE_MAX 4096

/* True when s is set and not empty. */
static bool is_set(const char *s) {
    return s && *s;
}

/* Reads the first line of a small file, trimmed of surrounding blanks. Returns a malloc'd
 * string, or NULL when the file cannot be read or the line is empty. */
static char *read_first_line(const char *path) {
    char *data = NULL;
    if (ava_file_read_all(path, SMALL_FILE_MAX, &data, NULL, NULL) < 0)
        return NULL;
    char *s = data;
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strcspn(s, "\r\n");
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    char *line = n ? strndup(s, n) : NULL;
    free(data);
    return line;
}

/* Builds DATA/<file> into a malloc'd string. */
static char *data_file(const char *env_data, const char *file) {
    const char *dir = is_set(env_data) ? env_data : CLI_DEFAULT_DATA;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return ava_xasprintf("%.*s/%s", (int)n, dir, file);
}

/* Adds "http://" when no scheme is given and drops trailing slashes; checks the result. */
static int normalize_server(const char *in, char **out, char *err) {
    char *s = strstr(in, "://") ? ava_xstrdup(in) : ava_xasprintf("http://%s", in);
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    *out = s;
    bool scheme_ok = strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
    bool host_ok = n > (size_t)(strchr(s, ':') - s) + 3;
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            host_ok = false;
    if (!scheme_ok || !host_ok)
        return ava_err(err, AVA_EINVALID, "'%s' is not a server URL (e.g. http://127.0.0.1:8080)",
                       in);
    return 0;
}

/* True when every byte of the token can be sent in an Authorization header. */
static bool token_ok(const char *t) {
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

/* Picks the token: option, environment, then DATA/admin.token. */
static char *resolve_token(const char *opt_token, const char *env_token, const char *env_data) {
    if (is_set(opt_token))
        return ava_xstrdup(opt_token);
    if (is_set(env_token))
        return ava_xstrdup(env_token);
    char *path = data_file(env_data, "admin.token");
    char *t = read_first_line(path);
    free(path);
    return t;
}

int cli_config_resolve(const char *opt_server, const char *opt_token, const char *env_server,
                       const char *env_token, const char *env_data, struct cli_config *out,
                       char *err) {
    memset(out, 0, sizeof *out);
    char *raw = NULL;
    if (is_set(opt_server)) {
        raw = ava_xstrdup(opt_server);
        out->server_source = ava_xstrdup("--server");
    } else if (is_set(env_server)) {
        raw = ava_xstrdup(env_server);
        out->server_source = ava_xstrdup("AVA_SERVER");
    } else {
        char *path = data_file(env_data, "endpoint");
        raw = read_first_line(path);
        if (raw) {
            out->server_source = path;
        } else {
            free(path);
            raw = ava_xstrdup(CLI_DEFAULT_SERVER);
            out->server_source = ava_xstrdup("default");
        }
    }
    int rc = normalize_server(raw, &out->server, err);
    free(raw);
    if (rc < 0)
        return rc;
    out->token = resolve_token(opt_token, env_token, env_data);
    if (out->token && !token_ok(out->token))
        return ava_err(err, AVA_EINVALID,
                       "the API token contains blanks or control characters; check --token, "
                       "AVA_TOKEN or the admin.token file");
    return 0;
}

void cli_config_free(struct cli_config *c) {
    if (!c)
        return;
    free(c->server);
    free(c->server_source);
    free(c->token);
    memset(c, 0, sizeof *c);
}
