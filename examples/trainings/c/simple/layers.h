/* layers.h: the example trainer's layers as plain functions on float arrays: im2col/col2im,
 * convolution as GEMM (OpenBLAS), ReLU, 2x2 max pooling, fully connected and softmax
 * cross-entropy, forward and backward. Activations of convolutional layers are kept
 * channel-major over the whole batch (C x N x H x W, "CNHW"), so that one GEMM covers a
 * layer for every sample of the batch. */
#ifndef AVA_TRAINER_LAYERS_H
#define AVA_TRAINER_LAYERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The geometry of a stride-1 convolution over a CNHW batch: C input channels, N samples of
 * H x W, a k x k kernel with pad zero pixels on each side, producing Ho x Wo outputs. */
struct tr_conv_geom {
    int C, N, H, W, k, pad;
    int Ho, Wo; /* H + 2 pad - k + 1 and W + 2 pad - k + 1 (see tr_conv_geom_init) */
};

/* Fills g for a stride-1 convolution; returns -1 when the output would be empty. */
int tr_conv_geom_init(struct tr_conv_geom *g, int C, int N, int H, int W, int k, int pad);
/* Rows (C k k) and columns (N Ho Wo) of the im2col matrix of g. */
size_t tr_col_rows(const struct tr_conv_geom *g);
size_t tr_col_cols(const struct tr_conv_geom *g);

/* Unfolds x (C x N x H x W) into col (C k k rows of N Ho Wo columns); row (c, ky, kx), column
 * (n, oy, ox) holds x[c][n][oy + ky - pad][ox + kx - pad], or 0 outside the image. */
void tr_im2col(const struct tr_conv_geom *g, const float *x, float *col);
/* The same for the samples n0 .. n0 + nc - 1 of x only: col gets C k k rows of nc Ho Wo
 * columns (the convolution runs on a few samples at a time so that col stays in cache). */
void tr_im2col_range(const struct tr_conv_geom *g, const float *x, int n0, int nc, float *col);
/* tr_im2col_range, where with zeroed the caller vouches that col already holds an unfolding of
 * the same g and nc (any samples): the entries that fall in the zero padding are then zero
 * already and, for a "same" convolution (Ho = H, Wo = W), the whole rows of them are not
 * written again. A convolution run chunk by chunk through one buffer refills it this way. */
void tr_im2col_range_z(const struct tr_conv_geom *g, const float *x, int n0, int nc, float *col,
                       bool zeroed);
/* The adjoint of tr_im2col: dx (C x N x H x W) = the sum of every col entry at its source
 * pixel. dx is overwritten. col is scratch: its entries that fall in the zero padding (those
 * tr_im2col sets to 0) may be zeroed. */
void tr_col2im(const struct tr_conv_geom *g, float *col, float *dx);
/* The adjoint of tr_im2col_range: overwrites the samples n0 .. n0 + nc - 1 of dx only (col is
 * scratch, as for tr_col2im). */
void tr_col2im_range(const struct tr_conv_geom *g, float *col, int n0, int nc, float *dx);

/* y (Cout x M, rows ldy apart) = w (Cout x K) * col (K x M) + b (per output row). */
void tr_conv_forward(const float *w, const float *b, const float *col, int cout, int K, int M,
                     float *y, int ldy);
/* From dy (Cout x M, rows ldy apart): dw = dy * col^T (Cout x K), db = row sums of dy (both
 * added to what dw and db hold when accumulate is not 0, else overwritten), and, when dcol is
 * not NULL, dcol = w^T * dy (K x M, overwritten). */
void tr_conv_backward(const float *w, const float *col, const float *dy, int ldy, int cout, int K,
                      int M, int accumulate, float *dw, float *db, float *dcol);
/* tr_conv_backward with the weight gradient transposed: dwt (K x Cout) = col * dy^T, the
 * faster GEMM for a convolution's shapes; the caller transposes it once after its chunks. */
void tr_conv_backward_wt(const float *w, const float *col, const float *dy, int ldy, int cout,
                         int K, int M, int accumulate, float *dwt, float *db, float *dcol);

/* ReLU in place over n values. */
void tr_relu_forward(float *x, size_t n);
/* dy[i] = 0 where the ReLU's output y[i] is not positive. */
void tr_relu_backward(const float *y, float *dy, size_t n);

/* 2x2 max pooling with stride 2 over `planes` planes of H x W (odd edges are dropped): y gets
 * planes x (H/2) x (W/2) values and arg the offset in x of each maximum. */
void tr_maxpool_forward(const float *x, int planes, int H, int W, float *y, int32_t *arg);
/* dx (planes x H x W, overwritten) = dy scattered back to the maxima recorded in arg (the
 * offsets tr_maxpool_forward wrote for the same x), 0 elsewhere. */
void tr_maxpool_backward(const float *dy, const int32_t *arg, int planes, int H, int W, float *dx);

/* y (N x nout) = x (N x nin) * w^T + b, w being nout x nin (row o = the weights of output o). */
void tr_fc_forward(const float *x, const float *w, const float *b, int N, int nin, int nout,
                   float *y);
/* From dy (N x nout): dw = dy^T x (nout x nin), db = column sums of dy, and, when dx is not NULL,
 * dx = dy w (N x nin). All overwritten. */
void tr_fc_backward(const float *x, const float *w, const float *dy, int N, int nin, int nout,
                    float *dw, float *db, float *dx);

/* Softmax cross-entropy of N rows of K logits against labels (0 <= label < K). Returns the
 * summed loss of the rows; *correct gets the rows whose arg max is the label. When dlogits is
 * not NULL it receives (softmax - one hot) * scale (scale = 1 / batch size makes it the
 * gradient of the batch's mean loss); it may be logits itself. */
double tr_softmax_xent(const float *logits, const int32_t *labels, int N, int K, float *dlogits,
                       float scale, int *correct);

/* Moves a CNHW block (C x N x S) to NCHW (N x C x S), and back. */
void tr_cnhw_to_nchw(const float *src, int C, int N, int S, float *dst);
void tr_nchw_to_cnhw(const float *src, int C, int N, int S, float *dst);

#endif
