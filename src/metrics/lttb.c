/* lttb.c: largest-triangle-three-buckets downsampling (see lttb.h). */
#include "lttb.h"

#include <math.h>

/* The first index of middle bucket k of nb buckets over the points 1..n-2: the buckets
 * split those n-2 points as evenly as integers allow (exact, no floating-point drift). */
static size_t bucket_start(size_t k, size_t n, size_t nb) {
    return 1 + (size_t)(((unsigned __int128)k * (n - 2)) / nb);
}

/* The index in [from, to) whose point makes the largest triangle with (ax, ay) and
 * (cx, cy); the first one on ties. */
static size_t largest_triangle(const double *x, const double *y, size_t from, size_t to, double ax,
                               double ay, double cx, double cy) {
    size_t best = from;
    double best_area = -1.0;
    for (size_t i = from; i < to; i++) {
        /* twice the triangle's area; the factor does not change which is largest */
        double area = fabs((ax - cx) * (y[i] - ay) - (ax - x[i]) * (cy - ay));
        if (area > best_area) {
            best_area = area;
            best = i;
        }
    }
    return best;
}

size_t ava_lttb(const double *x, const double *y, size_t n, size_t threshold, size_t *out_idx) {
    if (n == 0)
        return 0;
    if (n <= threshold) {
        for (size_t i = 0; i < n; i++)
            out_idx[i] = i;
        return n;
    }
    out_idx[0] = 0;
    if (n == 1)
        return 1;
    if (threshold < 3) {
        out_idx[1] = n - 1;
        return 2;
    }
    size_t nb = threshold - 2, out = 1, a = 0;
    for (size_t k = 0; k < nb; k++) {
        size_t from = bucket_start(k, n, nb), to = bucket_start(k + 1, n, nb);
        /* the mean of the next bucket; after the last bucket, the last point */
        size_t nfrom = to, nto = k + 1 < nb ? bucket_start(k + 2, n, nb) : n;
        double cx = 0, cy = 0;
        for (size_t i = nfrom; i < nto; i++) {
            cx += x[i];
            cy += y[i];
        }
        cx /= (double)(nto - nfrom);
        cy /= (double)(nto - nfrom);
        a = largest_triangle(x, y, from, to, x[a], y[a], cx, cy);
        out_idx[out++] = a;
    }
    out_idx[out++] = n - 1;
    return out;
}
