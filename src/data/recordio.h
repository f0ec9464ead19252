/* recordio.h: MXNet RecordIO writing (.rec + .idx), byte for byte what dmlc-core's readers
 * expect (see the project's formats reference): records of magic + lrec + data + padding,
 * the magic word escaped by splitting into parts, an IRHeader before image payloads.
 * Also a reader, used by tests and by the example trainer. */
#ifndef AVA_DATA_RECORDIO_H
#define AVA_DATA_RECORDIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AVA_RECORDIO_MAGIC 0xCED7230Au
#define AVA_RECORDIO_MAX_LEN ((1u << 29) - 1) /* a record must be shorter than 2^29 bytes */
#define AVA_IRHEADER_SIZE 24

/* MXNet's image record header (packed little-endian u32 flag, f32 label, u64 id, u64 id2). */
struct ava_irheader {
    uint32_t flag; /* 0 = one label in `label`; n = n float labels follow the header */
    float label;
    uint64_t id;
    uint64_t id2;
};

/* Writes h as 24 little-endian bytes into out. */
void ava_irheader_pack(const struct ava_irheader *h, uint8_t out[AVA_IRHEADER_SIZE]);
/* Reads 24 bytes into h. Returns 0, or AVA_EINVALID when len < 24. */
int ava_irheader_unpack(const uint8_t *p, size_t len, struct ava_irheader *h);

struct ava_recordio_writer;

/* Creates rec_path and idx_path (both truncated). *out: ava_recordio_writer_close. */
int ava_recordio_writer_open(const char *rec_path, const char *idx_path,
                             struct ava_recordio_writer **out, char *err);
/* Appends one record (data of len bytes, len < 2^29) and its "key\toffset\n" idx line
 * (decimal, offset = where the record's first part begins). A magic word at a 4-byte-aligned
 * offset of data is escaped exactly as dmlc-core's RecordIOWriter::WriteRecord does: dropped,
 * with the record split into parts (cflag 1 first, 2 middle, 3 last; 0 = unsplit), each part
 * "u32le magic, u32le cflag << 29 | part length, bytes", zero padding to 4 bytes at the end.
 * The length is checked before data is read. Returns 0, AVA_ETOOLARGE for a record of 2^29
 * bytes or more (nothing written), AVA_EIO (the writer then refuses further records). */
int ava_recordio_write(struct ava_recordio_writer *w, uint64_t key, const void *data, size_t len,
                       char *err);
/* Appends an image record: IRHeader {flag 0, label, id, 0} followed by payload, escaped as
 * one record (24 + len bytes must stay under 2^29). */
int ava_recordio_write_image(struct ava_recordio_writer *w, uint64_t key, float label, uint64_t id,
                             const void *payload, size_t len, char *err);
/* Note: the .rec is written by a background thread (double-buffered), so a write error may
 * be reported by a later ava_recordio_write or by close; the writer refuses further records
 * after one. */

/* Bytes written to the .rec so far. */
uint64_t ava_recordio_writer_bytes(const struct ava_recordio_writer *w);
/* Flushes, fsyncs and closes both files. Returns 0 or AVA_EIO. Frees w in every case. */
int ava_recordio_writer_close(struct ava_recordio_writer *w, char *err);

struct ava_recordio_reader;
/* Opens a .rec for sequential reading. Returns 0, AVA_ENOTFOUND, AVA_EINVALID (not a regular
 * file), AVA_EIO. *out: ava_recordio_reader_close. */
int ava_recordio_reader_open(const char *rec_path, struct ava_recordio_reader **out, char *err);
/* Reads the next whole record (parts joined with the magic put back) into a buffer owned by
 * the reader (valid until the next call). Returns 1, 0 at the end, or AVA_EINVALID for a
 * corrupt file (bad magic, truncated record, bad part sequence), the message naming the byte
 * offset; AVA_EIO for a read error. */
int ava_recordio_read(struct ava_recordio_reader *r, const uint8_t **data, size_t *len, char *err);
/* Moves to a byte offset taken from the .idx. AVA_EINVALID for an offset that is not a
 * multiple of 4 or lies past the end. */
int ava_recordio_seek(struct ava_recordio_reader *r, uint64_t offset, char *err);
/* Closes and frees r; NULL is a no-op. */
void ava_recordio_reader_close(struct ava_recordio_reader *r);

#endif
