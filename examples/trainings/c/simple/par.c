/* par.c: the example trainer's thread pool (see par.h): workers sleep on a condition
 * variable until a new generation of work is posted, run it, and report back. */
#include "par.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct tr_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen; /* bumped for every run */
    int pending;  /* workers (besides the caller) still running the current generation */
    void (*fn)(void *, int);
    void *arg;
    bool quit;
};

/* A worker thread's argument. */
struct slot {
    struct tr_pool *p;
    int index;
};

/* A worker: waits for each generation, runs it, counts itself done. */
static void *worker_main(void *v) {
    struct slot s = *(struct slot *)v;
    free(v);
    struct tr_pool *p = s.p;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->arg, s.index);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct tr_pool *tr_pool_new(int n) {
    struct tr_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n < 1 ? 1 : n;
    p->threads = calloc((size_t)p->n, sizeof *p->threads);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (!p->threads) {
        tr_pool_free(p);
        return NULL;
    }
    sigset_t all, old; /* workers leave signals to the main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = 1;
    for (; started < p->n; started++) {
        struct slot *s = malloc(sizeof *s);
        if (!s)
            break;
        *s = (struct slot){p, started};
        if (pthread_create(&p->threads[started], NULL, worker_main, s) != 0) {
            free(s);
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < p->n) {
        p->n = started; /* the threads that did start, so that free joins exactly them */
        tr_pool_free(p);
        return NULL;
    }
    return p;
}

void tr_pool_free(struct tr_pool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; p->threads && i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

int tr_pool_size(const struct tr_pool *p) {
    return p->n;
}

void tr_pool_run(struct tr_pool *p, void (*fn)(void *arg, int worker), void *arg) {
    if (p->n == 1) {
        fn(arg, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->arg = arg, p->pending = p->n - 1, p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
