/* lifecycle.c: the lifecycle benchmark: create->running latency, short-training throughput,
 * avad and ava-shim memory, and the same latency/throughput for Slurm on loopback when a
 * cluster answers. Prints figures (it is not a test): its exit status only says whether the
 * measurements could be taken. */
#include "benchclient.h"
#include "benchutil.h"
#include "lifecycle_slurm.h"

#include "../src/common/buf.h"
#include "../src/common/err.h"
#include "../src/common/file.h"
#include "../src/common/path.h"
#include "../src/common/timeutil.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define AVAD_CPUS "64"        /* CPU slots: scheduling units, not cores */
#define LAT_ENTRY_SLEEP "0.1" /* long enough to be seen running, short enough to free slots */
#define LAT_MIN_GAP_US 5000   /* paces the latency loop: at most ~25 sleeps alive at once */
#define MAX_CLIENTS 8

/* What to measure (command-line options). */
struct opts {
    char avad[AVA_PATH_MAX];
    const char *slurm_conf;
    bool no_slurm;
    int lat_n, tput_n, store_n, clients, slurm_lat_n, slurm_tput_n;
};

/* The figures that the summary judges; NAN = not measured. */
struct figures {
    double ava_p50_ms, ava_per_s, shim_rss_kib, slurm_p50_ms, slurm_per_s;
};

static struct bench_server g_srv = {.pid = -1};

/* SIGINT/SIGTERM: ask every loop to end so that the cleanup runs. */
static void on_signal(int sig) {
    (void)sig;
    bench_stop = 1;
}

/* The "state" of a training answer (NULL when absent); valid while j lives. */
static const char *training_state(json_t *j) {
    return json_string_value(json_object_get(j, "state"));
}

/* Counts the listed trainings whose name starts with prefix: *n in all, *ended in a
 * terminal state, *ok succeeded. Returns 0 or -1. */
static int count_states(struct bench_client *c, const char *prefix, int *n, int *ended, int *ok) {
    if (bench_http(c, "/trainings", NULL) != 200)
        return -1;
    json_t *j = bench_resp_json(c);
    json_t *arr = json_object_get(j, "trainings"), *t;
    size_t i, pl = strlen(prefix);
    *n = *ended = *ok = 0;
    json_array_foreach(arr, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        if (!name || strncmp(name, prefix, pl) != 0)
            continue;
        const char *s = training_state(t);
        (*n)++;
        *ended += bench_state_terminal(s);
        *ok += s && !strcmp(s, "succeeded");
    }
    json_decref(j);
    return arr ? 0 : -1;
}

/* Polls the list every poll_ms until the want trainings of prefix have all ended (or
 * timeout_ms passes). Fills *ok with the succeeded ones. Returns 0, or -1 on timeout. */
static int wait_ended(struct bench_client *c, const char *prefix, int want, int poll_ms,
                      int64_t timeout_ms, int *ok) {
    int64_t deadline = ava_mono_ms() + timeout_ms;
    int n = 0, ended = 0;
    while (!bench_stop && ava_mono_ms() < deadline) {
        if (count_states(c, prefix, &n, &ended, ok) == 0 && n >= want && ended >= want)
            return 0;
        bench_sleep_us(poll_ms * 1000);
    }
    fprintf(stderr, "lifecycle: %s*: %d of %d ended before giving up\n", prefix, ended, want);
    return -1;
}

/* Fills sid and cmdline argv[1] of pid from /proc. Returns 0 when pid is an ava-shim. */
static int shim_info(pid_t pid, char *arg1, size_t arg1len, pid_t *sid) {
    char path[64], buf[AVA_PATH_MAX + 64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    size_t l0 = strlen(buf);
    if (strcmp(buf, "ava-shim") != 0 || (ssize_t)l0 + 1 >= n)
        return -1;
    snprintf(arg1, arg1len, "%s", buf + l0 + 1);
    *sid = getsid(pid);
    return 0;
}

/* Fills pids (capacity cap) with the ava-shims (session leaders) of runs under data.
 * Returns how many. */
static int list_shims(const char *data, pid_t *pids, int cap) {
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    char arg1[AVA_PATH_MAX], prefix[AVA_PATH_MAX];
    snprintf(prefix, sizeof prefix, "%s/", data);
    struct dirent *de;
    int n = 0;
    pid_t sid;
    while ((de = readdir(d)) && n < cap) {
        pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
        if (pid > 0 && shim_info(pid, arg1, sizeof arg1, &sid) == 0 && sid == pid &&
            !strncmp(arg1, prefix, strlen(prefix)))
            pids[n++] = pid;
    }
    closedir(d);
    return n;
}

/* Sends SIGKILL to every process of session sid. */
static void kill_session(pid_t sid) {
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
        if (pid > 0 && getsid(pid) == sid)
            kill(pid, SIGKILL);
    }
    closedir(d);
}

/* Ends the shims avad left running for data (they outlive avad by design): SIGTERM, avad's
 * grace plus a second, then SIGKILL for each shim's whole session. */
static void kill_shims(const char *data) {
    pid_t pids[256];
    int n = list_shims(data, pids, 256);
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    for (int t = 0; t < 30 && n > 0; t++) {
        bench_sleep_us(100000);
        n = list_shims(data, pids, 256);
    }
    for (int i = 0; i < n; i++)
        kill_session(pids[i]);
    if (n > 0)
        fprintf(stderr, "lifecycle: killed %d shim session(s) that ignored SIGTERM\n", n);
}

/* Stops avad (SIGTERM, up to 5 s, then SIGKILL), ends the shims it left and removes the data
 * dir. Safe to call twice. */
static void server_cleanup(struct bench_server *srv) {
    bench_avad_stop(srv);
    if (srv->data[0]) {
        char err[AVA_ERRLEN];
        kill_shims(srv->data);
        if (ava_rm_rf(srv->data, err) < 0)
            fprintf(stderr, "lifecycle: %s\n", err);
        srv->data[0] = '\0';
    }
}

/* Creates one latency training and returns the ms from sending the POST until its run is
 * seen running (or later), or a negative value on failure. *answered says whether the POST
 * answer itself already said running. */
static double one_latency(struct bench_client *c, int i, bool *answered) {
    char name[64], path[96];
    snprintf(name, sizeof name, "lat-%d", i);
    snprintf(path, sizeof path, "/trainings/%s", name);
    int64_t t0 = bench_mono_us();
    if (bench_create_training(c, name, "/bin/sleep", LAT_ENTRY_SLEEP, true) != 201)
        return -1;
    json_t *j = bench_resp_json(c);
    const char *s = training_state(j);
    *answered = s && strcmp(s, "creating") != 0 && strcmp(s, "queued") != 0;
    bool seen = *answered;
    json_decref(j);
    while (!seen && !bench_stop && bench_mono_us() - t0 < 10000000) {
        bench_sleep_us(1000);
        if (bench_http(c, path, NULL) != 200)
            return -1;
        j = bench_resp_json(c);
        s = training_state(j);
        seen = s && strcmp(s, "creating") != 0 && strcmp(s, "queued") != 0;
        json_decref(j);
    }
    int64_t t1 = bench_mono_us();
    return seen ? (double)(t1 - t0) / 1000.0 : -1;
}

/* Phase 1: create->running latency of n trainings created one at a time. Fills *p50. */
static int bench_latency(struct bench_client *c, int n, double *p50) {
    double *v = ava_xcalloc((size_t)n, sizeof *v);
    int answered = 0, failed = 0, ok = 0;
    int64_t last = 0;
    for (int i = 0; i < n && !bench_stop; i++) {
        int64_t gap = bench_mono_us() - last;
        if (gap < LAT_MIN_GAP_US)
            bench_sleep_us(LAT_MIN_GAP_US - gap);
        last = bench_mono_us();
        bool ans = false;
        double ms = one_latency(c, i, &ans);
        if (ms < 0) {
            free(v);
            return -1;
        }
        v[i] = ms;
        answered += ans;
    }
    if (bench_stop || wait_ended(c, "lat-", n, 50, 60000, &ok) < 0) {
        free(v);
        return -1;
    }
    failed = n - ok;
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    *p50 = bench_percentile(v, n, 0.5);
    printf("create->running latency (%d trainings, one at a time): p50 %.1f ms  p99 %.1f ms  "
           "min %.1f ms  max %.1f ms  [target p50 <= 20 ms]\n",
           n, *p50, bench_percentile(v, n, 0.99), v[0], v[n - 1]);
    printf("  (entry /bin/sleep %s; the POST answer already said running for %d of %d; %d of "
           "the runs did not succeed)\n",
           LAT_ENTRY_SLEEP, answered, n, failed);
    free(v);
    return 0;
}

/* One client thread's share of a batch of creations. */
struct creator {
    const struct bench_server *srv;
    const char *prefix, *entry;
    int first, count, step;
    bool start;
    int failed;
};

/* Thread body: creates prefix<first + k*step> for k < count on its own connection. */
static void *creator_main(void *arg) {
    struct creator *cr = arg;
    struct bench_client c;
    if (bench_client_init(&c, cr->srv, 60) < 0) {
        cr->failed = cr->count;
        return NULL;
    }
    char name[64];
    for (int k = 0; k < cr->count && !bench_stop; k++) {
        snprintf(name, sizeof name, "%s%d", cr->prefix, cr->first + k * cr->step);
        if (bench_create_training(&c, name, cr->entry, NULL, cr->start) != 201)
            cr->failed++;
    }
    bench_client_free(&c);
    return NULL;
}

/* Creates prefix<first>..prefix<first+n-1> with `clients` threads, each on its own
 * keep-alive connection. Returns how many creations failed. */
static int create_many(const struct bench_server *srv, int clients, const char *prefix, int first,
                       int n, const char *entry, bool start) {
    struct creator cr[MAX_CLIENTS];
    pthread_t th[MAX_CLIENTS];
    bool started[MAX_CLIENTS];
    int failed = 0;
    for (int k = 0; k < clients; k++) {
        cr[k] = (struct creator){srv, prefix, entry, first + k, 0, clients, start, 0};
        cr[k].count = n / clients + (k < n % clients);
        started[k] = pthread_create(&th[k], NULL, creator_main, &cr[k]) == 0;
        if (!started[k])
            cr[k].failed = cr[k].count;
    }
    for (int k = 0; k < clients; k++) {
        if (started[k])
            pthread_join(th[k], NULL);
        failed += cr[k].failed;
    }
    return failed;
}

/* Phase 2: n trainings of /bin/true created as fast as the clients can, until all ended.
 * Fills *per_s. */
static int bench_throughput(struct bench_client *c, int n, int clients, double *per_s) {
    int ok = 0;
    int64_t t0 = bench_mono_us();
    int failed = create_many(c->srv, clients, "tput-", 0, n, "/bin/true", true);
    int64_t t1 = bench_mono_us();
    if (failed > 0)
        fprintf(stderr, "lifecycle: %d of %d creations failed\n", failed, n);
    if (failed > 0 || bench_stop)
        return -1;
    if (wait_ended(c, "tput-", n, 20, 600000, &ok) < 0)
        return -1;
    double wall = (double)(bench_mono_us() - t0) / 1e6;
    *per_s = n / wall;
    printf("%d short trainings (/bin/true, %d client threads): %.2f s from the first POST "
           "until all ended = %.0f trainings/s  [target >= 200/s]\n",
           n, clients, wall, *per_s);
    printf("  (the %d POSTs took %.2f s = %.0f creates/s; %d succeeded, %d did not)\n", n,
           (double)(t1 - t0) / 1e6, n / ((double)(t1 - t0) / 1e6), ok, n - ok);
    return 0;
}

/* The shim pid of training name's latest run (executor_id "PID:STARTTIME"), or -1. */
static pid_t shim_pid(struct bench_client *c, const char *name) {
    char path[96];
    snprintf(path, sizeof path, "/trainings/%s", name);
    if (bench_http(c, path, NULL) != 200)
        return -1;
    json_t *j = bench_resp_json(c);
    json_t *runs = json_object_get(j, "runs");
    json_t *last = json_array_get(runs, json_array_size(runs) - 1);
    const char *id = json_string_value(json_object_get(last, "executor_id"));
    pid_t pid = id ? (pid_t)strtol(id, NULL, 10) : -1;
    json_decref(j);
    return pid > 0 ? pid : -1;
}

/* Phase 3: the memory of one ava-shim supervising /bin/sleep 3. Fills *rss_kib. */
static int bench_shim(struct bench_client *c, double *rss_kib) {
    if (bench_create_training(c, "shim-rss", "/bin/sleep", "3", true) != 201)
        return -1;
    pid_t pid = shim_pid(c, "shim-rss");
    char arg1[AVA_PATH_MAX];
    pid_t sid;
    bench_sleep_us(500000); /* let it settle: the entry runs, the log and metrics are open */
    if (pid < 0 || shim_info(pid, arg1, sizeof arg1, &sid) < 0) {
        fprintf(stderr, "lifecycle: no live ava-shim for shim-rss (pid %d)\n", (int)pid);
        return -1;
    }
    long rss = bench_proc_kib(pid, "status", "VmRSS"), hwm = bench_proc_kib(pid, "status", "VmHWM");
    long pss = bench_proc_kib(pid, "smaps_rollup", "Pss");
    *rss_kib = (double)rss;
    printf("ava-shim RSS (supervising /bin/sleep 3): %ld KiB  (VmHWM %ld KiB, PSS %ld KiB)  "
           "[target <= 2048 KiB]\n",
           rss, hwm, pss);
    int ok = 0;
    return wait_ended(c, "shim-rss", 1, 100, 30000, &ok);
}

/* Phase 4: avad's memory with `total` trainings stored (the missing ones created with
 * "start": false), and the time of a full list at that size. */
static int bench_store(struct bench_client *c, int total, int clients) {
    int have = 0, ended, ok;
    if (count_states(c, "", &have, &ended, &ok) < 0)
        return -1;
    int n = total - have;
    int64_t t0 = bench_mono_us();
    if (n > 0 && create_many(c->srv, clients, "store-", 0, n, "/bin/true", false) > 0)
        return -1;
    double secs = (double)(bench_mono_us() - t0) / 1e6;
    if (bench_stop)
        return -1;
    long rss = bench_proc_kib(c->srv->pid, "status", "VmRSS");
    long hwm = bench_proc_kib(c->srv->pid, "status", "VmHWM");
    printf("avad RSS with %d trainings stored: %.1f MiB  (VmHWM %.1f MiB)\n", total, rss / 1024.0,
           hwm / 1024.0);
    printf("  (%d stored-only trainings created in %.2f s = %.0f creates/s)\n", n > 0 ? n : 0, secs,
           n > 0 ? n / secs : 0.0);
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        int64_t s = bench_mono_us();
        if (bench_http(c, "/trainings", NULL) != 200)
            return -1;
        double ms = (double)(bench_mono_us() - s) / 1000.0;
        best = ms < best ? ms : best;
    }
    printf("GET /api/v1/trainings with %d trainings: %.1f ms (best of 3; %.1f MiB of JSON)\n",
           total, best, c->resp.len / 1048576.0);
    printf("avad RSS after listing them: %.1f MiB\n",
           bench_proc_kib(c->srv->pid, "status", "VmRSS") / 1024.0);
    return 0;
}

/* Prints one summary line: a target met, missed or not measured. */
static void judge(const char *what, double v, bool met, const char *fmt) {
    char val[64] = "not measured";
    if (!isnan(v))
        snprintf(val, sizeof val, fmt, v);
    printf("  %-11s %-48s %s\n", isnan(v) ? "[n/a]" : met ? "[met]" : "[NOT MET]", what, val);
}

/* The closing summary of the targets. */
static void summary(const struct figures *f) {
    double ratio = f->slurm_p50_ms / f->ava_p50_ms;
    printf("\nsummary of targets:\n");
    judge("create->running p50 <= 20 ms", f->ava_p50_ms, f->ava_p50_ms <= 20, "%.1f ms");
    judge(">= 10x faster than Slurm submit->running (p50)", ratio, ratio >= 10, "%.0fx");
    judge(">= 200 short trainings completed per second", f->ava_per_s, f->ava_per_s >= 200,
          "%.0f/s");
    judge("ava-shim RSS <= 2 MiB", f->shim_rss_kib, f->shim_rss_kib <= 2048, "%.0f KiB");
    if (!isnan(f->slurm_per_s) && !isnan(f->ava_per_s))
        printf("  (throughput: ava %.0f trainings/s vs Slurm %.1f jobs/s = %.0fx)\n", f->ava_per_s,
               f->slurm_per_s, f->ava_per_s / f->slurm_per_s);
}

/* Prints the usage text. */
static void usage(FILE *f) {
    fprintf(f, "usage: lifecycle [--avad PATH] [--slurm-conf FILE | --no-slurm] [--clients N]\n"
               "                 [--latency N] [--throughput N] [--stored N]\n"
               "                 [--slurm-latency N] [--slurm-throughput N]\n"
               "Starts its own avad (default: ../avad next to this program) in a temp dir and\n"
               "prints lifecycle figures; Slurm is measured when sbatch is on PATH and\n"
               "SLURM_CONF (or --slurm-conf) names a cluster that answers.\n");
}

/* Parses a positive count for option a. Returns 0 or -1. */
static int parse_count(const char *a, const char *v, int *out) {
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || n < 1 || n > 1000000) {
        fprintf(stderr, "lifecycle: %s needs a count from 1 to 1000000\n", a);
        return -1;
    }
    *out = (int)n;
    return 0;
}

/* Fills o from argv. Returns 0, 1 for --help, -1 on a usage error. */
static int parse_opts(int argc, char **argv, struct opts *o) {
    static const char *const names[] = {"--latency", "--throughput",    "--stored",
                                        "--clients", "--slurm-latency", "--slurm-throughput"};
    int *counts[] = {&o->lat_n,   &o->tput_n,      &o->store_n,
                     &o->clients, &o->slurm_lat_n, &o->slurm_tput_n};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool done = false;
        for (size_t k = 0; k < sizeof names / sizeof *names && !done; k++)
            if (!strcmp(a, names[k])) {
                if (parse_count(a, v, counts[k]) < 0)
                    return -1;
                done = true;
                i++;
            }
        if (done)
            continue;
        if (!strcmp(a, "--avad") && v)
            snprintf(o->avad, sizeof o->avad, "%s", argv[++i]);
        else if (!strcmp(a, "--slurm-conf") && v)
            o->slurm_conf = argv[++i];
        else if (!strcmp(a, "--no-slurm"))
            o->no_slurm = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return 1;
        else
            return fprintf(stderr, "lifecycle: unknown or incomplete option '%s'\n", a), -1;
    }
    if (o->clients > MAX_CLIENTS)
        o->clients = MAX_CLIENTS;
    return 0;
}

/* Prints what is measured where. */
static void header(const struct opts *o) {
    char when[32];
    struct utsname u;
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    uname(&u);
    printf("ava lifecycle benchmark, %s, %s %s, %ld online CPUs\n", when, u.sysname, u.release,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("avad: %s --cpus %s (CPU slots are scheduling units, not cores: many trivial "
           "trainings run at once), data in %s (%s)\n",
           o->avad, AVAD_CPUS, g_srv.data, bench_fs_name(g_srv.data));
}

/* The ava phases, in order, on one avad. Returns 0 or -1. */
static int run_ava(const struct opts *o, struct figures *f) {
    struct bench_client c;
    const char *const extra[] = {"--cpus", AVAD_CPUS, NULL};
    if (bench_avad_start(&g_srv, o->avad, extra, "lifecycle") < 0 ||
        bench_client_init(&c, &g_srv, 60) < 0)
        return -1;
    header(o);
    printf("avad RSS at start: %.1f MiB\n", bench_proc_kib(g_srv.pid, "status", "VmRSS") / 1024.0);
    fflush(stdout);
    int rc = bench_latency(&c, o->lat_n, &f->ava_p50_ms);
    fflush(stdout);
    if (rc == 0)
        rc = bench_throughput(&c, o->tput_n, o->clients, &f->ava_per_s);
    if (rc == 0)
        printf("avad RSS after the throughput run: %.1f MiB\n",
               bench_proc_kib(g_srv.pid, "status", "VmRSS") / 1024.0);
    fflush(stdout);
    if (rc == 0)
        rc = bench_shim(&c, &f->shim_rss_kib);
    fflush(stdout);
    if (rc == 0)
        rc = bench_store(&c, o->store_n, o->clients);
    fflush(stdout);
    bench_client_free(&c);
    return rc;
}

int main(int argc, char **argv) {
    struct opts o = {.lat_n = 200,
                     .tput_n = 1000,
                     .store_n = 10000,
                     .clients = 2,
                     .slurm_lat_n = 20,
                     .slurm_tput_n = 100};
    struct figures f = {NAN, NAN, NAN, NAN, NAN};
    int p = parse_opts(argc, argv, &o);
    if (p != 0) {
        usage(p > 0 ? stdout : stderr);
        return p > 0 ? 0 : 2;
    }
    if (!o.avad[0] && ava_exe_dir(o.avad, sizeof o.avad - 16) == 0)
        strcat(o.avad, "/../avad");
    const char *tmp = getenv("TMPDIR");
    snprintf(g_srv.data, sizeof g_srv.data, "%s/ava-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_srv.data)) {
        perror("lifecycle: mkdtemp");
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = run_ava(&o, &f);
    server_cleanup(&g_srv);
    struct slurm_opts so = {o.no_slurm, o.slurm_conf, o.slurm_lat_n, o.slurm_tput_n};
    if (rc == 0 && !bench_stop &&
        (rc = lifecycle_slurm_run(&so, &f.slurm_p50_ms, &f.slurm_per_s)) == 0 &&
        !isnan(f.slurm_p50_ms))
        printf("slurm p50 / ava p50 = %.0fx  [target >= 10x]\n", f.slurm_p50_ms / f.ava_p50_ms);
    summary(&f);
    curl_global_cleanup();
    if (rc < 0 || bench_stop)
        fprintf(stderr, "lifecycle: %s\n", bench_stop ? "interrupted" : "a measurement failed");
    return rc < 0 || bench_stop ? 1 : 0;
}
