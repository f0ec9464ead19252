/* worker.c: ava-data-job, the process that runs one dataset job (import or format) from its
 * job dir (job.h) while avad stays responsive; SIGTERM cancels it cleanly. */
#include "format.h"
#include "import.h"
#include "job.h"
#include "pack.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/file.h"
#include "../common/log.h"
#include "../common/md5.h"
#include "../common/path.h"
#include "../common/timeutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROGRESS_EVERY_MS 200

static volatile sig_atomic_t cancelled;

static void on_term(int sig) {
    (void)sig;
    cancelled = 1;
}

/* Where progress goes, throttled. */
struct progress {
    const char *job_dir;
    int64_t last_ms;
};

/* Writes progress at most every PROGRESS_EVERY_MS (and always at the end); returns non-zero
 * once the job is cancelled. */
static int report(void *ctx, int64_t done, int64_t total) {
    struct progress *p = ctx;
    int64_t now = ava_mono_ms();
    if (now - p->last_ms >= PROGRESS_EVERY_MS || (total > 0 && done >= total)) {
        ava_job_write_progress(p->job_dir, done, total, NULL);
        p->last_ms = now;
    }
    return cancelled;
}

/* Streams the source into tmp/pack, counting samples per class; fills result. */
static int import_into(const struct ava_job_spec *spec, const char *pack_dir, struct progress *pg,
                       json_t *result, char *err) {
    struct ava_importer *im = NULL;
    struct ava_pack_writer *pw = NULL;
    int r = ava_import_open(spec->source, &im, err);
    if (r == 0)
        r = ava_mkdir_p(pack_dir, 0755, err);
    if (r == 0)
        r = ava_pack_writer_open(pack_dir, &pw, err);
    int64_t *counts = NULL, done = 0;
    int ncounts = 0;
    struct ava_sample s;
    while (r == 0 && (r = ava_import_next(im, &s, err)) == 1) {
        r = ava_pack_add(pw, &s, err);
        if (s.label >= ncounts) {
            counts = ava_xrealloc(counts, (size_t)(s.label + 1) * sizeof *counts);
            memset(counts + ncounts, 0, (size_t)(s.label + 1 - ncounts) * sizeof *counts);
            ncounts = s.label + 1;
        }
        counts[s.label]++;
        if (report(pg, ++done, ava_import_expected(im)))
            r = ava_err(err, AVA_ECONFLICT, "cancelled");
    }
    if (pw && r == 0)
        r = ava_pack_writer_close(pw, err);
    else if (pw)
        ava_pack_writer_close(pw, NULL);
    if (r == 0) {
        int n;
        const char *const *names = ava_import_classes(im, &n);
        json_t *classes = json_array();
        for (int i = 0; i < n || i < ncounts; i++)
            json_array_append_new(classes,
                                  json_pack("{s:s, s:I}", "name", i < n ? names[i] : "", "count",
                                            (json_int_t)(i < ncounts ? counts[i] : 0)));
        json_object_set_new(result, "samples", json_integer(done));
        json_object_set_new(result, "classes", classes);
        report(pg, done, done);
    }
    free(counts);
    if (im)
        ava_import_close(im);
    return r;
}

/* libcurl's progress hook: the download's bytes are the job's progress; a cancel aborts. */
static int on_transfer(void *ctx, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un) {
    (void)ut;
    (void)un;
    return report(ctx, (int64_t)now, (int64_t)total);
}

/* Downloads url (http or https) into path. */
static int download(const char *url, const char *path, struct progress *pg, char *err) {
    FILE *f = fopen(path, "wbe");
    if (!f)
        return ava_err(err, AVA_EIO, "cannot create %s: %s", path, strerror(errno));
    CURL *h = curl_easy_init();
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_transfer);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, pg);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (fclose(f) != 0 && rc == CURLE_OK)
        return ava_err(err, AVA_EIO, "cannot write %s", path);
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return ava_err(err, AVA_ECONFLICT, "cancelled");
    if (rc != CURLE_OK)
        return ava_err(err, AVA_EIO, "download of %s failed: %s", url,
                       cerr[0] ? cerr : curl_easy_strerror(rc));
    return 0;
}

/* The importer spec to read: downloads "url:KIND:URL" sources into the aside dir first, and
 * checks the source file's MD5 when the job names one. */
static int prepare_source(const struct ava_job_spec *spec, const char *aside, struct progress *pg,
                          char *out, size_t outlen, char *err) {
    char path[AVA_PATH_MAX] = "";
    const char *src = spec->source;
    int r = 0;
    if (!strncmp(src, "url:", 4)) {
        const char *kind = src + 4, *colon = strchr(kind, ':');
        if (!colon)
            return ava_err(err, AVA_EINVALID, "source '%s' is not url:KIND:URL", src);
        r = ava_path_join(path, sizeof path, err, aside, "download", NULL);
        if (r == 0)
            r = download(colon + 1, path, pg, err);
        snprintf(out, outlen, "%.*s:%s", (int)(colon - kind), kind, path);
    } else {
        const char *colon = strchr(src, ':');
        snprintf(out, outlen, "%s", src);
        snprintf(path, sizeof path, "%s", colon ? colon + 1 : "");
    }
    struct stat st;
    if (r == 0 && spec->md5[0] && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        char sum[33];
        r = ava_md5_file(path, sum, err);
        if (r == 0 && strcmp(sum, spec->md5) != 0)
            r = ava_err(err, AVA_EINVALID,
                        "MD5 of %s is %s, the published one is %s: a damaged or different file",
                        path, sum, spec->md5);
    }
    return r;
}

/* Moves each written directory from the aside dir into the dataset dir. */
static int publish(const char *from, const char *to, char *err) {
    struct stat st;
    if (stat(to, &st) == 0)
        return ava_err(err, AVA_EEXISTS, "%s already exists", to);
    if (rename(from, to) < 0)
        return ava_err(err, AVA_EIO, "cannot publish %s: %s", to, strerror(errno));
    return 0;
}

/* import: source -> <aside>/pack -> <dataset dir>/pack. */
static int run_import(const struct ava_job_spec *spec, const char *aside, struct progress *pg,
                      json_t *result, char *err) {
    char pack[AVA_PATH_MAX], dest[AVA_PATH_MAX];
    int r = ava_path_join(pack, sizeof pack, err, aside, "pack", NULL);
    if (r == 0)
        r = ava_path_join(dest, sizeof dest, err, spec->dataset_dir, "pack", NULL);
    struct ava_job_spec local = *spec;
    if (r == 0)
        r = prepare_source(spec, aside, pg, local.source, sizeof local.source, err);
    if (r == 0)
        r = import_into(&local, pack, pg, result, err);
    if (r == 0)
        r = publish(pack, dest, err);
    return r;
}

/* format: <dataset dir>/pack -> <aside>/<format>-<p> (and the complement) -> dataset dir. */
static int run_format(const struct ava_job_spec *spec, const char *aside, struct progress *pg,
                      json_t *result, char *err) {
    char pack[AVA_PATH_MAX];
    struct ava_format_set sets[2];
    int nsets = 0;
    int r = ava_path_join(pack, sizeof pack, err, spec->dataset_dir, "pack", NULL);
    if (r == 0)
        r = ava_format_run(spec, pack, aside, report, pg, sets, &nsets, err);
    json_t *arr = json_array();
    for (int i = 0; r == 0 && i < nsets; i++) {
        char name[64], dest[AVA_PATH_MAX];
        snprintf(name, sizeof name, "%s-%d", ava_set_format_str(spec->format), sets[i].percent);
        r = ava_path_join(dest, sizeof dest, err, spec->dataset_dir, name, NULL);
        if (r == 0)
            r = publish(sets[i].dir, dest, err);
        json_array_append_new(arr, json_pack("{s:i, s:I, s:I}", "percent", sets[i].percent,
                                             "samples", (json_int_t)sets[i].samples, "bytes",
                                             (json_int_t)sets[i].bytes));
    }
    json_object_set_new(result, "sets", arr);
    return r;
}

/* Loads job.json from the job dir. */
static int load_spec(const char *job_dir, struct ava_job_spec *spec, char *err) {
    char path[AVA_PATH_MAX];
    json_error_t je;
    int r = ava_path_join(path, sizeof path, err, job_dir, AVA_JOB_SPEC, NULL);
    if (r < 0)
        return r;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return ava_err(err, AVA_EINVALID, "%s: %s", path, je.text);
    r = ava_job_spec_from_json(j, spec, err);
    json_decref(j);
    return r;
}

/* Writes result.json: the outcome plus what the job measured. */
static void write_result(const char *job_dir, json_t *result, int r, const char *err) {
    char path[AVA_PATH_MAX];
    json_object_set_new(result, "state",
                        json_string(r == 0      ? "succeeded"
                                    : cancelled ? "cancelled"
                                                : "failed"));
    json_object_set_new(result, "reason", json_string(r == 0 ? "" : err));
    char *text = json_dumps(result, JSON_COMPACT);
    if (ava_path_join(path, sizeof path, NULL, job_dir, AVA_JOB_RESULT, NULL) == 0 && text)
        ava_file_write_atomic(path, text, strlen(text), 0644, NULL);
    free(text);
}

int main(int argc, char **argv) {
    char err[AVA_ERRLEN] = "", aside[AVA_PATH_MAX] = "";
    struct ava_job_spec spec;
    ava_log_set_prefix("ava-data-job");
    if (argc != 2) {
        fprintf(stderr, "usage: ava-data-job JOB_DIR\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t term; /* avad starts its jobs with SIGTERM blocked (exec/proc.h): take it now */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &term, NULL);
    const char *job_dir = argv[1];
    const char *job_id = strrchr(job_dir, '/') ? strrchr(job_dir, '/') + 1 : job_dir;
    json_t *result = json_object();
    struct progress pg = {job_dir, 0};
    char aside_name[128];
    snprintf(aside_name, sizeof aside_name, ".tmp-%s", job_id);
    int r = load_spec(job_dir, &spec, err);
    if (r == 0)
        r = ava_path_join(aside, sizeof aside, err, spec.dataset_dir, aside_name, NULL);
    if (r == 0) {
        ava_rm_rf(aside, NULL);
        r = ava_mkdir_p(aside, 0755, err);
    }
    if (r == 0)
        r = !strcmp(spec.kind, "import") ? run_import(&spec, aside, &pg, result, err)
                                         : run_format(&spec, aside, &pg, result, err);
    if (aside[0])
        ava_rm_rf(aside, NULL); /* published dirs were renamed away; the rest is scrap */
    if (r < 0)
        ava_log_error("%s", err);
    write_result(job_dir, result, r, err);
    json_decref(result);
    return r == 0 ? 0 : 1;
}
