/* rundir.h: the run directory, the contract between avad and ava-shim (DESIGN §3).
 *
 * <data>/runs/<training id>/<run>/ holds:
 *   spec.json   written by avad (atomically) before the shim starts: what to run, see below
 *   config/     written by avad before start: trainingspec (and later trainsetinfo, valsetinfo)
 *   status      written by the shim (atomically) once the entry runs, and again when it begins
 *               stopping: state, the shim's pid and start time, the log start
 *   events      appended by the shim: "<unix ms> <state> <reason>" one per line
 *   exit        written by the shim (atomically) as its very last act: the final state
 *   shim.log    the shim's own diagnostics (stderr)
 *   job.sh, slurm-started  with the Slurm executor: the batch script avad submits, and the
 *               line it writes on the node as it starts ("NODE CUDA_VISIBLE_DEVICES")
 * After spec.json only the shim writes here; the training never gets this directory's path.
 *
 * spec.json (JSON object):
 *   training (string), training_id (int), run (int), user, group, image (strings),
 *   entry (absolute path), args (array of strings), env (array of "K=V": the entry's whole
 *   environment), cwd, log_path, output_dir (absolute paths), max_runtime_ms, grace_ms (int),
 *   gpus (string, e.g. "0,1" or ""), metrics_parser, metric_rules, and inherit_env (names of
 *   variables the shim takes from its own environment: what Slurm sets on the node).
 *
 * The status and exit files are "key=value" lines, parsed strictly by the functions below. */
#ifndef AVA_COMMON_RUNDIR_H
#define AVA_COMMON_RUNDIR_H

#include <stdint.h>
#include <sys/types.h>

#define AVA_RUNDIR_SPEC "spec.json"
#define AVA_RUNDIR_CONFIG "config"
#define AVA_RUNDIR_STATUS "status"
#define AVA_RUNDIR_EVENTS "events"
#define AVA_RUNDIR_EXIT "exit"
#define AVA_RUNDIR_SHIMLOG "shim.log"

#define AVA_REASON_MAX 256

/* What the shim records once it runs: enough for avad to find it again after a restart. */
struct ava_shim_info {
    char state[16];      /* running or stopping ("" when read from an older file) */
    pid_t pid;           /* the shim's pid */
    uint64_t start_time; /* the shim's start time in clock ticks (/proc/<pid>/stat field 22) */
    int64_t started_at;  /* unix ms when the entry was started */
    int64_t log_start;   /* byte offset in the log where this run's marker line begins */
    pid_t entry_pid;     /* the entry's pid (0 when it could not be started) */
};

/* The shim's final word on a run. */
struct ava_exit_record {
    char state[16];              /* succeeded, failed, stopped or timed_out */
    int exit_code;               /* the entry's exit status; 128+signal when killed */
    int signal;                  /* the signal that killed the entry, 0 if it exited */
    char reason[AVA_REASON_MAX]; /* one line: "exit code 3", "max runtime 3s reached", ... */
    int64_t started_at;          /* unix ms, 0 if the entry never started */
    int64_t ended_at;            /* unix ms */
    int64_t stopping_at;         /* unix ms when stop or the time limit began, else 0 */
    int64_t log_start, log_end;  /* this run's byte range in the log */
};

/* Writes dir/status atomically. Returns 0 or AVA_EIO. */
int ava_rundir_write_status(const char *dir, const struct ava_shim_info *si, char *err);
/* Reads dir/status. Returns 0, AVA_ENOTFOUND when absent, AVA_EINVALID when malformed. */
int ava_rundir_read_status(const char *dir, struct ava_shim_info *si, char *err);
/* Parses the text of a status file (exposed for tests). */
int ava_rundir_parse_status(const char *text, struct ava_shim_info *si, char *err);

/* Writes dir/exit atomically. Newlines in reason are replaced by spaces. */
int ava_rundir_write_exit(const char *dir, const struct ava_exit_record *er, char *err);
/* Reads dir/exit. Returns 0, AVA_ENOTFOUND when absent, AVA_EINVALID when malformed. */
int ava_rundir_read_exit(const char *dir, struct ava_exit_record *er, char *err);
/* Parses the text of an exit file (exposed for tests). */
int ava_rundir_parse_exit(const char *text, struct ava_exit_record *er, char *err);

/* Appends "<at> <state> <reason>" to dir/events. */
int ava_rundir_append_event(const char *dir, int64_t at, const char *state, const char *reason,
                            char *err);

/* Reads the start time (clock ticks since boot, field 22 of /proc/<pid>/stat) of pid.
 * Returns 0 or AVA_ENOTFOUND when the process does not exist. */
int ava_proc_start_time(pid_t pid, uint64_t *out);

#endif
