/* datum.c: Caffe's Datum protobuf message, encoded (whole, or in pieces straight into a
 * caller's memory) and decoded, with protobuf's wire format written out by hand: varints,
 * keys of field number and wire type, fields in the order protobuf's C++ serialiser uses. */
#include "datum.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <stdlib.h>
#include <string.h>

/* protobuf wire types */
enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_FIXED32 = 5 };
/* Datum field numbers (caffe.proto) */
enum { F_CHANNELS = 1, F_HEIGHT = 2, F_WIDTH = 3, F_DATA = 4, F_LABEL = 5, F_FLOAT = 6, F_ENC = 7 };
/* Caffe reads a Datum with a limit of INT_MAX bytes; keep well inside it. */
#define DATUM_DATA_MAX ((size_t)INT32_MAX - 64)
#define VARINT_MAX_BYTES 10
_Static_assert(AVA_DATUM_HEAD_MAX == 4 + 4 * VARINT_MAX_BYTES, "shape fields, data key and length");
_Static_assert(AVA_DATUM_TAIL_MAX == 3 + VARINT_MAX_BYTES, "label and encoded");

/* The length of v's varint: 7 bits a byte. */
static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v as a varint at p (low 7 bits first); returns the byte after it. */
static uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* protobuf writes an int32 as the varint of its 64-bit sign extension (10 bytes if < 0). */
static uint64_t int32_wire(int v) {
    return (uint64_t)(int64_t)v;
}

/* A field's key byte (field numbers here are below 16: one byte). */
static uint8_t tag(int field, int wire_type) {
    return (uint8_t)(field << 3 | wire_type);
}

/* Refuses a raw datum whose shape does not describe exactly its bytes. */
static int check_raw_shape(const struct ava_datum *d, char *err) {
    if (d->channels <= 0 || d->height <= 0 || d->width <= 0)
        return ava_err(err, AVA_EINVALID, "raw datum with shape %dx%dx%d: dimensions must be > 0",
                       d->channels, d->height, d->width);
    uint64_t need = (uint64_t)d->channels * (uint64_t)d->height;
    if (need > DATUM_DATA_MAX || need * (uint64_t)d->width != d->len)
        return ava_err(err, AVA_EINVALID, "raw datum of shape %dx%dx%d does not hold %zu bytes",
                       d->channels, d->height, d->width, d->len);
    return 0;
}

/* Validates d and computes the size of its encoding (see datum.h). */
int ava_datum_check(const struct ava_datum *d, size_t *size, char *err) {
    if (d->len && !d->data)
        return ava_err(err, AVA_EINVALID, "datum without data");
    if (d->len > DATUM_DATA_MAX)
        return ava_err(err, AVA_ETOOLARGE, "a datum of %zu bytes is too large for Caffe", d->len);
    if (!d->encoded) {
        int rc = check_raw_shape(d, err);
        if (rc)
            return rc;
    }
    size_t n = 1 + varint_len(d->len) + d->len + 1 + varint_len(int32_wire(d->label)) + 2;
    if (!d->encoded)
        n += 3 + varint_len(int32_wire(d->channels)) + varint_len(int32_wire(d->height)) +
             varint_len(int32_wire(d->width));
    *size = n;
    return 0;
}

/* Writes the encoding of a checked datum up to its data bytes at p (at most
 * AVA_DATUM_HEAD_MAX bytes) and returns its length. Field order and presence follow what
 * protobuf's C++ serialiser emits for the Datum that convert_imageset fills: raw
 * (CVMatToDatum + set_label) has channels, height, width, data, label and encoded = false,
 * all explicitly set; encoded (ReadFileToDatum) has data, label and encoded = true. Set
 * proto2 fields are written even when they equal the default. */
size_t ava_datum_write_head(const struct ava_datum *d, uint8_t *p) {
    uint8_t *start = p;
    if (!d->encoded) {
        *p++ = tag(F_CHANNELS, WT_VARINT);
        p = put_varint(p, int32_wire(d->channels));
        *p++ = tag(F_HEIGHT, WT_VARINT);
        p = put_varint(p, int32_wire(d->height));
        *p++ = tag(F_WIDTH, WT_VARINT);
        p = put_varint(p, int32_wire(d->width));
    }
    *p++ = tag(F_DATA, WT_LEN);
    p = put_varint(p, d->len);
    return (size_t)(p - start);
}

/* Writes the fields after the data bytes (label, encoded) at p; returns their length. */
size_t ava_datum_write_tail(const struct ava_datum *d, uint8_t *p) {
    uint8_t *start = p;
    *p++ = tag(F_LABEL, WT_VARINT);
    p = put_varint(p, int32_wire(d->label));
    *p++ = tag(F_ENC, WT_VARINT);
    *p++ = d->encoded ? 1 : 0;
    return (size_t)(p - start);
}

/* Writes the whole encoding of a checked datum at p. */
void ava_datum_write(const struct ava_datum *d, uint8_t *p) {
    p += ava_datum_write_head(d, p);
    if (d->len)
        memcpy(p, d->data, d->len);
    ava_datum_write_tail(d, p + d->len);
}

/* Checks d, then writes its encoding into a buffer of its exact size. */
int ava_datum_encode(const struct ava_datum *d, uint8_t **out, size_t *len, char *err) {
    *out = NULL;
    *len = 0;
    size_t n;
    int rc = ava_datum_check(d, &n, err);
    if (rc)
        return rc;
    *out = ava_xmalloc(n);
    ava_datum_write(d, *out);
    *len = n;
    return 0;
}

/* Reads a varint at *p (< end). Returns 0, or AVA_EINVALID when truncated or over 10 bytes. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v, char *err) {
    uint64_t x = 0;
    const uint8_t *q = *p;
    for (int i = 0; i < VARINT_MAX_BYTES; i++) {
        if (q >= end)
            return ava_err(err, AVA_EINVALID, "malformed Datum: truncated varint");
        uint8_t b = *q++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *p = q;
            *v = x;
            return 0;
        }
    }
    return ava_err(err, AVA_EINVALID, "malformed Datum: varint longer than 10 bytes");
}

/* The wire type each Datum field must have; -1 for fields Caffe's Datum does not have. */
static int expected_wire_type(uint64_t field) {
    switch (field) {
    case F_CHANNELS:
    case F_HEIGHT:
    case F_WIDTH:
    case F_LABEL:
    case F_ENC:
        return WT_VARINT;
    case F_DATA:
        return WT_LEN;
    case F_FLOAT:
        return WT_FIXED32; /* or packed (WT_LEN); both accepted */
    default:
        return -1;
    }
}

/* Skips or reads the value of one field whose key has been read. *v receives a varint value,
 * or the length of a length-delimited one (then *p stays at its first byte). */
static int read_value(const uint8_t **p, const uint8_t *end, int wt, uint64_t *v, char *err) {
    size_t skip;
    switch (wt) {
    case WT_VARINT:
        return get_varint(p, end, v, err);
    case WT_LEN: {
        int rc = get_varint(p, end, v, err);
        if (rc)
            return rc;
        if (*v > (uint64_t)(end - *p))
            return ava_err(err, AVA_EINVALID,
                           "malformed Datum: a field of %llu bytes runs past the end (%td left)",
                           (unsigned long long)*v, end - *p);
        return 0;
    }
    case WT_FIXED64:
        skip = 8;
        break;
    case WT_FIXED32:
        skip = 4;
        break;
    case WT_SGROUP:
    case WT_EGROUP:
        return ava_err(err, AVA_EINVALID,
                       "malformed Datum: groups (wire type %d) are not used "
                       "by Caffe's Datum",
                       wt);
    default:
        return ava_err(err, AVA_EINVALID, "malformed Datum: unknown wire type %d", wt);
    }
    if ((size_t)(end - *p) < skip)
        return ava_err(err, AVA_EINVALID, "malformed Datum: truncated fixed-size field");
    *p += skip;
    return 0;
}

/* Stores one field's value in d (fields Caffe does not define are skipped, as protobuf does). */
static void store_field(struct ava_datum *d, uint64_t field, int wt, uint64_t v,
                        const uint8_t *at) {
    switch (field) {
    case F_CHANNELS:
        d->channels = (int)(int32_t)(uint32_t)v; /* protobuf keeps the low 32 bits */
        break;
    case F_HEIGHT:
        d->height = (int)(int32_t)(uint32_t)v;
        break;
    case F_WIDTH:
        d->width = (int)(int32_t)(uint32_t)v;
        break;
    case F_LABEL:
        d->label = (int)(int32_t)(uint32_t)v;
        break;
    case F_ENC:
        d->encoded = v != 0;
        break;
    case F_DATA:
        d->data = at;
        d->len = (size_t)v;
        break;
    default:
        (void)wt;
        break;
    }
}

/* Reads field after field; a field met again replaces the earlier value, as in protobuf. */
int ava_datum_decode(const uint8_t *buf, size_t len, struct ava_datum *d, char *err) {
    memset(d, 0, sizeof *d);
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        uint64_t key, v = 0;
        int rc = get_varint(&p, end, &key, err);
        if (rc)
            return rc;
        uint64_t field = key >> 3;
        int wt = (int)(key & 7);
        if (field == 0 || field > INT32_MAX >> 2)
            return ava_err(err, AVA_EINVALID, "malformed Datum: bad field number %llu",
                           (unsigned long long)field);
        int want = expected_wire_type(field);
        if (want >= 0 && wt != want && !(field == F_FLOAT && wt == WT_LEN))
            return ava_err(err, AVA_EINVALID,
                           "malformed Datum: field %llu has wire type %d, expected %d",
                           (unsigned long long)field, wt, want);
        if ((rc = read_value(&p, end, wt, &v, err)))
            return rc;
        store_field(d, field, wt, v, p);
        if (wt == WT_LEN)
            p += v;
    }
    return 0;
}
