/* ckpt.c: reading and writing the example trainer's checkpoint and model files (format in
 * ckpt.h): explicit little-endian fields, a size check and a CRC-32, atomic replacement. */
#include "ckpt.h"

#include "../../../../src/common/err.h"
#include "../../../../src/common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static const char MAGIC[8] = {'A', 'V', 'A', 'C', 'N', 'N', '\r', '\n'};

/* A little-endian cursor over a header buffer. */
struct cur {
    uint8_t *p;
    size_t off;
};

/* Puts or gets one little-endian field of n bytes (n = 4 or 8) at the cursor. */
static void put_le(struct cur *c, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        c->p[c->off++] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(struct cur *c, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)c->p[c->off++] << (8 * i);
    return v;
}
/* The same for float32 fields. */
static void put_f32(struct cur *c, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_le(c, u, 4);
}
static float get_f32(struct cur *c) {
    uint32_t u = (uint32_t)get_le(c, 4);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Writes (w true) or reads one field at the cursor: a u32 held in an int, a u64, a f32. */
static void io_int(struct cur *c, bool w, int *v) {
    if (w)
        put_le(c, (uint32_t)*v, 4);
    else
        *v = (int)(uint32_t)get_le(c, 4);
}
static void io_u64(struct cur *c, bool w, uint64_t *v) {
    if (w)
        put_le(c, *v, 8);
    else
        *v = get_le(c, 8);
}
static void io_f32(struct cur *c, bool w, float *v) {
    if (w)
        put_f32(c, *v);
    else
        *v = get_f32(c);
}

/* Serialises the header fields that follow magic, version, kind and header size into c, or
 * reads them back when w is false: one list of fields for both directions. */
static void header_fields(struct cur *c, bool w, struct tr_ckpt *k) {
    int *shape[] = {&k->shape.C,     &k->shape.H,     &k->shape.W,     &k->shape.classes,
                    &k->shape.conv1, &k->shape.conv2, &k->shape.hidden};
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++)
        io_int(c, w, shape[i]);
    uint64_t nparams = k->nparams, epoch = (uint64_t)k->st.epoch, step = (uint64_t)k->st.step;
    io_u64(c, w, &nparams);
    io_u64(c, w, &epoch);
    io_u64(c, w, &step);
    k->nparams = (size_t)nparams, k->st.epoch = (int)epoch, k->st.step = (int64_t)step;
    io_u64(c, w, &k->st.rng.state);
    io_u64(c, w, &k->st.rng.inc);
    for (int i = 0; i < 3; i++)
        io_f32(c, w, &k->st.norm.mean[i]);
    for (int i = 0; i < 3; i++)
        io_f32(c, w, &k->st.norm.std[i]);
    k->st.norm.C = k->shape.C;
    struct tr_hparams *h = &k->hp;
    io_int(c, w, &h->epochs);
    io_int(c, w, &h->batch);
    io_f32(c, w, &h->lr);
    io_f32(c, w, &h->momentum);
    io_f32(c, w, &h->wd);
    io_int(c, w, &h->schedule);
    io_f32(c, w, &h->lr_factor);
    io_int(c, w, &h->n_lr_steps);
    for (int i = 0; i < TR_MAX_LR_STEPS; i++)
        io_int(c, w, &h->lr_steps[i]);
    io_int(c, w, &h->warmup);
    io_u64(c, w, &h->seed);
}

/* Builds the 256-byte header of a file of `kind` for net, hp and st. */
static void make_header(uint8_t hdr[TR_CKPT_HEADER], int kind, const struct tr_net *net,
                        const struct tr_hparams *hp, const struct tr_state *st) {
    memset(hdr, 0, TR_CKPT_HEADER);
    struct tr_ckpt k = {
        .kind = kind, .shape = net->s, .hp = *hp, .st = *st, .nparams = net->nparams};
    struct cur c = {hdr, 0};
    memcpy(hdr, MAGIC, 8);
    c.off = 8;
    put_le(&c, TR_CKPT_VERSION, 4);
    put_le(&c, (uint32_t)kind, 4);
    put_le(&c, TR_CKPT_HEADER, 4);
    header_fields(&c, true, &k);
}

/* Writes n floats little-endian (the host's order on the platforms ava supports), updating
 * the running CRC. */
static int write_floats(FILE *f, const float *v, size_t n, uLong *crc) {
    *crc = crc32_z(*crc, (const Bytef *)v, n * sizeof *v);
    return fwrite(v, sizeof *v, n, f) == n ? 0 : -1;
}

/* fsyncs the folder that holds path, making a rename in it durable. */
static void sync_dir(const char *path) {
    char copy[4200];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int tr_ckpt_save(const char *path, int kind, const struct tr_net *net, const struct tr_hparams *hp,
                 const struct tr_state *st, char *err) {
    char tmp[4300], copy[4200];
    snprintf(copy, sizeof copy, "%s", path);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    /* hidden, and not named checkpoint-*: a run killed while writing leaves nothing that
     * AVA_RESUME_FROM could name */
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%d", dirname(copy), base, (int)getpid());
    FILE *f = fopen(tmp, "wbe");
    if (!f)
        return ava_err(err, AVA_EIO, "cannot create %s: %s", tmp, strerror(errno));
    uint8_t hdr[TR_CKPT_HEADER];
    make_header(hdr, kind, net, hp, st);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), hdr, TR_CKPT_HEADER);
    int bad = fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr;
    bad = bad || write_floats(f, net->params, net->nparams, &crc) < 0;
    if (kind == TR_CKPT_CHECKPOINT)
        bad = bad || write_floats(f, net->mom, net->nparams, &crc) < 0;
    uint8_t tail[4];
    struct cur c = {tail, 0};
    put_le(&c, (uint32_t)crc, 4);
    bad = bad || fwrite(tail, 1, 4, f) != 4;
    int r = ava_file_close_synced(
        f, tmp, bad ? ava_err(err, AVA_EIO, "cannot write %s: %s", tmp, strerror(errno)) : 0, err);
    if (r == 0 && rename(tmp, path) < 0)
        r = ava_err(err, AVA_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    sync_dir(path);
    return 0;
}

/* Parses and checks the header of a file of flen bytes. */
static int parse_header(uint8_t *buf, size_t flen, struct tr_ckpt *k, const char *path, char *err) {
    if (flen < TR_CKPT_HEADER + 4 || memcmp(buf, MAGIC, 8) != 0)
        return ava_err(err, AVA_EINVALID, "%s is not a model or checkpoint of ava-train-c (%s)",
                       path, flen < TR_CKPT_HEADER + 4 ? "too short" : "wrong magic");
    struct cur c = {buf, 8};
    uint32_t version = (uint32_t)get_le(&c, 4), kind = (uint32_t)get_le(&c, 4);
    uint32_t hsize = (uint32_t)get_le(&c, 4);
    if (version != TR_CKPT_VERSION || hsize != TR_CKPT_HEADER)
        return ava_err(err, AVA_EINVALID,
                       "%s: format version %u (header %u bytes); this trainer reads version %d",
                       path, version, hsize, TR_CKPT_VERSION);
    if (kind != TR_CKPT_CHECKPOINT && kind != TR_CKPT_MODEL)
        return ava_err(err, AVA_EINVALID, "%s: unknown kind %u", path, kind);
    k->kind = (int)kind;
    header_fields(&c, false, k);
    if (k->hp.n_lr_steps < 0 || k->hp.n_lr_steps > TR_MAX_LR_STEPS || k->hp.batch < 1)
        return ava_err(err, AVA_EINVALID, "%s: corrupt hyper-parameters in the header", path);
    char serr[AVA_ERRLEN];
    if (tr_shape_check(&k->shape, serr) < 0)
        return ava_err(err, AVA_EINVALID, "%s: bad network shape: %s", path, serr);
    if (k->nparams != tr_shape_nparams(&k->shape))
        return ava_err(err, AVA_EINVALID, "%s: %zu parameters where its shape has %zu", path,
                       k->nparams, tr_shape_nparams(&k->shape));
    size_t want = TR_CKPT_HEADER + 4 + k->nparams * 4 * (kind == TR_CKPT_CHECKPOINT ? 2 : 1);
    if (flen != want)
        return ava_err(err, AVA_EINVALID, "%s: %zu bytes where its header announces %zu (%s)", path,
                       flen, want, flen < want ? "truncated" : "trailing data");
    return 0;
}

int tr_ckpt_load(const char *path, struct tr_ckpt *out, char *err) {
    memset(out, 0, sizeof *out);
    char *buf = NULL;
    size_t flen = 0;
    int r = ava_file_read_all(path, (size_t)1 << 34, &buf, &flen, err);
    if (r < 0)
        return r;
    uint8_t *b = (uint8_t *)buf;
    r = parse_header(b, flen, out, path, err);
    if (r == 0) {
        struct cur c = {b + flen - 4, 0};
        uint32_t stored = (uint32_t)get_le(&c, 4);
        uLong crc = crc32_z(crc32(0L, Z_NULL, 0), b, flen - 4);
        if (stored != (uint32_t)crc)
            r = ava_err(err, AVA_EINVALID, "%s: checksum mismatch (the file is corrupt)", path);
    }
    if (r == 0) {
        size_t n = out->nparams;
        out->params = malloc(sizeof(float) * (n ? n : 1));
        out->mom = out->kind == TR_CKPT_CHECKPOINT ? malloc(sizeof(float) * (n ? n : 1)) : NULL;
        if (!out->params || (out->kind == TR_CKPT_CHECKPOINT && !out->mom))
            r = ava_err(err, AVA_EIO, "%s: out of memory", path);
    }
    if (r == 0) {
        memcpy(out->params, b + TR_CKPT_HEADER, sizeof(float) * out->nparams);
        if (out->mom)
            memcpy(out->mom, b + TR_CKPT_HEADER + sizeof(float) * out->nparams,
                   sizeof(float) * out->nparams);
    }
    free(buf);
    if (r < 0)
        tr_ckpt_free(out);
    return r;
}

void tr_ckpt_free(struct tr_ckpt *c) {
    free(c->params);
    free(c->mom);
    c->params = c->mom = NULL;
}

int tr_ckpt_check_shape(const struct tr_ckpt *c, const struct tr_shape *want, const char *path,
                        char *err) {
    if (memcmp(&c->shape, want, sizeof *want) == 0)
        return 0;
    char have[160], need[160];
    tr_shape_describe(&c->shape, have, sizeof have);
    tr_shape_describe(want, need, sizeof need);
    return ava_err(err, AVA_EINVALID,
                   "%s was made for another network (%s) than this one (%s): use a checkpoint of "
                   "the same data and --conv1/--conv2/--hidden, or remove it to start over",
                   path, have, need);
}
