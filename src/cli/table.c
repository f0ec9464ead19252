/* table.c: column-aligned text tables for the CLI's human output (see table.h). */
#include "table.h"

#include "../common/buf.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct cli_table {
    int ncols;
    char **cells; /* row-major; the first ncols are the header */
    size_t ncells;
    size_t cap;
};

/* Display width of a UTF-8 string: the count of bytes that start a character. */
static size_t text_width(const char *s) {
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            w++;
    return w;
}

/* Stores one cell, replacing NULL/empty with "-" and control characters (a newline in a
 * description would break the rows) with spaces. */
static void push_cell(struct cli_table *t, const char *cell) {
    if (t->ncells == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->cells = ava_xrealloc(t->cells, t->cap * sizeof *t->cells);
    }
    char *c = ava_xstrdup(cell && *cell ? cell : "-");
    for (char *p = c; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = ' ';
    t->cells[t->ncells++] = c;
}

struct cli_table *cli_table_new(int ncols, const char *const *headers) {
    struct cli_table *t = ava_xcalloc(1, sizeof *t);
    t->ncols = ncols > 0 ? ncols : 1;
    for (int i = 0; i < t->ncols; i++)
        push_cell(t, headers ? headers[i] : NULL);
    return t;
}

void cli_table_add(struct cli_table *t, const char *cell) {
    push_cell(t, cell);
}

void cli_table_addf(struct cli_table *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    push_cell(t, s);
    free(s);
}

int cli_table_rows(const struct cli_table *t) {
    return (int)(t->ncells / (size_t)t->ncols) - 1;
}

char *cli_table_render(const struct cli_table *t) {
    size_t *width = ava_xcalloc((size_t)t->ncols, sizeof *width);
    size_t nrows = t->ncells / (size_t)t->ncols; /* an incomplete last row is not shown */
    for (size_t i = 0; i < nrows * (size_t)t->ncols; i++) {
        size_t w = text_width(t->cells[i]);
        if (w > width[i % (size_t)t->ncols])
            width[i % (size_t)t->ncols] = w;
    }
    struct ava_buf b = {0};
    for (size_t r = 0; r < nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * (size_t)t->ncols + (size_t)c];
            ava_buf_puts(&b, cell);
            if (c == t->ncols - 1)
                break;
            for (size_t pad = text_width(cell); pad < width[c] + 2; pad++)
                ava_buf_puts(&b, " ");
        }
        ava_buf_puts(&b, "\n");
    }
    free(width);
    return ava_buf_steal(&b);
}

void cli_table_print(const struct cli_table *t, FILE *f) {
    char *s = cli_table_render(t);
    fputs(s, f);
    free(s);
}

void cli_table_free(struct cli_table *t) {
    if (!t)
        return;
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}
