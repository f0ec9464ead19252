/* logparse.c: the log parser object (see logparse.h): cleaning each '\r'-separated update
 * of a line, handing it to the chosen built-in parser, then to the user's rules; plus the
 * scanner, point sink and step tracker the built-in parsers share (logparse_impl.h). */
#include "logparse.h"

#include "../common/err.h"
#include "logparse_impl.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest update of a line that is parsed; the rest of a longer one is ignored. */
#define SEGMENT_MAX 4096

const char *const ava_logparse_builtin[] = {"mxnet", "caffe", "darknet", "keras", "pytorch", NULL};

/* The built-in parsers, in the order of ava_logparse_builtin. */
static const struct {
    void (*init)(union logp_state *st);
    void (*segment)(union logp_state *st, const char *seg, struct logp_sink *o);
} builtins[] = {
    {ava_logp_mxnet_init, ava_logp_mxnet_segment},
    {ava_logp_caffe_init, ava_logp_caffe_segment},
    {ava_logp_darknet_init, ava_logp_darknet_segment},
    {ava_logp_keras_init, ava_logp_keras_segment},
    {ava_logp_pytorch_init, ava_logp_pytorch_segment},
};

/* One user rule: NAME=REGEX with exactly one capture group. */
struct rule {
    char name[AVA_METRIC_NAME_MAX + 1];
    regex_t re;
};

struct ava_logparse {
    int builtin; /* index into builtins, -1 for none */
    union logp_state st;
    struct rule *rules;
    size_t nrules;
    int64_t lines;     /* lines fed so far: the step of rule points without a built-in */
    bool any_builtin;  /* the built-in parser has produced a point */
    int64_t last_step; /* the step of its last point */
    char seg[SEGMENT_MAX + 1];
};

/* ---- the scanner ---- */

bool ava_logp_scan_lit(struct logp_scan *s, const char *lit) {
    size_t n = strlen(lit);
    if (strncmp(s->p, lit, n) != 0)
        return false;
    s->p += n;
    return true;
}

bool ava_logp_scan_past(struct logp_scan *s, const char *lit) {
    const char *at = strstr(s->p, lit);
    if (!at)
        return false;
    s->p = at + strlen(lit);
    return true;
}

void ava_logp_scan_blank(struct logp_scan *s) {
    while (*s->p == ' ' || *s->p == '\t')
        s->p++;
}

bool ava_logp_scan_count(struct logp_scan *s, int64_t *v) {
    const char *p = s->p;
    int64_t x = 0;
    if (!isdigit((unsigned char)*p))
        return false;
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (x > (INT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    s->p = p;
    return true;
}

/* The length of the decimal number at p (see ava_logp_scan_number), 0 when there is none. */
static size_t number_len(const char *p) {
    size_t i = 0, digits = 0;
    if (p[i] == '+' || p[i] == '-')
        i++;
    for (; isdigit((unsigned char)p[i]); i++)
        digits++;
    if (p[i] == '.')
        for (i++; isdigit((unsigned char)p[i]); i++)
            digits++;
    if (digits == 0)
        return 0;
    if (p[i] == 'e' || p[i] == 'E') {
        size_t j = i + 1;
        if (p[j] == '+' || p[j] == '-')
            j++;
        if (isdigit((unsigned char)p[j])) {
            while (isdigit((unsigned char)p[j]))
                j++;
            i = j;
        }
    }
    return i;
}

bool ava_logp_scan_number(struct logp_scan *s, double *v) {
    size_t n = number_len(s->p);
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s->p, n);
    buf[n] = 0;
    double x = strtod(buf, NULL);
    if (!isfinite(x))
        return false;
    *v = x;
    s->p += n;
    return true;
}

bool ava_logp_scan_key(struct logp_scan *s, char *out, size_t outlen) {
    size_t n = 0;
    const char *p = s->p;
    while (*p && (isalnum((unsigned char)*p) || strchr("_./@-", *p))) {
        if (n + 1 < outlen)
            out[n++] = *p;
        p++;
    }
    out[n] = 0;
    if (p == s->p)
        return false;
    s->p = p;
    return true;
}

bool ava_logp_scan_whole_number(const char *str, double *v) {
    struct logp_scan s = {str};
    ava_logp_scan_blank(&s);
    if (!ava_logp_scan_number(&s, v))
        return false;
    ava_logp_scan_blank(&s);
    return *s.p == 0;
}

/* ---- the sink ---- */

/* Writes name as an ava name: lowercase, [a-z0-9._/-] kept, anything else '_'. */
static void metric_name_from(const char *name, char *out, size_t outlen) {
    size_t n = 0;
    for (; name[n] && n + 1 < outlen; n++) {
        unsigned char c = (unsigned char)tolower((unsigned char)name[n]);
        out[n] = (isalnum(c) && c < 128) || strchr("._/-", c) ? (char)c : '_';
    }
    out[n] = 0;
}

/* Appends a point with this exact name when there is room; false when the value or step
 * cannot be a point. */
static bool sink_put(struct logp_sink *o, const char *name, const char *phase, int64_t step,
                     double value, int64_t epoch) {
    if (!name[0] || !isfinite(value) || step < 0)
        return false;
    if (o->n == o->cap)
        return true;
    struct ava_point *p = &o->pts[o->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->phase, sizeof p->phase, "%s", phase);
    p->step = step;
    p->value = value;
    p->epoch = epoch;
    return true;
}

void ava_logp_emit(struct logp_sink *o, const char *name, const char *phase, int64_t step,
                   double value, int64_t epoch) {
    char clean[AVA_METRIC_NAME_MAX + 1];
    metric_name_from(name, clean, sizeof clean);
    if (strcmp(clean, "acc") == 0)
        strcpy(clean, "accuracy");
    else if (strcmp(clean, "lr") == 0)
        strcpy(clean, "learning_rate");
    if (sink_put(o, clean, phase, step, value, epoch)) {
        o->any = true;
        o->last_step = step;
    }
}

/* ---- the step tracker ---- */

/* a + b, or INT64_MAX when it overflows: a log's numbers are not trusted (all >= 0). */
static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

/* a * b, or INT64_MAX when it overflows (a, b >= 0). */
static int64_t sat_mul(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

void ava_logp_steps_init(struct logp_steps *t, int64_t base_epoch) {
    memset(t, 0, sizeof *t);
    t->base_epoch = base_epoch;
    t->epoch = -1;
    t->max_batch = -1;
    t->last = -1;
}

int64_t ava_logp_steps_batch(struct logp_steps *t, int64_t epoch, int64_t batch, int64_t total) {
    bool new_epoch = epoch != t->epoch;
    if (new_epoch && t->epoch >= 0 && total <= 0 && sat_add(t->max_batch, 1) > t->span)
        t->span = sat_add(t->max_batch, 1);
    if (total > 0)
        t->span = total;
    if (new_epoch)
        t->max_batch = -1;
    if (batch > t->max_batch)
        t->max_batch = batch;
    int64_t e = epoch > t->base_epoch ? epoch - t->base_epoch : 0;
    int64_t step = sat_add(sat_add(sat_mul(e, t->span), batch), t->offset);
    if (step < t->last || (t->restarted && step <= t->last)) { /* started over */
        int64_t next = sat_add(t->last, 1);
        t->offset = sat_add(t->offset, next - step);
        step = next;
    }
    t->restarted = false;
    t->epoch = epoch;
    t->last = step;
    return step;
}

int64_t ava_logp_steps_epoch_end(const struct logp_steps *t, int64_t epoch) {
    if (t->epoch < 0)
        return epoch > 0 ? epoch : 0;
    if (epoch <= t->epoch || t->span <= 0)
        return t->last;
    int64_t e = epoch > t->base_epoch ? epoch - t->base_epoch : 0;
    int64_t est = sat_add(sat_add(sat_mul(e, t->span), t->span - 1), t->offset);
    return est > t->last ? est : t->last;
}

/* ---- the parser object ---- */

/* Compiles rule i ("NAME=REGEX") into r. */
static int rule_compile(size_t i, const char *text, struct rule *r, char *err) {
    const char *eq = strchr(text, '=');
    size_t nlen = eq ? (size_t)(eq - text) : 0;
    if (!eq || nlen == 0 || nlen > AVA_METRIC_NAME_MAX ||
        strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-") != nlen)
        return ava_err(err, AVA_EINVALID,
                       "metric rule %zu \"%.80s\": must be NAME=REGEX with NAME 1-%d characters "
                       "of [A-Za-z0-9._/-]",
                       i + 1, text, AVA_METRIC_NAME_MAX);
    memcpy(r->name, text, nlen);
    r->name[nlen] = 0;
    if (!eq[1])
        return ava_err(err, AVA_EINVALID, "metric rule %zu (%s): empty regular expression", i + 1,
                       r->name);
    int rc = regcomp(&r->re, eq + 1, REG_EXTENDED);
    if (rc != 0) {
        char msg[160];
        regerror(rc, &r->re, msg, sizeof msg);
        return ava_err(err, AVA_EINVALID, "metric rule %zu (%s): bad regular expression: %s", i + 1,
                       r->name, msg);
    }
    if (r->re.re_nsub != 1) {
        size_t groups = r->re.re_nsub;
        regfree(&r->re);
        return ava_err(err, AVA_EINVALID,
                       "metric rule %zu (%s): the expression must have exactly one capture "
                       "group (the number), it has %zu",
                       i + 1, r->name, groups);
    }
    return 0;
}

/* Finds the built-in parser called name; -1 for none, -2 when unknown. */
static int builtin_index(const char *name) {
    if (!name || !name[0] || strcmp(name, "none") == 0)
        return -1;
    for (int i = 0; ava_logparse_builtin[i]; i++)
        if (strcmp(name, ava_logparse_builtin[i]) == 0)
            return i;
    return -2;
}

int ava_logparse_new(const char *parser, const char *const *rules, size_t nrules,
                     struct ava_logparse **out, char *err) {
    *out = NULL;
    int b = builtin_index(parser);
    if (b == -2)
        return ava_err(err, AVA_EINVALID,
                       "unknown metrics parser \"%.64s\" (known: mxnet, caffe, darknet, keras, "
                       "pytorch)",
                       parser);
    if (nrules && !rules)
        return ava_err(err, AVA_EINVALID, "%zu metric rules but no rule array", nrules);
    if (nrules > AVA_LOGPARSE_MAX_RULES)
        return ava_err(err, AVA_EINVALID, "at most %d metric rules, got %zu",
                       AVA_LOGPARSE_MAX_RULES, nrules);
    struct ava_logparse *lp = calloc(1, sizeof *lp);
    if (!lp || (nrules && !(lp->rules = calloc(nrules, sizeof *lp->rules)))) {
        free(lp);
        return ava_err(err, AVA_EINTERNAL, "out of memory");
    }
    lp->builtin = b;
    if (b >= 0)
        builtins[b].init(&lp->st);
    for (size_t i = 0; i < nrules; i++) {
        int rc = rule_compile(i, rules[i] ? rules[i] : "", &lp->rules[i], err);
        if (rc) {
            ava_logparse_free(lp);
            return rc;
        }
        lp->nrules++;
    }
    *out = lp;
    return 0;
}

void ava_logparse_free(struct ava_logparse *lp) {
    if (!lp)
        return;
    for (size_t i = 0; i < lp->nrules; i++)
        regfree(&lp->rules[i].re);
    free(lp->rules);
    free(lp);
}

/* Copies s[0..n) into lp->seg without backspaces, NULs and terminal escape sequences (CSI
 * "ESC [ ... final" and two-byte "ESC x"), trimming trailing blanks. */
static void clean_segment(struct ava_logparse *lp, const char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n && o < SEGMENT_MAX; i++) {
        char c = s[i];
        if (c == '\033') {
            if (i + 1 < n && s[i + 1] == '[') {
                for (i += 2; i < n && !(s[i] >= 0x40 && s[i] <= 0x7e); i++)
                    ;
            } else {
                i++;
            }
            continue;
        }
        if (c == '\b' || c == 0)
            continue;
        lp->seg[o++] = c;
    }
    while (o > 0 && isspace((unsigned char)lp->seg[o - 1]))
        o--;
    lp->seg[o] = 0;
}

/* Applies the user rules to the cleaned segment: the first match of each rule whose group
 * is a number gives a point named as the rule says (phase none, epoch -1) at the built-in
 * parser's current step (its last point's, 0 before any), or at the line number (1 for the
 * first line fed) when there is no built-in parser. */
static void apply_rules(struct ava_logparse *lp, struct logp_sink *o) {
    int64_t step = lp->builtin >= 0 ? (lp->any_builtin ? lp->last_step : 0) : lp->lines;
    for (size_t i = 0; i < lp->nrules; i++) {
        regmatch_t m[2];
        if (regexec(&lp->rules[i].re, lp->seg, 2, m, 0) != 0 || m[1].rm_so < 0)
            continue;
        char num[64];
        size_t len = (size_t)(m[1].rm_eo - m[1].rm_so);
        if (len == 0 || len >= sizeof num)
            continue;
        memcpy(num, lp->seg + m[1].rm_so, len);
        num[len] = 0;
        double v;
        if (!ava_logp_scan_whole_number(num, &v))
            continue;
        sink_put(o, lp->rules[i].name, "", step, v, -1); /* the user's name, as written */
    }
}

size_t ava_logparse_line(struct ava_logparse *lp, const char *line, size_t len,
                         struct ava_point *out, size_t cap) {
    struct logp_sink o = {
        .pts = out, .n = 0, .cap = cap, .any = lp->any_builtin, .last_step = lp->last_step};
    lp->lines++;
    size_t start = 0;
    while (start <= len) {
        const char *cr = memchr(line + start, '\r', len - start);
        size_t end = cr ? (size_t)(cr - line) : len;
        clean_segment(lp, line + start, end - start);
        if (lp->seg[0]) {
            if (lp->builtin >= 0) {
                builtins[lp->builtin].segment(&lp->st, lp->seg, &o);
                lp->any_builtin = o.any;
                lp->last_step = o.last_step;
            }
            apply_rules(lp, &o);
        }
        start = end + 1;
    }
    return o.n;
}
