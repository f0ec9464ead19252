/* err.c: error message formatting and the code tables of err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int ava_err(char *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, AVA_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *ava_err_code_str(int code) {
    switch (code) {
#define AVA_X(name, val, str, http)                                                                \
    case val:                                                                                      \
        return str;
        AVA_ERRORS(AVA_X)
#undef AVA_X
    }
    return "internal";
}

int ava_err_http_status(int code) {
    switch (code) {
#define AVA_X(name, val, str, http)                                                                \
    case val:                                                                                      \
        return http;
        AVA_ERRORS(AVA_X)
#undef AVA_X
    }
    return 500;
}
