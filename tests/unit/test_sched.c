/* test_sched.c: src/sched: the state machine table, the resource pool, and the scheduler over
 * a real store in a temporary data dir with a fake executor that records its calls. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/common/path.h"
#include "../../src/common/rundir.h"
#include "../../src/common/timeutil.h"
#include "../../src/sched/pool.h"
#include "../../src/sched/sched.h"
#include "../../src/sched/state.h"
#include "../../src/store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIB (INT64_C(1) << 30)

/* ---- state.h ---- */

static const char *const all_names[] = {"creating",  "queued", "running", "stopping",
                                        "succeeded", "failed", "stopped", "timed_out"};

static void test_state_strings_round_trip(void **state) {
    (void)state;
    assert_int_equal(AVA_RUN_STATE_COUNT, 8);
    for (int i = 0; i < AVA_RUN_STATE_COUNT; i++) {
        const char *s = ava_run_state_str((enum ava_run_state)i);
        CHECK(strcmp(s, all_names[i]) == 0, "state %d is '%s', want '%s'", i, s, all_names[i]);
        enum ava_run_state back = AVA_RUN_STATE_COUNT;
        CHECK(ava_run_state_parse(s, &back) == 0 && back == (enum ava_run_state)i,
              "'%s' does not parse back", s);
    }
    assert_string_equal(ava_run_state_str(AVA_RUN_STATE_COUNT), "unknown");
    assert_string_equal(ava_run_state_str((enum ava_run_state) - 1), "unknown");
    static const char *const bad[] = {"",         "Running", "RUNNING",  "run",
                                      "running ", "unknown", "timed-out"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        enum ava_run_state out = AVA_RUN_QUEUED;
        CHECK(ava_run_state_parse(bad[i], &out) == AVA_EINVALID, "'%s' parsed", bad[i]);
        CHECK(out == AVA_RUN_QUEUED, "'%s': output written on failure", bad[i]);
    }
    enum ava_run_state out;
    assert_int_equal(ava_run_state_parse(NULL, &out), AVA_EINVALID);
}

static void test_state_terminal_and_active_sets(void **state) {
    (void)state;
    static const struct {
        enum ava_run_state s;
        bool terminal, active;
    } cases[] = {
        {AVA_RUN_CREATING, false, true},  {AVA_RUN_QUEUED, false, true},
        {AVA_RUN_RUNNING, false, true},   {AVA_RUN_STOPPING, false, true},
        {AVA_RUN_SUCCEEDED, true, false}, {AVA_RUN_FAILED, true, false},
        {AVA_RUN_STOPPED, true, false},   {AVA_RUN_TIMED_OUT, true, false},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        CHECK(ava_run_state_terminal(cases[i].s) == cases[i].terminal, "%s terminal?",
              ava_run_state_str(cases[i].s));
        CHECK(ava_run_state_active(cases[i].s) == cases[i].active, "%s active?",
              ava_run_state_str(cases[i].s));
    }
    assert_false(ava_run_state_active(AVA_RUN_STATE_COUNT));
    assert_false(ava_run_state_terminal(AVA_RUN_STATE_COUNT));
}

static void test_state_transition_table(void **state) {
    (void)state;
    /* DESIGN §2, row = from, column = to, in enum order:
     * creating queued running stopping succeeded failed stopped timed_out */
    static const char *const table[AVA_RUN_STATE_COUNT] = {
        /* creating  */ ".x...xx.",
        /* queued    */ "..x..xx.",
        /* running   */ "...xxxxx",
        /* stopping  */ "....xxxx",
        /* succeeded */ "........",
        /* failed    */ "........",
        /* stopped   */ "........",
        /* timed_out */ "........",
    };
    for (int from = 0; from < AVA_RUN_STATE_COUNT; from++)
        for (int to = 0; to < AVA_RUN_STATE_COUNT; to++) {
            bool want = table[from][to] == 'x';
            bool got = ava_run_state_can_move((enum ava_run_state)from, (enum ava_run_state)to);
            CHECK(got == want, "%s -> %s: allowed=%d, want %d", all_names[from], all_names[to], got,
                  want);
        }
    for (int s = 0; s < AVA_RUN_STATE_COUNT; s++) {
        CHECK(!ava_run_state_can_move((enum ava_run_state)s, AVA_RUN_STATE_COUNT),
              "%s -> out of range allowed", all_names[s]);
        CHECK(!ava_run_state_can_move(AVA_RUN_STATE_COUNT, (enum ava_run_state)s),
              "out of range -> %s allowed", all_names[s]);
    }
}

/* ---- pool.h ---- */

static void test_pool_init_and_check_fits(void **state) {
    (void)state;
    static const int gpus[] = {0, 1};
    struct ava_pool p;
    ava_pool_init(&p, gpus, 2, 8, 16 * GIB);
    assert_int_equal(p.ngpus, 2);
    assert_int_equal(ava_pool_free_gpus(&p), 2);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_pool_check_fits(&p, 2, 8, 16 * GIB, err), 0);
    assert_int_equal(ava_pool_check_fits(&p, 0, 1, 0, err), 0);

    static const struct {
        int gpus, cpus;
        int64_t mem;
        const char *msg;
    } cases[] = {
        {3, 1, GIB, "3 GPUs requested, this server has 2"},
        {1, 9, GIB, "9 CPUs requested, this server has 8"},
        {1, 1, 32 * GIB, "32G of memory requested, this server has 16G"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        err[0] = '\0';
        int r = ava_pool_check_fits(&p, cases[i].gpus, cases[i].cpus, cases[i].mem, err);
        CHECK(r == AVA_ENOFIT, "case %zu fits", i);
        CHECK(strcmp(err, cases[i].msg) == 0, "case %zu: '%s', want '%s'", i, err, cases[i].msg);
    }
    /* a CPU-only server */
    ava_pool_init(&p, NULL, 0, 4, GIB);
    assert_int_equal(ava_pool_free_gpus(&p), 0);
    assert_int_equal(ava_pool_check_fits(&p, 1, 1, 0, err), AVA_ENOFIT);
    assert_string_equal(err, "1 GPU requested, this server has 0");
    assert_int_equal(ava_pool_check_fits(&p, 0, 4, GIB, err), 0);
    /* check_fits looks at the whole pool, not what is free now */
    struct ava_alloc a;
    assert_true(ava_pool_try_alloc(&p, 0, 4, GIB, &a));
    assert_int_equal(ava_pool_check_fits(&p, 0, 4, GIB, err), 0);
}

static void test_pool_try_alloc_takes_lowest_free_slots(void **state) {
    (void)state;
    static const int gpus[] = {0, 1, 2, 3};
    struct ava_pool p;
    ava_pool_init(&p, gpus, 4, 16, 64 * GIB);
    struct ava_alloc a1, a2, a3;
    assert_true(ava_pool_try_alloc(&p, 1, 2, GIB, &a1));
    assert_int_equal(a1.gpu_mask, 0x1);
    assert_int_equal(a1.cpus, 2);
    assert_int_equal(a1.mem, GIB);
    assert_true(ava_pool_try_alloc(&p, 2, 2, GIB, &a2));
    assert_int_equal(a2.gpu_mask, 0x6);
    assert_int_equal(ava_pool_free_gpus(&p), 1);
    assert_int_equal(p.cpus_used, 4);
    assert_int_equal(p.mem_used, 2 * GIB);
    ava_pool_release(&p, &a1);
    assert_int_equal(ava_pool_free_gpus(&p), 2);
    /* the freed slot 0 comes first, then slot 3 */
    assert_true(ava_pool_try_alloc(&p, 2, 1, 0, &a3));
    assert_int_equal(a3.gpu_mask, 0x9);
    char list[64];
    ava_pool_gpu_list(&p, &a3, list, sizeof list);
    assert_string_equal(list, "0,3");
    ava_pool_release(&p, &a2);
    ava_pool_release(&p, &a3);
    assert_int_equal(p.gpu_used, 0);
    assert_int_equal(p.cpus_used, 0);
    assert_int_equal(p.mem_used, 0);
}

static void test_pool_try_alloc_fails_without_side_effects(void **state) {
    (void)state;
    static const int gpus[] = {0, 1};
    struct ava_pool p;
    ava_pool_init(&p, gpus, 2, 4, 8 * GIB);
    struct ava_alloc held;
    assert_true(ava_pool_try_alloc(&p, 1, 2, 4 * GIB, &held));
    static const struct {
        int gpus, cpus;
        int64_t mem;
    } cases[] = {
        {2, 1, GIB},     /* only one GPU left */
        {0, 3, GIB},     /* only two CPUs left */
        {0, 1, 5 * GIB}, /* only 4G left */
        {1, 2, 4 * GIB + 1},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ava_pool before = p;
        struct ava_alloc a;
        memset(&a, 0xab, sizeof a);
        struct ava_alloc a_before = a;
        CHECK(!ava_pool_try_alloc(&p, cases[i].gpus, cases[i].cpus, cases[i].mem, &a),
              "case %zu allocated", i);
        CHECK(memcmp(&before, &p, sizeof p) == 0, "case %zu changed the pool", i);
        CHECK(memcmp(&a_before, &a, sizeof a) == 0, "case %zu wrote the allocation", i);
    }
    /* exactly what is left fits */
    struct ava_alloc rest;
    assert_true(ava_pool_try_alloc(&p, 1, 2, 4 * GIB, &rest));
    assert_int_equal(ava_pool_free_gpus(&p), 0);
}

static void test_pool_claim(void **state) {
    (void)state;
    static const int gpus[] = {0, 1, 2, 3};
    struct ava_pool p;
    ava_pool_init(&p, gpus, 4, 8, 8 * GIB);
    struct ava_alloc a, b, c;
    assert_int_equal(ava_pool_claim(&p, "0,1", 2, GIB, &a), 0);
    assert_int_equal(ava_pool_free_gpus(&p), 2);
    assert_int_equal(a.gpu_mask, 0x3);
    assert_int_equal(p.cpus_used, 2);
    assert_int_equal(p.mem_used, GIB);
    /* a new allocation does not take the claimed slots */
    assert_true(ava_pool_try_alloc(&p, 1, 1, 0, &b));
    assert_int_equal(b.gpu_mask, 0x4);
    /* a CPU-only claim */
    assert_int_equal(ava_pool_claim(&p, "", 1, 0, &c), 0);
    assert_int_equal(c.gpu_mask, 0);
    assert_int_equal(ava_pool_free_gpus(&p), 1);
    ava_pool_release(&p, &c);
    ava_pool_release(&p, &a);
    assert_int_equal(ava_pool_free_gpus(&p), 3);
    static const char *const bad[] = {"x", "0,0", "1,", ",1", "0;1"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct ava_pool before = p;
        struct ava_alloc d;
        CHECK(ava_pool_claim(&p, bad[i], 1, 0, &d) == AVA_EINVALID, "'%s' claimed", bad[i]);
        CHECK(memcmp(&before, &p, sizeof p) == 0, "'%s' changed the pool", bad[i]);
    }
}

static void test_pool_gpu_list_uses_device_indices(void **state) {
    (void)state;
    static const int gpus[] = {2, 5, 7};
    struct ava_pool p;
    ava_pool_init(&p, gpus, 3, 8, GIB);
    struct ava_alloc a, b, none;
    char list[64];
    assert_true(ava_pool_try_alloc(&p, 2, 1, 0, &a));
    ava_pool_gpu_list(&p, &a, list, sizeof list);
    assert_string_equal(list, "2,5");
    assert_true(ava_pool_try_alloc(&p, 1, 1, 0, &b));
    ava_pool_gpu_list(&p, &b, list, sizeof list);
    assert_string_equal(list, "7");
    assert_true(ava_pool_try_alloc(&p, 0, 1, 0, &none));
    ava_pool_gpu_list(&p, &none, list, sizeof list);
    assert_string_equal(list, "");
    ava_pool_release(&p, &a);
    ava_pool_release(&p, &b);
    /* claims name device indices, not slots; unknown devices are ignored */
    assert_int_equal(ava_pool_claim(&p, "7,2,9", 1, 0, &a), 0);
    assert_int_equal(a.gpu_mask, 0x5);
    ava_pool_gpu_list(&p, &a, list, sizeof list);
    assert_string_equal(list, "2,7");
    assert_int_equal(ava_pool_free_gpus(&p), 1);
    /* a small buffer stays terminated */
    char tiny[2];
    ava_pool_gpu_list(&p, &a, tiny, sizeof tiny);
    assert_non_null(memchr(tiny, '\0', sizeof tiny));
}

/* ---- the scheduler, with a fake executor ---- */

#define FAKE_MAX 32

struct fake_exec {
    struct ava_executor ex; /* first: the scheduler hands this pointer back */
    int launches;
    int64_t launched[FAKE_MAX];
    char launch_dir[FAKE_MAX][AVA_PATH_MAX];
    int fail_launch; /* launch returns this (negative) when set */
    int stops;
    int64_t stopped[FAKE_MAX];
    int attaches;
    int64_t attached[FAKE_MAX];
    char attach_id[FAKE_MAX][64];
    int attach_result;
};

static int fake_launch(struct ava_executor *ex, int64_t run_id, const char *run_dir, char *id,
                       size_t idlen, char *err) {
    struct fake_exec *f = (struct fake_exec *)ex;
    if (f->fail_launch)
        return ava_err(err, f->fail_launch, "fake launch refused");
    assert_true(f->launches < FAKE_MAX);
    f->launched[f->launches] = run_id;
    snprintf(f->launch_dir[f->launches], AVA_PATH_MAX, "%s", run_dir);
    f->launches++;
    snprintf(id, idlen, "fake-%lld", (long long)run_id);
    return 0;
}

static int fake_stop(struct ava_executor *ex, int64_t run_id, char *err) {
    struct fake_exec *f = (struct fake_exec *)ex;
    assert_true(f->stops < FAKE_MAX);
    f->stopped[f->stops++] = run_id;
    return 0;
}

static int fake_attach(struct ava_executor *ex, int64_t run_id, const char *run_dir, const char *id,
                       char *err) {
    struct fake_exec *f = (struct fake_exec *)ex;
    assert_true(f->attaches < FAKE_MAX);
    snprintf(f->attach_id[f->attaches], 64, "%s", id);
    f->attached[f->attaches++] = run_id;
    return f->attach_result < 0 ? ava_err(err, f->attach_result, "fake: supervisor gone") : 0;
}

static void fake_destroy(struct ava_executor *ex) {
    (void)ex;
}

static void fake_init(struct fake_exec *f) {
    memset(f, 0, sizeof *f);
    f->ex.name = "fake";
    f->ex.launch = fake_launch;
    f->ex.stop = fake_stop;
    f->ex.attach = fake_attach;
    f->ex.destroy = fake_destroy;
}

struct sfx {
    char dir[64];
    char db[128];
    struct ava_store *st;
    struct ava_pool pool;
    struct fake_exec fake;
    struct ava_sched *s;
    int64_t gid;
    struct ava_user alice;
};

static void sched_make(struct sfx *f) {
    char err[AVA_ERRLEN] = "";
    struct ava_sched_config cfg = {.data_dir = f->dir, .grace_ms = 1500};
    fake_init(&f->fake);
    int r = ava_sched_new(f->st, &f->pool, &f->fake.ex, &cfg, &f->s, err);
    CHECK(r == 0, "sched_new: %s", err);
    f->fake.ex.done = ava_sched_on_done;
    f->fake.ex.done_ctx = f->s;
}

/* A store with group g, user alice and the public image ava-pure:host; 2 GPUs, 8 CPUs,
 * 32G; a scheduler with the fake executor. */
static int sfx_setup(void **state) {
    struct sfx *f = calloc(1, sizeof *f);
    char err[AVA_ERRLEN] = "";
    snprintf(f->dir, sizeof f->dir, "/tmp/ava-test-sched-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof f->db, "%s/ava.db", f->dir);
    if (ava_store_open(f->db, &f->st, err) < 0 ||
        ava_store_group_create(f->st, "g", &f->gid, err) < 0 ||
        ava_store_user_create(f->st, "alice", f->gid, false, "h-alice", &f->alice, err) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    struct ava_image img = {.name = "ava-pure", .tag = "host", .kind = "host", .available = true};
    img.description = "test image";
    img.env_json = "{\"IMAGE_VAR\":\"from-image\"}";
    if (ava_store_image_upsert_public(f->st, &img, err) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    static const int gpus[] = {0, 1};
    ava_pool_init(&f->pool, gpus, 2, 8, 32 * GIB);
    sched_make(f);
    *state = f;
    return 0;
}

static int sfx_teardown(void **state) {
    struct sfx *f = *state;
    ava_sched_free(f->s);
    ava_store_close(f->st);
    ava_rm_rf(f->dir, NULL);
    free(f);
    return 0;
}

static int64_t add_training_img(struct sfx *f, const char *name, int gpus, int cpus,
                                const char *image) {
    struct ava_training t = {0};
    char err[AVA_ERRLEN] = "";
    snprintf(t.name, sizeof t.name, "%s", name);
    t.user_id = f->alice.id;
    t.group_id = f->gid;
    snprintf(t.image, sizeof t.image, "%s", image);
    snprintf(t.image_kind, sizeof t.image_kind, "host");
    t.gpus = gpus;
    t.cpus = cpus;
    t.mem_bytes = GIB;
    t.entry = "/bin/true";
    t.args_json = "[\"--epochs\",\"3\"]";
    t.env_json = "{\"SEED\":\"7\"}";
    t.max_runtime_ms = 60000;
    t.created_at = ava_now_ms();
    int r = ava_store_training_insert(f->st, &t, err);
    CHECK(r == 0, "training %s: %s", name, err);
    return t.id;
}

static int64_t add_training(struct sfx *f, const char *name, int gpus) {
    return add_training_img(f, name, gpus, 1, "ava-pure:host");
}

static void start(struct sfx *f, int64_t tid, struct ava_run *out) {
    char err[AVA_ERRLEN] = "";
    int r = ava_sched_start(f->s, tid, "alice", out, err);
    CHECK(r == 0, "start of training %lld: %s", (long long)tid, err);
}

static void latest(struct sfx *f, int64_t tid, struct ava_run *r) {
    char err[AVA_ERRLEN] = "";
    int rc = ava_store_run_latest(f->st, tid, r, err);
    CHECK(rc == 0, "latest run of %lld: %s", (long long)tid, err);
}

/* The run dir the scheduler uses for run `number` of training tid. */
static void run_dir_of(struct sfx *f, int64_t tid, int number, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/runs/%lld/%d", f->dir, (long long)tid, number);
}

static void write_exit(const char *dir, const char *state, int code, int64_t stopping_at,
                       const char *reason) {
    struct ava_exit_record er = {0};
    snprintf(er.state, sizeof er.state, "%s", state);
    er.exit_code = code;
    er.started_at = ava_now_ms() - 1000;
    er.ended_at = ava_now_ms();
    er.stopping_at = stopping_at;
    er.log_start = 0;
    er.log_end = 42;
    snprintf(er.reason, sizeof er.reason, "%s", reason);
    char err[AVA_ERRLEN] = "";
    int r = ava_rundir_write_exit(dir, &er, err);
    CHECK(r == 0, "write exit: %s", err);
}

/* Event states of a run joined with ',' into out. */
static void event_states(struct sfx *f, int64_t run_id, char *out, size_t outlen) {
    struct ava_run_event *ev = NULL;
    size_t n = 0;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_store_run_events(f->st, run_id, &ev, &n, err), 0);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(out, ev[i].state, outlen - strlen(out) - 1);
        if (i + 1 < n)
            strncat(out, ",", outlen - strlen(out) - 1);
    }
    free(ev);
}

static bool json_array_has(json_t *arr, const char *s) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static void test_sched_new_needs_absolute_data_dir(void **state) {
    struct sfx *f = *state;
    struct ava_sched *s = NULL;
    char err[AVA_ERRLEN] = "";
    struct ava_sched_config cfg = {.data_dir = "relative/dir", .grace_ms = 1};
    assert_int_equal(ava_sched_new(f->st, &f->pool, &f->fake.ex, &cfg, &s, err), AVA_EINVALID);
    assert_null(s);
    assert_non_null(strstr(err, "absolute"));
    cfg.data_dir = NULL;
    assert_int_equal(ava_sched_new(f->st, &f->pool, &f->fake.ex, &cfg, &s, err), AVA_EINVALID);
}

static void test_sched_start_runs_and_writes_spec(void **state) {
    struct sfx *f = *state;
    int64_t tid = add_training(f, "t1", 1);
    struct ava_run r;
    start(f, tid, &r);
    assert_int_equal(r.number, 1);
    assert_int_equal(r.state, AVA_RUN_RUNNING);
    assert_string_equal(r.gpus, "0");
    assert_int_equal(r.cpus, 1);
    assert_int_equal(r.mem_bytes, GIB);
    assert_true(r.queued_at > 0);
    assert_true(r.started_at >= r.queued_at);
    assert_string_equal(r.executor, "fake");
    char want_id[64];
    snprintf(want_id, sizeof want_id, "fake-%lld", (long long)r.id);
    assert_string_equal(r.executor_id, want_id);
    assert_int_equal(f->fake.launches, 1);
    assert_int_equal(f->fake.launched[0], r.id);

    char dir[256], path[320];
    run_dir_of(f, tid, 1, dir, sizeof dir);
    assert_string_equal(f->fake.launch_dir[0], dir);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    snprintf(path, sizeof path, "%s/config/trainingspec", dir);
    assert_int_equal(stat(path, &st), 0);

    snprintf(path, sizeof path, "%s/spec.json", dir);
    json_error_t je;
    json_t *spec = json_load_file(path, 0, &je);
    CHECK(spec != NULL, "spec.json: %s", je.text);
    assert_string_equal(json_string_value(json_object_get(spec, "entry")), "/bin/true");
    assert_string_equal(json_string_value(json_object_get(spec, "training")), "t1");
    assert_string_equal(json_string_value(json_object_get(spec, "gpus")), "0");
    assert_int_equal(json_integer_value(json_object_get(spec, "run")), 1);
    assert_int_equal(json_integer_value(json_object_get(spec, "training_id")), tid);
    assert_int_equal(json_integer_value(json_object_get(spec, "grace_ms")), 1500);
    assert_int_equal(json_integer_value(json_object_get(spec, "max_runtime_ms")), 60000);
    json_t *args = json_object_get(spec, "args");
    assert_true(json_is_array(args));
    assert_int_equal(json_array_size(args), 2);
    assert_string_equal(json_string_value(json_array_get(args, 0)), "--epochs");
    assert_string_equal(json_string_value(json_array_get(args, 1)), "3");
    json_t *env = json_object_get(spec, "env");
    assert_true(json_is_array(env));
    assert_true(json_array_has(env, "CUDA_VISIBLE_DEVICES=0"));
    assert_true(json_array_has(env, "NVIDIA_VISIBLE_DEVICES=0"));
    assert_true(json_array_has(env, "AVA_TRAINING=t1"));
    assert_true(json_array_has(env, "AVA_RUN=1"));
    assert_true(json_array_has(env, "SEED=7"));
    assert_true(json_array_has(env, "IMAGE_VAR=from-image"));
    const char *log_path = json_string_value(json_object_get(spec, "log_path"));
    assert_non_null(log_path);
    assert_non_null(strstr(log_path, "/storage/group/g/alice/run/train_t1_out.log"));
    const char *out_dir = json_string_value(json_object_get(spec, "output_dir"));
    assert_non_null(out_dir);
    assert_int_equal(stat(out_dir, &st), 0);
    json_decref(spec);

    char states[128];
    event_states(f, r.id, states, sizeof states);
    assert_string_equal(states, "creating,queued,running");
    struct ava_run_event *ev = NULL;
    size_t n = 0;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_store_run_events(f->st, r.id, &ev, &n, err), 0);
    assert_string_equal(ev[0].reason, "start requested by alice");
    assert_string_equal(ev[2].reason, "resources allocated: GPU 0");
    free(ev);
}

static void test_sched_cpu_only_training(void **state) {
    struct sfx *f = *state;
    int64_t tid = add_training_img(f, "cpu", 0, 3, "ava-pure:host");
    struct ava_run r;
    start(f, tid, &r);
    assert_int_equal(r.state, AVA_RUN_RUNNING);
    assert_string_equal(r.gpus, "");
    assert_int_equal(r.cpus, 3);
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 2);
    assert_int_equal(ava_sched_pool(f->s)->cpus_used, 3);
    char path[320];
    snprintf(path, sizeof path, "%s/runs/%lld/1/spec.json", f->dir, (long long)tid);
    json_t *spec = json_load_file(path, 0, NULL);
    assert_non_null(spec);
    assert_true(json_array_has(json_object_get(spec, "env"), "CUDA_VISIBLE_DEVICES="));
    json_decref(spec);
    assert_string_equal(r.reason, "resources allocated: 3 CPUs");
}

static void test_sched_two_gpus_three_trainings(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1), t2 = add_training(f, "t2", 1),
            t3 = add_training(f, "t3", 1);
    struct ava_run r1, r2, r3;
    start(f, t1, &r1);
    start(f, t2, &r2);
    start(f, t3, &r3);
    assert_int_equal(r1.state, AVA_RUN_RUNNING);
    assert_int_equal(r2.state, AVA_RUN_RUNNING);
    assert_int_equal(r3.state, AVA_RUN_QUEUED);
    assert_string_equal(r1.gpus, "0");
    assert_string_equal(r2.gpus, "1");
    assert_int_equal(f->fake.launches, 2);
    assert_int_equal(ava_sched_queued(f->s), 1);
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 0);
    /* the queued run has no spec.json yet (GPUs unknown) */
    char dir[256], path[320];
    run_dir_of(f, t3, 1, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/spec.json", dir);
    assert_int_equal(access(path, F_OK), -1);

    /* t1 ends well: t3 takes GPU 0 */
    run_dir_of(f, t1, 1, dir, sizeof dir);
    write_exit(dir, "succeeded", 0, 0, "exit code 0");
    ava_sched_on_done(f->s, r1.id);
    latest(f, t1, &r1);
    assert_int_equal(r1.state, AVA_RUN_SUCCEEDED);
    assert_true(r1.has_exit);
    assert_int_equal(r1.exit_code, 0);
    assert_string_equal(r1.reason, "exit code 0");
    assert_int_equal(r1.log_end, 42);
    latest(f, t3, &r3);
    assert_int_equal(r3.state, AVA_RUN_RUNNING);
    assert_string_equal(r3.gpus, "0");
    assert_int_equal(f->fake.launches, 3);
    assert_int_equal(f->fake.launched[2], r3.id);
    assert_int_equal(ava_sched_queued(f->s), 0);
    run_dir_of(f, t3, 1, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/spec.json", dir);
    assert_int_equal(access(path, F_OK), 0);
    char states[128];
    event_states(f, r1.id, states, sizeof states);
    assert_string_equal(states, "creating,queued,running,succeeded");
}

static void test_sched_done_without_exit_record_is_lost(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 2);
    struct ava_run r;
    start(f, t1, &r);
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 0);
    ava_sched_on_done(f->s, r.id);
    latest(f, t1, &r);
    assert_int_equal(r.state, AVA_RUN_FAILED);
    CHECK(strncmp(r.reason, "lost", 4) == 0, "reason '%s'", r.reason);
    assert_false(r.has_exit);
    assert_true(r.ended_at > 0);
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 2);
    assert_int_equal(ava_sched_pool(f->s)->cpus_used, 0);
    assert_int_equal(ava_sched_pool(f->s)->mem_used, 0);
    /* a second callback for the same run, or one for an unknown run, changes nothing */
    ava_sched_on_done(f->s, r.id);
    ava_sched_on_done(f->s, r.id + 1000);
    struct ava_run again;
    latest(f, t1, &again);
    assert_int_equal(again.state, AVA_RUN_FAILED);
    assert_string_equal(again.reason, r.reason);
}

static void test_sched_stop_queued_run(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 2), t2 = add_training(f, "t2", 1);
    struct ava_run r1, r2;
    start(f, t1, &r1);
    start(f, t2, &r2);
    assert_int_equal(r2.state, AVA_RUN_QUEUED);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_sched_stop(f->s, t2, "alice", err), 0);
    latest(f, t2, &r2);
    assert_int_equal(r2.state, AVA_RUN_STOPPED);
    assert_true(r2.ended_at > 0);
    assert_non_null(strstr(r2.reason, "alice"));
    assert_int_equal(f->fake.stops, 0);
    assert_int_equal(ava_sched_queued(f->s), 0);
    char states[128];
    event_states(f, r2.id, states, sizeof states);
    assert_string_equal(states, "creating,queued,stopped");
    /* freeing the GPUs does not launch the stopped run */
    ava_sched_on_done(f->s, r1.id);
    assert_int_equal(f->fake.launches, 1);
    latest(f, t2, &r2);
    assert_int_equal(r2.state, AVA_RUN_STOPPED);
    /* stopping again: nothing is active */
    assert_int_equal(ava_sched_stop(f->s, t2, "alice", err), AVA_ECONFLICT);
}

static void test_sched_stop_running_run(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1);
    struct ava_run r;
    start(f, t1, &r);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_sched_stop(f->s, t1, "bob", err), 0);
    latest(f, t1, &r);
    assert_int_equal(r.state, AVA_RUN_STOPPING);
    assert_string_equal(r.reason, "stop requested by bob");
    assert_int_equal(f->fake.stops, 1);
    assert_int_equal(f->fake.stopped[0], r.id);
    /* still holding its GPU until the shim is done */
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 1);
    /* asking twice is not an error and does not signal again */
    assert_int_equal(ava_sched_stop(f->s, t1, "bob", err), 0);
    assert_int_equal(f->fake.stops, 1);

    char dir[256];
    run_dir_of(f, t1, 1, dir, sizeof dir);
    write_exit(dir, "stopped", 143, ava_now_ms(), "stopped by request");
    ava_sched_on_done(f->s, r.id);
    latest(f, t1, &r);
    assert_int_equal(r.state, AVA_RUN_STOPPED);
    assert_int_equal(r.exit_code, 143);
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 2);
    char states[128];
    event_states(f, r.id, states, sizeof states);
    assert_string_equal(states, "creating,queued,running,stopping,stopped");
}

static void test_sched_time_limit_records_stopping_then_timed_out(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1);
    struct ava_run r;
    start(f, t1, &r);
    char dir[256];
    run_dir_of(f, t1, 1, dir, sizeof dir);
    int64_t stopping_at = ava_now_ms() - 500;
    write_exit(dir, "timed_out", 137, stopping_at, "max runtime 1m reached");
    ava_sched_on_done(f->s, r.id);
    latest(f, t1, &r);
    assert_int_equal(r.state, AVA_RUN_TIMED_OUT);
    assert_int_equal(r.exit_code, 137);
    struct ava_run_event *ev = NULL;
    size_t n = 0;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_store_run_events(f->st, r.id, &ev, &n, err), 0);
    assert_int_equal(n, 5);
    assert_string_equal(ev[3].state, "stopping");
    assert_int_equal(ev[3].at, stopping_at);
    assert_string_equal(ev[3].reason, "max runtime 1m reached");
    assert_string_equal(ev[4].state, "timed_out");
    assert_true(ev[4].at >= stopping_at);
    free(ev);
}

static void test_sched_start_while_active_conflicts(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1);
    struct ava_run r;
    start(f, t1, &r);
    char err[AVA_ERRLEN] = "";
    struct ava_run other;
    assert_int_equal(ava_sched_start(f->s, t1, "alice", &other, err), AVA_ECONFLICT);
    assert_non_null(strstr(err, "running"));
    struct ava_run *list = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_run_list(f->st, t1, &list, &n, err), 0);
    assert_int_equal(n, 1);
    free(list);
    /* once it ends, a restart makes run 2 */
    char dir[256];
    run_dir_of(f, t1, 1, dir, sizeof dir);
    write_exit(dir, "failed", 1, 0, "exit code 1");
    ava_sched_on_done(f->s, r.id);
    start(f, t1, &r);
    assert_int_equal(r.number, 2);
    assert_int_equal(r.state, AVA_RUN_RUNNING);
    /* an unknown training */
    assert_int_equal(ava_sched_start(f->s, t1 + 100, "alice", NULL, err), AVA_ENOTFOUND);
}

static void test_sched_stop_of_training_that_never_ran(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_sched_stop(f->s, t1, "alice", err), AVA_ECONFLICT);
    assert_string_equal(err, "the training is not active (it has never run)");
}

static void test_sched_stop_after_the_end_names_the_state(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1);
    struct ava_run r;
    start(f, t1, &r);
    ava_sched_on_done(f->s, r.id); /* lost: failed */
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_sched_stop(f->s, t1, "alice", err), AVA_ECONFLICT);
    assert_string_equal(err, "the training is not active (run 1 is failed)");
}

static void test_sched_start_conflict_names_the_training(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1);
    struct ava_run r;
    start(f, t1, &r);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_sched_start(f->s, t1, "alice", NULL, err), AVA_ECONFLICT);
    assert_string_equal(err, "training 't1' is already active (run 1 is running)");
}

static void test_sched_strict_fifo(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "one", 1), big = add_training(f, "big", 2),
            small = add_training(f, "small", 1);
    struct ava_run r1, rb, rs;
    start(f, t1, &r1);
    start(f, big, &rb);
    start(f, small, &rs);
    assert_int_equal(r1.state, AVA_RUN_RUNNING);
    assert_int_equal(rb.state, AVA_RUN_QUEUED);
    /* one GPU is free, but the 2-GPU run at the head of the queue blocks the 1-GPU one */
    assert_int_equal(rs.state, AVA_RUN_QUEUED);
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 1);
    assert_int_equal(f->fake.launches, 1);
    assert_int_equal(ava_sched_queued(f->s), 2);

    ava_sched_on_done(f->s, r1.id); /* lost, frees GPU 0 */
    latest(f, big, &rb);
    latest(f, small, &rs);
    assert_int_equal(rb.state, AVA_RUN_RUNNING);
    assert_string_equal(rb.gpus, "0,1");
    assert_int_equal(rs.state, AVA_RUN_QUEUED);
    assert_int_equal(f->fake.launches, 2);
}

static void test_sched_stopping_the_head_unblocks_the_queue(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "one", 1), big = add_training(f, "big", 2),
            small = add_training(f, "small", 1);
    struct ava_run r1, rb, rs;
    start(f, t1, &r1);
    start(f, big, &rb);
    start(f, small, &rs);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_sched_stop(f->s, big, "alice", err), 0);
    latest(f, small, &rs);
    assert_int_equal(rs.state, AVA_RUN_RUNNING);
    assert_string_equal(rs.gpus, "1");
}

struct holders {
    int n;
    struct ava_sched_holder h[8];
};

static void collect_holder(void *ctx, const struct ava_sched_holder *h) {
    struct holders *hs = ctx;
    if (hs->n < 8)
        hs->h[hs->n] = *h;
    hs->n++;
}

static void test_sched_each_lists_active_runs_in_order(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1), t2 = add_training(f, "t2", 2);
    struct ava_run r1, r2;
    start(f, t1, &r1);
    start(f, t2, &r2);
    struct holders hs = {0};
    ava_sched_each(f->s, collect_holder, &hs);
    assert_int_equal(hs.n, 2);
    assert_int_equal(hs.h[0].run_id, r1.id);
    assert_int_equal(hs.h[0].state, AVA_RUN_RUNNING);
    assert_string_equal(hs.h[0].gpus, "0");
    assert_int_equal(hs.h[0].cpus, 1);
    assert_int_equal(hs.h[0].mem, GIB);
    assert_int_equal(hs.h[1].run_id, r2.id);
    assert_int_equal(hs.h[1].training_id, t2);
    assert_int_equal(hs.h[1].state, AVA_RUN_QUEUED);
    assert_string_equal(hs.h[1].gpus, "");
    assert_int_equal(hs.h[1].cpus, 0);
}

static void test_sched_launch_failure_fails_the_run_and_frees(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 2);
    f->fake.fail_launch = AVA_EIO;
    struct ava_run r;
    start(f, t1, &r);
    assert_int_equal(r.state, AVA_RUN_FAILED);
    CHECK(strncmp(r.reason, "start error", 11) == 0, "reason '%s'", r.reason);
    assert_non_null(strstr(r.reason, "fake launch refused"));
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 2);
    assert_int_equal(ava_sched_pool(f->s)->cpus_used, 0);
    char states[128];
    event_states(f, r.id, states, sizeof states);
    assert_string_equal(states, "creating,queued,running,failed");
    /* the training can start again */
    f->fake.fail_launch = 0;
    start(f, t1, &r);
    assert_int_equal(r.number, 2);
    assert_int_equal(r.state, AVA_RUN_RUNNING);
}

static void test_sched_missing_image_fails_at_start(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training_img(f, "t1", 1, 1, "no-such:image");
    struct ava_run r;
    start(f, t1, &r);
    assert_int_equal(r.state, AVA_RUN_FAILED);
    CHECK(strncmp(r.reason, "start error", 11) == 0, "reason '%s'", r.reason);
    assert_non_null(strstr(r.reason, "no-such:image"));
    assert_int_equal(f->fake.launches, 0);
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 2);
}

/* Leaves the first scheduler's runs as avad would after a crash, and builds a second one. */
static void restart_sched(struct sfx *f) {
    ava_sched_free(f->s);
    f->s = NULL;
    static const int gpus[] = {0, 1};
    ava_pool_init(&f->pool, gpus, 2, 8, 32 * GIB);
    sched_make(f);
}

static void test_sched_restore_ends_gone_runs_from_exit_record(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 2), t2 = add_training(f, "t2", 1),
            t3 = add_training(f, "t3", 1);
    struct ava_run r1, r2, r3;
    start(f, t1, &r1);
    start(f, t2, &r2);
    start(f, t3, &r3);
    assert_int_equal(r1.state, AVA_RUN_RUNNING);
    assert_int_equal(r2.state, AVA_RUN_QUEUED);
    assert_int_equal(r3.state, AVA_RUN_QUEUED);
    char dir[256];
    run_dir_of(f, t1, 1, dir, sizeof dir);
    write_exit(dir, "failed", 2, 0, "exit code 2");

    restart_sched(f);
    f->fake.attach_result = AVA_ENOTFOUND;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_sched_restore(f->s, err), 0);
    assert_int_equal(f->fake.attaches, 1);
    assert_int_equal(f->fake.attached[0], r1.id);
    char want_id[64];
    snprintf(want_id, sizeof want_id, "fake-%lld", (long long)r1.id);
    assert_string_equal(f->fake.attach_id[0], want_id);
    latest(f, t1, &r1);
    assert_int_equal(r1.state, AVA_RUN_FAILED);
    assert_true(r1.has_exit);
    assert_int_equal(r1.exit_code, 2);
    assert_string_equal(r1.reason, "exit code 2");
    /* the queue moves on in its old order */
    latest(f, t2, &r2);
    latest(f, t3, &r3);
    assert_int_equal(r2.state, AVA_RUN_RUNNING);
    assert_int_equal(r3.state, AVA_RUN_RUNNING);
    assert_string_equal(r2.gpus, "0");
    assert_string_equal(r3.gpus, "1");
    assert_int_equal(f->fake.launches, 2);
    assert_int_equal(f->fake.launched[0], r2.id);
}

static void test_sched_restore_reattaches_and_reclaims(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1), t2 = add_training(f, "t2", 1),
            t3 = add_training(f, "t3", 1);
    struct ava_run r1, r2, r3;
    start(f, t1, &r1);
    start(f, t2, &r2);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_sched_stop(f->s, t2, "alice", err), 0); /* t2 is stopping */
    start(f, t3, &r3);
    assert_int_equal(r3.state, AVA_RUN_QUEUED);

    restart_sched(f);
    f->fake.attach_result = 0;
    assert_int_equal(ava_sched_restore(f->s, err), 0);
    assert_int_equal(f->fake.attaches, 2);
    assert_int_equal(f->fake.launches, 0);
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 0);
    latest(f, t1, &r1);
    latest(f, t2, &r2);
    latest(f, t3, &r3);
    assert_int_equal(r1.state, AVA_RUN_RUNNING);
    assert_int_equal(r2.state, AVA_RUN_STOPPING);
    assert_int_equal(r3.state, AVA_RUN_QUEUED);
    assert_int_equal(ava_sched_queued(f->s), 1);
    /* the re-attached run ends later through the normal callback; its GPU (1) goes to t3 */
    char dir[256];
    run_dir_of(f, t2, 1, dir, sizeof dir);
    write_exit(dir, "stopped", 143, ava_now_ms(), "stopped by request");
    ava_sched_on_done(f->s, r2.id);
    latest(f, t2, &r2);
    latest(f, t3, &r3);
    assert_int_equal(r2.state, AVA_RUN_STOPPED);
    assert_int_equal(r3.state, AVA_RUN_RUNNING);
    assert_string_equal(r3.gpus, "1");
}

static void test_sched_restore_without_exit_record_is_lost(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1);
    struct ava_run r;
    start(f, t1, &r);
    restart_sched(f);
    f->fake.attach_result = AVA_ENOTFOUND;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_sched_restore(f->s, err), 0);
    latest(f, t1, &r);
    assert_int_equal(r.state, AVA_RUN_FAILED);
    CHECK(strncmp(r.reason, "lost", 4) == 0, "reason '%s'", r.reason);
    assert_int_equal(ava_pool_free_gpus(ava_sched_pool(f->s)), 2);
}

static void test_sched_restore_requeues_creating_runs(void **state) {
    struct sfx *f = *state;
    int64_t t1 = add_training(f, "t1", 1);
    /* avad died between creating the run and queueing it */
    struct ava_run r;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(
        ava_store_run_create(f->st, t1, "start requested by alice", ava_now_ms(), &r, err), 0);
    restart_sched(f);
    assert_int_equal(ava_sched_restore(f->s, err), 0);
    latest(f, t1, &r);
    assert_int_equal(r.state, AVA_RUN_RUNNING);
    assert_int_equal(f->fake.launches, 1);
    char states[128];
    event_states(f, r.id, states, sizeof states);
    assert_string_equal(states, "creating,queued,running");
}

#define T(fn) cmocka_unit_test(fn)
#define S(fn) cmocka_unit_test_setup_teardown(fn, sfx_setup, sfx_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_state_strings_round_trip),
        T(test_state_terminal_and_active_sets),
        T(test_state_transition_table),
        T(test_pool_init_and_check_fits),
        T(test_pool_try_alloc_takes_lowest_free_slots),
        T(test_pool_try_alloc_fails_without_side_effects),
        T(test_pool_claim),
        T(test_pool_gpu_list_uses_device_indices),
        S(test_sched_new_needs_absolute_data_dir),
        S(test_sched_start_runs_and_writes_spec),
        S(test_sched_cpu_only_training),
        S(test_sched_two_gpus_three_trainings),
        S(test_sched_done_without_exit_record_is_lost),
        S(test_sched_stop_queued_run),
        S(test_sched_stop_running_run),
        S(test_sched_time_limit_records_stopping_then_timed_out),
        S(test_sched_start_while_active_conflicts),
        S(test_sched_stop_of_training_that_never_ran),
        S(test_sched_stop_after_the_end_names_the_state),
        S(test_sched_start_conflict_names_the_training),
        S(test_sched_strict_fifo),
        S(test_sched_stopping_the_head_unblocks_the_queue),
        S(test_sched_each_lists_active_runs_in_order),
        S(test_sched_launch_failure_fails_the_run_and_frees),
        S(test_sched_missing_image_fails_at_start),
        S(test_sched_restore_ends_gone_runs_from_exit_record),
        S(test_sched_restore_reattaches_and_reclaims),
        S(test_sched_restore_without_exit_record_is_lost),
        S(test_sched_restore_requeues_creating_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
