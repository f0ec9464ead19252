/* pack.c: the dataset pack (samples.dat + samples.idx): a streaming buffered writer and an
 * mmap reader that checks every record against the file bounds before handing it out. */
#include "pack.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PACK_DAT "samples.dat"
#define PACK_IDX "samples.idx"
#define PACK_HEADER 24          /* the fixed part of a record */
#define PACK_WBUF (1024 * 1024) /* stdio buffer of the writer's data file */

struct ava_pack_writer {
    FILE *dat, *idx;
    char dat_path[AVA_PATH_MAX], idx_path[AVA_PATH_MAX];
    uint64_t offset; /* where the next record starts in samples.dat */
    uint32_t count;
    int failed; /* a write failed: the files are inconsistent and close reports it */
};

struct ava_pack {
    const uint8_t *dat, *idx; /* NULL for an empty file (nothing to map) */
    size_t dat_len, idx_len;
    uint32_t count;
};

/* ---- writer ---- */

/* Opens path for writing (truncating) with a stdio buffer of bufsize bytes. */
static int open_out(const char *path, size_t bufsize, FILE **out, char *err) {
    FILE *f = fopen(path, "wbe");
    if (!f)
        return ava_err(err, AVA_EIO, "cannot create %s: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, bufsize);
    *out = f;
    return 0;
}

int ava_pack_writer_open(const char *dir, struct ava_pack_writer **out, char *err) {
    *out = NULL;
    struct ava_pack_writer *w = ava_xcalloc(1, sizeof *w);
    int rc = ava_path_join(w->dat_path, sizeof w->dat_path, err, dir, PACK_DAT, NULL);
    if (rc == 0)
        rc = ava_path_join(w->idx_path, sizeof w->idx_path, err, dir, PACK_IDX, NULL);
    if (rc == 0)
        rc = open_out(w->dat_path, PACK_WBUF, &w->dat, err);
    if (rc == 0)
        rc = open_out(w->idx_path, 64 * 1024, &w->idx, err);
    if (rc < 0) {
        if (w->dat)
            fclose(w->dat);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

/* Refuses a sample that the record layout cannot hold or a reader would refuse. */
static int check_sample(const struct ava_sample *s, size_t name_len, uint32_t index, char *err) {
    if (name_len == 0 || name_len > AVA_SAMPLE_NAME_MAX)
        return ava_err(err, AVA_EINVALID, "sample %u: name length %zu is not 1..%d", index,
                       name_len, AVA_SAMPLE_NAME_MAX);
    if (s->label < 0)
        return ava_err(err, AVA_EINVALID, "sample %u (%s): negative label %d", index, s->name,
                       s->label);
    if ((unsigned)s->pix > AVA_PIX_RGB)
        return ava_err(err, AVA_EINVALID, "sample %u (%s): unknown pixel kind %d", index, s->name,
                       (int)s->pix);
    if (s->width < 0 || s->height < 0)
        return ava_err(err, AVA_EINVALID, "sample %u (%s): negative size %dx%d", index, s->name,
                       s->width, s->height);
    if (s->len > UINT32_MAX)
        return ava_err(err, AVA_ETOOLARGE, "sample %u (%s): %zu bytes, the pack holds < 4 GiB",
                       index, s->name, s->len);
    if (s->len > 0 && !s->data)
        return ava_err(err, AVA_EINVALID, "sample %u (%s): no data", index, s->name);
    return 0;
}

/* Stores a u32 little-endian at p. */
static void put_u32(uint8_t *p, uint32_t v) {
    v = htole32(v);
    memcpy(p, &v, 4);
}

int ava_pack_add(struct ava_pack_writer *w, const struct ava_sample *s, char *err) {
    if (w->failed)
        return ava_err(err, AVA_EIO, "%s: an earlier write failed", w->dat_path);
    if (w->count == UINT32_MAX)
        return ava_err(err, AVA_ETOOLARGE, "a pack holds at most %u samples", UINT32_MAX - 1);
    size_t name_len = s->name ? strlen(s->name) : 0;
    int rc = check_sample(s, name_len, w->count, err);
    if (rc < 0)
        return rc;
    uint8_t h[PACK_HEADER] = {0};
    put_u32(h, (uint32_t)s->label);
    h[4] = (uint8_t)s->pix;
    put_u32(h + 8, (uint32_t)s->width);
    put_u32(h + 12, (uint32_t)s->height);
    put_u32(h + 16, (uint32_t)name_len);
    put_u32(h + 20, (uint32_t)s->len);
    uint64_t off = htole64(w->offset);
    /* the name is written with its NUL so that readers can hand out a C string in place */
    if (fwrite(h, 1, sizeof h, w->dat) != sizeof h ||
        fwrite(s->name, 1, name_len + 1, w->dat) != name_len + 1 ||
        (s->len && fwrite(s->data, 1, s->len, w->dat) != s->len) ||
        fwrite(&off, 1, sizeof off, w->idx) != sizeof off) {
        w->failed = 1;
        return ava_err(err, AVA_EIO, "cannot write sample %u to %s: %s", w->count, w->dat_path,
                       strerror(errno));
    }
    w->offset += PACK_HEADER + name_len + 1 + s->len;
    w->count++;
    return 0;
}

/* Flushes, fsyncs and closes f; returns 0 or AVA_EIO naming path. */
static int close_synced(FILE *f, const char *path, char *err) {
    int e = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        e = errno;
    if (fclose(f) != 0 && !e)
        e = errno;
    if (e)
        return ava_err(err, AVA_EIO, "cannot write %s: %s", path, strerror(e));
    return 0;
}

/* fsyncs the directory holding path, so that newly created entries survive a crash. */
static void sync_parent(const char *path) {
    char dir[AVA_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int ava_pack_writer_close(struct ava_pack_writer *w, char *err) {
    if (!w)
        return 0;
    char e2[AVA_ERRLEN];
    int rc = close_synced(w->dat, w->dat_path, err);
    int rc2 = close_synced(w->idx, w->idx_path, rc < 0 ? e2 : err);
    if (rc == 0 && rc2 == 0 && w->failed)
        rc = ava_err(err, AVA_EIO, "%s: incomplete, a write failed", w->dat_path);
    if (rc == 0 && rc2 == 0)
        sync_parent(w->dat_path);
    free(w);
    return rc < 0 ? rc : rc2;
}

/* ---- reader ---- */

/* Maps path read-only; an empty file gives *map = NULL, *len = 0. */
static int map_file(const char *path, const uint8_t **map, size_t *len, char *err) {
    *map = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ava_err(err, errno == ENOENT ? AVA_ENOTFOUND : AVA_EIO, "cannot open %s: %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        return ava_err(err, AVA_EIO, "cannot read %s: %s", path,
                       e ? strerror(e) : "not a regular file");
    }
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ava_err(err, AVA_EIO, "cannot map %s: %s", path, strerror(e));
        }
        *map = m;
        *len = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

int ava_pack_open(const char *dir, struct ava_pack **out, char *err) {
    *out = NULL;
    char dat[AVA_PATH_MAX], idx[AVA_PATH_MAX];
    int rc = ava_path_join(dat, sizeof dat, err, dir, PACK_DAT, NULL);
    if (rc == 0)
        rc = ava_path_join(idx, sizeof idx, err, dir, PACK_IDX, NULL);
    if (rc < 0)
        return rc;
    struct ava_pack *p = ava_xcalloc(1, sizeof *p);
    rc = map_file(dat, &p->dat, &p->dat_len, err);
    if (rc == 0)
        rc = map_file(idx, &p->idx, &p->idx_len, err);
    if (rc == 0 && p->idx_len % 8 != 0)
        rc = ava_err(err, AVA_EINVALID, "%s: size %zu is not a multiple of 8 (a truncated index)",
                     idx, p->idx_len);
    if (rc == 0 && p->idx_len / 8 >= UINT32_MAX)
        rc = ava_err(err, AVA_EINVALID, "%s: %zu entries, more than a pack holds", idx,
                     p->idx_len / 8);
    if (rc < 0) {
        ava_pack_close(p);
        return rc;
    }
    p->count = (uint32_t)(p->idx_len / 8);
    *out = p;
    return 0;
}

uint32_t ava_pack_count(const struct ava_pack *p) {
    return p->count;
}

/* The u32 little-endian at p. */
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

int ava_pack_get(const struct ava_pack *p, uint32_t i, struct ava_sample *s, char *err) {
    if (i >= p->count)
        return ava_err(err, AVA_EINVALID, "sample %u is past the pack's %u samples", i, p->count);
    uint64_t off;
    memcpy(&off, p->idx + (size_t)i * 8, 8);
    off = le64toh(off);
    if (off > p->dat_len || p->dat_len - off < PACK_HEADER)
        return ava_err(err, AVA_EINVALID,
                       "corrupt pack: sample %u's record header at offset %llu runs past the end "
                       "of samples.dat (%zu bytes)",
                       i, (unsigned long long)off, p->dat_len);
    const uint8_t *h = p->dat + off;
    uint32_t label = get_u32(h), width = get_u32(h + 8), height = get_u32(h + 12);
    uint32_t name_len = get_u32(h + 16), data_len = get_u32(h + 20);
    if (h[4] > AVA_PIX_RGB || label > INT_MAX || width > INT_MAX || height > INT_MAX)
        return ava_err(err, AVA_EINVALID,
                       "corrupt pack: sample %u has a bad header (pix %u, label %u, %ux%u)", i,
                       h[4], label, width, height);
    if (name_len == 0 || name_len > AVA_SAMPLE_NAME_MAX)
        return ava_err(err, AVA_EINVALID, "corrupt pack: sample %u has a name length of %u", i,
                       name_len);
    uint64_t rest = p->dat_len - off - PACK_HEADER;
    if ((uint64_t)name_len + 1 + data_len > rest)
        return ava_err(err, AVA_EINVALID,
                       "corrupt pack: sample %u (%u + %u bytes at offset %llu) overruns "
                       "samples.dat (%zu bytes)",
                       i, name_len, data_len, (unsigned long long)off, p->dat_len);
    const char *name = (const char *)h + PACK_HEADER;
    if (name[name_len] != '\0' || memchr(name, '\0', name_len))
        return ava_err(err, AVA_EINVALID, "corrupt pack: sample %u's name is not terminated", i);
    s->label = (int)label;
    s->name = name;
    s->pix = (enum ava_pix)h[4];
    s->width = (int)width;
    s->height = (int)height;
    s->data = (const uint8_t *)name + name_len + 1;
    s->len = data_len;
    return 0;
}

void ava_pack_close(struct ava_pack *p) {
    if (!p)
        return;
    if (p->dat)
        munmap((void *)p->dat, p->dat_len);
    if (p->idx)
        munmap((void *)p->idx, p->idx_len);
    free(p);
}
