/* supervise.c: the shim's loop over the entry's output pipe and a signalfd, with the stop,
 * max-runtime and tree-cleanup logic (see supervise.h). */
#include "supervise.h"

#include "launch.h"
#include "metrics.h"
#include "tree.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"
#include "../common/strutil.h"
#include "../common/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_BUF_SIZE 65536 /* one read of the output pipe */
#define READS_PER_WAKE 16  /* then signals and deadlines get a look again */
#define TERM_SWEEPS 4      /* SIGTERM sweeps until one finds nothing new */
#define SWEEP_FIRST_MS 2   /* SIGKILL re-sweeps start fast and back off ... */
#define SWEEP_MAX_MS 200   /* ... to this, for processes stuck in uninterruptible sleep */
#define DRAIN_WAIT_MS 1000 /* how long to wait for EOF once no process is left */

/* What ended (or is ending) the run before the entry exited on its own; first one wins. */
enum cause { CAUSE_NONE, CAUSE_STOP, CAUSE_TIMEOUT };

/* The supervisor's state. Deadlines are CLOCK_MONOTONIC ms, 0 when not set. */
struct sup {
    const struct ava_shim_run *run;
    const struct ava_shim_spec *spec;
    struct ava_exit_record *rec;
    int log_fd;      /* the training log, O_APPEND */
    int out_fd;      /* read end of the entry's output pipe, -1 after EOF */
    char *buf;       /* OUT_BUF_SIZE bytes */
    bool log_warned; /* a log write failed once already */
    pid_t self, entry;
    int status; /* the entry's wait status, once entry_done */
    bool entry_done, tree_empty, killing, kill_after_grace;
    enum cause cause;
    int64_t limit_at, grace_at, next_sweep, drain_at, sweep_interval;
    char limit_text[32]; /* the max runtime as ava_format_duration writes it */
    struct ava_pidset termed, killed;
    struct ava_shim_info status_file; /* what RUN_DIR/status says */
    struct shim_metrics *metrics;     /* NULL when RUN_DIR/metrics could not be set up */
};

/* Passes one formatted line to the caller's warn hook. */
static void warn(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct sup *s, const char *fmt, ...) {
    if (!s->run->warn)
        return;
    char msg[AVA_ERRLEN + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->run->warn(msg);
}

/* Appends bytes to the log, retrying short writes. On a failure (disk full) the chunk is
 * dropped rather than letting the entry block on a full pipe; the first one is warned about,
 * and later chunks are tried again. */
static void log_write(struct sup *s, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(s->log_fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!s->log_warned)
                warn(s, "cannot write to %s: %s; output is being lost", s->spec->log_path,
                     w < 0 ? strerror(errno) : "no progress");
            s->log_warned = true;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Appends one line of the shim's own ("==== ava: ... ====") to the log. */
static void log_note(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_note(struct sup *s, const char *fmt, ...) {
    struct ava_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    ava_buf_printf(&b, "==== ava: %s ====\n", line);
    free(line);
    log_write(s, b.data, b.len);
    ava_buf_free(&b);
}

/* Appends an event line to the run dir; a failure is only warned about. */
static void event(struct sup *s, int64_t at, const char *state, const char *reason) {
    char err[AVA_ERRLEN];
    if (ava_rundir_append_event(s->run->run_dir, at, state, reason, err) < 0)
        warn(s, "cannot record event '%s %s': %s", state, reason, err);
}

/* Copies what the output pipe holds into the log; closes it at EOF. */
static void pump(struct sup *s) {
    for (int i = 0; i < READS_PER_WAKE && s->out_fd >= 0; i++) {
        ssize_t n = read(s->out_fd, s->buf, OUT_BUF_SIZE);
        if (n > 0) {
            log_write(s, s->buf, (size_t)n);
            if (s->metrics)
                shim_metrics_log(s->metrics, s->buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close(s->out_fd); /* EOF: every holder of the write end is gone */
        s->out_fd = -1;
    }
}

/* Reaps every child that has exited (the entry and any orphan reparented to the shim);
 * notes the entry's status and whether the shim has no child left at all, which, as the
 * shim is a subreaper, means the whole tree is gone. */
static void reap(struct sup *s) {
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p < 0 && errno == EINTR)
            continue;
        if (p < 0) {
            s->tree_empty = errno == ECHILD;
            return;
        }
        if (p == 0) {
            s->tree_empty = false;
            return;
        }
        if (p == s->entry && !s->entry_done) {
            s->entry_done = true;
            s->status = st;
        }
    }
}

/* One sweep of sig over the tree; when /proc cannot be read, falls back to the entry's
 * process group (while the entry is unreaped that group id cannot belong to anyone else). */
static int sweep(struct sup *s, int sig, struct ava_pidset *seen, bool skip_seen) {
    char err[AVA_ERRLEN];
    int r = ava_tree_signal(s->self, sig, seen, skip_seen, err);
    if (r < 0) {
        warn(s, "cannot sweep the process tree: %s", err);
        if (!s->entry_done)
            kill(-s->entry, sig);
    }
    return r;
}

/* Rewrites RUN_DIR/status from s->status_file. */
static void write_status(struct sup *s) {
    char err[AVA_ERRLEN];
    if (ava_rundir_write_status(s->run->run_dir, &s->status_file, err) < 0)
        warn(s, "cannot write the status file: %s", err);
}

/* Starts stopping the run: records why, sends SIGTERM to the whole tree and sets the
 * grace deadline after which everything left is killed. */
static void begin_stop(struct sup *s, enum cause cause, int64_t now) {
    char why[96];
    s->cause = cause;
    s->rec->stopping_at = ava_now_ms();
    if (cause == CAUSE_TIMEOUT)
        snprintf(why, sizeof why, "max runtime %s reached", s->limit_text);
    else
        snprintf(why, sizeof why, "stop requested");
    event(s, s->rec->stopping_at, "stopping", why);
    if (s->status_file.pid) {
        snprintf(s->status_file.state, sizeof s->status_file.state, "stopping");
        write_status(s);
    }
    pump(s); /* output written before the stop goes before the note */
    log_note(s, "stopping: %s", why);
    /* repeat while sweeps find processes forked after the previous one */
    for (int i = 0; i < TERM_SWEEPS; i++)
        if (sweep(s, SIGTERM, &s->termed, true) <= 0)
            break;
    s->grace_at = now + s->spec->grace_ms;
}

/* Enters the kill phase: SIGKILL sweeps until the shim has no child left. */
static void start_kill(struct sup *s, int64_t now) {
    s->killing = true;
    s->kill_after_grace = s->cause != CAUSE_NONE;
    s->next_sweep = now;
    s->sweep_interval = SWEEP_FIRST_MS;
}

/* Acts on the deadlines and the entry's exit: timeout, end of grace, leftover cleanup and
 * the SIGKILL re-sweeps. */
static void step(struct sup *s, int64_t now) {
    if (s->cause == CAUSE_NONE && !s->entry_done && s->limit_at && now >= s->limit_at)
        begin_stop(s, CAUSE_TIMEOUT, now);
    if (!s->killing && !s->tree_empty) {
        if (s->cause != CAUSE_NONE && now >= s->grace_at)
            start_kill(s, now); /* grace is over */
        else if (s->cause == CAUSE_NONE && s->entry_done)
            start_kill(s, now); /* the entry ended: what it left behind goes at once */
    }
    if (s->killing && !s->tree_empty && now >= s->next_sweep) {
        /* a sweep that met new processes (forks racing the previous one) is followed soon;
         * one that met only the already killed (stuck in D state) backs off */
        if (sweep(s, SIGKILL, &s->killed, false) > 0)
            s->sweep_interval = SWEEP_FIRST_MS;
        else if ((s->sweep_interval *= 2) > SWEEP_MAX_MS)
            s->sweep_interval = SWEEP_MAX_MS;
        s->next_sweep = now + s->sweep_interval;
    }
    if (s->tree_empty && s->out_fd >= 0 && !s->drain_at)
        s->drain_at = now + DRAIN_WAIT_MS;
}

/* Earliest of a and a deadline d (0 = none). */
static int64_t earlier(int64_t a, int64_t d) {
    return d && (!a || d < a) ? d : a;
}

/* The poll timeout in ms until the next deadline that matters, -1 for none. */
static int next_timeout(const struct sup *s, int64_t now) {
    int64_t at = 0;
    if (s->cause == CAUSE_NONE && !s->entry_done)
        at = earlier(at, s->limit_at);
    if (s->cause != CAUSE_NONE && !s->killing && !s->tree_empty)
        at = earlier(at, s->grace_at ? s->grace_at : now);
    if (s->killing && !s->tree_empty)
        at = earlier(at, s->next_sweep ? s->next_sweep : now);
    if (s->tree_empty && s->out_fd >= 0)
        at = earlier(at, s->drain_at);
    if (s->metrics && !s->entry_done)
        at = earlier(at, shim_metrics_next_sample(s->metrics));
    if (!at)
        return -1;
    return at <= now ? 0 : at - now > INT_MAX ? INT_MAX : (int)(at - now);
}

/* Reads the pending signals: SIGTERM and SIGINT ask for a stop, SIGHUP is ignored, SIGCHLD
 * only wakes the loop (reap() runs every round). */
static void read_signals(struct sup *s, int64_t now) {
    struct signalfd_siginfo si;
    for (;;) {
        ssize_t n = read(s->run->sig_fd, &si, sizeof si);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof si)
            return;
        bool stop = si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT;
        /* once the entry has exited on its own its outcome is known: a stop changes nothing */
        if (stop && s->cause == CAUSE_NONE && !s->entry_done)
            begin_stop(s, CAUSE_STOP, now);
    }
}

/* The main loop: runs until the entry and every other process of the tree are reaped and
 * the output pipe is drained. */
static int loop(struct sup *s, char *err) {
    for (;;) {
        reap(s);
        int64_t now = ava_mono_ms();
        step(s, now);
        if (s->entry_done && s->tree_empty && (s->out_fd < 0 || now >= s->drain_at))
            return 0;
        if (s->metrics && !s->entry_done)
            shim_metrics_sample(s->metrics, s->self, now);
        /* a closed fd (-1) is skipped by poll */
        struct pollfd pfd[3] = {
            {.fd = s->run->sig_fd, .events = POLLIN},
            {.fd = s->out_fd, .events = POLLIN},
            {.fd = s->metrics ? shim_metrics_fd(s->metrics) : -1, .events = POLLIN}};
        int r = poll(pfd, 3, next_timeout(s, now));
        if (r < 0 && errno != EINTR)
            return ava_err(err, AVA_EINTERNAL, "poll failed: %s", strerror(errno));
        if (r <= 0)
            continue;
        if (s->out_fd >= 0 && pfd[1].revents)
            pump(s);
        if (pfd[2].fd >= 0 && pfd[2].revents)
            shim_metrics_read_pipe(s->metrics);
        if (pfd[0].revents)
            read_signals(s, ava_mono_ms());
    }
}

void ava_shim_outcome_from_status(int status, struct ava_exit_record *rec) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbr = sigabbrev_np(sig);
        rec->exit_code = 128 + sig;
        rec->signal = sig;
        snprintf(rec->state, sizeof rec->state, "failed");
        snprintf(rec->reason, sizeof rec->reason, "killed by signal %d (SIG%s)", sig,
                 abbr ? abbr : "UNKNOWN");
        return;
    }
    rec->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    rec->signal = 0;
    snprintf(rec->state, sizeof rec->state, rec->exit_code ? "failed" : "succeeded");
    snprintf(rec->reason, sizeof rec->reason, "exit code %d", rec->exit_code);
}

/* Fills rec for a run whose entry never started. */
static void start_error(struct ava_exit_record *rec, int exit_code, const char *msg) {
    snprintf(rec->state, sizeof rec->state, "failed");
    rec->exit_code = exit_code;
    rec->signal = 0;
    rec->started_at = 0;
    snprintf(rec->reason, sizeof rec->reason, "start error: %s", msg);
}

/* Creates the output dir and the log's directory, opens the log and notes where this run's
 * part of it begins. */
static int prepare_log(struct sup *s, char *err) {
    char dir[AVA_PATH_MAX];
    int r = ava_mkdir_p(s->spec->output_dir, 0755, err);
    if (r < 0)
        return r;
    snprintf(dir, sizeof dir, "%s", s->spec->log_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if ((r = ava_mkdir_p(dir, 0755, err)) < 0)
            return r;
    }
    s->log_fd = open(s->spec->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (s->log_fd < 0)
        return ava_err(err, AVA_EIO, "cannot open the log %s: %s", s->spec->log_path,
                       strerror(errno));
    struct stat st;
    if (fstat(s->log_fd, &st) < 0 || !S_ISREG(st.st_mode))
        return ava_err(err, AVA_EIO, "the log %s is not a regular file", s->spec->log_path);
    s->rec->log_start = (int64_t)st.st_size;
    return 0;
}

/* The entry's environment with AVA_RESUME_FROM set to the newest checkpoint, if any. */
static char **entry_env(struct sup *s) {
    char path[AVA_PATH_MAX], err[AVA_ERRLEN];
    int r = ava_shim_newest_checkpoint(s->spec->output_dir, path, sizeof path, err);
    if (r < 0 && r != AVA_ENOTFOUND)
        warn(s, "AVA_RESUME_FROM not set: %s", err);
    return ava_shim_build_env(s->spec, r == 0 ? path : NULL);
}

/* Writes the run's marker line, starts the entry and, once it runs, the status file and the
 * "running" event. */
static int start_entry(struct sup *s, char *err) {
    int p[2], null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0)
        return ava_err(err, AVA_EIO, "cannot open /dev/null: %s", strerror(errno));
    if (pipe2(p, O_CLOEXEC) < 0) {
        int e = errno;
        close(null_fd);
        return ava_err(err, AVA_EIO, "cannot create the output pipe: %s", strerror(e));
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    s->out_fd = p[0];
    int metrics_child = -1;
    char merr[AVA_ERRLEN];
    if (shim_metrics_open(s->run->run_dir, s->spec->metrics_parser, s->spec->metric_rules,
                          s->spec->nrules, &s->metrics, &metrics_child, merr) < 0)
        warn(s, "metrics are not collected: %s", merr);
    else
        shim_metrics_gpus(s->metrics, s->spec->gpus);
    char **env = entry_env(s), **argv = ava_shim_build_argv(s->spec);
    int64_t started_at = ava_now_ms();
    char when[32];
    ava_format_time(started_at, when, sizeof when);
    log_note(s, "training %s run %" PRId64 " started %s (image %s, entry %s)", s->spec->training,
             s->spec->run, when, s->spec->image[0] ? s->spec->image : "none", s->spec->entry);
    struct ava_launch l = {.entry = s->spec->entry,
                           .argv = argv,
                           .envp = env,
                           .cwd = s->spec->cwd,
                           .stdin_fd = null_fd,
                           .output_fd = p[1],
                           .metrics_fd = metrics_child};
    int64_t start_mono = ava_mono_ms();
    int r = ava_shim_launch(&l, &s->entry, err);
    close(p[1]);
    close(null_fd);
    if (metrics_child >= 0)
        close(metrics_child); /* the entry holds it now: EOF comes when the tree is gone */
    ava_shim_strv_free(env);
    free(argv);
    if (r < 0) {
        log_note(s, "start error: %s", err);
        return r;
    }
    s->rec->started_at = started_at;
    if (s->spec->max_runtime_ms > 0)
        s->limit_at = start_mono + s->spec->max_runtime_ms;
    ava_format_duration(s->spec->max_runtime_ms, s->limit_text, sizeof s->limit_text);
    s->status_file = (struct ava_shim_info){.state = "running",
                                            .pid = s->self,
                                            .started_at = started_at,
                                            .log_start = s->rec->log_start,
                                            .entry_pid = s->entry};
    char why[64];
    if (ava_proc_start_time(s->self, &s->status_file.start_time) < 0)
        warn(s, "cannot read the shim's own start time from /proc");
    else
        write_status(s);
    snprintf(why, sizeof why, "started pid %d", (int)s->entry);
    event(s, started_at, "running", why);
    return 0;
}

/* Records how the run ended, after the loop: leftover note, state, reason, log range. */
static void finish(struct sup *s) {
    pump(s);
    if (s->metrics) { /* the tree is gone: what the pipe still holds is the last of it */
        shim_metrics_read_pipe(s->metrics);
        shim_metrics_close(s->metrics);
        s->metrics = NULL;
    }
    size_t n = s->killed.n;
    if (n && s->kill_after_grace)
        log_note(s, "killed %zu process(es) still running after the grace period", n);
    else if (n)
        log_note(s, "killed %zu leftover process(es)", n);
    ava_shim_outcome_from_status(s->status, s->rec);
    if (s->cause == CAUSE_STOP) {
        snprintf(s->rec->state, sizeof s->rec->state, "stopped");
        snprintf(s->rec->reason, sizeof s->rec->reason, "stopped by request");
    } else if (s->cause == CAUSE_TIMEOUT) {
        snprintf(s->rec->state, sizeof s->rec->state, "timed_out");
        snprintf(s->rec->reason, sizeof s->rec->reason, "max runtime %s reached", s->limit_text);
    }
}

/* Last resort when the loop itself broke: kill and reap everything without it. */
static void emergency_cleanup(struct sup *s) {
    for (int i = 0; i < 3000; i++) { /* at most ~30 s */
        reap(s);
        if (s->tree_empty)
            return;
        sweep(s, SIGKILL, &s->killed, false);
        usleep(10000);
    }
}

int ava_shim_supervise(const struct ava_shim_run *run, struct ava_exit_record *rec, char *err) {
    struct sup s = {.run = run, .spec = run->spec, .rec = rec, .log_fd = -1, .out_fd = -1};
    memset(rec, 0, sizeof *rec);
    s.self = getpid();
    s.buf = ava_xmalloc(OUT_BUF_SIZE);
    int r = prepare_log(&s, err);
    if (r < 0) {
        start_error(rec, 0, err);
    } else if ((r = start_entry(&s, err)) < 0) {
        start_error(rec, 127, err);
    } else if ((r = loop(&s, err)) < 0) {
        warn(&s, "%s; killing the process tree", err);
        emergency_cleanup(&s);
        ava_shim_outcome_from_status(s.status, rec);
        snprintf(rec->state, sizeof rec->state, "failed");
        snprintf(rec->reason, sizeof rec->reason, "shim error: %s", err);
    } else {
        finish(&s);
    }
    struct stat st;
    if (s.log_fd >= 0 && fstat(s.log_fd, &st) == 0)
        rec->log_end = (int64_t)st.st_size;
    else
        rec->log_end = rec->log_start;
    rec->ended_at = ava_now_ms();
    if (s.log_fd >= 0)
        close(s.log_fd);
    if (s.out_fd >= 0)
        close(s.out_fd);
    shim_metrics_close(s.metrics); /* only still open when the run could not start normally */
    free(s.buf);
    ava_pidset_free(&s.termed);
    ava_pidset_free(&s.killed);
    return r;
}
