/* layers.c: the trainer's layers (see layers.h): im2col, GEMM convolutions on OpenBLAS, ReLU,
 * max pooling, fully connected layers and softmax cross-entropy. */
#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

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
    size_t plane = (size_t)g->H * g->W, oplane = (size_t)g->Ho * g->Wo;
    for (int c = 0; c < g->C; c++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                float *dst = col + (((size_t)c * g->k + ky) * g->k + kx) * g->N * oplane;
                int lo, hi;
                valid_span(g, kx, &lo, &hi);
                for (int n = 0; n < g->N; n++) {
                    const float *src = x + ((size_t)c * g->N + n) * plane;
                    for (int oy = 0; oy < g->Ho; oy++, dst += g->Wo) {
                        int iy = oy + ky - g->pad;
                        if (iy < 0 || iy >= g->H) {
                            memset(dst, 0, sizeof *dst * (size_t)g->Wo);
                            continue;
                        }
                        const float *row = src + (size_t)iy * g->W + kx - g->pad;
                        memset(dst, 0, sizeof *dst * (size_t)lo);
                        memcpy(dst + lo, row + lo, sizeof *dst * (size_t)(hi - lo));
                        memset(dst + hi, 0, sizeof *dst * (size_t)(g->Wo - hi));
                    }
                }
            }
}

void tr_col2im(const struct tr_conv_geom *g, const float *col, float *dx) {
    size_t plane = (size_t)g->H * g->W, oplane = (size_t)g->Ho * g->Wo;
    memset(dx, 0, sizeof *dx * (size_t)g->C * g->N * plane);
    for (int c = 0; c < g->C; c++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                const float *src = col + (((size_t)c * g->k + ky) * g->k + kx) * g->N * oplane;
                int lo, hi;
                valid_span(g, kx, &lo, &hi);
                for (int n = 0; n < g->N; n++) {
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

void tr_conv_forward(const float *w, const float *b, const float *col, int cout, int K, int M,
                     float *y) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, M, K, 1.0f, w, K, col, M, 0.0f, y,
                M);
    for (int o = 0; o < cout; o++) {
        float *row = y + (size_t)o * M, bo = b[o];
        for (int m = 0; m < M; m++)
            row[m] += bo;
    }
}

void tr_conv_backward(const float *w, const float *col, const float *dy, int cout, int K, int M,
                      float *dw, float *db, float *dcol) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cout, K, M, 1.0f, dy, M, col, M, 0.0f, dw,
                K);
    for (int o = 0; o < cout; o++) {
        const float *row = dy + (size_t)o * M;
        double s = 0;
        for (int m = 0; m < M; m++)
            s += row[m];
        db[o] = (float)s;
    }
    if (dcol)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, M, cout, 1.0f, w, K, dy, M, 0.0f,
                    dcol, M);
}

void tr_relu_forward(float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void tr_relu_backward(const float *y, float *dy, size_t n) {
    for (size_t i = 0; i < n; i++)
        dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void tr_maxpool_forward(const float *x, int planes, int H, int W, float *y, int32_t *arg) {
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

void tr_maxpool_backward(const float *dy, const int32_t *arg, int planes, int H, int W, float *dx) {
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
