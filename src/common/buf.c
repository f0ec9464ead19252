/* buf.c: growable buffers and allocation helpers that abort on out-of-memory. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void) {
    fputs("ava: out of memory\n", stderr);
    abort();
}

void *ava_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *ava_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *ava_xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *ava_xstrdup(const char *s) {
    char *p = strdup(s ? s : "");
    if (!p)
        oom();
    return p;
}

char *ava_xasprintf(const char *fmt, ...) {
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom();
    return s;
}

static void buf_reserve(struct ava_buf *b, size_t extra) {
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = ava_xrealloc(b->data, cap);
    b->cap = cap;
}

void ava_buf_append(struct ava_buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ava_buf_puts(struct ava_buf *b, const char *s) {
    ava_buf_append(b, s, strlen(s));
}

void ava_buf_printf(struct ava_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        ava_buf_append(b, tmp, (size_t)n);
        return;
    }
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ava_buf_reset(struct ava_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ava_buf_free(struct ava_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *ava_buf_steal(struct ava_buf *b) {
    char *s = b->data ? b->data : ava_xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}
