/* datasets.c: datasets, their formatted sets and the jobs that import and format them. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATASET_COLS                                                                               \
    "d.id, d.name, ifnull(d.group_id, 0), ifnull(d.owner_id, 0), ifnull(u.name, ''),"              \
    " ifnull(g.name, ''), d.description, d.source, d.state, d.reason, d.samples, d.classes,"       \
    " d.created_at FROM datasets d LEFT JOIN users u ON u.id = d.owner_id"                         \
    " LEFT JOIN groups g ON g.id = d.group_id"

void ava_dataset_free(struct ava_dataset *d) {
    if (!d)
        return;
    free(d->classes_json);
    d->classes_json = NULL;
}

void ava_dataset_list_free(struct ava_dataset *ds, size_t n) {
    for (size_t i = 0; i < n; i++)
        ava_dataset_free(&ds[i]);
    free(ds);
}

/* ava_dataset_free for store_collect. */
static void dataset_release(void *elem) {
    ava_dataset_free(elem);
}

/* Fills a dataset from a row selected with DATASET_COLS. */
static void dataset_from_row(sqlite3_stmt *s, void *elem) {
    struct ava_dataset *d = elem;
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(s, 0);
    store_col_text(s, 1, d->name, sizeof d->name);
    d->group_id = sqlite3_column_int64(s, 2);
    d->owner_id = sqlite3_column_int64(s, 3);
    store_col_text(s, 4, d->owner, sizeof d->owner);
    store_col_text(s, 5, d->group, sizeof d->group);
    store_col_text(s, 6, d->description, sizeof d->description);
    store_col_text(s, 7, d->source, sizeof d->source);
    store_col_text(s, 8, d->state, sizeof d->state);
    store_col_text(s, 9, d->reason, sizeof d->reason);
    d->samples = sqlite3_column_int64(s, 10);
    d->classes_json = store_col_strdup(s, 11);
    d->created_at = sqlite3_column_int64(s, 12);
}

/* Binds an id as NULL when 0 (public / platform-owned). */
static void bind_id_or_null(sqlite3_stmt *s, int i, int64_t id) {
    if (id)
        sqlite3_bind_int64(s, i, id);
    else
        sqlite3_bind_null(s, i);
}

int ava_store_dataset_insert(struct ava_store *st, struct ava_dataset *d, char *err) {
    struct ava_dataset other;
    if (ava_store_dataset_find(st, d->name, d->group_id, &other, NULL) == 0) {
        ava_dataset_free(&other);
        return ava_err(err, AVA_EEXISTS, "dataset '%s' already exists", d->name);
    }
    static const char sql[] =
        "INSERT INTO datasets(name, group_id, owner_id, description, source, state, reason,"
        " samples, classes, created_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, d->name, -1, SQLITE_TRANSIENT);
    bind_id_or_null(s, 2, d->group_id);
    bind_id_or_null(s, 3, d->owner_id);
    sqlite3_bind_text(s, 4, d->description, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 5, d->source, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, d->state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 7, d->reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 8, d->samples);
    sqlite3_bind_text(s, 9, d->classes_json ? d->classes_json : "[]", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 10, d->created_at ? d->created_at : ava_now_ms());
    if (sqlite3_step(s) != SQLITE_DONE) {
        int r = store_fail(st, "create dataset", err);
        return r == AVA_EEXISTS ? ava_err(err, r, "dataset '%s' already exists", d->name) : r;
    }
    d->id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

/* Steps a statement expected to return at most one dataset. */
static int dataset_one(struct ava_store *st, sqlite3_stmt *s, struct ava_dataset *out,
                       const char *what, char *err) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        dataset_from_row(s, out);
        sqlite3_reset(s);
        return 0;
    }
    if (rc != SQLITE_DONE)
        return store_fail(st, "find dataset", err);
    return ava_err(err, AVA_ENOTFOUND, "dataset '%s' not found (see 'ava dataset list')", what);
}

int ava_store_dataset_find(struct ava_store *st, const char *name, int64_t group_id,
                           struct ava_dataset *out, char *err) {
    static const char sql[] = "SELECT " DATASET_COLS " WHERE d.name = ?1 AND (d.group_id IS NULL"
                              " OR d.group_id = ?2) ORDER BY d.group_id IS NULL LIMIT 1";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, group_id);
    return dataset_one(st, s, out, name, err);
}

int ava_store_dataset_get(struct ava_store *st, int64_t id, struct ava_dataset *out, char *err) {
    static const char sql[] = "SELECT " DATASET_COLS " WHERE d.id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, id);
    return dataset_one(st, s, out, "#id", err);
}

int ava_store_dataset_list(struct ava_store *st, int64_t group_id, struct ava_dataset **out,
                           size_t *n, char *err) {
    static const char sql[] = "SELECT " DATASET_COLS " WHERE d.group_id IS NULL OR d.group_id = ?"
                              " ORDER BY d.group_id IS NOT NULL, d.name";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, group_id);
    return store_collect(st, s, sizeof **out, dataset_from_row, dataset_release, (void **)out, n,
                         "list datasets", err);
}

int ava_store_dataset_update(struct ava_store *st, const struct ava_dataset *d, char *err) {
    static const char sql[] = "UPDATE datasets SET description = ?, source = ?, state = ?,"
                              " reason = ?, samples = ?, classes = ? WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, d->description, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, d->source, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, d->state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, d->reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 5, d->samples);
    sqlite3_bind_text(s, 6, d->classes_json ? d->classes_json : "[]", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 7, d->id);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "update dataset", err);
}

int ava_store_dataset_delete(struct ava_store *st, int64_t id, char *err) {
    static const char sql[] = "DELETE FROM datasets WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, id);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "delete dataset", err);
}

#define SET_COLS                                                                                   \
    "id, dataset_id, format, percent, ifnull(complement, 0), samples, bytes, options, created_at"  \
    " FROM dataset_sets"

/* Fills a set from a row selected with SET_COLS. */
static void set_from_row(sqlite3_stmt *s, void *elem) {
    struct ava_dataset_set *set = elem;
    memset(set, 0, sizeof *set);
    set->id = sqlite3_column_int64(s, 0);
    set->dataset_id = sqlite3_column_int64(s, 1);
    store_col_text(s, 2, set->format, sizeof set->format);
    set->percent = sqlite3_column_int(s, 3);
    set->complement = sqlite3_column_int(s, 4);
    set->samples = sqlite3_column_int64(s, 5);
    set->bytes = sqlite3_column_int64(s, 6);
    store_col_text(s, 7, set->options, sizeof set->options);
    set->created_at = sqlite3_column_int64(s, 8);
}

int ava_store_set_insert(struct ava_store *st, struct ava_dataset_set *set, char *err) {
    static const char sql[] = "INSERT INTO dataset_sets(dataset_id, format, percent, complement,"
                              " samples, bytes, options, created_at) VALUES(?,?,?,?,?,?,?,?)";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, set->dataset_id);
    sqlite3_bind_text(s, 2, set->format, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 3, set->percent);
    bind_id_or_null(s, 4, set->complement);
    sqlite3_bind_int64(s, 5, set->samples);
    sqlite3_bind_int64(s, 6, set->bytes);
    sqlite3_bind_text(s, 7, set->options[0] ? set->options : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 8, set->created_at ? set->created_at : ava_now_ms());
    if (sqlite3_step(s) != SQLITE_DONE)
        return store_fail(st, "store formatted set", err);
    set->id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int ava_store_set_find(struct ava_store *st, int64_t dataset_id, const char *format, int percent,
                       struct ava_dataset_set *out, char *err) {
    static const char sql[] =
        "SELECT " SET_COLS " WHERE dataset_id = ? AND format = ? AND percent = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, dataset_id);
    sqlite3_bind_text(s, 2, format, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 3, percent);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        set_from_row(s, out);
        sqlite3_reset(s);
        return 0;
    }
    if (rc != SQLITE_DONE)
        return store_fail(st, "find formatted set", err);
    return ava_err(err, AVA_ENOTFOUND, "no %s set of %d%%", format, percent);
}

int ava_store_set_delete(struct ava_store *st, int64_t id, char *err) {
    /* the set's complement (if any) stops naming it */
    static const char unlink[] =
        "UPDATE dataset_sets SET complement = NULL WHERE id IN (SELECT o.id FROM dataset_sets o"
        " JOIN dataset_sets d ON d.id = ?1 AND o.dataset_id = d.dataset_id AND o.format = d.format"
        " AND o.complement = d.percent)";
    static const char sql[] = "DELETE FROM dataset_sets WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, unlink, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, id);
    if (sqlite3_step(s) != SQLITE_DONE)
        return store_fail(st, "delete formatted set", err);
    s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, id);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "delete formatted set", err);
}

int ava_store_set_list(struct ava_store *st, int64_t dataset_id, struct ava_dataset_set **out,
                       size_t *n, char *err) {
    static const char sql[] =
        "SELECT " SET_COLS " WHERE dataset_id = ? ORDER BY format, percent DESC";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, dataset_id);
    return store_collect(st, s, sizeof **out, set_from_row, NULL, (void **)out, n,
                         "list formatted sets", err);
}

#define JOB_COLS                                                                                   \
    "id, dataset_id, kind, state, reason, options, executor_id, created_at, ifnull(ended_at, 0)"   \
    " FROM dataset_jobs"

/* Fills a job from a row selected with JOB_COLS. */
static void job_from_row(sqlite3_stmt *s, void *elem) {
    struct ava_dataset_job *j = elem;
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(s, 0);
    j->dataset_id = sqlite3_column_int64(s, 1);
    store_col_text(s, 2, j->kind, sizeof j->kind);
    store_col_text(s, 3, j->state, sizeof j->state);
    store_col_text(s, 4, j->reason, sizeof j->reason);
    store_col_text(s, 5, j->options, sizeof j->options);
    store_col_text(s, 6, j->executor_id, sizeof j->executor_id);
    j->created_at = sqlite3_column_int64(s, 7);
    j->ended_at = sqlite3_column_int64(s, 8);
}

int ava_store_job_insert(struct ava_store *st, struct ava_dataset_job *job, char *err) {
    static const char sql[] = "INSERT INTO dataset_jobs(dataset_id, kind, state, reason, options,"
                              " executor_id, created_at) VALUES(?,?,?,?,?,?,?)";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    if (!job->created_at)
        job->created_at = ava_now_ms();
    sqlite3_bind_int64(s, 1, job->dataset_id);
    sqlite3_bind_text(s, 2, job->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, job->state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, job->reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 5, job->options[0] ? job->options : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, job->executor_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 7, job->created_at);
    if (sqlite3_step(s) != SQLITE_DONE)
        return store_fail(st, "store dataset job", err);
    job->id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int ava_store_job_update(struct ava_store *st, const struct ava_dataset_job *job, char *err) {
    static const char sql[] = "UPDATE dataset_jobs SET state = ?, reason = ?, executor_id = ?,"
                              " ended_at = nullif(?, 0) WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, job->state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, job->reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, job->executor_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, job->ended_at);
    sqlite3_bind_int64(s, 5, job->id);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "update dataset job", err);
}

int ava_store_job_get(struct ava_store *st, int64_t id, struct ava_dataset_job *out, char *err) {
    static const char sql[] = "SELECT " JOB_COLS " WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        job_from_row(s, out);
        sqlite3_reset(s);
        return 0;
    }
    if (rc != SQLITE_DONE)
        return store_fail(st, "find dataset job", err);
    return ava_err(err, AVA_ENOTFOUND, "job %lld not found", (long long)id);
}

int ava_store_job_list(struct ava_store *st, int64_t dataset_id, struct ava_dataset_job **out,
                       size_t *n, char *err) {
    static const char one[] = "SELECT " JOB_COLS " WHERE dataset_id = ? ORDER BY id DESC";
    static const char running[] = "SELECT " JOB_COLS " WHERE state = 'running' ORDER BY id";
    sqlite3_stmt *s = store_stmt(st, dataset_id ? one : running, err);
    if (!s)
        return AVA_EIO;
    if (dataset_id)
        sqlite3_bind_int64(s, 1, dataset_id);
    return store_collect(st, s, sizeof **out, job_from_row, NULL, (void **)out, n,
                         "list dataset jobs", err);
}

int ava_store_dataset_in_use(struct ava_store *st, const char *dataset, const char *format,
                             int percent, char *training, size_t len, char *err) {
    static const char sql[] =
        "SELECT u.name || '/' || t.name FROM trainings t JOIN users u ON u.id = t.user_id"
        " WHERE (t.train_set = ?1 OR t.val_set = ?1 OR (?2 AND"
        " (substr(t.train_set, 1, length(?3)) = ?3 OR substr(t.val_set, 1, length(?3)) = ?3)))"
        " AND (SELECT state FROM runs WHERE training_id = t.id ORDER BY number DESC LIMIT 1)"
        " NOT IN ('succeeded', 'failed', 'stopped', 'timed_out') LIMIT 1";
    char ref[512], prefix[128];
    snprintf(ref, sizeof ref, "%s/%s/%d", dataset, format ? format : "", percent);
    snprintf(prefix, sizeof prefix, "%s/", dataset);
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, ref, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 2, format == NULL);
    sqlite3_bind_text(s, 3, prefix, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        store_col_text(s, 0, training, len);
        sqlite3_reset(s);
        return 1;
    }
    return rc == SQLITE_DONE ? 0 : store_fail(st, "check dataset use", err);
}
