/* config.c: avad's flags and INI file (see config.h). */
#include "config.h"

#include "../common/err.h"
#include "../common/file.h"
#include "../common/ini.h"
#include "../common/strutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char avad_usage[] =
    "usage: avad [options]\n"
    "  --config FILE        read settings from an INI file (keys as below, without '--')\n"
    "  --data DIR           data directory (default ./var)\n"
    "  --listen HOST:PORT   HTTP address (default 127.0.0.1:8080; port 0 = any free port)\n"
    "  --gpus auto|none|LIST  GPUs to schedule: auto = ask NVML, LIST = indices like 0,1\n"
    "  --cpus N             CPU slots to schedule (default: online CPUs)\n"
    "  --mem SIZE           memory to schedule, e.g. 16G (default: the machine's)\n"
    "  --max-runtime DUR    platform ceiling and default per training (default 72h)\n"
    "  --grace DUR          SIGTERM to SIGKILL on stop and time limit (default 30s)\n"
    "  --http-timeout DUR   close HTTP connections idle or slow to send for DUR (default 60s)\n"
    "  --share DIR          public image manifests are read from DIR/images\n"
    "  --shim PATH          the ava-shim binary\n"
    "  --fashion-mnist DIR  Debian's dataset-fashion-mnist files (default\n"
    "                       /usr/share/datasets/fashion-mnist), imported as a public dataset\n"
    "  --cifar10-url URL    where 'ava dataset fetch cifar10' downloads from (default: the\n"
    "                       official tarball); --cifar10-md5 HEX: its published MD5\n"
    "  --executor local|slurm  where runs go: this machine (default) or a Slurm cluster\n"
    "  --slurm-partition P  --slurm-account A  sbatch's --partition / --account\n"
    "  --slurm-args ARGS    extra sbatch arguments, separated by blanks\n"
    "  --slurm-data-dir DIR the data dir as the nodes see it (default: the same path)\n"
    "  --slurm-shim PATH    ava-shim as the nodes see it (default: avad's)\n"
    "  --slurm-poll DUR     shortest squeue interval (default 100ms; see the guide)\n"
    "  -v, --verbose        debug logging\n"
    "  -h, --help | --version\n"
    "Durations take s, m, h, d (90s, 72h); sizes K, M, G, T.\n";

/* Copies value into a fixed buffer, refusing what does not fit. */
static int set_str(char *dst, size_t cap, const char *key, const char *value, char *err) {
    if (strlen(value) >= cap || !*value)
        return ava_err(err, AVA_EINVALID, "%s: value is empty or too long", key);
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

/* Parses HOST:PORT. */
static int set_listen(struct avad_config *cfg, const char *value, char *err) {
    const char *colon = strrchr(value, ':');
    int64_t port;
    if (!colon || colon == value || (size_t)(colon - value) >= sizeof cfg->host ||
        ava_parse_uint(colon + 1, 65535, &port, NULL) < 0)
        return ava_err(err, AVA_EINVALID, "listen: '%s' is not HOST:PORT", value);
    memcpy(cfg->host, value, (size_t)(colon - value));
    cfg->host[colon - value] = '\0';
    cfg->port = (int)port;
    return 0;
}

/* Checks the --gpus value. */
static int set_gpus(struct avad_config *cfg, const char *value, char *err) {
    int idx[64], n;
    if (strcmp(value, "auto") && strcmp(value, "none") &&
        ava_parse_index_list(value, idx, 64, &n, err) < 0)
        return ava_err(err, AVA_EINVALID, "gpus: '%s' is not auto, none or a list like 0,1", value);
    return set_str(cfg->gpus, sizeof cfg->gpus, "gpus", value, err);
}

/* Sets the executor and its Slurm settings (key already normalised). */
static int set_executor_key(struct avad_config *cfg, const char *k, const char *value, char *err) {
    if (!strcmp(k, "executor")) {
        if (strcmp(value, "local") && strcmp(value, "slurm"))
            return ava_err(err, AVA_EINVALID, "executor: '%s' is not local or slurm", value);
        return set_str(cfg->executor, sizeof cfg->executor, k, value, err);
    }
    if (!strcmp(k, "slurm-partition"))
        return set_str(cfg->slurm_partition, sizeof cfg->slurm_partition, k, value, err);
    if (!strcmp(k, "slurm-account"))
        return set_str(cfg->slurm_account, sizeof cfg->slurm_account, k, value, err);
    if (!strcmp(k, "slurm-args")) {
        int n = 0; /* words, as the executor splits them */
        for (const char *c = value; *c; c++)
            n += (c == value || strchr(" \t\n", c[-1])) && !strchr(" \t\n", *c);
        if (n > 32)
            return ava_err(err, AVA_EINVALID, "slurm-args: more than 32 arguments");
        return set_str(cfg->slurm_args, sizeof cfg->slurm_args, k, value, err);
    }
    if (!strcmp(k, "slurm-data-dir") || !strcmp(k, "slurm-shim")) {
        if (value[0] != '/')
            return ava_err(err, AVA_EINVALID, "%s: '%s' is not an absolute path", k, value);
        if (!strcmp(k, "slurm-shim"))
            return set_str(cfg->slurm_shim, sizeof cfg->slurm_shim, k, value, err);
        return set_str(cfg->slurm_data_dir, sizeof cfg->slurm_data_dir, k, value, err);
    }
    int r = ava_parse_duration(value, &cfg->slurm_poll_ms, err);
    if (r < 0)
        return r;
    return cfg->slurm_poll_ms >= 10 && cfg->slurm_poll_ms <= 60000
               ? 0
               : ava_err(err, AVA_EINVALID, "slurm-poll: must be from 10ms to 60s");
}

/* The settings a flag or an INI key may name. */
static const char *const settings[] = {
    "data",          "listen",      "gpus",           "cpus",
    "mem",           "max-runtime", "grace",          "http-timeout",
    "share",         "shim",        "fashion-mnist",  "cifar10-url",
    "cifar10-md5",   "verbose",     "executor",       "slurm-partition",
    "slurm-account", "slurm-args",  "slurm-data-dir", "slurm-shim",
    "slurm-poll"};

/* Copies key into k (cap bytes) with '_' spelled '-'; true when it names a setting. */
static bool normalise_key(const char *key, char *k, size_t cap) {
    snprintf(k, cap, "%s", key);
    for (char *c = k; *c; c++)
        if (*c == '_')
            *c = '-';
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (!strcmp(k, settings[i]))
            return true;
    return false;
}

int avad_config_set(struct avad_config *cfg, const char *key, const char *value, char *err) {
    char k[64];
    if (!normalise_key(key, k, sizeof k))
        return ava_err(err, AVA_EINVALID, "unknown setting '%s' (see avad --help)", key);
    int64_t v;
    int r;
    if (!strcmp(k, "data"))
        return set_str(cfg->data_dir, sizeof cfg->data_dir, k, value, err);
    if (!strcmp(k, "listen"))
        return set_listen(cfg, value, err);
    if (!strcmp(k, "gpus"))
        return set_gpus(cfg, value, err);
    if (!strcmp(k, "cpus")) {
        if ((r = ava_parse_uint(value, 4096, &v, err)) < 0 || v == 0)
            return ava_err(err, AVA_EINVALID, "cpus: '%s' is not a count from 1 to 4096", value);
        cfg->cpus = (int)v;
        return 0;
    }
    if (!strcmp(k, "mem")) {
        if ((r = ava_parse_size(value, &cfg->mem, err)) < 0)
            return r;
        return cfg->mem > 0 ? 0 : ava_err(err, AVA_EINVALID, "mem: must be more than 0");
    }
    if (!strcmp(k, "max-runtime")) {
        if ((r = ava_parse_duration(value, &cfg->max_runtime_ms, err)) < 0)
            return r;
        return cfg->max_runtime_ms > 0 ? 0 : ava_err(err, AVA_EINVALID, "max-runtime: must be > 0");
    }
    if (!strcmp(k, "grace"))
        return ava_parse_duration(value, &cfg->grace_ms, err);
    if (!strcmp(k, "http-timeout")) {
        if ((r = ava_parse_duration(value, &cfg->http_timeout_ms, err)) < 0)
            return r;
        return cfg->http_timeout_ms >= 1000
                   ? 0
                   : ava_err(err, AVA_EINVALID, "http-timeout: must be at least 1s");
    }
    if (!strcmp(k, "share"))
        return set_str(cfg->share_dir, sizeof cfg->share_dir, k, value, err);
    if (!strcmp(k, "shim"))
        return set_str(cfg->shim_path, sizeof cfg->shim_path, k, value, err);
    if (!strcmp(k, "fashion-mnist"))
        return set_str(cfg->fashion_mnist, sizeof cfg->fashion_mnist, k, value, err);
    if (!strcmp(k, "cifar10-url"))
        return set_str(cfg->cifar10_url, sizeof cfg->cifar10_url, k, value, err);
    if (!strcmp(k, "cifar10-md5")) {
        if (strlen(value) != 32 || strspn(value, "0123456789abcdef") != 32)
            return ava_err(err, AVA_EINVALID, "cifar10-md5: '%s' is not 32 lowercase hex digits",
                           value);
        return set_str(cfg->cifar10_md5, sizeof cfg->cifar10_md5, k, value, err);
    }
    if (!strncmp(k, "slurm-", 6) || !strcmp(k, "executor"))
        return set_executor_key(cfg, k, value, err);
    /* verbose, from the INI file (the flag takes no value) */
    if (strcmp(value, "true") && strcmp(value, "false") && strcmp(value, "1") && strcmp(value, "0"))
        return ava_err(err, AVA_EINVALID, "verbose: '%s' is not true or false", value);
    cfg->verbose = !strcmp(value, "true") || !strcmp(value, "1");
    return 0;
}

static int ini_cb(void *ctx, const char *section, const char *key, const char *value, char *err) {
    if (*section && strcmp(section, "avad") != 0)
        return ava_err(err, AVA_EINVALID, "unknown section [%s] (use [avad])", section);
    return avad_config_set(ctx, key, value, err);
}

/* Loads the INI file at path into cfg. */
static int load_file(struct avad_config *cfg, const char *path, char *err) {
    char *text, ierr[AVA_ERRLEN];
    size_t len;
    int r = ava_file_read_all(path, 1 << 20, &text, &len, err);
    if (r < 0)
        return r;
    r = ava_ini_parse(text, len, ini_cb, cfg, ierr);
    free(text);
    return r < 0 ? ava_err(err, r, "%s: %s", path, ierr) : 0;
}

int avad_config_parse(int argc, char **argv, struct avad_config *cfg, char *err) {
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->data_dir, "./var");
    strcpy(cfg->host, "127.0.0.1");
    cfg->port = 8080;
    strcpy(cfg->gpus, "auto");
    cfg->max_runtime_ms = 72LL * 3600 * 1000;
    cfg->grace_ms = 30000;
    cfg->http_timeout_ms = 60000;
    strcpy(cfg->executor, "local");
    cfg->slurm_poll_ms = 100;
    /* the file first, so that flags override it wherever they stand */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config") && i + 1 < argc) {
            int r = load_file(cfg, argv[i + 1], err);
            if (r < 0)
                return r;
        } else if (!strncmp(a, "--config=", 9)) {
            int r = load_file(cfg, a + 9, err);
            if (r < 0)
                return r;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cfg->help = true;
            continue;
        }
        if (!strcmp(a, "--version")) {
            cfg->version = true;
            continue;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            cfg->verbose = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return ava_err(err, AVA_EINVALID, "unexpected argument '%s' (see avad --help)", a);
        char key[64];
        const char *eq = strchr(a, '='), *value;
        snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
        char norm[64];
        if (strcmp(key, "config") != 0 &&
            (!normalise_key(key, norm, sizeof norm) || !strcmp(norm, "verbose")))
            return ava_err(err, AVA_EINVALID, "unknown option '%s' (see avad --help)", a);
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return ava_err(err, AVA_EINVALID, "%s needs a value", a);
        }
        if (!strcmp(key, "config"))
            continue;
        char serr[AVA_ERRLEN];
        int r = avad_config_set(cfg, key, value, serr);
        if (r < 0)
            return ava_err(err, r, "%s", serr);
    }
    return 0;
}
