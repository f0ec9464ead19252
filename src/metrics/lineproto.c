/* lineproto.c: the strict InfluxDB line-protocol parser and formatter, and the mapping of
 * parsed lines to ava points (see lineproto.h). */
#include "lineproto.h"

#include "../common/err.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A line being parsed: the text, the read position and the caller's error buffer. */
struct lp_ctx {
    const char *s;
    size_t len;
    size_t pos;
    char *err;
};

/* What an escaped name ends at, and what it is called in messages. */
enum lp_elem { LP_MEASUREMENT, LP_TAG_KEY, LP_TAG_VALUE, LP_FIELD_KEY };

static const char *const elem_what[] = {"measurement", "tag key", "tag value", "field key"};

/* Fails the parse with "column N: ..." (N is 1-based, in bytes). */
static int lp_fail(struct lp_ctx *c, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lp_fail(struct lp_ctx *c, size_t at, const char *fmt, ...) {
    char msg[AVA_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ava_err(c->err, AVA_EINVALID, "column %zu: %s", at + 1, msg);
}

/* The character at the read position, or 0 at the end of the line. */
static char lp_peek(const struct lp_ctx *c) {
    return c->pos < c->len ? c->s[c->pos] : 0;
}

/* Reads one escaped name (measurement, tag key/value or field key) into out, unescaping
 * "\," "\ " "\=" and "\\"; any other backslash is refused so that nothing is ambiguous.
 * Stops before the first unescaped character that ends this element. */
static int lp_name(struct lp_ctx *c, enum lp_elem e, char *out, size_t outlen) {
    size_t start = c->pos, n = 0;
    for (;;) {
        char ch = lp_peek(c);
        if (c->pos >= c->len || ch == ' ' || ch == ',')
            break;
        if (ch == '=' && e != LP_MEASUREMENT)
            break;
        if (ch == '\\') {
            if (c->pos + 1 >= c->len)
                return lp_fail(c, c->pos, "bad escape: a %s ends with a lone backslash",
                               elem_what[e]);
            ch = c->s[c->pos + 1];
            if (ch != ',' && ch != ' ' && ch != '=' && ch != '\\')
                return lp_fail(c, c->pos,
                               "bad escape '\\%c' in a %s (only \\, \\space \\= and \\\\)", ch,
                               elem_what[e]);
            c->pos++;
        }
        if (n + 1 >= outlen)
            return lp_fail(c, start, "%s longer than %zu bytes", elem_what[e], outlen - 1);
        out[n++] = ch;
        c->pos++;
    }
    out[n] = 0;
    if (n == 0)
        return lp_fail(c, start, "missing %s", elem_what[e]);
    return 0;
}

/* True when key is already among the n parsed pairs. */
static bool lp_has_key(const struct ava_lp_kv *kv, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return true;
    return false;
}

/* Reads ",k=v,k=v" (the tag set) up to the space before the fields. */
static int lp_tags(struct lp_ctx *c, struct ava_lp_line *out) {
    while (lp_peek(c) == ',') {
        c->pos++;
        size_t at = c->pos;
        if (out->ntags == AVA_LP_MAX_TAGS)
            return lp_fail(c, at, "more than %d tags", AVA_LP_MAX_TAGS);
        struct ava_lp_kv *kv = &out->tags[out->ntags];
        memset(kv, 0, sizeof *kv);
        int rc = lp_name(c, LP_TAG_KEY, kv->key, sizeof kv->key);
        if (rc)
            return rc;
        if (lp_peek(c) != '=')
            return lp_fail(c, c->pos, "tag \"%s\" has no '=' and value", kv->key);
        c->pos++;
        if ((rc = lp_name(c, LP_TAG_VALUE, kv->s, sizeof kv->s)))
            return rc;
        if (lp_peek(c) == '=')
            return lp_fail(c, c->pos, "unescaped '=' in the value of tag \"%s\"", kv->key);
        if (lp_has_key(out->tags, out->ntags, kv->key))
            return lp_fail(c, at, "duplicate tag key \"%s\"", kv->key);
        kv->type = AVA_LP_STRING;
        out->ntags++;
    }
    return 0;
}

/* Reads a double-quoted string field value, unescaping \" and \\ (nothing else). */
static int lp_string(struct lp_ctx *c, struct ava_lp_kv *kv) {
    size_t open = c->pos++, n = 0;
    for (;;) {
        if (c->pos >= c->len)
            return lp_fail(c, open, "unterminated string value of field \"%s\"", kv->key);
        char ch = c->s[c->pos];
        if (ch == '"')
            break;
        if (ch == '\\') {
            char next = c->pos + 1 < c->len ? c->s[c->pos + 1] : 0;
            if (next != '"' && next != '\\')
                return lp_fail(c, c->pos, "bad escape in a string value (only \\\" and \\\\)");
            ch = next;
            c->pos++;
        }
        if (n + 1 >= sizeof kv->s)
            return lp_fail(c, open, "string value longer than %zu bytes", sizeof kv->s - 1);
        kv->s[n++] = ch;
        c->pos++;
    }
    kv->s[n] = 0;
    c->pos++;
    kv->type = AVA_LP_STRING;
    return 0;
}

/* Parses an optionally negative decimal integer (all of tok) within int64; false on
 * anything else or overflow. */
static bool lp_int64(const char *tok, size_t n, bool allow_minus, int64_t *v) {
    size_t i = 0;
    bool neg = false;
    if (allow_minus && n > 0 && tok[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n)
        return false;
    uint64_t x = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (tok[i] < '0' || tok[i] > '9')
            return false;
        unsigned d = (unsigned)(tok[i] - '0');
        if (x > (lim - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = neg ? (int64_t)(0 - x) : (int64_t)x;
    return true;
}

/* True when tok is a decimal float: -?(d+(.d*)?|.d+)([eE][+-]?d+)? (so never NaN, Inf or
 * hexadecimal). */
static bool lp_float_syntax(const char *tok, size_t n) {
    size_t i = 0, digits = 0;
    if (i < n && tok[i] == '-')
        i++;
    for (; i < n && tok[i] >= '0' && tok[i] <= '9'; i++)
        digits++;
    if (i < n && tok[i] == '.')
        for (i++; i < n && tok[i] >= '0' && tok[i] <= '9'; i++)
            digits++;
    if (digits == 0)
        return false;
    if (i < n && (tok[i] == 'e' || tok[i] == 'E')) {
        i++;
        if (i < n && (tok[i] == '+' || tok[i] == '-'))
            i++;
        size_t exp_digits = 0;
        for (; i < n && tok[i] >= '0' && tok[i] <= '9'; i++)
            exp_digits++;
        if (exp_digits == 0)
            return false;
    }
    return i == n;
}

/* True when tok spells a boolean; *v is 0 or 1. */
static bool lp_bool(const char *tok, size_t n, int64_t *v) {
    static const char *const yes[] = {"t", "T", "true", "True", "TRUE"};
    static const char *const no[] = {"f", "F", "false", "False", "FALSE"};
    for (size_t i = 0; i < 5; i++) {
        if (strlen(yes[i]) == n && memcmp(tok, yes[i], n) == 0) {
            *v = 1;
            return true;
        }
        if (strlen(no[i]) == n && memcmp(tok, no[i], n) == 0) {
            *v = 0;
            return true;
        }
    }
    return false;
}

/* Classifies an unquoted field value token: 12i, 12u, a float, or a boolean. */
static int lp_scalar(struct lp_ctx *c, struct ava_lp_kv *kv, size_t at, const char *tok, size_t n) {
    char last = n ? tok[n - 1] : 0;
    if (lp_bool(tok, n, &kv->i)) {
        kv->type = AVA_LP_BOOL;
        kv->f = (double)kv->i;
    } else if (last == 'i' || last == 'u') {
        bool is_int = last == 'i';
        if (!lp_int64(tok, n - 1, is_int, &kv->i))
            return lp_fail(c, at, "field \"%s\": \"%.*s\" is not an integer in range (%s)", kv->key,
                           (int)n, tok, is_int ? "-2^63..2^63-1" : "0..2^63-1");
        kv->type = is_int ? AVA_LP_INT : AVA_LP_UINT;
        kv->f = (double)kv->i;
    } else if (lp_float_syntax(tok, n)) {
        char buf[128];
        if (n >= sizeof buf)
            return lp_fail(c, at, "field \"%s\": number longer than %zu bytes", kv->key,
                           sizeof buf - 1);
        memcpy(buf, tok, n);
        buf[n] = 0;
        kv->f = strtod(buf, NULL);
        if (!isfinite(kv->f))
            return lp_fail(c, at, "field \"%s\": %s is out of the range of a double", kv->key, buf);
        kv->type = AVA_LP_FLOAT;
    } else {
        return lp_fail(c, at,
                       "field \"%s\": \"%.*s\" is not a number (1.5, 2e-3, 12i, 12u; no NaN or "
                       "infinity), a boolean or a \"string\"",
                       kv->key, (int)(n > 40 ? 40 : n), tok);
    }
    return 0;
}

/* Reads one field value: a string, or a token up to the next ',' or ' '. */
static int lp_value(struct lp_ctx *c, struct ava_lp_kv *kv) {
    if (lp_peek(c) == '"')
        return lp_string(c, kv);
    size_t at = c->pos;
    while (c->pos < c->len && c->s[c->pos] != ',' && c->s[c->pos] != ' ')
        c->pos++;
    if (c->pos == at)
        return lp_fail(c, at, "field \"%s\" has no value", kv->key);
    return lp_scalar(c, kv, at, c->s + at, c->pos - at);
}

/* Reads "k=v[,k=v...]" (the field set). */
static int lp_fields(struct lp_ctx *c, struct ava_lp_line *out) {
    for (;;) {
        size_t at = c->pos;
        if (out->nfields == AVA_LP_MAX_FIELDS)
            return lp_fail(c, at, "more than %d fields", AVA_LP_MAX_FIELDS);
        struct ava_lp_kv *kv = &out->fields[out->nfields];
        memset(kv, 0, sizeof *kv);
        int rc = lp_name(c, LP_FIELD_KEY, kv->key, sizeof kv->key);
        if (rc)
            return rc;
        if (lp_peek(c) != '=')
            return lp_fail(c, c->pos, "field \"%s\" has no '=' and value", kv->key);
        c->pos++;
        if ((rc = lp_value(c, kv)))
            return rc;
        if (lp_has_key(out->fields, out->nfields, kv->key))
            return lp_fail(c, at, "duplicate field key \"%s\"", kv->key);
        out->nfields++;
        if (lp_peek(c) != ',')
            return 0;
        c->pos++;
    }
}

/* Reads the optional timestamp after the fields and refuses anything after it. */
static int lp_timestamp(struct lp_ctx *c, struct ava_lp_line *out) {
    while (lp_peek(c) == ' ')
        c->pos++;
    if (c->pos >= c->len)
        return 0;
    size_t at = c->pos;
    while (c->pos < c->len && c->s[c->pos] != ' ')
        c->pos++;
    if (!lp_int64(c->s + at, c->pos - at, true, &out->time_ns))
        return lp_fail(c, at,
                       "the timestamp must be an integer number of nanoseconds, got "
                       "\"%.*s\"",
                       (int)(c->pos - at > 40 ? 40 : c->pos - at), c->s + at);
    out->has_time = true;
    while (lp_peek(c) == ' ')
        c->pos++;
    if (c->pos < c->len)
        return lp_fail(c, c->pos, "unexpected text after the timestamp");
    return 0;
}

int ava_lp_parse(const char *line, size_t len, struct ava_lp_line *out, char *err) {
    struct lp_ctx c = {.s = line, .len = len, .pos = 0, .err = err};
    /* the struct is 11 KB: clear the header only; each tag and field is cleared when used */
    out->measurement[0] = '\0';
    out->ntags = out->nfields = 0;
    out->has_time = false;
    out->time_ns = 0;
    if (len > 0 && line[len - 1] == '\r') /* CRLF bodies */
        c.len = --len;
    if (len > AVA_LP_LINE_MAX)
        return lp_fail(&c, AVA_LP_LINE_MAX, "line longer than %d bytes", AVA_LP_LINE_MAX);
    const char *nul = memchr(line, 0, len);
    if (nul)
        return lp_fail(&c, (size_t)(nul - line), "NUL byte in the line");
    size_t lead = 0;
    while (lead < len && (line[lead] == ' ' || line[lead] == '\t'))
        lead++;
    if (lead == len || line[lead] == '#')
        return ava_err(err, AVA_ENOTFOUND, "empty line or comment");
    if (lead > 0)
        return lp_fail(&c, 0, "a line must start with its measurement, not a space");
    int rc = lp_name(&c, LP_MEASUREMENT, out->measurement, sizeof out->measurement);
    if (rc == 0)
        rc = lp_tags(&c, out);
    if (rc)
        return rc;
    if (lp_peek(&c) != ' ')
        return lp_fail(&c, c.pos, "missing field set (expected ' field=value' after \"%s\")",
                       out->measurement);
    while (lp_peek(&c) == ' ')
        c.pos++;
    if (c.pos >= c.len)
        return lp_fail(&c, c.pos, "missing field set after \"%s\"", out->measurement);
    if ((rc = lp_fields(&c, out)))
        return rc;
    if (c.pos < c.len && c.s[c.pos] != ' ')
        return lp_fail(&c, c.pos, "unexpected '%c' after a field value", c.s[c.pos]);
    return lp_timestamp(&c, out);
}

/* ---- lines to points ---- */

/* True when s is 1..max bytes of [A-Za-z0-9._/-] (a metric name). */
static bool metric_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > AVA_METRIC_NAME_MAX)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-") == n;
}

/* True when s is 1..16 bytes of [a-z0-9_] (a phase). */
static bool phase_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > AVA_METRIC_PHASE_MAX)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* Reads a non-negative integer tag value (epoch, batch). */
static int tag_count(const struct ava_lp_kv *kv, int64_t *v, char *err) {
    if (!lp_int64(kv->s, strlen(kv->s), false, v))
        return ava_err(err, AVA_EINVALID, "tag %s must be a non-negative integer, got \"%s\"",
                       kv->key, kv->s);
    return 0;
}

/* Reads a numeric field as a finite value (float, integer or unsigned). */
static int field_value(const struct ava_lp_kv *kv, double *v, char *err) {
    if (kv->type != AVA_LP_FLOAT && kv->type != AVA_LP_INT && kv->type != AVA_LP_UINT)
        return ava_err(err, AVA_EINVALID, "field %s must be a number, not a %s", kv->key,
                       kv->type == AVA_LP_BOOL ? "boolean" : "string");
    *v = kv->type == AVA_LP_FLOAT ? kv->f : (double)kv->i;
    if (!isfinite(*v))
        return ava_err(err, AVA_EINVALID, "field %s must be finite", kv->key);
    return 0;
}

/* Fills the point's time from the line's timestamp (ns to ms); refuses times before 1970. */
static int line_time(const struct ava_lp_line *l, struct ava_point *p, char *err) {
    p->time_ms = 0;
    if (!l->has_time)
        return 0;
    if (l->time_ns < 0)
        return ava_err(err, AVA_EINVALID, "timestamp %" PRId64 " is before 1970", l->time_ns);
    p->time_ms = l->time_ns / 1000000;
    return 0;
}

/* Applies the tags of an ava line: phase and epoch, nothing else. */
static int point_tags(const struct ava_lp_line *l, struct ava_point *p, char *err) {
    for (int i = 0; i < l->ntags; i++) {
        const struct ava_lp_kv *kv = &l->tags[i];
        if (strcmp(kv->key, "phase") == 0) {
            if (!phase_ok(kv->s))
                return ava_err(err, AVA_EINVALID,
                               "phase \"%s\" must be 1-%d characters of [a-z0-9_]", kv->s,
                               AVA_METRIC_PHASE_MAX);
            memcpy(p->phase, kv->s, strlen(kv->s) + 1); /* phase_ok: it fits */
        } else if (strcmp(kv->key, "epoch") == 0) {
            int rc = tag_count(kv, &p->epoch, err);
            if (rc)
                return rc;
        } else {
            return ava_err(err, AVA_EINVALID, "unknown tag \"%s\" (a point has phase and epoch)",
                           kv->key);
        }
    }
    return 0;
}

int ava_lp_to_point(const struct ava_lp_line *l, struct ava_point *p, char *err) {
    memset(p, 0, sizeof *p);
    p->epoch = -1;
    if (!metric_name_ok(l->measurement))
        return ava_err(err, AVA_EINVALID,
                       "metric name \"%s\" must be 1-%d characters of [A-Za-z0-9._/-]",
                       l->measurement, AVA_METRIC_NAME_MAX);
    snprintf(p->name, sizeof p->name, "%s", l->measurement);
    int rc = point_tags(l, p, err);
    if (rc)
        return rc;
    bool has_value = false, has_step = false;
    for (int i = 0; i < l->nfields; i++) {
        const struct ava_lp_kv *kv = &l->fields[i];
        if (strcmp(kv->key, "value") == 0) {
            if ((rc = field_value(kv, &p->value, err)))
                return rc;
            has_value = true;
        } else if (strcmp(kv->key, "step") == 0) {
            if ((kv->type != AVA_LP_INT && kv->type != AVA_LP_UINT) || kv->i < 0)
                return ava_err(err, AVA_EINVALID,
                               "field step must be a non-negative integer (step=12i)");
            p->step = kv->i;
            has_step = true;
        } else {
            return ava_err(err, AVA_EINVALID,
                           "unknown field \"%s\" (a point has the fields value and step)", kv->key);
        }
    }
    if (!has_value || !has_step)
        return ava_err(err, AVA_EINVALID, "metric %s: missing field %s", p->name,
                       has_value ? "step" : "value");
    return line_time(l, p, err);
}

/* The original AVA SDK's measurements: what each becomes, and which field holds the value. */
static const struct {
    const char *measurement, *name, *phase, *field;
} sdk_names[] = {
    {"ava_metric_training_loss", "loss", "train", "value"},
    {"ava_metric_training_learning_rate", "learning_rate", "train", "value"},
    {"ava_metric_training_val_accuracy", "accuracy", "val", "value"},
    {"ava_metric_training_sample_num", "samples", "train", "count"},
};

/* Converts an AVA SDK line once its measurement is known: tags epoch and batch give the
 * epoch and the step (batch, else epoch); other tags and fields are ignored, as the
 * original SDK's payloads are not ours to change. */
static int sdk_point(const struct ava_lp_line *l, size_t k, struct ava_point *p, char *err) {
    int64_t batch = -1;
    int rc;
    for (int i = 0; i < l->ntags; i++) {
        if (strcmp(l->tags[i].key, "epoch") == 0)
            rc = tag_count(&l->tags[i], &p->epoch, err);
        else if (strcmp(l->tags[i].key, "batch") == 0)
            rc = tag_count(&l->tags[i], &batch, err);
        else
            rc = 0;
        if (rc)
            return rc;
    }
    const struct ava_lp_kv *val = NULL;
    for (int i = 0; i < l->nfields; i++)
        if (strcmp(l->fields[i].key, sdk_names[k].field) == 0)
            val = &l->fields[i];
    if (!val)
        return ava_err(err, AVA_EINVALID, "%s: missing field %s", l->measurement,
                       sdk_names[k].field);
    if ((rc = field_value(val, &p->value, err)))
        return rc;
    if (batch < 0 && p->epoch < 0)
        return ava_err(err, AVA_EINVALID, "%s: needs a batch or an epoch tag for its step",
                       l->measurement);
    p->step = batch >= 0 ? batch : p->epoch;
    snprintf(p->name, sizeof p->name, "%s", sdk_names[k].name);
    snprintf(p->phase, sizeof p->phase, "%s", sdk_names[k].phase);
    return line_time(l, p, err);
}

int ava_lp_to_point_ava_sdk(const struct ava_lp_line *l, struct ava_point *p, char *err) {
    for (size_t k = 0; k < sizeof sdk_names / sizeof sdk_names[0]; k++) {
        if (strcmp(l->measurement, sdk_names[k].measurement) == 0) {
            memset(p, 0, sizeof *p);
            p->epoch = -1;
            return sdk_point(l, k, p, err);
        }
    }
    return ava_lp_to_point(l, p, err);
}

/* ---- lines straight to points: the one shape ava-shim writes, fast ---- */

/* Character classes of a metric name ([A-Za-z0-9._/-]) and a phase ([a-z0-9_]). */
static bool name_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '/' || c == '-';
}

static bool phase_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Reads 1-18 decimal digits (so no overflow) at *i; false otherwise. */
static bool digits18(const char *s, size_t n, size_t *i, int64_t *v) {
    size_t start = *i;
    int64_t x = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9' && *i - start < 18)
        x = x * 10 + (s[(*i)++] - '0');
    *v = x;
    return *i > start && (*i == n || s[*i] < '0' || s[*i] > '9');
}

/* True when s[*i..] starts with the literal lit (advancing past it). */
static bool lit(const char *s, size_t n, size_t *i, const char *lit, size_t len) {
    if (n - *i < len || memcmp(s + *i, lit, len) != 0)
        return false;
    *i += len;
    return true;
}

/* 10^0..10^27, exact in a double up to 10^22 and in an x87 long double up to 10^27. */
static const long double pow10l_exact[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,
                                           1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
                                           1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
                                           1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};

/* m x 10^e correctly rounded to a double without strtod, when that is cheap and provably
 * exact: m and 10^|e| exact in a double (Clinger's fast path), or, with an x87 long double
 * (64-bit significand), in that, unless its one rounding leaves the result within one unit
 * of a double's rounding midpoint (where rounding twice could differ from rounding once).
 * False when neither applies (the caller uses strtod). */
static bool decimal_to_double(uint64_t m, int e, double *out) {
    if (m == 0) {
        *out = 0.0;
        return true;
    }
    if (m <= (1ull << 53) && e >= -22 && e <= 22) {
        *out = e < 0 ? (double)m / (double)pow10l_exact[-e] : (double)m * (double)pow10l_exact[e];
        return true;
    }
#if LDBL_MANT_DIG == 64
    if (e < -27 || e > 27)
        return false;
    long double x = e < 0 ? (long double)m / pow10l_exact[-e] : (long double)m * pow10l_exact[e];
    uint64_t sig;
    memcpy(&sig, &x, sizeof sig);           /* the x87 format's 64-bit significand comes first */
    unsigned low = (unsigned)(sig & 0x7ff); /* the 11 bits a double does not keep */
    if (low >= 0x3ff && low <= 0x401)
        return false;
    double d = (double)x;
    if (!(fabs(d) >= DBL_MIN) || !isfinite(d)) /* subnormal: fewer bits kept */
        return false;
    *out = d;
    return true;
#else
    return false;
#endif
}

/* Reads a decimal float field value -?(d+(.d*)?|.d+)([eE][+-]?d+)? ending at ',' (as the
 * full parser does, strictly); false for anything else, for over 127 bytes, and for values
 * that are not finite (the full parser then says why). */
static bool float_at(const char *s, size_t n, size_t *i, double *v) {
    size_t at = *i, k = at, digits = 0, sig = 0;
    uint64_t m = 0;
    int e = 0, exp = 0;
    bool neg = k < n && s[k] == '-';
    k += neg;
    for (int dot = 0; dot < 2; dot++) {
        for (; k < n && s[k] >= '0' && s[k] <= '9'; k++, digits++) {
            if (sig < 19 && (m || s[k] != '0')) {
                m = m * 10 + (uint64_t)(s[k] - '0');
                sig++;
                e -= dot;
            } else if (m || s[k] != '0') {
                sig++; /* too many significant digits: strtod */
            } else {
                e -= dot; /* a leading zero after the point */
            }
        }
        if (dot || k >= n || s[k] != '.')
            break;
        k++;
    }
    if (digits == 0)
        return false;
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        bool eneg = k < n && s[k] == '-';
        k += k < n && (s[k] == '-' || s[k] == '+');
        size_t ed = k;
        for (; k < n && s[k] >= '0' && s[k] <= '9'; k++)
            exp = exp < 10000 ? exp * 10 + (s[k] - '0') : exp;
        if (k == ed)
            return false;
        e += eneg ? -exp : exp;
    }
    if (k >= n || s[k] != ',' || k - at > 127)
        return false;
    if (sig > 19 || !decimal_to_double(m, e, v)) {
        char buf[128];
        memcpy(buf, s + at, k - at);
        buf[k - at] = 0;
        *v = strtod(buf, NULL);
        if (!isfinite(*v))
            return false;
    } else if (neg) {
        *v = -*v;
    }
    *i = k;
    return true;
}

/* Fills p from a line of exactly the shape ava-shim writes,
 * NAME[,phase=P][,epoch=E] value=V,step=Si[ T], with what ava_lp_parse + ava_lp_to_point
 * would give. False for anything else, valid or not: the caller then uses the full parser. */
static bool shim_line(const char *s, size_t n, struct ava_point *p) {
    size_t i = 0;
    while (i < n && i < AVA_METRIC_NAME_MAX && name_char((unsigned char)s[i]))
        i++;
    if (i == 0 || i >= n || (s[i] != ',' && s[i] != ' '))
        return false;
    memcpy(p->name, s, i);
    p->name[i] = 0;
    p->phase[0] = 0;
    p->epoch = -1;
    if (lit(s, n, &i, ",phase=", 7)) {
        size_t at = i;
        while (i < n && i - at < AVA_METRIC_PHASE_MAX && phase_char((unsigned char)s[i]))
            i++;
        if (i == at || i >= n || (s[i] != ',' && s[i] != ' '))
            return false;
        memcpy(p->phase, s + at, i - at);
        p->phase[i - at] = 0;
    }
    if (lit(s, n, &i, ",epoch=", 7) && !digits18(s, n, &i, &p->epoch))
        return false;
    if (!lit(s, n, &i, " value=", 7) || !float_at(s, n, &i, &p->value) ||
        !lit(s, n, &i, ",step=", 6) || !digits18(s, n, &i, &p->step) || !lit(s, n, &i, "i", 1))
        return false;
    p->time_ms = 0;
    if (i == n)
        return true;
    int64_t sec, ns;
    size_t at = ++i; /* the timestamp: up to 19 digits, read as seconds and nanoseconds */
    if (s[at - 1] != ' ' || n - at < 10 || n - at > 19)
        return false;
    size_t split = n - 9;
    if (!digits18(s, split, &i, &sec) || i != split || !digits18(s, n, &i, &ns) || i != n ||
        sec > INT64_MAX / 1000000000 - 1)
        return false;
    p->time_ms = sec * 1000 + ns / 1000000;
    return true;
}

int ava_lp_line_point(const char *s, size_t n, struct ava_point *p, bool *fast) {
    bool f = shim_line(s, n, p);
    if (fast)
        *fast = f;
    if (f)
        return 0;
    struct ava_lp_line l;
    int r = ava_lp_parse(s, n, &l, NULL);
    return r == 0 ? ava_lp_to_point(&l, p, NULL) : r;
}

/* ---- formatting ---- */

/* Appends s with a backslash before each of the characters in `special`; false when out
 * has no room or s holds a line break (which no escape can carry). */
static bool put_escaped(char *out, size_t outlen, size_t *n, const char *s, const char *special) {
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r')
            return false;
        bool esc = strchr(special, *s) != NULL;
        if (*n + (esc ? 2 : 1) >= outlen)
            return false;
        if (esc)
            out[(*n)++] = '\\';
        out[(*n)++] = *s;
    }
    out[*n] = 0;
    return true;
}

/* Appends printf-formatted text; false when out has no room. */
static bool put_fmt(char *out, size_t outlen, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool put_fmt(char *out, size_t outlen, size_t *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *n, outlen - *n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= outlen - *n)
        return false;
    *n += (size_t)w;
    return true;
}

int ava_lp_format(const struct ava_point *p, char *out, size_t outlen) {
    size_t n = 0;
    /* a leading '#' would make the line a comment; no escape exists for it */
    if (!out || outlen == 0 || !p->name[0] || p->name[0] == '#' || !isfinite(p->value))
        return -1;
    out[0] = 0;
    if (!put_escaped(out, outlen, &n, p->name, ", \\"))
        return -1;
    if (p->phase[0] &&
        (!put_fmt(out, outlen, &n, ",phase=") || !put_escaped(out, outlen, &n, p->phase, ", =\\")))
        return -1;
    if (p->epoch >= 0 && !put_fmt(out, outlen, &n, ",epoch=%" PRId64, p->epoch))
        return -1;
    if (!put_fmt(out, outlen, &n, " value=%.17g,step=%" PRId64 "i", p->value, p->step))
        return -1;
    if (p->time_ms != 0) {
        if (p->time_ms > INT64_MAX / 1000000 || p->time_ms < INT64_MIN / 1000000)
            return -1;
        if (!put_fmt(out, outlen, &n, " %" PRId64, p->time_ms * 1000000))
            return -1;
    }
    if (!put_fmt(out, outlen, &n, "\n"))
        return -1;
    return (int)n;
}
