/* state.h: the run state machine: the eight state strings (written once, X-macro) and the
 * transitions allowed between them (DESIGN §2). */
#ifndef AVA_SCHED_STATE_H
#define AVA_SCHED_STATE_H

#include <stdbool.h>

/* X(enum suffix, string stored in the database and shown everywhere) */
#define AVA_RUN_STATES(X)                                                                          \
    X(CREATING, "creating")                                                                        \
    X(QUEUED, "queued")                                                                            \
    X(RUNNING, "running")                                                                          \
    X(STOPPING, "stopping")                                                                        \
    X(SUCCEEDED, "succeeded")                                                                      \
    X(FAILED, "failed")                                                                            \
    X(STOPPED, "stopped")                                                                          \
    X(TIMED_OUT, "timed_out")

enum ava_run_state {
#define AVA_X(name, str) AVA_RUN_##name,
    AVA_RUN_STATES(AVA_X)
#undef AVA_X
        AVA_RUN_STATE_COUNT
};

/* The state's string; "unknown" for an out-of-range value. */
const char *ava_run_state_str(enum ava_run_state s);
/* Parses a state string. Returns 0 or AVA_EINVALID. */
int ava_run_state_parse(const char *s, enum ava_run_state *out);
/* True for succeeded, failed, stopped, timed_out: the run holds no resources. */
bool ava_run_state_terminal(enum ava_run_state s);
/* True for queued-or-later states that still need or hold resources (queued, running,
 * stopping) or are being prepared (creating). */
bool ava_run_state_active(enum ava_run_state s);
/* True when the state machine allows from -> to. */
bool ava_run_state_can_move(enum ava_run_state from, enum ava_run_state to);

#endif
