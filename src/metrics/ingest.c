/* ingest.c: a run's metrics file into the store, batch by batch with its offset (see
 * ingest.h). */
#include "ingest.h"

#include "lineproto.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define METRICS_FILE "metrics"

/* Reads up to max bytes of path from offset into *buf (malloc'd); *len gets the count. */
static int read_from(const char *path, int64_t offset, size_t max, char **buf, size_t *len,
                     char *err) {
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : ava_err(err, AVA_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= offset) {
        close(fd);
        return 0;
    }
    size_t want = (size_t)(st.st_size - offset) < max ? (size_t)(st.st_size - offset) : max;
    char *b = ava_xmalloc(want);
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, b + got, want - got, offset + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *buf = b;
    *len = got;
    return 0;
}

int ava_metrics_ingest_run(struct ava_store *st, int64_t run_id, const char *run_dir,
                           int64_t *points, int64_t *bad, int *more, char *err) {
    char path[AVA_PATH_MAX], *buf;
    int64_t offset, stored = 0, skipped = 0;
    size_t len;
    int r = ava_path_join(path, sizeof path, err, run_dir, METRICS_FILE, NULL);
    if (r == 0)
        r = ava_store_metrics_offset(st, run_id, &offset, err);
    if (r == 0)
        r = read_from(path, offset, AVA_INGEST_MAX_BYTES, &buf, &len, err);
    if (r < 0)
        return r;
    struct ava_point *batch = ava_xmalloc(AVA_INGEST_BATCH * sizeof *batch);
    size_t nb = 0, pos = 0, done = 0; /* done: bytes up to the end of the last line taken */
    while (r == 0 && pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            break; /* a partial line: the next call will see its end */
        size_t n = (size_t)(nl - (buf + pos));
        int pr = ava_lp_line_point(buf + pos, n, &batch[nb], NULL);
        if (pr == 0)
            nb++;
        else if (pr != AVA_ENOTFOUND)
            skipped++;
        pos += n + 1;
        done = pos;
        if (nb == AVA_INGEST_BATCH) {
            r = ava_store_metrics_ingest(st, run_id, batch, nb, offset + (int64_t)done, err);
            stored += (int64_t)nb;
            nb = 0;
        }
    }
    if (r == 0 && done > 0 && (nb > 0 || stored == 0 || skipped))
        r = ava_store_metrics_ingest(st, run_id, batch, nb, offset + (int64_t)done, err);
    stored += r == 0 ? (int64_t)nb : 0;
    if (points)
        *points = stored;
    if (bad)
        *bad = skipped;
    if (more)
        *more = len == AVA_INGEST_MAX_BYTES;
    free(batch);
    free(buf);
    return r;
}
