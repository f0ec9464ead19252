/* lifecycle_slurm.h: the Slurm half of the lifecycle benchmark: submit->running latency and
 * short-job throughput of raw sbatch on a cluster that answers (Slurm on loopback). */
#ifndef AVA_BENCH_LIFECYCLE_SLURM_H
#define AVA_BENCH_LIFECYCLE_SLURM_H

#include <stdbool.h>

/* What the Slurm phases need from the command line. */
struct slurm_opts {
    bool skip;              /* --no-slurm */
    const char *slurm_conf; /* --slurm-conf, else $SLURM_CONF */
    int lat_n, tput_n;      /* jobs for latency and for throughput */
};

/* Measures and prints the Slurm figures when a cluster answers (a skip is printed and is
 * not an error). Fills *p50_ms and *per_s when measured. Returns 0 or -1. */
int lifecycle_slurm_run(const struct slurm_opts *o, double *p50_ms, double *per_s);

#endif
