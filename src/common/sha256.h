/* sha256.h: SHA-256 (FIPS 180-4), used to store API tokens hashed, and random tokens. */
#ifndef AVA_COMMON_SHA256_H
#define AVA_COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 32-byte digest of data into out. */
void ava_sha256(const void *data, size_t len, uint8_t out[32]);

/* Writes the lowercase hex digest of a NUL-terminated string into out (65 bytes). */
void ava_sha256_hex(const char *s, char out[65]);

/* Makes a new random API token "ava_" + 40 hex characters into out (45 bytes), from
 * getrandom(2). Returns 0 or AVA_EIO. */
int ava_token_new(char out[45]);

#endif
