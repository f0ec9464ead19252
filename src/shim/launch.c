/* launch.c: fork + execve of the entry with an errno pipe for start failures. */
#include "launch.h"

#include "../common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Which step of the child's setup failed; sent with errno through the report pipe. */
enum launch_stage { STAGE_DUP = 1, STAGE_CHDIR, STAGE_EXEC };

struct launch_report {
    int stage;
    int err;
};

/* glibc refuses to touch the signals it reserves for threads (32 and 33), yet an ancestor
 * may have left them ignored and exec keeps that: reset them with the system call itself. */
static void reset_reserved_signal(int sig) {
    struct {
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        uint64_t mask;
    } ksa = {SIG_DFL, 0, NULL, 0};
    syscall(SYS_rt_sigaction, sig, &ksa, NULL, sizeof ksa.mask);
}

/* Runs in the forked child: only async-signal-safe calls. Never returns. */
static void child_exec(const struct ava_launch *l, int report_fd) {
    struct launch_report rep = {0, 0};
    /* the shim blocks the signals it reads through signalfd and a parent may have ignored
     * some (SIGPIPE): the entry starts from a clean slate */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigaction(sig, &sa, NULL) < 0)
            reset_reserved_signal(sig);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    if (dup2(l->stdin_fd, 0) < 0 || dup2(l->output_fd, 1) < 0 || dup2(l->output_fd, 2) < 0 ||
        (l->metrics_fd >= 0 && dup2(l->metrics_fd, 3) < 0)) {
        rep.stage = STAGE_DUP;
    } else if (chdir(l->cwd) < 0) {
        rep.stage = STAGE_CHDIR;
    } else {
        execve(l->entry, l->argv, l->envp);
        rep.stage = STAGE_EXEC;
    }
    rep.err = errno;
    ssize_t w;
    do
        w = write(report_fd, &rep, sizeof rep);
    while (w < 0 && errno == EINTR);
    _exit(127);
}

/* Reads the child's report: 0 when execve succeeded (EOF), else fills rep and returns 1. */
static int read_report(int fd, struct launch_report *rep) {
    size_t got = 0;
    while (got < sizeof *rep) {
        ssize_t n = read(fd, (char *)rep + got, sizeof *rep - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got == sizeof *rep ? 1 : 0;
}

int ava_shim_launch(const struct ava_launch *l, pid_t *pid, char *err) {
    int rp[2];
    *pid = 0;
    if (pipe2(rp, O_CLOEXEC) < 0)
        return ava_err(err, AVA_EIO, "cannot create a pipe: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        close(rp[0]);
        close(rp[1]);
        return ava_err(err, AVA_EIO, "cannot fork: %s", strerror(e));
    }
    if (child == 0) {
        close(rp[0]);
        child_exec(l, rp[1]);
    }
    close(rp[1]);
    /* also set here: a signal to the group must not race the child's own setpgid */
    setpgid(child, child);
    struct launch_report rep;
    int failed = read_report(rp[0], &rep);
    close(rp[0]);
    if (!failed) {
        *pid = child;
        return 0;
    }
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    switch (rep.stage) {
    case STAGE_CHDIR:
        return ava_err(err, AVA_EINVALID, "cannot change to directory %s: %s", l->cwd,
                       strerror(rep.err));
    case STAGE_EXEC:
        return ava_err(err, AVA_EINVALID, "cannot execute %s: %s", l->entry, strerror(rep.err));
    default:
        return ava_err(err, AVA_EINVALID, "cannot set up the standard streams: %s",
                       strerror(rep.err));
    }
}
