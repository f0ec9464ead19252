/* job.h: the dataset job directory, the contract between avad and the ava-data-job worker
 * (like the run dir is for ava-shim).
 *
 * <dataset dir>/jobs/<job id>/ holds:
 *   job.json     written by avad before the worker starts (see struct ava_job_spec)
 *   progress     rewritten by the worker (atomically, a few times a second): "DONE TOTAL\n"
 *   result.json  written by the worker (atomically) as its last act:
 *                {"state": "succeeded"|"failed"|"cancelled", "reason": "...",
 *                 "samples": N, "classes": [{"name": ..., "count": ...}],       (import)
 *                 "sets": [{"percent": P, "samples": N, "bytes": B}]}        (format)
 *   job.log      the worker's stderr
 * SIGTERM to the worker cancels the job: it removes what it wrote aside and reports
 * "cancelled". Output is written aside (<dataset dir>/.tmp-<job id>/) and published with
 * rename, so a failed or cancelled job leaves nothing visible. */
#ifndef AVA_DATA_JOB_H
#define AVA_DATA_JOB_H

#include "split.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define AVA_JOB_SPEC "job.json"
#define AVA_JOB_PROGRESS "progress"
#define AVA_JOB_RESULT "result.json"
#define AVA_JOB_LOG "job.log"

/* The set formats: X(enum suffix, name). */
#define AVA_SET_FORMATS(X)                                                                         \
    X(RECORDIO, "recordio")                                                                        \
    X(LMDB, "lmdb")                                                                                \
    X(RAW, "raw")

enum ava_set_format {
#define AVA_X(e, s) AVA_FMT_##e,
    AVA_SET_FORMATS(AVA_X)
#undef AVA_X
};

/* Encodings of the image payloads: X(enum suffix, name). DEFAULT = the format's usual one
 * (recordio: jpeg, lmdb: raw pixels, raw: the source file or png). */
#define AVA_ENCODINGS(X)                                                                           \
    X(DEFAULT, "default")                                                                          \
    X(JPEG, "jpeg")                                                                                \
    X(PNG, "png")                                                                                  \
    X(RAW, "raw")

enum ava_encoding {
#define AVA_X(e, s) AVA_ENC_##e,
    AVA_ENCODINGS(AVA_X)
#undef AVA_X
};

const char *ava_set_format_str(enum ava_set_format f);
int ava_set_format_parse(const char *s, enum ava_set_format *out);
const char *ava_encoding_str(enum ava_encoding e);
int ava_encoding_parse(const char *s, enum ava_encoding *out);

/* What a job is asked to do. */
struct ava_job_spec {
    char kind[16]; /* import, format */
    char dataset_dir[4096];
    char source[4096]; /* import: the importer spec, or "url:KIND:URL" (download, then KIND:FILE) */
    char md5[33];      /* import: the MD5 the source file must have, "" = unchecked */
    enum ava_set_format format;
    int percent; /* 1..100; 100 = one set */
    uint64_t seed;
    enum ava_split_mode mode;
    enum ava_encoding encoding;
    int quality; /* JPEG quality 1..100 (default 95, as im2rec) */
    int resize;  /* shorter edge in pixels, 0 = keep */
    int threads; /* encoder threads, 0 = online CPUs */
};

/* Serialises a spec to JSON (new reference) / reads it back, validating every field. */
json_t *ava_job_spec_json(const struct ava_job_spec *s);
int ava_job_spec_from_json(json_t *j, struct ava_job_spec *out, char *err);

/* The options of a stored job spec (JSON text) as users see them: seed, mode, encoding,
 * quality, resize, threads (a new object; {} for text that does not parse). */
json_t *ava_job_user_options(const char *spec_json);

/* Reads DIR/progress. Returns 0 (fills done and total) or AVA_ENOTFOUND. */
int ava_job_read_progress(const char *dir, int64_t *done, int64_t *total);
/* Rewrites DIR/progress atomically. */
int ava_job_write_progress(const char *dir, int64_t done, int64_t total, char *err);

#endif
