/* internal.h: what the store's files share: the connection, the statement cache and small
 * column helpers. Not part of the store's interface. */
#ifndef AVA_STORE_INTERNAL_H
#define AVA_STORE_INTERNAL_H

#include "store.h"

#include <sqlite3.h>

#define STORE_STMT_CACHE 128

struct ava_store {
    sqlite3 *db;
    struct {
        const char *sql; /* the literal's address is the cache key */
        sqlite3_stmt *stmt;
    } cache[STORE_STMT_CACHE];
    int ncache;
};

/* Returns a reset prepared statement for a string literal, cached for the store's life. */
sqlite3_stmt *store_stmt(struct ava_store *st, const char *sql, char *err);
/* Maps the connection's last error to an AVA_E* code with a message prefixed by what. */
int store_fail(struct ava_store *st, const char *what, char *err);
/* Copies column i as text into out (outlen), "" for NULL. */
void store_col_text(sqlite3_stmt *s, int i, char *out, size_t outlen);
/* Returns column i as a malloc'd string, or NULL for NULL. */
char *store_col_strdup(sqlite3_stmt *s, int i);
/* Fills one element from the current row of a statement. */
typedef void (*store_row_fn)(sqlite3_stmt *s, void *elem);
/* Steps s to its end, appending one element of `size` bytes per row, filled by fill.
 * *out (malloc'd) and *n belong to the caller. On an error the elements collected so far
 * are passed to release (may be NULL) and freed; what names the query in the message. */
int store_collect(struct ava_store *st, sqlite3_stmt *s, size_t size, store_row_fn fill,
                  void (*release)(void *elem), void **out, size_t *n, const char *what, char *err);
/* Binds text or NULL. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);

#endif
