/* image.c: JPEG (libjpeg-turbo's TurboJPEG API) and PNG (libpng's simplified API) decoding
 * and encoding, and the bilinear shorter-edge resize used by the formatters. */
#include "image.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <png.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* The largest image accepted, in pixels (8192 x 8192): bounds what one hostile header can make
 * us allocate (192 MiB for RGB). Training images are far smaller. */
#define IMAGE_MAX_PIXELS (8192L * 8192L)

void ava_image_pixels_free(struct ava_pixels *p) {
    if (!p)
        return;
    free(p->data);
    memset(p, 0, sizeof *p);
}

enum ava_image_kind ava_image_sniff(const uint8_t *data, size_t len) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return AVA_IMAGE_JPEG;
    if (len >= 8 && memcmp(data, png_magic, 8) == 0)
        return AVA_IMAGE_PNG;
    return AVA_IMAGE_UNKNOWN;
}

/* Checks dimensions before anything is allocated for them. */
static int check_dims(long w, long h, const char *what, char *err) {
    if (w <= 0 || h <= 0)
        return ava_err(err, AVA_EINVALID, "cannot decode %s: no valid size (%ldx%ld) in its header",
                       what, w, h);
    if (w > IMAGE_MAX_PIXELS / h)
        return ava_err(err, AVA_EINVALID,
                       "cannot decode %s: %ldx%ld exceeds the limit of %ld pixels", what, w, h,
                       IMAGE_MAX_PIXELS);
    return 0;
}

/* Converts CMYK as libjpeg-turbo stores it (Adobe's inverted convention) to RGB in place,
 * the same formula as libjpeg-turbo's own cmyk_to_rgb. */
static void cmyk_to_rgb(uint8_t *px, size_t npix) {
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *c = px + 4 * i;
        unsigned k = c[3];
        uint8_t rgb[3] = {(uint8_t)((c[0] * k + 127) / 255), (uint8_t)((c[1] * k + 127) / 255),
                          (uint8_t)((c[2] * k + 127) / 255)};
        memcpy(px + 3 * i, rgb, 3);
    }
}

/* Decides whether a TurboJPEG failure is fatal. Warnings ("extraneous bytes before marker")
 * are common in real datasets and leave a good image, so they pass; a premature end of data
 * leaves a half-grey image, which is a truncated file and refused. */
static bool jpeg_failure_fatal(tjhandle h) {
    if (tjGetErrorCode(h) != TJERR_WARNING)
        return true;
    return strstr(tjGetErrorStr2(h), "Premature end") != NULL;
}

/* Decodes a JPEG into grey (grey JPEGs) or RGB (everything else). */
static int decode_jpeg(const uint8_t *data, size_t len, struct ava_pixels *out, char *err) {
    tjhandle h = tjInitDecompress();
    if (!h)
        return ava_err(err, AVA_EINTERNAL, "cannot decode JPEG: %s", tjGetErrorStr2(NULL));
    int w = 0, ht = 0, subsamp = 0, cs = 0, rc = 0;
    if (tjDecompressHeader3(h, data, (unsigned long)len, &w, &ht, &subsamp, &cs) < 0) {
        rc = ava_err(err, AVA_EINVALID, "cannot decode JPEG: %s", tjGetErrorStr2(h));
        goto done;
    }
    if ((rc = check_dims(w, ht, "JPEG", err)) < 0)
        goto done;
    bool cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    int pf = cs == TJCS_GRAY ? TJPF_GRAY : cmyk ? TJPF_CMYK : TJPF_RGB;
    size_t npix = (size_t)w * (size_t)ht;
    uint8_t *px = ava_xmalloc(npix * (size_t)tjPixelSize[pf]);
    if (tjDecompress2(h, data, (unsigned long)len, px, w, 0, ht, pf, 0) < 0 &&
        jpeg_failure_fatal(h)) {
        free(px);
        rc = ava_err(err, AVA_EINVALID, "cannot decode JPEG: %s", tjGetErrorStr2(h));
        goto done;
    }
    if (cmyk)
        cmyk_to_rgb(px, npix);
    *out = (struct ava_pixels){w, ht, pf == TJPF_GRAY ? 1 : 3, px};
done:
    tjDestroy(h);
    return rc;
}

/* Decodes a PNG to 8-bit grey or RGB. Alpha is read and then dropped (the colour values are
 * kept, as PIL's convert("RGB") and OpenCV's imread do), not composited. */
static int decode_png(const uint8_t *data, size_t len, struct ava_pixels *out, char *err) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, len))
        return ava_err(err, AVA_EINVALID, "cannot decode PNG: %s", img.message);
    int rc = check_dims((long)img.width, (long)img.height, "PNG", err);
    if (rc < 0) {
        png_image_free(&img);
        return rc;
    }
    bool colour = img.format & PNG_FORMAT_FLAG_COLOR;
    bool alpha = img.format & PNG_FORMAT_FLAG_ALPHA;
    img.format = (colour ? PNG_FORMAT_FLAG_COLOR : 0) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0);
    size_t in_ch = PNG_IMAGE_PIXEL_CHANNELS(img.format), out_ch = colour ? 3 : 1;
    size_t npix = (size_t)img.width * img.height;
    uint8_t *px = ava_xmalloc(npix * in_ch);
    if (!png_image_finish_read(&img, NULL, px, 0, NULL)) {
        free(px);
        return ava_err(err, AVA_EINVALID, "cannot decode PNG: %s", img.message);
    }
    if (alpha)
        for (size_t i = 0; i < npix; i++)
            memmove(px + i * out_ch, px + i * in_ch, out_ch);
    *out = (struct ava_pixels){(int)img.width, (int)img.height, (int)out_ch, px};
    return 0;
}

int ava_image_decode(const uint8_t *data, size_t len, struct ava_pixels *out, char *err) {
    memset(out, 0, sizeof *out);
    switch (ava_image_sniff(data, len)) {
    case AVA_IMAGE_JPEG:
        return decode_jpeg(data, len, out, err);
    case AVA_IMAGE_PNG:
        return decode_png(data, len, out, err);
    default:
        return ava_err(err, AVA_EINVALID, "cannot decode image: neither JPEG nor PNG (%zu bytes)",
                       len);
    }
}

/* Checks pixels handed in for encoding or resizing. */
static int check_pixel_args(const uint8_t *data, int width, int height, int channels, char *err) {
    if (!data || (channels != 1 && channels != 3))
        return ava_err(err, AVA_EINVALID, "image must have 1 or 3 channels and pixel data");
    return check_dims(width, height, "image", err);
}

static int check_pixels(const struct ava_pixels *p, char *err) {
    if (!p)
        return check_pixel_args(NULL, 0, 0, 0, err);
    return check_pixel_args(p->data, p->width, p->height, p->channels, err);
}

/* The checks of a JPEG encoding's arguments. */
static int check_jpeg_args(const uint8_t *data, int width, int height, int channels, int quality,
                           char *err) {
    int rc = check_pixel_args(data, width, height, channels, err);
    if (rc < 0)
        return rc;
    if (quality < 1 || quality > 100)
        return ava_err(err, AVA_EINVALID, "JPEG quality %d is not within 1..100", quality);
    return 0;
}

/* tjCompress2 of checked pixels into *buf (cap bytes, at least tjBufSize's bound; never
 * reallocated): grey stays grey, colour is 4:2:0. */
static int jpeg_compress(tjhandle h, const uint8_t *px, int width, int height, int channels,
                         int quality, unsigned char **buf, unsigned long cap, size_t *len,
                         char *err) {
    int grey = channels == 1;
    unsigned long size = cap;
    if (tjCompress2(h, px, width, 0, height, grey ? TJPF_GRAY : TJPF_RGB, buf, &size,
                    grey ? TJSAMP_GRAY : TJSAMP_420, quality, TJFLAG_NOREALLOC) < 0)
        return ava_err(err, AVA_EINTERNAL, "cannot encode JPEG: %s", tjGetErrorStr2(h));
    *len = size;
    return 0;
}

int ava_image_encode_jpeg(const struct ava_pixels *p, int quality, uint8_t **out, size_t *len,
                          char *err) {
    int rc = check_pixels(p, err);
    if (rc == 0)
        rc = check_jpeg_args(p->data, p->width, p->height, p->channels, quality, err);
    if (rc < 0)
        return rc;
    unsigned long cap = tjBufSize(p->width, p->height, p->channels == 1 ? TJSAMP_GRAY : TJSAMP_420);
    /* our own buffer with NOREALLOC: the caller gets malloc'd memory, no copy needed */
    uint8_t *buf = ava_xmalloc(cap);
    tjhandle h = tjInitCompress();
    if (!h) {
        free(buf);
        return ava_err(err, AVA_EINTERNAL, "cannot encode JPEG: %s", tjGetErrorStr2(NULL));
    }
    size_t size = 0;
    rc =
        jpeg_compress(h, p->data, p->width, p->height, p->channels, quality, &buf, cap, &size, err);
    tjDestroy(h);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = size;
    return 0;
}

struct ava_jpeg_encoder {
    tjhandle h; /* created on first use */
    unsigned char *buf;
    unsigned long cap;
};

struct ava_jpeg_encoder *ava_jpeg_encoder_new(void) {
    return ava_xcalloc(1, sizeof(struct ava_jpeg_encoder));
}

void ava_jpeg_encoder_free(struct ava_jpeg_encoder *e) {
    if (!e)
        return;
    if (e->h)
        tjDestroy(e->h);
    free(e->buf);
    free(e);
}

int ava_jpeg_encoder_encode(struct ava_jpeg_encoder *e, const uint8_t *px, int width, int height,
                            int channels, int quality, const uint8_t **out, size_t *len,
                            char *err) {
    int rc = check_jpeg_args(px, width, height, channels, quality, err);
    if (rc < 0)
        return rc;
    if (!e->h && !(e->h = tjInitCompress()))
        return ava_err(err, AVA_EINTERNAL, "cannot encode JPEG: %s", tjGetErrorStr2(NULL));
    unsigned long cap = tjBufSize(width, height, channels == 1 ? TJSAMP_GRAY : TJSAMP_420);
    if (cap > e->cap) {
        free(e->buf);
        e->buf = ava_xmalloc(cap);
        e->cap = cap;
    }
    if ((rc = jpeg_compress(e->h, px, width, height, channels, quality, &e->buf, e->cap, len,
                            err)) < 0)
        return rc;
    *out = e->buf;
    return 0;
}

int ava_image_encode_png(const struct ava_pixels *p, uint8_t **out, size_t *len, char *err) {
    int rc = check_pixels(p, err);
    if (rc < 0)
        return rc;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)p->width;
    img.height = (png_uint_32)p->height;
    img.format = p->channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    /* the bound lets one compression pass do (the size query would compress twice) */
    size_t cap = PNG_IMAGE_PNG_SIZE_MAX(img), size = cap;
    uint8_t *buf = ava_xmalloc(cap);
    if (!png_image_write_to_memory(&img, buf, &size, 0, p->data, 0, NULL)) {
        free(buf);
        return ava_err(err, AVA_EINTERNAL, "cannot encode PNG: %s", img.message);
    }
    *out = ava_xrealloc(buf, size);
    *len = size;
    return 0;
}

/* One axis of a bilinear resize: for each output position, the two source indices and the
 * weight of the second, with OpenCV's INTER_LINEAR pixel-centre alignment (what im2rec's
 * cv2.resize does), clamped at the edges. */
static void bilinear_axis(int in, int outn, int *i0, int *i1, float *w1) {
    double scale = (double)in / outn;
    for (int o = 0; o < outn; o++) {
        double src = (o + 0.5) * scale - 0.5;
        if (src < 0)
            src = 0;
        int a = (int)src;
        if (a > in - 1)
            a = in - 1;
        i0[o] = a;
        i1[o] = a + 1 < in ? a + 1 : a;
        w1[o] = (float)(src - a);
    }
}

/* Fills out (already sized) from in with bilinear interpolation. */
static void bilinear(const struct ava_pixels *in, struct ava_pixels *out) {
    int ow = out->width, oh = out->height, ch = in->channels;
    int *x0 = ava_xmalloc(sizeof(int) * (size_t)ow), *x1 = ava_xmalloc(sizeof(int) * (size_t)ow);
    int *y0 = ava_xmalloc(sizeof(int) * (size_t)oh), *y1 = ava_xmalloc(sizeof(int) * (size_t)oh);
    float *wx = ava_xmalloc(sizeof(float) * (size_t)ow);
    float *wy = ava_xmalloc(sizeof(float) * (size_t)oh);
    bilinear_axis(in->width, ow, x0, x1, wx);
    bilinear_axis(in->height, oh, y0, y1, wy);
    size_t stride = (size_t)in->width * (size_t)ch;
    for (int y = 0; y < oh; y++) {
        const uint8_t *r0 = in->data + (size_t)y0[y] * stride;
        const uint8_t *r1 = in->data + (size_t)y1[y] * stride;
        uint8_t *dst = out->data + (size_t)y * (size_t)ow * (size_t)ch;
        for (int x = 0; x < ow; x++)
            for (int c = 0; c < ch; c++) {
                size_t a = (size_t)x0[x] * (size_t)ch + (size_t)c;
                size_t b = (size_t)x1[x] * (size_t)ch + (size_t)c;
                float top = r0[a] + (r0[b] - r0[a]) * wx[x];
                float bot = r1[a] + (r1[b] - r1[a]) * wx[x];
                float v = top + (bot - top) * wy[y] + 0.5f;
                dst[(size_t)x * (size_t)ch + (size_t)c] = (uint8_t)(v > 255 ? 255 : v);
            }
    }
    free(x0);
    free(x1);
    free(y0);
    free(y1);
    free(wx);
    free(wy);
}

int ava_image_resize_shorter(const struct ava_pixels *in, int shorter, struct ava_pixels *out,
                             char *err) {
    memset(out, 0, sizeof *out);
    int rc = check_pixels(in, err);
    if (rc < 0)
        return rc;
    if (shorter < 1 || shorter > 65535)
        return ava_err(err, AVA_EINVALID, "resize edge %d is not within 1..65535", shorter);
    /* integer sizes as im2rec computes them: the longer edge is floored */
    long w = in->width, h = in->height, nw, nh;
    if (h > w) {
        nw = shorter;
        nh = h * shorter / w;
    } else {
        nh = shorter;
        nw = w * shorter / h;
    }
    if (nw < 1)
        nw = 1;
    if (nh < 1)
        nh = 1;
    if ((rc = check_dims(nw, nh, "resized image", err)) < 0)
        return rc;
    size_t bytes = (size_t)nw * (size_t)nh * (size_t)in->channels;
    *out = (struct ava_pixels){(int)nw, (int)nh, in->channels, ava_xmalloc(bytes)};
    if (nw == w && nh == h)
        memcpy(out->data, in->data, bytes);
    else
        bilinear(in, out);
    return 0;
}

int ava_image_sample_check(const struct ava_sample *s, int *channels, char *err) {
    int ch = s->pix == AVA_PIX_GRAY ? 1 : s->pix == AVA_PIX_RGB ? 3 : 0;
    if (s->pix == AVA_PIX_ENCODED)
        return ava_err(err, AVA_EINVALID, "sample %s: an encoded image, not pixels", s->name);
    if (ch == 0)
        return ava_err(err, AVA_EINVALID, "sample %s: unknown pixel layout %d", s->name,
                       (int)s->pix);
    int rc = check_dims(s->width, s->height, "sample", err);
    if (rc < 0)
        return rc;
    size_t bytes = (size_t)s->width * (size_t)s->height * (size_t)ch;
    if (s->len != bytes)
        return ava_err(err, AVA_EINVALID, "sample %s: %zu bytes for %dx%dx%d pixels", s->name,
                       s->len, s->width, s->height, ch);
    *channels = ch;
    return 0;
}

int ava_image_from_sample(const struct ava_sample *s, struct ava_pixels *out, char *err) {
    memset(out, 0, sizeof *out);
    if (s->pix == AVA_PIX_ENCODED)
        return ava_image_decode(s->data, s->len, out, err);
    int ch = 0;
    int rc = ava_image_sample_check(s, &ch, err);
    if (rc < 0)
        return rc;
    *out = (struct ava_pixels){s->width, s->height, ch, ava_xmalloc(s->len)};
    memcpy(out->data, s->data, s->len);
    return 0;
}
