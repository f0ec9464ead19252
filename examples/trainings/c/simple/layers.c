/* layers.c: the trainer's layers (see layers.h): im2col, GEMM convolutions on OpenBLAS, ReLU,
 * max pooling, fully connected layers and softmax cross-entropy. */
#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* The element-wise loops (im2col, col2im, pooling, ReLU, bias) compiled twice where the
 * compiler can: for x86-64-v3 (AVX2) and for the baseline, chosen when the program loads (an
 * ifunc), so that the binary still runs on any x86-64 while AVX2 machines get vectors twice
 * as wide as the baseline's SSE2 (about 3 % of a training, measured). These loops copy,
 * compare and add without multiplying (nothing to contract into an FMA): both clones give
 * the same bits. Left out of ASan builds as a precaution (ifunc resolvers run before the
 * sanitizer's runtime is set up; not observed to fail, not tested either). */
#if defined(__x86_64__) && defined(__has_attribute) && !defined(__SANITIZE_ADDRESS__)
#if __has_attribute(target_clones)
#define TR_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef TR_VECTOR_CLONES
#define TR_VECTOR_CLONES
#endif
/* For the helpers of those loops: inlined into each clone, so that they are compiled for its
 * target too (a separate function would be the baseline's). */
#if defined(__GNUC__)
#define TR_INLINE static inline __attribute__((always_inline))
#else
#define TR_INLINE static inline
#endif

int tr_conv_geom_init(struct tr_conv_geom *g, int C, int N, int H, int W, int k, int pad) {
    *g = (struct tr_conv_geom){.C = C, .N = N, .H = H, .W = W, .k = k, .pad = pad};
    g->Ho = H + 2 * pad - k + 1;
    g->Wo = W + 2 * pad - k + 1;
    return g->Ho > 0 && g->Wo > 0 && C > 0 && N > 0 ? 0 : -1;
}

size_t tr_col_rows(const struct tr_conv_geom *g) {
    return (size_t)g->C * g->k * g->k;
}

size_t tr_col_cols(const struct tr_conv_geom *g) {
    return (size_t)g->N * g->Ho * g->Wo;
}

/* The output columns [*lo, *hi) of a row whose input column ox + kx - pad lies inside 0..W-1. */
static void valid_span(const struct tr_conv_geom *g, int kx, int *lo, int *hi) {
    int a = g->pad - kx, b = g->W + g->pad - kx;
    *lo = a < 0 ? 0 : a;
    *hi = b > g->Wo ? g->Wo : b;
    if (*hi < *lo)
        *hi = *lo;
}

void tr_im2col(const struct tr_conv_geom *g, const float *x, float *col) {
    tr_im2col_range(g, x, 0, g->N, col);
}

/* Zeroes the columns of rows oy0 .. oy1 - 1 of a block W wide that a contiguous copy
 * shifted by dx columns wraps around: the first -dx (dx < 0) or the last dx (dx > 0). Column
 * by column: row by row the compiler made each one or two floats a memset call, 10 % of a
 * training (profiled). */
TR_INLINE void zero_wrapped(float *blk, int W, int oy0, int oy1, int dx) {
    int j0 = dx < 0 ? 0 : W - dx, j1 = dx < 0 ? -dx : W;
    for (int j = j0; j < j1; j++)
        for (int oy = oy0; oy < oy1; oy++)
            blk[(size_t)oy * W + j] = 0.0f;
}

/* One (c, ky, kx) row block of one sample when the output has the input's width (a "same"
 * convolution, k = 2 pad + 1): the rows in range are one contiguous copy of the plane shifted
 * by (ky - pad, kx - pad), then the columns that wrapped around from the neighbouring row
 * (at most pad per row) are zeroed. Much faster than a copy per row of a few dozen floats. */
TR_INLINE void im2col_same_block(const struct tr_conv_geom *g, const float *src, int ky, int kx,
                                 float *dst, bool zeroed) {
    int W = g->W, H = g->H, dy = ky - g->pad, dx = kx - g->pad;
    int oy0 = dy < 0 ? -dy : 0, oy1 = H - dy < g->Ho ? H - dy : g->Ho;
    if (oy1 < oy0)
        oy1 = oy0;
    if (!zeroed) { /* the rows above and below the image (memset calls: 3.5 % of a training) */
        memset(dst, 0, sizeof *dst * (size_t)oy0 * W);
        memset(dst + (size_t)oy1 * W, 0, sizeof *dst * (size_t)(g->Ho - oy1) * W);
    }
    if (oy1 == oy0)
        return;
    /* the copy of [start, end) of the plane, clipped to it: what falls outside only lands in
     * wrapped columns, zeroed below */
    long start = (long)(oy0 + dy) * W + dx, end = start + (long)(oy1 - oy0) * W;
    long plane = (long)H * W, a = start < 0 ? 0 : start, b = end > plane ? plane : end;
    memcpy(dst + (size_t)oy0 * W + (a - start), src + a, sizeof *dst * (size_t)(b - a));
    zero_wrapped(dst, W, oy0, oy1, dx);
}

void tr_im2col_range(const struct tr_conv_geom *g, const float *x, int n0, int nc, float *col) {
    tr_im2col_range_z(g, x, n0, nc, col, false);
}

TR_VECTOR_CLONES void tr_im2col_range_z(const struct tr_conv_geom *g, const float *x, int n0,
                                        int nc, float *col, bool zeroed) {
    size_t plane = (size_t)g->H * g->W, ocols = (size_t)nc * g->Ho * g->Wo;
    int Wo = g->Wo;
    if (g->Wo == g->W && g->Ho == g->H) {
        for (int c = 0; c < g->C; c++)
            for (int ky = 0; ky < g->k; ky++)
                for (int kx = 0; kx < g->k; kx++) {
                    float *dst = col + (((size_t)c * g->k + ky) * g->k + kx) * ocols;
                    for (int n = n0; n < n0 + nc; n++, dst += plane)
                        im2col_same_block(g, x + ((size_t)c * g->N + n) * plane, ky, kx, dst,
                                          zeroed);
                }
        return;
    }
    for (int c = 0; c < g->C; c++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                float *dst = col + (((size_t)c * g->k + ky) * g->k + kx) * ocols;
                int lo, hi;
                valid_span(g, kx, &lo, &hi);
                for (int n = n0; n < n0 + nc; n++) {
                    const float *src = x + ((size_t)c * g->N + n) * plane;
                    for (int oy = 0; oy < g->Ho; oy++, dst += Wo) {
                        int iy = oy + ky - g->pad;
                        /* plain loops, not memset/memcpy: rows are a few dozen floats, where
                         * the calls' overhead dominated the copy (profiled) */
                        if (iy < 0 || iy >= g->H) {
                            for (int ox = 0; ox < Wo; ox++)
                                dst[ox] = 0.0f;
                            continue;
                        }
                        const float *row = src + (size_t)iy * g->W + kx - g->pad;
                        for (int ox = 0; ox < lo; ox++)
                            dst[ox] = 0.0f;
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] = row[ox];
                        for (int ox = hi; ox < Wo; ox++)
                            dst[ox] = 0.0f;
                    }
                }
            }
}

void tr_col2im(const struct tr_conv_geom *g, float *col, float *dx) {
    tr_col2im_range(g, col, 0, g->N, dx);
}

/* The adjoint of im2col_same_block: adds one (c, ky, kx) row block of one sample into its
 * image plane. The block's wrapped columns (which belong to the zero padding) are zeroed
 * first, so that the rows in range add up as one contiguous, vectorised loop. */
TR_INLINE void col2im_same_block(const struct tr_conv_geom *g, float *blk, int ky, int kx,
                                 float *img) {
    int W = g->W, H = g->H, dy = ky - g->pad, dx = kx - g->pad;
    int oy0 = dy < 0 ? -dy : 0, oy1 = H - dy < g->Ho ? H - dy : g->Ho;
    if (oy1 <= oy0)
        return;
    zero_wrapped(blk, W, oy0, oy1, dx);
    long start = (long)(oy0 + dy) * W + dx, end = start + (long)(oy1 - oy0) * W;
    long plane = (long)H * W, a = start < 0 ? 0 : start, b = end > plane ? plane : end;
    const float *src = blk + (size_t)oy0 * W + (a - start);
    for (long i = 0; i < b - a; i++)
        img[a + i] += src[i];
}

TR_VECTOR_CLONES void tr_col2im_range(const struct tr_conv_geom *g, float *col, int n0, int nc,
                                      float *dx) {
    size_t plane = (size_t)g->H * g->W, ocols = (size_t)nc * g->Ho * g->Wo;
    for (int c = 0; c < g->C; c++)
        memset(dx + ((size_t)c * g->N + n0) * plane, 0, sizeof *dx * (size_t)nc * plane);
    if (g->Wo == g->W && g->Ho == g->H) {
        for (int c = 0; c < g->C; c++)
            for (int ky = 0; ky < g->k; ky++)
                for (int kx = 0; kx < g->k; kx++) {
                    float *src = col + (((size_t)c * g->k + ky) * g->k + kx) * ocols;
                    for (int n = n0; n < n0 + nc; n++, src += plane)
                        col2im_same_block(g, src, ky, kx, dx + ((size_t)c * g->N + n) * plane);
                }
        return;
    }
    for (int c = 0; c < g->C; c++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                const float *src = col + (((size_t)c * g->k + ky) * g->k + kx) * ocols;
                int lo, hi;
                valid_span(g, kx, &lo, &hi);
                for (int n = n0; n < n0 + nc; n++) {
                    float *img = dx + ((size_t)c * g->N + n) * plane;
                    for (int oy = 0; oy < g->Ho; oy++, src += g->Wo) {
                        int iy = oy + ky - g->pad;
                        if (iy < 0 || iy >= g->H)
                            continue;
                        float *row = img + (size_t)iy * g->W + kx - g->pad;
                        for (int ox = lo; ox < hi; ox++)
                            row[ox] += src[ox];
                    }
                }
            }
}

TR_VECTOR_CLONES void tr_conv_forward(const float *w, const float *b, const float *col, int cout,
                                      int K, int M, float *y, int ldy) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, M, K, 1.0f, w, K, col, M, 0.0f, y,
                ldy);
    for (int o = 0; o < cout; o++) {
        float *row = y + (size_t)o * ldy, bo = b[o];
        for (int m = 0; m < M; m++)
            row[m] += bo;
    }
}

/* The sum of n floats: 16 float lanes (vectorised), added up in double at the end; the loop
 * in double it replaces could not be vectorised and took 4 % of a training (profiled). */
static double row_sum(const float *v, int n) {
    float lane[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++)
            lane[j] += v[i + j];
    double s = 0;
    for (int j = 0; j < 16; j++)
        s += lane[j];
    for (; i < n; i++)
        s += v[i];
    return s;
}

/* The part of a convolution's backward pass that does not depend on the weight gradient's
 * layout: the bias gradient (row sums of dy) and, when dcol is given, dcol = w^T dy. */
static void conv_backward_bias_and_input(const float *w, const float *dy, int ldy, int cout, int K,
                                         int M, int accumulate, float *db, float *dcol) {
    for (int o = 0; o < cout; o++) {
        db[o] = (accumulate ? db[o] : 0.0f) + (float)row_sum(dy + (size_t)o * ldy, M);
    }
    if (dcol)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, M, cout, 1.0f, w, K, dy, ldy, 0.0f,
                    dcol, M);
}

void tr_conv_backward(const float *w, const float *col, const float *dy, int ldy, int cout, int K,
                      int M, int accumulate, float *dw, float *db, float *dcol) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cout, K, M, 1.0f, dy, ldy, col, M,
                accumulate ? 1.0f : 0.0f, dw, K);
    conv_backward_bias_and_input(w, dy, ldy, cout, K, M, accumulate, db, dcol);
}

void tr_conv_backward_wt(const float *w, const float *col, const float *dy, int ldy, int cout,
                         int K, int M, int accumulate, float *dwt, float *db, float *dcol) {
    /* dwt (K x cout) = col dy^T: with col as OpenBLAS's second operand this GEMM took 14 %
     * less time than dy col^T for conv2's shapes (measured: 56 against 65 us a sample) */
    cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, cout, K, M, 1.0f, dy, ldy, col, M,
                accumulate ? 1.0f : 0.0f, dwt, cout);
    conv_backward_bias_and_input(w, dy, ldy, cout, K, M, accumulate, db, dcol);
}

TR_VECTOR_CLONES void tr_relu_forward(float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

TR_VECTOR_CLONES void tr_relu_backward(const float *y, float *dy, size_t n) {
    for (size_t i = 0; i < n; i++)
        dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

TR_VECTOR_CLONES void tr_maxpool_forward(const float *x, int planes, int H, int W, float *y,
                                         int32_t *arg) {
    int Ho = H / 2, Wo = W / 2;
    for (int p = 0; p < planes; p++) {
        const float *in = x + (size_t)p * H * W;
        int32_t base = (int32_t)((size_t)p * H * W);
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                int i0 = 2 * oy * W + 2 * ox, best = i0;
                int cand[3] = {i0 + 1, i0 + W, i0 + W + 1};
                for (int j = 0; j < 3; j++)
                    if (in[cand[j]] > in[best])
                        best = cand[j];
                *y++ = in[best];
                *arg++ = base + best;
            }
    }
}

TR_VECTOR_CLONES void tr_maxpool_backward(const float *dy, const int32_t *arg, int planes, int H,
                                          int W, float *dx) {
    int Ho = H / 2, Wo = W / 2;
    for (int p = 0; p < planes; p++) {
        float *out = dx + (size_t)p * H * W;
        int32_t base = (int32_t)((size_t)p * H * W);
        for (int oy = 0; oy < Ho; oy++) {
            float *r0 = out + (size_t)2 * oy * W, *r1 = r0 + W;
            for (int ox = 0; ox < Wo; ox++) /* every window written: no memset pass */
                r0[2 * ox] = r0[2 * ox + 1] = r1[2 * ox] = r1[2 * ox + 1] = 0.0f;
            if (W % 2)
                r0[W - 1] = r1[W - 1] = 0.0f;
            for (int ox = 0; ox < Wo; ox++, dy++, arg++)
                out[*arg - base] = *dy;
        }
        if (H % 2)
            memset(out + (size_t)(H - 1) * W, 0, sizeof *out * (size_t)W);
    }
}

void tr_fc_forward(const float *x, const float *w, const float *b, int N, int nin, int nout,
                   float *y) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, nout, nin, 1.0f, x, nin, w, nin, 0.0f,
                y, nout);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < nout; o++)
            y[(size_t)n * nout + o] += b[o];
}

void tr_fc_backward(const float *x, const float *w, const float *dy, int N, int nin, int nout,
                    float *dw, float *db, float *dx) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nout, nin, N, 1.0f, dy, nout, x, nin, 0.0f,
                dw, nin);
    for (int o = 0; o < nout; o++) {
        double s = 0;
        for (int n = 0; n < N; n++)
            s += dy[(size_t)n * nout + o];
        db[o] = (float)s;
    }
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, nin, nout, 1.0f, dy, nout, w, nin,
                    0.0f, dx, nin);
}

double tr_softmax_xent(const float *logits, const int32_t *labels, int N, int K, float *dlogits,
                       float scale, int *correct) {
    double loss = 0;
    int ok = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * K;
        int best = 0, y = labels[n];
        for (int k = 1; k < K; k++)
            if (z[k] > z[best])
                best = k;
        ok += best == y;
        double zmax = z[best], sum = 0;
        for (int k = 0; k < K; k++)
            sum += exp((double)z[k] - zmax);
        double logsum = zmax + log(sum);
        loss += logsum - z[y];
        if (dlogits) {
            float *d = dlogits + (size_t)n * K;
            for (int k = 0; k < K; k++)
                d[k] = (float)((exp((double)z[k] - logsum) - (k == y)) * scale);
        }
    }
    if (correct)
        *correct = ok;
    return loss;
}

void tr_cnhw_to_nchw(const float *src, int C, int N, int S, float *dst) {
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++)
            memcpy(dst + ((size_t)n * C + c) * S, src + ((size_t)c * N + n) * S,
                   sizeof *dst * (size_t)S);
}

void tr_nchw_to_cnhw(const float *src, int C, int N, int S, float *dst) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            memcpy(dst + ((size_t)c * N + n) * S, src + ((size_t)n * C + c) * S,
                   sizeof *dst * (size_t)S);
}
