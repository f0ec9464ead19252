/* datasets.c: the dataset registry on avad's loop (see datasets.h): jobs spawned through
 * exec/proc.h, outcomes read from the job dir and stored, public datasets registered. */
#include "datasets.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/log.h"
#include "../common/path.h"
#include "../common/strutil.h"
#include "../common/timeutil.h"
#include "../exec/proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CIFAR10_HINT                                                                               \
    "not imported yet: an admin runs 'ava dataset fetch cifar10' (the server needs internet) "     \
    "or 'ava dataset import cifar10 --from cifar10:/path/to/cifar-10-binary.tar.gz'"

/* One running job being watched. */
struct job_watch {
    struct ava_datasets *ds;
    int64_t job_id;
    struct ava_proc *proc;
    struct job_watch *next;
};

struct ava_datasets {
    struct event_base *base;
    struct ava_store *st;
    char data_dir[AVA_PATH_MAX];
    char job_path[AVA_PATH_MAX];
    char fashion_mnist[AVA_PATH_MAX];
    char cifar10_url[1024];
    char cifar10_md5[33];
    struct job_watch *watches;
};

int ava_datasets_new(struct event_base *base, struct ava_store *st,
                     const struct ava_datasets_config *cfg, struct ava_datasets **out, char *err) {
    if (!cfg->data_dir || cfg->data_dir[0] != '/')
        return ava_err(err, AVA_EINVALID, "the dataset registry needs an absolute data dir");
    struct ava_datasets *ds = ava_xcalloc(1, sizeof *ds);
    ds->base = base;
    ds->st = st;
    snprintf(ds->data_dir, sizeof ds->data_dir, "%s", cfg->data_dir);
    snprintf(ds->job_path, sizeof ds->job_path, "%s", cfg->job_path);
    snprintf(ds->fashion_mnist, sizeof ds->fashion_mnist, "%s",
             cfg->fashion_mnist ? cfg->fashion_mnist : "/usr/share/datasets/fashion-mnist");
    snprintf(ds->cifar10_url, sizeof ds->cifar10_url, "%s",
             cfg->cifar10_url ? cfg->cifar10_url : AVA_CIFAR10_URL);
    snprintf(ds->cifar10_md5, sizeof ds->cifar10_md5, "%s",
             cfg->cifar10_md5 ? cfg->cifar10_md5 : AVA_CIFAR10_MD5);
    *out = ds;
    return 0;
}

void ava_datasets_free(struct ava_datasets *ds) {
    if (!ds)
        return;
    while (ds->watches) {
        struct job_watch *w = ds->watches;
        ds->watches = w->next;
        ava_proc_free(w->proc);
        free(w);
    }
    free(ds);
}

int ava_datasets_dir(const struct ava_datasets *ds, const struct ava_dataset *d, char *out,
                     size_t outlen, char *err) {
    char leaf[96];
    snprintf(leaf, sizeof leaf, "%lld-%s", (long long)d->id, d->name);
    return ava_path_join(out, outlen, err, ds->data_dir, "datasets", leaf, NULL);
}

int ava_datasets_set_dir(const struct ava_datasets *ds, const struct ava_dataset *d,
                         const char *format, int percent, char *out, size_t outlen, char *err) {
    char dir[AVA_PATH_MAX], leaf[64];
    int r = ava_datasets_dir(ds, d, dir, sizeof dir, err);
    snprintf(leaf, sizeof leaf, "%s-%d", format, percent);
    return r < 0 ? r : ava_path_join(out, outlen, err, dir, leaf, NULL);
}

/* The folder of a job. */
static int job_dir(const struct ava_datasets *ds, const struct ava_dataset *d, int64_t job_id,
                   char *out, size_t outlen, char *err) {
    char dir[AVA_PATH_MAX], id[32];
    snprintf(id, sizeof id, "%lld", (long long)job_id);
    int r = ava_datasets_dir(ds, d, dir, sizeof dir, err);
    return r < 0 ? r : ava_path_join(out, outlen, err, dir, "jobs", id, NULL);
}

void ava_datasets_progress(const struct ava_datasets *ds, const struct ava_dataset *d,
                           const struct ava_dataset_job *job, int64_t *done, int64_t *total) {
    char dir[AVA_PATH_MAX];
    *done = *total = 0;
    if (job_dir(ds, d, job->id, dir, sizeof dir, NULL) == 0)
        ava_job_read_progress(dir, done, total);
}

/* Unlinks a watch (its process watch is freed by proc.c after the callback). */
static void watch_unlink(struct ava_datasets *ds, struct job_watch *w) {
    for (struct job_watch **pp = &ds->watches; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    free(w);
}

/* Stores a finished import: the dataset becomes ready with its counts, or failed. */
static void finish_import(struct ava_datasets *ds, struct ava_dataset *d, json_t *res, bool ok,
                          const char *reason) {
    char err[AVA_ERRLEN];
    if (ok) {
        json_t *classes = json_object_get(res, "classes");
        free(d->classes_json);
        d->classes_json = json_dumps(classes ? classes : json_array(), JSON_COMPACT);
        d->samples = json_integer_value(json_object_get(res, "samples"));
        snprintf(d->state, sizeof d->state, "ready");
        d->reason[0] = '\0';
    } else {
        snprintf(d->state, sizeof d->state, "%s", d->group_id == 0 ? "absent" : "failed");
        snprintf(d->reason, sizeof d->reason, "import failed: %s", reason);
    }
    if (ava_store_dataset_update(ds->st, d, err) < 0)
        ava_log_error("dataset %s: %s", d->name, err);
}

/* Stores a finished format job's sets (published by the worker) in one transaction. */
static void finish_format(struct ava_datasets *ds, const struct ava_dataset *d,
                          const struct ava_dataset_job *job, json_t *res) {
    json_t *sets = json_object_get(res, "sets"), *v;
    json_t *opts = json_loads(job->options, 0, NULL);
    const char *format = json_string_value(json_object_get(opts, "format"));
    char err[AVA_ERRLEN];
    size_t i;
    int r = ava_store_begin(ds->st, err);
    json_array_foreach(sets, i, v) {
        struct ava_dataset_set set = {.dataset_id = d->id};
        snprintf(set.format, sizeof set.format, "%s", format ? format : "");
        set.percent = (int)json_integer_value(json_object_get(v, "percent"));
        set.complement = json_array_size(sets) == 2 ? 100 - set.percent : 0;
        set.samples = json_integer_value(json_object_get(v, "samples"));
        set.bytes = json_integer_value(json_object_get(v, "bytes"));
        snprintf(set.options, sizeof set.options, "%s", job->options);
        if (r == 0)
            r = ava_store_set_insert(ds->st, &set, err);
    }
    r = r == 0 ? ava_store_commit(ds->st, err) : (ava_store_rollback(ds->st), r);
    if (r < 0)
        ava_log_error("dataset %s: cannot record its sets: %s", d->name, err);
    json_decref(opts);
}

/* A job's process has ended: read its result.json and store the outcome. */
static void finish_job(struct ava_datasets *ds, int64_t job_id) {
    struct ava_dataset_job job;
    struct ava_dataset d = {0};
    char err[AVA_ERRLEN], dir[AVA_PATH_MAX], path[AVA_PATH_MAX];
    if (ava_store_job_get(ds->st, job_id, &job, err) < 0 ||
        ava_store_dataset_get(ds->st, job.dataset_id, &d, err) < 0) {
        ava_log_error("dataset job %lld: %s", (long long)job_id, err);
        return;
    }
    json_t *res = NULL;
    json_error_t je;
    if (job_dir(ds, &d, job_id, dir, sizeof dir, err) == 0 &&
        ava_path_join(path, sizeof path, err, dir, AVA_JOB_RESULT, NULL) == 0)
        res = json_load_file(path, 0, &je);
    const char *state = json_string_value(json_object_get(res, "state"));
    const char *reason = json_string_value(json_object_get(res, "reason"));
    if (!state || (strcmp(state, "succeeded") && strcmp(state, "cancelled")))
        state = "failed";
    if (!res)
        reason = "lost: the job ended without a result";
    bool ok = !strcmp(state, "succeeded");
    if (!strcmp(job.kind, "import"))
        finish_import(ds, &d, res, ok, reason ? reason : "");
    else if (ok)
        finish_format(ds, &d, &job, res);
    snprintf(job.state, sizeof job.state, "%s", state);
    snprintf(job.reason, sizeof job.reason, "%s", ok ? "" : reason ? reason : "");
    job.ended_at = ava_now_ms();
    if (ava_store_job_update(ds->st, &job, err) < 0)
        ava_log_error("dataset job %lld: %s", (long long)job_id, err);
    ava_log_info("dataset %s: %s job %lld %s%s%s", d.name, job.kind, (long long)job_id, state,
                 ok ? "" : ": ", ok ? "" : job.reason);
    json_decref(res);
    ava_dataset_free(&d);
}

/* proc.h callback: the worker has exited. */
static void on_job_exit(void *arg) {
    struct job_watch *w = arg;
    struct ava_datasets *ds = w->ds;
    int64_t id = w->job_id;
    watch_unlink(ds, w);
    finish_job(ds, id);
}

/* A watch record for job_id, linked in. */
static struct job_watch *watch_new(struct ava_datasets *ds, int64_t job_id) {
    struct job_watch *w = ava_xcalloc(1, sizeof *w);
    w->ds = ds;
    w->job_id = job_id;
    w->next = ds->watches;
    ds->watches = w;
    return w;
}

/* Records a job for d, writes its job dir and starts the worker. On a failure to start, the
 * job is stored failed (and an import's dataset too) and the error returned. */
static int start_job(struct ava_datasets *ds, struct ava_dataset *d, struct ava_job_spec *spec,
                     struct ava_dataset_job *job, char *err) {
    char dir[AVA_PATH_MAX], path[AVA_PATH_MAX], log[AVA_PATH_MAX];
    memset(job, 0, sizeof *job);
    job->dataset_id = d->id;
    snprintf(job->kind, sizeof job->kind, "%s", spec->kind);
    snprintf(job->state, sizeof job->state, "running");
    int r = ava_datasets_dir(ds, d, spec->dataset_dir, sizeof spec->dataset_dir, err);
    json_t *j = ava_job_spec_json(spec);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(job->options, sizeof job->options, "%s", text ? text : "{}");
    if (r == 0)
        r = ava_store_job_insert(ds->st, job, err);
    if (r == 0)
        r = job_dir(ds, d, job->id, dir, sizeof dir, err);
    if (r == 0)
        r = ava_mkdir_p(dir, 0755, err);
    if (r == 0)
        r = ava_path_join(path, sizeof path, err, dir, AVA_JOB_SPEC, NULL);
    if (r == 0)
        r = ava_file_write_atomic(path, text, strlen(text), 0644, err);
    if (r == 0)
        r = ava_path_join(log, sizeof log, err, dir, AVA_JOB_LOG, NULL);
    free(text);
    json_decref(j);
    if (r == 0) {
        struct job_watch *w = watch_new(ds, job->id);
        char *argv[] = {"ava-data-job", dir, NULL};
        r = ava_proc_spawn(ds->base, ds->job_path, argv, log, on_job_exit, w, job->executor_id,
                           &w->proc, err);
        if (r < 0)
            watch_unlink(ds, w);
    }
    if (job->id && r < 0) {
        snprintf(job->state, sizeof job->state, "failed");
        snprintf(job->reason, sizeof job->reason, "start error: %s", err);
        job->ended_at = ava_now_ms();
    }
    if (job->id)
        ava_store_job_update(ds->st, job, NULL);
    return r;
}

/* The running job of a dataset, if any. */
static bool running_job(struct ava_datasets *ds, int64_t dataset_id, struct ava_dataset_job *out) {
    struct ava_dataset_job *jobs;
    size_t n;
    bool found = false;
    if (ava_store_job_list(ds->st, dataset_id, &jobs, &n, NULL) < 0)
        return false;
    for (size_t i = 0; i < n && !found; i++)
        if (!strcmp(jobs[i].state, "running")) {
            *out = jobs[i];
            found = true;
        }
    free(jobs);
    return found;
}

/* A first check of a source spec, so that a typo is refused at once rather than by the
 * import job (which checks everything else). */
static bool source_kind_known(const char *source, bool allow_url) {
    static const char *const kinds[] = {
        "idx:", "cifar10:", "imagefolder:", "lst:", "jsonlist:", "url:"};
    if (!allow_url && ava_startswith(source, "url:"))
        return false;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (ava_startswith(source, kinds[i]) && source[strlen(kinds[i])])
            return true;
    return false;
}

/* Import, with downloads (url:) allowed only when the platform itself asks (fetch). */
static int start_import(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                        const char *source, const char *description, bool allow_url,
                        struct ava_dataset_job *job, char *err) {
    struct ava_dataset d;
    if (!ava_name_valid(name))
        return ava_err(err, AVA_EINVALID,
                       "bad dataset name '%s': use [A-Za-z0-9][A-Za-z0-9._-]{0,63}", name);
    if (!source || !*source || strlen(source) >= sizeof d.source)
        return ava_err(err, AVA_EINVALID, "a source is required, e.g. imagefolder:/data/flowers");
    if (!source_kind_known(source, allow_url))
        return ava_err(err, AVA_EINVALID,
                       "source '%s' must start with idx:, cifar10:, imagefolder:, lst: or "
                       "jsonlist:",
                       source);
    int r = ava_store_dataset_find(ds->st, name, u->group_id, &d, NULL);
    if (r == 0 && !(d.group_id == 0 && u->admin && strcmp(d.state, "absent") == 0)) {
        r = ava_err(err, AVA_EEXISTS, "dataset '%s' already exists%s", name,
                    d.group_id == 0 && strcmp(d.state, "absent") == 0
                        ? " (public: only an admin may import it)"
                        : "");
        ava_dataset_free(&d);
        return r;
    }
    if (r < 0) { /* a new private dataset of the user's group */
        memset(&d, 0, sizeof d);
        snprintf(d.name, sizeof d.name, "%s", name);
        d.group_id = u->group_id;
        d.owner_id = u->id;
        snprintf(d.description, sizeof d.description, "%s", description ? description : "");
    }
    snprintf(d.source, sizeof d.source, "%s", source);
    snprintf(d.state, sizeof d.state, "importing");
    d.reason[0] = '\0';
    r = d.id ? ava_store_dataset_update(ds->st, &d, err)
             : ava_store_dataset_insert(ds->st, &d, err);
    struct ava_job_spec spec = {.kind = "import", .percent = 100, .quality = 95};
    snprintf(spec.source, sizeof spec.source, "%s", source);
    if (d.group_id == 0 && !strcmp(d.name, "cifar10")) /* the public copy must be the real one */
        snprintf(spec.md5, sizeof spec.md5, "%s", ds->cifar10_md5);
    if (r == 0 && (r = start_job(ds, &d, &spec, job, err)) < 0)
        finish_import(ds, &d, NULL, false, err);
    ava_dataset_free(&d);
    return r;
}

int ava_datasets_import(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                        const char *source, const char *description, struct ava_dataset_job *job,
                        char *err) {
    return start_import(ds, u, name, source, description, false, job, err);
}

int ava_datasets_fetch(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                       struct ava_dataset_job *job, char *err) {
    char source[1100];
    if (strcmp(name, "cifar10") != 0)
        return ava_err(err, AVA_EINVALID,
                       "only cifar10 can be fetched; import '%s' with --from instead", name);
    if (!u->admin)
        return ava_err(err, AVA_EFORBIDDEN, "only an admin may fetch a public dataset");
    snprintf(source, sizeof source, "url:cifar10:%s", ds->cifar10_url);
    return start_import(ds, u, name, source, NULL, true, job, err);
}

int ava_datasets_format(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                        struct ava_job_spec *spec, struct ava_dataset_job *job, char *err) {
    struct ava_dataset d;
    struct ava_dataset_set set;
    struct ava_dataset_job other;
    int r = ava_store_dataset_find(ds->st, name, u->group_id, &d, err);
    if (r < 0)
        return r;
    const char *fmt = ava_set_format_str(spec->format);
    if (strcmp(d.state, "ready") != 0)
        r = ava_err(err, AVA_ECONFLICT, "dataset '%s' is %s, not ready%s%s", name, d.state,
                    d.reason[0] ? ": " : "", d.reason);
    else if (running_job(ds, d.id, &other))
        r = ava_err(err, AVA_ECONFLICT, "dataset '%s' has a %s job running (job %lld)", name,
                    other.kind, (long long)other.id);
    else if (ava_store_set_find(ds->st, d.id, fmt, spec->percent, &set, NULL) == 0 ||
             (spec->percent < 100 &&
              ava_store_set_find(ds->st, d.id, fmt, 100 - spec->percent, &set, NULL) == 0))
        r = ava_err(err, AVA_EEXISTS, "%s/%s/%d already exists: remove it first", name, fmt,
                    set.percent);
    if (r == 0) {
        snprintf(spec->kind, sizeof spec->kind, "format");
        r = start_job(ds, &d, spec, job, err);
    }
    ava_dataset_free(&d);
    return r;
}

int ava_datasets_cancel(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                        char *err) {
    struct ava_dataset d;
    struct ava_dataset_job job;
    int r = ava_store_dataset_find(ds->st, name, u->group_id, &d, err);
    if (r < 0)
        return r;
    bool running = running_job(ds, d.id, &job);
    ava_dataset_free(&d);
    if (!running)
        return ava_err(err, AVA_ECONFLICT, "dataset '%s' has no job running", name);
    for (struct job_watch *w = ds->watches; w; w = w->next)
        if (w->job_id == job.id)
            return ava_proc_signal(w->proc, SIGTERM, err);
    return ava_err(err, AVA_ECONFLICT, "job %lld is not watched by this avad", (long long)job.id);
}

int ava_datasets_remove(struct ava_datasets *ds, const struct ava_user *u, const char *name,
                        const char *format, int percent, char *err) {
    struct ava_dataset d;
    struct ava_dataset_set set;
    struct ava_dataset_job job;
    char user[160], dir[AVA_PATH_MAX];
    int r = ava_store_dataset_find(ds->st, name, u->group_id, &d, err);
    if (r < 0)
        return r;
    if (d.group_id == 0 && !u->admin)
        r = ava_err(err, AVA_EFORBIDDEN, "only an admin may remove public datasets and sets");
    else if (!format && running_job(ds, d.id, &job))
        r = ava_err(err, AVA_ECONFLICT, "dataset '%s' has a job running: cancel it first", name);
    else if (format && ava_store_set_find(ds->st, d.id, format, percent, &set, err) < 0)
        r = ava_err(err, AVA_ENOTFOUND, "%s/%s/%d not found", name, format, percent);
    else if ((r = ava_store_dataset_in_use(ds->st, name, format, percent, user, sizeof user, err)) >
             0)
        r = ava_err(err, AVA_ECONFLICT, "%s is used by training %s, which is active", name, user);
    if (r == 0 && format) {
        r = ava_datasets_set_dir(ds, &d, format, percent, dir, sizeof dir, err);
        if (r == 0)
            r = ava_store_set_delete(ds->st, set.id, err);
    } else if (r == 0) {
        r = ava_datasets_dir(ds, &d, dir, sizeof dir, err);
        if (r == 0)
            r = ava_store_dataset_delete(ds->st, d.id, err);
    }
    if (r == 0)
        ava_rm_rf(dir, NULL); /* the records are gone: the files follow */
    ava_dataset_free(&d);
    return r;
}

int ava_datasets_resolve(const struct ava_datasets *ds, const char *ref, int64_t group_id,
                         struct ava_dataset *d, struct ava_dataset_set *set, char *err) {
    char name[65], format[16];
    int percent, used = 0;
    if (!ref ||
        sscanf(ref, "%64[A-Za-z0-9._-]/%15[a-z]/%d%n", name, format, &percent, &used) != 3 ||
        ref[used] != '\0')
        return ava_err(err, AVA_EINVALID, "'%s' is not DATASET/FORMAT/PERCENT", ref ? ref : "");
    int r = ava_store_dataset_find(ds->st, name, group_id, d, err);
    if (r < 0)
        return r;
    r = ava_store_set_find(ds->st, d->id, format, percent, set, NULL);
    if (r < 0) {
        ava_dataset_free(d);
        return ava_err(err, AVA_ENOTFOUND,
                       "set %s not found (see 'ava dataset show %s'; format it with 'ava dataset "
                       "format %s --format %s --split %d')",
                       ref, name, name, format, percent);
    }
    return 0;
}

/* Registers a public dataset by name unless it exists; returns it (or -1 when it existed). */
static int register_public(struct ava_datasets *ds, const char *name, const char *desc,
                           const char *state, const char *reason, struct ava_dataset *d,
                           char *err) {
    if (ava_store_dataset_find(ds->st, name, 0, d, NULL) == 0)
        return 1;
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->description, sizeof d->description, "%s", desc);
    snprintf(d->state, sizeof d->state, "%s", state);
    snprintf(d->reason, sizeof d->reason, "%s", reason);
    return ava_store_dataset_insert(ds->st, d, err);
}

/* fashion-mnist from Debian's dataset-fashion-mnist files (imported in the background), and
 * cifar10, listed until an admin imports it from a local copy. */
static int register_public_datasets(struct ava_datasets *ds, char *err) {
    struct ava_dataset d;
    struct ava_dataset_job job;
    char tri[AVA_PATH_MAX], trl[AVA_PATH_MAX], tei[AVA_PATH_MAX], tel[AVA_PATH_MAX];
    int r = register_public(ds, "cifar10", "CIFAR-10: 60,000 32x32 colour images in 10 classes",
                            "absent", CIFAR10_HINT, &d, err);
    if (r < 0)
        return r;
    ava_dataset_free(&d);
    const char *dir = ds->fashion_mnist;
    bool have =
        ava_path_join(tri, sizeof tri, NULL, dir, "train-images-idx3-ubyte.gz", NULL) == 0 &&
        ava_path_join(trl, sizeof trl, NULL, dir, "train-labels-idx1-ubyte.gz", NULL) == 0 &&
        ava_path_join(tei, sizeof tei, NULL, dir, "t10k-images-idx3-ubyte.gz", NULL) == 0 &&
        ava_path_join(tel, sizeof tel, NULL, dir, "t10k-labels-idx1-ubyte.gz", NULL) == 0 &&
        access(tri, R_OK) == 0 && access(trl, R_OK) == 0 && access(tei, R_OK) == 0 &&
        access(tel, R_OK) == 0;
    r = register_public(
        ds, "fashion-mnist", "Fashion-MNIST: 70,000 28x28 grey images of clothes in 10 classes",
        "absent", "not installed: install Debian's dataset-fashion-mnist and restart avad", &d,
        err);
    if (r < 0)
        return r;
    if (have && (!strcmp(d.state, "absent") || !strcmp(d.state, "failed"))) {
        struct ava_user platform = {.admin = true};
        char source[4 * AVA_PATH_MAX + 16];
        snprintf(source, sizeof source, "idx:%s,%s+%s,%s", tri, trl, tei, tel);
        r = start_import(ds, &platform, "fashion-mnist", source, NULL, false, &job, err);
    }
    ava_dataset_free(&d);
    return r;
}

int ava_datasets_restore(struct ava_datasets *ds, char *err) {
    struct ava_dataset_job *jobs;
    size_t n;
    int r = ava_store_job_list(ds->st, 0, &jobs, &n, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        struct job_watch *w = watch_new(ds, jobs[i].id);
        if (ava_proc_attach(ds->base, jobs[i].executor_id, on_job_exit, w, &w->proc, NULL) < 0) {
            watch_unlink(ds, w);
            finish_job(ds, jobs[i].id); /* it ended while avad was down */
        }
    }
    free(jobs);
    return register_public_datasets(ds, err);
}

int ava_datasets_set_info(void *ctx, const char *ref, int64_t group_id, char *dir, size_t dirlen,
                          char **info, char *err) {
    struct ava_datasets *ds = ctx;
    struct ava_dataset d;
    struct ava_dataset_set set;
    int r = ava_datasets_resolve(ds, ref, group_id, &d, &set, err);
    if (r < 0)
        return r;
    r = ava_datasets_set_dir(ds, &d, set.format, set.percent, dir, dirlen, err);
    json_t *classes = json_loads(d.classes_json ? d.classes_json : "[]", 0, NULL), *v;
    json_t *names = json_array(), *opts = ava_job_user_options(set.options);
    size_t i;
    json_array_foreach(classes, i, v) json_array_append(names, json_object_get(v, "name"));
    json_t *j = json_pack("{s:s, s:s, s:i, s:o, s:s, s:I, s:{s:I}, s:o, s:o}", "dataset", d.name,
                          "format", set.format, "percent", set.percent, "complement",
                          set.complement ? json_integer(set.complement) : json_null(), "path", dir,
                          "samples", (json_int_t)set.samples, "stats", "numOfSamples",
                          (json_int_t)set.samples, "classes", names, "options", opts);
    *info = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    json_decref(classes);
    ava_dataset_free(&d);
    return r < 0 ? r : *info ? 0 : ava_err(err, AVA_EINTERNAL, "cannot describe set %s", ref);
}
