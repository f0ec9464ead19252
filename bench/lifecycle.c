/* lifecycle.c: the lifecycle benchmark: create->running latency, short-training throughput,
 * avad and ava-shim memory, and the same latency/throughput for Slurm on loopback when a
 * cluster answers. Prints figures (it is not a test): its exit status only says whether the
 * measurements could be taken. */
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

#define AVAD_CPUS "64"      /* CPU slots: scheduling units, not cores */
#define LAT_ENTRY_SLEEP "0.1"  /* long enough to be seen running, short enough to free slots */
#define LAT_MIN_GAP_US 5000 /* paces the latency loop: at most ~25 sleeps alive at once */
#define MAX_CLIENTS 8
#define SLURM_JOB_TIMEOUT_MS 600000

/* What to measure (command-line options). */
struct opts {
    char avad[AVA_PATH_MAX];
    const char *slurm_conf;
    bool no_slurm;
    int lat_n, tput_n, store_n, clients, slurm_lat_n, slurm_tput_n;
};

/* The avad under test: its address, admin token and process. */
struct server {
    char base[256];
    char auth[512]; /* "Authorization: Bearer ..." */
    char data[AVA_PATH_MAX];
    pid_t pid;
};

/* One keep-alive HTTP connection to avad. */
struct client {
    CURL *h;
    struct curl_slist *hdrs;
    struct ava_buf resp;
    const struct server *srv;
};

/* The figures that the summary judges; NAN = not measured. */
struct figures {
    double ava_p50_ms, ava_per_s, shim_rss_kib, slurm_p50_ms, slurm_per_s;
};

static struct server g_srv = {.pid = -1};
static volatile sig_atomic_t g_stop;

/* SIGINT/SIGTERM: ask every loop to end so that the cleanup runs. */
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* Monotonic time in microseconds: the latencies are a few ms, so ms clocks are too coarse. */
static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleeps for us microseconds. */
static void sleep_us(int64_t us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* qsort comparator for doubles. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile q (0..1] of the sorted array v of n values. */
static double percentile(const double *v, int n, double q) {
    int k = (int)ceil(q * n);
    return v[k < 1 ? 0 : k - 1];
}

/* Reads "Key:  N kB" from /proc/PID/status (or smaps_rollup). Returns KiB or -1. */
static long proc_kib(pid_t pid, const char *file, const char *key) {
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
static int find_on_path(const char *name, char *out, size_t outlen) {
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
static int run_argv(char *const argv[], struct ava_buf *out, bool show_err) {
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

/* libcurl write callback: appends the body to the client's buffer. */
static size_t on_body(char *p, size_t size, size_t n, void *arg) {
    ava_buf_append(arg, p, size * n);
    return size * n;
}

/* Opens a keep-alive client for srv. Returns 0 or -1. */
static int client_init(struct client *c, const struct server *srv) {
    memset(c, 0, sizeof *c);
    c->srv = srv;
    c->h = curl_easy_init();
    if (!c->h)
        return -1;
    c->hdrs = curl_slist_append(NULL, srv->auth);
    c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->resp);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    return 0;
}

/* Closes the client. */
static void client_free(struct client *c) {
    if (c->h)
        curl_easy_cleanup(c->h);
    curl_slist_free_all(c->hdrs);
    ava_buf_free(&c->resp);
}

/* Sends one request (a POST when body is non-NULL, else a GET) to /api/v1 + path. Returns
 * the HTTP status, or -1 when there was no answer; the body is in c->resp. */
static long http(struct client *c, const char *path, const char *body) {
    char url[1024];
    snprintf(url, sizeof url, "%s/api/v1%s", c->srv->base, path);
    ava_buf_reset(&c->resp);
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(c->h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "lifecycle: %s: %s\n", url, curl_easy_strerror(rc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* The response body as JSON (caller decrefs), or NULL. */
static json_t *resp_json(const struct client *c) {
    return c->resp.len ? json_loadb(c->resp.data, c->resp.len, 0, NULL) : NULL;
}

/* Creates training name with entry and optional single argument; start=false stores it
 * only. Returns the HTTP status (201 on success) or -1. */
static long create_training(struct client *c, const char *name, const char *entry,
                            const char *arg, bool start) {
    json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:b}", "name", name, "image", "ava-pure:host",
                          "cpus", 1, "entry", entry, "start", start);
    if (arg)
        json_object_set_new(j, "args", json_pack("[s]", arg));
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    long st = http(c, "/trainings", body);
    free(body);
    if (st != 201)
        fprintf(stderr, "lifecycle: create %s: HTTP %ld %.300s\n", name, st,
                c->resp.data ? c->resp.data : "");
    return st;
}

/* True for the states a run ends in. */
static bool state_terminal(const char *s) {
    return s && (!strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "timed_out") ||
                 !strcmp(s, "stopped"));
}

/* The "state" of a training answer (NULL when absent); valid while j lives. */
static const char *training_state(json_t *j) {
    return json_string_value(json_object_get(j, "state"));
}

/* Counts the listed trainings whose name starts with prefix: *n in all, *ended in a
 * terminal state, *ok succeeded. Returns 0 or -1. */
static int count_states(struct client *c, const char *prefix, int *n, int *ended, int *ok) {
    if (http(c, "/trainings", NULL) != 200)
        return -1;
    json_t *j = resp_json(c);
    json_t *arr = json_object_get(j, "trainings"), *t;
    size_t i, pl = strlen(prefix);
    *n = *ended = *ok = 0;
    json_array_foreach(arr, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        if (!name || strncmp(name, prefix, pl) != 0)
            continue;
        const char *s = training_state(t);
        (*n)++;
        *ended += state_terminal(s);
        *ok += s && !strcmp(s, "succeeded");
    }
    json_decref(j);
    return arr ? 0 : -1;
}

/* Polls the list every poll_ms until the want trainings of prefix have all ended (or
 * timeout_ms passes). Fills *ok with the succeeded ones. Returns 0, or -1 on timeout. */
static int wait_ended(struct client *c, const char *prefix, int want, int poll_ms,
                      int64_t timeout_ms, int *ok) {
    int64_t deadline = ava_mono_ms() + timeout_ms;
    int n = 0, ended = 0;
    while (!g_stop && ava_mono_ms() < deadline) {
        if (count_states(c, prefix, &n, &ended, ok) == 0 && n >= want && ended >= want)
            return 0;
        sleep_us(poll_ms * 1000);
    }
    fprintf(stderr, "lifecycle: %s*: %d of %d ended before giving up\n", prefix, ended, want);
    return -1;
}

/* Waits (at most timeout_ms) for file path to be non-empty. Returns 0 or -1 (also when
 * avad died meanwhile). */
static int await_file(const char *path, pid_t pid, int timeout_ms) {
    int64_t deadline = ava_mono_ms() + timeout_ms;
    struct stat st;
    while (ava_mono_ms() < deadline) {
        if (stat(path, &st) == 0 && st.st_size > 0)
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        sleep_us(10000);
    }
    return -1;
}

/* Reads DATA/name into out without the trailing newline. Returns 0 or -1. */
static int read_small(const char *data, const char *name, char *out, size_t outlen) {
    char path[AVA_PATH_MAX], *txt = NULL;
    if (ava_path_join(path, sizeof path, NULL, data, name, NULL) < 0 ||
        ava_file_read_all(path, outlen - 1, &txt, NULL, NULL) < 0)
        return -1;
    txt[strcspn(txt, "\r\n")] = '\0';
    snprintf(out, outlen, "%s", txt);
    free(txt);
    return 0;
}

/* Starts avad in its own process group on a free loopback port in srv->data, then reads
 * the endpoint and the admin token it writes. Returns 0 or -1 (the log is shown). */
static int avad_start(struct server *srv, const char *avad) {
    char logpath[AVA_PATH_MAX], endpoint[AVA_PATH_MAX], token[256];
    snprintf(logpath, sizeof logpath, "%s/avad.log", srv->data);
    snprintf(endpoint, sizeof endpoint, "%s/endpoint", srv->data);
    char *argv[] = {(char *)avad, "--data",  srv->data, "--listen", "127.0.0.1:0",
                    "--cpus",     AVAD_CPUS, "--grace", "2s",       NULL};
    srv->pid = fork();
    if (srv->pid < 0)
        return -1;
    if (srv->pid == 0) {
        setpgid(0, 0); /* a ^C reaches the benchmark only, which then stops avad */
        int nul = open("/dev/null", O_RDONLY);
        int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        dup2(nul, 0);
        dup2(log, 1);
        dup2(log, 2);
        execve(avad, argv, environ);
        _exit(127);
    }
    if (await_file(endpoint, srv->pid, 10000) < 0 ||
        read_small(srv->data, "endpoint", srv->base, sizeof srv->base) < 0 ||
        read_small(srv->data, "admin.token", token, sizeof token) < 0) {
        char *txt = NULL;
        ava_file_read_all(logpath, 65536, &txt, NULL, NULL);
        fprintf(stderr, "lifecycle: avad did not come up; its log:\n%s\n", txt ? txt : "");
        free(txt);
        return -1;
    }
    snprintf(srv->auth, sizeof srv->auth, "Authorization: Bearer %s", token);
    return 0;
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
        sleep_us(100000);
        n = list_shims(data, pids, 256);
    }
    for (int i = 0; i < n; i++)
        kill_session(pids[i]);
    if (n > 0)
        fprintf(stderr, "lifecycle: killed %d shim session(s) that ignored SIGTERM\n", n);
}

/* Stops avad (SIGTERM, up to 5 s, then SIGKILL), ends the shims it left and removes the data
 * dir. Safe to call twice. */
static void server_cleanup(struct server *srv) {
    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        int i = 0;
        while (waitpid(srv->pid, NULL, WNOHANG) == 0 && i++ < 50)
            sleep_us(100000);
        if (i > 50) {
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, NULL, 0);
        }
        srv->pid = -1;
    }
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
static double one_latency(struct client *c, int i, bool *answered) {
    char name[64], path[96];
    snprintf(name, sizeof name, "lat-%d", i);
    snprintf(path, sizeof path, "/trainings/%s", name);
    int64_t t0 = mono_us();
    if (create_training(c, name, "/bin/sleep", LAT_ENTRY_SLEEP, true) != 201)
        return -1;
    json_t *j = resp_json(c);
    const char *s = training_state(j);
    *answered = s && strcmp(s, "creating") != 0 && strcmp(s, "queued") != 0;
    bool seen = *answered;
    json_decref(j);
    while (!seen && !g_stop && mono_us() - t0 < 10000000) {
        sleep_us(1000);
        if (http(c, path, NULL) != 200)
            return -1;
        j = resp_json(c);
        s = training_state(j);
        seen = s && strcmp(s, "creating") != 0 && strcmp(s, "queued") != 0;
        json_decref(j);
    }
    int64_t t1 = mono_us();
    return seen ? (double)(t1 - t0) / 1000.0 : -1;
}

/* Phase 1: create->running latency of n trainings created one at a time. Fills *p50. */
static int bench_latency(struct client *c, int n, double *p50) {
    double *v = ava_xcalloc((size_t)n, sizeof *v);
    int answered = 0, failed = 0, ok = 0;
    int64_t last = 0;
    for (int i = 0; i < n && !g_stop; i++) {
        int64_t gap = mono_us() - last;
        if (gap < LAT_MIN_GAP_US)
            sleep_us(LAT_MIN_GAP_US - gap);
        last = mono_us();
        bool ans = false;
        double ms = one_latency(c, i, &ans);
        if (ms < 0) {
            free(v);
            return -1;
        }
        v[i] = ms;
        answered += ans;
    }
    if (g_stop || wait_ended(c, "lat-", n, 50, 60000, &ok) < 0) {
        free(v);
        return -1;
    }
    failed = n - ok;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *p50 = percentile(v, n, 0.5);
    printf("create->running latency (%d trainings, one at a time): p50 %.1f ms  p99 %.1f ms  "
           "max %.1f ms  [target p50 <= 20 ms]\n",
           n, *p50, percentile(v, n, 0.99), v[n - 1]);
    printf("  (entry /bin/sleep %s; the POST answer already said running for %d of %d; %d of "
           "the runs did not succeed)\n",
           LAT_ENTRY_SLEEP, answered, n, failed);
    free(v);
    return 0;
}

/* One client thread's share of a batch of creations. */
struct creator {
    const struct server *srv;
    const char *prefix, *entry;
    int first, count, step;
    bool start;
    int failed;
};

/* Thread body: creates prefix<first + k*step> for k < count on its own connection. */
static void *creator_main(void *arg) {
    struct creator *cr = arg;
    struct client c;
    if (client_init(&c, cr->srv) < 0) {
        cr->failed = cr->count;
        return NULL;
    }
    char name[64];
    for (int k = 0; k < cr->count && !g_stop; k++) {
        snprintf(name, sizeof name, "%s%d", cr->prefix, cr->first + k * cr->step);
        if (create_training(&c, name, cr->entry, NULL, cr->start) != 201)
            cr->failed++;
    }
    client_free(&c);
    return NULL;
}

/* Creates prefix<first>..prefix<first+n-1> with `clients` threads, each on its own
 * keep-alive connection. Returns how many creations failed. */
static int create_many(const struct server *srv, int clients, const char *prefix, int first,
                       int n, const char *entry, bool start) {
    struct creator cr[MAX_CLIENTS];
    pthread_t th[MAX_CLIENTS];
    int failed = 0;
    for (int k = 0; k < clients; k++) {
        cr[k] = (struct creator){srv, prefix, entry, first + k, 0, clients, start, 0};
        cr[k].count = n / clients + (k < n % clients);
        if (pthread_create(&th[k], NULL, creator_main, &cr[k]) != 0) {
            cr[k].failed = cr[k].count;
            th[k] = 0;
        }
    }
    for (int k = 0; k < clients; k++) {
        if (th[k])
            pthread_join(th[k], NULL);
        failed += cr[k].failed;
    }
    return failed;
}

/* Phase 2: n trainings of /bin/true created as fast as the clients can, until all ended.
 * Fills *per_s. */
static int bench_throughput(struct client *c, int n, int clients, double *per_s) {
    int ok = 0;
    int64_t t0 = mono_us();
    int failed = create_many(c->srv, clients, "tput-", 0, n, "/bin/true", true);
    int64_t t1 = mono_us();
    if (failed > 0 || g_stop) {
        fprintf(stderr, "lifecycle: %d of %d creations failed\n", failed, n);
        return -1;
    }
    if (wait_ended(c, "tput-", n, 20, 600000, &ok) < 0)
        return -1;
    double wall = (double)(mono_us() - t0) / 1e6;
    *per_s = n / wall;
    printf("%d short trainings (/bin/true, %d client threads): %.2f s from the first POST "
           "until all ended = %.0f trainings/s  [target >= 200/s]\n",
           n, clients, wall, *per_s);
    printf("  (the %d POSTs took %.2f s = %.0f creates/s; %d succeeded, %d did not)\n", n,
           (double)(t1 - t0) / 1e6, n / ((double)(t1 - t0) / 1e6), ok, n - ok);
    return 0;
}

/* The shim pid of training name's latest run (executor_id "PID:STARTTIME"), or -1. */
static pid_t shim_pid(struct client *c, const char *name) {
    char path[96];
    snprintf(path, sizeof path, "/trainings/%s", name);
    if (http(c, path, NULL) != 200)
        return -1;
    json_t *j = resp_json(c);
    json_t *runs = json_object_get(j, "runs");
    json_t *last = json_array_get(runs, json_array_size(runs) - 1);
    const char *id = json_string_value(json_object_get(last, "executor_id"));
    pid_t pid = id ? (pid_t)strtol(id, NULL, 10) : -1;
    json_decref(j);
    return pid > 0 ? pid : -1;
}

/* Phase 3: the memory of one ava-shim supervising /bin/sleep 3. Fills *rss_kib. */
static int bench_shim(struct client *c, double *rss_kib) {
    if (create_training(c, "shim-rss", "/bin/sleep", "3", true) != 201)
        return -1;
    pid_t pid = shim_pid(c, "shim-rss");
    char arg1[AVA_PATH_MAX];
    pid_t sid;
    sleep_us(500000); /* let it settle: the entry runs, the log and metrics are open */
    if (pid < 0 || shim_info(pid, arg1, sizeof arg1, &sid) < 0) {
        fprintf(stderr, "lifecycle: no live ava-shim for shim-rss (pid %d)\n", (int)pid);
        return -1;
    }
    long rss = proc_kib(pid, "status", "VmRSS"), hwm = proc_kib(pid, "status", "VmHWM");
    long pss = proc_kib(pid, "smaps_rollup", "Pss");
    *rss_kib = (double)rss;
    printf("ava-shim RSS (supervising /bin/sleep 3): %ld KiB  (VmHWM %ld KiB, PSS %ld KiB)  "
           "[target <= 2048 KiB]\n",
           rss, hwm, pss);
    int ok = 0;
    return wait_ended(c, "shim-rss", 1, 100, 30000, &ok);
}

/* Phase 4: avad's memory with `total` trainings stored (the missing ones created with
 * "start": false), and the time of a full list at that size. */
static int bench_store(struct client *c, int total, int clients) {
    int have = 0, ended, ok;
    if (count_states(c, "", &have, &ended, &ok) < 0)
        return -1;
    int n = total - have;
    int64_t t0 = mono_us();
    if (n > 0 && create_many(c->srv, clients, "store-", 0, n, "/bin/true", false) > 0)
        return -1;
    double secs = (double)(mono_us() - t0) / 1e6;
    if (g_stop)
        return -1;
    long rss = proc_kib(c->srv->pid, "status", "VmRSS");
    long hwm = proc_kib(c->srv->pid, "status", "VmHWM");
    printf("avad RSS with %d trainings stored: %.1f MiB  (VmHWM %.1f MiB)\n", total, rss / 1024.0,
           hwm / 1024.0);
    printf("  (%d stored-only trainings created in %.2f s = %.0f creates/s)\n", n > 0 ? n : 0,
           secs, n > 0 ? n / secs : 0.0);
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        int64_t s = mono_us();
        if (http(c, "/trainings", NULL) != 200)
            return -1;
        double ms = (double)(mono_us() - s) / 1000.0;
        best = ms < best ? ms : best;
    }
    printf("GET /api/v1/trainings with %d trainings: %.1f ms (best of 3; %.1f MiB of JSON)\n",
           total, best, c->resp.len / 1048576.0);
    printf("avad RSS after listing them: %.1f MiB\n",
           proc_kib(c->srv->pid, "status", "VmRSS") / 1024.0);
    return 0;
}

/* The Slurm client tools, resolved on $PATH. */
struct slurm {
    char sbatch[AVA_PATH_MAX], squeue[AVA_PATH_MAX], scancel[AVA_PATH_MAX], sinfo[AVA_PATH_MAX];
};

/* Finds the tools and checks that a cluster answers. Returns 0, or -1 with why filled. */
static int slurm_find(const struct opts *o, struct slurm *sl, char *why, size_t whylen) {
    if (o->no_slurm)
        return snprintf(why, whylen, "--no-slurm given"), -1;
    if (find_on_path("sbatch", sl->sbatch, sizeof sl->sbatch) < 0 ||
        find_on_path("squeue", sl->squeue, sizeof sl->squeue) < 0 ||
        find_on_path("scancel", sl->scancel, sizeof sl->scancel) < 0 ||
        find_on_path("sinfo", sl->sinfo, sizeof sl->sinfo) < 0)
        return snprintf(why, whylen, "sbatch/squeue/scancel/sinfo not on PATH"), -1;
    if (o->slurm_conf)
        setenv("SLURM_CONF", o->slurm_conf, 1);
    if (!getenv("SLURM_CONF"))
        return snprintf(why, whylen, "SLURM_CONF not set and no --slurm-conf"), -1;
    struct ava_buf out = {0};
    char *argv[] = {sl->sinfo, "-h", "-o", "%T", NULL};
    int rc = run_argv(argv, &out, false);
    bool up = rc == 0 && out.len > 0 && !strstr(out.data, "down");
    if (!up)
        snprintf(why, whylen, "no cluster answers for SLURM_CONF=%s (sinfo: rc %d, '%.40s')",
                 getenv("SLURM_CONF"), rc, out.data ? out.data : "");
    ava_buf_free(&out);
    return up ? 0 : -1;
}

/* Submits `sbatch --parsable -o /dev/null -J name --wrap wrap`. Returns the job id or -1. */
static long slurm_submit(const struct slurm *sl, const char *name, const char *wrap) {
    struct ava_buf out = {0};
    char *argv[] = {(char *)sl->sbatch, "--parsable", "-o", "/dev/null", "-J", (char *)name,
                    "--wrap", (char *)wrap, NULL};
    int rc = run_argv(argv, &out, true);
    long id = rc == 0 && out.len ? strtol(out.data, NULL, 10) : -1;
    ava_buf_free(&out);
    return id > 0 ? id : -1;
}

/* Fills state with `squeue -h -j ID -o %T` ("" once the job left the queue). Returns 0/-1. */
static int slurm_state(const struct slurm *sl, long id, char *state, size_t len) {
    struct ava_buf out = {0};
    char ids[32];
    snprintf(ids, sizeof ids, "%ld", id);
    char *argv[] = {(char *)sl->squeue, "-h", "-j", ids, "-o", "%T", NULL};
    int rc = run_argv(argv, &out, false);
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
 * job is then cancelled and awaited so that the next one finds the node idle. */
static double slurm_one(const struct slurm *sl, const char *name) {
    char st[64] = "";
    int64_t t0 = mono_us();
    long id = slurm_submit(sl, name, "sleep 2");
    if (id < 0)
        return -1;
    while (!g_stop && mono_us() - t0 < SLURM_JOB_TIMEOUT_MS * 1000LL) {
        if (slurm_state(sl, id, st, sizeof st) == 0 && strcmp(st, "PENDING") != 0 &&
            strcmp(st, "CONFIGURING") != 0)
            break;
        sleep_us(2000);
    }
    double ms = (double)(mono_us() - t0) / 1000.0;
    char ids[32];
    snprintf(ids, sizeof ids, "%ld", id);
    char *argv[] = {(char *)sl->scancel, ids, NULL};
    run_argv(argv, NULL, true);
    for (int i = 0; i < 300 && slurm_state(sl, id, st, sizeof st) == 0 && slurm_active(st); i++)
        sleep_us(50000);
    return g_stop ? -1 : ms;
}

/* Slurm phase 1: submit->running latency of n jobs, one at a time. Fills *p50. */
static int slurm_latency(const struct slurm *sl, int n, double *p50) {
    char name[64];
    snprintf(name, sizeof name, "ava-bench-lat-%d", (int)getpid());
    double *v = ava_xcalloc((size_t)n, sizeof *v);
    for (int i = 0; i < n; i++) {
        v[i] = slurm_one(sl, name);
        if (v[i] < 0) {
            free(v);
            return -1;
        }
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *p50 = percentile(v, n, 0.5);
    printf("slurm submit->running latency (%d jobs `sbatch --wrap 'sleep 2'`, one at a time, "
           "squeue polled every 2 ms): p50 %.1f ms  p99 %.1f ms  max %.1f ms\n",
           n, *p50, percentile(v, n, 0.99), v[n - 1]);
    free(v);
    return 0;
}

/* Counts the jobs named name in the given squeue states (-t list). Returns -1 on error. */
static int slurm_count(const struct slurm *sl, const char *name, const char *states,
                       const char *match) {
    struct ava_buf out = {0};
    char *argv[] = {(char *)sl->squeue, "-h", "-n", (char *)name, "-t", (char *)states,
                    "-o",                "%T", NULL};
    int rc = run_argv(argv, &out, false), n = 0;
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
static int slurm_throughput(const struct slurm *sl, int n, double *per_s) {
    char name[64];
    snprintf(name, sizeof name, "ava-bench-tput-%d", (int)getpid());
    int64_t t0 = mono_us();
    for (int i = 0; i < n && !g_stop; i++)
        if (slurm_submit(sl, name, "true") < 0)
            return -1;
    double submit_s = (double)(mono_us() - t0) / 1e6;
    int left = n;
    while (!g_stop && left != 0 && mono_us() - t0 < SLURM_JOB_TIMEOUT_MS * 1000LL) {
        sleep_us(50000);
        left = slurm_count(sl, name, "PENDING,CONFIGURING,RUNNING,COMPLETING,SUSPENDED", NULL);
    }
    if (left != 0)
        return -1;
    double wall = (double)(mono_us() - t0) / 1e6;
    *per_s = n / wall;
    int done = slurm_count(sl, name, "all", "COMPLETED");
    printf("slurm %d short jobs (`sbatch --wrap true`): %.2f s from the first sbatch until all "
           "left the queue = %.1f jobs/s\n",
           n, wall, *per_s);
    printf("  (submitting took %.2f s = %.0f sbatch/s; %d COMPLETED; %d rather than 1000 jobs: "
           "Slurm turns over about 1 job/s per CPU slot here)\n",
           submit_s, n / submit_s, done, n);
    return 0;
}
