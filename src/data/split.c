/* split.c: CPython's Mersenne Twister and shuffle reproduced bit for bit, and the train /
 * complement orders built on them (plain, stratified, and MXNet im2rec's list split). */
#include "split.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "sample.h"

#include <stdlib.h>
#include <string.h>

#define MT_N 624
#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfU
#define MT_UPPER 0x80000000U
#define MT_LOWER 0x7fffffffU

/* The seed CPython's init_by_array starts from (mt19937ar.c's init_genrand(19650218)). */
#define MT_ARRAY_BASE 19650218U

/* MXNet's tools/im2rec.py calls random.seed(100) before its shuffle, whatever the user asks. */
#define IM2REC_SEED 100

/* mt19937ar.c init_genrand: fills the state from one 32-bit word. */
static void mt_init_genrand(struct ava_mt *mt, uint32_t s) {
    uint32_t *st = mt->state;
    st[0] = s;
    for (int i = 1; i < MT_N; i++)
        st[i] = 1812433253U * (st[i - 1] ^ (st[i - 1] >> 30)) + (uint32_t)i;
    mt->index = MT_N;
}

/* mt19937ar.c init_by_array, as CPython's random_seed calls it. */
static void mt_init_by_array(struct ava_mt *mt, const uint32_t *key, int key_len) {
    uint32_t *st = mt->state;
    mt_init_genrand(mt, MT_ARRAY_BASE);
    int i = 1, j = 0;
    for (int k = MT_N > key_len ? MT_N : key_len; k; k--) {
        st[i] = (st[i] ^ ((st[i - 1] ^ (st[i - 1] >> 30)) * 1664525U)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= MT_N) {
            st[0] = st[MT_N - 1];
            i = 1;
        }
        if (j >= key_len)
            j = 0;
    }
    for (int k = MT_N - 1; k; k--) {
        st[i] = (st[i] ^ ((st[i - 1] ^ (st[i - 1] >> 30)) * 1566083941U)) - (uint32_t)i;
        i++;
        if (i >= MT_N) {
            st[0] = st[MT_N - 1];
            i = 1;
        }
    }
    st[0] = 0x80000000U; /* MSB is 1, assuring a non-zero initial array */
}

void ava_mt_seed_py(struct ava_mt *mt, uint64_t seed) {
    /* random.seed(int): the absolute value's 32-bit words, least significant first; zero
     * still gives one word, so seed 0 is the key [0], not an empty key. */
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    mt_init_by_array(mt, key, key[1] ? 2 : 1);
}

/* Regenerates all 624 words of the state (mt19937ar.c genrand_int32's refill). */
static void mt_refill(struct ava_mt *mt) {
    static const uint32_t mag01[2] = {0U, MT_MATRIX_A};
    uint32_t *st = mt->state, y;
    int kk;
    for (kk = 0; kk < MT_N - MT_M; kk++) {
        y = (st[kk] & MT_UPPER) | (st[kk + 1] & MT_LOWER);
        st[kk] = st[kk + MT_M] ^ (y >> 1) ^ mag01[y & 1U];
    }
    for (; kk < MT_N - 1; kk++) {
        y = (st[kk] & MT_UPPER) | (st[kk + 1] & MT_LOWER);
        st[kk] = st[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1U];
    }
    y = (st[MT_N - 1] & MT_UPPER) | (st[0] & MT_LOWER);
    st[MT_N - 1] = st[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1U];
    mt->index = 0;
}

uint32_t ava_mt_next(struct ava_mt *mt) {
    if (mt->index >= MT_N)
        mt_refill(mt);
    uint32_t y = mt->state[mt->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

/* Number of bits needed to write n (int.bit_length()); 0 for 0. */
static int bit_length(uint32_t n) {
    return n ? 32 - __builtin_clz(n) : 0;
}

uint32_t ava_mt_randbelow(struct ava_mt *mt, uint32_t n) {
    if (n == 0)
        return 0; /* undefined in CPython (ValueError); callers never ask */
    /* getrandbits(k) for k <= 32 is the top k bits of one output word. */
    int shift = 32 - bit_length(n);
    uint32_t r = ava_mt_next(mt) >> shift;
    while (r >= n)
        r = ava_mt_next(mt) >> shift;
    return r;
}

void ava_mt_shuffle(struct ava_mt *mt, uint32_t *v, uint32_t n) {
    for (uint32_t i = n > 0 ? n - 1 : 0; i >= 1; i--) {
        uint32_t j = ava_mt_randbelow(mt, i + 1);
        uint32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* An order array of n entries holding 0..n-1; never NULL (one spare entry for n = 0). */
static uint32_t *identity_order(uint32_t n) {
    uint32_t *v = ava_xmalloc(((size_t)n + 1) * sizeof *v);
    for (uint32_t i = 0; i < n; i++)
        v[i] = i;
    return v;
}

/* Per-class bookkeeping of a stratified split. */
struct strata {
    uint32_t *start; /* nclasses + 1 entries: class c's samples are members[start[c]..start[c+1]) */
    uint32_t *members;
    uint32_t *take; /* train samples given to each class */
};

/* Groups the sample indices by class, each class in source order (a counting sort). */
static int strata_build(struct strata *s, uint32_t n, const int *labels, int nclasses, char *err) {
    for (uint32_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= nclasses)
            return ava_err(err, AVA_EINVALID, "sample %u has label %d, outside 0..%d", i, labels[i],
                           nclasses - 1);
    s->start = ava_xcalloc((size_t)nclasses + 1, sizeof *s->start);
    s->members = ava_xmalloc(((size_t)n + 1) * sizeof *s->members);
    s->take = ava_xcalloc((size_t)nclasses, sizeof *s->take);
    for (uint32_t i = 0; i < n; i++)
        s->start[labels[i] + 1]++;
    for (int c = 0; c < nclasses; c++)
        s->start[c + 1] += s->start[c];
    uint32_t *fill = ava_xmalloc(((size_t)nclasses + 1) * sizeof *fill);
    memcpy(fill, s->start, (size_t)nclasses * sizeof *fill);
    for (uint32_t i = 0; i < n; i++)
        s->members[fill[labels[i]]++] = i;
    free(fill);
    return 0;
}

/* Gives each class floor(count * percent / 100) train samples, then the slots still missing
 * from floor(n * percent / 100) one each to the largest remainders (ties: lower class).
 * The missing slots number fewer than the classes with a non-zero remainder, because the
 * remainders sum to 100 * missing + (n * percent mod 100). */
static void strata_apportion(struct strata *s, uint32_t n, int percent, int nclasses) {
    uint64_t target = (uint64_t)n * (uint64_t)percent / 100, given = 0;
    for (int c = 0; c < nclasses; c++) {
        uint64_t cnt = s->start[c + 1] - s->start[c];
        s->take[c] = (uint32_t)(cnt * (uint64_t)percent / 100);
        given += s->take[c];
    }
    /* remainders are 0..99: hand out from 99 down, each level in class order */
    for (int rem = 99; rem > 0 && given < target; rem--)
        for (int c = 0; c < nclasses && given < target; c++) {
            uint64_t cnt = s->start[c + 1] - s->start[c];
            if ((int)(cnt * (uint64_t)percent % 100) == rem) {
                s->take[c]++;
                given++;
            }
        }
}

/* Frees what strata_build allocated. */
static void strata_free(struct strata *s) {
    free(s->start);
    free(s->members);
    free(s->take);
}

/* STRATIFIED: one generator seeded with seed shuffles each class's members in turn (class 0
 * first); each class's train picks are the first take[c] of its shuffled members. The same
 * generator then shuffles 0..n-1 once more, and both parts list their samples in that global
 * order, so the classes are interleaved rather than laid out one after another. */
static int split_stratified(uint32_t n, int percent, uint64_t seed, const int *labels, int nclasses,
                            uint32_t *order, uint32_t *ntrain, char *err) {
    if (!labels && n > 0)
        return ava_err(err, AVA_EINVALID, "a stratified split needs the samples' labels");
    if (nclasses < 0 || nclasses > AVA_CLASSES_MAX || (n > 0 && nclasses == 0))
        return ava_err(err, AVA_EINVALID, "a stratified split needs 1..%d classes, not %d",
                       AVA_CLASSES_MAX, nclasses);
    struct strata s = {0};
    int rc = strata_build(&s, n, labels, nclasses, err);
    if (rc < 0)
        return rc;
    strata_apportion(&s, n, percent, nclasses);
    struct ava_mt mt;
    ava_mt_seed_py(&mt, seed);
    uint8_t *is_train = ava_xcalloc((size_t)n + 1, 1);
    for (int c = 0; c < nclasses; c++) {
        uint32_t *m = s.members + s.start[c];
        ava_mt_shuffle(&mt, m, s.start[c + 1] - s.start[c]);
        for (uint32_t k = 0; k < s.take[c]; k++)
            is_train[m[k]] = 1;
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    ava_mt_shuffle(&mt, order, n);
    /* stable partition of the global order: train picks first, then the complement */
    uint32_t *rest = s.members; /* reused as scratch: its class lists are no longer needed */
    uint32_t nt = 0, nr = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (is_train[order[i]])
            order[nt++] = order[i];
        else
            rest[nr++] = order[i];
    }
    memcpy(order + nt, rest, (size_t)nr * sizeof *order);
    *ntrain = nt;
    free(is_train);
    strata_free(&s);
    return 0;
}

int ava_split_order(uint32_t n, int percent, uint64_t seed, enum ava_split_mode mode,
                    const int *labels, int nclasses, uint32_t **order, uint32_t *ntrain,
                    char *err) {
    *order = NULL;
    *ntrain = 0;
    if (percent < 1 || percent > 100)
        return ava_err(err, AVA_EINVALID, "split percent must be 1..100, not %d", percent);
    uint32_t *v = identity_order(n);
    struct ava_mt mt;
    switch (mode) {
    case AVA_SPLIT_SHUFFLE:
        ava_mt_seed_py(&mt, seed);
        ava_mt_shuffle(&mt, v, n);
        *ntrain = (uint32_t)((uint64_t)n * (uint64_t)percent / 100);
        break;
    case AVA_SPLIT_IM2REC: {
        /* im2rec: random.seed(100); random.shuffle(list); sep = int(N * train_ratio), with
         * train_ratio the double nearest percent / 100 (what float("0.29") parses to), and
         * the product rounded once to a double before truncation, as Python computes it
         * (volatile keeps each step a double even where FLT_EVAL_METHOD != 0, e.g. x87). */
        ava_mt_seed_py(&mt, IM2REC_SEED);
        ava_mt_shuffle(&mt, v, n);
        volatile double ratio = (double)percent / 100.0;
        volatile double product = (double)n * ratio;
        *ntrain = (uint32_t)product;
        break;
    }
    case AVA_SPLIT_STRATIFIED: {
        int rc = split_stratified(n, percent, seed, labels, nclasses, v, ntrain, err);
        if (rc < 0) {
            free(v);
            return rc;
        }
        break;
    }
    default:
        free(v);
        return ava_err(err, AVA_EINVALID, "unknown split mode %d", (int)mode);
    }
    *order = v;
    return 0;
}
