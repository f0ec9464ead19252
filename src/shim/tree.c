/* tree.c: descendant sweeps over /proc and the signals they send (see tree.h). */
#include "tree.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Index of pid in the sorted set, or where it would be inserted. */
static size_t pidset_pos(const struct ava_pidset *s, pid_t pid) {
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid] < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool ava_pidset_has(const struct ava_pidset *s, pid_t pid) {
    size_t i = pidset_pos(s, pid);
    return i < s->n && s->v[i] == pid;
}

bool ava_pidset_add(struct ava_pidset *s, pid_t pid) {
    size_t i = pidset_pos(s, pid);
    if (i < s->n && s->v[i] == pid)
        return false;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = ava_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof *s->v);
    s->v[i] = pid;
    s->n++;
    return true;
}

void ava_pidset_free(struct ava_pidset *s) {
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

int ava_tree_parse_stat(const char *text, char *state, pid_t *ppid) {
    /* fields resume after the last ')': the command name may contain anything else */
    const char *p = strrchr(text, ')');
    if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
        return AVA_EINVALID;
    char st = p[2];
    char *end;
    errno = 0;
    long v = strtol(p + 4, &end, 10);
    if (end == p + 4 || (*end != ' ' && *end != '\0' && *end != '\n') || errno || v < 0 ||
        v > 0x7fffffff)
        return AVA_EINVALID;
    *state = st;
    *ppid = (pid_t)v;
    return 0;
}

/* qsort comparator: by pid. */
static int cmp_pid(const void *a, const void *b) {
    pid_t x = ((const struct ava_proc_entry *)a)->pid, y = ((const struct ava_proc_entry *)b)->pid;
    return (x > y) - (x < y);
}

/* Index of pid in procs sorted by pid, or -1. */
static long find_proc(const struct ava_proc_entry *procs, size_t n, pid_t pid) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (procs[mid].pid == pid)
            return (long)mid;
        if (procs[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

size_t ava_tree_mark_descendants(struct ava_proc_entry *procs, size_t n, pid_t root) {
    if (n == 0)
        return 0;
    qsort(procs, n, sizeof *procs, cmp_pid);
    /* memo: 0 unknown, 1 descendant, 2 not; a chain is walked once and its result stored on
     * every entry of the chain, so the whole table costs O(n log n) */
    unsigned char *memo = ava_xcalloc(n, 1);
    long *chain = ava_xmalloc(n * sizeof *chain);
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        long j = (long)i;
        unsigned char verdict = 2;
        /* the length bound guards against a cycle in a torn (non-atomic) /proc snapshot */
        while (len < n) {
            if (memo[j]) {
                verdict = memo[j];
                break;
            }
            chain[len++] = j;
            if (procs[j].pid == root)
                break; /* root is not its own descendant; its ancestors are not either */
            if (procs[j].ppid == root) {
                verdict = 1;
                break;
            }
            j = find_proc(procs, n, procs[j].ppid);
            if (j < 0)
                break;
        }
        for (size_t k = 0; k < len; k++)
            memo[chain[k]] = procs[chain[k]].pid == root ? 2 : verdict;
    }
    for (size_t i = 0; i < n; i++) {
        procs[i].desc = memo[i] == 1;
        count += procs[i].desc;
    }
    free(chain);
    free(memo);
    return count;
}

/* Reads /proc/<name>/stat through the /proc directory fd; 0 or -1 when it vanished. */
static int read_one(int procfd, const char *name, struct ava_proc_entry *e) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "%s/stat", name);
    int fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0'; /* only fields 1-4 are needed: 511 bytes always hold them */
    e->pid = (pid_t)atoi(name);
    e->desc = false;
    return ava_tree_parse_stat(buf, &e->state, &e->ppid) < 0 ? -1 : 0;
}

int ava_tree_snapshot(struct ava_proc_entry **out, size_t *n, char *err) {
    DIR *d = opendir("/proc");
    if (!d)
        return ava_err(err, AVA_EIO, "cannot read /proc: %s", strerror(errno));
    size_t cnt = 0, cap = 256;
    struct ava_proc_entry *v = ava_xmalloc(cap * sizeof *v);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
            strspn(de->d_name, "0123456789") != strlen(de->d_name))
            continue;
        if (cnt == cap) {
            cap *= 2;
            v = ava_xrealloc(v, cap * sizeof *v);
        }
        if (read_one(dirfd(d), de->d_name, &v[cnt]) == 0)
            cnt++;
    }
    closedir(d);
    *out = v;
    *n = cnt;
    return 0;
}

int ava_tree_signal(pid_t root, int sig, struct ava_pidset *seen, bool skip_seen, char *err) {
    struct ava_proc_entry *procs;
    size_t n;
    int r = ava_tree_snapshot(&procs, &n, err);
    if (r < 0)
        return r;
    ava_tree_mark_descendants(procs, n, root);
    int fresh = 0;
    for (size_t i = 0; i < n; i++) {
        if (!procs[i].desc)
            continue;
        bool live = procs[i].state != 'Z' && procs[i].state != 'X' && procs[i].state != 'x';
        if (live && seen && skip_seen && ava_pidset_has(seen, procs[i].pid))
            continue;
        kill(procs[i].pid, sig);
        if (sig == SIGTERM)
            kill(procs[i].pid, SIGCONT);
        if (live && (!seen || ava_pidset_add(seen, procs[i].pid)))
            fresh++;
    }
    free(procs);
    return fresh;
}
