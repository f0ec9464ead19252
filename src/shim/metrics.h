/* metrics.h: the shim's metric sources, all ending as line-protocol lines appended to
 * RUN_DIR/metrics (DESIGN §5), which avad ingests by offset:
 *   - the SDK pipe: the entry writes points to AVA_METRICS_FD (fd 3); each line is checked
 *     (a bad line is counted and dropped, the rest of the stream goes on) and stamped;
 *   - the log: the entry's output goes through the image's or training's log parser;
 *   - system samples every few seconds: the run's CPU use and memory. */
#ifndef AVA_SHIM_METRICS_H
#define AVA_SHIM_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AVA_SHIM_METRICS_FD 3   /* where the entry finds the pipe */
#define AVA_SHIM_SAMPLE_MS 5000 /* system samples */
#define AVA_RUNDIR_METRICS "metrics"

struct shim_metrics;

/* Opens RUN_DIR/metrics for appending and sets up the log parser (parser may be NULL; rules
 * are "NAME=REGEX" strings). Creates the SDK pipe: *child_fd is its write end, to be placed
 * at AVA_SHIM_METRICS_FD in the entry and closed by the caller once it has started. */
int shim_metrics_open(const char *run_dir, const char *parser, char *const *rules, size_t nrules,
                      struct shim_metrics **out, int *child_fd, char *err);

/* Samples the GPUs of the run (device indices "0,2"): loads NVML with dlopen when gpus is
 * not empty. Without NVML this does nothing (and says nothing: CPU runs are the norm). */
void shim_metrics_gpus(struct shim_metrics *m, const char *gpus);

/* The read end of the SDK pipe for poll, -1 once it reached EOF. */
int shim_metrics_fd(const struct shim_metrics *m);

/* Reads what the SDK pipe holds and appends its valid points. After a read that found lines it
 * sleeps ~250 us (the SDK's next writes gather meanwhile, without waking the shim for each), so
 * the caller's loop polls again that much later; a read that found nothing returns at once. */
void shim_metrics_read_pipe(struct shim_metrics *m);

/* Feeds bytes of the entry's output to the log parser. */
void shim_metrics_log(struct shim_metrics *m, const char *data, size_t n);

/* Appends the run's CPU use (percent of one CPU since the last sample) and memory (bytes of
 * resident memory of every process of the tree) when AVA_SHIM_SAMPLE_MS have passed, and,
 * through NVML when the run holds GPUs and the driver is there, each GPU's utilisation
 * (sys.gpu<i>.util, percent) and memory in use (sys.gpu<i>.mem_bytes). */
void shim_metrics_sample(struct shim_metrics *m, pid_t shim_pid, int64_t now_mono_ms);

/* When the next system sample is due (monotonic ms). */
int64_t shim_metrics_next_sample(const struct shim_metrics *m);

/* Points written and lines refused so far. */
void shim_metrics_counts(const struct shim_metrics *m, int64_t *written, int64_t *refused);

/* Flushes what is buffered (a last log line without '\n'), closes everything. */
void shim_metrics_close(struct shim_metrics *m);

#endif
