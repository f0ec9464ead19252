/* logparse_keras.c: Keras' progress bar (keras/src/utils/progbar.py, and tf.keras'
 * generic_utils.Progbar) as metric points: "cur/total [bar] - ETA... - name: value - ...",
 * one point per name per update, val_ names as phase val. Steps: (epoch - 1) * total + cur,
 * the epoch from the last "Epoch E/N" line (1 before any). */
#include "logparse_impl.h"

#include <string.h>

void ava_logp_keras_init(union logp_state *st) {
    ava_logp_steps_init(&st->keras.steps, 1);
    st->keras.epoch = 1;
    st->keras.total = 0;
    st->keras.done = false;
}

/* Reads the " - name: value" pairs of an update (ETA and times are not pairs). */
static void keras_pairs(struct logp_scan *s, int64_t step, int64_t epoch, struct logp_sink *o) {
    while (ava_logp_scan_past(s, " - ")) {
        char key[96];
        double v;
        if (!ava_logp_scan_key(s, key, sizeof key) || !ava_logp_scan_lit(s, ":"))
            continue;
        ava_logp_scan_blank(s);
        if (strcmp(key, "ETA") == 0 || !ava_logp_scan_number(s, &v) || (*s->p && *s->p != ' '))
            continue;
        if (strncmp(key, "val_", 4) == 0 && key[4])
            ava_logp_emit(o, key + 4, "val", step, v, epoch);
        else
            ava_logp_emit(o, key, "train", step, v, epoch);
    }
}

/* An update with a counter: "cur/total ..." or "cur/Unknown ...". A bar whose total differs
 * from the finished epoch's is evaluate()'s or predict()'s, not training: skipped. */
static void progress(struct logp_keras *k, struct logp_scan *s, int64_t cur, struct logp_sink *o) {
    int64_t total = 0;
    if (!ava_logp_scan_count(s, &total) && !ava_logp_scan_lit(s, "Unknown"))
        return;
    if (*s->p != ' ')
        return;
    if (k->done && total != k->total)
        return;
    k->total = total;
    k->done = total > 0 && cur >= total;
    int64_t step = ava_logp_steps_batch(&k->steps, k->epoch, cur, total);
    keras_pairs(s, step, k->epoch, o);
}

void ava_logp_keras_segment(union logp_state *st, const char *seg, struct logp_sink *o) {
    struct logp_keras *k = &st->keras;
    struct logp_scan s = {seg};
    int64_t a, b;
    if (ava_logp_scan_lit(&s, "Epoch ")) { /* "Epoch 3/10" */
        if (ava_logp_scan_count(&s, &a) && ava_logp_scan_lit(&s, "/") &&
            ava_logp_scan_count(&s, &b) && !*s.p && a > 0) {
            if (a <= k->epoch && k->steps.last >= 0) /* a second fit() */
                k->steps.restarted = true;
            k->epoch = a;
            k->done = false;
        }
        return;
    }
    ava_logp_scan_blank(&s);
    if (ava_logp_scan_count(&s, &a)) {
        if (ava_logp_scan_lit(&s, "/"))
            progress(k, &s, a, o);
        return;
    }
    /* Keras 2.2's verbose=2 epoch line: " - 5s - loss: 0.29 - acc: 0.91" */
    if (ava_logp_scan_lit(&s, "- ") && ava_logp_scan_count(&s, &a) && ava_logp_scan_lit(&s, "s")) {
        keras_pairs(&s, ava_logp_steps_epoch_end(&k->steps, k->epoch), k->epoch, o);
    }
}
