/* import.c: source specs ("KIND:ARGS"), dispatch to the per-format importers, the checks every
 * sample passes whatever its source, and the helpers the formats share (import_internal.h). */
#include "import.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "image.h"
#include "import_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kinds, in the order error messages list them. */
static const struct ava_import_format *const formats[] = {
    &ava_import_idx_format, &ava_import_cifar10_format,  &ava_import_imagefolder_format,
    &ava_import_lst_format, &ava_import_jsonlist_format,
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

struct ava_importer {
    const struct ava_import_format *fmt;
    void *state;
    int failed; /* the first error's code: every later call repeats it */
    char failmsg[AVA_ERRLEN];
};

/* Writes "idx:..., cifar10:PATH, ..." into out for the unknown-kind message. */
static void list_kinds(char *out, size_t outlen) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_FORMATS && used < outlen; i++) {
        int n = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", formats[i]->usage);
        used += n > 0 ? (size_t)n : 0;
    }
}

int ava_import_open(const char *spec, struct ava_importer **out, char *err) {
    *out = NULL;
    char kinds[400];
    list_kinds(kinds, sizeof kinds);
    const char *colon = spec ? strchr(spec, ':') : NULL;
    if (!colon)
        return ava_err(err, AVA_EINVALID, "source '%.100s' is not KIND:ARGS; kinds: %s",
                       spec ? spec : "", kinds);
    size_t klen = (size_t)(colon - spec);
    const struct ava_import_format *fmt = NULL;
    for (size_t i = 0; i < N_FORMATS; i++)
        if (strlen(formats[i]->kind) == klen && strncmp(formats[i]->kind, spec, klen) == 0)
            fmt = formats[i];
    if (!fmt)
        return ava_err(err, AVA_EINVALID, "unknown source kind '%.*s'; kinds: %s",
                       (int)(klen > 40 ? 40 : klen), spec, kinds);
    if (colon[1] == '\0')
        return ava_err(err, AVA_EINVALID, "source '%s' names no input; expected %s", spec,
                       fmt->usage);
    void *state = NULL;
    int rc = fmt->open(colon + 1, &state, err);
    if (rc < 0)
        return rc;
    struct ava_importer *im = ava_xcalloc(1, sizeof *im);
    im->fmt = fmt;
    im->state = state;
    *out = im;
    return 0;
}

/* The checks every sample passes: a label within the classes and a safe name. A format
 * makes its own, more specific, messages; these catch what a format let through. */
static int check_sample(struct ava_importer *im, const struct ava_sample *s, char *err) {
    const char *why = NULL;
    char shown[201];
    if (!s->name || !ava_import_name_ok(s->name, &why))
        return ava_err(err, AVA_EINVALID, "%s source: bad sample name '%s': %s", im->fmt->kind,
                       ava_import_printable(s->name, shown, sizeof shown), why ? why : "missing");
    int n = 0;
    im->fmt->classes(im->state, &n);
    if (s->label < 0 || s->label >= n)
        return ava_err(err, AVA_EINVALID, "sample %s: label %d out of range (%d classes)", s->name,
                       s->label, n);
    if (s->pix != AVA_PIX_ENCODED &&
        (s->width <= 0 || s->height <= 0 ||
         s->len != (size_t)s->width * (size_t)s->height * (s->pix == AVA_PIX_RGB ? 3u : 1u)))
        return ava_err(err, AVA_EINTERNAL, "sample %s: %zu bytes do not match %dx%d", s->name,
                       s->len, s->width, s->height);
    return 0;
}

int ava_import_next(struct ava_importer *im, struct ava_sample *s, char *err) {
    if (im->failed) {
        if (err)
            memcpy(err, im->failmsg, AVA_ERRLEN);
        return im->failed;
    }
    memset(s, 0, sizeof *s);
    char msg[AVA_ERRLEN] = "";
    int rc = im->fmt->next(im->state, s, msg);
    if (rc == 1) {
        int bad = check_sample(im, s, msg);
        rc = bad < 0 ? bad : 1;
    }
    if (rc < 0) {
        im->failed = rc;
        memcpy(im->failmsg, msg, AVA_ERRLEN);
        memset(s, 0, sizeof *s);
        if (err)
            memcpy(err, msg, AVA_ERRLEN);
    }
    return rc;
}

const char *const *ava_import_classes(const struct ava_importer *im, int *n) {
    return im->fmt->classes(im->state, n);
}

int64_t ava_import_expected(const struct ava_importer *im) {
    return im->fmt->expected(im->state);
}

void ava_import_close(struct ava_importer *im) {
    if (!im)
        return;
    im->fmt->close(im->state);
    free(im);
}

/* ---- class tables ---- */

bool ava_import_class_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= AVA_CLASS_NAME_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

int ava_import_classes_add(struct ava_import_classes *c, const char *name, const char *where,
                           char *err) {
    char shown[101];
    if (!ava_import_class_name_ok(name))
        return ava_err(err, AVA_EINVALID,
                       "%s: bad class name '%s' (1..%d bytes, no control characters)", where,
                       ava_import_printable(name, shown, sizeof shown), AVA_CLASS_NAME_MAX - 1);
    if (c->n >= AVA_CLASSES_MAX)
        return ava_err(err, AVA_EINVALID, "%s: more than %d classes", where, AVA_CLASSES_MAX);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->names = ava_xrealloc(c->names, sizeof(char *) * (size_t)c->cap);
    }
    c->names[c->n] = ava_xstrdup(name);
    return c->n++;
}

int ava_import_classes_find(const struct ava_import_classes *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->names[i], name) == 0)
            return i;
    return -1;
}

void ava_import_classes_numeric(struct ava_import_classes *c, int upto) {
    while (c->n <= upto) {
        char num[16];
        snprintf(num, sizeof num, "%d", c->n);
        ava_import_classes_add(c, num, "", NULL);
    }
}

void ava_import_classes_free(struct ava_import_classes *c) {
    for (int i = 0; i < c->n; i++)
        free(c->names[i]);
    free(c->names);
    memset(c, 0, sizeof *c);
}

/* ---- names and paths ---- */

bool ava_import_name_ok(const char *name, const char **why) {
    size_t n = strlen(name);
    *why = NULL;
    if (n == 0 || n > AVA_SAMPLE_NAME_MAX)
        *why = n ? "longer than AVA_SAMPLE_NAME_MAX bytes" : "empty";
    else if (name[0] == '/')
        *why = "absolute";
    for (const char *c = name; !*why;) {
        size_t len = strcspn(c, "/");
        if (len == 0 || (len == 1 && c[0] == '.'))
            *why = "empty or '.' component";
        else if (len == 2 && c[0] == '.' && c[1] == '.')
            *why = "'..' component";
        if (c[len] == '\0')
            break;
        c += len + 1;
    }
    for (const unsigned char *p = (const unsigned char *)name; !*why && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *why = "control character (tab, newline...)";
    return *why == NULL;
}

bool ava_import_relpath(const char *in, char *out, size_t outlen, const char **why) {
    *why = NULL;
    if (in[0] == '/') {
        *why = "absolute path";
        return false;
    }
    size_t used = 0;
    for (const char *c = in; *c;) {
        size_t len = strcspn(c, "/");
        if (len == 2 && c[0] == '.' && c[1] == '.') {
            *why = "'..' component";
            return false;
        }
        if (len > 0 && !(len == 1 && c[0] == '.')) {
            if (used + (used > 0) + len >= outlen) {
                *why = "path too long";
                return false;
            }
            if (used > 0)
                out[used++] = '/';
            memcpy(out + used, c, len);
            used += len;
        }
        c += len;
        if (*c == '/')
            c++;
    }
    out[used] = '\0';
    if (used == 0)
        *why = "empty path";
    return used > 0 && ava_import_name_ok(out, why);
}

bool ava_import_split_pair(const char *s, char *a, char *b, size_t outlen) {
    const char *comma = strchr(s, ',');
    if (!comma || strchr(comma + 1, ','))
        return false;
    size_t alen = (size_t)(comma - s), blen = strlen(comma + 1);
    if (alen == 0 || blen == 0 || alen >= outlen || blen >= outlen)
        return false;
    memcpy(a, s, alen);
    a[alen] = '\0';
    memcpy(b, comma + 1, blen + 1);
    return true;
}

const char *ava_import_printable(const char *s, char *out, size_t outlen) {
    size_t n = 0;
    for (; s && s[n] && n + 1 < outlen; n++)
        out[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    out[n] = '\0';
    return out;
}

int ava_import_realdir(const char *path, const char *what, char out[PATH_MAX], char *err) {
    struct stat st;
    if (!realpath(path, out) || stat(out, &st) < 0)
        return ava_err(err, errno == ENOENT ? AVA_ENOTFOUND : AVA_EIO, "%s %s: %s", what, path,
                       strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ava_err(err, AVA_EINVALID, "%s %s is not a directory", what, path);
    return 0;
}

/* ---- list files ---- */

int ava_import_lines_open(struct ava_import_lines *l, const char *path, char *err) {
    memset(l, 0, sizeof *l);
    l->f = fopen(path, "re");
    if (!l->f)
        return ava_err(err, errno == ENOENT ? AVA_ENOTFOUND : AVA_EIO, "cannot open %s: %s", path,
                       strerror(errno));
    /* one cheap pass for the expected count (progress); no line is kept */
    bool content = false;
    for (int ch; (ch = getc_unlocked(l->f)) != EOF;) {
        if (ch == '\n') {
            l->nonblank += content;
            content = false;
        } else if (ch != ' ' && ch != '\t' && ch != '\r') {
            content = true;
        }
    }
    l->nonblank += content;
    if (ferror(l->f) || fseek(l->f, 0, SEEK_SET) < 0) {
        int e = errno;
        fclose(l->f);
        l->f = NULL;
        return ava_err(err, AVA_EIO, "cannot read %s: %s", path, strerror(e));
    }
    l->path = ava_xstrdup(path);
    l->buf = ava_xmalloc(AVA_IMPORT_LINE_MAX + 2);
    return 0;
}

int ava_import_lines_next(struct ava_import_lines *l, char **line, char *err) {
    for (;;) {
        if (!fgets(l->buf, AVA_IMPORT_LINE_MAX + 2, l->f)) {
            if (ferror(l->f))
                return ava_err(err, AVA_EIO, "cannot read %s after line %lld: %s", l->path,
                               (long long)l->lineno, strerror(errno));
            return 0;
        }
        l->lineno++;
        size_t n = strlen(l->buf);
        if (n > 0 && l->buf[n - 1] == '\n')
            l->buf[--n] = '\0';
        else if (!feof(l->f))
            return ava_err(err, AVA_EINVALID, "%s line %lld is longer than %d bytes", l->path,
                           (long long)l->lineno, AVA_IMPORT_LINE_MAX);
        if (n > 0 && l->buf[n - 1] == '\r')
            l->buf[--n] = '\0';
        if (l->buf[strspn(l->buf, " \t")] != '\0') {
            *line = l->buf;
            return 1;
        }
    }
}

void ava_import_lines_close(struct ava_import_lines *l) {
    if (l->f)
        fclose(l->f);
    free(l->path);
    free(l->buf);
    memset(l, 0, sizeof *l);
}

/* ---- image files ---- */

/* Reads the (regular) file at path whole into b. */
static int read_whole(const char *path, const char *what, struct ava_buf *b, char *err) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block us */
    if (fd < 0)
        return ava_err(err, AVA_EIO, "%s: cannot open %s: %s", what, path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        rc = ava_err(err, AVA_EIO, "%s: %s is not a regular file", what, path);
    else if ((uint64_t)st.st_size > AVA_IMPORT_FILE_MAX)
        rc = ava_err(err, AVA_ETOOLARGE, "%s: %s is larger than %u MiB", what, path,
                     AVA_IMPORT_FILE_MAX >> 20);
    ava_buf_reset(b);
    char chunk[65536];
    while (rc == 0) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = ava_err(err, AVA_EIO, "%s: cannot read %s: %s", what, path, strerror(errno));
        else if (n == 0)
            break;
        else if (b->len + (size_t)n > AVA_IMPORT_FILE_MAX)
            rc = ava_err(err, AVA_ETOOLARGE, "%s: %s grew past %u MiB", what, path,
                         AVA_IMPORT_FILE_MAX >> 20);
        else
            ava_buf_append(b, chunk, (size_t)n);
    }
    close(fd);
    return rc;
}

int ava_import_read_image(struct ava_import_reader *r, const char *root_real, const char *path,
                          const char *what, struct ava_sample *s, char *err) {
    char real[PATH_MAX];
    if (!realpath(path, real))
        return ava_err(err, AVA_EIO, "%s: cannot read %s: %s", what, path, strerror(errno));
    if (root_real) {
        size_t n = strlen(root_real);
        bool inside = strcmp(root_real, "/") == 0 ||
                      (strncmp(real, root_real, n) == 0 && (real[n] == '/' || real[n] == '\0'));
        if (!inside)
            return ava_err(err, AVA_EFORBIDDEN, "%s: %s leads to %s, outside %s (refused)", what,
                           path, real, root_real);
    }
    int rc = read_whole(real, what, &r->buf, err);
    if (rc < 0)
        return rc;
    const uint8_t *data = (const uint8_t *)r->buf.data;
    if (ava_image_sniff(data, r->buf.len) == AVA_IMAGE_UNKNOWN)
        return ava_err(err, AVA_EINVALID, "%s: %s is neither JPEG nor PNG", what, path);
    struct ava_pixels px;
    char why[AVA_ERRLEN];
    if (ava_image_decode(data, r->buf.len, &px, why) < 0)
        return ava_err(err, AVA_EINVALID, "%s: %s", what, why);
    s->pix = AVA_PIX_ENCODED;
    s->data = data;
    s->len = r->buf.len;
    s->width = px.width;
    s->height = px.height;
    ava_image_pixels_free(&px);
    return 0;
}

void ava_import_reader_free(struct ava_import_reader *r) {
    ava_buf_free(&r->buf);
}
