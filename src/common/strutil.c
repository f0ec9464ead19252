/* strutil.c: names, durations, sizes and index lists (see strutil.h). */
#include "strutil.h"

#include "err.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ava_name_valid(const char *s) {
    if (!s || !isalnum((unsigned char)s[0]))
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return false;
        if (!isascii(c))
            return false;
    }
    return n <= AVA_NAME_MAX;
}

void ava_format_double(double v, char *out, size_t outlen) {
    snprintf(out, outlen, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, outlen, "%.17g", v);
}

bool ava_startswith(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Reads decimal digits at *p into *v, refusing overflow past max. */
static int read_digits(const char **p, int64_t max, int64_t *v) {
    const char *s = *p;
    if (!isdigit((unsigned char)*s))
        return -1;
    int64_t x = 0;
    while (isdigit((unsigned char)*s)) {
        int d = *s - '0';
        if (x > (max - d) / 10)
            return -1;
        x = x * 10 + d;
        s++;
    }
    *p = s;
    *v = x;
    return 0;
}

int ava_parse_uint(const char *s, int64_t max, int64_t *out, char *err) {
    const char *p = s ? s : "";
    int64_t v;
    if (read_digits(&p, max, &v) < 0 || *p)
        return ava_err(err, AVA_EINVALID, "'%s' is not a whole number between 0 and %" PRId64,
                       s ? s : "", max);
    *out = v;
    return 0;
}

int ava_parse_duration(const char *s, int64_t *out_ms, char *err) {
    const int64_t limit = INT64_C(1) << 50; /* ~35,000 years of ms; keeps sums overflow-free */
    const char *p = s ? s : "";
    int64_t total = 0;
    if (!*p)
        return ava_err(err, AVA_EINVALID, "empty duration (use e.g. 30s, 10m, 2h, 3d)");
    while (*p) {
        int64_t v;
        if (read_digits(&p, limit, &v) < 0)
            goto bad;
        int64_t mult = 1000;
        if (*p == 's')
            p++;
        else if (*p == 'm' && p[1] == 's')
            p += 2, mult = 1;
        else if (*p == 'm')
            p++, mult = 60000;
        else if (*p == 'h')
            p++, mult = 3600000;
        else if (*p == 'd')
            p++, mult = 86400000;
        else if (*p)
            goto bad;
        if (v > (limit - total) / mult)
            goto bad;
        total += v * mult;
    }
    *out_ms = total;
    return 0;
bad:
    return ava_err(err, AVA_EINVALID,
                   "'%s' is not a duration (a number with unit s, m, h or d, e.g. 90s or 72h)", s);
}

void ava_format_duration(int64_t ms, char *out, size_t outlen) {
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    if (ms <= 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0] && ms > 0; i++) {
        if (ms < units[i].ms)
            continue;
        /* sub-second remainders only print when the duration is not whole seconds */
        int64_t q = ms / units[i].ms;
        ms -= q * units[i].ms;
        int n = snprintf(out + used, outlen - used, "%" PRId64 "%s", q, units[i].unit);
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
}

int ava_parse_size(const char *s, int64_t *out_bytes, char *err) {
    const char *p = s ? s : "";
    int64_t v;
    if (read_digits(&p, INT64_C(1) << 52, &v) < 0)
        goto bad;
    int shift = 0;
    switch (toupper((unsigned char)*p)) {
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    case 'B':
    case '\0':
        break;
    default:
        goto bad;
    }
    if (shift) {
        p++;
        if (*p == 'i')
            p++;
    }
    if (*p == 'B' || *p == 'b')
        p++;
    if (*p)
        goto bad;
    if (shift && v > (INT64_C(1) << (62 - shift)))
        goto bad;
    *out_bytes = v << shift;
    return 0;
bad:
    return ava_err(err, AVA_EINVALID,
                   "'%s' is not a size (a number with unit K, M, G or T, e.g. 8G)", s ? s : "");
}

void ava_format_size(int64_t bytes, char *out, size_t outlen) {
    static const char units[] = "KMGT";
    if (bytes < 1024) {
        snprintf(out, outlen, "%" PRId64, bytes);
        return;
    }
    double v = (double)bytes;
    int u = -1;
    /* 1048575 bytes must print 1M, not 1024.0K: compare after rounding to one decimal */
    while ((v >= 1024 || (u >= 0 && v >= 1023.95)) && u < 3) {
        v /= 1024;
        u++;
    }
    if (v == (double)(int64_t)v)
        snprintf(out, outlen, "%" PRId64 "%c", (int64_t)v, units[u]);
    else
        snprintf(out, outlen, "%.1f%c", v, units[u]);
}

int ava_parse_index_list(const char *s, int *out, int cap, int *n, char *err) {
    const char *p = s ? s : "";
    int count = 0;
    if (!*p)
        return ava_err(err, AVA_EINVALID, "empty index list");
    while (*p) {
        int64_t v;
        if (read_digits(&p, 1023, &v) < 0 || (*p && *p != ','))
            return ava_err(err, AVA_EINVALID, "'%s' is not a list of indices like 0,1,2", s);
        for (int i = 0; i < count; i++)
            if (out[i] == (int)v)
                return ava_err(err, AVA_EINVALID, "index %d is listed twice in '%s'", (int)v, s);
        if (count == cap)
            return ava_err(err, AVA_EINVALID, "more than %d indices in '%s'", cap, s);
        out[count++] = (int)v;
        if (*p == ',') {
            p++;
            if (!*p)
                return ava_err(err, AVA_EINVALID, "'%s' ends with a comma", s);
        }
    }
    *n = count;
    return 0;
}
