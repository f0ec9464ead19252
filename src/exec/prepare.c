/* prepare.c: the run dir from avad's side: paths (DESIGN §4), the entry's environment,
 * config/trainingspec and spec.json. */
#include "exec.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/path.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ava_exec_paths(const char *data_dir, const struct ava_training *t, int number,
                   struct ava_run_paths *out, char *err) {
    char tid[32], num[32], logname[AVA_PATH_MAX];
    snprintf(tid, sizeof tid, "%lld", (long long)t->id);
    snprintf(num, sizeof num, "%d", number);
    snprintf(logname, sizeof logname, "train_%s_out.log", t->name);
    int r = ava_path_join(out->run_dir, sizeof out->run_dir, err, data_dir, "runs", tid, num, NULL);
    if (r == 0)
        r = ava_path_join(out->config_dir, sizeof out->config_dir, err, out->run_dir, "config",
                          NULL);
    if (r == 0)
        r = ava_path_join(out->group_dir, sizeof out->group_dir, err, data_dir, "storage", "group",
                          t->group, NULL);
    if (r == 0)
        r = ava_path_join(out->home_dir, sizeof out->home_dir, err, out->group_dir, t->user, NULL);
    if (r == 0)
        r = ava_path_join(out->log_path, sizeof out->log_path, err, out->home_dir, "run", logname,
                          NULL);
    if (r == 0)
        r = ava_path_join(out->output_dir, sizeof out->output_dir, err, out->home_dir, "run",
                          t->name, "output", NULL);
    return r;
}

/* Adds "K=V" to an env array, replacing an earlier entry for K. */
static void env_set(json_t *env, const char *key, const char *value) {
    size_t klen = strlen(key), i;
    json_t *v;
    char *kv = ava_xasprintf("%s=%s", key, value);
    json_array_foreach(env, i, v) {
        const char *s = json_string_value(v);
        if (s && strncmp(s, key, klen) == 0 && s[klen] == '=') {
            json_array_set_new(env, i, json_string(kv));
            free(kv);
            return;
        }
    }
    json_array_append_new(env, json_string(kv));
    free(kv);
}

/* Adds every string member of a JSON object text to env. */
static void env_merge_object(json_t *env, const char *json_text) {
    if (!json_text)
        return;
    json_t *obj = json_loads(json_text, 0, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (json_is_string(v))
            env_set(env, k, json_string_value(v));
    }
    json_decref(obj);
}

/* Builds the entry's whole environment: a clean base, the image's, the training's, then the
 * platform's variables, which nobody can override. */
static json_t *build_env(const struct ava_prepare *p) {
    const struct ava_training *t = p->training;
    const struct ava_run_paths *ps = p->node_paths ? p->node_paths : p->paths;
    json_t *env = json_array();
    char num[32];
    env_set(env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    env_set(env, "HOME", ps->home_dir);
    env_set(env, "LANG", "C.UTF-8");
    env_merge_object(env, p->image_env_json);
    env_merge_object(env, t->env_json);
    snprintf(num, sizeof num, "%d", p->number);
    env_set(env, "AVA_TRAINING", t->name);
    env_set(env, "AVA_RUN", num);
    env_set(env, "AVA_USER", t->user);
    env_set(env, "AVA_GROUP", t->group);
    env_set(env, "AVA_GROUP_DIR", ps->group_dir);
    env_set(env, "AVA_OUTPUT_DIR", ps->output_dir);
    env_set(env, "AVA_CONFIG_DIR", ps->config_dir);
    env_set(env, "AVA_LOG_PATH", ps->log_path);
    if (p->report_token)
        env_set(env, "AVA_REPORT_TOKEN", p->report_token);
    if (p->report_url)
        env_set(env, "AVA_REPORT_URL", p->report_url);
    if (p->python_path)
        env_set(env, "PYTHONPATH", p->python_path);
    if (p->train_dir)
        env_set(env, "AVA_TRAIN_DIR", p->train_dir);
    if (p->val_dir)
        env_set(env, "AVA_VAL_DIR", p->val_dir);
    env_set(env, "CUDA_VISIBLE_DEVICES", p->gpus ? p->gpus : "");
    env_set(env, "NVIDIA_VISIBLE_DEVICES", p->gpus ? p->gpus : "");
    return env;
}

/* The training spec as the run sees it in config/trainingspec. */
static json_t *training_spec_json(const struct ava_prepare *p) {
    const struct ava_training *t = p->training;
    json_t *args = json_loads(t->args_json ? t->args_json : "[]", 0, NULL);
    json_t *env = json_loads(t->env_json ? t->env_json : "{}", 0, NULL);
    return json_pack(
        "{s:s, s:i, s:s, s:s, s:s, s:{s:i, s:i, s:I}, s:s, s:o, s:o, s:s?, s:s?,"
        " s:I, s:s}",
        "name", t->name, "run", p->number, "owner", t->user, "group", t->group, "image", t->image,
        "resources", "gpus", t->gpus, "cpus", t->cpus, "mem_bytes", (json_int_t)t->mem_bytes,
        "entry", t->entry, "args", args ? args : json_array(), "env", env ? env : json_object(),
        "train", t->train_set, "val", t->val_set, "max_runtime_ms", (json_int_t)t->max_runtime_ms,
        "description", t->description ? t->description : "");
}

/* Serialises j (consumed) to path atomically. */
static int write_json(const char *path, json_t *j, char *err) {
    if (!j)
        return ava_err(err, AVA_EINTERNAL, "cannot build %s", path);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (!text)
        return ava_err(err, AVA_EINTERNAL, "cannot serialise %s", path);
    int r = ava_file_write_atomic(path, text, strlen(text), 0644, err);
    free(text);
    return r;
}

int ava_exec_prepare(const struct ava_prepare *p, char *err) {
    const struct ava_run_paths *ps = p->paths;
    const struct ava_training *t = p->training;
    char path[AVA_PATH_MAX], logdir[AVA_PATH_MAX];
    snprintf(logdir, sizeof logdir, "%s", ps->log_path);
    *strrchr(logdir, '/') = '\0';
    int r = ava_mkdir_p(ps->config_dir, 0755, err);
    if (r == 0)
        r = ava_mkdir_p(ps->output_dir, 0755, err);
    if (r == 0)
        r = ava_mkdir_p(logdir, 0755, err);
    if (r == 0)
        r = ava_path_join(path, sizeof path, err, ps->config_dir, "trainingspec", NULL);
    if (r == 0)
        r = write_json(path, training_spec_json(p), err);
    const char *infos[2][2] = {{"trainsetinfo", p->train_info}, {"valsetinfo", p->val_info}};
    for (int i = 0; i < 2 && r == 0; i++) {
        if (!infos[i][1])
            continue;
        r = ava_path_join(path, sizeof path, err, ps->config_dir, infos[i][0], NULL);
        if (r == 0)
            r = ava_file_write_atomic(path, infos[i][1], strlen(infos[i][1]), 0644, err);
    }
    if (r < 0 || !p->gpus)
        return r;
    const struct ava_run_paths *np = p->node_paths ? p->node_paths : ps;
    json_t *args = json_loads(t->args_json ? t->args_json : "[]", 0, NULL);
    json_t *spec = json_pack(
        "{s:s, s:I, s:i, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:I, s:I, s:s}", "training",
        t->name, "training_id", (json_int_t)t->id, "run", p->number, "user", t->user, "group",
        t->group, "image", t->image, "entry", t->entry, "args", args ? args : json_array(), "env",
        build_env(p), "cwd", np->output_dir, "log_path", np->log_path, "output_dir", np->output_dir,
        "max_runtime_ms", (json_int_t)t->max_runtime_ms, "grace_ms", (json_int_t)p->grace_ms,
        "gpus", p->gpus);
    json_t *rules = json_loads(p->metric_rules_json ? p->metric_rules_json : "[]", 0, NULL);
    json_object_set_new(spec, "metric_rules", rules ? rules : json_array());
    if (p->inherit_env) {
        json_t *names = json_array();
        for (const char *const *n = p->inherit_env; *n; n++)
            json_array_append_new(names, json_string(*n));
        json_object_set_new(spec, "inherit_env", names);
    }
    if (p->metrics_parser && *p->metrics_parser)
        json_object_set_new(spec, "metrics_parser", json_string(p->metrics_parser));
    r = ava_path_join(path, sizeof path, err, ps->run_dir, "spec.json", NULL);
    return r < 0 ? (json_decref(spec), r) : write_json(path, spec, err);
}
