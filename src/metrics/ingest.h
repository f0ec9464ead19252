/* ingest.h: moving a run's points from its run dir's `metrics` file (appended by ava-shim)
 * into the store, by offset: each batch of points is stored in the same transaction as the
 * offset just past its last line, so a crash of avad or of the shim loses and duplicates
 * nothing (a partial last line waits for its '\n'). */
#ifndef AVA_METRICS_INGEST_H
#define AVA_METRICS_INGEST_H

#include "../store/store.h"

#include <stddef.h>
#include <stdint.h>

#define AVA_INGEST_BATCH 5000           /* points per transaction */
#define AVA_INGEST_MAX_BYTES (16 << 20) /* read per call, so the event loop stays responsive */

/* Ingests what run_id's metrics file holds past the stored offset (at most
 * AVA_INGEST_MAX_BYTES). Fills *points (may be NULL) with the points stored and *more with
 * whether bytes were left for another call. Malformed lines are skipped (and counted in
 * *bad, may be NULL): the shim writes only valid lines, so these mean a damaged file.
 * Returns 0 or an AVA_E* code (the file missing is not an error: nothing to do). */
int ava_metrics_ingest_run(struct ava_store *st, int64_t run_id, const char *run_dir,
                           int64_t *points, int64_t *bad, int *more, char *err);

#endif
