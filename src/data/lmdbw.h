/* lmdbw.h: Caffe LMDB writing: Datum protobuf values under "%08d_<path>" keys in the
 * unnamed main database of DIR/data.mdb, as Caffe's convert_imageset writes them and its
 * data layer reads them (see the project's formats reference). */
#ifndef AVA_DATA_LMDBW_H
#define AVA_DATA_LMDBW_H

#include "datum.h" /* struct ava_datum, ava_datum_encode/decode: the values put here */

#include <stddef.h>

/* While every key sorts after the ones before it (a formatted set's keys always do), the
 * writer lays out data.mdb's B+tree itself, as one LMDB transaction of MDB_APPEND puts would:
 * each datum is encoded straight into its leaf page and the pages stream out through a
 * background thread; close writes the meta pages, syncs, and reads the tree back through
 * LMDB (which also creates lock.mdb). The same puts give byte-identical files. At the first
 * key that does not sort last (it may exist) the tree so far is finished and LMDB takes
 * over: from then on puts and commits run on the writer's own thread while the caller
 * prepares the next transaction (a put whose key may already exist is waited for, so
 * AVA_EEXISTS is still its own). Either way a write error may be reported by a later put or
 * by close. */
struct ava_lmdb_writer;
/* Creates DIR (must not exist, like convert_imageset) with data.mdb and lock.mdb. Returns 0,
 * AVA_EEXISTS when DIR exists, AVA_EIO. *out: ava_lmdb_writer_close. The map starts at
 * AVA_LMDB_INITIAL_MAP bytes and doubles whenever it fills. */
int ava_lmdb_writer_open(const char *dir, struct ava_lmdb_writer **out, char *err);
#define AVA_LMDB_INITIAL_MAP ((size_t)64 << 20)
/* The same with a chosen initial map size in bytes (rounded up to whole pages, at least
 * 64 KiB; tests use a tiny one to exercise the growth). */
int ava_lmdb_writer_open_mapsize(const char *dir, size_t initial_map, struct ava_lmdb_writer **out,
                                 char *err);
/* Puts one datum under key sprintf("%08d_%s", index, name) (index >= 0; the key must fit
 * LMDB's 511-byte limit). Through LMDB (after an out-of-order key): commits every 1000 puts,
 * or earlier once the puts not yet committed hold 64 MiB, which bounds the memory kept to
 * redo them; grows the map (doubling) on MDB_MAP_FULL and redoes them. The map size recorded
 * by bulk writing is likewise the initial one doubled until it holds the file. Returns 0,
 * AVA_EINVALID (bad datum, index or key),
 * AVA_EEXISTS (the key was put before; the writer stays usable), AVA_ETOOLARGE (the map would
 * pass 1 TiB), AVA_EIO (the writer then refuses further puts). */
int ava_lmdb_writer_put(struct ava_lmdb_writer *w, int index, const char *name,
                        const struct ava_datum *d, char *err);
/* Commits (or writes the tree's last pages and the metas), syncs data.mdb and the directory
 * to disk and closes; frees w in every case. NULL is a no-op. */
int ava_lmdb_writer_close(struct ava_lmdb_writer *w, char *err);

#endif
