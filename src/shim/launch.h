/* launch.h: starting the entry: fork, set up the child, execve (never a shell). */
#ifndef AVA_SHIM_LAUNCH_H
#define AVA_SHIM_LAUNCH_H

#include <sys/types.h>

/* What to start and where its standard streams go. All fds are the caller's, O_CLOEXEC. */
struct ava_launch {
    const char *entry; /* absolute path passed to execve */
    char *const *argv; /* NULL-terminated, argv[0] = entry */
    char *const *envp; /* NULL-terminated "K=V" list: the whole environment */
    const char *cwd;   /* the child's working directory */
    int stdin_fd;      /* becomes fd 0 (/dev/null) */
    int output_fd;     /* becomes fds 1 and 2: one pipe keeps stdout/stderr in order */
    int metrics_fd;    /* becomes fd 3 (AVA_METRICS_FD), or -1 for none */
};

/* Forks the entry in its own process group with default signal dispositions and an empty
 * signal mask, and waits until execve has either succeeded or failed (a close-on-exec pipe
 * carries the child's errno). On success fills *pid and returns 0. When the child cannot
 * start (chdir, dup2 or execve failed) it is reaped, err says why ("cannot execute
 * /x: No such file or directory") and AVA_EINVALID is returned; AVA_EIO when fork fails. */
int ava_shim_launch(const struct ava_launch *l, pid_t *pid, char *err);

#endif
