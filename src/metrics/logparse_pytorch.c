/* logparse_pytorch.c: the PyTorch examples' lines (mnist/main.py train/test, imagenet/
 * main.py ProgressMeter) as metric points. Accuracies are written as fractions (the
 * examples print percents or counts). Steps: mnist (epoch - 1) * dataset size + samples
 * seen (its counter counts samples), imagenet epoch * batches + batch; test summaries at the
 * last step of the epoch. */
#include "logparse_impl.h"

#include <string.h>

void ava_logp_pytorch_init(union logp_state *st) {
    ava_logp_steps_init(&st->pytorch.mnist, 1);
    ava_logp_steps_init(&st->pytorch.imagenet, 0);
}

/* "Train Epoch: E [n/T (p%)]\tLoss: L" */
static void mnist_train(struct logp_pytorch *t, struct logp_scan *s, struct logp_sink *o) {
    int64_t e, n, total;
    double v;
    if (!ava_logp_scan_count(s, &e) || !ava_logp_scan_lit(s, " [") || !ava_logp_scan_count(s, &n) ||
        !ava_logp_scan_lit(s, "/") || !ava_logp_scan_count(s, &total) ||
        !ava_logp_scan_past(s, "]\tLoss: ") || !ava_logp_scan_number(s, &v))
        return;
    int64_t step = ava_logp_steps_batch(&t->mnist, e, n, total);
    ava_logp_emit(o, "loss", "train", step, v, e);
}

/* "Test set: Average loss: L, Accuracy: c/t (p%)" */
static void mnist_test(struct logp_pytorch *t, struct logp_scan *s, struct logp_sink *o) {
    double loss;
    int64_t correct, total;
    if (!ava_logp_scan_number(s, &loss) || !ava_logp_scan_lit(s, ", Accuracy: ") ||
        !ava_logp_scan_count(s, &correct) || !ava_logp_scan_lit(s, "/") ||
        !ava_logp_scan_count(s, &total) || total == 0)
        return;
    int64_t epoch = t->mnist.epoch;
    int64_t step = ava_logp_steps_epoch_end(&t->mnist, epoch);
    ava_logp_emit(o, "loss", "val", step, loss, epoch);
    ava_logp_emit(o, "accuracy", "val", step, (double)correct / (double)total, epoch);
}

/* The value of meter `name` ("Loss 6.9e+00 (6.9e+00)": the current one, not the average)
 * in an imagenet progress line. */
static bool meter(const char *line, const char *name, double *v) {
    struct logp_scan s = {line};
    if (!ava_logp_scan_past(&s, name))
        return false;
    ava_logp_scan_blank(&s);
    return ava_logp_scan_number(&s, v);
}

/* "Epoch: [E][ b/T]\tTime ...\tLoss v (avg)\tAcc@1 v (avg)\tAcc@5 v (avg)" */
static void imagenet_train(struct logp_pytorch *t, struct logp_scan *s, struct logp_sink *o) {
    int64_t e, b, total;
    double v;
    if (!ava_logp_scan_count(s, &e) || !ava_logp_scan_lit(s, "]["))
        return;
    ava_logp_scan_blank(s);
    if (!ava_logp_scan_count(s, &b) || !ava_logp_scan_lit(s, "/") ||
        !ava_logp_scan_count(s, &total) || !ava_logp_scan_lit(s, "]"))
        return;
    int64_t step = ava_logp_steps_batch(&t->imagenet, e, b, total);
    if (meter(s->p, "\tLoss ", &v))
        ava_logp_emit(o, "loss", "train", step, v, e);
    if (meter(s->p, "\tAcc@1 ", &v))
        ava_logp_emit(o, "accuracy", "train", step, v / 100.0, e);
    if (meter(s->p, "\tAcc@5 ", &v))
        ava_logp_emit(o, "top_k_accuracy_5", "train", step, v / 100.0, e);
}

/* " * Acc@1 a Acc@5 b" (validate()'s summary; newer releases pad with spaces) */
static void imagenet_summary(struct logp_pytorch *t, struct logp_scan *s, struct logp_sink *o) {
    double a1, a5;
    ava_logp_scan_blank(s);
    if (!ava_logp_scan_lit(s, "Acc@1 ") || !ava_logp_scan_number(s, &a1))
        return;
    ava_logp_scan_blank(s);
    if (!ava_logp_scan_lit(s, "Acc@5 ") || !ava_logp_scan_number(s, &a5))
        return;
    int64_t epoch = t->imagenet.epoch;
    int64_t step = ava_logp_steps_epoch_end(&t->imagenet, epoch);
    ava_logp_emit(o, "accuracy", "val", step, a1 / 100.0, epoch);
    ava_logp_emit(o, "top_k_accuracy_5", "val", step, a5 / 100.0, epoch);
}

void ava_logp_pytorch_segment(union logp_state *st, const char *seg, struct logp_sink *o) {
    struct logp_pytorch *t = &st->pytorch;
    struct logp_scan s = {seg};
    if (ava_logp_scan_past(&s, "Train Epoch: ")) {
        mnist_train(t, &s, o);
        return;
    }
    s.p = seg;
    if (ava_logp_scan_past(&s, "Test set: Average loss: ")) {
        mnist_test(t, &s, o);
        return;
    }
    s.p = seg;
    if (ava_logp_scan_past(&s, "Epoch: [")) {
        imagenet_train(t, &s, o);
        return;
    }
    s.p = seg;
    ava_logp_scan_blank(&s);
    if (ava_logp_scan_lit(&s, "*"))
        imagenet_summary(t, &s, o);
}
