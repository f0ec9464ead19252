/* test_metrics.c: src/metrics line protocol (parser, formatter, point mappings, the fast
 * path of lines straight to points) and LTTB downsampling; the log parsers are in
 * test_metrics_logparse.c, ingest into the store in test_store.c and test_api.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/metrics/lineproto.h"
#include "../../src/metrics/lttb.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Parses a NUL-terminated line. */
static int parse(const char *line, struct ava_lp_line *l, char *err) {
    return ava_lp_parse(line, strlen(line), l, err);
}

/* The field called key, or NULL. */
static const struct ava_lp_kv *field(const struct ava_lp_line *l, const char *key) {
    for (int i = 0; i < l->nfields; i++)
        if (strcmp(l->fields[i].key, key) == 0)
            return &l->fields[i];
    return NULL;
}

/* The value of the tag called key, or NULL. */
static const char *tag(const struct ava_lp_line *l, const char *key) {
    for (int i = 0; i < l->ntags; i++)
        if (strcmp(l->tags[i].key, key) == 0)
            return l->tags[i].s;
    return NULL;
}

/* ---- good lines ---- */

struct want_field {
    const char *key;
    enum ava_lp_type type;
    double f;      /* FLOAT */
    int64_t i;     /* INT, UINT, BOOL */
    const char *s; /* STRING */
};

static const struct good_line {
    const char *line;
    const char *measurement;
    const char *tags[3][2];
    struct want_field fields[4];
    bool has_time;
    int64_t time_ns;
} good_lines[] = {
    {"accuracy,phase=val,epoch=3 value=0.912,step=1200i 1764130000000000000",
     "accuracy",
     {{"phase", "val"}, {"epoch", "3"}},
     {{"value", AVA_LP_FLOAT, 0.912, 0, NULL}, {"step", AVA_LP_INT, 0, 1200, NULL}},
     true,
     1764130000000000000},
    {"my\\ metric\\,x value=1",
     "my metric,x",
     {{0}},
     {{"value", AVA_LP_FLOAT, 1, 0, NULL}},
     false,
     0},
    {"m=a\\=b\\\\ value=-2", "m=a=b\\", {{0}}, {{"value", AVA_LP_FLOAT, -2, 0, NULL}}, false, 0},
    {"m,tag\\ key=va\\,l\\=ue,b=c f\\=x=1i",
     "m",
     {{"tag key", "va,l=ue"}, {"b", "c"}},
     {{"f=x", AVA_LP_INT, 0, 1, NULL}},
     false,
     0},
    {"m f=1.5,i=-12i,u=12u,s=\"a \\\"q\\\" \\\\ b, c=d e\"",
     "m",
     {{0}},
     {{"f", AVA_LP_FLOAT, 1.5, 0, NULL},
      {"i", AVA_LP_INT, 0, -12, NULL},
      {"u", AVA_LP_UINT, 0, 12, NULL},
      {"s", AVA_LP_STRING, 0, 0, "a \"q\" \\ b, c=d e"}},
     false,
     0},
    {"m a=1e-3,b=-2.5E+10,c=1.,d=.5",
     "m",
     {{0}},
     {{"a", AVA_LP_FLOAT, 1e-3, 0, NULL},
      {"b", AVA_LP_FLOAT, -2.5e10, 0, NULL},
      {"c", AVA_LP_FLOAT, 1.0, 0, NULL},
      {"d", AVA_LP_FLOAT, 0.5, 0, NULL}},
     false,
     0},
    {"m i=9223372036854775807i,n=-9223372036854775808i,u=9223372036854775807u,z=0i",
     "m",
     {{0}},
     {{"i", AVA_LP_INT, 0, INT64_MAX, NULL},
      {"n", AVA_LP_INT, 0, INT64_MIN, NULL},
      {"u", AVA_LP_UINT, 0, INT64_MAX, NULL},
      {"z", AVA_LP_INT, 0, 0, NULL}},
     false,
     0},
    {"m t=t,T=True,f=FALSE,e=\"\"",
     "m",
     {{0}},
     {{"t", AVA_LP_BOOL, 0, 1, NULL},
      {"T", AVA_LP_BOOL, 0, 1, NULL},
      {"f", AVA_LP_BOOL, 0, 0, NULL},
      {"e", AVA_LP_STRING, 0, 0, ""}},
     false,
     0},
    {"m value=1 -1", "m", {{0}}, {{"value", AVA_LP_FLOAT, 1, 0, NULL}}, true, -1},
    {"m value=1  123  ", "m", {{0}}, {{"value", AVA_LP_FLOAT, 1, 0, NULL}}, true, 123},
    {"m value=1\r", "m", {{0}}, {{"value", AVA_LP_FLOAT, 1, 0, NULL}}, false, 0},
    {"m\\ ,a=\"q\" s=\"x\"", "m ", {{"a", "\"q\""}}, {{"s", AVA_LP_STRING, 0, 0, "x"}}, false, 0},
};

/* Checks one parsed line against its table entry. */
static void check_good(const struct good_line *g, const struct ava_lp_line *l) {
    CHECK(strcmp(l->measurement, g->measurement) == 0, "%s: measurement \"%s\"", g->line,
          l->measurement);
    int ntags = 0;
    for (; ntags < 3 && g->tags[ntags][0]; ntags++) {
        const char *v = tag(l, g->tags[ntags][0]);
        CHECK(v && strcmp(v, g->tags[ntags][1]) == 0, "%s: tag %s", g->line, g->tags[ntags][0]);
        CHECK(l->tags[ntags].type == AVA_LP_STRING, "%s: tag type", g->line);
    }
    CHECK(l->ntags == ntags, "%s: %d tags", g->line, l->ntags);
    int nf = 0;
    for (; nf < 4 && g->fields[nf].key; nf++) {
        const struct want_field *w = &g->fields[nf];
        const struct ava_lp_kv *kv = field(l, w->key);
        CHECK(kv && kv == &l->fields[nf], "%s: field %s (in order)", g->line, w->key);
        CHECK(kv->type == w->type, "%s: field %s type %d", g->line, w->key, kv->type);
        if (w->type == AVA_LP_FLOAT)
            CHECK(kv->f == w->f, "%s: field %s = %.17g", g->line, w->key, kv->f);
        else if (w->type == AVA_LP_STRING)
            CHECK(strcmp(kv->s, w->s) == 0, "%s: field %s = \"%s\"", g->line, w->key, kv->s);
        else
            CHECK(kv->i == w->i, "%s: field %s = %" PRId64, g->line, w->key, kv->i);
    }
    CHECK(l->nfields == nf, "%s: %d fields", g->line, l->nfields);
    CHECK(l->has_time == g->has_time, "%s: has_time", g->line);
    if (g->has_time)
        CHECK(l->time_ns == g->time_ns, "%s: time %" PRId64, g->line, l->time_ns);
}

static void test_lp_good_lines(void **state) {
    (void)state;
    for (size_t i = 0; i < N_ELEMS(good_lines); i++) {
        struct ava_lp_line l;
        char err[AVA_ERRLEN] = "";
        int rc = parse(good_lines[i].line, &l, err);
        CHECK(rc == 0, "%s: refused: %s", good_lines[i].line, err);
        check_good(&good_lines[i], &l);
    }
}

static void test_lp_every_boolean_spelling(void **state) {
    (void)state;
    const char *yes[] = {"t", "T", "true", "True", "TRUE"};
    const char *no[] = {"f", "F", "false", "False", "FALSE"};
    for (size_t i = 0; i < 5; i++) {
        for (int truth = 0; truth < 2; truth++) {
            char line[64];
            snprintf(line, sizeof line, "m b=%s", truth ? yes[i] : no[i]);
            struct ava_lp_line l;
            assert_int_equal(parse(line, &l, NULL), 0);
            CHECK(l.fields[0].type == AVA_LP_BOOL && l.fields[0].i == truth, "%s", line);
        }
    }
    struct ava_lp_line l;
    assert_int_equal(parse("m b=tRUE", &l, NULL), AVA_EINVALID);
}

static void test_lp_limits_are_inclusive(void **state) {
    (void)state;
    char line[AVA_LP_LINE_MAX + 16], key[AVA_METRIC_NAME_MAX + 1];
    memset(key, 'k', AVA_METRIC_NAME_MAX);
    key[AVA_METRIC_NAME_MAX] = 0;
    /* 16 tags, 16 fields, 64-byte keys: accepted */
    size_t n = (size_t)snprintf(line, sizeof line, "%s", key);
    for (int i = 0; i < AVA_LP_MAX_TAGS; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, ",t%d=%s", i, key);
    for (int i = 0; i < AVA_LP_MAX_FIELDS; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%c%.*s%02d=%di", i ? ',' : ' ',
                              AVA_METRIC_NAME_MAX - 2, key, i, i);
    struct ava_lp_line l;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(parse(line, &l, err), 0);
    assert_int_equal(l.ntags, AVA_LP_MAX_TAGS);
    assert_int_equal(l.nfields, AVA_LP_MAX_FIELDS);
    assert_int_equal(strlen(l.fields[15].key), AVA_METRIC_NAME_MAX);
    /* exactly AVA_LP_LINE_MAX bytes (trailing blanks count): accepted */
    char big[AVA_LP_LINE_MAX + 1];
    memset(big, ' ', sizeof big);
    memcpy(big, "m v=1", 5);
    assert_int_equal(ava_lp_parse(big, AVA_LP_LINE_MAX, &l, err), 0);
}

/* ---- bad lines ---- */

static const struct bad_line {
    const char *line;
    int column;
    const char *says;
} bad_lines[] = {
    {"m", 2, "missing field set"},
    {"m,a=b", 6, "missing field set"},
    {"m   ", 5, "missing field set"},
    {",a=b v=1", 1, "missing measurement"},
    {"m,=b v=1", 3, "missing tag key"},
    {"m,a= v=1", 5, "missing tag value"},
    {"m,a v=1", 4, "no '='"},
    {"m,a=b=c v=1", 6, "unescaped '='"},
    {"m v", 4, "no '='"},
    {"m v=", 5, "has no value"},
    {"m v=1,", 7, "missing field key"},
    {"m\\x v=1", 2, "bad escape"},
    {"m,a\\q=b v=1", 4, "bad escape"},
    {"m v\\", 4, "bad escape"},
    {"m s=\"abc", 5, "unterminated string"},
    {"m s=\"a\\n\"", 7, "bad escape"},
    {"m s=\"a\"x", 8, "unexpected 'x'"},
    {"m v=1,v=2", 7, "duplicate field key \"v\""},
    {"m,a=1,a=2 v=1", 7, "duplicate tag key \"a\""},
    {"m i=9223372036854775808i", 5, "not an integer in range"},
    {"m i=-9223372036854775809i", 5, "not an integer in range"},
    {"m u=-1u", 5, "not an integer in range"},
    {"m u=9223372036854775808u", 5, "not an integer in range"},
    {"m i=1.5i", 5, "not an integer"},
    {"m f=NaN", 5, "not a number"},
    {"m f=nan", 5, "not a number"},
    {"m f=inf", 5, "not a number"},
    {"m f=-Infinity", 5, "not a number"},
    {"m f=0x10", 5, "not a number"},
    {"m f=1e999", 5, "out of the range"},
    {"m f=1x", 5, "not a number"},
    {"m f=t1", 5, "not a number"},
    {"m v=1 123 456", 11, "after the timestamp"},
    {"m v=1 1.5", 7, "must be an integer"},
    {"m v=1 1e9", 7, "must be an integer"},
    {"m v=1 99999999999999999999", 7, "must be an integer"},
    {" m v=1", 1, "not a space"},
};

/* Asserts that err starts with "column N: " and contains says. */
static void check_bad(const char *line, int rc, const char *err, int column, const char *says) {
    char prefix[32];
    snprintf(prefix, sizeof prefix, "column %d: ", column);
    CHECK(rc == AVA_EINVALID, "\"%s\": rc %d (%s)", line, rc, err);
    CHECK(strncmp(err, prefix, strlen(prefix)) == 0, "\"%s\": \"%s\" does not start with \"%s\"",
          line, err, prefix);
    CHECK(strstr(err, says) != NULL, "\"%s\": \"%s\" does not say \"%s\"", line, err, says);
}

static void test_lp_bad_lines_name_the_column(void **state) {
    (void)state;
    for (size_t i = 0; i < N_ELEMS(bad_lines); i++) {
        struct ava_lp_line l;
        char err[AVA_ERRLEN] = "";
        int rc = parse(bad_lines[i].line, &l, err);
        check_bad(bad_lines[i].line, rc, err, bad_lines[i].column, bad_lines[i].says);
    }
}

static void test_lp_bad_lines_over_limits(void **state) {
    (void)state;
    static char line[AVA_LP_LINE_MAX + 64];
    struct ava_lp_line l;
    char err[AVA_ERRLEN] = "";
    char key[AVA_METRIC_NAME_MAX + 2];
    memset(key, 'k', AVA_METRIC_NAME_MAX + 1);
    key[AVA_METRIC_NAME_MAX + 1] = 0; /* 65 bytes */

    /* 17 tags: the 17th's column */
    size_t n = (size_t)snprintf(line, sizeof line, "m");
    size_t col17 = 0;
    for (int i = 0; i <= AVA_LP_MAX_TAGS; i++) {
        if (i == AVA_LP_MAX_TAGS)
            col17 = n + 2;
        n += (size_t)snprintf(line + n, sizeof line - n, ",t%02d=x", i);
    }
    snprintf(line + n, sizeof line - n, " v=1");
    check_bad(line, parse(line, &l, err), err, (int)col17, "more than 16 tags");

    /* 17 fields */
    n = (size_t)snprintf(line, sizeof line, "m ");
    for (int i = 0; i <= AVA_LP_MAX_FIELDS; i++) {
        if (i == AVA_LP_MAX_FIELDS)
            col17 = n + 2;
        n += (size_t)snprintf(line + n, sizeof line - n, "%sf%02d=1", i ? "," : "", i);
    }
    check_bad(line, parse(line, &l, err), err, (int)col17, "more than 16 fields");

    snprintf(line, sizeof line, "%s v=1", key);
    check_bad(line, parse(line, &l, err), err, 1, "measurement longer than 64 bytes");
    snprintf(line, sizeof line, "m,%s=1 v=1", key);
    check_bad(line, parse(line, &l, err), err, 3, "tag key longer than 64 bytes");
    snprintf(line, sizeof line, "m %s=1", key);
    check_bad(line, parse(line, &l, err), err, 3, "field key longer than 64 bytes");

    /* one byte over the line limit */
    memset(line, ' ', AVA_LP_LINE_MAX + 1);
    memcpy(line, "m v=1", 5);
    line[AVA_LP_LINE_MAX + 1] = 0;
    check_bad("(4097 bytes)", ava_lp_parse(line, AVA_LP_LINE_MAX + 1, &l, err), err,
              AVA_LP_LINE_MAX + 1, "longer than 4096 bytes");

    /* a string value over 255 bytes, a NUL inside the line */
    n = (size_t)snprintf(line, sizeof line, "m s=\"");
    memset(line + n, 'x', 256);
    strcpy(line + n + 256, "\"");
    check_bad("(long string)", parse(line, &l, err), err, 5, "longer than 255 bytes");
    check_bad("(NUL)", ava_lp_parse("m v=1\0x", 7, &l, err), err, 6, "NUL");
}

static void test_lp_empty_and_comments_are_not_errors(void **state) {
    (void)state;
    const char *lines[] = {"", "   ", "\t", "# a comment", "   # indented comment", "\r"};
    for (size_t i = 0; i < N_ELEMS(lines); i++) {
        struct ava_lp_line l;
        CHECK(ava_lp_parse(lines[i], strlen(lines[i]), &l, NULL) == AVA_ENOTFOUND, "\"%s\"",
              lines[i]);
    }
}

/* ---- formatter ---- */

/* xorshift64*: a small deterministic generator for the round-trip test. */
static uint64_t rnd(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* A random finite double: any bit pattern that is not NaN or infinite. */
static double rnd_double(uint64_t *s) {
    for (;;) {
        uint64_t bits = rnd(s);
        double d;
        if (bits % 4 == 0)
            return (double)(int64_t)(rnd(s) % 2000001) / 1000.0 - 1000.0;
        memcpy(&d, &bits, sizeof d);
        if (isfinite(d))
            return d;
    }
}

/* Fills a random string of 1..max characters from chars. */
static void rnd_text(uint64_t *s, const char *chars, size_t max, char *out) {
    size_t n = 1 + rnd(s) % max, k = strlen(chars);
    for (size_t i = 0; i < n; i++)
        out[i] = chars[rnd(s) % k];
    out[n] = 0;
}

static void test_lp_format_round_trip(void **state) {
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 20000; iter++) {
        struct ava_point p = {0};
        bool plain = iter % 2 == 0; /* valid ava names, or names that need escapes */
        rnd_text(&seed, plain ? "abcXYZ019._/-" : "ab ,=\\\"#xyz", AVA_METRIC_NAME_MAX, p.name);
        if (rnd(&seed) % 3)
            rnd_text(&seed, plain ? "abc_019" : "a ,=\\\"b", AVA_METRIC_PHASE_MAX, p.phase);
        p.step = (int64_t)(rnd(&seed) >> 1);
        p.value = rnd_double(&seed);
        p.epoch = rnd(&seed) % 3 ? (int64_t)(rnd(&seed) % 1000) : -1;
        p.time_ms = rnd(&seed) % 2 ? (int64_t)(rnd(&seed) % 9000000000000LL) : 0;
        char buf[512], err[AVA_ERRLEN] = "";
        int n = ava_lp_format(&p, buf, sizeof buf);
        if (p.name[0] == '#') { /* it would read as a comment */
            CHECK(n == -1, "format %s", p.name);
            continue;
        }
        CHECK(n > 0 && buf[n - 1] == '\n' && (size_t)n == strlen(buf), "format %s", p.name);
        struct ava_lp_line l;
        CHECK(ava_lp_parse(buf, (size_t)n - 1, &l, err) == 0, "%s: %s", buf, err);
        CHECK(strcmp(l.measurement, p.name) == 0, "%s: measurement", buf);
        const char *ph = tag(&l, "phase");
        CHECK(p.phase[0] ? ph && strcmp(ph, p.phase) == 0 : !ph, "%s: phase", buf);
        const struct ava_lp_kv *v = field(&l, "value"), *st = field(&l, "step");
        CHECK(v && v->type == AVA_LP_FLOAT && v->f == p.value, "%s: value", buf);
        CHECK(st && st->type == AVA_LP_INT && st->i == p.step, "%s: step", buf);
        CHECK(l.has_time == (p.time_ms != 0), "%s: time", buf);
        if (!plain)
            continue;
        struct ava_point q;
        CHECK(ava_lp_to_point(&l, &q, err) == 0, "%s: %s", buf, err);
        CHECK(strcmp(q.name, p.name) == 0 && strcmp(q.phase, p.phase) == 0 && q.step == p.step &&
                  q.value == p.value && q.epoch == p.epoch && q.time_ms == p.time_ms,
              "%s: the point differs", buf);
    }
}

static void test_lp_format_exact_and_short_buffers(void **state) {
    (void)state;
    struct ava_point p = {.name = "accuracy",
                          .phase = "val",
                          .step = 1200,
                          .value = 0.912,
                          .time_ms = 1764130000000,
                          .epoch = 3};
    char buf[128];
    const char *want = "accuracy,phase=val,epoch=3 value=0.91200000000000003,step=1200i "
                       "1764130000000000000\n";
    int n = ava_lp_format(&p, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, (int)strlen(want));
    for (size_t len = 0; len <= (size_t)n; len++)
        CHECK(ava_lp_format(&p, buf, len) == -1, "outlen %zu", len);
    assert_int_equal(ava_lp_format(&p, buf, (size_t)n + 1), n);

    struct ava_point q = {.name = "a b,c\\d", .step = 0, .value = 1, .epoch = -1};
    assert_int_equal(ava_lp_format(&q, buf, sizeof buf),
                     (int)strlen("a\\ b\\,c\\\\d value=1,step=0i\n"));
    assert_string_equal(buf, "a\\ b\\,c\\\\d value=1,step=0i\n");
    q.value = NAN;
    assert_int_equal(ava_lp_format(&q, buf, sizeof buf), -1);
    struct ava_point r = {.name = "x\ny", .value = 1, .epoch = -1};
    assert_int_equal(ava_lp_format(&r, buf, sizeof buf), -1); /* no line injection */
}

/* ---- lines to points ---- */

/* Parses line and converts it with fn; returns fn's code. */
static int to_point(const char *line, struct ava_point *p, char *err, bool sdk) {
    struct ava_lp_line l;
    int rc = parse(line, &l, err);
    if (rc)
        return rc;
    return sdk ? ava_lp_to_point_ava_sdk(&l, p, err) : ava_lp_to_point(&l, p, err);
}

static void test_lp_to_point(void **state) {
    (void)state;
    struct ava_point p;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(
        to_point("accuracy,phase=val,epoch=3 value=0.912,step=1200i 1764130000000000000", &p, err,
                 false),
        0);
    assert_string_equal(p.name, "accuracy");
    assert_string_equal(p.phase, "val");
    assert_int_equal(p.step, 1200);
    assert_true(p.value == 0.912);
    assert_int_equal(p.epoch, 3);
    assert_int_equal(p.time_ms, 1764130000000);

    assert_int_equal(to_point("sys.gpu0.mem_bytes value=123i,step=7u", &p, err, false), 0);
    assert_string_equal(p.phase, "");
    assert_int_equal(p.epoch, -1);
    assert_int_equal(p.time_ms, 0);
    assert_true(p.value == 123.0);
}

static const struct {
    const char *line;
    const char *says;
} point_refusals[] = {
    {"loss value=1", "missing field step"},
    {"loss step=1i", "missing field value"},
    {"loss value=1,step=1", "non-negative integer"},
    {"loss value=1,step=-1i", "non-negative integer"},
    {"loss value=t,step=1i", "must be a number"},
    {"loss value=\"1\",step=1i", "must be a number"},
    {"loss,host=a value=1,step=1i", "unknown tag \"host\""},
    {"loss value=1,step=1i,extra=2", "unknown field \"extra\""},
    {"my\\ loss value=1,step=1i", "metric name"},
    {"loss:x value=1,step=1i", "metric name"},
    {"loss,phase=Val value=1,step=1i", "phase"},
    {"loss,phase=abcdefghijklmnopq value=1,step=1i", "phase"},
    {"loss,epoch=x value=1,step=1i", "epoch"},
    {"loss,epoch=-1 value=1,step=1i", "epoch"},
    {"loss value=1,step=1i -5", "before 1970"},
};

static void test_lp_to_point_refusals(void **state) {
    (void)state;
    for (size_t i = 0; i < N_ELEMS(point_refusals); i++) {
        struct ava_point p;
        char err[AVA_ERRLEN] = "";
        int rc = to_point(point_refusals[i].line, &p, err, false);
        CHECK(rc == AVA_EINVALID && strstr(err, point_refusals[i].says), "%s: %d \"%s\"",
              point_refusals[i].line, rc, err);
    }
}

static const struct {
    const char *line;
    const char *name, *phase;
    int64_t step;
    double value;
    int64_t epoch, time_ms;
} sdk_lines[] = {
    {"ava_metric_training_loss,epoch=2,batch=300 value=0.25", "loss", "train", 300, 0.25, 2, 0},
    {"ava_metric_training_learning_rate,epoch=2,batch=300 value=0.001", "learning_rate", "train",
     300, 0.001, 2, 0},
    {"ava_metric_training_val_accuracy,epoch=3 value=0.91 1500000000123456789", "accuracy", "val",
     3, 0.91, 3, 1500000000123},
    {"ava_metric_training_sample_num,epoch=1,batch=20 count=2560i", "samples", "train", 20, 2560, 1,
     0},
    {"ava_metric_training_loss,batch=40,host=gpu01 value=0.5,extra=1", "loss", "train", 40, 0.5, -1,
     0},
    {"accuracy,phase=val,epoch=3 value=0.912,step=1200i", "accuracy", "val", 1200, 0.912, 3, 0},
};

static void test_lp_ava_sdk_lines(void **state) {
    (void)state;
    for (size_t i = 0; i < N_ELEMS(sdk_lines); i++) {
        struct ava_point p;
        char err[AVA_ERRLEN] = "";
        CHECK(to_point(sdk_lines[i].line, &p, err, true) == 0, "%s: %s", sdk_lines[i].line, err);
        CHECK(strcmp(p.name, sdk_lines[i].name) == 0 && strcmp(p.phase, sdk_lines[i].phase) == 0,
              "%s: %s/%s", sdk_lines[i].line, p.name, p.phase);
        CHECK(p.step == sdk_lines[i].step && p.value == sdk_lines[i].value &&
                  p.epoch == sdk_lines[i].epoch && p.time_ms == sdk_lines[i].time_ms,
              "%s: step %" PRId64 " value %g epoch %" PRId64 " time %" PRId64, sdk_lines[i].line,
              p.step, p.value, p.epoch, p.time_ms);
    }
    const struct {
        const char *line, *says;
    } bad[] = {
        {"ava_metric_training_loss value=0.5", "batch or an epoch"},
        {"ava_metric_training_loss,batch=1 value=\"x\"", "must be a number"},
        {"ava_metric_training_loss,batch=-1 value=1", "batch must be a non-negative integer"},
        {"ava_metric_training_sample_num,batch=1 value=1", "missing field count"},
        {"ava_metric_training_other,batch=1 value=1", "unknown tag \"batch\""},
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct ava_point p;
        char err[AVA_ERRLEN] = "";
        int rc = to_point(bad[i].line, &p, err, true);
        CHECK(rc == AVA_EINVALID && strstr(err, bad[i].says), "%s: %d \"%s\"", bad[i].line, rc,
              err);
    }
}

/* ---- LTTB ---- */

/* Runs ava_lttb and checks what every output must satisfy: first, last, strictly
 * increasing, the documented count. */
static size_t lttb_checked(const double *x, const double *y, size_t n, size_t thr, size_t *out) {
    size_t k = ava_lttb(x, y, n, thr, out);
    size_t want = n == 0 ? 0 : n <= thr ? n : n == 1 ? 1 : thr < 3 ? 2 : thr;
    CHECK(k == want, "n %zu threshold %zu: %zu points, want %zu", n, thr, k, want);
    if (n == 0)
        return k;
    CHECK(out[0] == 0, "n %zu threshold %zu: first", n, thr);
    CHECK(out[k - 1] == n - 1, "n %zu threshold %zu: last", n, thr);
    for (size_t i = 1; i < k; i++)
        CHECK(out[i] > out[i - 1], "n %zu threshold %zu: not increasing at %zu", n, thr, i);
    return k;
}

static void test_lttb_hand_checked(void **state) {
    (void)state;
    size_t out[8];
    /* 2 buckets {1,2} {3,4}: bucket 1 against (0,0) and the mean (3.5,-1) of bucket 2:
     * areas 15 (x=1) and 5.5 (x=2); bucket 2 against (1,4) and (5,0): 4 (x=3), 16 (x=4) */
    const double x6[] = {0, 1, 2, 3, 4, 5}, y6[] = {0, 4, 1, 1, -3, 0};
    assert_int_equal(lttb_checked(x6, y6, 6, 4, out), 4);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 4);
    /* one bucket {1,2,3} between (0,0) and (4,0): the highest point wins */
    const double x5[] = {0, 1, 2, 3, 4}, y5[] = {0, 1, 0, 5, 0};
    assert_int_equal(lttb_checked(x5, y5, 5, 3, out), 3);
    assert_int_equal(out[1], 3);
    /* x counts too: against (0,0) and (11,4) the areas are |4x - 11y|: 7, 3, 29 */
    const double xu[] = {0, 1, 2, 10, 11}, yu[] = {0, 1, 1, 1, 4};
    assert_int_equal(lttb_checked(xu, yu, 5, 3, out), 3);
    assert_int_equal(out[1], 3);
    /* equal areas: the first point of the bucket is kept */
    const double yt[] = {0, 1, 1, 1, 0};
    assert_int_equal(lttb_checked(x5, yt, 5, 3, out), 3);
    assert_int_equal(out[1], 1);
}

/* The textbook algorithm (Steinarsson's reference code, with the bucket bounds computed in
 * integers), written independently of lttb.c: one index per bucket, against the previous
 * pick and the mean of the next bucket. */
static size_t lttb_reference(const double *x, const double *y, size_t n, size_t thr, size_t *out) {
    size_t k = 0, a = 0, nb = thr - 2;
    out[k++] = 0;
    for (size_t i = 0; i < nb; i++) {
        size_t lo = 1 + i * (n - 2) / nb, hi = 1 + (i + 1) * (n - 2) / nb;
        size_t alo = hi, ahi = i + 2 <= nb ? 1 + (i + 2) * (n - 2) / nb : n;
        double avx = 0, avy = 0;
        for (size_t j = alo; j < ahi; j++) {
            avx += x[j] / (double)(ahi - alo);
            avy += y[j] / (double)(ahi - alo);
        }
        double max_area = -1;
        size_t pick = lo;
        for (size_t j = lo; j < hi; j++) {
            double area = fabs((x[a] - avx) * (y[j] - y[a]) - (x[a] - x[j]) * (avy - y[a])) / 2;
            if (area > max_area) {
                max_area = area;
                pick = j;
            }
        }
        out[k++] = a = pick;
    }
    out[k++] = n - 1;
    return k;
}

static void test_lttb_small_cases(void **state) {
    (void)state;
    double x[10], y[10];
    size_t out[10];
    for (int i = 0; i < 10; i++) {
        x[i] = i;
        y[i] = i % 3;
    }
    assert_int_equal(lttb_checked(x, y, 0, 5, out), 0);
    assert_int_equal(lttb_checked(x, y, 1, 0, out), 1);
    assert_int_equal(lttb_checked(x, y, 2, 1, out), 2);
    assert_int_equal(lttb_checked(x, y, 10, 0, out), 2);
    assert_int_equal(lttb_checked(x, y, 10, 2, out), 2);
    assert_int_equal(lttb_checked(x, y, 10, 10, out), 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(out[i], i);
    assert_int_equal(lttb_checked(x, y, 7, 100, out), 7);
    assert_int_equal(lttb_checked(x, y, 10, 9, out), 9);
    assert_int_equal(lttb_checked(x, y, 10, 3, out), 3);
}

static void test_lttb_random_series(void **state) {
    (void)state;
    uint64_t seed = 12345;
    double x[600], y[600];
    size_t out[600];
    for (int iter = 0; iter < 2000; iter++) {
        size_t n = rnd(&seed) % 600, thr = rnd(&seed) % 620;
        double t = 0;
        for (size_t i = 0; i < n; i++) {
            t += 1 + (double)(rnd(&seed) % 100);
            x[i] = t;
            y[i] = (double)(int64_t)(rnd(&seed) % 2001) - 1000;
        }
        size_t k = lttb_checked(x, y, n, thr, out);
        if (n > thr && thr >= 3) {
            size_t ref[600];
            assert_int_equal(lttb_reference(x, y, n, thr, ref), k);
            for (size_t i = 0; i < k; i++)
                CHECK(out[i] == ref[i], "n %zu threshold %zu: index %zu is %zu, reference %zu", n,
                      thr, i, out[i], ref[i]);
        }
    }
}

static void test_lttb_million_points(void **state) {
    (void)state;
    size_t n = 1000000;
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    size_t *out = malloc(1000 * sizeof *out);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(out);
    uint64_t seed = 99;
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)i;
        y[i] = sin((double)i / 5000.0) + (double)(rnd(&seed) % 1000) / 10000.0;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    size_t k = lttb_checked(x, y, n, 1000, out);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(k, 1000);
    print_message("lttb: 1,000,000 -> 1,000 points in %.2f ms\n",
                  (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
    free(x);
    free(y);
    free(out);
}

static void test_lttb_sine_keeps_peaks(void **state) {
    (void)state;
    enum { N = 10000, PERIOD = 1000, THR = 500 };
    static double x[N], y[N];
    size_t out[THR];
    for (int i = 0; i < N; i++) {
        x[i] = i;
        y[i] = sin(2 * M_PI * i / PERIOD);
    }
    size_t k = lttb_checked(x, y, N, THR, out);
    for (int p = 0; p < N / PERIOD; p++) {
        double hi = -2, lo = 2;
        for (size_t j = 0; j < k; j++) {
            if ((int)out[j] / PERIOD != p)
                continue;
            hi = fmax(hi, y[out[j]]);
            lo = fmin(lo, y[out[j]]);
        }
        CHECK(hi > 0.99 && lo < -0.99, "period %d: kept max %f min %f", p, hi, lo);
    }
}

/* ---- lines straight to points (the ingest's fast path) ---- */

/* Parses line both ways: the ingest's (fast path or not, as fast_expected says) and the full
 * parser's, and checks that they agree on the outcome and the point. */
static void same_as_full_parser(const char *line, int fast_expected) {
    struct ava_point a, b;
    struct ava_lp_line l;
    bool fast = false;
    memset(&a, 0x5a, sizeof a);
    memset(&b, 0x5a, sizeof b);
    int ra = ava_lp_line_point(line, strlen(line), &a, &fast);
    int rb = ava_lp_parse(line, strlen(line), &l, NULL);
    if (rb == 0)
        rb = ava_lp_to_point(&l, &b, NULL);
    CHECK(fast_expected < 0 || fast == (fast_expected != 0), "%s: fast path %d", line, fast);
    CHECK((ra == 0) == (rb == 0), "%s: %d vs the full parser's %d", line, ra, rb);
    if (ra != 0)
        return;
    CHECK(!strcmp(a.name, b.name) && !strcmp(a.phase, b.phase), "%s: name/phase", line);
    CHECK(a.step == b.step && a.epoch == b.epoch && a.time_ms == b.time_ms,
          "%s: step %" PRId64 "/%" PRId64 " epoch %" PRId64 "/%" PRId64 " time %" PRId64
          "/%" PRId64,
          line, a.step, b.step, a.epoch, b.epoch, a.time_ms, b.time_ms);
    CHECK(memcmp(&a.value, &b.value, sizeof a.value) == 0, "%s: value %.17g vs %.17g", line,
          a.value, b.value);
}

static void test_lp_line_point_hand_picked(void **state) {
    (void)state;
    static const char *const fast[] = {
        "loss value=0.5,step=0i",
        "loss,phase=train value=0.5,step=12i 1764130000123456789",
        "a.b/c-d_e,phase=val_2,epoch=3 value=-1.25e-3,step=999i 1764130000000000000",
        "x,epoch=007 value=1.,step=1i",
        "x value=.5,step=1i",
        "x value=-0,step=1i",
        "x value=1E+300,step=1i",
        "x value=0.9999990000010001,step=1i 1000000000",
        "x value=123456789012345678901234567890,step=1i",
        "x value=0.000000000000000000000000000000001,step=1i",
        "x value=4.9406564584124654e-324,step=1i",
        "x value=2.2250738585072011e-308,step=1i",
        "x value=9007199254740993,step=1i",
        "x value=1.7976931348623157e308,step=1i",
        "x value=0.1,step=999999999999999999i 9223372035999999999",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx value=1,step=1i",
        "x,phase=abcdefghijklmnop value=1,step=1i",
    };
    for (size_t i = 0; i < N_ELEMS(fast); i++)
        same_as_full_parser(fast[i], 1);
    static const char *const slow[] = {
        "",
        "# comment",
        "x value=1,step=1i\\r",
        "x value=1,step=1u",
        "x value=1i,step=1i",
        "x value=t,step=1i",
        "x value=1,step=-1i",
        "x value=1,step=1i  5",
        "x value=1,step=1i 5",
        "x value=1,step=1i 1764130000000000000 ",
        "x value=1,step=1i 9223372036854775807",
        "x value=1,step=1i 99999999999999999999",
        "x value=1e999,step=1i",
        "x value=nan,step=1i",
        "x value=1,step=1i,z=2",
        "x,epoch=1,phase=val value=1,step=1i",
        "x,phase=Val value=1,step=1i",
        "x,phase= value=1,step=1i",
        "x,phase=abcdefghijklmnopq value=1,step=1i",
        "x,foo=1 value=1,step=1i",
        "x step=1i,value=1",
        "x value=1,step=1i ,",
        "#x value=1,step=1i",
        "x\\ y value=1,step=1i",
        " x value=1,step=1i",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx value=1,step=1i",
        "x,epoch=1234567890123456789 value=1,step=1i",
        "x value=+1,step=1i",
        "x value=1e,step=1i",
        "x value=-,step=1i",
        "x value=1..2,step=1i",
        "x value=1,step=1234567890123456789i",
    };
    for (size_t i = 0; i < N_ELEMS(slow); i++)
        same_as_full_parser(slow[i], 0);
    /* a value token over 127 bytes goes to the full parser, which refuses it */
    char big[300];
    snprintf(big, sizeof big, "x value=0.%0200d,step=1i", 1);
    same_as_full_parser(big, 0);
}

/* A random finite double from random bits. */
static double random_double(void) {
    for (;;) {
        uint64_t bits = ((uint64_t)rand() << 62) ^ ((uint64_t)rand() << 31) ^ (uint64_t)rand();
        double d;
        memcpy(&d, &bits, sizeof d);
        if (isfinite(d))
            return d;
    }
}

/* Values in every form a writer could give them: shortest-ish, 15-17 digits, short
 * decimals, exponents, and 18-19 digits near the midpoint of two doubles; each must come out
 * exactly as strtod reads it. */
static void test_lp_line_point_random_values(void **state) {
    (void)state;
    srand(20261126);
    static const char *const fmts[] = {"%.17g", "%.16g", "%.15g", "%.6g", "%.3e", "%.19g"};
    char line[200], num[64];
    for (int i = 0; i < 300000; i++) {
        double v;
        switch (i % 4) {
        case 0:
            v = random_double();
            break;
        case 1:
            v = (double)rand() / RAND_MAX;
            break;
        case 2:
            v = ldexp((double)rand() / RAND_MAX, rand() % 200 - 100);
            break;
        default:
            v = (double)(rand() % 100000) * pow(10, rand() % 40 - 20);
            break;
        }
        snprintf(num, sizeof num, fmts[i % N_ELEMS(fmts)], v);
        if (i % 5 == 4) { /* near the midpoint of two doubles: where rounding twice is wrong */
            long double mid = ((long double)v + (long double)nextafter(v, INFINITY)) / 2;
            snprintf(num, sizeof num, i % 10 == 4 ? "%.19Lg" : "%.18Lg", mid);
        }
        snprintf(line, sizeof line, "m,phase=train value=%s,step=%di %lld", num, i,
                 1764130000000000000LL + i);
        struct ava_point p;
        bool fast = false;
        double want = strtod(num, NULL);
        int r = ava_lp_line_point(line, strlen(line), &p, &fast);
        if (!isfinite(want)) {
            CHECK(r != 0, "%s: accepted", line);
            continue;
        }
        CHECK(r == 0 && fast, "%s: r %d fast %d", line, r, fast);
        CHECK(memcmp(&p.value, &want, sizeof want) == 0, "%s: %.17g, strtod %.17g", line, p.value,
              want);
        if (i % 16 == 0)
            same_as_full_parser(line, 1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lp_good_lines),
        cmocka_unit_test(test_lp_every_boolean_spelling),
        cmocka_unit_test(test_lp_limits_are_inclusive),
        cmocka_unit_test(test_lp_bad_lines_name_the_column),
        cmocka_unit_test(test_lp_bad_lines_over_limits),
        cmocka_unit_test(test_lp_empty_and_comments_are_not_errors),
        cmocka_unit_test(test_lp_format_round_trip),
        cmocka_unit_test(test_lp_format_exact_and_short_buffers),
        cmocka_unit_test(test_lp_to_point),
        cmocka_unit_test(test_lp_to_point_refusals),
        cmocka_unit_test(test_lp_ava_sdk_lines),
        cmocka_unit_test(test_lttb_hand_checked),
        cmocka_unit_test(test_lttb_small_cases),
        cmocka_unit_test(test_lttb_random_series),
        cmocka_unit_test(test_lttb_million_points),
        cmocka_unit_test(test_lttb_sine_keeps_peaks),
        cmocka_unit_test(test_lp_line_point_hand_picked),
        cmocka_unit_test(test_lp_line_point_random_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
