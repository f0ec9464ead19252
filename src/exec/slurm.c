/* slurm.c: the Slurm executor. A run becomes a batch job whose script execs ava-shim on the
 * node, so logs, metrics, outputs and the exit record behave exactly as with the local
 * executor; Slurm does the queueing. avad learns what happened by polling `squeue --json`
 * on the event loop (the command runs beside the loop, not in it), falling back to
 * `scontrol show job -o` per job when squeue's JSON cannot be had.
 *
 * Seeing a job start: the batch script's first act, before it execs the shim, is to write
 * RUN_DIR/slurm-started (the node's name and CUDA_VISIBLE_DEVICES) with a shell builtin. avad
 * looks for that file (a stat, no Slurm RPC) every 1/64 of the youngest pending job's age,
 * at least every 5 ms and at most every 250 ms, so `running` follows the job's real start by
 * a few ms without loading slurmctld. squeue is the authority for everything else (and sees
 * starts too, where the shared storage shows new files late): it is asked again after 1/16
 * of the youngest pending job's age, at least poll_ms and at most 2 s later; running jobs are
 * looked at every 2 s; without jobs nothing is polled. A job usually starts within a
 * scheduling pass of its submission or waits much longer, so a long queue costs one squeue
 * per 2 s. Ends are seen the same way: the shim's exit record (its last act) is looked for
 * every 250 ms; squeue, every 2 s, sees the ends that leave no record. A job that squeue no longer
 * lists has ended (Slurm forgets finished jobs after MinJobAge); the scheduler then trusts the run
 * dir's exit record and falls back to what Slurm said last.
 *
 * Stop: a pending job is cancelled; a running one gets SIGTERM on its batch step only
 * (`scancel --batch --signal=TERM`), which is ava-shim, so the shim applies the grace period
 * and writes the exit record as it does locally; should the job still run grace + 30 s
 * later, it is cancelled outright. */
#include "exec.h"

#include "cmd.h"
#include "slurm.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/log.h"
#include "../common/path.h"
#include "../common/rundir.h"
#include "../common/timeutil.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLL_MAX_MS 2000
#define POLL_AGE_DIVISOR 16
#define MARKER "slurm-started" /* written by the batch script as it starts */
#define MARKER_MIN_MS 5
#define MARKER_MAX_MS 250
#define MARKER_AGE_DIVISOR 64
#define EXIT_CHECK_MS 250
#define HARD_CANCEL_AFTER_MS 30000 /* past the grace period */
#define ARGV_MAX 64

/* A job avad watches. */
struct job {
    int64_t run_id;
    char id[32];
    bool started;     /* seen running (and reported) */
    int64_t stop_at;  /* when SIGTERM was sent, 0 = never */
    int64_t grace_ms; /* the run's grace period */
    bool hard_sent;   /* scancel without a signal sent */
    uint64_t gen;     /* the newest poll begun when it was added: an older answer cannot know it */
    int64_t added_at; /* when it was submitted or attached */
    char run_dir[AVA_PATH_MAX]; /* as avad sees it */
    struct job *next;
};

struct slurm_exec {
    struct ava_executor base; /* first: the public view */
    struct event_base *evbase;
    char *shim_path, *partition, *account;
    char **extra; /* extra sbatch arguments */
    int64_t poll_ms, cmd_timeout_ms;
    struct job *jobs;
    struct event *timer;  /* squeue */
    struct event *mtimer; /* looks for start markers and exit records */
    bool polling;         /* a squeue is in flight */
    uint64_t poll_gen;    /* polls begun so far */
    bool destroyed;       /* destroy came while polling: the poll's callback frees */
};

/* What the shim takes from the node's environment: the devices Slurm gave the job and the
 * job's identity, which MPI launchers and users' scripts look for. */
static const char *const slurm_inherit[] = {"CUDA_VISIBLE_DEVICES",
                                            "SLURM_JOB_ID",
                                            "SLURM_JOB_NODELIST",
                                            "SLURMD_NODENAME",
                                            "SLURM_CPUS_PER_TASK",
                                            "SLURM_JOB_GPUS",
                                            NULL};

static void schedule_poll(struct slurm_exec *se);
static void schedule_marker_check(struct slurm_exec *se);

/* The watched job of run_id, NULL when none. */
static struct job *job_find(struct slurm_exec *se, int64_t run_id) {
    for (struct job *j = se->jobs; j; j = j->next)
        if (j->run_id == run_id)
            return j;
    return NULL;
}

/* Unlinks and frees j. */
static void job_remove(struct slurm_exec *se, struct job *j) {
    for (struct job **pp = &se->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    free(j);
}

/* Starts watching job id for run_id. */
static struct job *job_add(struct slurm_exec *se, int64_t run_id, const char *id,
                           const char *run_dir, int64_t grace_ms) {
    struct job *j = ava_xcalloc(1, sizeof *j);
    j->run_id = run_id;
    snprintf(j->id, sizeof j->id, "%s", id);
    j->grace_ms = grace_ms;
    j->gen = se->poll_gen;
    j->added_at = ava_now_ms();
    snprintf(j->run_dir, sizeof j->run_dir, "%s", run_dir);
    j->next = se->jobs;
    se->jobs = j;
    schedule_poll(se);
    schedule_marker_check(se);
    return j;
}

/* Appends a single-quoted shell word for s ('\'' for each quote) to b. */
static void shell_quote(struct ava_buf *b, const char *s) {
    ava_buf_puts(b, "'");
    for (const char *p = s; *p; p++)
        ava_buf_puts(b, *p == '\'' ? "'\\''" : (char[]){*p, 0});
    ava_buf_puts(b, "'");
}

/* Writes RUN_DIR/job.sh: the batch script that runs the shim on the node. */
static int write_job_script(struct slurm_exec *se, const char *run_dir,
                            const struct ava_job_request *req, char *path, char *err) {
    int r = ava_path_join(path, AVA_PATH_MAX, err, run_dir, "job.sh", NULL);
    if (r < 0)
        return r;
    struct ava_buf b = {0};
    ava_buf_printf(&b,
                   "#!/bin/sh\n# ava: training %s, run %d (written by avad; runs on the node)\n",
                   req->training, req->number);
    /* the start marker first (builtins only: nothing to fork), then the shim */
    ava_buf_puts(&b, "printf '%s %s\\n' \"${SLURMD_NODENAME:-}\" \"${CUDA_VISIBLE_DEVICES:-}\" >");
    struct ava_buf marker = {0};
    ava_buf_printf(&marker, "%s/%s", req->run_dir, MARKER);
    shell_quote(&b, marker.data);
    ava_buf_free(&marker);
    ava_buf_puts(&b, "\nexec ");
    shell_quote(&b, se->shim_path);
    ava_buf_puts(&b, " ");
    shell_quote(&b, req->run_dir);
    ava_buf_puts(&b, "\n");
    r = ava_file_write_atomic(path, b.data, b.len, 0755, err);
    ava_buf_free(&b);
    return r;
}

/* The Slurm time limit in whole minutes: the run's limit plus its grace period, rounded up,
 * so that Slurm never ends a job before the shim has applied the exact limit itself. */
static int64_t time_limit_minutes(const struct ava_job_request *req) {
    int64_t ms = req->max_runtime_ms + req->grace_ms;
    return ms <= 0 ? 1 : (ms + 59999) / 60000;
}

/* Builds sbatch's argv for req (script = the batch script's path as avad sees it); the
 * formatted options are kept in keep (*nkeep of them) for the caller to free. */
static int sbatch_argv(struct slurm_exec *se, const struct ava_job_request *req, const char *script,
                       char **argv, char **keep, int *nkeep) {
    int argc = 0;
#define ADD_OPT(...) (argv[argc++] = keep[(*nkeep)++] = ava_xasprintf(__VA_ARGS__))
    argv[argc++] = "sbatch";
    argv[argc++] = "--parsable";
    argv[argc++] = "--no-requeue";
    argv[argc++] = "--open-mode=append";
    ADD_OPT("--job-name=%s", req->training);
    ADD_OPT("--time=%lld", (long long)time_limit_minutes(req));
    ADD_OPT("--output=%s", req->log_path);
    ADD_OPT("--chdir=%s", req->run_dir);
    if (se->partition)
        ADD_OPT("--partition=%s", se->partition);
    if (se->account)
        ADD_OPT("--account=%s", se->account);
    if (req->gpus > 0)
        ADD_OPT("--gres=gpu:%d", req->gpus);
    if (req->cpus > 0)
        ADD_OPT("--cpus-per-task=%d", req->cpus);
    if (req->mem_bytes > 0)
        ADD_OPT("--mem=%lldM", (long long)((req->mem_bytes + (1 << 20) - 1) >> 20));
    for (size_t i = 0; se->extra[i] && argc < ARGV_MAX - 2; i++)
        argv[argc++] = se->extra[i];
#undef ADD_OPT
    argv[argc++] = (char *)script;
    argv[argc] = NULL;
    return argc;
}

/* executor.submit: writes the batch script and runs sbatch; the job is watched from then on. */
static int slurm_submit(struct ava_executor *ex, int64_t run_id, const char *run_dir,
                        const struct ava_job_request *req, char *id, size_t idlen, char *err) {
    struct slurm_exec *se = (struct slurm_exec *)ex;
    char script[AVA_PATH_MAX];
    int r = write_job_script(se, run_dir, req, script, err);
    if (r < 0)
        return r;
    char *argv[ARGV_MAX], *keep[16];
    int nkeep = 0;
    sbatch_argv(se, req, script, argv, keep, &nkeep);
    struct ava_cmd_result res;
    r = ava_cmd_run(argv, se->cmd_timeout_ms, &res, err);
    for (int i = 0; i < nkeep; i++)
        free(keep[i]);
    if (r == 0 && !ava_cmd_ok(&res))
        r = ava_cmd_fail("sbatch", &res, err);
    /* --parsable prints "JOBID" or "JOBID;CLUSTER" */
    size_t n = res.out.len ? strspn(res.out.data, "0123456789") : 0;
    if (r == 0 && (n == 0 || n >= idlen || n >= sizeof((struct job *)0)->id))
        r = ava_err(err, AVA_EUNAVAILABLE, "sbatch: no job id in its answer '%.60s'",
                    res.out.len ? res.out.data : "");
    if (r == 0) {
        snprintf(id, idlen, "%.*s", (int)n, res.out.data);
        job_add(se, run_id, id, run_dir, req->grace_ms);
        ava_log_info("run %lld: Slurm job %s submitted", (long long)run_id, id);
    }
    ava_buf_free(&res.out);
    return r;
}

/* Runs scancel with the given options for job id. */
static int run_scancel(struct slurm_exec *se, const char *opt1, const char *opt2, const char *id,
                       char *err) {
    char *argv[5];
    int argc = 0;
    argv[argc++] = "scancel";
    if (opt1)
        argv[argc++] = (char *)opt1;
    if (opt2)
        argv[argc++] = (char *)opt2;
    argv[argc++] = (char *)id;
    argv[argc] = NULL;
    struct ava_cmd_result res;
    int r = ava_cmd_run(argv, se->cmd_timeout_ms, &res, err);
    if (r == 0 && !ava_cmd_ok(&res))
        r = ava_cmd_fail("scancel", &res, err);
    ava_buf_free(&res.out);
    return r;
}

/* executor.stop: cancels a pending job (and forgets it: the scheduler has stopped the run);
 * sends SIGTERM to a running job's batch step, the shim, which winds the run down. */
static int slurm_stop(struct ava_executor *ex, int64_t run_id, char *err) {
    struct slurm_exec *se = (struct slurm_exec *)ex;
    struct job *j = job_find(se, run_id);
    if (!j)
        return ava_err(err, AVA_ENOTFOUND, "the run's Slurm job is not known to this avad");
    if (!j->started) {
        /* not running yet: nothing to wind down, and nobody waits for its end */
        int r = run_scancel(se, NULL, NULL, j->id, err);
        if (r == 0)
            job_remove(se, j);
        return r;
    }
    j->stop_at = ava_now_ms();
    int r = run_scancel(se, "--batch", "--signal=TERM", j->id, err);
    if (r < 0) { /* e.g. the batch step is not up yet: cancel the job instead */
        j->hard_sent = true;
        r = run_scancel(se, NULL, NULL, j->id, err);
    }
    return r;
}

/* executor.attach: watches a job an earlier avad submitted (its id as stored). */
static int slurm_attach(struct ava_executor *ex, int64_t run_id, const char *run_dir,
                        const char *id, char *err) {
    struct slurm_exec *se = (struct slurm_exec *)ex;
    if (!id || !*id || strspn(id, "0123456789") != strlen(id))
        return ava_err(err, AVA_ENOTFOUND, "no Slurm job id was recorded for the run");
    job_add(se, run_id, id, run_dir, 30000);
    return 0;
}

/* One observation to report once the poll's bookkeeping is done. */
struct report {
    int64_t run_id;
    bool ended;
    char state[16];
    char node[128], gpus[128];
    char reason[256];
};

/* Applies what Slurm says of watched job j (seen = its entry, NULL when Slurm does not list
 * it) and adds a report when something changed. Returns true when j has ended. */
static bool observe(struct slurm_exec *se, struct job *j, const struct ava_slurm_job *seen,
                    struct report *rep, int *nrep) {
    struct report *r = &rep[*nrep];
    memset(r, 0, sizeof *r);
    r->run_id = j->run_id;
    if (!seen) {
        r->ended = true;
        snprintf(r->state, sizeof r->state, "failed");
        snprintf(r->reason, sizeof r->reason, "lost: Slurm no longer knows job %s", j->id);
        (*nrep)++;
        return true;
    }
    enum ava_slurm_phase ph = ava_slurm_phase_of(seen->state);
    if (ph == AVA_SLURM_ENDED) {
        r->ended = true;
        snprintf(r->state, sizeof r->state, "%s", ava_slurm_final_state(seen->state));
        ava_slurm_describe_end(seen, r->reason, sizeof r->reason);
        (*nrep)++;
        return true;
    }
    if (ph == AVA_SLURM_ACTIVE && !j->started) {
        j->started = true;
        snprintf(r->node, sizeof r->node, "%s", seen->node);
        snprintf(r->gpus, sizeof r->gpus, "%s", seen->gpus);
        (*nrep)++;
    }
    if (j->stop_at && !j->hard_sent &&
        ava_now_ms() - j->stop_at > j->grace_ms + HARD_CANCEL_AFTER_MS) {
        char err[AVA_ERRLEN];
        j->hard_sent = true;
        ava_log_warn("run %lld: Slurm job %s still runs after its grace period: cancelling it",
                     (long long)j->run_id, j->id);
        if (run_scancel(se, NULL, NULL, j->id, err) < 0)
            ava_log_warn("run %lld: %s", (long long)j->run_id, err);
    }
    return false;
}

/* Asks scontrol about one job (the fallback when squeue's JSON fails). Returns 1 with *out
 * filled, 0 when Slurm does not know the job, -1 when scontrol itself failed. */
static int scontrol_job(struct slurm_exec *se, const char *id, struct ava_slurm_job *out) {
    char *argv[] = {"scontrol", "show", "job", "-o", (char *)id, NULL};
    char err[AVA_ERRLEN];
    struct ava_cmd_result res;
    int r = -1;
    if (ava_cmd_run(argv, se->cmd_timeout_ms, &res, err) == 0) {
        if (ava_cmd_ok(&res) &&
            ava_slurm_parse_scontrol(res.out.data ? res.out.data : "", out, err) == 0)
            r = 1;
        else if (strstr(res.err_line, "Invalid job id"))
            r = 0;
    }
    ava_buf_free(&res.out);
    return r;
}

/* Applies a poll's answer (jobs, or NULL when squeue failed: then scontrol per job) to every
 * watched job, then tells the scheduler, after the bookkeeping so that it may submit or stop
 * jobs from its callbacks. */
static void apply_poll(struct slurm_exec *se, const struct ava_slurm_job *jobs, size_t n) {
    size_t cnt = 0;
    for (struct job *j = se->jobs; j; j = j->next)
        cnt++;
    struct report *rep = ava_xcalloc(cnt + 1, sizeof *rep);
    int nrep = 0;
    for (struct job *j = se->jobs, *next; j; j = next) {
        next = j->next;
        const struct ava_slurm_job *seen = NULL;
        struct ava_slurm_job one;
        if (jobs) {
            for (size_t i = 0; i < n && !seen; i++)
                if (!strcmp(jobs[i].id, j->id))
                    seen = &jobs[i];
        } else {
            int k = scontrol_job(se, j->id, &one);
            if (k < 0)
                continue; /* no answer about this job: ask again next round */
            seen = k ? &one : NULL;
        }
        if (!seen && jobs && j->gen >= se->poll_gen)
            continue; /* submitted while this squeue ran: its answer predates the job */
        if (observe(se, j, seen, rep, &nrep))
            job_remove(se, j);
    }
    for (int i = 0; i < nrep; i++) {
        if (rep[i].ended && se->base.ended)
            se->base.ended(se->base.done_ctx, rep[i].run_id, rep[i].state, rep[i].reason);
        else if (!rep[i].ended && se->base.started)
            se->base.started(se->base.done_ctx, rep[i].run_id, rep[i].node, rep[i].gpus);
    }
    free(rep);
}

/* Reads a start marker ("NODE GPUS\n") into node and gpus. Returns false when it is not
 * there (yet). */
static bool read_marker(const char *path, char *node, size_t nlen, char *gpus, size_t glen) {
    char *text;
    size_t len;
    if (ava_file_read_all(path, 4096, &text, &len, NULL) < 0)
        return false;
    char *nl = strchr(text, '\n');
    if (!nl) { /* being written: look again next time */
        free(text);
        return false;
    }
    *nl = '\0';
    char *sp = strchr(text, ' ');
    if (sp)
        *sp = '\0';
    snprintf(node, nlen, "%s", text);
    snprintf(gpus, glen, "%s", sp ? sp + 1 : "");
    if (strspn(gpus, "0123456789,") != strlen(gpus))
        gpus[0] = '\0'; /* UUIDs or MIG names: squeue's indices are used instead */
    free(text);
    return true;
}

/* The file timer: reports the jobs whose batch script has started (the marker) and those
 * whose shim has written its exit record (the scheduler reads it), without asking Slurm. */
static void on_marker_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct slurm_exec *se = arg;
    struct report rep[32];
    int nrep = 0;
    char path[AVA_PATH_MAX + 32];
    for (struct job *j = se->jobs, *next; j && nrep < 32; j = next) {
        next = j->next;
        struct report *r = &rep[nrep];
        memset(r, 0, sizeof *r);
        r->run_id = j->run_id;
        if (!j->started) {
            snprintf(path, sizeof path, "%s/%s", j->run_dir, MARKER);
            if (read_marker(path, r->node, sizeof r->node, r->gpus, sizeof r->gpus)) {
                j->started = true;
                nrep++;
            }
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", j->run_dir, AVA_RUNDIR_EXIT);
        if (access(path, F_OK) == 0) {
            r->ended = true;
            snprintf(r->state, sizeof r->state, "failed");
            snprintf(r->reason, sizeof r->reason, "Slurm job %s ended", j->id);
            job_remove(se, j);
            nrep++;
        }
    }
    for (int i = 0; i < nrep; i++) {
        if (rep[i].ended && se->base.ended)
            se->base.ended(se->base.done_ctx, rep[i].run_id, rep[i].state, rep[i].reason);
        else if (!rep[i].ended && se->base.started)
            se->base.started(se->base.done_ctx, rep[i].run_id, rep[i].node, rep[i].gpus);
    }
    schedule_marker_check(se);
}

/* Arms the file timer: fast while a job is young and not seen starting, every
 * EXIT_CHECK_MS while jobs run, not at all without jobs (see the file comment). */
static void schedule_marker_check(struct slurm_exec *se) {
    if (!se->mtimer || evtimer_pending(se->mtimer, NULL) || !se->jobs)
        return;
    int64_t now = ava_now_ms(), ms = EXIT_CHECK_MS;
    for (struct job *j = se->jobs; j; j = j->next)
        if (!j->started) {
            int64_t m = (now - j->added_at) / MARKER_AGE_DIVISOR;
            m = m < MARKER_MIN_MS ? MARKER_MIN_MS : m > MARKER_MAX_MS ? MARKER_MAX_MS : m;
            ms = m < ms ? m : ms;
        }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(se->mtimer, &tv);
}

/* Frees the executor and its watches (no poll may be in flight). */
static void slurm_free(struct slurm_exec *se);

/* squeue has answered (or failed). */
static void on_squeue(void *ctx, struct ava_cmd_result *res) {
    struct slurm_exec *se = ctx;
    se->polling = false;
    if (se->destroyed) {
        slurm_free(se);
        return;
    }
    struct ava_slurm_job *jobs = NULL;
    size_t n = 0;
    char err[AVA_ERRLEN];
    if (!ava_cmd_ok(res)) {
        ava_cmd_fail("squeue", res, err);
        ava_log_warn("%s: asking scontrol instead", err);
        apply_poll(se, NULL, 0);
    } else if (ava_slurm_parse_squeue(res->out.data, res->out.len, &jobs, &n, err) < 0) {
        ava_log_warn("%s: asking scontrol instead", err);
        apply_poll(se, NULL, 0);
    } else {
        apply_poll(se, jobs, n);
    }
    free(jobs);
    schedule_poll(se);
}

/* The poll timer: asks squeue about this user's jobs, unless a poll is still in flight. */
static void on_poll_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct slurm_exec *se = arg;
    if (!se->jobs || se->polling)
        return;
    char *argv[] = {"squeue", "--json", "--me", NULL};
    char err[AVA_ERRLEN];
    if (ava_cmd_start(se->evbase, argv, se->cmd_timeout_ms, on_squeue, se, err) < 0) {
        ava_log_warn("%s", err);
        schedule_poll(se);
        return;
    }
    se->polling = true;
    se->poll_gen++;
}

/* Arms the poll timer for the next round (none without jobs or while a poll is running). */
static void schedule_poll(struct slurm_exec *se) {
    if (!se->jobs || se->polling || evtimer_pending(se->timer, NULL))
        return;
    int64_t now = ava_now_ms(), ms = POLL_MAX_MS;
    for (struct job *j = se->jobs; j; j = j->next)
        if (!j->started && (now - j->added_at) / POLL_AGE_DIVISOR < ms)
            ms = (now - j->added_at) / POLL_AGE_DIVISOR;
    if (ms < se->poll_ms)
        ms = se->poll_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(se->timer, &tv);
}

static void slurm_free(struct slurm_exec *se) {
    while (se->jobs)
        job_remove(se, se->jobs);
    free(se->shim_path);
    free(se->partition);
    free(se->account);
    ava_slurm_args_free(se->extra);
    free(se);
}

/* executor.destroy: stops polling and frees, or leaves that to a poll still in flight. */
static void slurm_destroy(struct ava_executor *ex) {
    struct slurm_exec *se = (struct slurm_exec *)ex;
    event_free(se->timer);
    event_free(se->mtimer);
    se->timer = se->mtimer = NULL;
    if (se->polling)
        se->destroyed = true; /* on_squeue frees it */
    else
        slurm_free(se);
}

int ava_slurm_nodes(int64_t timeout_ms, struct ava_slurm_node **nodes, size_t *n, char *err) {
    char *argv[] = {"sinfo", "--json", NULL};
    struct ava_cmd_result res;
    int r = ava_cmd_run(argv, timeout_ms, &res, err);
    if (r == 0 && !ava_cmd_ok(&res))
        r = ava_cmd_fail("sinfo", &res, err);
    if (r == 0)
        r = ava_slurm_parse_sinfo(res.out.data, res.out.len, nodes, n, err);
    ava_buf_free(&res.out);
    return r;
}

/* Copies s, NULL when it is NULL or empty. */
static char *dup_or_null(const char *s) {
    return s && *s ? ava_xstrdup(s) : NULL;
}

struct ava_executor *ava_exec_slurm_new(struct event_base *base,
                                        const struct ava_slurm_config *cfg) {
    struct slurm_exec *se = ava_xcalloc(1, sizeof *se);
    se->base.name = "slurm";
    se->base.queues = true;
    se->base.submit = slurm_submit;
    se->base.stop = slurm_stop;
    se->base.attach = slurm_attach;
    se->base.destroy = slurm_destroy;
    se->base.inherit_env = slurm_inherit;
    se->evbase = base;
    se->shim_path = ava_xstrdup(cfg->shim_path);
    se->partition = dup_or_null(cfg->partition);
    se->account = dup_or_null(cfg->account);
    se->extra = ava_slurm_split_args(cfg->extra_args, NULL);
    se->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : 100;
    se->cmd_timeout_ms = cfg->cmd_timeout_ms > 0 ? cfg->cmd_timeout_ms : 30000;
    se->timer = evtimer_new(base, on_poll_timer, se);
    se->mtimer = evtimer_new(base, on_marker_timer, se);
    return &se->base;
}
