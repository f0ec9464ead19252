/* lttb.h: largest-triangle-three-buckets downsampling (Sveinn Steinarsson, 2013), how ava
 * serves a long series as the few hundred points a chart can show (DESIGN §5). */
#ifndef AVA_METRICS_LTTB_H
#define AVA_METRICS_LTTB_H

#include <stddef.h>

/* Chooses at most `threshold` of the n points (x[i], y[i]) (x ascending) that keep the
 * series' visual shape, and writes their indices, strictly increasing, into out_idx
 * (capacity: min(n, max(threshold, 2)) entries). Returns how many were written:
 *   n == 0             -> 0
 *   n <= threshold     -> n (every index: 0, 1, ..., n-1)
 *   threshold < 3      -> the first and the last (just 0 when n == 1)
 *   otherwise          -> threshold: the first, one point per bucket of the n-2 middle
 *                         points (the one making the largest triangle with the point kept
 *                         in the previous bucket and the mean of the next bucket), the last.
 * O(n) time, no allocation. */
size_t ava_lttb(const double *x, const double *y, size_t n, size_t threshold, size_t *out_idx);

#endif
