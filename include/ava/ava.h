/* ava.h: libava, the training-side metrics SDK of ava: a training reports points (a metric name,
 * a step, a value, optionally a phase and an epoch) to the run's supervisor. */
#ifndef AVA_AVA_H
#define AVA_AVA_H

/** @file ava.h
 * @brief Reporting training metrics to ava.
 *
 * A training that ava runs finds in its environment @c AVA_METRICS_FD, the number of the
 * write end of a pipe read by the run's supervisor (ava-shim). Each point reported here
 * travels as one InfluxDB line protocol line, for example
 *
 *     accuracy,phase=val,epoch=3 value=0.912,step=1200i 1764130000000000000
 *
 * (measurement = the metric name; tags @c phase and @c epoch, each optional; fields @c value,
 * a float in the shortest form that reads back exactly, and @c step, an integer; the timestamp is
 * the wall clock (CLOCK_REALTIME) in nanoseconds when the point was reported). ava stores the
 * points and draws them as curves (<tt>ava train metrics NAME</tt>).
 *
 * <h3>Outside ava</h3>
 * When @c AVA_METRICS_FD is not set, or does not name a file descriptor open for writing,
 * the first call writes one warning on stderr, for example
 * <tt>ava: AVA_METRICS_FD is not set: metrics are not reported</tt>, and every call after that
 * is a no-op that still checks its arguments (so a training behaves the same inside ava and
 * out). The variable is read once, on the first call of any function below.
 *
 * <h3>Never blocking the training</h3>
 * The descriptor is used non-blocking (when it is a pipe numbered above 2, O_NONBLOCK is set
 * on it on first use; a socket is written with MSG_DONTWAIT). Points go into a queue owned by
 * the library (two buffers of 256 KiB, about 5,000 lines in all). While points come at up to
 * about a thousand a second on average (bursts of 32 included) each is written at once (or,
 * in the ten milliseconds after faster points, while the background thread described below
 * is still awake, by that thread within a millisecond). Faster points are batched, PIPE_BUF
 * bytes (4096 on Linux) of whole lines per write(): the background thread writes what is
 * queued within a millisecond, and a caller writes it out itself only when it finds 128 KiB
 * queued (32 KiB while that thread sleeps), so a training that reports in a tight loop pays
 * under 100 ns per point on its own thread on a 2-vCPU VM (formatting, the clock and the queue
 * ~80 ns, plus its share of the write()s) rather than a microsecond of system calls each; the
 * writes cost the background thread about as much again. When the supervisor reads too
 * slowly, what the queue holds is kept and new points are dropped and counted, never waited for.
 * Once there is room again, the next point is preceded by a point <tt>ava.dropped
 * value=N,step=S</tt>: N points were dropped since the last such report and S is the step of the
 * point that follows, so the curves show what was lost and where.
 *
 * The last points of a batch are written by a small background thread ("ava-flush", all
 * signals blocked) within about a millisecond, and so are lines waiting for a slow supervisor,
 * as soon as it reads again; it stays awake for about ten milliseconds after its last batch
 * (so that points reported a burst per training step are handed over without waking it) and
 * then sleeps until it is needed again. The thread is started only the first time it is needed:
 * when points come faster than about a thousand a second or the supervisor falls behind; a training
 * that reports at ordinary rates never has it. At exit() the queue is written out, waiting at most
 * one second for the supervisor. A process that ends by _exit(), a signal or abort() loses what is
 * still queued (about a millisecond of points while the supervisor keeps up).
 *
 * <h3>Lines are never torn</h3>
 * Every write() carries whole lines and at most PIPE_BUF bytes, which a pipe writes atomically:
 * several threads, several processes sharing the pipe (forked data loader workers), or libava
 * and the Python module @c ava_sdk in one process never interleave within a line.
 *
 * <h3>Threads, signals, fork</h3>
 * Every function is thread-safe. None is async-signal-safe: do not call them from a signal
 * handler. A write that finds the supervisor gone does not raise SIGPIPE in the process
 * (SIGPIPE is blocked around the write and the signal it raised is consumed); reporting then
 * stops (one warning on stderr) and later points are counted as dropped. After fork() the
 * child starts with an empty queue and a drop count of zero (the parent still delivers what it
 * had queued) and keeps reporting to the same descriptor.
 *
 * <h3>Debugging</h3>
 * <tt>AVA_METRICS_FD=2 ./train</tt> prints the lines on stderr. On descriptors 0 to 2, and on
 * anything that is neither a pipe nor a socket, the descriptor's flags are left alone, so
 * writes there may block.
 *
 * Link with <tt>pkg-config --cflags --libs ava</tt> (<tt>--static</tt> for libava.a).
 */

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define AVA_API __attribute__((visibility("default")))
#else
#define AVA_API
#endif

/** Version of this header and library, as "major.minor.patch". */
#define AVA_SDK_VERSION "0.1.0"

/** Longest metric name, in bytes. Names are 1 to 64 bytes of @c [A-Za-z0-9._/-]. */
#define AVA_NAME_MAX 64
/** Longest phase, in bytes. Phases are 1 to 16 bytes of @c [a-z0-9_] ("train", "val", ...). */
#define AVA_PHASE_MAX 16
/** The epoch argument of ava_report_ex() that means "no epoch". */
#define AVA_NO_EPOCH (-1)

/** @brief Reports one point, tags given as a string.
 *
 * @param[in] name  The metric, 1 to #AVA_NAME_MAX bytes of @c [A-Za-z0-9._/-],
 *                  e.g. "accuracy", "loss", "learning_rate", "train/top5".
 * @param[in] step  The x coordinate of the point (batch, iteration...), 0 or more.
 * @param[in] value The y coordinate, finite (NaN and infinities are refused).
 * @param[in] tags  NULL or "" for none; otherwise comma-separated @c key=value pairs, each
 *                  key at most once, keys @c phase (1 to #AVA_PHASE_MAX bytes of
 *                  @c [a-z0-9_]) and @c epoch (decimal digits, a value 0 to INT64_MAX), in
 *                  either order: "phase=val", "epoch=3", "phase=val,epoch=3". No spaces,
 *                  no other keys. The line always carries phase before epoch.
 * @return 0 when the point was queued or written, and also when it was dropped because the
 *         supervisor reads too slowly or is gone (see ava_dropped_total()), and outside ava.
 *         -1 with errno EINVAL when an argument is invalid; nothing is queued then.
 *
 * Thread-safe. Never blocks on the supervisor (only, briefly, on other threads reporting at
 * the same moment). The first call of the process reads @c AVA_METRICS_FD (see above).
 */
AVA_API int ava_report(const char *name, int64_t step, double value, const char *tags);

/** @brief Reports one point, tags given as arguments (no string to build or parse).
 *
 * @param[in] name  As for ava_report().
 * @param[in] step  As for ava_report().
 * @param[in] value As for ava_report().
 * @param[in] phase NULL or "" for none, else 1 to #AVA_PHASE_MAX bytes of @c [a-z0-9_].
 * @param[in] epoch #AVA_NO_EPOCH (-1) for none, else 0 or more.
 * @return As for ava_report(): 0, or -1 with errno EINVAL (other negative epochs included).
 *
 * Thread-safe; never blocks on the supervisor.
 */
AVA_API int ava_report_ex(const char *name, int64_t step, double value, const char *phase,
                          int64_t epoch);

/** @brief Writes the queued lines now, as far as the supervisor takes them without waiting.
 *
 * Not needed for delivery (queued lines go out within about a millisecond, and at exit());
 * useful before a point where the process may be killed, or to make a test deterministic.
 *
 * @return 0 when nothing is left queued (also outside ava); -1 with errno EAGAIN when lines
 *         are still queued because the supervisor reads too slowly (they go out once it
 *         catches up); -1 with errno EPIPE when the supervisor is gone and reporting stopped.
 *
 * Thread-safe; never blocks on the supervisor.
 */
AVA_API int ava_flush(void);

/** @brief The number of points dropped since the process started (or, in a forked child,
 * since the fork): points reported while the queue was full or after the supervisor was
 * gone. Invalid arguments and calls outside ava do not count. Thread-safe; lock-free. */
AVA_API uint64_t ava_dropped_total(void);

/** @brief Whether points are being reported: 1 when @c AVA_METRICS_FD names a usable
 * descriptor and the supervisor was not found gone, 0 otherwise (outside ava). The first call
 * of the process reads the variable and may print the warning described above. Lets a
 * training skip computing metrics nobody receives. Thread-safe. */
AVA_API int ava_enabled(void);

#ifdef __cplusplus
}
#endif

#endif
