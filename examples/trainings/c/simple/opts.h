/* opts.h: the example trainer's command line (the arguments after `--` in `ava train
 * create`) and what it reads from the run's environment and config folder. */
#ifndef AVA_TRAINER_OPTS_H
#define AVA_TRAINER_OPTS_H

#include "train.h"

#include <stdbool.h>
#include <stdio.h>

struct tr_opts {
    struct tr_hparams hp;
    int conv1, conv2, hidden;
    int threads; /* 0: the training's CPUs (trainingspec), else the online CPUs */
    int report_every, keep;
    int train_limit, val_limit; /* 0: every sample */
    /* from the environment unless given: AVA_TRAIN_DIR, AVA_VAL_DIR, AVA_OUTPUT_DIR (else
     * "."), AVA_RESUME_FROM, AVA_CONFIG_DIR */
    const char *train_dir, *val_dir, *output_dir, *resume, *config_dir;
    bool no_val, no_resume, help;
    const char *infer_model, *infer_set; /* --infer MODEL SET */
};

/* Fills o with the defaults and the environment, then parses argv. Returns 0 or AVA_EINVALID
 * with a message naming the option. */
int tr_opts_parse(int argc, char **argv, struct tr_opts *o, char *err);
/* Prints the usage with every option and its default. */
void tr_opts_usage(FILE *f);

/* "resources": {"cpus": N} of config_dir/trainingspec, or 0 when absent or unreadable. */
int tr_spec_cpus(const char *config_dir);
/* The length of the "classes" array of config_dir/name (trainsetinfo), or 0 when the file or
 * the array is absent. */
int tr_setinfo_classes(const char *config_dir, const char *name);

#endif
