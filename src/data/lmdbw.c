/* lmdbw.c: Caffe Datum protobuf coding and the LMDB writer that grows its map on demand. */
#include "lmdbw.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
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

/* A put not yet committed: key then value, at `off` in the arena. */
struct pending {
    size_t off, klen, vlen;
    bool append; /* the key sorts after every key before it: MDB_APPEND fills pages fully */
};

struct ava_lmdb_writer {
    MDB_env *env;
    MDB_txn *txn; /* open while puts are pending */
    MDB_dbi dbi;
    char *dir;
    size_t mapsize;
    uint8_t *arena; /* the pending puts' bytes, to redo them after a map growth */
    size_t alen, acap;
    struct pending *pend;
    size_t npend, cap;
    char last_key[KEY_MAX]; /* the greatest key put so far */
    size_t last_klen;
    bool broken;
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
    if (mrc != 0) {
        mdb_txn_abort(w->txn);
        w->txn = NULL;
    }
    return mrc;
}

/* Puts pending entry i in the open transaction; returns LMDB's code. */
static int txn_put(struct ava_lmdb_writer *w, size_t i) {
    const struct pending *e = &w->pend[i];
    MDB_val k = {e->klen, w->arena + e->off};
    MDB_val v = {e->vlen, w->arena + e->off + e->klen};
    return mdb_put(w->txn, w->dbi, &k, &v, e->append ? MDB_APPEND : MDB_NOOVERWRITE);
}

/* After MDB_MAP_FULL: drops the transaction, doubles the map until every pending put fits in
 * a fresh transaction, and leaves that transaction open with them. */
static int grow_and_redo(struct ava_lmdb_writer *w, char *err) {
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
        for (size_t i = 0; i < w->npend && mrc == 0; i++)
            mrc = txn_put(w, i);
        if (mrc == 0)
            return 0;
        if (mrc != MDB_MAP_FULL)
            return lmdb_fail(w, mrc, "put", err);
    }
}

/* Commits the pending puts, growing the map when the commit itself finds it full. */
static int commit(struct ava_lmdb_writer *w, char *err) {
    while (w->txn) {
        int mrc = mdb_txn_commit(w->txn);
        w->txn = NULL; /* freed by commit whatever it returns */
        if (mrc == MDB_MAP_FULL) {
            int rc = grow_and_redo(w, err);
            if (rc)
                return rc;
        } else if (mrc != 0) {
            return lmdb_fail(w, mrc, "commit", err);
        }
    }
    w->npend = 0;
    w->alen = 0;
    return 0;
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

/* Adds a put to the pending list: the key, then the datum encoded in place. */
static void add_pending(struct ava_lmdb_writer *w, const char *key, size_t klen,
                        const struct ava_datum *d, size_t vlen) {
    if (w->npend == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->pend = ava_xrealloc(w->pend, w->cap * sizeof *w->pend);
    }
    if (w->acap - w->alen < klen + vlen) {
        size_t cap = w->acap ? w->acap : 1 << 16;
        while (cap - w->alen < klen + vlen)
            cap *= 2;
        w->arena = ava_xrealloc(w->arena, cap);
        w->acap = cap;
    }
    bool append = key_after_last(w, key, klen);
    w->pend[w->npend++] = (struct pending){w->alen, klen, vlen, append};
    memcpy(w->arena + w->alen, key, klen);
    datum_write(d, w->arena + w->alen + klen);
    w->alen += klen + vlen;
}

/* Puts the newest pending entry, growing the map if needed. */
static int put_last(struct ava_lmdb_writer *w, char *err) {
    int mrc = w->txn ? 0 : txn_begin(w);
    if (mrc != 0)
        return lmdb_fail(w, mrc, "transaction", err);
    mrc = txn_put(w, w->npend - 1);
    if (mrc == MDB_MAP_FULL)
        return grow_and_redo(w, err);
    if (mrc == MDB_KEYEXIST) {
        w->alen = w->pend[--w->npend].off; /* forget it; the transaction stays usable */
        return ava_err(err, AVA_EEXISTS, "duplicate LMDB key in %s", w->dir);
    }
    return mrc ? lmdb_fail(w, mrc, "put", err) : 0;
}

int ava_lmdb_writer_put(struct ava_lmdb_writer *w, int index, const char *name,
                        const struct ava_datum *d, char *err) {
    if (w->broken)
        return ava_err(err, AVA_EIO, "LMDB writer for %s failed earlier", w->dir);
    if (index < 0)
        return ava_err(err, AVA_EINVALID, "negative LMDB key index %d", index);
    char key[KEY_MAX];
    int klen = snprintf(key, sizeof key, "%08d_%s", index, name);
    if (klen < 0 || klen >= (int)sizeof key || klen > mdb_env_get_maxkeysize(w->env))
        return ava_err(err, AVA_EINVALID, "LMDB key for '%s' is longer than %d bytes", name,
                       mdb_env_get_maxkeysize(w->env));
    size_t vlen;
    int rc = datum_check(d, &vlen, err);
    if (rc)
        return rc;
    add_pending(w, key, (size_t)klen, d, vlen);
    bool append = w->pend[w->npend - 1].append;
    rc = put_last(w, err);
    if (rc == 0 && append) {
        memcpy(w->last_key, key, (size_t)klen);
        w->last_klen = (size_t)klen;
    }
    if (rc == 0 && (w->npend >= PUTS_PER_TXN || w->alen >= PENDING_BYTES_MAX))
        rc = commit(w, err);
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
    if (rc == 0)
        rc = commit(w, err);
    if (w->txn)
        mdb_txn_abort(w->txn);
    if (rc == 0) {
        int mrc = mdb_env_sync(w->env, 1);
        if (mrc != 0)
            rc = lmdb_fail(w, mrc, "sync", err);
    }
    if (w->env)
        mdb_env_close(w->env);
    if (rc == 0)
        rc = sync_dir(w->dir, err);
    free(w->arena);
    free(w->pend);
    free(w->dir);
    free(w);
    return rc;
}
