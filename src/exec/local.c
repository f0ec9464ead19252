/* local.c: the local executor: ava-shim spawned in its own session on this machine and
 * watched through a pidfd, so that a restarted avad can watch the same shims again. */
#include "exec.h"

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

/* One watched shim. */
struct watch {
    struct local_exec *owner;
    int64_t run_id;
    pid_t pid;
    int pidfd;
    bool child; /* spawned by this avad, so ours to reap */
    struct event *ev;
    struct watch *next;
};

struct local_exec {
    struct ava_executor base; /* first: the public view */
    struct event_base *evbase;
    char *shim_path;
    struct watch *watches;
};

/* Unlinks and frees a watch. */
static void watch_free(struct local_exec *le, struct watch *w) {
    for (struct watch **pp = &le->watches; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    event_free(w->ev);
    close(w->pidfd);
    free(w);
}

/* The pidfd became readable: the shim has exited. Reap it if it is ours and report. */
static void on_pidfd(evutil_socket_t fd, short what, void *arg) {
    struct watch *w = arg;
    struct local_exec *le = w->owner;
    int64_t run_id = w->run_id;
    if (w->child)
        waitpid(w->pid, NULL, WNOHANG);
    watch_free(le, w);
    le->base.done(le->base.done_ctx, run_id);
}

/* Starts watching pidfd for run_id. */
static void watch_add(struct local_exec *le, int64_t run_id, pid_t pid, int pidfd, bool child) {
    struct watch *w = ava_xcalloc(1, sizeof *w);
    w->owner = le;
    w->run_id = run_id;
    w->pid = pid;
    w->pidfd = pidfd;
    w->child = child;
    w->ev = event_new(le->evbase, pidfd, EV_READ, on_pidfd, w);
    event_add(w->ev, NULL);
    w->next = le->watches;
    le->watches = w;
}

/* Spawns ava-shim RUN_DIR in a new session with a clean signal state, stdout/stderr
 * appended to RUN_DIR/shim.log. */
static int spawn_shim(struct local_exec *le, const char *run_dir, pid_t *pid, char *err) {
    char logpath[AVA_PATH_MAX];
    int r = ava_path_join(logpath, sizeof logpath, err, run_dir, AVA_RUNDIR_SHIMLOG, NULL);
    if (r < 0)
        return r;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"ava-shim", (char *)run_dir, NULL};
    char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG=C.UTF-8", NULL};
    int e = posix_spawn(pid, le->shim_path, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (e != 0)
        return ava_err(err, AVA_EIO, "cannot start %s: %s", le->shim_path, strerror(e));
    return 0;
}

static int local_launch(struct ava_executor *ex, int64_t run_id, const char *run_dir, char *id,
                        size_t idlen, char *err) {
    struct local_exec *le = (struct local_exec *)ex;
    pid_t pid;
    int r = spawn_shim(le, run_dir, &pid, err);
    if (r < 0)
        return r;
    /* the child cannot be reaped before we return to the loop, so pid is still ours */
    uint64_t start = 0;
    ava_proc_start_time(pid, &start);
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return ava_err(err, AVA_EIO, "pidfd_open: %s", strerror(errno));
    }
    snprintf(id, idlen, "%d:%" PRIu64, (int)pid, start);
    watch_add(le, run_id, pid, pidfd, true);
    return 0;
}

static int local_stop(struct ava_executor *ex, int64_t run_id, char *err) {
    struct local_exec *le = (struct local_exec *)ex;
    for (struct watch *w = le->watches; w; w = w->next)
        if (w->run_id == run_id) {
            if (pidfd_send_signal(w->pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
                return ava_err(err, AVA_EIO, "cannot signal the run's shim: %s", strerror(errno));
            return 0;
        }
    return ava_err(err, AVA_ENOTFOUND, "the run's supervisor is not known to this avad");
}

static int local_attach(struct ava_executor *ex, int64_t run_id, const char *run_dir,
                        const char *id, char *err) {
    struct local_exec *le = (struct local_exec *)ex;
    int pid;
    uint64_t start, now;
    if (sscanf(id, "%d:%" SCNu64, &pid, &start) != 2 || pid <= 0)
        return ava_err(err, AVA_ENOTFOUND, "no shim recorded for the run");
    if (ava_proc_start_time(pid, &now) < 0 || now != start)
        return ava_err(err, AVA_ENOTFOUND, "shim %d is gone", pid);
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0)
        return ava_err(err, AVA_ENOTFOUND, "shim %d is gone", pid);
    /* pids are reused: check again now that the pidfd pins the process */
    if (ava_proc_start_time(pid, &now) < 0 || now != start) {
        close(pidfd);
        return ava_err(err, AVA_ENOTFOUND, "shim %d is gone (pid reused)", pid);
    }
    watch_add(le, run_id, pid, pidfd, false);
    return 0;
}

static void local_destroy(struct ava_executor *ex) {
    struct local_exec *le = (struct local_exec *)ex;
    while (le->watches)
        watch_free(le, le->watches);
    free(le->shim_path);
    free(le);
}

struct ava_executor *ava_exec_local_new(struct event_base *base, const char *shim_path,
                                        ava_exec_done_cb done, void *done_ctx) {
    struct local_exec *le = ava_xcalloc(1, sizeof *le);
    le->base.name = "local";
    le->base.launch = local_launch;
    le->base.stop = local_stop;
    le->base.attach = local_attach;
    le->base.destroy = local_destroy;
    le->base.done = done;
    le->base.done_ctx = done_ctx;
    le->evbase = base;
    le->shim_path = ava_xstrdup(shim_path);
    return &le->base;
}
