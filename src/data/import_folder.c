/* import_folder.c: the imagefolder source: DIR/<class>/.../<image>, classes being DIR's
 * subfolders in name order, walked like im2rec's sorted os.walk.
 *
 * Order: classes are DIR's subfolders sorted by strcmp (byte order, as Python sorts str),
 * numbered 0..N-1; files directly in DIR are ignored. Within a class folder, as os.walk
 * top-down with sorted lists: the folder's own image files by name, then each subfolder
 * (by name) the same way, recursively. Every image under a class folder, however deep, gets
 * that class's label (im2rec --recursive would give every folder its own label; a class is a
 * top-level folder here, as in torchvision's ImageFolder). Images are the files ending in
 * .jpg, .jpeg or .png, any case; other files are ignored; hidden files are not skipped.
 * Symlinks are followed (os.walk(followlinks=True)), but a file whose real path leaves DIR is
 * refused and a folder that is its own ancestor is an error (a loop). Memory: one sorted
 * name list per open folder level, never the images. */
#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"
#include "import_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define WALK_DEPTH 64

/* One open folder: its sorted image files and subfolders, and how far we are in each. */
struct level {
    char **files, **dirs;
    int nfiles, ndirs, ifile, idir;
    size_t parent_len; /* length of the walker's rel before this level was entered */
    dev_t dev;
    ino_t ino;
};

/* A depth-first walk over the class folders. */
struct walk {
    const char *root;
    dev_t rdev;
    ino_t rino;
    const struct ava_import_classes *classes;
    int cls; /* the class being walked; -1 before the first */
    int depth;
    struct level lv[WALK_DEPTH];
    char rel[AVA_PATH_MAX]; /* the current folder, relative to root */
};

struct folder {
    char root[AVA_PATH_MAX];
    char root_real[PATH_MAX];
    struct ava_import_classes classes;
    struct walk w;
    struct ava_import_reader rd;
    int64_t expected;
    char sname[AVA_PATH_MAX];
    char abs[2 * AVA_PATH_MAX];
    char what[3 * AVA_PATH_MAX];
};

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && dot != name &&
           (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static void push_name(char ***list, int *n, const char *name) {
    *list = ava_xrealloc(*list, sizeof(char *) * (size_t)(*n + 1));
    (*list)[(*n)++] = ava_xstrdup(name);
}

static void free_names(char **list, int n) {
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* Lists a folder: subfolders (symlinks followed) and image files, each sorted. Entries that
 * cannot be stat'ed (dangling symlinks) count as files, so that reading them fails loudly
 * rather than the image silently missing. */
static int list_dir(const char *abs, struct level *l, char *err) {
    DIR *d = opendir(abs);
    if (!d)
        return ava_err(err, AVA_EIO, "cannot read folder %s: %s", abs, strerror(errno));
    char child[2 * AVA_PATH_MAX];
    for (;;) {
        errno = 0; /* readdir reports errors only through errno; stat below sets it too */
        struct dirent *de = readdir(d);
        if (!de)
            break;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(child, sizeof child, "%s/%s", abs, de->d_name);
        struct stat st;
        bool ok = stat(child, &st) == 0;
        if (ok && S_ISDIR(st.st_mode))
            push_name(&l->dirs, &l->ndirs, de->d_name);
        else if (has_image_ext(de->d_name))
            push_name(&l->files, &l->nfiles, de->d_name);
    }
    int e = errno;
    closedir(d);
    if (e)
        return ava_err(err, AVA_EIO, "cannot read folder %s: %s", abs, strerror(e));
    if (l->files)
        qsort(l->files, (size_t)l->nfiles, sizeof(char *), cmp_str);
    if (l->dirs)
        qsort(l->dirs, (size_t)l->ndirs, sizeof(char *), cmp_str);
    return 0;
}

/* Enters the folder `name` under the current one (a class folder at depth 0). */
static int walk_push(struct walk *w, const char *name, char *err) {
    if (w->depth == WALK_DEPTH)
        return ava_err(err, AVA_EINVALID, "imagefolder %s: %s/%s is nested deeper than %d folders",
                       w->root, w->rel, name, WALK_DEPTH);
    size_t len = strlen(w->rel);
    int n = snprintf(w->rel + len, sizeof w->rel - len, "%s%s", len ? "/" : "", name);
    char abs[2 * AVA_PATH_MAX];
    snprintf(abs, sizeof abs, "%s/%s", w->root, w->rel);
    if (n < 0 || (size_t)n >= sizeof w->rel - len) {
        w->rel[len] = '\0';
        return ava_err(err, AVA_EINVALID, "imagefolder %s: path too long under %s", w->root,
                       w->rel);
    }
    struct level *l = &w->lv[w->depth];
    memset(l, 0, sizeof *l);
    l->parent_len = len;
    struct stat st;
    int rc = 0;
    if (stat(abs, &st) < 0)
        rc = ava_err(err, AVA_EIO, "cannot read folder %s: %s", abs, strerror(errno));
    bool loop = rc == 0 && st.st_dev == w->rdev && st.st_ino == w->rino;
    for (int i = 0; rc == 0 && i < w->depth; i++)
        loop = loop || (w->lv[i].dev == st.st_dev && w->lv[i].ino == st.st_ino);
    if (loop)
        rc = ava_err(err, AVA_EINVALID,
                     "imagefolder %s: %s leads back to a folder above it "
                     "(a symlink loop)",
                     w->root, w->rel);
    if (rc == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
        rc = list_dir(abs, l, err);
    }
    w->depth++; /* even on failure, so that walk_pop frees what list_dir gathered */
    return rc;
}

/* Leaves the current folder. */
static void walk_pop(struct walk *w) {
    struct level *l = &w->lv[--w->depth];
    free_names(l->files, l->nfiles);
    free_names(l->dirs, l->ndirs);
    w->rel[l->parent_len] = '\0';
    memset(l, 0, sizeof *l);
}

static int walk_init(struct walk *w, const char *root, const struct ava_import_classes *cls,
                     char *err) {
    memset(w, 0, sizeof *w);
    w->root = root;
    w->classes = cls;
    w->cls = -1;
    struct stat st;
    if (stat(root, &st) < 0)
        return ava_err(err, AVA_EIO, "cannot read folder %s: %s", root, strerror(errno));
    w->rdev = st.st_dev;
    w->rino = st.st_ino;
    return 0;
}

static void walk_free(struct walk *w) {
    while (w->depth > 0)
        walk_pop(w);
}

/* Fills out with the next image's path relative to root; 1, 0 at the end, < 0 on error. */
static int walk_next(struct walk *w, char *out, size_t outlen, char *err) {
    for (;;) {
        int rc;
        if (w->depth == 0) {
            if (w->cls + 1 >= w->classes->n)
                return 0;
            w->cls++;
            if ((rc = walk_push(w, w->classes->names[w->cls], err)) < 0)
                return rc;
            continue;
        }
        struct level *l = &w->lv[w->depth - 1];
        if (l->ifile < l->nfiles) {
            const char *name = l->files[l->ifile++];
            int n = snprintf(out, outlen, "%s/%s", w->rel, name);
            if (n < 0 || (size_t)n >= outlen)
                return ava_err(err, AVA_EINVALID, "imagefolder %s: path too long: %s/%s", w->root,
                               w->rel, name);
            return 1;
        }
        if (l->idir < l->ndirs) {
            if ((rc = walk_push(w, l->dirs[l->idir++], err)) < 0)
                return rc;
            continue;
        }
        walk_pop(w);
    }
}

static void folder_close(void *state) {
    struct folder *f = state;
    if (!f)
        return;
    walk_free(&f->w);
    ava_import_classes_free(&f->classes);
    ava_import_reader_free(&f->rd);
    free(f);
}

/* Lists the classes, then walks once without reading any image to count them (progress) and
 * to find loops and unreadable folders before the first sample. */
static int folder_open(const char *args, void **state, char *err) {
    struct folder *f = ava_xcalloc(1, sizeof *f);
    struct level top = {0};
    int rc = 0;
    if (strlen(args) >= sizeof f->root)
        rc = ava_err(err, AVA_EINVALID, "imagefolder source: path too long");
    else if ((rc = ava_import_realdir(args, "imagefolder", f->root_real, err)) == 0) {
        snprintf(f->root, sizeof f->root, "%s", args);
        rc = list_dir(f->root, &top, err);
    }
    char where[AVA_PATH_MAX + 32];
    snprintf(where, sizeof where, "imagefolder %s", args);
    for (int i = 0; rc == 0 && i < top.ndirs; i++)
        rc = ava_import_classes_add(&f->classes, top.dirs[i], where, err) < 0 ? AVA_EINVALID : 0;
    free_names(top.files, top.nfiles);
    free_names(top.dirs, top.ndirs);
    if (rc == 0 && f->classes.n == 0)
        rc = ava_err(err, AVA_EINVALID, "imagefolder %s has no class subfolders", args);
    if (rc == 0 && (rc = walk_init(&f->w, f->root, &f->classes, err)) == 0) {
        while ((rc = walk_next(&f->w, f->sname, sizeof f->sname, err)) == 1)
            f->expected++;
        walk_free(&f->w);
    }
    if (rc == 0)
        rc = walk_init(&f->w, f->root, &f->classes, err);
    if (rc < 0) {
        folder_close(f);
        return rc;
    }
    *state = f;
    return 0;
}

static int folder_next(void *state, struct ava_sample *s, char *err) {
    struct folder *f = state;
    int rc = walk_next(&f->w, f->sname, sizeof f->sname, err);
    if (rc <= 0)
        return rc;
    snprintf(f->abs, sizeof f->abs, "%s/%s", f->root, f->sname);
    char shown[AVA_PATH_MAX];
    snprintf(f->what, sizeof f->what, "imagefolder %s: %s", f->root,
             ava_import_printable(f->sname, shown, sizeof shown));
    if ((rc = ava_import_read_image(&f->rd, f->root_real, f->abs, f->what, s, err)) < 0)
        return rc;
    s->label = f->w.cls;
    s->name = f->sname;
    return 1;
}

static const char *const *folder_classes(const void *state, int *n) {
    const struct folder *f = state;
    *n = f->classes.n;
    return (const char *const *)f->classes.names;
}

static int64_t folder_expected(const void *state) {
    return ((const struct folder *)state)->expected;
}

const struct ava_import_format ava_import_imagefolder_format = {
    .kind = "imagefolder",
    .usage = "imagefolder:DIR",
    .open = folder_open,
    .next = folder_next,
    .classes = folder_classes,
    .expected = folder_expected,
    .close = folder_close,
};
