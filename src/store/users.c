/* users.c: groups and users, looked up by name or by token hash. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/timeutil.h"

#include <stdlib.h>
#include <string.h>

#define USER_COLS                                                                                  \
    "u.id, u.name, u.group_id, g.name, u.is_admin, u.created_at FROM users u"                      \
    " JOIN groups g ON g.id = u.group_id"

int ava_store_group_create(struct ava_store *st, const char *name, int64_t *id, char *err) {
    static const char sql[] = "INSERT INTO groups(name, created_at) VALUES(?, ?)";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, ava_now_ms());
    if (sqlite3_step(s) != SQLITE_DONE) {
        int r = store_fail(st, "create group", err);
        return r == AVA_EEXISTS ? ava_err(err, r, "group '%s' already exists", name) : r;
    }
    if (id)
        *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int ava_store_group_find(struct ava_store *st, const char *name, int64_t *id, char *err) {
    static const char sql[] = "SELECT id FROM groups WHERE name = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return 0;
    }
    if (rc != SQLITE_DONE)
        return store_fail(st, "find group", err);
    return ava_err(err, AVA_ENOTFOUND, "group '%s' not found", name);
}

int ava_store_group_each(struct ava_store *st, void (*fn)(void *, const char *, int64_t), void *ctx,
                         char *err) {
    static const char sql[] = "SELECT name, created_at FROM groups ORDER BY name";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1));
    return rc == SQLITE_DONE ? 0 : store_fail(st, "list groups", err);
}

/* Fills a user from a row selected with USER_COLS. */
static void user_from_row(sqlite3_stmt *s, void *elem) {
    struct ava_user *u = elem;
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(s, 0);
    store_col_text(s, 1, u->name, sizeof u->name);
    u->group_id = sqlite3_column_int64(s, 2);
    store_col_text(s, 3, u->group, sizeof u->group);
    u->admin = sqlite3_column_int(s, 4) != 0;
    u->created_at = sqlite3_column_int64(s, 5);
}

/* Steps a statement expected to return at most one user. */
static int user_one(struct ava_store *st, sqlite3_stmt *s, struct ava_user *out, const char *what,
                    char *err) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        user_from_row(s, out);
        sqlite3_reset(s);
        return 0;
    }
    if (rc != SQLITE_DONE)
        return store_fail(st, what, err);
    return ava_err(err, AVA_ENOTFOUND, "%s: no such user", what);
}

int ava_store_user_create(struct ava_store *st, const char *name, int64_t group_id, bool admin,
                          const char *token_hash, struct ava_user *out, char *err) {
    static const char sql[] =
        "INSERT INTO users(name, group_id, is_admin, token_hash, created_at) VALUES(?, ?, ?, ?, ?)";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, group_id);
    sqlite3_bind_int(s, 3, admin);
    sqlite3_bind_text(s, 4, token_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 5, ava_now_ms());
    if (sqlite3_step(s) != SQLITE_DONE) {
        int r = store_fail(st, "create user", err);
        return r == AVA_EEXISTS ? ava_err(err, r, "user '%s' already exists", name) : r;
    }
    return ava_store_user_find(st, name, out, err);
}

int ava_store_user_by_token(struct ava_store *st, const char *token_hash, struct ava_user *out,
                            char *err) {
    static const char sql[] = "SELECT " USER_COLS " WHERE u.token_hash = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, token_hash, -1, SQLITE_TRANSIENT);
    return user_one(st, s, out, "token", err);
}

int ava_store_user_find(struct ava_store *st, const char *name, struct ava_user *out, char *err) {
    static const char sql[] = "SELECT " USER_COLS " WHERE u.name = ?";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    int r = user_one(st, s, out, "find user", err);
    return r == AVA_ENOTFOUND ? ava_err(err, r, "user '%s' not found", name) : r;
}

int ava_store_user_list(struct ava_store *st, int64_t group_id, struct ava_user **out, size_t *n,
                        char *err) {
    static const char sql[] =
        "SELECT " USER_COLS " WHERE ?1 = 0 OR u.group_id = ?1 ORDER BY g.name, u.name";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, group_id);
    return store_collect(st, s, sizeof **out, user_from_row, NULL, (void **)out, n, "list users",
                         err);
}

int64_t ava_store_user_count(struct ava_store *st) {
    static const char sql[] = "SELECT count(*) FROM users";
    sqlite3_stmt *s = store_stmt(st, sql, NULL);
    int64_t n = s && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    if (s)
        sqlite3_reset(s);
    return n;
}
