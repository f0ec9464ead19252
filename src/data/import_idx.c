/* import_idx.c: the idx source: MNIST-style IDX image/label file pairs (gzip or plain),
 * streamed through zlib one image at a time. */
#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"
#include "import_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 2051 /* 0x00000803: unsigned bytes, 3 dimensions */
#define IDX_LABELS_MAGIC 2049 /* 0x00000801: unsigned bytes, 1 dimension */
#define IDX_MAX_PAIRS 64
#define IDX_MAX_SIDE 4096
#define IDX_CLASSES 10

static const char *const fashion_names[IDX_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};
static const char *const digit_names[IDX_CLASSES] = {"0", "1", "2", "3", "4",
                                                     "5", "6", "7", "8", "9"};

struct idx_pair {
    char images[AVA_PATH_MAX], labels[AVA_PATH_MAX];
    char name[256]; /* the images file's base name without ".gz": the samples' folder */
    int64_t count;
    int rows, cols;
};

struct idx {
    struct idx_pair *pairs;
    int npairs, cur; /* cur: the pair being read */
    gzFile gi, gl;   /* the current pair's files, open while it is read */
    int64_t index;   /* next image of the current pair */
    int64_t expected;
    const char *const *classes;
    uint8_t *px;
    char sname[AVA_SAMPLE_NAME_MAX + 1];
};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads up to n bytes; returns how many (short only at the end) or -1 with *why set (zlib's
 * message, less the "path: " it puts before system errors). */
static int64_t gz_read_full(gzFile g, void *buf, size_t n, const char **why) {
    size_t got = 0;
    while (got < n) {
        int r = gzread(g, (char *)buf + got, (unsigned)(n - got));
        if (r < 0) {
            int zerr;
            *why = gzerror(g, &zerr);
            for (const char *p = *why; zerr == Z_ERRNO && (p = strstr(p, ": ")); p += 2)
                *why = p + 2;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

/* Checks a header's magic, naming what the file seems to be when it is the other kind. */
static int idx_check_magic(const char *path, uint32_t magic, uint32_t want, char *err) {
    if (magic == want)
        return 0;
    const char *seen = magic == IDX_IMAGES_MAGIC   ? " (an IDX image file)"
                       : magic == IDX_LABELS_MAGIC ? " (an IDX label file)"
                                                   : "";
    return ava_err(err, AVA_EINVALID,
                   "%s: wrong IDX magic %u%s, expected %u (%s); pairs are IMAGES,LABELS", path,
                   magic, seen, want, want == IDX_IMAGES_MAGIC ? "images" : "labels");
}

/* Opens an IDX file (gzip or plain), checks its magic and reads the rest of its header:
 * hdr[0] is the magic, then one word per dimension. */
static int idx_open_file(const char *path, uint32_t magic, uint32_t *hdr, int words, gzFile *out,
                         char *err) {
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return ava_err(err, errno == ENOENT ? AVA_ENOTFOUND : AVA_EIO, "cannot open %s: %s", path,
                       errno ? strerror(errno) : "out of memory");
    gzbuffer(g, 128 * 1024);
    uint8_t raw[16];
    const char *why = NULL;
    int rc = 0;
    int64_t got = gz_read_full(g, raw, 4, &why);
    if (got == 4)
        rc = idx_check_magic(path, be32(raw), magic, err);
    if (got == 4 && rc == 0)
        got = 4 + gz_read_full(g, raw + 4, (size_t)(words - 1) * 4, &why);
    if (rc == 0 && got != words * 4)
        rc = why ? ava_err(err, AVA_EIO, "cannot read %s: %s", path, why)
                 : ava_err(err, AVA_EINVALID, "truncated IDX header in %s (%lld bytes)", path,
                           (long long)got);
    if (rc < 0) {
        gzclose(g);
        return rc;
    }
    for (int i = 0; i < words; i++)
        hdr[i] = be32(raw + 4 * i);
    *out = g;
    return 0;
}

/* Opens both files of a pair and checks their headers; leaves them open in gi/gl. */
static int idx_open_pair(const struct idx_pair *p, struct idx_pair *hdr_out, gzFile *gi, gzFile *gl,
                         char *err) {
    uint32_t ih[4], lh[2];
    int rc = idx_open_file(p->images, IDX_IMAGES_MAGIC, ih, 4, gi, err);
    if (rc < 0)
        return rc;
    if ((rc = idx_open_file(p->labels, IDX_LABELS_MAGIC, lh, 2, gl, err)) < 0) {
        gzclose(*gi);
        *gi = NULL;
        return rc;
    }
    if (ih[2] == 0 || ih[3] == 0 || ih[2] > IDX_MAX_SIDE || ih[3] > IDX_MAX_SIDE) {
        rc = ava_err(err, AVA_EINVALID, "%s: image size %ux%u is not within 1..%d", p->images,
                     ih[2], ih[3], IDX_MAX_SIDE);
        goto fail;
    }
    if (ih[1] != lh[1]) {
        rc = ava_err(err, AVA_EINVALID, "label/image count mismatch: %u images, %u labels (%s, %s)",
                     ih[1], lh[1], p->images, p->labels);
        goto fail;
    }
    hdr_out->count = ih[1];
    hdr_out->rows = (int)ih[2];
    hdr_out->cols = (int)ih[3];
    return 0;
fail:
    gzclose(*gi);
    gzclose(*gl);
    *gi = *gl = NULL;
    return rc;
}

/* Fills a pair's paths and sample folder name from "IMAGES,LABELS". */
static int idx_parse_pair(const char *text, struct idx_pair *p, char *err) {
    if (!ava_import_split_pair(text, p->images, p->labels, sizeof p->images))
        return ava_err(err, AVA_EINVALID,
                       "idx source: '%.200s' is not IMAGES,LABELS (two paths joined by one comma; "
                       "pairs joined by '+')",
                       text);
    const char *slash = strrchr(p->images, '/');
    const char *base = slash ? slash + 1 : p->images;
    size_t n = strlen(base);
    if (n > 3 && strcmp(base + n - 3, ".gz") == 0)
        n -= 3;
    if (n == 0 || n >= sizeof p->name)
        return ava_err(err, AVA_EINVALID, "idx source: bad images file name '%s'", p->images);
    memcpy(p->name, base, n);
    p->name[n] = '\0';
    if (!ava_path_component_ok(p->name) || !ava_import_class_name_ok(p->name))
        return ava_err(err, AVA_EINVALID, "idx source: cannot name samples after '%s'", p->images);
    return 0;
}

/* True when the images file's name or folder says Fashion-MNIST. */
static bool idx_is_fashion(const char *images) {
    char dir[AVA_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", images);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return strcasestr(images, "fashion") != NULL;
    *slash = '\0';
    char *parent = strrchr(dir, '/');
    return strcasestr(slash + 1, "fashion") || strcasestr(parent ? parent + 1 : dir, "fashion");
}

static void idx_close(void *state) {
    struct idx *x = state;
    if (!x)
        return;
    if (x->gi)
        gzclose(x->gi);
    if (x->gl)
        gzclose(x->gl);
    free(x->pairs);
    free(x->px);
    free(x);
}

/* Splits the spec into pairs and checks every header up front (so counts are known and a
 * mismatch fails before any sample), keeping no file open. */
static int idx_open(const char *args, void **state, char *err) {
    struct idx *x = ava_xcalloc(1, sizeof *x);
    char *spec = ava_xstrdup(args);
    int rc = 0;
    size_t maxpx = 0;
    char *save = NULL;
    for (char *part = strtok_r(spec, "+", &save); part && rc == 0;
         part = strtok_r(NULL, "+", &save)) {
        if (x->npairs == IDX_MAX_PAIRS) {
            rc = ava_err(err, AVA_EINVALID, "idx source: more than %d pairs", IDX_MAX_PAIRS);
            break;
        }
        x->pairs = ava_xrealloc(x->pairs, sizeof *x->pairs * (size_t)(x->npairs + 1));
        struct idx_pair *p = &x->pairs[x->npairs++];
        memset(p, 0, sizeof *p);
        gzFile gi, gl;
        if ((rc = idx_parse_pair(part, p, err)) < 0 ||
            (rc = idx_open_pair(p, p, &gi, &gl, err)) < 0)
            break;
        gzclose(gi);
        gzclose(gl);
        for (int i = 0; i < x->npairs - 1; i++)
            if (strcmp(x->pairs[i].name, p->name) == 0)
                rc = ava_err(err, AVA_EINVALID, "idx source: two pairs name their samples '%s/'",
                             p->name);
        x->expected += p->count;
        if ((size_t)p->rows * (size_t)p->cols > maxpx)
            maxpx = (size_t)p->rows * (size_t)p->cols;
    }
    if (rc == 0 && x->npairs == 0)
        rc = ava_err(err, AVA_EINVALID, "idx source '%s': expected IMAGES,LABELS[+IMAGES,LABELS]",
                     args);
    free(spec);
    if (rc < 0) {
        idx_close(x);
        return rc;
    }
    x->classes = idx_is_fashion(x->pairs[0].images) ? fashion_names : digit_names;
    x->px = ava_xmalloc(maxpx);
    x->index = -1; /* the current pair is not open yet */
    *state = x;
    return 0;
}

/* Opens the current pair for reading, checking that its headers did not change. */
static int idx_start_pair(struct idx *x, char *err) {
    struct idx_pair *p = &x->pairs[x->cur], now;
    int rc = idx_open_pair(p, &now, &x->gi, &x->gl, err);
    if (rc < 0)
        return rc;
    if (now.count != p->count || now.rows != p->rows || now.cols != p->cols)
        return ava_err(err, AVA_EINVALID, "%s changed while it was being imported", p->images);
    x->index = 0;
    return 0;
}

/* Closes the current pair after its last image, refusing data past the declared count. */
static int idx_end_pair(struct idx *x, char *err) {
    struct idx_pair *p = &x->pairs[x->cur];
    uint8_t extra;
    const char *why = NULL;
    int rc = 0;
    if (gz_read_full(x->gi, &extra, 1, &why) != 0)
        rc = ava_err(err, AVA_EINVALID, "%s holds more data than its %lld images", p->images,
                     (long long)p->count);
    else if (gz_read_full(x->gl, &extra, 1, &why) != 0)
        rc = ava_err(err, AVA_EINVALID, "%s holds more data than its %lld labels", p->labels,
                     (long long)p->count);
    gzclose(x->gi);
    gzclose(x->gl);
    x->gi = x->gl = NULL;
    x->cur++;
    x->index = -1;
    return rc;
}

static int idx_next(void *state, struct ava_sample *s, char *err) {
    struct idx *x = state;
    int rc;
    while (x->cur < x->npairs) {
        struct idx_pair *p = &x->pairs[x->cur];
        if (x->index < 0 && (rc = idx_start_pair(x, err)) < 0)
            return rc;
        if (x->index == p->count) {
            if ((rc = idx_end_pair(x, err)) < 0)
                return rc;
            continue;
        }
        size_t npx = (size_t)p->rows * (size_t)p->cols;
        uint8_t label;
        const char *why = NULL;
        int64_t got = gz_read_full(x->gi, x->px, npx, &why);
        if (got != (int64_t)npx)
            return ava_err(err, got < 0 ? AVA_EIO : AVA_EINVALID,
                           "truncated IDX file %s at image %lld%s%s", p->images,
                           (long long)x->index, why ? ": " : "", why ? why : "");
        got = gz_read_full(x->gl, &label, 1, &why);
        if (got != 1)
            return ava_err(err, got < 0 ? AVA_EIO : AVA_EINVALID,
                           "truncated IDX file %s at label %lld%s%s", p->labels,
                           (long long)x->index, why ? ": " : "", why ? why : "");
        if (label >= IDX_CLASSES)
            return ava_err(err, AVA_EINVALID, "label %u out of range (0..%d) in %s at label %lld",
                           label, IDX_CLASSES - 1, p->labels, (long long)x->index);
        snprintf(x->sname, sizeof x->sname, "%s/%05lld.png", p->name, (long long)x->index);
        *s = (struct ava_sample){.label = label,
                                 .name = x->sname,
                                 .pix = AVA_PIX_GRAY,
                                 .width = p->cols,
                                 .height = p->rows,
                                 .data = x->px,
                                 .len = npx};
        x->index++;
        return 1;
    }
    return 0;
}

static const char *const *idx_classes(const void *state, int *n) {
    *n = IDX_CLASSES;
    return ((const struct idx *)state)->classes;
}

static int64_t idx_expected(const void *state) {
    return ((const struct idx *)state)->expected;
}

const struct ava_import_format ava_import_idx_format = {
    .kind = "idx",
    .usage = "idx:IMAGES,LABELS[+IMAGES,LABELS...]",
    .open = idx_open,
    .next = idx_next,
    .classes = idx_classes,
    .expected = idx_expected,
    .close = idx_close,
};
