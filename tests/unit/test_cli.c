/* test_cli.c: unit tests of the CLI's pure parts: option parsing, the train create and dataset
 * format bodies, set references and complements, URL encoding, tables, server error messages,
 * endpoint/token discovery, formatting, the progress line, the metric charts and the helpers
 * of train metrics / compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/cli/args.h"
#include "../../src/cli/chart.h"
#include "../../src/cli/cli.h"
#include "../../src/cli/config.h"
#include "../../src/cli/http.h"
#include "../../src/cli/out.h"
#include "../../src/cli/table.h"
#include "../../src/common/buf.h"
#include "../../src/common/err.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Copies a NULL-terminated word list into words (64 slots); returns how many there are. */
static int collect(char **words, va_list ap) {
    int n = 0;
    for (char *w; n < 63 && (w = va_arg(ap, char *));)
        words[n++] = w;
    words[n] = NULL;
    return n;
}

/* Parses a `train create` command line given as a NULL-terminated word list. */
static int create(json_t **body, char *err, ...) {
    char *words[64];
    va_list ap;
    va_start(ap, err);
    int n = collect(words, ap);
    va_end(ap);
    err[0] = '\0';
    return cli_train_create_parse(n, words, body, err);
}

/* Parses a `dataset format` command line given as a NULL-terminated word list. */
static int format(json_t **body, char *err, ...) {
    char *words[64];
    va_list ap;
    va_start(ap, err);
    int n = collect(words, ap);
    va_end(ap);
    err[0] = '\0';
    return cli_dataset_format_parse(n, words, body, err);
}

/* Asserts that body, serialised compactly with sorted keys, equals want. */
static void assert_json(const json_t *body, const char *want) {
    char *got = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(got, want);
    free(got);
}

static void test_create_minimal(void **state) {
    char err[AVA_ERRLEN];
    json_t *b;
    assert_int_equal(create(&b, err, "hello", "--image", "ava-pure:host", "--cpu", "1", NULL), 0);
    assert_json(b, "{\"cpus\":1,\"image\":\"ava-pure:host\",\"name\":\"hello\"}");
    json_decref(b);
    assert_int_equal(create(&b, err, "--gpu=2", "hello", "--image=ava-pure:host", NULL), 0);
    assert_json(b, "{\"gpus\":2,\"image\":\"ava-pure:host\",\"name\":\"hello\"}");
    json_decref(b);
}

static void test_create_full(void **state) {
    char err[AVA_ERRLEN];
    json_t *b;
    int rc =
        create(&b, err, "mnist", "--image", "ava-examples:c", "--gpu", "2", "--mem", "8G",
               "--max-runtime", "3s", "--entry", "/bin/sh", "--env", "A=1", "--env", "B=x=y",
               "--env", "A=2", "--train", "fm/recordio/80", "--val", "fm/recordio/20", "--desc",
               "a test", "--no-start", "--json", "--", "-c", "echo hi", "--cpu", NULL);
    assert_int_equal(rc, 0);
    assert_json(b, "{\"args\":[\"-c\",\"echo hi\",\"--cpu\"],\"description\":\"a test\","
                   "\"entry\":\"/bin/sh\",\"env\":{\"A\":\"2\",\"B\":\"x=y\"},\"gpus\":2,"
                   "\"image\":\"ava-examples:c\",\"max_runtime_ms\":3000,"
                   "\"mem_bytes\":8589934592,\"name\":\"mnist\",\"start\":false,"
                   "\"train\":\"fm/recordio/80\",\"val\":\"fm/recordio/20\"}");
    json_decref(b);
}

static void test_create_args(void **state) {
    char err[AVA_ERRLEN];
    json_t *b;
    /* an empty "--" still sends an empty args array; durations of several parts add up */
    assert_int_equal(
        create(&b, err, "t", "--image", "i:t", "--cpu", "4", "--max-runtime", "72h", "--", NULL),
        0);
    assert_json(b, "{\"args\":[],\"cpus\":4,\"image\":\"i:t\",\"max_runtime_ms\":259200000,"
                   "\"name\":\"t\"}");
    json_decref(b);
    assert_int_equal(create(&b, err, "t", "--image", "i:t", "--cpu", "1", "--mem", "512M",
                            "--max-runtime", "1h30m", NULL),
                     0);
    assert_int_equal(json_integer_value(json_object_get(b, "mem_bytes")), 512 << 20);
    assert_int_equal(json_integer_value(json_object_get(b, "max_runtime_ms")), 5400000);
    json_decref(b);
}

/* Asserts that a create command line is refused as a usage error whose message holds want. */
#define assert_create_bad(want, ...)                                                               \
    do {                                                                                           \
        char err_[AVA_ERRLEN];                                                                     \
        json_t *b_ = (json_t *)1;                                                                  \
        assert_int_equal(create(&b_, err_, __VA_ARGS__, NULL), AVA_EINVALID);                      \
        assert_null(b_);                                                                           \
        if (!strstr(err_, want))                                                                   \
            fail_msg("message '%s' lacks '%s'", err_, want);                                       \
    } while (0)

static void test_create_bad(void **state) {
    assert_create_bad("not both", "t", "--image", "i:t", "--cpu", "1", "--gpu", "1");
    assert_create_bad("--cpu N", "t", "--image", "i:t");
    assert_create_bad("not a size", "t", "--image", "i:t", "--cpu", "1", "--mem", "8X");
    assert_create_bad("not a duration", "t", "--image", "i:t", "--cpu", "1", "--max-runtime", "3q");
    assert_create_bad("longer than 0", "t", "--image", "i:t", "--cpu", "1", "--max-runtime", "0s");
    assert_create_bad("not a valid training name", "bad name", "--image", "i:t", "--cpu", "1");
    assert_create_bad("not a valid training name", "..", "--image", "i:t", "--cpu", "1");
    assert_create_bad("not a valid training name", "al/ice", "--image", "i:t", "--cpu", "1");
    assert_create_bad("KEY=VALUE", "t", "--image", "i:t", "--cpu", "1", "--env", "FOO");
    assert_create_bad("KEY=VALUE", "t", "--image", "i:t", "--cpu", "1", "--env", "=x");
    assert_create_bad("--image needs a value", "t", "--cpu", "1", "--image");
    assert_create_bad("--image needs a value", "t", "--image", "--cpu", "1");
    assert_create_bad("--cpu needs a value", "t", "--image", "i:t", "--cpu");
    assert_create_bad("unknown option '--bogus'", "t", "--image", "i:t", "--cpu", "1", "--bogus");
    assert_create_bad("unknown option '-x'", "t", "-x");
    assert_create_bad("--no-start takes no value", "t", "--no-start=1");
    assert_create_bad("missing the training NAME", "--image", "i:t", "--cpu", "1");
    assert_create_bad("unexpected argument 'extra'", "t", "extra", "--image", "i:t", "--cpu", "1");
    assert_create_bad("missing --image", "t", "--cpu", "1");
    assert_create_bad("not an image reference", "t", "--image", "notag", "--cpu", "1");
    assert_create_bad("positive whole number", "t", "--image", "i:t", "--cpu", "0");
    assert_create_bad("positive whole number", "t", "--image", "i:t", "--gpu", "two");
    assert_create_bad("not valid UTF-8", "t", "--image", "i:t", "--cpu", "1", "--desc", "\xff");
    assert_create_bad("not valid UTF-8", "t", "--image", "i:t", "--cpu", "1", "--env", "K=\xc3");
    assert_create_bad("not valid UTF-8", "t", "--image", "i:t", "--cpu", "1", "--", "\xfe");
    assert_create_bad("absolute path", "t", "--image", "i:t", "--cpu", "1", "--entry", "run.sh");
}

static void test_create_val(void **state) {
    char err[AVA_ERRLEN];
    json_t *b;
    /* --no-val sends nothing: the server runs without a validation set */
    assert_int_equal(create(&b, err, "t", "--image", "i:t", "--cpu", "1", "--train", "fm/raw/80",
                            "--no-val", NULL),
                     0);
    assert_json(b, "{\"cpus\":1,\"image\":\"i:t\",\"name\":\"t\",\"train\":\"fm/raw/80\"}");
    json_decref(b);
    assert_create_bad("not both", "t", "--image", "i:t", "--cpu", "1", "--val", "fm/raw/20",
                      "--no-val");
}

/* Asserts that a dataset format command line gives the body want (compact, sorted keys). */
#define assert_format_ok(want, ...)                                                                \
    do {                                                                                           \
        char err_[AVA_ERRLEN];                                                                     \
        json_t *b_;                                                                                \
        if (format(&b_, err_, __VA_ARGS__, NULL) != 0)                                             \
            fail_msg("refused: %s", err_);                                                         \
        assert_json(b_, want);                                                                     \
        json_decref(b_);                                                                           \
    } while (0)

static void test_format_body(void **state) {
    assert_format_ok("{\"format\":\"recordio\",\"split\":80}", "fashion-mnist", "--format",
                     "recordio", "--split", "80");
    assert_format_ok("{\"format\":\"lmdb\",\"split\":100}", "--split=100", "fm", "--format=lmdb");
    assert_format_ok("{\"encoding\":\"jpeg\",\"format\":\"raw\",\"quality\":1,\"resize\":0,"
                     "\"seed\":42,\"split\":1,\"stratified\":true,\"threads\":256}",
                     "fm", "--format", "raw", "--split", "1", "--seed", "42", "--encoding", "jpeg",
                     "--quality", "1", "--resize", "0", "--stratified", "--threads", "256");
    assert_format_ok("{\"encoding\":\"png\",\"format\":\"recordio\",\"im2rec_compatible\":true,"
                     "\"quality\":100,\"resize\":65535,\"seed\":9223372036854775807,"
                     "\"split\":99,\"threads\":0}",
                     "fm", "--format", "recordio", "--split", "99", "--im2rec-compatible",
                     "--encoding", "png", "--quality", "100", "--resize", "65535", "--threads", "0",
                     "--seed", "9223372036854775807", "--no-wait", "--json");
    assert_format_ok("{\"encoding\":\"raw\",\"format\":\"lmdb\",\"split\":50}", "fm", "--format",
                     "lmdb", "--split", "50", "--encoding", "raw");
}

/* Asserts that a dataset format command line is refused with a message holding want. */
#define assert_format_bad(want, ...)                                                               \
    do {                                                                                           \
        char err_[AVA_ERRLEN];                                                                     \
        json_t *b_ = (json_t *)1;                                                                  \
        assert_int_equal(format(&b_, err_, __VA_ARGS__, NULL), AVA_EINVALID);                      \
        assert_null(b_);                                                                           \
        if (!strstr(err_, want))                                                                   \
            fail_msg("message '%s' lacks '%s'", err_, want);                                       \
    } while (0)

static void test_format_bad(void **state) {
    assert_format_bad("missing --format", "fm", "--split", "80");
    assert_format_bad("missing --split", "fm", "--format", "recordio");
    assert_format_bad("--split needs a whole number from 1 to 100", "fm", "--format", "raw",
                      "--split", "0");
    assert_format_bad("from 1 to 100, not '101'", "fm", "--format", "raw", "--split", "101");
    assert_format_bad("not 'x'", "fm", "--format", "raw", "--split", "x");
    assert_format_bad("not '-5'", "fm", "--format", "raw", "--split", "-5");
    assert_format_bad("not '80%'", "fm", "--format", "raw", "--split", "80%");
    assert_format_bad("--quality needs a whole number from 1 to 100, not '0'", "fm", "--format",
                      "raw", "--split", "80", "--quality", "0");
    assert_format_bad("not '101'", "fm", "--format", "raw", "--split", "80", "--quality", "101");
    assert_format_bad("not both", "fm", "--format", "raw", "--split", "80", "--stratified",
                      "--im2rec-compatible");
    assert_format_bad("--format must be recordio, lmdb or raw, not 'tfrecord'", "fm", "--format",
                      "tfrecord", "--split", "80");
    assert_format_bad("--encoding must be jpeg, png or raw", "fm", "--format", "raw", "--split",
                      "80", "--encoding", "webp");
    assert_format_bad("--resize", "fm", "--format", "raw", "--split", "80", "--resize", "65536");
    assert_format_bad("--threads", "fm", "--format", "raw", "--split", "80", "--threads", "257");
    assert_format_bad("--seed", "fm", "--format", "raw", "--split", "80", "--seed",
                      "9223372036854775808");
    assert_format_bad("missing the dataset NAME", "--format", "raw", "--split", "80");
    assert_format_bad("unexpected argument 'x'", "fm", "x", "--format", "raw", "--split", "80");
    assert_format_bad("not a valid dataset name", "fm/raw/80", "--format", "raw", "--split", "80");
    assert_format_bad("--split needs a value", "fm", "--format", "raw", "--split");
    assert_format_bad("--stratified takes no value", "fm", "--stratified=yes");
    assert_format_bad("unknown option '--val'", "fm", "--val", "x");
}

static void test_set_ref(void **state) {
    struct cli_set_ref r;
    char err[AVA_ERRLEN];
    assert_int_equal(cli_set_ref_parse("fashion-mnist/recordio/80", &r, err), 0);
    assert_string_equal(r.dataset, "fashion-mnist");
    assert_string_equal(r.format, "recordio");
    assert_int_equal(r.percent, 80);
    assert_int_equal(cli_set_ref_parse("a/b/100", &r, NULL), 0);
    assert_int_equal(r.percent, 100);
    assert_int_equal(cli_set_ref_parse("a/b/1", &r, NULL), 0);
    static const char *const bad[] = {
        "fm",         "fm/raw",     "fm/raw/",    "fm/raw/0",
        "fm/raw/101", "fm/raw/080", "fm/raw/8x",  "fm/raw/-1",
        "/raw/80",    "fm//80",     "fm/raw/80/", "a b/raw/80",
        "fm/r w/80",  "../raw/80",  "fm/../80",   "fm/raw/99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (cli_set_ref_parse(bad[i], &r, err) != AVA_EINVALID)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(strstr(err, "DATASET/FORMAT/PERCENT"));
    }
    char name[80];
    memset(name, 'a', 65);
    strcpy(name + 65, "/raw/80");
    assert_int_equal(cli_set_ref_parse(name, &r, NULL), AVA_EINVALID);
}

/* A dataset as GET /datasets/fm answers: recordio 80/20, lmdb 70 whose 30 was removed, raw 100. */
static json_t *sample_dataset(void) {
    return json_pack("{s:s, s:[{s:s, s:s, s:i, s:i}, {s:s, s:s, s:i, s:i}, {s:s, s:s, s:i, s:i},"
                     " {s:s, s:s, s:i, s:n}]}",
                     "name", "fm", "sets", "ref", "fm/recordio/80", "format", "recordio", "percent",
                     80, "complement", 20, "ref", "fm/recordio/20", "format", "recordio", "percent",
                     20, "complement", 80, "ref", "fm/lmdb/70", "format", "lmdb", "percent", 70,
                     "complement", 30, "ref", "fm/raw/100", "format", "raw", "percent", 100,
                     "complement");
}

static void test_complement(void **state) {
    json_t *d = sample_dataset();
    char *c = cli_dataset_complement(d, "fm/recordio/80");
    assert_string_equal(c, "fm/recordio/20");
    free(c);
    c = cli_dataset_complement(d, "fm/recordio/20");
    assert_string_equal(c, "fm/recordio/80");
    free(c);
    assert_null(cli_dataset_complement(d, "fm/lmdb/70"));     /* its complement is gone */
    assert_null(cli_dataset_complement(d, "fm/raw/100"));     /* no complement */
    assert_null(cli_dataset_complement(d, "fm/recordio/70")); /* no such set */
    assert_null(cli_dataset_complement(d, "fm/raw/80"));
    assert_null(cli_dataset_complement(d, "other/recordio/80")); /* another dataset */
    assert_null(cli_dataset_complement(d, "fm/recordio"));
    assert_null(cli_dataset_complement(d, "fm/recordio/080"));
    assert_null(cli_dataset_complement(d, "fm/recordio/80/x"));
    assert_null(cli_dataset_complement(d, ""));
    assert_null(cli_dataset_complement(d, NULL));
    assert_null(cli_dataset_complement(NULL, "fm/recordio/80"));
    json_decref(d);
    /* a complement that is the set itself, or of the wrong type, is ignored */
    d = json_pack("{s:s, s:[{s:s, s:i, s:i}, {s:s, s:i, s:s}]}", "name", "x", "sets", "format",
                  "raw", "percent", 50, "complement", 50, "format", "raw", "percent", 60,
                  "complement", "40");
    assert_null(cli_dataset_complement(d, "x/raw/50"));
    assert_null(cli_dataset_complement(d, "x/raw/60"));
    json_decref(d);
}

static void test_dataset_paths(void **state) {
    char err[AVA_ERRLEN], *p;
    assert_int_equal(cli_dataset_rm_path("fashion-mnist", &p, err), 0);
    assert_string_equal(p, "/datasets/fashion-mnist");
    free(p);
    assert_int_equal(cli_dataset_rm_path("fashion-mnist/recordio/80", &p, err), 0);
    assert_string_equal(p, "/datasets/fashion-mnist/sets/recordio/80");
    free(p);
    assert_int_equal(cli_dataset_rm_path("a.b_c/lmdb/100", &p, err), 0);
    assert_string_equal(p, "/datasets/a.b_c/sets/lmdb/100");
    free(p);
    static const char *const bad[] = {
        "a b", "..", "fm/raw", "fm/raw/0", "fm/raw/x", "fm/ra w/80", "fm/raw/80/1", "fm%2Fraw", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = (char *)1;
        if (cli_dataset_rm_path(bad[i], &p, err) != AVA_EINVALID)
            fail_msg("'%s' was accepted", bad[i]);
        assert_null(p);
    }
    /* the path builder encodes whatever it is given */
    p = cli_dataset_path("a b/c", "/format");
    assert_string_equal(p, "/datasets/a%20b%2Fc/format");
    free(p);
    p = cli_dataset_path("fm", NULL);
    assert_string_equal(p, "/datasets/fm");
    free(p);
}

static void test_progress(void **state) {
    char line[256];
    cli_progress_render(36400, 70000, 12000, 52, line, sizeof line);
    assert_string_equal(line, "[#########.........] 52%  36400/70000  12000/s");
    /* the bar keeps its length whatever the numbers: room is left for 100% and a rate */
    cli_progress_render(700, 70000, -1, 52, line, sizeof line);
    assert_string_equal(line, "[..................] 1%  700/70000");
    /* the line stays under the width; the bar is capped at 50 cells */
    cli_progress_render(36400, 70000, 12000, 80, line, sizeof line);
    assert_int_equal(strlen(line), 2 + 46 + 26);
    cli_progress_render(0, 70000, -1, 200, line, sizeof line);
    assert_string_equal(line, "[.................................................."
                              "] 0%  0/70000");
    cli_progress_render(70000, 70000, 11999.6, 0, line, sizeof line);
    assert_string_equal(line, "[##############################################"
                              "] 100%  70000/70000  12000/s");
    /* done beyond total or negative is clamped */
    cli_progress_render(80000, 70000, -1, 50, line, sizeof line);
    assert_string_equal(line, "[################] 100%  70000/70000");
    cli_progress_render(-3, 10, -1, 40, line, sizeof line);
    assert_string_equal(line, "[............] 0%  0/10");
    /* a total not known yet */
    cli_progress_render(1234, 0, 99.4, 40, line, sizeof line);
    assert_string_equal(line, "[..............] 1234 done  99/s");
    /* too narrow for a bar: the text alone; a small buffer truncates safely */
    cli_progress_render(5, 10, 1, 20, line, sizeof line);
    assert_string_equal(line, "50%  5/10  1/s");
    cli_progress_render(36400, 70000, 12000, 52, line, 8);
    assert_string_equal(line, "[######");
    /* huge counts do not overflow */
    cli_progress_render(INT64_MAX / 2, INT64_MAX, -1, 0, line, sizeof line);
    assert_non_null(strstr(line, "] 49%  4611686018427387903/9223372036854775807"));
}

static void test_args_parser(void **state) {
    static const struct cli_optspec specs[] = {
        {"follow", 'f', false}, {"run", 0, true}, {"env", 'e', true}, {0}};
    char *argv[] = {"NAME", "-f",      "--run=3", "-eA=1", "-e", "B=2", "--json",
                    "-",    "--token", "tok",     "--",    "-f", "x",   NULL};
    struct cli_args a;
    char err[AVA_ERRLEN];
    assert_int_equal(cli_args_parse(13, argv, specs, &a, err), 0);
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "NAME");
    assert_string_equal(a.pos[1], "-");
    assert_true(a.dashdash);
    assert_int_equal(a.nrest, 2);
    assert_string_equal(a.rest[0], "-f");
    assert_true(cli_args_has(&a, "follow"));
    assert_true(cli_args_has(&a, "json"));
    assert_false(cli_args_has(&a, "all"));
    assert_string_equal(cli_args_get(&a, "run"), "3");
    assert_string_equal(cli_args_get(&a, "token"), "tok");
    int pos = 0;
    assert_string_equal(cli_args_next(&a, "env", &pos), "A=1");
    assert_string_equal(cli_args_next(&a, "env", &pos), "B=2");
    assert_null(cli_args_next(&a, "env", &pos));
    cli_args_free(&a);

    /* the global options before the verb stop at the verb */
    char *pre_argv[] = {"--server", "http://h:1", "--json", "train", "list", "--help", NULL};
    int stop = -1;
    assert_int_equal(cli_args_parse_prefix(6, pre_argv, specs, &a, &stop, err), 0);
    assert_int_equal(stop, 3);
    assert_string_equal(cli_args_get(&a, "server"), "http://h:1");
    assert_true(cli_args_has(&a, "json"));
    assert_false(cli_args_has(&a, "help"));
    cli_args_free(&a);

    char *bad[] = {"--server", NULL};
    assert_int_equal(cli_args_parse_prefix(1, bad, specs, &a, &stop, err), AVA_EINVALID);
    assert_string_equal(err, "option --server needs a value");
    cli_args_free(&a);
}

static void test_url_encode(void **state) {
    char *s = cli_url_encode("alice/hello");
    assert_string_equal(s, "alice%2Fhello");
    free(s);
    s = cli_url_encode("Az09._~-");
    assert_string_equal(s, "Az09._~-");
    free(s);
    s = cli_url_encode("a b:c?d%\xc3\xa9");
    assert_string_equal(s, "a%20b%3Ac%3Fd%25%C3%A9");
    free(s);
    s = cli_training_path("alice/hello", "/logs?follow=1");
    assert_string_equal(s, "/trainings/alice%2Fhello/logs?follow=1");
    free(s);
    s = cli_training_path("hello", NULL);
    assert_string_equal(s, "/trainings/hello");
    free(s);
}

static void test_table(void **state) {
    static const char *const hdr[] = {"NAME", "STATE", "RUN"};
    struct cli_table *t = cli_table_new(3, hdr);
    cli_table_add(t, "hello");
    cli_table_add(t, "running");
    cli_table_addf(t, "%d", 12);
    cli_table_add(t, "a");
    cli_table_add(t, NULL);
    cli_table_add(t, "");
    cli_table_add(t, "caf\xc3\xa9-long-name"); /* 14 characters in 15 bytes */
    cli_table_add(t, "two\nlines");
    cli_table_add(t, "1");
    cli_table_add(t, "incomplete row is not shown");
    assert_int_equal(cli_table_rows(t), 3);
    char *s = cli_table_render(t);
    assert_string_equal(s, "NAME            STATE      RUN\n"
                           "hello           running    12\n"
                           "a               -          -\n"
                           "caf\xc3\xa9-long-name  two lines  1\n");
    free(s);
    cli_table_free(t);

    t = cli_table_new(2, hdr);
    s = cli_table_render(t);
    assert_string_equal(s, "NAME  STATE\n");
    free(s);
    cli_table_free(t);
    cli_table_free(NULL);
}

static void test_error_message(void **state) {
    char msg[AVA_ERRLEN];
    const char *body = "{\"error\": {\"code\": \"not_found\", \"message\": \"no training hello\"}}";
    cli_http_error_message(404, body, strlen(body), msg, sizeof msg);
    assert_string_equal(msg, "no training hello");

    body = "{\"error\": {\"code\": \"conflict\", \"message\": \"two\\nlines\"}}";
    cli_http_error_message(409, body, strlen(body), msg, sizeof msg);
    assert_string_equal(msg, "two lines");

    body = "<html><body>Bad Gateway</body></html>";
    cli_http_error_message(502, body, strlen(body), msg, sizeof msg);
    assert_string_equal(msg, "the server answered HTTP 502 Bad Gateway");

    body = "{\"error\": {\"code\": \"cannot_fit\"}}";
    cli_http_error_message(422, body, strlen(body), msg, sizeof msg);
    assert_string_equal(msg, "the server answered HTTP 422 Unprocessable Entity (cannot_fit)");

    body = "{\"error\": \"flat string\"}";
    cli_http_error_message(500, body, strlen(body), msg, sizeof msg);
    assert_string_equal(msg, "the server answered HTTP 500 Internal Server Error");

    body = "[1, 2]";
    cli_http_error_message(418, body, strlen(body), msg, sizeof msg);
    assert_string_equal(msg, "the server answered HTTP 418");

    cli_http_error_message(503, NULL, 0, msg, sizeof msg);
    assert_string_equal(msg, "the server answered HTTP 503 Service Unavailable");

    body = "{\"error\": {\"message\": \"\"}}";
    cli_http_error_message(400, body, strlen(body), msg, sizeof msg);
    assert_string_equal(msg, "the server answered HTTP 400 Bad Request");

    assert_int_equal(cli_http_status_code(404), AVA_ENOTFOUND);
    assert_int_equal(cli_http_status_code(409), AVA_ECONFLICT);
    assert_int_equal(cli_http_status_code(200), 0);
    assert_int_equal(cli_http_status_code(599), AVA_EINTERNAL);
}

/* Writes text into dir/name. */
static void write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_config_files(void **state) {
    char dir[] = "/tmp/ava-test-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[AVA_ERRLEN];
    struct cli_config c;

    /* nothing anywhere: the default server, no token */
    assert_int_equal(cli_config_resolve(NULL, NULL, NULL, NULL, dir, &c, err), 0);
    assert_string_equal(c.server, CLI_DEFAULT_SERVER);
    assert_string_equal(c.server_source, "default");
    assert_null(c.token);
    cli_config_free(&c);

    /* the files avad writes, with their newlines */
    write_file(dir, "endpoint", "http://127.0.0.1:18080\n");
    write_file(dir, "admin.token", "ava_secret\n");
    assert_int_equal(cli_config_resolve(NULL, NULL, "", "", dir, &c, err), 0);
    assert_string_equal(c.server, "http://127.0.0.1:18080");
    assert_true(strstr(c.server_source, "/endpoint") != NULL);
    assert_string_equal(c.token, "ava_secret");
    cli_config_free(&c);

    /* the environment beats the files, the options beat the environment */
    assert_int_equal(cli_config_resolve(NULL, NULL, "http://env:1/", "envtok", dir, &c, err), 0);
    assert_string_equal(c.server, "http://env:1");
    assert_string_equal(c.server_source, "AVA_SERVER");
    assert_string_equal(c.token, "envtok");
    cli_config_free(&c);
    assert_int_equal(cli_config_resolve("opt:2", "opttok", "http://env:1", "envtok", dir, &c, err),
                     0);
    assert_string_equal(c.server, "http://opt:2");
    assert_string_equal(c.token, "opttok");
    cli_config_free(&c);

    /* an empty endpoint file means the default; blanks around the token go */
    write_file(dir, "endpoint", "\n");
    write_file(dir, "admin.token", "  ava_x \r\n");
    assert_int_equal(cli_config_resolve(NULL, NULL, NULL, NULL, dir, &c, err), 0);
    assert_string_equal(c.server, CLI_DEFAULT_SERVER);
    assert_string_equal(c.token, "ava_x");
    cli_config_free(&c);

    /* an unreadable token file is skipped (root reads it anyway) */
    char path[512];
    snprintf(path, sizeof path, "%s/admin.token", dir);
    chmod(path, 0);
    assert_int_equal(cli_config_resolve(NULL, NULL, NULL, NULL, dir, &c, err), 0);
    if (geteuid() != 0)
        assert_null(c.token);
    cli_config_free(&c);

    unlink(path);
    snprintf(path, sizeof path, "%s/endpoint", dir);
    unlink(path);
    rmdir(dir);
}

static void test_config_bad(void **state) {
    char err[AVA_ERRLEN];
    struct cli_config c;
    assert_int_equal(cli_config_resolve("ftp://x", NULL, NULL, NULL, "/nonexistent", &c, err),
                     AVA_EINVALID);
    assert_non_null(strstr(err, "not a server URL"));
    cli_config_free(&c);
    assert_int_equal(cli_config_resolve("http://", NULL, NULL, NULL, "/nonexistent", &c, err),
                     AVA_EINVALID);
    cli_config_free(&c);
    assert_int_equal(
        cli_config_resolve("http://h:1", "a\r\nX-Evil: 1", NULL, NULL, "/nonexistent", &c, err),
        AVA_EINVALID);
    cli_config_free(&c);
    cli_config_free(NULL);
}

static void test_time(void **state) {
    int64_t ms;
    assert_int_equal(cli_time_parse("2026-11-26T04:30:00.123Z", &ms), 0);
    assert_int_equal(ms, INT64_C(1795667400123));
    assert_int_equal(cli_time_parse("2026-11-26T05:30:00+01:00", &ms), 0);
    assert_int_equal(ms, INT64_C(1795667400000));
    assert_int_equal(cli_time_parse("2026-11-26T04:30:00.5Z", &ms), 0);
    assert_int_equal(ms, INT64_C(1795667400500));
    assert_int_equal(cli_time_parse("2026-11-26", &ms), -1);
    assert_int_equal(cli_time_parse("2026-11-26T04:30:00.123", &ms), -1);
    assert_int_equal(cli_time_parse(NULL, &ms), -1);

    char buf[64];
    setenv("TZ", "UTC", 1);
    tzset();
    cli_format_local_time("2026-11-26T04:30:01.999Z", buf, sizeof buf);
    assert_string_equal(buf, "2026-11-26 04:30:01");
    setenv("TZ", "Asia/Shanghai", 1); /* UTC+8 without DST; UTC if tzdata is absent */
    tzset();
    cli_format_local_time("2026-11-26T04:30:01.999Z", buf, sizeof buf);
    assert_true(strcmp(buf, "2026-11-26 12:30:01") == 0 || strcmp(buf, "2026-11-26 04:30:01") == 0);
    cli_format_local_time(NULL, buf, sizeof buf);
    assert_string_equal(buf, "-");
    cli_format_local_time("garbage", buf, sizeof buf);
    assert_string_equal(buf, "garbage");

    cli_format_span("2026-11-26T04:30:00.000Z", "2026-11-26T05:31:05.700Z", buf, sizeof buf);
    assert_string_equal(buf, "1h1m5s");
    cli_format_span("2026-11-26T04:30:00.000Z", "2026-11-26T04:30:00.250Z", buf, sizeof buf);
    assert_string_equal(buf, "250ms");
    cli_format_span(NULL, NULL, buf, sizeof buf);
    assert_string_equal(buf, "-");
}

static void test_formatting(void **state) {
    char buf[64];
    cli_format_resources(2, 0, INT64_C(8) << 30, buf, sizeof buf);
    assert_string_equal(buf, "2 GPUs, 8G");
    cli_format_resources(0, 1, 0, buf, sizeof buf);
    assert_string_equal(buf, "1 CPU");

    json_t *args = json_pack("[s, s, s]", "-c", "echo 'hi' there", "");
    char *cmd = cli_format_command("/bin/sh", args);
    assert_string_equal(cmd, "/bin/sh -c 'echo '\\''hi'\\'' there' ''");
    free(cmd);
    cmd = cli_format_command(NULL, NULL);
    assert_string_equal(cmd, "");
    free(cmd);
    json_decref(args);

    json_t *gpus = json_pack("[i, i]", 0, 3);
    cli_format_int_list(gpus, buf, sizeof buf);
    assert_string_equal(buf, "0,3");
    json_decref(gpus);
    cli_format_int_list(NULL, buf, sizeof buf);
    assert_string_equal(buf, "-");
}

/* Renders one series (label "s") of n points with the given style. */
static char *chart1(const double *x, const double *y, size_t n, int width, int height, bool utf8) {
    struct cli_chart_series s = {"s", x, y, n};
    struct cli_chart_style st = {width, height, utf8, false};
    return cli_chart_render(&s, 1, &st);
}

static void test_chart_ascii(void **state) {
    /* a tent over 5 points in a 20x5 ASCII chart: joined by straight lines */
    static const double x[] = {0, 10, 20, 30, 40}, y[] = {0, 2, 4, 2, 0};
    char *c = chart1(x, y, 5, 20, 5, false);
    assert_string_equal(c, "4 |       **\n"
                           "  |     **  **\n"
                           "2 |   **      **\n"
                           "  | **          **\n"
                           "0 |*              **\n"
                           "  +-----------------\n"
                           "   0              40\n");
    free(c);

    /* two series: one marker each, and a legend */
    static const double y2[] = {4, 4, 4, 4, 4};
    struct cli_chart_series s[] = {{"a", x, y, 5}, {"b", x, y2, 5}};
    struct cli_chart_style st = {20, 5, false, false};
    c = cli_chart_render(s, 2, &st);
    assert_string_equal(c, "4 |+++++++++++++++++\n"
                           "  |     **  **\n"
                           "2 |   **      **\n"
                           "  | **          **\n"
                           "0 |*              **\n"
                           "  +-----------------\n"
                           "   0              40\n"
                           "   * a  + b\n");
    free(c);
    /* UTF-8 without colours: still ASCII markers for several series, box-drawing axes */
    st.utf8 = true;
    c = cli_chart_render(s, 2, &st);
    assert_non_null(strstr(c, "4 ┤+++"));
    assert_null(strstr(c, "\xe2\xa0")); /* no braille (U+2800..U+283F) */
    free(c);
    /* with colours: braille, each series in its colour */
    st.color = true;
    c = cli_chart_render(s, 2, &st);
    assert_non_null(strstr(c, "\033[36m"));
    assert_non_null(strstr(c, "\033[33m⣿\033[0m b"));
    free(c);
}

static void test_chart_braille(void **state) {
    /* a diagonal over 16x8 cells = 32x32 dots: two dots per cell, a cell pair per row */
    static const double x[] = {0, 1}, y[] = {0, 8};
    char *c = chart1(x, y, 2, 19, 8, true);
    struct ava_buf want = {0};
    for (int r = 0; r < 8; r++)
        ava_buf_printf(&want, "%s%*s⡠⠊\n",
                       r == 0   ? "8 ┤"
                       : r == 4 ? "4 ┤"
                       : r == 7 ? "0 ┤"
                                : "  │",
                       14 - 2 * r, "");
    ava_buf_puts(&want, "  └────────────────\n"
                        "   0              1\n");
    assert_string_equal(c, want.data);
    ava_buf_free(&want);
    free(c);
}

static void test_chart_edges(void **state) {
    /* nothing to draw */
    char *c = chart1(NULL, NULL, 0, 20, 5, true);
    assert_string_equal(c, "(no points)\n");
    free(c);
    struct cli_chart_style st = {72, 12, true, false};
    c = cli_chart_render(NULL, 0, &st);
    assert_string_equal(c, "(no points)\n");
    free(c);
    static const double nx[] = {1, 2}, ny[] = {NAN, INFINITY};
    c = chart1(nx, ny, 2, 20, 5, false);
    assert_string_equal(c, "(no points)\n");
    free(c);

    /* a single point: the middle row, its y range widened, one x label */
    static const double x1[] = {5}, y1[] = {3};
    c = chart1(x1, y1, 1, 20, 5, false);
    assert_string_equal(c, "3.3 |\n"
                           "    |\n"
                           "  3 |*\n"
                           "    |\n"
                           "2.7 |\n"
                           "    +---------------\n"
                           "     5\n");
    free(c);

    /* constant zero: no division by zero, the line on the middle row */
    static const double x3[] = {0, 1, 2}, y3[] = {0, 0, 0};
    c = chart1(x3, y3, 3, 20, 5, false);
    assert_string_equal(c, " 1 |\n"
                           "   |\n"
                           " 0 |****************\n"
                           "   |\n"
                           "-1 |\n"
                           "   +----------------\n"
                           "    0              2\n");
    free(c);
}

static void test_chart_nan_free(void **state) {
    /* points that are not finite are skipped; the others are joined */
    static const double x[] = {0, 1, 2, 3}, y[] = {1, NAN, INFINITY, 2};
    char *c = chart1(x, y, 4, 20, 5, false);
    assert_null(strstr(c, "nan"));
    assert_null(strstr(c, "inf"));
    assert_string_equal(c, "  2 |             **\n"
                           "    |         ****\n"
                           "1.5 |      ***\n"
                           "    |  ****\n"
                           "  1 |**\n"
                           "    +---------------\n"
                           "     0             3\n");
    free(c);
    /* a range too wide for a double still maps */
    static const double hx[] = {-1e308, 1e308}, hy[] = {-1e308, 1e308};
    c = chart1(hx, hy, 2, 30, 5, true);
    assert_null(strstr(c, "nan"));
    assert_null(strstr(c, "inf"));
    assert_non_null(strstr(c, "1e+308 ┤"));
    assert_non_null(strstr(c, "-1e+308 ┤"));
    free(c);
    /* long labels lose digits until they fit 8 columns */
    static const double ly[] = {123456789, 123456790};
    c = chart1(hx, ly, 2, 30, 5, false);
    assert_non_null(strstr(c, "1.23e+08 |"));
    free(c);
}

/* The number of lines of s and the widest one in characters (UTF-8). */
static int line_stats(const char *s, int *widest) {
    int lines = 0, w = 0;
    *widest = 0;
    for (; *s; s++) {
        if (*s == '\n') {
            lines++;
            w = 0;
        } else if (((unsigned char)*s & 0xC0) != 0x80 && ++w > *widest) {
            *widest = w;
        }
    }
    return lines;
}

static void test_chart_limits(void **state) {
    static const double x[] = {0, 1000}, y[] = {0.5, 0.003};
    int widest;
    /* too small: clamped to 16 columns and 3 rows */
    char *c = chart1(x, y, 2, 1, 1, true);
    assert_int_equal(line_stats(c, &widest), CLI_CHART_MIN_HEIGHT + 2);
    assert_true(widest <= CLI_CHART_MIN_WIDTH);
    free(c);
    /* too large: clamped; the x axis spans the width */
    c = chart1(x, y, 2, 100000, 100000, false);
    assert_int_equal(line_stats(c, &widest), CLI_CHART_MAX_HEIGHT + 2);
    assert_int_equal(widest, CLI_CHART_MAX_WIDTH);
    free(c);
    /* the usual size: 12 rows, no line wider than asked */
    c = chart1(x, y, 2, 72, CLI_CHART_HEIGHT, true);
    assert_int_equal(line_stats(c, &widest), 14);
    assert_int_equal(widest, 72);
    free(c);

    /* the width from $COLUMNS, the terminal, or the default */
    assert_int_equal(cli_chart_width("100", 80), 100);
    assert_int_equal(cli_chart_width(NULL, 80), 80);
    assert_int_equal(cli_chart_width("", 0), CLI_CHART_WIDTH);
    assert_int_equal(cli_chart_width("abc", 0), CLI_CHART_WIDTH);
    assert_int_equal(cli_chart_width("-5", 0), CLI_CHART_WIDTH);
    assert_int_equal(cli_chart_width("3", 0), CLI_CHART_MIN_WIDTH);
    assert_int_equal(cli_chart_width("99999", 0), CLI_CHART_MAX_WIDTH);
    /* UTF-8 from the locale variables, LC_ALL first */
    assert_true(cli_chart_utf8(NULL, NULL, "en_US.UTF-8"));
    assert_true(cli_chart_utf8("", NULL, "C.utf8"));
    assert_false(cli_chart_utf8("C", NULL, "en_US.UTF-8"));
    assert_false(cli_chart_utf8(NULL, "POSIX", "en_US.UTF-8"));
    assert_false(cli_chart_utf8(NULL, NULL, NULL));
    char buf[32];
    cli_chart_number(-0.0, 4, buf, sizeof buf);
    assert_string_equal(buf, "0");
    cli_chart_number(0.0033222591, 6, buf, sizeof buf);
    assert_string_equal(buf, "0.00332226");
}

static void test_metrics_helpers(void **state) {
    /* the best value: the smallest for losses and errors, else the largest */
    assert_true(cli_metric_lower_better("loss"));
    assert_true(cli_metric_lower_better("val_Loss"));
    assert_true(cli_metric_lower_better("top1_error"));
    assert_false(cli_metric_lower_better("accuracy"));
    assert_false(cli_metric_lower_better("sys.mem_bytes"));
    assert_true(cli_metric_best("loss", 0.1, 2.0) == 0.1);
    assert_true(cli_metric_best("accuracy", 0.1, 0.9) == 0.9);

    /* TRAINING[#RUN] */
    char t[130], err[AVA_ERRLEN];
    long long run = -1;
    assert_int_equal(cli_run_ref_parse("demo", t, sizeof t, &run, err), 0);
    assert_string_equal(t, "demo");
    assert_int_equal(run, 0);
    assert_int_equal(cli_run_ref_parse("alice/demo#12", t, sizeof t, &run, err), 0);
    assert_string_equal(t, "alice/demo");
    assert_int_equal(run, 12);
    assert_int_equal(cli_run_ref_parse("demo#0", t, sizeof t, &run, err), AVA_EINVALID);
    assert_non_null(strstr(err, "run number"));
    assert_int_equal(cli_run_ref_parse("demo#", t, sizeof t, &run, err), AVA_EINVALID);
    assert_int_equal(cli_run_ref_parse("demo#2x", t, sizeof t, &run, err), AVA_EINVALID);
    assert_int_equal(cli_run_ref_parse("#2", t, sizeof t, &run, err), AVA_EINVALID);
    assert_int_equal(cli_run_ref_parse("a/b/c#1", t, sizeof t, &run, err), AVA_EINVALID);
    assert_int_equal(cli_run_ref_parse("demo#1", t, 4, &run, err), AVA_EINVALID);

    /* the paging stop rule: a short page ends, a full one that moved on goes on */
    int64_t next = -1;
    assert_true(cli_metrics_page_next(10000, 10000, 0, 10000, &next));
    assert_int_equal(next, 10000);
    assert_false(cli_metrics_page_next(9999, 10000, 10000, 19999, &next));
    assert_false(cli_metrics_page_next(0, 10000, 5, 5, &next));
    assert_false(cli_metrics_page_next(10000, 10000, 500, 500, &next)); /* stuck */
    assert_int_equal(next, 10000);
}

/* Parses a `train metrics` (compare false) or `train compare` command line given as a
 * NULL-terminated word list into o. */
static int metrics_opts(struct cli_metrics_opts *o, bool compare, bool json, char *err, ...) {
    char *words[64];
    va_list ap;
    va_start(ap, err);
    int n = collect(words, ap);
    va_end(ap);
    struct cli_args a;
    err[0] = '\0';
    int rc = cli_args_parse(n, words, compare ? cli_train_compare_opts : cli_train_metrics_opts, &a,
                            err);
    if (rc == 0)
        rc = cli_metrics_opts_get(&a, compare, json, o, err);
    cli_args_free(&a);
    return rc;
}

static void test_metrics_opts(void **state) {
    struct cli_metrics_opts o;
    char err[AVA_ERRLEN];
    assert_int_equal(metrics_opts(&o, false, false, err, "demo", NULL), 0);
    assert_null(o.name);
    assert_int_equal(o.run, 0);
    assert_int_equal(o.max_points, 0);
    assert_int_equal(metrics_opts(&o, false, false, err, "demo", "--name", "loss", "--phase=val",
                                  "--run", "3", "--max-points", "500", "--csv", NULL),
                     0);
    assert_string_equal(o.name, "loss");
    assert_string_equal(o.phase, "val");
    assert_int_equal(o.run, 3);
    assert_int_equal(o.max_points, 500);
    assert_true(o.csv);

    assert_int_equal(metrics_opts(&o, false, false, err, "d", "--max-points", "1", NULL),
                     AVA_EINVALID);
    assert_string_equal(err, "--max-points needs a whole number from 2 to 100000, not '1'");
    assert_int_equal(metrics_opts(&o, false, false, err, "d", "--max-points", "100001", NULL),
                     AVA_EINVALID);
    assert_int_equal(metrics_opts(&o, false, false, err, "d", "--max-points", "9x", NULL),
                     AVA_EINVALID);
    assert_int_equal(metrics_opts(&o, false, false, err, "d", "--run", "0", NULL), AVA_EINVALID);
    assert_int_equal(metrics_opts(&o, false, false, err, "d", "--name=", NULL), AVA_EINVALID);
    assert_int_equal(metrics_opts(&o, false, false, err, "d", "--csv", NULL), AVA_EINVALID);
    assert_string_equal(err, "--csv needs --name METRIC, the series to write");
    assert_int_equal(metrics_opts(&o, false, true, err, "d", "--csv", "--name", "l", NULL),
                     AVA_EINVALID);
    assert_int_equal(metrics_opts(&o, false, false, err, "d", "--bogus", NULL), AVA_EINVALID);

    /* compare: --name is required; --csv and --max-points are not its options */
    assert_int_equal(metrics_opts(&o, true, false, err, "a", "b#2", "--name", "acc", NULL), 0);
    assert_int_equal(metrics_opts(&o, true, false, err, "a", "b", NULL), AVA_EINVALID);
    assert_string_equal(err, "missing --name METRIC, the metric to compare");
    assert_int_equal(metrics_opts(&o, true, false, err, "a", "b", "--name", "l", "--csv", NULL),
                     AVA_EINVALID);
}

/* --metrics-parser and repeated --metric rules reach the body; a rule without '=' does not. */
static void test_create_metrics(void **state) {
    (void)state;
    json_t *body = NULL;
    char err[AVA_ERRLEN];
    assert_int_equal(create(&body, err, "m", "--image", "a:b", "--cpu", "1", "--entry", "/x",
                            "--metrics-parser", "keras", "--metric", "speed=Speed: ([0-9.]+)",
                            "--metric", "top5=top5 ([0-9.]+)", NULL),
                     0);
    assert_string_equal(json_string_value(json_object_get(body, "metrics_parser")), "keras");
    json_t *rules = json_object_get(body, "metrics");
    assert_int_equal(json_array_size(rules), 2);
    assert_string_equal(json_string_value(json_array_get(rules, 1)), "top5=top5 ([0-9.]+)");
    json_decref(body);
    body = NULL;
    assert_int_equal(create(&body, err, "m", "--image", "a:b", "--cpu", "1", "--entry", "/x",
                            "--metric", "nonsense", NULL),
                     AVA_EINVALID);
    assert_non_null(strstr(err, "NAME=REGEX"));
    assert_null(body);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_minimal), cmocka_unit_test(test_create_metrics),
        cmocka_unit_test(test_create_full),    cmocka_unit_test(test_create_args),
        cmocka_unit_test(test_create_bad),     cmocka_unit_test(test_args_parser),
        cmocka_unit_test(test_url_encode),     cmocka_unit_test(test_table),
        cmocka_unit_test(test_error_message),  cmocka_unit_test(test_config_files),
        cmocka_unit_test(test_config_bad),     cmocka_unit_test(test_time),
        cmocka_unit_test(test_formatting),     cmocka_unit_test(test_create_val),
        cmocka_unit_test(test_format_body),    cmocka_unit_test(test_format_bad),
        cmocka_unit_test(test_set_ref),        cmocka_unit_test(test_complement),
        cmocka_unit_test(test_dataset_paths),  cmocka_unit_test(test_progress),
        cmocka_unit_test(test_chart_ascii),    cmocka_unit_test(test_chart_braille),
        cmocka_unit_test(test_chart_edges),    cmocka_unit_test(test_chart_nan_free),
        cmocka_unit_test(test_chart_limits),   cmocka_unit_test(test_metrics_helpers),
        cmocka_unit_test(test_metrics_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
