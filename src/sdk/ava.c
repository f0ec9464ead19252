/* ava.c: libava's core: checks a point, formats it as one line protocol line and hands it to
 * the run's supervisor through AVA_METRICS_FD, queueing, batching and dropping so that the
 * caller never waits (the contract is in include/ava/ava.h).
 *
 * Why a queue and a lazy thread (measured on a 2-vCPU EPYC VM): one write() per point costs
 * ~500 ns on a pipe another process drains, and blocking SIGPIPE around it ~450 ns more: five
 * times the 100 ns a point may cost (formatting a line costs ~45 ns, the clock ~22). So lines
 * are batched, and a caller that finds CALLER_BATCH bytes queued (FLUSHER_BATCH while the
 * thread below is awake and will write them within a millisecond anyway) writes them,
 * PIPE_BUF bytes of whole lines per write() (atomic on a pipe), all under one SIGPIPE guard. A
 * batch must not wait for the next report (an epoch's last points would), so a thread writes what
 * is left within FLUSH_DELAY_NS, and waits for room when the supervisor is slow. Rare points (up to
 * ~1000/s on average) are written by the caller at once, so trainings that report at ordinary
 * rates never start the thread. (Handing every batch to the thread was measured slower here:
 * each hand-off is a futex wake-up.) Once started, the thread stays awake for FLUSH_LINGER ms
 * after its last batch, so that a training reporting a burst per step hands its points over
 * without waking it (a signal cost ~6 us of each burst), and parks after that.
 *
 * The per-point work is kept small (bench/metrics: <= 100 ns per delivered point): each thread
 * caches its last (name, tags) as the already formatted start of the line, and the seconds of
 * the timestamp; doubles are printed by Schubfach (fmt.c).
 *
 * Two buffers: callers append to `fill` under `lock` (a memcpy); a writer (a caller or the
 * flusher) holds `out_lock`, swaps `fill` with the empty `out` under `lock`, and writes `out`
 * with `lock` released, so appending never waits for another thread's write(). Lock order:
 * init_lock, out_lock, lock. */
#include "ava/ava.h"
#include "ava_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUF_CAP (256 * 1024)       /* each of fill and out (~2800 lines each) */
#define CHUNK_MAX PIPE_BUF         /* the most one write() carries: atomic on a pipe */
#define CALLER_BATCH (32 * 1024)   /* this much in fill: the caller writes it (~360 lines) */
#define FLUSHER_BATCH (128 * 1024) /* the same while the flusher is awake (it writes sooner) */
#define IMMEDIATE_NS 1000000LL     /* one immediate write per ms on average... */
#define IMMEDIATE_BURST 32LL       /* ...with bursts of up to 32 */
#define FLUSH_DELAY_NS 1000000L    /* the flusher lets a batch gather this long */
#define FLUSH_LINGER 10            /* rounds the flusher stays awake once idle, before parking */
#define STALL_POLL_MS 100          /* the flusher's wait for room in the pipe, per round */
#define EXIT_WAIT_MS 1000          /* at exit, the longest wait for the supervisor */
#define FLUSHER_STACK (64 * 1024)

enum { ST_UNINIT = 0, ST_ON, ST_OFF };
enum fd_kind { FD_PIPE, FD_SOCKET, FD_OTHER };

/* All of the SDK's state. The atomics are read without locks. */
static struct {
    atomic_int state;
    _Atomic uint64_t dropped_total;
    _Atomic uint64_t pending_drops; /* dropped since the last ava.dropped line */
    atomic_bool full;          /* fill is full and the supervisor is slow (or gone): callers drop
                                * without formatting or locking until a writer empties it */
    pthread_mutex_t init_lock; /* sdk_init(), against itself and fork */
    bool hooks;                /* atexit and pthread_atfork registered (once per process) */

    pthread_mutex_t out_lock; /* one writer at a time, so batches keep their order */
    char *out;                /* the batch being written: out[out_head, out_len) */
    size_t out_head, out_len;

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t wake;  /* the flusher waits here for `armed` */
    char *fill;           /* lines not yet handed to a writer: fill[0, fill_len) */
    size_t fill_len;
    int fd;
    enum fd_kind kind;
    bool dead;           /* the supervisor is gone: drop everything */
    bool warned_dead;    /* and that was said */
    bool stalled;        /* the pipe was full: the flusher waits for room and writes */
    bool armed;          /* the flusher has lines to write */
    bool flusher;        /* the flusher thread runs */
    bool parked;         /* it waits on `wake` (else it lingers, awake: no signal needed) */
    bool flusher_failed; /* it could not be started: callers write everything at once */
    int64_t credit_ns;   /* budget of immediate writes, IMMEDIATE_NS each */
    int64_t credit_at;   /* when the budget was last topped up */
    char bufs[2][BUF_CAP];
} g = {
    .init_lock = PTHREAD_MUTEX_INITIALIZER,
    .out_lock = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .fd = -1,
    .kind = FD_OTHER,
};

/* ---- arguments ---- */

/* Whether c may appear in a metric name: [A-Za-z0-9._/-]. */
static inline bool name_char(unsigned char c) {
    return (unsigned)((c | 32) - 'a') < 26 || (unsigned)(c - '0') < 10 || c == '.' || c == '_' ||
           c == '/' || c == '-';
}

/* Whether c may appear in a phase: [a-z0-9_]. */
static inline bool phase_char(unsigned char c) {
    return (unsigned)(c - 'a') < 26 || (unsigned)(c - '0') < 10 || c == '_';
}

/* The length of a valid metric name, or 0 when name is NULL, empty, too long or has a byte
 * outside the set. */
static size_t name_len(const char *name) {
    if (!name)
        return 0;
    size_t n = 0;
    while (n <= AVA_NAME_MAX && name_char((unsigned char)name[n]))
        n++;
    return name[n] == '\0' && n <= AVA_NAME_MAX ? n : 0;
}

/* The length of the phase word at p (stopping at any byte outside [a-z0-9_]), or 0 when it is
 * empty or longer than AVA_PHASE_MAX. */
static size_t phase_word(const char *p) {
    size_t n = 0;
    while (n <= AVA_PHASE_MAX && phase_char((unsigned char)p[n]))
        n++;
    return n <= AVA_PHASE_MAX ? n : 0;
}

/* Whether p begins with the 6 bytes of key (stops at p's NUL: never reads past it). */
static inline bool key_is(const char *p, const char *key) {
    for (int i = 0; i < 6; i++)
        if (p[i] != key[i])
            return false;
    return true;
}

/* Parses "phase=P", "epoch=E" or both (either order, comma-separated). Returns 0 with the
 * phase (not NUL-terminated) and epoch (-1 = none), or -1 for anything else. */
static int parse_tags(const char *tags, const char **phase, size_t *plen, int64_t *epoch) {
    *phase = NULL;
    *plen = 0;
    *epoch = -1;
    if (!tags || !*tags)
        return 0;
    const char *p = tags;
    for (;;) {
        if (!*phase && key_is(p, "phase=")) {
            p += 6;
            size_t n = phase_word(p);
            if (n == 0)
                return -1;
            *phase = p;
            *plen = n;
            p += n;
        } else if (*epoch < 0 && key_is(p, "epoch=")) {
            p += 6;
            if ((unsigned)(*p - '0') >= 10)
                return -1;
            int64_t v = 0;
            for (; (unsigned)(*p - '0') < 10; p++) {
                int d = *p - '0';
                if (v > (INT64_MAX - d) / 10)
                    return -1;
                v = v * 10 + d;
            }
            *epoch = v;
        } else {
            return -1;
        }
        if (*p == '\0')
            return 0;
        if (*p != ',')
            return -1;
        p++;
    }
}

/* ---- the per-thread cache of checked arguments ---- */

/* What a thread's cache holds: the arguments of its last ava_report() (name, tags) or
 * ava_report_ex() (name, phase, epoch), known valid, and the start of their line. A training
 * reports the same few metrics again and again: a hit costs two strcmp() instead of checking
 * the name and parsing the tags again, and a memcpy instead of formatting them (~250 of a
 * point's ~1400 instructions before). Per thread: no lock, no sharing. */
enum cache_kind { CACHE_NONE, CACHE_TAGS, CACHE_EX };
#define CACHE_KEY_MAX 64 /* longer tags strings (epochs with leading zeros...) are not kept */

struct point_cache {
    enum cache_kind kind;
    int64_t epoch;               /* CACHE_EX */
    char name[AVA_NAME_MAX + 1]; /* NUL-terminated */
    char key[CACHE_KEY_MAX];     /* the tags string (CACHE_TAGS) or the phase (CACHE_EX) */
    size_t prefix_len;           /* prefix: "name[,phase=P][,epoch=E] value=" */
    char prefix[AVA__PREFIX_MAX];
    struct ava__ts_cache ts; /* the timestamp's seconds, formatted */
};

static _Thread_local struct point_cache tls_point;

/* Whether the thread's cache holds name and key (a tags string or a phase, never NULL) of the
 * given kind (and epoch, for CACHE_EX). */
static inline bool cache_hit(const struct point_cache *pc, enum cache_kind kind, const char *name,
                             const char *key, int64_t epoch) {
    return pc->kind == kind && name && epoch == pc->epoch && strcmp(name, pc->name) == 0 &&
           strcmp(key, pc->key) == 0;
}

/* Stores checked arguments (name of nlen bytes, key, phase of plen bytes, epoch) in the cache
 * with their line prefix. A key too long to keep leaves the cache unmatched (CACHE_NONE) but
 * the prefix is still there for this point. */
static void cache_store(struct point_cache *pc, enum cache_kind kind, const char *name, size_t nlen,
                        const char *key, const char *phase, size_t plen, int64_t epoch) {
    size_t klen = strlen(key);
    pc->kind = klen < CACHE_KEY_MAX ? kind : CACHE_NONE;
    if (pc->kind != CACHE_NONE) {
        memcpy(pc->name, name, nlen + 1);
        memcpy(pc->key, key, klen + 1);
        pc->epoch = kind == CACHE_EX ? epoch : 0;
    }
    pc->prefix_len = ava__fmt_prefix(pc->prefix, name, nlen, phase, plen, epoch);
}

/* ---- the descriptor ---- */

/* Writes a one-line warning on stderr, as one write() so that it is not split. */
static void warn(const char *msg) {
    ssize_t rc = write(STDERR_FILENO, msg, strlen(msg));
    (void)rc; /* nothing to do when stderr is gone */
}

/* Reads AVA_METRICS_FD and prepares the descriptor. Returns ST_ON or ST_OFF (after the one
 * warning). Called under init_lock. */
static int open_metrics_fd(void) {
    const char *s = getenv("AVA_METRICS_FD");
    char msg[160];
    if (!s || !*s) {
        warn("ava: AVA_METRICS_FD is not set: metrics are not reported\n");
        return ST_OFF;
    }
    long fd = 0;
    const char *p = s;
    while ((unsigned)(*p - '0') < 10 && fd <= INT_MAX)
        fd = fd * 10 + (*p++ - '0');
    int fl = -1;
    if (*p == '\0' && fd <= INT_MAX)
        fl = fcntl((int)fd, F_GETFL);
    struct stat st;
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || fstat((int)fd, &st) != 0) {
        snprintf(msg, sizeof msg,
                 "ava: AVA_METRICS_FD=%.40s is not a file descriptor open for writing: "
                 "metrics are not reported\n",
                 s);
        warn(msg);
        return ST_OFF;
    }
    enum fd_kind kind = S_ISFIFO(st.st_mode)   ? FD_PIPE
                        : S_ISSOCK(st.st_mode) ? FD_SOCKET
                                               : FD_OTHER;
    /* O_NONBLOCK belongs to the open file description, shared with whoever else holds it:
     * fine for the supervisor's pipe, not for a stdin/stdout/stderr that happens to be one */
    if (kind == FD_PIPE && fd > STDERR_FILENO && !(fl & O_NONBLOCK))
        fcntl((int)fd, F_SETFL, fl | O_NONBLOCK);
    pthread_mutex_lock(&g.lock);
    g.fd = (int)fd;
    g.kind = kind;
    pthread_mutex_unlock(&g.lock);
    return ST_ON;
}

static void at_exit_flush(void);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

/* Reads the environment once (per process, or per ava__reset_for_tests). Returns the state. */
static int sdk_init(void) {
    pthread_mutex_lock(&g.init_lock);
    int st = atomic_load(&g.state);
    if (st == ST_UNINIT) {
        if (!g.fill) {
            g.fill = g.bufs[0];
            g.out = g.bufs[1];
        }
        st = open_metrics_fd();
        if (st == ST_ON && !g.hooks) {
            g.hooks = true;
            atexit(at_exit_flush);
            pthread_atfork(fork_prepare, fork_parent, fork_child);
        }
        atomic_store_explicit(&g.state, st, memory_order_release);
    }
    pthread_mutex_unlock(&g.init_lock);
    return st;
}

/* The state, reading the environment on the first call. */
static inline int sdk_state(void) {
    int st = atomic_load_explicit(&g.state, memory_order_acquire);
    return st != ST_UNINIT ? st : sdk_init();
}

/* ---- drops ---- */

/* Adds n points to the drop counts. Lock-free. */
static void count_drops(uint64_t n) {
    atomic_fetch_add_explicit(&g.pending_drops, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&g.dropped_total, n, memory_order_relaxed);
}

/* The number of user points (lines other than ava.dropped) in b[0, n). A leading partial line
 * (after a short write to a socket) counts too. */
static uint64_t count_points(const char *b, size_t n) {
    uint64_t points = 0;
    bool line_start = true;
    for (size_t i = 0; i < n; i++) {
        /* strncmp stops at the line's '\n' at the latest, which lies before n */
        if (line_start && strncmp(b + i, "ava.dropped ", 12) != 0)
            points++;
        line_start = b[i] == '\n';
    }
    return points;
}

/* The supervisor is gone: drop what is queued (out, when the caller holds out_lock, and fill)
 * and everything after, and say so once. Called under lock. */
static void go_dead_locked(bool holding_out) {
    if (holding_out) {
        count_drops(count_points(g.out + g.out_head, g.out_len - g.out_head));
        g.out_head = g.out_len = 0;
    }
    count_drops(count_points(g.fill, g.fill_len));
    g.fill_len = 0;
    g.dead = true;
    g.armed = g.stalled = false;
    atomic_store_explicit(&g.full, true, memory_order_relaxed); /* drop without formatting */
    if (!g.warned_dead) {
        g.warned_dead = true;
        warn("ava: the metrics pipe (AVA_METRICS_FD) is closed: metrics are no longer "
             "reported\n");
    }
}

/* ---- writing ---- */

/* Blocks SIGPIPE in the calling thread for a run of writes (the flusher has it blocked for
 * good); *old receives the mask for pipe_guard_off(). Two system calls, so one guard covers a
 * whole write_round(). */
static void pipe_guard_on(sigset_t *old) {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, old);
}

/* Ends pipe_guard_on(): a write that failed with EPIPE raised SIGPIPE, now pending; consume it
 * (unless the thread had SIGPIPE blocked itself: then it is the thread's, as for its own
 * writes), and restore the mask. */
static void pipe_guard_off(const sigset_t *old, bool got_epipe) {
    int e = errno;
    if (got_epipe && !sigismember(old, SIGPIPE)) {
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
    errno = e;
}

/* Writes out[out_head, out_len) in chunks of at most PIPE_BUF bytes, whole lines on a pipe (so
 * that each write is atomic). Returns 0 when all is written, 1 when the descriptor would block
 * (the rest stays in out), -1 with *err when the supervisor is gone. Under out_lock. */
static int write_out(int fd, enum fd_kind kind, int *err) {
    while (g.out_head < g.out_len) {
        const char *p = g.out + g.out_head;
        size_t n = g.out_len - g.out_head;
        if (n > CHUNK_MAX) {
            n = CHUNK_MAX;
            if (kind == FD_PIPE) {
                const char *nl = memrchr(p, '\n', CHUNK_MAX);
                n = nl ? (size_t)(nl - p) + 1 : CHUNK_MAX;
            }
        }
        ssize_t w =
            kind == FD_SOCKET ? send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(fd, p, n);
        if (w > 0) {
            g.out_head += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            return 1;
        } else {
            *err = w < 0 ? errno : EPIPE; /* EPIPE, ECONNRESET, EBADF... or a write of 0 */
            return -1;
        }
    }
    g.out_head = g.out_len = 0;
    return 0;
}

/* Writes everything queued: what out still holds, then fill (swapped in) until it stays
 * empty. Returns 0 (all written), 1 (the descriptor would block; the rest stays queued) or -1
 * (the supervisor is gone). Waits only for another writer's non-blocking writes. */
static int write_round(bool in_flusher) {
    pthread_mutex_lock(&g.out_lock);
    pthread_mutex_lock(&g.lock);
    int fd = g.fd;
    enum fd_kind kind = g.kind;
    bool dead = g.dead;
    pthread_mutex_unlock(&g.lock);
    if (dead || fd < 0) {
        pthread_mutex_unlock(&g.out_lock);
        return dead ? -1 : 0;
    }
    sigset_t old;
    bool guard = !in_flusher && kind != FD_SOCKET;
    bool guarded = false;
    int rc = 0, err = 0;
    for (;;) {
        if (g.out_head < g.out_len) {
            if (guard && !guarded) {
                pipe_guard_on(&old);
                guarded = true;
            }
            rc = write_out(fd, kind, &err);
            if (rc != 0)
                break;
        }
        pthread_mutex_lock(&g.lock);
        if (g.fill_len == 0) {
            pthread_mutex_unlock(&g.lock);
            break;
        }
        char *t = g.out;
        g.out = g.fill;
        g.out_head = 0;
        g.out_len = g.fill_len;
        g.fill = t;
        g.fill_len = 0;
        atomic_store_explicit(&g.full, false, memory_order_relaxed);
        pthread_mutex_unlock(&g.lock);
    }
    if (guarded)
        pipe_guard_off(&old, err == EPIPE);
    if (rc < 0) {
        pthread_mutex_lock(&g.lock);
        go_dead_locked(true);
        pthread_mutex_unlock(&g.lock);
    }
    pthread_mutex_unlock(&g.out_lock);
    return rc;
}

/* ---- the flusher ---- */

static void *flusher_main(void *arg);

/* Starts the flusher when it is not running. Returns whether it runs. Under lock. */
static bool flusher_ensure_locked(void) {
    if (g.flusher || g.flusher_failed)
        return g.flusher;
    /* the thread starts with every signal blocked: the training's handlers never run there,
     * and its writes never raise SIGPIPE */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    size_t stack = FLUSHER_STACK;
    if (stack < (size_t)PTHREAD_STACK_MIN)
        stack = (size_t)PTHREAD_STACK_MIN;
    pthread_attr_setstacksize(&attr, stack);
    pthread_t t;
    int rc = pthread_create(&t, &attr, flusher_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        g.flusher_failed = true;
        return false;
    }
    pthread_setname_np(t, "ava-flush");
    g.flusher = true;
    return true;
}

/* Gives the flusher work. Returns false when there is no flusher: the caller writes then.
 * A lingering flusher (awake, see flusher_main) finds the work by itself; only a parked one
 * needs the signal, a futex wake-up that costs the caller several microseconds (an
 * inter-processor interrupt in a VM): once per burst of points, it was the dearest call of a
 * burst after the write()s. Under lock. */
static bool arm_locked(void) {
    if (!flusher_ensure_locked())
        return false;
    if (!g.armed) {
        g.armed = true;
        if (g.parked)
            pthread_cond_signal(&g.wake);
    }
    return true;
}

/* The flusher: armed by arm_locked(), lets a batch gather for up to FLUSH_DELAY_NS and writes
 * it; when the pipe is full it waits for room (it may: it is nobody's caller). Once the queue
 * is empty it stays awake for FLUSH_LINGER rounds of FLUSH_DELAY_NS (a training that reports
 * in bursts, a step's worth of points at a time, keeps it awake and never pays the signal),
 * then parks on `wake`. */
static void *flusher_main(void *arg) {
    (void)arg;
    bool spin_guard = false;
    int idle = 0; /* rounds in a row without work */
    pthread_mutex_lock(&g.lock);
    for (;;) {
        if (!g.armed && idle >= FLUSH_LINGER) {
            g.parked = true;
            while (!g.armed)
                pthread_cond_wait(&g.wake, &g.lock);
            g.parked = false;
            idle = 0;
        }
        bool stalled = g.armed && g.stalled && !spin_guard;
        int fd = g.fd;
        pthread_mutex_unlock(&g.lock);
        if (stalled && fd >= 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, STALL_POLL_MS);
        } else {
            const struct timespec d = {0, FLUSH_DELAY_NS};
            nanosleep(&d, NULL);
        }
        pthread_mutex_lock(&g.lock);
        bool work = g.armed; /* armed before or during the sleep */
        pthread_mutex_unlock(&g.lock);
        int rc = work && atomic_load(&g.state) == ST_ON ? write_round(true) : 0;
        pthread_mutex_lock(&g.lock);
        /* poll announced room yet the write would still block: sleep before polling again */
        spin_guard = rc == 1 && stalled;
        g.stalled = rc == 1;
        if (rc != 1 && g.fill_len == 0)
            g.armed = false;
        idle = work ? 0 : idle + 1;
    }
    return NULL;
}

/* ---- reporting ---- */

/* Takes one immediate write from the budget (refilled with time, up to a burst). Under lock. */
static bool take_credit(int64_t now) {
    int64_t c = g.credit_ns + (now - g.credit_at);
    g.credit_at = now;
    if (c > IMMEDIATE_BURST * IMMEDIATE_NS)
        c = IMMEDIATE_BURST * IMMEDIATE_NS;
    if (c < 0) /* the wall clock went back */
        c = 0;
    bool ok = c >= IMMEDIATE_NS;
    g.credit_ns = ok ? c - IMMEDIATE_NS : c;
    return ok;
}

/* What enqueue_locked() did with a line. */
enum enqueued {
    Q_QUEUED,  /* queued; the flusher (or a later call) writes it */
    Q_WRITE,   /* queued; the caller writes now */
    Q_NO_ROOM, /* not queued: fill is full but the supervisor keeps up (the writer is late):
                * the caller writes, then queues again */
    Q_DROPPED, /* dropped and counted */
};

/* Appends one formatted line to fill (preceded by ava.dropped when points were dropped), or
 * drops it when the supervisor is slow. Under lock. */
static enum enqueued enqueue_locked(const char *line, size_t n, int64_t step, int64_t now) {
    if (g.dead || g.fd < 0) {
        count_drops(1);
        return Q_DROPPED;
    }
    char dl[AVA__LINE_MAX];
    size_t dn = 0;
    uint64_t dropped = atomic_load_explicit(&g.pending_drops, memory_order_relaxed);
    if (dropped > 0)
        dn = ava__fmt_line(dl, "ava.dropped", 11, NULL, 0, -1, (double)dropped, step, now);
    if (BUF_CAP - g.fill_len < dn + n) {
        if (!g.stalled || !g.flusher)
            return Q_NO_ROOM;
        count_drops(1);
        /* until the flusher empties fill, callers drop without formatting or locking */
        atomic_store_explicit(&g.full, true, memory_order_relaxed);
        return Q_DROPPED;
    }
    if (dn > 0) { /* drops counted meanwhile (without the lock) wait for the next line */
        memcpy(g.fill + g.fill_len, dl, dn);
        g.fill_len += dn;
        atomic_fetch_sub_explicit(&g.pending_drops, dropped, memory_order_relaxed);
    }
    memcpy(g.fill + g.fill_len, line, n);
    g.fill_len += n;
    if (g.stalled && g.flusher)
        return Q_QUEUED; /* the flusher writes once the supervisor has made room */
    /* while the flusher is awake it writes what is queued within FLUSH_DELAY_NS, on its own
     * thread: the caller leaves it the batches and writes only from FLUSHER_BATCH on */
    if (g.fill_len >= (g.flusher && !g.parked ? FLUSHER_BATCH : CALLER_BATCH))
        return Q_WRITE;
    /* an awake flusher writes it within FLUSH_DELAY_NS at no cost to the caller: the budget of
     * immediate writes is for when it sleeps or was never needed */
    if (g.flusher && !g.parked)
        return arm_locked() ? Q_QUEUED : Q_WRITE;
    if (take_credit(now))
        return Q_WRITE;
    return arm_locked() ? Q_QUEUED : Q_WRITE;
}

/* The caller writes (a rare point, no flusher, or a late flusher); a full pipe leaves the
 * rest to the flusher. */
static void write_now(void) {
    if (write_round(false) == 1) {
        pthread_mutex_lock(&g.lock);
        g.stalled = true;
        arm_locked();
        pthread_mutex_unlock(&g.lock);
    }
}

/* Checked arguments in (the line's prefix in pc), one line queued (or dropped). */
static int submit(struct point_cache *pc, double value, int64_t step) {
    if (sdk_state() != ST_ON)
        return 0;
    if (atomic_load_explicit(&g.full, memory_order_relaxed)) {
        count_drops(1);
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (now < 0)
        now = 0;
    char line[AVA__LINE_MAX];
    memcpy(line, pc->prefix, sizeof pc->prefix); /* a fixed size: moves, not a call */
    size_t n = pc->prefix_len + ava__fmt_tail(line + pc->prefix_len, value, step, now, &pc->ts);
    for (int attempt = 0;; attempt++) {
        pthread_mutex_lock(&g.lock);
        enum enqueued q = enqueue_locked(line, n, step, now);
        if (q == Q_NO_ROOM && attempt > 0) {
            count_drops(1); /* written out and still no room: other threads filled it */
            q = Q_DROPPED;
        }
        pthread_mutex_unlock(&g.lock);
        if (q == Q_WRITE || q == Q_NO_ROOM)
            write_now();
        if (q != Q_NO_ROOM)
            return 0;
    }
}

/* ---- the public functions ---- */

/* ava_report() on a cache miss: checks name and tags and, when valid, caches them. Returns 0
 * or -1 (invalid). */
static int cache_tags(struct point_cache *pc, const char *name, const char *tags) {
    size_t nlen = name_len(name);
    const char *phase;
    size_t plen;
    int64_t epoch;
    if (nlen == 0 || parse_tags(tags, &phase, &plen, &epoch) < 0)
        return -1;
    cache_store(pc, CACHE_TAGS, name, nlen, tags, phase, plen, epoch);
    return 0;
}

int ava_report(const char *name, int64_t step, double value, const char *tags) {
    struct point_cache *pc = &tls_point;
    const char *key = tags ? tags : "";
    if ((!cache_hit(pc, CACHE_TAGS, name, key, 0) && cache_tags(pc, name, key) < 0) || step < 0 ||
        !isfinite(value)) {
        errno = EINVAL;
        return -1;
    }
    return submit(pc, value, step);
}

/* ava_report_ex() on a cache miss: checks name, phase (never NULL) and epoch and, when valid,
 * caches them. Returns 0 or -1 (invalid). */
static int cache_ex(struct point_cache *pc, const char *name, const char *phase, int64_t epoch) {
    size_t nlen = name_len(name);
    size_t plen = *phase ? phase_word(phase) : 0;
    if (nlen == 0 || epoch < AVA_NO_EPOCH || (*phase && (plen == 0 || phase[plen] != '\0')))
        return -1;
    cache_store(pc, CACHE_EX, name, nlen, phase, phase, plen, epoch);
    return 0;
}

int ava_report_ex(const char *name, int64_t step, double value, const char *phase, int64_t epoch) {
    struct point_cache *pc = &tls_point;
    const char *key = phase ? phase : "";
    if ((!cache_hit(pc, CACHE_EX, name, key, epoch) && cache_ex(pc, name, key, epoch) < 0) ||
        step < 0 || !isfinite(value)) {
        errno = EINVAL;
        return -1;
    }
    return submit(pc, value, step);
}

int ava_flush(void) {
    if (sdk_state() != ST_ON)
        return 0;
    int rc = write_round(false);
    if (rc == 1) {
        pthread_mutex_lock(&g.lock);
        g.stalled = true;
        arm_locked();
        pthread_mutex_unlock(&g.lock);
    }
    if (rc == 0)
        return 0;
    errno = rc == 1 ? EAGAIN : EPIPE;
    return -1;
}

uint64_t ava_dropped_total(void) {
    return atomic_load_explicit(&g.dropped_total, memory_order_relaxed);
}

int ava_enabled(void) {
    if (sdk_state() != ST_ON)
        return 0;
    pthread_mutex_lock(&g.lock);
    int on = !g.dead && g.fd >= 0;
    pthread_mutex_unlock(&g.lock);
    return on;
}

/* ---- process events ---- */

/* At exit(): writes the queue out, waiting up to EXIT_WAIT_MS for a slow supervisor (the
 * training is over; its last points matter), then counts what is left as dropped. Gives up
 * rather than deadlock when a writer's lock stays taken (exit() from a signal handler that
 * interrupted a write). */
static void at_exit_flush(void) {
    if (atomic_load(&g.state) != ST_ON)
        return;
    const struct timespec ms = {0, 1000000};
    for (int i = 0; pthread_mutex_trylock(&g.out_lock) != 0; i++) {
        if (i >= 100)
            return;
        nanosleep(&ms, NULL);
    }
    pthread_mutex_unlock(&g.out_lock); /* write_round takes it again */
    for (int waited = 0;; waited += 50) {
        if (write_round(false) != 1)
            return;
        if (waited >= EXIT_WAIT_MS)
            break;
        pthread_mutex_lock(&g.lock);
        int fd = g.fd;
        pthread_mutex_unlock(&g.lock);
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        poll(&pfd, 1, 50);
    }
    pthread_mutex_lock(&g.out_lock);
    pthread_mutex_lock(&g.lock);
    count_drops(count_points(g.out + g.out_head, g.out_len - g.out_head) +
                count_points(g.fill, g.fill_len));
    g.out_head = g.out_len = g.fill_len = 0;
    pthread_mutex_unlock(&g.lock);
    pthread_mutex_unlock(&g.out_lock);
}

/* fork(): no lock may be held by another thread at that moment, or the child (which has only
 * the forking thread) could never take it. */
static void fork_prepare(void) {
    pthread_mutex_lock(&g.init_lock);
    pthread_mutex_lock(&g.out_lock);
    pthread_mutex_lock(&g.lock);
}

/* fork() in the parent: carry on. */
static void fork_parent(void) {
    pthread_mutex_unlock(&g.lock);
    pthread_mutex_unlock(&g.out_lock);
    pthread_mutex_unlock(&g.init_lock);
}

/* fork() in the child: no flusher thread, and the queued lines are the parent's to write. */
static void fork_child(void) {
    pthread_mutex_init(&g.init_lock, NULL);
    pthread_mutex_init(&g.out_lock, NULL);
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.wake, NULL);
    g.flusher = g.flusher_failed = g.armed = g.stalled = g.parked = false;
    g.out_head = g.out_len = g.fill_len = 0;
    atomic_store(&g.pending_drops, 0);
    atomic_store(&g.dropped_total, 0);
    atomic_store(&g.full, g.dead);
}

/* ---- tests ---- */

void ava__reset_for_tests(void) {
    pthread_mutex_lock(&g.init_lock);
    pthread_mutex_lock(&g.out_lock);
    pthread_mutex_lock(&g.lock);
    atomic_store(&g.state, ST_UNINIT);
    atomic_store(&g.dropped_total, 0);
    atomic_store(&g.pending_drops, 0);
    atomic_store(&g.full, false);
    g.fd = -1;
    g.kind = FD_OTHER;
    g.dead = g.warned_dead = g.stalled = g.armed = false;
    g.credit_ns = g.credit_at = 0;
    g.out_head = g.out_len = g.fill_len = 0;
    pthread_mutex_unlock(&g.lock);
    pthread_mutex_unlock(&g.out_lock);
    pthread_mutex_unlock(&g.init_lock);
}

int ava__flusher_started(void) {
    pthread_mutex_lock(&g.lock);
    int on = g.flusher;
    pthread_mutex_unlock(&g.lock);
    return on;
}

int ava__flusher_parked(void) {
    pthread_mutex_lock(&g.lock);
    int parked = g.parked;
    pthread_mutex_unlock(&g.lock);
    return parked;
}
