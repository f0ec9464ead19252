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

/* Writes v (finite) in the shortest-or-nearly decimal form that strtod reads back to exactly v
 * (Grisu2), printf %g-style: plain notation for exponents -4..16, else d.ddde±XX. Returns the
 * length; out needs AVA__DOUBLE_MAX bytes; no NUL is written. */
AVA__HIDDEN size_t ava__fmt_double(char *out, double v);

/* Writes v >= 0 in decimal into out (20 bytes suffice). Returns the length; no NUL. */
AVA__HIDDEN size_t ava__fmt_u64(char *out, uint64_t v);

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

#endif
