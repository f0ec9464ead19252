/* timeutil.h: clocks and timestamp formatting. Wall times are Unix milliseconds (UTC). */
#ifndef AVA_COMMON_TIMEUTIL_H
#define AVA_COMMON_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock time in Unix milliseconds. */
int64_t ava_now_ms(void);
/* Monotonic time in milliseconds (for deadlines and intervals). */
int64_t ava_mono_ms(void);
/* Formats Unix milliseconds as RFC 3339 UTC with milliseconds ("2026-11-26T04:30:00.123Z").
 * out needs 25 bytes; 0 or negative ms gives "". */
void ava_format_time(int64_t ms, char *out, size_t outlen);

#endif
