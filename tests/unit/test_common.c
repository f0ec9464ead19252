/* test_common.c: src/common: errors, buffers, string parsers, paths, files, SHA-256, INI,
 * run dir files and time formatting, with the malformed inputs each parser must refuse. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/buf.h"
#include "../../src/common/err.h"
#include "../../src/common/file.h"
#include "../../src/common/ini.h"
#include "../../src/common/jsonfields.h"
#include "../../src/common/md5.h"
#include "../../src/common/path.h"
#include "../../src/common/rundir.h"
#include "../../src/common/sha256.h"
#include "../../src/common/strutil.h"
#include "../../src/common/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static void make_tmpdir(char *out, size_t outlen) {
    snprintf(out, outlen, "/tmp/ava-test-common-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static void remove_tmpdir(const char *dir) {
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_rm_rf(dir, err), 0);
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path) {
    char *text = NULL, err[AVA_ERRLEN] = "";
    int r = ava_file_read_all(path, 1 << 20, &text, NULL, err);
    CHECK(r == 0, "cannot read %s: %s", path, err);
    return text;
}

/* Number of directory entries other than . and .. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* ---- err.h ---- */

static void test_err_formats_message_and_returns_code(void **state) {
    (void)state;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_err(err, AVA_ENOTFOUND, "training '%s' not found (%d)", "t1", 3),
                     AVA_ENOTFOUND);
    assert_string_equal(err, "training 't1' not found (3)");
}

static void test_err_without_buffer_returns_code(void **state) {
    (void)state;
    assert_int_equal(ava_err(NULL, AVA_EIO, "ignored %s", "x"), AVA_EIO);
}

static void test_err_truncates_to_errlen(void **state) {
    (void)state;
    char err[AVA_ERRLEN + 16];
    memset(err, 'z', sizeof err);
    char long_text[2 * AVA_ERRLEN];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    ava_err(err, AVA_EINVALID, "%s", long_text);
    assert_int_equal(strlen(err), AVA_ERRLEN - 1);
    assert_int_equal(err[AVA_ERRLEN], 'z'); /* nothing written past AVA_ERRLEN */
}

static void test_err_code_tables_cover_every_code(void **state) {
    (void)state;
    static const struct {
        int code;
        const char *str;
        int http;
    } cases[] = {
        {AVA_EOK, "ok", 200},
        {AVA_EINVALID, "invalid_argument", 400},
        {AVA_ENOTFOUND, "not_found", 404},
        {AVA_EEXISTS, "already_exists", 409},
        {AVA_ECONFLICT, "conflict", 409},
        {AVA_EUNAUTHORIZED, "unauthorized", 401},
        {AVA_EFORBIDDEN, "forbidden", 403},
        {AVA_ENOFIT, "cannot_fit", 422},
        {AVA_ETOOLARGE, "too_large", 413},
        {AVA_EIO, "io_error", 500},
        {AVA_EINTERNAL, "internal", 500},
        {AVA_EUNAVAILABLE, "unavailable", 503},
        {AVA_EMETHOD, "method_not_allowed", 405},
        /* unknown codes */
        {-13, "internal", 500},
        {-999, "internal", 500},
        {1, "internal", 500},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        CHECK(strcmp(ava_err_code_str(cases[i].code), cases[i].str) == 0,
              "code %d: string '%s', want '%s'", cases[i].code, ava_err_code_str(cases[i].code),
              cases[i].str);
        CHECK(ava_err_http_status(cases[i].code) == cases[i].http, "code %d: http %d, want %d",
              cases[i].code, ava_err_http_status(cases[i].code), cases[i].http);
    }
}

static void test_err_codes_are_distinct_and_negative(void **state) {
    (void)state;
    static const int codes[] = {
#define AVA_X(name, val, str, http) AVA_E##name,
        AVA_ERRORS(AVA_X)
#undef AVA_X
    };
    assert_int_equal(N_ELEMS(codes), 13);
    for (size_t i = 0; i < N_ELEMS(codes); i++) {
        CHECK(i == 0 ? codes[i] == 0 : codes[i] < 0, "code %zu is %d", i, codes[i]);
        for (size_t j = i + 1; j < N_ELEMS(codes); j++)
            CHECK(codes[i] != codes[j], "codes %zu and %zu are both %d", i, j, codes[i]);
    }
}

/* ---- buf.h ---- */

static void test_buf_append_grows_past_256(void **state) {
    (void)state;
    struct ava_buf b = {0};
    char want[1001];
    for (int i = 0; i < 1000; i++) {
        char c = (char)('a' + i % 26);
        ava_buf_append(&b, &c, 1);
        want[i] = c;
    }
    want[1000] = '\0';
    assert_int_equal(b.len, 1000);
    assert_true(b.cap > 1000);
    assert_string_equal(b.data, want);
    ava_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_buf_append_keeps_embedded_nul(void **state) {
    (void)state;
    struct ava_buf b = {0};
    ava_buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4); /* and the trailing NUL */
    ava_buf_free(&b);
}

static void test_buf_printf_past_256_bytes(void **state) {
    (void)state;
    struct ava_buf b = {0};
    char big[700];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ava_buf_puts(&b, "head:");
    ava_buf_printf(&b, "[%s]%d", big, 42);
    ava_buf_printf(&b, "|%s|", "tail");
    char *want = ava_xasprintf("head:[%s]42|tail|", big);
    assert_int_equal(b.len, strlen(want));
    assert_string_equal(b.data, want);
    free(want);
    ava_buf_free(&b);
}

static void test_buf_printf_boundary_lengths(void **state) {
    (void)state;
    /* 255 bytes fit the stack buffer, 256 and 257 take the second path */
    static const size_t lens[] = {0, 1, 254, 255, 256, 257, 511, 512, 4096};
    for (size_t i = 0; i < N_ELEMS(lens); i++) {
        struct ava_buf b = {0};
        char *s = ava_xmalloc(lens[i] + 1);
        memset(s, 'q', lens[i]);
        s[lens[i]] = '\0';
        ava_buf_printf(&b, "%s", s);
        CHECK(b.len == lens[i], "length %zu: got len %zu", lens[i], b.len);
        CHECK(b.data && strcmp(b.data, s) == 0, "length %zu: contents differ", lens[i]);
        free(s);
        ava_buf_free(&b);
    }
}

static void test_buf_reset_keeps_memory(void **state) {
    (void)state;
    struct ava_buf b = {0};
    ava_buf_puts(&b, "some text that is here");
    size_t cap = b.cap;
    char *data = b.data;
    ava_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.data, data);
    assert_string_equal(b.data, "");
    ava_buf_puts(&b, "new");
    assert_string_equal(b.data, "new");
    ava_buf_free(&b);
    ava_buf_reset(&b); /* reset of an empty buffer is harmless */
    assert_int_equal(b.len, 0);
}

static void test_buf_steal_empties_buffer(void **state) {
    (void)state;
    struct ava_buf b = {0};
    ava_buf_printf(&b, "%d-%s", 7, "seven");
    char *s = ava_buf_steal(&b);
    assert_string_equal(s, "7-seven");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);
    /* stealing from a never-used buffer gives an empty string, not NULL */
    s = ava_buf_steal(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    /* and the buffer is reusable afterwards */
    ava_buf_puts(&b, "again");
    assert_string_equal(b.data, "again");
    ava_buf_free(&b);
}

static void test_xasprintf_and_xstrdup(void **state) {
    (void)state;
    char *s = ava_xasprintf("%s=%d", "k", 12);
    assert_string_equal(s, "k=12");
    free(s);
    s = ava_xstrdup(NULL);
    assert_string_equal(s, "");
    free(s);
}

/* ---- strutil.h: names ---- */

static void test_name_valid(void **state) {
    (void)state;
    char n64[65], n65[66];
    memset(n64, 'a', 64);
    n64[64] = '\0';
    memset(n65, 'b', 65);
    n65[65] = '\0';
    static const char *const good[] = {"a",    "A",           "0",    "mnist", "ava-examples",
                                       "v1.2", "my_training", "a..b", "x-",    "9lives",
                                       "a.",   "Z_z-9.0"};
    for (size_t i = 0; i < N_ELEMS(good); i++)
        CHECK(ava_name_valid(good[i]), "'%s' should be a valid name", good[i]);
    assert_true(ava_name_valid(n64));

    static const char *const bad[] = {
        "",   ".",    "..",   ".hidden",     "-flag", "_x",  "/",  "a/b",  "/abs", "a b", " a",
        "a ", "a\tb", "a\nb", "caf\xc3\xa9", "\xff",  "a:b", "a*", "a\\b", "../x", "a$b", "a,b"};
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        CHECK(!ava_name_valid(bad[i]), "case %zu ('%s') should be refused", i, bad[i]);
    assert_false(ava_name_valid(n65));
    assert_false(ava_name_valid(NULL));
}

static void test_startswith(void **state) {
    (void)state;
    assert_true(ava_startswith("ava_abc", "ava_"));
    assert_true(ava_startswith("x", ""));
    assert_false(ava_startswith("av", "ava_"));
    assert_false(ava_startswith("Ava_", "ava_"));
}

/* ---- strutil.h: durations ---- */

static void test_parse_duration_good(void **state) {
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"3s", 3000},       {"90", 90000},
        {"0", 0},           {"0s", 0},
        {"1h30m", 5400000}, {"72h", 259200000},
        {"500ms", 500},     {"2d", 172800000},
        {"10m", 600000},    {"1d2h3m4s5ms", 86400000 + 7200000 + 180000 + 4000 + 5},
        {"1m30", 90000}, /* a bare last part is seconds */
        {"007s", 7000},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        int64_t ms = -1;
        char err[AVA_ERRLEN] = "";
        int r = ava_parse_duration(cases[i].in, &ms, err);
        CHECK(r == 0, "'%s' refused: %s", cases[i].in, err);
        CHECK(ms == cases[i].ms, "'%s' gave %lld ms, want %lld", cases[i].in, (long long)ms,
              (long long)cases[i].ms);
    }
}

static void test_parse_duration_bad(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",       "s",
        "3x",     "-1s",
        "1.5h",   "99999999999999999999d",
        "1h 30m", " 3s",
        "3s ",    "h1",
        "3S",     "3sec",
        "1e3",    "+3s",
        "3ss",    "1,5h",
        "m",      "3 s",
        "0x10",   "36028797018963968", /* 2^55 s: past the internal limit */
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        int64_t ms = 12345;
        char err[AVA_ERRLEN] = "";
        int r = ava_parse_duration(bad[i], &ms, err);
        CHECK(r == AVA_EINVALID, "'%s' should be refused, got %d (%lld ms)", bad[i], r,
              (long long)ms);
        CHECK(ms == 12345, "'%s': output written on failure", bad[i]);
        CHECK(err[0] != '\0', "'%s': no message", bad[i]);
        if (bad[i][0]) {
            char quoted[64];
            snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
            CHECK(strstr(err, quoted) != NULL, "'%s': message does not name the text: %s", bad[i],
                  err);
        }
    }
    int64_t ms;
    assert_int_equal(ava_parse_duration(NULL, &ms, NULL), AVA_EINVALID);
}

static void test_format_duration_exact(void **state) {
    (void)state;
    static const struct {
        int64_t ms;
        const char *out;
    } cases[] = {
        {0, "0s"},
        {-5, "0s"},
        {3000, "3s"},
        {5400000, "1h30m"},
        {259200000, "72h"},
        {500, "500ms"},
        {1, "1ms"},
        {60000, "1m"},
        {3600000, "1h"},
        {86400000, "24h"},
        {3723004, "1h2m3s4ms"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char out[64] = "?";
        ava_format_duration(cases[i].ms, out, sizeof out);
        CHECK(strcmp(out, cases[i].out) == 0, "%lld ms gave '%s', want '%s'",
              (long long)cases[i].ms, out, cases[i].out);
    }
}

static void test_format_duration_round_trips(void **state) {
    (void)state;
    static const int64_t values[] = {
        1,       999,     1000,     1500,      59999,     60000,         90000,          3599999,
        3600001, 5400000, 86400000, 172800123, 259200000, 31536000000LL, 1234567890123LL};
    for (size_t i = 0; i < N_ELEMS(values); i++) {
        char out[64];
        int64_t back = -1;
        char err[AVA_ERRLEN] = "";
        ava_format_duration(values[i], out, sizeof out);
        int r = ava_parse_duration(out, &back, err);
        CHECK(r == 0, "%lld ms formatted as '%s', which does not parse: %s", (long long)values[i],
              out, err);
        CHECK(back == values[i], "%lld ms -> '%s' -> %lld ms", (long long)values[i], out,
              (long long)back);
    }
}

static void test_format_duration_small_buffer_terminates(void **state) {
    (void)state;
    char out[4];
    memset(out, 'x', sizeof out);
    ava_format_duration(3723004, out, sizeof out);
    assert_non_null(memchr(out, '\0', sizeof out));
}

/* ---- strutil.h: sizes ---- */

static void test_parse_size_good(void **state) {
    (void)state;
    static const struct {
        const char *in;
        int64_t bytes;
    } cases[] = {
        {"8G", INT64_C(8) << 30},
        {"512M", INT64_C(512) << 20},
        {"1Ki", 1024},
        {"1KiB", 1024},
        {"1K", 1024},
        {"1KB", 1024},
        {"100", 100},
        {"100B", 100},
        {"0", 0},
        {"2T", INT64_C(2) << 40},
        {"16GiB", INT64_C(16) << 30},
        {"4194304T", INT64_C(1) << 62}, /* the largest accepted */
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        int64_t v = -1;
        char err[AVA_ERRLEN] = "";
        int r = ava_parse_size(cases[i].in, &v, err);
        CHECK(r == 0, "'%s' refused: %s", cases[i].in, err);
        CHECK(v == cases[i].bytes, "'%s' gave %lld, want %lld", cases[i].in, (long long)v,
              (long long)cases[i].bytes);
    }
}

static void test_parse_size_bad(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",         "G",   "8X",    "-1G",  "99999999999999999999",
        "8388608T", /* 2^63 */
        "8 G",      " 8G", "8G ",   "1.5G", "8GG",
        "8iB",      "8Bi", "8GiBx", "0x10", "+8G",
        "8P",       "1E",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        int64_t v = 777;
        char err[AVA_ERRLEN] = "";
        int r = ava_parse_size(bad[i], &v, err);
        CHECK(r == AVA_EINVALID, "'%s' should be refused, got %d (%lld)", bad[i], r, (long long)v);
        CHECK(v == 777, "'%s': output written on failure", bad[i]);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        CHECK(strstr(err, quoted) != NULL, "'%s': message does not name the text: %s", bad[i], err);
    }
}

static void test_format_size(void **state) {
    (void)state;
    static const struct {
        int64_t bytes;
        const char *out;
    } cases[] = {
        {0, "0"},
        {100, "100"},
        {1023, "1023"},
        {1024, "1K"},
        {1536, "1.5K"},
        {INT64_C(512) << 20, "512M"},
        {INT64_C(8) << 30, "8G"},
        {(INT64_C(3) << 30) / 2, "1.5G"},
        {INT64_C(1) << 40, "1T"},
        {INT64_C(2048) << 40, "2048T"}, /* T is the largest unit */
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char out[32] = "?";
        ava_format_size(cases[i].bytes, out, sizeof out);
        CHECK(strcmp(out, cases[i].out) == 0, "%lld gave '%s', want '%s'",
              (long long)cases[i].bytes, out, cases[i].out);
    }
}

static void test_format_size_whole_units_round_trip(void **state) {
    (void)state;
    static const int64_t values[] = {
        0, 1, 1000, INT64_C(1) << 10, INT64_C(7) << 20, INT64_C(64) << 30, INT64_C(3) << 40};
    for (size_t i = 0; i < N_ELEMS(values); i++) {
        char out[32];
        int64_t back = -1;
        ava_format_size(values[i], out, sizeof out);
        CHECK(ava_parse_size(out, &back, NULL) == 0 && back == values[i], "%lld -> '%s' -> %lld",
              (long long)values[i], out, (long long)back);
    }
}

/* ---- strutil.h: integers and index lists ---- */

static void test_parse_uint_limits(void **state) {
    (void)state;
    static const struct {
        const char *in;
        int64_t max;
        int ok;
        int64_t v;
    } cases[] = {
        {"0", 10, 1, 0},
        {"10", 10, 1, 10},
        {"11", 10, 0, 0},
        {"65535", 65535, 1, 65535},
        {"65536", 65535, 0, 0},
        {"9223372036854775807", INT64_MAX, 1, INT64_MAX},
        {"9223372036854775808", INT64_MAX, 0, 0},
        {"99999999999999999999999", INT64_MAX, 0, 0},
        {"0007", 10, 1, 7},
        {"", 10, 0, 0},
        {"-1", 10, 0, 0},
        {"+1", 10, 0, 0},
        {" 1", 10, 0, 0},
        {"1 ", 10, 0, 0},
        {"1a", 10, 0, 0},
        {"0x1", 10, 0, 0},
        {"1.0", 10, 0, 0},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        int64_t v = -42;
        char err[AVA_ERRLEN] = "";
        int r = ava_parse_uint(cases[i].in, cases[i].max, &v, err);
        if (cases[i].ok) {
            CHECK(r == 0 && v == cases[i].v, "'%s' (max %lld): r=%d v=%lld", cases[i].in,
                  (long long)cases[i].max, r, (long long)v);
        } else {
            CHECK(r == AVA_EINVALID, "'%s' (max %lld) should be refused", cases[i].in,
                  (long long)cases[i].max);
            CHECK(v == -42, "'%s': output written on failure", cases[i].in);
            CHECK(err[0] != '\0', "'%s': no message", cases[i].in);
        }
    }
    int64_t v;
    assert_int_equal(ava_parse_uint(NULL, 5, &v, NULL), AVA_EINVALID);
}

static void test_parse_index_list_good(void **state) {
    (void)state;
    int out[8], n = -1;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_parse_index_list("0,1,3", out, 8, &n, err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 3);

    assert_int_equal(ava_parse_index_list("7", out, 8, &n, err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 7);

    /* order is kept, not sorted */
    assert_int_equal(ava_parse_index_list("5,2", out, 8, &n, err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 5);
    assert_int_equal(out[1], 2);

    /* exactly at capacity */
    assert_int_equal(ava_parse_index_list("0,1", out, 2, &n, err), 0);
    assert_int_equal(n, 2);
}

static void test_parse_index_list_bad(void **state) {
    (void)state;
    static const struct {
        const char *in;
        int cap;
        const char *msg; /* a piece the message must hold */
    } cases[] = {
        {"1,1", 8, "twice"},
        {"0,1,0", 8, "twice"},
        {"1,", 8, "comma"},
        {",1", 8, "',1'"},
        {"a", 8, "'a'"},
        {"", 8, "empty"},
        {"1,,2", 8, "1,,2"},
        {" 1", 8, "' 1'"},
        {"1 ,2", 8, "1 ,2"},
        {"-1", 8, "-1"},
        {"1;2", 8, "1;2"},
        {"0,1,2", 2, "more than 2"},
        {"0,1,2,3,4,5,6,7,8", 8, "more than 8"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        int out[8], n = -1;
        char err[AVA_ERRLEN] = "";
        int r = ava_parse_index_list(cases[i].in, out, cases[i].cap, &n, err);
        CHECK(r == AVA_EINVALID, "'%s' (cap %d) should be refused", cases[i].in, cases[i].cap);
        CHECK(n == -1, "'%s': count written on failure", cases[i].in);
        CHECK(strstr(err, cases[i].msg) != NULL, "'%s': message '%s' lacks '%s'", cases[i].in, err,
              cases[i].msg);
    }
}

/* ---- path.h ---- */

static void test_path_join_good(void **state) {
    (void)state;
    char out[64], err[AVA_ERRLEN] = "";
    assert_int_equal(ava_path_join(out, sizeof out, err, "/data", "runs", "12", "3", NULL), 0);
    assert_string_equal(out, "/data/runs/12/3");
    assert_int_equal(ava_path_join(out, sizeof out, err, "/data/", "x", NULL), 0);
    assert_string_equal(out, "/data/x");
    assert_int_equal(ava_path_join(out, sizeof out, err, "/", "etc", NULL), 0);
    assert_string_equal(out, "/etc");
    assert_int_equal(ava_path_join(out, sizeof out, err, "rel", "a..b", "...", ".x", NULL), 0);
    assert_string_equal(out, "rel/a..b/.../.x");
    assert_int_equal(ava_path_join(out, sizeof out, err, "/base", NULL), 0);
    assert_string_equal(out, "/base");
}

static void test_path_join_refuses_bad_components(void **state) {
    (void)state;
    static const char *const bad[] = {"", ".", "..", "a/b", "/abs", "a/", "/"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        char out[64], err[AVA_ERRLEN] = "";
        int r = ava_path_join(out, sizeof out, err, "/data", "ok", bad[i], NULL);
        CHECK(r == AVA_EINVALID, "component '%s' should be refused, got %d", bad[i], r);
        char quoted[32];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        CHECK(strstr(err, quoted) != NULL, "'%s': message does not name it: %s", bad[i], err);
        CHECK(!ava_path_component_ok(bad[i]), "'%s' accepted by component_ok", bad[i]);
    }
    assert_false(ava_path_component_ok(NULL));
    assert_true(ava_path_component_ok("ok"));
    assert_true(ava_path_component_ok("..."));
}

static void test_path_join_too_long(void **state) {
    (void)state;
    char out[8], err[AVA_ERRLEN] = "";
    /* "/abc/de" is 7 bytes + NUL: fits exactly */
    assert_int_equal(ava_path_join(out, sizeof out, err, "/abc", "de", NULL), 0);
    assert_string_equal(out, "/abc/de");
    assert_int_equal(ava_path_join(out, sizeof out, err, "/abc", "def", NULL), AVA_ETOOLARGE);
    assert_int_equal(ava_path_join(out, sizeof out, err, "/abcdefgh", NULL), AVA_ETOOLARGE);
    assert_int_equal(ava_path_join(out, sizeof out, err, "/a", "b", "c", "d", NULL), AVA_ETOOLARGE);
    assert_non_null(strstr(err, "too long"));

    char big[AVA_PATH_MAX];
    char comp[300];
    memset(comp, 'c', sizeof comp - 1);
    comp[sizeof comp - 1] = '\0';
    int r = 0;
    snprintf(big, sizeof big, "/");
    for (int i = 0; i < 20 && r == 0; i++)
        r = ava_path_join(big, sizeof big, err, big, comp, NULL);
    assert_int_equal(r, AVA_ETOOLARGE);
}

static void test_mkdir_p_nested_and_existing(void **state) {
    (void)state;
    char tmp[64], dir[256], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    snprintf(dir, sizeof dir, "%s/a/b/c/d", tmp);
    assert_int_equal(ava_mkdir_p(dir, 0700, err), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* again: nothing to do, still fine */
    assert_int_equal(ava_mkdir_p(dir, 0700, err), 0);
    /* trailing slash */
    snprintf(dir, sizeof dir, "%s/a/e/", tmp);
    assert_int_equal(ava_mkdir_p(dir, 0755, err), 0);
    snprintf(dir, sizeof dir, "%s/a/e", tmp);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    remove_tmpdir(tmp);
}

static void test_mkdir_p_file_in_the_way(void **state) {
    (void)state;
    char tmp[64], path[256], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/file", tmp);
    write_text(path, "x");
    snprintf(path, sizeof path, "%s/file/sub/dir", tmp);
    assert_int_equal(ava_mkdir_p(path, 0755, err), AVA_EIO);
    assert_non_null(strstr(err, "file"));
    snprintf(path, sizeof path, "%s/file", tmp);
    err[0] = '\0';
    assert_int_equal(ava_mkdir_p(path, 0755, err), AVA_EIO);
    assert_non_null(strstr(err, "not a directory"));
    assert_int_equal(ava_mkdir_p("", 0755, err), AVA_EINVALID);
    remove_tmpdir(tmp);
}

static void test_rm_rf_does_not_follow_symlinks(void **state) {
    (void)state;
    char tmp[64], p[256], outside[128], tree[128], target[128], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    snprintf(outside, sizeof outside, "%s/outside", tmp);
    snprintf(tree, sizeof tree, "%s/tree", tmp);
    snprintf(target, sizeof target, "%s/outside/precious", tmp);
    assert_int_equal(mkdir(outside, 0755), 0);
    write_text(target, "keep me");
    snprintf(p, sizeof p, "%s/tree/a/b", tmp);
    assert_int_equal(ava_mkdir_p(p, 0755, err), 0);
    snprintf(p, sizeof p, "%s/tree/a/b/f1", tmp);
    write_text(p, "1");
    snprintf(p, sizeof p, "%s/tree/f2", tmp);
    write_text(p, "2");
    snprintf(p, sizeof p, "%s/tree/a/link-to-dir", tmp);
    assert_int_equal(symlink(outside, p), 0);
    snprintf(p, sizeof p, "%s/tree/a/b/link-to-file", tmp);
    assert_int_equal(symlink(target, p), 0);
    snprintf(p, sizeof p, "%s/tree/dangling", tmp);
    assert_int_equal(symlink("/nonexistent/ava/test", p), 0);

    assert_int_equal(ava_rm_rf(tree, err), 0);
    assert_false(exists(tree));
    assert_true(exists(outside));
    char *text = read_text(target);
    assert_string_equal(text, "keep me");
    free(text);

    /* a symlink given as the path itself: only the link goes */
    snprintf(p, sizeof p, "%s/top-link", tmp);
    assert_int_equal(symlink(outside, p), 0);
    assert_int_equal(ava_rm_rf(p, err), 0);
    assert_false(exists(p));
    assert_true(exists(target));

    /* a missing path is not an error */
    snprintf(p, sizeof p, "%s/never-there", tmp);
    assert_int_equal(ava_rm_rf(p, err), 0);
    remove_tmpdir(tmp);
    assert_false(exists(tmp));
}

static void test_exe_dir_is_absolute(void **state) {
    (void)state;
    char dir[AVA_PATH_MAX];
    assert_int_equal(ava_exe_dir(dir, sizeof dir), 0);
    assert_int_equal(dir[0], '/');
    assert_null(strstr(dir, "/test_common"));
}

/* ---- file.h ---- */

static void test_file_write_atomic_round_trip(void **state) {
    (void)state;
    char tmp[64], path[256], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/data.bin", tmp);
    static const char data[] = "line one\n\0binary\xff tail";
    assert_int_equal(ava_file_write_atomic(path, data, sizeof data - 1, 0644, err), 0);
    char *back = NULL;
    size_t len = 0;
    assert_int_equal(ava_file_read_all(path, 1024, &back, &len, err), 0);
    assert_int_equal(len, sizeof data - 1);
    assert_memory_equal(back, data, sizeof data - 1);
    assert_int_equal(back[len], '\0');
    free(back);
    assert_int_equal(ava_file_size(path), (int64_t)(sizeof data - 1));

    /* replacing keeps one file with the new contents */
    assert_int_equal(ava_file_write_atomic(path, "short", 5, 0644, err), 0);
    assert_int_equal(ava_file_read_all(path, 1024, &back, &len, err), 0);
    assert_int_equal(len, 5);
    assert_string_equal(back, "short");
    free(back);
    assert_int_equal(count_entries(tmp), 1); /* no leftover .tmp.<pid> */
    remove_tmpdir(tmp);
}

static void test_file_write_atomic_mode(void **state) {
    (void)state;
    char tmp[64], path[256], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    mode_t old = umask(022);
    snprintf(path, sizeof path, "%s/secret", tmp);
    assert_int_equal(ava_file_write_atomic(path, "token", 5, 0600, err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/public", tmp);
    assert_int_equal(ava_file_write_atomic(path, "x", 1, 0644, err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    umask(old);
    assert_int_equal(count_entries(tmp), 2);
    remove_tmpdir(tmp);
}

static void test_file_write_atomic_missing_dir(void **state) {
    (void)state;
    char tmp[64], path[256], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/no/such/dir/f", tmp);
    assert_int_equal(ava_file_write_atomic(path, "x", 1, 0644, err), AVA_EIO);
    assert_non_null(strstr(err, tmp));
    assert_int_equal(count_entries(tmp), 0);
    remove_tmpdir(tmp);
}

static void test_file_read_all_errors_and_limits(void **state) {
    (void)state;
    char tmp[64], path[256], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    char *text = (char *)0x1;
    snprintf(path, sizeof path, "%s/missing", tmp);
    assert_int_equal(ava_file_read_all(path, 100, &text, NULL, err), AVA_ENOTFOUND);
    assert_non_null(strstr(err, "missing"));

    /* a file bigger than one read chunk */
    size_t big = 20000;
    char *data = ava_xmalloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('A' + i % 23);
    snprintf(path, sizeof path, "%s/big", tmp);
    assert_int_equal(ava_file_write_atomic(path, data, big, 0644, err), 0);
    size_t len = 0;
    assert_int_equal(ava_file_read_all(path, big, &text, &len, err), 0);
    assert_int_equal(len, big);
    assert_memory_equal(text, data, big);
    free(text);
    err[0] = '\0';
    assert_int_equal(ava_file_read_all(path, big - 1, &text, &len, err), AVA_ETOOLARGE);
    assert_non_null(strstr(err, "19999"));
    assert_int_equal(ava_file_read_all(path, 100, &text, NULL, err), AVA_ETOOLARGE);
    free(data);

    /* an empty file reads as "" */
    snprintf(path, sizeof path, "%s/empty", tmp);
    write_text(path, "");
    len = 99;
    assert_int_equal(ava_file_read_all(path, 0, &text, &len, err), 0);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);

    /* a directory is not readable as a file */
    assert_int_equal(ava_file_read_all(tmp, 100, &text, NULL, err), AVA_EIO);
    remove_tmpdir(tmp);
    assert_int_equal(ava_file_size(path), -1);
}

static void test_file_append_line(void **state) {
    (void)state;
    char tmp[64], path[256], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/events", tmp);
    assert_int_equal(ava_file_append_line(path, "first", err), 0);
    assert_int_equal(ava_file_append_line(path, "", err), 0);
    assert_int_equal(ava_file_append_line(path, "third line", err), 0);
    char *text = read_text(path);
    assert_string_equal(text, "first\n\nthird line\n");
    free(text);
    snprintf(path, sizeof path, "%s/no/dir/events", tmp);
    assert_int_equal(ava_file_append_line(path, "x", err), AVA_EIO);
    remove_tmpdir(tmp);
}

/* ---- sha256.h ---- */

static void hex(const uint8_t *d, char out[65]) {
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_sha256_fips_vectors(void **state) {
    (void)state;
    static const struct {
        const char *in;
        const char *digest;
    } cases[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        uint8_t d[32];
        char h[65];
        ava_sha256(cases[i].in, strlen(cases[i].in), d);
        hex(d, h);
        CHECK(strcmp(h, cases[i].digest) == 0, "sha256('%s') = %s", cases[i].in, h);
        ava_sha256_hex(cases[i].in, h);
        CHECK(strcmp(h, cases[i].digest) == 0, "sha256_hex('%s') = %s", cases[i].in, h);
    }
}

static void test_sha256_million_a(void **state) {
    (void)state;
    size_t n = 1000000;
    char *a = ava_xmalloc(n);
    memset(a, 'a', n);
    uint8_t d[32];
    char h[65];
    ava_sha256(a, n, d);
    hex(d, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void test_sha256_padding_boundaries(void **state) {
    (void)state;
    /* digests of n times 'a', from sha256sum */
    static const struct {
        size_t n;
        const char *digest;
    } cases[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char a[80];
        uint8_t d[32];
        char h[65];
        memset(a, 'a', cases[i].n);
        ava_sha256(a, cases[i].n, d);
        hex(d, h);
        CHECK(strcmp(h, cases[i].digest) == 0, "%zu x 'a': %s", cases[i].n, h);
    }
}

static void test_token_new_format(void **state) {
    (void)state;
    char t1[45], t2[45];
    memset(t1, 'X', sizeof t1);
    assert_int_equal(ava_token_new(t1), 0);
    assert_int_equal(ava_token_new(t2), 0);
    assert_int_equal(strlen(t1), 44);
    assert_memory_equal(t1, "ava_", 4);
    for (int i = 4; i < 44; i++)
        CHECK((t1[i] >= '0' && t1[i] <= '9') || (t1[i] >= 'a' && t1[i] <= 'f'),
              "token '%s' has a non-hex character at %d", t1, i);
    assert_string_not_equal(t1, t2);
}

/* ---- ini.h ---- */

struct ini_log {
    struct ava_buf b;
    int calls;
    const char *fail_key; /* the callback refuses this key */
};

static int ini_collect(void *ctx, const char *section, const char *key, const char *value,
                       char *err) {
    struct ini_log *l = ctx;
    l->calls++;
    if (l->fail_key && strcmp(key, l->fail_key) == 0)
        return ava_err(err, AVA_ECONFLICT, "key '%s' is refused", key);
    ava_buf_printf(&l->b, "[%s]%s=%s|", section, key, value);
    return 0;
}

static int ini_run(const char *text, size_t len, struct ini_log *l, char *err) {
    return ava_ini_parse(text, len, ini_collect, l, err);
}

static void test_ini_sections_comments_trimming(void **state) {
    (void)state;
    static const char text[] = "top = 1\n"
                               "; a comment\n"
                               "# another = comment\n"
                               "\n"
                               "   \t\n"
                               "[ avad ]\n"
                               "  data   =   /srv/ava  \n"
                               "listen=0.0.0.0:80\r\n"
                               "empty =\n"
                               "eq = a=b=c\n"
                               "   ; indented comment\n"
                               "[other]\n"
                               "k v = spaced key\n"
                               "last = no newline";
    struct ini_log l = {0};
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ini_run(text, strlen(text), &l, err), 0);
    assert_string_equal(l.b.data, "[]top=1|[avad]data=/srv/ava|[avad]listen=0.0.0.0:80|"
                                  "[avad]empty=|[avad]eq=a=b=c|[other]k v=spaced key|"
                                  "[other]last=no newline|");
    assert_int_equal(l.calls, 7);
    ava_buf_free(&l.b);
}

static void test_ini_empty_input(void **state) {
    (void)state;
    struct ini_log l = {0};
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ini_run("", 0, &l, err), 0);
    static const char comments[] = "\n\n; only comments\n";
    assert_int_equal(ini_run(comments, strlen(comments), &l, err), 0);
    assert_int_equal(l.calls, 0);
    ava_buf_free(&l.b);
}

static void test_ini_errors_name_the_line(void **state) {
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"[a]\nk = v\nno equals here\n", "line 3"}, {"[a]\nk = v\nno equals here\n", "key = value"},
        {"k = v\n[unterminated\n", "line 2"},       {"[a] trailing\n", "line 1"},
        {"[]\n", "line 1: empty section"},          {"[   ]\n", "empty section"},
        {"a = 1\n\n = v\n", "line 3: missing key"}, {"x\n", "line 1"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ini_log l = {0};
        char err[AVA_ERRLEN] = "";
        int r = ini_run(cases[i].text, strlen(cases[i].text), &l, err);
        CHECK(r == AVA_EINVALID, "case %zu should fail, got %d", i, r);
        CHECK(strstr(err, cases[i].msg) != NULL, "case %zu: message '%s' lacks '%s'", i, err,
              cases[i].msg);
        ava_buf_free(&l.b);
    }
}

static void test_ini_line_length_limit(void **state) {
    (void)state;
    /* a line of 1023 bytes is fine, one of 1024 is refused */
    char text[2 * AVA_INI_LINE_MAX + 16];
    struct ini_log l = {0};
    char err[AVA_ERRLEN] = "";
    size_t n = 0;
    n += (size_t)sprintf(text, "a = 1\nk = ");
    size_t vlen = (AVA_INI_LINE_MAX - 1) - 4; /* "k = " + value = 1023 */
    memset(text + n, 'v', vlen);
    n += vlen;
    text[n++] = '\n';
    assert_int_equal(ini_run(text, n, &l, err), 0);
    assert_int_equal(l.calls, 2);

    text[n - 1] = 'v'; /* the same line, one byte longer, at the end of the text */
    text[n++] = '\n';
    err[0] = '\0';
    assert_int_equal(ini_run(text, n, &l, err), AVA_EINVALID);
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, "1023"));

    /* without a final newline too */
    err[0] = '\0';
    assert_int_equal(ini_run(text, n - 1, &l, err), AVA_EINVALID);
    assert_non_null(strstr(err, "line 2"));
    ava_buf_free(&l.b);
}

static void test_ini_nul_byte_refused(void **state) {
    (void)state;
    static const char text[] = "a = 1\nb = x\0y\nc = 3\n";
    struct ini_log l = {0};
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ini_run(text, sizeof text - 1, &l, err), AVA_EINVALID);
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, "NUL"));
    assert_int_equal(l.calls, 1);
    ava_buf_free(&l.b);
}

static void test_ini_callback_error_propagates(void **state) {
    (void)state;
    static const char text[] = "[s]\na = 1\n\nbad = 2\nc = 3\n";
    struct ini_log l = {.fail_key = "bad"};
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ini_run(text, strlen(text), &l, err), AVA_ECONFLICT);
    assert_string_equal(err, "line 4: key 'bad' is refused");
    assert_int_equal(l.calls, 2); /* stopped at the refused key */
    ava_buf_free(&l.b);
}

/* ---- jsonfields.h ---- */

static const struct ava_field schema[] = {
    {"name", AVA_FIELD_STRING, true, false}, {"count", AVA_FIELD_INT, false, false},
    {"on", AVA_FIELD_BOOL, false, true},     {"env", AVA_FIELD_OBJECT, false, true},
    {"args", AVA_FIELD_ARRAY, false, false},
};

static int check_json(const char *text, const char *what, char *err) {
    json_error_t je;
    json_t *obj = json_loads(text, JSON_DECODE_ANY, &je);
    CHECK(obj != NULL, "bad test JSON '%s': %s", text, je.text);
    int r = ava_json_check_fields(obj, schema, N_ELEMS(schema), what, err);
    json_decref(obj);
    return r;
}

static void test_json_fields_accepts_declared_members(void **state) {
    (void)state;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(check_json("{\"name\": \"a\", \"count\": 3, \"on\": false, \"env\": {},"
                                " \"args\": []}",
                                "req", err),
                     0);
    assert_int_equal(check_json("{\"name\": \"a\"}", "req", err), 0);
}

static void test_json_fields_null_means_not_given(void **state) {
    (void)state;
    char err[AVA_ERRLEN] = "";
    json_t *obj = json_pack("{s:s, s:n, s:n}", "name", "a", "on", "env");
    assert_int_equal(ava_json_check_fields(obj, schema, N_ELEMS(schema), "req", err), 0);
    assert_null(json_object_get(obj, "on"));
    assert_null(json_object_get(obj, "env"));
    assert_int_equal(json_object_size(obj), 1);
    json_decref(obj);
}

static void test_json_fields_refusals_name_the_field(void **state) {
    (void)state;
    static const struct {
        const char *json;
        const char *msg;
    } cases[] = {
        {"[]", "req: expected a JSON object"},
        {"\"x\"", "req: expected a JSON object"},
        {"{}", "req: field 'name' is required"},
        {"{\"count\": 1}", "req: field 'name' is required"},
        {"{\"name\": null}", "req: field 'name' must be a string"},
        {"{\"name\": 1}", "req: field 'name' must be a string"},
        {"{\"name\": \"a\", \"count\": \"3\"}", "req: field 'count' must be an integer"},
        {"{\"name\": \"a\", \"count\": 3.5}", "req: field 'count' must be an integer"},
        {"{\"name\": \"a\", \"count\": null}", "req: field 'count' must be an integer"},
        {"{\"name\": \"a\", \"on\": 1}", "req: field 'on' must be true or false"},
        {"{\"name\": \"a\", \"env\": []}", "req: field 'env' must be an object"},
        {"{\"name\": \"a\", \"args\": {}}", "req: field 'args' must be an array"},
        {"{\"name\": \"a\", \"colour\": \"red\"}", "req: unknown field 'colour'"},
        {"{\"Name\": \"a\"}", "req: unknown field 'Name'"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char err[AVA_ERRLEN] = "";
        int r = check_json(cases[i].json, "req", err);
        CHECK(r == AVA_EINVALID, "case %zu (%s) accepted", i, cases[i].json);
        CHECK(strcmp(err, cases[i].msg) == 0, "case %zu: '%s', want '%s'", i, err, cases[i].msg);
    }
    char err[AVA_ERRLEN] = "";
    assert_int_equal(check_json("{}", NULL, err), AVA_EINVALID);
    assert_string_equal(err, "field 'name' is required");
}

/* ---- md5.h ---- */

static void test_md5_rfc1321_vectors(void **state) {
    (void)state;
    static const struct {
        const char *in, *hex;
    } cases[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ava_md5 m;
        char hex[33];
        ava_md5_init(&m);
        /* fed in uneven pieces, so that block boundaries fall inside updates */
        size_t n = strlen(cases[i].in);
        for (size_t at = 0; at < n; at += 7)
            ava_md5_update(&m, cases[i].in + at, n - at < 7 ? n - at : 7);
        ava_md5_hex(&m, hex);
        assert_string_equal(hex, cases[i].hex);
    }
}

static void test_md5_file_matches_and_missing(void **state) {
    (void)state;
    char tmp[64], path[128], hex[33], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/f", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 100000; i++) /* 1,000,000 bytes: "a" repeated */
        fputs("aaaaaaaaaa", f);
    fclose(f);
    assert_int_equal(ava_md5_file(path, hex, err), 0);
    assert_string_equal(hex, "7707d6ae4e027c70eea2a935c2296f21");
    snprintf(path, sizeof path, "%s/missing", tmp);
    assert_int_equal(ava_md5_file(path, hex, err), AVA_ENOTFOUND);
    remove_tmpdir(tmp);
}

/* ---- rundir.h ---- */

static void test_rundir_status_round_trip(void **state) {
    (void)state;
    char tmp[64], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    struct ava_shim_info si = {.state = "stopping",
                               .pid = 4242,
                               .start_time = UINT64_C(123456789012),
                               .started_at = INT64_C(1764130000123),
                               .log_start = 98765,
                               .entry_pid = 4243};
    assert_int_equal(ava_rundir_write_status(tmp, &si, err), 0);
    struct ava_shim_info back;
    memset(&back, 0xff, sizeof back);
    assert_int_equal(ava_rundir_read_status(tmp, &back, err), 0);
    assert_int_equal(back.pid, 4242);
    assert_int_equal(back.start_time, UINT64_C(123456789012));
    assert_int_equal(back.started_at, INT64_C(1764130000123));
    assert_int_equal(back.log_start, 98765);
    assert_int_equal(back.entry_pid, 4243);
    assert_string_equal(back.state, "stopping");
    assert_int_equal(count_entries(tmp), 1);
    remove_tmpdir(tmp);
}

static void test_rundir_read_missing_files(void **state) {
    (void)state;
    char tmp[64], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    struct ava_shim_info si;
    struct ava_exit_record er;
    assert_int_equal(ava_rundir_read_status(tmp, &si, err), AVA_ENOTFOUND);
    assert_int_equal(ava_rundir_read_exit(tmp, &er, err), AVA_ENOTFOUND);
    remove_tmpdir(tmp);
}

static void test_rundir_parse_shim_good(void **state) {
    (void)state;
    struct ava_shim_info si;
    char err[AVA_ERRLEN] = "";
    /* unknown keys and blank lines are skipped; a missing final newline is fine */
    assert_int_equal(
        ava_rundir_parse_status("pid=10\n\nstart_time=20\nfuture_key=5\nentry_pid=11", &si, err),
        0);
    assert_int_equal(si.pid, 10);
    assert_int_equal(si.start_time, 20);
    assert_int_equal(si.entry_pid, 11);
    assert_int_equal(si.started_at, 0);
    assert_int_equal(si.log_start, 0);
}

/* rundir.c says unknown keys are ignored "so newer shims stay readable": that must hold for
 * any value a newer shim may write, not only numbers. */
static void test_rundir_parse_shim_ignores_unknown_text_keys(void **state) {
    (void)state;
    struct ava_shim_info si;
    char err[AVA_ERRLEN] = "";
    int r = ava_rundir_parse_status("pid=10\nstart_time=20\nsandbox=bwrap\n", &si, err);
    CHECK(r == 0, "an unknown key with a text value was refused: %s", err);
    assert_int_equal(si.pid, 10);
    assert_int_equal(si.start_time, 20);
}

static void test_rundir_parse_status_bad(void **state) {
    (void)state;
    char longline[512];
    snprintf(longline, sizeof longline, "pid=1\nstart_time=2\nx=%0400d\n", 0);
    const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"", "missing"},
        {"pid\nstart_time=5\n", "not key=value"},
        {"pid=abc\nstart_time=5\n", "'pid'"},
        {"pid=12x\nstart_time=5\n", "'pid'"},
        {"pid=\nstart_time=5\n", "'pid'"},
        {"start_time=5\n", "missing"},
        {"pid=5\n", "missing"},
        {"pid=0\nstart_time=5\n", "missing"},
        {"pid=-3\nstart_time=5\n", "'pid'"},
        {"pid=5\nstart_time=-1\n", "'start_time'"},
        {"pid=5\nstart_time=5\nlog_start=1.5\n", "line 3"},
        {longline, "line 3 is too long"},
        {"state=exploded\npid=5\nstart_time=5\n", "'state'"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ava_shim_info si;
        char err[AVA_ERRLEN] = "";
        int r = ava_rundir_parse_status(cases[i].text, &si, err);
        CHECK(r == AVA_EINVALID, "case %zu should fail, got %d", i, r);
        CHECK(strstr(err, cases[i].msg) != NULL, "case %zu: message '%s' lacks '%s'", i, err,
              cases[i].msg);
        CHECK(strstr(err, "status file") != NULL, "case %zu: message '%s' lacks 'status file'", i,
              err);
    }
}

/* A pid that does not fit pid_t must be refused, not wrapped to another process's pid. */
static void test_rundir_parse_status_refuses_pid_out_of_range(void **state) {
    (void)state;
    static const char *const texts[] = {
        "pid=4294967297\nstart_time=5\n", /* 2^32 + 1: would wrap to pid 1 */
        "pid=2147483648\nstart_time=5\n", /* INT_MAX + 1 */
        "pid=5\nstart_time=5\nentry_pid=4294967298\n",
    };
    for (size_t i = 0; i < N_ELEMS(texts); i++) {
        struct ava_shim_info si;
        char err[AVA_ERRLEN] = "";
        int r = ava_rundir_parse_status(texts[i], &si, err);
        CHECK(r == AVA_EINVALID, "case %zu accepted: pid %d entry_pid %d", i, (int)si.pid,
              (int)si.entry_pid);
    }
}

static void test_rundir_exit_round_trip_flattens_reason(void **state) {
    (void)state;
    char tmp[64], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    struct ava_exit_record er = {.state = "timed_out",
                                 .exit_code = 143,
                                 .signal = 15,
                                 .reason = "max runtime 3s reached\nthen killed\r\nx=y",
                                 .started_at = 1000,
                                 .ended_at = 5000,
                                 .stopping_at = 4000,
                                 .log_start = 10,
                                 .log_end = 2000};
    assert_int_equal(ava_rundir_write_exit(tmp, &er, err), 0);
    struct ava_exit_record back;
    memset(&back, 0x55, sizeof back);
    assert_int_equal(ava_rundir_read_exit(tmp, &back, err), 0);
    assert_string_equal(back.state, "timed_out");
    assert_int_equal(back.exit_code, 143);
    assert_int_equal(back.signal, 15);
    assert_string_equal(back.reason, "max runtime 3s reached then killed  x=y");
    assert_int_equal(back.started_at, 1000);
    assert_int_equal(back.ended_at, 5000);
    assert_int_equal(back.stopping_at, 4000);
    assert_int_equal(back.log_start, 10);
    assert_int_equal(back.log_end, 2000);
    /* the written record has exactly one reason line */
    char path[256];
    snprintf(path, sizeof path, "%s/exit", tmp);
    char *text = read_text(path);
    int lines = 0;
    for (char *c = text; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 9);
    free(text);
    assert_int_equal(count_entries(tmp), 1);
    remove_tmpdir(tmp);
}

static void test_rundir_exit_all_final_states(void **state) {
    (void)state;
    static const char *const finals[] = {"succeeded", "failed", "stopped", "timed_out"};
    for (size_t i = 0; i < N_ELEMS(finals); i++) {
        char text[128], err[AVA_ERRLEN] = "";
        struct ava_exit_record er;
        snprintf(text, sizeof text, "state=%s\nended_at=7\nexit_code=-1\n", finals[i]);
        CHECK(ava_rundir_parse_exit(text, &er, err) == 0, "%s refused: %s", finals[i], err);
        CHECK(strcmp(er.state, finals[i]) == 0, "%s parsed as %s", finals[i], er.state);
        CHECK(er.exit_code == -1, "%s: exit_code %d", finals[i], er.exit_code);
    }
}

static void test_rundir_parse_exit_bad(void **state) {
    (void)state;
    char longline[512];
    snprintf(longline, sizeof longline, "state=failed\nended_at=5\nreason=%0400d\n", 0);
    const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"", "not a final state"},
        {"state=running\nended_at=5\n", "'running' is not a final state"},
        {"state=stopping\nended_at=5\n", "'stopping' is not a final state"},
        {"state=queued\nended_at=5\n", "not a final state"},
        {"state=SUCCEEDED\nended_at=5\n", "not a final state"},
        {"state=failed\n", "ended_at is missing"},
        {"state=failed\nended_at=0\n", "ended_at is missing"},
        {"state=failed\nended_at=abc\n", "'ended_at'"},
        {"state=failed\nended_at=5\nexit_code=1x\n", "'exit_code'"},
        {"state=failed\nended_at=5\nexit_code=\n", "'exit_code'"},
        {"state=succeeded_and_more_text\nended_at=5\n", "'state'"},
        {"state=failed\nended_at=5\njunk line\n", "line 3 is not key=value"},
        {longline, "line 3 is too long"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ava_exit_record er;
        char err[AVA_ERRLEN] = "";
        int r = ava_rundir_parse_exit(cases[i].text, &er, err);
        CHECK(r == AVA_EINVALID, "case %zu should fail, got %d", i, r);
        CHECK(strstr(err, cases[i].msg) != NULL, "case %zu: message '%s' lacks '%s'", i, err,
              cases[i].msg);
    }
}

static void test_rundir_append_event_lines(void **state) {
    (void)state;
    char tmp[64], path[256], err[AVA_ERRLEN] = "";
    make_tmpdir(tmp, sizeof tmp);
    assert_int_equal(ava_rundir_append_event(tmp, 1000, "running", "entry started", err), 0);
    assert_int_equal(ava_rundir_append_event(tmp, 2000, "stopping", "stop\nrequested\r", err), 0);
    assert_int_equal(ava_rundir_append_event(tmp, 3000, "stopped", "", err), 0);
    snprintf(path, sizeof path, "%s/events", tmp);
    char *text = read_text(path);
    assert_string_equal(text, "1000 running entry started\n"
                              "2000 stopping stop requested \n"
                              "3000 stopped \n");
    free(text);
    remove_tmpdir(tmp);
}

static void test_proc_start_time(void **state) {
    (void)state;
    uint64_t t1 = 0, t2 = 0;
    assert_int_equal(ava_proc_start_time(getpid(), &t1), 0);
    assert_true(t1 > 0);
    /* a command name with spaces and ')' must not shift the fields */
    char old[17] = "";
    assert_int_equal(prctl(PR_GET_NAME, old, 0, 0, 0), 0);
    assert_int_equal(prctl(PR_SET_NAME, "a) 1 2 ) 3 4 5", 0, 0, 0), 0);
    int r = ava_proc_start_time(getpid(), &t2);
    prctl(PR_SET_NAME, old, 0, 0, 0);
    assert_int_equal(r, 0);
    assert_int_equal(t2, t1);
    /* the parent started no later than we did */
    uint64_t tp = 0;
    assert_int_equal(ava_proc_start_time(getppid(), &tp), 0);
    assert_true(tp <= t1);

    uint64_t untouched = 77;
    assert_int_equal(ava_proc_start_time(INT_MAX, &untouched), AVA_ENOTFOUND);
    assert_int_equal(untouched, 77);
    assert_int_equal(ava_proc_start_time(-1, &untouched), AVA_ENOTFOUND);
}

/* ---- timeutil.h ---- */

static void test_format_time(void **state) {
    (void)state;
    static const struct {
        int64_t ms;
        const char *out;
    } cases[] = {
        {0, ""},
        {-1000, ""},
        {1764130000123LL, "2025-11-26T04:06:40.123Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {951782400000LL, "2000-02-29T00:00:00.000Z"},
        {4102444799999LL, "2099-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char out[32];
        memset(out, 'x', sizeof out);
        ava_format_time(cases[i].ms, out, sizeof out);
        CHECK(strcmp(out, cases[i].out) == 0, "%lld gave '%s', want '%s'", (long long)cases[i].ms,
              out, cases[i].out);
    }
    char exact[25]; /* the documented size */
    ava_format_time(1764130000123LL, exact, sizeof exact);
    assert_string_equal(exact, "2025-11-26T04:06:40.123Z");
}

static void test_clocks(void **state) {
    (void)state;
    int64_t now = ava_now_ms();
    assert_true(now > 1700000000000LL); /* after Nov 2023 */
    assert_true(now < 4102444800000LL); /* before 2100 */
    int64_t m1 = ava_mono_ms(), m2 = ava_mono_ms();
    assert_true(m2 >= m1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_formats_message_and_returns_code),
        cmocka_unit_test(test_err_without_buffer_returns_code),
        cmocka_unit_test(test_err_truncates_to_errlen),
        cmocka_unit_test(test_err_code_tables_cover_every_code),
        cmocka_unit_test(test_err_codes_are_distinct_and_negative),
        cmocka_unit_test(test_buf_append_grows_past_256),
        cmocka_unit_test(test_buf_append_keeps_embedded_nul),
        cmocka_unit_test(test_buf_printf_past_256_bytes),
        cmocka_unit_test(test_buf_printf_boundary_lengths),
        cmocka_unit_test(test_buf_reset_keeps_memory),
        cmocka_unit_test(test_buf_steal_empties_buffer),
        cmocka_unit_test(test_xasprintf_and_xstrdup),
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_startswith),
        cmocka_unit_test(test_parse_duration_good),
        cmocka_unit_test(test_parse_duration_bad),
        cmocka_unit_test(test_format_duration_exact),
        cmocka_unit_test(test_format_duration_round_trips),
        cmocka_unit_test(test_format_duration_small_buffer_terminates),
        cmocka_unit_test(test_parse_size_good),
        cmocka_unit_test(test_parse_size_bad),
        cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_format_size_whole_units_round_trip),
        cmocka_unit_test(test_parse_uint_limits),
        cmocka_unit_test(test_parse_index_list_good),
        cmocka_unit_test(test_parse_index_list_bad),
        cmocka_unit_test(test_path_join_good),
        cmocka_unit_test(test_path_join_refuses_bad_components),
        cmocka_unit_test(test_path_join_too_long),
        cmocka_unit_test(test_mkdir_p_nested_and_existing),
        cmocka_unit_test(test_mkdir_p_file_in_the_way),
        cmocka_unit_test(test_rm_rf_does_not_follow_symlinks),
        cmocka_unit_test(test_exe_dir_is_absolute),
        cmocka_unit_test(test_file_write_atomic_round_trip),
        cmocka_unit_test(test_file_write_atomic_mode),
        cmocka_unit_test(test_file_write_atomic_missing_dir),
        cmocka_unit_test(test_file_read_all_errors_and_limits),
        cmocka_unit_test(test_file_append_line),
        cmocka_unit_test(test_sha256_fips_vectors),
        cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_sha256_padding_boundaries),
        cmocka_unit_test(test_token_new_format),
        cmocka_unit_test(test_ini_sections_comments_trimming),
        cmocka_unit_test(test_ini_empty_input),
        cmocka_unit_test(test_ini_errors_name_the_line),
        cmocka_unit_test(test_ini_line_length_limit),
        cmocka_unit_test(test_ini_nul_byte_refused),
        cmocka_unit_test(test_ini_callback_error_propagates),
        cmocka_unit_test(test_json_fields_accepts_declared_members),
        cmocka_unit_test(test_json_fields_null_means_not_given),
        cmocka_unit_test(test_json_fields_refusals_name_the_field),
        cmocka_unit_test(test_md5_rfc1321_vectors),
        cmocka_unit_test(test_md5_file_matches_and_missing),
        cmocka_unit_test(test_rundir_status_round_trip),
        cmocka_unit_test(test_rundir_read_missing_files),
        cmocka_unit_test(test_rundir_parse_shim_good),
        cmocka_unit_test(test_rundir_parse_shim_ignores_unknown_text_keys),
        cmocka_unit_test(test_rundir_parse_status_bad),
        cmocka_unit_test(test_rundir_parse_status_refuses_pid_out_of_range),
        cmocka_unit_test(test_rundir_exit_round_trip_flattens_reason),
        cmocka_unit_test(test_rundir_exit_all_final_states),
        cmocka_unit_test(test_rundir_parse_exit_bad),
        cmocka_unit_test(test_rundir_append_event_lines),
        cmocka_unit_test(test_proc_start_time),
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
