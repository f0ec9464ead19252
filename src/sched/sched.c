/* sched.c: FIFO scheduling of runs over the pool, the state machine written to the store
 * before each action, and the executor's end-of-run callback. */
#include "sched.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/log.h"
#include "../common/rundir.h"
#include "../common/sha256.h"
#include "../common/strutil.h"
#include "../common/timeutil.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One active (non-terminal) run, in FIFO order. */
struct entry {
    int64_t run_id, training_id;
    int number;
    enum ava_run_state state;
    int want_gpus, want_cpus;
    int64_t want_mem;
    bool allocated;
    struct ava_alloc alloc;
    bool submitted; /* queueing executor: the job exists */
    char gpus[128]; /* queueing executor: the devices the job got */
    char run_dir[AVA_PATH_MAX];
    struct entry *next;
};

struct ava_sched {
    struct ava_store *st;
    struct ava_pool *pool;
    struct ava_executor *ex;
    struct ava_sched_config cfg;
    struct entry *head; /* FIFO: queued runs keep their order, running ones stay in place */
    ava_sched_resolver_fn resolve;
    void *resolve_ctx;
    char *report_base, *python_path;
    ava_sched_end_fn on_end;
    void *on_end_ctx;
};

int ava_sched_new(struct ava_store *st, struct ava_pool *pool, struct ava_executor *ex,
                  const struct ava_sched_config *cfg, struct ava_sched **out, char *err) {
    if (!cfg->data_dir || cfg->data_dir[0] != '/')
        return ava_err(err, AVA_EINVALID, "the scheduler needs an absolute data dir");
    struct ava_sched *s = ava_xcalloc(1, sizeof *s);
    s->st = st;
    s->pool = pool;
    s->ex = ex;
    s->cfg = *cfg;
    if (ex->queues) {
        ex->started = ava_sched_on_started;
        ex->ended = ava_sched_on_ended;
    }
    *out = s;
    return 0;
}

void ava_sched_free(struct ava_sched *s) {
    if (!s)
        return;
    while (s->head) {
        struct entry *e = s->head;
        s->head = e->next;
        free(e);
    }
    free(s->report_base);
    free(s->python_path);
    free(s);
}

void ava_sched_set_run_env(struct ava_sched *s, const char *report_base, const char *python_path) {
    free(s->report_base);
    free(s->python_path);
    s->report_base = report_base ? ava_xstrdup(report_base) : NULL;
    s->python_path = python_path ? ava_xstrdup(python_path) : NULL;
}

void ava_sched_set_end_hook(struct ava_sched *s, ava_sched_end_fn fn, void *ctx) {
    s->on_end = fn;
    s->on_end_ctx = ctx;
}

void ava_sched_set_resolver(struct ava_sched *s, ava_sched_resolver_fn fn, void *ctx) {
    s->resolve = fn;
    s->resolve_ctx = ctx;
}

const char *ava_sched_executor(const struct ava_sched *s) {
    return s->ex->name;
}

const struct ava_pool *ava_sched_pool(const struct ava_sched *s) {
    return s->pool;
}

/* Appends e at the tail of the FIFO. */
static void entry_append(struct ava_sched *s, struct entry *e) {
    struct entry **pp = &s->head;
    while (*pp)
        pp = &(*pp)->next;
    e->next = NULL;
    *pp = e;
}

/* Unlinks e, returns its resources to the pool and frees it. */
static void entry_remove(struct ava_sched *s, struct entry *e) {
    for (struct entry **pp = &s->head; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    if (e->allocated)
        ava_pool_release(s->pool, &e->alloc);
    free(e);
}

static struct entry *entry_find_run(struct ava_sched *s, int64_t run_id) {
    for (struct entry *e = s->head; e; e = e->next)
        if (e->run_id == run_id)
            return e;
    return NULL;
}

/* Stores r's move to state `to` with reason, at time `at`, in one transaction. */
static int store_move(struct ava_sched *s, struct ava_run *r, enum ava_run_state to, int64_t at,
                      const char *reason, char *err) {
    r->state = to;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    int rc = ava_store_begin(s->st, err);
    if (rc == 0)
        rc = ava_store_run_transition(s->st, r, at, err);
    if (rc == 0)
        rc = ava_store_commit(s->st, err);
    if (rc < 0)
        ava_store_rollback(s->st);
    return rc;
}

/* Makes a new entry for run r of training t and fills its run dir path. */
static struct entry *entry_new(struct ava_sched *s, const struct ava_training *t,
                               const struct ava_run *r, struct ava_run_paths *paths, char *err) {
    if (ava_exec_paths(s->cfg.data_dir, t, r->number, paths, err) < 0)
        return NULL;
    struct entry *e = ava_xcalloc(1, sizeof *e);
    e->run_id = r->id;
    e->training_id = t->id;
    e->number = r->number;
    e->state = r->state;
    e->want_gpus = t->gpus;
    e->want_cpus = t->cpus;
    e->want_mem = t->mem_bytes;
    snprintf(e->run_dir, sizeof e->run_dir, "%s", paths->run_dir);
    return e;
}

/* Ends a run that could not be started: failed with "start error: msg". */
static void fail_start(struct ava_sched *s, struct ava_run *r, const char *msg) {
    char reason[AVA_ERRLEN + 16], err[AVA_ERRLEN];
    snprintf(reason, sizeof reason, "start error: %s", msg);
    r->ended_at = ava_now_ms();
    if (store_move(s, r, AVA_RUN_FAILED, r->ended_at, reason, err) < 0)
        ava_log_error("run %lld: cannot store failure: %s", (long long)r->id, err);
}

/* Describes an allocation for the running event ("GPUs 0,1", "2 CPUs"). */
static void describe_alloc(const struct entry *e, const char *gpus, char *out, size_t outlen) {
    if (e->want_gpus > 0)
        snprintf(out, outlen, "resources allocated: GPU%s %s", e->want_gpus > 1 ? "s" : "", gpus);
    else
        snprintf(out, outlen, "resources allocated: %d CPU%s", e->want_cpus,
                 e->want_cpus == 1 ? "" : "s");
}

/* Finds a train or val set through the resolver. */
static int resolve_set(struct ava_sched *s, const char *what, const char *ref, int64_t group_id,
                       char *dir, size_t dirlen, char **info, char *err) {
    char e2[AVA_ERRLEN];
    if (!s->resolve)
        return ava_err(err, AVA_EUNAVAILABLE, "%s set %s: datasets are not available", what, ref);
    int r = s->resolve(s->resolve_ctx, ref, group_id, dir, dirlen, info, e2);
    return r < 0 ? ava_err(err, r, "%s set: %s", what, e2) : 0;
}

/* Rewrites a path below avad's data dir (in place) as the nodes see it: the node data dir
 * instead of the data dir. Paths elsewhere are left as they are. */
static int node_path(struct ava_sched *s, char *path, size_t cap, char *err) {
    size_t dl = strlen(s->cfg.data_dir);
    if (strncmp(path, s->cfg.data_dir, dl) != 0 || (path[dl] != '/' && path[dl] != '\0'))
        return 0;
    char tmp[AVA_PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s%s", s->cfg.node_data_dir, path + dl);
    if (n < 0 || (size_t)n >= cap || (size_t)n >= sizeof tmp)
        return ava_err(err, AVA_ETOOLARGE, "the node's path of %s is too long", path);
    memcpy(path, tmp, (size_t)n + 1);
    return 0;
}

/* Writes what the shim needs to launch e: the image's environment, the sets, spec.json. */
static int prepare_launch(struct ava_sched *s, const struct entry *e, const struct ava_training *t,
                          const char *gpus, char *err) {
    struct ava_image img = {0};
    struct ava_run_paths paths;
    char tdir[AVA_PATH_MAX], vdir[AVA_PATH_MAX], iname[66] = "";
    char *tinfo = NULL, *vinfo = NULL, *colon = strchr(t->image, ':');
    snprintf(iname, sizeof iname, "%.*s", colon ? (int)(colon - t->image) : 0, t->image);
    int rc = ava_store_image_find(s->st, iname, colon ? colon + 1 : "", t->group_id, &img, err);
    if (rc == 0)
        rc = ava_exec_paths(s->cfg.data_dir, t, e->number, &paths, err);
    if (rc == 0 && t->train_set)
        rc = resolve_set(s, "train", t->train_set, t->group_id, tdir, sizeof tdir, &tinfo, err);
    if (rc == 0 && t->val_set)
        rc = resolve_set(s, "val", t->val_set, t->group_id, vdir, sizeof vdir, &vinfo, err);
    struct ava_run_paths npaths;
    bool mapped = s->cfg.node_data_dir && strcmp(s->cfg.node_data_dir, s->cfg.data_dir) != 0;
    if (rc == 0 && mapped) {
        rc = ava_exec_paths(s->cfg.node_data_dir, t, e->number, &npaths, err);
        if (rc == 0 && tinfo)
            rc = node_path(s, tdir, sizeof tdir, err);
        if (rc == 0 && vinfo)
            rc = node_path(s, vdir, sizeof vdir, err);
    }
    char token[45] = "", hash[65], url[512] = "";
    if (rc == 0 && s->report_base && ava_token_new(token) == 0) {
        /* a token valid for this run only: the HTTP report endpoint checks it */
        ava_sha256_hex(token, hash);
        rc = ava_store_run_set_report_token(s->st, e->run_id, hash, err);
        snprintf(url, sizeof url, "%s/v1/report/trainings/%lld/metric", s->report_base,
                 (long long)e->run_id);
    }
    struct ava_prepare p = {.training = t,
                            .number = e->number,
                            .paths = &paths,
                            .node_paths = mapped ? &npaths : NULL,
                            .inherit_env = s->ex->inherit_env,
                            .image_env_json = img.env_json,
                            .gpus = gpus,
                            .grace_ms = s->cfg.grace_ms,
                            .train_dir = tinfo ? tdir : NULL,
                            .val_dir = vinfo ? vdir : NULL,
                            .train_info = tinfo,
                            .val_info = vinfo,
                            .metrics_parser =
                                t->metrics_parser ? t->metrics_parser : img.metrics_parser,
                            .metric_rules_json = t->metric_rules_json,
                            .report_token = token[0] ? token : NULL,
                            .report_url = url[0] ? url : NULL,
                            .python_path = s->python_path};
    if (rc == 0)
        rc = ava_exec_prepare(&p, err);
    free(tinfo);
    free(vinfo);
    ava_image_free(&img);
    return rc;
}

/* Launches queued entry e, which already holds its allocation. Returns false when the run
 * ended failed instead (its entry is then removed). */
static bool launch(struct ava_sched *s, struct entry *e) {
    char err[AVA_ERRLEN], gpus[128], reason[256], id[64] = "";
    struct ava_training t = {0};
    struct ava_run r;
    if (ava_store_run_get(s->st, e->training_id, e->number, &r, err) < 0 ||
        ava_store_training_get(s->st, e->training_id, &t, err) < 0) {
        ava_log_error("run %lld vanished: %s", (long long)e->run_id, err);
        entry_remove(s, e);
        return false;
    }
    ava_pool_gpu_list(s->pool, &e->alloc, gpus, sizeof gpus);
    int rc = prepare_launch(s, e, &t, gpus, err);
    if (rc == 0) {
        describe_alloc(e, gpus, reason, sizeof reason);
        r.started_at = ava_now_ms();
        snprintf(r.gpus, sizeof r.gpus, "%s", gpus);
        r.cpus = e->alloc.cpus;
        r.mem_bytes = e->alloc.mem;
        snprintf(r.executor, sizeof r.executor, "%s", s->ex->name);
        rc = store_move(s, &r, AVA_RUN_RUNNING, r.started_at, reason, err);
        if (rc == 0)
            e->state = AVA_RUN_RUNNING;
    }
    if (rc == 0 && (rc = s->ex->launch(s->ex, e->run_id, e->run_dir, id, sizeof id, err)) == 0)
        ava_store_run_set_executor(s->st, e->run_id, s->ex->name, id, NULL);
    if (rc < 0)
        fail_start(s, &r, err);
    ava_training_free(&t);
    if (rc < 0) {
        entry_remove(s, e);
        return false;
    }
    return true;
}

/* Hands queued entry e to a queueing executor (Slurm), which decides when it runs; the run
 * stays queued until the executor reports it started. Returns false when the run ended
 * failed instead (its entry is then removed). */
static bool submit(struct ava_sched *s, struct entry *e) {
    char err[AVA_ERRLEN], id[64] = "", reason[160];
    struct ava_training t = {0};
    struct ava_run r;
    struct ava_run_paths np;
    if (ava_store_run_get(s->st, e->training_id, e->number, &r, err) < 0 ||
        ava_store_training_get(s->st, e->training_id, &t, err) < 0) {
        ava_log_error("run %lld vanished: %s", (long long)e->run_id, err);
        entry_remove(s, e);
        return false;
    }
    const char *ddir = s->cfg.node_data_dir ? s->cfg.node_data_dir : s->cfg.data_dir;
    int rc = prepare_launch(s, e, &t, "", err);
    if (rc == 0)
        rc = ava_exec_paths(ddir, &t, e->number, &np, err);
    if (rc == 0) {
        struct ava_job_request req = {.training = t.name,
                                      .number = e->number,
                                      .gpus = t.gpus,
                                      .cpus = t.cpus,
                                      .mem_bytes = t.mem_bytes,
                                      .max_runtime_ms = t.max_runtime_ms,
                                      .grace_ms = s->cfg.grace_ms,
                                      .run_dir = np.run_dir,
                                      .log_path = np.log_path};
        rc = s->ex->submit(s->ex, e->run_id, e->run_dir, &req, id, sizeof id, err);
    }
    if (rc == 0) {
        e->submitted = true;
        ava_store_run_set_executor(s->st, e->run_id, s->ex->name, id, NULL);
        snprintf(reason, sizeof reason, "submitted to %s as job %s", s->ex->name, id);
        ava_store_run_add_event(s->st, e->run_id, ava_now_ms(), "queued", reason, NULL);
    } else {
        fail_start(s, &r, err);
        entry_remove(s, e);
    }
    ava_training_free(&t);
    return rc == 0;
}

/* Starts queued runs in FIFO order while the head of the queue fits; with a queueing
 * executor, submits every queued run at once instead. */
static void tick(struct ava_sched *s) {
    if (s->ex->queues) {
        for (struct entry *e = s->head, *next; e; e = next) {
            next = e->next;
            if (e->state == AVA_RUN_QUEUED && !e->submitted)
                submit(s, e);
        }
        return;
    }
    struct entry *e = s->head;
    while (e) {
        struct entry *next = e->next;
        if (e->state == AVA_RUN_QUEUED) {
            if (!ava_pool_try_alloc(s->pool, e->want_gpus, e->want_cpus, e->want_mem, &e->alloc))
                return; /* strict FIFO: nobody overtakes the head */
            e->allocated = true;
            launch(s, e);
        }
        e = next;
    }
}

int ava_sched_start(struct ava_sched *s, int64_t training_id, const char *who, struct ava_run *out,
                    char *err) {
    struct ava_training t;
    struct ava_run r;
    struct ava_run_paths paths;
    int rc = ava_store_training_get(s->st, training_id, &t, err);
    if (rc < 0)
        return rc;
    if (ava_store_run_latest(s->st, training_id, &r, NULL) == 0 &&
        !ava_run_state_terminal(r.state)) {
        rc = ava_err(err, AVA_ECONFLICT, "training '%s' is already active (run %d is %s)", t.name,
                     r.number, ava_run_state_str(r.state));
        ava_training_free(&t);
        return rc;
    }
    char reason[128];
    snprintf(reason, sizeof reason, "start requested by %s", who);
    int64_t now = ava_now_ms();
    rc = ava_store_begin(s->st, err);
    if (rc == 0)
        rc = ava_store_run_create(s->st, training_id, reason, now, &r, err);
    if (rc == 0)
        rc = ava_store_commit(s->st, err);
    if (rc < 0) {
        ava_store_rollback(s->st);
        ava_training_free(&t);
        return rc;
    }
    char perr[AVA_ERRLEN];
    struct entry *e = entry_new(s, &t, &r, &paths, perr);
    struct ava_prepare p = {
        .training = &t, .number = r.number, .paths = &paths, .grace_ms = s->cfg.grace_ms};
    if (!e || ava_exec_prepare(&p, perr) < 0) {
        fail_start(s, &r, perr);
        free(e);
    } else {
        r.queued_at = ava_now_ms();
        if (store_move(s, &r, AVA_RUN_QUEUED, r.queued_at, "waiting for resources", perr) < 0) {
            ava_log_error("run %lld: %s", (long long)r.id, perr);
            free(e);
        } else {
            e->state = AVA_RUN_QUEUED;
            entry_append(s, e);
            tick(s);
        }
    }
    ava_training_free(&t);
    if (out)
        return ava_store_run_get(s->st, training_id, r.number, out, err);
    return 0;
}

int ava_sched_stop(struct ava_sched *s, int64_t training_id, const char *who, char *err) {
    struct ava_run r;
    if (ava_store_run_latest(s->st, training_id, &r, NULL) < 0)
        return ava_err(err, AVA_ECONFLICT, "the training is not active (it has never run)");
    if (ava_run_state_terminal(r.state))
        return ava_err(err, AVA_ECONFLICT, "the training is not active (run %d is %s)", r.number,
                       ava_run_state_str(r.state));
    struct entry *e = entry_find_run(s, r.id);
    char reason[128];
    if (r.state == AVA_RUN_STOPPING)
        return 0; /* already on its way; asking twice is not an error */
    if (r.state == AVA_RUN_CREATING || r.state == AVA_RUN_QUEUED) {
        if (e && e->submitted) {
            /* the job must be gone before the run may say stopped */
            int rc = s->ex->stop(s->ex, r.id, err);
            if (rc < 0)
                return rc;
        }
        snprintf(reason, sizeof reason, "stopped by %s before it started", who);
        r.ended_at = ava_now_ms();
        int rc = store_move(s, &r, AVA_RUN_STOPPED, r.ended_at, reason, err);
        if (rc < 0)
            return rc;
        if (e)
            entry_remove(s, e);
        tick(s); /* the head of the queue may have changed */
        return 0;
    }
    snprintf(reason, sizeof reason, "stop requested by %s", who);
    int rc = store_move(s, &r, AVA_RUN_STOPPING, ava_now_ms(), reason, err);
    if (rc < 0)
        return rc;
    if (e)
        e->state = AVA_RUN_STOPPING;
    char serr[AVA_ERRLEN];
    if (s->ex->stop(s->ex, r.id, serr) < 0)
        ava_log_warn("run %lld: %s", (long long)r.id, serr);
    return 0;
}

/* Stores the final state without an exit record: what the executor said (fb_state, a
 * workload manager's view) or failed/lost. A job that "completed" without the shim's record
 * did not run the training to its end as far as ava can tell: failed too. */
static void store_fallback(struct ava_sched *s, struct ava_run *r, const char *rerr,
                           const char *fb_state, const char *fb_reason) {
    char err[AVA_ERRLEN], reason[AVA_ERRLEN + 320];
    enum ava_run_state final = AVA_RUN_FAILED;
    if (fb_state && ava_run_state_parse(fb_state, &final) == 0 && final != AVA_RUN_SUCCEEDED &&
        ava_run_state_terminal(final)) {
        snprintf(reason, sizeof reason, "%s", fb_reason ? fb_reason : fb_state);
        if (r->state == AVA_RUN_QUEUED && final == AVA_RUN_TIMED_OUT)
            final = AVA_RUN_FAILED; /* a queued run cannot have used up its time */
    } else if (fb_state) {
        final = AVA_RUN_FAILED;
        snprintf(reason, sizeof reason, "lost: %s, but the supervisor left no exit record (%s)",
                 fb_reason ? fb_reason : fb_state, rerr);
    } else {
        snprintf(reason, sizeof reason, "lost: the supervisor ended without an exit record (%s)",
                 rerr);
    }
    r->ended_at = ava_now_ms();
    if (store_move(s, r, final, r->ended_at, reason, err) < 0)
        ava_log_error("run %lld: %s", (long long)r->id, err);
}

/* Stores the outcome the shim left in the run dir, else the executor's view (fb_state and
 * fb_reason, may be NULL), else failed/lost. */
static void store_outcome(struct ava_sched *s, struct entry *e, struct ava_run *r,
                          const char *fb_state, const char *fb_reason) {
    struct ava_exit_record er;
    char err[AVA_ERRLEN], rerr[AVA_ERRLEN];
    enum ava_run_state final;
    if (ava_rundir_read_exit(e->run_dir, &er, rerr) < 0 ||
        ava_run_state_parse(er.state, &final) < 0)
        return store_fallback(s, r, rerr, fb_state, fb_reason);
    if (r->state == AVA_RUN_QUEUED) {
        /* a queueing executor's job ran and ended between two looks: record its start */
        r->started_at = er.started_at ? er.started_at : er.ended_at;
        if (store_move(s, r, AVA_RUN_RUNNING, r->started_at, "started", err) < 0)
            ava_log_error("run %lld: %s", (long long)r->id, err);
    }
    if (er.stopping_at && r->state == AVA_RUN_RUNNING) {
        /* the shim began the ending on its own (the time limit): record that step too */
        if (store_move(s, r, AVA_RUN_STOPPING, er.stopping_at,
                       final == AVA_RUN_TIMED_OUT ? er.reason : "stop requested", err) < 0)
            ava_log_error("run %lld: %s", (long long)r->id, err);
    }
    r->has_exit = true;
    r->exit_code = er.exit_code;
    r->signal = er.signal;
    r->ended_at = er.ended_at;
    r->log_start = er.log_start;
    r->log_end = er.log_end;
    if (store_move(s, r, final, er.ended_at, er.reason, err) < 0)
        ava_log_error("run %lld: %s", (long long)r->id, err);
}

/* A run's supervisor or job has ended: ingest hook, final state, resources, queue. */
static void run_ended(struct ava_sched *s, int64_t run_id, const char *fb_state,
                      const char *fb_reason) {
    struct entry *e = entry_find_run(s, run_id);
    if (!e)
        return;
    struct ava_run r;
    char err[AVA_ERRLEN];
    if (s->on_end)
        s->on_end(s->on_end_ctx, run_id, e->run_dir);
    if (ava_store_run_get(s->st, e->training_id, e->number, &r, err) == 0 &&
        !ava_run_state_terminal(r.state))
        store_outcome(s, e, &r, fb_state, fb_reason);
    entry_remove(s, e);
    tick(s);
}

void ava_sched_on_done(void *ctx, int64_t run_id) {
    run_ended(ctx, run_id, NULL, NULL);
}

void ava_sched_on_ended(void *ctx, int64_t run_id, const char *state, const char *reason) {
    run_ended(ctx, run_id, state, reason);
}

void ava_sched_on_started(void *ctx, int64_t run_id, const char *node, const char *gpus) {
    struct ava_sched *s = ctx;
    struct entry *e = entry_find_run(s, run_id);
    struct ava_run r;
    char err[AVA_ERRLEN], reason[256];
    if (!e || ava_store_run_get(s->st, e->training_id, e->number, &r, err) < 0)
        return;
    if (node && *node && strcmp(r.node, node) != 0)
        ava_store_run_set_node(s->st, run_id, node, NULL);
    if (e->state != AVA_RUN_QUEUED)
        return; /* re-attached after a restart: it was running already */
    snprintf(e->gpus, sizeof e->gpus, "%s", gpus ? gpus : "");
    snprintf(r.gpus, sizeof r.gpus, "%s", e->gpus);
    r.cpus = e->want_cpus;
    r.mem_bytes = e->want_mem;
    r.started_at = ava_now_ms();
    snprintf(reason, sizeof reason, "running on %s (%s job %s)%s%s", node && *node ? node : "?",
             s->ex->name, r.executor_id, e->gpus[0] ? ", GPUs " : "", e->gpus);
    if (store_move(s, &r, AVA_RUN_RUNNING, r.started_at, reason, err) < 0)
        ava_log_error("run %lld: %s", (long long)run_id, err);
    else
        e->state = AVA_RUN_RUNNING;
}

/* Puts one stored active run back under the scheduler's control. Returns the entry of a
 * running run whose supervisor is gone (to be finished by the caller), else NULL. */
static struct entry *restore_one(struct ava_sched *s, struct ava_run *r) {
    struct ava_training t;
    struct ava_run_paths paths;
    char err[AVA_ERRLEN];
    if (ava_store_training_get(s->st, r->training_id, &t, err) < 0) {
        ava_log_error("run %lld: %s", (long long)r->id, err);
        return NULL;
    }
    struct entry *e = entry_new(s, &t, r, &paths, err);
    struct ava_prepare p = {
        .training = &t, .number = r->number, .paths = &paths, .grace_ms = s->cfg.grace_ms};
    struct entry *gone = NULL;
    if (!e) {
        fail_start(s, r, err);
    } else if (r->state == AVA_RUN_CREATING) {
        /* avad died while preparing: prepare again and queue */
        r->queued_at = ava_now_ms();
        if (ava_exec_prepare(&p, err) < 0 ||
            store_move(s, r, AVA_RUN_QUEUED, r->queued_at, "waiting for resources", err) < 0) {
            fail_start(s, r, err);
            free(e);
        } else {
            e->state = AVA_RUN_QUEUED;
            entry_append(s, e);
        }
    } else if (r->state == AVA_RUN_QUEUED) {
        entry_append(s, e);
        /* a job submitted by the earlier avad is watched again, not submitted twice */
        if (s->ex->queues && r->executor_id[0] &&
            s->ex->attach(s->ex, r->id, e->run_dir, r->executor_id, err) == 0)
            e->submitted = true;
    } else {
        if (s->ex->queues) {
            e->submitted = true;
            snprintf(e->gpus, sizeof e->gpus, "%s", r->gpus);
        } else {
            ava_pool_claim(s->pool, r->gpus, r->cpus, r->mem_bytes, &e->alloc);
            e->allocated = true;
        }
        entry_append(s, e);
        if (s->ex->attach(s->ex, r->id, e->run_dir, r->executor_id, err) < 0) {
            ava_log_warn("run %lld (%s run %d): %s", (long long)r->id, t.name, r->number, err);
            gone = e;
        } else {
            ava_log_info("re-attached to %s run %d (%s)", t.name, r->number, r->executor_id);
        }
    }
    ava_training_free(&t);
    return gone;
}

int ava_sched_restore(struct ava_sched *s, char *err) {
    struct ava_run *runs;
    size_t n;
    int rc = ava_store_run_list_active(s->st, &runs, &n, err);
    if (rc < 0)
        return rc;
    struct entry **gone = ava_xcalloc(n + 1, sizeof *gone);
    size_t ngone = 0;
    for (size_t i = 0; i < n; i++) {
        struct entry *e = restore_one(s, &runs[i]);
        if (e)
            gone[ngone++] = e;
    }
    /* finish the runs whose shim ended while avad was down, from their exit records */
    for (size_t i = 0; i < ngone; i++)
        ava_sched_on_done(s, gone[i]->run_id);
    free(gone);
    free(runs);
    tick(s);
    return 0;
}

void ava_sched_each(const struct ava_sched *s, void (*fn)(void *, const struct ava_sched_holder *),
                    void *ctx) {
    for (const struct entry *e = s->head; e; e = e->next) {
        struct ava_sched_holder h = {.training_id = e->training_id,
                                     .run_id = e->run_id,
                                     .number = e->number,
                                     .state = e->state,
                                     .run_dir = e->run_dir};
        if (e->allocated) {
            ava_pool_gpu_list(s->pool, &e->alloc, h.gpus, sizeof h.gpus);
            h.cpus = e->alloc.cpus;
            h.mem = e->alloc.mem;
        } else if (s->ex->queues && e->state != AVA_RUN_QUEUED) {
            snprintf(h.gpus, sizeof h.gpus, "%s", e->gpus);
            h.cpus = e->want_cpus;
            h.mem = e->want_mem;
        }
        fn(ctx, &h);
    }
}

int ava_sched_queued(const struct ava_sched *s) {
    int n = 0;
    for (const struct entry *e = s->head; e; e = e->next)
        n += e->state == AVA_RUN_QUEUED;
    return n;
}
