/* metrics.c: the train verbs that show what runs report: `train metrics` (a run's series in
 * a table with a chart each, one series, or its raw points as CSV) and `train compare` (one
 * metric of several trainings or runs overlaid in one chart). */
#include "chart.h"
#include "cli.h"
#include "out.h"
#include "table.h"
#include "train.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/strutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this many charts under the table of `train metrics` without --name. */
#define MAX_CHARTS 6
/* The raw points asked for per page by --csv. */
#define CSV_PAGE 10000
/* The server's bounds of max_points. */
#define MAX_POINTS_MIN 2
#define MAX_POINTS_MAX 100000
/* The largest run number accepted. */
#define RUN_MAX 1000000000
/* Significant digits of the values in the tables. */
#define TABLE_DIGITS 6

const struct cli_optspec cli_train_metrics_opts[] = {
    {"name", 0, true},       {"phase", 0, true}, {"run", 0, true},
    {"max-points", 0, true}, {"csv", 0, false},  {0},
};

const struct cli_optspec cli_train_compare_opts[] = {
    {"name", 0, true}, {"phase", 0, true}, {"run", 0, true}, {0}};

/* One series of `train compare`: what was asked and what came back. */
struct target {
    char training[2 * AVA_NAME_MAX + 2];
    long long run;   /* asked for; 0: the latest */
    char label[160]; /* "demo#2" */
    json_t *series;  /* the GET .../metrics/M answer */
    json_t *summary; /* the GET .../metrics?run=N answer */
};

/* Points of a series answer as the arrays the chart takes. */
struct points {
    double *x, *y;
    size_t n;
};

int cli_metrics_opts_get(const struct cli_args *a, bool compare, bool json,
                         struct cli_metrics_opts *o, char *err) {
    const char *s;
    int64_t v;
    memset(o, 0, sizeof *o);
    o->name = cli_args_get(a, "name");
    o->phase = cli_args_get(a, "phase");
    o->csv = cli_args_has(a, "csv");
    if (o->name && !*o->name)
        return ava_err(err, AVA_EINVALID, "--name needs a metric name (loss, accuracy, ...)");
    if ((s = cli_args_get(a, "run"))) {
        if (ava_parse_uint(s, RUN_MAX, &v, NULL) < 0 || v == 0)
            return ava_err(err, AVA_EINVALID, "--run needs a run number (1, 2, ...), not '%s'", s);
        o->run = v;
    }
    if ((s = cli_args_get(a, "max-points"))) {
        if (ava_parse_uint(s, MAX_POINTS_MAX, &v, NULL) < 0 || v < MAX_POINTS_MIN)
            return ava_err(err, AVA_EINVALID,
                           "--max-points needs a whole number from %d to %d, not '%s'",
                           MAX_POINTS_MIN, MAX_POINTS_MAX, s);
        o->max_points = (int)v;
    }
    if (compare && !o->name)
        return ava_err(err, AVA_EINVALID, "missing --name METRIC, the metric to compare");
    if (o->csv && !o->name)
        return ava_err(err, AVA_EINVALID, "--csv needs --name METRIC, the series to write");
    if (o->csv && json)
        return ava_err(err, AVA_EINVALID, "give --csv or --json, not both");
    return 0;
}

int cli_run_ref_parse(const char *s, char *training, size_t len, long long *run, char *err) {
    const char *hash = strchr(s, '#');
    size_t n = hash ? (size_t)(hash - s) : strlen(s);
    int64_t v;
    *run = 0;
    training[0] = '\0';
    if (n >= len)
        return ava_err(err, AVA_EINVALID, "'%s' is not a training: the name is too long", s);
    snprintf(training, len, "%.*s", (int)n, s);
    if (cli_training_ref_check(training, err) < 0)
        return AVA_EINVALID;
    if (hash) {
        if (ava_parse_uint(hash + 1, RUN_MAX, &v, NULL) < 0 || v == 0)
            return ava_err(err, AVA_EINVALID,
                           "'%s': what follows '#' must be a run number (demo#2), not '%s'", s,
                           hash + 1);
        *run = v;
    }
    return 0;
}

bool cli_metric_lower_better(const char *name) {
    return strcasestr(name, "loss") || strcasestr(name, "error");
}

double cli_metric_best(const char *name, double min, double max) {
    return cli_metric_lower_better(name) ? min : max;
}

bool cli_metrics_page_next(size_t got, size_t limit, int64_t since, int64_t last_step,
                           int64_t *next) {
    if (got == 0 || got < limit || last_step <= since)
        return false;
    *next = last_step;
    return true;
}

/* The number member key of obj (integer or real), or 0. */
static double jnum(const json_t *obj, const char *key) {
    return json_number_value(json_object_get(obj, key));
}

/* The path suffix of one series: "/metrics/M?run=N&phase=P&extra", each part optional. */
static char *series_suffix(const char *metric, long long run, const char *phase,
                           const char *extra) {
    struct ava_buf b = {0};
    char *enc = cli_url_encode(metric);
    char sep = '?';
    ava_buf_printf(&b, "/metrics/%s", enc);
    free(enc);
    if (run > 0) {
        ava_buf_printf(&b, "%crun=%lld", sep, run);
        sep = '&';
    }
    if (phase) {
        enc = cli_url_encode(phase);
        ava_buf_printf(&b, "%cphase=%s", sep, enc);
        free(enc);
        sep = '&';
    }
    if (extra)
        ava_buf_printf(&b, "%c%s", sep, extra);
    return ava_buf_steal(&b);
}

/* GETs the training's path suffix; *out is owned by the caller. */
static int get_json(struct cli_ctx *ctx, const char *ref, const char *suffix, json_t **out,
                    char *err) {
    char *path = cli_training_path(ref, suffix);
    int rc = cli_http_json(ctx->http, "GET", path, NULL, out, err);
    free(path);
    return rc;
}

/* GETs one series downsampled to max_points (run 0: the latest; phase NULL: its only one). */
static int get_series(struct cli_ctx *ctx, const char *ref, const char *metric, long long run,
                      const char *phase, int max_points, json_t **out, char *err) {
    char extra[32];
    snprintf(extra, sizeof extra, "max_points=%d", max_points);
    char *suffix = series_suffix(metric, run, phase, extra);
    int rc = get_json(ctx, ref, suffix, out, err);
    free(suffix);
    return rc;
}

/* GETs the series summaries of run n (0: of every run). */
static int get_summaries(struct cli_ctx *ctx, const char *ref, long long n, json_t **out,
                         char *err) {
    char suffix[64];
    if (n > 0)
        snprintf(suffix, sizeof suffix, "/metrics?run=%lld", n);
    else
        snprintf(suffix, sizeof suffix, "/metrics");
    return get_json(ctx, ref, suffix, out, err);
}

/* The run numbered n (0: the highest number) of a GET .../metrics answer, or NULL. */
static const json_t *pick_run(const json_t *answer, long long n) {
    const json_t *found = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(answer, "runs"), i, r) {
        long long num = cli_jint(r, "number", 0);
        if (n > 0 ? num == n : !found || num > cli_jint(found, "number", 0))
            found = r;
    }
    return found;
}

/* The summary of series (name, phase) of a run, or NULL. */
static const json_t *find_series(const json_t *run, const char *name, const char *phase) {
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(run, "series"), i, s) {
        const char *sn = cli_jstr(s, "name"), *sp = cli_jstr(s, "phase");
        if (sn && strcmp(sn, name) == 0 && strcmp(sp ? sp : "", phase ? phase : "") == 0)
            return s;
    }
    return NULL;
}

/* Copies the points of a series answer (those with numbers) into arrays; free with
 * points_free. */
static void points_get(const json_t *answer, struct points *p) {
    const json_t *arr = json_object_get(answer, "points");
    size_t cap = json_array_size(arr) ? json_array_size(arr) : 1, i;
    json_t *pt;
    p->x = ava_xmalloc(cap * sizeof *p->x);
    p->y = ava_xmalloc(cap * sizeof *p->y);
    p->n = 0;
    json_array_foreach(arr, i, pt) {
        if (!json_is_number(json_object_get(pt, "step")) ||
            !json_is_number(json_object_get(pt, "value")))
            continue;
        p->x[p->n] = jnum(pt, "step");
        p->y[p->n++] = jnum(pt, "value");
    }
}

/* Frees the arrays of points_get. */
static void points_free(struct points *p) {
    free(p->x);
    free(p->y);
}

/* Adds one table row for a series summary: first cell (its name or a label), PHASE, COUNT,
 * LAST ("value @ step") and BEST ("value (min|max)"). */
static void add_summary_row(struct cli_table *t, const char *first, const json_t *s) {
    const char *name = cli_jstr(s, "name") ? cli_jstr(s, "name") : "";
    char last[40], best[40];
    cli_chart_number(jnum(s, "last_value"), TABLE_DIGITS, last, sizeof last);
    cli_chart_number(cli_metric_best(name, jnum(s, "min"), jnum(s, "max")), TABLE_DIGITS, best,
                     sizeof best);
    cli_table_add(t, first);
    cli_table_add(t, cli_jstr(s, "phase"));
    cli_table_addf(t, "%lld", (long long)cli_jint(s, "count", 0));
    cli_table_addf(t, "%s @ %lld", last, (long long)cli_jint(s, "last_step", 0));
    cli_table_addf(t, "%s (%s)", best, cli_metric_lower_better(name) ? "min" : "max");
}

/* Prints "training NAME, run N (STATE)". */
static void print_title(const char *ref, const json_t *run) {
    printf("training %s, run %lld (%s)\n", ref, (long long)cli_jint(run, "number", 0),
           cli_jstr(run, "state") ? cli_jstr(run, "state") : "?");
}

/* Prints a series' heading ("loss (phase train): 300 points, 144 drawn") and its chart. */
static void print_chart(const json_t *answer, const struct cli_chart_style *st) {
    const char *phase = cli_jstr(answer, "phase");
    struct points p;
    points_get(answer, &p);
    long long count = cli_jint(answer, "count", 0);
    printf("\n%s%s%s%s: %lld point%s", cli_jstr(answer, "name") ? cli_jstr(answer, "name") : "?",
           phase && *phase ? " (phase " : "", phase && *phase ? phase : "",
           phase && *phase ? ")" : "", count, count == 1 ? "" : "s");
    if (cli_jbool(answer, "downsampled"))
        printf(", %zu drawn", p.n);
    printf("\n");
    struct cli_chart_series s = {cli_jstr(answer, "name"), p.x, p.y, p.n};
    char *text = cli_chart_render(&s, 1, st);
    fputs(text, stdout);
    free(text);
    points_free(&p);
}

/* The series of a run to show, those of phase (when not NULL) only, the system's (sys.*)
 * after the training's own; *n is how many. Free the array. */
static const json_t **series_order(const json_t *run, const char *phase, size_t *n) {
    const json_t *arr = json_object_get(run, "series");
    const json_t **out = ava_xmalloc((json_array_size(arr) + 1) * sizeof *out);
    *n = 0;
    for (int sys = 0; sys < 2; sys++) {
        size_t i;
        json_t *s;
        json_array_foreach(arr, i, s) {
            const char *name = cli_jstr(s, "name"), *ph = cli_jstr(s, "phase");
            if (!name || ava_startswith(name, "sys.") != (sys == 1) ||
                (phase && strcmp(phase, ph ? ph : "") != 0))
                continue;
            out[(*n)++] = s;
        }
    }
    return out;
}

/* Prints the table of the given series and a chart of each of the first MAX_CHARTS. */
static int print_series(struct cli_ctx *ctx, const char *ref, long long run, const json_t **list,
                        size_t n, const struct cli_metrics_opts *o,
                        const struct cli_chart_style *st, char *err) {
    static const char *const hdr[] = {"NAME", "PHASE", "COUNT", "LAST", "BEST"};
    struct cli_table *tab = cli_table_new(5, hdr);
    for (size_t i = 0; i < n; i++)
        add_summary_row(tab, cli_jstr(list[i], "name"), list[i]);
    printf("\n");
    cli_table_print(tab, stdout);
    cli_table_free(tab);
    for (size_t i = 0; i < n && i < MAX_CHARTS; i++) {
        json_t *answer;
        if (get_series(ctx, ref, cli_jstr(list[i], "name"), run, cli_jstr(list[i], "phase"),
                       o->max_points, &answer, err) < 0)
            return CLI_FAIL;
        print_chart(answer, st);
        json_decref(answer);
    }
    if (n > MAX_CHARTS)
        printf("\n%zu more series not charted: ava train metrics %s --name METRIC [--phase P]\n",
               n - MAX_CHARTS, ref);
    return CLI_OK;
}

/* ava train metrics NAME [--phase P] [--run N]: every series of the run. */
static int metrics_all(struct cli_ctx *ctx, const char *ref, const struct cli_metrics_opts *o,
                       const struct cli_chart_style *st, char *err) {
    json_t *answer;
    if (get_summaries(ctx, ref, o->run, &answer, err) < 0)
        return CLI_FAIL;
    if (ctx->json) {
        cli_print_json(stdout, answer);
        json_decref(answer);
        return CLI_OK;
    }
    const json_t *run = pick_run(answer, o->run);
    int rc = CLI_OK;
    if (!run) {
        if (o->run)
            ava_err(err, AVA_ENOTFOUND, "training %s has no run %lld", ref, o->run);
        else
            ava_err(err, AVA_ENOTFOUND, "training %s has no runs yet (ava train start %s)", ref,
                    ref);
        json_decref(answer);
        return CLI_FAIL;
    }
    size_t n;
    const json_t **list = series_order(run, o->phase, &n);
    print_title(ref, run);
    if (n == 0)
        printf("no metrics%s%s%s\n", o->phase ? " of phase '" : "", o->phase ? o->phase : "",
               o->phase ? "'" : "");
    else
        rc = print_series(ctx, ref, cli_jint(run, "number", 0), list, n, o, st, err);
    free(list);
    json_decref(answer);
    return rc;
}

/* ava train metrics NAME --name M [--phase P] [--run N]: one series, its row and its chart. */
static int metrics_one(struct cli_ctx *ctx, const char *ref, const struct cli_metrics_opts *o,
                       const struct cli_chart_style *st, char *err) {
    json_t *answer, *sums;
    if (get_series(ctx, ref, o->name, o->run, o->phase, o->max_points, &answer, err) < 0)
        return CLI_FAIL;
    if (ctx->json) {
        cli_print_json(stdout, answer);
        json_decref(answer);
        return CLI_OK;
    }
    long long n = cli_jint(answer, "run", o->run);
    if (get_summaries(ctx, ref, n, &sums, err) < 0) {
        json_decref(answer);
        return CLI_FAIL;
    }
    const json_t *run = pick_run(sums, n);
    const json_t *s = find_series(run, o->name, cli_jstr(answer, "phase"));
    print_title(ref, run);
    if (s) {
        static const char *const hdr[] = {"NAME", "PHASE", "COUNT", "LAST", "BEST"};
        struct cli_table *tab = cli_table_new(5, hdr);
        add_summary_row(tab, cli_jstr(s, "name"), s);
        printf("\n");
        cli_table_print(tab, stdout);
        cli_table_free(tab);
    }
    print_chart(answer, st);
    json_decref(sums);
    json_decref(answer);
    return CLI_OK;
}

/* Prints the points of a series answer as "step,value,time" lines; returns how many there
 * were and the last one's step in *last. */
static size_t print_csv_points(const json_t *answer, int64_t *last) {
    size_t i;
    json_t *pt;
    json_array_foreach(json_object_get(answer, "points"), i, pt) {
        char v[32];
        ava_format_double(jnum(pt, "value"), v, sizeof v);
        *last = cli_jint(pt, "step", 0);
        printf("%lld,%s,%lld\n", (long long)*last, v, (long long)cli_jint(pt, "time", 0));
    }
    return json_array_size(json_object_get(answer, "points"));
}

/* Prints the raw points after step since, page by page, until a short page. */
static int print_csv_pages(struct cli_ctx *ctx, const char *ref, const char *metric, long long run,
                           const char *phase, int64_t since, char *err) {
    for (;;) {
        char extra[64];
        json_t *page;
        int64_t last = since;
        snprintf(extra, sizeof extra, "since_step=%lld&limit=%d", (long long)since, CSV_PAGE);
        char *suffix = series_suffix(metric, run, phase, extra);
        int rc = get_json(ctx, ref, suffix, &page, err);
        free(suffix);
        if (rc < 0)
            return rc;
        size_t got = print_csv_points(page, &last);
        json_decref(page);
        if (!cli_metrics_page_next(got, CSV_PAGE, since, last, &since))
            return 0;
    }
}

/* ava train metrics NAME --name M --csv: every raw point. The first point comes from a
 * 2-point downsampling (which keeps the first point: a raw page starts after a step, so it
 * could not hold step 0); the run and phase it names pin the pages that follow. */
static int metrics_csv(struct cli_ctx *ctx, const char *ref, const struct cli_metrics_opts *o,
                       char *err) {
    json_t *first;
    if (get_series(ctx, ref, o->name, o->run, o->phase, MAX_POINTS_MIN, &first, err) < 0)
        return CLI_FAIL;
    json_t *p0 = json_array_get(json_object_get(first, "points"), 0);
    int rc = 0;
    printf("step,value,time\n");
    if (p0) {
        json_t *one = json_pack("{s:[O]}", "points", p0);
        int64_t since = 0;
        print_csv_points(one, &since);
        json_decref(one);
        const char *phase = cli_jstr(first, "phase");
        rc = print_csv_pages(ctx, ref, o->name, cli_jint(first, "run", o->run), phase ? phase : "",
                             since, err);
    }
    json_decref(first);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}

/* ava train metrics NAME [--name M] [--phase P] [--run N] [--max-points K] [--csv|--json] */
static int train_metrics(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *ref = a->pos[0];
    struct cli_metrics_opts o;
    struct cli_chart_style st;
    if (cli_metrics_opts_get(a, false, ctx->json, &o, err) < 0 ||
        cli_training_ref_check(ref, err) < 0)
        return CLI_USAGE;
    cli_chart_style_from_env(&st);
    if (!o.max_points)
        o.max_points = st.width * 2;
    if (o.csv)
        return metrics_csv(ctx, ref, &o, err);
    return o.name ? metrics_one(ctx, ref, &o, &st, err) : metrics_all(ctx, ref, &o, &st, err);
}

/* Fetches the series and summary of each target; returns 0 or a negative AVA_E* code. */
static int compare_fetch(struct cli_ctx *ctx, struct target *t, size_t n,
                         const struct cli_metrics_opts *o, int max_points, char *err) {
    for (size_t i = 0; i < n; i++) {
        char msg[AVA_ERRLEN];
        long long run = t[i].run ? t[i].run : o->run;
        int rc =
            get_series(ctx, t[i].training, o->name, run, o->phase, max_points, &t[i].series, msg);
        if (rc == 0)
            rc = get_summaries(ctx, t[i].training, cli_jint(t[i].series, "run", run), &t[i].summary,
                               msg);
        if (rc < 0)
            return ava_err(err, rc, "%s: %s", t[i].label, msg);
        snprintf(t[i].label, sizeof t[i].label, "%s#%lld", t[i].training,
                 (long long)cli_jint(t[i].series, "run", run));
    }
    return 0;
}

/* Prints compare's JSON: the series answers, each with its "training". */
static void compare_json(const struct target *t, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *copy = json_deep_copy(t[i].series);
        json_object_set_new(copy, "training", json_string(t[i].training));
        json_array_append_new(arr, copy);
    }
    cli_print_json(stdout, arr);
    json_decref(arr);
}

/* Prints compare's table (last and best of each series) and the overlaid chart. */
static void compare_print(const struct target *t, size_t n, const struct cli_metrics_opts *o,
                          const struct cli_chart_style *st) {
    static const char *const hdr[] = {"SERIES", "PHASE", "COUNT", "LAST", "BEST"};
    struct cli_table *tab = cli_table_new(5, hdr);
    struct cli_chart_series *cs = ava_xcalloc(n, sizeof *cs);
    struct points *pts = ava_xcalloc(n, sizeof *pts);
    for (size_t i = 0; i < n; i++) {
        long long run = cli_jint(t[i].series, "run", 0);
        const json_t *s =
            find_series(pick_run(t[i].summary, run), o->name, cli_jstr(t[i].series, "phase"));
        if (s)
            add_summary_row(tab, t[i].label, s);
        points_get(t[i].series, &pts[i]);
        cs[i] = (struct cli_chart_series){t[i].label, pts[i].x, pts[i].y, pts[i].n};
    }
    cli_table_print(tab, stdout);
    cli_table_free(tab);
    const char *phase = o->phase ? o->phase : cli_jstr(t[0].series, "phase");
    printf("\n%s%s%s%s\n", o->name, phase && *phase ? " (phase " : "", phase && *phase ? phase : "",
           phase && *phase ? ")" : "");
    char *text = cli_chart_render(cs, n, st);
    fputs(text, stdout);
    free(text);
    for (size_t i = 0; i < n; i++)
        points_free(&pts[i]);
    free(pts);
    free(cs);
}

/* ava train compare A B [C...] --name M [--phase P] [--run N] */
static int train_compare(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    struct cli_metrics_opts o;
    struct cli_chart_style st;
    if (cli_metrics_opts_get(a, true, ctx->json, &o, err) < 0)
        return CLI_USAGE;
    if (a->npos < 2 || a->npos > CLI_CHART_MARKERS) {
        ava_err(err, AVA_EINVALID, "compare takes 2 to %d trainings or runs, not %d",
                CLI_CHART_MARKERS, a->npos);
        return CLI_USAGE;
    }
    size_t n = (size_t)a->npos;
    struct target *t = ava_xcalloc(n, sizeof *t);
    int rc = CLI_OK;
    for (size_t i = 0; i < n && rc == CLI_OK; i++) {
        if (cli_run_ref_parse(a->pos[i], t[i].training, sizeof t[i].training, &t[i].run, err) < 0)
            rc = CLI_USAGE;
        snprintf(t[i].label, sizeof t[i].label, "%s", a->pos[i]);
    }
    cli_chart_style_from_env(&st);
    if (rc == CLI_OK && compare_fetch(ctx, t, n, &o, st.width * 2, err) < 0)
        rc = CLI_FAIL;
    if (rc == CLI_OK && ctx->json)
        compare_json(t, n);
    else if (rc == CLI_OK)
        compare_print(t, n, &o, &st);
    for (size_t i = 0; i < n; i++) {
        json_decref(t[i].series);
        json_decref(t[i].summary);
    }
    free(t);
    return rc;
}

const struct cli_verb cli_metrics_verbs[] = {
    {"train", "metrics", "NAME",
     "NAME [--name M] [--phase P] [--run N] [--max-points K] [--csv | --json]",
     "show a run's metrics: last and best values, a chart per series",
     "  --name M             one metric: its row and its chart\n"
     "  --phase P            only the series of phase P (train, val, ...); with --name, needed\n"
     "                       when the metric has several phases\n"
     "  --run N              run N (default: the latest run)\n"
     "  --max-points K       draw at most K points, 2 to 100000 (default: twice the width)\n"
     "  --csv                with --name: every raw point as step,value,time lines\n"
     "  --json               the server's JSON answer\n",
     cli_train_metrics_opts, false, train_metrics},
    {"train", "compare", "A B [C...]", "A B [C...] --name M [--phase P] [--run N]",
     "overlay a metric of several trainings or runs (NAME#RUN)",
     "  --name M             the metric to compare (required)\n"
     "  --phase P            its phase, when it has several (train, val, ...)\n"
     "  --run N              the run of every training given without #RUN (default: latest)\n"
     "  A B [C...]           2 to 8 trainings: NAME, USER/NAME, or NAME#RUN for run RUN\n",
     cli_train_compare_opts, false, train_compare},
    {0},
};
