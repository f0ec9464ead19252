/* args.c: command-line option parsing for the ava verbs (see args.h). */
#include "args.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const struct cli_optspec cli_global_opts[] = {
    {"server", 0, true},  {"token", 0, true},    {"json", 0, false},
    {"help", 'h', false}, {"version", 0, false}, {0},
};

/* Finds a long option (name of length n) in the verb's table, then in the global one. */
static const struct cli_optspec *find_long(const struct cli_optspec *specs, const char *name,
                                           size_t n) {
    const struct cli_optspec *tables[] = {specs, cli_global_opts};
    for (size_t t = 0; t < 2; t++)
        for (const struct cli_optspec *s = tables[t]; s && s->name; s++)
            if (strlen(s->name) == n && strncmp(s->name, name, n) == 0)
                return s;
    return NULL;
}

/* Finds a one-letter option in the verb's table, then in the global one. */
static const struct cli_optspec *find_short(const struct cli_optspec *specs, char c) {
    const struct cli_optspec *tables[] = {specs, cli_global_opts};
    for (size_t t = 0; t < 2; t++)
        for (const struct cli_optspec *s = tables[t]; s && s->name; s++)
            if (s->short_name && s->short_name == c)
                return s;
    return NULL;
}

/* True when a word looks like an option rather than a value ("-f", "--json"), so that
 * "--image --cpu 1" reports the missing image instead of using "--cpu" as one. "-" and
 * negative numbers are values. */
static bool looks_like_option(const char *w) {
    return w[0] == '-' && (w[1] == '-' || isalpha((unsigned char)w[1]));
}

/* Parses one "--name[=value]" word at argv[*i]; advances *i past a separate value. */
static int parse_long(int argc, char *const *argv, int *i, const struct cli_optspec *specs,
                      struct cli_args *out, char *err) {
    const char *word = argv[*i] + 2;
    const char *eq = strchr(word, '=');
    size_t n = eq ? (size_t)(eq - word) : strlen(word);
    const struct cli_optspec *s = find_long(specs, word, n);
    if (!s)
        return ava_err(err, AVA_EINVALID, "unknown option '--%.*s'", (int)n, word);
    const char *value = NULL;
    if (s->takes_value) {
        if (eq) {
            value = eq + 1;
        } else {
            if (*i + 1 >= argc || looks_like_option(argv[*i + 1]))
                return ava_err(err, AVA_EINVALID, "option --%s needs a value", s->name);
            value = argv[++*i];
        }
    } else if (eq) {
        return ava_err(err, AVA_EINVALID, "option --%s takes no value", s->name);
    }
    out->opts[out->nopts++] = (struct cli_optval){s->name, value};
    return 0;
}

/* Parses one "-x", "-xy" or "-xVALUE" word at argv[*i]; advances *i past a separate value. */
static int parse_short(int argc, char *const *argv, int *i, const struct cli_optspec *specs,
                       struct cli_args *out, char *err) {
    const char *word = argv[*i];
    for (const char *c = word + 1; *c; c++) {
        const struct cli_optspec *s = find_short(specs, *c);
        if (!s)
            return ava_err(err, AVA_EINVALID, "unknown option '-%c'", *c);
        if (!s->takes_value) {
            out->opts[out->nopts++] = (struct cli_optval){s->name, NULL};
            continue;
        }
        const char *value = c + 1;
        if (!*value) {
            if (*i + 1 >= argc || looks_like_option(argv[*i + 1]))
                return ava_err(err, AVA_EINVALID, "option -%c needs a value", *c);
            value = argv[++*i];
        }
        out->opts[out->nopts++] = (struct cli_optval){s->name, value};
        break;
    }
    return 0;
}

/* Parses argv into out; with stop_at_word, stops at the first positional word and stores its
 * index in *stop (argc when there is none). */
static int parse(int argc, char *const *argv, const struct cli_optspec *specs, bool stop_at_word,
                 struct cli_args *out, int *stop, char *err) {
    memset(out, 0, sizeof *out);
    size_t cap = argc > 0 ? (size_t)argc : 1;
    out->pos = ava_xcalloc(cap, sizeof *out->pos);
    out->rest = ava_xcalloc(cap, sizeof *out->rest);
    out->opts = ava_xcalloc(cap, sizeof *out->opts);
    if (stop)
        *stop = argc;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        int rc = 0;
        if (strcmp(w, "--") == 0 && !stop_at_word) {
            out->dashdash = true;
            for (i++; i < argc; i++)
                out->rest[out->nrest++] = argv[i];
            break;
        } else if (w[0] == '-' && w[1] == '-' && w[2]) {
            rc = parse_long(argc, argv, &i, specs, out, err);
        } else if (w[0] == '-' && w[1] && w[1] != '-') {
            rc = parse_short(argc, argv, &i, specs, out, err);
        } else if (stop_at_word) {
            *stop = i;
            break;
        } else {
            out->pos[out->npos++] = w;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int cli_args_parse(int argc, char *const *argv, const struct cli_optspec *specs,
                   struct cli_args *out, char *err) {
    return parse(argc, argv, specs, false, out, NULL, err);
}

int cli_args_parse_prefix(int argc, char *const *argv, const struct cli_optspec *specs,
                          struct cli_args *out, int *stop, char *err) {
    return parse(argc, argv, specs, true, out, stop, err);
}

void cli_args_free(struct cli_args *a) {
    if (!a)
        return;
    free(a->pos);
    free(a->rest);
    free(a->opts);
    memset(a, 0, sizeof *a);
}

bool cli_args_has(const struct cli_args *a, const char *name) {
    for (int i = 0; i < a->nopts; i++)
        if (strcmp(a->opts[i].name, name) == 0)
            return true;
    return false;
}

const char *cli_args_get(const struct cli_args *a, const char *name) {
    const char *v = NULL;
    for (int i = 0; i < a->nopts; i++)
        if (strcmp(a->opts[i].name, name) == 0)
            v = a->opts[i].value;
    return v;
}

const char *cli_args_next(const struct cli_args *a, const char *name, int *pos) {
    for (; *pos < a->nopts; (*pos)++)
        if (strcmp(a->opts[*pos].name, name) == 0)
            return a->opts[(*pos)++].value;
    return NULL;
}
