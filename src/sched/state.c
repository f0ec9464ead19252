/* state.c: state names and the transition table of DESIGN §2. */
#include "state.h"

#include "../common/err.h"

#include <string.h>

static const char *const names[] = {
#define AVA_X(name, str) str,
    AVA_RUN_STATES(AVA_X)
#undef AVA_X
};

const char *ava_run_state_str(enum ava_run_state s) {
    return (unsigned)s < AVA_RUN_STATE_COUNT ? names[s] : "unknown";
}

int ava_run_state_parse(const char *s, enum ava_run_state *out) {
    for (int i = 0; i < AVA_RUN_STATE_COUNT; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = (enum ava_run_state)i;
            return 0;
        }
    return AVA_EINVALID;
}

bool ava_run_state_terminal(enum ava_run_state s) {
    return s == AVA_RUN_SUCCEEDED || s == AVA_RUN_FAILED || s == AVA_RUN_STOPPED ||
           s == AVA_RUN_TIMED_OUT;
}

bool ava_run_state_active(enum ava_run_state s) {
    return (unsigned)s < AVA_RUN_STATE_COUNT && !ava_run_state_terminal(s);
}

bool ava_run_state_can_move(enum ava_run_state from, enum ava_run_state to) {
    switch (from) {
    case AVA_RUN_CREATING:
        /* a run that cannot even be prepared fails; stop before queueing stops it */
        return to == AVA_RUN_QUEUED || to == AVA_RUN_FAILED || to == AVA_RUN_STOPPED;
    case AVA_RUN_QUEUED:
        return to == AVA_RUN_RUNNING || to == AVA_RUN_STOPPED || to == AVA_RUN_FAILED;
    case AVA_RUN_RUNNING:
        return to == AVA_RUN_STOPPING || ava_run_state_terminal(to);
    case AVA_RUN_STOPPING:
        return ava_run_state_terminal(to);
    default:
        return false; /* terminal states are final; a restart makes a new run */
    }
}
