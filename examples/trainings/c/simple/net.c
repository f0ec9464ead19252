/* net.c: the example trainer's CNN (see net.h): parameter layout, initialisation, forward
 * and backward passes over a batch, and the SGD step. */
#include "net.h"

#include "../../../../src/common/err.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KSIZE 5
#define KPAD 2
#define MAX_DIM 4096
#define MAX_WIDTH 4096
/* floats of one im2col chunk: with its gradient and OpenBLAS's packed copy it stays within a
 * core's L2 cache (1 MiB here); see tr_net.chunk */
#define CHUNK_FLOATS (64 * 1024)

int tr_shape_check(const struct tr_shape *s, char *err) {
    if (s->C != 1 && s->C != 3)
        return ava_err(err, AVA_EINVALID, "images must have 1 or 3 channels, not %d", s->C);
    if (s->H < 4 || s->W < 4 || s->H > MAX_DIM || s->W > MAX_DIM)
        return ava_err(err, AVA_EINVALID, "images must be 4x4 to %dx%d pixels, not %dx%d", MAX_DIM,
                       MAX_DIM, s->W, s->H);
    if (s->classes < 2 || s->classes > 100000)
        return ava_err(err, AVA_EINVALID, "the number of classes must be 2 to 100000, not %d",
                       s->classes);
    if (s->conv1 < 1 || s->conv2 < 1 || s->hidden < 0 || s->conv1 > MAX_WIDTH ||
        s->conv2 > MAX_WIDTH || s->hidden > MAX_WIDTH)
        return ava_err(err, AVA_EINVALID, "layer widths must be 1 to %d (hidden 0 to %d)",
                       MAX_WIDTH, MAX_WIDTH);
    return 0;
}

/* Fills the tensor offsets and lengths of net for shape s. */
static void layout(struct tr_net *net, const struct tr_shape *s) {
    net->H2 = s->H / 2, net->W2 = s->W / 2, net->H4 = net->H2 / 2, net->W4 = net->W2 / 2;
    net->F = s->conv2 * net->H4 * net->W4;
    int fc1_out = s->hidden ? s->hidden : s->classes;
    size_t len[TR_NTENSORS] = {
        [TR_W1] = (size_t)s->conv1 * s->C * KSIZE * KSIZE,
        [TR_B1] = (size_t)s->conv1,
        [TR_W2] = (size_t)s->conv2 * s->conv1 * KSIZE * KSIZE,
        [TR_B2] = (size_t)s->conv2,
        [TR_W3] = (size_t)fc1_out * net->F,
        [TR_B3] = (size_t)fc1_out,
        [TR_W4] = s->hidden ? (size_t)s->classes * s->hidden : 0,
        [TR_B4] = s->hidden ? (size_t)s->classes : 0,
    };
    size_t off = 0;
    for (int i = 0; i < TR_NTENSORS; i++) {
        net->off[i] = off;
        net->len[i] = len[i];
        off += len[i];
    }
    net->nparams = off;
}

size_t tr_shape_nparams(const struct tr_shape *s) {
    struct tr_net n = {0};
    layout(&n, s);
    return n.nparams;
}

void tr_shape_describe(const struct tr_shape *s, char *out, size_t outlen) {
    char fc[32] = "";
    if (s->hidden)
        snprintf(fc, sizeof fc, " -> fc %d", s->hidden);
    snprintf(out, outlen, "%dx%dx%d -> conv %d -> conv %d%s -> %d classes", s->C, s->H, s->W,
             s->conv1, s->conv2, fc, s->classes);
}

/* One convolution geometry of net for N samples: layer 1 or 2. */
static struct tr_conv_geom geom(const struct tr_net *net, int layer, int N) {
    struct tr_conv_geom g;
    if (layer == 1)
        tr_conv_geom_init(&g, net->s.C, N, net->s.H, net->s.W, KSIZE, KPAD);
    else
        tr_conv_geom_init(&g, net->s.conv1, N, net->H2, net->W2, KSIZE, KPAD);
    return g;
}

/* calloc of n floats (or int32s: the same size). */
static void *fbuf(size_t n) {
    return calloc(n ? n : 1, sizeof(float));
}

/* Every buffer of a worker, for allocation checks and freeing. */
#define WORK_BUFFERS(w)                                                                            \
    {                                                                                              \
        (w)->x, (w)->col1, (w)->a1, (w)->p1, (w)->col2, (w)->a2, (w)->p2, (w)->flat, (w)->h,       \
            (w)->logits, (w)->arg1, (w)->arg2, (w)->labels, (w)->dcol2, (w)->da1, (w)->dp1,        \
            (w)->da2, (w)->dp2, (w)->dflat, (w)->dh, (w)->grads, (w)->dwt                          \
    }

/* Allocates one worker's buffers for shards of up to B samples; false when out of memory. */
static bool work_alloc(struct tr_work *w, const struct tr_net *net, size_t B) {
    const struct tr_shape *s = &net->s;
    size_t hw = (size_t)s->H * s->W, hw2 = (size_t)net->H2 * net->W2;
    size_t hw4 = (size_t)net->H4 * net->W4, fc1 = s->hidden ? s->hidden : s->classes;
    size_t k1 = (size_t)s->C * KSIZE * KSIZE, k2 = (size_t)s->conv1 * KSIZE * KSIZE;
    size_t c1 = (size_t)net->chunk[0], c2 = (size_t)net->chunk[1];
    w->x = fbuf(s->C * B * hw), w->col1 = fbuf(k1 * c1 * hw), w->a1 = fbuf(s->conv1 * B * hw);
    w->p1 = fbuf(s->conv1 * B * hw2), w->arg1 = fbuf(s->conv1 * B * hw2);
    w->col2 = fbuf(k2 * c2 * hw2), w->a2 = fbuf(s->conv2 * B * hw2);
    w->p2 = fbuf(s->conv2 * B * hw4), w->arg2 = fbuf(s->conv2 * B * hw4);
    w->flat = fbuf(B * net->F), w->h = fbuf(B * fc1), w->logits = fbuf(B * s->classes);
    w->labels = fbuf(B), w->dcol2 = fbuf(k2 * c2 * hw2), w->da1 = fbuf(s->conv1 * B * hw);
    w->dp1 = fbuf(s->conv1 * B * hw2), w->da2 = fbuf(s->conv2 * B * hw2);
    w->dp2 = fbuf(s->conv2 * B * hw4), w->dflat = fbuf(B * net->F), w->dh = fbuf(B * fc1);
    w->grads = fbuf(net->nparams);
    w->dwt = fbuf(net->len[TR_W1] > net->len[TR_W2] ? net->len[TR_W1] : net->len[TR_W2]);
    void *all[] = WORK_BUFFERS(w);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!all[i])
            return false;
    return true;
}

/* Frees one worker's buffers. */
static void work_free(struct tr_work *w) {
    void *all[] = WORK_BUFFERS(w);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

int tr_net_init(struct tr_net *net, const struct tr_shape *s, int max_batch, int threads,
                char *err) {
    memset(net, 0, sizeof *net);
    int r = tr_shape_check(s, err);
    if (r < 0)
        return r;
    net->s = *s;
    net->max_batch = max_batch < 1 ? 1 : max_batch;
    net->nwork = threads < 1 ? 1 : threads > net->max_batch ? net->max_batch : threads;
    net->shard = (net->max_batch + net->nwork - 1) / net->nwork;
    layout(net, s);
    for (int l = 0; l < 2; l++) { /* samples whose im2col matrix fits CHUNK_FLOATS, at least 1 */
        struct tr_conv_geom g = geom(net, l + 1, 1);
        size_t per = tr_col_rows(&g) * tr_col_cols(&g), n = CHUNK_FLOATS / (per ? per : 1);
        net->chunk[l] = n < 1 ? 1 : n > (size_t)net->shard ? net->shard : (int)n;
    }
    /* int32 offsets and GEMM sizes of a shard must fit an int */
    size_t widest = (size_t)(s->conv1 > s->conv2 ? s->conv1 : s->conv2) * KSIZE * KSIZE;
    if (widest * net->shard * s->H * s->W >= (size_t)INT32_MAX)
        return ava_err(err, AVA_EINVALID,
                       "a batch of %d images of %dx%d is too large for %d threads", max_batch, s->W,
                       s->H, net->nwork);
    net->params = fbuf(net->nparams), net->grads = fbuf(net->nparams);
    net->mom = fbuf(net->nparams), net->work = calloc((size_t)net->nwork, sizeof *net->work);
    bool ok = net->params && net->grads && net->mom && net->work;
    for (int i = 0; ok && i < net->nwork; i++)
        ok = work_alloc(&net->work[i], net, (size_t)net->shard);
    if (ok && !(net->pool = tr_pool_new(net->nwork))) {
        tr_net_free(net);
        return ava_err(err, AVA_EIO, "cannot start %d threads", threads);
    }
    if (!ok) {
        tr_net_free(net);
        return ava_err(err, AVA_EIO, "out of memory for a batch of %d", max_batch);
    }
    return 0;
}

void tr_net_free(struct tr_net *net) {
    tr_pool_free(net->pool);
    for (int i = 0; net->work && i < net->nwork; i++)
        work_free(&net->work[i]);
    free(net->work);
    free(net->params);
    free(net->grads);
    free(net->mom);
    memset(net, 0, sizeof *net);
}

float *tr_net_param(struct tr_net *net, int tensor) {
    return net->params + net->off[tensor];
}

/* Fills a weight tensor with normal draws of standard deviation std. */
static void fill_normal(float *w, size_t n, double std, struct tr_rng *rng) {
    for (size_t i = 0; i < n; i++)
        w[i] = (float)(std * tr_rng_normal(rng));
}

void tr_net_init_weights(struct tr_net *net, struct tr_rng *rng) {
    const struct tr_shape *s = &net->s;
    memset(net->params, 0, sizeof(float) * net->nparams);
    memset(net->mom, 0, sizeof(float) * net->nparams);
    double fan1 = (double)s->C * KSIZE * KSIZE, fan2 = (double)s->conv1 * KSIZE * KSIZE;
    fill_normal(tr_net_param(net, TR_W1), net->len[TR_W1], sqrt(2.0 / fan1), rng);
    fill_normal(tr_net_param(net, TR_W2), net->len[TR_W2], sqrt(2.0 / fan2), rng);
    double gain3 = s->hidden ? 2.0 : 1.0;
    fill_normal(tr_net_param(net, TR_W3), net->len[TR_W3], sqrt(gain3 / net->F), rng);
    if (s->hidden)
        fill_normal(tr_net_param(net, TR_W4), net->len[TR_W4], sqrt(1.0 / s->hidden), rng);
}

/* Convolution `layer` (1 or 2) of N samples x (CNHW) into y (CNHW), chunk by chunk through
 * col. The last chunk's unfolded input is left in col (conv_backward starts with it);
 * *col_nc tracks what col holds (see tr_work.col_nc). */
static void conv_forward(const struct tr_net *net, int layer, int N, const float *x, float *col,
                         int *col_nc, float *y) {
    struct tr_conv_geom g = geom(net, layer, N);
    int K = (int)tr_col_rows(&g), S = g.Ho * g.Wo, M = N * S, chunk = net->chunk[layer - 1];
    int cout = layer == 1 ? net->s.conv1 : net->s.conv2;
    const float *W = net->params + net->off[layer == 1 ? TR_W1 : TR_W2];
    const float *b = net->params + net->off[layer == 1 ? TR_B1 : TR_B2];
    for (int n0 = 0; n0 < N; n0 += chunk) {
        int nc = N - n0 < chunk ? N - n0 : chunk;
        tr_im2col_range_z(&g, x, n0, nc, col, *col_nc == nc);
        *col_nc = nc;
        tr_conv_forward(W, b, col, cout, K, nc * S, y + (size_t)n0 * S, M);
    }
}

/* The backward pass of convolution `layer` (1 or 2) over N samples: from dy (CNHW) and the
 * layer's input x, its weight and bias gradients into G, and, when dx is not NULL, the input's
 * gradient (CNHW). Chunks run last to first: the last one is still unfolded in col from
 * conv_forward; the others are unfolded again. The weight gradient is summed transposed in
 * dwt (the faster GEMM, see tr_conv_backward_wt) and moved into G once at the end. */
static void conv_backward(const struct tr_net *net, int layer, int N, const float *x, float *col,
                          int *col_nc, const float *dy, float *dcol, float *dwt, float *G,
                          float *dx) {
    struct tr_conv_geom g = geom(net, layer, N);
    int K = (int)tr_col_rows(&g), S = g.Ho * g.Wo, M = N * S, chunk = net->chunk[layer - 1];
    int cout = layer == 1 ? net->s.conv1 : net->s.conv2;
    const float *W = net->params + net->off[layer == 1 ? TR_W1 : TR_W2];
    float *dw = G + net->off[layer == 1 ? TR_W1 : TR_W2];
    float *db = G + net->off[layer == 1 ? TR_B1 : TR_B2];
    int last = (N - 1) / chunk * chunk;
    for (int n0 = last; n0 >= 0; n0 -= chunk) {
        int nc = N - n0 < chunk ? N - n0 : chunk;
        if (n0 != last) {
            tr_im2col_range_z(&g, x, n0, nc, col, *col_nc == nc);
            *col_nc = nc;
        }
        tr_conv_backward_wt(W, col, dy + (size_t)n0 * S, M, cout, K, nc * S, n0 != last, dwt, db,
                            dx ? dcol : NULL);
        if (dx)
            tr_col2im_range(&g, dcol, n0, nc, dx);
    }
    for (int o = 0; o < cout; o++) /* the chunks' sum, transposed into place */
        for (int k = 0; k < K; k++)
            dw[(size_t)o * K + k] = dwt[(size_t)k * cout + o];
}

/* The forward pass of a worker's shard (w->n samples in w->x) up to w->logits. */
static void forward(const struct tr_net *net, struct tr_work *w) {
    const struct tr_shape *s = &net->s;
    const float *P = net->params;
    int N = w->n;
    int S4 = net->H4 * net->W4;
    conv_forward(net, 1, N, w->x, w->col1, &w->col_nc[0], w->a1);
    tr_maxpool_forward(w->a1, s->conv1 * N, s->H, s->W, w->p1, w->arg1);
    tr_relu_forward(w->p1, (size_t)s->conv1 * N * net->H2 * net->W2);
    conv_forward(net, 2, N, w->p1, w->col2, &w->col_nc[1], w->a2);
    tr_maxpool_forward(w->a2, s->conv2 * N, net->H2, net->W2, w->p2, w->arg2);
    tr_relu_forward(w->p2, (size_t)s->conv2 * N * S4);
    tr_cnhw_to_nchw(w->p2, s->conv2, N, S4, w->flat);
    int fc1 = s->hidden ? s->hidden : s->classes;
    tr_fc_forward(w->flat, P + net->off[TR_W3], P + net->off[TR_B3], N, net->F, fc1,
                  s->hidden ? w->h : w->logits);
    if (!s->hidden)
        return;
    tr_relu_forward(w->h, (size_t)N * s->hidden);
    tr_fc_forward(w->h, P + net->off[TR_W4], P + net->off[TR_B4], N, s->hidden, s->classes,
                  w->logits);
}

/* Backward through the fully connected part: from the logits' gradient (in w->logits) to
 * w->dflat. */
static void backward_fc(const struct tr_net *net, struct tr_work *w) {
    const struct tr_shape *s = &net->s;
    const float *P = net->params;
    float *G = w->grads;
    int N = w->n;
    if (!s->hidden) {
        tr_fc_backward(w->flat, P + net->off[TR_W3], w->logits, N, net->F, s->classes,
                       G + net->off[TR_W3], G + net->off[TR_B3], w->dflat);
        return;
    }
    tr_fc_backward(w->h, P + net->off[TR_W4], w->logits, N, s->hidden, s->classes,
                   G + net->off[TR_W4], G + net->off[TR_B4], w->dh);
    tr_relu_backward(w->h, w->dh, (size_t)N * s->hidden);
    tr_fc_backward(w->flat, P + net->off[TR_W3], w->dh, N, net->F, s->hidden, G + net->off[TR_W3],
                   G + net->off[TR_B3], w->dflat);
}

/* The backward pass of a worker's shard, from the logits' gradient to w->grads. */
static void backward(const struct tr_net *net, struct tr_work *w) {
    const struct tr_shape *s = &net->s;
    float *G = w->grads;
    int N = w->n, S4 = net->H4 * net->W4;
    backward_fc(net, w);
    tr_nchw_to_cnhw(w->dflat, s->conv2, N, S4, w->dp2);
    tr_relu_backward(w->p2, w->dp2, (size_t)s->conv2 * N * S4);
    tr_maxpool_backward(w->dp2, w->arg2, s->conv2 * N, net->H2, net->W2, w->da2);
    conv_backward(net, 2, N, w->p1, w->col2, &w->col_nc[1], w->da2, w->dcol2, w->dwt, G, w->dp1);
    tr_relu_backward(w->p1, w->dp1, (size_t)s->conv1 * N * net->H2 * net->W2);
    tr_maxpool_backward(w->dp1, w->arg1, s->conv1 * N, s->H, s->W, w->da1);
    /* the first layer's input needs no gradient: no dcol GEMM, no col2im */
    conv_backward(net, 1, N, w->x, w->col1, &w->col_nc[0], w->da1, NULL, w->dwt, G, NULL);
}

/* A worker's part of tr_net_run: its shard's batch assembly, forward, loss and backward. */
static void run_shard(void *arg, int i) {
    struct tr_net *net = arg;
    struct tr_work *w = &net->work[i];
    w->lo = i * net->shard;
    w->n = net->N - w->lo < net->shard ? net->N - w->lo : net->shard;
    w->loss = 0, w->correct = 0;
    if (w->n <= 0) {
        w->n = 0;
        return;
    }
    tr_set_batch(net->set, net->norm, net->idx + w->lo, w->n, w->x, w->labels);
    forward(net, w);
    float scale = 1.0f / (float)net->N;
    w->loss = tr_softmax_xent(w->logits, w->labels, w->n, net->s.classes,
                              net->train ? w->logits : NULL, scale, &w->correct);
    if (net->train)
        backward(net, w);
}

double tr_net_run(struct tr_net *net, const struct tr_set *set, const struct tr_norm *norm,
                  const uint32_t *idx, int N, bool train, int *correct) {
    net->set = set, net->norm = norm, net->idx = idx, net->N = N, net->train = train;
    tr_pool_run(net->pool, run_shard, net);
    double loss = 0;
    int ok = 0;
    for (int i = 0; i < net->nwork; i++)
        loss += net->work[i].loss, ok += net->work[i].correct;
    if (correct)
        *correct = ok;
    if (train) { /* the shards' gradients, summed in worker order */
        if (net->work[0].n > 0)
            memcpy(net->grads, net->work[0].grads, sizeof(float) * net->nparams);
        else
            memset(net->grads, 0, sizeof(float) * net->nparams);
        for (int i = 1; i < net->nwork; i++) {
            const float *g = net->work[i].grads;
            if (net->work[i].n == 0)
                continue;
            for (size_t j = 0; j < net->nparams; j++)
                net->grads[j] += g[j];
        }
    }
    return N > 0 ? loss / N : 0.0;
}

void tr_net_sgd(struct tr_net *net, float lr, float momentum, float wd) {
    for (int t = 0; t < TR_NTENSORS; t++) {
        float *w = net->params + net->off[t], *g = net->grads + net->off[t];
        float *v = net->mom + net->off[t];
        float decay = t % 2 == 0 ? wd : 0.0f; /* even tensors are weights, odd ones biases */
        for (size_t i = 0; i < net->len[t]; i++) {
            v[i] = momentum * v[i] + g[i] + decay * w[i];
            w[i] -= lr * v[i];
        }
    }
}
