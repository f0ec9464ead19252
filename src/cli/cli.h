/* cli.h: what the verbs of the ava CLI share: the run context, the verb table, exit codes. */
#ifndef AVA_CLI_CLI_H
#define AVA_CLI_CLI_H

#include "args.h"
#include "http.h"

#include "../common/strutil.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a verb returns; main turns it into the exit status. */
enum cli_rc {
    CLI_OK = 0,      /* success */
    CLI_FAIL = 1,    /* an error (message in err), or `wait` saw a run end badly (no message) */
    CLI_USAGE = 2,   /* a bad command line: main adds a hint to --help */
    CLI_TIMEOUT = 3, /* `wait` gave up: exit status 2, but no --help hint */
};

/* What every verb gets: the connection and the output mode. */
struct cli_ctx {
    struct cli_http *http;
    bool json; /* --json: print the server's JSON */
};

/* One verb: "ava NOUN VERB [POS] [options]", or "ava NOUN [options]" when verb is NULL.
 * run returns an enum cli_rc and fills err (AVA_ERRLEN bytes) for CLI_FAIL/CLI_USAGE/
 * CLI_TIMEOUT; it prints its results itself. */
struct cli_verb {
    const char *noun;
    const char *verb;
    const char *pos;      /* the one positional argument ("NAME"), or NULL for none */
    const char *synopsis; /* what follows "ava NOUN VERB" in the usage line */
    const char *summary;  /* one line for ava --help */
    const char *help;     /* the options, for "ava NOUN VERB --help"; may be NULL */
    const struct cli_optspec *opts;
    bool takes_rest; /* accepts "-- ARGS..." */
    int (*run)(struct cli_ctx *ctx, const struct cli_args *a, char *err);
};

/* The verb tables, each ending with an entry whose noun is NULL. */
extern const struct cli_verb cli_train_verbs[];
extern const struct cli_verb cli_admin_verbs[];
extern const struct cli_verb cli_dataset_verbs[];
extern const struct cli_verb cli_metrics_verbs[]; /* train metrics, train compare */

/* Builds the POST /trainings body from a parsed `train create` command line (the NAME
 * positional, the options of cli_train_create_opts, the words after "--"). Returns 0 with
 * *body owned by the caller (json_decref), or AVA_EINVALID with a message for a command line
 * that cannot be right: a bad name, both or neither of --cpu/--gpu, a bad size or duration,
 * an --env without '=', a relative --entry. */
int cli_train_create_body(const struct cli_args *a, json_t **body, char *err);

/* Parses argv with opts and builds a request body with build: cli_args_parse, then build.
 * Returns 0 with *body owned by the caller, or the parser's or builder's error. */
int cli_parse_body(int argc, char *const *argv, const struct cli_optspec *opts,
                   int (*build)(const struct cli_args *, json_t **, char *), json_t **body,
                   char *err);

/* Parses the words after "ava train create" and builds the body (cli_args_parse +
 * cli_train_create_body). Returns 0 or AVA_EINVALID with a message. */
int cli_train_create_parse(int argc, char *const *argv, json_t **body, char *err);

/* The options of `train create`. */
extern const struct cli_optspec cli_train_create_opts[];

/* Sends method path (with body, consumed; may be NULL) and prints the server's JSON with
 * --json, else line. Returns CLI_OK, or CLI_FAIL with the error in err. */
int cli_send_and_report(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
                        const char *line, char *err);

/* The API path of a training: "/trainings/<ref URL-encoded><suffix>" ("alice/hello" becomes
 * "alice%2Fhello"). Returns a malloc'd string owned by the caller. */
char *cli_training_path(const char *ref, const char *suffix);

/* A formatted set's reference "DATASET/FORMAT/PERCENT" ("fashion-mnist/recordio/80"). */
struct cli_set_ref {
    char dataset[AVA_NAME_MAX + 1];
    char format[AVA_NAME_MAX + 1];
    int percent; /* 1..100 */
};

/* Parses a set reference: a valid dataset name, a valid format name, and a percentage from 1
 * to 100 written without leading zeros. Returns 0 or AVA_EINVALID with a message (err may be
 * NULL). Pure. */
int cli_set_ref_parse(const char *ref, struct cli_set_ref *out, char *err);

/* The API path of a dataset: "/datasets/<name URL-encoded><suffix>". Returns a malloc'd
 * string owned by the caller. */
char *cli_dataset_path(const char *name, const char *suffix);

/* The DELETE path for `ava dataset rm REF`: "/datasets/NAME" for a dataset name, or
 * "/datasets/NAME/sets/FORMAT/PERCENT" for a set reference, each part URL-encoded. Returns 0
 * with *path owned by the caller, or AVA_EINVALID with a message. Pure. */
int cli_dataset_rm_path(const char *ref, char **path, char *err);

/* The validation set `train create` picks for train_ref when --val is not given: the ref of
 * the train set's complement ("D/F/20" for "D/F/80") when dataset (the GET /datasets/D
 * answer) holds the train set, the set names a complement, and that set exists. Returns a
 * malloc'd string owned by the caller, or NULL (no complement, a malformed ref, another
 * dataset). Pure. */
char *cli_dataset_complement(const json_t *dataset, const char *train_ref);

/* GETs /datasets/NAME; *out is owned by the caller. Returns 0 or a negative AVA_E* code. */
int cli_dataset_get(struct cli_ctx *ctx, const char *name, json_t **out, char *err);

/* The options of `dataset format`. */
extern const struct cli_optspec cli_dataset_format_opts[];

/* Builds the POST /datasets/NAME/format body from a parsed `dataset format` command line (the
 * NAME positional and the options of cli_dataset_format_opts); only the options given are
 * sent. Returns 0 with *body owned by the caller, or AVA_EINVALID with a message: a bad name,
 * no --format or --split, a value out of range, --stratified with --im2rec-compatible. */
int cli_dataset_format_body(const struct cli_args *a, json_t **body, char *err);

/* Parses the words after "ava dataset format" and builds the body (cli_args_parse +
 * cli_dataset_format_body). Returns 0 or AVA_EINVALID with a message. */
int cli_dataset_format_parse(int argc, char *const *argv, json_t **body, char *err);

/* Renders one progress line, "[#########.........] 52%  36400/70000  12000/s", into out
 * (outlen bytes), at most width - 1 columns wide (width <= 0: 80). The bar takes what the
 * widest text of the job (" 100%  total/total" and 13 columns for the rate) leaves, so that
 * its length stays put while the numbers change; at most 50 cells, and none below 10. total
 * <= 0 (not known yet) gives "[....] 36400 done"; rate < 0 (not known yet) leaves out the
 * rate. Pure. */
void cli_progress_render(int64_t done, int64_t total, double rate, int width, char *out,
                         size_t outlen);

/* The options of `train metrics` and `train compare` (metrics.c). */
extern const struct cli_optspec cli_train_metrics_opts[];
extern const struct cli_optspec cli_train_compare_opts[];

/* What `train metrics` / `train compare` were asked for. */
struct cli_metrics_opts {
    const char *name;  /* --name M, or NULL */
    const char *phase; /* --phase P, or NULL */
    long long run;     /* --run N, or 0 for the latest */
    int max_points;    /* --max-points K, or 0 for twice the chart's width */
    bool csv;          /* --csv */
};

/* Checks the options of a parsed `train metrics` (compare false) or `train compare` (compare
 * true) command line; json is the global --json. Returns 0 or AVA_EINVALID with a message:
 * a bad --run or --max-points (2 to 100000), an empty --name, --csv without --name or with
 * --json, compare without --name. Pure. */
int cli_metrics_opts_get(const struct cli_args *a, bool compare, bool json,
                         struct cli_metrics_opts *o, char *err);

/* Parses "TRAINING" or "TRAINING#RUN" (TRAINING is NAME or USER/NAME, RUN a run number) into
 * training (len bytes) and *run (0 without "#RUN"). Returns 0 or AVA_EINVALID with a
 * message. Pure. */
int cli_run_ref_parse(const char *s, char *training, size_t len, long long *run, char *err);

/* True when smaller values of the metric are better: its name contains "loss" or "error"
 * (any case). */
bool cli_metric_lower_better(const char *name);

/* The best value of a series from its min and max (cli_metric_lower_better picks which). */
double cli_metric_best(const char *name, double min, double max);

/* The stop rule of paging through raw points: a page of got points (at most limit) asked for
 * after since, whose last point has last_step. Returns true with *next the since_step of the
 * next page when there may be more: a full page that moved forward. Pure. */
bool cli_metrics_page_next(size_t got, size_t limit, int64_t since, int64_t last_step,
                           int64_t *next);

#endif
