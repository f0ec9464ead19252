/* out.c: the small formatting helpers of the CLI's output (see out.h). */
#include "out.h"

#include "../common/buf.h"
#include "../common/strutil.h"
#include "../common/timeutil.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cli_print_json(FILE *f, const json_t *v) {
    json_dumpf(v, f, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', f);
}

/* Reads exactly n digits at *p into *v. */
static int read_fixed(const char **p, int n, int *v) {
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        x = x * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

/* Reads the zone of an RFC 3339 time ("Z", "+hh:mm", "-hh:mm") as seconds east of UTC. */
static int read_zone(const char *p, int64_t *offset_s) {
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        *offset_s = 0;
        return 0;
    }
    int hh, mm;
    int sign = *p == '+' ? 1 : *p == '-' ? -1 : 0;
    if (!sign)
        return -1;
    p++;
    if (read_fixed(&p, 2, &hh) < 0 || *p++ != ':' || read_fixed(&p, 2, &mm) < 0 || *p)
        return -1;
    *offset_s = sign * (hh * 3600 + mm * 60);
    return 0;
}

int cli_time_parse(const char *s, int64_t *ms) {
    if (!s)
        return -1;
    struct tm tm = {0};
    int y, mo, d, h, mi, se, frac = 0;
    const char *p = s;
    if (read_fixed(&p, 4, &y) < 0 || *p++ != '-' || read_fixed(&p, 2, &mo) < 0 || *p++ != '-' ||
        read_fixed(&p, 2, &d) < 0 || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (read_fixed(&p, 2, &h) < 0 || *p++ != ':' || read_fixed(&p, 2, &mi) < 0 || *p++ != ':' ||
        read_fixed(&p, 2, &se) < 0)
        return -1;
    if (*p == '.') {
        p++;
        int digits = 0;
        for (; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    int64_t offset_s;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 ||
        read_zone(p, &offset_s) < 0)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - offset_s) * 1000 + frac;
    return 0;
}

void cli_format_local_time(const char *rfc3339, char *out, size_t outlen) {
    int64_t ms;
    if (!rfc3339) {
        snprintf(out, outlen, "-");
        return;
    }
    if (cli_time_parse(rfc3339, &ms) < 0) {
        snprintf(out, outlen, "%s", rfc3339);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%d %H:%M:%S", &tm);
}

void cli_format_span(const char *start, const char *end, char *out, size_t outlen) {
    int64_t a, b;
    if (cli_time_parse(start, &a) < 0) {
        snprintf(out, outlen, "-");
        return;
    }
    if (!end || cli_time_parse(end, &b) < 0)
        b = ava_now_ms();
    int64_t span = b > a ? b - a : 0;
    if (span >= 1000)
        span -= span % 1000;
    if (span == 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    ava_format_duration(span, out, outlen);
}

void cli_format_resources(int64_t gpus, int64_t cpus, int64_t mem_bytes, char *out, size_t outlen) {
    int n;
    if (gpus > 0)
        n = snprintf(out, outlen, "%" PRId64 " GPU%s", gpus, gpus == 1 ? "" : "s");
    else
        n = snprintf(out, outlen, "%" PRId64 " CPU%s", cpus, cpus == 1 ? "" : "s");
    if (mem_bytes > 0 && n > 0 && (size_t)n < outlen) {
        char size[32];
        ava_format_size(mem_bytes, size, sizeof size);
        snprintf(out + n, outlen - (size_t)n, ", %s", size);
    }
}

const char *cli_jstr(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

int64_t cli_jint(const json_t *obj, const char *key, int64_t def) {
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

bool cli_jbool(const json_t *obj, const char *key) {
    return json_is_true(json_object_get(obj, key));
}

void cli_format_int_list(const json_t *arr, char *out, size_t outlen) {
    size_t used = 0;
    size_t i;
    const json_t *v;
    snprintf(out, outlen, "-");
    if (!json_is_array(arr))
        return;
    json_array_foreach(arr, i, v) {
        int n = snprintf(out + used, outlen - used, "%s%" JSON_INTEGER_FORMAT, i ? "," : "",
                         json_integer_value(v));
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
}

/* Appends one word, single-quoted when it holds anything a shell would interpret. */
static void append_word(struct ava_buf *b, const char *w) {
    bool plain = *w != '\0';
    for (const char *p = w; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("@%+=:,./_-", *p))
            plain = false;
    if (plain) {
        ava_buf_puts(b, w);
        return;
    }
    ava_buf_puts(b, "'");
    for (const char *p = w; *p; p++) {
        if (*p == '\'')
            ava_buf_puts(b, "'\\''");
        else
            ava_buf_append(b, p, 1);
    }
    ava_buf_puts(b, "'");
}

char *cli_format_command(const char *entry, const json_t *args) {
    struct ava_buf b = {0};
    ava_buf_puts(&b, "");
    if (entry)
        append_word(&b, entry);
    size_t i;
    const json_t *v;
    json_array_foreach(args, i, v) {
        if (b.len)
            ava_buf_puts(&b, " ");
        append_word(&b, json_is_string(v) ? json_string_value(v) : "?");
    }
    return ava_buf_steal(&b);
}

void cli_print_kv(const char *label, const char *value) {
    printf("%-13s %s\n", label, value && *value ? value : "-");
}
