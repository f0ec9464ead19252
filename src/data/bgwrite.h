/* bgwrite.h: a background writer of one file, for writers that stream through two buffers
 * (recordio.c's .rec, lmdbbulk.c's data.mdb). The caller fills one buffer while a thread
 * pwrite(2)s the other at its offset, so that the kernel's copy into the page cache overlaps
 * the caller's work. The thread starts on the first ava_bgwrite_submit with every signal
 * blocked (signals stay with the caller's threads); when it cannot start, every write runs
 * inline in the caller from then on. The first failure (an errno) is sticky: nothing is
 * written after it, and every later call reports it. Writeback of what was written is started
 * with sync_file_range(SYNC_FILE_RANGE_WRITE) every few MiB so that a closing fsync finds
 * little left to write; the fsync itself may run on the thread too (ava_bgwrite_sync_start).
 *
 * Threading: a struct ava_bgwrite is driven by one caller thread at a time (none of these
 * functions may run concurrently on the same writer); the background thread is internal. A
 * buffer handed to ava_bgwrite_submit belongs to the writer until the next call that waits
 * for it (the next submit, ava_bgwrite_write, ava_bgwrite_wait, ava_bgwrite_sync_start,
 * ava_bgwrite_sync or ava_bgwrite_free) returns: the caller must not modify or free it before.
 * The file descriptor stays the caller's: the writer never closes it. Internal to src/data. */
#ifndef AVA_DATA_BGWRITE_H
#define AVA_DATA_BGWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One file's background writer: its thread, the job being written, the sticky error and the
 * range written since writeback was last started. */
struct ava_bgwrite;

/* Creates a writer of fd (open for writing; the caller keeps it and closes it after
 * ava_bgwrite_free). kick_bytes: writeback is started each time that many bytes have been
 * written since the last start (0: after every write). threaded: false never starts a thread
 * (every write inline, as when the thread cannot start); true starts it on the first
 * ava_bgwrite_submit. Never fails (aborts when out of memory); the caller frees the result with
 * ava_bgwrite_free. */
struct ava_bgwrite *ava_bgwrite_new(int fd, size_t kick_bytes, bool threaded);

/* Hands n bytes at p, to land at file offset off, to the thread once it is done with the
 * previous job, and returns without waiting for them to be written; without a thread writes
 * them here. p belongs to the writer until the next waiting call returns (see above). Jobs are
 * written in the order handed over. Returns 0, or the sticky errno: of an earlier job (this
 * one is then not written) or, inline, of this one. */
int ava_bgwrite_submit(struct ava_bgwrite *w, const void *p, size_t n, off_t off);

/* Writes n bytes at p to file offset off here, in the caller, once the thread is idle (after
 * every job handed before), and returns when they are written; p is not kept. For writes that
 * need no buffer of their own (a long run straight from the caller's memory, a last header).
 * Returns 0 or the sticky errno (nothing is written when an earlier job failed). */
int ava_bgwrite_write(struct ava_bgwrite *w, const void *p, size_t n, off_t off);

/* Waits until the thread is idle (every job handed over written); returns the sticky errno
 * or 0. Without a thread returns the sticky errno of the inline writes. */
int ava_bgwrite_wait(struct ava_bgwrite *w);

/* Hands an fsync of the file to the thread, after every job handed before, so that the
 * caller's next steps overlap it; ava_bgwrite_sync waits for it and returns its result. A
 * no-op when the thread is not running (ava_bgwrite_sync then fsyncs in the caller) or after a
 * failure (nothing more is done on the file). */
void ava_bgwrite_sync_start(struct ava_bgwrite *w);

/* Makes the file durable: when ava_bgwrite_sync_start handed an fsync to the thread, waits for
 * it and returns its errno or 0; otherwise waits until the thread is idle and fsyncs here,
 * returning fsync's errno or 0 (an earlier write failure is ava_bgwrite_wait's to report, not
 * this function's). */
int ava_bgwrite_sync(struct ava_bgwrite *w);

/* Waits for the job in flight, stops the thread and frees w; the file descriptor stays open.
 * Errors not yet collected are dropped (call ava_bgwrite_wait first to see them). NULL is a
 * no-op. */
void ava_bgwrite_free(struct ava_bgwrite *w);

#endif
