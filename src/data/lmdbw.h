/* lmdbw.h: Caffe LMDB writing: Datum protobuf values under "%08d_<path>" keys in the
 * unnamed main database of DIR/data.mdb, as Caffe's convert_imageset writes them and its
 * data layer reads them (see the project's formats reference). */
#ifndef AVA_DATA_LMDBW_H
#define AVA_DATA_LMDBW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Caffe's Datum (proto2): fields 1 channels, 2 height, 3 width, 4 data, 5 label,
 * 6 float_data (unused here), 7 encoded. */
struct ava_datum {
    int channels, height, width; /* 0 for encoded datums: not written */
    const uint8_t *data;         /* raw: planar CHW in BGR order; encoded: the image file */
    size_t len;
    int label;
    bool encoded;
};

/* Serialises d into *out (malloc'd, *len bytes; caller frees) exactly as protobuf's C++
 * serialiser does for Caffe's message (fields in number order, encoded written even when
 * false for raw datums as convert_imageset does). */
int ava_datum_encode(const struct ava_datum *d, uint8_t **out, size_t *len, char *err);
/* Parses a serialised Datum (for tests and readers). data points into buf. Returns 0 or
 * AVA_EINVALID for malformed input (truncated varint, wrong wire type, length past end). */
int ava_datum_decode(const uint8_t *buf, size_t len, struct ava_datum *d, char *err);

struct ava_lmdb_writer;
/* Creates DIR (must not exist, like convert_imageset) with data.mdb and lock.mdb. */
int ava_lmdb_writer_open(const char *dir, struct ava_lmdb_writer **out, char *err);
/* Puts one datum under key sprintf("%08d_%s", index, name). Commits every 1000 puts; grows
 * the map (doubling) on MDB_MAP_FULL and retries. */
int ava_lmdb_writer_put(struct ava_lmdb_writer *w, int index, const char *name,
                        const struct ava_datum *d, char *err);
/* Commits and closes; frees w in every case. */
int ava_lmdb_writer_close(struct ava_lmdb_writer *w, char *err);

#endif
