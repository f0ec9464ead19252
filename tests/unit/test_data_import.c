/* test_data_import.c: src/data image coding and the importers (idx, cifar10, imagefolder, lst,
 * jsonlist) on tiny inputs written by the test, the real Fashion-MNIST files when installed,
 * and the malformed inputs each importer must refuse with a message naming the problem.
 *
 * Memory: the importers hold one sample's bytes at a time (idx: one image buffer; cifar10:
 * one record; lists and folders: one file buffer), which the Fashion-MNIST test exercises
 * over 70,000 samples; valgrind runs of this program show no growth with the sample count. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/common/path.h"
#include "../../src/data/image.h"
#include "../../src/data/import.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fixtures/import/fixture_writers.h"

static char tmp[256];

/* ---- helpers ---- */

static int setup_tmp(void **state) {
    snprintf(tmp, sizeof tmp, "/tmp/ava-test-import-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    return 0;
}

static int teardown_tmp(void **state) {
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_rm_rf(tmp, err), 0);
    return 0;
}

/* A path under the test's temp dir (from a pool of buffers, so a few can be used at once). */
static const char *P(const char *fmt, ...) {
    static char pool[8][1200];
    static int next;
    char *out = pool[next++ % 8];
    char rel[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(out, sizeof pool[0], "%s/%s", tmp, rel);
    return out;
}

static void mkdirs(const char *dir) {
    char err[AVA_ERRLEN] = "";
    CHECK(ava_mkdir_p(dir, 0755, err) == 0, "mkdir %s: %s", dir, err);
}

/* One sample as collected from an importer. */
struct got {
    char name[256];
    int label, pix, width, height;
    size_t len;
    uint8_t *data;
};

struct run {
    struct got s[64];
    int n;
    char *classes[64];
    int nclasses;
    int64_t expected;
};

static void run_free(struct run *r) {
    for (int i = 0; i < r->n; i++)
        free(r->s[i].data);
    for (int i = 0; i < r->nclasses; i++)
        free(r->classes[i]);
    memset(r, 0, sizeof *r);
}

/* Imports a whole source into r. Returns the first error (0 after the last sample). */
static int import_all(const char *spec, struct run *r, char *err) {
    memset(r, 0, sizeof *r);
    struct ava_importer *im = NULL;
    int rc = ava_import_open(spec, &im, err);
    if (rc < 0)
        return rc;
    r->expected = ava_import_expected(im);
    struct ava_sample s;
    while ((rc = ava_import_next(im, &s, err)) == 1) {
        assert_true(r->n < 64);
        struct got *g = &r->s[r->n++];
        *g = (struct got){.label = s.label,
                          .pix = (int)s.pix,
                          .width = s.width,
                          .height = s.height,
                          .len = s.len,
                          .data = malloc(s.len)};
        snprintf(g->name, sizeof g->name, "%s", s.name);
        memcpy(g->data, s.data, s.len);
    }
    if (rc == 0) {
        const char *const *names = ava_import_classes(im, &r->nclasses);
        assert_true(r->nclasses <= 64);
        for (int i = 0; i < r->nclasses; i++)
            r->classes[i] = strdup(names[i]);
    } else {
        /* an importer that failed keeps failing the same way */
        char again[AVA_ERRLEN] = "";
        assert_int_equal(ava_import_next(im, &s, again), rc);
        assert_string_equal(again, err);
    }
    ava_import_close(im);
    return rc;
}

/* Expects a source to fail (at open or at some sample) with code and a message holding each
 * of the NULL-terminated fragments. */
static void expect_fail(const char *spec, int code, ...) {
    struct run r;
    char err[AVA_ERRLEN] = "";
    int rc = import_all(spec, &r, err);
    run_free(&r);
    CHECK(rc == code, "%s: rc %d, want %d (%s)", spec, rc, code, err);
    CHECK(!strchr(err, '\n'), "%s: message '%s' spans lines", spec, err);
    va_list ap;
    va_start(ap, code);
    for (const char *frag = va_arg(ap, const char *); frag; frag = va_arg(ap, const char *))
        CHECK(strstr(err, frag), "%s: message '%s' lacks '%s'", spec, err, frag);
    va_end(ap);
}

/* ---- image.c ---- */

static void test_image_sniff(void **state) {
    const uint8_t jpg[] = {0xff, 0xd8, 0xff, 0xe0}, png[] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10};
    assert_int_equal(ava_image_sniff(jpg, sizeof jpg), AVA_IMAGE_JPEG);
    assert_int_equal(ava_image_sniff(png, sizeof png), AVA_IMAGE_PNG);
    assert_int_equal(ava_image_sniff(png, 7), AVA_IMAGE_UNKNOWN);
    assert_int_equal(ava_image_sniff((const uint8_t *)"GIF89a", 6), AVA_IMAGE_UNKNOWN);
}

/* Encodes and decodes p; checks size and channels and returns the largest pixel difference. */
static int roundtrip(const struct ava_pixels *p, bool png) {
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[AVA_ERRLEN] = "";
    int rc = png ? ava_image_encode_png(p, &buf, &len, err)
                 : ava_image_encode_jpeg(p, 95, &buf, &len, err);
    CHECK(rc == 0, "encode: %s", err);
    assert_int_equal(ava_image_sniff(buf, len), png ? AVA_IMAGE_PNG : AVA_IMAGE_JPEG);
    struct ava_pixels q;
    CHECK(ava_image_decode(buf, len, &q, err) == 0, "decode: %s", err);
    assert_int_equal(q.width, p->width);
    assert_int_equal(q.height, p->height);
    assert_int_equal(q.channels, p->channels);
    int maxdiff = 0;
    for (int i = 0; i < p->width * p->height * p->channels; i++) {
        int d = abs((int)p->data[i] - (int)q.data[i]);
        maxdiff = d > maxdiff ? d : maxdiff;
    }
    free(buf);
    ava_image_pixels_free(&q);
    return maxdiff;
}

static void test_image_roundtrips(void **state) {
    for (int ch = 1; ch <= 3; ch += 2) {
        struct ava_pixels p = pattern(37, 23, ch);
        assert_int_equal(roundtrip(&p, true), 0); /* PNG is lossless */
        ava_image_pixels_free(&p);
        /* JPEG: a smooth image survives quality 95 within a small tolerance */
        p = (struct ava_pixels){48, 32, ch, malloc(48 * 32 * (size_t)ch)};
        for (int i = 0; i < 48 * 32 * ch; i++)
            p.data[i] = (uint8_t)(40 + (i / ch) % 48 + (i / (48 * ch)) * 2 + (i % ch) * 20);
        int d = roundtrip(&p, false);
        CHECK(d <= 8, "JPEG %d-channel round trip differs by %d", ch, d);
        ava_image_pixels_free(&p);
    }
    struct ava_pixels p = pattern(4, 4, 3);
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_image_encode_jpeg(&p, 0, &buf, &len, err), AVA_EINVALID);
    p.channels = 2;
    assert_int_equal(ava_image_encode_png(&p, &buf, &len, err), AVA_EINVALID);
    p.channels = 3;
    ava_image_pixels_free(&p);
}

static void test_image_png_alpha_dropped(void **state) {
    png_image img = {
        .version = PNG_IMAGE_VERSION, .width = 2, .height = 1, .format = PNG_FORMAT_RGBA};
    const uint8_t rgba[8] = {10, 20, 30, 0, 200, 100, 50, 255};
    uint8_t out[1024];
    png_alloc_size_t size = sizeof out;
    assert_true(png_image_write_to_memory(&img, out, &size, 0, rgba, 0, NULL));
    struct ava_pixels q;
    char err[AVA_ERRLEN] = "";
    CHECK(ava_image_decode(out, size, &q, err) == 0, "%s", err);
    assert_int_equal(q.channels, 3);
    const uint8_t want[6] = {10, 20, 30, 200, 100, 50};
    assert_memory_equal(q.data, want, 6);
    ava_image_pixels_free(&q);
}

static void test_image_corrupt_refused(void **state) {
    struct ava_pixels p = pattern(64, 64, 3), q;
    uint8_t *jpg = NULL, *png = NULL;
    size_t jlen = 0, plen = 0;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_image_encode_jpeg(&p, 90, &jpg, &jlen, err), 0);
    assert_int_equal(ava_image_encode_png(&p, &png, &plen, err), 0);
    ava_image_pixels_free(&p);
    /* JPEG magic, then garbage */
    uint8_t garbage[64] = {0xff, 0xd8, 0xff};
    memset(garbage + 3, 0x5a, sizeof garbage - 3);
    assert_int_equal(ava_image_decode(garbage, sizeof garbage, &q, err), AVA_EINVALID);
    CHECK(strstr(err, "cannot decode JPEG: "), "%s", err);
    /* a JPEG cut in half */
    assert_int_equal(ava_image_decode(jpg, jlen / 2, &q, err), AVA_EINVALID);
    CHECK(strstr(err, "cannot decode JPEG: "), "%s", err);
    /* a PNG whose IDAT chunk's CRC does not match */
    uint8_t *bad = malloc(plen);
    memcpy(bad, png, plen);
    uint8_t *idat = memmem(bad, plen, "IDAT", 4);
    assert_non_null(idat);
    size_t idat_len = (size_t)idat[-4] << 24 | (size_t)idat[-3] << 16 | idat[-2] << 8 | idat[-1];
    idat[4 + idat_len] ^= 0xff;
    assert_int_equal(ava_image_decode(bad, plen, &q, err), AVA_EINVALID);
    CHECK(strstr(err, "cannot decode PNG: ") && strstr(err, "CRC"), "%s", err);
    /* a PNG cut short */
    assert_int_equal(ava_image_decode(png, plen / 2, &q, err), AVA_EINVALID);
    CHECK(strstr(err, "cannot decode PNG: "), "%s", err);
    assert_int_equal(ava_image_decode((const uint8_t *)"hello", 5, &q, err), AVA_EINVALID);
    CHECK(strstr(err, "neither JPEG nor PNG"), "%s", err);
    assert_null(q.data);
    free(bad);
    free(jpg);
    free(png);
}

static void test_image_resize(void **state) {
    static const struct {
        int w, h, shorter, ow, oh;
    } cases[] = {{40, 20, 10, 20, 10}, {20, 40, 10, 10, 20}, {30, 30, 15, 15, 15},
                 {33, 20, 10, 16, 10}, {20, 20, 20, 20, 20}, {5, 3, 6, 10, 6}};
    char err[AVA_ERRLEN] = "";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ava_pixels p = pattern(cases[i].w, cases[i].h, 3), q;
        assert_int_equal(ava_image_resize_shorter(&p, cases[i].shorter, &q, err), 0);
        CHECK(q.width == cases[i].ow && q.height == cases[i].oh, "%dx%d -> %d: got %dx%d",
              cases[i].w, cases[i].h, cases[i].shorter, q.width, q.height);
        assert_int_equal(q.channels, 3);
        if (cases[i].ow == cases[i].w && cases[i].oh == cases[i].h)
            assert_memory_equal(p.data, q.data, (size_t)(p.width * p.height * 3));
        ava_image_pixels_free(&p);
        ava_image_pixels_free(&q);
    }
    /* a flat image stays flat; a two-pixel ramp halves to its mean */
    struct ava_pixels flat = {8, 6, 1, malloc(48)}, q;
    memset(flat.data, 123, 48);
    assert_int_equal(ava_image_resize_shorter(&flat, 3, &q, err), 0);
    for (int i = 0; i < q.width * q.height; i++)
        assert_int_equal(q.data[i], 123);
    ava_image_pixels_free(&q);
    ava_image_pixels_free(&flat);
    struct ava_pixels ramp = {2, 2, 1, malloc(4)};
    for (int vertical = 0; vertical < 2; vertical++) {
        memcpy(ramp.data, vertical ? (uint8_t[]){0, 0, 100, 100} : (uint8_t[]){0, 100, 0, 100}, 4);
        assert_int_equal(ava_image_resize_shorter(&ramp, 1, &q, err), 0);
        assert_int_equal(q.width, 1);
        assert_int_equal(q.data[0], 50);
        ava_image_pixels_free(&q);
    }
    assert_int_equal(ava_image_resize_shorter(&ramp, 0, &q, err), AVA_EINVALID);
    ava_image_pixels_free(&ramp);
}

static void test_image_from_sample(void **state) {
    uint8_t grey[6] = {1, 2, 3, 4, 5, 6};
    struct ava_sample s = {
        .name = "x.png", .pix = AVA_PIX_GRAY, .width = 3, .height = 2, .data = grey, .len = 6};
    struct ava_pixels q;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_image_from_sample(&s, &q, err), 0);
    assert_int_equal(q.channels, 1);
    assert_memory_equal(q.data, grey, 6);
    ava_image_pixels_free(&q);
    s.len = 5;
    assert_int_equal(ava_image_from_sample(&s, &q, err), AVA_EINVALID);
    CHECK(strstr(err, "x.png"), "%s", err);
    struct ava_pixels p = pattern(3, 2, 3);
    uint8_t *png = NULL;
    size_t len = 0;
    assert_int_equal(ava_image_encode_png(&p, &png, &len, err), 0);
    s = (struct ava_sample){.name = "y.png", .pix = AVA_PIX_ENCODED, .data = png, .len = len};
    assert_int_equal(ava_image_from_sample(&s, &q, err), 0);
    assert_memory_equal(q.data, p.data, 18);
    ava_image_pixels_free(&q);
    s = (struct ava_sample){
        .name = "z.png", .pix = AVA_PIX_RGB, .width = 3, .height = 2, .data = p.data, .len = 18};
    assert_int_equal(ava_image_from_sample(&s, &q, err), 0);
    assert_memory_equal(q.data, p.data, 18);
    ava_image_pixels_free(&q);
    ava_image_pixels_free(&p);
    free(png);
}

/* ---- source specs ---- */

static void test_spec_errors(void **state) {
    expect_fail("mnist:/x", AVA_EINVALID, "unknown source kind 'mnist'",
                "idx:", "cifar10:", "imagefolder:", "lst:", "jsonlist:", NULL);
    expect_fail("/data/flowers", AVA_EINVALID, "not KIND:ARGS", NULL);
    expect_fail("idx:", AVA_EINVALID, "names no input", NULL);
    expect_fail("idx:train-images.gz", AVA_EINVALID, "is not IMAGES,LABELS", NULL);
    expect_fail("idx:a,b,c", AVA_EINVALID, "is not IMAGES,LABELS", NULL);
    expect_fail("lst:/x.lst", AVA_EINVALID, "expected FILE,ROOT", NULL);
    expect_fail("idx:/nonexistent/a,/nonexistent/b", AVA_ENOTFOUND, "/nonexistent/a", NULL);
    expect_fail("cifar10:/nonexistent/c.tar.gz", AVA_ENOTFOUND, "/nonexistent/c.tar.gz", NULL);
}

/* ---- idx ---- */

/* Writes a gzip pair "train" (3 images 6x7) and a plain pair "t10k" (2 images). */
static void write_idx_pairs(const char *dir) {
    mkdirs(P("%s", dir));
    write_idx_images(P("%s/train-images-idx3-ubyte.gz", dir), 2051, 3, 3, 6, 7, true);
    write_idx_labels(P("%s/train-labels-idx1-ubyte.gz", dir), 3, (uint8_t[]){3, 1, 9}, 3, true);
    write_idx_images(P("%s/t10k-images-idx3-ubyte", dir), 2051, 2, 2, 6, 7, false);
    write_idx_labels(P("%s/t10k-labels-idx1-ubyte", dir), 2, (uint8_t[]){0, 5}, 2, false);
}

static void test_idx_pairs(void **state) {
    write_idx_pairs("mnist");
    char spec[4096], err[AVA_ERRLEN] = "";
    snprintf(spec, sizeof spec, "idx:%s,%s+%s,%s", P("mnist/train-images-idx3-ubyte.gz"),
             P("mnist/train-labels-idx1-ubyte.gz"), P("mnist/t10k-images-idx3-ubyte"),
             P("mnist/t10k-labels-idx1-ubyte"));
    struct run r;
    CHECK(import_all(spec, &r, err) == 0, "%s", err);
    assert_int_equal(r.expected, 5);
    assert_int_equal(r.n, 5);
    const char *names[] = {"train-images-idx3-ubyte/00000.png", "train-images-idx3-ubyte/00001.png",
                           "train-images-idx3-ubyte/00002.png", "t10k-images-idx3-ubyte/00000.png",
                           "t10k-images-idx3-ubyte/00001.png"};
    const int labels[] = {3, 1, 9, 0, 5};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(r.s[i].name, names[i]);
        assert_int_equal(r.s[i].label, labels[i]);
        assert_int_equal(r.s[i].pix, AVA_PIX_GRAY);
        assert_int_equal(r.s[i].width, 7);
        assert_int_equal(r.s[i].height, 6);
        assert_int_equal(r.s[i].len, 42);
    }
    assert_int_equal(r.s[1].data[3 * 7 + 4], 77); /* image 1, row 3, column 4 */
    assert_int_equal(r.s[4].data[0], idx_pixel(1, 0, 0));
    assert_int_equal(r.nclasses, 10);
    assert_string_equal(r.classes[0], "0");
    assert_string_equal(r.classes[9], "9");
    run_free(&r);
}

static void test_idx_fashion_folder_names_classes(void **state) {
    write_idx_pairs("fashion-mnist");
    char spec[4096], err[AVA_ERRLEN] = "";
    snprintf(spec, sizeof spec, "idx:%s,%s", P("fashion-mnist/t10k-images-idx3-ubyte"),
             P("fashion-mnist/t10k-labels-idx1-ubyte"));
    struct run r;
    CHECK(import_all(spec, &r, err) == 0, "%s", err);
    assert_int_equal(r.nclasses, 10);
    assert_string_equal(r.classes[0], "T-shirt/top");
    assert_string_equal(r.classes[5], "Sandal");
    run_free(&r);
}

static void test_idx_malformed(void **state) {
    mkdirs(P("m"));
    const uint8_t labels[4] = {1, 2, 3, 4};
    char spec[4096];
#define IDX_SPEC(a, b) (snprintf(spec, sizeof spec, "idx:%s,%s", P(a), P(b)), spec)
    /* images truncated: the header says 4, the file holds 2 and a half */
    write_idx_images(P("m/short-images.gz"), 2051, 4, 2, 4, 4, true);
    write_idx_labels(P("m/labels4.gz"), 4, labels, 4, true);
    expect_fail(IDX_SPEC("m/short-images.gz", "m/labels4.gz"), AVA_EINVALID, "truncated IDX file ",
                "short-images.gz at image 2", NULL);
    /* labels truncated */
    write_idx_images(P("m/images4"), 2051, 4, 4, 4, 4, false);
    write_idx_labels(P("m/short-labels"), 4, labels, 3, false);
    expect_fail(IDX_SPEC("m/images4", "m/short-labels"), AVA_EINVALID, "truncated IDX file ",
                "short-labels at label 3", NULL);
    /* wrong magic; the pair given the wrong way round */
    write_idx_images(P("m/badmagic"), 2052, 4, 4, 4, 4, false);
    expect_fail(IDX_SPEC("m/badmagic", "m/labels4.gz"), AVA_EINVALID,
                "badmagic: wrong IDX magic 2052", NULL);
    expect_fail(IDX_SPEC("m/labels4.gz", "m/images4"), AVA_EINVALID, "wrong IDX magic 2049",
                "label file", NULL);
    /* counts differ */
    write_idx_labels(P("m/labels3"), 3, labels, 3, false);
    expect_fail(IDX_SPEC("m/images4", "m/labels3"), AVA_EINVALID,
                "label/image count mismatch: 4 images, 3 labels", NULL);
    /* a header cut short, a label past the classes, data past the count */
    write_bytes(P("m/stub"), "\0\0\x08\x03\0\0", 6, false);
    expect_fail(IDX_SPEC("m/stub", "m/labels4.gz"), AVA_EINVALID, "truncated IDX header", NULL);
    write_idx_labels(P("m/label12"), 4, (uint8_t[]){1, 12, 3, 4}, 4, false);
    expect_fail(IDX_SPEC("m/images4", "m/label12"), AVA_EINVALID, "label 12 out of range",
                "label12 at label 1", NULL);
    write_idx_images(P("m/long-images"), 2051, 3, 4, 4, 4, false);
    write_idx_labels(P("m/labels3"), 3, labels, 3, false);
    expect_fail(IDX_SPEC("m/long-images", "m/labels3"), AVA_EINVALID, "more data than its 3 images",
                NULL);
    /* a folder where a file should be: unreadable */
    mkdirs(P("m/dir-images"));
    expect_fail(IDX_SPEC("m/dir-images", "m/labels4.gz"), AVA_EIO, "dir-images", NULL);
#undef IDX_SPEC
}

static void test_idx_fashion_mnist_debian(void **state) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char spec[1024], err[AVA_ERRLEN] = "";
    snprintf(spec, sizeof spec,
             "idx:%s/train-images-idx3-ubyte.gz,%s/train-labels-idx1-ubyte.gz+"
             "%s/t10k-images-idx3-ubyte.gz,%s/t10k-labels-idx1-ubyte.gz",
             dir, dir, dir, dir);
    if (access("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", R_OK) != 0) {
        print_message("SKIP: Debian's dataset-fashion-mnist is not installed (%s)\n", dir);
        skip();
    }
    struct ava_importer *im = NULL;
    CHECK(ava_import_open(spec, &im, err) == 0, "%s", err);
    assert_int_equal(ava_import_expected(im), 70000);
    int n = 0;
    const char *const *classes = ava_import_classes(im, &n);
    assert_int_equal(n, 10);
    assert_string_equal(classes[0], "T-shirt/top");
    assert_string_equal(classes[9], "Ankle boot");
    struct ava_sample s;
    int64_t count = 0, per_class[10] = {0};
    int rc;
    while ((rc = ava_import_next(im, &s, err)) == 1) {
        if (count == 0) {
            assert_int_equal(s.label, 9); /* the first training image is an ankle boot */
            assert_string_equal(s.name, "train-images-idx3-ubyte/00000.png");
            assert_int_equal(s.width, 28);
            assert_int_equal(s.height, 28);
        }
        if (count == 69999)
            assert_string_equal(s.name, "t10k-images-idx3-ubyte/09999.png");
        per_class[s.label]++;
        count++;
    }
    CHECK(rc == 0, "%s", err);
    assert_int_equal(count, 70000);
    for (int i = 0; i < 10; i++)
        assert_int_equal(per_class[i], 7000);
    ava_import_close(im);
}

/* ---- cifar10 ---- */

static void write_cifar_folder(const char *dir, bool meta) {
    mkdirs(P("%s", dir));
    uint8_t buf[3 * 3073];
    for (int b = 0; b < 6; b++)
        write_bytes(P("%s/%s", dir, cifar_batches[b]), buf, cifar_batch(b, buf), false);
    if (meta)
        write_text(P("%s/batches.meta.txt", dir), cifar_meta);
}

static void test_cifar_folder_and_tarball(void **state) {
    write_cifar_folder("cifar", true);
    const int order[7] = {6, 2, 0, 4, 1, 5, 3}; /* meta first, batches out of order */
    write_cifar_tar(P("cifar.tar.gz"), order, 7);
    char spec[1024], err[AVA_ERRLEN] = "";
    struct run folder, tar;
    snprintf(spec, sizeof spec, "cifar10:%s", P("cifar"));
    CHECK(import_all(spec, &folder, err) == 0, "%s", err);
    snprintf(spec, sizeof spec, "cifar10:%s", P("cifar.tar.gz"));
    CHECK(import_all(spec, &tar, err) == 0, "%s", err);
    assert_int_equal(folder.n, 11);
    assert_int_equal(folder.expected, 11);
    assert_int_equal(tar.n, 11);
    assert_int_equal(tar.expected, 11);
    int k = 0;
    for (int b = 0; b < 6; b++)
        for (int i = 0; i < cifar_counts[b]; i++, k++) {
            char want[64];
            snprintf(want, sizeof want, "%.*s/%05d.png", (int)strlen(cifar_batches[b]) - 4,
                     cifar_batches[b], i);
            struct got *g = &folder.s[k];
            assert_string_equal(g->name, want);
            assert_int_equal(g->label, (b + 3 * i) % 10);
            assert_int_equal(g->pix, AVA_PIX_RGB);
            assert_int_equal(g->width, 32);
            assert_int_equal(g->len, 3072);
            const uint8_t rgb[3] = {(uint8_t)(10 * b + i), (uint8_t)(100 + i), (uint8_t)(200 + i)};
            assert_memory_equal(g->data, rgb, 3); /* planes interleaved */
            assert_int_equal(g->data[3 * 1023], 7);
            assert_string_equal(tar.s[k].name, g->name);
            assert_int_equal(tar.s[k].label, g->label);
            assert_memory_equal(tar.s[k].data, g->data, 3072);
        }
    assert_string_equal(folder.s[9].name, "test_batch/00000.png");
    assert_int_equal(folder.nclasses, 10);
    assert_string_equal(folder.classes[0], "airplane");
    assert_string_equal(tar.classes[9], "truck");
    run_free(&folder);
    run_free(&tar);
}

static void test_cifar_default_classes(void **state) {
    write_cifar_folder("nometa", false);
    const int order[6] = {0, 1, 2, 3, 4, 5};
    write_cifar_tar(P("nometa.tar.gz"), order, 6);
    char spec[1024], err[AVA_ERRLEN] = "";
    const char *srcs[2] = {P("nometa"), P("nometa.tar.gz")};
    for (int i = 0; i < 2; i++) {
        struct run r;
        snprintf(spec, sizeof spec, "cifar10:%s", srcs[i]);
        CHECK(import_all(spec, &r, err) == 0, "%s", err);
        assert_int_equal(r.nclasses, 10);
        assert_string_equal(r.classes[0], "0");
        assert_string_equal(r.classes[9], "9");
        run_free(&r);
    }
}

static void test_cifar_malformed(void **state) {
    char spec[1024];
    uint8_t buf[3 * 3073];
    /* a short final record in batch 3 */
    write_cifar_folder("short", true);
    size_t len = cifar_batch(2, buf);
    write_bytes(P("short/data_batch_3.bin"), buf, len - 100, false);
    snprintf(spec, sizeof spec, "cifar10:%s", P("short"));
    expect_fail(spec, AVA_EINVALID, "short CIFAR record in ", "data_batch_3.bin: 2973 bytes", NULL);
    /* label 12 in batch 3's record 1 */
    write_cifar_folder("label", true);
    len = cifar_batch(2, buf);
    buf[3073] = 12;
    write_bytes(P("label/data_batch_3.bin"), buf, len, false);
    snprintf(spec, sizeof spec, "cifar10:%s", P("label"));
    expect_fail(spec, AVA_EINVALID, "label 12 out of range in ", "data_batch_3.bin record 1", NULL);
    /* a batch missing from a folder and from a tarball; a bad meta file */
    unlink(P("label/data_batch_4.bin"));
    expect_fail(spec, AVA_ENOTFOUND, "data_batch_4.bin", NULL);
    const int order[5] = {0, 1, 2, 4, 5};
    write_cifar_tar(P("four.tar.gz"), order, 5);
    snprintf(spec, sizeof spec, "cifar10:%s", P("four.tar.gz"));
    expect_fail(spec, AVA_EINVALID, "holds no data_batch_4.bin", NULL);
    write_text(P("short/batches.meta.txt"), "cat\ndog\n");
    snprintf(spec, sizeof spec, "cifar10:%s", P("short"));
    expect_fail(spec, AVA_EINVALID, "batches.meta.txt: expected 10 class names, found 2", NULL);
    write_text(P("notatar"), "hello, this is not a tarball\n");
    snprintf(spec, sizeof spec, "cifar10:%s", P("notatar"));
    expect_fail(spec, AVA_EINVALID, "notatar", NULL);
}

/* ---- imagefolder ---- */

static void test_imagefolder_order(void **state) {
    mkdirs(P("flowers/tulip/sub/deeper"));
    mkdirs(P("flowers/daisy"));
    mkdirs(P("flowers/empty"));
    size_t a_len = write_image(P("flowers/tulip/b.png"), 9, 5, 3);
    write_image(P("flowers/tulip/a.JPG"), 8, 6, 1);
    write_image(P("flowers/tulip/sub/c.jpeg"), 4, 4, 3);
    write_image(P("flowers/tulip/sub/deeper/0.png"), 4, 4, 1);
    write_image(P("flowers/tulip/sub/d.png"), 4, 4, 1);
    write_image(P("flowers/daisy/z.png"), 3, 7, 3);
    write_image(P("flowers/top.png"), 3, 3, 3);    /* not in a class: ignored */
    write_text(P("flowers/tulip/notes.txt"), "x"); /* not an image: ignored */
    char spec[1024], err[AVA_ERRLEN] = "";
    snprintf(spec, sizeof spec, "imagefolder:%s", P("flowers"));
    struct run r;
    CHECK(import_all(spec, &r, err) == 0, "%s", err);
    const char *names[] = {"daisy/z.png",      "tulip/a.JPG",     "tulip/b.png",
                           "tulip/sub/c.jpeg", "tulip/sub/d.png", "tulip/sub/deeper/0.png"};
    const int labels[] = {0, 2, 2, 2, 2, 2};
    assert_int_equal(r.n, 6);
    assert_int_equal(r.expected, 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(r.s[i].name, names[i]);
        assert_int_equal(r.s[i].label, labels[i]);
        assert_int_equal(r.s[i].pix, AVA_PIX_ENCODED);
    }
    assert_int_equal(r.s[0].width, 3);
    assert_int_equal(r.s[0].height, 7);
    assert_int_equal(r.s[1].width, 8);
    assert_int_equal(r.s[2].len, a_len);
    assert_true(file_equals(P("flowers/tulip/b.png"), r.s[2].data, r.s[2].len));
    assert_int_equal(r.nclasses, 3);
    assert_string_equal(r.classes[0], "daisy");
    assert_string_equal(r.classes[1], "empty");
    assert_string_equal(r.classes[2], "tulip");
    run_free(&r);
}

static void test_imagefolder_malformed(void **state) {
    char spec[1024];
    snprintf(spec, sizeof spec, "imagefolder:%s", P("f"));
    mkdirs(P("f/cat"));
    write_image(P("f/cat/a.png"), 4, 4, 3);
    /* an undecodable JPEG */
    write_bytes(P("f/cat/b.jpg"), "\xff\xd8\xff\xe0garbage garbage", 19, false);
    expect_fail(spec, AVA_EINVALID, "cat/b.jpg", "cannot decode JPEG", NULL);
    unlink(P("f/cat/b.jpg"));
    /* a file with an image name that is not an image */
    write_text(P("f/cat/c.png"), "GIF89a");
    expect_fail(spec, AVA_EINVALID, "cat/c.png", "neither JPEG nor PNG", NULL);
    unlink(P("f/cat/c.png"));
    /* unreadable: chmod 000 does not stop root, so a dangling symlink stands for it */
    assert_int_equal(symlink(P("f/nowhere.png"), P("f/cat/d.png")), 0);
    expect_fail(spec, AVA_EIO, "cat/d.png", NULL);
    unlink(P("f/cat/d.png"));
    /* a symlink leading out of DIR */
    write_image(P("outside.png"), 4, 4, 3);
    assert_int_equal(symlink(P("outside.png"), P("f/cat/e.png")), 0);
    expect_fail(spec, AVA_EFORBIDDEN, "cat/e.png", "outside", NULL);
    unlink(P("f/cat/e.png"));
    /* a name that would break lists and keys, caught by the checks every sample passes */
    write_image(P("f/cat/tab\there.png"), 4, 4, 3);
    expect_fail(spec, AVA_EINVALID, "bad sample name 'cat/tab?here.png'", "control character",
                NULL);
    unlink(P("f/cat/tab\there.png"));
    /* a symlink loop */
    assert_int_equal(symlink("..", P("f/cat/up")), 0);
    expect_fail(spec, AVA_EINVALID, "cat/up", "loop", NULL);
    unlink(P("f/cat/up"));
    /* the good folder imports again, a folder without classes does not */
    struct run r;
    char err[AVA_ERRLEN] = "";
    CHECK(import_all(spec, &r, err) == 0, "%s", err);
    assert_int_equal(r.n, 1);
    run_free(&r);
    mkdirs(P("noclass"));
    write_image(P("noclass/a.png"), 4, 4, 3);
    snprintf(spec, sizeof spec, "imagefolder:%s", P("noclass"));
    expect_fail(spec, AVA_EINVALID, "no class subfolders", NULL);
}

/* ---- lst ---- */

static void test_lst(void **state) {
    mkdirs(P("root/imgs"));
    write_image(P("root/imgs/a.png"), 5, 4, 3);
    write_image(P("root/imgs/b.jpg"), 6, 4, 1);
    write_image(P("root/imgs/c c.png"), 7, 4, 3);
    write_text(P("train.lst"), "0\t1.000000\timgs/a.png\n"
                               "\n"
                               "1\t0\t2.000000\t./imgs//b.jpg\r\n"
                               "2 \t 3 \timgs/c c.png\n");
    char spec[2048], err[AVA_ERRLEN] = "";
    snprintf(spec, sizeof spec, "lst:%s,%s", P("train.lst"), P("root"));
    struct run r;
    CHECK(import_all(spec, &r, err) == 0, "%s", err);
    assert_int_equal(r.expected, 3);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.s[0].name, "imgs/a.png");
    assert_int_equal(r.s[0].label, 1);
    assert_string_equal(r.s[1].name, "imgs/b.jpg"); /* normalised; first label of several */
    assert_int_equal(r.s[1].label, 0);
    assert_int_equal(r.s[1].width, 6);
    assert_string_equal(r.s[2].name, "imgs/c c.png");
    assert_int_equal(r.s[2].label, 3);
    assert_true(file_equals(P("root/imgs/a.png"), r.s[0].data, r.s[0].len));
    assert_int_equal(r.nclasses, 4);
    assert_string_equal(r.classes[3], "3");
    run_free(&r);
}

static void test_lst_malformed(void **state) {
    mkdirs(P("root/imgs/adir"));
    write_image(P("root/imgs/a.png"), 5, 4, 3);
    static const struct {
        const char *line;
        int code;
        const char *frag;
    } cases[] = {
        {"0\t-1\timgs/a.png", AVA_EINVALID, "label -1 out of range"},
        {"0\t100000\timgs/a.png", AVA_EINVALID, "label 100000 out of range"},
        {"0\t2.5\timgs/a.png", AVA_EINVALID, "label 2.5 is not a whole number"},
        {"0\tcat\timgs/a.png", AVA_EINVALID, "label 'cat' is not a number"},
        {"0\t1\t../root/imgs/a.png", AVA_EINVALID, "'..' component"},
        {"0\t1\timgs/../imgs/a.png", AVA_EINVALID, "'..' component"},
        {"0\t1\t/etc/passwd", AVA_EINVALID, "absolute path"},
        {"0\timgs/a.png", AVA_EINVALID, "expected index<TAB>label<TAB>path"},
        {"x\t1\timgs/a.png", AVA_EINVALID, "bad index"},
        {"0\t1\timgs/adir", AVA_EIO, "imgs/adir"},
        {"0\t1\timgs/missing.png", AVA_EIO, "imgs/missing.png"},
    };
    char spec[2048], text[256];
    snprintf(spec, sizeof spec, "lst:%s,%s", P("bad.lst"), P("root"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* a good line first, so that the error must name line 2 */
        snprintf(text, sizeof text, "0\t0\timgs/a.png\n%s\n", cases[i].line);
        write_text(P("bad.lst"), text);
        expect_fail(spec, cases[i].code, cases[i].frag, "bad.lst line 2", NULL);
    }
}

/* ---- jsonlist ---- */

static void test_jsonlist(void **state) {
    mkdirs(P("list/imgs"));
    mkdirs(P("elsewhere"));
    write_image(P("list/imgs/a.png"), 5, 4, 3);
    write_image(P("list/imgs/b.jpg"), 6, 4, 1);
    write_image(P("elsewhere/c.png"), 7, 4, 3);
    char text[4096], spec[1024], err[AVA_ERRLEN] = "";
    snprintf(text, sizeof text,
             "{\"url\": \"imgs/a.png\", \"label\": \"dog\"}\n"
             "{\"url\": \"file://%s\", \"label\": \"cat\", \"extra\": 1}\n"
             "\n"
             "{\"url\": \"file://localhost%s\", \"label\": \"dog\"}\n",
             P("list/imgs/b.jpg"), P("elsewhere/c.png"));
    write_text(P("list/train.json"), text);
    snprintf(spec, sizeof spec, "jsonlist:%s", P("list/train.json"));
    struct run r;
    CHECK(import_all(spec, &r, err) == 0, "%s", err);
    assert_int_equal(r.expected, 3);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.s[0].name, "imgs/a.png");
    assert_int_equal(r.s[0].label, 0);
    assert_string_equal(r.s[1].name, "imgs/b.jpg"); /* inside the list's folder: relative */
    assert_int_equal(r.s[1].label, 1);
    assert_int_equal(r.s[1].width, 6);
    assert_string_equal(r.s[2].name, P("elsewhere/c.png") + 1); /* outside: absolute, no '/' */
    assert_int_equal(r.s[2].label, 0);
    assert_int_equal(r.nclasses, 2);
    assert_string_equal(r.classes[0], "dog");
    assert_string_equal(r.classes[1], "cat");
    run_free(&r);
    /* index labels: classes "0".."max" */
    write_text(P("list/idx.json"), "{\"url\":\"imgs/a.png\",\"label\":2}\n"
                                   "{\"url\":\"imgs/b.jpg\",\"label\":0}\n");
    snprintf(spec, sizeof spec, "jsonlist:%s", P("list/idx.json"));
    CHECK(import_all(spec, &r, err) == 0, "%s", err);
    assert_int_equal(r.s[0].label, 2);
    assert_int_equal(r.s[1].label, 0);
    assert_int_equal(r.nclasses, 3);
    assert_string_equal(r.classes[2], "2");
    run_free(&r);
}

static void test_jsonlist_malformed(void **state) {
    mkdirs(P("list/imgs"));
    write_image(P("list/imgs/a.png"), 5, 4, 3);
    static const struct {
        const char *line;
        int code;
        const char *frag;
    } cases[] = {
        {"{\"url\": \"imgs/a.png\", \"label\": ", AVA_EINVALID, "malformed JSON"},
        {"[1, 2]", AVA_EINVALID, "expected a JSON object"},
        {"{\"label\": \"dog\"}", AVA_EINVALID, "\"url\" must be a non-empty string"},
        {"{\"url\": \"imgs/a.png\", \"label\": true}", AVA_EINVALID, "\"label\" must be"},
        {"{\"url\": \"imgs/a.png\", \"label\": 1}", AVA_EINVALID, "is an index but earlier"},
        {"{\"url\": \"http://x/a.png\", \"label\": \"dog\"}", AVA_EINVALID,
         "only local paths and file:// URLs are supported"},
        {"{\"url\": \"../list/imgs/a.png\", \"label\": \"dog\"}", AVA_EINVALID, "'..' component"},
        {"{\"url\": \"file:///tmp/../etc/x.png\", \"label\": \"dog\"}", AVA_EINVALID, "'..'"},
        {"{\"url\": \"/etc/passwd\", \"label\": \"dog\"}", AVA_EINVALID, "absolute path"},
        {"{\"url\": \"file://server/x.png\", \"label\": \"dog\"}", AVA_EINVALID, "names a host"},
        {"{\"url\": \"imgs/none.png\", \"label\": \"dog\"}", AVA_EIO, "imgs/none.png"},
        {"{\"url\": \"imgs\", \"label\": \"dog\"}", AVA_EIO, "not a regular file"},
        {"{\"url\": \"imgs/a.png\", \"label\": \"a\\nb\"}", AVA_EINVALID, "bad class name 'a?b'"},
        {"{\"url\": \"imgs/a\\n.png\", \"label\": \"dog\"}", AVA_EINVALID, "'imgs/a?.png' refused"},
    };
    char spec[1024], text[512];
    snprintf(spec, sizeof spec, "jsonlist:%s", P("list/bad.json"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "{\"url\": \"imgs/a.png\", \"label\": \"cat\"}\n%s\n",
                 cases[i].line);
        write_text(P("list/bad.json"), text);
        expect_fail(spec, cases[i].code, cases[i].frag, "bad.json line 2", NULL);
    }
    /* a name after index labels */
    write_text(P("list/bad.json"), "{\"url\": \"imgs/a.png\", \"label\": 0}\n"
                                   "{\"url\": \"imgs/a.png\", \"label\": \"0\"}\n");
    expect_fail(spec, AVA_EINVALID,
                "bad.json line 2: label is a name but earlier lines use indices", NULL);
    /* an over-long line */
    char *big = malloc(70000);
    memset(big, ' ', 69999);
    big[0] = '{';
    big[69998] = '}';
    big[69999] = '\0';
    write_text(P("list/bad.json"), big);
    free(big);
    expect_fail(spec, AVA_EINVALID, "line 1 is longer than", NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_tmp, teardown_tmp)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_image_sniff),
        T(test_image_roundtrips),
        T(test_image_png_alpha_dropped),
        T(test_image_corrupt_refused),
        T(test_image_resize),
        T(test_image_from_sample),
        T(test_spec_errors),
        T(test_idx_pairs),
        T(test_idx_fashion_folder_names_classes),
        T(test_idx_malformed),
        T(test_idx_fashion_mnist_debian),
        T(test_cifar_folder_and_tarball),
        T(test_cifar_default_classes),
        T(test_cifar_malformed),
        T(test_imagefolder_order),
        T(test_imagefolder_malformed),
        T(test_lst),
        T(test_lst_malformed),
        T(test_jsonlist),
        T(test_jsonlist_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
