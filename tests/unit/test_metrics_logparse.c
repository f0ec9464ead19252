/* test_metrics_logparse.c: src/metrics log parsers: each framework's fixture log
 * (tests/fixtures/logs, sources in SOURCES.md) gives exactly the expected points, look-alike
 * lines give none, and user rules are validated and applied. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/metrics/logparse.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One expected point. */
struct want {
    const char *name, *phase;
    int64_t step;
    double value;
    int64_t epoch;
};

/* Points collected from a whole log. */
struct got {
    struct ava_point pts[256];
    size_t n;
};

/* Feeds text (several '\n'-terminated lines) to lp and collects every point. */
static void feed(struct ava_logparse *lp, const char *text, size_t len, struct got *g) {
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        g->n +=
            ava_logparse_line(lp, text + start, end - start, g->pts + g->n, N_ELEMS(g->pts) - g->n);
        start = end + 1;
    }
}

/* Reads tests/fixtures/logs/<name> (from $AVA_SOURCE_DIR, else the current directory). */
static char *read_fixture(const char *name, size_t *len) {
    const char *root = getenv("AVA_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/logs/%s", root ? root : ".", name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot open %s (run from the source root or set AVA_SOURCE_DIR)", path);
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[*len] = 0;
    return buf;
}

/* True when a and b are the same number up to rounding in the last digits. */
static bool close_to(double a, double b) {
    return fabs(a - b) <= 1e-12 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* Asserts that g holds exactly the points of want, in order. */
static void check_points(const char *what, const struct got *g, const struct want *want,
                         size_t nwant) {
    for (size_t i = 0; i < g->n && i < nwant; i++) {
        const struct ava_point *p = &g->pts[i];
        const struct want *w = &want[i];
        CHECK(strcmp(p->name, w->name) == 0 && strcmp(p->phase, w->phase) == 0 &&
                  p->step == w->step && close_to(p->value, w->value) && p->epoch == w->epoch &&
                  p->time_ms == 0,
              "%s point %zu: got (%s, %s, %" PRId64 ", %.17g, %" PRId64 "), want (%s, %s, %" PRId64
              ", %.17g, %" PRId64 ")",
              what, i, p->name, p->phase, p->step, p->value, p->epoch, w->name, w->phase, w->step,
              w->value, w->epoch);
    }
    CHECK(g->n == nwant, "%s: %zu points, want %zu (next got: %s)", what, g->n, nwant,
          g->n > nwant ? g->pts[nwant].name : "-");
}

/* Runs parser over the fixture and checks the whole list of points. */
static void check_fixture(const char *parser, const char *file, const struct want *want,
                          size_t nwant) {
    struct ava_logparse *lp;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_logparse_new(parser, NULL, 0, &lp, err), 0);
    size_t len;
    char *text = read_fixture(file, &len);
    struct got g = {.n = 0};
    feed(lp, text, len, &g);
    check_points(file, &g, want, nwant);
    ava_logparse_free(lp);
}

#define FIXTURE(parser, file, table) check_fixture(parser, file, table, N_ELEMS(table))

/* ---- MXNet ---- */

static const struct want mxnet_points[] = {
    {"samples_per_sec", "train", 20, 1523.31, 0},
    {"accuracy", "train", 20, 0.105469, 0},
    {"top_k_accuracy_5", "train", 20, 0.512109, 0},
    {"cross-entropy", "train", 20, 2.296210, 0},
    {"samples_per_sec", "train", 40, 1542.27, 0},
    {"accuracy", "train", 40, 0.167969, 0},
    {"top_k_accuracy_5", "train", 40, 0.623438, 0},
    {"cross-entropy", "train", 40, 2.187712, 0},
    {"samples_per_sec", "train", 60, 1532.04, 0},
    {"accuracy", "train", 60, 0.213281, 0},
    {"top_k_accuracy_5", "train", 60, 0.701953, 0},
    {"cross-entropy", "train", 60, 2.074519, 0},
    /* Train- averages of epoch 0 are dropped: Speedometer drew that curve */
    {"epoch_time", "", 60, 5.412, 0},
    {"accuracy", "val", 60, 0.264844, 0},
    {"top_k_accuracy_5", "val", 60, 0.784766, 0},
    {"cross-entropy", "val", 60, 1.989342, 0},
    /* epoch 1: 61 batches per epoch learned (0..60), so batch 20 is step 81 */
    {"samples_per_sec", "train", 81, 1536.66, 1},
    {"accuracy", "train", 81, 0.279297, 1},
    {"top_k_accuracy_5", "train", 81, 0.801172, 1},
    {"cross-entropy", "train", 81, 1.951208, 1},
    {"learning_rate", "train", 80, 5e-3, -1},
    /* "Speed: inf" is skipped, the metrics after it are not */
    {"accuracy", "train", 101, 0.301953, 1},
    {"top_k_accuracy_5", "train", 101, 0.829297, 1},
    {"cross-entropy", "train", 101, 1.902233, 1},
    {"epoch_time", "", 101, 4.198, 1},
    {"accuracy", "val", 101, 0.341797, 1},
};

static const struct want mxnet_0x_points[] = {
    {"samples_per_sec", "train", 50, 1012.55, 0},
    {"accuracy", "train", 50, 0.6125, 0},
    {"samples_per_sec", "train", 100, 1020.31, 0},
    {"accuracy", "train", 100, 0.89375, 0},
    {"epoch_time", "", 100, 9.317, 0},
    {"accuracy", "val", 100, 0.921875, 0},
    {"samples_per_sec", "train", 151, 1015.87, 1},
    {"accuracy", "train", 151, 0.935938, 1},
    {"samples_per_sec", "train", 201, 1019.02, 1},
    {"learning_rate", "train", 150, 1e-8, -1},
};

static void test_mxnet_fixtures(void **state) {
    (void)state;
    FIXTURE("mxnet", "mxnet.log", mxnet_points);
    FIXTURE("mxnet", "mxnet_0.x.log", mxnet_0x_points);
}

/* Without Speedometer, epoch lines are all there is: the epoch is the step. */
static void test_mxnet_epoch_lines_only(void **state) {
    (void)state;
    static const char log[] = "INFO:root:Epoch[0] Train-accuracy=0.500000\n"
                              "INFO:root:Epoch[0] Time cost=10.000\n"
                              "INFO:root:Epoch[0] Validation-accuracy=0.600000\n"
                              "INFO:root:Epoch[1] Train-accuracy=0.700000\n"
                              "INFO:root:Epoch[1] Validation-accuracy=0.800000\n";
    static const struct want want[] = {
        {"accuracy", "train", 0, 0.5, 0}, {"epoch_time", "", 0, 10, 0},
        {"accuracy", "val", 0, 0.6, 0},   {"accuracy", "train", 1, 0.7, 1},
        {"accuracy", "val", 1, 0.8, 1},
    };
    struct ava_logparse *lp;
    assert_int_equal(ava_logparse_new("mxnet", NULL, 0, &lp, NULL), 0);
    struct got g = {.n = 0};
    feed(lp, log, sizeof log - 1, &g);
    check_points("epoch lines", &g, want, N_ELEMS(want));
    ava_logparse_free(lp);
}

/* ---- Caffe ---- */

static const struct want caffe_points[] = {
    {"accuracy", "val", 0, 0.0977, -1},
    {"loss", "val", 0, 2.30847, -1},
    {"loss", "train", 0, 2.32513, -1}, /* the "Train net output: loss" repeat is not kept */
    {"learning_rate", "train", 0, 0.01, -1},
    {"loss", "train", 100, 0.213658, -1},
    {"learning_rate", "train", 100, 0.00992565, -1},
    {"accuracy", "val", 500, 0.9713, -1},
    {"loss", "val", 500, 0.0902457, -1},
    {"loss", "train", 10000, 0.00270936, -1},
    {"accuracy", "val", 10000, 0.9908, -1},
    {"loss", "val", 10000, 0.0287214, -1},
};

static const struct want caffe_googlenet_points[] = {
    {"loss", "train", 0, 2.4185, -1},           {"loss1/loss1", "train", 0, 4.40975, -1},
    {"loss2/loss2", "train", 0, 1.00351, -1},   {"loss3/loss3", "train", 0, 0.794524, -1},
    {"learning_rate", "train", 0, 0.01, -1},    {"loss", "train", 40, 1.68719, -1},
    {"loss1/loss1", "train", 40, 1.04423, -1},  {"loss2/loss2", "train", 40, 0.641296, -1},
    {"loss3/loss3", "train", 40, 0.706645, -1}, {"learning_rate", "train", 40, 0.01, -1},
};

static void test_caffe_fixtures(void **state) {
    (void)state;
    FIXTURE("caffe", "caffe.log", caffe_points);
    FIXTURE("caffe", "caffe_googlenet.log", caffe_googlenet_points);
}

/* A second test net reports as phase val1; names are made ava names. */
static void test_caffe_second_test_net(void **state) {
    (void)state;
    static const char log[] = "I0101 00:00:00.000000 1 solver.cpp:330] Iteration 1000, Testing "
                              "net (#1)\n"
                              "I0101 00:00:00.000000 1 solver.cpp:397]     Test net output #0: "
                              "loss3/Top-5 = 0.91\n"
                              "Iteration 1100, loss = 0.5\n";
    static const struct want want[] = {
        {"loss3/top-5", "val1", 1000, 0.91, -1},
        {"loss", "train", 1100, 0.5, -1},
    };
    struct ava_logparse *lp;
    assert_int_equal(ava_logparse_new("caffe", NULL, 0, &lp, NULL), 0);
    struct got g = {.n = 0};
    feed(lp, log, sizeof log - 1, &g);
    check_points("caffe test net 1", &g, want, N_ELEMS(want));
    ava_logparse_free(lp);
}

/* ---- darknet ---- */

static const struct want darknet_points[] = {
    {"loss", "train", 1, 2.352150, 0},       {"avg_loss", "train", 1, 2.352150, 0},
    {"learning_rate", "train", 1, 0.1, 0},   {"loss", "train", 2, 2.321903, 0},
    {"avg_loss", "train", 2, 2.349125, 0},   {"learning_rate", "train", 2, 0.1, 0},
    {"loss", "train", 391, 1.512003, 1},     {"avg_loss", "train", 391, 1.605114, 1},
    {"learning_rate", "train", 391, 0.1, 1},
};

static const struct want darknet_detector_points[] = {
    {"loss", "train", 1, 713.374329, -1},        {"avg_loss", "train", 1, 713.374329, -1},
    {"learning_rate", "train", 1, 0, -1},        {"loss", "train", 2, 712.021240, -1},
    {"avg_loss", "train", 2, 713.239014, -1},    {"learning_rate", "train", 2, 0, -1},
    {"loss", "train", 9002, 0.211667, -1},       {"avg_loss", "train", 9002, 0.060730, -1},
    {"learning_rate", "train", 9002, 0.001, -1},
};

static const struct want darknet_alexeyab_points[] = {
    {"loss", "train", 100, 45.021004, -1},       {"avg_loss", "train", 100, 52.310310, -1},
    {"learning_rate", "train", 100, 0.0001, -1}, {"loss", "train", 1000, 2.012448, -1},
    {"avg_loss", "train", 1000, 2.211870, -1},   {"learning_rate", "train", 1000, 0.001, -1},
};

static void test_darknet_fixtures(void **state) {
    (void)state;
    FIXTURE("darknet", "darknet.log", darknet_points);
    FIXTURE("darknet", "darknet_detector.log", darknet_detector_points);
    FIXTURE("darknet", "darknet_alexeyab.log", darknet_alexeyab_points);
}

/* ---- Keras ---- */

static const struct want keras_points[] = {
    {"loss", "train", 1, 2.3454, 1},    {"accuracy", "train", 1, 0.0938, 1},
    {"loss", "train", 62, 1.1934, 1},   {"accuracy", "train", 62, 0.6684, 1},
    {"loss", "train", 126, 0.8823, 1},  {"accuracy", "train", 126, 0.7550, 1},
    {"loss", "train", 1875, 0.2982, 1}, {"accuracy", "train", 1875, 0.9135, 1},
    {"loss", "val", 1875, 0.1404, 1},   {"accuracy", "val", 1875, 0.9580, 1},
    {"loss", "train", 1876, 0.1107, 2}, {"accuracy", "train", 1876, 0.9688, 2},
    {"loss", "train", 3750, 0.1421, 2}, {"accuracy", "train", 3750, 0.9578, 2},
    {"loss", "val", 3750, 0.1012, 2},   {"accuracy", "val", 3750, 0.9691, 2},
    /* evaluate()'s 313-step bar afterwards is not a training curve */
};

static const struct want keras3_points[] = {
    {"accuracy", "train", 1, 0.0938, 1},       {"loss", "train", 1, 2.3454, 1},
    {"accuracy", "train", 938, 0.7922, 1},     {"loss", "train", 938, 0.6311, 1},
    {"accuracy", "train", 1875, 0.8231, 1},    {"loss", "train", 1875, 0.5015, 1},
    {"accuracy", "val", 1875, 0.8512, 1},      {"loss", "val", 1875, 0.4150, 1},
    {"accuracy", "train", 3750, 0.8607, 2},    {"loss", "train", 3750, 3.9210e-04, 2},
    {"accuracy", "val", 3750, 0.8650, 2},      {"loss", "val", 3750, 0.3770, 2},
    {"learning_rate", "train", 3750, 1e-3, 2},
};

static void test_keras_fixtures(void **state) {
    (void)state;
    FIXTURE("keras", "keras.log", keras_points);
    FIXTURE("keras", "keras3.log", keras3_points);
}

/* Runs a keras parser over log and checks the points. */
static void check_keras_log(const char *what, const char *log, const struct want *want,
                            size_t nwant) {
    struct ava_logparse *lp;
    assert_int_equal(ava_logparse_new("keras", NULL, 0, &lp, NULL), 0);
    struct got g = {.n = 0};
    feed(lp, log, strlen(log), &g);
    check_points(what, &g, want, nwant);
    ava_logparse_free(lp);
}

/* Each '\r' update of a line counts, older names (acc, lr) are mapped, and a second fit()
 * in the same process continues the steps. */
static void test_keras_updates_and_second_fit(void **state) {
    (void)state;
    static const char log[] =
        "Epoch 1/2\n"
        "\r 10/20 [==>...] - ETA: 1s - loss: 0.9 - acc: 0.5\r20/20 [======] - 1s 5ms/step - "
        "loss: 0.8 - acc: 0.6 - val_loss: 0.7 - val_acc: 0.65 - lr: 0.0010\n"
        "Epoch 1/1\n"
        "20/20 - 0s - 2ms/step - loss: 0.5\n";
    static const struct want want[] = {
        {"loss", "train", 10, 0.9, 1},
        {"accuracy", "train", 10, 0.5, 1},
        {"loss", "train", 20, 0.8, 1},
        {"accuracy", "train", 20, 0.6, 1},
        {"loss", "val", 20, 0.7, 1},
        {"accuracy", "val", 20, 0.65, 1},
        {"learning_rate", "train", 20, 0.001, 1},
        {"loss", "train", 21, 0.5, 1},
    };
    check_keras_log("keras updates", log, want, N_ELEMS(want));
}

/* Keras 2.2's verbose=2 lines have no counter: the epoch is the step. */
static void test_keras_verbose2_epoch_lines(void **state) {
    (void)state;
    static const char log[] = "Epoch 1/2\n - 5s - loss: 0.3 - acc: 0.9\n"
                              "Epoch 2/2\n - 4s - loss: 0.2 - acc: 0.95 - val_loss: 0.25\n";
    static const struct want want[] = {
        {"loss", "train", 1, 0.3, 1}, {"accuracy", "train", 1, 0.9, 1},
        {"loss", "train", 2, 0.2, 2}, {"accuracy", "train", 2, 0.95, 2},
        {"loss", "val", 2, 0.25, 2},
    };
    check_keras_log("keras verbose=2", log, want, N_ELEMS(want));
}

/* Unknown totals: batches per epoch learned from the first epoch (largest counter + 1). */
static void test_keras_unknown_totals(void **state) {
    (void)state;
    static const char log[] = "Epoch 1/2\n"
                              "\r      1/Unknown - 1s 3ms/step - loss: 0.5"
                              "\r      2/Unknown - 1s 3ms/step - loss: 0.4\n"
                              "Epoch 2/2\n"
                              "\r      1/Unknown - 1s 3ms/step - loss: 0.3\n";
    static const struct want want[] = {
        {"loss", "train", 1, 0.5, 1},
        {"loss", "train", 2, 0.4, 1},
        {"loss", "train", 4, 0.3, 2},
    };
    check_keras_log("keras unknown", log, want, N_ELEMS(want));
}

/* ---- PyTorch ---- */

static const struct want pytorch_mnist_points[] = {
    {"loss", "train", 0, 2.305400, 1},     {"loss", "train", 640, 1.359780, 1},
    {"loss", "train", 1280, 0.830663, 1},  {"loss", "train", 59520, 0.032140, 1},
    {"loss", "val", 59520, 0.0488, 1},     {"accuracy", "val", 59520, 0.9843, 1},
    {"loss", "train", 60000, 0.021300, 2}, {"loss", "train", 60640, 0.044516, 2},
    {"loss", "val", 60640, 0.0336, 2},     {"accuracy", "val", 60640, 0.9887, 2},
};

static const struct want pytorch_imagenet_points[] = {
    {"loss", "train", 0, 6.9335, 0},
    {"accuracy", "train", 0, 0.0, 0},
    {"top_k_accuracy_5", "train", 0, 0.0039, 0},
    {"loss", "train", 10, 6.9561, 0},
    {"accuracy", "train", 10, 0.0039, 0},
    {"top_k_accuracy_5", "train", 10, 0.0078, 0},
    {"loss", "train", 5000, 4.8120, 0},
    {"accuracy", "train", 5000, 0.125, 0},
    {"top_k_accuracy_5", "train", 5000, 0.3047, 0},
    {"accuracy", "val", 5000, 0.15180, 0},
    {"top_k_accuracy_5", "val", 5000, 0.36042, 0},
    {"loss", "train", 5005, 4.4120, 1},
    {"accuracy", "train", 5005, 0.1719, 1},
    {"top_k_accuracy_5", "train", 5005, 0.3828, 1},
};

static void test_pytorch_fixtures(void **state) {
    (void)state;
    FIXTURE("pytorch", "pytorch_mnist.log", pytorch_mnist_points);
    FIXTURE("pytorch", "pytorch_imagenet.log", pytorch_imagenet_points);
}

/* The older imagenet example's lines, and a summary before any training line. */
static void test_pytorch_older_imagenet(void **state) {
    (void)state;
    static const char log[] =
        " * Acc@1 75.880 Acc@5 92.712\n"
        "Epoch: [3][100/5005]\tTime 0.300 (0.310)\tData 0.010 (0.020)\t"
        "Loss 1.2345 (1.3000)\tAcc@1 70.312 (68.100)\tAcc@5 89.062 (88.000)\n";
    static const struct want want[] = {
        {"accuracy", "val", 0, 0.7588, -1},
        {"top_k_accuracy_5", "val", 0, 0.92712, -1},
        {"loss", "train", 15115, 1.2345, 3},
        {"accuracy", "train", 15115, 0.70312, 3},
        {"top_k_accuracy_5", "train", 15115, 0.89062, 3},
    };
    struct ava_logparse *lp;
    assert_int_equal(ava_logparse_new("pytorch", NULL, 0, &lp, NULL), 0);
    struct got g = {.n = 0};
    feed(lp, log, sizeof log - 1, &g);
    check_points("older imagenet", &g, want, N_ELEMS(want));
    ava_logparse_free(lp);
}

/* ---- look-alikes, limits ---- */

static const struct {
    const char *parser, *line;
} lookalikes[] = {
    {"mxnet", "INFO:root:Epoch[0] Resetting Data Iterator"},
    {"mxnet", "INFO:root:Epoch[x] Batch [20]\tSpeed: 100.00 samples/sec\taccuracy=0.5"},
    {"mxnet", "INFO:root:Batch [20]\tSpeed: 100.00 samples/sec"},
    {"mxnet", "INFO:root:Epoch[0] Validation-accuracy=nan"},
    {"mxnet", "INFO:root:Epoch[0] Validation-accuracy=0.5 (best)"},
    {"mxnet", "INFO:root:Epoch[0] Batch [20]Speed: 1.0 samples/sec"},
    {"mxnet", "INFO:root:Update[10]: learning rate is 0.1"},
    {"mxnet", "Epoch[0] Saved checkpoint to \"model-0001.params\""},
    {"caffe", "base_lr: 0.01"},
    {"caffe", "I1126 04:30:01.000000 1 net.cpp:84] Creating Layer loss"},
    {"caffe", "I1126 04:30:01.000000 1 solver.cpp:218] Iteration 100 (1 iter/s), loss = nan"},
    {"caffe", "I1126 04:30:01.000000 1 solver.cpp:237]     Train net output #0: accuracy"},
    {"caffe", "I1126 04:30:01.000000 1 solver.cpp:310] Iteration x, loss = 0.5"},
    {"caffe", "I1126 04:30:01.000000 1 solver.cpp:397]     Test loss: 0.5"},
    {"caffe", "E1126 04:30:01.000000 1 x.cpp:1] Iteration 5 of the data reader restarted"},
    {"darknet", "Learning Rate: 0.1, Momentum: 0.9, Decay: 0.0005"},
    {"darknet", "Loaded: 0.000040 seconds"},
    {"darknet", "416"},
    {"darknet", "1: 2.0, 3.0 avg"},
    {"darknet", "12: top 1: 0.500000, top 5: 0.900000"},
    {"darknet", "Region Avg IOU: 0.287866, Class: 0.028420, Obj: 0.548111, No Obj: 0.546645"},
    {"keras", "Epoch 1/10 (resumed)"},
    {"keras", "Total params: 101,770"},
    {"keras", "Trainable params: 101,770 - loss: 0.5"},
    {"keras", "loss: 0.5015 - accuracy: 0.8231"},
    {"keras", "      1/Unknown - 2s 2s/step"},
    {"keras", "  46/1875 [.....] - ETA: 2s - loss: nan - accuracy: 0.5s"},
    {"pytorch", "Train Epoch: x [0/60000 (0%)]\tLoss: 2.3"},
    {"pytorch", "Test: [  0/196]\tTime  4.512 ( 4.512)\tLoss 4.2e+00 (4.2e+00)\tAcc@1  19.53"},
    {"pytorch", "=> creating model 'resnet18'"},
    {"pytorch", "Epoch: [0]"},
    {"pytorch", " * Acc@1 n/a"},
};

static void test_lookalike_lines_give_nothing(void **state) {
    (void)state;
    for (size_t i = 0; i < N_ELEMS(lookalikes); i++) {
        struct ava_logparse *lp;
        assert_int_equal(ava_logparse_new(lookalikes[i].parser, NULL, 0, &lp, NULL), 0);
        struct ava_point p[8];
        size_t n = ava_logparse_line(lp, lookalikes[i].line, strlen(lookalikes[i].line), p, 8);
        CHECK(n == 0, "%s: \"%s\" gave %zu points (first %s)", lookalikes[i].parser,
              lookalikes[i].line, n, p[0].name);
        ava_logparse_free(lp);
    }
}

static void test_capacity_and_long_lines(void **state) {
    (void)state;
    struct ava_logparse *lp;
    assert_int_equal(ava_logparse_new("keras", NULL, 0, &lp, NULL), 0);
    const char *line = "1/10 [..] - loss: 1.0 - accuracy: 0.5 - val_loss: 0.9";
    struct ava_point p[2];
    assert_int_equal(ava_logparse_line(lp, line, strlen(line), p, 2), 2);
    assert_int_equal(ava_logparse_line(lp, line, strlen(line), p, 0), 0);
    /* a megabyte of progress updates on one line, and one update longer than the limit */
    size_t len = 1 << 20;
    char *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = i % 100 == 0 ? '\r' : i % 7 == 0 ? '\b' : '=';
    assert_int_equal(ava_logparse_line(lp, big, len, p, 2), 0);
    memset(big, 'x', len);
    memcpy(big + len - 20, "1/10 - loss: 1.0", 16);
    assert_int_equal(ava_logparse_line(lp, big, len, p, 2), 0);
    free(big);
    ava_logparse_free(lp);
}

/* Numbers at the edge of int64 in a log give points with sane steps, never overflow. */
static void test_huge_counters(void **state) {
    (void)state;
    static const struct {
        const char *parser, *log;
    } logs[] = {
        {"mxnet", "Epoch[0] Batch [9223372036854775807]\tSpeed: 1.0 samples/sec\n"
                  "Epoch[9223372036854775807] Batch [9223372036854775807]\tSpeed: 1.0 "
                  "samples/sec\n"
                  "Epoch[9223372036854775807] Validation-accuracy=0.5\n"
                  "Epoch[1] Batch [1]\tSpeed: 1.0 samples/sec\n"},
        {"keras", "Epoch 9223372036854775807/9223372036854775807\n"
                  "9223372036854775807/9223372036854775807 - loss: 1.0\n"
                  "Epoch 1/1\n"
                  "1/9223372036854775807 - loss: 1.0\n"},
        {"pytorch", "Epoch: [9223372036854775807][9223372036854775807/9223372036854775807]"
                    "\tLoss 1.0 (1.0)\n"
                    " * Acc@1 1.0 Acc@5 2.0\n"
                    "Train Epoch: 9223372036854775807 [9223372036854775807/1 (0%)]\tLoss: 1\n"},
        {"caffe", "Iteration 9223372036854775807, loss = 1\nIteration 9223372036854775808, "
                  "loss = 1\n"},
    };
    for (size_t i = 0; i < N_ELEMS(logs); i++) {
        struct ava_logparse *lp;
        assert_int_equal(ava_logparse_new(logs[i].parser, NULL, 0, &lp, NULL), 0);
        struct got g = {.n = 0};
        feed(lp, logs[i].log, strlen(logs[i].log), &g);
        CHECK(g.n > 0, "%s: no points", logs[i].parser);
        for (size_t j = 0; j < g.n; j++)
            CHECK(g.pts[j].step >= 0, "%s: point %zu step %" PRId64, logs[i].parser, j,
                  g.pts[j].step);
        ava_logparse_free(lp);
    }
}

/* ---- the parser object and user rules ---- */

static void test_new_refuses_unknown_parsers(void **state) {
    (void)state;
    struct ava_logparse *lp = (struct ava_logparse *)1;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_logparse_new("tensorflow", NULL, 0, &lp, err), AVA_EINVALID);
    assert_null(lp);
    assert_non_null(strstr(err, "\"tensorflow\""));
    const char *none[] = {NULL, "", "none"};
    for (size_t i = 0; i < N_ELEMS(none); i++) {
        assert_int_equal(ava_logparse_new(none[i], NULL, 0, &lp, err), 0);
        struct ava_point p[4];
        const char *line = "Iteration 100, loss = 0.5";
        assert_int_equal(ava_logparse_line(lp, line, strlen(line), p, 4), 0);
        ava_logparse_free(lp);
    }
    size_t n = 0;
    for (; ava_logparse_builtin[n]; n++) {
        assert_int_equal(ava_logparse_new(ava_logparse_builtin[n], NULL, 0, &lp, err), 0);
        ava_logparse_free(lp);
    }
    assert_int_equal(n, 5);
    ava_logparse_free(NULL);
}

static const struct {
    const char *rule, *says;
} bad_rules[] = {
    {"throughput=Speed: [0-9.]+ samples", "exactly one capture group"},
    {"throughput=Speed: ([0-9.]+) (samples)", "exactly one capture group"},
    {"throughput=Speed: ([0-9.]+", "bad regular expression"},
    {"bad name=Speed: ([0-9.]+)", "NAME=REGEX"},
    {"loss:train=Loss ([0-9.]+)", "NAME=REGEX"},
    {"=Speed: ([0-9.]+)", "NAME=REGEX"},
    {"throughput", "NAME=REGEX"},
    {"throughput=", "empty regular expression"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=(x)", "NAME=REGEX"},
};

static void test_rules_refused(void **state) {
    (void)state;
    for (size_t i = 0; i < N_ELEMS(bad_rules); i++) {
        const char *rules[] = {"ok=ok ([0-9]+)", bad_rules[i].rule};
        struct ava_logparse *lp = NULL;
        char err[AVA_ERRLEN] = "";
        int rc = ava_logparse_new(NULL, rules, 2, &lp, err);
        CHECK(rc == AVA_EINVALID && !lp, "%s: rc %d", bad_rules[i].rule, rc);
        CHECK(strstr(err, "rule 2") && strstr(err, bad_rules[i].says), "%s: \"%s\"",
              bad_rules[i].rule, err);
    }
    const char *many[AVA_LOGPARSE_MAX_RULES + 1];
    for (size_t i = 0; i < N_ELEMS(many); i++)
        many[i] = "m=v ([0-9]+)";
    struct ava_logparse *lp = NULL;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_logparse_new(NULL, many, 41, &lp, err), AVA_EINVALID);
    assert_non_null(strstr(err, "at most 40"));
    assert_int_equal(ava_logparse_new(NULL, many, 40, &lp, err), 0);
    ava_logparse_free(lp);
}

/* Without a built-in parser a rule's step is the line number; with one, the current step.
 * Rule names are kept as written. */
static void test_rules_apply(void **state) {
    (void)state;
    const char *rules[] = {"throughput=Speed: ([0-9.]+) samples", "GPU.Temp=temp=(-?[0-9]+)C"};
    static const char log[] = "Epoch[0] Batch [20]\tSpeed: 100.50 samples/sec\n"
                              "unrelated\n"
                              "Speed: fast samples\n"
                              "Epoch[0] Batch [40]\tSpeed: 200 samples/sec temp=-5C\n";
    static const struct want plain[] = {
        {"throughput", "", 1, 100.5, -1},
        {"throughput", "", 4, 200, -1},
        {"GPU.Temp", "", 4, -5, -1},
    };
    static const struct want with_mxnet[] = {
        {"samples_per_sec", "train", 20, 100.5, 0},
        {"throughput", "", 20, 100.5, -1},
        {"samples_per_sec", "train", 40, 200, 0},
        {"throughput", "", 40, 200, -1},
        {"GPU.Temp", "", 40, -5, -1},
    };
    struct ava_logparse *lp;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_logparse_new("", rules, 2, &lp, err), 0);
    struct got g = {.n = 0};
    feed(lp, log, sizeof log - 1, &g);
    check_points("rules alone", &g, plain, N_ELEMS(plain));
    ava_logparse_free(lp);

    assert_int_equal(ava_logparse_new("mxnet", rules, 2, &lp, err), 0);
    g.n = 0;
    feed(lp, log, sizeof log - 1, &g);
    check_points("rules with mxnet", &g, with_mxnet, N_ELEMS(with_mxnet));
    ava_logparse_free(lp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxnet_fixtures),
        cmocka_unit_test(test_mxnet_epoch_lines_only),
        cmocka_unit_test(test_caffe_fixtures),
        cmocka_unit_test(test_caffe_second_test_net),
        cmocka_unit_test(test_darknet_fixtures),
        cmocka_unit_test(test_keras_fixtures),
        cmocka_unit_test(test_keras_updates_and_second_fit),
        cmocka_unit_test(test_keras_verbose2_epoch_lines),
        cmocka_unit_test(test_keras_unknown_totals),
        cmocka_unit_test(test_pytorch_fixtures),
        cmocka_unit_test(test_pytorch_older_imagenet),
        cmocka_unit_test(test_lookalike_lines_give_nothing),
        cmocka_unit_test(test_capacity_and_long_lines),
        cmocka_unit_test(test_huge_counters),
        cmocka_unit_test(test_new_refuses_unknown_parsers),
        cmocka_unit_test(test_rules_refused),
        cmocka_unit_test(test_rules_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
