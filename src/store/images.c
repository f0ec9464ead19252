/* images.c: the image registry's rows: public images (group NULL) and private ones. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_COLS                                                                                 \
    "i.id, i.name, i.tag, ifnull(i.group_id, 0), ifnull(i.owner_id, 0), ifnull(u.name, ''),"       \
    " ifnull(g.name, ''), i.kind, i.description, i.entry, i.env, i.metrics_parser, i.available,"   \
    " i.unavailable_reason, i.created_at FROM images i LEFT JOIN users u ON u.id = i.owner_id"     \
    " LEFT JOIN groups g ON g.id = i.group_id"

void ava_image_free(struct ava_image *img) {
    if (!img)
        return;
    free(img->description);
    free(img->entry);
    free(img->env_json);
    free(img->metrics_parser);
    free(img->unavailable_reason);
    memset(img, 0, sizeof *img);
}

void ava_image_list_free(struct ava_image *imgs, size_t n) {
    for (size_t i = 0; i < n; i++)
        ava_image_free(&imgs[i]);
    free(imgs);
}

/* ava_image_free for store_collect. */
static void image_release(void *elem) {
    ava_image_free(elem);
}

/* Fills an image from a row selected with IMAGE_COLS. */
static void image_from_row(sqlite3_stmt *s, void *elem) {
    struct ava_image *img = elem;
    memset(img, 0, sizeof *img);
    img->id = sqlite3_column_int64(s, 0);
    store_col_text(s, 1, img->name, sizeof img->name);
    store_col_text(s, 2, img->tag, sizeof img->tag);
    img->group_id = sqlite3_column_int64(s, 3);
    img->owner_id = sqlite3_column_int64(s, 4);
    store_col_text(s, 5, img->owner, sizeof img->owner);
    store_col_text(s, 6, img->group, sizeof img->group);
    store_col_text(s, 7, img->kind, sizeof img->kind);
    img->description = store_col_strdup(s, 8);
    img->entry = store_col_strdup(s, 9);
    img->env_json = store_col_strdup(s, 10);
    img->metrics_parser = store_col_strdup(s, 11);
    img->available = sqlite3_column_int(s, 12) != 0;
    img->unavailable_reason = store_col_strdup(s, 13);
    img->created_at = sqlite3_column_int64(s, 14);
}

/* Binds the manifest fields shared by insert and upsert, starting at parameter 1. */
static void bind_manifest(sqlite3_stmt *s, const struct ava_image *img) {
    sqlite3_bind_text(s, 1, img->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, img->tag, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, img->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, img->description ? img->description : "", -1, SQLITE_TRANSIENT);
    store_bind_text(s, 5, img->entry);
    sqlite3_bind_text(s, 6, img->env_json ? img->env_json : "{}", -1, SQLITE_TRANSIENT);
    store_bind_text(s, 7, img->metrics_parser);
    sqlite3_bind_int(s, 8, img->available);
    store_bind_text(s, 9, img->unavailable_reason);
    sqlite3_bind_int64(s, 10, ava_now_ms());
}

int ava_store_image_upsert_public(struct ava_store *st, const struct ava_image *img, char *err) {
    static const char sql[] =
        "INSERT INTO images(name, tag, kind, description, entry, env, metrics_parser, available,"
        " unavailable_reason, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        " ON CONFLICT(name, tag, ifnull(group_id, 0)) DO UPDATE SET kind = ?3, description = ?4,"
        " entry = ?5, env = ?6, metrics_parser = ?7, available = ?8, unavailable_reason = ?9";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    bind_manifest(s, img);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "store public image", err);
}

int ava_store_image_insert(struct ava_store *st, const struct ava_image *img, int64_t *id,
                           char *err) {
    struct ava_image existing;
    int r = ava_store_image_find(st, img->name, img->tag, img->group_id, &existing, NULL);
    if (r == 0) {
        ava_image_free(&existing);
        return ava_err(err, AVA_EEXISTS, "image %s:%s already exists", img->name, img->tag);
    }
    static const char sql[] =
        "INSERT INTO images(name, tag, kind, description, entry, env, metrics_parser, available,"
        " unavailable_reason, created_at, group_id, owner_id)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    bind_manifest(s, img);
    sqlite3_bind_int64(s, 11, img->group_id);
    sqlite3_bind_int64(s, 12, img->owner_id);
    if (sqlite3_step(s) != SQLITE_DONE)
        return store_fail(st, "store image", err);
    if (id)
        *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int ava_store_image_find(struct ava_store *st, const char *name, const char *tag, int64_t group_id,
                         struct ava_image *out, char *err) {
    static const char sql[] =
        "SELECT " IMAGE_COLS " WHERE i.name = ?1 AND i.tag = ?2 AND (i.group_id IS NULL OR"
        " i.group_id = ?3) ORDER BY i.group_id IS NULL LIMIT 1";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, tag, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, group_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        image_from_row(s, out);
        sqlite3_reset(s); /* a statement left on a row holds a read transaction (and the WAL) */
        return 0;
    }
    if (rc != SQLITE_DONE)
        return store_fail(st, "find image", err);
    return ava_err(err, AVA_ENOTFOUND, "image %s:%s not found (see 'ava image list')", name, tag);
}

int ava_store_image_list(struct ava_store *st, int64_t group_id, struct ava_image **out, size_t *n,
                         char *err) {
    static const char sql[] = "SELECT " IMAGE_COLS " WHERE i.group_id IS NULL OR i.group_id = ?1"
                              " ORDER BY i.group_id IS NOT NULL, i.name, i.tag";
    sqlite3_stmt *s = store_stmt(st, sql, err);
    if (!s)
        return AVA_EIO;
    sqlite3_bind_int64(s, 1, group_id);
    return store_collect(st, s, sizeof **out, image_from_row, image_release, (void **)out, n,
                         "list images", err);
}
