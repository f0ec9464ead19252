/* slurm.h: what ava reads from Slurm's tools: jobs from `squeue --json` (or one
 * `scontrol show job -o` line), nodes from `sinfo --json`, and how Slurm's job states map to
 * ava's run states. Pure parsing (slurm_parse.c), except ava_slurm_nodes, which runs sinfo
 * (slurm.c, beside the executor that runs the other tools).
 *
 * Slurm's JSON is versioned (openapi v0.0.38 in 22.05, later releases changed shapes), so the
 * parsers are loose: unknown members are ignored, a state may be a string or an array of
 * strings, an exit code an integer (a raw wait status in 22.05) or an object with
 * return_code / signal members (23.02 and later). What a parser needs and does not find is an
 * error naming it. */
#ifndef AVA_EXEC_SLURM_H
#define AVA_EXEC_SLURM_H

#include <stddef.h>
#include <stdint.h>

/* One job as Slurm describes it. */
struct ava_slurm_job {
    char id[32];      /* the job id, decimal */
    char state[32];   /* Slurm's base state: PENDING, RUNNING, COMPLETED, ... */
    char reason[128]; /* Slurm's state reason ("None", "Resources", "NonZeroExitCode") */
    char node[128];   /* the batch host (or node list), "" while pending */
    char gpus[128];   /* device indices of the job's GPUs ("0,1"), "" when none or unknown */
    int exit_code;    /* the batch script's exit status, -1 when not known */
    int signal;       /* the signal that ended it, 0 for none */
};

/* Where a job is in its life. */
enum ava_slurm_phase {
    AVA_SLURM_WAITING, /* pending, configuring, requeued: not yet running */
    AVA_SLURM_ACTIVE,  /* running, completing, suspended: the batch script has started */
    AVA_SLURM_ENDED,   /* a final state */
};

/* The phase of a Slurm state name (unknown names count as ACTIVE: neither started nor
 * ended can be claimed for them, so the run is left as it is). */
enum ava_slurm_phase ava_slurm_phase_of(const char *state);

/* The ava run state for a final Slurm state: COMPLETED -> succeeded, CANCELLED -> stopped,
 * TIMEOUT and DEADLINE -> timed_out, everything else (FAILED, OUT_OF_MEMORY, NODE_FAIL,
 * BOOT_FAIL, PREEMPTED, ...) -> failed. */
const char *ava_slurm_final_state(const char *state);

/* Describes how a job ended, for a run's reason ("Slurm job 12: FAILED (NonZeroExitCode),
 * exit code 3"). */
void ava_slurm_describe_end(const struct ava_slurm_job *j, char *out, size_t outlen);

/* Parses `squeue --json` output. *jobs is a malloc'd array (free()) of *n jobs. Returns 0 or
 * AVA_EINVALID (not JSON, no "jobs" array, a job without an id or state). */
int ava_slurm_parse_squeue(const char *text, size_t len, struct ava_slurm_job **jobs, size_t *n,
                           char *err);

/* Parses one line of `scontrol show job -o ID` (JobId=, JobState=, Reason=, BatchHost=,
 * NodeList=, ExitCode=E:S). Returns 0 or AVA_EINVALID. */
int ava_slurm_parse_scontrol(const char *line, struct ava_slurm_job *job, char *err);

/* One node as sinfo --json describes it. */
struct ava_slurm_node {
    char name[128];
    char state[64];       /* "idle", "mixed", "allocated", "down", ... (flags joined by '+') */
    char partitions[256]; /* comma-separated */
    int cpus, alloc_cpus;
    int gpus, alloc_gpus;         /* from gres and gres_used */
    int64_t mem_mb, alloc_mem_mb; /* real_memory, alloc_memory */
};

/* Parses `sinfo --json` output (nodes listed once each). Returns 0 or AVA_EINVALID. */
int ava_slurm_parse_sinfo(const char *text, size_t len, struct ava_slurm_node **nodes, size_t *n,
                          char *err);

/* Runs `sinfo --json` (waiting up to timeout_ms) and parses its nodes. Returns 0,
 * AVA_EIO (sinfo cannot be started), AVA_EUNAVAILABLE (it failed) or AVA_EINVALID. */
int ava_slurm_nodes(int64_t timeout_ms, struct ava_slurm_node **nodes, size_t *n, char *err);

/* The number of GPUs in a gres string: "gpu:2", "gpu:tesla:2(S:0-1)", "gpu:(null):1(IDX:0)",
 * several comma-separated entries summed; 0 when none. */
int ava_slurm_gres_gpus(const char *gres);

/* The device indices in a gres detail string ("gpu:2(IDX:0-1)" -> "0,1"); "" when none. */
void ava_slurm_gres_indices(const char *detail, char *out, size_t outlen);

/* Splits extra sbatch arguments at blanks into a NULL-terminated malloc'd array (free each
 * string and the array with ava_slurm_args_free). Quotes are not interpreted. */
char **ava_slurm_split_args(const char *text, size_t *n);
void ava_slurm_args_free(char **v);

#endif
