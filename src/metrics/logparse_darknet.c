/* logparse_darknet.c: darknet's training lines (examples/classifier.c train_classifier,
 * examples/detector.c train_detector, and AlexeyAB's fork) as metric points. Steps are
 * darknet's own batch numbers; the classifier's fractional epoch gives the epoch. */
#include "logparse_impl.h"

void ava_logp_darknet_init(union logp_state *st) {
    (void)st; /* darknet prints everything a point needs on each line */
}

/* classifier: "N, E: loss, avg avg, rate rate, s seconds, n images"
 * detector:   "N: loss, avg avg, rate rate, s seconds, n images"
 * AlexeyAB:   " N: loss, avg avg loss, rate rate, s seconds, n images, h hours left" */
void ava_logp_darknet_segment(union logp_state *st, const char *seg, struct logp_sink *o) {
    (void)st;
    struct logp_scan s = {seg};
    int64_t batch, epoch = -1;
    double frac, loss, avg, rate, secs;
    ava_logp_scan_blank(&s);
    if (!ava_logp_scan_count(&s, &batch))
        return;
    if (ava_logp_scan_lit(&s, ", ")) {
        if (!ava_logp_scan_number(&s, &frac) || frac < 0 || frac > 1e15)
            return;
        epoch = (int64_t)frac; /* frac >= 0: truncation is floor, and the shim needs no libm */
    }
    if (!ava_logp_scan_lit(&s, ": ") || !ava_logp_scan_number(&s, &loss) ||
        !ava_logp_scan_lit(&s, ", ") || !ava_logp_scan_number(&s, &avg) ||
        !ava_logp_scan_lit(&s, " avg"))
        return;
    ava_logp_scan_lit(&s, " loss");
    if (!ava_logp_scan_lit(&s, ", ") || !ava_logp_scan_number(&s, &rate) ||
        !ava_logp_scan_lit(&s, " rate, ") || !ava_logp_scan_number(&s, &secs) ||
        !ava_logp_scan_lit(&s, " seconds"))
        return;
    ava_logp_emit(o, "loss", "train", batch, loss, epoch);
    ava_logp_emit(o, "avg_loss", "train", batch, avg, epoch);
    ava_logp_emit(o, "learning_rate", "train", batch, rate, epoch);
}
