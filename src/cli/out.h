/* out.h: the small formatting helpers of the CLI's output: JSON, times, sizes, resources. */
#ifndef AVA_CLI_OUT_H
#define AVA_CLI_OUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Prints v to f pretty-printed (2-space indent) with a final newline. */
void cli_print_json(FILE *f, const json_t *v);

/* Parses an RFC 3339 time ("2026-11-26T04:30:00.123Z", or with a +hh:mm offset) into Unix
 * milliseconds. Returns 0, or -1 when s is NULL or not such a time. */
int cli_time_parse(const char *s, int64_t *ms);

/* Writes an RFC 3339 time as local time, "2026-11-26 04:30:01"; "-" for NULL, and the text
 * unchanged when it cannot be parsed. */
void cli_format_local_time(const char *rfc3339, char *out, size_t outlen);

/* Writes a run's length from two RFC 3339 times (end NULL: until now) as "1m5s"; whole
 * seconds once past one second. "-" when start is NULL. */
void cli_format_span(const char *start, const char *end, char *out, size_t outlen);

/* Writes resources as "2 GPUs, 8G" / "1 CPU" from the counts (mem 0: not shown). */
void cli_format_resources(int64_t gpus, int64_t cpus, int64_t mem_bytes, char *out, size_t outlen);

/* The string member key of obj, or NULL (missing, null, or not a string). */
const char *cli_jstr(const json_t *obj, const char *key);

/* The integer member key of obj, or def (missing or not an integer). */
int64_t cli_jint(const json_t *obj, const char *key, int64_t def);

/* The boolean member key of obj, or false. */
bool cli_jbool(const json_t *obj, const char *key);

/* Joins a JSON array of integers as "0,1" into out; "-" when empty or not an array. */
void cli_format_int_list(const json_t *arr, char *out, size_t outlen);

/* Returns a malloc'd display string of a command line: entry then args, each word quoted
 * for a POSIX shell when needed ("/bin/sh -c 'echo hi'"). entry may be NULL. */
char *cli_format_command(const char *entry, const json_t *args);

/* Prints one "label:  value" line of a `show` verb, the value aligned at column 15; NULL or
 * empty values show as "-". */
void cli_print_kv(const char *label, const char *value);

#endif
