/* recordio.c: MXNet RecordIO .rec/.idx writer (dmlc-core's part splitting) and its reader. */
#include "recordio.h"

#include "bgwrite.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The magic word as it lies on disk; compared through memcpy so host byte order is moot. */
static const uint8_t magic_le[4] = {0x0a, 0x23, 0xd7, 0xce};
#define STDIO_BUF_SIZE (1u << 20) /* the .idx's */
#define REC_BUF_SIZE (1u << 20)   /* each of the .rec's two buffers, written by bgwrite.c */
#define KICK_BYTES (4u << 20)     /* the .rec's writeback is started every 4 MiB */
#define IDX_KICK (512u << 10)     /* ...and the .idx's every 512 KiB */
#define CFLAG_WHOLE 0u
#define CFLAG_FIRST 1u
#define CFLAG_MIDDLE 2u
#define CFLAG_LAST 3u
#define LEN_MASK ((1u << 29) - 1)

static void put_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64le(uint8_t *p, uint64_t v) {
    put_u32le(p, (uint32_t)v);
    put_u32le(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_u64le(const uint8_t *p) {
    return (uint64_t)get_u32le(p) | (uint64_t)get_u32le(p + 4) << 32;
}

void ava_irheader_pack(const struct ava_irheader *h, uint8_t out[AVA_IRHEADER_SIZE]) {
    uint32_t label_bits;
    memcpy(&label_bits, &h->label, 4); /* IEEE-754 single; written LE like the u32s */
    put_u32le(out, h->flag);
    put_u32le(out + 4, label_bits);
    put_u64le(out + 8, h->id);
    put_u64le(out + 16, h->id2);
}

int ava_irheader_unpack(const uint8_t *p, size_t len, struct ava_irheader *h) {
    if (len < AVA_IRHEADER_SIZE)
        return AVA_EINVALID;
    uint32_t label_bits = get_u32le(p + 4);
    h->flag = get_u32le(p);
    memcpy(&h->label, &label_bits, 4);
    h->id = get_u64le(p + 8);
    h->id2 = get_u64le(p + 16);
    return 0;
}

/* ---- writer ---- */

struct ava_recordio_writer {
    int fd; /* the .rec */
    FILE *idx;
    char *rec_path, *idx_path;
    /* The .rec goes out through two buffers of REC_BUF_SIZE: the caller fills buf while io's
     * thread writes spare, so that the kernel's copy into the page cache overlaps the caller's
     * work (see bgwrite.h; without the thread, when it cannot start, the caller writes). */
    uint8_t *buf, *spare;   /* the buffer being filled, and the other one */
    size_t blen;            /* bytes in buf */
    char *idx_vbuf;         /* stdio buffer of the .idx, freed after fclose */
    uint64_t offset;        /* bytes of the .rec so far, buffered ones included */
    size_t idx_unkicked;    /* bytes of the .idx written since its writeback was started */
    bool broken;            /* a write failed midway: the .rec may end in a partial record */
    struct ava_bgwrite *io; /* the .rec's writer; NULL only when the .rec cannot be created */
};

/* A record handed over in pieces (IRHeader + payload) so it need not be copied together.
 * Every piece but the last has a length divisible by 4, which keeps the 4-byte alignment of
 * the magic scan identical to a scan over the concatenation. */
struct piece {
    const uint8_t *p;
    size_t len;
};

/* Opens one output file with a large stdio buffer. */
static FILE *open_out(const char *path, const char *mode, char **vbuf, char *err) {
    FILE *f = fopen(path, mode);
    if (!f) {
        ava_err(err, AVA_EIO, "cannot create %s: %s", path, strerror(errno));
        return NULL;
    }
    *vbuf = ava_xmalloc(STDIO_BUF_SIZE);
    setvbuf(f, *vbuf, _IOFBF, STDIO_BUF_SIZE);
    return f;
}

int ava_recordio_writer_open(const char *rec_path, const char *idx_path,
                             struct ava_recordio_writer **out, char *err) {
    *out = NULL;
    struct ava_recordio_writer *w = ava_xcalloc(1, sizeof *w);
    w->rec_path = ava_xstrdup(rec_path);
    w->idx_path = ava_xstrdup(idx_path);
    w->fd = open(rec_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w->fd < 0)
        ava_err(err, AVA_EIO, "cannot create %s: %s", rec_path, strerror(errno));
    else {
        w->io = ava_bgwrite_new(w->fd, KICK_BYTES, true); /* its thread starts on first use */
        w->idx = open_out(idx_path, "w", &w->idx_vbuf, err);
    }
    if (!w->idx) {
        ava_recordio_writer_close(w, NULL);
        return AVA_EIO;
    }
    w->buf = ava_xmalloc(REC_BUF_SIZE);
    w->spare = ava_xmalloc(REC_BUF_SIZE);
    *out = w;
    return 0;
}

/* Hands the buffered bytes to the background writer (once it is done with the previous ones;
 * it writes them here when it has no thread) and switches to the other buffer, which the
 * writer no longer holds once the hand-over returns. */
static int rec_flush(struct ava_recordio_writer *w, char *err) {
    if (w->blen == 0)
        return 0;
    int e = ava_bgwrite_submit(w->io, w->buf, w->blen, (off_t)(w->offset - w->blen));
    uint8_t *b = w->buf;
    w->buf = w->spare;
    w->spare = b;
    w->blen = 0;
    if (e) {
        w->broken = true;
        return ava_err(err, AVA_EIO, "cannot write %s: %s", w->rec_path, strerror(e));
    }
    return 0;
}

/* Appends n bytes to the .rec, counting them. */
static int rec_put(struct ava_recordio_writer *w, const void *p, size_t n, char *err) {
    const uint8_t *q = p;
    while (n > 0) {
        size_t take = REC_BUF_SIZE - w->blen < n ? REC_BUF_SIZE - w->blen : n;
        memcpy(w->buf + w->blen, q, take);
        w->blen += take;
        w->offset += take;
        q += take;
        n -= take;
        if (w->blen == REC_BUF_SIZE) {
            int rc = rec_flush(w, err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Writes bytes [from, to) of the record that the pieces make up. */
static int rec_put_range(struct ava_recordio_writer *w, const struct piece *pc, int npc,
                         size_t from, size_t to, char *err) {
    size_t base = 0;
    for (int i = 0; i < npc && from < to; i++) {
        size_t end = base + pc[i].len;
        if (from < end) {
            size_t n = (to < end ? to : end) - from;
            int rc = rec_put(w, pc[i].p + (from - base), n, err);
            if (rc)
                return rc;
            from += n;
        }
        base = end;
    }
    return 0;
}

/* Writes one part header: magic, then lrec = cflag << 29 | len. */
static int rec_put_head(struct ava_recordio_writer *w, uint32_t cflag, size_t len, char *err) {
    uint8_t head[8];
    memcpy(head, magic_le, 4);
    put_u32le(head + 4, cflag << 29 | (uint32_t)len);
    return rec_put(w, head, sizeof head, err);
}

/* The offset of the first magic word at a 4-byte-aligned offset of p[0..n), or n when there
 * is none. 16 bytes at a time where SSE2 is there (every x86-64), else 4 at a time. */
static size_t scan_magic(const uint8_t *p, size_t n) {
    size_t i = 0;
#ifdef __SSE2__
    const __m128i m = _mm_set1_epi32((int)AVA_RECORDIO_MAGIC); /* x86 is little-endian */
    for (; i + 64 <= n; i += 64) {
        __m128i a = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p + i)), m);
        __m128i b =
            _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p + i + 16)), m);
        __m128i c =
            _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p + i + 32)), m);
        __m128i d =
            _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p + i + 48)), m);
        if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))))
            break; /* found in these 64 bytes: located below */
    }
    for (; i + 16 <= n; i += 16) {
        int mask = _mm_movemask_epi8(
            _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p + i)), m));
        if (mask) /* 4 mask bits per matching word: the lowest one is its first byte */
            return i + (size_t)__builtin_ctz((unsigned)mask);
    }
#endif
    uint32_t magic;
    memcpy(&magic, magic_le, 4);
    for (; i + 4 <= n; i += 4) {
        uint32_t v;
        memcpy(&v, p + i, 4);
        if (v == magic)
            return i;
    }
    return n;
}

/* The record offset of the first magic word at an aligned record offset >= from (a multiple
 * of 4), or SIZE_MAX when there is none. */
static size_t find_magic(const struct piece *pc, int npc, size_t from) {
    size_t base = 0;
    for (int k = 0; k < npc; k++) {
        size_t end = base + pc[k].len;
        if (from < end) {
            size_t skip = from > base ? from - base : 0;
            size_t at = skip + scan_magic(pc[k].p + skip, pc[k].len - skip);
            if (at + 4 <= pc[k].len)
                return base + at;
        }
        base = end;
    }
    return SIZE_MAX;
}

/* Writes a record the way dmlc-core's RecordIOWriter::WriteRecord does: each magic word at
 * a 4-byte-aligned offset ends a part (cflag 1 for the first, 2 after) and is dropped; the
 * rest is the last part (cflag 3, or 0 when nothing was split); zero padding to 4 bytes at
 * the end only, since every earlier part has an aligned length. */
static int rec_put_record(struct ava_recordio_writer *w, const struct piece *pc, int npc,
                          size_t len, char *err) {
    static const uint8_t zeros[4] = {0};
    size_t pad = (4 - len % 4) % 4, at = find_magic(pc, npc, 0);
    if (at == SIZE_MAX && 8 + len + pad <= REC_BUF_SIZE - w->blen) {
        /* the common case: one whole part that fits the buffer */
        uint8_t *o = w->buf + w->blen;
        memcpy(o, magic_le, 4);
        put_u32le(o + 4, CFLAG_WHOLE << 29 | (uint32_t)len);
        o += 8;
        for (int k = 0; k < npc; k++) {
            if (pc[k].len)
                memcpy(o, pc[k].p, pc[k].len);
            o += pc[k].len;
        }
        memset(o, 0, pad);
        w->blen += 8 + len + pad;
        w->offset += 8 + len + pad;
        return 0;
    }
    size_t dptr = 0;
    int rc;
    for (; at != SIZE_MAX; at = find_magic(pc, npc, at + 4)) {
        if ((rc = rec_put_head(w, dptr == 0 ? CFLAG_FIRST : CFLAG_MIDDLE, at - dptr, err)) ||
            (rc = rec_put_range(w, pc, npc, dptr, at, err)))
            return rc;
        dptr = at + 4;
    }
    if ((rc = rec_put_head(w, dptr != 0 ? CFLAG_LAST : CFLAG_WHOLE, len - dptr, err)) ||
        (rc = rec_put_range(w, pc, npc, dptr, len, err)) || (rc = rec_put(w, zeros, pad, err)))
        return rc;
    return 0;
}

/* Writes v in decimal at p; returns the end. */
static char *put_dec(char *p, uint64_t v) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Checks the size limit, writes the record and its idx line. */
static int write_pieces(struct ava_recordio_writer *w, uint64_t key, const struct piece *pc,
                        int npc, size_t len, char *err) {
    if (len > AVA_RECORDIO_MAX_LEN)
        return ava_err(err, AVA_ETOOLARGE,
                       "a record of %zu bytes is too large for RecordIO (the limit is %u bytes)",
                       len, AVA_RECORDIO_MAX_LEN);
    if (w->broken)
        return ava_err(err, AVA_EIO, "%s: an earlier write failed", w->rec_path);
    uint64_t start = w->offset;
    int rc = rec_put_record(w, pc, npc, len, err);
    if (rc)
        return rc;
    char line[48], *e = put_dec(line, key); /* "%" PRIu64 "\t%" PRIu64 "\n" */
    *e++ = '\t';
    e = put_dec(e, start);
    *e++ = '\n';
    size_t n = (size_t)(e - line);
    bool ok = fwrite_unlocked(line, 1, n, w->idx) == n;
    if (ok && (w->idx_unkicked += n) >= IDX_KICK) { /* as the .rec's, every IDX_KICK bytes */
        w->idx_unkicked = 0;
        ok = fflush_unlocked(w->idx) == 0;
        if (ok)
            sync_file_range(fileno_unlocked(w->idx), 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    if (!ok) {
        w->broken = true;
        return ava_err(err, AVA_EIO, "cannot write %s: %s", w->idx_path, strerror(errno));
    }
    return 0;
}

int ava_recordio_write(struct ava_recordio_writer *w, uint64_t key, const void *data, size_t len,
                       char *err) {
    struct piece pc = {data, len};
    return write_pieces(w, key, &pc, 1, len, err);
}

int ava_recordio_write_image(struct ava_recordio_writer *w, uint64_t key, float label, uint64_t id,
                             const void *payload, size_t len, char *err) {
    uint8_t head[AVA_IRHEADER_SIZE];
    struct ava_irheader h = {.flag = 0, .label = label, .id = id, .id2 = 0};
    ava_irheader_pack(&h, head);
    struct piece pc[2] = {{head, sizeof head}, {payload, len}};
    /* the sum cannot wrap: len beyond the limit is refused whatever the header adds */
    size_t total = len > AVA_RECORDIO_MAX_LEN ? len : len + sizeof head;
    return write_pieces(w, key, pc, 2, total, err);
}

uint64_t ava_recordio_writer_bytes(const struct ava_recordio_writer *w) {
    return w->offset;
}

/* Writes out the buffer, waits for the background writer, fsyncs, stops the writer and closes
 * the .rec; returns rc or the first error. */
static int rec_close(struct ava_recordio_writer *w, int rc, char *err) {
    if (w->fd < 0)
        return rc;
    char e2[AVA_ERRLEN];
    int f = w->broken ? 0 : rec_flush(w, e2);
    if (f && rc == 0)
        rc = ava_err(err, f, "%s", e2);
    int e = ava_bgwrite_wait(w->io);
    if (e && rc == 0)
        rc = ava_err(err, AVA_EIO, "cannot write %s: %s", w->rec_path, strerror(e));
    e = ava_bgwrite_sync(w->io); /* in this thread: no fsync was handed over */
    if (e && rc == 0)
        rc = ava_err(err, AVA_EIO, "cannot write %s: %s", w->rec_path, strerror(e));
    ava_bgwrite_free(w->io);
    w->io = NULL;
    if (close(w->fd) < 0 && rc == 0)
        rc = ava_err(err, AVA_EIO, "cannot write %s: %s", w->rec_path, strerror(errno));
    w->fd = -1;
    return rc;
}

int ava_recordio_writer_close(struct ava_recordio_writer *w, char *err) {
    if (!w)
        return 0;
    int rc = w->broken ? ava_err(err, AVA_EIO, "%s: an earlier write failed", w->rec_path) : 0;
    if (rc == 0 && w->idx) { /* the .idx's writeback goes on during the .rec's fsync */
        if (fflush_unlocked(w->idx) != 0)
            rc = ava_err(err, AVA_EIO, "cannot write %s: %s", w->idx_path, strerror(errno));
        else
            sync_file_range(fileno_unlocked(w->idx), 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    rc = rec_close(w, rc, err);
    rc = ava_file_close_synced(w->idx, w->idx_path, rc, err);
    free(w->buf);
    free(w->spare);
    free(w->idx_vbuf);
    free(w->rec_path);
    free(w->idx_path);
    free(w);
    return rc;
}

/* ---- reader ---- */

struct ava_recordio_reader {
    FILE *f;
    char *path;
    uint64_t pos;  /* byte offset of the next part header */
    uint64_t size; /* file size, to refuse lengths past the end before allocating */
    uint8_t *buf;
    size_t cap;
};

int ava_recordio_reader_open(const char *rec_path, struct ava_recordio_reader **out, char *err) {
    *out = NULL;
    FILE *f = fopen(rec_path, "rb");
    if (!f)
        return ava_err(err, errno == ENOENT ? AVA_ENOTFOUND : AVA_EIO, "cannot open %s: %s",
                       rec_path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ava_err(err, AVA_EINVALID, "%s is not a regular file", rec_path);
    }
    struct ava_recordio_reader *r = ava_xcalloc(1, sizeof *r);
    r->f = f;
    r->path = ava_xstrdup(rec_path);
    r->size = (uint64_t)st.st_size;
    r->cap = 256;
    r->buf = ava_xmalloc(r->cap);
    *out = r;
    return 0;
}

/* Makes room for n bytes in the record buffer. */
static void reader_reserve(struct ava_recordio_reader *r, size_t n) {
    if (n <= r->cap)
        return;
    size_t cap = r->cap;
    while (cap < n)
        cap *= 2;
    r->buf = ava_xrealloc(r->buf, cap);
    r->cap = cap;
}

/* Checks that a part with this cflag may follow `part` earlier parts of the record. */
static int check_cflag(const struct ava_recordio_reader *r, uint32_t cflag, int part, uint64_t at,
                       uint64_t start, char *err) {
    if (part == 0 && (cflag == CFLAG_MIDDLE || cflag == CFLAG_LAST))
        return ava_err(err, AVA_EINVALID,
                       "%s: corrupt record at byte %" PRIu64
                       ": a continuation part (cflag %u) with no first part",
                       r->path, at, cflag);
    if (part > 0 && (cflag == CFLAG_WHOLE || cflag == CFLAG_FIRST))
        return ava_err(err, AVA_EINVALID,
                       "%s: corrupt record at byte %" PRIu64 ": the record begun at byte %" PRIu64
                       " continues with cflag %u instead of a middle or last part",
                       r->path, at, start, cflag);
    return 0;
}

/* Reads one part header at r->pos into *cflag and *plen. Returns 1, 0 at a clean end (only
 * allowed before a record's first part), or AVA_EINVALID / AVA_EIO. */
static int read_head(struct ava_recordio_reader *r, int part, uint64_t start, uint32_t *cflag,
                     uint32_t *plen, char *err) {
    uint8_t head[8];
    size_t n = fread_unlocked(head, 1, sizeof head, r->f);
    if (n < sizeof head && ferror(r->f))
        return ava_err(err, AVA_EIO, "cannot read %s: %s", r->path, strerror(errno));
    if (n == 0 && part == 0)
        return 0;
    if (n < sizeof head)
        return ava_err(err, AVA_EINVALID,
                       "%s: truncated record at byte %" PRIu64 ": %s ends inside a part header",
                       r->path, r->pos, part ? "a multi-part record" : "the file");
    if (memcmp(head, magic_le, 4) != 0)
        return ava_err(err, AVA_EINVALID,
                       "%s: bad magic 0x%08x at byte %" PRIu64 " (expected 0x%08x)", r->path,
                       get_u32le(head), r->pos, AVA_RECORDIO_MAGIC);
    uint32_t lrec = get_u32le(head + 4);
    *cflag = lrec >> 29;
    *plen = lrec & LEN_MASK;
    int rc = check_cflag(r, *cflag, part, r->pos, start, err);
    return rc ? rc : 1;
}

int ava_recordio_read(struct ava_recordio_reader *r, const uint8_t **data, size_t *len, char *err) {
    uint64_t start = r->pos;
    size_t total = 0;
    for (int part = 0;; part++) {
        uint32_t cflag = 0, plen = 0;
        int rc = read_head(r, part, start, &cflag, &plen, err);
        if (rc <= 0)
            return rc;
        uint64_t at = r->pos;
        size_t padded = ((size_t)plen + 3) & ~(size_t)3;
        size_t joined = total + (part ? 4 : 0) + plen;
        if (joined > AVA_RECORDIO_MAX_LEN)
            return ava_err(err, AVA_EINVALID,
                           "%s: corrupt record at byte %" PRIu64 ": its parts exceed %u bytes",
                           r->path, start, AVA_RECORDIO_MAX_LEN);
        if (at + 8 + padded > r->size)
            return ava_err(err, AVA_EINVALID,
                           "%s: truncated record at byte %" PRIu64 ": the part declares %u bytes"
                           " but the file ends at byte %" PRIu64,
                           r->path, at, plen, r->size);
        reader_reserve(r, total + 4 + padded);
        if (part) {
            memcpy(r->buf + total, magic_le, 4); /* the escaped word goes back between parts */
            total += 4;
        }
        if (padded && fread_unlocked(r->buf + total, 1, padded, r->f) != padded)
            return ava_err(err, AVA_EINVALID, "%s: truncated record at byte %" PRIu64, r->path, at);
        total += plen;
        r->pos = at + 8 + padded;
        if (cflag == CFLAG_WHOLE || cflag == CFLAG_LAST)
            break;
    }
    *data = r->buf;
    *len = total;
    return 1;
}

int ava_recordio_seek(struct ava_recordio_reader *r, uint64_t offset, char *err) {
    if (offset % 4 != 0 || offset > r->size)
        return ava_err(err, AVA_EINVALID,
                       "%s: offset %" PRIu64 " is not a record position (file of %" PRIu64
                       " bytes)",
                       r->path, offset, r->size);
    if (fseeko(r->f, (off_t)offset, SEEK_SET) != 0)
        return ava_err(err, AVA_EIO, "cannot seek in %s: %s", r->path, strerror(errno));
    r->pos = offset;
    return 0;
}

void ava_recordio_reader_close(struct ava_recordio_reader *r) {
    if (!r)
        return;
    fclose(r->f);
    free(r->path);
    free(r->buf);
    free(r);
}
