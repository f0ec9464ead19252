/* opts.c: parsing the example trainer's options, with the defaults documented in
 * docs/examples.md, and reading the run's config files (trainingspec, trainsetinfo). */
#include "opts.h"

#include "../../../../src/common/err.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: ava-train-c [options]             train on $AVA_TRAIN_DIR, validate on $AVA_VAL_DIR\n"
    "       ava-train-c --infer MODEL SET_DIR  print a saved model's accuracy on a set\n"
    "\n"
    "A small CNN (conv 5x5 - maxpool 2 - ReLU, twice, then fully connected layers) trained\n"
    "with SGD on a RecordIO or LMDB formatted set. Options (defaults in brackets):\n"
    "  --epochs N         epochs to train [5]\n"
    "  --batch N          mini-batch size [64]\n"
    "  --lr X             base learning rate, for batches of 64: scale it with --batch [0.05]\n"
    "  --momentum X       SGD momentum [0.9]\n"
    "  --wd X             weight decay (L2, weights only) [0.0005]\n"
    "  --schedule S       cosine (to 0 at the last batch), step or constant [cosine]\n"
    "  --lr-steps E,E..   step schedule: epochs after which lr *= lr-factor [epochs/2, "
    "3*epochs/4]\n"
    "  --lr-factor X      step schedule factor [0.1]\n"
    "  --warmup N         batches of linear learning-rate warm-up [0]\n"
    "  --seed N           seed of the initialisation and of the shuffles [1]\n"
    "  --conv1 N          filters of the first convolution [16]\n"
    "  --conv2 N          filters of the second convolution [32]\n"
    "  --hidden N         units of the hidden fully connected layer, 0 for none [128]\n"
    "  --threads N        threads [the training's CPUs, else every online CPU]\n"
    "  --report-every N   batches between train metrics and progress lines [50]\n"
    "  --keep N           checkpoints kept in the output dir, 0 = all [2]\n"
    "  --train-limit N    use only the first N train samples, 0 = all [0]\n"
    "  --val-limit N      use only the first N validation samples, 0 = all [0]\n"
    "  --train DIR        train set [$AVA_TRAIN_DIR]\n"
    "  --val DIR          validation set [$AVA_VAL_DIR]\n"
    "  --no-val           do not validate\n"
    "  --output DIR       where checkpoints and model.bin go [$AVA_OUTPUT_DIR, else .]\n"
    "  --resume FILE      continue from this checkpoint [$AVA_RESUME_FROM]\n"
    "  --no-resume        start over even when AVA_RESUME_FROM is set\n"
    "  --infer MODEL SET  evaluate model.bin or a checkpoint on a formatted set, then exit\n"
    "  -h, --help         this text\n";

void tr_opts_usage(FILE *f) {
    fputs(USAGE, f);
}

/* An environment variable, or NULL when unset or empty. */
static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Parses an integer option value in [lo, hi]. */
static int parse_int(const char *opt, const char *s, long lo, long hi, int *out, char *err) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return ava_err(err, AVA_EINVALID, "--%s wants an integer from %ld to %ld, not '%s'", opt,
                       lo, hi, s);
    *out = (int)v;
    return 0;
}

/* Parses a finite number option value in [lo, hi]. */
static int parse_float(const char *opt, const char *s, double lo, double hi, float *out,
                       char *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return ava_err(err, AVA_EINVALID, "--%s wants a number from %g to %g, not '%s'", opt, lo,
                       hi, s);
    *out = (float)v;
    return 0;
}

/* Parses --lr-steps: comma-separated epochs, increasing. */
static int parse_steps(const char *s, struct tr_hparams *hp, char *err) {
    hp->n_lr_steps = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int e = 0, r = parse_int("lr-steps", t, 1, 1000000, &e, err);
        if (r < 0)
            return r;
        if (hp->n_lr_steps == TR_MAX_LR_STEPS ||
            (hp->n_lr_steps && e <= hp->lr_steps[hp->n_lr_steps - 1]))
            return ava_err(err, AVA_EINVALID,
                           "--lr-steps wants at most %d increasing epochs, not '%s'",
                           TR_MAX_LR_STEPS, s);
        hp->lr_steps[hp->n_lr_steps++] = e;
    }
    return 0;
}

/* Parses --schedule. */
static int parse_schedule(const char *s, int *out, char *err) {
    static const char *names[] = {"cosine", "step", "constant"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    return ava_err(err, AVA_EINVALID, "--schedule wants cosine, step or constant, not '%s'", s);
}

enum {
    O_EPOCHS = 256,
    O_BATCH,
    O_LR,
    O_MOMENTUM,
    O_WD,
    O_SCHEDULE,
    O_LR_STEPS,
    O_LR_FACTOR,
    O_WARMUP,
    O_SEED,
    O_CONV1,
    O_CONV2,
    O_HIDDEN,
    O_THREADS,
    O_REPORT,
    O_KEEP,
    O_TRAIN_LIMIT,
    O_VAL_LIMIT,
    O_TRAIN,
    O_VAL,
    O_NO_VAL,
    O_OUTPUT,
    O_RESUME,
    O_NO_RESUME,
    O_INFER
};

static const struct option LONGOPTS[] = {{"epochs", 1, 0, O_EPOCHS},
                                         {"batch", 1, 0, O_BATCH},
                                         {"lr", 1, 0, O_LR},
                                         {"momentum", 1, 0, O_MOMENTUM},
                                         {"wd", 1, 0, O_WD},
                                         {"schedule", 1, 0, O_SCHEDULE},
                                         {"lr-steps", 1, 0, O_LR_STEPS},
                                         {"lr-factor", 1, 0, O_LR_FACTOR},
                                         {"warmup", 1, 0, O_WARMUP},
                                         {"seed", 1, 0, O_SEED},
                                         {"conv1", 1, 0, O_CONV1},
                                         {"conv2", 1, 0, O_CONV2},
                                         {"hidden", 1, 0, O_HIDDEN},
                                         {"threads", 1, 0, O_THREADS},
                                         {"report-every", 1, 0, O_REPORT},
                                         {"keep", 1, 0, O_KEEP},
                                         {"train-limit", 1, 0, O_TRAIN_LIMIT},
                                         {"val-limit", 1, 0, O_VAL_LIMIT},
                                         {"train", 1, 0, O_TRAIN},
                                         {"val", 1, 0, O_VAL},
                                         {"no-val", 0, 0, O_NO_VAL},
                                         {"output", 1, 0, O_OUTPUT},
                                         {"resume", 1, 0, O_RESUME},
                                         {"no-resume", 0, 0, O_NO_RESUME},
                                         {"infer", 1, 0, O_INFER},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};

/* Applies one numeric option. */
static int apply_number(int c, const char *v, struct tr_opts *o, char *err) {
    struct tr_hparams *hp = &o->hp;
    int seed = 0;
    switch (c) {
    case O_EPOCHS:
        return parse_int("epochs", v, 1, 100000, &hp->epochs, err);
    case O_BATCH:
        return parse_int("batch", v, 1, 65536, &hp->batch, err);
    case O_LR:
        return parse_float("lr", v, 0, 100, &hp->lr, err);
    case O_MOMENTUM:
        return parse_float("momentum", v, 0, 0.999999, &hp->momentum, err);
    case O_WD:
        return parse_float("wd", v, 0, 1, &hp->wd, err);
    case O_LR_FACTOR:
        return parse_float("lr-factor", v, 0, 1, &hp->lr_factor, err);
    case O_WARMUP:
        return parse_int("warmup", v, 0, INT_MAX, &hp->warmup, err);
    case O_SEED:
        if (parse_int("seed", v, 0, INT_MAX, &seed, err) < 0)
            return AVA_EINVALID;
        hp->seed = (uint64_t)seed;
        return 0;
    case O_CONV1:
        return parse_int("conv1", v, 1, 4096, &o->conv1, err);
    case O_CONV2:
        return parse_int("conv2", v, 1, 4096, &o->conv2, err);
    case O_HIDDEN:
        return parse_int("hidden", v, 0, 4096, &o->hidden, err);
    case O_THREADS:
        return parse_int("threads", v, 1, 1024, &o->threads, err);
    case O_REPORT:
        return parse_int("report-every", v, 1, INT_MAX, &o->report_every, err);
    case O_KEEP:
        return parse_int("keep", v, 0, INT_MAX, &o->keep, err);
    case O_TRAIN_LIMIT:
        return parse_int("train-limit", v, 0, INT_MAX, &o->train_limit, err);
    case O_VAL_LIMIT:
        return parse_int("val-limit", v, 0, INT_MAX, &o->val_limit, err);
    }
    return 1;
}

/* Applies one option; 1 when it is not a numeric or path option. */
static int apply(int c, const char *v, struct tr_opts *o, char *err) {
    switch (c) {
    case O_SCHEDULE:
        return parse_schedule(v, &o->hp.schedule, err);
    case O_LR_STEPS:
        return parse_steps(v, &o->hp, err);
    case O_TRAIN:
        o->train_dir = v;
        return 0;
    case O_VAL:
        o->val_dir = v;
        return 0;
    case O_NO_VAL:
        o->no_val = true;
        return 0;
    case O_OUTPUT:
        o->output_dir = v;
        return 0;
    case O_RESUME:
        o->resume = v;
        return 0;
    case O_NO_RESUME:
        o->no_resume = true;
        return 0;
    case O_INFER:
        o->infer_model = v;
        return 0;
    case 'h':
        o->help = true;
        return 0;
    }
    int r = apply_number(c, v, o, err);
    return r == 1 ? ava_err(err, AVA_EINVALID, "unknown option (see --help)") : r;
}

/* The defaults, with the run's environment. */
static void defaults(struct tr_opts *o) {
    memset(o, 0, sizeof *o);
    o->hp = (struct tr_hparams){.epochs = 5,
                                .batch = 64,
                                .lr = 0.05f,
                                .momentum = 0.9f,
                                .wd = 5e-4f,
                                .schedule = TR_SCHED_COSINE,
                                .lr_factor = 0.1f,
                                .seed = 1};
    o->conv1 = 16, o->conv2 = 32, o->hidden = 128, o->report_every = 50, o->keep = 2;
    o->train_dir = env("AVA_TRAIN_DIR"), o->val_dir = env("AVA_VAL_DIR");
    o->output_dir = env("AVA_OUTPUT_DIR") ? env("AVA_OUTPUT_DIR") : ".";
    o->resume = env("AVA_RESUME_FROM"), o->config_dir = env("AVA_CONFIG_DIR");
}

int tr_opts_parse(int argc, char **argv, struct tr_opts *o, char *err) {
    defaults(o);
    optind = 1;
    opterr = 0;
    int c, r;
    while ((c = getopt_long(argc, argv, ":h", LONGOPTS, NULL)) != -1) {
        if (c == '?' || c == ':')
            return ava_err(err, AVA_EINVALID, "%s: %s (see --help)", argv[optind - 1],
                           c == '?' ? "unknown option" : "missing value");
        if ((r = apply(c, optarg, o, err)) < 0)
            return r;
    }
    if (o->infer_model) {
        if (optind != argc - 1)
            return ava_err(err, AVA_EINVALID, "--infer wants MODEL SET_DIR");
        o->infer_set = argv[optind];
    } else if (optind < argc) {
        return ava_err(err, AVA_EINVALID, "unexpected argument '%s' (see --help)", argv[optind]);
    }
    if (o->hp.schedule == TR_SCHED_STEP && o->hp.n_lr_steps == 0) {
        int a = o->hp.epochs / 2, b = 3 * o->hp.epochs / 4;
        if (a >= 1)
            o->hp.lr_steps[o->hp.n_lr_steps++] = a;
        if (b > a)
            o->hp.lr_steps[o->hp.n_lr_steps++] = b;
    }
    if (o->no_resume)
        o->resume = NULL;
    return 0;
}

/* Parses config_dir/name as JSON; NULL when absent or invalid. */
static json_t *load_config(const char *config_dir, const char *name) {
    if (!config_dir)
        return NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", config_dir, name);
    return json_load_file(path, 0, NULL);
}

int tr_spec_cpus(const char *config_dir) {
    json_t *spec = load_config(config_dir, "trainingspec");
    json_t *cpus = json_object_get(json_object_get(spec, "resources"), "cpus");
    int n =
        json_is_integer(cpus) && json_integer_value(cpus) > 0 && json_integer_value(cpus) <= 1024
            ? (int)json_integer_value(cpus)
            : 0;
    json_decref(spec);
    return n;
}

int tr_setinfo_classes(const char *config_dir, const char *name) {
    json_t *info = load_config(config_dir, name);
    json_t *classes = json_object_get(info, "classes");
    int n = json_is_array(classes) ? (int)json_array_size(classes) : 0;
    json_decref(info);
    return n;
}
