/* spec.c: loading and validating spec.json, finding the newest checkpoint, building the
 * entry's argv and environment. */
#include "spec.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How strictly a string field is checked beyond "is a string without NUL bytes". */
enum str_kind {
    STR_ANY,  /* any text (args, env values may hold newlines) */
    STR_LINE, /* no control characters: it ends up in one-line log and record text */
    STR_PATH, /* a STR_LINE that is an absolute path shorter than AVA_PATH_MAX */
};

/* Checks one string value against kind; what names it in the message. */
static int check_str(json_t *v, enum str_kind kind, const char *what, char *err) {
    if (!json_is_string(v))
        return ava_err(err, AVA_EINVALID, "spec.json: %s must be a string", what);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n)
        return ava_err(err, AVA_EINVALID, "spec.json: %s holds a NUL byte", what);
    if (kind == STR_ANY)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return ava_err(err, AVA_EINVALID, "spec.json: %s holds a control character", what);
    if (kind == STR_PATH && (s[0] != '/' || n >= AVA_PATH_MAX))
        return ava_err(err, AVA_EINVALID, "spec.json: %s must be an absolute path, not '%.200s'",
                       what, s);
    return 0;
}

/* Copies the string field key of obj into *out ("" when absent and not required). */
static int get_str(json_t *obj, const char *key, enum str_kind kind, bool required, char **out,
                   char *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return ava_err(err, AVA_EINVALID, "spec.json: '%s' is missing", key);
        *out = ava_xstrdup("");
        return 0;
    }
    char what[80];
    snprintf(what, sizeof what, "'%s'", key);
    int r = check_str(v, kind, what, err);
    if (r < 0)
        return r;
    *out = ava_xstrdup(json_string_value(v));
    return 0;
}

/* Reads the integer field key of obj into *out (def when absent and not required); the value
 * must lie in [min, max]. */
static int get_int(json_t *obj, const char *key, bool required, int64_t def, int64_t min,
                   int64_t max, int64_t *out, char *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return ava_err(err, AVA_EINVALID, "spec.json: '%s' is missing", key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return ava_err(err, AVA_EINVALID, "spec.json: '%s' must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return ava_err(err, AVA_EINVALID, "spec.json: '%s' is out of range (%lld)", key,
                       (long long)x);
    *out = (int64_t)x;
    return 0;
}

/* True when name is a portable environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
static bool env_name_ok(const char *name) {
    if (!*name || (*name >= '0' && *name <= '9'))
        return false;
    for (const char *c = name; *c; c++)
        if (!(*c == '_' || (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
              (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

/* True when e is "K=V" with a non-empty K. */
static bool env_entry_ok(const char *e) {
    const char *eq = strchr(e, '=');
    return eq && eq != e;
}

/* Copies the array of strings key of obj into *out / *n (empty when absent). Env arrays
 * (is_env) must hold "K=V" entries. */
static int get_strv(json_t *obj, const char *key, bool is_env, char ***out, size_t *n, char *err) {
    json_t *v = json_object_get(obj, key);
    *out = ava_xcalloc(1, sizeof(char *));
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return ava_err(err, AVA_EINVALID, "spec.json: '%s' must be an array of strings", key);
    size_t cnt = json_array_size(v);
    if (cnt > AVA_SHIM_ARGS_MAX)
        return ava_err(err, AVA_EINVALID, "spec.json: '%s' has more than %d entries", key,
                       AVA_SHIM_ARGS_MAX);
    *out = ava_xrealloc(*out, (cnt + 1) * sizeof(char *));
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(v, i);
        char what[80];
        snprintf(what, sizeof what, "'%s' entry %zu", key, i);
        if (!json_is_string(e))
            return ava_err(err, AVA_EINVALID,
                           "spec.json: '%s' must be an array of strings (entry %zu is not)", key,
                           i);
        int r = check_str(e, STR_ANY, what, err);
        if (r < 0)
            return r;
        if (is_env && !env_entry_ok(json_string_value(e)))
            return ava_err(err, AVA_EINVALID, "spec.json: %s ('%.100s') is not K=V", what,
                           json_string_value(e));
        (*out)[i] = ava_xstrdup(json_string_value(e));
        (*out)[i + 1] = NULL;
        *n = i + 1;
    }
    return 0;
}

/* Fills s from the JSON object root, stopping at the first bad field. */
static int fill_spec(json_t *root, struct ava_shim_spec *s, char *err) {
    int r;
    if ((r = get_str(root, "training", STR_LINE, true, &s->training, err)) < 0 ||
        (r = get_int(root, "training_id", false, 0, 0, INT64_MAX, &s->training_id, err)) < 0 ||
        (r = get_int(root, "run", true, 0, 0, INT64_MAX, &s->run, err)) < 0 ||
        (r = get_str(root, "user", STR_LINE, false, &s->user, err)) < 0 ||
        (r = get_str(root, "group", STR_LINE, false, &s->group, err)) < 0 ||
        (r = get_str(root, "image", STR_LINE, false, &s->image, err)) < 0 ||
        (r = get_str(root, "gpus", STR_LINE, false, &s->gpus, err)) < 0 ||
        (r = get_str(root, "entry", STR_PATH, true, &s->entry, err)) < 0 ||
        (r = get_strv(root, "args", false, &s->args, &s->nargs, err)) < 0 ||
        (r = get_strv(root, "env", true, &s->env, &s->nenv, err)) < 0 ||
        (r = get_str(root, "cwd", STR_PATH, true, &s->cwd, err)) < 0 ||
        (r = get_str(root, "log_path", STR_PATH, true, &s->log_path, err)) < 0 ||
        (r = get_str(root, "output_dir", STR_PATH, true, &s->output_dir, err)) < 0 ||
        (r = get_str(root, "metrics_parser", STR_LINE, false, &s->metrics_parser, err)) < 0 ||
        (r = get_strv(root, "metric_rules", false, &s->metric_rules, &s->nrules, err)) < 0 ||
        (r = get_strv(root, "inherit_env", false, &s->inherit, &s->ninherit, err)) < 0)
        return r;
    for (size_t i = 0; i < s->ninherit; i++)
        if (!env_name_ok(s->inherit[i]))
            return ava_err(err, AVA_EINVALID,
                           "spec.json: 'inherit_env' entry %zu ('%.100s') is not a variable name",
                           i, s->inherit[i]);
    /* one year of runtime / one day of grace are far past any sane setting */
    if ((r = get_int(root, "max_runtime_ms", false, 0, 0, INT64_C(366) * 86400000,
                     &s->max_runtime_ms, err)) < 0 ||
        (r = get_int(root, "grace_ms", false, AVA_SHIM_GRACE_DEFAULT_MS, 0, 86400000, &s->grace_ms,
                     err)) < 0)
        return r;
    return 0;
}

int ava_shim_spec_parse(const char *text, size_t len, struct ava_shim_spec **out, char *err) {
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ava_err(err, AVA_EINVALID, "spec.json is not valid JSON: %s (line %d, column %d)",
                       jerr.text, jerr.line, jerr.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return ava_err(err, AVA_EINVALID, "spec.json must hold a JSON object");
    }
    struct ava_shim_spec *s = ava_xcalloc(1, sizeof *s);
    int r = fill_spec(root, s, err);
    json_decref(root);
    if (r < 0) {
        ava_shim_spec_free(s);
        return r;
    }
    *out = s;
    return 0;
}

int ava_shim_spec_load(const char *path, struct ava_shim_spec **out, char *err) {
    char *text;
    size_t len;
    *out = NULL;
    int r = ava_file_read_all(path, AVA_SHIM_SPEC_MAX, &text, &len, err);
    if (r < 0)
        return r;
    r = ava_shim_spec_parse(text, len, out, err);
    free(text);
    return r;
}

void ava_shim_strv_free(char **v) {
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

void ava_shim_spec_free(struct ava_shim_spec *s) {
    if (!s)
        return;
    free(s->training);
    free(s->user);
    free(s->group);
    free(s->image);
    free(s->gpus);
    free(s->entry);
    ava_shim_strv_free(s->args);
    ava_shim_strv_free(s->env);
    free(s->cwd);
    free(s->log_path);
    free(s->output_dir);
    free(s->metrics_parser);
    ava_shim_strv_free(s->metric_rules);
    ava_shim_strv_free(s->inherit);
    free(s);
}

bool ava_shim_checkpoint_newer(const struct timespec *am, const char *an, const struct timespec *bm,
                               const char *bn) {
    if (am->tv_sec != bm->tv_sec)
        return am->tv_sec > bm->tv_sec;
    if (am->tv_nsec != bm->tv_nsec)
        return am->tv_nsec > bm->tv_nsec;
    return strcmp(an, bn) > 0;
}

int ava_shim_newest_checkpoint(const char *dir, char *out, size_t outlen, char *err) {
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return ava_err(err, AVA_ENOTFOUND, "no checkpoint in %s", dir);
        return ava_err(err, AVA_EIO, "cannot read %s: %s", dir, strerror(errno));
    }
    char *best = NULL;
    struct timespec best_m = {0};
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (strncmp(de->d_name, AVA_SHIM_CHECKPOINT_PREFIX, strlen(AVA_SHIM_CHECKPOINT_PREFIX)))
            continue;
        /* follow symlinks (a "checkpoint-latest" link counts as its target); skip dangling */
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
            continue;
        if (best && !ava_shim_checkpoint_newer(&st.st_mtim, de->d_name, &best_m, best))
            continue;
        free(best);
        best = ava_xstrdup(de->d_name);
        best_m = st.st_mtim;
    }
    closedir(d);
    if (!best)
        return ava_err(err, AVA_ENOTFOUND, "no checkpoint in %s", dir);
    int r = ava_path_join(out, outlen, err, dir, best, NULL);
    free(best);
    return r;
}

char **ava_shim_build_env(const struct ava_shim_spec *s, const char *resume) {
    char **env = ava_xcalloc(s->nenv + 3, sizeof(char *));
    size_t n = 0, klen = strlen(AVA_SHIM_RESUME_VAR);
    for (size_t i = 0; i < s->nenv; i++) {
        if (!strncmp(s->env[i], AVA_SHIM_RESUME_VAR, klen) && s->env[i][klen] == '=')
            continue;
        env[n++] = ava_xstrdup(s->env[i]);
    }
    if (resume)
        env[n++] = ava_xasprintf("%s=%s", AVA_SHIM_RESUME_VAR, resume);
    env[n++] = ava_xstrdup("AVA_METRICS_FD=3"); /* the SDK pipe, placed there by launch */
    env[n] = NULL;
    return env;
}

/* Sets "key=value" in the spec's env, replacing an entry for key. */
static void spec_env_set(struct ava_shim_spec *s, const char *key, const char *value) {
    size_t klen = strlen(key);
    char *kv = ava_xasprintf("%s=%s", key, value);
    for (size_t i = 0; i < s->nenv; i++)
        if (!strncmp(s->env[i], key, klen) && s->env[i][klen] == '=') {
            free(s->env[i]);
            s->env[i] = kv;
            return;
        }
    s->env = ava_xrealloc(s->env, (s->nenv + 2) * sizeof(char *));
    s->env[s->nenv++] = kv;
    s->env[s->nenv] = NULL;
}

void ava_shim_spec_inherit(struct ava_shim_spec *s, const char *(*lookup)(const char *name)) {
    for (size_t i = 0; i < s->ninherit; i++) {
        const char *v = lookup(s->inherit[i]);
        if (!v || strchr(v, '\n'))
            continue;
        spec_env_set(s, s->inherit[i], v);
        if (!strcmp(s->inherit[i], "CUDA_VISIBLE_DEVICES")) {
            /* the devices the workload manager gave the job are the run's GPUs */
            spec_env_set(s, "NVIDIA_VISIBLE_DEVICES", v);
            free(s->gpus);
            s->gpus = ava_xstrdup(v);
        }
    }
}

char **ava_shim_build_argv(const struct ava_shim_spec *s) {
    char **argv = ava_xcalloc(s->nargs + 2, sizeof(char *));
    argv[0] = s->entry;
    for (size_t i = 0; i < s->nargs; i++)
        argv[i + 1] = s->args[i];
    return argv;
}
