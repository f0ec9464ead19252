/* image.h: image decoding and encoding (libjpeg-turbo, libpng) and resizing, for importers
 * (to check that files decode) and formatters (to re-encode or to write raw pixels). */
#ifndef AVA_DATA_IMAGE_H
#define AVA_DATA_IMAGE_H

#include "sample.h"

#include <stddef.h>
#include <stdint.h>

/* A decoded image owned by the caller (ava_image_pixels_free). */
struct ava_pixels {
    int width, height, channels; /* channels 1 (grey) or 3 (RGB) */
    uint8_t *data;               /* row-major, interleaved, width*height*channels bytes */
};
void ava_image_pixels_free(struct ava_pixels *p);

enum ava_image_kind { AVA_IMAGE_UNKNOWN, AVA_IMAGE_JPEG, AVA_IMAGE_PNG };

/* Recognises JPEG or PNG by its magic bytes. */
enum ava_image_kind ava_image_sniff(const uint8_t *data, size_t len);

/* Decodes a JPEG or PNG (8-bit; PNG palettes, 16-bit and alpha are converted: alpha dropped,
 * grey kept as 1 channel, colour as RGB). Returns 0 or AVA_EINVALID naming the problem. */
int ava_image_decode(const uint8_t *data, size_t len, struct ava_pixels *out, char *err);

/* Encodes pixels as JPEG with quality 1..100 (4:2:0 for colour). *out (malloc'd, *len bytes)
 * belongs to the caller. */
int ava_image_encode_jpeg(const struct ava_pixels *p, int quality, uint8_t **out, size_t *len,
                          char *err);
/* Encodes pixels as PNG (compression level 6). */
int ava_image_encode_png(const struct ava_pixels *p, uint8_t **out, size_t *len, char *err);

/* Resizes so that the shorter edge is `shorter` pixels (bilinear; aspect kept; no change
 * when it already is). *out belongs to the caller. */
int ava_image_resize_shorter(const struct ava_pixels *in, int shorter, struct ava_pixels *out,
                             char *err);

/* The pixels of a sample: decodes ENCODED samples, copies GRAY/RGB ones. */
int ava_image_from_sample(const struct ava_sample *s, struct ava_pixels *out, char *err);

/* Checks a GRAY or RGB sample exactly as ava_image_from_sample does (the same errors) without
 * copying it: *channels gets 1 or 3, and the pixels are then s->data as they lie (row-major,
 * interleaved). ENCODED samples are refused (AVA_EINVALID): decode them instead. */
int ava_image_sample_check(const struct ava_sample *s, int *channels, char *err);

/* A reusable JPEG encoder: one TurboJPEG handle and one output buffer kept across images, for
 * one thread at a time (give each encoding thread its own). */
struct ava_jpeg_encoder;
struct ava_jpeg_encoder *ava_jpeg_encoder_new(void);
/* Frees e; NULL is a no-op. */
void ava_jpeg_encoder_free(struct ava_jpeg_encoder *e);
/* Encodes width x height pixels of `channels` (1 or 3) at px, read-only, byte for byte as
 * ava_image_encode_jpeg does (same checks and errors). *out points into e's buffer and stays
 * valid until the next call on e. */
int ava_jpeg_encoder_encode(struct ava_jpeg_encoder *e, const uint8_t *px, int width, int height,
                            int channels, int quality, const uint8_t **out, size_t *len, char *err);

#endif
