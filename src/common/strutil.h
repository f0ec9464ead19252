/* strutil.h: validation and parsing of the small strings users type: names, durations,
 * sizes, index lists. Every parser rejects trailing garbage and overflow. */
#ifndef AVA_COMMON_STRUTIL_H
#define AVA_COMMON_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AVA_NAME_MAX 64

/* True when s matches [A-Za-z0-9][A-Za-z0-9._-]{0,63} (and so is never "." or ".."). */
bool ava_name_valid(const char *s);

/* Parses a duration: a non-negative integer with an optional unit s, m, h or d (no unit =
 * seconds); several parts may be joined ("1h30m"). Fills *out_ms. Returns 0 or AVA_EINVAL
 * with a message naming the text. */
int ava_parse_duration(const char *s, int64_t *out_ms, char *err);

/* Formats milliseconds exactly, largest unit first, hours at most ("72h", "1m30s", "1s500ms"). */
void ava_format_duration(int64_t ms, char *out, size_t outlen);

/* Parses a size: an integer with an optional unit K, M, G, T (powers of 1024, optional
 * trailing "i"/"iB"/"B"), no unit = bytes. Fills *out_bytes. */
int ava_parse_size(const char *s, int64_t *out_bytes, char *err);

/* Formats bytes with a binary unit ("512M", "1.5G" rounded to one decimal, "100" bytes). */
void ava_format_size(int64_t bytes, char *out, size_t outlen);

/* Parses a non-negative decimal integer no larger than max. */
int ava_parse_uint(const char *s, int64_t max, int64_t *out, char *err);

/* Parses a comma-separated list of distinct small non-negative integers ("0,1,3") into
 * out (capacity cap). Fills *n. */
int ava_parse_index_list(const char *s, int *out, int cap, int *n, char *err);

/* Formats a double in the shortest of %.15g / %.17g that reads back exactly ("0.8", not
 * "0.80000000000000004"); out needs 32 bytes. */
void ava_format_double(double v, char *out, size_t outlen);

/* True when s starts with prefix. */
bool ava_startswith(const char *s, const char *prefix);

#endif
