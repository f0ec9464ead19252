/* ini.h: a strict INI reader for avad's --config file.
 *
 * Syntax: `[section]` lines, `key = value` lines, comments starting with ';' or '#', blank
 * lines. Values are trimmed; no quoting or continuation. Keys before any section have
 * section "". Lines are bounded (AVA_INI_LINE_MAX bytes). */
#ifndef AVA_COMMON_INI_H
#define AVA_COMMON_INI_H

#include <stddef.h>

#define AVA_INI_LINE_MAX 1024

/* Called once per key. Returns 0 to go on, or a negative code (and fills err) to stop. */
typedef int (*ava_ini_cb)(void *ctx, const char *section, const char *key, const char *value,
                          char *err);

/* Parses text (len bytes). Errors name the line number. Returns 0, AVA_EINVALID for a
 * malformed line, or the callback's code. */
int ava_ini_parse(const char *text, size_t len, ava_ini_cb cb, void *ctx, char *err);

#endif
