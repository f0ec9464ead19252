/* lifecycle_slurm.c: raw sbatch measured the way lifecycle.c measures ava (see
 * lifecycle_slurm.h). */
#include "lifecycle_slurm.h"

#include "benchutil.h"

#include "../src/common/path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLURM_JOB_TIMEOUT_MS 600000
#define SLURM_IDLE_GAP_US 1000000 /* between latency samples: the node settles to idle */
/* plus up to this much, so that submissions do not lock onto slurmctld's scheduling passes */
#define SLURM_JITTER_US 1000000

/* Finds the tools and checks that a cluster answers. Returns 0, or -1 with why filled. */
int bench_slurm_find(const struct slurm_opts *o, struct slurm_tools *sl, char *why, size_t whylen) {
    if (o->skip)
        return snprintf(why, whylen, "--no-slurm given"), -1;
    if (bench_find_on_path("sbatch", sl->sbatch, sizeof sl->sbatch) < 0 ||
        bench_find_on_path("squeue", sl->squeue, sizeof sl->squeue) < 0 ||
        bench_find_on_path("scancel", sl->scancel, sizeof sl->scancel) < 0 ||
        bench_find_on_path("sinfo", sl->sinfo, sizeof sl->sinfo) < 0)
        return snprintf(why, whylen, "sbatch/squeue/scancel/sinfo not on PATH"), -1;
    if (o->slurm_conf)
        setenv("SLURM_CONF", o->slurm_conf, 1);
    if (!getenv("SLURM_CONF"))
        return snprintf(why, whylen, "SLURM_CONF not set and no --slurm-conf"), -1;
    struct ava_buf out = {0};
    char *argv[] = {sl->sinfo, "-h", "-o", "%T", NULL};
    int rc = bench_run_argv(argv, &out, false);
    bool up = rc == 0 && out.len > 0 && !strstr(out.data, "down");
    if (!up)
        snprintf(why, whylen, "no cluster answers for SLURM_CONF=%s (sinfo: rc %d, '%.40s')",
                 getenv("SLURM_CONF"), rc, out.data ? out.data : "");
    ava_buf_free(&out);
    return up ? 0 : -1;
}

/* Submits `sbatch --parsable -o /dev/null -J name --wrap wrap`. Returns the job id or -1. */
long bench_slurm_submit(const struct slurm_tools *sl, const char *name, const char *wrap) {
    struct ava_buf out = {0};
    char *argv[] = {(char *)sl->sbatch, "--parsable", "-o",         "/dev/null", "-J",
                    (char *)name,       "--wrap",     (char *)wrap, NULL};
    int rc = bench_run_argv(argv, &out, true);
    long id = rc == 0 && out.len ? strtol(out.data, NULL, 10) : -1;
    ava_buf_free(&out);
    return id > 0 ? id : -1;
}

/* Fills state with `squeue -h -j ID -o %T` ("" once the job left the queue). Returns 0/-1. */
static int bench_slurm_state(const struct slurm_tools *sl, long id, char *state, size_t len) {
    struct ava_buf out = {0};
    char ids[32];
    snprintf(ids, sizeof ids, "%ld", id);
    char *argv[] = {(char *)sl->squeue, "-h", "-j", ids, "-o", "%T", NULL};
    int rc = bench_run_argv(argv, &out, false);
    snprintf(state, len, "%s", out.data ? out.data : "");
    state[strcspn(state, "\r\n")] = '\0';
    ava_buf_free(&out);
    return rc == 0 ? 0 : -1;
}

/* True while a Slurm job state still holds the node (or has not started). */
static bool slurm_active(const char *s) {
    return !strcmp(s, "PENDING") || !strcmp(s, "CONFIGURING") || !strcmp(s, "RUNNING") ||
           !strcmp(s, "COMPLETING") || !strcmp(s, "SUSPENDED");
}

/* One Slurm latency sample: ms from submitting until squeue says RUNNING (or later); the
 * job is then cancelled and awaited, plus a random pause of 1-2 s, so that the next one finds
 * the node idle (the fairest case for Slurm) at a random point of slurmctld's cycle. */
double bench_slurm_one(const struct slurm_tools *sl, const char *name) {
    char st[64] = "";
    int64_t t0 = bench_mono_us();
    long id = bench_slurm_submit(sl, name, "sleep 2");
    if (id < 0)
        return -1;
    while (!bench_stop && bench_mono_us() - t0 < SLURM_JOB_TIMEOUT_MS * 1000LL) {
        if (bench_slurm_state(sl, id, st, sizeof st) == 0 && strcmp(st, "PENDING") != 0 &&
            strcmp(st, "CONFIGURING") != 0)
            break;
        bench_sleep_us(2000);
    }
    double ms = (double)(bench_mono_us() - t0) / 1000.0;
    char ids[32];
    snprintf(ids, sizeof ids, "%ld", id);
    char *argv[] = {(char *)sl->scancel, ids, NULL};
    bench_run_argv(argv, NULL, true);
    for (int i = 0; i < 300 && bench_slurm_state(sl, id, st, sizeof st) == 0 && slurm_active(st);
         i++)
        bench_sleep_us(50000);
    bench_sleep_us(SLURM_IDLE_GAP_US + random() % SLURM_JITTER_US);
    return bench_stop ? -1 : ms;
}

/* Slurm phase 1: submit->running latency of n jobs, one at a time. Fills *p50. */
static int slurm_latency(const struct slurm_tools *sl, int n, double *p50) {
    char name[64];
    snprintf(name, sizeof name, "ava-bench-lat-%d", (int)getpid());
    double *v = ava_xcalloc((size_t)n, sizeof *v);
    for (int i = 0; i < n; i++) {
        v[i] = bench_slurm_one(sl, name);
        if (v[i] < 0) {
            free(v);
            return -1;
        }
    }
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    *p50 = bench_percentile(v, n, 0.5);
    printf("slurm submit->running latency (%d jobs `sbatch --wrap 'sleep 2'`, one at a time, "
           "squeue polled every 2 ms, idle node, 1-2 s apart): p50 %.1f ms  p99 %.1f ms  min %.1f "
           "ms  max %.1f "
           "ms\n",
           n, *p50, bench_percentile(v, n, 0.99), v[0], v[n - 1]);
    free(v);
    return 0;
}

/* Counts the jobs named name in the given squeue states (-t list). Returns -1 on error. */
static int slurm_count(const struct slurm_tools *sl, const char *name, const char *states,
                       const char *match) {
    struct ava_buf out = {0};
    char *argv[] = {(char *)sl->squeue, "-h", "-n", (char *)name, "-t",
                    (char *)states,     "-o", "%T", NULL};
    int rc = bench_run_argv(argv, &out, false), n = 0;
    for (char *p = out.data, *nl; rc == 0 && p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            nl = p + strlen(p) - 1;
        n += !match || !strncmp(p, match, strlen(match));
    }
    ava_buf_free(&out);
    return rc == 0 ? n : -1;
}

/* Slurm phase 2: n `sbatch --wrap true` jobs submitted at once, timed until all left the
 * queue. Fills *per_s. */
int bench_slurm_throughput(const struct slurm_tools *sl, int n, double *per_s) {
    char name[64];
    snprintf(name, sizeof name, "ava-bench-tput-%d", (int)getpid());
    int64_t t0 = bench_mono_us();
    for (int i = 0; i < n && !bench_stop; i++)
        if (bench_slurm_submit(sl, name, "true") < 0)
            return -1;
    double submit_s = (double)(bench_mono_us() - t0) / 1e6;
    int left = n;
    while (!bench_stop && left != 0 && bench_mono_us() - t0 < SLURM_JOB_TIMEOUT_MS * 1000LL) {
        bench_sleep_us(50000);
        left = slurm_count(sl, name, "PENDING,CONFIGURING,RUNNING,COMPLETING,SUSPENDED", NULL);
    }
    if (left != 0)
        return -1;
    double wall = (double)(bench_mono_us() - t0) / 1e6;
    *per_s = n / wall;
    int done = slurm_count(sl, name, "all", "COMPLETED");
    printf("slurm %d short jobs (`sbatch --wrap true`): %.2f s from the first sbatch until all "
           "left the queue = %.1f jobs/s\n",
           n, wall, *per_s);
    printf("  (submitting took %.2f s = %.0f sbatch/s; %d COMPLETED; %d rather than 1000 jobs: "
           "Slurm turns over only a few jobs/s on this node)\n",
           submit_s, n / submit_s, done, n);
    return 0;
}

int lifecycle_slurm_run(const struct slurm_opts *o, double *p50_ms, double *per_s) {
    struct slurm_tools sl;
    char why[512];
    if (bench_slurm_find(o, &sl, why, sizeof why) < 0) {
        printf("slurm: skipped: %s\n", why);
        return 0;
    }
    printf("slurm: cluster of SLURM_CONF=%s (node: all its CPUs; ava's avad is stopped by now)\n",
           getenv("SLURM_CONF"));
    fflush(stdout);
    if (slurm_latency(&sl, o->lat_n, p50_ms) < 0)
        return -1;
    fflush(stdout);
    if (bench_slurm_throughput(&sl, o->tput_n, per_s) < 0)
        return -1;
    return 0;
}
