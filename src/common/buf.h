/* buf.h: a growable byte buffer that always keeps a NUL after its contents.
 *
 * Lifecycle: struct ava_buf b = {0}; ... ava_buf_free(&b). Allocation failure aborts
 * (the daemon cannot do anything useful without memory). */
#ifndef AVA_COMMON_BUF_H
#define AVA_COMMON_BUF_H

#include <stddef.h>

struct ava_buf {
    char *data; /* NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
};

/* Appends n bytes. */
void ava_buf_append(struct ava_buf *b, const void *p, size_t n);
/* Appends a NUL-terminated string. */
void ava_buf_puts(struct ava_buf *b, const char *s);
/* Appends printf-formatted text. */
void ava_buf_printf(struct ava_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties the buffer, keeping its memory. */
void ava_buf_reset(struct ava_buf *b);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void ava_buf_free(struct ava_buf *b);
/* Returns the contents as a malloc'd string owned by the caller and empties b. */
char *ava_buf_steal(struct ava_buf *b);

/* malloc/calloc/strdup that abort on failure. */
void *ava_xmalloc(size_t n);
void *ava_xcalloc(size_t n, size_t size);
void *ava_xrealloc(void *p, size_t n);
char *ava_xstrdup(const char *s);
char *ava_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
