/* metrics.c: the metrics benchmark: libava's cost per point while the shim consumes, end-to-end
 * ingest of millions of points from a training until all are queryable, the ceiling of a bare
 * batched SQLite insert of the same rows into the same schema, and series queries (LTTB down to
 * 1,000 points, raw pages). Prints figures (it is not a test): its exit status only says
 * whether the measurements could be taken. */
#include "benchclient.h"
#include "benchutil.h"

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
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define POLL_US 100000      /* how often the series' count is polled */
#define STALL_LIMIT_US 3e8  /* no new point for 5 minutes: give up */
#define CEILING_BATCH 5000  /* rows per transaction: AVA_INGEST_BATCH (src/metrics/ingest.h) */
#define LTTB_POINTS 1000    /* the query's max_points */
#define UNCACHED_QUERIES 20 /* LTTB queries that miss avad's answer cache */
#define PAGE_POINTS 10000   /* a raw page */
#define PAGE_QUERIES 50
#define REPORTER_TAG "ava-bench-reporter: "

/* What to measure (command-line options). */
struct opts {
    char avad[AVA_PATH_MAX], reporter[AVA_PATH_MAX];
    long long points, sdk_points, query_points;
    int queries;
};

/* The reporter's result line, read back from its training's log. */
struct report {
    long long points, timed_ns, wall_ns, drain_ns;
    unsigned long long dropped;
    double cpu_s;
};

/* What polling a series found: its count, when (bench_mono_us) the count was reached and the
 * run was first seen ended (0: not seen), and the run's ava-shim with its CPU seconds as last
 * seen. */
struct series_poll {
    long long count;
    char state[32];
    int64_t t_count, t_ended;
    pid_t shim;
    double shim_cpu;
};

/* The figures that the summary judges; NAN = not measured. */
struct figures {
    double sdk_ns, sdk_drops, ingest_per_s, ceiling_per_s, q_p99, q_miss_p99;
};

static struct bench_server g_srv = {.pid = -1};

/* SIGINT/SIGTERM: ask every loop to end so that the cleanup runs. */
static void on_signal(int sig) {
    (void)sig;
    bench_stop = 1;
}

/* CPU seconds (user + system) that process pid has used, from /proc; -1 when it is gone. */
static double proc_cpu_s(pid_t pid) {
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *p = n > 0 ? strrchr(buf, ')') : NULL; /* fields 14, 15 after the name */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Reads the latest run's state and the count of series (metric, phase train) of training
 * name from GET /trainings/NAME/metrics into p. Returns 0 or -1. */
static int series_status(struct bench_client *c, const char *name, const char *metric,
                         struct series_poll *p) {
    char path[256];
    snprintf(path, sizeof path, "/trainings/%s/metrics", name);
    if (bench_http(c, path, NULL) != 200)
        return -1;
    json_t *j = bench_resp_json(c);
    json_t *runs = json_object_get(j, "runs");
    json_t *run = json_array_get(runs, json_array_size(runs) - 1), *s;
    const char *state = json_string_value(json_object_get(run, "state"));
    size_t i;
    p->count = 0;
    json_array_foreach(json_object_get(run, "series"), i, s) {
        const char *n = json_string_value(json_object_get(s, "name"));
        const char *ph = json_string_value(json_object_get(s, "phase"));
        if (n && ph && !strcmp(n, metric) && !strcmp(ph, "train"))
            p->count = (long long)json_integer_value(json_object_get(s, "count"));
    }
    snprintf(p->state, sizeof p->state, "%s", state ? state : "");
    json_decref(j);
    return state ? 0 : -1;
}

/* The ava-shim pid of training name's latest run (executor_id "PID:START"), or -1. */
static pid_t shim_pid(struct bench_client *c, const char *name) {
    char path[256];
    snprintf(path, sizeof path, "/trainings/%s", name);
    if (bench_http(c, path, NULL) != 200)
        return -1;
    json_t *j = bench_resp_json(c), *runs = json_object_get(j, "runs");
    json_t *last = json_array_get(runs, json_array_size(runs) - 1);
    const char *id = json_string_value(json_object_get(last, "executor_id"));
    pid_t pid = id ? (pid_t)strtol(id, NULL, 10) : -1;
    json_decref(j);
    return pid > 0 ? pid : -1;
}

/* Polls the series every POLL_US until it holds want points (want 0: until the run ended).
 * Fills p. Returns 0, or -1 when the run ended short, nothing moved for STALL_LIMIT_US, a
 * request failed or the benchmark was interrupted. */
static int poll_series(struct bench_client *c, const char *name, const char *metric, long long want,
                       struct series_poll *p) {
    long long last = -1;
    int64_t moved = bench_mono_us();
    memset(p, 0, sizeof *p);
    while (!bench_stop) {
        if (series_status(c, name, metric, p) < 0)
            return -1;
        int64_t now = bench_mono_us();
        if (!p->shim && !strcmp(p->state, "running"))
            p->shim = shim_pid(c, name);
        double cpu = p->shim > 0 ? proc_cpu_s(p->shim) : -1;
        p->shim_cpu = cpu >= 0 ? cpu : p->shim_cpu;
        bool ended = bench_state_terminal(p->state);
        if (ended && !p->t_ended)
            p->t_ended = now;
        if (want > 0 && p->count >= want) {
            p->t_count = now;
            return 0;
        }
        if (ended && (want == 0 || last == p->count))
            break; /* the end hook stored every point before the final state */
        if (p->count != last)
            moved = now, last = p->count;
        if (now - moved > STALL_LIMIT_US)
            break;
        bench_sleep_us(POLL_US);
    }
    if (want > 0 && !bench_stop)
        fprintf(stderr, "metrics: %s: %lld of %lld points stored, run %s\n", name, p->count, want,
                p->state);
    return want == 0 && p->t_ended ? 0 : -1;
}

/* Reads the reporter's result line from training name's log into r. Returns 0 or -1. */
static int read_report(struct bench_client *c, const char *name, struct report *r) {
    char path[256];
    snprintf(path, sizeof path, "/trainings/%s/logs", name);
    if (bench_http(c, path, NULL) != 200)
        return -1;
    ava_buf_append(&c->resp, "", 1);
    const char *p = strstr(c->resp.data, REPORTER_TAG);
    if (p &&
        sscanf(p + strlen(REPORTER_TAG),
               "mode=%*s points=%lld timed_ns=%lld wall_ns=%lld drain_ns=%lld dropped=%llu "
               "cpu_s=%lf",
               &r->points, &r->timed_ns, &r->wall_ns, &r->drain_ns, &r->dropped, &r->cpu_s) == 6)
        return 0;
    fprintf(stderr, "metrics: no result line in the log of %s:\n%.2000s\n", name, c->resp.data);
    return -1;
}

/* Whether pid is an ava-shim leading its session for a run under data (its argv[1]). */
static bool is_our_shim(pid_t pid, const char *data) {
    char path[64], buf[AVA_PATH_MAX + 64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    size_t l0 = strlen(buf), dl = strlen(data);
    return !strcmp(buf, "ava-shim") && (ssize_t)l0 + 1 < n && getsid(pid) == pid &&
           !strncmp(buf + l0 + 1, data, dl) && buf[l0 + 1 + dl] == '/';
}

/* Sends sig to every ava-shim (session leader) of a run under data, or with sig SIGKILL to
 * its whole session. Returns how many shims were found. */
static int signal_shims(const char *data, int sig) {
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    pid_t pids[256];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256) {
        pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
        if (pid > 0 && is_our_shim(pid, data))
            pids[n++] = pid;
    }
    for (int i = 0; i < n && sig != SIGKILL; i++)
        kill(pids[i], sig);
    for (int i = 0; i < n && sig == SIGKILL; i++) {
        rewinddir(d);
        while ((de = readdir(d))) {
            pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
            if (pid > 0 && getsid(pid) == pids[i])
                kill(pid, SIGKILL);
        }
    }
    closedir(d);
    return n;
}

/* Stops avad (SIGTERM, up to 5 s, then SIGKILL), ends the shims it left (SIGTERM, 3 s, then
 * SIGKILL of their sessions) and removes the data dir. Safe to call twice. */
static void server_cleanup(struct bench_server *srv) {
    bench_avad_stop(srv);
    if (!srv->data[0])
        return;
    int n = signal_shims(srv->data, SIGTERM);
    for (int t = 0; t < 30 && n > 0; t++) {
        bench_sleep_us(100000);
        n = signal_shims(srv->data, 0);
    }
    if (n > 0 && signal_shims(srv->data, SIGKILL) > 0)
        fprintf(stderr, "metrics: killed %d shim session(s) that ignored SIGTERM\n", n);
    char err[AVA_ERRLEN];
    if (ava_rm_rf(srv->data, err) < 0)
        fprintf(stderr, "metrics: %s\n", err);
    srv->data[0] = '\0';
}

/* Creates and starts training name running `reporter mode n metric`. Returns 0 or -1. */
static int create_reporter(struct bench_client *c, const char *reporter, const char *name,
                           const char *mode, long long n, const char *metric) {
    char count[32];
    snprintf(count, sizeof count, "%lld", n);
    const char *const args[] = {mode, count, metric, NULL};
    return bench_create_training_argv(c, name, reporter, args, true) == 201 ? 0 : -1;
}

/* Runs training name (reporter in mode, n points of metric) to its end and reads its result
 * line into r and the series' stored count into p. Returns 0 or -1. */
static int run_reporter(struct bench_client *c, const char *reporter, const char *name,
                        const char *mode, long long n, struct report *r, struct series_poll *p) {
    char metric[64];
    snprintf(metric, sizeof metric, "bench.%s", name);
    if (create_reporter(c, reporter, name, mode, n, metric) < 0 ||
        poll_series(c, name, metric, 0, p) < 0 || read_report(c, name, r) < 0)
        return -1;
    if (strcmp(p->state, "succeeded") != 0)
        fprintf(stderr, "metrics: training %s: run %s\n", name, p->state);
    return strcmp(p->state, "succeeded") ? -1 : 0;
}

/* Phase 1: SDK cost while ava-shim consumes. The judged figure: n points in bursts of 1000
 * (timed) with 1 ms pauses (untimed) in which the queue is written out, so nothing is
 * dropped; then the same n in one tight loop, where most points are dropped. Fills f->sdk_ns
 * and f->sdk_drops. */
static int bench_sdk(struct bench_client *c, const struct opts *o, struct figures *f) {
    struct series_poll p;
    struct report r;
    long long n = o->sdk_points;
    if (run_reporter(c, o->reporter, "sdk", "burst", n, &r, &p) < 0)
        return -1;
    f->sdk_ns = (double)r.timed_ns / (double)n;
    f->sdk_drops = (double)r.dropped;
    printf("SDK cost: ava_report(name, i, v, \"phase=train\") x %lld in bursts of 1000 (timed) "
           "with 1 ms pauses (not timed) while ava-shim consumes: %.1f ns/point amortised, "
           "%llu dropped  [target <= 100 ns, with 0 dropped]\n",
           n, f->sdk_ns, r.dropped);
    printf("  (bursts %.3f s of %.3f s; the reporter's CPU, its flush thread included: %.3f s = "
           "%.0f ns/point; %lld points stored)\n",
           r.timed_ns / 1e9, r.wall_ns / 1e9, r.cpu_s, r.cpu_s * 1e9 / (double)n, p.count);
    if (run_reporter(c, o->reporter, "sdkfree", "free", n, &r, &p) < 0)
        return -1;
    printf("SDK in one tight loop of %lld (no pauses): %.1f ns/point amortised, %llu dropped "
           "(%.1f %%): a dropped point costs less than a written one  [no target]\n",
           n, (double)r.timed_ns / (double)n, r.dropped, 100.0 * (double)r.dropped / (double)n);
    printf("  (loop %.3f s; the queue written out %.1f ms after it; CPU %.3f s; %lld points "
           "stored = reported - dropped)\n",
           r.timed_ns / 1e9, r.drain_ns / 1e6, r.cpu_s, p.count);
    return 0;
}

/* Phase 2: a training reports n points (paced: nothing dropped); the time from the create
 * POST until the series shows all n, and the CPU that each process used meanwhile. Fills
 * f->ingest_per_s. */
static int bench_ingest(struct bench_client *c, const struct opts *o, struct figures *f) {
    struct series_poll p;
    struct report r;
    double avad0 = proc_cpu_s(g_srv.pid);
    int64_t t0 = bench_mono_us();
    if (create_reporter(c, o->reporter, "ingest", "paced", o->points, "bench.ingest") < 0 ||
        poll_series(c, "ingest", "bench.ingest", o->points, &p) < 0)
        return -1;
    double secs = (double)(p.t_count - t0) / 1e6, avad = proc_cpu_s(g_srv.pid) - avad0;
    f->ingest_per_s = (double)o->points / secs;
    printf("ingest: %lld points (one series) from the create POST until GET .../metrics shows "
           "them all: %.2f s = %.0f points/s\n",
           o->points, secs, f->ingest_per_s);
    if (read_report(c, "ingest", &r) < 0)
        return -1;
    printf("  (the training took %.2f s to report them, paced: it waits for its queue to be "
           "written out every 1000 points; %llu dropped; run seen ended %.2f s after the "
           "POST)\n",
           r.timed_ns / 1e9, r.dropped, p.t_ended ? (double)(p.t_ended - t0) / 1e6 : NAN);
    printf("  (CPU used: reporter %.2f s, ava-shim %.2f s, avad %.2f s = %.2f us/point; "
           "%.2f s of %ld cores' %.2f s)\n",
           r.cpu_s, p.shim_cpu, avad, avad * 1e6 / (double)o->points, r.cpu_s + p.shim_cpu + avad,
           sysconf(_SC_NPROCESSORS_ONLN), secs * (double)sysconf(_SC_NPROCESSORS_ONLN));
    return 0;
}

/* The size of DIR/name in MiB (negative when it is missing). */
static double file_mib(const char *dir, const char *name) {
    char path[AVA_PATH_MAX];
    if (ava_path_join(path, sizeof path, NULL, dir, name, NULL) < 0)
        return -1;
    return (double)ava_file_size(path) / 1048576.0;
}

/* Runs one SQL script on db. Returns 0 or -1 (with a message). */
static int sql_exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    fprintf(stderr, "metrics: sqlite: %s\n", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

/* avad's pragmas (src/store/db.c) and the tables of migration 3 copied from src/store/db.c
 * (metric_series, metric_points), with a stub runs table for the foreign key and one series. */
#define CEILING_MULTI 64

static const char ceiling_schema[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
    " PRAGMA temp_store=MEMORY;"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY) STRICT;"
    "CREATE TABLE metric_series(id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, name TEXT NOT NULL,"
    " phase TEXT NOT NULL DEFAULT '', count INTEGER NOT NULL DEFAULT 0,"
    " last_step INTEGER NOT NULL DEFAULT 0, last_value REAL NOT NULL DEFAULT 0,"
    " last_time INTEGER NOT NULL DEFAULT 0, min_value REAL, max_value REAL,"
    " UNIQUE(run_id, name, phase)) STRICT;"
    "CREATE TABLE metric_points(series_id INTEGER NOT NULL REFERENCES metric_series(id)"
    " ON DELETE CASCADE, step INTEGER NOT NULL, value REAL NOT NULL, time INTEGER NOT NULL,"
    " epoch INTEGER, PRIMARY KEY(series_id, step)) STRICT, WITHOUT ROWID;"
    "INSERT INTO runs(id) VALUES(1);"
    "INSERT INTO metric_series(id, run_id, name, phase) VALUES(1, 1, 'bench.ingest', 'train');";

/* Prepares an INSERT of `rows` rows (series 1, epoch NULL) into *s. Returns 0 or -1. */
static int ceiling_prepare(sqlite3 *db, int rows, sqlite3_stmt **s) {
    struct ava_buf sql = {0};
    ava_buf_puts(&sql, "INSERT INTO metric_points(series_id, step, value, time, epoch) VALUES");
    for (int r = 0; r < rows; r++)
        ava_buf_puts(&sql, r ? ",(1, ?, ?, ?, NULL)" : "(1, ?, ?, ?, NULL)");
    int rc = sqlite3_prepare_v2(db, sql.data, -1, s, NULL);
    ava_buf_free(&sql);
    if (rc != SQLITE_OK)
        return fprintf(stderr, "metrics: sqlite: %s\n", sqlite3_errmsg(db)), -1;
    return 0;
}

/* Inserts rows 0..n-1 (the reporter's steps and values) in transactions of CEILING_BATCH,
 * `rows` rows per INSERT statement (a transaction's last rows one at a time, as avad does).
 * Returns 0 or -1. */
static int ceiling_insert(sqlite3 *db, long long n, int rows) {
    sqlite3_stmt *multi = NULL, *one = NULL;
    if (ceiling_prepare(db, rows, &multi) < 0 || ceiling_prepare(db, 1, &one) < 0) {
        sqlite3_finalize(multi);
        return -1;
    }
    int64_t t_ms = ava_now_ms();
    int rc = 0;
    for (long long i = 0; i < n && rc == 0 && !bench_stop; i += CEILING_BATCH) {
        rc = sql_exec(db, "BEGIN");
        long long end = i + CEILING_BATCH < n ? i + CEILING_BATCH : n;
        for (long long k = i, got; k < end && rc == 0; k += got) {
            got = k + rows <= end ? rows : 1;
            sqlite3_stmt *s = got == rows ? multi : one;
            for (int r = 0; r < got; r++) {
                sqlite3_bind_int64(s, 3 * r + 1, k + r);
                sqlite3_bind_double(s, 3 * r + 2, 1.0 / (1.0 + 1e-6 * (double)(k + r)));
                /* ~10,000 points per ms, as reported */
                sqlite3_bind_int64(s, 3 * r + 3, t_ms + (k + r) / 10000);
            }
            if (sqlite3_step(s) != SQLITE_DONE) {
                fprintf(stderr, "metrics: sqlite: %s\n", sqlite3_errmsg(db));
                rc = -1;
            }
            sqlite3_reset(s);
        }
        if (rc == 0)
            rc = sql_exec(db, "COMMIT");
    }
    sqlite3_finalize(multi);
    sqlite3_finalize(one);
    return bench_stop ? -1 : rc;
}

/* Times ceiling_insert of n rows, `rows` per statement, into a fresh DATA/name. Fills *secs,
 * *cpu, *wal_mib (before close), *close_s. Returns 0 or -1. */
static int ceiling_run(const char *data, const char *name, long long n, int rows, double *secs,
                       double *cpu, double *wal_mib, double *close_s) {
    char path[AVA_PATH_MAX], wal[AVA_PATH_MAX + 8];
    sqlite3 *db = NULL;
    if (ava_path_join(path, sizeof path, NULL, data, name, NULL) < 0 ||
        sqlite3_open(path, &db) != SQLITE_OK || sql_exec(db, ceiling_schema) < 0) {
        sqlite3_close(db);
        return -1;
    }
    double cpu0 = proc_cpu_s(getpid());
    int64_t t0 = bench_mono_us();
    int rc = ceiling_insert(db, n, rows);
    int64_t t1 = bench_mono_us();
    *cpu = proc_cpu_s(getpid()) - cpu0;
    snprintf(wal, sizeof wal, "%s-wal", name);
    *wal_mib = file_mib(data, wal);
    sqlite3_close(db);
    *close_s = (double)(bench_mono_us() - t1) / 1e6;
    *secs = (double)(t1 - t0) / 1e6;
    return rc;
}

/* Phase 3: the ceiling: the same n rows into the same schema in a fresh database file next to
 * avad's, with avad's pragmas, a prepared INSERT and CEILING_BATCH rows per transaction.
 * Fills f->ceiling_per_s. */
static int bench_ceiling(const char *data, long long n, struct figures *f) {
    double secs, cpu, wal_mib, close_s;
    if (ceiling_run(data, "ceiling.db", n, 1, &secs, &cpu, &wal_mib, &close_s) < 0)
        return -1;
    f->ceiling_per_s = (double)n / secs;
    printf("ceiling: bare batched SQLite insert of the same %lld rows into the same schema "
           "(%d rows per transaction, WAL, synchronous=NORMAL): %.2f s = %.0f points/s\n",
           n, CEILING_BATCH, secs, f->ceiling_per_s);
    printf("  (CPU %.2f s = %.2f us/row; database %.1f MiB after close, WAL %.1f MiB before "
           "it; the close, a checkpoint, took %.2f s and is not counted)\n",
           cpu, cpu * 1e6 / (double)n, file_mib(data, "ceiling.db"), wal_mib, close_s);
    printf("ingest / ceiling: %.0f / %.0f = %.0f %%  [target >= 80 %%]\n", f->ingest_per_s,
           f->ceiling_per_s, 100.0 * f->ingest_per_s / f->ceiling_per_s);
    char path[AVA_PATH_MAX];
    if (ava_path_join(path, sizeof path, NULL, data, "ceiling.db", NULL) == 0)
        unlink(path);
    /* avad inserts new steps 64 rows per statement: the same trick in the ceiling, as an
     * extra figure (a statement step costs about as much as a row) */
    if (ceiling_run(data, "ceiling64.db", n, CEILING_MULTI, &secs, &cpu, &wal_mib, &close_s) == 0) {
        double per_s = (double)n / secs;
        printf("stronger ceiling: the same rows, %d per INSERT statement (as avad inserts new "
               "steps): %.2f s = %.0f points/s (CPU %.2f us/row); ingest / it: %.0f %%  [no "
               "target]\n",
               CEILING_MULTI, secs, per_s, cpu * 1e6 / (double)n, 100.0 * f->ingest_per_s / per_s);
        if (ava_path_join(path, sizeof path, NULL, data, "ceiling64.db", NULL) == 0)
            unlink(path);
    }
    return 0;
}

/* Times `count` GETs of the paths make(i) writes, on the client's keep-alive connection or
 * (fresh) a new connection each, and checks that each answer holds the number of points
 * make(i) returns. Fills v (ms, sorted). Returns 0 or -1. */
static int time_queries(struct bench_client *c, bool fresh, int count, double *v,
                        long long (*make)(char *out, size_t len, int i, const void *arg),
                        const void *arg) {
    char path[512];
    int rc = 0;
    curl_easy_setopt(c->h, CURLOPT_FRESH_CONNECT, (long)fresh);
    curl_easy_setopt(c->h, CURLOPT_FORBID_REUSE, (long)fresh);
    for (int i = 0; i < count && rc == 0 && !bench_stop; i++) {
        long long want = make(path, sizeof path, i, arg);
        int64_t t = bench_mono_us();
        long st = bench_http(c, path, NULL);
        v[i] = (double)(bench_mono_us() - t) / 1000.0;
        json_t *j = st == 200 ? bench_resp_json(c) : NULL;
        size_t got = json_array_size(json_object_get(j, "points"));
        json_decref(j);
        if (st != 200 || (long long)got != want) {
            fprintf(stderr, "metrics: %s: HTTP %ld, %zu points (want %lld)\n", path, st, got, want);
            rc = -1;
        }
    }
    curl_easy_setopt(c->h, CURLOPT_FRESH_CONNECT, 0L);
    curl_easy_setopt(c->h, CURLOPT_FORBID_REUSE, 0L);
    qsort(v, (size_t)count, sizeof *v, bench_cmp_double);
    return bench_stop ? -1 : rc;
}

/* A downsampled query of max_points LTTB_POINTS when *(int *)arg is 0 (the same query each
 * time: from avad's answer cache after the first), else LTTB_POINTS + arg + i (a cache miss
 * each, for arg above the max_points asked before). */
static long long make_lttb(char *out, size_t len, int i, const void *arg) {
    int a = *(const int *)arg, k = LTTB_POINTS + (a ? a + i : 0);
    snprintf(out, len, "/trainings/query/metrics/bench.query?phase=train&max_points=%d", k);
    return k;
}

/* A raw page of PAGE_POINTS after a step spread over the series of *arg points (the first
 * page from the start). */
static long long make_page(char *out, size_t len, int i, const void *arg) {
    long long span = *(const long long *)arg - PAGE_POINTS;
    long long since = i == 0 ? -1 : (long long)(((unsigned long long)i * 2654435761u) % span);
    snprintf(out, len, "/trainings/query/metrics/bench.query?phase=train&since_step=%lld&limit=%d",
             since, PAGE_POINTS);
    return PAGE_POINTS;
}

/* Prints one latency line from the n sorted values of v. */
static void print_lat(const char *what, const double *v, int n, const char *target) {
    printf("%s: p50 %.1f ms  p99 %.1f ms  max %.1f ms%s\n", what, bench_percentile(v, n, 0.5),
           bench_percentile(v, n, 0.99), v[n - 1], target);
}

/* One set of timed LTTB queries: printed, the p99 returned. first: 0 for the same query
 * each time (cached), else the first max_points offset (misses). NAN when it failed. */
static double lttb_set(struct bench_client *c, bool fresh, int count, int first, double *v) {
    if (time_queries(c, fresh, count, v, make_lttb, &first) < 0)
        return NAN;
    char what[200];
    if (first)
        snprintf(what, sizeof what,
                 "query: x %d, max_points %d..%d (each an answer-cache miss, "
                 "as for a live series), %s",
                 count, LTTB_POINTS + first, LTTB_POINTS + first + count - 1,
                 fresh ? "a new connection each" : "keep-alive");
    else
        snprintf(what, sizeof what, "query: the same again x %d (from avad's answer cache), %s",
                 count, fresh ? "a new connection each" : "one keep-alive connection");
    print_lat(what, v, count, "  [target p99 <= 50 ms]");
    return bench_percentile(v, count, 0.99);
}

/* The query figures on series bench.query of training "query" (n points): LTTB down to
 * LTTB_POINTS, the first query (cold), repeats and cache misses, on one keep-alive connection
 * and on a new connection each; raw pages. Fills f->q_p99 and f->q_miss_p99 (keep-alive). */
static int query_series(struct bench_client *c, long long n, int queries, struct figures *f) {
    int same = 0, nv = queries > PAGE_QUERIES ? queries : PAGE_QUERIES;
    double *v = ava_xcalloc((size_t)nv, sizeof *v), cold;
    int rc = time_queries(c, false, 1, &cold, make_lttb, &same);
    if (rc == 0)
        printf("query: %lld-point series down to %d points (LTTB), the first query (avad's "
               "answer cache empty; keep-alive): %.1f ms\n",
               n, LTTB_POINTS, cold);
    if (rc == 0 && !isnan(f->q_p99 = lttb_set(c, false, queries, 0, v)) &&
        !isnan(lttb_set(c, true, queries, 0, v)) &&
        !isnan(f->q_miss_p99 = lttb_set(c, false, UNCACHED_QUERIES, 1, v)) &&
        !isnan(lttb_set(c, true, UNCACHED_QUERIES, 1 + UNCACHED_QUERIES, v)) &&
        (rc = time_queries(c, false, PAGE_QUERIES, v, make_page, &n)) == 0) {
        char what[160];
        snprintf(what, sizeof what,
                 "query: raw pages of %d points (since_step spread over the series) x %d, "
                 "keep-alive",
                 PAGE_POINTS, PAGE_QUERIES);
        print_lat(what, v, PAGE_QUERIES, "  [no target]");
    } else {
        rc = -1;
    }
    free(v);
    return rc;
}

/* Phase 4: a training reports a series of n points (paced), then query_series(). */
static int bench_query(struct bench_client *c, const struct opts *o, struct figures *f) {
    struct series_poll p;
    if (create_reporter(c, o->reporter, "query", "paced", o->query_points, "bench.query") < 0 ||
        poll_series(c, "query", "bench.query", o->query_points, &p) < 0 ||
        poll_series(c, "query", "bench.query", 0, &p) < 0) /* until the run ended */
        return -1;
    return query_series(c, o->query_points, o->queries, f);
}

/* Prints one summary line: a target met, missed or not measured. */
static void judge(const char *what, double v, bool met, const char *fmt) {
    char val[64] = "not measured";
    if (!isnan(v))
        snprintf(val, sizeof val, fmt, v);
    printf("  %-11s %-58s %s\n", isnan(v) ? "[n/a]" : met ? "[met]" : "[NOT MET]", what, val);
}

/* The closing summary of the targets. */
static void summary(const struct figures *f) {
    double ratio = 100.0 * f->ingest_per_s / f->ceiling_per_s;
    char what[96];
    printf("\nsummary of targets:\n");
    snprintf(what, sizeof what, "SDK cost <= 100 ns per point (amortised), 0 dropped (%.0f)",
             f->sdk_drops);
    judge(what, f->sdk_ns, f->sdk_ns <= 100 && f->sdk_drops == 0, "%.1f ns");
    judge("end-to-end ingest >= 80 % of the bare SQLite insert", ratio, ratio >= 80, "%.0f %%");
    judge("query down to 1000 points p99 <= 50 ms (repeated, cached)", f->q_p99, f->q_p99 <= 50,
          "%.1f ms");
    judge("query down to 1000 points p99 <= 50 ms (cache misses)", f->q_miss_p99,
          f->q_miss_p99 <= 50, "%.1f ms");
}

/* Prints the usage text. */
static void usage(FILE *f) {
    fprintf(f, "usage: metrics [--avad PATH] [--reporter PATH] [--points N] [--sdk-points N]\n"
               "               [--query-points N] [--queries N]\n"
               "Starts its own avad (default: ../avad next to this program) in a temp dir, runs\n"
               "trainings of metrics_reporter (next to this program) and prints the figures.\n"
               "Defaults: --points 10000000 --sdk-points 1000000 --query-points 1000000\n"
               "--queries 100.\n");
}

/* Parses a count from min to max for option a. Returns 0 or -1. */
static int parse_count(const char *a, const char *v, long long min, long long max, long long *out) {
    char *end;
    long long n = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || n < min || n > max) {
        fprintf(stderr, "metrics: %s needs a count from %lld to %lld\n", a, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

/* Fills o from argv. Returns 0, 1 for --help, -1 on a usage error. */
static int parse_opts(int argc, char **argv, struct opts *o) {
    static const char *const names[] = {"--points", "--sdk-points", "--query-points", "--queries"};
    static const long long mins[] = {1, 1, 2 * PAGE_POINTS, 1}; /* a raw page must fit */
    long long queries = o->queries,
              *counts[] = {&o->points, &o->sdk_points, &o->query_points, &queries};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int k = 0;
        while (k < 4 && strcmp(a, names[k]) != 0)
            k++;
        if (k < 4 && parse_count(a, v, mins[k], k == 3 ? 100000 : 1000000000, counts[k]) < 0)
            return -1;
        else if (k < 4)
            i++;
        else if (!strcmp(a, "--avad") && v)
            snprintf(o->avad, sizeof o->avad, "%s", argv[++i]);
        else if (!strcmp(a, "--reporter") && v)
            snprintf(o->reporter, sizeof o->reporter, "%s", argv[++i]);
        else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return 1;
        else
            return fprintf(stderr, "metrics: unknown or incomplete option '%s'\n", a), -1;
    }
    o->queries = (int)queries;
    return 0;
}

/* Prints what is measured where. */
static void header(const struct opts *o) {
    char when[32];
    struct utsname u;
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    uname(&u);
    printf("ava metrics benchmark, %s, %s %s, %ld online CPUs\n", when, u.sysname, u.release,
           sysconf(_SC_NPROCESSORS_ONLN));
    /* the metrics file and the databases live there */
    printf("avad: %s, data in %s (%s); SQLite %s\n", o->avad, g_srv.data, bench_fs_name(g_srv.data),
           sqlite3_libversion());
    printf("training: %s (libava, static), one series per run\n", o->reporter);
}

/* The phases, in order, on one avad. Returns 0 or -1. */
static int run_all(const struct opts *o, struct figures *f) {
    struct bench_client c;
    if (bench_avad_start(&g_srv, o->avad, NULL, "metrics") < 0 ||
        bench_client_init(&c, &g_srv, 900) < 0)
        return -1;
    header(o);
    fflush(stdout);
    int rc = bench_sdk(&c, o, f);
    fflush(stdout);
    if (rc == 0 && !bench_stop)
        rc = bench_ingest(&c, o, f);
    if (rc == 0)
        printf("  (avad RSS now %.1f MiB; ava.db %.1f MiB + WAL %.1f MiB)\n",
               bench_proc_kib(g_srv.pid, "status", "VmRSS") / 1024.0,
               file_mib(g_srv.data, "ava.db"), file_mib(g_srv.data, "ava.db-wal"));
    fflush(stdout);
    if (rc == 0 && !bench_stop)
        rc = bench_ceiling(g_srv.data, o->points, f);
    fflush(stdout);
    if (rc == 0 && !bench_stop)
        rc = bench_query(&c, o, f);
    fflush(stdout);
    bench_client_free(&c);
    return rc;
}

int main(int argc, char **argv) {
    struct opts o = {
        .points = 10000000, .sdk_points = 1000000, .query_points = 1000000, .queries = 100};
    struct figures f = {NAN, NAN, NAN, NAN, NAN, NAN};
    int p = parse_opts(argc, argv, &o);
    if (p != 0) {
        usage(p > 0 ? stdout : stderr);
        return p > 0 ? 0 : 2;
    }
    char dir[AVA_PATH_MAX - 32];
    if ((!o.avad[0] || !o.reporter[0]) && ava_exe_dir(dir, sizeof dir) < 0)
        return fprintf(stderr, "metrics: cannot find my own directory\n"), 1;
    if (!o.avad[0])
        snprintf(o.avad, sizeof o.avad, "%s/../avad", dir);
    if (!o.reporter[0])
        snprintf(o.reporter, sizeof o.reporter, "%s/metrics_reporter", dir);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_srv.data, sizeof g_srv.data, "%s/ava-metrics-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_srv.data))
        return perror("metrics: mkdtemp"), 1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = run_all(&o, &f);
    server_cleanup(&g_srv);
    summary(&f);
    curl_global_cleanup();
    if (rc < 0 || bench_stop)
        fprintf(stderr, "metrics: %s\n", bench_stop ? "interrupted" : "a measurement failed");
    return rc < 0 || bench_stop ? 1 : 0;
}
