/* proc.h: detached helper processes (ava-shim, dataset jobs): spawned in a session of their
 * own with a clean signal state so that they outlive avad, named by "pid:start time" so a
 * restarted avad can find them again (pids are reused), and watched through a pidfd on the
 * event loop. */
#ifndef AVA_EXEC_PROC_H
#define AVA_EXEC_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct event_base;
struct ava_proc;

#define AVA_PROC_ID_MAX 64

/* Called on the loop once the process has ended. The ava_proc is freed right after the
 * callback returns. */
typedef void (*ava_proc_done_cb)(void *ctx);

/* Starts path with argv (argv[0] included) in a new session, stdin /dev/null, stdout and
 * stderr appended to log_path, all signals default, every signal unblocked but SIGTERM, a
 * minimal environment (PATH, LANG), and watches it on base. SIGTERM starts blocked so that a
 * stop sent before the process has set up its handling stays pending instead of killing
 * it: the process unblocks it (or reads it from a signalfd) once it is ready. Fills id
 * ("pid:start", AVA_PROC_ID_MAX bytes). *out (may be NULL) lets the caller signal or drop the
 * watch. Returns 0 or AVA_EIO. */
int ava_proc_spawn(struct event_base *base, const char *path, char *const argv[],
                   const char *log_path, ava_proc_done_cb cb, void *ctx, char *id,
                   struct ava_proc **out, char *err);

/* Watches a process started by an earlier avad, by its id. Returns 0, or AVA_ENOTFOUND when
 * it is gone (its pid is free or now names another process). */
int ava_proc_attach(struct event_base *base, const char *id, ava_proc_done_cb cb, void *ctx,
                    struct ava_proc **out, char *err);

/* Sends sig through the pidfd. Returns 0, or AVA_EIO (a process already gone is not an
 * error). */
int ava_proc_signal(struct ava_proc *p, int sig, char *err);

/* Stops watching (the process goes on) and frees p. NULL is a no-op. */
void ava_proc_free(struct ava_proc *p);

#endif
