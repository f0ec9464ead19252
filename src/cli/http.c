/* http.c: the CLI's HTTP client for the avad API (see http.h). */
#include "http.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on what is kept in memory: a JSON answer, and an error body met while streaming. */
#define JSON_BODY_MAX ((size_t)256 << 20)
#define ERROR_BODY_MAX ((size_t)64 << 10)

struct cli_http {
    CURL *curl;
    char *server;
    char *source;
    char *token;
    long status;
    char curl_err[CURL_ERROR_SIZE];
};

/* Where an answer body goes: a buffer (JSON, or an error met while streaming) or a file. */
struct sink {
    struct cli_http *h;
    FILE *out;           /* NULL: everything into body */
    struct ava_buf body; /* the whole JSON answer, or the body of an error answer */
    size_t max;
    bool overflow;
    int write_errno; /* nonzero when writing to out failed */
};

int cli_http_new(const char *server, const char *server_source, const char *token,
                 struct cli_http **out, char *err) {
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return ava_err(err, AVA_EINTERNAL, "cannot initialise libcurl");
    struct cli_http *h = ava_xcalloc(1, sizeof *h);
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        curl_global_cleanup();
        return ava_err(err, AVA_EINTERNAL, "cannot initialise libcurl");
    }
    h->server = ava_xstrdup(server);
    h->source = server_source ? ava_xstrdup(server_source) : NULL;
    h->token = token ? ava_xstrdup(token) : NULL;
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "ava-cli");
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->curl_err);
    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, CLI_HTTP_TIMEOUT_S);
    *out = h;
    return 0;
}

void cli_http_free(struct cli_http *h) {
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    curl_global_cleanup();
    free(h->server);
    free(h->source);
    free(h->token);
    free(h);
}

long cli_http_status(const struct cli_http *h) {
    return h->status;
}

char *cli_url_encode(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    struct ava_buf b = {0};
    ava_buf_puts(&b, "");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (plain) {
            ava_buf_append(&b, &c, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            ava_buf_append(&b, esc, 3);
        }
    }
    return ava_buf_steal(&b);
}

int cli_http_status_code(long status) {
    switch (status) {
    case 400:
        return AVA_EINVALID;
    case 401:
        return AVA_EUNAUTHORIZED;
    case 403:
        return AVA_EFORBIDDEN;
    case 404:
        return AVA_ENOTFOUND;
    case 409:
        return AVA_ECONFLICT;
    case 413:
        return AVA_ETOOLARGE;
    case 422:
        return AVA_ENOFIT;
    case 503:
        return AVA_EUNAVAILABLE;
    default:
        return status >= 200 && status < 300 ? 0 : AVA_EINTERNAL;
    }
}

/* The reason phrase of the statuses avad (or a proxy in front of it) may answer. */
static const char *status_text(long status) {
    static const struct {
        long status;
        const char *text;
    } texts[] = {
        {400, "Bad Request"},       {401, "Unauthorized"},         {403, "Forbidden"},
        {404, "Not Found"},         {405, "Method Not Allowed"},   {409, "Conflict"},
        {413, "Payload Too Large"}, {422, "Unprocessable Entity"}, {500, "Internal Server Error"},
        {502, "Bad Gateway"},       {503, "Service Unavailable"},  {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i].status == status)
            return texts[i].text;
    return NULL;
}

/* Copies s into out as one line: control characters become spaces. */
static void copy_one_line(const char *s, char *out, size_t outlen) {
    snprintf(out, outlen, "%s", s);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = ' ';
}

void cli_http_error_message(long status, const char *body, size_t len, char *out, size_t outlen) {
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *error = json_is_object(root) ? json_object_get(root, "error") : NULL;
    const char *msg = json_string_value(json_object_get(error, "message"));
    const char *code = json_string_value(json_object_get(error, "code"));
    if (msg && *msg) {
        copy_one_line(msg, out, outlen);
    } else {
        const char *text = status_text(status);
        char line[256];
        snprintf(line, sizeof line, "the server answered HTTP %ld%s%s%s%s%s", status,
                 text ? " " : "", text ? text : "", code ? " (" : "", code ? code : "",
                 code ? ")" : "");
        copy_one_line(line, out, outlen);
    }
    json_decref(root);
}

/* libcurl write callback: keeps the body in memory or passes it on to the output file.
 * While streaming, an error answer is kept apart so it never lands in the user's output. */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct sink *s = userdata;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(s->h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (s->out && status >= 200 && status < 300) {
        if (fwrite(ptr, 1, n, s->out) != n || fflush(s->out) != 0) {
            s->write_errno = errno ? errno : EIO;
            return 0;
        }
        return n;
    }
    if (s->body.len + n > s->max) {
        s->overflow = true;
        return 0;
    }
    ava_buf_append(&s->body, ptr, n);
    return n;
}

/* Turns a libcurl failure into one line that says which server could not be reached. */
static int transport_error(struct cli_http *h, CURLcode rc, const struct sink *s, char *err) {
    const char *detail = h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc);
    if (s->write_errno)
        return ava_err(err, AVA_EIO, "cannot write the output: %s", strerror(s->write_errno));
    if (s->overflow)
        return ava_err(err, AVA_ETOOLARGE, "the server's answer is larger than %zu bytes", s->max);
    char from[300] = "";
    if (h->source && strcmp(h->source, "default") == 0)
        snprintf(from, sizeof from, " (the default)");
    else if (h->source && strcmp(h->source, "--server") != 0)
        snprintf(from, sizeof from, " (from %s)", h->source);
    if (rc == CURLE_OPERATION_TIMEDOUT && h->status)
        return ava_err(err, AVA_EUNAVAILABLE, "the ava server at %s did not answer in time: %s",
                       h->server, detail);
    if (h->status)
        return ava_err(err, AVA_EUNAVAILABLE, "the connection to the ava server at %s broke: %s",
                       h->server, detail);
    return ava_err(err, AVA_EUNAVAILABLE,
                   "cannot reach the ava server at %s%s: %s; is avad running? (choose the server "
                   "with --server or AVA_SERVER)",
                   h->server, from, detail);
}

/* Builds the request headers for this call; the caller frees them with curl_slist_free_all. */
static struct curl_slist *make_headers(const struct cli_http *h, bool json_body) {
    struct curl_slist *l = NULL;
    if (h->token) {
        char *auth = ava_xasprintf("Authorization: Bearer %s", h->token);
        l = curl_slist_append(l, auth);
        free(auth);
    }
    if (json_body)
        l = curl_slist_append(l, "Content-Type: application/json");
    l = curl_slist_append(l, "Expect:"); /* no 100-continue round trip for big bodies */
    return l;
}

/* Sets up and performs one request, the body going to the sink. Returns 0 when an answer
 * (of any status) came back, else a transport error in err. */
static int perform(struct cli_http *h, const char *method, const char *path, const char *body,
                   bool follow, struct sink *s, char *err) {
    char *url = ava_xasprintf("%s/api/v1%s", h->server, path);
    struct curl_slist *headers = make_headers(h, body != NULL);
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT, follow ? 0L : CLI_HTTP_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    h->curl_err[0] = '\0';
    h->status = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    free(url);
    if (rc != CURLE_OK)
        return transport_error(h, rc, s, err);
    return 0;
}

/* Fills err from an error answer, adding a hint when no token was sent. */
static int answer_error(struct cli_http *h, const struct sink *s, char *err) {
    char msg[AVA_ERRLEN];
    cli_http_error_message(h->status, s->body.data, s->body.len, msg, sizeof msg);
    if (h->status == 401 && !h->token)
        return ava_err(err, AVA_EUNAUTHORIZED,
                       "%s (no API token was found: give --token, set AVA_TOKEN, or make "
                       "$AVA_DATA/admin.token readable)",
                       msg);
    return ava_err(err, cli_http_status_code(h->status), "%s", msg);
}

int cli_http_json(struct cli_http *h, const char *method, const char *path, json_t *body,
                  json_t **resp, char *err) {
    if (resp)
        *resp = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct sink s = {.h = h, .max = JSON_BODY_MAX};
    int rc = perform(h, method, path, text, false, &s, err);
    free(text);
    if (rc == 0 && (h->status < 200 || h->status >= 300))
        rc = answer_error(h, &s, err);
    if (rc == 0 && resp) {
        json_error_t jerr;
        *resp = s.body.len ? json_loadb(s.body.data, s.body.len, 0, &jerr) : json_object();
        if (!*resp)
            rc = ava_err(err, AVA_EINTERNAL,
                         "the server at %s answered %s %s with something that is not JSON (%s)",
                         h->server, method, path, jerr.text);
    }
    ava_buf_free(&s.body);
    return rc;
}

int cli_http_stream(struct cli_http *h, const char *path, bool follow, FILE *out, char *err) {
    struct sink s = {.h = h, .out = out, .max = ERROR_BODY_MAX};
    int rc = perform(h, "GET", path, NULL, follow, &s, err);
    if (rc == 0 && (h->status < 200 || h->status >= 300))
        rc = answer_error(h, &s, err);
    ava_buf_free(&s.body);
    return rc;
}

char *cli_item_path(const char *collection, const char *name, const char *suffix) {
    char *enc = cli_url_encode(name);
    char *path = ava_xasprintf("/%s/%s%s", collection, enc, suffix ? suffix : "");
    free(enc);
    return path;
}
