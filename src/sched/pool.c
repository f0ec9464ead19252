/* pool.c: GPU slots as a bit mask, CPU slots and memory as counters. */
#include "pool.h"

#include "../common/err.h"
#include "../common/strutil.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void ava_pool_init(struct ava_pool *p, const int *gpus, int ngpus, int cpus, int64_t mem) {
    memset(p, 0, sizeof *p);
    assert(ngpus >= 0 && ngpus <= AVA_POOL_MAX_GPUS);
    p->ngpus = ngpus;
    for (int i = 0; i < ngpus; i++)
        p->gpu_index[i] = gpus[i];
    p->cpus_total = cpus;
    p->mem_total = mem;
}

int ava_pool_check_fits(const struct ava_pool *p, int gpus, int cpus, int64_t mem, char *err) {
    if (gpus > p->ngpus)
        return ava_err(err, AVA_ENOFIT, "%d GPU%s requested, this server has %d", gpus,
                       gpus == 1 ? "" : "s", p->ngpus);
    if (cpus > p->cpus_total)
        return ava_err(err, AVA_ENOFIT, "%d CPU%s requested, this server has %d", cpus,
                       cpus == 1 ? "" : "s", p->cpus_total);
    if (mem > p->mem_total) {
        char want[32], have[32];
        ava_format_size(mem, want, sizeof want);
        ava_format_size(p->mem_total, have, sizeof have);
        return ava_err(err, AVA_ENOFIT, "%s of memory requested, this server has %s", want, have);
    }
    return 0;
}

int ava_pool_free_gpus(const struct ava_pool *p) {
    int n = 0;
    for (int i = 0; i < p->ngpus; i++)
        n += !(p->gpu_used & (UINT64_C(1) << i));
    return n;
}

bool ava_pool_try_alloc(struct ava_pool *p, int gpus, int cpus, int64_t mem, struct ava_alloc *a) {
    if (ava_pool_free_gpus(p) < gpus || p->cpus_total - p->cpus_used < cpus ||
        p->mem_total - p->mem_used < mem)
        return false;
    memset(a, 0, sizeof *a);
    for (int i = 0; i < p->ngpus && gpus > 0; i++) {
        uint64_t bit = UINT64_C(1) << i;
        if (!(p->gpu_used & bit)) {
            a->gpu_mask |= bit;
            gpus--;
        }
    }
    p->gpu_used |= a->gpu_mask;
    a->cpus = cpus;
    a->mem = mem;
    p->cpus_used += cpus;
    p->mem_used += mem;
    return true;
}

int ava_pool_claim(struct ava_pool *p, const char *gpus, int cpus, int64_t mem,
                   struct ava_alloc *a) {
    memset(a, 0, sizeof *a);
    if (gpus && *gpus) {
        int idx[AVA_POOL_MAX_GPUS], n;
        if (ava_parse_index_list(gpus, idx, AVA_POOL_MAX_GPUS, &n, NULL) < 0)
            return AVA_EINVALID;
        for (int k = 0; k < n; k++)
            for (int i = 0; i < p->ngpus; i++)
                if (p->gpu_index[i] == idx[k])
                    a->gpu_mask |= UINT64_C(1) << i;
    }
    p->gpu_used |= a->gpu_mask;
    a->cpus = cpus;
    a->mem = mem;
    p->cpus_used += cpus;
    p->mem_used += mem;
    return 0;
}

void ava_pool_release(struct ava_pool *p, const struct ava_alloc *a) {
    p->gpu_used &= ~a->gpu_mask;
    p->cpus_used -= a->cpus;
    p->mem_used -= a->mem;
    assert(p->cpus_used >= 0 && p->mem_used >= 0);
}

void ava_pool_gpu_list(const struct ava_pool *p, const struct ava_alloc *a, char *out,
                       size_t outlen) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < p->ngpus; i++) {
        if (!(a->gpu_mask & (UINT64_C(1) << i)))
            continue;
        int n = snprintf(out + used, outlen - used, "%s%d", used ? "," : "", p->gpu_index[i]);
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
}
