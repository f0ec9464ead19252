/* main.c: ava-shim RUN_DIR: the per-run supervisor's process setup, spec loading and exit
 * record. Exit status: 0 once the exit record is written for a run that got as far as its
 * spec being valid (whatever the run's outcome), 1 when the spec or the shim's own setup is
 * bad (an exit record says why whenever the run dir is writable), 2 for a usage error. */
#include "spec.h"
#include "supervise.h"

#include "../common/err.h"
#include "../common/log.h"
#include "../common/path.h"
#include "../common/rundir.h"
#include "../common/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* The supervisor's warnings go to stderr, which avad points at RUN_DIR/shim.log. */
static void warn_hook(const char *msg) {
    ava_log_warn("%s", msg);
}

/* Makes sure fds 0-2 are open (so no pipe of ours lands there and is clobbered by the
 * child's dup2) and closes every other fd inherited from avad. */
static void setup_fds(void) {
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            open("/dev/null", O_RDWR); /* takes the lowest free number: fd */
    if (close_range(3, ~0U, 0) < 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
            close((int)fd);
    }
}

/* Becomes a session leader and child subreaper (so orphans of the entry, setsid'd ones too,
 * stay below the shim) and routes the signals it acts on through a signalfd. Returns the
 * signalfd or a negative AVA_E* code. */
static int setup_process(char *err) {
    if (setsid() < 0 && errno != EPERM)
        ava_log_warn("setsid: %s", strerror(errno));
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        return ava_err(err, AVA_EINTERNAL, "cannot become a child subreaper: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return ava_err(err, AVA_EINTERNAL, "cannot block signals: %s", strerror(errno));
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return ava_err(err, AVA_EINTERNAL, "cannot create a signalfd: %s", strerror(errno));
    return fd;
}

/* Writes the exit record and the final event. Returns 0, or 1 when the record could not be
 * written (avad then sees a shim that ended without one). */
static int record(const char *run_dir, const struct ava_exit_record *rec) {
    char err[AVA_ERRLEN];
    ava_log_info("run ended: %s (%s)", rec->state, rec->reason);
    if (ava_rundir_write_exit(run_dir, rec, err) < 0) {
        ava_log_error("cannot write the exit record: %s", err);
        return 1;
    }
    if (ava_rundir_append_event(run_dir, rec->ended_at, rec->state, rec->reason, err) < 0)
        ava_log_warn("cannot record the final event: %s", err);
    return 0;
}

/* Records a run that failed before its entry could be considered (bad spec, bad setup). */
static int fail_early(const char *run_dir, const char *msg) {
    struct ava_exit_record rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.state, sizeof rec.state, "failed");
    snprintf(rec.reason, sizeof rec.reason, "start error: %s", msg);
    rec.ended_at = ava_now_ms();
    ava_log_error("%s", rec.reason);
    record(run_dir, &rec);
    return 1;
}

/* getenv with a const result, for ava_shim_spec_inherit. */
static const char *env_lookup(const char *name) {
    return getenv(name);
}

int main(int argc, char **argv) {
    setup_fds();
    ava_log_set_prefix("ava-shim");
    if (argc != 2 || !argv[1][0]) {
        fprintf(stderr, "usage: ava-shim RUN_DIR\n");
        return 2;
    }
    char run_dir[PATH_MAX], err[AVA_ERRLEN], spec_path[AVA_PATH_MAX];
    if (!realpath(argv[1], run_dir)) {
        ava_log_error("run dir %s: %s", argv[1], strerror(errno));
        return 1;
    }
    /* hold no directory of avad's busy; every path the shim uses is absolute */
    if (chdir("/") < 0)
        ava_log_warn("chdir /: %s", strerror(errno));
    int sig_fd = setup_process(err);
    if (sig_fd < 0)
        return fail_early(run_dir, err);
    struct ava_shim_spec *spec;
    if (ava_path_join(spec_path, sizeof spec_path, err, run_dir, AVA_RUNDIR_SPEC, NULL) < 0 ||
        ava_shim_spec_load(spec_path, &spec, err) < 0)
        return fail_early(run_dir, err);
    ava_shim_spec_inherit(spec, env_lookup);
    ava_log_info("training %s run %lld: starting %s", spec->training, (long long)spec->run,
                 spec->entry);
    struct ava_shim_run run = {
        .run_dir = run_dir, .spec = spec, .sig_fd = sig_fd, .warn = warn_hook};
    struct ava_exit_record rec;
    if (ava_shim_supervise(&run, &rec, err) < 0)
        ava_log_error("%s", rec.reason);
    int rc = record(run_dir, &rec);
    ava_shim_spec_free(spec);
    close(sig_fd);
    return rc;
}
