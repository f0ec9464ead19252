/* test_exec_slurm.c: src/exec's Slurm side: parsing squeue / scontrol / sinfo output (real
 * 22.05 output in tests/fixtures/slurm, later releases' shapes written by hand, malformed
 * input), the state mapping, the command runner, and the executor driven against stand-in
 * sbatch / squeue / scancel scripts (the real cluster is exercised by tests/e2e/slurm.sh). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/common/file.h"
#include "../../src/exec/cmd.h"
#include "../../src/exec/exec.h"
#include "../../src/exec/slurm.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Reads tests/fixtures/slurm/<name> into a malloc'd string. */
static char *fixture(const char *name, size_t *len) {
    const char *src = getenv("AVA_SOURCE_DIR");
    char path[1024], *text = NULL, err[AVA_ERRLEN];
    snprintf(path, sizeof path, "%s/tests/fixtures/slurm/%s", src ? src : ".", name);
    size_t n = 0;
    if (ava_file_read_all(path, 1 << 22, &text, &n, err) < 0)
        fail_msg("%s", err);
    if (len)
        *len = n;
    return text;
}

static const struct ava_slurm_job *find_job(const struct ava_slurm_job *v, size_t n,
                                            const char *id) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].id, id))
            return &v[i];
    fail_msg("job %s not in the answer", id);
    return NULL;
}

/* Real squeue --json of Slurm 22.05: failed, completed, running with GPUs, pending. */
static void test_squeue_22_05(void **state) {
    size_t len, n;
    char *text = fixture("squeue-22.05.json", &len), err[AVA_ERRLEN];
    struct ava_slurm_job *jobs;
    assert_int_equal(ava_slurm_parse_squeue(text, len, &jobs, &n, err), 0);
    assert_int_equal(n, 6);
    const struct ava_slurm_job *j = find_job(jobs, n, "1");
    assert_string_equal(j->state, "FAILED");
    assert_int_equal(j->exit_code, 3); /* 768 is a raw wait status */
    assert_int_equal(j->signal, 0);
    assert_string_equal(ava_slurm_final_state(j->state), "failed");
    char why[256];
    ava_slurm_describe_end(j, why, sizeof why);
    assert_string_equal(why, "Slurm job 1: FAILED (NonZeroExitCode), exit code 3");
    j = find_job(jobs, n, "4");
    assert_string_equal(j->state, "RUNNING");
    assert_string_equal(j->node, "localhost");
    assert_string_equal(j->gpus, "0");
    assert_int_equal(ava_slurm_phase_of(j->state), AVA_SLURM_ACTIVE);
    assert_string_equal(find_job(jobs, n, "5")->gpus, "1");
    j = find_job(jobs, n, "6");
    assert_string_equal(j->state, "PENDING");
    assert_string_equal(j->reason, "Resources");
    assert_string_equal(j->node, "");
    assert_int_equal(ava_slurm_phase_of(j->state), AVA_SLURM_WAITING);
    j = find_job(jobs, n, "2");
    ava_slurm_describe_end(j, why, sizeof why);
    assert_string_equal(why, "Slurm job 2: COMPLETED");
    free(jobs);
    free(text);
}

/* Later releases: state arrays, exit codes as objects with set/number wrappers. */
static void test_squeue_later_shapes(void **state) {
    const char *text =
        "{\"jobs\":[{\"job_id\":41,\"job_state\":[\"OUT_OF_MEMORY\"],\"state_reason\":\"None\","
        "\"nodes\":\"n1\",\"exit_code\":{\"status\":[\"SIGNALED\"],\"return_code\":{\"set\":true,"
        "\"number\":0},\"signal\":{\"id\":{\"set\":true,\"number\":9},\"name\":\"KILL\"}}},"
        "{\"job_id\":{\"set\":true,\"number\":42},\"job_state\":[\"TIMEOUT\"],\"exit_code\":"
        "{\"return_code\":{\"set\":true,\"number\":0}},\"gres_detail\":[\"gpu:a100:2(IDX:1-2)\"],"
        "\"batch_host\":\"n2\",\"future\":{\"x\":1}}],\"meta\":{}}";
    struct ava_slurm_job *jobs;
    size_t n;
    char err[AVA_ERRLEN], why[256];
    assert_int_equal(ava_slurm_parse_squeue(text, strlen(text), &jobs, &n, err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(jobs[0].state, "OUT_OF_MEMORY");
    assert_string_equal(jobs[0].node, "n1");
    assert_int_equal(jobs[0].signal, 9);
    ava_slurm_describe_end(&jobs[0], why, sizeof why);
    assert_string_equal(why, "Slurm job 41: OUT_OF_MEMORY, signal 9");
    assert_string_equal(ava_slurm_final_state(jobs[0].state), "failed");
    assert_string_equal(jobs[1].id, "42");
    assert_string_equal(jobs[1].gpus, "1,2");
    assert_string_equal(jobs[1].node, "n2");
    assert_string_equal(ava_slurm_final_state(jobs[1].state), "timed_out");
    free(jobs);
}

/* Malformed answers are refused with a message naming the problem. */
static void test_squeue_malformed(void **state) {
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "squeue: not JSON"},
        {"{\"jobs\":", "squeue: not JSON"},
        {"[1,2]", "no \"jobs\" array"},
        {"{\"jobs\":{}}", "no \"jobs\" array"},
        {"{\"jobs\":[{\"job_state\":\"RUNNING\"}]}", "job 0 has no job_id"},
        {"{\"jobs\":[{\"job_id\":-3,\"job_state\":\"RUNNING\"}]}", "job 0 has no job_id"},
        {"{\"jobs\":[{\"job_id\":\"7\",\"job_state\":\"RUNNING\"}]}", "job 0 has no job_id"},
        {"{\"jobs\":[{\"job_id\":7}]}", "job 7 has no job_state"},
        {"{\"jobs\":[{\"job_id\":7,\"job_state\":[]}]}", "job 7 has no job_state"},
        {"{\"jobs\":[1]}", "job 0 has no job_id"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ava_slurm_job *jobs = (void *)1;
        size_t n = 99;
        char err[AVA_ERRLEN] = "";
        int r = ava_slurm_parse_squeue(cases[i].text, strlen(cases[i].text), &jobs, &n, err);
        if (r != AVA_EINVALID || !strstr(err, cases[i].want))
            fail_msg("case %zu: r=%d err='%s', want '%s'", i, r, err, cases[i].want);
        assert_null(jobs);
        assert_int_equal(n, 0);
    }
    struct ava_slurm_job *jobs;
    size_t n;
    assert_int_equal(ava_slurm_parse_squeue("{\"jobs\":[]}", 11, &jobs, &n, NULL), 0);
    assert_int_equal(n, 0);
    free(jobs);
}

/* scontrol show job -o: the fallback. */
static void test_scontrol_lines(void **state) {
    struct ava_slurm_job j;
    char err[AVA_ERRLEN];
    char *text = fixture("scontrol-running.txt", NULL);
    assert_int_equal(ava_slurm_parse_scontrol(text, &j, err), 0);
    assert_string_equal(j.id, "4");
    assert_string_equal(j.state, "RUNNING");
    assert_string_equal(j.reason, "None");
    assert_string_equal(j.node, "localhost");
    assert_int_equal(j.exit_code, 0);
    free(text);
    text = fixture("scontrol-pending.txt", NULL);
    assert_int_equal(ava_slurm_parse_scontrol(text, &j, err), 0);
    assert_string_equal(j.state, "PENDING");
    assert_string_equal(j.reason, "Resources");
    assert_string_equal(j.node, "");
    free(text);
    assert_int_equal(ava_slurm_parse_scontrol("JobId=9 JobState=TIMEOUT Reason=TimeLimit "
                                              "ExitCode=0:15 BatchHost=n3 DerivedExitCode=2:0",
                                              &j, err),
                     0);
    assert_int_equal(j.exit_code, 0);
    assert_int_equal(j.signal, 15);
    assert_string_equal(j.node, "n3");
    assert_int_equal(ava_slurm_parse_scontrol("", &j, err), AVA_EINVALID);
    assert_non_null(strstr(err, "no JobId"));
    assert_int_equal(ava_slurm_parse_scontrol("JobId=x1 JobState=RUNNING", &j, err), AVA_EINVALID);
    assert_int_equal(ava_slurm_parse_scontrol("JobId=5 Reason=None", &j, err), AVA_EINVALID);
    assert_non_null(strstr(err, "job 5 has no JobState"));
    assert_int_equal(ava_slurm_parse_scontrol("XJobId=5 JobState=RUNNING", &j, err), AVA_EINVALID);
}

/* sinfo --json: the node with its CPUs, GPUs (from gres) and memory. */
static void test_sinfo(void **state) {
    size_t len, n;
    char *text = fixture("sinfo-22.05.json", &len), err[AVA_ERRLEN];
    struct ava_slurm_node *nodes;
    assert_int_equal(ava_slurm_parse_sinfo(text, len, &nodes, &n, err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(nodes[0].name, "localhost");
    assert_int_equal(nodes[0].cpus, 2);
    assert_int_equal(nodes[0].gpus, 2);
    assert_int_equal(nodes[0].alloc_gpus, 2);
    assert_string_equal(nodes[0].partitions, "debug");
    assert_true(nodes[0].mem_mb > 1000);
    free(nodes);
    free(text);
    const char *later = "{\"nodes\":[{\"name\":\"a\",\"state\":[\"IDLE\",\"DRAIN\"],\"cpus\":8,"
                        "\"gres\":\"gpu:v100:4(S:0-1)\",\"gres_used\":\"gpu:v100:1(IDX:2)\","
                        "\"partitions\":[\"p1\",\"p2\"]},{\"name\":\"a\",\"cpus\":8},{}]}";
    assert_int_equal(ava_slurm_parse_sinfo(later, strlen(later), &nodes, &n, err), 0);
    assert_int_equal(n, 1); /* listed twice, kept once; a nameless entry is skipped */
    assert_string_equal(nodes[0].state, "idle+drain");
    assert_string_equal(nodes[0].partitions, "p1,p2");
    assert_int_equal(nodes[0].gpus, 4);
    assert_int_equal(nodes[0].alloc_gpus, 1);
    free(nodes);
    assert_int_equal(ava_slurm_parse_sinfo("{", 1, &nodes, &n, err), AVA_EINVALID);
    assert_non_null(strstr(err, "sinfo: not JSON"));
    assert_int_equal(ava_slurm_parse_sinfo("{\"jobs\":[]}", 11, &nodes, &n, err), AVA_EINVALID);
    assert_non_null(strstr(err, "no \"nodes\" array"));
}

/* gres strings, device index lists, states, argument splitting. */
static void test_gres_states_and_args(void **state) {
    static const struct {
        const char *gres;
        int gpus;
    } g[] = {{"gpu:2", 2},
             {"gpu:tesla:2(S:0-1)", 2},
             {"gpu:(null):1(IDX:0)", 1},
             {"gpu:0", 0},
             {"", 0},
             {"(null)", 0},
             {"mps:100,gpu:a:3(S:0),gpu:b:1", 4},
             {"gpu:a:1(IDX:0,2),gpu:b:2(IDX:1)", 3},
             {"gpu", 0},
             {"gpux:3", 0},
             {"gpu:a:99999999", 0}};
    for (size_t i = 0; i < N_ELEMS(g); i++)
        if (ava_slurm_gres_gpus(g[i].gres) != g[i].gpus)
            fail_msg("'%s': %d, want %d", g[i].gres, ava_slurm_gres_gpus(g[i].gres), g[i].gpus);
    static const struct {
        const char *detail, *want;
    } d[] = {{"gpu:1(IDX:0)", "0"},         {"gpu:2(IDX:0-1)", "0,1"},
             {"gpu:3(IDX:0,2-3)", "0,2,3"}, {"gpu:1", ""},
             {"gpu:1(IDX:N/A)", ""},        {"gpu:1(IDX:3-1)", ""},
             {"gpu:t:2(IDX:4,6)", "4,6"}};
    for (size_t i = 0; i < N_ELEMS(d); i++) {
        char out[64];
        ava_slurm_gres_indices(d[i].detail, out, sizeof out);
        if (strcmp(out, d[i].want))
            fail_msg("'%s': '%s', want '%s'", d[i].detail, out, d[i].want);
    }
    assert_int_equal(ava_slurm_phase_of("CONFIGURING"), AVA_SLURM_WAITING);
    assert_int_equal(ava_slurm_phase_of("COMPLETING"), AVA_SLURM_ACTIVE);
    assert_int_equal(ava_slurm_phase_of("SOMETHING_NEW"), AVA_SLURM_ACTIVE);
    assert_int_equal(ava_slurm_phase_of("NODE_FAIL"), AVA_SLURM_ENDED);
    assert_string_equal(ava_slurm_final_state("COMPLETED"), "succeeded");
    assert_string_equal(ava_slurm_final_state("CANCELLED"), "stopped");
    assert_string_equal(ava_slurm_final_state("DEADLINE"), "timed_out");
    assert_string_equal(ava_slurm_final_state("NODE_FAIL"), "failed");
    size_t n;
    char **v = ava_slurm_split_args("  --qos=high\t--exclusive \n", &n);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "--qos=high");
    assert_string_equal(v[1], "--exclusive");
    assert_null(v[2]);
    ava_slurm_args_free(v);
    v = ava_slurm_split_args(NULL, &n);
    assert_int_equal(n, 0);
    ava_slurm_args_free(v);
}

/* The blocking runner: output, first stderr line, exit codes, time limit, missing program. */
static void test_cmd_run(void **state) {
    struct ava_cmd_result r;
    char err[AVA_ERRLEN];
    char *ok_argv[] = {"/bin/sh", "-c", "echo out; printf '\\n  first\\nsecond\\n' >&2", NULL};
    assert_int_equal(ava_cmd_run(ok_argv, 5000, &r, err), 0);
    assert_true(ava_cmd_ok(&r));
    assert_string_equal(r.out.data, "out\n");
    assert_string_equal(r.err_line, "first");
    ava_buf_free(&r.out);
    char *bad_argv[] = {"sh", "-c", "echo 'sbatch: error: no partition' >&2; exit 3", NULL};
    assert_int_equal(ava_cmd_run(bad_argv, 5000, &r, err), 0);
    assert_false(ava_cmd_ok(&r));
    assert_int_equal(ava_cmd_fail("sbatch", &r, err), AVA_EUNAVAILABLE);
    assert_string_equal(err, "sbatch: exit code 3: sbatch: error: no partition");
    ava_buf_free(&r.out);
    char *slow_argv[] = {"sleep", "5", NULL};
    assert_int_equal(ava_cmd_run(slow_argv, 200, &r, err), 0);
    assert_true(r.timed_out);
    ava_cmd_fail("squeue", &r, err);
    assert_string_equal(err, "squeue: no answer in time (killed)");
    ava_buf_free(&r.out);
    char *missing[] = {"ava-no-such-program", NULL};
    assert_int_equal(ava_cmd_run(missing, 1000, &r, err), AVA_EIO);
    assert_false(r.spawned);
    assert_non_null(strstr(err, "cannot start it"));
    ava_buf_free(&r.out);
}

/* ---- the executor against stand-in Slurm tools ---- */

struct fx {
    char dir[64];
    struct event_base *base;
    struct ava_executor *ex;
    char *old_path;
    int started, ended;
    char node[64], gpus[64], end_state[32], end_reason[256];
};

/* Writes an executable script dir/name. */
static void script(const char *dir, const char *name, const char *body) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0755);
}

/* Sets what the stand-in squeue answers next. */
static void squeue_says(struct fx *f, const char *json) {
    char path[256];
    snprintf(path, sizeof path, "%s/squeue.json", f->dir);
    assert_int_equal(ava_file_write_atomic(path, json, strlen(json), 0644, NULL), 0);
}

static void on_started(void *ctx, int64_t run_id, const char *node, const char *gpus) {
    struct fx *f = ctx;
    assert_int_equal(run_id, 7);
    f->started++;
    snprintf(f->node, sizeof f->node, "%s", node);
    snprintf(f->gpus, sizeof f->gpus, "%s", gpus);
}

static void on_ended(void *ctx, int64_t run_id, const char *st, const char *reason) {
    struct fx *f = ctx;
    assert_int_equal(run_id, 7);
    f->ended++;
    snprintf(f->end_state, sizeof f->end_state, "%s", st);
    snprintf(f->end_reason, sizeof f->end_reason, "%s", reason);
}

static int fx_setup(void **state) {
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ava-slurm-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char body[512];
    snprintf(body, sizeof body, "echo \"$@\" >> %s/sbatch.args; echo '123;ava'", f->dir);
    script(f->dir, "sbatch", body);
    snprintf(body, sizeof body, "echo \"$@\" >> %s/scancel.args", f->dir);
    script(f->dir, "scancel", body);
    snprintf(body, sizeof body, "cat %s/squeue.json", f->dir);
    script(f->dir, "squeue", body);
    script(f->dir, "scontrol",
           "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1");
    const char *path = getenv("PATH");
    f->old_path = strdup(path ? path : "/usr/bin:/bin");
    char *np = malloc(strlen(f->old_path) + strlen(f->dir) + 2);
    sprintf(np, "%s:%s", f->dir, f->old_path);
    setenv("PATH", np, 1);
    free(np);
    f->base = event_base_new();
    struct ava_slurm_config cfg = {"/opt/ava/libexec/ava-shim", "gpu", "",
                                   "--qos=high --exclusive",    20,    5000};
    f->ex = ava_exec_slurm_new(f->base, &cfg);
    f->ex->started = on_started;
    f->ex->ended = on_ended;
    f->ex->done_ctx = f;
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    struct fx *f = *state;
    f->ex->destroy(f->ex);
    event_base_free(f->base);
    setenv("PATH", f->old_path, 1);
    free(f->old_path);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Runs the loop until cond holds (or 5 s pass). */
#define LOOP_UNTIL(f, cond)                                                                        \
    do {                                                                                           \
        for (int i_ = 0; i_ < 500 && !(cond); i_++) {                                              \
            struct timeval tv_ = {0, 10000};                                                       \
            event_base_loopexit((f)->base, &tv_);                                                  \
            event_base_dispatch((f)->base);                                                        \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

/* Reads dir/name into a static buffer. */
static const char *read_back(struct fx *f, const char *name) {
    static char buf[4096];
    char path[256], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    if (ava_file_read_all(path, sizeof buf - 1, &text, &n, NULL) < 0)
        return "";
    snprintf(buf, sizeof buf, "%s", text);
    free(text);
    return buf;
}

/* Submits a small CPU job for run 7 that squeue then lists as pending (job 123). */
static void submit_pending(struct fx *f) {
    char id[64], err[AVA_ERRLEN];
    struct ava_job_request req = {.training = "t",
                                  .number = 1,
                                  .cpus = 1,
                                  .max_runtime_ms = 1000,
                                  .run_dir = "/r",
                                  .log_path = "/l"};
    squeue_says(f, "{\"jobs\":[{\"job_id\":123,\"job_state\":\"PENDING\"}]}");
    assert_int_equal(f->ex->submit(f->ex, 7, f->dir, &req, id, sizeof id, err), 0);
    assert_string_equal(id, "123");
}

/* submit: the batch script, sbatch's argv, then pending -> running -> completed. */
static void test_executor_submit_and_follow(void **state) {
    struct fx *f = *state;
    char id[64], err[AVA_ERRLEN];
    squeue_says(f, "{\"jobs\":[{\"job_id\":123,\"job_state\":\"PENDING\"}]}");
    struct ava_job_request req = {.training = "demo",
                                  .number = 2,
                                  .gpus = 1,
                                  .cpus = 4,
                                  .mem_bytes = (int64_t)3 << 30,
                                  .max_runtime_ms = 3600000,
                                  .grace_ms = 30000,
                                  .run_dir = "/shared/ava/runs/5/2",
                                  .log_path = "/shared/ava/storage/log's.log"};
    assert_int_equal(f->ex->submit(f->ex, 7, f->dir, &req, id, sizeof id, err), 0);
    assert_string_equal(id, "123");
    char want[512];
    snprintf(want, sizeof want,
             "--parsable --no-requeue --open-mode=append --job-name=demo --time=61 "
             "--output=/shared/ava/storage/log's.log --chdir=/shared/ava/runs/5/2 "
             "--partition=gpu --gres=gpu:1 --cpus-per-task=4 --mem=3072M --qos=high --exclusive "
             "%s/job.sh\n",
             f->dir);
    assert_string_equal(read_back(f, "sbatch.args"), want);
    assert_string_equal(read_back(f, "job.sh"),
                        "#!/bin/sh\n# ava: training demo, run 2 (written by avad; runs on the "
                        "node)\nprintf '%s %s\\n' \"${SLURMD_NODENAME:-}\" "
                        "\"${CUDA_VISIBLE_DEVICES:-}\" >'/shared/ava/runs/5/2/slurm-started'\n"
                        "exec '/opt/ava/libexec/ava-shim' '/shared/ava/runs/5/2'\n");
    /* pending: nothing is reported */
    struct timeval tv = {0, 100000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    assert_int_equal(f->started, 0);
    squeue_says(f, "{\"jobs\":[{\"job_id\":123,\"job_state\":\"RUNNING\",\"batch_host\":\"n7\","
                   "\"gres_detail\":[\"gpu:1(IDX:3)\"]}]}");
    LOOP_UNTIL(f, f->started == 1);
    assert_string_equal(f->node, "n7");
    assert_string_equal(f->gpus, "3");
    squeue_says(f, "{\"jobs\":[{\"job_id\":123,\"job_state\":\"COMPLETED\",\"exit_code\":0}]}");
    LOOP_UNTIL(f, f->ended == 1);
    assert_string_equal(f->end_state, "succeeded");
    assert_string_equal(f->end_reason, "Slurm job 123: COMPLETED");
    assert_int_equal(f->started, 1);
}

/* The batch script's start marker reports the start before squeue does (a half-written
 * marker, no newline yet, is not taken); the exit record reports the end. */
static void test_executor_start_marker(void **state) {
    struct fx *f = *state;
    char path[256];
    submit_pending(f);
    snprintf(path, sizeof path, "%s/slurm-started", f->dir);
    assert_int_equal(ava_file_write_atomic(path, "n9 2", 4, 0644, NULL), 0);
    struct timeval tv = {0, 50000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    assert_int_equal(f->started, 0);
    assert_int_equal(ava_file_write_atomic(path, "n9 2\n", 5, 0644, NULL), 0);
    LOOP_UNTIL(f, f->started == 1);
    assert_string_equal(f->node, "n9");
    assert_string_equal(f->gpus, "2");
    /* squeue's RUNNING afterwards is not a second start */
    squeue_says(f, "{\"jobs\":[{\"job_id\":123,\"job_state\":\"RUNNING\"}]}");
    tv.tv_usec = 300000;
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    assert_int_equal(f->started, 1);
    assert_int_equal(f->ended, 0);
    /* the shim's exit record ends it before squeue says so (the scheduler reads the record) */
    snprintf(path, sizeof path, "%s/exit", f->dir);
    assert_int_equal(ava_file_write_atomic(path, "state=succeeded\n", 16, 0644, NULL), 0);
    LOOP_UNTIL(f, f->ended == 1);
    assert_string_equal(f->end_reason, "Slurm job 123 ended");
}

/* stop: a pending job is cancelled; a running one gets SIGTERM on its batch step; a job that
 * squeue stops listing has ended (lost), and scontrol is asked when squeue fails. */
static void test_executor_stop_attach_and_lost(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN];
    submit_pending(f);
    assert_int_equal(f->ex->stop(f->ex, 7, err), 0);
    assert_string_equal(read_back(f, "scancel.args"), "123\n");
    assert_int_equal(f->ex->stop(f->ex, 7, err), AVA_ENOTFOUND); /* no longer watched */
    /* attach (a restarted avad) to a running job, stop it */
    assert_int_equal(f->ex->attach(f->ex, 7, "/r", "", err), AVA_ENOTFOUND);
    squeue_says(f, "{\"jobs\":[{\"job_id\":555,\"job_state\":\"RUNNING\",\"nodes\":\"n1\"}]}");
    assert_int_equal(f->ex->attach(f->ex, 7, "/r", "555", err), 0);
    LOOP_UNTIL(f, f->started == 1);
    assert_int_equal(f->ex->stop(f->ex, 7, err), 0);
    assert_string_equal(read_back(f, "scancel.args"), "123\n--batch --signal=TERM 555\n");
    /* squeue fails: scontrol is asked, says it does not know the job: lost */
    script(f->dir, "squeue", "exit 1");
    LOOP_UNTIL(f, f->ended == 1);
    assert_string_equal(f->end_state, "failed");
    assert_string_equal(f->end_reason, "lost: Slurm no longer knows job 555");
}

/* sbatch failures and answers without a job id fail the submission with sbatch's words. */
static void test_executor_submit_failures(void **state) {
    struct fx *f = *state;
    char id[64], err[AVA_ERRLEN];
    struct ava_job_request req = {.training = "t",
                                  .number = 1,
                                  .gpus = 9,
                                  .max_runtime_ms = 1,
                                  .run_dir = "/r",
                                  .log_path = "/l"};
    script(f->dir, "sbatch",
           "echo 'sbatch: error: Batch job submission failed: Requested node configuration is "
           "not available' >&2; exit 1");
    assert_int_equal(f->ex->submit(f->ex, 7, f->dir, &req, id, sizeof id, err), AVA_EUNAVAILABLE);
    assert_string_equal(err, "sbatch: exit code 1: sbatch: error: Batch job submission failed: "
                             "Requested node configuration is not available");
    script(f->dir, "sbatch", "echo 'Submitted batch job'");
    assert_int_equal(f->ex->submit(f->ex, 7, f->dir, &req, id, sizeof id, err), AVA_EUNAVAILABLE);
    assert_non_null(strstr(err, "no job id"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_squeue_22_05),
        cmocka_unit_test(test_squeue_later_shapes),
        cmocka_unit_test(test_squeue_malformed),
        cmocka_unit_test(test_scontrol_lines),
        cmocka_unit_test(test_sinfo),
        cmocka_unit_test(test_gres_states_and_args),
        cmocka_unit_test(test_cmd_run),
        cmocka_unit_test_setup_teardown(test_executor_submit_and_follow, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_executor_start_marker, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_executor_stop_attach_and_lost, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_executor_submit_failures, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
