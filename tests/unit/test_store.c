/* test_store.c: src/store on a real SQLite file in a temporary directory: schema and WAL,
 * groups, users, images, trainings, runs with their state checks and events. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/common/path.h"
#include "../../src/store/store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the schema version the migrations in src/store/db.c end at */
#define STORE_SCHEMA_VERSION 5

/* Each test gets a fresh database in its own directory. */
struct fx {
    char dir[64];
    char db[128];
    struct ava_store *st;
};

static int fx_setup(void **state) {
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ava-test-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof f->db, "%s/ava.db", f->dir);
    char err[AVA_ERRLEN] = "";
    if (ava_store_open(f->db, &f->st, err) < 0) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    struct fx *f = *state;
    ava_store_close(f->st);
    ava_rm_rf(f->dir, NULL);
    free(f);
    return 0;
}

/* Runs one query returning a single integer on a second connection. */
static int64_t query_int(const char *db, const char *sql) {
    sqlite3 *h = NULL;
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(h);
    return v;
}

static int64_t mkgroup(struct ava_store *st, const char *name) {
    int64_t id = 0;
    char err[AVA_ERRLEN] = "";
    int r = ava_store_group_create(st, name, &id, err);
    CHECK(r == 0, "group %s: %s", name, err);
    return id;
}

static void mkuser(struct ava_store *st, const char *name, int64_t gid, struct ava_user *u) {
    char err[AVA_ERRLEN] = "", hash[80];
    snprintf(hash, sizeof hash, "hash-of-%s", name);
    int r = ava_store_user_create(st, name, gid, false, hash, u, err);
    CHECK(r == 0, "user %s: %s", name, err);
}

static int insert_training(struct ava_store *st, const struct ava_user *u, const char *name,
                           struct ava_training *t, char *err) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->user_id = u->id;
    t->group_id = u->group_id;
    snprintf(t->image, sizeof t->image, "ava-pure:host");
    snprintf(t->image_kind, sizeof t->image_kind, "host");
    t->gpus = 1;
    t->cpus = 2;
    t->mem_bytes = INT64_C(1) << 30;
    t->entry = "/bin/true";
    t->args_json = "[\"--epochs\",\"3\"]";
    t->env_json = "{\"SEED\":\"7\"}";
    t->val_set = "mnist/raw/20";
    t->max_runtime_ms = 3600000;
    t->created_at = 1000;
    return ava_store_training_insert(st, t, err);
}

static int64_t mktraining(struct ava_store *st, const struct ava_user *u, const char *name) {
    struct ava_training t;
    char err[AVA_ERRLEN] = "";
    int r = insert_training(st, u, name, &t, err);
    CHECK(r == 0, "training %s: %s", name, err);
    return t.id;
}

/* A group "g", its user "alice" and one training "t1". */
struct world {
    int64_t gid;
    struct ava_user alice;
    int64_t tid;
};

static void mkworld(struct ava_store *st, struct world *w) {
    w->gid = mkgroup(st, "g");
    mkuser(st, "alice", w->gid, &w->alice);
    w->tid = mktraining(st, &w->alice, "t1");
}

static void mkrun(struct ava_store *st, int64_t tid, int64_t at, struct ava_run *r) {
    char err[AVA_ERRLEN] = "";
    int rc = ava_store_run_create(st, tid, "start requested by test", at, r, err);
    CHECK(rc == 0, "run create: %s", err);
}

/* Moves r to `to` at time at, reloading r from the store afterwards. */
static int move(struct ava_store *st, struct ava_run *r, enum ava_run_state to, int64_t at,
                const char *reason, char *err) {
    struct ava_run next = *r;
    next.state = to;
    snprintf(next.reason, sizeof next.reason, "%s", reason);
    int rc = ava_store_run_transition(st, &next, at, err);
    char gerr[AVA_ERRLEN];
    assert_int_equal(ava_store_run_get(st, r->training_id, r->number, r, gerr), 0);
    return rc;
}

static size_t event_count(struct ava_store *st, int64_t run_id) {
    struct ava_run_event *ev = NULL;
    size_t n = 0;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_store_run_events(st, run_id, &ev, &n, err), 0);
    free(ev);
    return n;
}

/* ---- lifecycle ---- */

static void test_open_creates_the_latest_schema_with_wal(void **state) {
    struct fx *f = *state;
    assert_int_equal(ava_store_schema_version(f->st), STORE_SCHEMA_VERSION);
    assert_int_equal(query_int(f->db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    sqlite3 *h = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(h);
    static const char *const tables[] = {"groups",    "users", "images",
                                         "trainings", "runs",  "run_events"};
    for (size_t i = 0; i < N_ELEMS(tables); i++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'", tables[i]);
        CHECK(query_int(f->db, sql) == 1, "table %s missing", tables[i]);
    }
    assert_int_equal(ava_store_user_count(f->st), 0);
    assert_int_equal(ava_store_training_count(f->st), 0);
}

static void test_reopen_keeps_data_and_version(void **state) {
    struct fx *f = *state;
    int64_t gid = mkgroup(f->st, "team");
    ava_store_close(f->st);
    f->st = NULL;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_store_open(f->db, &f->st, err), 0);
    assert_int_equal(ava_store_schema_version(f->st), STORE_SCHEMA_VERSION);
    int64_t found = 0;
    assert_int_equal(ava_store_group_find(f->st, "team", &found, err), 0);
    assert_int_equal(found, gid);
}

static void test_newer_schema_is_refused(void **state) {
    struct fx *f = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/newer.db", f->dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    struct ava_store *st = (struct ava_store *)0x1;
    char err[AVA_ERRLEN] = "";
    int r = ava_store_open(path, &st, err);
    assert_true(r < 0);
    assert_ptr_equal(st, (struct ava_store *)0x1);
    assert_non_null(strstr(err, "newer"));
    assert_non_null(strstr(err, "99"));
    /* and the file is left as it was */
    assert_int_equal(query_int(path, "PRAGMA user_version"), 99);
}

static void test_open_in_missing_directory_fails(void **state) {
    struct fx *f = *state;
    char path[160], err[AVA_ERRLEN] = "";
    snprintf(path, sizeof path, "%s/no/such/dir/ava.db", f->dir);
    struct ava_store *st = NULL;
    assert_int_equal(ava_store_open(path, &st, err), AVA_EIO);
    assert_null(st);
    assert_non_null(strstr(err, path));
}

static void test_transactions_commit_and_rollback(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    int64_t id;
    assert_int_equal(ava_store_begin(f->st, err), 0);
    mkgroup(f->st, "dropped");
    ava_store_rollback(f->st);
    assert_int_equal(ava_store_group_find(f->st, "dropped", &id, err), AVA_ENOTFOUND);
    assert_int_equal(ava_store_begin(f->st, err), 0);
    assert_true(ava_store_begin(f->st, err) < 0); /* not nestable */
    mkgroup(f->st, "kept");
    assert_int_equal(ava_store_commit(f->st, err), 0);
    assert_int_equal(ava_store_group_find(f->st, "kept", &id, err), 0);
    ava_store_rollback(f->st); /* no transaction: harmless */
    assert_int_equal(ava_store_group_find(f->st, "kept", &id, err), 0);
}

/* ---- groups ---- */

static void collect_group(void *ctx, const char *name, int64_t created_at) {
    char *out = ctx;
    assert_true(created_at > 0);
    strcat(out, name);
    strcat(out, ",");
}

static void test_groups(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    int64_t b = mkgroup(f->st, "beta");
    int64_t a = mkgroup(f->st, "alpha");
    mkgroup(f->st, "gamma");
    assert_true(a > 0 && b > 0 && a != b);
    int64_t id = 0;
    assert_int_equal(ava_store_group_create(f->st, "beta", &id, err), AVA_EEXISTS);
    assert_non_null(strstr(err, "beta"));
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(ava_store_group_find(f->st, "alpha", &id, err), 0);
    assert_int_equal(id, a);
    assert_int_equal(ava_store_group_find(f->st, "delta", &id, err), AVA_ENOTFOUND);
    assert_non_null(strstr(err, "delta"));
    char names[128] = "";
    assert_int_equal(ava_store_group_each(f->st, collect_group, names, err), 0);
    assert_string_equal(names, "alpha,beta,gamma,");
}

/* ---- users ---- */

static void test_users_create_find_and_token(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    int64_t g = mkgroup(f->st, "g");
    struct ava_user u, v;
    assert_int_equal(ava_store_user_create(f->st, "alice", g, true, "h1", &u, err), 0);
    assert_true(u.id > 0);
    assert_string_equal(u.name, "alice");
    assert_string_equal(u.group, "g");
    assert_int_equal(u.group_id, g);
    assert_true(u.admin);
    assert_true(u.created_at > 0);

    assert_int_equal(ava_store_user_create(f->st, "alice", g, false, "h2", &v, err), AVA_EEXISTS);
    assert_non_null(strstr(err, "alice"));
    /* the same token hash for another user is refused too */
    assert_true(ava_store_user_create(f->st, "bob", g, false, "h1", &v, err) < 0);
    /* a user of a group that does not exist */
    assert_true(ava_store_user_create(f->st, "carol", g + 100, false, "h3", &v, err) < 0);
    assert_int_equal(ava_store_user_count(f->st), 1);

    assert_int_equal(ava_store_user_by_token(f->st, "h1", &v, err), 0);
    assert_int_equal(v.id, u.id);
    assert_string_equal(v.name, "alice");
    assert_int_equal(ava_store_user_by_token(f->st, "h2", &v, err), AVA_ENOTFOUND);
    assert_int_equal(ava_store_user_by_token(f->st, "", &v, err), AVA_ENOTFOUND);

    assert_int_equal(ava_store_user_find(f->st, "alice", &v, err), 0);
    assert_int_equal(v.id, u.id);
    assert_true(v.admin);
    assert_int_equal(ava_store_user_find(f->st, "nobody", &v, err), AVA_ENOTFOUND);
    assert_non_null(strstr(err, "nobody"));
}

static void test_users_list_and_count(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    int64_t g1 = mkgroup(f->st, "zeta"), g2 = mkgroup(f->st, "alpha");
    struct ava_user u;
    mkuser(f->st, "mia", g1, &u);
    mkuser(f->st, "carl", g1, &u);
    mkuser(f->st, "zoe", g2, &u);
    mkuser(f->st, "ann", g2, &u);
    mkuser(f->st, "bob", g1, &u);
    assert_int_equal(ava_store_user_count(f->st), 5);

    struct ava_user *list = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_user_list(f->st, g1, &list, &n, err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].name, "bob");
    assert_string_equal(list[1].name, "carl");
    assert_string_equal(list[2].name, "mia");
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i].group, "zeta");
    free(list);

    /* all users: by group name, then user name */
    assert_int_equal(ava_store_user_list(f->st, 0, &list, &n, err), 0);
    assert_int_equal(n, 5);
    static const char *const want[] = {"ann", "zoe", "bob", "carl", "mia"};
    for (size_t i = 0; i < n; i++)
        CHECK(strcmp(list[i].name, want[i]) == 0, "user %zu is %s, want %s", i, list[i].name,
              want[i]);
    free(list);

    assert_int_equal(ava_store_user_list(f->st, g2 + 50, &list, &n, err), 0);
    assert_int_equal(n, 0);
    free(list);
}

static void test_users_list_grows_past_initial_capacity(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    int64_t g = mkgroup(f->st, "big");
    for (int i = 0; i < 40; i++) {
        char name[16];
        struct ava_user u;
        snprintf(name, sizeof name, "u%02d", i);
        mkuser(f->st, name, g, &u);
    }
    struct ava_user *list = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_user_list(f->st, g, &list, &n, err), 0);
    assert_int_equal(n, 40);
    assert_string_equal(list[0].name, "u00");
    assert_string_equal(list[39].name, "u39");
    free(list);
}

/* ---- images ---- */

static void fill_image(struct ava_image *img, const char *name, const char *tag, const char *desc) {
    memset(img, 0, sizeof *img);
    snprintf(img->name, sizeof img->name, "%s", name);
    snprintf(img->tag, sizeof img->tag, "%s", tag);
    snprintf(img->kind, sizeof img->kind, "host");
    img->description = (char *)desc;
    img->env_json = "{\"A\":\"1\"}";
    img->available = true;
}

static void test_images_upsert_public_keeps_one_row(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    struct ava_image img, got;
    fill_image(&img, "ava-pure", "host", "first");
    img.entry = "/usr/bin/python3";
    img.metrics_parser = "keras";
    assert_int_equal(ava_store_image_upsert_public(f->st, &img, err), 0);
    assert_int_equal(ava_store_image_find(f->st, "ava-pure", "host", 0, &got, err), 0);
    int64_t id = got.id;
    assert_string_equal(got.description, "first");
    assert_string_equal(got.entry, "/usr/bin/python3");
    assert_string_equal(got.metrics_parser, "keras");
    assert_string_equal(got.env_json, "{\"A\":\"1\"}");
    assert_int_equal(got.group_id, 0);
    assert_int_equal(got.owner_id, 0);
    assert_string_equal(got.owner, "");
    assert_string_equal(got.group, "");
    assert_true(got.available);
    assert_null(got.unavailable_reason);
    ava_image_free(&got);

    fill_image(&img, "ava-pure", "host", "second");
    img.available = false;
    img.unavailable_reason = "python3 is not installed";
    assert_int_equal(ava_store_image_upsert_public(f->st, &img, err), 0);
    struct ava_image *list = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_image_list(f->st, 0, &list, &n, err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, id);
    assert_string_equal(list[0].description, "second");
    assert_null(list[0].entry);
    assert_null(list[0].metrics_parser);
    assert_false(list[0].available);
    assert_string_equal(list[0].unavailable_reason, "python3 is not installed");
    ava_image_list_free(list, n);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM images"), 1);
}

static void test_images_private_rules(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    int64_t ga = mkgroup(f->st, "ga"), gb = mkgroup(f->st, "gb");
    struct ava_user ua, ub;
    mkuser(f->st, "ua", ga, &ua);
    mkuser(f->st, "ub", gb, &ub);
    struct ava_image img;
    int64_t id1 = 0, id2 = 0, id3 = 0;

    fill_image(&img, "mine", "v1", "a's");
    img.group_id = ga;
    img.owner_id = ua.id;
    assert_int_equal(ava_store_image_insert(f->st, &img, &id1, err), 0);
    assert_true(id1 > 0);
    /* the same name:tag in another group is another image */
    fill_image(&img, "mine", "v1", "b's");
    img.group_id = gb;
    img.owner_id = ub.id;
    assert_int_equal(ava_store_image_insert(f->st, &img, &id2, err), 0);
    assert_true(id2 > 0 && id2 != id1);
    /* but twice in one group is refused */
    fill_image(&img, "mine", "v1", "again");
    img.group_id = ga;
    img.owner_id = ua.id;
    err[0] = '\0';
    assert_int_equal(ava_store_image_insert(f->st, &img, &id3, err), AVA_EEXISTS);
    assert_non_null(strstr(err, "mine:v1"));
    /* a private image may not take a public image's name:tag */
    struct ava_image pub;
    fill_image(&pub, "shared", "1", "public one");
    assert_int_equal(ava_store_image_upsert_public(f->st, &pub, err), 0);
    fill_image(&img, "shared", "1", "private copy");
    img.group_id = ga;
    img.owner_id = ua.id;
    assert_int_equal(ava_store_image_insert(f->st, &img, &id3, err), AVA_EEXISTS);

    struct ava_image got;
    assert_int_equal(ava_store_image_find(f->st, "mine", "v1", ga, &got, err), 0);
    assert_int_equal(got.id, id1);
    assert_string_equal(got.description, "a's");
    assert_string_equal(got.owner, "ua");
    assert_string_equal(got.group, "ga");
    assert_int_equal(got.owner_id, ua.id);
    ava_image_free(&got);
    assert_int_equal(ava_store_image_find(f->st, "mine", "v1", gb, &got, err), 0);
    assert_int_equal(got.id, id2);
    ava_image_free(&got);
    /* a third group sees neither private image */
    assert_int_equal(ava_store_image_find(f->st, "mine", "v1", gb + 100, &got, err), AVA_ENOTFOUND);
    assert_non_null(strstr(err, "mine:v1"));
    ava_image_free(&got); /* a zeroed or untouched struct is fine to free */
}

static void test_images_find_prefers_private(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    int64_t ga = mkgroup(f->st, "ga"), gb = mkgroup(f->st, "gb");
    struct ava_user ua;
    mkuser(f->st, "ua", ga, &ua);
    struct ava_image img, got;
    int64_t pid = 0;
    fill_image(&img, "tf", "2", "private tf");
    img.group_id = ga;
    img.owner_id = ua.id;
    assert_int_equal(ava_store_image_insert(f->st, &img, &pid, err), 0);
    /* a public image of the same name:tag shipped later */
    fill_image(&img, "tf", "2", "public tf");
    assert_int_equal(ava_store_image_upsert_public(f->st, &img, err), 0);

    assert_int_equal(ava_store_image_find(f->st, "tf", "2", ga, &got, err), 0);
    assert_int_equal(got.id, pid);
    assert_string_equal(got.description, "private tf");
    ava_image_free(&got);
    assert_int_equal(ava_store_image_find(f->st, "tf", "2", gb, &got, err), 0);
    assert_string_equal(got.description, "public tf");
    assert_int_equal(got.group_id, 0);
    ava_image_free(&got);
    assert_int_equal(ava_store_image_find(f->st, "tf", "3", ga, &got, err), AVA_ENOTFOUND);
}

static void test_images_list_shows_public_and_own_group(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    int64_t ga = mkgroup(f->st, "ga"), gb = mkgroup(f->st, "gb");
    struct ava_user ua, ub;
    mkuser(f->st, "ua", ga, &ua);
    mkuser(f->st, "ub", gb, &ub);
    struct ava_image img;
    fill_image(&img, "pub-b", "1", "");
    assert_int_equal(ava_store_image_upsert_public(f->st, &img, err), 0);
    fill_image(&img, "pub-a", "1", "");
    assert_int_equal(ava_store_image_upsert_public(f->st, &img, err), 0);
    fill_image(&img, "pub-a", "0", "");
    assert_int_equal(ava_store_image_upsert_public(f->st, &img, err), 0);
    fill_image(&img, "priv-a", "1", "");
    img.group_id = ga;
    img.owner_id = ua.id;
    assert_int_equal(ava_store_image_insert(f->st, &img, NULL, err), 0);
    fill_image(&img, "priv-b", "1", "");
    img.group_id = gb;
    img.owner_id = ub.id;
    assert_int_equal(ava_store_image_insert(f->st, &img, NULL, err), 0);

    struct ava_image *list = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_image_list(f->st, ga, &list, &n, err), 0);
    assert_int_equal(n, 4);
    int seen_priv = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(list[i].name, "priv-b") != 0, "group a sees group b's image");
        if (!strcmp(list[i].name, "priv-a")) {
            seen_priv++;
            assert_int_equal(list[i].group_id, ga);
        } else {
            assert_int_equal(list[i].group_id, 0);
        }
    }
    assert_int_equal(seen_priv, 1);
    /* public images among themselves by name then tag (where the private one goes is left to
     * the store) */
    int pos[3] = {-1, -1, -1};
    static const char *const order[] = {"pub-a:0", "pub-a:1", "pub-b:1"};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            char ref[140];
            snprintf(ref, sizeof ref, "%s:%s", list[i].name, list[i].tag);
            if (!strcmp(ref, order[k]))
                pos[k] = (int)i;
        }
    assert_true(pos[0] >= 0 && pos[0] < pos[1] && pos[1] < pos[2]);
    ava_image_list_free(list, n);

    /* group 0: public only */
    assert_int_equal(ava_store_image_list(f->st, 0, &list, &n, err), 0);
    assert_int_equal(n, 3);
    ava_image_list_free(list, n);
}

/* ---- trainings ---- */

static void test_trainings_insert_and_read_back(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    char err[AVA_ERRLEN] = "";
    struct ava_training t;
    assert_true(w.tid > 0);
    assert_int_equal(ava_store_training_get(f->st, w.tid, &t, err), 0);
    assert_string_equal(t.name, "t1");
    assert_int_equal(t.user_id, w.alice.id);
    assert_int_equal(t.group_id, w.gid);
    assert_string_equal(t.user, "alice");
    assert_string_equal(t.group, "g");
    assert_string_equal(t.description, "");
    assert_string_equal(t.image, "ava-pure:host");
    assert_string_equal(t.image_kind, "host");
    assert_int_equal(t.gpus, 1);
    assert_int_equal(t.cpus, 2);
    assert_int_equal(t.mem_bytes, INT64_C(1) << 30);
    assert_string_equal(t.entry, "/bin/true");
    assert_string_equal(t.args_json, "[\"--epochs\",\"3\"]");
    assert_string_equal(t.env_json, "{\"SEED\":\"7\"}");
    assert_null(t.train_set);
    assert_string_equal(t.val_set, "mnist/raw/20");
    assert_int_equal(t.max_runtime_ms, 3600000);
    assert_int_equal(t.created_at, 1000);
    ava_training_free(&t);
    assert_null(t.entry);
    ava_training_free(&t); /* twice is harmless */
    ava_training_free(NULL);

    assert_int_equal(ava_store_training_find(f->st, w.alice.id, "t1", &t, err), 0);
    assert_int_equal(t.id, w.tid);
    ava_training_free(&t);
    assert_int_equal(ava_store_training_find(f->st, w.alice.id, "t2", &t, err), AVA_ENOTFOUND);
    assert_non_null(strstr(err, "t2"));
    assert_int_equal(ava_store_training_get(f->st, w.tid + 99, &t, err), AVA_ENOTFOUND);
}

static void test_trainings_names_are_per_user(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    char err[AVA_ERRLEN] = "";
    struct ava_training t;
    assert_int_equal(insert_training(f->st, &w.alice, "t1", &t, err), AVA_EEXISTS);
    assert_non_null(strstr(err, "t1"));
    struct ava_user bob;
    mkuser(f->st, "bob", w.gid, &bob);
    assert_int_equal(insert_training(f->st, &bob, "t1", &t, err), 0);
    assert_true(t.id != w.tid);
    assert_int_equal(ava_store_training_count(f->st), 2);
    struct ava_training got;
    assert_int_equal(ava_store_training_find(f->st, bob.id, "t1", &got, err), 0);
    assert_int_equal(got.id, t.id);
    assert_string_equal(got.user, "bob");
    ava_training_free(&got);
}

static void test_trainings_list_per_group(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN] = "";
    int64_t g1 = mkgroup(f->st, "g1"), g2 = mkgroup(f->st, "g2");
    struct ava_user a, b;
    mkuser(f->st, "a", g1, &a);
    mkuser(f->st, "b", g2, &b);
    int64_t t1 = mktraining(f->st, &a, "one");
    int64_t t2 = mktraining(f->st, &b, "two");
    int64_t t3 = mktraining(f->st, &a, "three");
    struct ava_training *list = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_training_list(f->st, g1, &list, &n, err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, t1);
    assert_int_equal(list[1].id, t3);
    ava_training_list_free(list, n);
    assert_int_equal(ava_store_training_list(f->st, 0, &list, &n, err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].id, t1);
    assert_int_equal(list[1].id, t2);
    assert_int_equal(list[2].id, t3);
    assert_string_equal(list[1].group, "g2");
    ava_training_list_free(list, n);
    assert_int_equal(ava_store_training_list(f->st, g2 + 10, &list, &n, err), 0);
    assert_int_equal(n, 0);
    ava_training_list_free(list, n);
}

static void test_trainings_delete_cascades(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    char err[AVA_ERRLEN] = "";
    struct ava_run r;
    mkrun(f->st, w.tid, 100, &r);
    assert_int_equal(move(f->st, &r, AVA_RUN_FAILED, 200, "x", err), 0);
    mkrun(f->st, w.tid, 300, &r);
    int64_t other = mktraining(f->st, &w.alice, "t2");
    struct ava_run keep;
    mkrun(f->st, other, 400, &keep);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM runs"), 3);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM run_events"), 4);

    assert_int_equal(ava_store_training_delete(f->st, w.tid, err), 0);
    assert_int_equal(ava_store_training_count(f->st), 1);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM run_events"), 1);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM run_events WHERE run_id = %lld",
             (long long)keep.id);
    assert_int_equal(query_int(f->db, sql), 1);
    struct ava_training t;
    assert_int_equal(ava_store_training_get(f->st, w.tid, &t, err), AVA_ENOTFOUND);
    assert_int_equal(ava_store_run_latest(f->st, w.tid, &r, err), AVA_ENOTFOUND);
    assert_int_equal(ava_store_training_delete(f->st, w.tid, err), AVA_ENOTFOUND);
}

/* ---- runs ---- */

static void test_runs_are_numbered(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    int64_t t2 = mktraining(f->st, &w.alice, "t2");
    struct ava_run r;
    for (int i = 1; i <= 3; i++) {
        mkrun(f->st, w.tid, 100 * i, &r);
        assert_int_equal(r.number, i);
        assert_int_equal(r.training_id, w.tid);
        assert_int_equal(r.state, AVA_RUN_CREATING);
        assert_int_equal(r.created_at, 100 * i);
        assert_string_equal(r.reason, "start requested by test");
    }
    /* numbering is per training */
    mkrun(f->st, t2, 500, &r);
    assert_int_equal(r.number, 1);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_store_run_latest(f->st, w.tid, &r, err), 0);
    assert_int_equal(r.number, 3);
    struct ava_run *list = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_run_list(f->st, w.tid, &list, &n, err), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].number, (int)i + 1);
    free(list);
    assert_int_equal(ava_store_run_get(f->st, w.tid, 4, &r, err), AVA_ENOTFOUND);
    assert_non_null(strstr(err, "4"));
    int64_t t3 = mktraining(f->st, &w.alice, "never");
    assert_int_equal(ava_store_run_latest(f->st, t3, &r, err), AVA_ENOTFOUND);
    assert_int_equal(ava_store_run_list(f->st, t3, &list, &n, err), 0);
    assert_int_equal(n, 0);
    free(list);
}

static void test_runs_full_lifecycle_with_events(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    char err[AVA_ERRLEN] = "";
    struct ava_run r;
    mkrun(f->st, w.tid, 1000, &r);
    assert_false(r.has_exit);
    assert_int_equal(r.log_start, -1);
    assert_int_equal(r.log_end, -1);
    assert_string_equal(r.executor, "local");

    r.queued_at = 1100;
    assert_int_equal(move(f->st, &r, AVA_RUN_QUEUED, 1100, "waiting for resources", err), 0);
    assert_int_equal(r.state, AVA_RUN_QUEUED);
    assert_int_equal(r.queued_at, 1100);
    assert_int_equal(r.started_at, 0);

    r.started_at = 1200;
    snprintf(r.gpus, sizeof r.gpus, "0,1");
    r.cpus = 4;
    r.mem_bytes = 1 << 20;
    assert_int_equal(move(f->st, &r, AVA_RUN_RUNNING, 1200, "resources allocated: GPUs 0,1", err),
                     0);
    assert_int_equal(r.state, AVA_RUN_RUNNING);
    assert_int_equal(r.started_at, 1200);
    assert_string_equal(r.gpus, "0,1");
    assert_int_equal(r.cpus, 4);
    assert_int_equal(r.mem_bytes, 1 << 20);
    assert_false(r.has_exit); /* exit_code stays NULL until there is one */

    r.has_exit = true;
    r.exit_code = 0;
    r.signal = 0;
    r.ended_at = 1300;
    r.log_start = 5;
    r.log_end = 900;
    assert_int_equal(move(f->st, &r, AVA_RUN_SUCCEEDED, 1300, "exit code 0", err), 0);
    assert_int_equal(r.state, AVA_RUN_SUCCEEDED);
    assert_true(r.has_exit);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.ended_at, 1300);
    assert_int_equal(r.queued_at, 1100);
    assert_int_equal(r.log_start, 5);
    assert_int_equal(r.log_end, 900);
    assert_string_equal(r.reason, "exit code 0");

    struct ava_run_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_run_events(f->st, r.id, &ev, &n, err), 0);
    assert_int_equal(n, 4);
    static const struct {
        int64_t at;
        const char *state, *reason;
    } want[] = {{1000, "creating", "start requested by test"},
                {1100, "queued", "waiting for resources"},
                {1200, "running", "resources allocated: GPUs 0,1"},
                {1300, "succeeded", "exit code 0"}};
    for (size_t i = 0; i < n; i++) {
        CHECK(ev[i].at == want[i].at, "event %zu at %lld", i, (long long)ev[i].at);
        CHECK(strcmp(ev[i].state, want[i].state) == 0, "event %zu is %s", i, ev[i].state);
        CHECK(strcmp(ev[i].reason, want[i].reason) == 0, "event %zu reason %s", i, ev[i].reason);
    }
    free(ev);
}

static void test_runs_exit_code_null_until_set(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    char err[AVA_ERRLEN] = "";
    struct ava_run r;
    mkrun(f->st, w.tid, 1000, &r);
    assert_int_equal(move(f->st, &r, AVA_RUN_QUEUED, 1001, "q", err), 0);
    assert_int_equal(move(f->st, &r, AVA_RUN_RUNNING, 1002, "r", err), 0);
    assert_false(r.has_exit);
    assert_int_equal(query_int(f->db, "SELECT exit_code IS NULL FROM runs"), 1);
    r.has_exit = true;
    r.exit_code = 3;
    r.signal = 0;
    assert_int_equal(move(f->st, &r, AVA_RUN_FAILED, 1003, "exit code 3", err), 0);
    assert_true(r.has_exit);
    assert_int_equal(r.exit_code, 3);
    assert_int_equal(query_int(f->db, "SELECT exit_code FROM runs"), 3);
}

static void test_runs_forbidden_moves_change_nothing(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    char err[AVA_ERRLEN] = "";
    struct ava_run r, before;
    mkrun(f->st, w.tid, 1000, &r);

    /* creating -> running skips the queue */
    before = r;
    err[0] = '\0';
    assert_int_equal(move(f->st, &r, AVA_RUN_RUNNING, 1100, "skip", err), AVA_ECONFLICT);
    assert_non_null(strstr(err, "creating"));
    assert_non_null(strstr(err, "running"));
    assert_int_equal(r.state, AVA_RUN_CREATING);
    assert_string_equal(r.reason, before.reason);
    assert_int_equal(event_count(f->st, r.id), 1);

    assert_int_equal(move(f->st, &r, AVA_RUN_QUEUED, 1100, "q", err), 0);
    assert_int_equal(move(f->st, &r, AVA_RUN_RUNNING, 1200, "r", err), 0);
    /* running -> queued goes backwards */
    assert_int_equal(move(f->st, &r, AVA_RUN_QUEUED, 1250, "back", err), AVA_ECONFLICT);
    assert_int_equal(r.state, AVA_RUN_RUNNING);
    assert_string_equal(r.reason, "r");
    assert_int_equal(event_count(f->st, r.id), 3);
    /* running -> creating */
    assert_int_equal(move(f->st, &r, AVA_RUN_CREATING, 1250, "back", err), AVA_ECONFLICT);

    r.has_exit = true;
    r.ended_at = 1300;
    assert_int_equal(move(f->st, &r, AVA_RUN_SUCCEEDED, 1300, "exit code 0", err), 0);
    /* terminal states are final */
    static const enum ava_run_state later[] = {AVA_RUN_RUNNING, AVA_RUN_QUEUED, AVA_RUN_STOPPING,
                                               AVA_RUN_FAILED, AVA_RUN_SUCCEEDED};
    for (size_t i = 0; i < N_ELEMS(later); i++) {
        struct ava_run tried = r;
        tried.ended_at = 9999;
        tried.state = later[i];
        snprintf(tried.reason, sizeof tried.reason, "nope");
        CHECK(ava_store_run_transition(f->st, &tried, 9999, err) == AVA_ECONFLICT,
              "succeeded -> %s allowed", ava_run_state_str(later[i]));
    }
    struct ava_run now;
    assert_int_equal(ava_store_run_get(f->st, w.tid, 1, &now, err), 0);
    assert_int_equal(now.state, AVA_RUN_SUCCEEDED);
    assert_int_equal(now.ended_at, 1300);
    assert_string_equal(now.reason, "exit code 0");
    assert_int_equal(event_count(f->st, r.id), 4);

    /* a run that does not exist */
    struct ava_run ghost = r;
    ghost.id = r.id + 1000;
    ghost.state = AVA_RUN_FAILED;
    assert_int_equal(ava_store_run_transition(f->st, &ghost, 1, err), AVA_ENOTFOUND);
}

static void test_runs_list_active_in_queue_order(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    char err[AVA_ERRLEN] = "";
    int64_t ta = w.tid, tb = mktraining(f->st, &w.alice, "tb"),
            tc = mktraining(f->st, &w.alice, "tc"), td = mktraining(f->st, &w.alice, "td");
    struct ava_run a, b, c, d;
    mkrun(f->st, ta, 50, &a); /* created first, queued last */
    mkrun(f->st, tb, 60, &b);
    mkrun(f->st, tc, 200, &c); /* still creating: ordered by its creation time */
    mkrun(f->st, td, 70, &d);
    a.queued_at = 300;
    assert_int_equal(move(f->st, &a, AVA_RUN_QUEUED, 300, "q", err), 0);
    b.queued_at = 100;
    assert_int_equal(move(f->st, &b, AVA_RUN_QUEUED, 100, "q", err), 0);
    b.started_at = 150;
    assert_int_equal(move(f->st, &b, AVA_RUN_RUNNING, 150, "r", err), 0);
    /* d ends: not active */
    d.ended_at = 80;
    assert_int_equal(move(f->st, &d, AVA_RUN_STOPPED, 80, "s", err), 0);

    struct ava_run *list = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_run_list_active(f->st, &list, &n, err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].id, b.id);
    assert_int_equal(list[1].id, c.id);
    assert_int_equal(list[2].id, a.id);
    assert_int_equal(list[0].state, AVA_RUN_RUNNING);
    assert_int_equal(list[1].state, AVA_RUN_CREATING);
    assert_int_equal(list[2].state, AVA_RUN_QUEUED);
    free(list);
}

static void test_runs_set_executor_adds_no_event(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    char err[AVA_ERRLEN] = "";
    struct ava_run r;
    mkrun(f->st, w.tid, 1000, &r);
    assert_int_equal(ava_store_run_set_executor(f->st, r.id, "slurm", "job-1234", err), 0);
    assert_int_equal(ava_store_run_get(f->st, w.tid, 1, &r, err), 0);
    assert_string_equal(r.executor, "slurm");
    assert_string_equal(r.executor_id, "job-1234");
    assert_int_equal(r.state, AVA_RUN_CREATING);
    assert_int_equal(event_count(f->st, r.id), 1);
}

static void test_runs_add_event_without_state_change(void **state) {
    struct fx *f = *state;
    struct world w;
    mkworld(f->st, &w);
    char err[AVA_ERRLEN] = "";
    struct ava_run r;
    mkrun(f->st, w.tid, 1000, &r);
    assert_int_equal(ava_store_run_add_event(f->st, r.id, 1500, "creating", "mounts ready", err),
                     0);
    assert_int_equal(ava_store_run_add_event(f->st, r.id, 1600, "creating", NULL, err), 0);
    struct ava_run_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(ava_store_run_events(f->st, r.id, &ev, &n, err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(ev[1].reason, "mounts ready");
    assert_int_equal(ev[1].at, 1500);
    assert_string_equal(ev[2].reason, "");
    free(ev);
    assert_int_equal(ava_store_run_get(f->st, w.tid, 1, &r, err), 0);
    assert_int_equal(r.state, AVA_RUN_CREATING);
}

/* ---- metrics: points, summaries, buckets ---- */

/* A run to store points in (world + run); returns its id. */
static int64_t metrics_run(struct fx *f) {
    struct world w;
    struct ava_run r;
    mkworld(f->st, &w);
    mkrun(f->st, w.tid, 1000, &r);
    return r.id;
}

/* Stores steps [from, to) of series name/phase "train" with value v(step) and time
 * 1764130000000 + step, in batches of 5000 (as the ingest does), offset at the step. */
static void put_steps(struct fx *f, int64_t run, const char *name, int64_t from, int64_t to,
                      double (*v)(int64_t)) {
    struct ava_point *pts = calloc(5000, sizeof *pts);
    char err[AVA_ERRLEN] = "";
    for (int64_t i = from; i < to;) {
        size_t n = 0;
        for (; i < to && n < 5000; i++, n++) {
            snprintf(pts[n].name, sizeof pts[n].name, "%s", name);
            snprintf(pts[n].phase, sizeof pts[n].phase, "train");
            pts[n].step = i;
            pts[n].value = v(i);
            pts[n].time_ms = 1764130000000 + i;
            pts[n].epoch = -1;
        }
        CHECK(ava_store_metrics_ingest(f->st, run, pts, n, i, err) == 0, "ingest: %s", err);
    }
    free(pts);
}

/* One point of series name/phase "train". */
static struct ava_point point(const char *name, int64_t step, double value, int64_t epoch) {
    struct ava_point p = {.step = step, .value = value, .time_ms = 1764130000000, .epoch = epoch};
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.phase, sizeof p.phase, "train");
    return p;
}

static struct ava_series series_of(struct fx *f, int64_t run, const char *name) {
    struct ava_series s;
    char err[AVA_ERRLEN] = "";
    CHECK(ava_store_series_find(f->st, run, name, "train", &s, err) == 0, "%s", err);
    return s;
}

static double v_line(int64_t i) {
    return 1.0 / (1.0 + 1e-3 * (double)i);
}

static double v_spiky(int64_t i) {
    return i == 41234 ? 1e6 : i == 7777 ? -5e5 : (double)((i * 7919) % 1000) / 1000.0 - 0.5;
}

/* Steps given again (replaced values) and new steps out of order are stored right, and the
 * series' buckets are rebuilt from the points before they are used. */
static void test_metrics_replaced_and_out_of_order_steps(void **state) {
    struct fx *f = *state;
    int64_t run = metrics_run(f);
    char err[AVA_ERRLEN] = "";
    put_steps(f, run, "acc", 0, 70000, v_line);
    assert_int_equal(query_int(f->db, "SELECT buckets_ok FROM metric_series"), 1);
    assert_int_equal(query_int(f->db, "SELECT metrics_offset FROM runs"), 70000);
    /* step 100 again (replaced), 70005 (new, after a gap), 70001 (new but before 70005: out of
     * order), 3 again with an epoch, 70007 twice in the batch (the later value wins), 70006 */
    struct ava_point more[] = {point("acc", 100, -7, -1),  point("acc", 70005, 2, -1),
                               point("acc", 70001, 3, -1), point("acc", 3, -8, 4),
                               point("acc", 70007, 1, -1), point("acc", 70007, 6, -1),
                               point("acc", 70006, 2, -1)};
    assert_int_equal(ava_store_metrics_ingest(f->st, run, more, N_ELEMS(more), -1, err), 0);
    assert_int_equal(query_int(f->db, "SELECT metrics_offset FROM runs"), 70000); /* -1: kept */
    struct ava_series s = series_of(f, run, "acc");
    assert_int_equal(s.count, 70004);
    assert_int_equal(s.last_step, 70007);
    assert_true(s.last_value == 6.0);
    assert_true(s.min == -8.0);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_points"), 70004);
    assert_int_equal(query_int(f->db, "SELECT value FROM metric_points WHERE step = 70007"), 6);
    assert_int_equal(query_int(f->db, "SELECT value FROM metric_points WHERE step = 100"), -7);
    assert_int_equal(query_int(f->db, "SELECT epoch FROM metric_points WHERE step = 3"), 4);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_points WHERE epoch NOTNULL"), 1);
    assert_int_equal(query_int(f->db, "SELECT buckets_ok FROM metric_series"), 0);
    int64_t *steps, *times;
    double *values;
    size_t n;
    int level = -2;
    assert_int_equal(
        ava_store_series_sample(f->st, s.id, 1000, &steps, &values, &times, &n, &level, err), 0);
    assert_int_equal(level, 0);
    assert_int_equal(query_int(f->db, "SELECT buckets_ok FROM metric_series"), 1);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_buckets WHERE level = 0"),
                     (70004 + 63) / 64);
    assert_int_equal(steps[0], 0);
    assert_int_equal(steps[n - 1], 70007);
    assert_true(values[n - 1] == 6.0);
    bool saw_min = false, saw_replaced = false;
    for (size_t i = 0; i < n; i++) {
        saw_min |= steps[i] == 3 && values[i] == -8.0;
        saw_replaced |= steps[i] == 100 && values[i] == -7.0;
        CHECK(i == 0 || steps[i] > steps[i - 1], "not in step order at %zu", i);
    }
    assert_true(saw_min && saw_replaced); /* the minima of their buckets */
    free(steps), free(values), free(times);
}

/* The buckets kept at ingest hold each bucket's first, last, min and max points, exactly as
 * computed from the points; a long series is sampled from them, keeping its extremes. */
static void test_metrics_buckets_match_the_points(void **state) {
    struct fx *f = *state;
    int64_t run = metrics_run(f);
    /* in uneven parts, so that buckets span batches */
    put_steps(f, run, "wave", 0, 1000, v_spiky);
    put_steps(f, run, "wave", 1000, 5099, v_spiky);
    put_steps(f, run, "wave", 5099, 70001, v_spiky);
    struct ava_series s = series_of(f, run, "wave");
    assert_int_equal(s.count, 70001);
    static const int64_t width[AVA_METRIC_BUCKET_LEVELS] = {64, 512, 4096};
    for (int l = 0; l < AVA_METRIC_BUCKET_LEVELS; l++) {
        char sql[1200];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM metric_buckets WHERE level = %d", l);
        assert_int_equal(query_int(f->db, sql), (70001 + width[l] - 1) / width[l]);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM metric_buckets b WHERE level = %d AND ("
                 " first_step != bucket * %" PRId64 " OR last_step != min(70000, (bucket + 1) * "
                 "%" PRId64 " - 1) OR min_value != (SELECT min(value) FROM metric_points p WHERE"
                 " p.series_id = b.series_id AND p.step BETWEEN b.first_step AND b.last_step)"
                 " OR max_value != (SELECT max(value) FROM metric_points p WHERE p.series_id ="
                 " b.series_id AND p.step BETWEEN b.first_step AND b.last_step) OR min_value !="
                 " (SELECT value FROM metric_points p WHERE p.series_id = b.series_id AND step ="
                 " min_step) OR max_time != (SELECT time FROM metric_points p WHERE p.series_id"
                 " = b.series_id AND step = max_step) OR last_value != (SELECT value FROM"
                 " metric_points p WHERE p.series_id = b.series_id AND step = last_step))",
                 l, width[l], width[l]);
        CHECK(query_int(f->db, sql) == 0, "level %d: buckets differ from their points", l);
    }
    /* 1000: level 0 (1094 buckets); 100: level 1 (137); 10: level 2 (18); 2000 or 0: every
     * point */
    static const struct {
        size_t min_buckets;
        int level;
    } cases[] = {{1000, 0}, {100, 1}, {10, 2}, {2000, -1}, {0, -1}};
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        int64_t *steps, *times;
        double *values;
        size_t n;
        int level;
        char err[AVA_ERRLEN] = "";
        assert_int_equal(ava_store_series_sample(f->st, s.id, cases[c].min_buckets, &steps, &values,
                                                 &times, &n, &level, err),
                         0);
        assert_int_equal(level, cases[c].level);
        size_t nb = level < 0 ? 0 : 70001 / (size_t)width[level] + 1;
        CHECK(level < 0 ? n == 70001 : n > 2 * nb && n <= 4 * nb, "%zu points", n);
        assert_int_equal(steps[0], 0);
        assert_int_equal(steps[n - 1], 70000);
        bool spike = false, dip = false;
        for (size_t i = 0; i < n; i++) {
            spike |= steps[i] == 41234 && values[i] == 1e6;
            dip |= steps[i] == 7777 && values[i] == -5e5;
            CHECK(times[i] == 1764130000000 + steps[i], "time of step %" PRId64, steps[i]);
            CHECK(values[i] == v_spiky(steps[i]), "value of step %" PRId64, steps[i]);
            CHECK(i == 0 || steps[i] > steps[i - 1], "not in step order at %zu", i);
        }
        assert_true(spike && dip);
        free(steps), free(values), free(times);
    }
}

/* More series in one batch than the store keeps at hand, interleaved, with and without
 * epochs: each gets its points, summary and buckets. */
static void test_metrics_many_series_in_one_batch(void **state) {
    struct fx *f = *state;
    int64_t run = metrics_run(f);
    struct ava_point *pts = calloc(4000, sizeof *pts);
    char name[16], err[AVA_ERRLEN] = "";
    for (int i = 0; i < 4000; i++) {
        snprintf(name, sizeof name, "s%d", i % 40);
        pts[i] = point(name, i / 40, i, i % 3 ? 2 : -1);
    }
    assert_int_equal(ava_store_metrics_ingest(f->st, run, pts, 4000, 123, err), 0);
    free(pts);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_series"), 40);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_series WHERE count = 100 AND"
                                      " last_step = 99 AND buckets_ok = 1"),
                     40);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_points WHERE epoch = 2"), 2666);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_points"), 4000);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_buckets WHERE level = 0"), 80);
    assert_int_equal(query_int(f->db, "SELECT sum(max_value - min_value) FROM metric_buckets"
                                      " WHERE level = 1"),
                     40 * 3960);
    assert_int_equal(query_int(f->db, "SELECT metrics_offset FROM runs"), 123);
}

/* A database from before the buckets (schema 4) migrates: its series get buckets when first
 * sampled, and keep them up to date from then on. */
static void test_metrics_migration_fills_buckets(void **state) {
    struct fx *f = *state;
    int64_t run = metrics_run(f);
    put_steps(f, run, "old", 0, 100000, v_spiky);
    ava_store_close(f->st);
    f->st = NULL;
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h,
                                  "DROP TABLE metric_buckets;"
                                  " ALTER TABLE metric_series DROP COLUMN buckets_ok;"
                                  " PRAGMA user_version = 4",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_store_open(f->db, &f->st, err), 0);
    assert_int_equal(ava_store_schema_version(f->st), 5);
    assert_int_equal(query_int(f->db, "SELECT buckets_ok FROM metric_series"), 0);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_buckets"), 0);
    put_steps(f, run, "old", 100000, 100100, v_spiky); /* not kept while out of date */
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_buckets"), 0);
    struct ava_series s = series_of(f, run, "old");
    int64_t *steps, *times;
    double *values;
    size_t n;
    int level;
    assert_int_equal(
        ava_store_series_sample(f->st, s.id, 1000, &steps, &values, &times, &n, &level, err), 0);
    assert_int_equal(level, 0);
    assert_int_equal(steps[n - 1], 100099);
    free(steps), free(values), free(times);
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_buckets WHERE level = 0"),
                     (100100 + 63) / 64);
    put_steps(f, run, "old", 100100, 100200, v_spiky); /* now kept at ingest */
    assert_int_equal(query_int(f->db, "SELECT count(*) FROM metric_buckets WHERE level = 0"),
                     (100200 + 63) / 64);
    assert_int_equal(query_int(f->db, "SELECT max(last_step) FROM metric_buckets"), 100199);
    assert_int_equal(query_int(f->db, "SELECT buckets_ok FROM metric_series"), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

/* After store calls (single-row reads included) no statement may hold a read transaction:
 * a checkpoint from another connection must be able to empty the WAL. */
static void test_no_read_transaction_left_open(void **state) {
    struct fx *f = *state;
    char err[AVA_ERRLEN];
    int64_t gid, off;
    struct ava_user u;
    struct ava_training t = {0};
    assert_int_equal(ava_store_group_create(f->st, "wal", &gid, err), 0);
    assert_int_equal(ava_store_group_find(f->st, "wal", &gid, err), 0);
    assert_int_equal(ava_store_user_create(f->st, "walter", gid, false, "h-wal", &u, err), 0);
    assert_int_equal(ava_store_user_by_token(f->st, "h-wal", &u, err), 0);
    assert_true(ava_store_user_count(f->st) > 0);
    assert_true(ava_store_training_count(f->st) >= 0);
    (void)ava_store_training_find(f->st, u.id, "none", &t, err);
    (void)ava_store_metrics_offset(f->st, 1, &off, err);
    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(other, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 0); /* 0 = not blocked by a reader */
    sqlite3_finalize(s);
    sqlite3_close(other);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_open_creates_the_latest_schema_with_wal),
        T(test_metrics_replaced_and_out_of_order_steps),
        T(test_metrics_buckets_match_the_points),
        T(test_metrics_many_series_in_one_batch),
        T(test_metrics_migration_fills_buckets),
        T(test_reopen_keeps_data_and_version),
        T(test_newer_schema_is_refused),
        T(test_open_in_missing_directory_fails),
        T(test_transactions_commit_and_rollback),
        T(test_groups),
        T(test_users_create_find_and_token),
        T(test_users_list_and_count),
        T(test_users_list_grows_past_initial_capacity),
        T(test_images_upsert_public_keeps_one_row),
        T(test_images_private_rules),
        T(test_images_find_prefers_private),
        T(test_images_list_shows_public_and_own_group),
        T(test_trainings_insert_and_read_back),
        T(test_trainings_names_are_per_user),
        T(test_trainings_list_per_group),
        T(test_trainings_delete_cascades),
        T(test_runs_are_numbered),
        T(test_runs_full_lifecycle_with_events),
        T(test_runs_exit_code_null_until_set),
        T(test_runs_forbidden_moves_change_nothing),
        T(test_runs_list_active_in_queue_order),
        T(test_runs_set_executor_adds_no_event),
        T(test_runs_add_event_without_state_change),
        T(test_no_read_transaction_left_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
