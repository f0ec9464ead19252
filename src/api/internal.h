/* internal.h: what the API's files share: the server context, the request being served,
 * reply helpers and the route handlers. Not part of the API's interface. */
#ifndef AVA_API_INTERNAL_H
#define AVA_API_INTERNAL_H

#include "api.h"

#include "../common/err.h"
#include "../store/store.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>

struct follow;
struct metric_stream;

struct ava_api {
    struct event_base *base;
    struct evhttp *http;
    struct ava_api_config cfg;
    char data_dir[4096];
    struct ava_store *st;
    struct ava_sched *sched;
    struct ava_datasets *datasets; /* NULL: dataset routes answer 503 */
    int port;
    struct follow *follows;        /* open log streams */
    struct metric_stream *streams; /* open metric streams */
    /* downsampled answers of series that did not change since (key: series, count, points) */
    struct {
        int64_t series_id, count;
        int max_points;
        char *points_json;
    } cache[32];
    int cache_next;
};

#define API_MAX_SEGS 8

/* One request being served. */
struct req {
    struct ava_api *api;
    struct evhttp_request *ev;
    enum evhttp_cmd_type method;
    struct ava_user user;     /* the authenticated caller */
    char *segs[API_MAX_SEGS]; /* decoded path segments after /api/v1 */
    int nsegs;
    struct evkeyvalq query; /* decoded query parameters */
};

/* Replies with a JSON value (consumed) and the given status. */
void api_reply_json(struct req *rq, int status, json_t *body);
/* Replies with the error envelope for an AVA_E* code. */
void api_reply_error(struct req *rq, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parses the request body as a JSON object. On failure it has already replied (400 or 413)
 * and returns NULL. */
json_t *api_body_json(struct req *rq);
/* A query parameter, or NULL. */
const char *api_query(struct req *rq, const char *key);
/* Formats unix ms as an RFC 3339 JSON string, or JSON null for 0. */
json_t *api_time(int64_t ms);

/* Looks up the training named by a path segment ("name" or "user/name", or ?owner=) that
 * the caller may see. On failure it has already replied 404 and returns non-zero. */
int api_find_training(struct req *rq, const char *seg, struct ava_training *out);
/* The JSON view of a training; with_runs adds its runs (with events when with_events). */
json_t *api_training_json(struct req *rq, const struct ava_training *t, bool with_runs,
                          bool with_events);

/* Route handlers (routes.c, trainings.c, logs.c). */
void api_route_whoami(struct req *rq);
void api_route_groups(struct req *rq);
void api_route_users(struct req *rq);
void api_route_images(struct req *rq);
void api_route_resources(struct req *rq);
void api_route_trainings(struct req *rq);
void api_route_datasets(struct req *rq);
void api_route_logs(struct req *rq, const struct ava_training *t);
void api_follow_free_all(struct ava_api *api);
void api_route_metrics(struct req *rq, const struct ava_training *t);
void api_route_report(struct req *rq, const char *path);
void api_metrics_free_all(struct ava_api *api);

#endif
