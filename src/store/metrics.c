/* metrics.c: metric series and points. Points live in a WITHOUT ROWID table keyed (series,
 * step), so a series is one contiguous range of the b-tree and a step is stored once. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERIES_CACHE 16

/* The series touched by one batch, with what the batch adds to their summaries. */
struct touched {
    int64_t id;
    char name[AVA_METRIC_NAME_MAX + 1];
    char phase[AVA_METRIC_PHASE_MAX + 1];
    int64_t added;
    int64_t last_step, last_time;
    double last_value, min, max;
    bool has_last;
};

/* Finds or creates the series (run, name, phase); returns its id or -1. */
static int64_t series_id(struct ava_store *st, int64_t run_id, const char *name, const char *phase,
                         char *err) {
    static const char find[] = "SELECT id FROM metric_series WHERE run_id=? AND name=? AND phase=?";
    static const char add[] = "INSERT INTO metric_series(run_id, name, phase) VALUES(?, ?, ?)";
    for (int pass = 0; pass < 2; pass++) {
        sqlite3_stmt *s = store_stmt(st, pass ? add : find, err);
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, run_id);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 3, phase, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s);
        if (!pass && rc == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(s, 0);
            sqlite3_reset(s);
            return id;
        }
        if (pass && rc == SQLITE_DONE)
            return sqlite3_last_insert_rowid(st->db);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
            store_fail(st, "store a metric series", err);
            return -1;
        }
    }
    return -1;
}

/* The touched-series slot of a point, looked up or added. */
static struct touched *touch(struct ava_store *st, int64_t run_id, struct touched *t, int *nt,
                             const struct ava_point *p, char *err) {
    for (int i = 0; i < *nt; i++)
        if (!strcmp(t[i].name, p->name) && !strcmp(t[i].phase, p->phase))
            return &t[i];
    if (*nt == SERIES_CACHE)
        return NULL; /* the caller flushes and retries */
    struct touched *x = &t[(*nt)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", p->name);
    snprintf(x->phase, sizeof x->phase, "%s", p->phase);
    x->id = series_id(st, run_id, p->name, p->phase, err);
    return x->id < 0 ? (--*nt, NULL) : x;
}

/* Inserts one point; *added is 1 for a new step, 0 for a replaced one. */
static int put_point(struct ava_store *st, int64_t sid, const struct ava_point *p, int *added,
                     char *err) {
    static const char ins[] = "INSERT OR IGNORE INTO metric_points(series_id, step, value, time,"
                              " epoch) VALUES(?1, ?2, ?3, ?4, nullif(?5, -1))";
    static const char upd[] = "UPDATE metric_points SET value = ?3, time = ?4,"
                              " epoch = nullif(?5, -1) WHERE series_id = ?1 AND step = ?2";
    for (int pass = 0; pass < 2; pass++) {
        sqlite3_stmt *s = store_stmt(st, pass ? upd : ins, err);
        if (!s)
            return AVA_EIO;
        sqlite3_bind_int64(s, 1, sid);
        sqlite3_bind_int64(s, 2, p->step);
        sqlite3_bind_double(s, 3, p->value);
        sqlite3_bind_int64(s, 4, p->time_ms);
        sqlite3_bind_int64(s, 5, p->epoch);
        if (sqlite3_step(s) != SQLITE_DONE)
            return store_fail(st, "store a metric point", err);
        if (sqlite3_changes(st->db)) {
            *added = !pass;
            return 0;
        }
    }
    return 0;
}

/* Folds what the batch added into each touched series' summary. */
static int update_summaries(struct ava_store *st, struct touched *t, int nt, char *err) {
    static const char sql[] =
        "UPDATE metric_series SET count = count + ?2,"
        " last_value = CASE WHEN ?6 AND ?3 >= last_step THEN ?4 ELSE last_value END,"
        " last_time = CASE WHEN ?6 AND ?3 >= last_step THEN ?5 ELSE last_time END,"
        " last_step = CASE WHEN ?6 AND ?3 >= last_step THEN ?3 ELSE last_step END,"
        " min_value = min(ifnull(min_value, ?7), ?7), max_value = max(ifnull(max_value, ?8), ?8)"
        " WHERE id = ?1";
    for (int i = 0; i < nt; i++) {
        sqlite3_stmt *s = store_stmt(st, sql, err);
        if (!s)
            return AVA_EIO;
        sqlite3_bind_int64(s, 1, t[i].id);
        sqlite3_bind_int64(s, 2, t[i].added);
        sqlite3_bind_int64(s, 3, t[i].last_step);
        sqlite3_bind_double(s, 4, t[i].last_value);
        sqlite3_bind_int64(s, 5, t[i].last_time);
        sqlite3_bind_int(s, 6, t[i].has_last);
        sqlite3_bind_double(s, 7, t[i].min);
        sqlite3_bind_double(s, 8, t[i].max);
        if (sqlite3_step(s) != SQLITE_DONE)
            return store_fail(st, "update a metric series", err);
    }
    return 0;
}

/* Stores the points (inside the caller's transaction). */
static int put_points(struct ava_store *st, int64_t run_id, const struct ava_point *pts, size_t n,
                      char *err) {
    struct touched t[SERIES_CACHE];
    int nt = 0, r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        const struct ava_point *p = &pts[i];
        struct touched *x = touch(st, run_id, t, &nt, p, err);
        if (!x && nt == SERIES_CACHE) { /* many series in one batch: settle and start over */
            r = update_summaries(st, t, nt, err);
            nt = 0;
            x = r == 0 ? touch(st, run_id, t, &nt, p, err) : NULL;
        }
        if (!x)
            return r < 0 ? r : AVA_EIO;
        int added = 0;
        r = put_point(st, x->id, p, &added, err);
        x->added += added;
        if (!x->has_last || p->step >= x->last_step) {
            x->last_step = p->step;
            x->last_value = p->value;
            x->last_time = p->time_ms;
        }
        x->min = x->has_last && x->min < p->value ? x->min : p->value;
        x->max = x->has_last && x->max > p->value ? x->max : p->value;
        x->has_last = true;
    }
    return r == 0 ? update_summaries(st, t, nt, err) : r;
}

int ava_store_metrics_ingest(struct ava_store *st, int64_t run_id, const struct ava_point *pts,
                             size_t n, int64_t offset, char *err) {
    static const char off[] = "UPDATE runs SET metrics_offset = ? WHERE id = ?";
    int r = ava_store_begin(st, err);
    if (r == 0)
        r = put_points(st, run_id, pts, n, err);
    if (r == 0 && offset >= 0) {
        sqlite3_stmt *s = store_stmt(st, off, err);
        if (!s)
            r = AVA_EIO;
        else {
            sqlite3_bind_int64(s, 1, offset);
            sqlite3_bind_int64(s, 2, run_id);
            if (sqlite3_step(s) != SQLITE_DONE)
                r = store_fail(st, "store the metrics offset", err);
        }
    }
    if (r == 0)
        r = ava_store_commit(st, err);
    if (r < 0)
        ava_store_rollback(st);
    return r;
}

int ava_store_metrics_offset(struct ava_store *st, int64_t run_id, int64_t *offset, char *err) {
    static const char sql[] = "SELECT metrics_offset FROM runs WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    if (sqlite3_step(s) != SQLITE_ROW)
        return ava_err(err, AVA_ENOTFOUND, "run %lld not found", (long long)run_id);
    *offset = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}

#define SERIES_COLS                                                                                \
    "id, run_id, name, phase, count, last_step, last_value, last_time, ifnull(min_value, 0),"      \
    " ifnull(max_value, 0) FROM metric_series"

/* Fills a series from a row selected with SERIES_COLS. */
static void series_from_row(sqlite3_stmt *s, void *elem) {
    struct ava_series *x = elem;
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(s, 0);
    x->run_id = sqlite3_column_int64(s, 1);
    store_col_text(s, 2, x->name, sizeof x->name);
    store_col_text(s, 3, x->phase, sizeof x->phase);
    x->count = sqlite3_column_int64(s, 4);
    x->last_step = sqlite3_column_int64(s, 5);
    x->last_value = sqlite3_column_double(s, 6);
    x->last_time = sqlite3_column_int64(s, 7);
    x->min = sqlite3_column_double(s, 8);
    x->max = sqlite3_column_double(s, 9);
}

int ava_store_series_list(struct ava_store *st, int64_t run_id, struct ava_series **out, size_t *n,
                          char *err) {
    static const char sql[] = "SELECT " SERIES_COLS " WHERE run_id = ? ORDER BY name, phase";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    return store_collect(st, s, sizeof **out, series_from_row, NULL, (void **)out, n,
                         "list metric series", err);
}

int ava_store_series_find(struct ava_store *st, int64_t run_id, const char *name, const char *phase,
                          struct ava_series *out, char *err) {
    static const char sql[] = "SELECT " SERIES_COLS " WHERE run_id = ? AND name = ? AND phase = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, phase, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        series_from_row(s, out);
        sqlite3_reset(s);
        return 0;
    }
    if (rc != SQLITE_DONE)
        return store_fail(st, "find metric series", err);
    return ava_err(err, AVA_ENOTFOUND, "no series %s%s%s", name, phase[0] ? " phase " : "", phase);
}

int ava_store_series_points(struct ava_store *st, int64_t series_id, int64_t after_step,
                            size_t limit, int64_t **steps, double **values, int64_t **times,
                            int64_t **epochs, size_t *n, char *err) {
    static const char sql[] = "SELECT step, value, time, ifnull(epoch, -1) FROM metric_points"
                              " WHERE series_id = ? AND step > ? ORDER BY step LIMIT ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, series_id);
    sqlite3_bind_int64(s, 2, after_step);
    sqlite3_bind_int64(s, 3, limit ? (int64_t)limit : -1);
    size_t cap = 1024, cnt = 0;
    int64_t *st_ = ava_xmalloc(cap * sizeof *st_), *ti = ava_xmalloc(cap * sizeof *ti);
    int64_t *ep = ava_xmalloc(cap * sizeof *ep);
    double *va = ava_xmalloc(cap * sizeof *va);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap *= 2;
            st_ = ava_xrealloc(st_, cap * sizeof *st_);
            ti = ava_xrealloc(ti, cap * sizeof *ti);
            ep = ava_xrealloc(ep, cap * sizeof *ep);
            va = ava_xrealloc(va, cap * sizeof *va);
        }
        st_[cnt] = sqlite3_column_int64(s, 0);
        va[cnt] = sqlite3_column_double(s, 1);
        ti[cnt] = sqlite3_column_int64(s, 2);
        ep[cnt] = sqlite3_column_int64(s, 3);
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        free(st_), free(ti), free(ep), free(va);
        return store_fail(st, "read metric points", err);
    }
#define GIVE(out, v)                                                                               \
    do {                                                                                           \
        if (out)                                                                                   \
            *out = v;                                                                              \
        else                                                                                       \
            free(v);                                                                               \
    } while (0)
    GIVE(steps, st_);
    GIVE(values, va);
    GIVE(times, ti);
    GIVE(epochs, ep);
#undef GIVE
    *n = cnt;
    return 0;
}

int ava_store_run_set_report_token(struct ava_store *st, int64_t run_id, const char *hash,
                                   char *err) {
    static const char sql[] = "UPDATE runs SET report_token_hash = ? WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, run_id);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "store the report token", err);
}

int ava_store_run_by_report_token(struct ava_store *st, int64_t run_id, const char *hash,
                                  struct ava_run *out, char *err) {
    static const char sql[] =
        "SELECT training_id, number FROM runs WHERE id = ? AND report_token_hash = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, hash, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_ROW)
        return ava_err(err, AVA_ENOTFOUND, "no run %lld with that report token", (long long)run_id);
    int64_t tid = sqlite3_column_int64(s, 0);
    int number = sqlite3_column_int(s, 1);
    sqlite3_reset(s);
    return ava_store_run_get(st, tid, number, out, err);
}
