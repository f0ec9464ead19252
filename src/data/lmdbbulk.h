/* lmdbbulk.h: LMDB's data.mdb written directly, page by page, for keys that come in sorted
 * order: the B+tree that one transaction of MDB_APPEND puts would leave (leaves, overflow
 * runs, branch pages, then the two meta pages), each datum encoded straight into its page,
 * the pages streamed out by a background thread. Internal to src/data: the LMDB writer
 * (lmdbw.c) uses it while every key sorts last and hands over to LMDB itself after. The
 * layout follows LMDB 0.9's mdb.c; LMDB opens the result as if it had written it. */
#ifndef AVA_DATA_LMDBBULK_H
#define AVA_DATA_LMDBBULK_H

#include "datum.h"

#include <stdbool.h>
#include <stddef.h>

/* The largest map an LMDB set may have (1 TiB), for the bulk writer and LMDB alike. */
#define AVA_LMDB_MAP_MAX ((size_t)1 << 40)

/* One data.mdb being written: its file, the two stream buffers, the open leaf, the branch
 * pages being gathered and the I/O thread. Used by one thread at a time. */
struct ava_lmdb_bulk;

/* Creates DIR/data.mdb (DIR must exist; the file must not) for bulk writing, with the
 * system's page size, which LMDB also takes for a new environment. Returns 0 with *out
 * set (caller: ava_lmdb_bulk_free), 0 with *out NULL when that page size is outside
 * 4 KiB..32 KiB (the layout here does not fit it: nothing is created, LMDB must write the
 * set), or AVA_EIO when the file cannot be created (*out NULL). */
int ava_lmdb_bulk_open(const char *dir, struct ava_lmdb_bulk **out, char *err);

/* Appends key (klen bytes, 1..511, sorting after every key put before in LMDB's default
 * order: memcmp, then the shorter first; not checked here) -> d, a datum that
 * ava_datum_check accepted with vlen its encoded size. d's bytes are read before this
 * returns and not kept. Returns 0, AVA_ETOOLARGE (the file would pass AVA_LMDB_MAP_MAX or the
 * tree 32 levels), or AVA_EIO (a write failed, perhaps one of an earlier put's pages: writes
 * are asynchronous). After a failure only ava_lmdb_bulk_free may follow (a write failure
 * or a full map also makes every later put and ava_lmdb_bulk_finish fail with AVA_EIO). */
int ava_lmdb_bulk_put(struct ava_lmdb_bulk *b, const char *key, size_t klen,
                      const struct ava_datum *d, size_t vlen, char *err);

/* Finishes the tree (the open leaf, the last branch pages, the root), waits until every
 * page is written, then writes the two meta pages: page 0 as LMDB initialises an
 * environment, page 1 as the first commit leaves it. The map size recorded is *mapsize
 * (in/out, whole pages) doubled until it holds the file, at most AVA_LMDB_MAP_MAX; *mapsize
 * gets it, for the caller's mdb_env_set_mapsize. Nothing is synced (see
 * ava_lmdb_bulk_sync_start and ava_lmdb_bulk_free). Call at most once, and only
 * ava_lmdb_bulk_sync_start or ava_lmdb_bulk_free after it. Returns 0, AVA_ETOOLARGE, AVA_EIO
 * (also for a writer broken earlier). */
int ava_lmdb_bulk_finish(struct ava_lmdb_bulk *b, size_t *mapsize, char *err);

/* After a successful ava_lmdb_bulk_finish: starts data.mdb's fsync on the I/O thread so that
 * the caller's next steps (e.g. LMDB reading the file back) overlap it. Its result is
 * reported by ava_lmdb_bulk_free(b, true, ...). No-op when there is no I/O thread (the sync
 * then runs in ava_lmdb_bulk_free) or after a write failure. */
void ava_lmdb_bulk_sync_start(struct ava_lmdb_bulk *b);

/* Stops the I/O thread (after the job in flight), fsyncs data.mdb when sync is true and rc is
 * 0 (or takes the result of the fsync ava_lmdb_bulk_sync_start began), closes it and frees b.
 * rc is the caller's result so far: returned unchanged when non-zero (err untouched);
 * otherwise the result is 0 or AVA_EIO (sync or close failed; err says which). The file stays
 * on disk either way. NULL is a no-op that returns rc. */
int ava_lmdb_bulk_free(struct ava_lmdb_bulk *b, bool sync, int rc, char *err);

#endif
