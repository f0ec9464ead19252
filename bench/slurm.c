/* slurm.c: the Slurm executor benchmark: submit -> running latency and 100-training
 * throughput through ava (avad --executor slurm) and, in the same run, with raw sbatch on the
 * same cluster. Latency samples alternate (raw, ava, raw, ava, ...) so that both see the
 * same moments of the machine; throughput runs ava's batch, then raw's. Prints figures (it
 * is not a test): its exit status only says whether the measurements could be taken. */
#include "benchclient.h"
#include "benchutil.h"
#include "lifecycle_slurm.h"

#include "../src/common/buf.h"
#include "../src/common/err.h"
#include "../src/common/file.h"
#include "../src/common/path.h"
#include "../src/common/timeutil.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_US (600LL * 1000000)

/* What to measure (command-line options). */
struct opts {
    char avad[AVA_PATH_MAX];
    int lat_n, tput_n, rounds;
};

static struct bench_server g_srv = {.pid = -1};

/* SIGINT/SIGTERM: ask every loop to end so that the cleanup runs. */
static void on_signal(int sig) {
    (void)sig;
    bench_stop = 1;
}

/* The latest run's state of a training answer (NULL when absent); valid while j lives. */
static const char *state_of(json_t *j) {
    return json_string_value(json_object_get(j, "state"));
}

/* GETs training name and returns a copy of its state in out ("" on failure). */
static void get_state(struct bench_client *c, const char *name, char *out, size_t len) {
    char path[160];
    snprintf(path, sizeof path, "/trainings/%s", name);
    out[0] = '\0';
    if (bench_http(c, path, NULL) != 200)
        return;
    json_t *j = bench_resp_json(c);
    snprintf(out, len, "%s", state_of(j) ? state_of(j) : "");
    json_decref(j);
}

/* One ava latency sample: ms from sending the POST until GET (every 2 ms, as raw's squeue)
 * says running; then the training is stopped and awaited, and 1-2 s (random) pass. */
static double ava_one(struct bench_client *c, int i) {
    char name[64], st[32] = "", path[160];
    snprintf(name, sizeof name, "lat-%d", i);
    int64_t t0 = bench_mono_us();
    if (bench_create_training(c, name, "/bin/sleep", "30", true) != 201)
        return -1;
    while (!bench_stop && bench_mono_us() - t0 < TIMEOUT_US) {
        get_state(c, name, st, sizeof st);
        if (strcmp(st, "queued") != 0 && strcmp(st, "creating") != 0)
            break;
        bench_sleep_us(2000);
    }
    double ms = (double)(bench_mono_us() - t0) / 1000.0;
    if (strcmp(st, "running") != 0) {
        fprintf(stderr, "slurm: %s is %s, not running\n", name, st);
        return -1;
    }
    snprintf(path, sizeof path, "/trainings/%s/stop", name);
    bench_http(c, path, "{}");
    while (!bench_stop && !bench_state_terminal(st) && bench_mono_us() - t0 < TIMEOUT_US) {
        bench_sleep_us(50000);
        get_state(c, name, st, sizeof st);
    }
    bench_sleep_us(1000000 + random() % 1000000);
    return bench_stop ? -1 : ms;
}

/* Prints one latency line and returns the mean of v (n values, sorted here). Slurm starts a
 * job either at submission or at its next scheduling pass, so the values fall in two groups;
 * the line says how many started within FAST_MS and the median of each group. */
#define FAST_MS 150.0
static double report_latency(const char *what, double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    double sum = 0;
    int fast = 0;
    for (int i = 0; i < n; i++) {
        sum += v[i];
        fast += v[i] < FAST_MS;
    }
    printf("%s:\n  mean %.1f ms  p50 %.1f ms  p99 %.1f ms  min %.1f ms  max %.1f ms;"
           " %d of %d started at once (< %.0f ms: median %.1f ms), the others median %.1f ms\n",
           what, sum / n, bench_percentile(v, n, 0.5), bench_percentile(v, n, 0.99), v[0], v[n - 1],
           fast, n, FAST_MS, fast ? bench_percentile(v, fast, 0.5) : NAN,
           fast < n ? bench_percentile(v + fast, n - fast, 0.5) : NAN);
    return sum / n;
}

/* Latency: n samples each of raw sbatch and of ava, alternating. Fills the means. */
static int latency(struct bench_client *c, const struct slurm_tools *sl, int n, double *raw_mean,
                   double *ava_mean) {
    double *raw = ava_xcalloc((size_t)n, sizeof *raw), *ava = ava_xcalloc((size_t)n, sizeof *ava);
    char name[64];
    snprintf(name, sizeof name, "ava-bench-raw-%d", (int)getpid());
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        raw[i] = bench_slurm_one(sl, name);
        ava[i] = raw[i] < 0 ? -1 : ava_one(c, i);
        if (raw[i] < 0 || ava[i] < 0)
            rc = -1;
    }
    if (rc == 0) {
        *raw_mean = report_latency("raw sbatch submit->running (`sbatch --wrap 'sleep 2'`, squeue "
                                   "polled every 2 ms)",
                                   raw, n);
        *ava_mean = report_latency("ava submit->running (POST /api/v1/trainings, GET polled every "
                                   "2 ms until running)",
                                   ava, n);
        printf("  (%d samples each, alternating raw and ava, idle node, 1-2 s apart)\n", n);
    }
    free(raw);
    free(ava);
    return rc;
}

/* Counts trainings whose name starts with prefix: *ended terminal, *ok succeeded. Returns 0
 * or -1. */
static int count_ended(struct bench_client *c, const char *prefix, int *ended, int *ok) {
    if (bench_http(c, "/trainings", NULL) != 200)
        return -1;
    json_t *j = bench_resp_json(c), *t;
    size_t i;
    *ended = *ok = 0;
    json_array_foreach(json_object_get(j, "trainings"), i, t) {
        const char *nm = json_string_value(json_object_get(t, "name"));
        if (nm && !strncmp(nm, prefix, strlen(prefix))) {
            *ended += bench_state_terminal(state_of(t));
            *ok += state_of(t) && !strcmp(state_of(t), "succeeded");
        }
    }
    json_decref(j);
    return 0;
}

/* Throughput through ava: n trainings of /bin/true created at once (named PREFIX<i>), timed
 * until all ended. */
static int ava_throughput(struct bench_client *c, const char *prefix, int n, double *per_s) {
    int64_t t0 = bench_mono_us();
    char name[64];
    for (int i = 0; i < n && !bench_stop; i++) {
        snprintf(name, sizeof name, "%s%d", prefix, i);
        if (bench_create_training(c, name, "/bin/true", NULL, true) != 201)
            return -1;
    }
    double submit_s = (double)(bench_mono_us() - t0) / 1e6;
    int ended = 0, ok = 0;
    while (!bench_stop && ended < n && bench_mono_us() - t0 < TIMEOUT_US) {
        bench_sleep_us(50000);
        if (count_ended(c, prefix, &ended, &ok) < 0)
            return -1;
    }
    if (ended < n)
        return -1;
    double wall = (double)(bench_mono_us() - t0) / 1e6;
    *per_s = n / wall;
    printf("ava %d short trainings (/bin/true): %.2f s from the first POST until all ended = %.1f "
           "trainings/s\n  (creating took %.2f s = %.0f creates/s; %d succeeded)\n",
           n, wall, *per_s, submit_s, n / submit_s, ok);
    return 0;
}

/* Stops avad and removes its data dir (its jobs ended or were stopped by then). */
static void cleanup(void) {
    bench_avad_stop(&g_srv);
    if (g_srv.data[0]) {
        char err[AVA_ERRLEN];
        if (ava_rm_rf(g_srv.data, err) < 0)
            fprintf(stderr, "slurm: %s\n", err);
        g_srv.data[0] = '\0';
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: slurm [--avad PATH] [--latency N] [--throughput N]\n"
               "  needs a Slurm cluster that answers (SLURM_CONF; bench/run-slurm starts one)\n"
               "  defaults: --latency 40 --throughput 100 --rounds 2 (throughput batches of\n"
               "  each, alternating ava and raw sbatch)\n");
}

static int parse_opts(int argc, char **argv, struct opts *o) {
    o->avad[0] = '\0';
    if (ava_exe_dir(o->avad, sizeof o->avad - 16) == 0)
        strcat(o->avad, "/../avad");
    o->lat_n = 40;
    o->tput_n = 100;
    o->rounds = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--avad") && v)
            snprintf(o->avad, sizeof o->avad, "%s", v), i++;
        else if (!strcmp(a, "--latency") && v)
            o->lat_n = atoi(v), i++;
        else if (!strcmp(a, "--throughput") && v)
            o->tput_n = atoi(v), i++;
        else if (!strcmp(a, "--rounds") && v)
            o->rounds = atoi(v), i++;
        else
            return usage(stderr), -1;
    }
    return o->lat_n > 0 && o->tput_n > 0 && o->rounds > 0 ? 0 : (usage(stderr), -1);
}

/* Prints the header: when, where, with what. */
static void header(const struct opts *o) {
    struct utsname u;
    uname(&u);
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    printf("ava Slurm executor benchmark, %s, Linux %s, %ld online CPUs\n", when, u.release,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("avad: %s --executor slurm, data in %s (%s); cluster of SLURM_CONF=%s\n", o->avad,
           g_srv.data, bench_fs_name(g_srv.data), getenv("SLURM_CONF"));
}

/* Prints one judged line. */
static void judge(const char *what, double ratio) {
    printf("  [%s]  %-58s %.2fx\n", ratio <= 1.1 ? "met    " : "NOT MET", what, ratio);
}

int main(int argc, char **argv) {
    struct opts o;
    if (parse_opts(argc, argv, &o) < 0)
        return 2;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    srandom((unsigned)time(NULL));
    struct slurm_tools sl;
    struct slurm_opts so = {0};
    char why[512];
    if (bench_slurm_find(&so, &sl, why, sizeof why) < 0) {
        fprintf(stderr, "slurm: no cluster: %s\n", why);
        return 1;
    }
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_srv.data, sizeof g_srv.data, "%s/ava-bench-slurm-XXXXXX", tmp);
    if (!mkdtemp(g_srv.data))
        return perror("mkdtemp"), 1;
    const char *const extra[] = {"--executor", "slurm", NULL};
    struct bench_client c;
    if (bench_avad_start(&g_srv, o.avad, extra, "slurm") < 0 ||
        bench_client_init(&c, &g_srv, 120) < 0) {
        cleanup();
        return 1;
    }
    header(&o);
    fflush(stdout);
    double raw_mean = NAN, ava_mean = NAN, raw_tput = NAN, ava_tput = NAN;
    int rc = latency(&c, &sl, o.lat_n, &raw_mean, &ava_mean);
    fflush(stdout);
    /* Slurm's turnover on this node varies by tens of per cent from batch to batch: several
     * alternating rounds, judged by the total time of each side */
    double ava_s = 0, raw_s = 0;
    for (int r = 0; r < o.rounds && rc == 0; r++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "tput%d-", r);
        rc = ava_throughput(&c, prefix, o.tput_n, &ava_tput);
        fflush(stdout);
        if (rc == 0)
            rc = bench_slurm_throughput(&sl, o.tput_n, &raw_tput);
        fflush(stdout);
        ava_s += o.tput_n / ava_tput;
        raw_s += o.tput_n / raw_tput;
    }
    if (rc == 0)
        printf(
            "throughput over %d rounds: ava %.2f s, raw sbatch %.2f s for %d x %d trainings/jobs\n",
            o.rounds, ava_s, raw_s, o.rounds, o.tput_n);
    bench_client_free(&c);
    cleanup();
    if (rc < 0) {
        fprintf(stderr, "slurm: a measurement failed%s\n", bench_stop ? " (interrupted)" : "");
        return 1;
    }
    printf("\nsummary (target: ava's overhead <= 1.1x raw sbatch):\n");
    judge("submit->running mean, ava / raw sbatch", ava_mean / raw_mean);
    char what[96];
    snprintf(what, sizeof what, "time for %d x %d short trainings, ava / raw sbatch", o.rounds,
             o.tput_n);
    judge(what, ava_s / raw_s);
    return 0;
}
