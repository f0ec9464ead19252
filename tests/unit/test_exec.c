/* test_exec.c: src/exec: run paths, run dir preparation (trainingspec, spec.json, the entry's
 * environment) and the local executor driving the real ava-shim on a libevent loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/common/file.h"
#include "../../src/common/path.h"
#include "../../src/common/rundir.h"
#include "../../src/exec/exec.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A training as the store would hand it to the executor. */
static struct ava_training training(int64_t id, const char *name, const char *user,
                                    const char *group) {
    struct ava_training t = {0};
    t.id = id;
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.user, sizeof t.user, "%s", user);
    snprintf(t.group, sizeof t.group, "%s", group);
    snprintf(t.image, sizeof t.image, "ava-pure:host");
    snprintf(t.image_kind, sizeof t.image_kind, "host");
    t.gpus = 2;
    t.mem_bytes = 1 << 20;
    t.entry = "/bin/sh";
    t.args_json = "[\"-c\",\"echo hi\"]";
    t.env_json = "{\"FOO\":\"mine\"}";
    t.max_runtime_ms = 60000;
    return t;
}

/* ---- ava_exec_paths ---- */

static void test_paths_layout(void **state) {
    (void)state;
    struct ava_training t = training(7, "hello", "alice", "vision");
    struct ava_run_paths p;
    char err[AVA_ERRLEN] = "";
    int r = ava_exec_paths("/d", &t, 3, &p, err);
    CHECK(r == 0, "paths: %s", err);
    assert_string_equal(p.run_dir, "/d/runs/7/3");
    assert_string_equal(p.config_dir, "/d/runs/7/3/config");
    assert_string_equal(p.log_path, "/d/storage/group/vision/alice/run/train_hello_out.log");
    assert_string_equal(p.output_dir, "/d/storage/group/vision/alice/run/hello/output");
    assert_string_equal(p.group_dir, "/d/storage/group/vision");
    assert_string_equal(p.home_dir, "/d/storage/group/vision/alice");
}

static void test_paths_refuse_escaping_names(void **state) {
    (void)state;
    static const struct {
        const char *name, *user, *group;
    } cases[] = {
        {"..", "alice", "vision"},  {"hello", "alice", ".."}, {"hello", "..", "vision"},
        {"a/b", "alice", "vision"}, {".", "alice", "vision"}, {"", "alice", "vision"},
        {"hello", "alice", ""},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ava_training t = training(7, cases[i].name, cases[i].user, cases[i].group);
        struct ava_run_paths p;
        char err[AVA_ERRLEN] = "";
        int r = ava_exec_paths("/d", &t, 3, &p, err);
        CHECK(r == AVA_EINVALID, "case %zu (%s/%s/%s): %d, want AVA_EINVALID", i, cases[i].name,
              cases[i].user, cases[i].group, r);
        CHECK(err[0], "case %zu: no message", i);
    }
}

/* ---- ava_exec_prepare ---- */

struct pfx {
    char dir[64];
    struct ava_training t;
    struct ava_run_paths paths;
};

static int pfx_teardown(void **state);

static int pfx_setup(void **state) {
    struct pfx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ava-test-exec-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->t = training(7, "hello", "alice", "vision");
    *state = f;
    if (ava_exec_paths(f->dir, &f->t, 3, &f->paths, NULL) < 0) {
        pfx_teardown(state);
        return -1;
    }
    return 0;
}

static int pfx_teardown(void **state) {
    struct pfx *f = *state;
    ava_rm_rf(f->dir, NULL);
    free(f);
    return 0;
}

static void prepare(struct pfx *f, const char *image_env, const char *gpus) {
    struct ava_prepare p = {.training = &f->t,
                            .number = 3,
                            .paths = &f->paths,
                            .image_env_json = image_env,
                            .gpus = gpus,
                            .grace_ms = 1234};
    char err[AVA_ERRLEN] = "";
    int r = ava_exec_prepare(&p, err);
    CHECK(r == 0, "prepare: %s", err);
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static json_t *load_json(const char *dir, const char *name) {
    char path[AVA_PATH_MAX];
    assert_int_equal(ava_path_join(path, sizeof path, NULL, dir, name, NULL), 0);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECK(j != NULL, "%s: %s", path, je.text);
    return j;
}

static void test_prepare_without_gpus_writes_no_spec(void **state) {
    struct pfx *f = *state;
    prepare(f, NULL, NULL);
    assert_true(is_dir(f->paths.config_dir));
    assert_true(is_dir(f->paths.output_dir));
    char logdir[AVA_PATH_MAX];
    ava_path_join(logdir, sizeof logdir, NULL, f->dir, "storage", "group", "vision", "alice", "run",
                  NULL);
    assert_true(is_dir(logdir));
    char spec[AVA_PATH_MAX];
    assert_int_equal(ava_path_join(spec, sizeof spec, NULL, f->paths.run_dir, "spec.json", NULL),
                     0);
    assert_int_equal(access(spec, F_OK), -1);

    json_t *ts = load_json(f->paths.config_dir, "trainingspec");
    assert_string_equal(json_string_value(json_object_get(ts, "name")), "hello");
    assert_int_equal(json_integer_value(json_object_get(ts, "run")), 3);
    assert_string_equal(json_string_value(json_object_get(ts, "owner")), "alice");
    assert_string_equal(json_string_value(json_object_get(ts, "group")), "vision");
    assert_string_equal(json_string_value(json_object_get(ts, "image")), "ava-pure:host");
    assert_string_equal(json_string_value(json_object_get(ts, "entry")), "/bin/sh");
    assert_int_equal(json_integer_value(json_object_get(ts, "max_runtime_ms")), 60000);
    json_t *res = json_object_get(ts, "resources");
    assert_true(json_is_object(res));
    assert_int_equal(json_integer_value(json_object_get(res, "gpus")), 2);
    assert_int_equal(json_integer_value(json_object_get(res, "cpus")), 0);
    assert_int_equal(json_integer_value(json_object_get(res, "mem_bytes")), 1 << 20);
    json_t *args = json_object_get(ts, "args");
    assert_int_equal(json_array_size(args), 2);
    assert_string_equal(json_string_value(json_array_get(args, 1)), "echo hi");
    json_t *env = json_object_get(ts, "env");
    assert_true(json_is_object(env));
    assert_string_equal(json_string_value(json_object_get(env, "FOO")), "mine");
    assert_int_equal(json_object_size(env), 1);
    json_decref(ts);
}

/* The value of KEY in an array of "K=V" strings; fails when KEY appears twice. */
static const char *env_get(json_t *env, const char *key) {
    const char *found = NULL;
    size_t i, klen = strlen(key);
    json_t *v;
    json_array_foreach(env, i, v) {
        const char *s = json_string_value(v);
        if (s && strncmp(s, key, klen) == 0 && s[klen] == '=') {
            CHECK(!found, "%s appears twice", key);
            found = s + klen + 1;
        }
    }
    return found;
}

static void test_prepare_with_gpus_writes_spec(void **state) {
    struct pfx *f = *state;
    prepare(f, "{\"LANG\":\"en_US.UTF-8\",\"FOO\":\"img\"}", "0,2");
    json_t *spec = load_json(f->paths.run_dir, "spec.json");
    assert_string_equal(json_string_value(json_object_get(spec, "training")), "hello");
    assert_int_equal(json_integer_value(json_object_get(spec, "training_id")), 7);
    assert_int_equal(json_integer_value(json_object_get(spec, "run")), 3);
    assert_string_equal(json_string_value(json_object_get(spec, "entry")), "/bin/sh");
    json_t *args = json_object_get(spec, "args");
    assert_true(json_is_array(args));
    assert_int_equal(json_array_size(args), 2);
    assert_string_equal(json_string_value(json_array_get(args, 0)), "-c");
    assert_string_equal(json_string_value(json_object_get(spec, "cwd")), f->paths.output_dir);
    assert_string_equal(json_string_value(json_object_get(spec, "log_path")), f->paths.log_path);
    assert_string_equal(json_string_value(json_object_get(spec, "output_dir")),
                        f->paths.output_dir);
    assert_int_equal(json_integer_value(json_object_get(spec, "max_runtime_ms")), 60000);
    assert_int_equal(json_integer_value(json_object_get(spec, "grace_ms")), 1234);
    assert_string_equal(json_string_value(json_object_get(spec, "gpus")), "0,2");
    assert_true(json_is_array(json_object_get(spec, "env")));
    json_decref(spec);

    /* written atomically: only config/ and spec.json, no temp file left */
    DIR *d = opendir(f->paths.run_dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        CHECK(!strcmp(e->d_name, "config") || !strcmp(e->d_name, "spec.json"),
              "unexpected file %s in the run dir", e->d_name);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 2);
}

static void test_prepare_env_layers_and_platform_variables(void **state) {
    struct pfx *f = *state;
    setenv("AVA_TOKEN", "secret", 1);
    setenv("LEAKME", "1", 1);
    /* the image and the training both try to set platform variables: the platform wins */
    f->t.env_json = "{\"FOO\":\"mine\",\"AVA_RUN\":\"99\"}";
    prepare(f,
            "{\"LANG\":\"en_US.UTF-8\",\"FOO\":\"img\",\"BAR\":\"img\","
            "\"AVA_TRAINING\":\"forged\",\"CUDA_VISIBLE_DEVICES\":\"9\"}",
            "0,2");
    json_t *spec = load_json(f->paths.run_dir, "spec.json");
    json_t *env = json_object_get(spec, "env");
    char path[AVA_PATH_MAX];
    ava_path_join(path, sizeof path, NULL, f->dir, "storage", "group", "vision", "alice", NULL);
    const struct {
        const char *key, *want;
    } cases[] = {
        {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        {"HOME", f->paths.home_dir},
        {"LANG", "en_US.UTF-8"}, /* the image overrides the base */
        {"FOO", "mine"},         /* the training overrides the image */
        {"BAR", "img"},
        {"AVA_TRAINING", "hello"},
        {"AVA_RUN", "3"},
        {"AVA_USER", "alice"},
        {"AVA_GROUP", "vision"},
        {"AVA_GROUP_DIR", f->paths.group_dir},
        {"AVA_OUTPUT_DIR", f->paths.output_dir},
        {"AVA_CONFIG_DIR", f->paths.config_dir},
        {"AVA_LOG_PATH", f->paths.log_path},
        {"CUDA_VISIBLE_DEVICES", "0,2"},
        {"NVIDIA_VISIBLE_DEVICES", "0,2"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const char *v = env_get(env, cases[i].key);
        CHECK(v && !strcmp(v, cases[i].want), "%s=%s, want %s", cases[i].key, v ? v : "(unset)",
              cases[i].want);
    }
    assert_string_equal(f->paths.home_dir, path);
    /* every entry is K=V with a distinct K, and nothing else is there */
    size_t i;
    json_t *v;
    json_array_foreach(env, i, v) {
        const char *s = json_string_value(v);
        CHECK(s && strchr(s, '='), "env[%zu] is not K=V", i);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(strchr(s, '=') - s), s);
        env_get(env, key); /* fails on a duplicate */
        bool known = false;
        for (size_t k = 0; k < N_ELEMS(cases) && !known; k++)
            known = !strcmp(key, cases[k].key);
        CHECK(known, "unexpected variable %s", s);
    }
    assert_int_equal(json_array_size(env), N_ELEMS(cases));
    assert_null(env_get(env, "AVA_TOKEN"));
    assert_null(env_get(env, "LEAKME"));
    json_decref(spec);
    unsetenv("AVA_TOKEN");
    unsetenv("LEAKME");
}

static void test_prepare_cpu_run_has_empty_device_lists(void **state) {
    struct pfx *f = *state;
    prepare(f, NULL, "");
    json_t *spec = load_json(f->paths.run_dir, "spec.json");
    json_t *env = json_object_get(spec, "env");
    assert_string_equal(env_get(env, "CUDA_VISIBLE_DEVICES"), "");
    assert_string_equal(env_get(env, "NVIDIA_VISIBLE_DEVICES"), "");
    assert_string_equal(env_get(env, "LANG"), "C.UTF-8");
    assert_string_equal(json_string_value(json_object_get(spec, "gpus")), "");
    json_decref(spec);
}

/* ---- the local executor with the real ava-shim ---- */

struct lfx {
    char dir[64];
    struct event_base *base;
    struct event *guard;
    struct ava_executor *ex;
    int done;
    int64_t done_run;
    bool timed_out;
};

static void on_done(void *ctx, int64_t run_id) {
    struct lfx *f = ctx;
    f->done++;
    f->done_run = run_id;
    event_base_loopbreak(f->base);
}

static void on_guard(evutil_socket_t fd, short what, void *arg) {
    struct lfx *f = arg;
    f->timed_out = true;
    event_base_loopbreak(f->base);
}

static int lfx_setup(void **state) {
    if (!getenv("AVA_SHIM")) {
        fprintf(stderr, "AVA_SHIM must name the ava-shim binary (meson test sets it)\n");
        return -1;
    }
    struct lfx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ava-test-exec-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->base = event_base_new();
    f->guard = evtimer_new(f->base, on_guard, f);
    f->ex = ava_exec_local_new(f->base, getenv("AVA_SHIM"), on_done, f);
    *state = f;
    return 0;
}

/* Reaps what the test left below this process (a subreaper, see main), waiting at most ms. */
static void reap_children(int ms) {
    for (int waited = 0; waited <= ms; waited += 10) {
        pid_t r;
        while ((r = waitpid(-1, NULL, WNOHANG)) > 0)
            ;
        if (r < 0 && errno == ECHILD)
            return;
        usleep(10000);
    }
}

static int lfx_teardown(void **state) {
    struct lfx *f = *state;
    reap_children(2000);
    if (f->ex)
        f->ex->destroy(f->ex);
    event_free(f->guard);
    event_base_free(f->base);
    ava_rm_rf(f->dir, NULL);
    free(f);
    return 0;
}

/* The local executor watches shims through pidfds; valgrind up to 3.19 does not implement
 * pidfd_open (nor report posix_spawn's exec errors), so under it these tests are skipped. */
static void need_pidfd(void) {
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (fd < 0) {
        print_message("pidfd_open is not available here: skipped\n");
        skip();
    }
    close(fd);
}

/* Runs the loop until the done callback fires or ms pass; returns the milliseconds waited. */
static int64_t wait_done(struct lfx *f, int ms) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int before = f->done;
    f->timed_out = false;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(f->guard, &tv);
    while (f->done == before && !f->timed_out)
        event_base_dispatch(f->base);
    evtimer_del(f->guard);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK(f->done > before, "the done callback did not fire within %d ms", ms);
    return (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
}

/* Prepares run 1 of a CPU training running entry + args; fills paths. */
static void prepare_run(struct lfx *f, const char *name, const char *entry, const char *args,
                        int64_t grace_ms, struct ava_run_paths *paths) {
    struct ava_training t = training(1, name, "alice", "g");
    t.gpus = 0;
    t.cpus = 1;
    t.entry = (char *)entry;
    t.args_json = (char *)args;
    char err[AVA_ERRLEN] = "";
    int r = ava_exec_paths(f->dir, &t, 1, paths, err);
    CHECK(r == 0, "paths: %s", err);
    struct ava_prepare p = {
        .training = &t, .number = 1, .paths = paths, .gpus = "", .grace_ms = grace_ms};
    r = ava_exec_prepare(&p, err);
    CHECK(r == 0, "prepare: %s", err);
}

/* Launches run_id on f's executor; checks the id is "PID:STARTTIME" of a live process. */
static pid_t launch(struct lfx *f, int64_t run_id, const char *run_dir, char *id, size_t idlen) {
    char err[AVA_ERRLEN] = "";
    int r = f->ex->launch(f->ex, run_id, run_dir, id, idlen, err);
    CHECK(r == 0, "launch: %s", err);
    int pid = 0, used = 0;
    uint64_t start = 0, now = 0;
    CHECK(sscanf(id, "%d:%" SCNu64 "%n", &pid, &start, &used) == 2 && (size_t)used == strlen(id),
          "executor id '%s' is not PID:STARTTIME", id);
    assert_true(pid > 0);
    assert_int_equal(ava_proc_start_time(pid, &now), 0);
    assert_true(now == start);
    assert_int_equal(getsid(pid), pid); /* its own session, so it outlives avad */
    return pid;
}

static struct ava_exit_record read_exit(const char *run_dir) {
    struct ava_exit_record er;
    char err[AVA_ERRLEN] = "";
    int r = ava_rundir_read_exit(run_dir, &er, err);
    CHECK(r == 0, "exit record: %s", err);
    return er;
}

/* Waits (without the loop) until the shim has written its status file: the entry runs. */
static void wait_status(const char *run_dir) {
    struct ava_shim_info si;
    for (int i = 0; i < 500; i++) {
        if (ava_rundir_read_status(run_dir, &si, NULL) == 0)
            return;
        usleep(10000);
    }
    fail_msg("no status file in %s after 5 s", run_dir);
}

static void test_local_runs_to_success(void **state) {
    struct lfx *f = *state;
    need_pidfd();
    struct ava_run_paths p;
    prepare_run(f, "hi", "/bin/sh", "[\"-c\",\"echo hi\"]", 1000, &p);
    char id[64];
    pid_t pid = launch(f, 42, p.run_dir, id, sizeof id);
    wait_done(f, 10000);
    assert_int_equal(f->done, 1);
    assert_int_equal(f->done_run, 42);
    struct ava_exit_record er = read_exit(p.run_dir);
    assert_string_equal(er.state, "succeeded");
    assert_int_equal(er.exit_code, 0);
    assert_int_equal(er.signal, 0);
    assert_true(er.log_end > er.log_start);
    char *log = NULL;
    assert_int_equal(ava_file_read_all(p.log_path, 1 << 20, &log, NULL, NULL), 0);
    CHECK(strstr(log, "hi\n"), "log: '%s'", log);
    free(log);
    /* the executor reaped its child: no zombie left */
    errno = 0;
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_local_entry_sees_only_the_spec_environment(void **state) {
    struct lfx *f = *state;
    need_pidfd();
    setenv("AVA_TOKEN", "secret", 1);
    setenv("LEAKME", "1", 1);
    struct ava_run_paths p;
    prepare_run(f, "env", "/usr/bin/env", "[]", 1000, &p);
    char id[64];
    launch(f, 1, p.run_dir, id, sizeof id);
    wait_done(f, 10000);
    assert_string_equal(read_exit(p.run_dir).state, "succeeded");
    char *log = NULL;
    assert_int_equal(ava_file_read_all(p.log_path, 1 << 20, &log, NULL, NULL), 0);
    CHECK(strstr(log, "\nFOO=mine\n") && strstr(log, "\nAVA_TRAINING=env\n"), "log: '%s'", log);
    CHECK(!strstr(log, "LEAKME") && !strstr(log, "secret"), "the daemon's environment leaked: %s",
          log);
    free(log);
    unsetenv("AVA_TOKEN");
    unsetenv("LEAKME");
}

static void test_local_stop_ends_stopped(void **state) {
    struct lfx *f = *state;
    need_pidfd();
    struct ava_run_paths p;
    prepare_run(f, "sleeper", "/bin/sleep", "[\"60\"]", 200, &p);
    char id[64], err[AVA_ERRLEN] = "";
    launch(f, 5, p.run_dir, id, sizeof id);
    wait_status(p.run_dir);
    struct ava_shim_info si;
    assert_int_equal(ava_rundir_read_status(p.run_dir, &si, NULL), 0);
    assert_true(si.entry_pid > 0);
    int r = f->ex->stop(f->ex, 5, err);
    CHECK(r == 0, "stop: %s", err);
    int64_t waited = wait_done(f, 10000);
    CHECK(waited < 2500, "stop took %lld ms", (long long)waited);
    assert_int_equal(f->done_run, 5);
    struct ava_exit_record er = read_exit(p.run_dir);
    assert_string_equal(er.state, "stopped");
    assert_true(er.stopping_at > 0);
    /* the entry is gone too */
    assert_int_equal(kill(si.entry_pid, 0), -1);
    /* an unknown run cannot be stopped */
    assert_int_equal(f->ex->stop(f->ex, 6, err), AVA_ENOTFOUND);
}

/* This program doubles as a slow-starting shim: spawned as "ava-shim RUN_DIR" with a file
 * RUN_DIR/slow-shim naming the real shim, it waits 300 ms (leaving the signal state as it
 * found it) and then becomes the real shim. Returns only on failure. */
static int slow_shim(char **argv) {
    char marker[AVA_PATH_MAX], *real = NULL;
    if (ava_path_join(marker, sizeof marker, NULL, argv[1], "slow-shim", NULL) < 0 ||
        ava_file_read_all(marker, AVA_PATH_MAX, &real, NULL, NULL) < 0)
        return 1;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    execv(real, argv);
    return 1;
}

/* A stop that reaches the shim before it is ready (a loaded machine, a cold cache: modelled
 * by starting the real shim 300 ms late) must still end the run stopped. */
static void test_local_stop_before_the_shim_is_ready_ends_stopped(void **state) {
    struct lfx *f = *state;
    need_pidfd();
    char self[AVA_PATH_MAX], marker[AVA_PATH_MAX], id[64], err[AVA_ERRLEN] = "";
    assert_non_null(realpath("/proc/self/exe", self));
    f->ex->destroy(f->ex);
    f->ex = ava_exec_local_new(f->base, self, on_done, f);
    struct ava_run_paths p;
    prepare_run(f, "sleeper", "/bin/sleep", "[\"60\"]", 200, &p);
    const char *real = getenv("AVA_SHIM");
    assert_int_equal(ava_path_join(marker, sizeof marker, NULL, p.run_dir, "slow-shim", NULL), 0);
    assert_int_equal(ava_file_write_atomic(marker, real, strlen(real), 0644, NULL), 0);
    launch(f, 5, p.run_dir, id, sizeof id);
    /* a user may stop a training the moment it was created */
    int r = f->ex->stop(f->ex, 5, err);
    CHECK(r == 0, "stop: %s", err);
    wait_done(f, 10000);
    struct ava_exit_record er;
    r = ava_rundir_read_exit(p.run_dir, &er, err);
    CHECK(r == 0,
          "a stop sent before the shim was ready left no exit record (%s): the run ends "
          "failed/lost instead of stopped",
          err);
    assert_string_equal(er.state, "stopped");
}

static void test_local_attach_after_restart(void **state) {
    struct lfx *f = *state;
    need_pidfd();
    struct ava_run_paths p;
    prepare_run(f, "nap", "/bin/sleep", "[\"1\"]", 200, &p);
    char id[64], err[AVA_ERRLEN] = "";
    pid_t pid = launch(f, 9, p.run_dir, id, sizeof id);
    /* avad goes away: the shim keeps running */
    f->ex->destroy(f->ex);
    f->ex = NULL;
    assert_int_equal(kill(pid, 0), 0);
    /* a new avad on the same loop finds it again */
    f->ex = ava_exec_local_new(f->base, getenv("AVA_SHIM"), on_done, f);
    int r = f->ex->attach(f->ex, 9, p.run_dir, id, err);
    CHECK(r == 0, "attach %s: %s", id, err);
    wait_done(f, 10000);
    assert_int_equal(f->done, 1);
    assert_int_equal(f->done_run, 9);
    assert_string_equal(read_exit(p.run_dir).state, "succeeded");
    /* it was not B's child to reap; the test process is its parent */
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_local_attach_refuses_gone_or_bad_ids(void **state) {
    struct lfx *f = *state;
    char err[AVA_ERRLEN], id[64];
    /* a live process whose start time does not match (a reused pid) */
    uint64_t start;
    assert_int_equal(ava_proc_start_time(getpid(), &start), 0);
    snprintf(id, sizeof id, "%d:%" PRIu64, (int)getpid(), start + 1);
    assert_int_equal(f->ex->attach(f->ex, 1, f->dir, id, err), AVA_ENOTFOUND);
    snprintf(id, sizeof id, "%d:1", (int)getpid());
    assert_int_equal(f->ex->attach(f->ex, 1, f->dir, id, err), AVA_ENOTFOUND);
    /* a dead pid */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    assert_true(child > 0);
    uint64_t cstart = 0;
    ava_proc_start_time(child, &cstart);
    assert_int_equal(waitpid(child, NULL, 0), child);
    snprintf(id, sizeof id, "%d:%" PRIu64, (int)child, cstart);
    assert_int_equal(f->ex->attach(f->ex, 1, f->dir, id, err), AVA_ENOTFOUND);
    /* malformed ids */
    static const char *const bad[] = {"x", "", "12", ":5", "0:0", "-1:5", "abc:def"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        err[0] = '\0';
        int r = f->ex->attach(f->ex, 1, f->dir, bad[i], err);
        CHECK(r == AVA_ENOTFOUND, "id '%s': %d, want AVA_ENOTFOUND", bad[i], r);
        CHECK(err[0], "id '%s': no message", bad[i]);
    }
    /* nothing is watched: the loop has nothing to report */
    assert_int_equal(f->done, 0);
}

static void test_local_launch_with_missing_shim_fails(void **state) {
    struct lfx *f = *state;
    need_pidfd();
    struct ava_run_paths p;
    prepare_run(f, "hi", "/bin/true", "[]", 200, &p);
    f->ex->destroy(f->ex);
    f->ex = ava_exec_local_new(f->base, "/nonexistent/ava-shim", on_done, f);
    char id[64] = "", err[AVA_ERRLEN] = "";
    assert_int_equal(f->ex->launch(f->ex, 1, p.run_dir, id, sizeof id, err), AVA_EIO);
    assert_non_null(strstr(err, "/nonexistent/ava-shim"));
    assert_int_equal(f->done, 0);
}

#define T(fn) cmocka_unit_test(fn)
#define P(fn) cmocka_unit_test_setup_teardown(fn, pfx_setup, pfx_teardown)
#define L(fn) cmocka_unit_test_setup_teardown(fn, lfx_setup, lfx_teardown)

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[0], "ava-shim"))
        return slow_shim(argv);
    /* orphans of the tests' processes come back here to be reaped, not to init */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    const struct CMUnitTest tests[] = {
        T(test_paths_layout),
        T(test_paths_refuse_escaping_names),
        P(test_prepare_without_gpus_writes_no_spec),
        P(test_prepare_with_gpus_writes_spec),
        P(test_prepare_env_layers_and_platform_variables),
        P(test_prepare_cpu_run_has_empty_device_lists),
        L(test_local_runs_to_success),
        L(test_local_entry_sees_only_the_spec_environment),
        L(test_local_stop_ends_stopped),
        L(test_local_stop_before_the_shim_is_ready_ends_stopped),
        L(test_local_attach_after_restart),
        L(test_local_attach_refuses_gone_or_bad_ids),
        L(test_local_launch_with_missing_shim_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
