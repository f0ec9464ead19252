/* rng.h: the trainer's seeded pseudo-random generator, PCG32 (O'Neill's pcg32_random_r):
 * 64 bits of state and a stream selector, both saved in checkpoints so that a resumed
 * training draws the same numbers as one that never stopped. */
#ifndef AVA_TRAINER_RNG_H
#define AVA_TRAINER_RNG_H

#include <math.h>
#include <stdint.h>

struct tr_rng {
    uint64_t state, inc; /* inc is odd */
};

/* The next 32 random bits. */
static inline uint32_t tr_rng_next(struct tr_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

/* Seeds r from seed (any value; the stream is derived from it too), as pcg32_srandom_r. */
static inline void tr_rng_seed(struct tr_rng *r, uint64_t seed) {
    r->state = 0;
    r->inc = ((seed ^ 0xda3e39cb94b95bdbULL) << 1u) | 1u;
    tr_rng_next(r);
    r->state += seed;
    tr_rng_next(r);
}

/* A uniform integer in 0..bound-1 (bound >= 1), without modulo bias. */
static inline uint32_t tr_rng_below(struct tr_rng *r, uint32_t bound) {
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint32_t x = tr_rng_next(r);
        if (x >= threshold)
            return x % bound;
    }
}

/* A uniform double in (0, 1). */
static inline double tr_rng_uniform(struct tr_rng *r) {
    return ((double)tr_rng_next(r) + 0.5) / 4294967296.0;
}

/* A standard normal draw (Box-Muller, one of the pair). */
static inline double tr_rng_normal(struct tr_rng *r) {
    double u1 = tr_rng_uniform(r), u2 = tr_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
