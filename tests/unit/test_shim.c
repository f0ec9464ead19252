/* test_shim.c: ava-shim: its pure helpers directly, and the real binary (path in $AVA_SHIM)
 * driven through whole runs in temporary run dirs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/common/err.h"
#include "../../src/common/file.h"
#include "../../src/common/path.h"
#include "../../src/common/rundir.h"
#include "../../src/common/timeutil.h"
#include "../../src/shim/metrics.h"
#include "../../src/shim/spec.h"
#include "../../src/shim/supervise.h"
#include "../../src/shim/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A temporary run dir with the log and output dir paths a spec points at. */
struct rd {
    char dir[256];
    char log[300];
    char out[300];
};

/* A number no other test run uses, for "sleep <n>" markers found later in /proc. */
static long marker(int k) {
    return 1000000L + (long)(getpid() % 100000) * 10 + k;
}

/* Creates a fresh run dir under /tmp. */
static void rd_make(struct rd *r) {
    snprintf(r->dir, sizeof r->dir, "/tmp/ava-test-shim-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->log, sizeof r->log, "%s/storage/run/train_t1_out.log", r->dir);
    snprintf(r->out, sizeof r->out, "%s/storage/run/t1/output", r->dir);
}

/* Removes the run dir with everything the run wrote. */
static void rd_remove(struct rd *r) {
    ava_rm_rf(r->dir, NULL);
}

/* The spec every test starts from: entry with no args, PATH only, 1 s grace, no limit. */
static json_t *base_spec(const struct rd *r, const char *entry) {
    json_t *s =
        json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:[], s:[s], s:s, s:s, s:s, "
                  "s:I, s:I, s:s}",
                  "training", "t1", "training_id", (json_int_t)7, "run", (json_int_t)1, "user",
                  "alice", "group", "g", "image", "img:1", "entry", entry, "args", "env",
                  "PATH=/usr/bin:/bin", "cwd", "/tmp", "log_path", r->log, "output_dir", r->out,
                  "max_runtime_ms", (json_int_t)0, "grace_ms", (json_int_t)1000, "gpus", "");
    assert_non_null(s);
    return s;
}

/* A spec running /bin/sh -c script. */
static json_t *sh_spec(const struct rd *r, const char *script) {
    json_t *s = base_spec(r, "/bin/sh");
    json_object_set_new(s, "args", json_pack("[s, s]", "-c", script));
    return s;
}

/* Sets an integer field of a spec. */
static void set_int(json_t *s, const char *key, long long v) {
    json_object_set_new(s, key, json_integer(v));
}

/* Writes text as spec.json. */
static void write_spec_text(const struct rd *r, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/spec.json", r->dir);
    assert_int_equal(ava_file_write_atomic(path, text, strlen(text), 0644, NULL), 0);
}

/* Writes spec.json and drops the reference. */
static void write_spec(const struct rd *r, json_t *s) {
    char *text = json_dumps(s, 0);
    write_spec_text(r, text);
    free(text);
    json_decref(s);
}

/* Starts ava-shim RUN_DIR as avad does: own session, stdin /dev/null, output to shim.log. */
static pid_t spawn_shim(const struct rd *r) {
    const char *shim = getenv("AVA_SHIM");
    assert_non_null(shim);
    char logp[512];
    snprintf(logp, sizeof logp, "%s/shim.log", r->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int lg = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || lg < 0 || dup2(in, 0) < 0 || dup2(lg, 1) < 0 || dup2(lg, 2) < 0)
            _exit(99);
        setsid();
        char *argv[] = {(char *)shim, (char *)r->dir, NULL};
        execve(shim, argv, environ);
        _exit(98);
    }
    return pid;
}

/* Waits for the shim to exit within timeout_ms; returns its exit status (-1 on timeout,
 * after killing it). */
static int wait_shim(pid_t pid, int64_t timeout_ms) {
    int64_t end = ava_mono_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t p = waitpid(pid, &st, WNOHANG);
        if (p == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (ava_mono_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(1000);
    }
}

/* Runs the shim to its end and reads the exit record; *ms gets the wall time taken. */
static int run_shim(const struct rd *r, struct ava_exit_record *rec, int64_t *ms) {
    int64_t t0 = ava_mono_ms();
    int rc = wait_shim(spawn_shim(r), 20000);
    if (ms)
        *ms = ava_mono_ms() - t0;
    char err[AVA_ERRLEN];
    int e = ava_rundir_read_exit(r->dir, rec, err);
    if (e < 0)
        fail_msg("no exit record: %s", err);
    return rc;
}

/* Reads a whole file ("" when it does not exist); the caller frees it. */
static char *slurp(const char *path) {
    char *text;
    if (ava_file_read_all(path, 16 << 20, &text, NULL, NULL) < 0)
        return strdup("");
    return text;
}

/* Reads a file of the run dir (see slurp). */
static char *slurp_in(const struct rd *r, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    return slurp(path);
}

/* Counts live processes whose command line (args joined by spaces) contains needle, or,
 * with prefix, starts with it. */
static int count_procs(const char *needle, int prefix) {
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9' || atoi(de->d_name) == getpid())
            continue;
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0)
            continue; /* zombies and kernel threads have no command line */
        for (ssize_t i = 0; i < len; i++)
            buf[i] = buf[i] ? buf[i] : ' ';
        buf[len] = '\0';
        if (prefix ? strncmp(buf, needle, strlen(needle)) == 0 : strstr(buf, needle) != NULL)
            n++;
    }
    closedir(d);
    return n;
}

/* Waits until at least n processes match (see count_procs). */
static void wait_procs(const char *needle, int prefix, int n) {
    int64_t end = ava_mono_ms() + 5000;
    while (count_procs(needle, prefix) < n) {
        if (ava_mono_ms() > end)
            fail_msg("%s: fewer than %d processes after 5 s", needle, n);
        usleep(2000);
    }
}

/* Waits until name exists in the run dir. */
static void wait_file(const struct rd *r, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    int64_t end = ava_mono_ms() + 5000;
    while (access(path, F_OK) < 0) {
        if (ava_mono_ms() > end)
            fail_msg("%s did not appear", path);
        usleep(1000);
    }
}

/* The part of the log after the first line (the marker). */
static const char *after_marker(const char *log) {
    const char *nl = strchr(log, '\n');
    return nl ? nl + 1 : "";
}

/* Starts the shim; once it runs and n processes named "sleep <m>" exist, sends it SIGHUP
 * (which it ignores), then after delay_ms SIGTERM and SIGINT, waits for it and reads the exit
 * record. Returns the ms from the signal to the shim's exit. */
static int64_t stop_shim(const struct rd *r, long m, int n, int delay_ms,
                         struct ava_exit_record *rec) {
    char needle[64];
    snprintf(needle, sizeof needle, "sleep %ld", m);
    pid_t pid = spawn_shim(r);
    wait_file(r, "status");
    if (n)
        wait_procs(needle, 1, n);
    kill(pid, SIGHUP); /* ignored */
    usleep((useconds_t)delay_ms * 1000 + 20000);
    int st;
    assert_int_equal(waitpid(pid, &st, WNOHANG), 0);
    int64_t t0 = ava_mono_ms();
    kill(pid, SIGTERM);
    kill(pid, SIGINT); /* a second request changes nothing */
    assert_int_equal(wait_shim(pid, 10000), 0);
    int64_t ms = ava_mono_ms() - t0;
    assert_int_equal(ava_rundir_read_exit(r->dir, rec, NULL), 0);
    return ms;
}

/* ---- pure helpers ---- */

/* /proc/<pid>/stat lines: state and parent pid, whatever the command name holds. */
static void test_parse_stat(void **state) {
    char st;
    pid_t pp;
    assert_int_equal(ava_tree_parse_stat("42 (sleep) S 17 42 17 0 -1 4194560", &st, &pp), 0);
    assert_int_equal(st, 'S');
    assert_int_equal(pp, 17);
    /* a command name with spaces and parentheses cannot fool the parser */
    assert_int_equal(ava_tree_parse_stat("43 (a) Z 9 (b)) R 123 1 1 0\n", &st, &pp), 0);
    assert_int_equal(st, 'R');
    assert_int_equal(pp, 123);
    assert_int_equal(ava_tree_parse_stat("44 (x) Z 0\n", &st, &pp), 0);
    assert_int_equal(pp, 0);
    assert_int_equal(ava_tree_parse_stat("garbage", &st, &pp), AVA_EINVALID);
    assert_int_equal(ava_tree_parse_stat("45 (x) S abc 1", &st, &pp), AVA_EINVALID);
    assert_int_equal(ava_tree_parse_stat("45 (x) S", &st, &pp), AVA_EINVALID);
    assert_int_equal(ava_tree_parse_stat("45 (x) S -3 1", &st, &pp), AVA_EINVALID);
}

/* Descendants by parent chain in a process table. */
static void test_mark_descendants(void **state) {
    /* 100 is the shim; 101 its child; 102 a setsid'd grandchild; 103 under 102; 200 and
     * 201 belong elsewhere; 300 and 301 form a cycle (a torn snapshot) */
    struct ava_proc_entry p[] = {
        {103, 102, 'S', false}, {1, 0, 'S', false},     {200, 1, 'S', false},
        {101, 100, 'S', false}, {100, 1, 'S', false},   {102, 101, 'Z', false},
        {201, 200, 'R', false}, {300, 301, 'S', false}, {301, 300, 'S', false},
    };
    size_t n = sizeof p / sizeof p[0];
    assert_int_equal(ava_tree_mark_descendants(p, n, 100), 3);
    for (size_t i = 0; i < n; i++) {
        bool want = p[i].pid >= 101 && p[i].pid <= 103;
        assert_int_equal(p[i].desc, want);
        if (i)
            assert_true(p[i - 1].pid < p[i].pid);
    }
    assert_int_equal(ava_tree_mark_descendants(p, n, 200), 1);
    assert_int_equal(ava_tree_mark_descendants(p, n, 999), 0);
    assert_int_equal(ava_tree_mark_descendants(NULL, 0, 1), 0);
}

/* The pid set stays sorted and tells new pids from known ones. */
static void test_pidset(void **state) {
    struct ava_pidset s = {0};
    for (int i = 0; i < 100; i++)
        assert_true(ava_pidset_add(&s, (pid_t)((i * 37) % 101 + 1)));
    assert_false(ava_pidset_add(&s, 38));
    assert_int_equal(s.n, 100);
    for (size_t i = 1; i < s.n; i++)
        assert_true(s.v[i - 1] < s.v[i]);
    assert_true(ava_pidset_has(&s, 1));
    assert_false(ava_pidset_has(&s, 1000));
    ava_pidset_free(&s);
    assert_int_equal(s.n, 0);
}

/* A real sweep: a child and a setsid'd grandchild of this process are found and killed. */
static void test_tree_signal_real(void **state) {
    int sync[2];
    assert_int_equal(pipe(sync), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (fork() == 0) {
            setsid();
            close(sync[0]);
            if (write(sync[1], "x", 1) == 1)
                pause();
            _exit(0);
        }
        pause();
        _exit(0);
    }
    close(sync[1]);
    char c;
    assert_int_equal(read(sync[0], &c, 1), 1);
    close(sync[0]);
    struct ava_pidset seen = {0};
    char err[AVA_ERRLEN];
    assert_int_equal(ava_tree_signal(getpid(), 0, &seen, false, err), 2);
    assert_true(ava_pidset_has(&seen, child));
    assert_int_equal(ava_tree_signal(getpid(), 0, &seen, true, err), 0);
    assert_int_equal(ava_tree_signal(getpid(), SIGKILL, NULL, false, err), 2);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st));
    ava_pidset_free(&seen);
}

/* Checkpoint order: later mtime first, then the later name. */
static void test_checkpoint_newer(void **state) {
    struct timespec a = {100, 5}, b = {100, 7}, c = {101, 0};
    assert_true(ava_shim_checkpoint_newer(&b, "checkpoint-1", &a, "checkpoint-2"));
    assert_false(ava_shim_checkpoint_newer(&a, "checkpoint-2", &b, "checkpoint-1"));
    assert_true(ava_shim_checkpoint_newer(&c, "checkpoint-1", &b, "checkpoint-9"));
    /* same mtime: the later name wins */
    assert_true(ava_shim_checkpoint_newer(&a, "checkpoint-b", &a, "checkpoint-a"));
    assert_false(ava_shim_checkpoint_newer(&a, "checkpoint-a", &a, "checkpoint-b"));
}

/* Creates dir/name (a file, or a directory when is_dir) with the given mtime. */
static void make_entry(const char *dir, const char *name, int is_dir, time_t mtime) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (is_dir)
        assert_int_equal(mkdir(path, 0755), 0);
    else
        assert_int_equal(ava_file_write_atomic(path, "x", 1, 0644, NULL), 0);
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* The newest checkpoint-* in a directory; other names and a missing dir give none. */
static void test_newest_checkpoint(void **state) {
    struct rd r;
    rd_make(&r);
    char out[AVA_PATH_MAX], want[700];
    assert_int_equal(ava_shim_newest_checkpoint(r.out, out, sizeof out, NULL), AVA_ENOTFOUND);
    assert_int_equal(ava_mkdir_p(r.out, 0755, NULL), 0);
    assert_int_equal(ava_shim_newest_checkpoint(r.out, out, sizeof out, NULL), AVA_ENOTFOUND);
    make_entry(r.out, "model.bin", 0, 5000); /* newest, but not a checkpoint */
    make_entry(r.out, "checkpoint-10", 1, 1000);
    make_entry(r.out, "checkpoint-9", 0, 2000);
    make_entry(r.out, "checkpoint-8", 0, 2000);
    assert_int_equal(ava_shim_newest_checkpoint(r.out, out, sizeof out, NULL), 0);
    snprintf(want, sizeof want, "%s/checkpoint-9", r.out);
    assert_string_equal(out, want);
    make_entry(r.out, "checkpoint-1", 1, 3000);
    assert_int_equal(ava_shim_newest_checkpoint(r.out, out, sizeof out, NULL), 0);
    snprintf(want, sizeof want, "%s/checkpoint-1", r.out);
    assert_string_equal(out, want);
    rd_remove(&r);
}

/* A valid spec with defaults and unknown keys; argv and env built from it. */
static void test_spec_parse_ok(void **state) {
    const char *text =
        "{\"training\":\"t1\",\"run\":3,\"entry\":\"/bin/echo\",\"args\":[\"a\",\"b\\nc\"],"
        "\"env\":[\"A=1\",\"AVA_RESUME_FROM=/old\",\"B=\"],\"cwd\":\"/\",\"log_path\":\"/l\","
        "\"output_dir\":\"/o\",\"future_field\":{\"x\":1}}";
    struct ava_shim_spec *s;
    char err[AVA_ERRLEN];
    assert_int_equal(ava_shim_spec_parse(text, strlen(text), &s, err), 0);
    assert_string_equal(s->training, "t1");
    assert_int_equal(s->run, 3);
    assert_int_equal(s->training_id, 0);
    assert_string_equal(s->image, "");
    assert_int_equal(s->nargs, 2);
    assert_string_equal(s->args[1], "b\nc");
    assert_int_equal(s->max_runtime_ms, 0);
    assert_int_equal(s->grace_ms, AVA_SHIM_GRACE_DEFAULT_MS);
    char **argv = ava_shim_build_argv(s);
    assert_string_equal(argv[0], "/bin/echo");
    assert_string_equal(argv[2], "b\nc");
    assert_null(argv[3]);
    free(argv);
    char **env = ava_shim_build_env(s, NULL);
    assert_string_equal(env[0], "A=1");
    assert_string_equal(env[1], "B=");
    assert_string_equal(env[2], "AVA_METRICS_FD=3"); /* the SDK pipe, always given */
    assert_null(env[3]);
    ava_shim_strv_free(env);
    env = ava_shim_build_env(s, "/o/checkpoint-2");
    assert_string_equal(env[2], "AVA_RESUME_FROM=/o/checkpoint-2");
    assert_string_equal(env[3], "AVA_METRICS_FD=3");
    assert_null(env[4]);
    ava_shim_strv_free(env);
    ava_shim_spec_free(s);
    ava_shim_spec_free(NULL);
}

/* Bad specs are refused with a message that names the problem. */
static void test_spec_parse_bad(void **state) {
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{", "not valid JSON"},
        {"[]", "must hold a JSON object"},
        {"{\"training\":\"t\",\"run\":1,\"cwd\":\"/\",\"log_path\":\"/l\",\"output_dir\":\"/o\"}",
         "'entry' is missing"},
        {"{\"training\":\"t\",\"run\":1,\"entry\":\"sh\"}", "'entry' must be an absolute path"},
        {"{\"training\":\"t\",\"run\":1,\"entry\":\"/bin/sh\",\"args\":\"-c\"}",
         "'args' must be an array of strings"},
        {"{\"training\":\"t\",\"run\":1,\"entry\":\"/bin/sh\",\"args\":[1]}",
         "'args' must be an array of strings"},
        {"{\"training\":\"t\",\"run\":1,\"entry\":\"/bin/sh\",\"env\":[\"FOO\"]}", "not K=V"},
        {"{\"training\":\"t\",\"run\":1,\"entry\":\"/bin/sh\",\"env\":[\"=x\"]}", "not K=V"},
        {"{\"training\":\"t\",\"run\":\"1\"}", "'run' must be an integer"},
        {"{\"training\":\"t\",\"run\":-1}", "'run' is out of range"},
        {"{\"training\":\"a\\nb\",\"run\":1}", "control character"},
        {"{\"training\":\"a\\u0000b\",\"run\":1}", "not allowed"},
        {"{\"training\":\"t\",\"training\":\"u\",\"run\":1}", "duplicate"},
        {"{\"training\":\"t\",\"run\":1,\"entry\":\"/bin/sh\",\"cwd\":\"/\",\"log_path\":\"/l\","
         "\"output_dir\":\"/o\",\"grace_ms\":1.5}",
         "'grace_ms' must be an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ava_shim_spec *s = (void *)1;
        char err[AVA_ERRLEN] = "";
        int r = ava_shim_spec_parse(cases[i].text, strlen(cases[i].text), &s, err);
        if (r != AVA_EINVALID || !strstr(err, cases[i].want))
            fail_msg("case %zu: r=%d err='%s', want '%s'", i, r, err, cases[i].want);
        assert_null(s);
    }
}

/* A fake environment for inherit_env: what Slurm sets on a node. */
static const char *fake_slurm_env(const char *name) {
    if (!strcmp(name, "CUDA_VISIBLE_DEVICES"))
        return "1";
    if (!strcmp(name, "SLURM_JOB_ID"))
        return "42";
    if (!strcmp(name, "BAD"))
        return "a\nb";
    return NULL;
}

/* inherit_env takes the named variables from the shim's environment: Slurm's GPUs replace the
 * spec's, become NVIDIA_VISIBLE_DEVICES and the sampled GPUs; absent ones change nothing. */
static void test_spec_inherit_env(void **state) {
    const char *text =
        "{\"training\":\"t\",\"run\":1,\"entry\":\"/bin/true\",\"cwd\":\"/\",\"log_path\":"
        "\"/l\",\"output_dir\":\"/o\",\"gpus\":\"\",\"env\":[\"A=1\",\"CUDA_VISIBLE_DEVICES=\"],"
        "\"inherit_env\":[\"CUDA_VISIBLE_DEVICES\",\"SLURM_JOB_ID\",\"SLURM_NODELIST\",\"BAD\"]}";
    struct ava_shim_spec *s;
    char err[AVA_ERRLEN];
    assert_int_equal(ava_shim_spec_parse(text, strlen(text), &s, err), 0);
    assert_int_equal(s->ninherit, 4);
    ava_shim_spec_inherit(s, fake_slurm_env);
    assert_string_equal(s->gpus, "1");
    char **env = ava_shim_build_env(s, NULL);
    assert_string_equal(env[0], "A=1");
    assert_string_equal(env[1], "CUDA_VISIBLE_DEVICES=1");
    assert_string_equal(env[2], "NVIDIA_VISIBLE_DEVICES=1");
    assert_string_equal(env[3], "SLURM_JOB_ID=42");
    assert_string_equal(env[4], "AVA_METRICS_FD=3");
    assert_null(env[5]);
    ava_shim_strv_free(env);
    ava_shim_spec_free(s);
    const char *bad = "{\"training\":\"t\",\"run\":1,\"entry\":\"/bin/true\",\"cwd\":\"/\","
                      "\"log_path\":\"/l\",\"output_dir\":\"/o\",\"inherit_env\":[\"A=B\"]}";
    s = (void *)1;
    assert_int_equal(ava_shim_spec_parse(bad, strlen(bad), &s, err), AVA_EINVALID);
    assert_non_null(strstr(err, "'inherit_env' entry 0 ('A=B') is not a variable name"));
}

/* CLOCK_MONOTONIC in seconds. */
static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The SDK pipe: made large (when the system allows it), and read in gathered rounds: after a
 * read that found lines the shim pauses ~250 us so that the writes meanwhile wake nobody; a
 * read that found nothing does not pause. The lines reach the metrics file unchanged. */
static void test_metrics_pipe_gathers(void **state) {
    (void)state;
    struct rd r;
    rd_make(&r);
    struct shim_metrics *m;
    int wfd = -1;
    char err[AVA_ERRLEN];
    assert_int_equal(shim_metrics_open(r.dir, NULL, NULL, 0, &m, &wfd, err), 0);
    FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
    long max = 0;
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 0;
        fclose(f);
    }
    if (max >= 1024 * 1024 && geteuid() == 0)
        assert_true(fcntl(wfd, F_GETPIPE_SZ) >= 1024 * 1024);
    const char *line = "loss,phase=train value=0.5,step=3i 1764130000123456789\n";
    assert_int_equal(write(wfd, line, strlen(line)), (ssize_t)strlen(line));
    double t0 = mono_s();
    shim_metrics_read_pipe(m);
    double took = mono_s() - t0;
    if (took < 200e-6)
        fail_msg("a read that found a line paused only %.0f us", took * 1e6);
    t0 = mono_s();
    for (int i = 0; i < 1000; i++) /* nothing to read: 1000 rounds without a pause */
        shim_metrics_read_pipe(m);
    took = mono_s() - t0;
    if (took >= 0.2)
        fail_msg("1000 reads of an empty pipe took %.3f s", took);
    int64_t written, refused;
    shim_metrics_counts(m, &written, &refused);
    assert_int_equal(written, 1);
    assert_int_equal(refused, 0);
    close(wfd);
    shim_metrics_read_pipe(m); /* EOF */
    assert_int_equal(shim_metrics_fd(m), -1);
    shim_metrics_close(m);
    char path[400], buf[256] = "";
    snprintf(path, sizeof path, "%s/%s", r.dir, AVA_RUNDIR_METRICS);
    f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(buf, line);
    rd_remove(&r);
}

/* Wait statuses map to state, exit code, signal and reason. */
static void test_outcome_from_status(void **state) {
    struct ava_exit_record rec;
    memset(&rec, 0, sizeof rec);
    ava_shim_outcome_from_status(0, &rec);
    assert_string_equal(rec.state, "succeeded");
    assert_string_equal(rec.reason, "exit code 0");
    ava_shim_outcome_from_status(3 << 8, &rec);
    assert_string_equal(rec.state, "failed");
    assert_int_equal(rec.exit_code, 3);
    assert_string_equal(rec.reason, "exit code 3");
    ava_shim_outcome_from_status(SIGSEGV, &rec);
    assert_string_equal(rec.state, "failed");
    assert_int_equal(rec.exit_code, 128 + SIGSEGV);
    assert_int_equal(rec.signal, SIGSEGV);
    assert_string_equal(rec.reason, "killed by signal 11 (SIGSEGV)");
}

/* ---- whole runs of the real binary ---- */

/* A clean run: record, log marker and output, status file and events agree. */
static void test_run_succeeded(void **state) {
    struct rd r;
    rd_make(&r);
    /* a child that ends before the entry is no leftover: no note in the log */
    write_spec(&r, sh_spec(&r, "echo out; echo err >&2; sleep 0.01 & wait; exit 0"));
    struct ava_exit_record rec;
    assert_int_equal(run_shim(&r, &rec, NULL), 0);
    assert_string_equal(rec.state, "succeeded");
    assert_int_equal(rec.exit_code, 0);
    assert_int_equal(rec.signal, 0);
    assert_string_equal(rec.reason, "exit code 0");
    assert_true(rec.started_at > 0 && rec.ended_at >= rec.started_at);
    assert_int_equal(rec.stopping_at, 0);
    char *log = slurp(r.log);
    assert_true(strncmp(log, "==== ava: training t1 run 1 started ", 36) == 0);
    assert_non_null(strstr(log, "Z (image img:1, entry /bin/sh) ====\nout\nerr\n"));
    assert_string_equal(after_marker(log), "out\nerr\n");
    assert_int_equal(rec.log_start, 0);
    assert_int_equal(rec.log_end, (int64_t)strlen(log));
    /* the status file and the events tell avad the same story */
    struct ava_shim_info si;
    assert_int_equal(ava_rundir_read_status(r.dir, &si, NULL), 0);
    assert_true(si.entry_pid > 0 && si.pid > 0 && si.start_time > 0);
    assert_int_equal(si.started_at, rec.started_at);
    char *ev = slurp_in(&r, "events");
    char want[256];
    snprintf(want, sizeof want, "%lld running started pid %d\n%lld succeeded exit code 0\n",
             (long long)rec.started_at, (int)si.entry_pid, (long long)rec.ended_at);
    assert_string_equal(ev, want);
    struct stat st;
    assert_int_equal(stat(r.out, &st), 0); /* the output dir was created */
    free(ev);
    free(log);
    rd_remove(&r);
}

/* Runs that end without a stop: exit codes, signals, start errors (cannot execute, bad cwd). */
static void test_run_outcomes(void **state) {
    static const struct {
        const char *entry, *script, *cwd, *state;
        int exit_code, sig;
        const char *reason;
    } cases[] = {
        {"/bin/sh", "exit 3", "/tmp", "failed", 3, 0, "exit code 3"},
        {"/bin/sh", "kill -KILL $$", "/tmp", "failed", 137, 9, "killed by signal 9 (SIGKILL)"},
        {"/nonexistent/ava-entry", NULL, "/tmp", "failed", 127, 0,
         "start error: cannot execute /nonexistent/ava-entry: No such file or directory"},
        {"/bin/true", NULL, "/nonexistent/dir", "failed", 127, 0,
         "start error: cannot change to directory /nonexistent/dir: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rd r;
        rd_make(&r);
        json_t *s = cases[i].script ? sh_spec(&r, cases[i].script) : base_spec(&r, cases[i].entry);
        json_object_set_new(s, "cwd", json_string(cases[i].cwd));
        write_spec(&r, s);
        struct ava_exit_record rec;
        assert_int_equal(run_shim(&r, &rec, NULL), 0);
        assert_string_equal(rec.state, cases[i].state);
        assert_int_equal(rec.exit_code, cases[i].exit_code);
        assert_int_equal(rec.signal, cases[i].sig);
        assert_string_equal(rec.reason, cases[i].reason);
        char *log = slurp(r.log), *ev = slurp_in(&r, "events");
        assert_int_equal(rec.log_end, (int64_t)strlen(log));
        if (cases[i].exit_code == 127) {
            /* the entry never ran: the log and the events say why, nothing says "running" */
            assert_int_equal(rec.started_at, 0);
            assert_non_null(strstr(after_marker(log), cases[i].reason));
            assert_null(strstr(ev, "running"));
        }
        free(log);
        free(ev);
        rd_remove(&r);
    }
}

/* Environment, working directory, stdin, signal state and fds are exactly as specified. */
static void test_run_child_setup(void **state) {
    struct rd r;
    rd_make(&r);
    json_t *s = sh_spec(&r, "pwd; echo \"A=$A B=$B\"; cat; grep -E '^Sig(Blk|Ign)' "
                            "/proc/self/status; test -e /proc/$$/fd/37 && echo LEAK; "
                            "env | grep -c -v -e ^PWD= -e ^SHLVL= -e ^_=");
    json_object_set_new(s, "env", json_pack("[s, s, s]", "PATH=/usr/bin:/bin", "A=1", "B=x y"));
    json_object_set_new(s, "cwd", json_string("/usr"));
    write_spec(&r, s);
    /* an fd the shim inherits without close-on-exec must not reach the entry */
    int fd = open("/dev/null", O_RDONLY);
    assert_int_equal(dup2(fd, 37), 37);
    /* ignored and blocked signals in the shim's parent must not reach the entry either */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    void (*prev)(int) = signal(SIGUSR2, SIG_IGN);
    struct ava_exit_record rec;
    int rc = run_shim(&r, &rec, NULL);
    signal(SIGUSR2, prev);
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(37);
    close(fd);
    assert_int_equal(rc, 0);
    assert_string_equal(rec.state, "succeeded");
    char *log = slurp(r.log);
    /* nothing but the three variables of the spec and AVA_METRICS_FD (and what sh adds) */
    assert_string_equal(after_marker(log), "/usr\nA=1 B=x y\nSigBlk:\t0000000000000000\n"
                                           "SigIgn:\t0000000000000000\n4\n");
    free(log);
    rd_remove(&r);
}

/* The max runtime stops the entry (SIGTERM) and the run ends timed_out. */
static void test_run_timeout(void **state) {
    struct rd r;
    rd_make(&r);
    json_t *s = base_spec(&r, "/bin/sleep");
    json_object_set_new(s, "args", json_pack("[s]", "60"));
    set_int(s, "max_runtime_ms", 1000);
    set_int(s, "grace_ms", 500);
    write_spec(&r, s);
    int64_t t0 = ava_mono_ms();
    pid_t pid = spawn_shim(&r);
    wait_file(&r, "status");
    /* what one supervised run costs in memory */
    char path[64], *status;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    status = slurp(path);
    const char *rss = strstr(status, "VmRSS:");
    print_message("shim supervising sleep: %.*s\n", rss ? (int)strcspn(rss, "\n") : 0, rss);
    free(status);
    assert_int_equal(wait_shim(pid, 10000), 0);
    int64_t ms = ava_mono_ms() - t0;
    struct ava_exit_record rec;
    assert_int_equal(ava_rundir_read_exit(r.dir, &rec, NULL), 0);
    assert_string_equal(rec.state, "timed_out");
    assert_string_equal(rec.reason, "max runtime 1s reached");
    assert_int_equal(rec.signal, SIGTERM);
    assert_int_equal(rec.exit_code, 128 + SIGTERM);
    assert_true(ms >= 950 && ms < 2500);
    assert_true(rec.stopping_at - rec.started_at >= 990);
    char *ev = slurp_in(&r, "events");
    assert_non_null(strstr(ev, " stopping max runtime 1s reached\n"));
    assert_non_null(strstr(ev, " timed_out max runtime 1s reached\n"));
    free(ev);
    rd_remove(&r);
}

/* A stop ends the whole tree, setsid'd children included, well within the grace time. */
static void test_run_stop_tree(void **state) {
    struct rd r;
    rd_make(&r);
    long m = marker(1);
    char script[256], needle[64];
    snprintf(script, sizeof script, "setsid sleep %ld & setsid sh -c \"sleep %ld\" & sleep %ld", m,
             m, m);
    json_t *s = sh_spec(&r, script);
    set_int(s, "grace_ms", 5000);
    write_spec(&r, s);
    struct ava_exit_record rec;
    assert_true(stop_shim(&r, m, 3, 0, &rec) < 1000);
    snprintf(needle, sizeof needle, "sleep %ld", m);
    assert_int_equal(count_procs(needle, 0), 0);
    assert_string_equal(rec.state, "stopped");
    assert_string_equal(rec.reason, "stopped by request");
    assert_true(rec.stopping_at > 0);
    char *ev = slurp_in(&r, "events");
    assert_non_null(strstr(ev, " stopping stop requested\n"));
    assert_non_null(strstr(ev, " stopped stopped by request\n"));
    free(ev);
    rd_remove(&r);
}

/* A tree that ignores SIGTERM and keeps forking setsid'd children is SIGKILLed, all of it,
 * once the grace time is over. */
static void test_run_stop_ignored(void **state) {
    struct rd r;
    rd_make(&r);
    long m = marker(2);
    char script[256], needle[64];
    snprintf(script, sizeof script, "trap '' TERM; while :; do setsid sleep %ld & sleep 0.01; done",
             m);
    json_t *s = sh_spec(&r, script);
    set_int(s, "grace_ms", 700);
    write_spec(&r, s);
    struct ava_exit_record rec;
    int64_t ms = stop_shim(&r, m, 2, 0, &rec);
    assert_true(ms >= 650 && ms < 1200);
    snprintf(needle, sizeof needle, "sleep %ld", m);
    assert_int_equal(count_procs(needle, 0), 0);
    assert_string_equal(rec.state, "stopped");
    assert_int_equal(rec.signal, SIGKILL);
    assert_int_equal(rec.exit_code, 137);
    char *log = slurp(r.log);
    assert_non_null(strstr(log, "==== ava: stopping: stop requested ====\n"));
    assert_non_null(strstr(log, "still running after the grace period ====\n"));
    free(log);
    rd_remove(&r);
}

/* A timeout, then a stop request: the first cause wins. */
static void test_run_timeout_then_stop(void **state) {
    struct rd r;
    rd_make(&r);
    json_t *s = sh_spec(&r, "trap '' TERM; sleep 30");
    set_int(s, "max_runtime_ms", 300);
    set_int(s, "grace_ms", 600);
    write_spec(&r, s);
    struct ava_exit_record rec;
    stop_shim(&r, 0, 0, 500, &rec);
    assert_string_equal(rec.state, "timed_out");
    assert_string_equal(rec.reason, "max runtime 300ms reached");
    rd_remove(&r);
}

/* What the entry leaves behind (setsid'd, double-forked) is killed when it exits. */
static void test_run_leftovers(void **state) {
    struct rd r;
    rd_make(&r);
    long m = marker(3);
    char script[256], needle[64];
    snprintf(script, sizeof script,
             "setsid sleep %ld & (setsid sh -c 'sleep %ld & sleep %ld' &); sleep 0.2; exit 0", m, m,
             m);
    write_spec(&r, sh_spec(&r, script));
    struct ava_exit_record rec;
    int64_t ms;
    assert_int_equal(run_shim(&r, &rec, &ms), 0);
    assert_string_equal(rec.state, "succeeded");
    assert_true(ms < 1500);
    snprintf(needle, sizeof needle, "sleep %ld", m);
    assert_int_equal(count_procs(needle, 0), 0);
    char *log = slurp(r.log);
    /* sleep, sh, sleep, sleep (and the subshell if it has not exited yet): how many the
     * sweeps met depends on timing, but they are counted and noted once */
    const char *note = strstr(log, "==== ava: killed ");
    assert_non_null(note);
    int killed = atoi(note + 17);
    assert_true(killed >= 1 && killed <= 5);
    assert_non_null(strstr(note, " leftover process(es) ====\n"));
    assert_null(strstr(note + 1, "==== ava: killed "));
    free(log);
    rd_remove(&r);
}

/* Two runs append to the same log; each knows its own byte range. */
static void test_run_two_runs_one_log(void **state) {
    struct rd r;
    rd_make(&r);
    write_spec(&r, sh_spec(&r, "echo first"));
    struct ava_exit_record a, b;
    assert_int_equal(run_shim(&r, &a, NULL), 0);
    json_t *s = sh_spec(&r, "echo second");
    set_int(s, "run", 2);
    write_spec(&r, s);
    assert_int_equal(run_shim(&r, &b, NULL), 0);
    char *log = slurp(r.log);
    assert_int_equal(a.log_start, 0);
    assert_int_equal(b.log_start, a.log_end);
    assert_int_equal(b.log_end, (int64_t)strlen(log));
    assert_true(strncmp(log + b.log_start, "==== ava: training t1 run 2 started ", 36) == 0);
    assert_string_equal(after_marker(log + b.log_start), "second\n");
    int markers = 0;
    for (const char *p = log; (p = strstr(p, "==== ava: training t1 run ")); p++)
        markers++;
    assert_int_equal(markers, 2);
    assert_non_null(strstr(log, "\nfirst\n==== ava: training t1 run 2"));
    free(log);
    rd_remove(&r);
}

/* AVA_RESUME_FROM names the newest checkpoint-* in the output dir, replacing what the spec's
 * env says; without a checkpoint it is not set at all. */
static void test_run_resume_from(void **state) {
    for (int with = 1; with >= 0; with--) {
        struct rd r;
        rd_make(&r);
        assert_int_equal(ava_mkdir_p(r.out, 0755, NULL), 0);
        if (with) {
            make_entry(r.out, "checkpoint-1", 1, 1700000000);
            make_entry(r.out, "checkpoint-2", 0, 1700000100);
        }
        json_t *s = sh_spec(&r, "echo \"R=$AVA_RESUME_FROM\"; env | grep -c AVA_RESUME_FROM");
        json_object_set_new(s, "env",
                            json_pack("[s, s]", "PATH=/usr/bin:/bin", "AVA_RESUME_FROM=/stale"));
        write_spec(&r, s);
        struct ava_exit_record rec;
        assert_int_equal(run_shim(&r, &rec, NULL), 0);
        char *log = slurp(r.log), want[700];
        snprintf(want, sizeof want, with ? "R=%s/checkpoint-2\n1\n" : "R=\n0\n", r.out);
        assert_string_equal(after_marker(log), want);
        free(log);
        rd_remove(&r);
    }
}

/* Broken specs end in a failed record naming the problem, and nothing runs. The first case
 * is the same template made valid: it shows that the entry would have left its mark. */
static void test_run_bad_specs(void **state) {
    static const struct {
        const char *key, *entry, *args, *env, *extra, *want;
    } cases[] = {
        {"entry", "/bin/sh", "[\"-c\", \"touch t\"]", "[]", "", NULL},
        {NULL, NULL, NULL, NULL, NULL, "not valid JSON"},
        {NULL, NULL, NULL, NULL, NULL, "cannot open"}, /* no spec.json at all */
        {"entrypoint", "/bin/sh", "[\"-c\", \"touch t\"]", "[]", "", "'entry' is missing"},
        {"entry", "sh", "[\"-c\", \"touch t\"]", "[]", "", "'entry' must be an absolute path"},
        {"entry", "/bin/sh", "[\"-c\", \"touch t\", 5]", "[]", "", "'args' must be an array"},
        {"entry", "/bin/sh", "{\"-c\": \"touch t\"}", "[]", "", "'args' must be an array"},
        {"entry", "/bin/sh", "[\"-c\", \"touch t\"]", "[\"A=1\", \"B\"]", "", "is not K=V"},
        {"entry", "/bin/sh", "[\"-c\", \"touch t\"]", "[]", ",\"grace_ms\":\"5\"",
         "'grace_ms' must be an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rd r;
        rd_make(&r);
        char text[2048], touched[512];
        snprintf(touched, sizeof touched, "%s/t", r.dir);
        if (cases[i].key) {
            snprintf(text, sizeof text,
                     "{\"training\":\"t1\",\"run\":1,\"%s\":\"%s\",\"args\":%s,\"env\":%s,"
                     "\"cwd\":\"%s\",\"log_path\":\"%s\",\"output_dir\":\"%s\"%s}",
                     cases[i].key, cases[i].entry, cases[i].args, cases[i].env, r.dir, r.log, r.out,
                     cases[i].extra);
            write_spec_text(&r, text);
        }
        if (i == 1)
            write_spec_text(&r, "{\"training\": \"t1\", ");
        struct ava_exit_record rec;
        int rc = run_shim(&r, &rec, NULL);
        if (!cases[i].want) {
            assert_string_equal(rec.state, "succeeded");
            assert_int_equal(access(touched, F_OK), 0);
        } else {
            if (rc != 1 || strcmp(rec.state, "failed") ||
                strncmp(rec.reason, "start error: ", 13) || !strstr(rec.reason, cases[i].want))
                fail_msg("case %zu: rc=%d state=%s reason='%s'", i, rc, rec.state, rec.reason);
            assert_int_equal(access(touched, F_OK), -1);
            assert_int_equal(access(r.log, F_OK), -1);
            char *ev = slurp_in(&r, "events");
            assert_non_null(strstr(ev, " failed start error: "));
            free(ev);
        }
        rd_remove(&r);
    }
}

/* Output larger than the pipe and the copy buffer arrives whole and in order. */
static void test_run_large_output(void **state) {
    struct rd r;
    rd_make(&r);
    write_spec(&r, sh_spec(&r, "seq 1 200000; echo end >&2"));
    struct ava_exit_record rec;
    assert_int_equal(run_shim(&r, &rec, NULL), 0);
    char *log = slurp(r.log);
    const char *body = after_marker(log);
    assert_true(strncmp(body, "1\n2\n3\n", 6) == 0);
    assert_non_null(strstr(body, "\n199999\n200000\nend\n"));
    assert_int_equal(strlen(body), 1288895 + 4);
    free(log);
    rd_remove(&r);
}

/* A short run is fast: spawn to exit record for /bin/true takes a few ms, not a poll interval. */
static void test_run_fast(void **state) {
    struct rd r;
    rd_make(&r);
    write_spec(&r, base_spec(&r, "/bin/true"));
    struct ava_exit_record rec;
    int64_t ms;
    assert_int_equal(run_shim(&r, &rec, &ms), 0);
    assert_string_equal(rec.state, "succeeded");
    print_message("shim /bin/true: spawn to exit record %lld ms\n", (long long)ms);
    assert_true(ms < 1000);
    rd_remove(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_mark_descendants),
        cmocka_unit_test(test_pidset),
        cmocka_unit_test(test_tree_signal_real),
        cmocka_unit_test(test_checkpoint_newer),
        cmocka_unit_test(test_newest_checkpoint),
        cmocka_unit_test(test_spec_parse_ok),
        cmocka_unit_test(test_spec_parse_bad),
        cmocka_unit_test(test_spec_inherit_env),
        cmocka_unit_test(test_metrics_pipe_gathers),
        cmocka_unit_test(test_outcome_from_status),
        cmocka_unit_test(test_run_succeeded),
        cmocka_unit_test(test_run_outcomes),
        cmocka_unit_test(test_run_child_setup),
        cmocka_unit_test(test_run_timeout),
        cmocka_unit_test(test_run_stop_tree),
        cmocka_unit_test(test_run_stop_ignored),
        cmocka_unit_test(test_run_timeout_then_stop),
        cmocka_unit_test(test_run_leftovers),
        cmocka_unit_test(test_run_two_runs_one_log),
        cmocka_unit_test(test_run_resume_from),
        cmocka_unit_test(test_run_bad_specs),
        cmocka_unit_test(test_run_large_output),
        cmocka_unit_test(test_run_fast),
    };
    if (!getenv("AVA_SHIM")) {
        fprintf(stderr, "test_shim: set AVA_SHIM to the ava-shim binary\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
