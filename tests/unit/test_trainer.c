/* test_trainer.c: the example trainer ava-train-c (examples/trainings/c/simple): numerical
 * gradient checks of its layers and network, im2col against a naive convolution, the
 * checkpoint format, resume continuity, raw payload shapes and the RecordIO/LMDB loaders. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../examples/trainings/c/simple/ckpt.h"
#include "../../examples/trainings/c/simple/data.h"
#include "../../examples/trainings/c/simple/layers.h"
#include "../../examples/trainings/c/simple/net.h"
#include "../../examples/trainings/c/simple/train.h"
#include "../../src/common/err.h"
#include "../../src/common/file.h"
#include "../../src/common/path.h"
#include "../../src/data/image.h"
#include "../../src/data/lmdbw.h"
#include "../../src/data/recordio.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---- */

/* A deterministic uniform float in [-1, 1). */
static float frand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *v, size_t n, uint64_t *s) {
    for (size_t i = 0; i < n; i++)
        v[i] = frand(s);
}

static double dot(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d += (double)a[i] * b[i];
    return d;
}

/* Fails unless the analytic gradient matches the numerical one within 1e-2 relative error
 * (an absolute floor of 1e-4 for gradients near zero). */
static void check_grad(const char *what, size_t i, double analytic, double numeric) {
    double scale = fmax(fabs(analytic), fabs(numeric));
    if (fabs(analytic - numeric) > 1e-2 * scale + 1e-4)
        fail_msg("%s[%zu]: analytic %.6g, numerical %.6g", what, i, analytic, numeric);
}

static void make_tmpdir(char *out, size_t outlen) {
    snprintf(out, outlen, "/tmp/ava-test-trainer-XXXXXX");
    assert_non_null(mkdtemp(out));
}

/* Runs fn with stdout sent to /dev/null (the trainer's progress lines). */
static int quietly(int (*fn)(void *), void *arg) {
    fflush(stdout);
    int saved = dup(1), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    close(null);
    int r = fn(arg);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return r;
}

/* ---- im2col and convolution ---- */

/* The convolution of x (C x N x H x W) by w (cout x C x k x k) computed directly. */
static void naive_conv(const struct tr_conv_geom *g, const float *x, const float *w, const float *b,
                       int cout, float *y) {
    for (int o = 0; o < cout; o++)
        for (int n = 0; n < g->N; n++)
            for (int oy = 0; oy < g->Ho; oy++)
                for (int ox = 0; ox < g->Wo; ox++) {
                    double s = b[o];
                    for (int c = 0; c < g->C; c++)
                        for (int ky = 0; ky < g->k; ky++)
                            for (int kx = 0; kx < g->k; kx++) {
                                int iy = oy + ky - g->pad, ix = ox + kx - g->pad;
                                if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W)
                                    continue;
                                s += (double)w[((o * g->C + c) * g->k + ky) * g->k + kx] *
                                     x[((c * g->N + n) * g->H + iy) * g->W + ix];
                            }
                    y[((size_t)(o * g->N + n) * g->Ho + oy) * g->Wo + ox] = (float)s;
                }
}

static void test_im2col_matches_naive_conv(void **state) {
    (void)state;
    /* {C, N, H, W, k, pad}: square and not, padded and not, kernel wider than the pad */
    const int cases[][6] = {{1, 1, 5, 5, 3, 1},
                            {2, 3, 6, 4, 5, 2},
                            {3, 2, 7, 5, 3, 0},
                            {2, 2, 4, 6, 5, 1},
                            {1, 2, 28, 28, 5, 2}};
    uint64_t seed = 42;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *c = cases[t], cout = 4;
        struct tr_conv_geom g;
        assert_int_equal(tr_conv_geom_init(&g, c[0], c[1], c[2], c[3], c[4], c[5]), 0);
        size_t nx = (size_t)c[0] * c[1] * c[2] * c[3], K = tr_col_rows(&g), M = tr_col_cols(&g);
        float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * cout * K);
        float *b = malloc(sizeof(float) * cout), *col = malloc(sizeof(float) * K * M);
        float *y = malloc(sizeof(float) * cout * M), *want = malloc(sizeof(float) * cout * M);
        float *r = malloc(sizeof(float) * K * M), *back = malloc(sizeof(float) * nx);
        fill(x, nx, &seed), fill(w, cout * K, &seed), fill(b, cout, &seed);
        tr_im2col(&g, x, col);
        tr_conv_forward(w, b, col, cout, (int)K, (int)M, y, (int)M);
        naive_conv(&g, x, w, b, cout, want);
        for (size_t i = 0; i < cout * M; i++)
            if (fabsf(y[i] - want[i]) > 1e-4f * (1 + fabsf(want[i])))
                fail_msg("case %zu: y[%zu] %g, naive %g", t, i, y[i], want[i]);
        /* col2im is im2col's adjoint: <im2col(x), r> = <x, col2im(r)> */
        fill(r, K * M, &seed);
        tr_col2im(&g, r, back);
        double lhs = dot(col, r, K * M), rhs = dot(x, back, nx);
        if (fabs(lhs - rhs) > 1e-4 * (1 + fabs(lhs)))
            fail_msg("case %zu: <im2col x, r> %g != <x, col2im r> %g", t, lhs, rhs);
        free(x), free(w), free(b), free(col), free(y), free(want), free(r), free(back);
    }
}

/* tr_conv_backward_wt: the transposed weight gradient (overwritten, then accumulated), the
 * bias gradient and dcol all match tr_conv_backward's. */
static void test_conv_backward_transposed(void **state) {
    (void)state;
    enum { COUT = 5, K = 18, M = 37, LDY = 45 };
    uint64_t seed = 13;
    float w[COUT * K], col[2][K * M], dy[2][COUT * LDY];
    float dw[COUT * K], dwt[K * COUT], db[2][COUT], dcol[2][K * M];
    fill(w, COUT * K, &seed), fill(col[0], 2 * K * M, &seed), fill(dy[0], 2 * COUT * LDY, &seed);
    for (int acc = 0; acc < 2; acc++) {
        tr_conv_backward(w, col[acc], dy[acc], LDY, COUT, K, M, acc, dw, db[0], dcol[0]);
        tr_conv_backward_wt(w, col[acc], dy[acc], LDY, COUT, K, M, acc, dwt, db[1], dcol[1]);
        for (int o = 0; o < COUT; o++)
            for (int k = 0; k < K; k++)
                assert_float_equal(dw[o * K + k], dwt[k * COUT + o],
                                   1e-5 * (1 + fabsf(dw[o * K + k])));
        for (int o = 0; o < COUT; o++)
            assert_float_equal(db[0][o], db[1][o], 1e-5 * (1 + fabsf(db[0][o])));
        for (int i = 0; i < K * M; i++)
            assert_float_equal(dcol[0][i], dcol[1][i], 1e-5 * (1 + fabsf(dcol[0][i])));
    }
    double want = 0; /* one entry against its definition: both samples' sums */
    for (int a = 0; a < 2; a++)
        for (int m = 0; m < M; m++)
            want += (double)dy[a][2 * LDY + m] * col[a][7 * M + m];
    assert_float_equal(dwt[7 * COUT + 2], want, 1e-4 * (1 + fabs(want)));
}

/* tr_im2col_range_z: refilling a buffer that holds an unfolding of the same geometry and
 * sample count (zeroed) gives exactly the full unfolding of the new samples, whose padding
 * stays zero; not zeroed, it overwrites every entry of a garbage-filled buffer. */
static void test_im2col_refill(void **state) {
    (void)state;
    const int cases[][6] = {{2, 4, 6, 5, 5, 2}, {3, 5, 4, 7, 3, 1}, {1, 3, 7, 5, 3, 0}};
    uint64_t seed = 11;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *c = cases[t];
        for (int nc = 1; nc <= 2; nc++) {
            struct tr_conv_geom g;
            assert_int_equal(tr_conv_geom_init(&g, c[0], c[1], c[2], c[3], c[4], c[5]), 0);
            size_t nx = (size_t)c[0] * c[1] * c[2] * c[3], K = tr_col_rows(&g);
            size_t n = K * nc * g.Ho * g.Wo;
            float *x = malloc(sizeof(float) * nx), *want = malloc(sizeof(float) * n);
            float *got = malloc(sizeof(float) * n);
            fill(x, nx, &seed);
            for (size_t i = 0; i < n; i++)
                got[i] = NAN; /* garbage: every entry must be written */
            tr_im2col_range_z(&g, x, 0, nc, got, false);
            tr_im2col_range(&g, x, 0, nc, want);
            assert_memory_equal(got, want, sizeof(float) * n);
            for (int n0 = 1; n0 + nc <= g.N; n0++) { /* refills of the same shape */
                tr_im2col_range_z(&g, x, n0, nc, got, true);
                tr_im2col_range(&g, x, n0, nc, want);
                for (size_t i = 0; i < n; i++)
                    if (memcmp(&got[i], &want[i], sizeof(float)))
                        fail_msg("case %zu nc %d n0 %d: col[%zu] %g, want %g", t, nc, n0, i, got[i],
                                 want[i]);
            }
            free(x), free(want), free(got);
        }
    }
}

/* The chunked forms the network uses: im2col of a range of samples is those samples' columns
 * of the whole im2col, col2im of a range writes those samples only (the same values), and
 * convolutions over column blocks (ldy) with accumulated gradients give the whole's. */
static void test_im2col_ranges_and_chunks(void **state) {
    (void)state;
    const int cases[][6] = {{2, 4, 6, 5, 5, 2}, {1, 3, 7, 5, 3, 0}}; /* "same" and not */
    uint64_t seed = 5;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *c = cases[t], cout = 3, n0 = 1, nc = 2;
        struct tr_conv_geom g;
        assert_int_equal(tr_conv_geom_init(&g, c[0], c[1], c[2], c[3], c[4], c[5]), 0);
        size_t nx = (size_t)c[0] * c[1] * c[2] * c[3], K = tr_col_rows(&g), M = tr_col_cols(&g);
        size_t S = (size_t)g.Ho * g.Wo, plane = (size_t)g.H * g.W, mc = nc * S;
        float *x = malloc(sizeof(float) * nx), *col = malloc(sizeof(float) * K * M);
        float *part = malloc(sizeof(float) * K * mc), *r = malloc(sizeof(float) * K * M);
        float *back = malloc(sizeof(float) * nx), *pback = malloc(sizeof(float) * nx);
        fill(x, nx, &seed);
        tr_im2col(&g, x, col);
        tr_im2col_range(&g, x, n0, nc, part);
        for (size_t k = 0; k < K; k++)
            assert_memory_equal(part + k * mc, col + k * M + n0 * S, sizeof(float) * mc);
        /* col2im of the range: r is zero outside the range's columns */
        memset(r, 0, sizeof(float) * K * M);
        for (size_t k = 0; k < K; k++)
            fill(r + k * M + n0 * S, mc, &seed);
        for (size_t k = 0; k < K; k++)
            memcpy(part + k * mc, r + k * M + n0 * S, sizeof(float) * mc);
        tr_col2im(&g, r, back);
        for (size_t i = 0; i < nx; i++)
            pback[i] = 7.0f;
        tr_col2im_range(&g, part, n0, nc, pback);
        for (int ch = 0; ch < g.C; ch++)
            for (int n = 0; n < g.N; n++)
                for (size_t i = 0; i < plane; i++) {
                    size_t at = ((size_t)ch * g.N + n) * plane + i;
                    float want = n >= n0 && n < n0 + nc ? back[at] : 7.0f;
                    if (pback[at] != want)
                        fail_msg("case %zu: dx[%zu] %g, want %g", t, at, pback[at], want);
                }
        /* convolution by column blocks, gradients accumulated, against the whole */
        float *w = malloc(sizeof(float) * cout * K), *b = malloc(sizeof(float) * cout);
        float *y = malloc(sizeof(float) * cout * M), *yb = malloc(sizeof(float) * cout * M);
        float *dy = malloc(sizeof(float) * cout * M), dw[2][3 * 50], db[2][3];
        fill(w, cout * K, &seed), fill(b, cout, &seed), fill(dy, cout * M, &seed);
        tr_conv_forward(w, b, col, cout, (int)K, (int)M, y, (int)M);
        tr_conv_backward(w, col, dy, (int)M, cout, (int)K, (int)M, 0, dw[0], db[0], NULL);
        for (int n = 0; n < g.N; n++) {
            tr_im2col_range(&g, x, n, 1, part);
            tr_conv_forward(w, b, part, cout, (int)K, (int)S, yb + n * S, (int)M);
            tr_conv_backward(w, part, dy + n * S, (int)M, cout, (int)K, (int)S, n > 0, dw[1], db[1],
                             NULL);
        }
        for (size_t i = 0; i < cout * M; i++)
            assert_float_equal(y[i], yb[i], 1e-5 * (1 + fabsf(y[i])));
        for (size_t i = 0; i < cout * K; i++)
            assert_float_equal(dw[0][i], dw[1][i], 1e-4 * (1 + fabsf(dw[0][i])));
        for (int i = 0; i < cout; i++)
            assert_float_equal(db[0][i], db[1][i], 1e-4 * (1 + fabsf(db[0][i])));
        free(x), free(col), free(part), free(r), free(back), free(pback);
        free(w), free(b), free(y), free(yb), free(dy);
    }
}

static void test_conv_gradients(void **state) {
    (void)state;
    struct tr_conv_geom g;
    assert_int_equal(tr_conv_geom_init(&g, 2, 2, 5, 4, 3, 1), 0);
    enum { COUT = 3 };
    size_t K = tr_col_rows(&g), M = tr_col_cols(&g), nx = 2 * 2 * 5 * 4;
    float x[80], w[COUT * 18], b[COUT], r[COUT * 40], y[COUT * 40], col[18 * 40];
    float dw[COUT * 18], db[COUT], dcol[18 * 40], dx[80];
    uint64_t seed = 7;
    fill(x, nx, &seed), fill(w, COUT * K, &seed), fill(b, COUT, &seed), fill(r, COUT * M, &seed);
    /* loss L = <conv(x), r>, so dL/dy = r */
    tr_im2col(&g, x, col);
    tr_conv_backward(w, col, r, (int)M, COUT, (int)K, (int)M, 0, dw, db, dcol);
    tr_col2im(&g, dcol, dx);
    const double eps = 0.05; /* L is linear in each input: any step is exact */
    float *params[] = {w, b, x};
    float *grads[] = {dw, db, dx};
    size_t lens[] = {COUT * K, COUT, nx};
    const char *names[] = {"dw", "db", "dx"};
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < lens[p]; i++) {
            double L[2];
            float keep = params[p][i];
            for (int s = 0; s < 2; s++) {
                params[p][i] = keep + (float)(s ? -eps : eps);
                tr_im2col(&g, x, col);
                tr_conv_forward(w, b, col, COUT, (int)K, (int)M, y, (int)M);
                L[s] = dot(y, r, COUT * M);
            }
            params[p][i] = keep;
            check_grad(names[p], i, grads[p][i], (L[0] - L[1]) / (2 * eps));
        }
}

static void test_pool_relu_gradients(void **state) {
    (void)state;
    enum { PLANES = 3, H = 5, W = 6, OUT = PLANES * (H / 2) * (W / 2) };
    float x[PLANES * H * W], y[OUT], r[OUT], dy[OUT], dx[PLANES * H * W];
    int32_t arg[OUT];
    uint64_t seed = 11;
    /* distinct values 0.1 apart, half of them negative, so that a small step changes no
     * maximum and no ReLU */
    for (int i = 0; i < PLANES * H * W; i++)
        x[i] = (float)(((i * 37) % (PLANES * H * W)) - 40) * 0.1f + 0.05f;
    fill(r, OUT, &seed);
    tr_maxpool_forward(x, PLANES, H, W, y, arg);
    tr_relu_forward(y, OUT);
    memcpy(dy, r, sizeof dy);
    tr_relu_backward(y, dy, OUT);
    for (int i = 0; i < PLANES * H * W; i++)
        dx[i] = 12345.0f; /* backward must overwrite every value, odd edges included */
    tr_maxpool_backward(dy, arg, PLANES, H, W, dx);
    const double eps = 0.01;
    for (int i = 0; i < PLANES * H * W; i++) {
        double L[2];
        float keep = x[i];
        for (int s = 0; s < 2; s++) {
            x[i] = keep + (float)(s ? -eps : eps);
            tr_maxpool_forward(x, PLANES, H, W, y, arg);
            tr_relu_forward(y, OUT);
            L[s] = dot(y, r, OUT);
        }
        x[i] = keep;
        check_grad("pool dx", (size_t)i, dx[i], (L[0] - L[1]) / (2 * eps));
    }
}

static void test_fc_gradients(void **state) {
    (void)state;
    enum { N = 3, IN = 5, OUT = 4 };
    float x[N * IN], w[OUT * IN], b[OUT], r[N * OUT], y[N * OUT];
    float dw[OUT * IN], db[OUT], dx[N * IN];
    uint64_t seed = 5;
    fill(x, N * IN, &seed), fill(w, OUT * IN, &seed), fill(b, OUT, &seed), fill(r, N * OUT, &seed);
    tr_fc_backward(x, w, r, N, IN, OUT, dw, db, dx);
    float *params[] = {w, b, x};
    float *grads[] = {dw, db, dx};
    size_t lens[] = {OUT * IN, OUT, N * IN};
    const char *names[] = {"fc dw", "fc db", "fc dx"};
    const double eps = 0.05;
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < lens[p]; i++) {
            double L[2];
            float keep = params[p][i];
            for (int s = 0; s < 2; s++) {
                params[p][i] = keep + (float)(s ? -eps : eps);
                tr_fc_forward(x, w, b, N, IN, OUT, y);
                L[s] = dot(y, r, N * OUT);
            }
            params[p][i] = keep;
            check_grad(names[p], i, grads[p][i], (L[0] - L[1]) / (2 * eps));
        }
}

static void test_softmax_xent_gradient(void **state) {
    (void)state;
    enum { N = 4, K = 5 };
    float z[N * K], dz[N * K];
    int32_t labels[N] = {0, 3, 4, 1};
    uint64_t seed = 3;
    fill(z, N * K, &seed);
    z[1 * K + 3] = 3.0f; /* row 1 is classified right */
    int correct = -1;
    double loss = tr_softmax_xent(z, labels, N, K, dz, 1.0f / N, &correct) / N;
    assert_true(loss > 0);
    assert_true(correct >= 1);
    const double eps = 1e-2;
    for (int i = 0; i < N * K; i++) {
        double L[2];
        float keep = z[i];
        for (int s = 0; s < 2; s++) {
            z[i] = keep + (float)(s ? -eps : eps);
            L[s] = tr_softmax_xent(z, labels, N, K, NULL, 0, NULL) / N;
        }
        z[i] = keep;
        check_grad("softmax dz", (size_t)i, dz[i], (L[0] - L[1]) / (2 * eps));
    }
    /* in place, as the network uses it */
    float zz[N * K];
    memcpy(zz, z, sizeof z);
    tr_softmax_xent(zz, labels, N, K, zz, 1.0f / N, NULL);
    assert_memory_equal(zz, dz, sizeof dz);
}

/* A tiny in-memory set: n grey or RGB images of H x W with labels i % classes and pixels
 * from a class-dependent pattern plus noise. */
static void synthetic_set(struct tr_set *s, int n, int C, int H, int W, int classes,
                          uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->n = n, s->C = C, s->H = H, s->W = W, s->format = "recordio";
    s->pix = malloc((size_t)n * C * H * W);
    s->labels = malloc(sizeof(int32_t) * n);
    s->max_label = -1;
    for (int i = 0; i < n; i++) {
        s->labels[i] = i % classes;
        if (s->labels[i] > s->max_label)
            s->max_label = s->labels[i];
        for (int j = 0; j < C * H * W; j++) {
            int stripe = ((j % W) * classes / W) == s->labels[i];
            s->pix[(size_t)i * C * H * W + j] =
                (uint8_t)(stripe * 150 + (int)((frand(&seed) + 1) * 50));
        }
    }
}

/* chunk1: each convolution unfolds one sample at a time (several chunks per shard). */
static void check_net_gradients(int hidden, int threads, bool chunk1) {
    struct tr_shape shape = {
        .C = 3, .H = 9, .W = 8, .classes = 3, .conv1 = 2, .conv2 = 3, .hidden = hidden};
    struct tr_set set;
    synthetic_set(&set, 5, 3, 9, 8, 3, 99); /* odd height: pooling drops a row */
    struct tr_norm norm = {.C = 3, .mean = {0.4f, 0.4f, 0.4f}, .std = {0.3f, 0.3f, 0.3f}};
    struct tr_net net;
    char err[AVA_ERRLEN];
    assert_int_equal(tr_net_init(&net, &shape, 5, threads, err), 0);
    if (chunk1)
        net.chunk[0] = net.chunk[1] = 1; /* smaller than allocated for: always safe */
    else                                 /* the sizes here fit one chunk: the whole shard at once */
        assert_int_equal(net.chunk[0], net.shard), assert_int_equal(net.chunk[1], net.shard);
    struct tr_rng rng;
    tr_rng_seed(&rng, 17);
    tr_net_init_weights(&net, &rng);
    uint64_t seed = 23;
    for (size_t i = 0; i < net.nparams; i++) /* non-zero biases too */
        net.params[i] += 0.05f * frand(&seed);
    uint32_t idx[5] = {4, 0, 3, 1, 2};
    tr_net_run(&net, &set, &norm, idx, 5, true, NULL);
    float *grads = malloc(sizeof(float) * net.nparams);
    memcpy(grads, net.grads, sizeof(float) * net.nparams);
    /* central differences at three steps: a step can cross a kink (a ReLU or a maximum
     * changing) near the point, which says nothing about the gradient; one that does not
     * must agree */
    for (size_t i = 0; i < net.nparams; i += 1 + net.nparams / 150) {
        double best = 0, best_err = INFINITY;
        float keep = net.params[i];
        for (double eps = 1e-3; eps > 2e-4; eps /= 2) {
            double L[2];
            for (int s = 0; s < 2; s++) {
                net.params[i] = keep + (float)(s ? -eps : eps);
                L[s] = tr_net_run(&net, &set, &norm, idx, 5, false, NULL);
            }
            double num = (L[0] - L[1]) / (2 * eps);
            if (fabs(num - grads[i]) < best_err)
                best = num, best_err = fabs(num - grads[i]);
        }
        net.params[i] = keep;
        check_grad(hidden ? "net (hidden) param" : "net param", i, grads[i], best);
    }
    free(grads);
    tr_net_free(&net);
    tr_set_free(&set);
}

static void test_net_gradients(void **state) {
    (void)state;
    check_net_gradients(0, 1, false);
    check_net_gradients(4, 1, false);
    check_net_gradients(4, 2, false); /* shards: the summed gradient is the batch's */
    check_net_gradients(4, 1, true);  /* chunks: the accumulated gradient is the shard's */
    check_net_gradients(0, 2, true);
}

/* ---- schedule, shuffle, shapes ---- */

static void test_lr_schedule_and_shuffle(void **state) {
    (void)state;
    struct tr_hparams hp = {.epochs = 4, .lr = 0.1f, .schedule = TR_SCHED_COSINE};
    assert_float_equal(tr_lr_at(&hp, 0, 10), 0.1, 1e-7);
    assert_float_equal(tr_lr_at(&hp, 20, 10), 0.05, 1e-6);
    assert_true(tr_lr_at(&hp, 39, 10) < 0.001);
    hp.schedule = TR_SCHED_STEP, hp.lr_factor = 0.1f, hp.n_lr_steps = 2;
    hp.lr_steps[0] = 2, hp.lr_steps[1] = 3;
    assert_float_equal(tr_lr_at(&hp, 19, 10), 0.1, 1e-7);
    assert_float_equal(tr_lr_at(&hp, 20, 10), 0.01, 1e-8);
    assert_float_equal(tr_lr_at(&hp, 35, 10), 0.001, 1e-9);
    hp.schedule = TR_SCHED_CONST, hp.warmup = 4;
    assert_float_equal(tr_lr_at(&hp, 0, 10), 0.025, 1e-7);
    assert_float_equal(tr_lr_at(&hp, 3, 10), 0.1, 1e-7);
    assert_float_equal(tr_lr_at(&hp, 30, 10), 0.1, 1e-7);
    /* a seeded shuffle is a permutation, and the same for the same seed */
    uint32_t a[50], b[50], seen[50] = {0};
    struct tr_rng r1, r2;
    tr_rng_seed(&r1, 5), tr_rng_seed(&r2, 5);
    for (uint32_t i = 0; i < 50; i++)
        a[i] = b[i] = i;
    tr_shuffle(a, 50, &r1), tr_shuffle(b, 50, &r2);
    assert_memory_equal(a, b, sizeof a);
    int moved = 0;
    for (uint32_t i = 0; i < 50; i++)
        seen[a[i]]++, moved += a[i] != i;
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 25);
}

static void test_raw_shape(void **state) {
    (void)state;
    const struct {
        size_t len;
        int ok, C, H;
    } cases[] = {{784, 1, 1, 28}, {3072, 1, 3, 32}, {1, 1, 1, 1},     {4, 1, 1, 2},
                 {12, 1, 3, 2},   {27, 1, 3, 3},    {108, 1, 3, 6},   {0, 0, 0, 0},
                 {10, 0, 0, 0},   {785, 0, 0, 0},   {3 * 30, 0, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int C = 0, H = 0, W = 0, r = tr_raw_shape(cases[i].len, &C, &H, &W);
        if (!cases[i].ok) {
            assert_int_equal(r, -1);
            continue;
        }
        assert_int_equal(r, 0);
        assert_int_equal(C, cases[i].C);
        assert_int_equal(H, cases[i].H);
        assert_int_equal(W, cases[i].H);
    }
}

/* ---- checkpoints ---- */

static const struct tr_shape CK_SHAPE = {
    .C = 1, .H = 8, .W = 8, .classes = 3, .conv1 = 2, .conv2 = 3, .hidden = 5};

/* A net of CK_SHAPE with recognisable parameters and momentum. */
static void ck_net(struct tr_net *net) {
    char err[AVA_ERRLEN];
    assert_int_equal(tr_net_init(net, &CK_SHAPE, 4, 1, err), 0);
    for (size_t i = 0; i < net->nparams; i++)
        net->params[i] = (float)i * 0.5f, net->mom[i] = -(float)i;
}

static void test_checkpoint_round_trip(void **state) {
    (void)state;
    char dir[64], path[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/checkpoint-3", dir);
    struct tr_net net;
    ck_net(&net);
    struct tr_hparams hp = {.epochs = 7,
                            .batch = 4,
                            .lr = 0.25f,
                            .momentum = 0.9f,
                            .wd = 1e-3f,
                            .schedule = TR_SCHED_STEP,
                            .lr_factor = 0.5f,
                            .n_lr_steps = 2,
                            .lr_steps = {3, 5},
                            .warmup = 9,
                            .seed = 1234567890123ULL};
    struct tr_state st = {.epoch = 3,
                          .step = 1234,
                          .rng = {0x1122334455667788ULL, 0x99ULL},
                          .norm = {.C = 1, .mean = {0.25f}, .std = {0.5f}}};
    assert_int_equal(tr_ckpt_save(path, TR_CKPT_CHECKPOINT, &net, &hp, &st, err), 0);
    struct tr_ckpt k;
    assert_int_equal(tr_ckpt_load(path, &k, err), 0);
    assert_int_equal(k.kind, TR_CKPT_CHECKPOINT);
    assert_memory_equal(&k.shape, &CK_SHAPE, sizeof CK_SHAPE);
    assert_memory_equal(&k.hp, &hp, sizeof hp);
    assert_int_equal(k.st.epoch, 3);
    assert_int_equal(k.st.step, 1234);
    assert_memory_equal(&k.st.rng, &st.rng, sizeof st.rng);
    assert_float_equal(k.st.norm.mean[0], 0.25, 0);
    assert_float_equal(k.st.norm.std[0], 0.5, 0);
    assert_int_equal(k.nparams, net.nparams);
    assert_memory_equal(k.params, net.params, sizeof(float) * net.nparams);
    assert_memory_equal(k.mom, net.mom, sizeof(float) * net.nparams);
    assert_int_equal(tr_ckpt_check_shape(&k, &CK_SHAPE, path, err), 0);
    tr_ckpt_free(&k);
    /* a model: weights only; no temporary is left behind */
    snprintf(path, sizeof path, "%s/model.bin", dir);
    assert_int_equal(tr_ckpt_save(path, TR_CKPT_MODEL, &net, &hp, &st, err), 0);
    assert_int_equal(tr_ckpt_load(path, &k, err), 0);
    assert_int_equal(k.kind, TR_CKPT_MODEL);
    assert_null(k.mom);
    assert_memory_equal(k.params, net.params, sizeof(float) * net.nparams);
    tr_ckpt_free(&k);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 2", dir);
    assert_int_equal(system(cmd), 0);
    tr_net_free(&net);
    ava_rm_rf(dir, NULL);
}

/* Loads path and checks that it is refused with a message containing want. */
static void expect_refused(const char *path, const char *want) {
    struct tr_ckpt k;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(tr_ckpt_load(path, &k, err), AVA_EINVALID);
    if (!strstr(err, want))
        fail_msg("refusing %s: '%s' does not say '%s'", path, err, want);
}

static void test_checkpoint_refused(void **state) {
    (void)state;
    char dir[64], path[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ck", dir);
    struct tr_net net;
    ck_net(&net);
    struct tr_hparams hp = {.epochs = 1, .batch = 4};
    struct tr_state st = {.epoch = 1};
    assert_int_equal(tr_ckpt_save(path, TR_CKPT_CHECKPOINT, &net, &hp, &st, err), 0);
    size_t len;
    char *bytes;
    assert_int_equal(ava_file_read_all(path, 1 << 24, &bytes, &len, err), 0);
    FILE *f = fopen(path, "wb"); /* truncated */
    fwrite(bytes, 1, len - 10, f), fclose(f);
    expect_refused(path, "truncated");
    f = fopen(path, "wb"); /* shorter than a header */
    fwrite(bytes, 1, 100, f), fclose(f);
    expect_refused(path, "too short");
    bytes[0] ^= 1; /* another magic */
    f = fopen(path, "wb"), fwrite(bytes, 1, len, f), fclose(f);
    expect_refused(path, "wrong magic");
    bytes[0] ^= 1, bytes[8] = 9; /* another version */
    f = fopen(path, "wb"), fwrite(bytes, 1, len, f), fclose(f);
    expect_refused(path, "version 9");
    bytes[8] = 1, bytes[300] ^= 0x40; /* a flipped parameter bit */
    f = fopen(path, "wb"), fwrite(bytes, 1, len, f), fclose(f);
    expect_refused(path, "checksum");
    bytes[300] ^= 0x40;
    f = fopen(path, "wb"), fwrite(bytes, 1, len, f), fclose(f);
    /* another network's shape: a clear message naming both */
    struct tr_ckpt k;
    assert_int_equal(tr_ckpt_load(path, &k, err), 0);
    struct tr_shape other = CK_SHAPE;
    other.conv2 = 4;
    assert_int_equal(tr_ckpt_check_shape(&k, &other, path, err), AVA_EINVALID);
    assert_non_null(strstr(err, "another network"));
    assert_non_null(strstr(err, "conv 3"));
    assert_non_null(strstr(err, "conv 4"));
    tr_ckpt_free(&k);
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(tr_ckpt_load(path, &k, err), AVA_ENOTFOUND);
    free(bytes);
    tr_net_free(&net);
    ava_rm_rf(dir, NULL);
}

/* ---- resume ---- */

struct train_call {
    struct tr_run *run;
    struct tr_net *net;
    struct tr_state *st;
    char err[AVA_ERRLEN];
};

static int call_train(void *v) {
    struct train_call *c = v;
    return tr_train(c->run, c->net, c->st, c->err);
}

static void test_resume_continuity(void **state) {
    (void)state;
    char a[64], b[64], ck[128];
    make_tmpdir(a, sizeof a);
    make_tmpdir(b, sizeof b);
    struct tr_set train, val;
    synthetic_set(&train, 70, 1, 8, 8, 3, 1);
    synthetic_set(&val, 20, 1, 8, 8, 3, 2);
    struct tr_run run = {
        .hp = {.epochs = 2,
               .batch = 8,
               .lr = 0.05f,
               .momentum = 0.9f,
               .wd = 5e-4f,
               .schedule = TR_SCHED_COSINE,
               .lr_factor = 0.1f,
               .seed = 3},
        .shape = {.C = 1, .H = 8, .W = 8, .classes = 3, .conv1 = 4, .conv2 = 4, .hidden = 8},
        .threads = 2,
        .report_every = 3,
        .keep = 0,
        .output_dir = a,
        .train = &train,
        .val = &val};
    /* straight: 2 epochs */
    struct tr_net straight, resumed;
    struct tr_state st1, st2;
    struct train_call c = {&run, &straight, &st1, ""};
    if (quietly(call_train, &c) != 0)
        fail_msg("straight run: %s", c.err);
    assert_int_equal(st1.epoch, 2);
    assert_int_equal(st1.step, 2 * 9); /* 70 samples in batches of 8: 9 per epoch */
    /* stopped after epoch 1: its checkpoint, resumed in another output dir */
    snprintf(ck, sizeof ck, "%s/checkpoint-1", a);
    run.output_dir = b, run.resume_from = ck;
    c = (struct train_call){&run, &resumed, &st2, ""};
    if (quietly(call_train, &c) != 0)
        fail_msg("resumed run: %s", c.err);
    assert_int_equal(st2.epoch, 2);
    assert_int_equal(st2.step, st1.step);
    assert_memory_equal(&st2.rng, &st1.rng, sizeof st1.rng);
    assert_memory_equal(resumed.params, straight.params, sizeof(float) * straight.nparams);
    assert_memory_equal(resumed.mom, straight.mom, sizeof(float) * straight.nparams);
    snprintf(ck, sizeof ck, "%s/checkpoint-2", b); /* the resumed run numbers on */
    assert_int_equal(access(ck, F_OK), 0);
    snprintf(ck, sizeof ck, "%s/checkpoint-1", b);
    assert_int_equal(access(ck, F_OK), -1);
    /* a model file is no checkpoint to resume from */
    snprintf(ck, sizeof ck, "%s/model.bin", a);
    struct tr_net n3;
    struct tr_state st3;
    c = (struct train_call){&run, &n3, &st3, ""};
    assert_int_equal(quietly(call_train, &c), AVA_EINVALID);
    assert_non_null(strstr(c.err, "not a checkpoint"));
    /* nor one of another shape */
    snprintf(ck, sizeof ck, "%s/checkpoint-2", a);
    run.shape.hidden = 9;
    c = (struct train_call){&run, &n3, &st3, ""};
    assert_int_equal(quietly(call_train, &c), AVA_EINVALID);
    assert_non_null(strstr(c.err, "another network"));
    tr_net_free(&straight);
    tr_net_free(&resumed);
    tr_set_free(&train);
    tr_set_free(&val);
    ava_rm_rf(a, NULL);
    ava_rm_rf(b, NULL);
}

static void test_checkpoints_pruned(void **state) {
    (void)state;
    char a[64], path[160];
    make_tmpdir(a, sizeof a);
    snprintf(path, sizeof path, "%s/.checkpoint-1.tmp.999", a); /* a killed run's leftover */
    fclose(fopen(path, "w"));
    struct tr_set train;
    synthetic_set(&train, 16, 1, 4, 4, 2, 1);
    struct tr_run run = {
        .hp = {.epochs = 4, .batch = 8, .lr = 0.01f, .seed = 1},
        .shape = {.C = 1, .H = 4, .W = 4, .classes = 2, .conv1 = 2, .conv2 = 2, .hidden = 0},
        .threads = 1,
        .report_every = 1,
        .keep = 2,
        .output_dir = a,
        .train = &train};
    struct train_call c = {&run, NULL, NULL, ""};
    if (quietly(call_train, &c) != 0)
        fail_msg("run: %s", c.err);
    const char *want[] = {"checkpoint-3", "checkpoint-4", "model.bin"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", a, want[i]);
        assert_int_equal(access(path, F_OK), 0);
    }
    char cmd[160];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 3", a);
    assert_int_equal(system(cmd), 0);
    tr_set_free(&train);
    ava_rm_rf(a, NULL);
}

/* ---- loaders ---- */

/* A 4x4 RGB test image (interleaved) whose pixel (y, x), channel c is 16 y + 4 x + c. */
static void rgb_pixels(uint8_t px[48]) {
    for (int i = 0; i < 16; i++)
        for (int c = 0; c < 3; c++)
            px[i * 3 + c] = (uint8_t)(4 * i + c);
}

static void test_recordio_loader(void **state) {
    (void)state;
    char dir[64], rec[128], idx[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(rec, sizeof rec, "%s/data.rec", dir);
    snprintf(idx, sizeof idx, "%s/data.idx", dir);
    struct ava_recordio_writer *w;
    assert_int_equal(ava_recordio_writer_open(rec, idx, &w, err), 0);
    uint8_t rgb[48], *png;
    size_t png_len;
    rgb_pixels(rgb);
    struct ava_pixels p = {.width = 4, .height = 4, .channels = 3, .data = rgb};
    assert_int_equal(ava_image_encode_png(&p, &png, &png_len, err), 0);
    assert_int_equal(ava_recordio_write_image(w, 0, 2.0f, 0, rgb, 48, err), 0);      /* raw */
    assert_int_equal(ava_recordio_write_image(w, 1, 1.0f, 1, png, png_len, err), 0); /* PNG */
    assert_int_equal(ava_recordio_writer_close(w, err), 0);
    struct tr_set set;
    assert_int_equal(tr_set_load(dir, 0, &set, err), 0);
    assert_int_equal(set.n, 2);
    assert_int_equal(set.C, 3);
    assert_int_equal(set.H, 4);
    assert_int_equal(set.W, 4);
    assert_int_equal(set.labels[0], 2);
    assert_int_equal(set.labels[1], 1);
    assert_int_equal(set.max_label, 2);
    for (int s = 0; s < 2; s++) /* planar: channel c of pixel i at c * 16 + i */
        for (int i = 0; i < 16; i++)
            for (int c = 0; c < 3; c++)
                assert_int_equal(set.pix[s * 48 + c * 16 + i], 4 * i + c);
    tr_set_free(&set);
    assert_int_equal(tr_set_load(dir, 1, &set, err), 0); /* a limit */
    assert_int_equal(set.n, 1);
    tr_set_free(&set);
    /* a grey image among RGB ones is refused, naming the record */
    assert_int_equal(ava_recordio_writer_open(rec, idx, &w, err), 0);
    assert_int_equal(ava_recordio_write_image(w, 0, 0, 0, rgb, 48, err), 0);
    assert_int_equal(ava_recordio_write_image(w, 1, 0, 1, rgb, 16, err), 0);
    assert_int_equal(ava_recordio_writer_close(w, err), 0);
    assert_int_equal(tr_set_load(dir, 0, &set, err), AVA_EINVALID);
    assert_non_null(strstr(err, "record 1"));
    assert_non_null(strstr(err, "same shape"));
    /* and so is a payload of no shape, or a label that is no class index */
    assert_int_equal(ava_recordio_writer_open(rec, idx, &w, err), 0);
    assert_int_equal(ava_recordio_write_image(w, 0, 0, 0, rgb, 10, err), 0);
    assert_int_equal(ava_recordio_writer_close(w, err), 0);
    assert_int_equal(tr_set_load(dir, 0, &set, err), AVA_EINVALID);
    assert_non_null(strstr(err, "neither JPEG nor PNG"));
    assert_int_equal(ava_recordio_writer_open(rec, idx, &w, err), 0);
    assert_int_equal(ava_recordio_write_image(w, 0, 1.5f, 0, rgb, 16, err), 0);
    assert_int_equal(ava_recordio_writer_close(w, err), 0);
    assert_int_equal(tr_set_load(dir, 0, &set, err), AVA_EINVALID);
    assert_non_null(strstr(err, "not a class index"));
    free(png);
    ava_rm_rf(dir, NULL);
    assert_int_equal(tr_set_load(dir, 0, &set, err), AVA_ENOTFOUND);
    assert_non_null(strstr(err, "neither data.rec"));
}

static void test_lmdb_loader(void **state) {
    (void)state;
    char dir[64], db[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/set", dir);
    struct ava_lmdb_writer *w;
    assert_int_equal(ava_lmdb_writer_open_mapsize(db, 64 << 10, &w, err), 0);
    uint8_t rgb[48], bgr[48], *png;
    size_t png_len;
    rgb_pixels(rgb);
    for (int c = 0; c < 3; c++) /* Caffe's raw datum: planar BGR */
        for (int i = 0; i < 16; i++)
            bgr[c * 16 + i] = rgb[i * 3 + (2 - c)];
    struct ava_pixels p = {.width = 4, .height = 4, .channels = 3, .data = rgb};
    assert_int_equal(ava_image_encode_png(&p, &png, &png_len, err), 0);
    struct ava_datum raw = {
        .channels = 3, .height = 4, .width = 4, .data = bgr, .len = 48, .label = 4};
    struct ava_datum enc = {.data = png, .len = png_len, .label = 1, .encoded = true};
    assert_int_equal(ava_lmdb_writer_put(w, 0, "a.png", &raw, err), 0);
    assert_int_equal(ava_lmdb_writer_put(w, 1, "b.png", &enc, err), 0);
    assert_int_equal(ava_lmdb_writer_close(w, err), 0);
    struct tr_set set;
    assert_int_equal(tr_set_load(db, 0, &set, err), 0);
    assert_string_equal(set.format, "lmdb");
    assert_int_equal(set.n, 2);
    assert_int_equal(set.C, 3);
    assert_int_equal(set.labels[0], 4);
    assert_int_equal(set.labels[1], 1);
    for (int s = 0; s < 2; s++) /* both read back as planar RGB */
        for (int i = 0; i < 16; i++)
            for (int c = 0; c < 3; c++)
                assert_int_equal(set.pix[s * 48 + c * 16 + i], 4 * i + c);
    /* normalised batches: CNHW, (x / 255 - mean) / std */
    struct tr_norm norm;
    tr_norm_compute(&set, &norm);
    assert_float_equal(norm.mean[0], (4 * 7.5) / 255.0, 1e-5);
    float x[2 * 48];
    int32_t labels[2];
    uint32_t idx[2] = {1, 0};
    tr_set_batch(&set, &norm, idx, 2, x, labels);
    assert_int_equal(labels[0], 1);
    assert_float_equal(x[(2 * 2 + 1) * 16 + 5], (22 / 255.0 - norm.mean[2]) / norm.std[2], 1e-5);
    tr_set_free(&set);
    free(png);
    ava_rm_rf(dir, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_im2col_matches_naive_conv),
        cmocka_unit_test(test_im2col_ranges_and_chunks),
        cmocka_unit_test(test_im2col_refill),
        cmocka_unit_test(test_conv_backward_transposed),
        cmocka_unit_test(test_conv_gradients),
        cmocka_unit_test(test_pool_relu_gradients),
        cmocka_unit_test(test_fc_gradients),
        cmocka_unit_test(test_softmax_xent_gradient),
        cmocka_unit_test(test_net_gradients),
        cmocka_unit_test(test_lr_schedule_and_shuffle),
        cmocka_unit_test(test_raw_shape),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_checkpoint_refused),
        cmocka_unit_test(test_resume_continuity),
        cmocka_unit_test(test_checkpoints_pruned),
        cmocka_unit_test(test_recordio_loader),
        cmocka_unit_test(test_lmdb_loader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
