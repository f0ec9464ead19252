/* table.h: column-aligned text tables for the CLI's human output.
 *
 * Cells are added left to right, row after row; a NULL or empty cell shows as "-". Columns
 * are separated by two spaces and padded to the widest cell (counted in UTF-8 characters);
 * the last column is not padded, so lines carry no trailing blanks. */
#ifndef AVA_CLI_TABLE_H
#define AVA_CLI_TABLE_H

#include <stdio.h>

struct cli_table;

/* Creates a table whose header row is the ncols given strings. Free with cli_table_free(). */
struct cli_table *cli_table_new(int ncols, const char *const *headers);

/* Appends one cell (copied). */
void cli_table_add(struct cli_table *t, const char *cell);

/* Appends one printf-formatted cell. */
void cli_table_addf(struct cli_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Number of complete data rows (the header not counted). */
int cli_table_rows(const struct cli_table *t);

/* Renders the table into a malloc'd string owned by the caller (lines end with '\n'). */
char *cli_table_render(const struct cli_table *t);

/* Renders the table to f. */
void cli_table_print(const struct cli_table *t, FILE *f);

/* Frees the table; NULL is a no-op. */
void cli_table_free(struct cli_table *t);

#endif
