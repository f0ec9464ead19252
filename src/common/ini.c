/* ini.c: line-by-line INI parsing with line numbers in every error. */
#include "ini.h"

#include "err.h"

#include <ctype.h>
#include <string.h>

/* Trims spaces at both ends in place and returns the start. */
static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int ava_ini_parse(const char *text, size_t len, ava_ini_cb cb, void *ctx, char *err) {
    char section[AVA_INI_LINE_MAX] = "";
    char line[AVA_INI_LINE_MAX];
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (n >= sizeof line)
            return ava_err(err, AVA_EINVALID, "line %d: longer than %d bytes", lineno,
                           AVA_INI_LINE_MAX - 1);
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + (nl ? 1 : 0);
        if (memchr(line, '\0', n))
            return ava_err(err, AVA_EINVALID, "line %d: contains a NUL byte", lineno);
        char *s = trim(line);
        if (!*s || *s == ';' || *s == '#')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1] != '\0')
                return ava_err(err, AVA_EINVALID, "line %d: a section must look like [name]",
                               lineno);
            *close = '\0';
            char *name = trim(s + 1);
            if (!*name)
                return ava_err(err, AVA_EINVALID, "line %d: empty section name", lineno);
            strcpy(section, name);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq)
            return ava_err(err, AVA_EINVALID, "line %d: expected 'key = value', got '%s'", lineno,
                           s);
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (!*key)
            return ava_err(err, AVA_EINVALID, "line %d: missing key before '='", lineno);
        char cberr[AVA_ERRLEN] = "";
        int r = cb(ctx, section, key, value, cberr);
        if (r < 0)
            return ava_err(err, r, "line %d: %s", lineno, cberr);
    }
    return 0;
}
