/* lmdbw.c: the LMDB writer of Caffe sets: keys formatted as convert_imageset's, data.mdb laid
 * out directly (lmdbbulk.c) while keys come in order, then LMDB transactions (on a thread of
 * the writer's, with a map grown on demand) from the first out-of-order key on; close syncs.
 * The Datum values are encoded by datum.c. */
#include "lmdbw.h"

#include "lmdbbulk.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PUTS_PER_TXN 1000                    /* convert_imageset commits every 1000 puts */
#define PENDING_BYTES_MAX ((size_t)64 << 20) /* ...or earlier, to bound the redo copy */
#define MAP_MIN ((size_t)64 << 10)
#define KEY_MAX 1100
#define KICK_BYTES ((size_t)4 << 20) /* data.mdb's writeback is started every 4 MiB committed */

/* ---- transactions through LMDB (after an out-of-order key) ---- */

/* A put not yet committed: key then value, at `off` in its batch's arena. */
struct pending {
    size_t off, klen, vlen;
    bool append; /* the key sorts after every key before it: MDB_APPEND fills pages fully */
};

/* The puts of one transaction, kept until it commits to redo them after a map growth. */
struct batch {
    uint8_t *arena;
    size_t alen, acap;
    struct pending *pend;
    size_t npend, cap;
};

/* LMDB's own work (mdb_put, the commits and their writes) runs on a thread of the writer's:
 * the caller encodes the puts of the next transaction into one batch while that thread
 * applies and commits the other. Transactions are begun, used and ended on that thread only.
 * A put whose key does not sort after every earlier key (which may exist already) is applied
 * at once and waited for, so that its result is the put's. */
enum job_kind { JOB_NONE, JOB_APPLY, JOB_ABORT };

struct lmdb_job {
    enum job_kind kind;
    struct batch *b;
    size_t from, to; /* the puts of b to apply */
    bool commit;     /* ...then commit the transaction */
    bool may_exist;  /* the last put may find its key: AVA_EEXISTS, the transaction usable */
};

struct lmdb_thread {
    pthread_t th;
    bool started;
    bool inline_only; /* it could not start: every job runs on the caller's thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a job handed over, done, or quit */
    struct lmdb_job job; /* JOB_NONE when the thread is idle */
    bool quit;
    int rc; /* the last job's result: 0, AVA_EEXISTS, or a failure (then every later job fails) */
    char err[AVA_ERRLEN];
};

struct ava_lmdb_writer {
    MDB_env *env;
    MDB_txn *txn;    /* open while puts are pending; only the thread that runs the jobs */
    MDB_cursor *cur; /* the transaction's, closed with it */
    MDB_dbi dbi;
    char *dir;
    size_t mapsize;
    struct batch batches[2];
    int fill;               /* the batch the caller adds puts to: the open transaction's */
    size_t applied;         /* puts of that batch handed to the LMDB thread already */
    char last_key[KEY_MAX]; /* the greatest key put so far */
    size_t last_klen;
    size_t committing; /* bytes of the commit handed to the LMDB thread last */
    size_t unkicked;   /* bytes committed since data.mdb's writeback was last started */
    bool broken;
    struct lmdb_thread lt;
    struct ava_lmdb_bulk *bulk; /* while every key sorted last: pages written directly; else NULL */
    bool env_open;              /* LMDB has the environment open (after bulk writing, if any) */
};

/* An LMDB failure as an AVA_E* code and message. */
static int lmdb_fail(const struct ava_lmdb_writer *w, int rc, const char *what, char *err) {
    return ava_err(err, AVA_EIO, "LMDB %s in %s: %s", what, w->dir, mdb_strerror(rc));
}

/* Creates the directory, refusing one that exists. */
static int make_new_dir(const char *dir, char *err) {
    if (mkdir(dir, 0755) == 0)
        return 0;
    if (errno == EEXIST)
        return ava_err(err, AVA_EEXISTS,
                       "%s already exists: an LMDB set is written into a new directory", dir);
    return ava_err(err, AVA_EIO, "cannot create directory %s: %s", dir, strerror(errno));
}

/* Rounds the requested initial map size to whole pages, at least MAP_MIN. */
static size_t initial_mapsize(size_t want) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (want < MAP_MIN)
        want = MAP_MIN;
    return (want + page - 1) / page * page;
}

/* Opens the environment with LMDB (its map at w->mapsize) for transactions. */
static int env_open(struct ava_lmdb_writer *w, char *err) {
    int mrc = mdb_env_set_mapsize(w->env, w->mapsize);
    /* MDB_NOSYNC: the set is published only after close, which syncs once */
    if (mrc == 0)
        mrc = mdb_env_open(w->env, w->dir, MDB_NOSYNC, 0644);
    if (mrc != 0)
        return lmdb_fail(w, mrc, "open", err);
    w->env_open = true;
    return 0;
}

int ava_lmdb_writer_open_mapsize(const char *dir, size_t initial_map, struct ava_lmdb_writer **out,
                                 char *err) {
    *out = NULL;
    int rc = make_new_dir(dir, err);
    if (rc)
        return rc;
    struct ava_lmdb_writer *w = ava_xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->lt.mu, NULL);
    pthread_cond_init(&w->lt.cv, NULL);
    w->dir = ava_xstrdup(dir);
    w->mapsize = initial_mapsize(initial_map);
    int mrc = mdb_env_create(&w->env);
    if (mrc != 0) {
        w->env = NULL;
        rc = lmdb_fail(w, mrc, "open", err);
    } else {
        rc = ava_lmdb_bulk_open(dir, &w->bulk, err);
        if (rc == 0 && !w->bulk) /* pages too large to lay out here: LMDB does it all */
            rc = env_open(w, err);
    }
    if (rc) {
        w->broken = true;
        ava_lmdb_writer_close(w, NULL);
        ava_rm_rf(dir, NULL);
        return rc;
    }
    *out = w;
    return 0;
}

int ava_lmdb_writer_open(const char *dir, struct ava_lmdb_writer **out, char *err) {
    return ava_lmdb_writer_open_mapsize(dir, AVA_LMDB_INITIAL_MAP, out, err);
}

/* Begins the write transaction and opens the unnamed main database in it. */
static int txn_begin(struct ava_lmdb_writer *w) {
    int mrc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
    if (mrc != 0) {
        w->txn = NULL;
        return mrc;
    }
    mrc = mdb_dbi_open(w->txn, NULL, 0, &w->dbi);
    if (mrc == 0)
        mrc = mdb_cursor_open(w->txn, w->dbi, &w->cur);
    if (mrc != 0) {
        mdb_txn_abort(w->txn);
        w->txn = NULL;
    }
    return mrc;
}

/* Puts entry i of batch b in the open transaction; returns LMDB's code. */
static int txn_put(struct ava_lmdb_writer *w, const struct batch *b, size_t i) {
    const struct pending *e = &b->pend[i];
    MDB_val k = {e->klen, b->arena + e->off};
    MDB_val v = {e->vlen, b->arena + e->off + e->klen};
    /* one cursor per transaction: an appending put finds the last page without a search */
    return mdb_cursor_put(w->cur, &k, &v, e->append ? MDB_APPEND : MDB_NOOVERWRITE);
}

/* After MDB_MAP_FULL: drops the transaction, doubles the map until the puts [0, n) of b fit
 * in a fresh transaction, and leaves that transaction open with them. */
static int grow_and_redo(struct ava_lmdb_writer *w, const struct batch *b, size_t n, char *err) {
    for (;;) {
        if (w->txn)
            mdb_txn_abort(w->txn);
        w->txn = NULL;
        if (w->mapsize >= AVA_LMDB_MAP_MAX)
            return ava_err(err, AVA_ETOOLARGE, "LMDB map of %s would grow past 1 TiB", w->dir);
        int mrc = mdb_env_set_mapsize(w->env, w->mapsize * 2);
        if (mrc != 0)
            return lmdb_fail(w, mrc, "map growth", err);
        w->mapsize *= 2;
        if ((mrc = txn_begin(w)) != 0)
            return lmdb_fail(w, mrc, "transaction", err);
        for (size_t i = 0; i < n && mrc == 0; i++)
            mrc = txn_put(w, b, i);
        if (mrc == 0)
            return 0;
        if (mrc != MDB_MAP_FULL)
            return lmdb_fail(w, mrc, "put", err);
    }
}

/* Commits the transaction of batch b, growing the map when the commit itself finds it full. */
static int commit(struct ava_lmdb_writer *w, const struct batch *b, char *err) {
    while (w->txn) {
        int mrc = mdb_txn_commit(w->txn);
        w->txn = NULL; /* freed by commit whatever it returns */
        if (mrc == MDB_MAP_FULL) {
            int rc = grow_and_redo(w, b, b->npend, err);
            if (rc)
                return rc;
        } else if (mrc != 0) {
            return lmdb_fail(w, mrc, "commit", err);
        }
    }
    return 0;
}

/* Counts the bytes of a commit that is done, and every KICK_BYTES starts writing the
 * committed pages out (MDB_NOSYNC leaves them dirty), so that the sync of close finds little
 * left. On the caller's thread, while the LMDB thread goes on. Advisory: errors show up at
 * that sync. */
static void kick(struct ava_lmdb_writer *w, size_t committed) {
    w->unkicked += committed;
    if (w->unkicked < KICK_BYTES)
        return;
    int fd;
    if (mdb_env_get_fd(w->env, &fd) == 0)
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    w->unkicked = 0;
}

/* Runs a job (on the LMDB thread, or on the caller's when there is none). A failure aborts
 * the transaction, except a key that exists where the job allows it. */
static int run_job(struct ava_lmdb_writer *w, const struct lmdb_job *j, char *err) {
    if (j->kind == JOB_ABORT) {
        if (w->txn)
            mdb_txn_abort(w->txn);
        w->txn = NULL;
        return 0;
    }
    int rc = 0, mrc = 0;
    if (j->from < j->to && !w->txn && (mrc = txn_begin(w)) != 0)
        return lmdb_fail(w, mrc, "transaction", err);
    for (size_t i = j->from; i < j->to && rc == 0; i++) {
        mrc = txn_put(w, j->b, i);
        if (mrc == MDB_MAP_FULL)
            rc = grow_and_redo(w, j->b, i + 1, err);
        else if (mrc == MDB_KEYEXIST && j->may_exist && i + 1 == j->to)
            rc = ava_err(err, AVA_EEXISTS, "duplicate LMDB key in %s", w->dir);
        else if (mrc != 0)
            rc = lmdb_fail(w, mrc, "put", err);
    }
    if (rc == AVA_EEXISTS) /* the last put, which may exist: the transaction stays usable */
        return rc;
    if (rc == 0 && j->commit)
        rc = commit(w, j->b, err);
    if (rc && w->txn) {
        mdb_txn_abort(w->txn);
        w->txn = NULL;
    }
    return rc;
}

/* The LMDB thread: runs the jobs handed over, one at a time, until told to quit; then aborts
 * a transaction that a failure left open. After a failure it refuses every later job with
 * the same error. */
static void *lmdb_main(void *arg) {
    struct ava_lmdb_writer *w = arg;
    struct lmdb_thread *t = &w->lt;
    char err[AVA_ERRLEN];
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->job.kind == JOB_NONE && !t->quit)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->job.kind == JOB_NONE)
            break;
        struct lmdb_job j = t->job;
        bool failed = t->rc != 0 && t->rc != AVA_EEXISTS;
        pthread_mutex_unlock(&t->mu);
        int rc = failed && j.kind == JOB_APPLY ? 0 : run_job(w, &j, err);
        pthread_mutex_lock(&t->mu);
        if (!failed) {
            t->rc = rc;
            if (rc)
                memcpy(t->err, err, sizeof err);
        }
        t->job.kind = JOB_NONE;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    run_job(w, &(struct lmdb_job){JOB_ABORT, NULL, 0, 0, false, false}, NULL);
    return NULL;
}

/* Waits until the LMDB thread is idle; returns its last result (with its message in err). */
static int lmdb_wait(struct lmdb_thread *t, char *err) {
    pthread_mutex_lock(&t->mu);
    while (t->job.kind != JOB_NONE)
        pthread_cond_wait(&t->cv, &t->mu);
    int rc = t->rc;
    if (rc)
        ava_err(err, rc, "%s", t->err);
    if (rc == AVA_EEXISTS)
        t->rc = 0; /* reported once, to the put it belongs to */
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* Hands a job to the LMDB thread (starting it on first use, with every signal blocked) once
 * the previous one is done, and waits for it when asked to. When the thread cannot start,
 * this and every later job run here. Returns the previous job's failure, or this one's result
 * when waited for. */
static int submit(struct ava_lmdb_writer *w, const struct lmdb_job *j, bool wait, char *err) {
    struct lmdb_thread *t = &w->lt;
    if (!t->started && !t->inline_only) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        t->started = pthread_create(&t->th, NULL, lmdb_main, w) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        t->inline_only = !t->started; /* for good: a transaction may be open on this thread */
    }
    size_t bytes = j->kind == JOB_APPLY && j->commit ? j->b->alen : 0;
    if (t->inline_only) {
        int rc = run_job(w, j, err);
        if (rc == 0)
            kick(w, bytes);
        return rc;
    }
    int rc = lmdb_wait(t, err);
    if (rc)
        return rc;
    size_t done = w->committing; /* the previous job's commit is done */
    pthread_mutex_lock(&t->mu);
    t->job = *j;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    w->committing = bytes;
    kick(w, done);
    return wait ? lmdb_wait(t, err) : 0;
}

/* True when key sorts after the greatest key so far in LMDB's default order (memcmp, then
 * the shorter first). */
static bool key_after_last(const struct ava_lmdb_writer *w, const char *key, size_t klen) {
    if (w->last_klen == 0)
        return true;
    size_t n = klen < w->last_klen ? klen : w->last_klen;
    int c = memcmp(key, w->last_key, n);
    return c > 0 || (c == 0 && klen > w->last_klen);
}

/* Adds a put to batch b: the key, then the datum encoded in place. */
static void add_pending(struct batch *b, const char *key, size_t klen, const struct ava_datum *d,
                        size_t vlen, bool append) {
    if (b->npend == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->pend = ava_xrealloc(b->pend, b->cap * sizeof *b->pend);
    }
    if (b->acap - b->alen < klen + vlen) {
        size_t cap = b->acap ? b->acap : 1 << 16;
        while (cap - b->alen < klen + vlen)
            cap *= 2;
        b->arena = ava_xrealloc(b->arena, cap);
        b->acap = cap;
    }
    b->pend[b->npend++] = (struct pending){b->alen, klen, vlen, append};
    memcpy(b->arena + b->alen, key, klen);
    ava_datum_write(d, b->arena + b->alen + klen);
    b->alen += klen + vlen;
}

/* Writes sprintf("%08d_%s", index, name) (index >= 0) into key (KEY_MAX bytes) and returns
 * its length, or -1 when it does not fit. */
static int format_key(char key[KEY_MAX], int index, const char *name) {
    char digits[16];
    int nd = 0;
    unsigned v = (unsigned)index;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    int pad = nd < 8 ? 8 - nd : 0;
    size_t nlen = strlen(name), klen = (size_t)(pad + nd) + 1 + nlen;
    if (klen >= KEY_MAX)
        return -1;
    memset(key, '0', (size_t)pad);
    for (int i = 0; i < nd; i++)
        key[pad + i] = digits[nd - 1 - i];
    key[pad + nd] = '_';
    memcpy(key + pad + nd + 1, name, nlen + 1);
    return (int)klen;
}

/* Ends bulk writing at the first key that does not sort last (it may exist already): the
 * tree so far is finished as a valid environment, which LMDB opens to go on with
 * transactions. */
static int leave_bulk(struct ava_lmdb_writer *w, char *err) {
    struct ava_lmdb_bulk *b = w->bulk;
    w->bulk = NULL;
    int rc = ava_lmdb_bulk_finish(b, &w->mapsize, err);
    rc = ava_lmdb_bulk_free(b, false, rc, err);
    return rc ? rc : env_open(w, err);
}

int ava_lmdb_writer_put(struct ava_lmdb_writer *w, int index, const char *name,
                        const struct ava_datum *d, char *err) {
    if (w->broken)
        return ava_err(err, AVA_EIO, "LMDB writer for %s failed earlier", w->dir);
    if (index < 0)
        return ava_err(err, AVA_EINVALID, "negative LMDB key index %d", index);
    char key[KEY_MAX];
    int klen = format_key(key, index, name);
    if (klen < 0 || klen >= (int)sizeof key || klen > mdb_env_get_maxkeysize(w->env))
        return ava_err(err, AVA_EINVALID, "LMDB key for '%s' is longer than %d bytes", name,
                       mdb_env_get_maxkeysize(w->env));
    size_t vlen;
    int rc = ava_datum_check(d, &vlen, err);
    if (rc)
        return rc;
    bool append = key_after_last(w, key, (size_t)klen);
    if (w->bulk && append) {
        if ((rc = ava_lmdb_bulk_put(w->bulk, key, (size_t)klen, d, vlen, err)) != 0) {
            w->broken = true;
            return rc;
        }
        memcpy(w->last_key, key, (size_t)klen);
        w->last_klen = (size_t)klen;
        return 0;
    }
    if (w->bulk && (rc = leave_bulk(w, err)) != 0) {
        w->broken = true;
        return rc;
    }
    struct batch *b = &w->batches[w->fill];
    add_pending(b, key, (size_t)klen, d, vlen, append);
    if (append) { /* a new greatest key cannot exist: applied later, with the others */
        memcpy(w->last_key, key, (size_t)klen);
        w->last_klen = (size_t)klen;
    } else { /* it may exist: applied now, for this put's result */
        struct lmdb_job j = {JOB_APPLY, b, w->applied, b->npend, false, true};
        rc = submit(w, &j, true, err);
        if (rc == AVA_EEXISTS)
            b->alen = b->pend[--b->npend].off; /* forget it; the transaction stays usable */
        w->applied = b->npend;
    }
    if (rc == 0 && (b->npend >= PUTS_PER_TXN || b->alen >= PENDING_BYTES_MAX)) {
        /* the transaction is complete: committed on the LMDB thread while the caller fills
         * the other batch with the next one */
        struct lmdb_job j = {JOB_APPLY, b, w->applied, b->npend, true, false};
        rc = submit(w, &j, false, err);
        w->fill ^= 1;
        w->batches[w->fill].npend = 0;
        w->batches[w->fill].alen = 0;
        w->applied = 0;
    }
    if (rc && rc != AVA_EEXISTS)
        w->broken = true;
    return rc;
}

/* fsyncs a directory so the entries of the files in it are durable. */
static int sync_dir(const char *dir, char *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return ava_err(err, AVA_EIO, "cannot sync %s: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

/* Opens the bulk-written environment read-only with LMDB, which creates lock.mdb as its
 * writers do, and reads the last key back as a check of the tree's right edge. */
static int bulk_check(struct ava_lmdb_writer *w, char *err) {
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k = {0, NULL}, v = {0, NULL};
    int mrc = mdb_env_set_mapsize(w->env, w->mapsize);
    if (mrc == 0)
        mrc = mdb_env_open(w->env, w->dir, MDB_RDONLY, 0644);
    if (mrc == 0)
        mrc = mdb_txn_begin(w->env, NULL, MDB_RDONLY, &txn);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (mrc == 0)
        mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc == 0) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (mrc == MDB_NOTFOUND && w->last_klen == 0)
            mrc = 0;
        else if (mrc == 0 &&
                 (k.mv_size != w->last_klen || memcmp(k.mv_data, w->last_key, w->last_klen) != 0))
            mrc = MDB_CORRUPTED;
    }
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    return mrc ? lmdb_fail(w, mrc, "check of the written tree", err) : 0;
}

/* Closes a writer that is still bulk writing: the tree and metas out, then data.mdb synced
 * (on the I/O thread) while LMDB's check (which creates lock.mdb) and the directory's sync
 * run here; the set is durable once both are done. */
static int close_bulk(struct ava_lmdb_writer *w, int rc, char *err) {
    struct ava_lmdb_bulk *b = w->bulk;
    w->bulk = NULL;
    if (rc == 0)
        rc = ava_lmdb_bulk_finish(b, &w->mapsize, err);
    if (rc == 0) /* data.mdb's fsync on the I/O thread while LMDB checks it here */
        ava_lmdb_bulk_sync_start(b);
    if (rc == 0)
        rc = bulk_check(w, err);
    if (w->env)
        mdb_env_close(w->env);
    if (rc == 0)
        rc = sync_dir(w->dir, err);
    rc = ava_lmdb_bulk_free(b, true, rc, err);
    pthread_cond_destroy(&w->lt.cv);
    pthread_mutex_destroy(&w->lt.mu);
    free(w->dir);
    free(w);
    return rc;
}

int ava_lmdb_writer_close(struct ava_lmdb_writer *w, char *err) {
    if (!w)
        return 0;
    int rc = w->broken ? ava_err(err, AVA_EIO, "LMDB writer for %s failed earlier", w->dir) : 0;
    if (w->bulk)
        return close_bulk(w, rc, err);
    struct batch *b = &w->batches[w->fill];
    struct lmdb_job commit_job = {JOB_APPLY, b, w->applied, b->npend, true, false};
    struct lmdb_job abort_job = {JOB_ABORT, NULL, 0, 0, false, false};
    if (rc == 0 && w->lt.started)
        rc = submit(w, &commit_job, true, err);
    else if (rc == 0 && w->env_open) /* no thread took a transaction: the last one runs here */
        rc = run_job(w, &commit_job, err);
    if (w->lt.started) { /* it aborts a transaction left by a failure as it quits */
        pthread_mutex_lock(&w->lt.mu);
        w->lt.quit = true;
        pthread_cond_broadcast(&w->lt.cv);
        pthread_mutex_unlock(&w->lt.mu);
        pthread_join(w->lt.th, NULL);
    } else if (w->txn) {
        run_job(w, &abort_job, NULL);
    }
    if (rc == 0) {
        int mrc = mdb_env_sync(w->env, 1);
        if (mrc != 0)
            rc = lmdb_fail(w, mrc, "sync", err);
    }
    if (w->env)
        mdb_env_close(w->env);
    if (rc == 0)
        rc = sync_dir(w->dir, err);
    pthread_cond_destroy(&w->lt.cv);
    pthread_mutex_destroy(&w->lt.mu);
    for (int i = 0; i < 2; i++) {
        free(w->batches[i].arena);
        free(w->batches[i].pend);
    }
    free(w->dir);
    free(w);
    return rc;
}
