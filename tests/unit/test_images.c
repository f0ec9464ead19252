/* test_images.c: src/images: manifest validation (every refusal names its field), loading the
 * public manifests of a directory into a real store, and NAME:TAG splitting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "../../src/common/err.h"
#include "../../src/common/path.h"
#include "../../src/images/images.h"
#include "../../src/store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses JSON text that the test itself wrote. */
static json_t *j(const char *text) {
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    CHECK(v != NULL, "bad test JSON '%s': %s", text, je.text);
    return v;
}

/* Runs ava_image_from_manifest on JSON text. */
static int from_text(const char *text, struct ava_image *img, bool *pub, char *err) {
    json_t *m = j(text);
    int r = ava_image_from_manifest(m, img, pub, err);
    json_decref(m);
    return r;
}

/* ---- manifests ---- */

static void test_manifest_full_is_accepted(void **state) {
    (void)state;
    struct ava_image img;
    bool pub = false;
    char err[AVA_ERRLEN] = "";
    int r = from_text("{\"name\": \"ava-examples\", \"tag\": \"c\", \"kind\": \"host\","
                      " \"description\": \"Example trainings in C\","
                      " \"entry\": \"/usr/bin/env\", \"env\": {\"B\": \"two\", \"A\": \"1\"},"
                      " \"metrics_parser\": \"keras\", \"requires\": [\"/bin/sh\", \"/\"],"
                      " \"public\": true}",
                      &img, &pub, err);
    CHECK(r == 0, "refused: %s", err);
    assert_string_equal(img.name, "ava-examples");
    assert_string_equal(img.tag, "c");
    assert_string_equal(img.kind, "host");
    assert_string_equal(img.description, "Example trainings in C");
    assert_string_equal(img.entry, "/usr/bin/env");
    assert_string_equal(img.env_json, "{\"A\":\"1\",\"B\":\"two\"}");
    assert_string_equal(img.metrics_parser, "keras");
    assert_true(img.available);
    assert_null(img.unavailable_reason);
    assert_true(pub);
    ava_image_free(&img);
    assert_null(img.description);
}

static void test_manifest_minimal_gets_defaults(void **state) {
    (void)state;
    struct ava_image img;
    bool pub = true;
    char err[AVA_ERRLEN] = "";
    int r = from_text("{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\"}", &img, &pub, err);
    CHECK(r == 0, "refused: %s", err);
    assert_string_equal(img.description, "");
    assert_null(img.entry);
    assert_string_equal(img.env_json, "{}");
    assert_null(img.metrics_parser);
    assert_true(img.available);
    assert_false(pub);
    ava_image_free(&img);
    /* public_out may be NULL */
    r = from_text("{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"public\": false}", &img,
                  NULL, err);
    assert_int_equal(r, 0);
    ava_image_free(&img);
}

/* null members mean "not given" */
static void test_manifest_null_means_not_given(void **state) {
    (void)state;
    struct ava_image img;
    bool pub = true;
    char err[AVA_ERRLEN] = "";
    int r = from_text("{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"description\": null,"
                      " \"entry\": null, \"env\": null, \"metrics_parser\": null,"
                      " \"requires\": null, \"public\": null}",
                      &img, &pub, err);
    CHECK(r == 0, "refused: %s", err);
    assert_string_equal(img.description, "");
    assert_null(img.entry);
    assert_string_equal(img.env_json, "{}");
    assert_null(img.metrics_parser);
    assert_true(img.available);
    assert_false(pub);
    ava_image_free(&img);
}

static void test_manifest_refusals_name_the_problem(void **state) {
    (void)state;
    static const struct {
        const char *json;
        const char *msg;
    } cases[] = {
        {"[]", "expected a JSON object"},
        {"\"ava-pure:host\"", "expected a JSON object"},
        {"42", "expected a JSON object"},
        {"null", "expected a JSON object"},
        {"{\"tag\": \"1\", \"kind\": \"host\"}", "field 'name' is required"},
        {"{\"name\": \"n\", \"kind\": \"host\"}", "tag"},
        {"{\"name\": \"n\", \"tag\": \"1\"}", "kind"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"colour\": \"red\"}",
         "unknown field 'colour'"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"Name\": \"x\"}", "Name"},
        {"{\"name\": 3, \"tag\": \"1\", \"kind\": \"host\"}", "field 'name' must be a string"},
        {"{\"name\": null, \"tag\": \"1\", \"kind\": \"host\"}", "'name'"},
        {"{\"name\": \"../x\", \"tag\": \"1\", \"kind\": \"host\"}", "name and tag"},
        {"{\"name\": \".hidden\", \"tag\": \"1\", \"kind\": \"host\"}", "name and tag"},
        {"{\"name\": \"\", \"tag\": \"1\", \"kind\": \"host\"}", "name and tag"},
        {"{\"name\": \"n\", \"tag\": \"a b\", \"kind\": \"host\"}", "name and tag"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"docker\"}",
         "kind must be host, rootfs or oci"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"HOST\"}", "kind must be"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"entry\": \"bin/python\"}",
         "entry must be an absolute path"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"entry\": \"\"}", "entry"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"entry\": 7}", "entry"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"env\": [\"A=1\"]}",
         "field 'env' must be an object"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"env\": \"A=1\"}",
         "field 'env' must be an object"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"env\": {\"A\": 1}}", "env 'A'"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"env\": {\"A\": null}}",
         "env 'A'"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"env\": {\"A=B\": \"1\"}}",
         "env 'A=B'"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"env\": {\"\": \"1\"}}", "env"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"requires\": \"/bin/sh\"}",
         "field 'requires' must be an array"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"requires\": [\"bin/sh\"]}",
         "absolute"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"requires\": [3]}", "absolute"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\","
         " \"requires\": [\"/nonexistent/ava\", \"rel\"]}",
         "absolute"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"public\": \"yes\"}", "public"},
        {"{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"host\", \"metrics_parser\": 1}",
         "metrics_parser"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ava_image img;
        char err[AVA_ERRLEN] = "";
        int r = from_text(cases[i].json, &img, NULL, err);
        CHECK(r == AVA_EINVALID, "case %zu accepted: %s", i, cases[i].json);
        CHECK(strstr(err, cases[i].msg) != NULL, "case %zu: message '%s' lacks '%s'", i, err,
              cases[i].msg);
        ava_image_free(&img); /* zeroed on failure: freeing is harmless */
    }
}

static void test_manifest_description_limit(void **state) {
    (void)state;
    char desc[AVA_IMAGE_DESC_MAX + 2];
    memset(desc, 'd', sizeof desc - 1);
    desc[sizeof desc - 1] = '\0'; /* 1001 bytes */
    json_t *m = json_pack("{s:s, s:s, s:s, s:s}", "name", "n", "tag", "1", "kind", "host",
                          "description", desc);
    struct ava_image img;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_image_from_manifest(m, &img, NULL, err), AVA_EINVALID);
    assert_non_null(strstr(err, "description"));
    assert_non_null(strstr(err, "1000"));
    json_decref(m);
    desc[AVA_IMAGE_DESC_MAX] = '\0'; /* exactly 1000 */
    m = json_pack("{s:s, s:s, s:s, s:s}", "name", "n", "tag", "1", "kind", "host", "description",
                  desc);
    assert_int_equal(ava_image_from_manifest(m, &img, NULL, err), 0);
    assert_int_equal(strlen(img.description), AVA_IMAGE_DESC_MAX);
    ava_image_free(&img);
    json_decref(m);
}

static void test_manifest_missing_requirement_makes_unavailable(void **state) {
    (void)state;
    struct ava_image img;
    char err[AVA_ERRLEN] = "";
    int r = from_text("{\"name\": \"tf\", \"tag\": \"2\", \"kind\": \"host\","
                      " \"requires\": [\"/bin/sh\", \"/nonexistent/ava-test/python3\","
                      " \"/nonexistent/ava-test/other\"]}",
                      &img, NULL, err);
    CHECK(r == 0, "refused: %s", err);
    assert_false(img.available);
    assert_non_null(img.unavailable_reason);
    /* the first missing path is named */
    CHECK(strstr(img.unavailable_reason, "/nonexistent/ava-test/python3") != NULL, "reason '%s'",
          img.unavailable_reason);
    ava_image_free(&img);
    /* every requirement present */
    r = from_text("{\"name\": \"tf\", \"tag\": \"2\", \"kind\": \"host\", \"requires\": []}", &img,
                  NULL, err);
    assert_int_equal(r, 0);
    assert_true(img.available);
    ava_image_free(&img);
}

static void test_manifest_sandbox_kinds_are_unavailable(void **state) {
    (void)state;
    static const char *const kinds[] = {"rootfs", "oci"};
    for (size_t i = 0; i < N_ELEMS(kinds); i++) {
        char text[160], err[AVA_ERRLEN] = "";
        snprintf(text, sizeof text, "{\"name\": \"n\", \"tag\": \"1\", \"kind\": \"%s\"}",
                 kinds[i]);
        struct ava_image img;
        int r = from_text(text, &img, NULL, err);
        CHECK(r == 0, "%s refused: %s", kinds[i], err);
        assert_string_equal(img.kind, kinds[i]);
        CHECK(!img.available, "kind %s available", kinds[i]);
        CHECK(img.unavailable_reason && strstr(img.unavailable_reason, kinds[i]),
              "kind %s: reason '%s'", kinds[i],
              img.unavailable_reason ? img.unavailable_reason : "(null)");
        ava_image_free(&img);
    }
}

/* ---- loading a directory of public manifests ---- */

struct dfx {
    char dir[64];
    char images[128];
    struct ava_store *st;
};

static int dfx_setup(void **state) {
    struct dfx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ava-test-images-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->images, sizeof f->images, "%s/images", f->dir);
    char db[160], err[AVA_ERRLEN] = "";
    snprintf(db, sizeof db, "%s/ava.db", f->dir);
    if (ava_mkdir_p(f->images, 0755, err) < 0 || ava_store_open(db, &f->st, err) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int dfx_teardown(void **state) {
    struct dfx *f = *state;
    ava_store_close(f->st);
    ava_rm_rf(f->dir, NULL);
    free(f);
    return 0;
}

static void put(struct dfx *f, const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->images, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static size_t image_count(struct dfx *f) {
    struct ava_image *list = NULL;
    size_t n = 0;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_store_image_list(f->st, 0, &list, &n, err), 0);
    ava_image_list_free(list, n);
    return n;
}

static void test_load_public_reads_json_files_only(void **state) {
    struct dfx *f = *state;
    put(f, "a.json",
        "{\"name\": \"ava-pure\", \"tag\": \"host\", \"kind\": \"host\","
        " \"description\": \"first\"}");
    put(f, "b.json",
        "{\"name\": \"ava-examples\", \"tag\": \"c\", \"kind\": \"host\","
        " \"entry\": \"/bin/true\"}");
    put(f, "README.md", "not a manifest {");
    put(f, "notes.json.bak", "not a manifest {");
    put(f, ".hidden.json", "not a manifest {");
    int count = -1;
    char err[AVA_ERRLEN] = "";
    int r = ava_images_load_public(f->st, f->images, &count, err);
    CHECK(r == 0, "load: %s", err);
    assert_int_equal(count, 2);
    assert_int_equal(image_count(f), 2);
    struct ava_image img;
    assert_int_equal(ava_store_image_find(f->st, "ava-examples", "c", 0, &img, err), 0);
    assert_string_equal(img.entry, "/bin/true");
    assert_int_equal(img.group_id, 0);
    ava_image_free(&img);

    /* loading again (a restart) refreshes instead of duplicating */
    put(f, "a.json",
        "{\"name\": \"ava-pure\", \"tag\": \"host\", \"kind\": \"host\","
        " \"description\": \"second\"}");
    assert_int_equal(ava_images_load_public(f->st, f->images, &count, err), 0);
    assert_int_equal(count, 2);
    assert_int_equal(image_count(f), 2);
    assert_int_equal(ava_store_image_find(f->st, "ava-pure", "host", 0, &img, err), 0);
    assert_string_equal(img.description, "second");
    ava_image_free(&img);
}

/* ${AVA_EXAMPLES} in a shipped manifest becomes the install's examples folder. */
static void test_load_public_expands_the_examples_dir(void **state) {
    struct dfx *f = *state;
    put(f, "ex.json",
        "{\"name\": \"ava-examples\", \"tag\": \"c\", \"kind\": \"host\","
        " \"entry\": \"${AVA_EXAMPLES}/trainings/c/simple/start.sh\","
        " \"requires\": [\"${AVA_EXAMPLES}/nope\"]}");
    int count = -1;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_images_load_public_at(f->st, f->images, "/opt/ava/examples", &count, err),
                     0);
    struct ava_image img;
    assert_int_equal(ava_store_image_find(f->st, "ava-examples", "c", 0, &img, err), 0);
    assert_string_equal(img.entry, "/opt/ava/examples/trainings/c/simple/start.sh");
    assert_false(img.available); /* its `requires` names a missing file */
    assert_non_null(strstr(img.unavailable_reason, "/opt/ava/examples/nope"));
    ava_image_free(&img);
    /* without a folder the placeholder stays, and a relative entry is refused */
    assert_int_equal(ava_images_load_public(f->st, f->images, &count, err), AVA_EINVALID);
}

static void test_load_public_names_the_bad_file(void **state) {
    struct dfx *f = *state;
    put(f, "good.json", "{\"name\": \"good\", \"tag\": \"1\", \"kind\": \"host\"}");
    put(f, "broken.json", "{\"name\": \"broken\", \"tag\": \"1\",\n \"kind\": }");
    int count = -1;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_images_load_public(f->st, f->images, &count, err), AVA_EINVALID);
    CHECK(strstr(err, "broken.json") != NULL, "message '%s' does not name the file", err);
    assert_non_null(strstr(err, "line 2"));
}

static void test_load_public_invalid_manifest_names_file_and_key(void **state) {
    struct dfx *f = *state;
    put(f, "odd.json", "{\"name\": \"odd\", \"tag\": \"1\", \"kind\": \"host\", \"size\": 3}");
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_images_load_public(f->st, f->images, NULL, err), AVA_EINVALID);
    CHECK(strstr(err, "odd.json") != NULL, "message '%s' does not name the file", err);
    CHECK(strstr(err, "size") != NULL, "message '%s' does not name the key", err);
    assert_int_equal(image_count(f), 0);
}

static void test_load_public_duplicate_keys_refused(void **state) {
    struct dfx *f = *state;
    put(f, "dup.json", "{\"name\": \"a\", \"name\": \"b\", \"tag\": \"1\", \"kind\": \"host\"}");
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_images_load_public(f->st, f->images, NULL, err), AVA_EINVALID);
    assert_non_null(strstr(err, "dup.json"));
}

static void test_load_public_missing_dir(void **state) {
    struct dfx *f = *state;
    char path[160], err[AVA_ERRLEN] = "";
    snprintf(path, sizeof path, "%s/nope", f->dir);
    assert_int_equal(ava_images_load_public(f->st, path, NULL, err), AVA_EIO);
    assert_non_null(strstr(err, path));
}

static void test_load_public_empty_dir(void **state) {
    struct dfx *f = *state;
    int count = -1;
    char err[AVA_ERRLEN] = "";
    assert_int_equal(ava_images_load_public(f->st, f->images, &count, err), 0);
    assert_int_equal(count, 0);
}

/* The manifests shipped in share/images must load (AVA_SOURCE_DIR is set by meson test). */
static void test_load_public_shipped_manifests(void **state) {
    struct dfx *f = *state;
    const char *src = getenv("AVA_SOURCE_DIR");
    if (!src) {
        skip();
        return;
    }
    char dir[AVA_PATH_MAX], err[AVA_ERRLEN] = "";
    snprintf(dir, sizeof dir, "%s/share/images", src);
    int count = -1;
    int r = ava_images_load_public_at(f->st, dir, "/nonexistent/examples", &count, err);
    CHECK(r == 0, "shipped manifests: %s", err);
    assert_true(count >= 3);
    struct ava_image img;
    assert_int_equal(ava_store_image_find(f->st, "ava-pure", "host", 0, &img, err), 0);
    assert_true(img.available);
    ava_image_free(&img);
    /* the example image names its entry below the examples folder, and says when it lacks it */
    assert_int_equal(ava_store_image_find(f->st, "ava-examples", "c", 0, &img, err), 0);
    assert_string_equal(img.entry, "/nonexistent/examples/trainings/c/simple/start.sh");
    assert_false(img.available);
    ava_image_free(&img);
    assert_int_equal(ava_store_image_find(f->st, "ava-examples", "pytorch", 0, &img, err), 0);
    assert_string_equal(img.entry, "/nonexistent/examples/trainings/pytorch/simple/start.sh");
    assert_false(img.available);
    ava_image_free(&img);
}

#define TORCH_INIT "/usr/lib/python3/dist-packages/torch/__init__.py"

/* Reads the shipped manifest of ava-examples:pytorch, with TORCH_INIT replaced by torch_path;
 * NULL without AVA_SOURCE_DIR. */
static char *pytorch_manifest(const char *torch_path) {
    const char *src = getenv("AVA_SOURCE_DIR");
    if (!src)
        return NULL;
    char path[AVA_PATH_MAX], text[4096];
    snprintf(path, sizeof path, "%s/share/images/ava-examples-pytorch.json", src);
    FILE *fp = fopen(path, "r");
    CHECK(fp != NULL, "cannot open %s", path);
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    char *at = strstr(text, TORCH_INIT);
    CHECK(at != NULL, "%s does not require %s", path, TORCH_INIT);
    char *out = malloc(n + strlen(torch_path) + 1);
    assert_non_null(out);
    sprintf(out, "%.*s%s%s", (int)(at - text), text, torch_path, at + strlen(TORCH_INIT));
    return out;
}

/* ava-examples:pytorch is listed, and unavailable with a reason naming torch when Debian's
 * python3-torch is missing (its `requires` names torch's __init__.py); available when it
 * and the example's files are there. */
static void test_pytorch_image_needs_torch(void **state) {
    struct dfx *f = *state;
    char *text = pytorch_manifest("/nonexistent/ava-test/dist-packages/torch/__init__.py");
    if (!text) {
        skip();
        return;
    }
    /* the example's own files are present: torch is the only thing missing */
    char ex[160], err[AVA_ERRLEN] = "";
    snprintf(ex, sizeof ex, "%s/examples/trainings/pytorch/simple", f->dir);
    assert_int_equal(ava_mkdir_p(ex, 0755, err), 0);
    strcat(ex, "/start.sh");
    FILE *fp = fopen(ex, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(ex, sizeof ex, "%s/examples", f->dir);
    put(f, "ava-examples-pytorch.json", text);
    free(text);
    int count = -1;
    assert_int_equal(ava_images_load_public_at(f->st, f->images, ex, &count, err), 0);
    assert_int_equal(count, 1);
    struct ava_image img;
    assert_int_equal(ava_store_image_find(f->st, "ava-examples", "pytorch", 0, &img, err), 0);
    assert_false(img.available);
    CHECK(img.unavailable_reason &&
              strstr(img.unavailable_reason,
                     "/nonexistent/ava-test/dist-packages/torch/__init__.py is not installed"),
          "reason '%s'", img.unavailable_reason ? img.unavailable_reason : "(null)");
    ava_image_free(&img);

    /* the shipped manifest as is: available exactly when this machine has python3-torch */
    text = pytorch_manifest(TORCH_INIT);
    put(f, "ava-examples-pytorch.json", text);
    free(text);
    assert_int_equal(ava_images_load_public_at(f->st, f->images, ex, &count, err), 0);
    assert_int_equal(ava_store_image_find(f->st, "ava-examples", "pytorch", 0, &img, err), 0);
    bool torch = access(TORCH_INIT, F_OK) == 0 && access("/usr/bin/python3", F_OK) == 0;
    CHECK(img.available == torch, "available %d, python3-torch installed %d (reason '%s')",
          img.available, torch, img.unavailable_reason ? img.unavailable_reason : "");
    if (!torch)
        CHECK(strstr(img.unavailable_reason, "is not installed"), "reason '%s'",
              img.unavailable_reason);
    ava_image_free(&img);
}

/* ---- NAME:TAG ---- */

static void test_ref_split_good(void **state) {
    (void)state;
    char name[65], tag[65], err[AVA_ERRLEN] = "";
    assert_int_equal(ava_image_ref_split("ava-pure:host", name, tag, err), 0);
    assert_string_equal(name, "ava-pure");
    assert_string_equal(tag, "host");
    char ref[140], n64[65];
    memset(n64, 'n', 64);
    n64[64] = '\0';
    snprintf(ref, sizeof ref, "%s:%s", n64, n64);
    assert_int_equal(ava_image_ref_split(ref, name, tag, err), 0);
    assert_string_equal(name, n64);
    assert_string_equal(tag, n64);
    assert_int_equal(ava_image_ref_split("a:1.0_rc-2", name, tag, err), 0);
    assert_string_equal(tag, "1.0_rc-2");
}

static void test_ref_split_bad(void **state) {
    (void)state;
    char n65[66], long_name[80], long_tag[80];
    memset(n65, 'n', 65);
    n65[65] = '\0';
    snprintf(long_name, sizeof long_name, "%s:t", n65);
    snprintf(long_tag, sizeof long_tag, "n:%s", n65);
    const char *bad[] = {"a",    "a:",   ":b",   "a:b:c", "",     ":",       "a b:c", "a/b:c",
                         "..:x", ".a:b", "a:..", "-a:b",  "a:b ", long_name, long_tag};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        char name[65], tag[65], err[AVA_ERRLEN] = "";
        int r = ava_image_ref_split(bad[i], name, tag, err);
        CHECK(r == AVA_EINVALID, "case %zu ('%.20s') accepted", i, bad[i]);
        CHECK(strstr(err, "NAME:TAG") != NULL, "case %zu: message '%s'", i, err);
    }
    char name[65], tag[65], err[AVA_ERRLEN] = "";
    assert_int_equal(ava_image_ref_split(NULL, name, tag, err), AVA_EINVALID);
}

#define T(fn) cmocka_unit_test(fn)
#define D(fn) cmocka_unit_test_setup_teardown(fn, dfx_setup, dfx_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_manifest_full_is_accepted),
        T(test_manifest_minimal_gets_defaults),
        T(test_manifest_null_means_not_given),
        T(test_manifest_refusals_name_the_problem),
        T(test_manifest_description_limit),
        T(test_manifest_missing_requirement_makes_unavailable),
        T(test_manifest_sandbox_kinds_are_unavailable),
        D(test_load_public_reads_json_files_only),
        D(test_load_public_expands_the_examples_dir),
        D(test_load_public_names_the_bad_file),
        D(test_load_public_invalid_manifest_names_file_and_key),
        D(test_load_public_duplicate_keys_refused),
        D(test_load_public_missing_dir),
        D(test_load_public_empty_dir),
        D(test_load_public_shipped_manifests),
        D(test_pytorch_image_needs_torch),
        T(test_ref_split_good),
        T(test_ref_split_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
