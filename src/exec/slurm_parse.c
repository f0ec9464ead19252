/* slurm_parse.c: reading squeue, scontrol and sinfo output, and Slurm's states in ava's
 * words (see slurm.h). */
#include "slurm.h"

#include "../common/buf.h"
#include "../common/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Slurm's state names by phase. */
static const char *const waiting_states[] = {"PENDING",      "CONFIGURING", "REQUEUED",
                                             "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"};
/* everything else (RUNNING, COMPLETING, SUSPENDED, SIGNALING, STAGE_OUT, ...) is active */
static const char *const ended_states[] = {"COMPLETED",     "CANCELLED",    "FAILED",    "TIMEOUT",
                                           "NODE_FAIL",     "PREEMPTED",    "BOOT_FAIL", "DEADLINE",
                                           "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"};

/* True when s is one of the n names. */
static bool in_list(const char *s, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return true;
    return false;
}

#define IN(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

enum ava_slurm_phase ava_slurm_phase_of(const char *state) {
    if (IN(state, waiting_states))
        return AVA_SLURM_WAITING;
    if (IN(state, ended_states))
        return AVA_SLURM_ENDED;
    return AVA_SLURM_ACTIVE;
}

const char *ava_slurm_final_state(const char *state) {
    if (!strcmp(state, "COMPLETED"))
        return "succeeded";
    if (!strcmp(state, "CANCELLED"))
        return "stopped";
    if (!strcmp(state, "TIMEOUT") || !strcmp(state, "DEADLINE"))
        return "timed_out";
    return "failed";
}

void ava_slurm_describe_end(const struct ava_slurm_job *j, char *out, size_t outlen) {
    char code[48] = "";
    if (j->signal > 0)
        snprintf(code, sizeof code, ", signal %d", j->signal);
    else if (j->exit_code > 0)
        snprintf(code, sizeof code, ", exit code %d", j->exit_code);
    bool has_reason = j->reason[0] && strcmp(j->reason, "None") != 0;
    snprintf(out, outlen, "Slurm job %s: %s%s%s%s%s", j->id, j->state, has_reason ? " (" : "",
             has_reason ? j->reason : "", has_reason ? ")" : "", code);
}

/* Copies a JSON string (or the first string of an array) into out; "" otherwise. */
static void json_text(json_t *v, char *out, size_t outlen) {
    if (json_is_array(v))
        v = json_array_get(v, 0);
    snprintf(out, outlen, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* Reads an integer that may be wrapped as {"set":true,"number":N} (later Slurm releases). */
static bool json_int(json_t *v, int64_t *out) {
    if (json_is_object(v)) {
        json_t *set = json_object_get(v, "set");
        if (set && !json_is_true(set))
            return false;
        v = json_object_get(v, "number");
    }
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

/* Fills the exit code and signal from squeue's exit_code: a raw wait status (22.05) or an
 * object with return_code and signal (23.02+). */
static void job_exit(json_t *v, struct ava_slurm_job *j) {
    int64_t x;
    j->exit_code = -1;
    j->signal = 0;
    if (json_is_object(v) && json_object_get(v, "return_code")) {
        if (json_int(json_object_get(v, "return_code"), &x))
            j->exit_code = (int)x;
        json_t *sig = json_object_get(v, "signal");
        if (json_is_object(sig) && json_int(json_object_get(sig, "id"), &x))
            j->signal = (int)x;
        return;
    }
    if (json_int(v, &x) && x >= 0 && x <= 0xffff) {
        int st = (int)x;
        if (WIFSIGNALED(st))
            j->signal = WTERMSIG(st);
        else
            j->exit_code = WEXITSTATUS(st);
    }
}

/* Fills one job from an element of squeue's "jobs" array. */
static int job_from_json(json_t *o, size_t i, struct ava_slurm_job *j, char *err) {
    memset(j, 0, sizeof *j);
    int64_t id;
    if (!json_is_object(o) || !json_int(json_object_get(o, "job_id"), &id) || id <= 0)
        return ava_err(err, AVA_EINVALID, "squeue: job %zu has no job_id", i);
    snprintf(j->id, sizeof j->id, "%lld", (long long)id);
    json_text(json_object_get(o, "job_state"), j->state, sizeof j->state);
    if (!j->state[0])
        return ava_err(err, AVA_EINVALID, "squeue: job %s has no job_state", j->id);
    json_text(json_object_get(o, "state_reason"), j->reason, sizeof j->reason);
    json_text(json_object_get(o, "batch_host"), j->node, sizeof j->node);
    if (!j->node[0])
        json_text(json_object_get(o, "nodes"), j->node, sizeof j->node);
    json_t *gres = json_object_get(o, "gres_detail"), *g;
    size_t k;
    json_array_foreach(gres, k, g) {
        if (json_is_string(g) && !j->gpus[0])
            ava_slurm_gres_indices(json_string_value(g), j->gpus, sizeof j->gpus);
    }
    job_exit(json_object_get(o, "exit_code"), j);
    return 0;
}

int ava_slurm_parse_squeue(const char *text, size_t len, struct ava_slurm_job **jobs, size_t *n,
                           char *err) {
    json_error_t je;
    *jobs = NULL;
    *n = 0;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root)
        return ava_err(err, AVA_EINVALID, "squeue: not JSON (%s, line %d)", je.text, je.line);
    json_t *arr = json_object_get(root, "jobs");
    if (!json_is_array(arr)) {
        json_decref(root);
        return ava_err(err, AVA_EINVALID, "squeue: no \"jobs\" array in its answer");
    }
    size_t cnt = json_array_size(arr);
    struct ava_slurm_job *v = ava_xcalloc(cnt ? cnt : 1, sizeof *v);
    for (size_t i = 0; i < cnt; i++)
        if (job_from_json(json_array_get(arr, i), i, &v[i], err) < 0) {
            free(v);
            json_decref(root);
            return AVA_EINVALID;
        }
    json_decref(root);
    *jobs = v;
    *n = cnt;
    return 0;
}

/* Finds " KEY=" (or KEY= at the start) in line and copies its value up to the next blank. */
static bool kv_get(const char *line, const char *key, char *out, size_t outlen) {
    size_t klen = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen) {
        if ((p == line || p[-1] == ' ') && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, " \n");
            snprintf(out, outlen, "%.*s", (int)n, v);
            return true;
        }
    }
    return false;
}

int ava_slurm_parse_scontrol(const char *line, struct ava_slurm_job *j, char *err) {
    memset(j, 0, sizeof *j);
    char exit[32] = "";
    if (!kv_get(line, "JobId", j->id, sizeof j->id) || !j->id[0] ||
        strspn(j->id, "0123456789") != strlen(j->id))
        return ava_err(err, AVA_EINVALID, "scontrol: no JobId in '%.80s'", line);
    if (!kv_get(line, "JobState", j->state, sizeof j->state) || !j->state[0])
        return ava_err(err, AVA_EINVALID, "scontrol: job %s has no JobState", j->id);
    kv_get(line, "Reason", j->reason, sizeof j->reason);
    if (!kv_get(line, "BatchHost", j->node, sizeof j->node) || !strcmp(j->node, "(null)"))
        if (!kv_get(line, "NodeList", j->node, sizeof j->node) || !strcmp(j->node, "(null)"))
            j->node[0] = '\0';
    j->exit_code = -1;
    int code, sig;
    if (kv_get(line, "ExitCode", exit, sizeof exit) && sscanf(exit, "%d:%d", &code, &sig) == 2) {
        j->exit_code = code;
        j->signal = sig;
    }
    return 0;
}

/* Fills one node from an element of sinfo's "nodes" array. */
static void node_from_json(json_t *o, struct ava_slurm_node *nd) {
    int64_t x;
    memset(nd, 0, sizeof *nd);
    json_text(json_object_get(o, "name"), nd->name, sizeof nd->name);
    json_t *st = json_object_get(o, "state"), *e;
    size_t k;
    if (json_is_array(st)) {
        struct ava_buf b = {0};
        json_array_foreach(st, k, e) {
            if (json_is_string(e))
                ava_buf_printf(&b, "%s%s", b.len ? "+" : "", json_string_value(e));
        }
        snprintf(nd->state, sizeof nd->state, "%s", b.len ? b.data : "");
        ava_buf_free(&b);
    } else {
        json_text(st, nd->state, sizeof nd->state);
    }
    for (char *c = nd->state; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    json_t *parts = json_object_get(o, "partitions");
    struct ava_buf b = {0};
    json_array_foreach(parts, k, e) {
        if (json_is_string(e))
            ava_buf_printf(&b, "%s%s", b.len ? "," : "", json_string_value(e));
    }
    snprintf(nd->partitions, sizeof nd->partitions, "%s", b.len ? b.data : "");
    ava_buf_free(&b);
    nd->cpus = json_int(json_object_get(o, "cpus"), &x) ? (int)x : 0;
    nd->alloc_cpus = json_int(json_object_get(o, "alloc_cpus"), &x) ? (int)x : 0;
    nd->mem_mb = json_int(json_object_get(o, "real_memory"), &x) ? x : 0;
    nd->alloc_mem_mb = json_int(json_object_get(o, "alloc_memory"), &x) ? x : 0;
    json_t *g = json_object_get(o, "gres"), *gu = json_object_get(o, "gres_used");
    nd->gpus = json_is_string(g) ? ava_slurm_gres_gpus(json_string_value(g)) : 0;
    nd->alloc_gpus = json_is_string(gu) ? ava_slurm_gres_gpus(json_string_value(gu)) : 0;
}

int ava_slurm_parse_sinfo(const char *text, size_t len, struct ava_slurm_node **nodes, size_t *n,
                          char *err) {
    json_error_t je;
    *nodes = NULL;
    *n = 0;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root)
        return ava_err(err, AVA_EINVALID, "sinfo: not JSON (%s, line %d)", je.text, je.line);
    json_t *arr = json_object_get(root, "nodes");
    if (!json_is_array(arr)) {
        json_decref(root);
        return ava_err(err, AVA_EINVALID, "sinfo: no \"nodes\" array in its answer");
    }
    size_t cnt = json_array_size(arr), out = 0;
    struct ava_slurm_node *v = ava_xcalloc(cnt ? cnt : 1, sizeof *v);
    for (size_t i = 0; i < cnt; i++) {
        json_t *o = json_array_get(arr, i);
        if (!json_is_object(o))
            continue;
        node_from_json(o, &v[out]);
        if (!v[out].name[0])
            continue;
        bool dup = false; /* a node in several partitions may be listed more than once */
        for (size_t k = 0; k < out && !dup; k++)
            dup = !strcmp(v[k].name, v[out].name);
        if (!dup)
            out++;
    }
    json_decref(root);
    *nodes = v;
    *n = out;
    return 0;
}

/* The count of one gres entry ("gpu:tesla:2(S:0-1)" -> 2), 0 when it is not a GPU entry. */
static int gres_entry_gpus(const char *e, size_t len) {
    if (len < 4 || strncmp(e, "gpu:", 4) != 0)
        return 0;
    if (e[len - 1] == ')') /* drop a trailing (S:...) or (IDX:...) group */
        while (len > 0 && e[len - 1] != '(')
            len--;
    if (len > 0 && e[len - 1] == '(')
        len--;
    size_t start = len;
    while (start > 0 && e[start - 1] >= '0' && e[start - 1] <= '9')
        start--;
    if (start == len || e[start - 1] != ':' || len - start > 6)
        return 0;
    int c = 0;
    for (size_t i = start; i < len; i++)
        c = c * 10 + (e[i] - '0');
    return c;
}

int ava_slurm_gres_gpus(const char *gres) {
    int total = 0, depth = 0;
    const char *start = gres;
    for (const char *p = gres;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && depth > 0)
            depth--;
        else if ((*p == ',' && depth == 0) || !*p) {
            total += gres_entry_gpus(start, (size_t)(p - start));
            start = p + 1;
        }
        if (!*p)
            break;
    }
    return total;
}

void ava_slurm_gres_indices(const char *detail, char *out, size_t outlen) {
    struct ava_buf b = {0};
    const char *idx = strstr(detail, "IDX:");
    out[0] = '\0';
    if (!idx)
        return;
    const char *p = idx + 4;
    while (*p && *p != ')') {
        char *end;
        long a = strtol(p, &end, 10), z;
        if (end == p || a < 0 || a > 4096)
            break;
        z = a;
        if (*end == '-') {
            const char *q = end + 1;
            z = strtol(q, &end, 10);
            if (end == q || z < a || z > 4096)
                break;
        }
        for (long i = a; i <= z; i++)
            ava_buf_printf(&b, "%s%ld", b.len ? "," : "", i);
        p = end;
        if (*p == ',')
            p++;
        else if (*p != ')')
            break;
    }
    if (b.len && b.len < outlen)
        memcpy(out, b.data, b.len + 1);
    ava_buf_free(&b);
}

char **ava_slurm_split_args(const char *text, size_t *n) {
    size_t cap = 4, cnt = 0;
    char **v = ava_xcalloc(cap, sizeof *v);
    const char *p = text ? text : "";
    for (;;) {
        p += strspn(p, " \t\n");
        if (!*p)
            break;
        size_t len = strcspn(p, " \t\n");
        if (cnt + 2 > cap)
            v = ava_xrealloc(v, (cap *= 2) * sizeof *v);
        v[cnt] = ava_xmalloc(len + 1);
        memcpy(v[cnt], p, len);
        v[cnt++][len] = '\0';
        p += len;
    }
    v[cnt] = NULL;
    if (n)
        *n = cnt;
    return v;
}

void ava_slurm_args_free(char **v) {
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}
