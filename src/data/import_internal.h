/* import_internal.h: what the importer files share: the per-format table of functions that
 * import.c dispatches to, and helpers for class tables, sample names, list lines and image
 * files. Not for use outside src/data/import*.c. */
#ifndef AVA_DATA_IMPORT_INTERNAL_H
#define AVA_DATA_IMPORT_INTERNAL_H

#include "../common/buf.h"
#include "sample.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* One source kind. `open` parses the text after "KIND:" and creates the state that the other
 * functions receive; errors follow import.h's rules (a message naming the file and sample). */
struct ava_import_format {
    const char *kind;  /* "idx" */
    const char *usage; /* "idx:IMAGES,LABELS[+IMAGES,LABELS...]", for error messages */
    int (*open)(const char *args, void **state, char *err);
    /* 1 with a sample (its memory owned by the state), 0 at the end, < 0 on error */
    int (*next)(void *state, struct ava_sample *s, char *err);
    const char *const *(*classes)(const void *state, int *n);
    int64_t (*expected)(const void *state);
    void (*close)(void *state);
};

extern const struct ava_import_format ava_import_idx_format;
extern const struct ava_import_format ava_import_cifar10_format;
extern const struct ava_import_format ava_import_imagefolder_format;
extern const struct ava_import_format ava_import_lst_format;
extern const struct ava_import_format ava_import_jsonlist_format;

/* ---- class tables ---- */

/* Class names in index order; each is a valid class name (see ava_import_class_name_ok). */
struct ava_import_classes {
    char **names;
    int n, cap;
};

/* True when s can be a class name: 1..AVA_CLASS_NAME_MAX-1 bytes, no control characters. */
bool ava_import_class_name_ok(const char *s);
/* Appends a name (validated, at most AVA_CLASSES_MAX). Returns its index or AVA_EINVALID with
 * a message starting with `where`. */
int ava_import_classes_add(struct ava_import_classes *c, const char *name, const char *where,
                           char *err);
/* The index of a name, or -1. Linear: class counts stay small next to sample counts. */
int ava_import_classes_find(const struct ava_import_classes *c, const char *name);
/* Grows the table to classes "0".."upto" (numeric names for sources with index labels). */
void ava_import_classes_numeric(struct ava_import_classes *c, int upto);
void ava_import_classes_free(struct ava_import_classes *c);

/* ---- names and paths ---- */

/* True when name is a valid sample name: relative, no "." / ".." / empty components, no
 * control characters, at most AVA_SAMPLE_NAME_MAX bytes. *why says what is wrong. */
bool ava_import_name_ok(const char *name, const char **why);
/* Normalises a relative path from a list into out: drops "." and empty components ("a//b",
 * "./a"). Refuses absolute paths, ".." and control characters (*why says which). */
bool ava_import_relpath(const char *in, char *out, size_t outlen, const char **why);
/* Splits "A,B" at its only comma into a and b (each outlen bytes, non-empty). False when
 * there is not exactly one comma or a part is empty or too long. */
bool ava_import_split_pair(const char *s, char *a, char *b, size_t outlen);
/* Copies at most outlen-1 bytes of s into out with control characters replaced by '?', so that
 * a name from a file cannot break an error message's single line. Returns out. */
const char *ava_import_printable(const char *s, char *out, size_t outlen);
/* Fills out with realpath(path); returns 0, or AVA_ENOTFOUND / AVA_EIO naming `what`. */
int ava_import_realdir(const char *path, const char *what, char out[PATH_MAX], char *err);

/* ---- list files, line by line ---- */

#define AVA_IMPORT_LINE_MAX 65536

struct ava_import_lines {
    FILE *f;
    char *path;
    char *buf; /* AVA_IMPORT_LINE_MAX + 2 bytes */
    int64_t lineno;
    int64_t nonblank; /* lines holding something other than white space, counted at open */
};

/* Opens a list and counts its non-blank lines. Returns 0, AVA_ENOTFOUND or AVA_EIO. */
int ava_import_lines_open(struct ava_import_lines *l, const char *path, char *err);
/* Sets *line to the next non-blank line (without its line end; valid until the next call).
 * Returns 1, 0 at the end, AVA_EINVALID for an over-long line, AVA_EIO on a read error. */
int ava_import_lines_next(struct ava_import_lines *l, char **line, char *err);
void ava_import_lines_close(struct ava_import_lines *l);

/* ---- image files ---- */

/* The largest image file read (bytes). */
#define AVA_IMPORT_FILE_MAX (256u << 20)

/* Reads image files one at a time into one reused buffer. */
struct ava_import_reader {
    struct ava_buf buf;
};

/* Reads the file at path whole and decodes it once to check it and learn its size, then
 * fills s (pix ENCODED, data, len, width, height; not label and name). When root_real is
 * given, the file's real path must lie inside it (symlinks may not escape). Messages start
 * with `what` (the source and the sample). Returns 0, AVA_EIO (unreadable, not a regular
 * file), AVA_EFORBIDDEN (escapes root), AVA_ETOOLARGE or AVA_EINVALID (not an image). */
int ava_import_read_image(struct ava_import_reader *r, const char *root_real, const char *path,
                          const char *what, struct ava_sample *s, char *err);
void ava_import_reader_free(struct ava_import_reader *r);

#endif
