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

/* random.seed(seed) for a non-negative integer seed: init_by_array with the seed's 32-bit
 * words, least significant first (a key of [0] for seed 0). */
void ava_mt_seed_py(struct ava_mt *mt, uint64_t seed);
/* genrand_uint32(). */
uint32_t ava_mt_next(struct ava_mt *mt);
/* random._randbelow(n) for 0 < n < 2^32: k = bit length of n, draw getrandbits(k) until < n. */
uint32_t ava_mt_randbelow(struct ava_mt *mt, uint32_t n);
/* random.shuffle(v) (Fisher-Yates from the end, j = randbelow(i + 1)). */
void ava_mt_shuffle(struct ava_mt *mt, uint32_t *v, uint32_t n);

enum ava_split_mode {
    AVA_SPLIT_SHUFFLE,    /* one seeded shuffle; train = the first floor(n * percent / 100) */
    AVA_SPLIT_STRATIFIED, /* per class shuffles; each class split in proportion (largest
                             remainder so the train part is exactly floor(n * percent / 100)) */
    AVA_SPLIT_IM2REC,     /* random.seed(100); shuffle; sep = int(n * (percent / 100.0)) */
};

/* Computes the order of a split of n samples (indices 0..n-1 in source order). *order
 * (malloc'd, n entries; caller frees) lists the train part first (*ntrain entries), then
 * the complement. labels (n entries, each < nclasses) is required for STRATIFIED, ignored
 * otherwise. Within each part the order is the shuffled order. The same inputs always give
 * the same order. percent is 1..100. Returns 0 or AVA_EINVALID. */
int ava_split_order(uint32_t n, int percent, uint64_t seed, enum ava_split_mode mode,
                    const int *labels, int nclasses, uint32_t **order, uint32_t *ntrain,
                    char *err);

#endif
