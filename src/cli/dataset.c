/* dataset.c: the dataset verbs: list, show, import, format (with a progress bar that Ctrl-C
 * turns into a cancel), cancel, rm; and the set-reference helpers train create uses. */
#include "cli.h"

#include "out.h"
#include "table.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/strutil.h"
#include "../common/timeutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* The job is polled this often while the progress bar runs. */
#define POLL_MS 200
/* The rate is shown once the progress has been watched this long. */
#define RATE_AFTER_MS 500
/* The width of the progress lines written when stderr is not a terminal. */
#define LOG_WIDTH 60
/* The widest and narrowest bar drawn. */
#define BAR_MAX 50
#define BAR_MIN 10
/* The room kept after the numbers for the rate, "  123456789/s". */
#define RATE_ROOM 13

static const struct cli_optspec no_opts[] = {{0}};

static const struct cli_optspec import_opts[] = {
    {"from", 0, true}, {"desc", 0, true}, {"no-wait", 0, false}, {0}};

static const struct cli_optspec import_wait_opts[] = {{"no-wait", 0, false}, {0}};

const struct cli_optspec cli_dataset_format_opts[] = {
    {"format", 0, true},
    {"split", 0, true},
    {"seed", 0, true},
    {"encoding", 0, true},
    {"quality", 0, true},
    {"resize", 0, true},
    {"stratified", 0, false},
    {"im2rec-compatible", 0, false},
    {"threads", 0, true},
    {"no-wait", 0, false},
    {0},
};

/* Checks a dataset name typed by the user. */
static int check_dataset_name(const char *name, char *err) {
    if (ava_name_valid(name))
        return 0;
    return ava_err(err, AVA_EINVALID,
                   "'%s' is not a valid dataset name: use letters, digits, '.', '_' and '-', up "
                   "to 64, starting with a letter or digit",
                   name);
}

/* Copies the part [s, end) into out (outlen bytes) when it is a valid name. */
static bool copy_name(const char *s, const char *end, char *out, size_t outlen) {
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= outlen)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return ava_name_valid(out);
}

int cli_set_ref_parse(const char *ref, struct cli_set_ref *out, char *err) {
    const char *s1 = strchr(ref, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    const char *p = s2 ? s2 + 1 : NULL;
    int pct = 0;
    bool ok = s2 && copy_name(ref, s1, out->dataset, sizeof out->dataset) &&
              copy_name(s1 + 1, s2, out->format, sizeof out->format) && *p >= '1' && *p <= '9';
    for (; ok && *p && pct <= 100; p++) {
        ok = *p >= '0' && *p <= '9';
        pct = pct * 10 + (*p - '0');
    }
    if (!ok || pct < 1 || pct > 100)
        return ava_err(err, AVA_EINVALID,
                       "'%s' is not a set reference DATASET/FORMAT/PERCENT (e.g. "
                       "fashion-mnist/recordio/80, PERCENT from 1 to 100)",
                       ref);
    out->percent = pct;
    return 0;
}

char *cli_dataset_path(const char *name, const char *suffix) {
    return cli_item_path("datasets", name, suffix);
}

int cli_dataset_rm_path(const char *ref, char **path, char *err) {
    *path = NULL;
    if (!strchr(ref, '/')) {
        if (check_dataset_name(ref, err) < 0)
            return AVA_EINVALID;
        *path = cli_dataset_path(ref, NULL);
        return 0;
    }
    struct cli_set_ref r;
    if (cli_set_ref_parse(ref, &r, err) < 0)
        return AVA_EINVALID;
    char *fmt = cli_url_encode(r.format);
    char *suffix = ava_xasprintf("/sets/%s/%d", fmt, r.percent);
    *path = cli_dataset_path(r.dataset, suffix);
    free(suffix);
    free(fmt);
    return 0;
}

/* The set of the dataset JSON with this format and percent, or NULL. */
static const json_t *find_set(const json_t *dataset, const char *format, int64_t percent) {
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(dataset, "sets"), i, s) {
        const char *f = cli_jstr(s, "format");
        if (f && format && strcmp(f, format) == 0 && cli_jint(s, "percent", -1) == percent)
            return s;
    }
    return NULL;
}

char *cli_dataset_complement(const json_t *dataset, const char *train_ref) {
    struct cli_set_ref r;
    const char *name = cli_jstr(dataset, "name");
    if (!train_ref || cli_set_ref_parse(train_ref, &r, NULL) < 0 || !name ||
        strcmp(name, r.dataset) != 0)
        return NULL;
    const json_t *train = find_set(dataset, r.format, r.percent);
    int64_t c = cli_jint(train, "complement", 0);
    if (!train || c < 1 || c > 99 || c == r.percent || !find_set(dataset, r.format, c))
        return NULL;
    return ava_xasprintf("%s/%s/%lld", r.dataset, r.format, (long long)c);
}

int cli_dataset_get(struct cli_ctx *ctx, const char *name, json_t **out, char *err) {
    char *path = cli_dataset_path(name, NULL);
    int rc = cli_http_json(ctx->http, "GET", path, NULL, out, err);
    free(path);
    return rc;
}

/* Adds body[key] = the integer option opt when given, checked against [min, max]. */
static int add_int(const struct cli_args *a, const char *opt, const char *key, int64_t min,
                   int64_t max, json_t *body, char *err) {
    const char *s = cli_args_get(a, opt);
    int64_t v;
    if (!s)
        return 0;
    if (ava_parse_uint(s, max, &v, NULL) < 0 || v < min)
        return ava_err(err, AVA_EINVALID, "--%s needs a whole number from %lld to %lld, not '%s'",
                       opt, (long long)min, (long long)max, s);
    json_object_set_new(body, key, json_integer(v));
    return 0;
}

/* Adds body[key] = the option opt when given, which must be one of the NULL-ended words. */
static int add_word(const struct cli_args *a, const char *opt, const char *const *words,
                    const char *usage, json_t *body, char *err) {
    const char *s = cli_args_get(a, opt);
    if (!s)
        return 0;
    for (const char *const *w = words; *w; w++)
        if (strcmp(s, *w) == 0) {
            json_object_set_new(body, opt, json_string(s));
            return 0;
        }
    return ava_err(err, AVA_EINVALID, "--%s must be %s, not '%s'", opt, usage, s);
}

int cli_dataset_format_body(const struct cli_args *a, json_t **body, char *err) {
    static const char *const formats[] = {"recordio", "lmdb", "raw", NULL};
    static const char *const encodings[] = {"jpeg", "png", "raw", NULL};
    *body = NULL;
    if (a->npos < 1)
        return ava_err(err, AVA_EINVALID, "missing the dataset NAME");
    if (a->npos > 1)
        return ava_err(err, AVA_EINVALID, "unexpected argument '%s'", a->pos[1]);
    if (check_dataset_name(a->pos[0], err) < 0)
        return AVA_EINVALID;
    if (!cli_args_get(a, "format"))
        return ava_err(err, AVA_EINVALID, "missing --format recordio|lmdb|raw");
    if (!cli_args_get(a, "split"))
        return ava_err(err, AVA_EINVALID,
                       "missing --split P: the percentage of the first set (80 makes an 80 %% and "
                       "a 20 %% set, 100 one set)");
    if (cli_args_has(a, "stratified") && cli_args_has(a, "im2rec-compatible"))
        return ava_err(err, AVA_EINVALID,
                       "give --stratified or --im2rec-compatible, not both (im2rec's split is "
                       "not stratified)");
    json_t *b = json_object();
    if (add_word(a, "format", formats, "recordio, lmdb or raw", b, err) < 0 ||
        add_int(a, "split", "split", 1, 100, b, err) < 0 ||
        add_int(a, "seed", "seed", 0, INT64_MAX, b, err) < 0 ||
        add_word(a, "encoding", encodings, "jpeg, png or raw", b, err) < 0 ||
        add_int(a, "quality", "quality", 1, 100, b, err) < 0 ||
        add_int(a, "resize", "resize", 0, 65535, b, err) < 0 ||
        add_int(a, "threads", "threads", 0, 256, b, err) < 0) {
        json_decref(b);
        return AVA_EINVALID;
    }
    if (cli_args_has(a, "stratified"))
        json_object_set_new(b, "stratified", json_true());
    if (cli_args_has(a, "im2rec-compatible"))
        json_object_set_new(b, "im2rec_compatible", json_true());
    *body = b;
    return 0;
}

int cli_dataset_format_parse(int argc, char *const *argv, json_t **body, char *err) {
    return cli_parse_body(argc, argv, cli_dataset_format_opts, cli_dataset_format_body, body, err);
}

/* done * by / total rounded down, exact even for huge counts (0 <= done <= total). */
static int64_t scale(int64_t done, int64_t total, int64_t by) {
    return (int64_t)((__int128)done * by / total);
}

void cli_progress_render(int64_t done, int64_t total, double rate, int width, char *out,
                         size_t outlen) {
    char text[128], rate_s[48] = "", bar[BAR_MAX + 3];
    if (width <= 0)
        width = 80;
    if (done < 0)
        done = 0;
    if (rate >= 0)
        snprintf(rate_s, sizeof rate_s, "  %lld/s", (long long)(rate + 0.5));
    if (total > 0) {
        if (done > total)
            done = total;
        snprintf(text, sizeof text, " %lld%%  %lld/%lld%s", (long long)scale(done, total, 100),
                 (long long)done, (long long)total, rate_s);
    } else {
        snprintf(text, sizeof text, " %lld done%s", (long long)done, rate_s);
    }
    /* the bar keeps its length while the numbers change: room for the widest text */
    int widest = total > 0
                     ? snprintf(NULL, 0, " 100%%  %lld/%lld", (long long)total, (long long)total)
                     : (int)strlen(text) - (int)strlen(rate_s);
    int cells = width - 1 - 2 - widest - RATE_ROOM;
    if (cells > BAR_MAX)
        cells = BAR_MAX;
    if (cells < BAR_MIN) {
        snprintf(out, outlen, "%s", text + 1);
        return;
    }
    int filled = total > 0 ? (int)scale(done, total, cells) : 0;
    bar[0] = '[';
    memset(bar + 1, '#', (size_t)filled);
    memset(bar + 1 + filled, '.', (size_t)(cells - filled));
    bar[cells + 1] = ']';
    bar[cells + 2] = '\0';
    snprintf(out, outlen, "%s%s", bar, text);
}

/* Set by the SIGINT handler while a job is followed: the user asked to cancel it. */
static volatile sig_atomic_t interrupted;

/* SIGINT handler of the progress bar (installed once: a second Ctrl-C ends ava). */
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* Sleeps up to ms milliseconds; a signal (Ctrl-C) ends the sleep early. */
static void nap_ms(int64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The progress bar of a followed job, drawn on stderr. */
struct bar {
    bool tty;            /* rewrite one line; else print a line every 10 % */
    int width;           /* the terminal's columns */
    int64_t t0, done0;   /* the first observation, for the rate (t0 < 0: none yet) */
    int64_t done, total; /* the latest progress */
    int decile;          /* the last tenth printed (not a TTY) */
    size_t len;          /* the length of the line on screen (TTY; 0: none) */
};

/* Starts a bar: a rewritten line when stderr is a terminal, else a log of lines. */
static void bar_init(struct bar *b) {
    struct winsize ws;
    memset(b, 0, sizeof *b);
    b->tty = isatty(STDERR_FILENO);
    b->width = b->tty && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
    b->t0 = -1;
    b->decile = -1;
}

/* Records the job's progress and draws it. */
static void bar_update(struct bar *b, int64_t done, int64_t total) {
    int64_t now = ava_mono_ms();
    char line[256];
    if (total > 0 && b->t0 < 0) {
        b->t0 = now;
        b->done0 = done;
    }
    b->done = done;
    b->total = total;
    double rate = b->t0 >= 0 && now - b->t0 >= RATE_AFTER_MS
                      ? (double)(done - b->done0) * 1000.0 / (double)(now - b->t0)
                      : -1;
    if (b->tty && (done > 0 || total > 0)) {
        cli_progress_render(done, total, rate, b->width, line, sizeof line);
        size_t n = strlen(line);
        fprintf(stderr, "\r%s%*s", line, b->len > n ? (int)(b->len - n) : 0, "");
        b->len = n;
        fflush(stderr);
    } else if (!b->tty && total > 0 && scale(done, total, 10) > b->decile) {
        b->decile = (int)scale(done, total, 10);
        cli_progress_render(done, total, rate, LOG_WIDTH, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
}

/* Ends the bar's line (on success first showing it full), so that what follows starts a
 * new line. */
static void bar_end(struct bar *b, bool ok) {
    if (ok && b->total > 0)
        bar_update(b, b->total, b->total);
    if (b->tty && b->len)
        fputc('\n', stderr);
    b->len = 0;
}

/* Asks the server to cancel the dataset's job, after Ctrl-C. */
static void request_cancel(struct cli_ctx *ctx, const char *name, const char *kind, struct bar *b) {
    char err[AVA_ERRLEN];
    bar_end(b, false);
    char *path = cli_dataset_path(name, "/cancel");
    if (cli_http_json(ctx->http, "POST", path, NULL, NULL, err) < 0)
        fprintf(stderr, "ava: cannot cancel the %s of dataset %s: %s\n", kind, name, err);
    else
        fprintf(stderr, "ava: cancelling the %s of dataset %s (Ctrl-C again to stop waiting)\n",
                kind, name);
    free(path);
}

/* Turns the state of an ended job into the verb's outcome. */
static int job_outcome(const json_t *job, const char *kind, char *err) {
    const char *state = cli_jstr(job, "state"), *reason = cli_jstr(job, "reason");
    if (strcmp(state, "succeeded") == 0)
        return CLI_OK;
    if (strcmp(state, "failed") == 0)
        ava_err(err, AVA_EIO, "%s failed: %s", kind,
                reason && *reason ? reason : "(the server gave no reason)");
    else if (strcmp(state, "cancelled") == 0)
        ava_err(err, AVA_ECONFLICT, "%s cancelled", kind);
    else
        ava_err(err, AVA_EINTERNAL, "%s ended %s", kind, state);
    return CLI_FAIL;
}

/* Polls the dataset until its job job_id ends, drawing the progress bar; Ctrl-C asks the
 * server to cancel the job and goes on waiting. Returns CLI_OK with *final (the dataset, owned
 * by the caller) when the job succeeded, else CLI_FAIL with a message. */
static int wait_job(struct cli_ctx *ctx, const char *name, int64_t job_id, const char *kind,
                    json_t **final, char *err) {
    struct sigaction sa = {.sa_handler = on_sigint, .sa_flags = SA_RESETHAND | SA_RESTART}, old;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old);
    struct bar b;
    bar_init(&b);
    bool cancel_sent = false;
    int rc;
    *final = NULL;
    for (;;) {
        json_t *d;
        if (interrupted && !cancel_sent) {
            cancel_sent = true;
            request_cancel(ctx, name, kind, &b);
        }
        if (cli_dataset_get(ctx, name, &d, err) < 0) {
            rc = CLI_FAIL;
            break;
        }
        const json_t *job = json_object_get(d, "job");
        const char *state = cli_jstr(job, "state");
        if (!state || cli_jint(job, "id", -1) != job_id) {
            ava_err(err, AVA_ECONFLICT,
                    "the %s job %lld of dataset %s is gone; see 'ava dataset show %s'", kind,
                    (long long)job_id, name, name);
            json_decref(d);
            rc = CLI_FAIL;
            break;
        }
        if (strcmp(state, "running") != 0) {
            rc = job_outcome(job, kind, err);
            *final = rc == CLI_OK ? d : NULL;
            if (rc != CLI_OK)
                json_decref(d);
            break;
        }
        const json_t *p = json_object_get(job, "progress");
        bar_update(&b, cli_jint(p, "done", 0), cli_jint(p, "total", 0));
        json_decref(d);
        nap_ms(POLL_MS);
    }
    bar_end(&b, rc == CLI_OK);
    sigaction(SIGINT, &old, NULL);
    return rc;
}

/* The SAMPLES or CLASSES cell: "-" for a dataset that holds nothing yet. */
static void add_count(struct cli_table *tab, int64_t n) {
    if (n > 0)
        cli_table_addf(tab, "%lld", (long long)n);
    else
        cli_table_add(tab, NULL);
}

/* Prints one section of `dataset list`: the datasets whose visibility is public. */
static void list_section(const json_t *datasets, bool public) {
    static const char *const hdr[] = {"NAME", "STATE", "SAMPLES", "CLASSES", "SETS"};
    struct cli_table *tab = cli_table_new(5, hdr);
    struct ava_buf notes = {0};
    const char *group = NULL;
    size_t i, j;
    json_t *d, *s;
    json_array_foreach(datasets, i, d) {
        if (cli_jbool(d, "public") != public)
            continue;
        const char *state = cli_jstr(d, "state"), *reason = cli_jstr(d, "reason");
        struct ava_buf sets = {0};
        json_array_foreach(json_object_get(d, "sets"), j, s) {
            ava_buf_printf(&sets, "%s%s", sets.len ? " " : "",
                           json_is_string(s) ? json_string_value(s) : "?");
        }
        group = group ? group : cli_jstr(d, "group");
        cli_table_add(tab, cli_jstr(d, "name"));
        cli_table_add(tab, state);
        add_count(tab, cli_jint(d, "samples", 0));
        add_count(tab, (int64_t)json_array_size(json_object_get(d, "classes")));
        cli_table_add(tab, sets.data);
        ava_buf_free(&sets);
        if (state && strcmp(state, "ready") != 0 && reason && *reason)
            ava_buf_printf(&notes, "%s: %s\n", cli_jstr(d, "name"), reason);
    }
    if (public)
        printf("PUBLIC\n");
    else if (group)
        printf("PRIVATE (group %s)\n", group);
    else
        printf("PRIVATE (your group)\n");
    if (cli_table_rows(tab) > 0)
        cli_table_print(tab, stdout);
    else
        printf("%s\n", public ? "(none)"
                              : "(none: import one with 'ava dataset import NAME --from SOURCE')");
    if (notes.len)
        printf("\n%s", notes.data);
    ava_buf_free(&notes);
    cli_table_free(tab);
}

/* ava dataset list */
static int dataset_list(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    json_t *resp;
    if (cli_http_json(ctx->http, "GET", "/datasets", NULL, &resp, err) < 0)
        return CLI_FAIL;
    if (ctx->json) {
        cli_print_json(stdout, resp);
    } else {
        list_section(json_object_get(resp, "datasets"), true);
        printf("\n");
        list_section(json_object_get(resp, "datasets"), false);
    }
    json_decref(resp);
    return CLI_OK;
}

/* Prints the facts of `dataset show`: who owns it, where it came from, its state. */
static void show_info(const json_t *d) {
    char buf[1200];
    const char *owner = cli_jstr(d, "owner"), *group = cli_jstr(d, "group");
    const char *state = cli_jstr(d, "state"), *reason = cli_jstr(d, "reason");
    cli_print_kv("name:", cli_jstr(d, "name"));
    if (cli_jbool(d, "public"))
        snprintf(buf, sizeof buf, "public (every group)");
    else
        snprintf(buf, sizeof buf, "private (group %s)", group ? group : "?");
    cli_print_kv("visibility:", buf);
    snprintf(buf, sizeof buf, "%s%s%s%s", owner ? owner : "-", group ? " (group " : "",
             group ? group : "", group ? ")" : "");
    cli_print_kv("owner:", buf);
    cli_print_kv("description:", cli_jstr(d, "description"));
    cli_print_kv("source:", cli_jstr(d, "source"));
    snprintf(buf, sizeof buf, "%s%s%s%s", state ? state : "?", reason && *reason ? " (" : "",
             reason && *reason ? reason : "", reason && *reason ? ")" : "");
    cli_print_kv("state:", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)cli_jint(d, "samples", 0));
    cli_print_kv("samples:", buf);
    cli_format_local_time(cli_jstr(d, "created_at"), buf, sizeof buf);
    cli_print_kv("created:", buf);
}

/* Prints the classes table of `dataset show`: name and sample count of each class. */
static void show_classes(const json_t *classes) {
    static const char *const hdr[] = {"NAME", "COUNT"};
    struct cli_table *tab = cli_table_new(2, hdr);
    size_t i;
    json_t *c;
    json_array_foreach(classes, i, c) {
        cli_table_add(tab, cli_jstr(c, "name"));
        cli_table_addf(tab, "%lld", (long long)cli_jint(c, "count", 0));
    }
    printf("\nclasses:\n");
    if (cli_table_rows(tab) > 0)
        cli_table_print(tab, stdout);
    else
        printf("(none yet)\n");
    cli_table_free(tab);
}

/* Prints the formatted sets table of `dataset show`. */
static void show_sets(const json_t *d) {
    static const char *const hdr[] = {"REF",  "FORMAT",     "PERCENT", "SAMPLES",
                                      "SIZE", "COMPLEMENT", "PATH"};
    struct cli_table *tab = cli_table_new(7, hdr);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(d, "sets"), i, s) {
        char size[32];
        cli_table_add(tab, cli_jstr(s, "ref"));
        cli_table_add(tab, cli_jstr(s, "format"));
        cli_table_addf(tab, "%lld", (long long)cli_jint(s, "percent", 0));
        cli_table_addf(tab, "%lld", (long long)cli_jint(s, "samples", 0));
        ava_format_size(cli_jint(s, "bytes", 0), size, sizeof size);
        cli_table_add(tab, size);
        int64_t c = cli_jint(s, "complement", 0);
        if (c > 0)
            cli_table_addf(tab, "%lld%s", (long long)c,
                           find_set(d, cli_jstr(s, "format"), c) ? "" : " (removed)");
        else
            cli_table_add(tab, NULL);
        cli_table_add(tab, cli_jstr(s, "path"));
    }
    printf("\nformatted sets:\n");
    if (cli_table_rows(tab) > 0)
        cli_table_print(tab, stdout);
    else
        printf("(none: make some with 'ava dataset format %s --format recordio --split 80')\n",
               cli_jstr(d, "name") ? cli_jstr(d, "name") : "NAME");
    cli_table_free(tab);
}

/* Prints the latest job of `dataset show`: kind, state, progress while it runs or why it
 * failed. */
static void show_job(const json_t *job) {
    const char *state = cli_jstr(job, "state"), *reason = cli_jstr(job, "reason");
    if (!state)
        return;
    const json_t *p = json_object_get(job, "progress");
    int64_t done = cli_jint(p, "done", 0), total = cli_jint(p, "total", 0);
    char buf[1200];
    int n = snprintf(buf, sizeof buf, "%s #%lld, %s",
                     cli_jstr(job, "kind") ? cli_jstr(job, "kind") : "?",
                     (long long)cli_jint(job, "id", 0), state);
    if (n > 0 && (size_t)n < sizeof buf && strcmp(state, "running") == 0 && total > 0)
        snprintf(buf + n, sizeof buf - (size_t)n, ", %lld/%lld (%lld%%)", (long long)done,
                 (long long)total, (long long)scale(done < total ? done : total, total, 100));
    else if (n > 0 && (size_t)n < sizeof buf && reason && *reason && strcmp(reason, state) != 0)
        snprintf(buf + n, sizeof buf - (size_t)n, ": %s", reason);
    printf("\n");
    cli_print_kv("latest job:", buf);
}

/* ava dataset show NAME */
static int dataset_show(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    json_t *d;
    if (check_dataset_name(a->pos[0], err) < 0)
        return CLI_USAGE;
    if (cli_dataset_get(ctx, a->pos[0], &d, err) < 0)
        return CLI_FAIL;
    if (ctx->json) {
        cli_print_json(stdout, d);
    } else {
        show_info(d);
        show_classes(json_object_get(d, "classes"));
        show_sets(d);
        show_job(json_object_get(d, "job"));
    }
    json_decref(d);
    return CLI_OK;
}

/* Builds the POST /datasets body of `dataset import`. */
static int import_body(const struct cli_args *a, json_t **body, char *err) {
    const char *name = a->pos[0], *from = cli_args_get(a, "from"), *desc = cli_args_get(a, "desc");
    *body = NULL;
    if (check_dataset_name(name, err) < 0)
        return AVA_EINVALID;
    if (!from || !*from)
        return ava_err(err, AVA_EINVALID,
                       "missing --from SOURCE (e.g. imagefolder:/data/flowers, idx:IMAGES,LABELS, "
                       "cifar10:PATH, lst:FILE,ROOT, jsonlist:FILE)");
    json_t *b = json_pack("{s:s}", "name", name), *v;
    if (!(v = json_string(from)) || json_object_set_new(b, "source", v) < 0 ||
        (desc && (!(v = json_string(desc)) || json_object_set_new(b, "description", v) < 0))) {
        json_decref(b);
        return ava_err(err, AVA_EINVALID, "--from or --desc is not valid UTF-8");
    }
    *body = b;
    return 0;
}

/* ava dataset import NAME --from SOURCE [--desc TEXT] [--no-wait] */
/* After an import or fetch request (its answer in resp, consumed): waits for the job with the
 * progress bar unless --no-wait, and prints the outcome. */
static int follow_import(struct cli_ctx *ctx, const struct cli_args *a, const char *name,
                         json_t *resp, char *err) {
    json_t *final;
    int64_t job_id = cli_jint(json_object_get(resp, "job"), "id", -1);
    if (cli_args_has(a, "no-wait")) {
        if (ctx->json)
            cli_print_json(stdout, resp);
        else
            printf("dataset %s: import started (job %lld); see 'ava dataset show %s'\n", name,
                   (long long)job_id, name);
        json_decref(resp);
        return CLI_OK;
    }
    json_decref(resp);
    if (wait_job(ctx, name, job_id, "import", &final, err) != CLI_OK)
        return CLI_FAIL;
    if (ctx->json)
        cli_print_json(stdout, final);
    else
        printf("dataset %s imported: %lld samples, %zu classes\n", name,
               (long long)cli_jint(final, "samples", 0),
               json_array_size(json_object_get(final, "classes")));
    json_decref(final);
    return CLI_OK;
}

static int dataset_import(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    json_t *body, *resp;
    if (import_body(a, &body, err) < 0)
        return CLI_USAGE;
    int rc = cli_http_json(ctx->http, "POST", "/datasets", body, &resp, err);
    json_decref(body);
    return rc < 0 ? CLI_FAIL : follow_import(ctx, a, a->pos[0], resp, err);
}

/* ava dataset fetch NAME: the server downloads the dataset's official file (cifar10). */
static int dataset_fetch(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    json_t *resp;
    char *path = cli_dataset_path(a->pos[0], "/fetch");
    int rc = cli_http_json(ctx->http, "POST", path, NULL, &resp, err);
    free(path);
    return rc < 0 ? CLI_FAIL : follow_import(ctx, a, a->pos[0], resp, err);
}

/* Prints the sets a format job made: "dataset D formatted: D/recordio/80 (56000 samples),
 * D/recordio/20 (14000 samples)". */
static void print_sets_made(const json_t *d, const char *name, const char *format, int64_t split) {
    struct ava_buf line = {0};
    int64_t pcts[2] = {split, 100 - split};
    ava_buf_printf(&line, "dataset %s formatted:", name);
    for (int i = 0; i < (split < 100 ? 2 : 1); i++) {
        const json_t *s = find_set(d, format, pcts[i]);
        ava_buf_printf(&line, "%s %s/%s/%lld (%lld samples)", i ? "," : "", name, format,
                       (long long)pcts[i], (long long)cli_jint(s, "samples", 0));
    }
    printf("%s\n", line.data);
    ava_buf_free(&line);
}

/* ava dataset format NAME --format F --split P [options] [--no-wait] */
static int dataset_format(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *name = a->pos[0];
    json_t *body, *job, *final;
    if (cli_dataset_format_body(a, &body, err) < 0)
        return CLI_USAGE;
    char *path = cli_dataset_path(name, "/format");
    int rc = cli_http_json(ctx->http, "POST", path, body, &job, err);
    free(path);
    int64_t split = json_integer_value(json_object_get(body, "split"));
    char *format = strdup(json_string_value(json_object_get(body, "format")));
    json_decref(body);
    if (rc < 0) {
        free(format);
        return CLI_FAIL;
    }
    int64_t job_id = cli_jint(job, "id", -1);
    if (cli_args_has(a, "no-wait")) {
        if (ctx->json)
            cli_print_json(stdout, job);
        else
            printf("dataset %s: format job %lld started; see 'ava dataset show %s'\n", name,
                   (long long)job_id, name);
    } else if ((rc = wait_job(ctx, name, job_id, "format", &final, err)) == CLI_OK) {
        if (ctx->json)
            cli_print_json(stdout, final);
        else
            print_sets_made(final, name, format, split);
        json_decref(final);
    }
    json_decref(job);
    free(format);
    return rc == CLI_OK ? CLI_OK : CLI_FAIL;
}

/* ava dataset cancel NAME */
static int dataset_cancel(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *name = a->pos[0];
    if (check_dataset_name(name, err) < 0)
        return CLI_USAGE;
    char *path = cli_dataset_path(name, "/cancel"), line[200];
    snprintf(line, sizeof line, "dataset %s: cancelling its running job (nothing it wrote is kept)",
             name);
    int rc = cli_send_and_report(ctx, "POST", path, NULL, line, err);
    free(path);
    return rc;
}

/* ava dataset rm NAME | NAME/FORMAT/PERCENT */
static int dataset_rm(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *ref = a->pos[0];
    json_t *resp;
    char *path;
    if (cli_dataset_rm_path(ref, &path, err) < 0)
        return CLI_USAGE;
    int rc = cli_http_json(ctx->http, "DELETE", path, NULL, &resp, err);
    free(path);
    if (rc < 0)
        return CLI_FAIL;
    if (ctx->json)
        cli_print_json(stdout, resp);
    else if (strchr(ref, '/'))
        printf("set %s removed\n", ref);
    else
        printf("dataset %s removed, with its formatted sets\n", ref);
    json_decref(resp);
    return CLI_OK;
}

static const char import_help[] =
    "  --from SOURCE        where the samples are (required): imagefolder:DIR (one subfolder\n"
    "                       per class), idx:IMAGES,LABELS[+IMAGES,LABELS...] (MNIST files),\n"
    "                       cifar10:PATH (tarball or folder of batches), lst:FILE,ROOT (an\n"
    "                       im2rec list), jsonlist:FILE (one {\"url\", \"label\"} per line);\n"
    "                       paths are read by the server\n"
    "  --desc TEXT          a description (at most 1000 bytes)\n"
    "  --no-wait            return once the import has started (no progress bar)\n";

static const char format_help[] =
    "  --format F           recordio, lmdb or raw (required)\n"
    "  --split P            the first set's percentage, 1 to 100 (required): 80 makes the sets\n"
    "                       NAME/F/80 and NAME/F/20 from one shuffle; 100 makes one set\n"
    "  --seed N             the shuffle's seed (default 0)\n"
    "  --encoding E         jpeg, png or raw (default: recordio jpeg, lmdb raw pixels, raw\n"
    "                       the source files or png)\n"
    "  --quality Q          JPEG quality, 1 to 100 (default 95)\n"
    "  --resize N           resize so the shorter edge is N pixels (default 0: keep)\n"
    "  --stratified         keep the class proportions in both sets\n"
    "  --im2rec-compatible  the order and split of MXNet's im2rec.py --list --train-ratio\n"
    "  --threads N          encoding threads, 0 to 256 (default 0: the server's CPUs)\n"
    "  --no-wait            return once the job has started (no progress bar)\n"
    "While the progress bar runs, Ctrl-C cancels the job (exit status 1).\n";

const struct cli_verb cli_dataset_verbs[] = {
    {"dataset", "list", NULL, "", "list the public datasets and your group's", NULL, no_opts, false,
     dataset_list},
    {"dataset", "show", "NAME", "NAME", "show a dataset: classes, formatted sets, latest job", NULL,
     no_opts, false, dataset_show},
    {"dataset", "import", "NAME", "NAME --from SOURCE [--desc TEXT] [--no-wait]",
     "import a dataset for your group, with a progress bar", import_help, import_opts, false,
     dataset_import},
    {"dataset", "fetch", "NAME", "NAME [--no-wait]",
     "download a public dataset from its official URL and import it (admin; cifar10)", NULL,
     import_wait_opts, false, dataset_fetch},
    {"dataset", "format", "NAME", "NAME --format recordio|lmdb|raw --split P [options]",
     "format a dataset into train/validation sets, with a progress bar", format_help,
     cli_dataset_format_opts, false, dataset_format},
    {"dataset", "cancel", "NAME", "NAME", "cancel a dataset's running import or format job", NULL,
     no_opts, false, dataset_cancel},
    {"dataset", "rm", "NAME|SET", "NAME | NAME/FORMAT/PERCENT",
     "remove a dataset, or one formatted set", NULL, no_opts, false, dataset_rm},
    {0},
};
