/* data.h: the example trainer's data: a formatted set (RecordIO data.rec or LMDB data.mdb)
 * loaded whole into memory as 8-bit planar images, the per-channel normalisation, and the
 * assembly of a normalised float batch in the network's CNHW layout. */
#ifndef AVA_TRAINER_DATA_H
#define AVA_TRAINER_DATA_H

#include <stddef.h>
#include <stdint.h>

/* A loaded set: n images of C x H x W bytes each, planar (channel by channel), RGB order. */
struct tr_set {
    int n, C, H, W;
    uint8_t *pix;
    int32_t *labels;
    int max_label;      /* -1 for an empty set */
    const char *format; /* "recordio" or "lmdb" */
};

/* The per-channel normalisation x' = (x / 255 - mean[c]) / std[c]. */
struct tr_norm {
    int C;
    float mean[3], std[3];
};

/* Loads the set in dir: dir/data.rec (RecordIO: IRHeader + payload) or dir/data.mdb (LMDB
 * of Caffe Datums). Payloads are JPEG, PNG or raw pixels (RecordIO raw: row-major
 * interleaved, shape from the length, see tr_raw_shape; LMDB raw: the Datum's planar BGR).
 * Every image must have the shape of the first. limit > 0 keeps only the first limit
 * samples. Returns 0 or a negative AVA_E* code with a message naming the set and record. */
int tr_set_load(const char *dir, int limit, struct tr_set *set, char *err);
/* Frees a loaded set; a zeroed set is a no-op. */
void tr_set_free(struct tr_set *set);

/* The shape of a raw RecordIO payload of len bytes: grey square (len = s * s), else RGB
 * square (len = 3 s s). Returns 0, or -1 when len is neither. */
int tr_raw_shape(size_t len, int *C, int *H, int *W);

/* Mean and standard deviation of each channel over the set (pixel values / 255). */
void tr_norm_compute(const struct tr_set *set, struct tr_norm *norm);

/* Writes the N samples idx[0..N-1] of set, normalised, into x as C x N x H x W floats and
 * their labels into labels. */
void tr_set_batch(const struct tr_set *set, const struct tr_norm *norm, const uint32_t *idx, int N,
                  float *x, int32_t *labels);

#endif
