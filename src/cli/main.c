/* main.c: the ava command: global options, verb dispatch, usage and exit status. */
#if defined(__has_include)
#if __has_include("ava_config.h")
#include "ava_config.h"
#endif
#endif
#ifndef AVA_VERSION
#define AVA_VERSION "0.1.0"
#endif

#include "cli.h"
#include "config.h"

#include "../common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit statuses (see docs/cli.md). */
#define EXIT_USAGE 2

static const struct cli_verb *const verb_tables[] = {cli_train_verbs, cli_metrics_verbs,
                                                     cli_dataset_verbs, cli_admin_verbs};
#define NTABLES (sizeof verb_tables / sizeof verb_tables[0])

/* Prints "ava NOUN VERB" for a verb. */
static void print_verb_name(FILE *f, const struct cli_verb *v) {
    fprintf(f, "ava %s%s%s", v->noun, v->verb ? " " : "", v->verb ? v->verb : "");
}

/* Prints the overall usage: every verb with its summary, the global options, the settings. */
static void usage(FILE *f) {
    fprintf(f, "usage: ava [--server URL] [--token TOKEN] [--json] COMMAND [ARGS...]\n\n"
               "Commands:\n");
    for (size_t t = 0; t < NTABLES; t++)
        for (const struct cli_verb *v = verb_tables[t]; v->noun; v++) {
            char name[160];
            snprintf(name, sizeof name, "%s%s%s %s", v->noun, v->verb ? " " : "",
                     v->verb ? v->verb : "", v->pos ? v->pos : "");
            fprintf(f, "  %-26s %s\n", name, v->summary);
        }
    fprintf(f,
            "\nGlobal options (before or after the command):\n"
            "  --server URL      the avad to talk to; default: $AVA_SERVER, else the URL in\n"
            "                    $AVA_DATA/endpoint (AVA_DATA defaults to ./var), else %s\n"
            "  --token TOKEN     API token; default: $AVA_TOKEN, else $AVA_DATA/admin.token\n"
            "  --json            print the server's JSON instead of tables\n"
            "  -h, --help        show this help, or a command's: ava train create --help\n"
            "  --version         show the version\n\n"
            "Exit status: 0 success, 1 error, 2 usage error (and `train wait` timeout).\n",
            CLI_DEFAULT_SERVER);
}

/* Prints the usage of the verbs of one noun ("ava train --help"). */
static void usage_noun(FILE *f, const char *noun) {
    fprintf(f, "usage:\n");
    for (size_t t = 0; t < NTABLES; t++)
        for (const struct cli_verb *v = verb_tables[t]; v->noun; v++)
            if (strcmp(v->noun, noun) == 0) {
                fprintf(f, "  ");
                print_verb_name(f, v);
                fprintf(f, "%s%s\n      %s\n", *v->synopsis ? " " : "", v->synopsis, v->summary);
            }
    fprintf(f, "\nRun 'ava %s VERB --help' for a verb's options, 'ava --help' for the rest.\n",
            noun);
}

/* Prints the usage of one verb. */
static void usage_verb(FILE *f, const struct cli_verb *v) {
    fprintf(f, "usage: ");
    print_verb_name(f, v);
    fprintf(f, "%s%s\n\n%s\n", *v->synopsis ? " " : "", v->synopsis, v->summary);
    if (v->help)
        fprintf(f, "\nOptions:\n%s", v->help);
    fprintf(f, "\nGlobal options --server, --token, --json, --help: see 'ava --help'.\n");
}

/* Reports a usage error on stderr with a hint; returns the usage exit status. */
static int usage_error(const char *msg, const struct cli_verb *v) {
    fprintf(stderr, "ava: %s\n", msg);
    if (v) {
        fprintf(stderr, "Try '");
        print_verb_name(stderr, v);
        fprintf(stderr, " --help' or 'ava --help'.\n");
    } else {
        fprintf(stderr, "Try 'ava --help'.\n");
    }
    return EXIT_USAGE;
}

/* True when some verb has this noun. */
static bool noun_known(const char *noun) {
    for (size_t t = 0; t < NTABLES; t++)
        for (const struct cli_verb *v = verb_tables[t]; v->noun; v++)
            if (strcmp(v->noun, noun) == 0)
                return true;
    return false;
}

/* Finds the verb named by words[0] (and words[1] for nouns with verbs); *used is how many
 * words named it. NULL when there is none. */
static const struct cli_verb *find_verb(int n, char *const *words, int *used) {
    for (size_t t = 0; t < NTABLES; t++)
        for (const struct cli_verb *v = verb_tables[t]; v->noun; v++) {
            if (strcmp(v->noun, words[0]) != 0)
                continue;
            if (!v->verb) {
                *used = 1;
                return v;
            }
            if (n > 1 && strcmp(v->verb, words[1]) == 0) {
                *used = 2;
                return v;
            }
        }
    return NULL;
}

/* Checks the positional words and the "--" part against what the verb takes; a pos ending
 * in "...]" ("A B [C...]") takes one or more words, which the verb counts itself. */
static int check_positionals(const struct cli_verb *v, const struct cli_args *a, char *err) {
    int want = v->pos ? 1 : 0;
    bool many = v->pos && strstr(v->pos, "...]");
    if (a->npos < want)
        return ava_err(err, AVA_EINVALID, "missing %s", v->pos);
    if (a->npos > want && !many)
        return ava_err(err, AVA_EINVALID, "unexpected argument '%s'%s", a->pos[want],
                       v->takes_rest ? " (arguments for the entry point go after '--')" : "");
    if (a->dashdash && !v->takes_rest)
        return ava_err(err, AVA_EINVALID, "this command takes no arguments after '--'");
    return 0;
}

/* The value of a global option: given after the verb, else before it. */
static const char *global_opt(const struct cli_args *pre, const struct cli_args *a,
                              const char *name) {
    const char *v = cli_args_get(a, name);
    return v ? v : cli_args_get(pre, name);
}

/* Connects and runs a parsed verb; returns the exit status. */
static int run_verb(const struct cli_verb *v, const struct cli_args *pre,
                    const struct cli_args *a) {
    char err[AVA_ERRLEN] = "";
    struct cli_config cfg;
    int rc = cli_config_resolve(global_opt(pre, a, "server"), global_opt(pre, a, "token"),
                                getenv("AVA_SERVER"), getenv("AVA_TOKEN"), getenv("AVA_DATA"), &cfg,
                                err);
    if (rc < 0) {
        cli_config_free(&cfg);
        return usage_error(err, NULL);
    }
    struct cli_ctx ctx = {.json = cli_args_has(pre, "json") || cli_args_has(a, "json")};
    if (cli_http_new(cfg.server, cfg.server_source, cfg.token, &ctx.http, err) < 0) {
        cli_config_free(&cfg);
        fprintf(stderr, "ava: %s\n", err);
        return 1;
    }
    rc = v->run(&ctx, a, err);
    cli_http_free(ctx.http);
    cli_config_free(&cfg);
    fflush(stdout);
    if (rc == CLI_USAGE)
        return usage_error(err, v);
    if (rc != CLI_OK && err[0])
        fprintf(stderr, "ava: %s\n", err);
    return rc == CLI_OK ? 0 : rc == CLI_FAIL ? 1 : EXIT_USAGE;
}

/* Handles "ava NOUN" with a missing or unknown verb: the noun's usage for -h/--help, else a
 * usage error listing the verbs. */
static int noun_without_verb(const char *noun, const char *next, const struct cli_args *pre) {
    char err[AVA_ERRLEN];
    if (cli_args_has(pre, "help") ||
        (next && (strcmp(next, "-h") == 0 || strcmp(next, "--help") == 0))) {
        usage_noun(stdout, noun);
        return 0;
    }
    if (next) {
        snprintf(err, sizeof err, "unknown command 'ava %s %s'", noun, next);
    } else {
        int n = snprintf(err, sizeof err, "'ava %s' needs one of:", noun);
        for (size_t t = 0; t < NTABLES; t++)
            for (const struct cli_verb *w = verb_tables[t]; w->noun; w++)
                if (strcmp(w->noun, noun) == 0 && n > 0 && (size_t)n < sizeof err)
                    n += snprintf(err + n, sizeof err - (size_t)n, " %s", w->verb);
    }
    return usage_error(err, NULL);
}

/* Resolves the verb after the global options at argv[at..] and runs it. */
static int dispatch(int argc, char **argv, int at, const struct cli_args *pre) {
    char err[AVA_ERRLEN];
    const char *noun = argv[at];
    if (strcmp(noun, "help") == 0) {
        usage(stdout);
        return 0;
    }
    int used = 0;
    const struct cli_verb *v = find_verb(argc - at, argv + at, &used);
    if (!v && !noun_known(noun)) {
        snprintf(err, sizeof err, "unknown command '%s'", noun);
        return usage_error(err, NULL);
    }
    if (!v)
        return noun_without_verb(noun, at + 1 < argc ? argv[at + 1] : NULL, pre);
    struct cli_args a;
    int rc = cli_args_parse(argc - at - used, argv + at + used, v->opts, &a, err);
    if (rc == 0 && (cli_args_has(&a, "help") || cli_args_has(pre, "help"))) {
        usage_verb(stdout, v);
    } else if (rc == 0 && cli_args_has(&a, "version")) {
        printf("ava %s\n", AVA_VERSION);
    } else if (rc < 0 || check_positionals(v, &a, err) < 0) {
        rc = usage_error(err, v);
    } else {
        rc = run_verb(v, pre, &a);
    }
    cli_args_free(&a);
    return rc;
}

int main(int argc, char **argv) {
    static const struct cli_optspec none[] = {{0}};
    char err[AVA_ERRLEN];
    struct cli_args pre;
    int at = 0, rc;
    if (cli_args_parse_prefix(argc - 1, argv + 1, none, &pre, &at, err) < 0) {
        rc = usage_error(err, NULL);
    } else if (cli_args_has(&pre, "version")) {
        printf("ava %s\n", AVA_VERSION);
        rc = 0;
    } else if (at + 1 >= argc || strcmp(argv[at + 1], "--") == 0) {
        bool help = cli_args_has(&pre, "help");
        usage(help ? stdout : stderr);
        rc = help ? 0 : EXIT_USAGE;
    } else {
        rc = dispatch(argc, argv, at + 1, &pre);
    }
    cli_args_free(&pre);
    return rc;
}
