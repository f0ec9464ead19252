/* benchutil.h: what the benchmarks share: microsecond clocks, percentiles, /proc figures,
 * running a command from an argv, and the flag a signal sets to end every loop. */
#ifndef AVA_BENCH_BENCHUTIL_H
#define AVA_BENCH_BENCHUTIL_H

#include "../src/common/buf.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Set by SIGINT/SIGTERM: every measuring loop ends early so that cleanup runs. */
extern volatile sig_atomic_t bench_stop;

/* Monotonic time in microseconds. */
int64_t bench_mono_us(void);
/* Sleeps for us microseconds. */
void bench_sleep_us(int64_t us);
/* qsort comparator for doubles. */
int bench_cmp_double(const void *a, const void *b);
/* Nearest-rank percentile q (0..1] of the sorted array v of n values. */
double bench_percentile(const double *v, int n, double q);
/* Reads "Key:  N kB" from /proc/PID/<file>. Returns KiB or -1. */
long bench_proc_kib(pid_t pid, const char *file, const char *key);
/* Finds an executable on $PATH into out. Returns 0 or -1. */
int bench_find_on_path(const char *name, char *out, size_t outlen);
/* Runs argv (fork + execve, no shell), collecting stdout into out (may be NULL); stderr is
 * shown only when show_err. Returns the exit status, or -1 when it could not run. */
int bench_run_argv(char *const argv[], struct ava_buf *out, bool show_err);

/* The name of the file system that holds path ("ext2/3/4", "tmpfs", ..., else its magic
 * number): a benchmark's figures depend on it. The string may be static. */
const char *bench_fs_name(const char *path);

#endif
