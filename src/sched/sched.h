/* sched.h: the scheduler: a FIFO queue of runs over the resource pool, the run state
 * machine applied to the store, and executor callbacks. Lives on avad's event loop.
 *
 * Every transition is stored (state + event, one transaction) before it is acted on:
 * `running` is written before the executor launches, `stopping` before the stop signal. */
#ifndef AVA_SCHED_SCHED_H
#define AVA_SCHED_SCHED_H

#include "../exec/exec.h"
#include "../store/store.h"
#include "pool.h"

#include <stdint.h>

struct ava_sched;

struct ava_sched_config {
    const char *data_dir; /* absolute */
    int64_t grace_ms;     /* SIGTERM -> SIGKILL for stop and the time limit */
    /* where the nodes of a queueing executor see data_dir (shared storage); NULL = the same
     * path. Paths written for runs (spec.json, the job script) use it. */
    const char *node_data_dir;
};

/* Resolves a formatted set reference ("DATASET/FORMAT/PERCENT") seen by group_id: fills dir
 * (dirlen bytes) and *info, a malloc'd JSON description for config/trainsetinfo. */
typedef int (*ava_sched_resolver_fn)(void *ctx, const char *ref, int64_t group_id, char *dir,
                                     size_t dirlen, char **info, char *err);

/* Creates a scheduler over store, pool and executor (all owned by the caller and outliving
 * the scheduler). The executor's done callback must be ava_sched_on_done with the
 * scheduler as ctx. *out: ava_sched_free. */
int ava_sched_new(struct ava_store *st, struct ava_pool *pool, struct ava_executor *ex,
                  const struct ava_sched_config *cfg, struct ava_sched **out, char *err);
void ava_sched_free(struct ava_sched *s);
/* What runs get for metrics: AVA_REPORT_URL = report_base + "/v1/report/trainings/<run
 * id>/metric" (with a per-run AVA_REPORT_TOKEN), and PYTHONPATH = python_path (the Python
 * SDK). Either may be NULL. The strings are copied. */
void ava_sched_set_run_env(struct ava_sched *s, const char *report_base, const char *python_path);

/* Called when a run's supervisor has ended, before its final state is stored, with the run
 * dir: avad ingests the run's last metric points there. */
typedef void (*ava_sched_end_fn)(void *ctx, int64_t run_id, const char *run_dir);
void ava_sched_set_end_hook(struct ava_sched *s, ava_sched_end_fn fn, void *ctx);

/* Sets how train and val sets are found at launch; without one a training that names a set
 * fails to start. */
void ava_sched_set_resolver(struct ava_sched *s, ava_sched_resolver_fn fn, void *ctx);

/* After a daemon (re)start: loads every non-terminal run, re-claims the resources of running
 * ones and re-attaches to their supervisors (or ends them failed/lost), re-queues the rest in
 * FIFO order, then schedules. */
int ava_sched_restore(struct ava_sched *s, char *err);

/* Starts a new run of training_id (creating -> queued, then running when it fits).
 * `who` names the requester for the event log. AVA_ECONFLICT when the latest run is not
 * terminal. Fills *out (may be NULL) with the run as stored after scheduling. */
int ava_sched_start(struct ava_sched *s, int64_t training_id, const char *who, struct ava_run *out,
                    char *err);

/* Stops the latest run of training_id: queued -> stopped at once, running -> stopping (the
 * shim ends it within the grace period). AVA_ECONFLICT when no run is active. */
int ava_sched_stop(struct ava_sched *s, int64_t training_id, const char *who, char *err);

/* Executor callback: the supervisor of run_id has ended; reads the run dir's exit record,
 * stores the final state, frees the resources and schedules the queue. */
void ava_sched_on_done(void *ctx, int64_t run_id);

/* Queueing executor callbacks (set on the executor by ava_sched_new; ctx = the scheduler):
 * a submitted run's job started on node with devices gpus (queued -> running, the node
 * stored), or ended (state and reason = the executor's view, used when the run dir holds no
 * exit record). */
void ava_sched_on_started(void *ctx, int64_t run_id, const char *node, const char *gpus);
void ava_sched_on_ended(void *ctx, int64_t run_id, const char *state, const char *reason);

/* The executor's name ("local", "slurm"), for the resources view. */
const char *ava_sched_executor(const struct ava_sched *s);

/* The pool, for the resources view. */
const struct ava_pool *ava_sched_pool(const struct ava_sched *s);

/* An active run as the scheduler sees it (for the resources view). */
struct ava_sched_holder {
    int64_t training_id, run_id;
    int number;
    enum ava_run_state state;
    char gpus[128]; /* allocated device indices, "" when none or not allocated */
    int cpus;       /* allocated slots (0 while queued) */
    int64_t mem;
    const char *run_dir; /* valid during the callback */
};
/* Calls fn for each active run in FIFO order. */
void ava_sched_each(const struct ava_sched *s, void (*fn)(void *, const struct ava_sched_holder *),
                    void *ctx);
/* Number of queued runs. */
int ava_sched_queued(const struct ava_sched *s);

#endif
