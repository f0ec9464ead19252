/* cmd.h: running a workload manager's command-line tools (sbatch, squeue, scancel, sinfo,
 * scontrol) from avad: execve of a fixed argv (no shell), stdin /dev/null, stdout captured up
 * to a bound, stderr's first line kept for the error message, a time limit after which the
 * child is killed. Two forms: blocking (for the short commands a request waits for anyway)
 * and on the event loop (for polling, so the loop serves requests meanwhile). */
#ifndef AVA_EXEC_CMD_H
#define AVA_EXEC_CMD_H

#include "../common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define AVA_CMD_OUT_MAX (64u << 20) /* most stdout bytes kept; the rest is an error */

/* How a command ended. */
struct ava_cmd_result {
    int status;         /* wait status (valid when spawned is true) */
    bool spawned;       /* the program could be started */
    bool timed_out;     /* it ran past the limit and was killed */
    bool truncated;     /* stdout passed AVA_CMD_OUT_MAX */
    struct ava_buf out; /* stdout (owned: ava_buf_free) */
    char err_line[256]; /* the first non-empty line of stderr, "" when none */
};

/* True when r is a clean exit with status 0 and complete output. */
bool ava_cmd_ok(const struct ava_cmd_result *r);

/* Describes a failed result in err ("sbatch: exit code 1: sbatch: error: Batch job
 * submission failed: ...") and returns AVA_EUNAVAILABLE (AVA_EIO when it could not start). */
int ava_cmd_fail(const char *what, const struct ava_cmd_result *r, char *err);

/* Runs argv[0] (looked up in PATH when it holds no '/') and waits up to timeout_ms. Fills *r
 * (whose out the caller frees even on failure). Returns 0 when the command ran (see r for
 * how it ended), AVA_EIO when it could not be started. */
int ava_cmd_run(char *const argv[], int64_t timeout_ms, struct ava_cmd_result *r, char *err);

/* Called on the loop when an asynchronous command has ended; r is freed after the call. */
typedef void (*ava_cmd_done_cb)(void *ctx, struct ava_cmd_result *r);

/* Starts argv on base and calls cb once it has ended (or was killed after timeout_ms).
 * Returns 0 (cb will be called exactly once, never from inside this call) or AVA_EIO. */
int ava_cmd_start(struct event_base *base, char *const argv[], int64_t timeout_ms,
                  ava_cmd_done_cb cb, void *ctx, char *err);

#endif
