/* main.c: avad: reads its settings, opens the store, bootstraps the first admin, loads the
 * public images, sizes the pool, wires scheduler, executor and API onto one event loop. */
#include "ava_config.h"
#include "config.h"

#include "../api/api.h"
#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/log.h"
#include "../common/path.h"
#include "../common/sha256.h"
#include "../common/strutil.h"
#include "../data/datasets.h"
#include "../exec/exec.h"
#include "../exec/slurm.h"
#include "../images/images.h"
#include "../metrics/ingest.h"
#include "../sched/gpu.h"
#include "../sched/sched.h"
#include "../store/store.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates group default and user admin on an empty database and writes the admin token to
 * DATA/admin.token (0600). The token exists only there and in the caller's hands. */
static int bootstrap_admin(struct ava_store *st, const char *data_dir, char *err) {
    if (ava_store_user_count(st) > 0)
        return 0;
    int64_t gid;
    char token[45], hash[65], path[AVA_PATH_MAX], line[64];
    struct ava_user u;
    int r = ava_store_group_find(st, "default", &gid, NULL);
    if (r < 0)
        r = ava_store_group_create(st, "default", &gid, err);
    if (r == 0 && ava_token_new(token) < 0)
        r = ava_err(err, AVA_EIO, "no randomness for the admin token");
    if (r == 0)
        r = ava_path_join(path, sizeof path, err, data_dir, "admin.token", NULL);
    if (r == 0) {
        snprintf(line, sizeof line, "%s\n", token);
        r = ava_file_write_atomic(path, line, strlen(line), 0600, err);
    }
    if (r == 0) {
        ava_sha256_hex(token, hash);
        r = ava_store_user_create(st, "admin", gid, true, hash, &u, err);
    }
    if (r == 0)
        ava_log_info("created group 'default' and user 'admin'; the token is in %s", path);
    return r;
}

/* Fills out with the configured path, else the first of the candidates (relative to the
 * executable's directory) that exists, else the fallback. */
static void locate(char *out, size_t outlen, const char *configured, const char *const *near_exe,
                   const char *fallback) {
    char exe[AVA_PATH_MAX];
    if (configured[0]) {
        snprintf(out, outlen, "%s", configured);
        return;
    }
    if (ava_exe_dir(exe, sizeof exe) == 0)
        for (; *near_exe; near_exe++) {
            int n = snprintf(out, outlen, "%s/%s", exe, *near_exe);
            if (n > 0 && (size_t)n < outlen && access(out, F_OK) == 0)
                return;
        }
    snprintf(out, outlen, "%s", fallback);
}

/* Sizes the pool of a Slurm cluster: its largest node (a run is one job on one node), so
 * that what no node could ever hold is refused before it is stored; Slurm does the rest. */
static int setup_slurm_pool(const struct avad_config *cfg, struct ava_pool *pool, char *err) {
    struct ava_slurm_node *nodes;
    size_t n;
    char serr[AVA_ERRLEN];
    int r = ava_slurm_nodes(30000, &nodes, &n, serr);
    if (r < 0)
        return ava_err(err, r, "executor slurm: cannot ask the cluster what it has: %s", serr);
    int gpus[AVA_POOL_MAX_GPUS], ngpus = 0, cpus = 0;
    int64_t mem = 0;
    for (size_t i = 0; i < n; i++) {
        ngpus = nodes[i].gpus > ngpus ? nodes[i].gpus : ngpus;
        cpus = nodes[i].cpus > cpus ? nodes[i].cpus : cpus;
        mem = nodes[i].mem_mb > mem ? nodes[i].mem_mb : mem;
    }
    free(nodes);
    if (n == 0)
        return ava_err(err, AVA_EUNAVAILABLE, "executor slurm: sinfo lists no nodes");
    if (!strcmp(cfg->gpus, "none"))
        ngpus = 0;
    else if (strcmp(cfg->gpus, "auto") != 0 &&
             (r = ava_parse_index_list(cfg->gpus, gpus, AVA_POOL_MAX_GPUS, &ngpus, err)) < 0)
        return r;
    if (ngpus > AVA_POOL_MAX_GPUS)
        ngpus = AVA_POOL_MAX_GPUS;
    for (int i = 0; i < ngpus; i++)
        gpus[i] = i;
    mem = cfg->mem ? cfg->mem : mem << 20;
    ava_pool_init(pool, gpus, ngpus, cfg->cpus ? cfg->cpus : (cpus > 0 ? cpus : 1), mem);
    char msize[32];
    ava_format_size(mem, msize, sizeof msize);
    ava_log_info("Slurm cluster: %zu node(s); the largest has %d GPU(s), %d CPU(s), %s memory", n,
                 pool->ngpus, pool->cpus_total, msize);
    return 0;
}

/* Sizes the pool from the settings and the machine. */
static int setup_pool(const struct avad_config *cfg, struct ava_pool *pool, char *err) {
    int gpus[AVA_POOL_MAX_GPUS], ngpus = 0;
    char why[AVA_ERRLEN] = "";
    if (!strcmp(cfg->executor, "slurm"))
        return setup_slurm_pool(cfg, pool, err);
    if (!strcmp(cfg->gpus, "auto")) {
        ava_gpu_detect(gpus, AVA_POOL_MAX_GPUS, &ngpus, why);
        ava_log_info("GPUs: %d found%s%s", ngpus, why[0] ? ": " : "", why);
    } else if (strcmp(cfg->gpus, "none") != 0) {
        int r = ava_parse_index_list(cfg->gpus, gpus, AVA_POOL_MAX_GPUS, &ngpus, err);
        if (r < 0)
            return r;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t mem = cfg->mem;
    if (!mem)
        mem = (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
    ava_pool_init(pool, gpus, ngpus, cfg->cpus ? cfg->cpus : (int)(ncpu > 0 ? ncpu : 1), mem);
    char msize[32];
    ava_format_size(mem, msize, sizeof msize);
    ava_log_info("pool: %d GPU(s), %d CPU slot(s), %s memory", pool->ngpus, pool->cpus_total,
                 msize);
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    ava_log_info("signal %d: shutting down (trainings keep running)", (int)sig);
    event_base_loopexit(arg, NULL);
}

/* Writes DATA/endpoint (the URL clients use) and DATA/avad.pid. */
static void write_endpoint(const char *data_dir, const char *host, int port) {
    char path[AVA_PATH_MAX], text[300];
    int n = snprintf(text, sizeof text, "http://%s:%d\n",
                     strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, port);
    if (ava_path_join(path, sizeof path, NULL, data_dir, "endpoint", NULL) == 0)
        ava_file_write_atomic(path, text, (size_t)n, 0644, NULL);
    n = snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (ava_path_join(path, sizeof path, NULL, data_dir, "avad.pid", NULL) == 0)
        ava_file_write_atomic(path, text, (size_t)n, 0644, NULL);
}

#define INGEST_EVERY_MS 1000

/* Ingests a run's metrics file to its end (the scheduler's end hook, and the timer). */
static void ingest_run(void *ctx, int64_t run_id, const char *run_dir) {
    struct ava_store *st = ctx;
    char err[AVA_ERRLEN];
    int more = 1;
    for (int round = 0; more && round < 64; round++) /* 64 x 16 MiB per call at most */
        if (ava_metrics_ingest_run(st, run_id, run_dir, NULL, NULL, &more, err) < 0) {
            ava_log_warn("run %lld: metrics: %s", (long long)run_id, err);
            return;
        }
}

/* What one round of ingest over the running runs needs and found. */
struct ingest_round {
    struct ava_store *st;
    bool more; /* a run had more than one call's worth: go again at once */
};

/* For ava_sched_each: ingests what a running run has reported so far (one call's worth). */
static void ingest_holder(void *ctx, const struct ava_sched_holder *h) {
    struct ingest_round *round = ctx;
    if (h->state == AVA_RUN_RUNNING || h->state == AVA_RUN_STOPPING) {
        int more = 0;
        ava_metrics_ingest_run(round->st, h->run_id, h->run_dir, NULL, NULL, &more, NULL);
        round->more |= more != 0;
    }
}

/* Everything avad holds, so that teardown is one place. */
struct avad {
    struct avad_config cfg;
    char data_dir[AVA_PATH_MAX];
    struct event_base *base;
    struct ava_store *st;
    struct ava_pool pool;
    struct ava_executor *ex;
    struct ava_sched *sched;
    struct ava_datasets *datasets;
    struct ava_api *api;
    struct event *ingest_timer;
};

/* Every INGEST_EVERY_MS the running runs' new points, so curves are live; at once again
 * while a run is further behind than one call takes (the loop serves requests in between). */
static void on_ingest_timer(evutil_socket_t fd, short what, void *arg) {
    struct avad *d = arg;
    struct ingest_round round = {d->st, false};
    ava_sched_each(d->sched, ingest_holder, &round);
    struct timeval tv = {round.more ? 0 : INGEST_EVERY_MS / 1000,
                         round.more ? 0 : (INGEST_EVERY_MS % 1000) * 1000};
    event_add(d->ingest_timer, &tv);
}

/* Opens the data dir and store, bootstraps, loads the images. */
static int open_data(struct avad *d, char *err) {
    char path[AVA_PATH_MAX], share[AVA_PATH_MAX], exe[AVA_PATH_MAX];
    int r = ava_mkdir_p(d->cfg.data_dir, 0755, err);
    if (r < 0)
        return r;
    if (!realpath(d->cfg.data_dir, d->data_dir))
        return ava_err(err, AVA_EIO, "%s: %s", d->cfg.data_dir, strerror(errno));
    r = ava_path_join(path, sizeof path, err, d->data_dir, "ava.db", NULL);
    if (r == 0)
        r = ava_store_open(path, &d->st, err);
    if (r == 0)
        r = bootstrap_admin(d->st, d->data_dir, err);
    if (r < 0)
        return r;
    /* a build tree uses the source's share/, an install its own */
    bool in_build = ava_exe_dir(exe, sizeof exe) == 0 && strcmp(exe, AVA_BUILD_DIR) == 0;
    if (in_build && !d->cfg.share_dir[0])
        snprintf(share, sizeof share, "%s", AVA_SOURCE_SHARE_DIR);
    else
        locate(share, sizeof share, d->cfg.share_dir, (const char *const[]){"../share/ava", NULL},
               AVA_SHARE_DIR);
    /* the example trainings the public images run: built beside avad, installed in share */
    char examples[AVA_PATH_MAX];
    int count = 0;
    r = ava_path_join(examples, sizeof examples, err, in_build ? AVA_BUILD_DIR : share, "examples",
                      NULL);
    if (r == 0)
        r = ava_path_join(path, sizeof path, err, share, "images", NULL);
    if (r == 0)
        r = ava_images_load_public_at(d->st, path, examples, &count, err);
    if (r == 0)
        ava_log_info("loaded %d public image(s) from %s", count, path);
    return r;
}

/* The event loop, the pool, the local executor (ava-shim) and the scheduler. */
static int start_scheduler(struct avad *d, char *err) {
    char shim[AVA_PATH_MAX];
    int r = setup_pool(&d->cfg, &d->pool, err);
    if (r < 0)
        return r;
    /* next to avad in a build tree; ../libexec/ava/ once installed, wherever DESTDIR put it */
    locate(shim, sizeof shim, d->cfg.shim_path,
           (const char *const[]){"ava-shim", "../libexec/ava/ava-shim", NULL},
           AVA_LIBEXEC_DIR "/ava-shim");
    if (access(shim, X_OK) != 0)
        return ava_err(err, AVA_EIO, "cannot find ava-shim (looked for %s): use --shim", shim);
    d->base = event_base_new();
    if (!d->base)
        return ava_err(err, AVA_EIO, "cannot create the event loop");
    bool slurm = !strcmp(d->cfg.executor, "slurm");
    if (slurm) {
        struct ava_slurm_config slc = {d->cfg.slurm_shim[0] ? d->cfg.slurm_shim : shim,
                                       d->cfg.slurm_partition,
                                       d->cfg.slurm_account,
                                       d->cfg.slurm_args,
                                       d->cfg.slurm_poll_ms,
                                       30000};
        d->ex = ava_exec_slurm_new(d->base, &slc);
    } else {
        d->ex = ava_exec_local_new(d->base, shim, ava_sched_on_done, NULL);
    }
    struct ava_sched_config sc = {d->data_dir, d->cfg.grace_ms,
                                  slurm && d->cfg.slurm_data_dir[0] ? d->cfg.slurm_data_dir : NULL};
    r = ava_sched_new(d->st, &d->pool, d->ex, &sc, &d->sched, err);
    if (r < 0)
        return r;
    d->ex->done_ctx = d->sched;
    ava_sched_set_end_hook(d->sched, ingest_run, d->st);
    return 0;
}

/* The dataset registry (its jobs run ava-data-job), which also resolves runs' sets. */
static int start_datasets(struct avad *d, char *err) {
    char job[AVA_PATH_MAX];
    locate(job, sizeof job, "",
           (const char *const[]){"ava-data-job", "../libexec/ava/ava-data-job", NULL},
           AVA_LIBEXEC_DIR "/ava-data-job");
    struct ava_datasets_config dc = {d->data_dir, job,
                                     d->cfg.fashion_mnist[0] ? d->cfg.fashion_mnist : NULL,
                                     d->cfg.cifar10_url[0] ? d->cfg.cifar10_url : NULL,
                                     d->cfg.cifar10_md5[0] ? d->cfg.cifar10_md5 : NULL};
    int r = ava_datasets_new(d->base, d->st, &dc, &d->datasets, err);
    if (r == 0)
        ava_sched_set_resolver(d->sched, ava_datasets_set_info, d->datasets);
    return r;
}

/* The HTTP API; once its port is known, runs learn where to report metrics. */
static int start_api(struct avad *d, char *err) {
    struct ava_api_config ac = {d->cfg.host,
                                d->cfg.port,
                                d->data_dir,
                                d->cfg.max_runtime_ms,
                                1 << 20,
                                16 << 10,
                                (int)(d->cfg.http_timeout_ms / 1000)};
    int r = ava_api_start(d->base, &ac, d->st, d->sched, &d->api, err);
    if (r < 0)
        return r;
    ava_api_set_datasets(d->api, d->datasets);
    char base[300], python[AVA_PATH_MAX], exe[AVA_PATH_MAX];
    snprintf(base, sizeof base, "http://%s:%d",
             strcmp(d->cfg.host, "0.0.0.0") == 0 ? "127.0.0.1" : d->cfg.host, ava_api_port(d->api));
    /* the Python SDK: the source's in a build tree, the install's share/ava/python else */
    bool in_build = ava_exe_dir(exe, sizeof exe) == 0 && strcmp(exe, AVA_BUILD_DIR) == 0;
    if (in_build)
        snprintf(python, sizeof python, "%s", AVA_SOURCE_SDK_DIR);
    else
        locate(python, sizeof python, "", (const char *const[]){"../share/ava/python", NULL},
               AVA_SHARE_DIR "/python");
    ava_sched_set_run_env(d->sched, base, python);
    write_endpoint(d->data_dir, d->cfg.host, ava_api_port(d->api));
    return 0;
}

/* Wires everything on one event loop, then takes back the runs and jobs of an earlier avad. */
static int start_services(struct avad *d, char *err) {
    int r = start_scheduler(d, err);
    if (r == 0)
        r = start_datasets(d, err);
    if (r == 0)
        r = start_api(d, err);
    if (r == 0)
        r = ava_sched_restore(d->sched, err);
    if (r == 0)
        r = ava_datasets_restore(d->datasets, err);
    if (r < 0)
        return r;
    d->ingest_timer = evtimer_new(d->base, on_ingest_timer, d);
    struct timeval tv = {INGEST_EVERY_MS / 1000, (INGEST_EVERY_MS % 1000) * 1000};
    event_add(d->ingest_timer, &tv);
    ava_log_info("listening on http://%s:%d (data in %s)", d->cfg.host, ava_api_port(d->api),
                 d->data_dir);
    return 0;
}

/* Frees everything; running trainings are left to their shims. */
static void teardown(struct avad *d) {
    if (d->ingest_timer)
        event_free(d->ingest_timer);
    ava_api_free(d->api);
    ava_datasets_free(d->datasets);
    ava_sched_free(d->sched);
    if (d->ex)
        d->ex->destroy(d->ex);
    ava_store_close(d->st);
    if (d->base)
        event_base_free(d->base);
}

int main(int argc, char **argv) {
    static struct avad d;
    char err[AVA_ERRLEN];
    ava_log_set_prefix("avad");
    if (avad_config_parse(argc, argv, &d.cfg, err) < 0) {
        fprintf(stderr, "avad: %s\n", err);
        return 2;
    }
    if (d.cfg.help) {
        fputs(avad_usage, stdout);
        return 0;
    }
    if (d.cfg.version) {
        printf("avad %s\n", AVA_VERSION);
        return 0;
    }
    if (d.cfg.verbose)
        ava_log_set_level(AVA_LOG_DEBUG);
    signal(SIGPIPE, SIG_IGN);
    int r = open_data(&d, err);
    if (r == 0)
        r = start_services(&d, err);
    if (r < 0) {
        ava_log_error("%s", err);
        teardown(&d);
        return 1;
    }
    struct event *sigterm = evsignal_new(d.base, SIGTERM, on_signal, d.base);
    struct event *sigint = evsignal_new(d.base, SIGINT, on_signal, d.base);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_base_dispatch(d.base);
    event_free(sigterm);
    event_free(sigint);
    teardown(&d);
    return 0;
}
