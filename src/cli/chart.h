/* chart.h: terminal x/y charts of metric series, drawn with Unicode braille dots (2x4 dots a
 * character cell) or, where the terminal is not UTF-8 or several series must be told apart
 * without colours, with ASCII markers ('*', '+', 'o', 'x', ...).
 *
 * A chart is `height` plot rows with y labels (max, mid, min) on the left, an x axis and a line
 * with the first and last x (step); several series add a legend line. Consecutive points of a
 * series are joined by straight lines; points that are not finite are skipped. Everything but
 * cli_chart_style_from_env is pure. */
#ifndef AVA_CLI_CHART_H
#define AVA_CLI_CHART_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_CHART_WIDTH 72 /* the width when neither $COLUMNS nor the terminal tells */
#define CLI_CHART_HEIGHT 12
#define CLI_CHART_MIN_WIDTH 16
#define CLI_CHART_MAX_WIDTH 400
#define CLI_CHART_MIN_HEIGHT 3
#define CLI_CHART_MAX_HEIGHT 100
#define CLI_CHART_MARKERS 8 /* distinct ASCII markers / colours before they repeat */

/* One series: n points (x[i], y[i]) in x order, and its name for the legend. */
struct cli_chart_series {
    const char *label;
    const double *x;
    const double *y;
    size_t n;
};

/* How to draw. */
struct cli_chart_style {
    int width;  /* total columns, y labels included (clamped to the MIN/MAX above) */
    int height; /* plot rows (clamped to the MIN/MAX above) */
    bool utf8;  /* braille dots and box-drawing axes; else ASCII only */
    bool color; /* ANSI colours tell several series apart (braille stays usable) */
};

/* Renders ns series into a malloc'd string (lines end with '\n', no trailing blanks) owned
 * by the caller. A single series (or several with colours) is drawn in braille when utf8 is
 * set, else with the markers '*', '+', 'o', 'x', '#', '@', '%', '&' (one per series). No
 * finite point at all gives "(no points)\n". A constant series is drawn on the middle row,
 * the y range widened around it by 10% of its value (1 for 0). */
char *cli_chart_render(const struct cli_chart_series *s, size_t ns,
                       const struct cli_chart_style *st);

/* Formats v with at most digits significant digits ("%.*g", "-0" written "0"). */
void cli_chart_number(double v, int digits, char *out, size_t outlen);

/* The chart width: $COLUMNS (columns, when a positive number), else the terminal's width
 * (tty_cols > 0), else CLI_CHART_WIDTH; clamped to CLI_CHART_MIN/MAX_WIDTH. */
int cli_chart_width(const char *columns, int tty_cols);

/* True when the locale's character set is UTF-8: the first non-empty of LC_ALL, LC_CTYPE and
 * LANG (any may be NULL) mentions "UTF-8" or "utf8" (any case). */
bool cli_chart_utf8(const char *lc_all, const char *lc_ctype, const char *lang);

/* Fills st for stdout from the environment: width (cli_chart_width with the width of the
 * terminal on stdout or stderr), CLI_CHART_HEIGHT, utf8 from the locale variables, color when
 * stdout is a terminal and NO_COLOR is unset or empty. */
void cli_chart_style_from_env(struct cli_chart_style *st);

#endif
