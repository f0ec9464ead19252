/* test_sdk.c: libava (include/ava/ava.h): the exact lines, values that read back exactly,
 * refused arguments, threads, a full pipe and the ava.dropped point, a vanished supervisor,
 * the one warning outside ava, the lazy flusher, exit and fork. Links the static library. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../include/ava/ava.h"
#include "../../src/sdk/ava_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static int pipe_fds[2] = {-1, -1};

/* CLOCK_REALTIME in ns. */
static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC in seconds. */
static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Points AVA_METRICS_FD at fd and makes the SDK read it again. */
static void use_fd(int fd) {
    char s[16];
    snprintf(s, sizeof s, "%d", fd);
    setenv("AVA_METRICS_FD", s, 1);
    ava__reset_for_tests();
}

/* A fresh pipe as AVA_METRICS_FD; the read end is non-blocking. */
static int setup_pipe(void **state) {
    (void)state;
    if (pipe(pipe_fds) != 0)
        return -1;
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    use_fd(pipe_fds[1]);
    return 0;
}

/* Forgets the pipe before closing it, so that nothing (the exit-time flush included) writes
 * to a descriptor number that may be reused. */
static int teardown_pipe(void **state) {
    (void)state;
    ava__reset_for_tests();
    unsetenv("AVA_METRICS_FD");
    for (int i = 0; i < 2; i++) {
        if (pipe_fds[i] >= 0)
            close(pipe_fds[i]);
        pipe_fds[i] = -1;
    }
    return 0;
}

/* Reads what fd holds now (non-blocking) into a malloc'd NUL-terminated string. */
static char *read_available(int fd, size_t *len_out) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        if (cap - len < 65536) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n > 0) {
            len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break; /* EAGAIN: empty for now; 0: closed */
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

/* Flushes the SDK and returns what the pipe holds. */
static char *flush_and_read(void) {
    assert_int_equal(ava_flush(), 0);
    return read_available(pipe_fds[0], NULL);
}

/* Number of '\n' in s. */
static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* One parsed line. */
struct line {
    char name[AVA_NAME_MAX + 1];
    char phase[AVA_PHASE_MAX + 1]; /* "" = none */
    int64_t epoch;                 /* -1 = none */
    char value_text[40];
    double value;
    int64_t step;
    int64_t ts;
};

/* Parses one line (without its '\n') strictly as libava writes it. Returns 0 or -1. */
static int parse_line(const char *s, size_t len, struct line *l) {
    char text[256];
    if (len >= sizeof text)
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    memset(l, 0, sizeof *l);
    l->epoch = -1;
    const char *p = text;
    int n = 0;
    if (sscanf(p, "%64[A-Za-z0-9._/-]%n", l->name, &n) != 1)
        return -1;
    p += n;
    if (strncmp(p, ",phase=", 7) == 0) {
        n = 0;
        if (sscanf(p, ",phase=%16[a-z0-9_]%n", l->phase, &n) != 1 || n == 0)
            return -1;
        p += n;
    }
    if (strncmp(p, ",epoch=", 7) == 0) {
        n = 0;
        if (sscanf(p, ",epoch=%" SCNd64 "%n", &l->epoch, &n) != 1 || n == 0)
            return -1;
        p += n;
    }
    n = 0;
    if (sscanf(p, " value=%39[^,],step=%" SCNd64 "i %" SCNd64 "%n", l->value_text, &l->step, &l->ts,
               &n) != 3 ||
        p[n] != '\0')
        return -1;
    char *end;
    l->value = strtod(l->value_text, &end);
    return *end == '\0' ? 0 : -1;
}

/* Splits text into lines, parsing each; fails the test on a malformed one. Returns the count;
 * lines (malloc'd, caller frees) receives them. */
static size_t parse_all(const char *text, struct line **lines) {
    size_t cap = count_lines(text) + 1, n = 0;
    *lines = calloc(cap, sizeof **lines);
    assert_non_null(*lines);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        CHECK(nl, "unterminated line: %.80s", p);
        CHECK(parse_line(p, (size_t)(nl - p), &(*lines)[n]) == 0, "malformed line: %.*s",
              (int)(nl - p), p);
        n++;
        p = nl + 1;
    }
    return n;
}

/* ---- exact lines ---- */

static void test_exact_lines(void **state) {
    (void)state;
    int64_t before = now_ns();
    assert_int_equal(ava_report("accuracy", 1200, 0.912, "phase=val,epoch=3"), 0);
    assert_int_equal(ava_report("accuracy", 1200, 0.912, "epoch=3,phase=val"), 0);
    assert_int_equal(ava_report("loss", 5, 0.31, NULL), 0);
    assert_int_equal(ava_report("loss", 6, 0.25, ""), 0);
    assert_int_equal(ava_report("lr", 0, 1e-3, "phase=train"), 0);
    assert_int_equal(ava_report("train/top-5.acc_x", 7, 3, "epoch=0"), 0);
    assert_int_equal(ava_report_ex("accuracy", 1200, 0.912, "val", 3), 0);
    assert_int_equal(ava_report_ex("loss", 9, -2.5, NULL, AVA_NO_EPOCH), 0);
    assert_int_equal(ava_report_ex("loss", 10, 100, "", 12), 0);
    assert_int_equal(ava_report("big", INT64_MAX, 1e300, "phase=a,epoch=9223372036854775807"), 0);
    int64_t after = now_ns();
    char *text = flush_and_read();
    static const char *want[] = {
        "accuracy,phase=val,epoch=3 value=0.912,step=1200i ",
        "accuracy,phase=val,epoch=3 value=0.912,step=1200i ",
        "loss value=0.31,step=5i ",
        "loss value=0.25,step=6i ",
        "lr,phase=train value=0.001,step=0i ",
        "train/top-5.acc_x,epoch=0 value=3,step=7i ",
        "accuracy,phase=val,epoch=3 value=0.912,step=1200i ",
        "loss value=-2.5,step=9i ",
        "loss,epoch=12 value=100,step=10i ",
        "big,phase=a,epoch=9223372036854775807 value=1e+300,step=9223372036854775807i ",
    };
    const char *p = text;
    for (size_t i = 0; i < N_ELEMS(want); i++) {
        size_t wl = strlen(want[i]);
        CHECK(strncmp(p, want[i], wl) == 0, "line %zu: want '%s', got '%.100s'", i, want[i], p);
        p += wl;
        /* the timestamp: 19 digits of CLOCK_REALTIME ns taken during the call */
        char *end;
        long long ts = strtoll(p, &end, 10);
        CHECK(end - p == 19 && *end == '\n', "line %zu: bad timestamp '%.30s'", i, p);
        CHECK(ts >= before && ts <= after,
              "line %zu: timestamp %lld outside [%" PRId64 ", %" PRId64 "]", i, ts, before, after);
        p = end + 1;
    }
    assert_string_equal(p, "");
    assert_int_equal(ava_dropped_total(), 0);
    free(text);
}

/* ---- values ---- */

/* Values that are easy to get wrong: they must read back bit for bit. */
static const double tricky[] = {0.1,
                                0.2,
                                0.3,
                                0.30000000000000004,
                                1e-300,
                                123456789.123456789,
                                5e-324,
                                2.2250738585072014e-308,
                                2.2250738585072009e-308,
                                DBL_MAX,
                                -DBL_MAX,
                                1.0 / 3,
                                2.0 / 3,
                                9007199254740993.0,
                                1e15,
                                1e16,
                                1e17,
                                1e21,
                                1e22,
                                1e23,
                                1e-5,
                                1e-4,
                                0.0001234,
                                0.912,
                                -0.0,
                                0.0,
                                1,
                                -1,
                                4294967296.0,
                                3.4028234663852886e38,
                                1.1754943508222875e-38,
                                0.1f,
                                0.31f};

/* The same bits (so that -0 differs from 0). */
static bool same_double(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static void test_values_round_trip(void **state) {
    (void)state;
    for (size_t i = 0; i < N_ELEMS(tricky); i++)
        assert_int_equal(ava_report("v", (int64_t)i, tricky[i], NULL), 0);
    char *text = flush_and_read();
    struct line *lines;
    size_t n = parse_all(text, &lines);
    assert_int_equal(n, N_ELEMS(tricky));
    for (size_t i = 0; i < n; i++) {
        CHECK(lines[i].step == (int64_t)i, "line %zu has step %" PRId64, i, lines[i].step);
        CHECK(same_double(lines[i].value, tricky[i]), "%.17g was written as %s, reads %.17g",
              tricky[i], lines[i].value_text, lines[i].value);
    }
    /* a few plain renderings, as %g would write them */
    static const struct {
        double v;
        const char *text;
    } plain[] = {
        {0.1, "0.1"},       {1e-300, "1e-300"}, {123456789.123456789, "123456789.12345679"},
        {-0.0, "-0"},       {100, "100"},       {1e16, "10000000000000000"},
        {1e17, "1e+17"},    {1e-5, "1e-05"},    {0.0001, "0.0001"},
        {5e-324, "5e-324"}, {-1.5, "-1.5"},     {DBL_MAX, "1.7976931348623157e+308"}};
    for (size_t i = 0; i < N_ELEMS(plain); i++) {
        char out[AVA__DOUBLE_MAX + 1];
        size_t len = ava__fmt_double(out, plain[i].v);
        out[len] = '\0';
        assert_string_equal(out, plain[i].text);
    }
    free(lines);
    free(text);
}

/* The formatter alone on many bit patterns (every finite kind: normal, subnormal, huge). */
static void test_formatter_random(void **state) {
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15u;
    char out[AVA__DOUBLE_MAX + 1];
    for (int i = 0; i < 300000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (!isfinite(v))
            continue;
        size_t len = ava__fmt_double(out, v);
        CHECK(len <= AVA__DOUBLE_MAX, "%.17g: %zu bytes", v, len);
        out[len] = '\0';
        char *end;
        double r = strtod(out, &end);
        CHECK(*end == '\0' && same_double(r, v), "%.17g was written as %s", v, out);
    }
    for (int e = -1074; e <= 1023; e++) { /* powers of two and the doubles either side */
        uint64_t bits = e >= -1022 ? (uint64_t)(e + 1023) << 52 : (uint64_t)1 << (e + 1074);
        for (uint64_t b = bits - 1; b <= bits + 1; b++) {
            double v;
            memcpy(&v, &b, sizeof v);
            if (!isfinite(v))
                continue;
            size_t len = ava__fmt_double(out, v);
            out[len] = '\0';
            CHECK(same_double(strtod(out, NULL), v), "%.17g was written as %s", v, out);
        }
    }
    static const uint64_t ints[] = {0, 1, 9, 10, 99, 100, 4294967295u, 4294967296u, UINT64_MAX};
    static const char *const texts[] = {
        "0", "1", "9", "10", "99", "100", "4294967295", "4294967296", "18446744073709551615"};
    for (size_t i = 0; i < N_ELEMS(ints); i++) {
        size_t len = ava__fmt_u64(out, ints[i]);
        out[len] = '\0';
        assert_string_equal(out, texts[i]);
    }
}

/* The significant digits of a number's text (sign, point, exponent, leading and trailing zeros
 * left out) into dig (NUL-terminated); returns how many. */
static int sig_digits(const char *text, char *dig) {
    int n = 0, last = 0;
    for (const char *p = text; *p && *p != 'e'; p++) {
        if (*p < '0' || *p > '9' || (n == 0 && *p == '0'))
            continue;
        dig[n++] = *p;
        if (*p != '0')
            last = n;
    }
    dig[last] = '\0';
    return last;
}

/* Fails unless text (what ava__fmt_double wrote for v > 0) is the shortest decimal that reads
 * back as v, and of those the closest: no decimal with one digit fewer reads back as v (the two
 * that bracket v's exact value are the only candidates), and when printf's correctly rounded
 * decimal with as many digits reads back too, text has its digits. */
static void check_shortest(double v, const char *text) {
    char dig[32], exact[64], cand[80];
    int d = sig_digits(text, dig);
    snprintf(exact, sizeof exact, "%.40e", v); /* 41 digits: glibc prints them exactly */
    int e10 = atoi(strchr(exact, 'e') + 1);
    char ex[48];
    int nex = 0;
    for (const char *p = exact; *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            ex[nex++] = *p;
    if (d > 1) {
        char lo[32], hi[32];
        memcpy(lo, ex, (size_t)(d - 1));
        lo[d - 1] = '\0';
        memcpy(hi, lo, (size_t)d);
        int i = d - 2, hi_e = e10;
        while (i >= 0 && hi[i] == '9')
            hi[i--] = '0';
        if (i >= 0) {
            hi[i]++;
        } else { /* 99..9 + 1 */
            hi[0] = '1';
            hi_e++;
        }
        snprintf(cand, sizeof cand, "%c%s%se%d", lo[0], d > 2 ? "." : "", lo + 1, e10);
        CHECK(strtod(cand, NULL) != v, "%.17g written as %s, but %s reads back too", v, text, cand);
        snprintf(cand, sizeof cand, "%c%s%se%d", hi[0], d > 2 ? "." : "", hi + 1, hi_e);
        CHECK(strtod(cand, NULL) != v, "%.17g written as %s, but %s reads back too", v, text, cand);
    }
    snprintf(cand, sizeof cand, "%.*e", d - 1, v);
    if (strtod(cand, NULL) == v) {
        char want[32];
        sig_digits(cand, want);
        CHECK(strcmp(dig, want) == 0, "%.17g written as %s, but %s is closer", v, text, cand);
    }
}

/* Writes v, checks that it reads back bit for bit and (v > 0) that it is the shortest. */
static void check_double(double v) {
    char out[AVA__DOUBLE_MAX + 8];
    size_t len = ava__fmt_double(out, v);
    CHECK(len <= AVA__DOUBLE_MAX, "%.17g: %zu bytes", v, len);
    out[len] = '\0';
    char *end;
    double r = strtod(out, &end);
    CHECK(*end == '\0' && same_double(r, v), "%.17g was written as %s", v, out);
    if (v > 0)
        check_shortest(v, out);
}

/* The shortest form, on every kind of double: random bit patterns, the smallest subnormals
 * one by one, the largest ones, powers of ten and two and their neighbours, integers, values
 * with few digits, extremes, negatives. */
static void test_formatter_shortest(void **state) {
    (void)state;
    uint64_t x = 0x2545F4914F6CDD1Du;
    for (int i = 0; i < 40000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (isfinite(v))
            check_double(fabs(v));
    }
    for (uint64_t t = 1; t < 3000; t++) { /* subnormals: their decimals have few digits */
        double v;
        memcpy(&v, &t, sizeof v);
        check_double(v);
    }
    for (uint64_t t = ((uint64_t)1 << 52) - 1000; t < ((uint64_t)1 << 52) + 1000; t++) {
        double v; /* the largest subnormals and the smallest normals */
        memcpy(&v, &t, sizeof v);
        check_double(v);
    }
    for (int e = -324; e <= 308; e++) {
        char text[16];
        snprintf(text, sizeof text, "1e%d", e);
        double p = strtod(text, NULL);
        if (p == 0)
            continue;
        uint64_t bits;
        memcpy(&bits, &p, sizeof bits);
        for (uint64_t b = bits - 1; b <= bits + 1; b++) { /* and the doubles either side */
            double v;
            memcpy(&v, &b, sizeof v);
            if (isfinite(v))
                check_double(v);
        }
        for (int d = 2; d <= 9; d += 3) {
            snprintf(text, sizeof text, "%de%d", d, e);
            double v = strtod(text, NULL);
            if (v > 0 && isfinite(v))
                check_double(v);
        }
    }
    for (int i = 0; i < 3000; i++) {
        check_double(i);
        check_double(i * 0.001);
        check_double(i * 0.1);
        check_double(1.0 / (1.0 + 1e-6 * i * 997)); /* the benchmark's curve */
        check_double(-(double)i * 1e-3);            /* negatives: the sign, then the same */
    }
    check_double(9007199254740991.0); /* 2^53 - 1 */
    check_double(9007199254740992.0);
    check_double(18446744073709551616.0);
    check_double(DBL_MAX);
    check_double(DBL_MIN);
    check_double(DBL_TRUE_MIN);
    check_double(-DBL_MAX);
    check_double(-DBL_TRUE_MIN);
    /* the shortest is sometimes shorter than printf's correctly rounded digits */
    static const struct {
        double v;
        const char *text;
    } exact[] = {{5e-324, "5e-324"},
                 {1e-323, "1e-323"},
                 {2.2250738585072014e-308, "2.2250738585072014e-308"},
                 {9007199254740993.0, "9007199254740992"},
                 {0.3, "0.3"},
                 {0.30000000000000004, "0.30000000000000004"},
                 {1e23, "1e+23"},
                 {1.5, "1.5"},
                 {123456.0, "123456"},
                 {0.001, "0.001"},
                 {1234567890123456789.0, "1.2345678901234568e+18"},
                 {7.1202363472230444e-307, "7.120236347223045e-307"}};
    for (size_t i = 0; i < N_ELEMS(exact); i++) {
        char out[AVA__DOUBLE_MAX + 8];
        size_t len = ava__fmt_double(out, exact[i].v);
        out[len] = '\0';
        assert_string_equal(out, exact[i].text);
    }
}

/* Integers: every value below 10^6 (against a counter kept as text), each length's bounds,
 * random values of every length (against printf). */
static void test_formatter_u64(void **state) {
    (void)state;
    char ref[24] = "0", out[32];
    size_t rl = 1;
    for (uint64_t v = 0; v < 1000000; v++) {
        size_t n = ava__fmt_u64(out, v);
        CHECK(n == rl && memcmp(out, ref, n) == 0, "%" PRIu64 " written as %.*s", v, (int)n, out);
        size_t i = rl;
        while (i > 0 && ref[i - 1] == '9')
            ref[--i] = '0';
        if (i == 0) {
            memmove(ref + 1, ref, rl++);
            ref[0] = '1';
        } else {
            ref[i - 1]++;
        }
    }
    uint64_t x = 0x9E3779B97F4A7C15u, p = 1;
    for (int d = 1; d <= 20; d++, p *= 10) {
        uint64_t vals[] = {p, p - 1, p + 1, x >> (d * 3)};
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (size_t i = 0; i < N_ELEMS(vals); i++) {
            snprintf(ref, sizeof ref, "%" PRIu64, vals[i]);
            size_t n = ava__fmt_u64(out, vals[i]);
            CHECK(n == strlen(ref) && memcmp(out, ref, n) == 0, "%s written as %.*s", ref, (int)n,
                  out);
        }
    }
    size_t n = ava__fmt_u64(out, UINT64_MAX);
    out[n] = '\0';
    assert_string_equal(out, "18446744073709551615");
}

/* A line's timestamp through a thread's cache of its seconds: a new second, the same one, an
 * earlier one, and times below one second, as printf would write them. */
static void test_formatter_timestamp_cache(void **state) {
    (void)state;
    struct ava__ts_cache tc = {.sec = -1};
    static const int64_t ts[] = {1764130000123456789, 1764130000999999999, 1764130001000000000,
                                 1764130001000000001, 1764129999000000007, 5,
                                 999999999,           1000000000,          INT64_MAX,
                                 1764130000000000000};
    for (int pass = 0; pass < 2; pass++) { /* the second pass starts from a filled cache */
        for (size_t i = 0; i < N_ELEMS(ts); i++) {
            char out[AVA__LINE_MAX], want[64];
            size_t n = ava__fmt_tail(out, 0.5, 7, ts[i], pass ? &tc : NULL);
            if (!pass)
                ava__fmt_tail(out, 0.5, 7, ts[i], &tc);
            out[n] = '\0';
            snprintf(want, sizeof want, "0.5,step=7i %" PRId64 "\n", ts[i]);
            assert_string_equal(out, want);
        }
    }
}

/* ---- refused arguments ---- */

static void test_invalid_refused(void **state) {
    (void)state;
    char long_name[AVA_NAME_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0'; /* 65 bytes */
    static const char *bad_names[] = {"",     "a b",  "a,b", "a=b", "a\"b", "caf\xc3\xa9",
                                      "a\nb", "a\\b", "a:b", "a*"};
    for (size_t i = 0; i < N_ELEMS(bad_names); i++) {
        errno = 0;
        CHECK(ava_report(bad_names[i], 1, 1.0, NULL) == -1 && errno == EINVAL, "name '%s' accepted",
              bad_names[i]);
    }
    errno = 0;
    assert_int_equal(ava_report(NULL, 1, 1.0, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(ava_report(long_name, 1, 1.0, NULL), -1);
    static const char *bad_tags[] = {"phase=",
                                     "phase=VAL",
                                     "phase=val,",
                                     ",phase=val",
                                     "phase=val,phase=train",
                                     "epoch=3,epoch=4",
                                     "epoch=-1",
                                     "epoch=",
                                     "epoch=x",
                                     "epoch=3x",
                                     "epoch=99999999999999999999",
                                     "epoch=9223372036854775808",
                                     "foo=bar",
                                     "phase=val epoch=3",
                                     "phase=val;epoch=3",
                                     "phase=seventeen_chars_x",
                                     "phase",
                                     "=val",
                                     " phase=val",
                                     "phase=v-l",
                                     "Phase=val"};
    for (size_t i = 0; i < N_ELEMS(bad_tags); i++) {
        errno = 0;
        CHECK(ava_report("m", 1, 1.0, bad_tags[i]) == -1 && errno == EINVAL, "tags '%s' accepted",
              bad_tags[i]);
    }
    static const double bad_values[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < N_ELEMS(bad_values); i++) {
        errno = 0;
        CHECK(ava_report("m", 1, bad_values[i], NULL) == -1 && errno == EINVAL, "value %g accepted",
              bad_values[i]);
        CHECK(ava_report_ex("m", 1, bad_values[i], NULL, -1) == -1, "value %g accepted (ex)",
              bad_values[i]);
    }
    assert_int_equal(ava_report("m", -1, 1.0, NULL), -1);
    assert_int_equal(ava_report("m", INT64_MIN, 1.0, NULL), -1);
    assert_int_equal(ava_report_ex("m", -1, 1.0, NULL, -1), -1);
    assert_int_equal(ava_report_ex("m", 1, 1.0, "Val", -1), -1);
    assert_int_equal(ava_report_ex("m", 1, 1.0, "val,epoch=3", -1), -1);
    assert_int_equal(ava_report_ex("m", 1, 1.0, "seventeen_chars_x", -1), -1);
    assert_int_equal(ava_report_ex("m", 1, 1.0, "val", -2), -1);
    assert_int_equal(ava_report_ex(long_name, 1, 1.0, "val", 1), -1);
    /* nothing reached the pipe */
    assert_int_equal(ava_flush(), 0);
    size_t len;
    char *text = read_available(pipe_fds[0], &len);
    assert_int_equal(len, 0);
    free(text);
    /* the limits themselves are fine */
    long_name[AVA_NAME_MAX] = '\0';
    assert_int_equal(ava_report(long_name, 0, 0, "phase=seventeen_chars_x"), -1); /* 17 */
    assert_int_equal(ava_report(long_name, 0, 0, "phase=sixteen_chars_x1"), 0);   /* 16 */
    text = flush_and_read();
    assert_int_equal(count_lines(text), 1);
    free(text);
    assert_int_equal(ava_dropped_total(), 0);
}

/* Each thread keeps its last checked (name, tags) with their formatted start of line: the
 * cache must follow the strings' contents (the same buffer rewritten), never let an invalid
 * argument through, keep ava_report and ava_report_ex apart, and carry on with tags too long
 * to keep. */
static void test_cached_arguments(void **state) {
    (void)state;
    char name[16] = "loss", tags[80] = "phase=train";
    assert_int_equal(ava_report(name, 1, 0.5, tags), 0);
    assert_int_equal(ava_report(name, 2, 0.5, tags), 0); /* a hit */
    strcpy(name, "acc");                                 /* same buffers, new contents */
    assert_int_equal(ava_report(name, 3, 0.5, tags), 0);
    strcpy(tags, "phase=val,epoch=2");
    assert_int_equal(ava_report(name, 4, 0.5, tags), 0);
    strcpy(name, "a b"); /* now invalid: refused, and the cache still holds "acc" */
    errno = 0;
    assert_int_equal(ava_report(name, 5, 0.5, tags), -1);
    assert_int_equal(errno, EINVAL);
    strcpy(tags, "phase=val,epoch=x");
    assert_int_equal(ava_report("acc", 5, 0.5, tags), -1);
    assert_int_equal(ava_report("acc", 5, 0.5, "phase=val,epoch=2"), 0);
    assert_int_equal(ava_report("acc", -1, 0.5, "phase=val,epoch=2"), -1); /* hit, bad step */
    assert_int_equal(ava_report("acc", 6, NAN, "phase=val,epoch=2"), -1);  /* hit, bad value */
    assert_int_equal(ava_report("acc", 6, 0.5, NULL), 0);                  /* NULL = "" */
    assert_int_equal(ava_report("acc", 7, 0.5, ""), 0);
    /* ava_report_ex: its own key; the epoch is part of it */
    assert_int_equal(ava_report_ex("acc", 8, 0.5, "val", 2), 0);
    assert_int_equal(ava_report_ex("acc", 9, 0.5, "val", 3), 0);
    assert_int_equal(ava_report_ex("acc", 10, 0.5, NULL, 3), 0);
    assert_int_equal(ava_report_ex("acc", 11, 0.5, "val", -2), -1);
    assert_int_equal(ava_report("acc", 12, 0.5, "epoch=3"), 0);
    /* tags longer than the cache keeps (leading zeros): still checked and written each time */
    memset(tags, 0, sizeof tags);
    strcpy(tags, "phase=x,epoch=");
    memset(tags + strlen(tags), '0', 60);
    strcat(tags, "4");
    assert_int_equal(ava_report("acc", 13, 0.5, tags), 0);
    assert_int_equal(ava_report("acc", 14, 0.5, tags), 0);
    tags[strlen(tags) - 1] = 'x';
    assert_int_equal(ava_report("acc", 15, 0.5, tags), -1);
    char *text = flush_and_read();
    static const char *want[] = {"loss,phase=train value=0.5,step=1i ",
                                 "loss,phase=train value=0.5,step=2i ",
                                 "acc,phase=train value=0.5,step=3i ",
                                 "acc,phase=val,epoch=2 value=0.5,step=4i ",
                                 "acc,phase=val,epoch=2 value=0.5,step=5i ",
                                 "acc value=0.5,step=6i ",
                                 "acc value=0.5,step=7i ",
                                 "acc,phase=val,epoch=2 value=0.5,step=8i ",
                                 "acc,phase=val,epoch=3 value=0.5,step=9i ",
                                 "acc,epoch=3 value=0.5,step=10i ",
                                 "acc,epoch=3 value=0.5,step=12i ",
                                 "acc,phase=x,epoch=4 value=0.5,step=13i ",
                                 "acc,phase=x,epoch=4 value=0.5,step=14i "};
    const char *p = text;
    for (size_t i = 0; i < N_ELEMS(want); i++) {
        size_t wl = strlen(want[i]);
        CHECK(strncmp(p, want[i], wl) == 0, "line %zu: want '%s', got '%.80s'", i, want[i], p);
        p = strchr(p, '\n');
        CHECK(p != NULL, "line %zu: no end", i);
        p++;
    }
    assert_string_equal(p, "");
    free(text);
}

/* ---- threads ---- */

#define THREADS 4
#define PER_THREAD 10000
#define ROUNDS 10 /* so that no round outgrows the queue, whatever the reader's pace */

struct reader {
    int fd;
    char *buf;
    size_t len, cap;
    atomic_size_t lines;
};

/* Reads the pipe until the "end" line the main thread writes last, counting lines. */
static void *reader_main(void *arg) {
    struct reader *r = arg;
    for (;;) {
        if (r->cap - r->len < 65536) {
            r->cap = r->cap ? r->cap * 2 : 1 << 20;
            r->buf = realloc(r->buf, r->cap + 1);
        }
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n > 0) {
            size_t nl = 0;
            for (ssize_t i = 0; i < n; i++)
                nl += r->buf[r->len + (size_t)i] == '\n';
            r->len += (size_t)n;
            atomic_fetch_add(&r->lines, nl);
            if (r->len >= 4 && memcmp(r->buf + r->len - 4, "end\n", 4) == 0)
                break;
        } else if (n < 0 && errno == EAGAIN) {
            usleep(100);
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    r->buf[r->len] = '\0';
    return NULL;
}

/* Reports steps [from, from + PER_THREAD / ROUNDS) as metric "t<id>". */
struct job {
    int id;
    int from;
};

static void *reporter_main(void *arg) {
    const struct job *j = arg;
    char name[8];
    snprintf(name, sizeof name, "t%d", j->id);
    for (int s = j->from; s < j->from + PER_THREAD / ROUNDS; s++)
        if (ava_report(name, s, s * 0.5 + j->id, j->id % 2 ? "phase=val,epoch=7" : "phase=train") !=
            0)
            return (void *)1;
    return NULL;
}

static void test_threads_whole_lines(void **state) {
    (void)state;
    struct reader r = {.fd = pipe_fds[0]};
    pthread_t rt, t[THREADS];
    struct job jobs[THREADS];
    assert_int_equal(pthread_create(&rt, NULL, reader_main, &r), 0);
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < THREADS; i++) {
            jobs[i] = (struct job){i, round * (PER_THREAD / ROUNDS)};
            assert_int_equal(pthread_create(&t[i], NULL, reporter_main, &jobs[i]), 0);
        }
        for (int i = 0; i < THREADS; i++) {
            void *rc;
            pthread_join(t[i], &rc);
            assert_null(rc);
        }
        /* let the reader catch up before the next round */
        size_t want = (size_t)(round + 1) * THREADS * (PER_THREAD / ROUNDS);
        for (int i = 0; ava_flush() != 0 || atomic_load(&r.lines) < want; i++) {
            CHECK(i < 10000, "round %d: %zu of %zu lines after 10 s", round, atomic_load(&r.lines),
                  want);
            usleep(1000);
        }
    }
    assert_int_equal(write(pipe_fds[1], "end\n", 4), 4);
    pthread_join(rt, NULL);
    r.buf[r.len - 4] = '\0'; /* drop the "end" line */
    struct line *lines;
    size_t n = parse_all(r.buf, &lines);
    assert_int_equal(ava_dropped_total(), 0);
    assert_int_equal(n, THREADS * PER_THREAD);
    static unsigned char seen[THREADS][PER_THREAD];
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < n; i++) {
        int id = lines[i].name[1] - '0';
        CHECK(lines[i].name[0] == 't' && id >= 0 && id < THREADS && lines[i].name[2] == '\0',
              "line %zu: name %s", i, lines[i].name);
        int64_t s = lines[i].step;
        CHECK(s >= 0 && s < PER_THREAD && !seen[id][s]++, "line %zu: step %" PRId64 " of %s", i, s,
              lines[i].name);
        CHECK(lines[i].value == s * 0.5 + id, "line %zu: value %s", i, lines[i].value_text);
        CHECK(strcmp(lines[i].phase, id % 2 ? "val" : "train") == 0 &&
                  lines[i].epoch == (id % 2 ? 7 : -1),
              "line %zu: tags", i);
    }
    free(lines);
    free(r.buf);
}

/* ---- a full pipe ---- */

/* Fills the pipe with "junk\n" lines until it would block. */
static void fill_pipe(int fd) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    while (write(fd, "junk\n", 5) == 5)
        ;
    assert_true(errno == EAGAIN);
}

static void test_full_pipe_drops(void **state) {
    (void)state;
    fill_pipe(pipe_fds[1]);
    double t0 = mono_s();
    for (int i = 0; i < 10000; i++)
        assert_int_equal(ava_report("loss", i, 1.0 / (i + 1), "phase=train"), 0);
    double took = mono_s() - t0;
    CHECK(took < 1.0, "10,000 reports into a full pipe took %.3f s", took);
    uint64_t dropped = ava_dropped_total();
    assert_true(dropped > 0);
    /* drain: junk, then what the queue kept, until nothing is left queued */
    size_t cap = 1 << 20, len = 0;
    char *all = malloc(cap);
    assert_non_null(all);
    for (int round = 0;; round++) {
        assert_true(round < 10000);
        size_t n;
        char *part = read_available(pipe_fds[0], &n);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            all = realloc(all, cap);
        }
        memcpy(all + len, part, n);
        len += n;
        free(part);
        if (ava_flush() == 0 && n == 0)
            break;
        usleep(100);
    }
    all[len] = '\0';
    assert_int_equal(ava_dropped_total(), dropped); /* nothing more was lost */
    /* the next point is preceded by the count of what was lost, with its step */
    assert_int_equal(ava_report("loss", 20000, 0.5, "phase=train"), 0);
    char *tail = flush_and_read();
    char want[128];
    snprintf(want, sizeof want, "ava.dropped value=%" PRIu64 ",step=20000i ", dropped);
    CHECK(strncmp(tail, want, strlen(want)) == 0, "want '%s...', got '%.100s'", want, tail);
    const char *second = strchr(tail, '\n') + 1;
    CHECK(strncmp(second, "loss,phase=train value=0.5,step=20000i ", 39) == 0, "got '%.100s'",
          second);
    assert_int_equal(count_lines(tail), 2);
    /* every point is accounted for: kept and written, or dropped and counted */
    size_t junk = 0, kept = 0;
    for (const char *p = all; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (nl - p == 4 && strncmp(p, "junk", 4) == 0) {
            junk++;
        } else {
            struct line l;
            CHECK(parse_line(p, (size_t)(nl - p), &l) == 0 && strcmp(l.name, "loss") == 0 &&
                      l.step == (int64_t)kept,
                  "kept line %zu: %.*s", kept, (int)(nl - p), p);
            kept++;
        }
        p = nl + 1;
    }
    assert_true(junk > 0);
    CHECK(kept + dropped == 10000, "kept %zu + dropped %" PRIu64 " != 10000", kept, dropped);
    free(tail);
    free(all);
}

/* ---- the supervisor goes away ---- */

/* Runs fn with stderr going into a pipe; returns what it wrote (malloc'd). */
static char *capture_stderr(void (*fn)(void)) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    char *text = read_available(p[0], NULL);
    close(p[0]);
    return text;
}

static void report_into_closed_pipe(void) {
    close(pipe_fds[0]);
    pipe_fds[0] = -1;
    for (int i = 0; i < 50; i++)
        assert_int_equal(ava_report("loss", i, 0.5, NULL), 0);
    errno = 0;
    assert_int_equal(ava_flush(), -1);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(ava_enabled(), 0);
}

static void test_supervisor_gone(void **state) {
    (void)state;
    /* SIGPIPE keeps its default action: were it raised, the test program would die */
    signal(SIGPIPE, SIG_DFL);
    char *err = capture_stderr(report_into_closed_pipe);
    assert_string_equal(err, "ava: the metrics pipe (AVA_METRICS_FD) is closed: metrics are no "
                             "longer reported\n");
    assert_int_equal(ava_dropped_total(), 50);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
    free(err);
}

static void test_socket(void **state) {
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    use_fd(sv[0]);
    assert_int_equal(ava_report("acc", 1, 0.5, "phase=val"), 0);
    assert_int_equal(ava_flush(), 0);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    char *text = read_available(sv[1], NULL);
    assert_int_equal(strncmp(text, "acc,phase=val value=0.5,step=1i ", 32), 0);
    free(text);
    close(sv[1]); /* the peer goes: send() gets EPIPE, and no SIGPIPE (MSG_NOSIGNAL) */
    signal(SIGPIPE, SIG_DFL);
    fflush(stderr);
    int saved = dup(STDERR_FILENO), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDERR_FILENO);
    assert_int_equal(ava_report("acc", 2, 0.5, NULL), 0);
    ava_flush();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(devnull);
    assert_int_equal(ava_enabled(), 0);
    ava__reset_for_tests();
    close(sv[0]);
}

/* ---- outside ava ---- */

static void report_outside(void) {
    for (int i = 0; i < 3; i++)
        assert_int_equal(ava_report("loss", i, 0.5, "phase=train"), 0);
    assert_int_equal(ava_report_ex("loss", 3, 0.5, NULL, -1), 0);
    assert_int_equal(ava_flush(), 0);
    assert_int_equal(ava_enabled(), 0);
    /* arguments are still checked */
    errno = 0;
    assert_int_equal(ava_report("bad name", 1, 0.5, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(ava_report("loss", 1, NAN, NULL), -1);
}

static void test_outside_ava_one_warning(void **state) {
    (void)state;
    unsetenv("AVA_METRICS_FD");
    ava__reset_for_tests();
    char *err = capture_stderr(report_outside);
    assert_string_equal(err, "ava: AVA_METRICS_FD is not set: metrics are not reported\n");
    free(err);
    assert_int_equal(ava_dropped_total(), 0);

    static const char *bad[] = {"abc", "999", "-1", "3x", "99999999999999999999"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        setenv("AVA_METRICS_FD", bad[i], 1);
        ava__reset_for_tests();
        err = capture_stderr(report_outside);
        char want[200];
        snprintf(want, sizeof want,
                 "ava: AVA_METRICS_FD=%s is not a file descriptor open for writing: metrics are "
                 "not reported\n",
                 bad[i]);
        assert_string_equal(err, want);
        free(err);
    }
    /* open, but read-only */
    int ro = open("/dev/null", O_RDONLY);
    use_fd(ro);
    err = capture_stderr(report_outside);
    assert_non_null(strstr(err, "is not a file descriptor open for writing"));
    assert_int_equal(count_lines(err), 1);
    free(err);
    ava__reset_for_tests();
    close(ro);
    unsetenv("AVA_METRICS_FD");
}

/* ---- process-wide behaviour, each in a fresh child ---- */

/* Runs fn in a forked child (a fresh SDK state) with a new pipe as AVA_METRICS_FD, fn's
 * result as the exit status; returns what the pipe holds once the child has ended (what fn
 * did not read itself; less than the pipe's 64 KiB, or the child would wait at exit). */
static char *in_child(int (*fn)(int rfd)) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ava__reset_for_tests();
        char s[16];
        snprintf(s, sizeof s, "%d", p[1]);
        setenv("AVA_METRICS_FD", s, 1);
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        exit(fn(p[0])); /* exit(), not _exit(): the SDK's exit handler runs */
    }
    close(p[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: status %d", status);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    char *text = read_available(p[0], NULL);
    close(p[0]);
    return text;
}

/* Rare points are written at once by the caller, and no thread is started. */
static int child_sparse(int rfd) {
    for (int i = 0; i < 10; i++) {
        if (ava_report("loss", i, 0.5, "phase=train") != 0)
            return 1;
        usleep(5000);
        char buf[512];
        ssize_t n = read(rfd, buf, sizeof buf); /* no flush: the line is there already */
        if (n <= 0 || buf[n - 1] != '\n')
            return 2;
    }
    return ava__flusher_started() ? 3 : 0;
}

static void test_sparse_no_thread(void **state) {
    (void)state;
    char *text = in_child(child_sparse);
    assert_string_equal(text, "");
    free(text);
}

/* Fast points are batched; the flusher writes the tail of a burst within milliseconds. */
static int child_burst(int rfd) {
    for (int i = 0; i < 1000; i++)
        if (ava_report("loss", i, 0.5, NULL) != 0)
            return 1;
    size_t got = 0;
    for (int waited = 0; got < 1000 && waited < 2000; waited++) { /* up to 2 s */
        char buf[65536];
        ssize_t n = read(rfd, buf, sizeof buf);
        if (n > 0)
            for (ssize_t i = 0; i < n; i++)
                got += buf[i] == '\n';
        else
            usleep(1000);
    }
    if (got != 1000)
        return 2;
    return ava__flusher_started() ? 0 : 3;
}

static void test_burst_tail_delivered(void **state) {
    (void)state;
    char *text = in_child(child_burst);
    assert_string_equal(text, "");
    free(text);
}

/* Reads rfd until `want` more lines came (up to 2 s). Returns whether they did. */
static bool lines_arrive(int rfd, size_t want) {
    size_t got = 0;
    for (int waited = 0; got < want && waited < 2000; waited++) {
        char buf[65536];
        ssize_t n = read(rfd, buf, sizeof buf);
        if (n > 0)
            for (ssize_t i = 0; i < n; i++)
                got += buf[i] == '\n';
        else
            usleep(1000);
    }
    return got == want;
}

/* After a burst the flusher stays awake a few milliseconds: points meanwhile are queued for
 * it (no write by the caller, no signal) and delivered; then it parks, and the next burst
 * wakes it (the signal) and is delivered too, all without ava_flush(). */
static int child_linger(int rfd) {
    for (int i = 0; i < 1000; i++)
        ava_report("loss", i, 0.5, NULL);
    if (!lines_arrive(rfd, 1000))
        return 1;
    for (int i = 0; i < 5; i++) /* the flusher lingers: these wait for it */
        ava_report("loss", 1000 + i, 0.5, NULL);
    if (!lines_arrive(rfd, 5))
        return 2;
    for (int i = 0; i < 1000 && !ava__flusher_parked(); i++)
        usleep(1000);
    if (!ava__flusher_parked())
        return 3;
    for (int i = 0; i < 1000; i++)
        ava_report("loss", 2000 + i, 0.5, NULL);
    if (!lines_arrive(rfd, 1000))
        return 4;
    return ava_dropped_total() == 0 ? 0 : 5;
}

static void test_flusher_lingers_then_parks(void **state) {
    (void)state;
    char *text = in_child(child_linger);
    assert_string_equal(text, "");
    free(text);
}

/* exit() writes what is still queued. */
static int child_exit(int rfd) {
    (void)rfd;
    for (int i = 0; i < 500; i++)
        ava_report("acc", i, i * 0.001, "phase=val,epoch=1");
    return 0;
}

static void test_exit_flushes(void **state) {
    (void)state;
    char *text = in_child(child_exit);
    struct line *lines;
    size_t n = parse_all(text, &lines);
    assert_int_equal(n, 500);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(lines[i].step, (int64_t)i);
    free(lines);
    free(text);
}

/* After fork() the child neither repeats the parent's queued lines nor loses its own. */
static int child_fork(int rfd) {
    (void)rfd;
    for (int i = 0; i < 100; i++) /* more than the immediate budget: some stay queued */
        ava_report("parent", i, 1, NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        if (ava_dropped_total() != 0)
            _exit(2);
        for (int i = 0; i < 10; i++)
            ava_report("child", i, 2, NULL);
        exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 3;
    return ava_flush() == 0 ? 0 : 4;
}

static void test_fork(void **state) {
    (void)state;
    char *text = in_child(child_fork);
    struct line *lines;
    size_t n = parse_all(text, &lines);
    int parent[100] = {0}, child[10] = {0};
    for (size_t i = 0; i < n; i++) {
        if (strcmp(lines[i].name, "parent") == 0 && lines[i].step < 100)
            parent[lines[i].step]++;
        else if (strcmp(lines[i].name, "child") == 0 && lines[i].step < 10)
            child[lines[i].step]++;
        else
            fail_msg("unexpected line %s %" PRId64, lines[i].name, lines[i].step);
    }
    for (int i = 0; i < 100; i++)
        CHECK(parent[i] == 1, "parent step %d written %d times", i, parent[i]);
    for (int i = 0; i < 10; i++)
        CHECK(child[i] == 1, "child step %d written %d times", i, child[i]);
    free(lines);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_lines, setup_pipe, teardown_pipe),
        cmocka_unit_test_setup_teardown(test_values_round_trip, setup_pipe, teardown_pipe),
        cmocka_unit_test(test_formatter_random),
        cmocka_unit_test(test_formatter_shortest),
        cmocka_unit_test(test_formatter_u64),
        cmocka_unit_test(test_formatter_timestamp_cache),
        cmocka_unit_test_setup_teardown(test_invalid_refused, setup_pipe, teardown_pipe),
        cmocka_unit_test_setup_teardown(test_cached_arguments, setup_pipe, teardown_pipe),
        cmocka_unit_test_setup_teardown(test_threads_whole_lines, setup_pipe, teardown_pipe),
        cmocka_unit_test_setup_teardown(test_full_pipe_drops, setup_pipe, teardown_pipe),
        cmocka_unit_test_setup_teardown(test_supervisor_gone, setup_pipe, teardown_pipe),
        cmocka_unit_test_setup_teardown(test_socket, NULL, teardown_pipe),
        cmocka_unit_test_setup_teardown(test_outside_ava_one_warning, NULL, teardown_pipe),
        cmocka_unit_test(test_sparse_no_thread),
        cmocka_unit_test(test_burst_tail_delivered),
        cmocka_unit_test(test_flusher_lingers_then_parks),
        cmocka_unit_test(test_exit_flushes),
        cmocka_unit_test(test_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
