/* cmd.c: running command-line tools with captured output, blocking or on the event loop
 * (see cmd.h). The child gets a clean signal state (default actions, nothing blocked: avad
 * blocks some signals for itself) and no descriptor of avad's but its three standard ones. */
#include "cmd.h"

#include "../common/err.h"
#include "../common/timeutil.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ERR_KEEP 4096 /* stderr bytes kept to find the first line */

/* A running child and what it has written so far. */
struct child {
    pid_t pid;
    int out_fd, err_fd; /* -1 once at EOF */
    struct ava_cmd_result res;
    char errbuf[ERR_KEEP];
    size_t errlen;
};

bool ava_cmd_ok(const struct ava_cmd_result *r) {
    return r->spawned && !r->timed_out && !r->truncated && WIFEXITED(r->status) &&
           WEXITSTATUS(r->status) == 0;
}

int ava_cmd_fail(const char *what, const struct ava_cmd_result *r, char *err) {
    if (!r->spawned)
        return ava_err(err, AVA_EIO, "%s: cannot start it: %s", what, r->err_line);
    char how[64];
    if (r->timed_out)
        snprintf(how, sizeof how, "no answer in time (killed)");
    else if (r->truncated)
        snprintf(how, sizeof how, "more than %u bytes of output", AVA_CMD_OUT_MAX);
    else if (WIFSIGNALED(r->status))
        snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(r->status));
    else
        snprintf(how, sizeof how, "exit code %d", WEXITSTATUS(r->status));
    return ava_err(err, AVA_EUNAVAILABLE, "%s: %s%s%s", what, how, r->err_line[0] ? ": " : "",
                   r->err_line);
}

/* Starts argv with stdout and stderr on new pipes. Fills c; returns 0 or AVA_EIO. */
static int child_spawn(struct child *c, char *const argv[], char *err) {
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    memset(c, 0, sizeof *c);
    c->out_fd = c->err_fd = -1;
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0)
                close(out[i]);
            if (errp[i] >= 0)
                close(errp[i]);
        }
        snprintf(c->res.err_line, sizeof c->res.err_line, "pipe: %s", strerror(e));
        return ava_err(err, AVA_EIO, "%s: pipe: %s", argv[0], strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    posix_spawnattr_init(&at);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawnp(&c->pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    close(errp[1]);
    if (rc != 0) {
        close(out[0]);
        close(errp[0]);
        snprintf(c->res.err_line, sizeof c->res.err_line, "%s", strerror(rc));
        return ava_err(err, AVA_EIO, "%s: cannot start it: %s", argv[0], strerror(rc));
    }
    c->res.spawned = true;
    c->out_fd = out[0];
    c->err_fd = errp[0];
    fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(c->err_fd, F_SETFL, O_NONBLOCK);
    return 0;
}

/* Reads what fd *fdp has now; closes it and sets -1 at EOF. */
static void child_read(struct child *c, int *fdp) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(*fdp, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            close(*fdp);
            *fdp = -1;
            return;
        }
        if (fdp == &c->out_fd) {
            if (c->res.out.len + (size_t)n > AVA_CMD_OUT_MAX)
                c->res.truncated = true;
            else
                ava_buf_append(&c->res.out, buf, (size_t)n);
        } else {
            size_t room = sizeof c->errbuf - 1 - c->errlen, k = (size_t)n < room ? (size_t)n : room;
            memcpy(c->errbuf + c->errlen, buf, k);
            c->errlen += k;
        }
    }
}

/* Reaps the child (its pipes are at EOF, so it has ended or is about to) and fills err_line. */
static void child_finish(struct child *c) {
    while (waitpid(c->pid, &c->res.status, 0) < 0 && errno == EINTR) {
    }
    c->errbuf[c->errlen] = '\0';
    const char *p = c->errbuf;
    while (*p == '\n' || *p == '\r' || *p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    snprintf(c->res.err_line, sizeof c->res.err_line, "%.*s", (int)n, p);
}

int ava_cmd_run(char *const argv[], int64_t timeout_ms, struct ava_cmd_result *r, char *err) {
    struct child c;
    int rc = child_spawn(&c, argv, err);
    if (rc < 0) {
        *r = c.res;
        return rc;
    }
    int64_t deadline = ava_now_ms() + timeout_ms;
    while (c.out_fd >= 0 || c.err_fd >= 0) {
        struct pollfd p[2] = {{c.out_fd, POLLIN, 0}, {c.err_fd, POLLIN, 0}};
        int64_t left = deadline - ava_now_ms();
        if (left <= 0 && !c.res.timed_out) {
            kill(c.pid, SIGKILL); /* the pipes close once it is gone */
            c.res.timed_out = true;
        }
        if (poll(p, 2, left > 0 ? (int)left : 1000) < 0 && errno != EINTR)
            break;
        if (c.out_fd >= 0 && p[0].revents)
            child_read(&c, &c.out_fd);
        if (c.err_fd >= 0 && p[1].revents)
            child_read(&c, &c.err_fd);
    }
    if (c.out_fd >= 0)
        close(c.out_fd);
    if (c.err_fd >= 0)
        close(c.err_fd);
    child_finish(&c);
    *r = c.res;
    return 0;
}

/* An asynchronous command on the loop. */
struct async_cmd {
    struct child c;
    struct event *ev_out, *ev_err, *ev_timeout;
    ava_cmd_done_cb cb;
    void *ctx;
};

/* Ends the command once both pipes are at EOF: reaps it, calls back, frees. */
static void async_maybe_done(struct async_cmd *a) {
    if (a->c.out_fd >= 0 || a->c.err_fd >= 0)
        return;
    child_finish(&a->c);
    event_free(a->ev_out);
    event_free(a->ev_err);
    event_free(a->ev_timeout);
    a->cb(a->ctx, &a->c.res);
    ava_buf_free(&a->c.res.out);
    free(a);
}

/* A pipe is readable: takes what is there; at EOF stops watching it. */
static void on_async_read(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    struct async_cmd *a = arg;
    bool is_out = fd == a->c.out_fd;
    child_read(&a->c, is_out ? &a->c.out_fd : &a->c.err_fd);
    if ((is_out ? a->c.out_fd : a->c.err_fd) < 0) {
        event_del(is_out ? a->ev_out : a->ev_err);
        async_maybe_done(a);
    }
}

/* The command ran past its limit: kill it; its pipes then reach EOF. */
static void on_async_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct async_cmd *a = arg;
    a->c.res.timed_out = true;
    kill(a->c.pid, SIGKILL);
}

int ava_cmd_start(struct event_base *base, char *const argv[], int64_t timeout_ms,
                  ava_cmd_done_cb cb, void *ctx, char *err) {
    struct async_cmd *a = ava_xcalloc(1, sizeof *a);
    int rc = child_spawn(&a->c, argv, err);
    if (rc < 0) {
        free(a);
        return rc;
    }
    a->cb = cb;
    a->ctx = ctx;
    a->ev_out = event_new(base, a->c.out_fd, EV_READ | EV_PERSIST, on_async_read, a);
    a->ev_err = event_new(base, a->c.err_fd, EV_READ | EV_PERSIST, on_async_read, a);
    a->ev_timeout = evtimer_new(base, on_async_timeout, a);
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    event_add(a->ev_out, NULL);
    event_add(a->ev_err, NULL);
    event_add(a->ev_timeout, &tv);
    return 0;
}
