/* datasets.c: /api/v1/datasets: list, show (classes, sets, the latest job with progress),
 * import, format, cancel, remove. The work itself is done by the registry (data/datasets.h). */
#include "internal.h"

#include "../common/buf.h"
#include "../common/jsonfields.h"
#include "../common/strutil.h"
#include "../data/datasets.h"

#include <stdlib.h>
#include <string.h>

/* The JSON of a job, with its progress while it runs. */
static json_t *job_json(struct req *rq, const struct ava_dataset *d,
                        const struct ava_dataset_job *job) {
    int64_t done = 0, total = 0;
    if (!strcmp(job->state, "running"))
        ava_datasets_progress(rq->api->datasets, d, job, &done, &total);
    json_t *opts =
        !strcmp(job->kind, "format") ? ava_job_user_options(job->options) : json_object();
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:{s:I, s:I}, s:o, s:o}", "id", (json_int_t)job->id,
                     "kind", job->kind, "state", job->state, "reason", job->reason, "options", opts,
                     "progress", "done", (json_int_t)done, "total", (json_int_t)total, "created_at",
                     api_time(job->created_at), "ended_at", api_time(job->ended_at));
}

/* The JSON of a set: where its files are and what it holds. */
static json_t *set_json(struct req *rq, const struct ava_dataset *d,
                        const struct ava_dataset_set *s) {
    char dir[4096] = "", ref[160];
    ava_datasets_set_dir(rq->api->datasets, d, s->format, s->percent, dir, sizeof dir, NULL);
    snprintf(ref, sizeof ref, "%s/%s/%d", d->name, s->format, s->percent);
    json_t *opts = ava_job_user_options(s->options);
    return json_pack("{s:s, s:s, s:i, s:o, s:I, s:I, s:s, s:s, s:o, s:o}", "ref", ref, "format",
                     s->format, "percent", s->percent, "complement",
                     s->complement ? json_integer(s->complement) : json_null(), "samples",
                     (json_int_t)s->samples, "bytes", (json_int_t)s->bytes, "state", "ready",
                     "path", dir, "options", opts, "created_at", api_time(s->created_at));
}

/* The JSON of a dataset; full adds its sets and latest job. */
static json_t *dataset_json(struct req *rq, const struct ava_dataset *d, bool full) {
    json_t *classes = json_loads(d->classes_json ? d->classes_json : "[]", 0, NULL);
    json_t *j = json_pack("{s:s, s:b, s:s?, s:s?, s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "name",
                          d->name, "public", d->group_id == 0, "owner",
                          d->owner[0] ? d->owner : NULL, "group", d->group[0] ? d->group : NULL,
                          "description", d->description, "source", d->source, "state", d->state,
                          "reason", d->reason, "samples", (json_int_t)d->samples, "classes",
                          classes ? classes : json_array(), "created_at", api_time(d->created_at));
    struct ava_dataset_set *sets;
    struct ava_dataset_job *jobs;
    size_t n;
    json_t *arr = json_array();
    if (ava_store_set_list(rq->api->st, d->id, &sets, &n, NULL) == 0) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr,
                                  full ? set_json(rq, d, &sets[i])
                                       : json_sprintf("%s/%d", sets[i].format, sets[i].percent));
        free(sets);
    }
    json_object_set_new(j, "sets", arr);
    if (full && ava_store_job_list(rq->api->st, d->id, &jobs, &n, NULL) == 0) {
        json_object_set_new(j, "job", n ? job_json(rq, d, &jobs[0]) : json_null());
        free(jobs);
    }
    return j;
}

/* POST /datasets {"name", "source", "description"}: creates a dataset and imports it. */
static void import_dataset(struct req *rq, json_t *body) {
    static const struct ava_field fields[] = {{"name", AVA_FIELD_STRING, true, false},
                                              {"source", AVA_FIELD_STRING, true, false},
                                              {"description", AVA_FIELD_STRING, false, true}};
    const char *name, *source, *desc = "";
    char err[AVA_ERRLEN];
    struct ava_dataset_job job;
    struct ava_dataset d;
    if (ava_json_check_fields(body, fields, 3, NULL, err) < 0)
        return api_reply_error(rq, AVA_EINVALID, "%s", err);
    json_unpack(body, "{s:s, s:s, s?s}", "name", &name, "source", &source, "description", &desc);
    if (strlen(desc) > 1000)
        return api_reply_error(rq, AVA_EINVALID, "description is over 1000 bytes");
    int r = ava_datasets_import(rq->api->datasets, &rq->user, name, source, desc, &job, err);
    if (r == 0)
        r = ava_store_dataset_find(rq->api->st, name, rq->user.group_id, &d, err);
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    json_t *j = dataset_json(rq, &d, true);
    api_reply_json(rq, 202, j);
    ava_dataset_free(&d);
}

/* Reads the format request into spec. */
static int parse_format(json_t *body, struct ava_job_spec *spec, char *err) {
    static const struct ava_field fields[] = {
        {"format", AVA_FIELD_STRING, true, false},
        {"split", AVA_FIELD_INT, false, true},
        {"seed", AVA_FIELD_INT, false, true},
        {"encoding", AVA_FIELD_STRING, false, true},
        {"quality", AVA_FIELD_INT, false, true},
        {"resize", AVA_FIELD_INT, false, true},
        {"stratified", AVA_FIELD_BOOL, false, true},
        {"im2rec_compatible", AVA_FIELD_BOOL, false, true},
        {"threads", AVA_FIELD_INT, false, true},
    };
    const char *format, *enc = "default";
    json_int_t split = 100, seed = 0, quality = 95, resize = 0, threads = 0;
    int strat = 0, im2rec = 0;
    if (ava_json_check_fields(body, fields, sizeof fields / sizeof fields[0], NULL, err) < 0)
        return AVA_EINVALID;
    json_unpack(body, "{s:s, s?I, s?I, s?s, s?I, s?I, s?b, s?b, s?I}", "format", &format, "split",
                &split, "seed", &seed, "encoding", &enc, "quality", &quality, "resize", &resize,
                "stratified", &strat, "im2rec_compatible", &im2rec, "threads", &threads);
    memset(spec, 0, sizeof *spec);
    if (ava_set_format_parse(format, &spec->format) < 0)
        return ava_err(err, AVA_EINVALID, "format '%s': use recordio, lmdb or raw", format);
    if (ava_encoding_parse(enc, &spec->encoding) < 0)
        return ava_err(err, AVA_EINVALID, "encoding '%s': use jpeg, png or raw", enc);
    if (split < 1 || split > 100)
        return ava_err(err, AVA_EINVALID, "split must be a percentage from 1 to 100");
    if (split == 50) /* both halves would be named D/F/50 */
        return ava_err(err, AVA_EINVALID,
                       "split 50 would make two sets named .../50: use 49 or 51 (or 100)");
    if (seed < 0 || quality < 1 || quality > 100 || resize < 0 || resize > 65535 || threads < 0 ||
        threads > 256)
        return ava_err(err, AVA_EINVALID, "seed, quality (1-100), resize or threads out of range");
    if (strat && im2rec)
        return ava_err(err, AVA_EINVALID, "stratified and im2rec_compatible exclude each other");
    spec->percent = (int)split;
    spec->seed = (uint64_t)seed;
    spec->mode = strat ? AVA_SPLIT_STRATIFIED : im2rec ? AVA_SPLIT_IM2REC : AVA_SPLIT_SHUFFLE;
    spec->quality = (int)quality;
    spec->resize = (int)resize;
    spec->threads = (int)threads;
    return 0;
}

/* POST /datasets/NAME/format */
static void format_dataset(struct req *rq, const char *name, json_t *body) {
    struct ava_job_spec spec;
    struct ava_dataset_job job;
    struct ava_dataset d;
    char err[AVA_ERRLEN];
    int r = parse_format(body, &spec, err);
    if (r == 0)
        r = ava_datasets_format(rq->api->datasets, &rq->user, name, &spec, &job, err);
    if (r == 0)
        r = ava_store_dataset_find(rq->api->st, name, rq->user.group_id, &d, err);
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    api_reply_json(rq, 202, job_json(rq, &d, &job));
    ava_dataset_free(&d);
}

/* DELETE /datasets/NAME or /datasets/NAME/sets/FORMAT/PERCENT */
static void remove_dataset(struct req *rq) {
    char err[AVA_ERRLEN];
    int64_t pct = 0;
    const char *format = NULL;
    if (rq->nsegs == 5 && !strcmp(rq->segs[2], "sets")) {
        format = rq->segs[3];
        if (ava_parse_uint(rq->segs[4], 100, &pct, err) < 0)
            return api_reply_error(rq, AVA_EINVALID, "percent: %s", err);
    } else if (rq->nsegs != 2) {
        return api_reply_error(rq, AVA_ENOTFOUND, "no such route");
    }
    int r = ava_datasets_remove(rq->api->datasets, &rq->user, rq->segs[1], format, (int)pct, err);
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    api_reply_json(rq, 200, json_pack("{s:s, s:b}", "name", rq->segs[1], "removed", 1));
}

/* GET /datasets and GET /datasets/NAME */
static void show_datasets(struct req *rq) {
    char err[AVA_ERRLEN];
    if (rq->nsegs == 2) {
        struct ava_dataset d;
        int r = ava_store_dataset_find(rq->api->st, rq->segs[1], rq->user.group_id, &d, err);
        if (r < 0)
            return api_reply_error(rq, r, "%s", err);
        api_reply_json(rq, 200, dataset_json(rq, &d, true));
        return ava_dataset_free(&d);
    }
    struct ava_dataset *ds;
    size_t n;
    int r = ava_store_dataset_list(rq->api->st, rq->user.group_id, &ds, &n, err);
    if (r < 0)
        return api_reply_error(rq, r, "%s", err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, dataset_json(rq, &ds[i], false));
    ava_dataset_list_free(ds, n);
    api_reply_json(rq, 200, json_pack("{s:o}", "datasets", arr));
}

void api_route_datasets(struct req *rq) {
    char err[AVA_ERRLEN];
    if (!rq->api->datasets)
        return api_reply_error(rq, AVA_EUNAVAILABLE, "datasets are not served by this avad");
    if (rq->method == EVHTTP_REQ_GET && rq->nsegs <= 2)
        return show_datasets(rq);
    if (rq->method == EVHTTP_REQ_DELETE)
        return remove_dataset(rq);
    if (rq->method != EVHTTP_REQ_POST || rq->nsegs > 3)
        return api_reply_error(rq, AVA_ENOTFOUND, "no such route");
    if (rq->nsegs == 3 && !strcmp(rq->segs[2], "fetch")) {
        struct ava_dataset_job job;
        struct ava_dataset d;
        int r = ava_datasets_fetch(rq->api->datasets, &rq->user, rq->segs[1], &job, err);
        if (r == 0)
            r = ava_store_dataset_find(rq->api->st, rq->segs[1], rq->user.group_id, &d, err);
        if (r < 0)
            return api_reply_error(rq, r, "%s", err);
        api_reply_json(rq, 202, dataset_json(rq, &d, true));
        return ava_dataset_free(&d);
    }
    if (rq->nsegs == 3 && !strcmp(rq->segs[2], "cancel")) {
        int r = ava_datasets_cancel(rq->api->datasets, &rq->user, rq->segs[1], err);
        if (r < 0)
            return api_reply_error(rq, r, "%s", err);
        return api_reply_json(rq, 200,
                              json_pack("{s:s, s:b}", "name", rq->segs[1], "cancelling", 1));
    }
    json_t *body = api_body_json(rq);
    if (!body)
        return;
    if (rq->nsegs == 1)
        import_dataset(rq, body);
    else if (rq->nsegs == 3 && !strcmp(rq->segs[2], "format"))
        format_dataset(rq, rq->segs[1], body);
    else
        api_reply_error(rq, AVA_ENOTFOUND, "no such route");
    json_decref(body);
}
