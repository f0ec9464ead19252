/* test_data_split.c: src/data/split.c against CPython's random module (outputs recorded by
 * tests/fixtures/split/cpython_expected.py), the split invariants, and src/data/pack.c's
 * round trip and its refusal of corrupt packs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/buf.h"
#include "../../src/common/err.h"
#include "../../src/common/path.h"
#include "../../src/data/pack.h"
#include "../../src/data/split.h"

#include <endian.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

/* FNV-1a 64 with one step per value, as cpython_expected.py computes it. */
static uint64_t fnv_order(const uint32_t *v, uint32_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ v[i]) * 0x100000001b3ULL;
    return h;
}

/* Fails unless v holds each of 0..n-1 exactly once. */
static void check_permutation(const uint32_t *v, uint32_t n, const char *what) {
    uint8_t *seen = calloc((size_t)n + 1, 1);
    assert_non_null(seen);
    for (uint32_t i = 0; i < n; i++) {
        CHECK(v[i] < n, "%s: entry %u = %u is out of range", what, i, v[i]);
        CHECK(!seen[v[i]], "%s: index %u appears twice", what, v[i]);
        seen[v[i]] = 1;
    }
    free(seen);
}

static void make_tmpdir(char *out, size_t outlen) {
    snprintf(out, outlen, "/tmp/ava-test-split-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static void remove_tmpdir(const char *dir) {
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_rm_rf(dir, err), 0);
}

/* ---- CPython equality (values from CPython 3.11.7, see tests/fixtures/split/) ---- */

struct genrand_case {
    uint64_t seed;
    uint32_t out[10];
};

static const struct genrand_case genrand_cases[] = {
    {100,
     {625644691U, 1973661107U, 1953896601U, 4087596401U, 3310491232U, 750534796U, 3030156252U,
      1688066670U, 3143739853U, 1502108412U}},
    {0,
     {3626764237U, 1654615998U, 3255389356U, 3823568514U, 1806341205U, 173879092U, 1112038970U,
      4146640122U, 2195908194U, 2087043557U}},
    {(1ULL << 40) + 5,
     {2166296868U, 2220160828U, 1153647273U, 2850991874U, 3976222944U, 117802120U, 2280452553U,
      3257480346U, 3513130008U, 3583148323U}},
};

/* random.seed(s); [random.getrandbits(32) for _ in range(10)] */
static void test_mt_genrand_cpython(void **state) {
    (void)state;
    for (size_t c = 0; c < N_ELEMS(genrand_cases); c++) {
        struct ava_mt mt;
        ava_mt_seed_py(&mt, genrand_cases[c].seed);
        for (int i = 0; i < 10; i++) {
            uint32_t got = ava_mt_next(&mt);
            CHECK(got == genrand_cases[c].out[i], "seed %llu output %d: %u, CPython %u",
                  (unsigned long long)genrand_cases[c].seed, i, got, genrand_cases[c].out[i]);
        }
    }
}

struct randbelow_case {
    uint32_t n;
    uint32_t out[20];
};

static const struct randbelow_case randbelow_cases[] = {
    {1, {0}},
    {2, {0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0}},
    {3, {0, 1, 1, 0, 2, 1, 2, 1, 1, 2, 0, 2, 0, 0, 2, 1, 1, 0, 2, 2}},
    {2147483649U,
     {625644691U,  1973661107U, 1953896601U, 750534796U,  1688066670U, 1502108412U, 1861930331U,
      472317864U,  521030474U,  344257543U,  1958272647U, 1131364594U, 205675327U,  878258510U,
      1440320622U, 986576406U,  1328888339U, 875612951U,  766483143U,  604865750U}},
};

/* r = random.Random(100); [r._randbelow(n) for _ in range(20)]; n = 2^31 + 1 rejects the
 * outputs >= n (4087596401, 3310491232, ...), so the draws skip them as CPython does. */
static void test_mt_randbelow_cpython(void **state) {
    (void)state;
    for (size_t c = 0; c < N_ELEMS(randbelow_cases); c++) {
        struct ava_mt mt;
        ava_mt_seed_py(&mt, 100);
        for (int i = 0; i < 20; i++) {
            uint32_t got = ava_mt_randbelow(&mt, randbelow_cases[c].n);
            CHECK(got == randbelow_cases[c].out[i], "randbelow(%u) draw %d: %u, CPython %u",
                  randbelow_cases[c].n, i, got, randbelow_cases[c].out[i]);
        }
    }
}

struct shuffle_case {
    uint64_t seed;
    uint32_t n;
    uint64_t fnv;
    uint32_t first[20];
};

static const struct shuffle_case shuffle_cases[] = {
    {100, 10, 0x507db315ea7cbc90ULL, {4, 0, 5, 9, 3, 1, 6, 8, 7, 2}},
    {100, 1000, 0x6ba85e2207662f61ULL, {342, 471, 929, 100, 543, 231, 154, 450, 721, 788,
                                        685, 61,  526, 69,  569, 400, 807, 326, 662, 220}},
    {100, 70000, 0xb017622b1e48b451ULL, {39964, 6788,  991,   40350, 25939, 57260, 14084,
                                         28097, 53404, 8004,  3520,  29670, 25935, 57789,
                                         7237,  67160, 33632, 39394, 62550, 36471}},
    {0, 10, 0x4d52a13464896c4aULL, {7, 8, 1, 5, 3, 4, 2, 0, 9, 6}},
    {0, 1000, 0x8d2f20bb9607fa79ULL, {439, 621, 160, 549, 237, 389, 658, 507, 124, 290,
                                      975, 392, 231, 969, 354, 657, 914, 719, 302, 109}},
    {0, 70000, 0xe66bb29b296ca83fULL, {65343, 65886, 45933, 7322,  64281, 61549, 69223,
                                       17607, 41155, 38385, 69997, 48981, 31116, 12356,
                                       7512,  68073, 23280, 55387, 8999,  5762}},
    {(1ULL << 40) + 5, 10, 0xd8e7365479798620ULL, {1, 2, 3, 6, 7, 0, 5, 4, 9, 8}},
    {(1ULL << 40) + 5, 1000, 0x25cb1d3237dfccffULL, {207, 690, 542, 290, 700, 351, 177,
                                                     707, 551, 415, 213, 759, 833, 251,
                                                     39,  754, 421, 823, 789, 627}},
    {(1ULL << 40) + 5, 70000, 0x973b6cbcd88bb0e3ULL, {49257, 2636,  31023, 2070,  26825,
                                                      58032, 33651, 5796,  46232, 8997,
                                                      8768,  67924, 29745, 26166, 67413,
                                                      65213, 19761, 57082, 4460,  4143}},
};

/* random.seed(s); x = list(range(n)); random.shuffle(x) */
static void test_mt_shuffle_cpython(void **state) {
    (void)state;
    for (size_t c = 0; c < N_ELEMS(shuffle_cases); c++) {
        const struct shuffle_case *t = &shuffle_cases[c];
        uint32_t *v = malloc(t->n * sizeof *v);
        assert_non_null(v);
        for (uint32_t i = 0; i < t->n; i++)
            v[i] = i;
        struct ava_mt mt;
        ava_mt_seed_py(&mt, t->seed);
        ava_mt_shuffle(&mt, v, t->n);
        for (uint32_t i = 0; i < t->n && i < 20; i++)
            CHECK(v[i] == t->first[i], "seed %llu n %u: x[%u] = %u, CPython %u",
                  (unsigned long long)t->seed, t->n, i, v[i], t->first[i]);
        CHECK(fnv_order(v, t->n) == t->fnv, "seed %llu n %u: checksum %016llx, CPython %016llx",
              (unsigned long long)t->seed, t->n, (unsigned long long)fnv_order(v, t->n),
              (unsigned long long)t->fnv);
        free(v);
    }
}

/* im2rec.py --list --train-ratio 0.29 over 100 files: the whole shuffled list. */
static const uint32_t im2rec_100[100] = {
    57, 76, 27, 11, 17, 34, 83, 89, 19, 31, 62, 2,  5,  85, 53, 79, 4,  73, 69, 41,
    16, 66, 7,  46, 13, 65, 88, 43, 70, 71, 72, 60, 30, 63, 56, 84, 21, 37, 75, 32,
    45, 94, 61, 3,  67, 78, 8,  74, 40, 28, 95, 80, 1,  91, 12, 86, 36, 54, 49, 9,
    25, 38, 0,  23, 87, 20, 48, 35, 59, 51, 77, 52, 47, 92, 24, 99, 96, 81, 39, 29,
    42, 26, 82, 6,  33, 97, 10, 15, 68, 14, 64, 55, 44, 93, 50, 90, 22, 98, 58, 18};

struct im2rec_case {
    uint32_t n;
    int percent;
    uint32_t sep;
    uint64_t fnv;
    uint32_t first[5];
};

/* int(N * float("0.PP")) from CPython; 70000 at 69 % truncates 48299.99999999999. */
static const struct im2rec_case im2rec_cases[] = {
    {100, 29, 28, 0xc8c2d81a115e00cbULL, {57, 76, 27, 11, 17}},
    {1000, 80, 800, 0x6ba85e2207662f61ULL, {342, 471, 929, 100, 543}},
    {70000, 69, 48299, 0xb017622b1e48b451ULL, {39964, 6788, 991, 40350, 25939}},
};

/* AVA_SPLIT_IM2REC reproduces im2rec's order and sep, whatever seed is given. */
static void test_split_im2rec_cpython(void **state) {
    (void)state;
    char err[AVA_ERRLEN] = "";
    for (size_t c = 0; c < N_ELEMS(im2rec_cases); c++) {
        const struct im2rec_case *t = &im2rec_cases[c];
        for (uint64_t seed = 0; seed < 3; seed++) {
            uint32_t *order = NULL, ntrain = 0;
            int rc = ava_split_order(t->n, t->percent, seed * 977, AVA_SPLIT_IM2REC, NULL, 0,
                                     &order, &ntrain, err);
            CHECK(rc == 0, "im2rec n %u: %s", t->n, err);
            CHECK(ntrain == t->sep, "im2rec n %u at %d %%: sep %u, CPython %u", t->n, t->percent,
                  ntrain, t->sep);
            CHECK(fnv_order(order, t->n) == t->fnv, "im2rec n %u: order differs from CPython",
                  t->n);
            for (int i = 0; i < 5; i++)
                CHECK(order[i] == t->first[i], "im2rec n %u: [%d] = %u, CPython %u", t->n, i,
                      order[i], t->first[i]);
            if (t->n == 100)
                for (int i = 0; i < 100; i++)
                    CHECK(order[i] == im2rec_100[i], "im2rec 100: [%d] = %u, CPython %u", i,
                          order[i], im2rec_100[i]);
            free(order);
        }
    }
}

/* ---- split invariants ---- */

/* A skewed 5-class labelling: half class 0, 30 % class 1, the rest split three ways. */
static int skewed_label(uint32_t i) {
    uint32_t r = i % 10;
    if (r < 5)
        return 0;
    if (r < 8)
        return 1;
    return r == 8 ? 2 : (int)(3 + i % 2);
}

/* The train size each mode promises; im2rec's differs where CPython's double product falls
 * just below an integer (from Python: int(100 * 0.29) == 28, int(70000 * 0.69) == 48299). */
static uint32_t expected_ntrain(uint32_t n, int percent, enum ava_split_mode mode) {
    uint32_t t = (uint32_t)((uint64_t)n * (uint64_t)percent / 100);
    static const struct {
        uint32_t n;
        int percent;
    } below[] = {{100, 29}, {100, 57}, {100, 58}, {70000, 69}};
    if (mode == AVA_SPLIT_IM2REC)
        for (size_t k = 0; k < N_ELEMS(below); k++)
            if (below[k].n == n && below[k].percent == percent)
                return t - 1;
    return t;
}

/* Checks that each class's train count is within 1 of count_c * percent / 100. */
static void check_stratified(const uint32_t *order, uint32_t n, uint32_t ntrain, int percent,
                             const int *labels) {
    uint64_t count[5] = {0}, train[5] = {0};
    for (uint32_t i = 0; i < n; i++) {
        count[labels[order[i]]]++;
        if (i < ntrain)
            train[labels[order[i]]]++;
    }
    for (int c = 0; c < 5; c++) {
        int64_t diff = (int64_t)(train[c] * 100) - (int64_t)(count[c] * (uint64_t)percent);
        CHECK(diff > -100 && diff < 100,
              "stratified n %u at %d %%: class %d has %llu of %llu in train", n, percent, c,
              (unsigned long long)train[c], (unsigned long long)count[c]);
    }
}

/* Permutation, train size, determinism, seed sensitivity and stratification over a grid. */
static void test_split_invariants(void **state) {
    (void)state;
    static const uint32_t ns[] = {0, 1, 7, 100, 1000, 70000};
    static const int percents[] = {1, 29, 50, 80, 99, 100};
    static const enum ava_split_mode modes[] = {AVA_SPLIT_SHUFFLE, AVA_SPLIT_STRATIFIED,
                                                AVA_SPLIT_IM2REC};
    int *labels = malloc(70000 * sizeof *labels);
    assert_non_null(labels);
    for (uint32_t i = 0; i < 70000; i++)
        labels[i] = skewed_label(i);
    char err[AVA_ERRLEN] = "";
    for (size_t a = 0; a < N_ELEMS(ns); a++)
        for (size_t b = 0; b < N_ELEMS(percents); b++)
            for (size_t m = 0; m < N_ELEMS(modes); m++) {
                uint32_t n = ns[a], *o1 = NULL, *o2 = NULL, *o3 = NULL, t1 = 0, t2 = 0, t3 = 0;
                int p = percents[b];
                char what[96];
                snprintf(what, sizeof what, "mode %d n %u at %d %%", (int)modes[m], n, p);
                CHECK(ava_split_order(n, p, 42, modes[m], labels, 5, &o1, &t1, err) == 0 &&
                          ava_split_order(n, p, 42, modes[m], labels, 5, &o2, &t2, err) == 0 &&
                          ava_split_order(n, p, 43, modes[m], labels, 5, &o3, &t3, err) == 0,
                      "%s: %s", what, err);
                assert_non_null(o1);
                check_permutation(o1, n, what);
                CHECK(t1 == expected_ntrain(n, p, modes[m]), "%s: ntrain %u, expected %u", what, t1,
                      expected_ntrain(n, p, modes[m]));
                CHECK(t1 == t2 && memcmp(o1, o2, n * sizeof *o1) == 0, "%s: not deterministic",
                      what);
                int differs = t1 != t3 || memcmp(o1, o3, n * sizeof *o1) != 0;
                CHECK(modes[m] == AVA_SPLIT_IM2REC ? !differs : (n < 10 || differs),
                      "%s: seeds 42 and 43 %s", what, differs ? "differ" : "give one order");
                if (modes[m] == AVA_SPLIT_STRATIFIED)
                    check_stratified(o1, n, t1, p, labels);
                free(o1);
                free(o2);
                free(o3);
            }
    free(labels);
}

/* Shuffle mode is exactly "seed, shuffle 0..n-1, cut": the 80 % and 20 % sets share it. */
static void test_split_shuffle_is_one_shuffle(void **state) {
    (void)state;
    char err[AVA_ERRLEN] = "";
    uint32_t *order, ntrain;
    assert_int_equal(ava_split_order(1000, 80, 0, AVA_SPLIT_SHUFFLE, NULL, 0, &order, &ntrain, err),
                     0);
    assert_int_equal(ntrain, 800);
    assert_true(fnv_order(order, 1000) == 0x8d2f20bb9607fa79ULL); /* CPython seed 0, n 1000 */
    free(order);
}

/* Largest remainders: classes of 2, 3 and 5 at 30 % want 0.6, 0.9 and 1.5; the floors give
 * 1 of the 3 train slots, the remainders 90 and 60 win the other two. Ties: lower class. */
static void test_split_stratified_apportion(void **state) {
    (void)state;
    char err[AVA_ERRLEN] = "";
    static const int labels[10] = {0, 1, 2, 2, 1, 2, 0, 2, 1, 2};
    uint32_t *order, ntrain;
    assert_int_equal(
        ava_split_order(10, 30, 5, AVA_SPLIT_STRATIFIED, labels, 3, &order, &ntrain, err), 0);
    assert_int_equal(ntrain, 3);
    int per[3] = {0};
    for (uint32_t i = 0; i < ntrain; i++)
        per[labels[order[i]]]++;
    assert_int_equal(per[0], 1);
    assert_int_equal(per[1], 1);
    assert_int_equal(per[2], 1);
    free(order);

    /* three one-sample classes at 50 %: one slot, every remainder 50, class 0 gets it */
    static const int single[3] = {2, 0, 1};
    assert_int_equal(
        ava_split_order(3, 50, 9, AVA_SPLIT_STRATIFIED, single, 3, &order, &ntrain, err), 0);
    assert_int_equal(ntrain, 1);
    assert_int_equal(order[0], 1); /* the class-0 sample */
    free(order);
}

/* The classes are interleaved in both parts, not laid out class after class. */
static void test_split_stratified_interleaves(void **state) {
    (void)state;
    char err[AVA_ERRLEN] = "";
    int labels[1000];
    for (int i = 0; i < 1000; i++)
        labels[i] = i < 500 ? 0 : 1; /* sorted by class, as importers often produce */
    uint32_t *order, ntrain;
    assert_int_equal(
        ava_split_order(1000, 80, 1, AVA_SPLIT_STRATIFIED, labels, 2, &order, &ntrain, err), 0);
    assert_int_equal(ntrain, 800);
    int seen_train[2] = {0}, seen_rest[2] = {0};
    for (int i = 0; i < 50; i++) {
        seen_train[labels[order[i]]]++;
        seen_rest[labels[order[ntrain + i]]]++;
    }
    CHECK(seen_train[0] && seen_train[1] && seen_rest[0] && seen_rest[1],
          "the first 50 of a part hold one class only (%d/%d, %d/%d)", seen_train[0], seen_train[1],
          seen_rest[0], seen_rest[1]);
    free(order);
}

/* An empty dataset splits into an empty (still allocated) order in every mode, labels or not. */
static void test_split_empty(void **state) {
    (void)state;
    char err[AVA_ERRLEN] = "";
    for (int m = AVA_SPLIT_SHUFFLE; m <= AVA_SPLIT_IM2REC; m++) {
        uint32_t *order = NULL, ntrain = 5;
        int rc = ava_split_order(0, 80, 1, (enum ava_split_mode)m, NULL, 0, &order, &ntrain, err);
        CHECK(rc == 0, "mode %d: %s", m, err);
        assert_non_null(order);
        assert_int_equal(ntrain, 0);
        free(order);
    }
}

/* Bad percent, missing or out-of-range labels: AVA_EINVALID with a message, *order NULL. */
static void test_split_errors(void **state) {
    (void)state;
    static const int labels[4] = {0, 1, 2, 1};
    static const int bad_label[4] = {0, 1, 3, 1};
    static const int negative[4] = {0, -1, 0, 1};
    struct {
        int percent;
        enum ava_split_mode mode;
        const int *labels;
        int nclasses;
        const char *msg;
    } cases[] = {
        {0, AVA_SPLIT_SHUFFLE, NULL, 0, "percent"},
        {101, AVA_SPLIT_IM2REC, NULL, 0, "percent"},
        {-5, AVA_SPLIT_STRATIFIED, labels, 3, "percent"},
        {50, AVA_SPLIT_STRATIFIED, NULL, 3, "labels"},
        {50, AVA_SPLIT_STRATIFIED, labels, 0, "classes"},
        {50, AVA_SPLIT_STRATIFIED, bad_label, 3, "sample 2 has label 3"},
        {50, AVA_SPLIT_STRATIFIED, negative, 3, "sample 1 has label -1"},
        {50, (enum ava_split_mode)7, NULL, 0, "mode"},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        char err[AVA_ERRLEN] = "";
        uint32_t *order = (uint32_t *)1, ntrain = 99;
        int rc = ava_split_order(4, cases[c].percent, 1, cases[c].mode, cases[c].labels,
                                 cases[c].nclasses, &order, &ntrain, err);
        CHECK(rc == AVA_EINVALID, "case %zu: rc %d", c, rc);
        CHECK(order == NULL, "case %zu: order not NULL", c);
        CHECK(strstr(err, cases[c].msg), "case %zu: message '%s' lacks '%s'", c, err, cases[c].msg);
    }
}

/* ---- pack ---- */

/* The i-th sample of the round-trip set: every pixel kind, names of many lengths (up to the
 * maximum), sizes from 0 bytes up; data filled with bytes derived from i. */
static void make_sample(uint32_t i, struct ava_sample *s, char *name, uint8_t *data) {
    size_t nlen = i == 7 ? AVA_SAMPLE_NAME_MAX : 8 + (i * 13) % 200;
    int k = snprintf(name, nlen + 1, "c%u/%05u_", i % 7, i);
    for (size_t j = (size_t)k; j < nlen; j++)
        name[j] = (char)('a' + (i + j) % 26);
    name[nlen] = '\0';
    s->label = (int)(i % 7);
    s->name = name;
    s->pix = (enum ava_pix)(i % 3);
    s->width = (int)(i % 40);
    s->height = (int)(i % 33);
    s->len = i % 50 == 0 ? 0 : (i * 37u) % 5000 + 1;
    for (size_t j = 0; j < s->len; j++)
        data[j] = (uint8_t)(i * 31 + j * 7);
    s->data = data;
}

/* Writes n samples of make_sample into dir. */
static void write_pack(const char *dir, uint32_t n) {
    char err[AVA_ERRLEN] = "", name[AVA_SAMPLE_NAME_MAX + 1];
    static uint8_t data[5000];
    struct ava_pack_writer *w;
    CHECK(ava_pack_writer_open(dir, &w, err) == 0, "open: %s", err);
    for (uint32_t i = 0; i < n; i++) {
        struct ava_sample s;
        make_sample(i, &s, name, data);
        CHECK(ava_pack_add(w, &s, err) == 0, "add %u: %s", i, err);
    }
    CHECK(ava_pack_writer_close(w, err) == 0, "close: %s", err);
}

/* 1000 mixed samples read back equal, by index, in a shuffled order. */
static void test_pack_roundtrip(void **state) {
    (void)state;
    char dir[64], err[AVA_ERRLEN] = "", name[AVA_SAMPLE_NAME_MAX + 1];
    static uint8_t data[5000];
    make_tmpdir(dir, sizeof dir);
    write_pack(dir, 1000);
    struct ava_pack *p;
    CHECK(ava_pack_open(dir, &p, err) == 0, "open: %s", err);
    assert_int_equal(ava_pack_count(p), 1000);
    uint32_t order[1000];
    for (uint32_t i = 0; i < 1000; i++)
        order[i] = i;
    struct ava_mt mt;
    ava_mt_seed_py(&mt, 3);
    ava_mt_shuffle(&mt, order, 1000);
    for (uint32_t k = 0; k < 1000; k++) {
        uint32_t i = order[k];
        struct ava_sample want, got;
        make_sample(i, &want, name, data);
        CHECK(ava_pack_get(p, i, &got, err) == 0, "get %u: %s", i, err);
        CHECK(got.label == want.label && got.pix == want.pix && got.width == want.width &&
                  got.height == want.height && got.len == want.len,
              "sample %u: header differs", i);
        CHECK(strcmp(got.name, want.name) == 0, "sample %u: name differs", i);
        CHECK(got.len == 0 || memcmp(got.data, want.data, got.len) == 0, "sample %u: data differs",
              i);
    }
    struct ava_sample s;
    assert_int_equal(ava_pack_get(p, 1000, &s, err), AVA_EINVALID);
    ava_pack_close(p);
    ava_pack_close(NULL);
    remove_tmpdir(dir);
}

/* A pack of no samples opens (two empty files, nothing to map) and counts 0. */
static void test_pack_empty(void **state) {
    (void)state;
    char dir[64], err[AVA_ERRLEN] = "";
    make_tmpdir(dir, sizeof dir);
    write_pack(dir, 0);
    struct ava_pack *p;
    CHECK(ava_pack_open(dir, &p, err) == 0, "open: %s", err);
    assert_int_equal(ava_pack_count(p), 0);
    struct ava_sample s;
    assert_int_equal(ava_pack_get(p, 0, &s, err), AVA_EINVALID);
    ava_pack_close(p);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    assert_int_equal(ava_pack_open(missing, &p, err), AVA_ENOTFOUND);
    assert_null(p);
    remove_tmpdir(dir);
}

/* Overwrites len bytes at off in dir/file. */
static void patch(const char *dir, const char *file, off_t off, const void *bytes, size_t len) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
    close(fd);
}

/* Sets dir/file's size. */
static void resize(const char *dir, const char *file, off_t size) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    assert_int_equal(truncate(path, size), 0);
}

/* Opens dir's pack and expects sample i to be refused with a message holding msg. */
static void expect_bad_sample(const char *dir, uint32_t i, const char *msg) {
    char err[AVA_ERRLEN] = "";
    struct ava_pack *p;
    CHECK(ava_pack_open(dir, &p, err) == 0, "open: %s", err);
    struct ava_sample s;
    int rc = ava_pack_get(p, i, &s, err);
    CHECK(rc == AVA_EINVALID, "sample %u accepted (rc %d), expected '%s'", i, rc, msg);
    CHECK(strstr(err, msg), "message '%s' lacks '%s'", err, msg);
    char want[32];
    snprintf(want, sizeof want, "sample %u", i);
    CHECK(strstr(err, want), "message '%s' does not name %s", err, want);
    if (i > 0)
        CHECK(ava_pack_get(p, 0, &s, err) == 0, "sample 0 refused too: %s", err);
    ava_pack_close(p);
}

/* Truncated data, a ragged index, offsets past the end, absurd name lengths, bad pix. */
static void test_pack_corrupt(void **state) {
    (void)state;
    char dir[64], err[AVA_ERRLEN] = "";
    make_tmpdir(dir, sizeof dir);
    write_pack(dir, 3);
    char path[128];
    snprintf(path, sizeof path, "%s/samples.dat", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);

    resize(dir, "samples.dat", st.st_size - 1); /* the last record overruns */
    expect_bad_sample(dir, 2, "overruns");
    write_pack(dir, 3);

    uint64_t past = htole64((uint64_t)st.st_size + 100);
    patch(dir, "samples.idx", 8, &past, 8);
    expect_bad_sample(dir, 1, "past the end");
    write_pack(dir, 3);

    uint64_t near_end = htole64((uint64_t)st.st_size - 10); /* no room for a header */
    patch(dir, "samples.idx", 16, &near_end, 8);
    expect_bad_sample(dir, 2, "past the end");
    write_pack(dir, 3);

    uint32_t huge = htole32(0x80000000U); /* name_len of record 0 */
    patch(dir, "samples.dat", 16, &huge, 4);
    expect_bad_sample(dir, 0, "name length");
    write_pack(dir, 3);

    uint32_t long_data = htole32(0xfffffff0U); /* data_len of record 0 */
    patch(dir, "samples.dat", 20, &long_data, 4);
    expect_bad_sample(dir, 0, "overruns");
    write_pack(dir, 3);

    uint8_t pix = 7;
    patch(dir, "samples.dat", 4, &pix, 1);
    expect_bad_sample(dir, 0, "pix 7");
    write_pack(dir, 3);

    resize(dir, "samples.idx", 3 * 8 + 3);
    struct ava_pack *p = (struct ava_pack *)1;
    assert_int_equal(ava_pack_open(dir, &p, err), AVA_EINVALID);
    assert_null(p);
    CHECK(strstr(err, "multiple of 8"), "message '%s'", err);
    remove_tmpdir(dir);
}

/* The writer refuses samples the format cannot hold, before writing anything. */
static void test_pack_writer_refuses(void **state) {
    (void)state;
    char dir[64], err[AVA_ERRLEN] = "";
    make_tmpdir(dir, sizeof dir);
    static char long_name[AVA_SAMPLE_NAME_MAX + 2];
    memset(long_name, 'x', AVA_SAMPLE_NAME_MAX + 1);
    static const uint8_t byte = 1;
    struct {
        struct ava_sample s;
        int rc;
        const char *msg;
    } cases[] = {
        {{0, long_name, AVA_PIX_GRAY, 1, 1, &byte, 1}, AVA_EINVALID, "name length 1025"},
        {{0, NULL, AVA_PIX_GRAY, 1, 1, &byte, 1}, AVA_EINVALID, "name length 0"},
        {{0, "", AVA_PIX_GRAY, 1, 1, &byte, 1}, AVA_EINVALID, "name length 0"},
        {{-2, "a", AVA_PIX_GRAY, 1, 1, &byte, 1}, AVA_EINVALID, "negative label"},
        {{0, "a", (enum ava_pix)3, 1, 1, &byte, 1}, AVA_EINVALID, "pixel kind 3"},
        {{0, "a", AVA_PIX_RGB, -1, 1, &byte, 1}, AVA_EINVALID, "negative size"},
        {{0, "a", AVA_PIX_ENCODED, 0, 0, &byte, (size_t)UINT32_MAX + 1}, AVA_ETOOLARGE, "4 GiB"},
        {{0, "a", AVA_PIX_ENCODED, 0, 0, NULL, 5}, AVA_EINVALID, "no data"},
    };
    struct ava_pack_writer *w;
    CHECK(ava_pack_writer_open(dir, &w, err) == 0, "open: %s", err);
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        int rc = ava_pack_add(w, &cases[c].s, err);
        CHECK(rc == cases[c].rc, "case %zu: rc %d", c, rc);
        CHECK(strstr(err, cases[c].msg), "case %zu: message '%s' lacks '%s'", c, err, cases[c].msg);
    }
    CHECK(ava_pack_writer_close(w, err) == 0, "close: %s", err);
    assert_int_equal(ava_pack_writer_close(NULL, err), 0);
    struct ava_pack *p;
    CHECK(ava_pack_open(dir, &p, err) == 0, "open: %s", err);
    assert_int_equal(ava_pack_count(p), 0);
    ava_pack_close(p);
    char bad[128];
    snprintf(bad, sizeof bad, "%s/missing/dir", dir);
    assert_int_equal(ava_pack_writer_open(bad, &w, err), AVA_EIO);
    assert_null(w);
    remove_tmpdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mt_genrand_cpython),
        cmocka_unit_test(test_mt_randbelow_cpython),
        cmocka_unit_test(test_mt_shuffle_cpython),
        cmocka_unit_test(test_split_im2rec_cpython),
        cmocka_unit_test(test_split_invariants),
        cmocka_unit_test(test_split_shuffle_is_one_shuffle),
        cmocka_unit_test(test_split_stratified_apportion),
        cmocka_unit_test(test_split_stratified_interleaves),
        cmocka_unit_test(test_split_empty),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_pack_roundtrip),
        cmocka_unit_test(test_pack_empty),
        cmocka_unit_test(test_pack_corrupt),
        cmocka_unit_test(test_pack_writer_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
