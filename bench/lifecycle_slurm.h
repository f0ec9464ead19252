/* lifecycle_slurm.h: the Slurm half of the lifecycle benchmark: submit->running latency and
 * short-job throughput of raw sbatch on a cluster that answers (Slurm on loopback). */
#ifndef AVA_BENCH_LIFECYCLE_SLURM_H
#define AVA_BENCH_LIFECYCLE_SLURM_H

#include "../src/common/path.h"

#include <stdbool.h>
#include <stddef.h>

/* What the Slurm phases need from the command line. */
struct slurm_opts {
    bool skip;              /* --no-slurm */
    const char *slurm_conf; /* --slurm-conf, else $SLURM_CONF */
    int lat_n, tput_n;      /* jobs for latency and for throughput */
};

/* The Slurm client tools, resolved on $PATH. */
struct slurm_tools {
    char sbatch[AVA_PATH_MAX], squeue[AVA_PATH_MAX], scancel[AVA_PATH_MAX], sinfo[AVA_PATH_MAX];
};

/* Finds the tools and checks that a cluster answers. Returns 0, or -1 with why filled. */
int bench_slurm_find(const struct slurm_opts *o, struct slurm_tools *sl, char *why, size_t whylen);
/* Submits `sbatch --parsable -o /dev/null -J name --wrap wrap`. Returns the job id or -1. */
long bench_slurm_submit(const struct slurm_tools *sl, const char *name, const char *wrap);
/* One latency sample of raw sbatch: ms from submitting `sleep 2` until squeue (polled every
 * 2 ms) says it runs; the job is then cancelled and awaited, then 1-2 s (random) pass so the
 * next sample finds the node idle. Returns -1 on failure. */
double bench_slurm_one(const struct slurm_tools *sl, const char *name);
/* n `sbatch --wrap true` jobs at once, timed until all left the queue; prints the figure and
 * fills *per_s. Returns 0 or -1. */
int bench_slurm_throughput(const struct slurm_tools *sl, int n, double *per_s);

/* Measures and prints the Slurm figures when a cluster answers (a skip is printed and is
 * not an error). Fills *p50_ms and *per_s when measured. Returns 0 or -1. */
int lifecycle_slurm_run(const struct slurm_opts *o, double *p50_ms, double *per_s);

#endif
