/* pack.h: a dataset's imported samples kept in one file plus an offset index, so that
 * formatting can read any sample by its index (the shuffled order) without re-reading the
 * source. Written once at import (streaming), then read through mmap.
 *
 * Layout of DIR: samples.dat (records: u32 label, u8 pix, u8 0, u16 0, u32 width, u32 height,
 * u32 name_len, u32 data_len, name bytes, data bytes; all little-endian) and samples.idx
 * (u64 offset of each record, little-endian; the count is its size / 8). */
#ifndef AVA_DATA_PACK_H
#define AVA_DATA_PACK_H

#include "sample.h"

#include <stdint.h>

struct ava_pack_writer;
/* Creates DIR/samples.dat and DIR/samples.idx (truncating). */
int ava_pack_writer_open(const char *dir, struct ava_pack_writer **out, char *err);
/* Appends one sample. */
int ava_pack_add(struct ava_pack_writer *w, const struct ava_sample *s, char *err);
/* Flushes, fsyncs and closes; frees w in every case. */
int ava_pack_writer_close(struct ava_pack_writer *w, char *err);

struct ava_pack;
/* Maps DIR's pack read-only. Returns AVA_EINVALID for a corrupt pack (an offset past the end,
 * a record overrunning the file). */
int ava_pack_open(const char *dir, struct ava_pack **out, char *err);
uint32_t ava_pack_count(const struct ava_pack *p);
/* Fills s with sample i (pointers into the mapping, valid until ava_pack_close). */
int ava_pack_get(const struct ava_pack *p, uint32_t i, struct ava_sample *s, char *err);
void ava_pack_close(struct ava_pack *p);

#endif
