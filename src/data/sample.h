/* sample.h: one labelled sample, as importers produce it, the dataset pack stores it and the
 * formatters read it. Borrowed memory: a sample's pointers stay valid only until the next
 * call on whatever produced it. */
#ifndef AVA_DATA_SAMPLE_H
#define AVA_DATA_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* How a sample's bytes hold its image. */
enum ava_pix {
    AVA_PIX_ENCODED = 0, /* an image file as is (JPEG or PNG); width/height may be 0 */
    AVA_PIX_GRAY = 1,    /* 8-bit grey, row-major, width*height bytes */
    AVA_PIX_RGB = 2,     /* 8-bit RGB interleaved, row-major, width*height*3 bytes */
};

struct ava_sample {
    int label;        /* class index, 0 <= label < number of classes */
    const char *name; /* relative path ("cat/001.jpg" or "train/00042.png"): no "..", not
                         absolute, no newline or tab; used in keys and lists */
    enum ava_pix pix;
    int width, height; /* for GRAY/RGB; for ENCODED when known, else 0 */
    const uint8_t *data;
    size_t len;
};

#define AVA_SAMPLE_NAME_MAX 1024
#define AVA_CLASS_NAME_MAX 256
#define AVA_CLASSES_MAX 100000

#endif
