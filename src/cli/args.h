/* args.h: command-line option parsing for the ava verbs (pure: no I/O, no globals).
 *
 * Each verb declares the options it takes in a table ending with {0}; the global options
 * (cli_global_opts) are accepted with every table, so they may appear before or after the verb.
 * "--name value", "--name=value", "-x value" and "-x" are accepted; "--" ends the options and
 * everything after it is kept apart (train create's ARGS). */
#ifndef AVA_CLI_ARGS_H
#define AVA_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

/* One option a verb accepts. */
struct cli_optspec {
    const char *name; /* long name without the dashes: "follow" */
    char short_name;  /* 'f', or 0 for none */
    bool takes_value; /* "--image NAME:TAG" */
};

/* The global options, accepted by cli_args_parse() with every verb's table: server, token
 * (with values), json, help/-h, version. */
extern const struct cli_optspec cli_global_opts[];

/* One option occurrence in the order given. value is NULL for flags. */
struct cli_optval {
    const char *name;
    const char *value;
};

/* The parsed command line. Strings point into the caller's argv; the arrays are owned by the
 * struct and released with cli_args_free(). */
struct cli_args {
    const char **pos; /* positional words before "--" */
    int npos;
    const char **rest; /* words after "--" */
    int nrest;
    bool dashdash; /* a "--" was given */
    struct cli_optval *opts;
    int nopts;
};

/* Parses argv[0..argc) (the words after the verb) against specs (ending with {0}). Fills *out,
 * which the caller frees with cli_args_free() even on failure. Returns 0, or AVA_EINVALID with
 * a message for an unknown option, a missing value, or a value given to a flag. */
int cli_args_parse(int argc, char *const *argv, const struct cli_optspec *specs,
                   struct cli_args *out, char *err);

/* Like cli_args_parse, but stops at the first word that is not an option (the verb) and
 * stores its index in *stop (argc when there is none); "--" counts as such a word. Used for
 * the global options written before the verb. */
int cli_args_parse_prefix(int argc, char *const *argv, const struct cli_optspec *specs,
                          struct cli_args *out, int *stop, char *err);

/* Releases the arrays of a parsed command line (not the strings). */
void cli_args_free(struct cli_args *a);

/* True when the option was given at least once. */
bool cli_args_has(const struct cli_args *a, const char *name);

/* The value of the last occurrence of the option, or NULL. */
const char *cli_args_get(const struct cli_args *a, const char *name);

/* Iterates over every value of a repeatable option: start with *pos = 0; returns NULL at the
 * end. */
const char *cli_args_next(const struct cli_args *a, const char *name, int *pos);

#endif
