/* spec.h: the run spec the shim reads from RUN_DIR/spec.json, and the entry's environment.
 *
 * spec.json is written by avad (see src/common/rundir.h for its fields). The shim trusts
 * nothing in it: every field is type-checked, paths must be absolute, strings must not hold
 * NUL or newline bytes, counts and sizes are bounded. Unknown keys are ignored so that a
 * newer avad can add fields. Required: training, run, entry, cwd, log_path, output_dir.
 * Optional: training_id (0), user, group, image, gpus (""), args, env (empty),
 * max_runtime_ms (0 = no limit), grace_ms (30000), inherit_env (names, see
 * ava_shim_spec_inherit). */
#ifndef AVA_SHIM_SPEC_H
#define AVA_SHIM_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define AVA_SHIM_SPEC_MAX (1024 * 1024) /* largest spec.json accepted, bytes */
#define AVA_SHIM_ARGS_MAX 4096          /* most args / env entries accepted */
#define AVA_SHIM_GRACE_DEFAULT_MS 30000
#define AVA_SHIM_RESUME_VAR "AVA_RESUME_FROM"
#define AVA_SHIM_CHECKPOINT_PREFIX "checkpoint-"

/* A parsed, validated spec. Every string is owned by the spec and non-NULL. */
struct ava_shim_spec {
    char *training;
    int64_t training_id;
    int64_t run;
    char *user, *group, *image, *gpus;
    char *entry; /* absolute path of the program */
    char **args; /* nargs strings, argv[1..] */
    size_t nargs;
    char **env; /* nenv "K=V" strings: the entry's whole environment */
    size_t nenv;
    char *cwd, *log_path, *output_dir; /* absolute paths */
    int64_t max_runtime_ms;            /* 0 = no limit */
    int64_t grace_ms;
    char *metrics_parser; /* a built-in log parser name, NULL for none */
    char **metric_rules;  /* nrules "NAME=REGEX" strings */
    size_t nrules;
    char **inherit; /* ninherit variable names taken from the shim's own environment */
    size_t ninherit;
};

/* Parses and validates the JSON text of a spec. *out belongs to the caller
 * (ava_shim_spec_free). Returns 0 or AVA_EINVALID with a message naming the problem. */
int ava_shim_spec_parse(const char *text, size_t len, struct ava_shim_spec **out, char *err);

/* Reads and parses the spec file at path. Returns 0, AVA_ENOTFOUND, AVA_ETOOLARGE,
 * AVA_EIO or AVA_EINVALID. */
int ava_shim_spec_load(const char *path, struct ava_shim_spec **out, char *err);

/* Frees a spec; NULL is a no-op. */
void ava_shim_spec_free(struct ava_shim_spec *s);

/* True when checkpoint a (mtime am, name an) is newer than b: later mtime wins, a tie is
 * won by the later name (strcmp). */
bool ava_shim_checkpoint_newer(const struct timespec *am, const char *an, const struct timespec *bm,
                               const char *bn);

/* Finds the newest entry named checkpoint-* (file or directory) in dir and writes its
 * absolute path to out. Returns 0, AVA_ENOTFOUND when there is none (or dir does not
 * exist), AVA_ETOOLARGE when the path does not fit, AVA_EIO when dir cannot be read. */
int ava_shim_newest_checkpoint(const char *dir, char *out, size_t outlen, char *err);

/* Builds the entry's environment: the spec's env without any AVA_RESUME_FROM, plus
 * AVA_RESUME_FROM=<resume> when resume is non-NULL. Returns a NULL-terminated array owned by
 * the caller (ava_shim_strv_free). */
char **ava_shim_build_env(const struct ava_shim_spec *s, const char *resume);

/* Applies inherit_env: each named variable that lookup (getenv, or a test's) finds is set in
 * the entry's env, replacing the spec's value. Used under a workload manager (Slurm), which
 * decides on the node what CUDA_VISIBLE_DEVICES and SLURM_* hold; an inherited
 * CUDA_VISIBLE_DEVICES also becomes NVIDIA_VISIBLE_DEVICES and the spec's gpus (the devices
 * the shim samples). Values holding a newline are ignored. */
void ava_shim_spec_inherit(struct ava_shim_spec *s, const char *(*lookup)(const char *name));

/* Builds argv for execve: entry followed by the args, NULL-terminated. The strings are
 * borrowed from the spec; free only the array (free()). */
char **ava_shim_build_argv(const struct ava_shim_spec *s);

/* Frees a NULL-terminated array of malloc'd strings; NULL is a no-op. */
void ava_shim_strv_free(char **v);

#endif
