/* split.h: the deterministic order in which a dataset is split into a train part and its
 * complement: a seeded shuffle, a stratified variant, and an exact reproduction of MXNet's
 * `im2rec.py --list --train-ratio` (CPython's random.seed + random.shuffle). */
#ifndef AVA_DATA_SPLIT_H
#define AVA_DATA_SPLIT_H

#include <stdint.h>

/* CPython's MT19937 (random.Random). */
struct ava_mt {
    uint32_t state[624];
    int index;
};

/* random.seed(seed) for a non-negative integer seed: init_by_array (after
 * init_genrand(19650218)) with the seed's 32-bit words, least significant first (a key of [0]
 * for seed 0, [lo, hi] for seeds of 2^32 and above). */
void ava_mt_seed_py(struct ava_mt *mt, uint64_t seed);
/* genrand_uint32(). */
uint32_t ava_mt_next(struct ava_mt *mt);
/* random._randbelow(n) for 0 < n < 2^32: k = bit length of n, draw getrandbits(k) (the top
 * k bits of one output) until < n. Returns 0 for n = 0 without drawing. */
uint32_t ava_mt_randbelow(struct ava_mt *mt, uint32_t n);
/* random.shuffle(v) (Fisher-Yates from the end, j = randbelow(i + 1)). */
void ava_mt_shuffle(struct ava_mt *mt, uint32_t *v, uint32_t n);

enum ava_split_mode {
    AVA_SPLIT_SHUFFLE,    /* one seeded shuffle; train = the first floor(n * percent / 100) */
    AVA_SPLIT_STRATIFIED, /* per class shuffles; each class split in proportion (largest
                             remainder so the train part is exactly floor(n * percent / 100)).
                             One generator seeded with seed shuffles each class's indices (in
                             source order) in turn, class 0 first; class c gives its first
                             floor(count_c * percent / 100) (+1 for the largest remainders,
                             ties to the lower class). The same generator then shuffles 0..n-1
                             once more and each part lists its samples in that order, so the
                             classes are interleaved. */
    AVA_SPLIT_IM2REC,     /* random.seed(100); shuffle; sep = int(n * (percent / 100.0)), as
                             MXNet's im2rec.py does: seed is ignored (im2rec hard-codes 100),
                             and sep may be one below floor(n * percent / 100) (n = 100 at 29 %
                             gives 28, because 100 * 0.29 = 28.999999999999996). */
};

/* Computes the order of a split of n samples (indices 0..n-1 in source order). *order
 * (malloc'd, n entries; caller frees) lists the train part first (*ntrain entries), then
 * the complement. labels (n entries, each < nclasses) is required for STRATIFIED, ignored
 * otherwise. Within each part the order is the shuffled order. The same inputs always give
 * the same order. percent is 1..100 (100: every sample is train). n = 0 gives an empty
 * order (*order still malloc'd). Returns 0 or AVA_EINVALID (percent out of range; for
 * STRATIFIED, labels missing, nclasses outside 1..AVA_CLASSES_MAX, or a label out of range);
 * on error *order is NULL. */
int ava_split_order(uint32_t n, int percent, uint64_t seed, enum ava_split_mode mode,
                    const int *labels, int nclasses, uint32_t **order, uint32_t *ntrain, char *err);

#endif
