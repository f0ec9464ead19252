/* api.h: the HTTP JSON API under /api/v1 (docs/api.md), served by libevent's evhttp on
 * avad's event loop. */
#ifndef AVA_API_API_H
#define AVA_API_API_H

#include "../sched/sched.h"
#include "../store/store.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ava_api;

struct ava_api_config {
    const char *host;       /* address to listen on */
    int port;               /* 0 = any free port (see ava_api_port) */
    const char *data_dir;   /* absolute; logs are read below it */
    int64_t max_runtime_ms; /* the platform ceiling and default */
    size_t max_body;        /* request body limit in bytes */
    size_t max_headers;     /* request headers limit in bytes */
    int timeout_s;          /* idle / read timeout of a connection */
};

/* Binds the listener and registers the routes on base. The store and scheduler must
 * outlive the API. *out: ava_api_free. AVA_EIO when the address cannot be bound. */
int ava_api_start(struct event_base *base, const struct ava_api_config *cfg, struct ava_store *st,
                  struct ava_sched *sched, struct ava_api **out, char *err);
struct ava_datasets;
/* Serves /api/v1/datasets from the registry ds (which must outlive the API); without it
 * those routes answer 503. */
void ava_api_set_datasets(struct ava_api *api, struct ava_datasets *ds);

/* The port actually bound. */
int ava_api_port(const struct ava_api *api);
/* Ends open streams, closes the listener and frees the API. */
void ava_api_free(struct ava_api *api);

#endif
