/* rundir.c: reading and writing the run directory's key=value files (see rundir.h). */
#include "rundir.h"

#include "buf.h"
#include "err.h"
#include "file.h"
#include "path.h"
#include "strutil.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNDIR_FILE_MAX 8192

/* Calls fn(ctx, key, value) for each "key=value" line of text; rejects other lines. */
static int parse_kv(const char *text, int (*fn)(void *, const char *, const char *), void *ctx,
                    const char *what, char *err) {
    const char *p = text;
    int lineno = 0;
    while (*p) {
        lineno++;
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[AVA_REASON_MAX + 64];
        if (n >= sizeof line)
            return ava_err(err, AVA_EINVALID, "%s: line %d is too long", what, lineno);
        memcpy(line, p, n);
        line[n] = '\0';
        p += n + (nl ? 1 : 0);
        if (!n)
            continue;
        char *eq = strchr(line, '=');
        if (!eq)
            return ava_err(err, AVA_EINVALID, "%s: line %d is not key=value", what, lineno);
        *eq = '\0';
        if (fn(ctx, line, eq + 1) < 0)
            return ava_err(err, AVA_EINVALID, "%s: bad value for '%s' on line %d", what, line,
                           lineno);
    }
    return 0;
}

/* Parses a signed 64-bit decimal integer, whole string. */
static int to_i64(const char *v, int64_t *out) {
    char *end;
    if (!*v)
        return -1;
    long long x = strtoll(v, &end, 10);
    if (*end)
        return -1;
    *out = x;
    return 0;
}

/* Finds key in a list of names; returns its index, or -1 for a key this version does not
 * know (ignored by the parsers, so that files of newer shims stay readable). */
static int key_index(const char *key, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(key, names[i]))
            return i;
    return -1;
}

static int status_kv(void *ctx, const char *k, const char *v) {
    static const char *const keys[] = {"pid",       "start_time", "started_at",
                                       "log_start", "entry_pid",  "state"};
    struct ava_shim_info *si = ctx;
    int i = key_index(k, keys, (int)(sizeof keys / sizeof keys[0]));
    int64_t x;
    if (i < 0)
        return 0;
    if (i == 5) {
        if (strcmp(v, "running") != 0 && strcmp(v, "stopping") != 0)
            return -1;
        snprintf(si->state, sizeof si->state, "%s", v);
        return 0;
    }
    if (to_i64(v, &x) < 0 || x < 0)
        return -1;
    bool is_pid = i == 0 || i == 4;
    if (is_pid && x > INT32_MAX)
        return -1;
    if (i == 0)
        si->pid = (pid_t)x;
    else if (i == 1)
        si->start_time = (uint64_t)x;
    else if (i == 2)
        si->started_at = x;
    else if (i == 3)
        si->log_start = x;
    else
        si->entry_pid = (pid_t)x;
    return 0;
}

int ava_rundir_parse_status(const char *text, struct ava_shim_info *si, char *err) {
    memset(si, 0, sizeof *si);
    int r = parse_kv(text, status_kv, si, "status file", err);
    if (r < 0)
        return r;
    if (si->pid <= 0 || si->start_time == 0)
        return ava_err(err, AVA_EINVALID, "status file: pid or start_time missing");
    return 0;
}

int ava_rundir_write_status(const char *dir, const struct ava_shim_info *si, char *err) {
    char path[AVA_PATH_MAX], text[256];
    int r = ava_path_join(path, sizeof path, err, dir, AVA_RUNDIR_STATUS, NULL);
    if (r < 0)
        return r;
    int n = snprintf(text, sizeof text,
                     "state=%s\npid=%d\nstart_time=%" PRIu64 "\nstarted_at=%" PRId64
                     "\nlog_start=%" PRId64 "\nentry_pid=%d\n",
                     si->state[0] ? si->state : "running", (int)si->pid, si->start_time,
                     si->started_at, si->log_start, (int)si->entry_pid);
    return ava_file_write_atomic(path, text, (size_t)n, 0644, err);
}

/* Reads a whole run-dir file by name. */
static int read_rundir_file(const char *dir, const char *name, char **text, char *err) {
    char path[AVA_PATH_MAX];
    int r = ava_path_join(path, sizeof path, err, dir, name, NULL);
    if (r < 0)
        return r;
    return ava_file_read_all(path, RUNDIR_FILE_MAX, text, NULL, err);
}

int ava_rundir_read_status(const char *dir, struct ava_shim_info *si, char *err) {
    char *text;
    int r = read_rundir_file(dir, AVA_RUNDIR_STATUS, &text, err);
    if (r < 0)
        return r;
    r = ava_rundir_parse_status(text, si, err);
    free(text);
    return r;
}

static int exit_kv(void *ctx, const char *k, const char *v) {
    static const char *const keys[] = {"state",       "reason",     "exit_code",
                                       "signal",      "started_at", "ended_at",
                                       "stopping_at", "log_start",  "log_end"};
    struct ava_exit_record *er = ctx;
    int i = key_index(k, keys, (int)(sizeof keys / sizeof keys[0]));
    int64_t x = 0;
    if (i < 0)
        return 0;
    if (i == 0) {
        if (strlen(v) >= sizeof er->state)
            return -1;
        strcpy(er->state, v);
        return 0;
    }
    if (i == 1) {
        snprintf(er->reason, sizeof er->reason, "%s", v);
        return 0;
    }
    if (to_i64(v, &x) < 0 || ((i == 2 || i == 3) && (x < INT32_MIN || x > INT32_MAX)))
        return -1;
    int64_t *times[] = {&er->started_at, &er->ended_at, &er->stopping_at, &er->log_start,
                        &er->log_end};
    if (i == 2)
        er->exit_code = (int)x;
    else if (i == 3)
        er->signal = (int)x;
    else
        *times[i - 4] = x;
    return 0;
}

int ava_rundir_parse_exit(const char *text, struct ava_exit_record *er, char *err) {
    memset(er, 0, sizeof *er);
    int r = parse_kv(text, exit_kv, er, "exit record", err);
    if (r < 0)
        return r;
    static const char *const finals[] = {"succeeded", "failed", "stopped", "timed_out"};
    for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++)
        if (!strcmp(er->state, finals[i]))
            return er->ended_at > 0
                       ? 0
                       : ava_err(err, AVA_EINVALID, "exit record: ended_at is missing");
    return ava_err(err, AVA_EINVALID, "exit record: '%s' is not a final state", er->state);
}

int ava_rundir_write_exit(const char *dir, const struct ava_exit_record *er, char *err) {
    char path[AVA_PATH_MAX];
    int r = ava_path_join(path, sizeof path, err, dir, AVA_RUNDIR_EXIT, NULL);
    if (r < 0)
        return r;
    char reason[AVA_REASON_MAX];
    snprintf(reason, sizeof reason, "%s", er->reason);
    for (char *c = reason; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    struct ava_buf b = {0};
    ava_buf_printf(&b,
                   "state=%s\nexit_code=%d\nsignal=%d\nreason=%s\nstarted_at=%" PRId64
                   "\nended_at=%" PRId64 "\nstopping_at=%" PRId64 "\nlog_start=%" PRId64
                   "\nlog_end=%" PRId64 "\n",
                   er->state, er->exit_code, er->signal, reason, er->started_at, er->ended_at,
                   er->stopping_at, er->log_start, er->log_end);
    r = ava_file_write_atomic(path, b.data, b.len, 0644, err);
    ava_buf_free(&b);
    return r;
}

int ava_rundir_read_exit(const char *dir, struct ava_exit_record *er, char *err) {
    char *text;
    int r = read_rundir_file(dir, AVA_RUNDIR_EXIT, &text, err);
    if (r < 0)
        return r;
    r = ava_rundir_parse_exit(text, er, err);
    free(text);
    return r;
}

int ava_rundir_append_event(const char *dir, int64_t at, const char *state, const char *reason,
                            char *err) {
    char path[AVA_PATH_MAX], line[AVA_REASON_MAX + 64];
    int r = ava_path_join(path, sizeof path, err, dir, AVA_RUNDIR_EVENTS, NULL);
    if (r < 0)
        return r;
    snprintf(line, sizeof line, "%" PRId64 " %s %s", at, state, reason);
    for (char *c = line; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    return ava_file_append_line(path, line, err);
}

int ava_proc_start_time(pid_t pid, uint64_t *out) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return AVA_ENOTFOUND;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name (field 2) may hold spaces and ')': fields resume after the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return AVA_ENOTFOUND;
    p++;
    /* field 3 is the first after ')'; the start time is field 22 */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return AVA_ENOTFOUND;
    }
    char *end;
    unsigned long long v = strtoull(p + 1, &end, 10);
    if (end == p + 1)
        return AVA_ENOTFOUND;
    *out = v;
    return 0;
}
