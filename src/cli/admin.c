/* admin.c: the verbs around the trainings: whoami, group, user, image, resources. */
#include "cli.h"

#include "out.h"
#include "table.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/strutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A manifest is small; the server refuses bodies over 1 MiB anyway. */
#define MANIFEST_MAX ((size_t)1 << 20)

static const struct cli_optspec no_opts[] = {{0}};

/* GETs path and, with --json, prints the answer. Returns 0 with *out owned by the caller
 * (NULL when it was printed as JSON), or CLI_FAIL. */
static int get_or_print(struct cli_ctx *ctx, const char *path, json_t **out, char *err) {
    json_t *resp;
    *out = NULL;
    if (cli_http_json(ctx->http, "GET", path, NULL, &resp, err) < 0)
        return CLI_FAIL;
    if (ctx->json) {
        cli_print_json(stdout, resp);
        json_decref(resp);
        return 0;
    }
    *out = resp;
    return 0;
}

/* Checks a group/user name typed by the user. */
static int check_name(const char *what, const char *name, char *err) {
    if (ava_name_valid(name))
        return 0;
    return ava_err(err, AVA_EINVALID,
                   "'%s' is not a valid %s name: use letters, digits, '.', '_' and '-', up to 64, "
                   "starting with a letter or digit",
                   name, what);
}

/* ava whoami */
static int whoami(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    json_t *r;
    if (get_or_print(ctx, "/whoami", &r, err) != 0)
        return CLI_FAIL;
    if (r) {
        printf("user:   %s\n", cli_jstr(r, "user") ? cli_jstr(r, "user") : "?");
        printf("group:  %s\n", cli_jstr(r, "group") ? cli_jstr(r, "group") : "?");
        printf("admin:  %s\n", cli_jbool(r, "admin") ? "yes" : "no");
    }
    json_decref(r);
    return CLI_OK;
}

int cli_send_and_report(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
                        const char *line, char *err) {
    json_t *resp;
    int rc = cli_http_json(ctx->http, method, path, body, &resp, err);
    json_decref(body);
    if (rc < 0)
        return CLI_FAIL;
    if (ctx->json)
        cli_print_json(stdout, resp);
    else
        printf("%s\n", line);
    json_decref(resp);
    return CLI_OK;
}

/* ava group create NAME */
static int group_create(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *name = a->pos[0];
    if (check_name("group", name, err) < 0)
        return CLI_USAGE;
    char line[128];
    snprintf(line, sizeof line, "group %s created", name);
    return cli_send_and_report(ctx, "POST", "/groups", json_pack("{s:s}", "name", name), line, err);
}

/* Prints a list answer as a table of the given string/bool members of each item. */
static int list_table(struct cli_ctx *ctx, const char *path, const char *member, int ncols,
                      const char *const *hdr, const char *const *keys, char *err) {
    json_t *r;
    if (get_or_print(ctx, path, &r, err) != 0)
        return CLI_FAIL;
    if (!r)
        return CLI_OK;
    struct cli_table *tab = cli_table_new(ncols, hdr);
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(r, member), i, item) {
        for (int c = 0; c < ncols; c++) {
            const json_t *v = json_object_get(item, keys[c]);
            char buf[64];
            if (json_is_boolean(v)) {
                cli_table_add(tab, json_is_true(v) ? "yes" : "no");
            } else if (ava_startswith(keys[c], "created")) {
                cli_format_local_time(json_string_value(v), buf, sizeof buf);
                cli_table_add(tab, buf);
            } else {
                cli_table_add(tab, json_string_value(v));
            }
        }
    }
    cli_table_print(tab, stdout);
    cli_table_free(tab);
    json_decref(r);
    return CLI_OK;
}

/* ava group list */
static int group_list(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    static const char *const hdr[] = {"NAME", "CREATED"};
    static const char *const keys[] = {"name", "created_at"};
    return list_table(ctx, "/groups", "groups", 2, hdr, keys, err);
}

/* ava user create NAME --group G [--admin]: prints the new token alone. */
static int user_create(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *name = a->pos[0], *group = cli_args_get(a, "group");
    if (check_name("user", name, err) < 0)
        return CLI_USAGE;
    if (!group) {
        ava_err(err, AVA_EINVALID, "missing --group G (the group the user belongs to)");
        return CLI_USAGE;
    }
    if (check_name("group", group, err) < 0)
        return CLI_USAGE;
    json_t *body = json_pack("{s:s, s:s, s:b}", "name", name, "group", group, "admin",
                             cli_args_has(a, "admin"));
    json_t *resp;
    int rc = cli_http_json(ctx->http, "POST", "/users", body, &resp, err);
    json_decref(body);
    if (rc < 0)
        return CLI_FAIL;
    const char *token = cli_jstr(resp, "token");
    if (ctx->json) {
        cli_print_json(stdout, resp);
    } else if (token) {
        printf("%s\n", token);
    } else {
        json_decref(resp);
        ava_err(err, AVA_EINTERNAL, "user %s was created, but the server sent no token", name);
        return CLI_FAIL;
    }
    json_decref(resp);
    return CLI_OK;
}

/* ava user list */
static int user_list(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    static const char *const hdr[] = {"NAME", "GROUP", "ADMIN", "CREATED"};
    static const char *const keys[] = {"name", "group", "admin", "created_at"};
    return list_table(ctx, "/users", "users", 4, hdr, keys, err);
}

/* Who sees an image: "public", or "group G" for a group's private image. */
static void format_visibility(const json_t *img, char *out, size_t outlen) {
    if (cli_jbool(img, "public"))
        snprintf(out, outlen, "public");
    else if (cli_jstr(img, "group"))
        snprintf(out, outlen, "group %s", cli_jstr(img, "group"));
    else
        snprintf(out, outlen, "private");
}

/* ava image list */
static int image_list(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    json_t *r;
    if (get_or_print(ctx, "/images", &r, err) != 0)
        return CLI_FAIL;
    if (!r)
        return CLI_OK;
    static const char *const hdr[] = {"IMAGE", "KIND", "VISIBILITY", "AVAILABLE", "DESCRIPTION"};
    struct cli_table *tab = cli_table_new(5, hdr);
    size_t i;
    json_t *img;
    json_array_foreach(json_object_get(r, "images"), i, img) {
        char buf[128];
        cli_table_add(tab, cli_jstr(img, "ref"));
        cli_table_add(tab, cli_jstr(img, "kind"));
        format_visibility(img, buf, sizeof buf);
        cli_table_add(tab, buf);
        cli_table_add(tab, cli_jbool(img, "available") ? "yes" : "no");
        cli_table_add(tab, cli_jstr(img, "description"));
    }
    cli_table_print(tab, stdout);
    cli_table_free(tab);
    json_decref(r);
    return CLI_OK;
}

/* Prints one image as "label: value" lines. */
static void print_image(const json_t *img) {
    char buf[256];
    printf("%-13s %s\n", "image:", cli_jstr(img, "ref") ? cli_jstr(img, "ref") : "?");
    printf("%-13s %s\n", "kind:", cli_jstr(img, "kind") ? cli_jstr(img, "kind") : "-");
    format_visibility(img, buf, sizeof buf);
    printf("%-13s %s\n", "visibility:", buf);
    if (cli_jstr(img, "owner"))
        printf("%-13s %s\n", "owner:", cli_jstr(img, "owner"));
    printf("%-13s %s\n",
           "description:", cli_jstr(img, "description") ? cli_jstr(img, "description") : "-");
    printf("%-13s %s\n", "entry:", cli_jstr(img, "entry") ? cli_jstr(img, "entry") : "-");
    struct ava_buf env = {0};
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(img, "env"), k, v) {
        ava_buf_printf(&env, "%s%s=%s", env.len ? " " : "", k, json_string_value(v));
    }
    printf("%-13s %s\n", "env:", env.len ? env.data : "-");
    ava_buf_free(&env);
    const char *parser = cli_jstr(img, "metrics_parser");
    printf("%-13s %s\n", "metrics:", parser ? parser : "-");
    if (cli_jbool(img, "available"))
        printf("%-13s yes\n", "available:");
    else
        printf("%-13s no (%s)\n", "available:",
               cli_jstr(img, "unavailable_reason") ? cli_jstr(img, "unavailable_reason") : "?");
    cli_format_local_time(cli_jstr(img, "created_at"), buf, sizeof buf);
    printf("%-13s %s\n", "created:", buf);
}

/* ava image show NAME:TAG */
static int image_show(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *ref = a->pos[0], *colon = strchr(ref, ':');
    char name[AVA_NAME_MAX + 2];
    if (!colon || (size_t)(colon - ref) >= sizeof name) {
        ava_err(err, AVA_EINVALID, "'%s' is not an image reference NAME:TAG", ref);
        return CLI_USAGE;
    }
    snprintf(name, sizeof name, "%.*s", (int)(colon - ref), ref);
    if (!ava_name_valid(name) || !ava_name_valid(colon + 1)) {
        ava_err(err, AVA_EINVALID, "'%s' is not an image reference NAME:TAG", ref);
        return CLI_USAGE;
    }
    char *ename = cli_url_encode(name), *etag = cli_url_encode(colon + 1);
    char *path = ava_xasprintf("/images/%s:%s", ename, etag);
    json_t *r;
    int rc = get_or_print(ctx, path, &r, err);
    free(ename);
    free(etag);
    free(path);
    if (rc != 0)
        return CLI_FAIL;
    if (r)
        print_image(r);
    json_decref(r);
    return CLI_OK;
}

/* ava image add MANIFEST.json: checks the file is a JSON object, then POSTs it. */
static int image_add(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *file = a->pos[0];
    char *text;
    size_t len;
    if (ava_file_read_all(file, MANIFEST_MAX, &text, &len, err) < 0)
        return CLI_FAIL;
    json_error_t jerr;
    json_t *manifest = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!json_is_object(manifest)) {
        if (manifest)
            ava_err(err, AVA_EINVALID, "%s: a manifest is a JSON object", file);
        else
            ava_err(err, AVA_EINVALID, "%s: not JSON: line %d: %s", file, jerr.line, jerr.text);
        json_decref(manifest);
        return CLI_FAIL;
    }
    json_t *resp;
    int rc = cli_http_json(ctx->http, "POST", "/images", manifest, &resp, err);
    json_decref(manifest);
    if (rc < 0)
        return CLI_FAIL;
    if (ctx->json) {
        cli_print_json(stdout, resp);
    } else {
        char vis[128];
        format_visibility(resp, vis, sizeof vis);
        printf("image %s added (%s)\n", cli_jstr(resp, "ref") ? cli_jstr(resp, "ref") : "?", vis);
    }
    json_decref(resp);
    return CLI_OK;
}

/* Prints the GPU table of `resources`. */
static void print_gpus(const json_t *gpus) {
    if (json_array_size(gpus) == 0) {
        printf("GPUs:    none\n");
        return;
    }
    static const char *const hdr[] = {"GPU", "TRAINING", "RUN"};
    struct cli_table *tab = cli_table_new(3, hdr);
    size_t i;
    json_t *g;
    json_array_foreach(gpus, i, g) {
        cli_table_addf(tab, "%lld", (long long)cli_jint(g, "index", (long long)i));
        cli_table_add(tab, cli_jstr(g, "training") ? cli_jstr(g, "training") : "(free)");
        if (json_is_integer(json_object_get(g, "run")))
            cli_table_addf(tab, "%lld", (long long)cli_jint(g, "run", 0));
        else
            cli_table_add(tab, NULL);
    }
    cli_table_print(tab, stdout);
    cli_table_free(tab);
}

/* Prints the holders table of `resources`: who holds what. */
static void print_holders(const json_t *holders) {
    static const char *const hdr[] = {"TRAINING", "RUN", "STATE", "GPUS", "CPUS", "MEM"};
    struct cli_table *tab = cli_table_new(6, hdr);
    size_t i;
    json_t *h;
    json_array_foreach(holders, i, h) {
        char buf[64];
        cli_table_add(tab, cli_jstr(h, "training"));
        cli_table_addf(tab, "%lld", (long long)cli_jint(h, "run", 0));
        cli_table_add(tab, cli_jstr(h, "state"));
        cli_format_int_list(json_object_get(h, "gpus"), buf, sizeof buf);
        cli_table_add(tab, buf);
        cli_table_addf(tab, "%lld", (long long)cli_jint(h, "cpus", 0));
        int64_t mem = cli_jint(h, "mem_bytes", 0);
        ava_format_size(mem, buf, sizeof buf);
        cli_table_add(tab, mem > 0 ? buf : NULL);
    }
    printf("\n");
    cli_table_print(tab, stdout);
    cli_table_free(tab);
}

/* Formats "used/total" of a {used, total} object into buf. */
static const char *used_of(const json_t *o, bool sizes, char *buf, size_t len) {
    char u[32], t[32];
    if (sizes) {
        ava_format_size(cli_jint(o, "used", 0), u, sizeof u);
        ava_format_size(cli_jint(o, "total", 0), t, sizeof t);
        snprintf(buf, len, "%s/%s", u, t);
    } else {
        snprintf(buf, len, "%lld/%lld", (long long)cli_jint(o, "used", 0),
                 (long long)cli_jint(o, "total", 0));
    }
    return buf;
}

/* Prints the nodes of a Slurm cluster (resources with executor slurm). */
static void print_cluster(const json_t *cluster) {
    const char *error = cli_jstr(cluster, "error");
    if (error) {
        printf("cluster: %s\n", error);
        return;
    }
    static const char *const hdr[] = {"NODE", "STATE", "PARTITIONS", "CPUS", "GPUS", "MEM"};
    struct cli_table *tab = cli_table_new(6, hdr);
    size_t i;
    json_t *nd;
    json_array_foreach(json_object_get(cluster, "nodes"), i, nd) {
        char buf[80];
        cli_table_add(tab, cli_jstr(nd, "name"));
        cli_table_add(tab, cli_jstr(nd, "state"));
        cli_table_add(tab, cli_jstr(nd, "partitions"));
        cli_table_add(tab, used_of(json_object_get(nd, "cpus"), false, buf, sizeof buf));
        cli_table_add(tab, used_of(json_object_get(nd, "gpus"), false, buf, sizeof buf));
        cli_table_add(tab, used_of(json_object_get(nd, "mem_bytes"), true, buf, sizeof buf));
    }
    cli_table_print(tab, stdout);
    cli_table_free(tab);
}

/* ava resources */
static int resources(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    json_t *r;
    if (get_or_print(ctx, "/resources", &r, err) != 0)
        return CLI_FAIL;
    if (!r)
        return CLI_OK;
    const char *executor = cli_jstr(r, "executor");
    if (executor && !strcmp(executor, "slurm")) {
        /* Slurm owns the resources: show its nodes, then ava's runs on them */
        printf("executor: slurm (Slurm queues and places the runs)\n");
        print_cluster(json_object_get(r, "cluster"));
        printf("queued:  %lld run(s) waiting in Slurm\n", (long long)cli_jint(r, "queued", 0));
        print_holders(json_object_get(r, "holders"));
        json_decref(r);
        return CLI_OK;
    }
    const json_t *cpus = json_object_get(r, "cpus"), *mem = json_object_get(r, "mem_bytes");
    char used[32], total[32];
    print_gpus(json_object_get(r, "gpus"));
    printf("CPUs:    %lld used of %lld\n", (long long)cli_jint(cpus, "used", 0),
           (long long)cli_jint(cpus, "total", 0));
    ava_format_size(cli_jint(mem, "used", 0), used, sizeof used);
    ava_format_size(cli_jint(mem, "total", 0), total, sizeof total);
    printf("memory:  %s used of %s\n", used, total);
    printf("queued:  %lld run(s) waiting\n", (long long)cli_jint(r, "queued", 0));
    print_holders(json_object_get(r, "holders"));
    json_decref(r);
    return CLI_OK;
}

static const struct cli_optspec user_create_opts[] = {{"group", 0, true}, {"admin", 0, false}, {0}};

const struct cli_verb cli_admin_verbs[] = {
    {"whoami", NULL, NULL, "", "show who the token belongs to", NULL, no_opts, false, whoami},
    {"group", "create", "NAME", "NAME", "create a group (admin)", NULL, no_opts, false,
     group_create},
    {"group", "list", NULL, "", "list the groups (admin)", NULL, no_opts, false, group_list},
    {"user", "create", "NAME", "NAME --group G [--admin]",
     "create a user (admin); prints the new token alone",
     "  --group G            the user's group (required)\n"
     "  --admin              make the user an administrator\n",
     user_create_opts, false, user_create},
    {"user", "list", NULL, "", "list users (admin: all; others: your group)", NULL, no_opts, false,
     user_list},
    {"image", "list", NULL, "", "list the images you can use", NULL, no_opts, false, image_list},
    {"image", "show", "NAME:TAG", "NAME:TAG", "show one image", NULL, no_opts, false, image_show},
    {"image", "add", "MANIFEST.json", "MANIFEST.json", "add an image from a JSON manifest", NULL,
     no_opts, false, image_add},
    {"resources", NULL, NULL, "", "show GPUs, CPUs and memory, and who holds them", NULL, no_opts,
     false, resources},
    {0},
};
