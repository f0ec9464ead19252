/* test_data_jobs.c: the dataset job contract (src/data/job.h): spec JSON round trips and
 * refusals, the name tables, the progress file, the user-facing options. */
#include "../../src/common/err.h"
#include "../../src/data/job.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* A spec with every field set away from its default. */
static struct ava_job_spec sample_spec(void) {
    struct ava_job_spec s = {.kind = "format",
                             .dataset_dir = "/d/datasets/3-x",
                             .source = "idx:/a,/b",
                             .md5 = "0123456789abcdef0123456789abcdef",
                             .format = AVA_FMT_LMDB,
                             .percent = 80,
                             .seed = 42,
                             .mode = AVA_SPLIT_STRATIFIED,
                             .encoding = AVA_ENC_PNG,
                             .quality = 90,
                             .resize = 32,
                             .threads = 2};
    return s;
}

static void test_spec_round_trip(void **state) {
    (void)state;
    struct ava_job_spec in = sample_spec(), out;
    char err[AVA_ERRLEN] = "";
    json_t *j = ava_job_spec_json(&in);
    assert_non_null(j);
    assert_int_equal(ava_job_spec_from_json(j, &out, err), 0);
    assert_memory_equal(&in, &out, sizeof in);
    json_decref(j);
}

static void test_spec_refusals(void **state) {
    (void)state;
    static const struct {
        const char *key;
        const char *json; /* the value that replaces the key's */
    } cases[] = {
        {"kind", "\"train\""},
        {"dataset_dir", "\"relative\""},
        {"format", "\"tfrecord\""},
        {"percent", "0"},
        {"percent", "101"},
        {"seed", "-1"},
        {"mode", "\"random\""},
        {"encoding", "\"webp\""},
        {"quality", "0"},
        {"resize", "-3"},
        {"threads", "1000"},
        {"percent", "\"80\""},
        {"md5", "\"0123456789abcdef0123456789abcdef0\""},
        {"bogus", "1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ava_job_spec in = sample_spec(), out;
        char err[AVA_ERRLEN] = "";
        json_t *j = ava_job_spec_json(&in);
        json_object_set_new(j, cases[i].key, json_loads(cases[i].json, JSON_DECODE_ANY, NULL));
        int r = ava_job_spec_from_json(j, &out, err);
        if (r != AVA_EINVALID || !err[0])
            fail_msg("case %zu (%s=%s) accepted", i, cases[i].key, cases[i].json);
        json_decref(j);
    }
}

static void test_name_tables(void **state) {
    (void)state;
    enum ava_set_format f;
    enum ava_encoding e;
    const char *formats[] = {"recordio", "lmdb", "raw"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ava_set_format_parse(formats[i], &f), 0);
        assert_string_equal(ava_set_format_str(f), formats[i]);
    }
    const char *encodings[] = {"default", "jpeg", "png", "raw"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ava_encoding_parse(encodings[i], &e), 0);
        assert_string_equal(ava_encoding_str(e), encodings[i]);
    }
    assert_int_equal(ava_set_format_parse("RecordIO", &f), AVA_EINVALID);
    assert_int_equal(ava_encoding_parse(NULL, &e), AVA_EINVALID);
    assert_string_equal(ava_set_format_str((enum ava_set_format)9), "unknown");
}

static void test_progress_file(void **state) {
    (void)state;
    char dir[] = "/tmp/ava-test-jobs-XXXXXX", path[64], err[AVA_ERRLEN] = "";
    int64_t done = -1, total = -1;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(ava_job_read_progress(dir, &done, &total), AVA_ENOTFOUND);
    assert_int_equal(ava_job_write_progress(dir, 1200, 70000, err), 0);
    assert_int_equal(ava_job_read_progress(dir, &done, &total), 0);
    assert_int_equal(done, 1200);
    assert_int_equal(total, 70000);
    snprintf(path, sizeof path, "%s/progress", dir);
    FILE *f = fopen(path, "w");
    fputs("garbage\n", f);
    fclose(f);
    assert_int_equal(ava_job_read_progress(dir, &done, &total), AVA_ENOTFOUND);
    unlink(path);
    rmdir(dir);
}

static void test_user_options_hide_internals(void **state) {
    (void)state;
    struct ava_job_spec in = sample_spec();
    json_t *j = ava_job_spec_json(&in);
    char *text = json_dumps(j, 0);
    json_t *o = ava_job_user_options(text);
    assert_int_equal(json_object_size(o), 6);
    assert_null(json_object_get(o, "dataset_dir"));
    assert_null(json_object_get(o, "source"));
    assert_string_equal(json_string_value(json_object_get(o, "mode")), "stratified");
    json_decref(o);
    o = ava_job_user_options("not json");
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
    free(text);
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_round_trip),
        cmocka_unit_test(test_spec_refusals),
        cmocka_unit_test(test_name_tables),
        cmocka_unit_test(test_progress_file),
        cmocka_unit_test(test_user_options_hide_internals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
