/* log.c: one formatted line per call, written with a single write(2) so lines from
 * several processes sharing a file do not interleave. */
#include "log.h"

#include "timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum ava_log_level min_level = AVA_LOG_INFO;
static const char *prefix = "ava";

void ava_log_set_level(enum ava_log_level lvl) {
    min_level = lvl;
}

void ava_log_set_prefix(const char *p) {
    prefix = p;
}

void ava_log(enum ava_log_level lvl, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (lvl < min_level)
        return;
    char line[2048], ts[32];
    ava_format_time(ava_now_ms(), ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s %s[%d] %s: ", ts, prefix, (int)getpid(), names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
