/* file.h: whole-file reads and crash-safe writes (write temp, fsync, rename). */
#ifndef AVA_COMMON_FILE_H
#define AVA_COMMON_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes data to path atomically: path.tmp.<pid>, fsync, rename, fsync of the directory.
 * mode applies to a new file. Returns 0 or AVA_EIO. */
int ava_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode, char *err);

/* Reads a whole file of at most max bytes into a malloc'd, NUL-terminated buffer owned by
 * the caller (*out; *len may be NULL). Returns 0, AVA_ENOTFOUND when it does not exist,
 * AVA_ETOOLARGE past max, AVA_EIO otherwise. */
int ava_file_read_all(const char *path, size_t max, char **out, size_t *len, char *err);

/* Appends one line (a '\n' is added) with O_APPEND, creating the file. Returns 0 or AVA_EIO. */
int ava_file_append_line(const char *path, const char *line, char *err);

/* Flushes, fsyncs and closes f (NULL is a no-op) and returns rc, or AVA_EIO naming path
 * when rc was 0 and one of those steps failed: the last step of a stream's writer. */
int ava_file_close_synced(FILE *f, const char *path, int rc, char *err);

/* Size of the file at path, or -1 when it cannot be stat'ed. */
int64_t ava_file_size(const char *path);

#endif
