/* chart.c: terminal x/y charts of metric series in braille dots or ASCII markers (chart.h). */
#include "chart.h"

#include "../common/buf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The widest y label; longer numbers lose significant digits until they fit. */
#define LABEL_MAX 8
/* The significant digits of the y labels (at most) and of the x labels. */
#define Y_DIGITS 4
#define X_DIGITS 15

static const char markers[CLI_CHART_MARKERS] = {'*', '+', 'o', 'x', '#', '@', '%', '&'};
/* ANSI foreground colours: cyan, yellow, magenta, green, blue, red, bright cyan, bright yellow. */
static const int colors[CLI_CHART_MARKERS] = {36, 33, 35, 32, 34, 31, 96, 93};
/* The bit of each dot of a braille cell, by dot column and dot row (the character is U+2800
 * plus the bits of its dots). */
static const unsigned char braille_bit[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};

/* The drawing surface: w x h cells of sx x sy dots. */
struct canvas {
    int w, h, sx, sy;
    bool braille;
    unsigned char *bits; /* the braille dots set in each cell */
    int *who;            /* the series drawn last in each cell, -1 for none */
};

/* The ranges drawn: x from x0 to x1, y from y0 (bottom) to y1 (top). */
struct bounds {
    double x0, x1, y0, y1;
};

/* The y labels and the rows they sit on. */
struct labels {
    char top[32], mid[32], bot[32];
    int mid_row, width;
};

void cli_chart_number(double v, int digits, char *out, size_t outlen) {
    snprintf(out, outlen, "%.*g", digits, v);
    if (strcmp(out, "-0") == 0)
        snprintf(out, outlen, "0");
}

int cli_chart_width(const char *columns, int tty_cols) {
    char *end;
    long w = columns && *columns ? strtol(columns, &end, 10) : 0;
    if (w <= 0 || *end != '\0')
        w = tty_cols > 0 ? tty_cols : CLI_CHART_WIDTH;
    return w < CLI_CHART_MIN_WIDTH   ? CLI_CHART_MIN_WIDTH
           : w > CLI_CHART_MAX_WIDTH ? CLI_CHART_MAX_WIDTH
                                     : (int)w;
}

bool cli_chart_utf8(const char *lc_all, const char *lc_ctype, const char *lang) {
    const char *v = lc_all && *lc_all ? lc_all : lc_ctype && *lc_ctype ? lc_ctype : lang;
    return v && (strcasestr(v, "utf-8") || strcasestr(v, "utf8"));
}

void cli_chart_style_from_env(struct cli_chart_style *st) {
    struct winsize ws;
    int cols = 0;
    if ((isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) ||
        (isatty(STDERR_FILENO) && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0))
        cols = ws.ws_col;
    const char *no_color = getenv("NO_COLOR");
    st->width = cli_chart_width(getenv("COLUMNS"), cols);
    st->height = CLI_CHART_HEIGHT;
    st->utf8 = cli_chart_utf8(getenv("LC_ALL"), getenv("LC_CTYPE"), getenv("LANG"));
    st->color = isatty(STDOUT_FILENO) && !(no_color && *no_color);
}

/* Rounds half away from zero (no libm needed). */
static long rnd(double v) {
    return v >= 0 ? (long)(v + 0.5) : -(long)(0.5 - v);
}

/* Where v lies between lo and hi, from 0 to 1; halving first keeps huge ranges finite, and
 * anything that is still not a number counts as 0. */
static double frac(double v, double lo, double hi) {
    double f = (v / 2 - lo / 2) / (hi / 2 - lo / 2);
    return isnan(f) || f < 0 ? 0 : f > 1 ? 1 : f;
}

/* Finds the ranges of the finite points; returns how many there are. A flat y range is
 * widened around its value so that the series sits on the middle row. */
static size_t find_bounds(const struct cli_chart_series *s, size_t ns, struct bounds *b) {
    size_t count = 0;
    for (size_t i = 0; i < ns; i++)
        for (size_t k = 0; k < s[i].n; k++) {
            double x = s[i].x[k], y = s[i].y[k];
            if (!isfinite(x) || !isfinite(y))
                continue;
            if (count++ == 0) {
                *b = (struct bounds){x, x, y, y};
                continue;
            }
            b->x0 = x < b->x0 ? x : b->x0;
            b->x1 = x > b->x1 ? x : b->x1;
            b->y0 = y < b->y0 ? y : b->y0;
            b->y1 = y > b->y1 ? y : b->y1;
        }
    if (count && b->y0 == b->y1) {
        double d = (b->y0 < 0 ? -b->y0 : b->y0) / 10;
        if (d == 0 || !isfinite(d))
            d = 1;
        b->y0 -= d;
        b->y1 += d;
    }
    return count;
}

/* Formats a y label with as many significant digits (up to Y_DIGITS) as fit LABEL_MAX. */
static void y_label(double v, char *out, size_t outlen) {
    for (int d = Y_DIGITS; d >= 1; d--) {
        cli_chart_number(v, d, out, outlen);
        if (strlen(out) <= LABEL_MAX)
            return;
    }
}

/* The labels of the top, middle and bottom rows; the middle one is the mid value, on the row
 * where a point of that value is drawn. */
static void make_labels(const struct bounds *b, int h, int sy, struct labels *l) {
    double mid = b->y0 / 2 + b->y1 / 2;
    y_label(b->y1, l->top, sizeof l->top);
    y_label(mid, l->mid, sizeof l->mid);
    y_label(b->y0, l->bot, sizeof l->bot);
    l->mid_row = (int)(rnd((1 - frac(mid, b->y0, b->y1)) * (h * sy - 1)) / sy);
    size_t w = strlen(l->top);
    w = strlen(l->mid) > w ? strlen(l->mid) : w;
    w = strlen(l->bot) > w ? strlen(l->bot) : w;
    l->width = (int)w;
}

/* Marks the dot (dx, dy) for series s. */
static void plot_dot(struct canvas *c, long dx, long dy, int s) {
    long idx = (dy / c->sy) * c->w + dx / c->sx;
    if (c->braille)
        c->bits[idx] |= braille_bit[dx % 2][dy % 4];
    c->who[idx] = s;
}

/* Draws a straight line of dots from (x0, y0) to (x1, y1) (Bresenham). */
static void plot_line(struct canvas *c, long x0, long y0, long x1, long y1, int s) {
    long dx = x1 > x0 ? x1 - x0 : x0 - x1, dy = y1 > y0 ? y0 - y1 : y1 - y0;
    long stepx = x0 < x1 ? 1 : -1, stepy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        plot_dot(c, x0, y0, s);
        if (x0 == x1 && y0 == y1)
            return;
        long e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += stepx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += stepy;
        }
    }
}

/* Draws every series, each point joined to the previous finite one. */
static void draw(struct canvas *c, const struct bounds *b, const struct cli_chart_series *s,
                 size_t ns) {
    long dw = (long)c->w * c->sx - 1, dh = (long)c->h * c->sy - 1;
    for (size_t i = 0; i < ns; i++) {
        long px = -1, py = -1;
        for (size_t k = 0; k < s[i].n; k++) {
            if (!isfinite(s[i].x[k]) || !isfinite(s[i].y[k]))
                continue;
            long x = b->x1 > b->x0 ? rnd(frac(s[i].x[k], b->x0, b->x1) * dw) : 0;
            long y = rnd((1 - frac(s[i].y[k], b->y0, b->y1)) * dh);
            if (px < 0)
                plot_dot(c, x, y, (int)i);
            else
                plot_line(c, px, py, x, y, (int)i);
            px = x, py = y;
        }
    }
}

/* Appends the symbol of series s (a braille cell's dots, or the series' marker), coloured when
 * colours tell the series apart. */
static void put_symbol(struct ava_buf *out, const struct canvas *c, unsigned bits, int s,
                       bool colored) {
    if (colored)
        ava_buf_printf(out, "\033[%dm", colors[s % CLI_CHART_MARKERS]);
    if (c->braille) {
        unsigned cp = 0x2800 + bits;
        char u[3] = {(char)(0xE0 | (cp >> 12)), (char)(0x80 | ((cp >> 6) & 0x3F)),
                     (char)(0x80 | (cp & 0x3F))};
        ava_buf_append(out, u, 3);
    } else {
        ava_buf_append(out, &markers[s % CLI_CHART_MARKERS], 1);
    }
    if (colored)
        ava_buf_puts(out, "\033[0m");
}

/* Appends the plot rows, each with its y label (or blanks) and the axis. */
static void put_rows(struct ava_buf *out, const struct canvas *c, const struct labels *l, bool utf8,
                     bool colored) {
    for (int r = 0; r < c->h; r++) {
        const char *lab = r == 0            ? l->top
                          : r == c->h - 1   ? l->bot
                          : r == l->mid_row ? l->mid
                                            : NULL;
        ava_buf_printf(out, "%*s%s", l->width, lab ? lab : "", utf8 ? (lab ? " ┤" : " │") : " |");
        int last = c->w - 1;
        while (last >= 0 && c->who[r * c->w + last] < 0)
            last--;
        for (int k = 0; k <= last; k++) {
            int idx = r * c->w + k;
            if (c->who[idx] < 0)
                ava_buf_puts(out, " ");
            else
                put_symbol(out, c, c->bits[idx], c->who[idx], colored);
        }
        ava_buf_puts(out, "\n");
    }
}

/* Appends the x axis and the first and last x under its ends. */
static void put_x_axis(struct ava_buf *out, const struct canvas *c, const struct labels *l,
                       const struct bounds *b, bool utf8) {
    char first[32], last[32];
    ava_buf_printf(out, "%*s%s", l->width, "", utf8 ? " └" : " +");
    for (int k = 0; k < c->w; k++)
        ava_buf_puts(out, utf8 ? "─" : "-");
    cli_chart_number(b->x0, X_DIGITS, first, sizeof first);
    cli_chart_number(b->x1, X_DIGITS, last, sizeof last);
    ava_buf_printf(out, "\n%*s%s", l->width + 2, "", first);
    if (b->x1 > b->x0) {
        int pad = c->w - (int)strlen(first) - (int)strlen(last);
        ava_buf_printf(out, "%*s%s", pad < 1 ? 1 : pad, "", last);
    }
    ava_buf_puts(out, "\n");
}

/* Appends the legend: each series' symbol and label. */
static void put_legend(struct ava_buf *out, const struct canvas *c, const struct labels *l,
                       const struct cli_chart_series *s, size_t ns, bool colored) {
    ava_buf_printf(out, "%*s", l->width + 2, "");
    for (size_t i = 0; i < ns; i++) {
        if (i)
            ava_buf_puts(out, "  ");
        put_symbol(out, c, 0xFF, (int)i, colored);
        ava_buf_printf(out, " %s", s[i].label ? s[i].label : "?");
    }
    ava_buf_puts(out, "\n");
}

char *cli_chart_render(const struct cli_chart_series *s, size_t ns,
                       const struct cli_chart_style *st) {
    struct bounds b = {0};
    struct labels l;
    struct ava_buf out = {0};
    if (find_bounds(s, ns, &b) == 0)
        return ava_xstrdup("(no points)\n");
    int width = st->width < CLI_CHART_MIN_WIDTH   ? CLI_CHART_MIN_WIDTH
                : st->width > CLI_CHART_MAX_WIDTH ? CLI_CHART_MAX_WIDTH
                                                  : st->width;
    int height = st->height < CLI_CHART_MIN_HEIGHT   ? CLI_CHART_MIN_HEIGHT
                 : st->height > CLI_CHART_MAX_HEIGHT ? CLI_CHART_MAX_HEIGHT
                                                     : st->height;
    bool colored = st->color && ns > 1;
    struct canvas c = {.h = height, .braille = st->utf8 && (ns == 1 || colored)};
    c.sx = c.braille ? 2 : 1;
    c.sy = c.braille ? 4 : 1;
    make_labels(&b, c.h, c.sy, &l);
    c.w = width - l.width - 2;
    c.bits = ava_xcalloc((size_t)c.w * (size_t)c.h, 1);
    c.who = ava_xmalloc((size_t)c.w * (size_t)c.h * sizeof *c.who);
    for (int i = 0; i < c.w * c.h; i++)
        c.who[i] = -1;
    draw(&c, &b, s, ns);
    put_rows(&out, &c, &l, st->utf8, colored);
    put_x_axis(&out, &c, &l, &b, st->utf8);
    if (ns > 1)
        put_legend(&out, &c, &l, s, ns, colored);
    free(c.bits);
    free(c.who);
    return ava_buf_steal(&out);
}
