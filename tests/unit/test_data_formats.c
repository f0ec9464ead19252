/* test_data_formats.c: src/data writers: RecordIO bytes, escaping and reader, Caffe Datum
 * bytes and LMDB sets, raw sets and im2rec lists, each against hand-derived golden bytes, and
 * the background file writer under them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/common/file.h"
#include "../../src/common/path.h"
#include "../../src/data/bgwrite.h"
#include "../../src/data/format.h"
#include "../../src/data/lmdbw.h"
#include "../../src/data/pack.h"
#include "../../src/data/rawset.h"
#include "../../src/data/recordio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* The magic word as it lies on disk, and a part header's lrec (cflag << 29 | len) as LE. */
#define M 0x0a, 0x23, 0xd7, 0xce
#define LREC(cflag, len)                                                                           \
    (len) & 0xff, ((len) >> 8) & 0xff, ((len) >> 16) & 0xff, ((cflag) << 5) | ((len) >> 24)

/* ---- helpers ---- */

static void make_tmpdir(char *out, size_t outlen) {
    snprintf(out, outlen, "/tmp/ava-test-formats-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static void remove_tmpdir(const char *dir) {
    assert_int_equal(ava_rm_rf(dir, NULL), 0);
}

static char *slurp(const char *path, size_t *len) {
    char err[AVA_ERRLEN] = "", *data = NULL;
    if (ava_file_read_all(path, 64u << 20, &data, len, err) != 0)
        fail_msg("read %s: %s", path, err);
    return data;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Fails with both byte strings in hex when they differ. */
static void check_bytes(const char *what, const void *got, size_t glen, const void *want,
                        size_t wlen) {
    if (glen == wlen && memcmp(got, want, wlen) == 0)
        return;
    char g[600] = "", w[600] = "";
    for (size_t i = 0; i < glen && i < 190; i++)
        sprintf(g + 3 * i, "%02x ", ((const uint8_t *)got)[i]);
    for (size_t i = 0; i < wlen && i < 190; i++)
        sprintf(w + 3 * i, "%02x ", ((const uint8_t *)want)[i]);
    fail_msg("%s:\n got  (%zu) %s\n want (%zu) %s", what, glen, g, wlen, w);
}

static void check_file(const char *path, const void *want, size_t wlen) {
    size_t n;
    char *got = slurp(path, &n);
    check_bytes(path, got, n, want, wlen);
    free(got);
}

/* xorshift64: reproducible test data */
static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- RecordIO writer: golden bytes ---- */

struct rec_case {
    const char *name;
    uint8_t in[20];
    size_t in_len;
    uint8_t out[64];
    size_t out_len;
};

/* Expected parts derived by hand from dmlc-core's WriteRecord: split at magic words at
 * offsets 0, 4, 8...; cflag 1 first part, 2 middle, 3 last, 0 unsplit; pad only at the end. */
static const struct rec_case rec_cases[] = {
    {"5 bytes",
     {'h', 'e', 'l', 'l', 'o'},
     5,
     {M, LREC(0, 5), 'h', 'e', 'l', 'l', 'o', 0, 0, 0},
     16},
    {"empty", {0}, 0, {M, LREC(0, 0)}, 8},
    {"aligned magic",
     {'A', 'B', 'C', 'D', M, 'E', 'F', 'G', 'H'},
     12,
     {M, LREC(1, 4), 'A', 'B', 'C', 'D', M, LREC(3, 4), 'E', 'F', 'G', 'H'},
     24},
    {"two magics",
     {'A', 'B', 'C', 'D', M, 'E', 'F', 'G', 'H', M, 'I', 'J'},
     18,
     {M, LREC(1, 4), 'A', 'B', 'C', 'D', M, LREC(2, 4), 'E', 'F', 'G', 'H', M, LREC(3, 2), 'I', 'J',
      0, 0},
     36},
    {"unaligned magic", {'A', 'B', M, 'C', 'D'}, 8, {M, LREC(0, 8), 'A', 'B', M, 'C', 'D'}, 16},
    {"unaligned magic, odd length",
     {'A', 'B', 'C', 'D', 'E', M},
     9,
     {M, LREC(0, 9), 'A', 'B', 'C', 'D', 'E', M, 0, 0, 0},
     20},
    {"starts with magic",
     {M, 'W', 'X', 'Y', 'Z'},
     8,
     {M, LREC(1, 0), M, LREC(3, 4), 'W', 'X', 'Y', 'Z'},
     20},
    {"only magic", {M}, 4, {M, LREC(1, 0), M, LREC(3, 0)}, 16},
    {"ends with magic",
     {'A', 'B', 'C', 'D', M},
     8,
     {M, LREC(1, 4), 'A', 'B', 'C', 'D', M, LREC(3, 0)},
     20},
    {"magic twice at start",
     {M, M, 'Q'},
     9,
     {M, LREC(1, 0), M, LREC(2, 0), M, LREC(3, 1), 'Q', 0, 0, 0},
     28},
};

static void test_recordio_golden(void **state) {
    char dir[64], rec[128], idx[128], err[AVA_ERRLEN];
    for (size_t i = 0; i < N_ELEMS(rec_cases); i++) {
        const struct rec_case *c = &rec_cases[i];
        /* the table's lengths must cover every byte written in it */
        for (size_t k = c->in_len; k < sizeof c->in; k++)
            CHECK(c->in[k] == 0, "%s: in_len too short", c->name);
        for (size_t k = c->out_len; k < sizeof c->out; k++)
            CHECK(c->out[k] == 0, "%s: out_len too short", c->name);
        make_tmpdir(dir, sizeof dir);
        snprintf(rec, sizeof rec, "%s/a.rec", dir);
        snprintf(idx, sizeof idx, "%s/a.idx", dir);
        struct ava_recordio_writer *w;
        assert_int_equal(ava_recordio_writer_open(rec, idx, &w, err), 0);
        if (ava_recordio_write(w, 0, c->in, c->in_len, err) != 0)
            fail_msg("%s: %s", c->name, err);
        CHECK(ava_recordio_writer_bytes(w) == c->out_len, "%s: %" PRIu64 " bytes, expected %zu",
              c->name, ava_recordio_writer_bytes(w), c->out_len);
        assert_int_equal(ava_recordio_writer_close(w, err), 0);
        size_t n;
        char *got = slurp(rec, &n);
        check_bytes(c->name, got, n, c->out, c->out_len);
        free(got);
        check_file(idx, "0\t0\n", 4);
        remove_tmpdir(dir);
    }
}

static void test_recordio_idx_offsets(void **state) {
    char dir[64], rec[128], idx[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(rec, sizeof rec, "%s/a.rec", dir);
    snprintf(idx, sizeof idx, "%s/a.idx", dir);
    struct ava_recordio_writer *w;
    assert_int_equal(ava_recordio_writer_open(rec, idx, &w, err), 0);
    assert_int_equal(ava_recordio_write(w, 5, "hello", 5, err), 0);
    assert_int_equal(ava_recordio_write(w, 9, NULL, 0, err), 0);
    assert_int_equal(ava_recordio_write(w, 10, rec_cases[2].in, 12, err), 0);
    assert_int_equal(ava_recordio_write(w, 11, "x", 1, err), 0);
    assert_int_equal(ava_recordio_writer_bytes(w), 16 + 8 + 24 + 12);
    assert_int_equal(ava_recordio_writer_close(w, err), 0);
    const char want[] = "5\t0\n9\t16\n10\t24\n11\t48\n";
    check_file(idx, want, strlen(want));
    assert_int_equal(ava_file_size(rec), 60);
    remove_tmpdir(dir);
}

static void test_irheader(void **state) {
    struct ava_irheader h = {0, 3.0f, 7, 0}, back;
    uint8_t out[AVA_IRHEADER_SIZE];
    ava_irheader_pack(&h, out);
    /* u32 0 | f32 3.0 = 0x40400000 | u64 7 | u64 0, all little-endian */
    const uint8_t want[24] = {0, 0, 0, 0, 0, 0, 0x40, 0x40, 7, 0, 0, 0,
                              0, 0, 0, 0, 0, 0, 0,    0,    0, 0, 0, 0};
    check_bytes("irheader", out, sizeof out, want, sizeof want);
    struct ava_irheader h2 = {2, -1.5f, 0x0102030405060708ull, 9};
    ava_irheader_pack(&h2, out);
    const uint8_t want2[24] = {2, 0, 0, 0, 0, 0, 0xc0, 0xbf, 8, 7, 6, 5,
                               4, 3, 2, 1, 9, 0, 0,    0,    0, 0, 0, 0};
    check_bytes("irheader 2", out, sizeof out, want2, sizeof want2);
    assert_int_equal(ava_irheader_unpack(out, 24, &back), 0);
    assert_int_equal(back.flag, 2);
    assert_true(back.label == -1.5f);
    assert_true(back.id == 0x0102030405060708ull && back.id2 == 9);
    assert_int_equal(ava_irheader_unpack(out, 23, &back), AVA_EINVALID);
}

/* Writes one image record and compares the .rec with want. */
static void check_image_record(float label, const void *payload, size_t len, const uint8_t *want,
                               size_t wlen, const char *what) {
    char dir[64], rec[128], idx[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(rec, sizeof rec, "%s/a.rec", dir);
    snprintf(idx, sizeof idx, "%s/a.idx", dir);
    struct ava_recordio_writer *w;
    assert_int_equal(ava_recordio_writer_open(rec, idx, &w, err), 0);
    assert_int_equal(ava_recordio_write_image(w, 4, label, 7, payload, len, err), 0);
    assert_int_equal(ava_recordio_writer_close(w, err), 0);
    check_file(rec, want, wlen);
    check_file(idx, "4\t0\n", 4);
    remove_tmpdir(dir);
}

#define HDR7(l0, l1, l2, l3)                                                                       \
    0, 0, 0, 0, l0, l1, l2, l3, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0

static void test_recordio_image_golden(void **state) {
    const uint8_t plain[] = {M, LREC(0, 27), HDR7(0, 0, 0x40, 0x40), 'x', 'y', 'z', 0};
    check_image_record(3.0f, "xyz", 3, plain, sizeof plain, "image record");
    /* a label whose bits are the magic: escaped inside the header (offset 4) */
    uint32_t bits = AVA_RECORDIO_MAGIC;
    float magic_label;
    memcpy(&magic_label, &bits, 4);
    const uint8_t in_hdr[] = {M, LREC(1, 4), 0, 0, 0, 0, M, LREC(3, 20), 7, 0, 0,   0,   0,   0,
                              0, 0,          0, 0, 0, 0, 0, 0,           0, 0, 'P', 'Q', 'R', 'S'};
    check_image_record(magic_label, "PQRS", 4, in_hdr, sizeof in_hdr, "magic label");
    /* the magic at payload offset 0 = record offset 24, aligned: escaped */
    const uint8_t pay[] = {M, 'T', 'U'};
    const uint8_t in_pay[] = {M, LREC(1, 24), HDR7(0, 0, 0x40, 0x40), M, LREC(3, 2), 'T', 'U', 0,
                              0};
    check_image_record(3.0f, pay, sizeof pay, in_pay, sizeof in_pay, "magic payload");
    /* payload offset 1 = record offset 25: not escaped */
    const uint8_t pay2[] = {'X', M};
    const uint8_t in_pay2[] = {M, LREC(0, 29), HDR7(0, 0, 0x40, 0x40), 'X', M, 0, 0, 0};
    check_image_record(3.0f, pay2, sizeof pay2, in_pay2, sizeof in_pay2, "unaligned payload");
}

static void test_recordio_too_large(void **state) {
    char dir[64], rec[128], idx[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(rec, sizeof rec, "%s/a.rec", dir);
    snprintf(idx, sizeof idx, "%s/a.idx", dir);
    struct ava_recordio_writer *w;
    assert_int_equal(ava_recordio_writer_open(rec, idx, &w, err), 0);
    /* the length is checked before the data is touched: a small buffer stands in */
    uint8_t small[8] = {0};
    assert_int_equal(ava_recordio_write(w, 0, small, (size_t)1 << 29, err), AVA_ETOOLARGE);
    assert_non_null(strstr(err, "too large"));
    assert_int_equal(ava_recordio_write_image(w, 0, 1.0f, 0, small, AVA_RECORDIO_MAX_LEN - 23, err),
                     AVA_ETOOLARGE);
    assert_int_equal(ava_recordio_write_image(w, 0, 1.0f, 0, small, SIZE_MAX, err), AVA_ETOOLARGE);
    assert_int_equal(ava_recordio_writer_bytes(w), 0);
    assert_int_equal(ava_recordio_write(w, 3, small, 8, err), 0); /* still usable */
    assert_int_equal(ava_recordio_writer_close(w, err), 0);
    assert_int_equal(ava_file_size(rec), 16);
    check_file(idx, "3\t0\n", 4);
    remove_tmpdir(dir);
}

/* ---- RecordIO reader ---- */

static void test_recordio_round_trip(void **state) {
    enum { N = 300 };
    char dir[64], rec[128], idx[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(rec, sizeof rec, "%s/a.rec", dir);
    snprintf(idx, sizeof idx, "%s/a.idx", dir);
    uint8_t *recs[N];
    size_t lens[N];
    uint64_t offs[N], seed = 0x9e3779b97f4a7c15ull;
    const uint8_t magic[4] = {M};
    struct ava_recordio_writer *w;
    assert_int_equal(ava_recordio_writer_open(rec, idx, &w, err), 0);
    for (int i = 0; i < N; i++) {
        size_t len = i % 50 == 7 ? 70000 + rnd(&seed) % 5000 : rnd(&seed) % 200;
        bool image = i % 3 == 0;
        uint8_t *p = malloc(len + AVA_IRHEADER_SIZE + 1);
        uint8_t *body = image ? p + AVA_IRHEADER_SIZE : p;
        for (size_t k = 0; k < len; k++)
            body[k] = (uint8_t)rnd(&seed);
        for (int m = (int)(rnd(&seed) % 4); m > 0 && len >= 4; m--) /* aligned or not */
            memcpy(body + rnd(&seed) % (len - 3), magic, 4);
        offs[i] = ava_recordio_writer_bytes(w);
        if (image) {
            struct ava_irheader h = {0, (float)(i % 10), (uint64_t)i, 0};
            ava_irheader_pack(&h, p);
            assert_int_equal(ava_recordio_write_image(w, i, h.label, h.id, body, len, err), 0);
            len += AVA_IRHEADER_SIZE;
        } else {
            assert_int_equal(ava_recordio_write(w, i, p, len, err), 0);
        }
        recs[i] = p;
        lens[i] = len;
    }
    uint64_t total = ava_recordio_writer_bytes(w);
    assert_int_equal(ava_recordio_writer_close(w, err), 0);
    assert_int_equal(ava_file_size(rec), total);

    /* the idx lists every record at the offset where it began */
    size_t n;
    char *text = slurp(idx, &n), *line = text;
    for (int i = 0; i < N; i++) {
        unsigned long long key, off;
        assert_int_equal(sscanf(line, "%llu\t%llu\n", &key, &off), 2);
        assert_int_equal(key, i);
        assert_int_equal(off, offs[i]);
        line = strchr(line, '\n') + 1;
    }
    assert_int_equal(*line, '\0');
    free(text);

    struct ava_recordio_reader *r;
    const uint8_t *data;
    size_t len;
    assert_int_equal(ava_recordio_reader_open(rec, &r, err), 0);
    for (int i = 0; i < N; i++) {
        if (ava_recordio_read(r, &data, &len, err) != 1)
            fail_msg("record %d: %s", i, err);
        check_bytes("round trip", data, len, recs[i], lens[i]);
    }
    assert_int_equal(ava_recordio_read(r, &data, &len, err), 0);
    for (int i = N - 1; i >= 0; i -= 7) {
        assert_int_equal(ava_recordio_seek(r, offs[i], err), 0);
        assert_int_equal(ava_recordio_read(r, &data, &len, err), 1);
        check_bytes("after seek", data, len, recs[i], lens[i]);
    }
    assert_int_equal(ava_recordio_seek(r, 2, err), AVA_EINVALID);
    assert_int_equal(ava_recordio_seek(r, total + 4, err), AVA_EINVALID);
    ava_recordio_reader_close(r);
    for (int i = 0; i < N; i++)
        free(recs[i]);
    assert_int_equal(ava_recordio_reader_open("/nonexistent/a.rec", &r, err), AVA_ENOTFOUND);
    remove_tmpdir(dir);
}

struct bad_rec {
    const char *name;
    uint8_t bytes[40];
    size_t len;
    int good_before; /* records that read fine before the error */
    const char *msg; /* expected in the error message */
};

static const struct bad_rec bad_recs[] = {
    {"bad magic", {0x0b, 0x23, 0xd7, 0xce, LREC(0, 0)}, 8, 0, "bad magic 0xced7230b at byte 0"},
    {"bad magic later", {M, LREC(0, 0), 1, 2, 3, 4, 0, 0, 0, 0}, 16, 1, "at byte 8"},
    {"truncated header", {M, 5, 0}, 6, 0, "truncated record at byte 0"},
    {"truncated payload", {M, LREC(0, 8), 'a', 'b', 'c', 'd'}, 12, 0, "truncated record at byte 0"},
    {"missing padding", {M, LREC(0, 5), 'a', 'b', 'c', 'd', 'e'}, 13, 0, "file ends at byte 13"},
    {"cflag 2 first", {M, LREC(2, 0)}, 8, 0, "no first part"},
    {"cflag 3 first", {M, LREC(0, 0), M, LREC(3, 0)}, 16, 1, "at byte 8"},
    {"first part then end", {M, LREC(1, 4), 'a', 'b', 'c', 'd'}, 12, 0, "byte 12"},
    {"first then whole", {M, LREC(1, 0), M, LREC(0, 0)}, 16, 0, "instead of a middle or last"},
    {"first then first", {M, LREC(1, 0), M, LREC(1, 0)}, 16, 0, "cflag 1"},
    {"second part short", {M, LREC(1, 0), M, LREC(3, 9), 'a'}, 17, 0, "byte 8"},
};

static void test_recordio_reader_errors(void **state) {
    char dir[64], rec[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(rec, sizeof rec, "%s/bad.rec", dir);
    for (size_t i = 0; i < N_ELEMS(bad_recs); i++) {
        const struct bad_rec *c = &bad_recs[i];
        write_bytes(rec, c->bytes, c->len);
        struct ava_recordio_reader *r;
        assert_int_equal(ava_recordio_reader_open(rec, &r, err), 0);
        const uint8_t *data;
        size_t len;
        for (int k = 0; k < c->good_before; k++)
            if (ava_recordio_read(r, &data, &len, err) != 1)
                fail_msg("%s: record %d: %s", c->name, k, err);
        err[0] = '\0';
        int rc = ava_recordio_read(r, &data, &len, err);
        if (rc != AVA_EINVALID || !strstr(err, c->msg))
            fail_msg("%s: rc %d, message '%s', expected '%s'", c->name, rc, err, c->msg);
        ava_recordio_reader_close(r);
    }
    remove_tmpdir(dir);
}

/* ---- Caffe Datum ---- */

static void check_datum_encoding(const struct ava_datum *d, const uint8_t *want, size_t wlen,
                                 const char *what) {
    char err[AVA_ERRLEN];
    uint8_t *out;
    size_t len;
    assert_int_equal(ava_datum_encode(d, &out, &len, err), 0);
    check_bytes(what, out, len, want, wlen);
    struct ava_datum back;
    assert_int_equal(ava_datum_decode(out, len, &back, err), 0);
    assert_int_equal(back.channels, d->channels);
    assert_int_equal(back.height, d->height);
    assert_int_equal(back.width, d->width);
    assert_int_equal(back.label, d->label);
    assert_int_equal(back.encoded, d->encoded);
    check_bytes(what, back.data, back.len, d->data, d->len);
    free(out);
}

static void test_datum_golden(void **state) {
    /* Key byte = field << 3 | wire type (0 varint, 2 length-delimited); fields in number
     * order, each set field written (proto2): 08 01 channels=1, 10 02 height=2, 18 02
     * width=2, 22 04 + 4 bytes data, 28 03 label=3, 38 00 encoded=false (CVMatToDatum sets
     * it explicitly, so it is present). */
    const uint8_t px[4] = {1, 2, 3, 4};
    struct ava_datum raw = {1, 2, 2, px, 4, 3, false};
    const uint8_t want_raw[] = {0x08, 1, 0x10, 2, 0x18, 2, 0x22, 4, 1, 2, 3, 4, 0x28, 3, 0x38, 0};
    check_datum_encoding(&raw, want_raw, sizeof want_raw, "raw datum");
    /* Encoded (ReadFileToDatum): 22 04 file bytes, 28 07 label=7, 38 01 encoded=true. */
    const uint8_t file[4] = {0xff, 0xd8, 0xff, 0xd9};
    struct ava_datum enc = {0, 0, 0, file, 4, 7, true};
    const uint8_t want_enc[] = {0x22, 4, 0xff, 0xd8, 0xff, 0xd9, 0x28, 7, 0x38, 1};
    check_datum_encoding(&enc, want_enc, sizeof want_enc, "encoded datum");
    /* Multi-byte varints: 300 = 0xac 0x02, 200 bytes = c8 01; a negative int32 is the
     * 10-byte varint of its 64-bit sign extension: -1 = ff x9 01. */
    uint8_t big[200];
    memset(big, 9, sizeof big);
    struct ava_datum d300 = {2, 10, 10, big, 200, 300, false};
    uint8_t want300[6 + 3 + 200 + 3 + 2];
    const uint8_t head[] = {0x08, 2, 0x10, 10, 0x18, 10, 0x22, 0xc8, 1};
    memcpy(want300, head, sizeof head);
    memcpy(want300 + sizeof head, big, 200);
    const uint8_t tail[] = {0x28, 0xac, 0x02, 0x38, 0};
    memcpy(want300 + sizeof head + 200, tail, sizeof tail);
    check_datum_encoding(&d300, want300, sizeof want300, "label 300");
    struct ava_datum neg = {0, 0, 0, file, 1, -1, true};
    const uint8_t want_neg[] = {0x22, 1,    0xff, 0x28, 0xff, 0xff, 0xff, 0xff,
                                0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x38, 1};
    check_datum_encoding(&neg, want_neg, sizeof want_neg, "label -1");
    /* a raw datum whose shape does not match its bytes is refused */
    char err[AVA_ERRLEN];
    uint8_t *out;
    size_t len;
    struct ava_datum bad = {3, 2, 2, px, 4, 0, false};
    assert_int_equal(ava_datum_encode(&bad, &out, &len, err), AVA_EINVALID);
    assert_null(out);
}

static void test_datum_decode_malformed(void **state) {
    static const struct {
        const char *name;
        uint8_t b[12];
        size_t n;
    } cases[] = {
        {"truncated varint", {0x08, 0x80}, 2},
        {"truncated key", {0x28, 3, 0x80}, 3},
        {"length past end", {0x22, 5, 1, 2}, 4},
        {"wire type 7", {0x0f, 0}, 2},
        {"wire type 6", {0x0e, 0}, 2},
        {"group", {0x0b, 0}, 2},
        {"field 0", {0x00, 1}, 2},
        {"wrong wire type", {0x0d, 1, 2, 3, 4}, 5},
        {"data as varint", {0x20, 1}, 2},
        {"varint over 10 bytes",
         {0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1},
         12},
        {"truncated fixed32", {0x35, 0, 0}, 3},
    };
    char err[AVA_ERRLEN];
    struct ava_datum d;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        err[0] = '\0';
        int rc = ava_datum_decode(cases[i].b, cases[i].n, &d, err);
        if (rc != AVA_EINVALID || !strstr(err, "malformed Datum"))
            fail_msg("%s: rc %d '%s'", cases[i].name, rc, err);
    }
    /* unknown fields and float_data are skipped, as protobuf does */
    const uint8_t ok[] = {0x48, 5, 0x28, 4, 0x35, 0,    0,    0x80, 0x3f,
                          0x32, 4, 0,    0, 0x80, 0x3f, 0x38, 1};
    assert_int_equal(ava_datum_decode(ok, sizeof ok, &d, err), 0);
    assert_int_equal(d.label, 4);
    assert_true(d.encoded);
    assert_int_equal(d.len, 0);
}

/* ---- LMDB ---- */

/* The datum test_lmdb writes for index i, in px (192 bytes). */
static struct ava_datum lmdb_datum(int i, uint8_t *px) {
    for (int k = 0; k < 192; k++)
        px[k] = (uint8_t)(i * 31 + k);
    return (struct ava_datum){3, 8, 8, px, 192, i % 10, false};
}

static void test_lmdb_round_trip(void **state) {
    enum { N = 2500 };
    char dir[64], db[128], path[160], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/set", dir);
    struct ava_lmdb_writer *w;
    const size_t initial = 128 << 10; /* far too small: the map must double several times */
    assert_int_equal(ava_lmdb_writer_open_mapsize(db, initial, &w, err), 0);
    uint8_t px[192];
    char name[32];
    for (int j = 0; j < N; j++) {
        int i = (j * 7) % N; /* out of order: LMDB hands keys back sorted */
        struct ava_datum d = lmdb_datum(i, px);
        snprintf(name, sizeof name, "c%d/img%05d.png", i % 10, i);
        if (ava_lmdb_writer_put(w, i, name, &d, err) != 0)
            fail_msg("put %d: %s", i, err);
    }
    struct ava_datum d0 = lmdb_datum(0, px);
    assert_int_equal(ava_lmdb_writer_put(w, 0, "c0/img00000.png", &d0, err), AVA_EEXISTS);
    assert_int_equal(ava_lmdb_writer_put(w, -1, "x", &d0, err), AVA_EINVALID);
    char longname[600];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(ava_lmdb_writer_put(w, 1, longname, &d0, err), AVA_EINVALID);
    assert_int_equal(ava_lmdb_writer_close(w, err), 0);
    snprintf(path, sizeof path, "%s/data.mdb", db);
    assert_true(ava_file_size(path) > (int64_t)initial);
    snprintf(path, sizeof path, "%s/lock.mdb", db);
    assert_true(ava_file_size(path) >= 0);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_envinfo info;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, db, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_env_info(env, &info), 0);
    assert_true(info.me_mapsize > initial); /* the grown size was persisted */
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    int i = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
        char want_key[64];
        int kl = snprintf(want_key, sizeof want_key, "%08d_c%d/img%05d.png", i, i % 10, i);
        check_bytes("key", k.mv_data, k.mv_size, want_key, (size_t)kl);
        struct ava_datum got, want = lmdb_datum(i, px);
        assert_int_equal(ava_datum_decode(v.mv_data, v.mv_size, &got, err), 0);
        assert_int_equal(got.channels, 3);
        assert_int_equal(got.height, 8);
        assert_int_equal(got.width, 8);
        assert_int_equal(got.label, want.label);
        assert_false(got.encoded);
        check_bytes("value", got.data, got.len, want.data, want.len);
    }
    assert_int_equal(i, N);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);

    assert_int_equal(ava_lmdb_writer_open(db, &w, err), AVA_EEXISTS);
    assert_null(w);
    remove_tmpdir(dir);
}

static void test_lmdb_value_bigger_than_map(void **state) {
    char dir[64], db[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/set", dir);
    struct ava_lmdb_writer *w;
    assert_int_equal(ava_lmdb_writer_open_mapsize(db, 64 << 10, &w, err), 0);
    size_t n = 3 << 20;
    uint8_t *file = calloc(1, n);
    struct ava_datum d = {0, 0, 0, file, n, 1, true};
    if (ava_lmdb_writer_put(w, 0, "big.jpg", &d, err) != 0)
        fail_msg("%s", err);
    assert_int_equal(ava_lmdb_writer_close(w, err), 0);
    free(file);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {strlen("00000000_big.jpg"), "00000000_big.jpg"}, v;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, db, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    struct ava_datum got;
    assert_int_equal(ava_datum_decode(v.mv_data, v.mv_size, &got, err), 0);
    assert_int_equal(got.len, n);
    assert_true(got.encoded);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    remove_tmpdir(dir);
}

/* ---- LMDB: the bulk (in-order) writer ---- */

/* The name of entry i of a bulk test set: nlen characters, so that its key is 9 + nlen. */
static void bulk_name(char *name, size_t nlen, int i) {
    for (size_t k = 0; k < nlen; k++)
        name[k] = (char)('a' + (i * 7 + (int)k) % 26);
    name[nlen] = '\0';
}

/* The data of entry i (an encoded datum of dlen bytes) in buf. */
static struct ava_datum bulk_datum(int i, uint8_t *buf, size_t dlen) {
    for (size_t k = 0; k < dlen; k++)
        buf[k] = (uint8_t)(i * 131 + k * 7 + (k >> 9));
    return (struct ava_datum){0, 0, 0, buf, dlen, i % 10, true};
}

/* Data sizes of a mixed set: small ones, the sizes around LMDB's overflow threshold (a node
 * of 8 + key + value bytes over 2038 goes to overflow pages), a few pages, half a megabyte
 * and more (written past the writer's buffer), in a reproducible order. */
static size_t mixed_len(int i) {
    static const size_t big[] = {4096, 4080, 12000, 530000, 1100000, 2600000};
    uint64_t s = (uint64_t)i * 2654435761u + 1;
    uint64_t r = rnd(&s) % 100;
    if (r < 50)
        return (size_t)(r * 13);
    if (r < 95)
        return 1950 + (size_t)(rnd(&s) % 120); /* straddles the threshold for short keys */
    return big[rnd(&s) % N_ELEMS(big)];
}

/* Writes n entries with names of nlen characters and data of len_of(i) bytes (or fixed dlen)
 * into the new environment db, in key order. */
static void bulk_write(const char *db, int n, size_t nlen, size_t (*len_of)(int), size_t dlen) {
    char err[AVA_ERRLEN], name[600];
    struct ava_lmdb_writer *w;
    assert_int_equal(ava_lmdb_writer_open(db, &w, err), 0);
    uint8_t *buf = malloc(3u << 20);
    for (int i = 0; i < n; i++) {
        bulk_name(name, nlen, i);
        struct ava_datum d = bulk_datum(i, buf, len_of ? len_of(i) : dlen);
        if (ava_lmdb_writer_put(w, i, name, &d, err) != 0)
            fail_msg("put %d: %s", i, err);
    }
    free(buf);
    if (ava_lmdb_writer_close(w, err) != 0)
        fail_msg("close: %s", err);
}

/* Page counts found by walking data.mdb's pages. */
struct page_counts {
    size_t leaf, branch, overflow, total;
};

/* Walks every page of db/data.mdb after the two metas as LMDB 0.9 lays them out: each page
 * numbered by its place, a leaf, a branch of at least 2 nodes (LMDB asserts it) or an overflow
 * run, free space zeroed (nothing stale from reused buffers). */
static struct page_counts walk_pages(const char *db) {
    char path[256];
    snprintf(path, sizeof path, "%s/data.mdb", db);
    size_t n, psize = (size_t)sysconf(_SC_PAGESIZE), hdr = sizeof(size_t) + 8;
    uint8_t *f = (uint8_t *)slurp(path, &n);
    struct page_counts c = {0, 0, 0, n / psize};
    CHECK(n % psize == 0 && n >= 2 * psize, "data.mdb of %zu bytes", n);
    size_t pg = 2;
    while (pg < c.total) {
        const uint8_t *p = f + pg * psize;
        size_t pgno;
        uint16_t flags, lower, upper;
        memcpy(&pgno, p, sizeof pgno);
        memcpy(&flags, p + sizeof(size_t) + 2, 2);
        memcpy(&lower, p + sizeof(size_t) + 4, 2);
        memcpy(&upper, p + sizeof(size_t) + 6, 2);
        CHECK(pgno == pg, "page %zu says it is page %zu", pg, pgno);
        if (flags == 0x04) { /* overflow run */
            uint32_t run;
            memcpy(&run, p + sizeof(size_t) + 4, 4);
            CHECK(run >= 1 && pg + run <= c.total, "overflow run of %u at page %zu", run, pg);
            c.overflow += run;
            pg += run;
            continue;
        }
        CHECK(flags == 0x01 || flags == 0x02, "page %zu has flags %#x", pg, flags);
        CHECK(lower >= hdr && upper >= lower && upper <= psize, "page %zu: %u..%u", pg, lower,
              upper);
        size_t nodes = (lower - hdr) / 2;
        CHECK(nodes >= (flags == 0x01 ? 2u : 1u), "page %zu (flags %#x) has %zu nodes", pg, flags,
              nodes);
        for (size_t k = lower; k < upper; k++)
            CHECK(p[k] == 0, "page %zu: free byte %zu is %#x", pg, k, p[k]);
        for (size_t i = 0; flags == 0x01 && i < nodes; i++) {
            /* a branch node is 8 bytes + its key, padded to even: the pad byte must be 0 */
            uint16_t off, ks;
            memcpy(&off, p + hdr + 2 * i, 2);
            memcpy(&ks, p + off + 6, 2);
            CHECK(off + 8u + ks <= psize, "page %zu: node %zu overruns the page", pg, i);
            if ((8u + ks) & 1)
                CHECK(p[off + 8 + ks] == 0, "page %zu: node %zu's pad byte is %#x", pg, i,
                      p[off + 8 + ks]);
        }
        if (flags == 0x01)
            c.branch++;
        else
            c.leaf++;
        pg++;
    }
    free(f);
    return c;
}

/* Opens db read-only with LMDB and checks its n entries (as bulk_write wrote them) forwards,
 * backwards and by search, and that LMDB's counts match the pages in the file. */
static MDB_stat check_bulk_env(const char *db, int n, size_t nlen, size_t (*len_of)(int),
                               size_t dlen) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat st;
    char err[AVA_ERRLEN], name[600], key[700];
    uint8_t *buf = malloc(3u << 20);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, db, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    assert_int_equal(st.ms_entries, (size_t)n);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    int i = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
        CHECK(i < n, "more than %d entries", n);
        bulk_name(name, nlen, i);
        int kl = snprintf(key, sizeof key, "%08d_%s", i, name);
        check_bytes("key", k.mv_data, k.mv_size, key, (size_t)kl);
        struct ava_datum got, want = bulk_datum(i, buf, len_of ? len_of(i) : dlen);
        assert_int_equal(ava_datum_decode(v.mv_data, v.mv_size, &got, err), 0);
        assert_int_equal(got.label, want.label);
        assert_true(got.encoded);
        CHECK(got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
              "entry %d: %zu bytes of data, want %zu", i, got.len, want.len);
        MDB_val found;
        assert_int_equal(mdb_get(txn, dbi, &k, &found), 0); /* down the branch pages */
        assert_int_equal(found.mv_size, v.mv_size);
    }
    assert_int_equal(i, n);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV))
        i--;
    assert_int_equal(i, 0);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    free(buf);
    struct page_counts c = walk_pages(db);
    assert_int_equal(c.leaf, st.ms_leaf_pages);
    assert_int_equal(c.branch, st.ms_branch_pages);
    assert_int_equal(c.overflow, st.ms_overflow_pages);
    assert_int_equal(c.total, 2 + c.leaf + c.branch + c.overflow); /* no page unaccounted */
    return st;
}

/* Trees of every shape: 0 entries, one leaf, a root over 2 leaves, and levels whose last page
 * would hold a single node (long keys: 9 entries a leaf, 10 nodes a branch page). */
static void test_lmdb_bulk_tree_shapes(void **state) {
    static const int sizes[] = {0,  1,  2,   8,   9,   10,  11,  18,  19,  89,  90,
                                91, 99, 100, 101, 900, 901, 909, 910, 911, 9001};
    char dir[64], db[128];
    make_tmpdir(dir, sizeof dir);
    for (size_t s = 0; s < N_ELEMS(sizes); s++) {
        snprintf(db, sizeof db, "%s/set%zu", dir, s);
        bulk_write(db, sizes[s], 391, NULL, 20); /* 400-byte keys, 26-byte values */
        MDB_stat st = check_bulk_env(db, sizes[s], 391, NULL, 20);
        unsigned want_depth = sizes[s] == 0      ? 0
                              : sizes[s] <= 9    ? 1
                              : sizes[s] <= 90   ? 2
                              : sizes[s] <= 900  ? 3
                              : sizes[s] <= 9000 ? 4
                                                 : 5;
        CHECK(st.ms_depth == want_depth, "%d entries: depth %u, want %u", sizes[s], st.ms_depth,
              want_depth);
        char lock[160];
        snprintf(lock, sizeof lock, "%s/lock.mdb", db);
        assert_true(ava_file_size(lock) >= 0);
    }
    remove_tmpdir(dir);
}

/* Mixed value sizes, some on overflow pages (a few past the writer's buffer), and keys up to
 * LMDB's 511 bytes: read back whole, packed exactly as LMDB's own MDB_APPEND puts pack them
 * (same leaf and overflow page counts), and byte-identical when written again. */
static void test_lmdb_bulk_values(void **state) {
    enum { N = 1500 };
    char dir[64], db[128], db2[128], ref[128], err[AVA_ERRLEN], name[600], key[700];
    make_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/a", dir);
    snprintf(db2, sizeof db2, "%s/b", dir);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    bulk_write(db, N, 20, mixed_len, 0);
    MDB_stat st = check_bulk_env(db, N, 20, mixed_len, 0);
    assert_true(st.ms_overflow_pages > 0 && st.ms_depth >= 2);

    /* LMDB itself, one transaction of appends */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat rst;
    uint8_t *buf = malloc(3u << 20), *enc;
    size_t elen;
    assert_int_equal(mkdir(ref, 0755), 0);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    assert_int_equal(mdb_env_open(env, ref, MDB_NOSYNC, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    for (int i = 0; i < N; i++) {
        bulk_name(name, 20, i);
        MDB_val k = {(size_t)snprintf(key, sizeof key, "%08d_%s", i, name), key};
        struct ava_datum d = bulk_datum(i, buf, mixed_len(i));
        assert_int_equal(ava_datum_encode(&d, &enc, &elen, err), 0);
        MDB_val v = {elen, enc};
        assert_int_equal(mdb_put(txn, dbi, &k, &v, MDB_APPEND), 0);
        free(enc);
    }
    assert_int_equal(mdb_stat(txn, dbi, &rst), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(buf);
    assert_int_equal(st.ms_leaf_pages, rst.ms_leaf_pages);
    assert_int_equal(st.ms_overflow_pages, rst.ms_overflow_pages);
    assert_int_equal(st.ms_entries, rst.ms_entries);

    /* the same puts again: the same bytes */
    bulk_write(db2, N, 20, mixed_len, 0);
    char p1[160], p2[160];
    snprintf(p1, sizeof p1, "%s/data.mdb", db);
    snprintf(p2, sizeof p2, "%s/data.mdb", db2);
    size_t n1, n2;
    char *f1 = slurp(p1, &n1), *f2 = slurp(p2, &n2);
    assert_true(n1 == n2 && memcmp(f1, f2, n1) == 0);
    free(f1);
    free(f2);

    /* the longest key LMDB takes, with data just under and over the overflow threshold */
    snprintf(db, sizeof db, "%s/long", dir);
    bulk_write(db, 40, 502, NULL, 1500);
    check_bulk_env(db, 40, 502, NULL, 1500);
    snprintf(db, sizeof db, "%s/long2", dir);
    bulk_write(db, 40, 502, NULL, 1530);
    st = check_bulk_env(db, 40, 502, NULL, 1530);
    assert_int_equal(st.ms_overflow_pages, 40);
    remove_tmpdir(dir);
}

/* LMDB writes on after the bulk writer: deletes (rebalancing), inserts between keys (splits)
 * and a duplicate refused, then a compacting copy walks the result. */
static void test_lmdb_bulk_then_lmdb_writes(void **state) {
    enum { N = 3000 };
    char dir[64], db[128], copy[128], name[600], key[700];
    make_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/set", dir);
    snprintf(copy, sizeof copy, "%s/copy", dir);
    bulk_write(db, N, 30, NULL, 300);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t val[64] = {1, 2, 3};
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, db, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    for (int i = 0; i < N; i++) {
        bulk_name(name, 30, i);
        MDB_val k = {(size_t)snprintf(key, sizeof key, "%08d_%s", i, name), key};
        if (i % 3 == 0)
            assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
        MDB_val v = {sizeof val, val};
        if (i % 5 == 1 && i % 3 != 0) /* one still there */
            assert_int_equal(mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE), MDB_KEYEXIST);
        key[k.mv_size] = '+'; /* sorts right after key i */
        k.mv_size++;
        v = (MDB_val){sizeof val, val}; /* MDB_KEYEXIST pointed it at the existing data */
        if (i % 2 == 0)
            assert_int_equal(mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_int_equal(mkdir(copy, 0755), 0);
    assert_int_equal(mdb_env_copy2(env, copy, MDB_CP_COMPACT), 0);
    mdb_env_close(env);

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, copy, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_cursor *cur;
    MDB_val k, v;
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (int i = 0; i < N; i++) {
        bulk_name(name, 30, i);
        int kl = snprintf(key, sizeof key, "%08d_%s", i, name);
        if (i % 3 != 0) { /* kept, from the bulk writer */
            assert_int_equal(rc, 0);
            check_bytes("kept key", k.mv_data, k.mv_size, key, (size_t)kl);
            assert_int_not_equal(v.mv_size, sizeof val);
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (i % 2 == 0) { /* added after it */
            key[kl++] = '+';
            assert_int_equal(rc, 0);
            check_bytes("added key", k.mv_data, k.mv_size, key, (size_t)kl);
            assert_int_equal(v.mv_size, sizeof val);
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    }
    assert_int_equal(rc, MDB_NOTFOUND);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    remove_tmpdir(dir);
}

/* A write failure (the file size limit, as a full disk would) is an error of a later put or
 * of close, never a set that looks complete. */
static void test_lmdb_bulk_write_error(void **state) {
    char dir[64], db[128], err[AVA_ERRLEN], name[32];
    make_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/set", dir);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    struct ava_lmdb_writer *w;
    assert_int_equal(ava_lmdb_writer_open(db, &w, err), 0);
    lim = old;
    lim.rlim_cur = 1 << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint8_t buf[800];
    int rc = 0;
    for (int i = 0; i < 6000 && rc == 0; i++) { /* ~5 MB */
        bulk_name(name, 20, i);
        struct ava_datum d = bulk_datum(i, buf, sizeof buf);
        rc = ava_lmdb_writer_put(w, i, name, &d, err);
    }
    if (rc == 0)
        rc = ava_lmdb_writer_close(w, err);
    else
        ava_lmdb_writer_close(w, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, AVA_EIO);
    assert_non_null(strstr(err, "data.mdb"));
    remove_tmpdir(dir);
}

/* ---- the background writer ---- */

/* Jobs land at their offsets in the order handed over, whether the thread or the caller
 * writes them: a later job overwrites an earlier one where they overlap, and a write in the
 * caller comes after every job handed before it. */
static void test_bgwrite_order(void **state) {
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    static uint8_t bufs[3][8192];
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < sizeof bufs[k]; i++)
            bufs[k][i] = (uint8_t)(k * 71 + i * 13 + i / 251);
    enum { BIG = 8 << 20 }; /* long enough to be in flight when the caller writes over it */
    uint8_t *big = malloc(BIG), *want = malloc(16384 + BIG);
    assert_non_null(big);
    assert_non_null(want);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (uint8_t)(i * 7 + i / 4093);
    for (int threaded = 0; threaded < 2; threaded++) {
        snprintf(path, sizeof path, "%s/f%d", dir, threaded);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        struct ava_bgwrite *w = ava_bgwrite_new(fd, 4096, threaded);
        assert_int_equal(ava_bgwrite_submit(w, bufs[0], 8192, 8192), 0); /* [8192, 16384) */
        assert_int_equal(ava_bgwrite_submit(w, bufs[1], 8192, 0), 0);    /* [0, 8192) */
        assert_int_equal(ava_bgwrite_submit(w, bufs[2], 8192, 4096), 0); /* [4096, 12288) */
        assert_int_equal(ava_bgwrite_submit(w, big, BIG, 16384), 0);
        assert_int_equal(ava_bgwrite_write(w, "tail", 4, 16384), 0);
        assert_int_equal(ava_bgwrite_write(w, "TA", 2, 16384), 0);
        assert_int_equal(ava_bgwrite_wait(w), 0);
        ava_bgwrite_sync_start(w);
        assert_int_equal(ava_bgwrite_sync(w), 0);
        assert_int_equal(ava_bgwrite_wait(w), 0);
        ava_bgwrite_free(w);
        assert_int_equal(close(fd), 0);
        memcpy(want, bufs[1], 4096);
        memcpy(want + 4096, bufs[2], 8192);
        memcpy(want + 12288, bufs[0] + 4096, 4096);
        memcpy(want + 16384, big, BIG);
        memcpy(want + 16384, "TAil", 4);
        check_file(path, want, 16384 + BIG);
    }
    free(big);
    free(want);
    remove_tmpdir(dir);
}

/* The first failure sticks: a job past the file size limit (as a full disk would fail) makes
 * every later job, caller write and wait report EFBIG, and nothing after it reaches the file,
 * with or without the thread. A read-only descriptor's EBADF shows at the wait. */
static void test_bgwrite_error_sticks(void **state) {
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 64 << 10;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    static uint8_t buf[4096];
    memset(buf, 'x', sizeof buf);
    for (int threaded = 0; threaded < 2; threaded++) {
        snprintf(path, sizeof path, "%s/f%d", dir, threaded);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        struct ava_bgwrite *w = ava_bgwrite_new(fd, 0, threaded);
        /* the thread reports it with the next hand-over, the caller at once */
        assert_int_equal(ava_bgwrite_submit(w, buf, sizeof buf, 1 << 20), threaded ? 0 : EFBIG);
        assert_int_equal(ava_bgwrite_submit(w, "abc", 3, 0), EFBIG);
        assert_int_equal(ava_bgwrite_write(w, "abc", 3, 0), EFBIG);
        assert_int_equal(ava_bgwrite_wait(w), EFBIG);
        ava_bgwrite_sync_start(w);                /* hands nothing over after a failure */
        assert_int_equal(ava_bgwrite_sync(w), 0); /* so the fsync runs here */
        assert_int_equal(ava_bgwrite_wait(w), EFBIG);
        ava_bgwrite_free(w);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, 0);
        assert_int_equal(close(fd), 0);
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct ava_bgwrite *w = ava_bgwrite_new(fd, 1 << 20, true);
    assert_int_equal(ava_bgwrite_submit(w, buf, sizeof buf, 0), 0);
    assert_int_equal(ava_bgwrite_wait(w), EBADF);
    ava_bgwrite_free(w);
    assert_int_equal(close(fd), 0);
    remove_tmpdir(dir);
}

/* The fsync runs on the thread when handed over (a pipe's EINVAL comes back from
 * ava_bgwrite_sync and sticks), and in the caller without a thread or when none was handed. */
static void test_bgwrite_sync_job(void **state) {
    for (int threaded = 0; threaded < 2; threaded++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        struct ava_bgwrite *w = ava_bgwrite_new(p[1], 0, threaded);
        assert_int_equal(ava_bgwrite_submit(w, "", 0, 0), 0); /* starts the thread, if any */
        ava_bgwrite_sync_start(w);
        assert_int_equal(ava_bgwrite_wait(w), threaded ? EINVAL : 0);
        assert_int_equal(ava_bgwrite_sync(w), EINVAL);
        assert_int_equal(ava_bgwrite_submit(w, "", 0, 0), threaded ? EINVAL : 0);
        ava_bgwrite_free(w);
        close(p[0]);
        close(p[1]);
    }
}

/* ---- formatting a pack into LMDB sets ---- */

/* The pixels of sample i of test_format_lmdb_sets' pack: grey 28x28 for even i, RGB 8x8 for
 * odd i; *pix, *w, *h describe them. */
static size_t fmt_pixels(int i, uint8_t *px, enum ava_pix *pix, int *w, int *h) {
    *pix = i % 2 ? AVA_PIX_RGB : AVA_PIX_GRAY;
    *w = *h = i % 2 ? 8 : 28;
    size_t n = (size_t)*w * (size_t)*h * (i % 2 ? 3 : 1);
    for (size_t k = 0; k < n; k++)
        px[k] = (uint8_t)(i * 37 + k * 11);
    return n;
}

/* Formats dir/pack into dir/OUT (lmdb, 70/30, seed 7) with the given thread count. */
static void format_pack(const char *dir, const char *out, int threads,
                        struct ava_format_set sets[2]) {
    char pack[128], outdir[128], err[AVA_ERRLEN];
    snprintf(pack, sizeof pack, "%s/pack", dir);
    snprintf(outdir, sizeof outdir, "%s/%s", dir, out);
    assert_int_equal(mkdir(outdir, 0755), 0);
    struct ava_job_spec spec = {.kind = "format",
                                .format = AVA_FMT_LMDB,
                                .percent = 70,
                                .seed = 7,
                                .mode = AVA_SPLIT_SHUFFLE,
                                .encoding = AVA_ENC_DEFAULT,
                                .quality = 95,
                                .threads = threads};
    int nsets = 0;
    if (ava_format_run(&spec, pack, outdir, NULL, NULL, sets, &nsets, err) != 0)
        fail_msg("format: %s", err);
    assert_int_equal(nsets, 2);
}

/* ava_format_run to LMDB: both sets of a 70/30 split readable through LMDB, every sample once
 * with its raw pixels (Caffe's BGR planes for RGB) and label, keys in set order, the sizes
 * reported, and the same bytes whatever the number of encoding threads. */
static void test_format_lmdb_sets(void **state) {
    enum { N = 3000 };
    char dir[64], path[160], name[32], err[AVA_ERRLEN];
    uint8_t px[28 * 28], want[28 * 28];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/pack", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    struct ava_pack_writer *pw;
    assert_int_equal(ava_pack_writer_open(path, &pw, err), 0);
    for (int i = 0; i < N; i++) {
        struct ava_sample s = {.label = i % 10, .name = name};
        snprintf(name, sizeof name, "c%d/img%05d.png", i % 10, i);
        s.len = fmt_pixels(i, px, &s.pix, &s.width, &s.height);
        s.data = px;
        assert_int_equal(ava_pack_add(pw, &s, err), 0);
    }
    assert_int_equal(ava_pack_writer_close(pw, err), 0);
    struct ava_format_set sets[2], sets1[2];
    format_pack(dir, "t2", 2, sets);
    assert_int_equal(sets[0].samples + sets[1].samples, N);
    assert_int_equal(sets[0].samples, N * 70 / 100);

    bool *seen = calloc(N, 1);
    for (int k = 0; k < 2; k++) {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        MDB_cursor *cur;
        MDB_val key, val;
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_open(env, sets[k].dir, MDB_RDONLY, 0644), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
        assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
        int64_t pos = 0;
        for (int rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT), pos++) {
            int at = -1, i = -1, c = -1, used = 0;
            CHECK(sscanf((const char *)key.mv_data, "%8d_c%d/img%5d.png%n", &at, &c, &i, &used) ==
                          3 &&
                      (size_t)used == key.mv_size && at == pos && i >= 0 && i < N && !seen[i],
                  "set %d entry %" PRId64 ": key %.*s", k, pos, (int)key.mv_size,
                  (const char *)key.mv_data);
            seen[i] = true;
            struct ava_datum d;
            assert_int_equal(ava_datum_decode(val.mv_data, val.mv_size, &d, err), 0);
            enum ava_pix pix;
            int w, h;
            size_t n = fmt_pixels(i, px, &pix, &w, &h), plane = (size_t)w * (size_t)h;
            memcpy(want, px, n);
            for (size_t p = 0; pix == AVA_PIX_RGB && p < plane; p++) { /* BGR planes */
                want[p] = px[3 * p + 2];
                want[plane + p] = px[3 * p + 1];
                want[2 * plane + p] = px[3 * p];
            }
            assert_false(d.encoded);
            assert_int_equal(d.channels, pix == AVA_PIX_RGB ? 3 : 1);
            assert_int_equal(d.width, w);
            assert_int_equal(d.height, h);
            assert_int_equal(d.label, i % 10);
            check_bytes("pixels", d.data, d.len, want, n);
        }
        assert_int_equal(pos, sets[k].samples);
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        char data[4200], lock[4200];
        snprintf(data, sizeof data, "%s/data.mdb", sets[k].dir);
        snprintf(lock, sizeof lock, "%s/lock.mdb", sets[k].dir);
        assert_int_equal(sets[k].bytes, ava_file_size(data) + ava_file_size(lock));
    }
    for (int i = 0; i < N; i++)
        CHECK(seen[i], "sample %d in no set", i);
    free(seen);

    for (int threads = 1; threads <= 3; threads += 2) {
        char out[16];
        snprintf(out, sizeof out, "t%d", threads);
        format_pack(dir, out, threads, sets1);
        for (int k = 0; k < 2; k++) {
            char p1[4200], p2[4200];
            size_t n1, n2;
            snprintf(p1, sizeof p1, "%s/data.mdb", sets[k].dir);
            snprintf(p2, sizeof p2, "%s/data.mdb", sets1[k].dir);
            char *f1 = slurp(p1, &n1), *f2 = slurp(p2, &n2);
            CHECK(n1 == n2 && memcmp(f1, f2, n1) == 0, "%d threads: set %d differs", threads, k);
            free(f1);
            free(f2);
        }
    }
    remove_tmpdir(dir);
}

/* ---- raw sets and lists ---- */

static void test_raw_set(void **state) {
    char dir[64], set[128], path[192], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(set, sizeof set, "%s/raw-80", dir);
    struct ava_raw_writer *w;
    assert_int_equal(ava_raw_writer_open(set, &w, err), 0);
    assert_int_equal(ava_raw_write(w, 0, 3, "cat/a.png", "AAA", 3, err), 0);
    assert_int_equal(ava_raw_write(w, 1, 0, "dog/x/b.png", "BB", 2, err), 0);
    assert_int_equal(ava_raw_write(w, 2, 1, "c.png", "", 0, err), 0);
    assert_int_equal(ava_raw_write(w, 3, 1, "cat/d.png", "D", 1, err), 0);
    static const char *bad[] = {"",    "../x", "a/../b", "/etc/passwd", "a//b", "a/",
                                "./a", "a/.",  "..",     "a\tb",        "a\nb", "x/..\n"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        int rc = ava_raw_write(w, 9, 0, bad[i], "Z", 1, err);
        if (rc != AVA_EINVALID)
            fail_msg("name '%s' accepted (rc %d)", bad[i], rc);
    }
    assert_int_equal(ava_raw_write(w, 4, 2, "cat/a.png", "E", 1, err), AVA_EEXISTS);
    assert_int_equal(ava_raw_writer_bytes(w), 6 + 14 + 16 + 10 + 14);
    assert_int_equal(ava_raw_writer_close(w, err), 0);

    const char list[] = "0\t3\tcat/a.png\n1\t0\tdog/x/b.png\n2\t1\tc.png\n3\t1\tcat/d.png\n";
    snprintf(path, sizeof path, "%s/list.lst", set);
    check_file(path, list, strlen(list));
    snprintf(path, sizeof path, "%s/cat/a.png", set);
    check_file(path, "AAA", 3);
    snprintf(path, sizeof path, "%s/dog/x/b.png", set);
    check_file(path, "BB", 2);
    snprintf(path, sizeof path, "%s/c.png", set);
    assert_int_equal(ava_file_size(path), 0);
    snprintf(path, sizeof path, "%s/x", dir); /* nothing escaped the set */
    assert_int_equal(ava_file_size(path), -1);

    /* a second writer on the same set is refused (list.lst exists) */
    assert_int_equal(ava_raw_writer_open(set, &w, err), AVA_EEXISTS);
    remove_tmpdir(dir);
}

static void test_lst_golden(void **state) {
    char dir[64], path[128], err[AVA_ERRLEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/train.lst", dir);
    struct ava_lst_writer *w;
    assert_int_equal(ava_lst_open(path, &w, err), 0);
    assert_int_equal(ava_lst_add(w, 0, 3, "cat/1.jpg", err), 0);
    assert_int_equal(ava_lst_add(w, 1, 0.1, "x.jpg", err), 0);
    const double two[] = {1, 2.25};
    assert_int_equal(ava_lst_add_multi(w, 2, two, 2, "y y.jpg", err), 0);
    assert_int_equal(ava_lst_add(w, 4294967295u, -1, "z.jpg", err), 0);
    assert_int_equal(ava_lst_add(w, 5, 1, "../z.jpg", err), AVA_EINVALID);
    assert_int_equal(ava_lst_add_multi(w, 5, two, 0, "z.jpg", err), AVA_EINVALID);
    assert_int_equal(ava_lst_close(w, err), 0);
    /* Python: '%d\t' % i + '%f\t' % label ... + '%s\n' % path */
    const char want[] = "0\t3.000000\tcat/1.jpg\n"
                        "1\t0.100000\tx.jpg\n"
                        "2\t1.000000\t2.250000\ty y.jpg\n"
                        "4294967295\t-1.000000\tz.jpg\n";
    check_file(path, want, strlen(want));
    remove_tmpdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recordio_golden),
        cmocka_unit_test(test_recordio_idx_offsets),
        cmocka_unit_test(test_irheader),
        cmocka_unit_test(test_recordio_image_golden),
        cmocka_unit_test(test_recordio_too_large),
        cmocka_unit_test(test_recordio_round_trip),
        cmocka_unit_test(test_recordio_reader_errors),
        cmocka_unit_test(test_datum_golden),
        cmocka_unit_test(test_datum_decode_malformed),
        cmocka_unit_test(test_lmdb_round_trip),
        cmocka_unit_test(test_lmdb_value_bigger_than_map),
        cmocka_unit_test(test_lmdb_bulk_tree_shapes),
        cmocka_unit_test(test_lmdb_bulk_values),
        cmocka_unit_test(test_lmdb_bulk_then_lmdb_writes),
        cmocka_unit_test(test_lmdb_bulk_write_error),
        cmocka_unit_test(test_bgwrite_order),
        cmocka_unit_test(test_bgwrite_error_sticks),
        cmocka_unit_test(test_bgwrite_sync_job),
        cmocka_unit_test(test_format_lmdb_sets),
        cmocka_unit_test(test_raw_set),
        cmocka_unit_test(test_lst_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
