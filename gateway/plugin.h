/*
 * plugin.h — loading plugins (include/portcullis/plugin.h) into a
 * configuration snapshot and running them as filters.
 *
 * Each `plugins[]` entry of a configuration is opened with dlopen, checked
 * (descriptor, ABI version, name) and initialised while the configuration
 * loads; the snapshot then owns the plugin's conf and library handle and
 * releases both (fini, dlclose) when its last reference goes, which is
 * after the last request that ran on it. A plugin runs in a route's chain
 * as a pc_filter_ops_t whose callbacks adapt the filter interface to the
 * plugin ABI (plugin.c); the functions plugins call are in plugin_host.c.
 *
 * Plugin counters (portcullis_plugin_events_total) live in a process-wide
 * table that survives reloads.
 */
#ifndef PC_PLUGIN_H
#define PC_PLUGIN_H

#include <stddef.h>

#include "filter.h"
#include "include/portcullis/plugin.h"
#include "pc_types.h"

struct evbuffer;
struct pc_cctx_s;
struct pc_ynode_s;

/* A loaded plugin, in the pool of the configuration that loaded it. */
typedef struct pc_plugin_s {
    portcullis_host_t host; /* this plugin's table (gateway_private: this) */
    pc_filter_ops_t ops;    /* the adapter, with this plugin's name and state size */
    const portcullis_plugin_t *desc;
    void *dl;        /* dlopen handle */
    void *conf;      /* what init returned */
    int initialised; /* init succeeded: fini is due */
    char subsys[80]; /* "plugin:NAME", the error log's subsystem */
} pc_plugin_t;

/* Loads every entry of c->cfg->plugins (after the walk, before routes are
 * resolved); every problem is reported through c. */
void pc_plugins_load(struct pc_cctx_s *c, const struct pc_ynode_s *root);

/* Resolves r->plugins (names) into r->plugin_refs; rn is the route's node
 * (for error lines). */
void pc_plugins_resolve(struct pc_cctx_s *c, pc_route_conf_t *r, const struct pc_ynode_s *rn);

/* Calls fini and dlclose for every plugin cfg loaded, last loaded first. */
void pc_plugins_release(pc_config_t *cfg);

/* Appends portcullis_plugin_events_total to a /metrics answer. */
void pc_plugin_metrics(struct evbuffer *b);

/* ---- between plugin.c and plugin_host.c ---- */

typedef enum {
    PC_PHASE_INIT = 0,
    PC_PHASE_REQUEST_HEADERS,
    PC_PHASE_REQUEST_BODY,
    PC_PHASE_RESPONSE_HEADERS,
    PC_PHASE_LOG
} pc_plugin_phase_e;

/* The plugin callback running on this thread: the host functions accept
 * only its request, and only what its phase allows. */
typedef struct pc_plugin_call_s {
    const pc_plugin_t *p;
    pc_req_t *r;
    pc_plugin_phase_e phase;
    int responded; /* respond() succeeded */
} pc_plugin_call_t;

extern __thread pc_plugin_call_t *pc_plugin_current;

/* Fills p->host for plugin p. */
void pc_plugin_host_init(pc_plugin_t *p);

#endif
