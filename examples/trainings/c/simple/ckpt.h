/* ckpt.h: the example trainer's checkpoint and model files.
 *
 * One little-endian format for both: a 256-byte header, the parameters as float32 in the
 * network's tensor order (net.h), for a checkpoint the SGD momentum buffers likewise, and a
 * CRC-32 of everything before it. Header: magic "AVACNN\r\n", u32 version (1), u32 kind
 * (1 checkpoint, 2 model), u32 header size (256), u32 C H W classes conv1 conv2 hidden,
 * u64 parameter count, u64 epoch, u64 step, u64 PRNG state and stream, f32 mean[3] std[3],
 * then the hyper-parameters (u32 epochs batch, f32 lr momentum wd, u32 schedule, f32
 * lr_factor, u32 lr step count and 8 lr steps, u32 warm-up, u64 seed), zero padding.
 * Files are written atomically (a hidden temporary, fsync, rename, fsync of the folder). */
#ifndef AVA_TRAINER_CKPT_H
#define AVA_TRAINER_CKPT_H

#include "net.h"
#include "train.h"

#include <stddef.h>

enum { TR_CKPT_CHECKPOINT = 1, TR_CKPT_MODEL = 2 };
#define TR_CKPT_VERSION 1
#define TR_CKPT_HEADER 256

/* A file's contents once read. */
struct tr_ckpt {
    int kind; /* TR_CKPT_CHECKPOINT or TR_CKPT_MODEL */
    struct tr_shape shape;
    struct tr_hparams hp;
    struct tr_state st;
    size_t nparams;
    float *params; /* nparams floats */
    float *mom;    /* nparams floats; NULL for a model */
};

/* Writes net's parameters (and, for TR_CKPT_CHECKPOINT, its momentum) with hp and st to path
 * atomically. Returns 0 or AVA_EIO with a message. */
int tr_ckpt_save(const char *path, int kind, const struct tr_net *net, const struct tr_hparams *hp,
                 const struct tr_state *st, char *err);
/* Reads path into *out (tr_ckpt_free). Refuses, with AVA_EINVALID and a message saying why, a
 * file with another magic, version or header size, an invalid shape, a size that does not
 * match its header (truncated or extended) or a wrong checksum; AVA_ENOTFOUND / AVA_EIO when
 * it cannot be read. */
int tr_ckpt_load(const char *path, struct tr_ckpt *out, char *err);
/* Frees what tr_ckpt_load allocated. */
void tr_ckpt_free(struct tr_ckpt *c);
/* Checks that c was made for the shape want; AVA_EINVALID naming both shapes otherwise. */
int tr_ckpt_check_shape(const struct tr_ckpt *c, const struct tr_shape *want, const char *path,
                        char *err);

#endif
