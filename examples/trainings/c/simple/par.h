/* par.h: a tiny persistent thread pool for the example trainer: runs one function on every
 * worker (index 0 is the caller itself) and waits for all of them. */
#ifndef AVA_TRAINER_PAR_H
#define AVA_TRAINER_PAR_H

struct tr_pool;

/* Starts a pool of n workers (n - 1 threads plus the caller). NULL when out of resources. */
struct tr_pool *tr_pool_new(int n);
/* Stops and frees the pool; NULL is a no-op. */
void tr_pool_free(struct tr_pool *p);
/* The number of workers. */
int tr_pool_size(const struct tr_pool *p);
/* Runs fn(arg, i) for every worker i in 0..n-1 (i = 0 on the calling thread) and returns
 * when all have finished. Not reentrant: one run at a time per pool. */
void tr_pool_run(struct tr_pool *p, void (*fn)(void *arg, int worker), void *arg);

#endif
