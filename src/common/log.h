/* log.h: timestamped diagnostic lines on stderr, for the programs' mains (avad, ava-shim).
 * Library modules do not log; they return errors. */
#ifndef AVA_COMMON_LOG_H
#define AVA_COMMON_LOG_H

enum ava_log_level { AVA_LOG_DEBUG, AVA_LOG_INFO, AVA_LOG_WARN, AVA_LOG_ERROR };

/* Lines below this level are dropped (default INFO). */
void ava_log_set_level(enum ava_log_level lvl);
/* Prefix for each line (program name). */
void ava_log_set_prefix(const char *prefix);
void ava_log(enum ava_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ava_log_info(...) ava_log(AVA_LOG_INFO, __VA_ARGS__)
#define ava_log_warn(...) ava_log(AVA_LOG_WARN, __VA_ARGS__)
#define ava_log_error(...) ava_log(AVA_LOG_ERROR, __VA_ARGS__)
#define ava_log_debug(...) ava_log(AVA_LOG_DEBUG, __VA_ARGS__)

#endif
