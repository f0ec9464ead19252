/* train.c: the example trainer's training loop (see train.h): shuffled mini-batches, SGD with
 * momentum under a learning-rate schedule, metrics through libava and progress lines on
 * stdout, validation after every epoch, checkpoints and resume. */
#include "train.h"

#include "ckpt.h"

#include "../../../../src/common/err.h"

#include <ava/ava.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What one training carries from batch to batch. */
struct loop {
    const struct tr_run *run;
    struct tr_net *net;
    struct tr_state *st;
    uint32_t *perm;
    int64_t bpe; /* batches per epoch */
    /* since the last train report */
    double loss_sum, t_last;
    int64_t correct, seen;
    /* the whole run */
    double train_seconds;
    int64_t train_images;
};

/* Seconds on the monotonic clock. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

float tr_lr_at(const struct tr_hparams *hp, int64_t step, int64_t steps_per_epoch) {
    double lr = hp->lr, total = (double)hp->epochs * (double)steps_per_epoch;
    if (hp->schedule == TR_SCHED_COSINE && total > 0) {
        double t = (double)step / total;
        lr *= 0.5 * (1.0 + cos(M_PI * (t < 1.0 ? t : 1.0)));
    } else if (hp->schedule == TR_SCHED_STEP && steps_per_epoch > 0) {
        int64_t done = step / steps_per_epoch; /* epochs completed before this batch */
        for (int i = 0; i < hp->n_lr_steps; i++)
            if (done >= hp->lr_steps[i])
                lr *= hp->lr_factor;
    }
    if (hp->warmup > 0 && step < hp->warmup)
        lr *= (double)(step + 1) / hp->warmup;
    return (float)lr;
}

void tr_shuffle(uint32_t *perm, uint32_t n, struct tr_rng *rng) {
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = tr_rng_below(rng, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

void tr_evaluate(struct tr_net *net, const struct tr_set *set, const struct tr_norm *norm,
                 double *loss, double *acc) {
    int B = net->max_batch;
    uint32_t *idx = malloc(sizeof *idx * (size_t)B);
    double loss_sum = 0;
    int64_t correct = 0;
    for (int start = 0; idx && start < set->n; start += B) {
        int N = set->n - start < B ? set->n - start : B, ok = 0;
        for (int i = 0; i < N; i++)
            idx[i] = (uint32_t)(start + i);
        loss_sum += tr_net_run(net, set, norm, idx, N, false, &ok) * N;
        correct += ok;
    }
    free(idx);
    *loss = set->n ? loss_sum / set->n : 0.0;
    *acc = set->n ? (double)correct / set->n : 0.0;
}

/* Reports the train metrics gathered since the last report and prints a progress line. */
static void report_train(struct loop *L, int epoch, int64_t batch, float lr) {
    double t = now(), loss = L->loss_sum / (double)L->seen, acc = (double)L->correct / L->seen;
    double ips = t > L->t_last ? (double)L->seen / (t - L->t_last) : 0.0;
    ava_report_ex("loss", L->st->step, loss, "train", epoch);
    ava_report_ex("accuracy", L->st->step, acc, "train", epoch);
    ava_report_ex("learning_rate", L->st->step, lr, "train", epoch);
    printf("epoch %d/%d batch %" PRId64 "/%" PRId64 " loss %.4f acc %.4f lr %.6g (%.0f img/s)\n",
           epoch, L->run->hp.epochs, batch, L->bpe, loss, acc, lr, ips);
    L->loss_sum = 0, L->correct = 0, L->seen = 0, L->t_last = now();
}

/* Trains one epoch (the one after L->st->epoch). Fails only when the loss diverges. */
static int train_epoch(struct loop *L, char *err) {
    const struct tr_run *run = L->run;
    const struct tr_set *set = run->train;
    struct tr_net *net = L->net;
    int epoch = L->st->epoch + 1, B = run->hp.batch;
    for (int i = 0; i < set->n; i++)
        L->perm[i] = (uint32_t)i;
    tr_shuffle(L->perm, (uint32_t)set->n, &L->st->rng);
    double t0 = now();
    L->t_last = t0;
    for (int64_t b = 0; b < L->bpe; b++) {
        int N = (int)(set->n - b * B < B ? set->n - b * B : B), ok = 0;
        double loss = tr_net_run(net, set, &L->st->norm, L->perm + b * B, N, true, &ok);
        if (!isfinite(loss))
            return ava_err(err, AVA_EINVALID,
                           "the loss diverged (%g) at epoch %d batch %" PRId64
                           ": try a lower --lr or a --warmup",
                           loss, epoch, b + 1);
        float lr = tr_lr_at(&run->hp, L->st->step, L->bpe);
        tr_net_sgd(net, lr, run->hp.momentum, run->hp.wd);
        L->st->step++;
        L->loss_sum += loss * N, L->correct += ok, L->seen += N;
        if (L->st->step % run->report_every == 0 || b == L->bpe - 1)
            report_train(L, epoch, b + 1, lr);
    }
    L->train_seconds += now() - t0;
    L->train_images += set->n;
    return 0;
}

/* Evaluates on the validation set after an epoch, reports and prints it. */
static void validate(struct loop *L, double *acc_out) {
    if (!L->run->val)
        return;
    double loss, acc, t0 = now();
    tr_evaluate(L->net, L->run->val, &L->st->norm, &loss, &acc);
    ava_report_ex("loss", L->st->step, loss, "val", L->st->epoch);
    ava_report_ex("accuracy", L->st->step, acc, "val", L->st->epoch);
    printf("epoch %d val loss %.4f acc %.4f (%d images, %.1f s)\n", L->st->epoch, loss, acc,
           L->run->val->n, now() - t0);
    *acc_out = acc;
}

/* Removes checkpoints older than the last `keep` (keep 0: none) and temporaries that a killed
 * run left behind. */
static void prune_checkpoints(const char *dir, int epoch, int keep) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end, path[4400];
        bool stale_tmp = !strncmp(e->d_name, ".checkpoint-", 12) && strstr(e->d_name, ".tmp.");
        bool old = false;
        if (!strncmp(e->d_name, "checkpoint-", 11) && e->d_name[11] >= '0' &&
            e->d_name[11] <= '9') {
            long n = strtol(e->d_name + 11, &end, 10);
            old = *end == '\0' && keep > 0 && n <= epoch - keep;
        }
        if (!stale_tmp && !old)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0 && old)
            printf("removed %s (keeping the last %d checkpoints)\n", path, keep);
    }
    closedir(d);
}

/* Writes checkpoint-<epoch>, then prunes older ones. */
static int save_checkpoint(struct loop *L, char *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoint-%d", L->run->output_dir, L->st->epoch);
    int r = tr_ckpt_save(path, TR_CKPT_CHECKPOINT, L->net, &L->run->hp, L->st, err);
    if (r < 0)
        return r;
    printf("saved %s (epoch %d, step %" PRId64 ")\n", path, L->st->epoch, L->st->step);
    ava_flush(); /* the epoch's points are out before a stop can come */
    prune_checkpoints(L->run->output_dir, L->st->epoch, L->run->keep);
    return 0;
}

/* Prints a note for each hyper-parameter that differs from the checkpoint's. */
static void note_changes(const struct tr_hparams *was, const struct tr_hparams *now_hp) {
    struct {
        const char *name;
        double a, b;
    } f[] = {{"epochs", was->epochs, now_hp->epochs},
             {"batch", was->batch, now_hp->batch},
             {"lr", was->lr, now_hp->lr},
             {"momentum", was->momentum, now_hp->momentum},
             {"wd", was->wd, now_hp->wd},
             {"warmup", was->warmup, now_hp->warmup},
             {"seed", (double)was->seed, (double)now_hp->seed}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].a != f[i].b)
            printf("note: the checkpoint was made with --%s %g, continuing with %g\n", f[i].name,
                   f[i].a, f[i].b);
    if (was->schedule != now_hp->schedule)
        printf("note: the checkpoint was made with another --schedule\n");
}

/* Loads run->resume_from into net and st, checking that it fits this training. */
static int resume(const struct tr_run *run, struct tr_net *net, struct tr_state *st, char *err) {
    struct tr_ckpt k;
    int r = tr_ckpt_load(run->resume_from, &k, err);
    if (r < 0)
        return r;
    if (k.kind != TR_CKPT_CHECKPOINT)
        r = ava_err(err, AVA_EINVALID,
                    "%s holds a model's weights without the optimizer state: not a checkpoint to "
                    "resume from",
                    run->resume_from);
    if (r == 0)
        r = tr_ckpt_check_shape(&k, &run->shape, run->resume_from, err);
    if (r == 0) {
        memcpy(net->params, k.params, sizeof(float) * net->nparams);
        memcpy(net->mom, k.mom, sizeof(float) * net->nparams);
        *st = k.st;
        printf("resumed from %s (epoch %d, step %" PRId64 ")\n", run->resume_from, st->epoch,
               st->step);
        note_changes(&k.hp, &run->hp);
    }
    tr_ckpt_free(&k);
    return r;
}

/* Sets up net and state: a fresh start (He initialisation, normalisation from the train set)
 * or a resume. */
static int start(const struct tr_run *run, struct tr_net *net, struct tr_state *st, char *err) {
    int r = tr_net_init(net, &run->shape, run->hp.batch, run->threads, err);
    if (r < 0)
        return r;
    memset(st, 0, sizeof *st);
    if (run->resume_from)
        return resume(run, net, st, err);
    tr_rng_seed(&st->rng, run->hp.seed);
    tr_net_init_weights(net, &st->rng);
    tr_norm_compute(run->train, &st->norm);
    return 0;
}

/* The epochs of a started training, each followed by validation and a checkpoint. */
static int epochs(struct loop *L, double *val_acc, char *err) {
    int r = 0;
    while (r == 0 && L->st->epoch < L->run->hp.epochs) {
        r = train_epoch(L, err);
        if (r < 0)
            break;
        L->st->epoch++;
        validate(L, val_acc);
        r = save_checkpoint(L, err);
    }
    return r;
}

int tr_train(const struct tr_run *run, struct tr_net *out, struct tr_state *st_out, char *err) {
    struct tr_net net;
    struct tr_state st;
    int r = start(run, &net, &st, err);
    if (r < 0) {
        tr_net_free(&net);
        return r;
    }
    struct loop L = {.run = run, .net = &net, .st = &st};
    L.bpe = (run->train->n + run->hp.batch - 1) / run->hp.batch;
    L.perm = malloc(sizeof *L.perm * (size_t)run->train->n);
    double val_acc = -1;
    if (!L.perm)
        r = ava_err(err, AVA_EIO, "out of memory");
    if (r == 0 && st.epoch >= run->hp.epochs) {
        printf("the checkpoint is already at epoch %d of %d: nothing left to train\n", st.epoch,
               run->hp.epochs);
        validate(&L, &val_acc);
    } else if (r == 0) {
        r = epochs(&L, &val_acc, err);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.bin", run->output_dir);
    if (r == 0)
        r = tr_ckpt_save(path, TR_CKPT_MODEL, &net, &run->hp, &st, err);
    if (r == 0) {
        printf("done: epoch %d, step %" PRId64, st.epoch, st.step);
        if (val_acc >= 0)
            printf(", val acc %.4f", val_acc);
        if (L.train_seconds > 0)
            printf(", %.0f img/s over %.1f s of training", L.train_images / L.train_seconds,
                   L.train_seconds);
        printf("; model in %s\n", path);
    }
    free(L.perm);
    if (out && r == 0)
        *out = net;
    else
        tr_net_free(&net);
    if (st_out)
        *st_out = st;
    return r;
}
