/* data.c: loading a formatted set (RecordIO or LMDB) into memory for the example trainer:
 * payload decoding (JPEG, PNG, raw pixels), shape checks, normalisation and batches. */
#include "data.h"

#include "../../../../src/common/err.h"
#include "../../../../src/data/image.h"
#include "../../../../src/data/lmdbw.h"
#include "../../../../src/data/recordio.h"

#include <lmdb.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SAMPLES 100000000

int tr_raw_shape(size_t len, int *C, int *H, int *W) {
    for (int c = 1; c <= 3; c += 2) {
        if (len == 0 || len % (size_t)c)
            continue;
        size_t px = len / (size_t)c, s = (size_t)llround(sqrt((double)px));
        if (s * s == px && s <= 65535) {
            *C = c, *H = (int)s, *W = (int)s;
            return 0;
        }
    }
    return -1;
}

/* Appends one planar image (C x H x W bytes, RGB order) and its label to set, checking
 * the shape against the first image's. where names the sample in messages. */
static int set_add(struct tr_set *set, const uint8_t *chw, int C, int H, int W, int label,
                   const char *where, char *err) {
    if (label < 0)
        return ava_err(err, AVA_EINVALID, "%s: negative label %d", where, label);
    if (set->n == 0) {
        set->C = C, set->H = H, set->W = W;
    } else if (C != set->C || H != set->H || W != set->W) {
        return ava_err(err, AVA_EINVALID,
                       "%s: a %dx%dx%d image (channels x height x width) where the set's first is "
                       "%dx%dx%d: every image must have the same shape",
                       where, C, H, W, set->C, set->H, set->W);
    }
    if (set->n >= MAX_SAMPLES)
        return ava_err(err, AVA_ETOOLARGE, "%s: more than %d samples", where, MAX_SAMPLES);
    size_t isz = (size_t)C * H * W, cap = 1;
    while (cap < (size_t)set->n + 1)
        cap *= 2;
    if ((set->n & (set->n - 1)) == 0) { /* n is 0 or a power of two: grow to cap */
        uint8_t *p = realloc(set->pix, isz * cap);
        int32_t *l = p ? realloc(set->labels, sizeof *l * cap) : NULL;
        if (p)
            set->pix = p;
        if (!l)
            return ava_err(err, AVA_EIO, "%s: out of memory after %d images", where, set->n);
        set->labels = l;
    }
    memcpy(set->pix + isz * (size_t)set->n, chw, isz);
    set->labels[set->n++] = label;
    if (label > set->max_label)
        set->max_label = label;
    return 0;
}

/* Converts interleaved pixels (H x W x C) to planar (C x H x W). */
static void to_planar(const uint8_t *hwc, int C, int H, int W, uint8_t *chw) {
    size_t plane = (size_t)H * W;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < C; c++)
            chw[(size_t)c * plane + i] = hwc[i * (size_t)C + c];
}

/* Adds an interleaved image (decoded or raw RecordIO pixels). */
static int add_interleaved(struct tr_set *set, const uint8_t *hwc, int C, int H, int W, int label,
                           const char *where, char *err) {
    uint8_t *chw = malloc((size_t)C * H * W);
    if (!chw)
        return ava_err(err, AVA_EIO, "%s: out of memory", where);
    to_planar(hwc, C, H, W, chw);
    int r = set_add(set, chw, C, H, W, label, where, err);
    free(chw);
    return r;
}

/* Adds an encoded (JPEG/PNG) payload, or a raw interleaved one when raw_ok and its length
 * gives a shape. A payload with an image magic that fails to decode is taken as raw when
 * its length fits (raw pixels may begin with those bytes). */
static int add_payload(struct tr_set *set, const uint8_t *p, size_t len, int label, bool raw_ok,
                       const char *where, char *err) {
    char derr[AVA_ERRLEN] = "";
    if (ava_image_sniff(p, len) != AVA_IMAGE_UNKNOWN) {
        struct ava_pixels px = {0};
        if (ava_image_decode(p, len, &px, derr) == 0) {
            int r =
                add_interleaved(set, px.data, px.channels, px.height, px.width, label, where, err);
            ava_image_pixels_free(&px);
            return r;
        }
    }
    int C, H, W;
    if (raw_ok && tr_raw_shape(len, &C, &H, &W) == 0)
        return add_interleaved(set, p, C, H, W, label, where, err);
    if (*derr)
        return ava_err(err, AVA_EINVALID, "%s: %s", where, derr);
    return ava_err(err, AVA_EINVALID,
                   "%s: a payload of %zu bytes is neither JPEG nor PNG, nor raw pixels of a square "
                   "grey or RGB image",
                   where, len);
}

/* Adds one RecordIO record: IRHeader, then flag * 4 bytes of extra labels (the first is the
 * class), then the payload. */
static int add_record(struct tr_set *set, const uint8_t *rec, size_t len, long index, char *err) {
    char where[96];
    snprintf(where, sizeof where, "record %ld", index);
    struct ava_irheader h;
    if (ava_irheader_unpack(rec, len, &h) < 0)
        return ava_err(err, AVA_EINVALID, "%s: shorter than its 24-byte header", where);
    size_t skip = AVA_IRHEADER_SIZE + (size_t)h.flag * 4;
    if (h.flag > (1u << 20) || skip > len)
        return ava_err(err, AVA_EINVALID, "%s: %u labels do not fit in %zu bytes", where, h.flag,
                       len);
    float label = h.label;
    if (h.flag > 0)
        memcpy(&label, rec + AVA_IRHEADER_SIZE, sizeof label);
    if (!(label >= 0.0f && label < 2147483647.0f) || label != floorf(label))
        return ava_err(err, AVA_EINVALID, "%s: label %g is not a class index", where, label);
    return add_payload(set, rec + skip, len - skip, (int)label, true, where, err);
}

/* Loads dir/data.rec. */
static int load_recordio(const char *path, int limit, struct tr_set *set, char *err) {
    struct ava_recordio_reader *rd;
    int r = ava_recordio_reader_open(path, &rd, err);
    if (r < 0)
        return r;
    const uint8_t *rec;
    size_t len;
    long i = 0;
    while ((limit <= 0 || set->n < limit) && (r = ava_recordio_read(rd, &rec, &len, err)) == 1) {
        if ((r = add_record(set, rec, len, i++, err)) < 0)
            break;
    }
    ava_recordio_reader_close(rd);
    return r < 0 ? r : 0;
}

/* Adds one LMDB value (a serialised Caffe Datum). */
static int add_datum(struct tr_set *set, const MDB_val *k, const MDB_val *v, char *err) {
    char where[160];
    snprintf(where, sizeof where, "key %.*s", (int)(k->mv_size > 100 ? 100 : k->mv_size),
             (const char *)k->mv_data);
    struct ava_datum d;
    char derr[AVA_ERRLEN];
    if (ava_datum_decode(v->mv_data, v->mv_size, &d, derr) < 0)
        return ava_err(err, AVA_EINVALID, "%s: %s", where, derr);
    if (d.encoded)
        return add_payload(set, d.data, d.len, d.label, false, where, err);
    size_t plane = (size_t)d.height * d.width;
    if ((d.channels != 1 && d.channels != 3) || d.height <= 0 || d.width <= 0 ||
        plane * d.channels != d.len)
        return ava_err(err, AVA_EINVALID, "%s: a raw datum of %dx%dx%d with %zu bytes", where,
                       d.channels, d.height, d.width, d.len);
    uint8_t *chw = malloc(d.len);
    if (!chw)
        return ava_err(err, AVA_EIO, "%s: out of memory", where);
    for (int c = 0; c < d.channels; c++) /* planar BGR -> planar RGB */
        memcpy(chw + (size_t)c * plane, d.data + (size_t)(d.channels - 1 - c) * plane, plane);
    int r = set_add(set, chw, d.channels, d.height, d.width, d.label, where, err);
    free(chw);
    return r;
}

/* Walks the open environment's main database in key order. */
static int walk_lmdb(MDB_env *env, int limit, struct tr_set *set, const char *dir, char *err) {
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (rc == 0)
        rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        if (txn)
            mdb_txn_abort(txn);
        return ava_err(err, AVA_EIO, "cannot read the LMDB in %s: %s", dir, mdb_strerror(rc));
    }
    MDB_val k, v;
    int r = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && (limit <= 0 || set->n < limit);
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if ((r = add_datum(set, &k, &v, err)) < 0)
            break;
    if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
        r = ava_err(err, AVA_EIO, "cannot read the LMDB in %s: %s", dir, mdb_strerror(rc));
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return r;
}

/* Loads dir/data.mdb, read-only and without the lock file (sets are read-only). */
static int load_lmdb(const char *dir, int limit, struct tr_set *set, char *err) {
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc != 0)
        return ava_err(err, AVA_EIO, "cannot open the LMDB in %s: %s", dir, mdb_strerror(rc));
    rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0644);
    if (rc != 0) {
        mdb_env_close(env);
        return ava_err(err, AVA_EIO, "cannot open the LMDB in %s: %s", dir, mdb_strerror(rc));
    }
    int r = walk_lmdb(env, limit, set, dir, err);
    mdb_env_close(env);
    return r;
}

int tr_set_load(const char *dir, int limit, struct tr_set *set, char *err) {
    memset(set, 0, sizeof *set);
    set->max_label = -1;
    char path[4200], inner[AVA_ERRLEN];
    struct stat st;
    int r;
    snprintf(path, sizeof path, "%s/data.rec", dir);
    if (stat(path, &st) == 0) {
        set->format = "recordio";
        r = load_recordio(path, limit, set, inner);
    } else {
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (stat(path, &st) != 0)
            return ava_err(err, AVA_ENOTFOUND,
                           "%s holds neither data.rec (RecordIO) nor data.mdb (LMDB): not a "
                           "formatted set this trainer reads",
                           dir);
        set->format = "lmdb";
        r = load_lmdb(dir, limit, set, inner);
    }
    if (r == 0 && set->n == 0)
        r = ava_err(inner, AVA_EINVALID, "no samples");
    if (r < 0) {
        tr_set_free(set);
        return ava_err(err, r, "%s: %s", path, inner);
    }
    return 0;
}

void tr_set_free(struct tr_set *set) {
    free(set->pix);
    free(set->labels);
    memset(set, 0, sizeof *set);
    set->max_label = -1;
}

void tr_norm_compute(const struct tr_set *set, struct tr_norm *norm) {
    memset(norm, 0, sizeof *norm);
    norm->C = set->C;
    size_t plane = (size_t)set->H * set->W;
    for (int c = 0; c < set->C && c < 3; c++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < set->n; i++) {
            const uint8_t *p = set->pix + ((size_t)i * set->C + c) * plane;
            uint64_t a = 0, a2 = 0;
            for (size_t j = 0; j < plane; j++)
                a += p[j], a2 += (uint64_t)p[j] * p[j];
            s += (double)a, s2 += (double)a2;
        }
        double cnt = (double)set->n * (double)plane, mean = s / cnt / 255.0;
        double var = s2 / cnt / (255.0 * 255.0) - mean * mean;
        norm->mean[c] = (float)mean;
        norm->std[c] = (float)(var > 1e-8 ? sqrt(var) : 1.0);
    }
}

void tr_set_batch(const struct tr_set *set, const struct tr_norm *norm, const uint32_t *idx, int N,
                  float *x, int32_t *labels) {
    size_t plane = (size_t)set->H * set->W;
    for (int c = 0; c < set->C; c++) {
        float scale = 1.0f / (255.0f * norm->std[c]), shift = norm->mean[c] / norm->std[c];
        for (int n = 0; n < N; n++) {
            const uint8_t *src = set->pix + ((size_t)idx[n] * set->C + c) * plane;
            float *dst = x + ((size_t)c * N + n) * plane;
            for (size_t j = 0; j < plane; j++)
                dst[j] = (float)src[j] * scale - shift;
        }
    }
    for (int n = 0; n < N; n++)
        labels[n] = set->labels[idx[n]];
}
