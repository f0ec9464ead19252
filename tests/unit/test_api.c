/* test_api.c: src/api in-process: the real evhttp server over a real store and scheduler (with
 * a fake executor) on a loop in the main thread, driven by libcurl from a second thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/api/api.h"
#include "../../src/common/buf.h"
#include "../../src/common/err.h"
#include "../../src/common/file.h"
#include "../../src/common/path.h"
#include "../../src/common/rundir.h"
#include "../../src/common/sha256.h"
#include "../../src/common/timeutil.h"
#include "../../src/exec/exec.h"
#include "../../src/metrics/ingest.h"
#include "../../src/sched/pool.h"
#include "../../src/sched/sched.h"
#include "../../src/store/store.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIB (INT64_C(1) << 30)
#define MAX_BODY (1 << 20)
#define MAX_RUNTIME_MS 3600000

#define ADMIN_TOKEN "ava_0123456789abcdef0123456789abcdef01234567"
#define BOB_TOKEN "ava_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CAROL_TOKEN "ava_cccccccccccccccccccccccccccccccccccccccc"

/* ---- the fake executor (as in test_sched.c) ---- */

#define FAKE_MAX 32

struct fake_exec {
    struct ava_executor ex; /* first: the scheduler hands this pointer back */
    int launches;
    int64_t launched[FAKE_MAX];
    int stops;
    int64_t stopped[FAKE_MAX];
};

static int fake_launch(struct ava_executor *ex, int64_t run_id, const char *run_dir, char *id,
                       size_t idlen, char *err) {
    struct fake_exec *f = (struct fake_exec *)ex;
    assert_true(f->launches < FAKE_MAX);
    f->launched[f->launches++] = run_id;
    snprintf(id, idlen, "123:456");
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
    return ava_err(err, AVA_ENOTFOUND, "fake: supervisor gone");
}

static void fake_destroy(struct ava_executor *ex) {
    (void)ex;
}

/* ---- the fixture: store, scheduler, API on a loop ---- */

struct afx {
    char dir[64];
    char db[128];
    struct event_base *base;
    struct ava_store *st;
    struct ava_pool pool;
    struct fake_exec fake;
    struct ava_sched *s;
    struct ava_api *api;
    int port;
    int wake[2]; /* the client thread writes a byte here when its request is done */
    struct event *wake_ev;
    bool woken;
    struct ava_user admin, bob, carol;
};

static void on_wake(evutil_socket_t fd, short what, void *arg) {
    struct afx *f = arg;
    char c;
    if (read(fd, &c, 1) == 1)
        f->woken = true;
    event_base_loopbreak(f->base);
}

static int add_user(struct afx *f, const char *name, int64_t gid, bool admin, const char *token,
                    struct ava_user *out, char *err) {
    char hash[65];
    ava_sha256_hex(token, hash);
    return ava_store_user_create(f->st, name, gid, admin, hash, out, err);
}

/* Groups default (admin, carol) and other (bob); the public image ava-pure:host; 2 GPUs,
 * 4 CPUs, 1 GiB; the scheduler with the fake executor; the API on 127.0.0.1, any port. */
static int afx_teardown(void **state);

static int afx_setup(void **state) {
    struct afx *f = calloc(1, sizeof *f);
    char err[AVA_ERRLEN] = "";
    int64_t gdef, gother;
    f->wake[0] = f->wake[1] = -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/ava-test-api-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof f->db, "%s/ava.db", f->dir);
    struct ava_image img = {.name = "ava-pure", .tag = "host", .kind = "host", .available = true};
    img.description = "test image";
    img.env_json = "{\"LANG\":\"C.UTF-8\"}";
    int r = ava_store_open(f->db, &f->st, err);
    if (r == 0)
        r = ava_store_group_create(f->st, "default", &gdef, err);
    if (r == 0)
        r = ava_store_group_create(f->st, "other", &gother, err);
    if (r == 0)
        r = add_user(f, "admin", gdef, true, ADMIN_TOKEN, &f->admin, err);
    if (r == 0)
        r = add_user(f, "carol", gdef, false, CAROL_TOKEN, &f->carol, err);
    if (r == 0)
        r = add_user(f, "bob", gother, false, BOB_TOKEN, &f->bob, err);
    if (r == 0)
        r = ava_store_image_upsert_public(f->st, &img, err);
    static const int gpus[] = {0, 1};
    ava_pool_init(&f->pool, gpus, 2, 4, GIB);
    f->fake.ex = (struct ava_executor){.name = "fake",
                                       .launch = fake_launch,
                                       .stop = fake_stop,
                                       .attach = fake_attach,
                                       .destroy = fake_destroy};
    struct ava_sched_config sc = {.data_dir = f->dir, .grace_ms = 1000};
    if (r == 0)
        r = ava_sched_new(f->st, &f->pool, &f->fake.ex, &sc, &f->s, err);
    f->fake.ex.done = ava_sched_on_done;
    f->fake.ex.done_ctx = f->s;
    f->base = event_base_new();
    struct ava_api_config ac = {.host = "127.0.0.1",
                                .port = 0,
                                .data_dir = f->dir,
                                .max_runtime_ms = MAX_RUNTIME_MS,
                                .max_body = MAX_BODY,
                                .max_headers = 16 << 10,
                                .timeout_s = 5};
    if (r == 0)
        r = ava_api_start(f->base, &ac, f->st, f->s, &f->api, err);
    if (r < 0 || pipe(f->wake) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        afx_teardown((void **)&f);
        return -1;
    }
    f->port = ava_api_port(f->api);
    f->wake_ev = event_new(f->base, f->wake[0], EV_READ | EV_PERSIST, on_wake, f);
    event_add(f->wake_ev, NULL);
    *state = f;
    return 0;
}

static int afx_teardown(void **state) {
    struct afx *f = *state;
    ava_api_free(f->api);
    if (f->wake_ev)
        event_free(f->wake_ev);
    if (f->wake[0] >= 0) {
        close(f->wake[0]);
        close(f->wake[1]);
    }
    event_base_free(f->base);
    ava_sched_free(f->s);
    ava_store_close(f->st);
    ava_rm_rf(f->dir, NULL);
    free(f);
    return 0;
}

/* ---- HTTP from a second thread while the loop runs here ---- */

struct call {
    int port, wake_fd;
    const char *method, *path, *auth; /* auth: the whole Authorization value, or NULL */
    const char *body;
    size_t body_len;
    /* results */
    CURLcode cc;
    long status;
    struct ava_buf out;
    char ctype[128];
};

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
    ava_buf_append(arg, p, size * n);
    return size * n;
}

static void *client_thread(void *arg) {
    struct call *c = arg;
    CURL *h = curl_easy_init();
    char url[1024], auth[1024];
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (c->auth) {
        snprintf(auth, sizeof auth, "Authorization: %s", c->auth);
        hdrs = curl_slist_append(hdrs, auth);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", c->port, c->path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->out);
    if (c->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    }
    c->cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(c->ctype, sizeof c->ctype, "%s", ct ? ct : "");
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    char one = 1;
    if (write(c->wake_fd, &one, 1) != 1)
        abort();
    return NULL;
}

/* Makes one request and runs the server's loop until the client thread has its answer. */
static void http_raw(struct afx *f, struct call *c) {
    c->port = f->port;
    c->wake_fd = f->wake[1];
    f->woken = false;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client_thread, c), 0);
    while (!f->woken)
        event_base_dispatch(f->base);
    pthread_join(th, NULL);
    CHECK(c->cc == CURLE_OK, "%s %s: %s", c->method, c->path, curl_easy_strerror(c->cc));
}

/* http_raw, then the answer's text (free()), never NULL. */
static char *http_text(struct afx *f, struct call *c) {
    http_raw(f, c);
    ava_buf_puts(&c->out, "");
    return ava_buf_steal(&c->out);
}

/* http_raw, then the answer as JSON (NULL when it is not JSON). */
static json_t *http_json(struct afx *f, struct call *c) {
    char *text = http_text(f, c);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

/* A request with a bearer token (NULL: none) and a body (NULL: none); checks the status and
 * returns the JSON answer (the caller decrefs; NULL when the answer is not JSON). */
static json_t *req(struct afx *f, const char *method, const char *path, const char *token,
                   const char *body, long want) {
    char auth[128];
    if (token)
        snprintf(auth, sizeof auth, "Bearer %s", token);
    struct call c = {.method = method,
                     .path = path,
                     .auth = token ? auth : NULL,
                     .body = body,
                     .body_len = body ? strlen(body) : 0};
    char *text = http_text(f, &c);
    CHECK(c.status == want, "%s %s: status %ld, want %ld: %s", method, path, c.status, want, text);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

/* Checks the error envelope {"error": {"code": code, "message": "...needle..."}} (and nothing
 * else) and frees j. */
static void check_error(json_t *j, const char *what, const char *code, const char *needle) {
    CHECK(json_is_object(j), "%s: the answer is not a JSON object", what);
    json_t *e = json_object_get(j, "error");
    CHECK(json_object_size(j) == 1 && json_is_object(e) && json_object_size(e) == 2,
          "%s: not the error envelope", what);
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *m = json_string_value(json_object_get(e, "message"));
    CHECK(c && !strcmp(c, code), "%s: code %s, want %s", what, c ? c : "(none)", code);
    CHECK(m && m[0] && !strchr(m, '\n'), "%s: bad message", what);
    CHECK(!needle || strstr(m, needle), "%s: message '%s' does not mention '%s'", what, m, needle);
    json_decref(j);
}

static void expect_error(struct afx *f, const char *method, const char *path, const char *token,
                         const char *body, long status, const char *code, const char *needle) {
    char what[300];
    snprintf(what, sizeof what, "%s %s", method, path);
    check_error(req(f, method, path, token, body, status), what, code, needle);
}

static const char *jstr(json_t *j, const char *key) {
    const char *s = json_string_value(json_object_get(j, key));
    CHECK(s, "no string '%s'", key);
    return s;
}

static json_int_t jint(json_t *j, const char *key) {
    json_t *v = json_object_get(j, key);
    CHECK(json_is_integer(v), "no integer '%s'", key);
    return json_integer_value(v);
}

/* Creates admin's training name (gpus or cpus) and returns its JSON. */
static json_t *create(struct afx *f, const char *name, int gpus, int cpus) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"image\":\"ava-pure:host\",\"%s\":%d,\"entry\":\"/bin/sh\","
             "\"args\":[\"-c\",\"echo hi\"],\"env\":{\"SEED\":\"7\"}}",
             name, gpus ? "gpus" : "cpus", gpus ? gpus : cpus);
    return req(f, "POST", "/api/v1/trainings", ADMIN_TOKEN, body, 201);
}

/* The latest run of admin's training name, from the store. */
static struct ava_run latest_run(struct afx *f, const char *name, int64_t *tid) {
    struct ava_training t;
    struct ava_run r;
    char err[AVA_ERRLEN] = "";
    int rc = ava_store_training_find(f->st, f->admin.id, name, &t, err);
    CHECK(rc == 0, "training %s: %s", name, err);
    rc = ava_store_run_latest(f->st, t.id, &r, err);
    CHECK(rc == 0, "latest run of %s: %s", name, err);
    if (tid)
        *tid = t.id;
    ava_training_free(&t);
    return r;
}

/* The shim's side of a run's end: the exit record, then the executor's callback. */
static void finish_run(struct afx *f, const char *name, const char *state, int64_t log_start,
                       int64_t log_end) {
    int64_t tid;
    struct ava_run r = latest_run(f, name, &tid);
    char dir[AVA_PATH_MAX], num[16], ids[32], err[AVA_ERRLEN] = "";
    snprintf(ids, sizeof ids, "%lld", (long long)tid);
    snprintf(num, sizeof num, "%d", r.number);
    assert_int_equal(ava_path_join(dir, sizeof dir, NULL, f->dir, "runs", ids, num, NULL), 0);
    struct ava_exit_record er = {.exit_code = 143,
                                 .started_at = ava_now_ms() - 1000,
                                 .ended_at = ava_now_ms(),
                                 .log_start = log_start,
                                 .log_end = log_end};
    snprintf(er.state, sizeof er.state, "%s", state);
    snprintf(er.reason, sizeof er.reason, "test: %s", state);
    int rc = ava_rundir_write_exit(dir, &er, err);
    CHECK(rc == 0, "exit record: %s", err);
    ava_sched_on_done(f->s, r.id);
}

/* Rows of a table, through a connection of our own. */
static int64_t count_rows(struct afx *f, const char *table) {
    sqlite3 *db;
    sqlite3_stmt *s;
    char sql[128];
    int64_t n = -1;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* ---- auth ---- */

static void test_auth_required(void **state) {
    struct afx *f = *state;
    static const char *const auths[] = {NULL,
                                        "Bearer wrong",
                                        "Bearer ",
                                        "Basic " ADMIN_TOKEN,
                                        "bearer " ADMIN_TOKEN,
                                        "Bearer " ADMIN_TOKEN "x"};
    static const char *const paths[] = {"/api/v1/whoami", "/api/v1/trainings"};
    for (size_t i = 0; i < N_ELEMS(auths); i++)
        for (size_t k = 0; k < N_ELEMS(paths); k++) {
            struct call c = {.method = "GET", .path = paths[k], .auth = auths[i]};
            json_t *j = http_json(f, &c);
            char what[256];
            snprintf(what, sizeof what, "GET %s with '%s'", paths[k],
                     auths[i] ? auths[i] : "(none)");
            CHECK(c.status == 401, "%s: %ld", what, c.status);
            CHECK(strstr(c.ctype, "application/json"), "%s: content type %s", what, c.ctype);
            check_error(j, what, "unauthorized", NULL);
        }
    /* nothing was created on the way */
    assert_int_equal(count_rows(f, "trainings"), 0);
}

static void test_whoami(void **state) {
    struct afx *f = *state;
    static const struct {
        const char *token, *user, *group;
        bool admin;
    } cases[] = {
        {ADMIN_TOKEN, "admin", "default", true},
        {BOB_TOKEN, "bob", "other", false},
        {CAROL_TOKEN, "carol", "default", false},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        json_t *j = req(f, "GET", "/api/v1/whoami", cases[i].token, NULL, 200);
        assert_string_equal(jstr(j, "user"), cases[i].user);
        assert_string_equal(jstr(j, "group"), cases[i].group);
        assert_true(json_is_boolean(json_object_get(j, "admin")));
        assert_int_equal(json_is_true(json_object_get(j, "admin")), cases[i].admin);
        json_decref(j);
    }
}

/* ---- creating trainings ---- */

static void test_create_cpu_training_runs(void **state) {
    struct afx *f = *state;
    json_t *j = create(f, "hello", 0, 2);
    assert_string_equal(jstr(j, "name"), "hello");
    assert_string_equal(jstr(j, "owner"), "admin");
    assert_string_equal(jstr(j, "group"), "default");
    assert_string_equal(jstr(j, "state"), "running");
    assert_int_equal(jint(j, "run"), 1);
    assert_int_equal(jint(j, "max_runtime_ms"), MAX_RUNTIME_MS);
    assert_string_equal(jstr(j, "max_runtime"), "1h");
    assert_string_equal(jstr(j, "entry"), "/bin/sh");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "env"), "SEED")), "7");
    char want[AVA_PATH_MAX];
    snprintf(want, sizeof want, "%s/storage/group/default/admin/run/train_hello_out.log", f->dir);
    assert_string_equal(jstr(j, "log_path"), want);
    snprintf(want, sizeof want, "%s/storage/group/default/admin/run/hello/output", f->dir);
    assert_string_equal(jstr(j, "output_dir"), want);
    json_t *runs = json_object_get(j, "runs");
    assert_int_equal(json_array_size(runs), 1);
    json_t *r = json_array_get(runs, 0);
    assert_int_equal(jint(r, "number"), 1);
    assert_string_equal(jstr(r, "state"), "running");
    assert_int_equal(jint(r, "cpus"), 2);
    assert_int_equal(json_array_size(json_object_get(r, "gpus")), 0);
    assert_string_equal(jstr(r, "executor"), "fake");
    assert_string_equal(jstr(r, "executor_id"), "123:456");
    assert_true(json_is_null(json_object_get(r, "exit_code")));
    json_decref(j);
    assert_int_equal(f->fake.launches, 1);
    assert_int_equal(f->fake.launched[0], latest_run(f, "hello", NULL).id);
}

static void test_create_gpu_training_gets_gpu_0(void **state) {
    struct afx *f = *state;
    json_t *j = create(f, "g1", 1, 0);
    json_t *r = json_array_get(json_object_get(j, "runs"), 0);
    json_t *gpus = json_object_get(r, "gpus");
    assert_int_equal(json_array_size(gpus), 1);
    assert_int_equal(json_integer_value(json_array_get(gpus, 0)), 0);
    assert_int_equal(jint(json_object_get(j, "resources"), "gpus"), 1);
    json_decref(j);
    assert_int_equal(f->fake.launches, 1);
    /* the next one gets the other GPU */
    j = create(f, "g2", 1, 0);
    r = json_array_get(json_object_get(j, "runs"), 0);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(r, "gpus"), 0)), 1);
    json_decref(j);
}

static void test_create_without_start_stores_only_the_spec(void **state) {
    struct afx *f = *state;
    json_t *j = req(f, "POST", "/api/v1/trainings", ADMIN_TOKEN,
                    "{\"name\":\"later\",\"image\":\"ava-pure:host\",\"cpus\":1,"
                    "\"entry\":\"/bin/true\",\"start\":false}",
                    201);
    assert_true(json_is_null(json_object_get(j, "state")));
    assert_int_equal(jint(j, "run"), 0);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 0);
    json_decref(j);
    assert_int_equal(f->fake.launches, 0);
    assert_int_equal(count_rows(f, "runs"), 0);
}

static void test_create_refusals_store_nothing(void **state) {
    struct afx *f = *state;
    json_decref(create(f, "dup", 0, 1));
    int64_t trainings = count_rows(f, "trainings"), runs = count_rows(f, "runs"),
            events = count_rows(f, "run_events");
    int launches = f->fake.launches;
#define OK_HEAD "\"image\":\"ava-pure:host\",\"entry\":\"/bin/true\""
    static const struct {
        const char *body;
        long status;
        const char *code, *needle;
    } cases[] = {
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"colour\":\"red\"}", 400, "invalid_argument",
         "colour"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":\"1\"}", 400, "invalid_argument", "cpus"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"args\":\"-v\"}", 400, "invalid_argument",
         "args"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"args\":[1]}", 400, "invalid_argument", "args"},
        {"{\"name\":\"bad name\"," OK_HEAD ",\"cpus\":1}", 400, "invalid_argument", "name"},
        {"{\"name\":\"..\"," OK_HEAD ",\"cpus\":1}", 400, "invalid_argument", "name"},
        {"{" OK_HEAD ",\"cpus\":1}", 400, "invalid_argument", "name"},
        {"{\"name\":\"t\"," OK_HEAD "}", 400, "invalid_argument", "cpus"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"gpus\":1}", 400, "invalid_argument", "gpus"},
        {"{\"name\":\"dup\"," OK_HEAD ",\"cpus\":1}", 409, "already_exists", "dup"},
        {"{\"name\":\"t\"," OK_HEAD ",\"gpus\":3}", 422, "cannot_fit", "GPU"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":5}", 422, "cannot_fit", "CPU"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"mem_bytes\":2147483648}", 422, "cannot_fit",
         "memory"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"max_runtime_ms\":3600001}", 422, "cannot_fit",
         "max runtime"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"max_runtime_ms\":0}", 400, "invalid_argument",
         "max_runtime_ms"},
        {"{\"name\":\"t\",\"image\":\"nope:1\",\"entry\":\"/bin/true\",\"cpus\":1}", 404,
         "not_found", "nope"},
        {"{\"name\":\"t\",\"image\":\"nope\",\"entry\":\"/bin/true\",\"cpus\":1}", 400,
         "invalid_argument", "nope"},
        {"{\"name\":\"t\",\"image\":\"ava-pure:host\",\"entry\":\"bin/true\",\"cpus\":1}", 400,
         "invalid_argument", "entry"},
        {"{\"name\":\"t\",\"image\":\"ava-pure:host\",\"cpus\":1}", 400, "invalid_argument",
         "entry"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"env\":{\"AVA_TOKEN\":\"x\"}}", 400,
         "invalid_argument", "AVA_TOKEN"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"env\":{\"CUDA_VISIBLE_DEVICES\":\"0\"}}", 400,
         "invalid_argument", "CUDA_VISIBLE_DEVICES"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"env\":{\"A-B\":\"x\"}}", 400, "invalid_argument",
         "A-B"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"env\":{\"K\":1}}", 400, "invalid_argument",
         "env"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1,\"train\":\"../etc/x\"}", 400, "invalid_argument",
         "train"},
        {"{\"name\":\"t\"," OK_HEAD ",\"cpus\":1", 400, "invalid_argument", "malformed JSON"},
        {"", 400, "invalid_argument", "malformed JSON"},
        {"[1,2]", 400, "invalid_argument", "object"},
        {"{\"name\":\"t\",\"name\":\"u\"," OK_HEAD ",\"cpus\":1}", 400, "invalid_argument", "name"},
    };
#undef OK_HEAD
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char what[600];
        snprintf(what, sizeof what, "case %zu %s", i, cases[i].body);
        struct call c = {.method = "POST",
                         .path = "/api/v1/trainings",
                         .auth = "Bearer " ADMIN_TOKEN,
                         .body = cases[i].body,
                         .body_len = strlen(cases[i].body)};
        json_t *j = http_json(f, &c);
        CHECK(c.status == cases[i].status, "%s: status %ld, want %ld: %s", what, c.status,
              cases[i].status, j ? "(JSON)" : "(not JSON)");
        check_error(j, what, cases[i].code, cases[i].needle);
    }
    assert_int_equal(count_rows(f, "trainings"), trainings);
    assert_int_equal(count_rows(f, "runs"), runs);
    assert_int_equal(count_rows(f, "run_events"), events);
    assert_int_equal(f->fake.launches, launches);
}

/* A body of n bytes: a JSON object whose description fills it. */
static char *padded_body(size_t n) {
    static const char head[] = "{\"name\":\"big\",\"image\":\"ava-pure:host\",\"cpus\":1,"
                               "\"entry\":\"/bin/true\",\"description\":\"";
    char *body = malloc(n + 1);
    memcpy(body, head, sizeof head - 1);
    memset(body + sizeof head - 1, 'x', n - (sizeof head - 1) - 2);
    memcpy(body + n - 2, "\"}", 3);
    return body;
}

static void test_create_body_limit(void **state) {
    struct afx *f = *state;
    /* exactly the limit is read (and refused for its description, not its size) */
    char *body = padded_body(MAX_BODY);
    assert_int_equal(strlen(body), MAX_BODY);
    expect_error(f, "POST", "/api/v1/trainings", ADMIN_TOKEN, body, 400, "invalid_argument",
                 "description");
    free(body);
    /* one byte more is refused as too large, with the error envelope like every error */
    body = padded_body(MAX_BODY + 1);
    struct call c = {.method = "POST",
                     .path = "/api/v1/trainings",
                     .auth = "Bearer " ADMIN_TOKEN,
                     .body = body,
                     .body_len = MAX_BODY + 1};
    json_t *j = http_json(f, &c);
    free(body);
    assert_int_equal(count_rows(f, "trainings"), 0);
    CHECK(c.status == 413, "status %ld, want 413", c.status);
    CHECK(j, "the 413 answer is %s, not the JSON error envelope", c.ctype);
    check_error(j, "1 MiB + 1 body", "too_large", NULL);
}

/* ---- visibility ---- */

static void test_other_group_sees_nothing(void **state) {
    struct afx *f = *state;
    json_decref(create(f, "secret", 1, 0));
    static const struct {
        const char *method, *path;
    } cases[] = {
        {"GET", "/api/v1/trainings/secret"},
        {"GET", "/api/v1/trainings/admin%2Fsecret"},
        {"GET", "/api/v1/trainings/secret?owner=admin"},
        {"GET", "/api/v1/trainings/secret/logs?owner=admin"},
        {"GET", "/api/v1/trainings/admin%2Fsecret/logs"},
        {"GET", "/api/v1/trainings/secret/runs/1?owner=admin"},
        {"POST", "/api/v1/trainings/secret/stop?owner=admin"},
        {"POST", "/api/v1/trainings/admin%2Fsecret/stop"},
        {"POST", "/api/v1/trainings/secret/start?owner=admin"},
        {"DELETE", "/api/v1/trainings/secret?owner=admin"},
        {"DELETE", "/api/v1/trainings/admin%2Fsecret"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++)
        expect_error(f, cases[i].method, cases[i].path, BOB_TOKEN, NULL, 404, "not_found", NULL);
    assert_int_equal(f->fake.stops, 0);
    assert_int_equal(count_rows(f, "trainings"), 1);
    assert_int_equal(latest_run(f, "secret", NULL).state, AVA_RUN_RUNNING);
    /* bob's list is empty; his resources view hides the holder's name */
    json_t *j = req(f, "GET", "/api/v1/trainings", BOB_TOKEN, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "trainings")), 0);
    json_decref(j);
    j = req(f, "GET", "/api/v1/resources", BOB_TOKEN, NULL, 200);
    json_t *h = json_array_get(json_object_get(j, "holders"), 0);
    assert_string_equal(jstr(h, "training"), "(other group)");
    assert_string_equal(jstr(json_array_get(json_object_get(j, "gpus"), 0), "training"),
                        "(other group)");
    json_decref(j);
    /* a group-mate addresses it as admin/secret or with ?owner= */
    static const char *const mate[] = {"/api/v1/trainings/admin%2Fsecret",
                                       "/api/v1/trainings/secret?owner=admin"};
    for (size_t i = 0; i < N_ELEMS(mate); i++) {
        j = req(f, "GET", mate[i], CAROL_TOKEN, NULL, 200);
        assert_string_equal(jstr(j, "name"), "secret");
        json_decref(j);
    }
    expect_error(f, "GET", "/api/v1/trainings/secret", CAROL_TOKEN, NULL, 404, "not_found", NULL);
}

static void test_admin_routes_forbidden_to_users(void **state) {
    struct afx *f = *state;
    expect_error(f, "POST", "/api/v1/groups", BOB_TOKEN, "{\"name\":\"g2\"}", 403, "forbidden",
                 NULL);
    expect_error(f, "POST", "/api/v1/users", BOB_TOKEN, "{\"name\":\"eve\",\"group\":\"other\"}",
                 403, "forbidden", NULL);
    expect_error(f, "GET", "/api/v1/groups", BOB_TOKEN, NULL, 403, "forbidden", NULL);
    char err[AVA_ERRLEN];
    struct ava_user u;
    int64_t gid;
    assert_int_equal(ava_store_user_find(f->st, "eve", &u, err), AVA_ENOTFOUND);
    assert_int_equal(ava_store_group_find(f->st, "g2", &gid, err), AVA_ENOTFOUND);
    /* a plain user lists only the users of the own group */
    json_t *j = req(f, "GET", "/api/v1/users", BOB_TOKEN, NULL, 200);
    json_t *us = json_object_get(j, "users");
    assert_int_equal(json_array_size(us), 1);
    assert_string_equal(jstr(json_array_get(us, 0), "name"), "bob");
    json_decref(j);
}

/* ---- stop, start, resources, delete ---- */

static void test_stop_start_resources_delete(void **state) {
    struct afx *f = *state;
    json_t *j = create(f, "life", 1, 0);
    const char *outdir = jstr(j, "output_dir");
    char output_dir[AVA_PATH_MAX];
    snprintf(output_dir, sizeof output_dir, "%s", outdir);
    json_decref(j);
    int64_t tid;
    struct ava_run r = latest_run(f, "life", &tid);

    j = req(f, "POST", "/api/v1/trainings/life/stop", ADMIN_TOKEN, NULL, 200);
    assert_string_equal(jstr(j, "state"), "stopping");
    json_decref(j);
    assert_int_equal(f->fake.stops, 1);
    assert_int_equal(f->fake.stopped[0], r.id);

    expect_error(f, "POST", "/api/v1/trainings/life/start", ADMIN_TOKEN, NULL, 409, "conflict",
                 "life");

    j = req(f, "GET", "/api/v1/resources", ADMIN_TOKEN, NULL, 200);
    json_t *holders = json_object_get(j, "holders");
    assert_int_equal(json_array_size(holders), 1);
    json_t *h = json_array_get(holders, 0);
    assert_string_equal(jstr(h, "training"), "admin/life");
    assert_int_equal(jint(h, "run"), 1);
    assert_string_equal(jstr(h, "state"), "stopping");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(h, "gpus"), 0)), 0);
    json_t *gpus = json_object_get(j, "gpus");
    assert_int_equal(json_array_size(gpus), 2);
    assert_int_equal(jint(json_array_get(gpus, 0), "index"), 0);
    assert_string_equal(jstr(json_array_get(gpus, 0), "training"), "admin/life");
    assert_int_equal(jint(json_array_get(gpus, 0), "run"), 1);
    assert_true(json_is_null(json_object_get(json_array_get(gpus, 1), "training")));
    assert_int_equal(jint(json_object_get(j, "cpus"), "total"), 4);
    assert_int_equal(jint(json_object_get(j, "mem_bytes"), "total"), GIB);
    assert_int_equal(jint(j, "queued"), 0);
    json_decref(j);

    expect_error(f, "DELETE", "/api/v1/trainings/life", ADMIN_TOKEN, NULL, 409, "conflict",
                 "stop it first");
    assert_int_equal(count_rows(f, "trainings"), 1);

    finish_run(f, "life", "stopped", 0, 0);
    j = req(f, "GET", "/api/v1/trainings/life", ADMIN_TOKEN, NULL, 200);
    assert_string_equal(jstr(j, "state"), "stopped");
    json_t *run = json_array_get(json_object_get(j, "runs"), 0);
    assert_int_equal(jint(run, "exit_code"), 143);
    json_t *ev = json_object_get(run, "events");
    assert_string_equal(jstr(json_array_get(ev, json_array_size(ev) - 1), "state"), "stopped");
    json_decref(j);
    expect_error(f, "POST", "/api/v1/trainings/life/stop", ADMIN_TOKEN, NULL, 409, "conflict",
                 NULL);
    j = req(f, "GET", "/api/v1/resources", ADMIN_TOKEN, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "holders")), 0);
    json_decref(j);

    j = req(f, "DELETE", "/api/v1/trainings/life", ADMIN_TOKEN, NULL, 200);
    assert_string_equal(jstr(j, "name"), "life");
    assert_true(json_is_true(json_object_get(j, "removed")));
    json_decref(j);
    expect_error(f, "GET", "/api/v1/trainings/life", ADMIN_TOKEN, NULL, 404, "not_found", NULL);
    assert_int_equal(count_rows(f, "trainings"), 0);
    assert_int_equal(count_rows(f, "runs"), 0);
    assert_int_equal(count_rows(f, "run_events"), 0);
    /* the run dirs go, the outputs (the group's files) stay */
    char dir[AVA_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/runs/%lld", f->dir, (long long)tid);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(access(output_dir, F_OK), 0);
}

static void test_restart_after_the_end_makes_run_2(void **state) {
    struct afx *f = *state;
    json_decref(create(f, "again", 0, 1));
    finish_run(f, "again", "succeeded", 0, 0);
    json_t *j = req(f, "POST", "/api/v1/trainings/again/start", ADMIN_TOKEN, NULL, 200);
    assert_string_equal(jstr(j, "state"), "running");
    assert_int_equal(jint(j, "run"), 2);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 2);
    json_decref(j);
    assert_int_equal(f->fake.launches, 2);
}

static void test_stop_of_a_queued_run_ends_it_at_once(void **state) {
    struct afx *f = *state;
    json_decref(create(f, "first", 1, 0));
    json_t *j = create(f, "both", 2, 0);
    assert_string_equal(jstr(j, "state"), "queued");
    json_decref(j);
    j = req(f, "GET", "/api/v1/resources", CAROL_TOKEN, NULL, 200);
    assert_int_equal(jint(j, "queued"), 1);
    assert_int_equal(json_array_size(json_object_get(j, "holders")), 1);
    json_decref(j);
    j = req(f, "POST", "/api/v1/trainings/both/stop", ADMIN_TOKEN, NULL, 200);
    assert_string_equal(jstr(j, "state"), "stopped");
    json_decref(j);
    assert_int_equal(f->fake.stops, 0);
    assert_int_equal(f->fake.launches, 1);
    j = req(f, "GET", "/api/v1/resources", ADMIN_TOKEN, NULL, 200);
    assert_int_equal(jint(j, "queued"), 0);
    json_decref(j);
}

/* ---- logs ---- */

/* GET of a log; returns the body (free()). */
static char *get_log(struct afx *f, const char *path, long want) {
    struct call c = {.method = "GET", .path = path, .auth = "Bearer " ADMIN_TOKEN};
    char *text = http_text(f, &c);
    if (c.status != want || (want == 200 && strncmp(c.ctype, "text/plain", 10) != 0)) {
        free(text);
        fail_msg("GET %s: %ld (%s), want %ld", path, c.status, c.ctype, want);
    }
    return text;
}

static void test_logs_serve_the_run_range(void **state) {
    struct afx *f = *state;
    json_t *j = create(f, "logged", 0, 1);
    char log_path[AVA_PATH_MAX];
    snprintf(log_path, sizeof log_path, "%s", jstr(j, "log_path"));
    json_decref(j);
    static const char text[] = "before\nrun1 line\nafter\n";
    assert_int_equal(ava_file_write_atomic(log_path, text, strlen(text), 0644, NULL), 0);
    finish_run(f, "logged", "succeeded", 7, 17);

    char *body = get_log(f, "/api/v1/trainings/logged/logs", 200);
    assert_string_equal(body, "run1 line\n");
    free(body);
    body = get_log(f, "/api/v1/trainings/logged/logs?run=1", 200);
    assert_string_equal(body, "run1 line\n");
    free(body);
    body = get_log(f, "/api/v1/trainings/logged/logs?run=all", 200);
    assert_string_equal(body, text);
    free(body);
    body = get_log(f, "/api/v1/trainings/logged/logs?run=2", 404);
    free(body);
    body = get_log(f, "/api/v1/trainings/logged/logs?run=x", 400);
    free(body);

    /* run 2 is live: from the start its status file records to the end of the file */
    j = req(f, "POST", "/api/v1/trainings/logged/start", ADMIN_TOKEN, NULL, 200);
    json_decref(j);
    int64_t tid;
    latest_run(f, "logged", &tid);
    char dir[AVA_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/runs/%lld/2", f->dir, (long long)tid);
    struct ava_shim_info si = {.pid = 123, .start_time = 456, .log_start = (int64_t)strlen(text)};
    snprintf(si.state, sizeof si.state, "running");
    assert_int_equal(ava_rundir_write_status(dir, &si, NULL), 0);
    assert_int_equal(ava_file_append_line(log_path, "run2 partial", NULL), 0);
    body = get_log(f, "/api/v1/trainings/logged/logs", 200);
    assert_string_equal(body, "run2 partial\n");
    free(body);
    body = get_log(f, "/api/v1/trainings/logged/logs?run=1", 200);
    assert_string_equal(body, "run1 line\n");
    free(body);
}

/* ---- users ---- */

static void test_admin_creates_user_whose_token_works(void **state) {
    struct afx *f = *state;
    json_t *j = req(f, "POST", "/api/v1/users", ADMIN_TOKEN,
                    "{\"name\":\"dave\",\"group\":\"other\",\"admin\":false}", 201);
    assert_string_equal(jstr(j, "name"), "dave");
    assert_string_equal(jstr(j, "group"), "other");
    assert_true(json_is_false(json_object_get(j, "admin")));
    char token[64];
    snprintf(token, sizeof token, "%s", jstr(j, "token"));
    json_decref(j);
    assert_int_equal(strncmp(token, "ava_", 4), 0);
    assert_int_equal(strlen(token), 44);

    j = req(f, "GET", "/api/v1/whoami", token, NULL, 200);
    assert_string_equal(jstr(j, "user"), "dave");
    assert_string_equal(jstr(j, "group"), "other");
    assert_true(json_is_false(json_object_get(j, "admin")));
    json_decref(j);
    /* the server keeps only the hash */
    struct ava_user u;
    char hash[65];
    ava_sha256_hex(token, hash);
    assert_int_equal(ava_store_user_by_token(f->st, hash, &u, NULL), 0);
    assert_string_equal(u.name, "dave");

    static const struct {
        const char *body;
        long status;
        const char *code, *needle;
    } cases[] = {
        {"{\"name\":\"dave\",\"group\":\"other\"}", 409, "already_exists", "dave"},
        {"{\"name\":\"erin\",\"group\":\"nope\"}", 404, "not_found", "nope"},
        {"{\"name\":\"bad name\",\"group\":\"other\"}", 400, "invalid_argument", "name"},
        {"{\"name\":\"erin\",\"group\":\"other\",\"role\":\"x\"}", 400, "invalid_argument", "role"},
        {"{\"name\":\"erin\"}", 400, "invalid_argument", "group"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++)
        expect_error(f, "POST", "/api/v1/users", ADMIN_TOKEN, cases[i].body, cases[i].status,
                     cases[i].code, cases[i].needle);
    assert_int_equal(ava_store_user_count(f->st), 4);
}

static void test_admin_creates_groups(void **state) {
    struct afx *f = *state;
    json_t *j = req(f, "POST", "/api/v1/groups", ADMIN_TOKEN, "{\"name\":\"vision\"}", 201);
    assert_string_equal(jstr(j, "name"), "vision");
    json_decref(j);
    expect_error(f, "POST", "/api/v1/groups", ADMIN_TOKEN, "{\"name\":\"vision\"}", 409,
                 "already_exists", "vision");
    expect_error(f, "POST", "/api/v1/groups", ADMIN_TOKEN, "{\"name\":\"..\"}", 400,
                 "invalid_argument", "name");
    j = req(f, "GET", "/api/v1/groups", ADMIN_TOKEN, NULL, 200);
    json_t *gs = json_object_get(j, "groups");
    assert_int_equal(json_array_size(gs), 3);
    assert_string_equal(jstr(json_array_get(gs, 2), "name"), "vision");
    json_decref(j);
}

/* ---- metrics ---- */

/* The run dir of admin's training name's latest run (created). */
static void run_dir_of(struct afx *f, const char *name, char *dir, size_t len, int64_t *run_id) {
    int64_t tid;
    struct ava_run r = latest_run(f, name, &tid);
    char num[16], ids[32];
    snprintf(ids, sizeof ids, "%lld", (long long)tid);
    snprintf(num, sizeof num, "%d", r.number);
    assert_int_equal(ava_path_join(dir, len, NULL, f->dir, "runs", ids, num, NULL), 0);
    assert_int_equal(ava_mkdir_p(dir, 0755, NULL), 0);
    *run_id = r.id;
}

static double wave(int64_t i) {
    return i == 61234 ? 1e6 : (double)((i * 7919) % 1000) / 1000.0;
}

/* Appends the shim's lines of steps [from, to) of loss/train to the run's metrics file, and
 * text after them (may be NULL). */
static void append_metrics(const char *dir, int64_t from, int64_t to, const char *text) {
    char path[AVA_PATH_MAX];
    assert_int_equal(ava_path_join(path, sizeof path, NULL, dir, "metrics", NULL), 0);
    FILE *fp = fopen(path, "a");
    assert_non_null(fp);
    for (int64_t i = from; i < to; i++)
        fprintf(fp, "loss,phase=train value=%.17g,step=%lldi %lld\n", wave(i), (long long)i,
                (1764130000000LL + i) * 1000000);
    if (text)
        fputs(text, fp);
    fclose(fp);
}

/* Ingests what the run's file holds; returns the points stored. */
static int64_t ingest(struct afx *f, int64_t run_id, const char *dir) {
    int64_t total = 0, pts;
    int more = 1;
    char err[AVA_ERRLEN] = "";
    while (more) {
        CHECK(ava_metrics_ingest_run(f->st, run_id, dir, &pts, NULL, &more, err) == 0, "%s", err);
        total += pts;
    }
    return total;
}

/* Checks a downsampled answer: count, the flag, n points of the exact format in step order
 * from first to last, each the stored point of its step; returns whether the spike is in. */
static bool check_curve(json_t *j, json_int_t count, size_t n, json_int_t first, json_int_t last) {
    assert_int_equal(jint(j, "count"), count);
    assert_true(json_is_true(json_object_get(j, "downsampled")));
    json_t *pts = json_object_get(j, "points");
    CHECK(json_array_size(pts) == n, "%zu points, want %zu", json_array_size(pts), n);
    bool spike = false;
    json_int_t prev = -1;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(pts, i);
        json_int_t step = jint(p, "step");
        CHECK(json_object_size(p) == 3 && step > prev, "point %zu", i);
        CHECK(json_number_value(json_object_get(p, "value")) == wave(step), "value of %lld",
              (long long)step);
        CHECK(jint(p, "time") == 1764130000000LL + step, "time of %lld", (long long)step);
        spike |= step == 61234;
        prev = step;
    }
    assert_int_equal(jint(json_array_get(pts, 0), "step"), first);
    assert_int_equal(jint(json_array_get(pts, n - 1), "step"), last);
    return spike;
}

/* Points from the run's metrics file (by offset, a partial last line waiting for its end),
 * served downsampled: a long series from its buckets, a live one with its newest point. */
static void test_metrics_ingest_and_downsample(void **state) {
    struct afx *f = *state;
    json_decref(create(f, "curve", 0, 1));
    char dir[AVA_PATH_MAX];
    int64_t run_id, off;
    run_dir_of(f, "curve", dir, sizeof dir, &run_id);
    append_metrics(dir, 0, 100000, "loss,phase=train value=0.5,step=100000i");
    assert_int_equal(ingest(f, run_id, dir), 100000);
    assert_int_equal(ingest(f, run_id, dir), 0);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_store_metrics_offset(f->st, run_id, &off, err), 0);
    struct stat sb;
    char path[AVA_PATH_MAX];
    assert_int_equal(ava_path_join(path, sizeof path, NULL, dir, "metrics", NULL), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(off, sb.st_size - (off_t)strlen("loss,phase=train value=0.5,step=100000i"));
    json_t *j = req(f, "GET", "/api/v1/trainings/curve/metrics/loss?max_points=1000", ADMIN_TOKEN,
                    NULL, 200);
    assert_true(check_curve(j, 100000, 1000, 0, 99999)); /* from 1563 buckets of 64 */
    json_decref(j);
    j = req(f, "GET", "/api/v1/trainings/curve/metrics/loss?max_points=3000", ADMIN_TOKEN, NULL,
            200);
    assert_true(check_curve(j, 100000, 3000, 0, 99999)); /* from every point */
    json_decref(j);
    /* the partial line completed, and more: the answer follows the live series */
    append_metrics(dir, 0, 0, " 1764130100000000000\n");
    append_metrics(dir, 100001, 100100, NULL);
    assert_int_equal(ingest(f, run_id, dir), 100);
    int64_t off2;
    assert_int_equal(ava_store_metrics_offset(f->st, run_id, &off2, err), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(off2, sb.st_size); /* every line taken, each once */
    j = req(f, "GET", "/api/v1/trainings/curve/metrics/loss?max_points=1000", ADMIN_TOKEN, NULL,
            200);
    assert_int_equal(jint(j, "count"), 100100);
    json_t *pts = json_object_get(j, "points");
    assert_int_equal(json_array_size(pts), 1000);
    assert_int_equal(jint(json_array_get(pts, 999), "step"), 100099);
    json_decref(j);
    /* raw pages are unchanged */
    j = req(f, "GET", "/api/v1/trainings/curve/metrics/loss?since_step=99998&limit=3", ADMIN_TOKEN,
            NULL, 200);
    pts = json_object_get(j, "points");
    assert_int_equal(json_array_size(pts), 3);
    assert_int_equal(jint(json_array_get(pts, 0), "step"), 99999);
    assert_int_equal(jint(json_array_get(pts, 1), "step"), 100000);
    assert_int_equal(jint(json_array_get(pts, 1), "time"), 1764130100000);
    assert_false(json_is_true(json_object_get(j, "downsampled")));
    json_decref(j);
}

#define S(fn) cmocka_unit_test_setup_teardown(fn, afx_setup, afx_teardown)

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        S(test_auth_required),
        S(test_whoami),
        S(test_create_cpu_training_runs),
        S(test_create_gpu_training_gets_gpu_0),
        S(test_create_without_start_stores_only_the_spec),
        S(test_create_refusals_store_nothing),
        S(test_create_body_limit),
        S(test_other_group_sees_nothing),
        S(test_admin_routes_forbidden_to_users),
        S(test_stop_start_resources_delete),
        S(test_restart_after_the_end_makes_run_2),
        S(test_stop_of_a_queued_run_ends_it_at_once),
        S(test_logs_serve_the_run_range),
        S(test_admin_creates_user_whose_token_works),
        S(test_admin_creates_groups),
        S(test_metrics_ingest_and_downsample),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
