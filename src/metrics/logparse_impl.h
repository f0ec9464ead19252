/* logparse_impl.h: what the log parsers share inside src/metrics (not a public header): a
 * cursor over one cleaned log segment, the point sink, the global-step tracker for
 * frameworks that count batches per epoch, and the built-in parsers' entry points. */
#ifndef AVA_METRICS_LOGPARSE_IMPL_H
#define AVA_METRICS_LOGPARSE_IMPL_H

#include "point.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A read position in a NUL-terminated segment (one '\r'-separated update of a line, with
 * backspaces and terminal escape sequences removed). */
struct logp_scan {
    const char *p;
};

/* Consumes lit when the text continues with it. */
bool ava_logp_scan_lit(struct logp_scan *s, const char *lit);
/* Moves past the first occurrence of lit; false (and no move) when there is none. */
bool ava_logp_scan_past(struct logp_scan *s, const char *lit);
/* Skips spaces and tabs. */
void ava_logp_scan_blank(struct logp_scan *s);
/* Reads decimal digits (no sign) as an int64; false when there are none or on overflow. */
bool ava_logp_scan_count(struct logp_scan *s, int64_t *v);
/* Reads a decimal number [+-]?(d+(.d*)?|.d+)([eE][+-]?d+)? that is finite; false (and no
 * move) otherwise, so "nan", "inf" and "0x1p3" are never numbers. */
bool ava_logp_scan_number(struct logp_scan *s, double *v);
/* Reads a key of [A-Za-z0-9_./@-] characters (at least one) into out, truncated to
 * outlen - 1. */
bool ava_logp_scan_key(struct logp_scan *s, char *out, size_t outlen);
/* True when the whole string (after trimming blanks) is one number, in *v. */
bool ava_logp_scan_whole_number(const char *str, double *v);

/* Where a parser puts its points: the caller's array and what it learned of the steps. */
struct logp_sink {
    struct ava_point *pts;
    size_t n, cap;
    bool any;          /* a point was offered (even when the array was full) */
    int64_t last_step; /* the step of the last point offered */
};

/* Offers one point of a built-in parser. The name is made an ava name (lowercase,
 * characters outside [a-z0-9._/-] become '_', at most 64 bytes) and the common aliases are
 * applied (acc -> accuracy, lr -> learning_rate); non-finite values and negative steps are
 * dropped; a point that does not fit in the array is dropped but still moves last_step. */
void ava_logp_emit(struct logp_sink *o, const char *name, const char *phase, int64_t step,
                   double value, int64_t epoch);

/* Global steps from per-epoch batch counters (MXNet Speedometer, Keras, PyTorch):
 *   step = (epoch - base_epoch) * span + batch + offset
 * span is the number of batches per epoch: the total the line prints when it has one
 * (Keras "n/T", PyTorch "[n/T]"), else learned as 1 + the largest batch index seen in the
 * epochs before the current one (0 while the first epoch is running, which is right for a
 * log that starts at epoch base_epoch). offset only moves when a log starts its epochs
 * over (a second fit() in the same process: the counters go back, or the parser set
 * `restarted`), so that steps never go backwards. */
struct logp_steps {
    int64_t base_epoch; /* the framework's first epoch number: 0 or 1 */
    int64_t epoch;      /* the epoch of the last batch line; -1 before any */
    int64_t span;
    int64_t max_batch; /* the largest batch index seen in the current epoch */
    int64_t offset;
    int64_t last;   /* the last step handed out; -1 before any */
    bool restarted; /* the log said its epochs start over: the next step follows last */
};

void ava_logp_steps_init(struct logp_steps *t, int64_t base_epoch);
/* The step of batch `batch` of `epoch`; total is the batches per epoch when the line says
 * it, else 0. */
int64_t ava_logp_steps_batch(struct logp_steps *t, int64_t epoch, int64_t batch, int64_t total);
/* The step for a point that summarises `epoch` (validation, epoch averages): the last step
 * of that epoch when its batches were seen, its estimated last step when only earlier
 * epochs were, the epoch number itself when no batch line was ever seen. */
int64_t ava_logp_steps_epoch_end(const struct logp_steps *t, int64_t epoch);

/* Per-framework state, one union member per built-in parser. */
struct logp_mxnet {
    struct logp_steps steps;
    int64_t batches_epoch; /* the epoch whose Speedometer lines were seen last; -1 none */
};
struct logp_caffe {
    int64_t iter;      /* the last "Iteration N" of the train display */
    int64_t test_iter; /* the N of the last "Iteration N, Testing net (#k)" */
    int test_net;      /* its k */
};
struct logp_keras {
    struct logp_steps steps;
    int64_t epoch; /* the last "Epoch E/N"; 1 before any */
    int64_t total; /* the total of the last bar ("cur/total"); 0 for Unknown */
    bool done;     /* that bar reached its total (the epoch's training is over) */
};
struct logp_pytorch {
    struct logp_steps mnist;    /* "Train Epoch: E [n/T" counts samples from epoch 1 */
    struct logp_steps imagenet; /* "Epoch: [E][b/T]" counts batches from epoch 0 */
};
union logp_state {
    struct logp_mxnet mxnet;
    struct logp_caffe caffe;
    struct logp_keras keras;
    struct logp_pytorch pytorch;
};

/* Each built-in parser: initialises its state, parses one cleaned segment into o. */
void ava_logp_mxnet_init(union logp_state *st);
void ava_logp_mxnet_segment(union logp_state *st, const char *seg, struct logp_sink *o);
void ava_logp_caffe_init(union logp_state *st);
void ava_logp_caffe_segment(union logp_state *st, const char *seg, struct logp_sink *o);
void ava_logp_darknet_init(union logp_state *st);
void ava_logp_darknet_segment(union logp_state *st, const char *seg, struct logp_sink *o);
void ava_logp_keras_init(union logp_state *st);
void ava_logp_keras_segment(union logp_state *st, const char *seg, struct logp_sink *o);
void ava_logp_pytorch_init(union logp_state *st);
void ava_logp_pytorch_segment(union logp_state *st, const char *seg, struct logp_sink *o);

#endif
