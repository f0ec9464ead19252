/* metrics.c: the metric routes: series of a training's runs, one series (downsampled with
 * largest-triangle-three-buckets, or raw pages), a live server-sent-events stream, and the
 * original AVA SDK's report endpoint POST /v1/report/trainings/<run id>/metric. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/sha256.h"
#include "../common/strutil.h"
#include "../common/timeutil.h"
#include "../metrics/lineproto.h"
#include "../metrics/lttb.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_POINTS 1000
#define MAX_MAX_POINTS 100000
#define DEFAULT_PAGE 10000
#define REPORT_MAX_POINTS 100000

/* Appends {"step":S,"value":V,"time":T} (time in unix ms) for one point. */
static void point_json(struct ava_buf *b, int64_t step, double value, int64_t time_ms, bool comma) {
    char v[32];
    ava_format_double(value, v, sizeof v);
    ava_buf_printf(b, "%s{\"step\":%lld,\"value\":%s,\"time\":%lld}", comma ? "," : "",
                   (long long)step, v, (long long)time_ms);
}

/* The run a request means: ?run=N, else the latest. Replies 400/404 itself on failure. */
static int pick_run(struct req *rq, const struct ava_training *t, struct ava_run *r) {
    const char *q = api_query(rq, "run");
    int64_t n = 0;
    char err[AVA_ERRLEN];
    if (q && (ava_parse_uint(q, 1000000000, &n, NULL) < 0 || n == 0)) {
        api_reply_error(rq, AVA_EINVALID, "run must be a run number (1, 2, ...)");
        return -1;
    }
    int rc = n ? ava_store_run_get(rq->api->st, t->id, (int)n, r, err)
               : ava_store_run_latest(rq->api->st, t->id, r, err);
    if (rc < 0)
        api_reply_error(rq, rc, "training '%s': %s", t->name, err);
    return rc;
}

/* JSON of a series' summary. */
static json_t *series_json(const struct ava_series *s) {
    return json_pack("{s:s, s:s, s:I, s:I, s:f, s:I, s:f, s:f}", "name", s->name, "phase", s->phase,
                     "count", (json_int_t)s->count, "last_step", (json_int_t)s->last_step,
                     "last_value", s->last_value, "last_time", (json_int_t)s->last_time, "min",
                     s->min, "max", s->max);
}

/* GET /trainings/NAME/metrics[?run=N]: every series of the run (all runs when no ?run). */
static void list_metrics(struct req *rq, const struct ava_training *t) {
    struct ava_run *runs;
    size_t nruns;
    char err[AVA_ERRLEN];
    const char *only = api_query(rq, "run");
    int rc = ava_store_run_list(rq->api->st, t->id, &runs, &nruns, err);
    if (rc < 0)
        return api_reply_error(rq, rc, "%s", err);
    json_t *arr = json_array();
    for (size_t i = 0; i < nruns; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", runs[i].number);
        if (only && strcmp(only, num) != 0)
            continue;
        struct ava_series *ss;
        size_t n;
        json_t *sarr = json_array();
        if (ava_store_series_list(rq->api->st, runs[i].id, &ss, &n, NULL) == 0) {
            for (size_t k = 0; k < n; k++)
                json_array_append_new(sarr, series_json(&ss[k]));
            free(ss);
        }
        json_array_append_new(arr, json_pack("{s:i, s:s, s:o}", "number", runs[i].number, "state",
                                             ava_run_state_str(runs[i].state), "series", sarr));
    }
    free(runs);
    api_reply_json(rq, 200, json_pack("{s:s, s:o}", "training", t->name, "runs", arr));
}

/* The series asked for: ?phase=P, else the only phase the metric has. */
static int pick_series(struct req *rq, const struct ava_run *r, const char *name,
                       struct ava_series *out) {
    const char *phase = api_query(rq, "phase");
    char err[AVA_ERRLEN];
    if (phase) {
        int rc = ava_store_series_find(rq->api->st, r->id, name, phase, out, err);
        if (rc < 0)
            api_reply_error(rq, rc, "run %d: %s", r->number, err);
        return rc;
    }
    struct ava_series *ss;
    size_t n, found = 0;
    struct ava_buf phases = {0};
    int rc = ava_store_series_list(rq->api->st, r->id, &ss, &n, err);
    if (rc < 0) {
        api_reply_error(rq, rc, "%s", err);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ss[i].name, name)) {
            *out = ss[i];
            ava_buf_printf(&phases, "%s'%s'", found++ ? ", " : "", ss[i].phase);
        }
    free(ss);
    rc = found == 1 ? 0 : found ? AVA_EINVALID : AVA_ENOTFOUND;
    if (rc == AVA_EINVALID)
        api_reply_error(rq, rc, "metric %s has phases %s: give ?phase=", name, phases.data);
    else if (rc < 0)
        api_reply_error(rq, rc, "run %d has no metric %s", r->number, name);
    ava_buf_free(&phases);
    return rc;
}

/* The downsampled points of a series as JSON array text (malloc'd), from the cache when the
 * series has not changed. */
static char *downsampled(struct req *rq, const struct ava_series *s, int max_points, char *err) {
    struct ava_api *api = rq->api;
    for (int i = 0; i < 32; i++)
        if (api->cache[i].points_json && api->cache[i].series_id == s->id &&
            api->cache[i].count == s->count && api->cache[i].max_points == max_points)
            return ava_xstrdup(api->cache[i].points_json);
    int64_t *steps, *times;
    double *values;
    size_t n;
    int level;
    /* a long series is downsampled from its buckets' first, last, min and max points (at
     * least max_points buckets: every output bucket sees one's extremes), not every row */
    if (ava_store_series_sample(api->st, s->id, (size_t)max_points, &steps, &values, &times, &n,
                                &level, err) < 0)
        return NULL;
    double *x = ava_xmalloc((n ? n : 1) * sizeof *x);
    size_t *keep = ava_xmalloc((n ? n : 1) * sizeof *keep);
    for (size_t i = 0; i < n; i++)
        x[i] = (double)steps[i];
    size_t k = ava_lttb(x, values, n, (size_t)max_points, keep);
    struct ava_buf b = {0};
    ava_buf_puts(&b, "[");
    for (size_t i = 0; i < k; i++)
        point_json(&b, steps[keep[i]], values[keep[i]], times[keep[i]], i > 0);
    ava_buf_puts(&b, "]");
    free(x), free(keep), free(steps), free(values), free(times);
    int slot = api->cache_next++ % 32;
    free(api->cache[slot].points_json);
    api->cache[slot].series_id = s->id;
    api->cache[slot].count = s->count;
    api->cache[slot].max_points = max_points;
    api->cache[slot].points_json = ava_xstrdup(b.data);
    return ava_buf_steal(&b);
}

/* GET /trainings/NAME/metrics/METRIC?run=&phase=&max_points= | &since_step=&limit= */
static void show_series(struct req *rq, const struct ava_training *t, const char *name) {
    struct ava_run r;
    struct ava_series s;
    char err[AVA_ERRLEN];
    int64_t maxp = DEFAULT_MAX_POINTS, since = -1, limit = DEFAULT_PAGE;
    const char *qm = api_query(rq, "max_points"), *qs = api_query(rq, "since_step"),
               *ql = api_query(rq, "limit");
    if ((qm && (ava_parse_uint(qm, MAX_MAX_POINTS, &maxp, NULL) < 0 || maxp < 2)) ||
        (qs && strcmp(qs, "-1") != 0 && ava_parse_uint(qs, INT64_MAX / 2, &since, NULL) < 0) ||
        (ql && (ava_parse_uint(ql, MAX_MAX_POINTS, &limit, NULL) < 0 || limit < 1)))
        return api_reply_error(rq, AVA_EINVALID,
                               "max_points (2-100000), since_step (>= -1) or limit (1-100000) "
                               "is not a number in range");
    if (pick_run(rq, t, &r) < 0 || pick_series(rq, &r, name, &s) < 0)
        return;
    char *points = NULL;
    bool raw = qs != NULL;
    if (raw) { /* a page of raw points after since_step */
        int64_t *steps, *times;
        double *values;
        size_t n;
        if (ava_store_series_points(rq->api->st, s.id, since, (size_t)limit, &steps, &values,
                                    &times, NULL, &n, err) == 0) {
            struct ava_buf b = {0};
            ava_buf_puts(&b, "[");
            for (size_t i = 0; i < n; i++)
                point_json(&b, steps[i], values[i], times[i], i > 0);
            ava_buf_puts(&b, "]");
            points = ava_buf_steal(&b);
            free(steps), free(values), free(times);
        }
    } else {
        points = downsampled(rq, &s, (int)maxp, err);
    }
    if (!points)
        return api_reply_error(rq, AVA_EIO, "%s", err);
    struct ava_buf b = {0};
    ava_buf_printf(&b,
                   "{\"name\":\"%s\",\"phase\":\"%s\",\"run\":%d,\"count\":%lld,"
                   "\"downsampled\":%s,\"points\":%s}\n",
                   s.name, s.phase, r.number, (long long)s.count,
                   !raw && s.count > maxp ? "true" : "false", points);
    free(points);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, b.data, b.len);
    evhttp_add_header(evhttp_request_get_output_headers(rq->ev), "Content-Type",
                      "application/json");
    evhttp_send_reply(rq->ev, 200, "OK", out);
    evbuffer_free(out);
    ava_buf_free(&b);
}

#define STREAM_TICK_MS 500
#define STREAM_SERIES_MAX 256

/* One open live stream of a run's new points (server-sent events). */
struct metric_stream {
    struct ava_api *api;
    struct evhttp_request *ev;
    struct evhttp_connection *conn;
    int64_t training_id, run_id;
    int number;
    struct event *timer;
    struct {
        int64_t id, last_step; /* what was sent of each series */
    } seen[STREAM_SERIES_MAX];
    int nseen;
    struct metric_stream *next;
};

static void stream_free(struct metric_stream *m) {
    for (struct metric_stream **pp = &m->api->streams; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    event_free(m->timer);
    free(m);
}

static void stream_on_close(struct evhttp_connection *conn, void *arg) {
    stream_free(arg);
}

/* The last step sent of a series (-1 before any), creating its slot. */
static int64_t *stream_seen(struct metric_stream *m, int64_t series_id) {
    for (int i = 0; i < m->nseen; i++)
        if (m->seen[i].id == series_id)
            return &m->seen[i].last_step;
    if (m->nseen == STREAM_SERIES_MAX)
        return NULL;
    m->seen[m->nseen].id = series_id;
    m->seen[m->nseen].last_step = -1;
    return &m->seen[m->nseen++].last_step;
}

/* Appends an SSE event per new point of series s. */
static void stream_series(struct metric_stream *m, const struct ava_series *s, struct ava_buf *b) {
    int64_t *last = stream_seen(m, s->id), *steps, *times;
    double *values;
    size_t n;
    if (!last || s->last_step <= *last ||
        ava_store_series_points(m->api->st, s->id, *last, 10000, &steps, &values, &times, NULL, &n,
                                NULL) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        ava_buf_printf(b,
                       "event: point\ndata: {\"name\":\"%s\",\"phase\":\"%s\",\"point\":", s->name,
                       s->phase);
        point_json(b, steps[i], values[i], times[i], false);
        ava_buf_puts(b, "}\n\n");
    }
    if (n)
        *last = steps[n - 1];
    free(steps), free(values), free(times);
}

/* Sends new points; ends the stream once the run has ended and everything is sent. */
static void stream_tick(evutil_socket_t fd, short what, void *arg) {
    struct metric_stream *m = arg;
    struct ava_run r;
    struct ava_series *ss = NULL;
    size_t n = 0;
    bool over = ava_store_run_get(m->api->st, m->training_id, m->number, &r, NULL) < 0 ||
                ava_run_state_terminal(r.state);
    struct ava_buf b = {0};
    if (ava_store_series_list(m->api->st, m->run_id, &ss, &n, NULL) == 0)
        for (size_t i = 0; i < n; i++)
            stream_series(m, &ss[i], &b);
    free(ss);
    if (b.len) {
        struct evbuffer *out = evbuffer_new();
        evbuffer_add(out, b.data, b.len);
        evhttp_send_reply_chunk(m->ev, out);
        evbuffer_free(out);
    }
    ava_buf_free(&b);
    if (over) { /* the ingest at the run's end came before its final state: all is sent */
        struct evbuffer *out = evbuffer_new();
        evbuffer_add_printf(out, "event: end\ndata: {\"state\":\"%s\"}\n\n",
                            ava_run_state_str(r.state));
        evhttp_send_reply_chunk(m->ev, out);
        evbuffer_free(out);
        evhttp_connection_set_closecb(m->conn, NULL, NULL);
        evhttp_send_reply_end(m->ev);
        stream_free(m);
        return;
    }
    struct timeval tv = {0, STREAM_TICK_MS * 1000};
    evtimer_add(m->timer, &tv);
}

/* GET /trainings/NAME/metrics?follow=1[&run=N]: an event-stream of the run's new points. */
static void start_stream(struct req *rq, const struct ava_training *t) {
    struct ava_run r;
    if (pick_run(rq, t, &r) < 0)
        return;
    struct metric_stream *m = ava_xcalloc(1, sizeof *m);
    m->api = rq->api;
    m->ev = rq->ev;
    m->conn = evhttp_request_get_connection(rq->ev);
    m->training_id = t->id;
    m->run_id = r.id;
    m->number = r.number;
    m->timer = evtimer_new(rq->api->base, stream_tick, m);
    m->next = rq->api->streams;
    rq->api->streams = m;
    evhttp_connection_set_timeout(m->conn, 7 * 24 * 3600);
    evhttp_connection_set_closecb(m->conn, stream_on_close, m);
    struct evkeyvalq *h = evhttp_request_get_output_headers(rq->ev);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_send_reply_start(rq->ev, 200, "OK");
    stream_tick(-1, 0, m);
}

void api_metrics_free_all(struct ava_api *api) {
    while (api->streams) {
        evhttp_connection_set_closecb(api->streams->conn, NULL, NULL);
        stream_free(api->streams);
    }
    for (int i = 0; i < 32; i++)
        free(api->cache[i].points_json);
}

void api_route_metrics(struct req *rq, const struct ava_training *t) {
    const char *follow = api_query(rq, "follow");
    if (rq->nsegs == 3 && follow && (!strcmp(follow, "1") || !strcmp(follow, "true")))
        return start_stream(rq, t);
    if (rq->nsegs == 3)
        return list_metrics(rq, t);
    if (rq->nsegs == 4)
        return show_series(rq, t, rq->segs[3]);
    api_reply_error(rq, AVA_ENOTFOUND, "no such route");
}

/* Parses the report body into points; bad lines go to rejected with their number. */
static size_t parse_report(const char *body, size_t len, struct ava_point *pts, size_t cap,
                           json_t *rejected) {
    size_t n = 0, pos = 0;
    int lineno = 0;
    while (pos < len) {
        const char *nl = memchr(body + pos, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - (body + pos)) : len - pos;
        struct ava_lp_line line;
        char err[AVA_ERRLEN];
        lineno++;
        int r = ava_lp_parse(body + pos, l, &line, err);
        if (r == 0 && n < cap)
            r = ava_lp_to_point_ava_sdk(&line, &pts[n], err);
        else if (r == 0)
            r = ava_err(err, AVA_ETOOLARGE, "more than %d points in one report", REPORT_MAX_POINTS);
        if (r == 0)
            n++;
        else if (r != AVA_ENOTFOUND && json_array_size(rejected) < 100)
            json_array_append_new(rejected, json_pack("{s:i, s:s}", "line", lineno, "error", err));
        pos += l + 1;
    }
    return n;
}

void api_route_report(struct req *rq, const char *path) {
    static const char prefix[] = "/v1/report/trainings/";
    char err[AVA_ERRLEN], idtext[32], hash[65];
    const char *rest = path + sizeof prefix - 1;
    const char *slash = strchr(rest, '/');
    int64_t run_id;
    if (rq->method != EVHTTP_REQ_POST || !slash || strcmp(slash, "/metric") != 0 ||
        (size_t)(slash - rest) >= sizeof idtext)
        return api_reply_error(rq, AVA_ENOTFOUND, "use POST /v1/report/trainings/<run id>/metric");
    snprintf(idtext, sizeof idtext, "%.*s", (int)(slash - rest), rest);
    if (ava_parse_uint(idtext, INT64_MAX / 2, &run_id, NULL) < 0)
        return api_reply_error(rq, AVA_EINVALID, "'%s' is not a run id", idtext);
    const char *auth =
        evhttp_find_header(evhttp_request_get_input_headers(rq->ev), "Authorization");
    const char *token = auth && !strncmp(auth, "Bearer ", 7) ? auth + 7 : api_query(rq, "token");
    struct ava_run r;
    if (!token || !*token)
        return api_reply_error(rq, AVA_EUNAUTHORIZED, "send the run's AVA_REPORT_TOKEN");
    ava_sha256_hex(token, hash);
    if (ava_store_run_by_report_token(rq->api->st, run_id, hash, &r, NULL) < 0)
        return api_reply_error(rq, AVA_EUNAUTHORIZED, "the token is not this run's");
    if (ava_run_state_terminal(r.state))
        return api_reply_error(rq, AVA_ECONFLICT, "run %lld has ended", (long long)run_id);
    struct evbuffer *in = evhttp_request_get_input_buffer(rq->ev);
    size_t len = evbuffer_get_length(in);
    if (len > rq->api->cfg.max_body)
        return api_reply_error(rq, AVA_ETOOLARGE, "report body over %zu bytes",
                               rq->api->cfg.max_body);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    struct ava_point *pts = ava_xmalloc(REPORT_MAX_POINTS * sizeof *pts);
    json_t *rejected = json_array();
    size_t n = parse_report(body ? body : "", len, pts, REPORT_MAX_POINTS, rejected);
    int64_t now = ava_now_ms();
    for (size_t i = 0; i < n; i++)
        if (!pts[i].time_ms)
            pts[i].time_ms = now;
    int rc = n ? ava_store_metrics_ingest(rq->api->st, run_id, pts, n, -1, err) : 0;
    free(pts);
    if (rc < 0) {
        json_decref(rejected);
        return api_reply_error(rq, rc, "%s", err);
    }
    api_reply_json(
        rq, 200,
        json_pack("{s:i, s:I, s:o}", "code", 0, "accepted", (json_int_t)n, "rejected", rejected));
}
