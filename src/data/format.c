/* format.c: a dataset's pack written as RecordIO, LMDB or raw sets (see format.h). The split
 * order comes from split.h. A set's samples go through a ring of NSLOTS chunks: a pool of
 * threads started once per set encodes the chunks ahead (each thread claiming a few samples
 * at a time from an atomic counter, with its own JPEG encoder and its own arena in each
 * chunk), while the calling thread writes the oldest chunk in order and encodes too whenever
 * it would wait. The order of the files never depends on which thread encoded what, so the
 * same inputs give byte-identical files whatever the thread count. The pack is unmapped on a
 * helper thread while the last set's files are synced. */
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
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_MAX 512          /* samples per chunk at most */
#define CHUNK_MIN 16           /* ... and at least */
#define CHUNK_BYTES (4u << 20) /* payload bytes a chunk aims at: sizes the chunks of big images */
#define NSLOTS 4               /* chunks in flight: the one being written, the rest encoded ahead */
#define CLAIM 8                /* samples a thread takes at a time (a chunk holds whole claims) */
#define BORROW_MIN (64u << 10) /* pack bytes written as they are: borrowed from this size */
#define PREFETCH_AHEAD 4       /* the writer prefetches borrowed payloads this many ahead */
#define PREFETCH_MAX 4096      /* ... up to this many of their bytes */
#define MAX_THREADS 64
#define NO_NAME SIZE_MAX

/* Bytes produced by one encoding thread for the chunk in a slot, reused from chunk to chunk. */
struct arena {
    uint8_t *buf;
    size_t len, cap;
};

/* One payload, produced by an encoding thread. Small ones are copied into the thread's arena
 * with the sample's name, so that the writer reads the chunk's bytes in sequence instead of
 * gathering them from the pack in shuffled order (a cache and TLB miss per sample). */
struct item {
    const uint8_t *data; /* borrowed from the pack, or NULL: then in arenas[arena] at off */
    size_t off, len;
    size_t name_off; /* the name, in the arena; NO_NAME when the sample could not be read */
    uint32_t sample; /* index in the pack */
    int label;
    int width, height, channels; /* of raw payloads; 0 for encoded ones */
    int arena;
    int rc;
};

/* A chunk's place in the ring: its items, the threads' arenas, what is done and the first
 * failure. The writer resets a slot before opening it to the encoders (pool.open), and reads
 * it only once every item is done. */
struct slot {
    struct item *items;   /* chunk size */
    struct arena *arenas; /* one per encoding thread */
    atomic_uint done;     /* items encoded */
    uint32_t n;           /* items in this chunk */
    uint32_t fail_at;     /* lowest failed item (UINT32_MAX: none), under pool.mu */
    int fail_rc;
    char err[AVA_ERRLEN];
};

/* What the encoding threads of one set share. Samples (set positions) are claimed CLAIM at a
 * time from `next`; position i belongs to chunk i / chunk, which lives in slot chunk % NSLOTS
 * and may be encoded once the writer has opened it (chunk < open). */
struct pool {
    const struct ava_job_spec *spec;
    const struct ava_pack *pack;
    const uint32_t *order;
    uint64_t count;
    enum ava_encoding enc;
    uint32_t chunk;
    int nthreads; /* encoding threads, the writer included: one arena each per slot */
    struct slot slots[NSLOTS];
    _Atomic uint64_t next;
    _Atomic uint64_t open;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast when a chunk is done, opened, or the set stops */
};

/* One encoding thread's own things. */
struct encoder {
    struct pool *pool;
    int t; /* its arena in every slot */
    struct ava_jpeg_encoder *jpeg;
    pthread_t th;
};

/* The writer of one set, whichever the format. */
struct set_writer {
    enum ava_set_format format;
    struct ava_recordio_writer *rec;
    struct ava_lst_writer *lst;
    struct ava_lmdb_writer *lmdb;
    struct ava_raw_writer *raw;
};

/* The encoding a format uses when the user asked for none. */
static enum ava_encoding effective_encoding(const struct ava_job_spec *spec) {
    if (spec->encoding != AVA_ENC_DEFAULT)
        return spec->encoding;
    return spec->format == AVA_FMT_LMDB  ? AVA_ENC_RAW
           : spec->format == AVA_FMT_RAW ? AVA_ENC_PNG
                                         : AVA_ENC_JPEG;
}

/* Makes room for n more bytes in the arena; returns their offset. */
static size_t arena_take(struct arena *a, size_t n) {
    if (a->cap - a->len < n) {
        size_t cap = a->cap ? a->cap : 64 << 10;
        while (cap - a->len < n)
            cap *= 2;
        a->buf = ava_xrealloc(a->buf, cap);
        a->cap = cap;
    }
    size_t off = a->len;
    a->len += n;
    return off;
}

/* Copies a payload into the thread's arena. */
static void item_copy(struct item *it, struct arena *a, const uint8_t *p, size_t len) {
    it->data = NULL;
    it->off = arena_take(a, len ? len : 1);
    it->len = len;
    if (len)
        memcpy(a->buf + it->off, p, len);
}

/* A payload of bytes that stay in the pack: borrowed when large, else copied. */
static void item_pack_bytes(struct item *it, struct arena *a, const uint8_t *p, size_t len) {
    if (len >= BORROW_MIN) {
        it->data = p;
        it->len = len;
    } else {
        item_copy(it, a, p, len);
    }
}

/* Raw payload of interleaved pixels: HWC as they are (RecordIO, raw; pack bytes when they
 * are in the pack), or planar CHW in BGR order (Caffe's raw Datum, RGB only). */
static void raw_payload(const uint8_t *px, int width, int height, int channels, bool caffe,
                        bool in_pack, struct item *it, struct arena *a) {
    size_t plane = (size_t)width * (size_t)height, len = plane * (size_t)channels;
    if (!caffe || channels == 1) {
        if (in_pack)
            item_pack_bytes(it, a, px, len);
        else
            item_copy(it, a, px, len);
    } else {
        it->data = NULL;
        it->off = arena_take(a, len);
        it->len = len;
        uint8_t *b = a->buf + it->off, *bp = b + 2 * plane, *gp = b + plane, *rp = b;
        for (size_t i = 0; i < plane; i++) { /* RGB in, BGR planes out */
            bp[i] = px[i * 3];
            gp[i] = px[i * 3 + 1];
            rp[i] = px[i * 3 + 2];
        }
    }
    it->width = width;
    it->height = height;
    it->channels = channels;
}

/* Encodes sample s as the set wants it into *it (its payload in arena a); returns 0 or an
 * error, with the message in err. */
static int encode_item(struct encoder *e, const struct ava_sample *s, struct item *it,
                       struct arena *a, char *err) {
    const struct ava_job_spec *spec = e->pool->spec;
    enum ava_encoding enc = e->pool->enc;
    bool caffe = spec->format == AVA_FMT_LMDB;
    int rc;
    enum ava_image_kind kind =
        s->pix == AVA_PIX_ENCODED ? ava_image_sniff(s->data, s->len) : AVA_IMAGE_UNKNOWN;
    bool same = (enc == AVA_ENC_JPEG && kind == AVA_IMAGE_JPEG) ||
                (enc == AVA_ENC_PNG && kind == AVA_IMAGE_PNG);
    if (same && !spec->resize) { /* like im2rec --pass-through: the file's own bytes */
        item_pack_bytes(it, a, s->data, s->len);
        return 0;
    }
    const uint8_t *out;
    size_t len;
    if (s->pix != AVA_PIX_ENCODED && !spec->resize && enc != AVA_ENC_PNG) {
        /* pixels as stored: encoded or written from the pack's bytes, not copied first */
        int ch = 0;
        if ((rc = ava_image_sample_check(s, &ch, err)) < 0)
            return rc;
        if (enc == AVA_ENC_RAW) {
            raw_payload(s->data, s->width, s->height, ch, caffe, true, it, a);
            return 0;
        }
        if (!e->jpeg)
            e->jpeg = ava_jpeg_encoder_new();
        rc = ava_jpeg_encoder_encode(e->jpeg, s->data, s->width, s->height, ch, spec->quality, &out,
                                     &len, err);
        if (rc == 0)
            item_copy(it, a, out, len);
        return rc;
    }
    struct ava_pixels px = {0}, small = {0};
    rc = ava_image_from_sample(s, &px, err);
    if (rc == 0 && spec->resize) {
        rc = ava_image_resize_shorter(&px, spec->resize, &small, err);
        ava_image_pixels_free(&px);
        px = small;
    }
    if (rc == 0 && enc == AVA_ENC_JPEG) {
        if (!e->jpeg)
            e->jpeg = ava_jpeg_encoder_new();
        rc = ava_jpeg_encoder_encode(e->jpeg, px.data, px.width, px.height, px.channels,
                                     spec->quality, &out, &len, err);
        if (rc == 0)
            item_copy(it, a, out, len);
    } else if (rc == 0 && enc == AVA_ENC_PNG) {
        uint8_t *png = NULL;
        rc = ava_image_encode_png(&px, &png, &len, err);
        if (rc == 0)
            item_copy(it, a, png, len);
        free(png);
    } else if (rc == 0) {
        raw_payload(px.data, px.width, px.height, px.channels, caffe, false, it, a);
    }
    ava_image_pixels_free(&px);
    return rc;
}

/* Records a failure of item `at` of a slot: the writer reports the chunk's first. */
static void slot_fail(struct pool *p, struct slot *sl, uint32_t at, int rc, const char *err) {
    pthread_mutex_lock(&p->mu);
    if (at < sl->fail_at) {
        sl->fail_at = at;
        sl->fail_rc = rc;
        memcpy(sl->err, err, sizeof sl->err);
    }
    pthread_mutex_unlock(&p->mu);
}

/* Encodes the claimed positions [first, first + CLAIM) (within the set) of chunk c, whose
 * slot is open; wakes the writer when that completes the chunk. The samples are looked up
 * and their bytes prefetched first, so that their cache misses overlap. */
static void encode_claim(struct encoder *e, uint64_t c, uint64_t first) {
    struct pool *p = e->pool;
    struct slot *sl = &p->slots[c % NSLOTS];
    struct arena *a = &sl->arenas[e->t];
    uint64_t end = first + CLAIM < p->count ? first + CLAIM : p->count;
    uint32_t at0 = (uint32_t)(first - c * p->chunk), n = (uint32_t)(end - first);
    struct ava_sample s[CLAIM];
    char err[AVA_ERRLEN];
    for (uint32_t k = 0; k < n; k++) {
        struct item *it = &sl->items[at0 + k];
        it->sample = p->order[first + k];
        it->arena = e->t;
        it->rc = ava_pack_get(p->pack, it->sample, &s[k], err);
        if (it->rc < 0)
            slot_fail(p, sl, at0 + k, it->rc, err);
    }
    for (uint32_t k = 0; k < n; k++) {
        size_t len = sl->items[at0 + k].rc < 0 ? 0 : s[k].len;
        for (size_t off = 0; off < len && off < PREFETCH_MAX; off += 64)
            __builtin_prefetch(s[k].data + off);
    }
    for (uint32_t k = 0; k < n; k++) {
        struct item *it = &sl->items[at0 + k];
        it->name_off = NO_NAME;
        it->data = NULL;
        it->len = 0;
        it->width = it->height = it->channels = 0;
        if (it->rc < 0)
            continue;
        it->label = s[k].label;
        size_t nlen = strlen(s[k].name) + 1;
        it->name_off = arena_take(a, nlen);
        memcpy(a->buf + it->name_off, s[k].name, nlen);
        it->rc = encode_item(e, &s[k], it, a, err);
        if (it->rc < 0)
            slot_fail(p, sl, at0 + k, it->rc, err);
    }
    uint32_t total = sl->n; /* read before: once done, the writer may reuse the slot */
    if (atomic_fetch_add_explicit(&sl->done, n, memory_order_acq_rel) + n == total) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Thread body of an encoding worker: claims and encodes samples until the set is done or
 * stopped, waiting while the writer is NSLOTS chunks behind. */
static void *encode_worker(void *arg) {
    struct encoder *e = arg;
    struct pool *p = e->pool;
    while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
        uint64_t i = atomic_fetch_add_explicit(&p->next, CLAIM, memory_order_relaxed);
        if (i >= p->count)
            break;
        uint64_t c = i / p->chunk;
        if (atomic_load_explicit(&p->open, memory_order_acquire) <= c) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->open, memory_order_acquire) <= c &&
                   !atomic_load_explicit(&p->stop, memory_order_relaxed))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            if (atomic_load_explicit(&p->stop, memory_order_relaxed))
                break;
        }
        encode_claim(e, c, i);
    }
    return NULL;
}

/* Readies slot c % NSLOTS for chunk c (when the set has one). */
static void slot_reset(struct pool *p, uint64_t c) {
    struct slot *sl = &p->slots[c % NSLOTS];
    uint64_t first = c * p->chunk;
    sl->n = first < p->count ? (uint32_t)(p->count - first < p->chunk ? p->count - first : p->chunk)
                             : 0;
    atomic_store_explicit(&sl->done, 0, memory_order_relaxed);
    sl->fail_at = UINT32_MAX;
    for (int t = 0; t < p->nthreads; t++)
        sl->arenas[t].len = 0;
}

/* The writer's wait for chunk c: it encodes claims of open chunks itself while there are
 * some, then sleeps until the chunk's last items are done. */
static void wait_chunk(struct encoder *self, uint64_t c) {
    struct pool *p = self->pool;
    struct slot *sl = &p->slots[c % NSLOTS];
    while (atomic_load_explicit(&sl->done, memory_order_acquire) < sl->n) {
        uint64_t i = atomic_load_explicit(&p->next, memory_order_relaxed);
        uint64_t open = atomic_load_explicit(&p->open, memory_order_relaxed);
        if (i < p->count && i / p->chunk < open) {
            if (atomic_compare_exchange_weak_explicit(&p->next, &i, i + CLAIM, memory_order_relaxed,
                                                      memory_order_relaxed))
                encode_claim(self, i / p->chunk, i);
            continue;
        }
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&sl->done, memory_order_acquire) < sl->n)
            pthread_cond_wait(&p->cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Samples per chunk: CHUNK_BYTES of payload by a guess from a few samples (their size, or the
 * pixels of encoded ones when known), between CHUNK_MIN and CHUNK_MAX, whole claims. */
static uint32_t chunk_size(const struct ava_pack *pack, const uint32_t *order, uint32_t count) {
    uint64_t sum = 0, n = 0;
    for (uint32_t k = 0; k < 16 && k < count; k++) {
        struct ava_sample s;
        if (ava_pack_get(pack, order[(uint64_t)count * k / 16], &s, NULL) < 0)
            continue;
        uint64_t px = (uint64_t)s.width * (uint64_t)s.height * 3;
        sum += s.pix == AVA_PIX_ENCODED && px > s.len ? px : s.len;
        n++;
    }
    uint64_t avg = n ? sum / n + 1 : 1, c = CHUNK_BYTES / avg;
    c = c < CHUNK_MIN ? CHUNK_MIN : c > CHUNK_MAX ? CHUNK_MAX : c;
    return (uint32_t)(c / CLAIM * CLAIM);
}

/* Starts the writer's helpers: nthreads - 1 workers with every signal blocked (signals stay
 * with the calling thread). Returns how many started. */
static int start_workers(struct encoder *enc, int nthreads) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int started = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&enc[t].th, NULL, encode_worker, &enc[t]) != 0)
            break; /* fewer threads: the writer encodes what the others do not */
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started;
}

/* Hints a borrowed payload about to be written into the cache (the pack is read in shuffled
 * order: its first bytes are a cache and TLB miss otherwise). */
static void prefetch_item(const struct item *it) {
    if (!it->data || it->rc < 0)
        return;
    size_t n = it->len < PREFETCH_MAX ? it->len : PREFETCH_MAX;
    for (size_t off = 0; off < n; off += 64)
        __builtin_prefetch(it->data + off);
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

/* Writes item number i of the set, its payload at data. */
static int set_writer_add(struct set_writer *w, uint32_t i, const struct item *it,
                          const char *item_name, const uint8_t *data, char *err) {
    if (w->format == AVA_FMT_RECORDIO) {
        int r = ava_recordio_write_image(w->rec, i, (float)it->label, i, data, it->len, err);
        return r < 0 ? r : ava_lst_add(w->lst, i, (float)it->label, item_name, err);
    }
    if (w->format == AVA_FMT_RAW) {
        char name[AVA_SAMPLE_NAME_MAX + 16];
        snprintf(name, sizeof name, "%s", item_name);
        if (it->width) { /* raw pixels get a .raw name, not the source's */
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
    return ava_lmdb_writer_put(w->lmdb, (int)i, item_name, &d, err);
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

/* Writes the chunks of the set in order as the encoders finish them: the calling thread
 * writes chunk k while the workers encode the chunks after it, and encodes too whenever it
 * waits. Stops at the first failure or a cancel. */
static int write_chunks(struct pool *p, struct encoder *self, struct set_writer *w,
                        struct run_progress *pr, char *err) {
    int r = 0;
    uint64_t nchunks = (p->count + p->chunk - 1) / p->chunk;
    for (uint64_t c = 0; r == 0 && c < nchunks; c++) {
        struct slot *sl = &p->slots[c % NSLOTS];
        wait_chunk(self, c);
        uint32_t at = (uint32_t)(c * p->chunk);
        for (uint32_t i = 0; i < sl->n && i < PREFETCH_AHEAD; i++)
            prefetch_item(&sl->items[i]);
        for (uint32_t i = 0; r == 0 && i < sl->n; i++) {
            const struct item *it = &sl->items[i];
            const uint8_t *abuf = sl->arenas[it->arena].buf;
            const char *name = it->name_off == NO_NAME ? "?" : (const char *)abuf + it->name_off;
            if (i + PREFETCH_AHEAD < sl->n)
                prefetch_item(&sl->items[i + PREFETCH_AHEAD]);
            if (it->rc < 0) /* the chunk's first failure (fail_at == i) */
                r = ava_err(err, it->rc, "sample %u (%s): %s", it->sample, name, sl->err);
            else
                r = set_writer_add(w, at + i, it, name, it->data ? it->data : abuf + it->off, err);
        }
        if (r == 0 && pr->fn && pr->fn(pr->ctx, pr->base + at + sl->n, pr->total))
            r = ava_err(err, AVA_ECONFLICT, "cancelled");
        if (r == 0 && c + NSLOTS < nchunks) { /* the slot takes chunk c + NSLOTS */
            slot_reset(p, c + NSLOTS);
            pthread_mutex_lock(&p->mu);
            atomic_store_explicit(&p->open, c + 1 + NSLOTS, memory_order_release);
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return r;
}

/* Thread body that unmaps a pack. */
static void *pack_close_main(void *arg) {
    ava_pack_close(arg);
    return NULL;
}

/* Unmaps the pack on a helper thread (with every signal blocked), so that tearing down its
 * mapping (a few ms for tens of MB) overlaps the set's closing fsync; closes it here when the
 * thread cannot start. Returns whether *th must be joined. */
static bool pack_close_start(struct ava_pack *pack, pthread_t *th) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    bool started = pthread_create(th, NULL, pack_close_main, pack) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started)
        ava_pack_close(pack);
    return started;
}

/* Writes the samples order[0..count) as one set into dir. When *release is non-NULL (the
 * last set), the pack is closed once every sample has been handed to the set's writer (which
 * keeps no pointer into it), and *release set to NULL. */
static int write_set(const struct ava_job_spec *spec, const struct ava_pack *pack,
                     const uint32_t *order, uint32_t count, const char *dir,
                     struct run_progress *pr, struct ava_pack **release, char *err) {
    struct set_writer w;
    int r = set_writer_open(&w, spec->format, dir, err);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = spec->threads ? spec->threads : (int)(cpus > 0 ? cpus : 1);
    if (nthreads > MAX_THREADS)
        nthreads = MAX_THREADS;
    if (r < 0 || count == 0)
        return set_writer_close(&w, r, err);
    struct pool *p = ava_xcalloc(1, sizeof *p);
    p->spec = spec;
    p->pack = pack;
    p->order = order;
    p->count = count;
    p->enc = effective_encoding(spec);
    p->chunk = chunk_size(pack, order, count);
    p->nthreads = nthreads;
    atomic_init(&p->next, 0);
    atomic_init(&p->open, NSLOTS);
    atomic_init(&p->stop, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int k = 0; k < NSLOTS; k++) {
        p->slots[k].items = ava_xcalloc(p->chunk, sizeof(struct item));
        p->slots[k].arenas = ava_xcalloc((size_t)nthreads, sizeof(struct arena));
        slot_reset(p, (uint64_t)k);
    }
    struct encoder *enc = ava_xcalloc((size_t)nthreads, sizeof *enc);
    for (int t = 0; t < nthreads; t++)
        enc[t] = (struct encoder){.pool = p, .t = t};
    int started = start_workers(enc, nthreads);
    r = write_chunks(p, &enc[0], &w, pr, err);
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t <= started; t++)
        pthread_join(enc[t].th, NULL);
    for (int t = 0; t < nthreads; t++)
        ava_jpeg_encoder_free(enc[t].jpeg);
    free(enc);
    for (int k = 0; k < NSLOTS; k++) {
        for (int t = 0; t < nthreads; t++)
            free(p->slots[k].arenas[t].buf);
        free(p->slots[k].arenas);
        free(p->slots[k].items);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    pthread_t closer;
    bool closing = *release && pack_close_start(*release, &closer);
    *release = NULL;
    r = set_writer_close(&w, r, err);
    if (closing)
        pthread_join(closer, NULL);
    return r;
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
        bool final = part + 1 == (spec->percent < 100 ? 2 : 1);
        struct ava_pack *release = final ? pack : NULL;
        if (r == 0)
            r = write_set(spec, pack, order + (part ? ntrain : 0), (uint32_t)s->samples, s->dir,
                          &pr, &release, err);
        if (final && !release)
            pack = NULL; /* write_set closed it */
        pr.base += s->samples;
        s->bytes = dir_bytes(s->dir);
        *nsets = part + 1;
    }
    free(order);
    free(labels);
    ava_pack_close(pack);
    return r;
}
