/* format.c: a dataset's pack written as RecordIO, LMDB or raw sets (see format.h). The split
 * order comes from split.h; payloads are encoded by worker threads one chunk at a time and
 * written in order by the calling thread, so the same inputs give byte-identical files. */
#include "format.h"

#include "image.h"
#include "lmdbw.h"
#include "pack.h"
#include "rawset.h"
#include "recordio.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 512
#define MAX_THREADS 64

/* One encoded payload, produced by a worker thread. */
struct item {
    uint32_t sample; /* index in the pack */
    int label;
    const char *name; /* points into the pack */
    uint8_t *buf;     /* malloc'd payload, or NULL when `borrowed` is used */
    const uint8_t *borrowed;
    size_t len;
    int width, height, channels; /* of raw payloads */
    int rc;
    char err[AVA_ERRLEN];
};

/* The writer of one set, whichever the format. */
struct set_writer {
    enum ava_set_format format;
    struct ava_recordio_writer *rec;
    struct ava_lst_writer *lst;
    struct ava_lmdb_writer *lmdb;
    struct ava_raw_writer *raw;
};

/* What the encoding threads share for one chunk. */
struct chunk {
    const struct ava_job_spec *spec;
    const struct ava_pack *pack;
    struct item *items;
    int n;
    int nthreads;
};

struct worker_arg {
    struct chunk *c;
    int t;
};

/* The encoding a format uses when the user asked for none. */
static enum ava_encoding effective_encoding(const struct ava_job_spec *spec) {
    if (spec->encoding != AVA_ENC_DEFAULT)
        return spec->encoding;
    return spec->format == AVA_FMT_LMDB  ? AVA_ENC_RAW
           : spec->format == AVA_FMT_RAW ? AVA_ENC_PNG
                                         : AVA_ENC_JPEG;
}

/* Raw payload: HWC (RecordIO, raw) or planar CHW in BGR order (Caffe's raw Datum). */
static void raw_payload(const struct ava_pixels *p, bool caffe, struct item *it) {
    size_t plane = (size_t)p->width * p->height;
    it->len = plane * (size_t)p->channels;
    it->buf = ava_xmalloc(it->len ? it->len : 1);
    if (!caffe || p->channels == 1) {
        memcpy(it->buf, p->data, it->len);
    } else {
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) /* RGB in, BGR planes out */
                it->buf[(size_t)(2 - c) * plane + i] = p->data[i * 3 + (size_t)c];
    }
    it->width = p->width;
    it->height = p->height;
    it->channels = p->channels;
}

/* Encodes one sample as the set wants it. */
static void encode_item(const struct ava_job_spec *spec, const struct ava_pack *pack,
                        struct item *it) {
    struct ava_sample s;
    struct ava_pixels px = {0}, small = {0};
    it->rc = ava_pack_get(pack, it->sample, &s, it->err);
    if (it->rc < 0)
        return;
    it->label = s.label;
    it->name = s.name;
    enum ava_encoding enc = effective_encoding(spec);
    enum ava_image_kind kind =
        s.pix == AVA_PIX_ENCODED ? ava_image_sniff(s.data, s.len) : AVA_IMAGE_UNKNOWN;
    bool same = (enc == AVA_ENC_JPEG && kind == AVA_IMAGE_JPEG) ||
                (enc == AVA_ENC_PNG && kind == AVA_IMAGE_PNG);
    if (same && !spec->resize) { /* like im2rec --pass-through: the file's own bytes */
        it->borrowed = s.data;
        it->len = s.len;
        return;
    }
    it->rc = ava_image_from_sample(&s, &px, it->err);
    if (it->rc == 0 && spec->resize) {
        it->rc = ava_image_resize_shorter(&px, spec->resize, &small, it->err);
        ava_image_pixels_free(&px);
        px = small;
    }
    if (it->rc == 0 && enc == AVA_ENC_JPEG)
        it->rc = ava_image_encode_jpeg(&px, spec->quality, &it->buf, &it->len, it->err);
    else if (it->rc == 0 && enc == AVA_ENC_PNG)
        it->rc = ava_image_encode_png(&px, &it->buf, &it->len, it->err);
    else if (it->rc == 0)
        raw_payload(&px, spec->format == AVA_FMT_LMDB, it);
    ava_image_pixels_free(&px);
}

/* Thread body: encodes the items t, t + nthreads, ... of the chunk. */
static void *encode_worker(void *arg) {
    struct worker_arg *wa = arg;
    struct chunk *c = wa->c;
    for (int i = wa->t; i < c->n; i += c->nthreads)
        encode_item(c->spec, c->pack, &c->items[i]);
    return NULL;
}

/* Encodes a chunk on nthreads threads (the caller's thread is one of them). */
static void encode_chunk(struct chunk *c) {
    pthread_t th[MAX_THREADS];
    struct worker_arg wa[MAX_THREADS];
    int started = 0;
    for (int t = 1; t < c->nthreads; t++) {
        wa[t] = (struct worker_arg){c, t};
        if (pthread_create(&th[started], NULL, encode_worker, &wa[t]) == 0)
            started++;
        else
            wa[t].t = -1;
    }
    wa[0] = (struct worker_arg){c, 0};
    encode_worker(&wa[0]);
    for (int t = 1; t < c->nthreads; t++)
        if (wa[t].t < 0) /* a thread that could not start: do its share here */
            encode_worker(&(struct worker_arg){c, t});
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
}

/* Opens the writer of a set in dir (which must not exist yet). */
static int set_writer_open(struct set_writer *w, enum ava_set_format f, const char *dir,
                           char *err) {
    char rec[AVA_PATH_MAX], idx[AVA_PATH_MAX], lst[AVA_PATH_MAX];
    memset(w, 0, sizeof *w);
    w->format = f;
    if (f == AVA_FMT_LMDB)
        return ava_lmdb_writer_open(dir, &w->lmdb, err);
    if (f == AVA_FMT_RAW)
        return ava_raw_writer_open(dir, &w->raw, err);
    int r = ava_mkdir_p(dir, 0755, err);
    if (r == 0)
        r = ava_path_join(rec, sizeof rec, err, dir, "data.rec", NULL);
    if (r == 0)
        r = ava_path_join(idx, sizeof idx, err, dir, "data.idx", NULL);
    if (r == 0)
        r = ava_path_join(lst, sizeof lst, err, dir, "data.lst", NULL);
    if (r == 0)
        r = ava_recordio_writer_open(rec, idx, &w->rec, err);
    if (r == 0)
        r = ava_lst_open(lst, &w->lst, err);
    return r;
}

/* Writes item number i of the set. */
static int set_writer_add(struct set_writer *w, uint32_t i, const struct item *it, char *err) {
    const uint8_t *data = it->buf ? it->buf : it->borrowed;
    if (w->format == AVA_FMT_RECORDIO) {
        int r = ava_recordio_write_image(w->rec, i, (float)it->label, i, data, it->len, err);
        return r < 0 ? r : ava_lst_add(w->lst, i, (float)it->label, it->name, err);
    }
    if (w->format == AVA_FMT_RAW) {
        char name[AVA_SAMPLE_NAME_MAX + 16];
        snprintf(name, sizeof name, "%s", it->name);
        if (it->buf && it->width) { /* raw pixels get a .raw name, not the source's */
            char *dot = strrchr(name, '.');
            if (dot && !strchr(dot, '/'))
                *dot = '\0';
            strcat(name, ".raw");
        }
        return ava_raw_write(w->raw, i, it->label, name, data, it->len, err);
    }
    struct ava_datum d = {.channels = it->width ? it->channels : 0,
                          .height = it->height,
                          .width = it->width,
                          .data = data,
                          .len = it->len,
                          .label = it->label,
                          .encoded = it->width == 0};
    return ava_lmdb_writer_put(w->lmdb, (int)i, it->name, &d, err);
}

/* Closes whatever is open; the first error wins. */
static int set_writer_close(struct set_writer *w, int r, char *err) {
    char e2[AVA_ERRLEN];
    int c = 0;
    if (w->rec && (c = ava_recordio_writer_close(w->rec, e2)) < 0 && r == 0)
        r = ava_err(err, c, "%s", e2);
    if (w->lst && (c = ava_lst_close(w->lst, e2)) < 0 && r == 0)
        r = ava_err(err, c, "%s", e2);
    if (w->lmdb && (c = ava_lmdb_writer_close(w->lmdb, e2)) < 0 && r == 0)
        r = ava_err(err, c, "%s", e2);
    if (w->raw && (c = ava_raw_writer_close(w->raw, e2)) < 0 && r == 0)
        r = ava_err(err, c, "%s", e2);
    return r;
}

static int64_t tree_bytes;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        tree_bytes += st->st_size;
    return 0;
}

/* Total size of the files below dir (one formatting job per process: a static sum is fine). */
static int64_t dir_bytes(const char *dir) {
    tree_bytes = 0;
    nftw(dir, add_size, 16, FTW_PHYS);
    return tree_bytes;
}

/* Progress across both sets. */
struct run_progress {
    ava_format_progress_fn fn;
    void *ctx;
    int64_t base, total;
};

/* Releases the payloads of a chunk. */
static void chunk_clear(struct item *items, int n) {
    for (int i = 0; i < n; i++) {
        free(items[i].buf);
        items[i].buf = NULL;
    }
}

/* Writes the samples order[0..count) as one set into dir. */
static int write_set(const struct ava_job_spec *spec, const struct ava_pack *pack,
                     const uint32_t *order, uint32_t count, const char *dir,
                     struct run_progress *pr, char *err) {
    struct set_writer w;
    int r = set_writer_open(&w, spec->format, dir, err);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = spec->threads ? spec->threads : (int)(cpus > 0 ? cpus : 1);
    if (nthreads > MAX_THREADS)
        nthreads = MAX_THREADS;
    struct item *items = ava_xcalloc(CHUNK, sizeof *items);
    for (uint32_t at = 0; r == 0 && at < count; at += CHUNK) {
        int n = count - at < CHUNK ? (int)(count - at) : CHUNK;
        memset(items, 0, (size_t)n * sizeof *items);
        for (int i = 0; i < n; i++)
            items[i].sample = order[at + (uint32_t)i];
        struct chunk c = {spec, pack, items, n, nthreads};
        encode_chunk(&c);
        for (int i = 0; r == 0 && i < n; i++) {
            if (items[i].rc < 0)
                r = ava_err(err, items[i].rc, "sample %u (%s): %s", items[i].sample,
                            items[i].name ? items[i].name : "?", items[i].err);
            else
                r = set_writer_add(&w, at + (uint32_t)i, &items[i], err);
        }
        chunk_clear(items, n);
        if (r == 0 && pr->fn && pr->fn(pr->ctx, pr->base + at + (uint32_t)n, pr->total))
            r = ava_err(err, AVA_ECONFLICT, "cancelled");
    }
    free(items);
    return set_writer_close(&w, r, err);
}

/* The labels of every sample in the pack (for stratified splits); *max gets the largest. */
static int pack_labels(const struct ava_pack *pack, uint32_t n, int **labels, int *max, char *err) {
    int *l = ava_xmalloc((n ? n : 1) * sizeof *l);
    *max = -1;
    for (uint32_t i = 0; i < n; i++) {
        struct ava_sample s;
        int r = ava_pack_get(pack, i, &s, err);
        if (r < 0) {
            free(l);
            return r;
        }
        l[i] = s.label;
        if (s.label > *max)
            *max = s.label;
    }
    *labels = l;
    return 0;
}

int ava_format_run(const struct ava_job_spec *spec, const char *pack_dir, const char *out_dir,
                   ava_format_progress_fn progress, void *ctx, struct ava_format_set sets[2],
                   int *nsets, char *err) {
    struct ava_pack *pack;
    int r = ava_pack_open(pack_dir, &pack, err);
    if (r < 0)
        return r;
    uint32_t n = ava_pack_count(pack), ntrain = 0, *order = NULL;
    int *labels = NULL, maxlabel = -1;
    if (spec->mode == AVA_SPLIT_STRATIFIED)
        r = pack_labels(pack, n, &labels, &maxlabel, err);
    if (r == 0)
        r = ava_split_order(n, spec->percent, spec->seed, spec->mode, labels, maxlabel + 1, &order,
                            &ntrain, err);
    struct run_progress pr = {progress, ctx, 0, n};
    *nsets = 0;
    for (int part = 0; r == 0 && part < (spec->percent < 100 ? 2 : 1); part++) {
        struct ava_format_set *s = &sets[part];
        char name[64];
        s->percent = part == 0 ? spec->percent : 100 - spec->percent;
        s->samples = part == 0 ? ntrain : n - ntrain;
        snprintf(name, sizeof name, "%s-%d", ava_set_format_str(spec->format), s->percent);
        r = ava_path_join(s->dir, sizeof s->dir, err, out_dir, name, NULL);
        if (r == 0)
            r = write_set(spec, pack, order + (part ? ntrain : 0), (uint32_t)s->samples, s->dir,
                          &pr, err);
        pr.base += s->samples;
        s->bytes = dir_bytes(s->dir);
        *nsets = part + 1;
    }
    free(order);
    free(labels);
    ava_pack_close(pack);
    return r;
}
