/* pool.h: the resource pool the scheduler allocates from: GPU indices, CPU slots, memory.
 *
 * CPU slots and memory are accounting units (the sandbox release enforces them with
 * cgroups); GPUs are exclusive devices named by their index. A pool is a plain value:
 * no allocation, no I/O. */
#ifndef AVA_SCHED_POOL_H
#define AVA_SCHED_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AVA_POOL_MAX_GPUS 64

struct ava_pool {
    int ngpus;
    int gpu_index[AVA_POOL_MAX_GPUS]; /* device index of each slot (CUDA numbering) */
    uint64_t gpu_used;                /* bit i set = slot i allocated */
    int cpus_total, cpus_used;
    int64_t mem_total, mem_used;
};

/* What one run holds. */
struct ava_alloc {
    uint64_t gpu_mask; /* pool slots */
    int cpus;
    int64_t mem;
};

/* Sets up a pool with the given GPU device indices (may be 0 of them), CPU slots and memory. */
void ava_pool_init(struct ava_pool *p, const int *gpus, int ngpus, int cpus, int64_t mem);

/* Checks that a request could run on an empty pool. Returns 0, or AVA_ENOFIT with a
 * message naming the resource (e.g. "3 GPUs requested, this server has 2"). */
int ava_pool_check_fits(const struct ava_pool *p, int gpus, int cpus, int64_t mem, char *err);

/* Allocates now if everything is free: returns true and fills a, else false (no change). */
bool ava_pool_try_alloc(struct ava_pool *p, int gpus, int cpus, int64_t mem, struct ava_alloc *a);

/* Re-claims an allocation recorded earlier (a daemon restart): gpus is a device index list
 * ("0,1" or ""). Claims what exists even when it overlaps (the run is already running);
 * fills a. Returns 0 or AVA_EINVALID for an unparsable list. */
int ava_pool_claim(struct ava_pool *p, const char *gpus, int cpus, int64_t mem,
                   struct ava_alloc *a);

/* Returns what a holds to the pool. */
void ava_pool_release(struct ava_pool *p, const struct ava_alloc *a);

/* Writes the device indices of a ("0,1", "" for none) into out. */
void ava_pool_gpu_list(const struct ava_pool *p, const struct ava_alloc *a, char *out,
                       size_t outlen);

/* Number of free GPU slots. */
int ava_pool_free_gpus(const struct ava_pool *p);

#endif
