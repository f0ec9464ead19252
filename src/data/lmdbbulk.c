/* lmdbbulk.c: LMDB's data.mdb written without LMDB, for keys that come in sorted order.
 *
 * While every key sorts after the ones before it (always so for a formatted set, whose keys
 * start with the sample's position), the writer lays out LMDB's B+tree itself, as one
 * transaction of MDB_APPEND puts would leave it: leaves filled in key order, each datum
 * encoded straight into its leaf (or its overflow pages), branch pages above them, and the
 * two meta pages written last. The pages stream out through two buffers that a background
 * thread (bgwrite.c) writes while the caller fills the other, with no transaction, no page copy and
 * no commit on the way. LMDB itself reads the result (and writes on after it, should an
 * out-of-order key come: see lmdbw.c). The layout follows LMDB 0.9's mdb.c: page header
 * (pgno, pad, flags, lower/upper or the overflow page count), node offsets from the header
 * on, nodes from the page's end down (lo/hi data size or child page, flags, key size, key,
 * data), node sizes rounded to even, F_BIGDATA data on overflow pages when a node would pass
 * the page's node limit, an empty key in a branch page's first node, and at least two nodes
 * in every branch page (LMDB asserts it). */
#include "lmdbbulk.h"

#include "bgwrite.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define PAGEHDRSZ (sizeof(size_t) + 8) /* pgno, pad, flags, lower and upper */
#define NODESIZE 8                     /* lo, hi, flags, ksize */
#define PG_LOWER (sizeof(size_t) + 4)  /* where lower (or an overflow run's page count) lies */
#define PG_UPPER (sizeof(size_t) + 6)
#define P_BRANCH 0x01
#define P_LEAF 0x02
#define P_OVERFLOW 0x04
#define P_META 0x08
#define F_BIGDATA 0x01
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_MINKEYS 2
#define P_INVALID (~(size_t)0)
#define NUM_METAS 2
#define BULK_PAGE_MAX 32768         /* larger pages do not fit LMDB's 16-bit offsets as laid here */
#define BULK_BUF ((size_t)1 << 20)  /* each of the two stream buffers */
#define BULK_KICK ((size_t)4 << 20) /* writeback is started every 4 MiB written */
#define MAX_LEVELS 32
#define EVEN(n) (((n) + 1) & ~(size_t)1)

/* MDB_db and MDB_meta as mdb.c lays them out (native byte order, no padding). */
struct disk_db {
    uint32_t pad; /* the page size in the free DB's record */
    uint16_t flags, depth;
    size_t branch_pages, leaf_pages, overflow_pages, entries, root;
};
struct disk_meta {
    uint32_t magic, version;
    void *address;
    size_t mapsize;
    struct disk_db dbs[2]; /* free DB, main DB */
    size_t last_pg, txnid;
};
_Static_assert(sizeof(struct disk_meta) ==
                   8 + sizeof(void *) + sizeof(size_t) * 3 + 2 * (8 + 5 * sizeof(size_t)),
               "MDB_meta has no padding");

/* One node of a branch page being gathered: the child page and its first key. */
struct bent {
    size_t pgno, koff;
    uint16_t klen;
};

/* A branch page's nodes, kept until the page is written; used = bytes of nodes and offsets. */
struct bpage {
    struct bent *e;
    size_t n, cap;
    uint8_t *keys;
    size_t klen, kcap, used;
};

/* One level of branch pages: the page being filled, and the full one before it, held back
 * so that the last page of the level can take a node from it if it would hold only one. */
struct blevel {
    struct bpage pg[2];
    int cur;
    bool has_prev;
};

/* The bulk writer of one data.mdb: the stream buffers, the open leaf, the branch levels and
 * the counts that go into the meta page. */
struct ava_lmdb_bulk {
    int fd;
    char *path; /* data.mdb, for messages */
    size_t psize, nodemax;
    uint8_t *buf, *spare, *scratch, *zeros;
    size_t bufpages, nbuf, buf_pg; /* pages in buf, which start at page buf_pg of the file */
    uint8_t *leaf;                 /* the open leaf, or NULL */
    bool leaf_in_buf;              /* ...as buf's last page (its page number provisional) */
    struct blevel lv[MAX_LEVELS];  /* lv[1] holds the leaves' nodes; lv[0] is unused */
    int nlv;
    size_t branch_pages, leaf_pages, overflow_pages, entries, root;
    uint16_t depth;
    bool broken;
    struct ava_bgwrite *io; /* writes the stream buffers on its thread (bgwrite.h) */
};

/* A 16-bit field of a page (native byte order, possibly unaligned). */
static uint16_t get16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* Stores a 16-bit field of a page. */
static void put16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}

/* Writes a node's header: the low and high 16 bits of its data size or child page (mn_lo,
 * mn_hi, whose order in MDB_node follows the host's byte order), flags and key size. */
static void node_head(uint8_t *node, uint32_t lohi, uint16_t flags, uint16_t ksize) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    put16(node, (uint16_t)(lohi >> 16));
    put16(node + 2, (uint16_t)(lohi & 0xffff));
#else
    put16(node, (uint16_t)(lohi & 0xffff));
    put16(node + 2, (uint16_t)(lohi >> 16));
#endif
    put16(node + 4, flags);
    put16(node + 6, ksize);
}

/* Writes a page header: number, pad 0, flags, lower and upper of an empty page. */
static void page_init(const struct ava_lmdb_bulk *b, uint8_t *p, size_t pgno, uint16_t flags) {
    memcpy(p, &pgno, sizeof pgno);
    put16(p + sizeof(size_t), 0);
    put16(p + sizeof(size_t) + 2, flags);
    put16(p + PG_LOWER, (uint16_t)PAGEHDRSZ);
    put16(p + PG_UPPER, (uint16_t)b->psize);
}

/* Zeroes a finished page's free space (buffers are reused: no stale bytes in the file). */
static void page_seal(uint8_t *p) {
    uint16_t lower = get16(p + PG_LOWER), upper = get16(p + PG_UPPER);
    memset(p + lower, 0, (size_t)(upper - lower));
}

/* A write failure as AVA_EIO; the bulk writer refuses everything after it. */
static int bulk_fail(struct ava_lmdb_bulk *b, int e, char *err) {
    b->broken = true;
    return ava_err(err, AVA_EIO, "cannot write %s: %s", b->path, strerror(e));
}

/* Hands the buffered pages to the I/O thread and switches buffers; an open leaf (the last
 * page, not finished) moves to the start of the other buffer instead. */
static int bulk_flush(struct ava_lmdb_bulk *b, char *err) {
    size_t k = b->nbuf - (b->leaf_in_buf ? 1 : 0);
    if (k == 0)
        return 0;
    int e = ava_bgwrite_submit(b->io, b->buf, k * b->psize, (off_t)(b->buf_pg * b->psize));
    if (e)
        return bulk_fail(b, e, err);
    uint8_t *full = b->buf;
    b->buf = b->spare; /* free: the I/O thread took the new job only after the last one */
    b->spare = full;
    if (b->leaf_in_buf) {
        memcpy(b->buf, full + k * b->psize, b->psize);
        b->leaf = b->buf;
    }
    b->buf_pg += k;
    b->nbuf -= k;
    return 0;
}

/* Takes the next n pages of the file in the buffer (n <= half the buffer); never while an
 * open leaf is the buffer's last page, which must stay last. */
static int stream_pages(struct ava_lmdb_bulk *b, size_t n, size_t *pgno, uint8_t **p, char *err) {
    if (b->bufpages - b->nbuf < n) {
        int rc = bulk_flush(b, err);
        if (rc)
            return rc;
    }
    *pgno = b->buf_pg + b->nbuf;
    *p = b->buf + b->nbuf * b->psize;
    b->nbuf += n;
    return 0;
}

/* Appends a node for child pgno with key to the bpage. */
static void bpage_add(struct bpage *pg, size_t pgno, const uint8_t *key, uint16_t klen) {
    if (pg->n == pg->cap) {
        pg->cap = pg->cap ? pg->cap * 2 : 64;
        pg->e = ava_xrealloc(pg->e, pg->cap * sizeof *pg->e);
    }
    if (pg->kcap - pg->klen < klen) {
        pg->kcap = pg->kcap ? pg->kcap * 2 : 4096;
        while (pg->kcap - pg->klen < klen)
            pg->kcap *= 2;
        pg->keys = ava_xrealloc(pg->keys, pg->kcap);
    }
    pg->e[pg->n++] = (struct bent){pgno, pg->klen, klen};
    memcpy(pg->keys + pg->klen, key, klen);
    pg->klen += klen;
}

static int level_push(struct ava_lmdb_bulk *b, int L, size_t pgno, const uint8_t *key,
                      uint16_t klen, char *err);

/* Writes a branch page of level L with the nodes of pg into the stream; its first key goes
 * up to level L + 1, or, for the root, its page number into b->root. */
static int branch_emit(struct ava_lmdb_bulk *b, int L, const struct bpage *pg, bool root,
                       char *err) {
    size_t pgno;
    uint8_t *p;
    int rc = stream_pages(b, 1, &pgno, &p, err);
    if (rc)
        return rc;
    page_init(b, p, pgno, P_BRANCH);
    size_t lower = PAGEHDRSZ, upper = b->psize;
    for (size_t i = 0; i < pg->n; i++) {
        const struct bent *e = &pg->e[i];
        uint16_t ks = i ? e->klen : 0; /* LMDB ignores (and stores no) first key */
        uint64_t child = e->pgno;
        upper -= EVEN(NODESIZE + ks);
        put16(p + lower, (uint16_t)upper);
        lower += 2;
        uint8_t *node = p + upper;
        node_head(node, (uint32_t)child, (uint16_t)(child >> 32 & 0xffff), ks); /* 48 bits */
        memcpy(node + NODESIZE, pg->keys + e->koff, ks);
        if ((NODESIZE + ks) & 1)
            node[NODESIZE + ks] = 0; /* the pad byte: nothing stale from the reused buffer */
    }
    put16(p + PG_LOWER, (uint16_t)lower);
    put16(p + PG_UPPER, (uint16_t)upper);
    page_seal(p);
    b->branch_pages++;
    if (root) {
        b->root = pgno;
        return 0;
    }
    return level_push(b, L + 1, pgno, pg->keys + pg->e[0].koff, pg->e[0].klen, err);
}

/* Adds the node of a finished page (pgno, its first key) to branch level L, writing the
 * level's held-back page when the current one is full. */
static int level_push(struct ava_lmdb_bulk *b, int L, size_t pgno, const uint8_t *key,
                      uint16_t klen, char *err) {
    if (L >= MAX_LEVELS)
        return ava_err(err, AVA_ETOOLARGE, "LMDB tree of %s too deep", b->path);
    if (L >= b->nlv)
        b->nlv = L + 1;
    struct blevel *lv = &b->lv[L];
    struct bpage *cur = &lv->pg[lv->cur];
    size_t need = cur->n == 0 ? NODESIZE + 2 : EVEN(NODESIZE + klen) + 2;
    if (cur->n > 0 && cur->used + need > b->psize - PAGEHDRSZ) {
        if (lv->has_prev) {
            int rc = branch_emit(b, L, &lv->pg[lv->cur ^ 1], false, err);
            if (rc)
                return rc;
        }
        lv->cur ^= 1;
        lv->has_prev = true;
        cur = &lv->pg[lv->cur];
        cur->n = cur->klen = cur->used = 0;
        need = NODESIZE + 2;
    }
    bpage_add(cur, pgno, key, klen);
    cur->used += need;
    return 0;
}

/* Opens a leaf as the buffer's last page. */
static int leaf_open(struct ava_lmdb_bulk *b, char *err) {
    size_t pgno;
    int rc = stream_pages(b, 1, &pgno, &b->leaf, err);
    if (rc)
        return rc;
    b->leaf_in_buf = true;
    page_init(b, b->leaf, pgno, P_LEAF);
    return 0;
}

/* Moves the open leaf out of the buffer (overflow pages are about to follow in the stream:
 * the leaf takes its page number once finished, after them). */
static void leaf_detach(struct ava_lmdb_bulk *b) {
    memcpy(b->scratch, b->leaf, b->psize);
    b->leaf = b->scratch;
    b->leaf_in_buf = false;
    b->nbuf--;
}

/* Finishes the open leaf: its page number (its place in the buffer, or the stream's next
 * page when it was detached) and its first key go to branch level 1. */
static int leaf_close(struct ava_lmdb_bulk *b, char *err) {
    uint8_t *p = b->leaf;
    size_t pgno;
    if (b->leaf_in_buf) {
        pgno = b->buf_pg + b->nbuf - 1;
    } else {
        int rc = stream_pages(b, 1, &pgno, &p, err);
        if (rc)
            return rc;
        memcpy(p, b->scratch, b->psize);
    }
    b->leaf = NULL;
    b->leaf_in_buf = false;
    memcpy(p, &pgno, sizeof pgno);
    page_seal(p);
    b->leaf_pages++;
    const uint8_t *node = p + get16(p + PAGEHDRSZ);
    return level_push(b, 1, pgno, node + NODESIZE, get16(node + 6), err);
}

/* Writes a datum of vlen bytes as an overflow run; *pgno gets its first page. Runs up to half
 * a buffer go through the buffer; longer ones are written here, from the datum's bytes. */
static int overflow_put(struct ava_lmdb_bulk *b, const struct ava_datum *d, size_t vlen,
                        size_t *pgno, char *err) {
    size_t npages = (PAGEHDRSZ - 1 + vlen) / b->psize + 1, span = npages * b->psize;
    uint8_t *p;
    int rc;
    b->overflow_pages += npages;
    if (npages <= b->bufpages / 2) {
        if ((rc = stream_pages(b, npages, pgno, &p, err)))
            return rc;
        page_init(b, p, *pgno, P_OVERFLOW);
        uint32_t n32 = (uint32_t)npages;
        memcpy(p + PG_LOWER, &n32, 4);
        ava_datum_write(d, p + PAGEHDRSZ);
        memset(p + PAGEHDRSZ + vlen, 0, span - PAGEHDRSZ - vlen);
        return 0;
    }
    if ((rc = bulk_flush(b, err))) /* the leaf is detached: the buffer empties */
        return rc;
    *pgno = b->buf_pg;
    b->buf_pg += npages;
    uint8_t head[PAGEHDRSZ + AVA_DATUM_HEAD_MAX];
    page_init(b, head, *pgno, P_OVERFLOW);
    uint32_t n32 = (uint32_t)npages;
    memcpy(head + PG_LOWER, &n32, 4);
    size_t hlen = PAGEHDRSZ + ava_datum_write_head(d, head + PAGEHDRSZ);
    size_t tlen = vlen - (hlen - PAGEHDRSZ) - d->len;
    off_t off = (off_t)(*pgno * b->psize);
    memset(b->zeros, 0, AVA_DATUM_TAIL_MAX);
    ava_datum_write_tail(d, b->zeros);
    /* written here, from the datum's bytes, after the buffers handed over */
    int e = ava_bgwrite_write(b->io, head, hlen, off);
    if (e == 0 && (e = ava_bgwrite_write(b->io, d->data, d->len, off + (off_t)hlen)) == 0)
        e = ava_bgwrite_write(b->io, b->zeros, span - hlen - d->len, off + (off_t)(hlen + d->len));
    memset(b->zeros, 0, tlen);
    return e ? bulk_fail(b, e, err) : 0;
}

/* Appends key -> datum (vlen bytes encoded, key after every earlier one) to the tree. */
int ava_lmdb_bulk_put(struct ava_lmdb_bulk *b, const char *key, size_t klen,
                      const struct ava_datum *d, size_t vlen, char *err) {
    if (b->broken)
        return ava_err(err, AVA_EIO, "LMDB writer for %s failed earlier", b->path);
    bool big = NODESIZE + klen + vlen > b->nodemax;
    size_t raw = NODESIZE + klen + (big ? sizeof(size_t) : vlen), nsize = EVEN(raw);
    int rc = 0;
    if (b->leaf && nsize + 2 > (size_t)(get16(b->leaf + PG_UPPER) - get16(b->leaf + PG_LOWER)))
        rc = leaf_close(b, err);
    if (rc == 0 && !b->leaf)
        rc = leaf_open(b, err);
    size_t opg = 0;
    if (rc == 0 && big) {
        if (b->leaf_in_buf)
            leaf_detach(b);
        rc = overflow_put(b, d, vlen, &opg, err);
    }
    if (rc)
        return rc;
    uint8_t *p = b->leaf;
    size_t lower = get16(p + PG_LOWER), upper = get16(p + PG_UPPER) - nsize;
    put16(p + lower, (uint16_t)upper);
    put16(p + PG_LOWER, (uint16_t)(lower + 2));
    put16(p + PG_UPPER, (uint16_t)upper);
    uint8_t *node = p + upper;
    node_head(node, (uint32_t)vlen, big ? F_BIGDATA : 0, (uint16_t)klen);
    memcpy(node + NODESIZE, key, klen);
    if (big)
        memcpy(node + NODESIZE + klen, &opg, sizeof opg);
    else
        ava_datum_write(d, node + NODESIZE + klen);
    if (nsize > raw)
        node[raw] = 0;
    b->entries++;
    if ((b->buf_pg + b->nbuf + 1) * b->psize > AVA_LMDB_MAP_MAX) {
        b->broken = true;
        return ava_err(err, AVA_ETOOLARGE, "LMDB map of %s would grow past 1 TiB", b->path);
    }
    return 0;
}

/* Moves the last node of prev to the front of cur (which holds one node). */
static void bpage_borrow(struct bpage *prev, struct bpage *cur) {
    const struct bent *e = &prev->e[--prev->n];
    bpage_add(cur, e->pgno, prev->keys + e->koff, e->klen); /* now cur->e[1] */
    struct bent t = cur->e[0];
    cur->e[0] = cur->e[1];
    cur->e[1] = t;
}

/* Finishes the tree: the open leaf, then each branch level's last pages from the bottom up
 * (the last page of a level takes a node from the one before when it would hold one), the
 * top one the root. A level of one node leaves that node (a single leaf) the root. */
static int bulk_finish_tree(struct ava_lmdb_bulk *b, char *err) {
    int rc = b->leaf ? leaf_close(b, err) : 0;
    b->root = P_INVALID;
    b->depth = 0;
    for (int L = 1; rc == 0 && L < b->nlv; L++) {
        struct blevel *lv = &b->lv[L];
        struct bpage *cur = &lv->pg[lv->cur], *prev = &lv->pg[lv->cur ^ 1];
        if (!lv->has_prev) { /* the top level: one page */
            if (cur->n == 1) {
                b->root = cur->e[0].pgno;
                b->depth = (uint16_t)L;
            } else {
                rc = branch_emit(b, L, cur, true, err);
                b->depth = (uint16_t)(L + 1);
            }
            break;
        }
        if (cur->n == 1)
            bpage_borrow(prev, cur);
        rc = branch_emit(b, L, prev, false, err);
        if (rc == 0)
            rc = branch_emit(b, L, cur, false, err);
    }
    return rc;
}

/* Writes the two meta pages: page 0 as LMDB initialises it (transaction 0, empty), page 1
 * as the first commit leaves it (transaction 1, the tree), both with map size mapsize. */
static int write_metas(struct ava_lmdb_bulk *b, size_t mapsize, char *err) {
    uint8_t *pages = ava_xcalloc(NUM_METAS, b->psize);
    struct disk_meta m;
    memset(&m, 0, sizeof m);
    m.magic = LMDB_MAGIC;
    m.version = LMDB_DATA_VERSION;
    m.mapsize = mapsize;
    m.dbs[0].pad = (uint32_t)b->psize;
    m.dbs[0].flags = MDB_INTEGERKEY;
    m.dbs[0].root = P_INVALID;
    m.dbs[1].root = P_INVALID;
    m.last_pg = NUM_METAS - 1;
    page_init(b, pages, 0, P_META);
    memcpy(pages + PAGEHDRSZ, &m, sizeof m);
    m.dbs[1] = (struct disk_db){
        0, 0, b->depth, b->branch_pages, b->leaf_pages, b->overflow_pages, b->entries, b->root};
    m.last_pg = b->buf_pg + b->nbuf - 1;
    m.txnid = 1;
    page_init(b, pages + b->psize, 1, P_META);
    memcpy(pages + b->psize + PAGEHDRSZ, &m, sizeof m);
    put16(pages + PG_LOWER, 0); /* meta pages keep lower/upper at 0, as LMDB's calloc leaves */
    put16(pages + PG_UPPER, 0);
    put16(pages + b->psize + PG_LOWER, 0);
    put16(pages + b->psize + PG_UPPER, 0);
    int e = ava_bgwrite_write(b->io, pages, NUM_METAS * b->psize, 0);
    free(pages);
    return e ? bulk_fail(b, e, err) : 0;
}

/* Finishes the tree, writes every page out, then the metas (the map size doubled from
 * *mapsize until it holds the file, like LMDB's growth; *mapsize gets it). */
int ava_lmdb_bulk_finish(struct ava_lmdb_bulk *b, size_t *mapsize, char *err) {
    if (b->broken)
        return ava_err(err, AVA_EIO, "LMDB writer for %s failed earlier", b->path);
    int rc = bulk_finish_tree(b, err);
    if (rc == 0)
        rc = bulk_flush(b, err);
    int e = ava_bgwrite_wait(b->io);
    if (rc == 0 && e)
        rc = bulk_fail(b, e, err);
    if (rc)
        return rc;
    size_t bytes = (b->buf_pg + b->nbuf) * b->psize;
    while (*mapsize < bytes && *mapsize < AVA_LMDB_MAP_MAX)
        *mapsize *= 2;
    return write_metas(b, *mapsize, err);
}

/* Creates data.mdb in dir for bulk writing (see lmdbbulk.h). */
int ava_lmdb_bulk_open(const char *dir, struct ava_lmdb_bulk **out, char *err) {
    *out = NULL;
    long ps = sysconf(_SC_PAGESIZE); /* what LMDB uses for a new environment */
    if (ps < 4096 || ps > BULK_PAGE_MAX)
        return 0;
    struct ava_lmdb_bulk *b = ava_xcalloc(1, sizeof *b);
    b->psize = (size_t)ps;
    b->nodemax = (((b->psize - PAGEHDRSZ) / LMDB_MINKEYS) & ~(size_t)1) - sizeof(uint16_t);
    b->bufpages = BULK_BUF / b->psize;
    b->buf_pg = NUM_METAS;
    size_t plen = strlen(dir) + sizeof "/data.mdb";
    b->path = ava_xmalloc(plen);
    snprintf(b->path, plen, "%s/data.mdb", dir);
    b->fd = open(b->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (b->fd < 0) {
        int rc = ava_err(err, AVA_EIO, "cannot create %s: %s", b->path, strerror(errno));
        free(b->path);
        free(b);
        return rc;
    }
    b->buf = ava_xmalloc(BULK_BUF);
    b->spare = ava_xmalloc(BULK_BUF);
    b->scratch = ava_xmalloc(b->psize);
    b->zeros = ava_xcalloc(1, b->psize + AVA_DATUM_TAIL_MAX);
    b->io = ava_bgwrite_new(b->fd, BULK_KICK, true); /* its thread starts on first use */
    *out = b;
    return 0;
}

/* Starts the fsync of data.mdb on the I/O thread (all is written), so that the caller's
 * last steps overlap it; ava_lmdb_bulk_free(sync) waits for it (or, without the thread, runs
 * it). */
void ava_lmdb_bulk_sync_start(struct ava_lmdb_bulk *b) {
    ava_bgwrite_sync_start(b->io);
}

/* Stops the I/O thread, closes data.mdb (fsynced first when sync, unless the I/O thread did
 * it) and frees b; returns rc or the sync's failure. NULL: rc. */
int ava_lmdb_bulk_free(struct ava_lmdb_bulk *b, bool sync, int rc, char *err) {
    if (!b)
        return rc;
    /* the job in flight first, the fsync included; the one handed over, or one run here */
    int e = sync && rc == 0 ? ava_bgwrite_sync(b->io) : 0;
    ava_bgwrite_free(b->io);
    if (e)
        rc = ava_err(err, AVA_EIO, "cannot sync %s: %s", b->path, strerror(e));
    if (close(b->fd) < 0 && rc == 0)
        rc = ava_err(err, AVA_EIO, "cannot write %s: %s", b->path, strerror(errno));
    for (int L = 0; L < MAX_LEVELS; L++)
        for (int k = 0; k < 2; k++) {
            free(b->lv[L].pg[k].e);
            free(b->lv[L].pg[k].keys);
        }
    free(b->buf);
    free(b->spare);
    free(b->scratch);
    free(b->zeros);
    free(b->path);
    free(b);
    return rc;
}
