/* logs.c: GET /trainings/NAME/logs: one run's byte range of the training log, or a chunked
 * stream that follows a live run and ends when the run ends. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/rundir.h"
#include "../common/strutil.h"
#include "../exec/exec.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FOLLOW_TICK_MS 100
#define FOLLOW_CHUNK_MAX (4 << 20)

/* One open `logs -f` stream. */
struct follow {
    struct ava_api *api;
    struct evhttp_request *ev;
    struct evhttp_connection *conn;
    int64_t training_id;
    int number;     /* the run followed */
    int64_t offset; /* next byte to send; -1 until the run's start is known */
    char run_dir[AVA_PATH_MAX];
    char log_path[AVA_PATH_MAX];
    struct event *timer;
    struct follow *next;
};

/* Where run r's part of the log starts and ends (-1 = unknown / open-ended). */
static void run_range(const char *run_dir, const struct ava_run *r, int64_t *start, int64_t *end) {
    struct ava_shim_info si;
    *start = r->log_start;
    *end = ava_run_state_terminal(r->state) ? r->log_end : -1;
    if (*start < 0 && ava_rundir_read_status(run_dir, &si, NULL) == 0)
        *start = si.log_start;
}

/* Appends bytes [from, to) of the log (to = -1: up to its end) to buf; returns the offset
 * reached. At most max bytes. */
static int64_t add_log_bytes(struct evbuffer *buf, const char *path, int64_t from, int64_t to,
                             int64_t max) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return from;
    }
    int64_t end = (to < 0 || to > st.st_size) ? st.st_size : to;
    if (end - from > max)
        end = from + max;
    if (end <= from) {
        close(fd);
        return from;
    }
    /* evbuffer_add_file takes the fd and closes it when done */
    if (evbuffer_add_file(buf, fd, from, end - from) < 0) {
        close(fd);
        return from;
    }
    return end;
}

/* Unlinks and frees a stream (its request is finished or gone). */
static void follow_free(struct follow *f) {
    for (struct follow **pp = &f->api->follows; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    event_free(f->timer);
    free(f);
}

/* The client went away: drop the stream without touching the request. */
static void on_close(struct evhttp_connection *conn, void *arg) {
    follow_free(arg);
}

/* Sends new bytes; ends the reply once the run has ended and everything is sent. */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    struct follow *f = arg;
    struct ava_run r;
    int64_t start = -1, end = -1;
    bool over = ava_store_run_get(f->api->st, f->training_id, f->number, &r, NULL) < 0;
    if (!over) {
        run_range(f->run_dir, &r, &start, &end);
        if (f->offset < 0)
            f->offset = start;
        over = ava_run_state_terminal(r.state);
    }
    struct evbuffer *buf = evbuffer_new();
    if (f->offset >= 0)
        f->offset = add_log_bytes(buf, f->log_path, f->offset, over ? end : -1, FOLLOW_CHUNK_MAX);
    if (evbuffer_get_length(buf))
        evhttp_send_reply_chunk(f->ev, buf);
    evbuffer_free(buf);
    bool more = over && f->offset >= 0 && end >= 0 && f->offset < end;
    if (over && !more) {
        evhttp_connection_set_closecb(f->conn, NULL, NULL);
        evhttp_send_reply_end(f->ev);
        follow_free(f);
        return;
    }
    struct timeval tv = {0, (more ? 0 : FOLLOW_TICK_MS) * 1000};
    evtimer_add(f->timer, &tv);
}

/* Starts streaming run r from offset (-1: from the run's start once known). */
static void start_follow(struct req *rq, const struct ava_training *t, const struct ava_run *r,
                         const char *run_dir, const char *log_path, int64_t offset) {
    struct follow *f = ava_xcalloc(1, sizeof *f);
    f->api = rq->api;
    f->ev = rq->ev;
    f->conn = evhttp_request_get_connection(rq->ev);
    f->training_id = t->id;
    f->number = r->number;
    f->offset = offset;
    snprintf(f->run_dir, sizeof f->run_dir, "%s", run_dir);
    snprintf(f->log_path, sizeof f->log_path, "%s", log_path);
    f->timer = evtimer_new(rq->api->base, on_tick, f);
    f->next = rq->api->follows;
    rq->api->follows = f;
    /* a follow may stay open for the whole run: lift the idle timeout of this connection */
    evhttp_connection_set_timeout(f->conn, 7 * 24 * 3600);
    evhttp_connection_set_closecb(f->conn, on_close, f);
    evhttp_add_header(evhttp_request_get_output_headers(rq->ev), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply_start(rq->ev, 200, "OK");
    on_tick(-1, 0, f);
}

void api_route_logs(struct req *rq, const struct ava_training *t) {
    const char *run_q = api_query(rq, "run"), *follow_q = api_query(rq, "follow");
    bool all = run_q && !strcmp(run_q, "all");
    bool follow = follow_q && (!strcmp(follow_q, "1") || !strcmp(follow_q, "true"));
    struct ava_run r;
    struct ava_run_paths paths;
    char err[AVA_ERRLEN];
    int64_t n = 0, start, end;
    if (run_q && !all && (ava_parse_uint(run_q, 1000000000, &n, err) < 0 || n == 0))
        return api_reply_error(rq, AVA_EINVALID, "run must be a run number (1, 2, ...) or all");
    int rc = n > 0 ? ava_store_run_get(rq->api->st, t->id, (int)n, &r, err)
                   : ava_store_run_latest(rq->api->st, t->id, &r, err);
    if (rc < 0)
        return api_reply_error(rq, rc, "training '%s': %s", t->name, err);
    rc = ava_exec_paths(rq->api->data_dir, t, r.number, &paths, err);
    if (rc < 0)
        return api_reply_error(rq, rc, "%s", err);
    run_range(paths.run_dir, &r, &start, &end);
    if (all) {
        start = 0;
        end = -1;
    }
    if (follow && !ava_run_state_terminal(r.state))
        return start_follow(rq, t, &r, paths.run_dir, paths.log_path, start);
    struct evbuffer *buf = evbuffer_new();
    if (start >= 0)
        add_log_bytes(buf, paths.log_path, start, end, INT64_MAX);
    evhttp_add_header(evhttp_request_get_output_headers(rq->ev), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply(rq->ev, 200, "OK", buf);
    evbuffer_free(buf);
}

void api_follow_free_all(struct ava_api *api) {
    while (api->follows) {
        struct follow *f = api->follows;
        evhttp_connection_set_closecb(f->conn, NULL, NULL);
        follow_free(f);
    }
}
