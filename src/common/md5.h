/* md5.h: MD5 (RFC 1321), to check downloads and tarballs against published checksums (not
 * for security). Streaming: init, update as data arrives, final. */
#ifndef AVA_COMMON_MD5_H
#define AVA_COMMON_MD5_H

#include <stddef.h>
#include <stdint.h>

struct ava_md5 {
    uint32_t h[4];
    uint64_t len;    /* bytes seen */
    uint8_t buf[64]; /* a partial block */
};

void ava_md5_init(struct ava_md5 *m);
void ava_md5_update(struct ava_md5 *m, const void *data, size_t len);
/* Finishes and writes the lowercase hex digest (33 bytes with the NUL). */
void ava_md5_hex(struct ava_md5 *m, char out[33]);

/* The hex MD5 of a whole file, read in chunks. Returns 0 or AVA_ENOTFOUND / AVA_EIO. */
int ava_md5_file(const char *path, char out[33], char *err);

#endif
