/* benchclient.c: the keep-alive API client the benchmarks share (see benchclient.h). */
#include "benchclient.h"

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
