/* metrics.c: the shim's metric sources appended to RUN_DIR/metrics (see metrics.h). */
#include "metrics.h"

#include "tree.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"
#include "../common/timeutil.h"
#include "../metrics/lineproto.h"
#include "../metrics/logparse.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PIPE_CHUNK 65536
/* The SDK pipe's capacity: room for a training's bursts while the shim is busy or gathering
 * (pipe pages are the kernel's, allocated as they fill: not the shim's memory). */
#define PIPE_SIZE (1024 * 1024)
/* After a read that found lines, the shim lets the next ones gather this long before it reads
 * (polls) again: the SDK writes PIPE_BUF (4 KiB) at a time, and each write into a pipe that a
 * reader waits on wakes it (a wake-up and two context switches each, paid partly by the
 * training's thread); a write while the reader sleeps wakes nobody, and one read then takes
 * many writes. Points reach the file at most this much later. */
#define PIPE_GATHER_NS 250000L
#define LOG_LINE_MAX 65536 /* longer log lines are cut: parsers look at their start */
#define POINTS_PER_LINE 32

struct shim_metrics {
    int file_fd; /* RUN_DIR/metrics, O_APPEND */
    int pipe_fd; /* the SDK pipe's read end, -1 after EOF */
    struct ava_logparse *lp;
    char *sdk_line; /* a partial SDK line, AVA_LP_LINE_MAX bytes */
    size_t sdk_len;
    bool sdk_skip;  /* inside an over-long SDK line: dropped */
    char *log_line; /* a partial log line, LOG_LINE_MAX bytes */
    size_t log_len;
    struct ava_buf out; /* lines to append */
    int64_t written, refused;
    int64_t started, next_sample, last_sample_ms; /* monotonic ms */
    long long last_cpu_ticks;
    struct nvml *nvml; /* NULL: no GPU sampling */
};

/* NVML, loaded with dlopen only for runs that hold GPUs. */
#define NVML_MAX_GPUS 16
struct nvml {
    void *lib;
    int (*shutdown)(void);
    int (*handle)(unsigned index, void **dev);
    int (*util)(void *dev, unsigned out[2]);             /* nvmlUtilization_t {gpu, memory} */
    int (*memory)(void *dev, unsigned long long out[3]); /* nvmlMemory_t {total, free, used} */
    int index[NVML_MAX_GPUS];
    int n;
};

int shim_metrics_open(const char *run_dir, const char *parser, char *const *rules, size_t nrules,
                      struct shim_metrics **out, int *child_fd, char *err) {
    char path[AVA_PATH_MAX];
    int p[2];
    int r = ava_path_join(path, sizeof path, err, run_dir, AVA_RUNDIR_METRICS, NULL);
    if (r < 0)
        return r;
    struct shim_metrics *m = ava_xcalloc(1, sizeof *m);
    m->pipe_fd = -1;
    m->file_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (m->file_fd < 0) {
        r = ava_err(err, AVA_EIO, "cannot open %s: %s", path, strerror(errno));
    } else if (pipe2(p, O_CLOEXEC) < 0) {
        r = ava_err(err, AVA_EIO, "cannot create the metrics pipe: %s", strerror(errno));
    } else {
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        fcntl(p[0], F_SETPIPE_SZ, PIPE_SIZE); /* may be refused (pipe-max-size): 64 KiB then */
        m->pipe_fd = p[0];
        *child_fd = p[1];
        r = ava_logparse_new(parser, (const char *const *)rules, nrules, &m->lp, err);
    }
    if (r < 0) {
        shim_metrics_close(m);
        return r;
    }
    m->sdk_line = ava_xmalloc(AVA_LP_LINE_MAX);
    m->log_line = ava_xmalloc(LOG_LINE_MAX);
    m->started = ava_mono_ms();
    m->next_sample = m->started + AVA_SHIM_SAMPLE_MS;
    *out = m;
    return 0;
}

int shim_metrics_fd(const struct shim_metrics *m) {
    return m->pipe_fd;
}

int64_t shim_metrics_next_sample(const struct shim_metrics *m) {
    return m->next_sample;
}

void shim_metrics_counts(const struct shim_metrics *m, int64_t *written, int64_t *refused) {
    *written = m->written;
    *refused = m->refused;
}

/* Appends the batched lines to the file with one write (O_APPEND keeps lines whole). */
static void flush_out(struct shim_metrics *m) {
    size_t off = 0;
    while (off < m->out.len) {
        ssize_t n = write(m->file_fd, m->out.data + off, m->out.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk: the points are lost, the training goes on */
        off += (size_t)n;
    }
    ava_buf_reset(&m->out);
}

/* Adds one point, stamped now when it carries no time. */
static void add_point(struct shim_metrics *m, struct ava_point *p) {
    char line[AVA_LP_LINE_MAX];
    if (!p->time_ms)
        p->time_ms = ava_now_ms();
    int n = ava_lp_format(p, line, sizeof line);
    if (n > 0) {
        ava_buf_append(&m->out, line, (size_t)n);
        m->written++;
    }
}

/* One complete SDK line: checked, converted, re-written with a timestamp. */
static void sdk_line(struct shim_metrics *m, const char *line, size_t len) {
    struct ava_lp_line l;
    struct ava_point p;
    int r = ava_lp_parse(line, len, &l, NULL);
    if (r == AVA_ENOTFOUND)
        return; /* blank or comment */
    if (r < 0 || ava_lp_to_point(&l, &p, NULL) < 0) {
        m->refused++;
        return;
    }
    if (l.has_time) { /* a valid stamped line (the C SDK's) goes on as it is */
        ava_buf_append(&m->out, line, len);
        ava_buf_append(&m->out, "\n", 1);
        m->written++;
        return;
    }
    add_point(m, &p);
}

void shim_metrics_read_pipe(struct shim_metrics *m) {
    char chunk[PIPE_CHUNK];
    bool got = false;
    for (int round = 0; round < 16 && m->pipe_fd >= 0; round++) {
        ssize_t n = read(m->pipe_fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break; /* EAGAIN: drained */
        if (n == 0) {
            close(m->pipe_fd);
            m->pipe_fd = -1;
            break;
        }
        got = true;
        for (ssize_t i = 0; i < n; i++) {
            char c = chunk[i];
            if (c == '\n') {
                if (!m->sdk_skip)
                    sdk_line(m, m->sdk_line, m->sdk_len);
                else
                    m->refused++;
                m->sdk_len = 0;
                m->sdk_skip = false;
            } else if (m->sdk_len < AVA_LP_LINE_MAX) {
                m->sdk_line[m->sdk_len++] = c;
            } else {
                m->sdk_skip = true;
            }
        }
    }
    flush_out(m);
    if (got && m->pipe_fd >= 0) {
        const struct timespec gather = {0, PIPE_GATHER_NS};
        nanosleep(&gather, NULL);
    }
}

/* One complete log line through the parser. */
static void log_line(struct shim_metrics *m, const char *line, size_t len) {
    struct ava_point pts[POINTS_PER_LINE];
    size_t n = ava_logparse_line(m->lp, line, len, pts, POINTS_PER_LINE);
    for (size_t i = 0; i < n; i++)
        add_point(m, &pts[i]);
}

void shim_metrics_log(struct shim_metrics *m, const char *data, size_t n) {
    if (!m->lp)
        return;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            log_line(m, m->log_line, m->log_len);
            m->log_len = 0;
        } else if (m->log_len < LOG_LINE_MAX) {
            m->log_line[m->log_len++] = data[i];
        }
    }
    if (m->out.len)
        flush_out(m);
}

void shim_metrics_gpus(struct shim_metrics *m, const char *gpus) {
    if (!gpus || !*gpus)
        return;
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    int (*init)(void) = lib ? (int (*)(void))dlsym(lib, "nvmlInit_v2") : NULL;
    if (!init || init() != 0) {
        if (lib)
            dlclose(lib);
        return;
    }
    struct nvml *n = ava_xcalloc(1, sizeof *n);
    n->lib = lib;
    n->shutdown = (int (*)(void))dlsym(lib, "nvmlShutdown");
    n->handle = (int (*)(unsigned, void **))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    n->util = (int (*)(void *, unsigned *))dlsym(lib, "nvmlDeviceGetUtilizationRates");
    n->memory = (int (*)(void *, unsigned long long *))dlsym(lib, "nvmlDeviceGetMemoryInfo");
    for (const char *p = gpus; *p && n->n < NVML_MAX_GPUS;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        n->index[n->n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    m->nvml = n;
}

/* Appends each allocated GPU's utilisation and memory in use. */
static void sample_gpus(struct shim_metrics *m, int64_t step) {
    struct nvml *n = m->nvml;
    for (int i = 0; n && n->handle && i < n->n; i++) {
        void *dev;
        unsigned util[2];
        unsigned long long mem[3];
        if (n->handle((unsigned)n->index[i], &dev) != 0)
            continue;
        struct ava_point p = {.phase = "", .step = step, .epoch = -1};
        if (n->util && n->util(dev, util) == 0) {
            snprintf(p.name, sizeof p.name, "sys.gpu%d.util", n->index[i]);
            p.value = util[0];
            p.time_ms = 0;
            add_point(m, &p);
        }
        if (n->memory && n->memory(dev, mem) == 0) {
            snprintf(p.name, sizeof p.name, "sys.gpu%d.mem_bytes", n->index[i]);
            p.value = (double)mem[2];
            p.time_ms = 0;
            add_point(m, &p);
        }
    }
}

/* Reads utime+stime (or, with children, cutime+cstime too) and RSS pages of a process from
 * /proc/<pid>/stat. Returns 0 or -1 when it is gone. */
static int proc_usage(pid_t pid, bool children, long long *ticks, long long *rss_pages) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    long long cut, cst, rss;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15) cutime(16) cstime(17) priority nice threads itrealvalue
     * starttime(22) vsize(23) rss(24) */
    if (!p || sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld %*d %*d %*d "
                     "%*d %*u %*u %lld",
                     &ut, &st, &cut, &cst, &rss) != 5)
        return -1;
    *ticks += (long long)(ut + st) + (children ? cut + cst : 0);
    *rss_pages += rss;
    return 0;
}

void shim_metrics_sample(struct shim_metrics *m, pid_t shim_pid, int64_t now_mono_ms) {
    if (now_mono_ms < m->next_sample)
        return;
    m->next_sample = now_mono_ms + AVA_SHIM_SAMPLE_MS;
    struct ava_proc_entry *procs;
    size_t n;
    if (ava_tree_snapshot(&procs, &n, NULL) < 0)
        return;
    ava_tree_mark_descendants(procs, n, shim_pid);
    long long ticks = 0, pages = 0, shim_pages = 0;
    /* the shim's own counters hold the children it reaped; its own pages are not the run's */
    proc_usage(shim_pid, true, &ticks, &shim_pages);
    for (size_t i = 0; i < n; i++)
        if (procs[i].desc && procs[i].state != 'Z')
            proc_usage(procs[i].pid, false, &ticks, &pages);
    free(procs);
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct ava_point p = {.name = "sys.mem_bytes", .phase = "", .epoch = -1};
    p.step = (now_mono_ms - m->started) / 1000; /* seconds since the run started */
    p.value = (double)pages * (double)page;
    add_point(m, &p);
    if (m->last_sample_ms && hz > 0 && now_mono_ms > m->last_sample_ms) {
        double secs = (double)(now_mono_ms - m->last_sample_ms) / 1000.0;
        struct ava_point c = {.name = "sys.cpu_percent", .phase = "", .epoch = -1};
        c.step = p.step;
        c.value = 100.0 * (double)(ticks - m->last_cpu_ticks) / (double)hz / secs;
        add_point(m, &c);
    }
    m->last_cpu_ticks = ticks;
    m->last_sample_ms = now_mono_ms;
    sample_gpus(m, p.step);
    flush_out(m);
}

void shim_metrics_close(struct shim_metrics *m) {
    if (!m)
        return;
    if (m->log_len && m->lp)
        log_line(m, m->log_line, m->log_len);
    if (m->out.len)
        flush_out(m);
    if (m->pipe_fd >= 0)
        close(m->pipe_fd);
    if (m->file_fd >= 0)
        close(m->file_fd);
    ava_logparse_free(m->lp);
    if (m->nvml) {
        if (m->nvml->shutdown)
            m->nvml->shutdown();
        dlclose(m->nvml->lib);
        free(m->nvml);
    }
    ava_buf_free(&m->out);
    free(m->sdk_line);
    free(m->log_line);
    free(m);
}
