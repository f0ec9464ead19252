/* err.h: the error convention shared by every module: a negative code plus a message.
 *
 * Functions that can fail return int (0 ok, a negative AVA_E* code on failure) and, when
 * given a non-NULL `char *err` of AVA_ERRLEN bytes, fill it with one line a user can act on.
 * The codes are written once here (X-macro) with their API string and HTTP status. */
#ifndef AVA_COMMON_ERR_H
#define AVA_COMMON_ERR_H

#include <stddef.h>

#define AVA_ERRLEN 512

/* X(enum suffix, value, API code string, HTTP status) */
#define AVA_ERRORS(X)                                                                              \
    X(OK, 0, "ok", 200)                                                                            \
    X(INVALID, -1, "invalid_argument", 400)                                                        \
    X(NOTFOUND, -2, "not_found", 404)                                                              \
    X(EXISTS, -3, "already_exists", 409)                                                           \
    X(CONFLICT, -4, "conflict", 409)                                                               \
    X(UNAUTHORIZED, -5, "unauthorized", 401)                                                       \
    X(FORBIDDEN, -6, "forbidden", 403)                                                             \
    X(NOFIT, -7, "cannot_fit", 422)                                                                \
    X(TOOLARGE, -8, "too_large", 413)                                                              \
    X(IO, -9, "io_error", 500)                                                                     \
    X(INTERNAL, -10, "internal", 500)                                                              \
    X(UNAVAILABLE, -11, "unavailable", 503)                                                        \
    X(METHOD, -12, "method_not_allowed", 405)

enum ava_error {
#define AVA_X(name, val, str, http) AVA_E##name = val,
    AVA_ERRORS(AVA_X)
#undef AVA_X
};

/* Formats the message into err (when non-NULL, AVA_ERRLEN bytes) and returns code. */
int ava_err(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The API code string ("not_found") of an AVA_E* code; "internal" for unknown codes. */
const char *ava_err_code_str(int code);

/* The HTTP status that answers an AVA_E* code; 500 for unknown codes. */
int ava_err_http_status(int code);

#endif
