/* config.h: avad's settings from defaults, an INI file (--config) and flags, in that
 * order of precedence (flags win). */
#ifndef AVA_DAEMON_CONFIG_H
#define AVA_DAEMON_CONFIG_H

#include "../common/path.h"

#include <stdbool.h>
#include <stdint.h>

struct avad_config {
    char data_dir[AVA_PATH_MAX];
    char host[256];
    int port;
    char gpus[256]; /* "auto", "none" or "0,1,..." */
    int cpus;       /* 0 = the machine's online CPUs */
    int64_t mem;    /* 0 = the machine's memory */
    int64_t max_runtime_ms;
    int64_t grace_ms;
    int64_t http_timeout_ms;           /* idle / read timeout of an HTTP connection */
    char share_dir[AVA_PATH_MAX];      /* "" = find it */
    char shim_path[AVA_PATH_MAX];      /* "" = find it */
    char fashion_mnist[AVA_PATH_MAX];  /* Debian's dataset-fashion-mnist folder, "" = default */
    char cifar10_url[1024];            /* "" = the official URL */
    char cifar10_md5[33];              /* "" = the published MD5 */
    char executor[16];                 /* "local" or "slurm" */
    char slurm_partition[128];         /* "" = the cluster's default */
    char slurm_account[128];           /* "" = the user's default */
    char slurm_args[1024];             /* extra sbatch arguments, blank-separated */
    char slurm_data_dir[AVA_PATH_MAX]; /* the data dir as the nodes see it, "" = the same */
    char slurm_shim[AVA_PATH_MAX];     /* ava-shim as the nodes see it, "" = avad's */
    int64_t slurm_poll_ms;             /* the shortest squeue interval */
    bool verbose;
    bool help, version;
};

/* Fills cfg from argv (and the --config file it names). Returns 0, AVA_EINVALID with a
 * message naming the flag, key or value, or AVA_ENOTFOUND / AVA_EIO when the config file
 * cannot be read. */
int avad_config_parse(int argc, char **argv, struct avad_config *cfg, char *err);

/* Applies one setting by key (the flag name without dashes, or the INI key; '-' and '_'
 * are the same). Exposed for tests. */
int avad_config_set(struct avad_config *cfg, const char *key, const char *value, char *err);

/* The --help text. */
extern const char avad_usage[];

#endif
