/* main.c: ava-train-c, the example trainer of the public image ava-examples:c: trains a small
 * CNN on the run's formatted sets and reports its curves to ava, or (--infer) prints a saved
 * model's accuracy on a set. Usage and defaults: --help and docs/examples.md. */
#include "ckpt.h"
#include "data.h"
#include "opts.h"
#include "train.h"

#include "../../../../src/common/err.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Seconds on the monotonic clock. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Loads one set, printing what it holds. */
static int load(const char *what, const char *dir, int limit, struct tr_set *set, char *err) {
    double t0 = now();
    int r = tr_set_load(dir, limit, set, err);
    if (r == 0)
        printf("%s set %s: %d %s images of %dx%dx%d (channels x height x width), %d classes seen, "
               "loaded in %.1f s\n",
               what, dir, set->n, set->format, set->C, set->H, set->W, set->max_label + 1,
               now() - t0);
    return r;
}

/* The thread count: --threads, else the training's CPUs, else the online CPUs. */
static int pick_threads(const struct tr_opts *o) {
    if (o->threads > 0)
        return o->threads;
    int n = tr_spec_cpus(o->config_dir);
    if (n > 0)
        return n;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? (int)cpus : 1;
}

/* --infer: evaluates a model or checkpoint on a set. */
static int infer(const struct tr_opts *o, int threads, char *err) {
    struct tr_ckpt k;
    struct tr_set set = {0};
    struct tr_net net = {0};
    int r = tr_ckpt_load(o->infer_model, &k, err);
    if (r < 0)
        return r;
    r = load("evaluation", o->infer_set, o->val_limit, &set, err);
    if (r == 0 && (set.C != k.shape.C || set.H != k.shape.H || set.W != k.shape.W))
        r = ava_err(err, AVA_EINVALID, "%s holds %dx%dx%d images; %s was trained on %dx%dx%d",
                    o->infer_set, set.C, set.H, set.W, o->infer_model, k.shape.C, k.shape.H,
                    k.shape.W);
    if (r == 0 && set.max_label >= k.shape.classes)
        r = ava_err(err, AVA_EINVALID, "%s has label %d; %s knows %d classes", o->infer_set,
                    set.max_label, o->infer_model, k.shape.classes);
    if (r == 0)
        r = tr_net_init(&net, &k.shape, 256, threads, err);
    if (r == 0) {
        double loss, acc, t0 = now();
        memcpy(net.params, k.params, sizeof(float) * net.nparams);
        tr_evaluate(&net, &set, &k.st.norm, &loss, &acc);
        printf("accuracy %.4f (%lld/%d) loss %.4f: %s (epoch %d, step %lld) on %s, %.0f img/s\n",
               acc, (long long)(acc * set.n + 0.5), set.n, loss, o->infer_model, k.st.epoch,
               (long long)k.st.step, o->infer_set, set.n / (now() - t0));
    }
    tr_net_free(&net);
    tr_set_free(&set);
    tr_ckpt_free(&k);
    return r;
}

/* The number of classes: trainsetinfo's "classes", else the largest label seen + 1. */
static int pick_classes(const struct tr_opts *o, const struct tr_set *train,
                        const struct tr_set *val, int *classes, char *err) {
    int seen = train->max_label > val->max_label ? train->max_label : val->max_label;
    int n = tr_setinfo_classes(o->config_dir, "trainsetinfo");
    *classes = n > 0 ? n : seen + 1;
    if (seen >= *classes)
        return ava_err(err, AVA_EINVALID, "label %d is out of range: trainsetinfo lists %d classes",
                       seen, *classes);
    if (*classes < 2)
        *classes = 2; /* one class seen: still a (degenerate) classifier */
    return 0;
}

/* Loads the sets and runs the training. */
static int train(const struct tr_opts *o, int threads, char *err) {
    if (!o->train_dir)
        return ava_err(err, AVA_EINVALID,
                       "no train set: AVA_TRAIN_DIR is not set (give the training --train SET, or "
                       "run with --train DIR)");
    struct tr_set tset = {0}, vset = {.max_label = -1};
    int r = load("train", o->train_dir, o->train_limit, &tset, err);
    bool have_val = r == 0 && o->val_dir && !o->no_val;
    if (r == 0 && !have_val)
        printf("no validation set: training without validation\n");
    if (have_val)
        r = load("validation", o->val_dir, o->val_limit, &vset, err);
    if (have_val && r == 0 && (vset.C != tset.C || vset.H != tset.H || vset.W != tset.W))
        r = ava_err(err, AVA_EINVALID,
                    "the validation images are %dx%dx%d, the train images %dx%dx%d", vset.C, vset.H,
                    vset.W, tset.C, tset.H, tset.W);
    struct tr_run run = {.hp = o->hp,
                         .threads = threads,
                         .report_every = o->report_every,
                         .keep = o->keep,
                         .output_dir = o->output_dir,
                         .resume_from = o->resume,
                         .train = &tset,
                         .val = have_val ? &vset : NULL};
    run.shape = (struct tr_shape){.C = tset.C,
                                  .H = tset.H,
                                  .W = tset.W,
                                  .conv1 = o->conv1,
                                  .conv2 = o->conv2,
                                  .hidden = o->hidden};
    if (r == 0)
        r = pick_classes(o, &tset, &vset, &run.shape.classes, err);
    if (r == 0 && mkdir(o->output_dir, 0755) < 0 && errno != EEXIST)
        r = ava_err(err, AVA_EIO, "cannot create %s: %s", o->output_dir, strerror(errno));
    if (r == 0) {
        char desc[160];
        tr_shape_describe(&run.shape, desc, sizeof desc);
        printf("network %s, %zu parameters; batch %d, lr %g (%s), momentum %g, wd %g, "
               "%d epochs, seed %llu\n",
               desc, tr_shape_nparams(&run.shape), o->hp.batch, o->hp.lr,
               o->hp.schedule == TR_SCHED_COSINE ? "cosine"
               : o->hp.schedule == TR_SCHED_STEP ? "step"
                                                 : "constant",
               o->hp.momentum, o->hp.wd, o->hp.epochs, (unsigned long long)o->hp.seed);
        r = tr_train(&run, NULL, NULL, err);
    }
    tr_set_free(&tset);
    tr_set_free(&vset);
    return r;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines reach the training log at once */
    struct tr_opts o;
    char err[AVA_ERRLEN];
    if (tr_opts_parse(argc, argv, &o, err) < 0) {
        fprintf(stderr, "ava-train-c: %s\n", err);
        return 2;
    }
    if (o.help) {
        tr_opts_usage(stdout);
        return 0;
    }
    int threads = pick_threads(&o);
    /* each of our threads runs the network on its share of a batch and calls OpenBLAS
     * single-threaded: for these small GEMMs that beats OpenBLAS's own threading */
    openblas_set_num_threads(1);
    printf("ava-train-c: %d thread%s (OpenBLAS %s)\n", threads, threads == 1 ? "" : "s",
           openblas_get_config());
    int r = o.infer_model ? infer(&o, threads, err) : train(&o, threads, err);
    if (r < 0) {
        fprintf(stderr, "ava-train-c: %s\n", err);
        return 1;
    }
    return 0;
}
