/* ava_internal.h: libava's private interface: the line formatter (fmt.c) and the hooks the
 * unit tests use. Nothing here is installed or exported from the shared library. */
#ifndef AVA_SDK_INTERNAL_H
#define AVA_SDK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define AVA__HIDDEN __attribute__((visibility("hidden")))

/* Longest line the formatter writes, '\n' included: name 64 + ",phase=" 7 + 16 + ",epoch=" 7
 * + 19 + " value=" 7 + 24 + ",step=" 6 + 19 + "i " 2 + 19 + "\n" 1 = 191. */
#define AVA__LINE_MAX 192
/* Longest text ava__fmt_double writes ("-2.2250738585072014e-308"), no NUL. */
#define AVA__DOUBLE_MAX 24

/* Longest prefix ava__fmt_prefix writes: name 64 + ",phase=" 7 + 16 + ",epoch=" 7 + 19 +
 * " value=" 7 = 120. */
#define AVA__PREFIX_MAX 120

/* Writes v (finite) in the shortest decimal form that strtod reads back to exactly v (the closest
 * to v of those, ties to even; Schubfach), printf %g-style: plain notation for exponents -4..16,
 * else d.ddde±XX. Returns the length; out needs AVA__DOUBLE_MAX bytes; no NUL is written. */
AVA__HIDDEN size_t ava__fmt_double(char *out, double v);

/* Writes v >= 0 in decimal into out, which needs 20 bytes: it may write up to 7 bytes beyond
 * the digits (fixed-size copies cost less than exact ones). Returns the length; no NUL. */
AVA__HIDDEN size_t ava__fmt_u64(char *out, uint64_t v);

/* The digits of the last whole second a thread formatted a timestamp in (they change once a
 * second). sec = -1: none yet. */
struct ava__ts_cache {
    int64_t sec;
    uint8_t len;
    char digits[24]; /* 20 for ava__fmt_u64, read 16 at a time */
};

/* Writes the start of a line, up to the value: name[,phase=P][,epoch=E] " value=" (arguments
 * as for ava__fmt_line). Returns the length, at most AVA__PREFIX_MAX. */
AVA__HIDDEN size_t ava__fmt_prefix(char *out, const char *name, size_t name_len, const char *phase,
                                   size_t phase_len, int64_t epoch);

/* Writes the rest of a line after the prefix: V,step=Si TS and '\n' (at most AVA__LINE_MAX -
 * AVA__PREFIX_MAX bytes). tc: NULL, or the caller's cache of the timestamp's seconds. */
AVA__HIDDEN size_t ava__fmt_tail(char *out, double value, int64_t step, int64_t ts_ns,
                                 struct ava__ts_cache *tc);

/* Writes one line protocol line, '\n' included, into out (AVA__LINE_MAX bytes):
 * name[,phase=P][,epoch=E] value=V,step=Si TS. The arguments must already be valid: name of
 * 1..64 bytes of [A-Za-z0-9._/-], phase of 0..16 bytes (0 = none), epoch < 0 = none, value
 * finite, step >= 0, ts_ns >= 0. Returns the length. */
AVA__HIDDEN size_t ava__fmt_line(char *out, const char *name, size_t name_len, const char *phase,
                                 size_t phase_len, int64_t epoch, double value, int64_t step,
                                 int64_t ts_ns);

/* Forgets everything the SDK learned (AVA_METRICS_FD, the warning, buffered lines, drop
 * counts), so the next call reads the environment again. The flusher thread, when started,
 * stays and idles. For tests only; not safe while other threads report. */
AVA__HIDDEN void ava__reset_for_tests(void);

/* Whether the background flusher thread has been started (see ava.c). For tests. */
AVA__HIDDEN int ava__flusher_started(void);

/* Whether the flusher thread is parked (waits for a signal) rather than awake. For tests. */
AVA__HIDDEN int ava__flusher_parked(void);

#endif
