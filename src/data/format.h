/* format.h: formatting a dataset's pack into one set (percent 100) or a set and its
 * complement (percent P and 100 - P) from one split order, in RecordIO, LMDB or raw, with
 * the payload encoding asked for; image coding runs on several threads while one writer
 * keeps the order. */
#ifndef AVA_DATA_FORMAT_H
#define AVA_DATA_FORMAT_H

#include "job.h"

#include <stdint.h>

/* Called every few hundred samples; returns non-zero to cancel. */
typedef int (*ava_format_progress_fn)(void *ctx, int64_t done, int64_t total);

/* One set written. */
struct ava_format_set {
    int percent;
    int64_t samples;
    int64_t bytes;  /* total size of the set's files */
    char dir[4096]; /* where it was written (below out_dir) */
};

/* Formats the pack in pack_dir as spec asks, writing each set into out_dir/<format>-<percent>
 * (out_dir must exist; the caller publishes the sets by renaming). Fills sets[0] (the P %
 * set) and, when percent < 100, sets[1] (the complement); *nsets is set. Returns 0,
 * AVA_ECONFLICT when cancelled, or an error naming the sample that failed. */
int ava_format_run(const struct ava_job_spec *spec, const char *pack_dir, const char *out_dir,
                   ava_format_progress_fn progress, void *ctx, struct ava_format_set sets[2],
                   int *nsets, char *err);

#endif
