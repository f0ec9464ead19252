/* trainings.c: training specs: insert, look up by owner and name, list, delete. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <stdlib.h>
#include <string.h>

#define TRAINING_COLS                                                                              \
    "t.id, t.name, t.user_id, t.group_id, u.name, g.name, t.description, t.image, t.image_kind,"   \
    " t.gpus, t.cpus, t.mem_bytes, t.entry, t.args, t.env, t.train_set, t.val_set,"                \
    " t.max_runtime_ms, t.created_at, t.metrics_parser, t.metric_rules FROM trainings t"           \
    " JOIN users u ON u.id = t.user_id"                                                            \
    " JOIN groups g ON g.id = t.group_id"

void ava_training_free(struct ava_training *t) {
    if (!t)
        return;
    free(t->description);
    free(t->entry);
    free(t->args_json);
    free(t->env_json);
    free(t->train_set);
    free(t->val_set);
    free(t->metrics_parser);
    free(t->metric_rules_json);
    memset(t, 0, sizeof *t);
}

void ava_training_list_free(struct ava_training *ts, size_t n) {
    for (size_t i = 0; i < n; i++)
        ava_training_free(&ts[i]);
    free(ts);
}

/* ava_training_free for store_collect. */
static void training_release(void *elem) {
    ava_training_free(elem);
}

/* Fills a training from a row selected with TRAINING_COLS. */
static void training_from_row(sqlite3_stmt *s, void *elem) {
    struct ava_training *t = elem;
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(s, 0);
    store_col_text(s, 1, t->name, sizeof t->name);
    t->user_id = sqlite3_column_int64(s, 2);
    t->group_id = sqlite3_column_int64(s, 3);
    store_col_text(s, 4, t->user, sizeof t->user);
    store_col_text(s, 5, t->group, sizeof t->group);
    t->description = store_col_strdup(s, 6);
    store_col_text(s, 7, t->image, sizeof t->image);
    store_col_text(s, 8, t->image_kind, sizeof t->image_kind);
    t->gpus = sqlite3_column_int(s, 9);
    t->cpus = sqlite3_column_int(s, 10);
    t->mem_bytes = sqlite3_column_int64(s, 11);
    t->entry = store_col_strdup(s, 12);
    t->args_json = store_col_strdup(s, 13);
    t->env_json = store_col_strdup(s, 14);
    t->train_set = store_col_strdup(s, 15);
    t->val_set = store_col_strdup(s, 16);
    t->max_runtime_ms = sqlite3_column_int64(s, 17);
    t->created_at = sqlite3_column_int64(s, 18);
    t->metrics_parser = store_col_strdup(s, 19);
    t->metric_rules_json = store_col_strdup(s, 20);
}

int ava_store_training_insert(struct ava_store *st, struct ava_training *t, char *err) {
    static const char sql[] =
        "INSERT INTO trainings(name, user_id, group_id, description, image, image_kind, gpus,"
        " cpus, mem_bytes, entry, args, env, train_set, val_set, max_runtime_ms, created_at,"
        " metrics_parser, metric_rules) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?)";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, t->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, t->user_id);
    sqlite3_bind_int64(s, 3, t->group_id);
    sqlite3_bind_text(s, 4, t->description ? t->description : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 5, t->image, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, t->image_kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 7, t->gpus);
    sqlite3_bind_int(s, 8, t->cpus);
    sqlite3_bind_int64(s, 9, t->mem_bytes);
    sqlite3_bind_text(s, 10, t->entry, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 11, t->args_json ? t->args_json : "[]", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 12, t->env_json ? t->env_json : "{}", -1, SQLITE_TRANSIENT);
    store_bind_text(s, 13, t->train_set);
    store_bind_text(s, 14, t->val_set);
    sqlite3_bind_int64(s, 15, t->max_runtime_ms);
    sqlite3_bind_int64(s, 16, t->created_at);
    store_bind_text(s, 17, t->metrics_parser);
    sqlite3_bind_text(s, 18, t->metric_rules_json ? t->metric_rules_json : "[]", -1,
                      SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_DONE) {
        int r = store_fail(st, "create training", err);
        return r == AVA_EEXISTS ? ava_err(err, r, "you already have a training named '%s'", t->name)
                                : r;
    }
    t->id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

/* Steps a statement expected to return at most one training. */
static int training_one(struct ava_store *st, sqlite3_stmt *s, struct ava_training *out,
                        char *err) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        training_from_row(s, out);
        sqlite3_reset(s);
        return 0;
    }
    if (rc != SQLITE_DONE)
        return store_fail(st, "find training", err);
    return AVA_ENOTFOUND;
}

int ava_store_training_find(struct ava_store *st, int64_t user_id, const char *name,
                            struct ava_training *out, char *err) {
    static const char sql[] = "SELECT " TRAINING_COLS " WHERE t.user_id = ? AND t.name = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, user_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
    int r = training_one(st, s, out, err);
    return r == AVA_ENOTFOUND ? ava_err(err, r, "training '%s' not found", name) : r;
}

int ava_store_training_get(struct ava_store *st, int64_t id, struct ava_training *out, char *err) {
    static const char sql[] = "SELECT " TRAINING_COLS " WHERE t.id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, id);
    int r = training_one(st, s, out, err);
    return r == AVA_ENOTFOUND ? ava_err(err, r, "training %lld not found", (long long)id) : r;
}

int ava_store_training_list(struct ava_store *st, int64_t group_id, struct ava_training **out,
                            size_t *n, char *err) {
    static const char sql[] =
        "SELECT " TRAINING_COLS " WHERE ?1 = 0 OR t.group_id = ?1 ORDER BY t.id";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, group_id);
    return store_collect(st, s, sizeof **out, training_from_row, training_release, (void **)out, n,
                         "list trainings", err);
}

int ava_store_training_delete(struct ava_store *st, int64_t id, char *err) {
    static const char sql[] = "DELETE FROM trainings WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, id);
    if (sqlite3_step(s) != SQLITE_DONE)
        return store_fail(st, "delete training", err);
    return sqlite3_changes(st->db) ? 0 : ava_err(err, AVA_ENOTFOUND, "training not found");
}

int64_t ava_store_training_count(struct ava_store *st) {
    static const char sql[] = "SELECT count(*) FROM trainings";
    sqlite3_stmt *s = store_stmt(st, sql, NULL);
    int64_t n = s && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    if (s)
        sqlite3_reset(s);
    return n;
}
