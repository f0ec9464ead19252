/* logparse_mxnet.c: MXNet's own log lines (python/mxnet/callback.py Speedometer,
 * module/base_module.py fit, lr_scheduler.py) as metric points. Steps: Speedometer's
 * (epoch, batch) through the step tracker (batches per epoch learned); epoch lines at the
 * last step of their epoch (or at the epoch number when there is no Speedometer); learning
 * rate changes at their own update count. */
#include "logparse_impl.h"

#include <string.h>

void ava_logp_mxnet_init(union logp_state *st) {
    ava_logp_steps_init(&st->mxnet.steps, 0);
    st->mxnet.batches_epoch = -1;
}

/* Moves to the next '\t' or ',' (the separators of Speedometer's name=value pairs). */
static void next_pair(struct logp_scan *s) {
    while (*s->p && *s->p != '\t' && *s->p != ',')
        s->p++;
}

/* Reads Speedometer's "\tSpeed: X samples/sec\tname=value..." (older releases write
 * "Train-name=value", some examples separate pairs with ",\t"). Unreadable pairs, such as
 * "Speed: inf", are skipped. */
static void speedometer_pairs(struct logp_scan *s, int64_t step, int64_t epoch,
                              struct logp_sink *o) {
    for (;;) {
        while (*s->p == ' ' || *s->p == '\t' || *s->p == ',')
            s->p++;
        if (!*s->p)
            return;
        char key[96];
        double v;
        if (ava_logp_scan_lit(s, "Speed:")) {
            ava_logp_scan_blank(s);
            if (ava_logp_scan_number(s, &v) && ava_logp_scan_lit(s, " samples/sec"))
                ava_logp_emit(o, "samples_per_sec", "train", step, v, epoch);
        } else if (ava_logp_scan_key(s, key, sizeof key) && ava_logp_scan_lit(s, "=") &&
                   ava_logp_scan_number(s, &v)) {
            const char *name = strncmp(key, "Train-", 6) == 0 ? key + 6 : key;
            ava_logp_emit(o, name, "train", step, v, epoch);
        }
        next_pair(s);
    }
}

/* "Batch [a-b]" or "Batch [b]" after "Epoch[e] ": b is the batch counter of the epoch. */
static void batch_line(struct logp_mxnet *m, struct logp_scan *s, int64_t epoch,
                       struct logp_sink *o) {
    int64_t a, b;
    if (!ava_logp_scan_count(s, &a))
        return;
    b = a;
    if (ava_logp_scan_lit(s, "-") && !ava_logp_scan_count(s, &b))
        return;
    if (!ava_logp_scan_lit(s, "]") || (*s->p != '\t' && *s->p != ' '))
        return;
    int64_t step = ava_logp_steps_batch(&m->steps, epoch, b, 0);
    m->batches_epoch = epoch;
    speedometer_pairs(s, step, epoch, o);
}

/* The end-of-epoch lines of BaseModule.fit: "Train-name=v", "Validation-name=v", "Time
 * cost=v". Train- averages are kept only for epochs without Speedometer lines: those
 * already drew the train curve, up to this very step. */
static void epoch_line(struct logp_mxnet *m, struct logp_scan *s, int64_t epoch,
                       struct logp_sink *o) {
    int64_t step = ava_logp_steps_epoch_end(&m->steps, epoch);
    char key[96];
    double v;
    const char *phase;
    if (ava_logp_scan_lit(s, "Time cost=")) {
        if (ava_logp_scan_number(s, &v) && !*s->p)
            ava_logp_emit(o, "epoch_time", "", step, v, epoch);
        return;
    }
    if (ava_logp_scan_lit(s, "Validation-"))
        phase = "val";
    else if (ava_logp_scan_lit(s, "Train-") && m->batches_epoch != epoch)
        phase = "train";
    else
        return;
    if (ava_logp_scan_key(s, key, sizeof key) && ava_logp_scan_lit(s, "=") &&
        ava_logp_scan_number(s, &v) && !*s->p)
        ava_logp_emit(o, key, phase, step, v, epoch);
}

/* lr_scheduler's "Update[n]: Change learning rate to x" and "Update[n]: now learning rate
 * arrived at x, will not change in the future". */
static void update_line(struct logp_scan *s, struct logp_sink *o) {
    int64_t n;
    double v;
    if (!ava_logp_scan_count(s, &n) || !ava_logp_scan_lit(s, "]: "))
        return;
    if (!ava_logp_scan_lit(s, "Change learning rate to ") &&
        !ava_logp_scan_lit(s, "now learning rate arrived at "))
        return;
    if (ava_logp_scan_number(s, &v))
        ava_logp_emit(o, "learning_rate", "train", n, v, -1);
}

void ava_logp_mxnet_segment(union logp_state *st, const char *seg, struct logp_sink *o) {
    struct logp_mxnet *m = &st->mxnet;
    struct logp_scan s = {seg};
    if (ava_logp_scan_past(&s, "Update[")) {
        update_line(&s, o);
        return;
    }
    s.p = seg;
    /* "Iter[e]" is Speedometer's prefix when there is no eval metric */
    if (!ava_logp_scan_past(&s, "Epoch[") && !ava_logp_scan_past(&s, "Iter["))
        return;
    int64_t epoch;
    if (!ava_logp_scan_count(&s, &epoch) || !ava_logp_scan_lit(&s, "] "))
        return;
    if (ava_logp_scan_lit(&s, "Batch ["))
        batch_line(m, &s, epoch, o);
    else
        epoch_line(m, &s, epoch, o);
}
