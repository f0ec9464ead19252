/* bgwrite.c: the background writer of one file (see bgwrite.h): a thread that pwrite(2)s one
 * buffer at a time while the caller fills the next, a sticky first error, writeback started
 * every few MiB, and the closing fsync optionally on the thread. */
#include "bgwrite.h"

#include "../common/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* One file's writer; the job fields, busy, synced, quit and error are guarded by mu. */
struct ava_bgwrite {
    int fd;
    size_t kick_bytes;
    bool threaded; /* the thread may be started (false: inline; the caller alone reads it) */
    bool started;  /* the thread runs (the caller alone reads and writes it) */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job handed over, done, or quit */
    bool busy;         /* a job is handed over and not yet done */
    bool job_fsync;    /* ...and it is the fsync, not a write */
    const uint8_t *job;
    size_t job_len;
    off_t job_off;
    bool synced; /* the fsync was handed over (its result lands in error) */
    bool quit;
    int error; /* errno of the first failure, else 0 */
    /* The range written since writeback was last started; touched by whichever thread writes
     * (one at a time: the thread, or the caller while the thread is idle). */
    off_t kick_lo, kick_hi;
    size_t unkicked;
};

/* Sets up the writer; the thread waits for the first submit (see bgwrite.h). */
struct ava_bgwrite *ava_bgwrite_new(int fd, size_t kick_bytes, bool threaded) {
    struct ava_bgwrite *w = ava_xcalloc(1, sizeof *w);
    w->fd = fd;
    w->kick_bytes = kick_bytes;
    w->threaded = threaded;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    return w;
}

/* pwrite(2)s n bytes at off, retrying short writes and EINTR, then starts the writeback of the
 * range written since the last start once kick_bytes have piled up, so that the closing fsync
 * finds little left. Returns 0 or an errno. */
static int write_here(struct ava_bgwrite *w, const uint8_t *p, size_t n, off_t off) {
    off_t start = off;
    size_t left = n;
    while (left > 0) {
        ssize_t k = pwrite(w->fd, p, left, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno ? errno : EIO;
        p += k;
        left -= (size_t)k;
        off += k;
    }
    if (w->unkicked == 0 || start < w->kick_lo)
        w->kick_lo = start;
    if (w->unkicked == 0 || off > w->kick_hi)
        w->kick_hi = off;
    w->unkicked += n;
    if (w->unkicked >= w->kick_bytes) {
        /* advisory: a failure here shows up again at the closing fsync */
        sync_file_range(w->fd, (off64_t)w->kick_lo, (off64_t)(w->kick_hi - w->kick_lo),
                        SYNC_FILE_RANGE_WRITE);
        w->unkicked = 0;
    }
    return 0;
}

/* fsyncs the file; returns 0 or an errno. */
static int sync_here(const struct ava_bgwrite *w) {
    return fsync(w->fd) < 0 ? (errno ? errno : EIO) : 0;
}

/* The thread: runs each job handed over (a write, or the fsync), in order, until told to
 * quit; after a failure it runs nothing more. */
static void *bg_main(void *arg) {
    struct ava_bgwrite *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->busy && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->busy)
            break;
        int e = w->error;
        const uint8_t *p = w->job;
        size_t n = w->job_len;
        off_t off = w->job_off;
        bool sync = w->job_fsync;
        pthread_mutex_unlock(&w->mu);
        if (e == 0)
            e = sync ? sync_here(w) : write_here(w, p, n, off);
        pthread_mutex_lock(&w->mu);
        if (e && !w->error)
            w->error = e;
        w->busy = false;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Starts the thread with every signal blocked (they stay with the caller's threads); when it
 * cannot start, the writer goes inline for good. */
static void bg_start(struct ava_bgwrite *w) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    w->started = pthread_create(&w->th, NULL, bg_main, w) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    w->threaded = w->started;
}

/* With w->mu held: waits until the thread is idle. */
static void wait_idle_locked(struct ava_bgwrite *w) {
    while (w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
}

/* Waits until the thread (if any) is idle; returns the sticky errno or 0. */
int ava_bgwrite_wait(struct ava_bgwrite *w) {
    if (!w->started)
        return w->error;
    pthread_mutex_lock(&w->mu);
    wait_idle_locked(w);
    int e = w->error;
    pthread_mutex_unlock(&w->mu);
    return e;
}

/* Records e as the sticky error unless one is there; returns the sticky error. Only called
 * while the thread is idle or absent. */
static int keep_error(struct ava_bgwrite *w, int e) {
    if (!w->started) {
        if (e && !w->error)
            w->error = e;
        return w->error;
    }
    pthread_mutex_lock(&w->mu);
    if (e && !w->error)
        w->error = e;
    e = w->error;
    pthread_mutex_unlock(&w->mu);
    return e;
}

/* Hands a job over (see bgwrite.h), starting the thread on first use. */
int ava_bgwrite_submit(struct ava_bgwrite *w, const void *p, size_t n, off_t off) {
    if (!w->started && w->threaded)
        bg_start(w);
    if (!w->started) {
        if (w->error)
            return w->error;
        return keep_error(w, write_here(w, p, n, off));
    }
    pthread_mutex_lock(&w->mu);
    wait_idle_locked(w);
    int e = w->error;
    if (e == 0) {
        w->busy = true;
        w->job_fsync = false;
        w->job = p;
        w->job_len = n;
        w->job_off = off;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return e;
}

/* Writes in the caller once the thread is idle (see bgwrite.h). */
int ava_bgwrite_write(struct ava_bgwrite *w, const void *p, size_t n, off_t off) {
    int e = ava_bgwrite_wait(w);
    if (e)
        return e;
    return keep_error(w, write_here(w, p, n, off));
}

/* Hands the fsync to the thread when it runs and nothing failed (see bgwrite.h). */
void ava_bgwrite_sync_start(struct ava_bgwrite *w) {
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    wait_idle_locked(w);
    if (w->error == 0) {
        w->busy = true;
        w->job_fsync = true;
        w->synced = true;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

/* The fsync's result: the thread's when it was handed over, else one run here. */
int ava_bgwrite_sync(struct ava_bgwrite *w) {
    int e = ava_bgwrite_wait(w);
    if (w->synced) /* written by the caller's own sync_start; read after the wait */
        return e;
    return sync_here(w);
}

/* Stops the thread after its job in flight and frees w (the fd stays open). */
void ava_bgwrite_free(struct ava_bgwrite *w) {
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        wait_idle_locked(w);
        w->quit = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
