/* net.h: the example trainer's network, a small CNN:
 *   conv 5x5 pad 2 (conv1 filters) - maxpool 2 - ReLU
 *   conv 5x5 pad 2 (conv2 filters) - maxpool 2 - ReLU
 *   [fully connected (hidden) - ReLU] - fully connected (classes) - softmax cross-entropy
 * (ReLU after the pooling equals ReLU before it, on a quarter of the values). Parameters,
 * their gradients and SGD momentum buffers each live in one contiguous block, in the order
 * w1 b1 w2 b2 w3 b3 [w4 b4], which is also their order in checkpoints.
 *
 * A batch is cut into one contiguous shard per thread; each thread runs the whole network on
 * its shard with single-threaded OpenBLAS calls and its own buffers, and the shards'
 * gradients are summed in a fixed order: the result depends on the thread count, never on
 * timing. Within a shard each convolution unfolds (im2col) and multiplies a few samples at a
 * time, so that its im2col matrix stays in the core's cache instead of streaming through
 * memory; the backward pass unfolds them again. */
#ifndef AVA_TRAINER_NET_H
#define AVA_TRAINER_NET_H

#include "data.h"
#include "layers.h"
#include "par.h"
#include "rng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What fixes the parameter layout: input channels and size, classes, layer widths. */
struct tr_shape {
    int C, H, W;      /* input: 1 (grey) or 3 (RGB) channels of H x W */
    int classes;      /* outputs */
    int conv1, conv2; /* filters of the two convolutions */
    int hidden;       /* units of the hidden fully connected layer; 0 = none */
};

enum { TR_W1, TR_B1, TR_W2, TR_B2, TR_W3, TR_B3, TR_W4, TR_B4, TR_NTENSORS };

/* One thread's shard of a batch: activations (CNHW in the convolutional part), their
 * gradients, and the shard's parameter gradients. */
struct tr_work {
    int lo, n;     /* the shard: samples lo .. lo + n - 1 of the batch */
    int col_nc[2]; /* samples of the last unfolding in col1 and col2 (0: none yet): */
                   /* refilled for as many, their zero padding is in place already */
    float *x, *col1, *a1, *p1, *col2, *a2, *p2, *flat, *h, *logits;
    int32_t *arg1, *arg2, *labels;
    float *dcol2, *da1, *dp1, *da2, *dp2, *dflat, *dh, *grads;
    float *dwt;  /* a convolution's weight gradient, transposed (tr_conv_backward_wt) */
    double loss; /* the shard's summed loss */
    int correct;
};

struct tr_net {
    struct tr_shape s;
    int max_batch, shard;  /* shard: the most samples one worker takes */
    int chunk[2];          /* samples per im2col chunk of convolution 1 and 2 (tr_net_init) */
    int H2, W2, H4, W4, F; /* sizes after each pooling; F = conv2 * H4 * W4 */
    size_t off[TR_NTENSORS], len[TR_NTENSORS], nparams;
    float *params, *grads, *mom;
    int nwork;
    struct tr_work *work;
    struct tr_pool *pool;
    /* the batch being run */
    const struct tr_set *set;
    const struct tr_norm *norm;
    const uint32_t *idx;
    int N;
    bool train;
};

/* Checks a shape (sizes in range). Returns 0 or AVA_EINVALID with a message. */
int tr_shape_check(const struct tr_shape *s, char *err);
/* The number of float parameters of a (checked) shape. */
size_t tr_shape_nparams(const struct tr_shape *s);
/* Describes s, e.g. "1x28x28 -> conv 16 -> conv 32 -> fc 128 -> 10 classes". */
void tr_shape_describe(const struct tr_shape *s, char *out, size_t outlen);

/* Allocates a network for batches of up to max_batch samples run by `threads` threads;
 * parameters and momentum zero. Returns 0, AVA_EINVALID (bad shape) or AVA_EIO (out of
 * memory or threads), with a message. */
int tr_net_init(struct tr_net *net, const struct tr_shape *s, int max_batch, int threads,
                char *err);
/* Frees what tr_net_init allocated; a zeroed net is a no-op. */
void tr_net_free(struct tr_net *net);
/* He initialisation of every weight (normal, std sqrt(2 / fan in); the output layer uses
 * sqrt(1 / fan in)), biases 0, momentum 0. Draws from rng in a fixed order. */
void tr_net_init_weights(struct tr_net *net, struct tr_rng *rng);
/* A parameter tensor. */
float *tr_net_param(struct tr_net *net, int tensor);

/* Runs the samples idx[0..N-1] (N <= max_batch) of set, normalised by norm, through the
 * network: the mean softmax cross-entropy is returned and *correct (when not NULL) gets the
 * samples classified right. With train, the gradient of the mean loss with respect to every
 * parameter is left in net->grads. */
double tr_net_run(struct tr_net *net, const struct tr_set *set, const struct tr_norm *norm,
                  const uint32_t *idx, int N, bool train, int *correct);
/* One SGD step with momentum (PyTorch's convention: v = momentum v + g + wd w; w -= lr v);
 * weight decay applies to weights, not to biases. */
void tr_net_sgd(struct tr_net *net, float lr, float momentum, float wd);

#endif
