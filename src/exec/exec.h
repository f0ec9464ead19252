/* exec.h: executors run a prepared run somewhere and tell the scheduler when it ended.
 *
 * The run dir (common/rundir.h) is the contract: the executor starts ava-shim on it, the
 * shim leaves the exit record there, and the scheduler reads the outcome from it, whatever
 * the executor. This header also prepares run dirs (spec.json, config/), which is the same
 * for every executor. */
#ifndef AVA_EXEC_EXEC_H
#define AVA_EXEC_EXEC_H

#include "../common/path.h"
#include "../store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* Called (on the event loop) when a launched or attached run's supervisor has ended. */
typedef void (*ava_exec_done_cb)(void *ctx, int64_t run_id);

/* What a queueing executor is told about a run it is to submit. Paths are as the nodes see
 * them. */
struct ava_job_request {
    const char *training; /* the job's name */
    int number;           /* run number */
    int gpus, cpus;       /* requested devices and CPU slots */
    int64_t mem_bytes;    /* 0 = the workload manager's default */
    int64_t max_runtime_ms, grace_ms;
    const char *run_dir;  /* the run dir where the job runs the shim */
    const char *log_path; /* the run's log: the job's own output is appended there too */
};

struct ava_executor {
    const char *name; /* stored in runs.executor: "local", "slurm" */
    /* True for an executor that queues runs itself (a workload manager): the scheduler
     * submits a run as soon as it is queued, uses no pool of its own, and learns from
     * started and ended what happened (done is not used then). */
    bool queues;
    /* Queueing executors: submits the run described by req whose run dir (avad's path) is
     * run_dir; fills id (the job id, idlen bytes). */
    int (*submit)(struct ava_executor *ex, int64_t run_id, const char *run_dir,
                  const struct ava_job_request *req, char *id, size_t idlen, char *err);
    /* Queueing executors, called on the loop: the run's job runs on node with devices gpus
     * ("0,1" or ""). */
    void (*started)(void *ctx, int64_t run_id, const char *node, const char *gpus);
    /* Queueing executors, called on the loop: the run's job has ended; state ("succeeded",
     * "failed", "stopped", "timed_out") and reason are the workload manager's view, which the
     * scheduler uses only when the run dir holds no exit record. */
    void (*ended)(void *ctx, int64_t run_id, const char *state, const char *reason);
    /* NULL-terminated names of variables the shim takes from its own environment on the
     * node (what the workload manager decides there, e.g. CUDA_VISIBLE_DEVICES), or NULL. */
    const char *const *inherit_env;
    /* Starts the supervisor on run_dir; fills id (executor id, idlen bytes). */
    int (*launch)(struct ava_executor *ex, int64_t run_id, const char *run_dir, char *id,
                  size_t idlen, char *err);
    /* Asks the run to stop (the shim then applies the grace period). */
    int (*stop)(struct ava_executor *ex, int64_t run_id, char *err);
    /* Finds a run launched by an earlier daemon. 0 = watched (done comes later);
     * AVA_ENOTFOUND = its supervisor is gone (the caller reads the run dir now). */
    int (*attach)(struct ava_executor *ex, int64_t run_id, const char *run_dir, const char *id,
                  char *err);
    /* Stops watching (runs keep going) and frees the executor. */
    void (*destroy)(struct ava_executor *ex);
    ava_exec_done_cb done;
    void *done_ctx;
};

/* Creates the local executor: ava-shim at shim_path, spawned in its own session so it
 * outlives avad, watched with a pidfd on base. Owned by the caller (ex->destroy). */
struct ava_executor *ava_exec_local_new(struct event_base *base, const char *shim_path,
                                        ava_exec_done_cb done, void *done_ctx);

/* Settings of the Slurm executor. Strings are copied. */
struct ava_slurm_config {
    const char *shim_path;  /* ava-shim as the nodes see it */
    const char *partition;  /* NULL or "" = the cluster's default */
    const char *account;    /* NULL or "" = the user's default */
    const char *extra_args; /* extra sbatch arguments separated by blanks, NULL for none */
    int64_t poll_ms;        /* shortest squeue interval (pending jobs: 1/16 of their age) */
    int64_t cmd_timeout_ms; /* longest wait for one Slurm command */
};

/* Creates the Slurm executor (see slurm.c): runs go to sbatch, their states come from
 * squeue --json polled on base. Owned by the caller (ex->destroy). */
struct ava_executor *ava_exec_slurm_new(struct event_base *base,
                                        const struct ava_slurm_config *cfg);

/* Where a run's files live (absolute when data_dir is). */
struct ava_run_paths {
    char run_dir[AVA_PATH_MAX];
    char config_dir[AVA_PATH_MAX];
    char log_path[AVA_PATH_MAX];
    char output_dir[AVA_PATH_MAX];
    char group_dir[AVA_PATH_MAX];
    char home_dir[AVA_PATH_MAX]; /* the user's folder on the group storage */
};

/* Computes the paths of run number of training t under data_dir (DESIGN §4). */
int ava_exec_paths(const char *data_dir, const struct ava_training *t, int number,
                   struct ava_run_paths *out, char *err);

/* Everything that goes into a run's spec.json besides the training itself. */
struct ava_prepare {
    const struct ava_training *training;
    int number;                             /* run number */
    const struct ava_run_paths *paths;      /* where avad writes the files */
    const struct ava_run_paths *node_paths; /* the same as the run sees them, NULL = paths */
    const char *const *inherit_env;         /* see struct ava_executor, may be NULL */
    const char *image_env_json;             /* the image's env object, may be NULL */
    const char *gpus;                       /* allocated device indices "0,1" or "": NULL = not yet
                                               allocated, so spec.json is not written */
    int64_t grace_ms;
    /* the formatted sets the run reads, NULL when none: their folders (AVA_TRAIN_DIR,
     * AVA_VAL_DIR) and the JSON written to config/trainsetinfo and config/valsetinfo */
    const char *train_dir, *val_dir;
    const char *train_info, *val_info;
    /* metrics: the log parser and user rules (JSON array text) for the shim, and what the
     * run needs to report over HTTP and to import the Python SDK; each may be NULL */
    const char *metrics_parser, *metric_rules_json;
    const char *report_token, *report_url, *python_path;
};

/* Creates the run dir, config/trainingspec, the output and log folders and, once gpus is
 * known, writes spec.json atomically. Returns 0 or AVA_EIO. */
int ava_exec_prepare(const struct ava_prepare *p, char *err);

#endif
