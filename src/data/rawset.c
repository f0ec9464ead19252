/* rawset.c: raw sets (files under their names plus list.lst) and im2rec .lst list writing. */
#include "rawset.h"

#include "sample.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/path.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIST_NAME "list.lst"
#define LIST_BUF_SIZE (256u << 10)
#define LIST_KICK (512u << 10) /* an im2rec list's writeback is started every 512 KiB */

/* Finds the first problem of a name, in the order ava_raw_name_check reports them. */
static int name_problem(const char *name, char *err) {
    if (!name || !name[0])
        return ava_err(err, AVA_EINVALID, "empty sample name");
    size_t n = strlen(name);
    if (n >= AVA_SAMPLE_NAME_MAX)
        return ava_err(err, AVA_EINVALID, "sample name of %zu bytes is too long", n);
    if (name[0] == '/')
        return ava_err(err, AVA_EINVALID, "sample name '%s' is absolute", name);
    if (strpbrk(name, "\t\r\n"))
        return ava_err(err, AVA_EINVALID, "sample name '%s' contains a tab or line break", name);
    for (const char *c = name;;) {
        const char *slash = strchr(c, '/');
        size_t len = slash ? (size_t)(slash - c) : strlen(c);
        if (len == 0)
            return ava_err(err, AVA_EINVALID, "sample name '%s' has an empty path component", name);
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return ava_err(err, AVA_EINVALID, "sample name '%s' has a '%.*s' component", name,
                           (int)len, c);
        if (!slash)
            return 0;
        c = slash + 1;
    }
}

/* One pass over a name that is fine (the usual case); any doubt goes to name_problem, which
 * names the problem. *len gets the name's length. */
static int name_check_len(const char *name, size_t *len, char *err) {
    if (!name || !name[0] || name[0] == '/')
        return name_problem(name, err);
    bool bad = false;
    size_t comp = 0, i = 0;
    for (;; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c > '/') /* neither a separator, a dot, a control character nor the end */
            continue;
        if (c == '\t' || c == '\r' || c == '\n')
            bad = true;
        if (c == '/' || c == '\0') {
            size_t l = i - comp;
            if (l == 0 || (l == 1 && name[comp] == '.') ||
                (l == 2 && name[comp] == '.' && name[comp + 1] == '.'))
                bad = true;
            comp = i + 1;
            if (c == '\0')
                break;
        }
    }
    if (bad || i >= AVA_SAMPLE_NAME_MAX)
        return name_problem(name, err);
    *len = i;
    return 0;
}

int ava_raw_name_check(const char *name, char *err) {
    size_t len;
    return name_check_len(name, &len, err);
}

/* Writes v in decimal at p; returns the end. */
static char *put_dec(char *p, uint64_t v) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Writes v as "%d" does; returns the end. */
static char *put_int(char *p, long long v) {
    if (v < 0) {
        *p++ = '-';
        return put_dec(p, (uint64_t)0 - (uint64_t)v);
    }
    return put_dec(p, (uint64_t)v);
}

/* Writes a label as "%f" does when it is a whole number (as class indices are): its digits
 * and ".000000". Returns the end, or NULL for any other value (then use printf). */
static char *put_label(char *p, double v) {
    if (!(v > -1e15 && v < 1e15) || v != (double)(long long)v || (v == 0 && signbit(v)))
        return NULL;
    p = put_int(p, (long long)v);
    memcpy(p, ".000000", 7);
    return p + 7;
}

/* Writes len bytes to fd, retrying short writes. Returns 0 or -1 with errno set. */
static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- raw sets ---- */

struct ava_raw_writer {
    char *dir;
    char list_path[AVA_PATH_MAX];
    FILE *list;
    char *list_vbuf;
    char made_dir[AVA_PATH_MAX]; /* the last subfolder created, to skip repeated mkdirs */
    uint64_t bytes;
};

int ava_raw_writer_open(const char *dir, struct ava_raw_writer **out, char *err) {
    *out = NULL;
    char path[AVA_PATH_MAX];
    int rc = ava_path_join(path, sizeof path, err, dir, LIST_NAME, NULL);
    if (rc || (rc = ava_mkdir_p(dir, 0755, err)))
        return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return ava_err(err, errno == EEXIST ? AVA_EEXISTS : AVA_EIO, "cannot create %s: %s", path,
                       strerror(errno));
    struct ava_raw_writer *w = ava_xcalloc(1, sizeof *w);
    w->list = fdopen(fd, "w");
    if (!w->list) {
        close(fd);
        free(w);
        return ava_err(err, AVA_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    w->list_vbuf = ava_xmalloc(LIST_BUF_SIZE);
    setvbuf(w->list, w->list_vbuf, _IOFBF, LIST_BUF_SIZE);
    w->dir = ava_xstrdup(dir);
    memcpy(w->list_path, path, sizeof path);
    *out = w;
    return 0;
}

/* Joins DIR with the name's components into out, creating the folders between them. */
static int make_file_path(struct ava_raw_writer *w, const char *name, char *out, size_t outlen,
                          char *err) {
    char comp[AVA_SAMPLE_NAME_MAX];
    snprintf(out, outlen, "%s", w->dir);
    for (const char *c = name;;) {
        const char *slash = strchr(c, '/');
        size_t len = slash ? (size_t)(slash - c) : strlen(c);
        memcpy(comp, c, len);
        comp[len] = '\0';
        char next[AVA_PATH_MAX];
        int rc = ava_path_join(next, sizeof next, err, out, comp, NULL);
        if (rc)
            return rc;
        memcpy(out, next, strlen(next) + 1);
        if (!slash)
            return 0;
        if (strcmp(out, w->made_dir) != 0) {
            if (mkdir(out, 0755) < 0 && errno != EEXIST)
                return ava_err(err, AVA_EIO, "cannot create directory %s: %s", out,
                               strerror(errno));
            snprintf(w->made_dir, sizeof w->made_dir, "%s", out);
        }
        c = slash + 1;
    }
}

/* Creates a new file at path holding data; refuses an existing one. */
static int write_new_file(const char *path, const void *data, size_t len, char *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return ava_err(err, errno == EEXIST ? AVA_EEXISTS : AVA_EIO, "cannot create %s: %s", path,
                       errno == EEXIST ? "a sample of that name was already written"
                                       : strerror(errno));
    if (write_all(fd, data, len) < 0) {
        int e = errno;
        close(fd);
        return ava_err(err, AVA_EIO, "cannot write %s: %s", path, strerror(e));
    }
    if (close(fd) < 0)
        return ava_err(err, AVA_EIO, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

int ava_raw_write(struct ava_raw_writer *w, uint32_t index, int label, const char *name,
                  const void *data, size_t len, char *err) {
    int rc = ava_raw_name_check(name, err);
    if (rc)
        return rc;
    char path[AVA_PATH_MAX];
    if ((rc = make_file_path(w, name, path, sizeof path, err)) ||
        (rc = write_new_file(path, data, len, err)))
        return rc;
    char line[AVA_SAMPLE_NAME_MAX + 32], *e = put_dec(line, index); /* "%u\t%d\t%s\n" */
    *e++ = '\t';
    e = put_int(e, label);
    *e++ = '\t';
    size_t nlen = strlen(name); /* < AVA_SAMPLE_NAME_MAX: checked above */
    memcpy(e, name, nlen);
    e += nlen;
    *e++ = '\n';
    size_t n = (size_t)(e - line);
    if (fwrite_unlocked(line, 1, n, w->list) != n)
        return ava_err(err, AVA_EIO, "cannot write %s: %s", w->list_path, strerror(errno));
    w->bytes += len + (uint64_t)n;
    return 0;
}

uint64_t ava_raw_writer_bytes(const struct ava_raw_writer *w) {
    return w->bytes;
}

int ava_raw_writer_close(struct ava_raw_writer *w, char *err) {
    if (!w)
        return 0;
    int rc = ava_file_close_synced(w->list, w->list_path, 0, err);
    /* one syncfs covers every file written, instead of an fsync per sample */
    int fd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0 || fsync(fd) < 0) {
        if (rc == 0)
            rc = ava_err(err, AVA_EIO, "cannot sync %s: %s", w->dir, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    free(w->list_vbuf);
    free(w->dir);
    free(w);
    return rc;
}

/* ---- im2rec lists ---- */

struct ava_lst_writer {
    FILE *f;
    char *path;
    char *vbuf;
    size_t unkicked; /* bytes added since the list's writeback was last started */
};

/* Every LIST_KICK bytes, writes the list out and starts its writeback, so that the fsync of
 * close finds little left. Returns false when the write fails. */
static bool lst_kick(struct ava_lst_writer *w, size_t added) {
    w->unkicked += added;
    if (w->unkicked < LIST_KICK)
        return true;
    w->unkicked = 0;
    if (fflush_unlocked(w->f) != 0)
        return false;
    /* advisory: a failure here shows up again at the fsync of close */
    sync_file_range(fileno_unlocked(w->f), 0, 0, SYNC_FILE_RANGE_WRITE);
    return true;
}

int ava_lst_open(const char *path, struct ava_lst_writer **out, char *err) {
    *out = NULL;
    FILE *f = fopen(path, "w");
    if (!f)
        return ava_err(err, AVA_EIO, "cannot create %s: %s", path, strerror(errno));
    struct ava_lst_writer *w = ava_xcalloc(1, sizeof *w);
    w->f = f;
    w->path = ava_xstrdup(path);
    w->vbuf = ava_xmalloc(LIST_BUF_SIZE);
    setvbuf(f, w->vbuf, _IOFBF, LIST_BUF_SIZE);
    *out = w;
    return 0;
}

int ava_lst_add_multi(struct ava_lst_writer *w, uint32_t index, const double *labels, size_t n,
                      const char *name, char *err) {
    if (n == 0)
        return ava_err(err, AVA_EINVALID, "a list line needs at least one label");
    size_t nlen;
    int rc = name_check_len(name, &nlen, err);
    if (rc)
        return rc;
    /* the usual line, one whole-number label, is put together here; anything else is
     * printf'd: '%d\t' % index, '%f\t' % label for each label, '%s\n' % name */
    char line[AVA_SAMPLE_NAME_MAX + 64], *e = put_dec(line, index);
    *e++ = '\t';
    char *l = n == 1 ? put_label(e, labels[0]) : NULL;
    bool ok;
    if (l) {
        *l++ = '\t';
        memcpy(l, name, nlen);
        l += nlen;
        *l++ = '\n';
        ok = fwrite_unlocked(line, 1, (size_t)(l - line), w->f) == (size_t)(l - line) &&
             lst_kick(w, (size_t)(l - line));
    } else {
        ok = fwrite_unlocked(line, 1, (size_t)(e - line), w->f) == (size_t)(e - line);
        for (size_t i = 0; i < n && ok; i++)
            ok = fprintf(w->f, "%f\t", labels[i]) >= 0;
        ok = ok && fprintf(w->f, "%s\n", name) >= 0;
    }
    if (!ok)
        return ava_err(err, AVA_EIO, "cannot write %s: %s", w->path, strerror(errno));
    return 0;
}

int ava_lst_add(struct ava_lst_writer *w, uint32_t index, double label, const char *name,
                char *err) {
    return ava_lst_add_multi(w, index, &label, 1, name, err);
}

int ava_lst_close(struct ava_lst_writer *w, char *err) {
    if (!w)
        return 0;
    int rc = ava_file_close_synced(w->f, w->path, 0, err);
    free(w->vbuf);
    free(w->path);
    free(w);
    return rc;
}
