/* job.c: the job directory's files (see job.h): spec JSON, progress, name tables. */
#include "job.h"

#include "../common/err.h"
#include "../common/file.h"
#include "../common/jsonfields.h"
#include "../common/path.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const format_names[] = {
#define AVA_X(e, s) s,
    AVA_SET_FORMATS(AVA_X)
#undef AVA_X
};
static const char *const encoding_names[] = {
#define AVA_X(e, s) s,
    AVA_ENCODINGS(AVA_X)
#undef AVA_X
};
static const char *const mode_names[] = {"shuffle", "stratified", "im2rec"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Index of s in names, or -1. */
static int lookup(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n && s; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

const char *ava_set_format_str(enum ava_set_format f) {
    return (int)f >= 0 && (int)f < COUNT(format_names) ? format_names[f] : "unknown";
}

int ava_set_format_parse(const char *s, enum ava_set_format *out) {
    int i = lookup(s, format_names, COUNT(format_names));
    if (i < 0)
        return AVA_EINVALID;
    *out = (enum ava_set_format)i;
    return 0;
}

const char *ava_encoding_str(enum ava_encoding e) {
    return (int)e >= 0 && (int)e < COUNT(encoding_names) ? encoding_names[e] : "unknown";
}

int ava_encoding_parse(const char *s, enum ava_encoding *out) {
    int i = lookup(s, encoding_names, COUNT(encoding_names));
    if (i < 0)
        return AVA_EINVALID;
    *out = (enum ava_encoding)i;
    return 0;
}

json_t *ava_job_spec_json(const struct ava_job_spec *s) {
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:i, s:i, s:i}", "kind",
                     s->kind, "dataset_dir", s->dataset_dir, "source", s->source, "md5", s->md5,
                     "format", ava_set_format_str(s->format), "percent", s->percent, "seed",
                     (json_int_t)s->seed, "mode", mode_names[s->mode], "encoding",
                     ava_encoding_str(s->encoding), "quality", s->quality, "resize", s->resize,
                     "threads", s->threads);
}

int ava_job_spec_from_json(json_t *j, struct ava_job_spec *out, char *err) {
    static const struct ava_field fields[] = {
        {"kind", AVA_FIELD_STRING, true, false},   {"dataset_dir", AVA_FIELD_STRING, true, false},
        {"source", AVA_FIELD_STRING, true, false}, {"format", AVA_FIELD_STRING, true, false},
        {"percent", AVA_FIELD_INT, true, false},   {"seed", AVA_FIELD_INT, true, false},
        {"mode", AVA_FIELD_STRING, true, false},   {"encoding", AVA_FIELD_STRING, true, false},
        {"quality", AVA_FIELD_INT, true, false},   {"resize", AVA_FIELD_INT, true, false},
        {"threads", AVA_FIELD_INT, true, false},   {"md5", AVA_FIELD_STRING, false, true},
    };
    const char *kind, *dir, *source, *format, *mode, *enc, *md5 = "";
    json_int_t percent, seed, quality, resize, threads;
    memset(out, 0, sizeof *out);
    if (ava_json_check_fields(j, fields, COUNT(fields), "job spec", err) < 0)
        return AVA_EINVALID;
    json_unpack(j, "{s:s, s:s, s:s, s?s, s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:I}", "kind", &kind,
                "dataset_dir", &dir, "source", &source, "md5", &md5, "format", &format, "percent",
                &percent, "seed", &seed, "mode", &mode, "encoding", &enc, "quality", &quality,
                "resize", &resize, "threads", &threads);
    int m = lookup(mode, mode_names, COUNT(mode_names));
    if ((strcmp(kind, "import") && strcmp(kind, "format")) || dir[0] != '/' ||
        strlen(dir) >= sizeof out->dataset_dir || strlen(source) >= sizeof out->source ||
        ava_set_format_parse(format, &out->format) < 0 || percent < 1 || percent > 100 ||
        seed < 0 || m < 0 || ava_encoding_parse(enc, &out->encoding) < 0 || quality < 1 ||
        quality > 100 || resize < 0 || resize > 65535 || threads < 0 || threads > 256 ||
        strlen(md5) >= sizeof out->md5)
        return ava_err(err, AVA_EINVALID, "job spec: a field is out of range");
    snprintf(out->kind, sizeof out->kind, "%s", kind);
    snprintf(out->dataset_dir, sizeof out->dataset_dir, "%s", dir);
    snprintf(out->source, sizeof out->source, "%s", source);
    snprintf(out->md5, sizeof out->md5, "%s", md5);
    out->percent = (int)percent;
    out->seed = (uint64_t)seed;
    out->mode = (enum ava_split_mode)m;
    out->quality = (int)quality;
    out->resize = (int)resize;
    out->threads = (int)threads;
    return 0;
}

json_t *ava_job_user_options(const char *spec_json) {
    static const char *const keep[] = {"seed", "mode", "encoding", "quality", "resize", "threads"};
    json_t *all = json_loads(spec_json ? spec_json : "{}", 0, NULL), *out = json_object();
    for (int i = 0; i < COUNT(keep); i++) {
        json_t *v = json_object_get(all, keep[i]);
        if (v)
            json_object_set(out, keep[i], v);
    }
    json_decref(all);
    return out;
}

int ava_job_read_progress(const char *dir, int64_t *done, int64_t *total) {
    char path[AVA_PATH_MAX], *text;
    if (ava_path_join(path, sizeof path, NULL, dir, AVA_JOB_PROGRESS, NULL) < 0 ||
        ava_file_read_all(path, 128, &text, NULL, NULL) < 0)
        return AVA_ENOTFOUND;
    long long d, t;
    int ok = sscanf(text, "%lld %lld", &d, &t) == 2 && d >= 0 && t >= 0;
    free(text);
    if (!ok)
        return AVA_ENOTFOUND;
    *done = d;
    *total = t;
    return 0;
}

int ava_job_write_progress(const char *dir, int64_t done, int64_t total, char *err) {
    char path[AVA_PATH_MAX], text[64];
    int r = ava_path_join(path, sizeof path, err, dir, AVA_JOB_PROGRESS, NULL);
    if (r < 0)
        return r;
    int n = snprintf(text, sizeof text, "%" PRId64 " %" PRId64 "\n", done, total);
    return ava_file_write_atomic(path, text, (size_t)n, 0644, err);
}
