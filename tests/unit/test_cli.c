/* test_cli.c: unit tests of the CLI's pure parts: option parsing, the train create body,
 * URL encoding, tables, server error messages, endpoint/token discovery, formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/cli/args.h"
#include "../../src/cli/cli.h"
#include "../../src/cli/config.h"
#include "../../src/cli/http.h"
#include "../../src/cli/out.h"
#include "../../src/cli/table.h"
#include "../../src/common/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Parses a `train create` command line given as a NULL-terminated word list. */
static int create(json_t **body, char *err, ...) {
    char *words[64];
    int n = 0;
    va_list ap;
    va_start(ap, err);
    for (char *w; n < 63 && (w = va_arg(ap, char *));)
        words[n++] = w;
    va_end(ap);
    words[n] = NULL;
    err[0] = '\0';
    return cli_train_create_parse(n, words, body, err);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_minimal), cmocka_unit_test(test_create_full),
        cmocka_unit_test(test_create_args),    cmocka_unit_test(test_create_bad),
        cmocka_unit_test(test_args_parser),    cmocka_unit_test(test_url_encode),
        cmocka_unit_test(test_table),          cmocka_unit_test(test_error_message),
        cmocka_unit_test(test_config_files),   cmocka_unit_test(test_config_bad),
        cmocka_unit_test(test_time),           cmocka_unit_test(test_formatting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
