/* benchutil.c: helpers shared by the benchmarks (see benchutil.h). */
#include "benchutil.h"

#include "../src/common/path.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

volatile sig_atomic_t bench_stop;

/* Monotonic time in microseconds: the latencies are a few ms, so ms clocks are too coarse. */
int64_t bench_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleeps for us microseconds. */
void bench_sleep_us(int64_t us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* qsort comparator for doubles. */
int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank bench_percentile q (0..1] of the sorted array v of n values. */
double bench_percentile(const double *v, int n, double q) {
    int k = (int)ceil(q * n);
    return v[k < 1 ? 0 : k - 1];
}

/* Reads "Key:  N kB" from /proc/PID/status (or smaps_rollup). Returns KiB or -1. */
long bench_proc_kib(pid_t pid, const char *file, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            kib = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* Finds an executable named name on $PATH; fills out. Returns 0 or -1. */
int bench_find_on_path(const char *name, char *out, size_t outlen) {
    const char *p = getenv("PATH");
    if (!p)
        p = "/usr/local/bin:/usr/bin:/bin";
    while (*p) {
        size_t n = strcspn(p, ":");
        snprintf(out, outlen, "%.*s/%s", (int)n, p, name);
        if (n > 0 && access(out, X_OK) == 0)
            return 0;
        p += n + (p[n] == ':');
    }
    return -1;
}

/* Runs argv (argv[0] is a path) with fork/execve; stdout goes to out when non-NULL (through
 * a pipe), else to /dev/null; stderr is kept only when show_err. Returns the exit status, or
 * -1 when it could not run or was killed. */
int bench_run_argv(char *const argv[], struct ava_buf *out, bool show_err) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(out ? fds[1] : nul, 1);
        if (!show_err)
            dup2(nul, 2);
        execve(argv[0], argv, environ);
        _exit(127);
    }
    close(fds[1]);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out)
            ava_buf_append(out, chunk, (size_t)n);
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *bench_fs_name(const char *path) {
    static char other[32];
    struct statfs sf;
    if (statfs(path, &sf) < 0)
        return "unknown";
    switch ((unsigned long)sf.f_type) {
    case 0xEF53UL:
        return "ext2/3/4";
    case 0x01021994UL:
        return "tmpfs";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x794C7630UL:
        return "overlayfs";
    }
    snprintf(other, sizeof other, "fs 0x%lx", (unsigned long)sf.f_type);
    return other;
}
