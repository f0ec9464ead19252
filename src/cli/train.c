/* train.c: the train verbs that manage trainings: create, list, show, start, stop, rm. */
#include "train.h"

#include "out.h"
#include "table.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/strutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest --cpu / --gpu accepted locally; the server refuses what it cannot fit anyway. */
#define MAX_UNITS 1000000

const struct cli_optspec cli_train_create_opts[] = {
    {"image", 0, true},
    {"cpu", 0, true},
    {"gpu", 0, true},
    {"entry", 0, true},
    {"mem", 0, true},
    {"train", 0, true},
    {"val", 0, true},
    {"desc", 0, true},
    {"max-runtime", 0, true},
    {"env", 0, true},
    {"no-start", 0, false},
    {"no-val", 0, false},
    {"metrics-parser", 0, true},
    {"metric", 0, true},
    {0},
};

static const struct cli_optspec no_opts[] = {{0}};

int cli_training_ref_check(const char *ref, char *err) {
    const char *slash = strchr(ref, '/');
    if (slash) {
        char user[AVA_NAME_MAX + 2];
        size_t n = (size_t)(slash - ref);
        snprintf(user, sizeof user, "%.*s", (int)(n < sizeof user - 1 ? n : sizeof user - 1), ref);
        if (n < sizeof user - 1 && ava_name_valid(user) && ava_name_valid(slash + 1))
            return 0;
    } else if (ava_name_valid(ref)) {
        return 0;
    }
    return ava_err(err, AVA_EINVALID,
                   "'%s' is not a training name: use NAME or USER/NAME, where names are letters, "
                   "digits, '.', '_' and '-', up to 64, starting with a letter or digit",
                   ref);
}

char *cli_training_path(const char *ref, const char *suffix) {
    return cli_item_path("trainings", ref, suffix);
}

int cli_training_get(struct cli_ctx *ctx, const char *ref, json_t **out, char *err) {
    char *path = cli_training_path(ref, NULL);
    int rc = cli_http_json(ctx->http, "GET", path, NULL, out, err);
    free(path);
    return rc;
}

bool cli_state_terminal(const char *state) {
    static const char *const terminal[] = {"succeeded", "failed", "stopped", "timed_out"};
    for (size_t i = 0; state && i < sizeof terminal / sizeof terminal[0]; i++)
        if (strcmp(state, terminal[i]) == 0)
            return true;
    return false;
}

json_t *cli_training_run(const json_t *training, long long n) {
    json_t *runs = json_object_get(training, "runs");
    size_t count = json_array_size(runs);
    if (count == 0)
        return NULL;
    if (n <= 0)
        return json_array_get(runs, count - 1);
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        if (cli_jint(r, "number", -1) == n)
            return r;
    }
    return NULL;
}

/* Parses --cpu / --gpu N: a positive whole number. */
static int parse_units(const char *opt, const char *s, int64_t *out, char *err) {
    if (ava_parse_uint(s, MAX_UNITS, out, NULL) < 0 || *out == 0)
        return ava_err(err, AVA_EINVALID, "--%s needs a positive whole number, not '%s'", opt, s);
    return 0;
}

/* Checks --image NAME:TAG: two valid names around one ':'. */
static int check_image_ref(const char *ref, char *err) {
    const char *colon = strchr(ref, ':');
    char name[AVA_NAME_MAX + 2];
    if (colon && (size_t)(colon - ref) < sizeof name) {
        snprintf(name, sizeof name, "%.*s", (int)(colon - ref), ref);
        if (ava_name_valid(name) && ava_name_valid(colon + 1))
            return 0;
    }
    return ava_err(err, AVA_EINVALID,
                   "'%s' is not an image reference NAME:TAG (e.g. ava-pure:host)", ref);
}

/* Adds "cpus" or "gpus" from exactly one of --cpu / --gpu. */
static int add_units(const struct cli_args *a, json_t *body, char *err) {
    const char *cpu = cli_args_get(a, "cpu"), *gpu = cli_args_get(a, "gpu");
    int64_t n;
    if (cpu && gpu)
        return ava_err(err, AVA_EINVALID, "give either --cpu N or --gpu N, not both");
    if (!cpu && !gpu)
        return ava_err(err, AVA_EINVALID,
                       "say what the training needs: --cpu N (CPUs) or --gpu N (GPUs)");
    if (parse_units(cpu ? "cpu" : "gpu", cpu ? cpu : gpu, &n, err) < 0)
        return AVA_EINVALID;
    json_object_set_new(body, cpu ? "cpus" : "gpus", json_integer(n));
    return 0;
}

/* Sets obj[key] = text, refusing text (or a key) that is not UTF-8, which JSON cannot carry;
 * what names the option in the message. */
static int put_text(json_t *obj, const char *key, const char *text, const char *what, char *err) {
    json_t *v = json_string(text);
    if (!v || json_object_set_new(obj, key, v) < 0)
        return ava_err(err, AVA_EINVALID, "%s: '%s' is not valid UTF-8", what, text);
    return 0;
}

/* Adds every --env K=V to an "env" object (a repeated key keeps its last value). */
static int add_env(const struct cli_args *a, json_t *body, char *err) {
    int pos = 0;
    const char *kv;
    json_t *env = NULL;
    while ((kv = cli_args_next(a, "env", &pos))) {
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            json_decref(env);
            return ava_err(err, AVA_EINVALID, "--env needs KEY=VALUE, not '%s'", kv);
        }
        if (!env)
            env = json_object();
        char *key = strndup(kv, (size_t)(eq - kv));
        int rc = put_text(env, key, eq + 1, "--env", err);
        free(key);
        if (rc < 0) {
            json_decref(env);
            return rc;
        }
    }
    if (env)
        json_object_set_new(body, "env", env);
    return 0;
}

/* Adds --metrics-parser and the --metric NAME=REGEX rules (the server checks the regexes). */
static int add_metrics(const struct cli_args *a, json_t *body, char *err) {
    int pos = 0;
    const char *rule, *parser = cli_args_get(a, "metrics-parser");
    json_t *rules = NULL;
    while ((rule = cli_args_next(a, "metric", &pos))) {
        const char *eq = strchr(rule, '=');
        if (!eq || eq == rule || !eq[1]) {
            json_decref(rules);
            return ava_err(err, AVA_EINVALID, "--metric needs NAME=REGEX, not '%s'", rule);
        }
        if (!rules)
            rules = json_array();
        json_array_append_new(rules, json_string(rule));
    }
    if (rules)
        json_object_set_new(body, "metrics", rules);
    if (parser && put_text(body, "metrics_parser", parser, "--metrics-parser", err) < 0)
        return AVA_EINVALID;
    return 0;
}

/* Adds the optional size, duration and text options. */
static int add_optional(const struct cli_args *a, json_t *body, char *err) {
    const char *s;
    int64_t v;
    if ((s = cli_args_get(a, "entry"))) {
        if (s[0] != '/')
            return ava_err(err, AVA_EINVALID, "--entry must be an absolute path, not '%s'", s);
        if (put_text(body, "entry", s, "--entry", err) < 0)
            return AVA_EINVALID;
    }
    if ((s = cli_args_get(a, "mem"))) {
        if (ava_parse_size(s, &v, err) < 0)
            return AVA_EINVALID;
        json_object_set_new(body, "mem_bytes", json_integer(v));
    }
    if ((s = cli_args_get(a, "max-runtime"))) {
        if (ava_parse_duration(s, &v, err) < 0)
            return AVA_EINVALID;
        if (v == 0)
            return ava_err(err, AVA_EINVALID, "--max-runtime must be longer than 0");
        json_object_set_new(body, "max_runtime_ms", json_integer(v));
    }
    if (cli_args_has(a, "val") && cli_args_has(a, "no-val"))
        return ava_err(err, AVA_EINVALID, "give --val SET or --no-val, not both");
    static const char *const texts[][2] = {
        {"train", "train"}, {"val", "val"}, {"desc", "description"}};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if ((s = cli_args_get(a, texts[i][0])) &&
            put_text(body, texts[i][1], s, texts[i][0], err) < 0)
            return AVA_EINVALID;
    return 0;
}

/* Adds the words after "--" as the "args" array. */
static int add_args(const struct cli_args *a, json_t *body, char *err) {
    if (!a->dashdash)
        return 0;
    json_t *args = json_array();
    for (int i = 0; i < a->nrest; i++) {
        json_t *v = json_string(a->rest[i]);
        if (!v) {
            json_decref(args);
            return ava_err(err, AVA_EINVALID, "argument '%s' is not valid UTF-8", a->rest[i]);
        }
        json_array_append_new(args, v);
    }
    json_object_set_new(body, "args", args);
    return 0;
}

int cli_train_create_body(const struct cli_args *a, json_t **body, char *err) {
    *body = NULL;
    if (a->npos < 1)
        return ava_err(err, AVA_EINVALID, "missing the training NAME");
    if (a->npos > 1)
        return ava_err(err, AVA_EINVALID,
                       "unexpected argument '%s' (arguments for the entry point go after '--')",
                       a->pos[1]);
    const char *name = a->pos[0], *image = cli_args_get(a, "image");
    if (!ava_name_valid(name))
        return ava_err(err, AVA_EINVALID,
                       "'%s' is not a valid training name: use letters, digits, '.', '_' and "
                       "'-', up to 64, starting with a letter or digit",
                       name);
    if (!image)
        return ava_err(err, AVA_EINVALID, "missing --image NAME:TAG");
    if (check_image_ref(image, err) < 0)
        return AVA_EINVALID;
    json_t *b = json_pack("{s:s, s:s}", "name", name, "image", image);
    if (add_units(a, b, err) < 0 || add_optional(a, b, err) < 0 || add_env(a, b, err) < 0 ||
        add_metrics(a, b, err) < 0 || add_args(a, b, err) < 0) {
        json_decref(b);
        return AVA_EINVALID;
    }
    if (cli_args_has(a, "no-start"))
        json_object_set_new(b, "start", json_false());
    *body = b;
    return 0;
}

int cli_parse_body(int argc, char *const *argv, const struct cli_optspec *opts,
                   int (*build)(const struct cli_args *, json_t **, char *), json_t **body,
                   char *err) {
    struct cli_args a;
    *body = NULL;
    int rc = cli_args_parse(argc, argv, opts, &a, err);
    if (rc == 0)
        rc = build(&a, body, err);
    cli_args_free(&a);
    return rc;
}

int cli_train_create_parse(int argc, char *const *argv, json_t **body, char *err) {
    return cli_parse_body(argc, argv, cli_train_create_opts, cli_train_create_body, body, err);
}

/* Prints the outcome of create/start: "training hello created, run 1 running". */
static void print_started(const json_t *t, const char *what) {
    const char *name = cli_jstr(t, "name"), *state = cli_jstr(t, "state");
    long long run = cli_jint(t, "run", 0);
    if (run > 0 && state)
        printf("training %s %s, run %lld %s\n", name ? name : "?", what, run, state);
    else
        printf("training %s %s (not started)\n", name ? name : "?", what);
}

/* With --train D/F/P and neither --val nor --no-val: adds the train set's complement as
 * "val" when dataset D has one, and says so on stderr. Any failure to find it is left for
 * the server to report when it checks the train set. */
static void pick_val(struct cli_ctx *ctx, const struct cli_args *a, json_t *body) {
    const char *train = cli_args_get(a, "train");
    struct cli_set_ref r;
    json_t *d;
    char err[AVA_ERRLEN];
    if (!train || cli_args_has(a, "val") || cli_args_has(a, "no-val") ||
        cli_set_ref_parse(train, &r, NULL) < 0 || cli_dataset_get(ctx, r.dataset, &d, err) < 0)
        return;
    char *val = cli_dataset_complement(d, train);
    json_decref(d);
    if (!val)
        return;
    json_object_set_new(body, "val", json_string(val));
    fprintf(stderr, "validation set: %s (the complement of the train set)\n", val);
    free(val);
}

/* ava train create NAME --image NAME:TAG (--cpu N | --gpu N) [options] [-- ARGS...] */
static int train_create(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    json_t *body, *resp;
    if (cli_train_create_body(a, &body, err) < 0)
        return CLI_USAGE;
    pick_val(ctx, a, body);
    int rc = cli_http_json(ctx->http, "POST", "/trainings", body, &resp, err);
    json_decref(body);
    if (rc < 0)
        return CLI_FAIL;
    if (ctx->json)
        cli_print_json(stdout, resp);
    else
        print_started(resp, "created");
    json_decref(resp);
    return CLI_OK;
}

/* The STARTED cell of a list entry: the latest run's start, wherever the server put it. */
static const char *started_at(const json_t *t) {
    const char *s = cli_jstr(t, "started_at");
    if (!s)
        s = cli_jstr(cli_training_run(t, 0), "started_at");
    return s;
}

/* ava train list */
static int train_list(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    json_t *resp;
    if (cli_http_json(ctx->http, "GET", "/trainings", NULL, &resp, err) < 0)
        return CLI_FAIL;
    if (ctx->json) {
        cli_print_json(stdout, resp);
        json_decref(resp);
        return CLI_OK;
    }
    static const char *const hdr[] = {"NAME",  "OWNER", "IMAGE",  "RESOURCES",
                                      "STATE", "RUN",   "STARTED"};
    struct cli_table *tab = cli_table_new(7, hdr);
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(resp, "trainings"), i, t) {
        const json_t *res = json_object_get(t, "resources");
        char buf[64];
        cli_table_add(tab, cli_jstr(t, "name"));
        cli_table_add(tab, cli_jstr(t, "owner"));
        cli_table_add(tab, cli_jstr(t, "image"));
        cli_format_resources(cli_jint(res, "gpus", 0), cli_jint(res, "cpus", 0),
                             cli_jint(res, "mem_bytes", 0), buf, sizeof buf);
        cli_table_add(tab, buf);
        cli_table_add(tab, cli_jstr(t, "state"));
        long long run = cli_jint(t, "run", 0);
        cli_table_addf(tab, "%lld", run);
        cli_format_local_time(started_at(t), buf, sizeof buf);
        cli_table_add(tab, run > 0 ? buf : NULL);
    }
    cli_table_print(tab, stdout);
    cli_table_free(tab);
    json_decref(resp);
    return CLI_OK;
}

/* Prints the spec part of `train show`. */
static void show_spec(const json_t *t) {
    char buf[256];
    const json_t *res = json_object_get(t, "resources");
    cli_print_kv("name:", cli_jstr(t, "name"));
    snprintf(buf, sizeof buf, "%s (group %s)", cli_jstr(t, "owner") ? cli_jstr(t, "owner") : "?",
             cli_jstr(t, "group") ? cli_jstr(t, "group") : "?");
    cli_print_kv("owner:", buf);
    cli_print_kv("description:", cli_jstr(t, "description"));
    cli_print_kv("image:", cli_jstr(t, "image"));
    cli_format_resources(cli_jint(res, "gpus", 0), cli_jint(res, "cpus", 0),
                         cli_jint(res, "mem_bytes", 0), buf, sizeof buf);
    cli_print_kv("resources:", buf);
    char *cmd = cli_format_command(cli_jstr(t, "entry"), json_object_get(t, "args"));
    cli_print_kv("command:", cmd);
    free(cmd);
    struct ava_buf env = {0};
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(t, "env"), k, v) {
        ava_buf_printf(&env, "%s%s=%s", env.len ? " " : "", k, json_string_value(v));
    }
    cli_print_kv("env:", env.data);
    ava_buf_free(&env);
    cli_print_kv("train set:", cli_jstr(t, "train"));
    cli_print_kv("val set:", cli_jstr(t, "val"));
    const char *mr = cli_jstr(t, "max_runtime");
    if (!mr && cli_jint(t, "max_runtime_ms", 0) > 0) {
        ava_format_duration(cli_jint(t, "max_runtime_ms", 0), buf, sizeof buf);
        mr = buf;
    }
    cli_print_kv("max runtime:", mr);
    cli_format_local_time(cli_jstr(t, "created_at"), buf, sizeof buf);
    cli_print_kv("created:", buf);
    if (cli_jint(t, "run", 0) > 0)
        snprintf(buf, sizeof buf, "%s (run %lld)",
                 cli_jstr(t, "state") ? cli_jstr(t, "state") : "?",
                 (long long)cli_jint(t, "run", 0));
    else
        snprintf(buf, sizeof buf, "not started");
    cli_print_kv("state:", buf);
    const json_t *runs = json_object_get(t, "runs");
    const json_t *last = json_array_get(runs, json_array_size(runs) - 1);
    const char *ex = last ? cli_jstr(last, "executor") : NULL;
    if (ex && strcmp(ex, "local") != 0 && cli_jstr(last, "executor_id")) {
        /* a workload manager's run: its job id and node, to look it up there */
        snprintf(buf, sizeof buf, "%s job %s%s%s", ex, cli_jstr(last, "executor_id"),
                 cli_jstr(last, "node") ? " on " : "",
                 cli_jstr(last, "node") ? cli_jstr(last, "node") : "");
        cli_print_kv("executor:", buf);
    }
    cli_print_kv("log:", cli_jstr(t, "log_path"));
    cli_print_kv("output dir:", cli_jstr(t, "output_dir"));
}

/* Prints the runs table of `train show`. */
static void show_runs(const json_t *runs) {
    static const char *const hdr[] = {"RUN",      "STATE", "STARTED", "ENDED",
                                      "DURATION", "EXIT",  "REASON"};
    struct cli_table *tab = cli_table_new(7, hdr);
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        char buf[64];
        cli_table_addf(tab, "%lld", (long long)cli_jint(r, "number", 0));
        cli_table_add(tab, cli_jstr(r, "state"));
        cli_format_local_time(cli_jstr(r, "started_at"), buf, sizeof buf);
        cli_table_add(tab, buf);
        cli_format_local_time(cli_jstr(r, "ended_at"), buf, sizeof buf);
        cli_table_add(tab, buf);
        cli_format_span(cli_jstr(r, "started_at"), cli_jstr(r, "ended_at"), buf, sizeof buf);
        cli_table_add(tab, buf);
        if (cli_jint(r, "signal", 0) > 0)
            cli_table_addf(tab, "signal %lld", (long long)cli_jint(r, "signal", 0));
        else if (json_is_integer(json_object_get(r, "exit_code")))
            cli_table_addf(tab, "%lld", (long long)cli_jint(r, "exit_code", 0));
        else
            cli_table_add(tab, NULL);
        cli_table_add(tab, cli_jstr(r, "reason"));
    }
    printf("\n");
    cli_table_print(tab, stdout);
    cli_table_free(tab);
}

/* Prints the events of one run (fetching the run when the training carries none). */
static int show_events(struct cli_ctx *ctx, const char *ref, const json_t *run, char *err) {
    long long n = cli_jint(run, "number", 0);
    json_t *fetched = NULL;
    const json_t *events = json_object_get(run, "events");
    if (!json_is_array(events)) {
        char *suffix = ava_xasprintf("/runs/%lld", n);
        char *path = cli_training_path(ref, suffix);
        int rc = cli_http_json(ctx->http, "GET", path, NULL, &fetched, err);
        free(path);
        free(suffix);
        if (rc < 0)
            return rc;
        events = json_object_get(fetched, "events");
    }
    static const char *const hdr[] = {"TIME", "STATE", "REASON"};
    struct cli_table *tab = cli_table_new(3, hdr);
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        char buf[64];
        cli_format_local_time(cli_jstr(e, "at"), buf, sizeof buf);
        cli_table_add(tab, buf);
        cli_table_add(tab, cli_jstr(e, "state"));
        cli_table_add(tab, cli_jstr(e, "reason"));
    }
    printf("\nevents of run %lld:\n", n);
    cli_table_print(tab, stdout);
    cli_table_free(tab);
    json_decref(fetched);
    return 0;
}

/* ava train show NAME */
static int train_show(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *ref = a->pos[0];
    json_t *t;
    if (cli_training_ref_check(ref, err) < 0)
        return CLI_USAGE;
    if (cli_training_get(ctx, ref, &t, err) < 0)
        return CLI_FAIL;
    int rc = 0;
    if (ctx->json) {
        cli_print_json(stdout, t);
    } else {
        show_spec(t);
        const json_t *latest = cli_training_run(t, 0);
        if (latest) {
            show_runs(json_object_get(t, "runs"));
            rc = show_events(ctx, ref, latest, err);
        }
    }
    json_decref(t);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}

/* ava train start|stop NAME: POST the action and report the latest run. */
static int train_action(struct cli_ctx *ctx, const struct cli_args *a, const char *action,
                        char *err) {
    const char *ref = a->pos[0];
    json_t *t;
    if (cli_training_ref_check(ref, err) < 0)
        return CLI_USAGE;
    char *suffix = ava_xasprintf("/%s", action);
    char *path = cli_training_path(ref, suffix);
    int rc = cli_http_json(ctx->http, "POST", path, NULL, &t, err);
    free(path);
    free(suffix);
    if (rc < 0)
        return CLI_FAIL;
    if (ctx->json)
        cli_print_json(stdout, t);
    else if (strcmp(action, "start") == 0)
        print_started(t, "started");
    else
        printf("training %s: run %lld %s\n", cli_jstr(t, "name") ? cli_jstr(t, "name") : ref,
               (long long)cli_jint(t, "run", 0),
               cli_jstr(t, "state") ? cli_jstr(t, "state") : "stopping");
    json_decref(t);
    return CLI_OK;
}

/* ava train start NAME */
static int train_start(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    return train_action(ctx, a, "start", err);
}

/* ava train stop NAME */
static int train_stop(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    return train_action(ctx, a, "stop", err);
}

/* ava train rm NAME */
static int train_rm(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *ref = a->pos[0];
    if (cli_training_ref_check(ref, err) < 0)
        return CLI_USAGE;
    char *path = cli_training_path(ref, NULL), line[300];
    snprintf(line, sizeof line,
             "training %s removed (its log and output dir stay on the group storage)", ref);
    int rc = cli_send_and_report(ctx, "DELETE", path, NULL, line, err);
    free(path);
    return rc;
}

static const struct cli_optspec logs_opts[] = {
    {"follow", 'f', false}, {"run", 0, true}, {"all", 0, false}, {0}};
static const struct cli_optspec wait_opts[] = {{"timeout", 0, true}, {0}};

static const char create_help[] =
    "  --image NAME:TAG     the image to run in (required)\n"
    "  --cpu N              reserve N CPUs   } exactly one of the two\n"
    "  --gpu N              reserve N GPUs   }\n"
    "  --entry PATH         absolute path of the program to run (default: the image's entry)\n"
    "  --mem SIZE           reserve memory, e.g. 512M or 8G (default: no reservation)\n"
    "  --train SET          the train set, e.g. fashion-mnist/recordio/80\n"
    "  --val SET            the validation set, e.g. fashion-mnist/recordio/20; default:\n"
    "                       the train set's complement when it has one (D/F/20 for D/F/80)\n"
    "  --no-val             run without a validation set (no complement is picked)\n"
    "  --desc TEXT          a description (at most 1000 bytes)\n"
    "  --max-runtime DUR    stop the run after DUR, e.g. 90m, 72h, 1h30m (default: the\n"
    "                       server's limit)\n"
    "  --env K=V            set an environment variable in the run (repeatable)\n"
    "  --metrics-parser P   read metrics from the log: mxnet, caffe, darknet, keras, pytorch\n"
    "                       or none (default: the image's parser)\n"
    "  --metric NAME=REGEX  a metric read from log lines by a regex with one capture group\n"
    "                       (repeatable, at most 40)\n"
    "  --no-start           create the training without starting its first run\n"
    "  -- ARGS...           the entry point's arguments, passed as they are (no shell)\n";

const struct cli_verb cli_train_verbs[] = {
    {"train", "create", "NAME", "NAME --image NAME:TAG (--cpu N | --gpu N) [options] [-- ARGS...]",
     "create a training and start its first run", create_help, cli_train_create_opts, true,
     train_create},
    {"train", "list", NULL, "", "list your group's trainings", NULL, no_opts, false, train_list},
    {"train", "show", "NAME", "NAME", "show a training: spec, paths, runs, latest events", NULL,
     no_opts, false, train_show},
    {"train", "start", "NAME", "NAME", "start a new run of a training", NULL, no_opts, false,
     train_start},
    {"train", "stop", "NAME", "NAME", "stop the active run of a training", NULL, no_opts, false,
     train_stop},
    {"train", "rm", "NAME", "NAME", "remove a training (its log and outputs stay)", NULL, no_opts,
     false, train_rm},
    {"train", "logs", "NAME", "NAME [-f|--follow] [--run N | --all]",
     "print a run's log; -f follows it while the run lives",
     "  -f, --follow         keep printing while the run lives\n"
     "  --run N              the log of run N (default: the latest run)\n"
     "  --all                the whole log file, every run\n",
     logs_opts, false, cli_train_logs},
    {"train", "wait", "NAME", "NAME [--timeout DUR]",
     "wait until the latest run ends; exit 0 if it succeeded",
     "  --timeout DUR        give up after DUR (e.g. 30s, 10m) with exit status 2\n", wait_opts,
     false, cli_train_wait},
    {0},
};
