/* supervise.h: one run from start to outcome: prepare the log and output dir, start the
 * entry, copy its output into the log, enforce stop requests and the max runtime, clean up
 * the whole process tree, and say how the run ended. */
#ifndef AVA_SHIM_SUPERVISE_H
#define AVA_SHIM_SUPERVISE_H

#include "../common/rundir.h"
#include "spec.h"

/* What the supervisor works with. The caller has made the shim a child subreaper, blocked
 * SIGCHLD, SIGTERM, SIGINT and SIGHUP, and opened sig_fd as a signalfd for them. */
struct ava_shim_run {
    const char *run_dir;
    const struct ava_shim_spec *spec;
    int sig_fd;
    /* called with one line for problems that do not end the run (a log write failing, the
     * status file not written); may be NULL */
    void (*warn)(const char *msg);
};

/* Runs the entry to its end. Fills *rec (the caller writes it with ava_rundir_write_exit)
 * in every case: returns 0 when the entry ran, or a negative AVA_E* code when it could not
 * be started; then rec says failed, "start error: ..." (exit code 127 when execve failed)
 * and err holds the same message. Appends the "running" and "stopping" events to the run
 * dir and writes the status file once the entry runs. Every child of the shim is reaped before
 * it returns. */
int ava_shim_supervise(const struct ava_shim_run *run, struct ava_exit_record *rec, char *err);

/* Fills state, exit_code, signal and a reason from a wait status, for an entry that ended
 * on its own: succeeded "exit code 0", failed "exit code N", failed "killed by signal S
 * (SIGNAME)" with exit code 128+S. */
void ava_shim_outcome_from_status(int status, struct ava_exit_record *rec);

#endif
