/*
 * admin.h — the control thread: the admin listener (/healthz, /readyz,
 * /metrics, /admin/status) and the active upstream health checks.
 *
 * It runs beside the workers on its own event loop, so a slow scrape or a
 * hanging health probe never delays a request. It reads the workers' metric
 * shards and the shared health records; it never touches a worker's
 * connections. The admin listener speaks HTTP through libevent's evhttp:
 * it is not on the request path and is loopback-only by default.
 */
#ifndef PC_ADMIN_H
#define PC_ADMIN_H

#include "config.h"
#include "pc_types.h"

typedef struct pc_admin_s pc_admin_t;

/* Starts the control thread for srv with cfg (a reference is taken) and the
 * admin socket admin_fd (owned from here on; -1: no admin listener). NULL on
 * failure. */
pc_admin_t *pc_admin_start(pc_server_t *srv, pc_config_t *cfg, int admin_fd);

/* Hands a new configuration over (thread-safe; takes a reference).
 * admin_fd: the admin socket to serve from now on; -1 none; -2 keep the
 * current one. */
void pc_admin_reload(pc_admin_t *a, pc_config_t *cfg, int admin_fd);

/* Stops the thread and frees everything. */
void pc_admin_stop(pc_admin_t *a);

/* Opens the admin listening socket for address (main thread); -1 with errno. */
int pc_admin_listen(const pc_sockaddr_t *addr);

#endif
