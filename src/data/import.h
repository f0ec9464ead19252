/* import.h: importers turn a dataset source into a stream of samples, one at a time, with
 * memory bounded by a few samples (never the whole dataset).
 *
 * Sources (the text after `ava dataset import NAME --from`):
 *   idx:IMAGES,LABELS[+IMAGES,LABELS...]  MNIST / Fashion-MNIST IDX files, gzip or plain
 *   cifar10:PATH                          the CIFAR-10 binary tarball, or a folder of its .bin
 *                                         batches (data_batch_1..5.bin then test_batch.bin);
 *                                         class names from batches.meta.txt
 *   imagefolder:DIR                       one subfolder per class (sorted), JPEG/PNG files
 *   lst:FILE,ROOT                         an im2rec list: index TAB label TAB relative/path
 *   jsonlist:FILE                         one JSON object per line: {"url": path or file://
 *                                         URL, "label": class name or index}
 * Paths in lists are relative to ROOT (lst) or to the list's folder (jsonlist); ".."
 * components and absolute paths are refused, except that a jsonlist file:// URL may name any
 * absolute path. A relative path (and every imagefolder file) must also stay inside its folder
 * once symlinks are resolved. */
#ifndef AVA_DATA_IMPORT_H
#define AVA_DATA_IMPORT_H

#include "sample.h"

#include <stdint.h>

struct ava_importer;

/* Opens a source. *out: ava_import_close. Returns 0, or AVA_EINVALID for a malformed spec
 * or file header, AVA_ENOTFOUND / AVA_EIO for unreadable files, with a message naming the
 * file. */
int ava_import_open(const char *spec, struct ava_importer **out, char *err);

/* Produces the next sample into *s (valid until the next call). Returns 1 for a sample, 0
 * at the end, or a negative AVA_E* code with a message naming the bad sample (its file and
 * index or line) — a truncated file, a label out of range, an undecodable image. */
int ava_import_next(struct ava_importer *im, struct ava_sample *s, char *err);

/* The class names known so far (complete after the last sample; for idx and cifar10 from the
 * start). *n is set to their number. Owned by the importer. */
const char *const *ava_import_classes(const struct ava_importer *im, int *n);

/* The number of samples the source says it holds, or -1 when unknown before the end (used
 * for progress). */
int64_t ava_import_expected(const struct ava_importer *im);

void ava_import_close(struct ava_importer *im);

#endif
