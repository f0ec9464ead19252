/* logparse_caffe.c: Caffe's solver log (src/caffe/solver.cpp, sgd_solver.cpp), with or
 * without glog's "I1126 04:30:00.123456 12345 solver.cpp:218] " prefix, as metric points.
 * Steps are Caffe's own iteration numbers. */
#include "logparse_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void ava_logp_caffe_init(union logp_state *st) {
    st->caffe.iter = 0;
    st->caffe.test_iter = 0;
    st->caffe.test_net = 0;
}

/* The message of a glog line (after "] "), or the whole text when it has no glog prefix
 * ("[IWEF]mmdd hh:mm:ss.uuuuuu tid file:line] "). */
static const char *glog_message(const char *seg) {
    if (seg[0] && strchr("IWEF", seg[0]) && isdigit((unsigned char)seg[1]) &&
        isdigit((unsigned char)seg[2]) && isdigit((unsigned char)seg[3]) &&
        isdigit((unsigned char)seg[4]) && seg[5] == ' ') {
        const char *end = strstr(seg, "] ");
        if (end)
            return end + 2;
    }
    return seg;
}

/* "Iteration N (x iter/s, ...), loss = L", "Iteration N, loss = L", "Iteration N, lr = R",
 * "Iteration N, Testing net (#k)". */
static void iteration_line(struct logp_caffe *c, struct logp_scan *s, struct logp_sink *o) {
    int64_t n, k;
    double v;
    if (!ava_logp_scan_count(s, &n))
        return;
    if (ava_logp_scan_lit(s, " (")) {
        if (ava_logp_scan_past(s, "), loss = ") && ava_logp_scan_number(s, &v)) {
            c->iter = n;
            ava_logp_emit(o, "loss", "train", n, v, -1);
        }
    } else if (ava_logp_scan_lit(s, ", loss = ")) {
        if (ava_logp_scan_number(s, &v)) {
            c->iter = n;
            ava_logp_emit(o, "loss", "train", n, v, -1);
        }
    } else if (ava_logp_scan_lit(s, ", lr = ")) {
        if (ava_logp_scan_number(s, &v))
            ava_logp_emit(o, "learning_rate", "train", n, v, -1);
    } else if (ava_logp_scan_lit(s, ", Testing net (#")) {
        if (ava_logp_scan_count(s, &k) && ava_logp_scan_lit(s, ")") && k < 1000) {
            c->test_iter = n;
            c->test_net = (int)k;
        }
    }
}

/* "#k: NAME = V" or "#k: NAME = V (* W = X loss)" after "Train/Test net output"; the
 * blob's name is the metric's. */
static bool net_output(struct logp_scan *s, char *name, size_t namelen, double *v) {
    int64_t k;
    if (!ava_logp_scan_count(s, &k) || !ava_logp_scan_lit(s, ": "))
        return false;
    const char *eq = strstr(s->p, " = ");
    if (!eq || eq == s->p || (size_t)(eq - s->p) >= namelen)
        return false;
    snprintf(name, namelen, "%.*s", (int)(eq - s->p), s->p);
    s->p = eq + 3;
    return ava_logp_scan_number(s, v) && (!*s->p || *s->p == ' ');
}

void ava_logp_caffe_segment(union logp_state *st, const char *seg, struct logp_sink *o) {
    struct logp_caffe *c = &st->caffe;
    struct logp_scan s = {glog_message(seg)};
    char name[96];
    double v;
    ava_logp_scan_blank(&s);
    if (ava_logp_scan_lit(&s, "Iteration ")) {
        iteration_line(c, &s, o);
    } else if (ava_logp_scan_lit(&s, "Train net output #")) {
        /* a blob named "loss" repeats the Iteration line's loss at the same step */
        if (net_output(&s, name, sizeof name, &v) && strcmp(name, "loss") != 0)
            ava_logp_emit(o, name, "train", c->iter, v, -1);
    } else if (ava_logp_scan_lit(&s, "Test net output #")) {
        char phase[AVA_METRIC_PHASE_MAX + 1] = "val";
        if (c->test_net > 0)
            snprintf(phase, sizeof phase, "val%d", c->test_net);
        if (net_output(&s, name, sizeof name, &v))
            ava_logp_emit(o, name, phase, c->test_iter, v, -1);
    }
}
