/* train.h: the example trainer's training loop: hyper-parameters, the learning-rate
 * schedule, shuffling, metrics reporting (libava) and progress lines, evaluation, and the
 * per-epoch checkpoints with resume. */
#ifndef AVA_TRAINER_TRAIN_H
#define AVA_TRAINER_TRAIN_H

#include "data.h"
#include "net.h"
#include "rng.h"

#include <stdint.h>
#include <stdio.h>

enum tr_schedule { TR_SCHED_COSINE = 0, TR_SCHED_STEP = 1, TR_SCHED_CONST = 2 };
#define TR_MAX_LR_STEPS 8

/* The hyper-parameters a checkpoint records. */
struct tr_hparams {
    int epochs, batch;
    float lr, momentum, wd;
    int schedule;                  /* enum tr_schedule */
    float lr_factor;               /* step schedule: lr *= lr_factor at each lr_steps epoch */
    int n_lr_steps;                /* how many lr_steps are used */
    int lr_steps[TR_MAX_LR_STEPS]; /* epochs (1-based) after which the lr drops */
    int warmup;                    /* batches of linear warm-up from lr / warmup */
    uint64_t seed;
};

/* Where a training stands: what a checkpoint restores besides the weights. */
struct tr_state {
    int epoch;    /* epochs completed */
    int64_t step; /* batches completed since the start (the metrics' step) */
    struct tr_rng rng;
    struct tr_norm norm;
};

/* One training: its settings and sets. */
struct tr_run {
    struct tr_hparams hp;
    struct tr_shape shape; /* complete: input shape and classes from the data */
    int threads;           /* workers (net.h) */
    int report_every;      /* batches between train metrics */
    int keep;              /* checkpoints kept (0 = all) */
    const char *output_dir;
    const char *resume_from;          /* NULL or a checkpoint to continue from */
    const struct tr_set *train, *val; /* val may be NULL */
};

/* The learning rate of batch number `step` (0-based, global) when an epoch has
 * steps_per_epoch batches. */
float tr_lr_at(const struct tr_hparams *hp, int64_t step, int64_t steps_per_epoch);

/* Shuffles perm[0..n-1] in place (Fisher-Yates from index n-1 down) with rng. */
void tr_shuffle(uint32_t *perm, uint32_t n, struct tr_rng *rng);

/* Loss and accuracy of net on a whole set (batches of net->max_batch), normalised by norm. */
void tr_evaluate(struct tr_net *net, const struct tr_set *set, const struct tr_norm *norm,
                 double *loss, double *acc);

/* Runs a training to its last epoch: resumes from run->resume_from when set, writes
 * checkpoint-<epoch> after every epoch and model.bin at the end into run->output_dir, and
 * reports metrics; progress lines go to stdout. When out is not NULL the final network is
 * left in it (caller: tr_net_free), and st, when not NULL, gets the final state. Returns 0
 * or a negative AVA_E* code with a message. */
int tr_train(const struct tr_run *run, struct tr_net *out, struct tr_state *st, char *err);

#endif
