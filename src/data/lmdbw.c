/* lmdbw.c: Caffe Datum protobuf coding and the LMDB writer that grows its map on demand. */
#include "lmdbw.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Datum protobuf ---- */

/* protobuf wire types */
enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_FIXED32 = 5 };
/* Datum field numbers (caffe.proto) */
enum { F_CHANNELS = 1, F_HEIGHT = 2, F_WIDTH = 3, F_DATA = 4, F_LABEL = 5, F_FLOAT = 6, F_ENC = 7 };
/* Caffe reads a Datum with a limit of INT_MAX bytes; keep well inside it. */
#define DATUM_DATA_MAX ((size_t)INT32_MAX - 64)
#define VARINT_MAX_BYTES 10

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* protobuf writes an int32 as the varint of its 64-bit sign extension (10 bytes if < 0). */
static uint64_t int32_wire(int v) {
    return (uint64_t)(int64_t)v;
}

static uint8_t tag(int field, int wire_type) {
    return (uint8_t)(field << 3 | wire_type);
}

/* Refuses a raw datum whose shape does not describe exactly its bytes. */
static int check_raw_shape(const struct ava_datum *d, char *err) {
    if (d->channels <= 0 || d->height <= 0 || d->width <= 0)
        return ava_err(err, AVA_EINVALID, "raw datum with shape %dx%dx%d: dimensions must be > 0",
                       d->channels, d->height, d->width);
    uint64_t need = (uint64_t)d->channels * (uint64_t)d->height;
    if (need > DATUM_DATA_MAX || need * (uint64_t)d->width != d->len)
        return ava_err(err, AVA_EINVALID, "raw datum of shape %dx%dx%d does not hold %zu bytes",
                       d->channels, d->height, d->width, d->len);
    return 0;
}

/* Validates d and computes the size of its encoding. */
static int datum_check(const struct ava_datum *d, size_t *size, char *err) {
    if (d->len && !d->data)
        return ava_err(err, AVA_EINVALID, "datum without data");
    if (d->len > DATUM_DATA_MAX)
        return ava_err(err, AVA_ETOOLARGE, "a datum of %zu bytes is too large for Caffe", d->len);
    if (!d->encoded) {
        int rc = check_raw_shape(d, err);
        if (rc)
            return rc;
    }
    size_t n = 1 + varint_len(d->len) + d->len + 1 + varint_len(int32_wire(d->label)) + 2;
    if (!d->encoded)
        n += 3 + varint_len(int32_wire(d->channels)) + varint_len(int32_wire(d->height)) +
             varint_len(int32_wire(d->width));
    *size = n;
    return 0;
}

/* Writes the encoding of a checked datum at p. Field order and presence follow what
 * protobuf's C++ serialiser emits for the Datum that convert_imageset fills: raw (CVMatToDatum
 * + set_label) has channels, height, width, data, label and encoded = false, all explicitly
 * set; encoded (ReadFileToDatum) has data, label and encoded = true. Set proto2 fields are
 * written even when they equal the default. */
static void datum_write(const struct ava_datum *d, uint8_t *p) {
    if (!d->encoded) {
        *p++ = tag(F_CHANNELS, WT_VARINT);
        p = put_varint(p, int32_wire(d->channels));
        *p++ = tag(F_HEIGHT, WT_VARINT);
        p = put_varint(p, int32_wire(d->height));
        *p++ = tag(F_WIDTH, WT_VARINT);
        p = put_varint(p, int32_wire(d->width));
    }
    *p++ = tag(F_DATA, WT_LEN);
    p = put_varint(p, d->len);
    if (d->len)
        memcpy(p, d->data, d->len);
    p += d->len;
    *p++ = tag(F_LABEL, WT_VARINT);
    p = put_varint(p, int32_wire(d->label));
    *p++ = tag(F_ENC, WT_VARINT);
    *p = d->encoded ? 1 : 0;
}

int ava_datum_encode(const struct ava_datum *d, uint8_t **out, size_t *len, char *err) {
    *out = NULL;
    *len = 0;
    size_t n;
    int rc = datum_check(d, &n, err);
    if (rc)
        return rc;
    *out = ava_xmalloc(n);
    datum_write(d, *out);
    *len = n;
    return 0;
}

/* Reads a varint at *p (< end). Returns 0, or AVA_EINVALID when truncated or over 10 bytes. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v, char *err) {
    uint64_t x = 0;
    const uint8_t *q = *p;
    for (int i = 0; i < VARINT_MAX_BYTES; i++) {
        if (q >= end)
            return ava_err(err, AVA_EINVALID, "malformed Datum: truncated varint");
        uint8_t b = *q++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *p = q;
            *v = x;
            return 0;
        }
    }
    return ava_err(err, AVA_EINVALID, "malformed Datum: varint longer than 10 bytes");
}

/* The wire type each Datum field must have; -1 for fields Caffe's Datum does not have. */
static int expected_wire_type(uint64_t field) {
    switch (field) {
    case F_CHANNELS:
    case F_HEIGHT:
    case F_WIDTH:
    case F_LABEL:
    case F_ENC:
        return WT_VARINT;
    case F_DATA:
        return WT_LEN;
    case F_FLOAT:
        return WT_FIXED32; /* or packed (WT_LEN); both accepted */
    default:
        return -1;
    }
}

/* Skips or reads the value of one field whose key has been read. *v receives a varint value,
 * or the length of a length-delimited one (then *p stays at its first byte). */
static int read_value(const uint8_t **p, const uint8_t *end, int wt, uint64_t *v, char *err) {
    size_t skip;
    switch (wt) {
    case WT_VARINT:
        return get_varint(p, end, v, err);
    case WT_LEN: {
        int rc = get_varint(p, end, v, err);
        if (rc)
            return rc;
        if (*v > (uint64_t)(end - *p))
            return ava_err(err, AVA_EINVALID,
                           "malformed Datum: a field of %llu bytes runs past the end (%td left)",
                           (unsigned long long)*v, end - *p);
        return 0;
    }
    case WT_FIXED64:
        skip = 8;
        break;
    case WT_FIXED32:
        skip = 4;
        break;
    case WT_SGROUP:
    case WT_EGROUP:
        return ava_err(err, AVA_EINVALID,
                       "malformed Datum: groups (wire type %d) are not used "
                       "by Caffe's Datum",
                       wt);
    default:
        return ava_err(err, AVA_EINVALID, "malformed Datum: unknown wire type %d", wt);
    }
    if ((size_t)(end - *p) < skip)
        return ava_err(err, AVA_EINVALID, "malformed Datum: truncated fixed-size field");
    *p += skip;
    return 0;
}

/* Stores one field's value in d (fields Caffe does not define are skipped, as protobuf does). */
static void store_field(struct ava_datum *d, uint64_t field, int wt, uint64_t v,
                        const uint8_t *at) {
    switch (field) {
    case F_CHANNELS:
        d->channels = (int)(int32_t)(uint32_t)v; /* protobuf keeps the low 32 bits */
        break;
    case F_HEIGHT:
        d->height = (int)(int32_t)(uint32_t)v;
        break;
    case F_WIDTH:
        d->width = (int)(int32_t)(uint32_t)v;
        break;
    case F_LABEL:
        d->label = (int)(int32_t)(uint32_t)v;
        break;
    case F_ENC:
        d->encoded = v != 0;
        break;
    case F_DATA:
        d->data = at;
        d->len = (size_t)v;
        break;
    default:
        (void)wt;
        break;
    }
}

int ava_datum_decode(const uint8_t *buf, size_t len, struct ava_datum *d, char *err) {
    memset(d, 0, sizeof *d);
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        uint64_t key, v = 0;
        int rc = get_varint(&p, end, &key, err);
        if (rc)
            return rc;
        uint64_t field = key >> 3;
        int wt = (int)(key & 7);
        if (field == 0 || field > INT32_MAX >> 2)
            return ava_err(err, AVA_EINVALID, "malformed Datum: bad field number %llu",
                           (unsigned long long)field);
        int want = expected_wire_type(field);
        if (want >= 0 && wt != want && !(field == F_FLOAT && wt == WT_LEN))
            return ava_err(err, AVA_EINVALID,
                           "malformed Datum: field %llu has wire type %d, expected %d",
                           (unsigned long long)field, wt, want);
        if ((rc = read_value(&p, end, wt, &v, err)))
            return rc;
        store_field(d, field, wt, v, p);
        if (wt == WT_LEN)
            p += v;
    }
    return 0;
}

/* ---- LMDB writer ---- */

#define PUTS_PER_TXN 1000                    /* convert_imageset commits every 1000 puts */
#define PENDING_BYTES_MAX ((size_t)64 << 20) /* ...or earlier, to bound the redo copy */
#define MAP_MIN ((size_t)64 << 10)
#define MAP_MAX ((size_t)1 << 40)
#define KEY_MAX 1100
#define KICK_BYTES ((size_t)4 << 20) /* data.mdb's writeback is started every 4 MiB committed */

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
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(w->env, w->mapsize);
    /* MDB_NOSYNC: the set is published only after close, which syncs once */
    if (mrc == 0)
        mrc = mdb_env_open(w->env, dir, MDB_NOSYNC, 0644);
    if (mrc != 0) {
        rc = lmdb_fail(w, mrc, "open", err);
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
        if (w->mapsize >= MAP_MAX)
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
    datum_write(d, b->arena + b->alen + klen);
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
    int rc = datum_check(d, &vlen, err);
    if (rc)
        return rc;
    struct batch *b = &w->batches[w->fill];
    bool append = key_after_last(w, key, (size_t)klen);
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

int ava_lmdb_writer_close(struct ava_lmdb_writer *w, char *err) {
    if (!w)
        return 0;
    int rc = w->broken ? ava_err(err, AVA_EIO, "LMDB writer for %s failed earlier", w->dir) : 0;
    struct batch *b = &w->batches[w->fill];
    struct lmdb_job commit_job = {JOB_APPLY, b, w->applied, b->npend, true, false};
    struct lmdb_job abort_job = {JOB_ABORT, NULL, 0, 0, false, false};
    if (rc == 0 && w->lt.started)
        rc = submit(w, &commit_job, true, err);
    else if (rc == 0 && w->env) /* no thread ever took a transaction: the last one runs here */
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
