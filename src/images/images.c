/* images.c: manifest validation and loading the public images shipped with the install. */
#include "images.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/jsonfields.h"
#include "../common/path.h"
#include "../common/strutil.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ava_image_ref_split(const char *ref, char name[65], char tag[65], char *err) {
    const char *colon = ref ? strchr(ref, ':') : NULL;
    if (!colon || (size_t)(colon - ref) > 64 || strlen(colon + 1) > 64)
        return ava_err(err, AVA_EINVALID, "image '%s' must be given as NAME:TAG", ref ? ref : "");
    memcpy(name, ref, (size_t)(colon - ref));
    name[colon - ref] = '\0';
    strcpy(tag, colon + 1);
    if (!ava_name_valid(name) || !ava_name_valid(tag))
        return ava_err(err, AVA_EINVALID, "image '%s' must be given as NAME:TAG", ref);
    return 0;
}

/* Checks the env member: an object of string values with sane keys. */
static int check_env(json_t *env, char *err) {
    const char *k;
    json_t *v;
    if (!json_is_object(env))
        return ava_err(err, AVA_EINVALID, "manifest: env must be an object of strings");
    json_object_foreach(env, k, v) {
        if (!*k || strchr(k, '=') || !json_is_string(v))
            return ava_err(err, AVA_EINVALID, "manifest: env '%s' must be a string value", k);
    }
    return 0;
}

/* Marks img unavailable when one of the required paths is missing. */
static int check_requires(json_t *req, struct ava_image *img, char *err) {
    size_t i;
    json_t *v;
    if (!json_is_array(req))
        return ava_err(err, AVA_EINVALID, "manifest: requires must be an array of paths");
    json_array_foreach(req, i, v) {
        const char *p = json_string_value(v);
        if (!p || p[0] != '/')
            return ava_err(err, AVA_EINVALID, "manifest: requires holds absolute paths");
        if (img->available && access(p, F_OK) != 0) {
            img->available = false;
            img->unavailable_reason = ava_xasprintf("%s is not installed", p);
        }
    }
    return 0;
}

int ava_image_from_manifest(json_t *m, struct ava_image *out, bool *public_out, char *err) {
    const char *name = NULL, *tag = NULL, *kind = NULL, *desc = "", *entry = NULL, *parser = NULL;
    json_t *env = NULL, *req = NULL;
    int pub = 0;
    static const struct ava_field fields[] = {
        {"name", AVA_FIELD_STRING, true, false},
        {"tag", AVA_FIELD_STRING, true, false},
        {"kind", AVA_FIELD_STRING, true, false},
        {"description", AVA_FIELD_STRING, false, true},
        {"entry", AVA_FIELD_STRING, false, true},
        {"env", AVA_FIELD_OBJECT, false, true},
        {"metrics_parser", AVA_FIELD_STRING, false, true},
        {"requires", AVA_FIELD_ARRAY, false, true},
        {"public", AVA_FIELD_BOOL, false, true},
    };
    memset(out, 0, sizeof *out);
    if (ava_json_check_fields(m, fields, sizeof fields / sizeof fields[0], "manifest", err) < 0)
        return AVA_EINVALID;
    json_unpack(m, "{s:s, s:s, s:s, s?s, s?s, s?o, s?s, s?o, s?b}", "name", &name, "tag", &tag,
                "kind", &kind, "description", &desc, "entry", &entry, "env", &env, "metrics_parser",
                &parser, "requires", &req, "public", &pub);
    if (!ava_name_valid(name) || !ava_name_valid(tag))
        return ava_err(err, AVA_EINVALID,
                       "manifest: name and tag must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    if (strcmp(kind, "host") && strcmp(kind, "rootfs") && strcmp(kind, "oci"))
        return ava_err(err, AVA_EINVALID, "manifest: kind must be host, rootfs or oci");
    if (strlen(desc) > AVA_IMAGE_DESC_MAX)
        return ava_err(err, AVA_EINVALID, "manifest: description is over %d bytes",
                       AVA_IMAGE_DESC_MAX);
    if (entry && entry[0] != '/')
        return ava_err(err, AVA_EINVALID, "manifest: entry must be an absolute path");
    if (env && check_env(env, err) < 0)
        return AVA_EINVALID;
    strcpy(out->name, name);
    strcpy(out->tag, tag);
    snprintf(out->kind, sizeof out->kind, "%s", kind);
    out->description = ava_xstrdup(desc);
    out->entry = entry ? ava_xstrdup(entry) : NULL;
    out->env_json = env ? json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS) : ava_xstrdup("{}");
    out->metrics_parser = parser ? ava_xstrdup(parser) : NULL;
    out->available = true;
    if (strcmp(kind, "host") != 0) {
        out->available = false;
        out->unavailable_reason =
            ava_xasprintf("kind '%s' needs the sandbox, which this release does not have", kind);
    }
    if (req && check_requires(req, out, err) < 0) {
        ava_image_free(out);
        return AVA_EINVALID;
    }
    if (public_out)
        *public_out = pub != 0;
    return 0;
}

#define EXAMPLES_VAR "${AVA_EXAMPLES}"

/* Reads a manifest's text with ${AVA_EXAMPLES} replaced (examples may be NULL). */
static int read_manifest(const char *path, const char *examples, char **out, char *err) {
    char *text;
    int r = ava_file_read_all(path, 1 << 20, &text, NULL, err);
    if (r < 0 || !examples || strpbrk(examples, "\"\\"))
        return r < 0 ? r : (*out = text, 0);
    struct ava_buf b = {0};
    const char *p = text, *hit;
    while ((hit = strstr(p, EXAMPLES_VAR))) {
        ava_buf_append(&b, p, (size_t)(hit - p));
        ava_buf_puts(&b, examples);
        p = hit + strlen(EXAMPLES_VAR);
    }
    ava_buf_puts(&b, p);
    free(text);
    *out = ava_buf_steal(&b);
    return 0;
}

/* Loads one manifest file into the store. */
static int load_one(struct ava_store *st, const char *path, const char *examples, char *err) {
    json_error_t je;
    char *text;
    int r = read_manifest(path, examples, &text, err);
    if (r < 0)
        return r;
    json_t *m = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!m)
        return ava_err(err, AVA_EINVALID, "%s: line %d: %s", path, je.line, je.text);
    struct ava_image img;
    char merr[AVA_ERRLEN];
    r = ava_image_from_manifest(m, &img, NULL, merr);
    json_decref(m);
    if (r < 0)
        return ava_err(err, r, "%s: %s", path, merr);
    r = ava_store_image_upsert_public(st, &img, err);
    ava_image_free(&img);
    return r;
}

static int json_file_filter(const struct dirent *d) {
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int ava_images_load_public(struct ava_store *st, const char *dir, int *count, char *err) {
    return ava_images_load_public_at(st, dir, NULL, count, err);
}

int ava_images_load_public_at(struct ava_store *st, const char *dir, const char *examples_dir,
                              int *count, char *err) {
    struct dirent **names;
    int n = scandir(dir, &names, json_file_filter, alphasort);
    if (n < 0)
        return ava_err(err, AVA_EIO, "cannot read the public images in %s", dir);
    int r = 0, loaded = 0;
    for (int i = 0; i < n; i++) {
        char path[AVA_PATH_MAX];
        if (r == 0)
            r = ava_path_join(path, sizeof path, err, dir, names[i]->d_name, NULL);
        if (r == 0 && (r = load_one(st, path, examples_dir, err)) == 0)
            loaded++;
        free(names[i]);
    }
    free(names);
    if (count)
        *count = loaded;
    return r;
}
