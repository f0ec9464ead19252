/* test_config.c: src/daemon/config: avad's defaults, flags in both forms, the --config INI
 * file, flag-over-file precedence, and a message naming the problem for every bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/common/path.h"
#include "../../src/daemon/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ARGS 32

/* Parses "avad" followed by the NULL-terminated arguments given. */
static int parse_args(struct avad_config *cfg, char *err, const char *const *args) {
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "avad";
    for (size_t i = 0; args[i]; i++) {
        assert_true(argc <= MAX_ARGS);
        argv[argc++] = (char *)args[i];
    }
    argv[argc] = NULL;
    return avad_config_parse(argc, argv, cfg, err);
}

#define PARSE(cfg, err, ...) parse_args((cfg), (err), (const char *const[]){__VA_ARGS__, NULL})

/* A temporary directory for config files. */
static char tmpdir[64];

static int group_setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ava-test-config-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    return ava_rm_rf(tmpdir, NULL) == 0 ? 0 : -1;
}

/* Writes text to <tmpdir>/<name> and returns the path (static storage, one at a time). */
static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults(void **state) {
    (void)state;
    struct avad_config c;
    char err[AVA_ERRLEN] = "";
    memset(&c, 0x5a, sizeof c); /* parse must set everything */
    assert_int_equal(parse_args(&c, err, (const char *const[]){NULL}), 0);
    assert_string_equal(c.data_dir, "./var");
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.gpus, "auto");
    assert_int_equal(c.cpus, 0);
    assert_int_equal(c.mem, 0);
    assert_int_equal(c.max_runtime_ms, 259200000);
    assert_int_equal(c.grace_ms, 30000);
    assert_int_equal(c.http_timeout_ms, 60000);
    assert_string_equal(c.share_dir, "");
    assert_string_equal(c.shim_path, "");
    assert_false(c.verbose);
    assert_false(c.help);
    assert_false(c.version);
}

static void test_flags_separate_values(void **state) {
    (void)state;
    struct avad_config c;
    char err[AVA_ERRLEN] = "";
    int r = PARSE(&c, err, "--data", "/srv/ava", "--listen", "0.0.0.0:9000", "--gpus", "0,2",
                  "--cpus", "12", "--mem", "16G", "--max-runtime", "2h", "--grace", "10s",
                  "--share", "/usr/share/ava", "--shim", "/usr/libexec/ava/ava-shim", "-v");
    CHECK(r == 0, "refused: %s", err);
    assert_string_equal(c.data_dir, "/srv/ava");
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.port, 9000);
    assert_string_equal(c.gpus, "0,2");
    assert_int_equal(c.cpus, 12);
    assert_int_equal(c.mem, INT64_C(16) << 30);
    assert_int_equal(c.max_runtime_ms, 7200000);
    assert_int_equal(c.grace_ms, 10000);
    assert_string_equal(c.share_dir, "/usr/share/ava");
    assert_string_equal(c.shim_path, "/usr/libexec/ava/ava-shim");
    assert_true(c.verbose);
}

static void test_flags_with_equals(void **state) {
    (void)state;
    struct avad_config c;
    char err[AVA_ERRLEN] = "";
    int r = PARSE(&c, err, "--data=/d", "--listen=localhost:0", "--gpus=none", "--cpus=1",
                  "--mem=512M", "--max-runtime=1h30m", "--grace=0", "--http-timeout=5s",
                  "--share=/s", "--shim=/x/shim", "--verbose", "--help", "--version");
    CHECK(r == 0, "refused: %s", err);
    assert_string_equal(c.data_dir, "/d");
    assert_string_equal(c.host, "localhost");
    assert_int_equal(c.port, 0);
    assert_string_equal(c.gpus, "none");
    assert_int_equal(c.cpus, 1);
    assert_int_equal(c.mem, INT64_C(512) << 20);
    assert_int_equal(c.max_runtime_ms, 5400000);
    assert_int_equal(c.grace_ms, 0);
    assert_int_equal(c.http_timeout_ms, 5000);
    assert_string_equal(c.share_dir, "/s");
    assert_string_equal(c.shim_path, "/x/shim");
    assert_true(c.verbose);
    assert_true(c.help);
    assert_true(c.version);
    /* a value holding '=' keeps everything after the first one */
    assert_int_equal(PARSE(&c, err, "--data=/a=b"), 0);
    assert_string_equal(c.data_dir, "/a=b");
    /* the last of a repeated flag wins */
    assert_int_equal(PARSE(&c, err, "--cpus", "2", "--cpus=3"), 0);
    assert_int_equal(c.cpus, 3);
    /* an IPv6 host keeps its colons: the port is after the last one */
    assert_int_equal(PARSE(&c, err, "--listen", "[::1]:8081"), 0);
    assert_string_equal(c.host, "[::1]");
    assert_int_equal(c.port, 8081);
}

static void test_config_set_accepts_underscores_and_dashes(void **state) {
    (void)state;
    struct avad_config c;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(PARSE(&c, err, "--cpus", "1"), 0);
    assert_int_equal(avad_config_set(&c, "max_runtime", "3h", err), 0);
    assert_int_equal(c.max_runtime_ms, 3 * 3600000);
    assert_int_equal(avad_config_set(&c, "max-runtime", "4h", err), 0);
    assert_int_equal(c.max_runtime_ms, 4 * 3600000);
    assert_int_equal(avad_config_set(&c, "http_timeout", "2m", err), 0);
    assert_int_equal(c.http_timeout_ms, 120000);
    assert_int_equal(avad_config_set(&c, "colour", "red", err), AVA_EINVALID);
    assert_non_null(strstr(err, "'colour'"));
}

static void test_config_file_sets_everything(void **state) {
    (void)state;
    const char *path = write_file("full.ini", "; avad settings\n"
                                              "# keys with '_' or '-'\n"
                                              "[avad]\n"
                                              "data = /var/lib/ava\n"
                                              "listen = 10.0.0.1:8443\n"
                                              "gpus = 1,3\n"
                                              "cpus = 6\n"
                                              "mem = 8G\n"
                                              "max_runtime = 12h\n"
                                              "grace = 45s\n"
                                              "http-timeout = 30s\n"
                                              "share = /opt/ava/share\n"
                                              "shim = /opt/ava/ava-shim\n");
    struct avad_config c;
    char err[AVA_ERRLEN] = "";
    int r = PARSE(&c, err, "--config", path);
    CHECK(r == 0, "refused: %s", err);
    assert_string_equal(c.data_dir, "/var/lib/ava");
    assert_string_equal(c.host, "10.0.0.1");
    assert_int_equal(c.port, 8443);
    assert_string_equal(c.gpus, "1,3");
    assert_int_equal(c.cpus, 6);
    assert_int_equal(c.mem, INT64_C(8) << 30);
    assert_int_equal(c.max_runtime_ms, 12 * 3600000);
    assert_int_equal(c.grace_ms, 45000);
    assert_int_equal(c.http_timeout_ms, 30000);
    assert_string_equal(c.share_dir, "/opt/ava/share");
    assert_string_equal(c.shim_path, "/opt/ava/ava-shim");

    /* keys before any section are avad's too; --config=FILE works the same */
    char flag[300];
    path = write_file("nosection.ini", "max-runtime = 1d\n");
    snprintf(flag, sizeof flag, "--config=%s", path);
    r = PARSE(&c, err, flag);
    CHECK(r == 0, "refused: %s", err);
    assert_int_equal(c.max_runtime_ms, 86400000);
}

static void test_flags_override_the_file_in_any_order(void **state) {
    (void)state;
    const char *path =
        write_file("base.ini", "[avad]\ndata = /from/file\nlisten = 1.2.3.4:99\ncpus = 3\n");
    struct avad_config c;
    char err[AVA_ERRLEN] = "";
    /* flag after --config */
    assert_int_equal(PARSE(&c, err, "--config", path, "--listen", "0.0.0.0:1"), 0);
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.port, 1);
    assert_string_equal(c.data_dir, "/from/file");
    assert_int_equal(c.cpus, 3);
    /* flag before --config */
    assert_int_equal(PARSE(&c, err, "--listen=0.0.0.0:2", "--cpus", "5", "--config", path), 0);
    assert_int_equal(c.port, 2);
    assert_int_equal(c.cpus, 5);
    assert_string_equal(c.data_dir, "/from/file");
    /* and the file's values stay over the defaults */
    assert_int_equal(PARSE(&c, err, "--config", path), 0);
    assert_string_equal(c.host, "1.2.3.4");
    assert_int_equal(c.port, 99);
}

static void test_flag_errors_name_the_problem(void **state) {
    (void)state;
    static const struct {
        const char *args[4];
        const char *msg;
    } cases[] = {
        {{"--bogus", "x"}, "unknown option '--bogus'"},
        {{"--bogus=1"}, "unknown option '--bogus=1'"},
        {{"--data"}, "--data needs a value"},
        {{"--listen"}, "--listen needs a value"},
        {{"--data="}, "data"},
        {{"--listen", "8080"}, "listen: '8080' is not HOST:PORT"},
        {{"--listen", "host:"}, "listen: 'host:' is not HOST:PORT"},
        {{"--listen", "host:70000"}, "'host:70000'"},
        {{"--listen", "host:65536"}, "'host:65536'"},
        {{"--listen", ":8080"}, "':8080'"},
        {{"--listen=host:-1"}, "'host:-1'"},
        {{"--listen=host:80x"}, "'host:80x'"},
        {{"--gpus", "0,0"}, "gpus: '0,0'"},
        {{"--gpus", "x"}, "gpus: 'x'"},
        {{"--gpus", "0,"}, "gpus: '0,'"},
        {{"--gpus="}, "gpus"},
        {{"--gpus", "all"}, "gpus: 'all'"},
        {{"--cpus", "0"}, "cpus: '0'"},
        {{"--cpus", "-1"}, "cpus: '-1'"},
        {{"--cpus", "4097"}, "cpus: '4097'"},
        {{"--cpus", "two"}, "cpus: 'two'"},
        {{"--mem", "8X"}, "'8X'"},
        {{"--mem", "0"}, "mem"},
        {{"--mem", "-1G"}, "'-1G'"},
        {{"--max-runtime", "0"}, "max-runtime"},
        {{"--max-runtime", "abc"}, "'abc'"},
        {{"--max-runtime", "1.5h"}, "'1.5h'"},
        {{"--grace", "-5s"}, "'-5s'"},
        {{"--grace", "10 s"}, "'10 s'"},
        {{"--http-timeout", "500ms"}, "http-timeout"},
        {{"--executor", "k8s"}, "executor: 'k8s' is not local or slurm"},
        {{"--slurm-data-dir", "shared/ava"},
         "slurm-data-dir: 'shared/ava' is not an absolute path"},
        {{"--slurm-shim", "ava-shim"}, "slurm-shim: 'ava-shim' is not an absolute path"},
        {{"--slurm-poll", "5ms"}, "slurm-poll: must be from 10ms to 60s"},
        {{"--slurm-poll", "2m"}, "slurm-poll"},
        {{"--slurm-args", "a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7"},
         "slurm-args: more than 32 arguments"},
        {{"positional"}, "unexpected argument 'positional'"},
        {{"-x"}, "'-x'"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct avad_config c;
        char err[AVA_ERRLEN] = "";
        int r = parse_args(&c, err, cases[i].args);
        CHECK(r == AVA_EINVALID, "case %zu (%s %s) accepted or wrong code %d", i, cases[i].args[0],
              cases[i].args[1] ? cases[i].args[1] : "", r);
        CHECK(strstr(err, cases[i].msg) != NULL, "case %zu (%s): message '%s' lacks '%s'", i,
              cases[i].args[0], err, cases[i].msg);
    }
}

/* The executor and its Slurm settings, from flags and from the file's keys. */
static void test_slurm_settings(void **state) {
    (void)state;
    struct avad_config c;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(PARSE(&c, err, "--data", "/d"), 0);
    assert_string_equal(c.executor, "local");
    assert_int_equal(c.slurm_poll_ms, 100);
    const char *path = write_file("slurm.ini", "[avad]\nexecutor = slurm\nslurm_partition = gpu\n"
                                               "slurm_account = vision\nslurm_args = --qos=high "
                                               "--exclusive\nslurm_data_dir = /mnt/ava\n");
    assert_int_equal(PARSE(&c, err, "--config", path, "--slurm-poll", "50ms", "--slurm-shim",
                           "/opt/ava/ava-shim"),
                     0);
    assert_string_equal(c.executor, "slurm");
    assert_string_equal(c.slurm_partition, "gpu");
    assert_string_equal(c.slurm_account, "vision");
    assert_string_equal(c.slurm_args, "--qos=high --exclusive");
    assert_string_equal(c.slurm_data_dir, "/mnt/ava");
    assert_string_equal(c.slurm_shim, "/opt/ava/ava-shim");
    assert_int_equal(c.slurm_poll_ms, 50);
}

/* An unknown flag is reported as unknown wherever it stands, also as the last argument. */
static void test_unknown_last_flag_is_reported_as_unknown(void **state) {
    (void)state;
    struct avad_config c;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(PARSE(&c, err, "--data", "/x", "--bogus"), AVA_EINVALID);
    CHECK(strstr(err, "bogus") && strstr(err, "unknown"), "message: '%s'", err);
}

static void test_config_file_errors_name_file_and_line(void **state) {
    (void)state;
    static const struct {
        const char *text;
        const char *msg1, *msg2;
    } cases[] = {
        {"[avad]\ndata = /x\nbogus = 1\n", "line 3", "unknown setting 'bogus'"},
        {"[avad]\nverbos = true\n", "line 2", "'verbos'"},
        {"[other]\ndata = /x\n", "line 2", "unknown section [other]"},
        {"[avad]\ndata /x\n", "line 2", "key = value"},
        {"[avad\ndata = /x\n", "line 1", "section"},
        {"[avad]\n = /x\n", "line 2", "missing key"},
        {"[avad]\ncpus = 0\n", "line 2", "cpus"},
        {"[avad]\nlisten = 8080\n", "line 2", "'8080' is not HOST:PORT"},
        {"[avad]\ngpus = 1,1\n", "line 2", "gpus"},
        {"[avad]\nmax_runtime = forever\n", "line 2", "'forever'"},
        {"[avad]\nmem = 1.5G\n", "line 2", "'1.5G'"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const char *path = write_file("bad.ini", cases[i].text);
        struct avad_config c;
        char err[AVA_ERRLEN] = "";
        int r = PARSE(&c, err, "--config", path);
        CHECK(r == AVA_EINVALID, "case %zu accepted or wrong code %d", i, r);
        CHECK(strstr(err, path) != NULL, "case %zu: message '%s' does not name the file", i, err);
        CHECK(strstr(err, cases[i].msg1) && strstr(err, cases[i].msg2),
              "case %zu: message '%s' lacks '%s' or '%s'", i, err, cases[i].msg1, cases[i].msg2);
    }
}

static void test_config_file_missing_or_unreadable(void **state) {
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/does-not-exist.ini", tmpdir);
    struct avad_config c;
    char err[AVA_ERRLEN] = "";
    assert_true(PARSE(&c, err, "--config", path) < 0);
    assert_non_null(strstr(err, path));
    err[0] = '\0';
    assert_true(PARSE(&c, err, "--config", tmpdir) < 0); /* a directory */
    assert_non_null(strstr(err, tmpdir));
    /* --config without a file */
    err[0] = '\0';
    assert_int_equal(PARSE(&c, err, "--config"), AVA_EINVALID);
    assert_non_null(strstr(err, "--config needs a value"));
}

static void test_usage_mentions_every_flag(void **state) {
    (void)state;
    static const char *const flags[] = {
        "--config",        "--data",         "--listen",         "--gpus",
        "--cpus",          "--mem",          "--max-runtime",    "--grace",
        "--share",         "--shim",         "--verbose",        "--help",
        "--version",       "--http-timeout", "--executor",       "--slurm-partition",
        "--slurm-account", "--slurm-args",   "--slurm-data-dir", "--slurm-shim",
        "--slurm-poll"};
    for (size_t i = 0; i < N_ELEMS(flags); i++)
        CHECK(strstr(avad_usage, flags[i]) != NULL, "usage lacks %s", flags[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags_separate_values),
        cmocka_unit_test(test_flags_with_equals),
        cmocka_unit_test(test_config_set_accepts_underscores_and_dashes),
        cmocka_unit_test(test_config_file_sets_everything),
        cmocka_unit_test(test_flags_override_the_file_in_any_order),
        cmocka_unit_test(test_flag_errors_name_the_problem),
        cmocka_unit_test(test_slurm_settings),
        cmocka_unit_test(test_unknown_last_flag_is_reported_as_unknown),
        cmocka_unit_test(test_config_file_errors_name_file_and_line),
        cmocka_unit_test(test_config_file_missing_or_unreadable),
        cmocka_unit_test(test_usage_mentions_every_flag),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
