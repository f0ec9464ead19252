/* pack.h: a dataset's imported samples kept in one file plus an offset index, so that
 * formatting can read any sample by its index (the shuffled order) without re-reading the
 * source. Written once at import (streaming), then read through mmap.
 *
 * Layout of DIR: samples.dat (records: u32 label, u8 pix, u8 0, u16 0, u32 width, u32 height,
 * u32 name_len, u32 data_len, name bytes, one 0 byte, data bytes; all little-endian; name_len
 * counts the name without its NUL, which is stored so that a reader hands out the name in
 * place) and samples.idx (u64 offset of each record, little-endian; the count is its size / 8).
 * Records are unaligned and back to back, in the order they were added. */
#ifndef AVA_DATA_PACK_H
#define AVA_DATA_PACK_H

#include "sample.h"

#include <stdint.h>

struct ava_pack_writer;
/* Creates DIR/samples.dat and DIR/samples.idx (truncating). */
int ava_pack_writer_open(const char *dir, struct ava_pack_writer **out, char *err);
/* Appends one sample (name 1..AVA_SAMPLE_NAME_MAX bytes, label >= 0, len < 4 GiB; else
 * AVA_EINVALID / AVA_ETOOLARGE). AVA_EIO on a write error, after which the writer only fails. */
int ava_pack_add(struct ava_pack_writer *w, const struct ava_sample *s, char *err);
/* Flushes, fsyncs and closes; frees w in every case. */
int ava_pack_writer_close(struct ava_pack_writer *w, char *err);

struct ava_pack;
/* Maps DIR's pack read-only (an empty pack is fine). Returns AVA_ENOTFOUND when a file is
 * missing, AVA_EINVALID when samples.idx's size is not a multiple of 8. Records are checked
 * lazily, by ava_pack_get. */
int ava_pack_open(const char *dir, struct ava_pack **out, char *err);
/* Number of samples (samples.idx size / 8). */
uint32_t ava_pack_count(const struct ava_pack *p);
/* Fills s with sample i (pointers into the mapping, valid until ava_pack_close; s->name is
 * NUL-terminated). Returns AVA_EINVALID, naming i, for i out of range or a corrupt record (an
 * offset past the end, a record overrunning the file, a bad name length or pixel kind). */
int ava_pack_get(const struct ava_pack *p, uint32_t i, struct ava_sample *s, char *err);
/* Unmaps and frees p; NULL is a no-op. */
void ava_pack_close(struct ava_pack *p);

#endif
