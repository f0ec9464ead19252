/* db.c: opening the database, WAL settings, versioned migrations, transactions and the
 * prepared-statement cache shared by the store's table files. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each entry moves the schema from version i to i+1. Never edit a shipped entry: append. */
static const char *const migrations[] = {
    /* 1: users, images, trainings, runs, events */
    "CREATE TABLE groups(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL) STRICT;"
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " group_id INTEGER NOT NULL REFERENCES groups(id), is_admin INTEGER NOT NULL DEFAULT 0,"
    " token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL) STRICT;"
    "CREATE TABLE images(id INTEGER PRIMARY KEY, name TEXT NOT NULL, tag TEXT NOT NULL,"
    " group_id INTEGER REFERENCES groups(id), owner_id INTEGER REFERENCES users(id),"
    " kind TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', entry TEXT,"
    " env TEXT NOT NULL DEFAULT '{}', metrics_parser TEXT, available INTEGER NOT NULL DEFAULT 1,"
    " unavailable_reason TEXT, created_at INTEGER NOT NULL) STRICT;"
    "CREATE UNIQUE INDEX images_ref ON images(name, tag, ifnull(group_id, 0));"
    "CREATE TABLE trainings(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " user_id INTEGER NOT NULL REFERENCES users(id), group_id INTEGER NOT NULL REFERENCES "
    "groups(id),"
    " description TEXT NOT NULL DEFAULT '', image TEXT NOT NULL, image_kind TEXT NOT NULL,"
    " gpus INTEGER NOT NULL, cpus INTEGER NOT NULL, mem_bytes INTEGER NOT NULL,"
    " entry TEXT NOT NULL, args TEXT NOT NULL, env TEXT NOT NULL, train_set TEXT, val_set TEXT,"
    " max_runtime_ms INTEGER NOT NULL, created_at INTEGER NOT NULL, UNIQUE(user_id, name)) STRICT;"
    "CREATE INDEX trainings_group ON trainings(group_id, id);"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY,"
    " training_id INTEGER NOT NULL REFERENCES trainings(id) ON DELETE CASCADE,"
    " number INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',"
    " exit_code INTEGER, signal INTEGER, created_at INTEGER NOT NULL, queued_at INTEGER,"
    " started_at INTEGER, ended_at INTEGER, gpus TEXT NOT NULL DEFAULT '',"
    " cpus INTEGER NOT NULL DEFAULT 0, mem_bytes INTEGER NOT NULL DEFAULT 0,"
    " executor TEXT NOT NULL DEFAULT 'local', executor_id TEXT NOT NULL DEFAULT '',"
    " log_start INTEGER, log_end INTEGER, UNIQUE(training_id, number)) STRICT;"
    "CREATE INDEX runs_active ON runs(state)"
    " WHERE state NOT IN ('succeeded', 'failed', 'stopped', 'timed_out');"
    "CREATE TABLE run_events(id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, at INTEGER NOT NULL,"
    " state TEXT NOT NULL, reason TEXT NOT NULL) STRICT;"
    "CREATE INDEX run_events_run ON run_events(run_id, id);",
    /* 2: datasets, their formatted sets and the jobs that import and format them */
    "CREATE TABLE datasets(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " group_id INTEGER REFERENCES groups(id), owner_id INTEGER REFERENCES users(id),"
    " description TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', samples INTEGER NOT NULL DEFAULT 0,"
    " classes TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL) STRICT;"
    "CREATE UNIQUE INDEX datasets_name ON datasets(name, ifnull(group_id, 0));"
    "CREATE TABLE dataset_sets(id INTEGER PRIMARY KEY,"
    " dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    " format TEXT NOT NULL, percent INTEGER NOT NULL, complement INTEGER,"
    " samples INTEGER NOT NULL, bytes INTEGER NOT NULL, options TEXT NOT NULL DEFAULT '{}',"
    " created_at INTEGER NOT NULL, UNIQUE(dataset_id, format, percent)) STRICT;"
    "CREATE TABLE dataset_jobs(id INTEGER PRIMARY KEY,"
    " dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    " kind TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',"
    " options TEXT NOT NULL DEFAULT '{}', executor_id TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL, ended_at INTEGER) STRICT;"
    "CREATE INDEX dataset_jobs_active ON dataset_jobs(state) WHERE state = 'running';",
    /* 3: metrics: per-training log parser settings, per-run report tokens and ingest offsets,
     * series with their running summary, and points keyed (series, step) */
    "ALTER TABLE trainings ADD COLUMN metrics_parser TEXT;"
    "ALTER TABLE trainings ADD COLUMN metric_rules TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE runs ADD COLUMN report_token_hash TEXT;"
    "ALTER TABLE runs ADD COLUMN metrics_offset INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE metric_series(id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, name TEXT NOT NULL,"
    " phase TEXT NOT NULL DEFAULT '', count INTEGER NOT NULL DEFAULT 0,"
    " last_step INTEGER NOT NULL DEFAULT 0, last_value REAL NOT NULL DEFAULT 0,"
    " last_time INTEGER NOT NULL DEFAULT 0, min_value REAL, max_value REAL,"
    " UNIQUE(run_id, name, phase)) STRICT;"
    "CREATE TABLE metric_points(series_id INTEGER NOT NULL REFERENCES metric_series(id)"
    " ON DELETE CASCADE, step INTEGER NOT NULL, value REAL NOT NULL, time INTEGER NOT NULL,"
    " epoch INTEGER, PRIMARY KEY(series_id, step)) STRICT, WITHOUT ROWID;",
    /* 4: the node a run ran on (a Slurm executor's node; the host's name for local runs) */
    "ALTER TABLE runs ADD COLUMN node TEXT NOT NULL DEFAULT '';",
    /* 5: per-series buckets of 64, 512 and 4096 consecutive points (first, last, min, max),
     * kept at ingest, that long series are downsampled from; buckets_ok = 0 (the existing
     * series) has them rebuilt from the points when first needed */
    "ALTER TABLE metric_series ADD COLUMN buckets_ok INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE metric_buckets(series_id INTEGER NOT NULL REFERENCES metric_series(id)"
    " ON DELETE CASCADE, level INTEGER NOT NULL, bucket INTEGER NOT NULL,"
    " first_step INTEGER NOT NULL, first_value REAL NOT NULL, first_time INTEGER NOT NULL,"
    " last_step INTEGER NOT NULL, last_value REAL NOT NULL, last_time INTEGER NOT NULL,"
    " min_step INTEGER NOT NULL, min_value REAL NOT NULL, min_time INTEGER NOT NULL,"
    " max_step INTEGER NOT NULL, max_value REAL NOT NULL, max_time INTEGER NOT NULL,"
    " PRIMARY KEY(series_id, level, bucket)) STRICT, WITHOUT ROWID;",
};

int store_fail(struct ava_store *st, const char *what, char *err) {
    int rc = sqlite3_extended_errcode(st->db);
    int code = AVA_EIO;
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        code = AVA_EEXISTS;
    else if ((rc & 0xff) == SQLITE_CONSTRAINT)
        code = AVA_EINVALID;
    return ava_err(err, code, "%s: %s", what, sqlite3_errmsg(st->db));
}

sqlite3_stmt *store_stmt(struct ava_store *st, const char *sql, char *err) {
    for (int i = 0; i < st->ncache; i++)
        if (st->cache[i].sql == sql) {
            /* every parameter is bound again by the caller: no clear_bindings needed */
            sqlite3_reset(st->cache[i].stmt);
            return st->cache[i].stmt;
        }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        store_fail(st, "prepare", err);
        return NULL;
    }
    if (st->ncache < STORE_STMT_CACHE) {
        st->cache[st->ncache].sql = sql;
        st->cache[st->ncache].stmt = s;
        st->ncache++;
    } else {
        /* the cache is sized for every statement the store has; growing past it is a bug */
        abort();
    }
    return s;
}

void store_col_text(sqlite3_stmt *s, int i, char *out, size_t outlen) {
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, outlen, "%s", t ? (const char *)t : "");
}

char *store_col_strdup(sqlite3_stmt *s, int i) {
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? ava_xstrdup((const char *)t) : NULL;
}

int store_collect(struct ava_store *st, sqlite3_stmt *s, size_t size, store_row_fn fill,
                  void (*release)(void *elem), void **out, size_t *n, const char *what, char *err) {
    size_t cap = 16, cnt = 0;
    char *v = ava_xmalloc(cap * size);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap)
            v = ava_xrealloc(v, (cap *= 2) * size);
        fill(s, v + cnt++ * size);
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; release && i < cnt; i++)
            release(v + i * size);
        free(v);
        return store_fail(st, what, err);
    }
    *out = v;
    *n = cnt;
    return 0;
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v) {
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

/* Runs SQL text without results. */
static int exec_sql(struct ava_store *st, const char *sql, const char *what, char *err) {
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int r = ava_err(err, AVA_EIO, "%s: %s", what, msg ? msg : "unknown error");
        sqlite3_free(msg);
        return r;
    }
    return 0;
}

int ava_store_schema_version(struct ava_store *st) {
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    return v;
}

/* Applies every migration past the stored version, each in its own transaction. */
static int migrate(struct ava_store *st, char *err) {
    int have = ava_store_schema_version(st);
    int want = (int)(sizeof migrations / sizeof migrations[0]);
    if (have < 0)
        return ava_err(err, AVA_EIO, "cannot read the schema version");
    if (have > want)
        return ava_err(err, AVA_EINVALID,
                       "the database has schema version %d, newer than this avad (%d): "
                       "upgrade avad",
                       have, want);
    for (int v = have; v < want; v++) {
        char setv[64];
        snprintf(setv, sizeof setv, "PRAGMA user_version = %d", v + 1);
        int r = exec_sql(st, "BEGIN IMMEDIATE", "migration", err);
        if (r == 0)
            r = exec_sql(st, migrations[v], "migration", err);
        if (r == 0)
            r = exec_sql(st, setv, "migration", err);
        if (r == 0)
            r = exec_sql(st, "COMMIT", "migration", err);
        if (r < 0) {
            exec_sql(st, "ROLLBACK", "rollback", NULL);
            return r;
        }
    }
    return 0;
}

int ava_store_open(const char *path, struct ava_store **out, char *err) {
    struct ava_store *st = ava_xcalloc(1, sizeof *st);
    /* one connection, used by one thread (avad's loop): SQLite's own mutexes are not needed */
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        int r = ava_err(err, AVA_EIO, "cannot open database %s: %s", path,
                        st->db ? sqlite3_errmsg(st->db) : "out of memory");
        ava_store_close(st);
        return r;
    }
    sqlite3_busy_timeout(st->db, 5000);
    int r = exec_sql(st,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
                     "database settings", err);
    if (r == 0)
        r = migrate(st, err);
    if (r < 0) {
        ava_store_close(st);
        return r;
    }
    *out = st;
    return 0;
}

void ava_store_close(struct ava_store *st) {
    if (!st)
        return;
    for (int i = 0; i < st->ncache; i++)
        sqlite3_finalize(st->cache[i].stmt);
    sqlite3_close(st->db);
    free(st);
}

int ava_store_begin(struct ava_store *st, char *err) {
    return exec_sql(st, "BEGIN IMMEDIATE", "begin", err);
}

int ava_store_commit(struct ava_store *st, char *err) {
    return exec_sql(st, "COMMIT", "commit", err);
}

void ava_store_rollback(struct ava_store *st) {
    if (!sqlite3_get_autocommit(st->db))
        exec_sql(st, "ROLLBACK", "rollback", NULL);
}
