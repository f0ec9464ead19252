/* metrics_reporter.c: the training that bench/metrics runs: reports N points of one series
 * through libava (ava_report), times its calls, and prints one result line for the benchmark
 * to read back from the training's log. Modes: free (a tight loop; what the supervisor cannot
 * take is dropped), burst (bursts of BURST points, timed, with untimed pauses in which the
 * queue is written out: nothing dropped) and paced (a tight loop that waits for the queue to
 * be written out every BURST points: nothing dropped, as fast as the supervisor consumes). */
#include "ava/ava.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define REPORTER_TAG "ava-bench-reporter: " /* bench/metrics.c looks for it */

#define BURST 1000             /* points between two waits for the queue (~85 KB of lines) */
#define PACE_SLEEP_NS 20000    /* pause between ava_flush() tries */
#define BURST_PAUSE_NS 1000000 /* burst mode: the "training step" after a burst, untimed */

/* Monotonic time in nanoseconds. */
static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The value of point i (the benchmark's ceiling inserts the same): a loss-like curve. */
static double point_value(int64_t i) {
    return 1.0 / (1.0 + 1e-6 * (double)i);
}

/* Waits (without dropping) until the SDK's queue is written out: ava_flush() never blocks,
 * so it is retried after a short pause while the supervisor has not read everything yet.
 * Returns 0, or -1 when the supervisor is gone. */
static int drain(void) {
    const struct timespec pause = {0, PACE_SLEEP_NS};
    while (ava_flush() < 0) {
        if (errno != EAGAIN)
            return -1;
        nanosleep(&pause, NULL);
    }
    return 0;
}

/* CPU seconds (user + system, every thread) of this process so far. */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

enum mode { FREE, BURST_MODE, PACED };
static const char *const mode_names[] = {"free", "burst", "paced"};

/* Reports n points of metric name (phase train, steps 0..n-1) in the given mode and prints
 * the result line: timed_ns is the time inside the reporting loops (burst: the bursts only),
 * wall_ns the whole, drain_ns the final wait for the queue. Returns the exit status. */
static int report(enum mode mode, int64_t n, const char *name) {
    if (!ava_enabled()) {
        fprintf(stderr, "metrics_reporter: not run by ava (AVA_METRICS_FD)\n");
        return 1;
    }
    const struct timespec pause = {0, BURST_PAUSE_NS};
    int64_t t0 = mono_ns(), timed = 0, b0 = t0;
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        if (ava_report(name, i, point_value(i), "phase=train") < 0) {
            perror("metrics_reporter: ava_report");
            return 1;
        }
        if (mode == FREE || ((i + 1) % BURST != 0 && i + 1 < n))
            continue;
        if (mode == BURST_MODE) { /* a step's computation: the flush thread writes meanwhile */
            timed += mono_ns() - b0;
            nanosleep(&pause, NULL);
        }
        rc = drain();
        b0 = mono_ns();
    }
    int64_t t1 = mono_ns();
    if (mode != BURST_MODE)
        timed = t1 - t0;
    rc = rc < 0 ? rc : drain();
    int64_t t2 = mono_ns();
    printf(REPORTER_TAG "mode=%s points=%lld timed_ns=%lld wall_ns=%lld drain_ns=%lld "
                        "dropped=%llu cpu_s=%.3f ns_per_point=%.1f%s\n",
           mode_names[mode], (long long)n, (long long)timed, (long long)(t1 - t0),
           (long long)(t2 - t1), (unsigned long long)ava_dropped_total(), cpu_seconds(),
           (double)timed / (double)n, rc < 0 ? " supervisor-gone" : "");
    fflush(stdout);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
    char *end = NULL;
    long long n = argc == 4 ? strtoll(argv[2], &end, 10) : -1;
    int mode = -1;
    for (int m = 0; m < 3 && argc == 4; m++)
        if (!strcmp(argv[1], mode_names[m]))
            mode = m;
    if (mode < 0 || !end || *end || n < 1) {
        fprintf(stderr, "usage: metrics_reporter free|burst|paced N NAME\n");
        return 2;
    }
    return report((enum mode)mode, (int64_t)n, argv[3]);
}
