/* rawset.h: the "raw" format (image files under their relative names plus DIR/list.lst) and
 * the im2rec-style .lst list written next to a RecordIO .rec. */
#ifndef AVA_DATA_RAWSET_H
#define AVA_DATA_RAWSET_H

#include <stddef.h>
#include <stdint.h>

/* Checks a sample name used as a relative path under a set's directory: non-empty, at most
 * AVA_SAMPLE_NAME_MAX - 1 bytes, not absolute, no empty, "." or ".." component, no tab, CR
 * or LF (they would break the list lines). Returns 0 or AVA_EINVALID naming the problem. */
int ava_raw_name_check(const char *name, char *err);

struct ava_raw_writer;

/* Creates DIR (and its parents; an existing directory is accepted) for a raw set; DIR/list.lst
 * must not exist yet. *out: ava_raw_writer_close. Returns 0, AVA_EEXISTS, AVA_EIO. */
int ava_raw_writer_open(const char *dir, struct ava_raw_writer **out, char *err);

/* Writes data (len bytes) to DIR/<name>, creating its subfolders, and appends the line
 *     <index> TAB <label> TAB <name> LF        (index %u, label %d: "12\t3\tcat/001.jpg\n")
 * to DIR/list.lst. Returns 0, AVA_EINVALID (bad name, see ava_raw_name_check), AVA_EEXISTS
 * (a file of that name was already written), AVA_EIO. */
int ava_raw_write(struct ava_raw_writer *w, uint32_t index, int label, const char *name,
                  const void *data, size_t len, char *err);

/* Bytes written so far: the image files and list.lst. */
uint64_t ava_raw_writer_bytes(const struct ava_raw_writer *w);

/* Flushes list.lst, syncs the files written (syncfs of DIR's file system) and frees w in every
 * case. NULL is a no-op. Returns 0 or AVA_EIO. */
int ava_raw_writer_close(struct ava_raw_writer *w, char *err);

struct ava_lst_writer;

/* Creates (truncates) an im2rec list at path. *out: ava_lst_close. Returns 0 or AVA_EIO. */
int ava_lst_open(const char *path, struct ava_lst_writer **out, char *err);

/* Appends one line exactly as MXNet's tools/im2rec.py write_list does:
 *     '%d\t' % index, then '%f\t' % label for each label, then '%s\n' % name
 * e.g. "7\t3.000000\tcat/001.jpg\n" (labels with 6 decimals, C's %f on a double equals
 * Python's). The name must pass ava_raw_name_check. Returns 0, AVA_EINVALID, AVA_EIO. */
int ava_lst_add(struct ava_lst_writer *w, uint32_t index, double label, const char *name,
                char *err);
/* The same with n >= 1 labels (multi-label lists). */
int ava_lst_add_multi(struct ava_lst_writer *w, uint32_t index, const double *labels, size_t n,
                      const char *name, char *err);

/* Flushes, fsyncs and closes; frees w in every case. NULL is a no-op. Returns 0 or AVA_EIO. */
int ava_lst_close(struct ava_lst_writer *w, char *err);

#endif
