/* point.h: one metric point as ava stores it (DESIGN §5): a run's series is identified by
 * (name, phase); a point has a step, a value, a wall time and optionally an epoch. */
#ifndef AVA_METRICS_POINT_H
#define AVA_METRICS_POINT_H

#include <stdint.h>

#define AVA_METRIC_NAME_MAX 64  /* bytes, [A-Za-z0-9._/-] */
#define AVA_METRIC_PHASE_MAX 16 /* "train", "val", "" (none), or any [a-z0-9_] word */

struct ava_point {
    char name[AVA_METRIC_NAME_MAX + 1];
    char phase[AVA_METRIC_PHASE_MAX + 1];
    int64_t step;    /* >= 0 */
    double value;    /* finite */
    int64_t time_ms; /* unix ms; 0 = "now" to whoever stores it */
    int64_t epoch;   /* -1 when not given */
};

#endif
