/* store.h: the SQLite store: schema and migrations, groups and users, images, trainings,
 * runs and their events. One connection, one writer (avad's event loop).
 *
 * Ownership: structs filled by the store own their heap strings and are released with the
 * matching _free() (which accepts NULL / zeroed structs). Arrays returned through `T **out,
 * size_t *n` belong to the caller and are freed with the matching _list_free(). Times are
 * unix milliseconds, 0 meaning "not reached". */
#ifndef AVA_STORE_STORE_H
#define AVA_STORE_STORE_H

#include "../metrics/point.h"
#include "../sched/state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ava_store;

/* ---- lifecycle ---- */

/* Opens (creating when missing) the database at path, sets WAL mode and applies pending
 * migrations. *out belongs to the caller (ava_store_close). */
int ava_store_open(const char *path, struct ava_store **out, char *err);
void ava_store_close(struct ava_store *st);
/* The schema version after migrations (PRAGMA user_version). */
int ava_store_schema_version(struct ava_store *st);
/* Transactions: begin/commit/rollback (BEGIN IMMEDIATE). Not nestable. */
int ava_store_begin(struct ava_store *st, char *err);
int ava_store_commit(struct ava_store *st, char *err);
void ava_store_rollback(struct ava_store *st);

/* ---- groups and users ---- */

struct ava_user {
    int64_t id;
    char name[65];
    int64_t group_id;
    char group[65];
    bool admin;
    int64_t created_at;
};

/* Creates a group. AVA_EEXISTS when the name is taken. */
int ava_store_group_create(struct ava_store *st, const char *name, int64_t *id, char *err);
/* Finds a group by name. AVA_ENOTFOUND when absent. */
int ava_store_group_find(struct ava_store *st, const char *name, int64_t *id, char *err);
/* Calls fn for each group in name order. */
int ava_store_group_each(struct ava_store *st, void (*fn)(void *, const char *, int64_t), void *ctx,
                         char *err);
/* Creates a user holding the given token hash. AVA_EEXISTS when the name is taken. */
int ava_store_user_create(struct ava_store *st, const char *name, int64_t group_id, bool admin,
                          const char *token_hash, struct ava_user *out, char *err);
/* Finds the user whose token hashes to token_hash. AVA_ENOTFOUND when none. */
int ava_store_user_by_token(struct ava_store *st, const char *token_hash, struct ava_user *out,
                            char *err);
/* Finds a user by name. AVA_ENOTFOUND when none. */
int ava_store_user_find(struct ava_store *st, const char *name, struct ava_user *out, char *err);
/* Lists users of group_id, or all users when group_id is 0. *out: free(). */
int ava_store_user_list(struct ava_store *st, int64_t group_id, struct ava_user **out, size_t *n,
                        char *err);
/* Number of users (0 on a fresh database). */
int64_t ava_store_user_count(struct ava_store *st);

/* ---- images ---- */

struct ava_image {
    int64_t id;
    char name[65], tag[65];
    int64_t group_id;     /* 0 = public */
    int64_t owner_id;     /* 0 = shipped with the install */
    char owner[65];       /* "" for public images */
    char group[65];       /* "" for public images */
    char kind[16];        /* host, rootfs, oci */
    char *description;    /* never NULL once filled */
    char *entry;          /* NULL when the image has no default entry */
    char *env_json;       /* a JSON object of strings, never NULL once filled */
    char *metrics_parser; /* NULL when none */
    bool available;
    char *unavailable_reason; /* NULL when available */
    int64_t created_at;
};
void ava_image_free(struct ava_image *img);
void ava_image_list_free(struct ava_image *imgs, size_t n);

/* Inserts or refreshes a public image (group 0) by name:tag, keeping its id. */
int ava_store_image_upsert_public(struct ava_store *st, const struct ava_image *img, char *err);
/* Inserts a private image of img->group_id owned by img->owner_id. AVA_EEXISTS when the
 * group (or the public set) already has that name:tag. */
int ava_store_image_insert(struct ava_store *st, const struct ava_image *img, int64_t *id,
                           char *err);
/* Finds name:tag among the public images and group_id's private ones (private wins). */
int ava_store_image_find(struct ava_store *st, const char *name, const char *tag, int64_t group_id,
                         struct ava_image *out, char *err);
/* Lists the public images, then group_id's private ones, each by name then tag. */
int ava_store_image_list(struct ava_store *st, int64_t group_id, struct ava_image **out, size_t *n,
                         char *err);

/* ---- trainings ---- */

struct ava_training {
    int64_t id;
    char name[65];
    int64_t user_id, group_id;
    char user[65], group[65];
    char *description;
    char image[132]; /* name:tag */
    char image_kind[16];
    int gpus, cpus;
    int64_t mem_bytes;
    char *entry;
    char *args_json; /* JSON array of strings */
    char *env_json;  /* JSON object of strings */
    char *train_set; /* NULL when none */
    char *val_set;   /* NULL when none */
    int64_t max_runtime_ms;
    int64_t created_at;
    char *metrics_parser;    /* overrides the image's log parser; NULL = the image's */
    char *metric_rules_json; /* JSON array of "NAME=REGEX" strings, never NULL once filled */
};
void ava_training_free(struct ava_training *t);
void ava_training_list_free(struct ava_training *ts, size_t n);

/* Inserts a training (t->id is ignored and set). AVA_EEXISTS when the user has one of that
 * name. */
int ava_store_training_insert(struct ava_store *st, struct ava_training *t, char *err);
/* Finds user_id's training by name. AVA_ENOTFOUND when none. */
int ava_store_training_find(struct ava_store *st, int64_t user_id, const char *name,
                            struct ava_training *out, char *err);
/* Finds a training by id. */
int ava_store_training_get(struct ava_store *st, int64_t id, struct ava_training *out, char *err);
/* Lists group_id's trainings (all groups when 0), oldest first. */
int ava_store_training_list(struct ava_store *st, int64_t group_id, struct ava_training **out,
                            size_t *n, char *err);
/* Deletes a training with its runs and events. */
int ava_store_training_delete(struct ava_store *st, int64_t id, char *err);
/* Number of trainings stored. */
int64_t ava_store_training_count(struct ava_store *st);

/* ---- runs ---- */

struct ava_run {
    int64_t id, training_id;
    int number;
    enum ava_run_state state;
    char reason[256];
    bool has_exit; /* exit_code and signal are meaningful */
    int exit_code, signal;
    int64_t created_at, queued_at, started_at, ended_at;
    char gpus[128]; /* "0,1" or "" */
    int cpus;
    int64_t mem_bytes;
    char executor[16];
    char executor_id[64];
    int64_t log_start, log_end; /* -1 when unknown */
    char node[64];              /* where it ran (a Slurm node); "" when not known */
};

struct ava_run_event {
    int64_t at;
    char state[16];
    char reason[256];
};

/* Creates run number (latest + 1) of a training in state creating, with its first event.
 * Call it inside a transaction (ava_store_begin) so that both rows land together. */
int ava_store_run_create(struct ava_store *st, int64_t training_id, const char *reason, int64_t at,
                         struct ava_run *out, char *err);
/* Stores a state change of r (r->state already holds the new state, r->reason its reason,
 * and the other fields what the change sets) plus an event, in one statement pair. The old
 * state must allow the move (checked against the database row): AVA_ECONFLICT otherwise. */
int ava_store_run_transition(struct ava_store *st, const struct ava_run *r, int64_t at, char *err);
/* Stores an event for a run without changing its state (e.g. a shim-reported step). */
int ava_store_run_add_event(struct ava_store *st, int64_t run_id, int64_t at, const char *state,
                            const char *reason, char *err);
/* Updates the executor id of a run (no state change, no event). */
int ava_store_run_set_executor(struct ava_store *st, int64_t run_id, const char *executor,
                               const char *executor_id, char *err);
/* Stores the node a run runs on (no state change, no event). */
int ava_store_run_set_node(struct ava_store *st, int64_t run_id, const char *node, char *err);
/* The latest run of a training. AVA_ENOTFOUND when it never ran. */
int ava_store_run_latest(struct ava_store *st, int64_t training_id, struct ava_run *out, char *err);
/* Run number of a training. */
int ava_store_run_get(struct ava_store *st, int64_t training_id, int number, struct ava_run *out,
                      char *err);
/* All runs of a training, oldest first. *out: free(). */
int ava_store_run_list(struct ava_store *st, int64_t training_id, struct ava_run **out, size_t *n,
                       char *err);
/* All runs not in a terminal state, ordered by queued time then id (the FIFO order). */
int ava_store_run_list_active(struct ava_store *st, struct ava_run **out, size_t *n, char *err);
/* Events of a run in order. *out: free(). */
int ava_store_run_events(struct ava_store *st, int64_t run_id, struct ava_run_event **out,
                         size_t *n, char *err);

/* ---- datasets, formatted sets, dataset jobs ---- */

struct ava_dataset {
    int64_t id;
    char name[65];
    int64_t group_id; /* 0 = public */
    int64_t owner_id; /* 0 = the platform */
    char owner[65];   /* "" for the platform's */
    char group[65];   /* "" for public datasets */
    char description[1001];
    char source[4096]; /* the importer spec it came from */
    char state[16];    /* absent, importing, ready, failed */
    char reason[512];
    int64_t samples;
    char *classes_json; /* [{"name": ..., "count": ...}], never NULL once filled */
    int64_t created_at;
};
void ava_dataset_free(struct ava_dataset *d);
void ava_dataset_list_free(struct ava_dataset *ds, size_t n);

/* Inserts d (d->id is set). AVA_EEXISTS when the name is taken by a public dataset or one of
 * the same group. */
int ava_store_dataset_insert(struct ava_store *st, struct ava_dataset *d, char *err);
/* Finds a dataset visible to group_id by name (the group's own first, then public ones). */
int ava_store_dataset_find(struct ava_store *st, const char *name, int64_t group_id,
                           struct ava_dataset *out, char *err);
int ava_store_dataset_get(struct ava_store *st, int64_t id, struct ava_dataset *out, char *err);
/* Lists the public datasets, then group_id's, each by name. */
int ava_store_dataset_list(struct ava_store *st, int64_t group_id, struct ava_dataset **out,
                           size_t *n, char *err);
/* Stores d's description, source, state, reason, samples and classes. */
int ava_store_dataset_update(struct ava_store *st, const struct ava_dataset *d, char *err);
/* Deletes a dataset with its sets and jobs. */
int ava_store_dataset_delete(struct ava_store *st, int64_t id, char *err);

struct ava_dataset_set {
    int64_t id, dataset_id;
    char format[16]; /* recordio, lmdb, raw */
    int percent;
    int complement; /* the percent of the set formatted with it, 0 when none */
    int64_t samples, bytes;
    char options[1024]; /* JSON: seed, encoding, quality, resize, stratified, ... */
    int64_t created_at;
};
int ava_store_set_insert(struct ava_store *st, struct ava_dataset_set *set, char *err);
int ava_store_set_find(struct ava_store *st, int64_t dataset_id, const char *format, int percent,
                       struct ava_dataset_set *out, char *err);
/* Deletes a set's record; the set formatted with it no longer names it as complement. */
int ava_store_set_delete(struct ava_store *st, int64_t id, char *err);
/* The sets of a dataset by format then percent (descending). *out: free(). */
int ava_store_set_list(struct ava_store *st, int64_t dataset_id, struct ava_dataset_set **out,
                       size_t *n, char *err);

struct ava_dataset_job {
    int64_t id, dataset_id;
    char kind[16];  /* import, format */
    char state[16]; /* running, succeeded, failed, cancelled */
    char reason[512];
    char options[1024]; /* JSON: what the job was asked */
    char executor_id[64];
    int64_t created_at, ended_at;
};
int ava_store_job_insert(struct ava_store *st, struct ava_dataset_job *job, char *err);
/* Stores the job's state, reason, executor id and end time. */
int ava_store_job_update(struct ava_store *st, const struct ava_dataset_job *job, char *err);
int ava_store_job_get(struct ava_store *st, int64_t id, struct ava_dataset_job *out, char *err);
/* Jobs of a dataset, newest first (dataset_id 0: every running job, oldest first). *out: free(). */
int ava_store_job_list(struct ava_store *st, int64_t dataset_id, struct ava_dataset_job **out,
                       size_t *n, char *err);
/* Trainings whose latest run is active and that use the set DATASET/FORMAT/PERCENT (format
 * NULL = any set of the dataset). Returns 1 and fills training with "user/name" of the first
 * one, 0 when none, or a negative AVA_E* code. */
int ava_store_dataset_in_use(struct ava_store *st, const char *dataset, const char *format,
                             int percent, char *training, size_t len, char *err);

/* ---- metrics ---- */

/* A series of a run with its running summary. */
struct ava_series {
    int64_t id, run_id;
    char name[AVA_METRIC_NAME_MAX + 1];
    char phase[AVA_METRIC_PHASE_MAX + 1];
    int64_t count;
    int64_t last_step;
    double last_value;
    int64_t last_time;
    double min, max;
};

/* A series' summary at coarser resolutions, kept at ingest: level 0 groups its points (in
 * step order) in buckets of 64 consecutive points, level 1 of 512, level 2 of 4096, each
 * bucket remembering its first, last, min and max points (table metric_buckets). */
#define AVA_METRIC_BUCKET_LEVELS 3

/* Stores a batch of a run's points and the run's new ingest offset in one transaction (so a
 * crash on either side loses and duplicates nothing): each point goes into its (name, phase)
 * series, created on first use, keyed by step (a step seen again replaces the value); the
 * series' summaries follow. offset < 0 leaves the offset alone (points that came by HTTP). */
int ava_store_metrics_ingest(struct ava_store *st, int64_t run_id, const struct ava_point *pts,
                             size_t n, int64_t offset, char *err);
/* The run's metrics file offset ingested so far. */
int ava_store_metrics_offset(struct ava_store *st, int64_t run_id, int64_t *offset, char *err);
/* The series of a run, by name then phase. *out: free(). */
int ava_store_series_list(struct ava_store *st, int64_t run_id, struct ava_series **out, size_t *n,
                          char *err);
/* One series of a run. AVA_ENOTFOUND when the run has no such series. */
int ava_store_series_find(struct ava_store *st, int64_t run_id, const char *name, const char *phase,
                          struct ava_series *out, char *err);
/* Points of a series with step > after_step, in step order, at most limit (0 = all): steps,
 * values, times (ms) and epochs (-1 none) into malloc'd arrays owned by the caller (any of the
 * out pointers may be NULL). */
int ava_store_series_points(struct ava_store *st, int64_t series_id, int64_t after_step,
                            size_t limit, int64_t **steps, double **values, int64_t **times,
                            int64_t **epochs, size_t *n, char *err);
/* The points to downsample a series to about min_buckets points from: when the series has
 * at least min_buckets buckets at some level, the first, last, min and max points of each
 * bucket of the coarsest such level, in step order, each step once (the series' first and
 * last points included); else (or min_buckets 0) every point. *level gets the level used, -1
 * for every point. Buckets found out of date (a database from before them, a step stored out
 * of order) are rebuilt first, which reads the series once. Arrays as for
 * ava_store_series_points. */
int ava_store_series_sample(struct ava_store *st, int64_t series_id, size_t min_buckets,
                            int64_t **steps, double **values, int64_t **times, size_t *n,
                            int *level, char *err);
/* Stores the SHA-256 of a run's report token (AVA_REPORT_TOKEN). */
int ava_store_run_set_report_token(struct ava_store *st, int64_t run_id, const char *hash,
                                   char *err);
/* Finds the run whose report token hashes to hash. AVA_ENOTFOUND when none. */
int ava_store_run_by_report_token(struct ava_store *st, int64_t run_id, const char *hash,
                                  struct ava_run *out, char *err);

#endif
