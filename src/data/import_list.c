/* import_list.c: the list sources: im2rec's .lst (lst:FILE,ROOT) and AVA's jsonlist
 * (jsonlist:FILE), read one line at a time; each line names one image file.
 *
 * Names: a sample is named by its path relative to ROOT (lst) or to the list's folder
 * (jsonlist), with "." and empty components dropped ("./a//b.jpg" -> "a/b.jpg"). A jsonlist
 * file:// URL outside the list's folder is named by its absolute path without the leading
 * "/". Relative paths may not leave their folder, through ".." or through a symlink. */
#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"
#include "../common/strutil.h"
#include "import_internal.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct list {
    const char *kind;         /* "lst" or "jsonlist", for messages */
    char root_real[PATH_MAX]; /* ROOT, or the list's folder */
    struct ava_import_lines lines;
    struct ava_import_classes classes;
    enum { LABELS_UNSEEN, LABELS_NAMES, LABELS_INDICES } mode; /* jsonlist */
    struct ava_import_reader rd;
    char where[AVA_PATH_MAX + 64];     /* "lst FILE line N" */
    char sname[AVA_PATH_MAX];          /* the sample's name */
    char abs[PATH_MAX + AVA_PATH_MAX]; /* the file to read */
    char what[2 * AVA_PATH_MAX + 128];
};

static void list_close(void *state) {
    struct list *l = state;
    if (!l)
        return;
    ava_import_lines_close(&l->lines);
    ava_import_classes_free(&l->classes);
    ava_import_reader_free(&l->rd);
    free(l);
}

/* Opens the list and resolves the folder its relative paths start from. */
static int list_open_common(const char *kind, const char *file, const char *root, void **state,
                            char *err) {
    struct list *l = ava_xcalloc(1, sizeof *l);
    l->kind = kind;
    char what[64];
    snprintf(what, sizeof what, "%s %s", kind, strcmp(kind, "lst") ? "list folder" : "root");
    int rc = ava_import_realdir(root, what, l->root_real, err);
    if (rc == 0)
        rc = ava_import_lines_open(&l->lines, file, err);
    if (rc < 0) {
        list_close(l);
        return rc;
    }
    *state = l;
    return 0;
}

static int lst_open(const char *args, void **state, char *err) {
    char file[AVA_PATH_MAX], root[AVA_PATH_MAX];
    if (!ava_import_split_pair(args, file, root, sizeof file))
        return ava_err(err, AVA_EINVALID,
                       "lst source '%.200s': expected FILE,ROOT (the list, a comma, the folder "
                       "its paths are relative to)",
                       args);
    return list_open_common("lst", file, root, state, err);
}

static int jsonlist_open(const char *args, void **state, char *err) {
    char dir[AVA_PATH_MAX];
    if (strlen(args) >= sizeof dir)
        return ava_err(err, AVA_EINVALID, "jsonlist source: path too long");
    snprintf(dir, sizeof dir, "%s", args);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        slash[slash == dir] = '\0'; /* "/x.json" -> "/" */
    return list_open_common("jsonlist", args, dir, state, err);
}

/* Reads the image at l->abs as the sample named l->sname with the given label. */
static int list_sample(struct list *l, const char *root_real, int label, struct ava_sample *s,
                       char *err) {
    snprintf(l->what, sizeof l->what, "%s (%s)", l->where, l->sname);
    int rc = ava_import_read_image(&l->rd, root_real, l->abs, l->what, s, err);
    if (rc < 0)
        return rc;
    s->label = label;
    s->name = l->sname;
    return 1;
}

/* Sets l->sname (normalised) and l->abs from a path relative to the root. */
static int list_relpath(struct list *l, const char *path, const char *hint, char *err) {
    const char *why = NULL;
    char shown[201];
    if (!ava_import_relpath(path, l->sname, sizeof l->sname, &why))
        return ava_err(err, AVA_EINVALID, "%s: path '%s' refused: %s%s", l->where,
                       ava_import_printable(path, shown, sizeof shown), why,
                       path[0] == '/' ? hint : "");
    snprintf(l->abs, sizeof l->abs, "%s/%s", l->root_real, l->sname);
    return 0;
}

/* Parses an im2rec label ("3", "3.000000"): a whole number within 0..AVA_CLASSES_MAX-1. */
static int lst_label(struct list *l, const char *text, int *out, char *err) {
    char *end = NULL;
    bool chars_ok = text[0] && strspn(text, "0123456789.eE+-") == strlen(text);
    double v = chars_ok ? strtod(text, &end) : 0;
    if (!chars_ok || !end || *end)
        return ava_err(err, AVA_EINVALID, "%s: label '%.40s' is not a number", l->where, text);
    if (v < 0 || v >= AVA_CLASSES_MAX)
        return ava_err(err, AVA_EINVALID, "%s: label %s out of range (0..%d)", l->where, text,
                       AVA_CLASSES_MAX - 1);
    if (v != (double)(int)v)
        return ava_err(err, AVA_EINVALID, "%s: label %s is not a whole number", l->where, text);
    *out = (int)v;
    return 0;
}

/* Strips spaces at both ends in place, as im2rec strips each field. */
static char *trim(char *s) {
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

/* One line: index TAB label [TAB label...] TAB path; the first label is the class. */
static int lst_next(void *state, struct ava_sample *s, char *err) {
    struct list *l = state;
    char *line;
    int rc = ava_import_lines_next(&l->lines, &line, err);
    if (rc <= 0)
        return rc;
    snprintf(l->where, sizeof l->where, "lst %s line %lld", l->lines.path,
             (long long)l->lines.lineno);
    char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    if (!tab2)
        return ava_err(err, AVA_EINVALID, "%s: expected index<TAB>label<TAB>path", l->where);
    char *last = strrchr(line, '\t');
    *tab1 = *tab2 = *last = '\0';
    int64_t index;
    char why[AVA_ERRLEN];
    if (ava_parse_uint(trim(line), INT64_MAX, &index, why) < 0)
        return ava_err(err, AVA_EINVALID, "%s: bad index: %s", l->where, why);
    int label = 0;
    if ((rc = lst_label(l, trim(tab1 + 1), &label, err)) < 0 ||
        (rc = list_relpath(l, trim(last + 1), " (paths are relative to ROOT)", err)) < 0)
        return rc;
    ava_import_classes_numeric(&l->classes, label);
    return list_sample(l, l->root_real, label, s, err);
}

/* Decodes %XX escapes of a URL path into out; false on a bad escape or an escaped NUL. */
static bool percent_decode(const char *in, char *out, size_t outlen) {
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (n + 1 >= outlen)
            return false;
        if (*p != '%') {
            out[n++] = *p;
            continue;
        }
        if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
            return false;
        char hex[3] = {p[1], p[2], 0};
        out[n] = (char)strtol(hex, NULL, 16);
        if (out[n++] == '\0')
            return false;
        p += 2;
    }
    out[n] = '\0';
    return true;
}

/* Resolves a file:// URL (empty or "localhost" host) to l->abs and l->sname. */
static int json_file_url(struct list *l, const char *url, char *err) {
    char shown[201];
    ava_import_printable(url, shown, sizeof shown);
    const char *rest = url + strlen("file://");
    if (*rest != '/') {
        size_t hl = strcspn(rest, "/");
        if (hl != strlen("localhost") || strncasecmp(rest, "localhost", hl) != 0)
            return ava_err(err, AVA_EINVALID,
                           "%s: URL '%s' names a host; only local files are "
                           "supported",
                           l->where, shown);
        rest += hl;
    }
    char path[AVA_PATH_MAX];
    const char *why = NULL;
    if (*rest != '/' || !percent_decode(rest, path, sizeof path))
        return ava_err(err, AVA_EINVALID, "%s: bad file URL '%s'", l->where, shown);
    if (!ava_import_relpath(path + 1, l->sname, sizeof l->sname, &why))
        return ava_err(err, AVA_EINVALID, "%s: URL '%s' refused: %s", l->where, shown, why);
    snprintf(l->abs, sizeof l->abs, "/%s", l->sname);
    size_t rl = strlen(l->root_real);
    if (rl > 1 && strncmp(l->abs, l->root_real, rl) == 0 && l->abs[rl] == '/')
        memmove(l->sname, l->abs + rl + 1, strlen(l->abs + rl + 1) + 1);
    return 0;
}

/* Resolves a jsonlist url; *root_real is where the file must stay (NULL for file:// URLs,
 * which may name any absolute path). */
static int json_url(struct list *l, const char *url, const char **root_real, char *err) {
    size_t k = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    if (k > 0 && isalpha((unsigned char)url[0]) && strncmp(url + k, "://", 3) == 0) {
        char shown[201];
        if (k != 4 || strncasecmp(url, "file", 4) != 0)
            return ava_err(err, AVA_EINVALID,
                           "%s: only local paths and file:// URLs are supported, not '%s'",
                           l->where, ava_import_printable(url, shown, sizeof shown));
        *root_real = NULL;
        return json_file_url(l, url, err);
    }
    *root_real = l->root_real;
    return list_relpath(l, url, " (relative to the list's folder; use file:///PATH for others)",
                        err);
}

/* A label: a class name (classes numbered by first appearance) or a class index; one list
 * uses one kind, so that "3" and 3 cannot mean two classes. */
static int json_label(struct list *l, json_t *label, char *err) {
    if (json_is_string(label)) {
        if (l->mode == LABELS_INDICES)
            return ava_err(err, AVA_EINVALID, "%s: label is a name but earlier lines use indices",
                           l->where);
        l->mode = LABELS_NAMES;
        int i = ava_import_classes_find(&l->classes, json_string_value(label));
        return i >= 0
                   ? i
                   : ava_import_classes_add(&l->classes, json_string_value(label), l->where, err);
    }
    if (json_is_integer(label)) {
        if (l->mode == LABELS_NAMES)
            return ava_err(err, AVA_EINVALID, "%s: label is an index but earlier lines use names",
                           l->where);
        l->mode = LABELS_INDICES;
        json_int_t v = json_integer_value(label);
        if (v < 0 || v >= AVA_CLASSES_MAX)
            return ava_err(err, AVA_EINVALID, "%s: label %lld out of range (0..%d)", l->where,
                           (long long)v, AVA_CLASSES_MAX - 1);
        ava_import_classes_numeric(&l->classes, (int)v);
        return (int)v;
    }
    return ava_err(err, AVA_EINVALID,
                   "%s: \"label\" must be a class name (string) or a class index (integer)",
                   l->where);
}

/* One line: {"url": "...", "label": ...}; other keys are ignored. */
static int jsonlist_next(void *state, struct ava_sample *s, char *err) {
    struct list *l = state;
    char *line;
    int rc = ava_import_lines_next(&l->lines, &line, err);
    if (rc <= 0)
        return rc;
    snprintf(l->where, sizeof l->where, "jsonlist %s line %lld", l->lines.path,
             (long long)l->lines.lineno);
    json_error_t je;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return ava_err(err, AVA_EINVALID, "%s: malformed JSON: %s (column %d)", l->where, je.text,
                       je.column);
    json_t *url = json_object_get(o, "url");
    const char *root_real = NULL;
    if (!json_is_object(o))
        rc = ava_err(err, AVA_EINVALID, "%s: expected a JSON object", l->where);
    else if (!json_is_string(url) || json_string_length(url) == 0)
        rc = ava_err(err, AVA_EINVALID, "%s: \"url\" must be a non-empty string", l->where);
    else if (strlen(json_string_value(url)) != json_string_length(url))
        rc = ava_err(err, AVA_EINVALID, "%s: \"url\" holds a NUL character", l->where);
    else if ((rc = json_label(l, json_object_get(o, "label"), err)) >= 0) {
        int label = rc;
        rc = json_url(l, json_string_value(url), &root_real, err);
        if (rc == 0)
            rc = label;
    }
    json_decref(o);
    if (rc < 0)
        return rc;
    return list_sample(l, root_real, rc, s, err);
}

static const char *const *list_classes(const void *state, int *n) {
    const struct list *l = state;
    *n = l->classes.n;
    return (const char *const *)l->classes.names;
}

static int64_t list_expected(const void *state) {
    return ((const struct list *)state)->lines.nonblank;
}

const struct ava_import_format ava_import_lst_format = {
    .kind = "lst",
    .usage = "lst:FILE,ROOT",
    .open = lst_open,
    .next = lst_next,
    .classes = list_classes,
    .expected = list_expected,
    .close = list_close,
};

const struct ava_import_format ava_import_jsonlist_format = {
    .kind = "jsonlist",
    .usage = "jsonlist:FILE",
    .open = jsonlist_open,
    .next = jsonlist_next,
    .classes = list_classes,
    .expected = list_expected,
    .close = list_close,
};
