/* trainings.c: /api/v1/trainings: create (validated in full before anything is stored),
 * list, show, start, stop, remove, runs, and the dispatch to logs. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/jsonfields.h"
#include "../common/path.h"
#include "../common/strutil.h"
#include "../common/timeutil.h"
#include "../data/datasets.h"
#include "../exec/exec.h"
#include "../images/images.h"
#include "../metrics/logparse.h"
#include "../sched/sched.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define TRAINING_DESC_MAX 1000
#define TRAINING_ARGS_MAX 1024
#define TRAINING_ARG_LEN 4096
#define TRAINING_ENV_MAX 256
#define SET_REF_MAX 200

int api_find_training(struct req *rq, const char *seg, struct ava_training *out) {
    char owner[65], err[AVA_ERRLEN];
    const char *name = seg, *slash = strchr(seg, '/');
    const char *q = api_query(rq, "owner");
    struct ava_user u = rq->user;
    if (slash) {
        snprintf(owner, sizeof owner, "%.*s", (int)(slash - seg), seg);
        name = slash + 1;
        q = owner;
    }
    if (q && strcmp(q, rq->user.name) != 0) {
        if (ava_store_user_find(rq->api->st, q, &u, NULL) < 0 || u.group_id != rq->user.group_id) {
            api_reply_error(rq, AVA_ENOTFOUND, "training '%s' not found", seg);
            return -1;
        }
    }
    int r = ava_store_training_find(rq->api->st, u.id, name, out, err);
    if (r < 0)
        api_reply_error(rq, r, "%s", err);
    return r;
}

/* The JSON of one run, with its events when asked. */
static json_t *run_json(struct req *rq, const struct ava_run *r, bool with_events) {
    json_t *gpus = json_array();
    int idx[64], n = 0;
    if (r->gpus[0] && ava_parse_index_list(r->gpus, idx, 64, &n, NULL) == 0)
        for (int i = 0; i < n; i++)
            json_array_append_new(gpus, json_integer(idx[i]));
    json_t *j = json_pack(
        "{s:i, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:I, s:s, s:s}", "number",
        r->number, "state", ava_run_state_str(r->state), "reason", r->reason, "exit_code",
        r->has_exit ? json_integer(r->exit_code) : json_null(), "signal",
        r->has_exit ? json_integer(r->signal) : json_null(), "created_at", api_time(r->created_at),
        "queued_at", api_time(r->queued_at), "started_at", api_time(r->started_at), "ended_at",
        api_time(r->ended_at), "gpus", gpus, "cpus", r->cpus, "mem_bytes", (json_int_t)r->mem_bytes,
        "executor", r->executor, "executor_id", r->executor_id);
    json_object_set_new(j, "node", r->node[0] ? json_string(r->node) : json_null());
    if (with_events) {
        struct ava_run_event *ev;
        size_t ne;
        json_t *arr = json_array();
        if (ava_store_run_events(rq->api->st, r->id, &ev, &ne, NULL) == 0) {
            for (size_t i = 0; i < ne; i++)
                json_array_append_new(arr, json_pack("{s:o, s:s, s:s}", "at", api_time(ev[i].at),
                                                     "state", ev[i].state, "reason", ev[i].reason));
            free(ev);
        }
        json_object_set_new(j, "events", arr);
    }
    return j;
}

json_t *api_training_json(struct req *rq, const struct ava_training *t, bool with_runs,
                          bool with_events) {
    struct ava_run_paths paths;
    struct ava_run latest;
    char dur[32];
    bool ran = ava_store_run_latest(rq->api->st, t->id, &latest, NULL) == 0;
    ava_exec_paths(rq->api->data_dir, t, ran ? latest.number : 1, &paths, NULL);
    ava_format_duration(t->max_runtime_ms, dur, sizeof dur);
    json_t *args = json_loads(t->args_json ? t->args_json : "[]", 0, NULL);
    json_t *env = json_loads(t->env_json ? t->env_json : "{}", 0, NULL);
    json_t *j = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:{s:i, s:i, s:I}, s:s, s:o, s:o, s:s?, s:s?, s:I, s:s,"
        " s:o, s:o, s:i, s:s, s:s}",
        "id", (json_int_t)t->id, "name", t->name, "owner", t->user, "group", t->group,
        "description", t->description ? t->description : "", "image", t->image, "resources", "gpus",
        t->gpus, "cpus", t->cpus, "mem_bytes", (json_int_t)t->mem_bytes, "entry", t->entry, "args",
        args ? args : json_array(), "env", env ? env : json_object(), "train", t->train_set, "val",
        t->val_set, "max_runtime_ms", (json_int_t)t->max_runtime_ms, "max_runtime", dur,
        "created_at", api_time(t->created_at), "state",
        ran ? json_string(ava_run_state_str(latest.state)) : json_null(), "run",
        ran ? latest.number : 0, "log_path", paths.log_path, "output_dir", paths.output_dir);
    if (ran && !with_runs) {
        json_object_set_new(j, "started_at", api_time(latest.started_at));
        json_object_set_new(j, "ended_at", api_time(latest.ended_at));
        json_object_set_new(j, "reason", json_string(latest.reason));
    }
    if (with_runs) {
        struct ava_run *runs;
        size_t n;
        json_t *arr = json_array();
        if (ava_store_run_list(rq->api->st, t->id, &runs, &n, NULL) == 0) {
            for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, run_json(rq, &runs[i], with_events));
            free(runs);
        }
        json_object_set_new(j, "runs", arr);
    }
    return j;
}

/* True for variables the platform sets and a training may not override. */
static bool env_reserved(const char *k) {
    return ava_startswith(k, "AVA_") || !strcmp(k, "CUDA_VISIBLE_DEVICES") ||
           !strcmp(k, "NVIDIA_VISIBLE_DEVICES");
}

/* Checks args (array of bounded strings) and env (object of strings, portable names, not
 * reserved). */
static int check_args_env(json_t *args, json_t *env, char *err) {
    size_t i;
    json_t *v;
    const char *k;
    if (args && (!json_is_array(args) || json_array_size(args) > TRAINING_ARGS_MAX))
        return ava_err(err, AVA_EINVALID, "args must be an array of at most %d strings",
                       TRAINING_ARGS_MAX);
    json_array_foreach(args, i, v) {
        if (!json_is_string(v) || json_string_length(v) > TRAINING_ARG_LEN ||
            strlen(json_string_value(v)) != json_string_length(v))
            return ava_err(err, AVA_EINVALID, "args[%zu] must be a string of at most %d bytes", i,
                           TRAINING_ARG_LEN);
    }
    if (env && (!json_is_object(env) || json_object_size(env) > TRAINING_ENV_MAX))
        return ava_err(err, AVA_EINVALID, "env must be an object of at most %d strings",
                       TRAINING_ENV_MAX);
    json_object_foreach(env, k, v) {
        bool ok = (isalpha((unsigned char)k[0]) || k[0] == '_');
        for (const char *c = k; *c && ok; c++)
            ok = isalnum((unsigned char)*c) || *c == '_';
        if (!ok || !json_is_string(v))
            return ava_err(err, AVA_EINVALID, "env '%s' must be NAME=string, NAME like PATH_2", k);
        if (env_reserved(k))
            return ava_err(err, AVA_EINVALID, "env '%s' is set by the platform and cannot be given",
                           k);
    }
    return 0;
}

/* Checks the log parser name and the user's metric rules ("NAME=REGEX", at most 40, one
 * capture group each) by building the parser the shim will build. */
static int check_metrics(json_t *parser, json_t *rules, char *err) {
    const char *list[AVA_LOGPARSE_MAX_RULES];
    size_t n = 0, i;
    json_t *v;
    if (rules && json_array_size(rules) > AVA_LOGPARSE_MAX_RULES)
        return ava_err(err, AVA_EINVALID, "at most %d metric rules", AVA_LOGPARSE_MAX_RULES);
    json_array_foreach(rules, i, v) {
        if (!json_is_string(v))
            return ava_err(err, AVA_EINVALID, "metrics[%zu] must be a string NAME=REGEX", i);
        list[n++] = json_string_value(v);
    }
    struct ava_logparse *lp;
    char e2[AVA_ERRLEN];
    int r = ava_logparse_new(json_string_value(parser), list, n, &lp, e2);
    if (r < 0)
        return ava_err(err, AVA_EINVALID, "metrics: %s", e2);
    ava_logparse_free(lp);
    return 0;
}

/* Checks a train/val set reference (DATASET/FORMAT/PERCENT, see the datasets section of the
 * guide). */
static int check_set_ref(const char *what, const char *ref, char *err) {
    if (!ref)
        return 0;
    size_t n = strlen(ref);
    bool ok = n > 0 && n <= SET_REF_MAX && ref[0] != '/' && !strstr(ref, "..");
    for (const char *c = ref; *c && ok; c++)
        ok = isalnum((unsigned char)*c) || strchr("._-/", *c);
    return ok ? 0
              : ava_err(err, AVA_EINVALID, "%s set '%s' must look like DATASET/FORMAT/PERCENT",
                        what, ref);
}

/* Checks that a train or val set exists and is visible to the caller. */
static int check_set_exists(struct req *rq, const char *what, const char *ref, char *err) {
    struct ava_dataset d;
    struct ava_dataset_set set;
    char e2[AVA_ERRLEN];
    if (!rq->api->datasets)
        return ava_err(err, AVA_EUNAVAILABLE, "%s set %s: datasets are not served here", what, ref);
    int r = ava_datasets_resolve(rq->api->datasets, ref, rq->user.group_id, &d, &set, e2);
    if (r < 0)
        return ava_err(err, r, "%s set: %s", what, e2);
    ava_dataset_free(&d);
    return 0;
}

/* Validates a create request into t (which then owns its strings). Nothing is stored. */
static int parse_create(struct req *rq, json_t *body, struct ava_training *t, int *start,
                        char *err) {
    const char *name, *image, *entry = NULL, *desc = "", *train = NULL, *val = NULL;
    json_int_t cpus = 0, gpus = 0, mem = 0, maxrt = 0;
    json_t *args = NULL, *env = NULL;
    char iname[65], itag[65];
    static const struct ava_field fields[] = {
        {"name", AVA_FIELD_STRING, true, false},
        {"image", AVA_FIELD_STRING, true, false},
        {"cpus", AVA_FIELD_INT, false, true},
        {"gpus", AVA_FIELD_INT, false, true},
        {"mem_bytes", AVA_FIELD_INT, false, true},
        {"entry", AVA_FIELD_STRING, false, true},
        {"args", AVA_FIELD_ARRAY, false, true},
        {"env", AVA_FIELD_OBJECT, false, true},
        {"description", AVA_FIELD_STRING, false, true},
        {"train", AVA_FIELD_STRING, false, true},
        {"val", AVA_FIELD_STRING, false, true},
        {"max_runtime_ms", AVA_FIELD_INT, false, true},
        {"start", AVA_FIELD_BOOL, false, true},
        {"metrics_parser", AVA_FIELD_STRING, false, true},
        {"metrics", AVA_FIELD_ARRAY, false, true},
    };
    int r = ava_json_check_fields(body, fields, sizeof fields / sizeof fields[0], NULL, err);
    if (r < 0)
        return r;
    json_unpack(body, "{s:s, s:s, s?I, s?I, s?I, s?s, s?o, s?o, s?s, s?s, s?s, s?I, s?b}", "name",
                &name, "image", &image, "cpus", &cpus, "gpus", &gpus, "mem_bytes", &mem, "entry",
                &entry, "args", &args, "env", &env, "description", &desc, "train", &train, "val",
                &val, "max_runtime_ms", &maxrt, "start", start);
    if (!ava_name_valid(name))
        return ava_err(err, AVA_EINVALID,
                       "bad training name '%s': use [A-Za-z0-9][A-Za-z0-9._-]{0,63}", name);
    if ((cpus > 0) == (gpus > 0) || cpus < 0 || gpus < 0 || cpus > 4096 || gpus > 64)
        return ava_err(err, AVA_EINVALID, "give exactly one of cpus or gpus, a positive count");
    if (mem < 0)
        return ava_err(err, AVA_EINVALID, "mem_bytes must not be negative");
    if (strlen(desc) > TRAINING_DESC_MAX)
        return ava_err(err, AVA_EINVALID, "description is over %d bytes", TRAINING_DESC_MAX);
    r = check_args_env(args, env, err);
    if (r == 0)
        r = check_set_ref("train", train, err);
    if (r == 0)
        r = check_set_ref("val", val, err);
    if (r == 0)
        r = check_metrics(json_object_get(body, "metrics_parser"), json_object_get(body, "metrics"),
                          err);
    if (r == 0 && train)
        r = check_set_exists(rq, "train", train, err);
    if (r == 0 && val)
        r = check_set_exists(rq, "val", val, err);
    if (r == 0)
        r = ava_image_ref_split(image, iname, itag, err);
    if (r < 0)
        return r;
    if (maxrt < 0 || (maxrt == 0 && json_object_get(body, "max_runtime_ms")))
        return ava_err(err, AVA_EINVALID, "max_runtime_ms must be positive");
    if (maxrt > rq->api->cfg.max_runtime_ms) {
        char want[32], ceil[32];
        ava_format_duration(maxrt, want, sizeof want);
        ava_format_duration(rq->api->cfg.max_runtime_ms, ceil, sizeof ceil);
        return ava_err(err, AVA_ENOFIT, "max runtime %s is over the platform's limit of %s", want,
                       ceil);
    }
    struct ava_image img;
    r = ava_store_image_find(rq->api->st, iname, itag, rq->user.group_id, &img, err);
    if (r < 0)
        return r;
    if (!img.available)
        r = ava_err(err, AVA_ENOFIT, "image %s is unavailable: %s", image,
                    img.unavailable_reason ? img.unavailable_reason : "unknown reason");
    if (!entry)
        entry = img.entry;
    if (r == 0 && (!entry || entry[0] != '/'))
        r = ava_err(err, AVA_EINVALID,
                    entry ? "entry '%s' must be an absolute path"
                          : "an entry is required (an absolute path: the image has no default)%s",
                    entry ? entry : "");
    if (r == 0)
        r = ava_pool_check_fits(ava_sched_pool(rq->api->sched), (int)gpus, (int)cpus, mem, err);
    if (r == 0) {
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", name);
        t->user_id = rq->user.id;
        t->group_id = rq->user.group_id;
        snprintf(t->user, sizeof t->user, "%s", rq->user.name);
        snprintf(t->group, sizeof t->group, "%s", rq->user.group);
        t->description = ava_xstrdup(desc);
        snprintf(t->image, sizeof t->image, "%s:%s", iname, itag);
        snprintf(t->image_kind, sizeof t->image_kind, "%s", img.kind);
        t->gpus = (int)gpus;
        t->cpus = (int)cpus;
        t->mem_bytes = mem;
        t->entry = ava_xstrdup(entry);
        t->args_json = args ? json_dumps(args, JSON_COMPACT) : ava_xstrdup("[]");
        t->env_json = env ? json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS) : ava_xstrdup("{}");
        t->train_set = train ? ava_xstrdup(train) : NULL;
        t->val_set = val ? ava_xstrdup(val) : NULL;
        t->max_runtime_ms = maxrt ? maxrt : rq->api->cfg.max_runtime_ms;
        json_t *mp = json_object_get(body, "metrics_parser"),
               *mr = json_object_get(body, "metrics");
        t->metrics_parser = json_is_string(mp) ? ava_xstrdup(json_string_value(mp)) : NULL;
        t->metric_rules_json = mr ? json_dumps(mr, JSON_COMPACT) : ava_xstrdup("[]");
        t->created_at = ava_now_ms();
    }
    ava_image_free(&img);
    return r;
}

/* POST /trainings */
static void create_training(struct req *rq) {
    json_t *body = api_body_json(rq);
    if (!body)
        return;
    struct ava_training t;
    int start = 1;
    char err[AVA_ERRLEN];
    int r = parse_create(rq, body, &t, &start, err);
    json_decref(body);
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    r = ava_store_training_insert(rq->api->st, &t, err);
    if (r == 0 && start)
        r = ava_sched_start(rq->api->sched, t.id, rq->user.name, NULL, err);
    if (r < 0)
        api_reply_error(rq, r, "%s", err);
    else
        api_reply_json(rq, 201, api_training_json(rq, &t, true, false));
    ava_training_free(&t);
}

/* GET /trainings */
static void list_trainings(struct req *rq) {
    struct ava_training *ts;
    size_t n;
    char err[AVA_ERRLEN];
    int r = ava_store_training_list(rq->api->st, rq->user.group_id, &ts, &n, err);
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, api_training_json(rq, &ts[i], false, false));
    ava_training_list_free(ts, n);
    api_reply_json(rq, 200, json_pack("{s:o}", "trainings", arr));
}

/* DELETE /trainings/NAME: records and run dirs go; log and outputs stay. */
static void remove_training(struct req *rq, struct ava_training *t) {
    struct ava_run r;
    char err[AVA_ERRLEN], dir[AVA_PATH_MAX], tid[32];
    if (ava_store_run_latest(rq->api->st, t->id, &r, NULL) == 0 && !ava_run_state_terminal(r.state))
        return api_reply_error(rq, AVA_ECONFLICT,
                               "training '%s' is active (run %d is %s): stop it first", t->name,
                               r.number, ava_run_state_str(r.state));
    int rc = ava_store_training_delete(rq->api->st, t->id, err);
    if (rc < 0)
        return api_reply_error(rq, rc, "%s", err);
    snprintf(tid, sizeof tid, "%lld", (long long)t->id);
    if (ava_path_join(dir, sizeof dir, NULL, rq->api->data_dir, "runs", tid, NULL) == 0)
        ava_rm_rf(dir, NULL);
    api_reply_json(rq, 200, json_pack("{s:s, s:b}", "name", t->name, "removed", 1));
}

/* GET /trainings/NAME/runs/N */
static void show_run(struct req *rq, struct ava_training *t, const char *num) {
    int64_t n;
    struct ava_run r;
    char err[AVA_ERRLEN];
    if (ava_parse_uint(num, 1000000000, &n, err) < 0)
        return api_reply_error(rq, AVA_EINVALID, "run number: %s", err);
    int rc = ava_store_run_get(rq->api->st, t->id, (int)n, &r, err);
    if (rc < 0)
        return api_reply_error(rq, rc, "%s", err);
    api_reply_json(rq, 200, run_json(rq, &r, true));
}

/* Routes /trainings/NAME[/ACTION...] once the training is found. */
static void training_action(struct req *rq, struct ava_training *t) {
    const char *action = rq->nsegs > 2 ? rq->segs[2] : NULL;
    char err[AVA_ERRLEN];
    int r;
    bool get = rq->method == EVHTTP_REQ_GET, post = rq->method == EVHTTP_REQ_POST;
    if (!action && get)
        return api_reply_json(rq, 200, api_training_json(rq, t, true, true));
    if (!action && rq->method == EVHTTP_REQ_DELETE)
        return remove_training(rq, t);
    if (action && rq->nsegs == 3 && post && !strcmp(action, "start"))
        r = ava_sched_start(rq->api->sched, t->id, rq->user.name, NULL, err);
    else if (action && rq->nsegs == 3 && post && !strcmp(action, "stop"))
        r = ava_sched_stop(rq->api->sched, t->id, rq->user.name, err);
    else if (action && rq->nsegs == 3 && get && !strcmp(action, "logs"))
        return api_route_logs(rq, t);
    else if (action && rq->nsegs == 4 && get && !strcmp(action, "runs"))
        return show_run(rq, t, rq->segs[3]);
    else if (action && get && !strcmp(action, "metrics"))
        return api_route_metrics(rq, t);
    else
        return api_reply_error(rq, AVA_ENOTFOUND, "no such route");
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    api_reply_json(rq, 200, api_training_json(rq, t, true, false));
}

void api_route_trainings(struct req *rq) {
    if (rq->nsegs == 1 && rq->method == EVHTTP_REQ_GET)
        return list_trainings(rq);
    if (rq->nsegs == 1 && rq->method == EVHTTP_REQ_POST)
        return create_training(rq);
    if (rq->nsegs == 1)
        return api_reply_error(rq, AVA_EINVALID, "method not allowed on /trainings");
    struct ava_training t;
    if (api_find_training(rq, rq->segs[1], &t) < 0)
        return;
    training_action(rq, &t);
    ava_training_free(&t);
}
