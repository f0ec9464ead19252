/* proc.c: spawning detached processes and watching them with pidfds (see proc.h). */
#include "proc.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/rundir.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

struct ava_proc {
    pid_t pid;
    int pidfd;
    bool child; /* spawned by this avad, so ours to reap */
    struct event *ev;
    ava_proc_done_cb cb;
    void *ctx;
};

/* The pidfd became readable: the process has exited. Reap it if it is ours and report. */
static void on_pidfd(evutil_socket_t fd, short what, void *arg) {
    struct ava_proc *p = arg;
    if (p->child)
        waitpid(p->pid, NULL, WNOHANG);
    p->cb(p->ctx);
    ava_proc_free(p);
}

/* Makes the watch object for a pinned process. */
static struct ava_proc *watch(struct event_base *base, pid_t pid, int pidfd, bool child,
                              ava_proc_done_cb cb, void *ctx) {
    struct ava_proc *p = ava_xcalloc(1, sizeof *p);
    p->pid = pid;
    p->pidfd = pidfd;
    p->child = child;
    p->cb = cb;
    p->ctx = ctx;
    p->ev = event_new(base, pidfd, EV_READ, on_pidfd, p);
    event_add(p->ev, NULL);
    return p;
}

int ava_proc_spawn(struct event_base *base, const char *path, char *const argv[],
                   const char *log_path, ava_proc_done_cb cb, void *ctx, char *id,
                   struct ava_proc **out, char *err) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_init(&at);
    sigset_t term, all;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &term);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG=C.UTF-8", NULL};
    pid_t pid;
    int e = posix_spawn(&pid, path, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (e != 0)
        return ava_err(err, AVA_EIO, "cannot start %s: %s", path, strerror(e));
    /* the child cannot be reaped before we return to the loop, so pid is still ours */
    uint64_t start = 0;
    ava_proc_start_time(pid, &start);
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0) {
        e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return ava_err(err, AVA_EIO, "pidfd_open: %s", strerror(e));
    }
    snprintf(id, AVA_PROC_ID_MAX, "%d:%" PRIu64, (int)pid, start);
    struct ava_proc *p = watch(base, pid, pidfd, true, cb, ctx);
    if (out)
        *out = p;
    return 0;
}

int ava_proc_attach(struct event_base *base, const char *id, ava_proc_done_cb cb, void *ctx,
                    struct ava_proc **out, char *err) {
    int pid;
    uint64_t start, now;
    if (!id || sscanf(id, "%d:%" SCNu64, &pid, &start) != 2 || pid <= 0)
        return ava_err(err, AVA_ENOTFOUND, "no process recorded");
    if (ava_proc_start_time(pid, &now) < 0 || now != start)
        return ava_err(err, AVA_ENOTFOUND, "process %d is gone", pid);
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0)
        return ava_err(err, AVA_ENOTFOUND, "process %d is gone", pid);
    /* pids are reused: check again now that the pidfd pins the process */
    if (ava_proc_start_time(pid, &now) < 0 || now != start) {
        close(pidfd);
        return ava_err(err, AVA_ENOTFOUND, "process %d is gone (pid reused)", pid);
    }
    struct ava_proc *p = watch(base, pid, pidfd, false, cb, ctx);
    if (out)
        *out = p;
    return 0;
}

int ava_proc_signal(struct ava_proc *p, int sig, char *err) {
    if (pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
        return ava_err(err, AVA_EIO, "cannot signal process %d: %s", (int)p->pid, strerror(errno));
    return 0;
}

void ava_proc_free(struct ava_proc *p) {
    if (!p)
        return;
    event_free(p->ev);
    close(p->pidfd);
    free(p);
}
