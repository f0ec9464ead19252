/* import_cifar.c: the cifar10 source: the CIFAR-10 binary batches, from the official tarball
 * (streamed with libarchive) or from a folder holding the .bin files. */
#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/path.h"
#include "import_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_SIDE 32
#define CIFAR_PLANE (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_REC (1 + 3 * CIFAR_PLANE) /* label byte + R, G, B planes */
#define CIFAR_BATCHES 6
#define CIFAR_CLASSES 10
#define CIFAR_META "batches.meta.txt"
#define CIFAR_META_MAX 65536

/* The order samples come in, whatever order the tarball lists them in. */
static const char *const batch_files[CIFAR_BATCHES] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
    "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin",
};

struct cifar {
    char path[AVA_PATH_MAX];
    bool tar;
    int64_t size[CIFAR_BATCHES]; /* bytes of each batch */
    int ord[CIFAR_BATCHES];      /* tar: position of each batch among the tarball's entries */
    int64_t expected;
    struct ava_import_classes classes;
    int batch;      /* the batch being read; CIFAR_BATCHES at the end */
    bool reading;   /* the batch is open (f, or a positioned on its entry) */
    int64_t record; /* next record of the batch */
    FILE *f;
    struct archive *a;
    int next_ord; /* tar: position of the next header a would read */
    uint8_t rec[CIFAR_REC], rgb[3 * CIFAR_PLANE];
    char where[AVA_PATH_MAX + 64]; /* the batch, for messages */
    char sname[64];
};

/* Fills classes from batches.meta.txt: 10 non-empty lines (blank ones are skipped). */
static int cifar_parse_meta(struct cifar *c, const char *text, size_t len, const char *where,
                            char *err) {
    char *copy = ava_xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    int rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && rc >= 0;
         line = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        if (n > 0)
            rc = ava_import_classes_add(&c->classes, line, where, err);
    }
    free(copy);
    if (rc >= 0 && c->classes.n != CIFAR_CLASSES)
        rc = ava_err(err, AVA_EINVALID, "%s: expected %d class names, found %d", where,
                     CIFAR_CLASSES, c->classes.n);
    return rc < 0 ? rc : 0;
}

/* Checks a folder of batches: all six present; the class names when batches.meta.txt is. */
static int cifar_open_folder(struct cifar *c, char *err) {
    char p[AVA_PATH_MAX];
    int rc;
    for (int i = 0; i < CIFAR_BATCHES; i++) {
        struct stat st;
        if ((rc = ava_path_join(p, sizeof p, err, c->path, batch_files[i], NULL)) < 0)
            return rc;
        if (stat(p, &st) < 0)
            return ava_err(err, errno == ENOENT ? AVA_ENOTFOUND : AVA_EIO,
                           "cifar10 folder %s: cannot use %s: %s", c->path, batch_files[i],
                           strerror(errno));
        if (!S_ISREG(st.st_mode))
            return ava_err(err, AVA_EINVALID, "cifar10 folder %s: %s is not a regular file",
                           c->path, batch_files[i]);
        c->size[i] = st.st_size;
    }
    if ((rc = ava_path_join(p, sizeof p, err, c->path, CIFAR_META, NULL)) < 0)
        return rc;
    char *text = NULL;
    size_t len = 0;
    char why[AVA_ERRLEN];
    rc = ava_file_read_all(p, CIFAR_META_MAX, &text, &len, why);
    if (rc == AVA_ENOTFOUND)
        return 0;
    if (rc < 0)
        return ava_err(err, rc, "cifar10 folder %s: %s", c->path, why);
    rc = cifar_parse_meta(c, text, len, p, err);
    free(text);
    return rc;
}

/* The code for a libarchive failure: a system error is AVA_EIO (AVA_ENOTFOUND when the file
 * is missing); a bad format (EILSEQ, libarchive's "file format" errno on Linux) or a
 * libarchive-internal error (-1) is the data's fault: AVA_EINVALID. */
static int archive_code(struct archive *a) {
    int e = archive_errno(a);
    return e == ENOENT ? AVA_ENOTFOUND : e > 0 && e != EILSEQ ? AVA_EIO : AVA_EINVALID;
}

/* (Re)opens the tarball for a pass from its start. */
static int cifar_tar_reopen(struct cifar *c, char *err) {
    if (c->a)
        archive_read_free(c->a);
    c->a = archive_read_new();
    archive_read_support_filter_all(c->a);
    archive_read_support_format_tar(c->a);
    c->next_ord = 0;
    if (archive_read_open_filename(c->a, c->path, 1 << 16) != ARCHIVE_OK)
        return ava_err(err, archive_code(c->a), "cannot read tarball %s: %s", c->path,
                       archive_error_string(c->a));
    return 0;
}

/* Reads the next header; 1 with *e, 0 at the end, < 0 on error. */
static int cifar_tar_header(struct cifar *c, struct archive_entry **e, char *err) {
    int r = archive_read_next_header(c->a, e);
    if (r == ARCHIVE_EOF)
        return 0;
    if (r < ARCHIVE_WARN)
        return ava_err(err, archive_code(c->a), "cannot read tarball %s: %s", c->path,
                       archive_error_string(c->a));
    c->next_ord++;
    return 1;
}

/* The base name of an entry's path ("cifar-10-batches-bin/data_batch_1.bin" -> ...). */
static const char *entry_base(struct archive_entry *e) {
    const char *p = archive_entry_pathname(e);
    const char *slash = p ? strrchr(p, '/') : NULL;
    return slash ? slash + 1 : p ? p : "";
}

/* Reads the current entry's data (bounded) into a new buffer. */
static int cifar_tar_slurp(struct cifar *c, struct archive_entry *e, struct ava_buf *b, char *err) {
    if (archive_entry_size(e) > CIFAR_META_MAX)
        return ava_err(err, AVA_EINVALID, "tarball %s: %s is larger than %d bytes", c->path,
                       archive_entry_pathname(e), CIFAR_META_MAX);
    char chunk[8192];
    for (la_ssize_t n; (n = archive_read_data(c->a, chunk, sizeof chunk)) != 0;) {
        if (n < 0)
            return ava_err(err, archive_code(c->a), "cannot read tarball %s: %s", c->path,
                           archive_error_string(c->a));
        if (b->len + (size_t)n > CIFAR_META_MAX)
            return ava_err(err, AVA_EINVALID, "tarball %s: %s is too large", c->path,
                           archive_entry_pathname(e));
        ava_buf_append(b, chunk, (size_t)n);
    }
    return 0;
}

/* One pass over the tarball's headers: where each batch is, its size, the class names. */
static int cifar_open_tar(struct cifar *c, char *err) {
    for (int i = 0; i < CIFAR_BATCHES; i++)
        c->ord[i] = -1;
    int rc = cifar_tar_reopen(c, err);
    struct archive_entry *e;
    while (rc == 0 && (rc = cifar_tar_header(c, &e, err)) == 1) {
        rc = 0;
        if (archive_entry_filetype(e) != AE_IFREG)
            continue;
        const char *base = entry_base(e);
        if (strcmp(base, CIFAR_META) == 0 && c->classes.n == 0) {
            struct ava_buf b = {0};
            char where[AVA_PATH_MAX + 64];
            snprintf(where, sizeof where, "%s in %s", archive_entry_pathname(e), c->path);
            if ((rc = cifar_tar_slurp(c, e, &b, err)) == 0)
                rc = cifar_parse_meta(c, b.data ? b.data : "", b.len, where, err);
            ava_buf_free(&b);
        }
        for (int i = 0; i < CIFAR_BATCHES; i++) {
            if (strcmp(base, batch_files[i]) != 0)
                continue;
            if (c->ord[i] >= 0)
                rc = ava_err(err, AVA_EINVALID, "tarball %s holds %s twice", c->path, base);
            c->ord[i] = c->next_ord - 1;
            c->size[i] = archive_entry_size(e);
        }
    }
    for (int i = 0; rc == 0 && i < CIFAR_BATCHES; i++)
        if (c->ord[i] < 0)
            rc = ava_err(err, AVA_EINVALID,
                         "tarball %s holds no %s (not the CIFAR-10 binary version?)", c->path,
                         batch_files[i]);
    return rc;
}

static void cifar_close(void *state) {
    struct cifar *c = state;
    if (!c)
        return;
    if (c->f)
        fclose(c->f);
    if (c->a)
        archive_read_free(c->a);
    ava_import_classes_free(&c->classes);
    free(c);
}

static int cifar_open(const char *args, void **state, char *err) {
    struct cifar *c = ava_xcalloc(1, sizeof *c);
    struct stat st;
    int rc = 0;
    if (strlen(args) >= sizeof c->path)
        rc = ava_err(err, AVA_EINVALID, "cifar10 source: path too long");
    else if (stat(args, &st) < 0)
        rc = ava_err(err, errno == ENOENT ? AVA_ENOTFOUND : AVA_EIO, "cifar10 source %s: %s", args,
                     strerror(errno));
    if (rc == 0) {
        snprintf(c->path, sizeof c->path, "%s", args);
        c->tar = !S_ISDIR(st.st_mode);
        rc = c->tar ? cifar_open_tar(c, err) : cifar_open_folder(c, err);
    }
    if (rc < 0) {
        cifar_close(c);
        return rc;
    }
    if (c->classes.n == 0)
        ava_import_classes_numeric(&c->classes, CIFAR_CLASSES - 1);
    for (int i = 0; i < CIFAR_BATCHES; i++)
        c->expected += c->size[i] / CIFAR_REC;
    *state = c;
    return 0;
}

/* Positions the source on the current batch: opens its file, or moves the tarball stream to
 * its entry, going on from where the last batch ended when the entry lies ahead and starting
 * a new pass over the tarball only when it lies behind. */
static int cifar_start_batch(struct cifar *c, char *err) {
    const char *file = batch_files[c->batch];
    c->record = 0;
    if (!c->tar) {
        char p[AVA_PATH_MAX];
        int rc = ava_path_join(p, sizeof p, err, c->path, file, NULL);
        if (rc < 0)
            return rc;
        snprintf(c->where, sizeof c->where, "%s", p);
        if (!(c->f = fopen(p, "re")))
            return ava_err(err, AVA_EIO, "cannot open %s: %s", p, strerror(errno));
        c->reading = true;
        return 0;
    }
    snprintf(c->where, sizeof c->where, "%s in %s", file, c->path);
    int rc = 0;
    if (!c->a || c->next_ord > c->ord[c->batch])
        rc = cifar_tar_reopen(c, err);
    struct archive_entry *e = NULL;
    while (rc == 0 && c->next_ord <= c->ord[c->batch]) {
        rc = cifar_tar_header(c, &e, err);
        if (rc == 0)
            rc = ava_err(err, AVA_EINVALID, "tarball %s changed while it was being imported",
                         c->path);
        else if (rc == 1)
            rc = 0;
    }
    if (rc == 0 && (!e || strcmp(entry_base(e), file) != 0))
        rc = ava_err(err, AVA_EINVALID, "tarball %s changed while it was being imported", c->path);
    c->reading = rc == 0;
    return rc;
}

/* Reads up to one record; returns the bytes read (short only at the end) or < 0. */
static int64_t cifar_read_record(struct cifar *c, char *err) {
    size_t got = 0;
    while (got < CIFAR_REC) {
        if (!c->tar) {
            size_t n = fread(c->rec + got, 1, CIFAR_REC - got, c->f);
            if (n == 0 && ferror(c->f))
                return ava_err(err, AVA_EIO, "cannot read %s: %s", c->where, strerror(errno));
            if (n == 0)
                break;
            got += n;
            continue;
        }
        la_ssize_t n = archive_read_data(c->a, c->rec + got, CIFAR_REC - got);
        if (n < 0)
            return ava_err(err, archive_code(c->a), "cannot read %s: %s", c->where,
                           archive_error_string(c->a));
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (int64_t)got;
}

/* Ends the current batch (the tarball stays open, positioned after its entry). */
static void cifar_end_batch(struct cifar *c) {
    if (c->f)
        fclose(c->f);
    c->f = NULL;
    c->reading = false;
    c->batch++;
}

static int cifar_next(void *state, struct ava_sample *s, char *err) {
    struct cifar *c = state;
    while (c->batch < CIFAR_BATCHES) {
        int rc;
        if (!c->reading && (rc = cifar_start_batch(c, err)) < 0)
            return rc;
        int64_t got = cifar_read_record(c, err);
        if (got < 0)
            return (int)got;
        if (got == 0) {
            cifar_end_batch(c);
            continue;
        }
        if (got < CIFAR_REC)
            return ava_err(err, AVA_EINVALID, "short CIFAR record in %s: %lld bytes (record %lld)",
                           c->where, (long long)got, (long long)c->record);
        if (c->rec[0] >= CIFAR_CLASSES)
            return ava_err(err, AVA_EINVALID, "label %u out of range in %s record %lld", c->rec[0],
                           c->where, (long long)c->record);
        /* planar R, G, B -> interleaved RGB */
        const uint8_t *r = c->rec + 1, *g = r + CIFAR_PLANE, *b = g + CIFAR_PLANE;
        for (int i = 0; i < CIFAR_PLANE; i++) {
            c->rgb[3 * i] = r[i];
            c->rgb[3 * i + 1] = g[i];
            c->rgb[3 * i + 2] = b[i];
        }
        const char *file = batch_files[c->batch];
        snprintf(c->sname, sizeof c->sname, "%.*s/%05lld.png", (int)(strlen(file) - 4), file,
                 (long long)c->record);
        *s = (struct ava_sample){.label = c->rec[0],
                                 .name = c->sname,
                                 .pix = AVA_PIX_RGB,
                                 .width = CIFAR_SIDE,
                                 .height = CIFAR_SIDE,
                                 .data = c->rgb,
                                 .len = sizeof c->rgb};
        c->record++;
        return 1;
    }
    return 0;
}

static const char *const *cifar_classes(const void *state, int *n) {
    const struct cifar *c = state;
    *n = c->classes.n;
    return (const char *const *)c->classes.names;
}

static int64_t cifar_expected(const void *state) {
    return ((const struct cifar *)state)->expected;
}

const struct ava_import_format ava_import_cifar10_format = {
    .kind = "cifar10",
    .usage = "cifar10:TARBALL_OR_FOLDER",
    .open = cifar_open,
    .next = cifar_next,
    .classes = cifar_classes,
    .expected = cifar_expected,
    .close = cifar_close,
};
