/* benchclient.c: the keep-alive API client the benchmarks share (see benchclient.h). */
#include "benchclient.h"

#include "../src/common/file.h"
#include "../src/common/path.h"
#include "../src/common/timeutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* libcurl write callback: appends the body to the client's buffer. */
static size_t on_body(char *p, size_t size, size_t n, void *arg) {
    ava_buf_append(arg, p, size * n);
    return size * n;
}

int bench_client_init(struct bench_client *c, const struct bench_server *srv, long timeout_s) {
    memset(c, 0, sizeof *c);
    c->srv = srv;
    c->h = curl_easy_init();
    if (!c->h)
        return -1;
    c->hdrs = curl_slist_append(NULL, srv->auth);
    c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->resp);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    return 0;
}

void bench_client_free(struct bench_client *c) {
    if (c->h)
        curl_easy_cleanup(c->h);
    curl_slist_free_all(c->hdrs);
    ava_buf_free(&c->resp);
}

long bench_http(struct bench_client *c, const char *path, const char *body) {
    char url[1024];
    snprintf(url, sizeof url, "%s/api/v1%s", c->srv->base, path);
    ava_buf_reset(&c->resp);
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(c->h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, url, curl_easy_strerror(rc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

json_t *bench_resp_json(const struct bench_client *c) {
    return c->resp.len ? json_loadb(c->resp.data, c->resp.len, 0, NULL) : NULL;
}

/* Reads DATA/name into out without the trailing newline. Returns 0, or -1 when it is missing
 * or empty. */
extern char **environ;

static int read_small(const char *data, const char *name, char *out, size_t outlen) {
    char path[AVA_PATH_MAX], *txt = NULL;
    if (ava_path_join(path, sizeof path, NULL, data, name, NULL) < 0 ||
        ava_file_read_all(path, outlen - 1, &txt, NULL, NULL) < 0)
        return -1;
    txt[strcspn(txt, "\r\n")] = '\0';
    snprintf(out, outlen, "%s", txt);
    free(txt);
    return out[0] ? 0 : -1;
}

int bench_avad_start(struct bench_server *srv, const char *avad, const char *const *extra,
                     const char *who) {
    char logpath[AVA_PATH_MAX], token[256];
    if (ava_path_join(logpath, sizeof logpath, NULL, srv->data, "avad.log", NULL) < 0)
        return -1;
    char *argv[64] = {(char *)avad,  "--data",  srv->data, "--listen",
                      "127.0.0.1:0", "--grace", "2s"};
    int argc = 7;
    for (int i = 0; extra && extra[i] && argc < 63; i++)
        argv[argc++] = (char *)extra[i];
    argv[argc] = NULL;
    srv->base[0] = '\0';
    srv->pid = fork();
    if (srv->pid < 0)
        return -1;
    if (srv->pid == 0) {
        setpgid(0, 0); /* a ^C reaches the benchmark only, which then stops avad */
        int nul = open("/dev/null", O_RDONLY);
        int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        dup2(nul, 0);
        dup2(log, 1);
        dup2(log, 2);
        execve(avad, argv, environ);
        _exit(127);
    }
    int64_t deadline = ava_mono_ms() + 10000;
    while (read_small(srv->data, "endpoint", srv->base, sizeof srv->base) < 0 &&
           ava_mono_ms() < deadline && waitpid(srv->pid, NULL, WNOHANG) == 0)
        usleep(10000);
    if (!srv->base[0] || read_small(srv->data, "admin.token", token, sizeof token) < 0) {
        char *txt = NULL;
        ava_file_read_all(logpath, 65536, &txt, NULL, NULL);
        fprintf(stderr, "%s: avad did not come up; its log:\n%s\n", who, txt ? txt : "");
        free(txt);
        return -1;
    }
    snprintf(srv->auth, sizeof srv->auth, "Authorization: Bearer %s", token);
    return 0;
}

/* Creates training name with entry and optional single argument; start=false stores it
 * only. Returns the HTTP status (201 on success) or -1. */
void bench_avad_stop(struct bench_server *srv) {
    if (srv->pid <= 0)
        return;
    kill(srv->pid, SIGTERM);
    int i = 0;
    while (waitpid(srv->pid, NULL, WNOHANG) == 0 && i++ < 50)
        usleep(100000);
    if (i > 50) {
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, NULL, 0);
    }
    srv->pid = -1;
}

long bench_create_training_argv(struct bench_client *c, const char *name, const char *entry,
                                const char *const *args, bool start) {
    json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:b}", "name", name, "image", "ava-pure:host",
                          "cpus", 1, "entry", entry, "start", start);
    if (args && args[0]) {
        json_t *arr = json_array();
        for (size_t i = 0; args[i]; i++)
            json_array_append_new(arr, json_string(args[i]));
        json_object_set_new(j, "args", arr);
    }
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    long st = bench_http(c, "/trainings", body);
    free(body);
    if (st != 201)
        fprintf(stderr, "bench: create %s: HTTP %ld %.300s\n", name, st,
                c->resp.data ? c->resp.data : "");
    return st;
}

long bench_create_training(struct bench_client *c, const char *name, const char *entry,
                           const char *arg, bool start) {
    const char *const args[] = {arg, NULL};
    return bench_create_training_argv(c, name, entry, args, start);
}

bool bench_state_terminal(const char *s) {
    return s && (!strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "timed_out") ||
                 !strcmp(s, "stopped"));
}
