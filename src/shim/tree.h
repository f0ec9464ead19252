/* tree.h: the processes below the shim: finding them in /proc and signalling them.
 *
 * The shim is a child subreaper, so every process started below it, including ones that
 * called setsid() or double-forked, keeps a parent chain (PPid) that ends at the shim until
 * it is reaped. kill(-pgid) would miss the setsid() ones; a sweep over /proc does not. A
 * process that forks between the /proc read and the kill is caught by the next sweep, so
 * callers sweep until the tree is empty. */
#ifndef AVA_SHIM_TREE_H
#define AVA_SHIM_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One process as seen in /proc. */
struct ava_proc_entry {
    pid_t pid;
    pid_t ppid;
    char state; /* field 3 of /proc/<pid>/stat: R, S, D, Z, ... */
    bool desc;  /* set by ava_tree_mark_descendants */
};

/* A set of pids (sorted array). Lifecycle: struct ava_pidset s = {0}; ... ava_pidset_free. */
struct ava_pidset {
    pid_t *v;
    size_t n, cap;
};

/* Adds pid; true when it was not in the set before. */
bool ava_pidset_add(struct ava_pidset *s, pid_t pid);
/* True when pid is in the set. */
bool ava_pidset_has(const struct ava_pidset *s, pid_t pid);
/* Frees the memory; the set is empty and reusable afterwards. */
void ava_pidset_free(struct ava_pidset *s);

/* Parses the text of /proc/<pid>/stat (the command name may hold spaces and ')'): fills the
 * state (field 3) and the parent pid (field 4). Returns 0 or AVA_EINVALID. */
int ava_tree_parse_stat(const char *text, char *state, pid_t *ppid);

/* Sets desc on every entry whose parent chain reaches root (root itself excluded). Sorts
 * procs by pid. Returns the number of descendants. */
size_t ava_tree_mark_descendants(struct ava_proc_entry *procs, size_t n, pid_t root);

/* Reads every process in /proc. *out (malloc'd) belongs to the caller, who frees it.
 * Processes that vanish while being read are skipped. Returns 0 or AVA_EIO. */
int ava_tree_snapshot(struct ava_proc_entry **out, size_t *n, char *err);

/* One sweep: sends sig to every descendant of root (zombies too: harmless, and a zombie
 * thread-group leader may still have live threads). With SIGTERM a SIGCONT follows, so a
 * stopped process gets to handle it. Live (non-zombie) descendants are added to seen (may be
 * NULL); with skip_seen those already in seen are left alone. Returns the number of live
 * descendants that were new to seen (all of them when seen is NULL), or AVA_EIO. */
int ava_tree_signal(pid_t root, int sig, struct ava_pidset *seen, bool skip_seen, char *err);

#endif
