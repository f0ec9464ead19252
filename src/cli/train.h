/* train.h: what the train verbs' two files share (train.c: create/list/show/start/stop/rm;
 * follow.c: logs and wait). Internal to the CLI. */
#ifndef AVA_CLI_TRAIN_H
#define AVA_CLI_TRAIN_H

#include "cli.h"

#include <jansson.h>
#include <stdbool.h>

/* Checks a training reference typed by the user: NAME or USER/NAME, each part a valid name.
 * Returns 0 or AVA_EINVALID with a message. */
int cli_training_ref_check(const char *ref, char *err);

/* GETs the training; *out is owned by the caller. Returns 0 or a negative AVA_E* code. */
int cli_training_get(struct cli_ctx *ctx, const char *ref, json_t **out, char *err);

/* True for the states a run never leaves: succeeded, failed, stopped, timed_out. */
bool cli_state_terminal(const char *state);

/* The run numbered n in the training's "runs" (n <= 0: the latest), or NULL. */
json_t *cli_training_run(const json_t *training, long long n);

/* `ava train logs` and `ava train wait` (follow.c). */
int cli_train_logs(struct cli_ctx *ctx, const struct cli_args *a, char *err);
int cli_train_wait(struct cli_ctx *ctx, const struct cli_args *a, char *err);

#endif
