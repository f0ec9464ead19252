/* local.c: the local executor: ava-shim spawned on this machine as a detached process
 * (proc.h), so that a restarted avad can watch the same shims again. */
#include "exec.h"
#include "proc.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/rundir.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One watched shim. */
struct watch {
    struct local_exec *owner;
    int64_t run_id;
    struct ava_proc *proc;
    struct watch *next;
};

struct local_exec {
    struct ava_executor base; /* first: the public view */
    struct event_base *evbase;
    char *shim_path;
    struct watch *watches;
};

/* Unlinks and frees a watch (not its process). */
static void watch_unlink(struct local_exec *le, struct watch *w) {
    for (struct watch **pp = &le->watches; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    free(w);
}

/* The shim has exited: forget it and tell the scheduler. */
static void on_exit_of_shim(void *arg) {
    struct watch *w = arg;
    struct local_exec *le = w->owner;
    int64_t run_id = w->run_id;
    watch_unlink(le, w); /* proc.c frees the process watch itself */
    le->base.done(le->base.done_ctx, run_id);
}

/* A new watch record for run_id, linked in. */
static struct watch *watch_new(struct local_exec *le, int64_t run_id) {
    struct watch *w = ava_xcalloc(1, sizeof *w);
    w->owner = le;
    w->run_id = run_id;
    w->next = le->watches;
    le->watches = w;
    return w;
}

static int local_launch(struct ava_executor *ex, int64_t run_id, const char *run_dir, char *id,
                        size_t idlen, char *err) {
    struct local_exec *le = (struct local_exec *)ex;
    char logpath[AVA_PATH_MAX], pid_id[AVA_PROC_ID_MAX];
    int r = ava_path_join(logpath, sizeof logpath, err, run_dir, AVA_RUNDIR_SHIMLOG, NULL);
    if (r < 0)
        return r;
    char *argv[] = {"ava-shim", (char *)run_dir, NULL};
    struct watch *w = watch_new(le, run_id);
    r = ava_proc_spawn(le->evbase, le->shim_path, argv, logpath, on_exit_of_shim, w, pid_id,
                       &w->proc, err);
    if (r < 0) {
        watch_unlink(le, w);
        return r;
    }
    snprintf(id, idlen, "%s", pid_id);
    return 0;
}

static int local_stop(struct ava_executor *ex, int64_t run_id, char *err) {
    struct local_exec *le = (struct local_exec *)ex;
    for (struct watch *w = le->watches; w; w = w->next)
        if (w->run_id == run_id)
            return ava_proc_signal(w->proc, SIGTERM, err);
    return ava_err(err, AVA_ENOTFOUND, "the run's supervisor is not known to this avad");
}

static int local_attach(struct ava_executor *ex, int64_t run_id, const char *run_dir,
                        const char *id, char *err) {
    struct local_exec *le = (struct local_exec *)ex;
    struct watch *w = watch_new(le, run_id);
    int r = ava_proc_attach(le->evbase, id, on_exit_of_shim, w, &w->proc, err);
    if (r < 0)
        watch_unlink(le, w);
    return r;
}

static void local_destroy(struct ava_executor *ex) {
    struct local_exec *le = (struct local_exec *)ex;
    while (le->watches) {
        ava_proc_free(le->watches->proc);
        watch_unlink(le, le->watches);
    }
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
