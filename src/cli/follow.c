/* follow.c: the train verbs that follow a run as it goes: logs (streamed) and wait (polled). */
#include "train.h"

#include "out.h"

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/strutil.h"
#include "../common/timeutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Polling of `wait`: start fast so short runs return at once, then back off. */
#define POLL_FIRST_MS 50
#define POLL_MAX_MS 500
/* After a followed log ends, how long to wait for the server to record the run's end. */
#define SETTLE_MS 3000

/* Sleeps for ms milliseconds (restarting after signals). */
static void sleep_ms(int64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* The next polling delay: x1.5, at most POLL_MAX_MS. */
static int64_t next_delay(int64_t delay) {
    delay = delay * 3 / 2;
    return delay > POLL_MAX_MS ? POLL_MAX_MS : delay;
}

/* Prints "ava: run 2 ended: succeeded (exit code 0)" on stderr once the followed run is
 * known to have ended (waiting briefly for the server to record it). */
static void report_end(struct cli_ctx *ctx, const char *ref, long long n) {
    char err[AVA_ERRLEN];
    int64_t deadline = ava_mono_ms() + SETTLE_MS, delay = POLL_FIRST_MS;
    for (;;) {
        json_t *t;
        if (cli_training_get(ctx, ref, &t, err) < 0) {
            fprintf(stderr, "ava: the log ended, but the run's state is unknown: %s\n", err);
            return;
        }
        const json_t *run = cli_training_run(t, n);
        const char *state = cli_jstr(run, "state"), *reason = cli_jstr(run, "reason");
        long long number = cli_jint(run, "number", n);
        bool done = cli_state_terminal(state);
        if (run && (done || ava_mono_ms() >= deadline)) {
            if (done)
                fprintf(stderr, "ava: run %lld ended: %s%s%s%s\n", number, state,
                        reason ? " (" : "", reason ? reason : "", reason ? ")" : "");
            else
                fprintf(stderr, "ava: the log of run %lld ended while the run is %s\n", number,
                        state ? state : "in an unknown state");
        }
        json_decref(t);
        if (!run || done || ava_mono_ms() >= deadline)
            return;
        sleep_ms(delay);
        delay = next_delay(delay);
    }
}

/* Builds the logs path with its query: run=N or run=all, follow=1. */
static char *logs_path(const char *ref, long long run, bool all, bool follow) {
    struct ava_buf q = {0};
    ava_buf_puts(&q, "/logs");
    if (run > 0)
        ava_buf_printf(&q, "?run=%lld", run);
    else if (all)
        ava_buf_puts(&q, "?run=all");
    if (follow)
        ava_buf_puts(&q, run > 0 || all ? "&follow=1" : "?follow=1");
    char *path = cli_training_path(ref, q.data);
    ava_buf_free(&q);
    return path;
}

int cli_train_logs(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *ref = a->pos[0], *run_s = cli_args_get(a, "run");
    bool all = cli_args_has(a, "all"), follow = cli_args_has(a, "follow");
    int64_t run = 0;
    if (cli_training_ref_check(ref, err) < 0)
        return CLI_USAGE;
    if (run_s && all) {
        ava_err(err, AVA_EINVALID, "give --run N or --all, not both");
        return CLI_USAGE;
    }
    if (run_s && (ava_parse_uint(run_s, INT32_MAX, &run, NULL) < 0 || run == 0)) {
        ava_err(err, AVA_EINVALID, "--run needs a run number (1, 2, ...), not '%s'", run_s);
        return CLI_USAGE;
    }
    char *path = logs_path(ref, (long long)run, all, follow);
    int rc = cli_http_stream(ctx->http, path, follow, stdout, err);
    free(path);
    if (rc < 0)
        return CLI_FAIL;
    if (follow)
        report_end(ctx, ref, (long long)run);
    return CLI_OK;
}

/* Reports a run that has ended: its state (or the training's JSON); CLI_OK if it succeeded. */
static int wait_done(struct cli_ctx *ctx, const json_t *t, const char *state) {
    if (ctx->json)
        cli_print_json(stdout, t);
    else
        printf("%s\n", state);
    fflush(stdout);
    return strcmp(state, "succeeded") == 0 ? CLI_OK : CLI_FAIL;
}

int cli_train_wait(struct cli_ctx *ctx, const struct cli_args *a, char *err) {
    const char *ref = a->pos[0], *timeout_s = cli_args_get(a, "timeout");
    int64_t timeout = -1, delay = POLL_FIRST_MS;
    if (cli_training_ref_check(ref, err) < 0)
        return CLI_USAGE;
    if (timeout_s && ava_parse_duration(timeout_s, &timeout, err) < 0)
        return CLI_USAGE;
    int64_t deadline = timeout >= 0 ? ava_mono_ms() + timeout : -1;
    for (;;) {
        json_t *t;
        if (cli_training_get(ctx, ref, &t, err) < 0)
            return CLI_FAIL;
        const json_t *latest = cli_training_run(t, 0);
        const char *state = cli_jstr(t, "state");
        if (!state)
            state = cli_jstr(latest, "state");
        long long run = cli_jint(t, "run", cli_jint(latest, "number", 0));
        if (run <= 0 || !state) {
            ava_err(err, AVA_ECONFLICT,
                    "training %s has no run to wait for (start it with 'ava train start %s')", ref,
                    ref);
            json_decref(t);
            return CLI_FAIL;
        }
        if (cli_state_terminal(state)) {
            int rc = wait_done(ctx, t, state);
            json_decref(t);
            return rc;
        }
        int64_t now = ava_mono_ms();
        if (deadline >= 0 && now >= deadline) {
            ava_err(err, AVA_EUNAVAILABLE,
                    "timed out after %s waiting for training %s (run %lld is %s)", timeout_s, ref,
                    run, state);
            json_decref(t);
            return CLI_TIMEOUT;
        }
        json_decref(t);
        sleep_ms(deadline >= 0 && deadline - now < delay ? deadline - now : delay);
        delay = next_delay(delay);
    }
}
