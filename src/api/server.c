/* server.c: the evhttp listener, limits and timeouts, path splitting, token auth, and the
 * JSON reply helpers every route uses. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/sha256.h"
#include "../common/timeutil.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_reply_json(struct req *rq, int status, json_t *body) {
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct evbuffer *out = evbuffer_new();
    if (text) {
        evbuffer_add(out, text, strlen(text));
        evbuffer_add(out, "\n", 1);
    }
    free(text);
    struct evkeyvalq *h = evhttp_request_get_output_headers(rq->ev);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_send_reply(rq->ev, status, NULL, out);
    evbuffer_free(out);
}

void api_reply_error(struct req *rq, int code, const char *fmt, ...) {
    char msg[AVA_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_reply_json(
        rq, ava_err_http_status(code),
        json_pack("{s:{s:s, s:s}}", "error", "code", ava_err_code_str(code), "message", msg));
}

json_t *api_body_json(struct req *rq) {
    struct evbuffer *in = evhttp_request_get_input_buffer(rq->ev);
    size_t len = evbuffer_get_length(in);
    if (len > rq->api->cfg.max_body) {
        api_reply_error(rq, AVA_ETOOLARGE, "request body is over %zu bytes", rq->api->cfg.max_body);
        return NULL;
    }
    const char *data = (const char *)evbuffer_pullup(in, -1);
    json_error_t je;
    json_t *j = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        api_reply_error(rq, AVA_EINVALID, "malformed JSON body: %s (line %d, column %d)", je.text,
                        je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        api_reply_error(rq, AVA_EINVALID, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

const char *api_query(struct req *rq, const char *key) {
    return evhttp_find_header(&rq->query, key);
}

json_t *api_time(int64_t ms) {
    if (ms <= 0)
        return json_null();
    char ts[40];
    ava_format_time(ms, ts, sizeof ts);
    return json_string(ts);
}

/* Authenticates the bearer token. On failure replies 401 and returns -1. */
static int authenticate(struct req *rq) {
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(rq->ev), "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0 || !h[7]) {
        api_reply_error(rq, AVA_EUNAUTHORIZED,
                        "missing token: send 'Authorization: Bearer <token>' (set AVA_TOKEN)");
        return -1;
    }
    char hash[65];
    ava_sha256_hex(h + 7, hash);
    if (ava_store_user_by_token(rq->api->st, hash, &rq->user, NULL) < 0) {
        api_reply_error(rq, AVA_EUNAUTHORIZED, "unknown token");
        return -1;
    }
    return 0;
}

/* Splits the decoded path after /api/v1 into segments. Returns -1 for other paths. */
static int split_path(struct req *rq, const char *path) {
    static const char prefix[] = "/api/v1";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0 ||
        (path[sizeof prefix - 1] != '/' && path[sizeof prefix - 1] != '\0'))
        return -1;
    const char *p = path + sizeof prefix - 1;
    while (*p == '/')
        p++;
    while (*p && rq->nsegs < API_MAX_SEGS) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char *raw = ava_xmalloc(n + 1);
        memcpy(raw, p, n);
        raw[n] = '\0';
        rq->segs[rq->nsegs++] = evhttp_uridecode(raw, 0, NULL);
        free(raw);
        p += n;
        while (*p == '/')
            p++;
    }
    return *p ? -1 : 0;
}

/* Routes by the first path segment. */
static void dispatch(struct req *rq) {
    const char *c = rq->nsegs ? rq->segs[0] : "";
    if (rq->method != EVHTTP_REQ_GET && rq->method != EVHTTP_REQ_POST &&
        rq->method != EVHTTP_REQ_DELETE)
        api_reply_error(rq, AVA_EMETHOD, "the API takes GET, POST and DELETE only");
    else if (!strcmp(c, "whoami"))
        api_route_whoami(rq);
    else if (!strcmp(c, "groups"))
        api_route_groups(rq);
    else if (!strcmp(c, "users"))
        api_route_users(rq);
    else if (!strcmp(c, "images"))
        api_route_images(rq);
    else if (!strcmp(c, "resources"))
        api_route_resources(rq);
    else if (!strcmp(c, "trainings"))
        api_route_trainings(rq);
    else if (!strcmp(c, "datasets"))
        api_route_datasets(rq);
    else
        api_reply_error(rq, AVA_ENOTFOUND, "no such route: /api/v1/%s", c);
}

/* Every request enters here. */
static void on_request(struct evhttp_request *ev, void *arg) {
    struct req rq = {.api = arg, .ev = ev, .method = evhttp_request_get_command(ev)};
    rq.query.tqh_first = NULL;
    rq.query.tqh_last = &rq.query.tqh_first;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (path && !strncmp(path, "/v1/report/trainings/", 21)) {
        api_route_report(&rq, path); /* the original SDK's endpoint: the run's own token */
    } else if (!path || split_path(&rq, path) < 0) {
        api_reply_error(&rq, AVA_ENOTFOUND, "no such route: %s (the API is under /api/v1)",
                        path ? path : "?");
    } else if (query && evhttp_parse_query_str(query, &rq.query) < 0) {
        api_reply_error(&rq, AVA_EINVALID, "malformed query string");
    } else if (authenticate(&rq) == 0) {
        dispatch(&rq);
    }
    for (int i = 0; i < rq.nsegs; i++)
        free(rq.segs[i]);
    evhttp_clear_headers(&rq.query);
}

int ava_api_start(struct event_base *base, const struct ava_api_config *cfg, struct ava_store *st,
                  struct ava_sched *sched, struct ava_api **out, char *err) {
    struct ava_api *api = ava_xcalloc(1, sizeof *api);
    api->base = base;
    api->cfg = *cfg;
    snprintf(api->data_dir, sizeof api->data_dir, "%s", cfg->data_dir);
    api->cfg.data_dir = api->data_dir;
    api->st = st;
    api->sched = sched;
    api->http = evhttp_new(base);
    /* evhttp answers bodies over its own limit with an HTML page: keep that limit far above
     * ours so that what users meet is the JSON 413 of api_body_json */
    evhttp_set_max_body_size(api->http, (ev_ssize_t)cfg->max_body * 16);
    evhttp_set_max_headers_size(api->http, (ev_ssize_t)cfg->max_headers);
    evhttp_set_timeout(api->http, cfg->timeout_s);
    /* every method reaches the router, which answers the unsupported ones in JSON */
    evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(api->http, on_request, api);
    struct evhttp_bound_socket *sock =
        evhttp_bind_socket_with_handle(api->http, cfg->host, (uint16_t)cfg->port);
    if (!sock) {
        evhttp_free(api->http);
        free(api);
        return ava_err(err, AVA_EIO, "cannot listen on %s:%d (in use, or a bad address?)",
                       cfg->host, cfg->port);
    }
    /* answers end with a small write: without TCP_NODELAY the client's delayed ACK holds
     * every keep-alive answer back ~40 ms (accepted sockets inherit the option) */
    int one = 1;
    setsockopt(evhttp_bound_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_storage ss;
    ev_socklen_t sl = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl);
    api->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *out = api;
    return 0;
}

void ava_api_set_datasets(struct ava_api *api, struct ava_datasets *ds) {
    api->datasets = ds;
}

int ava_api_port(const struct ava_api *api) {
    return api->port;
}

void ava_api_free(struct ava_api *api) {
    if (!api)
        return;
    api_follow_free_all(api);
    api_metrics_free_all(api);
    evhttp_free(api->http);
    free(api);
}
