/* routes.c: the small routes: whoami, groups, users, images and resources. */
#include "internal.h"

#include "../common/buf.h"
#include "../common/jsonfields.h"
#include "../common/sha256.h"
#include "../common/strutil.h"
#include "../common/timeutil.h"
#include "../images/images.h"
#include "../exec/slurm.h"
#include "../sched/sched.h"

#include <stdlib.h>
#include <string.h>

/* Replies 403 unless the caller is an admin. */
static bool require_admin(struct req *rq) {
    if (rq->user.admin)
        return true;
    api_reply_error(rq, AVA_EFORBIDDEN, "only an admin may do this");
    return false;
}

/* Replies 405-like 400 for a method a route does not take. */
static void bad_method(struct req *rq) {
    api_reply_error(rq, AVA_EINVALID, "method not allowed on this route");
}

void api_route_whoami(struct req *rq) {
    api_reply_json(rq, 200,
                   json_pack("{s:s, s:s, s:b}", "user", rq->user.name, "group", rq->user.group,
                             "admin", rq->user.admin));
}

static void add_group(void *ctx, const char *name, int64_t created_at) {
    json_array_append_new(
        ctx, json_pack("{s:s, s:o}", "name", name, "created_at", api_time(created_at)));
}

void api_route_groups(struct req *rq) {
    char err[AVA_ERRLEN];
    if (rq->nsegs != 1)
        return api_reply_error(rq, AVA_ENOTFOUND, "no such route");
    if (!require_admin(rq))
        return;
    if (rq->method == EVHTTP_REQ_GET) {
        json_t *arr = json_array();
        int r = ava_store_group_each(rq->api->st, add_group, arr, err);
        if (r < 0) {
            json_decref(arr);
            return api_reply_error(rq, r, "%s", err);
        }
        return api_reply_json(rq, 200, json_pack("{s:o}", "groups", arr));
    }
    if (rq->method != EVHTTP_REQ_POST)
        return bad_method(rq);
    json_t *body = api_body_json(rq);
    const char *name = NULL;
    static const struct ava_field fields[] = {{"name", AVA_FIELD_STRING, true, false}};
    if (!body)
        return;
    int r = ava_json_check_fields(body, fields, 1, NULL, err);
    if (r == 0) {
        json_unpack(body, "{s:s}", "name", &name);
        r = ava_name_valid(name)
                ? ava_store_group_create(rq->api->st, name, NULL, err)
                : ava_err(err, AVA_EINVALID,
                          "bad group name '%s': use [A-Za-z0-9][A-Za-z0-9._-]{0,63}", name);
    }
    if (r < 0)
        api_reply_error(rq, r, "%s", err);
    else
        api_reply_json(rq, 201,
                       json_pack("{s:s, s:o}", "name", name, "created_at", api_time(ava_now_ms())));
    json_decref(body);
}

static json_t *user_json(const struct ava_user *u) {
    return json_pack("{s:s, s:s, s:b, s:o}", "name", u->name, "group", u->group, "admin", u->admin,
                     "created_at", api_time(u->created_at));
}

/* POST /users: creates a user and answers its token, shown only here. */
static void create_user(struct req *rq, json_t *body) {
    const char *name, *group;
    int admin = 0;
    char err[AVA_ERRLEN], token[45], hash[65];
    int64_t gid;
    struct ava_user u;
    static const struct ava_field fields[] = {{"name", AVA_FIELD_STRING, true, false},
                                              {"group", AVA_FIELD_STRING, true, false},
                                              {"admin", AVA_FIELD_BOOL, false, true}};
    if (ava_json_check_fields(body, fields, 3, NULL, err) < 0)
        return api_reply_error(rq, AVA_EINVALID, "%s", err);
    json_unpack(body, "{s:s, s:s, s?b}", "name", &name, "group", &group, "admin", &admin);
    if (!ava_name_valid(name))
        return api_reply_error(rq, AVA_EINVALID,
                               "bad user name '%s': use [A-Za-z0-9][A-Za-z0-9._-]{0,63}", name);
    int r = ava_store_group_find(rq->api->st, group, &gid, err);
    if (r == 0)
        r = ava_token_new(token) < 0 ? ava_err(err, AVA_EIO, "no randomness for a token") : 0;
    if (r == 0) {
        ava_sha256_hex(token, hash);
        r = ava_store_user_create(rq->api->st, name, gid, admin, hash, &u, err);
    }
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    json_t *j = user_json(&u);
    json_object_set_new(j, "token", json_string(token));
    api_reply_json(rq, 201, j);
}

void api_route_users(struct req *rq) {
    char err[AVA_ERRLEN];
    if (rq->nsegs != 1)
        return api_reply_error(rq, AVA_ENOTFOUND, "no such route");
    if (rq->method == EVHTTP_REQ_GET) {
        struct ava_user *us;
        size_t n;
        int r =
            ava_store_user_list(rq->api->st, rq->user.admin ? 0 : rq->user.group_id, &us, &n, err);
        if (r < 0)
            return api_reply_error(rq, r, "%s", err);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, user_json(&us[i]));
        free(us);
        return api_reply_json(rq, 200, json_pack("{s:o}", "users", arr));
    }
    if (rq->method != EVHTTP_REQ_POST)
        return bad_method(rq);
    if (!require_admin(rq))
        return;
    json_t *body = api_body_json(rq);
    if (body)
        create_user(rq, body);
    json_decref(body);
}

static json_t *image_json(const struct ava_image *img) {
    json_error_t je;
    json_t *env = json_loads(img->env_json ? img->env_json : "{}", 0, &je);
    return json_pack("{s:s+++, s:s, s:s, s:s, s:b, s:s?, s:s?, s:s, s:s?, s:o, s:s?, s:b, s:s?,"
                     " s:o}",
                     "ref", img->name, ":", img->tag, "", "name", img->name, "tag", img->tag,
                     "kind", img->kind, "public", img->group_id == 0, "owner",
                     img->owner[0] ? img->owner : NULL, "group", img->group[0] ? img->group : NULL,
                     "description", img->description ? img->description : "", "entry", img->entry,
                     "env", env ? env : json_object(), "metrics_parser", img->metrics_parser,
                     "available", img->available, "unavailable_reason", img->unavailable_reason,
                     "created_at", api_time(img->created_at));
}

/* POST /images: registers a private image (public only for an admin). */
static void add_image(struct req *rq, json_t *body) {
    struct ava_image img;
    bool pub = false;
    char err[AVA_ERRLEN];
    int r = ava_image_from_manifest(body, &img, &pub, err);
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    if (pub && !rq->user.admin) {
        ava_image_free(&img);
        return api_reply_error(rq, AVA_EFORBIDDEN, "only an admin may add a public image");
    }
    img.group_id = pub ? 0 : rq->user.group_id;
    img.owner_id = rq->user.id;
    r = pub ? ava_store_image_upsert_public(rq->api->st, &img, err)
            : ava_store_image_insert(rq->api->st, &img, NULL, err);
    struct ava_image stored;
    if (r == 0)
        r = ava_store_image_find(rq->api->st, img.name, img.tag, rq->user.group_id, &stored, err);
    ava_image_free(&img);
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    api_reply_json(rq, 201, image_json(&stored));
    ava_image_free(&stored);
}

void api_route_images(struct req *rq) {
    char err[AVA_ERRLEN], name[65], tag[65];
    if (rq->nsegs == 2 && rq->method == EVHTTP_REQ_GET) {
        struct ava_image img;
        int r = ava_image_ref_split(rq->segs[1], name, tag, err);
        if (r == 0)
            r = ava_store_image_find(rq->api->st, name, tag, rq->user.group_id, &img, err);
        if (r < 0)
            return api_reply_error(rq, r, "%s", err);
        api_reply_json(rq, 200, image_json(&img));
        return ava_image_free(&img);
    }
    if (rq->nsegs != 1)
        return api_reply_error(rq, AVA_ENOTFOUND, "no such route");
    if (rq->method == EVHTTP_REQ_POST) {
        json_t *body = api_body_json(rq);
        if (body)
            add_image(rq, body);
        return json_decref(body);
    }
    if (rq->method != EVHTTP_REQ_GET)
        return bad_method(rq);
    struct ava_image *imgs;
    size_t n;
    int r = ava_store_image_list(rq->api->st, rq->user.group_id, &imgs, &n, err);
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, image_json(&imgs[i]));
    ava_image_list_free(imgs, n);
    api_reply_json(rq, 200, json_pack("{s:o}", "images", arr));
}

/* JSON array of integers from a "0,1" device list. */
static json_t *gpu_array(const char *list) {
    json_t *arr = json_array();
    int idx[64], n = 0;
    if (list && *list && ava_parse_index_list(list, idx, 64, &n, NULL) == 0)
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, json_integer(idx[i]));
    return arr;
}

/* The cluster's nodes with what is in use, for the resources view of the Slurm executor. */
static json_t *slurm_nodes_json(const struct ava_slurm_node *nodes, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct ava_slurm_node *nd = &nodes[i];
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:s, s:{s:i, s:i}, s:{s:i, s:i}, s:{s:I, s:I}}", "name", nd->name,
                      "state", nd->state, "partitions", nd->partitions, "cpus", "total", nd->cpus,
                      "used", nd->alloc_cpus, "gpus", "total", nd->gpus, "used", nd->alloc_gpus,
                      "mem_bytes", "total", (json_int_t)(nd->mem_mb << 20), "used",
                      (json_int_t)(nd->alloc_mem_mb << 20)));
    }
    return arr;
}

struct holders_ctx {
    struct req *rq;
    json_t *holders;
    json_t *gpus; /* array indexed like the pool's slots */
};

/* Adds one active run to the resources answer, hiding other groups' names. */
static void add_holder(void *arg, const struct ava_sched_holder *h) {
    struct holders_ctx *c = arg;
    struct ava_training t;
    char label[140] = "(other group)";
    if (ava_store_training_get(c->rq->api->st, h->training_id, &t, NULL) == 0) {
        if (t.group_id == c->rq->user.group_id)
            snprintf(label, sizeof label, "%s/%s", t.user, t.name);
        ava_training_free(&t);
    }
    if (h->state == AVA_RUN_QUEUED || h->state == AVA_RUN_CREATING)
        return;
    json_array_append_new(
        c->holders, json_pack("{s:s, s:i, s:s, s:o, s:i, s:I}", "training", label, "run", h->number,
                              "state", ava_run_state_str(h->state), "gpus", gpu_array(h->gpus),
                              "cpus", h->cpus, "mem_bytes", (json_int_t)h->mem));
    size_t i;
    json_t *g;
    json_t *mine = gpu_array(h->gpus), *v;
    size_t k;
    json_array_foreach(c->gpus, i, g) {
        json_array_foreach(mine, k, v) {
            if (json_integer_value(v) == json_integer_value(json_object_get(g, "index"))) {
                json_object_set_new(g, "training", json_string(label));
                json_object_set_new(g, "run", json_integer(h->number));
            }
        }
    }
    json_decref(mine);
}

void api_route_resources(struct req *rq) {
    if (rq->nsegs != 1 || rq->method != EVHTTP_REQ_GET)
        return api_reply_error(rq, AVA_ENOTFOUND, "no such route");
    const struct ava_pool *p = ava_sched_pool(rq->api->sched);
    struct holders_ctx c = {rq, json_array(), json_array()};
    for (int i = 0; i < p->ngpus; i++)
        json_array_append_new(
            c.gpus, json_pack("{s:i, s:n, s:n}", "index", p->gpu_index[i], "training", "run"));
    ava_sched_each(rq->api->sched, add_holder, &c);
    const char *executor = ava_sched_executor(rq->api->sched);
    json_t *ans =
        json_pack("{s:s, s:o, s:{s:i, s:i}, s:{s:I, s:I}, s:o, s:i}", "executor", executor, "gpus",
                  c.gpus, "cpus", "total", p->cpus_total, "used", p->cpus_used, "mem_bytes",
                  "total", (json_int_t)p->mem_total, "used", (json_int_t)p->mem_used, "holders",
                  c.holders, "queued", ava_sched_queued(rq->api->sched));
    if (!strcmp(executor, "slurm")) {
        /* the cluster as Slurm sees it now; the pool above is only its largest node */
        struct ava_slurm_node *nodes;
        size_t n;
        char err[AVA_ERRLEN];
        if (ava_slurm_nodes(10000, &nodes, &n, err) < 0) {
            json_object_set_new(ans, "cluster", json_pack("{s:s}", "error", err));
        } else {
            json_object_set_new(ans, "cluster",
                                json_pack("{s:o}", "nodes", slurm_nodes_json(nodes, n)));
            free(nodes);
        }
    }
    api_reply_json(rq, 200, ans);
}
