/* runs.c: runs and their event history. A state change and its event are written together,
 * and the move is checked against the stored state so no caller can skip the machine. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_FIELDS                                                                                 \
    "id, training_id, number, state, reason, exit_code, signal, created_at,"                       \
    " ifnull(queued_at, 0), ifnull(started_at, 0), ifnull(ended_at, 0), gpus, cpus, mem_bytes,"    \
    " executor, executor_id, ifnull(log_start, -1), ifnull(log_end, -1), node"
#define RUN_COLS RUN_FIELDS " FROM runs"

/* Fills a run from a row selected with RUN_COLS. */
static void run_from_row(sqlite3_stmt *s, void *elem) {
    struct ava_run *r = elem;
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(s, 0);
    r->training_id = sqlite3_column_int64(s, 1);
    r->number = sqlite3_column_int(s, 2);
    if (ava_run_state_parse((const char *)sqlite3_column_text(s, 3), &r->state) < 0)
        r->state = AVA_RUN_FAILED; /* unreachable: the store only writes known states */
    store_col_text(s, 4, r->reason, sizeof r->reason);
    r->has_exit = sqlite3_column_type(s, 5) != SQLITE_NULL;
    r->exit_code = sqlite3_column_int(s, 5);
    r->signal = sqlite3_column_int(s, 6);
    r->created_at = sqlite3_column_int64(s, 7);
    r->queued_at = sqlite3_column_int64(s, 8);
    r->started_at = sqlite3_column_int64(s, 9);
    r->ended_at = sqlite3_column_int64(s, 10);
    store_col_text(s, 11, r->gpus, sizeof r->gpus);
    r->cpus = sqlite3_column_int(s, 12);
    r->mem_bytes = sqlite3_column_int64(s, 13);
    store_col_text(s, 14, r->executor, sizeof r->executor);
    store_col_text(s, 15, r->executor_id, sizeof r->executor_id);
    r->log_start = sqlite3_column_int64(s, 16);
    r->log_end = sqlite3_column_int64(s, 17);
    store_col_text(s, 18, r->node, sizeof r->node);
}

int ava_store_run_add_event(struct ava_store *st, int64_t run_id, int64_t at, const char *state,
                            const char *reason, char *err) {
    static const char sql[] = "INSERT INTO run_events(run_id, at, state, reason) VALUES(?,?,?,?)";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, at);
    sqlite3_bind_text(s, 3, state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, reason ? reason : "", -1, SQLITE_TRANSIENT);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "store run event", err);
}

int ava_store_run_create(struct ava_store *st, int64_t training_id, const char *reason, int64_t at,
                         struct ava_run *out, char *err) {
    static const char sql[] = "INSERT INTO runs(training_id, number, state, reason, created_at)"
                              " SELECT ?1, ifnull(max(number), 0) + 1, 'creating', ?2, ?3 FROM runs"
                              " WHERE training_id = ?1 RETURNING " RUN_FIELDS;
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, training_id);
    sqlite3_bind_text(s, 2, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, at);
    if (sqlite3_step(s) != SQLITE_ROW)
        return store_fail(st, "create run", err);
    run_from_row(s, out);
    sqlite3_reset(s);
    return ava_store_run_add_event(st, out->id, at, "creating", reason, err);
}

int ava_store_run_transition(struct ava_store *st, const struct ava_run *r, int64_t at, char *err) {
    struct ava_run cur;
    static const char get[] = "SELECT " RUN_COLS " WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, get, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, r->id);
    if (sqlite3_step(s) != SQLITE_ROW)
        return ava_err(err, AVA_ENOTFOUND, "run %lld not found", (long long)r->id);
    run_from_row(s, &cur);
    sqlite3_reset(s);
    if (!ava_run_state_can_move(cur.state, r->state))
        return ava_err(err, AVA_ECONFLICT, "run %d is %s and cannot become %s", cur.number,
                       ava_run_state_str(cur.state), ava_run_state_str(r->state));
    static const char upd[] =
        "UPDATE runs SET state = ?2, reason = ?3, exit_code = ?4, signal = ?5,"
        " queued_at = nullif(?6, 0), started_at = nullif(?7, 0), ended_at = nullif(?8, 0),"
        " gpus = ?9, cpus = ?10, mem_bytes = ?11, executor = ?12, executor_id = ?13,"
        " log_start = nullif(?14, -1), log_end = nullif(?15, -1) WHERE id = ?1";
    s = store_stmt(st, upd, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, r->id);
    sqlite3_bind_text(s, 2, ava_run_state_str(r->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, r->reason, -1, SQLITE_TRANSIENT);
    if (r->has_exit) {
        sqlite3_bind_int(s, 4, r->exit_code);
        sqlite3_bind_int(s, 5, r->signal);
    } else { /* statements are reused without clearing: NULL must be bound */
        sqlite3_bind_null(s, 4);
        sqlite3_bind_null(s, 5);
    }
    sqlite3_bind_int64(s, 6, r->queued_at);
    sqlite3_bind_int64(s, 7, r->started_at);
    sqlite3_bind_int64(s, 8, r->ended_at);
    sqlite3_bind_text(s, 9, r->gpus, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 10, r->cpus);
    sqlite3_bind_int64(s, 11, r->mem_bytes);
    sqlite3_bind_text(s, 12, r->executor[0] ? r->executor : "local", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 13, r->executor_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 14, r->log_start);
    sqlite3_bind_int64(s, 15, r->log_end);
    if (sqlite3_step(s) != SQLITE_DONE)
        return store_fail(st, "store run state", err);
    return ava_store_run_add_event(st, r->id, at, ava_run_state_str(r->state), r->reason, err);
}

int ava_store_run_set_executor(struct ava_store *st, int64_t run_id, const char *executor,
                               const char *executor_id, char *err) {
    static const char sql[] = "UPDATE runs SET executor = ?, executor_id = ? WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, executor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, executor_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, run_id);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "store executor id", err);
}

int ava_store_run_set_node(struct ava_store *st, int64_t run_id, const char *node, char *err) {
    static const char sql[] = "UPDATE runs SET node = ? WHERE id = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, node, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, run_id);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "store run node", err);
}

/* Steps a statement expected to return at most one run. */
static int run_one(struct ava_store *st, sqlite3_stmt *s, struct ava_run *out, const char *what,
                   char *err) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        run_from_row(s, out);
        sqlite3_reset(s);
        return 0;
    }
    if (rc != SQLITE_DONE)
        return store_fail(st, what, err);
    return ava_err(err, AVA_ENOTFOUND, "%s", what);
}

int ava_store_run_latest(struct ava_store *st, int64_t training_id, struct ava_run *out,
                         char *err) {
    static const char sql[] =
        "SELECT " RUN_COLS " WHERE training_id = ? ORDER BY number DESC LIMIT 1";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, training_id);
    return run_one(st, s, out, "the training has never run", err);
}

int ava_store_run_get(struct ava_store *st, int64_t training_id, int number, struct ava_run *out,
                      char *err) {
    static const char sql[] = "SELECT " RUN_COLS " WHERE training_id = ? AND number = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, training_id);
    sqlite3_bind_int(s, 2, number);
    int r = run_one(st, s, out, "run not found", err);
    return r == AVA_ENOTFOUND ? ava_err(err, r, "run %d not found", number) : r;
}

int ava_store_run_list(struct ava_store *st, int64_t training_id, struct ava_run **out, size_t *n,
                       char *err) {
    static const char sql[] = "SELECT " RUN_COLS " WHERE training_id = ? ORDER BY number";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, training_id);
    return store_collect(st, s, sizeof **out, run_from_row, NULL, (void **)out, n, "list runs",
                         err);
}

int ava_store_run_list_active(struct ava_store *st, struct ava_run **out, size_t *n, char *err) {
    static const char sql[] =
        "SELECT " RUN_COLS " WHERE state NOT IN ('succeeded', 'failed', 'stopped', 'timed_out')"
        " ORDER BY ifnull(queued_at, created_at), id";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    return store_collect(st, s, sizeof **out, run_from_row, NULL, (void **)out, n, "list runs",
                         err);
}

/* Fills an event from a row of the events query. */
static void event_from_row(sqlite3_stmt *s, void *elem) {
    struct ava_run_event *ev = elem;
    ev->at = sqlite3_column_int64(s, 0);
    store_col_text(s, 1, ev->state, sizeof ev->state);
    store_col_text(s, 2, ev->reason, sizeof ev->reason);
}

int ava_store_run_events(struct ava_store *st, int64_t run_id, struct ava_run_event **out,
                         size_t *n, char *err) {
    static const char sql[] =
        "SELECT at, state, reason FROM run_events WHERE run_id = ? ORDER BY id";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    return store_collect(st, s, sizeof **out, event_from_row, NULL, (void **)out, n,
                         "list run events", err);
}
