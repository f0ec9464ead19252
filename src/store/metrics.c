/* metrics.c: metric series and points. Points live in a WITHOUT ROWID table keyed (series,
 * step), so a series is one contiguous range of the b-tree and a step is stored once. New
 * steps (past the series' last) go in with multi-row plain INSERTs, anything else through
 * INSERT OR IGNORE + UPDATE. Each series also keeps, at ingest, buckets of consecutive points
 * (metric_buckets) that long series are downsampled from. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERIES_CACHE 16
#define CHUNK 64 /* rows per multi-row INSERT: a statement step costs about as much as a row */

/* Bucket levels of a series' summary (metric_buckets.level): level L groups the series'
 * points, in step order, into buckets of bucket_points[L] consecutive points. */
static const int64_t bucket_points[AVA_METRIC_BUCKET_LEVELS] = {64, 512, 4096};

/* One point of a bucket's summary. */
struct bpoint {
    int64_t step, time;
    double value;
};

/* The open (last) bucket of one level while points are added: its first, last, min and max
 * points (the first of equal extremes). */
struct bucket_acc {
    int64_t bucket; /* -1: none open */
    struct bpoint first, last, min, max;
};

/* The series touched by one batch, with what the batch adds to their summaries. */
struct touched {
    int64_t id;
    char name[AVA_METRIC_NAME_MAX + 1];
    char phase[AVA_METRIC_PHASE_MAX + 1];
    int64_t count; /* the series' points so far, this batch's included */
    int64_t added;
    int64_t last_step, last_time; /* the largest step so far (when count > 0) */
    double last_value, min, max;
    bool has_last;   /* this batch has a point of the series */
    bool buckets_ok; /* the buckets cover every point: kept up to date */
    struct bucket_acc acc[AVA_METRIC_BUCKET_LEVELS];
};

/* Writes an open bucket (merging into the stored row of the same bucket: a bucket filled
 * over several batches keeps its first point and gains the new last, min and max). */
static int bucket_write(struct ava_store *st, int64_t sid, int level, const struct bucket_acc *a,
                        char *err) {
    static const char sql[] =
        "INSERT INTO metric_buckets(series_id, level, bucket, first_step, first_value,"
        " first_time, last_step, last_value, last_time, min_step, min_value, min_time, max_step,"
        " max_value, max_time) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14, ?15) ON CONFLICT(series_id, level, bucket) DO UPDATE SET"
        " last_step = ?7, last_value = ?8, last_time = ?9,"
        " min_step = iif(?11 < min_value, ?10, min_step),"
        " min_time = iif(?11 < min_value, ?12, min_time), min_value = min(min_value, ?11),"
        " max_step = iif(?14 > max_value, ?13, max_step),"
        " max_time = iif(?14 > max_value, ?15, max_time), max_value = max(max_value, ?14)";
    if (a->bucket < 0)
        return 0;
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, sid);
    sqlite3_bind_int(s, 2, level);
    sqlite3_bind_int64(s, 3, a->bucket);
    const struct bpoint *p[4] = {&a->first, &a->last, &a->min, &a->max};
    for (int i = 0; i < 4; i++) {
        sqlite3_bind_int64(s, 4 + 3 * i, p[i]->step);
        sqlite3_bind_double(s, 5 + 3 * i, p[i]->value);
        sqlite3_bind_int64(s, 6 + 3 * i, p[i]->time);
    }
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "store a metric bucket", err);
}

/* Adds the point with ordinal o (its place in step order) to each level's open bucket,
 * writing a bucket out when the point starts the next one. */
static int bucket_add(struct ava_store *st, int64_t sid, struct bucket_acc *acc, int64_t o,
                      const struct bpoint *p, char *err) {
    for (int l = 0; l < AVA_METRIC_BUCKET_LEVELS; l++) {
        struct bucket_acc *a = &acc[l];
        int64_t b = o / bucket_points[l];
        if (a->bucket != b) {
            int r = bucket_write(st, sid, l, a, err);
            if (r < 0)
                return r;
            a->bucket = b;
            a->first = a->last = a->min = a->max = *p;
            continue;
        }
        a->last = *p;
        if (p->value < a->min.value)
            a->min = *p;
        if (p->value > a->max.value)
            a->max = *p;
    }
    return 0;
}

/* Writes every level's open bucket and closes them. */
static int bucket_flush(struct ava_store *st, int64_t sid, struct bucket_acc *acc, char *err) {
    for (int l = 0; l < AVA_METRIC_BUCKET_LEVELS; l++) {
        int r = bucket_write(st, sid, l, &acc[l], err);
        if (r < 0)
            return r;
        acc[l].bucket = -1;
    }
    return 0;
}

/* Finds or creates the series (run, name, phase) and reads what the batch builds on: its
 * count, last step and whether its buckets are up to date. Returns 0 or an AVA_E* code. */
static int series_open(struct ava_store *st, int64_t run_id, struct touched *x, char *err) {
    static const char find[] = "SELECT id, count, last_step, buckets_ok FROM metric_series"
                               " WHERE run_id=? AND name=? AND phase=?";
    static const char add[] = "INSERT INTO metric_series(run_id, name, phase, buckets_ok)"
                              " VALUES(?, ?, ?, 1)";
    for (int pass = 0; pass < 2; pass++) {
        sqlite3_stmt *s = store_stmt(st, pass ? add : find, err);
        if (!s)
            return AVA_EIO;
        sqlite3_bind_int64(s, 1, run_id);
        sqlite3_bind_text(s, 2, x->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 3, x->phase, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s);
        if (!pass && rc == SQLITE_ROW) {
            x->id = sqlite3_column_int64(s, 0);
            x->count = sqlite3_column_int64(s, 1);
            x->last_step = sqlite3_column_int64(s, 2);
            x->buckets_ok = sqlite3_column_int(s, 3) != 0;
            sqlite3_reset(s);
            return 0;
        }
        if (pass && rc == SQLITE_DONE) {
            x->id = sqlite3_last_insert_rowid(st->db);
            x->buckets_ok = true; /* no points, no buckets: up to date */
            return 0;
        }
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            return store_fail(st, "store a metric series", err);
    }
    return AVA_EIO;
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
    for (int l = 0; l < AVA_METRIC_BUCKET_LEVELS; l++)
        x->acc[l].bucket = -1;
    snprintf(x->name, sizeof x->name, "%s", p->name);
    snprintf(x->phase, sizeof x->phase, "%s", p->phase);
    return series_open(st, run_id, x, err) < 0 ? (--*nt, NULL) : x;
}

/* Inserts or replaces one point; *added is 1 for a new step, 0 for a replaced one. The slow
 * path, for a step that may be stored already. */
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

#define ROW1 "(?,?,?,?,?)"
#define ROW2 ROW1 "," ROW1
#define ROW4 ROW2 "," ROW2
#define ROW8 ROW4 "," ROW4
#define ROW16 ROW8 "," ROW8
#define ROW32 ROW16 "," ROW16
#define ROW64 ROW32 "," ROW32
#define INSERT_POINTS "INSERT INTO metric_points(series_id, step, value, time, epoch) VALUES"

/* Points known to be new (each step past its series' last), inserted CHUNK at a time with
 * a plain INSERT. */
struct pending {
    const struct ava_point *p[CHUNK];
    struct touched *x[CHUNK];
    int n;
};

/* Inserts the pending points: one multi-row INSERT for a full chunk, one row at a time
 * otherwise. Should a step be stored after all (a summary out of step with its points), the
 * chunk goes through the slow path instead and the series' buckets are rebuilt later. */
static int pending_flush(struct ava_store *st, struct pending *pd, char *err) {
    static const char one[] = INSERT_POINTS ROW1, full[] = INSERT_POINTS ROW64;
    _Static_assert(CHUNK == 64, "full[] has CHUNK rows");
    int rc = SQLITE_DONE, i = 0;
    while (i < pd->n && rc == SQLITE_DONE) {
        int rows = pd->n - i == CHUNK ? CHUNK : 1;
        sqlite3_stmt *s = store_stmt(st, rows == CHUNK ? full : one, err);
        if (!s)
            return AVA_EIO;
        for (int k = 0; k < rows; k++) {
            const struct ava_point *p = pd->p[i + k];
            sqlite3_bind_int64(s, 5 * k + 1, pd->x[i + k]->id);
            sqlite3_bind_int64(s, 5 * k + 2, p->step);
            sqlite3_bind_double(s, 5 * k + 3, p->value);
            sqlite3_bind_int64(s, 5 * k + 4, p->time_ms);
            if (p->epoch >= 0)
                sqlite3_bind_int64(s, 5 * k + 5, p->epoch);
            else
                sqlite3_bind_null(s, 5 * k + 5);
        }
        if ((rc = sqlite3_step(s)) == SQLITE_DONE)
            i += rows;
    }
    if (rc != SQLITE_DONE && (sqlite3_extended_errcode(st->db) != SQLITE_CONSTRAINT_PRIMARYKEY))
        return store_fail(st, "store metric points", err);
    for (int r = 0; i < pd->n; i++) { /* the rare path: what failed and what followed it */
        int added = 0;
        if ((r = put_point(st, pd->x[i]->id, pd->p[i], &added, err)) < 0)
            return r;
        pd->x[i]->buckets_ok = false;
        pd->x[i]->added -= !added;
        pd->x[i]->count -= !added;
    }
    pd->n = 0;
    return 0;
}

/* Folds what the batch added into each touched series' summary and writes their open
 * buckets. */
static int update_summaries(struct ava_store *st, struct touched *t, int nt, char *err) {
    static const char sql[] =
        "UPDATE metric_series SET count = count + ?2,"
        " last_value = CASE WHEN ?6 AND ?3 >= last_step THEN ?4 ELSE last_value END,"
        " last_time = CASE WHEN ?6 AND ?3 >= last_step THEN ?5 ELSE last_time END,"
        " last_step = CASE WHEN ?6 AND ?3 >= last_step THEN ?3 ELSE last_step END,"
        " min_value = min(ifnull(min_value, ?7), ?7), max_value = max(ifnull(max_value, ?8), ?8),"
        " buckets_ok = ?9 WHERE id = ?1";
    for (int i = 0; i < nt; i++) {
        int r = t[i].buckets_ok ? bucket_flush(st, t[i].id, t[i].acc, err) : 0;
        if (r < 0)
            return r;
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
        sqlite3_bind_int(s, 9, t[i].buckets_ok);
        if (sqlite3_step(s) != SQLITE_DONE)
            return store_fail(st, "update a metric series", err);
    }
    return 0;
}

/* Stores one point of series x: a new last step joins the pending plain INSERTs and the
 * open buckets; any other step (replaced, or new but out of order) takes the slow path and
 * leaves the series' buckets to be rebuilt. */
static int put_one(struct ava_store *st, struct touched *x, const struct ava_point *p,
                   struct pending *pd, char *err) {
    int r = 0;
    if (x->count == 0 || p->step > x->last_step) {
        if (x->buckets_ok) {
            struct bpoint b = {p->step, p->time_ms, p->value};
            r = bucket_add(st, x->id, x->acc, x->count, &b, err);
        }
        pd->p[pd->n] = p;
        pd->x[pd->n++] = x;
        x->added++;
        x->count++;
        if (r == 0 && pd->n == CHUNK)
            r = pending_flush(st, pd, err);
    } else {
        int added = 0;
        x->buckets_ok = false;
        r = pending_flush(st, pd, err); /* in order: a later point replaces an earlier one */
        if (r == 0)
            r = put_point(st, x->id, p, &added, err);
        x->added += added;
        x->count += added;
    }
    if (!x->has_last || p->step >= x->last_step) {
        x->last_step = p->step;
        x->last_value = p->value;
        x->last_time = p->time_ms;
    }
    x->min = x->has_last && x->min < p->value ? x->min : p->value;
    x->max = x->has_last && x->max > p->value ? x->max : p->value;
    x->has_last = true;
    return r;
}

/* Stores the points (inside the caller's transaction). */
static int put_points(struct ava_store *st, int64_t run_id, const struct ava_point *pts, size_t n,
                      char *err) {
    struct touched t[SERIES_CACHE];
    struct pending pd = {.n = 0};
    int nt = 0, r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        const struct ava_point *p = &pts[i];
        struct touched *x = touch(st, run_id, t, &nt, p, err);
        if (!x && nt == SERIES_CACHE) { /* many series in one batch: settle and start over */
            r = pending_flush(st, &pd, err);
            if (r == 0)
                r = update_summaries(st, t, nt, err);
            nt = 0;
            x = r == 0 ? touch(st, run_id, t, &nt, p, err) : NULL;
        }
        if (!x)
            return r < 0 ? r : AVA_EIO;
        r = put_one(st, x, p, &pd, err);
    }
    if (r == 0)
        r = pending_flush(st, &pd, err);
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

/* Runs a statement whose one parameter is a series id. */
static int exec_sid(struct ava_store *st, const char *sql, int64_t sid, const char *what,
                    char *err) {
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, sid);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, what, err);
}

/* Rebuilds a series' buckets from its points (one read of the series, in its own
 * transaction): for series whose buckets are not up to date (stored before buckets existed,
 * or given a step out of order). */
static int rebuild_buckets(struct ava_store *st, int64_t sid, char *err) {
    static const char del[] = "DELETE FROM metric_buckets WHERE series_id = ?";
    static const char pts[] = "SELECT step, value, time FROM metric_points WHERE series_id = ?"
                              " ORDER BY step";
    static const char ok[] = "UPDATE metric_series SET buckets_ok = 1 WHERE id = ?";
    struct bucket_acc acc[AVA_METRIC_BUCKET_LEVELS];
    for (int l = 0; l < AVA_METRIC_BUCKET_LEVELS; l++)
        acc[l].bucket = -1;
    int r = ava_store_begin(st, err);
    if (r == 0)
        r = exec_sid(st, del, sid, "rebuild metric buckets", err);
    sqlite3_stmt *s = r == 0 ? store_stmt(st, pts, err) : NULL;
    if (r == 0 && !s)
        r = AVA_EIO;
    if (r == 0) {
        int rc;
        int64_t o = 0;
        sqlite3_bind_int64(s, 1, sid);
        while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            struct bpoint b = {sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 2),
                               sqlite3_column_double(s, 1)};
            r = bucket_add(st, sid, acc, o++, &b, err);
        }
        if (r == 0 && rc != SQLITE_DONE)
            r = store_fail(st, "rebuild metric buckets", err);
        sqlite3_reset(s);
    }
    if (r == 0)
        r = bucket_flush(st, sid, acc, err);
    if (r == 0)
        r = exec_sid(st, ok, sid, "rebuild metric buckets", err);
    if (r == 0)
        r = ava_store_commit(st, err);
    if (r < 0)
        ava_store_rollback(st);
    return r;
}

/* Appends bucket points in step order, each step once (a bucket's first, min, max and last
 * points may coincide); false when a step is not past the previous one (buckets that do not
 * describe the series: the caller reads the points instead). */
static bool put_bucket_points(struct bpoint *p, int np, int64_t *steps, double *values,
                              int64_t *times, size_t *n) {
    for (int i = 1; i < np; i++) /* a 4-element insertion sort */
        for (int k = i; k > 0 && p[k].step < p[k - 1].step; k--) {
            struct bpoint t = p[k];
            p[k] = p[k - 1];
            p[k - 1] = t;
        }
    for (int i = 0; i < np; i++) {
        if (*n > 0 && p[i].step == steps[*n - 1] && i > 0)
            continue;
        if (*n > 0 && p[i].step <= steps[*n - 1])
            return false;
        steps[*n] = p[i].step;
        values[*n] = p[i].value;
        times[*n] = p[i].time;
        (*n)++;
    }
    return true;
}

/* Reads the points of a series' buckets at one level (see ava_store_series_sample). Returns
 * 0, AVA_ENOTFOUND when the buckets do not describe the series, or an AVA_E* code. */
static int read_buckets(struct ava_store *st, int64_t sid, int level, int64_t count,
                        int64_t **steps, double **values, int64_t **times, size_t *n, char *err) {
    static const char sql[] =
        "SELECT first_step, first_value, first_time, last_step, last_value, last_time,"
        " min_step, min_value, min_time, max_step, max_value, max_time FROM metric_buckets"
        " WHERE series_id = ? AND level = ? ORDER BY bucket";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, sid);
    sqlite3_bind_int(s, 2, level);
    size_t cap = 4 * (size_t)(count / bucket_points[level] + 1), cnt = 0, rows = 0;
    int64_t *st_ = ava_xmalloc(cap * sizeof *st_), *ti = ava_xmalloc(cap * sizeof *ti);
    double *va = ava_xmalloc(cap * sizeof *va);
    int rc;
    bool ok = true;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct bpoint p[4];
        for (int i = 0; i < 4; i++)
            p[i] =
                (struct bpoint){sqlite3_column_int64(s, 3 * i), sqlite3_column_int64(s, 3 * i + 2),
                                sqlite3_column_double(s, 3 * i + 1)};
        ok = ++rows * 4 <= cap && put_bucket_points(p, 4, st_, va, ti, &cnt);
    }
    sqlite3_reset(s);
    if (ok && rc != SQLITE_DONE) {
        free(st_), free(va), free(ti);
        return store_fail(st, "read metric buckets", err);
    }
    if (!ok || rows != cap / 4 - (count % bucket_points[level] == 0)) {
        free(st_), free(va), free(ti);
        return AVA_ENOTFOUND;
    }
    *steps = st_, *values = va, *times = ti, *n = cnt;
    return 0;
}

int ava_store_series_sample(struct ava_store *st, int64_t series_id, size_t min_buckets,
                            int64_t **steps, double **values, int64_t **times, size_t *n,
                            int *level, char *err) {
    static const char sql[] = "SELECT count, buckets_ok FROM metric_series WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, series_id);
    if (sqlite3_step(s) != SQLITE_ROW)
        return ava_err(err, AVA_ENOTFOUND, "no metric series %lld", (long long)series_id);
    int64_t count = sqlite3_column_int64(s, 0);
    bool ok = sqlite3_column_int(s, 1) != 0;
    sqlite3_reset(s);
    int l = AVA_METRIC_BUCKET_LEVELS - 1;
    while (l >= 0 && (min_buckets == 0 || count / bucket_points[l] < (int64_t)min_buckets))
        l--; /* the coarsest level with enough buckets */
    *level = -1;
    if (l >= 0 && (ok || rebuild_buckets(st, series_id, NULL) == 0) &&
        read_buckets(st, series_id, l, count, steps, values, times, n, NULL) == 0) {
        *level = l;
        return 0;
    }
    return ava_store_series_points(st, series_id, -1, 0, steps, values, times, NULL, n, err);
}
