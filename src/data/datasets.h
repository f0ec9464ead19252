/* datasets.h: the dataset registry as avad runs it: import and format jobs started as
 * ava-data-job processes (job.h is their contract), their outcome stored when they end,
 * public datasets registered at start, and where datasets and sets live on disk.
 *
 * Layout: <data>/datasets/<id>-<name>/ holds pack/ (the imported samples), one folder per
 * formatted set (<format>-<percent>/), and jobs/<job id>/. */
#ifndef AVA_DATA_DATASETS_H
#define AVA_DATA_DATASETS_H

#include "job.h"

#include "../store/store.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ava_datasets;

struct ava_datasets_config {
    const char *data_dir;      /* absolute */
    const char *job_path;      /* the ava-data-job binary */
    const char *fashion_mnist; /* folder of Debian's dataset-fashion-mnist files */
    const char *cifar10_url;   /* where `fetch` downloads CIFAR-10's binary tarball from */
    const char *cifar10_md5;   /* its published MD5, checked on fetch and on tarball import */
};

#define AVA_CIFAR10_URL "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
#define AVA_CIFAR10_MD5 "c32a1d4ab5d03f1284b67883e8d87530"

/* Creates the registry on base. *out: ava_datasets_free. */
int ava_datasets_new(struct event_base *base, struct ava_store *st,
                     const struct ava_datasets_config *cfg, struct ava_datasets **out, char *err);
/* After a (re)start: watches jobs that still run (or records how they ended), and registers
 * the public datasets (fashion-mnist imported from the Debian files when they are installed,
 * cifar10 listed until someone imports it). */
int ava_datasets_restore(struct ava_datasets *ds, char *err);
/* Stops watching jobs (they go on) and frees the registry. */
void ava_datasets_free(struct ava_datasets *ds);

/* Creates dataset `name` of the user's group (or fills a public one that is absent, admins
 * only) from source and starts its import job. Fills *job. */
int ava_datasets_import(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                        const char *source, const char *description, struct ava_dataset_job *job,
                        char *err);

/* Downloads a public dataset that has an official URL (cifar10) and imports it, checking the
 * published MD5. Admins only. */
int ava_datasets_fetch(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                       struct ava_dataset_job *job, char *err);

/* Starts formatting a ready dataset as spec asks (spec->kind, dataset_dir filled here).
 * AVA_EEXISTS when the set or its complement exists; AVA_ECONFLICT while a job runs. */
int ava_datasets_format(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                        struct ava_job_spec *spec, struct ava_dataset_job *job, char *err);

/* Cancels the running job of a dataset. AVA_ECONFLICT when none runs. */
int ava_datasets_cancel(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                        char *err);

/* Removes a dataset (format NULL) or one of its sets, unless an active training uses it. */
int ava_datasets_remove(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                        const char *format, int percent, char *err);

/* Reads the progress of a running job (0 when none reported yet). */
void ava_datasets_progress(const struct ava_datasets *ds, const struct ava_dataset *d,
                           const struct ava_dataset_job *job, int64_t *done, int64_t *total);

/* The folder of a dataset, and of one of its sets. */
int ava_datasets_dir(const struct ava_datasets *ds, const struct ava_dataset *d, char *out,
                     size_t outlen, char *err);
int ava_datasets_set_dir(const struct ava_datasets *ds, const struct ava_dataset *d,
                         const char *format, int percent, char *out, size_t outlen, char *err);

/* Resolves "DATASET/FORMAT/PERCENT" visible to group_id into its dataset and set. */
int ava_datasets_resolve(const struct ava_datasets *ds, const char *ref, int64_t group_id,
                         struct ava_dataset *d, struct ava_dataset_set *set, char *err);

/* A resolver for the scheduler (ava_sched_set_resolver; ctx is the registry): fills the set's
 * folder and *info, the JSON of config/trainsetinfo: dataset, format, percent, complement,
 * path, stats.numOfSamples, classes (names), options. */
int ava_datasets_set_info(void *ctx, const char *ref, int64_t group_id, char *dir, size_t dirlen,
                          char **info, char *err);

#endif
