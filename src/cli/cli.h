/* cli.h: what the verbs of the ava CLI share: the run context, the verb table, exit codes. */
#ifndef AVA_CLI_CLI_H
#define AVA_CLI_CLI_H

#include "args.h"
#include "http.h"

#include <jansson.h>
#include <stdbool.h>

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

/* Builds the POST /trainings body from a parsed `train create` command line (the NAME
 * positional, the options of cli_train_create_opts, the words after "--"). Returns 0 with
 * *body owned by the caller (json_decref), or AVA_EINVALID with a message for a command line
 * that cannot be right: a bad name, both or neither of --cpu/--gpu, a bad size or duration,
 * an --env without '=', a relative --entry. */
int cli_train_create_body(const struct cli_args *a, json_t **body, char *err);

/* Parses the words after "ava train create" and builds the body (cli_args_parse +
 * cli_train_create_body). Returns 0 or AVA_EINVALID with a message. */
int cli_train_create_parse(int argc, char *const *argv, json_t **body, char *err);

/* The options of `train create`. */
extern const struct cli_optspec cli_train_create_opts[];

/* The API path of a training: "/trainings/<ref URL-encoded><suffix>" ("alice/hello" becomes
 * "alice%2Fhello"). Returns a malloc'd string owned by the caller. */
char *cli_training_path(const char *ref, const char *suffix);

#endif
