/* lmdbw.c: Caffe Datum protobuf coding and the LMDB writer: data.mdb laid out directly while
 * keys come in order, LMDB transactions (a map grown on demand) after an out-of-order key. */
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
#define DATUM_HEAD_MAX (4 + 4 * VARINT_MAX_BYTES) /* shape fields and the data's key and length */
#define DATUM_TAIL_MAX (3 + VARINT_MAX_BYTES)     /* label and encoded */

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

/* Writes the encoding of a checked datum up to its data bytes at p (at most DATUM_HEAD_MAX
 * bytes) and returns its length. Field order and presence follow what protobuf's C++
 * serialiser emits for the Datum that convert_imageset fills: raw (CVMatToDatum + set_label)
 * has channels, height, width, data, label and encoded = false, all explicitly set; encoded
 * (ReadFileToDatum) has data, label and encoded = true. Set proto2 fields are written even
 * when they equal the default. */
static size_t datum_write_head(const struct ava_datum *d, uint8_t *p) {
    uint8_t *start = p;
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
    return (size_t)(p - start);
}

/* Writes the fields after the data bytes (label, encoded) at p; returns their length. */
static size_t datum_write_tail(const struct ava_datum *d, uint8_t *p) {
    uint8_t *start = p;
    *p++ = tag(F_LABEL, WT_VARINT);
    p = put_varint(p, int32_wire(d->label));
    *p++ = tag(F_ENC, WT_VARINT);
    *p++ = d->encoded ? 1 : 0;
    return (size_t)(p - start);
}

/* Writes the whole encoding of a checked datum at p. */
static void datum_write(const struct ava_datum *d, uint8_t *p) {
    p += datum_write_head(d, p);
    if (d->len)
        memcpy(p, d->data, d->len);
    datum_write_tail(d, p + d->len);
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

/* ---- bulk writing: data.mdb's pages written directly ----
 *
 * While every key sorts after the ones before it (always so for a formatted set, whose keys
 * start with the sample's position), the writer lays out LMDB's B+tree itself, as one
 * transaction of MDB_APPEND puts would leave it: leaves filled in key order, each datum
 * encoded straight into its leaf (or its overflow pages), branch pages above them, and the
 * two meta pages written last. The pages stream out through two buffers that a background
 * thread writes while the caller fills the other, with no transaction, no page copy and no
 * commit on the way. LMDB itself reads the result (and writes on after it, should an
 * out-of-order key come: see leave_bulk). The layout follows LMDB 0.9's mdb.c: page header
 * (pgno, pad, flags, lower/upper or the overflow page count), node offsets from the header
 * on, nodes from the page's end down (lo/hi data size or child page, flags, key size, key,
 * data), node sizes rounded to even, F_BIGDATA data on overflow pages when a node would pass
 * the page's node limit, an empty key in a branch page's first node, and at least two nodes
 * in every branch page (LMDB asserts it). */

#define PAGEHDRSZ (sizeof(size_t) + 8) /* pgno, pad, flags, lower and upper */
#define NODESIZE 8                     /* lo, hi, flags, ksize */
#define PG_LOWER (sizeof(size_t) + 4)  /* where lower (or an overflow run's page count) lies */
#define PG_UPPER (sizeof(size_t) + 6)
#define P_BRANCH 0x01
#define P_LEAF 0x02
#define P_OVERFLOW 0x04
#define P_META 0x08
#define F_BIGDATA 0x01
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_MINKEYS 2
#define P_INVALID (~(size_t)0)
#define NUM_METAS 2
#define BULK_PAGE_MAX 32768         /* larger pages do not fit LMDB's 16-bit offsets as laid here */
#define BULK_BUF ((size_t)1 << 20)  /* each of the two stream buffers */
#define BULK_KICK ((size_t)4 << 20) /* writeback is started every 4 MiB written */
#define MAX_LEVELS 32
#define EVEN(n) (((n) + 1) & ~(size_t)1)

/* MDB_db and MDB_meta as mdb.c lays them out (native byte order, no padding). */
struct disk_db {
    uint32_t pad; /* the page size in the free DB's record */
    uint16_t flags, depth;
    size_t branch_pages, leaf_pages, overflow_pages, entries, root;
};
struct disk_meta {
    uint32_t magic, version;
    void *address;
    size_t mapsize;
    struct disk_db dbs[2]; /* free DB, main DB */
    size_t last_pg, txnid;
};
_Static_assert(sizeof(struct disk_meta) ==
                   8 + sizeof(void *) + sizeof(size_t) * 3 + 2 * (8 + 5 * sizeof(size_t)),
               "MDB_meta has no padding");

/* One node of a branch page being gathered: the child page and its first key. */
struct bent {
    size_t pgno, koff;
    uint16_t klen;
};

/* A branch page's nodes, kept until the page is written; used = bytes of nodes and offsets. */
struct bpage {
    struct bent *e;
    size_t n, cap;
    uint8_t *keys;
    size_t klen, kcap, used;
};

/* One level of branch pages: the page being filled, and the full one before it, held back
 * so that the last page of the level can take a node from it if it would hold only one. */
struct blevel {
    struct bpage pg[2];
    int cur;
    bool has_prev;
};

/* The background writer of the stream buffers (as recordio.c's). */
struct bulk_io {
    pthread_t th;
    bool started;
    bool inline_only; /* it could not start: the caller writes (only the caller reads this) */
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* a job handed over, done, or quit */
    const uint8_t *job; /* being written; NULL when idle */
    size_t job_len;
    off_t job_off;
    bool job_fsync; /* the job is the closing fsync (job points at the bulk writer) */
    bool synced;    /* that fsync was handed over (its result lands in error) */
    bool quit;
    int error; /* errno of the first failed write */
};

/* The bulk writer of one data.mdb: the stream buffers, the open leaf, the branch levels and
 * the counts that go into the meta page. */
struct bulk {
    int fd;
    char *path; /* data.mdb, for messages */
    size_t psize, nodemax;
    uint8_t *buf, *spare, *scratch, *zeros;
    size_t bufpages, nbuf, buf_pg; /* pages in buf, which start at page buf_pg of the file */
    uint8_t *leaf;                 /* the open leaf, or NULL */
    bool leaf_in_buf;              /* ...as buf's last page (its page number provisional) */
    struct blevel lv[MAX_LEVELS];  /* lv[1] holds the leaves' nodes; lv[0] is unused */
    int nlv;
    size_t branch_pages, leaf_pages, overflow_pages, entries, root;
    uint16_t depth;
    off_t written, kicked; /* bytes written through write_at, and how many of them kicked */
    bool broken;
    struct bulk_io io;
};

/* A 16-bit field of a page (native byte order, possibly unaligned). */
static uint16_t get16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* Stores a 16-bit field of a page. */
static void put16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}

/* Writes a node's header: the low and high 16 bits of its data size or child page (mn_lo,
 * mn_hi, whose order in MDB_node follows the host's byte order), flags and key size. */
static void node_head(uint8_t *node, uint32_t lohi, uint16_t flags, uint16_t ksize) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    put16(node, (uint16_t)(lohi >> 16));
    put16(node + 2, (uint16_t)(lohi & 0xffff));
#else
    put16(node, (uint16_t)(lohi & 0xffff));
    put16(node + 2, (uint16_t)(lohi >> 16));
#endif
    put16(node + 4, flags);
    put16(node + 6, ksize);
}

/* Writes a page header: number, pad 0, flags, lower and upper of an empty page. */
static void page_init(const struct bulk *b, uint8_t *p, size_t pgno, uint16_t flags) {
    memcpy(p, &pgno, sizeof pgno);
    put16(p + sizeof(size_t), 0);
    put16(p + sizeof(size_t) + 2, flags);
    put16(p + PG_LOWER, (uint16_t)PAGEHDRSZ);
    put16(p + PG_UPPER, (uint16_t)b->psize);
}

/* Zeroes a finished page's free space (buffers are reused: no stale bytes in the file). */
static void page_seal(uint8_t *p) {
    uint16_t lower = get16(p + PG_LOWER), upper = get16(p + PG_UPPER);
    memset(p + lower, 0, (size_t)(upper - lower));
}

/* pwrite(2)s n bytes at off, retrying short writes, and starts the writeback of what has
 * piled up every BULK_KICK bytes so that the closing fsync finds little left. Returns 0 or
 * an errno. Called by one thread at a time (the I/O thread, or the caller when it is idle). */
static int write_at(struct bulk *b, const uint8_t *p, size_t n, off_t off) {
    while (n > 0) {
        ssize_t k = pwrite(b->fd, p, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno ? errno : EIO;
        p += k;
        n -= (size_t)k;
        off += k;
        b->written += k;
    }
    if ((size_t)(b->written - b->kicked) >= BULK_KICK) {
        sync_file_range(b->fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* advisory: errors show at fsync */
        b->kicked = b->written;
    }
    return 0;
}

/* fsyncs data.mdb; returns 0 or an errno. */
static int sync_file(const struct bulk *b) {
    return fsync(b->fd) < 0 ? (errno ? errno : EIO) : 0;
}

/* The I/O thread: writes each buffer handed over (or syncs) until told to quit. */
static void *bulk_io_main(void *arg) {
    struct bulk *b = arg;
    struct bulk_io *io = &b->io;
    pthread_mutex_lock(&io->mu);
    for (;;) {
        while (!io->job && !io->quit)
            pthread_cond_wait(&io->cv, &io->mu);
        if (!io->job)
            break;
        int e = io->error;
        const uint8_t *p = io->job;
        size_t n = io->job_len;
        off_t off = io->job_off;
        bool sync = io->job_fsync;
        pthread_mutex_unlock(&io->mu);
        if (e == 0) /* after a failure nothing more is written */
            e = sync ? sync_file(b) : write_at(b, p, n, off);
        pthread_mutex_lock(&io->mu);
        if (e && !io->error)
            io->error = e;
        io->job = NULL;
        pthread_cond_broadcast(&io->cv);
    }
    pthread_mutex_unlock(&io->mu);
    return NULL;
}

/* Waits until the I/O thread is idle; returns its first error (an errno) or 0. */
static int bulk_io_wait(struct bulk *b) {
    if (!b->io.started)
        return b->io.error;
    pthread_mutex_lock(&b->io.mu);
    while (b->io.job)
        pthread_cond_wait(&b->io.cv, &b->io.mu);
    int e = b->io.error;
    pthread_mutex_unlock(&b->io.mu);
    return e;
}

/* A write failure as AVA_EIO; the bulk writer refuses everything after it. */
static int bulk_fail(struct bulk *b, int e, char *err) {
    b->broken = true;
    return ava_err(err, AVA_EIO, "cannot write %s: %s", b->path, strerror(e));
}

/* Hands n bytes at p (to land at off) to the I/O thread once it is done with the previous
 * ones, starting it on first use with every signal blocked; writes them here when it cannot
 * start. */
static int bulk_submit(struct bulk *b, const uint8_t *p, size_t n, off_t off, char *err) {
    if (!b->io.started && !b->io.inline_only) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        b->io.started = pthread_create(&b->io.th, NULL, bulk_io_main, b) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        b->io.inline_only = !b->io.started; /* from now on the caller writes */
    }
    int e;
    if (b->io.started) {
        pthread_mutex_lock(&b->io.mu);
        while (b->io.job)
            pthread_cond_wait(&b->io.cv, &b->io.mu);
        e = b->io.error;
        if (e == 0) {
            b->io.job = p;
            b->io.job_len = n;
            b->io.job_off = off;
            b->io.job_fsync = false;
            pthread_cond_broadcast(&b->io.cv);
        }
        pthread_mutex_unlock(&b->io.mu);
    } else {
        e = write_at(b, p, n, off);
    }
    return e ? bulk_fail(b, e, err) : 0;
}

/* Hands the buffered pages to the I/O thread and switches buffers; an open leaf (the last
 * page, not finished) moves to the start of the other buffer instead. */
static int bulk_flush(struct bulk *b, char *err) {
    size_t k = b->nbuf - (b->leaf_in_buf ? 1 : 0);
    if (k == 0)
        return 0;
    int rc = bulk_submit(b, b->buf, k * b->psize, (off_t)(b->buf_pg * b->psize), err);
    if (rc)
        return rc;
    uint8_t *full = b->buf;
    b->buf = b->spare; /* free: the I/O thread took the new job only after the last one */
    b->spare = full;
    if (b->leaf_in_buf) {
        memcpy(b->buf, full + k * b->psize, b->psize);
        b->leaf = b->buf;
    }
    b->buf_pg += k;
    b->nbuf -= k;
    return 0;
}

/* Takes the next n pages of the file in the buffer (n <= half the buffer); never while an
 * open leaf is the buffer's last page, which must stay last. */
static int stream_pages(struct bulk *b, size_t n, size_t *pgno, uint8_t **p, char *err) {
    if (b->bufpages - b->nbuf < n) {
        int rc = bulk_flush(b, err);
        if (rc)
            return rc;
    }
    *pgno = b->buf_pg + b->nbuf;
    *p = b->buf + b->nbuf * b->psize;
    b->nbuf += n;
    return 0;
}

/* Appends a node for child pgno with key to the bpage. */
static void bpage_add(struct bpage *pg, size_t pgno, const uint8_t *key, uint16_t klen) {
    if (pg->n == pg->cap) {
        pg->cap = pg->cap ? pg->cap * 2 : 64;
        pg->e = ava_xrealloc(pg->e, pg->cap * sizeof *pg->e);
    }
    if (pg->kcap - pg->klen < klen) {
        pg->kcap = pg->kcap ? pg->kcap * 2 : 4096;
        while (pg->kcap - pg->klen < klen)
            pg->kcap *= 2;
        pg->keys = ava_xrealloc(pg->keys, pg->kcap);
    }
    pg->e[pg->n++] = (struct bent){pgno, pg->klen, klen};
    memcpy(pg->keys + pg->klen, key, klen);
    pg->klen += klen;
}

static int level_push(struct bulk *b, int L, size_t pgno, const uint8_t *key, uint16_t klen,
                      char *err);

/* Writes a branch page of level L with the nodes of pg into the stream; its first key goes
 * up to level L + 1, or, for the root, its page number into b->root. */
static int branch_emit(struct bulk *b, int L, const struct bpage *pg, bool root, char *err) {
    size_t pgno;
    uint8_t *p;
    int rc = stream_pages(b, 1, &pgno, &p, err);
    if (rc)
        return rc;
    page_init(b, p, pgno, P_BRANCH);
    size_t lower = PAGEHDRSZ, upper = b->psize;
    for (size_t i = 0; i < pg->n; i++) {
        const struct bent *e = &pg->e[i];
        uint16_t ks = i ? e->klen : 0; /* LMDB ignores (and stores no) first key */
        uint64_t child = e->pgno;
        upper -= EVEN(NODESIZE + ks);
        put16(p + lower, (uint16_t)upper);
        lower += 2;
        uint8_t *node = p + upper;
        node_head(node, (uint32_t)child, (uint16_t)(child >> 32 & 0xffff), ks); /* 48 bits */
        memcpy(node + NODESIZE, pg->keys + e->koff, ks);
    }
    put16(p + PG_LOWER, (uint16_t)lower);
    put16(p + PG_UPPER, (uint16_t)upper);
    page_seal(p);
    b->branch_pages++;
    if (root) {
        b->root = pgno;
        return 0;
    }
    return level_push(b, L + 1, pgno, pg->keys + pg->e[0].koff, pg->e[0].klen, err);
}

/* Adds the node of a finished page (pgno, its first key) to branch level L, writing the
 * level's held-back page when the current one is full. */
static int level_push(struct bulk *b, int L, size_t pgno, const uint8_t *key, uint16_t klen,
                      char *err) {
    if (L >= MAX_LEVELS)
        return ava_err(err, AVA_ETOOLARGE, "LMDB tree of %s too deep", b->path);
    if (L >= b->nlv)
        b->nlv = L + 1;
    struct blevel *lv = &b->lv[L];
    struct bpage *cur = &lv->pg[lv->cur];
    size_t need = cur->n == 0 ? NODESIZE + 2 : EVEN(NODESIZE + klen) + 2;
    if (cur->n > 0 && cur->used + need > b->psize - PAGEHDRSZ) {
        if (lv->has_prev) {
            int rc = branch_emit(b, L, &lv->pg[lv->cur ^ 1], false, err);
            if (rc)
                return rc;
        }
        lv->cur ^= 1;
        lv->has_prev = true;
        cur = &lv->pg[lv->cur];
        cur->n = cur->klen = cur->used = 0;
        need = NODESIZE + 2;
    }
    bpage_add(cur, pgno, key, klen);
    cur->used += need;
    return 0;
}

/* Opens a leaf as the buffer's last page. */
static int leaf_open(struct bulk *b, char *err) {
    size_t pgno;
    int rc = stream_pages(b, 1, &pgno, &b->leaf, err);
    if (rc)
        return rc;
    b->leaf_in_buf = true;
    page_init(b, b->leaf, pgno, P_LEAF);
    return 0;
}

/* Moves the open leaf out of the buffer (overflow pages are about to follow in the stream:
 * the leaf takes its page number once finished, after them). */
static void leaf_detach(struct bulk *b) {
    memcpy(b->scratch, b->leaf, b->psize);
    b->leaf = b->scratch;
    b->leaf_in_buf = false;
    b->nbuf--;
}

/* Finishes the open leaf: its page number (its place in the buffer, or the stream's next
 * page when it was detached) and its first key go to branch level 1. */
static int leaf_close(struct bulk *b, char *err) {
    uint8_t *p = b->leaf;
    size_t pgno;
    if (b->leaf_in_buf) {
        pgno = b->buf_pg + b->nbuf - 1;
    } else {
        int rc = stream_pages(b, 1, &pgno, &p, err);
        if (rc)
            return rc;
        memcpy(p, b->scratch, b->psize);
    }
    b->leaf = NULL;
    b->leaf_in_buf = false;
    memcpy(p, &pgno, sizeof pgno);
    page_seal(p);
    b->leaf_pages++;
    const uint8_t *node = p + get16(p + PAGEHDRSZ);
    return level_push(b, 1, pgno, node + NODESIZE, get16(node + 6), err);
}

/* Writes a datum of vlen bytes as an overflow run; *pgno gets its first page. Runs up to half
 * a buffer go through the buffer; longer ones are written here, from the datum's bytes. */
static int overflow_put(struct bulk *b, const struct ava_datum *d, size_t vlen, size_t *pgno,
                        char *err) {
    size_t npages = (PAGEHDRSZ - 1 + vlen) / b->psize + 1, span = npages * b->psize;
    uint8_t *p;
    int rc;
    b->overflow_pages += npages;
    if (npages <= b->bufpages / 2) {
        if ((rc = stream_pages(b, npages, pgno, &p, err)))
            return rc;
        page_init(b, p, *pgno, P_OVERFLOW);
        uint32_t n32 = (uint32_t)npages;
        memcpy(p + PG_LOWER, &n32, 4);
        datum_write(d, p + PAGEHDRSZ);
        memset(p + PAGEHDRSZ + vlen, 0, span - PAGEHDRSZ - vlen);
        return 0;
    }
    if ((rc = bulk_flush(b, err))) /* the leaf is detached: the buffer empties */
        return rc;
    int e = bulk_io_wait(b); /* written here, one writer at a time */
    if (e)
        return bulk_fail(b, e, err);
    *pgno = b->buf_pg;
    b->buf_pg += npages;
    uint8_t head[PAGEHDRSZ + DATUM_HEAD_MAX];
    page_init(b, head, *pgno, P_OVERFLOW);
    uint32_t n32 = (uint32_t)npages;
    memcpy(head + PG_LOWER, &n32, 4);
    size_t hlen = PAGEHDRSZ + datum_write_head(d, head + PAGEHDRSZ);
    size_t tlen = vlen - (hlen - PAGEHDRSZ) - d->len;
    off_t off = (off_t)(*pgno * b->psize);
    memset(b->zeros, 0, DATUM_TAIL_MAX);
    datum_write_tail(d, b->zeros);
    if ((e = write_at(b, head, hlen, off)) == 0 &&
        (e = write_at(b, d->data, d->len, off + (off_t)hlen)) == 0)
        e = write_at(b, b->zeros, span - hlen - d->len, off + (off_t)(hlen + d->len));
    memset(b->zeros, 0, tlen);
    return e ? bulk_fail(b, e, err) : 0;
}

/* Appends key -> datum (vlen bytes encoded, key after every earlier one) to the tree. */
static int bulk_put(struct bulk *b, const char *key, size_t klen, const struct ava_datum *d,
                    size_t vlen, char *err) {
    if (b->broken)
        return ava_err(err, AVA_EIO, "LMDB writer for %s failed earlier", b->path);
    bool big = NODESIZE + klen + vlen > b->nodemax;
    size_t raw = NODESIZE + klen + (big ? sizeof(size_t) : vlen), nsize = EVEN(raw);
    int rc = 0;
    if (b->leaf && nsize + 2 > (size_t)(get16(b->leaf + PG_UPPER) - get16(b->leaf + PG_LOWER)))
        rc = leaf_close(b, err);
    if (rc == 0 && !b->leaf)
        rc = leaf_open(b, err);
    size_t opg = 0;
    if (rc == 0 && big) {
        if (b->leaf_in_buf)
            leaf_detach(b);
        rc = overflow_put(b, d, vlen, &opg, err);
    }
    if (rc)
        return rc;
    uint8_t *p = b->leaf;
    size_t lower = get16(p + PG_LOWER), upper = get16(p + PG_UPPER) - nsize;
    put16(p + lower, (uint16_t)upper);
    put16(p + PG_LOWER, (uint16_t)(lower + 2));
    put16(p + PG_UPPER, (uint16_t)upper);
    uint8_t *node = p + upper;
    node_head(node, (uint32_t)vlen, big ? F_BIGDATA : 0, (uint16_t)klen);
    memcpy(node + NODESIZE, key, klen);
    if (big)
        memcpy(node + NODESIZE + klen, &opg, sizeof opg);
    else
        datum_write(d, node + NODESIZE + klen);
    if (nsize > raw)
        node[raw] = 0;
    b->entries++;
    if ((b->buf_pg + b->nbuf + 1) * b->psize > MAP_MAX) {
        b->broken = true;
        return ava_err(err, AVA_ETOOLARGE, "LMDB map of %s would grow past 1 TiB", b->path);
    }
    return 0;
}

/* Moves the last node of prev to the front of cur (which holds one node). */
static void bpage_borrow(struct bpage *prev, struct bpage *cur) {
    const struct bent *e = &prev->e[--prev->n];
    bpage_add(cur, e->pgno, prev->keys + e->koff, e->klen); /* now cur->e[1] */
    struct bent t = cur->e[0];
    cur->e[0] = cur->e[1];
    cur->e[1] = t;
}

/* Finishes the tree: the open leaf, then each branch level's last pages from the bottom up
 * (the last page of a level takes a node from the one before when it would hold one), the
 * top one the root. A level of one node leaves that node (a single leaf) the root. */
static int bulk_finish_tree(struct bulk *b, char *err) {
    int rc = b->leaf ? leaf_close(b, err) : 0;
    b->root = P_INVALID;
    b->depth = 0;
    for (int L = 1; rc == 0 && L < b->nlv; L++) {
        struct blevel *lv = &b->lv[L];
        struct bpage *cur = &lv->pg[lv->cur], *prev = &lv->pg[lv->cur ^ 1];
        if (!lv->has_prev) { /* the top level: one page */
            if (cur->n == 1) {
                b->root = cur->e[0].pgno;
                b->depth = (uint16_t)L;
            } else {
                rc = branch_emit(b, L, cur, true, err);
                b->depth = (uint16_t)(L + 1);
            }
            break;
        }
        if (cur->n == 1)
            bpage_borrow(prev, cur);
        rc = branch_emit(b, L, prev, false, err);
        if (rc == 0)
            rc = branch_emit(b, L, cur, false, err);
    }
    return rc;
}

/* Writes the two meta pages: page 0 as LMDB initialises it (transaction 0, empty), page 1
 * as the first commit leaves it (transaction 1, the tree), both with map size mapsize. */
static int write_metas(struct bulk *b, size_t mapsize, char *err) {
    uint8_t *pages = ava_xcalloc(NUM_METAS, b->psize);
    struct disk_meta m;
    memset(&m, 0, sizeof m);
    m.magic = LMDB_MAGIC;
    m.version = LMDB_DATA_VERSION;
    m.mapsize = mapsize;
    m.dbs[0].pad = (uint32_t)b->psize;
    m.dbs[0].flags = MDB_INTEGERKEY;
    m.dbs[0].root = P_INVALID;
    m.dbs[1].root = P_INVALID;
    m.last_pg = NUM_METAS - 1;
    page_init(b, pages, 0, P_META);
    memcpy(pages + PAGEHDRSZ, &m, sizeof m);
    m.dbs[1] = (struct disk_db){
        0, 0, b->depth, b->branch_pages, b->leaf_pages, b->overflow_pages, b->entries, b->root};
    m.last_pg = b->buf_pg + b->nbuf - 1;
    m.txnid = 1;
    page_init(b, pages + b->psize, 1, P_META);
    memcpy(pages + b->psize + PAGEHDRSZ, &m, sizeof m);
    put16(pages + PG_LOWER, 0); /* meta pages keep lower/upper at 0, as LMDB's calloc leaves */
    put16(pages + PG_UPPER, 0);
    put16(pages + b->psize + PG_LOWER, 0);
    put16(pages + b->psize + PG_UPPER, 0);
    int e = write_at(b, pages, NUM_METAS * b->psize, 0);
    free(pages);
    return e ? bulk_fail(b, e, err) : 0;
}

/* Finishes the tree, writes every page out, then the metas (the map size doubled from
 * *mapsize until it holds the file, like LMDB's growth; *mapsize gets it). */
static int bulk_finish(struct bulk *b, size_t *mapsize, char *err) {
    if (b->broken)
        return ava_err(err, AVA_EIO, "LMDB writer for %s failed earlier", b->path);
    int rc = bulk_finish_tree(b, err);
    if (rc == 0)
        rc = bulk_flush(b, err);
    int e = bulk_io_wait(b);
    if (rc == 0 && e)
        rc = bulk_fail(b, e, err);
    if (rc)
        return rc;
    size_t bytes = (b->buf_pg + b->nbuf) * b->psize;
    while (*mapsize < bytes && *mapsize < MAP_MAX)
        *mapsize *= 2;
    return write_metas(b, *mapsize, err);
}

/* Creates data.mdb in dir for bulk writing; NULL when LMDB's pages are too large for it. */
static struct bulk *bulk_open(const char *dir, char *err, int *rc) {
    *rc = 0;
    long ps = sysconf(_SC_PAGESIZE); /* what LMDB uses for a new environment */
    if (ps < 4096 || ps > BULK_PAGE_MAX)
        return NULL;
    struct bulk *b = ava_xcalloc(1, sizeof *b);
    b->psize = (size_t)ps;
    b->nodemax = (((b->psize - PAGEHDRSZ) / LMDB_MINKEYS) & ~(size_t)1) - sizeof(uint16_t);
    b->bufpages = BULK_BUF / b->psize;
    b->buf_pg = NUM_METAS;
    size_t plen = strlen(dir) + sizeof "/data.mdb";
    b->path = ava_xmalloc(plen);
    snprintf(b->path, plen, "%s/data.mdb", dir);
    b->fd = open(b->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (b->fd < 0) {
        *rc = ava_err(err, AVA_EIO, "cannot create %s: %s", b->path, strerror(errno));
        free(b->path);
        free(b);
        return NULL;
    }
    b->buf = ava_xmalloc(BULK_BUF);
    b->spare = ava_xmalloc(BULK_BUF);
    b->scratch = ava_xmalloc(b->psize);
    b->zeros = ava_xcalloc(1, b->psize + DATUM_TAIL_MAX);
    pthread_mutex_init(&b->io.mu, NULL);
    pthread_cond_init(&b->io.cv, NULL);
    return b;
}

/* Starts the fsync of data.mdb on the I/O thread (all is written), so that the caller's
 * last steps overlap it; bulk_free(sync) waits for it. Without the thread it runs there. */
static void bulk_sync_start(struct bulk *b) {
    if (!b->io.started)
        return;
    pthread_mutex_lock(&b->io.mu);
    while (b->io.job)
        pthread_cond_wait(&b->io.cv, &b->io.mu);
    if (b->io.error == 0) {
        b->io.job = (const uint8_t *)b;
        b->io.job_fsync = true;
        b->io.synced = true;
        pthread_cond_broadcast(&b->io.cv);
    }
    pthread_mutex_unlock(&b->io.mu);
}

/* Stops the I/O thread, closes data.mdb (fsynced first when sync, unless the I/O thread did
 * it) and frees b; returns rc or the sync's failure. */
static int bulk_free(struct bulk *b, bool sync, int rc, char *err) {
    if (b->io.started) {
        bulk_io_wait(b); /* the job in flight, the fsync included */
        pthread_mutex_lock(&b->io.mu);
        b->io.quit = true;
        pthread_cond_broadcast(&b->io.cv);
        pthread_mutex_unlock(&b->io.mu);
        pthread_join(b->io.th, NULL);
    }
    int e = sync && rc == 0 ? (b->io.synced ? b->io.error : sync_file(b)) : 0;
    if (e)
        rc = ava_err(err, AVA_EIO, "cannot sync %s: %s", b->path, strerror(e));
    if (close(b->fd) < 0 && rc == 0)
        rc = ava_err(err, AVA_EIO, "cannot write %s: %s", b->path, strerror(errno));
    pthread_cond_destroy(&b->io.cv);
    pthread_mutex_destroy(&b->io.mu);
    for (int L = 0; L < MAX_LEVELS; L++)
        for (int k = 0; k < 2; k++) {
            free(b->lv[L].pg[k].e);
            free(b->lv[L].pg[k].keys);
        }
    free(b->buf);
    free(b->spare);
    free(b->scratch);
    free(b->zeros);
    free(b->path);
    free(b);
    return rc;
}

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
    struct bulk *bulk; /* while every key sorted last: pages written directly; else NULL */
    bool env_open;     /* LMDB has the environment open (after bulk writing, if any) */
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
        w->bulk = bulk_open(dir, err, &rc);
        if (!w->bulk && rc == 0) /* pages too large to lay out here: LMDB does it all */
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

/* Ends bulk writing at the first key that does not sort last (it may exist already): the
 * tree so far is finished as a valid environment, which LMDB opens to go on with
 * transactions. */
static int leave_bulk(struct ava_lmdb_writer *w, char *err) {
    struct bulk *b = w->bulk;
    w->bulk = NULL;
    int rc = bulk_finish(b, &w->mapsize, err);
    rc = bulk_free(b, false, rc, err);
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
    int rc = datum_check(d, &vlen, err);
    if (rc)
        return rc;
    bool append = key_after_last(w, key, (size_t)klen);
    if (w->bulk && append) {
        if ((rc = bulk_put(w->bulk, key, (size_t)klen, d, vlen, err)) != 0) {
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
    struct bulk *b = w->bulk;
    w->bulk = NULL;
    if (rc == 0)
        rc = bulk_finish(b, &w->mapsize, err);
    if (rc == 0) /* data.mdb's fsync on the I/O thread while LMDB checks it here */
        bulk_sync_start(b);
    if (rc == 0)
        rc = bulk_check(w, err);
    if (w->env)
        mdb_env_close(w->env);
    if (rc == 0)
        rc = sync_dir(w->dir, err);
    rc = bulk_free(b, true, rc, err);
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
