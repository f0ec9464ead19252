/* file.c: whole-file reads, appends and atomic replaces. */
#include "file.h"

#include "buf.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes all of buf to fd, retrying on EINTR and short writes. */
static int write_full(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ava_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                          char *err) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return ava_err(err, AVA_EINVALID, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return ava_err(err, AVA_EIO, "cannot create %s: %s", tmp, strerror(errno));
    if (write_full(fd, data, len) < 0 || fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return ava_err(err, AVA_EIO, "cannot write %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return ava_err(err, AVA_EIO, "cannot rename %s: %s", tmp, strerror(e));
    }
    /* make the rename itself durable */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        int dfd = open(slash == dir ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

int ava_file_read_all(const char *path, size_t max, char **out, size_t *len, char *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ava_err(err, errno == ENOENT ? AVA_ENOTFOUND : AVA_EIO, "cannot open %s: %s", path,
                       strerror(errno));
    struct ava_buf b = {0};
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            ava_buf_free(&b);
            return ava_err(err, AVA_EIO, "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        if (b.len + (size_t)n > max) {
            close(fd);
            ava_buf_free(&b);
            return ava_err(err, AVA_ETOOLARGE, "%s is larger than %zu bytes", path, max);
        }
        ava_buf_append(&b, chunk, (size_t)n);
    }
    close(fd);
    if (len)
        *len = b.len;
    *out = ava_buf_steal(&b);
    return 0;
}

int ava_file_append_line(const char *path, const char *line, char *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return ava_err(err, AVA_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t n = strlen(line);
    char *tmp = ava_xmalloc(n + 1);
    memcpy(tmp, line, n);
    tmp[n] = '\n';
    int r = write_full(fd, tmp, n + 1);
    int e = errno;
    free(tmp);
    close(fd);
    return r < 0 ? ava_err(err, AVA_EIO, "cannot append to %s: %s", path, strerror(e)) : 0;
}

int ava_file_close_synced(FILE *f, const char *path, int rc, char *err) {
    if (!f)
        return rc;
    int e = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        e = errno;
    if (fclose(f) != 0 && e == 0)
        e = errno;
    if (e && rc == 0)
        rc = ava_err(err, AVA_EIO, "cannot write %s: %s", path, strerror(e));
    return rc;
}

int64_t ava_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) < 0 ? -1 : (int64_t)st.st_size;
}
