/* datum.h: Caffe's Datum message (caffe.proto, proto2) encoded and decoded byte for byte as
 * protobuf's C++ serialiser and parser handle it, for the LMDB sets that Caffe's
 * convert_imageset writes and its data layer reads (see the project's formats reference).
 * Besides whole-message encode/decode, the pieces of an encoding are exposed so that a
 * writer can encode a Datum straight into its destination (an LMDB page) without a copy. */
#ifndef AVA_DATA_DATUM_H
#define AVA_DATA_DATUM_H

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
 * false for raw datums as convert_imageset does). A raw datum needs channels*height*width ==
 * len (else AVA_EINVALID); an encoded one's shape fields are ignored. AVA_ETOOLARGE past
 * 2 GiB - 64 bytes of data (Caffe reads at most INT_MAX bytes). */
int ava_datum_encode(const struct ava_datum *d, uint8_t **out, size_t *len, char *err);
/* Parses a serialised Datum (for tests and readers). data points into buf. Returns 0 or
 * AVA_EINVALID for malformed input (truncated varint, wrong wire type, length past end). */
int ava_datum_decode(const uint8_t *buf, size_t len, struct ava_datum *d, char *err);

/* ---- encoding in place: check once, then write into memory the caller provides ---- */

/* The most bytes ava_datum_write_head writes: three shape fields and the data's key and
 * length, each a key byte and a varint of at most 10 bytes. */
#define AVA_DATUM_HEAD_MAX (4 + 4 * 10)
/* The most bytes ava_datum_write_tail writes: label (key, varint) and encoded (key, byte). */
#define AVA_DATUM_TAIL_MAX (3 + 10)

/* Validates d as ava_datum_encode does (same codes and messages: AVA_EINVALID for data
 * missing or a raw shape that does not describe len bytes, AVA_ETOOLARGE past 2 GiB - 64
 * bytes) and sets *size to the length of its encoding. Returns 0 or that code; *size is
 * untouched on failure. The ava_datum_write* functions below need a datum checked here. */
int ava_datum_check(const struct ava_datum *d, size_t *size, char *err);
/* Writes the whole encoding of a checked datum at p, which must hold the *size bytes that
 * ava_datum_check gave; the result equals ava_datum_encode's. Nothing is allocated. */
void ava_datum_write(const struct ava_datum *d, uint8_t *p);
/* Writes the part of a checked datum's encoding that precedes its data bytes (the shape
 * fields of a raw datum, the data's key and length) at p, which must hold
 * AVA_DATUM_HEAD_MAX bytes; returns how many it wrote. With the d->len data bytes and
 * ava_datum_write_tail's bytes after it, it makes up ava_datum_write's output, so that a
 * large datum's bytes can be written from where they are (e.g. with pwrite). */
size_t ava_datum_write_head(const struct ava_datum *d, uint8_t *p);
/* Writes the part of a checked datum's encoding that follows its data bytes (label,
 * encoded) at p, which must hold AVA_DATUM_TAIL_MAX bytes; returns how many it wrote. */
size_t ava_datum_write_tail(const struct ava_datum *d, uint8_t *p);

#endif
