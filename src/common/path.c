/* path.c: safe path joins, mkdir -p and rm -rf. */
#include "path.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool ava_path_component_ok(const char *c) {
    return c && c[0] && !strchr(c, '/') && strcmp(c, ".") != 0 && strcmp(c, "..") != 0;
}

int ava_path_join(char *out, size_t outlen, char *err, const char *base, ...) {
    size_t used = strlen(base);
    if (used >= outlen)
        return ava_err(err, AVA_ETOOLARGE, "path too long");
    memmove(out, base, used + 1);
    va_list ap;
    va_start(ap, base);
    for (const char *c = va_arg(ap, const char *); c; c = va_arg(ap, const char *)) {
        if (!ava_path_component_ok(c)) {
            va_end(ap);
            return ava_err(err, AVA_EINVALID, "'%s' is not allowed as a path component", c);
        }
        size_t n = strlen(c);
        bool slash = used > 0 && out[used - 1] != '/';
        if (used + slash + n >= outlen) {
            va_end(ap);
            return ava_err(err, AVA_ETOOLARGE, "path too long");
        }
        if (slash)
            out[used++] = '/';
        memcpy(out + used, c, n + 1);
        used += n;
    }
    va_end(ap);
    return 0;
}

int ava_mkdir_p(const char *dir, unsigned mode, char *err) {
    char tmp[AVA_PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp)
        return ava_err(err, AVA_EINVALID, "bad directory path '%s'", dir);
    /* the common case, parents that exist, costs one system call */
    if (mkdir(dir, mode) == 0)
        return 0;
    if (errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
    }
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return ava_err(err, AVA_EIO, "cannot create directory %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return ava_err(err, AVA_EIO, "cannot create directory %s: %s", tmp, strerror(errno));
    struct stat st;
    if (stat(tmp, &st) < 0 || !S_ISDIR(st.st_mode))
        return ava_err(err, AVA_EIO, "%s exists and is not a directory", tmp);
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    int r = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    return r < 0 && errno != ENOENT ? -1 : 0;
}

int ava_rm_rf(const char *path, char *err) {
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : ava_err(err, AVA_EIO, "%s: %s", path, strerror(errno));
    if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
        return ava_err(err, AVA_EIO, "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

int ava_exe_dir(char *out, size_t outlen) {
    ssize_t n = readlink("/proc/self/exe", out, outlen - 1);
    if (n <= 0)
        return AVA_EIO;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return AVA_EIO;
    *slash = '\0';
    return 0;
}
